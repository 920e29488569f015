/*
 * safeshare: the command line for practitioners, admins and auditors.
 *
 * Exit codes: 0 done (a record released, fully, partly or as a
 * consultation); 1 local error (bad file, invalid protocol, log does not
 * verify); 2 usage; 3 the request was denied by the sharing protocol;
 * 4 the server refused the request (HTTP error); 5 no answer (connection,
 * TLS, timeout).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "protocol.h"
#include "safeshare/client.h"
#include "util.h"
#include "cli.h"



static const char *const top_usage =
    "usage: safeshare COMMAND [options]\n"
    "\n"
    "Practitioners:\n"
    "  request        ask for a subject's record for a purpose\n"
    "  locate         which holders hold records about a person (D19)\n"
    "  health         check that the server is up and its log is writable\n"
    "Data holders:\n"
    "  holder put-record|delete-record|consent|flag|unflag|link-nhs|\n"
    "         unlink-nhs|import|show\n"
    "                 write records, consent, risk flags and NHS number links\n"
    "                 for your subjects, and read back what is held for one\n"
    "Admins:\n"
    "  policy check   validate a sharing protocol file offline\n"
    "  policy explain what would happen if agency A asked for T for purpose P\n"
    "  policy matrix  what every agency can see, for every purpose (transparency)\n"
    "  admin reload   make the daemon re-read its sharing protocol\n"
    "  admin migrate  copy the disclosure log and the store from SQLite into\n"
    "                 PostgreSQL\n"
    "Auditors and the Caldicott Guardian:\n"
    "  audit query|stats|subject-report|reviews|review|inform|inform-done|\n"
    "        export|verify|show   read, review and verify the disclosure log\n"
    "  audit witness  keep the log's latest checkpoint, check it only grows\n"
    "Partners keeping proof:\n"
    "  receipt verify|check  check receipts offline, or against today's log\n"
    "\n"
    "Connection options (or environment SAFESHARE_SERVER, SAFESHARE_CERT,\n"
    "SAFESHARE_KEY, SAFESHARE_CA):\n"
    "  --server HOST:PORT  --cert FILE  --key FILE  --ca FILE\n"
    "\n"
    "Exit codes: 0 ok, 1 local error, 2 usage, 3 denied by the protocol,\n"
    "4 refused by the server, 5 no answer. 'safeshare COMMAND --help' for more.\n";

void
cli_refused(int status, const Safeshare__V1__Error *e)
{
	fprintf(stderr, "safeshare: refused (HTTP %d): %s: %s\n", status,
	    T(e->code), T(e->message));
}

void
cli_logged_refusal(int status, const Safeshare__V1__Error *e, int json,
    const char *what)
{
	if (json) {
		jsonw_print(stdout, json_pack("{s:i,s:o,s:o,s:o}", "status", status,
		    "code", jsonw_str(e->code), "message", jsonw_str(e->message),
		    "disclosure_id", jsonw_u64(e->disclosure_id)));
		return;
	}
	cli_refused(status, e);
	if (e->disclosure_id)
		fprintf(stderr, "safeshare: logged as %s%llu\n", what,
		    (unsigned long long)e->disclosure_id);
}

const char *
env_or(const char *v, const char *env)
{
	return v != NULL ? v : getenv(env);
}

int
connect_client(struct conn_opts *o, struct ss_client **c)
{
	struct ss_client_config	 cfg;
	char			 err[512];

	memset(&cfg, 0, sizeof(cfg));
	cfg.server = env_or(o->server, "SAFESHARE_SERVER");
	cfg.cert = env_or(o->cert, "SAFESHARE_CERT");
	cfg.key = env_or(o->key, "SAFESHARE_KEY");
	cfg.ca = env_or(o->ca, "SAFESHARE_CA");
	if (!cfg.server || !cfg.cert || !cfg.key || !cfg.ca) {
		fprintf(stderr, "safeshare: need --server, --cert, --key and --ca "
		    "(or SAFESHARE_SERVER, SAFESHARE_CERT, SAFESHARE_KEY, SAFESHARE_CA)\n");
		return SS_EXIT_USAGE;
	}
	if (ss_client_new(c, &cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		return SS_EXIT_LOCAL;
	}
	return SS_EXIT_OK;
}


/* Handles the options every networked command shares; 1 if consumed. */
int
conn_opt(int ch, struct conn_opts *o, int *json)
{
	switch (ch) {
	case O_SERVER: o->server = optarg; return 1;
	case O_CERT: o->cert = optarg; return 1;
	case O_KEY: o->key = optarg; return 1;
	case O_CA: o->ca = optarg; return 1;
	case O_JSON: *json = 1; return 1;
	}
	return 0;
}

static const char *
decision_word(Safeshare__V1__Decision d)
{
	switch (d) {
	case SAFESHARE__V1__DECISION__DECISION_ALLOW: return "allow";
	case SAFESHARE__V1__DECISION__DECISION_PARTIAL: return "partial";
	case SAFESHARE__V1__DECISION__DECISION_DENY: return "deny";
	case SAFESHARE__V1__DECISION__DECISION_CONSULTATION: return "consultation";
	default: return "unspecified";
	}
}

/* One decision as a JSON object (docs/cli.md). */
static json_t *
response_json(const Safeshare__V1__DisclosureResponse *r)
{
	json_t	*o = json_object(), *rel = json_array(), *wh = json_array();

	if (r->holder[0] != '\0')
		jsonw_set(o, "holder", jsonw_str(r->holder));
	jsonw_set(o, "decision", jsonw_str(decision_word(r->decision)));
	jsonw_set(o, "reason", jsonw_str(r->reason));
	jsonw_set(o, "disclosure_id", jsonw_u64(r->disclosure_id));
	jsonw_set(o, "rule", jsonw_str(r->rule_id));
	jsonw_set(o, "protocol", jsonw_str(r->protocol_id));
	jsonw_set(o, "protocol_version", jsonw_str(r->protocol_version));
	jsonw_set(o, "lawful_basis", jsonw_str(r->lawful_basis));
	jsonw_set(o, "record_age_seconds", json_integer(r->record_age_seconds));
	jsonw_set(o, "review_required", json_boolean(r->review_required));
	jsonw_set(o, "inform_subject", json_boolean(r->inform_subject));
	for (size_t i = 0; i < r->n_released; i++) {
		const Safeshare__V1__ReleasedField	*f = r->released[i];
		json_t					*x = json_object();

		jsonw_set(x, "name", jsonw_str(f->name));
		jsonw_set(x, "value", jsonw_str(f->value));
		jsonw_set(x, "label", jsonw_str(f->label ==
		    SAFESHARE__V1__LABEL__LABEL_OPINION ? "opinion" : "fact"));
		jsonw_set(x, "last_verified", json_integer(f->last_verified));
		jsonw_set(x, "transform", jsonw_str(f->transform));
		json_array_append_new(rel, x);
	}
	jsonw_set(o, "released", rel);
	for (size_t i = 0; i < r->n_withheld; i++)
		json_array_append_new(wh, json_pack("{s:o,s:o}",
		    "name", jsonw_str(r->withheld[i]->name),
		    "reason", jsonw_str(r->withheld[i]->reason)));
	jsonw_set(o, "withheld", wh);
	return o;
}

static void
print_response(const Safeshare__V1__DisclosureResponse *r, int json)
{
	char	 when[32];
	time_t	 t;

	if (json) {
		jsonw_print(stdout, response_json(r));
		return;
	}
	if (r->holder[0] != '\0')
		printf("holder:        %s\n", T(r->holder));
	printf("decision:      %s (%s)\n", decision_word(r->decision), T(r->reason));
	printf("disclosure id: %llu\n", (unsigned long long)r->disclosure_id);
	printf("protocol:      %s version %s%s%s\n", T(r->protocol_id),
	    T(r->protocol_version), r->rule_id[0] ? ", rule " : "", T(r->rule_id));
	if (r->lawful_basis[0])
		printf("lawful basis:  %s\n", T(r->lawful_basis));
	if (r->n_released > 0) {
		t = (time_t)r->released[0]->last_verified;
		strftime(when, sizeof(when), "%Y-%m-%d", gmtime(&t));
		printf("record last verified %s (%lld days ago)\n", when,
		    (long long)(r->record_age_seconds / 86400));
		printf("released:\n");
	}
	for (size_t i = 0; i < r->n_released; i++) {
		const Safeshare__V1__ReleasedField *f = r->released[i];

		printf("  %-22s %-30s [%s]%s%s\n", T(f->name), T(f->value),
		    f->label == SAFESHARE__V1__LABEL__LABEL_OPINION ? "opinion" : "fact",
		    f->transform[0] ? " transformed: " : "", T(f->transform));
	}
	if (r->n_withheld > 0)
		printf("withheld:\n");
	for (size_t i = 0; i < r->n_withheld; i++)
		printf("  %-22s %s\n", T(r->withheld[i]->name), T(r->withheld[i]->reason));
	if (r->review_required)
		printf("note: released under an override; flagged for senior review\n");
	if (r->inform_subject)
		printf("note: the subject is to be informed of this disclosure\n");
}

/*
 * Issue 17: the answer of a request without --holder, one decision per
 * holder in the daemon's (holder) order; --json: {"holders": [...],
 * "protocol", "protocol_version"}. Each receipt is kept. Returns the exit
 * status: released if any holder released something, else denied.
 */
static int
print_holders(const Safeshare__V1__DisclosureResponse *r, int json,
    const char *receipts)
{
	json_t	*a = NULL;
	int	 released = 0;

	if (json)
		a = json_array();
	for (size_t i = 0; i < r->n_holders; i++) {
		const Safeshare__V1__DisclosureResponse *h = r->holders[i];

		if (receipts != NULL)
			receipt_save(receipts, h->receipt);
		if (h->decision != SAFESHARE__V1__DECISION__DECISION_DENY)
			released = 1;
		if (json)
			json_array_append_new(a, response_json(h));
		else {
			if (i > 0)
				printf("\n");
			print_response(h, 0);
		}
	}
	if (json)
		jsonw_print(stdout, json_pack("{s:o,s:o,s:o}", "holders", a,
		    "protocol", jsonw_str(r->protocol_id), "protocol_version",
		    jsonw_str(r->protocol_version)));
	else if (!released)
		fprintf(stderr, "safeshare: denied by every holder asked\n");
	return released ? SS_EXIT_OK : SS_EXIT_DENIED;
}

static int
split_fields(char *list, char ***out, size_t *n)
{
	char *save = NULL;

	*out = NULL;
	*n = 0;
	for (char *tok = strtok_r(list, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		char **v = realloc(*out, (*n + 1) * sizeof(*v));

		if (v == NULL)
			return -1;
		*out = v;
		(*out)[(*n)++] = tok;
	}
	return 0;
}

static int
cmd_request(int argc, char *argv[])
{
	static const struct option longopts[] = {
		CONN_LONGOPTS,
		{ "subject", required_argument, NULL, 's' },
		{ "record-type", required_argument, NULL, 't' },
		{ "purpose", required_argument, NULL, 'p' },
		{ "case", required_argument, NULL, 'C' },
		{ "practitioner", required_argument, NULL, 'P' },
		{ "fields", required_argument, NULL, 'f' },
		{ "consult", no_argument, NULL, 'q' },
		{ "override", required_argument, NULL, 'o' },
		{ "justification", required_argument, NULL, 'j' },
		{ "inform-waiver", required_argument, NULL, 'w' },
		{ "request-id", required_argument, NULL, 'r' },
		{ "receipts", required_argument, NULL, 'R' },
		{ "holder", required_argument, NULL, 'H' },
		{ "nhs-number", required_argument, NULL, 'n' },
		{ "family-name", required_argument, NULL, 'F' },
		{ "given-name", required_argument, NULL, 'g' },
		{ "dob", required_argument, NULL, 'd' },
		{ "postcode", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 }
	};
	static const char *const help =
	    "usage: safeshare request (--subject ID | [--holder H] (--nhs-number N |\n"
	    "         --family-name F --given-name G --dob DATE [--postcode PC]))\n"
	    "         --record-type TYPE --purpose P\n"
	    "         --case REF --practitioner NAME [--fields a,b,...] [--consult]\n"
	    "         [--override CODE --justification TEXT [--inform-waiver TEXT]]\n"
	    "         [--request-id ID] [--receipts DIR] [--json] [connection options]\n"
	    "\n"
	    "Asks the server for a subject's record for a purpose. Prints the\n"
	    "released fields (fact/opinion label, transform), the withheld ones\n"
	    "with the reason, and the disclosure id under which the decision was\n"
	    "logged. --consult asks without identifying fields (D11). --override\n"
	    "invokes an exception when consent is absent or refused (D5).\n"
	    "--nhs-number or the demographics name the person, found as\n"
	    "docs/matching.md says (D18): with --holder, that holder's record;\n"
	    "without, every holder's record of the type, each decided, logged\n"
	    "and printed on its own (holder, decision, fields, receipt); holders\n"
	    "under a rule with `locate: false` are asked only by name (D19).\n"
	    "--receipts DIR keeps each decision's receipt (also a refusal's) as\n"
	    "DIR/<disclosure id>.receipt: proof that the decision is in the\n"
	    "signed log, for `safeshare receipt verify|check`.\n"
	    "Exit: 0 released (by any holder asked), 3 denied (by every one),\n"
	    "4 refused by the server, 5 no answer.\n";
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__PersonRef		 person = SAFESHARE__V1__PERSON_REF__INIT;
	Safeshare__V1__DisclosureResponse	*resp;
	Safeshare__V1__Error			*error;
	struct conn_opts			 o = { 0 };
	struct ss_client			*c;
	char					 err[512], *fields = NULL;
	const char				*receipts = NULL;
	int					 ch, json = 0, status, rc;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (conn_opt(ch, &o, &json))
			continue;
		switch (ch) {
		case 's': rq.subject_id = optarg; break;
		case 't': rq.record_type = optarg; break;
		case 'p': rq.purpose = optarg; break;
		case 'C': rq.case_reference = optarg; break;
		case 'P': rq.practitioner = optarg; break;
		case 'f': fields = optarg; break;
		case 'q': rq.consultation = 1; break;
		case 'o': rq.override_code = optarg; break;
		case 'j': rq.override_justification = optarg; break;
		case 'w': rq.inform_waiver_reason = optarg; break;
		case 'r': rq.request_id = optarg; break;
		case 'R': receipts = optarg; break;
		case 'H': person.holder = optarg; break;
		case 'n': person.nhs_number = optarg; break;
		case 'F': person.family_name = optarg; break;
		case 'g': person.given_name = optarg; break;
		case 'd': person.date_of_birth = optarg; break;
		case 'c': person.postcode = optarg; break;
		case O_HELP: fputs(help, stdout); return SS_EXIT_OK;
		default: fputs(help, stderr); return SS_EXIT_USAGE;
		}
	}
	/*
	 * Issue 17: the person by NHS number or demographics, at one holder
	 * or (no --holder) at every holder of the record type.
	 */
	if (person.nhs_number[0] != '\0' || person.family_name[0] != '\0' ||
	    person.given_name[0] != '\0' || person.date_of_birth[0] != '\0') {
		if (rq.subject_id[0] != '\0') {
			fprintf(stderr, "safeshare request: --nhs-number or the "
			    "demographics go instead of --subject\n");
			return SS_EXIT_USAGE;
		}
		rq.person = &person;
	} else if (person.holder[0] != '\0') {
		fprintf(stderr, "safeshare request: --holder goes with --nhs-number "
		    "or the demographics\n");
		return SS_EXIT_USAGE;
	}
	if ((rq.subject_id[0] == '\0' && rq.person == NULL) ||
	    rq.record_type[0] == '\0' ||
	    rq.purpose[0] == '\0' || rq.case_reference[0] == '\0' ||
	    rq.practitioner[0] == '\0') {
		fprintf(stderr, "safeshare request: --subject (or --nhs-number or "
		    "the demographics), --record-type, --purpose, --case and "
		    "--practitioner are required (D1)\n");
		return SS_EXIT_USAGE;
	}
	if (fields != NULL && split_fields(fields, &rq.fields, &rq.n_fields) == -1)
		return SS_EXIT_LOCAL;
	if ((rc = connect_client(&o, &c)) != SS_EXIT_OK) {
		free(rq.fields);
		return rc;
	}
	rc = ss_disclose(c, &rq, &resp, &error, &status, err, sizeof(err));
	ss_client_free(c);
	free(rq.fields);
	if (rc == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		return SS_EXIT_NOANSWER;
	}
	if (error != NULL) {
		if (receipts != NULL && error->disclosure_id != 0)
			receipt_save(receipts, error->receipt);
		cli_logged_refusal(status, error, json, "disclosure ");
		safeshare__v1__error__free_unpacked(error, NULL);
		return SS_EXIT_REFUSED;
	}
	if (resp->n_holders > 0) {
		rc = print_holders(resp, json, receipts);
		safeshare__v1__disclosure_response__free_unpacked(resp, NULL);
		return rc;
	}
	if (receipts != NULL)
		receipt_save(receipts, resp->receipt);
	print_response(resp, json);
	rc = resp->decision == SAFESHARE__V1__DECISION__DECISION_DENY ? SS_EXIT_DENIED : SS_EXIT_OK;
	if (rc == SS_EXIT_DENIED && !json)
		fprintf(stderr, "safeshare: denied: %s\n", T(resp->reason));
	safeshare__v1__disclosure_response__free_unpacked(resp, NULL);
	return rc;
}

static int
cmd_admin(int argc, char *argv[])
{
	static const struct option longopts[] = { CONN_LONGOPTS, { NULL, 0, NULL, 0 } };
	static const char *const help =
	    "usage: safeshare admin reload [--json] [connection options]\n"
	    "       safeshare admin migrate ...   (safeshare admin migrate --help)\n"
	    "Asks the daemon to re-read its sharing protocol (admin role). A file\n"
	    "with any problem is rejected, its problems printed, and the protocol\n"
	    "in force stays. Exit 0 reloaded, 1 rejected, 4 refused (also when\n"
	    "the daemon cannot log the reload: 503 audit_unavailable).\n";
	Safeshare__V1__ReloadResult	*r;
	Safeshare__V1__Error		*e;
	struct conn_opts		 o = { 0 };
	struct ss_client		*c;
	char				 err[512];
	int				 ch, json = 0, status, rc;

	/* Offline, on files and a database: migrate_cmd.c. */
	if (argc >= 2 && strcmp(argv[1], "migrate") == 0)
		return cmd_migrate(argc - 1, argv + 1);
	if (argc < 2 || strcmp(argv[1], "reload") != 0) {
		fputs(help, argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
		return argc >= 2 && strcmp(argv[1], "--help") == 0 ? SS_EXIT_OK : SS_EXIT_USAGE;
	}
	argc--;
	argv++;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (conn_opt(ch, &o, &json))
			continue;
		if (ch == O_HELP) {
			fputs(help, stdout);
			return SS_EXIT_OK;
		}
		fputs(help, stderr);
		return SS_EXIT_USAGE;
	}
	if ((rc = connect_client(&o, &c)) != SS_EXIT_OK)
		return rc;
	rc = ss_admin_reload(c, &r, &e, &status, err, sizeof(err));
	ss_client_free(c);
	if (rc == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		return SS_EXIT_NOANSWER;
	}
	if (e != NULL) {
		cli_refused(status, e);
		safeshare__v1__error__free_unpacked(e, NULL);
		return SS_EXIT_REFUSED;
	}
	if (json) {
		json_t *pr = json_array();

		for (size_t i = 0; i < r->n_problems; i++)
			json_array_append_new(pr, jsonw_str(r->problems[i]));
		jsonw_print(stdout, json_pack("{s:b,s:o,s:o,s:o,s:o}", "ok", r->ok,
		    "protocol", jsonw_str(r->protocol_id),
		    "protocol_version", jsonw_str(r->protocol_version),
		    "sha256", jsonw_str(r->protocol_sha256), "problems", pr));
	} else {
		for (size_t i = 0; i < r->n_problems; i++)
			fprintf(stderr, "%s\n", T(r->problems[i]));
		if (r->ok)
			printf("reloaded: protocol %s version %s (sha256 %s), log entry %llu\n",
			    T(r->protocol_id), T(r->protocol_version), T(r->protocol_sha256),
			    (unsigned long long)r->disclosure_id);
		else
			printf("rejected: protocol %s version %s stays in force\n",
			    T(r->protocol_id), T(r->protocol_version));
	}
	rc = r->ok ? SS_EXIT_OK : SS_EXIT_LOCAL;
	safeshare__v1__reload_result__free_unpacked(r, NULL);
	return rc;
}

static int
cmd_health(int argc, char *argv[])
{
	static const struct option longopts[] = { CONN_LONGOPTS, { NULL, 0, NULL, 0 } };
	Safeshare__V1__Health	*h;
	struct conn_opts	 o = { 0 };
	struct ss_client	*c;
	char			 err[512];
	int			 ch, json = 0, status, rc;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (conn_opt(ch, &o, &json))
			continue;
		fprintf(ch == O_HELP ? stdout : stderr,
		    "usage: safeshare health [--json] [connection options]\n"
		    "Prints the server's status, protocol in force and log size.\n");
		return ch == O_HELP ? SS_EXIT_OK : SS_EXIT_USAGE;
	}
	if ((rc = connect_client(&o, &c)) != SS_EXIT_OK)
		return rc;
	rc = ss_health(c, &h, &status, err, sizeof(err));
	ss_client_free(c);
	if (rc == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		return SS_EXIT_NOANSWER;
	}
	if (json) {
		jsonw_print(stdout, json_pack("{s:o,s:b,s:o,s:o,s:o}",
		    "status", jsonw_str(h->status), "audit_ok", h->audit_ok,
		    "protocol", jsonw_str(h->protocol_id),
		    "protocol_version", jsonw_str(h->protocol_version),
		    "log_size", jsonw_u64(h->log_size)));
	} else
		printf("status %s; disclosure log %s (%llu entries); protocol %s "
		    "version %s\n", T(h->status), h->audit_ok ? "writable" : "FAILING",
		    (unsigned long long)h->log_size, T(h->protocol_id),
		    T(h->protocol_version));
	rc = h->audit_ok ? SS_EXIT_OK : SS_EXIT_REFUSED;
	safeshare__v1__health__free_unpacked(h, NULL);
	return rc;
}

/*
 * Every command's output goes to stdout, most of it buffered until here: a
 * write that failed (a full disk, a closed pipe) is an error and a
 * non-zero exit, never a silently cut --json or listing. A command that
 * already failed keeps its own exit code.
 */
static int
output_written(int rc)
{
	int e;

	errno = 0;
	if (fflush(stdout) != EOF && !ferror(stdout))
		return rc;
	e = errno != 0 ? errno : EIO;
	fprintf(stderr, "safeshare: the output could not be written (%s): it is "
	    "incomplete\n", strerror(e));
	return rc == SS_EXIT_OK ? SS_EXIT_LOCAL : rc;
}

int
main(int argc, char *argv[])
{
	static const struct {
		const char *name;
		int (*fn)(int, char *[]);
	} cmds[] = {
		{ "request", cmd_request },
		{ "locate", cmd_locate },
		{ "health", cmd_health },
		{ "policy", cmd_policy },
		{ "admin", cmd_admin },
		{ "audit", cmd_audit },
		{ "holder", cmd_holder },
		{ "receipt", cmd_receipt },
	};

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(top_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? SS_EXIT_USAGE : SS_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return output_written(cmds[i].fn(argc - 1, argv + 1));
	fprintf(stderr, "safeshare: unknown command \"%s\"\n\n%s", argv[1], top_usage);
	return SS_EXIT_USAGE;
}
