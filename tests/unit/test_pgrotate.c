/*
 * Signing key rotation on the PostgreSQL log (issue 13 item 7 with several
 * daemons; src/pglog_rotate.c, logstore_pg.c): the SQLite rotation test
 * (test_audit_tamper.c key_rotation_is_a_logged_transition) through
 * logstore.h on PostgreSQL, then what several daemons on one database add:
 * one rotation however many start with the new key, and a handle still
 * holding the old key failing closed. Each handle stands for a daemon.
 * Each test works in a schema of its own on the fixture's cluster.
 */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <openssl/evp.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "audit_int.h"
#include "logstore.h"
#include "pglog.h"
#include "t_pg.h"
#include "testutil.h"

/* Two key pairs in files, as a daemon's config names them. */
static char	k1[128], p1[128], k2[128], p2[128];
static EVP_PKEY	*pk1, *pk2;

static void
keys_init(void)
{
	char err[256];

	snprintf(k1, sizeof(k1), "/tmp/safeshare-rot-%d-1.key", (int)getpid());
	snprintf(p1, sizeof(p1), "/tmp/safeshare-rot-%d-1.pub", (int)getpid());
	snprintf(k2, sizeof(k2), "/tmp/safeshare-rot-%d-2.key", (int)getpid());
	snprintf(p2, sizeof(p2), "/tmp/safeshare-rot-%d-2.pub", (int)getpid());
	t_genkey(k1, p1);
	t_genkey(k2, p2);
	cr_assert_not_null(pk1 = audit_load_public_key(p1, err, sizeof(err)), "%s", err);
	cr_assert_not_null(pk2 = audit_load_public_key(p2, err, sizeof(err)), "%s", err);
}

static void
keys_fini(void)
{
	EVP_PKEY_free(pk1);
	EVP_PKEY_free(pk2);
	unlink(k1);
	unlink(p1);
	unlink(k2);
	unlink(p2);
}

TestSuite(pgrotate, .init = keys_init, .fini = keys_fini, .timeout = 120);

/* A daemon's log: a writer handle with key (and prev, for one start). */
static struct logstore *
daemon_log(const char *ci, const char *key, const char *prev)
{
	struct logstore	*l;
	char		 err[256] = "";

	cr_assert_eq(logstore_open(&l, &logstore_postgresql, ci, LOGSTORE_WRITER,
	    err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(logstore_set_signer(l, key, 0, 0, err, sizeof(err)), 0, "%s",
	    err);
	if (prev != NULL)
		cr_assert_eq(logstore_set_previous_signer(l, prev, err, sizeof(err)),
		    0, "%s", err);
	return l;
}

static int
append(struct logstore *l, int n, char *err, size_t errlen)
{
	struct audit_entry	 e[8], *ep[8];

	cr_assert(n <= 8);
	memset(e, 0, sizeof(e));
	for (int i = 0; i < n; i++) {
		e[i].time = 1700000000 + i;
		e[i].kind = "disclosure";
		e[i].agency = "police";
		e[i].decision = "allow";
		ep[i] = &e[i];
	}
	return logstore_append(l, ep, (size_t)n, err, errlen);
}

static void
append_ok(struct logstore *l, int n)
{
	char err[256] = "";

	cr_assert_eq(append(l, n, err, sizeof(err)), 0, "%s", err);
}

/* The whole log verified from key, and optionally a trusted second key. */
static struct audit_verify_result
verify(const char *ci, EVP_PKEY *key, EVP_PKEY *also)
{
	struct audit_verify_result	 r;
	struct audit_verifier		*v;
	struct pglog			*pl;
	unsigned char			 id[16];
	uint64_t			 size;
	char				 err[256];

	memset(&r, 0, sizeof(r));
	cr_assert_eq(pglog_open_reader(&pl, ci, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pglog_head(pl, &size, id, err, sizeof(err)), 0, "%s", err);
	v = audit_verifier_new(key, id);
	if (also != NULL)
		audit_verifier_trust(v, also);
	pglog_verify_with(pl, v, &r);
	pglog_close(pl);
	return r;
}

static long long
rotations(PGconn *adm)
{
	return t_pg_int(adm, "SELECT count(*) FROM log_entries WHERE kind = "
	    "'key_rotation'");
}

/* The SQLite test's steps, on PostgreSQL: rotation is a logged transition. */
Test(pgrotate, key_rotation_is_a_logged_transition)
{
	char				 ci[1200], err[512], *note = NULL;
	PGconn				*adm = t_pg_schema("t_rot", ci, sizeof(ci));
	struct logstore			*l = daemon_log(ci, k1, NULL);
	struct audit_verify_result	 r;

	cr_assert_eq(logstore_check_start(l, 0, err, sizeof(err)), 0, "%s", err);
	append_ok(l, 3);
	logstore_close(l);
	/* Another key alone: refused, with the remedy; -t too. */
	l = daemon_log(ci, k2, NULL);
	cr_expect_eq(logstore_check_start(l, 1, err, sizeof(err)), -1);
	cr_expect(strstr(err, "audit.previous_signing_key") != NULL, "%s", err);
	cr_expect_eq(logstore_check_start(l, 0, err, sizeof(err)), -1);
	logstore_close(l);
	/* With the old key for one start: the old key signs the new one in. */
	l = daemon_log(ci, k2, k1);
	cr_assert_eq(logstore_check_start(l, 1, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(logstore_size(l), 3, "-t appends nothing");
	cr_assert_eq(logstore_check_start(l, 0, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(logstore_size(l), 4, "a key_rotation entry");
	cr_expect_eq(rotations(adm), 1);
	cr_assert_eq(logstore_checkpoint_note_upto(l, 4, &note, err, sizeof(err)),
	    0, "%s", err);
	cr_expect(strstr(note, "\nnext-key safeshare/") != NULL, "%s", note);
	/* The SQLite log's entry (audit_rotation_entry()), naming that key. */
	{
		char	 q[600], *vk = strstr(note, "\nnext-key "), *nl;

		cr_assert_not_null(vk);
		vk += strlen("\nnext-key ");
		cr_assert_not_null(nl = strchr(vk, '\n'));
		*nl = '\0';
		snprintf(q, sizeof(q), "SELECT count(*) FROM log_entries WHERE kind = "
		    "'key_rotation' AND decision = 'rotate' AND reason = "
		    "'signing_key_changed' AND justification = 'next-key %s'", vk);
		cr_expect_eq(t_pg_int(adm, q), 1, "the rotation entry naming %s", vk);
	}
	free(note);
	append_ok(l, 2);
	logstore_close(l);
	r = verify(ci, pk1, NULL);
	cr_expect(r.ok, "%s", r.why);
	cr_expect_eq(r.checkpoints, 3, "one per commit: 3 entries, the rotation, 2");
	/* The new key alone does not verify the log's beginning. */
	r = verify(ci, pk2, NULL);
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_checkpoint, 1, "%s", r.why);
	/* A trusted list works too. */
	r = verify(ci, pk2, pk1);
	cr_expect(r.ok, "%s", r.why);
	/* Restarted with the new key alone: fine; a second start rotates nothing. */
	l = daemon_log(ci, k2, NULL);
	cr_expect_eq(logstore_check_start(l, 0, err, sizeof(err)), 0, "%s", err);
	logstore_close(l);
	l = daemon_log(ci, k2, k1);
	cr_expect_eq(logstore_check_start(l, 0, err, sizeof(err)), 0, "%s", err);
	logstore_close(l);
	cr_expect_eq(rotations(adm), 1);
	PQfinish(adm);
}

/*
 * Right after the rotation, before any other commit: the last checkpoint
 * is the old key's (naming the new one); a daemon with the new key alone
 * starts, one with the old key alone does not.
 */
Test(pgrotate, right_after_the_rotation_the_new_key_alone_starts)
{
	char		 ci[1200], err[512];
	PGconn		*adm = t_pg_schema("t_rot_after", ci, sizeof(ci));
	struct logstore	*l = daemon_log(ci, k1, NULL);

	append_ok(l, 2);
	logstore_close(l);
	l = daemon_log(ci, k2, k1);
	cr_assert_eq(logstore_check_start(l, 0, err, sizeof(err)), 0, "%s", err);
	logstore_close(l);
	l = daemon_log(ci, k2, NULL);
	cr_expect_eq(logstore_check_start(l, 1, err, sizeof(err)), 0, "%s", err);
	logstore_close(l);
	l = daemon_log(ci, k1, NULL);
	cr_expect_eq(logstore_check_start(l, 1, err, sizeof(err)), -1);
	cr_expect(strstr(err, PGLOG_ROTATED) != NULL, "%s", err);
	logstore_close(l);
	PQfinish(adm);
}

/*
 * Several daemons: one still running with the old key when another
 * starts with the new one. After the rotation the old daemon's appends
 * are refused (nothing added to the log), its probe fails with the
 * reason /healthz shows, and a restart with the old key is refused.
 */
Test(pgrotate, a_daemon_still_holding_the_old_key_fails_closed)
{
	char			 ci[1200], err[512] = "";
	PGconn			*adm = t_pg_schema("t_rot_old", ci, sizeof(ci));
	struct logstore		*old = daemon_log(ci, k1, NULL), *new;
	struct audit_verify_result r;

	cr_assert_eq(logstore_check_start(old, 0, err, sizeof(err)), 0, "%s", err);
	append_ok(old, 3);
	cr_assert_eq(logstore_probe(old, err, sizeof(err)), 0, "%s", err);
	new = daemon_log(ci, k2, k1);
	cr_assert_eq(logstore_check_start(new, 0, err, sizeof(err)), 0, "%s", err);
	append_ok(new, 1);
	cr_assert_eq(t_pg_int(adm, "SELECT size FROM log_head"), 5);
	err[0] = '\0';
	cr_expect_eq(append(old, 2, err, sizeof(err)), -1, "the old key signed");
	cr_expect(strstr(err, PGLOG_ROTATED) != NULL, "%s", err);
	cr_expect_eq(t_pg_int(adm, "SELECT size FROM log_head"), 5);
	cr_expect_eq(logstore_probe(old, err, sizeof(err)), -1);
	cr_expect(strstr(err, PGLOG_ROTATED) != NULL, "%s", err);
	/* The new daemon goes on, and the log verifies from the first key. */
	append_ok(new, 2);
	cr_expect_eq(logstore_probe(new, err, sizeof(err)), 0, "%s", err);
	logstore_close(old);
	/* A restart with the old key: refused, saying why (-t too). */
	old = daemon_log(ci, k1, NULL);
	cr_expect_eq(logstore_check_start(old, 1, err, sizeof(err)), -1);
	cr_expect(strstr(err, PGLOG_ROTATED) != NULL, "%s", err);
	cr_expect_eq(logstore_check_start(old, 0, err, sizeof(err)), -1);
	logstore_close(old);
	logstore_close(new);
	r = verify(ci, pk1, NULL);
	cr_expect(r.ok, "%s", r.why);
	cr_expect_eq(r.entries, 7);
	PQfinish(adm);
}

/*
 * Two daemons that both checked the log before either rotated: the
 * second to take the head finds its key named and appends nothing
 * (pglog_rotate() answers 1), so there is one transition.
 */
Test(pgrotate, the_second_of_two_rotations_appends_nothing)
{
	char				 ci[1200], err[512];
	PGconn				*adm = t_pg_schema("t_rot_two", ci, sizeof(ci));
	struct logstore			*l = daemon_log(ci, k1, NULL);
	struct pglog			*pl;
	uint64_t			 seq = 0;
	EVP_PKEY			*new, *old;
	struct audit_verify_result	 r;

	append_ok(l, 2);
	logstore_close(l);
	new = audit_load_signer(k2, err, sizeof(err));
	old = audit_load_signer(k1, err, sizeof(err));
	cr_assert(new != NULL && old != NULL, "%s", err);
	cr_assert_eq(pglog_open(&pl, ci, err, sizeof(err)), 0, "%s", err);
	pglog_set_signer(pl, new);
	for (int i = 0; i < 2; i++)
		cr_expect_eq(pglog_rotate(pl, old, 1700000100, &seq, err,
		    sizeof(err)), i, "rotation %d: %s", i + 1, err);
	cr_expect_eq(rotations(adm), 1);
	cr_expect_eq(t_pg_int(adm, "SELECT size FROM log_head"), 3);
	pglog_close(pl);
	EVP_PKEY_free(new);
	EVP_PKEY_free(old);
	r = verify(ci, pk1, NULL);
	cr_expect(r.ok, "%s", r.why);
	PQfinish(adm);
}

/* Daemons starting at once with the new key, each in a thread of its own. */
struct starter {
	const char	*ci;
	struct logstore	*l;
	pthread_barrier_t *go;
	int		 rc;
	char		 err[512];
};

static void *
start(void *arg)
{
	struct starter *s = arg;

	pthread_barrier_wait(s->go);
	s->rc = logstore_check_start(s->l, 0, s->err, sizeof(s->err));
	return NULL;
}

Test(pgrotate, daemons_starting_together_rotate_once)
{
	enum { N = 4 };
	char				 ci[1200];
	PGconn				*adm = t_pg_schema("t_rot_race", ci, sizeof(ci));
	struct logstore			*l = daemon_log(ci, k1, NULL);
	struct starter			 s[N];
	pthread_t			 t[N];
	pthread_barrier_t		 go;
	struct audit_verify_result	 r;

	append_ok(l, 2);
	logstore_close(l);
	cr_assert_eq(pthread_barrier_init(&go, NULL, N), 0);
	for (int i = 0; i < N; i++) {
		s[i].ci = ci;
		s[i].go = &go;
		s[i].l = daemon_log(ci, k2, k1);
		cr_assert_eq(pthread_create(&t[i], NULL, start, &s[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		cr_assert_eq(pthread_join(t[i], NULL), 0);
		cr_expect_eq(s[i].rc, 0, "daemon %d: %s", i, s[i].err);
		append_ok(s[i].l, 1);
		logstore_close(s[i].l);
	}
	pthread_barrier_destroy(&go);
	cr_expect_eq(rotations(adm), 1);
	r = verify(ci, pk1, NULL);
	cr_expect(r.ok, "%s", r.why);
	cr_expect_eq(r.entries, 2 + 1 + N);
	PQfinish(adm);
}

/*
 * A log of schema version 2 (before the head's key) is upgraded by a
 * writer's open, and a version 1 or 4 is refused (pglog.c).
 */
Test(pgrotate, a_version_2_log_is_upgraded_at_open)
{
	char		 ci[1200], err[256] = "";
	PGconn		*adm = t_pg_schema("t_rot_v2", ci, sizeof(ci));
	struct pglog	*pl;

	cr_assert_eq(pglog_open(&pl, ci, err, sizeof(err)), 0, "%s", err);
	pglog_close(pl);
	t_pg_run(adm, "ALTER TABLE log_head DROP COLUMN signer");
	t_pg_run(adm, "UPDATE log_head SET version = 2");
	cr_expect_eq(pglog_open_reader(&pl, ci, err, sizeof(err)), -1,
	    "a reader upgrades nothing");
	cr_expect(strstr(err, "upgraded by the first start") != NULL, "%s", err);
	cr_assert_eq(pglog_open(&pl, ci, err, sizeof(err)), 0, "%s", err);
	pglog_close(pl);
	cr_expect_eq(t_pg_int(adm, "SELECT version FROM log_head"), 3);
	cr_expect_eq(t_pg_int(adm, "SELECT count(*) FROM log_head WHERE signer "
	    "IS NULL"), 1);
	PQfinish(adm);
}
