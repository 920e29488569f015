/*
 * What a route handler may use (docs/hacking.md): the request in hand
 * (struct req, filled in by route_dispatch() in routes.c), the replies,
 * and logging a refusal before its reply (D7). Handlers include this and
 * routes.h, never the connection or metrics code: they are called by the
 * route table and answer through reply*(), nothing else.
 */
#ifndef SAFESHARED_REQ_H
#define SAFESHARED_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "protocol.h"
#include "server.h"

struct evhttp_request;
struct route;

#define MAX_LOG_FIELD	1024	/* free text kept in the log, bytes */

/* Who is on the other end of a request's connection (D10). */
struct peer {
	unsigned char	 spki[32];
	char		 fp[65];
	char		 subject[PROTOCOL_SUBJECT_MAX + 1];	/* "" if longer */
	int		 ok;
};

/*
 * One request, as the route table hands it to a handler. It lives on the
 * dispatcher's stack: a handler that answers later (after a log write or a
 * thread) copies what it keeps. agency is srv->proto's, set when the
 * route's row names roles and the peer has one of them; peer and rid are
 * set on every route that needs an agency.
 */
struct req {
	struct server		*srv;
	struct evhttp_request	*ev;
	const struct route	*route;
	const struct agency	*agency;
	struct peer		 peer;
	char			 rid[33];	/* request id for the log */
};

/* The request body, pulled up into one piece, and its length. */
const uint8_t	*req_body(struct req *, size_t *len);

void		 peer_of(struct evhttp_request *, struct peer *);
/* The agency of the peer under the protocol in force, or NULL. */
const struct agency *peer_agency(struct server *, const struct peer *);

/* Sends body (taken: freed here) with the status. */
void		 reply(struct evhttp_request *, int status, uint8_t *body, size_t len);
/*
 * A body buffer of len bytes from the loop's kept ones (never NULL), for
 * reply_kept(), which takes it back once it is written. Loop thread only.
 */
uint8_t		*reply_body_get(size_t len);
void		 reply_kept(struct evhttp_request *, int status, uint8_t *body,
		    size_t len);
void		 reply_error(struct evhttp_request *, int status, const char *code,
		    const char *msg, uint64_t disclosure_id);
/* reply_error() with the logged refusal's receipt (NULL: none). */
void		 reply_error_receipt(struct evhttp_request *, int status,
		    const char *code, const char *msg, uint64_t disclosure_id,
		    const struct audit_receipt *);
void		 reply_audit_unavailable(struct evhttp_request *);
void		 new_request_id(char out[33]);

/*
 * Logs a refusal made before the policy ran (no agency, bad body, missing
 * role) and replies with an Error naming the log entry once it is durable.
 */
void		 refuse(struct server *, struct evhttp_request *, const struct peer *,
		    const char *agency, int status, const char *code, const char *msg,
		    const char *request_id);

/*
 * refuse() for an entry the caller filled in (agency, cert_fp, request_id
 * and whatever of the request it may log); this sets kind, decision, reason
 * and the protocol. The entry's strings need only last for the call.
 */
void		 refuse_entry(struct server *, struct evhttp_request *,
		    struct audit_entry *, int status, const char *code, const char *msg);

#endif
