/*
 * A TCP forwarder on 127.0.0.1 between a daemon under test and the
 * fixture's PostgreSQL (test_pg.c): pgproxy_down() closes the listening
 * socket and every forwarded connection, so the daemon's sessions end and
 * its reconnects are refused, as when the database server is gone, while
 * the suites sharing the cluster go on; pgproxy_up() listens again on the
 * same port. pgproxy_hang() cuts the sessions too but goes on accepting,
 * and never answers what it accepted: a database host that does not
 * answer (until pgproxy_up()). One thread owns every socket; the test thread talks to it
 * through a pipe and waits for each command's answer.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <criterion/criterion.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgproxy.h"

#define PAIRS	64

struct pgproxy {
	pthread_t	 t;
	int		 lfd;		/* -1 while down */
	int		 port, upstream;
	int		 cmd[2], ack[2];
	int		 fd[PAIRS][2];	/* client, server; -1: free */
	int		 hang;		/* accept, never answer */
	int		 hung[PAIRS];	/* accepted while hanging; -1: free */
};

static void
unhang(struct pgproxy *p)
{
	p->hang = 0;
	for (int i = 0; i < PAIRS; i++)
		if (p->hung[i] != -1) {
			close(p->hung[i]);
			p->hung[i] = -1;
		}
}

static int
listen_on(int port)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 fd, one = 1;

	cr_assert_geq(fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0, "bind: %s",
	    strerror(errno));
	cr_assert_eq(listen(fd, 16), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	return fd;
}

static int
connect_to(int port)
{
	struct sockaddr_in	 sin;
	int			 fd;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
pair_close(struct pgproxy *p, int i)
{
	close(p->fd[i][0]);
	close(p->fd[i][1]);
	p->fd[i][0] = p->fd[i][1] = -1;
}

/* Copies what one side has to the other; -1 when either is done. */
static int
pump(int from, int to)
{
	char	 buf[16384];
	ssize_t	 n, w, off = 0;

	if ((n = read(from, buf, sizeof(buf))) <= 0)
		return -1;
	while (off < n) {
		if ((w = write(to, buf + off, (size_t)(n - off))) <= 0)
			return -1;
		off += w;
	}
	return 0;
}

static void *
run(void *arg)
{
	struct pgproxy	*p = arg;
	struct pollfd	 pfd[2 + 2 * PAIRS];
	int		 who[2 + 2 * PAIRS];

	for (;;) {
		nfds_t	 n = 0;
		char	 c;

		pfd[n].fd = p->cmd[0];
		pfd[n].events = POLLIN;
		who[n++] = -1;
		if (p->lfd != -1) {
			pfd[n].fd = p->lfd;
			pfd[n].events = POLLIN;
			who[n++] = -2;
		}
		for (int i = 0; i < PAIRS; i++)
			for (int k = 0; k < 2 && p->fd[i][0] != -1; k++) {
				pfd[n].fd = p->fd[i][k];
				pfd[n].events = POLLIN;
				who[n++] = i * 2 + k;
			}
		if (poll(pfd, n, -1) == -1)
			continue;
		for (nfds_t j = 0; j < n; j++) {
			if (pfd[j].revents == 0)
				continue;
			if (who[j] == -1) {
				if (read(p->cmd[0], &c, 1) != 1 || c == 'q')
					goto out;
				if (c == 'd' || c == 'h') {
					if (c == 'd') {
						close(p->lfd);
						p->lfd = -1;
					}
					for (int i = 0; i < PAIRS; i++)
						if (p->fd[i][0] != -1)
							pair_close(p, i);
					unhang(p);
					p->hang = c == 'h';
				} else if (c == 'u') {
					unhang(p);
					if (p->lfd == -1)
						p->lfd = listen_on(p->port);
				}
				if (write(p->ack[1], &c, 1) != 1)
					goto out;
				break;	/* the sets changed: poll again */
			} else if (who[j] == -2) {
				int cfd = accept(p->lfd, NULL, NULL), sfd, i;

				if (cfd == -1)
					continue;
				if (p->hang) {	/* held open, never read */
					for (i = 0; i < PAIRS && p->hung[i] != -1; i++)
						;
					if (i < PAIRS)
						p->hung[i] = cfd;
					else
						close(cfd);
					continue;
				}
				for (i = 0; i < PAIRS && p->fd[i][0] != -1; i++)
					;
				if (i == PAIRS || (sfd = connect_to(p->upstream)) == -1) {
					close(cfd);
					continue;
				}
				p->fd[i][0] = cfd;
				p->fd[i][1] = sfd;
				break;
			} else {
				int i = who[j] / 2, k = who[j] % 2;

				if (p->fd[i][0] != -1 &&
				    pump(p->fd[i][k], p->fd[i][!k]) == -1)
					pair_close(p, i);
			}
		}
	}
 out:
	return NULL;
}

struct pgproxy *
pgproxy_start(int upstream)
{
	struct pgproxy		*p = calloc(1, sizeof(*p));
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);

	cr_assert_not_null(p);
	for (int i = 0; i < PAIRS; i++) {
		p->fd[i][0] = p->fd[i][1] = -1;
		p->hung[i] = -1;
	}
	p->upstream = upstream;
	p->lfd = listen_on(0);
	cr_assert_eq(getsockname(p->lfd, (struct sockaddr *)&sin, &len), 0);
	p->port = ntohs(sin.sin_port);
	cr_assert_eq(pipe(p->cmd), 0);
	cr_assert_eq(pipe(p->ack), 0);
	cr_assert_eq(pthread_create(&p->t, NULL, run, p), 0);
	return p;
}

int
pgproxy_port(const struct pgproxy *p)
{
	return p->port;
}

static void
command(struct pgproxy *p, char c)
{
	char	a;

	cr_assert_eq(write(p->cmd[1], &c, 1), 1);
	cr_assert_eq(read(p->ack[0], &a, 1), 1);
}

void
pgproxy_down(struct pgproxy *p)
{
	command(p, 'd');
}

void
pgproxy_up(struct pgproxy *p)
{
	command(p, 'u');
}

void
pgproxy_hang(struct pgproxy *p)
{
	command(p, 'h');
}

void
pgproxy_stop(struct pgproxy *p)
{
	char	c = 'q';

	if (p == NULL)
		return;
	if (write(p->cmd[1], &c, 1) == 1)
		pthread_join(p->t, NULL);
	if (p->lfd != -1)
		close(p->lfd);
	for (int i = 0; i < PAIRS; i++)
		if (p->fd[i][0] != -1)
			pair_close(p, i);
	unhang(p);
	close(p->cmd[0]);
	close(p->cmd[1]);
	close(p->ack[0]);
	close(p->ack[1]);
	free(p);
}
