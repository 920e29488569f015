/* The wire codec: round trips, and garbage is refused rather than guessed at. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "wire.h"

Test(wire, request_round_trip)
{
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	char					*fields[] = { "full_name", "address" };
	struct policy_request			 v;
	wire_request				*back;
	uint8_t					 buf[512];
	size_t					 len;

	rq.purpose = "child_protection";
	rq.case_reference = "CP-1";
	rq.practitioner = "DC Jones";
	rq.subject_id = "S1";
	rq.record_type = "person";
	rq.fields = fields;
	rq.n_fields = 2;
	rq.consultation = 1;
	rq.override_code = "child_significant_harm";
	rq.override_justification = "because";
	rq.inform_waiver_reason = "risk";
	len = safeshare__v1__disclosure_request__pack(&rq, buf);
	back = wire_request_decode(buf, len);
	cr_assert_not_null(back);
	wire_request_view(back, &v);
	cr_expect_str_eq(v.purpose, "child_protection");
	cr_expect_str_eq(v.case_ref, "CP-1");
	cr_expect_str_eq(v.practitioner, "DC Jones");
	cr_expect_str_eq(v.subject_id, "S1");
	cr_expect_str_eq(v.record_type, "person");
	cr_expect_eq(v.nfields, 2);
	cr_expect_str_eq(v.fields[1], "address");
	cr_expect(v.consult);
	cr_expect_str_eq(v.override_code, "child_significant_harm");
	cr_expect_str_eq(v.justification, "because");
	cr_expect_str_eq(v.inform_waiver, "risk");
	wire_request_free(back);
}

Test(wire, malformed_is_refused)
{
	static const uint8_t garbage[] = { 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 'x' };
	static const uint8_t badwire[] = { 0x0f, 0x01 };	/* wire type 7 */

	cr_expect_null(wire_request_decode(garbage, sizeof(garbage)), "length past the end");
	cr_expect_null(wire_request_decode(badwire, sizeof(badwire)), "bad wire type");
	cr_expect_null(wire_request_decode((const uint8_t *)"hello world", 11));
}

Test(wire, response_carries_labels_and_withheld_reasons)
{
	struct field_def			 defs[2] = {
		{ "full_name", FT_NAME, 0, 1, 1 }, { "assessment", FT_TEXT, 1, 0, 0 }
	};
	struct purpose				 pu = { 0 };
	struct rule				 r = { 0 };
	struct decision				 d;
	Safeshare__V1__DisclosureResponse	*resp;
	uint8_t					*buf;
	size_t					 len;

	memset(&d, 0, sizeof(d));
	pu.lawful_basis = "Art 6(1)(e)";
	r.id = "r1";
	d.kind = DECISION_PARTIAL;
	d.reason = "partially_released";
	d.rule = &r;
	d.purpose = &pu;
	d.nfields = 2;
	d.fields[0].def = &defs[0];
	d.fields[0].released = 1;
	d.fields[0].value = "A. H.";
	d.fields[0].transform = TR_INITIALS;
	d.fields[1].def = &defs[1];
	d.fields[1].reason = "flag:domestic_abuse";
	buf = wire_response_encode(&d, "p", "1", 42, 1000, 1000 + 86400, &len);
	resp = safeshare__v1__disclosure_response__unpack(NULL, len, buf);
	cr_assert_not_null(resp);
	cr_expect_eq(resp->decision, SAFESHARE__V1__DECISION__DECISION_PARTIAL);
	cr_expect_eq(resp->disclosure_id, 42);
	cr_expect_str_eq(resp->lawful_basis, "Art 6(1)(e)");
	cr_expect_eq(resp->record_age_seconds, 86400, "D9: age travels with the data");
	cr_assert_eq(resp->n_released, 1);
	cr_expect_str_eq(resp->released[0]->value, "A. H.");
	cr_expect_str_eq(resp->released[0]->transform, "initials");
	cr_expect_eq(resp->released[0]->label, SAFESHARE__V1__LABEL__LABEL_FACT, "D8");
	cr_assert_eq(resp->n_withheld, 1);
	cr_expect_str_eq(resp->withheld[0]->reason, "flag:domestic_abuse");
	safeshare__v1__disclosure_response__free_unpacked(resp, NULL);
	free(buf);
}

Test(wire, error_round_trip)
{
	Safeshare__V1__Error	*e;
	size_t			 len;
	uint8_t			*buf = wire_error_encode("bad_request", "no", 7, &len);

	e = safeshare__v1__error__unpack(NULL, len, buf);
	cr_assert_not_null(e);
	cr_expect_str_eq(e->code, "bad_request");
	cr_expect_eq(e->disclosure_id, 7);
	safeshare__v1__error__free_unpacked(e, NULL);
	free(buf);
}
