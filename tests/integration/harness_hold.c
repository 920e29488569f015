/*
 * The harness's holder writes: ops written as "key=value" strings and
 * sent to POST /v1/holder/ops, built by the import reader's own functions
 * (client/import.c), so a test writes an op the way a holder's file does.
 * Apart from harness.c because only the suites that write as a holder
 * link the client's import.h.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "import.h"

int
h_hold(struct daemon *d, const char *agency, int dry_run, const char *const *kv,
    size_t *nops, Safeshare__V1__HolderResult **resp, Safeshare__V1__Error **errp,
    char *err, size_t errlen)
{
	Safeshare__V1__HolderRequest	 rq = SAFESHARE__V1__HOLDER_REQUEST__INIT;
	Safeshare__V1__HolderResult	*res = NULL;
	Safeshare__V1__Error		*e = NULL;
	struct import			 im = { .name = "test" };
	struct ss_client		*c = h_client(d, agency);
	Safeshare__V1__HolderOp		*op = import_new_op(&im, 1);
	int				 status = -1;

	for (; *kv != NULL; kv++) {
		char		 key[64];
		const char	*eq = strchr(*kv, '=');

		if (strcmp(*kv, "--") == 0) {
			op = import_new_op(&im, im.nops + 1);
			continue;
		}
		cr_assert_not_null(eq, "%s", *kv);
		snprintf(key, sizeof(key), "%.*s", (int)(eq - *kv), *kv);
		if (!import_set_key(&im, op, 1, key, eq + 1))
			import_add_field(op, key, eq + 1);
	}
	rq.ops = im.ops;
	rq.n_ops = im.nops;
	rq.dry_run = dry_run;
	if (ss_call_message(c, "/v1/holder/ops", &rq.base,
	    &safeshare__v1__holder_result__descriptor, (ProtobufCMessage **)&res, &e,
	    &status, err, errlen) == -1)
		status = -1;
	if (nops != NULL)
		*nops = im.nops;
	if (resp != NULL)
		*resp = res;
	else
		protobuf_c_message_free_unpacked((ProtobufCMessage *)res, NULL);
	if (errp != NULL)
		*errp = e;
	else if (e != NULL)
		safeshare__v1__error__free_unpacked(e, NULL);
	import_free(&im);
	ss_client_free(c);
	return status;
}
