/*
 * pg_fail() (src/pgutil.c), which turns every libpq failure of the
 * PostgreSQL log and store into the one line of err that reaches stderr,
 * the daemon's log and /healthz: whatever bytes the server's message
 * holds, that line is printable and one line. The messages come from
 * the real server of the ctest fixture "pg" (RAISE in a DO block), and
 * from libpq itself for a server that is not there.
 */
#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgutil.h"
#include "t_pg.h"

/* Every byte printable ASCII or part of UTF-8 (>= 0x80), none a control. */
static void
assert_one_printable_line(const char *s)
{
	for (const unsigned char *u = (const unsigned char *)s; *u != '\0'; u++)
		cr_assert(*u >= 0x20 && *u != 0x7f, "byte 0x%02x at %zu in \"%s\"",
		    *u, (size_t)(u - (const unsigned char *)s), s);
}

/* The server's failure for sql into err through pg_fail(). */
static void
fail_of(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult *res = PQexec(c, sql);

	cr_assert_eq(PQresultStatus(res), PGRES_FATAL_ERROR, "%s", sql);
	cr_assert_eq(pg_fail(c, res, "PostgreSQL store", "put record", err,
	    errlen), -1);
}

/*
 * A message with a newline, a carriage return, an escape sequence and a
 * tab (a quoted value could hold any of them): escaped, not passed on,
 * so a crafted value cannot start a forged line in the daemon's log or
 * move a terminal's cursor; the SQLSTATE stays.
 */
Test(pgutil, server_message_escaped)
{
	char	 ci[1200], err[512];
	PGconn	*c;

	t_pg_conninfo(ci, sizeof(ci));
	c = t_pg_admin(ci);
	fail_of(c, "DO $$BEGIN RAISE EXCEPTION "
	    "E'value \"a\\nlevel=error forged\\rb\\x1b[2Jc\\td\"'; END$$", err,
	    sizeof(err));
	assert_one_printable_line(err);
	cr_assert_str_eq(err, "PostgreSQL store: put record: value \"a\\nlevel=error "
	    "forged\\rb\\x1b[2Jc\\td\" (SQLSTATE P0001)");

	/* A bidirectional override is made visible too. */
	fail_of(c, "DO $$BEGIN RAISE EXCEPTION E'x\\u202Ey'; END$$", err,
	    sizeof(err));
	assert_one_printable_line(err);
	cr_assert(strstr(err, "x\\u202ey") != NULL, "%s", err);

	/* A long message is cut (at a character), and still one line. */
	fail_of(c, "DO $$BEGIN RAISE EXCEPTION '%', repeat(E'\\u00e9\\n', 300); END$$",
	    err, sizeof(err));
	assert_one_printable_line(err);
	cr_assert(strstr(err, "\xc3\xa9\\n\xc3\xa9\\n") != NULL, "%s", err);
	cr_assert(strstr(err, "\\xc3") == NULL, "a character cut in two: %s", err);
	cr_assert(strstr(err, "(SQLSTATE P0001)") != NULL, "%s", err);
	PQfinish(c);
}

/*
 * libpq's own message for a server that is not there spans two lines
 * (the failure, then a hint after a newline and a tab) and ends in a
 * newline: one line, without a trailing escape.
 */
Test(pgutil, connection_message_one_line)
{
	char	 err[512];
	PGconn	*c = PQconnectdb("host=127.0.0.1 port=1 dbname=x user=y "
		    "connect_timeout=5");

	cr_assert_neq(PQstatus(c), CONNECTION_OK);
	cr_assert_eq(pg_fail(c, NULL, "PostgreSQL log", "connect", err,
	    sizeof(err)), -1);
	assert_one_printable_line(err);
	cr_assert(strncmp(err, "PostgreSQL log: connect: ", 25) == 0, "%s", err);
	cr_assert_neq(err[strlen(err) - 1], 'n', "a trailing newline kept: %s", err);
	PQfinish(c);

	cr_assert_eq(pg_fail(NULL, NULL, "PostgreSQL log", "connect", err,
	    sizeof(err)), -1);
	cr_assert_str_eq(err, "PostgreSQL log: connect: out of memory");
}

/* The connect_timeout a connection was made with, from PQconninfo(). */
static int
timeout_of(PGconn *c)
{
	PQconninfoOption	*opts = PQconninfo(c), *o;
	int			 t = -1;

	cr_assert_not_null(opts);
	for (o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, "connect_timeout") == 0 && o->val != NULL)
			t = atoi(o->val);
	PQconninfoFree(opts);
	return t;
}

/*
 * Issue 19 item 3: pg_connectdb() waits PG_CONNECT_TIMEOUT seconds for a
 * server that does not answer when the connection string names no
 * connect_timeout (libpq's own default waits for ever), in either form of
 * connection string, and the string's own connect_timeout wins. Port 1 on
 * loopback refuses at once: only the options are looked at.
 */
Test(pgutil, connect_timeout_is_bounded_by_default)
{
	static const struct { const char *ci; int want; } c[] = {
		{ "host=127.0.0.1 port=1 dbname=x", 5 },
		{ "host=127.0.0.1 port=1 dbname=x connect_timeout=7", 7 },
		{ "connect_timeout=3 host=127.0.0.1 port=1", 3 },
		{ "postgresql://127.0.0.1:1/x", 5 },
		{ "postgresql://127.0.0.1:1/x?connect_timeout=9", 9 },
	};

	cr_assert_eq(atoi(PG_CONNECT_TIMEOUT), 5);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		PGconn *conn = pg_connectdb(c[i].ci);

		cr_assert_not_null(conn);
		cr_expect_eq(timeout_of(conn), c[i].want, "%s", c[i].ci);
		PQfinish(conn);
	}
}
