/*
 * libsafeshare-client: call a safeshared over mutual TLS from C.
 *
 * A client holds one keep-alive connection. Calls are blocking and not
 * thread-safe: use one client per thread. Message types are the protobuf-c
 * ones generated from proto/safeshare.proto (installed beside this header).
 *
 *	struct ss_client *c;
 *	struct ss_client_config cfg = { "127.0.0.1:8443", "me.crt", "me.key", "ca.crt", 10 };
 *	if (ss_client_new(&c, &cfg, err, sizeof(err)) == -1) ...
 *	rc = ss_disclose(c, &req, &resp, &error, &status, err, sizeof(err));
 *	...
 *	ss_client_free(c);
 */
#ifndef SAFESHARE_CLIENT_H
#define SAFESHARE_CLIENT_H

#include <stddef.h>

#include "safeshare/safeshare.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The library is built with hidden symbols; only what this header marks
 * SS_API (and the generated safeshare__v1__ message code) is exported.
 */
#if defined(__GNUC__) && !defined(SS_API)
#define SS_API	__attribute__((visibility("default")))
#elif !defined(SS_API)
#define SS_API
#endif

struct ss_client;

struct ss_client_config {
	const char	*server;	/* "host:port" */
	const char	*cert;		/* this agency's certificate (PEM) */
	const char	*key;		/* its private key; must be mode 0600 or stricter */
	const char	*ca;		/* CA that signed the server's certificate */
	int		 timeout;	/* seconds; 0 means 30 */
};

/* Returns 0, or -1 with a message in err (bad files, bad address). */
SS_API int	ss_client_new(struct ss_client **, const struct ss_client_config *,
	    char *err, size_t errlen);
SS_API void	ss_client_free(struct ss_client *);

/*
 * One HTTP exchange. On 0, *status is the HTTP status and *resp (malloc'd,
 * caller frees) holds *resplen bytes of body. On -1 there was no reply
 * (connection, TLS or timeout) and err says why.
 */
SS_API int	ss_client_call(struct ss_client *, const char *method, const char *path,
	    const void *body, size_t len, int *status, unsigned char **resp,
	    size_t *resplen, char *err, size_t errlen);

/*
 * POST /v1/disclosures. Returns 0 with either *resp (HTTP 200) or *error
 * (any other status) set; free them with the protobuf-c free_unpacked
 * functions. Returns -1 when there was no usable reply.
 */
SS_API int	ss_disclose(struct ss_client *, const Safeshare__V1__DisclosureRequest *,
	    Safeshare__V1__DisclosureResponse **resp, Safeshare__V1__Error **error,
	    int *status, char *err, size_t errlen);

/*
 * POST /v1/admin/reload (admin role). Returns 0 with *result (HTTP 200) or
 * *error set, or -1 when there was no usable reply.
 */
SS_API int	ss_admin_reload(struct ss_client *, Safeshare__V1__ReloadResult **result,
	    Safeshare__V1__Error **error, int *status, char *err, size_t errlen);

/*
 * Any protobuf POST: sends req (NULL for an empty body) to path and decodes
 * a 200 reply as resp_desc into *resp, anything else as an Error into
 * *error. Returns -1 when there was no usable reply. Free the results with
 * protobuf_c_message_free_unpacked().
 */
SS_API int	ss_call_message(struct ss_client *, const char *path, const ProtobufCMessage *req,
	    const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
	    Safeshare__V1__Error **error, int *status, char *err, size_t errlen);

/*
 * POST /v1/log/consistency (any agency): the log's latest signed
 * checkpoint and the proof that the tree of from_size entries is a prefix
 * of it (from_size 0: the checkpoint alone). Returns 0 with *proof (HTTP
 * 200) or *error set, or -1 when there was no usable reply. The caller
 * still checks the checkpoint's signature and the proof (receipt.h).
 */
SS_API int	ss_log_consistency(struct ss_client *, unsigned long long from_size,
	    Safeshare__V1__ConsistencyProof **proof, Safeshare__V1__Error **error,
	    int *status, char *err, size_t errlen);
/*
 * The same, and also the key rotations up to the checkpoint (key_notes:
 * the checkpoint notes naming a next key, oldest first), so a verifier
 * holding only the first key can follow the chain of keys. At most 64 a
 * reply: with key_notes_more set, ask for the next ones with
 * ss_log_consistency_keys_after(), after = the tree size of the last
 * one's checkpoint.
 */
SS_API int	ss_log_consistency_keys(struct ss_client *,
	    unsigned long long from_size, Safeshare__V1__ConsistencyProof **proof,
	    Safeshare__V1__Error **error, int *status, char *err, size_t errlen);
SS_API int	ss_log_consistency_keys_after(struct ss_client *,
	    unsigned long long from_size, unsigned long long after,
	    Safeshare__V1__ConsistencyProof **proof, Safeshare__V1__Error **error,
	    int *status, char *err, size_t errlen);

/*
 * POST /v1/audit/report (auditor or guardian role): the log's aggregates
 * over [from_time, to_time) (to_time 0: no bound), of requests by agency
 * only if it is not NULL or empty. Returns 0 with *report (HTTP 200) or
 * *error set, or -1 when there was no usable reply. Free *report with
 * safeshare__v1__audit_report__free_unpacked().
 */
SS_API int	ss_audit_report(struct ss_client *, long long from_time, long long to_time,
	    const char *agency, Safeshare__V1__AuditReport **report,
	    Safeshare__V1__Error **error, int *status, char *err, size_t errlen);

/*
 * POST /v1/holder/show (holder role): the records, consent history and
 * flags held for one of the caller's own subjects. Another holder's subject
 * and an unknown one both come back as *error 404 unknown_subject. Returns
 * 0 with *show (HTTP 200) or *error set, or -1 when there was no usable
 * reply. Free *show with safeshare__v1__holder_show__free_unpacked().
 */
SS_API int	ss_holder_show(struct ss_client *, const char *subject,
	    Safeshare__V1__HolderShow **show, Safeshare__V1__Error **error,
	    int *status, char *err, size_t errlen);

/* GET /healthz. Returns 0 with *health set, or -1. */
SS_API int	ss_health(struct ss_client *, Safeshare__V1__Health **health, int *status,
	    char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
