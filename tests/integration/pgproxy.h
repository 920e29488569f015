/*
 * pgproxy.c: a TCP forwarder the test can take down and bring back up, to
 * make one daemon's PostgreSQL unreachable without touching the cluster
 * other suites share (issue 19 item 3, faults).
 */
#ifndef SAFESHARE_PGPROXY_H
#define SAFESHARE_PGPROXY_H

struct pgproxy;

/* Listens on a free loopback port and forwards to 127.0.0.1:upstream. */
struct pgproxy	*pgproxy_start(int upstream);
int		 pgproxy_port(const struct pgproxy *);
/* Closes the listener and every forwarded connection (refused from now on). */
void		 pgproxy_down(struct pgproxy *);
/* Listens again on the same port. */
void		 pgproxy_up(struct pgproxy *);
/* Cuts every session; new connections are accepted and never answered. */
void		 pgproxy_hang(struct pgproxy *);
void		 pgproxy_stop(struct pgproxy *);

#endif
