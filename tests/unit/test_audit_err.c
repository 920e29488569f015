/*
 * Issue 16 item 5: the log's functions say why they failed in the caller's
 * err/errlen (docs/hacking.md "Errors"), one class of failure each: a
 * write, a read, the subject index, and a verify whose log cannot be read
 * (its verdict's why). Each err starts empty, so a message left anywhere
 * else (the handle, as audit_errmsg() did) fails the test.
 */
#include <criterion/criterion.h>

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "testutil.h"

static char		 path[256], ipath[300];
static struct audit	*a;
static char		 err[256];	/* the err of the call under test */

static void
setup(void)
{
	snprintf(path, sizeof(path), "/tmp/safeshare-test-audit-err-%d.db",
	    (int)getpid());
	snprintf(ipath, sizeof(ipath), "%s-subjects", path);
	t_db_remove(path);
	t_db_remove(ipath);
	cr_assert_eq(audit_open(&a, path, err, sizeof(err)), 0, "%s", err);
	err[0] = '\0';
}

static void
teardown(void)
{
	audit_close(a);
	t_db_remove(path);
	t_db_remove(ipath);
}

TestSuite(audit_err, .init = setup, .fini = teardown);

static void
append_n(int n)
{
	char why[256];

	for (int i = 0; i < n; i++) {
		struct audit_entry	 e, *ep = &e;

		memset(&e, 0, sizeof(e));
		e.time = 1000 + i;
		e.kind = "disclosure";
		e.subject = i % 2 ? "A" : "B";
		cr_assert_eq(audit_append(a, &ep, 1, why, sizeof(why)), 0, "%s", why);
	}
}

/* Runs SQL on a database file (the log, or its subject index). */
static void
sql(const char *file, const char *stmt)
{
	sqlite3 *db;

	cr_assert_eq(sqlite3_open(file, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, stmt, NULL, NULL, NULL), SQLITE_OK, "%s",
	    sqlite3_errmsg(db));
	sqlite3_close(db);
}

static int
count_cb(const struct audit_entry *e, void *arg)
{
	(void)e;
	++*(int *)arg;
	return 0;
}

static int
stat_cb(const char *k, uint64_t n, void *arg)
{
	(void)k;
	(void)n;
	(void)arg;
	return 0;
}

static int
cp_cb(const struct audit_checkpoint *cp, void *arg)
{
	(void)cp;
	(void)arg;
	return 0;
}

/* A write: an append through a reader's connection (read-only). */
Test(audit_err, an_append_to_a_read_only_log_says_why)
{
	struct audit		*rd;
	struct audit_entry	 e, *ep = &e;

	append_n(2);
	cr_assert_eq(audit_open_reader(&rd, path, err, sizeof(err)), 0, "%s", err);
	memset(&e, 0, sizeof(e));
	e.time = 2000;
	e.kind = "disclosure";
	err[0] = '\0';
	cr_expect_eq(audit_append(rd, &ep, 1, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "the log is open read-only");
	cr_expect_eq(audit_size(rd), 2, "nothing was written");
	audit_close(rd);
}

/* Reads: a request the log refuses, a table that is gone, a tree it lacks. */
Test(audit_err, a_failed_read_says_why)
{
	struct audit_filter	 f;
	unsigned char		 root[32];
	char			*note;
	int			 n = 0;

	append_n(3);
	memset(&f, 0, sizeof(f));
	cr_expect_eq(audit_stats(a, &f, "colour", stat_cb, NULL, err, sizeof(err)), -1);
	cr_expect(strstr(err, "cannot group by \"colour\"") != NULL, "err: \"%s\"", err);

	err[0] = '\0';
	cr_expect_eq(audit_root(a, 99, root, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "no tree of 99 entries");

	sql(path, "DROP TABLE checkpoints");
	err[0] = '\0';
	cr_expect_eq(audit_checkpoints(a, cp_cb, NULL, err, sizeof(err)), -1);
	cr_expect(strstr(err, "checkpoints: no such table") != NULL, "err: \"%s\"", err);
	err[0] = '\0';
	cr_expect_eq(audit_checkpoint_note(a, 0, &note, err, sizeof(err)), -1);
	cr_expect(strstr(err, "checkpoint note: no such table") != NULL, "err: \"%s\"",
	    err);

	sql(path, "ALTER TABLE entries RENAME TO gone");
	err[0] = '\0';
	cr_expect_eq(audit_scan(a, 1, 0, count_cb, &n, err, sizeof(err)), -1);
	cr_expect(strstr(err, "scan: no such table") != NULL, "err: \"%s\"", err);
	err[0] = '\0';
	cr_expect_eq(audit_query(a, &f, 0, 0, 0, count_cb, &n, err, sizeof(err)), -1);
	cr_expect(strstr(err, "query: no such table") != NULL, "err: \"%s\"", err);
	err[0] = '\0';
	cr_expect_eq(audit_reviews_pending(a, count_cb, &n, err, sizeof(err)), -1);
	cr_expect(strstr(err, "pending: no such table") != NULL, "err: \"%s\"", err);
	cr_expect_eq(n, 0);
}

/*
 * The subject index: an update that fails says why (the daemon's
 * event=subject_index_failed) and leaves no transaction open.
 */
Test(audit_err, a_failed_index_update_says_why)
{
	struct audit_index	*x;
	uint64_t		 left;

	append_n(5);
	cr_assert_eq(audit_index_open(&x, path, err, sizeof(err)), 0, "%s", err);
	sql(ipath, "DROP TABLE state");
	err[0] = '\0';
	cr_expect_eq(audit_index_update(x, 10, &left, err, sizeof(err)), -1);
	cr_expect(strstr(err, "state: no such table") != NULL, "err: \"%s\"", err);
	sql(ipath, "CREATE TABLE state(id INTEGER PRIMARY KEY, log_id BLOB, upto INTEGER);"
	    "INSERT INTO state VALUES (1, NULL, 0)");
	cr_expect_eq(audit_index_update(x, 10, &left, err, sizeof(err)), 0, "%s", err);
	audit_index_close(x);
}

/*
 * A log whose pages were cut off: the reader's open says why (the CLI's
 * audit verify prints it).
 */
Test(audit_err, a_truncated_log_says_why)
{
	struct audit	*rd = NULL;
	struct stat	 sb;

	append_n(400);
	audit_close(a);
	a = NULL;
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_gt(sb.st_size, 8 * 4096);
	cr_assert_eq(truncate(path, 4 * 4096), 0);
	cr_expect_eq(audit_open_reader(&rd, path, err, sizeof(err)), -1);
	cr_expect(strstr(err, path) != NULL && strstr(err, "malformed") != NULL,
	    "err: \"%s\"", err);
	audit_close(rd);
}

/*
 * A log that opens but whose entries cannot be read: the verify's verdict
 * says why it does not verify (res.why, the one result that keeps its
 * reason in a struct).
 */
Test(audit_err, a_verify_of_an_unreadable_log_says_why)
{
	struct audit_verify_result	 r;
	struct audit			*rd;

	append_n(3);
	sql(path, "DROP INDEX entries_ref; ALTER TABLE entries DROP COLUMN ref_seq");
	cr_assert_eq(audit_open_reader(&rd, path, err, sizeof(err)), 0, "%s", err);
	memset(&r, 0, sizeof(r));
	cr_expect_neq(audit_verify(rd, NULL, &r), 0);
	cr_expect_not(r.ok);
	cr_expect(strstr(r.why, "scan: no such column: ref_seq") != NULL, "why: \"%s\"",
	    r.why);
	audit_close(rd);
}
