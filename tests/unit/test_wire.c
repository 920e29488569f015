/* The wire codec: round trips, and garbage is refused rather than guessed at. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
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

/*
 * Issue 13: a disclosure's request is decoded into room its pending request
 * lends (struct wire_space), spilling to malloc() past it. Whatever fits,
 * the message is the same as a plain decode's; a message bigger than the
 * room decodes whole; and a malformed one is refused (the sanitizer build
 * checks that the spilled parts are freed, once).
 */
Test(wire, request_decoded_in_lent_space)
{
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	static char				 big[3000];
	static const uint8_t			 cut[] = { 0x0a, 0x05, 'a', 'b' };
	char					*fields[] = { "full_name", "address" };
	struct wire_space			*sp = xcalloc(1, sizeof(*sp));
	struct policy_request			 v, w;
	wire_request				*plain, *lent;
	uint8_t					*buf = xcalloc(1, 4096);
	size_t					 len;

	rq.purpose = "child_protection";
	rq.case_reference = "CP-1";
	rq.practitioner = "DC Jones";
	rq.subject_id = "S1";
	rq.record_type = "person";
	rq.fields = fields;
	rq.n_fields = 2;
	rq.request_id = "r-1";
	len = safeshare__v1__disclosure_request__pack(&rq, buf);
	cr_assert_not_null(plain = wire_request_decode(buf, len));
	cr_assert_not_null(lent = wire_request_decode_in(buf, len, sp));
	cr_expect((uint8_t *)lent >= sp->buf && (uint8_t *)lent < sp->buf + sizeof(sp->buf),
	    "a small request is carved from the room");
	cr_expect(sp->used > 0 && sp->used <= sizeof(sp->buf));
	wire_request_view(plain, &v);
	wire_request_view(lent, &w);
	cr_expect_str_eq(w.purpose, v.purpose);
	cr_expect_str_eq(w.case_ref, v.case_ref);
	cr_expect_str_eq(w.practitioner, v.practitioner);
	cr_expect_str_eq(w.subject_id, v.subject_id);
	cr_expect_str_eq(w.record_type, v.record_type);
	cr_expect_eq(w.nfields, 2);
	cr_expect_str_eq(w.fields[0], "full_name");
	cr_expect_str_eq(w.fields[1], "address");
	cr_expect_str_eq(lent->request_id, "r-1");
	wire_request_free_in(lent, sp);
	wire_request_free(plain);

	/* Bigger than the room: what does not fit comes from malloc(). */
	memset(big, 'j', sizeof(big) - 1);
	rq.override_justification = big;
	len = safeshare__v1__disclosure_request__pack(&rq, buf);
	cr_assert_lt(len, 4096);
	cr_assert_not_null(lent = wire_request_decode_in(buf, len, sp));
	cr_expect_eq(strlen(lent->override_justification), sizeof(big) - 1);
	cr_expect_str_eq(lent->subject_id, "S1");
	cr_expect_str_eq(lent->fields[1], "address");
	wire_request_free_in(lent, sp);

	/* A cut message: refused, with nothing left allocated. */
	cr_expect_null(wire_request_decode_in(cut, sizeof(cut), sp));
	free(buf);
	free(sp);
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
	buf = wire_response_encode(&d, "p", "1", 42, 1000, 1000 + 86400, NULL, &len);
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

/* The buffer wire_response_encode_in() asks for, and how often. */
static uint8_t	 in_buf[4096];
static size_t	 in_asked, in_calls;

static uint8_t *
in_get(size_t len)
{
	in_asked = len;
	in_calls++;
	cr_assert_leq(len, sizeof(in_buf));
	return in_buf;
}

/*
 * The daemon packs a disclosure's reply into a body buffer it keeps
 * (daemon/req.c, reply_body_get()): the same bytes as a malloc'd reply,
 * receipt and all, and one request for exactly their length.
 */
Test(wire, response_encoded_in_a_lent_buffer_is_the_same_bytes)
{
	struct field_def	 def = { "full_name", FT_NAME, 0, 1, 1 };
	struct purpose		 pu = { 0 };
	struct rule		 r = { 0 };
	struct decision		 d;
	struct audit_receipt	 rc;
	uint8_t			*buf, *in;
	size_t			 len, inlen;

	memset(&d, 0, sizeof(d));
	memset(&rc, 0, sizeof(rc));
	pu.lawful_basis = "Art 6(1)(e)";
	r.id = "r1";
	d.kind = DECISION_ALLOW;
	d.reason = "released";
	d.rule = &r;
	d.purpose = &pu;
	d.nfields = 1;
	d.fields[0].def = &def;
	d.fields[0].released = 1;
	d.fields[0].value = "Alex Hart";
	rc.seq = 7;
	memset(rc.leaf, 0xab, sizeof(rc.leaf));
	rc.checkpoint = "safeshare.example/log\n8\nAAAA\n\n- key sig\n";
	rc.nproof = 3;
	memset(rc.proof, 0xcd, sizeof(rc.proof));
	buf = wire_response_encode(&d, "p", "1", 7, 1000, 2000, &rc, &len);
	in = wire_response_encode_in(&d, "p", "1", 7, 1000, 2000, &rc, in_get,
	    &inlen);
	cr_assert_eq(in, in_buf);
	cr_expect_eq(in_calls, 1);
	cr_expect_eq(in_asked, len);
	cr_assert_eq(inlen, len);
	cr_expect_eq(memcmp(in, buf, len), 0);
	free(buf);
}

/*
 * The summaries are logged and hashed into the chain (docs/audit-format.md):
 * their text is fixed, and a short buffer cuts them as snprintf() would.
 */
Test(wire, fields_summary_text)
{
	struct field_def	 defs[3] = {
		{ "full_name", FT_NAME, 0, 1, 1 }, { "dob", FT_DATE, 0, 1, 1 },
		{ "assessment", FT_TEXT, 1, 0, 0 }
	};
	struct decision		 d;
	char			 out[128], small[12];

	memset(&d, 0, sizeof(d));
	d.nfields = 3;
	d.fields[0].def = &defs[0];
	d.fields[0].released = 1;
	d.fields[0].transform = TR_INITIALS;
	d.fields[1].def = &defs[1];
	d.fields[1].released = 1;
	d.fields[2].def = &defs[2];
	d.fields[2].reason = "flag:domestic_abuse";
	d.unknown[0] = "shoe_size";
	d.nunknown = 1;
	wire_fields_summary(&d, 1, out, sizeof(out));
	cr_expect_str_eq(out, "full_name/initials,dob");
	wire_fields_summary(&d, 0, out, sizeof(out));
	cr_expect_str_eq(out, "assessment:flag:domestic_abuse,shoe_size:unknown_field");
	wire_fields_summary(&d, 1, small, sizeof(small));
	cr_expect_str_eq(small, "full_name/i");
	d.fields[2].reason = NULL;
	wire_fields_summary(&d, 0, small, sizeof(small));
	cr_expect_str_eq(small, "assessment:");
	memset(&d, 0, sizeof(d));
	wire_fields_summary(&d, 1, out, sizeof(out));
	cr_expect_str_eq(out, "");
}

Test(wire, error_round_trip)
{
	Safeshare__V1__Error	*e;
	size_t			 len;
	uint8_t			*buf = wire_error_encode("bad_request", "no", 7, NULL, &len);

	e = safeshare__v1__error__unpack(NULL, len, buf);
	cr_assert_not_null(e);
	cr_expect_str_eq(e->code, "bad_request");
	cr_expect_eq(e->disclosure_id, 7);
	safeshare__v1__error__free_unpacked(e, NULL);
	free(buf);
}

/* A logged refusal's reply carries its receipt; an unsigned log's none (issue 13). */
Test(wire, error_carries_receipt)
{
	static struct audit_receipt	 rc;
	Safeshare__V1__Error		*e;
	size_t				 len;
	uint8_t				*buf;

	rc.seq = 9;
	memset(rc.leaf, 0xab, 32);
	rc.checkpoint = "safeshare/00\n9\nAAAA\n\n\xe2\x80\x94 x AAAA\n";
	rc.nproof = 2;
	memset(rc.proof[0], 1, 32);
	memset(rc.proof[1], 2, 32);
	buf = wire_error_encode("unknown_subject", "no", 9, &rc, &len);
	e = safeshare__v1__error__unpack(NULL, len, buf);
	cr_assert_not_null(e);
	cr_assert_not_null(e->receipt);
	cr_expect_eq(e->receipt->seq, 9);
	cr_expect_eq(e->receipt->leaf_hash.len, 32);
	cr_expect_eq(e->receipt->leaf_hash.data[31], 0xab);
	cr_expect_str_eq(e->receipt->checkpoint, rc.checkpoint);
	cr_assert_eq(e->receipt->n_proof, 2);
	cr_expect_eq(e->receipt->proof[1].data[0], 2);
	safeshare__v1__error__free_unpacked(e, NULL);
	free(buf);
	rc.checkpoint = NULL;
	buf = wire_error_encode("unknown_subject", "no", 9, &rc, &len);
	e = safeshare__v1__error__unpack(NULL, len, buf);
	cr_assert_not_null(e);
	cr_expect_null(e->receipt);
	safeshare__v1__error__free_unpacked(e, NULL);
	free(buf);
}

/* Issue 14 items 8-10: what a request's strings may be. */
Test(wire, request_text_limits)
{
	static const struct {
		const char	*field, *value;
		const char	*why;	/* NULL: accepted */
	} cases[] = {
		{ "practitioner", "Dr A. Smith", NULL },
		{ "practitioner", "Zoë Ó Súilleabháin", NULL },
		{ "practitioner", "", NULL },		/* required-ness is the policy's */
		{ "practitioner", " ", "is blank (only spaces or invisible characters)" },
		{ "practitioner", "\xe2\x80\x8b", "is blank (only spaces or invisible "
		    "characters)" },
		{ "practitioner", "\xc2\xa0\xe3\x80\x80", "is blank (only spaces or "
		    "invisible characters)" },
		{ "practitioner", "a\nb", "contains control characters" },
		{ "practitioner", "a\xc2\x85", "contains control characters" },	/* NEL */
		{ "practitioner", "\xe2\x80\xae" "evil", "contains control characters" },
		{ "practitioner", "\xc0\xaf", "is not valid UTF-8" },	/* overlong '/' */
		{ "practitioner", "\xed\xa0\x80", "is not valid UTF-8" },	/* surrogate */
		{ "override_justification", "line one\nline two\tand more", NULL },
		{ "override_justification", "a\rb", "contains control characters" },
		{ "request_id", "abc-1.2:3_Z", NULL },
		{ "request_id", "a b", "may only contain letters, digits, '.', '_', ':' "
		    "and '-'" },
		{ "request_id", "q\nlevel=error", "contains control characters" },
		{ "subject_id", "S1001\x1b[1A", "contains control characters" },
		{ "no_such", "x", "is not a request field" },
	};
	char big[1002];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = wire_field_problem(cases[i].field, cases[i].value);

		if (cases[i].why == NULL)
			cr_expect_null(why, "case %zu: %s", i, why);
		else
			cr_expect(why != NULL && strcmp(why, cases[i].why) == 0,
			    "case %zu: got %s", i, why ? why : "(accepted)");
	}
	memset(big, 'x', sizeof(big) - 1);
	big[1000] = '\0';
	cr_expect_null(wire_field_problem("override_justification", big));
	big[1000] = 'x';
	big[1001] = '\0';
	cr_expect_str_eq(wire_field_problem("override_justification", big),
	    "is too long (at most 1000 bytes)");
	big[201] = '\0';
	cr_expect_str_eq(wire_field_problem("practitioner", big),
	    "is too long (at most 200 bytes)");
	big[200] = '\0';
	cr_expect_null(wire_field_problem("practitioner", big));
}

/* Issue 14 item 10: one escape for everything the CLI prints. */
Test(wire, term_safe_escapes_controls)
{
	cr_expect_str_eq(term_safe("S1\n#999 deny"), "S1\\n#999 deny");
	cr_expect_str_eq(term_safe("\r\x1b[1A\x1b[2K"), "\\r\\x1b[1A\\x1b[2K");
	cr_expect_str_eq(term_safe("a\xe2\x80\xae" "b\xc2\x9b" "c"), "a\\u202eb\\u009bc");
	cr_expect_str_eq(term_safe("bad \xff"), "bad \\xff");
	cr_expect_str_eq(term_safe("Zoë\tok"), "Zoë\\tok");
	cr_expect_str_eq(term_safe(NULL), "");
}

/*
 * Issue 16 item 5: file_read() says why in the caller's err, without the
 * path, and tells "not there" by *absent rather than errno.
 */
Test(wire, file_read_says_why)
{
	char	 path[64], err[256];
	char	*buf;
	size_t	 len = 0;
	int	 absent = -1;
	FILE	*fp;

	snprintf(path, sizeof(path), "/tmp/safeshare-test-read-%d", (int)getpid());
	unlink(path);
	cr_expect_null(file_read(path, 16, &len, &absent, err, sizeof(err)));
	cr_expect_eq(absent, 1);
	cr_expect_str_eq(err, strerror(ENOENT));
	cr_expect_null(file_read("/tmp", 16, &len, &absent, err, sizeof(err)));
	cr_expect_eq(absent, 0);
	cr_expect_str_eq(err, "not a regular file");
	cr_assert_not_null(fp = fopen(path, "w"));
	fputs("hello", fp);
	fclose(fp);
	cr_expect_null(file_read(path, 4, &len, &absent, err, sizeof(err)));
	cr_expect_eq(absent, 0);
	cr_expect_str_eq(err, "larger than 4 bytes");
	cr_assert_not_null(buf = file_read(path, 5, &len, NULL, NULL, 0));
	cr_expect_eq(len, 5);
	cr_expect_str_eq(buf, "hello");
	free(buf);
	unlink(path);
}

/* Issue 17: a person reference's strings keep the request's bounds. */
Test(wire, person_text_limits)
{
	Safeshare__V1__PersonRef	 p = SAFESHARE__V1__PERSON_REF__INIT;
	char				 longname[WIRE_MAX_NAME + 2];
	const char			*why = NULL;

	cr_expect_null(wire_person_problem(NULL, &why));
	p.nhs_number = "943 476 5919";
	p.holder = "health_trust";
	cr_expect_null(wire_person_problem(&p, &why));
	p.holder = "health\ttrust";
	cr_expect_str_eq(wire_person_problem(&p, &why), "holder");
	cr_expect_str_eq(why, "contains control characters");
	p.holder = "";
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	p.family_name = longname;
	cr_expect_str_eq(wire_person_problem(&p, &why), "family_name");
	cr_expect_str_eq(why, "is too long (at most 200 bytes)");
	p.family_name = "Hart";
	p.postcode = "\xe2\x80\x8b";	/* a zero-width space alone */
	cr_expect_str_eq(wire_person_problem(&p, &why), "postcode");
}

/* What a request naming no one yet asked for, as its log entry keeps it. */
Test(wire, person_asked_for_the_log)
{
	Safeshare__V1__PersonRef	 p = SAFESHARE__V1__PERSON_REF__INIT;
	char				 out[1024];

	p.nhs_number = "943 476 5919";
	wire_person_asked("S1001", &p, out, sizeof(out));
	cr_expect_str_eq(out, "S1001", "a local id is kept as given");
	wire_person_asked(NULL, &p, out, sizeof(out));
	cr_expect_str_eq(out, "nhs:9434765919", "normalised");
	p.nhs_number = "943 476 5918";
	wire_person_asked("", &p, out, sizeof(out));
	cr_expect_str_eq(out, "nhs:943 476 5918", "a bad number as given");
	p.nhs_number = "";
	p.family_name = "Hart";
	p.given_name = "Amelia";
	p.date_of_birth = "2015-03-09";
	wire_person_asked(NULL, &p, out, sizeof(out));
	cr_expect_str_eq(out, "demographics:Hart|Amelia|2015-03-09|");
	wire_person_asked(NULL, NULL, out, sizeof(out));
	cr_expect_str_eq(out, "");
}
