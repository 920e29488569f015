/*
 * libFuzzer target: untrusted JSON through the proto3 JSON codec
 * (src/pbjson.c), as the daemon reads a Connect application/json body.
 * The first byte picks the message type among every message the services
 * use; the rest is the JSON. What decodes must encode, decode again and
 * pack to the same protobuf bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson.h"
#include "safeshare.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXDESC 128

static const ProtobufCMessageDescriptor *descs[MAXDESC];
static size_t ndescs;

static void
add(const ProtobufCMessageDescriptor *d)
{
	for (size_t i = 0; i < ndescs; i++)
		if (descs[i] == d)
			return;
	if (ndescs == MAXDESC)
		__builtin_trap();
	descs[ndescs++] = d;
	for (unsigned i = 0; i < d->n_fields; i++)
		if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE)
			add(d->fields[i].descriptor);
}

static uint8_t *
packed(const ProtobufCMessage *m, size_t *n)
{
	uint8_t *b;

	*n = protobuf_c_message_get_packed_size(m);
	if ((b = malloc(*n + 1)) == NULL)
		__builtin_trap();
	protobuf_c_message_pack(m, b);
	return b;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCServiceDescriptor *svcs[] = {
		&safeshare__v1__disclosure_service__descriptor,
		&safeshare__v1__holder_service__descriptor,
		&safeshare__v1__audit_service__descriptor,
		&safeshare__v1__log_service__descriptor,
		&safeshare__v1__admin_service__descriptor,
	};
	const ProtobufCMessageDescriptor	*d;
	ProtobufCMessage			*m, *back;
	uint8_t					*b1, *b2;
	size_t					 n1, n2, len;
	char					 err[512], *json;

	if (ndescs == 0) {
		for (size_t s = 0; s < sizeof(svcs) / sizeof(svcs[0]); s++)
			for (unsigned i = 0; i < svcs[s]->n_methods; i++) {
				add(svcs[s]->methods[i].input);
				add(svcs[s]->methods[i].output);
			}
		add(&safeshare__v1__error__descriptor);
	}
	if (size == 0)
		return 0;
	d = descs[data[0] % ndescs];
	if ((m = pbjson_decode(d, (const char *)data + 1, size - 1, err,
	    sizeof(err))) == NULL) {
		if (err[0] == '\0')
			__builtin_trap();	/* every refusal says why */
		return 0;
	}
	/* Decoded input is UTF-8 without NUL: it must encode. */
	if ((json = pbjson_encode(m, &len, err, sizeof(err))) == NULL)
		__builtin_trap();
	if ((back = pbjson_decode(d, json, len, err, sizeof(err))) == NULL)
		__builtin_trap();
	b1 = packed(m, &n1);
	b2 = packed(back, &n2);
	if (n1 != n2 || memcmp(b1, b2, n1) != 0)
		__builtin_trap();
	free(b1);
	free(b2);
	free(json);
	protobuf_c_message_free_unpacked(m, NULL);
	protobuf_c_message_free_unpacked(back, NULL);
	return 0;
}
