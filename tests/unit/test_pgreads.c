/*
 * The event loop's disclosure reads on PostgreSQL without waiting (issue
 * 19, src/pgstore_batch.c, docs/deploy-ha.md "The disclosure reads"): a
 * round's queued reads are sent on a connection of their own and answered
 * when its socket is readable; reads queued meanwhile wait for that answer
 * and go together in the next statement; a connection that dies under a
 * statement is opened again and the reads sent once more; a statement the
 * server refuses fails its whole batch, nothing to release (D7). Consent
 * and flags are read by the statement sent after the request, never kept
 * (D3, D12). Against the fixture's cluster ("pg"), a schema of its own per
 * test; without PostgreSQL the tests skip, saying why.
 */
#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstore.h"
#include "pgstore_int.h"
#include "protocol.h"
#include "t_pg.h"

struct got {
	int	calls, rc;
	char	err[256];
};

static void
got_cb(int rc, const char *err, void *arg)
{
	struct got *g = arg;

	g->calls++;
	g->rc = rc;
	snprintf(g->err, sizeof(g->err), "%s", err != NULL ? err : "");
}

/* A handle whose queued reads go on a connection of their own. */
static struct pgstore *
open_apart(const char *ci)
{
	struct pgstore	*pg = t_pgstore_open(ci);
	char		 err[256] = "";

	cr_assert_eq(pgstore_reads_apart(pg, err, sizeof(err)), 0, "%s", err);
	return pg;
}

static struct protocol *
proto_ok(void)
{
	struct diag	 d = { 0 };
	struct protocol	*proto;

	proto = protocol_load(SOURCE_DIR "/config/protocol.yaml", 0, &d);
	cr_assert_not_null(proto);
	diag_free(&d);
	return proto;
}

static void
queue_ok(struct pgstore *pg, const struct record_type *rt, const char *subject,
    struct store_subject *s, struct got *g)
{
	char err[256] = "";

	cr_assert_eq(pgstore_subject_queue(pg, rt, subject, "police",
	    "child_protection", s, got_cb, g, err, sizeof(err)), 1, "%s", err);
}

/* Waits (at most 10 s) for the socket, then takes what came. */
static void
input(struct pgstore *pg)
{
	struct pollfd pfd = { .fd = pgstore_batch_fd(pg), .events = POLLIN };

	cr_assert_geq(pfd.fd, 0, "nothing in flight");
	cr_assert_eq(poll(&pfd, 1, 10000), 1, "no answer within 10 s");
	pgstore_batch_input(pg);
}

/*
 * Three reads sent, not waited for: no callback until the answer is taken.
 * Two more queued meanwhile are not sent (one statement in flight); once
 * the first answer is taken they are sent together, and a flag set in
 * between is in their answer (D12: read after the request, not kept).
 */
Test(pgreads, a_round_is_sent_and_answered_later_and_the_next_waits_its_turn)
{
	char			 ci[1200], err[256] = "";
	PGconn			*adm = t_pg_schema("r_async", ci, sizeof(ci));
	struct pgstore		*pg = open_apart(ci);
	struct protocol		*proto = proto_ok();
	const struct record_type *rt = protocol_record_type(proto, "person");
	const char		*subj[5] = { "S1", "S2", "S9", "S1", "S2" };
	struct store_subject	 s[5];
	struct got		 g[5];

	memset(g, 0, sizeof(g));
	t_pgstore_put_person(pg, "S1", "health_trust");
	t_pgstore_put_person(pg, "S2", "police");
	cr_assert_eq(pgstore_batch_fd(pg), -1);
	for (int i = 0; i < 3; i++)
		queue_ok(pg, rt, subj[i], &s[i], &g[i]);
	pgstore_batch_send(pg);
	cr_assert_geq(pgstore_batch_fd(pg), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(g[i].calls, 0, "answered before the answer came");
	for (int i = 3; i < 5; i++)
		queue_ok(pg, rt, subj[i], &s[i], &g[i]);
	pgstore_batch_send(pg);		/* the first is still in flight */
	/* Written on the handle's own connection while the reads fly. */
	cr_assert_eq(pgstore_set_flag(pg, "S2", "domestic_abuse", "police", 100,
	    err, sizeof(err)), 0, "%s", err);
	while (g[0].calls == 0)
		input(pg);
	for (int i = 0; i < 3; i++)
		cr_assert(g[i].calls == 1 && g[i].rc == 0, "%d: %s", i, g[i].err);
	cr_assert(s[0].view.known && strcmp(s[0].holder, "health_trust") == 0);
	cr_assert(s[1].view.known && strcmp(s[1].holder, "police") == 0);
	cr_assert(!s[2].view.known);
	cr_assert_eq(g[3].calls, 0);
	/* The two queued meanwhile went as soon as the first was answered. */
	cr_assert_geq(pgstore_batch_fd(pg), 0);
	while (g[3].calls == 0)
		input(pg);
	cr_assert_eq(pgstore_batch_fd(pg), -1);
	cr_assert(g[3].rc == 0 && g[4].calls == 1 && g[4].rc == 0);
	cr_assert_eq(s[4].nflags, 1);
	cr_assert_str_eq(s[4].flags[0], "domestic_abuse");
	for (int i = 0; i < 5; i++)
		store_subject_free(&s[i]);
	protocol_unref(proto);
	pgstore_close(pg);
	PQfinish(adm);
}

/*
 * The reading connection's server process terminated while the handle
 * waits: the batch is sent again once on a new connection and answered;
 * then a batch the server refuses (a subject that is not UTF-8) fails
 * whole, every request -1 and empty, and the next one reads again.
 */
Test(pgreads, a_lost_connection_is_sent_again_and_a_refused_batch_fails_whole)
{
	char			 ci[1200];
	PGconn			*adm = t_pg_schema("r_lost", ci, sizeof(ci));
	struct pgstore		*pg = open_apart(ci);
	struct protocol		*proto = proto_ok();
	const struct record_type *rt = protocol_record_type(proto, "person");
	const char		*bad[2] = { "S1", "S\xff" };
	struct store_subject	 s[2];
	struct got		 g[2];

	memset(g, 0, sizeof(g));
	t_pgstore_put_person(pg, "S1", "health_trust");
	/* One read makes the connection and its statements. */
	queue_ok(pg, rt, "S1", &s[0], &g[0]);
	pgstore_batch_run(pg);
	cr_assert(g[0].calls == 1 && g[0].rc == 0, "%s", g[0].err);
	store_subject_free(&s[0]);

	t_pg_terminate(adm, PQbackendPID(pg->rd->conn));
	memset(g, 0, sizeof(g));
	queue_ok(pg, rt, "S1", &s[0], &g[0]);
	pgstore_batch_send(pg);
	while (g[0].calls == 0)
		input(pg);
	cr_assert_eq(g[0].rc, 0, "%s", g[0].err);
	cr_assert_str_eq(s[0].holder, "health_trust");
	store_subject_free(&s[0]);

	memset(g, 0, sizeof(g));
	for (int i = 0; i < 2; i++)
		queue_ok(pg, rt, bad[i], &s[i], &g[i]);
	pgstore_batch_send(pg);
	while (g[0].calls == 0)
		input(pg);
	for (int i = 0; i < 2; i++) {
		cr_assert(g[i].calls == 1 && g[i].rc == -1, "request %d", i);
		cr_assert(strstr(g[i].err, "PostgreSQL store: ") == g[i].err, "%s",
		    g[i].err);
		cr_assert(!s[i].view.known && s[i].holder == NULL &&
		    s[i].nflags == 0 && s[i].values[0] == NULL);
	}
	cr_assert_eq(pgstore_batch_fd(pg), -1);
	memset(g, 0, sizeof(g));
	queue_ok(pg, rt, "S1", &s[0], &g[0]);
	pgstore_batch_run(pg);
	cr_assert_eq(g[0].rc, 0, "%s", g[0].err);
	store_subject_free(&s[0]);
	protocol_unref(proto);
	pgstore_close(pg);
	PQfinish(adm);
}

/* S1's full_name as the queued read of s answered it (queue, run, check). */
static const char *
read_name(struct pgstore *pg, const struct record_type *rt,
    struct store_subject *s)
{
	struct got	g = { 0 };
	size_t		idx;

	queue_ok(pg, rt, "S1", s, &g);
	pgstore_batch_run(pg);
	cr_assert(g.calls == 1 && g.rc == 0, "%s", g.err);
	cr_assert(s->view.known);
	cr_assert_not_null(record_type_field(rt, "full_name", &idx));
	return s->values[idx];
}

/*
 * The loop's subject-read cache on PostgreSQL: a read kept is answered
 * from memory only when the statement sent with it shows the store's
 * version unchanged. A change made by hand on another connection (its
 * trigger moves the version) or a consent withdrawn through the handle
 * (D3) is read by the next request, and a read held by a request
 * outlives the cache's flush.
 */
Test(pgreads, a_kept_read_serves_until_the_store_changes)
{
	char			 ci[1200], err[256] = "";
	PGconn			*adm = t_pg_schema("r_cache", ci, sizeof(ci));
	struct pgstore		*pg = open_apart(ci);
	struct protocol		*proto = proto_ok();
	const struct record_type *rt = protocol_record_type(proto, "person");
	struct store_subject	 held, s;
	struct store_cache_stats cs;

	t_pgstore_put_person(pg, "S1", "health_trust");
	cr_assert_str_eq(read_name(pg, rt, &held), "Ann Example");
	cr_assert_str_eq(read_name(pg, rt, &s), "Ann Example");
	store_subject_free(&s);
	pgstore_cache_stats(pg, &cs);
	cr_expect_eq(cs.misses, 1);
	cr_expect_eq(cs.hits, 1, "the second read is kept");

	t_pg_run(adm, "UPDATE record_fields SET value = 'Ann Changed' "
	    "WHERE subject = 'S1' AND field = 'full_name'");
	cr_assert_str_eq(read_name(pg, rt, &s), "Ann Changed",
	    "not the kept read");
	store_subject_free(&s);
	cr_assert_str_eq(read_name(pg, rt, &s), "Ann Changed");
	cr_expect_eq(s.view.consent, CONSENT_NONE);
	store_subject_free(&s);
	cr_assert_str_eq(held.holder, "health_trust", "held across the flush");
	store_subject_free(&held);

	cr_assert_eq(pgstore_add_consent(pg, "S1", CONSENT_WITHDRAWN, "*", "*", 0,
	    0, "x", 200, err, sizeof(err)), 0, "%s", err);
	read_name(pg, rt, &s);
	cr_expect_eq(s.view.consent, CONSENT_WITHDRAWN, "D3: read after the write");
	store_subject_free(&s);
	pgstore_cache_stats(pg, &cs);
	cr_expect_geq(cs.flushes, 2);

	/* Closed with a kept read in flight: its reference goes too (LSan). */
	{
		struct got g = { 0 };

		read_name(pg, rt, &s);
		store_subject_free(&s);
		queue_ok(pg, rt, "S1", &s, &g);
		pgstore_batch_send(pg);
		cr_assert_geq(pgstore_batch_fd(pg), 0);
		pgstore_close(pg);
		cr_assert_eq(g.calls, 0);
		store_subject_free(&s);
	}
	protocol_unref(proto);
	PQfinish(adm);
}
