/*
 * Rate limits (D10: one noisy agency cannot starve the rest): a token
 * bucket per agency for requests, and buckets per certificate and address
 * for refusals logged before an agency is known (issue 14 item 14). The
 * buckets are the server's (srv->rates, srv->unknown), touched on the
 * loop thread only, and freed by rate_free().
 */
#include <event2/http.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "rate.h"
#include "req.h"

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
int
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
int
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

void
rate_free(struct server *srv)
{
	for (size_t i = 0; i < srv->nrates; i++)
		free(srv->rates[i].agency);
	free(srv->rates);
	free(srv->unknown);
	srv->rates = NULL;
	srv->nrates = 0;
	srv->unknown = NULL;
}
