/*
 * The disclosure log against someone who can write its file (issue 13):
 * each attack of the "Why" that concerns the log core, the start-up
 * and run-time checks, key rotation, the upgrade of a version-2 log, and
 * 1,000 random tamperings, each caught and located (D7, D16).
 */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "audit_int.h"
#include "auditfile.h"
#include "testutil.h"

static char		 path[256], key[256], pub[256], key2[256], pub2[256];
static struct audit	*a;
static EVP_PKEY		*pk, *pk2;
static char		 aerr[256];	/* the err of the audit calls under test */

static void
setup(void)
{
	char err[256];

	snprintf(path, sizeof(path), "/tmp/safeshare-test-tamper-%d.db", (int)getpid());
	snprintf(key, sizeof(key), "/tmp/safeshare-test-tamper-%d.key", (int)getpid());
	snprintf(pub, sizeof(pub), "/tmp/safeshare-test-tamper-%d.pub", (int)getpid());
	snprintf(key2, sizeof(key2), "/tmp/safeshare-test-tamper-%d.key2", (int)getpid());
	snprintf(pub2, sizeof(pub2), "/tmp/safeshare-test-tamper-%d.pub2", (int)getpid());
	t_db_remove(path);
	t_genkey(key, pub);
	t_genkey(key2, pub2);
	cr_assert_eq(audit_open(&a, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(audit_set_signer(a, key, 0, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(pk = audit_load_public_key(pub, err, sizeof(err)));
	cr_assert_not_null(pk2 = audit_load_public_key(pub2, err, sizeof(err)));
}

static void
teardown(void)
{
	char p[300];

	audit_close(a);
	EVP_PKEY_free(pk);
	EVP_PKEY_free(pk2);
	t_db_remove(path);
	snprintf(p, sizeof(p), "%s-subjects", path);
	t_db_remove(p);
	unlink(key);
	unlink(pub);
	unlink(key2);
	unlink(pub2);
}

TestSuite(tamper, .init = setup, .fini = teardown);

static void
append_n(int n)
{
	for (int i = 0; i < n; i++) {
		struct audit_entry	 e, *ep = &e;
		char			 subj[32];

		memset(&e, 0, sizeof(e));
		snprintf(subj, sizeof(subj), "S%04d", (int)audit_size(a) + 1);
		e.time = 1000 + (int64_t)audit_size(a);
		e.kind = "disclosure";
		e.agency = "police";
		e.practitioner = "pc1";
		e.subject = subj;
		e.decision = "allow";
		e.reason = "released";
		cr_assert_eq(audit_append(a, &ep, 1, aerr, sizeof(aerr)), 0,
		    "%s", aerr);
	}
}

static void
sql_on(const char *db_path, const char *stmt)
{
	sqlite3 *db;

	cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, stmt, NULL, NULL, NULL), SQLITE_OK, "%s: %s",
	    stmt, sqlite3_errmsg(db));
	sqlite3_close(db);
}

static void
sql(const char *stmt)
{
	sql_on(path, stmt);
}

static struct audit_verify_result
verify_on(const char *db_path, EVP_PKEY *k, const char *since)
{
	struct audit_verify_result	 r;
	struct audit_verifier		*v;
	struct audit			*rd;
	unsigned char			 id[16];
	char				 err[256];

	memset(&r, 0, sizeof(r));
	cr_assert_eq(audit_open_reader(&rd, db_path, err, sizeof(err)), 0, "%s", err);
	audit_log_id(rd, id);
	v = audit_verifier_new(k, id);
	if (since != NULL)
		cr_assert_eq(audit_verifier_since(v, since, err, sizeof(err)),
		    0, "%s", err);
	audit_verify_with(rd, v, &r);
	audit_close(rd);
	return r;
}

static struct audit_verify_result
verify(void)
{
	return verify_on(path, pk, NULL);
}

/*
 * Recomputes the hash chain of the file from entry `from` on, as the
 * issue's attacker did after editing rows: every link holds again.
 */
struct rows {
	struct audit_entry	 e[256];
	char			*str[256][AUDIT_NSTRINGS];
	int			 n;
};

static int
keep_row(const struct audit_entry *e, void *arg)
{
	struct rows	*r = arg;
	const char	**s[AUDIT_NSTRINGS];

	cr_assert(r->n < 256);
	r->e[r->n] = *e;
	audit_entry_strings(&r->e[r->n], s);
	for (int i = 0; i < AUDIT_NSTRINGS; i++) {
		r->str[r->n][i] = strdup(*s[i] ? *s[i] : "");
		*s[i] = r->str[r->n][i];
	}
	r->n++;
	return 0;
}

static void
recompute_chain_on(const char *db_path, uint64_t from)
{
	struct rows	*r = calloc(1, sizeof(*r));
	struct audit	*rd;
	sqlite3		*db;
	sqlite3_stmt	*st;
	unsigned char	 prev[32] = { 0 };
	char		 err[256];

	cr_assert_eq(audit_open_reader(&rd, db_path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(audit_scan(rd, 1, 0, keep_row, r, aerr, sizeof(aerr)), 0);
	audit_close(rd);
	cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "UPDATE entries SET prev_hash = ?1, hash = ?2 "
	    "WHERE seq = ?3", -1, &st, NULL), SQLITE_OK);
	for (int i = 0; i < r->n; i++) {
		if (r->e[i].seq >= from) {
			memcpy(r->e[i].prev_hash, prev, 32);
			audit_hash(&r->e[i], r->e[i].hash);
			sqlite3_bind_blob(st, 1, r->e[i].prev_hash, 32, SQLITE_STATIC);
			sqlite3_bind_blob(st, 2, r->e[i].hash, 32, SQLITE_STATIC);
			sqlite3_bind_int64(st, 3, (sqlite3_int64)r->e[i].seq);
			cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
			sqlite3_reset(st);
		}
		memcpy(prev, r->e[i].hash, 32);
		for (int k = 0; k < AUDIT_NSTRINGS; k++)
			free(r->str[i][k]);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(r);
}

static void
reopen(const char *signer, const char *previous)
{
	char err[256];

	audit_close(a);
	a = NULL;
	cr_assert_eq(audit_open(&a, path, err, sizeof(err)), 0, "%s", err);
	if (signer != NULL)
		cr_assert_eq(audit_set_signer(a, signer, 0, 0, err,
		    sizeof(err)), 0, "%s", err);
	if (previous != NULL)
		cr_assert_eq(audit_set_previous_signer(a, previous, err,
		    sizeof(err)), 0,
		    "%s", err);
}

/* Attack 1: checkpoints deleted, rows edited, the chain recomputed. */
Test(tamper, deleted_checkpoints_and_a_recomputed_chain_fail)
{
	struct audit_verify_result	 r;
	char				 err[512];

	append_n(6);
	audit_close(a);
	a = NULL;
	sql("DELETE FROM checkpoints; UPDATE entries SET subject = 'S0000', "
	    "practitioner = 'nobody'");
	recompute_chain_on(path, 1);
	r = verify();
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_seq, 1, "%s", r.why);
	cr_expect(strstr(r.why, "not covered by a signed checkpoint") != NULL, "%s", r.why);
	/* ...and the daemon will not sign over it. */
	reopen(key, NULL);
	cr_expect_eq(audit_check_start(a, 0, err, sizeof(err)), -1);
	cr_expect(strstr(err, "checkpoints were deleted") != NULL, "%s", err);
	cr_expect_eq(audit_check_start(a, 1, err, sizeof(err)), -1, "-t too");
}

/* Attack 2: the last checkpoint deleted, or the tail rewritten after it. */
Test(tamper, no_unsigned_tail_to_rewrite)
{
	struct audit_verify_result	 r;
	char				 err[512];

	append_n(6);
	sql("DELETE FROM checkpoints WHERE size = 6");
	r = verify();
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_seq, 6, "%s", r.why);
	cr_expect(strstr(r.why, "entries 6..6 are not covered") != NULL, "%s", r.why);
	reopen(key, NULL);
	cr_expect_eq(audit_check_start(a, 0, err, sizeof(err)), -1);
	cr_expect(strstr(err, "past the last checkpoint") != NULL, "%s", err);
}

/* Checkpoints missing in between are named, even though later ones cover all. */
Test(tamper, a_checkpoint_deleted_in_between_is_named)
{
	struct audit_verify_result r;

	append_n(6);
	sql("DELETE FROM checkpoints WHERE size = 3");
	r = verify();
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_checkpoint, 3, "%s", r.why);
	cr_expect(strstr(r.why, "checkpoint 3 is missing") != NULL, "%s", r.why);
}

/* The last entries and their checkpoints deleted: the checkpoint held catches it. */
Test(tamper, a_log_shorter_than_the_checkpoint_held_fails)
{
	struct audit_verify_result	 r;
	char				*held, err[512];

	append_n(6);
	cr_assert_eq(audit_checkpoint_note(a, 0, &held, aerr, sizeof(aerr)), 0);
	r = verify_on(path, pk, held);
	cr_expect(r.ok, "%s", r.why);
	sql("DELETE FROM entries WHERE seq > 4; DELETE FROM checkpoints WHERE size > 4");
	r = verify();
	cr_expect(r.ok, "without --since a clean cut looks like a shorter log");
	r = verify_on(path, pk, held);
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_seq, 5);
	cr_expect(strstr(r.why, "shorter than the checkpoint you hold") != NULL, "%s",
	    r.why);
	/* The daemon, though, knows its own last checkpoint. */
	free(held);
	reopen(key, NULL);
	cr_expect_eq(audit_check_start(a, 0, err, sizeof(err)), 0,
	    "consistent and shorter: only a witness or --since can tell");
}

/* Start-up: entries deleted under the last checkpoint, or rewritten. */
Test(tamper, start_refuses_a_truncated_or_rewritten_log)
{
	char err[512];

	append_n(6);
	audit_close(a);
	a = NULL;
	sql("DELETE FROM entries WHERE seq = 6");
	reopen(key, NULL);
	cr_expect_eq(audit_check_start(a, 0, err, sizeof(err)), -1);
	cr_expect(strstr(err, "entries were deleted") != NULL, "%s", err);
	audit_close(a);
	a = NULL;
	t_db_remove(path);
	cr_assert_eq(audit_open(&a, path, err, sizeof(err)), 0);
	cr_assert_eq(audit_set_signer(a, key, 0, 0, err, sizeof(err)), 0);
	append_n(6);
	audit_close(a);
	a = NULL;
	sql("UPDATE entries SET subject = 'X' WHERE seq = 6");
	recompute_chain_on(path, 6);
	reopen(key, NULL);
	cr_expect_eq(audit_check_start(a, 0, err, sizeof(err)), -1);
	cr_expect(strstr(err, "rewritten") != NULL, "%s", err);
	/* A signed log needs its key. */
	reopen(NULL, NULL);
	cr_expect_eq(audit_check_start(a, 1, err, sizeof(err)), -1);
	cr_expect(strstr(err, "audit.signing_key is not set") != NULL, "%s", err);
}

/* Attack 5: the clock set back; the entry keeps the last time, verify checks. */
Test(tamper, time_never_goes_back)
{
	struct audit_verify_result	 r;
	struct audit_entry		 e, *ep = &e;

	append_n(3);	/* times 1000, 1001, 1002 */
	memset(&e, 0, sizeof(e));
	e.kind = "disclosure";
	e.time = 1002 - 400 * 86400;
	cr_assert_eq(audit_append(a, &ep, 1, aerr, sizeof(aerr)), 0);
	cr_expect_eq(e.time, 1002, "kept the last time");
	cr_expect(verify().ok);
	/* Backdated by hand and the chain recomputed: verify says where. */
	audit_close(a);
	a = NULL;
	sql("UPDATE entries SET time = 5 WHERE seq = 3");
	recompute_chain_on(path, 3);
	r = verify();
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_seq, 3);
	cr_expect(strstr(r.why, "dated before") != NULL, "%s", r.why);
}

/* Attack 7: rotation is logged, verify follows the keys from the first. */
Test(tamper, key_rotation_is_a_logged_transition)
{
	struct audit_verify_result	 r;
	char				 err[512], *note;

	append_n(3);
	/* Another key alone: refused, with the remedy. */
	reopen(key2, NULL);
	cr_expect_eq(audit_check_start(a, 1, err, sizeof(err)), -1);
	cr_expect(strstr(err, "audit.previous_signing_key") != NULL, "%s", err);
	cr_expect_eq(audit_check_start(a, 0, err, sizeof(err)), -1);
	/* With the old key for one start: the old key signs the new one in. */
	reopen(key2, key);
	cr_assert_eq(audit_check_start(a, 0, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(audit_size(a), 4, "a key_rotation entry");
	cr_assert_eq(audit_checkpoint_note(a, 0, &note, aerr, sizeof(aerr)), 0);
	cr_expect(strstr(note, "\nnext-key safeshare/") != NULL, "%s", note);
	free(note);
	append_n(2);
	r = verify();
	cr_expect(r.ok, "%s", r.why);
	cr_expect_eq(r.checkpoints, 6);
	/* The new key alone does not verify the log's beginning. */
	r = verify_on(path, pk2, NULL);
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_checkpoint, 1, "%s", r.why);
	/* A trusted list works too. */
	{
		struct audit_verifier	*v;
		struct audit		*rd;
		unsigned char		 id[16];

		cr_assert_eq(audit_open_reader(&rd, path, err, sizeof(err)), 0);
		audit_log_id(rd, id);
		v = audit_verifier_new(pk2, id);
		audit_verifier_trust(v, pk);
		audit_verify_with(rd, v, &r);
		audit_close(rd);
		cr_expect(r.ok, "%s", r.why);
	}
	/* Restarted with the new key alone: fine now. */
	reopen(key2, NULL);
	cr_expect_eq(audit_check_start(a, 0, err, sizeof(err)), 0, "%s", err);
}

/*
 * An append to a log whose file is gone fails, and the caller's err says
 * why (issue 16 item 5).
 */
static void
expect_append_refused(void)
{
	struct audit_entry e, *ep = &e;

	memset(&e, 0, sizeof(e));
	e.kind = "disclosure";
	aerr[0] = '\0';
	cr_expect_eq(audit_append(a, &ep, 1, aerr, sizeof(aerr)), -1);
	cr_expect(strstr(aerr, "deleted or replaced") != NULL, "%s", aerr);
}

/* Attack 4 (the core's part): a deleted log file is noticed, appends fail. */
Test(tamper, a_deleted_log_file_fails_closed)
{
	char p[300];

	append_n(2);
	cr_expect_eq(audit_file_gone(a), 0);
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	cr_expect_eq(audit_file_gone(a), 1);
	expect_append_refused();
}

/*
 * Attack 4, item 6 of issue 13: the log is deleted and a new file takes
 * its path with the old inode number (a filesystem that reuses numbers).
 * The path then names the same device and inode, so only the link count
 * of the file still open (0: it has no name left) shows it is gone. The
 * reuse is simulated by pointing the handle's dev/ino at the new file.
 */
Test(tamper, a_replaced_log_with_a_reused_inode_fails_closed)
{
	struct stat	sb;
	char		p[300];
	int		fd;

	append_n(2);
	cr_expect_eq(audit_file_gone(a), 0);
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	cr_assert_neq(fd = open(path, O_CREAT | O_WRONLY | O_EXCL, 0600), -1);
	close(fd);
	cr_assert_eq(stat(path, &sb), 0);
	a->dev = sb.st_dev;
	a->ino = sb.st_ino;
	cr_expect_eq(audit_file_gone(a), 1);
	expect_append_refused();
}

/*
 * A log of schema version 2, as made by the code before the tree: entries
 * chained, legacy checkpoints (87-byte message) every `every` entries.
 */
static void
make_v2_log(int n, int every)
{
	static const char *const v2 =
	    "CREATE TABLE entries(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
	    " kind TEXT, agency TEXT, cert_fp TEXT, practitioner TEXT, purpose TEXT,"
	    " lawful_basis TEXT, case_ref TEXT, subject TEXT, record_type TEXT,"
	    " decision TEXT, reason TEXT, released TEXT, withheld TEXT, consent TEXT,"
	    " override_code TEXT, justification TEXT, rule_id TEXT, protocol_id TEXT,"
	    " protocol_version TEXT, protocol_sha256 TEXT, request_id TEXT,"
	    " inform_waiver TEXT, ref_seq INTEGER NOT NULL DEFAULT 0,"
	    " prev_hash BLOB NOT NULL, hash BLOB NOT NULL);"
	    "CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
	    "CREATE TABLE checkpoints(id INTEGER PRIMARY KEY, size INTEGER NOT NULL,"
	    " head_hash BLOB NOT NULL, time INTEGER NOT NULL, signature BLOB NOT NULL);"
	    "INSERT INTO meta VALUES ('log_id', X'0102030405060708090a0b0c0d0e0f10');"
	    "PRAGMA user_version = 2;";
	struct audit_checkpoint	 cp;
	unsigned char		 prev[32] = { 0 }, msg[128];
	sqlite3			*db;
	sqlite3_stmt		*st, *cst;
	EVP_PKEY		*sk;
	FILE			*fp;

	cr_assert_not_null(fp = fopen(key, "r"));
	cr_assert_not_null(sk = PEM_read_PrivateKey(fp, NULL, NULL, NULL));
	fclose(fp);
	audit_close(a);
	a = NULL;
	t_db_remove(path);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, v2, NULL, NULL, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "INSERT INTO entries(seq, time, kind, agency, "
	    "subject, prev_hash, hash) VALUES (?1, ?2, 'disclosure', 'police', ?3, ?4, ?5)",
	    -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "INSERT INTO checkpoints(size, head_hash, "
	    "time, signature) VALUES (?1, ?2, ?3, ?4)", -1, &cst, NULL), SQLITE_OK);
	memset(&cp, 0, sizeof(cp));
	memcpy(cp.log_id, "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10",
	    16);
	for (int i = 1; i <= n; i++) {
		struct audit_entry	 e;
		char			 subj[16];

		memset(&e, 0, sizeof(e));
		snprintf(subj, sizeof(subj), "S%d", i);
		e.seq = (uint64_t)i;
		e.time = 500 + i;
		e.kind = "disclosure";
		e.agency = "police";
		e.subject = subj;
		memcpy(e.prev_hash, prev, 32);
		audit_hash(&e, e.hash);
		sqlite3_bind_int64(st, 1, i);
		sqlite3_bind_int64(st, 2, e.time);
		sqlite3_bind_text(st, 3, subj, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, e.prev_hash, 32, SQLITE_STATIC);
		sqlite3_bind_blob(st, 5, e.hash, 32, SQLITE_STATIC);
		cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
		memcpy(prev, e.hash, 32);
		if (i % every == 0) {
			EVP_MD_CTX	*md = EVP_MD_CTX_new();
			size_t		 siglen = 64, mlen;

			cp.size = (uint64_t)i;
			memcpy(cp.head, e.hash, 32);
			cp.time = e.time;
			mlen = audit_checkpoint_message(&cp, msg);
			cr_assert_eq(EVP_DigestSignInit(md, NULL, NULL, NULL, sk), 1);
			cr_assert_eq(EVP_DigestSign(md, cp.sig, &siglen, msg, mlen), 1);
			EVP_MD_CTX_free(md);
			sqlite3_bind_int64(cst, 1, i);
			sqlite3_bind_blob(cst, 2, cp.head, 32, SQLITE_STATIC);
			sqlite3_bind_int64(cst, 3, cp.time);
			sqlite3_bind_blob(cst, 4, cp.sig, 64, SQLITE_STATIC);
			cr_assert_eq(sqlite3_step(cst), SQLITE_DONE);
			sqlite3_reset(cst);
		}
	}
	sqlite3_finalize(st);
	sqlite3_finalize(cst);
	sqlite3_close(db);
	EVP_PKEY_free(sk);
}

/* A log made before the tree opens, gets it, is signed once, and verifies. */
Test(tamper, a_version_2_log_is_upgraded_and_keeps_verifying)
{
	struct audit_verify_result	 r;
	char				 err[512];
	unsigned char			 root[32];

	make_v2_log(100, 30);		/* legacy checkpoints at 30, 60, 90 */
	r = verify();
	cr_expect_not(r.ok, "read as it is: entries 91..100 are unsigned");
	cr_expect(strstr(r.why, "91..100") != NULL, "%s", r.why);
	reopen(key, NULL);
	cr_assert_eq(audit_check_start(a, 0, err, sizeof(err)), 0, "%s", err);
	r = verify();
	cr_expect(r.ok, "%s", r.why);
	cr_expect_eq(r.checkpoints, 4, "3 legacy and the upgrade's");
	append_n(40);
	r = verify();
	cr_expect(r.ok, "%s", r.why);
	cr_expect_eq(r.entries, 140);
	/* The stored tree answers as the entries do. */
	cr_assert_eq(audit_root(a, 140, root, aerr, sizeof(aerr)), 0);
	reopen(key, NULL);
	cr_expect_eq(audit_check_start(a, 0, err, sizeof(err)), 0, "%s", err);
	/* Legacy checkpoints still catch an edit under them. */
	audit_close(a);
	a = NULL;
	sql("UPDATE entries SET subject = 'X' WHERE seq = 10");
	recompute_chain_on(path, 10);
	r = verify();
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_seq, 30, "%s", r.why);
}

/* Version 1 logs had the subject index inside; opening one for writing drops it. */
Test(tamper, version_1_log_loses_its_inner_subject_index)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	char		 err[256];

	make_v2_log(6, 3);
	sql("CREATE INDEX entries_subject ON entries(subject, seq); PRAGMA user_version = 1;");
	cr_assert_eq(audit_open(&a, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM sqlite_schema "
	    "WHERE name = 'entries_subject'), (SELECT user_version FROM pragma_user_version)",
	    -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_expect_eq(sqlite3_column_int(st, 0), 0);
	cr_expect_eq(sqlite3_column_int(st, 1), AUDIT_SCHEMA_VERSION);
	sqlite3_finalize(st);
	sqlite3_close(db);
	cr_expect_eq(verify().entries, 6);
}

/* Proofs from the stored tree agree with the checkpoints' roots. */
Test(tamper, stored_tree_gives_proofs_of_any_size)
{
	unsigned char	 proof[AUDIT_MAX_PROOF][32], root[32];
	size_t		 n;
	char		 err[256];

	append_n(70);
	for (uint64_t m = 1; m <= 70; m += 7) {
		cr_assert_eq(audit_consistency(a, m, 70, proof, &n, err,
		    sizeof(err)), 0,
		    "%s", err);
		cr_assert_eq(audit_inclusion(a, m, 70, proof, &n, err, sizeof(err)), 0,
		    "%s", err);
		cr_assert_eq(audit_root(a, m, root, aerr, sizeof(aerr)), 0);
	}
	cr_expect_eq(audit_consistency(a, 3, 71, proof, &n, err, sizeof(err)), -1);
}

/*
 * 1,000 random tamperings of a signed 40-entry log, each found and
 * located: an edited row, a deleted row, two rows swapped, the log cut
 * (with its checkpoints: the auditor holds the last one), a checkpoint
 * deleted, and a row edited with the chain recomputed after it.
 */
static void
copy_file(const char *from, const char *to)
{
	char cmd[700];

	t_db_remove(to);
	snprintf(cmd, sizeof(cmd), "cp %s %s", from, to);
	cr_assert_eq(system(cmd), 0);
}

Test(tamper, a_thousand_random_tamperings_are_all_found, .timeout = 110)
{
	struct audit_verify_result	 r;
	char				 trial[300], stmt[512], *held;
	const int			 N = 40;
	int				 found = 0;

	for (int i = 0; i < N; i += 4) {
		struct audit_entry	 e[4], *ep[4];
		char			 subj[4][16];

		for (int k = 0; k < 4; k++) {
			memset(&e[k], 0, sizeof(e[k]));
			snprintf(subj[k], sizeof(subj[k]), "S%d", i + k);
			e[k].time = 1000 + i;
			e[k].kind = "disclosure";
			e[k].subject = subj[k];
			e[k].practitioner = "pc";
			ep[k] = &e[k];
		}
		/* A group commit of 1 to 4 entries, then the rest one by one. */
		size_t g = (size_t)(i / 4 % 4 + 1);

		cr_assert_eq(audit_append(a, ep, g, aerr, sizeof(aerr)), 0);
		for (size_t k = g; k < 4; k++)
			cr_assert_eq(audit_append(a, &ep[k], 1, aerr, sizeof(aerr)), 0);
	}
	cr_assert_eq(audit_size(a), (uint64_t)N);
	cr_assert_eq(audit_checkpoint_note(a, 0, &held, aerr, sizeof(aerr)), 0);
	audit_close(a);
	a = NULL;
	snprintf(trial, sizeof(trial), "%s-trial", path);
	srand(13);
	for (int t = 0; t < 1000; t++) {
		int		 kind = t % 6, k = 1 + rand() % N, j = 1 + rand() % N;
		uint64_t	 want_seq = 0, want_cp = 0;
		long long	 ncp;

		copy_file(path, trial);
		switch (kind) {
		case 0:		/* edit */
			snprintf(stmt, sizeof(stmt), "UPDATE entries SET practitioner = "
			    "'x%d' WHERE seq = %d", t, k);
			want_seq = (uint64_t)k;
			break;
		case 1:		/* delete */
			snprintf(stmt, sizeof(stmt), "DELETE FROM entries WHERE seq = %d", k);
			want_seq = (uint64_t)k;
			break;
		case 2:		/* reorder */
			if (j == k)
				j = k == N ? k - 1 : k + 1;
			snprintf(stmt, sizeof(stmt), "UPDATE entries SET seq = -1 WHERE seq = "
			    "%d; UPDATE entries SET seq = %d WHERE seq = %d; UPDATE entries "
			    "SET seq = %d WHERE seq = -1", k, k, j, j);
			want_seq = (uint64_t)(k < j ? k : j);
			break;
		case 3:		/* truncate, checkpoints too */
			snprintf(stmt, sizeof(stmt), "DELETE FROM entries WHERE seq >= %d; "
			    "DELETE FROM checkpoints WHERE size >= %d", k, k);
			want_seq = (uint64_t)k;
			break;
		case 4:		/* a checkpoint deleted */
			ncp = 1 + rand() % 20;
			snprintf(stmt, sizeof(stmt), "DELETE FROM checkpoints WHERE id = %lld",
			    ncp);
			want_cp = (uint64_t)ncp;
			break;
		default:	/* edit, then the whole chain recomputed without the key */
			snprintf(stmt, sizeof(stmt), "UPDATE entries SET subject = 'y%d' "
			    "WHERE seq = %d", t, k);
			want_seq = (uint64_t)k;
			break;
		}
		sql_on(trial, stmt);
		if (kind == 5)
			recompute_chain_on(trial, 1);
		r = verify_on(trial, pk, held);
		if (r.ok)
			cr_log_error("trial %d (kind %d, %s) passed verify", t, kind, stmt);
		else if (want_cp != 0 && r.bad_checkpoint != want_cp)
			cr_log_error("trial %d: %s: checkpoint %llu named, %llu wanted: %s",
			    t, stmt, (unsigned long long)r.bad_checkpoint,
			    (unsigned long long)want_cp, r.why);
		else if (kind == 5 && (r.bad_checkpoint == 0 || r.bad_seq > want_seq ||
		    r.bad_seq + 4 <= want_seq))
			cr_log_error("trial %d: %s: entry %llu named, at most 3 before "
			    "%llu wanted: %s", t, stmt, (unsigned long long)r.bad_seq,
			    (unsigned long long)want_seq, r.why);
		else if (kind != 5 && want_seq != 0 && r.bad_seq != want_seq)
			cr_log_error("trial %d: %s: entry %llu named, %llu wanted: %s", t,
			    stmt, (unsigned long long)r.bad_seq,
			    (unsigned long long)want_seq, r.why);
		else
			found++;
	}
	free(held);
	t_db_remove(trial);
	cr_expect_eq(found, 1000);
}

static int
count_cps(const struct audit_checkpoint *cp, void *arg)
{
	(void)cp;
	(*(uint64_t *)arg)++;
	return 0;
}

static int
export_cp(const struct audit_checkpoint *cp, void *arg)
{
	auditfile_checkpoint(arg, cp);
	return 0;
}

static int
export_entry(const struct audit_entry *e, void *arg)
{
	auditfile_entry(arg, e);
	return 0;
}

/* Attack 6: an export without a key, or cut short, does not pass. */
Test(tamper, an_export_needs_its_key_and_all_its_entries)
{
	struct audit_verify_result	 r;
	unsigned char			 id[16];
	char				 exp[300], cmd[700];
	uint64_t			 ncp = 0;
	FILE				*fp;

	append_n(6);
	snprintf(exp, sizeof(exp), "%s.jsonl", path);
	cr_assert_not_null(fp = fopen(exp, "w"));
	audit_log_id(a, id);
	audit_checkpoints(a, count_cps, &ncp, aerr, sizeof(aerr));
	auditfile_header(fp, id, audit_size(a), ncp, NULL);
	cr_assert_eq(audit_checkpoints(a, export_cp, fp, aerr, sizeof(aerr)), 0);
	cr_assert_eq(audit_scan(a, 1, 0, export_entry, fp, aerr, sizeof(aerr)), 0);
	fclose(fp);
	cr_expect_eq(auditfile_verify(exp, pk, &r), 0, "%s", r.why);
	cr_expect_eq(r.checkpoints, 6);
	cr_expect_eq(auditfile_verify(exp, NULL, &r), -1, "no key, checkpoints: no pass");
	cr_expect(strstr(r.why, "no public key") != NULL, "%s", r.why);
	/* Three entries and the checkpoints over them cut from the end. */
	snprintf(cmd, sizeof(cmd), "sed -i -e '/\"size\":[456],/d' -e '/^{\"seq\":[456],/d' %s",
	    exp);
	cr_assert_eq(system(cmd), 0);
	cr_expect_eq(auditfile_verify(exp, pk, &r), -1);
	cr_expect(strstr(r.why, "header says 6 entries but it holds 3") != NULL, "%s",
	    r.why);
	unlink(exp);
}

/*
 * Issue 16: an export line is strict JSON. A key given twice (the hash
 * covers the first "subject", a reader might show the second) or text
 * after the object is malformed, named by its line, never read one way.
 */
Test(tamper, an_export_line_says_one_thing)
{
	struct audit_verify_result	 r;
	unsigned char			 id[16];
	char				 exp[300], bad[320], cmd[1000];
	uint64_t			 ncp = 0;
	FILE				*fp;

	append_n(3);
	snprintf(exp, sizeof(exp), "%s.jsonl", path);
	snprintf(bad, sizeof(bad), "%s.bad.jsonl", path);
	cr_assert_not_null(fp = fopen(exp, "w"));
	audit_log_id(a, id);
	audit_checkpoints(a, count_cps, &ncp, aerr, sizeof(aerr));
	auditfile_header(fp, id, audit_size(a), ncp, NULL);
	cr_assert_eq(audit_checkpoints(a, export_cp, fp, aerr, sizeof(aerr)), 0);
	cr_assert_eq(audit_scan(a, 1, 0, export_entry, fp, aerr, sizeof(aerr)), 0);
	fclose(fp);
	cr_expect_eq(auditfile_verify(exp, pk, &r), 0, "%s", r.why);
	snprintf(cmd, sizeof(cmd), "sed -e '/^{\"seq\":2,/s/}$/,\"subject\":\"S-OTHER\"}/' "
	    "%s > %s", exp, bad);
	cr_assert_eq(system(cmd), 0);
	cr_expect_eq(auditfile_verify(bad, pk, &r), -1, "a duplicate key was read");
	cr_expect(strstr(r.why, "duplicate object key") != NULL, "%s", r.why);
	snprintf(cmd, sizeof(cmd), "sed -e '/^{\"seq\":2,/s/$/ {}/' %s > %s", exp, bad);
	cr_assert_eq(system(cmd), 0);
	cr_expect_eq(auditfile_verify(bad, pk, &r), -1, "text after the object was read");
	cr_expect(strstr(r.why, "not valid JSON") != NULL, "%s", r.why);
	unlink(exp);
	unlink(bad);
}
