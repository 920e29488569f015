/*
 * safeshare audit ...: the auditor's and the Caldicott Guardian's commands
 * (D7, D15-D17). Online commands use the daemon's /v1/audit endpoints over
 * mutual TLS; `show`, `export --log` and `verify --log|--export` read a log
 * database or an export file directly, with only the public key, and
 * `show|verify|export --postgresql` the log on PostgreSQL (audit_pg_cmd.c). This
 * file parses the options and dispatches; the commands are in
 * audit_query_cmd.c and audit_verify_cmd.c (audit_cmd.h).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "audit_cmd.h"
#include "cli.h"
#include "safeshare/client.h"
#include "util.h"
#include "yamlutil.h"

enum { A_LOG = 2000, A_LAST, A_PUBKEY, A_EXPORT, A_OUT, A_SUBJECT, A_AGENCY,
    A_PRACTITIONER, A_PURPOSE, A_DECISION, A_REASON, A_KIND, A_OVERRIDES, A_FROM,
    A_TO, A_AFTER, A_LIMIT, A_ALL, A_BY, A_OUTCOME, A_NOTE, A_HTML, A_SINCE,
    A_WITNESS, A_WITNESS_KEY, A_MIN_WITNESSES, A_POSTGRESQL };

static const struct option longopts[] = {
	CONN_LONGOPTS,
	{ "log", required_argument, NULL, A_LOG },
	{ "last", required_argument, NULL, A_LAST },
	{ "pubkey", required_argument, NULL, A_PUBKEY },
	{ "export", required_argument, NULL, A_EXPORT },
	{ "out", required_argument, NULL, A_OUT },
	{ "subject", required_argument, NULL, A_SUBJECT },
	{ "agency", required_argument, NULL, A_AGENCY },
	{ "practitioner", required_argument, NULL, A_PRACTITIONER },
	{ "purpose", required_argument, NULL, A_PURPOSE },
	{ "decision", required_argument, NULL, A_DECISION },
	{ "reason", required_argument, NULL, A_REASON },
	{ "kind", required_argument, NULL, A_KIND },
	{ "overrides", no_argument, NULL, A_OVERRIDES },
	{ "from", required_argument, NULL, A_FROM },
	{ "to", required_argument, NULL, A_TO },
	{ "after", required_argument, NULL, A_AFTER },
	{ "limit", required_argument, NULL, A_LIMIT },
	{ "all", no_argument, NULL, A_ALL },
	{ "by", required_argument, NULL, A_BY },
	{ "outcome", required_argument, NULL, A_OUTCOME },
	{ "note", required_argument, NULL, A_NOTE },
	{ "html", required_argument, NULL, A_HTML },
	{ "since", required_argument, NULL, A_SINCE },
	{ "witness", required_argument, NULL, A_WITNESS },
	{ "witness-key", required_argument, NULL, A_WITNESS_KEY },
	{ "min-witnesses", required_argument, NULL, A_MIN_WITNESSES },
	{ "postgresql", required_argument, NULL, A_POSTGRESQL },
	{ NULL, 0, NULL, 0 }
};

static const char *const help =
    "usage: safeshare audit COMMAND [options]\n"
    "\n"
    "Over mutual TLS (auditor role; review: guardian or admin role):\n"
    "  query [filters] [--after SEQ] [--limit N] [--all]   entries, oldest first\n"
    "  stats --by agency|purpose|decision|reason|kind|day [filters]\n"
    "  subject-report SUBJECT       every disclosure and locate about one\n"
    "                               person (D17, D19)\n"
    "  reviews                      overrides used, and requests that invoked one\n"
    "                               and were denied, awaiting senior review (D15)\n"
    "  review SEQ --outcome upheld|not_upheld --note TEXT\n"
    "  inform                       inform-the-subject items outstanding (D6),\n"
    "                               with any waiver reason that was not accepted\n"
    "  inform-done SEQ --note TEXT\n"
    "  export --out FILE            entries and signed checkpoints (JSON lines)\n"
    "  verify                       the daemon recomputes chain and signatures\n"
    "  report [--from D] [--to D] [--agency A] (--html FILE | --json)\n"
    "                               charts and tables of the period: one HTML file\n"
    "                               with no script and no external resource, or JSON\n"
    "  alerts [--since SEQ] [--follow [--exec CMD]]   overrides, reviews, reloads,\n"
    "                               refused holder ops as they happen (guardian or\n"
    "                               auditor; see safeshare audit alerts --help)\n"
    "Offline, with only the files:\n"
    "  show --log DB [--last N]     print entries of a log database\n"
    "  export --log DB --out FILE   export a log database\n"
    "  verify --log DB|--export FILE --pubkey PEM [--pubkey PEM...] [--since NOTE]\n"
    "                               verify chain, tree and checkpoints; names the\n"
    "                               first bad entry or checkpoint. The first key\n"
    "                               starts the chain of keys (rotations), others\n"
    "                               are trusted; --since: a checkpoint note kept\n"
    "                               from before, which the log must still reach\n"
    "                               (--log: and checks the subject index DB-subjects)\n"
    "The log on PostgreSQL (docs/deploy-ha.md), read in one snapshot:\n"
    "  show --postgresql CONNINFO [--last N]   print entries, as show --log\n"
    "  verify --postgresql CONNINFO --pubkey PEM [--pubkey PEM...] [--since NOTE]\n"
    "  export --postgresql CONNINFO --out FILE   the same format as --log's,\n"
    "                               which verify --export FILE checks\n"
    "Witnesses (docs/audit-format.md):\n"
    "  witness --state FILE --pubkey KEY [--follow]   keep the latest checkpoint;\n"
    "                               alarm if the log is truncated, forked or rewritten\n"
    "  verify ... --witness FILE... --witness-key K... --min-witnesses N\n"
    "                               also: N of the keys co-signed the checkpoints in\n"
    "                               the witnesses' FILEs and the log (online, --log\n"
    "                               or --export) extends them all\n"
    "\n"
    "Filters: --subject --agency --practitioner --purpose --decision --reason\n"
    "--kind --overrides (only overrides that decided the outcome) --from YYYY-MM-DD\n"
    "--to YYYY-MM-DD. All commands take --json. Exit 0 ok, 1 the log does not\n"
    "verify or a local error, 4 refused.\n";

/* One entry as a JSON object: its fields by name, time as ISO 8601 UTC. */
json_t *
a_entry_json(const struct audit_entry *e)
{
	struct audit_entry	 tmp = *e;
	const char		**s[AUDIT_NSTRINGS];
	char			 when[32];
	time_t			 t = (time_t)e->time;
	json_t			*o;

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	audit_entry_strings(&tmp, s);
	o = json_pack("{s:o,s:s,s:o}", "seq", jsonw_u64(e->seq), "time", when,
	    "ref_seq", jsonw_u64(e->ref_seq));
	for (int i = 0; i < AUDIT_NSTRINGS; i++)
		jsonw_set(o, audit_string_names[i], jsonw_str(*s[i]));
	jsonw_set(o, "hash", jsonw_hex(e->hash, 32));
	return o;
}

/*
 * One entry as the next element of seq, or as a text line when seq is
 * NULL; used online and offline. -1 once stdout failed a write.
 */
int
a_print_entry(const struct audit_entry *e, struct jsonw_seq *seq)
{
	char	 when[32];
	time_t	 t = (time_t)e->time;

	if (seq != NULL)
		return jsonw_seq_add(seq, a_entry_json(e));
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	printf("#%-6" PRIu64 " %s %-11s %-12s %-22s agency=%s subject=%s "
	    "purpose=%s rule=%s", e->seq, when, T(e->kind), T(e->decision),
	    T(e->reason), *e->agency ? T(e->agency) : "-",
	    *e->subject ? T(e->subject) : "-", *e->purpose ? T(e->purpose) : "-",
	    *e->rule_id ? T(e->rule_id) : "-");
	if (*e->override_code)
		printf(" override=%s", T(e->override_code));
	if (e->ref_seq)
		printf(" about=#%" PRIu64, e->ref_seq);
	if (*e->released)
		printf(" released=[%s]", T(e->released));
	if (*e->withheld)
		printf(" withheld=[%s]", T(e->withheld));
	printf("\n");
	return ferror(stdout) ? -1 : 0;
}

/* Calls an audit endpoint; returns an exit code, *resp set on success. */
int
a_call(struct ss_client *c, const char *path, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp)
{
	Safeshare__V1__Error	*e;
	char			 err[512];
	int			 status;

	if (ss_call_message(c, path, req, desc, resp, &e, &status, err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		return SS_EXIT_NOANSWER;
	}
	if (e != NULL) {
		cli_refused(status, e);
		safeshare__v1__error__free_unpacked(e, NULL);
		return SS_EXIT_REFUSED;
	}
	return SS_EXIT_OK;
}

/* The verify document the witnesses' verdict is added to (taken). */
static json_t *
verdict(struct aopts *o)
{
	json_t *v = o->verdict != NULL ? o->verdict : json_object();

	o->verdict = NULL;
	return v;
}

static int
parse_date(const char *s, int64_t *out)
{
	if (date_parse(s, out) == 0)
		return 0;
	fprintf(stderr, "safeshare: dates are YYYY-MM-DD, got \"%s\"\n", s);
	return -1;
}

int
cmd_audit(int argc, char *argv[])
{
	struct aopts		 o;
	struct ss_client	*c;
	const char		*sub, *arg = NULL;
	int			 ch, rc;

	memset(&o, 0, sizeof(o));
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(help, argc < 2 ? stderr : stdout);
		return argc < 2 ? SS_EXIT_USAGE : SS_EXIT_OK;
	}
	sub = argv[1];
	if (strcmp(sub, "witness") == 0)
		return cmd_witness(argc - 1, argv + 1);
	if (strcmp(sub, "alerts") == 0)
		return cmd_feed(1, argc - 1, argv + 1);
	argc--;
	argv++;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (conn_opt(ch, &o.conn, &o.json))
			continue;
		switch (ch) {
		case A_LOG: o.log = optarg; break;
		case A_LAST: o.last = strtoull(optarg, NULL, 10); break;
		case A_PUBKEY:
			if (o.npubkeys == MAX_PUBKEYS) {
				fprintf(stderr, "safeshare: at most %d --pubkey\n",
				    MAX_PUBKEYS);
				return SS_EXIT_USAGE;
			}
			o.pubkeys[o.npubkeys++] = optarg;
			if (o.pubkey == NULL)
				o.pubkey = optarg;
			break;
		case A_SINCE: o.since = optarg; break;
		case A_POSTGRESQL: o.pg = optarg; break;
		case A_EXPORT: o.export = optarg; break;
		case A_OUT: o.out = optarg; break;
		case A_SUBJECT: o.subject = optarg; break;
		case A_AGENCY: o.agency = optarg; break;
		case A_PRACTITIONER: o.practitioner = optarg; break;
		case A_PURPOSE: o.purpose = optarg; break;
		case A_DECISION: o.decision = optarg; break;
		case A_REASON: o.reason = optarg; break;
		case A_KIND: o.kind = optarg; break;
		case A_OVERRIDES: o.overrides = 1; break;
		case A_FROM: if (parse_date(optarg, &o.from) == -1) return SS_EXIT_USAGE; break;
		case A_TO:
			if (parse_date(optarg, &o.to) == -1)
				return SS_EXIT_USAGE;
			o.to += 86400;	/* --to is inclusive of that day */
			break;
		case A_AFTER: o.after = strtoull(optarg, NULL, 10); break;
		case A_LIMIT: o.limit = (uint32_t)strtoul(optarg, NULL, 10); break;
		case A_ALL: o.all = 1; break;
		case A_BY: o.by = optarg; break;
		case A_OUTCOME: o.outcome = optarg; break;
		case A_NOTE: o.note = optarg; break;
		case A_HTML: o.html = optarg; break;
		case A_WITNESS:
		case A_WITNESS_KEY:
			if ((ch == A_WITNESS ? o.nwitness : o.nwkeys) == MAX_WITNESSES) {
				fprintf(stderr, "safeshare: at most %d witnesses\n",
				    MAX_WITNESSES);
				return SS_EXIT_USAGE;
			}
			if (ch == A_WITNESS)
				o.witness[o.nwitness++] = optarg;
			else
				o.wkeys[o.nwkeys++] = optarg;
			break;
		case A_MIN_WITNESSES:
			o.min_witnesses = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case O_HELP: fputs(help, stdout); return SS_EXIT_OK;
		default: fputs(help, stderr); return SS_EXIT_USAGE;
		}
	}
	if (optind < argc)
		arg = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "safeshare: unexpected argument \"%s\"\n", argv[optind]);
		return SS_EXIT_USAGE;
	}
	/* Offline forms work on files and need no server. */
	if (o.pg != NULL && (o.log != NULL || o.export != NULL ||
	    (strcmp(sub, "verify") != 0 && strcmp(sub, "export") != 0 &&
	    strcmp(sub, "show") != 0))) {
		fprintf(stderr, "safeshare: --postgresql works with audit show, verify "
		    "and export, without --log or --export\n");
		return SS_EXIT_USAGE;
	}
	if (o.pg != NULL && (o.nwitness > 0 || o.min_witnesses > 0)) {
		fprintf(stderr, "safeshare: --witness works with audit verify online, "
		    "--log or --export (export the PostgreSQL log first)\n");
		return SS_EXIT_USAGE;
	}
	if (strcmp(sub, "show") == 0 || ((strcmp(sub, "verify") == 0 ||
	    strcmp(sub, "export") == 0) && (o.log != NULL || o.export != NULL ||
	    o.pg != NULL))) {
		if (o.log == NULL && o.export == NULL && o.pg == NULL) {
			fprintf(stderr, "safeshare: audit %s needs --log FILE\n", sub);
			return SS_EXIT_USAGE;
		}
		rc = a_offline(&o, sub);
		/* Witness co-signatures (docs/audit-format.md, "Witnesses"). */
		if (strcmp(sub, "verify") == 0 && (o.nwitness > 0 ||
		    o.min_witnesses > 0)) {
			int wrc = witness_verify(o.witness, o.nwitness, o.wkeys,
			    o.nwkeys, o.min_witnesses, o.pubkey, o.log, o.export,
			    NULL, o.json ? verdict(&o) : NULL);

			if (rc == SS_EXIT_OK)
				rc = wrc;
		} else if (o.nwitness > 0 || o.min_witnesses > 0) {
			fprintf(stderr, "safeshare: --witness works with audit verify, "
			    "online, --log or --export\n");
			rc = SS_EXIT_USAGE;
		}
		return rc;
	}
	if (strcmp(sub, "query") != 0 && strcmp(sub, "stats") != 0 &&
	    strcmp(sub, "subject-report") != 0 && strcmp(sub, "reviews") != 0 &&
	    strcmp(sub, "review") != 0 && strcmp(sub, "inform") != 0 &&
	    strcmp(sub, "inform-done") != 0 && strcmp(sub, "export") != 0 &&
	    strcmp(sub, "verify") != 0 && strcmp(sub, "report") != 0) {
		fprintf(stderr, "safeshare: unknown audit command \"%s\"\n\n%s", sub, help);
		return SS_EXIT_USAGE;
	}
	if ((strcmp(sub, "subject-report") == 0 || strcmp(sub, "review") == 0 ||
	    strcmp(sub, "inform-done") == 0) && arg == NULL) {
		fprintf(stderr, "safeshare: audit %s needs an argument\n", sub);
		return SS_EXIT_USAGE;
	}
	if (strcmp(sub, "export") == 0 && o.out == NULL) {
		fprintf(stderr, "safeshare: audit export needs --out FILE\n");
		return SS_EXIT_USAGE;
	}
	if (strcmp(sub, "report") == 0 && (o.html == NULL) == (o.json == 0)) {
		fprintf(stderr, "safeshare: audit report needs --html FILE or --json\n");
		return SS_EXIT_USAGE;
	}
	if ((rc = connect_client(&o.conn, &c)) != SS_EXIT_OK)
		return rc;
	if (strcmp(sub, "query") == 0)
		rc = a_query(c, &o);
	else if (strcmp(sub, "stats") == 0)
		rc = a_stats(c, &o);
	else if (strcmp(sub, "subject-report") == 0)
		rc = a_subject_report(c, &o, arg);
	else if (strcmp(sub, "reviews") == 0)
		rc = a_pending(c, &o, "/v1/audit/reviews",
		    "request(s) awaiting review");
	else if (strcmp(sub, "inform") == 0)
		rc = a_pending(c, &o, "/v1/audit/inform", "subject(s) to be informed");
	else if (strcmp(sub, "review") == 0)
		rc = a_note(c, &o, "/v1/audit/review", arg, 1);
	else if (strcmp(sub, "inform-done") == 0)
		rc = a_note(c, &o, "/v1/audit/inform/done", arg, 0);
	else if (strcmp(sub, "export") == 0)
		rc = a_export_online(c, &o);
	else if (strcmp(sub, "report") == 0)
		rc = a_report(c, &o);
	else {
		rc = a_verify_online(c, &o);
		if (o.nwitness > 0 || o.min_witnesses > 0) {
			int wrc = witness_verify(o.witness, o.nwitness, o.wkeys,
			    o.nwkeys, o.min_witnesses, o.pubkey, NULL, NULL, c,
			    o.json ? verdict(&o) : NULL);

			if (rc == SS_EXIT_OK)
				rc = wrc;
		}
	}
	ss_client_free(c);
	return rc;
}
