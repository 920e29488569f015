/*
 * The disclosure log's queries: filters, pages and stats, and the subject
 * index that answers a subject's queries without ever changing an answer
 * (D7, D17). Split from test_audit.c, which keeps appends, the chain and
 * the checkpoints.
 */
#include <criterion/criterion.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "testutil.h"

static char		 path[256], key[256], pub[256];
static struct audit	*a;
static EVP_PKEY		*pk;
static char		 aerr[256];	/* the err of the audit calls under test */

T_AUDIT_SUITE(audit_index, 4, 3600, path, key, pub, a, pk);

static int
count_cb(const struct audit_entry *e, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

Test(audit_index, queries_filter_and_page)
{
	struct audit_filter	 f;
	int			 n = 0;

	t_audit_append(a, 10, 0);
	memset(&f, 0, sizeof(f));
	f.subject = "S3";
	cr_assert_eq(audit_query(a, &f, 0, 0, 0, count_cb, &n, aerr,
	    sizeof(aerr)), 0, "%s", aerr);
	cr_expect_eq(n, 1);
	memset(&f, 0, sizeof(f));
	n = 0;
	cr_assert_eq(audit_query(a, &f, 5, 3, 0, count_cb, &n, aerr, sizeof(aerr)), 0);
	cr_expect_eq(n, 3, "page of 3 after seq 5");
	n = 0;
	f.from_time = 1005;
	cr_assert_eq(audit_query(a, &f, 0, 0, 0, count_cb, &n, aerr, sizeof(aerr)), 0);
	cr_expect_eq(n, 5);
}


/* Appends n entries naming subjects "A" and "B" in turn. */
static void
append_ab(int n)
{
	for (int i = 0; i < n; i++) {
		struct audit_entry e, *ep = &e;

		memset(&e, 0, sizeof(e));
		e.time = 2000 + (int64_t)audit_size(a);
		e.kind = "disclosure";
		e.agency = "police";
		e.subject = (audit_size(a) + 1) % 2 ? "A" : "B";
		e.decision = "allow";
		e.reason = "released";
		cr_assert_eq(audit_append(a, &ep, 1, aerr, sizeof(aerr)), 0,
		    "%s", aerr);
	}
}

struct seqs {
	char		 s[4096];
	uint64_t	 last;
	int		 n;
};

static int
seq_cb(const struct audit_entry *e, void *arg)
{
	struct seqs *q = arg;

	snprintf(q->s + strlen(q->s), sizeof(q->s) - strlen(q->s), "%llu,",
	    (unsigned long long)e->seq);
	q->last = e->seq;
	q->n++;
	return 0;
}

/* The seqs of subject A through h, page by page of 7, oldest or newest first. */
static void
seqs_of_a(struct audit *h, int newest, char *out, size_t len)
{
	struct audit_filter	 f;
	struct seqs		 q;
	uint64_t		 after = 0;

	memset(&f, 0, sizeof(f));
	f.subject = "A";
	out[0] = '\0';
	do {
		memset(&q, 0, sizeof(q));
		cr_assert_eq(audit_query(h, &f, after, 7, newest, seq_cb, &q,
		    aerr, sizeof(aerr)), 0, "%s", aerr);
		snprintf(out + strlen(out), len - strlen(out), "%s", q.s);
		after = q.last;
	} while (q.n == 7);
}

/* What the log itself says: every odd seq up to size, A's. */
static void
expected_a(int newest, char *out, size_t len)
{
	uint64_t n = audit_size(a);

	out[0] = '\0';
	for (uint64_t i = 1; i <= n; i++) {
		uint64_t s = newest ? n + 1 - i : i;

		if (s % 2)
			snprintf(out + strlen(out), len - strlen(out), "%llu,",
			    (unsigned long long)s);
	}
}

static void
expect_subject_answers(const char *when)
{
	struct audit	*rd;
	char		 got[4096], want[4096], err[256];

	/* A reader of its own, as the daemon's auditor queries use. */
	cr_assert_eq(audit_open_reader(&rd, path, err, sizeof(err)), 0, "%s", err);
	for (int newest = 0; newest < 2; newest++) {
		expected_a(newest, want, sizeof(want));
		seqs_of_a(rd, newest, got, sizeof(got));
		cr_expect_str_eq(got, want, "%s, %s first", when, newest ? "newest" : "oldest");
	}
	audit_close(rd);
}

static int
stat_cb(const char *k, uint64_t n, void *arg)
{
	(void)k;
	*(uint64_t *)arg += n;
	return 0;
}

/*
 * Issue 16: queries are built with sqlite3_str, not appended into a fixed
 * buffer; every filter at once, with the subject read through the index
 * for part of the log and from the log for the rest, must still give the
 * answer the entries themselves give.
 */
Test(audit_index, every_filter_at_once)
{
	struct audit_index	*x;
	struct audit_filter	 f;
	uint64_t		 left, stats = 0;
	char			 err[256];
	int			 n = 0, want = 0;

	for (int i = 0; i < 24; i++) {
		struct audit_entry e, *ep = &e;
		int ov = i % 4 == 0;

		memset(&e, 0, sizeof(e));
		e.time = 3000 + i;
		e.kind = "disclosure";
		e.agency = i % 3 ? "police" : "health";
		e.practitioner = i % 5 ? "dr1" : "dr2";
		e.purpose = "safeguarding";
		e.subject = i % 2 ? "B" : "A";
		e.decision = "allow";
		e.reason = ov ? "override" : "released";
		e.override_code = ov ? "serious_crime" : "";
		cr_assert_eq(audit_append(a, &ep, 1, aerr, sizeof(aerr)), 0,
		    "%s", aerr);
		if (i % 2 == 0 && i % 3 && i % 5 && ov && i >= 1 && i < 23)
			want++;
	}
	cr_assert_eq(audit_index_open(&x, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(audit_index_update(x, 10, &left, aerr, sizeof(aerr)), 0,
	    "%s", aerr);
	audit_index_close(x);
	memset(&f, 0, sizeof(f));
	f.subject = "A";
	f.agency = "police";
	f.practitioner = "dr1";
	f.purpose = "safeguarding";
	f.decision = "allow";
	f.reason = "override";
	f.kind = "disclosure";
	f.overrides_only = 1;
	f.from_time = 3001;
	f.to_time = 3023;
	cr_assert_gt(want, 0);
	cr_assert_eq(audit_query(a, &f, 0, 0, 1, count_cb, &n, aerr,
	    sizeof(aerr)), 0, "%s", aerr);
	cr_expect_eq(n, want);
	cr_assert_eq(audit_stats(a, &f, "day", stat_cb, &stats, aerr,
	    sizeof(aerr)), 0, "%s", aerr);
	cr_expect_eq(stats, (uint64_t)want);
}

/*
 * The subject index lives beside the log and lags it; answers by subject
 * must not depend on it: none, part way, caught up, behind again, from
 * another log, rebuilt.
 */
Test(audit_index, subject_index_never_changes_an_answer)
{
	struct audit_index	*x;
	struct audit_filter	 f;
	uint64_t		 left, n = 0;
	char			 err[256];

	append_ab(40);
	expect_subject_answers("no index file");

	cr_assert_eq(audit_index_open(&x, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(audit_index_update(x, 15, &left, aerr, sizeof(aerr)), 0,
	    "%s", aerr);
	cr_expect_eq(left, 25);
	expect_subject_answers("indexed up to 15");
	memset(&f, 0, sizeof(f));
	f.subject = "A";
	cr_assert_eq(audit_stats(a, &f, "kind", stat_cb, &n, aerr,
	    sizeof(aerr)), 0, "%s", aerr);
	cr_expect_eq(n, 20, "stats by subject");

	while (left > 0)
		cr_assert_eq(audit_index_update(x, 15, &left, aerr, sizeof(aerr)), 0);
	expect_subject_answers("caught up");
	append_ab(9);
	expect_subject_answers("behind again");
	audit_index_close(x);

	/* An index file left from another log is not believed... */
	t_audit_index_sql(path, "UPDATE state SET log_id = X'00'");
	expect_subject_answers("an index of another log");
	/* ...and is started again; a deleted one is built again. */
	cr_assert_eq(audit_index_open(&x, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(audit_index_update(x, 1000, &left, aerr, sizeof(aerr)), 0);
	cr_expect_eq(left, 0);
	expect_subject_answers("started again");
	audit_index_close(x);
	t_audit_index_remove(path);
	cr_assert_eq(audit_index_open(&x, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(audit_index_update(x, 10, &left, aerr, sizeof(aerr)), 0);
	expect_subject_answers("rebuilt part way");
	audit_index_close(x);
}

/* A log restored from a backup is shorter than its index: the index starts again. */
Test(audit_index, subject_index_of_a_longer_past_is_not_believed)
{
	struct audit_index	*x;
	struct audit_filter	 f;
	uint64_t		 left, n = 0;
	char			 err[256];

	append_ab(40);
	cr_assert_eq(audit_index_open(&x, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(audit_index_update(x, 1000, &left, aerr, sizeof(aerr)), 0);
	audit_index_close(x);
	audit_close(a);
	t_sql(path, "DELETE FROM entries WHERE seq > 30");
	cr_assert_eq(audit_open(&a, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(audit_index_open(&x, path, err, sizeof(err)), 0, "%s", err);
	for (int i = 0; i < 10; i++) {
		struct audit_entry e, *ep = &e;

		memset(&e, 0, sizeof(e));
		e.time = 3000 + i;
		e.kind = "disclosure";
		e.subject = "C";
		cr_assert_eq(audit_append(a, &ep, 1, aerr, sizeof(aerr)), 0,
		    "%s", aerr);
	}
	memset(&f, 0, sizeof(f));
	f.subject = "C";
	cr_assert_eq(audit_stats(a, &f, "kind", stat_cb, &n, aerr,
	    sizeof(aerr)), 0, "%s", aerr);
	cr_expect_eq(n, 10, "the new entries at seqs the old index had covered");
	cr_assert_eq(audit_index_update(x, 1000, &left, aerr, sizeof(aerr)), 0);
	n = 0;
	cr_assert_eq(audit_stats(a, &f, "kind", stat_cb, &n, aerr, sizeof(aerr)), 0);
	cr_expect_eq(n, 10);
	audit_index_close(x);
}

/* Opens the log's subject index, indexes at most n more entries; returns how many are left. */
static uint64_t
index_some(uint64_t n)
{
	struct audit_index	*x;
	uint64_t		 left;
	char			 err[256];

	cr_assert_eq(audit_index_open(&x, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(audit_index_update(x, n, &left, aerr, sizeof(aerr)), 0,
	    "%s", aerr);
	audit_index_close(x);
	return left;
}

/* verify --log also checks the index: a row taken out or put in is found. */
Test(audit_index, subject_index_check_finds_missing_and_extra_rows)
{
	uint64_t		 upto, missing, extra;

	append_ab(20);
	cr_expect_eq(audit_index_check(a, &upto, &missing, &extra, aerr,
	    sizeof(aerr)), 1, "no index file");
	cr_expect_eq(index_some(15), 5);
	cr_assert_eq(audit_index_check(a, &upto, &missing, &extra, aerr,
	    sizeof(aerr)), 0, "%s", aerr);
	cr_expect_eq(upto, 15);
	cr_expect_eq(missing, 0);
	cr_expect_eq(extra, 0);

	t_audit_index_sql(path, "DELETE FROM subject_index WHERE seq = 3; "
	    "INSERT INTO subject_index VALUES (0, 'Z', 4)");
	cr_assert_eq(audit_index_check(a, &upto, &missing, &extra, aerr,
	    sizeof(aerr)), 0);
	cr_expect_eq(missing, 1, "entry 3 hidden from A's report");
	cr_expect_eq(extra, 1, "a row for Z the log does not have");
	/* A row filed under another generation is never looked up there. */
	t_audit_index_sql(path, "UPDATE subject_index SET gen = 1 WHERE seq = 5");
	cr_assert_eq(audit_index_check(a, &upto, &missing, &extra, aerr,
	    sizeof(aerr)), 0);
	cr_expect_eq(missing, 2, "entry 5 hidden too");
	cr_expect_eq(extra, 2);
}

/* Appends n entries in batches; every 997th seq names "A", the rest "X". */
static void
append_sparse(int n)
{
	struct audit_entry	 es[500], *ep[500];

	while (n > 0) {
		int k = n < 500 ? n : 500;

		for (int i = 0; i < k; i++) {
			memset(&es[i], 0, sizeof(es[i]));
			es[i].time = 5000;
			es[i].kind = "disclosure";
			es[i].subject = (audit_size(a) + 1 + (uint64_t)i) % 997 ? "X" : "A";
			ep[i] = &es[i];
		}
		cr_assert_eq(audit_append(a, ep, (size_t)k, aerr, sizeof(aerr)),
		    0, "%s", aerr);
		n -= k;
	}
}

/* The seqs of A the log has: every 997th. */
static void
expected_sparse(int newest, char *out, size_t len)
{
	uint64_t n = audit_size(a) / 997;

	out[0] = '\0';
	for (uint64_t i = 1; i <= n; i++)
		snprintf(out + strlen(out), len - strlen(out), "%llu,",
		    (unsigned long long)(997 * (newest ? n + 1 - i : i)));
}

/*
 * The index is filed by generation of 4,096 seqs: a subject's entries in
 * several generations, some indexed and some not, come back whole and in
 * order, page by page, either way.
 */
Test(audit_index, subject_index_spans_generations)
{
	struct audit_index	*x;
	uint64_t		 left, upto, missing, extra;
	char			 err[256], got[4096], want[4096];
	const uint64_t		 steps[] = { 0, 5000, 3000, 0 };

	append_sparse(10000);
	cr_assert_eq(audit_index_open(&x, path, err, sizeof(err)), 0, "%s", err);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (steps[i])
			cr_assert_eq(audit_index_update(x, steps[i], &left,
			    aerr, sizeof(aerr)), 0, "%s", aerr);
		for (int newest = 0; newest < 2; newest++) {
			expected_sparse(newest, want, sizeof(want));
			seqs_of_a(a, newest, got, sizeof(got));
			cr_expect_str_eq(got, want, "step %zu, %s first", i,
			    newest ? "newest" : "oldest");
		}
	}
	cr_expect_eq(left, 2000);
	cr_assert_eq(audit_index_update(x, 10000, &left, aerr, sizeof(aerr)), 0);
	cr_expect_eq(left, 0);
	expected_sparse(1, want, sizeof(want));
	seqs_of_a(a, 1, got, sizeof(got));
	cr_expect_str_eq(got, want, "caught up");
	audit_index_close(x);
	cr_assert_eq(audit_index_check(a, &upto, &missing, &extra, aerr,
	    sizeof(aerr)), 0, "%s", aerr);
	cr_expect_eq(upto, 10000);
	cr_expect_eq(missing + extra, 0);
}

/* An index file of the first layout (subject, seq) is emptied and rebuilt, never read. */
Test(audit_index, subject_index_of_the_old_layout_is_rebuilt)
{
	uint64_t		 upto, missing, extra;

	append_ab(30);
	/* This log's own index (its log_id), complete (it says) up to 30. */
	t_audit_index_sql(path, "CREATE TABLE subject_index(subject TEXT NOT NULL,"
	    " seq INTEGER NOT NULL, PRIMARY KEY(subject, seq)) WITHOUT ROWID;"
	    "CREATE TABLE state(id INTEGER PRIMARY KEY CHECK(id = 1), log_id BLOB,"
	    " upto INTEGER NOT NULL); INSERT INTO state VALUES (1, (SELECT value "
	    "FROM lg.meta WHERE key = 'log_id'), 30);"
	    "INSERT INTO subject_index VALUES ('A', 2)");
	expect_subject_answers("an old index beside the log");

	cr_expect_eq(index_some(20), 10, "started again from nothing");
	expect_subject_answers("rebuilt part way");
	cr_assert_eq(audit_index_check(a, &upto, &missing, &extra, aerr,
	    sizeof(aerr)), 0, "%s", aerr);
	cr_expect_eq(upto, 20);
	cr_expect_eq(missing + extra, 0);
}

/*
 * The index's update must not take the log's write lock: with the log's
 * writer in the middle of a transaction, it goes ahead (BEGIN IMMEDIATE
 * would wait out the busy timeout and fail).
 */
Test(audit_index, subject_index_update_leaves_the_log_writable)
{
	sqlite3 *db;

	append_ab(20);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	cr_expect_eq(index_some(100), 0);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	expect_subject_answers("indexed while the log was being written");
}

/*
 * The state row is outside the chain: an index claiming far more than the
 * log holds is believed only up to the log's end (and a query does not
 * walk a trillion generations).
 */
Test(audit_index, subject_index_is_never_believed_past_the_log, .timeout = 30)
{
	uint64_t	 upto, missing, extra;

	append_ab(30);
	cr_expect_eq(index_some(1000), 0);
	t_audit_index_sql(path, "UPDATE state SET upto = 4000000000000");
	expect_subject_answers("an index that claims too much");
	cr_assert_eq(audit_index_check(a, &upto, &missing, &extra, aerr,
	    sizeof(aerr)), 0, "%s", aerr);
	cr_expect_eq(upto, 30);
	cr_expect_eq(missing + extra, 0);
}

/*
 * A long-lived reader (the daemon's, for auditors' queries) that attached
 * a bad index must not go on reading it once the file has been deleted and
 * built again: the remedy verify gives has to reach its reports too.
 */
Test(audit_index, a_reader_moves_to_a_rebuilt_subject_index)
{
	struct audit	*rd;
	char		 got[4096], want[4096], err[256];

	append_ab(30);
	cr_expect_eq(index_some(1000), 0);
	cr_assert_eq(audit_open_reader(&rd, path, err, sizeof(err)), 0, "%s", err);
	t_audit_index_sql(path, "DELETE FROM subject_index WHERE seq = 3");
	seqs_of_a(rd, 0, got, sizeof(got));
	cr_expect(strncmp(got, "1,5,", 4) == 0, "the bad index is read: %s", got);

	t_audit_index_remove(path);
	cr_expect_eq(index_some(1000), 0, "built again");
	expected_a(0, want, sizeof(want));
	seqs_of_a(rd, 0, got, sizeof(got));
	cr_expect_str_eq(got, want, "the same reader, after the rebuild");
	audit_close(rd);
}

/*
 * Issue 13 item 5: the start's decision from what the store remembers and
 * the log it finds. Pure: no files. The same log, as long or longer, is
 * used; a missing, new, other or shorter log is refused with the reason.
 */
Test(audit_index, memory_check_refuses_a_missing_other_or_shorter_log)
{
	struct audit_memory	 mem;
	unsigned char		 same[16], other[16];
	char			 why[300];

	memset(mem.log_id, 0x11, sizeof(mem.log_id));
	mem.size = 500;
	memcpy(same, mem.log_id, 16);
	memset(other, 0x22, sizeof(other));

	why[0] = '\0';
	cr_expect_eq(audit_memory_check(&mem, "the store", 1, same, 500, why,
	    sizeof(why)), 0, "the log as remembered");
	cr_expect_eq(audit_memory_check(&mem, "the store", 1, same, 900, why,
	    sizeof(why)), 0, "grown since the last mark (a kill -9)");

	cr_expect_eq(audit_memory_check(&mem, "the store", 0, same, 0, why,
	    sizeof(why)), -1);
	cr_expect(strstr(why, "the store remembers log 1111") != NULL, "%s", why);
	cr_expect(strstr(why, "500 entries, and the log is missing") != NULL, "%s", why);

	cr_expect_eq(audit_memory_check(&mem, "the store", 1, other, 0, why,
	    sizeof(why)), -1, "deleted with its index and recreated empty");
	cr_expect(strstr(why, "this is a new, empty log 2222") != NULL, "%s", why);

	cr_expect_eq(audit_memory_check(&mem, "the store", 1, other, 600, why,
	    sizeof(why)), -1, "another log, even a longer one");
	cr_expect(strstr(why, "this is another log 2222") != NULL, "%s", why);
	cr_expect(strstr(why, "with 600 entries") != NULL, "%s", why);

	cr_expect_eq(audit_memory_check(&mem, "the subject index", 1, same, 499,
	    why, sizeof(why)), -1, "cut from the end");
	cr_expect(strstr(why, "the subject index remembers") != NULL, "%s", why);
	cr_expect(strstr(why, "it has only 499") != NULL, "%s", why);

	mem.size = 0;
	cr_expect_eq(audit_memory_check(&mem, "the store", 1, same, 0, why,
	    sizeof(why)), 0, "an empty log remembered empty");
}

/* The seqs a query gives, in order, into a fixed list. */
struct wseqs {
	uint64_t	s[128];
	int		n;
};

static int
wseq_cb(const struct audit_entry *e, void *arg)
{
	struct wseqs *q = arg;

	if (q->n < 128)
		q->s[q->n] = e->seq;
	q->n++;
	return 0;
}

/* Every window [from, to) over the entries' times, both orders, paged, against the times themselves. */
static void
check_windows(const int64_t *times, int n)
{
	for (int64_t from = 4990; from <= 5030; from++)
		for (int64_t to = from; to <= 5031; to += 3) {
			struct audit_filter	 f;
			struct wseqs		 asc, desc;
			uint64_t		 stats = 0;
			int			 want = 0;

			memset(&f, 0, sizeof(f));
			memset(&asc, 0, sizeof(asc));
			memset(&desc, 0, sizeof(desc));
			f.from_time = from == 4990 ? 0 : from;	/* 0: no bound */
			f.to_time = to == 5031 ? 0 : to;
			cr_assert_eq(audit_query(a, &f, 0, 0, 0, wseq_cb, &asc, aerr,
			    sizeof(aerr)), 0, "%s", aerr);
			cr_assert_eq(audit_query(a, &f, 0, 0, 1, wseq_cb, &desc, aerr,
			    sizeof(aerr)), 0, "%s", aerr);
			cr_assert_eq(audit_stats(a, &f, "day", stat_cb, &stats, aerr,
			    sizeof(aerr)), 0, "%s", aerr);
			for (int i = 0; i < n; i++) {
				if ((f.from_time && times[i] < f.from_time) ||
				    (f.to_time && times[i] >= f.to_time))
					continue;
				cr_assert_lt(want, asc.n, "[%lld, %lld)", (long long)from,
				    (long long)to);
				cr_assert_eq(asc.s[want], (uint64_t)i + 1);
				cr_assert_eq(desc.s[asc.n - 1 - want], (uint64_t)i + 1);
				want++;
			}
			cr_assert_eq(asc.n, want, "[%lld, %lld): %d entries, want %d",
			    (long long)from, (long long)to, asc.n, want);
			cr_assert_eq(desc.n, want);
			cr_assert_eq(stats, (uint64_t)want);
		}
}

/*
 * A log made now has no index on time (audit.c: its times never decrease,
 * D7, so a window is a seq range); every window must answer as the times
 * say, and as it does on a log made before, which keeps entries_time.
 */
Test(audit_index, time_windows_without_the_time_index)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	int64_t		 times[60];
	int		 n = 0;

	for (int i = 0; i < 60; i++) {
		struct audit_entry	 e, *ep = &e;

		memset(&e, 0, sizeof(e));
		/* Three a second, a gap, and a clock set back (kept at the last time). */
		e.time = i == 40 ? 4000 : 5000 + i / 3 + (i >= 30 ? 5 : 0);
		e.kind = "disclosure";
		e.agency = "police";
		e.subject = "A";
		cr_assert_eq(audit_append(a, &ep, 1, aerr, sizeof(aerr)), 0, "%s", aerr);
		times[n++] = e.time;
	}
	cr_assert_eq(times[40], times[39], "the clock rule keeps the last time");
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'entries_time'", -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_expect_eq(sqlite3_column_int(st, 0), 0, "a new log has entries_time");
	sqlite3_finalize(st);
	sqlite3_close(db);
	check_windows(times, n);
	/* A log made before: the same answers through its index. */
	t_sql(path, "CREATE INDEX entries_time ON entries(time)");
	audit_close(a);
	cr_assert_eq(audit_open(&a, path, aerr, sizeof(aerr)), 0, "%s", aerr);
	check_windows(times, n);
}

static const char *const agencies[] = { "police", "health_trust", "school" };

/*
 * Every agency's entries, alone and with a time window, both orders and a
 * page of five after a seq, against what was appended (entry i is from
 * agencies[i % 3], dated 5000 + i / 4).
 */
static void
check_agencies(int n)
{
	for (int k = 0; k < 3; k++)
		for (int w = 0; w < 3; w++) {
			struct audit_filter	 f;
			struct wseqs		 asc, desc, page;
			uint64_t		 stats = 0;
			int			 want = 0, paged = 0;

			memset(&f, 0, sizeof(f));
			memset(&asc, 0, sizeof(asc));
			memset(&desc, 0, sizeof(desc));
			memset(&page, 0, sizeof(page));
			f.agency = agencies[k];
			f.from_time = w == 0 ? 0 : 5003 + w;
			f.to_time = w == 2 ? 5011 : 0;
			cr_assert_eq(audit_query(a, &f, 0, 0, 0, wseq_cb, &asc, aerr,
			    sizeof(aerr)), 0, "%s", aerr);
			cr_assert_eq(audit_query(a, &f, 0, 0, 1, wseq_cb, &desc, aerr,
			    sizeof(aerr)), 0, "%s", aerr);
			cr_assert_eq(audit_query(a, &f, 20, 5, 0, wseq_cb, &page, aerr,
			    sizeof(aerr)), 0, "%s", aerr);
			cr_assert_eq(audit_stats(a, &f, "agency", stat_cb, &stats, aerr,
			    sizeof(aerr)), 0, "%s", aerr);
			for (int i = 0; i < n; i++) {
				int64_t t = 5000 + i / 4;

				if (i % 3 != k || (f.from_time && t < f.from_time) ||
				    (f.to_time && t >= f.to_time))
					continue;
				cr_assert_lt(want, asc.n, "%s, window %d", agencies[k], w);
				cr_assert_eq(asc.s[want], (uint64_t)i + 1);
				cr_assert_eq(desc.s[asc.n - 1 - want], (uint64_t)i + 1);
				if (i + 1 > 20 && paged < 5)
					cr_assert_eq(page.s[paged++], (uint64_t)i + 1);
				want++;
			}
			cr_assert_eq(asc.n, want, "%s, window %d: %d entries, want %d",
			    agencies[k], w, asc.n, want);
			cr_assert_eq(desc.n, want);
			cr_assert_eq(page.n, paged);
			cr_assert_eq(stats, (uint64_t)want);
		}
}

/*
 * A log made now has no index on agency (audit.c: it cost every group
 * commit about a sixth of the WAL pages it wrote and synced); queries by
 * agency answer as before, by reading the entries, and as they do on a
 * log made before, which keeps entries_agency.
 */
Test(audit_index, agency_queries_without_the_agency_index)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	int		 n = 60;

	for (int i = 0; i < n; i++) {
		struct audit_entry	 e, *ep = &e;

		memset(&e, 0, sizeof(e));
		e.time = 5000 + i / 4;
		e.kind = "disclosure";
		e.agency = agencies[i % 3];
		e.subject = "A";
		cr_assert_eq(audit_append(a, &ep, 1, aerr, sizeof(aerr)), 0, "%s", aerr);
	}
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'entries_agency'", -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_expect_eq(sqlite3_column_int(st, 0), 0, "a new log has entries_agency");
	sqlite3_finalize(st);
	sqlite3_close(db);
	check_agencies(n);
	/* A log made before: the same answers through its index. */
	t_sql(path, "CREATE INDEX entries_agency ON entries(agency, seq)");
	audit_close(a);
	cr_assert_eq(audit_open(&a, path, aerr, sizeof(aerr)), 0, "%s", aerr);
	check_agencies(n);
}
