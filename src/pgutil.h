/*
 * What the PostgreSQL modules (pglog*.c, the log; pgstore*.c, the record
 * store) share: turning libpq's failure into one line of the caller's err.
 */
#ifndef SAFESHARE_PGUTIL_H
#define SAFESHARE_PGUTIL_H

#include <stddef.h>

#include <libpq-fe.h>

/*
 * Writes "who: what: the server's primary message (SQLSTATE x)" into err,
 * on one printable line (the message's control characters, such as a
 * newline or an escape, bidirectional overrides and invalid UTF-8 become
 * visible escapes: term_safe(); its end of line is dropped; at most 200
 * bytes of it are kept), and clears res (which may be NULL: then the
 * connection's message, or "out of memory" without a connection).
 * Returns -1.
 */
int	pg_fail(PGconn *, PGresult *res, const char *who, const char *what,
	    char *err, size_t errlen);

/*
 * How long a connect may wait for a server that does not answer, in
 * seconds, when the connection string sets no connect_timeout (libpq's
 * own default is to wait for ever): docs/config.md.
 */
#define PG_CONNECT_TIMEOUT	"5"

/*
 * PQconnectdb(conninfo) with connect_timeout=PG_CONNECT_TIMEOUT unless
 * conninfo (a keyword string or a URI) sets one itself. Never NULL but
 * out of memory; check PQstatus(). The caller PQfinish()es it.
 */
PGconn	*pg_connectdb(const char *conninfo);
/*
 * PQreset() that waits at most wait_ms for the server (0: as long as
 * connect_timeout), polling the new connection itself; a connect not done
 * by then is abandoned and the connection left bad. 0 when connected, -1
 * when the connect failed (PQerrorMessage() says why), -2 when the time
 * ran out.
 */
int	pg_reset_within(PGconn *, int wait_ms);

/*
 * A handle's reconnects while its server is away (issue 19 item 3): at
 * most one try a second, each waiting at most wait_ms (0: the connection
 * string's connect_timeout), a call in between failing at once with the
 * last try's reason. So a thread that must not stall, the event loop,
 * answers 503 at once meanwhile. Zeroed: libpq's wait, no try yet.
 */
struct pg_retry {
	int		 wait_ms;
	long long	 next_try;	/* no try before (monotonic ms) */
	char		 down[256];	/* why the last try failed, or "" */
};

/*
 * conn (not CONNECTION_OK) opened again under r's rules: 0, or -1 with
 * "who: connect: why" in err.
 */
int	pg_reconnect(PGconn *, struct pg_retry *r, const char *who, char *err,
	    size_t errlen);

#endif
