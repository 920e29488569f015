/*
 * Sharing protocol parser and validator (D1, D2, D5, D8, D11-D14).
 * Every problem is reported with its position, and parsing goes on after an
 * error so that an admin sees them all in one run.
 */
#include <openssl/evp.h>

#include <errno.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "protocol.h"
#include "yamlutil.h"

static const char *const transform_names[] = {
	"none", "year_only", "age_band", "postcode_district", "initials", "redact"
};
static const char *const type_names[] = {
	"string", "text", "name", "date", "postcode", "phone", "integer", "address",
	"boolean"
};
#define NTYPES	(sizeof(type_names) / sizeof(type_names[0]))
static const char *const override_names[] = {
	"child_significant_harm", "adult_serious_harm", "serious_crime",
	"legal_proceedings", "emergency_life_threat", "others_at_risk"
};
static const char *const role_names[] = { "requester", "holder", "auditor", "admin",
    "guardian" };
#define NROLES	5
#define STR_(x)		#x
#define STR(x)		STR_(x)
#define ID_MAX_STR	STR(PROTOCOL_ID_MAX)

const char *
transform_name(enum transform t)
{
	return transform_names[t];
}

const char *
field_type_name(enum field_type t)
{
	return type_names[t];
}

const char *
override_name(enum override_code c)
{
	return override_names[c];
}

int
override_parse(const char *s, enum override_code *out)
{
	for (int i = 0; i < OV_COUNT; i++)
		if (strcmp(s, override_names[i]) == 0) {
			*out = (enum override_code)i;
			return 0;
		}
	return -1;
}

const char *
roles_string(unsigned roles, char *buf, size_t len)
{
	buf[0] = '\0';
	for (int i = 0; i < NROLES; i++) {
		if (!(roles & (1u << i)))
			continue;
		if (buf[0] != '\0')
			strncat(buf, ",", len - strlen(buf) - 1);
		strncat(buf, role_names[i], len - strlen(buf) - 1);
	}
	return buf;
}

static int	has_ctrl(const char *, int);

static int
lookup_name(const char *s, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

/* Reports an unknown enum value with the choices and a did-you-mean. */
static void
bad_choice(struct yfile *yf, yaml_node_t *n, const char *what, const char *got,
    const char *const *names, size_t count)
{
	const char	*hint = did_you_mean(got, names, count);
	char		 list[256] = "";

	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			strncat(list, ", ", sizeof(list) - strlen(list) - 1);
		strncat(list, names[i], sizeof(list) - strlen(list) - 1);
	}
	if (hint != NULL)
		yerr(yf, n, "%s: unknown value \"%s\"; did you mean \"%s\"? (one of: %s)",
		    what, got, hint, list);
	else
		yerr(yf, n, "%s: unknown value \"%s\" (one of: %s)", what, got, list);
}

/* A non-empty scalar for a required key, or NULL with a diagnostic. */
static const char *
req_str(struct yfile *yf, yaml_node_t *map, const char *key, const char *where)
{
	yaml_node_t	*n = yneed(yf, map, key, where);
	const char	*s;

	if (n == NULL || (s = ystr(yf, n, key)) == NULL)
		return NULL;
	if (*s == '\0') {
		yerr(yf, n, "%s: \"%s\" must not be empty", where, key);
		return NULL;
	}
	return s;
}

const char *
protocol_id_problem(const char *s)
{
	size_t n = strlen(s);

	if (n == 0)
		return "must not be empty";
	if (n > PROTOCOL_ID_MAX)
		return "is too long (at most " ID_MAX_STR " bytes)";
	if (!isalnum((unsigned char)s[0]))
		return "must start with a letter or digit";
	for (; *s != '\0'; s++)
		if (!isascii((unsigned char)*s) || (!isalnum((unsigned char)*s) &&
		    strchr("_-.", *s) == NULL))
			return "may only contain letters, digits, '_', '-' and '.'";
	return NULL;
}

/*
 * An id checked with protocol_id_problem(): 1 on success, else 0 with a
 * diagnostic at n. Long ids are cut in the message, which says how long.
 */
static int
id_ok(struct yfile *yf, yaml_node_t *n, const char *what, const char *s)
{
	const char *why = protocol_id_problem(s);

	if (why == NULL)
		return 1;
	if (strlen(s) > PROTOCOL_ID_MAX)
		yerr(yf, n, "%s \"%.20s...\" (%zu bytes) %s", what, s, strlen(s),
		    why);
	else
		yerr(yf, n, "%s \"%s\" %s", what, s, why);
	return 0;
}

/* req_str() for an id: present, non-empty and a valid id, or NULL. */
static const char *
req_id(struct yfile *yf, yaml_node_t *map, const char *key, const char *where)
{
	const char	*s = req_str(yf, map, key, where);
	char		 what[64];

	snprintf(what, sizeof(what), "%s %s", where, key);
	if (s == NULL || !id_ok(yf, yget(yf, map, key), what, s))
		return NULL;
	return s;
}

static const char *
opt_str(struct yfile *yf, yaml_node_t *map, const char *key)
{
	yaml_node_t	*n = yget(yf, map, key);
	const char	*s;

	if (n == NULL || (s = ystr(yf, n, key)) == NULL || *s == '\0')
		return NULL;
	return s;
}

/* Checks an id is unique among the previous ones (names[0..n)). */
static void
check_unique(struct yfile *yf, yaml_node_t *n, const char *kind, const char *id,
    size_t *lines, char **ids, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (ids[i] != NULL && strcmp(ids[i], id) == 0) {
			yerr(yf, n, "duplicate %s id \"%s\" (first defined at line %zu)",
			    kind, id, lines[i]);
			return;
		}
}

/*
 * "; did you mean \"ID\"?" for the id closest to s, or "". The candidates
 * are count structs of size bytes at base, each starting with its id (char *).
 */
static const char *
id_hint(char *buf, size_t len, const char *s, const void *base, size_t size,
    size_t count)
{
	const char	**cands = xcalloc(count, sizeof(*cands));
	const char	 *hint;

	for (size_t i = 0; i < count; i++)
		cands[i] = *(char *const *)((const char *)base + i * size);
	if ((hint = did_you_mean(s, cands, count)) != NULL)
		snprintf(buf, len, "; did you mean \"%s\"?", hint);
	else
		buf[0] = '\0';
	free(cands);
	return buf;
}

/* A key seen earlier in the same mapping: in YAML the later one would win. */
static int
dup_key(struct yfile *yf, yaml_node_t *map, yaml_node_pair_t *pair,
    const char *where)
{
	yaml_node_t	*k = ynode(yf, pair->key), *o;

	if (k->type != YAML_SCALAR_NODE)
		return 0;
	for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pair; q++) {
		o = ynode(yf, q->key);
		if (o->type == YAML_SCALAR_NODE &&
		    strcmp((char *)o->data.scalar.value,
		    (char *)k->data.scalar.value) == 0) {
			yerr(yf, k, "duplicate key \"%s\" in %s (first at line %zu)",
			    (char *)k->data.scalar.value, where, yline(o));
			return 1;
		}
	}
	return 0;
}

static void
parse_header(struct yfile *yf, struct protocol *p, yaml_node_t *n, int64_t now)
{
	static const char *const keys[] = { "id", "version", "owner", "review_by", NULL };
	const char	*s;
	yaml_node_t	*rb;

	if (!yis_map(yf, n, "protocol"))
		return;
	ykeys_check(yf, n, keys, "protocol");
	if ((s = req_id(yf, n, "id", "protocol")) != NULL)
		p->id = xstrdup(s);
	if ((s = req_id(yf, n, "version", "protocol")) != NULL)
		p->version = xstrdup(s);
	if ((s = req_str(yf, n, "owner", "protocol")) != NULL)
		p->owner = xstrdup(s);
	if ((rb = yneed(yf, n, "review_by", "protocol")) == NULL)
		return;
	if (ydate(yf, rb, "review_by", &p->review_by) == -1)
		return;
	snprintf(p->review_by_str, sizeof(p->review_by_str), "%s",
	    (char *)rb->data.scalar.value);
	/* D13: a protocol past its review date is not in force. */
	if (!protocol_in_force(p, now))
		yerr(yf, rb, "protocol passed its review-by date %s; review it and "
		    "set a new date before it can be used", p->review_by_str);
	else if (p->review_by + 86400 - now < 30 * 86400)
		ywarn(yf, rb, "protocol review-by date %s is less than 30 days away",
		    p->review_by_str);
}

static void
parse_flags(struct yfile *yf, struct protocol *p, yaml_node_t *n)
{
	if (!yis_seq(yf, n, "flags"))
		return;
	YSEQ_FOREACH(yf, n, it) {
		yaml_node_t	*f = ynode(yf, *it);
		const char	*s = ystr(yf, f, "flags");

		if (s == NULL || !id_ok(yf, f, "flag", s))
			continue;
		if (strlist_has(&p->flags, s))
			yerr(yf, f, "duplicate flag \"%s\"", s);
		else
			strlist_add(&p->flags, s);
	}
}

static unsigned
parse_roles(struct yfile *yf, yaml_node_t *n, const char *where)
{
	unsigned roles = 0;

	if (!yis_seq(yf, n, where))
		return 0;
	YSEQ_FOREACH(yf, n, it) {
		yaml_node_t	*r = ynode(yf, *it);
		const char	*s = ystr(yf, r, where);
		int		 i;

		if (s == NULL)
			continue;
		if ((i = lookup_name(s, role_names, NROLES)) < 0)
			bad_choice(yf, r, where, s, role_names, NROLES);
		else
			roles |= 1u << i;
	}
	return roles;
}

static void
parse_agencies(struct yfile *yf, struct protocol *p, yaml_node_t *n)
{
	static const char *const keys[] = { "id", "name", "subject", "spki_sha256",
	    "roles", NULL };
	size_t	 count, *lines;
	char	**ids;

	if (!yis_seq(yf, n, "agencies"))
		return;
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	p->agencies = xcalloc(count, sizeof(*p->agencies));
	lines = xcalloc(count, sizeof(*lines));
	ids = xcalloc(count, sizeof(*ids));
	YSEQ_FOREACH(yf, n, it) {
		yaml_node_t	*a = ynode(yf, *it), *roles, *fp;
		struct agency	*ag;
		const char	*s;

		if (!yis_map(yf, a, "agency"))
			continue;
		ykeys_check(yf, a, keys, "agency");
		if ((s = req_id(yf, a, "id", "agency")) == NULL)
			continue;
		check_unique(yf, a, "agency", s, lines, ids, p->nagencies);
		ag = &p->agencies[p->nagencies];
		ids[p->nagencies] = ag->id = xstrdup(s);
		lines[p->nagencies++] = yline(a);
		ag->name = xstrdup((s = opt_str(yf, a, "name")) ? s : ag->id);
		if ((s = opt_str(yf, a, "subject")) != NULL) {
			/* A peer's subject longer than this is never compared. */
			if (strlen(s) > PROTOCOL_SUBJECT_MAX)
				yerr(yf, yget(yf, a, "subject"), "agency \"%s\": subject "
				    "is longer than %d bytes", ag->id, PROTOCOL_SUBJECT_MAX);
			else if (has_ctrl(s, 0))
				yerr(yf, yget(yf, a, "subject"), "agency \"%s\": subject "
				    "contains control characters", ag->id);
			ag->subject = xstrdup(s);
		}
		if ((fp = yget(yf, a, "spki_sha256")) != NULL &&
		    (s = ystr(yf, fp, "spki_sha256")) != NULL) {
			if (hex_decode(s, ag->spki, sizeof(ag->spki)) == -1)
				yerr(yf, fp, "spki_sha256: expected 64 hex digits "
				    "(SHA-256 of the certificate's public key)");
			else
				ag->has_spki = 1;
		}
		if (ag->subject == NULL && fp == NULL)
			yerr(yf, a, "agency \"%s\": needs a certificate identity "
			    "(subject or spki_sha256)", ag->id);
		else if (fp == NULL)
			/* docs/protocol.md: why a pin is stronger. */
			ywarn(yf, a, "agency \"%s\" is identified by subject alone: "
			    "any key the CA certifies under that subject is this "
			    "agency; pin its key with spki_sha256", ag->id);
		if ((roles = yneed(yf, a, "roles", "agency")) != NULL)
			ag->roles = parse_roles(yf, roles, "roles");
		/* A certificate maps to exactly one agency. */
		for (size_t i = 0; i + 1 < p->nagencies; i++) {
			const struct agency *o = &p->agencies[i];

			if ((ag->subject && o->subject &&
			    strcmp(ag->subject, o->subject) == 0) ||
			    (ag->has_spki && o->has_spki &&
			    memcmp(ag->spki, o->spki, 32) == 0))
				yerr(yf, a, "agency \"%s\" has the same certificate "
				    "identity as agency \"%s\"", ag->id, o->id);
		}
	}
	free(lines);
	free(ids);
}

static void
parse_purposes(struct yfile *yf, struct protocol *p, yaml_node_t *n)
{
	static const char *const keys[] = { "id", "description", "lawful_basis", NULL };
	static const char *const lbkeys[] = { "article6", "article9", NULL };
	size_t	 count, *lines;
	char	**ids;

	if (!yis_seq(yf, n, "purposes"))
		return;
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	p->purposes = xcalloc(count, sizeof(*p->purposes));
	lines = xcalloc(count, sizeof(*lines));
	ids = xcalloc(count, sizeof(*ids));
	YSEQ_FOREACH(yf, n, it) {
		yaml_node_t	*pn = ynode(yf, *it), *lb;
		struct purpose	*pu;
		const char	*s, *a6 = NULL, *a9 = NULL;
		char		 buf[1024];

		if (!yis_map(yf, pn, "purpose"))
			continue;
		ykeys_check(yf, pn, keys, "purpose");
		if ((s = req_id(yf, pn, "id", "purpose")) == NULL)
			continue;
		check_unique(yf, pn, "purpose", s, lines, ids, p->npurposes);
		pu = &p->purposes[p->npurposes];
		ids[p->npurposes] = pu->id = xstrdup(s);
		lines[p->npurposes++] = yline(pn);
		pu->description = xstrdup((s = opt_str(yf, pn, "description")) ? s : "");
		/* D14: every purpose names its lawful basis. */
		if ((lb = yget(yf, pn, "lawful_basis")) == NULL) {
			yerr(yf, pn, "purpose \"%s\" has no lawful_basis (GDPR Article 6 "
			    "basis required, D14)", pu->id);
			continue;
		}
		if (!yis_map(yf, lb, "lawful_basis"))
			continue;
		ykeys_check(yf, lb, lbkeys, "lawful_basis");
		if ((a6 = opt_str(yf, lb, "article6")) == NULL)
			yerr(yf, lb, "purpose \"%s\": lawful_basis needs \"article6\"",
			    pu->id);
		a9 = opt_str(yf, lb, "article9");
		pu->article6 = xstrdup(a6 ? a6 : "");
		pu->article9 = a9 ? xstrdup(a9) : NULL;
		snprintf(buf, sizeof(buf), "%s%s%s", pu->article6, a9 ? "; " : "",
		    a9 ? a9 : "");
		pu->lawful_basis = xstrdup(buf);
	}
	free(lines);
	free(ids);
}

static void
parse_fields(struct yfile *yf, struct record_type *rt, yaml_node_t *n)
{
	static const char *const keys[] = { "name", "type", "label", "identifying",
	    "required", NULL };
	static const char *const labels[] = { "fact", "opinion" };
	size_t count;

	if (!yis_seq(yf, n, "fields"))
		return;
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	/* Parse them all anyway, so that rules naming them are not reported too. */
	if (count > PROTOCOL_MAX_FIELDS)
		yerr(yf, n, "record type \"%s\" has %zu fields; at most %d",
		    rt->id, count, PROTOCOL_MAX_FIELDS);
	rt->fields = xcalloc(count, sizeof(*rt->fields));
	YSEQ_FOREACH(yf, n, it) {
		yaml_node_t	*fn = ynode(yf, *it), *v;
		struct field_def *f;
		const char	*s;
		int		 i;

		if (!yis_map(yf, fn, "field"))
			continue;
		ykeys_check(yf, fn, keys, "field");
		if ((s = req_id(yf, fn, "name", "field")) == NULL)
			continue;
		if (record_type_field(rt, s, NULL) != NULL) {
			yerr(yf, fn, "duplicate field \"%s\" in record type \"%s\"",
			    s, rt->id);
			continue;
		}
		f = &rt->fields[rt->nfields++];
		f->name = xstrdup(s);
		if ((v = yneed(yf, fn, "type", "field")) != NULL &&
		    (s = ystr(yf, v, "type")) != NULL) {
			if ((i = lookup_name(s, type_names, NTYPES)) < 0)
				bad_choice(yf, v, "type", s, type_names, NTYPES);
			else
				f->type = (enum field_type)i;
		}
		/* D8: every field is declared fact or opinion. */
		if ((v = yneed(yf, fn, "label", "field")) != NULL &&
		    (s = ystr(yf, v, "label")) != NULL) {
			if ((i = lookup_name(s, labels, 2)) < 0)
				bad_choice(yf, v, "label", s, labels, 2);
			else
				f->opinion = i;
		}
		if ((v = yget(yf, fn, "identifying")) != NULL)
			ybool(yf, v, "identifying", &f->identifying);
		if ((v = yget(yf, fn, "required")) != NULL)
			ybool(yf, v, "required", &f->required);
	}
}

static void
parse_record_types(struct yfile *yf, struct protocol *p, yaml_node_t *n)
{
	static const char *const keys[] = { "id", "fields", NULL };
	size_t	 count, *lines;
	char	**ids;

	if (!yis_seq(yf, n, "record_types"))
		return;
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	p->record_types = xcalloc(count, sizeof(*p->record_types));
	lines = xcalloc(count, sizeof(*lines));
	ids = xcalloc(count, sizeof(*ids));
	YSEQ_FOREACH(yf, n, it) {
		yaml_node_t		*rn = ynode(yf, *it), *fields;
		struct record_type	*rt;
		const char		*s;

		if (!yis_map(yf, rn, "record type"))
			continue;
		ykeys_check(yf, rn, keys, "record type");
		if ((s = req_id(yf, rn, "id", "record type")) == NULL)
			continue;
		check_unique(yf, rn, "record type", s, lines, ids, p->nrecord_types);
		rt = &p->record_types[p->nrecord_types];
		ids[p->nrecord_types] = rt->id = xstrdup(s);
		lines[p->nrecord_types++] = yline(rn);
		if ((fields = yneed(yf, rn, "fields", "record type")) != NULL)
			parse_fields(yf, rt, fields);
	}
	free(lines);
	free(ids);
}

/* Which transforms make sense on which field types. */
static int
transform_fits(enum transform t, enum field_type ft)
{
	switch (t) {
	case TR_YEAR_ONLY:
	case TR_AGE_BAND:
		return ft == FT_DATE;
	case TR_POSTCODE_DISTRICT:
		return ft == FT_POSTCODE;
	case TR_INITIALS:
		return ft == FT_NAME;
	default:
		return 1;
	}
}

static int
rule_has_field(const struct rule *r, size_t idx)
{
	for (size_t i = 0; i < r->nfields; i++)
		if (r->fields[i].idx == idx)
			return 1;
	return 0;
}

static void
parse_rule_agencies(struct yfile *yf, struct protocol *p, struct rule *r,
    yaml_node_t *n)
{
	static const char *const keys[] = { "role", NULL };

	if (n->type == YAML_MAPPING_NODE) {
		yaml_node_t *rn;
		const char *s;
		int i;

		ykeys_check(yf, n, keys, "rule agencies");
		if ((rn = yneed(yf, n, "role", "rule agencies")) == NULL ||
		    (s = ystr(yf, rn, "role")) == NULL)
			return;
		if ((i = lookup_name(s, role_names, NROLES)) < 0)
			bad_choice(yf, rn, "role", s, role_names, NROLES);
		else
			r->agency_role = 1u << i;
		return;
	}
	if (!yis_seq(yf, n, "agencies (a list of agency ids, or {role: ROLE})"))
		return;
	YSEQ_FOREACH(yf, n, it) {
		yaml_node_t		*an = ynode(yf, *it);
		const char		*s = ystr(yf, an, "agencies");
		const struct agency	*ag;
		char			 hint[128];

		if (s == NULL)
			continue;
		if ((ag = protocol_agency(p, s)) == NULL) {
			yerr(yf, an, "rule \"%s\": unknown agency \"%s\"%s", r->id, s,
			    id_hint(hint, sizeof(hint), s, p->agencies,
			    sizeof(*p->agencies), p->nagencies));
			continue;
		}
		if (!(ag->roles & ROLE_REQUESTER))
			yerr(yf, an, "rule \"%s\": agency \"%s\" does not have the "
			    "requester role", r->id, s);
		if (strlist_has(&r->agencies, s))
			yerr(yf, an, "rule \"%s\": agency \"%s\" listed twice", r->id, s);
		else
			strlist_add(&r->agencies, s);
	}
	if (n->data.sequence.items.top == n->data.sequence.items.start)
		yerr(yf, n, "rule \"%s\" applies to no agency", r->id);
}

static const struct field_def *
rule_field_lookup(struct yfile *yf, const struct rule *r, yaml_node_t *fn,
    size_t *idx)
{
	const char		*s = ystr(yf, fn, "field");
	const struct field_def	*f;
	char			 hint[128];

	if (s == NULL)
		return NULL;
	if ((f = record_type_field(r->record_type, s, idx)) == NULL)
		yerr(yf, fn, "rule \"%s\": record type \"%s\" has no field \"%s\"%s",
		    r->id, r->record_type->id, s, id_hint(hint, sizeof(hint), s,
		    r->record_type->fields, sizeof(*r->record_type->fields),
		    r->record_type->nfields));
	return f;
}

static void
parse_rule_body(struct yfile *yf, struct protocol *p, struct rule *r,
    yaml_node_t *rn)
{
	yaml_node_t	*n;
	const char	*s;

	if ((n = yneed(yf, rn, "fields", "rule")) != NULL && yis_seq(yf, n, "fields")) {
		r->fields = xcalloc(r->record_type->nfields, sizeof(*r->fields));
		YSEQ_FOREACH(yf, n, it) {
			yaml_node_t	*fn = ynode(yf, *it);
			size_t		 idx;

			if (rule_field_lookup(yf, r, fn, &idx) == NULL)
				continue;
			if (rule_has_field(r, idx)) {
				yerr(yf, fn, "rule \"%s\": field \"%s\" listed twice",
				    r->id, r->record_type->fields[idx].name);
				continue;
			}
			r->fields[r->nfields].idx = idx;
			r->fields[r->nfields++].transform = TR_NONE;
		}
		if (r->nfields == 0 && r->record_type->nfields > 0 &&
		    n->data.sequence.items.top == n->data.sequence.items.start)
			yerr(yf, n, "rule \"%s\" releases no fields", r->id);
	}
	if ((n = yget(yf, rn, "transforms")) != NULL && yis_map(yf, n, "transforms")) {
		YMAP_FOREACH(yf, n, pair) {
			yaml_node_t		*fn = ynode(yf, pair->key);
			yaml_node_t		*tn = ynode(yf, pair->value);
			const struct field_def	*f;
			size_t			 idx;
			int			 t;

			if (dup_key(yf, n, pair, "transforms") ||
			    (f = rule_field_lookup(yf, r, fn, &idx)) == NULL)
				continue;
			if ((s = ystr(yf, tn, "transform")) == NULL)
				continue;
			if ((t = lookup_name(s, transform_names + 1, 5)) < 0) {
				bad_choice(yf, tn, "transform", s, transform_names + 1, 5);
				continue;
			}
			t += 1;
			if (!transform_fits((enum transform)t, f->type)) {
				yerr(yf, tn, "rule \"%s\": transform %s does not apply to "
				    "field \"%s\" of type %s", r->id, s, f->name,
				    type_names[f->type]);
				continue;
			}
			if (!rule_has_field(r, idx)) {
				yerr(yf, fn, "rule \"%s\": transform for field \"%s\" "
				    "which the rule does not release", r->id, f->name);
				continue;
			}
			for (size_t i = 0; i < r->nfields; i++)
				if (r->fields[i].idx == idx)
					r->fields[i].transform = (enum transform)t;
		}
	}
	if ((n = yneed(yf, rn, "consent", "rule")) != NULL &&
	    (s = ystr(yf, n, "consent")) != NULL) {
		static const char *const cv[] = { "not_required", "required" };
		int i = lookup_name(s, cv, 2);

		if (i < 0)
			bad_choice(yf, n, "consent", s, cv, 2);
		else
			r->consent_required = i;
	}
	if ((n = yget(yf, rn, "locate")) != NULL) {
		int locatable = 1;

		if (ybool(yf, n, "locate", &locatable) == 0)
			r->not_locatable = !locatable;
	}
	if ((n = yget(yf, rn, "overrides")) != NULL && yis_seq(yf, n, "overrides")) {
		YSEQ_FOREACH(yf, n, it) {
			yaml_node_t		*on = ynode(yf, *it);
			enum override_code	 c;

			if ((s = ystr(yf, on, "overrides")) == NULL)
				continue;
			if (override_parse(s, &c) == -1)
				bad_choice(yf, on, "override code", s, override_names,
				    OV_COUNT);
			else
				r->overrides |= 1u << c;
		}
	}
	if ((n = yget(yf, rn, "withhold_when_flagged")) != NULL &&
	    yis_map(yf, n, "withhold_when_flagged")) {
		size_t count = (size_t)(n->data.mapping.pairs.top -
		    n->data.mapping.pairs.start);

		r->withhold = xcalloc(count, sizeof(*r->withhold));
		YMAP_FOREACH(yf, n, pair) {
			yaml_node_t		*kn = ynode(yf, pair->key);
			yaml_node_t		*ln = ynode(yf, pair->value);
			struct flag_withhold	*w;

			if (dup_key(yf, n, pair, "withhold_when_flagged") ||
			    (s = ystr(yf, kn, "flag")) == NULL)
				continue;
			if (!strlist_has(&p->flags, s)) {
				const char *hint = did_you_mean(s,
				    (const char *const *)p->flags.v, p->flags.n);

				if (hint)
					yerr(yf, kn, "rule \"%s\": undeclared flag \"%s\"; "
					    "did you mean \"%s\"? (declare flags under "
					    "\"flags\")", r->id, s, hint);
				else
					yerr(yf, kn, "rule \"%s\": undeclared flag \"%s\" "
					    "(declare flags under \"flags\")", r->id, s);
				continue;
			}
			if (!yis_seq(yf, ln, "withhold_when_flagged"))
				continue;
			w = &r->withhold[r->nwithhold++];
			w->flag = xstrdup(s);
			w->fields = xcalloc(r->record_type->nfields, sizeof(size_t));
			YSEQ_FOREACH(yf, ln, it) {
				yaml_node_t	*wn = ynode(yf, *it);
				size_t		 idx;

				if (rule_field_lookup(yf, r, wn, &idx) == NULL)
					continue;
				/* As with transforms: only a released field. */
				if (r->fields != NULL && !rule_has_field(r, idx)) {
					yerr(yf, wn, "rule \"%s\": withholds field \"%s\" "
					    "which the rule does not release", r->id,
					    r->record_type->fields[idx].name);
					continue;
				}
				if (w->nfields < r->record_type->nfields)
					w->fields[w->nfields++] = idx;
			}
		}
	}
}

static int
rules_overlap(const struct protocol *p, const struct rule *a, const struct rule *b,
    const char **agency)
{
	if (a->purpose != b->purpose || a->record_type != b->record_type)
		return 0;
	for (size_t i = 0; i < p->nagencies; i++)
		if (rule_applies_to(a, &p->agencies[i]) &&
		    rule_applies_to(b, &p->agencies[i])) {
			*agency = p->agencies[i].id;
			return 1;
		}
	return 0;
}

/*
 * An agency that no rule names but that a {role: ROLE} rule reaches gets
 * that access silently, e.g. a newly onboarded school (issue 22): say so,
 * for each such agency and rule, at the rule.
 */
static void
warn_role_rules(struct yfile *yf, const struct protocol *p, yaml_node_t **nodes)
{
	for (size_t i = 0; i < p->nrules; i++) {
		const struct rule *r = &p->rules[i];

		if (r->agency_role == 0 || nodes[i] == NULL || r->purpose == NULL ||
		    r->record_type == NULL)
			continue;
		for (size_t j = 0; j < p->nagencies; j++) {
			const struct agency	*a = &p->agencies[j];
			int			 named = 0;

			if (!rule_applies_to(r, a))
				continue;
			for (size_t k = 0; k < p->nrules && !named; k++)
				named = strlist_has(&p->rules[k].agencies, a->id);
			if (named)
				continue;
			for (int b = 0; b < NROLES; b++)
				if (r->agency_role == 1u << b)
					ywarn(yf, nodes[i], "agency \"%s\" is named in no "
					    "rule, yet rule \"%s\" ({role: %s}) lets it ask "
					    "for %s / %s; list agencies in the rule if that "
					    "is not meant", a->id, r->id, role_names[b],
					    r->purpose->id, r->record_type->id);
		}
	}
}

static void
parse_rules(struct yfile *yf, struct protocol *p, yaml_node_t *n)
{
	static const char *const keys[] = { "id", "agencies", "purpose",
	    "record_type", "fields", "transforms", "consent", "locate", "overrides",
	    "withhold_when_flagged", NULL };
	size_t		  count, *lines;
	char		**ids;
	yaml_node_t	**nodes;

	if (!yis_seq(yf, n, "rules"))
		return;
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	p->rules = xcalloc(count, sizeof(*p->rules));
	nodes = xcalloc(count, sizeof(*nodes));
	lines = xcalloc(count, sizeof(*lines));
	ids = xcalloc(count, sizeof(*ids));
	YSEQ_FOREACH(yf, n, it) {
		yaml_node_t	*rn = ynode(yf, *it), *v;
		struct rule	*r;
		const char	*s;
		char		 hint[128];
		int		 ok = 1;

		if (!yis_map(yf, rn, "rule"))
			continue;
		ykeys_check(yf, rn, keys, "rule");
		if ((s = req_id(yf, rn, "id", "rule")) == NULL)
			continue;
		check_unique(yf, rn, "rule", s, lines, ids, p->nrules);
		r = &p->rules[p->nrules];
		nodes[p->nrules] = rn;
		ids[p->nrules] = r->id = xstrdup(s);
		r->line = lines[p->nrules++] = yline(rn);
		if ((v = yneed(yf, rn, "agencies", "rule")) != NULL)
			parse_rule_agencies(yf, p, r, v);
		if ((s = req_str(yf, rn, "purpose", "rule")) != NULL &&
		    (r->purpose = protocol_purpose(p, s)) == NULL) {
			yerr(yf, yget(yf, rn, "purpose"), "rule \"%s\": unknown purpose "
			    "\"%s\"%s", r->id, s, id_hint(hint, sizeof(hint), s,
			    p->purposes, sizeof(*p->purposes), p->npurposes));
			ok = 0;
		}
		if ((s = req_str(yf, rn, "record_type", "rule")) != NULL &&
		    (r->record_type = protocol_record_type(p, s)) == NULL) {
			yerr(yf, yget(yf, rn, "record_type"), "rule \"%s\": unknown "
			    "record type \"%s\"%s", r->id, s, id_hint(hint, sizeof(hint),
			    s, p->record_types, sizeof(*p->record_types),
			    p->nrecord_types));
			ok = 0;
		}
		if (!ok || r->purpose == NULL || r->record_type == NULL)
			continue;
		parse_rule_body(yf, p, r, rn);
		/*
		 * Two rules for the same (agency, purpose, record type) would make
		 * the answer depend on their order: refuse them (D1).
		 */
		for (size_t i = 0; i + 1 < p->nrules; i++) {
			const char *ag;

			if (rules_overlap(p, &p->rules[i], r, &ag))
				yerr(yf, rn, "rule \"%s\" overlaps rule \"%s\" (line %zu) "
				    "for agency \"%s\", purpose \"%s\", record type \"%s\"",
				    r->id, p->rules[i].id, p->rules[i].line, ag,
				    r->purpose->id, r->record_type->id);
		}
	}
	warn_role_rules(yf, p, nodes);
	free(nodes);
	free(lines);
	free(ids);
}

static void
sha256_hex(const unsigned char *buf, size_t len, char out[65])
{
	unsigned char	 md[32];
	unsigned int	 mdlen = 0;

	EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, 32, out);
}

struct protocol *
protocol_load_buffer(const char *name, const unsigned char *buf, size_t len,
    int64_t now, struct diag *d)
{
	static const char *const keys[] = { "protocol", "flags", "agencies",
	    "purposes", "record_types", "rules", NULL };
	struct yfile	 yf;
	struct protocol	*p;
	yaml_node_t	*root, *n;
	size_t		 before = d->nerrors;

	if (yfile_load_buffer(&yf, name, buf, len, d) == -1) {
		yfile_free(&yf);
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	p->refs = 1;
	p->path = xstrdup(name);
	sha256_hex(buf, len, p->sha256);
	root = yfile_root(&yf);
	if (yis_map(&yf, root, "protocol file")) {
		ykeys_check(&yf, root, keys, "protocol file");
		if ((n = yneed(&yf, root, "protocol", "protocol file")) != NULL)
			parse_header(&yf, p, n, now);
		if ((n = yget(&yf, root, "flags")) != NULL)
			parse_flags(&yf, p, n);
		if ((n = yneed(&yf, root, "agencies", "protocol file")) != NULL)
			parse_agencies(&yf, p, n);
		if ((n = yneed(&yf, root, "purposes", "protocol file")) != NULL)
			parse_purposes(&yf, p, n);
		if ((n = yneed(&yf, root, "record_types", "protocol file")) != NULL)
			parse_record_types(&yf, p, n);
		if ((n = yneed(&yf, root, "rules", "protocol file")) != NULL)
			parse_rules(&yf, p, n);
	}
	yfile_free(&yf);
	if (d->nerrors != before) {
		protocol_unref(p);
		return NULL;
	}
	return p;
}

struct protocol *
protocol_load(const char *path, int64_t now, struct diag *d)
{
	struct protocol	*p;
	char		*buf;
	size_t		 len;

	if ((buf = file_read(path, 16 * 1024 * 1024, &len)) == NULL) {
		diag_add(d, path, 0, 0, "%s", errno == EFBIG ? "larger than 16 MiB" :
		    errno == EINVAL ? "not a regular file" : strerror(errno));
		return NULL;
	}
	p = protocol_load_buffer(path, (unsigned char *)buf, len, now, d);
	free(buf);
	return p;
}

struct protocol *
protocol_ref(struct protocol *p)
{
	__atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
	return p;
}

void
protocol_unref(struct protocol *p)
{
	if (p == NULL || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (size_t i = 0; i < p->nagencies; i++) {
		free(p->agencies[i].id);
		free(p->agencies[i].name);
		free(p->agencies[i].subject);
	}
	for (size_t i = 0; i < p->npurposes; i++) {
		free(p->purposes[i].id);
		free(p->purposes[i].description);
		free(p->purposes[i].article6);
		free(p->purposes[i].article9);
		free(p->purposes[i].lawful_basis);
	}
	for (size_t i = 0; i < p->nrecord_types; i++) {
		for (size_t j = 0; j < p->record_types[i].nfields; j++)
			free(p->record_types[i].fields[j].name);
		free(p->record_types[i].fields);
		free(p->record_types[i].id);
	}
	for (size_t i = 0; i < p->nrules; i++) {
		struct rule *r = &p->rules[i];

		free(r->id);
		strlist_free(&r->agencies);
		free(r->fields);
		for (size_t j = 0; j < r->nwithhold; j++) {
			free(r->withhold[j].flag);
			free(r->withhold[j].fields);
		}
		free(r->withhold);
	}
	free(p->agencies);
	free(p->purposes);
	free(p->record_types);
	free(p->rules);
	strlist_free(&p->flags);
	free(p->id);
	free(p->version);
	free(p->owner);
	free(p->path);
	free(p);
}

const struct agency *
protocol_agency(const struct protocol *p, const char *id)
{
	for (size_t i = 0; i < p->nagencies; i++)
		if (strcmp(p->agencies[i].id, id) == 0)
			return &p->agencies[i];
	return NULL;
}

/*
 * The fingerprint wins over the subject when both could match. An agency
 * with a pin (spki_sha256) is found by its key only: its subject does not
 * admit another key (issue 14: a new key under a pinned agency's subject
 * was mapped to it). The subject matches only agencies without a pin.
 */
const struct agency *
protocol_agency_by_cert(const struct protocol *p, const unsigned char spki[32],
    const char *subject)
{
	for (size_t i = 0; i < p->nagencies; i++)
		if (p->agencies[i].has_spki && memcmp(p->agencies[i].spki, spki, 32) == 0)
			return &p->agencies[i];
	if (subject == NULL || *subject == '\0')
		return NULL;
	for (size_t i = 0; i < p->nagencies; i++)
		if (!p->agencies[i].has_spki && p->agencies[i].subject != NULL &&
		    strcmp(p->agencies[i].subject, subject) == 0)
			return &p->agencies[i];
	return NULL;
}

const struct purpose *
protocol_purpose(const struct protocol *p, const char *id)
{
	for (size_t i = 0; i < p->npurposes; i++)
		if (strcmp(p->purposes[i].id, id) == 0)
			return &p->purposes[i];
	return NULL;
}

const struct record_type *
protocol_record_type(const struct protocol *p, const char *id)
{
	for (size_t i = 0; i < p->nrecord_types; i++)
		if (strcmp(p->record_types[i].id, id) == 0)
			return &p->record_types[i];
	return NULL;
}

const struct field_def *
record_type_field(const struct record_type *rt, const char *name, size_t *idx)
{
	for (size_t i = 0; i < rt->nfields; i++)
		if (strcmp(rt->fields[i].name, name) == 0) {
			if (idx != NULL)
				*idx = i;
			return &rt->fields[i];
		}
	return NULL;
}

int
rule_applies_to(const struct rule *r, const struct agency *a)
{
	if (r->agency_role != 0 && (a->roles & r->agency_role))
		return 1;
	return strlist_has(&r->agencies, a->id);
}

const struct rule *
protocol_find_rule(const struct protocol *p, const struct agency *a,
    const struct purpose *pu, const struct record_type *rt)
{
	for (size_t i = 0; i < p->nrules; i++) {
		const struct rule *r = &p->rules[i];

		if (r->purpose == pu && r->record_type == rt && rule_applies_to(r, a))
			return r;
	}
	return NULL;
}

/* In force through the whole review-by day (UTC), like a consent's expires. */
int
protocol_in_force(const struct protocol *p, int64_t now)
{
	return !date_day_over(p->review_by, now);
}

/* Field values, by type: what holders may store (D9: data fit to share). */
static int
has_ctrl(const char *v, int newlines_ok)
{
	for (const unsigned char *s = (const unsigned char *)v; *s != '\0'; s++)
		if ((*s < 0x20 && !(newlines_ok && (*s == '\n' || *s == '\t'))) ||
		    *s == 0x7f)
			return 1;
	return 0;
}

/* A UK postcode: outward code (2-4), optional space, inward code (digit, 2 letters). */
int
postcode_valid(const char *v)
{
	char	 c[16];
	size_t	 n = 0, out;

	for (const char *s = v; *s != '\0'; s++) {
		if (*s == ' ')
			continue;
		if (!isalnum((unsigned char)*s) || n == sizeof(c) - 1)
			return 0;
		c[n++] = (char)toupper((unsigned char)*s);
	}
	if (n < 5 || n > 7)
		return 0;
	out = n - 3;
	if (!isalpha((unsigned char)c[0]) || !isdigit((unsigned char)c[out]) ||
	    !isalpha((unsigned char)c[out + 1]) || !isalpha((unsigned char)c[out + 2]))
		return 0;
	for (size_t i = 1; i < out; i++)
		if (!isdigit((unsigned char)c[i]) && !isalpha((unsigned char)c[i]))
			return 0;
	return isdigit((unsigned char)c[1]) || isdigit((unsigned char)c[2]);
}

const char *
field_value_problem(enum field_type t, const char *v)
{
	size_t	 len = strlen(v), digits = 0;
	int64_t	 when;

	if (len == 0)
		return "must not be empty";
	if (len > FIELD_MAX_VALUE)
		return "is too long";
	switch (t) {
	case FT_TEXT:
	case FT_ADDRESS:
		return has_ctrl(v, 1) ? "contains control characters" : NULL;
	case FT_STRING:
		return has_ctrl(v, 0) ? "contains control characters" : NULL;
	case FT_NAME:
		for (const char *s = v; *s != '\0'; s++)
			if (isdigit((unsigned char)*s) || strchr("@<>{}[]|\\/;:=_", *s) ||
			    (unsigned char)*s < 0x20)
				return "is not a name (letters, spaces, hyphens, apostrophes)";
		return len > 200 ? "is too long for a name" : NULL;
	case FT_DATE:
		return date_parse(v, &when) == -1 ? "is not a date (YYYY-MM-DD)" : NULL;
	case FT_POSTCODE:
		return postcode_valid(v) ? NULL : "is not a UK postcode";
	case FT_PHONE:
		for (const char *s = v; *s != '\0'; s++) {
			if (isdigit((unsigned char)*s))
				digits++;
			else if (strchr(" +-()", *s) == NULL)
				return "is not a phone number";
		}
		return digits < 7 || digits > 15 ? "is not a phone number (7 to 15 digits)" :
		    NULL;
	case FT_INTEGER:
		if (*v == '-')
			v++;
		if (*v == '\0' || len > 19)
			return "is not an integer";
		for (; *v != '\0'; v++)
			if (!isdigit((unsigned char)*v))
				return "is not an integer";
		return NULL;
	case FT_BOOLEAN:
		/* One spelling each, so a released value reads the same everywhere. */
		return strcmp(v, "true") == 0 || strcmp(v, "false") == 0 ? NULL :
		    "is not a boolean (true or false)";
	}
	return "has an unknown type";
}
