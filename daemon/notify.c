/*
 * Outbound notification (issue 18 item 3, D20): each agency with notify: in
 * the config has an outbox, its feed (the holder's accesses, or the
 * guardian's alerts) POSTed to its receiver as the feed API's Connect JSON
 * reply, up to NOTIFY_BATCH items at a time, over mutual TLS with the
 * agency's client certificate (src/tls.c context, the receiver checked
 * against notify.ca and its name or address).
 *
 * Who owns what: the notifier thread owns its event_base, its read-only
 * log connection, its store connection and every outbox's cursor and
 * connection. The event loop only calls notify_kick() (event_active(),
 * thread-safe with evthread_use_pthreads()) and reads the counters in
 * struct outbox_pub under n->mu for /metrics. So a dead, slow or hanging
 * receiver costs the loop nothing: disclosures never wait for it.
 *
 * Delivery is at least once and in order: one POST in flight per outbox;
 * the cursor (the last seq delivered, or read and found to hold nothing for
 * the agency) is moved on only after a 2xx and written to a file beside the
 * log (AUDIT_LOG-outbox-AGENCY; write, fsync, rename, fsync the directory)
 * after each delivery, so a restart or kill -9 sends again at most the
 * batch in flight. A failure (no connection, TLS, timeout, a status not
 * 2xx) is retried after a backoff of 1 s doubling to 60 s, with jitter, and
 * logged once when the outbox starts failing and once when it works again.
 *
 * With storage: postgresql several daemons share the log, so the cursors
 * are rows in the database (storage_outbox_claim(), src/pgstore_outbox.c)
 * and each receiver has one deliverer at a time: the daemon whose notifier
 * holds its delivery lock (a session advisory lock on the notifier's own
 * store connection). The others stand by and try to take it every tick; a
 * daemon that dies frees it with its session. The deliverer checks it
 * still holds the lock (one round trip, reading the cursor) before each
 * POST and moves the cursor in the database after each 2xx, as the file
 * was; entries other daemons committed are read up to the log's head.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "config.h"
#include "feeds.h"
#include "log.h"
#include "notify.h"
#include "protocol.h"
#include "server.h"
#include "storage.h"
#include "tls.h"
#include "util.h"

#define NOTIFY_BATCH		100	/* items per POST at most */
#define NOTIFY_BACKOFF_MAX	60	/* seconds between retries at most */
#define NOTIFY_TICK		1	/* seconds: poll, and save a skipped-to cursor */
#define NOTIFY_REPLY_MAX	16384	/* bytes of a receiver's reply body */

/* What /metrics shows of an outbox; under notifier.mu. */
struct outbox_pub {
	uint64_t	 cursor;
	uint64_t	 failures;	/* POSTs that failed */
	uint64_t	 delivered;	/* items acknowledged with a 2xx */
	int64_t		 last_success;	/* Unix time, 0: none since start */
	int		 failing;
	int		 allowed;	/* the protocol in force gives it the feed */
	int		 standby;	/* another daemon delivers (PostgreSQL) */
};

struct outbox {
	struct notifier		*n;
	const struct notify_conf *conf;	/* the server's config outlives us */
	int			 alerts;	/* the feed: alerts, or accesses */
	SSL_CTX			*ctx;
	char			 file[PATH_MAX];	/* the cursor's */
	uint64_t		 cursor;
	int			 dirty;		/* cursor not yet in the file */
	int			 held;		/* PostgreSQL: this daemon delivers */
	struct evhttp_connection *conn;		/* the POST in flight */
	uint64_t		 sending_last;	/* its batch ends here ... */
	size_t			 sending_n;	/* ... with this many items */
	int			 status;	/* its reply's, 0: none */
	const char		*error;		/* why there was none */
	struct event		*retry;		/* backoff timer */
	int			 backoff;	/* seconds; 0: not failing */
	unsigned		 seed;		/* jitter */
	struct outbox_pub	 pub;
};

struct notifier {
	pthread_t		 thread;
	int			 started;
	struct event_base	*base;
	struct event		*kick;		/* activated by notify_kick() */
	struct event		*tick;
	struct event		*stop;		/* activated by notify_free() */
	struct logstore		*reader;
	struct storage		*store;
	int			 shared;	/* cursors in the database (PostgreSQL) */
	struct outbox		*ob;
	size_t			 nob;
	pthread_mutex_t		 mu;		/* each outbox's pub, and durable */
	uint64_t		 durable;	/* sent up to: notify_kick()'s */
};

static void	pump(struct outbox *);

static void
publish(struct outbox *ob)
{
	pthread_mutex_lock(&ob->n->mu);
	ob->pub.cursor = ob->cursor;
	pthread_mutex_unlock(&ob->n->mu);
}

/* Writes the cursor durably: a new file, fsync'd, renamed over the old. */
static int
cursor_save_file(struct outbox *ob)
{
	char	 tmp[PATH_MAX + 8], dir[PATH_MAX], line[32];
	int	 fd, len, rc = -1;

	snprintf(tmp, sizeof(tmp), "%s.tmp", ob->file);
	len = snprintf(line, sizeof(line), "%" PRIu64 "\n", ob->cursor);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1)
		goto fail;
	if (write(fd, line, (size_t)len) != len || fsync(fd) == -1) {
		close(fd);
		goto fail;
	}
	close(fd);
	if (rename(tmp, ob->file) == -1)
		goto fail;
	snprintf(dir, sizeof(dir), "%s", ob->file);
	if ((fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)fsync(fd);
		close(fd);
	}
	ob->dirty = 0;
	rc = 0;
fail:
	if (rc == -1)
		log_warn("event=notify_cursor_save_failed agency=%s",
		    ob->conf->agency);
	return rc;
}

/*
 * PostgreSQL: takes the receiver's delivery role, or checks that this
 * daemon still holds it (a round trip); 1 this daemon delivers. Newly
 * taken, the cursor is the database's: where the last deliverer stopped.
 */
static int
claim(struct outbox *ob)
{
	char		 err[256];
	uint64_t	 cursor = 0;
	int		 was = ob->held;

	if (storage_outbox_claim(ob->n->store, ob->conf->agency,
	    logstore_size(ob->n->reader), &ob->held, &cursor, err,
	    sizeof(err)) == -1) {
		ob->held = 0;
		if (was)
			log_warnx("event=notify_standby agency=%s why=\"%s\"",
			    ob->conf->agency, err);
	} else if (ob->held && !was) {
		ob->cursor = cursor;
		ob->dirty = 0;
		log_info("event=notify_deliverer agency=%s cursor=%" PRIu64,
		    ob->conf->agency, cursor);
	} else if (!ob->held && was)
		log_warnx("event=notify_standby agency=%s why=\"another daemon "
		    "delivers\"", ob->conf->agency);
	pthread_mutex_lock(&ob->n->mu);
	ob->pub.standby = !ob->held;
	ob->pub.cursor = ob->cursor;
	pthread_mutex_unlock(&ob->n->mu);
	return ob->held;
}

/* The cursor kept: in its file, or (PostgreSQL) in the database. */
static int
cursor_save(struct outbox *ob)
{
	char	err[256];

	if (!ob->n->shared)
		return cursor_save_file(ob);
	if (!ob->held)
		return -1;
	if (storage_outbox_save(ob->n->store, ob->conf->agency, ob->cursor, err,
	    sizeof(err)) == -1) {
		log_warnx("event=notify_cursor_save_failed agency=%s why=\"%s\"",
		    ob->conf->agency, err);
		/* The next tick takes the role again, or leaves it to another. */
		ob->held = 0;
		return -1;
	}
	ob->dirty = 0;
	return 0;
}

/* The cursor from its file: 1 read, 0 no file, -1 a file that is no cursor. */
static int
cursor_load(struct outbox *ob, char *err, size_t errlen)
{
	FILE		*fp;
	char		 line[32], *end;
	unsigned long long v;

	if ((fp = fopen(ob->file, "r")) == NULL) {
		if (errno == ENOENT)
			return 0;
		return errorf(err, errlen, "%s: %s", ob->file, strerror(errno));
	}
	if (fgets(line, sizeof(line), fp) == NULL)
		line[0] = '\0';
	fclose(fp);
	errno = 0;
	v = strtoull(line, &end, 10);
	if (end == line || (*end != '\n' && *end != '\0') || errno != 0)
		return errorf(err, errlen, "%s: not an outbox cursor (a log seq); "
		    "remove it to start at the log's end", ob->file);
	ob->cursor = v;
	return 1;
}

/* Retries after the backoff: 1 s doubling to 60 s, between half and all of it. */
static void
fail(struct outbox *ob, const char *why)
{
	struct timeval	tv;
	long		ms;

	ob->backoff = ob->backoff == 0 ? 1 : ob->backoff * 2 > NOTIFY_BACKOFF_MAX ?
	    NOTIFY_BACKOFF_MAX : ob->backoff * 2;
	ms = ob->backoff * 500L + (long)(rand_r(&ob->seed) % (ob->backoff * 500 + 1));
	pthread_mutex_lock(&ob->n->mu);
	ob->pub.failures++;
	if (!ob->pub.failing)
		log_warnx("event=notify_failing agency=%s host=%s port=%d why=\"%s\"",
		    ob->conf->agency, ob->conf->host, ob->conf->port, why);
	ob->pub.failing = 1;
	pthread_mutex_unlock(&ob->n->mu);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ob->retry, &tv);
}

static void
delivered(struct outbox *ob)
{
	ob->cursor = ob->sending_last;
	ob->backoff = 0;
	(void)cursor_save(ob);
	pthread_mutex_lock(&ob->n->mu);
	ob->pub.cursor = ob->cursor;
	ob->pub.delivered += ob->sending_n;
	ob->pub.last_success = (int64_t)time(NULL);
	if (ob->pub.failing)
		log_info("event=notify_delivering agency=%s", ob->conf->agency);
	ob->pub.failing = 0;
	pthread_mutex_unlock(&ob->n->mu);
}

/*
 * After the reply callback has returned (evhttp is done with the
 * connection): frees it and goes on, or backs off.
 */
static void
after_reply(evutil_socket_t fd, short what, void *arg)
{
	struct outbox	*ob = arg;
	char		 why[64];

	(void)fd;
	(void)what;
	evhttp_connection_free(ob->conn);
	ob->conn = NULL;
	if (ob->status >= 200 && ob->status < 300) {
		delivered(ob);
		pump(ob);
		return;
	}
	if (ob->status != 0)
		snprintf(why, sizeof(why), "status %d", ob->status);
	else
		snprintf(why, sizeof(why), "%s", ob->error != NULL ? ob->error :
		    "no reply");
	fail(ob, why);
}

static void
on_error(enum evhttp_request_error e, void *arg)
{
	struct outbox *ob = arg;

	ob->error = e == EVREQ_HTTP_TIMEOUT ? "timeout" : e == EVREQ_HTTP_EOF ?
	    "connection closed" : e == EVREQ_HTTP_INVALID_HEADER ?
	    "invalid reply" : e == EVREQ_HTTP_BUFFER_ERROR ?
	    "connection failed" : "request failed";
}

static void
on_reply(struct evhttp_request *req, void *arg)
{
	struct outbox		*ob = arg;
	const struct timeval	 now = { 0, 0 };

	ob->status = req != NULL ? evhttp_request_get_response_code(req) : 0;
	if (event_base_once(ob->n->base, -1, EV_TIMEOUT, after_reply, ob,
	    &now) == -1)
		fatalx("%s: out of memory", __func__);
}

/* Starts the POST of one batch; 0, or -1 (nothing in flight). */
static int
post(struct outbox *ob, const struct feed_batch *b)
{
	const struct notify_conf *c = ob->conf;
	struct bufferevent	*bev;
	struct evhttp_request	*req;
	struct in_addr		 ip;
	SSL			*ssl;
	char			 hosthdr[300];

	if ((ssl = SSL_new(ob->ctx)) == NULL)
		return -1;
	/* The receiver must be the one named by the URL (not only CA-signed). */
	if (inet_pton(AF_INET, c->host, &ip) == 1)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->host);
	else {
		SSL_set_tlsext_host_name(ssl, c->host);
		SSL_set1_host(ssl, c->host);
	}
	bev = bufferevent_openssl_socket_new(ob->n->base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	ob->conn = evhttp_connection_base_bufferevent_new(ob->n->base, NULL, bev,
	    c->host, (unsigned short)c->port);
	if (ob->conn == NULL) {
		bufferevent_free(bev);
		return -1;
	}
	evhttp_connection_set_timeout(ob->conn, (int)c->timeout);
	evhttp_connection_set_retries(ob->conn, 0);
	evhttp_connection_set_max_body_size(ob->conn, NOTIFY_REPLY_MAX);
	evhttp_connection_set_max_headers_size(ob->conn, NOTIFY_REPLY_MAX);
	if ((req = evhttp_request_new(on_reply, ob)) == NULL)
		goto fail;
	evhttp_request_set_error_cb(req, on_error);
	snprintf(hosthdr, sizeof(hosthdr), "%s:%d", c->host, c->port);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", hosthdr);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/json");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Connection",
	    "close");
	evbuffer_add(evhttp_request_get_output_buffer(req), b->json, b->len);
	ob->status = 0;
	ob->error = NULL;
	ob->sending_last = b->last;
	ob->sending_n = b->n;
	/* On failure libevent has freed the request. */
	if (evhttp_make_request(ob->conn, req, EVHTTP_REQ_POST, c->path) == -1)
		goto fail;
	return 0;
fail:
	evhttp_connection_free(ob->conn);
	ob->conn = NULL;
	return -1;
}

/*
 * Sends the next batch if nothing is in flight or waiting out a backoff:
 * reads the feed after the cursor; a stretch of the log with nothing for
 * the agency moves the cursor on without a POST (saved on the next tick).
 */
static void
pump(struct outbox *ob)
{
	struct feed_batch	b;
	char			err[256];
	uint64_t		upto;

	int			allowed;

	pthread_mutex_lock(&ob->n->mu);
	allowed = ob->pub.allowed;
	pthread_mutex_unlock(&ob->n->mu);
	/* Default deny (D1): paused, the cursor kept, while the role is gone. */
	if (!allowed || ob->conn != NULL || evtimer_pending(ob->retry, NULL))
		return;
	/* PostgreSQL: another daemon delivers to this receiver. */
	if (ob->n->shared && !ob->held)
		return;
	/* Never an entry whose commit still waits for its fdatasync (logq.c). */
	pthread_mutex_lock(&ob->n->mu);
	upto = ob->n->durable;
	pthread_mutex_unlock(&ob->n->mu);
	/* PostgreSQL: every daemon's commits, durable once committed. */
	if (ob->n->shared)
		upto = logstore_size(ob->n->reader);
	if (feed_batch_json(ob->n->reader, ob->n->store, ob->alerts,
	    ob->conf->agency, ob->cursor, upto, NOTIFY_BATCH, &b, err,
	    sizeof(err)) == -1) {
		fail(ob, "the log could not be read");
		return;
	}
	if (b.n == 0) {
		if (b.last > ob->cursor) {
			ob->cursor = b.last;
			ob->dirty = 1;
			publish(ob);
		}
		/* Read as far as one page may: the rest on the next round. */
		if (b.last < upto)
			event_active(ob->n->kick, 0, 0);
		return;
	}
	/* PostgreSQL: still the deliverer, right before sending. */
	if (ob->n->shared && !claim(ob)) {
		free(b.json);
		return;
	}
	if (post(ob, &b) == -1)
		fail(ob, "could not start a connection");
	free(b.json);
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pump(arg);
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct notifier *n = arg;

	(void)fd;
	(void)what;
	for (size_t i = 0; i < n->nob; i++)
		pump(&n->ob[i]);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct notifier *n = arg;

	for (size_t i = 0; i < n->nob; i++) {
		/* PostgreSQL: standing by, try to take over. */
		if (n->shared && !n->ob[i].held && n->ob[i].conn == NULL)
			(void)claim(&n->ob[i]);
		if (n->ob[i].dirty && (!n->shared || n->ob[i].held))
			(void)cursor_save(&n->ob[i]);
	}
	on_kick(fd, what, arg);
}

static void
on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct notifier *n = arg;

	(void)fd;
	(void)what;
	event_base_loopbreak(n->base);
}

static void *
notify_main(void *arg)
{
	struct notifier *n = arg;

	on_kick(-1, 0, n);
	event_base_dispatch(n->base);
	return NULL;
}

struct notifier *
notify_new(const struct config *conf, char *err, size_t errlen)
{
	struct notifier		*n = xcalloc(1, sizeof(*n));
	const struct timeval	 tick = { NOTIFY_TICK, 0 };
	int			 rc;

	pthread_mutex_init(&n->mu, NULL);
	/* Cursors beside audit_log, or in the database (deploy-ha.md). */
	n->shared = config_postgresql(conf);
	if ((n->base = server_new_base()) == NULL) {
		errorf(err, errlen, "notify: cannot create an event loop");
		goto fail;
	}
	if (server_log_open(conf, LOGSTORE_READER, &n->reader, err,
	    errlen) == -1 ||
	    server_store_open(conf, &n->store, err, errlen) == -1)
		goto fail;
	/* The log as the daemon found it; then each commit's fdatasync. */
	n->durable = logstore_size(n->reader);
	n->ob = xcalloc(conf->nnotify, sizeof(*n->ob));
	for (size_t i = 0; i < conf->nnotify; i++) {
		struct outbox	*ob = &n->ob[i];
		char		 why[512];

		ob->n = n;
		ob->conf = &conf->notify[i];
		ob->alerts = strcmp(ob->conf->feed, "alerts") == 0;
		ob->seed = (unsigned)time(NULL) ^ (unsigned)i;
		n->nob++;
		if ((ob->ctx = tls_client_ctx(ob->conf->cert, ob->conf->key,
		    ob->conf->ca, why, sizeof(why))) == NULL) {
			errorf(err, errlen, "notify.%s: %s", ob->conf->agency, why);
			goto fail;
		}
		if (n->shared) {
			/* Delivers if no other daemon does; else stands by. */
			ob->pub.allowed = 1;
			(void)claim(ob);
			if ((ob->retry = evtimer_new(n->base, on_retry, ob)) == NULL)
				fatalx("%s: out of memory", __func__);
			log_info("event=notify_start agency=%s feed=%s host=%s port=%d "
			    "cursor=%" PRIu64 " deliverer=%s", ob->conf->agency,
			    ob->conf->feed, ob->conf->host, ob->conf->port, ob->cursor,
			    ob->held ? "this_daemon" : "another_daemon");
			continue;
		}
		snprintf(ob->file, sizeof(ob->file), "%s-outbox-%s", conf->audit_log,
		    ob->conf->agency);
		if ((rc = cursor_load(ob, err, errlen)) == -1)
			goto fail;
		if (rc == 0) {
			/* First start with notify: only what is new from now on. */
			ob->cursor = logstore_size(n->reader);
			if (cursor_save(ob) == -1) {
				errorf(err, errlen, "notify.%s: cannot write %s",
				    ob->conf->agency, ob->file);
				goto fail;
			}
		} else if (ob->cursor > logstore_size(n->reader)) {
			errorf(err, errlen, "notify.%s: %s is at seq %" PRIu64 " but "
			    "the log has %" PRIu64 " entries (another log?); remove "
			    "it to start at the log's end", ob->conf->agency, ob->file,
			    ob->cursor, logstore_size(n->reader));
			goto fail;
		}
		ob->pub.cursor = ob->cursor;
		ob->pub.allowed = 1;	/* config_notify_check() saw the role */
		if ((ob->retry = evtimer_new(n->base, on_retry, ob)) == NULL)
			fatalx("%s: out of memory", __func__);
		log_info("event=notify_start agency=%s feed=%s host=%s port=%d "
		    "cursor=%" PRIu64, ob->conf->agency, ob->conf->feed,
		    ob->conf->host, ob->conf->port, ob->cursor);
	}
	n->kick = event_new(n->base, -1, 0, on_kick, n);
	n->tick = event_new(n->base, -1, EV_PERSIST, on_tick, n);
	n->stop = event_new(n->base, -1, 0, on_stop, n);
	if (n->kick == NULL || n->tick == NULL || n->stop == NULL)
		fatalx("%s: out of memory", __func__);
	event_add(n->tick, &tick);
	/* From here on the thread owns everything but pub. */
	if (pthread_create(&n->thread, NULL, notify_main, n) != 0) {
		errorf(err, errlen, "notify: cannot start its thread");
		goto fail;
	}
	n->started = 1;
	return n;
fail:
	notify_free(n);
	return NULL;
}

void
notify_kick(struct notifier *n, uint64_t durable)
{
	if (n == NULL)
		return;
	pthread_mutex_lock(&n->mu);
	if (durable > n->durable)
		n->durable = durable;
	pthread_mutex_unlock(&n->mu);
	event_active(n->kick, 0, 0);
}

void
notify_protocol(struct notifier *n, const struct protocol *p)
{
	if (n == NULL)
		return;
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < n->nob; i++) {
		struct outbox		*ob = &n->ob[i];
		const struct agency	*a = protocol_agency(p, ob->conf->agency);
		unsigned		 want = ob->alerts ? ROLE_GUARDIAN |
					    ROLE_AUDITOR : ROLE_HOLDER;
		int			 allowed = a != NULL && (a->roles & want);

		if (allowed != ob->pub.allowed)
			log_info("event=%s agency=%s", allowed ? "notify_resumed" :
			    "notify_paused_no_role", ob->conf->agency);
		ob->pub.allowed = allowed;
	}
	pthread_mutex_unlock(&n->mu);
	event_active(n->kick, 0, 0);
}

void
notify_metrics(struct notifier *n, uint64_t log_size, struct evbuffer *out)
{
	if (n == NULL)
		return;
	evbuffer_add_printf(out, "# HELP safeshare_notify_lag_entries Log entries "
	    "after an agency's outbox cursor (not yet delivered or passed over).\n"
	    "# TYPE safeshare_notify_lag_entries gauge\n");
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < n->nob; i++)
		evbuffer_add_printf(out, "safeshare_notify_lag_entries{agency=\"%s\"} "
		    "%" PRIu64 "\n", n->ob[i].conf->agency, log_size >
		    n->ob[i].pub.cursor && !n->ob[i].pub.standby ? log_size -
		    n->ob[i].pub.cursor : 0);
	evbuffer_add_printf(out, "# HELP safeshare_notify_failures_total POSTs to "
	    "an agency's receiver that failed (retried with backoff).\n"
	    "# TYPE safeshare_notify_failures_total counter\n");
	for (size_t i = 0; i < n->nob; i++)
		evbuffer_add_printf(out, "safeshare_notify_failures_total"
		    "{agency=\"%s\"} %" PRIu64 "\n", n->ob[i].conf->agency,
		    n->ob[i].pub.failures);
	evbuffer_add_printf(out, "# HELP safeshare_notify_delivered_items_total "
	    "Feed items an agency's receiver acknowledged.\n"
	    "# TYPE safeshare_notify_delivered_items_total counter\n");
	for (size_t i = 0; i < n->nob; i++)
		evbuffer_add_printf(out, "safeshare_notify_delivered_items_total"
		    "{agency=\"%s\"} %" PRIu64 "\n", n->ob[i].conf->agency,
		    n->ob[i].pub.delivered);
	evbuffer_add_printf(out, "# HELP safeshare_notify_last_success_seconds "
	    "Unix time of the last delivery to an agency (0: none since start).\n"
	    "# TYPE safeshare_notify_last_success_seconds gauge\n");
	for (size_t i = 0; i < n->nob; i++)
		evbuffer_add_printf(out, "safeshare_notify_last_success_seconds"
		    "{agency=\"%s\"} %" PRId64 "\n", n->ob[i].conf->agency,
		    n->ob[i].pub.last_success);
	evbuffer_add_printf(out, "# HELP safeshare_notify_failing 1 while an "
	    "agency's deliveries fail (backing off).\n"
	    "# TYPE safeshare_notify_failing gauge\n");
	for (size_t i = 0; i < n->nob; i++)
		evbuffer_add_printf(out, "safeshare_notify_failing{agency=\"%s\"} %d\n",
		    n->ob[i].conf->agency, n->ob[i].pub.failing);
	pthread_mutex_unlock(&n->mu);
}

void
notify_free(struct notifier *n)
{
	if (n == NULL)
		return;
	if (n->started) {
		/* An event, not loopbreak(): it works before dispatch started too. */
		event_active(n->stop, 0, 0);
		pthread_join(n->thread, NULL);
	}
	/* The thread is gone: everything is ours again. */
	for (size_t i = 0; i < n->nob; i++) {
		struct outbox *ob = &n->ob[i];

		if (ob->conn != NULL)
			evhttp_connection_free(ob->conn);
		if (ob->dirty && (!n->shared || ob->held))
			(void)cursor_save(ob);
		if (ob->retry != NULL)
			event_free(ob->retry);
		SSL_CTX_free(ob->ctx);
	}
	if (n->kick != NULL)
		event_free(n->kick);
	if (n->tick != NULL)
		event_free(n->tick);
	if (n->stop != NULL)
		event_free(n->stop);
	if (n->base != NULL)
		event_base_free(n->base);
	if (n->store != NULL)
		storage_close(n->store);
	if (n->reader != NULL)
		logstore_close(n->reader);
	free(n->ob);
	pthread_mutex_destroy(&n->mu);
	free(n);
}
