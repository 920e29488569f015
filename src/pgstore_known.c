/*
 * The subjects a holder batch names, read in one statement at the start of
 * its transaction (issue 19): pgstore_prefetch() locks the rows of those
 * that exist (FOR UPDATE, in id order, as each op's own check locked them
 * one by one before) and remembers each one's holder, or that it did not
 * exist. Until the transaction ends, the ops' ownership checks
 * (pgstore_subject_holder()) are answered from that list, and a record
 * check of a subject the transaction itself made, before any record of it
 * was put, needs no query: it has none. pgstore_put_record() keeps the
 * list up to date. A subject that another daemon makes meanwhile is caught
 * as before: the put's deferred owner check fails the batch (pgstore.h).
 *
 * The list belongs to the handle (p->known, sorted by id) and is freed at
 * the transaction's end (pgstore_known_clear()).
 */
#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstore.h"
#include "pgstore_int.h"
#include "util.h"

static int
by_id(const void *a, const void *b)
{
	return strcmp(((const struct pgknown *)a)->id, ((const struct pgknown *)b)->id);
}

void
pgstore_known_clear(struct pgstore *p)
{
	for (size_t i = 0; i < p->nknown; i++)
		free(p->known[i].holder);
	free(p->known);
	p->known = NULL;
	p->nknown = 0;
}

/* The batch's entry for subject, or NULL: then ask the database. */
struct pgknown *
pgstore_known(struct pgstore *p, const char *subject)
{
	struct pgknown key;

	if (!p->txn || p->nknown == 0)
		return NULL;
	key.id = subject;
	return bsearch(&key, p->known, p->nknown, sizeof(key), by_id);
}

/*
 * Strings as one text[] literal: each quoted, with backslash and quote
 * escaped (PostgreSQL's array input syntax), so any text, "NULL" and
 * braces included, arrives as it is. The caller frees it.
 */
char *
pgstore_array(const char *const *v, size_t n)
{
	size_t	 len = 3, o = 0;
	char	*s;

	for (size_t i = 0; i < n; i++)
		for (const char *c = v[i]; ; c++) {
			len += (*c == '"' || *c == '\\') ? 2 : 1;
			if (*c == '\0') {
				len += 2;	/* the quotes; the comma took the NUL's */
				break;
			}
		}
	s = xcalloc(len, 1);
	s[o++] = '{';
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			s[o++] = ',';
		s[o++] = '"';
		for (const char *c = v[i]; *c != '\0'; c++) {
			if (*c == '"' || *c == '\\')
				s[o++] = '\\';
			s[o++] = *c;
		}
		s[o++] = '"';
	}
	s[o++] = '}';
	s[o] = '\0';
	return s;
}

int
pgstore_prefetch(struct pgstore *p, char *const *subjects, size_t n, char *err,
    size_t errlen)
{
	struct pgknown	*k;
	PGresult	*res;
	const char	*vals[1], **ids;
	char		*lit;
	size_t		 m = 0;

	pgstore_known_clear(p);
	if (!p->txn)
		return errorf(err, errlen, "PostgreSQL store: prefetch: no "
		    "transaction");
	if (n == 0)
		return 0;
	k = xcalloc(n, sizeof(*k));
	for (size_t i = 0; i < n; i++)
		k[i].id = subjects[i];
	qsort(k, n, sizeof(*k), by_id);
	for (size_t i = 0; i < n; i++)
		if (m == 0 || strcmp(k[m - 1].id, k[i].id) != 0)
			k[m++] = k[i];
	ids = xcalloc(m, sizeof(*ids));
	for (size_t i = 0; i < m; i++)
		ids[i] = k[i].id;
	vals[0] = lit = pgstore_array(ids, m);
	free(ids);
	res = pgstore_run(p, S_PREFETCH, 1, vals, "subjects", err, errlen);
	free(lit);
	if (res == NULL) {
		free(k);
		return -1;
	}
	p->known = k;
	p->nknown = m;
	for (size_t i = 0; i < m; i++)
		k[i].fresh = 1;
	for (int r = 0; r < PQntuples(res); r++) {
		struct pgknown *e = pgstore_known(p, pgstore_text(res, r, 0));

		if (e != NULL && e->holder == NULL) {
			e->holder = xstrdup(pgstore_text(res, r, 1));
			e->fresh = 0;
		}
	}
	PQclear(res);
	return 0;
}
