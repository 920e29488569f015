#include <sys/eventfd.h>
#include <sys/stat.h>

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "logq.h"
#include "logq_int.h"
#include "util.h"

/*
 * Entries the subject index takes per transaction: a catching-up index
 * (new, or rebuilt) commits every batch, so WAL copies and the second's
 * checks for a deleted file come between them.
 */
#define INDEX_BATCH	2048

/* Deep-copies an entry's strings into one allocation. */
static struct qentry *
qentry_new(const struct audit_entry *src)
{
	const char	**sp[AUDIT_NSTRINGS];
	struct qentry	*q;
	struct audit_entry tmp = *src;
	size_t		 need = 0, off = 0;
	int		 i = 0;

	audit_entry_strings(&tmp, sp);
	for (i = 0; i < AUDIT_NSTRINGS; i++)
		need += (*sp[i] ? strlen(*sp[i]) : 0) + 1;
	q = xcalloc(1, sizeof(*q) + need);
	for (i = 0; i < AUDIT_NSTRINGS; i++) {
		size_t len = *sp[i] ? strlen(*sp[i]) : 0;

		if (len)
			memcpy(q->strings + off, *sp[i], len);
		q->strings[off + len] = '\0';
		*sp[i] = q->strings + off;
		off += len + 1;
	}
	q->e = tmp;
	return q;
}

static unsigned
hist_bucket(size_t n)
{
	unsigned b = 0;

	while (n > 1 && b < 7) {
		n >>= 1;
		b++;
	}
	return b;
}

/*
 * After a commit, with q->mtx held: wakes the checkpointer when the WAL
 * has CKPT_PAGES; returns 1 if the writer must checkpoint itself. A WAL is
 * started again from its beginning only by a commit that finds every frame
 * already copied and no reader still using one, which a checkpointer
 * racing sustained appends seldom leaves it; so at CKPT_INLINE pages the
 * writer copies what is left (by then little: the checkpointer has been
 * copying all along), waiting for the checkpointer's pass and for readers
 * of the WAL (audit_wal_restart()), and its next commit restarts the WAL.
 * The WAL is then at most CKPT_INLINE pages plus one commit of MAX_BATCH
 * entries (logq_int.h).
 */
static int
wal_plan(struct logq *q)
{
	int pages;

	if (q->audit == NULL)
		return 0;	/* PostgreSQL: no WAL of ours */
	pages = audit_wal_pages(q->audit);

	if (pages < CKPT_INLINE)
		q->ckpt_held = 0;	/* restarted */
	else
		return 1;
	if (pages >= CKPT_PAGES && !q->ckpt_running) {
		q->ckpt_wanted = 1;
		pthread_cond_signal(&q->ckpt_cond);
	}
	return 0;
}

/*
 * The writer's checkpoint at CKPT_INLINE pages, with q->mtx held, which it
 * drops for the copy: audit_wal_restart() waits for readers, but not for
 * the checkpointer thread's pass (SQLite's checkpoint lock is not waited
 * for), so the writer waits for that pass itself and tries again when one
 * got in its way. Returns as audit_wal_restart().
 */
static int
wal_restart(struct logq *q, char *err, size_t errlen)
{
	uint64_t	passes;
	int		r, tries = 0;

	for (;;) {
		while (q->ckpt_running)
			pthread_cond_wait(&q->ckpt_cond, &q->mtx);
		passes = q->stats.wal_checkpoints;
		pthread_mutex_unlock(&q->mtx);
		r = audit_wal_restart(q->audit, err, errlen);
		pthread_mutex_lock(&q->mtx);
		if (r != 1 || (!q->ckpt_running && passes == q->stats.wal_checkpoints) ||
		    ++tries == 4)
			return r;
	}
}

/*
 * The writer's commit gate (audit_set_commit_gate()), on its thread inside
 * the group commit, between the batch's statements and the COMMIT that
 * writes their WAL frames: with pipelined commits, the frames wait until
 * the syncer's fdatasync of the -wal returns. Written while it ran, they
 * made that fdatasync take about three times as long (BENCHMARKS.md,
 * "Pipelined commits"); the batch's inserts, hashes and signature, most of
 * the writer's CPU, still run during it. With audit.commit: inline the
 * writer syncs after its own COMMIT, so nothing runs here.
 */
static void
commit_gate(void *arg)
{
	struct logq	*q = arg;

	pthread_mutex_lock(&q->mtx);
	if (q->syncing)
		q->stats.gate_waits++;
	while (q->syncing)
		pthread_cond_wait(&q->done_cond, &q->mtx);
	pthread_mutex_unlock(&q->mtx);
}

/* On the event loop, or in logq_free() once the threads are gone. */
static void
qentry_free(struct qentry *qe)
{
	if (qe->rb != NULL && --qe->rb->refs == 0)
		free(qe->rb);
	free(qe);
}

/*
 * Keeps the receipts of the entries in taken[0..n) that want one: the
 * log's own (rcs, and the note they point to) last only until its next
 * append. One allocation for the commit. Without memory the replies carry
 * no receipt; the entries are written all the same.
 */
static void
keep_receipts(struct qentry **taken, const struct audit_receipt *rcs, size_t n)
{
	struct rbatch	*rb;
	size_t		 i, refs = 0, hashes = 0, notelen;
	uint8_t		 (*p)[32];

	if (n == 0 || rcs[0].checkpoint == NULL)
		return;		/* an unsigned log: no receipts */
	for (i = 0; i < n; i++)
		if (taken[i]->rcb != NULL) {
			refs++;
			hashes += rcs[i].nproof;
		}
	notelen = strlen(rcs[0].checkpoint) + 1;
	if (refs == 0 || (rb = malloc(sizeof(*rb) + hashes * 32 + notelen)) == NULL)
		return;
	rb->refs = refs;
	p = (uint8_t (*)[32])rb->data;
	rb->note = (char *)rb->data + hashes * 32;
	memcpy(rb->note, rcs[0].checkpoint, notelen);
	for (i = 0; i < n; i++) {
		struct qentry *qe = taken[i];

		if (qe->rcb == NULL)
			continue;
		qe->rb = rb;
		memcpy(qe->leaf, rcs[i].leaf, 32);
		qe->nproof = rcs[i].nproof;
		qe->proof = (const uint8_t (*)[32])p;
		memcpy(p, rcs[i].proof, rcs[i].nproof * 32);
		p += rcs[i].nproof;
	}
}

/*
 * logstore_append(), and for the entries whose callers reply with a receipt
 * (logq_submit_receipt), keep_receipts(). rcs is not zeroed: audit_append_receipts()
 * sets every receipt it returns.
 */
static int
append(struct logstore *l, struct audit_entry **batch, struct qentry **taken,
    size_t n, char *err, size_t errlen)
{
	struct audit_receipt	*rcs;
	size_t			 i, want = 0;
	int			 rc;

	for (i = 0; i < n; i++)
		want += taken[i]->rcb != NULL;
	if (want == 0 || (rcs = malloc(n * sizeof(*rcs))) == NULL)
		return logstore_append(l, batch, n, err, errlen);
	if ((rc = logstore_append_receipts(l, batch, n, rcs, err, errlen)) == 0)
		keep_receipts(taken, rcs, n);
	free(rcs);
	return rc;
}

/*
 * The writer's idle probe (logstore_probe()), with q->mtx held, which it
 * drops for the probe: on PostgreSQL a round trip, during which the event
 * loop must still be able to queue entries. A failure is /healthz's why;
 * on SQLite (the file deleted or replaced) it lasts until a commit works.
 * On PostgreSQL a probe that works again ends it (the probe reconnected:
 * the daemon recovers without a restart; the appends that failed were
 * not acknowledged), unless an fdatasync failure is latched.
 */
static void
idle_probe(struct logq *q)
{
	uint64_t	 one = 1;
	char		 why[256];
	int		 rc, was = q->stats.ok;

	pthread_mutex_unlock(&q->mtx);
	rc = logstore_probe(q->log, why, sizeof(why));
	pthread_mutex_lock(&q->mtx);
	if (rc == -1 && q->stats.ok) {
		q->stats.ok = 0;
		snprintf(q->stats.why, sizeof(q->stats.why), "%s", why);
		log_warnx("event=audit_failed error=\"%s\"", q->stats.why);
	} else if (rc == 0 && !q->stats.ok && q->audit == NULL &&
	    !q->sync_failed) {
		q->stats.ok = 1;
		q->stats.why[0] = '\0';
		log_info("event=audit_recovered size=%llu",
		    (unsigned long long)q->stats.size);
	}
	/* The loop's hook hears of a change (guardian alerts, feeds). */
	if (was != q->stats.ok && write(q->efd, &one, sizeof(one)) == -1 &&
	    errno != EAGAIN)
		log_warn("event=logq_wake_failed");
}

static void *
writer(void *arg)
{
	struct logq		*q = arg;
	struct audit_entry	*batch[MAX_BATCH];
	struct qentry		*taken[MAX_BATCH];
	uint64_t		 one = 1;
	char			 err[256];	/* the writer thread's */

	pthread_mutex_lock(&q->mtx);
	for (;;) {
		size_t	n = 0;
		int	rc, ckpt, failed, locked;	/* locked: 1 held, -1 failed */

		while (q->head == NULL && !q->stop) {
			struct timespec ts;

			/*
			 * Idle: probe the log once a second, so /healthz
			 * fails closed without waiting for a request (every
			 * commit signs its own checkpoint: there is nothing
			 * timed to do).
			 */
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			if (pthread_cond_timedwait(&q->work_cond, &q->mtx, &ts) == ETIMEDOUT &&
			    q->head == NULL && !q->stop &&
			    (q->stats.ok || q->audit == NULL))
				idle_probe(q);
		}
		if (q->head == NULL && q->stop)
			break;
		/*
		 * A log other daemons append to (PostgreSQL): its head is
		 * locked first, waiting for another daemon's commit, and the
		 * batch taken after, so what queued meanwhile goes in too
		 * (docs/deploy-ha.md "The chain"). The loop queues while we wait.
		 */
		locked = 0;
		if (logstore_shared(q->log) && !q->sync_failed) {
			pthread_mutex_unlock(&q->mtx);
			locked = logstore_lock_head(q->log, err, sizeof(err)) == 0 ?
			    1 : -1;
			pthread_mutex_lock(&q->mtx);
		}
		/* Everything queued while the last fsync ran goes in one commit. */
		while (q->head != NULL && n < MAX_BATCH) {
			taken[n] = q->head;
			batch[n] = &q->head->e;
			q->head = q->head->next;
			n++;
		}
		if (q->head == NULL)
			q->tail = NULL;
		failed = q->sync_failed;
		pthread_mutex_unlock(&q->mtx);
		if (failed && locked == 1)
			logstore_unlock_head(q->log);

		/*
		 * After a failed fdatasync nothing is committed again
		 * (logsync.c); a head that could not be locked is this
		 * batch's failed append (err says why).
		 */
		rc = failed || locked == -1 ? -1 : append(q->log, batch, taken, n,
		    err, sizeof(err));

		pthread_mutex_lock(&q->mtx);
		ckpt = rc == 0 && wal_plan(q);
		if (failed)
			q->stats.failures += n;
		else if (rc == 0) {
			q->stats.commits++;
			q->stats.entries += n;
			q->stats.batch_hist[hist_bucket(n)]++;
			if (n > q->stats.max_batch)
				q->stats.max_batch = n;
			/* Unless the syncer latched a failure meanwhile. */
			if (!q->sync_failed) {
				if (!q->stats.ok)
					log_info("event=audit_recovered size=%llu",
					    (unsigned long long)batch[n - 1]->seq);
				q->stats.ok = 1;
				q->stats.why[0] = '\0';
			}
		} else {
			q->stats.failures += n;
			if (q->stats.ok)
				log_warnx("event=audit_failed error=\"%s\"", err);
			q->stats.ok = 0;
			snprintf(q->stats.why, sizeof(q->stats.why), "%s", err);
		}
		if (rc == 0) {
			/* Committed: durable once the syncer's fdatasync returns. */
			for (size_t i = 0; i < n; i++) {
				taken[i]->next = NULL;
				if (q->utail != NULL)
					q->utail->next = taken[i];
				else
					q->uhead = taken[i];
				q->utail = taken[i];
			}
			/* The log's size at this commit, on either backend. */
			q->usize = batch[n - 1]->seq;
			/* audit.commit: inline: one thread, no hand-over (logsync.c). */
			if (q->inline_sync)
				logq_sync_batches(q);
			else
				pthread_cond_signal(&q->sync_cond);
		} else {
			for (size_t i = 0; i < n; i++) {
				taken[i]->ok = 0;
				taken[i]->done = 1;
				if (!taken[i]->sync) {
					taken[i]->next = q->done;
					q->done = taken[i];
				}
			}
			pthread_cond_broadcast(&q->done_cond);
			if (write(q->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
				log_warn("event=logq_wake_failed");
		}
		if (ckpt) {
			/*
			 * The WAL is synced before it is copied (SQLite does
			 * it). A passive copy left the WAL growing by a
			 * commit a time while the checkpointer's pass or the
			 * subject index's read held it (a test saw 86 MB):
			 * the writer waits for them instead, at most
			 * DB_BUSY_MS, once per CKPT_INLINE pages. A reader
			 * that holds its snapshot longer (an auditor's long
			 * export) keeps the WAL growing until it ends: the
			 * writer does not stall again for it, but copies
			 * passively after each commit until the WAL restarts.
			 */
			int held = q->ckpt_held, r;

			if (held) {
				pthread_mutex_unlock(&q->mtx);
				r = audit_wal_checkpoint(q->audit, NULL, err, sizeof(err));
				pthread_mutex_lock(&q->mtx);
			} else
				r = wal_restart(q, err, sizeof(err));
			if (r == -1)
				log_warnx("event=wal_checkpoint_failed error=\"%s\"", err);
			if (!held && r == 1) {
				q->ckpt_held = 1;
				log_warnx("event=wal_restart_busy pages=%d",
				    audit_wal_pages(q->audit));
			}
		}
	}
	pthread_mutex_unlock(&q->mtx);
	return NULL;
}

/*
 * Copies the WAL into the log's database while the writer goes on
 * appending: passes, each copying what the last one left (the commits made
 * while it ran), until one finds nothing left (bounded: the writer may
 * never pause).
 */
static void
wal_copy(struct logq *q)
{
	char	 err[256];
	int	 left, passes = 0, ok;

	while ((ok = audit_wal_checkpoint(q->ckpt, &left, err, sizeof(err)) == 0) &&
	    left > 0 && ++passes < 50)
		;
	if (!ok)
		log_warnx("event=wal_checkpoint_failed error=\"%s\"", err);
}

/*
 * Once a second: opens the subject index again if its file was deleted or
 * replaced (the remedy for an index that fails verify: delete it, and it
 * is built again), or if it could not be opened before.
 */
static void
index_reopen(struct logq *q)
{
	char	 err[256];
	time_t	 now = time(NULL);

	if (now == q->index_looked)
		return;
	q->index_looked = now;
	if (q->index != NULL && !audit_index_replaced(q->index))
		return;
	audit_index_close(q->index);
	q->index = NULL;
	if (audit_index_open(&q->index, q->path, err, sizeof(err)) == -1) {
		if (!q->index_failed)
			log_warnx("event=subject_index_unavailable error=\"%s\"", err);
		q->index_failed = 1;
		return;
	}
	q->index_failed = 0;
	log_info("event=subject_index_opened");
}

/*
 * Brings the subject index up to the log, a batch at a time; returns 1 if
 * more is left (a new log's catch-up takes many batches, and WAL copies
 * go between them). A failure is logged once until it works again.
 */
static int
index_step(struct logq *q)
{
	uint64_t	 left = 0;
	char		 err[256];

	index_reopen(q);
	if (q->index == NULL)
		return 0;
	if (audit_index_update(q->index, INDEX_BATCH, &left, err, sizeof(err)) == -1) {
		if (!q->index_failed)
			log_warnx("event=subject_index_failed error=\"%s\"", err);
		q->index_failed = 1;
		return 0;
	}
	q->index_failed = 0;
	return left > 0;
}

/*
 * The log's housekeeping thread: WAL copies when the writer asks, and the
 * subject index kept within about a second of the log.
 */
static void *
checkpointer(void *arg)
{
	struct logq	*q = arg;
	int		 wanted, behind = 1;

	pthread_mutex_lock(&q->mtx);
	for (;;) {
		if (!q->ckpt_wanted && !q->stop && !behind) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&q->ckpt_cond, &q->mtx, &ts);
		}
		if (q->stop)
			break;
		wanted = q->ckpt_wanted;
		q->ckpt_wanted = 0;
		q->ckpt_running = wanted;	/* copying: the writer need not ask */
		pthread_mutex_unlock(&q->mtx);
		if (wanted)
			wal_copy(q);
		behind = index_step(q);
		pthread_mutex_lock(&q->mtx);
		q->ckpt_running = 0;
		if (wanted) {
			q->stats.wal_checkpoints++;
			pthread_cond_broadcast(&q->ckpt_cond);	/* wal_restart() */
		}
	}
	pthread_mutex_unlock(&q->mtx);
	return NULL;
}

/* The receipt of a written entry, put together in r; NULL if it has none. */
static const struct audit_receipt *
receipt(const struct qentry *qe, struct audit_receipt *r)
{
	if (!qe->ok || qe->rb == NULL)
		return NULL;
	r->seq = qe->e.seq;
	memcpy(r->leaf, qe->leaf, 32);
	r->checkpoint = qe->rb->note;
	r->nproof = qe->nproof;
	memcpy(r->proof, qe->proof, qe->nproof * 32);
	return r;
}

/* On the event loop: run the callbacks of committed entries, oldest first. */
static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	struct logq		*q = arg;
	struct qentry		*list, *rev = NULL, *next;
	struct audit_receipt	 r;
	uint64_t	 n;
	size_t		 k = 0;

	if (read(fd, &n, sizeof(n)) == -1 && errno != EAGAIN)
		log_warn("event=logq_read_failed");
	pthread_mutex_lock(&q->mtx);
	list = q->done;
	q->done = NULL;
	pthread_mutex_unlock(&q->mtx);
	for (; list != NULL; list = next) {
		next = list->next;
		list->next = rev;
		rev = list;
		k++;
	}
	pthread_mutex_lock(&q->mtx);
	q->pending -= k;
	pthread_mutex_unlock(&q->mtx);
	for (; rev != NULL; rev = next) {
		next = rev->next;
		if (rev->cb != NULL)
			rev->cb(rev->ok, rev->e.seq, rev->arg);
		else if (rev->rcb != NULL)
			rev->rcb(rev->ok, rev->e.seq, receipt(rev, &r), rev->arg);
		qentry_free(rev);
	}
	if (q->hook != NULL)
		q->hook(q->hook_arg);
}

void
logq_set_hook(struct logq *q, logq_hook hook, void *arg)
{
	q->hook = hook;
	q->hook_arg = arg;
}

/* Appends the chain first..last to the writer's queue; q->mtx held. */
static void
enqueue(struct logq *q, struct qentry *first, struct qentry *last)
{
	if (q->tail != NULL)
		q->tail->next = first;
	else
		q->head = first;
	q->tail = last;
	pthread_cond_signal(&q->work_cond);
}

/*
 * Moves what this round of the event loop staged to the writer in one go,
 * so every request read in one round shares one commit (one fsync).
 */
static void
flush(struct logq *q)
{
	if (q->shead == NULL)
		return;
	pthread_mutex_lock(&q->mtx);
	enqueue(q, q->shead, q->stail);
	pthread_mutex_unlock(&q->mtx);
	q->shead = q->stail = NULL;
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	flush(arg);
}

struct logq *
logq_new(struct event_base *base, struct logstore *l, const char *path)
{
	struct logq	*q = xcalloc(1, sizeof(*q));
	char		 err[256];
	int		 ckpt_started = 0, sync_started = 0;
	struct audit	*a = logstore_audit(l);

	q->log = l;
	q->audit = a;
	q->efd = -1;
	q->walfd = -1;
	q->fsync = fdatasync;
	q->stats.ok = 1;
	q->stats.size = logstore_size(l);
	pthread_mutex_init(&q->mtx, NULL);
	pthread_cond_init(&q->work_cond, NULL);
	pthread_cond_init(&q->done_cond, NULL);
	pthread_cond_init(&q->ckpt_cond, NULL);
	pthread_cond_init(&q->sync_cond, NULL);
	if (a == NULL) {
		/* PostgreSQL: the commit is durable; no file, no WAL to copy. */
		q->inline_sync = 1;
		goto threads;
	}
	q->path = xstrdup(path);
	q->walpath = xcalloc(1, strlen(path) + sizeof("-wal"));
	memcpy(q->walpath, path, strlen(path));
	memcpy(q->walpath + strlen(path), "-wal", sizeof("-wal"));
	if (audit_open_checkpointer(&q->ckpt, path, err, sizeof(err)) == -1) {
		log_warnx("event=logq_start_failed error=\"%s\"", err);
		goto fail;
	}
	if (audit_wal_manual(a, err, sizeof(err)) == -1 ||
	    audit_defer_sync(a, err, sizeof(err)) == -1) {
		log_warnx("event=logq_start_failed error=\"%s\"", err);
		goto fail;
	}
	audit_set_commit_gate(a, commit_gate, q);
	/* The open log has its -wal file (WAL mode, a connection open). */
	if ((q->walfd = open(q->walpath, O_RDWR | O_CLOEXEC)) == -1) {
		log_warn("event=logq_start_failed file=%s", q->walpath);
		goto fail;
	}
	/*
	 * Without it queries by subject still work, reading the whole log; the
	 * checkpointer tries again every second.
	 */
	if (audit_index_open(&q->index, path, err, sizeof(err)) == -1) {
		log_warnx("event=subject_index_unavailable error=\"%s\"", err);
		q->index_failed = 1;
	}
	q->index_looked = time(NULL);
 threads:
	if ((q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (q->ev = event_new(base, q->efd, EV_READ | EV_PERSIST, on_done, q)) == NULL ||
	    (q->kick = event_new(base, -1, 0, on_kick, q)) == NULL ||
	    event_add(q->ev, NULL) == -1 ||
	    (a != NULL && !(ckpt_started = pthread_create(&q->ckpt_thread, NULL,
	    checkpointer, q) == 0)) ||
	    !(sync_started = pthread_create(&q->sync_thread, NULL, logq_syncer, q) == 0) ||
	    pthread_create(&q->thread, NULL, writer, q) != 0) {
		log_warn("event=logq_start_failed");
		goto fail;
	}
	return q;
fail:
	if (a != NULL)
		audit_set_commit_gate(a, NULL, NULL);
	if (ckpt_started || sync_started) {
		pthread_mutex_lock(&q->mtx);
		q->stop = q->sync_stop = 1;
		pthread_cond_signal(&q->ckpt_cond);
		pthread_cond_signal(&q->sync_cond);
		pthread_mutex_unlock(&q->mtx);
		if (ckpt_started)
			pthread_join(q->ckpt_thread, NULL);
		if (sync_started)
			pthread_join(q->sync_thread, NULL);
	}
	if (q->walfd != -1)
		close(q->walfd);
	free(q->walpath);
	if (q->ev)
		event_free(q->ev);
	if (q->kick)
		event_free(q->kick);
	if (q->efd != -1)
		close(q->efd);
	audit_close(q->ckpt);
	audit_index_close(q->index);
	free(q->path);
	free(q);
	return NULL;
}

static void	submit(struct logq *, struct qentry *);

void
logq_submit(struct logq *q, const struct audit_entry *e, logq_cb cb, void *arg)
{
	struct qentry *qe = qentry_new(e);

	qe->cb = cb;
	qe->arg = arg;
	submit(q, qe);
}

void
logq_submit_receipt(struct logq *q, const struct audit_entry *e, logq_rcb cb,
    void *arg)
{
	struct qentry *qe = qentry_new(e);

	qe->rcb = cb;
	qe->arg = arg;
	submit(q, qe);
}

static void
submit(struct logq *q, struct qentry *qe)
{
	pthread_mutex_lock(&q->mtx);
	q->pending++;
	pthread_mutex_unlock(&q->mtx);
	/* Staged; handed over after the events already due in this round. */
	if (q->stail != NULL)
		q->stail->next = qe;
	else {
		q->shead = qe;
		event_active(q->kick, 0, 0);
	}
	q->stail = qe;
}

int
logq_append_sync(struct logq *q, struct audit_entry *e)
{
	struct qentry	*qe = qentry_new(e);
	int		 ok;

	qe->sync = 1;
	flush(q);		/* the log keeps the order of submission */
	pthread_mutex_lock(&q->mtx);
	enqueue(q, qe, qe);
	while (!qe->done)
		pthread_cond_wait(&q->done_cond, &q->mtx);
	pthread_mutex_unlock(&q->mtx);
	ok = qe->ok;
	e->seq = qe->e.seq;
	memcpy(e->hash, qe->e.hash, 32);
	free(qe);
	return ok ? 0 : -1;
}

size_t
logq_pending(struct logq *q)
{
	size_t n;

	pthread_mutex_lock(&q->mtx);
	n = q->pending;
	pthread_mutex_unlock(&q->mtx);
	return n;
}

void
logq_stats(struct logq *q, struct logq_stats *out)
{
	pthread_mutex_lock(&q->mtx);
	*out = q->stats;
	pthread_mutex_unlock(&q->mtx);
}

void
logq_free(struct logq *q)
{
	struct qentry *e, *next;

	if (q == NULL)
		return;
	flush(q);		/* staged entries are written, not dropped */
	pthread_mutex_lock(&q->mtx);
	q->stop = 1;
	pthread_cond_signal(&q->work_cond);
	pthread_cond_signal(&q->ckpt_cond);
	pthread_mutex_unlock(&q->mtx);
	pthread_join(q->thread, NULL);
	/* The writer is gone: the syncer syncs its last batches and exits. */
	pthread_mutex_lock(&q->mtx);
	q->sync_stop = 1;
	pthread_cond_signal(&q->sync_cond);
	pthread_mutex_unlock(&q->mtx);
	pthread_join(q->sync_thread, NULL);
	if (q->audit != NULL) {
		pthread_join(q->ckpt_thread, NULL);
		audit_set_commit_gate(q->audit, NULL, NULL);	/* q is going */
	}
	if (q->walfd != -1)
		close(q->walfd);
	free(q->walpath);
	audit_close(q->ckpt);
	audit_index_close(q->index);
	for (e = q->done; e != NULL; e = next) {
		next = e->next;
		qentry_free(e);
	}
	event_free(q->ev);
	event_free(q->kick);
	close(q->efd);
	pthread_mutex_destroy(&q->mtx);
	pthread_cond_destroy(&q->work_cond);
	pthread_cond_destroy(&q->done_cond);
	pthread_cond_destroy(&q->ckpt_cond);
	pthread_cond_destroy(&q->sync_cond);
	free(q->path);
	free(q);
}

void
logq_set_inline_sync(struct logq *q, int on)
{
	pthread_mutex_lock(&q->mtx);
	/* On PostgreSQL always: there is nothing for the syncer to do. */
	q->inline_sync = on || q->audit == NULL;
	pthread_mutex_unlock(&q->mtx);
}

void
logq_set_fsync(struct logq *q, int (*fn)(int))
{
	pthread_mutex_lock(&q->mtx);
	q->fsync = fn;
	pthread_mutex_unlock(&q->mtx);
}
