/*
 * What the PostgreSQL suites share (issue 19): the throwaway cluster's
 * connection string (ctest fixture "pg", tests/pg/pgcluster.sh), a schema
 * of its own per test so that tests run in parallel, and small statement
 * helpers that assert. Built with PG_STATE_DIR, linked with Criterion.
 */
#ifndef SAFESHARE_PGTEST_H
#define SAFESHARE_PGTEST_H

#include <libpq-fe.h>
#include <stddef.h>

/*
 * The cluster's connection string into out, or the test skips saying why
 * (SAFESHARE_PG_CONNINFO, else the fixture's file) -- a failure under
 * CI=true, where PostgreSQL is required.
 */
void	 pg_conninfo(char *out, size_t len);
/* A connection (server notices dropped), asserting it is up. */
PGconn	*pg_admin(const char *conninfo);
/* A statement that must succeed; its rows, if any, are dropped. */
void	 pg_run(PGconn *, const char *sql);
/* The one value a statement returns (NULL: -1). */
long long pg_int(PGconn *, const char *sql);
/* Terminates server process pid (waiting up to 5 s), asserting it did. */
void	 pg_terminate(PGconn *, int pid);
/*
 * A new, empty schema `name` (dropped first if a run left it): out gets the
 * connection string whose search path is it; the returned connection
 * (the caller's to PQfinish()) has it as its search path too.
 */
PGconn	*pg_schema(const char *name, char *out, size_t len);

#endif
