/*
 * The replies and refusals every handler answers with (req.h): a reply is
 * counted in /metrics, re-encoded for a Connect call, and sent as one TLS
 * record where it fits; a refusal is logged before it is answered (D7).
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "connect.h"
#include "log.h"
#include "logq.h"
#include "rate.h"
#include "req.h"
#include "util.h"
#include "wire.h"

/*
 * evhttp queues the head and the body as two chains, and the TLS
 * bufferevent makes each its own record and write(2). A small reply is
 * made one record, one system call: head and body are copied into
 * rec_buf (one copy, no allocation) and written from there.
 *
 * And it is written now, not in the next loop round: evhttp_send_reply()
 * only arms the write event, which costs an epoll_ctl() to arm, a trip
 * through epoll_wait() and another epoll_ctl() to disarm, per reply. If
 * the record goes out whole, it is drained and the bufferevent's write
 * callback is run (evhttp then completes the request, and the change list
 * folds arming and disarming into nothing). If not (a full socket buffer,
 * an error), the bytes stay queued, made one chain, and the bufferevent
 * retries them from there in one SSL_write(), as OpenSSL requires of a
 * record it holds (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, src/tls.c: the
 * retry's bytes are the same, at another address). The write may complete the request
 * and even free the connection, so the bufferevent is held by a reference
 * until we are done; one evhttp has let go meanwhile (callbacks cleared)
 * is left alone.
 */
#define REC_MAX	16384		/* a TLS record's plaintext */
static unsigned char	 rec_buf[REC_MAX];	/* the loop thread's, as replies are */

static void
send_one_record(struct evhttp_request *req, int status, const char *text)
{
	struct evhttp_connection	*evc = evhttp_request_get_connection(req);
	struct bufferevent		*bev = evc ? evhttp_connection_get_bufferevent(evc) :
					    NULL;
	bufferevent_data_cb		 wcb = NULL;
	struct evbuffer			*o;
	SSL				*ssl;
	size_t				 len;

	if (bev != NULL)
		bufferevent_incref(bev);
	/* If the client went away meanwhile, libevent frees the request here. */
	evhttp_send_reply(req, status, text, NULL);
	if (bev == NULL)
		return;
	bufferevent_getcb(bev, NULL, &wcb, NULL, NULL);
	o = bufferevent_get_output(bev);
	len = evbuffer_get_length(o);
	if (wcb != NULL && len > 0 && len <= sizeof(rec_buf) &&
	    evbuffer_copyout(o, rec_buf, len) == (ev_ssize_t)len &&
	    (ssl = bufferevent_openssl_get_ssl(bev)) != NULL) {
		ERR_clear_error();
		if (SSL_write(ssl, rec_buf, (int)len) == (int)len) {
			evbuffer_drain(o, len);
			bufferevent_trigger(bev, EV_WRITE, 0);
		} else {
			/*
			 * Not written (a full socket buffer): OpenSSL keeps
			 * the record, and its retry must pass at least these
			 * len bytes in one SSL_write(). The bufferevent writes
			 * its output chain by chain, head then body, and OpenSSL
			 * refused the shorter retry (bad length): the
			 * connection was dropped with the replies of logged
			 * decisions in it. So the bytes become one chain.
			 */
			ERR_clear_error();
			if (evbuffer_pullup(o, (ev_ssize_t)len) == NULL)
				fatalx("%s: out of memory", __func__);
		}
	}
	bufferevent_decref(bev);
}

/*
 * The Date header, formatted once a second (RFC 9110 IMF-fixdate, the
 * C locale's names whatever the process's locale): evhttp adds one only
 * if the reply has none, and its own costs a gmtime and a vsnprintf for
 * every reply.
 */
static const char *
http_date(void)
{
	static const char	 days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu",
				    "Fri", "Sat" };
	static const char	 months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
				    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	static char		 date[80];	/* the loop thread's; room for any int */
	static time_t		 made = -1;
	time_t			 now = time(NULL);
	struct tm		 tm;

	if (now != made && gmtime_r(&now, &tm) != NULL) {
		snprintf(date, sizeof(date), "%s, %02d %s %04d %02d:%02d:%02d GMT",
		    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
		    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
		made = now;
	}
	return date[0] != '\0' ? date : NULL;
}

/* Frees a reply body once the connection's buffer is done with it. */
static void
body_free(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)(uintptr_t)data);
}

/*
 * Reply bodies of up to BODY_CAP bytes, kept for the next replies, up to
 * BODY_KEEP of them (256 KiB for the loop, whatever the connections): a
 * disclosure's reply with its receipt is about 1.3 KiB, which glibc's
 * malloc() serves from its large bins, consolidating the freed small
 * chunks first, for every reply. The loop thread's, as the replies are:
 * the connection's buffer gives a body back (body_keep()) on the loop.
 * A buffer of BODY_CAP bytes is one reply_body_get() made for a body that
 * fits, so a body's length says which kind it is.
 */
#define BODY_CAP	4096
#define BODY_KEEP	64
static uint8_t	*body_kept[BODY_KEEP];
static size_t	 nbody_kept;

uint8_t *
reply_body_get(size_t len)
{
	if (len <= BODY_CAP && nbody_kept > 0)
		return body_kept[--nbody_kept];
	/* xcalloc() zeroes, but only a buffer the loop has not made yet. */
	return xcalloc(1, len <= BODY_CAP ? BODY_CAP : len);
}

static void
body_keep(const void *data, size_t len, void *arg)
{
	(void)arg;
	if (len <= BODY_CAP && nbody_kept < BODY_KEEP)
		body_kept[nbody_kept++] = (uint8_t *)(uintptr_t)data;
	else
		free((void *)(uintptr_t)data);
}

static void
reply_with(struct evhttp_request *req, int status, uint8_t *body, size_t len,
    evbuffer_ref_cleanup_cb release)
{
	static const struct { int status; const char *text; } texts[] = {
		{ 200, "OK" }, { 400, "Bad Request" }, { 401, "Unauthorized" },
		{ 403, "Forbidden" }, { 415, "Unsupported Media Type" },
		{ 501, "Not Implemented" },
		{ 404, "Not Found" }, { 405, "Method Not Allowed" }, { 409, "Conflict" },
		{ 413, "Payload Too Large" }, { 429, "Too Many Requests" },
		{ 500, "Internal Server Error" }, { 503, "Service Unavailable" },
	};
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct connect_call *call = conn_call(req);
	const char	*date;
	const char	*text = "Error", *ctype = "application/x-protobuf";

	/*
	 * A Connect call's reply in its codec, errors as Connect's (connect.c):
	 * a new body from malloc(), or the old one resized or freed, so it is
	 * freed, not kept (a kept buffer is one from calloc() as well).
	 */
	if (call != NULL && call->out != NULL) {
		release = body_free;
		connect_reply(call, &status, &body, &len, &ctype);
	}
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (texts[i].status == status)
			text = texts[i].text;
	metrics_reply(req, status);
	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-store");
	if ((date = http_date()) != NULL)
		evhttp_add_header(h, "Date", date);
	/* The body is not copied: the buffer frees it once it is written. */
	if (len == 0 || evbuffer_add_reference(evhttp_request_get_output_buffer(req),
	    body, len, release, NULL) == -1) {
		evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
		release(body, len, NULL);
	}
	send_one_record(req, status, text);
}

void
reply(struct evhttp_request *req, int status, uint8_t *body, size_t len)
{
	reply_with(req, status, body, len, body_free);
}

void
reply_kept(struct evhttp_request *req, int status, uint8_t *body, size_t len)
{
	reply_with(req, status, body, len, body_keep);
}

void
reply_error(struct evhttp_request *req, int status, const char *code,
    const char *msg, uint64_t disclosure_id)
{
	reply_error_receipt(req, status, code, msg, disclosure_id, NULL);
}

void
reply_error_receipt(struct evhttp_request *req, int status, const char *code,
    const char *msg, uint64_t disclosure_id, const struct audit_receipt *rc)
{
	size_t	 len;
	uint8_t	*body = wire_error_encode(code, msg, disclosure_id, rc, &len);

	reply(req, status, body, len);
}

void
reply_audit_unavailable(struct evhttp_request *req)
{
	reply_error(req, 503, "audit_unavailable", "the disclosure log cannot be "
	    "written; nothing was released", 0);
}

/*
 * A random 64-bit prefix per process and a counter: unique, unguessable
 * across restarts, and no RAND_bytes() on every request (it showed in the
 * profile). 32 lowercase hex digits, the counter's written by hand: an
 * snprintf() per request showed too (issue 13).
 */
void
new_request_id(char out[33])
{
	static const char	 digits[] = "0123456789abcdef";
	static char		 prefix[17];	/* the loop thread's */
	static uint64_t		 counter;
	uint64_t		 n = ++counter;

	if (prefix[0] == '\0') {
		unsigned char r[8];

		if (RAND_bytes(r, sizeof(r)) != 1)
			fatalx("%s: no randomness", __func__);
		hex_encode(r, sizeof(r), prefix);
	}
	memcpy(out, prefix, 16);
	for (int i = 31; i >= 16; i--, n >>= 4)
		out[i] = digits[n & 15];
	out[32] = '\0';
}

struct refusal {
	struct evhttp_request	*req;
	int			 status;
	char			 code[32];
	char			 msg[200];
};

static void
refusal_logged(int ok, uint64_t seq, const struct audit_receipt *rc, void *arg)
{
	struct refusal *r = arg;

	if (!ok)
		reply_audit_unavailable(r->req);
	else
		reply_error_receipt(r->req, r->status, r->code, r->msg, seq, rc);
	free(r);
}

void
refuse(struct server *srv, struct evhttp_request *req, const struct peer *p,
    const char *agency, int status, const char *code, const char *msg,
    const char *request_id)
{
	struct audit_entry e;

	/*
	 * Refusals are rate-limited before they are logged: by certificate
	 * and address while the agency is unknown, by the agency's own bucket
	 * once it is known (a missing role), issue 14 item 14.
	 */
	if (agency == NULL ? !unknown_take(srv, req, p) :
	    !rate_take(srv, agency, mono_seconds())) {
		/* Counted, not logged: neither the log nor stderr floods. */
		srv->metrics.refusals_unlogged++;
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
		reply_error(req, 429, "rate_limited", agency == NULL ? "too many refused "
		    "requests from this certificate or address; retry later" :
		    "too many requests from this agency; retry after a second", 0);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.agency = agency;
	e.cert_fp = p->fp;
	e.request_id = request_id;
	refuse_entry(srv, req, &e, status, code, msg);
}

void
refuse_entry(struct server *srv, struct evhttp_request *req, struct audit_entry *e,
    int status, const char *code, const char *msg)
{
	struct refusal *r = xcalloc(1, sizeof(*r));

	e->time = time(NULL);
	e->kind = "rejected";
	e->decision = "deny";
	e->reason = code;
	e->protocol_id = srv->proto->id;
	e->protocol_version = srv->proto->version;
	e->protocol_sha256 = srv->proto->sha256;
	r->req = req;
	r->status = status;
	snprintf(r->code, sizeof(r->code), "%s", code);
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
	log_info("event=refused agency=%s code=%s fp=%s request_id=%s",
	    e->agency ? e->agency : "-", code, e->cert_fp && e->cert_fp[0] ?
	    e->cert_fp : "-", e->request_id);
	logq_submit_receipt(srv->logq, e, refusal_logged, r);
}
