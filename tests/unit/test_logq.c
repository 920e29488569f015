/*
 * The log writer (daemon/logq.c): entries submitted on the event loop are
 * committed in order, each callback runs after its entry is on disk (D7),
 * and under sustained appends the WAL stays bounded while the checkpointer
 * thread copies it and keeps the subject index up with the log.
 */
#include <criterion/criterion.h>

#include <event2/event.h>
#include <event2/thread.h>

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "logq.h"
#include "logq_int.h"
#include "logstore.h"
#include "testutil.h"

static char	path[256];

static void
setup(void)
{
	snprintf(path, sizeof(path), "/tmp/safeshare-test-logq-%d.db", (int)getpid());
	t_db_remove(path);
	evthread_use_pthreads();
}

static void
teardown(void)
{
	char p[300];

	t_db_remove(path);
	snprintf(p, sizeof(p), "%s-subjects", path);
	t_db_remove(p);
}

TestSuite(logq, .init = setup, .fini = teardown);

/* Keeps the writer busy: a window of entries in flight until total are logged. */
struct pump {
	struct event_base	*base;
	struct logq		*q;
	char			*text;		/* a justification of about a page */
	int			 total, submitted, done, ok;
	uint64_t		 last_seq;
	int			 out_of_order;
	long long		 max_wal;	/* the largest -wal file seen */
	int			 window;
	struct logq_stats	 stats;		/* at the end */
	/*
	 * A reader's snapshot of the log, taken after hold_at entries and
	 * let go a second after the WAL reaches CKPT_INLINE pages.
	 */
	int			 hold_at;
	sqlite3			*hold;
};

/*
 * The WAL's bound in bytes: CKPT_INLINE pages, and the commit that crossed
 * it, at most MAX_BATCH entries (daemon/logq.c, wal_plan()), in frames of a
 * 4 KiB page and its 24-byte header after the 32-byte file header. The
 * pump's entries take a page each (the 3,500-byte justification fits one),
 * and with their share of the Merkle tree's and the signed checkpoint's
 * pages a 1,024-entry commit wrote 1,036 to 1,038 pages: 5/4 of a page an
 * entry leaves a margin, and not a second commit.
 */
#define WAL_FRAME	(4096 + 24)
#define WAL_BOUND	(32 + (long long)(CKPT_INLINE + MAX_BATCH * 5 / 4) * WAL_FRAME)

static void	on_logged(int, uint64_t, void *);

static void
let_go(evutil_socket_t fd, short what, void *arg)
{
	struct pump *p = arg;

	(void)fd;
	(void)what;
	cr_expect_eq(sqlite3_exec(p->hold, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(p->hold);
	p->hold = NULL;
}

/* Starts a read transaction on the log that keeps its snapshot until let_go(). */
static void
hold_snapshot(struct pump *p)
{
	cr_assert_eq(sqlite3_open_v2(path, &p->hold, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	cr_assert_eq(sqlite3_exec(p->hold, "BEGIN; SELECT count(*) FROM entries",
	    NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(p->hold));
}

static void
submit_some(struct pump *p, int n)
{
	for (; n > 0 && p->submitted < p->total; n--, p->submitted++) {
		struct audit_entry e;

		memset(&e, 0, sizeof(e));
		e.time = 1700000000;
		e.kind = "disclosure";
		e.agency = "police";
		e.subject = p->submitted % 3 ? "S1001" : "S1004";
		e.decision = "allow";
		e.reason = "released";
		e.justification = p->text;
		logq_submit(p->q, &e, on_logged, p);
	}
}

static void
on_logged(int ok, uint64_t seq, void *arg)
{
	struct pump	*p = arg;
	char		 wal[300];
	struct stat	 sb;

	p->ok += ok != 0;
	if (seq != p->last_seq + 1)
		p->out_of_order++;
	p->last_seq = seq;
	if (++p->done % 256 == 0) {
		snprintf(wal, sizeof(wal), "%s-wal", path);
		if (stat(wal, &sb) == 0 && sb.st_size > p->max_wal)
			p->max_wal = sb.st_size;
		if (p->hold != NULL && p->hold_at != -1 &&
		    p->max_wal >= (long long)CKPT_INLINE * WAL_FRAME) {
			struct timeval second = { 1, 0 };

			/* Once: let_go() runs a second later. */
			cr_assert_eq(event_base_once(p->base, -1, EV_TIMEOUT, let_go, p,
			    &second), 0);
			p->hold_at = -1;
		}
	}
	if (p->done == p->hold_at)
		hold_snapshot(p);
	if (p->done == p->total)
		event_base_loopbreak(p->base);
	else if (p->submitted - p->done < p->window / 2)
		submit_some(p, p->window / 2);
}

static void
run(struct pump *p, int total, int window, size_t text_len, int hold_at)
{
	struct logstore	*a;
	struct timeval	 limit = { 120, 0 };
	char		 err[256];

	memset(p, 0, sizeof(*p));
	p->total = total;
	p->window = window;
	p->hold_at = hold_at;
	p->text = malloc(text_len + 1);
	cr_assert_not_null(p->text);
	memset(p->text, 'j', text_len);
	p->text[text_len] = '\0';
	cr_assert_not_null(p->base = event_base_new());
	cr_assert_eq(logstore_open(&a, &logstore_sqlite, path, LOGSTORE_WRITER,
	    err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(p->q = logq_new(p->base, a, path));
	submit_some(p, window);
	/* Bounded: gives up after 120 s (the sanitizer build is slow). */
	event_base_loopexit(p->base, &limit);
	event_base_dispatch(p->base);
	if (p->hold != NULL)
		let_go(-1, 0, p);
	logq_stats(p->q, &p->stats);
	logq_free(p->q);
	logstore_close(a);
	event_base_free(p->base);
	free(p->text);
}

/* Every callback runs once, after its commit, in the order submitted. */
Test(logq, entries_are_logged_in_order_in_shared_commits)
{
	struct pump		 p;
	struct audit		*rd;
	struct audit_verify_result res;
	char			 err[256];

	run(&p, 3000, 1000, 40, 0);
	cr_expect_eq(p.done, 3000);
	cr_expect_eq(p.ok, 3000);
	cr_expect_eq(p.out_of_order, 0, "seqs 1, 2, 3, ... in submission order");
	/* Group commit: a thousand entries submitted in one round share commits. */
	cr_expect_eq(p.stats.entries, 3000);
	cr_expect_lt(p.stats.commits, 300, "%llu commits for 3,000 entries",
	    (unsigned long long)p.stats.commits);
	cr_expect_gt(p.stats.max_batch, 100);
	cr_assert_eq(audit_open_reader(&rd, path, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(audit_size(rd), 3000);
	audit_verify(rd, NULL, &res);
	cr_expect(res.ok, "%s", res.why);
	audit_close(rd);
}

/* Waits (at most 30 s) until a reader finds the index complete up to n; returns its check. */
static int
index_reaches(uint64_t n, uint64_t *upto, uint64_t *bad)
{
	struct audit	*rd;
	uint64_t	 missing = 0, extra = 0;
	char		 err[256];
	int		 ix = 1;

	*upto = 0;
	for (int w = 0; w < 300 && (ix != 0 || *upto < n); w++) {
		usleep(100 * 1000);
		cr_assert_eq(audit_open_reader(&rd, path, err, sizeof(err)), 0,
		    "%s", err);
		ix = audit_index_check(rd, upto, &missing, &extra, err, sizeof(err));
		audit_close(rd);
	}
	*bad = missing + extra;
	return ix;
}

/*
 * 40,000 entries of about a page each (160 MiB through the WAL) with the
 * writer never idle: the WAL must stay within its bound (CKPT_INLINE pages
 * plus the commit that crossed them, WAL_BOUND) however the checkpointer
 * keeps up, and the subject index must come up to the log. The bound
 * holds because at CKPT_INLINE the writer waits for the checkpointer's
 * pass and the index's read of the log (audit_wal_restart()); when it
 * copied passively, a loaded machine saw 86 to 90 MB now and then.
 */
Test(logq, wal_stays_bounded_under_sustained_appends, .timeout = 240)
{
	struct pump		 p;
	uint64_t		 upto = 0;
	char			 err[256];

	run(&p, 40000, 2048, 3500, 0);
	cr_expect_eq(p.done, 40000);
	cr_expect_eq(p.ok, 40000);
	cr_expect_eq(p.out_of_order, 0);
	cr_expect_gt(p.max_wal, 0);
	cr_expect_leq(p.max_wal, WAL_BOUND, "WAL grew to %lld bytes (bound %lld)",
	    p.max_wal, WAL_BOUND);
	cr_log_info("largest WAL: %lld bytes", p.max_wal);

	/* The index: built by the checkpointer thread of a fresh logq, at most 30 s. */
	{
		struct event_base	*base = event_base_new();
		struct logstore		*a;
		struct logq		*q;
		uint64_t		 bad;

		cr_assert_eq(logstore_open(&a, &logstore_sqlite, path, LOGSTORE_WRITER,
	    err, sizeof(err)), 0, "%s", err);
		cr_assert_not_null(q = logq_new(base, a, path));
		cr_expect_eq(index_reaches(40000, &upto, &bad), 0);
		cr_expect_eq(upto, 40000);
		cr_expect_eq(bad, 0);
		logq_free(q);
		logstore_close(a);
		event_base_free(base);
	}
}

/*
 * A reader of the log (an auditor's query) keeps its snapshot from the
 * 4,096th entry until a second after the WAL reached CKPT_INLINE pages:
 * the writer waits for it rather than append to a WAL it cannot restart,
 * so the WAL still stays within WAL_BOUND (a passive copy let it grow by
 * every commit of that second). Not a timing test: the second only lets
 * the writer show it would not wait.
 */
Test(logq, a_reader_holding_the_wal_does_not_let_it_grow, .timeout = 240)
{
	struct pump	 p;

	run(&p, 24000, 2048, 3500, 4096);
	cr_expect_eq(p.done, 24000);
	cr_expect_eq(p.ok, 24000);
	cr_expect_eq(p.out_of_order, 0);
	cr_expect_eq(p.hold_at, -1, "the reader let go after CKPT_INLINE pages");
	cr_expect_leq(p.max_wal, WAL_BOUND, "WAL grew to %lld bytes (bound %lld)",
	    p.max_wal, WAL_BOUND);
	cr_log_info("largest WAL: %lld bytes", p.max_wal);
}

static void
count_cb(int ok, uint64_t seq, void *arg)
{
	(void)seq;
	*(int *)arg += ok != 0;
}

/*
 * Runs the loop until *ok callbacks said logged, or 30 s: one 200 ms round
 * was not always enough for a commit on a loaded machine.
 */
static void
logged(struct event_base *base, int *ok, int want)
{
	struct timeval tick = { 0, 200 * 1000 };

	for (int i = 0; i < 150 && *ok < want; i++) {
		event_base_loopexit(base, &tick);
		event_base_dispatch(base);
	}
}

/*
 * The remedy for an index that fails verify: delete the file while the
 * daemon runs (its -wal and -shm left behind, as a hurried operator
 * would), and the checkpointer starts a new one and builds it up to the
 * log, without replaying the old WAL into it.
 */
Test(logq, a_deleted_subject_index_is_built_again, .timeout = 120)
{
	struct event_base	*base = event_base_new();
	struct logstore		*a;
	struct logq		*q;
	struct audit_entry	 e;
	uint64_t		 upto, bad;
	char			 err[256], p[300];
	int			 ok = 0;

	cr_assert_eq(logstore_open(&a, &logstore_sqlite, path, LOGSTORE_WRITER,
	    err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(q = logq_new(base, a, path));
	memset(&e, 0, sizeof(e));
	e.kind = "disclosure";
	e.subject = "S1001";
	for (int i = 0; i < 50; i++)
		logq_submit(q, &e, count_cb, &ok);
	logged(base, &ok, 50);
	cr_expect_eq(index_reaches(50, &upto, &bad), 0);
	cr_expect_eq(upto, 50);

	snprintf(p, sizeof(p), "%s-subjects", path);
	cr_assert_eq(unlink(p), 0);
	for (int i = 0; i < 30; i++)
		logq_submit(q, &e, count_cb, &ok);
	logged(base, &ok, 80);
	cr_expect_eq(ok, 80);
	cr_expect_eq(index_reaches(80, &upto, &bad), 0, "a new index file");
	cr_expect_eq(upto, 80);
	cr_expect_eq(bad, 0);
	logq_free(q);
	logstore_close(a);
	event_base_free(base);
}

/*
 * Pipelined commits (logq.c syncer()): the writer commits without an
 * fsync and the syncer thread's fdatasync of the WAL releases the replies.
 * The seam logq_set_fsync() stands in for fdatasync().
 */
static pthread_mutex_t	 gate_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 gate_cond = PTHREAD_COND_INITIALIZER;
static int		 gate_open, gate_entered;

/* Waits until the test opens the gate, then syncs for real. */
static int
gated_fsync(int fd)
{
	pthread_mutex_lock(&gate_mtx);
	gate_entered++;
	pthread_cond_broadcast(&gate_cond);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_mtx);
	pthread_mutex_unlock(&gate_mtx);
	return fdatasync(fd);
}

static int
eio_fsync(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}

struct tally {
	struct event_base	*base;
	int			 done, ok, want;
};

static void
on_tally(int ok, uint64_t seq, void *arg)
{
	struct tally *t = arg;

	(void)seq;
	t->ok += ok != 0;
	if (++t->done == t->want)
		event_base_loopbreak(t->base);
}

static void
submit_one(struct logq *q, struct tally *t)
{
	struct audit_entry e;

	memset(&e, 0, sizeof(e));
	e.time = 1700000000;
	e.kind = "disclosure";
	e.agency = "police";
	e.subject = "S1001";
	e.decision = "allow";
	e.reason = "released";
	logq_submit(q, &e, on_tally, t);
}

/* The log's size as another connection sees it: what was committed. */
static uint64_t
committed_size(void)
{
	struct audit	*rd;
	uint64_t	 n;
	char		 err[256];

	cr_assert_eq(audit_open_reader(&rd, path, err, sizeof(err)), 0, "%s", err);
	n = audit_size(rd);
	audit_close(rd);
	return n;
}

/*
 * The prologue of the two fdatasync-ordering tests: a queue in the given
 * commit mode whose fdatasync is gated_fsync(), one entry submitted and
 * committed, its fdatasync held at the gate: no callback has run and the
 * durable size is still 0.
 */
static struct logq *
start_held_in_fsync(struct tally *t, struct logstore **a, int inline_sync)
{
	struct logq_stats	 st;
	struct logq		*q;
	char			 err[256];

	cr_assert_not_null(t->base = event_base_new());
	cr_assert_eq(logstore_open(a, &logstore_sqlite, path, LOGSTORE_WRITER,
	    err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(q = logq_new(t->base, *a, path));
	if (inline_sync)
		logq_set_inline_sync(q, 1);
	logq_set_fsync(q, gated_fsync);
	submit_one(q, t);
	event_base_loop(t->base, EVLOOP_NONBLOCK);	/* hands it to the writer */
	pthread_mutex_lock(&gate_mtx);
	while (gate_entered == 0)
		pthread_cond_wait(&gate_cond, &gate_mtx);
	pthread_mutex_unlock(&gate_mtx);
	/* Committed, its fdatasync held: no callback, not yet durable. */
	cr_expect_eq(committed_size(), 1);
	for (int i = 0; i < 10; i++)
		event_base_loop(t->base, EVLOOP_NONBLOCK);
	cr_expect_eq(t->done, 0, "a callback ran before the fdatasync returned");
	logq_stats(q, &st);
	cr_expect_eq(st.size, 0, "the durable size counts an unsynced commit");
	return q;
}

/*
 * D7: no callback before the fdatasync that covers its commit returned;
 * and the writer prepares the next batch (its inserts, tree and signed
 * checkpoint) while that fdatasync runs, but writes its WAL frames (its
 * COMMIT) only after it returned (commit_gate() in logq.c).
 */
Test(logq, replies_wait_for_the_fsync_and_the_next_commit_waits_to_write, .timeout = 60)
{
	struct tally		 t = { 0 };
	struct timeval		 limit = { 30, 0 };
	struct logq_stats	 st;
	struct logq		*q;
	struct logstore		*a;

	q = start_held_in_fsync(&t, &a, 0);
	/* The second batch is prepared while the first one's sync waits... */
	submit_one(q, &t);
	event_base_loop(t.base, EVLOOP_NONBLOCK);
	for (int i = 0; i < 300; i++) {
		logq_stats(q, &st);
		if (st.gate_waits > 0 || committed_size() > 1)
			break;
		usleep(10 * 1000);
	}
	cr_expect_eq(st.gate_waits, 1, "the second batch did not wait at the gate");
	/* ... and not committed: no frame is written into a -wal being synced. */
	cr_expect_eq(committed_size(), 1, "frames written while the fdatasync ran");
	cr_expect_eq(t.done, 0);
	pthread_mutex_lock(&gate_mtx);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_mtx);
	t.want = 2;
	event_base_loopexit(t.base, &limit);
	event_base_dispatch(t.base);
	cr_expect_eq(t.done, 2);
	cr_expect_eq(t.ok, 2);
	logq_stats(q, &st);
	cr_expect_eq(st.size, 2);
	cr_expect(st.ok);
	logq_free(q);
	logstore_close(a);
	event_base_free(t.base);
}

/*
 * A failed fdatasync (EIO): the batch is in the log but not known to be on
 * disk, so it is reported failed, and the log is latched failed: a later
 * fsync that works proves nothing about the pages the kernel dropped.
 */
static void
failed_fsync_latches(int inline_sync)
{
	struct tally		 t = { 0 };
	struct timeval		 limit = { 30, 0 };
	struct logq_stats	 st;
	struct audit_entry	 e;
	struct logq		*q;
	struct logstore		*a;
	char			 err[256];

	cr_assert_not_null(t.base = event_base_new());
	cr_assert_eq(logstore_open(&a, &logstore_sqlite, path, LOGSTORE_WRITER,
	    err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(q = logq_new(t.base, a, path));
	logq_set_inline_sync(q, inline_sync);
	logq_set_fsync(q, eio_fsync);
	t.want = 3;
	for (int i = 0; i < 3; i++)
		submit_one(q, &t);
	event_base_loopexit(t.base, &limit);
	event_base_dispatch(t.base);
	cr_expect_eq(t.done, 3);
	cr_expect_eq(t.ok, 0, "ok reported for a batch whose fdatasync failed");
	logq_stats(q, &st);
	cr_expect_not(st.ok);
	cr_expect(strstr(st.why, "durable") != NULL && strstr(st.why, "restart") != NULL,
	    "%s", st.why);
	cr_expect_eq(st.size, 0);
	/* Latched: fdatasync works again, the log stays failed. */
	logq_set_fsync(q, fdatasync);
	t.done = t.ok = 0;
	t.want = 2;
	submit_one(q, &t);
	submit_one(q, &t);
	event_base_loopexit(t.base, &limit);
	event_base_dispatch(t.base);
	cr_expect_eq(t.done, 2);
	cr_expect_eq(t.ok, 0);
	memset(&e, 0, sizeof(e));
	e.kind = "disclosure";
	cr_expect_eq(logq_append_sync(q, &e), -1);
	logq_stats(q, &st);
	cr_expect_not(st.ok);
	logq_free(q);
	logstore_close(a);
	event_base_free(t.base);
}

Test(logq, a_failed_fsync_fails_the_batch_and_latches_the_log, .timeout = 60)
{
	failed_fsync_latches(0);
}

/* The same latch when the writer syncs itself (audit.commit: inline). */
Test(logq, inline_a_failed_fsync_fails_the_batch_and_latches_the_log, .timeout = 60)
{
	failed_fsync_latches(1);
}

/*
 * audit.commit: inline: no callback before the fdatasync that covers its
 * commit returned (D7), and the writer itself runs that fdatasync, so the
 * next entry waits for it instead of being committed meanwhile.
 */
Test(logq, inline_replies_wait_for_the_fsync_and_so_does_the_next_commit, .timeout = 60)
{
	struct tally		 t = { 0 };
	struct timeval		 limit = { 30, 0 };
	struct logq_stats	 st;
	struct logq		*q;
	struct logstore		*a;

	q = start_held_in_fsync(&t, &a, 1);
	/* The writer is in the fdatasync: the second entry waits (0.3 s looked at). */
	submit_one(q, &t);
	event_base_loop(t.base, EVLOOP_NONBLOCK);
	for (int i = 0; i < 30 && committed_size() < 2; i++)
		usleep(10 * 1000);
	cr_expect_eq(committed_size(), 1, "committed while the writer was to be syncing");
	pthread_mutex_lock(&gate_mtx);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_mtx);
	t.want = 2;
	event_base_loopexit(t.base, &limit);
	event_base_dispatch(t.base);
	cr_expect_eq(t.done, 2);
	cr_expect_eq(t.ok, 2);
	logq_stats(q, &st);
	cr_expect_eq(st.size, 2);
	cr_expect(st.ok);
	logq_free(q);
	logstore_close(a);
	event_base_free(t.base);
}
