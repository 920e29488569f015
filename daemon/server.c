/*
 * Routes:
 *   POST /v1/disclosures   DisclosureRequest -> DisclosureResponse | Error
 *   POST /v1/admin/reload  (empty) -> ReloadResult (role admin)
 *   GET  /healthz          Health
 * Every disclosure decision, including refusals, is committed to the
 * disclosure log before the reply is queued (D7); if the log cannot be
 * written the reply is 503 audit_unavailable and nothing is released.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/rand.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "policy.h"
#include "server.h"
#include "tls.h"
#include "wire.h"

#define MAX_LOG_FIELD	1024	/* free text kept in the log, bytes */

/* Who is on the other end of a request's connection (D10). */
struct peer {
	unsigned char	 spki[32];
	char		 fp[65];
	char		 subject[256];
	int		 ok;
};

static void
peer_of(struct evhttp_request *req, struct peer *p)
{
	struct evhttp_connection	*conn = evhttp_request_get_connection(req);
	struct bufferevent		*bev;
	SSL				*ssl;
	X509				*x;
	int				 one = 1;

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
}

static void
reply(struct evhttp_request *req, int status, const char *reason, uint8_t *body,
    size_t len)
{
	struct evbuffer *out = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/x-protobuf");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control",
	    "no-store");
	evbuffer_add(out, body, len);
	evhttp_send_reply(req, status, reason, out);
	evbuffer_free(out);
	free(body);
}

static void
reply_error(struct evhttp_request *req, int status, const char *code,
    const char *msg, uint64_t disclosure_id)
{
	size_t	 len;
	uint8_t	*body = wire_error_encode(code, msg, disclosure_id, &len);
	static const struct { int status; const char *text; } texts[] = {
		{ 400, "Bad Request" }, { 403, "Forbidden" }, { 404, "Not Found" },
		{ 405, "Method Not Allowed" }, { 413, "Payload Too Large" },
		{ 500, "Internal Server Error" }, { 503, "Service Unavailable" },
	};
	const char *text = "Error";

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (texts[i].status == status)
			text = texts[i].text;
	reply(req, status, text, body, len);
}

static const char *
cap(const char *s)
{
	return s != NULL && strlen(s) > MAX_LOG_FIELD ? "(over length cap)" : s;
}

/* Commits one entry; on failure marks the log as failing for /healthz. */
static int
log_entry(struct server *srv, struct audit_entry *e)
{
	struct audit_entry *one = e;

	if (audit_append(srv->audit, &one, 1) == -1) {
		srv->audit_failures++;
		if (srv->audit_ok)
			log_warnx("event=audit_failed error=\"%s\"",
			    audit_errmsg(srv->audit));
		srv->audit_ok = 0;
		return -1;
	}
	if (!srv->audit_ok)
		log_info("event=audit_recovered size=%llu",
		    (unsigned long long)audit_size(srv->audit));
	srv->audit_ok = 1;
	return 0;
}

/* Logs a refusal made before the policy ran (no agency, bad body). */
static void
refuse(struct server *srv, struct evhttp_request *req, const struct peer *p,
    const char *agency, int status, const char *code, const char *msg,
    const char *request_id)
{
	struct audit_entry e;

	memset(&e, 0, sizeof(e));
	e.time = time(NULL);
	e.kind = "rejected";
	e.agency = agency;
	e.cert_fp = p->fp;
	e.decision = "deny";
	e.reason = code;
	e.protocol_id = srv->proto->id;
	e.protocol_version = srv->proto->version;
	e.protocol_sha256 = srv->proto->sha256;
	e.request_id = request_id;
	if (log_entry(srv, &e) == -1) {
		reply_error(req, 503, "audit_unavailable", "the disclosure log cannot "
		    "be written; nothing was released", 0);
		return;
	}
	log_info("event=refused agency=%s code=%s seq=%llu", agency ? agency : "-",
	    code, (unsigned long long)e.seq);
	reply_error(req, status, code, msg, e.seq);
}

static void
new_request_id(char out[33])
{
	unsigned char r[16];

	RAND_bytes(r, sizeof(r));
	hex_encode(r, sizeof(r), out);
}

static void
handle_disclosure(struct server *srv, struct evhttp_request *req)
{
	struct evbuffer		*in = evhttp_request_get_input_buffer(req);
	struct protocol		*proto = protocol_ref(srv->proto);
	const struct agency	*ag;
	const struct record_type *rt;
	struct policy_request	 pr;
	struct store_subject	 subj;
	struct decision		 d;
	struct audit_entry	 e;
	struct peer		 p;
	wire_request		*wr = NULL;
	char			 rid[33], released[2048], withheld[2048];
	size_t			 len = evbuffer_get_length(in), outlen;
	int64_t			 now = time(NULL);
	uint8_t			*out;
	int			 have_subject = 0;

	new_request_id(rid);
	peer_of(req, &p);
	if (!p.ok) {
		refuse(srv, req, &p, NULL, 403, "no_identity",
		    "no verified client certificate", rid);
		goto done;
	}
	if ((ag = protocol_agency_by_cert(proto, p.spki, p.subject)) == NULL) {
		log_warnx("event=unknown_agency fp=%s", p.fp);
		refuse(srv, req, &p, NULL, 403, "unknown_agency", "this certificate "
		    "does not belong to any agency in the sharing protocol", rid);
		goto done;
	}
	if ((wr = wire_request_decode(evbuffer_pullup(in, -1), len)) == NULL) {
		refuse(srv, req, &p, ag->id, 400, "malformed_request",
		    "the body is not a valid safeshare.v1.DisclosureRequest", rid);
		goto done;
	}
	wire_request_view(wr, &pr);
	if (wr->request_id != NULL && wr->request_id[0] != '\0' &&
	    strlen(wr->request_id) < sizeof(rid))
		snprintf(rid, sizeof(rid), "%s", wr->request_id);

	memset(&subj, 0, sizeof(subj));
	if ((rt = protocol_record_type(proto, pr.record_type)) != NULL &&
	    pr.subject_id[0] != '\0') {
		if (store_subject(srv->store, rt, pr.subject_id, ag->id, pr.purpose,
		    &subj) == -1) {
			log_warnx("event=store_failed error=\"%s\"",
			    store_errmsg(srv->store));
			reply_error(req, 500, "store_unavailable", "the record store "
			    "could not be read", 0);
			goto done;
		}
		have_subject = 1;
	}
	policy_decide(proto, ag, &pr, have_subject ? &subj.view : NULL, now, &d);

	/* D7: the decision is durably logged before anything leaves. */
	wire_fields_summary(&d, 1, released, sizeof(released));
	wire_fields_summary(&d, 0, withheld, sizeof(withheld));
	memset(&e, 0, sizeof(e));
	e.time = now;
	e.kind = "disclosure";
	e.agency = ag->id;
	e.cert_fp = p.fp;
	e.practitioner = cap(pr.practitioner);
	e.purpose = cap(pr.purpose);
	e.lawful_basis = d.purpose ? d.purpose->lawful_basis : "";
	e.case_ref = cap(pr.case_ref);
	e.subject = cap(pr.subject_id);
	e.record_type = cap(pr.record_type);
	e.decision = decision_name(d.kind);
	e.reason = d.reason;
	e.released = released;
	e.withheld = withheld;
	e.consent = d.consent;
	e.override_code = d.override_used ? override_name(d.override) :
	    cap(pr.override_code);
	e.justification = cap(pr.justification);
	e.rule_id = d.rule ? d.rule->id : "";
	e.protocol_id = proto->id;
	e.protocol_version = proto->version;
	e.protocol_sha256 = proto->sha256;
	e.request_id = rid;
	if (log_entry(srv, &e) == -1) {
		reply_error(req, 503, "audit_unavailable", "the disclosure log cannot "
		    "be written; nothing was released", 0);
		goto done;
	}
	srv->decisions[d.kind]++;
	log_info("event=decision agency=%s decision=%s reason=%s rule=%s seq=%llu "
	    "request_id=%s", ag->id, e.decision, d.reason, e.rule_id,
	    (unsigned long long)e.seq, rid);

	if (strcmp(d.reason, "unknown_subject") == 0)
		reply_error(req, 404, d.reason, "no such subject is known for this "
		    "record type", e.seq);
	else if (strcmp(d.reason, "not_requester") == 0)
		reply_error(req, 403, d.reason, d.detail, e.seq);
	else if (strcmp(d.reason, "incomplete_request") == 0)
		reply_error(req, 400, d.reason, d.detail, e.seq);
	else {
		out = wire_response_encode(&d, proto->id, proto->version, e.seq,
		    subj.view.last_verified, now, &outlen);
		reply(req, 200, "OK", out, outlen);
	}
done:
	if (have_subject)
		store_subject_free(&subj);
	wire_request_free(wr);
	protocol_unref(proto);
}

static void
handle_health(struct server *srv, struct evhttp_request *req)
{
	Safeshare__V1__Health	 h = SAFESHARE__V1__HEALTH__INIT;
	size_t			 len;
	uint8_t			*buf;

	h.status = srv->audit_ok ? "ok" : "degraded";
	h.audit_ok = srv->audit_ok;
	h.protocol_id = srv->proto->id;
	h.protocol_version = srv->proto->version;
	h.log_size = audit_size(srv->audit);
	len = safeshare__v1__health__get_packed_size(&h);
	buf = xcalloc(len ? len : 1, 1);
	safeshare__v1__health__pack(&h, buf);
	reply(req, srv->audit_ok ? 200 : 503, srv->audit_ok ? "OK" :
	    "Service Unavailable", buf, len);
}

static void	handle_reload(struct server *, struct evhttp_request *);

static void
route(struct evhttp_request *req, void *arg)
{
	struct server	*srv = arg;
	const char	*path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	srv->requests++;
	if (path == NULL)
		path = "";
	if (strcmp(path, "/v1/disclosures") == 0) {
		if (cmd != EVHTTP_REQ_POST)
			reply_error(req, 405, "method_not_allowed", "use POST", 0);
		else
			handle_disclosure(srv, req);
	} else if (strcmp(path, "/v1/admin/reload") == 0) {
		if (cmd != EVHTTP_REQ_POST)
			reply_error(req, 405, "method_not_allowed", "use POST", 0);
		else
			handle_reload(srv, req);
	} else if (strcmp(path, "/healthz") == 0) {
		if (cmd != EVHTTP_REQ_GET)
			reply_error(req, 405, "method_not_allowed", "use GET", 0);
		else
			handle_health(srv, req);
	} else
		reply_error(req, 404, "not_found", "no such endpoint", 0);
}

/* Each accepted connection gets its own TLS session in server mode. */
static struct bufferevent *
tls_bev(struct event_base *base, void *arg)
{
	struct server	*srv = arg;
	SSL		*ssl = SSL_new(srv->ssl);

	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
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
	srv->audit_ok = 1;
	if ((srv->ssl = tls_server_ctx(conf->tls_cert, conf->tls_key, conf->tls_ca,
	    err, errlen)) == NULL)
		return -1;
	if (store_open(&srv->store, conf->store, err, errlen) == -1)
		return -1;
	if (audit_open(&srv->audit, conf->audit_log, err, errlen) == -1)
		return -1;
	if ((srv->base = event_base_new()) == NULL ||
	    (srv->http = evhttp_new(srv->base)) == NULL) {
		snprintf(err, errlen, "cannot create the event loop");
		return -1;
	}
	evhttp_set_bevcb(srv->http, tls_bev, srv);
	evhttp_set_gencb(srv->http, route, srv);
	evhttp_set_max_body_size(srv->http, (ev_ssize_t)conf->max_body);
	evhttp_set_max_headers_size(srv->http, (ev_ssize_t)conf->max_headers);
	evhttp_set_timeout(srv->http, (int)conf->timeout);
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	if ((srv->listener = evhttp_bind_socket_with_handle(srv->http, conf->listen,
	    (ev_uint16_t)conf->port)) == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%lld", conf->listen,
		    conf->port);
		return -1;
	}
	fd = evhttp_bound_socket_get_fd(srv->listener);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0)
		srv->port = ntohs(ss.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&ss)->sin6_port :
		    ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

/*
 * Re-reads the protocol file. On any problem the old protocol stays in force
 * and the problems are left in *d (the caller frees it). A successful reload
 * is itself a log entry; its seq goes to *seq.
 */
int
server_reload(struct server *srv, const char *by, struct diag *d, uint64_t *seq)
{
	struct protocol		*p;
	struct audit_entry	 e;

	*seq = 0;
	if ((p = protocol_load(srv->conf->protocol, time(NULL), d)) == NULL) {
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
	if (log_entry(srv, &e) == -1) {
		diag_add(d, srv->conf->protocol, 0, 0, "the disclosure log cannot be "
		    "written; not reloaded");
		log_warnx("event=reload_rejected reason=audit_unavailable");
		protocol_unref(p);
		return -1;
	}
	/* Requests holding a reference finish on the old version. */
	protocol_unref(srv->proto);
	srv->proto = p;
	*seq = e.seq;
	log_info("event=reloaded protocol=%s version=%s sha256=%s by=%s", p->id,
	    p->version, p->sha256, by ? by : "SIGHUP");
	return 0;
}

static void
handle_reload(struct server *srv, struct evhttp_request *req)
{
	Safeshare__V1__ReloadResult	 r = SAFESHARE__V1__RELOAD_RESULT__INIT;
	const struct agency		*ag;
	struct diag			 d = { 0 };
	struct peer			 p;
	uint64_t			 seq;
	size_t				 len;
	uint8_t				*buf;
	char				 rid[33];

	new_request_id(rid);
	peer_of(req, &p);
	ag = p.ok ? protocol_agency_by_cert(srv->proto, p.spki, p.subject) : NULL;
	if (ag == NULL || !(ag->roles & ROLE_ADMIN)) {
		refuse(srv, req, &p, ag ? ag->id : NULL, 403, "not_admin",
		    "reloading the protocol needs the admin role", rid);
		return;
	}
	r.ok = server_reload(srv, ag->id, &d, &seq) == 0;
	r.protocol_id = srv->proto->id;
	r.protocol_version = srv->proto->version;
	r.protocol_sha256 = srv->proto->sha256;
	r.problems = d.msgs;
	r.n_problems = d.n;
	r.disclosure_id = seq;
	len = safeshare__v1__reload_result__get_packed_size(&r);
	buf = xcalloc(len + 1, 1);
	safeshare__v1__reload_result__pack(&r, buf);
	reply(req, 200, "OK", buf, len);
	diag_free(&d);
}

void
server_shutdown(struct server *srv)
{
	if (srv->http != NULL)
		evhttp_free(srv->http);
	if (srv->base != NULL)
		event_base_free(srv->base);
	if (srv->ssl != NULL)
		SSL_CTX_free(srv->ssl);
	store_close(srv->store);
	audit_close(srv->audit);
	protocol_unref(srv->proto);
	memset(srv, 0, sizeof(*srv));
}
