/*
 * libFuzzer target: a holder's import file through import_parse(), as
 * 'safeshare holder import' reads it. The first byte picks the format ('C'
 * or any odd byte: CSV; 'J' or any even byte: JSON lines); the rest is the
 * file. An accepted file is packed into the HolderRequest the client would
 * send and unpacked again, so an op the parser left half-built shows up here
 * and not on the wire.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
progress(const struct import *im, size_t line)
{
	if (line == 0 || im->nops > line)
		__builtin_trap();
}

/* Packs the ops as send_ops() does; traps when they do not come back whole. */
static void
roundtrip(const struct import *im)
{
	Safeshare__V1__HolderRequest	 rq = SAFESHARE__V1__HOLDER_REQUEST__INIT;
	Safeshare__V1__HolderRequest	*back;
	uint8_t				*buf;
	size_t				 len;

	rq.ops = im->ops;
	rq.n_ops = im->nops;
	len = safeshare__v1__holder_request__get_packed_size(&rq);
	if ((buf = malloc(len ? len : 1)) == NULL)
		return;
	if (safeshare__v1__holder_request__pack(&rq, buf) != len)
		__builtin_trap();
	if ((back = safeshare__v1__holder_request__unpack(NULL, len, buf)) == NULL ||
	    back->n_ops != im->nops)
		__builtin_trap();
	for (size_t i = 0; i < back->n_ops; i++)
		if (strcmp(back->ops[i]->subject_id, im->ops[i]->subject_id) != 0 ||
		    back->ops[i]->n_fields != im->ops[i]->n_fields)
			__builtin_trap();
	safeshare__v1__holder_request__free_unpacked(back, NULL);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct import		 im = { .progress = progress };
	enum import_format	 fmt;
	int			 rc;

	if (size == 0)
		return 0;
	fmt = data[0] & 1 ? IMPORT_CSV : IMPORT_JSONL;
	im.name = fmt == IMPORT_CSV ? "fuzz.csv" : "fuzz.jsonl";
	rc = import_parse(&im, fmt, (const char *)data + 1, size - 1);
	if ((rc == 0) != (im.nerrors == 0) || im.nerrors > IMPORT_MAX_ERRORS)
		__builtin_trap();
	for (size_t i = 0; i < im.nerrors; i++)
		if (strncmp(im.errors[i], im.name, strlen(im.name)) != 0)
			__builtin_trap();
	if (rc == 0)
		roundtrip(&im);
	import_free(&im);
	return 0;
}
