/*
 * A disclosure's store reads on PostgreSQL in one statement, and the
 * reads of a whole event-loop round in one (issue 19, docs/deploy-ha.md
 * "The disclosure reads"). pgstore_subjects() reads the record, its
 * fields, the consent and the flags of n requests with S_SUBJECTS
 * (pgstore.c) in one round trip; pgstore_subject() is it for one
 * request. The event loop's handlers queue theirs with
 * pgstore_subject_queue() and the end of the loop round runs them all
 * with pgstore_batch_run(), which calls each request's callback. The
 * queue belongs to the handle, so to the thread that uses it.
 */
#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstore.h"
#include "pgstore_int.h"
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

/* One row of S_SUBJECTS into its request's answer (pgstore.c says which). */
static void
take_row(const PGresult *res, int r, const struct record_type *rt,
    struct store_subject *out)
{
	const char		*a = pgstore_text(res, r, 2), *b = pgstore_text(res, r, 3);
	enum consent_state	 c;
	size_t			 idx;

	switch (pgstore_int(res, r, 1)) {
	case 0:
		out->view.known = 1;
		out->view.last_verified = strtoll(a, NULL, 10);
		free(out->holder);
		out->holder = xstrdup(b);
		break;
	case 1:
		/*
		 * Fields the protocol no longer declares are never released;
		 * rows are in kind order, so the record's is first.
		 */
		if (out->view.known && record_type_field(rt, a, &idx) != NULL &&
		    out->values[idx] == NULL)
			out->values[idx] = xstrdup(b);
		break;
	case 2:
		if (consent_parse(a, &c) == 0)
			out->view.consent = c;
		out->view.consent_expires = pgstore_int(res, r, 3);
		break;
	case 3:
		out->flags[out->nflags++] = xstrdup(a);
		break;
	}
}

int
pgstore_subjects(struct pgstore *p, size_t n, const struct record_type *const *rts,
    const char *const *subjects, const char *const *agencies,
    const char *const *purposes, struct store_subject **out, int scoped,
    char *err, size_t errlen)
{
	const char	**ids;
	char		 *arr[4] = { NULL, NULL, NULL, NULL };
	size_t		 *nflags = NULL;
	PGresult	 *res = NULL;
	int		  rc = -1, rows;

	for (size_t i = 0; i < n; i++) {
		memset(out[i], 0, sizeof(*out[i]));
		out[i]->view.values = (const char *const *)out[i]->values;
	}
	if (n == 0)
		return 0;
	ids = xcalloc(n, sizeof(*ids));
	for (size_t i = 0; i < n; i++)
		ids[i] = rts[i]->id;
	arr[0] = text_array(subjects, n);
	arr[1] = text_array(ids, n);
	arr[2] = text_array(agencies, n);
	arr[3] = text_array(purposes, n);
	free(ids);
	res = (scoped ? pgstore_run : pgstore_run1)(p, S_SUBJECTS, 4,
	    (const char *const *)arr, "subject", err, errlen);
	if (res == NULL)
		goto done;

	/* Each request's flags counted first, then its rows taken in order. */
	rows = PQntuples(res);
	nflags = xcalloc(n, sizeof(*nflags));
	for (int r = 0; r < rows; r++) {
		int64_t i = pgstore_int(res, r, 0);

		if (i < 1 || (uint64_t)i > n) {
			errorf(err, errlen, "PostgreSQL store: subject: a row of no "
			    "request (%lld)", (long long)i);
			goto done;
		}
		if (pgstore_int(res, r, 1) == 3)
			nflags[i - 1]++;
	}
	for (size_t i = 0; i < n; i++)
		if (nflags[i] > 0)
			out[i]->flags = xcalloc(nflags[i], sizeof(*out[i]->flags));
	for (int r = 0; r < rows; r++) {
		size_t i = (size_t)pgstore_int(res, r, 0) - 1;

		take_row(res, r, rts[i], out[i]);
	}
	for (size_t i = 0; i < n; i++) {
		out[i]->view.flags = (const char *const *)out[i]->flags;
		out[i]->view.nflags = out[i]->nflags;
	}
	rc = 0;
done:
	if (rc == -1)
		for (size_t i = 0; i < n; i++) {
			store_subject_free(out[i]);
			memset(out[i], 0, sizeof(*out[i]));
			out[i]->view.values = (const char *const *)out[i]->values;
		}
	free(nflags);
	PQclear(res);
	for (int k = 0; k < 4; k++)
		free(arr[k]);
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
	return 1;
}

/*
 * The queued reads in one statement, outside any read scope not begun yet
 * (one statement needs none), then each callback in queue order: all with
 * their answers, or all with the one error (nothing read, so nothing can
 * be released). The queue is taken off the handle first, so a callback
 * that queues again starts the next batch.
 */
void
pgstore_batch_run(struct pgstore *p)
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
	for (size_t i = 0; i < b->n; i++)
		b->cb[i](rc, rc == -1 ? err : NULL, b->arg[i]);
	b->n = 0;
	if (p->batch == NULL)
		p->batch = b;
	else
		free(b);
}

/*
 * Frees the queue; a read still queued gets no callback (the handle is
 * closing with its thread, and its requests with it).
 */
void
pgstore_batch_free(struct pgstore *p)
{
	free(p->batch);
	p->batch = NULL;
}
