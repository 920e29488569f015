/*
 * The wire codec: protobuf messages (proto/safeshare.proto) to and from the
 * core's structs. Pure: bytes in, structs out, and back.
 */
#ifndef SAFESHARE_WIRE_H
#define SAFESHARE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "policy.h"
#include "safeshare/safeshare.pb-c.h"

typedef Safeshare__V1__DisclosureRequest	wire_request;

/*
 * Decodes a disclosure request. Returns NULL when the bytes are not a valid
 * message; the caller frees with wire_request_free().
 */
wire_request	*wire_request_decode(const uint8_t *buf, size_t len);
void		 wire_request_free(wire_request *);

/*
 * Room a caller lends one decode (a disclosure's, in its pending request,
 * disclose.c): protobuf-c's allocations for the message and its strings
 * are carved from buf while it lasts, and made by malloc() after that, so a
 * usual request costs no allocation of its own (issue 13: six per
 * disclosure on the event loop). The message lives as long as the space
 * and is freed with wire_request_free_in() on the same space, which frees
 * only what did not fit.
 */
struct wire_space {
	size_t		 used;
	_Alignas(16) unsigned char buf[1024];
};
wire_request	*wire_request_decode_in(const uint8_t *buf, size_t len,
		    struct wire_space *);
void		 wire_request_free_in(wire_request *, struct wire_space *);
/*
 * Limits on a request's strings, bytes (issue 14). Free text is bounded so
 * the disclosure log keeps all of it; identifiers (subject id, purpose,
 * record type, override code, field names) carry no control characters.
 */
#define WIRE_MAX_NAME		200	/* practitioner, case_reference */
#define WIRE_MAX_TEXT		1000	/* override_justification, inform_waiver_reason */
#define WIRE_MAX_SUBJECT	128	/* subject_id */
#define WIRE_MAX_REQUEST_ID	64	/* request_id: [A-Za-z0-9._:-] */

/*
 * NULL if value is acceptable for the DisclosureRequest field of that name
 * (as in proto/safeshare.proto; "fields" for one requested field), else why
 * not, e.g. "is too long (at most 200 bytes)".
 */
const char	*wire_field_problem(const char *field, const char *value);
/*
 * The first field of the request that wire_field_problem() refuses, with the
 * reason in why, or NULL when every field is acceptable. Pure.
 */
const char	*wire_request_problem(const wire_request *, const char **why);
/* A request id chosen by a client: 1 to 64 of [A-Za-z0-9._:-]. */
int		 wire_request_id_ok(const char *);

/*
 * Issue 17: the first string of a person reference that wire_field_problem()
 * refuses (holder and postcode as identifiers, the NHS number, names and
 * date of birth as names), with the reason in why, or NULL. NULL p: none.
 */
const char	*wire_person_problem(const Safeshare__V1__PersonRef *p, const char **why);
/*
 * What a request that names no one yet asked for, for its log entry: the
 * local id as given, "nhs:<number>" (normalised when it parses) or
 * "demographics:<family>|<given>|<date of birth>|<postcode>". Strings within
 * wire_person_problem()'s bounds fit in 1024 bytes. Always NUL-terminated.
 */
void		 wire_person_asked(const char *subject_id, const Safeshare__V1__PersonRef *,
		    char *out, size_t len);

/* A view of the request for the policy; borrows the request's strings. */
void		 wire_request_view(const wire_request *, struct policy_request *);

/*
 * Encodes the reply to a decision. Returns a malloc'd buffer (caller frees)
 * and its length in *len.
 */
uint8_t		*wire_response_encode(const struct decision *, const char *protocol_id,
		    const char *protocol_version, uint64_t disclosure_id,
		    int64_t last_verified, int64_t now, const struct audit_receipt *,
		    size_t *len);
/*
 * The same, into a buffer get(n) returns for the n bytes the reply takes
 * (never NULL; the caller owns it and frees it as get's owner says).
 */
uint8_t		*wire_response_encode_in(const struct decision *,
		    const char *protocol_id, const char *protocol_version,
		    uint64_t disclosure_id, int64_t last_verified, int64_t now,
		    const struct audit_receipt *, uint8_t *(*get)(size_t),
		    size_t *len);
uint8_t		*wire_error_encode(const char *code, const char *message,
		    uint64_t disclosure_id, const struct audit_receipt *, size_t *len);
/*
 * The receipt of a logged entry as a message (docs/audit-format.md,
 * "Receipts"): m points into rc and bins (room for AUDIT_MAX_PROOF), which
 * must outlive it. Returns 0, or -1 when rc is NULL or has no checkpoint
 * (an unsigned log): the reply then carries no receipt.
 */
int		 wire_receipt_view(const struct audit_receipt *rc,
		    Safeshare__V1__Receipt *m, ProtobufCBinaryData *bins);

/* "a,b/transform" for released or "c:reason,d:reason" for withheld, for the log. */
void		 wire_fields_summary(const struct decision *, int released, char *out,
		    size_t len);

#endif
