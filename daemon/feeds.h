/*
 * The feeds' parked requests (daemon/feed.c, issue 18): feeds_new() hooks
 * the log writer's commits to wake them; feeds_stop() answers every parked
 * request at once (shutdown); feeds_free() frees what is left after
 * evhttp_free(); feeds_metrics() adds their counts and each agency's lag
 * to /metrics. The routes are in routes.h.
 */
#ifndef SAFESHARED_FEEDS_H
#define SAFESHARED_FEEDS_H

struct evbuffer;
struct feeds;
struct server;

struct feeds	*feeds_new(struct server *);
void		 feeds_stop(struct feeds *);
void		 feeds_free(struct feeds *);
void		 feeds_metrics(struct feeds *, struct evbuffer *);

#endif
