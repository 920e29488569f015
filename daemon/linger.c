/*
 * A lingering close for a refused handshake (conn.c, info_cb()): the
 * socket is kept on a second descriptor, half-closed, and read to end of
 * file for at most LINGER_SECONDS so that the client reads OpenSSL's fatal
 * alert instead of a reset; at most LINGER_MAX at once, beyond that it
 * closes at once. The sockets are this file's until linger_end() gives
 * them to sockclose_later() (the loop's pending delete first);
 * linger_free_all() ends them at shutdown.
 */
#include <sys/socket.h>

#include <event2/event.h>

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "conn.h"
#include "rate.h"
#include "server.h"
#include "util.h"

#define LINGER_SECONDS	2.0
#define LINGER_MAX	64

struct lingering_sock {
	struct event	*ev;
	evutil_socket_t	 fd;
	double		 until;
};
static struct lingering_sock	*lingering[LINGER_MAX];

static void
linger_end(struct lingering_sock *l)
{
	for (size_t i = 0; i < LINGER_MAX; i++)
		if (lingering[i] == l)
			lingering[i] = NULL;
	struct event_base *base = event_get_base(l->ev);

	event_free(l->ev);
	sockclose_later(base, l->fd);	/* after the loop's pending delete */
	free(l);
}

static void
linger_read(evutil_socket_t fd, short what, void *arg)
{
	struct lingering_sock	*l = arg;
	char		 buf[4096];
	ssize_t		 n = -1;

	if (what & EV_READ)
		while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
			;
	if ((what & EV_TIMEOUT) || n == 0 || mono_seconds() > l->until ||
	    (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		linger_end(l);
}

void
linger_start(struct server *srv, evutil_socket_t fd)
{
	struct timeval	 tv = { (time_t)LINGER_SECONDS, 0 };
	struct lingering_sock	*l;
	size_t		 slot;
	evutil_socket_t	 dfd;

	for (slot = 0; slot < LINGER_MAX && lingering[slot] != NULL; slot++)
		;
	if (slot == LINGER_MAX || fd < 0 || (dfd = dup(fd)) == -1)
		return;
	shutdown(dfd, SHUT_WR);		/* the alert, then our FIN */
	l = xcalloc(1, sizeof(*l));
	l->fd = dfd;
	l->until = mono_seconds() + LINGER_SECONDS;
	if ((l->ev = event_new(srv->base, dfd, EV_READ | EV_PERSIST, linger_read,
	    l)) == NULL || event_add(l->ev, &tv) == -1) {
		if (l->ev != NULL)
			event_free(l->ev);
		close(dfd);
		free(l);
		return;
	}
	lingering[slot] = l;
}

/* At shutdown: the lingering sockets are closed now. */
void
linger_free_all(void)
{
	for (size_t i = 0; i < LINGER_MAX; i++)
		if (lingering[i] != NULL)
			linger_end(lingering[i]);
}
