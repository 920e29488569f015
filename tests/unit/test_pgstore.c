/*
 * The record store on PostgreSQL (src/pgstore*.c, issue 19) against a real
 * server: the throwaway cluster of tests/pg/pgcluster.sh (ctest fixture
 * "pg"), a schema of its own per test. Every tests/data/storage/NAME.case
 * runs against the SQLite store and against pgstore, which must give the
 * same answers; then what only a shared database has: two daemons' writes
 * racing, a batch whose server process dies, a reconnect, a store of
 * another schema version. Without PostgreSQL the tests skip, saying why --
 * except under CI=true, where that fails.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <libpq-fe.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "person.h"
#include "pgstore.h"
#include "protocol.h"
#include "storage.h"
#include "storage_case.h"
#include "store.h"
#include "t_pg.h"
#include "testutil.h"
#include "util.h"

#define SDIR	DATA_DIR "/storage"

ParameterizedTestParameters(pgstore, cases)
{
	static struct t_case_file cases[64];

	return cr_make_param_array(struct t_case_file, cases,
	    t_case_files(SDIR, cases, 64));
}

Test(pgstore, cases_present)
{
	struct criterion_test_params params = pgstore_cases_param();

	cr_assert_geq(params.length, 6, "only %zu cases in " SDIR, params.length);
}

/* The case file's name as a schema name: c_ and letters, digits, _. */
static void
schema_name(const char *file, char *out, size_t len)
{
	size_t i, o = (size_t)snprintf(out, len, "c_");

	for (i = 0; file[i] != '\0' && file[i] != '.' && o + 1 < len; i++)
		out[o++] = (file[i] >= 'a' && file[i] <= 'z') ||
		    (file[i] >= '0' && file[i] <= '9') ? file[i] : '_';
	out[o] = '\0';
}

/* One case, each backend from an empty store: both give every answer. */
ParameterizedTest(struct t_case_file *c, pgstore, cases)
{
	struct sc_backend	 b[2];
	struct store		*st;
	struct storage		*sq, *pg;
	struct protocol		*proto;
	char			 dbpath[256], ci[1200], schema[80], path[512];
	char			 err[256] = "";
	PGconn			*adm;

	schema_name(c->name, schema, sizeof(schema));
	adm = t_pg_schema(schema, ci, sizeof(ci));
	cr_assert_eq(storage_open(&pg, &storage_postgresql, ci, err,
	    sizeof(err)), 0, "%s", err);
	t_store_open("pgstore", dbpath, sizeof(dbpath), &st, &proto);
	cr_assert_eq(storage_wrap_sqlite(&sq, st, err, sizeof(err)), 0, "%s",
	    err);
	b[0] = (struct sc_backend){ storage_backend(sq), sq, proto,
	    &storage_sqlite, dbpath };
	b[1] = (struct sc_backend){ storage_backend(pg), pg, proto,
	    &storage_postgresql, ci };
	snprintf(path, sizeof(path), SDIR "/%s", c->name);
	cr_expect_gt(sc_run_file(path, b, 2), 0, "%s: no operations", c->name);
	storage_close(pg);
	storage_close(sq);
	t_store_close(dbpath, st, proto);
	PQfinish(adm);
}

#define MDIR	DATA_DIR "/matching"

/*
 * The matching cases of tests/unit/test_match.c through each backend's
 * subject index (docs/matching.md): the same holdings stored, the same
 * query, the same outcome and person. The few whose holdings a store
 * cannot hold (a stored NHS number with spaces or a bad check digit, two
 * people with one number, a typo'd date) are the pure matcher's alone.
 */
Test(pgstore, matching_cases_through_the_subject_index, .timeout = 240)
{
	static struct t_case_file	 cases[256];
	size_t				 n = t_case_files(MDIR, cases, 256), ran = 0;

	char				 ci[1200];
	PGconn				*adm = t_pg_schema("m_case", ci, sizeof(ci));

	cr_assert_geq(n, 40, "only %zu matching cases in " MDIR, n);
	for (size_t i = 0; i < n; i++) {
		struct sc_backend	 b[2];
		struct store		*st;
		struct storage		*sq, *pg;
		struct protocol		*proto;
		char			 dbpath[256], path[512], skip[512];
		char			 err[256] = "";

		cr_assert_eq(storage_open(&pg, &storage_postgresql, ci, err,
		    sizeof(err)), 0, "%s", err);
		t_store_open("pgstore-match", dbpath, sizeof(dbpath), &st, &proto);
		cr_assert_eq(storage_wrap_sqlite(&sq, st, err, sizeof(err)), 0,
		    "%s", err);
		b[0] = (struct sc_backend){ storage_backend(sq), sq, proto,
		    &storage_sqlite, dbpath };
		b[1] = (struct sc_backend){ storage_backend(pg), pg, proto,
		    &storage_postgresql, ci };
		snprintf(path, sizeof(path), MDIR "/%s", cases[i].name);
		skip[0] = '\0';
		if (sc_run_matching(path, MDIR "/population.yaml", b, 2, skip,
		    sizeof(skip)))
			ran++;
		else
			cr_log_info("%s: not through a store: %s", cases[i].name, skip);
		storage_close(pg);
		storage_close(sq);
		t_store_close(dbpath, st, proto);
		/* The next case starts from an empty store too. */
		t_pg_run(adm, "TRUNCATE subjects, records, record_fields, consents, "
		    "flags, holder_batches");
	}
	PQfinish(adm);
	/* All but the few own-holdings cases above. */
	cr_assert_geq(ran, n - 5, "%zu of %zu matching cases ran through the stores",
	    ran, n);
}

/*
 * The storage interface's PostgreSQL backend (storage.h): it names itself,
 * a refused open leaves no handle, what has no table on PostgreSQL yet
 * fails saying so instead of answering as if done, and the data file
 * loader (storage_load_yaml(), written once over the interface) loads the
 * demo data into PostgreSQL, all or nothing, noting the load.
 */
static int
count_load(int64_t id, const char *file, size_t subjects, int64_t at, void *arg)
{
	(void)id;
	(void)file;
	(void)at;
	*(size_t *)arg += subjects;
	return 0;
}

Test(pgstore, storage_interface_backend)
{
	struct storage	*s;
	struct protocol	*proto;
	struct diag	 d = { 0 };
	unsigned char	 id[16] = { 0 };
	uint64_t	 size = 0;
	size_t		 loaded = 0;
	char		 ci[1200], err[256] = "", holder[64], bad[300];
	PGconn		*adm = t_pg_schema("s_iface", ci, sizeof(ci));
	FILE		*f;

	cr_assert_eq(storage_open(&s, &storage_postgresql, "host=/nonexistent "
	    "dbname=none connect_timeout=2", err, sizeof(err)), -1);
	cr_assert_null(s);
	cr_assert_neq(err[0], '\0');
	cr_assert_eq(storage_open(&s, &storage_postgresql, ci, err,
	    sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(storage_backend(s), "postgresql");
	cr_expect_eq(strlen(storage_id(s)), STORE_ID_LEN);
	cr_expect_gt(storage_created_at(s), 0);
	/*
	 * What the store remembers of its log (08-log-memory.case has the
	 * answers): inside a write transaction it is refused, not mixed
	 * into a holder batch that may roll back; where nothing is there,
	 * nothing is remembered and nothing is made.
	 */
	cr_expect_eq(storage_begin(s, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(storage_remember_log(s, id, 1, 0, err, sizeof(err)), -1);
	cr_expect(strstr(err, "inside a write transaction") != NULL, "%s", err);
	storage_rollback(s);
	cr_expect_eq(storage_remember_log(s, id, 1, 0, err, sizeof(err)), 0,
	    "%s", err);
	cr_expect_eq(storage_log_memory(&storage_postgresql, ci, id, &size, err,
	    sizeof(err)), 1, "%s", err);
	cr_expect_eq(size, 1);
	cr_expect_eq(storage_forget_log(s, err, sizeof(err)), 0, "%s", err);
	{
		char	 ci2[1200];
		PGconn	*adm2 = t_pg_schema("s_iface_none", ci2, sizeof(ci2));

		cr_expect_eq(storage_log_memory(&storage_postgresql, ci2, id, &size,
		    err, sizeof(err)), 0, "%s", err);
		cr_expect_eq(t_pg_int(adm2, "SELECT (to_regclass('store_meta') IS "
		    "NULL)::int"), 1);
		PQfinish(adm2);
	}

	proto = protocol_load(SOURCE_DIR "/config/protocol.yaml", 0, &d);
	cr_assert_not_null(proto);
	diag_free(&d);
	/* A file with a problem loads nothing. */
	snprintf(bad, sizeof(bad), "/tmp/safeshare-test-pgload-%d.yaml",
	    (int)getpid());
	cr_assert_not_null(f = fopen(bad, "w"));
	fputs("subjects:\n  - id: S-BAD\n    holder: childrens_social_care\n"
	    "    records:\n      person:\n        shoe_size: \"9\"\n", f);
	fclose(f);
	cr_expect_eq(storage_load_yaml(s, proto, bad, 100, &d), -1);
	cr_expect_gt(d.nerrors, 0);
	diag_free(&d);
	unlink(bad);
	cr_expect_eq(storage_subject_holder(s, "S-BAD", holder, sizeof(holder),
	    err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(storage_unlogged_loads(s, count_load, &loaded, err,
	    sizeof(err)), 0, "%s", err);
	cr_expect_eq(loaded, 0);
	/* The demo data goes in whole, and the load is noted. */
	cr_expect_eq(storage_load_yaml(s, proto, SOURCE_DIR
	    "/config/demo-data.yaml", 100, &d), 0, "%s",
	    d.n ? d.msgs[0] : "");
	diag_free(&d);
	cr_expect_eq(storage_subject_holder(s, "S1001", holder, sizeof(holder),
	    err, sizeof(err)), 1, "%s", err);
	cr_expect_str_eq(holder, "childrens_social_care");
	cr_expect_eq(storage_unlogged_loads(s, count_load, &loaded, err,
	    sizeof(err)), 0, "%s", err);
	cr_expect_gt(loaded, 2);
	protocol_unref(proto);
	storage_close(s);
	PQfinish(adm);
}

/* A store of another schema version is refused at open, not misread. */
/*
 * pgstore_analyze() (storage_after_load(), after safeshared -l): a table
 * the server skips with a WARNING (one the role does not own, here one
 * that is a view) is an error naming it, not a silent success.
 */
Test(pgstore, analyze_a_table_skipped_is_an_error)
{
	struct storage	*s;
	char		 ci[1200], err[256] = "";
	PGconn		*adm = t_pg_schema("s_analyze", ci, sizeof(ci));

	cr_assert_eq(storage_open(&s, &storage_postgresql, ci, err,
	    sizeof(err)), 0, "%s", err);
	cr_expect_eq(storage_after_load(s, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(t_pg_int(adm, "SELECT analyze_count FROM pg_stat_user_tables "
	    "WHERE relid = 'flags'::regclass"), 1);
	t_pg_run(adm, "DROP TABLE holder_batches");
	t_pg_run(adm, "CREATE VIEW holder_batches AS SELECT 'r'::text AS "
	    "request_id, 0::bigint AS first_seq, 0::bigint AS applied_at");
	cr_expect_eq(storage_after_load(s, err, sizeof(err)), -1);
	cr_expect(strstr(err, "analyze") != NULL &&
	    strstr(err, "holder_batches") != NULL, "%s", err);
	storage_close(s);
	PQfinish(adm);
}

Test(pgstore, other_schema_version_refused)
{
	char		 ci[1200], err[256] = "", id[STORE_ID_LEN + 1];
	PGconn		*adm = t_pg_schema("s_version", ci, sizeof(ci));
	struct pgstore	*pg;

	cr_assert_eq(pgstore_open(&pg, ci, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(strlen(pgstore_id(pg)), STORE_ID_LEN);
	cr_assert_gt(pgstore_created_at(pg), 0);
	snprintf(id, sizeof(id), "%s", pgstore_id(pg));
	pgstore_close(pg);
	/* Opened again: the same store, no DDL. */
	cr_assert_eq(pgstore_open(&pg, ci, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(pgstore_id(pg), id);
	pgstore_close(pg);
	/*
	 * Version 1 (before store_log, and before store_version) is brought
	 * to 3 by the open: 1 to 2, then 2 to 3.
	 */
	t_pg_run(adm, "DROP TABLE store_log");
	t_pg_run(adm, "DROP TABLE store_version");
	t_pg_run(adm, "UPDATE store_meta SET value = '1' WHERE key = 'version'");
	cr_assert_eq(pgstore_open(&pg, ci, err, sizeof(err)), 0, "%s", err);
	pgstore_close(pg);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM store_log"), 0);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM store_version"), 1);
	cr_assert_eq(t_pg_int(adm, "SELECT value::int FROM store_meta WHERE key = "
	    "'version'"), 3);
	/* Its triggers move the version: a change made by hand counts. */
	t_pg_run(adm, "INSERT INTO subjects (id, holder, person) VALUES "
	    "('V1', 'police', 1)");
	cr_assert_eq(t_pg_int(adm, "SELECT v FROM store_version"), 1);
	t_pg_run(adm, "BEGIN; DELETE FROM subjects WHERE id = 'V1'; "
	    "INSERT INTO subjects (id, holder, person) VALUES ('V1', 'police', 1); "
	    "UPDATE subjects SET holder = 'health' WHERE id = 'V1'; COMMIT");
	cr_assert_eq(t_pg_int(adm, "SELECT v FROM store_version"), 2,
	    "once per transaction");
	t_pg_run(adm, "UPDATE store_meta SET value = '4' WHERE key = 'version'");
	cr_assert_eq(pgstore_open(&pg, ci, err, sizeof(err)), -1);
	cr_assert_null(pg);
	cr_assert(strstr(err, "schema version") != NULL, "%s", err);
	t_pg_run(adm, "DELETE FROM store_meta WHERE key = 'version'");
	cr_assert_eq(pgstore_open(&pg, ci, err, sizeof(err)), -1);
	cr_assert(strstr(err, "schema version is missing") != NULL, "%s", err);
	PQfinish(adm);
}

/* A handle used by a thread of the test: one call, its answer kept. */
struct worker {
	struct pgstore	*pg;
	const char	*conninfo;
	int		 (*fn)(struct worker *);
	const char	*subject, *holder, *nhs;
	int		 rc;
	char		 err[256];
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	w->rc = w->fn(w);
	return NULL;
}

/* In one transaction: link the worker's NHS number to its subject. */
static int
w_link(struct worker *w)
{
	int rc;

	if (pgstore_begin(w->pg, w->err, sizeof(w->err)) == -1)
		return -2;
	if ((rc = pgstore_person_link_nhs(w->pg, w->subject, w->nhs, w->err,
	    sizeof(w->err))) == -1 || pgstore_commit(w->pg, w->err,
	    sizeof(w->err)) == -1) {
		pgstore_rollback(w->pg);
		return -1;
	}
	return rc;
}

/* In one transaction: the worker's holder puts a person record. */
static int
w_put(struct worker *w)
{
	const char *names[2] = { "full_name", "postcode" };
	const char *values[2] = { "Ann Racing", "AB1 2CD" };

	if (pgstore_begin(w->pg, w->err, sizeof(w->err)) == -1)
		return -2;
	if (pgstore_put_record(w->pg, w->subject, "person", w->holder, 1700000000,
	    names, values, 2, w->err, sizeof(w->err)) == -1 ||
	    pgstore_commit(w->pg, w->err, sizeof(w->err)) == -1) {
		pgstore_rollback(w->pg);
		return -1;
	}
	return 0;
}

static int
w_open(struct worker *w)
{
	return pgstore_open(&w->pg, w->conninfo, w->err, sizeof(w->err));
}

/*
 * Whether the server process pid waits for a lock; polled for at most
 * 10 s (the other transaction holds it until the test commits).
 */
static int
waits_for_lock(PGconn *adm, int pid)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_locks WHERE pid = %d "
	    "AND NOT granted", pid);
	for (int i = 0; i < 400; i++) {
		struct timespec ts = { 0, 25 * 1000 * 1000 };

		if (t_pg_int(adm, sql) > 0)
			return 1;
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* Ends the server process pid, as a server restart would (waits up to 5 s). */
static void
terminate_backend(PGconn *adm, int pid)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d, 5000)", pid);
	t_pg_run(adm, sql);
}

static int64_t
person(struct pgstore *pg, const char *subject)
{
	int64_t	p = 0;
	char	err[256] = "";

	cr_assert_eq(pgstore_person_of(pg, subject, &p, err, sizeof(err)), 1,
	    "%s: %s", subject, err);
	return p;
}

/*
 * Two daemons link one NHS number to two holders' views at once: the
 * second waits for the first and ends in the same person (D18). Without
 * the number's lock each would see no other view and stay a person of
 * its own.
 */
Test(pgstore, two_links_of_one_number_make_one_person)
{
	char		 ci[1200], err[256] = "";
	PGconn		*adm = t_pg_schema("s_race_nhs", ci, sizeof(ci));
	struct pgstore	*a = t_pgstore_open(ci);
	struct worker	 w = { 0 };
	pthread_t	 th;
	int		 waited;

	t_pgstore_put_person(a, "H1", "health_trust");
	t_pgstore_put_person(a, "C1", "childrens_social_care");
	w.pg = t_pgstore_open(ci);
	w.fn = w_link;
	w.subject = "C1";
	w.nhs = "9434765919";
	cr_assert_eq(pgstore_begin(a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_person_link_nhs(a, "H1", "9434765919", err,
	    sizeof(err)), 1, "%s", err);
	cr_assert_eq(pthread_create(&th, NULL, worker_main, &w), 0);
	waited = waits_for_lock(adm, pgstore_backend_pid(w.pg));
	cr_assert_eq(pgstore_commit(a, err, sizeof(err)), 0, "%s", err);
	pthread_join(th, NULL);
	cr_assert_eq(w.rc, 1, "second link: %d %s", w.rc, w.err);
	cr_expect(waited, "the second link did not wait for the first");
	cr_assert_eq(person(a, "H1"), person(a, "C1"), "two persons with one "
	    "NHS number");
	cr_assert_eq(t_pg_int(adm, "SELECT count(DISTINCT person) FROM subjects "
	    "WHERE nhs_number = '9434765919'"), 1);
	pgstore_close(w.pg);
	pgstore_close(a);
	PQfinish(adm);
}

/*
 * Two daemons link the same subject to the same number at once: its row
 * is locked, so the second sees the first's link and changes nothing
 * (answers 0, as SQLite would one after the other).
 */
Test(pgstore, two_links_of_one_subject_change_it_once)
{
	char		 ci[1200], err[256] = "";
	PGconn		*adm = t_pg_schema("s_race_subject", ci, sizeof(ci));
	struct pgstore	*a = t_pgstore_open(ci);
	struct worker	 w = { 0 };
	pthread_t	 th;
	int		 waited;

	t_pgstore_put_person(a, "H1", "health_trust");
	t_pgstore_put_person(a, "H2", "health_trust");
	w.pg = t_pgstore_open(ci);
	w.fn = w_link;
	w.subject = "H1";
	w.nhs = "9434765919";
	cr_assert_eq(pgstore_begin(a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_person_link_nhs(a, "H1", "9434765919", err,
	    sizeof(err)), 1, "%s", err);
	cr_assert_eq(pthread_create(&th, NULL, worker_main, &w), 0);
	waited = waits_for_lock(adm, pgstore_backend_pid(w.pg));
	cr_assert_eq(pgstore_commit(a, err, sizeof(err)), 0, "%s", err);
	pthread_join(th, NULL);
	cr_expect(waited, "the second link did not wait for the first");
	cr_assert_eq(w.rc, 0, "second link of the same number: %d %s", w.rc, w.err);
	/* And a second view of that person by the same holder is refused. */
	cr_assert_eq(pgstore_person_link_nhs(a, "H2", "9434765919", err,
	    sizeof(err)), -1);
	cr_assert_str_eq(err, "this holder already holds the person with that NHS "
	    "number under another local id");
	pgstore_close(w.pg);
	pgstore_close(a);
	PQfinish(adm);
}

/*
 * Two daemons create one new subject id for two holders at once: the
 * second waits, then is refused (its batch fails whole), so no record is
 * written under a subject another holder owns (D1).
 */
Test(pgstore, new_subject_raced_by_two_holders_stays_the_first)
{
	char		 ci[1200], err[256] = "";
	PGconn		*adm = t_pg_schema("s_race_put", ci, sizeof(ci));
	struct pgstore	*a = t_pgstore_open(ci);
	struct worker	 w = { 0 };
	pthread_t	 th;

	w.pg = t_pgstore_open(ci);
	w.fn = w_put;
	w.subject = "N1";
	w.holder = "childrens_social_care";
	cr_assert_eq(pgstore_begin(a, err, sizeof(err)), 0, "%s", err);
	t_pgstore_put_person(a, "N1", "health_trust");
	/*
	 * A put's statements are queued until the transaction's next read
	 * (pgstore_pipe.c): one makes sure the server has them before the
	 * other holder's put starts.
	 */
	cr_assert_eq(pgstore_flag_active(a, "N1", "domestic_abuse", err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(pthread_create(&th, NULL, worker_main, &w), 0);
	cr_expect(waits_for_lock(adm, pgstore_backend_pid(w.pg)));
	cr_assert_eq(pgstore_commit(a, err, sizeof(err)), 0, "%s", err);
	pthread_join(th, NULL);
	cr_assert_eq(w.rc, -1, "the second holder's put was not refused");
	cr_assert_str_eq(w.err, "subject N1 is held by another agency");
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM records WHERE holder <> "
	    "'health_trust'"), 0);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM record_fields WHERE "
	    "value = 'Ann Racing'"), 0);
	pgstore_close(w.pg);
	pgstore_close(a);
	PQfinish(adm);
}

/*
 * A put racing a delete of the same record: they queue on the record's
 * row, and the store ends with the put's record and exactly its fields
 * (no fields without a record, none of the old ones).
 */
Test(pgstore, put_racing_a_delete_leaves_one_whole_record)
{
	char		 ci[1200], err[256] = "";
	PGconn		*adm = t_pg_schema("s_race_delete", ci, sizeof(ci));
	struct pgstore	*a = t_pgstore_open(ci);
	struct worker	 w = { 0 };
	pthread_t	 th;

	t_pgstore_put_person(a, "S1", "health_trust");
	w.pg = t_pgstore_open(ci);
	w.fn = w_put;
	w.subject = "S1";
	w.holder = "health_trust";
	cr_assert_eq(pgstore_begin(a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pgstore_delete_record(a, "S1", "person", err, sizeof(err)), 1,
	    "%s", err);
	cr_assert_eq(pthread_create(&th, NULL, worker_main, &w), 0);
	cr_expect(waits_for_lock(adm, pgstore_backend_pid(w.pg)));
	cr_assert_eq(pgstore_commit(a, err, sizeof(err)), 0, "%s", err);
	pthread_join(th, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.err);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM records"), 1);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM record_fields"), 2);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM record_fields WHERE "
	    "value = 'Ann Example'"), 0);
	pgstore_close(w.pg);
	pgstore_close(a);
	PQfinish(adm);
}

/*
 * The server process of an idle handle terminated (as by a server
 * restart): the next read is answered, on a new connection with its
 * statements prepared again, and so is a read scope after it. The
 * server processes are terminated while the handle is idle, so the
 * handle learns it only from the read that fails.
 */
Test(pgstore, reconnects_after_the_server_process_dies)
{
	char			 ci[1200], err[256] = "";
	PGconn			*adm = t_pg_schema("s_reconnect", ci, sizeof(ci));
	struct pgstore		*pg = t_pgstore_open(ci);
	struct store_subject	 s;
	struct diag		 d = { 0 };
	struct protocol		*proto;
	const struct record_type *rt;
	int			 pid = pgstore_backend_pid(pg);

	proto = protocol_load(SOURCE_DIR "/config/protocol.yaml", 0, &d);
	cr_assert_not_null(proto);
	diag_free(&d);
	rt = protocol_record_type(proto, "person");
	t_pgstore_put_person(pg, "S1", "health_trust");
	for (int round = 0; round < 2; round++) {
		terminate_backend(adm, pid);
		if (round == 0) {
			char holder[64];

			/* One statement: it fails on the dead connection and is run anew. */
			cr_assert_eq(pgstore_subject_holder(pg, "S1", holder,
			    sizeof(holder), err, sizeof(err)), 1, "%s", err);
			cr_assert_str_eq(holder, "health_trust");
		} else
			pgstore_read_begin(pg);
		cr_assert_eq(pgstore_subject(pg, rt, "S1", "police", "child_protection",
		    &s, err, sizeof(err)), 0, "round %d: %s", round, err);
		cr_assert(s.view.known);
		cr_assert_str_eq(s.holder, "health_trust");
		store_subject_free(&s);
		pgstore_read_end(pg);
		cr_assert_neq(pgstore_backend_pid(pg), pid);
		pid = pgstore_backend_pid(pg);
	}
	protocol_unref(proto);
	pgstore_close(pg);
	PQfinish(adm);
}

/* Two daemons opening one empty database at once: one schema, one store id. */
Test(pgstore, two_first_opens_make_one_store)
{
	char		 ci[1200];
	PGconn		*adm = t_pg_schema("s_first_open", ci, sizeof(ci));
	struct worker	 w[2];
	pthread_t	 th[2];

	for (int i = 0; i < 2; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].conninfo = ci;
		w[i].fn = w_open;
		cr_assert_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(w[i].rc, 0, "open %d: %s", i, w[i].err);
	}
	cr_assert_str_eq(pgstore_id(w[0].pg), pgstore_id(w[1].pg));
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM store_meta"), 3);
	pgstore_close(w[0].pg);
	pgstore_close(w[1].pg);
	PQfinish(adm);
}

/*
 * The server process terminated inside an open read scope, so that the
 * disclosure path's four reads, sent together in one pipeline
 * (pgstore_run_reads()), are what find the connection dead: they are run
 * once more on a new connection and answered, and the handle serves the
 * next scope too.
 */
Test(pgstore, pipelined_reads_survive_a_dead_server_process)
{
	char			 ci[1200], err[256] = "";
	PGconn			*adm = t_pg_schema("s_pipe", ci, sizeof(ci));
	struct pgstore		*pg = t_pgstore_open(ci);
	struct store_subject	 s;
	struct diag		 d = { 0 };
	struct protocol		*proto;
	const struct record_type *rt;
	int			 pid = pgstore_backend_pid(pg);

	proto = protocol_load(SOURCE_DIR "/config/protocol.yaml", 0, &d);
	cr_assert_not_null(proto);
	diag_free(&d);
	rt = protocol_record_type(proto, "person");
	t_pgstore_put_person(pg, "S1", "health_trust");
	pgstore_read_begin(pg);
	terminate_backend(adm, pid);
	cr_assert_eq(pgstore_subject(pg, rt, "S1", "police", "child_protection",
	    &s, err, sizeof(err)), 0, "%s", err);
	cr_assert(s.view.known);
	cr_assert_str_eq(s.holder, "health_trust");
	store_subject_free(&s);
	pgstore_read_end(pg);
	cr_assert_neq(pgstore_backend_pid(pg), pid);
	for (int i = 0; i < 2; i++) {
		pgstore_read_begin(pg);
		cr_assert_eq(pgstore_subject(pg, rt, i ? "nobody" : "S1", "police",
		    "child_protection", &s, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(s.view.known, !i);
		store_subject_free(&s);
		pgstore_read_end(pg);
	}
	protocol_unref(proto);
	pgstore_close(pg);
	PQfinish(adm);
}

struct got { int calls, rc; };

static void
got_cb(int rc, const char *err, void *arg)
{
	(void)err;
	((struct got *)arg)->calls++;
	((struct got *)arg)->rc = rc;
}

/*
 * A loop round's batch (pgstore_batch.c) with one request the server
 * refuses (a subject that is not UTF-8): the statement fails, so every
 * request of the round gets -1 and an empty answer, nothing to release
 * (D7). A read scope wanted by the round is not begun by its batch: the
 * session stays idle, no BEGIN and COMMIT for a round of batched reads.
 */
Test(pgstore, a_batch_with_one_bad_read_fails_whole_and_begins_no_scope)
{
	char			 ci[1200], err[256] = "", sql[128];
	PGconn			*adm = t_pg_schema("s_batch", ci, sizeof(ci));
	struct pgstore		*pg = t_pgstore_open(ci);
	const char		*subj[3] = { "S1", "S\xff", "S1" };
	struct store_subject	 s[3];
	struct got		 g[3] = { { 0, 0 } };
	struct diag		 d = { 0 };
	struct protocol		*proto;
	const struct record_type *rt;

	proto = protocol_load(SOURCE_DIR "/config/protocol.yaml", 0, &d);
	cr_assert_not_null(proto);
	diag_free(&d);
	rt = protocol_record_type(proto, "person");
	t_pgstore_put_person(pg, "S1", "health_trust");
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity WHERE "
	    "pid = %d AND state = 'idle'", pgstore_backend_pid(pg));
	pgstore_read_begin(pg);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pgstore_subject_queue(pg, rt, subj[i], "police",
		    "child_protection", &s[i], got_cb, &g[i], err, sizeof(err)), 1);
	pgstore_batch_run(pg);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(g[i].calls, 1);
		cr_assert_eq(g[i].rc, -1, "request %d was answered", i);
		cr_assert(!s[i].view.known && s[i].holder == NULL &&
		    s[i].nflags == 0 && s[i].values[0] == NULL);
	}
	cr_assert_eq(t_pg_int(adm, sql), 1, "the wanted scope was begun");
	/* The next round's batch, without the bad one, reads. */
	cr_assert_eq(pgstore_subject_queue(pg, rt, "S1", "police",
	    "child_protection", &s[0], got_cb, &g[0], err, sizeof(err)), 1);
	pgstore_batch_run(pg);
	cr_assert_eq(g[0].rc, 0);
	cr_assert_str_eq(s[0].holder, "health_trust");
	store_subject_free(&s[0]);
	pgstore_read_end(pg);
	protocol_unref(proto);
	pgstore_close(pg);
	PQfinish(adm);
}
