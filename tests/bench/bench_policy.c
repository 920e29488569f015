/*
 * Microbenchmark of the decision function (not a test): a generated protocol
 * of 20 agencies and 200 rules, a fixed pseudo-random mix of requests, each
 * decision timed on its own. Half the requests match a rule (the full path:
 * fields, consent, flags, transforms), half are random triples. Prints median, p99 and max in microseconds.
 *
 *   bench_policy [ITERATIONS]      (default 200000, at most 10 million)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"

#define AGENCIES	20
#define PURPOSES	10
#define TYPES		10
#define FIELDS		12
#define RULES		200

static char *
generate(size_t *len)
{
	static const char *const types[] = { "name", "date", "postcode", "string",
	    "address", "phone", "text", "text", "string", "date", "name", "text" };
	static const char *const tr[] = { "initials", "age_band", "postcode_district" };
	size_t	 cap = 1 << 20, n = 0;
	char	*b = malloc(cap);

#define OUT(...) (n += (size_t)snprintf(b + n, cap - n, __VA_ARGS__))
	OUT("protocol: {id: bench, version: \"1\", owner: bench, review_by: 2099-12-31}\n");
	OUT("flags: [domestic_abuse, hate_crime]\nagencies:\n");
	for (int a = 0; a < AGENCIES; a++)
		OUT("  - {id: a%d, subject: \"CN=a%d\", roles: [requester]}\n", a, a);
	OUT("purposes:\n");
	for (int p = 0; p < PURPOSES; p++)
		OUT("  - {id: p%d, lawful_basis: {article6: \"6(1)(e)\", article9: \"9(2)(g)\"}}\n", p);
	OUT("record_types:\n");
	for (int t = 0; t < TYPES; t++) {
		OUT("  - id: t%d\n    fields:\n", t);
		for (int f = 0; f < FIELDS; f++)
			OUT("      - {name: f%d, type: %s, label: %s, identifying: %s}\n", f,
			    types[f], f % 4 == 3 ? "opinion" : "fact", f < 3 ? "true" : "false");
	}
	/* 200 distinct (agency, purpose, type) triples: agency a gets 10 rules. */
	OUT("rules:\n");
	for (int r = 0; r < RULES; r++) {
		int a = r % AGENCIES, p = (r / AGENCIES) % PURPOSES, t = (r * 7) % TYPES;

		OUT("  - id: r%d\n    agencies: [a%d]\n    purpose: p%d\n    record_type: t%d\n"
		    "    fields: [f0, f1, f2, f3, f4, f5, f6, f8]\n"
		    "    transforms: {f%d: %s}\n    consent: %s\n"
		    "    overrides: [child_significant_harm, serious_crime]\n"
		    "    withhold_when_flagged: {domestic_abuse: [f4, f5]}\n",
		    r, a, p, t, r % 3, tr[r % 3], r % 2 ? "required" : "not_required");
	}
#undef OUT
	*len = n;
	return b;
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
	static const char *const values[FIELDS] = { "Amelia Hart", "2015-03-09",
	    "EX1 4QT", "x", "12 Orchard Row", "07700 900123", "t", "t", "s",
	    "2020-01-01", "Sam Okafor", "t" };
	static const char *const flags[] = { "domestic_abuse" };
	long			 iters = argc > 1 ? atol(argv[1]) : 200000;
	struct diag		 d = { 0 };
	struct protocol		*p;
	struct decision		 dec;
	struct policy_subject	 s;
	double			*us, sum = 0;
	size_t			 len;
	char			*yaml = generate(&len);
	char			 pur[16], rt[16];
	unsigned		 seed = 42, outcomes[4] = { 0 };
	int64_t			 now = 1795000000;

	if (iters < 1 || iters > 10000000) {
		fprintf(stderr, "usage: bench_policy [ITERATIONS <= 10000000]\n");
		return 2;
	}
	if ((p = protocol_load_buffer("bench.yaml", (unsigned char *)yaml, len, now, &d)) == NULL) {
		diag_print(&d, stderr);
		return 1;
	}
	us = calloc((size_t)iters, sizeof(*us));
	memset(&s, 0, sizeof(s));
	s.known = 1;
	s.values = values;
	s.last_verified = now - 86400;
	for (long i = 0; i < iters; i++) {
		struct policy_request	 rq = { 0 };
		struct timespec		 t0, t1;
		const struct agency	*ag;

		seed = seed * 1103515245u + 12345u;
		if ((seed >> 28) & 1) {
			/* Half the requests match a rule and take the whole path. */
			const struct rule *r = &p->rules[(seed >> 8) % RULES];

			ag = protocol_agency(p, r->agencies.v[0]);
			snprintf(pur, sizeof(pur), "%s", r->purpose->id);
			snprintf(rt, sizeof(rt), "%s", r->record_type->id);
		} else {
			ag = &p->agencies[(seed >> 8) % AGENCIES];
			snprintf(pur, sizeof(pur), "p%u", (seed >> 12) % PURPOSES);
			snprintf(rt, sizeof(rt), "t%u", (seed >> 16) % TYPES);
		}
		rq.purpose = pur;
		rq.record_type = rt;
		rq.case_ref = "C1";
		rq.practitioner = "P";
		rq.subject_id = "S1";
		rq.consult = (seed >> 20) % 8 == 0;
		s.consent = (enum consent_state)((seed >> 22) % 4);
		s.flags = flags;
		s.nflags = (seed >> 24) % 3 == 0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		policy_decide(p, ag, &rq, &s, now, &dec);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		us[i] = (double)(t1.tv_sec - t0.tv_sec) * 1e6 +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
		sum += us[i];
		outcomes[dec.kind]++;
	}
	qsort(us, (size_t)iters, sizeof(*us), cmp);
	printf("policy_decide: %ld decisions, %d agencies, %d rules\n", iters, AGENCIES, RULES);
	printf("  outcomes: deny %u, allow %u, partial %u, consultation %u\n",
	    outcomes[0], outcomes[1], outcomes[2], outcomes[3]);
	printf("  median %.2f us, p99 %.2f us, max %.2f us, mean %.2f us\n",
	    us[iters / 2], us[(size_t)((double)iters * 0.99)], us[iters - 1], sum / (double)iters);
	free(us);
	free(yaml);
	protocol_unref(p);
	return 0;
}
