/*
 * The disclosure log's file formats against the code that reads them: a
 * version-2 log upgraded and still verifying, a version-1 log losing its
 * inner subject index, the stored tree's proofs of any size, and the export
 * that needs its key and all its entries (D7, D16). Split from
 * test_audit_tamper.c, which keeps the attacks and the random tamperings.
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

static char		 path[256], key[256], pub[256];
static struct audit	*a;
static EVP_PKEY		*pk;
static char		 aerr[256];	/* the err of the audit calls under test */

T_AUDIT_SUITE(audit_format, 0, 0, path, key, pub, a, pk);

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
Test(audit_format, a_version_2_log_is_upgraded_and_keeps_verifying)
{
	struct audit_verify_result	 r;
	char				 err[512];
	unsigned char			 root[32];

	make_v2_log(100, 30);		/* legacy checkpoints at 30, 60, 90 */
	r = t_audit_verify(path, pk, NULL);
	cr_expect_not(r.ok, "read as it is: entries 91..100 are unsigned");
	cr_expect(strstr(r.why, "91..100") != NULL, "%s", r.why);
	t_audit_reopen(&a, path, key, NULL);
	cr_assert_eq(audit_check_start(a, 0, err, sizeof(err)), 0, "%s", err);
	r = t_audit_verify(path, pk, NULL);
	cr_expect(r.ok, "%s", r.why);
	cr_expect_eq(r.checkpoints, 4, "3 legacy and the upgrade's");
	t_audit_append(a, 40, 1);
	r = t_audit_verify(path, pk, NULL);
	cr_expect(r.ok, "%s", r.why);
	cr_expect_eq(r.entries, 140);
	/* The stored tree answers as the entries do. */
	cr_assert_eq(audit_root(a, 140, root, aerr, sizeof(aerr)), 0);
	t_audit_reopen(&a, path, key, NULL);
	cr_expect_eq(audit_check_start(a, 0, err, sizeof(err)), 0, "%s", err);
	/* Legacy checkpoints still catch an edit under them. */
	audit_close(a);
	a = NULL;
	t_sql(path, "UPDATE entries SET subject = 'X' WHERE seq = 10");
	t_audit_recompute_chain(path, 10);
	r = t_audit_verify(path, pk, NULL);
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_seq, 30, "%s", r.why);
}

/* Version 1 logs had the subject index inside; opening one for writing drops it. */
Test(audit_format, version_1_log_loses_its_inner_subject_index)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	char		 err[256];

	make_v2_log(6, 3);
	t_sql(path, "CREATE INDEX entries_subject ON entries(subject, seq); PRAGMA user_version = 1;");
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
	cr_expect_eq(t_audit_verify(path, pk, NULL).entries, 6);
}

/* Proofs from the stored tree agree with the checkpoints' roots. */
Test(audit_format, stored_tree_gives_proofs_of_any_size)
{
	unsigned char	 proof[AUDIT_MAX_PROOF][32], root[32];
	size_t		 n;
	char		 err[256];

	t_audit_append(a, 70, 1);
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
Test(audit_format, an_export_needs_its_key_and_all_its_entries)
{
	struct audit_verify_result	 r;
	unsigned char			 id[16];
	char				 exp[300], cmd[700];
	uint64_t			 ncp = 0;
	FILE				*fp;

	t_audit_append(a, 6, 1);
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
Test(audit_format, an_export_line_says_one_thing)
{
	struct audit_verify_result	 r;
	unsigned char			 id[16];
	char				 exp[300], bad[320], cmd[1000];
	uint64_t			 ncp = 0;
	FILE				*fp;

	t_audit_append(a, 3, 1);
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
