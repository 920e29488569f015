/*
 * The benchmarks' notification receiver (sink.h). libevent's HTTP server
 * over bufferevent_openssl, as the daemon's own; the body is the Connect
 * JSON of a feed page (AuditAlerts or HolderAccesses), read with the
 * project's pbjson decoder for the items' seqs.
 *
 * Who owns what: the sink's thread owns the event_base, the evhttp and
 * every connection; other threads only read the arrivals through
 * sink_copy() under mu, and sink_stop() breaks the loop (libevent's
 * pthreads locking, which the caller turned on) before it frees anything.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pbjson.h"
#include "safeshare.pb-c.h"
#include "sink.h"
#include "tls.h"

#define SINK_BODY_MAX	(4 * 1024 * 1024)	/* a POST's body at most */

struct sink {
	pthread_t		 thread;
	int			 started;
	struct event_base	*base;
	struct evhttp		*http;
	SSL_CTX			*ctx;
	int			 hang;

	pthread_mutex_t		 mu;	/* the fields below */
	struct sink_arrival	 arr[SINK_MAX];
	size_t			 narr;
	size_t			 posts;
};

double
sink_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Each accepted connection gets its own TLS state (evhttp's bevcb). */
static struct bufferevent *
new_bev(struct event_base *base, void *arg)
{
	struct sink	*s = arg;
	SSL		*ssl;

	if ((ssl = SSL_new(s->ctx)) == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

/* Notes one item's seq, arrived at t; under s->mu. */
static void
note(struct sink *s, uint64_t seq, double t)
{
	if (s->narr == SINK_MAX)
		return;
	s->arr[s->narr].seq = seq;
	s->arr[s->narr].t = t;
	s->narr++;
}

/* Notes the seqs of a feed page (alerts or accesses) arrived at t. */
static void
note_items(struct sink *s, const char *body, size_t len, double t)
{
	Safeshare__V1__AuditAlerts	*a = NULL;
	Safeshare__V1__HolderAccesses	*h = NULL;
	char				 err[128];

	a = (Safeshare__V1__AuditAlerts *)pbjson_decode(
	    &safeshare__v1__audit_alerts__descriptor, body, len, err, sizeof(err));
	if (a == NULL || a->n_alerts == 0)
		h = (Safeshare__V1__HolderAccesses *)pbjson_decode(
		    &safeshare__v1__holder_accesses__descriptor, body, len, err,
		    sizeof(err));
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; a != NULL && i < a->n_alerts; i++)
		note(s, a->alerts[i]->seq, t);
	for (size_t i = 0; h != NULL && i < h->n_items; i++)
		note(s, h->items[i]->seq, t);
	pthread_mutex_unlock(&s->mu);
	if (a != NULL)
		protobuf_c_message_free_unpacked(&a->base, NULL);
	if (h != NULL)
		protobuf_c_message_free_unpacked(&h->base, NULL);
}

/*
 * A POST: noted and answered 200, or, hanging, held unanswered until the
 * daemon gives up on it or the sink stops.
 */
static void
on_request(struct evhttp_request *req, void *arg)
{
	struct sink	*s = arg;
	struct evbuffer	*in = evhttp_request_get_input_buffer(req);
	double		 t = sink_now();
	size_t		 len = evbuffer_get_length(in);
	unsigned char	*body;

	pthread_mutex_lock(&s->mu);
	s->posts++;
	pthread_mutex_unlock(&s->mu);
	if (s->hang)
		return;
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		evhttp_send_error(req, 405, NULL);
		return;
	}
	if (len > 0 && (body = evbuffer_pullup(in, -1)) != NULL)
		note_items(s, (const char *)body, len, t);
	evhttp_send_reply(req, 200, "OK", NULL);
}

static void *
run(void *arg)
{
	struct sink *s = arg;

	event_base_dispatch(s->base);
	return NULL;
}

struct sink *
sink_start(int port, const char *cert, const char *key, const char *ca, int hang,
    char *err, size_t errlen)
{
	struct sink *s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	s->hang = hang;
	if ((s->ctx = tls_server_ctx(cert, key, ca, NULL, err, errlen)) == NULL)
		goto fail;
	if ((s->base = event_base_new()) == NULL ||
	    (s->http = evhttp_new(s->base)) == NULL) {
		snprintf(err, errlen, "libevent: cannot make the server");
		goto fail;
	}
	evhttp_set_bevcb(s->http, new_bev, s);
	evhttp_set_gencb(s->http, on_request, s);
	evhttp_set_max_body_size(s->http, SINK_BODY_MAX);
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_POST | EVHTTP_REQ_GET);
	if (evhttp_bind_socket(s->http, "127.0.0.1", (ev_uint16_t)port) != 0) {
		snprintf(err, errlen, "cannot listen on 127.0.0.1:%d", port);
		goto fail;
	}
	if (pthread_create(&s->thread, NULL, run, s) != 0) {
		snprintf(err, errlen, "cannot start the sink's thread");
		goto fail;
	}
	s->started = 1;
	return s;
fail:
	sink_stop(s);
	return NULL;
}

size_t
sink_copy(struct sink *s, struct sink_arrival *out, size_t max, size_t *posts)
{
	size_t n;

	pthread_mutex_lock(&s->mu);
	n = s->narr < max ? s->narr : max;
	memcpy(out, s->arr, n * sizeof(*out));
	*posts = s->posts;
	pthread_mutex_unlock(&s->mu);
	return n;
}

void
sink_stop(struct sink *s)
{
	if (s == NULL)
		return;
	if (s->started) {
		event_base_loopbreak(s->base);
		pthread_join(s->thread, NULL);
	}
	if (s->http != NULL)
		evhttp_free(s->http);
	if (s->base != NULL)
		event_base_free(s->base);
	SSL_CTX_free(s->ctx);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
