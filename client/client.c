/*
 * The client library: libevent's HTTP client over bufferevent_openssl,
 * driven to completion for each call so that callers see a blocking API.
 *
 * Partners link it as libsafeshare-client (docs/cli.md): it
 * carries only this file, tls.c, secret.c and the protobuf code, exports
 * only the ss_ functions and the safeshare__v1__ message code, and never
 * calls exit(): out of memory is an error returned to the caller, hence
 * calloc here and not util.c's xcalloc.
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
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "safeshare/client.h"
#include "tls.h"

struct ss_client {
	struct event_base		*base;
	SSL_CTX				*ctx;
	struct evhttp_connection	*conn;
	struct bufferevent		*bev;
	char				 host[256];
	int				 port;
	int				 timeout;
};

struct call {
	struct ss_client	*c;
	int			 done;
	int			 status;
	unsigned char		*body;
	size_t			 len;
	char			*err;
	size_t			 errlen;
};

static int
split_server(const char *server, char *host, size_t hostlen, int *port)
{
	const char	*colon = strrchr(server, ':');
	char		*end;
	long		 p;

	if (colon == NULL || colon == server || (size_t)(colon - server) >= hostlen)
		return -1;
	p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || p <= 0 || p > 65535)
		return -1;
	memcpy(host, server, (size_t)(colon - server));
	host[colon - server] = '\0';
	*port = (int)p;
	return 0;
}

int
ss_client_new(struct ss_client **out, const struct ss_client_config *cfg, char *err,
    size_t errlen)
{
	struct ss_client	*c;
	SSL			*ssl;
	struct in6_addr		 a6;
	struct in_addr		 a4;

	*out = NULL;
	if (cfg->server == NULL || cfg->cert == NULL || cfg->key == NULL ||
	    cfg->ca == NULL) {
		snprintf(err, errlen, "server, cert, key and ca are all required");
		return -1;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->timeout = cfg->timeout > 0 ? cfg->timeout : 30;
	if (split_server(cfg->server, c->host, sizeof(c->host), &c->port) == -1) {
		snprintf(err, errlen, "bad server address \"%s\" (expected HOST:PORT)",
		    cfg->server);
		goto fail;
	}
	if ((c->ctx = tls_client_ctx(cfg->cert, cfg->key, cfg->ca, err, errlen)) == NULL)
		goto fail;
	if ((c->base = event_base_new()) == NULL || (ssl = SSL_new(c->ctx)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* Check the server's name or address against its certificate. */
	if (inet_pton(AF_INET, c->host, &a4) == 1 || inet_pton(AF_INET6, c->host, &a6) == 1)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->host);
	else {
		SSL_set_tlsext_host_name(ssl, c->host);
		SSL_set1_host(ssl, c->host);
	}
	c->bev = bufferevent_openssl_socket_new(c->base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->bev == NULL) {
		SSL_free(ssl);
		snprintf(err, errlen, "cannot create TLS stream");
		goto fail;
	}
	c->conn = evhttp_connection_base_bufferevent_new(c->base, NULL, c->bev,
	    c->host, (unsigned short)c->port);
	if (c->conn == NULL) {
		snprintf(err, errlen, "cannot create connection");
		goto fail;
	}
	evhttp_connection_set_timeout(c->conn, c->timeout);
	evhttp_connection_set_retries(c->conn, 0);
	*out = c;
	return 0;
fail:
	ss_client_free(c);
	return -1;
}

/*
 * A server that hangs up (say, on a certificate it refuses) makes our next
 * write raise SIGPIPE, which would kill the calling program. A library must
 * not change the program's handlers: block it on this thread around the
 * I/O and discard any SIGPIPE we caused.
 */
struct sigpipe {
	sigset_t	 old;
	int		 was_pending;
};

static void
sigpipe_block(struct sigpipe *sp)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	sp->was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &sp->old);
}

static void
sigpipe_restore(struct sigpipe *sp)
{
	static const struct timespec	 zero = { 0, 0 };
	sigset_t			 set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	if (!sp->was_pending && sigismember(&pending, SIGPIPE))
		while (sigtimedwait(&set, NULL, &zero) == -1 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &sp->old, NULL);
}

void
ss_client_free(struct ss_client *c)
{
	struct sigpipe sp;

	if (c == NULL)
		return;
	sigpipe_block(&sp);	/* closing may write a TLS alert */
	if (c->conn != NULL)
		evhttp_connection_free(c->conn);	/* frees the bufferevent */
	sigpipe_restore(&sp);
	if (c->base != NULL)
		event_base_free(c->base);
	SSL_CTX_free(c->ctx);
	free(c);
}

/*
 * What a TLS error from the handshake means, in words a user can act on
 * (issue 14 item 16), or NULL when it is none of the usual causes.
 */
static const char *
tls_cause(unsigned long e, SSL *ssl)
{
	if (ERR_GET_LIB(e) != ERR_LIB_SSL)
		return NULL;
	switch (ERR_GET_REASON(e)) {
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		return "the server requires a client certificate (certificate "
		    "required): give one with --cert and --key";
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
		return "the server does not trust the CA that issued our "
		    "certificate (unknown CA)";
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
		return "the server says our certificate has expired (expired)";
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
		return "the server says our certificate is revoked (revoked)";
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
		/* safeshared's answer to a certificate of no agency. */
		return "the server refused our certificate (bad certificate): "
		    "it maps to no agency in the sharing protocol; ask the "
		    "admin to check the agency's subject or key pin";
	case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
		return "the server refused our certificate (bad certificate)";
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
		switch (ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK) {
		case X509_V_ERR_CERT_HAS_EXPIRED:
			return "the server's certificate has expired (expired)";
		case X509_V_ERR_CERT_NOT_YET_VALID:
			return "the server's certificate is not valid yet";
		case X509_V_ERR_HOSTNAME_MISMATCH:
		case X509_V_ERR_IP_ADDRESS_MISMATCH:
			return "the server's certificate is not for this host name "
			    "or address";
		default:
			return "the server's certificate is not from a CA we trust "
			    "(unknown CA): check --ca";
		}
	}
	return NULL;
}

/*
 * A plain TCP connect to host:port, at most `seconds` long: 0 if it
 * connects, else the errno. Used only after a call failed without a TLS
 * reason, to tell "nothing listens there" from "it hung up on us".
 */
static int
tcp_probe(const char *host, int port, int seconds)
{
	struct addrinfo	 hints, *res = NULL;
	struct pollfd	 pfd;
	char		 sport[16];
	socklen_t	 len = sizeof(int);
	int		 fd = -1, rc, e = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(sport, sizeof(sport), "%d", port);
	if (getaddrinfo(host, sport, &hints, &res) != 0 || res == NULL)
		return EHOSTUNREACH;
	if ((fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1) {
		e = errno;
		goto done;
	}
	if (connect(fd, res->ai_addr, res->ai_addrlen) == 0)
		goto done;
	if (errno != EINPROGRESS) {
		e = errno;
		goto done;
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;
	if ((rc = poll(&pfd, 1, seconds * 1000)) <= 0)
		e = rc == 0 ? ETIMEDOUT : errno;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1)
		e = errno;
done:
	if (fd != -1)
		close(fd);
	freeaddrinfo(res);
	return e;
}

static void
describe_failure(struct call *k)
{
	struct ss_client	*c = k->c;
	SSL			*ssl = bufferevent_openssl_get_ssl(c->bev);
	unsigned long		 e = 0, next;
	const char		*cause = NULL;
	char			 buf[256];
	int			 te;

	if (k->err[0] != '\0')
		return;
	/* libevent keeps a few errors; the one with a known cause wins. */
	while (cause == NULL && (next = bufferevent_get_openssl_error(c->bev)) != 0) {
		cause = tls_cause(next, ssl);
		if (e == 0 || ERR_GET_LIB(e) == 0)
			e = next;
	}
	if (cause != NULL) {
		snprintf(k->err, k->errlen, "TLS failure talking to %s:%d: %s",
		    c->host, c->port, cause);
		return;
	}
	/*
	 * libevent reports a socket error (a refused connect among them) as
	 * SSL_ERROR_SYSCALL with no library: not a TLS problem at all.
	 */
	if (e != 0 && ERR_GET_LIB(e) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(k->err, k->errlen, "TLS failure talking to %s:%d: %s",
		    c->host, c->port, buf);
		return;
	}
	if ((te = tcp_probe(c->host, c->port, c->timeout < 5 ? c->timeout : 5)) != 0)
		snprintf(k->err, k->errlen, "cannot connect to %s:%d: %s", c->host,
		    c->port, strerror(te));
	else if (ssl != NULL && !SSL_is_init_finished(ssl))
		snprintf(k->err, k->errlen, "%s:%d closed the connection during the "
		    "TLS handshake (a server that refuses our certificate does "
		    "that; is this the right server and certificate?)", c->host,
		    c->port);
	else
		snprintf(k->err, k->errlen, "no reply from %s:%d (the connection "
		    "was closed)", c->host, c->port);
}

static void
on_done(struct evhttp_request *req, void *arg)
{
	struct call	*k = arg;
	struct evbuffer	*in;

	k->done = 1;
	if (req == NULL || evhttp_request_get_response_code(req) == 0) {
		describe_failure(k);
		k->status = 0;
	} else {
		k->status = evhttp_request_get_response_code(req);
		in = evhttp_request_get_input_buffer(req);
		k->len = evbuffer_get_length(in);
		if ((k->body = malloc(k->len + 1)) == NULL) {
			snprintf(k->err, k->errlen, "out of memory for a reply "
			    "of %zu bytes", k->len);
			k->status = 0;	/* no usable reply */
		} else {
			evbuffer_remove(in, k->body, k->len);
			k->body[k->len] = '\0';
		}
	}
	event_base_loopbreak(k->c->base);
}

static void
on_error(enum evhttp_request_error e, void *arg)
{
	struct call *k = arg;

	if (e == EVREQ_HTTP_TIMEOUT)
		snprintf(k->err, k->errlen, "timed out after %d s", k->c->timeout);
}

int
ss_client_call(struct ss_client *c, const char *method, const char *path,
    const void *body, size_t len, int *status, unsigned char **resp,
    size_t *resplen, char *err, size_t errlen)
{
	struct evhttp_request	*req;
	struct evkeyvalq	*h;
	struct call		 k;
	char			 host[300];
	evutil_socket_t		 fd;
	struct sigpipe		 sp;
	int			 one = 1;
	enum evhttp_cmd_type	 cmd = strcmp(method, "POST") == 0 ?
				    EVHTTP_REQ_POST : EVHTTP_REQ_GET;

	memset(&k, 0, sizeof(k));
	k.c = c;
	k.err = err;
	k.errlen = errlen;
	err[0] = '\0';
	*resp = NULL;
	*resplen = 0;
	if ((req = evhttp_request_new(on_done, &k)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	evhttp_request_set_error_cb(req, on_error);
	h = evhttp_request_get_output_headers(req);
	snprintf(host, sizeof(host), "%s:%d", c->host, c->port);
	evhttp_add_header(h, "Host", host);
	if (cmd == EVHTTP_REQ_POST) {
		evhttp_add_header(h, "Content-Type", "application/x-protobuf");
		evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
	}
	evhttp_add_header(h, "Accept", "application/x-protobuf");
	if (evhttp_make_request(c->conn, req, cmd, path) == -1) {
		snprintf(err, errlen, "cannot send request");
		return -1;
	}
	/*
	 * evhttp writes the head and the body separately: without TCP_NODELAY
	 * Nagle holds the body until the head is acknowledged (~40 ms).
	 */
	if ((fd = bufferevent_getfd(c->bev)) >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sigpipe_block(&sp);
	while (!k.done)
		if (event_base_dispatch(c->base) == -1)
			break;
	sigpipe_restore(&sp);
	if (!k.done || k.status == 0) {
		if (err[0] == '\0')
			snprintf(err, errlen, "no reply");
		free(k.body);
		return -1;
	}
	*status = k.status;
	*resp = k.body;
	*resplen = k.len;
	return 0;
}

int
ss_disclose(struct ss_client *c, const Safeshare__V1__DisclosureRequest *rq,
    Safeshare__V1__DisclosureResponse **resp, Safeshare__V1__Error **error,
    int *status, char *err, size_t errlen)
{
	return ss_call_message(c, "/v1/disclosures", &rq->base,
	    &safeshare__v1__disclosure_response__descriptor,
	    (ProtobufCMessage **)resp, error, status, err, errlen);
}

int
ss_health(struct ss_client *c, Safeshare__V1__Health **health, int *status,
    char *err, size_t errlen)
{
	unsigned char	*body;
	size_t		 blen;

	*health = NULL;
	if (ss_client_call(c, "GET", "/healthz", NULL, 0, status, &body, &blen,
	    err, errlen) == -1)
		return -1;
	*health = safeshare__v1__health__unpack(NULL, blen, body);
	free(body);
	if (*health == NULL) {
		snprintf(err, errlen, "HTTP %d with a body that is not a Health message",
		    *status);
		return -1;
	}
	return 0;
}

/*
 * The consistency proof from from_size, with the key rotations' notes
 * after tree size after if asked.
 */
static int
consistency(struct ss_client *c, unsigned long long from_size, int key_notes,
    unsigned long long after, Safeshare__V1__ConsistencyProof **proof,
    Safeshare__V1__Error **error, int *status, char *err, size_t errlen)
{
	Safeshare__V1__ConsistencyRequest	rq = SAFESHARE__V1__CONSISTENCY_REQUEST__INIT;

	rq.from_size = from_size;
	rq.key_notes = key_notes;
	rq.key_notes_after = after;
	return ss_call_message(c, "/v1/log/consistency", &rq.base,
	    &safeshare__v1__consistency_proof__descriptor,
	    (ProtobufCMessage **)proof, error, status, err, errlen);
}

int
ss_log_consistency(struct ss_client *c, unsigned long long from_size,
    Safeshare__V1__ConsistencyProof **proof, Safeshare__V1__Error **error,
    int *status, char *err, size_t errlen)
{
	return consistency(c, from_size, 0, 0, proof, error, status, err, errlen);
}

int
ss_log_consistency_keys(struct ss_client *c, unsigned long long from_size,
    Safeshare__V1__ConsistencyProof **proof, Safeshare__V1__Error **error,
    int *status, char *err, size_t errlen)
{
	return consistency(c, from_size, 1, 0, proof, error, status, err, errlen);
}

int
ss_log_consistency_keys_after(struct ss_client *c, unsigned long long from_size,
    unsigned long long after, Safeshare__V1__ConsistencyProof **proof,
    Safeshare__V1__Error **error, int *status, char *err, size_t errlen)
{
	return consistency(c, from_size, 1, after, proof, error, status, err,
	    errlen);
}

int
ss_audit_report(struct ss_client *c, long long from_time, long long to_time,
    const char *agency, Safeshare__V1__AuditReport **report,
    Safeshare__V1__Error **error, int *status, char *err, size_t errlen)
{
	Safeshare__V1__ReportRequest	rq = SAFESHARE__V1__REPORT_REQUEST__INIT;

	rq.from_time = from_time;
	rq.to_time = to_time;
	if (agency != NULL)
		rq.agency = (char *)agency;
	return ss_call_message(c, "/v1/audit/report", &rq.base,
	    &safeshare__v1__audit_report__descriptor,
	    (ProtobufCMessage **)report, error, status, err, errlen);
}

int
ss_holder_show(struct ss_client *c, const char *subject,
    Safeshare__V1__HolderShow **show, Safeshare__V1__Error **error, int *status,
    char *err, size_t errlen)
{
	Safeshare__V1__HolderShowRequest rq = SAFESHARE__V1__HOLDER_SHOW_REQUEST__INIT;

	rq.subject_id = (char *)subject;
	return ss_call_message(c, "/v1/holder/show", &rq.base,
	    &safeshare__v1__holder_show__descriptor,
	    (ProtobufCMessage **)show, error, status, err, errlen);
}

int
ss_admin_reload(struct ss_client *c, Safeshare__V1__ReloadResult **result,
    Safeshare__V1__Error **error, int *status, char *err, size_t errlen)
{
	return ss_call_message(c, "/v1/admin/reload", NULL,
	    &safeshare__v1__reload_result__descriptor,
	    (ProtobufCMessage **)result, error, status, err, errlen);
}

int
ss_call_message(struct ss_client *c, const char *path, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
    Safeshare__V1__Error **error, int *status, char *err, size_t errlen)
{
	unsigned char	*buf = NULL, *body;
	size_t		 len = 0, blen;
	int		 rc;

	*resp = NULL;
	*error = NULL;
	if (req != NULL) {
		len = protobuf_c_message_get_packed_size(req);
		if ((buf = malloc(len + 1)) == NULL) {
			snprintf(err, errlen, "out of memory for a request of "
			    "%zu bytes", len);
			return -1;
		}
		protobuf_c_message_pack(req, buf);
	}
	rc = ss_client_call(c, "POST", path, buf ? buf : (unsigned char *)"", len,
	    status, &body, &blen, err, errlen);
	free(buf);
	if (rc == -1)
		return -1;
	if (*status == 200)
		*resp = protobuf_c_message_unpack(resp_desc, NULL, blen, body);
	else
		*error = safeshare__v1__error__unpack(NULL, blen, body);
	free(body);
	if (*resp == NULL && *error == NULL) {
		snprintf(err, errlen, "HTTP %d with a body that is not a safeshare "
		    "message", *status);
		return -1;
	}
	return 0;
}
