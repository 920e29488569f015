/*
 * The route table (routes.c): every path the daemon serves, in one table
 * that routing, the role check, the body limit, the Connect method names
 * and /metrics all read. How to add a route: docs/hacking.md.
 */
#ifndef SAFESHARED_ROUTES_H
#define SAFESHARED_ROUTES_H

#include <stddef.h>

#include <event2/http.h>
#include <protobuf-c/protobuf-c.h>

struct req;
struct server;

/* Who may call a route: role bits (ROLE_*, any one of them), or these. */
#define ROUTE_PUBLIC	0u		/* no identity needed (health, metrics) */
#define ROUTE_AGENCY	0x80000000u	/* any agency of the sharing protocol */

/* Which configured limit bounds a route's body. */
enum route_body {
	BODY_SMALL,			/* limits.max_body */
	BODY_IMPORT,			/* limits.max_import (holder batches) */
};

struct route {
	enum evhttp_cmd_type	 cmd;
	const char		*path;
	unsigned		 roles;
	/* The refusal, logged, when the peer's agency lacks every role. */
	const char		*deny_code;
	const char		*deny_msg;
	int			 rate;		/* takes a token from the agency's bucket */
	enum route_body		 body;
	const char		*metric;	/* /metrics route label */
	/* The Connect rpc that is this route (connect.c), or NULL. */
	const ProtobufCServiceDescriptor *svc;
	const char		*method;
	void			(*fn)(struct req *);
};

/* Rows at most (the /metrics counters are sized by it; routes.c checks). */
#define ROUTE_MAX	32

/* The table, and its length. */
extern const struct route	 routes[];
extern const size_t		 nroutes;

/* The row serving path, or NULL. */
const struct route *route_find(const char *path);
/* The row for the Connect rpc svc/method (full service name), or NULL. */
const struct route *route_connect(const char *svc, const char *method);
/* A row's index in routes[]; nroutes for NULL (no route: "other"). */
size_t		 route_index(const struct route *);

/*
 * Serves a request as if it had come on path: finds the row, enforces its
 * body limit, method, roles and rate, then calls its handler with a struct
 * req. Every refusal here is answered (and logged when it is a role).
 */
void		 route_dispatch(struct server *, struct evhttp_request *,
		    const char *path);

/* Handlers, by file: each is one row's fn. */
void	disclose_handle(struct req *);			/* disclose.c */
void	locate_handle(struct req *);			/* locate.c (D19) */
void	admin_handle_reload(struct req *);		/* admin.c */
void	holder_handle(struct req *);			/* holder_api.c */
void	holder_handle_show(struct req *);		/* holdershow.c */
void	logproof_handle_consistency(struct req *);	/* logproof.c */
void	auditor_handle_query(struct req *);		/* auditor.c */
void	auditor_handle_stats(struct req *);
void	auditor_handle_reviews(struct req *);
void	auditor_handle_review(struct req *);
void	auditor_handle_inform(struct req *);
void	auditor_handle_inform_done(struct req *);
void	auditor_handle_checkpoints(struct req *);
void	auditor_handle_verify(struct req *);
void	auditor_handle_report(struct req *);
void	feed_handle_accesses(struct req *);		/* feed.c (issue 18) */
void	feed_handle_alerts(struct req *);
void	server_handle_health(struct req *);		/* server.c */
void	server_handle_metrics(struct req *);		/* metrics.c */

#endif
