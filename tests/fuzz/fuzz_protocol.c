/* libFuzzer target: arbitrary bytes as a sharing protocol file. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diag	 d = { 0 };
	struct protocol	*p;

	p = protocol_load_buffer("fuzz.yaml", data, size, 1795000000, &d);
	/* A protocol that loaded must be usable: ids bounded, every rule found. */
	for (size_t a = 0; p != NULL && a < p->nagencies; a++)
		if (protocol_id_problem(p->agencies[a].id) != NULL)
			abort();
	if (p != NULL)
		for (size_t i = 0; i < p->nrules; i++)
			for (size_t a = 0; a < p->nagencies; a++)
				protocol_find_rule(p, &p->agencies[a], p->rules[i].purpose,
				    p->rules[i].record_type);
	protocol_unref(p);
	diag_free(&d);
	return 0;
}
