/*
 * Holder batches on PostgreSQL in few round trips (issue 19): a write
 * transaction queues the statements whose rows nobody reads (libpq's
 * pipeline mode, src/pgstore_pipe.c) and reads a batch's subjects in one
 * statement (pgstore_prefetch(), src/pgstore_known.c), and a batch whose
 * server process dies keeps nothing. Against the
 * fixture's cluster ("pg"), a schema of its own per test; without
 * PostgreSQL the tests skip, saying why (a failure under CI=true).
 */
#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstore.h"
#include "pgstore_int.h"
#include "t_pg.h"

/* Sync messages the client sent, from a PQtrace() file: one per round trip. */
static int
syncs(FILE *fp)
{
	char	line[512];
	int	n = 0;

	rewind(fp);
	while (fgets(line, sizeof(line), fp) != NULL)
		n += line[0] == 'F' && strstr(line, "\tSync") != NULL;
	return n;
}

/*
 * 1,000 puts of new subjects and one of an existing subject's, in one
 * transaction: a handful of round trips (one Sync per 1,024 queued
 * statements, the prefetch, the mark, the commit), where each statement
 * was one before (some 5,000); the ownership checks answered from the
 * prefetch; and every row written as given.
 */
Test(pgbatch, a_thousand_puts_take_a_few_round_trips)
{
	static char	 ids[1001][16];
	char		*idv[1001], ci[1200], err[256] = "", holder[64];
	const char	*names[2] = { "full_name", "postcode" };
	const char	*values[2] = { "Ann Example", "AB1 2CD" };
	PGconn		*adm = t_pg_schema("b_trips", ci, sizeof(ci));
	struct pgstore	*pg = t_pgstore_open(ci);
	FILE		*trace;
	int		 n;

	cr_assert_eq(pgstore_begin(pg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_put_record(pg, "OLD", "person", "police", 1700000000,
	    names, values, 2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_commit(pg, err, sizeof(err)), 0, "%s", err);

	for (int i = 0; i < 1000; i++) {
		snprintf(ids[i], sizeof(ids[i]), "N%04d", i);
		idv[i] = ids[i];
	}
	snprintf(ids[1000], sizeof(ids[1000]), "OLD");
	idv[1000] = ids[1000];
	cr_assert_not_null(trace = tmpfile());
	PQtrace(pg->conn, trace);
	PQsetTraceFlags(pg->conn, PQTRACE_SUPPRESS_TIMESTAMPS);
	cr_assert_eq(pgstore_begin(pg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_prefetch(pg, idv, 1001, err, sizeof(err)), 0, "%s",
	    err);
	cr_assert_eq(pgstore_subject_holder(pg, "OLD", holder, sizeof(holder), err,
	    sizeof(err)), 1, "%s", err);
	cr_assert_str_eq(holder, "police");
	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(pgstore_subject_holder(pg, ids[i], holder,
		    sizeof(holder), err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(pgstore_record_same(pg, ids[i], "person", "police",
		    1700000000, 0, names, values, 2, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(pgstore_put_record(pg, ids[i], "person", "police",
		    1700000000, names, values, 2, err, sizeof(err)), 0, "%s", err);
	}
	cr_assert_eq(pgstore_mark_batch(pg, "b-trips", 1, 1700000000, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_commit(pg, err, sizeof(err)), 0, "%s", err);
	PQuntrace(pg->conn);
	n = syncs(trace);
	fclose(trace);
	cr_log_info("%d round trips for 1,000 puts", n);
	cr_expect_leq(n, 12, "%d round trips for 1,000 puts", n);
	cr_expect_gt(n, 0, "the trace saw no Sync: is PQtrace's format another?");
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM subjects WHERE holder = "
	    "'police'"), 1001);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM record_fields"), 2002);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM subjects WHERE family = "
	    "'Example' AND given = 'Ann' AND postcode = 'AB1 2CD'"), 1001,
	    "each put's details, from the fields it wrote");
	pgstore_close(pg);
	PQfinish(adm);
}

/*
 * A value goes through the text[] literal as it is: quotes, backslashes,
 * braces, commas, a newline and the word NULL.
 */
Test(pgbatch, field_values_arrive_as_given)
{
	char		 ci[1200], err[256] = "";
	char		*idv[1] = { "Q\"1\\" };
	const char	*names[3] = { "full_name", "postcode", "date_of_birth" };
	const char	*values[3] = { "A \"quoted\" {brace}, back\\slash\nNULL",
			    "NULL", "{}" };
	PGconn		*adm = t_pg_schema("b_values", ci, sizeof(ci));
	struct pgstore	*pg = t_pgstore_open(ci);
	PGresult	*res;

	cr_assert_eq(pgstore_begin(pg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_prefetch(pg, idv, 1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_put_record(pg, idv[0], "person", "police", 1700000000,
	    names, values, 3, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_commit(pg, err, sizeof(err)), 0, "%s", err);
	res = PQexec(adm, "SELECT field, value, subject FROM record_fields "
	    "ORDER BY field COLLATE \"C\"");
	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	cr_assert_eq(PQntuples(res), 3);
	cr_expect_str_eq(PQgetvalue(res, 0, 1), values[2]);
	cr_expect_str_eq(PQgetvalue(res, 1, 1), values[0]);
	cr_expect_str_eq(PQgetvalue(res, 2, 1), values[1]);
	cr_expect(!PQgetisnull(res, 2, 1));
	cr_expect_str_eq(PQgetvalue(res, 0, 2), idv[0]);
	PQclear(res);
	pgstore_close(pg);
	PQfinish(adm);
}

/*
 * A queued write the server refuses (a value that is not UTF-8) is not
 * seen by the put, which only queued it, but fails the transaction's next
 * read and its commit: nothing of the batch is kept, and the handle goes
 * on with the next one.
 */
Test(pgbatch, a_queued_write_refused_fails_the_batch_whole)
{
	char		 ci[1200], err[256] = "", holder[64];
	char		*idv[2] = { "R1", "R2" };
	const char	*names[1] = { "full_name" };
	const char	*good[1] = { "Ann Example" }, *bad[1] = { "Ann \xff" };
	PGconn		*adm = t_pg_schema("b_refused", ci, sizeof(ci));
	struct pgstore	*pg = t_pgstore_open(ci);

	cr_assert_eq(pgstore_begin(pg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_prefetch(pg, idv, 2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_put_record(pg, "R1", "person", "police", 1700000000,
	    names, good, 1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_put_record(pg, "R2", "referral", "police", 1700000000,
	    names, bad, 1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_flag_active(pg, "R1", "domestic_abuse", err,
	    sizeof(err)), -1);
	cr_expect(strstr(err, "PostgreSQL store: ") == err, "%s", err);
	cr_assert_eq(pgstore_commit(pg, err, sizeof(err)), -1);
	pgstore_rollback(pg);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM subjects"), 0);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM record_fields"), 0);

	cr_assert_eq(pgstore_begin(pg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_put_record(pg, "R1", "person", "police", 1700000000,
	    names, good, 1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_commit(pg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_subject_holder(pg, "R1", holder, sizeof(holder), err,
	    sizeof(err)), 1, "%s", err);
	pgstore_close(pg);
	PQfinish(adm);
}

/*
 * A holder batch whose server process is terminated halfway: every later
 * statement of the batch fails (none runs on a new connection outside the
 * transaction), nothing of it is kept, its mark included, so
 * pgstore_batch_applied() says 0 and the daemon's reconciliation logs it
 * rolled back, as with SQLite. The handle reconnects by itself for the
 * next batch.
 */
Test(pgbatch, batch_killed_midway_keeps_nothing_and_is_not_marked)
{
	char		 ci[1200], err[256] = "";
	PGconn		*adm = t_pg_schema("s_kill", ci, sizeof(ci));
	struct pgstore	*pg = t_pgstore_open(ci);
	const char	*names[1] = { "full_name" }, *values[1] = { "B Two" };
	int		 pid = pgstore_backend_pid(pg);

	cr_assert_eq(pgstore_begin(pg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_put_record(pg, "S1", "person", "health_trust",
	    1700000000, names, values, 1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_set_flag(pg, "S1", "domestic_abuse", "health_trust",
	    100, err, sizeof(err)), 0, "%s", err);
	t_pg_terminate(adm, pid);
	/*
	 * The put is queued (pgstore_pipe.c) or fails at once; the mark reads
	 * its answer, and fails either way: never run outside the transaction.
	 */
	(void)pgstore_put_record(pg, "S2", "person", "health_trust", 1700000000,
	    names, values, 1, err, sizeof(err));
	cr_assert_eq(pgstore_mark_batch(pg, "b-killed", 5, 100, err, sizeof(err)),
	    -1);
	cr_assert(strstr(err, "PostgreSQL store: ") == err, "%s", err);
	cr_assert_eq(pgstore_commit(pg, err, sizeof(err)), -1);
	pgstore_rollback(pg);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM subjects"), 0);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM records"), 0);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM flags"), 0);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM holder_batches"), 0);
	cr_assert_eq(pgstore_batch_applied(pg, "b-killed", err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_neq(pgstore_backend_pid(pg), pid);

	cr_assert_eq(pgstore_begin(pg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_put_record(pg, "S1", "person", "health_trust",
	    1700000000, names, values, 1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_mark_batch(pg, "b-next", 6, 100, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(pgstore_commit(pg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_batch_applied(pg, "b-next", err, sizeof(err)), 1);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM records"), 1);
	pgstore_close(pg);
	PQfinish(adm);
}

/*
 * Issue 19 item 2: a start claims a batch in holder_batches before it
 * logs it rolled back (pgstore_batch_claim()); the apply's mark then finds
 * the row taken and answers 1 (roll back, apply nothing), a claim of an
 * applied batch answers 0 (log nothing), and a claimed batch still counts
 * as not applied.
 */
Test(pgbatch, a_claimed_batch_is_not_marked_applied)
{
	char		 ci[1200], err[256] = "";
	PGconn		*adm = t_pg_schema("b_claim", ci, sizeof(ci));
	struct pgstore	*pg = t_pgstore_open(ci), *other = t_pgstore_open(ci);

	cr_assert_eq(pgstore_batch_claim(other, "b-gone", 7, err, sizeof(err)), 1,
	    "%s", err);
	cr_assert_eq(pgstore_batch_claim(other, "b-gone", 7, err, sizeof(err)), 2,
	    "claimed before: %s", err);
	cr_assert_eq(pgstore_batch_applied(pg, "b-gone", err, sizeof(err)), 0);
	cr_assert_eq(pgstore_begin(pg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_set_flag(pg, "S1", "domestic_abuse", "police", 100,
	    err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_mark_batch(pg, "b-gone", 7, 100, err, sizeof(err)), 1,
	    "%s", err);
	pgstore_rollback(pg);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM flags"), 0);

	cr_assert_eq(pgstore_begin(pg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_mark_batch(pg, "b-done", 9, 100, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(pgstore_commit(pg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_batch_claim(other, "b-done", 9, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(pgstore_batch_applied(pg, "b-done", err, sizeof(err)), 1);
	/* Marked twice is still refused. */
	cr_assert_eq(pgstore_begin(pg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_mark_batch(pg, "b-done", 9, 100, err, sizeof(err)), -1);
	pgstore_rollback(pg);
	pgstore_close(other);
	pgstore_close(pg);
	PQfinish(adm);
}
