/*
 * The disclosure log on PostgreSQL (src/pglog.c, issue 19) against a real
 * server: the throwaway cluster of tests/pg/pgcluster.sh (ctest fixture
 * "pg"). Each test works in a schema of its own, so they run in parallel.
 * Without PostgreSQL the tests skip, saying why -- except under CI=true,
 * where that fails.
 */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <openssl/evp.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "audit_int.h"
#include "merkle.h"
#include "pglog.h"
#include "t_pg.h"

#define MAXBATCH	64

static EVP_PKEY *
new_key(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

	cr_assert_not_null(k);
	return k;
}

/* A batch of n entries, each with a request id naming writer w and its number. */
struct batch {
	struct audit_entry	 e[MAXBATCH];
	struct audit_entry	*ep[MAXBATCH];
	char			 rid[MAXBATCH][32];
};

static void
batch_fill(struct batch *b, size_t n, int w, int first)
{
	cr_assert(n <= MAXBATCH);
	memset(b, 0, sizeof(*b));
	for (size_t i = 0; i < n; i++) {
		snprintf(b->rid[i], sizeof(b->rid[i]), "w%d-%d", w, first + (int)i);
		b->e[i].time = 1700000000 + first + (int64_t)i;
		b->e[i].kind = "disclosure";
		b->e[i].agency = w == 1 ? "police-north" : "council-east";
		b->e[i].purpose = "safeguarding";
		b->e[i].decision = "allow";
		b->e[i].subject = "subject-1";
		b->e[i].request_id = b->rid[i];
		b->ep[i] = &b->e[i];
	}
}

static void
append_ok(struct pglog *pl, struct batch *b, size_t n, struct audit_receipt *rc)
{
	char err[256] = "";

	cr_assert_eq(pglog_append(pl, b->ep, n, rc, err, sizeof(err)), 0,
	    "append: %s", err);
}

static void
verify_ok(struct pglog *pl, EVP_PKEY *key, uint64_t entries, uint64_t checkpoints)
{
	struct audit_verify_result res;

	cr_assert_eq(pglog_verify(pl, key, &res), 0, "verify: %s", res.why);
	cr_assert(res.ok);
	cr_assert_eq(res.entries, entries, "%" PRIu64 " entries verified, %" PRIu64
	    " expected", res.entries, entries);
	cr_assert_eq(res.checkpoints, checkpoints);
}

/*
 * One writer: batches of 1..50 entries chain, every commit is a signed
 * checkpoint with consecutive numbers, each receipt's inclusion proof
 * holds in its note's tree, and verify catches an edited entry (D7, D16).
 */
Test(pglog, one_writer_chain_tree_receipts)
{
	char			 ci[1200], err[256];
	PGconn			*adm = t_pg_schema("t_one", ci, sizeof(ci));
	struct pglog		*pl;
	EVP_PKEY		*key = new_key();
	static struct batch	 b;
	static struct audit_receipt rc[MAXBATCH];
	struct audit_verify_result res;
	uint64_t		 size = 0, total = 0;
	unsigned char		 id[16];
	int			 k = 0;

	cr_assert_eq(pglog_open(&pl, ci, err, sizeof(err)), 0, "%s", err);
	pglog_set_signer(pl, key);
	for (int i = 0; i < 20; i++) {
		size_t n = 1 + (size_t)(i * 7) % 50;

		batch_fill(&b, n, 1, k);
		append_ok(pl, &b, n, rc);
		for (size_t j = 0; j < n; j++) {
			struct cpnote	 c;
			char		 why[128];

			cr_assert_eq(b.e[j].seq, total + j + 1);
			cr_assert_eq(rc[j].seq, b.e[j].seq);
			cr_assert_eq(audit_note_parse(rc[j].checkpoint, &c, why,
			    sizeof(why)), 0, "%s", why);
			cr_assert_eq(c.size, total + n);
			cr_assert_eq(c.n, (uint64_t)i + 1);
			cr_assert_eq(merkle_verify_inclusion(rc[j].seq - 1, c.size,
			    rc[j].leaf, (const uint8_t (*)[32])rc[j].proof, rc[j].nproof,
			    c.root), 0, "receipt of entry %" PRIu64, rc[j].seq);
		}
		total += n;
		k += (int)n;
	}
	cr_assert_eq(pglog_head(pl, &size, id, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(size, total);
	verify_ok(pl, key, total, 20);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM log_tree"), (long long)
	    (total / 16 + total / 256));

	/* An entry edited in the database no longer matches its hash. */
	t_pg_run(adm, "UPDATE log_entries SET purpose = 'edited' WHERE seq = 7");
	cr_assert_eq(pglog_verify(pl, key, &res), -1);
	cr_assert_eq(res.bad_seq, 7, "bad_seq %" PRIu64 ": %s", res.bad_seq, res.why);
	/* Without the key, checkpoints are not a pass either. */
	t_pg_run(adm, "UPDATE log_entries SET purpose = 'safeguarding' WHERE seq = 7");
	cr_assert_eq(pglog_verify(pl, NULL, &res), -1);
	verify_ok(pl, key, total, 20);
	/* A head moved past the entries is caught. */
	t_pg_run(adm, "UPDATE log_head SET size = size + 1");
	cr_assert_eq(pglog_verify(pl, key, &res), -1);
	cr_assert(strstr(res.why, "head") != NULL, "%s", res.why);

	pglog_close(pl);
	EVP_PKEY_free(key);
	PQfinish(adm);
}

struct writer {
	const char	*conninfo;
	EVP_PKEY	*key;
	int		 id;
	int		 batches;
	int		 per;
	int		 failed;
	char		 err[256];
};

static void *
writer_main(void *arg)
{
	struct writer	*w = arg;
	struct pglog	*pl;
	struct batch	*b = calloc(1, sizeof(*b));

	if (b == NULL || pglog_open(&pl, w->conninfo, w->err, sizeof(w->err)) == -1) {
		w->failed = 1;
		free(b);
		return NULL;
	}
	pglog_set_signer(pl, w->key);
	for (int i = 0; i < w->batches && !w->failed; i++) {
		batch_fill(b, (size_t)w->per, w->id, i * w->per);
		if (pglog_append(pl, b->ep, (size_t)w->per, NULL, w->err,
		    sizeof(w->err)) == -1)
			w->failed = 1;
	}
	pglog_close(pl);
	free(b);
	return NULL;
}

/*
 * An auditor verifying while the daemons append: each verify reads one
 * snapshot, so it must pass whatever moment it starts at.
 */
struct verifier {
	const char	*conninfo;
	EVP_PKEY	*key;
	atomic_int	 stop;		/* set by the test's thread */
	int		 failed;	/* the rest: this thread's until joined */
	int		 runs;
	char		 why[256];
};

static void *
verifier_main(void *arg)
{
	struct verifier			*v = arg;
	struct pglog			*pl;
	struct audit_verify_result	 res;

	if (pglog_open(&pl, v->conninfo, v->why, sizeof(v->why)) == -1) {
		v->failed = 1;
		return NULL;
	}
	while (!atomic_load(&v->stop) && v->runs < 20 && !v->failed) {
		if (pglog_verify(pl, v->key, &res) == -1) {
			v->failed = 1;
			snprintf(v->why, sizeof(v->why), "%s", res.why);
		}
		v->runs++;
	}
	pglog_close(pl);
	return NULL;
}

/*
 * Two daemons' writers, two connections in two threads, each opening the
 * new log at once and appending 5,000 entries in batches of 50: one chain
 * of seq 1..10,000 with no gap, every entry present once, 200 consecutive
 * checkpoints, and it verifies -- as it did for an auditor verifying on a
 * third connection meanwhile (up to 20 times).
 */
Test(pglog, two_writers_one_chain, .timeout = 240)
{
	char		 ci[1200], err[256];
	PGconn		*adm = t_pg_schema("t_two", ci, sizeof(ci));
	EVP_PKEY	*key = new_key();
	struct writer	 w[2];
	struct verifier	 vr;
	pthread_t	 th[2], vth;
	struct pglog	*pl;

	for (int i = 0; i < 2; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].conninfo = ci;
		w[i].key = key;
		w[i].id = i + 1;
		w[i].batches = 100;
		w[i].per = 50;
		cr_assert_eq(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
	}
	memset(&vr, 0, sizeof(vr));
	vr.conninfo = ci;
	vr.key = key;
	cr_assert_eq(pthread_create(&vth, NULL, verifier_main, &vr), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		cr_assert_not(w[i].failed, "writer %d: %s", i + 1, w[i].err);
	}
	atomic_store(&vr.stop, 1);
	pthread_join(vth, NULL);
	cr_assert_not(vr.failed, "verify during the appends: %s", vr.why);
	cr_assert_gt(vr.runs, 0);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM log_entries"), 10000);
	cr_assert_eq(t_pg_int(adm, "SELECT min(seq) FROM log_entries"), 1);
	cr_assert_eq(t_pg_int(adm, "SELECT max(seq) FROM log_entries"), 10000);
	cr_assert_eq(t_pg_int(adm, "SELECT count(DISTINCT request_id) FROM log_entries"),
	    10000);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM log_entries WHERE request_id "
	    "LIKE 'w1-%'"), 5000);
	/* Each batch is contiguous: its 50 entries were one transaction. */
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM (SELECT request_id, seq, "
	    "lag(request_id) OVER (ORDER BY seq) AS prev FROM log_entries) x "
	    "WHERE (seq - 1) % 50 != 0 AND left(prev, 2) != left(request_id, 2)"), 0);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM log_checkpoints"), 200);
	cr_assert_eq(t_pg_int(adm, "SELECT max(n) FROM log_checkpoints"), 200);
	cr_assert_eq(pglog_open(&pl, ci, err, sizeof(err)), 0, "%s", err);
	verify_ok(pl, key, 10000, 200);
	pglog_close(pl);
	EVP_PKEY_free(key);
	PQfinish(adm);
}

struct killer {
	PGconn	*conn;
	int	 pid;
	size_t	 at;
	int	 fired;
};

/* The test hook: at entry `at` of the batch, terminate the writer's backend. */
static void
kill_backend(void *arg, size_t i)
{
	struct killer	*k = arg;

	if (i != k->at || k->fired)
		return;
	k->fired = 1;
	t_pg_terminate(k->conn, k->pid);
}

/*
 * A writer's server process terminated from a third connection halfway
 * through a 50-entry batch: the append fails, nothing of the batch is
 * there (no half batch, head unmoved), and the same handle reconnects by
 * itself and goes on at the next seq with no gap.
 */
Test(pglog, killed_mid_batch_leaves_no_gap)
{
	char			 ci[1200], err[256] = "";
	PGconn			*adm = t_pg_schema("t_kill", ci, sizeof(ci));
	EVP_PKEY		*key = new_key();
	static struct batch	 b;
	struct killer		 k;
	struct pglog		*pl;

	cr_assert_eq(pglog_open(&pl, ci, err, sizeof(err)), 0, "%s", err);
	pglog_set_signer(pl, key);
	batch_fill(&b, 10, 1, 0);
	append_ok(pl, &b, 10, NULL);

	memset(&k, 0, sizeof(k));
	k.conn = adm;
	k.pid = pglog_backend_pid(pl);
	k.at = 25;
	pglog_set_test_hook(pl, kill_backend, &k);
	batch_fill(&b, 50, 1, 10);
	cr_assert_eq(pglog_append(pl, b.ep, 50, NULL, err, sizeof(err)), -1);
	cr_assert(k.fired);
	cr_assert_neq(err[0], '\0');
	pglog_set_test_hook(pl, NULL, NULL);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM log_entries"), 10);
	cr_assert_eq(t_pg_int(adm, "SELECT max(seq) FROM log_entries"), 10);
	cr_assert_eq(t_pg_int(adm, "SELECT size FROM log_head"), 10);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM log_checkpoints"), 1);

	batch_fill(&b, 5, 1, 60);
	append_ok(pl, &b, 5, NULL);
	cr_assert_eq(b.e[0].seq, 11);
	cr_assert_eq(t_pg_int(adm, "SELECT max(seq) FROM log_entries"), 15);
	verify_ok(pl, key, 15, 2);
	pglog_close(pl);
	EVP_PKEY_free(key);
	PQfinish(adm);
}

/*
 * A batch the server refuses partway (an entry that is not UTF-8) rolls
 * back whole: the entries before it in the batch are not kept, and the
 * next batch follows the last committed entry.
 */
Test(pglog, refused_entry_aborts_whole_batch)
{
	char			 ci[1200], err[256] = "";
	PGconn			*adm = t_pg_schema("t_abort", ci, sizeof(ci));
	EVP_PKEY		*key = new_key();
	static struct batch	 b;
	struct pglog		*pl;

	cr_assert_eq(pglog_open(&pl, ci, err, sizeof(err)), 0, "%s", err);
	pglog_set_signer(pl, key);
	batch_fill(&b, 3, 2, 0);
	append_ok(pl, &b, 3, NULL);
	batch_fill(&b, 5, 2, 3);
	b.e[3].purpose = "bad \xff byte";
	cr_assert_eq(pglog_append(pl, b.ep, 5, NULL, err, sizeof(err)), -1);
	/* The reason, but not the entry's contents. */
	cr_assert(strstr(err, "insert entry") != NULL, "%s", err);
	cr_assert(strstr(err, "bad ") == NULL, "%s", err);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM log_entries"), 3);
	cr_assert_eq(t_pg_int(adm, "SELECT size FROM log_head"), 3);
	batch_fill(&b, 4, 2, 8);
	append_ok(pl, &b, 4, NULL);
	cr_assert_eq(b.e[0].seq, 4);
	verify_ok(pl, key, 7, 2);
	pglog_close(pl);
	EVP_PKEY_free(key);
	PQfinish(adm);
}

/*
 * A log of another schema version is refused at open, not misread: a
 * later one, and version 1, which lacks the readers' indexes (version 2
 * is upgraded: test_pgrotate.c).
 */
Test(pglog, other_schema_version_refused)
{
	char		 ci[1200], err[256] = "";
	PGconn		*adm = t_pg_schema("t_version", ci, sizeof(ci));
	struct pglog	*pl;

	cr_assert_eq(pglog_open(&pl, ci, err, sizeof(err)), 0, "%s", err);
	pglog_close(pl);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM pg_indexes WHERE indexname "
	    "= 'log_entries_subject' AND schemaname = current_schema()"), 1);
	for (int v = 1; v <= PGLOG_SCHEMA_VERSION + 1; v += PGLOG_SCHEMA_VERSION) {
		char sql[64];

		snprintf(sql, sizeof(sql), "UPDATE log_head SET version = %d", v);
		t_pg_run(adm, sql);
		cr_assert_eq(pglog_open(&pl, ci, err, sizeof(err)), -1, "version %d", v);
		cr_assert_null(pl);
		cr_assert(strstr(err, "schema version") != NULL, "%s", err);
	}
	PQfinish(adm);
}

/* Entry times never go back, whichever daemon's clock is behind (D7). */
Test(pglog, time_never_goes_back)
{
	char			 ci[1200], err[256] = "";
	PGconn			*adm = t_pg_schema("t_time", ci, sizeof(ci));
	static struct batch	 b;
	struct pglog		*p1, *p2;

	cr_assert_eq(pglog_open(&p1, ci, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pglog_open(&p2, ci, err, sizeof(err)), 0, "%s", err);
	batch_fill(&b, 2, 1, 0);
	b.e[0].time = b.e[1].time = 2000000000;
	append_ok(p1, &b, 2, NULL);
	batch_fill(&b, 1, 2, 0);
	b.e[0].time = 1000000000;
	append_ok(p2, &b, 1, NULL);
	cr_assert_eq(b.e[0].time, 2000000000);
	cr_assert_eq(b.e[0].seq, 3);
	cr_assert_eq(t_pg_int(adm, "SELECT time FROM log_entries WHERE seq = 3"),
	    2000000000LL);
	pglog_close(p1);
	pglog_close(p2);
	PQfinish(adm);
}

/*
 * Batches of every shape the pipelined append cuts into multi-row INSERTs
 * (src/pglog_append.c: chunks of 64, 16, 4 and 1 rows), up to the
 * daemon's largest (1,024): every entry is stored once, in seq order with
 * its own request id, the tree nodes are all there, and each receipt's
 * proof holds in its commit's tree.
 */
Test(pglog, batches_of_every_chunk_shape)
{
	static const size_t	 sizes[] = { 1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 84,
				    129, 1024 };
	char			 ci[1200], err[256] = "";
	PGconn			*adm = t_pg_schema("t_shape", ci, sizeof(ci));
	EVP_PKEY		*key = new_key();
	struct audit_entry	*e = calloc(1024, sizeof(*e));
	struct audit_entry	**ep = calloc(1024, sizeof(*ep));
	struct audit_receipt	*rc = calloc(1024, sizeof(*rc));
	char			(*rid)[32] = calloc(1024, sizeof(*rid));
	struct pglog		*pl;
	uint64_t		 total = 0;
	size_t			 nsizes = sizeof(sizes) / sizeof(sizes[0]);

	cr_assert(e != NULL && ep != NULL && rc != NULL && rid != NULL);
	cr_assert_eq(pglog_open(&pl, ci, err, sizeof(err)), 0, "%s", err);
	pglog_set_signer(pl, key);
	for (size_t s = 0; s < nsizes; s++) {
		struct cpnote	 c;
		char		 why[128];

		for (size_t i = 0; i < sizes[s]; i++) {
			memset(&e[i], 0, sizeof(e[i]));
			snprintf(rid[i], sizeof(rid[i]), "r%" PRIu64, total + i + 1);
			e[i].time = 1700000000;
			e[i].kind = "disclosure";
			e[i].agency = "police-north";
			e[i].justification = "quote \" and back\\slash, {braces}, 'single'";
			e[i].request_id = rid[i];
			ep[i] = &e[i];
		}
		cr_assert_eq(pglog_append(pl, ep, sizes[s], rc, err, sizeof(err)), 0,
		    "batch of %zu: %s", sizes[s], err);
		for (size_t i = 0; i < sizes[s]; i++) {
			cr_assert_eq(e[i].seq, total + i + 1);
			cr_assert_eq(audit_note_parse(rc[i].checkpoint, &c, why,
			    sizeof(why)), 0, "%s", why);
			cr_assert_eq(merkle_verify_inclusion(rc[i].seq - 1, c.size,
			    rc[i].leaf, (const uint8_t (*)[32])rc[i].proof, rc[i].nproof,
			    c.root), 0, "receipt of entry %" PRIu64, rc[i].seq);
		}
		total += sizes[s];
	}
	verify_ok(pl, key, total, nsizes);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM log_entries WHERE "
	    "request_id = 'r' || seq"), (long long)total);
	cr_assert_eq(t_pg_int(adm, "SELECT count(DISTINCT justification) FROM "
	    "log_entries"), 1);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM log_tree"), (long long)
	    (total / 16 + total / 256));
	pglog_close(pl);
	EVP_PKEY_free(key);
	free(e);
	free(ep);
	free(rc);
	free(rid);
	PQfinish(adm);
}

/*
 * An entry the server refuses in a later INSERT of a batch, after a
 * 64-row INSERT of the same batch has succeeded: the whole batch is rolled
 * back (nothing of it stored, the head unmoved), the reason names the
 * statement, and the handle's next batch follows the last committed entry
 * on the same connection.
 */
Test(pglog, refused_after_a_stored_chunk_rolls_back_all)
{
	char			 ci[1200], err[256] = "";
	PGconn			*adm = t_pg_schema("t_abort2", ci, sizeof(ci));
	EVP_PKEY		*key = new_key();
	struct audit_entry	*e = calloc(100, sizeof(*e));
	struct audit_entry	**ep = calloc(100, sizeof(*ep));
	struct pglog		*pl;
	int			 pid;

	cr_assert(e != NULL && ep != NULL);
	cr_assert_eq(pglog_open(&pl, ci, err, sizeof(err)), 0, "%s", err);
	pglog_set_signer(pl, key);
	pid = pglog_backend_pid(pl);
	for (size_t i = 0; i < 100; i++) {
		e[i].time = 1700000000;
		e[i].kind = "disclosure";
		e[i].request_id = "r";
		ep[i] = &e[i];
	}
	cr_assert_eq(pglog_append(pl, ep, 3, NULL, err, sizeof(err)), 0, "%s", err);
	e[90].purpose = "bad \xff byte";
	cr_assert_eq(pglog_append(pl, ep, 100, NULL, err, sizeof(err)), -1);
	cr_assert(strstr(err, "insert entry") != NULL, "%s", err);
	cr_assert(strstr(err, "bad ") == NULL, "%s", err);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM log_entries"), 3);
	cr_assert_eq(t_pg_int(adm, "SELECT size FROM log_head"), 3);
	cr_assert_eq(t_pg_int(adm, "SELECT count(*) FROM log_checkpoints"), 1);
	e[90].purpose = NULL;
	cr_assert_eq(pglog_append(pl, ep, 100, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(e[0].seq, 4);
	cr_assert_eq(pglog_backend_pid(pl), pid, "the session was not kept");
	verify_ok(pl, key, 103, 2);
	pglog_close(pl);
	EVP_PKEY_free(key);
	free(e);
	free(ep);
	PQfinish(adm);
}

struct later {
	struct pglog	*pl;
	struct batch	*b;
	size_t		 n;
	int		 rc;
	char		 err[256];
};

static void *
later_main(void *arg)
{
	struct later *l = arg;

	l->rc = pglog_append(l->pl, l->b->ep, l->n, NULL, l->err, sizeof(l->err));
	return NULL;
}

/* Whether the server process pid waits for a lock (up to 10 s). */
static int
waits_for_lock(PGconn *adm, int pid)
{
	struct timespec	ts = { 0, 10 * 1000 * 1000 };
	char		sql[160];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity WHERE "
	    "pid = %d AND wait_event_type = 'Lock'", pid);
	for (int i = 0; i < 1000; i++) {
		if (t_pg_int(adm, sql) > 0)
			return 1;
		nanosleep(&ts, NULL);
	}
	return 0;
}

/*
 * The log writer locks the head before it takes its batch
 * (pglog_lock_head(), daemon/logq.c): meanwhile another daemon's append
 * waits for it; the append that follows goes on from the head it locked,
 * and the other's comes after, one chain. A head locked and let go
 * (pglog_unlock_head()) appends nothing and lets the other daemon on.
 */
Test(pglog, head_locked_ahead_of_the_batch)
{
	char			 ci[1200], err[256] = "";
	PGconn			*adm = t_pg_schema("t_lockahead", ci, sizeof(ci));
	EVP_PKEY		*key = new_key();
	static struct batch	 b1, b2;
	struct pglog		*p1, *p2;
	struct later		 l = { 0 };
	pthread_t		 th;

	cr_assert_eq(pglog_open(&p1, ci, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pglog_open(&p2, ci, err, sizeof(err)), 0, "%s", err);
	pglog_set_signer(p1, key);
	pglog_set_signer(p2, key);
	cr_assert_eq(pglog_lock_head(p1, err, sizeof(err)), 0, "%s", err);
	batch_fill(&b2, 3, 2, 0);
	l = (struct later){ p2, &b2, 3, -1, "" };
	cr_assert_eq(pthread_create(&th, NULL, later_main, &l), 0);
	cr_assert(waits_for_lock(adm, pglog_backend_pid(p2)),
	    "the other append did not wait for the locked head");
	batch_fill(&b1, 2, 1, 0);
	append_ok(p1, &b1, 2, NULL);
	pthread_join(th, NULL);
	cr_assert_eq(l.rc, 0, "%s", l.err);
	cr_assert_eq(b1.e[0].seq, 1);
	cr_assert_eq(b1.e[1].seq, 2);
	cr_assert_eq(b2.e[0].seq, 3);
	cr_assert_eq(b2.e[2].seq, 5);

	cr_assert_eq(pglog_lock_head(p1, err, sizeof(err)), 0, "%s", err);
	pglog_unlock_head(p1);
	batch_fill(&b2, 1, 2, 3);
	append_ok(p2, &b2, 1, NULL);
	cr_assert_eq(b2.e[0].seq, 6);
	batch_fill(&b1, 1, 1, 2);
	append_ok(p1, &b1, 1, NULL);
	cr_assert_eq(b1.e[0].seq, 7);
	verify_ok(p1, key, 7, 4);
	pglog_close(p1);
	pglog_close(p2);
	EVP_PKEY_free(key);
	PQfinish(adm);
}
