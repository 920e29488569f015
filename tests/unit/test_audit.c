/*
 * The disclosure log: durable appends, a hash chain and signed checkpoints
 * that catch tampering and say where (D7).
 */
#include <criterion/criterion.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "testutil.h"

static char		 path[256], key[256], pub[256];
static struct audit	*a;
static EVP_PKEY		*pk;
static char		 aerr[256];	/* the err of the audit calls under test */

T_AUDIT_SUITE(audit, 4, 3600, path, key, pub, a, pk);

static struct audit_verify_result
verify(void)
{
	struct audit_verify_result	 r;
	struct audit			*rd;
	char				 err[256];

	/* A fresh reader, as an auditor would open the file. */
	cr_assert_eq(audit_open_reader(&rd, path, err, sizeof(err)), 0, "%s", err);
	audit_verify(rd, pk, &r);
	audit_close(rd);
	return r;
}

Test(audit, append_chains_checkpoints_and_verifies)
{
	struct audit_verify_result	 r;
	struct audit			*again;
	char				 err[256];

	t_audit_append(a, 10, 0);
	cr_expect_eq(audit_size(a), 10);
	r = verify();
	cr_expect(r.ok, "%s", r.why);
	cr_expect_eq(r.entries, 10);
	cr_expect_eq(r.checkpoints, 10, "one signed checkpoint per commit");
	/* Reopening picks the chain up where it was. */
	audit_close(a);
	cr_assert_eq(audit_open(&again, path, err, sizeof(err)), 0);
	a = again;
	cr_assert_eq(audit_set_signer(a, key, 4, 3600, err, sizeof(err)), 0);
	t_audit_append(a, 2, 0);
	r = verify();
	cr_expect(r.ok, "%s", r.why);
	cr_expect_eq(r.entries, 12);
	cr_expect_eq(r.checkpoints, 12);
}

/*
 * Issue 13 item 3: timed checkpoints never came under steady traffic. Now
 * every commit signs its own, in its transaction: no unsigned tail, ever.
 */
Test(audit, every_commit_signs_a_checkpoint_no_unsigned_tail)
{
	struct audit_verify_result	 r;
	char				*note = NULL;

	for (int i = 1; i <= 5; i++) {
		t_audit_append(a, 1, 0);
		cr_assert_eq(audit_checkpoint_note(a, 0, &note, aerr, sizeof(aerr)), 0);
		cr_expect(strstr(note, "checkpoint ") != NULL, "%s", note);
		{
			char want[64];

			snprintf(want, sizeof(want), "\n%d\n", i);
			cr_expect(strstr(note, want) != NULL, "covers %d: %s", i, note);
		}
		free(note);
		r = verify();
		cr_expect(r.ok, "%s", r.why);
		cr_expect_eq(r.checkpoints, (uint64_t)i);
	}
}

Test(audit, group_append_is_one_transaction)
{
	struct audit_entry		 e[5], *ep[5];
	struct audit_verify_result	 r;

	for (int i = 0; i < 5; i++) {
		memset(&e[i], 0, sizeof(e[i]));
		e[i].kind = "disclosure";
		e[i].time = i;
		ep[i] = &e[i];
	}
	cr_assert_eq(audit_append(a, ep, 5, aerr, sizeof(aerr)), 0);
	cr_expect_eq(e[4].seq, 5);
	cr_expect_eq(memcmp(e[4].prev_hash, e[3].hash, 32), 0);
	r = verify();
	cr_expect(r.ok, "%s", r.why);
}

Test(audit, edited_entry_is_located)
{
	struct audit_verify_result r;

	t_audit_append(a, 6, 0);
	t_sql(path, "UPDATE entries SET subject = 'SOMEONE_ELSE' WHERE seq = 5");
	r = verify();
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_seq, 5);
	cr_expect(strstr(r.why, "edited") != NULL, "%s", r.why);
}

Test(audit, deleted_entry_is_located)
{
	struct audit_verify_result r;

	t_audit_append(a, 6, 0);
	t_sql(path, "DELETE FROM entries WHERE seq = 3");
	r = verify();
	cr_expect_eq(r.bad_seq, 3);
	cr_expect(strstr(r.why, "missing") != NULL, "%s", r.why);
}

Test(audit, swapped_entries_are_located)
{
	struct audit_verify_result r;

	t_audit_append(a, 6, 0);
	t_sql(path, "UPDATE entries SET seq = -2 WHERE seq = 2;"
	    "UPDATE entries SET seq = 2 WHERE seq = 3;"
	    "UPDATE entries SET seq = 3 WHERE seq = -2;");
	r = verify();
	cr_expect_eq(r.bad_seq, 2, "%s", r.why);
	cr_expect(strstr(r.why, "does not link") != NULL, "%s", r.why);
}

Test(audit, truncation_after_a_checkpoint_is_detected)
{
	struct audit_verify_result r;

	t_audit_append(a, 8, 0);	/* checkpoints at 4 and 8 */
	t_sql(path, "DELETE FROM entries WHERE seq > 6");
	r = verify();
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_seq, 7);
	cr_expect(strstr(r.why, "truncated") != NULL, "%s", r.why);
}

Test(audit, rewritten_chain_contradicts_the_signed_head)
{
	struct audit_verify_result	 r;
	struct audit			*w;
	struct audit_entry		 e, *ep = &e;
	char				 err[256];

	t_audit_append(a, 4, 0);	/* checkpoint at 4 */
	/* An attacker rewrites entry 2 and recomputes every hash after it. */
	t_sql(path, "DELETE FROM entries WHERE seq >= 2");
	audit_close(a);
	cr_assert_eq(audit_open(&w, path, err, sizeof(err)), 0);
	a = w;
	for (int i = 0; i < 3; i++) {
		memset(&e, 0, sizeof(e));
		e.time = 1001 + i;
		e.kind = "disclosure";
		e.agency = i == 0 ? "someone_else" : "police";
		cr_assert_eq(audit_append(a, &ep, 1, aerr, sizeof(aerr)), 0);
	}
	r = verify();
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_seq, 2, "%s", r.why);
	cr_expect_eq(r.bad_checkpoint, 2, "%s", r.why);
	cr_expect(strstr(r.why, "rewritten") != NULL, "%s", r.why);
}

Test(audit, forged_checkpoint_is_detected)
{
	struct audit_verify_result r;

	t_audit_append(a, 4, 0);
	t_sql(path, "UPDATE checkpoints SET note = replace(note, 'time ', 'time 1') "
	    "WHERE size = 3");
	r = verify();
	cr_expect_not(r.ok);
	cr_expect_eq(r.bad_seq, 3);
	cr_expect_eq(r.bad_checkpoint, 3);
	cr_expect(strstr(r.why, "forged") != NULL, "%s", r.why);
}

Test(audit, without_a_public_key_signatures_are_not_claimed)
{
	struct audit_verify_result	 r;
	struct audit			*rd;
	char				 err[256];

	t_audit_append(a, 4, 0);
	cr_assert_eq(audit_open_reader(&rd, path, err, sizeof(err)), 0);
	/* Issue 13, attack 6: never a pass when the log has checkpoints. */
	cr_expect_eq(audit_verify(rd, NULL, &r), -1);
	cr_expect_not(r.ok);
	cr_expect_not(r.signatures_checked);
	cr_expect_eq(r.checkpoints, 0);
	cr_expect_eq(r.checkpoints_seen, 4);
	cr_expect(strstr(r.why, "no public key") != NULL, "%s", r.why);
	audit_close(rd);
}

Test(audit, unsigned_key_file_must_be_secret)
{
	char err[256];

	chmod(key, 0644);
	cr_expect_eq(audit_set_signer(a, key, 4, 60, err, sizeof(err)), -1);
	cr_expect(strstr(err, "group or world") != NULL, "%s", err);
}
