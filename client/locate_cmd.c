/*
 * safeshare locate (issue 17, D19): which holders hold which record types
 * about a person, named by a holder's local id, an NHS number or
 * demographics. Existence only: the answer carries no values.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "safeshare/client.h"

static const char *const help =
    "usage: safeshare locate --purpose P --case REF --practitioner NAME\n"
    "         (--subject ID [--holder H] | --nhs-number N |\n"
    "          --family-name F --given-name G --dob YYYY-MM-DD [--postcode PC])\n"
    "         [--request-id ID] [--json] [connection options]\n"
    "\n"
    "Asks which holders hold which record types about a person, limited to\n"
    "those a rule for the purpose lets your agency ask for (D19). Name the\n"
    "person one way: a holder's local id, the NHS number (spaces allowed),\n"
    "or family name, given name and date of birth, optionally the postcode\n"
    "(docs/matching.md). Nothing but holders and record types comes back.\n"
    "Every locate is logged.\n"
    "Exit: 0 answered (perhaps no holder), 4 refused by the server (no_match,\n"
    "ambiguous, a bad NHS number, ...), 5 no answer.\n";

static void
print_located(const Safeshare__V1__LocateResponse *r, int json)
{
	if (json) {
		json_t *hs = json_array();

		for (size_t i = 0; i < r->n_holders; i++) {
			json_t *rts = json_array();

			for (size_t k = 0; k < r->holders[i]->n_record_types; k++)
				json_array_append_new(rts,
				    jsonw_str(r->holders[i]->record_types[k]));
			json_array_append_new(hs, json_pack("{s:o,s:o}",
			    "holder", jsonw_str(r->holders[i]->holder),
			    "record_types", rts));
		}
		jsonw_print(stdout, json_pack("{s:o,s:o,s:o}",
		    "disclosure_id", jsonw_u64(r->disclosure_id),
		    "request_id", jsonw_str(r->request_id), "holders", hs));
		return;
	}
	printf("logged as:     %llu\n", (unsigned long long)r->disclosure_id);
	printf("protocol:      %s version %s\n", T(r->protocol_id),
	    T(r->protocol_version));
	if (r->n_holders == 0)
		printf("no holder you may ask holds records about this person\n");
	else
		printf("held by:\n");
	for (size_t i = 0; i < r->n_holders; i++) {
		printf("  %-24s ", T(r->holders[i]->holder));
		for (size_t k = 0; k < r->holders[i]->n_record_types; k++)
			printf("%s%s", k ? ", " : "", T(r->holders[i]->record_types[k]));
		printf("\n");
	}
}

int
cmd_locate(int argc, char *argv[])
{
	static const struct option longopts[] = {
		CONN_LONGOPTS,
		{ "purpose", required_argument, NULL, 'p' },
		{ "case", required_argument, NULL, 'C' },
		{ "practitioner", required_argument, NULL, 'P' },
		{ "subject", required_argument, NULL, 's' },
		{ "holder", required_argument, NULL, 'H' },
		{ "nhs-number", required_argument, NULL, 'n' },
		{ "family-name", required_argument, NULL, 'f' },
		{ "given-name", required_argument, NULL, 'g' },
		{ "dob", required_argument, NULL, 'd' },
		{ "postcode", required_argument, NULL, 'c' },
		{ "request-id", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 }
	};
	Safeshare__V1__LocateRequest	 rq = SAFESHARE__V1__LOCATE_REQUEST__INIT;
	Safeshare__V1__PersonRef	 pr = SAFESHARE__V1__PERSON_REF__INIT;
	ProtobufCMessage		*resp = NULL;
	Safeshare__V1__Error		*error = NULL;
	struct conn_opts		 o = { 0 };
	struct ss_client		*c;
	char				 err[512];
	int				 ch, json = 0, status, rc, forms;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (conn_opt(ch, &o, &json))
			continue;
		switch (ch) {
		case 'p': rq.purpose = optarg; break;
		case 'C': rq.case_reference = optarg; break;
		case 'P': rq.practitioner = optarg; break;
		case 's': rq.subject_id = optarg; break;
		case 'H': pr.holder = optarg; break;
		case 'n': pr.nhs_number = optarg; break;
		case 'f': pr.family_name = optarg; break;
		case 'g': pr.given_name = optarg; break;
		case 'd': pr.date_of_birth = optarg; break;
		case 'c': pr.postcode = optarg; break;
		case 'r': rq.request_id = optarg; break;
		case O_HELP: fputs(help, stdout); return SS_EXIT_OK;
		default: fputs(help, stderr); return SS_EXIT_USAGE;
		}
	}
	forms = (rq.subject_id[0] != '\0') + (pr.nhs_number[0] != '\0') +
	    (pr.family_name[0] != '\0' || pr.given_name[0] != '\0' ||
	    pr.date_of_birth[0] != '\0');
	if (optind != argc || rq.purpose[0] == '\0' || rq.case_reference[0] == '\0' ||
	    rq.practitioner[0] == '\0' || forms != 1) {
		fprintf(stderr, "safeshare locate: --purpose, --case and --practitioner "
		    "are required (D1), and one of --subject, --nhs-number or the "
		    "demographics\n");
		return SS_EXIT_USAGE;
	}
	rq.person = &pr;
	if ((rc = connect_client(&o, &c)) != SS_EXIT_OK)
		return rc;
	rc = ss_call_message(c, "/v1/locate", &rq.base,
	    &safeshare__v1__locate_response__descriptor, &resp, &error, &status, err,
	    sizeof(err));
	ss_client_free(c);
	if (rc == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		return SS_EXIT_NOANSWER;
	}
	if (error != NULL) {
		cli_logged_refusal(status, error, json, "");
		safeshare__v1__error__free_unpacked(error, NULL);
		return SS_EXIT_REFUSED;
	}
	print_located((const Safeshare__V1__LocateResponse *)resp, json);
	protobuf_c_message_free_unpacked(resp, NULL);
	return SS_EXIT_OK;
}
