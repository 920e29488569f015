/*
 * The integration harness on PostgreSQL (issue 19): with
 * SAFESHARE_TEST_STORAGE=postgresql in the environment, every daemon the
 * harness starts runs with storage: postgresql on the cluster of the ctest
 * fixture "pg" (tests/pg/pgcluster.sh; or SAFESHARE_PG_CONNINFO), in a
 * schema of its own (options=-csearch_path=...), so that suites and tests
 * running at once under ctest -j never see each other's rows and the
 * fixture's role needs no CREATEDB. The password is not written into the
 * daemon's config: it goes into a libpq passfile in the test's directory,
 * which the connection string names (passfile=), as docs/deploy-ha.md
 * tells operators to do. h_cleanup() drops the schema.
 */
#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "t_pg.h"

int
h_pg_wanted(void)
{
	const char *s = getenv("SAFESHARE_TEST_STORAGE");

	return s != NULL && strcmp(s, "postgresql") == 0;
}

/* Appends " key='value'" to out, quoting as libpq wants. */
static void
add_kw(char *out, size_t len, const char *key, const char *val)
{
	size_t	n = strlen(out);

	n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s%s='", n ? " " : "",
	    key);
	for (; *val != '\0' && n + 3 < len; val++) {
		if (*val == '\'' || *val == '\\')
			out[n++] = '\\';
		out[n++] = *val;
	}
	cr_assert_lt(n + 2, len, "connection string too long");
	out[n++] = '\'';
	out[n] = '\0';
}

void
h_pg_setup(struct daemon *d)
{
	PQconninfoOption	*opts, *o;
	char			 base[1024], *err = NULL, pass[512] = "", *p;
	const char		*host = "*", *db = "*", *user = "*";
	FILE			*fp;
	PGconn			*c;
	int			 fd;

	t_pg_conninfo(base, sizeof(base));
	/* The test's directory name (mkdtemp), lowercased: a new schema. */
	p = strrchr(d->dir, '-');
	snprintf(d->pg_schema, sizeof(d->pg_schema), "it_%d_%s", (int)getpid(),
	    p != NULL ? p + 1 : "x");
	for (p = d->pg_schema; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	c = t_pg_schema(d->pg_schema, d->pg_admin, sizeof(d->pg_admin));
	PQfinish(c);
	cr_assert_not_null(opts = PQconninfoParse(base, &err), "%s",
	    err ? err : "conninfo");
	snprintf(d->pg_passfile, sizeof(d->pg_passfile), "%s/pgpass", d->dir);
	d->pg_conninfo[0] = '\0';
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || *o->val == '\0')
			continue;
		if (strcmp(o->keyword, "password") == 0) {
			snprintf(pass, sizeof(pass), "%s", o->val);
			continue;
		}
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			snprintf(d->pg_port, sizeof(d->pg_port), "%s", o->val);
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
		else if (strcmp(o->keyword, "user") == 0)
			user = o->val;
		add_kw(d->pg_conninfo, sizeof(d->pg_conninfo), o->keyword, o->val);
	}
	/* hostname:port:database:username:password, 0600 (libpq checks). */
	fd = open(d->pg_passfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_not_null(fp = fdopen(fd, "w"));
	/* Any port: a test may put a proxy in between (test_pg.c). */
	fprintf(fp, "%s:*:%s:%s:%s\n", host, db, user, pass);
	fclose(fp);
	PQconninfoFree(opts);
	add_kw(d->pg_conninfo, sizeof(d->pg_conninfo), "passfile", d->pg_passfile);
	snprintf(base, sizeof(base), "-csearch_path=%s", d->pg_schema);
	add_kw(d->pg_conninfo, sizeof(d->pg_conninfo), "options", base);
	/* So a test can find (and terminate) this daemon's server processes. */
	add_kw(d->pg_conninfo, sizeof(d->pg_conninfo), "application_name",
	    d->pg_schema);
}

/* "drop cascades to ...": not the test's to print. */
static void
quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

void
h_pg_cleanup(struct daemon *d)
{
	char	 sql[160];
	PGconn	*c;

	if (d->pg_schema[0] == '\0' || getenv("SAFESHARE_KEEP_TEST_DIR") != NULL)
		return;
	c = PQconnectdb(d->pg_admin);
	PQsetNoticeProcessor(c, quiet, NULL);
	if (PQstatus(c) == CONNECTION_OK) {
		snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE",
		    d->pg_schema);
		PQclear(PQexec(c, sql));
	}
	PQfinish(c);
}

long long
h_pg_int(struct daemon *d, const char *sql)
{
	PGconn		*c = t_pg_admin(d->pg_admin);
	long long	 v = t_pg_int(c, sql);

	PQfinish(c);
	return v;
}

void
h_pg_run(struct daemon *d, const char *sql)
{
	PGconn	*c = t_pg_admin(d->pg_admin);

	t_pg_run(c, sql);
	PQfinish(c);
}

/*
 * The first column of the first row of sql on d's store (the sqlite3
 * program on SQLite's file; on PostgreSQL as the fixture's role in the
 * test's schema), "" when there is no row or it is NULL. The caller frees
 * it.
 */
char *
h_store_value(struct daemon *d, const char *sql)
{
	char		 cmd[2048], *out = NULL;
	PGconn		*c;
	PGresult	*res;

	if (d->pg_conninfo[0] == '\0') {
		cr_assert(strchr(sql, '"') == NULL, "%s", sql);
		snprintf(cmd, sizeof(cmd), "sqlite3 %s \"%s\"", d->store, sql);
		cr_assert_eq(h_run(cmd, &out), 0, "%s: %s", cmd, out);
		out[strcspn(out, "\n")] = '\0';
		return out;
	}
	c = t_pg_admin(d->pg_admin);
	res = PQexec(c, sql);
	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql,
	    PQresultErrorMessage(res));
	cr_assert_not_null(out = strdup(PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) :
	    ""));
	PQclear(res);
	PQfinish(c);
	return out;
}

/* The store's tables on PostgreSQL (src/pgstore.c), for h_store_dump(). */
static const char *const store_tables[] = {
	"store_meta", "subjects", "records", "record_fields", "consents", "flags",
	"holder_batches", "store_loads",
};

/*
 * Everything in d's store as text, to compare before and after something
 * that must change nothing: `sqlite3 .dump` on SQLite; on PostgreSQL each
 * store table's rows as row literals, sorted. The caller frees it.
 */
char *
h_store_dump(struct daemon *d)
{
	char		 cmd[1024], sql[256], *out = NULL, *p;
	size_t		 len = 0, cap = 4096;
	PGconn		*c;

	if (d->pg_conninfo[0] == '\0') {
		snprintf(cmd, sizeof(cmd), "sqlite3 %s .dump", d->store);
		cr_assert_eq(h_run(cmd, &out), 0, "%s", cmd);
		return out;
	}
	cr_assert_not_null(out = malloc(cap));
	out[0] = '\0';
	c = t_pg_admin(d->pg_admin);
	for (size_t t = 0; t < sizeof(store_tables) / sizeof(store_tables[0]); t++) {
		PGresult *res;

		snprintf(sql, sizeof(sql), "SELECT '%s ' || r::text FROM %s AS r "
		    "ORDER BY 1", store_tables[t], store_tables[t]);
		res = PQexec(c, sql);
		cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql,
		    PQresultErrorMessage(res));
		for (int i = 0; i < PQntuples(res); i++) {
			size_t n = strlen(PQgetvalue(res, i, 0));

			while (len + n + 2 > cap) {
				cr_assert_not_null(p = realloc(out, cap * 2));
				out = p;
				cap *= 2;
			}
			memcpy(out + len, PQgetvalue(res, i, 0), n);
			len += n;
			out[len++] = '\n';
			out[len] = '\0';
		}
		PQclear(res);
	}
	PQfinish(c);
	return out;
}

/*
 * The option of `safeshare audit verify|export` naming d's log, into buf:
 * "--log FILE", or "--postgresql \"CONNINFO\"" (the daemon's own string,
 * whose values libpq quotes with ' and which holds no '"', '$' or '`').
 * Returns buf.
 */
const char *
h_log_arg(const struct daemon *d, char *buf, size_t len)
{
	if (d->pg_conninfo[0] != '\0') {
		cr_assert(strpbrk(d->pg_conninfo, "\"$`") == NULL);
		snprintf(buf, len, "--postgresql \"%s\"", d->pg_conninfo);
	} else
		snprintf(buf, len, "--log %s", d->audit);
	return buf;
}
