/*
 * Feeds (issue 18, D20): POST /v1/holder/accesses, every use of a holder's
 * own records, and POST /v1/audit/alerts, what the Caldicott Guardian must
 * hear of at once. Both are a filtered read of the disclosure log after a
 * cursor (the log seq; src/feed.c says which entries), paged, and may
 * long-poll: a request with wait_seconds and nothing to return is parked
 * (the evhttp request stays pending on the loop, no thread waits) until
 * the log writer's next commit brings an item (logq_set_hook()) or its
 * deadline passes, when it is answered empty.
 *
 * Parked requests are bounded, per agency and in all (429 beyond, with
 * Retry-After), and each keeps the seq it has read up to, so a wake-up
 * reads only the entries committed since. A parked request whose client
 * hangs up is freed then, not at its deadline (waiter_hangup()). Reads use the auditors'
 * read-only connection (WAL readers never block the writer).
 */
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit_pb.h"
#include "feed.h"
#include "feeds.h"
#include "req.h"
#include "routes.h"
#include "log.h"
#include "pbjson.h"
#include "logq.h"
#include "notify.h"
#include "storage.h"
#include "util.h"
#include "wire.h"

#define WAITERS_PER_AGENCY	8	/* parked requests of one agency */
#define WAITERS_MAX		256	/* parked requests in all */
#define SCAN_CHUNK		1024	/* entries read per query */
#define SCAN_MAX		65536	/* entries read for one answer at most */

enum feed_kind { FEED_ACCESSES, FEED_ALERTS };

struct waiter {
	TAILQ_ENTRY(waiter)	 next;
	struct feeds		*f;
	struct evhttp_request	*req;
	struct event		*timer;
	struct event		*hangup;	/* the client closed (EV_CLOSED) */
	enum feed_kind		 kind;
	char			 agency[PROTOCOL_ID_MAX + 1];
	uint64_t		 after;		/* read up to here, nothing found */
	size_t			 limit;
};
TAILQ_HEAD(waiterq, waiter);

/* An agency's last cursor per feed, for the lag in /metrics. */
struct reader {
	char			 agency[PROTOCOL_ID_MAX + 1];
	uint64_t		 cursor[2];
	int			 seen[2];
};
#define READERS_MAX		256	/* agencies tracked (a protocol has fewer) */

struct feeds {
	struct server		*srv;
	struct reader		 readers[READERS_MAX];
	size_t			 nreaders;
	struct waiterq		 waiters;
	size_t			 nwaiting;
	int			 log_ok;	/* as the hook last saw it */
	uint64_t		 served[2];	/* replies, by feed */
	uint64_t		 items[2];	/* items sent, by feed */
	uint64_t		 parked;	/* requests that waited */
	uint64_t		 refused;	/* 429: too many waiting */
	uint64_t		 dropped;	/* the client hung up while parked */
};

/* One answer being collected; owns every message and string in it. */
struct page {
	enum feed_kind		 kind;
	const char		*agency;	/* accesses: the holder */
	struct server		*srv;		/* NULL: the notifier's page */
	struct logstore		*reader;	/* the log, read-only */
	struct storage		*store;		/* who holds a subject */
	size_t			 limit, n;
	uint64_t		 last;		/* the last seq read */
	uint64_t		 read;		/* entries read */
	uint64_t		 upto;		/* durable: the log writer's size */
	int			 failed;	/* the store could not be read */
	char			 subj[256];	/* owner cache: the last subject ... */
	int			 mine;		/* ... and whether it is the holder's */
	void			**items;
};

static char *
dup0(const char *s)
{
	return xstrdup(s != NULL ? s : "");
}

/*
 * 1 if subject is held by the page's holder. The holder is the store's
 * answer now, when the feed is read (docs/api.md): the log names the
 * subject, not its holder.
 */
static int
held_by(struct page *pg, const char *subject)
{
	char	holder[PROTOCOL_ID_MAX + 1];
	int	rc;

	if (strlen(subject) < sizeof(pg->subj) && strcmp(pg->subj, subject) == 0)
		return pg->mine;
	/* The feed answers only that the store could not be read: no err kept. */
	rc = storage_subject_holder(pg->store, subject, holder, sizeof(holder),
	    NULL, 0);
	if (rc == -1) {
		pg->failed = 1;
		return 0;
	}
	pg->mine = rc == 1 && strcmp(holder, pg->agency) == 0;
	snprintf(pg->subj, sizeof(pg->subj), "%s", strlen(subject) <
	    sizeof(pg->subj) ? subject : "");
	return pg->mine;
}

static Safeshare__V1__HolderAccess *
access_of(const struct audit_entry *e, const char *holder)
{
	Safeshare__V1__HolderAccess *a = xcalloc(1, sizeof(*a));

	safeshare__v1__holder_access__init(a);
	a->seq = e->seq;
	a->time = e->time;
	a->kind = dup0(e->kind);
	a->agency = dup0(e->agency);
	a->practitioner = dup0(e->practitioner);
	a->purpose = dup0(e->purpose);
	a->lawful_basis = dup0(e->lawful_basis);
	a->case_ref = dup0(e->case_ref);
	a->subject = dup0(e->subject);
	a->record_type = dup0(e->record_type);
	a->decision = dup0(e->decision);
	a->reason = dup0(e->reason);
	if (e->kind != NULL && strcmp(e->kind, "locate") == 0) {
		/* Only this holder's part of the answer (D19). */
		a->released = feed_own_part(e->released, holder);
		a->withheld = feed_own_part(e->withheld, holder);
	} else {
		a->released = dup0(e->released);
		a->withheld = dup0(e->withheld);
	}
	a->override_code = dup0(e->override_code);
	a->rule_id = dup0(e->rule_id);
	return a;
}

static void
access_free(Safeshare__V1__HolderAccess *a)
{
	char *s[] = { a->kind, a->agency, a->practitioner, a->purpose,
	    a->lawful_basis, a->case_ref, a->subject, a->record_type, a->decision,
	    a->reason, a->released, a->withheld, a->override_code, a->rule_id };

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		free(s[i]);
	free(a);
}

/* The log entry whole, as auditors read it (the guardian is one). */
static Safeshare__V1__LogEntry *
entry_of(const struct audit_entry *e)
{
	Safeshare__V1__LogEntry *m = xcalloc(1, sizeof(*m));

	audit_entry_to_pb(e, m);
	return m;
}

static void
alert_free(Safeshare__V1__Alert *a)
{
	if (a->entry != NULL) {
		audit_entry_pb_clear(a->entry);
		free(a->entry);
	}
	free(a->type);
	free(a->message);
	free(a);
}

static Safeshare__V1__Alert *
alert_new(uint64_t seq, int64_t t, const char *type, const char *message)
{
	Safeshare__V1__Alert *a = xcalloc(1, sizeof(*a));

	safeshare__v1__alert__init(a);
	a->seq = seq;
	a->time = t;
	a->type = xstrdup(type);
	a->message = xstrdup(message);
	return a;
}

/* logstore_scan() callback: keeps the entries the page's feed carries. */
static int
take(const struct audit_entry *e, void *arg)
{
	struct page	*pg = arg;
	const char	*type;

	if (e->seq > pg->upto)
		return 1;		/* committed, its fdatasync not done */
	pg->last = e->seq;
	pg->read++;
	if (pg->kind == FEED_ACCESSES) {
		if (!feed_is_access(e) || !held_by(pg, e->subject))
			return pg->failed;
		pg->items[pg->n++] = access_of(e, pg->agency);
	} else {
		if ((type = feed_alert_type(e)) == NULL)
			return 0;
		Safeshare__V1__Alert *a = alert_new(e->seq, e->time, type, "");

		a->entry = entry_of(e);
		pg->items[pg->n++] = a;
	}
	return pg->n == pg->limit;
}

static void
page_init(struct page *pg, struct server *srv, enum feed_kind kind,
    const char *agency, size_t limit, uint64_t after)
{
	memset(pg, 0, sizeof(*pg));
	pg->srv = srv;
	pg->reader = srv->reader;
	pg->store = srv->store;
	pg->kind = kind;
	pg->agency = agency;
	pg->limit = limit;
	pg->last = after;
	{
		struct logq_stats st;

		/* Items up to what the log writer knows is on disk (logq.c). */
		logq_stats(srv->logq, &st);
		pg->upto = st.size;
	}
	pg->items = xcalloc(limit + 1, sizeof(*pg->items));
}

static void
page_free(struct page *pg)
{
	for (size_t i = 0; i < pg->n; i++)
		if (pg->kind == FEED_ACCESSES)
			access_free(pg->items[i]);
		else
			alert_free(pg->items[i]);
	free(pg->items);
}

/*
 * Reads the log after pg->last until the page has an item (or is full),
 * the log ends, or SCAN_MAX entries were read. Returns 0 or -1 (the log or
 * the store could not be read).
 */
static int
page_fill(struct page *pg)
{
	if (pg->srv != NULL)
		server_read_scope(pg->srv);
	while (pg->n == 0 && pg->read < SCAN_MAX) {
		uint64_t before = pg->read;

		if (logstore_scan(pg->reader, pg->last + 1, SCAN_CHUNK, take,
		    pg, NULL, 0) == -1 || pg->failed)
			return -1;
		if (pg->read - before < SCAN_CHUNK && pg->n < pg->limit)
			break;		/* the end of the log */
	}
	return 0;
}

/* Notes where the agency's reader of this feed is now (its lag, /metrics). */
static void
note_cursor(struct feeds *f, const char *agency, enum feed_kind kind, uint64_t seq)
{
	struct reader	*r = NULL;

	for (size_t i = 0; i < f->nreaders && r == NULL; i++)
		if (strcmp(f->readers[i].agency, agency) == 0)
			r = &f->readers[i];
	if (r == NULL) {
		if (f->nreaders == READERS_MAX)
			return;
		r = &f->readers[f->nreaders++];
		snprintf(r->agency, sizeof(r->agency), "%s", agency);
	}
	r->cursor[kind] = seq;
	r->seen[kind] = 1;
}

/* Sends the page; next_after_seq is the last seq read (never less than after). */
static void
page_reply(struct feeds *f, struct evhttp_request *req, struct page *pg)
{
	struct logq_stats	 st;
	uint8_t			*buf;
	size_t			 len;

	logq_stats(f->srv->logq, &st);
	if (pg->kind == FEED_ACCESSES) {
		Safeshare__V1__HolderAccesses out = SAFESHARE__V1__HOLDER_ACCESSES__INIT;

		out.items = (Safeshare__V1__HolderAccess **)pg->items;
		out.n_items = pg->n;
		out.next_after_seq = pg->last;
		out.log_size = st.size;
		len = safeshare__v1__holder_accesses__get_packed_size(&out);
		buf = xcalloc(len + 1, 1);
		safeshare__v1__holder_accesses__pack(&out, buf);
	} else {
		Safeshare__V1__AuditAlerts out = SAFESHARE__V1__AUDIT_ALERTS__INIT;

		out.alerts = (Safeshare__V1__Alert **)pg->items;
		out.n_alerts = pg->n;
		out.next_after_seq = pg->last;
		out.log_size = st.size;
		len = safeshare__v1__audit_alerts__get_packed_size(&out);
		buf = xcalloc(len + 1, 1);
		safeshare__v1__audit_alerts__pack(&out, buf);
	}
	f->served[pg->kind]++;
	f->items[pg->kind] += pg->n;
	note_cursor(f, pg->agency, pg->kind, pg->last);
	reply(req, 200, buf, len);
}

/*
 * Frees the waiter, not its request. The request's connection stops
 * calling waiter_gone() first: it may live on (kept alive) after this
 * request is answered.
 */
static void
waiter_free(struct waiter *w)
{
	struct evhttp_connection *evc = evhttp_request_get_connection(w->req);

	if (evc != NULL)
		evhttp_connection_set_closecb(evc, NULL, NULL);
	TAILQ_REMOVE(&w->f->waiters, w, next);
	w->f->nwaiting--;
	event_free(w->timer);
	if (w->hangup != NULL)
		event_free(w->hangup);
	free(w);
}

/*
 * Answers a parked request with what is there now (maybe nothing); with
 * only_if_items, leaves it parked when there is nothing. oob_type, for an
 * alerts request, puts first an alert no log entry can carry (seq 0: the
 * log became unwritable, or writable again), sent even if the log cannot
 * be read.
 */
static void
waiter_answer(struct waiter *w, int only_if_items, const char *oob_type,
    const char *oob_msg)
{
	struct feeds		*f = w->f;
	struct evhttp_request	*req = w->req;
	struct page		 pg;
	char			 agency[PROTOCOL_ID_MAX + 1];	/* outlives w */
	int			 rc;

	if (w->kind != FEED_ALERTS)
		oob_type = NULL;
	snprintf(agency, sizeof(agency), "%s", w->agency);
	page_init(&pg, w->f->srv, w->kind, agency, w->limit, w->after);
	rc = page_fill(&pg);
	if (rc == 0 && pg.n == 0 && only_if_items && oob_type == NULL) {
		w->after = pg.last;	/* read: the next wake-up starts here */
		page_free(&pg);
		return;
	}
	if (rc == -1 && oob_type != NULL) {
		page_free(&pg);
		page_init(&pg, w->f->srv, w->kind, agency, w->limit, w->after);
		rc = 0;
	}
	if (oob_type != NULL) {
		/* items has room for limit + 1. */
		memmove(pg.items + 1, pg.items, pg.n * sizeof(*pg.items));
		pg.items[0] = alert_new(0, (int64_t)time(NULL), oob_type, oob_msg);
		pg.n++;
	}
	/* Off the list before the reply: the request is answered, not parked. */
	waiter_free(w);
	if (rc == -1) {
		log_warnx("event=feed_read_failed feed=%s",
		    pg.kind == FEED_ACCESSES ? "accesses" : "alerts");
		reply_error(req, 503, "audit_read_failed", "the log could not be "
		    "read", 0);
	} else
		page_reply(f, req, &pg);
	page_free(&pg);
}

/*
 * The parked request's connection is going away: the client hung up (or
 * evhttp_free() at shutdown). Issue 18: the slot is freed now, not at the
 * deadline, so an agency whose clients drop and reconnect is not locked
 * out with 429s. This runs on the loop, like the wake-up and the deadline,
 * so neither can be half-way through this waiter; once it is off the list
 * and its timer freed, nothing reaches it again. On a hang-up evhttp has
 * already taken the unanswered request off the connection and left it to
 * its owner (this file), so it is freed here; at shutdown it is still on
 * its connection, and evhttp frees it with the connection.
 */
static void
waiter_gone(struct evhttp_connection *evc, void *arg)
{
	struct waiter		*w = arg;
	struct evhttp_request	*req = w->req;

	(void)evc;
	w->f->dropped++;
	waiter_free(w);
	if (evhttp_request_get_connection(req) == NULL)
		evhttp_request_free(req);
}

/*
 * The client's end of the socket closed while parked. evhttp reads nothing
 * from a connection between a request's body and its reply, so it would
 * see the end of file only when the reply is written, at the deadline.
 * Here it is told now, from this event of our own (as conn.c closes a
 * connection), and tears the connection down: waiter_gone() runs.
 */
static void
waiter_hangup(evutil_socket_t fd, short what, void *arg)
{
	struct waiter			*w = arg;
	struct evhttp_connection	*evc = evhttp_request_get_connection(w->req);
	struct bufferevent		*bev;

	(void)fd;
	(void)what;
	if (evc != NULL && (bev = evhttp_connection_get_bufferevent(evc)) != NULL)
		bufferevent_trigger_event(bev, BEV_EVENT_EOF | BEV_EVENT_READING, 0);
}

static void
waiter_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	waiter_answer(arg, 0, NULL, NULL);
}

/*
 * The log writer's hook, on the loop after each commit: every parked
 * request with something new is answered. A request reads only what was
 * committed since its last look.
 */
static void
feeds_wake(void *arg)
{
	struct feeds		*f = arg;
	struct waiter		*w, *next;
	struct logq_stats	 st;

	logq_stats(f->srv->logq, &st);
	/* The notifier thread reads on its own; this only wakes it. */
	notify_kick(f->srv->notify, st.size);
	if (st.ok != f->log_ok) {
		/* The guardian hears at once; nothing can be logged meanwhile. */
		log_info("event=feed_log_state ok=%d waiting=%zu", st.ok, f->nwaiting);
		f->log_ok = st.ok;
		for (w = TAILQ_FIRST(&f->waiters); w != NULL; w = next) {
			next = TAILQ_NEXT(w, next);
			if (w->kind == FEED_ALERTS)
				waiter_answer(w, 0, st.ok ? "log_writable" :
				    "log_unwritable", st.ok ? "" : st.why);
		}
	}
	for (w = TAILQ_FIRST(&f->waiters); w != NULL; w = next) {
		next = TAILQ_NEXT(w, next);
		if (w->after < st.size)
			waiter_answer(w, 1, NULL, NULL);
	}
}

struct feeds *
feeds_new(struct server *srv)
{
	struct feeds *f = xcalloc(1, sizeof(*f));

	f->srv = srv;
	f->log_ok = 1;
	TAILQ_INIT(&f->waiters);
	logq_set_hook(srv->logq, feeds_wake, f);
	return f;
}

void
feeds_stop(struct feeds *f)
{
	/* Answered now with what there is: the clients ask again elsewhere. */
	while (f != NULL && !TAILQ_EMPTY(&f->waiters))
		waiter_answer(TAILQ_FIRST(&f->waiters), 0, NULL, NULL);
}

void
feeds_free(struct feeds *f)
{
	struct waiter *w;

	if (f == NULL)
		return;
	/*
	 * After evhttp_free(): waiter_gone() has freed every waiter with its
	 * connection; none should be left.
	 */
	while ((w = TAILQ_FIRST(&f->waiters)) != NULL)
		waiter_free(w);
	free(f);
}

void
feeds_metrics(struct feeds *f, struct evbuffer *out)
{
	struct logq_stats st;

	if (f == NULL)
		return;
	logq_stats(f->srv->logq, &st);
	evbuffer_add_printf(out, "# HELP safeshare_feed_lag_entries Log entries after "
	    "the cursor an agency last read its feed up to.\n"
	    "# TYPE safeshare_feed_lag_entries gauge\n");
	for (size_t i = 0; i < f->nreaders; i++)
		for (int k = 0; k < 2; k++)
			if (f->readers[i].seen[k])
				evbuffer_add_printf(out, "safeshare_feed_lag_entries"
				    "{feed=\"%s\",agency=\"%s\"} %llu\n", k == FEED_ACCESSES ?
				    "accesses" : "alerts", f->readers[i].agency,
				    (unsigned long long)(st.size > f->readers[i].cursor[k] ?
				    st.size - f->readers[i].cursor[k] : 0));
	evbuffer_add_printf(out,
	    "# HELP safeshare_feed_replies_total Feed replies (issue 18), by feed.\n"
	    "# TYPE safeshare_feed_replies_total counter\n"
	    "safeshare_feed_replies_total{feed=\"accesses\"} %llu\n"
	    "safeshare_feed_replies_total{feed=\"alerts\"} %llu\n"
	    "# HELP safeshare_feed_items_total Feed items sent, by feed.\n"
	    "# TYPE safeshare_feed_items_total counter\n"
	    "safeshare_feed_items_total{feed=\"accesses\"} %llu\n"
	    "safeshare_feed_items_total{feed=\"alerts\"} %llu\n"
	    "# HELP safeshare_feed_waiting Feed requests parked now (long-poll).\n"
	    "# TYPE safeshare_feed_waiting gauge\n"
	    "safeshare_feed_waiting %zu\n"
	    "# HELP safeshare_feed_parked_total Feed requests that waited.\n"
	    "# TYPE safeshare_feed_parked_total counter\n"
	    "safeshare_feed_parked_total %llu\n"
	    "# HELP safeshare_feed_refused_total Feed requests refused: too many waiting.\n"
	    "# TYPE safeshare_feed_refused_total counter\n"
	    "safeshare_feed_refused_total %llu\n"
	    "# HELP safeshare_feed_dropped_total Parked feed requests whose client "
	    "hung up.\n"
	    "# TYPE safeshare_feed_dropped_total counter\n"
	    "safeshare_feed_dropped_total %llu\n",
	    (unsigned long long)f->served[0], (unsigned long long)f->served[1],
	    (unsigned long long)f->items[0], (unsigned long long)f->items[1],
	    f->nwaiting, (unsigned long long)f->parked,
	    (unsigned long long)f->refused, (unsigned long long)f->dropped);
}

/*
 * Answers a feed request for the agency (its role checked by the caller):
 * at once if there is an item or no wait, else parked.
 */
static void
feed_request(struct server *srv, struct evhttp_request *req, enum feed_kind kind,
    const char *agency)
{
	struct feeds			*f = srv->feeds;
	struct evbuffer			*in = evhttp_request_get_input_buffer(req);
	struct evhttp_connection	*evc;
	Safeshare__V1__FeedRequest	*rq;
	struct waiter			*w;
	struct page			 pg;
	struct timeval			 tv;
	size_t				 limit, mine = 0;

	rq = safeshare__v1__feed_request__unpack(NULL, evbuffer_get_length(in),
	    evbuffer_pullup(in, -1));
	if (rq == NULL) {
		reply_error(req, 400, "malformed_request", "the body is not a valid "
		    "safeshare.v1.FeedRequest", 0);
		return;
	}
	if (rq->wait_seconds > FEED_WAIT_MAX) {
		reply_error(req, 400, "bad_wait", "wait_seconds is at most 60", 0);
		goto done;
	}
	limit = rq->limit == 0 ? FEED_PAGE : rq->limit > FEED_PAGE_MAX ?
	    FEED_PAGE_MAX : rq->limit;
	page_init(&pg, srv, kind, agency, limit, rq->after_seq);
	if (page_fill(&pg) == -1) {
		log_warnx("event=feed_read_failed feed=%s",
		    kind == FEED_ACCESSES ? "accesses" : "alerts");
		reply_error(req, 503, "audit_read_failed", "the log could not be "
		    "read", 0);
		page_free(&pg);
		goto done;
	}
	if (pg.n > 0 || rq->wait_seconds == 0 || pg.read >= SCAN_MAX ||
	    srv->drain != NULL) {
		page_reply(f, req, &pg);
		page_free(&pg);
		goto done;
	}
	page_free(&pg);
	TAILQ_FOREACH(w, &f->waiters, next)
		mine += strcmp(w->agency, agency) == 0;
	if (mine >= WAITERS_PER_AGENCY || f->nwaiting >= WAITERS_MAX) {
		f->refused++;
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Retry-After", "1");
		reply_error(req, 429, "too_many_waiting", mine >= WAITERS_PER_AGENCY ?
		    "this agency already has 8 feed requests waiting" :
		    "too many feed requests are waiting", 0);
		goto done;
	}
	w = xcalloc(1, sizeof(*w));
	w->f = f;
	w->req = req;
	w->kind = kind;
	w->limit = limit;
	w->after = pg.last;
	snprintf(w->agency, sizeof(w->agency), "%s", agency);
	if ((w->timer = evtimer_new(srv->base, waiter_deadline, w)) == NULL)
		fatalx("%s: out of memory", __func__);
	tv.tv_sec = rq->wait_seconds;
	tv.tv_usec = 0;
	evtimer_add(w->timer, &tv);
	/*
	 * A hang-up frees the slot at once (waiter_gone()). Noticing it needs
	 * EV_CLOSED (epoll has it); without, the slot lasts to the deadline.
	 */
	if ((evc = evhttp_request_get_connection(req)) != NULL) {
		struct bufferevent *bev = evhttp_connection_get_bufferevent(evc);
		evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;

		evhttp_connection_set_closecb(evc, waiter_gone, w);
		if (fd >= 0 && (event_base_get_features(srv->base) &
		    EV_FEATURE_EARLY_CLOSE) && (w->hangup = event_new(srv->base,
		    fd, EV_CLOSED, waiter_hangup, w)) != NULL)
			event_add(w->hangup, NULL);
	}
	TAILQ_INSERT_TAIL(&f->waiters, w, next);
	f->nwaiting++;
	f->parked++;
done:
	safeshare__v1__feed_request__free_unpacked(rq, NULL);
}

/* The route table checked the role (holder) and took a rate token. */
void
feed_handle_accesses(struct req *r)
{
	feed_request(r->srv, r->ev, FEED_ACCESSES, r->agency->id);
}

/* The route table checked the role (guardian or auditor). */
void
feed_handle_alerts(struct req *r)
{
	feed_request(r->srv, r->ev, FEED_ALERTS, r->agency->id);
}

/*
 * The notifier's page (notify.c, its own thread): the same filter and the
 * same messages as a feed reply, from its own read-only log connection and
 * store connection, encoded as the Connect JSON reply (pbjson) so the
 * receiver gets what the feed API gives. The page has no server: nothing
 * here touches the loop's state.
 */
int
feed_batch_json(struct logstore *reader, struct storage *store, int alerts,
    const char *agency, uint64_t after, uint64_t upto, size_t limit,
    struct feed_batch *b, char *err, size_t errlen)
{
	struct page		 pg;
	ProtobufCMessage	*m;
	Safeshare__V1__HolderAccesses	 acc = SAFESHARE__V1__HOLDER_ACCESSES__INIT;
	Safeshare__V1__AuditAlerts	 alr = SAFESHARE__V1__AUDIT_ALERTS__INIT;
	int			 rc = -1;

	memset(b, 0, sizeof(*b));
	memset(&pg, 0, sizeof(pg));
	pg.kind = alerts ? FEED_ALERTS : FEED_ACCESSES;
	pg.agency = agency;
	pg.reader = reader;
	pg.store = store;
	pg.limit = limit;
	pg.last = after;
	pg.upto = upto;
	pg.items = xcalloc(limit + 1, sizeof(*pg.items));
	storage_read_begin(store);
	if (page_fill(&pg) == -1) {
		errorf(err, errlen, "the log or the store could not be read");
		goto fail;
	}
	b->last = pg.last;
	b->n = pg.n;
	if (pg.n == 0) {
		rc = 0;
		goto fail;
	}
	if (alerts) {
		alr.alerts = (Safeshare__V1__Alert **)pg.items;
		alr.n_alerts = pg.n;
		alr.next_after_seq = pg.last;
		m = &alr.base;
	} else {
		acc.items = (Safeshare__V1__HolderAccess **)pg.items;
		acc.n_items = pg.n;
		acc.next_after_seq = pg.last;
		m = &acc.base;
	}
	if ((b->json = pbjson_encode(m, &b->len, err, errlen)) != NULL)
		rc = 0;
fail:
	storage_read_end(store);
	page_free(&pg);
	return rc;
}
