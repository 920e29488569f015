/*
 * The harness's holder writes: ops written as "key=value" strings and
 * sent to POST /v1/holder/ops, built by the import reader's own functions
 * (client/import.c), so a test writes an op the way a holder's file does.
 * Apart from harness.c because only the suites that write as a holder
 * link the client's import.h.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "import.h"

int
h_hold(struct daemon *d, const char *agency, int dry_run, const char *const *kv,
    size_t *nops, Safeshare__V1__HolderResult **resp, Safeshare__V1__Error **errp,
    char *err, size_t errlen)
{
	Safeshare__V1__HolderRequest	 rq = SAFESHARE__V1__HOLDER_REQUEST__INIT;
	Safeshare__V1__HolderResult	*res = NULL;
	Safeshare__V1__Error		*e = NULL;
	struct import			 im = { .name = "test" };
	struct ss_client		*c = h_client(d, agency);
	Safeshare__V1__HolderOp		*op = import_new_op(&im, 1);
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
	    &status, err, errlen) == -1)
		status = -1;
	if (nops != NULL)
		*nops = im.nops;
	if (resp != NULL)
		*resp = res;
	else
		protobuf_c_message_free_unpacked((ProtobufCMessage *)res, NULL);
	if (errp != NULL)
		*errp = e;
	else if (e != NULL)
		safeshare__v1__error__free_unpacked(e, NULL);
	import_free(&im);
	ss_client_free(c);
	return status;
}

/*
 * h_hold() for a test that expects a reply: a reply must come, a 200 must
 * have applied every op, and an Error goes to *errp (the caller frees it)
 * or to Criterion's log. Returns the HTTP status.
 */
int
h_hold_ok(struct daemon *d, const char *agency, Safeshare__V1__Error **errp,
    const char *const *kv)
{
	Safeshare__V1__HolderResult	*res = NULL;
	Safeshare__V1__Error		*e = NULL;
	char				 err[512];
	size_t				 nops;
	int				 status;

	status = h_hold(d, agency, 0, kv, &nops, &res, &e, err, sizeof(err));
	cr_assert_neq(status, -1, "%s", err);
	if (res != NULL)
		cr_expect_eq(res->applied, nops);
	protobuf_c_message_free_unpacked((ProtobufCMessage *)res, NULL);
	if (errp != NULL)
		*errp = e;
	else if (e != NULL) {
		cr_log_error("%s: %s", e->code, e->message);
		safeshare__v1__error__free_unpacked(e, NULL);
	}
	return status;
}

Safeshare__V1__DisclosureResponse *
h_ask(struct daemon *d, const char *agency, const struct h_ask *a, int *status,
    Safeshare__V1__Error **ep)
{
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__DisclosureResponse	*resp = NULL;
	Safeshare__V1__Error			*e = NULL;
	struct ss_client			*c = h_client(d, agency);
	char					 err[512];

	rq.subject_id = (char *)a->subject;
	rq.purpose = (char *)a->purpose;
	rq.record_type = (char *)a->record_type;
	rq.case_reference = "CASE-77";
	rq.practitioner = "PC 123 Example";
	rq.consultation = a->consult;
	rq.override_code = (char *)(a->override ? a->override : "");
	rq.override_justification = (char *)(a->justification ? a->justification : "");
	rq.inform_waiver_reason = (char *)(a->waiver ? a->waiver : "");
	cr_assert_eq(ss_disclose(c, &rq, &resp, &e, status, err, sizeof(err)), 0, "%s", err);
	ss_client_free(c);
	if (ep != NULL)
		*ep = e;
	else if (e != NULL)
		safeshare__v1__error__free_unpacked(e, NULL);
	return resp;
}

/* S-C1: a child known to children's social care, with an address and phone. */
void
h_put_child(struct daemon *d)
{
	cr_assert_eq(H_HOLD(d, "childrens_social_care", "subject=S-C1",
	    "record_type=person", "verified=2026-11-01", "full_name=Ruby Example",
	    "date_of_birth=2015-06-01", "address=4 Mill Lane, Exampletown",
	    "postcode=EX1 4ML", "phone=01234 567890",
	    "--", "op=put_record", "record_type=concern", "subject=S-C1",
	    "summary=Bruising noted at school", "risk_level=high",
	    "allocated_worker=Sam Social"), 200);
}
