/*
 * safeshared's counters for /metrics (metrics.c): one struct metrics per
 * server, touched on the event-loop thread only. Route slots are the route
 * table's rows (route_index()) plus one for no route.
 */
#ifndef SAFESHARED_METRICS_H
#define SAFESHARED_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "routes.h"

struct evhttp_request;

/* Why TLS handshakes failed, for /metrics. */
enum {
	TLS_FAIL_NO_CERT, TLS_FAIL_UNKNOWN_CA, TLS_FAIL_EXPIRED, TLS_FAIL_NOT_YET_VALID,
	TLS_FAIL_REVOKED, TLS_FAIL_BAD_PURPOSE, TLS_FAIL_BAD_CERT, TLS_FAIL_TIMEOUT,
	TLS_FAIL_CLOSED, TLS_FAIL_PROTOCOL, TLS_FAIL_COUNT
};

/* Why the daemon closed an established or half-open connection, for /metrics. */
enum {
	CONN_CLOSE_UNKNOWN_AGENCY, CONN_CLOSE_REVOKED, CONN_CLOSE_MAX_AGE,
	CONN_CLOSE_PER_ADDRESS, CONN_CLOSE_PER_CERTIFICATE, CONN_CLOSE_EVICTED,
	CONN_CLOSE_COUNT
};

/* Their label values, also used in log lines. */
extern const char *const tls_fail_names[TLS_FAIL_COUNT];
extern const char *const conn_close_names[CONN_CLOSE_COUNT];

#define METRICS_NSTATUSES	11	/* statuses counted by route, "other" last */
#define METRICS_NLAT		12	/* latency bucket bounds */
#define METRICS_NSLOTS		(ROUTE_MAX + 1)

struct metrics {
	uint64_t	 requests;
	uint64_t	 accepted;		/* connections */
	uint64_t	 request_timeouts;
	uint64_t	 refusals_unlogged;	/* over refuse()'s limit: 429, not logged */
	uint64_t	 tls_failures[TLS_FAIL_COUNT];
	uint64_t	 conn_closed[CONN_CLOSE_COUNT];
	uint64_t	 decisions[4];		/* deny, allow, partial, consultation */
	uint64_t	 replies_by_status[6];	/* by class, 1xx..5xx */
	uint64_t	 by_route_status[METRICS_NSLOTS][METRICS_NSTATUSES];
	uint64_t	 lat_hist[METRICS_NSLOTS][METRICS_NLAT + 1];
	double		 lat_sum[METRICS_NSLOTS];
};

/* Counts a reply with status on req, under its route and its age. */
void	metrics_reply(struct evhttp_request *, int status);

#endif
