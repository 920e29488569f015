/*
 * The auditor's report (issue 21): one pass over the log's entries into
 * small hash tables keyed by strings, then sorted lists for the message.
 * Every table is bounded (REPORT_MAX_KEYS); each pattern lists at most
 * REPORT_SEQS seqs, and each list at most REPORT_TOP rows.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdio.h>

#include "log.h"
#include "policy.h"
#include "report.h"
#include "util.h"

/* One key of a table, with what is counted for it. */
struct cell {
	char		*k1, *k2;
	uint64_t	 a, b;
	int64_t		 t;
	uint64_t	 seq;
	uint64_t	 seqs[REPORT_SEQS];
	unsigned	 nseq;
};

struct tab {
	struct cell	**slot;
	size_t		  cap, n;
};

enum { T_DAYS, T_KINDS, T_CODES, T_REVIEWS, T_INFORM, T_MATRIX, T_REASONS,
    T_PAIRS, T_LASTDENY, T_OOH, T_N };

struct report {
	int64_t		 from, to, now;
	char		*agency;
	struct tab	 t[T_N];
	uint64_t	 entries;
	int		 truncated;
	/* The denial-then-override patterns, the first REPORT_TOP of them. */
	Safeshare__V1__ReportPattern	*dto[REPORT_TOP];
	size_t		 ndto;
	uint64_t	 dto_total, ooh_total;
	int64_t		 day_no;	/* the day of day_str, to format it once a day */
	char		 day_str[16];
};

static uint64_t
hash2(const char *k1, const char *k2)
{
	uint64_t h = 1469598103934665603ULL;

	for (const unsigned char *p = (const unsigned char *)k1; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	h = (h ^ 0x1f) * 1099511628211ULL;
	for (const unsigned char *p = (const unsigned char *)k2; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h;
}

static void
tab_grow(struct tab *t)
{
	size_t		 ncap = t->cap ? t->cap * 2 : 64;
	struct cell	**ns = xcalloc(ncap, sizeof(*ns));

	for (size_t i = 0; i < t->cap; i++) {
		struct cell *c = t->slot[i];
		size_t j;

		if (c == NULL)
			continue;
		for (j = hash2(c->k1, c->k2) & (ncap - 1); ns[j]; j = (j + 1) & (ncap - 1))
			;
		ns[j] = c;
	}
	free(t->slot);
	t->slot = ns;
	t->cap = ncap;
}

/*
 * The cell of (k1, k2), made if `make` and the table has room; NULL when it
 * is not there (or the table is full: the report is then truncated). The
 * table owns its cells.
 */
static struct cell *
tab_get(struct report *r, struct tab *t, const char *k1, const char *k2, int make)
{
	struct cell	*c;
	size_t		 j;

	k1 = k1 ? k1 : "";
	k2 = k2 ? k2 : "";
	if (t->cap > 0) {
		for (j = hash2(k1, k2) & (t->cap - 1); (c = t->slot[j]) != NULL;
		    j = (j + 1) & (t->cap - 1))
			if (strcmp(c->k1, k1) == 0 && strcmp(c->k2, k2) == 0)
				return c;
	}
	if (!make)
		return NULL;
	if (t->n >= REPORT_MAX_KEYS) {
		r->truncated = 1;
		return NULL;
	}
	if ((t->n + 1) * 2 > t->cap)
		tab_grow(t);
	for (j = hash2(k1, k2) & (t->cap - 1); t->slot[j]; j = (j + 1) & (t->cap - 1))
		;
	c = xcalloc(1, sizeof(*c));
	c->k1 = xstrdup(k1);
	c->k2 = xstrdup(k2);
	t->slot[j] = c;
	t->n++;
	return c;
}

static void
cell_seq(struct cell *c, uint64_t seq)
{
	if (c->nseq < REPORT_SEQS)
		c->seqs[c->nseq++] = seq;
}

struct report *
report_new(int64_t from, int64_t to, const char *agency, int64_t now)
{
	struct report *r = xcalloc(1, sizeof(*r));

	r->from = from;
	r->to = to;
	r->now = now;
	r->agency = agency && *agency ? xstrdup(agency) : NULL;
	r->day_no = INT64_MIN;
	return r;
}

static int
empty(const char *s)
{
	return s == NULL || *s == '\0';
}

static int
is(const char *s, const char *v)
{
	return s != NULL && strcmp(s, v) == 0;
}

/* A note (review, D15; inform_done, D6) closes an item it refers to. */
static void
add_note(struct report *r, const struct audit_entry *e)
{
	char		 k[24];
	struct cell	*c;

	snprintf(k, sizeof(k), "%llu", (unsigned long long)e->ref_seq);
	if (is(e->kind, "review") && (c = tab_get(r, &r->t[T_REVIEWS], k, "", 0)))
		c->b = is(e->reason, "upheld") ? 1 : 2;
	else if (is(e->kind, "inform_done") && (c = tab_get(r, &r->t[T_INFORM], k, "", 0)))
		c->b = 1;
}

/* Outside 08:00-18:00 UTC, or on a Saturday or Sunday. */
static int
out_of_hours(int64_t t)
{
	int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
	int64_t sod = t - days * 86400, wday = ((days % 7) + 11) % 7; /* 0: Sunday */

	return wday == 0 || wday == 6 || sod < REPORT_DAY_START * 3600 ||
	    sod >= REPORT_DAY_END * 3600;
}

static const char *
day_of(struct report *r, int64_t t)
{
	int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
	time_t tt = (time_t)(days * 86400);
	struct tm tm;

	if (days != r->day_no) {
		gmtime_r(&tt, &tm);
		strftime(r->day_str, sizeof(r->day_str), "%Y-%m-%d", &tm);
		r->day_no = days;
	}
	return r->day_str;
}

static void
add_request(struct report *r, const struct audit_entry *e)
{
	struct cell	*c, *d;
	char		 k[24], ps[4096];
	int		 deny = is(e->decision, "deny");
	int		 used = !deny && (is(e->reason, "override") ||
			    is(e->reason, "override_partial"));

	if ((c = tab_get(r, &r->t[T_DAYS], day_of(r, e->time), e->decision, 1)))
		c->a++;
	if ((c = tab_get(r, &r->t[T_MATRIX], e->agency, e->purpose, 1))) {
		c->a++;
		c->b += deny;
	}
	if (deny && (c = tab_get(r, &r->t[T_REASONS], e->reason, "", 1)))
		c->a++;
	/* A practitioner is one within an agency: the key is agency, then name US subject. */
	if (!empty(e->practitioner) && !empty(e->subject) &&
	    strlen(e->practitioner) + strlen(e->subject) + 2 <= sizeof(ps)) {
		size_t pl = strlen(e->practitioner);

		memcpy(ps, e->practitioner, pl);
		ps[pl] = '\x1f';
		memcpy(ps + pl + 1, e->subject, strlen(e->subject) + 1);
		c = tab_get(r, &r->t[T_PAIRS], e->agency, ps, 1);
	} else
		c = NULL;
	if (c != NULL) {
		c->a++;
		cell_seq(c, e->seq);
	}
	if (out_of_hours(e->time)) {
		r->ooh_total++;
		if ((c = tab_get(r, &r->t[T_OOH], e->agency, e->practitioner, 1))) {
			c->a++;
			cell_seq(c, e->seq);
		}
	}
	/* Overrides (D15): every one awaits a review; one used, a note (D6). */
	if (!empty(e->override_code) && (deny || used)) {
		if ((c = tab_get(r, &r->t[T_CODES], e->override_code,
		    deny ? "refused" : "used", 1)))
			c->a++;
		snprintf(k, sizeof(k), "%llu", (unsigned long long)e->seq);
		if ((c = tab_get(r, &r->t[T_REVIEWS], k, "", 1)))
			c->t = e->time;
		if (used && (empty(e->inform_waiver) || strncmp(e->inform_waiver,
		    POLICY_WAIVER_REJECTED, strlen(POLICY_WAIVER_REJECTED)) == 0) &&
		    (c = tab_get(r, &r->t[T_INFORM], k, "", 1)))
			c->t = e->time;
	}
	if (empty(e->subject))
		return;
	if (used && (d = tab_get(r, &r->t[T_LASTDENY], e->subject, "", 0)) &&
	    d->seq != 0 && e->time - d->t <= 86400) {
		r->dto_total++;
		if (r->ndto < REPORT_TOP) {
			Safeshare__V1__ReportPattern *p = xcalloc(1, sizeof(*p));

			safeshare__v1__report_pattern__init(p);
			p->kind = xstrdup("deny_then_override");
			p->practitioner = xstrdup(e->practitioner ? e->practitioner : "");
			p->agency = xstrdup(e->agency ? e->agency : "");
			p->subject = xstrdup(e->subject);
			p->count = 2;
			p->n_seqs = 2;
			p->seqs = xcalloc(2, sizeof(*p->seqs));
			p->seqs[0] = d->seq;
			p->seqs[1] = e->seq;
			r->dto[r->ndto++] = p;
		}
		d->seq = 0;	/* one pattern per denial */
	}
	if (deny && (d = tab_get(r, &r->t[T_LASTDENY], e->subject, "", 1))) {
		d->t = e->time;
		d->seq = e->seq;
	}
}

int
report_add(struct report *r, const struct audit_entry *e)
{
	struct cell *c;

	if (is(e->kind, "review") || is(e->kind, "inform_done")) {
		add_note(r, e);
		if (r->agency != NULL)
			return 0;
	}
	if (e->time < r->from || (r->to != 0 && e->time >= r->to))
		return 0;
	if (r->agency != NULL && !is(e->agency, r->agency))
		return 0;
	r->entries++;
	if ((c = tab_get(r, &r->t[T_KINDS], e->kind, "", 1)))
		c->a++;
	if (is(e->kind, "disclosure"))
		add_request(r, e);
	return 0;
}

int
report_cb(const struct audit_entry *e, void *arg)
{
	return report_add(arg, e) == -1;
}

static int
by_keys(const void *x, const void *y)
{
	const struct cell *a = *(struct cell *const *)x, *b = *(struct cell *const *)y;
	int c = strcmp(a->k1, b->k1);

	return c ? c : strcmp(a->k2, b->k2);
}

static int
by_count(const void *x, const void *y)
{
	const struct cell *a = *(struct cell *const *)x, *b = *(struct cell *const *)y;

	if (a->a != b->a)
		return a->a > b->a ? -1 : 1;
	return by_keys(x, y);
}

/* The table's cells with a >= min, sorted; *n says how many. */
static struct cell **
tab_sorted(struct tab *t, int (*cmp)(const void *, const void *), uint64_t min,
    size_t *n)
{
	struct cell **v = xcalloc(t->n + 1, sizeof(*v));

	*n = 0;
	for (size_t i = 0; i < t->cap; i++)
		if (t->slot[i] && t->slot[i]->a >= min)
			v[(*n)++] = t->slot[i];
	qsort(v, *n, sizeof(*v), cmp);
	return v;
}

static void
counts(struct tab *t, int (*cmp)(const void *, const void *), size_t most,
    Safeshare__V1__ReportCount ***out, size_t *nout)
{
	size_t		 n;
	struct cell	**v = tab_sorted(t, cmp, 0, &n);

	if (most && n > most)
		n = most;
	*out = xcalloc(n + 1, sizeof(**out));
	for (size_t i = 0; i < n; i++) {
		Safeshare__V1__ReportCount *rc = xcalloc(1, sizeof(*rc));

		safeshare__v1__report_count__init(rc);
		rc->key = xstrdup(v[i]->k1);
		rc->key2 = xstrdup(v[i]->k2);
		rc->count = v[i]->a;
		rc->count2 = v[i]->b;
		(*out)[i] = rc;
	}
	*nout = n;
	free(v);
}

static Safeshare__V1__ReportPattern *
pattern(const char *kind, const struct cell *c, const char *practitioner,
    const char *agency, const char *subject)
{
	Safeshare__V1__ReportPattern *p = xcalloc(1, sizeof(*p));

	safeshare__v1__report_pattern__init(p);
	p->kind = xstrdup(kind);
	p->practitioner = xstrdup(practitioner);
	p->agency = xstrdup(agency);
	p->subject = xstrdup(subject);
	p->count = c->a;
	p->n_seqs = c->nseq;
	p->seqs = xcalloc(c->nseq + 1, sizeof(*p->seqs));
	memcpy(p->seqs, c->seqs, c->nseq * sizeof(*p->seqs));
	return p;
}

Safeshare__V1__AuditReport *
report_finish(struct report *r)
{
	Safeshare__V1__AuditReport	*m = xcalloc(1, sizeof(*m));
	struct cell			**v;
	size_t				  n, np = 0;

	safeshare__v1__audit_report__init(m);
	m->from_time = r->from;
	m->to_time = r->to;
	m->agency = xstrdup(r->agency ? r->agency : "");
	m->generated = r->now;
	m->entries = r->entries;
	m->many_requests_threshold = REPORT_MANY;
	counts(&r->t[T_DAYS], by_keys, 0, &m->per_day, &m->n_per_day);
	counts(&r->t[T_KINDS], by_keys, 0, &m->kinds, &m->n_kinds);
	counts(&r->t[T_CODES], by_keys, 0, &m->overrides_by_code, &m->n_overrides_by_code);
	counts(&r->t[T_MATRIX], by_keys, 0, &m->agency_purpose, &m->n_agency_purpose);
	counts(&r->t[T_REASONS], by_count, REPORT_TOP, &m->deny_reasons, &m->n_deny_reasons);
	for (size_t i = 0; i < r->t[T_REVIEWS].cap; i++) {
		struct cell *c = r->t[T_REVIEWS].slot[i];

		if (c == NULL)
			continue;
		if (c->b == 1)
			m->reviews_upheld++;
		else if (c->b == 2)
			m->reviews_not_upheld++;
		else {
			m->reviews_pending++;
			if (m->oldest_pending_time == 0 || c->t < m->oldest_pending_time)
				m->oldest_pending_time = c->t;
		}
	}
	for (size_t i = 0; i < r->t[T_INFORM].cap; i++) {
		struct cell *c = r->t[T_INFORM].slot[i];

		if (c != NULL && c->b == 0) {
			m->inform_pending++;
			if (m->oldest_inform_time == 0 || c->t < m->oldest_inform_time)
				m->oldest_inform_time = c->t;
		}
	}
	m->patterns = xcalloc(3 * REPORT_TOP + 1, sizeof(*m->patterns));
	v = tab_sorted(&r->t[T_PAIRS], by_count, REPORT_MANY, &n);
	m->many_requests_total = n;
	for (size_t i = 0; i < n && i < REPORT_TOP; i++) {
		char *us = strrchr(v[i]->k2, '\x1f');

		*us = '\0';	/* put back below: the cell's key is still needed */
		m->patterns[np++] = pattern("many_requests", v[i], v[i]->k2, v[i]->k1,
		    us + 1);
		*us = '\x1f';
	}
	free(v);
	for (size_t i = 0; i < r->ndto; i++) {
		m->patterns[np++] = r->dto[i];
		r->dto[i] = NULL;
	}
	r->ndto = 0;
	m->deny_then_override_total = r->dto_total;
	v = tab_sorted(&r->t[T_OOH], by_count, 1, &n);
	for (size_t i = 0; i < n && i < REPORT_TOP; i++)
		m->patterns[np++] = pattern("out_of_hours", v[i], v[i]->k2, v[i]->k1, "");
	free(v);
	m->n_patterns = np;
	m->out_of_hours_total = r->ooh_total;
	m->truncated = r->truncated;
	return m;
}

void
report_msg_free(Safeshare__V1__AuditReport *m)
{
	if (m != NULL)
		protobuf_c_message_free_unpacked(&m->base, NULL);
}

void
report_free(struct report *r)
{
	if (r == NULL)
		return;
	for (int i = 0; i < T_N; i++) {
		for (size_t j = 0; j < r->t[i].cap; j++) {
			struct cell *c = r->t[i].slot[j];

			if (c == NULL)
				continue;
			free(c->k1);
			free(c->k2);
				free(c);
		}
		free(r->t[i].slot);
	}
	for (size_t i = 0; i < r->ndto; i++)
		protobuf_c_message_free_unpacked(&r->dto[i]->base, NULL);
	free(r->agency);
	free(r);
}
