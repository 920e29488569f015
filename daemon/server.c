/*
 * The server: starts and wires the modules (store, log, log writer,
 * holder thread, listener), the transport checks every request passes
 * (route()), health, the end of a loop round, reload and shutdown.
 * Where the rest lives (docs/hacking.md): connections in conn.c, the
 * route table in routes.c, replies in req.c, counters in metrics.c, rate
 * limits in rate.c.
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

#include "conn.h"
#include "connect.h"
#include "feeds.h"
#include "notify.h"
#include "log.h"
#include "logq.h"
#include "rate.h"
#include "req.h"
#include "routes.h"
#include "tls.h"
#include "wire.h"

/* How long the loop's store waits for a reconnect (server_init()). */
#define LOOP_CONNECT_WAIT_MS	500

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
		/*
		 * By length first: evutil's compare calls a function per byte,
		 * and this runs for every header of every request (issue 13).
		 */
		size_t kl = strlen(kv->key);

		if (kl == 17 && evutil_ascii_strcasecmp(kv->key, "Transfer-Encoding") == 0)
			te = 1;
		else if (kl == 12 && evutil_ascii_strcasecmp(kv->key, "Content-Type") == 0) {
			if (type != NULL && strcmp(type, kv->value) != 0)
				why = "several different Content-Type headers";
			type = kv->value;
		} else if (kl == 14 &&
		    evutil_ascii_strcasecmp(kv->key, "Content-Length") == 0) {
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

static void
route(struct evhttp_request *req, void *arg)
{
	struct server		*srv = arg;
	const char		*path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	srv->metrics.requests++;
	if (conn_arrived(req) == -1) {
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
		struct connect_call *call = conn_call(req);

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

static void store_ready(evutil_socket_t, short, void *);

/*
 * While the store has reads in flight (PostgreSQL, storage_send()), the
 * loop waits for their socket among its other events, one read event at a
 * time, made again when the socket changes (a reconnect). The event and
 * the socket number are the loop's; the socket is the store's.
 */
static void
store_watch(struct server *srv)
{
	int fd = storage_fd(srv->store);

	if (fd == -1)
		return;
	if (srv->store_ev != NULL && srv->store_fd != fd) {
		event_free(srv->store_ev);
		srv->store_ev = NULL;
	}
	if (srv->store_ev == NULL) {
		srv->store_fd = fd;
		if ((srv->store_ev = event_new(srv->base, fd, EV_READ, store_ready,
		    srv)) == NULL) {
			/* Cannot wait: the answer is waited for here instead. */
			storage_flush(srv->store);
			return;
		}
	}
	if (!event_pending(srv->store_ev, EV_READ, NULL))
		event_add(srv->store_ev, NULL);
}

/* The store's answer came, or part of it: the waiting requests go on. */
static void
store_ready(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	storage_input(srv->store);
	store_watch(srv);
}

/*
 * The end of an event-loop round: the event is made active while the round
 * runs, so it runs after the events already due in it (as logq's kick).
 * Making an active event active again does nothing. The round's queued
 * reads are sent, and on PostgreSQL not waited for: the loop reads and
 * decides other requests while the server answers (store_ready()).
 */
static void
round_end(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	storage_send(srv->store);	/* the round's queued reads, then their scope */
	store_watch(srv);
	storage_read_end(srv->store);
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
	storage_read_begin(srv->store);
	round_owed(srv);
}

/*
 * An event loop for a thread of the daemon: epoll, and no EVENT_* variable
 * may change it. flags may add EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST.
 *
 * The change list folds a connection's interest changes within a round
 * into one epoll_ctl(2) made at the start of the next (evhttp's DEL and
 * ADD around each request; 3.5 us of the loop's ~27 per disclosure), but
 * it holds a closed connection's EPOLL_CTL_DEL until then. A descriptor
 * closed before that may be reused by another thread (the notifier's
 * socket or cursor file, a store or log connection), and the late
 * epoll_ctl() would act on that thread's descriptor: the TSan report of
 * session 5 (docs/hacking.md "Races"). So only the disclosure loop has
 * it, and there every registered socket is closed through sockclose.c,
 * after the round that applies its delete; the notifier's loop, whose
 * bufferevents close their sockets at once, has none.
 */
static struct event_base *
new_base(int flags)
{
	struct event_config	*cfg = event_config_new();
	struct event_base	*base;

	if (cfg == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_IGNORE_ENV | flags);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

/* Without the change list: for loops that close sockets as libevent does. */
struct event_base *
server_new_base(void)
{
	return new_base(0);
}

/*
 * storage: postgresql (issue 19): the store and the log in the database
 * postgresql.conninfo names, one connection per handle; else the files.
 */
int
server_log_open(const struct config *conf, enum logstore_mode mode,
    struct logstore **l, char *err, size_t errlen)
{
	if (config_postgresql(conf))
		return logstore_open(l, &logstore_postgresql, conf->pg_conninfo,
		    mode, err, errlen);
	return logstore_open(l, &logstore_sqlite, conf->audit_log, mode, err,
	    errlen);
}

int
server_store_open(const struct config *conf, struct storage **s, char *err,
    size_t errlen)
{
	if (config_postgresql(conf))
		return storage_open(s, &storage_postgresql, conf->pg_conninfo, err,
		    errlen);
	return storage_open(s, &storage_sqlite, conf->store, err, errlen);
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
	uint64_t		 size = logstore_size(srv->audit);
	char			 why[300];
	int			 rc, pg = config_postgresql(srv->conf);

	logstore_log_id(srv->audit, mine);
	/* On PostgreSQL the store's table store_log (docs/deploy-ha.md). */
	if ((rc = storage_log_memory(pg ? &storage_postgresql : &storage_sqlite,
	    pg ? srv->conf->pg_conninfo : srv->conf->store, mem.log_id,
	    &mem.size, err, errlen)) == -1)
		return -1;
	if (rc == 1 && audit_memory_check(&mem, "the store", 1, mine, size, why,
	    sizeof(why)) == -1)
		goto refuse;
	/* The subject index is a file beside the SQLite log only. */
	if (!pg && size == 0 && audit_index_remembers(srv->conf->audit_log,
	    mem.log_id, &mem.size) == 1 && audit_memory_check(&mem,
	    "the subject index beside it", 1, mine, size, why, sizeof(why)) == -1)
		goto refuse;
	return 0;
 refuse:
	if (!srv->new_log_ok) {
		snprintf(err, errlen, "%s: %s: the log was deleted, replaced or cut; "
		    "restore it from backup, or start with -N to begin a new log "
		    "(which records this)", pg ? "the PostgreSQL log" :
		    srv->conf->audit_log, why);
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
	char			 err[256];

	(void)fd;
	(void)what;
	logq_stats(srv->logq, &ls);
	logstore_log_id(srv->audit, id);
	if (storage_remember_log(srv->store, id, ls.size, 0, err,
	    sizeof(err)) == -1)
		log_debug("event=log_mark_skipped error=\"%s\"", err);
}

/* The -N start's own entry, before anything else is logged. */
static int
log_new_log(struct server *srv, char *err, size_t errlen)
{
	struct audit_entry e, *ep = &e;
	char why[256];

	memset(&e, 0, sizeof(e));
	e.time = time(NULL);
	e.kind = "new_log";
	e.decision = "forced";
	/* A new log, or one restored from a backup shorter than the store remembers. */
	e.reason = logstore_size(srv->audit) == 0 ? "previous_log_missing" :
	    "log_restored";
	e.justification = srv->new_log_note;
	if (logstore_append(srv->audit, &ep, 1, why, sizeof(why)) == -1)
		return errorf(err, errlen, "logging the new log: %s", why);
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
	conn_setup();
	if ((srv->ssl = tls_server_ctx(conf->tls_cert, conf->tls_key, conf->tls_ca,
	    conf->tls_crl, err, errlen)) == NULL)
		return -1;
	if (server_store_open(conf, &srv->store, err, errlen) == -1)
		return -1;
	/*
	 * The event loop's store (issue 19 item 3): a reconnect to a database
	 * that does not answer stalls the loop at most LOOP_CONNECT_WAIT_MS,
	 * once a second at most; requests get 503 at once in between.
	 */
	storage_set_connect_wait(srv->store, LOOP_CONNECT_WAIT_MS);
	/* Its queued reads on a connection of their own, not waited for. */
	if (storage_reads_apart(srv->store, err, errlen) == -1)
		return -1;
	snprintf(srv->store_ref, sizeof(srv->store_ref), "store:%s",
	    storage_id(srv->store));
	if (server_log_open(conf, LOGSTORE_WRITER, &srv->audit, err,
	    errlen) == -1)
		return -1;
	/* The store's memory of its log, on both backends (issue 13 item 5). */
	if (new_log_check(srv, err, errlen) == -1)
		return -1;
	if (conf->audit_signing_key != NULL) {
		if (logstore_set_signer(srv->audit, conf->audit_signing_key,
		    (uint64_t)conf->checkpoint_every, conf->checkpoint_seconds, err,
		    errlen) == -1)
			return -1;
		srv->public_pem = logstore_public_pem(srv->audit);
		if ((srv->public_key = pem_public_key(srv->public_pem)) == NULL) {
			snprintf(err, errlen, "cannot derive the log's public key");
			return -1;
		}
	} else
		log_warnx("event=no_checkpoints reason=\"audit.signing_key not set; the "
		    "log is hash-chained but not signed\"");
	if (conf->audit_previous_signing_key != NULL &&
	    logstore_set_previous_signer(srv->audit,
	    conf->audit_previous_signing_key,
	    err, errlen) == -1)
		return -1;
	if (conf->audit_first_public_key != NULL &&
	    (srv->first_key = audit_load_public_key(conf->audit_first_public_key,
	    err, errlen)) == NULL)
		return -1;
	/* D7, D16: never sign over a log that does not verify from its last checkpoint. */
	if (logstore_check_start(srv->audit, 0, err, errlen) == -1)
		return -1;
	if (srv->new_log_note[0] != '\0' && log_new_log(srv, err, errlen) == -1)
		return -1;
	{
		unsigned char	id[16];
		char		why[256];

		/*
		 * From here on the store remembers this log (issue 13 item 5);
		 * after -N, at its size now, even if that is less than before
		 * (a log restored from an older backup).
		 */
		logstore_log_id(srv->audit, id);
		if ((srv->new_log_note[0] != '\0' &&
		    storage_forget_log(srv->store, why, sizeof(why)) == -1) ||
		    storage_remember_log(srv->store, id, logstore_size(srv->audit),
		    1, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s: noting the log: %s",
			    config_postgresql(conf) ? "the PostgreSQL store" :
			    conf->store, why);
			return -1;
		}
		srv->log_remembered = 1;
	}
	if (storelog_start(srv, err, errlen) == -1 ||
	    holder_reconcile(srv, err, errlen) == -1)
		return -1;
	if (server_log_open(conf, LOGSTORE_READER, &srv->reader, err,
	    errlen) == -1)
		return -1;
	/* The auditors' reads run on the loop too: bounded as its store's. */
	logstore_set_connect_wait(srv->reader, LOOP_CONNECT_WAIT_MS);
	if ((srv->base = new_base(EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST)) == NULL ||
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
	if ((srv->logq = logq_new(srv->base, srv->audit, conf->audit_log)) ==
	    NULL) {
		snprintf(err, errlen, "cannot start the log writer");
		return -1;
	}
	if (conf->audit_commit != NULL && strcmp(conf->audit_commit, "inline") == 0)
		logq_set_inline_sync(srv->logq, 1);
	srv->feeds = feeds_new(srv);
	if (conf->nnotify > 0 && (srv->notify = notify_new(conf, err, errlen)) == NULL)
		return -1;
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
	evhttp_set_bevcb(srv->http, conn_bev, srv);
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
		return -2;
	}
	/* Connections already open keep a reference to the old context. */
	SSL_CTX_free(srv->ssl);
	srv->ssl = ssl;
	/* Requests holding a reference finish on the old version. */
	protocol_unref(srv->proto);
	srv->proto = p;
	*seq = e.seq;
	notify_protocol(srv->notify, p);
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
	    hworker_busy(srv->holder) > 0 || storage_fd(srv->store) != -1)
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
	feeds_stop(srv->feeds);
}

void
server_shutdown(struct server *srv)
{
	linger_free_all();
	sockclose_stop();
	hworker_free(srv->holder);
	srv->holder = NULL;
	/* Before the log's other read-only connection (below), for the same reason. */
	notify_free(srv->notify);
	srv->notify = NULL;
	if (srv->http != NULL)
		evhttp_free(srv->http);
	feeds_free(srv->feeds);
	srv->feeds = NULL;
	/*
	 * The auditors' reader goes first: the last connection to close a WAL
	 * database copies its WAL in and removes it, which a read-only one
	 * cannot do (the subject index's is the checkpointer's, in logq).
	 */
	logstore_close(srv->reader);
	srv->reader = NULL;
	logq_free(srv->logq);
	log_hold(NULL, NULL);
	if (srv->round != NULL)
		event_free(srv->round);
	if (srv->store_ev != NULL)
		event_free(srv->store_ev);
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
	rate_free(srv);
	/* A clean stop: the writer is gone, the log's size is final. */
	if (srv->log_remembered) {
		unsigned char	id[16];
		char		err[256];

		logstore_log_id(srv->audit, id);
		if (storage_remember_log(srv->store, id, logstore_size(srv->audit),
		    1, err, sizeof(err)) == -1)
			log_warnx("event=log_mark_failed error=\"%s\"", err);
	}
	storage_close(srv->store);
	logstore_close(srv->audit);
	EVP_PKEY_free(srv->public_key);
	EVP_PKEY_free(srv->first_key);
	free(srv->public_pem);
	protocol_unref(srv->proto);
	memset(srv, 0, sizeof(*srv));
}
