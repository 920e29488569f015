/*
 * POST /v1/holder/ops (role holder): records, consent and flags for the
 * holder's own subjects, all or nothing per request (src/holder.c). A batch
 * is checked, logged op by op in the disclosure log, then applied in one
 * transaction, then answered.
 */
#include <event2/buffer.h>
#include <event2/http.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "holder.h"
#include "http.h"
#include "log.h"
#include "logq.h"

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
 * A checked batch waiting for its log entries: every holder change is in
 * the disclosure log (kind "holder") before it is applied and answered.
 */
struct hpending {
	struct server			*srv;
	struct evhttp_request		*req;
	struct protocol			*proto;		/* the version checked against */
	Safeshare__V1__HolderRequest	*hr;
	const struct agency		*ag;		/* in proto: lives as long */
	char				 rid[33];	/* the batch's request id */
	size_t				 waiting;	/* entries not yet committed */
	int				 failed;
	uint64_t			 first_seq;
};

static const char *
op_name(Safeshare__V1__HolderOpKind k)
{
	switch (k) {
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_PUT_RECORD: return "put_record";
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_DELETE_RECORD: return "delete_record";
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_CONSENT: return "consent";
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_FLAG: return "flag";
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_UNFLAG: return "unflag";
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
	safeshare__v1__holder_request__free_unpacked(hp->hr, NULL);
	protocol_unref(hp->proto);
	free(hp);
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

/* Every entry is on disk (or one failed): apply, and answer. */
static void
holder_logged(int ok, uint64_t seq, void *arg)
{
	struct hpending		*hp = arg;
	struct server		*srv = hp->srv;
	struct holder_report	 r;
	struct holder_batch	 batch;
	int			 rc;

	if (!ok)
		hp->failed = 1;
	else if (hp->first_seq == 0 || seq < hp->first_seq)
		hp->first_seq = seq;
	if (--hp->waiting > 0)
		return;
	if (hp->failed) {
		/* D7's rule for writes too: nothing changes that was not logged. */
		log_warnx("event=holder_unlogged agency=%s", hp->ag->id);
		reply_audit_unavailable(hp->req);
		hpending_free(hp);
		return;
	}
	batch.request_id = hp->rid;
	batch.first_seq = hp->first_seq;
	rc = holder_apply(srv->store, hp->proto, hp->ag, hp->hr->ops, hp->hr->n_ops, 0,
	    time(NULL), &batch, &r);
	log_info("event=holder_write agency=%s ops=%zu applied=%zu problems=%zu seq=%llu",
	    hp->ag->id, hp->hr->n_ops, r.applied, r.nproblems + r.more,
	    (unsigned long long)hp->first_seq);
	if (rc != 0) {
		struct audit_entry e;

		/* Checked a moment ago, failed now: the log says it did not happen. */
		holder_rolled_back(&e, hp->proto, hp->ag->id, hp->rid, hp->first_seq,
		    rc == -1 ? "store_unavailable" : r.problems[0].code);
		logq_submit(srv->logq, &e, NULL, NULL);
		if (rc == -1) {
			log_warnx("event=store_failed error=\"%s\"", r.error);
			reply_error(hp->req, 500, "store_unavailable", "the record store "
			    "could not be written; nothing was changed", 0);
		} else
			reply_problems(hp->req, &r);
	} else
		reply_result(hp->req, &r);
	holder_report_free(&r);
	hpending_free(hp);
}

/* One log entry per op: who changed what about whom; never field values. */
static void
log_ops(struct hpending *hp, const struct peer *p, const char *rid)
{
	struct audit_entry	 e;
	char			 fields[2048], agencies[512], purposes[512], consent[1280];

	hp->waiting = hp->hr->n_ops;
	for (size_t i = 0; i < hp->hr->n_ops; i++) {
		const Safeshare__V1__HolderOp *op = hp->hr->ops[i];

		memset(&e, 0, sizeof(e));
		e.time = time(NULL);
		e.kind = "holder";
		e.agency = hp->ag->id;
		e.cert_fp = p->fp;
		e.subject = op->subject_id;
		e.record_type = op->record_type;
		e.decision = "write";
		e.reason = op_name(op->kind);
		e.request_id = rid;
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
		logq_submit(hp->srv->logq, &e, holder_logged, hp);
	}
}

void
holder_handle(struct server *srv, struct evhttp_request *req)
{
	struct evbuffer			*in = evhttp_request_get_input_buffer(req);
	Safeshare__V1__HolderRequest	*hr;
	struct holder_report		 r;
	struct hpending			*hp;
	const struct agency		*ag;
	struct peer			 p;
	size_t				 len = evbuffer_get_length(in);
	char				 rid[33];
	int				 rc;

	new_request_id(rid);
	peer_of(req, &p);
	if ((ag = peer_agency(srv, &p)) == NULL || !(ag->roles & ROLE_HOLDER)) {
		refuse(srv, req, &p, ag ? ag->id : NULL, 403, "not_holder",
		    "writing records needs the holder role", rid);
		return;
	}
	if (!rate_take(srv, ag->id, mono_seconds())) {
		reply_error(req, 429, "rate_limited", "too many requests from this "
		    "agency; retry after a second", 0);
		return;
	}
	hr = safeshare__v1__holder_request__unpack(NULL, len, evbuffer_pullup(in, -1));
	if (hr == NULL) {
		reply_error(req, 400, "malformed_request", "the body is not a valid "
		    "safeshare.v1.HolderRequest", 0);
		return;
	}
	if (hr->n_ops == 0) {
		safeshare__v1__holder_request__free_unpacked(hr, NULL);
		reply_error(req, 400, "missing_field", "the request has no operations", 0);
		return;
	}
	/* Check everything first; nothing is logged or written for a bad batch. */
	rc = holder_apply(srv->store, srv->proto, ag, hr->ops, hr->n_ops, 1, time(NULL),
	    NULL, &r);
	if (rc != 0 || hr->dry_run) {
		/* Counts only: never subject ids or values in the daemon's log. */
		log_info("event=holder_check agency=%s ops=%zu problems=%zu dry_run=%d",
		    ag->id, hr->n_ops, r.nproblems + r.more, hr->dry_run ? 1 : 0);
		if (rc == -1) {
			log_warnx("event=store_failed error=\"%s\"", r.error);
			reply_error(req, 500, "store_unavailable", "the record store could "
			    "not be read; nothing was changed", 0);
		} else if (rc == 1)
			reply_problems(req, &r);
		else
			reply_result(req, &r);
		holder_report_free(&r);
		safeshare__v1__holder_request__free_unpacked(hr, NULL);
		return;
	}
	holder_report_free(&r);
	hp = xcalloc(1, sizeof(*hp));
	hp->srv = srv;
	hp->req = req;
	hp->proto = protocol_ref(srv->proto);
	hp->hr = hr;
	/* ag is srv->proto's, and hp holds a reference to that protocol. */
	hp->ag = ag;
	snprintf(hp->rid, sizeof(hp->rid), "%s", rid);
	log_ops(hp, &p, rid);
}
