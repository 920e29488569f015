/*
 * The locks that make two links of one NHS number serialise on PostgreSQL
 * (D18: one person, many holders; docs/deploy-ha.md "NHS number locks").
 *
 * A number is hashed into one of PGNHS_BUCKETS keys of the advisory-lock
 * class 1931, so a transaction holds at most that many, however many
 * numbers it links: one lock per number filled the server's lock table
 * (max_locks_per_transaction x max_connections, 6,400 by default) and a
 * batch past that failed with "out of shared memory". Two numbers of one
 * bucket only queue behind each other.
 *
 * Deadlocks: every transaction that links takes, first, key PGNHS_ALL of
 * the class -- shared when it then locks buckets, exclusive when it stands
 * for every number -- and only then bucket keys. A batch that names its
 * numbers before it starts (pgstore_nhs_lock(): holder batches, data file
 * loads) takes all its buckets at once in ascending order, or, past
 * PGNHS_MAX_KEYS buckets, key PGNHS_ALL exclusive and no bucket at all.
 * Locks taken in one global order cannot wait in a circle. A link the
 * transaction did not name first takes its bucket as it comes
 * (pgstore_nhs_lock_one()), as every link did before.
 *
 * The state (which buckets, which mode) belongs to the handle and lasts
 * until the transaction ends (pgstore_nhs_clear()); the locks are
 * transaction-scoped, so the server drops them at the commit or rollback.
 */
#include <libpq-fe.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstore.h"
#include "pgstore_int.h"
#include "util.h"

/* A number's bucket: FNV-1a (32 bits) of its ten digits, low bits. */
static int
bucket(const char *nhs)
{
	uint32_t h = 2166136261U;

	for (const unsigned char *c = (const unsigned char *)nhs; *c != '\0'; c++)
		h = (h ^ *c) * 16777619U;
	return (int)(h & (PGNHS_BUCKETS - 1));
}

static int
held(const struct pgstore *p, int b)
{
	return (p->nhs_held[b / 8] >> (b % 8)) & 1;
}

void
pgstore_nhs_clear(struct pgstore *p)
{
	p->nhs_mode = PGNHS_NONE;
	memset(p->nhs_held, 0, sizeof(p->nhs_held));
}

/* Key PGNHS_ALL in mode (PGNHS_SOME: shared, PGNHS_EVERY: exclusive). */
static int
lock_all(struct pgstore *p, int mode, char *err, size_t errlen)
{
	if (pgstore_exec(p, mode == PGNHS_EVERY ? S_NHS_EVERY : S_NHS_SOME, 0, NULL,
	    "nhs_number", err, errlen) == -1)
		return -1;
	p->nhs_mode = mode;
	return 0;
}

int
pgstore_nhs_lock_one(struct pgstore *p, const char *nhs, char *err,
    size_t errlen)
{
	char		 kb[16];
	const char	*vals[1] = { kb };
	int		 b = bucket(nhs);

	if (!p->txn || p->nhs_mode == PGNHS_EVERY || held(p, b))
		return 0;
	if (p->nhs_mode == PGNHS_NONE && lock_all(p, PGNHS_SOME, err, errlen) == -1)
		return -1;
	snprintf(kb, sizeof(kb), "%d", b);
	if (pgstore_exec(p, S_NHS_LOCK, 1, vals, "nhs_number", err, errlen) == -1)
		return -1;
	p->nhs_held[b / 8] |= (unsigned char)(1U << (b % 8));
	return 0;
}

int
pgstore_nhs_lock(struct pgstore *p, const char *const *nhs, size_t n,
    char *err, size_t errlen)
{
	unsigned char	 want[PGNHS_BUCKETS / 8];
	char		*lit = NULL, *o;
	const char	*vals[1];
	size_t		 nkeys = 0;
	int		 rc;

	if (!p->txn)
		return errorf(err, errlen, "PostgreSQL store: nhs_number: no "
		    "transaction");
	if (p->nhs_mode == PGNHS_EVERY || (nhs != NULL && n == 0))
		return 0;
	/* Named after links of its own: the rest as they come, as before. */
	if (p->nhs_mode != PGNHS_NONE) {
		for (size_t i = 0; nhs != NULL && i < n; i++)
			if (pgstore_nhs_lock_one(p, nhs[i], err, errlen) == -1)
				return -1;
		return nhs == NULL ? errorf(err, errlen, "PostgreSQL store: "
		    "nhs_number: every number locked after some") : 0;
	}
	memset(want, 0, sizeof(want));
	for (size_t i = 0; nhs != NULL && i < n; i++) {
		int b = bucket(nhs[i]);

		if (!((want[b / 8] >> (b % 8)) & 1)) {
			want[b / 8] |= (unsigned char)(1U << (b % 8));
			nkeys++;
		}
	}
	if (nhs == NULL || nkeys > PGNHS_MAX_KEYS)
		return lock_all(p, PGNHS_EVERY, err, errlen);
	if (lock_all(p, PGNHS_SOME, err, errlen) == -1)
		return -1;
	/* The buckets ascending, as an int4[] literal: "{3,17,...}". */
	o = lit = xcalloc(nkeys * 6 + 3, 1);
	*o++ = '{';
	for (int b = 0; b < PGNHS_BUCKETS; b++)
		if ((want[b / 8] >> (b % 8)) & 1)
			o += sprintf(o, "%s%d", o[-1] == '{' ? "" : ",", b);
	*o++ = '}';
	vals[0] = lit;
	rc = pgstore_exec(p, S_NHS_LOCKS, 1, vals, "nhs_number", err, errlen);
	free(lit);
	if (rc == -1)
		return -1;
	memcpy(p->nhs_held, want, sizeof(want));
	return 0;
}
