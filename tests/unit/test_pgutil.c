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
