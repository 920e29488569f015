#define _GNU_SOURCE	/* memmem */
/*
 * Identity and input at the daemon's edges (issue 14): ids as long as the
 * protocol allows, certificate pins, holders probing for subjects, free text,
 * request ids, HTTP framing. The real daemon over real mutual TLS.
 */
#include <sys/wait.h>

#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "import.h"

static struct daemon d;

H_SUITE(input, d, H_PKI, 90);

/* The daemon process is still there (not crashed). */
static int
alive(void)
{
	int st;

	return d.pid > 0 && waitpid(d.pid, &st, WNOHANG) == 0 && kill(d.pid, 0) == 0;
}

/*
 * Sends ops written as "key=value" lists (NULL-terminated, ops separated by
 * "--") as agency; returns the HTTP status (-1: no reply), the Error in
 * *errp if asked for.
 */
static int
hold(const char *agency, int dry_run, Safeshare__V1__Error **errp,
    const char *const *kv)
{
	char	 err[512];

	return h_hold(&d, agency, dry_run, kv, NULL, NULL, errp, err, sizeof(err));
}

/* A disclosure request; returns the HTTP status (-1: no reply). */
static int
ask(const char *agency, Safeshare__V1__DisclosureRequest *rq,
    Safeshare__V1__Error **errp)
{
	Safeshare__V1__DisclosureResponse	*r = NULL;
	Safeshare__V1__Error			*e = NULL;
	struct ss_client			*c = h_client(&d, agency);
	char					 err[512];
	int					 status = -1;

	if (ss_disclose(c, rq, &r, &e, &status, err, sizeof(err)) == -1)
		status = -1;
	if (r != NULL)
		safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	if (errp != NULL)
		*errp = e;
	else if (e != NULL)
		safeshare__v1__error__free_unpacked(e, NULL);
	ss_client_free(c);
	return status;
}

static void
request(Safeshare__V1__DisclosureRequest *rq, const char *subject)
{
	safeshare__v1__disclosure_request__init(rq);
	rq->subject_id = (char *)subject;
	rq->purpose = "child_protection";
	rq->record_type = "person";
	rq->case_reference = "CASE-1";
	rq->practitioner = "A Practitioner";
}

/* 64 bytes: the longest agency id the protocol allows (PROTOCOL_ID_MAX). */
#define LONG_POLICE	"police_012345678901234567890123456789012345678901234567890123456"
#define LONG_CSC	"csc_012345678901234567890123456789012345678901234567890123456789"

/*
 * Issue 14 item 1: agency ids were copied into 64-byte buffers and looked up
 * again by the copy; a 64-byte id was cut, not found, and the holder write
 * crashed the daemon after its batch was logged. Every route the agencies'
 * roles allow, with the longest ids: nothing is cut, nothing crashes.
 */
Test(input, longest_ids_serve_every_route)
{
	Safeshare__V1__DisclosureRequest	 rq;
	char					 cmd[2048], where[256];
	char					*body = NULL;
	static const char *const put[] = { "op=put_record", "subject=S9001",
	    "record_type=person", "full_name=Ann Example", "postcode=AB1 2CD", NULL };

	cr_assert_eq(strlen(LONG_POLICE), 64);
	cr_assert_eq(strlen(LONG_CSC), 64);
	snprintf(cmd, sizeof(cmd), "sed -i -e 's/^  - id: police$/  - id: %s/' "
	    "-e 's/\\[police/[%s/' -e 's/^  - id: childrens_social_care$/  - id: %s/' "
	    "-e 's/\\[childrens_social_care\\]/[%s]/' "
	    "-e 's/, childrens_social_care,/, %s,/' %s", LONG_POLICE, LONG_POLICE,
	    LONG_CSC, LONG_CSC, LONG_CSC, d.protocol);
	cr_assert_eq(h_run(cmd, NULL), 0);
	snprintf(cmd, sizeof(cmd), "%s policy check %s", SAFESHARE_BIN, d.protocol);
	cr_assert_eq(h_run(cmd, NULL), 0, "policy check refused the longest ids");
	h_start(&d);

	cr_expect_eq(hold("childrens_social_care", 1, NULL, put), 200);
	cr_expect_eq(hold("childrens_social_care", 0, NULL, put), 200);
	cr_assert(alive(), "the holder write crashed the daemon");
	request(&rq, "S9001");
	cr_expect_eq(ask("police", &rq, NULL), 200);
	cr_expect_eq(ask("childrens_social_care", &rq, NULL), 200);
	cr_expect_eq(h_get(&d, "auditor", "/healthz", &body), 200);
	free(body);
	cr_assert(alive(), "a disclosure crashed the daemon");
	snprintf(cmd, sizeof(cmd), "SAFESHARE_SERVER=%s SAFESHARE_CERT=%s/pki/admin.crt "
	    "SAFESHARE_KEY=%s/pki/admin.key SAFESHARE_CA=%s/pki/ca.crt %s admin reload "
	    ">/dev/null 2>&1", d.server, d.dir, d.dir, d.dir, SAFESHARE_BIN);
	cr_expect_eq(h_run(cmd, NULL), 0, "admin reload failed");
	cr_expect_eq(ask("police", &rq, NULL), 200);
	cr_assert(alive());
	/* The log names each agency by its whole id. */
	snprintf(where, sizeof(where), "agency = '%s' AND kind = 'holder'", LONG_CSC);
	cr_expect_eq(h_log_count(&d, where), 1);
	snprintf(where, sizeof(where), "agency = '%s' AND kind = 'disclosure'",
	    LONG_POLICE);
	cr_expect_eq(h_log_count(&d, where), 2);
}

/* The daemon's stderr log, read whole. */
static char *
daemon_log(void)
{
	char	*s = NULL;
	char	 cmd[600];

	snprintf(cmd, sizeof(cmd), "cat %s", d.log);
	h_run(cmd, &s);
	return s;
}

/*
 * Issue 14 item 8: a practitioner, case reference or justification of 1,100
 * bytes was accepted, released, and logged as "(over length cap)"; " " and
 * U+200B were accepted as a practitioner. Each is now a logged 400 whose
 * code names the field, nothing is released, and no placeholder is logged.
 */
Test(input, over_long_blank_or_invisible_text_is_refused_and_logged)
{
	Safeshare__V1__DisclosureRequest	 rq;
	Safeshare__V1__Error			*e = NULL;
	char					 big[1101], ok[201];
	static const struct {
		const char *field, *value;
	} bad[] = {
		{ "practitioner", " " },
		{ "practitioner", "\xe2\x80\x8b" },		/* U+200B alone */
		{ "practitioner", " \xe2\x80\x8b\xc2\xa0\t" },
		{ "case_reference", "\xef\xbb\xbf" },		/* U+FEFF alone */
		{ "practitioner", "A\x1b[2KB" },
		{ "practitioner", "bad \xff utf-8" },
		{ "subject_id", "S1001\n#999 deny" },
		{ "subject_id", "S1001\xe2\x80\xae" },		/* U+202E */
	};

	h_load_demo(&d);
	h_start(&d);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int f = 0; f < 3; f++) {
		static const char *const code[] = { "invalid_practitioner",
		    "invalid_case_reference", "invalid_override_justification" };

		request(&rq, "S1001");
		if (f == 0)
			rq.practitioner = big;
		else if (f == 1)
			rq.case_reference = big;
		else {
			rq.override_code = "child_significant_harm";
			rq.override_justification = big;
		}
		cr_expect_eq(ask("police", &rq, &e), 400, "%s", code[f]);
		cr_assert_not_null(e);
		cr_expect_str_eq(e->code, code[f]);
		cr_expect_neq(e->disclosure_id, 0, "the refusal is logged");
		safeshare__v1__error__free_unpacked(e, NULL);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char code[64];

		request(&rq, "S1001");
		if (strcmp(bad[i].field, "practitioner") == 0)
			rq.practitioner = (char *)bad[i].value;
		else if (strcmp(bad[i].field, "case_reference") == 0)
			rq.case_reference = (char *)bad[i].value;
		else
			rq.subject_id = (char *)bad[i].value;
		snprintf(code, sizeof(code), "invalid_%s", bad[i].field);
		cr_expect_eq(ask("police", &rq, &e), 400, "case %zu", i);
		cr_assert_not_null(e, "case %zu", i);
		cr_expect_str_eq(e->code, code, "case %zu", i);
		cr_expect(strstr(e->message, bad[i].field) != NULL, "%s", e->message);
		safeshare__v1__error__free_unpacked(e, NULL);
	}
	cr_expect_eq(h_log_count(&d, "kind = 'disclosure'"), 0, "nothing released");
	cr_expect_eq(h_log_count(&d, "kind = 'rejected' AND reason LIKE 'invalid_%'"), 11);
	cr_expect_eq(h_log_count(&d, "practitioner LIKE '%over length cap%' OR "
	    "case_ref LIKE '%over length cap%' OR justification LIKE '%over length cap%'"),
	    0, "no placeholder instead of what was asked");
	/* What was acceptable in a refused request is kept: who asked. */
	cr_expect_eq(h_log_count(&d, "reason = 'invalid_case_reference' AND "
	    "practitioner = 'A Practitioner' AND agency = 'police'"), 2);

	/* The longest acceptable practitioner is released and logged whole. */
	memset(ok, 'y', sizeof(ok) - 1);
	ok[sizeof(ok) - 1] = '\0';
	request(&rq, "S1001");
	rq.practitioner = ok;
	cr_expect_eq(ask("police", &rq, NULL), 200);
	cr_expect_eq(h_log_count(&d, "kind = 'disclosure' AND length(practitioner) = 200"),
	    1);
}

/*
 * Issue 14 item 9: request_id="q\nlevel=error event=forged x=1" produced a
 * separate forged line in the daemon's log. A request id is now 1 to 64 of
 * [A-Za-z0-9._:-] or the request is a logged 400, and no value can start a
 * line in the daemon's log.
 */
Test(input, request_id_cannot_forge_log_lines)
{
	Safeshare__V1__DisclosureRequest	 rq;
	Safeshare__V1__Error			*e = NULL;
	char					*log, long_id[66];

	h_load_demo(&d);
	h_start(&d);
	request(&rq, "S1001");
	rq.request_id = "q\nlevel=error event=forged x=1";
	cr_expect_eq(ask("police", &rq, &e), 400);
	cr_assert_not_null(e);
	cr_expect_str_eq(e->code, "invalid_request_id");
	safeshare__v1__error__free_unpacked(e, NULL);
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	rq.request_id = long_id;
	cr_expect_eq(ask("police", &rq, NULL), 400);
	rq.request_id = "client-7:a.b_C";
	cr_expect_eq(ask("police", &rq, NULL), 200);
	cr_expect_eq(h_log_count(&d, "request_id = 'client-7:a.b_C' AND "
	    "kind = 'disclosure'"), 1);
	cr_expect_eq(h_log_count(&d, "reason = 'invalid_request_id'"), 2);
	/*
	 * Without a usable id of its own, a request gets the daemon's: 32
	 * lowercase hex digits (a per-process prefix and a counter), each
	 * its own.
	 */
	cr_expect_eq(h_log_count(&d, "reason = 'invalid_request_id' AND "
	    "length(request_id) = 32 AND ltrim(request_id, '0123456789abcdef') = ''"), 2);
	cr_expect_eq(h_log_count(&d, "reason = 'invalid_request_id' AND "
	    "request_id IN (SELECT request_id FROM entries GROUP BY request_id "
	    "HAVING count(*) = 1)"), 2);
	/* A subject id with a newline reaches the log only escaped. */
	request(&rq, "S1001\nlevel=error event=forged2");
	cr_expect_eq(ask("police", &rq, NULL), 400);
	log = daemon_log();
	cr_expect(strstr(log, "\nlevel=error") == NULL, "forged line:\n%s", log);
	cr_expect(strstr(log, "event=forged") == NULL, "%s", log);
	free(log);
	cr_assert(alive());
}

/*
 * Issue 14 item 5: with police listed by spki_sha256 and subject, a new key
 * that the same CA certified under police's subject was mapped to police
 * and got records. A pin must match: that key is now no agency at all.
 */
Test(input, a_pinned_agency_admits_only_its_key)
{
	Safeshare__V1__DisclosureRequest	 rq;
	Safeshare__V1__Error			*e = NULL;
	char					 cmd[2048], *fp = NULL, *out = NULL;

	/* A second police key, same subject, same CA (replaces other/). */
	snprintf(cmd, sizeof(cmd), "cd %s && rm -rf other && mkdir other && "
	    "cp pki/ca.crt pki/ca.key other/ && %s/deploy/pki.sh other police "
	    ">/dev/null && openssl x509 -in pki/police.crt -noout -pubkey | "
	    "openssl pkey -pubin -outform DER | openssl dgst -sha256 -r | cut -c1-64",
	    d.dir, SOURCE_DIR);
	cr_assert_eq(h_run(cmd, &fp), 0);
	fp[strcspn(fp, "\n")] = '\0';
	cr_assert_eq(strlen(fp), 64, "%s", fp);
	snprintf(cmd, sizeof(cmd), "sed -i 's/^    subject: \"CN=police,O=safeshare dev\"$/"
	    "&\\n    spki_sha256: %s/' %s && grep -c \"^    spki_sha256\" %s", fp, d.protocol,
	    d.protocol);
	cr_assert_eq(h_run(cmd, &out), 0);
	cr_assert_eq(atoi(out), 1, "%s", out);
	free(out);
	/* policy check: the pinned agency is fine, the others are warned about. */
	snprintf(cmd, sizeof(cmd), "%s policy check %s 2>&1", SAFESHARE_BIN, d.protocol);
	cr_assert_eq(h_run(cmd, &out), 0);
	cr_expect(strstr(out, "agency \"police\" is identified by subject alone") == NULL,
	    "%s", out);
	cr_expect(strstr(out, "warning: agency \"housing\" is identified by subject "
	    "alone") != NULL, "%s", out);
	free(out);
	h_load_demo(&d);
	h_start(&d);

	request(&rq, "S1001");
	cr_expect_eq(ask("police", &rq, NULL), 200, "the pinned key");
	/*
	 * No agency gets nothing: the handshake is refused once the chain
	 * verifies (items 7 and 13, test_conn), so no request is read or logged.
	 */
	cr_expect_eq(ask("other:police", &rq, &e), -1, "a second key under the subject");
	cr_expect_null(e);
	cr_expect_eq(h_log_count(&d, "kind = 'disclosure'"), 1);
	h_stop(&d);
	snprintf(cmd, sizeof(cmd), "grep -c 'event=connection_refused reason=unknown_agency' "
	    "%s", d.log);
	h_run(cmd, &out);
	cr_expect_eq(atoi(out), 1, "the refused key is logged once: %s", out);
	free(out);
	free(fp);
}

/*
 * The quickstart's protocol (deploy/quickstart.sh): the example protocol
 * named its eight agencies by subject alone, so safeshared printed eight
 * warnings at every start. deploy/pin.sh pins each agency to the key of
 * its certificate in the PKI: no warning is left, each agency's own key is
 * still admitted, another key under police's subject is not, and pinning
 * again changes nothing. (The harness's PKI lacks some agencies' certificates:
 * deploy/pki.sh issues them first, as the quickstart's has them all.)
 */
Test(input, a_protocol_pinned_by_deploy_pin_admits_each_agencys_key)
{
	Safeshare__V1__DisclosureRequest	 rq;
	Safeshare__V1__Error			*e = NULL;
	char					 cmd[4096], *out = NULL;
	static const char *const requesters[] = { "childrens_social_care",
	    "health_trust", "housing", "da_service" };

	snprintf(cmd, sizeof(cmd), "cd %s && rm -rf other && mkdir other && "
	    "cp pki/ca.crt pki/ca.key other/ && %s/deploy/pki.sh other police "
	    ">/dev/null && for a in police childrens_social_care health_trust "
	    "housing da_service auditor admin guardian; do [ -f pki/$a.crt ] || "
	    "%s/deploy/pki.sh pki $a >/dev/null || exit 1; done && "
	    "sh %s/deploy/pin.sh pki %s > pinned.yaml && "
	    "sh %s/deploy/pin.sh pki pinned.yaml | cmp - pinned.yaml && "
	    "mv pinned.yaml %s && grep -c '^    spki_sha256: \"[0-9a-f]\\{64\\}\"$' %s",
	    d.dir, SOURCE_DIR, SOURCE_DIR, SOURCE_DIR, d.protocol, SOURCE_DIR,
	    d.protocol, d.protocol);
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_expect_eq(atoi(out), 8, "a pin per agency, once: %s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "%s policy check %s 2>&1; %s -t -c %s 2>&1",
	    SAFESHARE_BIN, d.protocol, SAFESHARED_BIN, d.conf);
	h_run(cmd, &out);
	cr_expect(strstr(out, "identified by subject alone") == NULL, "%s", out);
	free(out);
	h_load_demo(&d);
	h_start(&d);
	request(&rq, "S1001");
	cr_expect_eq(ask("police", &rq, NULL), 200, "police's own key");
	for (size_t i = 0; i < sizeof(requesters) / sizeof(requesters[0]); i++)
		cr_expect_gt(ask(requesters[i], &rq, NULL), 0, "%s's own key was "
		    "refused", requesters[i]);
	cr_expect_eq(ask("other:police", &rq, &e), -1, "a second key under the "
	    "subject");
	cr_expect_null(e);
	h_stop(&d);
}

/*
 * Issue 14 item 11: duplicate Content-Length headers with different values
 * (evhttp used the first), a "+52" length and a wrong Content-Type were all
 * accepted. Now 400, 400 and 415; a well-formed request still works.
 */
Test(input, http_framing_is_strict)
{
	static const struct {
		const char	*req;
		const char	*status;
		const char	*code;	/* in the Error body, or NULL */
	} cases[] = {
		{ "POST /v1/disclosures HTTP/1.1\r\nHost: x\r\nContent-Type: "
		  "application/x-protobuf\r\nContent-Length: 2\r\nContent-Length: 52\r\n"
		  "\r\nxx", "HTTP/1.1 400", "bad_request" },
		{ "POST /v1/disclosures HTTP/1.1\r\nHost: x\r\nContent-Type: "
		  "application/x-protobuf\r\nContent-Length: +2\r\n\r\nxx", "HTTP/1.1 400",
		  "bad_request" },
		{ "POST /v1/disclosures HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
		  "Content-Length: 2\r\n\r\nxx", "HTTP/1.1 415", "unsupported_media_type" },
		{ "POST /v1/disclosures HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nxx",
		  "HTTP/1.1 415", "unsupported_media_type" },
		{ "POST /v1/disclosures HTTP/1.1\r\nHost: x\r\nContent-Type: "
		  "application/x-protobufX\r\nContent-Length: 2\r\n\r\nxx", "HTTP/1.1 415",
		  "unsupported_media_type" },
		/* Same value twice is not ambiguous; the body is then not a request. */
		{ "POST /v1/disclosures HTTP/1.1\r\nHost: x\r\nContent-Type: "
		  "Application/X-Protobuf; proto=safeshare.v1.DisclosureRequest\r\n"
		  "Content-Length: 2\r\nContent-Length: 2\r\n\r\n\xff\xff", "HTTP/1.1 400",
		  "malformed_request" },
		{ "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200", NULL },
	};
	char cert[600], key[600], out[2048];

	h_start(&d);
	snprintf(cert, sizeof(cert), "%s/pki/police.crt", d.dir);
	snprintf(key, sizeof(key), "%s/pki/police.key", d.dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = h_tls_exchange(&d, cert, key, cases[i].req,
		    strlen(cases[i].req), out, sizeof(out));

		cr_expect_gt(n, 0, "case %zu: no reply", i);
		if (cases[i].code != NULL)
			cr_expect_not_null(memmem(out, (size_t)n, cases[i].code,
			    strlen(cases[i].code)), "case %zu: no %s", i, cases[i].code);
		cr_expect_eq(strncmp(out, cases[i].status, strlen(cases[i].status)), 0,
		    "case %zu: %s", i, out);
	}
	/* The same-length duplicate reached the decoder: malformed, not framing. */
	cr_expect_eq(h_log_count(&d, "reason = 'malformed_request'"), 1);
	cr_assert(alive());
}

/*
 * Issue 14 item 12: a 10 MB import was reported as a "TLS failure" (exit 5).
 * It is now too large, with the server's limit, before anything is sent
 * (exit 4); and a BOM at the start of the file is skipped.
 */
Test(input, import_too_large_or_with_a_bom)
{
	char	 path[600], cmd[2048], *out = NULL;
	FILE	*fp;
	int	 rc;

	h_start(&d);
	snprintf(path, sizeof(path), "%s/big.csv", d.dir);
	fp = fopen(path, "w");
	cr_assert_not_null(fp);
	fputs("op,subject,record_type,full_name,address\n", fp);
	for (int i = 0; i < 60000; i++)
		fprintf(fp, "put_record,S%06d,person,Ann Example,\"%0160d\"\n", i, i);
	fclose(fp);
	snprintf(cmd, sizeof(cmd), "SAFESHARE_SERVER=%s SAFESHARE_CERT=%s/pki/"
	    "childrens_social_care.crt SAFESHARE_KEY=%s/pki/childrens_social_care.key "
	    "SAFESHARE_CA=%s/pki/ca.crt %s holder import %s 2>&1", d.server, d.dir, d.dir,
	    d.dir, SAFESHARE_BIN, path);
	rc = h_run(cmd, &out);
	cr_expect_eq(rc, 4, "exit %d: %s", rc, out);
	cr_expect(strstr(out, "too large") != NULL && strstr(out, "8388608") != NULL,
	    "%s", out);
	cr_expect(strstr(out, "TLS") == NULL, "%s", out);
	free(out);
	cr_expect_eq(h_log_count(&d, "kind = 'holder'"), 0);

	fp = fopen(path, "w");
	fputs("\xef\xbb\xbfop,subject,record_type,full_name\n"
	    "put_record,S7001,person,Ann Example\n", fp);
	fclose(fp);
	rc = h_run(cmd, &out);
	cr_expect_eq(rc, 0, "exit %d: %s", rc, out);
	free(out);
	cr_expect_eq(h_log_count(&d, "kind = 'holder' AND subject = 'S7001'"), 1);
}

/*
 * Issue 14 item 6: a dry-run put_record answered 403 not_your_subject for
 * another holder's subject and 200 for an unknown one, and neither was
 * logged. Ownership refusals are now logged (dry run or not), and ops on an
 * existing subject answer another holder's subject as an unknown one.
 */
Test(input, holders_probing_for_subjects_leave_a_trace)
{
	Safeshare__V1__Error	*e = NULL, *u = NULL;
	static const char *const put_csc[] = { "op=put_record", "subject=S-C1",
	    "record_type=person", "full_name=Ann Example", NULL };
	static const char *const put_other[] = { "op=put_record", "subject=S-C1",
	    "record_type=person", "full_name=Someone Else", NULL };
	static const char *const flag_other[] = { "op=flag", "subject=S-C1",
	    "flag=domestic_abuse", NULL };
	static const char *const flag_none[] = { "op=flag", "subject=S-NONE1",
	    "flag=domestic_abuse", NULL };

	h_start(&d);
	cr_assert_eq(hold("childrens_social_care", 0, NULL, put_csc), 200);
	cr_expect_eq(hold("health_trust", 1, &e, put_other), 403);
	cr_assert_not_null(e);
	cr_expect_str_eq(e->code, "not_your_subject");
	cr_expect_null(strstr(e->message, "childrens_social_care"));
	safeshare__v1__error__free_unpacked(e, NULL);
	cr_expect_eq(h_log_count(&d, "kind = 'rejected' AND reason = 'not_your_subject' "
	    "AND agency = 'health_trust' AND subject = 'S-C1'"), 1,
	    "the dry-run probe is in the log");

	cr_expect_eq(hold("health_trust", 1, &e, flag_other), 404);
	cr_expect_eq(hold("health_trust", 1, &u, flag_none), 404);
	cr_assert_not_null(e);
	cr_assert_not_null(u);
	cr_expect_str_eq(e->code, u->code, "another's subject looks unknown");
	cr_expect_eq(strlen(e->message) + 3, strlen(u->message), "%s / %s", e->message,
	    u->message);
	safeshare__v1__error__free_unpacked(e, NULL);
	safeshare__v1__error__free_unpacked(u, NULL);
	cr_expect_eq(h_log_count(&d, "kind = 'rejected' AND reason = 'unknown_subject' "
	    "AND agency = 'health_trust'"), 2);
	cr_expect_eq(h_log_count(&d, "kind = 'holder' AND agency = 'health_trust'"), 0);
}

/* Runs the CLI as agency with args; returns its exit status, output in *out. */
static int
cli(const char *agency, const char *args, char **out)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "SAFESHARE_SERVER=%s SAFESHARE_CERT=%s/pki/%s.crt "
	    "SAFESHARE_KEY=%s/pki/%s.key SAFESHARE_CA=%s/pki/ca.crt %s %s 2>&1",
	    d.server, d.dir, agency, d.dir, agency, d.dir, SAFESHARE_BIN, args);
	return h_run(cmd, out);
}

/*
 * Issue 14 item 10: a subject of "\n#999999 ... deny no_rule agency=housing"
 * made a fake entry line in `safeshare audit query`, and "\r\e[1A\e[2K"
 * erased the previous one. Control characters in identifiers are refused
 * at the API, and the CLI shows every server string through one escape:
 * a record value holding U+202E or a C1 CSI is printed escaped.
 */
Test(input, no_terminal_injection)
{
	Safeshare__V1__DisclosureRequest	 rq;
	char					*out = NULL;
	static const char *const put[] = { "op=put_record", "subject=S-T1",
	    "record_type=person", "full_name=Ann \xe2\x80\xae" "elpmaxE",
	    "address=1 Road\xc2\x9b" "2K", NULL };

	h_start(&d);
	request(&rq, "S1001\n#999999 2026-01-01T00:00:00Z disclosure deny "
	    "no_rule agency=housing");
	cr_expect_eq(ask("police", &rq, NULL), 400);
	request(&rq, "S1001\r\x1b[1A\x1b[2K");
	cr_expect_eq(ask("police", &rq, NULL), 400);
	cr_expect_eq(cli("auditor", "audit query", &out), 0, "%s", out);
	cr_expect(strstr(out, "\n#999999") == NULL && strncmp(out, "#999999", 7) != 0,
	    "%s", out);
	cr_expect(strchr(out, '\x1b') == NULL && strchr(out, '\r') == NULL, "%s", out);
	free(out);

	cr_assert_eq(hold("childrens_social_care", 0, NULL, put), 200);
	cr_expect_eq(cli("childrens_social_care", "request --subject S-T1 "
	    "--record-type person --purpose child_protection --case C-1 "
	    "--practitioner P", &out), 0, "%s", out);
	cr_expect(strstr(out, "\xe2\x80\xae") == NULL, "raw U+202E: %s", out);
	cr_expect(strstr(out, "\xc2\x9b") == NULL, "raw CSI: %s", out);
	cr_expect(strstr(out, "Ann \\u202eelpmaxE") != NULL, "%s", out);
	cr_expect(strstr(out, "1 Road\\u009b2K") != NULL, "%s", out);
	free(out);
}
