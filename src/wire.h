/*
 * The wire codec: protobuf messages (proto/safeshare.proto) to and from the
 * core's structs. Pure: bytes in, structs out, and back.
 */
#ifndef SAFESHARE_WIRE_H
#define SAFESHARE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "safeshare/safeshare.pb-c.h"

typedef Safeshare__V1__DisclosureRequest	wire_request;

/*
 * Decodes a disclosure request. Returns NULL when the bytes are not a valid
 * message; the caller frees with wire_request_free().
 */
wire_request	*wire_request_decode(const uint8_t *buf, size_t len);
void		 wire_request_free(wire_request *);
/* A view of the request for the policy; borrows the request's strings. */
void		 wire_request_view(const wire_request *, struct policy_request *);

/*
 * Encodes the reply to a decision. Returns a malloc'd buffer (caller frees)
 * and its length in *len.
 */
uint8_t		*wire_response_encode(const struct decision *, const char *protocol_id,
		    const char *protocol_version, uint64_t disclosure_id,
		    int64_t last_verified, int64_t now, size_t *len);
uint8_t		*wire_error_encode(const char *code, const char *message,
		    uint64_t disclosure_id, size_t *len);

/* "a,b/transform" for released or "c:reason,d:reason" for withheld, for the log. */
void		 wire_fields_summary(const struct decision *, int released, char *out,
		    size_t len);

#endif
