/*
 * libFuzzer target: the decision function with fuzzer-chosen agency,
 * purpose, record type, fields, consent, flags, overrides, consultation,
 * values and time. Asserts the invariants that must hold for any input:
 * a deny releases nothing, a consultation releases no identifying field,
 * a released field is in the rule, and flagged fields stay withheld.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct protocol *proto;

static const char *
pick(const uint8_t **p, const uint8_t *end, const char *const *v, size_t n)
{
	if (*p >= end)
		return v[0];
	return v[*(*p)++ % n];
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const purposes[] = { "child_protection", "adult_safeguarding",
	    "marac", "housing_support", "", "nope" };
	static const char *const types[] = { "person", "concern", "", "x" };
	static const char *const fields[] = { "full_name", "date_of_birth", "address",
	    "postcode", "phone", "gp_practice", "summary", "risk_level", "bogus" };
	static const char *const overrides[] = { "", "child_significant_harm",
	    "adult_serious_harm", "serious_crime", "legal_proceedings",
	    "emergency_life_threat", "others_at_risk", "made_up" };
	static const char *const flagnames[] = { "domestic_abuse", "hate_crime", "other" };
	static const char *const vals[] = { "Amelia Hart", "2015-03-09", "EX1 4QT", "",
	    "not a date", "SW1A 1AA", "x" };
	const uint8_t		*p = data, *end = data + size;
	const char		*req_fields[8], *flags[3], *values[PROTOCOL_MAX_FIELDS];
	struct policy_request	 rq;
	struct policy_subject	 s;
	struct decision		 d;
	const struct agency	*ag;
	struct diag		 dg = { 0 };

	if (proto == NULL && (proto = protocol_load(SOURCE_DIR "/config/protocol.yaml", 0,
	    &dg)) == NULL)
		__builtin_trap();
	diag_free(&dg);
	if (size < 8)
		return 0;
	ag = &proto->agencies[*p++ % proto->nagencies];
	memset(&rq, 0, sizeof(rq));
	rq.purpose = pick(&p, end, purposes, 6);
	rq.record_type = pick(&p, end, types, 4);
	rq.case_ref = *p++ & 1 ? "C1" : "";
	rq.practitioner = "P";
	rq.subject_id = "S1";
	rq.nfields = *p++ % 9;
	for (size_t i = 0; i < rq.nfields; i++)
		req_fields[i % 8] = pick(&p, end, fields, 9);
	rq.nfields = rq.nfields > 8 ? 8 : rq.nfields;
	rq.fields = req_fields;
	rq.consult = p < end && (*p++ & 1);
	rq.override_code = pick(&p, end, overrides, 8);
	rq.justification = p < end && (*p++ & 1) ? "A child disclosed injuries today at "
	    "school and the parent is the suspect." : "short";
	rq.inform_waiver = p < end && (*p++ & 1) ? "would alert the abuser" : "";
	memset(&s, 0, sizeof(s));
	s.known = p < end && (*p++ % 8) != 0;
	s.consent = (enum consent_state)(p < end ? *p++ % 4 : 0);
	s.consent_expires = p < end && (*p++ & 1) ? 1790000000 : 0;
	s.nflags = p < end ? *p++ % 4 : 0;
	for (size_t i = 0; i < s.nflags && i < 3; i++)
		flags[i] = pick(&p, end, flagnames, 3);
	s.nflags = s.nflags > 3 ? 3 : s.nflags;
	s.flags = flags;
	for (size_t i = 0; i < PROTOCOL_MAX_FIELDS; i++)
		values[i] = p < end && (*p & 7) == 7 ? NULL : pick(&p, end, vals, 7);
	s.values = values;
	policy_decide(proto, ag, &rq, &s, p < end && (*p & 1) ? 1900000000 : 1795000000, &d);

	if (d.kind == DECISION_DENY && d.nreleased != 0)
		__builtin_trap();
	for (size_t i = 0; i < d.nfields; i++) {
		const struct decided_field *f = &d.fields[i];

		if (!f->released)
			continue;
		if (d.kind == DECISION_DENY || f->value == NULL)
			__builtin_trap();
		if (rq.consult && f->def->identifying)
			__builtin_trap();		/* D11 */
		if (d.rule == NULL)
			__builtin_trap();
		{
			int in_rule = 0;

			for (size_t j = 0; j < d.rule->nfields; j++)
				in_rule |= d.rule->fields[j].idx == i;
			if (!in_rule)
				__builtin_trap();	/* D2 */
		}
		for (size_t w = 0; w < d.rule->nwithhold; w++)
			for (size_t k = 0; k < s.nflags; k++)
				if (strcmp(s.flags[k], d.rule->withhold[w].flag) == 0)
					for (size_t j = 0; j < d.rule->withhold[w].nfields; j++)
						if (d.rule->withhold[w].fields[j] == i)
							__builtin_trap();	/* D12 */
	}
	return 0;
}
