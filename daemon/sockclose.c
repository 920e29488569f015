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
 *
 * The same filter reads ahead (sockclose_read_ahead()): OpenSSL without
 * read-ahead reads a record's 5-byte header and then its body, two
 * read(2)s per request; with SSL_set_read_ahead() one read takes what the
 * socket holds (up to OpenSSL's record buffer). After a read the filter
 * answers "retry" to further reads without a system call (libevent asks
 * again for the rest of its buffer space, which was a read(2) returning
 * EAGAIN) until the loop has finished the callbacks it is running (the
 * recheck event): one read(2) per connection per round. Nothing can be
 * lost by that: bytes still in the socket, or arriving meanwhile, stay in
 * the kernel, and the loop's epoll is level-triggered, so the next round
 * reports the socket again. What can stall is different: records OpenSSL
 * read ahead and holds, which libevent 2.1's TLS bufferevent never looks
 * for (it takes one record per read event: it drains only SSL_pending(),
 * the record in hand) and epoll cannot report (the socket may be empty).
 * So after every read the recheck event runs, once the callbacks in hand
 * are done, and while OpenSSL still holds bytes (SSL_has_pending()) and
 * the bufferevent is reading, runs its read event again, for as long as
 * each run hands the bufferevent bytes; and where reading starts again
 * after a pause (the reply is out: conn.c's reply_sent()),
 * sockclose_recheck() does the same.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
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
static int		 hide_type;	/* its BIO_method_type() */

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

/*
 * A connection's filter state: the loop thread's, freed with the BIO
 * (that is, with the connection's SSL).
 */
struct hide {
	struct bufferevent	*bev;		/* NULL: no read-ahead */
	struct event		*recheck;	/* active after a read */
	struct evbuffer_cb_entry *counter;	/* on bev's input: added */
	size_t			 added;		/* bytes into bev's input, ever */
	size_t			 seen;		/* added when recheck last ran bev */
	struct event		*hold;		/* EV_READ on the socket, see hold() */
	int			 drained;	/* read this round: no more read(2) */
	int			 again;		/* recheck runs after bev's read */
};

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
	struct hide	*h = BIO_get_data(b);
	int		 n;

	BIO_clear_retry_flags(b);
	if (h != NULL && h->drained) {
		BIO_set_retry_read(b);
		return -1;
	}
	n = BIO_read(BIO_next(b), buf, len);
	BIO_copy_next_retry(b);
	/*
	 * One read(2) a connection per round: what the socket still holds
	 * (a full read) or gets meanwhile, epoll reports next round.
	 */
	if (h != NULL && (n > 0 || BIO_should_retry(b))) {
		h->drained = 1;
		h->again = 0;
		event_active(h->recheck, EV_TIMEOUT, 1);
	}
	return n;
}

/* Counts what OpenSSL hands the bufferevent: recheck()'s progress. */
static void
count_added(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct hide *h = arg;

	(void)buf;
	h->added += info->n_added;
}

/*
 * The callbacks of the round that read are done: the next read may need
 * the socket again, and bytes OpenSSL read ahead are handed to the
 * bufferevent if it is reading (its read event is pending: enabled and
 * not held back by a watermark). The event is struct bufferevent's own
 * (event2/bufferevent_struct.h); running it is what a readable socket
 * does. The bufferevent takes one record a run (it drains only
 * SSL_pending()), so this runs again after it, for as long as each run
 * hands it bytes: a partial record in OpenSSL's buffer makes no progress,
 * and waits for the socket, which epoll reports.
 */
static void
recheck(evutil_socket_t unused, short what, void *arg)
{
	struct hide	*h = arg;
	SSL		*ssl = bufferevent_openssl_get_ssl(h->bev);
	int		 again = h->again;

	(void)unused;
	(void)what;
	h->again = 0;
	if (ssl == NULL || !SSL_has_pending(ssl) ||
	    !event_pending(&h->bev->ev_read, EV_READ, NULL) ||
	    (again && h->added == h->seen)) {
		h->drained = 0;		/* this round's reading is done */
		return;
	}
	h->seen = h->added;
	event_active(&h->bev->ev_read, EV_READ, 1);
	h->again = 1;
	event_active(h->recheck, EV_TIMEOUT, 1);
}

/*
 * evhttp stops reading when a request is in and a disclosure starts again
 * at once (disclose.c): the change list makes that pair one
 * EPOLL_CTL_MOD, every request. A second read event on the socket, this
 * one, keeps the descriptor's epoll interest while the bufferevent's own
 * comes and goes, so the pair changes nothing in the kernel. It reads
 * nothing: when it fires while the bufferevent is not reading (a reply
 * still being made, a watermark), bytes wait in the socket and it steps
 * aside, once, so that a level-triggered epoll does not report them
 * round after round; sockclose_recheck() puts it back after the reply.
 */
static void
hold(evutil_socket_t unused, short what, void *arg)
{
	struct hide *h = arg;

	(void)unused;
	(void)what;
	if (!event_pending(&h->bev->ev_read, EV_READ, NULL))
		event_del(h->hold);
}

/* Reading starts again (conn.c): see whether OpenSSL holds a request. */
void
sockclose_recheck(SSL *ssl)
{
	BIO		*b = ssl != NULL ? SSL_get_rbio(ssl) : NULL;
	struct hide	*h;

	if (b != NULL && hide_method != NULL && BIO_method_type(b) == hide_type &&
	    (h = BIO_get_data(b)) != NULL) {
		h->again = 0;
		event_active(h->recheck, EV_TIMEOUT, 1);
		if (!event_pending(h->hold, EV_READ, NULL))
			event_add(h->hold, NULL);
	}
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

static int
hide_destroy(BIO *b)
{
	struct hide *h = BIO_get_data(b);

	/* In the bufferevent's destructor (SSL_free()): its input is whole. */
	if (h != NULL) {
		evbuffer_remove_cb_entry(bufferevent_get_input(h->bev), h->counter);
		event_free(h->recheck);
		event_free(h->hold);
		free(h);
		BIO_set_data(b, NULL);
	}
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
	    ((hide_method = BIO_meth_new(hide_type = BIO_get_new_index() |
	    BIO_TYPE_FILTER, "safeshared socket")) == NULL ||
	    !BIO_meth_set_write(hide_method, hide_write) ||
	    !BIO_meth_set_read(hide_method, hide_read) ||
	    !BIO_meth_set_ctrl(hide_method, hide_ctrl) ||
	    !BIO_meth_set_create(hide_method, hide_create) ||
	    !BIO_meth_set_destroy(hide_method, hide_destroy)))
		fatalx("%s: cannot make the socket filter", __func__);
	if ((hide = BIO_new(hide_method)) == NULL || !BIO_up_ref(sock))
		fatalx("%s: out of memory", __func__);
	/* The chain holds the socket BIO's new reference; the SSL the chain. */
	BIO_push(hide, sock);
	SSL_set_bio(ssl, hide, hide);
	return fd;
}

/*
 * Reads ahead on a connection sockclose_wrap() has wrapped (see the top
 * of this file): one read(2) takes what the socket holds.
 */
void
sockclose_read_ahead(struct bufferevent *bev)
{
	SSL		*ssl = bufferevent_openssl_get_ssl(bev);
	BIO		*b = ssl != NULL ? SSL_get_rbio(ssl) : NULL;
	struct hide	*h;

	if (b == NULL || hide_method == NULL || BIO_method_type(b) != hide_type ||
	    BIO_get_data(b) != NULL)
		return;
	h = xcalloc(1, sizeof(*h));
	h->bev = bev;
	if ((h->recheck = event_new(bufferevent_get_base(bev), -1, 0, recheck,
	    h)) == NULL || (h->counter = evbuffer_add_cb(bufferevent_get_input(bev),
	    count_added, h)) == NULL ||
	    (h->hold = event_new(bufferevent_get_base(bev), bufferevent_getfd(bev),
	    EV_READ | EV_PERSIST, hold, h)) == NULL || event_add(h->hold, NULL) == -1)
		fatalx("%s: out of memory", __func__);
	BIO_set_data(b, h);
	SSL_set_read_ahead(ssl, 1);
}
