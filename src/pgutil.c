/*
 * Helpers shared by the PostgreSQL log and record store (pgutil.h).
 */
#include <stdio.h>
#include <string.h>

#include "pgutil.h"
#include "util.h"

#define MSG_MAX		200	/* bytes of the server's message kept */

int
pg_fail(PGconn *conn, PGresult *res, const char *who, const char *what,
    char *err, size_t errlen)
{
	const char	*msg = NULL, *st = NULL;
	char		 buf[MSG_MAX + 1], state[8] = "";
	size_t		 n;

	if (res != NULL) {
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	}
	if (msg == NULL)
		msg = conn != NULL ? PQerrorMessage(conn) : "out of memory";
	/*
	 * At most MSG_MAX bytes, not cutting a UTF-8 sequence in two, and
	 * without the line ends libpq puts after its own messages.
	 */
	n = strlen(msg);
	if (n > MSG_MAX) {
		n = MSG_MAX;
		while (n > 0 && ((unsigned char)msg[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(buf, msg, n);
	buf[n] = '\0';
	while (n > 0 && strchr(" \t\r\n", buf[n - 1]) != NULL)
		buf[--n] = '\0';
	if (st != NULL)
		snprintf(state, sizeof(state), "%s", st);
	PQclear(res);
	/*
	 * The server's words may quote a value and hold any byte: control
	 * characters (a newline inside, an escape sequence), bidirectional
	 * overrides and invalid UTF-8 become visible escapes (term_safe()),
	 * so err is one printable line wherever it goes: stderr, the
	 * daemon's log, /healthz.
	 */
	if (state[0] != '\0')
		return errorf(err, errlen, "%s: %s: %s (SQLSTATE %s)", who, what,
		    term_safe(buf), term_safe(state));
	return errorf(err, errlen, "%s: %s: %s", who, what, term_safe(buf));
}
