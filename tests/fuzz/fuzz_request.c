/*
 * libFuzzer target: untrusted request bytes through the decoder and, when
 * they decode, through the decision against the example protocol, exactly
 * as the daemon does (minus the network and the store).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "policy.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct protocol *proto;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const values[PROTOCOL_MAX_FIELDS] = {
		"Amelia Hart", "2015-03-09", "12 Orchard Row", "EX1 4QT", "07700 900123",
		"Riverside Surgery"
	};
	static const char *const flags[] = { "domestic_abuse", "hate_crime" };
	struct policy_subject	 s;
	struct policy_request	 pr;
	struct decision		 d;
	wire_request		*wr;
	struct diag		 dg = { 0 };

	if (proto == NULL && (proto = protocol_load(SOURCE_DIR "/config/protocol.yaml", 0,
	    &dg)) == NULL)
		__builtin_trap();
	diag_free(&dg);
	if ((wr = wire_request_decode(data, size)) == NULL)
		return 0;
	wire_request_view(wr, &pr);
	memset(&s, 0, sizeof(s));
	s.known = size % 5 != 0;
	s.consent = (enum consent_state)(size % 4);
	s.flags = flags;
	s.nflags = size % 3;
	s.values = values;
	for (size_t i = 0; i < proto->nagencies; i++)
		policy_decide(proto, &proto->agencies[i], &pr, &s, 1795000000, &d);
	wire_request_free(wr);
	return 0;
}
