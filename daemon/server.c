/*
 * The server: TLS contexts per connection, the replies and helpers the
 * handlers share (req.h), health, metrics, reload and shutdown. Which path
 * is served by what, and who may call it, is the route table's
 * (routes.c); route() here only checks the transport and hands over.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "connect.h"
#include "log.h"
#include "logq.h"
#include "req.h"
#include "routes.h"
#include "tls.h"
#include "wire.h"

static int	peer_cached(struct evhttp_request *, struct peer *);
static void	peer_cache(struct evhttp_request *, const struct peer *);

void
peer_of(struct evhttp_request *req, struct peer *p)
{
	struct evhttp_connection	*conn = evhttp_request_get_connection(req);
	struct bufferevent		*bev;
	SSL				*ssl;
	X509				*x;
	int				 one = 1;

	/* A connection's certificate cannot change (no renegotiation). */
	if (peer_cached(req, p))
		return;
	memset(p, 0, sizeof(*p));
	if (conn == NULL || (bev = evhttp_connection_get_bufferevent(conn)) == NULL)
		return;
	/* DESIGN.md pitfall: head and body go out as separate writes. */
	setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((ssl = bufferevent_openssl_get_ssl(bev)) == NULL ||
	    (x = SSL_get1_peer_certificate(ssl)) == NULL)
		return;
	/* The chain was verified in the handshake; check the result anyway. */
	if (SSL_get_verify_result(ssl) == X509_V_OK &&
	    tls_cert_identity(x, p->spki, p->subject, sizeof(p->subject)) == 0) {
		hex_encode(p->spki, 32, p->fp);
		p->ok = 1;
	}
	X509_free(x);
	peer_cache(req, p);
}

const struct agency *
peer_agency(struct server *srv, const struct peer *p)
{
	return p->ok ? protocol_agency_by_cert(srv->proto, p->spki, p->subject) : NULL;
}

/* Replies by status class, for /metrics; touched on the loop thread only. */
static uint64_t replies_by_status[6];

/*
 * Counts for /metrics, by route and by status (bounded label sets): one
 * slot per row of the route table (route_index()) and one for no route,
 * reported by the rows' metric labels.
 */
#define NROUTES		(ROUTE_MAX + 1)
static const int statuses[] = { 200, 400, 403, 404, 405, 413, 415, 429, 500, 503, 0 };
#define NSTATUSES	(sizeof(statuses) / sizeof(statuses[0]))
/* Reply latency buckets, seconds: request fully read to reply queued. */
static const double lat_bounds[] = { 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1, 2.5 };
#define NLAT		(sizeof(lat_bounds) / sizeof(lat_bounds[0]))
static uint64_t by_route_status[NROUTES][NSTATUSES];
static uint64_t lat_hist[NROUTES][NLAT + 1];
static double	lat_sum[NROUTES];

/* The slot of the request's path (route_index() of its row). */
static size_t
path_slot(struct evhttp_request *req)
{
	return route_index(route_find(evhttp_uri_get_path(
	    evhttp_request_get_evhttp_uri(req))));
}

/* A slot's /metrics label: its row's, "other" for no row. */
static const char *
slot_label(size_t r)
{
	return r < nroutes ? routes[r].metric : "other";
}

/*
 * Whether slot r is the first with its label: /metrics sums the slots of
 * a label and reports it once, where it first appears.
 */
static int
slot_first(size_t r)
{
	for (size_t i = 0; i < r; i++)
		if (strcmp(slot_label(i), slot_label(r)) == 0)
			return 0;
	return 1;
}

static struct conn *conn_of(struct evhttp_request *);
static struct connect_call *call_of(struct evhttp_request *);
static void	request_timing(struct evhttp_request *, size_t *route, double *age);

static void
count_reply(struct evhttp_request *req, int status)
{
	size_t	 r, k = 0, b = 0;
	double	 age;

	request_timing(req, &r, &age);

	replies_by_status[status / 100 < 6 ? status / 100 : 0]++;
	while (statuses[k] != 0 && statuses[k] != status)
		k++;
	by_route_status[r][k]++;
	if (age < 0)
		return;
	while (b < NLAT && age > lat_bounds[b])
		b++;
	lat_hist[r][b]++;
	lat_sum[r] += age;
}

/*
 * evhttp queues the head and the body as two chains, and the TLS
 * bufferevent makes each its own record and write(2). A small reply is
 * made one chain: one record, one system call.
 *
 * And it is written now, not in the next loop round: evhttp_send_reply()
 * only arms the write event, which costs an epoll_ctl() to arm, a trip
 * through epoll_wait() and another epoll_ctl() to disarm, per reply. If
 * the record goes out whole, it is drained and the bufferevent's write
 * callback is run (evhttp then completes the request, and the change list
 * folds arming and disarming into nothing). If not (a full socket buffer,
 * an error), the bytes stay queued and the bufferevent retries them, the
 * same bytes, as it would have anyway. The write may complete the request
 * and even free the connection, so the bufferevent is held by a reference
 * until we are done; one evhttp has let go meanwhile (callbacks cleared)
 * is left alone.
 */
static void
send_one_record(struct evhttp_request *req, int status, const char *text,
    struct evbuffer *body)
{
	struct evhttp_connection	*evc = evhttp_request_get_connection(req);
	struct bufferevent		*bev = evc ? evhttp_connection_get_bufferevent(evc) :
					    NULL;
	bufferevent_data_cb		 wcb = NULL;
	struct evbuffer			*o;
	unsigned char			*p;
	SSL				*ssl;
	size_t				 len;

	if (bev != NULL)
		bufferevent_incref(bev);
	/* If the client went away meanwhile, libevent frees the request here. */
	evhttp_send_reply(req, status, text, body);
	if (bev == NULL)
		return;
	bufferevent_getcb(bev, NULL, &wcb, NULL, NULL);
	o = bufferevent_get_output(bev);
	len = evbuffer_get_length(o);
	if (wcb != NULL && len > 0 && len <= 16384 &&
	    (p = evbuffer_pullup(o, -1)) != NULL &&
	    (ssl = bufferevent_openssl_get_ssl(bev)) != NULL) {
		ERR_clear_error();
		if (SSL_write(ssl, p, (int)len) == (int)len) {
			evbuffer_drain(o, len);
			bufferevent_trigger(bev, EV_WRITE, 0);
		} else
			ERR_clear_error();
	}
	bufferevent_decref(bev);
}

void
reply(struct evhttp_request *req, int status, uint8_t *body, size_t len)
{
	static const struct { int status; const char *text; } texts[] = {
		{ 200, "OK" }, { 400, "Bad Request" }, { 401, "Unauthorized" },
		{ 403, "Forbidden" }, { 415, "Unsupported Media Type" },
		{ 501, "Not Implemented" },
		{ 404, "Not Found" }, { 405, "Method Not Allowed" }, { 409, "Conflict" },
		{ 413, "Payload Too Large" }, { 429, "Too Many Requests" },
		{ 500, "Internal Server Error" }, { 503, "Service Unavailable" },
	};
	struct evbuffer	*out = evbuffer_new();
	struct connect_call *call = call_of(req);
	const char	*text = "Error", *ctype = "application/x-protobuf";

	/* A Connect call's reply in its codec, errors as Connect's (connect.c). */
	if (call != NULL && call->out != NULL)
		connect_reply(call, &status, &body, &len, &ctype);
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (texts[i].status == status)
			text = texts[i].text;
	count_reply(req, status);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    ctype);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control",
	    "no-store");
	evbuffer_add(out, body, len);
	send_one_record(req, status, text, out);
	evbuffer_free(out);
	free(body);
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
 * profile).
 */
void
new_request_id(char out[33])
{
	static unsigned char	 prefix[8];
	static uint64_t		 counter;
	static int		 ready;

	if (!ready) {
		if (RAND_bytes(prefix, sizeof(prefix)) != 1)
			fatalx("%s: no randomness", __func__);
		ready = 1;
	}
	hex_encode(prefix, sizeof(prefix), out);
	snprintf(out + 16, 17, "%016llx", (unsigned long long)++counter);
}

static int	unknown_allow(struct server *, const char *addr, const char *fp);
static int	unknown_take(struct server *, struct evhttp_request *,
		    const struct peer *);

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
		srv->refusals_unlogged++;
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

/* GET /healthz: the log's state and the protocol in force. */
void
server_handle_health(struct req *r)
{
	struct server		*srv = r->srv;
	struct evhttp_request	*req = r->ev;
	Safeshare__V1__Health	 h = SAFESHARE__V1__HEALTH__INIT;
	struct logq_stats	 st;
	size_t			 len;
	uint8_t			*buf;

	logq_stats(srv->logq, &st);
	h.status = st.ok ? "ok" : "degraded";
	h.audit_ok = st.ok;
	h.audit_error = st.why;
	h.protocol_id = srv->proto->id;
	h.protocol_version = srv->proto->version;
	h.log_size = st.size;
	/* So a client can say an import is too large before sending it. */
	h.max_import = (uint64_t)srv->conf->max_import;
	len = safeshare__v1__health__get_packed_size(&h);
	buf = xcalloc(len + 1, 1);
	safeshare__v1__health__pack(&h, buf);
	reply(req, st.ok ? 200 : 503, buf, len);
}

/* GET /metrics: Prometheus text format; counts only, nothing about anyone. */
static const char *const tls_fail_names[] = { "no_certificate", "unknown_ca",
    "expired", "not_yet_valid", "revoked", "bad_purpose", "bad_certificate",
    "timeout", "closed", "protocol" };

/* The HTTP and TLS side of /metrics. */
static void
metrics_http(struct server *srv, struct evbuffer *out)
{
	const size_t	 nslots = nroutes + 1;

	evbuffer_add_printf(out, "# TYPE safeshare_http_responses_total counter\n");
	for (size_t r = 0; r < nslots; r++) {
		const char *label = slot_label(r);

		if (!slot_first(r))
			continue;
		for (size_t k = 0; k < NSTATUSES; k++) {
			uint64_t n = 0;

			for (size_t i = r; i < nslots; i++)
				if (strcmp(slot_label(i), label) == 0)
					n += by_route_status[i][k];
			if (n != 0)
				evbuffer_add_printf(out, "safeshare_http_responses_total"
				    "{route=\"%s\",status=\"%s%d\"} %llu\n", label,
				    statuses[k] ? "" : "other", statuses[k] ? statuses[k] : 0,
				    (unsigned long long)n);
		}
	}
	evbuffer_add_printf(out, "# TYPE safeshare_request_duration_seconds histogram\n");
	for (size_t r = 0; r < nslots; r++) {
		const char	*label = slot_label(r);
		uint64_t	 cum = 0;
		double		 sum = 0;

		if (!slot_first(r))
			continue;
		for (size_t b = 0; b <= NLAT; b++) {
			for (size_t i = r; i < nslots; i++)
				if (strcmp(slot_label(i), label) == 0)
					cum += lat_hist[i][b];
			if (b < NLAT)
				evbuffer_add_printf(out, "safeshare_request_duration_seconds_bucket"
				    "{route=\"%s\",le=\"%g\"} %llu\n", label,
				    lat_bounds[b], (unsigned long long)cum);
		}
		for (size_t i = r; i < nslots; i++)
			if (strcmp(slot_label(i), label) == 0)
				sum += lat_sum[i];
		evbuffer_add_printf(out, "safeshare_request_duration_seconds_bucket"
		    "{route=\"%s\",le=\"+Inf\"} %llu\n"
		    "safeshare_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
		    "safeshare_request_duration_seconds_count{route=\"%s\"} %llu\n",
		    label, (unsigned long long)cum, label, sum, label,
		    (unsigned long long)cum);
	}
	evbuffer_add_printf(out, "# TYPE safeshare_connections_open gauge\n"
	    "safeshare_connections_open %zu\n"
	    "# TYPE safeshare_connections_accepted_total counter\n"
	    "safeshare_connections_accepted_total %llu\n"
	    "# TYPE safeshare_request_timeouts_total counter\n"
	    "safeshare_request_timeouts_total %llu\n"
	    "# TYPE safeshare_refusals_unlogged_total counter\n"
	    "safeshare_refusals_unlogged_total %llu\n"
	    "# TYPE safeshare_tls_handshake_failures_total counter\n", srv->nconns,
	    (unsigned long long)srv->accepted, (unsigned long long)srv->request_timeouts,
	    (unsigned long long)srv->refusals_unlogged);
	for (size_t i = 0; i < TLS_FAIL_COUNT; i++)
		evbuffer_add_printf(out, "safeshare_tls_handshake_failures_total"
		    "{reason=\"%s\"} %llu\n", tls_fail_names[i],
		    (unsigned long long)srv->tls_failures[i]);
}

static const char *const conn_close_names[CONN_CLOSE_COUNT];

/* Connections the daemon closed itself, by why (connection fairness, identity). */
static void
metrics_conns(struct server *srv, struct evbuffer *out)
{
	evbuffer_add_printf(out, "# TYPE safeshare_connections_closed_total counter\n");
	for (size_t i = 0; i < CONN_CLOSE_COUNT; i++)
		evbuffer_add_printf(out, "safeshare_connections_closed_total"
		    "{reason=\"%s\"} %llu\n", conn_close_names[i],
		    (unsigned long long)srv->conn_closed[i]);
}

void
server_handle_metrics(struct req *r)
{
	struct server		*srv = r->srv;
	struct evhttp_request	*req = r->ev;
	static const char *const outcomes[] = { "deny", "allow", "partial", "consultation" };
	struct evbuffer		*out = evbuffer_new();
	struct logq_stats	 st;
	uint64_t		 cum = 0;

	logq_stats(srv->logq, &st);
	evbuffer_add_printf(out, "# TYPE safeshare_requests_total counter\n"
	    "safeshare_requests_total %llu\n", (unsigned long long)srv->requests);
	evbuffer_add_printf(out, "# TYPE safeshare_responses_total counter\n");
	for (int i = 2; i < 6; i++)
		evbuffer_add_printf(out, "safeshare_responses_total{class=\"%dxx\"} %llu\n",
		    i, (unsigned long long)replies_by_status[i]);
	evbuffer_add_printf(out, "# TYPE safeshare_decisions_total counter\n");
	for (int i = 0; i < 4; i++)
		evbuffer_add_printf(out, "safeshare_decisions_total{outcome=\"%s\"} %llu\n",
		    outcomes[i], (unsigned long long)srv->decisions[i]);
	evbuffer_add_printf(out, "# TYPE safeshare_log_commits_total counter\n"
	    "safeshare_log_commits_total %llu\n"
	    "# TYPE safeshare_log_entries_total counter\n"
	    "safeshare_log_entries_total %llu\n"
	    "# TYPE safeshare_log_write_failures_total counter\n"
	    "safeshare_log_write_failures_total %llu\n"
	    "# TYPE safeshare_log_size gauge\nsafeshare_log_size %llu\n"
	    "# TYPE safeshare_log_ok gauge\nsafeshare_log_ok %d\n"
	    "# TYPE safeshare_log_max_batch gauge\nsafeshare_log_max_batch %llu\n"
	    "# TYPE safeshare_log_wal_checkpoints_total counter\n"
	    "safeshare_log_wal_checkpoints_total %llu\n",
	    (unsigned long long)st.commits, (unsigned long long)st.entries,
	    (unsigned long long)st.failures, (unsigned long long)st.size, st.ok,
	    (unsigned long long)st.max_batch, (unsigned long long)st.wal_checkpoints);
	evbuffer_add_printf(out, "# TYPE safeshare_log_batch_size histogram\n");
	for (int i = 0; i < 8; i++) {
		cum += st.batch_hist[i];
		if (i < 7)
			evbuffer_add_printf(out, "safeshare_log_batch_size_bucket{le=\"%d\"} "
			    "%llu\n", (2 << i) - 1, (unsigned long long)cum);
	}
	evbuffer_add_printf(out, "safeshare_log_batch_size_bucket{le=\"+Inf\"} %llu\n"
	    "safeshare_log_batch_size_sum %llu\nsafeshare_log_batch_size_count %llu\n",
	    (unsigned long long)cum, (unsigned long long)st.entries,
	    (unsigned long long)st.commits);
	evbuffer_add_printf(out, "# TYPE safeshare_protocol_info gauge\n"
	    "safeshare_protocol_info{id=\"%s\",version=\"%s\",sha256=\"%s\"} 1\n",
	    srv->proto->id, srv->proto->version, srv->proto->sha256);
	metrics_http(srv, out);
	metrics_conns(srv, out);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "text/plain; version=0.0.4");
	count_reply(req, 200);
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

/*
 * HTTP strictness (issue 14 item 11). evhttp frames the body by the first
 * Content-Length header, parsed with strtoll: "+52" passes and a second,
 * different Content-Length is ignored, which is how a proxy and this server
 * come to disagree on where a request ends. Refuse what a strict server
 * refuses: 400 for a Content-Length that is not plain digits, for several
 * that differ, or for one next to Transfer-Encoding; 415 for a body that is
 * not application/x-protobuf. Returns 1 when it replied.
 */
static int
framing_refused(struct evhttp_request *req, int connect)
{
	struct evkeyvalq	*h = evhttp_request_get_input_headers(req);
	struct evkeyval		*kv;
	const char		*len = NULL, *type = NULL, *why = NULL;
	int			 te = 0, status = 400;
	size_t			 body;

	for (kv = h->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
		if (evutil_ascii_strcasecmp(kv->key, "Transfer-Encoding") == 0)
			te = 1;
		else if (evutil_ascii_strcasecmp(kv->key, "Content-Type") == 0) {
			if (type != NULL && strcmp(type, kv->value) != 0)
				why = "several different Content-Type headers";
			type = kv->value;
		} else if (evutil_ascii_strcasecmp(kv->key, "Content-Length") == 0) {
			size_t n = strlen(kv->value);

			if (n == 0 || n > 19 || strspn(kv->value, "0123456789") != n)
				why = "Content-Length must be decimal digits only";
			else if (len != NULL && strcmp(len, kv->value) != 0)
				why = "several different Content-Length headers";
			len = kv->value;
		}
	}
	if (why == NULL && te && len != NULL)
		why = "both Transfer-Encoding and Content-Length";
	body = evbuffer_get_length(evhttp_request_get_input_buffer(req));
	/* Connect paths take their own types (connect_route()). */
	if (why == NULL && !connect && (body > 0 || type != NULL)) {
		size_t n = type ? strcspn(type, "; \t") : 0;

		if (type == NULL || n != strlen("application/x-protobuf") ||
		    evutil_ascii_strncasecmp(type, "application/x-protobuf", n) != 0) {
			why = "the body must be Content-Type: application/x-protobuf";
			status = 415;
		}
	}
	if (why == NULL)
		return 0;
	log_info("event=bad_http status=%d why=%s", status, why);
	if (status == 400)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection",
		    "close");
	reply_error(req, status, status == 415 ? "unsupported_media_type" :
	    "bad_request", why, 0);
	return 1;
}

static int	request_arrived(struct evhttp_request *);

static void
route(struct evhttp_request *req, void *arg)
{
	struct server		*srv = arg;
	const char		*path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	srv->requests++;
	if (request_arrived(req) == -1) {
		/* Closed by conn_close() (revoked, unknown agency, ...): nothing more. */
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection",
		    "close");
		reply_error(req, 403, "connection_closed", "this connection is being "
		    "closed", 0);
		return;
	}
	if (path == NULL)
		path = "";
	/* Belt and braces: nothing is served outside TLS. */
	{
		struct evhttp_connection *c = evhttp_request_get_connection(req);
		struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;

		if (bev == NULL || bufferevent_openssl_get_ssl(bev) == NULL) {
			evhttp_add_header(evhttp_request_get_output_headers(req),
			    "Connection", "close");
			reply_error(req, 400, "tls_required", "mutual TLS is required", 0);
			return;
		}
	}
	if (framing_refused(req, strncmp(path, "/safeshare.v1.", 14) == 0))
		return;
	if (strncmp(path, "/safeshare.v1.", 14) == 0) {
		struct connect_call *call = call_of(req);

		if (call != NULL)
			connect_route(srv, req, path, call);
		else
			reply_error(req, 400, "tls_required", "mutual TLS is required", 0);
		return;
	}
	route_dispatch(srv, req, path);
}

static EVP_PKEY *
pem_public_key(const char *pem)
{
	BIO		*bio;
	EVP_PKEY	*k;

	if (pem == NULL || (bio = BIO_new_mem_buf(pem, -1)) == NULL)
		return NULL;
	k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return k;
}

/*
 * Connection accounting: every connection's SSL carries an ex_data slot
 * whose free callback runs when libevent frees the connection. Above
 * limits.max_connections a new connection closes an idle one (conn_limit);
 * when none is idle the listener is paused, so new connections wait in the
 * kernel's queue instead of costing memory here.
 */
static int conn_idx = -1;

static void
set_accepting(struct server *srv, int on)
{
	struct evconnlistener *l;

	if (srv->listener == NULL || srv->accepting == on ||
	    (l = evhttp_bound_socket_get_listener(srv->listener)) == NULL)
		return;
	if (on)
		evconnlistener_enable(l);
	else
		evconnlistener_disable(l);
	srv->accepting = on;
	log_info("event=%s connections=%zu", on ? "accepting" : "connection_limit",
	    srv->nconns);
}

/*
 * Per-connection deadlines. evhttp's timeout only notices silence, so a
 * client that trickles a byte a second could hold a connection forever.
 * A timer per connection bounds the TLS handshake (limits.handshake_timeout)
 * and the wait for each request's head and body (limits.request_timeout:
 * from the connection, then from the end of the idle time allowed after
 * each reply, limits.timeout).
 * When it fires the socket is shut down; libevent then sees end of file and
 * frees the connection through its usual path.
 */
struct conn {
	struct server		*srv;
	struct bufferevent	*bev;
	struct event		*deadline;
	double			 accepted;
	double			 req_started;
	double			 arrived;	/* the request in hand was read in full */
	size_t			 route;		/* ... and its route, for /metrics */
	int			 waiting;	/* a request is being read */
	int			 handshake_done;
	int			 timed_out;
	int			 verify_error;	/* first X509_V_ERR_* seen */
	int			 alert;		/* last alert we sent, or -1 */
	int			 have_peer;
	struct peer		 peer;		/* the client certificate's identity */
	TAILQ_ENTRY(conn)	 entry;		/* in srv->conns, by last activity */
	unsigned char		 addr[16];	/* the client's address ... */
	size_t			 addrlen;	/* ... 4 or 16 bytes; 0: not known */
	int			 addressed;	/* conn_address() has run */
	int			 busy;		/* a request is being answered */
	int			 admitted;	/* conn_admit() has run */
	int			 closing;	/* CONN_CLOSE_* + 1 once conn_close()d */
	char			 peer_addr[80];	/* "ADDR:PORT", for refusals */
	struct connect_call	 call;		/* the Connect call in hand (connect.h) */
};

/*
 * Fair shares of the connection slots (limits.max_connections, and
 * .._per_address and .._per_certificate). srv->conns lists every open
 * connection, the one active least recently first (accepted, a request in,
 * a reply out). A new connection over a limit closes a victim within that
 * limit's scope: the oldest one still in its TLS handshake (it has shown no
 * certificate), else the one idle longest; one busy answering a request is
 * never chosen. With no victim the new connection itself is closed, so one
 * client cannot take every slot and a legitimate client still gets in.
 */
static const char *const conn_close_names[CONN_CLOSE_COUNT] = { "unknown_agency", "revoked",
    "max_age", "per_address", "per_certificate", "evicted" };

static void
conn_touch(struct conn *c)
{
	TAILQ_REMOVE(&c->srv->conns, c, entry);
	TAILQ_INSERT_TAIL(&c->srv->conns, c, entry);
}

/*
 * Closes a connection, counted under reason: reading stops now, and the
 * connection is torn down from its own timer event (deadline_fired), never
 * from inside evhttp's or OpenSSL's callbacks, as if the client had hung up.
 */
static void
conn_close(struct conn *c, int reason)
{
	if (c->closing)
		return;
	c->closing = reason + 1;
	c->srv->conn_closed[reason]++;
	bufferevent_disable(c->bev, EV_READ);
	event_active(c->deadline, EV_TIMEOUT, 1);
}

static int
same_address(const struct conn *a, const struct conn *b)
{
	return a->addrlen != 0 && a->addrlen == b->addrlen &&
	    memcmp(a->addr, b->addr, a->addrlen) == 0;
}

static int
same_certificate(const struct conn *a, const struct conn *b)
{
	return a->have_peer && b->have_peer && a->peer.ok && b->peer.ok &&
	    memcmp(a->peer.spki, b->peer.spki, sizeof(a->peer.spki)) == 0;
}

/*
 * How many open connections (not being closed) are like c, with c, and
 * the one to close to make room for c (NULL if none may be closed).
 */
static size_t
conn_scope(struct conn *c, int (*like)(const struct conn *, const struct conn *),
    struct conn **victim)
{
	struct conn	*o, *idle = NULL, *shaking = NULL;
	size_t		 n = 0;

	TAILQ_FOREACH(o, &c->srv->conns, entry) {
		if (o->closing || (like != NULL && o != c && !like(o, c)))
			continue;
		n++;
		if (o == c || o->busy)
			continue;
		if (!o->handshake_done && shaking == NULL)
			shaking = o;
		else if (o->handshake_done && idle == NULL)
			idle = o;
	}
	*victim = shaking != NULL ? shaking : idle;
	return n;
}

/* Applies a per-scope limit to c: closes a victim, or c. */
static void
conn_limit(struct conn *c, int (*like)(const struct conn *, const struct conn *),
    long long limit, int reason)
{
	struct conn *victim;

	if (conn_scope(c, like, &victim) <= (size_t)limit)
		return;
	conn_close(victim != NULL ? victim : c, reason);
}

/* The client's address, once evhttp has given the connection its socket. */
static void
conn_address(struct conn *c)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof(ss);
	evutil_socket_t		 fd = bufferevent_getfd(c->bev);

	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sslen) == -1)
		return;
	if (ss.ss_family == AF_INET) {
		memcpy(c->addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
		c->addrlen = 4;
	} else if (ss.ss_family == AF_INET6) {
		memcpy(c->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
		c->addrlen = 16;
	}
	if (c->addrlen != 0)
		conn_limit(c, same_address, c->srv->conf->max_conns_per_address,
		    CONN_CLOSE_PER_ADDRESS);
}

/* One line per refused unknown certificate, within limits.rate_unknown (item 14). */
static void
unknown_refused(struct conn *c)
{
	char addr[INET6_ADDRSTRLEN] = "-";

	if (c->addrlen != 0)
		inet_ntop(c->addrlen == 4 ? AF_INET : AF_INET6, c->addr, addr,
		    sizeof(addr));
	if (unknown_allow(c->srv, addr, c->peer.fp))
		log_info("event=connection_refused reason=unknown_agency fp=%s addr=%s",
		    c->peer.ok ? c->peer.fp : "-", addr);
	else
		c->srv->refusals_unlogged++;
}

/*
 * A certificate that chains to our CA but maps to no agency gets nothing,
 * not even /healthz (docs/security.md). In a full handshake it is refused
 * there: verify_cb() calls this for the leaf once the chain has verified,
 * and a 0 fails the handshake with a bad_certificate alert, so the client
 * is told its certificate was refused. Returns 1 to go on.
 */
static int
leaf_admitted(struct conn *c, X509 *leaf)
{
	memset(&c->peer, 0, sizeof(c->peer));
	if (tls_cert_identity(leaf, c->peer.spki, c->peer.subject,
	    sizeof(c->peer.subject)) == -1)
		return 1;		/* conn_admit() decides, without an identity */
	hex_encode(c->peer.spki, 32, c->peer.fp);
	c->peer.ok = 1;
	c->have_peer = 1;
	if (peer_agency(c->srv, &c->peer) != NULL)
		return 1;
	unknown_refused(c);
	/* Counted here, not as a TLS failure (conn_freed). */
	c->closing = CONN_CLOSE_UNKNOWN_AGENCY + 1;
	c->srv->conn_closed[CONN_CLOSE_UNKNOWN_AGENCY]++;
	return 0;
}

/*
 * The handshake is done (full or resumed): who is it? A resumed session
 * skips verify_cb(), so the agency is checked here too; without one the
 * connection is closed before a byte of HTTP is read. Then the
 * per-certificate limit.
 */
static void
conn_admit(struct conn *c, const SSL *ssl)
{
	struct server	*srv = c->srv;
	X509		*x = SSL_get0_peer_certificate(ssl);
	int		 one = 1;

	if (c->admitted)
		return;
	c->admitted = 1;
	/* DESIGN.md pitfall: head and body go out as separate writes. */
	setsockopt(SSL_get_fd(ssl), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!c->have_peer) {
		memset(&c->peer, 0, sizeof(c->peer));
		if (x != NULL && tls_cert_identity(x, c->peer.spki, c->peer.subject,
		    sizeof(c->peer.subject)) == 0) {
			hex_encode(c->peer.spki, 32, c->peer.fp);
			c->peer.ok = 1;
		}
		c->have_peer = 1;
	}
	if (x == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		c->peer.ok = 0;
	if (peer_agency(srv, &c->peer) == NULL) {
		unknown_refused(c);
		conn_close(c, CONN_CLOSE_UNKNOWN_AGENCY);
		return;
	}
	conn_limit(c, same_certificate, srv->conf->max_conns_per_cert,
	    CONN_CLOSE_PER_CERTIFICATE);
}

/*
 * After a reload: every open connection's certificate is verified again
 * against the new trust store and CRL, and mapped again under the new
 * protocol; those that fail are closed (a revoked certificate does not keep
 * its kept-alive connection). A request already being answered finishes.
 */
static void
conns_recheck(struct server *srv)
{
	struct conn	*c, *next;
	SSL		*ssl;
	int		 v;

	for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->closing || !c->admitted ||
		    (ssl = bufferevent_openssl_get_ssl(c->bev)) == NULL)
			continue;
		if ((v = tls_verify_peer(srv->ssl, ssl)) != X509_V_OK) {
			log_info("event=connection_closed reason=revoked fp=%s verify=\"%s\"",
			    c->peer.ok ? c->peer.fp : "-", v == -1 ? "no certificate" :
			    X509_verify_cert_error_string(v));
			conn_close(c, CONN_CLOSE_REVOKED);
		} else if (peer_agency(srv, &c->peer) == NULL) {
			log_info("event=connection_closed reason=unknown_agency fp=%s",
			    c->peer.ok ? c->peer.fp : "-");
			conn_close(c, CONN_CLOSE_UNKNOWN_AGENCY);
		}
	}
}

static int
peer_cached(struct evhttp_request *req, struct peer *p)
{
	struct conn *c = conn_of(req);

	if (c == NULL || !c->have_peer)
		return 0;
	*p = c->peer;
	return 1;
}

static void
peer_cache(struct evhttp_request *req, const struct peer *p)
{
	struct conn *c = conn_of(req);

	if (c != NULL) {
		c->peer = *p;
		c->have_peer = 1;
	}
}

/* The request's route (set when it arrived) and its age, -1 if unknown. */
static void
request_timing(struct evhttp_request *req, size_t *route, double *age)
{
	struct conn *c = conn_of(req);

	*route = c != NULL && c->arrived > 0 ? c->route : path_slot(req);
	*age = c != NULL && c->arrived > 0 ? mono_seconds() - c->arrived : -1;
}

/* Why a handshake failed, for /metrics (bounded set; tls_fail_names). */
static int
tls_failure(const struct conn *c)
{
	switch (c->verify_error) {
	case X509_V_OK:
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return TLS_FAIL_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return TLS_FAIL_NOT_YET_VALID;
	case X509_V_ERR_CERT_REVOKED:
		return TLS_FAIL_REVOKED;
	case X509_V_ERR_INVALID_PURPOSE:
		return TLS_FAIL_BAD_PURPOSE;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		return TLS_FAIL_UNKNOWN_CA;
	default:
		return TLS_FAIL_BAD_CERT;
	}
	if (c->timed_out)
		return TLS_FAIL_TIMEOUT;
	if (c->alert == SSL_AD_CERTIFICATE_REQUIRED || c->alert == SSL_AD_HANDSHAKE_FAILURE)
		return TLS_FAIL_NO_CERT;
	return c->alert == -1 ? TLS_FAIL_CLOSED : TLS_FAIL_PROTOCOL;
}

static int
verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL		*ssl = X509_STORE_CTX_get_ex_data(x,
			    SSL_get_ex_data_X509_STORE_CTX_idx());
	struct conn	*c = ssl ? SSL_get_ex_data(ssl, conn_idx) : NULL;

	if (!ok && c != NULL && c->verify_error == X509_V_OK)
		c->verify_error = X509_STORE_CTX_get_error(x);
	/* The leaf, its chain verified: does it map to an agency? */
	if (ok && c != NULL && c->verify_error == X509_V_OK &&
	    X509_STORE_CTX_get_error_depth(x) == 0 &&
	    !leaf_admitted(c, X509_STORE_CTX_get_current_cert(x))) {
		X509_STORE_CTX_set_error(x, X509_V_ERR_CERT_REJECTED);
		return 0;
	}
	return ok;
}

/*
 * A refused TLS handshake (issue 14 item 16): one log line with the reason
 * and the peer's address, never certificate contents, at most
 * REFUSAL_LINES a second (the rest are counted and reported with the next
 * line); then a lingering close. OpenSSL has written the fatal alert
 * (certificate required, unknown CA, ...) to the socket, but closing it
 * with the client's next bytes unread (a TLS 1.3 client sends its request
 * right after its Finished) makes the kernel answer with RST, and the
 * client loses the alert: curl said "Broken pipe". So the socket is kept
 * on a second descriptor, half-closed, and read to end of file for at
 * most LINGER_SECONDS; at most LINGER_MAX at once, beyond that it closes
 * at once.
 */
#define REFUSAL_LINES	10
#define LINGER_SECONDS	2.0
#define LINGER_MAX	64

struct lingering_sock {
	struct event	*ev;
	evutil_socket_t	 fd;
	double		 until;
};
static struct lingering_sock	*lingering[LINGER_MAX];

static void
linger_end(struct lingering_sock *l)
{
	for (size_t i = 0; i < LINGER_MAX; i++)
		if (lingering[i] == l)
			lingering[i] = NULL;
	event_free(l->ev);
	close(l->fd);
	free(l);
}

static void
linger_read(evutil_socket_t fd, short what, void *arg)
{
	struct lingering_sock	*l = arg;
	char		 buf[4096];
	ssize_t		 n = -1;

	if (what & EV_READ)
		while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
			;
	if ((what & EV_TIMEOUT) || n == 0 || mono_seconds() > l->until ||
	    (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		linger_end(l);
}

static void
linger_start(struct server *srv, evutil_socket_t fd)
{
	struct timeval	 tv = { (time_t)LINGER_SECONDS, 0 };
	struct lingering_sock	*l;
	size_t		 slot;
	evutil_socket_t	 dfd;

	for (slot = 0; slot < LINGER_MAX && lingering[slot] != NULL; slot++)
		;
	if (slot == LINGER_MAX || fd < 0 || (dfd = dup(fd)) == -1)
		return;
	shutdown(dfd, SHUT_WR);		/* the alert, then our FIN */
	l = xcalloc(1, sizeof(*l));
	l->fd = dfd;
	l->until = mono_seconds() + LINGER_SECONDS;
	if ((l->ev = event_new(srv->base, dfd, EV_READ | EV_PERSIST, linger_read,
	    l)) == NULL || event_add(l->ev, &tv) == -1) {
		if (l->ev != NULL)
			event_free(l->ev);
		close(dfd);
		free(l);
		return;
	}
	lingering[slot] = l;
}

/* At shutdown: the lingering sockets are closed now. */
static void
linger_free_all(void)
{
	for (size_t i = 0; i < LINGER_MAX; i++)
		if (lingering[i] != NULL)
			linger_end(lingering[i]);
}

/* "ADDR:PORT" ("[ADDR]:PORT" for IPv6) of the socket's peer into buf, or "-". */
static void
peer_address(evutil_socket_t fd, char *buf, size_t len)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof(ss);
	char			 a[INET6_ADDRSTRLEN];
	const void		*in = NULL;
	int			 port = 0;

	snprintf(buf, len, "-");
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sslen) == -1)
		return;
	if (ss.ss_family == AF_INET) {
		in = &((struct sockaddr_in *)&ss)->sin_addr;
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		in = &((struct sockaddr_in6 *)&ss)->sin6_addr;
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	if (in != NULL && inet_ntop(ss.ss_family, in, a, sizeof(a)) != NULL)
		snprintf(buf, len, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", a,
		    port);
}

static void
handshake_refused(const struct conn *c, const char *reason)
{
	static double	 second;
	static unsigned	 lines;
	static uint64_t	 suppressed;
	double		 now = mono_seconds();

	if (now - second >= 1.0) {
		second = now;
		lines = 0;
	}
	if (lines++ < REFUSAL_LINES) {
		log_info("event=tls_refused reason=%s addr=%s suppressed=%llu", reason,
		    c->peer_addr[0] != '\0' ? c->peer_addr : "-",
		    (unsigned long long)suppressed);
		suppressed = 0;
	} else
		suppressed++;
}

static void
info_cb(const SSL *ssl, int where, int ret)
{
	struct conn *c = SSL_get_ex_data(ssl, conn_idx);

	if (c == NULL)
		return;
	if ((where & SSL_CB_HANDSHAKE_START) && c->peer_addr[0] == '\0')
		peer_address(SSL_get_fd(ssl), c->peer_addr, sizeof(c->peer_addr));
	if (where & SSL_CB_HANDSHAKE_DONE) {
		c->handshake_done = 1;
		conn_admit(c, ssl);
	}
	if ((where & SSL_CB_ALERT) && (where & SSL_CB_WRITE)) {
		c->alert = ret & 0xff;
		/* The fatal alert is on the wire: let it reach the client. */
		if ((ret >> 8) == SSL3_AL_FATAL && !c->handshake_done)
			linger_start(c->srv, SSL_get_fd(ssl));
	}
}

static struct conn *
conn_of(struct evhttp_request *req)
{
	struct evhttp_connection	*evc = evhttp_request_get_connection(req);
	struct bufferevent		*bev = evc ? evhttp_connection_get_bufferevent(evc) : NULL;
	SSL				*ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;

	return ssl ? SSL_get_ex_data(ssl, conn_idx) : NULL;
}

void
server_note_route(struct evhttp_request *req, const struct route *rt)
{
	struct conn *c = conn_of(req);

	if (c != NULL)
		c->route = route_index(rt);
}

/* The Connect call state of the request's connection, NULL if none. */
static struct connect_call *
call_of(struct evhttp_request *req)
{
	struct conn *c = conn_of(req);

	return c != NULL ? &c->call : NULL;
}

static void
arm(struct conn *c, double seconds)
{
	struct timeval	tv;
	double		left = c->accepted + (double)c->srv->conf->max_conn_age -
			    mono_seconds();

	/* No later than the connection's end of life (limits.max_connection_age). */
	if (seconds > left)
		seconds = left > 0 ? left : 0;
	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	evtimer_add(c->deadline, &tv);
}

/* Seconds from the accept to a new connection's first deadline. */
static double
first_deadline(const struct server *srv)
{
	return (double)(srv->conf->handshake_timeout < srv->conf->request_timeout ?
	    srv->conf->handshake_timeout : srv->conf->request_timeout);
}

static void
deadline_fired(evutil_socket_t unused, short what, void *arg)
{
	struct conn	*c = arg;
	struct server	*srv = c->srv;
	double		 due, now = mono_seconds();
	evutil_socket_t	 fd;
	int		 handshaking = !c->handshake_done;

	(void)unused;
	(void)what;
	if (c->closing) {
		/* conn_close(): evhttp frees the connection (and c) as on EOF. */
		bufferevent_trigger_event(c->bev, BEV_EVENT_EOF | BEV_EVENT_READING, 0);
		return;
	}
	if (!c->addressed) {
		/* The first run, just after the accept; then the first deadline. */
		c->addressed = 1;
		conn_address(c);
		if (!c->closing)
			arm(c, first_deadline(srv) - (now - c->accepted));
		return;
	}
	if (!c->busy && now >= c->accepted + (double)srv->conf->max_conn_age) {
		conn_close(c, CONN_CLOSE_MAX_AGE);
		return;
	}
	if (handshaking)
		due = c->accepted + (double)srv->conf->handshake_timeout;
	else if (c->waiting)
		due = c->req_started + (double)srv->conf->request_timeout;
	else
		return;		/* idle between requests: evhttp's timeout */
	if (due > now) {
		arm(c, due - now);
		return;
	}
	if (handshaking)
		c->timed_out = 1;
	else
		srv->request_timeouts++;
	log_debug("event=%s", handshaking ? "handshake_timeout" : "request_timeout");
	if ((fd = bufferevent_getfd(c->bev)) >= 0)
		shutdown(fd, SHUT_RDWR);
}

static size_t	input_cap(const struct server *);

/* The reply went out: the next request on this connection has a deadline. */
static void
reply_sent(struct evhttp_request *req, void *arg)
{
	struct conn *c = arg;

	(void)req;
	c->busy = 0;
	conn_touch(c);
	/*
	 * A kept-alive connection may first sit idle for limits.timeout
	 * (evhttp closes it after that much silence); the next request's
	 * clock starts after that grace.
	 */
	c->req_started = mono_seconds() + (double)c->srv->conf->timeout;
	c->waiting = 1;
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);	/* see input_cap() */
	arm(c, (double)(c->srv->conf->timeout + c->srv->conf->request_timeout));
}

/*
 * A request is in: from here the reply's own path bounds it. Returns -1 if
 * the connection is being closed and the request must not be served.
 */
static int
request_arrived(struct evhttp_request *req)
{
	struct conn *c = conn_of(req);

	if (c == NULL)
		return 0;
	c->waiting = 0;
	c->busy = 1;
	conn_touch(c);
	c->arrived = mono_seconds();
	c->route = path_slot(req);
	c->call.out = NULL;
	bufferevent_setwatermark(c->bev, EV_READ, 0, input_cap(c->srv));
	evhttp_request_set_on_complete_cb(req, reply_sent, c);
	return c->closing ? -1 : 0;
}

static void
conn_freed(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct conn	*c = ptr;
	struct server	*srv;

	if (c == NULL)
		return;
	srv = c->srv;
	TAILQ_REMOVE(&srv->conns, c, entry);
	if (!c->handshake_done && !c->closing) {
		int why = tls_failure(c);

		srv->tls_failures[why]++;
		handshake_refused(c, tls_fail_names[why]);
	} else if (parent != NULL && c->alert == -1)
		/*
		 * Closed without close_notify (clients mostly just close) but
		 * without a fatal error either: SSL_free() would otherwise drop
		 * the session from the cache, and resumption would never work.
		 * A fatal alert has already dropped it.
		 */
		SSL_set_shutdown(parent, SSL_get_shutdown(parent) | SSL_SENT_SHUTDOWN);
	event_free(c->deadline);
	free(c);
	srv->nconns--;
	if (srv->nconns < (size_t)srv->conf->max_connections)
		set_accepting(srv, 1);
}

/*
 * Bytes read from a connection and not yet taken by evhttp, at most. While
 * a reply is being written evhttp keeps reading (to notice a close) but
 * takes nothing, so a client that pipelines requests and never reads its
 * replies would otherwise fill memory; at the cap the bufferevent stops
 * reading and TCP pushes back on the client. A request head must fit
 * (limits.max_headers), plus a TLS record; a body moves on into the
 * request as it arrives, bounded by the body limits.
 *
 * The cap is set only from a request's arrival to its reply's end, the
 * time evhttp takes nothing: libevent 2.1's TLS bufferevent does not look
 * at the bytes OpenSSL already holds when reading resumes under a
 * watermark, so a capped body upload (a holder import above about 25 KiB)
 * stalled until the client timed out.
 */
static size_t
input_cap(const struct server *srv)
{
	return (size_t)srv->conf->max_headers + 16384 + 1024;
}

/* Each accepted connection gets its own TLS session in server mode. */
static struct bufferevent *
tls_bev(struct event_base *base, void *arg)
{
	struct server	*srv = arg;
	SSL		*ssl = SSL_new(srv->ssl);
	struct conn	*c;

	/*
	 * Returning NULL would make libevent serve plain HTTP on this
	 * connection; without memory for TLS there is nothing better to do.
	 */
	if (ssl == NULL)
		fatalx("%s: SSL_new failed", __func__);
	c = xcalloc(1, sizeof(*c));
	c->srv = srv;
	c->accepted = c->req_started = mono_seconds();	/* the first request too */
	c->waiting = 1;
	c->alert = -1;
	if ((c->deadline = evtimer_new(base, deadline_fired, c)) == NULL)
		fatalx("%s: evtimer_new failed", __func__);
	SSL_set_ex_data(ssl, conn_idx, c);
	SSL_set_verify(ssl, SSL_get_verify_mode(ssl), verify_cb);
	SSL_set_info_callback(ssl, info_cb);
	srv->accepted++;
	srv->nconns++;
	c->bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		fatalx("%s: bufferevent_openssl_socket_new failed", __func__);
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	/* Full: the one idle longest makes room; if all are busy, wait. */
	if (srv->nconns > (size_t)srv->conf->max_connections)
		conn_limit(c, NULL, srv->conf->max_connections, CONN_CLOSE_EVICTED);
	if (srv->nconns >= (size_t)srv->conf->max_connections && c->closing)
		set_accepting(srv, 0);
	arm(c, first_deadline(srv));
	/* evhttp gives the bufferevent its socket next: see its address then. */
	event_active(c->deadline, EV_TIMEOUT, 1);
	return c->bev;
}

/* Token buckets per agency (D10: one noisy agency cannot starve the rest). */
struct rate {
	char	*agency;	/* owned: buckets outlive a reloaded protocol */
	double	tokens;
	double	last;
};

double
mono_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The agency's bucket, refilled to now; NULL without memory. */
static struct rate *
rate_bucket(struct server *srv, const char *agency, double now)
{
	struct rate	*r = NULL;
	double		 rate = (double)srv->conf->rate_per_agency;
	double		 burst = (double)srv->conf->rate_burst;

	for (size_t i = 0; i < srv->nrates && r == NULL; i++)
		if (strcmp(srv->rates[i].agency, agency) == 0)
			r = &srv->rates[i];
	if (r == NULL) {
		struct rate *v = realloc(srv->rates, (srv->nrates + 1) * sizeof(*v));

		if (v == NULL)
			return NULL;
		srv->rates = v;
		r = &srv->rates[srv->nrates++];
		r->agency = xstrdup(agency);
		r->tokens = burst;
		r->last = now;
	}
	r->tokens += (now - r->last) * rate;
	if (r->tokens > burst)
		r->tokens = burst;
	r->last = now;
	return r;
}

int
rate_take(struct server *srv, const char *agency, double now)
{
	struct rate *r;

	if (srv->conf->rate_per_agency == 0)
		return 1;
	if ((r = rate_bucket(srv, agency, now)) == NULL || r->tokens < 1.0)
		return 0;
	r->tokens -= 1.0;
	return 1;
}

int
rate_admit(struct server *srv, struct evhttp_request *req, const char *agency)
{
	if (rate_take(srv, agency, mono_seconds()))
		return 1;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
	reply_error(req, 429, "rate_limited", "too many requests from this agency; "
	    "retry after a second", 0);
	return 0;
}

void
rate_charge(struct server *srv, const char *agency, double n, double now)
{
	struct rate *r;

	if (srv->conf->rate_per_agency != 0 && n > 0 &&
	    (r = rate_bucket(srv, agency, now)) != NULL)
		r->tokens -= n;
}

/*
 * Refusals before the agency is known (no certificate, or one the protocol
 * does not name) are rate-limited by certificate and by address (issue 14
 * item 14): each is logged only while both the certificate's and the
 * address's buckets (limits.rate_unknown, limits.rate_unknown_burst) have
 * a token; the rest are answered 429 unlogged and counted for /metrics.
 * The buckets are a fixed open-addressing table: a slot whose bucket has
 * refilled is as good as empty and is reused, and when every slot probed
 * is in use the refusal counts as over the limit, so a flood of
 * certificates or addresses costs fixed memory and writes no more.
 */
#define UNKNOWN_SLOTS	4096
#define UNKNOWN_PROBES	16

struct unknown_bucket {
	char	key[80];	/* "c:" and a fingerprint, or "a:" and an address */
	double	tokens;
	double	last;
};

static struct unknown_bucket *
unknown_bucket(struct server *srv, const char *key, double now)
{
	struct unknown_bucket	*b, *spare = NULL;
	double			 rate = (double)srv->conf->rate_unknown;
	double			 burst = (double)srv->conf->rate_unknown_burst;
	uint32_t		 h = 2166136261u;	/* FNV-1a */

	if (srv->unknown == NULL)
		srv->unknown = xcalloc(UNKNOWN_SLOTS, sizeof(*srv->unknown));
	for (const char *c = key; *c != '\0'; c++)
		h = (h ^ (unsigned char)*c) * 16777619u;
	for (size_t i = 0; i < UNKNOWN_PROBES; i++) {
		b = &srv->unknown[(h + i) % UNKNOWN_SLOTS];
		if (strcmp(b->key, key) == 0) {
			b->tokens += (now - b->last) * rate;
			if (b->tokens > burst)
				b->tokens = burst;
			b->last = now;
			return b;
		}
		if (spare == NULL && (b->key[0] == '\0' ||
		    b->tokens + (now - b->last) * rate >= burst))
			spare = b;
	}
	if (spare == NULL)
		return NULL;
	snprintf(spare->key, sizeof(spare->key), "%s", key);
	spare->tokens = burst;
	spare->last = now;
	return spare;
}

/* 1 if a refusal from this peer before its agency is known may be logged. */
static int
unknown_take(struct server *srv, struct evhttp_request *req, const struct peer *p)
{
	struct evhttp_connection	*evc = evhttp_request_get_connection(req);
	char				*addr = NULL;
	ev_uint16_t			 port;

	if (evc != NULL)
		evhttp_connection_get_peer(evc, &addr, &port);
	return unknown_allow(srv, addr, p->fp);
}

/*
 * The same for a peer known by its address (text, NULL if unknown) and
 * certificate fingerprint ("" if none); conn_admit() uses it too.
 */
static int
unknown_allow(struct server *srv, const char *addr, const char *fp)
{
	struct unknown_bucket		*bc = NULL, *ba;
	char				 key[80];
	double				 now = mono_seconds();

	if (srv->conf->rate_unknown == 0)
		return 1;
	snprintf(key, sizeof(key), "a:%s", addr ? addr : "?");
	if ((ba = unknown_bucket(srv, key, now)) == NULL)
		return 0;
	if (fp[0] != '\0') {
		snprintf(key, sizeof(key), "c:%s", fp);
		if ((bc = unknown_bucket(srv, key, now)) == NULL)
			return 0;
	}
	if (ba->tokens < 1.0 || (bc != NULL && bc->tokens < 1.0))
		return 0;
	ba->tokens -= 1.0;
	if (bc != NULL)
		bc->tokens -= 1.0;
	return 1;
}

/* Sessions kept for resumption are forgotten every tls.ticket_rotation seconds. */
static void
forget_sessions(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	tls_forget_sessions(srv->ssl);
	log_debug("event=tls_sessions_forgotten");
}

/*
 * A holder batch is logged, then applied, then answered. A crash between
 * the first two leaves write entries for a change that never happened; at
 * start, each such batch gets a rolled_back entry (reason interrupted), so
 * the log says what the store holds. Only the log's tail can be affected.
 */
#define RECONCILE_WINDOW	1000000

struct reconcile {
	struct server	*srv;
	size_t		 rolled_back;
	int		 failed;
};

static int
reconcile_one(const char *rid, uint64_t first_seq, const char *agency,
    const char *store, int64_t when, void *arg)
{
	struct reconcile	*rc = arg;
	struct server		*srv = rc->srv;
	struct audit_entry	 e, *ep = &e;
	int			 applied;

	/*
	 * Only batches meant for the store open now (issue 15): one logged
	 * for another store, or (logged before stores had ids) before this
	 * store was made, was not this store's to apply.
	 */
	if (store[0] != '\0' ? strcmp(store, srv->store_ref) != 0 :
	    when < store_created_at(srv->store))
		return 0;
	if ((applied = store_batch_applied(srv->store, rid)) == 1)
		return 0;
	if (applied == -1) {
		rc->failed = 1;
		return -1;
	}
	holder_rolled_back(&e, srv->proto, agency, rid, first_seq, "interrupted");
	e.case_ref = srv->store_ref;
	if (audit_append(srv->audit, &ep, 1) == -1) {
		rc->failed = 1;
		return -1;
	}
	rc->rolled_back++;
	return 0;
}

/*
 * The end of an event-loop round: the event is made active while the round
 * runs, so it runs after the events already due in it (as logq's kick).
 * Making an active event active again does nothing.
 */
static void
round_end(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	store_read_end(srv->store);
	log_flush();
}

static void
round_owed(void *arg)
{
	struct server *srv = arg;

	event_active(srv->round, 0, 0);
}

void
server_read_scope(struct server *srv)
{
	store_read_begin(srv->store);
	round_owed(srv);
}

/*
 * The epoll change list: a connection whose interest changes several times
 * in one loop round (write armed after a reply, read re-armed after it
 * leaves) costs one epoll_ctl(2), not one per change; it showed in the
 * profile at 4 calls per disclosure.
 */
static struct event_base *
new_base(void)
{
	struct event_config	*cfg = event_config_new();
	struct event_base	*base;

	if (cfg == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

static int
reconcile_holder_batches(struct server *srv, char *err, size_t errlen)
{
	struct reconcile	 rc = { srv, 0, 0 };
	uint64_t		 size = audit_size(srv->audit);

	if (audit_holder_batches(srv->audit, size > RECONCILE_WINDOW ?
	    size - RECONCILE_WINDOW : 0, reconcile_one, &rc) == -1 || rc.failed) {
		snprintf(err, errlen, "reconciling holder batches: %s / %s",
		    audit_errmsg(srv->audit), store_errmsg(srv->store));
		return -1;
	}
	if (rc.rolled_back > 0)
		log_warnx("event=holder_batches_interrupted count=%zu", rc.rolled_back);
	return 0;
}

/*
 * Issue 13 item 5: the log must be the one the store remembers, at least
 * as long as it was (the store keeps a high-water mark), and a new, empty
 * log must not replace the one the subject index remembers. Otherwise the
 * log was deleted, replaced or cut while the daemon was stopped: refused
 * unless -N was given, and then the new log says so first (log_new_log).
 */
static int
new_log_check(struct server *srv, char *err, size_t errlen)
{
	struct audit_memory	 mem;
	unsigned char		 mine[16];
	uint64_t		 size = audit_size(srv->audit);
	char			 why[300];
	int			 rc;

	audit_log_id(srv->audit, mine);
	if ((rc = store_log_memory(srv->conf->store, mem.log_id, &mem.size, err,
	    errlen)) == -1)
		return -1;
	if (rc == 1 && audit_memory_check(&mem, "the store", 1, mine, size, why,
	    sizeof(why)) == -1)
		goto refuse;
	if (size == 0 && audit_index_remembers(srv->conf->audit_log, mem.log_id,
	    &mem.size) == 1 && audit_memory_check(&mem, "the subject index beside it",
	    1, mine, size, why, sizeof(why)) == -1)
		goto refuse;
	return 0;
 refuse:
	if (!srv->new_log_ok) {
		snprintf(err, errlen, "%s: %s: the log was deleted, replaced or cut; "
		    "restore it from backup, or start with -N to begin a new log "
		    "(which records this)", srv->conf->audit_log, why);
		return -1;
	}
	snprintf(srv->new_log_note, sizeof(srv->new_log_note), "started with -N "
	    "where %s", why);
	return 0;
}

/*
 * The store's high-water mark of the log (issue 13 item 5), every minute
 * from the event loop: the size under the log writer's lock, and a write
 * that gives up rather than wait for a holder batch.
 */
static void
remember_log(evutil_socket_t fd, short what, void *arg)
{
	struct server		*srv = arg;
	struct logq_stats	 ls;
	unsigned char		 id[16];

	(void)fd;
	(void)what;
	logq_stats(srv->logq, &ls);
	audit_log_id(srv->audit, id);
	if (store_remember_log(srv->store, id, ls.size, 0) == -1)
		log_debug("event=log_mark_skipped error=\"%s\"",
		    store_errmsg(srv->store));
}

/* The -N start's own entry, before anything else is logged. */
static int
log_new_log(struct server *srv, char *err, size_t errlen)
{
	struct audit_entry e, *ep = &e;

	memset(&e, 0, sizeof(e));
	e.time = time(NULL);
	e.kind = "new_log";
	e.decision = "forced";
	/* A new log, or one restored from a backup shorter than the store remembers. */
	e.reason = audit_size(srv->audit) == 0 ? "previous_log_missing" :
	    "log_restored";
	e.justification = srv->new_log_note;
	if (audit_append(srv->audit, &ep, 1) == -1) {
		snprintf(err, errlen, "logging the new log: %s", audit_errmsg(srv->audit));
		return -1;
	}
	log_warnx("event=new_log_forced %s", srv->new_log_note);
	return 0;
}

int
server_init(struct server *srv, struct config *conf, struct protocol *proto,
    char *err, size_t errlen)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof(ss);
	evutil_socket_t		 fd;

	srv->conf = conf;
	srv->proto = proto;
	TAILQ_INIT(&srv->conns);
	if (conn_idx == -1)
		conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_freed);
	if ((srv->ssl = tls_server_ctx(conf->tls_cert, conf->tls_key, conf->tls_ca,
	    conf->tls_crl, err, errlen)) == NULL)
		return -1;
	if (store_open(&srv->store, conf->store, err, errlen) == -1)
		return -1;
	snprintf(srv->store_ref, sizeof(srv->store_ref), "store:%s",
	    store_id(srv->store));
	if (audit_open(&srv->audit, conf->audit_log, err, errlen) == -1)
		return -1;
	if (new_log_check(srv, err, errlen) == -1)
		return -1;
	if (conf->audit_signing_key != NULL) {
		if (audit_set_signer(srv->audit, conf->audit_signing_key,
		    (uint64_t)conf->checkpoint_every, conf->checkpoint_seconds, err,
		    errlen) == -1)
			return -1;
		srv->public_pem = audit_public_pem(srv->audit);
		if ((srv->public_key = pem_public_key(srv->public_pem)) == NULL) {
			snprintf(err, errlen, "cannot derive the log's public key");
			return -1;
		}
	} else
		log_warnx("event=no_checkpoints reason=\"audit.signing_key not set; the "
		    "log is hash-chained but not signed\"");
	if (conf->audit_previous_signing_key != NULL &&
	    audit_set_previous_signer(srv->audit, conf->audit_previous_signing_key,
	    err, errlen) == -1)
		return -1;
	if (conf->audit_first_public_key != NULL &&
	    (srv->first_key = audit_load_public_key(conf->audit_first_public_key,
	    err, errlen)) == NULL)
		return -1;
	/* D7, D16: never sign over a log that does not verify from its last checkpoint. */
	if (audit_check_start(srv->audit, 0, err, errlen) == -1)
		return -1;
	if (srv->new_log_note[0] != '\0' && log_new_log(srv, err, errlen) == -1)
		return -1;
	{
		unsigned char id[16];

		/*
		 * From here on the store remembers this log (issue 13 item 5);
		 * after -N, at its size now, even if that is less than before
		 * (a log restored from an older backup).
		 */
		audit_log_id(srv->audit, id);
		if ((srv->new_log_note[0] != '\0' && store_forget_log(srv->store) == -1) ||
		    store_remember_log(srv->store, id, audit_size(srv->audit), 1) == -1) {
			snprintf(err, errlen, "%s: noting the log: %s", conf->store,
			    store_errmsg(srv->store));
			return -1;
		}
		srv->log_remembered = 1;
	}
	if (storelog_start(srv, err, errlen) == -1 ||
	    reconcile_holder_batches(srv, err, errlen) == -1)
		return -1;
	if (audit_open_reader(&srv->reader, conf->audit_log, err, errlen) == -1)
		return -1;
	if ((srv->base = new_base()) == NULL ||
	    (srv->http = evhttp_new(srv->base)) == NULL) {
		snprintf(err, errlen, "cannot create the event loop");
		return -1;
	}
	/* Lines are held for the end of the round and leave in one write. */
	if ((srv->round = event_new(srv->base, -1, 0, round_end, srv)) == NULL) {
		snprintf(err, errlen, "cannot create the event loop");
		return -1;
	}
	log_hold(round_owed, srv);
	if ((srv->logq = logq_new(srv->base, srv->audit, conf->audit_log)) == NULL) {
		snprintf(err, errlen, "cannot start the log writer");
		return -1;
	}
	if ((srv->holder = hworker_new(srv, err, errlen)) == NULL)
		return -1;
	{
		struct timeval every = { (time_t)conf->ticket_rotation, 0 };

		srv->forget = event_new(srv->base, -1, EV_PERSIST, forget_sessions, srv);
		if (srv->forget == NULL || event_add(srv->forget, &every) == -1) {
			snprintf(err, errlen, "cannot start the session timer");
			return -1;
		}
	}
	{
		struct timeval every = { 60, 0 };

		srv->logmark = event_new(srv->base, -1, EV_PERSIST, remember_log, srv);
		if (srv->logmark == NULL || event_add(srv->logmark, &every) == -1) {
			snprintf(err, errlen, "cannot start the log mark timer");
			return -1;
		}
	}
	evhttp_set_bevcb(srv->http, tls_bev, srv);
	evhttp_set_gencb(srv->http, route, srv);
	evhttp_set_max_body_size(srv->http, (ev_ssize_t)(conf->max_import > conf->max_body ?
	    conf->max_import : conf->max_body));
	evhttp_set_max_headers_size(srv->http, (ev_ssize_t)conf->max_headers);
	evhttp_set_timeout(srv->http, (int)conf->timeout);
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	if ((srv->listener = evhttp_bind_socket_with_handle(srv->http, conf->listen,
	    (ev_uint16_t)conf->port)) == NULL) {
		/* Issue 22: the system's reason and what to change (errno of bind). */
		int e = errno;

		snprintf(err, errlen, "cannot listen on %s:%lld: %s%s", conf->listen,
		    conf->port, strerror(e), e == EADDRINUSE ? "; another process "
		    "holds the port: stop it, or set port in the config (0 for any "
		    "free port)" : e == EACCES ? "; ports below 1024 need root or "
		    "CAP_NET_BIND_SERVICE: set port to 1024 or above" :
		    e == EADDRNOTAVAIL ? "; listen is not an address of this host" :
		    "");
		return -1;
	}
	srv->accepting = 1;
	fd = evhttp_bound_socket_get_fd(srv->listener);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0)
		srv->port = ntohs(ss.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&ss)->sin6_port :
		    ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

int
server_reload(struct server *srv, const char *by, struct diag *d, uint64_t *seq)
{
	struct protocol		*p;
	struct audit_entry	 e;
	SSL_CTX			*ssl;
	char			 err[512];

	*seq = 0;
	/* Certificates, keys and the CRL are re-read too (rotation, revocation). */
	if ((ssl = tls_server_ctx(srv->conf->tls_cert, srv->conf->tls_key,
	    srv->conf->tls_ca, srv->conf->tls_crl, err, sizeof(err))) == NULL) {
		diag_add(d, srv->conf->path, 0, 0, "tls: %s", err);
		log_warnx("event=reload_rejected problem=\"tls: %s\"", err);
		return -1;
	}
	if ((p = protocol_load(srv->conf->protocol, time(NULL), d)) == NULL) {
		SSL_CTX_free(ssl);
		for (size_t i = 0; i < d->n; i++)
			log_warnx("event=reload_rejected problem=\"%s\"", d->msgs[i]);
		log_warnx("event=reload_rejected keeping=%s version=%s",
		    srv->proto->id, srv->proto->version);
		return -1;
	}
	memset(&e, 0, sizeof(e));
	e.time = time(NULL);
	e.kind = "reload";
	e.agency = by;
	e.decision = "reload";
	e.reason = "protocol_reloaded";
	e.protocol_id = p->id;
	e.protocol_version = p->version;
	e.protocol_sha256 = p->sha256;
	/* Rare and small: waiting on this one commit is acceptable. */
	if (logq_append_sync(srv->logq, &e) == -1) {
		diag_add(d, srv->conf->protocol, 0, 0, "the disclosure log cannot be "
		    "written; not reloaded");
		log_warnx("event=reload_rejected reason=audit_unavailable");
		protocol_unref(p);
		SSL_CTX_free(ssl);
		return -1;
	}
	/* Connections already open keep a reference to the old context. */
	SSL_CTX_free(srv->ssl);
	srv->ssl = ssl;
	/* Requests holding a reference finish on the old version. */
	protocol_unref(srv->proto);
	srv->proto = p;
	*seq = e.seq;
	log_info("event=reloaded protocol=%s version=%s sha256=%s by=%s", p->id,
	    p->version, p->sha256, by ? by : "SIGHUP");
	conns_recheck(srv);
	return 0;
}

static void
drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct server		*srv = arg;
	const struct timeval	 flush = { 0, 200000 };

	/*
	 * A verify thread still uses srv->public_key and srv->base, which
	 * server_shutdown() frees: its reply is waited for like a decision's,
	 * and so is every holder batch not yet answered.
	 */
	if (logq_pending(srv->logq) > 0 || srv->verifying > 0 ||
	    hworker_busy(srv->holder) > 0)
		return;		/* the timer fires again */
	event_del(srv->drain);
	/* Every decision is answered; give the replies a moment to leave. */
	event_base_loopexit(srv->base, &flush);
}

void
server_stop(struct server *srv)
{
	const struct timeval tick = { 0, 20000 };

	if (srv->listener != NULL) {
		evhttp_del_accept_socket(srv->http, srv->listener);
		srv->listener = NULL;
	}
	if (srv->forget != NULL)
		event_del(srv->forget);
	if (srv->drain == NULL) {
		srv->drain = event_new(srv->base, -1, EV_PERSIST, drain_check, srv);
		event_add(srv->drain, &tick);
	}
}

void
server_shutdown(struct server *srv)
{
	linger_free_all();
	hworker_free(srv->holder);
	srv->holder = NULL;
	if (srv->http != NULL)
		evhttp_free(srv->http);
	/*
	 * The auditors' reader goes first: the last connection to close a WAL
	 * database copies its WAL in and removes it, which a read-only one
	 * cannot do (the subject index's is the checkpointer's, in logq).
	 */
	audit_close(srv->reader);
	srv->reader = NULL;
	logq_free(srv->logq);
	log_hold(NULL, NULL);
	if (srv->round != NULL)
		event_free(srv->round);
	if (srv->drain != NULL)
		event_free(srv->drain);
	if (srv->forget != NULL)
		event_free(srv->forget);
	if (srv->logmark != NULL)
		event_free(srv->logmark);
	if (srv->base != NULL)
		event_base_free(srv->base);
	if (srv->ssl != NULL)
		SSL_CTX_free(srv->ssl);
	for (size_t i = 0; i < srv->nrates; i++)
		free(srv->rates[i].agency);
	free(srv->rates);
	free(srv->unknown);
	/* A clean stop: the writer is gone, the log's size is final. */
	if (srv->log_remembered) {
		unsigned char id[16];

		audit_log_id(srv->audit, id);
		if (store_remember_log(srv->store, id, audit_size(srv->audit), 1) == -1)
			log_warnx("event=log_mark_failed error=\"%s\"",
			    store_errmsg(srv->store));
	}
	store_close(srv->store);
	audit_close(srv->audit);
	EVP_PKEY_free(srv->public_key);
	EVP_PKEY_free(srv->first_key);
	free(srv->public_pem);
	protocol_unref(srv->proto);
	memset(srv, 0, sizeof(*srv));
}
