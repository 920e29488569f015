/*
 * Signing key rotation through the real daemon (issue 13 item 7;
 * docs/security.md "rotation", docs/deploy-ha.md "The signing key"), on
 * both backends (integration_rotate, integration_rotate_pg): a restart
 * with the new key and audit.previous_signing_key logs the transition,
 * and the auditor's verify, online and of the export, follows it from the
 * first key; receipts from either side of it verify, and receipt check
 * with the first key alone follows the transition. Then, on PostgreSQL,
 * two daemons on one log: the one still holding the old key fails closed.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "logstore.h"

static struct daemon d;

H_DEMO_SUITE(rotate, d, 180);

/* pki/new.key and new.pub: the next signing key, mode 0600. */
static void
new_key(void)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "cd %s/pki && umask 077 && openssl genpkey "
	    "-algorithm ed25519 -out new.key && openssl pkey -in new.key -pubout "
	    "-out new.pub", d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0);
}

/*
 * The config of dm at conf (the harness's, written again), signed by key,
 * with prev for one start (or NULL).
 */
static void
keys_config(struct daemon *dm, const char *conf, const char *key,
    const char *prev)
{
	char	cmd[2048];

	snprintf(dm->conf, sizeof(dm->conf), "%s/%s", d.dir, conf);
	h_write_config(dm, dm->audit);
	snprintf(cmd, sizeof(cmd), "sed -i 's|signing_key: pki/audit-signing.key|"
	    "signing_key: pki/%s%s%s|' %s", key, prev ? "\\n  previous_signing_key: "
	    "pki/" : "", prev ? prev : "", dm->conf);
	cr_assert_eq(h_run(cmd, NULL), 0);
}

/* A disclosure as police about S1001 to dm, its receipt kept in d.dir/r. */
static int
ask(struct daemon *dm)
{
	char	args[1024], *out;
	int	rc;

	snprintf(args, sizeof(args), "mkdir -p %s/r", d.dir);
	cr_assert_eq(h_run(args, NULL), 0);
	snprintf(args, sizeof(args), "request --subject S1001 --record-type person "
	    "--purpose child_protection --case CASE-1 --practitioner 'DC Jones' "
	    "--receipts %s/r", d.dir);
	rc = h_cli(dm, "police", args, &out);
	free(out);
	return rc == 3 ? 0 : rc;	/* 3: refused, which is logged too */
}

/* safeshare audit verify of d's log, online, from the first key. */
static int
verify_online(char **out)
{
	char cmd[4096], logarg[2048];

	snprintf(cmd, sizeof(cmd), "%s audit verify %s --pubkey "
	    "%s/pki/audit-signing.pub 2>&1", SAFESHARE_BIN,
	    h_log_arg(&d, logarg, sizeof(logarg)), d.dir);
	return h_run(cmd, out);
}

/* -t with dm's config: its exit status, the output into *out. */
static int
check(struct daemon *dm, char **out)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "%s -t -c %s 2>&1", SAFESHARED_BIN, dm->conf);
	return h_run(cmd, out);
}

Test(rotate, a_restart_with_both_keys_logs_the_transition)
{
	char	cmd[2048], args[2048], *out;

	cr_expect_eq(ask(&d), 0);
	cr_assert_eq(h_stop(&d), 0);
	new_key();
	/* The new key alone: refused by -t and by the start, with the remedy. */
	keys_config(&d, "new-only.yaml", "new.key", NULL);
	cr_expect_eq(check(&d, &out), 1, "%s", out);
	cr_expect(strstr(out, "audit.previous_signing_key") != NULL, "%s", out);
	free(out);
	/* Both: -t says ok, the start logs the rotation once. */
	keys_config(&d, "rotate.yaml", "new.key", "audit-signing.key");
	cr_expect_eq(check(&d, &out), 0, "%s", out);
	free(out);
	cr_expect_eq(h_log_count(&d, "kind = 'key_rotation'"), 0, "-t logs nothing");
	d.port = 0;
	h_start(&d);
	cr_expect_eq(h_log_count(&d, "kind = 'key_rotation'"), 1);
	cr_expect_eq(ask(&d), 0);
	cr_assert_eq(h_stop(&d), 0);
	/* The next start, with the new key alone, rotates nothing more. */
	keys_config(&d, "new-only.yaml", "new.key", NULL);
	d.port = 0;
	h_start(&d);
	cr_expect_eq(ask(&d), 0);
	cr_expect_eq(h_log_count(&d, "kind = 'key_rotation'"), 1);

	/* The auditor holds the first key only: online and offline verify. */
	cr_expect_eq(verify_online(&out), 0, "%s", out);
	free(out);
	snprintf(args, sizeof(args), "audit export --out %s/export.jsonl", d.dir);
	cr_expect_eq(h_cli(&d, "auditor", args, &out), 0, "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "%s audit verify --export %s/export.jsonl "
	    "--pubkey %s/pki/audit-signing.pub 2>&1", SAFESHARE_BIN, d.dir, d.dir);
	cr_expect_eq(h_run(cmd, &out), 0, "%s", out);
	free(out);
	/* The new key alone does not vouch for the log's beginning. */
	snprintf(cmd, sizeof(cmd), "%s audit verify --export %s/export.jsonl "
	    "--pubkey %s/pki/new.pub 2>&1", SAFESHARE_BIN, d.dir, d.dir);
	cr_expect_neq(h_run(cmd, &out), 0, "%s", out);
	free(out);
	/* Receipts: the one before the rotation by the old key, the later by the new. */
	snprintf(cmd, sizeof(cmd), "cd %s/r && ls *.receipt | sort -n | head -1 > "
	    "../first && ls *.receipt | sort -n | tail -n +2 > ../later", d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0);
	snprintf(args, sizeof(args), "receipt verify %s/r/$(cat %s/first) --pubkey "
	    "%s/pki/audit-signing.pub", d.dir, d.dir, d.dir);
	cr_expect_eq(h_cli(&d, "police", args, &out), 0, "%s", out);
	free(out);
	snprintf(args, sizeof(args), "receipt verify $(sed 's|^|%s/r/|' %s/later) "
	    "--pubkey %s/pki/new.pub", d.dir, d.dir, d.dir);
	cr_expect_eq(h_cli(&d, "police", args, &out), 0, "%s", out);
	cr_expect(strstr(out, "ok, entry") != NULL, "%s", out);
	free(out);

	/*
	 * receipt check after the rotation, the partner holding only the
	 * first key: it follows the logged transition to the new key, and
	 * every receipt, from before the rotation and after, is still in the
	 * log the new key signs today.
	 */
	snprintf(args, sizeof(args), "receipt check %s/r --pubkey "
	    "%s/pki/audit-signing.pub", d.dir, d.dir);
	cr_expect_eq(h_cli(&d, "police", args, &out), 0, "%s", out);
	cr_expect(strstr(out, "followed 1 rotation(s)") != NULL, "%s", out);
	cr_expect(strstr(out, "FAILED") == NULL, "%s", out);
	free(out);
	/*
	 * With the wrong first key (the new one) the transition was signed by
	 * a key outside the chain: it fails loudly, naming the rotation.
	 */
	snprintf(args, sizeof(args), "receipt check %s/r --pubkey %s/pki/new.pub",
	    d.dir, d.dir);
	cr_expect_eq(h_cli(&d, "police", args, &out), 1, "%s", out);
	cr_expect(strstr(out, "KEY ROTATION FAILED: the log's key rotation 1 is "
	    "not signed by the key in force") != NULL, "%s", out);
	cr_expect(strstr(out, "next-key ") != NULL, "%s", out);
	free(out);
	/*
	 * The same with --json: stdout alone is one object saying where the
	 * check stopped and why (it printed nothing), the exit status as
	 * without.
	 */
	snprintf(cmd, sizeof(cmd), "SAFESHARE_SERVER=%s SAFESHARE_CERT=%s/pki/"
	    "police.crt SAFESHARE_KEY=%s/pki/police.key SAFESHARE_CA=%s/pki/ca.crt "
	    "%s receipt check %s/r --pubkey %s/pki/new.pub --json 2>/dev/null",
	    d.server, d.dir, d.dir, d.dir, SAFESHARE_BIN, d.dir, d.dir);
	cr_expect_eq(h_run(cmd, &out), 1, "%s", out);
	cr_expect(strstr(out, "{\"ok\":false,\"stage\":\"key_chain\",\"why\":"
	    "\"the log's key rotation 1 is not signed by the key in force") == out,
	    "stdout: [%s]", out);
	free(out);
	/* A trusted list: every receipt verifies, and says which key signed. */
	snprintf(args, sizeof(args), "receipt verify %s/r/*.receipt --pubkey "
	    "%s/pki/audit-signing.pub --pubkey %s/pki/new.pub", d.dir, d.dir,
	    d.dir);
	cr_expect_eq(h_cli(&d, "police", args, &out), 0, "%s", out);
	cr_expect(strstr(out, "signed by ") != NULL &&
	    strstr(out, "pki/audit-signing.pub (key id") != NULL &&
	    strstr(out, "pki/new.pub (key id") != NULL, "%s", out);
	free(out);
}

/* GET /healthz as police on dm: the status, and the Health's audit_error. */
static int
health(struct daemon *dm, char *why, size_t len)
{
	Safeshare__V1__Health	*h;
	char			*body = NULL;
	int			 st;

	why[0] = '\0';
	st = h_get(dm, "police", "/healthz", &body);
	cr_assert_not_null(body);
	h = safeshare__v1__health__unpack(NULL, strlen(body), (uint8_t *)body);
	if (h != NULL) {
		snprintf(why, len, "%s", h->audit_error);
		safeshare__v1__health__free_unpacked(h, NULL);
	}
	free(body);
	return st;
}

/*
 * Two daemons on one PostgreSQL log (deploy-ha.md "The signing key"): the
 * second starts with the new key and the old one and makes the rotation;
 * the first, still holding the old key, must not sign any more: its
 * requests that need the log get 503 audit_unavailable with nothing
 * released, its /healthz says why, -t with its config refuses; restarted
 * with the new key it serves again, and the log verifies from the first key.
 */
Test(rotate, the_daemon_still_holding_the_old_key_fails_closed)
{
	struct h_ask				 a = { "S1001", "child_protection",
						    "person", 0, NULL, NULL, NULL };
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e = NULL;
	struct daemon				 d2 = d;
	char					 why[512], *out;
	int					 st;

	if (!h_pg_wanted())
		cr_skip_test("PostgreSQL-only: two daemons on one log");
	cr_assert_eq(ask(&d), 0);
	new_key();
	snprintf(d2.log, sizeof(d2.log), "%s/safeshared2.log", d.dir);
	keys_config(&d2, "second.yaml", "new.key", "audit-signing.key");
	d2.port = 0;
	h_start(&d2);
	cr_expect_eq(h_log_count(&d, "kind = 'key_rotation'"), 1);
	cr_expect_eq(ask(&d2), 0, "the new key serves");

	r = h_ask(&d, "police", &a, &st, &e);
	cr_expect_eq(st, 503, "the old key's daemon answered %d", st);
	cr_expect(r == NULL || r->n_released == 0, "nothing released");
	cr_expect(e != NULL && strcmp(e->code, "audit_unavailable") == 0, "%s",
	    e != NULL ? e->code : "no error");
	if (r != NULL)
		safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	if (e != NULL)
		safeshare__v1__error__free_unpacked(e, NULL);
	cr_expect_eq(health(&d, why, sizeof(why)), 503);
	cr_expect(strstr(why, "the log's signing key has been rotated; restart "
	    "with the new key") != NULL, "%s", why);
	cr_expect_eq(check(&d, &out), 1, "%s", out);
	cr_expect(strstr(out, "has been rotated") != NULL, "%s", out);
	free(out);

	/* Restarted with the new key: both serve, one transition in the log. */
	cr_assert_eq(h_stop(&d), 0);
	keys_config(&d, "first-new.yaml", "new.key", NULL);
	d.port = 0;
	h_start(&d);
	cr_expect_eq(ask(&d), 0);
	cr_expect_eq(ask(&d2), 0);
	cr_expect_eq(health(&d, why, sizeof(why)), 200, "%s", why);
	cr_expect_eq(h_stop(&d2), 0);
	cr_expect_eq(h_log_count(&d, "kind = 'key_rotation'"), 1);
	cr_expect_eq(verify_online(&out), 0, "%s", out);
	free(out);
}

/*
 * More key rotations than one reply of /v1/log/consistency holds (64):
 * the daemon answered 503 to the key_notes request, so `receipt check`
 * could not follow the chain at all. Now it hands them out 64 a reply
 * and the client asks page after page. The log is rotated 65 times while
 * the daemon is stopped, through the log interface the daemon uses
 * (each start with a new key and the one before it), then the daemon
 * starts with the last key: a receipt from before and one from after
 * are checked from the first key alone.
 */
Test(rotate, more_rotations_than_one_reply_holds_are_followed_page_by_page,
    .timeout = 300)
{
	struct logstore		*l;
	struct audit_entry	 e, *ep = &e;
	char			 cmd[2048], args[2048], key[600], prev[600], err[512];
	char			*out;
	int			 n = 65;

	cr_assert_eq(ask(&d), 0);
	cr_assert_eq(h_stop(&d), 0);
	snprintf(cmd, sizeof(cmd), "cd %s/pki && umask 077 && i=1 && while [ $i "
	    "-le %d ]; do openssl genpkey -algorithm ed25519 -out k$i.key || "
	    "exit 1; i=$((i + 1)); done", d.dir, n);
	cr_assert_eq(h_run(cmd, NULL), 0);
	for (int i = 1; i <= n; i++) {
		snprintf(key, sizeof(key), "%s/pki/k%d.key", d.dir, i);
		if (i == 1)
			snprintf(prev, sizeof(prev), "%s/pki/audit-signing.key", d.dir);
		else
			snprintf(prev, sizeof(prev), "%s/pki/k%d.key", d.dir, i - 1);
		cr_assert_eq(logstore_open(&l, h_pg_wanted() ? &logstore_postgresql :
		    &logstore_sqlite, h_pg_wanted() ? d.pg_conninfo : d.audit,
		    LOGSTORE_WRITER, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(logstore_set_signer(l, key, 0, 0, err, sizeof(err)), 0,
		    "%s", err);
		cr_assert_eq(logstore_set_previous_signer(l, prev, err, sizeof(err)),
		    0, "%s", err);
		cr_assert_eq(logstore_check_start(l, 0, err, sizeof(err)), 0,
		    "rotation %d: %s", i, err);
		/* An entry the new key signs, as the daemon's first commit would. */
		memset(&e, 0, sizeof(e));
		e.time = time(NULL);
		e.kind = "disclosure";
		e.agency = "police";
		e.decision = "allow";
		cr_assert_eq(logstore_append(l, &ep, 1, err, sizeof(err)), 0, "%s",
		    err);
		logstore_close(l);
	}
	snprintf(key, sizeof(key), "k%d.key", n);
	keys_config(&d, "last.yaml", key, NULL);
	d.port = 0;
	h_start(&d);
	cr_expect_eq(h_log_count(&d, "kind = 'key_rotation'"), n);
	cr_expect_eq(ask(&d), 0);
	snprintf(args, sizeof(args), "receipt check %s/r --pubkey "
	    "%s/pki/audit-signing.pub", d.dir, d.dir);
	cr_expect_eq(h_cli(&d, "police", args, &out), 0, "%s", out);
	cr_expect(strstr(out, "followed 65 rotation(s)") != NULL, "%s", out);
	cr_expect(strstr(out, "FAILED") == NULL, "%s", out);
	free(out);
}
