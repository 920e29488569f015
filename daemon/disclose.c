/*
 * POST /v1/disclosures: identity, decode, the store read, the pure decision,
 * then the decision is queued for the disclosure log and the reply goes out
 * only when its entry is durable (D7). Everything the reply needs is kept
 * in a struct pending until then. A request naming the person without a
 * holder asks every holder of the record type at once (issue 17): see
 * disclose_all() below.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "req.h"
#include "routes.h"
#include "log.h"
#include "logq.h"
#include "storage.h"
#include "policy.h"
#include "wire.h"

struct pending {
	struct server		*srv;
	struct evhttp_request	*req;
	struct protocol		*proto;		/* the version this request started on */
	wire_request		*wr;
	struct store_subject	 subj;
	int			 have_subject;
	char			 resolved[WIRE_MAX_SUBJECT + 1];	/* issue 17 */
	char			 asked[1024];	/* the person as named, for the log */
	int64_t			 now;
	char			 rid[WIRE_MAX_REQUEST_ID + 1];
	const struct agency	*ag;		/* in proto, or NULL before it is known */
	struct decision		 d;
	struct wire_space	 wr_space;	/* wr's memory, mostly (wire.h) */
	/* Kept while the subject read waits for the round's end (subject_read()). */
	struct policy_request	 pr;		/* borrows wr's strings */
	struct peer		 peer;
};

/*
 * Freed pendings kept for the next requests: a pending is 12 KiB (its
 * decision's fields), which glibc serves from its large bins, after
 * consolidating its fast bins, and calloc() zeroed whole, for every
 * disclosure (issue 13). Up to PENDING_KEEP (768 KiB) are kept; the
 * event loop's thread alone makes and frees them.
 */
#define PENDING_KEEP	64
static struct pending	*pending_kept[PENDING_KEEP];
static size_t		 npending_kept;

/* d and wr_space, which are set before they are read, lie together. */
_Static_assert(offsetof(struct pending, wr_space) - offsetof(struct pending, d) -
    sizeof(struct decision) < 16 && offsetof(struct pending, pr) ==
    offsetof(struct pending, wr_space) + sizeof(struct wire_space),
    "pr follows wr_space, which follows d");

/*
 * A pending as calloc() makes it, but for d, which policy_decide() sets,
 * and wr_space, which wire_request_decode_in() does.
 */
static struct pending *
pending_new(void)
{
	struct pending *pd;

	if (npending_kept == 0)
		return xcalloc(1, sizeof(*pd));
	pd = pending_kept[--npending_kept];
	memset(pd, 0, offsetof(struct pending, d));
	memset(&pd->pr, 0, sizeof(*pd) - offsetof(struct pending, pr));
	return pd;
}

static void
pending_free(struct pending *pd)
{
	if (pd->have_subject)
		store_subject_free(&pd->subj);
	wire_request_free_in(pd->wr, &pd->wr_space);
	protocol_unref(pd->proto);
	if (npending_kept < PENDING_KEEP)
		pending_kept[npending_kept++] = pd;
	else
		free(pd);
}

/*
 * The decision is on disk: now, and only now, the reply may leave, with
 * the receipt that proves it is in the signed log (issue 13).
 */
static void
logged(int ok, uint64_t seq, const struct audit_receipt *rc, void *arg)
{
	struct pending	*pd = arg;
	struct decision	*d = &pd->d;
	size_t		 len;
	uint8_t		*out;

	if (!ok) {
		log_warnx("event=withheld_unlogged agency=%s request_id=%s",
		    pd->ag->id, pd->rid);
		reply_audit_unavailable(pd->req);
		pending_free(pd);
		return;
	}
	pd->srv->metrics.decisions[d->kind]++;
	log_info("event=decision agency=%s decision=%s reason=%s rule=%s seq=%llu "
	    "request_id=%s", pd->ag->id, decision_name(d->kind), d->reason,
	    d->rule ? d->rule->id : "-", (unsigned long long)seq, pd->rid);
	if (strcmp(d->reason, "unknown_subject") == 0)
		reply_error_receipt(pd->req, 404, d->reason, "no such subject is "
		    "known for this record type", seq, rc);
	else if (strcmp(d->reason, "not_requester") == 0)
		reply_error_receipt(pd->req, 403, d->reason, d->detail, seq, rc);
	else if (strcmp(d->reason, "incomplete_request") == 0)
		reply_error_receipt(pd->req, 400, d->reason, d->detail, seq, rc);
	else {
		out = wire_response_encode_in(d, pd->proto->id, pd->proto->version,
		    seq, pd->subj.view.last_verified, pd->now, rc, reply_body_get,
		    &len);
		reply_kept(pd->req, 200, out, len);
	}
	pending_free(pd);
}

/*
 * evhttp stops reading a connection when a request is in and starts again
 * once the reply is out: an epoll_ctl(2) to remove the socket and another
 * to add it back, for every disclosure (1.2 us of its CPU). While the log
 * writes the entry, read on as evhttp itself does while it writes a reply
 * (to see a close): with no read callback, so bytes that come meanwhile
 * wait in the input buffer, bounded by the watermark conn.c sets when a
 * request arrives (input_cap()), and evhttp takes them after the reply. A close then frees the
 * connection at once and the reply, when its entry is written, goes
 * nowhere (reply() copes). Only here: a disclosure is written in
 * milliseconds, within limits.timeout, which reading arms.
 */
static void
read_while_logging(struct evhttp_request *req)
{
	struct evhttp_connection	*evc = evhttp_request_get_connection(req);
	struct bufferevent		*bev = evc ? evhttp_connection_get_bufferevent(evc) :
					    NULL;
	bufferevent_data_cb		 wcb;
	bufferevent_event_cb		 ecb;
	void				*cbarg;

	if (bev == NULL)
		return;
	bufferevent_getcb(bev, NULL, &wcb, &ecb, &cbarg);
	bufferevent_setcb(bev, NULL, wcb, ecb, cbarg);
	bufferevent_enable(bev, EV_READ);
}

/*
 * Queues the log entry of one decision (D7, docs/audit-format.md); cb runs
 * once it is durable. pr names the subject the decision is about: the local
 * id, once a person is resolved to a holder's view.
 */
static void
log_decision(struct server *srv, const struct protocol *proto, int64_t now,
    const char *rid, const struct agency *ag, const char *cert_fp,
    const struct policy_request *pr, const struct decision *d, logq_rcb cb,
    void *arg)
{
	struct audit_entry	 e;
	char			 released[2048], withheld[2048];
	char			 waiver[MAX_LOG_FIELD + sizeof(POLICY_WAIVER_REJECTED)];

	wire_fields_summary(d, 1, released, sizeof(released));
	wire_fields_summary(d, 0, withheld, sizeof(withheld));
	memset(&e, 0, sizeof(e));
	e.time = now;
	e.kind = "disclosure";
	e.agency = ag->id;
	e.cert_fp = cert_fp;
	e.practitioner = pr->practitioner;
	e.purpose = pr->purpose;
	e.lawful_basis = d->purpose ? d->purpose->lawful_basis : "";
	e.case_ref = pr->case_ref;
	e.subject = pr->subject_id;
	e.record_type = pr->record_type;
	e.decision = decision_name(d->kind);
	e.reason = d->reason;
	e.released = released;
	e.withheld = withheld;
	e.consent = d->consent;
	/*
	 * override_code is the exception the request invoked, used or not;
	 * the reason (override, override_partial) says whether it decided
	 * the outcome, and only then is it reviewed, counted and an inform
	 * item (D5, D6); a denied request that invoked one is reviewed too
	 * (D15). docs/audit-format.md.
	 */
	e.override_code = d->override_used ? override_name(d->override) :
	    pr->override_code;
	e.justification = pr->justification;
	/*
	 * An accepted waiver is logged as given; one the policy did not
	 * accept is logged behind the not-accepted marker, so whoever works
	 * the inform list sees that the practitioner thought telling the
	 * subject dangerous (D6).
	 */
	waiver[0] = '\0';
	if (d->override_used && pr->inform_waiver != NULL &&
	    pr->inform_waiver[0] != '\0') {
		if (!d->inform_subject)
			snprintf(waiver, sizeof(waiver), "%s", pr->inform_waiver);
		else
			snprintf(waiver, sizeof(waiver), "%s%s", POLICY_WAIVER_REJECTED,
			    pr->inform_waiver);
	}
	e.inform_waiver = waiver;
	e.rule_id = d->rule ? d->rule->id : "";
	e.protocol_id = proto->id;
	e.protocol_version = proto->version;
	e.protocol_sha256 = proto->sha256;
	e.request_id = rid;
	logq_submit_receipt(srv->logq, &e, cb, arg);
}

static void
submit(struct pending *pd, const struct agency *ag, const struct peer *p,
    const struct policy_request *pr)
{
	read_while_logging(pd->req);
	log_decision(pd->srv, pd->proto, pd->now, pd->rid, ag, p->fp, pr, &pd->d,
	    logged, pd);
}

/*
 * Issue 14: over-long, blank or invisible-only text, control characters in
 * an identifier, or a request id outside [A-Za-z0-9._:-]{1,64} is refused
 * with a logged 400 whose code names the field (invalid_practitioner, ...).
 * The log entry keeps every field of the request that is itself acceptable,
 * never a placeholder. Returns -1 when it refused.
 */
static int
refuse_bad_text(struct server *srv, struct evhttp_request *req, const struct peer *p,
    const struct agency *ag, struct pending *pd)
{
	const wire_request	*w = pd->wr;
	struct audit_entry	 e;
	const char		*field, *why;
	char			 code[64], msg[200];

	if ((field = wire_request_problem(w, &why)) == NULL)
		return 0;
#define OK(f, v)	(wire_field_problem(f, v) == NULL ? (v) : NULL)
	memset(&e, 0, sizeof(e));
	e.agency = ag->id;
	e.cert_fp = p->fp;
	e.practitioner = OK("practitioner", w->practitioner);
	e.purpose = OK("purpose", w->purpose);
	e.case_ref = OK("case_reference", w->case_reference);
	e.subject = OK("subject_id", w->subject_id);
	e.record_type = OK("record_type", w->record_type);
	e.override_code = OK("override_code", w->override_code);
	e.justification = OK("override_justification", w->override_justification);
#undef OK
	e.request_id = pd->rid;		/* the client's only when it is acceptable */
	snprintf(code, sizeof(code), "invalid_%s", field);
	snprintf(msg, sizeof(msg), "%s %s", field, why);
	refuse_entry(srv, req, &e, 400, code, msg);
	return -1;
}

/*
 * Issue 17 (D18): the answer to a person that is not exactly one: a logged
 * refusal that names no one: 409 ambiguous, 400 invalid_person, else 404
 * no_match (D18: no data, no count, no hint).
 */
static void
refuse_match(struct req *r, struct pending *pd, const struct policy_request *pr,
    const struct match_result *res)
{
	struct audit_entry e;

	memset(&e, 0, sizeof(e));
	e.agency = pd->ag->id;
	e.cert_fp = r->peer.fp;
	e.request_id = pd->rid;
	e.purpose = pr->purpose;
	e.record_type = pr->record_type;
	if (res->outcome == MATCH_AMBIGUOUS)
		refuse_entry(r->srv, r->ev, &e, 409, "ambiguous", "more than one person "
		    "matches; give the NHS number or the postcode");
	else if (res->outcome == MATCH_INVALID)
		refuse_entry(r->srv, r->ev, &e, 400, "invalid_person", res->why);
	else
		refuse_entry(r->srv, r->ev, &e, 404, "no_match", "no one matches");
}

/* why: the store's message (err of the call that failed). */
static void
store_failed(struct evhttp_request *req, const char *why)
{
	log_warnx("event=store_failed error=\"%s\"", why);
	reply_error(req, 503, "store_unavailable", "the record store could not be "
	    "read; nothing was released", 0);
}

/* The person a request names by NHS number or demographics. */
static void
person_query(const Safeshare__V1__PersonRef *p, struct match_query *q)
{
	memset(q, 0, sizeof(*q));
	q->nhs = p->nhs_number;
	q->family = p->family_name;
	q->given = p->given_name;
	q->dob = p->date_of_birth;
	q->postcode = p->postcode;
}

/*
 * Issue 17 (D18): a request naming the person by NHS number or
 * demographics and the holder asked goes on as a request for that
 * holder's local id (into pd->resolved), only when exactly one person
 * matches and that holder holds them. Otherwise a logged refusal that
 * names no one: 404 no_match (also when the holder does not hold the
 * person), 409 ambiguous, 400 invalid_person or invalid_<field>.
 * Returns 1 resolved, 0 not this form, 2 this form without a holder
 * (disclose_all()), -1 answered (or a store error).
 */
static int
resolve_person(struct req *r, struct pending *pd, struct policy_request *pr)
{
	const Safeshare__V1__PersonRef	*p = pd->wr->person;
	struct match_query		 q;
	struct match_result		 res;
	struct audit_entry		 e;
	const char			*field, *why;
	char				 code[64], msg[200], serr[256];
	int				 rc;

	if (pr->subject_id[0] != '\0' || p == NULL || (p->nhs_number[0] == '\0' &&
	    p->family_name[0] == '\0' && p->given_name[0] == '\0' &&
	    p->date_of_birth[0] == '\0'))
		return 0;
	if ((field = wire_person_problem(p, &why)) != NULL) {
		memset(&e, 0, sizeof(e));
		e.agency = pd->ag->id;
		e.cert_fp = r->peer.fp;
		e.request_id = pd->rid;
		e.purpose = pr->purpose;
		e.record_type = pr->record_type;
		snprintf(code, sizeof(code), "invalid_%s", field);
		snprintf(msg, sizeof(msg), "%s %s", field, why);
		refuse_entry(r->srv, r->ev, &e, 400, code, msg);
		return -1;
	}
	wire_person_asked(NULL, p, pd->asked, sizeof(pd->asked));
	if (p->holder[0] == '\0')
		return 2;
	person_query(p, &q);
	server_read_scope(r->srv);
	if (storage_find(r->srv->store, &q, &res, serr, sizeof(serr)) == -1)
		goto dberr;
	rc = 0;
	if (res.outcome == MATCH_ONE && (rc = storage_holding(r->srv->store,
	    res.person, p->holder, pd->resolved, sizeof(pd->resolved), serr,
	    sizeof(serr))) == -1)
		goto dberr;
	if (rc == 1) {
		pr->subject_id = pd->resolved;
		return 1;
	}
	refuse_match(r, pd, pr, &res);
	return -1;
dberr:
	store_failed(r->ev, serr);
	return -1;
}

/*
 * Issue 17 item 4: one request, every holder. Each holder's view of the
 * person that holds a record of the type is decided as if it had been
 * asked alone (the whole decision order: rule, consent at that holder,
 * the person's flags, minimisation), and each decision is a log entry of
 * its own under that holder's local id (D7, D17, D20). The entries are
 * queued in one go, so the writer commits them together (one fsync, one
 * wait); the reply leaves when the last callback has run.
 */
struct held {
	struct mpending		*mp;
	const char		*holder;	/* in mp->strs */
	const char		*subject;	/* the holder's local id, in mp->strs */
	struct store_subject	 subj;
	int			 have_subject;
	struct decision		 d;
	Safeshare__V1__DisclosureResponse *resp;	/* its result, once logged */
};

struct mpending {
	struct pending		*pd;		/* the request, its reply and protocol */
	struct peer		 peer;
	struct policy_request	 pr;		/* borrows pd->wr's strings */
	struct strlist		 strs;
	struct held		*h;
	size_t			 n;
	size_t			 waiting;	/* entries not yet durable */
	int			 failed;
};

static void
mpending_free(struct mpending *mp)
{
	for (size_t i = 0; mp->h != NULL && i < mp->n; i++) {
		if (mp->h[i].have_subject)
			store_subject_free(&mp->h[i].subj);
		if (mp->h[i].resp != NULL)
			safeshare__v1__disclosure_response__free_unpacked(mp->h[i].resp,
			    NULL);
	}
	free(mp->h);
	strlist_free(&mp->strs);
	pending_free(mp->pd);
	free(mp);
}

/* The reply: one result per holder, in holder order. */
static void
reply_all(struct mpending *mp)
{
	Safeshare__V1__DisclosureResponse	  m = SAFESHARE__V1__DISCLOSURE_RESPONSE__INIT;
	Safeshare__V1__DisclosureResponse	**hp;
	uint8_t					 *buf;
	size_t					  len;

	hp = xcalloc(mp->n, sizeof(*hp));
	for (size_t i = 0; i < mp->n; i++)
		hp[i] = mp->h[i].resp;
	m.reason = "per_holder";
	m.protocol_id = mp->pd->proto->id;
	m.protocol_version = mp->pd->proto->version;
	m.holders = hp;
	m.n_holders = mp->n;
	len = safeshare__v1__disclosure_response__get_packed_size(&m);
	buf = xcalloc(len + 1, 1);
	safeshare__v1__disclosure_response__pack(&m, buf);
	free(hp);
	reply(mp->pd->req, 200, buf, len);
}

/*
 * One holder's entry is durable (or not): its result is made now, with its
 * receipt (valid only during this call). The last one answers; if any
 * entry could not be written nothing is released (D7).
 */
static void
held_logged(int ok, uint64_t seq, const struct audit_receipt *rc, void *arg)
{
	struct held	*h = arg;
	struct mpending	*mp = h->mp;
	struct pending	*pd = mp->pd;
	uint8_t		*out;
	size_t		 len;

	if (ok && !mp->failed) {
		pd->srv->metrics.decisions[h->d.kind]++;
		log_info("event=decision agency=%s holder=%s decision=%s reason=%s "
		    "rule=%s seq=%llu request_id=%s", pd->ag->id, h->holder,
		    decision_name(h->d.kind), h->d.reason, h->d.rule ? h->d.rule->id :
		    "-", (unsigned long long)seq, pd->rid);
		out = wire_response_encode(&h->d, pd->proto->id, pd->proto->version,
		    seq, h->subj.view.last_verified, pd->now, rc, &len);
		h->resp = safeshare__v1__disclosure_response__unpack(NULL, len, out);
		free(out);
		if (h->resp == NULL)
			ok = 0;
		else
			h->resp->holder = xstrdup(h->holder);	/* freed with resp */
	}
	if (!ok)
		mp->failed = 1;
	if (--mp->waiting > 0)
		return;
	if (mp->failed) {
		log_warnx("event=withheld_unlogged agency=%s request_id=%s",
		    pd->ag->id, pd->rid);
		reply_audit_unavailable(pd->req);
	} else
		reply_all(mp);
	mpending_free(mp);
}

/*
 * Keeps each (holder, local id) holding a record of the asked type: at most
 * one per holder (a holder holds a person under one local id, person.h), so
 * an answer is bounded by the holders in the store.
 */
static int
keep_holder(const char *holder, const char *subject, const char *record_type,
    void *arg)
{
	struct mpending *mp = arg;

	if (strcmp(record_type, mp->pr.record_type) != 0)
		return 0;
	if (strlist_add(&mp->strs, holder) == -1 ||
	    strlist_add(&mp->strs, subject) == -1)
		return -1;
	mp->n++;
	return 0;
}

/*
 * The request names the person without a holder (resolve_person() returned
 * 2). First the steps that read no subject, decided for the person as
 * named: a refusal there (no rule, unknown purpose, ...) is one entry and
 * answered as today. D19: a rule marked `locate: false` never names its
 * holders, so such a request is refused (400 holder_required) before the
 * person is looked for, alike whether anyone holds them. Then the person:
 * not exactly one is refused as with a holder; one person of whom no
 * holder holds that record type is the one entry 404 unknown_subject.
 * Takes pd.
 */
static void
disclose_all(struct req *r, struct pending *pd, struct policy_request *pr)
{
	const Safeshare__V1__PersonRef	*p = pd->wr->person;
	const struct record_type	*rt;
	struct mpending			*mp = NULL;
	struct match_query		 q;
	struct match_result		 res;
	struct audit_entry		 e;
	char				 msg[200], serr[256];

	pr->subject_id = pd->asked;
	policy_decide(pd->proto, pd->ag, pr, NULL, pd->now, &pd->d);
	if (strcmp(pd->d.reason, "unknown_subject") != 0) {
		submit(pd, pd->ag, &r->peer, pr);
		return;
	}
	if (pd->d.rule->not_locatable) {
		memset(&e, 0, sizeof(e));
		e.agency = pd->ag->id;
		e.cert_fp = r->peer.fp;
		e.request_id = pd->rid;
		e.practitioner = pr->practitioner;
		e.purpose = pr->purpose;
		e.case_ref = pr->case_ref;
		e.subject = pd->asked;
		e.record_type = pr->record_type;
		e.rule_id = pd->d.rule->id;
		snprintf(msg, sizeof(msg), "rule %s keeps its holders out of answers "
		    "that do not name them (locate: false): name the holder",
		    pd->d.rule->id);
		refuse_entry(r->srv, r->ev, &e, 400, "holder_required", msg);
		goto fail;
	}
	rt = pd->d.record_type;
	person_query(p, &q);
	server_read_scope(r->srv);
	if (storage_find(r->srv->store, &q, &res, serr, sizeof(serr)) == -1) {
		store_failed(r->ev, serr);
		goto fail;
	}
	if (res.outcome != MATCH_ONE) {
		refuse_match(r, pd, pr, &res);
		goto fail;
	}
	mp = xcalloc(1, sizeof(*mp));
	mp->pd = pd;
	mp->peer = r->peer;
	mp->pr = *pr;
	if (storage_records(r->srv->store, res.person, keep_holder, mp, serr,
	    sizeof(serr)) == -1) {
		store_failed(r->ev, serr);
		goto fail;
	}
	if (mp->n == 0) {
		/* Held by no one under this record type: pd->d says so. */
		strlist_free(&mp->strs);
		free(mp);
		submit(pd, pd->ag, &r->peer, pr);
		return;
	}
	mp->h = xcalloc(mp->n, sizeof(*mp->h));
	for (size_t i = 0; i < mp->n; i++) {
		struct held		*h = &mp->h[i];
		struct policy_request	 one = mp->pr;

		h->mp = mp;
		h->holder = mp->strs.v[2 * i];
		h->subject = mp->strs.v[2 * i + 1];
		if (storage_subject(r->srv->store, rt, h->subject, pd->ag->id,
		    pr->purpose, &h->subj, serr, sizeof(serr)) == -1) {
			store_failed(r->ev, serr);
			goto fail;
		}
		h->have_subject = 1;
		one.subject_id = h->subject;
		policy_decide(pd->proto, pd->ag, &one, &h->subj.view, pd->now, &h->d);
	}
	read_while_logging(pd->req);
	mp->waiting = mp->n;
	for (size_t i = 0; i < mp->n; i++) {
		struct policy_request one = mp->pr;

		one.subject_id = mp->h[i].subject;
		log_decision(r->srv, pd->proto, pd->now, pd->rid, pd->ag, mp->peer.fp,
		    &one, &mp->h[i].d, held_logged, &mp->h[i]);
	}
	return;
fail:
	if (mp != NULL)
		mpending_free(mp);	/* frees pd */
	else
		pending_free(pd);
}

/* The policy's decision on what was read, then its log entry (submit()). */
static void
decide(struct pending *pd, const struct policy_request *pr, const struct peer *p)
{
	policy_decide(pd->proto, pd->ag, pr, pd->have_subject ? &pd->subj.view :
	    NULL, pd->now, &pd->d);
	submit(pd, pd->ag, p, pr);
}

/*
 * The subject read queued by disclose_handle() is done, at the end of the
 * loop round with the round's other reads (storage_flush(), from
 * server.c's round_end()). A failed read is 503 and nothing is released.
 */
static void
subject_read(int rc, const char *err, void *arg)
{
	struct pending *pd = arg;

	if (rc == -1) {
		store_failed(pd->req, err);
		pending_free(pd);
		return;
	}
	decide(pd, &pd->pr, &pd->peer);
}

/*
 * POST /v1/disclosures. The route table has found the peer's agency and
 * taken a rate token (routes.c); here the body is checked, the subject
 * read and the policy decides (D1-D20); submit() logs the decision and
 * the reply follows once it is durable (D7). One exit for every refusal:
 * fail frees the pending request.
 */
void
disclose_handle(struct req *r)
{
	struct server		*srv = r->srv;
	struct evhttp_request	*req = r->ev;
	const struct agency	*ag = r->agency;
	const struct record_type *rt;
	const uint8_t		*body;
	struct policy_request	 pr;
	struct pending		*pd;
	size_t			 len;
	char			 serr[256];

	pd = pending_new();
	pd->srv = srv;
	pd->req = req;
	pd->proto = protocol_ref(srv->proto);
	pd->now = time(NULL);
	pd->ag = ag;
	snprintf(pd->rid, sizeof(pd->rid), "%s", r->rid);
	body = req_body(r, &len);
	if ((pd->wr = wire_request_decode_in(body, len, &pd->wr_space)) == NULL) {
		refuse(srv, req, &r->peer, ag->id, 400, "malformed_request",
		    "the body is not a valid safeshare.v1.DisclosureRequest", pd->rid);
		goto fail;
	}
	wire_request_view(pd->wr, &pr);
	if (wire_request_id_ok(pd->wr->request_id))
		snprintf(pd->rid, sizeof(pd->rid), "%s", pd->wr->request_id);
	if (refuse_bad_text(srv, req, &r->peer, ag, pd) == -1)
		goto fail;
	switch (resolve_person(r, pd, &pr)) {
	case -1:
		goto fail;
	case 2:
		disclose_all(r, pd, &pr);	/* takes pd */
		return;
	}

	if ((rt = protocol_record_type(pd->proto, pr.record_type)) != NULL &&
	    pr.subject_id[0] != '\0') {
		server_read_scope(srv);
		switch (storage_subject_queue(srv->store, rt, pr.subject_id, ag->id,
		    pr.purpose, &pd->subj, subject_read, pd, serr, sizeof(serr))) {
		case -1:
			store_failed(req, serr);
			goto fail;
		case 1:
			/* pr's strings are wr's; subject_read() goes on. */
			pd->have_subject = 1;
			pd->pr = pr;
			pd->peer = r->peer;
			return;
		}
		pd->have_subject = 1;
	}
	decide(pd, &pr, &r->peer);
	return;
fail:
	pending_free(pd);
}
