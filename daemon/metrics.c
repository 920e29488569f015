/*
 * safeshared's counters and GET /metrics (Prometheus text). The counters
 * are a struct metrics owned by the server (srv->metrics), bumped on the
 * loop thread only, and read here; nothing about anyone is counted, only
 * how many and how fast. Route labels come from the route table's rows.
 */
#include <event2/buffer.h>
#include <event2/http.h>

#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "feeds.h"
#include "logq.h"
#include "metrics.h"
#include "notify.h"
#include "req.h"
#include "routes.h"

/* The statuses counted by route (the rest count as "other"). */
static const int statuses[METRICS_NSTATUSES] = { 200, 400, 403, 404, 405, 413, 415,
    429, 500, 503, 0 };
/* Reply latency buckets, seconds: request fully read to reply queued. */
static const double lat_bounds[METRICS_NLAT] = { 0.0005, 0.001, 0.002, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5 };

const char *const tls_fail_names[TLS_FAIL_COUNT] = { "no_certificate", "unknown_ca",
    "expired", "not_yet_valid", "revoked", "bad_purpose", "bad_certificate",
    "timeout", "closed", "protocol" };
const char *const conn_close_names[CONN_CLOSE_COUNT] = { "unknown_agency", "revoked",
    "max_age", "per_address", "per_certificate", "evicted" };

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

void
metrics_reply(struct evhttp_request *req, int status)
{
	struct metrics	*m;
	size_t		 r, k = 0, b = 0;
	double		 age;

	/* Only requests on a connection of ours, which is every request. */
	if ((m = conn_metrics(req, &r, &age)) == NULL)
		return;
	m->replies_by_status[status / 100 < 6 ? status / 100 : 0]++;
	while (statuses[k] != 0 && statuses[k] != status)
		k++;
	m->by_route_status[r][k]++;
	if (age < 0)
		return;
	while (b < METRICS_NLAT && age > lat_bounds[b])
		b++;
	m->lat_hist[r][b]++;
	m->lat_sum[r] += age;
}

/* The HTTP and TLS side of /metrics. */
static void
metrics_http(struct server *srv, struct evbuffer *out)
{
	const struct metrics	*m = &srv->metrics;
	const size_t	 nslots = nroutes + 1;

	evbuffer_add_printf(out, "# TYPE safeshare_http_responses_total counter\n");
	for (size_t r = 0; r < nslots; r++) {
		const char *label = slot_label(r);

		if (!slot_first(r))
			continue;
		for (size_t k = 0; k < METRICS_NSTATUSES; k++) {
			uint64_t n = 0;

			for (size_t i = r; i < nslots; i++)
				if (strcmp(slot_label(i), label) == 0)
					n += m->by_route_status[i][k];
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
		for (size_t b = 0; b <= METRICS_NLAT; b++) {
			for (size_t i = r; i < nslots; i++)
				if (strcmp(slot_label(i), label) == 0)
					cum += m->lat_hist[i][b];
			if (b < METRICS_NLAT)
				evbuffer_add_printf(out, "safeshare_request_duration_seconds_bucket"
				    "{route=\"%s\",le=\"%g\"} %llu\n", label,
				    lat_bounds[b], (unsigned long long)cum);
		}
		for (size_t i = r; i < nslots; i++)
			if (strcmp(slot_label(i), label) == 0)
				sum += m->lat_sum[i];
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
	    (unsigned long long)m->accepted, (unsigned long long)m->request_timeouts,
	    (unsigned long long)m->refusals_unlogged);
	for (size_t i = 0; i < TLS_FAIL_COUNT; i++)
		evbuffer_add_printf(out, "safeshare_tls_handshake_failures_total"
		    "{reason=\"%s\"} %llu\n", tls_fail_names[i],
		    (unsigned long long)m->tls_failures[i]);
}

/* Connections the daemon closed itself, by why (connection fairness, identity). */
static void
metrics_conns(struct server *srv, struct evbuffer *out)
{
	const struct metrics *m = &srv->metrics;

	evbuffer_add_printf(out, "# TYPE safeshare_connections_closed_total counter\n");
	for (size_t i = 0; i < CONN_CLOSE_COUNT; i++)
		evbuffer_add_printf(out, "safeshare_connections_closed_total"
		    "{reason=\"%s\"} %llu\n", conn_close_names[i],
		    (unsigned long long)m->conn_closed[i]);
}

/* The SQLite store's subject-read cache (store_cache.c); zeros on PostgreSQL. */
static void
metrics_store(struct server *srv, struct evbuffer *out)
{
	struct store_cache_stats cs;

	storage_cache_stats(srv->store, &cs);
	evbuffer_add_printf(out, "# TYPE safeshare_store_cache_hits_total counter\n"
	    "safeshare_store_cache_hits_total %llu\n"
	    "# TYPE safeshare_store_cache_misses_total counter\n"
	    "safeshare_store_cache_misses_total %llu\n"
	    "# TYPE safeshare_store_cache_flushes_total counter\n"
	    "safeshare_store_cache_flushes_total %llu\n"
	    "# TYPE safeshare_store_cache_entries gauge\n"
	    "safeshare_store_cache_entries %zu\n"
	    "# TYPE safeshare_store_cache_bytes gauge\n"
	    "safeshare_store_cache_bytes %zu\n",
	    (unsigned long long)cs.hits, (unsigned long long)cs.misses,
	    (unsigned long long)cs.flushes, cs.entries, cs.bytes);
}

/* GET /metrics: Prometheus text format; counts only, nothing about anyone. */
void
server_handle_metrics(struct req *r)
{
	struct server		*srv = r->srv;
	struct evhttp_request	*req = r->ev;
	const struct metrics	*m = &srv->metrics;
	static const char *const outcomes[] = { "deny", "allow", "partial", "consultation" };
	struct evbuffer		*out = evbuffer_new();
	struct logq_stats	 st;
	uint64_t		 cum = 0;

	logq_stats(srv->logq, &st);
	evbuffer_add_printf(out, "# TYPE safeshare_requests_total counter\n"
	    "safeshare_requests_total %llu\n", (unsigned long long)m->requests);
	evbuffer_add_printf(out, "# TYPE safeshare_responses_total counter\n");
	for (int i = 2; i < 6; i++)
		evbuffer_add_printf(out, "safeshare_responses_total{class=\"%dxx\"} %llu\n",
		    i, (unsigned long long)m->replies_by_status[i]);
	evbuffer_add_printf(out, "# TYPE safeshare_decisions_total counter\n");
	for (int i = 0; i < 4; i++)
		evbuffer_add_printf(out, "safeshare_decisions_total{outcome=\"%s\"} %llu\n",
		    outcomes[i], (unsigned long long)m->decisions[i]);
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
	metrics_store(srv, out);
	metrics_http(srv, out);
	metrics_conns(srv, out);
	feeds_metrics(srv->feeds, out);
	notify_metrics(srv->notify, st.size, out);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "text/plain; version=0.0.4");
	metrics_reply(req, 200);
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}
