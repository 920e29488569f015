/*
 * When the loop's sockets are closed (daemon/sockclose.c). The loop's base
 * has libevent's epoll change list, which makes a freed connection's
 * EPOLL_CTL_DEL at the start of the next round; the socket must still be
 * open then (docs/hacking.md "Races"). These tests free a TLS bufferevent
 * from inside a callback, as evhttp does, with a dup() of its socket open,
 * as linger.c keeps one, and read the kernel's list of what the epoll
 * instance watches (/proc/self/fdinfo). Closed at once, as libevent's
 * bufferevent closes it, the socket's registration outlives it there.
 */
#include <sys/socket.h>

#include <criterion/criterion.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"

/* The epoll descriptors open now, as a bit set of numbers below 1024. */
static void
epoll_fds(unsigned char set[128])
{
	DIR		*d = opendir("/proc/self/fd");
	struct dirent	*e;
	char		 path[300], target[64];
	ssize_t		 n;

	memset(set, 0, 128);
	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		if ((n = readlink(path, target, sizeof(target) - 1)) <= 0 || fd >= 1024)
			continue;
		target[n] = '\0';
		if (strcmp(target, "anon_inode:[eventpoll]") == 0)
			set[fd / 8] |= (unsigned char)(1u << (fd % 8));
	}
	closedir(d);
}

/* The base's epoll descriptor: the one not open before it was made. */
static int
base_epfd(const unsigned char before[128])
{
	unsigned char	 now[128];
	int		 found = -1;

	epoll_fds(now);
	for (int fd = 0; fd < 1024; fd++)
		if ((now[fd / 8] & (1u << (fd % 8))) &&
		    !(before[fd / 8] & (1u << (fd % 8)))) {
			cr_assert_eq(found, -1, "one new epoll instance");
			found = fd;
		}
	cr_assert_neq(found, -1);
	return found;
}

/* Does the epoll instance epfd watch descriptor number fd? */
static int
watches(int epfd, int fd)
{
	char	 path[64], line[256];
	FILE	*fp;
	int	 tfd, found = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	cr_assert_not_null(fp = fopen(path, "r"));
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "tfd: %d", &tfd) == 1 && tfd == fd)
			found = 1;
	fclose(fp);
	return found;
}

static int
is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

/* One round of the loop: changes applied, then what is due runs. */
static void
round_of(struct event_base *base)
{
	cr_assert_neq(event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), -1);
}

struct fixture {
	struct event_base	*base;
	struct bufferevent	*bev;
	SSL_CTX			*ctx;
	int			 wrap;		/* sockclose_wrap() the SSL */
	int			 fd;		/* the connection's socket */
};

/* Frees the connection from inside a callback, as evhttp does on EOF. */
static void
free_conn(evutil_socket_t unused, short what, void *arg)
{
	struct fixture *f = arg;

	(void)unused;
	(void)what;
	bufferevent_free(f->bev);
	/* conn_freed() runs in this round too (the bufferevent's finalizer). */
	if (f->wrap)
		sockclose_later(f->base, f->fd);
}

static void
run(int wrap, int *still_watched, int *open_after_free, int *open_after)
{
	struct event_config	*cfg = event_config_new();
	struct fixture		 f = { .wrap = wrap };
	unsigned char		 before[128];
	struct event		*kill;
	SSL			*ssl;
	int			 sv[2], epfd, dfd;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	evutil_make_socket_nonblocking(sv[0]);
	f.fd = sv[0];
	epoll_fds(before);
	event_config_set_flag(cfg, EVENT_BASE_FLAG_IGNORE_ENV |
	    EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	cr_assert_not_null(f.base = event_base_new_with_config(cfg));
	event_config_free(cfg);
	epfd = base_epfd(before);
	cr_assert_not_null(f.ctx = SSL_CTX_new(TLS_server_method()));
	cr_assert_not_null(ssl = SSL_new(f.ctx));
	/* As conn_bev() and then evhttp make it. */
	cr_assert_not_null(f.bev = bufferevent_openssl_socket_new(f.base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE));
	cr_assert_eq(bufferevent_setfd(f.bev, sv[0]), 0);
	cr_assert_eq(bufferevent_enable(f.bev, EV_READ), 0);
	if (wrap)
		cr_assert_eq(sockclose_wrap(ssl), sv[0]);
	cr_assert_eq(SSL_get_fd(ssl), sv[0], "SSL_get_fd() sees the socket");
	round_of(f.base);
	cr_assert(watches(epfd, sv[0]), "the read event is registered");
	/* A lingering close keeps the socket on a second descriptor. */
	cr_assert_neq(dfd = dup(sv[0]), -1);

	cr_assert_not_null(kill = event_new(f.base, -1, 0, free_conn, &f));
	event_active(kill, EV_TIMEOUT, 1);
	round_of(f.base);		/* frees it */
	*open_after_free = is_open(sv[0]);
	round_of(f.base);		/* the delete, then the close */
	*open_after = is_open(sv[0]);
	*still_watched = watches(epfd, sv[0]);

	event_free(kill);
	close(dfd);
	close(sv[1]);
	sockclose_stop();
	event_base_free(f.base);
	SSL_CTX_free(f.ctx);
}

Test(sockclose, socket_outlives_its_pending_delete)
{
	int watched, open_after_free, open_after;

	run(1, &watched, &open_after_free, &open_after);
	cr_expect(open_after_free, "open until the loop has made its delete");
	cr_expect(!open_after, "closed in the round after");
	cr_expect(!watched, "the epoll instance no longer watches it");
}

/*
 * What sockclose.c prevents: the bufferevent closes the socket in the
 * round that frees it, before the change list's delete, and that delete
 * then fails (EBADF): the registration stays, on a number that any
 * thread's next socket or file may get.
 */
Test(sockclose, closed_at_once_the_registration_stays)
{
	int watched, open_after_free, open_after;

	run(0, &watched, &open_after_free, &open_after);
	cr_expect(!open_after_free);
	cr_expect(watched, "the late delete missed: still registered");
}

/* After sockclose_stop() (shutdown: no more rounds) it closes at once. */
Test(sockclose, after_stop_closes_at_once)
{
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	sockclose_stop();
	sockclose_later(NULL, sv[0]);
	cr_expect(!is_open(sv[0]));
	close(sv[1]);
}
