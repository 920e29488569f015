/*
 * The disclosure log for auditors and the Caldicott Guardian (D15-D17):
 * queries, counts, reviews of overrides, inform-the-subject items,
 * checkpoints and online verification. Reads use their own read-only
 * connection (WAL readers never block the log writer); reviews and notes are
 * log entries themselves, written through the log queue like any decision.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit_pb.h"
#include "req.h"
#include "routes.h"
#include "log.h"
#include "logq.h"
#include "report.h"
#include "wire.h"

#define PAGE_DEFAULT	100
#define PAGE_MAX	1000

static void *
decode(struct evhttp_request *req, const ProtobufCMessageDescriptor *desc)
{
	struct evbuffer	*in = evhttp_request_get_input_buffer(req);
	size_t		 len = evbuffer_get_length(in);
	void		*m;

	m = protobuf_c_message_unpack(desc, NULL, len, evbuffer_pullup(in, -1));
	if (m == NULL)
		reply_error(req, 400, "malformed_request", "the body is not a valid "
		    "message for this endpoint", 0);
	return m;
}

static void
reply_msg(struct evhttp_request *req, const ProtobufCMessage *m)
{
	size_t	 len = protobuf_c_message_get_packed_size(m);
	uint8_t	*buf = xcalloc(len + 1, 1);

	protobuf_c_message_pack(m, buf);
	reply(req, 200, buf, len);
}

/* Entries collected for a reply; strings are copied out of SQLite's rows. */
struct page {
	Safeshare__V1__LogEntry	*v;
	Safeshare__V1__LogEntry	**p;
	size_t			 n, cap;
};

static int
collect(const struct audit_entry *e, void *arg)
{
	struct page			*pg = arg;
	Safeshare__V1__LogEntry		*m;

	if (pg->n == pg->cap)
		return 1;
	m = &pg->v[pg->n];
	pg->p[pg->n++] = m;
	audit_entry_to_pb(e, m);
	return 0;
}

static void
page_init(struct page *pg, size_t cap)
{
	pg->cap = cap;
	pg->n = 0;
	pg->v = xcalloc(cap, sizeof(*pg->v));
	pg->p = xcalloc(cap, sizeof(*pg->p));
}

static void
page_free(struct page *pg)
{
	for (size_t i = 0; i < pg->n; i++) {
		audit_entry_pb_clear(&pg->v[i]);
	}
	free(pg->v);
	free(pg->p);
}

static void
reply_page(struct server *srv, struct evhttp_request *req, struct page *pg,
    size_t limit)
{
	Safeshare__V1__AuditEntries out = SAFESHARE__V1__AUDIT_ENTRIES__INIT;
	struct logq_stats st;

	logq_stats(srv->logq, &st);
	out.entries = pg->p;
	out.n_entries = pg->n;
	out.log_size = st.size;
	if (limit > 0 && pg->n == limit)
		out.next_after_seq = pg->v[pg->n - 1].seq;
	reply_msg(req, &out.base);
}

static void
filter_of(const Safeshare__V1__AuditQuery *q, struct audit_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->subject = q->subject;
	f->agency = q->agency;
	f->practitioner = q->practitioner;
	f->purpose = q->purpose;
	f->decision = q->decision;
	f->reason = q->reason;
	f->kind = q->kind;
	f->overrides_only = q->overrides_only;
	f->from_time = q->from_time;
	f->to_time = q->to_time;
}

void
auditor_handle_query(struct req *r)
{
	struct server			*srv = r->srv;
	struct evhttp_request		*req = r->ev;
	Safeshare__V1__AuditQuery	*q;
	struct audit_filter		 f;
	struct page			 pg;
	size_t				 limit;
	char				 err[256];

	if ((q = decode(req, &safeshare__v1__audit_query__descriptor)) == NULL)
		return;
	limit = q->limit == 0 ? PAGE_DEFAULT : q->limit > PAGE_MAX ? PAGE_MAX : q->limit;
	filter_of(q, &f);
	page_init(&pg, limit);
	if (logstore_query(srv->reader, &f, q->after_seq, limit, q->newest_first,
	    collect, &pg, err, sizeof(err)) == -1) {
		log_warnx("event=audit_query_failed error=\"%s\"", err);
		reply_error(req, 503, "audit_read_failed", "the log could not be read", 0);
	} else
		reply_page(srv, req, &pg, limit);
	page_free(&pg);
	safeshare__v1__audit_query__free_unpacked(q, NULL);
}

struct stats_rows {
	Safeshare__V1__AuditStats__Row	*v;
	Safeshare__V1__AuditStats__Row	**p;
	size_t				 n;
};

static int
stat_row(const char *key, uint64_t count, void *arg)
{
	struct stats_rows		*r = arg;
	Safeshare__V1__AuditStats__Row	*row;

	r->v = realloc(r->v, (r->n + 1) * sizeof(*r->v));
	r->p = realloc(r->p, (r->n + 1) * sizeof(*r->p));
	if (r->v == NULL || r->p == NULL)
		fatalx("%s: out of memory", __func__);
	row = &r->v[r->n];
	safeshare__v1__audit_stats__row__init(row);
	row->key = xstrdup(key);
	row->count = count;
	r->n++;
	return 0;
}

void
auditor_handle_stats(struct req *rq)
{
	struct server			*srv = rq->srv;
	struct evhttp_request		*req = rq->ev;
	Safeshare__V1__AuditQuery	*q;
	Safeshare__V1__AuditStats	 out = SAFESHARE__V1__AUDIT_STATS__INIT;
	struct audit_filter		 f;
	struct stats_rows		 r = { NULL, NULL, 0 };
	const char			*by;
	char				 err[256];

	if ((q = decode(req, &safeshare__v1__audit_query__descriptor)) == NULL)
		return;
	by = q->group_by[0] ? q->group_by : "agency";
	filter_of(q, &f);
	if (logstore_stats(srv->reader, &f, by, stat_row, &r, err, sizeof(err)) == -1)
		reply_error(req, 400, "bad_group_by", err, 0);
	else {
		for (size_t i = 0; i < r.n; i++)
			r.p[i] = &r.v[i];
		out.rows = r.p;
		out.n_rows = r.n;
		out.group_by = (char *)by;
		reply_msg(req, &out.base);
	}
	for (size_t i = 0; i < r.n; i++)
		free(r.v[i].key);
	free(r.v);
	free(r.p);
	safeshare__v1__audit_query__free_unpacked(q, NULL);
}

static void
list_pending(struct server *srv, struct evhttp_request *req,
    int (*fn)(struct logstore *, audit_cb, void *, char *, size_t))
{
	struct page pg;

	page_init(&pg, PAGE_MAX);
	/* The reply says no more than this; the reason is not wanted (NULL). */
	if (fn(srv->reader, collect, &pg, NULL, 0) == -1)
		reply_error(req, 503, "audit_read_failed", "the log could not be read", 0);
	else
		reply_page(srv, req, &pg, 0);
	page_free(&pg);
}

void
auditor_handle_reviews(struct req *r)
{
	list_pending(r->srv, r->ev, logstore_reviews_pending);
}

void
auditor_handle_inform(struct req *r)
{
	list_pending(r->srv, r->ev, logstore_inform_pending);
}

struct find {
	uint64_t	seq;
	int		found;
};

static int
find_seq(const struct audit_entry *e, void *arg)
{
	struct find *f = arg;

	if (e->seq == f->seq)
		f->found = 1;
	return f->found;
}

struct noted {
	struct evhttp_request *req;
};

static void
note_logged(int ok, uint64_t seq, void *arg)
{
	struct noted			*n = arg;
	Safeshare__V1__ReviewResult	 r = SAFESHARE__V1__REVIEW_RESULT__INIT;

	if (!ok)
		reply_audit_unavailable(n->req);
	else {
		r.disclosure_id = seq;
		reply_msg(n->req, &r.base);
	}
	free(n);
}

/* A review (D15) or an inform-the-subject note (D6): itself a log entry. */
static void
add_note(struct server *srv, struct evhttp_request *req, const struct agency *ag,
    const char *kind, int (*pending)(struct logstore *, audit_cb, void *,
    char *, size_t))
{
	Safeshare__V1__ReviewRequest	*rq;
	struct audit_entry		 e;
	struct find			 f = { 0, 0 };
	struct noted			*n;
	int				 review = strcmp(kind, "review") == 0;

	if ((rq = decode(req, &safeshare__v1__review_request__descriptor)) == NULL)
		return;
	if (review && strcmp(rq->outcome, "upheld") != 0 &&
	    strcmp(rq->outcome, "not_upheld") != 0) {
		reply_error(req, 400, "bad_outcome", "outcome must be upheld or not_upheld", 0);
		goto done;
	}
	if (strlen(rq->note) < 3 || strlen(rq->note) > MAX_LOG_FIELD) {
		reply_error(req, 400, "bad_note", "a note of 3 to 1024 characters is needed", 0);
		goto done;
	}
	f.seq = rq->seq;
	if (pending(srv->reader, find_seq, &f, NULL, 0) == -1) {
		reply_error(req, 503, "audit_read_failed", "the log could not be read", 0);
		goto done;
	}
	if (!f.found) {
		reply_error(req, 404, review ? "no_such_review" : "no_such_item",
		    review ? "no override awaiting review has that id" :
		    "no outstanding inform-the-subject item has that id", 0);
		goto done;
	}
	memset(&e, 0, sizeof(e));
	e.time = time(NULL);
	e.kind = kind;
	e.agency = ag->id;
	e.decision = kind;
	e.reason = review ? rq->outcome : "informed";
	e.justification = rq->note;
	e.ref_seq = rq->seq;
	e.protocol_id = srv->proto->id;
	e.protocol_version = srv->proto->version;
	e.protocol_sha256 = srv->proto->sha256;
	n = xcalloc(1, sizeof(*n));
	n->req = req;
	logq_submit(srv->logq, &e, note_logged, n);
done:
	safeshare__v1__review_request__free_unpacked(rq, NULL);
}

void
auditor_handle_review(struct req *r)
{
	add_note(r->srv, r->ev, r->agency, "review", logstore_reviews_pending);
}

void
auditor_handle_inform_done(struct req *r)
{
	add_note(r->srv, r->ev, r->agency, "inform_done", logstore_inform_pending);
}

struct cps {
	Safeshare__V1__Checkpoint	*v;
	Safeshare__V1__Checkpoint	**p;
	size_t				 n;
	uint64_t			 upto;	/* durable: the log writer's size */
};

static int
collect_cp(const struct audit_checkpoint *cp, void *arg)
{
	struct cps			*c = arg;
	Safeshare__V1__Checkpoint	*m;

	/* Not one whose commit still waits for its fdatasync (logq.c). */
	if (cp->size > c->upto)
		return 0;
	c->v = realloc(c->v, (c->n + 1) * sizeof(*c->v));
	if (c->v == NULL)
		fatalx("%s: out of memory", __func__);
	m = &c->v[c->n++];
	safeshare__v1__checkpoint__init(m);
	m->id = cp->id;
	m->size = cp->size;
	m->time = cp->time;
	m->head_hash.len = 32;
	m->head_hash.data = xcalloc(32, 1);
	memcpy(m->head_hash.data, cp->head, 32);
	m->signature.len = 64;
	m->signature.data = xcalloc(64, 1);
	memcpy(m->signature.data, cp->sig, 64);
	m->note = xstrdup(cp->note ? cp->note : "");
	return 0;
}

void
auditor_handle_checkpoints(struct req *r)
{
	struct server			*srv = r->srv;
	struct evhttp_request		*req = r->ev;
	Safeshare__V1__CheckpointList	 out = SAFESHARE__V1__CHECKPOINT_LIST__INIT;
	struct cps			 c = { NULL, NULL, 0, 0 };
	struct logq_stats		 st;
	unsigned char			 id[16];

	logq_stats(srv->logq, &st);
	c.upto = st.size;
	logstore_log_id(srv->reader, id);
	if (logstore_checkpoints(srv->reader, collect_cp, &c, NULL, 0) == -1) {
		reply_error(req, 503, "audit_read_failed", "the log could not be read", 0);
	} else {
		c.p = xcalloc(c.n + 1, sizeof(*c.p));
		for (size_t i = 0; i < c.n; i++)
			c.p[i] = &c.v[i];
		out.log_id.len = 16;
		out.log_id.data = id;
		out.checkpoints = c.p;
		out.n_checkpoints = c.n;
		out.public_key_pem = srv->public_pem ? srv->public_pem : "";
		reply_msg(req, &out.base);
	}
	for (size_t i = 0; i < c.n; i++) {
		free(c.v[i].head_hash.data);
		free(c.v[i].signature.data);
		free(c.v[i].note);
	}
	free(c.v);
	free(c.p);
}

/* Verification of a large log takes seconds: it runs on a thread of its own. */
struct verify_job {
	struct server			*srv;
	struct evhttp_request		*req;
	struct event			*ev;
	struct audit_verify_result	 res;
};

static void *
verify_thread(void *arg)
{
	struct verify_job	*j = arg;
	struct logstore		*rd;
	char			 err[256];

	memset(&j->res, 0, sizeof(j->res));
	if (server_log_open(j->srv->conf, LOGSTORE_READER, &rd, err,
	    sizeof(err)) == -1)
		snprintf(j->res.why, sizeof(j->res.why), "%s", err);
	else {
		struct audit_verifier	*v;
		unsigned char		 id[16];

		/* The chain of keys starts at the first; the current one is trusted. */
		logstore_log_id(rd, id);
		v = audit_verifier_new(j->srv->first_key ? j->srv->first_key :
		    j->srv->public_key, id);
		if (j->srv->first_key != NULL && j->srv->public_key != NULL)
			audit_verifier_trust(v, j->srv->public_key);
		logstore_verify_with(rd, v, &j->res);
		/*
		 * Subject-access reports (D17) read the index: it must agree
		 * too. Only the SQLite log has one beside it.
		 */
		if (logstore_audit(rd) != NULL &&
		    audit_verify_index(logstore_audit(rd), &j->res) == -1)
			log_warnx("event=verify_index_failed error=\"%s\"",
			    j->res.index_why);
		logstore_close(rd);
	}
	event_active(j->ev, EV_TIMEOUT, 1);	/* thread-safe: evthread_use_pthreads */
	return NULL;
}

static void
verify_done(evutil_socket_t fd, short what, void *arg)
{
	struct verify_job		*j = arg;
	Safeshare__V1__VerifyResult	 r = SAFESHARE__V1__VERIFY_RESULT__INIT;

	r.ok = j->res.ok;
	r.entries = j->res.entries;
	r.checkpoints = j->res.checkpoints;
	r.bad_seq = j->res.bad_seq;
	r.bad_checkpoint = j->res.bad_checkpoint;
	r.why = j->res.why;
	r.signatures_checked = j->res.signatures_checked;
	r.index_checked = j->res.index_checked;
	r.index_upto = j->res.index_upto;
	r.index_missing = j->res.index_missing;
	r.index_extra = j->res.index_extra;
	r.index_error = j->res.index_error;
	r.index_why = j->res.index_why;
	log_info("event=verify ok=%d entries=%llu checkpoints=%llu bad_seq=%llu "
	    "index_checked=%d index_upto=%llu index_missing=%llu index_extra=%llu",
	    j->res.ok, (unsigned long long)j->res.entries,
	    (unsigned long long)j->res.checkpoints, (unsigned long long)j->res.bad_seq,
	    j->res.index_checked, (unsigned long long)j->res.index_upto,
	    (unsigned long long)j->res.index_missing,
	    (unsigned long long)j->res.index_extra);
	reply_msg(j->req, &r.base);
	/* The thread is done with the server: shutdown may go on (drain_check). */
	j->srv->verifying--;
	event_free(j->ev);
	free(j);
	j = NULL;
}

void
auditor_handle_verify(struct req *r)
{
	struct server			*srv = r->srv;
	struct evhttp_request		*req = r->ev;
	struct verify_job	*j;
	pthread_t		 t;

	j = xcalloc(1, sizeof(*j));
	j->srv = srv;
	j->req = req;
	j->ev = event_new(srv->base, -1, 0, verify_done, j);
	if (j->ev == NULL || pthread_create(&t, NULL, verify_thread, j) != 0) {
		reply_error(req, 500, "verify_failed", "cannot start verification", 0);
		goto fail;
	}
	/*
	 * The thread reads srv->public_key and wakes the loop: shutdown waits
	 * until verify_done() has run (server.c: drain_check).
	 */
	srv->verifying++;
	pthread_detach(t);
	return;
fail:
	if (j->ev != NULL)
		event_free(j->ev);
	free(j);
}

/*
 * The report (issue 21) reads the whole range: on a thread of its own with
 * its own reader, like verification, so the loop goes on serving.
 */
struct report_job {
	struct server			*srv;
	struct evhttp_request		*req;
	struct event			*ev;
	struct report			*rep;
	Safeshare__V1__AuditReport	*out;
	int64_t				 from;
	int				 failed;
};

static void *
report_thread(void *arg)
{
	struct report_job	*j = arg;
	struct audit_filter	 f;
	struct logstore		*rd;
	char			 err[256];

	/* Notes after the range still close its items: only from_time filters. */
	memset(&f, 0, sizeof(f));
	f.from_time = j->from;
	if (server_log_open(j->srv->conf, LOGSTORE_READER, &rd, err,
	    sizeof(err)) == -1) {
		log_warnx("event=report_failed error=\"%s\"", err);
		j->failed = 1;
	} else {
		if (logstore_query(rd, &f, 0, 0, 0, report_cb, j->rep, err,
		    sizeof(err)) == -1) {
			log_warnx("event=report_failed error=\"%s\"", err);
			j->failed = 1;
		} else
			j->out = report_finish(j->rep);
		logstore_close(rd);
	}
	event_active(j->ev, EV_TIMEOUT, 1);
	return NULL;
}

static void
report_done(evutil_socket_t fd, short what, void *arg)
{
	struct report_job *j = arg;

	if (j->failed || j->out == NULL)
		reply_error(j->req, 503, "audit_read_failed", "the log could not be read", 0);
	else {
		log_info("event=report entries=%llu", (unsigned long long)j->out->entries);
		reply_msg(j->req, &j->out->base);
	}
	j->srv->verifying--;
	report_msg_free(j->out);
	report_free(j->rep);
	event_free(j->ev);
	free(j);
}

void
auditor_handle_report(struct req *r)
{
	struct server			*srv = r->srv;
	struct evhttp_request		*req = r->ev;
	Safeshare__V1__ReportRequest	*q;
	struct report_job		*j = NULL;
	pthread_t			 t;

	if ((q = decode(req, &safeshare__v1__report_request__descriptor)) == NULL)
		return;
	if (q->to_time != 0 && q->to_time <= q->from_time) {
		reply_error(req, 400, "bad_range", "the report's end is not after its start", 0);
		goto fail;
	}
	j = xcalloc(1, sizeof(*j));
	j->srv = srv;
	j->req = req;
	j->from = q->from_time;
	j->rep = report_new(q->from_time, q->to_time, q->agency, time(NULL));
	safeshare__v1__report_request__free_unpacked(q, NULL);
	q = NULL;
	j->ev = event_new(srv->base, -1, 0, report_done, j);
	if (j->ev == NULL || pthread_create(&t, NULL, report_thread, j) != 0) {
		reply_error(req, 500, "report_failed", "cannot start the report", 0);
		goto fail;
	}
	/* Shutdown waits for report_done() as for verify_done() (drain_check). */
	srv->verifying++;
	pthread_detach(t);
	return;
fail:
	/* Not started: nothing of the job is anyone else's. */
	safeshare__v1__report_request__free_unpacked(q, NULL);
	if (j != NULL) {
		if (j->ev != NULL)
			event_free(j->ev);
		report_free(j->rep);
			free(j);
	}
}
