/*
 * What the daemon's start reads from the log (issue 13, the start-up
 * stall): the last store entry and the holder batches are looked up by
 * their own indexes, so a start reads a bounded part of the log however
 * many disclosures it holds. Measured in SQLite's virtual machine steps
 * (audit_start_steps()), not in time.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"

static char		 path[256];
static struct audit	*a;
static char		 aerr[256];

static void
setup(void)
{
	char err[256];

	snprintf(path, sizeof(path), "/tmp/safeshare-test-astart-%d.db", (int)getpid());
	unlink(path);
	cr_assert_eq(audit_open(&a, path, err, sizeof(err)), 0, "%s", err);
}

static void
teardown(void)
{
	static const char *const ext[] = { "", "-wal", "-shm", "-subjects",
	    "-subjects-wal", "-subjects-shm" };
	char p[300];

	audit_close(a);
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, ext[i]);
		unlink(p);
	}
}

TestSuite(audit_start, .init = setup, .fini = teardown);

/* One entry of kind; rid names a holder batch. */
static void
append_kind(const char *kind, const char *rid, const char *ref)
{
	struct audit_entry	 e, *ep = &e;

	memset(&e, 0, sizeof(e));
	e.time = 1000;
	e.kind = kind;
	e.agency = "childrens_social_care";
	e.decision = "write";
	e.reason = kind;
	e.request_id = rid;
	e.case_ref = ref;
	cr_assert_eq(audit_append(a, &ep, 1, aerr, sizeof(aerr)), 0, "%s", aerr);
}

/* n disclosures in commits of 500, as the log writer groups them. */
static void
append_disclosures(int n)
{
	struct audit_entry	 e[500], *ep[500];

	for (int done = 0; done < n; done += 500) {
		int k = n - done < 500 ? n - done : 500;

		for (int i = 0; i < k; i++) {
			memset(&e[i], 0, sizeof(e[i]));
			e[i].time = 1000;
			e[i].kind = "disclosure";
			e[i].agency = "police";
			e[i].subject = "S1";
			e[i].decision = "allow";
			e[i].reason = "released";
			ep[i] = &e[i];
		}
		cr_assert_eq(audit_append(a, ep, (size_t)k, aerr, sizeof(aerr)), 0, "%s", aerr);
	}
}

struct seen {
	int		 n;
	uint64_t	 first;
	char		 rid[32];
};

static int
on_batch(const char *rid, uint64_t first_seq, const char *agency,
    const char *store, int64_t when, void *arg)
{
	struct seen *s = arg;

	(void)agency;
	(void)store;
	(void)when;
	s->n++;
	s->first = first_seq;
	snprintf(s->rid, sizeof(s->rid), "%s", rid);
	return 0;
}

Test(audit_start, the_last_store_is_found_without_reading_the_disclosures)
{
	char last[128];

	append_kind("store", NULL, "store:old");
	append_kind("store", NULL, "store:new");
	append_disclosures(20000);
	cr_assert_eq(audit_last_store(a, last, sizeof(last), aerr, sizeof(aerr)), 0, "%s", aerr);
	cr_expect_str_eq(last, "store:new");
	/* A scan back through 20,000 disclosures takes over 60,000 steps. */
	cr_expect_lt(audit_start_steps(a), 200, "%llu steps",
	    (unsigned long long)audit_start_steps(a));
}

Test(audit_start, holder_batches_are_found_without_reading_the_disclosures)
{
	struct seen	s = { 0, 0, "" };
	uint64_t	first;

	append_disclosures(10000);
	append_kind("holder", "batch-1", "store:x");
	first = audit_size(a);
	append_kind("holder", "batch-1", "store:x");
	append_disclosures(10000);
	append_kind("holder", "batch-2", "store:x");
	append_kind("holder", "batch-2", "store:x");
	append_kind("holder", "batch-2", "store:x");
	{
		struct audit_entry	 e, *ep = &e;

		/* batch-2 was rolled back: not reported. */
		memset(&e, 0, sizeof(e));
		e.time = 1000;
		e.kind = "holder";
		e.agency = "childrens_social_care";
		e.decision = "rolled_back";
		e.reason = "interrupted";
		e.request_id = "batch-2";
		cr_assert_eq(audit_append(a, &ep, 1, aerr, sizeof(aerr)), 0, "%s", aerr);
	}
	cr_assert_eq(audit_holder_batches(a, 0, on_batch, &s, aerr, sizeof(aerr)), 0, "%s", aerr);
	cr_expect_eq(s.n, 1);
	cr_expect_str_eq(s.rid, "batch-1");
	cr_expect_eq(s.first, first);
	/* Only the six holder entries are read, not the 20,000 disclosures. */
	cr_expect_lt(audit_start_steps(a), 400, "%llu steps",
	    (unsigned long long)audit_start_steps(a));
	s.n = 0;
	cr_assert_eq(audit_holder_batches(a, audit_size(a), on_batch, &s, aerr, sizeof(aerr)), 0);
	cr_expect_eq(s.n, 0, "nothing after the log's end");
}
