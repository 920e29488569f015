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

	t_audit_open("tamper", path, key, pub, sizeof(path), 0, 0, &a, &pk);
	snprintf(key2, sizeof(key2), "/tmp/safeshare-test-tamper-%d.key2", (int)getpid());
	snprintf(pub2, sizeof(pub2), "/tmp/safeshare-test-tamper-%d.pub2", (int)getpid());
	t_genkey(key2, pub2);
	cr_assert_not_null(pk2 = audit_load_public_key(pub2, err, sizeof(err)));
}

static void
teardown(void)
{
	t_audit_close(path, key, pub, a, pk);
	EVP_PKEY_free(pk2);
	unlink(key2);
	unlink(pub2);
}

TestSuite(tamper, .init = setup, .fini = teardown);

/* Attack 1: checkpoints deleted, rows edited, the chain recomputed. */
Test(tamper, deleted_checkpoints_and_a_recomputed_chain_fail)
{
	struct audit_verify_result	 r;
	char				 err[512];

	t_audit_append(a, 6, 1);
	audit_close(a);
	a = NULL;
	t_sql(path, "DELETE FROM checkpoints; UPDATE entries SET subject = 'S0000', "
	    "practitioner = 'nobody'");
	t_audit_recompute_chain(path, 1);
	r = t_audit_verify(path, pk, NULL);
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_seq, 1, "%s", r.why);
	cr_expect(strstr(r.why, "not covered by a signed checkpoint") != NULL, "%s", r.why);
	/* ...and the daemon will not sign over it. */
	t_audit_reopen(&a, path, key, NULL);
	cr_expect_eq(audit_check_start(a, 0, err, sizeof(err)), -1);
	cr_expect(strstr(err, "checkpoints were deleted") != NULL, "%s", err);
	cr_expect_eq(audit_check_start(a, 1, err, sizeof(err)), -1, "-t too");
}

/* Attack 2: the last checkpoint deleted, or the tail rewritten after it. */
Test(tamper, no_unsigned_tail_to_rewrite)
{
	struct audit_verify_result	 r;
	char				 err[512];

	t_audit_append(a, 6, 1);
	t_sql(path, "DELETE FROM checkpoints WHERE size = 6");
	r = t_audit_verify(path, pk, NULL);
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_seq, 6, "%s", r.why);
	cr_expect(strstr(r.why, "entries 6..6 are not covered") != NULL, "%s", r.why);
	t_audit_reopen(&a, path, key, NULL);
	cr_expect_eq(audit_check_start(a, 0, err, sizeof(err)), -1);
	cr_expect(strstr(err, "past the last checkpoint") != NULL, "%s", err);
}

/* Checkpoints missing in between are named, even though later ones cover all. */
Test(tamper, a_checkpoint_deleted_in_between_is_named)
{
	struct audit_verify_result r;

	t_audit_append(a, 6, 1);
	t_sql(path, "DELETE FROM checkpoints WHERE size = 3");
	r = t_audit_verify(path, pk, NULL);
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_checkpoint, 3, "%s", r.why);
	cr_expect(strstr(r.why, "checkpoint 3 is missing") != NULL, "%s", r.why);
}

/* The last entries and their checkpoints deleted: the checkpoint held catches it. */
Test(tamper, a_log_shorter_than_the_checkpoint_held_fails)
{
	struct audit_verify_result	 r;
	char				*held, err[512];

	t_audit_append(a, 6, 1);
	cr_assert_eq(audit_checkpoint_note(a, 0, &held, aerr, sizeof(aerr)), 0);
	r = t_audit_verify(path, pk, held);
	cr_expect(r.ok, "%s", r.why);
	t_sql(path, "DELETE FROM entries WHERE seq > 4; DELETE FROM checkpoints WHERE size > 4");
	r = t_audit_verify(path, pk, NULL);
	cr_expect(r.ok, "without --since a clean cut looks like a shorter log");
	r = t_audit_verify(path, pk, held);
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_seq, 5);
	cr_expect(strstr(r.why, "shorter than the checkpoint you hold") != NULL, "%s",
	    r.why);
	/* The daemon, though, knows its own last checkpoint. */
	free(held);
	t_audit_reopen(&a, path, key, NULL);
	cr_expect_eq(audit_check_start(a, 0, err, sizeof(err)), 0,
	    "consistent and shorter: only a witness or --since can tell");
}

/* Each size's note as the log finds it: exact (0 for the last), or the last up to it. */
static void
check_notes(const char *layout, uint64_t gap)
{
	for (uint64_t s = 0; s <= 11; s++) {
		struct cpnote	 c;
		char		*note = NULL, why[128];
		int		 rc;
		uint64_t	 want;

		/* Exact: none past the end, none for the deleted one. */
		rc = audit_checkpoint_note(a, s, &note, aerr, sizeof(aerr));
		want = s == 0 ? 9 : s > 9 || (gap && s == gap) ? 0 : s;
		cr_assert_eq(rc, want ? 0 : 1, "%s: the checkpoint of size %llu: %d %s",
		    layout, (unsigned long long)s, rc, aerr);
		if (want) {
			cr_assert_eq(audit_note_parse(note, &c, why, sizeof(why)), 0, "%s", why);
			cr_expect_eq(c.size, want, "%s: size %llu found %llu", layout,
			    (unsigned long long)s, (unsigned long long)c.size);
		}
		free(note);
		note = NULL;
		/* Up to s: the last of size <= s, stepping over the deleted one. */
		rc = audit_checkpoint_note_upto(a, s, &note, aerr, sizeof(aerr));
		want = s > 9 ? 9 : gap && s == gap ? s - 1 : s;
		cr_assert_eq(rc, want ? 0 : 1, "%s: the last checkpoint up to %llu: %d %s",
		    layout, (unsigned long long)s, rc, aerr);
		if (want) {
			cr_assert_eq(audit_note_parse(note, &c, why, sizeof(why)), 0, "%s", why);
			cr_expect_eq(c.size, want, "%s: up to %llu found %llu", layout,
			    (unsigned long long)s, (unsigned long long)c.size);
		}
		free(note);
	}
}

/*
 * A log made now has no index on the checkpoints' size (audit.c: it cost
 * every group commit a WAL page); each size's checkpoint is found by a
 * binary search of the ids, as the index finds it in a log made before.
 * Read in id order, a checkpoint moved out of its place fails verify.
 */
Test(tamper, checkpoints_found_without_the_size_index)
{
	struct audit_verify_result	 r;
	sqlite3				*db;
	sqlite3_stmt			*st;

	t_audit_append(a, 9, 1);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'checkpoints_size'", -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_expect_eq(sqlite3_column_int(st, 0), 0, "a new log has checkpoints_size");
	sqlite3_finalize(st);
	sqlite3_close(db);
	check_notes("by id", 0);
	r = t_audit_verify(path, pk, NULL);
	cr_expect(r.ok, "%s", r.why);
	/* Read in id order, a checkpoint moved after the last is found out... */
	audit_close(a);
	a = NULL;
	t_sql(path, "UPDATE checkpoints SET id = 100 WHERE size = 3");
	r = t_audit_verify(path, pk, NULL);
	cr_expect_not(r.ok);
	cr_expect(strstr(r.why, "checkpoint 3 is missing") != NULL, "%s", r.why);
	/* ...and put back, the log verifies again. */
	t_sql(path, "UPDATE checkpoints SET id = 3 WHERE id = 100");
	r = t_audit_verify(path, pk, NULL);
	cr_expect(r.ok, "%s", r.why);
	t_audit_reopen(&a, path, key, NULL);
	/* A deleted checkpoint is a gap in the ids the search steps over. */
	audit_close(a);
	a = NULL;
	t_sql(path, "DELETE FROM checkpoints WHERE size = 5");
	t_audit_reopen(&a, path, key, NULL);
	check_notes("by id, 5 deleted", 5);
	/* A log made before: the same answers through its index. */
	audit_close(a);
	a = NULL;
	t_sql(path, "CREATE INDEX checkpoints_size ON checkpoints(size)");
	t_audit_reopen(&a, path, key, NULL);
	check_notes("by size, 5 deleted", 5);
}

/* Start-up: entries deleted under the last checkpoint, or rewritten. */
Test(tamper, start_refuses_a_truncated_or_rewritten_log)
{
	char err[512];

	t_audit_append(a, 6, 1);
	audit_close(a);
	a = NULL;
	t_sql(path, "DELETE FROM entries WHERE seq = 6");
	t_audit_reopen(&a, path, key, NULL);
	cr_expect_eq(audit_check_start(a, 0, err, sizeof(err)), -1);
	cr_expect(strstr(err, "entries were deleted") != NULL, "%s", err);
	audit_close(a);
	a = NULL;
	t_db_remove(path);
	cr_assert_eq(audit_open(&a, path, err, sizeof(err)), 0);
	cr_assert_eq(audit_set_signer(a, key, 0, 0, err, sizeof(err)), 0);
	t_audit_append(a, 6, 1);
	audit_close(a);
	a = NULL;
	t_sql(path, "UPDATE entries SET subject = 'X' WHERE seq = 6");
	t_audit_recompute_chain(path, 6);
	t_audit_reopen(&a, path, key, NULL);
	cr_expect_eq(audit_check_start(a, 0, err, sizeof(err)), -1);
	cr_expect(strstr(err, "rewritten") != NULL, "%s", err);
	/* A signed log needs its key. */
	t_audit_reopen(&a, path, NULL, NULL);
	cr_expect_eq(audit_check_start(a, 1, err, sizeof(err)), -1);
	cr_expect(strstr(err, "audit.signing_key is not set") != NULL, "%s", err);
}

/* Attack 5: the clock set back; the entry keeps the last time, verify checks. */
Test(tamper, time_never_goes_back)
{
	struct audit_verify_result	 r;
	struct audit_entry		 e, *ep = &e;

	t_audit_append(a, 3, 1);	/* times 1000, 1001, 1002 */
	memset(&e, 0, sizeof(e));
	e.kind = "disclosure";
	e.time = 1002 - 400 * 86400;
	cr_assert_eq(audit_append(a, &ep, 1, aerr, sizeof(aerr)), 0);
	cr_expect_eq(e.time, 1002, "kept the last time");
	cr_expect(t_audit_verify(path, pk, NULL).ok);
	/* Backdated by hand and the chain recomputed: verify says where. */
	audit_close(a);
	a = NULL;
	t_sql(path, "UPDATE entries SET time = 5 WHERE seq = 3");
	t_audit_recompute_chain(path, 3);
	r = t_audit_verify(path, pk, NULL);
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_seq, 3);
	cr_expect(strstr(r.why, "dated before") != NULL, "%s", r.why);
}

/* Attack 7: rotation is logged, verify follows the keys from the first. */
Test(tamper, key_rotation_is_a_logged_transition)
{
	struct audit_verify_result	 r;
	char				 err[512], *note;

	t_audit_append(a, 3, 1);
	/* Another key alone: refused, with the remedy. */
	t_audit_reopen(&a, path, key2, NULL);
	cr_expect_eq(audit_check_start(a, 1, err, sizeof(err)), -1);
	cr_expect(strstr(err, "audit.previous_signing_key") != NULL, "%s", err);
	cr_expect_eq(audit_check_start(a, 0, err, sizeof(err)), -1);
	/* With the old key for one start: the old key signs the new one in. */
	t_audit_reopen(&a, path, key2, key);
	cr_assert_eq(audit_check_start(a, 0, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(audit_size(a), 4, "a key_rotation entry");
	cr_assert_eq(audit_checkpoint_note(a, 0, &note, aerr, sizeof(aerr)), 0);
	cr_expect(strstr(note, "\nnext-key safeshare/") != NULL, "%s", note);
	free(note);
	t_audit_append(a, 2, 1);
	r = t_audit_verify(path, pk, NULL);
	cr_expect(r.ok, "%s", r.why);
	cr_expect_eq(r.checkpoints, 6);
	/* The new key alone does not verify the log's beginning. */
	r = t_audit_verify(path, pk2, NULL);
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
	t_audit_reopen(&a, path, key2, NULL);
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

	t_audit_append(a, 2, 1);
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

	t_audit_append(a, 2, 1);
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
		t_sql(trial, stmt);
		if (kind == 5)
			t_audit_recompute_chain(trial, 1);
		r = t_audit_verify(trial, pk, held);
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
