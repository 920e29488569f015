/*
 * Holder batches interrupted by a crash (holder_api.c logs a batch, then
 * applies it, then answers): at start, before any request, each logged
 * batch the store did not apply gets a rolled_back entry, so the log says
 * what the store holds. Called once by server_init().
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "server.h"

/*
 * A holder batch is logged, then applied, then answered. A crash between
 * the first two leaves write entries for a change that never happened; at
 * start, each such batch gets a rolled_back entry (reason interrupted), so
 * the log says what the store holds. Only the log's tail can be affected.
 */
#define RECONCILE_WINDOW	1000000

struct reconcile {
	struct server	*srv;
	size_t		 rolled_back;
	size_t		 busy;		/* being applied by another daemon */
	int		 failed;
	char		 err[256];	/* why the log or the store failed, or "" */
};

/* Finds one request id among the batches the log has not rolled back. */
struct still {
	const char	*rid;
	int		 found;
};

static int
still_one(const char *rid, uint64_t first_seq, const char *agency,
    const char *store, int64_t when, void *arg)
{
	struct still *s = arg;

	(void)first_seq;
	(void)agency;
	(void)store;
	(void)when;
	if (strcmp(rid, s->rid) == 0)
		s->found = 1;
	return 0;
}

static int
reconcile_one(const char *rid, uint64_t first_seq, const char *agency,
    const char *store, int64_t when, void *arg)
{
	struct reconcile	*rc = arg;
	struct server		*srv = rc->srv;
	struct audit_entry	 e, *ep = &e;
	int			 applied, claimed, locked = 0;

	/*
	 * Only batches meant for the store open now (issue 15): one logged
	 * for another store, or (logged before stores had ids) before this
	 * store was made, was not this store's to apply.
	 */
	if (store[0] != '\0' ? strcmp(store, srv->store_ref) != 0 :
	    when < storage_created_at(srv->store))
		return 0;
	if ((applied = storage_batch_applied(srv->store, rid, rc->err,
	    sizeof(rc->err))) == 1)
		return 0;
	if (applied == -1) {
		rc->failed = 1;
		return -1;
	}
	/*
	 * With several daemons on one database (PostgreSQL), another live
	 * daemon may be applying this batch right now: it holds the batch's
	 * lock from before logging it until it answers (holder_api.c). Only
	 * a batch whose lock nobody holds, and that is still not applied
	 * once we hold it, was interrupted. A busy one is left to its
	 * daemon, which applies it or logs it rolled_back itself.
	 */
	if ((locked = storage_batch_lock(srv->store, rid, 0, rc->err,
	    sizeof(rc->err))) == 0) {
		rc->busy++;
		return 0;
	}
	if (locked == -1 || (applied = storage_batch_applied(srv->store, rid,
	    rc->err, sizeof(rc->err))) == -1) {
		rc->failed = 1;
		goto done;
	}
	if (applied == 1)
		goto done;
	/*
	 * Issue 19 item 2: read afresh, holding the lock, whether another
	 * start logged it rolled back since this one read the list; then claim
	 * it in the store before logging, so that a daemon that lost its
	 * session and applies it later finds the claim and applies nothing
	 * (holder_apply(): "rolled_back"). 0 from the claim: applied meanwhile.
	 */
	{
		struct still s = { rid, 0 };

		if (logstore_holder_batches(srv->audit, first_seq > 0 ?
		    first_seq - 1 : 0, still_one, &s, rc->err,
		    sizeof(rc->err)) == -1) {
			rc->failed = 1;
			goto done;
		}
		if (!s.found)
			goto done;
	}
	/* 1 or 2: claimed (by us, or by one that did not log it: we do). */
	if ((claimed = storage_batch_claim(srv->store, rid, first_seq, rc->err,
	    sizeof(rc->err))) == -1) {
		rc->failed = 1;
		goto done;
	}
	if (claimed == 0)
		goto done;
	holder_rolled_back(&e, srv->proto, agency, rid, first_seq, "interrupted");
	e.case_ref = srv->store_ref;
	if (logstore_append(srv->audit, &ep, 1, rc->err, sizeof(rc->err)) == -1) {
		rc->failed = 1;
		goto done;
	}
	rc->rolled_back++;
done:
	if (locked == 1)
		storage_batch_unlock(srv->store, rid);
	return rc->failed ? -1 : 0;
}

int
holder_reconcile(struct server *srv, char *err, size_t errlen)
{
	struct reconcile	 rc = { srv, 0, 0, 0, "" };
	uint64_t		 size = logstore_size(srv->audit);

	if (logstore_holder_batches(srv->audit, size > RECONCILE_WINDOW ?
	    size - RECONCILE_WINDOW : 0, reconcile_one, &rc, rc.err,
	    sizeof(rc.err)) == -1 || rc.failed)
		return errorf(err, errlen, "reconciling holder batches: %s", rc.err);
	if (rc.rolled_back > 0)
		log_warnx("event=holder_batches_interrupted count=%zu", rc.rolled_back);
	if (rc.busy > 0)
		log_info("event=holder_batches_in_progress count=%zu", rc.busy);
	return 0;
}
