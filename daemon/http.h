/*
 * Shared by the route handlers: replies, peer identity, and logging a
 * decision before its reply (D7).
 */
#ifndef SAFESHARED_HTTP_H
#define SAFESHARED_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "protocol.h"
#include "server.h"

struct evhttp_request;

#define MAX_LOG_FIELD	1024	/* free text kept in the log, bytes */

/* Who is on the other end of a request's connection (D10). */
struct peer {
	unsigned char	 spki[32];
	char		 fp[65];
	char		 subject[PROTOCOL_SUBJECT_MAX + 1];	/* "" if longer */
	int		 ok;
};

void		 peer_of(struct evhttp_request *, struct peer *);
/* The agency of the peer under the protocol in force, or NULL. */
const struct agency *peer_agency(struct server *, const struct peer *);

/* Sends body (taken: freed here) with the status. */
void		 reply(struct evhttp_request *, int status, uint8_t *body, size_t len);
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

/* Handlers, by file. */
void		 disclose_handle(struct server *, struct evhttp_request *);
void		 admin_handle_reload(struct server *, struct evhttp_request *);
/*
 * The agency of a holder request's peer, with p filled in, after its role
 * and a rate token; else NULL, the request answered (403 not_holder,
 * logged, saying `what` needs the role, or 429).
 */
const struct agency *holder_admit(struct server *, struct evhttp_request *,
		    struct peer *, const char *what, const char *request_id);
void		 holder_handle(struct server *, struct evhttp_request *);
/* POST /v1/holder/show: one of the holder's own subjects, read back (holdershow.c). */
void		 holder_handle_show(struct server *, struct evhttp_request *);
/*
 * The holder thread (daemon/holder.c): checks and applies holder batches
 * on its own store connection, off the event loop. hworker_new() opens
 * the store and starts it (NULL and err on failure); hworker_busy() counts
 * batches not yet answered; hworker_free() stops it.
 */
struct hworker	*hworker_new(struct server *, char *err, size_t errlen);
size_t		 hworker_busy(const struct hworker *);
void		 hworker_free(struct hworker *);
/*
 * The log entry saying a logged holder batch was not applied (audit-format.md):
 * its agency, request id and first entry, and why.
 */
void		 holder_rolled_back(struct audit_entry *, const struct protocol *,
		    const char *agency, const char *request_id, uint64_t first_seq,
		    const char *reason);
/* POST /v1/log/consistency: the latest checkpoint, proof it extends an older one. */
void		 logproof_handle_consistency(struct server *, struct evhttp_request *);
/* Every POST /v1/audit/... route. */
void		 auditor_handle(struct server *, struct evhttp_request *, const char *path);

#endif
