/*
 * The log writer's syncer thread: pipelined commits (docs/audit-format.md).
 * The writer (logq.c) commits without an fsync and queues each committed
 * batch here; this thread makes them durable and releases them.
 */
#define _GNU_SOURCE		/* statx() */

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "logq.h"
#include "logq_int.h"
#include "util.h"

/*
 * Whether the -wal file at the path is the one q->walfd holds: 1, 0, or -1
 * with errno. Asks for the inode alone (statx(STATX_INO)): a stat() or
 * fstat() also reads the file's times, and on Linux 6.13 and later
 * (multigrain timestamps) a file whose times were read gets a fine-grained
 * mtime at its next write, so every commit changed the inode and every
 * fdatasync wrote the inode's block too, a second synchronous write after
 * the frames'. Unread, the mtime moves with the clock tick (4 ms at
 * HZ=250), so most commits leave the inode alone.
 */
static int
same_wal(struct logq *q)
{
	struct statx	 sp, st;

	if (statx(AT_FDCWD, q->walpath, 0, STATX_INO, &sp) == -1)
		return -1;
	if (statx(q->walfd, "", AT_EMPTY_PATH, STATX_INO, &st) == -1)
		return 0;
	return st.stx_ino == sp.stx_ino && st.stx_dev_major == sp.stx_dev_major &&
	    st.stx_dev_minor == sp.stx_dev_minor;
}

/*
 * Makes what the writer committed durable: one fdatasync() of the log's
 * -wal file, where COMMIT wrote the frames (audit_defer_sync()); an fsync
 * of any descriptor of a file flushes the file. SQLite keeps the -wal file
 * (the inode) while a connection is open; a WAL restarted from its
 * beginning, or truncated, is the same file. If another file took the
 * path, both are synced and the new one kept. Returns 0 or -1 with why.
 */
static int
sync_wal(struct logq *q, int (*fn)(int), char *why, size_t whylen)
{
	int	 fd, same;

	if (fn(q->walfd) == -1)
		return errorf(why, whylen, "fdatasync of %s: %s", q->walpath,
		    strerror(errno));
	if ((same = same_wal(q)) == -1)
		return errorf(why, whylen, "%s: %s", q->walpath, strerror(errno));
	if (same)
		return 0;
	if ((fd = open(q->walpath, O_RDWR | O_CLOEXEC)) == -1)
		return errorf(why, whylen, "%s: %s", q->walpath, strerror(errno));
	close(q->walfd);
	q->walfd = fd;
	if (fn(q->walfd) == -1)
		return errorf(why, whylen, "fdatasync of %s: %s", q->walpath,
		    strerror(errno));
	return 0;
}

/*
 * Takes every batch committed since the last fdatasync, syncs once, and
 * releases them (their callbacks, the sync waiters, the feed hook) only
 * then (D7). Called with q->mtx held, which it drops during the
 * fdatasync; by the syncer thread, or with audit.commit: inline by the
 * writer itself right after its commit (logq_set_inline_sync()). Never by
 * both: in inline mode the writer hands the syncer nothing, so q->walfd
 * is touched by one thread at a time.
 *
 * A failed fdatasync (EIO, ENOSPC) latches the log as failed: the batches
 * are in the log but not known to be on disk, so their callers get a
 * failure (nothing released), and no later fsync can prove them written
 * (the kernel may have dropped the dirty pages and cleared the error), so
 * the writer commits nothing more and /healthz says why until a restart,
 * whose start-up check reads what the disk really has.
 */
void
logq_sync_batches(struct logq *q)
{
	struct qentry	*list, *next;
	uint64_t	 size, k = 0, one = 1;
	int		 (*fn)(int);
	int		 rc, latched = q->sync_failed;
	char		 why[160];

	list = q->uhead;
	q->uhead = q->utail = NULL;
	size = q->usize;
	fn = q->fsync;
	q->syncing = 1;		/* the writer's next frames wait (commit_gate()) */
	pthread_mutex_unlock(&q->mtx);

	/* PostgreSQL (no WAL file of ours): the commit itself was durable. */
	rc = latched ? -1 : q->walfd == -1 ? 0 : sync_wal(q, fn, why, sizeof(why));

	pthread_mutex_lock(&q->mtx);
	q->syncing = 0;		/* done_cond's broadcast below wakes the gate */
	if (rc == -1 && !q->sync_failed) {
		q->sync_failed = 1;
		snprintf(q->stats.why, sizeof(q->stats.why), "the log could "
		    "not be made durable (%s): restart the daemon", why);
		log_warnx("event=audit_failed error=\"%s\"", q->stats.why);
	}
	if (q->sync_failed)
		q->stats.ok = 0;
	else
		q->stats.size = size;
	for (; list != NULL; list = next) {
		next = list->next;
		list->ok = !q->sync_failed;
		list->done = 1;
		k++;
		if (!list->sync) {
			list->next = q->done;
			q->done = list;
		}
	}
	if (q->sync_failed)
		q->stats.failures += k;
	pthread_cond_broadcast(&q->done_cond);
	if (write(q->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_warn("event=logq_wake_failed");
}

/*
 * The syncer thread (pipelined commits): the writer commits the next
 * batch while this thread's fdatasync runs, so a commit's CPU and its
 * fsync overlap.
 */
void *
logq_syncer(void *arg)
{
	struct logq	*q = arg;

	pthread_mutex_lock(&q->mtx);
	for (;;) {
		while (q->uhead == NULL && !q->sync_stop)
			pthread_cond_wait(&q->sync_cond, &q->mtx);
		if (q->uhead == NULL)
			break;
		logq_sync_batches(q);
	}
	pthread_mutex_unlock(&q->mtx);
	return NULL;
}
