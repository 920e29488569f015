/*
 * The decision, step by step. Deny is the default at every step: each step
 * either hands on to the next or returns a deny with its reason code.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"
#include "yamlutil.h"

static const char *const decision_names[] = {
	"deny", "allow", "partial", "consultation"
};
static const char *const consent_names[] = {
	"none", "granted", "refused", "withdrawn"
};

const char *
decision_name(enum decision_kind k)
{
	return decision_names[k];
}

const char *
consent_name(enum consent_state c)
{
	return consent_names[c];
}

int
consent_parse(const char *s, enum consent_state *out)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, consent_names[i]) == 0) {
			*out = (enum consent_state)i;
			return 0;
		}
	return -1;
}

static int
empty(const char *s)
{
	return s == NULL || *s == '\0';
}

static void deny(struct decision *, int, const char *, const char *, ...)
    __attribute__((format(printf, 4, 5)));

static void
deny(struct decision *d, int step, const char *reason, const char *fmt, ...)
{
	va_list ap;

	d->kind = DECISION_DENY;
	d->step = step;
	d->reason = reason;
	d->nreleased = 0;
	for (size_t i = 0; i < d->nfields; i++) {
		d->fields[i].released = 0;
		d->fields[i].value = NULL;
		if (d->fields[i].reason == NULL)
			d->fields[i].reason = reason;
	}
	va_start(ap, fmt);
	vsnprintf(d->detail, sizeof(d->detail), fmt, ap);
	va_end(ap);
}

static int
requested(const struct policy_request *req, const char *name)
{
	for (size_t i = 0; i < req->nfields; i++)
		if (strcmp(req->fields[i], name) == 0)
			return 1;
	return 0;
}

/*
 * A justification must be a real sentence, not a placeholder (D5): at least
 * POLICY_MIN_JUSTIFICATION characters and POLICY_MIN_WORDS words, counting
 * the text as written but without leading or trailing whitespace and with
 * each run of whitespace as one space, so padding adds nothing.
 */
int
policy_sentence_ok(const char *s)
{
	size_t	 len = 0, words = 0;
	int	 inword = 0;

	if (s == NULL)
		return 0;
	for (; *s != '\0'; s++) {
		if (isspace((unsigned char)*s)) {
			inword = 0;
			continue;
		}
		if (!inword) {
			words++;
			if (words > 1)
				len++;		/* the gap before this word */
		}
		len++;
		inword = 1;
	}
	return len >= POLICY_MIN_JUSTIFICATION && words >= POLICY_MIN_WORDS;
}

/*
 * An inform waiver (D6) is a sentence too; one that begins with the log's
 * not-accepted marker is refused, so the log can always tell the two apart.
 */
int
policy_waiver_ok(const char *s)
{
	const char *t = s;

	if (s == NULL)
		return 0;
	while (isspace((unsigned char)*t))
		t++;
	if (strncmp(t, POLICY_WAIVER_REJECTED, strlen(POLICY_WAIVER_REJECTED)) == 0)
		return 0;
	return policy_sentence_ok(s);
}

/* Records an asked-for name the record type lacks, once (D2, issue 15). */
static void
add_unknown(struct decision *d, const char *name)
{
	for (size_t i = 0; i < d->nunknown && i < POLICY_MAX_UNKNOWN; i++)
		if (strcmp(d->unknown[i], name) == 0)
			return;
	if (d->nunknown < POLICY_MAX_UNKNOWN)
		d->unknown[d->nunknown] = name;
	d->nunknown++;
}

static int
has_flag(const struct policy_subject *s, const char *flag)
{
	for (size_t i = 0; i < s->nflags; i++)
		if (strcmp(s->flags[i], flag) == 0)
			return 1;
	return 0;
}

/* Steps 4 to 8 run on a matched rule; see policy_decide(). */
static void
decide_fields(const struct policy_request *req, const struct policy_subject *subj,
    int64_t now, struct decision *d)
{
	const struct rule	*r = d->rule;
	const struct record_type *rt = d->record_type;
	size_t			 want = 0, avail = 0;

	/*
	 * Step 4: the rule's fields that were asked for (all when none were).
	 * A field asked for but outside the rule is withheld not_in_rule and
	 * still counts as wanted, so the answer is partial (D2, docs/api.md).
	 * A name the record type does not have is withheld unknown_field and
	 * counts as wanted too: a misspelt name is never answered as if all
	 * that was asked for had been released (issue 15).
	 */
	d->nfields = rt->nfields;
	for (size_t i = 0; i < rt->nfields; i++) {
		struct decided_field *f = &d->fields[i];

		memset(f, 0, sizeof(*f));
		f->def = &rt->fields[i];
		f->reason = "not_in_rule";
		for (size_t j = 0; j < r->nfields; j++)
			if (r->fields[j].idx == i) {
				f->transform = r->fields[j].transform;
				f->reason = NULL;
			}
		if (f->reason == NULL && req->nfields > 0 &&
		    !requested(req, f->def->name))
			f->reason = "not_requested";
		if (f->reason == NULL)
			avail++;
		if (f->reason == NULL ||
		    (req->nfields > 0 && requested(req, f->def->name)))
			want++;
	}
	for (size_t j = 0; j < req->nfields; j++) {
		size_t idx;

		if (req->fields[j] != NULL &&
		    record_type_field(rt, req->fields[j], &idx) == NULL)
			add_unknown(d, req->fields[j]);
	}
	want += d->nunknown;
	if (avail == 0) {
		deny(d, 4, "no_fields", "none of the requested fields is released by "
		    "rule %s", r->id);
		return;
	}
	if (subj == NULL || !subj->known) {
		deny(d, 4, "unknown_subject", "no %s record is held for this subject",
		    rt->id);
		return;
	}

	/*
	 * Step 5: consent (D3, D4). A refusal is respected whatever the rule
	 * says; an absent, expired or out-of-scope consent blocks only rules
	 * that require consent. Either can be overridden with an exception the
	 * rule allows and a written justification (D5). An override is used
	 * only when consent blocked the request: otherwise it decides nothing,
	 * is not reviewed and creates no inform item (issue 15).
	 *
	 * A consultation skips this step: it identifies no one, so it needs
	 * no consent (D11); the consent state is still recorded.
	 */
	if (req->consult) {
		enum consent_state	 c = subj->consent;

		d->consent = c == CONSENT_GRANTED && subj->consent_expires != 0 &&
		    date_day_over(subj->consent_expires, now) ? "expired" :
		    consent_name(c);
	} else {
		enum consent_state	 c = subj->consent;
		int			 expired = c == CONSENT_GRANTED &&
					    subj->consent_expires != 0 &&
					    date_day_over(subj->consent_expires, now);
		const char		*block = NULL;

		d->consent = expired ? "expired" : consent_name(c);
		if (c == CONSENT_REFUSED || c == CONSENT_WITHDRAWN)
			block = "consent_refused";
		else if (r->consent_required && (c != CONSENT_GRANTED || expired))
			block = "consent_required";
		if (block != NULL) {
			enum override_code oc;

			if (empty(req->override_code)) {
				deny(d, 5, block, "consent is %s and no override exception "
				    "was given", d->consent);
				return;
			}
			if (override_parse(req->override_code, &oc) == -1) {
				deny(d, 5, "unknown_override", "\"%s\" is not an override "
				    "exception code", req->override_code);
				return;
			}
			if (!(r->overrides & (1u << oc))) {
				deny(d, 5, "override_not_allowed", "rule does not accept "
				    "the override exception %s", override_name(oc));
				return;
			}
			if (!policy_sentence_ok(req->justification)) {
				deny(d, 5, "justification_required", "an override needs a "
				    "written justification of at least a sentence");
				return;
			}
			d->override_used = 1;
			d->override = oc;
			d->review_required = 1;			/* D15 */
			/*
			 * D6: the subject is told unless a reason is given why
			 * telling them would increase risk; "x" is not a reason.
			 */
			d->inform_subject = !policy_waiver_ok(req->inform_waiver);
		}
	}

	/* Step 6: risk flags withhold the fields the rule names (D12). */
	for (size_t w = 0; w < r->nwithhold; w++) {
		const struct flag_withhold *fw = &r->withhold[w];

		if (!has_flag(subj, fw->flag))
			continue;
		for (size_t k = 0; k < fw->nfields; k++) {
			struct decided_field *f = &d->fields[fw->fields[k]];

			if (f->reason == NULL) {
				snprintf(f->reasonbuf, sizeof(f->reasonbuf), "flag:%s",
				    fw->flag);
				f->reason = f->reasonbuf;
			}
		}
	}

	/* Step 8 before 7 is harmless: consultation drops identifying fields (D11). */
	if (req->consult)
		for (size_t i = 0; i < d->nfields; i++)
			if (d->fields[i].def->identifying && d->fields[i].reason == NULL)
				d->fields[i].reason = "consultation";

	/* Step 7: release what is left, transformed (D2). */
	d->nreleased = 0;
	for (size_t i = 0; i < d->nfields; i++) {
		struct decided_field	*f = &d->fields[i];
		const char		*v;

		if (f->reason != NULL)
			continue;
		v = subj->values != NULL ? subj->values[i] : NULL;
		if (v == NULL) {
			f->reason = "not_held";
			continue;
		}
		f->released = 1;
		d->nreleased++;
		f->value = f->transform == TR_NONE ? v :
		    policy_transform(f->transform, v, now, f->tbuf, sizeof(f->tbuf));
	}
	/*
	 * A consultation that leaves nothing is still a consultation (D11):
	 * it is answered and logged as one, every field in withheld[].
	 */
	if (d->nreleased == 0 && !req->consult) {
		deny(d, 6, "all_withheld", "every field was withheld");
		return;
	}
	d->step = 8;
	if (req->consult) {
		d->kind = DECISION_CONSULTATION;
		d->reason = "consultation";
	} else if (d->nreleased < want) {
		d->kind = DECISION_PARTIAL;
		d->reason = d->override_used ? "override_partial" : "partially_released";
	} else {
		d->kind = DECISION_ALLOW;
		d->reason = d->override_used ? "override" : "released";
	}
	snprintf(d->detail, sizeof(d->detail), "rule %s released %zu of %zu fields",
	    r->id, d->nreleased, want);
}

/*
 * "; did you mean \"ID\"?" for a misspelt purpose (pu == NULL) or record
 * type (under purpose pu), or "". Only ids that some rule lets agency a use
 * are offered, so the hint tells the agency nothing it could not ask for
 * (issue 14 item 16), as `policy check` does for files.
 */
static void
usable_hint(const struct protocol *p, const struct agency *a,
    const struct purpose *pu, const char *word, char *buf, size_t len)
{
	const char	**cands = xcalloc(p->nrules, sizeof(*cands));
	const char	 *hint;
	size_t		  n = 0;

	for (size_t i = 0; i < p->nrules; i++) {
		const struct rule *r = &p->rules[i];

		if (!rule_applies_to(r, a) || (pu != NULL && r->purpose != pu))
			continue;
		cands[n++] = pu == NULL ? r->purpose->id : r->record_type->id;
	}
	if ((hint = did_you_mean(word, cands, n)) != NULL)
		snprintf(buf, len, "; did you mean \"%s\"?", hint);
	else
		buf[0] = '\0';
	free(cands);
}

static void
decide(const struct protocol *p, const struct agency *a,
    const struct policy_request *req, const struct policy_subject *subj,
    int64_t now, struct decision *d)
{
	char	 hint[96];

	/*
	 * All but fields[] (9 KiB, most of the struct): step 4 sets each of
	 * the record type's fields before it counts them in nfields, and
	 * nothing reads past nfields. Zeroing them all cost the event loop a
	 * 9 KiB write per disclosure (issue 13).
	 */
	_Static_assert(offsetof(struct decision, nfields) ==
	    offsetof(struct decision, fields) + sizeof(d->fields),
	    "fields[] is followed by nfields");
	memset(d, 0, offsetof(struct decision, fields));
	memset(&d->nfields, 0, sizeof(*d) - offsetof(struct decision, nfields));
	d->kind = DECISION_DENY;
	d->consent = subj != NULL ? consent_name(subj->consent) : "none";

	/* Step 1: who is asking and is the request complete (D1, D10). */
	if (a == NULL) {
		deny(d, 1, "unknown_agency", "the certificate maps to no agency");
		return;
	}
	if (!(a->roles & ROLE_REQUESTER)) {
		deny(d, 1, "not_requester", "agency %s does not have the requester role",
		    a->id);
		return;
	}
	if (empty(req->purpose) || empty(req->case_ref) || empty(req->practitioner) ||
	    empty(req->subject_id) || empty(req->record_type)) {
		deny(d, 1, "incomplete_request", "a request needs a purpose, a case "
		    "reference, a practitioner, a subject and a record type");
		return;
	}
	/* Step 2: the protocol is in force (D13). */
	if (!protocol_in_force(p, now)) {
		deny(d, 2, "protocol_expired", "the protocol passed its review-by date %s",
		    p->review_by_str);
		return;
	}
	/* Step 3: a rule for (agency, purpose, record type) (D1). */
	if ((d->purpose = protocol_purpose(p, req->purpose)) == NULL) {
		usable_hint(p, a, NULL, req->purpose, hint, sizeof(hint));
		deny(d, 3, "unknown_purpose", "no purpose \"%.64s\" in the protocol%s",
		    req->purpose, hint);
		return;
	}
	if ((d->record_type = protocol_record_type(p, req->record_type)) == NULL) {
		usable_hint(p, a, d->purpose, req->record_type, hint, sizeof(hint));
		deny(d, 3, "unknown_record_type", "no record type \"%.64s\" in the "
		    "protocol%s", req->record_type, hint);
		return;
	}
	if ((d->rule = protocol_find_rule(p, a, d->purpose, d->record_type)) == NULL) {
		deny(d, 3, "no_rule", "no rule lets agency %s see this record type "
		    "for this purpose", a->id);
		return;
	}
	decide_fields(req, subj, now, d);
}

/*
 * A denied request that invoked an override exception is a denied
 * emergency request: it goes to the senior person's review queue (D15),
 * and nothing was shared, so no one is to be informed (D6).
 */
static void
refused_override(const struct policy_request *req, struct decision *d)
{
	if (d->kind != DECISION_DENY || empty(req->override_code))
		return;
	d->override_used = 0;
	d->review_required = 1;
	d->inform_subject = 0;
}

/* Appends printf-style text to the decision's detail, truncating. */
static void advise(struct decision *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
advise(struct decision *d, const char *fmt, ...)
{
	size_t	 used = strlen(d->detail);
	va_list	 ap;

	if (used + 1 >= sizeof(d->detail))
		return;
	va_start(ap, fmt);
	vsnprintf(d->detail + used, sizeof(d->detail) - used, fmt, ap);
	va_end(ap);
}

/*
 * Issue 22: a denial tells the practitioner the next step, one line after
 * the reason, in the reply's message and so in the CLI.
 */
static void
advice(const struct agency *a, const struct policy_request *req,
    struct decision *d)
{
	const char	*sep = ": ";

	if (d->kind != DECISION_DENY || d->reason == NULL)
		return;
	if (strcmp(d->reason, "no_rule") == 0)
		advise(d, ". Next: the protocol needs a rule for agency %s, purpose "
		    "%s, record type %s; see `safeshare policy matrix --agency %s` "
		    "for what your agency may ask, or ask the protocol's owner",
		    a->id, d->purpose->id, d->record_type->id, a->id);
	else if (strcmp(d->reason, "justification_required") == 0)
		advise(d, ". Next: write at least %d characters in %d or more words "
		    "saying why the exception applies (--justification)",
		    POLICY_MIN_JUSTIFICATION, POLICY_MIN_WORDS);
	else if ((strcmp(d->reason, "consent_required") == 0 ||
	    strcmp(d->reason, "consent_refused") == 0 ||
	    strcmp(d->reason, "unknown_override") == 0 ||
	    strcmp(d->reason, "override_not_allowed") == 0) && d->rule != NULL) {
		if (d->rule->overrides == 0) {
			advise(d, ". Next: rule %s accepts no override exception; "
			    "obtain the person's consent", d->rule->id);
			return;
		}
		advise(d, ". Next: rule %s accepts the override exceptions", d->rule->id);
		for (int i = 0; i < OV_COUNT; i++)
			if (d->rule->overrides & (1u << i)) {
				advise(d, "%s%s", sep, override_name((enum override_code)i));
				sep = ", ";
			}
		advise(d, " (--override CODE with a --justification), or obtain "
		    "the person's consent");
	} else if (strcmp(d->reason, "all_withheld") == 0) {
		advise(d, ". Withheld");
		for (size_t i = 0; i < d->nfields; i++) {
			if (d->fields[i].reason == NULL ||
			    strcmp(d->fields[i].reason, "not_requested") == 0)
				continue;
			advise(d, "%s%s (%s)", sep, d->fields[i].def->name,
			    d->fields[i].reason);
			sep = ", ";
		}
		if (req->nfields > 0)
			advise(d, ". Next: ask for other fields, or none for all the "
			    "rule releases");
	} else if (strcmp(d->reason, "not_requester") == 0)
		advise(d, ". Next: use a certificate of an agency with the "
		    "requester role");
	else if (strcmp(d->reason, "protocol_expired") == 0)
		advise(d, ". Next: the admins must review the protocol, update "
		    "review_by and reload it");
}

void
policy_decide(const struct protocol *p, const struct agency *a,
    const struct policy_request *req, const struct policy_subject *subj,
    int64_t now, struct decision *d)
{
	decide(p, a, req, subj, now, d);
	refused_override(req, d);
	if (a != NULL)
		advice(a, req, d);
}

static const char *
initials(const char *v, char *out, size_t outlen)
{
	size_t	 n = 0;
	int	 start = 1;

	for (; *v != '\0' && n + 3 < outlen; v++) {
		if (isspace((unsigned char)*v) || *v == '-') {
			start = 1;
			continue;
		}
		if (start && isalpha((unsigned char)*v)) {
			if (n > 0)
				out[n++] = ' ';
			out[n++] = (char)toupper((unsigned char)*v);
			out[n++] = '.';
		}
		start = 0;
	}
	out[n] = '\0';
	return out;
}

static const char *
age_band(const char *v, int64_t now, char *out, size_t outlen)
{
	static const struct { int lo, hi; } bands[] = {
		{ 0, 4 }, { 5, 9 }, { 10, 15 }, { 16, 17 }, { 18, 24 }, { 25, 34 },
		{ 35, 44 }, { 45, 54 }, { 55, 64 }, { 65, 74 }, { 75, 200 }
	};
	struct tm	 tm;
	time_t		 t = (time_t)now;
	int		 y, m, d, age;

	if (date_ymd(v, &y, &m, &d, NULL) == -1)
		return snprintf(out, outlen, "[redacted]"), out;
	gmtime_r(&t, &tm);
	age = tm.tm_year + 1900 - y;
	if (tm.tm_mon + 1 < m || (tm.tm_mon + 1 == m && tm.tm_mday < d))
		age--;
	if (age < 0)
		return snprintf(out, outlen, "[redacted]"), out;
	for (size_t i = 0; i < sizeof(bands) / sizeof(bands[0]); i++)
		if (age >= bands[i].lo && age <= bands[i].hi) {
			if (bands[i].hi >= 200)
				snprintf(out, outlen, "%d+", bands[i].lo);
			else
				snprintf(out, outlen, "%d-%d", bands[i].lo, bands[i].hi);
			return out;
		}
	/* No band (an age over 200): never leave out unset (D2). */
	return snprintf(out, outlen, "[redacted]"), out;
}

/* A UK postcode's outward code: everything before the 3-character inward code. */
static const char *
postcode_district(const char *v, char *out, size_t outlen)
{
	char	 compact[16];
	size_t	 n = 0;

	for (; *v != '\0'; v++) {
		if (isspace((unsigned char)*v))
			continue;
		if (!isalnum((unsigned char)*v) || n + 1 >= sizeof(compact))
			return snprintf(out, outlen, "[redacted]"), out;
		compact[n++] = (char)toupper((unsigned char)*v);
	}
	compact[n] = '\0';
	/* Not a UK postcode: it cannot be coarsened, so nothing of it goes (D2). */
	if (!postcode_valid(compact))
		return snprintf(out, outlen, "[redacted]"), out;
	snprintf(out, outlen, "%.*s", (int)(n - 3), compact);
	return out;
}

const char *
policy_transform(enum transform t, const char *v, int64_t now, char *out,
    size_t outlen)
{
	int	 y, m, d;

	switch (t) {
	case TR_YEAR_ONLY:
		/* A value that is not a date cannot be coarsened: redacted (D2). */
		if (date_ymd(v, &y, &m, &d, NULL) == -1)
			break;
		snprintf(out, outlen, "%04d", y);
		return out;
	case TR_AGE_BAND:
		return age_band(v, now, out, outlen);
	case TR_POSTCODE_DISTRICT:
		return postcode_district(v, out, outlen);
	case TR_INITIALS:
		return initials(v, out, outlen);
	case TR_NONE:
		snprintf(out, outlen, "%s", v);
		return out;
	case TR_REDACT:
		break;
	}
	/* Never pass through a value a transform could not coarsen. */
	snprintf(out, outlen, "[redacted]");
	return out;
}
