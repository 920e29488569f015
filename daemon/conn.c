/*
 * Connections (OpenBSD httpd's server.c part): each accepted socket gets
 * its own TLS session and a struct conn, reachable from the SSL's ex_data
 * and freed with it (conn_freed()). Here are its deadlines, the fair
 * shares of connection slots, the identity check at the handshake and
 * after a reload, why handshakes failed (for /metrics) and the peer's
 * identity for the handlers. The conns are the server's (srv->conns).
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
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "connect.h"
#include "log.h"
#include "metrics.h"
#include "rate.h"
#include "req.h"
#include "routes.h"
#include "tls.h"

/* The slot of the request's path (route_index() of its row). */
static size_t
path_slot(struct evhttp_request *req)
{
	return route_index(route_find(evhttp_uri_get_path(
	    evhttp_request_get_evhttp_uri(req))));
}

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

/*
 * Connection accounting: every connection's SSL carries an ex_data slot
 * whose free callback runs when libevent frees the connection. Above
 * limits.max_connections a new connection closes an idle one (conn_limit);
 * when none is idle the listener is paused, so new connections wait in the
 * kernel's queue instead of costing memory here.
 */
static int conn_idx = -1;

static void	conn_freed(void *, void *, CRYPTO_EX_DATA *, int, long, void *);
static struct conn *conn_of(struct evhttp_request *);

/* Once, before the first connection: the SSL slot that holds a conn. */
void
conn_setup(void)
{
	if (conn_idx == -1)
		conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_freed);
}

/* Pauses or resumes the listener (limits.max_connections). */
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
	evutil_socket_t		 fd;		/* ours to close once freed (sockclose.c) */
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
	c->srv->metrics.conn_closed[reason]++;
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
		c->srv->metrics.refusals_unlogged++;
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
	c->srv->metrics.conn_closed[CONN_CLOSE_UNKNOWN_AGENCY]++;
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
void
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

/*
 * The counters of the request's server, its route slot (set when it
 * arrived) and its age in seconds (-1 if unknown); NULL if the request is
 * on no connection of ours.
 */
struct metrics *
conn_metrics(struct evhttp_request *req, size_t *slot, double *age)
{
	struct conn *c = conn_of(req);

	if (c == NULL)
		return NULL;
	*slot = c->arrived > 0 ? c->route : path_slot(req);
	*age = c->arrived > 0 ? mono_seconds() - c->arrived : -1;
	return &c->srv->metrics;
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
 * most a couple of seconds (linger.c).
 */
#define REFUSAL_LINES	10
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
struct connect_call *
conn_call(struct evhttp_request *req)
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
	/* The first run: the bufferevent has its socket, and no TLS byte yet. */
	if (!c->addressed && c->fd == -1 &&
	    (c->fd = sockclose_wrap(bufferevent_openssl_get_ssl(c->bev))) != -1)
		sockclose_read_ahead(c->bev);
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
		srv->metrics.request_timeouts++;
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
	/* Requests pipelined behind this one may wait in OpenSSL (sockclose.c). */
	sockclose_recheck(bufferevent_openssl_get_ssl(c->bev));
}

/*
 * A request is in: from here the reply's own path bounds it. Returns -1 if
 * the connection is being closed and the request must not be served.
 */
int
conn_arrived(struct evhttp_request *req)
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

		srv->metrics.tls_failures[why]++;
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
	sockclose_later(srv->base, c->fd);
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
struct bufferevent *
conn_bev(struct event_base *base, void *arg)
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
	c->fd = -1;
	if ((c->deadline = evtimer_new(base, deadline_fired, c)) == NULL)
		fatalx("%s: evtimer_new failed", __func__);
	SSL_set_ex_data(ssl, conn_idx, c);
	SSL_set_verify(ssl, SSL_get_verify_mode(ssl), verify_cb);
	SSL_set_info_callback(ssl, info_cb);
	srv->metrics.accepted++;
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
