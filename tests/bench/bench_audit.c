/*
 * Disclosure log benchmarks (not a test): builds a log of N entries (default
 * 1,000,000) over 10,000 subjects with signed checkpoints, then times a full
 * verification (chain and signatures), a subject-access query and the
 * auditor's report aggregation over the whole log (issue 21).
 *
 *   bench_audit DIR [ENTRIES]     (DIR is scratch space; at most 10 million)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "report.h"

#define SUBJECTS	10000
#define BATCH		10000

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
count(const struct audit_entry *e, void *arg)
{
	(*(uint64_t *)arg)++;
	return 0;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char *argv[])
{
	struct audit_verify_result	 r;
	struct audit_entry		*es, **ps;
	struct audit			*a;
	EVP_PKEY			*pub;
	char				 path[512], key[512], pubf[512], cmd[4096], err[256];
	char				(*subj)[16];
	uint64_t			 n = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
	double				 t0, t1, times[50];

	if (argc < 2 || n < 1 || n > 10000000) {
		fprintf(stderr, "usage: bench_audit DIR [ENTRIES <= 10000000]\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/bench-audit.db", argv[1]);
	snprintf(key, sizeof(key), "%s/bench-audit.key", argv[1]);
	snprintf(pubf, sizeof(pubf), "%s/bench-audit.pub", argv[1]);
	snprintf(cmd, sizeof(cmd), "rm -f %s %s-wal %s-shm %s-subjects*; umask 077; "
	    "openssl genpkey -algorithm ed25519 -out %s && openssl pkey -in %s -pubout "
	    "-out %s", path, path, path, path, key, key, pubf);
	if (system(cmd) != 0)
		return 1;
	if (audit_open(&a, path, err, sizeof(err)) == -1 ||
	    audit_set_signer(a, key, 1000, 60, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	es = calloc(BATCH, sizeof(*es));
	ps = calloc(BATCH, sizeof(*ps));
	subj = calloc(BATCH, sizeof(*subj));
	t0 = now_s();
	for (uint64_t done = 0; done < n; ) {
		size_t k = n - done < BATCH ? (size_t)(n - done) : BATCH;

		for (size_t i = 0; i < k; i++) {
			struct audit_entry *e = &es[i];

			memset(e, 0, sizeof(*e));
			snprintf(subj[i], sizeof(subj[i]), "S%05u",
			    (unsigned)((done + i) * 7919 % SUBJECTS));
			e->time = 1790000000 + (int64_t)(done + i);
			e->kind = "disclosure";
			e->agency = (done + i) % 3 ? "police" : "health_trust";
			e->cert_fp = "3f1c0e9a4d2b7c6e5f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e";
			e->practitioner = "DC R. Jones";
			e->purpose = "child_protection";
			e->lawful_basis = "Art 6(1)(e) public task; Art 9(2)(g)";
			e->case_ref = "CP-2026-0142";
			e->subject = subj[i];
			e->record_type = "person";
			e->decision = "allow";
			e->reason = "released";
			e->released = "full_name,date_of_birth,address,postcode,phone";
			e->withheld = "gp_practice:not_in_rule";
			e->consent = "none";
			e->rule_id = "police-child-person";
			e->protocol_id = "example-safeguarding-partnership";
			e->protocol_version = "1.0";
			e->protocol_sha256 = "9b1f0c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b";
			e->request_id = "71c8975c0401a866635a7baab9d8a952";
			ps[i] = e;
		}
		if (audit_append(a, ps, k, err, sizeof(err)) == -1) {
			fprintf(stderr, "append: %s\n", err);
			return 1;
		}
		done += k;
	}
	t1 = now_s();
	printf("built %" PRIu64 " entries in %.1f s (%.0f entries/s in batches of %d)\n",
	    n, t1 - t0, (double)n / (t1 - t0), BATCH);
	audit_close(a);
	/* The subject index, built behind the log as the daemon's checkpointer does. */
	{
		struct audit_index	*x;
		uint64_t		 left = 1;

		t0 = now_s();
		if (audit_index_open(&x, path, err, sizeof(err)) == -1) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		while (left > 0)
			if (audit_index_update(x, 16384, &left, err,
			    sizeof(err)) == -1) {
				fprintf(stderr, "index: %s\n", err);
				return 1;
			}
		audit_index_close(x);
		t1 = now_s();
		printf("subject index of %" PRIu64 " entries built in %.1f s (%.0f entries/s)\n",
		    n, t1 - t0, (double)n / (t1 - t0));
	}

	if ((pub = audit_load_public_key(pubf, err, sizeof(err))) == NULL ||
	    audit_open_reader(&a, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (int run = 0; run < 3; run++) {
		t0 = now_s();
		audit_verify(a, pub, &r);
		t1 = now_s();
		printf("verify run %d: %s, %" PRIu64 " entries, %" PRIu64 " checkpoints in "
		    "%.2f s = %.0f entries/s\n", run + 1, r.ok ? "ok" : r.why, r.entries,
		    r.checkpoints, t1 - t0, (double)r.entries / (t1 - t0));
	}
	/* Subject-access report: every entry about one person (D17). */
	for (int i = 0; i < 50; i++) {
		struct audit_filter	 f;
		char			 s[16];
		uint64_t		 hits = 0;

		memset(&f, 0, sizeof(f));
		snprintf(s, sizeof(s), "S%05d", (i * 211) % SUBJECTS);
		f.subject = s;
		f.kind = "disclosure";
		t0 = now_s();
		audit_query(a, &f, 0, 0, 0, count, &hits, err, sizeof(err));
		times[i] = (now_s() - t0) * 1000;
		if (i == 0)
			printf("subject query: %" PRIu64 " entries for %s\n", hits, s);
	}
	qsort(times, 50, sizeof(times[0]), cmp);
	printf("subject query over 50 subjects: median %.2f ms, max %.2f ms\n", times[25],
	    times[49]);
	/* The auditor's report (issue 21): one pass over the whole log. */
	for (int run = 0; run < 2; run++) {
		struct audit_filter		 f;
		struct report			*rep = report_new(0, 0, NULL, time(NULL));
		Safeshare__V1__AuditReport	*m;

		memset(&f, 0, sizeof(f));
		t0 = now_s();
		if (audit_query(a, &f, 0, 0, 0, report_cb, rep, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "report: %s\n", err);
			return 1;
		}
		m = report_finish(rep);
		t1 = now_s();
		printf("report run %d: %" PRIu64 " entries in %.2f s = %.0f entries/s; %zu "
		    "day/decision rows, %" PRIu64 " many-request pairs, reply %zu bytes\n",
		    run + 1, m->entries, t1 - t0, (double)m->entries / (t1 - t0),
		    m->n_per_day, m->many_requests_total,
		    protobuf_c_message_get_packed_size(&m->base));
		report_msg_free(m);
		report_free(rep);
	}
	audit_close(a);
	EVP_PKEY_free(pub);
	free(es);
	free(ps);
	free(subj);
	return 0;
}
