#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "match.h"
#include "wire.h"

wire_request *
wire_request_decode(const uint8_t *buf, size_t len)
{
	return safeshare__v1__disclosure_request__unpack(NULL, len, buf);
}

void
wire_request_free(wire_request *r)
{
	if (r != NULL)
		safeshare__v1__disclosure_request__free_unpacked(r, NULL);
}

/* protobuf-c's allocator over a struct wire_space: its room, then malloc(). */
static void *
space_alloc(void *arg, size_t size)
{
	struct wire_space	*sp = arg;
	size_t			 n = (size + 15) & ~(size_t)15;	/* _Alignas(16) */

	if (n >= size && n <= sizeof(sp->buf) - sp->used) {
		void *p = sp->buf + sp->used;

		sp->used += n;
		return p;
	}
	return malloc(size);
}

static void
space_free(void *arg, void *p)
{
	struct wire_space *sp = arg;

	/* What is in the room goes with it. */
	if ((uintptr_t)p < (uintptr_t)sp->buf ||
	    (uintptr_t)p >= (uintptr_t)(sp->buf + sizeof(sp->buf)))
		free(p);
}

wire_request *
wire_request_decode_in(const uint8_t *buf, size_t len, struct wire_space *sp)
{
	ProtobufCAllocator a = { space_alloc, space_free, sp };

	sp->used = 0;
	return safeshare__v1__disclosure_request__unpack(&a, len, buf);
}

void
wire_request_free_in(wire_request *r, struct wire_space *sp)
{
	ProtobufCAllocator a = { space_alloc, space_free, sp };

	if (r != NULL)
		safeshare__v1__disclosure_request__free_unpacked(r, &a);
}

int
wire_request_id_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= WIRE_MAX_REQUEST_ID &&
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._:-") == n;
}

/* The request's strings, their bounds and whether they may span lines. */
#define TOO_LONG(n)	"is too long (at most " #n " bytes)"
static const struct {
	const char	*name;
	size_t		 max;
	int		 flags;
	const char	*too_long;
} wire_fields[] = {
	{ "request_id",		WIRE_MAX_REQUEST_ID, 0,	TOO_LONG(64) },
	{ "purpose",		PROTOCOL_ID_MAX, 0,	TOO_LONG(64) },
	{ "record_type",	PROTOCOL_ID_MAX, 0,	TOO_LONG(64) },
	{ "subject_id",		WIRE_MAX_SUBJECT, 0,	TOO_LONG(128) },
	{ "practitioner",	WIRE_MAX_NAME, 0,	TOO_LONG(200) },
	{ "case_reference",	WIRE_MAX_NAME, 0,	TOO_LONG(200) },
	{ "fields",		PROTOCOL_ID_MAX, 0,	TOO_LONG(64) },
	{ "override_code",	PROTOCOL_ID_MAX, 0,	TOO_LONG(64) },
	{ "override_justification", WIRE_MAX_TEXT, TEXT_MULTILINE, TOO_LONG(1000) },
	{ "inform_waiver_reason", WIRE_MAX_TEXT, TEXT_MULTILINE, TOO_LONG(1000) },
};
#define NWIRE_FIELDS	(sizeof(wire_fields) / sizeof(wire_fields[0]))
_Static_assert(PROTOCOL_ID_MAX == 64 && WIRE_MAX_REQUEST_ID == 64 &&
    WIRE_MAX_SUBJECT == 128 && WIRE_MAX_NAME == 200 && WIRE_MAX_TEXT == 1000,
    "the TOO_LONG messages above name these limits");

/* wire_field_problem() for the field wire_fields[i]. */
static const char *
field_problem_at(size_t i, const char *value)
{
	const char *why;

	if ((why = text_problem(value, wire_fields[i].max, wire_fields[i].flags)) !=
	    NULL)
		return strcmp(why, "is too long") == 0 ? wire_fields[i].too_long : why;
	/* Issue 14: a request id is echoed into every log; keep it plain. */
	if (i == 0 && *value != '\0' && !wire_request_id_ok(value))
		return "may only contain letters, digits, '.', '_', ':' and '-'";
	return NULL;
}

const char *
wire_field_problem(const char *field, const char *value)
{
	for (size_t i = 0; i < NWIRE_FIELDS; i++)
		if (strcmp(wire_fields[i].name, field) == 0)
			return field_problem_at(i, value);
	return "is not a request field";
}

static const char *
str(const char *s)
{
	return s != NULL ? s : "";
}

const char *
wire_person_problem(const Safeshare__V1__PersonRef *p, const char **why)
{
	/* Each string with the wire field whose bounds it shares. */
	static const struct { const char *name, *wire; } f[] = {
		{ "holder", "purpose" },
		{ "nhs_number", "practitioner" },
		{ "family_name", "practitioner" },
		{ "given_name", "practitioner" },
		{ "date_of_birth", "purpose" },
		{ "postcode", "purpose" },
	};
	const char *v[sizeof(f) / sizeof(f[0])];

	if (p == NULL)
		return NULL;
	v[0] = p->holder;
	v[1] = p->nhs_number;
	v[2] = p->family_name;
	v[3] = p->given_name;
	v[4] = p->date_of_birth;
	v[5] = p->postcode;
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if ((*why = wire_field_problem(f[i].wire, str(v[i]))) != NULL)
			return f[i].name;
	return NULL;
}

void
wire_person_asked(const char *subject_id, const Safeshare__V1__PersonRef *p,
    char *out, size_t len)
{
	char		 nhs[MATCH_NHS_LEN + 1];
	const char	*why;

	if (str(subject_id)[0] != '\0')
		snprintf(out, len, "%s", subject_id);
	else if (p != NULL && str(p->nhs_number)[0] != '\0')
		snprintf(out, len, "nhs:%s", match_nhs_parse(p->nhs_number, nhs,
		    &why) == 0 ? nhs : p->nhs_number);
	else if (p != NULL)
		snprintf(out, len, "demographics:%s|%s|%s|%s", str(p->family_name),
		    str(p->given_name), str(p->date_of_birth), str(p->postcode));
	else if (len > 0)
		out[0] = '\0';
}

const char *
wire_request_problem(const wire_request *r, const char **why)
{
	const char *const v[] = { r->request_id, r->purpose, r->record_type,
	    r->subject_id, r->practitioner, r->case_reference, NULL, r->override_code,
	    r->override_justification, r->inform_waiver_reason };

	/* By index, not by name: this runs for every disclosure (issue 13). */
	for (size_t i = 0; i < NWIRE_FIELDS; i++) {
		if (v[i] == NULL) {
			for (size_t f = 0; f < r->n_fields; f++)
				if ((*why = field_problem_at(i, r->fields[f])) != NULL)
					return "fields";
			continue;
		}
		if ((*why = field_problem_at(i, v[i])) != NULL)
			return wire_fields[i].name;
	}
	return NULL;
}

void
wire_request_view(const wire_request *r, struct policy_request *v)
{
	memset(v, 0, sizeof(*v));
	v->purpose = r->purpose;
	v->case_ref = r->case_reference;
	v->practitioner = r->practitioner;
	v->subject_id = r->subject_id;
	v->record_type = r->record_type;
	v->fields = (const char *const *)r->fields;
	v->nfields = r->n_fields;
	v->consult = r->consultation;
	v->override_code = r->override_code;
	v->justification = r->override_justification;
	v->inform_waiver = r->inform_waiver_reason;
}

static uint8_t *
malloc_or_die(size_t len)
{
	uint8_t *buf;

	if ((buf = malloc(len ? len : 1)) == NULL)
		fatalx("%s: out of memory", __func__);
	return buf;
}

/* Packs m into a buffer from get(), which never returns NULL. */
static uint8_t *
pack_in(const ProtobufCMessage *m, uint8_t *(*get)(size_t), size_t *len)
{
	uint8_t *buf;

	*len = protobuf_c_message_get_packed_size(m);
	buf = get(*len);
	protobuf_c_message_pack(m, buf);
	return buf;
}

static uint8_t *
pack(const ProtobufCMessage *m, size_t *len)
{
	return pack_in(m, malloc_or_die, len);
}

uint8_t *
wire_response_encode(const struct decision *d, const char *protocol_id,
    const char *protocol_version, uint64_t disclosure_id, int64_t last_verified,
    int64_t now, const struct audit_receipt *rc, size_t *len)
{
	return wire_response_encode_in(d, protocol_id, protocol_version,
	    disclosure_id, last_verified, now, rc, malloc_or_die, len);
}

uint8_t *
wire_response_encode_in(const struct decision *d, const char *protocol_id,
    const char *protocol_version, uint64_t disclosure_id, int64_t last_verified,
    int64_t now, const struct audit_receipt *rc, uint8_t *(*get)(size_t),
    size_t *len)
{
	Safeshare__V1__Receipt			 receipt;
	ProtobufCBinaryData			 bins[AUDIT_MAX_PROOF];
	static const Safeshare__V1__Decision kinds[] = {
		[DECISION_DENY] = SAFESHARE__V1__DECISION__DECISION_DENY,
		[DECISION_ALLOW] = SAFESHARE__V1__DECISION__DECISION_ALLOW,
		[DECISION_PARTIAL] = SAFESHARE__V1__DECISION__DECISION_PARTIAL,
		[DECISION_CONSULTATION] = SAFESHARE__V1__DECISION__DECISION_CONSULTATION,
	};
	Safeshare__V1__DisclosureResponse	 resp = SAFESHARE__V1__DISCLOSURE_RESPONSE__INIT;
	Safeshare__V1__ReleasedField		 rel[PROTOCOL_MAX_FIELDS];
	Safeshare__V1__ReleasedField		*relp[PROTOCOL_MAX_FIELDS];
	Safeshare__V1__WithheldField		 wh[PROTOCOL_MAX_FIELDS + POLICY_MAX_UNKNOWN];
	Safeshare__V1__WithheldField		*whp[PROTOCOL_MAX_FIELDS + POLICY_MAX_UNKNOWN];
	/*
	 * What was withheld and why (D2) goes in every reply once a rule
	 * matched, a deny's too: the requester may know the fields of a record
	 * type a rule lets it ask for. Before that (no rule, no purpose) it
	 * is told nothing of the record type.
	 */
	int					 say_withheld = d->rule != NULL;

	resp.decision = kinds[d->kind];
	resp.reason = (char *)d->reason;
	resp.disclosure_id = disclosure_id;
	resp.protocol_id = (char *)(protocol_id ? protocol_id : "");
	resp.protocol_version = (char *)(protocol_version ? protocol_version : "");
	resp.rule_id = d->rule ? d->rule->id : "";
	resp.lawful_basis = d->purpose && d->rule ? d->purpose->lawful_basis : "";
	resp.review_required = d->review_required;
	resp.inform_subject = d->inform_subject;
	resp.released = relp;
	resp.withheld = whp;
	for (size_t i = 0; i < d->nfields; i++) {
		const struct decided_field *f = &d->fields[i];

		if (f->released) {
			Safeshare__V1__ReleasedField *r = &rel[resp.n_released];

			safeshare__v1__released_field__init(r);
			r->name = f->def->name;
			r->value = (char *)f->value;
			r->label = f->def->opinion ? SAFESHARE__V1__LABEL__LABEL_OPINION :
			    SAFESHARE__V1__LABEL__LABEL_FACT;
			r->last_verified = last_verified;
			r->transform = f->transform == TR_NONE ? "" :
			    (char *)transform_name(f->transform);
			relp[resp.n_released++] = r;
		} else if (say_withheld) {
			Safeshare__V1__WithheldField *w = &wh[resp.n_withheld];

			safeshare__v1__withheld_field__init(w);
			w->name = f->def->name;
			w->reason = (char *)f->reason;
			whp[resp.n_withheld++] = w;
		}
	}
	for (size_t i = 0; say_withheld && i < d->nunknown &&
	    i < POLICY_MAX_UNKNOWN; i++) {
		Safeshare__V1__WithheldField *w = &wh[resp.n_withheld];

		safeshare__v1__withheld_field__init(w);
		w->name = (char *)d->unknown[i];
		w->reason = "unknown_field";
		whp[resp.n_withheld++] = w;
	}
	if (resp.n_released > 0)
		resp.record_age_seconds = now - last_verified;
	if (wire_receipt_view(rc, &receipt, bins) == 0)
		resp.receipt = &receipt;
	return pack_in(&resp.base, get, len);
}

int
wire_receipt_view(const struct audit_receipt *rc, Safeshare__V1__Receipt *m,
    ProtobufCBinaryData *bins)
{
	size_t i;

	safeshare__v1__receipt__init(m);
	if (rc == NULL || rc->checkpoint == NULL || rc->nproof > AUDIT_MAX_PROOF)
		return -1;
	m->seq = rc->seq;
	m->leaf_hash.len = 32;
	m->leaf_hash.data = (uint8_t *)rc->leaf;
	m->checkpoint = (char *)rc->checkpoint;
	for (i = 0; i < rc->nproof; i++) {
		bins[i].len = 32;
		bins[i].data = (uint8_t *)rc->proof[i];
	}
	m->proof = rc->nproof > 0 ? bins : NULL;
	m->n_proof = rc->nproof;
	return 0;
}

uint8_t *
wire_error_encode(const char *code, const char *message, uint64_t disclosure_id,
    const struct audit_receipt *rc, size_t *len)
{
	Safeshare__V1__Error	e = SAFESHARE__V1__ERROR__INIT;
	Safeshare__V1__Receipt	receipt;
	ProtobufCBinaryData	bins[AUDIT_MAX_PROOF];

	e.code = (char *)code;
	e.message = (char *)message;
	e.disclosure_id = disclosure_id;
	if (wire_receipt_view(rc, &receipt, bins) == 0)
		e.receipt = &receipt;
	return pack(&e.base, len);
}

/*
 * Appends s to out[*n..len), NUL-terminated, as snprintf() would: on
 * truncation *n becomes len. Every disclosure's log entry is built so,
 * and snprintf() was 1 % of the event loop.
 */
static void
put(char *out, size_t len, size_t *n, const char *s)
{
	size_t sl = strlen(s);

	if (*n >= len)
		return;
	if (sl >= len - *n) {
		memcpy(out + *n, s, len - *n - 1);
		out[len - 1] = '\0';
		*n = len;
		return;
	}
	memcpy(out + *n, s, sl + 1);
	*n += sl;
}

void
wire_fields_summary(const struct decision *d, int released, char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < d->nfields && n < len; i++) {
		const struct decided_field *f = &d->fields[i];

		if (f->released != released)
			continue;
		if (n > 0)
			put(out, len, &n, ",");
		put(out, len, &n, f->def->name);
		if (released && f->transform) {
			put(out, len, &n, "/");
			put(out, len, &n, transform_name(f->transform));
		} else if (!released) {
			put(out, len, &n, ":");
			put(out, len, &n, f->reason ? f->reason : "withheld");
		}
	}
	/* Unknown names are the requester's own text: capped, never trusted. */
	for (size_t i = 0; !released && i < d->nunknown && i < POLICY_MAX_UNKNOWN &&
	    n < len; i++) {
		int w = snprintf(out + n, len - n, "%s%.64s:unknown_field", n ? "," : "",
		    d->unknown[i]);

		if (w < 0)
			break;
		n += (size_t)w;
	}
}
