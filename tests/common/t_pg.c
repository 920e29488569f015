/* The PostgreSQL suites' fixture helpers (t_pg.h). */
#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstore.h"
#include "t_pg.h"

void
t_pg_conninfo(char *out, size_t len)
{
	const char	*env = getenv("SAFESHARE_PG_CONNINFO");
	char		 why[512] = "no " PG_STATE_DIR "/conninfo: run the suite "
			    "through ctest (fixture pg) or set SAFESHARE_PG_CONNINFO";
	FILE		*fp;

	if (env != NULL && *env != '\0') {
		snprintf(out, len, "%s", env);
		return;
	}
	if ((fp = fopen(PG_STATE_DIR "/conninfo", "r")) != NULL) {
		char *ok = fgets(out, (int)len, fp);

		fclose(fp);
		if (ok != NULL) {
			out[strcspn(out, "\n")] = '\0';
			return;
		}
	}
	if ((fp = fopen(PG_STATE_DIR "/absent", "r")) != NULL) {
		if (fgets(why, sizeof(why), fp) != NULL)
			why[strcspn(why, "\n")] = '\0';
		fclose(fp);
	}
	if (getenv("CI") != NULL && strcmp(getenv("CI"), "true") == 0)
		cr_assert_fail("PostgreSQL is required in CI: %s", why);
	cr_skip_test("PostgreSQL not available: %s", why);
}

static void
quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

PGconn *
t_pg_admin(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);

	cr_assert_eq(PQstatus(c), CONNECTION_OK, "connect: %s", PQerrorMessage(c));
	PQsetNoticeProcessor(c, quiet, NULL);
	return c;
}

void
t_pg_run(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);

	cr_assert(PQresultStatus(res) == PGRES_COMMAND_OK ||
	    PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql,
	    PQresultErrorMessage(res));
	PQclear(res);
}

long long
t_pg_int(PGconn *c, const char *sql)
{
	PGresult	*res = PQexec(c, sql);
	long long	 v;

	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql,
	    PQresultErrorMessage(res));
	cr_assert_eq(PQntuples(res), 1, "%s: %d rows", sql, PQntuples(res));
	v = PQgetisnull(res, 0, 0) ? -1 : atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return v;
}

void
t_pg_terminate(PGconn *c, int pid)
{
	char		 sql[96];
	PGresult	*res;

	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d, 5000)", pid);
	res = PQexec(c, sql);
	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s",
	    PQresultErrorMessage(res));
	cr_assert_str_eq(PQgetvalue(res, 0, 0), "t");
	PQclear(res);
}

PGconn *
t_pg_schema(const char *name, char *out, size_t len)
{
	char	 base[1024], sql[256];
	PGconn	*c;

	t_pg_conninfo(base, sizeof(base));
	c = t_pg_admin(base);
	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", name);
	t_pg_run(c, sql);
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", name);
	t_pg_run(c, sql);
	snprintf(sql, sizeof(sql), "SET search_path = %s", name);
	t_pg_run(c, sql);
	snprintf(out, len, "%s options='-csearch_path=%s'", base, name);
	return c;
}

struct pgstore *
t_pgstore_open(const char *conninfo)
{
	struct pgstore	*pg;
	char		 err[256] = "";

	cr_assert_eq(pgstore_open(&pg, conninfo, err, sizeof(err)), 0, "%s", err);
	return pg;
}

void
t_pgstore_put_person(struct pgstore *pg, const char *subject,
    const char *holder)
{
	const char	*names[1] = { "full_name" }, *values[1] = { "Ann Example" };
	char		 err[256] = "";

	cr_assert_eq(pgstore_put_record(pg, subject, "person", holder, 1700000000,
	    names, values, 1, err, sizeof(err)), 0, "%s", err);
}
