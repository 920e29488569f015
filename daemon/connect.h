/*
 * The Connect protocol, unary (issue 20; docs/api.md, "Connect"):
 * POST /safeshare.v1.<Service>/<Method> with an application/proto or
 * application/json body, served by the same handler as the method's /v1
 * route. gRPC-Web (application/grpc-web+proto) on the same paths too. The request body is turned into the /v1 protobuf body before the
 * handler runs and its reply back into the caller's codec after, so the
 * handlers do not know which protocol they answer.
 */
#ifndef SAFESHARED_CONNECT_H
#define SAFESHARED_CONNECT_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct evhttp_request;
struct server;

/*
 * The Connect call a connection is answering, kept in the connection from
 * connect_route() to the reply (HTTP/1.1 answers one request at a time).
 */
struct connect_call {
	const ProtobufCMessageDescriptor *out;	/* reply type; NULL: not Connect */
	int		 json;			/* application/json, else proto */
	int		 grpcweb;		/* application/grpc-web+proto */
	char		 jsonerr[256];		/* why the JSON body was refused */
};

/*
 * Serves a Connect path: checks the method, Content-Type and encoding,
 * turns a JSON body into protobuf, then hands the request to the /v1
 * route through route_dispatch() (routes.h). Every reply goes through reply(),
 * which calls connect_reply() while call->out is set.
 */
void		 connect_route(struct server *, struct evhttp_request *,
		    const char *path, struct connect_call *call);

/*
 * Rewrites a reply for the call: 200 bodies into the call's codec, error
 * bodies (a safeshare.v1.Error) into Connect's JSON error with its HTTP
 * status (gRPC-Web: a message frame and a trailer frame, status 200). *body is replaced (the old one freed) when it changes; *ctype
 * is set to the reply's Content-Type. Clears call->out.
 */
void		 connect_reply(struct connect_call *call, int *status, uint8_t **body,
		    size_t *len, const char **ctype);

/* The Connect code for a safeshare error code and its /v1 HTTP status. */
const char	*connect_code(const char *code, int status);
/* The HTTP status Connect gives a Connect code (500 for an unknown one). */
int		 connect_http_status(const char *connect_code);

#endif
