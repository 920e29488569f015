/*
 * POST /v1/holder/ops (role holder): records, consent, flags and NHS number
 * links for the holder's own subjects, all or nothing per request
 * (src/holder.c). A batch is checked (on the holder thread), its changing
 * ops are logged op by op in the disclosure log, then it is applied in one
 * transaction (on the holder thread), then answered. The event loop only hands it on, so
 * disclosures keep flowing while a batch is checked or applied.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "holder.h"
#include "req.h"
#include "routes.h"
#include "log.h"
#include "logq.h"
#include "rate.h"

/* Entries of one batch queued for the log at a time (see log_chunk()). */
#define HOLDER_LOG_CHUNK	512

static Safeshare__V1__HolderProblem **
problems(const struct holder_report *r, Safeshare__V1__HolderProblem *pv)
{
	Safeshare__V1__HolderProblem **pp = xcalloc(r->nproblems + 1, sizeof(*pp));

	for (size_t i = 0; i < r->nproblems; i++) {
		safeshare__v1__holder_problem__init(&pv[i]);
		pv[i].index = (uint32_t)r->problems[i].index;
		pv[i].line = r->problems[i].line;
		pv[i].code = (char *)r->problems[i].code;
		pv[i].field = (char *)r->problems[i].field;
		pv[i].message = (char *)r->problems[i].message;
		pp[i] = &pv[i];
	}
	return pp;
}

static void
reply_problems(struct evhttp_request *req, const struct holder_report *r)
{
	Safeshare__V1__Error		 e = SAFESHARE__V1__ERROR__INIT;
	Safeshare__V1__HolderProblem	*pv = xcalloc(r->nproblems, sizeof(*pv));
	const struct holder_problem	*first = &r->problems[0];
	char				 msg[384];
	size_t				 len;
	uint8_t				*buf;

	snprintf(msg, sizeof(msg), "%zu problem%s, nothing was written; first: %s",
	    r->nproblems + r->more, r->nproblems + r->more == 1 ? "" : "s",
	    first->message);
	e.code = (char *)first->code;
	e.message = msg;
	e.problems = problems(r, pv);
	e.n_problems = r->nproblems;
	len = safeshare__v1__error__get_packed_size(&e);
	buf = xcalloc(len + 1, 1);
	safeshare__v1__error__pack(&e, buf);
	free(e.problems);
	free(pv);
	reply(req, first->status, buf, len);
}

/*
 * A holder batch on its way: checked on the holder thread, its changing ops
 * logged from the loop (HOLDER_LOG_CHUNK at a time), applied on the holder
 * thread, answered on the loop. Owned by whichever side holds it.
 */
enum hstage { H_CHECK, H_APPLY, H_FREE };

/* hp->rc after H_CHECK when the body is not a batch at all. */
#define RC_MALFORMED	-2	/* not a HolderRequest */
#define RC_EMPTY	-3	/* no ops */

struct hpending {
	struct hpending			*next;		/* in a worker queue */
	struct hpending			*cnext;		/* in w->checking (loop) */
	struct hworker			*w;
	struct evhttp_request		*req;
	struct protocol			*proto;		/* the version checked against */
	uint8_t				*body;		/* until unpacked into hr */
	size_t				 blen;
	Safeshare__V1__HolderRequest	*hr;
	enum hstage			 stage;
	int				 rc;		/* holder_apply()'s, stage done */
	struct holder_report		 r;
	unsigned char			*logged;	/* per op: has an entry */
	const struct agency		*ag;		/* in proto: lives as long */
	char				 fp[65];
	char				 rid[33];	/* the batch's request id */
	size_t				 next_op;	/* the next op to log */
	size_t				 waiting;	/* entries not yet committed */
	int				 locks;		/* batch locks held (thread) */
	int				 claim;		/* storage_batch_claim()'s, failed apply */
	int				 failed;
	uint64_t			 first_seq;
};

/*
 * A rolled_back entry owed to the log: written as soon as the log takes
 * it (retried every second while it cannot), not at the next start.
 */
struct owed {
	struct owed		*next;
	struct hworker		*w;
	struct protocol		*proto;
	char			*agency;
	char			 rid[33];
	char			 reason[32];
	uint64_t		 first_seq;
	int			 submitted;	/* a submission is in the queue */
	struct hpending		*hp;		/* its batch, locked until logged */
};

/*
 * The holder thread: its own store connection, so a batch's checks and
 * writes, and a lock held on the store by another process (up to the
 * store's busy timeout), never stall the event loop (issue 14 item 15).
 * One thread, jobs in order: batches are applied in the order they were
 * logged.
 */
struct hworker {
	struct server		*srv;
	struct storage		*st;
	pthread_t		 thread;
	int			 started;
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cond;
	struct hpending		*head, *tail;	/* for the thread */
	struct hpending		*done;		/* for the loop, newest first */
	int			 stop;
	struct event		*ev;		/* made active by the thread */
	struct event		*retry;		/* owed entries, every second */
	struct owed		*owed;		/* loop thread only */
	size_t			 busy;		/* batches not yet answered (loop) */
	struct hpending		*checking;	/* batches not yet charged (loop) */
};

static void	hworker_queue(struct hworker *, struct hpending *);

static const char *
op_name(Safeshare__V1__HolderOpKind k)
{
	switch (k) {
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_PUT_RECORD: return "put_record";
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_DELETE_RECORD: return "delete_record";
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_CONSENT: return "consent";
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_FLAG: return "flag";
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_UNFLAG: return "unflag";
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_LINK_NHS: return "link_nhs";
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_UNLINK_NHS: return "unlink_nhs";
	default: return "unknown";
	}
}

/* "a,b,c" from a list, or "*" when empty, into buf. */
static const char *
joined(char *const *v, size_t n, char *buf, size_t len)
{
	snprintf(buf, len, "%s", n == 0 ? "*" : "");
	for (size_t i = 0; i < n && strlen(buf) + strlen(v[i]) + 2 < len; i++) {
		if (i > 0)
			strcat(buf, ",");
		strcat(buf, v[i]);
	}
	return buf;
}

static void
hpending_free(struct hpending *hp)
{
	if (hp->hr != NULL)
		safeshare__v1__holder_request__free_unpacked(hp->hr, NULL);
	free(hp->body);
	protocol_unref(hp->proto);
	holder_report_free(&hp->r);
	free(hp->logged);
	free(hp);
}

/*
 * The batch is answered: it no longer holds up a shutdown, and the holder
 * thread frees it (100,000 ops take tens of milliseconds to free, which
 * the loop does not wait for).
 */
static void
hpending_done(struct hpending *hp)
{
	hp->w->busy--;
	hp->stage = H_FREE;
	hworker_queue(hp->w, hp);
}

/*
 * Answered, but its rolled_back entry is still owed (owe_rollback()): the
 * batch keeps its lock until that entry is in the log, so that another
 * daemon's start meanwhile leaves it alone and, once it gets the lock,
 * finds the entry (issue 19 item 2; holder_reconcile.c).
 */
static void
hpending_answered(struct hpending *hp)
{
	hp->w->busy--;
}

static void
reply_result(struct evhttp_request *req, const struct holder_report *r)
{
	Safeshare__V1__HolderResult	 res = SAFESHARE__V1__HOLDER_RESULT__INIT;
	size_t				 len;
	uint8_t				*buf;

	res.applied = (uint32_t)r->applied;
	res.checked = (uint32_t)r->checked;
	len = safeshare__v1__holder_result__get_packed_size(&res);
	buf = xcalloc(len + 1, 1);
	safeshare__v1__holder_result__pack(&res, buf);
	reply(req, 200, buf, len);
}

void
holder_rolled_back(struct audit_entry *e, const struct protocol *p, const char *agency,
    const char *request_id, uint64_t first_seq, const char *reason)
{
	memset(e, 0, sizeof(*e));
	e->time = time(NULL);
	e->kind = "holder";
	e->agency = agency;
	e->decision = "rolled_back";
	e->reason = reason;
	e->ref_seq = first_seq;
	e->request_id = request_id;
	e->protocol_id = p->id;
	e->protocol_version = p->version;
	e->protocol_sha256 = p->sha256;
}

static void	owed_submit(struct owed *);

static void
owed_logged(int ok, uint64_t seq, void *arg)
{
	struct owed	*o = arg, **pp;
	struct hworker	*w = o->w;

	(void)seq;
	o->submitted = 0;
	if (!ok)
		return;		/* the retry timer submits it again */
	log_info("event=holder_rolled_back agency=%s request_id=%s reason=%s",
	    o->agency, o->rid, o->reason);
	if (o->hp != NULL) {	/* now its lock may go (hpending_answered()) */
		o->hp->stage = H_FREE;
		hworker_queue(w, o->hp);
	}
	for (pp = &w->owed; *pp != NULL && *pp != o; pp = &(*pp)->next)
		;
	if (*pp == o)
		*pp = o->next;
	protocol_unref(o->proto);
	free(o->agency);
	free(o);
}

static void
owed_submit(struct owed *o)
{
	struct audit_entry e;

	holder_rolled_back(&e, o->proto, o->agency, o->rid, o->first_seq, o->reason);
	e.case_ref = o->w->srv->store_ref;	/* the store it was not applied to */
	o->submitted = 1;
	logq_submit(o->w->srv->logq, &e, owed_logged, o);
}

/*
 * Some of the batch's entries are in the log but the batch was not
 * applied: the log must say so (issue 13 item 9). Submitted now; if the
 * log cannot take it, the retry timer submits it again every second until
 * it can. A daemon stopped before that leaves it to the start-up
 * reconciliation (holder_reconcile.c).
 */
static void
owe_rollback(struct hpending *hp, const char *reason)
{
	struct owed *o = xcalloc(1, sizeof(*o));

	o->w = hp->w;
	o->proto = protocol_ref(hp->proto);
	o->agency = xstrdup(hp->ag->id);
	snprintf(o->rid, sizeof(o->rid), "%s", hp->rid);
	snprintf(o->reason, sizeof(o->reason), "%s", reason);
	o->first_seq = hp->first_seq;
	o->hp = hp;
	o->next = hp->w->owed;
	hp->w->owed = o;
	owed_submit(o);
}

static void
owed_retry(evutil_socket_t fd, short what, void *arg)
{
	struct hworker *w = arg;

	(void)fd;
	(void)what;
	for (struct owed *o = w->owed; o != NULL; o = o->next)
		if (!o->submitted)
			owed_submit(o);
}

static void	log_chunk(struct hpending *);

/* A chunk's entries are on disk (or one failed): log more, or apply. */
static void
holder_logged(int ok, uint64_t seq, void *arg)
{
	struct hpending	*hp = arg;

	if (!ok)
		hp->failed = 1;
	else if (hp->first_seq == 0 || seq < hp->first_seq)
		hp->first_seq = seq;
	if (--hp->waiting > 0)
		return;
	if (hp->failed) {
		/*
		 * D7's rule for writes too: nothing changes that was not
		 * logged, and the part that was logged is declared rolled back.
		 */
		log_warnx("event=holder_unlogged agency=%s request_id=%s", hp->ag->id,
		    hp->rid);
		reply_audit_unavailable(hp->req);
		if (hp->first_seq != 0) {
			owe_rollback(hp, "audit_unavailable");
			hpending_answered(hp);
		} else
			hpending_done(hp);
		return;
	}
	if (hp->next_op < hp->hr->n_ops) {
		log_chunk(hp);
		return;
	}
	hp->stage = H_APPLY;
	hworker_queue(hp->w, hp);
}

/*
 * One log entry per changing op: who changed what about whom; never field
 * values. At most HOLDER_LOG_CHUNK entries are queued at a time, the next
 * chunk when these are on disk, so a large batch shares the log writer
 * with everyone else's requests instead of queueing ahead of them all.
 */
static void
log_chunk(struct hpending *hp)
{
	struct audit_entry	 e;
	char			 fields[2048], agencies[512], purposes[512], consent[1280];
	char			 nhs[MATCH_NHS_LEN + 5];
	size_t			 n = 0, i;

	for (i = hp->next_op; i < hp->hr->n_ops && n < HOLDER_LOG_CHUNK; i++)
		n += hp->logged[i];
	hp->waiting = n;
	for (i = hp->next_op; i < hp->hr->n_ops && n > 0; i++) {
		const Safeshare__V1__HolderOp *op = hp->hr->ops[i];

		if (!hp->logged[i])
			continue;
		n--;
		memset(&e, 0, sizeof(e));
		e.time = time(NULL);
		e.kind = "holder";
		e.agency = hp->ag->id;
		e.cert_fp = hp->fp;
		e.subject = op->subject_id;
		e.record_type = op->record_type;
		e.decision = "write";
		e.reason = op_name(op->kind);
		/* Which store the batch is for: a replaced store is another (issue 15). */
		e.case_ref = hp->w->srv->store_ref;
		e.request_id = hp->rid;
		e.protocol_id = hp->proto->id;
		e.protocol_version = hp->proto->version;
		e.protocol_sha256 = hp->proto->sha256;
		fields[0] = '\0';
		for (size_t f = 0; f < op->n_fields &&
		    strlen(fields) + strlen(op->fields[f]->name) + 2 < sizeof(fields); f++) {
			if (f > 0)
				strcat(fields, ",");
			strcat(fields, op->fields[f]->name);
		}
		e.released = fields;
		if (op->kind == SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_CONSENT) {
			snprintf(consent, sizeof(consent), "%s agencies=%s purposes=%s%s%s"
			    "%s%s", op->consent, joined(op->agencies, op->n_agencies,
			    agencies, sizeof(agencies)), joined(op->purposes,
			    op->n_purposes, purposes, sizeof(purposes)),
			    op->expires[0] ? " expires=" : "", op->expires,
			    op->decided[0] ? " decided=" : "", op->decided);
			e.consent = consent;
		}
		if (op->flag[0] != '\0')
			e.withheld = op->flag;
		/* The number linked or unlinked, as the check found it (D18). */
		if (hp->r.nhs != NULL && hp->r.nhs[i][0] != '\0') {
			snprintf(nhs, sizeof(nhs), "nhs:%s", hp->r.nhs[i]);
			e.withheld = nhs;
		}
		logq_submit(hp->w->srv->logq, &e, holder_logged, hp);
	}
	while (i < hp->hr->n_ops && !hp->logged[i])
		i++;
	hp->next_op = i;
}

/* A refusal about ownership, the kind a holder could probe with. */
static int
ownership_problem(const struct holder_problem *pr)
{
	return strcmp(pr->code, "not_your_subject") == 0 ||
	    strcmp(pr->code, "unknown_subject") == 0;
}

/* The batch's ownership refusals are durable: now answer its problems. */
static void
probes_logged(int ok, uint64_t seq, void *arg)
{
	struct hpending *hp = arg;

	(void)seq;
	if (!ok)
		hp->failed = 1;
	if (--hp->waiting > 0)
		return;
	if (hp->failed)
		reply_audit_unavailable(hp->req);
	else
		reply_problems(hp->req, &hp->r);
	hpending_done(hp);
}

/*
 * Issue 14 item 6: a holder asking about a subject that is not its own
 * (another holder's, or none's) leaves a trace. Each such refusal in a
 * batch, dry run or not, is a "rejected" entry naming the agency, the
 * subject and the code, logged before the answer. Returns 1 if it took
 * over the answer.
 */
static int
log_probes(struct hpending *hp)
{
	struct audit_entry	 e;
	size_t			 n = 0;

	for (size_t i = 0; i < hp->r.nproblems; i++)
		n += ownership_problem(&hp->r.problems[i]);
	if (n == 0)
		return 0;
	hp->waiting = n;
	for (size_t i = 0; i < hp->r.nproblems; i++) {
		const struct holder_problem	*pr = &hp->r.problems[i];
		const Safeshare__V1__HolderOp	*op = hp->hr->ops[pr->index];

		if (!ownership_problem(pr))
			continue;
		memset(&e, 0, sizeof(e));
		e.time = time(NULL);
		e.kind = "rejected";
		e.agency = hp->ag->id;
		e.cert_fp = hp->fp;
		e.subject = op->subject_id;
		e.record_type = op->record_type;
		e.decision = "deny";
		e.reason = pr->code;
		e.request_id = hp->rid;
		e.protocol_id = hp->proto->id;
		e.protocol_version = hp->proto->version;
		e.protocol_sha256 = hp->proto->sha256;
		logq_submit(hp->w->srv->logq, &e, probes_logged, hp);
	}
	return 1;
}

/* Checked on the holder thread: answer a bad or dry batch, or log it. */
static void
checked(struct hpending *hp)
{
	struct holder_report	*r = &hp->r;
	struct hpending		**pp;

	for (pp = &hp->w->checking; *pp != NULL && *pp != hp; pp = &(*pp)->cnext)
		;
	if (*pp == hp)
		*pp = hp->cnext;
	if (hp->rc == RC_MALFORMED || hp->rc == RC_EMPTY) {
		if (hp->rc == RC_MALFORMED)
			reply_error(hp->req, 400, "malformed_request", "the body is not "
			    "a valid safeshare.v1.HolderRequest", 0);
		else
			reply_error(hp->req, 400, "missing_field", "the request has no "
			    "operations", 0);
		hpending_done(hp);
		return;
	}
	/*
	 * The agency's bucket counts ops, not requests (issue 14): the request
	 * took one token; the rest of its ops are charged now and may leave
	 * the bucket in debt, so a batch larger than the burst still goes
	 * through, and the agency then waits until the rate has paid it off.
	 */
	rate_charge(hp->w->srv, hp->ag->id, (double)(hp->hr->n_ops - 1), mono_seconds());
	if (hp->rc == 1 && log_probes(hp)) {
		log_info("event=holder_check agency=%s ops=%zu problems=%zu dry_run=%d",
		    hp->ag->id, hp->hr->n_ops, r->nproblems + r->more,
		    hp->hr->dry_run ? 1 : 0);
		return;
	}
	if (hp->rc != 0 || hp->hr->dry_run) {
		/* Counts only: never subject ids or values in the daemon's log. */
		log_info("event=holder_check agency=%s ops=%zu problems=%zu dry_run=%d",
		    hp->ag->id, hp->hr->n_ops, r->nproblems + r->more,
		    hp->hr->dry_run ? 1 : 0);
		if (hp->rc == -1) {
			log_warnx("event=store_failed error=\"%s\"", r->error);
			reply_error(hp->req, 503, "store_unavailable", "the record store "
			    "could not be read; nothing was changed", 0);
		} else if (hp->rc == 1)
			reply_problems(hp->req, r);
		else
			reply_result(hp->req, r);
		hpending_done(hp);
		return;
	}
	/* No-ops are not logged (issue 14): re-sending what is there adds nothing. */
	hp->logged = r->changes;
	r->changes = NULL;
	if (r->unchanged == hp->hr->n_ops) {
		log_info("event=holder_write agency=%s ops=%zu applied=%zu unchanged=%zu",
		    hp->ag->id, hp->hr->n_ops, hp->hr->n_ops, r->unchanged);
		r->applied = hp->hr->n_ops;
		reply_result(hp->req, r);
		hpending_done(hp);
		return;
	}
	log_chunk(hp);
}

/* Applied (or not) on the holder thread: answer, and log a failure. */
static void
applied(struct hpending *hp)
{
	struct holder_report	*r = &hp->r;
	int			 owe = 0;

	log_info("event=holder_write agency=%s ops=%zu applied=%zu unchanged=%zu "
	    "problems=%zu seq=%llu", hp->ag->id, hp->hr->n_ops, r->applied,
	    r->unchanged, r->nproblems + r->more, (unsigned long long)hp->first_seq);
	if (hp->rc != 0) {
		/*
		 * Checked a moment ago, failed now: the log says it did not
		 * happen, once. Not when a start's reconciliation claimed the
		 * batch (holder_apply()'s "rolled_back", or the claim after the
		 * failure found its claim: 2) and logs it itself, nor when the
		 * batch was applied after all (a COMMIT whose answer was lost:
		 * 0). A claim that failed (-1) owes it all the same.
		 */
		owe = (hp->rc == -1 || strcmp(r->problems[0].code, "rolled_back") != 0) &&
		    (hp->claim == 1 || hp->claim == -1);
		if (owe)
			owe_rollback(hp, hp->rc == -1 ? "store_unavailable" :
			    r->problems[0].code);
		if (hp->rc == -1) {
			log_warnx("event=store_failed error=\"%s\"", r->error);
			reply_error(hp->req, 503, "store_unavailable", "the record store "
			    "could not be written; nothing was changed", 0);
		} else
			reply_problems(hp->req, r);
	} else
		reply_result(hp->req, r);
	if (owe)
		hpending_answered(hp);
	else
		hpending_done(hp);
}

/* On the holder thread: the batch's lock, or rc -1 (nothing applied). */
static void
hworker_lock(struct hworker *w, struct hpending *hp)
{
	hp->rc = 0;
	if (storage_batch_lock(w->st, hp->rid, 1, hp->r.error,
	    sizeof(hp->r.error)) == 1)
		hp->locks++;
	else
		hp->rc = -1;
}

/*
 * On the holder thread, a batch whose apply failed (issue 19 item 2): its
 * lock again (a lost session lost it; this waits for a start that is
 * reconciling it), then the claim to log it rolled back, so that exactly
 * one daemon logs that: hp->claim is storage_batch_claim()'s answer.
 */
static void
claim_failed(struct hworker *w, struct hpending *hp)
{
	char err[256];

	if (hp->rc == 1 && strcmp(hp->r.problems[0].code, "rolled_back") == 0)
		return;
	if (storage_batch_lock(w->st, hp->rid, 1, err, sizeof(err)) == 1)
		hp->locks++;
	hp->claim = storage_batch_claim(w->st, hp->rid, hp->first_seq, err,
	    sizeof(err));
}

/* The holder thread: runs each job against its own store connection. */
static void *
hworker_main(void *arg)
{
	struct hworker	*w = arg;
	struct hpending	*hp;

	pthread_mutex_lock(&w->mtx);
	for (;;) {
		while (w->head == NULL && !w->stop)
			pthread_cond_wait(&w->cond, &w->mtx);
		if (w->head == NULL)
			break;
		hp = w->head;
		if ((w->head = hp->next) == NULL)
			w->tail = NULL;
		pthread_mutex_unlock(&w->mtx);

		if (hp->stage == H_FREE) {
			while (hp->locks-- > 0)
				storage_batch_unlock(w->st, hp->rid);
			hpending_free(hp);
			pthread_mutex_lock(&w->mtx);
			continue;
		}
		if (hp->stage == H_CHECK) {
			/* Unpacking 7 MiB takes the loop's time no more. */
			hp->hr = safeshare__v1__holder_request__unpack(NULL, hp->blen,
			    hp->body);
			free(hp->body);
			hp->body = NULL;
			if (hp->hr == NULL)
				hp->rc = RC_MALFORMED;
			else if (hp->hr->n_ops == 0)
				hp->rc = RC_EMPTY;
			else
				hp->rc = holder_apply(w->st, hp->proto, hp->ag,
				    hp->hr->ops, hp->hr->n_ops, 1, time(NULL), NULL,
				    &hp->r);
			/*
			 * A batch that may be logged is claimed before its
			 * first entry and until it is answered (hpending_done):
			 * another daemon starting on the same database then
			 * never reconciles it as interrupted while this one
			 * applies it (holder_reconcile.c, deploy-ha.md).
			 */
			if (hp->rc == 0 && !hp->hr->dry_run)
				hworker_lock(w, hp);
		} else {
			struct holder_batch batch = { hp->rid, hp->first_seq, hp->logged };

			holder_report_free(&hp->r);
			/* Again: a session lost since the check lost its lock. */
			hworker_lock(w, hp);
			if (hp->rc == 0)
				hp->rc = holder_apply(w->st, hp->proto, hp->ag,
				    hp->hr->ops, hp->hr->n_ops, 0, time(NULL), &batch,
				    &hp->r);
			if (hp->rc != 0)
				claim_failed(w, hp);
		}

		pthread_mutex_lock(&w->mtx);
		hp->next = w->done;
		w->done = hp;
		event_active(w->ev, 0, 0);	/* thread-safe: evthread_use_pthreads */
	}
	pthread_mutex_unlock(&w->mtx);
	return NULL;
}

static void
hworker_queue(struct hworker *w, struct hpending *hp)
{
	hp->next = NULL;
	pthread_mutex_lock(&w->mtx);
	if (w->tail != NULL)
		w->tail->next = hp;
	else
		w->head = hp;
	w->tail = hp;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mtx);
}

/* On the loop: the jobs the thread finished, oldest first. */
static void
hworker_done(evutil_socket_t fd, short what, void *arg)
{
	struct hworker	*w = arg;
	struct hpending	*list, *rev = NULL, *next;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&w->mtx);
	list = w->done;
	w->done = NULL;
	pthread_mutex_unlock(&w->mtx);
	for (; list != NULL; list = next) {
		next = list->next;
		list->next = rev;
		rev = list;
	}
	for (; rev != NULL; rev = next) {
		next = rev->next;
		if (rev->stage == H_CHECK)
			checked(rev);
		else
			applied(rev);
	}
}

struct hworker *
hworker_new(struct server *srv, char *err, size_t errlen)
{
	struct hworker		*w = xcalloc(1, sizeof(*w));
	const struct timeval	 second = { 1, 0 };

	w->srv = srv;
	pthread_mutex_init(&w->mtx, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (server_store_open(srv->conf, &w->st, err, errlen) == -1)
		goto fail;
	if ((w->ev = event_new(srv->base, -1, 0, hworker_done, w)) == NULL ||
	    (w->retry = event_new(srv->base, -1, EV_PERSIST, owed_retry, w)) == NULL ||
	    event_add(w->retry, &second) == -1) {
		snprintf(err, errlen, "cannot start the holder thread: events");
		goto fail;
	}
	if (pthread_create(&w->thread, NULL, hworker_main, w) != 0) {
		snprintf(err, errlen, "cannot start the holder thread");
		goto fail;
	}
	w->started = 1;
	return w;
fail:
	hworker_free(w);
	return NULL;
}

size_t
hworker_busy(const struct hworker *w)
{
	return w != NULL ? w->busy : 0;
}

void
hworker_free(struct hworker *w)
{
	struct hpending	*hp, *next;
	struct owed	*o, *onext;

	if (w == NULL)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->mtx);
		w->stop = 1;
		pthread_cond_signal(&w->cond);
		pthread_mutex_unlock(&w->mtx);
		pthread_join(w->thread, NULL);
	}
	/* Left unanswered only when the loop did not drain (a failed start). */
	for (hp = w->head; hp != NULL; hp = next) {
		next = hp->next;
		hpending_free(hp);
	}
	for (hp = w->done; hp != NULL; hp = next) {
		next = hp->next;
		hpending_free(hp);
	}
	/*
	 * Unwritten rolled_back entries are written by the next start's
	 * reconciliation; their batches' locks end with the store's session.
	 */
	for (o = w->owed; o != NULL; o = onext) {
		onext = o->next;
		if (o->hp != NULL)
			hpending_free(o->hp);
		protocol_unref(o->proto);
		free(o->agency);
		free(o);
	}
	if (w->ev != NULL)
		event_free(w->ev);
	if (w->retry != NULL)
		event_free(w->retry);
	storage_close(w->st);
	pthread_mutex_destroy(&w->mtx);
	pthread_cond_destroy(&w->cond);
	free(w);
}

/*
 * POST /v1/holder/ops: the route table has admitted the holder role and
 * taken a rate token (routes.c); the batch goes to the holder thread.
 */
void
holder_handle(struct req *r)
{
	struct server			*srv = r->srv;
	struct evhttp_request		*req = r->ev;
	struct evbuffer			*in = evhttp_request_get_input_buffer(req);
	const struct agency		*ag = r->agency;
	struct hpending			*hp;
	size_t				 len = evbuffer_get_length(in);
	/*
	 * One batch of an agency's at a time until it is unpacked and its ops
	 * are charged (checked()): batches sent at once would otherwise each
	 * be admitted on the one token they take here.
	 */
	for (hp = srv->holder->checking; hp != NULL; hp = hp->cnext)
		if (strcmp(hp->ag->id, ag->id) == 0) {
			evhttp_add_header(evhttp_request_get_output_headers(req),
			    "Retry-After", "1");
			reply_error(req, 429, "rate_limited", "another batch from this "
			    "agency is being checked; retry after a second", 0);
			return;
		}
	hp = xcalloc(1, sizeof(*hp));
	hp->w = srv->holder;
	hp->req = req;
	hp->proto = protocol_ref(srv->proto);
	hp->blen = len;
	hp->body = xcalloc(len ? len : 1, 1);
	evbuffer_remove(in, hp->body, len);
	hp->stage = H_CHECK;
	/* ag is srv->proto's, and hp holds a reference to that protocol. */
	hp->ag = ag;
	snprintf(hp->fp, sizeof(hp->fp), "%s", r->peer.fp);
	snprintf(hp->rid, sizeof(hp->rid), "%s", r->rid);
	hp->cnext = srv->holder->checking;
	srv->holder->checking = hp;
	/* Checked first, off the loop; nothing is logged or written for a bad batch. */
	srv->holder->busy++;
	hworker_queue(srv->holder, hp);
}
