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

#endif
