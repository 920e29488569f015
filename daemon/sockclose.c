/*
 * When the loop's sockets are closed (docs/hacking.md "Races"). The loop's
 * event base uses libevent's epoll change list (server.c): interest
 * changes made while callbacks run, a closed connection's EPOLL_CTL_DEL
 * among them, reach the kernel at the start of the next round, in one
 * epoll_ctl(2) per descriptor. So a descriptor the loop has registered
 * must stay open until then: closed earlier, its number may be reused by
 * another thread (the notifier's receiver socket, a log or store file)
 * and the late epoll_ctl() would act on that thread's descriptor; and
 * with a dup() of it open (linger.c) the registration would outlive the
 * close.
 *
 * Two sockets end on the loop: a connection's, which libevent's TLS
 * bufferevent would close as soon as it is freed, and a lingering one
 * (linger.c). A connection's socket is hidden from the bufferevent behind
 * a filter BIO that answers BIO_get_fd() with -1 (sockclose_wrap()), so
 * the bufferevent closes nothing; conn_freed() hands the socket here, and
 * so does linger_end(). sockclose_later() keeps them, and a zero-second
 * timer closes them: timers run after the next round's epoll_ctl()s, so
 * by then no change for them is pending. The kept descriptors are this
 * file's, owned by the loop's thread only; sockclose_stop() closes them
 * at shutdown, and after it sockclose_later() closes at once (the loop
 * no longer runs, so nothing is pending).
 */
#include <event2/event.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <stdlib.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "util.h"

static evutil_socket_t	*pending;	/* to close after the next round */
static size_t		 npending, cappending;
static struct event	*closer;	/* on the loop's base, zero seconds */
static int		 stopped;

static BIO_METHOD	*hide_method;	/* made once, kept for the process */

static void
close_pending(evutil_socket_t unused, short what, void *arg)
{
	(void)unused;
	(void)what;
	(void)arg;
	for (size_t i = 0; i < npending; i++)
		close(pending[i]);
	npending = 0;
}

/*
 * Closes fd, a socket the loop's base may still have a pending epoll
 * change for, once that change is made: after the next round's dispatch.
 */
void
sockclose_later(struct event_base *base, evutil_socket_t fd)
{
	static const struct timeval	 now = { 0, 0 };

	if (fd < 0)
		return;
	if (stopped) {
		close(fd);
		return;
	}
	if (closer == NULL && (closer = evtimer_new(base, close_pending,
	    NULL)) == NULL)
		fatalx("%s: out of memory", __func__);
	if (npending == cappending) {
		size_t	 n = cappending == 0 ? 64 : cappending * 2;
		void	*p;

		if ((p = reallocarray(pending, n, sizeof(*pending))) == NULL)
			fatalx("%s: out of memory", __func__);
		pending = p;
		cappending = n;
	}
	pending[npending++] = fd;
	if (npending == 1)
		evtimer_add(closer, &now);
}

/* At shutdown, before the connections are freed: close what is kept. */
void
sockclose_stop(void)
{
	close_pending(-1, 0, NULL);
	free(pending);
	pending = NULL;
	cappending = 0;
	if (closer != NULL)
		event_free(closer);
	closer = NULL;
	stopped = 1;
}

/* The filter passes reads, writes and controls to the socket BIO ... */
static int
hide_write(BIO *b, const char *buf, int len)
{
	int	 n;

	BIO_clear_retry_flags(b);
	n = BIO_write(BIO_next(b), buf, len);
	BIO_copy_next_retry(b);
	return n;
}

static int
hide_read(BIO *b, char *buf, int len)
{
	int	 n;

	BIO_clear_retry_flags(b);
	n = BIO_read(BIO_next(b), buf, len);
	BIO_copy_next_retry(b);
	return n;
}

/* ... except BIO_get_fd(): no descriptor, so the bufferevent closes none. */
static long
hide_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	if (cmd == BIO_C_GET_FD)
		return -1;
	return BIO_ctrl(BIO_next(b), cmd, num, ptr);
}

static int
hide_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

/*
 * Puts the filter in front of the connection's socket BIO (after evhttp
 * has given the bufferevent its socket, before any TLS byte is read).
 * Returns the socket, which the caller now closes, with sockclose_later();
 * -1 if the SSL has no socket yet (then nothing changes).
 * SSL_get_fd() still finds the socket, through the chain.
 */
evutil_socket_t
sockclose_wrap(SSL *ssl)
{
	BIO		*sock, *hide;
	evutil_socket_t	 fd;

	if ((sock = SSL_get_rbio(ssl)) == NULL || sock != SSL_get_wbio(ssl) ||
	    BIO_method_type(sock) != BIO_TYPE_SOCKET ||
	    (fd = (evutil_socket_t)BIO_get_fd(sock, NULL)) < 0)
		return -1;
	if (hide_method == NULL &&
	    ((hide_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER,
	    "safeshared socket")) == NULL ||
	    !BIO_meth_set_write(hide_method, hide_write) ||
	    !BIO_meth_set_read(hide_method, hide_read) ||
	    !BIO_meth_set_ctrl(hide_method, hide_ctrl) ||
	    !BIO_meth_set_create(hide_method, hide_create)))
		fatalx("%s: cannot make the socket filter", __func__);
	if ((hide = BIO_new(hide_method)) == NULL || !BIO_up_ref(sock))
		fatalx("%s: out of memory", __func__);
	/* The chain holds the socket BIO's new reference; the SSL the chain. */
	BIO_push(hide, sock);
	SSL_set_bio(ssl, hide, hide);
	return fd;
}
