/*
 * Helpers shared by the PostgreSQL log and record store (pgutil.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

PGconn *
pg_connectdb(const char *conninfo)
{
	/*
	 * With expand_dbname, the connection string in "dbname" is expanded
	 * where it stands and its settings override the ones before it: the
	 * default first, so a connect_timeout the string sets wins.
	 */
	const char *const keys[] = { "connect_timeout", "dbname", NULL };
	const char *const vals[] = { PG_CONNECT_TIMEOUT, conninfo, NULL };

	return PQconnectdbParams(keys, vals, 1);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
pg_reconnect(PGconn *conn, struct pg_retry *r, const char *who, char *err,
    size_t errlen)
{
	int rc;

	if (r->down[0] != '\0' && now_ms() < r->next_try)
		return errorf(err, errlen, "%s (tried again at most once a second)",
		    r->down);
	if ((rc = pg_reset_within(conn, r->wait_ms)) == 0) {
		r->down[0] = '\0';
		return 0;
	}
	r->next_try = now_ms() + 1000;
	if (rc == -2)
		errorf(r->down, sizeof(r->down), "%s: connect: no answer within "
		    "%d ms", who, r->wait_ms);
	else
		pg_fail(conn, NULL, who, "connect", r->down, sizeof(r->down));
	return errorf(err, errlen, "%s", r->down);
}

int
pg_reset_within(PGconn *conn, int wait_ms)
{
	struct timespec		 t0, now;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;

	if (wait_ms <= 0) {
		PQreset(conn);
		return PQstatus(conn) == CONNECTION_OK ? 0 : -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (PQresetStart(conn) != 1)
		return -1;
	for (;;) {
		struct pollfd	pfd;
		long		left;
		int		r;

		if (st == PGRES_POLLING_OK)
			return 0;
		if (st == PGRES_POLLING_FAILED)
			return -1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = wait_ms - ((now.tv_sec - t0.tv_sec) * 1000 +
		    (now.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || (pfd.fd = PQsocket(conn)) < 0)
			break;
		pfd.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		if ((r = poll(&pfd, 1, (int)left)) == -1 && errno != EINTR)
			return -1;
		if (r > 0)
			st = PQresetPoll(conn);
	}
	/*
	 * Not connected in time: the half-made connection stays as it is
	 * (not CONNECTION_OK), and the next reset closes it and starts anew.
	 */
	return -2;
}
