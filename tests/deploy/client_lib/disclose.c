/*
 * A partner's program, built against the installed libsafeshare-client
 * with nothing but `pkg-config --cflags --libs safeshare-client`: one
 * disclosure over mutual TLS, printed as "decision field=value ...".
 *	disclose HOST:PORT CERT KEY CA
 * Exits 0 on an HTTP 200 reply, 1 otherwise.
 */
#include <stdio.h>

#include <safeshare/client.h>

int
main(int argc, char **argv)
{
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__DisclosureResponse	*resp = NULL;
	Safeshare__V1__Error			*error = NULL;
	struct ss_client_config			 cfg;
	struct ss_client			*c = NULL;
	char					 err[512];
	char					*fields[] = { "full_name" };
	int					 status = 0, rc = 1;
	size_t					 i;

	if (argc != 5) {
		fprintf(stderr, "usage: disclose HOST:PORT CERT KEY CA\n");
		return 2;
	}
	cfg.server = argv[1];
	cfg.cert = argv[2];
	cfg.key = argv[3];
	cfg.ca = argv[4];
	cfg.timeout = 10;
	if (ss_client_new(&c, &cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "disclose: %s\n", err);
		return 1;
	}
	rq.purpose = "child_protection";
	rq.case_reference = "CP-1";
	rq.practitioner = "DC Jones";
	rq.subject_id = "S1001";
	rq.record_type = "person";
	rq.n_fields = 1;
	rq.fields = fields;
	if (ss_disclose(c, &rq, &resp, &error, &status, err, sizeof(err)) == -1) {
		fprintf(stderr, "disclose: %s\n", err);
		goto done;
	}
	if (error != NULL) {
		fprintf(stderr, "disclose: HTTP %d %s: %s\n", status, error->code,
		    error->message);
		goto done;
	}
	printf("%s", protobuf_c_enum_descriptor_get_value(
	    &safeshare__v1__decision__descriptor, resp->decision)->name);
	for (i = 0; i < resp->n_released; i++)
		printf(" %s=%s", resp->released[i]->name, resp->released[i]->value);
	printf("\n");
	rc = 0;
done:
	if (resp != NULL)
		safeshare__v1__disclosure_response__free_unpacked(resp, NULL);
	if (error != NULL)
		safeshare__v1__error__free_unpacked(error, NULL);
	ss_client_free(c);
	return rc;
}
