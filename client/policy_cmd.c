/*
 * safeshare policy check|explain|matrix: the admin's offline tools. They run
 * the same parser and the same policy_decide() as the daemon.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "policy.h"
#include "protocol.h"
#include "yamlutil.h"

static struct protocol *
load(const char *path, int64_t now)
{
	struct diag	 d = { 0 };
	struct protocol	*p = protocol_load(path, now, &d);

	diag_print(&d, stderr);
	diag_free(&d);
	return p;
}

static int
policy_check(int argc, char *argv[])
{
	struct protocol	*p;
	char		 roles[64];

	int		 help = argc == 2 && strcmp(argv[1], "--help") == 0;

	/* An unknown option is not a file name: the usage, exit 2. */
	if (argc != 2 || help || argv[1][0] == '-') {
		fprintf(help ? stdout : stderr,
		    "usage: safeshare policy check FILE\n"
		    "Validates a sharing protocol offline; prints a summary, or every\n"
		    "problem as file:line:col: message and exits 1. Warns when a\n"
		    "{role: ...} rule reaches an agency that no rule names.\n");
		return help ? SS_EXIT_OK : SS_EXIT_USAGE;
	}
	if ((p = load(argv[1], time(NULL))) == NULL)
		return SS_EXIT_LOCAL;
	printf("%s: protocol %s version %s, owner %s, review by %s\n", T(argv[1]),
	    p->id, p->version, T(p->owner), p->review_by_str);
	printf("agencies (%zu):\n", p->nagencies);
	for (size_t i = 0; i < p->nagencies; i++)
		printf("  %-28s %s\n", p->agencies[i].id,
		    roles_string(p->agencies[i].roles, roles, sizeof(roles)));
	printf("purposes (%zu):\n", p->npurposes);
	for (size_t i = 0; i < p->npurposes; i++)
		printf("  %-28s %s\n", p->purposes[i].id, T(p->purposes[i].lawful_basis));
	printf("record types (%zu):\n", p->nrecord_types);
	for (size_t i = 0; i < p->nrecord_types; i++)
		printf("  %-28s %zu fields\n", p->record_types[i].id,
		    p->record_types[i].nfields);
	printf("rules (%zu):\n", p->nrules);
	for (size_t i = 0; i < p->nrules; i++)
		printf("  %-28s %s / %s, %zu fields, consent %s\n", p->rules[i].id,
		    p->rules[i].purpose->id, p->rules[i].record_type->id,
		    p->rules[i].nfields, p->rules[i].consent_required ? "required" :
		    "not required");
	protocol_unref(p);
	return SS_EXIT_OK;
}

static const char *const step_names[] = {
	"", "who is asking", "protocol in force", "matching rule", "fields",
	"consent", "risk flags", "transforms", "consultation"
};

static void
explain_text(const struct protocol *p, const struct policy_request *rq,
    const struct decision *d, const char *agency)
{
	int last = d->kind == DECISION_DENY ? d->step : 8;

	for (int s = 1; s <= last; s++) {
		int failed = d->kind == DECISION_DENY && s == d->step;

		printf("%d. %-18s ", s, step_names[s]);
		if (failed) {
			printf("DENY %s: %s\n", d->reason, T(d->detail));
			break;
		}
		switch (s) {
		case 1: printf("agency %s may request\n", agency); break;
		case 2: printf("%s %s in force through %s\n", p->id, p->version,
		    p->review_by_str); break;
		case 3: printf("rule %s%s\n", d->rule->id, d->rule->not_locatable ?
		    " (locate: false, never named by locate)" : ""); break;
		case 4: {
			int n = 0;

			printf("wanted:");
			for (size_t i = 0; i < d->nfields; i++) {
				const char *r = d->fields[i].reason;

				if (r == NULL || r == d->reason || strncmp(r, "flag:", 5) == 0 ||
				    strcmp(r, "consultation") == 0) {
					printf(" %s", d->fields[i].def->name);
					n++;
				}
			}
			printf("%s\n", n ? "" : " (none)");
			break;
		}
		case 5: if (rq->consult) {
			printf("consent %s: a consultation needs none (D11)\n",
			    d->consent);
			break;
		}
		printf("consent %s, rule %s%s%s\n", d->consent,
		    d->rule->consent_required ? "requires consent" : "does not require consent",
		    d->override_used ? "; override " : "",
		    d->override_used ? override_name(d->override) : ""); break;
		case 6: case 8: {
			const char *tag = s == 6 ? "flag:" : "consultation";
			int n = 0;

			for (size_t i = 0; i < d->nfields; i++) {
				const char *r = d->fields[i].reason;

				if (r != NULL && strncmp(r, tag, strlen(tag)) == 0) {
					printf("%s%s", n ? ", " : "withheld: ",
					    d->fields[i].def->name);
					n++;
				}
			}
			printf("%s\n", n ? "" : s == 8 && !rq->consult ?
			    "not a consultation" : "nothing withheld");
			break;
		}
		case 7: {
			int n = 0;

			for (size_t i = 0; i < d->nfields; i++)
				if (d->fields[i].released && d->fields[i].transform) {
					printf("%s%s -> %s", n ? ", " : "",
					    d->fields[i].def->name,
					    transform_name(d->fields[i].transform));
					n++;
				}
			printf("%s\n", n ? "" : "none");
			break;
		}
		}
	}
	printf("\ndecision: %s (%s)\n", decision_name(d->kind), d->reason);
	/* Like the daemon's reply: fields only once a rule matched (D2). */
	for (size_t i = 0; d->rule != NULL && i < d->nfields; i++) {
		const struct decided_field *f = &d->fields[i];

		if (f->released)
			printf("  release  %-22s [%s]%s%s\n", f->def->name,
			    f->def->opinion ? "opinion" : "fact",
			    f->transform ? " as " : "",
			    f->transform ? transform_name(f->transform) : "");
		else
			printf("  withhold %-22s %s\n", f->def->name, f->reason);
	}
	for (size_t i = 0; d->rule != NULL && i < d->nunknown &&
	    i < POLICY_MAX_UNKNOWN; i++)
		printf("  withhold %-22.64s unknown_field\n", d->unknown[i]);
	if (d->review_required)
		printf("%s: flagged for senior review (D15)\n", d->override_used ?
		    "an override" : "a denied request that invoked an override");
	if (d->inform_subject)
		printf("the subject would be informed (D6)\n");
}

static void
explain_json(const struct decision *d)
{
	json_t	*o = json_object(), *fields = json_array();

	jsonw_set(o, "decision", jsonw_str(decision_name(d->kind)));
	jsonw_set(o, "reason", jsonw_str(d->reason));
	jsonw_set(o, "step", json_integer(d->step));
	jsonw_set(o, "detail", jsonw_str(d->detail));
	jsonw_set(o, "rule", jsonw_str(d->rule ? d->rule->id : ""));
	/* D19: whether locate may name what the rule allows (none: no rule). */
	jsonw_set(o, "locatable", json_boolean(d->rule && !d->rule->not_locatable));
	jsonw_set(o, "consent", jsonw_str(d->consent));
	jsonw_set(o, "override", jsonw_str(d->override_used ?
	    override_name(d->override) : ""));
	jsonw_set(o, "review_required", json_boolean(d->review_required));
	jsonw_set(o, "inform_subject", json_boolean(d->inform_subject));
	for (size_t i = 0; d->rule != NULL && i < d->nfields; i++) {
		const struct decided_field *f = &d->fields[i];

		json_array_append_new(fields, json_pack("{s:o,s:b,s:o,s:o,s:o}",
		    "name", jsonw_str(f->def->name), "released", f->released,
		    "label", jsonw_str(f->def->opinion ? "opinion" : "fact"),
		    "transform", jsonw_str(f->transform ? transform_name(f->transform) :
		    ""), "reason", jsonw_str(f->reason ? f->reason : "")));
	}
	for (size_t i = 0; d->rule != NULL && i < d->nunknown &&
	    i < POLICY_MAX_UNKNOWN; i++)
		json_array_append_new(fields, json_pack("{s:o,s:b,s:s}",
		    "name", jsonw_str(d->unknown[i]), "released", 0,
		    "reason", "unknown_field"));
	jsonw_set(o, "fields", fields);
	jsonw_print(stdout, o);
}

static int
policy_explain(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "agency", required_argument, NULL, 'a' },
		{ "purpose", required_argument, NULL, 'p' },
		{ "record-type", required_argument, NULL, 't' },
		{ "fields", required_argument, NULL, 'f' },
		{ "consent", required_argument, NULL, 'c' },
		{ "consent-expires", required_argument, NULL, 'e' },
		{ "flag", required_argument, NULL, 'F' },
		{ "override", required_argument, NULL, 'o' },
		{ "justification", required_argument, NULL, 'j' },
		{ "inform-waiver", required_argument, NULL, 'w' },
		{ "consult", no_argument, NULL, 'q' },
		{ "unknown-subject", no_argument, NULL, 'u' },
		{ "now", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static const char *const help =
	    "usage: safeshare policy explain FILE --agency A --purpose P --record-type T\n"
	    "         [--fields a,b] [--consent granted|refused|withdrawn|none]\n"
	    "         [--consent-expires DATE] [--flag F]... [--override CODE\n"
	    "         [--justification TEXT] [--inform-waiver TEXT]] [--consult]\n"
	    "         [--unknown-subject] [--now YYYY-MM-DD] [--json]\n"
	    "\n"
	    "Runs the daemon's decision offline, step by step, for a hypothetical\n"
	    "request: which rule matched (or why none), which fields would be\n"
	    "released, transformed or withheld, and why. The subject is assumed to\n"
	    "hold a value for every field. An --override without --justification\n"
	    "assumes an adequate one was given. Exit 0 released, 3 denied.\n";
	const char		*flags[32], *fields[PROTOCOL_MAX_FIELDS];
	const char		*values[PROTOCOL_MAX_FIELDS];
	struct policy_request	 rq;
	struct policy_subject	 subj;
	struct decision		 d;
	struct protocol		*p;
	const char		*agency = NULL, *file;
	char			*fieldlist = NULL, *save = NULL;
	int64_t			 now = time(NULL);
	int			 ch, json = 0, unknown = 0;

	memset(&rq, 0, sizeof(rq));
	memset(&subj, 0, sizeof(subj));
	rq.case_ref = "(explain)";
	rq.practitioner = "(explain)";
	rq.subject_id = "(explain)";
	subj.flags = flags;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a': agency = optarg; break;
		case 'p': rq.purpose = optarg; break;
		case 't': rq.record_type = optarg; break;
		case 'f': fieldlist = optarg; break;
		case 'c':
			if (consent_parse(optarg, &subj.consent) == -1) {
				fprintf(stderr, "safeshare: --consent: granted, refused, "
				    "withdrawn or none\n");
				return SS_EXIT_USAGE;
			}
			break;
		case 'e':
			if (date_parse(optarg, &subj.consent_expires) == -1) {
				fprintf(stderr, "safeshare: --consent-expires: YYYY-MM-DD\n");
				return SS_EXIT_USAGE;
			}
			break;
		case 'F':
			if (subj.nflags < 32)
				flags[subj.nflags++] = optarg;
			break;
		case 'o': rq.override_code = optarg; break;
		case 'j': rq.justification = optarg; break;
		case 'w': rq.inform_waiver = optarg; break;
		case 'q': rq.consult = 1; break;
		case 'u': unknown = 1; break;
		case 'n':
			if (date_parse(optarg, &now) == -1) {
				fprintf(stderr, "safeshare: --now: YYYY-MM-DD\n");
				return SS_EXIT_USAGE;
			}
			break;
		case 'J': json = 1; break;
		case 'h': fputs(help, stdout); return SS_EXIT_OK;
		default: fputs(help, stderr); return SS_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || agency == NULL || rq.purpose == NULL ||
	    rq.record_type == NULL) {
		fputs(help, stderr);
		return SS_EXIT_USAGE;
	}
	file = argv[optind];
	/* Load as of now, but explain as of --now (which may be after review-by). */
	if ((p = load(file, 0)) == NULL)
		return SS_EXIT_LOCAL;
	if (protocol_agency(p, agency) == NULL)
		fprintf(stderr, "safeshare: note: no agency \"%s\" in %s\n", agency, file);
	for (char *t = fieldlist ? strtok_r(fieldlist, ",", &save) : NULL;
	    t != NULL && rq.nfields < PROTOCOL_MAX_FIELDS; t = strtok_r(NULL, ",", &save))
		fields[rq.nfields++] = t;
	rq.fields = fields;
	if (rq.override_code != NULL && rq.justification == NULL)
		rq.justification = "(a justification of at least a sentence is assumed)";
	for (size_t i = 0; i < PROTOCOL_MAX_FIELDS; i++)
		values[i] = "(value)";
	subj.values = values;
	subj.known = !unknown;
	policy_decide(p, protocol_agency(p, agency), &rq, &subj, now, &d);
	if (json)
		explain_json(&d);
	else
		explain_text(p, &rq, &d, agency);
	protocol_unref(p);
	return d.kind == DECISION_DENY ? SS_EXIT_DENIED : SS_EXIT_OK;
}

static void
rule_fields(const struct rule *r, char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < r->nfields && n < len; i++) {
		const struct rule_field *f = &r->fields[i];
		int w = snprintf(out + n, len - n, "%s%s%s%s", i ? "," : "",
		    r->record_type->fields[f->idx].name, f->transform ? "/" : "",
		    f->transform ? transform_name(f->transform) : "");

		if (w < 0)
			break;
		n += (size_t)w;
	}
}

/* One matrix row as JSON: lists are arrays (issue 22), not joined strings. */
static json_t *
matrix_json_row(const struct agency *ag, const struct rule *r)
{
	json_t	*o = json_object(), *fields = json_array(), *ovs = json_array();
	json_t	*wh = json_array();

	jsonw_set(o, "agency", jsonw_str(ag->id));
	jsonw_set(o, "purpose", jsonw_str(r->purpose->id));
	jsonw_set(o, "record_type", jsonw_str(r->record_type->id));
	jsonw_set(o, "rule", jsonw_str(r->id));
	jsonw_set(o, "consent_required", json_boolean(r->consent_required));
	jsonw_set(o, "locatable", json_boolean(!r->not_locatable));
	for (size_t i = 0; i < r->nfields; i++) {
		const struct rule_field *f = &r->fields[i];

		json_array_append_new(fields, json_pack("{s:o,s:o}",
		    "name", jsonw_str(r->record_type->fields[f->idx].name),
		    "transform", jsonw_str(f->transform ? transform_name(f->transform) :
		    "none")));
	}
	jsonw_set(o, "fields", fields);
	for (int v = 0; v < OV_COUNT; v++)
		if (r->overrides & (1u << v))
			json_array_append_new(ovs,
			    jsonw_str(override_name((enum override_code)v)));
	jsonw_set(o, "overrides", ovs);
	for (size_t w = 0; w < r->nwithhold; w++) {
		json_t *names = json_array();

		for (size_t k = 0; k < r->withhold[w].nfields; k++)
			json_array_append_new(names, jsonw_str(
			    r->record_type->fields[r->withhold[w].fields[k]].name));
		json_array_append_new(wh, json_pack("{s:o,s:o}",
		    "flag", jsonw_str(r->withhold[w].flag), "fields", names));
	}
	jsonw_set(o, "withheld_when_flagged", wh);
	return o;
}

/* One matrix row as text: rule id, fields, overrides, flag withholdings. */
static void
matrix_text_row(const struct agency *ag, const struct rule *r)
{
	char		 fields[1024];
	const char	*sep = "  [overrides: ";

	rule_fields(r, fields, sizeof(fields));
	printf("%-22s %-18s %-10s %-22s %-9s %s", ag->id, r->purpose->id,
	    r->record_type->id, r->id, r->consent_required ? "required" : "-",
	    fields);
	for (int o = 0; o < OV_COUNT; o++)
		if (r->overrides & (1u << o)) {
			printf("%s%s", sep, override_name((enum override_code)o));
			sep = ",";
		}
	if (*sep == ',')
		printf("]");
	for (size_t w = 0; w < r->nwithhold; w++) {
		printf("  [if %s withhold ", r->withhold[w].flag);
		for (size_t k = 0; k < r->withhold[w].nfields; k++)
			printf("%s%s", k ? "," : "",
			    r->record_type->fields[r->withhold[w].fields[k]].name);
		printf("]");
	}
	if (r->not_locatable)
		printf("  [locate: false]");
	printf("\n");
}

static int
policy_matrix(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "agency", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	static const char *const help =
	    "usage: safeshare policy matrix FILE [--agency A] [--json]\n"
	    "For every agency (or only A), purpose and record type: the rule,\n"
	    "the fields it releases (with transforms), whether consent is\n"
	    "needed, the override exceptions accepted, the fields a risk\n"
	    "flag withholds and [locate: false] when locate never names what\n"
	    "the rule allows. The transparency view.\n";
	struct protocol	*p;
	const char	*file, *only = NULL;
	struct jsonw_seq seq;
	int		 ch, json = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a': only = optarg; break;
		case 'J': json = 1; break;
		case 'h': fputs(help, stdout); return SS_EXIT_OK;
		default: fputs(help, stderr); return SS_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fputs(help, stderr);
		return SS_EXIT_USAGE;
	}
	file = argv[optind];
	if ((p = load(file, 0)) == NULL)
		return SS_EXIT_LOCAL;
	if (only != NULL && protocol_agency(p, only) == NULL) {
		fprintf(stderr, "safeshare: no agency \"%s\" in %s\n", only, file);
		protocol_unref(p);
		return SS_EXIT_USAGE;
	}
	if (json)
		jsonw_seq_begin(&seq, stdout);
	else
		printf("%-22s %-18s %-10s %-22s %-9s %s\n", "AGENCY", "PURPOSE", "RECORD",
		    "RULE", "CONSENT", "FIELDS (/transform)  [overrides]  [if FLAG withhold]");
	for (size_t a = 0; a < p->nagencies; a++) {
		const struct agency *ag = &p->agencies[a];

		if (!(ag->roles & ROLE_REQUESTER) ||
		    (only != NULL && strcmp(ag->id, only) != 0))
			continue;
		for (size_t u = 0; u < p->npurposes; u++)
			for (size_t t = 0; t < p->nrecord_types; t++) {
				const struct rule *r = protocol_find_rule(p, ag,
				    &p->purposes[u], &p->record_types[t]);

				if (r == NULL)
					continue;
				if (json)
					jsonw_seq_add(&seq, matrix_json_row(ag, r));
				else
					matrix_text_row(ag, r);
			}
	}
	if (json)
		jsonw_seq_end(&seq);
	protocol_unref(p);
	return SS_EXIT_OK;
}

int
cmd_policy(int argc, char *argv[])
{
	static const char *const usage =
	    "usage: safeshare policy check FILE\n"
	    "       safeshare policy explain FILE --agency A --purpose P --record-type T ...\n"
	    "       safeshare policy matrix FILE [--agency A] [--json]\n";

	if (argc < 2) {
		fputs(usage, stderr);
		return SS_EXIT_USAGE;
	}
	if (strcmp(argv[1], "check") == 0)
		return policy_check(argc - 1, argv + 1);
	if (strcmp(argv[1], "explain") == 0)
		return policy_explain(argc - 1, argv + 1);
	if (strcmp(argv[1], "matrix") == 0)
		return policy_matrix(argc - 1, argv + 1);
	fputs(usage, strcmp(argv[1], "--help") == 0 ? stdout : stderr);
	return strcmp(argv[1], "--help") == 0 ? SS_EXIT_OK : SS_EXIT_USAGE;
}
