/*
 * Protocol loader, part 1 (D1, D2, D5, D8, D11-D14): the YAML helpers shared
 * by the loader, the header, flags, agencies, purposes and record types.
 * protocol.c drives the load; protocol_rules.c parses the rules.
 */
#include <openssl/evp.h>

#include <errno.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "protocol.h"
#include "protocol_int.h"
#include "yamlutil.h"

int
proto_lookup_name(const char *s, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

/* Reports an unknown enum value with the choices and a did-you-mean. */
void
proto_bad_choice(struct yfile *yf, yaml_node_t *n, const char *what, const char *got,
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
const char *
proto_req_str(struct yfile *yf, yaml_node_t *map, const char *key, const char *where)
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

/* proto_req_str() for an id: present, non-empty and a valid id, or NULL. */
const char *
proto_req_id(struct yfile *yf, yaml_node_t *map, const char *key, const char *where)
{
	const char	*s = proto_req_str(yf, map, key, where);
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
void
proto_check_unique(struct yfile *yf, yaml_node_t *n, const char *kind, const char *id,
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
const char *
proto_id_hint(char *buf, size_t len, const char *s, const void *base, size_t size,
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
int
proto_dup_key(struct yfile *yf, yaml_node_t *map, yaml_node_pair_t *pair,
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

void
proto_header(struct yfile *yf, struct protocol *p, yaml_node_t *n, int64_t now)
{
	static const char *const keys[] = { "id", "version", "owner", "review_by", NULL };
	const char	*s;
	yaml_node_t	*rb;

	if (!yis_map(yf, n, "protocol"))
		return;
	ykeys_check(yf, n, keys, "protocol");
	if ((s = proto_req_id(yf, n, "id", "protocol")) != NULL)
		p->id = xstrdup(s);
	if ((s = proto_req_id(yf, n, "version", "protocol")) != NULL)
		p->version = xstrdup(s);
	if ((s = proto_req_str(yf, n, "owner", "protocol")) != NULL)
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

void
proto_flags(struct yfile *yf, struct protocol *p, yaml_node_t *n)
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
		if ((i = proto_lookup_name(s, proto_role_names, NROLES)) < 0)
			proto_bad_choice(yf, r, where, s, proto_role_names, NROLES);
		else
			roles |= 1u << i;
	}
	return roles;
}

void
proto_agencies(struct yfile *yf, struct protocol *p, yaml_node_t *n)
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
		if ((s = proto_req_id(yf, a, "id", "agency")) == NULL)
			continue;
		proto_check_unique(yf, a, "agency", s, lines, ids, p->nagencies);
		ag = &p->agencies[p->nagencies];
		ids[p->nagencies] = ag->id = xstrdup(s);
		lines[p->nagencies++] = yline(a);
		ag->name = xstrdup((s = opt_str(yf, a, "name")) ? s : ag->id);
		if ((s = opt_str(yf, a, "subject")) != NULL) {
			/* A peer's subject longer than this is never compared. */
			if (strlen(s) > PROTOCOL_SUBJECT_MAX)
				yerr(yf, yget(yf, a, "subject"), "agency \"%s\": subject "
				    "is longer than %d bytes", ag->id, PROTOCOL_SUBJECT_MAX);
			else if (proto_has_ctrl(s, 0))
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

void
proto_purposes(struct yfile *yf, struct protocol *p, yaml_node_t *n)
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
		if ((s = proto_req_id(yf, pn, "id", "purpose")) == NULL)
			continue;
		proto_check_unique(yf, pn, "purpose", s, lines, ids, p->npurposes);
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
		if ((s = proto_req_id(yf, fn, "name", "field")) == NULL)
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
			if ((i = proto_lookup_name(s, proto_type_names, NTYPES)) < 0)
				proto_bad_choice(yf, v, "type", s, proto_type_names, NTYPES);
			else
				f->type = (enum field_type)i;
		}
		/* D8: every field is declared fact or opinion. */
		if ((v = yneed(yf, fn, "label", "field")) != NULL &&
		    (s = ystr(yf, v, "label")) != NULL) {
			if ((i = proto_lookup_name(s, labels, 2)) < 0)
				proto_bad_choice(yf, v, "label", s, labels, 2);
			else
				f->opinion = i;
		}
		if ((v = yget(yf, fn, "identifying")) != NULL)
			ybool(yf, v, "identifying", &f->identifying);
		if ((v = yget(yf, fn, "required")) != NULL)
			ybool(yf, v, "required", &f->required);
	}
}

void
proto_record_types(struct yfile *yf, struct protocol *p, yaml_node_t *n)
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
		if ((s = proto_req_id(yf, rn, "id", "record type")) == NULL)
			continue;
		proto_check_unique(yf, rn, "record type", s, lines, ids, p->nrecord_types);
		rt = &p->record_types[p->nrecord_types];
		ids[p->nrecord_types] = rt->id = xstrdup(s);
		lines[p->nrecord_types++] = yline(rn);
		if ((fields = yneed(yf, rn, "fields", "record type")) != NULL)
			parse_fields(yf, rt, fields);
	}
	free(lines);
	free(ids);
}
