/*
 * Microbenchmark of the store read a disclosure makes (not a test):
 * store_subject() for random subjects of a generated store, each call timed
 * on its own, first with a read transaction per call (a request on its
 * own), then inside read scopes of 16 calls (a busy event-loop round, as
 * the daemon does), then scoped again with every other call made through
 * the storage interface (storage_subject(), the daemon's path: one
 * indirect call more), interleaved so both halves see the same machine.
 * Prints median, p99 and mean in microseconds.
 *
 *   bench_store PROTOCOL DIR [SUBJECTS [CALLS]]
 *
 * PROTOCOL is config/protocol.yaml (record type "person"); DIR a scratch
 * directory where store.db is made (10,000 subjects and 100,000 calls by
 * default). Every subject has a person record of 6 fields, 1 in 4 a
 * consent decision and 1 in 10 a flag, like `loadgen --make-data`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage.h"
#include "store.h"

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int
make(struct store *st, long subjects, int64_t now, char *err, size_t errlen)
{
	static const char *const names[] = { "full_name", "date_of_birth",
	    "address", "postcode", "phone", "gp_practice" };
	const char	*values[6] = { "Amelia Hart", "2015-03-09",
	    "12 Orchard Row, Exeter", "EX1 4QT", "07700 900123", "Riverside Surgery" };
	char		 id[32];

	if (store_begin(st, err, errlen) == -1)
		return -1;
	for (long i = 0; i < subjects; i++) {
		snprintf(id, sizeof(id), "S%06ld", i);
		if (store_put_record(st, id, "person", "csc", now - 86400, names,
		    values, 6, err, errlen) == -1 ||
		    (i % 4 == 0 && store_add_consent(st, id, CONSENT_GRANTED, "*", "*",
		    0, 0, "csc", now, err, errlen) == -1) ||
		    (i % 10 == 0 && store_set_flag(st, id, "domestic_abuse", "csc",
		    now, err, errlen) == -1)) {
			store_rollback(st);
			return -1;
		}
	}
	return store_commit(st, err, errlen);
}

static void
report(const char *what, double *us, long n)
{
	double sum = 0;

	for (long i = 0; i < n; i++)
		sum += us[i];
	qsort(us, (size_t)n, sizeof(*us), cmp);
	printf("  %-34s median %.2f us  p99 %.2f us  mean %.2f us\n", what,
	    us[n / 2], us[n * 99 / 100], sum / (double)n);
}

int
main(int argc, char *argv[])
{
	long			 subjects = argc > 3 ? atol(argv[3]) : 10000;
	long			 calls = argc > 4 ? atol(argv[4]) : 100000;
	int64_t			 now = (int64_t)time(NULL);
	struct diag		 d = { 0 };
	struct protocol		*p;
	const struct record_type *rt;
	struct store		*st;
	struct storage		*sg;
	char			 path[4096], err[256], id[32];
	double			*us, *vs;
	unsigned		 seed = 42;
	long			 known = 0;

	if (argc < 3 || subjects < 1 || subjects > 1000000 || calls < 1 ||
	    calls > 10000000) {
		fprintf(stderr, "usage: bench_store PROTOCOL DIR [SUBJECTS [CALLS]]\n");
		return 2;
	}
	if ((p = protocol_load(argv[1], now, &d)) == NULL) {
		diag_print(&d, stderr);
		return 1;
	}
	if ((rt = protocol_record_type(p, "person")) == NULL) {
		fprintf(stderr, "bench_store: %s has no record type person\n", argv[1]);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/store.db", argv[2]);
	unlink(path);
	if (store_open(&st, path, err, sizeof(err)) == -1 ||
	    make(st, subjects, now, err, sizeof(err)) == -1) {
		fprintf(stderr, "bench_store: %s: %s\n", path, err);
		return 1;
	}
	/* Closed and opened again: the WAL is checkpointed, as in a store in use. */
	store_close(st);
	if (store_open(&st, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "bench_store: %s\n", err);
		return 1;
	}
	us = calloc((size_t)calls, sizeof(*us));
	printf("store_subject: %ld calls over %ld subjects\n", calls, subjects);
	for (int scoped = 0; scoped < 2; scoped++) {
		for (long i = 0; i < calls; i++) {
			struct store_subject	 s;
			double			 t0;

			seed = seed * 1103515245u + 12345u;
			snprintf(id, sizeof(id), "S%06ld", (long)(seed >> 8) % subjects);
			if (scoped && i % 16 == 0) {
				store_read_end(st);
				store_read_begin(st);
			}
			t0 = now_us();
			if (store_subject(st, rt, id, "police", "child_protection", &s, err,
			    sizeof(err)) == -1) {
				fprintf(stderr, "bench_store: %s\n", err);
				return 1;
			}
			us[i] = now_us() - t0;
			known += s.view.known;
			store_subject_free(&s);
		}
		store_read_end(st);
		report(scoped ? "in read scopes of 16 calls" : "one read transaction each",
		    us, calls);
	}
	if (known != 2 * calls)
		fprintf(stderr, "bench_store: %ld of %ld subjects not found\n",
		    2 * calls - known, 2 * calls);
	/* Direct (us) and through the interface (vs), call by call. */
	if (storage_wrap_sqlite(&sg, st, err, sizeof(err)) == -1 ||
	    (vs = calloc((size_t)calls, sizeof(*vs))) == NULL) {
		fprintf(stderr, "bench_store: %s\n", err);
		return 1;
	}
	for (long i = 0; i < 2 * (calls / 2); i++) {
		struct store_subject	 s;
		double			 t0;
		int			 rc;

		seed = seed * 1103515245u + 12345u;
		snprintf(id, sizeof(id), "S%06ld", (long)(seed >> 8) % subjects);
		if (i % 16 == 0) {
			store_read_end(st);
			store_read_begin(st);
		}
		t0 = now_us();
		rc = i % 2 ? storage_subject(sg, rt, id, "police",
		    "child_protection", &s, err, sizeof(err)) : store_subject(st,
		    rt, id, "police", "child_protection", &s, err, sizeof(err));
		if (rc == -1) {
			fprintf(stderr, "bench_store: %s\n", err);
			return 1;
		}
		(i % 2 ? vs : us)[i / 2] = now_us() - t0;
		store_subject_free(&s);
	}
	store_read_end(st);
	report("scoped, store_subject()", us, calls / 2);
	report("scoped, storage_subject()", vs, calls / 2);
	storage_close(sg);
	free(vs);
	store_close(st);
	protocol_unref(p);
	free(us);
	return 0;
}
