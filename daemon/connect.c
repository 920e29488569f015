/*
 * The Connect protocol, unary (connect.h). The services and their message
 * types come from the protobuf-c descriptors of proto/safeshare.proto; the
 * JSON mapping from pbjson.c. Which /v1 route serves a method is a
 * column of the route table (routes.c: svc, method).
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "connect.h"
#include "req.h"
#include "log.h"
#include "pbjson.h"
#include "routes.h"
#include "server.h"
#include "wire.h"

#define PREFIX		"/safeshare.v1."

/*
 * safeshare's error codes as Connect codes. Most follow from the /v1 HTTP
 * status (connect_code()); these are the ones that do not.
 */
static const struct {
	const char	*code;
	const char	*connect;
} code_map[] = {
	{ "no_identity", "unauthenticated" },
	{ "unknown_agency", "unauthenticated" },
	{ "tls_required", "unauthenticated" },
	{ "not_found", "unimplemented" },		/* no such endpoint */
	{ "method_not_allowed", "unimplemented" },
	{ "unsupported_media_type", "unimplemented" },
	{ "unsupported_encoding", "unimplemented" },
	{ "connection_closed", "unavailable" },
	{ "audit_unavailable", "unavailable" },
};

/* Connect's codes and their HTTP statuses (connectrpc.com/docs/protocol). */
static const struct {
	const char	*code;
	int		 status;
} http_map[] = {
	{ "canceled", 499 }, { "unknown", 500 }, { "invalid_argument", 400 },
	{ "deadline_exceeded", 504 }, { "not_found", 404 }, { "already_exists", 409 },
	{ "permission_denied", 403 }, { "resource_exhausted", 429 },
	{ "failed_precondition", 400 }, { "aborted", 409 }, { "out_of_range", 400 },
	{ "unimplemented", 501 }, { "internal", 500 }, { "unavailable", 503 },
	{ "data_loss", 500 }, { "unauthenticated", 401 },
};

const char *
connect_code(const char *code, int status)
{
	for (size_t i = 0; code != NULL && i < sizeof(code_map) / sizeof(code_map[0]); i++)
		if (strcmp(code, code_map[i].code) == 0)
			return code_map[i].connect;
	switch (status) {
	case 400:
		return "invalid_argument";
	case 401:
		return "unauthenticated";
	case 403:
		return "permission_denied";
	case 404:
		return "not_found";
	case 409:
		return "aborted";
	case 413:
	case 429:
		return "resource_exhausted";
	case 503:
		return "unavailable";
	case 500:
		return "internal";
	default:
		return "unknown";
	}
}

/* gRPC's status number for a Connect code (the same codes, numbered). */
static int
grpc_status(const char *cc)
{
	static const char *const names[] = { "ok", "canceled", "unknown",
	    "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
	    "permission_denied", "resource_exhausted", "failed_precondition",
	    "aborted", "out_of_range", "unimplemented", "internal", "unavailable",
	    "data_loss", "unauthenticated" };

	for (size_t i = 1; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(cc, names[i]) == 0)
			return (int)i;
	return 2;
}

int
connect_http_status(const char *cc)
{
	for (size_t i = 0; i < sizeof(http_map) / sizeof(http_map[0]); i++)
		if (strcmp(cc, http_map[i].code) == 0)
			return http_map[i].status;
	return 500;
}

/* The request's header, if given exactly once; NULL if absent; *dup if repeated. */
static const char *
header1(struct evhttp_request *req, const char *name, int *dup)
{
	struct evkeyvalq	*h = evhttp_request_get_input_headers(req);
	struct evkeyval		*kv;
	const char		*v = NULL;

	for (kv = h->tqh_first; kv != NULL; kv = kv->next.tqe_next)
		if (evutil_ascii_strcasecmp(kv->key, name) == 0) {
			if (v != NULL)
				*dup = 1;
			v = kv->value;
		}
	return v;
}

/* Whether a media type (parameters after ';' ignored) is want. */
static int
media_is(const char *type, const char *want)
{
	size_t n = strcspn(type, "; \t");

	return n == strlen(want) && evutil_ascii_strncasecmp(type, want, n) == 0;
}

/*
 * gRPC-Web: the body is one uncompressed message frame (flag 0, 4-byte
 * big-endian length, the message); leaves the message alone in the buffer.
 * Returns -1 when it replied.
 */
static int
grpcweb_unframe(struct evhttp_request *req, struct evbuffer *in, size_t len)
{
	unsigned char	h[5];
	size_t		n;

	if (len < 5 || evbuffer_copyout(in, h, 5) != 5) {
		reply_error(req, 400, "malformed_request", "a gRPC-Web body is one "
		    "5-byte frame header and the message", 0);
		return -1;
	}
	n = (size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | h[4];
	if (h[0] & 1) {
		reply_error(req, 400, "unsupported_encoding", "compressed gRPC-Web "
		    "messages are not accepted", 0);
		return -1;
	}
	if (h[0] != 0 || n != len - 5) {
		reply_error(req, 400, "malformed_request", "a unary gRPC-Web request "
		    "is exactly one message frame", 0);
		return -1;
	}
	evbuffer_drain(in, 5);
	return 0;
}

void
connect_route(struct server *srv, struct evhttp_request *req, const char *path,
    struct connect_call *call)
{
	const ProtobufCMethodDescriptor		*md = NULL;
	const struct route			*rt = NULL;
	const char				*slash, *type, *enc, *ver;
	struct evbuffer				*in = evhttp_request_get_input_buffer(req);
	ProtobufCMessage			*m;
	char					 svc[64];
	size_t					 len = evbuffer_get_length(in), n;
	int					 dup = 0;

	memset(call, 0, sizeof(*call));
	/* Until the method is known, errors are Connect errors all the same. */
	call->out = &safeshare__v1__error__descriptor;
	type = header1(req, "Content-Type", &dup);
	call->grpcweb = type != NULL && (media_is(type, "application/grpc-web") ||
	    media_is(type, "application/grpc-web+proto"));
	path += strlen(PREFIX);
	if ((slash = strchr(path, '/')) != NULL &&
	    (n = (size_t)(slash - path)) < sizeof(svc) - strlen("safeshare.v1.")) {
		snprintf(svc, sizeof(svc), "safeshare.v1.%.*s", (int)n, path);
		if ((rt = route_connect(svc, slash + 1)) != NULL)
			md = protobuf_c_service_descriptor_get_method_by_name(rt->svc,
			    rt->method);
	}
	if (md == NULL) {
		reply_error(req, 404, "not_found", "no such method", 0);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		reply_error(req, 405, "method_not_allowed", "use POST", 0);
		return;
	}
	enc = header1(req, "Content-Encoding", &dup);
	ver = header1(req, "Connect-Protocol-Version", &dup);
	if (dup) {
		reply_error(req, 400, "bad_request", "a Connect header given twice", 0);
		return;
	}
	if (!call->grpcweb && (type == NULL || (!media_is(type, "application/proto") &&
	    !media_is(type, "application/json")))) {
		reply_error(req, 415, "unsupported_media_type", "the body must be "
		    "Content-Type: application/proto, application/json or "
		    "application/grpc-web+proto", 0);
		return;
	}
	if (enc != NULL && evutil_ascii_strcasecmp(enc, "identity") != 0) {
		reply_error(req, 400, "unsupported_encoding", "bodies are not "
		    "compressed here (Content-Encoding: identity)", 0);
		return;
	}
	if (ver != NULL && strcmp(ver, "1") != 0) {
		reply_error(req, 400, "bad_request", "Connect-Protocol-Version must be 1", 0);
		return;
	}
	/* JSON is read whole into memory: no more of it than of protobuf. */
	if ((long long)len > (rt->body == BODY_IMPORT ? srv->conf->max_import :
	    srv->conf->max_body)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection",
		    "close");
		reply_error(req, 413, "body_too_large", "the request body is larger "
		    "than this endpoint accepts", 0);
		return;
	}
	call->out = md->output;
	if (call->grpcweb && grpcweb_unframe(req, in, len) == -1)
		return;
	call->json = !call->grpcweb && media_is(type, "application/json");
	if (call->json) {
		m = pbjson_decode(md->input, (const char *)evbuffer_pullup(in, -1), len,
		    call->jsonerr, sizeof(call->jsonerr));
		evbuffer_drain(in, len);
		if (m != NULL) {
			size_t	 plen = protobuf_c_message_get_packed_size(m);
			uint8_t	*buf = xcalloc(plen + 1, 1);

			protobuf_c_message_pack(m, buf);
			evbuffer_add(in, buf, plen);
			free(buf);
			protobuf_c_message_free_unpacked(m, NULL);
			call->jsonerr[0] = '\0';
		} else if (md->input->n_fields == 0) {
			/* No handler reads an empty message: say why here. */
			reply_error(req, 400, "malformed_request", call->jsonerr, 0);
			return;
		} else {
			/*
			 * A body no protobuf decoder takes (a truncated varint),
			 * so the handler refuses it as it refuses a bad /v1
			 * body, logging what it logs; the reply then says what
			 * was wrong with the JSON (connect_reply()).
			 */
			evbuffer_add(in, "\xff", 1);
		}
	}
	route_dispatch(srv, req, rt->path);
}

/* The Connect error for an Error body: {"code", "message", "details"}. */
static char *
error_json(struct connect_call *call, int *status, const uint8_t *body, size_t len,
    size_t *outlen)
{
	Safeshare__V1__Error	*e;
	const char		*cc;
	json_t			*root, *dbg = NULL;
	char			*s, *ej, err[128];
	size_t			 ejlen, plen;
	uint8_t			*packed;
	unsigned char		*b64;

	e = safeshare__v1__error__unpack(NULL, len, body);
	cc = connect_code(e ? e->code : NULL, *status);
	if (e != NULL && call->jsonerr[0] != '\0' &&
	    strcmp(e->code, "malformed_request") == 0) {
		/* The handler's message is about protobuf; the body was JSON. */
		if (e->message != protobuf_c_empty_string)
			free(e->message);
		e->message = xstrdup(call->jsonerr);
	}
	*status = e != NULL && strcmp(e->code, "unsupported_media_type") == 0 ? 415 :
	    connect_http_status(cc);
	root = json_pack("{s:s, s:s}", "code", cc, "message",
	    e != NULL ? e->message : "");
	if (root == NULL)
		goto fail;
	if (e != NULL) {
		/* The whole Error (disclosure id, receipt, problems) as a detail. */
		plen = safeshare__v1__error__get_packed_size(e);
		packed = xcalloc(plen + 1, 1);
		safeshare__v1__error__pack(e, packed);
		b64 = xcalloc(plen / 3 * 4 + 5, 1);
		EVP_EncodeBlock(b64, packed, (int)plen);
		b64[strcspn((char *)b64, "=")] = '\0';	/* Connect: unpadded */
		free(packed);
		if ((ej = pbjson_encode(&e->base, &ejlen, err, sizeof(err))) != NULL)
			dbg = json_loads(ej, 0, NULL);
		free(ej);
		json_object_set_new(root, "details", json_pack("[{s:s, s:s, s:o*}]",
		    "type", "safeshare.v1.Error", "value", (char *)b64, "debug", dbg));
		free(b64);
	}
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (s == NULL)
		goto fail;
	if (e != NULL)
		safeshare__v1__error__free_unpacked(e, NULL);
	*outlen = strlen(s);
	return s;
fail:
	if (e != NULL)
		safeshare__v1__error__free_unpacked(e, NULL);
	*status = 500;
	s = xstrdup("{\"code\":\"internal\",\"message\":\"cannot write the error\"}");
	*outlen = strlen(s);
	return s;
}

/* Appends a gRPC-Web frame (flag, 4-byte length, data) to out at *o. */
static void
frame(uint8_t *out, size_t *o, uint8_t flag, const void *data, size_t n)
{
	out[(*o)++] = flag;
	out[(*o)++] = (uint8_t)(n >> 24);
	out[(*o)++] = (uint8_t)(n >> 16);
	out[(*o)++] = (uint8_t)(n >> 8);
	out[(*o)++] = (uint8_t)n;
	memcpy(out + *o, data, n);
	*o += n;
}

/*
 * gRPC-Web's reply: always HTTP 200; the message frame if there is one,
 * then the trailers (grpc-status, and for an error grpc-message,
 * percent-encoded) in a frame flagged 0x80.
 */
static void
grpcweb_reply(int *status, uint8_t **body, size_t *len)
{
	Safeshare__V1__Error	*e = NULL;
	const char		*msg = "";
	char			 trailer[1024];
	size_t			 t, o = 0;
	uint8_t			*out;
	int			 gs = 0;

	if (*status != 200) {
		e = safeshare__v1__error__unpack(NULL, *len, *body);
		gs = grpc_status(connect_code(e ? e->code : NULL, *status));
		msg = e ? e->message : "";
	}
	t = (size_t)snprintf(trailer, sizeof(trailer), "grpc-status:%d\r\n", gs);
	if (gs != 0) {
		t += (size_t)snprintf(trailer + t, sizeof(trailer) - t, "grpc-message:");
		for (; *msg != '\0' && t + 8 < sizeof(trailer); msg++) {
			unsigned char c = (unsigned char)*msg;

			if (c < 0x20 || c > 0x7e || c == '%')
				t += (size_t)snprintf(trailer + t, sizeof(trailer) - t,
				    "%%%02X", c);
			else
				trailer[t++] = (char)c;
		}
		t += (size_t)snprintf(trailer + t, sizeof(trailer) - t, "\r\n");
	}
	out = xcalloc((gs == 0 ? *len + 5 : 0) + t + 5 + 1, 1);
	if (gs == 0)
		frame(out, &o, 0x00, *body, *len);
	frame(out, &o, 0x80, trailer, t);
	if (e != NULL)
		safeshare__v1__error__free_unpacked(e, NULL);
	free(*body);
	*body = out;
	*len = o;
	*status = 200;
}

void
connect_reply(struct connect_call *call, int *status, uint8_t **body, size_t *len,
    const char **ctype)
{
	ProtobufCMessage	*m;
	char			*s, err[256];
	size_t			 n;

	if (call->grpcweb) {
		grpcweb_reply(status, body, len);
		*ctype = "application/grpc-web+proto";
		call->out = NULL;
		return;
	}

	if (*status != 200) {
		s = error_json(call, status, *body, *len, &n);
		*ctype = "application/json";
		goto done;
	}
	*ctype = call->json ? "application/json" : "application/proto";
	if (!call->json) {
		call->out = NULL;
		return;
	}
	snprintf(err, sizeof(err), "not a %s", call->out->name);
	m = protobuf_c_message_unpack(call->out, NULL, *len, *body);
	s = m ? pbjson_encode(m, &n, err, sizeof(err)) : NULL;
	protobuf_c_message_free_unpacked(m, NULL);
	if (s == NULL) {
		/* Names only in err (pbjson.h): no value reaches the log. */
		log_warnx("event=connect_encode_failed type=%s why=\"%s\"",
		    call->out->name, err);
		*status = 500;
		*ctype = "application/json";
		s = xstrdup("{\"code\":\"internal\",\"message\":\"the reply cannot be "
		    "written as JSON\"}");
		n = strlen(s);
	}
done:
	free(*body);
	*body = (uint8_t *)s;
	*len = n;
	call->out = NULL;
}
