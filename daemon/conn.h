/*
 * Connections (conn.c): what the server, the replies and /metrics need
 * from them. Handlers never use this; they see a struct req (req.h).
 */
#ifndef SAFESHARED_CONN_H
#define SAFESHARED_CONN_H

#include <stddef.h>

#include <event2/util.h>

struct bufferevent;
struct connect_call;
struct event_base;
struct evhttp_request;
struct metrics;
struct server;
struct ssl_st;

/* Once before the first connection (server_init()). */
void		 conn_setup(void);
/* evhttp's bufferevent callback: a new connection's TLS bufferevent. */
struct bufferevent *conn_bev(struct event_base *, void *srv);
/*
 * A request is in: from here the reply's own path bounds it. -1 if the
 * connection is being closed and the request must not be served.
 */
int		 conn_arrived(struct evhttp_request *);
/* The Connect call state of the request's connection, NULL if none. */
struct connect_call *conn_call(struct evhttp_request *);
/*
 * The counters of the request's server, its /metrics route slot and its
 * age in seconds (-1 if unknown); NULL if the request has no connection.
 */
struct metrics	*conn_metrics(struct evhttp_request *, size_t *slot, double *age);
/* After a reload: closes connections whose certificate no longer maps. */
void		 conns_recheck(struct server *);

/* linger.c: keeps a refused handshake's socket until its alert is read. */
void		 linger_start(struct server *, evutil_socket_t fd);
void		 linger_free_all(void);

/*
 * sockclose.c: a socket the loop registered is closed only after the
 * loop's next epoll_ctl()s (the change list, server.c).
 */
evutil_socket_t	 sockclose_wrap(struct ssl_st *);
/* ... and reads ahead: one read(2) per request, not two. */
void		 sockclose_read_ahead(struct bufferevent *);
/*
 * Reading starts again (a reply is out): hands on what OpenSSL read ahead,
 * if anything, and puts back the socket's standing read interest.
 */
void		 sockclose_recheck(struct ssl_st *);
void		 sockclose_later(struct event_base *, evutil_socket_t fd);
void		 sockclose_stop(void);

#endif
