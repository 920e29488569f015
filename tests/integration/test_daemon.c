/*
 * The real safeshared over real mutual TLS: identities, decisions, errors,
 * and the disclosure log behind every one of them.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static struct daemon d;

H_DEMO_SUITE(daemon, d, 60);

static Safeshare__V1__DisclosureResponse *
ask(struct ss_client *c, const char *subject, const char *purpose, const char *rt,
    int *status, Safeshare__V1__Error **error)
{
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__DisclosureResponse	*resp;
	char					 err[512];

	rq.subject_id = (char *)subject;
	rq.purpose = (char *)purpose;
	rq.record_type = (char *)rt;
	rq.case_reference = "CASE-1";
	rq.practitioner = "Test Practitioner";
	cr_assert_eq(ss_disclose(c, &rq, &resp, error, status, err, sizeof(err)), 0,
	    "%s", err);
	return resp;
}

static const char *
released(const Safeshare__V1__DisclosureResponse *r, const char *name)
{
	for (size_t i = 0; i < r->n_released; i++)
		if (strcmp(r->released[i]->name, name) == 0)
			return r->released[i]->value;
	return NULL;
}

Test(daemon, allowed_request_gets_exactly_the_rule_fields)
{
	struct ss_client			*c = h_client(&d, "police");
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e;
	int					 status;

	r = ask(c, "S1001", "child_protection", "person", &status, &e);
	cr_assert_eq(status, 200);
	cr_assert_not_null(r);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_ALLOW);
	cr_expect_str_eq(r->rule_id, "police-child-person");
	/* D2: the five fields of the rule, nothing else. */
	cr_expect_eq(r->n_released, 5);
	cr_expect_str_eq(released(r, "full_name"), "Amelia Hart");
	cr_expect_str_eq(released(r, "address"), "12 Orchard Row, Exampleton");
	cr_expect_null(released(r, "gp_practice"));
	cr_assert_eq(r->n_withheld, 1);
	cr_expect_str_eq(r->withheld[0]->name, "gp_practice");
	cr_expect_str_eq(r->withheld[0]->reason, "not_in_rule");
	cr_expect_gt(r->released[0]->last_verified, 0, "D9");
	cr_expect_gt(r->disclosure_id, 0);
	cr_expect_neq(r->lawful_basis[0], '\0', "D14");
	/* D7: the disclosure id is the logged entry. */
	cr_expect_eq(h_log_count(&d, "decision = 'allow' AND agency = 'police' AND "
	    "subject = 'S1001'"), 1);
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	ss_client_free(c);
}

Test(daemon, flagged_fields_withheld_and_consent_refusal_denied)
{
	struct ss_client			*police = h_client(&d, "police");
	struct ss_client			*health = h_client(&d, "health_trust");
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e;
	int					 status;

	/* D12: S1003 carries domestic_abuse; police's rule withholds address. */
	r = ask(police, "S1003", "child_protection", "person", &status, &e);
	cr_assert_not_null(r);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_PARTIAL);
	cr_expect_null(released(r, "address"));
	cr_expect_null(released(r, "phone"));
	cr_expect_str_eq(released(r, "full_name"), "Priya Shah");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);

	/* D4: S1002 refused consent. */
	r = ask(health, "S1002", "adult_safeguarding", "person", &status, &e);
	cr_assert_not_null(r);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_DENY);
	cr_expect_str_eq(r->reason, "consent_refused");
	cr_expect_eq(r->n_released, 0);
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);

	/* D2: health gets an age band, not the date of birth. */
	r = ask(health, "S1003", "adult_safeguarding", "person", &status, &e);
	cr_assert_not_null(r);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_ALLOW);
	cr_expect_str_eq(released(r, "date_of_birth"), "35-44");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	ss_client_free(police);
	ss_client_free(health);
}

Test(daemon, no_rule_is_denied_and_logged)
{
	struct ss_client			*c = h_client(&d, "police");
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e;
	int					 status;

	r = ask(c, "S1002", "adult_safeguarding", "person", &status, &e);
	cr_assert_not_null(r);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_DENY);
	cr_expect_str_eq(r->reason, "no_rule");
	cr_expect_eq(h_log_count(&d, "reason = 'no_rule'"), 1);
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	ss_client_free(c);
}

Test(daemon, unknown_subject_is_404)
{
	struct ss_client			*c = h_client(&d, "police");
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e;
	int					 status;

	r = ask(c, "NOBODY", "child_protection", "person", &status, &e);
	cr_expect_null(r);
	cr_assert_not_null(e);
	cr_expect_eq(status, 404);
	cr_expect_str_eq(e->code, "unknown_subject");
	cr_expect_gt(e->disclosure_id, 0, "the refusal is logged too");
	safeshare__v1__error__free_unpacked(e, NULL);
	ss_client_free(c);
}

Test(daemon, no_client_certificate_is_refused_in_tls)
{
	char cert[512], key[512];

	snprintf(cert, sizeof(cert), "%s/pki/police.crt", d.dir);
	snprintf(key, sizeof(key), "%s/pki/police.key", d.dir);
	cr_expect_eq(h_tls_probe(&d, NULL, NULL), 0, "D10: no certificate, no reply");
	cr_expect_eq(h_tls_probe(&d, cert, key), 1, "the probe itself works");
	cr_expect_eq(h_log_count(&d, "kind != 'store'"), 0, "nothing reached the policy step");
}

Test(daemon, certificate_from_another_ca_is_refused)
{
	struct ss_client			*c = h_client(&d, "other:police");
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e;
	char					 err[512], cert[512], key[512];
	int					 status;

	rq.subject_id = "S1001";
	cr_expect_eq(ss_disclose(c, &rq, &r, &e, &status, err, sizeof(err)), -1,
	    "a look-alike police certificate from another CA gets nothing");
	snprintf(cert, sizeof(cert), "%s/other/police.crt", d.dir);
	snprintf(key, sizeof(key), "%s/other/police.key", d.dir);
	cr_expect_eq(h_tls_probe(&d, cert, key), 0);
	cr_expect_eq(h_log_count(&d, "kind != 'store'"), 0);
	ss_client_free(c);
}

/*
 * A certificate from our CA that maps to no agency gets nothing: the
 * handshake is refused (bad_certificate), before any HTTP (issue 14
 * items 7 and 13; docs/security.md). test_conn checks /healthz and /metrics.
 */
Test(daemon, unknown_agency_gets_nothing)
{
	struct ss_client			*c = h_client(&d, "stranger");
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__DisclosureResponse	*r = NULL;
	Safeshare__V1__Error			*e = NULL;
	char					 err[512];
	int					 status = 0;

	rq.subject_id = "S1001";
	rq.purpose = "child_protection";
	rq.record_type = "person";
	rq.case_reference = "CASE-1";
	rq.practitioner = "Test Practitioner";
	cr_expect_eq(ss_disclose(c, &rq, &r, &e, &status, err, sizeof(err)), -1,
	    "status %d", status);
	cr_expect_null(r);
	cr_expect_null(e);
	cr_expect_eq(h_log_count(&d, "kind != 'store'"), 0,
	    "no request reached the policy step (store entries: issue 15)");
	ss_client_free(c);
}

Test(daemon, agency_without_requester_role_is_403)
{
	struct ss_client			*c = h_client(&d, "auditor");
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e;
	int					 status;

	r = ask(c, "S1001", "child_protection", "person", &status, &e);
	cr_expect_null(r);
	cr_assert_not_null(e);
	cr_expect_eq(status, 403);
	cr_expect_str_eq(e->code, "not_requester");
	safeshare__v1__error__free_unpacked(e, NULL);
	ss_client_free(c);
}

Test(daemon, malformed_body_is_400_with_error)
{
	struct ss_client	*c = h_client(&d, "police");
	Safeshare__V1__Error	*e;
	unsigned char		*body;
	size_t			 len;
	char			 err[512];
	int			 status;
	static const char	 junk[] = "\x0a\xff\xff\xff\x0f this is not protobuf";

	cr_assert_eq(ss_client_call(c, "POST", "/v1/disclosures", junk, sizeof(junk) - 1,
	    &status, &body, &len, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(status, 400);
	e = safeshare__v1__error__unpack(NULL, len, body);
	cr_assert_not_null(e, "an Error message, not HTML");
	cr_expect_str_eq(e->code, "malformed_request");
	safeshare__v1__error__free_unpacked(e, NULL);
	free(body);
	/* The connection and the daemon carry on. */
	cr_assert_eq(ss_client_call(c, "GET", "/healthz", NULL, 0, &status, &body, &len,
	    err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(status, 200);
	free(body);
	ss_client_free(c);
}

Test(daemon, oversized_body_is_413)
{
	struct ss_client	*c = h_client(&d, "police");
	unsigned char		*body;
	char			*big = calloc(1, 8192), err[512];
	size_t			 len;
	int			 status, rc;

	memset(big, 'x', 8191);
	rc = ss_client_call(c, "POST", "/v1/disclosures", big, 8191, &status, &body,
	    &len, err, sizeof(err));
	if (rc == 0) {
		cr_expect_eq(status, 413);
		free(body);
	}
	cr_expect_eq(h_log_count(&d, "kind != 'store'"), 0, "nothing decided on a refused body");
	free(big);
	ss_client_free(c);
}

Test(daemon, every_decision_is_logged_and_chain_verifies)
{
	struct ss_client			*c = h_client(&d, "police");
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e;
	char					 cmd[4096], logarg[1700], *out;
	int					 status, n = 0;
	static const char *const subjects[] = { "S1001", "S1003", "S1004", "NOBODY" };

	for (int i = 0; i < 4; i++) {
		r = ask(c, subjects[i], "child_protection", "person", &status, &e);
		if (r)
			safeshare__v1__disclosure_response__free_unpacked(r, NULL);
		if (e)
			safeshare__v1__error__free_unpacked(e, NULL);
		n++;
	}
	ss_client_free(c);
	cr_expect_eq(h_log_count(&d, "kind != 'store'"), n);
	cr_expect_eq(h_stop(&d), 0, "clean exit on SIGTERM");
	snprintf(cmd, sizeof(cmd), "%s audit verify %s --pubkey %s/pki/audit-signing.pub 2>&1",
	    SAFESHARE_BIN, h_log_arg(&d, logarg, sizeof(logarg)), d.dir);
	cr_expect_eq(h_run(cmd, &out), 0, "%s", out);
	/* Entries 1 and 2: the store opened and the demo data loaded (issue 15). */
	cr_expect(strstr(out, "ok, 6 entries") != NULL, "%s", out);
	free(out);
}

Test(daemon, cli_exit_codes)
{
	char	 cmd[2048], *out;
	int	 rc;

	snprintf(cmd, sizeof(cmd), "SAFESHARE_SERVER=%s SAFESHARE_CERT=%s/pki/police.crt "
	    "SAFESHARE_KEY=%s/pki/police.key SAFESHARE_CA=%s/pki/ca.crt %s request "
	    "--subject S1001 --record-type person --purpose child_protection --case C1 "
	    "--practitioner P --fields full_name --json 2>&1", d.server, d.dir, d.dir,
	    d.dir, SAFESHARE_BIN);
	rc = h_run(cmd, &out);
	cr_expect_eq(rc, 0, "%s", out);
	cr_expect(strstr(out, "\"value\":\"Amelia Hart\"") != NULL, "%s", out);
	cr_expect(strstr(out, "\"name\":\"address\",\"reason\":\"not_requested\"") != NULL,
	    "%s", out);
	free(out);

	snprintf(cmd, sizeof(cmd), "SAFESHARE_SERVER=%s SAFESHARE_CERT=%s/pki/police.crt "
	    "SAFESHARE_KEY=%s/pki/police.key SAFESHARE_CA=%s/pki/ca.crt %s request "
	    "--subject S1001 --record-type person --purpose marac --case C1 "
	    "--practitioner P 2>&1", d.server, d.dir, d.dir, d.dir, SAFESHARE_BIN);
	rc = h_run(cmd, &out);
	cr_expect_eq(rc, 3, "denied exits 3: %s", out);
	cr_expect(strstr(out, "no_rule") != NULL, "%s", out);
	free(out);
}

Test(daemon, sighup_with_bad_protocol_keeps_the_old_one)
{
	struct ss_client			*c;
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e;
	FILE					*fp;
	int					 status;

	fp = fopen(d.protocol, "a");
	fputs("\nbogus_key: 1\n", fp);
	fclose(fp);
	kill(d.pid, SIGHUP);
	usleep(300 * 1000);
	c = h_client(&d, "police");
	r = ask(c, "S1001", "child_protection", "person", &status, &e);
	cr_assert_not_null(r, "still serving");
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_ALLOW);
	cr_expect_str_eq(r->protocol_version, "1.0");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	ss_client_free(c);
	cr_expect_eq(h_log_count(&d, "kind = 'reload'"), 0, "no reload happened");
}

static void
write_protocol_version(const char *version, int broken)
{
	char cmd[4096];

	/* Written to a temp file and renamed, as an admin's editor would. */
	snprintf(cmd, sizeof(cmd), "sed 's/^  version: \"1.0\"/  version: \"%s\"/' "
	    "%s/config/protocol.yaml > %s.tmp && %s%s%s mv %s.tmp %s", version,
	    SOURCE_DIR, d.protocol, broken ? "echo 'rulez: []' >> " : "",
	    broken ? d.protocol : "", broken ? ".tmp &&" : "", d.protocol, d.protocol);
	cr_assert_eq(h_run(cmd, NULL), 0);
}

Test(daemon, admin_reload_needs_admin_and_keeps_old_on_error)
{
	struct ss_client		*police = h_client(&d, "police");
	struct ss_client		*admin = h_client(&d, "admin");
	Safeshare__V1__ReloadResult	*r;
	Safeshare__V1__Error		*e;
	Safeshare__V1__DisclosureResponse *resp;
	char				 err[512];
	int				 status;

	/* Only the admin role may reload (D13). */
	cr_assert_eq(ss_admin_reload(police, &r, &e, &status, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(status, 403);
	cr_assert_not_null(e);
	cr_expect_str_eq(e->code, "not_admin");
	safeshare__v1__error__free_unpacked(e, NULL);

	write_protocol_version("1.1", 0);
	cr_assert_eq(ss_admin_reload(admin, &r, &e, &status, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(r);
	cr_expect(r->ok);
	cr_expect_str_eq(r->protocol_version, "1.1");
	cr_expect_gt(r->disclosure_id, 0);
	safeshare__v1__reload_result__free_unpacked(r, NULL);
	cr_expect_eq(h_log_count(&d, "kind = 'reload' AND protocol_version = '1.1' "
	    "AND agency = 'admin' AND length(protocol_sha256) = 64"), 1);

	write_protocol_version("1.2", 1);
	cr_assert_eq(ss_admin_reload(admin, &r, &e, &status, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(r);
	cr_expect_not(r->ok, "a bad protocol is rejected");
	cr_expect_str_eq(r->protocol_version, "1.1", "the old one stays in force");
	cr_assert_geq(r->n_problems, 1);
	cr_expect(strstr(r->problems[0], "protocol.yaml:") != NULL &&
	    strstr(r->problems[0], "unknown key \"rulez\" in protocol file; did you mean "
	    "\"rules\"?") != NULL,
	    "%s", r->problems[0]);
	safeshare__v1__reload_result__free_unpacked(r, NULL);

	resp = ask(police, "S1001", "child_protection", "person", &status, &e);
	cr_assert_not_null(resp);
	cr_expect_str_eq(resp->protocol_version, "1.1", "decisions name the version used");
	cr_expect_eq(h_log_count(&d, "kind = 'disclosure' AND protocol_version = '1.1'"), 1);
	safeshare__v1__disclosure_response__free_unpacked(resp, NULL);
	ss_client_free(police);
	ss_client_free(admin);
}

/* Reloads the daemon has finished, good or rejected, from its stderr log. */
static int
reloads_done(void)
{
	FILE	*f;
	char	 line[2048];
	int	 n = 0;

	if ((f = fopen(d.log, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, "event=reloaded ") != NULL ||
		    strstr(line, "event=reload_rejected keeping=") != NULL)
			n++;
	fclose(f);
	return n;
}

Test(daemon, reload_under_concurrent_requests_loses_nothing)
{
	enum { REQUESTS = 300, RELOADS = 20 };
	pid_t	 child;
	int	 st, done0;

	if ((child = fork()) == 0) {
		struct ss_client *c = h_client(&d, "police");
		int failures = 0;

		for (int i = 0; i < REQUESTS; i++) {
			Safeshare__V1__DisclosureResponse *r;
			Safeshare__V1__Error *e;
			int status;

			r = ask(c, "S1001", "child_protection", "person", &status, &e);
			if (r == NULL || r->decision != SAFESHARE__V1__DECISION__DECISION_ALLOW)
				failures++;
			if (r)
				safeshare__v1__disclosure_response__free_unpacked(r, NULL);
			if (e)
				safeshare__v1__error__free_unpacked(e, NULL);
		}
		ss_client_free(c);
		_exit(failures > 0);
	}
	done0 = reloads_done();
	for (int i = 0; i < RELOADS; i++) {
		char v[16];

		snprintf(v, sizeof(v), "1.%d", i + 1);
		write_protocol_version(v, i % 2);
		kill(d.pid, SIGHUP);
		/*
		 * Wait (at most 10 s) until this reload is done before the
		 * file is written again: signals that arrive together merge,
		 * and on a loaded machine the next write could otherwise
		 * replace a good file before the daemon read it.
		 */
		for (int t = 0; t < 1000 && reloads_done() < done0 + i + 1; t++)
			usleep(10 * 1000);
		cr_assert_eq(reloads_done(), done0 + i + 1, "reload %d not done", i + 1);
	}
	cr_assert_eq(waitpid(child, &st, 0), child);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a request failed during reloads");
	cr_expect_eq(h_log_count(&d, "kind = 'disclosure'"), REQUESTS);
	cr_expect_eq(h_log_count(&d, "kind = 'reload'"), RELOADS / 2,
	    "every good file reloaded, every bad one rejected");
}
