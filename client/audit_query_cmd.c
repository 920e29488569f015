/*
 * safeshare audit query|stats|subject-report|reviews|review|inform|
 * inform-done|report: the auditor's and the Caldicott Guardian's questions
 * to the daemon's /v1/audit endpoints (D7, D15-D17, D19). Parsed and
 * dispatched by audit_cmd.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "audit_cmd.h"
#include "audit_pb.h"
#include "cli.h"
#include "policy.h"
#include "report_out.h"
#include "safeshare/client.h"
#include "util.h"

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

int
a_query(struct ss_client *c, struct aopts *o)
{
	Safeshare__V1__AuditQuery	 q;
	Safeshare__V1__AuditEntries	*r;
	struct jsonw_seq		 seq, *sp = o->json ? &seq : NULL;
	int				 rc, n = 0, cut = 0;

	query_of(o, &q);
	if (sp != NULL)
		jsonw_seq_begin(sp, stdout);
	for (;;) {
		if ((rc = a_call(c, "/v1/audit/query", &q.base,
		    &safeshare__v1__audit_entries__descriptor, (ProtobufCMessage **)&r)) != SS_EXIT_OK) {
			if (sp != NULL)
				jsonw_seq_end(sp);
			return rc;
		}
		for (size_t i = 0; i < r->n_entries; i++) {
			struct audit_entry e;

			audit_entry_from_pb(r->entries[i], &e);
			/* stdout failed: no more pages (main() says so). */
			if (a_print_entry(&e, sp) == -1) {
				cut = 1;
				break;
			}
			n++;
		}
		q.after_seq = r->next_after_seq;
		safeshare__v1__audit_entries__free_unpacked(r, NULL);
		if (q.after_seq == 0 || cut)
			break;
		if (!o->all) {
			if (!o->json)
				fprintf(stderr, "more: --after %" PRIu64 " (or --all)\n",
				    q.after_seq);
			break;
		}
	}
	if (sp != NULL) {
		if (jsonw_seq_end(sp) == -1)
			cut = 1;
	} else if (n == 0 && !cut)
		fprintf(stderr, "no entries match\n");
	return cut ? SS_EXIT_LOCAL : SS_EXIT_OK;
}

int
a_stats(struct ss_client *c, struct aopts *o)
{
	Safeshare__V1__AuditQuery	 q;
	Safeshare__V1__AuditStats	*r;
	uint64_t			 total = 0;
	json_t				*rows = json_array();
	int				 rc;

	query_of(o, &q);
	if ((rc = a_call(c, "/v1/audit/stats", &q.base,
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

int
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
		if ((rc = a_call(c, "/v1/audit/query", &q.base,
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
				json_array_append_new(list[pass], a_entry_json(&e));
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

int
a_pending(struct ss_client *c, struct aopts *o, const char *path, const char *what)
{
	Safeshare__V1__AuditEntries	*r;
	struct jsonw_seq		 seq;
	int				 rc;

	if ((rc = a_call(c, path, NULL, &safeshare__v1__audit_entries__descriptor,
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
			a_print_entry(&e, &seq);
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

int
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
	if ((rc = a_call(c, path, &rq.base, &safeshare__v1__review_result__descriptor,
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

/*
 * The report (issue 21): the daemon's aggregates, its verification of the
 * log and the latest signed checkpoint, as one HTML file (written whole or
 * not at all) or one JSON document on stdout.
 */
int
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
	if ((rc = a_call(c, "/v1/audit/verify", NULL, &safeshare__v1__verify_result__descriptor,
	    (ProtobufCMessage **)&v)) != SS_EXIT_OK)
		goto done;
	if ((rc = a_call(c, "/v1/audit/checkpoints", NULL,
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
