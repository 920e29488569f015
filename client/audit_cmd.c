/*
 * safeshare audit ...: the auditor's and the Caldicott Guardian's commands
 * (D7, D15-D17). Online commands use the daemon's /v1/audit endpoints over
 * mutual TLS; `show`, `export --log` and `verify --log|--export` read a log
 * database or an export file directly, with only the public key.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "audit_pb.h"
#include "auditfile.h"
#include "cli.h"
#include "policy.h"
#include "report_out.h"
#include "safeshare/client.h"
#include "util.h"
#include "yamlutil.h"

enum { A_LOG = 2000, A_LAST, A_PUBKEY, A_EXPORT, A_OUT, A_SUBJECT, A_AGENCY,
    A_PRACTITIONER, A_PURPOSE, A_DECISION, A_REASON, A_KIND, A_OVERRIDES, A_FROM,
    A_TO, A_AFTER, A_LIMIT, A_ALL, A_BY, A_OUTCOME, A_NOTE, A_HTML, A_SINCE,
    A_WITNESS, A_WITNESS_KEY, A_MIN_WITNESSES };
#define MAX_PUBKEYS	8

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

#define MAX_WITNESSES	32

struct aopts {
	struct conn_opts	 conn;
	char			*witness[MAX_WITNESSES];	/* witnesses' state files */
	char			*wkeys[MAX_WITNESSES];	/* their verifier keys */
	size_t			 nwitness, nwkeys;
	unsigned		 min_witnesses;
	int			 json, all, overrides;
	const char		*log, *pubkey, *export, *out, *by, *outcome, *note;
	const char		*html;
	const char		*pubkeys[MAX_PUBKEYS], *since;
	size_t			 npubkeys;
	const char		*subject, *agency, *practitioner, *purpose, *decision;
	const char		*reason, *kind;
	int64_t			 from, to;
	uint64_t		 after, last;
	uint32_t		 limit;
	struct jsonw_seq	 seq;		/* audit show --json */
	json_t			*verdict;	/* verify --json, held for witnesses */
};

/* One entry as a JSON object: its fields by name, time as ISO 8601 UTC. */
static json_t *
entry_json(const struct audit_entry *e)
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
 * NULL; used online and offline.
 */
static void
print_entry(const struct audit_entry *e, struct jsonw_seq *seq)
{
	char	 when[32];
	time_t	 t = (time_t)e->time;

	if (seq != NULL) {
		jsonw_seq_add(seq, entry_json(e));
		return;
	}
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
}

/* Calls an audit endpoint; returns an exit code, *resp set on success. */
static int
call(struct ss_client *c, const char *path, const ProtobufCMessage *req,
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

static void
query_of(const struct aopts *o, Safeshare__V1__AuditQuery *q)
{
	safeshare__v1__audit_query__init(q);
#define F(m, v) if (v) q->m = (char *)(v)
	F(subject, o->subject); F(agency, o->agency); F(practitioner, o->practitioner);
	F(purpose, o->purpose); F(decision, o->decision); F(reason, o->reason);
	F(kind, o->kind);
#undef F
	q->overrides_only = o->overrides;
	q->from_time = o->from;
	q->to_time = o->to;
	q->after_seq = o->after;
	q->limit = o->limit;
	if (o->by)
		q->group_by = (char *)o->by;
}

static int
a_query(struct ss_client *c, struct aopts *o)
{
	Safeshare__V1__AuditQuery	 q;
	Safeshare__V1__AuditEntries	*r;
	struct jsonw_seq		 seq, *sp = o->json ? &seq : NULL;
	int				 rc, n = 0;

	query_of(o, &q);
	if (sp != NULL)
		jsonw_seq_begin(sp, stdout);
	for (;;) {
		if ((rc = call(c, "/v1/audit/query", &q.base,
		    &safeshare__v1__audit_entries__descriptor, (ProtobufCMessage **)&r)) != SS_EXIT_OK) {
			if (sp != NULL)
				jsonw_seq_end(sp);
			return rc;
		}
		for (size_t i = 0; i < r->n_entries; i++) {
			struct audit_entry e;

			audit_entry_from_pb(r->entries[i], &e);
			print_entry(&e, sp);
			n++;
		}
		q.after_seq = r->next_after_seq;
		safeshare__v1__audit_entries__free_unpacked(r, NULL);
		if (q.after_seq == 0)
			break;
		if (!o->all) {
			if (!o->json)
				fprintf(stderr, "more: --after %" PRIu64 " (or --all)\n",
				    q.after_seq);
			break;
		}
	}
	if (sp != NULL)
		jsonw_seq_end(sp);
	else if (n == 0)
		fprintf(stderr, "no entries match\n");
	return SS_EXIT_OK;
}

static int
a_stats(struct ss_client *c, struct aopts *o)
{
	Safeshare__V1__AuditQuery	 q;
	Safeshare__V1__AuditStats	*r;
	uint64_t			 total = 0;
	json_t				*rows = json_array();
	int				 rc;

	query_of(o, &q);
	if ((rc = call(c, "/v1/audit/stats", &q.base,
	    &safeshare__v1__audit_stats__descriptor, (ProtobufCMessage **)&r)) != SS_EXIT_OK) {
		json_decref(rows);
		return rc;
	}
	if (!o->json)
		printf("%-32s %10s\n", T(r->group_by), "entries");
	for (size_t i = 0; i < r->n_rows; i++) {
		if (o->json)
			json_array_append_new(rows, json_pack("{s:o,s:o}",
			    "key", jsonw_str(r->rows[i]->key),
			    "count", jsonw_u64(r->rows[i]->count)));
		else
			printf("%-32s %10" PRIu64 "\n", r->rows[i]->key[0] ?
			    T(r->rows[i]->key) : "(none)", r->rows[i]->count);
		total += r->rows[i]->count;
	}
	if (o->json)
		jsonw_print(stdout, json_pack("{s:o,s:o}", "group_by",
		    jsonw_str(r->group_by), "rows", rows));
	else {
		json_decref(rows);
		printf("%-32s %10" PRIu64 "\n", "total", total);
	}
	safeshare__v1__audit_stats__free_unpacked(r, NULL);
	return SS_EXIT_OK;
}

static int
a_subject_report(struct ss_client *c, struct aopts *o, const char *subject)
{
	Safeshare__V1__AuditQuery	 q;
	Safeshare__V1__AuditEntries	*r;
	json_t				*list[2] = { json_array(), json_array() };
	int				 rc;
	uint64_t			 n = 0;
	char				 when[32];
	time_t				 now = time(NULL);

	safeshare__v1__audit_query__init(&q);
	q.subject = (char *)subject;
	q.kind = "disclosure";
	q.limit = 1000;
	if (!o->json) {
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", gmtime(&now));
		printf("SUBJECT ACCESS REPORT (D17)\nsubject: %s\nproduced: %s\n\n"
		    "Every request for information about this person, who made it, "
		    "when, why,\nand what was released or withheld.\n\n", T(subject), when);
	}
	/* Disclosures, then locates: who asked which holders hold records (D19). */
	for (int pass = 0; pass < 2; pass++) {
	if (pass == 1) {
		q.kind = "locate";
		q.after_seq = 0;
		if (!o->json)
			printf("%" PRIu64 " request%s recorded.\n\nLOCATES (D19): who asked "
			    "which holders hold records about this person.\n\n", n,
			    n == 1 ? "" : "s");
		n = 0;
	}
	do {
		if ((rc = call(c, "/v1/audit/query", &q.base,
		    &safeshare__v1__audit_entries__descriptor, (ProtobufCMessage **)&r)) != SS_EXIT_OK) {
			json_decref(list[0]);
			json_decref(list[1]);
			return rc;
		}
		for (size_t i = 0; i < r->n_entries; i++) {
			const Safeshare__V1__LogEntry	*m = r->entries[i];
			struct audit_entry		 e;
			time_t				 t = (time_t)m->time;

			n++;
			if (o->json) {
				audit_entry_from_pb(m, &e);
				json_array_append_new(list[pass], entry_json(&e));
				continue;
			}
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", gmtime(&t));
			printf("%" PRIu64 ". %s  (log entry %" PRIu64 ")\n", n, when, m->seq);
			printf("   requested by: %s, practitioner %s, case %s\n",
			    T(m->agency), T(m->practitioner), T(m->case_ref));
			printf("   purpose:      %s (%s)\n", T(m->purpose),
			    m->lawful_basis[0] ? T(m->lawful_basis) :
			    "no lawful basis: denied");
			if (pass == 1) {
				printf("   answered:     %s (%s)\n", m->released[0] ?
				    T(m->released) : "no holder", T(m->reason));
				if (m->withheld[0])
					printf("   left out:     %s\n", T(m->withheld));
				printf("\n");
				continue;
			}
			printf("   decision:     %s (%s)%s%s\n", T(m->decision),
			    T(m->reason), m->rule_id[0] ? ", rule " : "", T(m->rule_id));
			if (m->override_code[0] && strcmp(m->decision, "deny") != 0)
				printf("   without consent under the exception: %s\n",
				    T(m->override_code));
			printf("   released:     %s\n", m->released[0] ? T(m->released) :
			    "nothing");
			if (m->withheld[0])
				printf("   withheld:     %s\n", T(m->withheld));
			printf("\n");
		}
		q.after_seq = r->next_after_seq;
		safeshare__v1__audit_entries__free_unpacked(r, NULL);
	} while (q.after_seq != 0);
	}
	if (o->json)
		jsonw_print(stdout, json_pack("{s:o,s:o,s:o}", "subject",
		    jsonw_str(subject), "disclosures", list[0], "locates", list[1]));
	else {
		json_decref(list[0]);
		json_decref(list[1]);
		printf("%" PRIu64 " locate%s recorded.\n", n, n == 1 ? "" : "s");
	}
	return SS_EXIT_OK;
}

static int
a_pending(struct ss_client *c, struct aopts *o, const char *path, const char *what)
{
	Safeshare__V1__AuditEntries	*r;
	struct jsonw_seq		 seq;
	int				 rc;

	if ((rc = call(c, path, NULL, &safeshare__v1__audit_entries__descriptor,
	    (ProtobufCMessage **)&r)) != SS_EXIT_OK)
		return rc;
	if (o->json)
		jsonw_seq_begin(&seq, stdout);
	for (size_t i = 0; i < r->n_entries; i++) {
		const Safeshare__V1__LogEntry	*m = r->entries[i];
		struct audit_entry		 e;
		char				 when[32];
		time_t				 t = (time_t)m->time;

		if (o->json) {
			audit_entry_from_pb(m, &e);
			print_entry(&e, &seq);
			continue;
		}
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M", gmtime(&t));
		printf("#%-6" PRIu64 " %s  %s about %s for %s under %s\n         "
		    "justification: %s\n", m->seq, when, T(m->agency), T(m->subject),
		    T(m->purpose), T(m->override_code), T(m->justification));
		/* A denied emergency request is reviewed too (D15). */
		if (strcmp(m->decision, "deny") == 0)
			printf("         refused: %s; nothing was released\n", T(m->reason));
		/*
		 * The practitioner said telling the subject would increase
		 * risk, in words that did not pass (D6): whoever tells the
		 * subject must see it first.
		 */
		if (strncmp(m->inform_waiver, POLICY_WAIVER_REJECTED,
		    strlen(POLICY_WAIVER_REJECTED)) == 0)
			printf("         WARNING: the practitioner gave a reason not to "
			    "inform the subject, not accepted as one: %s\n",
			    T(m->inform_waiver + strlen(POLICY_WAIVER_REJECTED)));
	}
	if (o->json)
		jsonw_seq_end(&seq);
	else
		printf("%zu %s\n", r->n_entries, what);
	safeshare__v1__audit_entries__free_unpacked(r, NULL);
	return SS_EXIT_OK;
}

static int
a_note(struct ss_client *c, struct aopts *o, const char *path, const char *seqs,
    int review)
{
	Safeshare__V1__ReviewRequest	 rq = SAFESHARE__V1__REVIEW_REQUEST__INIT;
	Safeshare__V1__ReviewResult	*r;
	char				 outcome[32];
	int				 rc;

	rq.seq = strtoull(seqs, NULL, 10);
	if (rq.seq == 0 || o->note == NULL || (review && o->outcome == NULL)) {
		fprintf(stderr, "safeshare: usage: safeshare audit %s SEQ %s--note TEXT\n",
		    review ? "review" : "inform-done",
		    review ? "--outcome upheld|not_upheld " : "");
		return SS_EXIT_USAGE;
	}
	if (review) {
		/* One spelling, not_upheld (as on the wire and in the log); the
		 * old not-upheld is still taken. */
		snprintf(outcome, sizeof(outcome), "%s", o->outcome);
		for (char *p = outcome; *p; p++)
			if (*p == '-')
				*p = '_';
		rq.outcome = outcome;
	}
	rq.note = (char *)o->note;
	if ((rc = call(c, path, &rq.base, &safeshare__v1__review_result__descriptor,
	    (ProtobufCMessage **)&r)) != SS_EXIT_OK)
		return rc;
	if (o->json)
		jsonw_print(stdout, json_pack("{s:o}", "disclosure_id",
		    jsonw_u64(r->disclosure_id)));
	else
		printf("recorded as log entry %" PRIu64 "\n", r->disclosure_id);
	safeshare__v1__review_result__free_unpacked(r, NULL);
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

static void
progress(uint64_t done, uint64_t total)
{
	if (isatty(2) && total > 0)
		fprintf(stderr, "\rexporting: %" PRIu64 "/%" PRIu64 " (%d%%)", done, total,
		    (int)(done * 100 / total));
}

static int
a_export_online(struct ss_client *c, struct aopts *o)
{
	Safeshare__V1__CheckpointList	*cl;
	Safeshare__V1__AuditQuery	 q;
	Safeshare__V1__AuditEntries	*r;
	unsigned char			 id[16] = { 0 };
	uint64_t			 n = 0;
	FILE				*fp;
	int				 rc;

	if ((rc = call(c, "/v1/audit/checkpoints", NULL,
	    &safeshare__v1__checkpoint_list__descriptor, (ProtobufCMessage **)&cl)) != SS_EXIT_OK)
		return rc;
	if ((fp = fopen(o->out, "w")) == NULL) {
		perror(o->out);
		safeshare__v1__checkpoint_list__free_unpacked(cl, NULL);
		return SS_EXIT_LOCAL;
	}
	if (cl->log_id.len == 16)
		memcpy(id, cl->log_id.data, 16);
	safeshare__v1__audit_query__init(&q);
	q.limit = 1000;
	/* The first page tells the log's size, which the header records. */
	if ((rc = call(c, "/v1/audit/query", &q.base,
	    &safeshare__v1__audit_entries__descriptor, (ProtobufCMessage **)&r)) != SS_EXIT_OK) {
		fclose(fp);
		safeshare__v1__checkpoint_list__free_unpacked(cl, NULL);
		return rc;
	}
	auditfile_header(fp, id, r->log_size, cl->n_checkpoints, cl->public_key_pem);
	for (size_t i = 0; i < cl->n_checkpoints; i++) {
		struct audit_checkpoint cp;

		memset(&cp, 0, sizeof(cp));
		memcpy(cp.log_id, id, 16);
		cp.id = cl->checkpoints[i]->id;
		cp.size = cl->checkpoints[i]->size;
		cp.time = cl->checkpoints[i]->time;
		if (cl->checkpoints[i]->head_hash.len == 32)
			memcpy(cp.head, cl->checkpoints[i]->head_hash.data, 32);
		if (cl->checkpoints[i]->signature.len == 64)
			memcpy(cp.sig, cl->checkpoints[i]->signature.data, 64);
		cp.note = cl->checkpoints[i]->note;
		auditfile_checkpoint(fp, &cp);
	}
	safeshare__v1__checkpoint_list__free_unpacked(cl, NULL);
	for (;;) {
		for (size_t i = 0; i < r->n_entries; i++) {
			struct audit_entry e;

			audit_entry_from_pb(r->entries[i], &e);
			auditfile_entry(fp, &e);
			n++;
		}
		progress(n, r->log_size);
		q.after_seq = r->next_after_seq;
		safeshare__v1__audit_entries__free_unpacked(r, NULL);
		if (q.after_seq == 0)
			break;
		if ((rc = call(c, "/v1/audit/query", &q.base,
		    &safeshare__v1__audit_entries__descriptor, (ProtobufCMessage **)&r)) != SS_EXIT_OK) {
			fclose(fp);
			return rc;
		}
	}
	if (fclose(fp) != 0) {
		perror(o->out);
		return SS_EXIT_LOCAL;
	}
	if (isatty(2))
		fputc('\n', stderr);
	printf("exported %" PRIu64 " entries to %s\n", n, o->out);
	return SS_EXIT_OK;
}

static int
print_offline(const struct audit_entry *e, void *arg)
{
	struct aopts	*o = arg;

	print_entry(e, o->json ? &o->seq : NULL);
	return 0;
}

struct exp {
	FILE		*fp;
	uint64_t	 n, total;
};

static int
export_cp(const struct audit_checkpoint *cp, void *arg)
{
	auditfile_checkpoint(((struct exp *)arg)->fp, cp);
	return 0;
}

static int
export_entry(const struct audit_entry *e, void *arg)
{
	struct exp *x = arg;

	auditfile_entry(x->fp, e);
	if (++x->n % 10000 == 0)
		progress(x->n, x->total);
	return 0;
}

static int
count_cp(const struct audit_checkpoint *cp, void *arg)
{
	(*(uint64_t *)arg)++;
	return 0;
}

/*
 * The subject index disagrees with the log, or could not be checked:
 * subject-access reports may be wrong (D17).
 */
static int
index_bad(const struct audit_verify_result *r)
{
	return r->index_error ||
	    (r->index_checked && (r->index_missing > 0 || r->index_extra > 0));
}

/* The chain's verdict, then the subject index's (ix names the index). */
static void
print_result(const struct audit_verify_result *r, const char *what, const char *ix,
    struct aopts *o)
{
	if (o->json) {
		json_t *v = json_pack("{s:b,s:o,s:o,s:b,s:o,s:o,s:o}",
		    "ok", r->ok && !index_bad(r), "entries", jsonw_u64(r->entries),
		    "checkpoints", jsonw_u64(r->checkpoints),
		    "signatures_checked", r->signatures_checked,
		    "bad_seq", jsonw_u64(r->bad_seq),
		    "bad_checkpoint", jsonw_u64(r->bad_checkpoint),
		    "why", jsonw_str(r->why));

		if (r->index_error)
			jsonw_set(v, "index", json_pack("{s:b,s:o}", "ok", 0,
			    "error", jsonw_str(r->index_why)));
		else if (r->index_checked)
			jsonw_set(v, "index", json_pack("{s:b,s:o,s:o,s:o}",
			    "ok", !index_bad(r), "upto", jsonw_u64(r->index_upto),
			    "missing", jsonw_u64(r->index_missing),
			    "extra", jsonw_u64(r->index_extra)));
		/* With witnesses, their verdict joins this one document. */
		if (o->nwitness > 0 || o->min_witnesses > 0)
			o->verdict = v;
		else
			jsonw_print(stdout, v);
		return;
	}
	if (r->ok)
		printf("%s: ok, %" PRIu64 " entries, chain intact, %" PRIu64 " signed "
		    "checkpoints verified%s\n", what, r->entries, r->checkpoints,
		    r->signatures_checked ? "" : " (NOT signed: the log has no "
		    "checkpoints and no key was given; only the chain was checked)");
	else if (r->bad_seq == 0 && r->bad_checkpoint != 0)
		fprintf(stderr, "%s: FAILED at checkpoint %" PRIu64 ": %s\n", what,
		    r->bad_checkpoint, r->why);
	else
		fprintf(stderr, "%s: FAILED at entry %" PRIu64 ": %s\n", what, r->bad_seq,
		    r->why);
	if (r->index_error)
		fprintf(stderr, "%s: FAILED: the subject index could not be checked: %s\n",
		    ix, r->index_why);
	else if (index_bad(r))
		fprintf(stderr, "%s: FAILED: the subject index disagrees with the log up "
		    "to entry %" PRIu64 " (%" PRIu64 " entries missing, %" PRIu64 " rows "
		    "the log does not have); delete the index file: the daemon builds it "
		    "again\n", ix, r->index_upto, r->index_missing, r->index_extra);
	else if (r->index_checked)
		printf("%s: ok, the subject index agrees with the log up to entry %"
		    PRIu64 "\n", ix, r->index_upto);
}

/* Reads a checkpoint note the auditor kept (--since); the caller frees it. */
static char *
read_note(const char *path, char *err, size_t errlen)
{
	FILE	*fp;
	char	*buf = xcalloc(AUDIT_NOTE_MAX + 2, 1);
	size_t	 n;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(buf);
		return NULL;
	}
	n = fread(buf, 1, AUDIT_NOTE_MAX + 1, fp);
	fclose(fp);
	if (n == 0 || n > AUDIT_NOTE_MAX) {
		snprintf(err, errlen, "%s: not a checkpoint note (empty, or over %d "
		    "bytes)", path, AUDIT_NOTE_MAX);
		free(buf);
		return NULL;
	}
	return buf;
}

static int
a_offline(struct aopts *o, const char *sub)
{
	struct audit_verify_result	 r;
	struct audit			*a = NULL;
	EVP_PKEY			*pub = NULL, *keys[MAX_PUBKEYS];
	char				 err[512], *since = NULL;
	size_t				 nkeys = 0;
	int				 rc = SS_EXIT_OK;

	/* The first --pubkey starts the chain of keys; the others are trusted. */
	for (size_t i = 0; i < o->npubkeys; i++) {
		if ((keys[nkeys] = audit_load_public_key(o->pubkeys[i], err,
		    sizeof(err))) == NULL) {
			fprintf(stderr, "safeshare: %s\n", err);
			rc = SS_EXIT_LOCAL;
			goto done;
		}
		nkeys++;
	}
	pub = nkeys > 0 ? keys[0] : NULL;
	if (o->since != NULL && (since = read_note(o->since, err, sizeof(err))) == NULL) {
		fprintf(stderr, "safeshare: %s\n", err);
		rc = SS_EXIT_LOCAL;
		goto done;
	}
	if (strcmp(sub, "verify") == 0 && o->export != NULL) {
		/* The verifier fails a log with checkpoints and no key: no pass. */
		auditfile_verify_keys(o->export, keys, nkeys, since, &r);
		print_result(&r, o->export, NULL, o);
		rc = r.ok ? SS_EXIT_OK : SS_EXIT_LOCAL;
		goto done;
	}
	if (audit_open_reader(&a, o->log, err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		rc = SS_EXIT_LOCAL;
		goto done;
	}
	if (strcmp(sub, "show") == 0) {
		uint64_t size = audit_size(a);
		uint64_t from = o->last > 0 && o->last < size ? size - o->last + 1 : 1;

		if (o->json)
			jsonw_seq_begin(&o->seq, stdout);
		if (audit_scan(a, from, 0, print_offline, o) == -1) {
			fprintf(stderr, "safeshare: %s\n", audit_errmsg(a));
			rc = SS_EXIT_LOCAL;
		}
		if (o->json)
			jsonw_seq_end(&o->seq);
	} else if (strcmp(sub, "verify") == 0) {
		struct audit_verifier	*v;
		unsigned char		 id[16];
		char			 ix[4200];

		audit_log_id(a, id);
		v = audit_verifier_new(pub, id);
		for (size_t i = 1; i < nkeys; i++)
			audit_verifier_trust(v, keys[i]);
		if (since != NULL && audit_verifier_since(v, since, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "safeshare: %s\n", err);
			audit_verifier_free(v);
			rc = SS_EXIT_LOCAL;
			goto done;
		}
		audit_verify_with(a, v, &r);
		/*
		 * The subject index beside the log is outside the chain, and
		 * subject-access reports (D17) read it: it must agree.
		 */
		audit_verify_index(a, &r);	/* a failure is index_bad() */
		snprintf(ix, sizeof(ix), "%s-subjects", o->log);
		print_result(&r, o->log, ix, o);
		if (!r.ok || index_bad(&r))
			rc = SS_EXIT_LOCAL;
	} else {	/* export */
		struct exp	 x = { NULL, 0, audit_size(a) };
		unsigned char	 id[16];
		uint64_t	 ncp = 0;

		if (o->out == NULL || (x.fp = fopen(o->out, "w")) == NULL) {
			fprintf(stderr, "safeshare: export needs --out FILE\n");
			rc = o->out == NULL ? SS_EXIT_USAGE : SS_EXIT_LOCAL;
		} else {
			audit_log_id(a, id);
			audit_checkpoints(a, count_cp, &ncp);
			auditfile_header(x.fp, id, x.total, ncp, NULL);
			if (audit_checkpoints(a, export_cp, &x) == -1 ||
			    audit_scan(a, 1, 0, export_entry, &x) == -1 || fclose(x.fp) != 0) {
				fprintf(stderr, "safeshare: export failed: %s\n", audit_errmsg(a));
				rc = SS_EXIT_LOCAL;
			} else {
				if (isatty(2))
					fputc('\n', stderr);
				printf("exported %" PRIu64 " entries and %" PRIu64 " checkpoints "
				    "to %s\n", x.n, ncp, o->out);
			}
		}
	}
done:
	audit_close(a);
	for (size_t i = 0; i < nkeys; i++)
		EVP_PKEY_free(keys[i]);
	free(since);
	return rc;
}

static int
a_verify_online(struct ss_client *c, struct aopts *o)
{
	Safeshare__V1__VerifyResult	*v;
	struct audit_verify_result	 r;
	int				 rc;

	if ((rc = call(c, "/v1/audit/verify", NULL, &safeshare__v1__verify_result__descriptor,
	    (ProtobufCMessage **)&v)) != SS_EXIT_OK)
		return rc;
	memset(&r, 0, sizeof(r));
	r.ok = v->ok;
	r.entries = v->entries;
	r.checkpoints = v->checkpoints;
	r.bad_seq = v->bad_seq;
	r.bad_checkpoint = v->bad_checkpoint;
	r.signatures_checked = v->signatures_checked;
	r.index_checked = v->index_checked;
	r.index_upto = v->index_upto;
	r.index_missing = v->index_missing;
	r.index_extra = v->index_extra;
	r.index_error = v->index_error;
	snprintf(r.index_why, sizeof(r.index_why), "%s", v->index_why);
	snprintf(r.why, sizeof(r.why), "%s", v->why);
	print_result(&r, "disclosure log (verified by the daemon)",
	    "subject index (checked by the daemon)", o);
	safeshare__v1__verify_result__free_unpacked(v, NULL);
	return r.ok && !index_bad(&r) ? SS_EXIT_OK : SS_EXIT_LOCAL;
}

/*
 * The report (issue 21): the daemon's aggregates, its verification of the
 * log and the latest signed checkpoint, as one HTML file (written whole or
 * not at all) or one JSON document on stdout.
 */
static int
a_report(struct ss_client *c, struct aopts *o)
{
	Safeshare__V1__AuditReport	*r = NULL;
	Safeshare__V1__VerifyResult	*v = NULL;
	Safeshare__V1__CheckpointList	*cl = NULL;
	Safeshare__V1__Error		*e = NULL;
	struct report_context		 x;
	char				 err[512], *text = NULL;
	size_t				 len = 0;
	FILE				*fp;
	int				 rc, status;

	if (ss_audit_report(c, o->from, o->to, o->agency, &r, &e, &status, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		return SS_EXIT_NOANSWER;
	}
	if (e != NULL) {
		cli_refused(status, e);
		safeshare__v1__error__free_unpacked(e, NULL);
		return SS_EXIT_REFUSED;
	}
	if ((rc = call(c, "/v1/audit/verify", NULL, &safeshare__v1__verify_result__descriptor,
	    (ProtobufCMessage **)&v)) != SS_EXIT_OK)
		goto done;
	if ((rc = call(c, "/v1/audit/checkpoints", NULL,
	    &safeshare__v1__checkpoint_list__descriptor, (ProtobufCMessage **)&cl)) != SS_EXIT_OK)
		goto done;
	memset(&x, 0, sizeof(x));
	x.rep = r;
	x.verify = v;
	/* Sorted by size: the last is the latest. */
	if (cl->n_checkpoints > 0)
		x.checkpoint = cl->checkpoints[cl->n_checkpoints - 1];
	x.server = env_or(o->conn.server, "SAFESHARE_SERVER");
	if (o->html == NULL) {
		report_write_json(stdout, &x);
		rc = SS_EXIT_OK;
		goto done;
	}
	if ((fp = open_memstream(&text, &len)) == NULL) {
		fprintf(stderr, "safeshare: out of memory\n");
		rc = SS_EXIT_LOCAL;
		goto done;
	}
	report_write_html(fp, &x);
	if (fclose(fp) != 0) {
		fprintf(stderr, "safeshare: out of memory\n");
		rc = SS_EXIT_LOCAL;
		goto done;
	}
	if (file_write_atomic(o->html, text, err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s: %s\n", o->html, err);
		rc = SS_EXIT_LOCAL;
		goto done;
	}
	printf("report: %s (%zu bytes, %llu entries)\n", T(o->html), len,
	    (unsigned long long)r->entries);
	rc = SS_EXIT_OK;
done:
	free(text);
	if (cl)
		safeshare__v1__checkpoint_list__free_unpacked(cl, NULL);
	if (v)
		safeshare__v1__verify_result__free_unpacked(v, NULL);
	safeshare__v1__audit_report__free_unpacked(r, NULL);
	return rc;
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
	if (strcmp(sub, "show") == 0 || ((strcmp(sub, "verify") == 0 ||
	    strcmp(sub, "export") == 0) && (o.log != NULL || o.export != NULL))) {
		if (o.log == NULL && o.export == NULL) {
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
