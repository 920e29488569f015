/* The disclosure log: durable appends, a hash chain that catches tampering. */
#include <criterion/criterion.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"

static char		 path[256];
static struct audit	*a;

static void
setup(void)
{
	char err[256];

	snprintf(path, sizeof(path), "/tmp/safeshare-test-audit-%d.db", (int)getpid());
	unlink(path);
	cr_assert_eq(audit_open(&a, path, err, sizeof(err)), 0, "%s", err);
}

static void
teardown(void)
{
	char p[300];

	audit_close(a);
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

TestSuite(audit, .init = setup, .fini = teardown);

static void
append_n(int n)
{
	for (int i = 0; i < n; i++) {
		struct audit_entry	 e, *ep = &e;
		char			 subj[32];

		memset(&e, 0, sizeof(e));
		snprintf(subj, sizeof(subj), "S%d", i);
		e.time = 1000 + i;
		e.kind = "disclosure";
		e.agency = "police";
		e.subject = subj;
		e.decision = "allow";
		e.reason = "released";
		cr_assert_eq(audit_append(a, &ep, 1), 0, "%s", audit_errmsg(a));
		cr_assert_eq(e.seq, audit_size(a));
	}
}

static void
sql(const char *stmt)
{
	sqlite3 *db;

	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, stmt, NULL, NULL, NULL), SQLITE_OK, "%s",
	    sqlite3_errmsg(db));
	sqlite3_close(db);
}

static uint64_t
verify_bad(char *why, size_t len)
{
	uint64_t n, bad = 0;

	audit_verify(a, &n, &bad, why, len);
	return bad;
}

Test(audit, append_chains_and_verifies)
{
	uint64_t	 n, bad;
	char		 why[256];
	struct audit	*again;
	char		 err[256];

	append_n(10);
	cr_expect_eq(audit_size(a), 10);
	cr_expect_eq(audit_verify(a, &n, &bad, why, sizeof(why)), 0, "%s", why);
	cr_expect_eq(n, 10);
	/* Reopening picks the chain up where it was. */
	audit_close(a);
	cr_assert_eq(audit_open(&again, path, err, sizeof(err)), 0);
	a = again;
	append_n(2);
	cr_expect_eq(audit_size(a), 12);
	cr_expect_eq(audit_verify(a, &n, &bad, why, sizeof(why)), 0, "%s", why);
}

Test(audit, group_append_is_one_transaction)
{
	struct audit_entry	 e[5], *ep[5];
	uint64_t		 n, bad;
	char			 why[256];

	for (int i = 0; i < 5; i++) {
		memset(&e[i], 0, sizeof(e[i]));
		e[i].kind = "disclosure";
		e[i].time = i;
		ep[i] = &e[i];
	}
	cr_assert_eq(audit_append(a, ep, 5), 0);
	cr_expect_eq(e[4].seq, 5);
	cr_expect_eq(memcmp(e[4].prev_hash, e[3].hash, 32), 0);
	cr_expect_eq(audit_verify(a, &n, &bad, why, sizeof(why)), 0);
}

Test(audit, edited_entry_is_located)
{
	char why[256];

	append_n(6);
	sql("UPDATE entries SET subject = 'SOMEONE_ELSE' WHERE seq = 4");
	cr_expect_eq(verify_bad(why, sizeof(why)), 4);
	cr_expect(strstr(why, "edited") != NULL, "%s", why);
}

Test(audit, deleted_entry_is_located)
{
	char why[256];

	append_n(6);
	sql("DELETE FROM entries WHERE seq = 3");
	cr_expect_eq(verify_bad(why, sizeof(why)), 3);
	cr_expect(strstr(why, "missing") != NULL, "%s", why);
}

Test(audit, swapped_entries_are_located)
{
	char why[256];

	append_n(6);
	/* Swap the contents of 2 and 3, keeping each row's own hash valid. */
	sql("UPDATE entries SET seq = -2 WHERE seq = 2;"
	    "UPDATE entries SET seq = 2 WHERE seq = 3;"
	    "UPDATE entries SET seq = 3 WHERE seq = -2;");
	cr_expect_eq(verify_bad(why, sizeof(why)), 2, "%s", why);
}
