/*
 * The disclosure log writer: a thread that owns the log's database
 * connection and commits queued entries in batches, one transaction per
 * batch, so that durability does not cost a disk flush per request (group
 * commit). By default (audit.commit: inline) the writer fdatasyncs each
 * commit itself; with audit.commit: pipelined COMMIT does not fsync, a
 * syncer thread fdatasyncs the WAL while the writer commits the next
 * batch, and one fdatasync covers every batch committed before it. The event
 * loop submits entries and is called back on its own thread once they are
 * on disk (D7: reply only after that).
 */
#ifndef SAFESHARED_LOGQ_H
#define SAFESHARED_LOGQ_H

#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "logstore.h"

struct event_base;
struct logq;

/* Called on the event loop thread: ok is 0 when the entry could not be written. */
typedef void (*logq_cb)(int ok, uint64_t seq, void *arg);
/*
 * The same, with the entry's receipt (issue 13: the checkpoint of its
 * commit and its inclusion proof), valid only during the call; NULL when
 * the entry could not be written or the log signs no checkpoints.
 */
typedef void (*logq_rcb)(int ok, uint64_t seq, const struct audit_receipt *,
    void *arg);

struct logq_stats {
	uint64_t	commits;	/* transactions */
	uint64_t	entries;	/* entries committed */
	uint64_t	failures;	/* entries that could not be written */
	uint64_t	max_batch;
	uint64_t	batch_hist[8];	/* batch sizes: 1, 2-3, 4-7, ... 128+ */
	uint64_t	size;		/* entries in the log known to be on disk */
	uint64_t	wal_checkpoints; /* run by the checkpointer thread */
	uint64_t	gate_waits;	/* pipelined commits that waited for a sync to write */
	int		ok;		/* the last commit worked (and no fdatasync failed) */
	char		why[256];	/* why not, when !ok */
};

/*
 * Starts the writer thread on an open log, and, on SQLite, a checkpointer
 * thread with its own connection to the file at path that copies the WAL
 * into the database off the commit path. On PostgreSQL (path NULL) each
 * commit is durable when it returns (synchronous_commit, pglog.h): the
 * writer releases its batch itself, as with audit.commit: inline, and
 * there is no WAL file to sync nor checkpointer. Returns NULL on failure.
 */
struct logq	*logq_new(struct event_base *, struct logstore *, const char *path);
/* Copies the entry and queues it; cb (if not NULL) runs after the commit or failure. */
void		 logq_submit(struct logq *, const struct audit_entry *, logq_cb, void *arg);
/* logq_submit() for a caller that replies with the entry's receipt. */
void		 logq_submit_receipt(struct logq *, const struct audit_entry *,
		    logq_rcb, void *arg);
/* Queues the entry and waits for its commit; sets e->seq. Returns 0 or -1. */
int		 logq_append_sync(struct logq *, struct audit_entry *);
/* Entries queued or being written whose callback has not run yet. */
size_t		 logq_pending(struct logq *);
void		 logq_stats(struct logq *, struct logq_stats *);
/*
 * Called on the event loop thread after every wake-up of the writer's
 * (commits and their callbacks done, or the log's state changed): the
 * feeds wake their parked requests here (issue 18). One hook; NULL: none.
 */
typedef void (*logq_hook)(void *arg);
void		 logq_set_hook(struct logq *, logq_hook, void *arg);
/*
 * audit.commit: inline (docs/audit-format.md, "Pipelined commits"): the
 * writer fdatasyncs each commit itself before it takes the next batch,
 * instead of handing it to the syncer thread. The same durability, one
 * thread hand-over fewer per commit; the commit's CPU no longer overlaps
 * the fsync. Set once, before the first entry.
 */
void		 logq_set_inline_sync(struct logq *, int on);
/*
 * A test seam: the call that makes the log's WAL durable, fdatasync() by
 * default; tests pass one that fails (EIO) or waits.
 */
void		 logq_set_fsync(struct logq *, int (*)(int));
/* Writes what is queued, stops the thread; does not run pending callbacks. */
void		 logq_free(struct logq *);

#endif
