/*
 * The feeds' parked requests (daemon/feed.c, issue 18): feeds_new() hooks
 * the log writer's commits to wake them; feeds_stop() answers every parked
 * request at once (shutdown); feeds_free() frees what is left after
 * evhttp_free(); feeds_metrics() adds their counts and each agency's lag
 * to /metrics. The routes are in routes.h.
 */
#ifndef SAFESHARED_FEEDS_H
#define SAFESHARED_FEEDS_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct feeds;
struct server;

struct feeds	*feeds_new(struct server *);
void		 feeds_stop(struct feeds *);
void		 feeds_free(struct feeds *);
void		 feeds_metrics(struct feeds *, struct evbuffer *);

/*
 * One batch of an agency's feed for the notifier (notify.c): the items
 * after seq after (at most limit) as the feed API's Connect JSON reply
 * (HolderAccesses, or AuditAlerts when alerts), in json (malloc'd, len
 * bytes; NULL when n is 0). last is the seq read up to, items or not;
 * nothing after upto (the log's durable size, logq.c) is read.
 * Safe on any thread that owns reader and store. 0, or -1 with err.
 */
struct logstore;
struct storage;
struct feed_batch {
	char		*json;
	size_t		 len;
	size_t		 n;
	uint64_t	 last;
};
int		 feed_batch_json(struct logstore *reader, struct storage *store,
		    int alerts, const char *agency, uint64_t after, uint64_t upto,
		    size_t limit,
		    struct feed_batch *, char *err, size_t errlen);

#endif
