/*
 * Helpers shared by the PostgreSQL log and record store (pgutil.h).
 */
#include <stdio.h>

#include "pgutil.h"
#include "util.h"

int
pg_fail(PGconn *conn, PGresult *res, const char *who, const char *what,
    char *err, size_t errlen)
{
	const char	*msg = NULL, *st = NULL;
	char		 buf[200], state[8] = "";
	size_t		 i;

	if (res != NULL) {
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	}
	if (msg == NULL)
		msg = conn != NULL ? PQerrorMessage(conn) : "out of memory";
	snprintf(buf, sizeof(buf), "%s", msg);
	if (st != NULL)
		snprintf(state, sizeof(state), "%s", st);
	/* One line: libpq's messages end in (and may hold) newlines. */
	for (i = 0; buf[i] != '\0'; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			buf[i] = ' ';
	while (i > 0 && buf[i - 1] == ' ')
		buf[--i] = '\0';
	PQclear(res);
	if (state[0] != '\0')
		return errorf(err, errlen, "%s: %s: %s (SQLSTATE %s)", who, what,
		    buf, state);
	return errorf(err, errlen, "%s: %s: %s", who, what, buf);
}
