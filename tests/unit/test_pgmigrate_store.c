/*
 * The record store moved from SQLite to PostgreSQL (issue 19 item 5:
 * pgstore_migrate*(), `safeshare admin migrate --store`), with its log in
 * the same transaction, against the throwaway cluster of the ctest
 * fixture "pg". The SQLite store is made through the storage interface
 * from config/demo-data.yaml plus history (consent decisions, a flag set
 * and removed, a holder batch, a logged data file load) and a field
 * whose value holds a tab, a newline and a backslash; afterwards every
 * subject must answer alike through storage_* on both backends. Each
 * test works in a schema of its own.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit.h"
#include "pgstore_migrate.h"
#include "protocol.h"
#include "storage.h"
#include "t_pg.h"
#include "testutil.h"
#include "util.h"

/* One test's SQLite store and log, and its PostgreSQL schema. */
struct fx {
	char		 store[256], log[256], key[256], pub[256], out[256];
	char		 ci[1200];
	PGconn		*adm;
	struct protocol	*proto;
	unsigned char	 log_id[16];
	uint64_t	 log_size;
};

static void
must(int rc, const char *err)
{
	cr_assert_neq(rc, -1, "%s", err);
}

/* The log: a few signed commits; the store remembers it at remembered. */
static void
make_log(struct fx *f)
{
	struct audit		*a;
	struct audit_entry	 e[4], *ep[4];
	char			 err[256];

	cr_assert_eq(audit_open(&a, f->log, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(audit_set_signer(a, f->key, 0, 0, err, sizeof(err)), 0, "%s",
	    err);
	for (int b = 0; b < 3; b++) {
		memset(e, 0, sizeof(e));
		for (int i = 0; i < 4; i++) {
			e[i].time = 1767300000 + b;
			e[i].kind = "disclosure";
			e[i].agency = "police";
			e[i].purpose = "safeguarding";
			e[i].decision = "allow";
			e[i].subject = "S1001";
			e[i].request_id = "before-migration";
			ep[i] = &e[i];
		}
		cr_assert_eq(audit_append(a, ep, 4, err, sizeof(err)), 0, "%s", err);
	}
	audit_log_id(a, f->log_id);
	f->log_size = audit_size(a);
	audit_close(a);
}

/*
 * The store: the demo data, then history, through the same interface a
 * daemon uses; it remembers the log (log_id, remembered entries).
 */
static void
make_store(struct fx *f, const unsigned char log_id[16], uint64_t remembered)
{
	struct storage	*s;
	struct diag	 d = { 0 };
	const char	*names[] = { "summary" };
	const char	*vals[] = { "line one\tcolumn\nline two \\ back" };
	char		 err[256] = "";

	cr_assert_eq(storage_open(&s, &storage_sqlite, f->store, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(storage_load_yaml(s, f->proto, SOURCE_DIR
	    "/config/demo-data.yaml", 1767000000, &d), 0, "%s",
	    d.n ? d.msgs[0] : "");
	diag_free(&d);
	must(storage_begin(s, err, sizeof(err)), err);
	must(storage_put_record(s, "S1001", "concern", "childrens_social_care",
	    1767000100, names, vals, 1, err, sizeof(err)), err);
	must(storage_add_consent(s, "S1001", CONSENT_REFUSED, "police",
	    "safeguarding", 0, 1766000000, "clerk-1", 1767000200, err,
	    sizeof(err)), err);
	must(storage_add_consent(s, "S1001", CONSENT_GRANTED, "*", "*",
	    1799999999, 0, "clerk-2", 1767000300, err, sizeof(err)), err);
	must(storage_set_flag(s, "S1001", "missing_episode", "officer-1",
	    1767000400, err, sizeof(err)), err);
	must(storage_remove_flag(s, "S1001", "missing_episode", "officer-2",
	    1767000500, err, sizeof(err)), err);
	must(storage_set_flag(s, "S1001", "missing_episode", "officer-3",
	    1767000600, err, sizeof(err)), err);
	must(storage_mark_batch(s, "batch-1", 5, 1767000700, err, sizeof(err)), err);
	must(storage_commit(s, err, sizeof(err)), err);
	must(storage_load_logged(s, 1, 2, err, sizeof(err)), err);
	if (log_id != NULL)
		must(storage_remember_log(s, log_id, remembered, 1, err,
		    sizeof(err)), err);
	storage_close(s);
}

static void
fx_open(struct fx *f, const char *name)
{
	struct diag	d = { 0 };
	char		schema[64];

	memset(f, 0, sizeof(*f));
#define P(field, ext) snprintf(f->field, sizeof(f->field),			\
	    "/tmp/safeshare-test-pgms-%s-%d%s", name, (int)getpid(), ext)
	P(store, ".store.db");
	P(log, ".log.db");
	P(key, ".key");
	P(pub, ".pub");
	P(out, ".out");
#undef P
	snprintf(schema, sizeof(schema), "ms_%s", name);
	f->adm = t_pg_schema(schema, f->ci, sizeof(f->ci));
	t_db_remove(f->store);
	t_db_remove(f->log);
	t_genkey(f->key, f->pub);
	f->proto = protocol_load(SOURCE_DIR "/config/protocol.yaml", 0, &d);
	cr_assert_not_null(f->proto);
	diag_free(&d);
	make_log(f);
}

static void
fx_close(struct fx *f)
{
	char p[300];

	PQfinish(f->adm);
	protocol_unref(f->proto);
	t_db_remove(f->store);
	t_db_remove(f->log);
	snprintf(p, sizeof(p), "%s-subjects", f->log);
	t_db_remove(p);
	unlink(f->key);
	unlink(f->pub);
	unlink(f->out);
}

/* Runs safeshare with argv (argv[0] ignored), output into out; its status. */
static int
cli(struct fx *f, char *out, size_t len, const char *argv[])
{
	pid_t	 pid;
	int	 st, fd;
	ssize_t	 n;

	fflush(NULL);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		fd = open(f->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd == -1 || dup2(fd, 1) == -1 || dup2(fd, 2) == -1)
			_exit(127);
		argv[0] = SAFESHARE_BIN;
		execv(SAFESHARE_BIN, (char *const *)argv);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	fd = open(f->out, O_RDONLY);
	cr_assert_neq(fd, -1);
	n = read(fd, out, len - 1);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	cr_assert(WIFEXITED(st), "safeshare did not exit: %s", out);
	return WEXITSTATUS(st);
}

/* What storage_show() and the person calls say of a subject, as text. */
struct text {
	char	buf[16384];
	size_t	len;
};

static void
add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
add(struct text *t, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
	va_end(ap);
	cr_assert(n >= 0 && (size_t)n < sizeof(t->buf) - t->len, "text too long");
	t->len += (size_t)n;
}

static int
show_record(void *arg, const char *type, int64_t at)
{
	add(arg, "record %s %lld\n", type, (long long)at);
	return 0;
}

static int
show_field(void *arg, const char *type, const char *name, const char *value)
{
	add(arg, "field %s %s=[%s]\n", type, name, value);
	return 0;
}

static int
show_consent(void *arg, const char *state, const char *agencies,
    const char *purposes, int64_t expires, int64_t decided, const char *by,
    int64_t at)
{
	add(arg, "consent %s %s %s %lld %lld %s %lld\n", state, agencies, purposes,
	    (long long)expires, (long long)decided, by, (long long)at);
	return 0;
}

static int
show_flag(void *arg, const char *flag, const char *by, int64_t at,
    const char *rby, int64_t rat)
{
	add(arg, "flag %s %s %lld %s %lld\n", flag, by, (long long)at,
	    rby ? rby : "-", (long long)rat);
	return 0;
}

static int
holding(const char *holder, const char *subject, void *arg)
{
	add(arg, "holding %s:%s\n", holder, subject);
	return 0;
}

static void
describe(struct storage *s, const char *subject, struct text *t)
{
	static const struct store_show_cb cb = { show_record, show_field,
	    show_consent, show_flag };
	char	 err[256] = "", holder[128] = "", nhs[MATCH_NHS_LEN + 1] = "";
	int64_t	 person = 0;
	int	 rc;

	t->len = 0;
	t->buf[0] = '\0';
	cr_assert_eq(storage_show(s, subject, 100, &cb, t, err, sizeof(err)), 0,
	    "%s", err);
	rc = storage_subject_holder(s, subject, holder, sizeof(holder), err,
	    sizeof(err));
	add(t, "holder %d %s\n", rc, holder);
	rc = storage_nhs_of(s, subject, nhs, err, sizeof(err));
	add(t, "nhs %d %s\n", rc, rc == 1 ? nhs : "");
	rc = storage_of_holding(s, holder, subject, &person, err, sizeof(err));
	cr_assert_eq(rc, 1, "%s: no person: %s", subject, err);
	/* Person numbers are copied as stored: the same on both sides. */
	add(t, "person %lld\n", (long long)person);
	cr_assert_eq(storage_holdings(s, person, holding, t, err, sizeof(err)), 0,
	    "%s", err);
}

static int
count_load(int64_t id, const char *file, size_t subjects, int64_t loaded_at,
    void *arg)
{
	add(arg, "load %lld %s %zu %lld\n", (long long)id, file, subjects,
	    (long long)loaded_at);
	return 0;
}

/*
 * Every subject of the SQLite store answers alike through storage_* on
 * both backends; so do the store's id and birth, its loads and batches,
 * and what it remembers of its log. Returns how many subjects.
 */
static int
compare_stores(struct fx *f)
{
	struct storage	*sq, *pg;
	struct text	 a, b;
	sqlite3		*db;
	sqlite3_stmt	*st;
	unsigned char	 id1[16], id2[16];
	uint64_t	 n1 = 0, n2 = 0;
	char		 err[256] = "";
	int		 n = 0;

	cr_assert_eq(storage_open(&sq, &storage_sqlite, f->store, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(storage_open(&pg, &storage_postgresql, f->ci, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(storage_id(pg), storage_id(sq));
	cr_assert_eq(storage_created_at(pg), storage_created_at(sq));
	cr_assert_eq(sqlite3_open_v2(f->store, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT id FROM subjects ORDER BY id",
	    -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *subject = (const char *)sqlite3_column_text(st, 0);

		describe(sq, subject, &a);
		describe(pg, subject, &b);
		cr_assert_str_eq(b.buf, a.buf, "%s differs:\nPostgreSQL:\n%s\nSQLite:\n%s",
		    subject, b.buf, a.buf);
		n++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	a.len = b.len = 0;
	a.buf[0] = b.buf[0] = '\0';
	cr_assert_eq(storage_unlogged_loads(sq, count_load, &a, err, sizeof(err)), 0);
	cr_assert_eq(storage_unlogged_loads(pg, count_load, &b, err, sizeof(err)), 0);
	cr_assert_str_eq(b.buf, a.buf);
	cr_assert_eq(storage_batch_applied(pg, "batch-1", err, sizeof(err)), 1, "%s",
	    err);
	cr_assert_eq(storage_log_memory(&storage_sqlite, f->store, id1, &n1, err,
	    sizeof(err)), 1, "%s", err);
	cr_assert_eq(storage_log_memory(&storage_postgresql, f->ci, id2, &n2, err,
	    sizeof(err)), 1, "%s", err);
	cr_assert(memcmp(id1, id2, 16) == 0 && n1 == n2);
	storage_close(pg);
	storage_close(sq);
	return n;
}

/*
 * The demo store and its log through the binary, in one transaction:
 * every subject answers alike on both backends afterwards, the log
 * verifies in PostgreSQL, and the PostgreSQL store goes on where the
 * SQLite one stopped (a new subject is a new person, new history rows
 * get new ids).
 */
Test(pgmigrate_store, store_and_log_answer_alike, .timeout = 120)
{
	struct fx	 f;
	struct storage	*pg;
	char		 out[8192], err[256] = "";
	int		 subjects;
	const char	*names[] = { "full_name" };
	const char	*vals[] = { "New Person" };

	fx_open(&f, "alike");
	make_store(&f, f.log_id, f.log_size);
	{
		const char *av[] = { "", "admin", "migrate", "--from-sqlite", f.log,
		    "--store", f.store, "--to-postgresql", f.ci, "--pubkey", f.pub,
		    NULL };

		cr_assert_eq(cli(&f, out, sizeof(out), av), 0, "%s", out);
	}
	cr_assert(strstr(out, "migrated disclosure log") != NULL, "%s", out);
	cr_assert(strstr(out, "migrated record store") != NULL, "%s", out);
	cr_assert(strstr(out, "compared with") != NULL, "%s", out);
	subjects = compare_stores(&f);
	cr_assert_geq(subjects, 6);
	cr_assert_eq(t_pg_int(f.adm, "SELECT count(*) FROM subjects"), subjects);
	cr_assert_eq(t_pg_int(f.adm, "SELECT count(*) FROM log_entries"),
	    (long long)f.log_size);
	{
		const char *av[] = { "", "audit", "verify", "--postgresql", f.ci,
		    "--pubkey", f.pub, NULL };

		cr_assert_eq(cli(&f, out, sizeof(out), av), 0, "%s", out);
	}

	cr_assert_eq(storage_open(&pg, &storage_postgresql, f.ci, err,
	    sizeof(err)), 0, "%s", err);
	must(storage_begin(pg, err, sizeof(err)), err);
	must(storage_put_record(pg, "S9999", "person", "police", 1767100000, names,
	    vals, 1, err, sizeof(err)), err);
	must(storage_add_consent(pg, "S9999", CONSENT_GRANTED, "*", "*", 0, 0,
	    "clerk", 1767100000, err, sizeof(err)), err);
	must(storage_set_flag(pg, "S9999", "missing_episode", "officer",
	    1767100000, err, sizeof(err)), err);
	must(storage_commit(pg, err, sizeof(err)), err);
	storage_close(pg);
	cr_assert_eq(t_pg_int(f.adm, "SELECT (person > (SELECT max(person) FROM "
	    "subjects WHERE id <> 'S9999'))::int FROM subjects WHERE id = 'S9999'"), 1);
	cr_assert_eq(t_pg_int(f.adm, "SELECT count(DISTINCT id) FROM consents"),
	    t_pg_int(f.adm, "SELECT count(*) FROM consents"));
	fx_close(&f);
}

/*
 * The store alone, through the library; then a second migration into
 * the now non-empty store is refused and changes nothing.
 */
Test(pgmigrate_store, store_alone_then_refused_non_empty)
{
	struct fx			 f;
	struct pgstore_migration	 m;
	sqlite3				*db;
	char				 err[512] = "";
	long long			 consents;

	fx_open(&f, "alone");
	make_store(&f, NULL, 0);
	cr_assert_eq(pgstore_migrate_source(&db, f.store, err, sizeof(err)), 0, "%s",
	    err);
	cr_assert_eq(pgstore_migrate(db, f.ci, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(m.remembers, 0);
	cr_assert_eq(m.rows[0], (uint64_t)t_pg_int(f.adm, "SELECT count(*) FROM "
	    "subjects"));
	cr_assert_geq(m.rows[3], 3, "consents: %llu", (unsigned long long)m.rows[3]);
	/* The sequences go on right after the largest ids copied. */
	cr_assert_eq(t_pg_int(f.adm, "SELECT nextval(pg_get_serial_sequence("
	    "'consents', 'id')) - (SELECT max(id) FROM consents)"), 1);
	cr_assert_eq(t_pg_int(f.adm, "SELECT nextval(pg_get_serial_sequence("
	    "'flags', 'id')) - (SELECT max(id) FROM flags)"), 1);
	cr_assert_eq(t_pg_int(f.adm, "SELECT nextval(pg_get_serial_sequence("
	    "'store_loads', 'id')) - (SELECT max(id) FROM store_loads)"), 1);
	cr_assert_eq(t_pg_int(f.adm, "SELECT nextval('person_ids')"),
	    m.persons + 1);
	cr_assert_geq(m.persons, t_pg_int(f.adm, "SELECT max(person) FROM subjects"));
	consents = t_pg_int(f.adm, "SELECT count(*) FROM consents");
	cr_assert_eq(pgstore_migrate(db, f.ci, &m, err, sizeof(err)), -1);
	cr_assert(strstr(err, "not empty") != NULL, "%s", err);
	cr_assert(strstr(err, "subjects") != NULL, "%s", err);
	cr_assert_eq(t_pg_int(f.adm, "SELECT count(*) FROM consents"), consents);
	sqlite3_close(db);
	/* A file that is not a store is refused before anything is written. */
	cr_assert_eq(pgstore_migrate_source(&db, f.log, err, sizeof(err)), -1);
	cr_assert(strstr(err, "not a record store") != NULL, "%s", err);
	cr_assert_null(db);
	fx_close(&f);
}

/* The target is as before a failed migration: no entries, no store rows. */
static void
assert_nothing(struct fx *f, const char *store_id)
{
	cr_assert_eq(t_pg_int(f->adm, "SELECT count(*) FROM log_entries"), 0);
	cr_assert_eq(t_pg_int(f->adm, "SELECT size FROM log_head"), 0);
	cr_assert_eq(t_pg_int(f->adm, "SELECT count(*) FROM subjects"), 0);
	cr_assert_eq(t_pg_int(f->adm, "SELECT count(*) FROM record_fields"), 0);
	cr_assert_eq(t_pg_int(f->adm, "SELECT count(*) FROM consents"), 0);
	cr_assert_eq(t_pg_int(f->adm, "SELECT count(*) FROM store_log"), 0);
	if (store_id != NULL) {
		char sql[200];

		snprintf(sql, sizeof(sql), "SELECT count(*) FROM store_meta WHERE "
		    "key = 'store_id' AND value = '%s'", store_id);
		cr_assert_eq(t_pg_int(f->adm, sql), 1, "the store id changed");
	}
}

/*
 * All or nothing: a row PostgreSQL refuses in the last table (a
 * constraint added to the target for the test) fails the migration after
 * the log and most of the store were copied, and leaves neither; so
 * does a store that remembers another log, or more entries than the log
 * has (a log cut, or not this store's).
 */
Test(pgmigrate_store, interrupted_leaves_nothing, .timeout = 120)
{
	struct fx	 f;
	struct storage	*pg;
	unsigned char	 other[16];
	char		 out[8192], err[256] = "", id[STORE_ID_LEN + 1];
	const char	*av[] = { "", "admin", "migrate", "--from-sqlite", NULL,
			    "--store", NULL, "--to-postgresql", NULL, "--pubkey",
			    NULL, NULL, NULL };

	fx_open(&f, "fail");
	av[4] = f.log;
	av[6] = f.store;
	av[8] = f.ci;
	av[10] = f.pub;
	make_store(&f, f.log_id, f.log_size);
	cr_assert_eq(storage_open(&pg, &storage_postgresql, f.ci, err,
	    sizeof(err)), 0, "%s", err);
	snprintf(id, sizeof(id), "%s", storage_id(pg));
	storage_close(pg);
	t_pg_run(f.adm, "ALTER TABLE store_loads ADD CONSTRAINT t_refuse "
	    "CHECK (logged_seq <> 2)");
	cr_assert_eq(cli(&f, out, sizeof(out), av), 1, "%s", out);
	cr_assert(strstr(out, "t_refuse") != NULL, "%s", out);
	cr_assert(strstr(out, "nothing was migrated") != NULL, "%s", out);
	assert_nothing(&f, id);
	t_pg_run(f.adm, "ALTER TABLE store_loads DROP CONSTRAINT t_refuse");

	/* A store that remembers more of the log than the log has. */
	t_db_remove(f.store);
	make_store(&f, f.log_id, f.log_size + 5);
	cr_assert_eq(cli(&f, out, sizeof(out), av), 1, "%s", out);
	cr_assert(strstr(out, "entries were cut") != NULL, "%s", out);
	assert_nothing(&f, id);

	/* A store of another log. */
	t_db_remove(f.store);
	memset(other, 0x5a, sizeof(other));
	make_store(&f, other, 3);
	cr_assert_eq(cli(&f, out, sizeof(out), av), 1, "%s", out);
	cr_assert(strstr(out, "another") != NULL, "%s", out);
	cr_assert(strstr(out, "not the store of that log") != NULL, "%s", out);
	assert_nothing(&f, id);

	/* Its own log: now it goes, whole; --json says what went. */
	t_db_remove(f.store);
	make_store(&f, f.log_id, f.log_size);
	av[11] = "--json";
	cr_assert_eq(cli(&f, out, sizeof(out), av), 0, "%s", out);
	cr_assert_geq(compare_stores(&f), 6);
	{
		json_error_t	 je;
		json_t		*j = json_loads(out, JSON_REJECT_DUPLICATES, &je);
		char		 hex[33];

		cr_assert_not_null(j, "%s: %s", je.text, out);
		hex_encode(f.log_id, 16, hex);
		cr_assert(json_is_true(json_object_get(j, "ok")), "%s", out);
		cr_assert_eq(json_integer_value(json_object_get(json_object_get(
		    json_object_get(j, "store"), "rows"), "subjects")),
		    t_pg_int(f.adm, "SELECT count(*) FROM subjects"), "%s", out);
		cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j,
		    "store"), "remembers_log")), hex);
		cr_assert_eq(json_integer_value(json_object_get(json_object_get(j,
		    "log"), "entries")), (json_int_t)f.log_size, "%s", out);
		cr_assert_eq(json_integer_value(json_object_get(j, "entries")),
		    (json_int_t)f.log_size, "%s", out);
		json_decref(j);
	}
	fx_close(&f);
}

/*
 * A store migrated alone, into a database whose log is already there
 * (migrated before, or a daemon's): the store must remember that log, or
 * none; one of another log is refused before a daemon would refuse it.
 */
Test(pgmigrate_store, store_alone_checked_against_the_target_log,
    .timeout = 120)
{
	struct fx	 f;
	unsigned char	 other[16];
	char		 out[8192];
	const char	*log_av[] = { "", "admin", "migrate", "--from-sqlite", NULL,
			    "--to-postgresql", NULL, "--pubkey", NULL, NULL };
	const char	*store_av[] = { "", "admin", "migrate", "--store", NULL,
			    "--to-postgresql", NULL, NULL };

	fx_open(&f, "target");
	log_av[4] = f.log;
	log_av[6] = f.ci;
	log_av[8] = f.pub;
	store_av[4] = f.store;
	store_av[6] = f.ci;
	cr_assert_eq(cli(&f, out, sizeof(out), log_av), 0, "%s", out);
	memset(other, 0x33, sizeof(other));
	make_store(&f, other, 3);
	cr_assert_eq(cli(&f, out, sizeof(out), store_av), 1, "%s", out);
	cr_assert(strstr(out, "not the store of that log") != NULL, "%s", out);
	cr_assert_eq(t_pg_int(f.adm, "SELECT count(*) FROM subjects"), 0);
	cr_assert_eq(t_pg_int(f.adm, "SELECT count(*) FROM store_log"), 0);

	t_db_remove(f.store);
	make_store(&f, f.log_id, f.log_size);
	cr_assert_eq(cli(&f, out, sizeof(out), store_av), 0, "%s", out);
	cr_assert_geq(compare_stores(&f), 6);
	fx_close(&f);
}
