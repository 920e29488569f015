/*
 * The PostgreSQL suites' fixture helpers (issue 19): the throwaway
 * cluster of tests/pg/pgcluster.sh (ctest fixture "pg"), a schema of its
 * own per test so that tests run in parallel, and small admin queries.
 * Without PostgreSQL a test skips, saying why -- except under CI=true,
 * where that fails.
 */
#ifndef SAFESHARE_T_PG_H
#define SAFESHARE_T_PG_H

#include <libpq-fe.h>
#include <stddef.h>

/* The cluster's connection string into out, or a skip (a failure in CI). */
void	 t_pg_conninfo(char *out, size_t len);
/* An admin connection (asserts); notices dropped. */
PGconn	*t_pg_admin(const char *conninfo);
/* Runs sql, asserting it succeeded. */
void	 t_pg_run(PGconn *, const char *sql);
/* The one value of a one-row query as a number (-1 for NULL). */
long long t_pg_int(PGconn *, const char *sql);
/* Terminates server process pid (waiting up to 5 s), asserting it did. */
void	 t_pg_terminate(PGconn *, int pid);
/*
 * A new, empty schema name: out gets the connection string that puts
 * tables in it; returns an admin connection whose search path is it.
 */
PGconn	*t_pg_schema(const char *name, char *out, size_t len);

struct pgstore;
/* A PostgreSQL store handle on conninfo (asserts). */
struct pgstore *t_pgstore_open(const char *conninfo);
/* Puts subject's person record, full_name "Ann Example", held by holder (asserts). */
void	 t_pgstore_put_person(struct pgstore *, const char *subject,
	    const char *holder);

#endif
