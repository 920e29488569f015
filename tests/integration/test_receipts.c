/*
 * Receipts and witnesses over real mTLS (D7, D15-D17, issue 13): every
 * reply carries a receipt that verifies offline after the daemon is gone;
 * a witness run by a partner agency follows the log as it grows and
 * catches a fork made with the log's own key (two different logs signed
 * by the same key) and a truncation; `receipt check` fails loudly on a
 * rewritten log.
 */
#include <sys/stat.h>

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static struct daemon d;

H_DEMO_SUITE(receipts, d, 180);

static int
cli(const char *agency, const char *args, char **out)
{
	return h_cli(&d, agency, args, out);
}

/*
 * A request by the police about subject, keeping its receipt in dir (NULL:
 * none). Returns 0 for a decision, allowed or denied (exit 0 or 3).
 */
static int
ask(const char *subject, const char *dir)
{
	char	args[2048], *out;
	int	rc;

	snprintf(args, sizeof(args), "request --subject %s --record-type person "
	    "--purpose child_protection --case CASE-1 --practitioner 'DC Jones'%s%s%s%s",
	    subject, dir ? " --receipts " : "", dir ? d.dir : "", dir ? "/" : "",
	    dir ? dir : "");
	rc = cli("police", args, &out);
	free(out);
	return rc == 3 ? 0 : rc;
}

static int
count_receipts(const char *dir)
{
	char	cmd[1024], *out;
	int	n;

	snprintf(cmd, sizeof(cmd), "ls %s/%s | grep -c '\\.receipt$'", d.dir, dir);
	h_run(cmd, &out);
	n = atoi(out);
	free(out);
	return n;
}

static int
witness(const char *state, char **out)
{
	char args[2048];

	snprintf(args, sizeof(args), "audit witness --state %s/%s --pubkey "
	    "%s/pki/audit-signing.pub", d.dir, state, d.dir);
	return cli("housing", args, out);
}

/* Copies the daemon's files (log, subject index, store) aside, stopped. */
static void
snapshot(const char *name)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "mkdir -p %s/%s && cp -p %s/audit.db* %s/store.db* "
	    "%s/%s/", d.dir, name, d.dir, d.dir, d.dir, name);
	cr_assert_eq(h_run(cmd, NULL), 0);
}

static void
restore(const char *name)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "rm -f %s/audit.db* %s/store.db* && cp -p %s/%s/* %s/",
	    d.dir, d.dir, d.dir, name, d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0);
}

/*
 * Allowed, denied and refused requests each leave a receipt; they verify
 * with only the log's public key, after the daemon has stopped and its
 * log is gone; an altered receipt fails.
 */
Test(receipts, verify_offline_after_the_daemon_is_gone)
{
	char	cmd[2048], args[2048], *out;

	snprintf(cmd, sizeof(cmd), "mkdir %s/r", d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0);
	cr_expect_eq(ask("S1001", "r"), 0);
	cr_expect_eq(ask("S1004", "r"), 0);
	cr_expect_eq(ask("S1002", "r"), 0);
	cr_expect_eq(ask("S9999", "r"), 4, "an unknown subject: refused, logged");
	cr_expect_eq(count_receipts("r"), 4);

	cr_assert_eq(h_stop(&d), 0);
	snprintf(cmd, sizeof(cmd), "rm -f %s/audit.db*", d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0);

	snprintf(args, sizeof(args), "receipt verify %s/r/*.receipt --pubkey "
	    "%s/pki/audit-signing.pub", d.dir, d.dir);
	cr_expect_eq(cli("police", args, &out), 0, "%s", out);
	cr_expect(strstr(out, ": ok, entry ") != NULL, "%s", out);
	free(out);

	/* Claim another entry: the proof no longer leads to the root. The
	 * leaf's first character always changes (A becomes B, anything else A). */
	snprintf(cmd, sizeof(cmd), "f=$(ls %s/r/*.receipt | head -1); "
	    "sed -i 's/^leaf A/leaf B/; t; s/^leaf ./leaf A/' $f", d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0);
	cr_expect_eq(cli("police", args, &out), 1, "%s", out);
	cr_expect(strstr(out, "FAILED") != NULL, "%s", out);
	free(out);

	/* Another key does not vouch for them. */
	snprintf(args, sizeof(args), "receipt verify %s/r/*.receipt --pubkey "
	    "%s/pki/ca.crt", d.dir, d.dir);
	cr_expect_neq(cli("police", args, &out), 0, "%s", out);
	free(out);
}

/*
 * A fork made with the key. The log is copied aside (A); it grows by a
 * few requests, seen by a witness and by a partner's receipts; then the
 * copy is put back and grows by other requests, so that two different
 * logs are signed by the same key under the same origin. Each log
 * verifies on its own; the witness and `receipt check` catch the fork.
 * Put back again, shorter, the witness catches the truncation.
 */
Test(receipts, witness_catches_fork_made_with_the_key_and_truncation)
{
	char	cmd[1024], args[2048], *out;

	H_SQLITE_ONLY("the fork is made by putting back copies of the log file");
	snprintf(cmd, sizeof(cmd), "mkdir %s/r", d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0);
	cr_expect_eq(ask("S1001", "r"), 0);
	cr_expect_eq(witness("w.state", &out), 0, "%s", out);
	cr_expect(strstr(out, "first checkpoint") != NULL, "%s", out);
	free(out);

	cr_assert_eq(h_stop(&d), 0);
	snapshot("fork-point");
	h_start(&d);

	cr_expect_eq(ask("S1001", "r"), 0);
	cr_expect_eq(ask("S1004", "r"), 0);
	cr_expect_eq(witness("w.state", &out), 0, "%s", out);
	cr_expect(strstr(out, "consistent") != NULL, "%s", out);
	free(out);
	snprintf(args, sizeof(args), "receipt check %s/r --pubkey %s/pki/audit-signing.pub",
	    d.dir, d.dir);
	cr_expect_eq(cli("police", args, &out), 0, "%s", out);
	free(out);
	cr_assert_eq(h_stop(&d), 0);
	snapshot("branch-a");

	/* The other branch: the same key, the same origin, other entries. */
	restore("fork-point");
	h_start(&d);
	cr_expect_eq(ask("S1002", NULL), 0);
	cr_expect_eq(ask("S1003", NULL), 0);
	cr_expect_eq(ask("S1002", NULL), 0);
	cr_expect_eq(witness("w.state", &out), 1, "%s", out);
	cr_expect(strstr(out, "WITNESS ALARM") != NULL, "%s", out);
	cr_expect(strstr(out, "the checkpoint this witness kept") != NULL, "%s", out);
	cr_expect(strstr(out, "the log's current checkpoint") != NULL, "%s", out);
	free(out);
	/* The evidence stays: the next run alarms again. */
	cr_expect_eq(witness("w.state", &out), 1, "%s", out);
	free(out);
	cr_expect_eq(cli("police", args, &out), 1, "%s", out);
	cr_expect(strstr(out, "RECEIPT FAILED") != NULL, "%s", out);
	free(out);

	/* The log as it was before: shorter than what the witness saw. */
	cr_assert_eq(h_stop(&d), 0);
	restore("fork-point");
	h_start(&d);
	cr_expect_eq(witness("w.state", &out), 1, "%s", out);
	cr_expect(strstr(out, "truncated") != NULL, "%s", out);
	free(out);
}

/* A witness that co-signs keeps the checkpoint with its own signature line. */
Test(receipts, witness_cosigns_and_follows)
{
	char	cmd[2048], args[2048], *out;

	snprintf(cmd, sizeof(cmd), "openssl genpkey -algorithm ed25519 -out %s/w.key "
	    "2>/dev/null && chmod 600 %s/w.key", d.dir, d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0);
	cr_expect_eq(ask("S1001", NULL), 0);
	snprintf(args, sizeof(args), "audit witness --state %s/w.state --pubkey "
	    "%s/pki/audit-signing.pub --cosign %s/w.key --name witness.housing "
	    "--follow --interval 1 --rounds 2", d.dir, d.dir, d.dir);
	cr_expect_eq(cli("housing", args, &out), 0, "%s", out);
	cr_expect(strstr(out, "cosigning as witness.housing+") != NULL, "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "grep -c '^\xe2\x80\x94 witness.housing ' %s/w.state",
	    d.dir);
	cr_expect_eq(h_run(cmd, &out), 0, "%s", out);
	cr_expect_eq(atoi(out), 1, "one cosignature line, not one per round");
	free(out);
	/* An agency the protocol does not know may not ask. */
	snprintf(args, sizeof(args), "audit witness --state %s/x.state --pubkey "
	    "%s/pki/audit-signing.pub", d.dir, d.dir);
	{
		int rc = cli("stranger", args, &out);

		/* Refused (4), or closed at the handshake (5): never served. */
		cr_expect(rc == 4 || rc == 5, "exit %d: %s", rc, out);
	}
	free(out);
}

/*
 * `audit verify --export FILE --witness ...` (issue 13): an export, like
 * --log, must extend every witnessed checkpoint, and the cosignatures are
 * counted. An export taken before the witness's checkpoint verifies on
 * its own but does not reach it.
 */
Test(receipts, verify_export_with_witness)
{
	char	cmd[2048], args[2048], wkey[512], *out, *p;
	size_t	n;

	snprintf(cmd, sizeof(cmd), "openssl genpkey -algorithm ed25519 -out %s/w.key "
	    "2>/dev/null && chmod 600 %s/w.key", d.dir, d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0);
	cr_expect_eq(ask("S1001", NULL), 0);
	snprintf(args, sizeof(args), "audit export --out %s/before.jsonl", d.dir);
	cr_expect_eq(cli("auditor", args, &out), 0, "%s", out);
	free(out);
	cr_expect_eq(ask("S1002", NULL), 0);
	snprintf(args, sizeof(args), "audit witness --state %s/w.state --pubkey "
	    "%s/pki/audit-signing.pub --cosign %s/w.key --name witness.housing",
	    d.dir, d.dir, d.dir);
	cr_expect_eq(cli("housing", args, &out), 0, "%s", out);
	cr_assert((p = strstr(out, "cosigning as ")) != NULL, "%s", out);
	p += strlen("cosigning as ");
	n = strcspn(p, " \n");
	cr_assert(n > 0 && n < sizeof(wkey));
	memcpy(wkey, p, n);
	wkey[n] = '\0';
	free(out);
	cr_expect_eq(ask("S1004", NULL), 0);
	snprintf(args, sizeof(args), "audit export --out %s/after.jsonl", d.dir);
	cr_expect_eq(cli("auditor", args, &out), 0, "%s", out);
	free(out);

	snprintf(args, sizeof(args), "audit verify --export %s/after.jsonl --pubkey "
	    "%s/pki/audit-signing.pub --witness %s/w.state --witness-key %s "
	    "--min-witnesses 1", d.dir, d.dir, d.dir, wkey);
	cr_expect_eq(cli("auditor", args, &out), 0, "%s", out);
	cr_expect(strstr(out, "witnesses: ok, 1 witness key(s) co-signed") != NULL,
	    "%s", out);
	free(out);

	snprintf(args, sizeof(args), "audit verify --export %s/after.jsonl --pubkey "
	    "%s/pki/audit-signing.pub --witness %s/w.state --witness-key %s "
	    "--min-witnesses 2", d.dir, d.dir, d.dir, wkey);
	cr_expect_eq(cli("auditor", args, &out), 1, "%s", out);
	cr_expect(strstr(out, "1 of the 1 witness keys co-signed, 2 required") != NULL,
	    "%s", out);
	free(out);

	/* On its own the earlier export is fine; it stops short of the witness. */
	snprintf(args, sizeof(args), "audit verify --export %s/before.jsonl --pubkey "
	    "%s/pki/audit-signing.pub", d.dir, d.dir);
	cr_expect_eq(cli("auditor", args, &out), 0, "%s", out);
	free(out);
	snprintf(args, sizeof(args), "audit verify --export %s/before.jsonl --pubkey "
	    "%s/pki/audit-signing.pub --witness %s/w.state --witness-key %s "
	    "--min-witnesses 1", d.dir, d.dir, d.dir, wkey);
	cr_expect_eq(cli("auditor", args, &out), 1, "%s", out);
	cr_expect(strstr(out, "does not extend this witnessed checkpoint") != NULL,
	    "%s", out);
	free(out);
}
