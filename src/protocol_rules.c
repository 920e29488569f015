/*
 * Protocol loader, part 2 (D5, D8, D11, D12, D14): the rules, each checked
 * against the agencies, purposes, record types and flags parsed before it.
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
		if ((i = proto_lookup_name(s, proto_role_names, NROLES)) < 0)
			proto_bad_choice(yf, rn, "role", s, proto_role_names, NROLES);
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
			    proto_id_hint(hint, sizeof(hint), s, p->agencies,
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
		    r->id, r->record_type->id, s, proto_id_hint(hint, sizeof(hint), s,
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

			if (proto_dup_key(yf, n, pair, "transforms") ||
			    (f = rule_field_lookup(yf, r, fn, &idx)) == NULL)
				continue;
			if ((s = ystr(yf, tn, "transform")) == NULL)
				continue;
			if ((t = proto_lookup_name(s, proto_transform_names + 1, 5)) < 0) {
				proto_bad_choice(yf, tn, "transform", s,
				    proto_transform_names + 1, 5);
				continue;
			}
			t += 1;
			if (!transform_fits((enum transform)t, f->type)) {
				yerr(yf, tn, "rule \"%s\": transform %s does not apply to "
				    "field \"%s\" of type %s", r->id, s, f->name,
				    proto_type_names[f->type]);
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
		int i = proto_lookup_name(s, cv, 2);

		if (i < 0)
			proto_bad_choice(yf, n, "consent", s, cv, 2);
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
				proto_bad_choice(yf, on, "override code", s, proto_override_names,
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

			if (proto_dup_key(yf, n, pair, "withhold_when_flagged") ||
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
					    "is not meant", a->id, r->id, proto_role_names[b],
					    r->purpose->id, r->record_type->id);
		}
	}
}

void
proto_rules(struct yfile *yf, struct protocol *p, yaml_node_t *n)
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
		if ((s = proto_req_id(yf, rn, "id", "rule")) == NULL)
			continue;
		proto_check_unique(yf, rn, "rule", s, lines, ids, p->nrules);
		r = &p->rules[p->nrules];
		nodes[p->nrules] = rn;
		ids[p->nrules] = r->id = xstrdup(s);
		r->line = lines[p->nrules++] = yline(rn);
		if ((v = yneed(yf, rn, "agencies", "rule")) != NULL)
			parse_rule_agencies(yf, p, r, v);
		if ((s = proto_req_str(yf, rn, "purpose", "rule")) != NULL &&
		    (r->purpose = protocol_purpose(p, s)) == NULL) {
			yerr(yf, yget(yf, rn, "purpose"), "rule \"%s\": unknown purpose "
			    "\"%s\"%s", r->id, s, proto_id_hint(hint, sizeof(hint), s,
			    p->purposes, sizeof(*p->purposes), p->npurposes));
			ok = 0;
		}
		if ((s = proto_req_str(yf, rn, "record_type", "rule")) != NULL &&
		    (r->record_type = protocol_record_type(p, s)) == NULL) {
			yerr(yf, yget(yf, rn, "record_type"), "rule \"%s\": unknown "
			    "record type \"%s\"%s", r->id, s, proto_id_hint(hint, sizeof(hint),
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
