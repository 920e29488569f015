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

static void
setup(void)
{
	h_setup(&d);
}

static void
teardown(void)
{
	h_cleanup(&d);
}

TestSuite(input, .init = setup, .fini = teardown, .timeout = 90);

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
	Safeshare__V1__HolderRequest	 rq = SAFESHARE__V1__HOLDER_REQUEST__INIT;
	Safeshare__V1__HolderResult	*res = NULL;
	Safeshare__V1__Error		*e = NULL;
	struct import			 im = { .name = "test" };
	struct ss_client		*c = h_client(&d, agency);
	Safeshare__V1__HolderOp		*op = import_new_op(&im, 1);
	char				 err[512];
	int				 status = -1;

	for (; *kv != NULL; kv++) {
		char		 key[64];
		const char	*eq = strchr(*kv, '=');

		if (strcmp(*kv, "--") == 0) {
			op = import_new_op(&im, im.nops + 1);
			continue;
		}
		cr_assert_not_null(eq, "%s", *kv);
		snprintf(key, sizeof(key), "%.*s", (int)(eq - *kv), *kv);
		if (!import_set_key(&im, op, 1, key, eq + 1))
			import_add_field(op, key, eq + 1);
	}
	rq.ops = im.ops;
	rq.n_ops = im.nops;
	rq.dry_run = dry_run;
	if (ss_call_message(c, "/v1/holder/ops", &rq.base,
	    &safeshare__v1__holder_result__descriptor, (ProtobufCMessage **)&res, &e,
	    &status, err, sizeof(err)) == -1)
		status = -1;
	protobuf_c_message_free_unpacked((ProtobufCMessage *)res, NULL);
	if (errp != NULL)
		*errp = e;
	else if (e != NULL)
		safeshare__v1__error__free_unpacked(e, NULL);
	import_free(&im);
	ss_client_free(c);
	return status;
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
