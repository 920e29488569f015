/*
 * A disclosure's store reads on PostgreSQL in one statement, and the
 * reads of a whole event-loop round in one (issue 19, docs/deploy-ha.md
 * "The disclosure reads"). pgstore_subjects() reads the record, its
 * fields, the consent and the flags of n requests with S_SUBJECTS
 * (pgstore.c) in one round trip; pgstore_subject() is it for one
 * request. The event loop's handlers queue theirs with
 * pgstore_subject_queue() and the end of the loop round sends them all.
 *
 * The event loop does not wait for them: pgstore_reads_apart() gives the
 * handle a second connection of its own (rd) for these reads alone, the
 * round's end sends the statement on it (pgstore_batch_send()) and the
 * loop goes on reading and deciding other requests; when rd's socket
 * (pgstore_batch_fd()) is readable the loop calls pgstore_batch_input(),
 * which takes the answer once it is whole and calls each request's
 * callback. One statement is in flight at a time: reads queued meanwhile
 * are sent together as soon as it is answered. A lost or failed
 * statement fails its whole batch (each callback gets -1 and the error:
 * nothing read, so nothing released) and the next batch opens rd again
 * (at most once a second, pg_reconnect()). Without rd, as for the
 * holder thread and the tools, pgstore_batch_run() reads the queue at
 * once on the handle's own connection. Everything here belongs to the
 * thread that uses the handle.
 */
#include <poll.h>
#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstore.h"
#include "pgstore_int.h"
#include "store_cache.h"
#include "util.h"

/* At most this many reads wait for one round's statement. */
#define PGBATCH_MAX	128

/* The queued reads, as parallel arrays: pgstore_subjects()'s arguments. */
struct pgbatch {
	size_t			 n;
	const struct record_type *rt[PGBATCH_MAX];
	const char		*subject[PGBATCH_MAX];	/* the caller's, */
	const char		*agency[PGBATCH_MAX];	/* valid until its */
	const char		*purpose[PGBATCH_MAX];	/* callback */
	struct store_subject	*out[PGBATCH_MAX];
	pgstore_subject_cb	 cb[PGBATCH_MAX];
	void			*arg[PGBATCH_MAX];
	/*
	 * The loop's cache (p->cache): a request found there is not sent,
	 * and is answered from hit[] if the statement's store version is the
	 * one the cache was read at; else it is queued again, uncached.
	 */
	struct scentry		*hit[PGBATCH_MAX];
	int			 nocache[PGBATCH_MAX];
	/* The requests sent (not hits), as S_SUBJECTS's arguments. */
	size_t			 nsent;
	size_t			 sent[PGBATCH_MAX];	/* their index in b */
	const struct record_type *srt[PGBATCH_MAX];
	const char		*ssubject[PGBATCH_MAX];
	const char		*sagency[PGBATCH_MAX];
	const char		*spurpose[PGBATCH_MAX];
	int			 resent;	/* sent again on a new connection */
};

/*
 * v[0..n) as a PostgreSQL text array literal: every element quoted, with
 * its quotes and backslashes escaped, so none is read as NULL or split.
 */
static char *
text_array(const char *const *v, size_t n)
{
	size_t	 len = 3;
	char	*buf, *o;

	for (size_t i = 0; i < n; i++)
		len += 3 + 2 * strlen(v[i]);
	o = buf = xcalloc(len, 1);
	*o++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			*o++ = ',';
		*o++ = '"';
		for (const char *s = v[i]; *s != '\0'; s++) {
			if (*s == '"' || *s == '\\')
				*o++ = '\\';
			*o++ = *s;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return buf;
}

/* One row of S_SUBJECTS into its request's entry (pgstore.c says which). */
static void
take_row(const PGresult *res, int r, struct scentry *e)
{
	const char		*a = pgstore_text(res, r, 2), *b = pgstore_text(res, r, 3);
	enum consent_state	 c;

	switch (pgstore_int(res, r, 1)) {
	case 0:
		e->known = 1;
		e->last_verified = strtoll(a, NULL, 10);
		scentry_set_holder(e, b);
		break;
	case 1:
		/* Rows are in kind order, so the record's is first. */
		if (e->known)
			scentry_add_field(e, a, b);
		break;
	case 2:
		if (consent_parse(a, &c) == 0)
			e->consent = c;
		e->consent_expires = pgstore_int(res, r, 3);
		break;
	case 3:
		scentry_add_flag(e, a);
		break;
	}
}

/* out[0..n) as empty answers. */
static void
empty(struct store_subject **out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		memset(out[i], 0, sizeof(*out[i]));
		out[i]->view.values = (const char *const *)out[i]->values;
	}
}

/* S_SUBJECTS's four text[] parameters for n requests; the caller frees them. */
static void
params(size_t n, const struct record_type *const *rts,
    const char *const *subjects, const char *const *agencies,
    const char *const *purposes, char *arr[4])
{
	const char **ids = xcalloc(n, sizeof(*ids));

	for (size_t i = 0; i < n; i++)
		ids[i] = rts[i]->id;
	arr[0] = text_array(subjects, n);
	arr[1] = text_array(ids, n);
	arr[2] = text_array(agencies, n);
	arr[3] = text_array(purposes, n);
	free(ids);
}

/*
 * S_SUBJECTS's rows into a new entry for each of the n requests (e[0..n))
 * and the store's version then (*version): 0, or -1 with err and e[]
 * all NULL.
 */
static int
take_result(const PGresult *res, size_t n, const struct record_type *const *rts,
    const char *const *subjects, const char *const *agencies,
    const char *const *purposes, struct scentry **e, int64_t *version,
    char *err, size_t errlen)
{
	int rows = PQntuples(res);

	*version = -1;
	for (size_t i = 0; i < n; i++)
		e[i] = scentry_new(subjects[i], rts[i]->id, agencies[i],
		    purposes[i]);
	for (int r = 0; r < rows; r++) {
		int64_t i = pgstore_int(res, r, 0);

		if (i == 0 && pgstore_int(res, r, 1) == 9) {
			*version = pgstore_int(res, r, 2);
			continue;
		}
		if (i < 1 || (uint64_t)i > n) {
			errorf(err, errlen, "PostgreSQL store: subject: a row of no "
			    "request (%lld)", (long long)i);
			goto fail;
		}
		take_row(res, r, e[i - 1]);
	}
	if (*version < 0) {
		errorf(err, errlen, "PostgreSQL store: subject: no store version");
		goto fail;
	}
	return 0;
fail:
	for (size_t i = 0; i < n; i++) {
		scentry_unref(e[i]);
		e[i] = NULL;
	}
	return -1;
}

int
pgstore_subjects(struct pgstore *p, size_t n, const struct record_type *const *rts,
    const char *const *subjects, const char *const *agencies,
    const char *const *purposes, struct store_subject **out, int scoped,
    char *err, size_t errlen)
{
	struct scentry	**e;
	char		*arr[4];
	PGresult	*res;
	int64_t		 version;
	int		 rc;

	empty(out, n);
	if (n == 0)
		return 0;
	params(n, rts, subjects, agencies, purposes, arr);
	res = (scoped ? pgstore_run : pgstore_run1)(p, S_SUBJECTS, 4,
	    (const char *const *)arr, "subject", err, errlen);
	for (int k = 0; k < 4; k++)
		free(arr[k]);
	if (res == NULL)
		return -1;
	e = xcalloc(n, sizeof(*e));
	if ((rc = take_result(res, n, rts, subjects, agencies, purposes, e,
	    &version, err, errlen)) == 0)
		for (size_t i = 0; i < n; i++)
			scentry_lend(e[i], rts[i], out[i]);
	free(e);
	PQclear(res);
	return rc;
}

/*
 * One request's reads (store_subject()): inside the caller's read scope
 * when one is wanted, else alone; one statement is one snapshot either way.
 */
int
pgstore_subject(struct pgstore *p, const struct record_type *rt,
    const char *subject, const char *agency, const char *purpose,
    struct store_subject *out, char *err, size_t errlen)
{
	return pgstore_subjects(p, 1, &rt, &subject, &agency, &purpose, &out, 1,
	    err, errlen);
}

int
pgstore_subject_queue(struct pgstore *p, const struct record_type *rt,
    const char *subject, const char *agency, const char *purpose,
    struct store_subject *out, pgstore_subject_cb cb, void *arg, char *err,
    size_t errlen)
{
	struct pgbatch	*b;
	size_t		 i;

	if (p->batch == NULL)
		p->batch = xcalloc(1, sizeof(*p->batch));
	/* A full round's queue: this one is read now, as without a queue. */
	if (p->batch->n == PGBATCH_MAX)
		return pgstore_subject(p, rt, subject, agency, purpose, out, err,
		    errlen);
	b = p->batch;
	i = b->n++;
	b->rt[i] = rt;
	b->subject[i] = subject;
	b->agency[i] = agency;
	b->purpose[i] = purpose;
	b->out[i] = out;
	b->cb[i] = cb;
	b->arg[i] = arg;
	b->hit[i] = NULL;
	b->nocache[i] = 0;
	return 1;
}

/*
 * Request i of b, a cache hit that the statement's store version showed
 * stale, queued again to be read, not looked up; read now if the queue is
 * full, as pgstore_subject_queue() does.
 */
static void
requeue(struct pgstore *p, struct pgbatch *b, size_t i)
{
	char	err[256];
	int	rc;

	rc = pgstore_subject_queue(p, b->rt[i], b->subject[i], b->agency[i],
	    b->purpose[i], b->out[i], b->cb[i], b->arg[i], err, sizeof(err));
	if (rc == 1)
		p->batch->nocache[p->batch->n - 1] = 1;
	else
		b->cb[i](rc, rc == -1 ? err : NULL, b->arg[i]);
}

/* Each callback of b in queue order, with rc and err; then b is empty. */
static void
answer(struct pgbatch *b, int rc, const char *err)
{
	for (size_t i = 0; i < b->n; i++)
		b->cb[i](rc, rc == -1 ? err : NULL, b->arg[i]);
	b->n = 0;
}

/* b, answered, is kept for the next queue unless one was made meanwhile. */
static void
recycle(struct pgstore *p, struct pgbatch *b)
{
	if (p->batch == NULL)
		p->batch = b;
	else
		free(b);
}

/*
 * The queued reads in one statement on the handle's own connection,
 * outside any read scope not begun yet (one statement needs none), then
 * each callback in queue order: all with their answers, or all with the
 * one error (nothing read, so nothing can be released). The queue is taken
 * off the handle first, so a callback that queues again starts the next
 * batch.
 */
static void
run_here(struct pgstore *p)
{
	struct pgbatch	*b = p->batch;
	char		 err[256];
	int		 rc;

	if (b == NULL || b->n == 0)
		return;
	p->batch = NULL;
	err[0] = '\0';
	rc = pgstore_subjects(p, b->n, b->rt, b->subject, b->agency, b->purpose,
	    b->out, 0, err, sizeof(err));
	answer(b, rc, err);
	recycle(p, b);
}

int
pgstore_reads_apart(struct pgstore *p, char *err, size_t errlen)
{
	char why[256];

	if (p->rd != NULL)
		return 0;
	if (pgstore_open(&p->rd, p->conninfo, why, sizeof(why)) == -1)
		return errorf(err, errlen, "%s (the event loop's read connection)",
		    why);
	pgstore_set_connect_wait(p->rd, p->retry.wait_ms);
	if (p->cache == NULL)
		p->cache = scache_new();
	return 0;
}

static void send_flight(struct pgstore *);

/*
 * The batch in flight failed: its requests get err. A batch whose
 * connection died under it is sent once more on a new one first, as
 * pgstore_run1() runs a read again: the reads are safe to repeat.
 */
static void
flight_failed(struct pgstore *p, const char *err)
{
	struct pgbatch *b = p->flight;

	if (!b->resent && PQstatus(p->rd->conn) != CONNECTION_OK) {
		b->resent = 1;
		send_flight(p);
		return;
	}
	p->flight = NULL;
	for (size_t i = 0; i < b->n; i++) {
		scentry_unref(b->hit[i]);
		b->hit[i] = NULL;
		empty(&b->out[i], 1);
	}
	answer(b, -1, err);
	b->resent = 0;
	recycle(p, b);
}

/* Sends the batch in flight on rd; one that cannot be sent has failed. */
static void
send_flight(struct pgstore *p)
{
	struct pgbatch	*b = p->flight;
	char		*arr[4], err[256], name[32];
	int		 ok;

	if (pgstore_session(p->rd, err, sizeof(err)) == -1) {
		flight_failed(p, err);
		return;
	}
	params(b->nsent, b->srt, b->ssubject, b->sagency, b->spurpose, arr);
	/* pgstore.c's name for the prepared S_SUBJECTS. */
	snprintf(name, sizeof(name), "pgstore_%d", S_SUBJECTS);
	ok = PQsendQueryPrepared(p->rd->conn, name, 4,
	    (const char *const *)arr, NULL, NULL, 0);
	for (int k = 0; k < 4; k++)
		free(arr[k]);
	if (!ok) {
		pgstore_fail(p->rd->conn, NULL, "subject", err, sizeof(err));
		flight_failed(p, err);
	}
}

/*
 * Sends the queue on rd unless a statement is in flight there already
 * (the queue then waits for its answer, pgstore_batch_input()). A batch
 * that cannot be sent is answered -1 at once.
 */
void
pgstore_batch_send(struct pgstore *p)
{
	struct pgbatch *b = p->batch;

	if (p->rd == NULL) {
		run_here(p);
		return;
	}
	if (p->flight != NULL || b == NULL || b->n == 0)
		return;
	p->batch = NULL;
	p->flight = b;
	empty(b->out, b->n);
	b->nsent = 0;
	for (size_t i = 0; i < b->n; i++) {
		b->hit[i] = p->cache != NULL && !b->nocache[i] ?
		    scache_get(p->cache, b->subject[i], b->rt[i]->id,
		    b->agency[i], b->purpose[i]) : NULL;
		if (b->hit[i] != NULL)
			continue;
		b->sent[b->nsent] = i;
		b->srt[b->nsent] = b->rt[i];
		b->ssubject[b->nsent] = b->subject[i];
		b->sagency[b->nsent] = b->agency[i];
		b->spurpose[b->nsent] = b->purpose[i];
		b->nsent++;
	}
	send_flight(p);
}

int
pgstore_batch_fd(struct pgstore *p)
{
	return p->flight != NULL ? PQsocket(p->rd->conn) : -1;
}

/*
 * The answer to b's statement: e[] the entries read for the requests sent,
 * version the store's then. The entries are kept in the loop's cache,
 * which is emptied first if the store changed since it was read; the
 * hits looked up at the send are answered from it if it did not, and
 * else queued again to be read (uncached, so a store that changes every
 * round still answers them next time). Then each callback in queue order.
 */
static void
deliver(struct pgstore *p, struct pgbatch *b, struct scentry **e,
    int64_t version)
{
	int stale = 0;

	if (p->cache != NULL) {
		stale = scache_check(p->cache, version, 0);
		for (size_t k = 0; k < b->nsent; k++)
			scache_put(p->cache, e[k]);
	}
	for (size_t k = 0; k < b->nsent; k++)
		scentry_lend(e[k], b->srt[k], b->out[b->sent[k]]);
	for (size_t i = 0; i < b->n; i++) {
		if (b->hit[i] == NULL)
			b->cb[i](0, NULL, b->arg[i]);
		else if (!stale) {
			scentry_lend(b->hit[i], b->rt[i], b->out[i]);
			b->hit[i] = NULL;
			b->cb[i](0, NULL, b->arg[i]);
		} else {
			scentry_unref(b->hit[i]);
			b->hit[i] = NULL;
			requeue(p, b, i);
		}
	}
	b->n = 0;
}

/*
 * rd's socket is readable: its input taken, and once the statement's
 * answer is whole, each request of the batch answered; then the reads
 * queued meanwhile are sent.
 */
void
pgstore_batch_input(struct pgstore *p)
{
	struct pgbatch	*b = p->flight;
	PGresult	*res, *more;
	PGconn		*conn;
	struct scentry	**e;
	char		 err[256];
	int64_t		 version;
	int		 rc;

	if (b == NULL)
		return;
	conn = p->rd->conn;
	if (PQconsumeInput(conn) != 1) {
		pgstore_fail(conn, NULL, "subject", err, sizeof(err));
		flight_failed(p, err);
		goto next;
	}
	if (PQisBusy(conn))
		return;
	res = PQgetResult(conn);
	/*
	 * One statement, one result; the NULL after it ends the command. The
	 * server sends its end (ReadyForQuery) in the same write as the
	 * result's last rows, so this does not wait.
	 */
	while ((more = PQgetResult(conn)) != NULL)
		PQclear(more);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pgstore_fail(conn, res, "subject", err, sizeof(err));
		flight_failed(p, err);
		goto next;
	}
	p->flight = NULL;
	err[0] = '\0';
	e = xcalloc(b->nsent > 0 ? b->nsent : 1, sizeof(*e));
	rc = take_result(res, b->nsent, b->srt, b->ssubject, b->sagency,
	    b->spurpose, e, &version, err, sizeof(err));
	PQclear(res);
	if (rc == 0)
		deliver(p, b, e, version);
	else {
		for (size_t i = 0; i < b->n; i++) {
			scentry_unref(b->hit[i]);
			b->hit[i] = NULL;
		}
		answer(b, rc, err);
	}
	free(e);
	b->resent = 0;
	recycle(p, b);
next:
	pgstore_batch_send(p);
}

/*
 * The queue read now: sent on rd and waited for (the one in flight
 * first), or on the handle's own connection without rd.
 */
void
pgstore_batch_run(struct pgstore *p)
{
	if (p->rd == NULL) {
		run_here(p);
		return;
	}
	pgstore_batch_send(p);
	while (p->flight != NULL) {
		struct pollfd pfd = { .fd = pgstore_batch_fd(p), .events = POLLIN };

		if (pfd.fd >= 0 && poll(&pfd, 1, -1) == -1)
			continue;
		pgstore_batch_input(p);
	}
}

/*
 * Frees the queue, what is in flight and rd; a read not answered gets no
 * callback (the handle is closing with its thread, and its requests with
 * it).
 */
void
pgstore_cache_stats(const struct pgstore *p, struct store_cache_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (p->cache != NULL)
		scache_stats(p->cache, st);
}

void
pgstore_batch_free(struct pgstore *p)
{
	free(p->batch);
	p->batch = NULL;
	if (p->flight != NULL)
		for (size_t i = 0; i < p->flight->n; i++)
			scentry_unref(p->flight->hit[i]);
	free(p->flight);
	p->flight = NULL;
	pgstore_close(p->rd);
	p->rd = NULL;
	scache_free(p->cache);
	p->cache = NULL;
}
