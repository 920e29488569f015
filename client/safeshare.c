/*
 * safeshare: the command line for practitioners, admins and auditors.
 *
 * Exit codes: 0 done (a record released, fully, partly or as a
 * consultation); 1 local error (bad file, invalid protocol, log does not
 * verify); 2 usage; 3 the request was denied by the sharing protocol;
 * 4 the server refused the request (HTTP error); 5 no answer (connection,
 * TLS, timeout).
 */
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


struct conn_opts {
	const char	*server, *cert, *key, *ca;
};

static const char *const top_usage =
    "usage: safeshare COMMAND [options]\n"
    "\n"
    "Practitioners:\n"
    "  request        ask for a subject's record for a purpose\n"
    "  health         check that the server is up and its log is writable\n"
    "Admins:\n"
    "  policy check   validate a sharing protocol file offline\n"
    "  policy explain what would happen if agency A asked for T for purpose P\n"
    "  policy matrix  what every agency can see, for every purpose (transparency)\n"
    "  admin reload   make the daemon re-read its sharing protocol\n"
    "Auditors:\n"
    "  audit show     print disclosure log entries (offline, from the log file)\n"
    "  audit verify   recompute the log's hash chain (offline)\n"
    "\n"
    "Connection options (or environment SAFESHARE_SERVER, SAFESHARE_CERT,\n"
    "SAFESHARE_KEY, SAFESHARE_CA):\n"
    "  --server HOST:PORT  --cert FILE  --key FILE  --ca FILE\n"
    "\n"
    "Exit codes: 0 ok, 1 local error, 2 usage, 3 denied by the protocol,\n"
    "4 refused by the server, 5 no answer. 'safeshare COMMAND --help' for more.\n";

void
json_str(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", fp);
		else if (c < 0x20)
			fprintf(fp, "\\u%04x", c);
		else
			fputc(c, fp);
	}
	fputc('"', fp);
}

static const char *
env_or(const char *v, const char *env)
{
	return v != NULL ? v : getenv(env);
}

static int
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
		return EX_USAGE;
	}
	if (ss_client_new(c, &cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		return EX_LOCAL;
	}
	return EX_OK;
}

enum { O_SERVER = 1000, O_CERT, O_KEY, O_CA, O_JSON, O_HELP };

#define CONN_LONGOPTS							\
	{ "server", required_argument, NULL, O_SERVER },		\
	{ "cert", required_argument, NULL, O_CERT },			\
	{ "key", required_argument, NULL, O_KEY },			\
	{ "ca", required_argument, NULL, O_CA },			\
	{ "json", no_argument, NULL, O_JSON },				\
	{ "help", no_argument, NULL, O_HELP }

/* Handles the options every networked command shares; 1 if consumed. */
static int
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

static void
print_response(const Safeshare__V1__DisclosureResponse *r, int json)
{
	char	 when[32];
	time_t	 t;

	if (json) {
		printf("{\"decision\":\"%s\",\"reason\":", decision_word(r->decision));
		json_str(stdout, r->reason);
		printf(",\"disclosure_id\":%llu,\"rule\":",
		    (unsigned long long)r->disclosure_id);
		json_str(stdout, r->rule_id);
		printf(",\"protocol\":");
		json_str(stdout, r->protocol_id);
		printf(",\"protocol_version\":");
		json_str(stdout, r->protocol_version);
		printf(",\"lawful_basis\":");
		json_str(stdout, r->lawful_basis);
		printf(",\"record_age_seconds\":%lld,\"review_required\":%s,"
		    "\"inform_subject\":%s,\"released\":[",
		    (long long)r->record_age_seconds, r->review_required ? "true" :
		    "false", r->inform_subject ? "true" : "false");
		for (size_t i = 0; i < r->n_released; i++) {
			const Safeshare__V1__ReleasedField *f = r->released[i];

			printf("%s{\"name\":", i ? "," : "");
			json_str(stdout, f->name);
			printf(",\"value\":");
			json_str(stdout, f->value);
			printf(",\"label\":\"%s\",\"last_verified\":%lld,\"transform\":",
			    f->label == SAFESHARE__V1__LABEL__LABEL_OPINION ? "opinion" :
			    "fact", (long long)f->last_verified);
			json_str(stdout, f->transform);
			printf("}");
		}
		printf("],\"withheld\":[");
		for (size_t i = 0; i < r->n_withheld; i++) {
			printf("%s{\"name\":", i ? "," : "");
			json_str(stdout, r->withheld[i]->name);
			printf(",\"reason\":");
			json_str(stdout, r->withheld[i]->reason);
			printf("}");
		}
		printf("]}\n");
		return;
	}
	printf("decision:      %s (%s)\n", decision_word(r->decision), r->reason);
	printf("disclosure id: %llu\n", (unsigned long long)r->disclosure_id);
	printf("protocol:      %s version %s%s%s\n", r->protocol_id,
	    r->protocol_version, r->rule_id[0] ? ", rule " : "", r->rule_id);
	if (r->lawful_basis[0])
		printf("lawful basis:  %s\n", r->lawful_basis);
	if (r->n_released > 0) {
		t = (time_t)r->released[0]->last_verified;
		strftime(when, sizeof(when), "%Y-%m-%d", gmtime(&t));
		printf("record last verified %s (%lld days ago)\n", when,
		    (long long)(r->record_age_seconds / 86400));
		printf("released:\n");
	}
	for (size_t i = 0; i < r->n_released; i++) {
		const Safeshare__V1__ReleasedField *f = r->released[i];

		printf("  %-22s %-30s [%s]%s%s\n", f->name, f->value,
		    f->label == SAFESHARE__V1__LABEL__LABEL_OPINION ? "opinion" : "fact",
		    f->transform[0] ? " transformed: " : "", f->transform);
	}
	if (r->n_withheld > 0)
		printf("withheld:\n");
	for (size_t i = 0; i < r->n_withheld; i++)
		printf("  %-22s %s\n", r->withheld[i]->name, r->withheld[i]->reason);
	if (r->review_required)
		printf("note: released under an override; flagged for senior review\n");
	if (r->inform_subject)
		printf("note: the subject is to be informed of this disclosure\n");
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
		{ NULL, 0, NULL, 0 }
	};
	static const char *const help =
	    "usage: safeshare request --subject ID --record-type TYPE --purpose P\n"
	    "         --case REF --practitioner NAME [--fields a,b,...] [--consult]\n"
	    "         [--override CODE --justification TEXT [--inform-waiver TEXT]]\n"
	    "         [--request-id ID] [--json] [connection options]\n"
	    "\n"
	    "Asks the server for a subject's record for a purpose. Prints the\n"
	    "released fields (fact/opinion label, transform), the withheld ones\n"
	    "with the reason, and the disclosure id under which the decision was\n"
	    "logged. --consult asks without identifying fields (D11). --override\n"
	    "invokes an exception when consent is absent or refused (D5).\n"
	    "Exit: 0 released, 3 denied, 4 refused by the server, 5 no answer.\n";
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__DisclosureResponse	*resp;
	Safeshare__V1__Error			*error;
	struct conn_opts			 o = { 0 };
	struct ss_client			*c;
	char					 err[512], *fields = NULL;
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
		case O_HELP: fputs(help, stdout); return EX_OK;
		default: fputs(help, stderr); return EX_USAGE;
		}
	}
	if (rq.subject_id[0] == '\0' || rq.record_type[0] == '\0' ||
	    rq.purpose[0] == '\0' || rq.case_reference[0] == '\0' ||
	    rq.practitioner[0] == '\0') {
		fprintf(stderr, "safeshare request: --subject, --record-type, "
		    "--purpose, --case and --practitioner are required (D1)\n");
		return EX_USAGE;
	}
	if (fields != NULL && split_fields(fields, &rq.fields, &rq.n_fields) == -1)
		return EX_LOCAL;
	if ((rc = connect_client(&o, &c)) != EX_OK) {
		free(rq.fields);
		return rc;
	}
	rc = ss_disclose(c, &rq, &resp, &error, &status, err, sizeof(err));
	ss_client_free(c);
	free(rq.fields);
	if (rc == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		return EX_NOANSWER;
	}
	if (error != NULL) {
		if (json) {
			printf("{\"status\":%d,\"code\":", status);
			json_str(stdout, error->code);
			printf(",\"message\":");
			json_str(stdout, error->message);
			printf(",\"disclosure_id\":%llu}\n",
			    (unsigned long long)error->disclosure_id);
		} else {
			fprintf(stderr, "safeshare: refused (HTTP %d): %s: %s\n", status,
			    error->code, error->message);
			if (error->disclosure_id)
				fprintf(stderr, "safeshare: logged as disclosure %llu\n",
				    (unsigned long long)error->disclosure_id);
		}
		safeshare__v1__error__free_unpacked(error, NULL);
		return EX_REFUSED;
	}
	print_response(resp, json);
	rc = resp->decision == SAFESHARE__V1__DECISION__DECISION_DENY ? EX_DENIED : EX_OK;
	if (rc == EX_DENIED && !json)
		fprintf(stderr, "safeshare: denied: %s\n", resp->reason);
	safeshare__v1__disclosure_response__free_unpacked(resp, NULL);
	return rc;
}

static int
cmd_admin(int argc, char *argv[])
{
	static const struct option longopts[] = { CONN_LONGOPTS, { NULL, 0, NULL, 0 } };
	static const char *const help =
	    "usage: safeshare admin reload [--json] [connection options]\n"
	    "Asks the daemon to re-read its sharing protocol (admin role). A file\n"
	    "with any problem is rejected, its problems printed, and the protocol\n"
	    "in force stays. Exit 0 reloaded, 1 rejected, 4 refused.\n";
	Safeshare__V1__ReloadResult	*r;
	Safeshare__V1__Error		*e;
	struct conn_opts		 o = { 0 };
	struct ss_client		*c;
	char				 err[512];
	int				 ch, json = 0, status, rc;

	if (argc < 2 || strcmp(argv[1], "reload") != 0) {
		fputs(help, argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
		return argc >= 2 && strcmp(argv[1], "--help") == 0 ? EX_OK : EX_USAGE;
	}
	argc--;
	argv++;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (conn_opt(ch, &o, &json))
			continue;
		if (ch == O_HELP) {
			fputs(help, stdout);
			return EX_OK;
		}
		fputs(help, stderr);
		return EX_USAGE;
	}
	if ((rc = connect_client(&o, &c)) != EX_OK)
		return rc;
	rc = ss_admin_reload(c, &r, &e, &status, err, sizeof(err));
	ss_client_free(c);
	if (rc == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		return EX_NOANSWER;
	}
	if (e != NULL) {
		fprintf(stderr, "safeshare: refused (HTTP %d): %s: %s\n", status, e->code,
		    e->message);
		safeshare__v1__error__free_unpacked(e, NULL);
		return EX_REFUSED;
	}
	if (json) {
		printf("{\"ok\":%s,\"protocol\":", r->ok ? "true" : "false");
		json_str(stdout, r->protocol_id);
		printf(",\"protocol_version\":");
		json_str(stdout, r->protocol_version);
		printf(",\"sha256\":\"%s\",\"problems\":[", r->protocol_sha256);
		for (size_t i = 0; i < r->n_problems; i++) {
			printf("%s", i ? "," : "");
			json_str(stdout, r->problems[i]);
		}
		printf("]}\n");
	} else {
		for (size_t i = 0; i < r->n_problems; i++)
			fprintf(stderr, "%s\n", r->problems[i]);
		if (r->ok)
			printf("reloaded: protocol %s version %s (sha256 %s), log entry %llu\n",
			    r->protocol_id, r->protocol_version, r->protocol_sha256,
			    (unsigned long long)r->disclosure_id);
		else
			printf("rejected: protocol %s version %s stays in force\n",
			    r->protocol_id, r->protocol_version);
	}
	rc = r->ok ? EX_OK : EX_LOCAL;
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
		if (ch == O_HELP) {
			printf("usage: safeshare health [--json] [connection options]\n"
			    "Prints the server's status, protocol in force and log size.\n");
			return EX_OK;
		}
		return EX_USAGE;
	}
	if ((rc = connect_client(&o, &c)) != EX_OK)
		return rc;
	rc = ss_health(c, &h, &status, err, sizeof(err));
	ss_client_free(c);
	if (rc == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		return EX_NOANSWER;
	}
	if (json)
		printf("{\"status\":\"%s\",\"audit_ok\":%s,\"protocol\":\"%s\","
		    "\"protocol_version\":\"%s\",\"log_size\":%llu}\n", h->status,
		    h->audit_ok ? "true" : "false", h->protocol_id,
		    h->protocol_version, (unsigned long long)h->log_size);
	else
		printf("status %s; disclosure log %s (%llu entries); protocol %s "
		    "version %s\n", h->status, h->audit_ok ? "writable" : "FAILING",
		    (unsigned long long)h->log_size, h->protocol_id,
		    h->protocol_version);
	rc = h->audit_ok ? EX_OK : EX_REFUSED;
	safeshare__v1__health__free_unpacked(h, NULL);
	return rc;
}

struct show_state {
	int	json;
	int	first;
};

static int
show_entry(const struct audit_entry *e, void *arg)
{
	struct show_state	*s = arg;
	char			 when[32], hash[65];
	time_t			 t = (time_t)e->time;

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	hex_encode(e->hash, 32, hash);
	if (!s->json) {
		printf("#%-5llu %s %-10s %-12s %-8s %-22s agency=%s subject=%s "
		    "purpose=%s rule=%s released=[%s] withheld=[%s]\n",
		    (unsigned long long)e->seq, when, e->kind, e->decision,
		    e->consent[0] ? e->consent : "-", e->reason,
		    e->agency[0] ? e->agency : "-", e->subject[0] ? e->subject : "-",
		    e->purpose[0] ? e->purpose : "-", e->rule_id[0] ? e->rule_id : "-",
		    e->released, e->withheld);
		return 0;
	}
	printf("%s{\"seq\":%llu,\"time\":\"%s\"", s->first ? "" : ",\n",
	    (unsigned long long)e->seq, when);
#define J(k, v) do { printf(",\"%s\":", k); json_str(stdout, v); } while (0)
	J("kind", e->kind); J("agency", e->agency); J("cert_fp", e->cert_fp);
	J("practitioner", e->practitioner); J("purpose", e->purpose);
	J("lawful_basis", e->lawful_basis); J("case_ref", e->case_ref);
	J("subject", e->subject); J("record_type", e->record_type);
	J("decision", e->decision); J("reason", e->reason);
	J("released", e->released); J("withheld", e->withheld);
	J("consent", e->consent); J("override_code", e->override_code);
	J("rule_id", e->rule_id); J("protocol_id", e->protocol_id);
	J("protocol_version", e->protocol_version);
	J("protocol_sha256", e->protocol_sha256); J("request_id", e->request_id);
	J("hash", hash);
#undef J
	printf("}");
	s->first = 0;
	return 0;
}

static int
cmd_audit(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "last", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 }
	};
	static const char *const help =
	    "usage: safeshare audit show --log FILE [--last N] [--json]\n"
	    "       safeshare audit verify --log FILE\n"
	    "Reads the disclosure log database directly (offline): 'show' prints\n"
	    "entries, 'verify' recomputes the hash chain and names the first bad\n"
	    "entry. Exit 1 when the log does not verify.\n";
	struct show_state	 s = { 0, 1 };
	struct audit		*a;
	const char		*path = NULL, *sub;
	char			 err[512];
	long long		 last = 0;
	int			 ch, rc = EX_OK;

	if (argc < 2) {
		fputs(help, stderr);
		return EX_USAGE;
	}
	sub = argv[1];
	argc--;
	argv++;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l': path = optarg; break;
		case 'n': last = atoll(optarg); break;
		case O_JSON: s.json = 1; break;
		case O_HELP: fputs(help, stdout); return EX_OK;
		default: fputs(help, stderr); return EX_USAGE;
		}
	}
	if (strcmp(sub, "--help") == 0) {
		fputs(help, stdout);
		return EX_OK;
	}
	if (path == NULL || (strcmp(sub, "show") != 0 && strcmp(sub, "verify") != 0)) {
		fputs(help, stderr);
		return EX_USAGE;
	}
	if (audit_open(&a, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		return EX_LOCAL;
	}
	if (strcmp(sub, "show") == 0) {
		uint64_t size = audit_size(a);
		uint64_t from = last > 0 && (uint64_t)last < size ? size - (uint64_t)last + 1 : 1;

		if (s.json)
			printf("[");
		if (audit_scan(a, from, 0, show_entry, &s) == -1) {
			fprintf(stderr, "safeshare: %s\n", audit_errmsg(a));
			rc = EX_LOCAL;
		}
		if (s.json)
			printf("]\n");
	} else {
		uint64_t n, bad;
		char why[256];

		if (audit_verify(a, &n, &bad, why, sizeof(why)) == 0)
			printf("%s: ok, %llu entries, chain intact\n", path,
			    (unsigned long long)n);
		else {
			fprintf(stderr, "%s: FAILED at entry %llu: %s\n", path,
			    (unsigned long long)bad, why);
			rc = EX_LOCAL;
		}
	}
	audit_close(a);
	return rc;
}

int
main(int argc, char *argv[])
{
	static const struct {
		const char *name;
		int (*fn)(int, char *[]);
	} cmds[] = {
		{ "request", cmd_request },
		{ "health", cmd_health },
		{ "policy", cmd_policy },
		{ "admin", cmd_admin },
		{ "audit", cmd_audit },
	};

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(top_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? EX_USAGE : EX_OK;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "safeshare: unknown command \"%s\"\n\n%s", argv[1], top_usage);
	return EX_USAGE;
}
