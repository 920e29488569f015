/*
 * What the log writer's files share (logq.c: the queue, the writer and the
 * checkpointer; logsync.c: the syncer). No other file includes it but
 * tests/unit/test_logq.c, which checks the WAL's bound against these.
 */
#ifndef SAFESHARED_LOGQ_INT_H
#define SAFESHARED_LOGQ_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "logq.h"

struct event;

/* Entries in one commit, at most. */
#define MAX_BATCH	1024
/*
 * WAL pages after which the checkpointer thread runs (SQLite's own default
 * threshold), and after which the writer finishes the checkpoint itself so
 * that the WAL restarts (see wal_plan()).
 */
#define CKPT_PAGES	1000
#define CKPT_INLINE	(16 * CKPT_PAGES)

/*
 * The receipts of one commit: its checkpoint note, held once for all its
 * entries, and their inclusion proofs, each as long as it is (a fixed
 * struct audit_receipt is 4 KiB). Made by the writer; the entries that
 * point into it are freed on the event loop, and the last frees it.
 */
struct rbatch {
	size_t		 refs;		/* entries pointing here */
	char		*note;		/* into data */
	uint8_t		 data[];	/* the proofs, then the note */
};

struct qentry {
	struct qentry		*next;
	struct audit_entry	 e;
	logq_cb			 cb;
	logq_rcb		 rcb;		/* or this, with the receipt */
	struct rbatch		*rb;		/* set on commit for rcb */
	uint8_t			 leaf[32];	/* and the receipt's own part */
	size_t			 nproof;
	const uint8_t		(*proof)[32];	/* into rb */
	void			*arg;
	int			 ok;
	int			 sync;		/* a thread waits on done_cond */
	int			 done;
	char			 strings[];	/* the entry's strings, copied */
};

struct logq {
	char		*path;		/* the log's file; NULL on PostgreSQL */
	struct logstore	*log;		/* the writer's connection */
	struct audit	*audit;		/* the same, on SQLite; else NULL */
	struct audit	*ckpt;		/* the checkpointer's own connection */
	struct audit_index *index;	/* the subject index, kept by the checkpointer */
	int		 index_failed;
	time_t		 index_looked;	/* when index_reopen() last looked */
	pthread_t	 thread;
	pthread_t	 ckpt_thread;
	pthread_mutex_t	 mtx;
	pthread_cond_t	 work_cond;	/* writer waits for entries */
	pthread_cond_t	 ckpt_cond;	/* checkpointer waits: a full WAL, or 1 s;
					   the writer: the end of its pass */
	int		 ckpt_wanted;	/* the WAL has CKPT_PAGES: wake up */
	int		 ckpt_running;	/* copying the WAL */
	int		 ckpt_held;	/* the writer's: a reader held the WAL past
					   CKPT_INLINE for DB_BUSY_MS */
	pthread_cond_t	 done_cond;	/* sync submitters wait for their entry */
	struct qentry	*head, *tail;	/* queued */
	/*
	 * Pipelined commits: the writer commits without an fsync and hands
	 * each committed batch to the syncer thread (uhead..utail, usize the
	 * log's size after the last), which fdatasyncs the WAL and only then
	 * moves them to done; the writer meanwhile commits the next batch.
	 */
	pthread_t	 sync_thread;
	pthread_cond_t	 sync_cond;	/* syncer waits for committed batches */
	struct qentry	*uhead, *utail;	/* committed, not yet synced */
	uint64_t	 usize;
	int		 syncing;	/* an fdatasync of the WAL runs: commit_gate() */
	int		 sync_failed;	/* latched: an fdatasync failed */
	int		 sync_stop;	/* the writer is gone: sync what is left, exit */
	int		 inline_sync;	/* audit.commit: inline: the writer syncs */
	int		 (*fsync)(int);	/* fdatasync(); tests make it fail */
	char		*walpath;
	int		 walfd;		/* whichever thread syncs (logq_sync_batches()) */
	struct qentry	*done;		/* committed, callbacks not yet run */
	size_t		 pending;
	int		 stop;
	int		 efd;		/* wakes the event loop */
	struct event	*ev;
	struct event	*kick;		/* hands the staged entries over */
	struct qentry	*shead, *stail;	/* staged: the loop thread's only */
	struct logq_stats stats;
	logq_hook	 hook;		/* the loop's, after each wake-up */
	void		*hook_arg;
};

/* The syncer thread (logsync.c), started by logq_new(). */
void	*logq_syncer(void *);
/* Syncs and releases what is on uhead; q->mtx held (logsync.c). */
void	 logq_sync_batches(struct logq *);

#endif
