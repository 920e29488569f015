/*
 * A tiny mutual-TLS HTTP receiver for the notifier's tests (issue 18 item
 * 3), loopback only: notify_sink DIR CERT KEY CA PORT (PORT 0: a free one).
 * It writes the port it bound to DIR/sink.port, and before each POST reads
 * DIR/sink.mode: "ok" (or no file) answers 200 and appends the body and a
 * newline to DIR/sink.out, "500" answers 500 and keeps nothing, "hang"
 * never answers. "hostile" and "hostile_bare" play a hostile daemon for
 * the CLI's tests (issue 16): every request is refused (403) with a
 * safeshare.v1.Error whose code and message carry terminal escapes, or
 * whose code does and which has no message. The test stops it by its pid ("down") and starts it again
 * on the same port. A client certificate that does not chain to CA gets no
 * HTTP at all.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safeshare/safeshare.pb-c.h"
#include "tls.h"

static char	dir[512];

static void
mode_of(char *mode, size_t len)
{
	char	 path[600];
	FILE	*fp;

	snprintf(mode, len, "ok");
	snprintf(path, sizeof(path), "%s/sink.mode", dir);
	if ((fp = fopen(path, "r")) == NULL)
		return;
	if (fgets(mode, (int)len, fp) == NULL)
		snprintf(mode, len, "ok");
	mode[strcspn(mode, "\n")] = '\0';
	fclose(fp);
}

/* A refusal whose text would drive the terminal if printed raw. */
static void
refuse_hostile(struct evhttp_request *req, int bare)
{
	Safeshare__V1__Error	 e = SAFESHARE__V1__ERROR__INIT;
	struct evbuffer		*out = evhttp_request_get_output_buffer(req);
	uint8_t			*buf;
	size_t			 len;

	e.code = "denied\x1b[2J\x1b]0;pwned\x07";
	e.message = bare ? NULL : "clear\x1b[2J\x1b[31mscreen\r\x1b[K";
	len = safeshare__v1__error__get_packed_size(&e);
	if ((buf = malloc(len + 1)) == NULL) {
		evhttp_send_reply(req, 500, "Internal Server Error", NULL);
		return;
	}
	safeshare__v1__error__pack(&e, buf);
	evbuffer_add(out, buf, len);
	free(buf);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/x-protobuf");
	evhttp_send_reply(req, 403, "Forbidden", NULL);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct evbuffer	*in = evhttp_request_get_input_buffer(req);
	char		 mode[32], path[600];
	FILE		*fp;

	(void)arg;
	mode_of(mode, sizeof(mode));
	if (strcmp(mode, "hang") == 0)
		return;		/* never answered: the notifier must time out */
	if (strncmp(mode, "hostile", 7) == 0) {
		refuse_hostile(req, strcmp(mode, "hostile_bare") == 0);
		return;
	}
	if (strcmp(mode, "500") == 0) {
		evhttp_send_reply(req, 500, "Internal Server Error", NULL);
		return;
	}
	snprintf(path, sizeof(path), "%s/sink.out", dir);
	if ((fp = fopen(path, "a")) != NULL) {
		fwrite(evbuffer_pullup(in, -1), 1, evbuffer_get_length(in), fp);
		fputc('\n', fp);
		fclose(fp);
	}
	evhttp_send_reply(req, 200, "OK", NULL);
}

static struct bufferevent *
on_conn(struct event_base *base, void *arg)
{
	SSL *ssl = SSL_new(arg);

	return bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

int
main(int argc, char **argv)
{
	struct event_base		*base;
	struct evhttp			*http;
	struct evhttp_bound_socket	*bound;
	struct sockaddr_in		 sin;
	socklen_t			 slen = sizeof(sin);
	SSL_CTX				*ctx;
	char				 err[512], path[600], final[600];
	FILE				*fp;

	if (argc != 6) {
		fprintf(stderr, "usage: notify_sink DIR CERT KEY CA PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "%s", argv[1]);
	if ((ctx = tls_server_ctx(argv[2], argv[3], argv[4], NULL, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "notify_sink: %s\n", err);
		return 1;
	}
	base = event_base_new();
	http = evhttp_new(base);
	evhttp_set_bevcb(http, on_conn, ctx);
	evhttp_set_gencb(http, on_request, NULL);
	if ((bound = evhttp_bind_socket_with_handle(http, "127.0.0.1",
	    (unsigned short)atoi(argv[5]))) == NULL) {
		fprintf(stderr, "notify_sink: cannot bind port %s\n", argv[5]);
		return 1;
	}
	getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sin, &slen);
	snprintf(path, sizeof(path), "%s/sink.port.tmp", dir);
	if ((fp = fopen(path, "w")) == NULL)
		return 1;
	fprintf(fp, "%d\n", ntohs(sin.sin_port));
	fclose(fp);
	snprintf(final, sizeof(final), "%s/sink.port", dir);
	rename(path, final);
	event_base_dispatch(base);
	return 0;
}
