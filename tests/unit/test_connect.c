/*
 * The Connect protocol's replies (daemon/connect.c, issue 20): error
 * bodies become Connect's JSON error with the safeshare Error as a detail,
 * 200 bodies the caller's codec, and the code table in docs/api.md is the
 * one the code applies, row by row; gRPC-Web replies are framed.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connect.h"
#include "pbjson.h"
#include "routes.h"
#include "safeshare.pb-c.h"
#include "util.h"
#include "wire.h"

/* connect_route() is tested over the network (connect_clients.sh); these
 * stand in for the server it calls. */
void	reply_error(struct evhttp_request *, int, const char *, const char *, uint64_t);
void
reply_error(struct evhttp_request *req, int status, const char *code, const char *msg,
    uint64_t id)
{
	(void)req, (void)status, (void)code, (void)msg, (void)id;
	cr_assert_fail("not called here");
}

void
route_dispatch(struct server *srv, struct evhttp_request *req, const char *path)
{
	(void)srv, (void)req, (void)path;
	cr_assert_fail("not called here");
}

const struct route *
route_connect(const char *svc, const char *method)
{
	(void)svc, (void)method;
	cr_assert_fail("not called here");
	return NULL;
}

static uint8_t *
error_body(const char *code, const char *msg, uint64_t id, size_t *len)
{
	return wire_error_encode(code, msg, id, NULL, len);
}

Test(connect, error_body_and_status)
{
	struct connect_call	 call = { .out = &safeshare__v1__audit_entries__descriptor };
	const char		*ctype = NULL;
	size_t			 len;
	uint8_t			*body = error_body("not_auditor", "needs the auditor role", 42,
				    &len);
	int			 status = 403;
	json_t			*j, *d;
	json_error_t		 je;
	unsigned char		 raw[256];
	const char		*v;
	int			 n;
	Safeshare__V1__Error	*e;

	connect_reply(&call, &status, &body, &len, &ctype);
	cr_expect_eq(status, 403);
	cr_expect_str_eq(ctype, "application/json");
	cr_expect_null(call.out, "the call is over");
	j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
	cr_assert_not_null(j, "%s", je.text);
	cr_expect_str_eq(json_string_value(json_object_get(j, "code")), "permission_denied");
	cr_expect_str_eq(json_string_value(json_object_get(j, "message")),
	    "needs the auditor role");
	d = json_array_get(json_object_get(j, "details"), 0);
	cr_assert_not_null(d);
	cr_expect_str_eq(json_string_value(json_object_get(d, "type")), "safeshare.v1.Error");
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(d, "debug"),
	    "disclosureId")), "42");
	/* The detail is the Error itself, base64 without padding. */
	v = json_string_value(json_object_get(d, "value"));
	cr_assert_not_null(v);
	cr_expect_null(strchr(v, '='));
	{
		char	padded[256];
		size_t	vl = strlen(v), pad = (4 - vl % 4) % 4;

		cr_assert_lt(vl + pad, sizeof(padded));
		memcpy(padded, v, vl);
		memset(padded + vl, '=', pad);
		n = EVP_DecodeBlock(raw, (unsigned char *)padded, (int)(vl + pad));
		cr_assert_gt(n, 0);
		n -= (int)pad;
	}
	e = safeshare__v1__error__unpack(NULL, (size_t)n, raw);
	cr_assert_not_null(e);
	cr_expect_str_eq(e->code, "not_auditor");
	cr_expect_eq(e->disclosure_id, 42);
	safeshare__v1__error__free_unpacked(e, NULL);
	json_decref(j);
	free(body);
}

/* A JSON body the handler refused as malformed: the reply says why in JSON terms. */
Test(connect, json_error_message)
{
	struct connect_call	 call = { .out = &safeshare__v1__disclosure_response__descriptor,
				    .json = 1 };
	const char		*ctype = NULL;
	size_t			 len;
	uint8_t			*body = error_body("malformed_request", "the body is not a "
				    "valid safeshare.v1.DisclosureRequest", 7, &len);
	int			 status = 400;

	snprintf(call.jsonerr, sizeof(call.jsonerr), "unknown field \"purpse\" in "
	    "safeshare.v1.DisclosureRequest");
	connect_reply(&call, &status, &body, &len, &ctype);
	cr_expect_eq(status, 400);
	cr_expect(strstr((char *)body, "\"code\":\"invalid_argument\",\"message\":"
	    "\"unknown field \\\"purpse\\\" in safeshare.v1.DisclosureRequest\"") != NULL,
	    "%s", (char *)body);
	cr_expect(strstr((char *)body, "\"disclosureId\":\"7\"") != NULL, "%s", (char *)body);
	free(body);
}

Test(connect, success_json_and_proto)
{
	Safeshare__V1__ReviewResult	 r = SAFESHARE__V1__REVIEW_RESULT__INIT;
	struct connect_call		 call = { .out = &safeshare__v1__review_result__descriptor,
					    .json = 1 };
	const char			*ctype = NULL;
	size_t				 len;
	uint8_t				*body;
	int				 status = 200;

	r.disclosure_id = 18446744073709551615ULL;
	len = safeshare__v1__review_result__get_packed_size(&r);
	body = xcalloc(len + 1, 1);
	safeshare__v1__review_result__pack(&r, body);
	connect_reply(&call, &status, &body, &len, &ctype);
	cr_expect_eq(status, 200);
	cr_expect_str_eq(ctype, "application/json");
	cr_expect_eq(len, strlen("{\"disclosureId\":\"18446744073709551615\"}"));
	cr_expect(memcmp(body, "{\"disclosureId\":\"18446744073709551615\"}", len) == 0);
	free(body);

	/* application/proto: the /v1 bytes, untouched. */
	call.out = &safeshare__v1__review_result__descriptor;
	call.json = 0;
	len = safeshare__v1__review_result__get_packed_size(&r);
	body = xcalloc(len + 1, 1);
	safeshare__v1__review_result__pack(&r, body);
	{
		uint8_t *same = body;

		connect_reply(&call, &status, &body, &len, &ctype);
		cr_expect_eq(body, same);
	}
	cr_expect_str_eq(ctype, "application/proto");
	cr_expect_eq(len, 11);
	free(body);
}

/* A reply that cannot be JSON is a Connect internal error, not broken JSON. */
Test(connect, success_not_utf8)
{
	Safeshare__V1__ReloadResult	 r = SAFESHARE__V1__RELOAD_RESULT__INIT;
	struct connect_call		 call = { .out = &safeshare__v1__reload_result__descriptor,
					    .json = 1 };
	const char			*ctype = NULL;
	size_t				 len;
	uint8_t				*body;
	int				 status = 200;

	r.protocol_id = "bad\xff";
	len = safeshare__v1__reload_result__get_packed_size(&r);
	body = xcalloc(len + 1, 1);
	safeshare__v1__reload_result__pack(&r, body);
	connect_reply(&call, &status, &body, &len, &ctype);
	cr_expect_eq(status, 500);
	cr_expect_str_eq(ctype, "application/json");
	cr_expect(strstr((char *)body, "\"code\":\"internal\"") != NULL);
	free(body);
}

/*
 * docs/api.md's table, row by row: every `code` (status) in the first
 * column gets the Connect code of the second and the HTTP status of the third.
 */
Test(connect, docs_table)
{
	char	*doc, *p, *line;
	size_t	 len;
	int	 rows = 0, codes = 0;

	doc = file_read(SOURCE_DIR "/docs/api.md", 1 << 22, &len, NULL, NULL, 0);
	cr_assert_not_null(doc);
	p = strstr(doc, "| safeshare code (`/v1` status) | Connect code | HTTP |");
	cr_assert_not_null(p, "the table is gone from docs/api.md");
	p = strchr(p, '\n') + 1;
	p = strchr(p, '\n') + 1;	/* |---|---|---| */
	while ((line = p) != NULL && line[0] == '|') {
		char	*eol = strchr(line, '\n'), *c2, *c3, cc[32];
		int	 http = 0, status = 0;

		cr_assert_not_null(eol);
		*eol = '\0';
		p = eol + 1;
		c2 = strstr(line + 1, " | ");
		if (c2 == NULL || sscanf(c2, " | `%31[a-z_]` | %d |", cc, &http) != 2)
			continue;	/* the "any other code" row */
		c3 = c2;
		*c3 = '\0';
		rows++;
		/* Each `code` and the (status) that follows its group. */
		for (char *q = line; (q = strchr(q, '`')) != NULL; ) {
			char	 code[64], *end = strchr(q + 1, '`'), *paren;

			cr_assert_not_null(end);
			snprintf(code, sizeof(code), "%.*s", (int)(end - q - 1), q + 1);
			q = end + 1;
			if ((paren = strchr(q, '(')) != NULL)
				status = atoi(paren + 1);
			if (strcmp(code, "invalid_FIELD") == 0)
				snprintf(code, sizeof(code), "invalid_practitioner");
			if (code[0] == '\0' || strspn(code, "abcdefghijklmnopqrstuvwxyz_") !=
			    strlen(code))
				continue;	/* `/v1`, `Retry-After: 1` */
			if (status < 100)	/* no /v1 status: Connect's own refusals */
				status = 400;
			codes++;
			cr_expect_str_eq(connect_code(code, status), cc, "%s (%d)", code, status);
			if (strcmp(code, "unsupported_media_type") != 0)
				cr_expect_eq(connect_http_status(cc), http, "%s", cc);
		}
	}
	cr_expect_geq(rows, 9);
	cr_expect_geq(codes, 40);
	free(doc);
}

/* gRPC-Web: HTTP 200 always; a message frame, then a trailer frame. */
Test(connect, grpcweb_frames)
{
	Safeshare__V1__ReviewResult	 r = SAFESHARE__V1__REVIEW_RESULT__INIT;
	struct connect_call		 call = { .out = &safeshare__v1__review_result__descriptor,
					    .grpcweb = 1 };
	const char			*ctype = NULL;
	const char			*want = "grpc-status:0\r\n";
	size_t				 len, n;
	uint8_t				*body;
	int				 status = 200;

	r.disclosure_id = 300;
	n = safeshare__v1__review_result__get_packed_size(&r);	/* 08 ac 02 */
	body = xcalloc(n + 1, 1);
	safeshare__v1__review_result__pack(&r, body);
	len = n;
	connect_reply(&call, &status, &body, &len, &ctype);
	cr_expect_eq(status, 200);
	cr_expect_str_eq(ctype, "application/grpc-web+proto");
	cr_assert_eq(len, 5 + n + 5 + strlen(want));
	cr_expect(memcmp(body, "\x00\x00\x00\x00\x03\x08\xac\x02", 8) == 0);
	cr_expect_eq(body[8], 0x80);
	cr_expect_eq(body[12], strlen(want));
	cr_expect(memcmp(body + 13, want, strlen(want)) == 0);
	free(body);

	call.out = &safeshare__v1__review_result__descriptor;
	status = 403;
	body = error_body("not_guardian", "100% needs the guardian", 9, &len);
	connect_reply(&call, &status, &body, &len, &ctype);
	cr_expect_eq(status, 200, "gRPC-Web errors travel in the trailers");
	want = "grpc-status:7\r\ngrpc-message:100%25 needs the guardian\r\n";
	cr_assert_eq(len, 5 + strlen(want));
	cr_expect_eq(body[0], 0x80);
	cr_expect(memcmp(body + 5, want, strlen(want)) == 0, "%.*s", (int)len - 5,
	    (char *)body + 5);
	free(body);
}
