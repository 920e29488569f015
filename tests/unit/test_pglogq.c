/*
 * The PostgreSQL log's readers (src/pglog_query.c, src/pglog_proof.c,
 * issue 19) give the SQLite log's answers. Each case file of tests/data/logq
 * says what a log holds (commits of entries); the test appends the same
 * commits to an SQLite log (the real audit code) and to a PostgreSQL log
 * on the fixture's cluster (pglog_append(), by one handle or, with
 * `writers 2`, by two taking turns), then asks both the case's questions
 * (query, stats, scan, holder batches) and the ones every log is asked:
 * the checkpoints, the notes by size and up to a size, the last store,
 * the review and inform queues, roots, consistency proofs between sizes
 * and inclusion proofs (each checked with merkle.c's verifier against
 * the roots), the answers to sizes the log does not have, and the whole
 * verify; then the same through the log interface the daemon calls
 * (logstore.h). Every answer is written out as text, and the two texts must be
 * equal. A case's `count=N` says how many rows the SQLite log must give,
 * so that the equality is not of two empty answers.
 *
 * The logs have different ids (each is its own log), so a checkpoint is
 * compared by what its note says of the tree (number, size, root) and
 * the head it covers, not by its signature or its time.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "audit_int.h"
#include "logstore.h"
#include "merkle.h"
#include "pglog.h"
#include "t_pg.h"
#include "testutil.h"

#define CDIR		DATA_DIR "/logq"
#define MAXBATCH	256
#define GEN_TIME	1767225600	/* 2026-01-01 */

/* One answer written out. */
struct out {
	char	*s;
	size_t	 len, cap;
};

static void
out_add(struct out *o, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	cr_assert_geq(n, 0);
	if (o->len + (size_t)n + 1 > o->cap) {
		o->cap = (o->len + (size_t)n + 1) * 2;
		cr_assert_not_null(o->s = realloc(o->s, o->cap));
	}
	va_start(ap, fmt);
	vsnprintf(o->s + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	o->len += (size_t)n;
}

static void
out_hex(struct out *o, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out_add(o, "%02x", b[i]);
}

/* The two logs under test and the key both are signed with. */
struct fx {
	char		 path[256], key[256], pub[256], ci[1200];
	struct audit	*a;
	EVP_PKEY	*pk, *priv;
	PGconn		*adm;
	struct pglog	*pl[2];
	int		 writers, turn;
	uint64_t	 rows;		/* rows the last SQLite answer had */
	struct audit_entry e[MAXBATCH], *ep[MAXBATCH];
	char		*owned[MAXBATCH];	/* the lines e's strings point into */
	size_t		 n;
	int64_t		 time;
};

ParameterizedTestParameters(pglogq, cases)
{
	static struct t_case_file cases[32];

	return cr_make_param_array(struct t_case_file, cases,
	    t_case_files(CDIR, cases, 32));
}

Test(pglogq, cases_present)
{
	struct criterion_test_params params = pglogq_cases_param();

	cr_assert_geq(params.length, 3, "only %zu cases in " CDIR, params.length);
}

static int
entry_out(const struct audit_entry *e, void *arg)
{
	struct out		*o = arg;
	struct audit_entry	 c = *e;
	const char		**s[AUDIT_NSTRINGS];

	audit_entry_strings(&c, s);
	out_add(o, "%" PRIu64 " t=%" PRId64, e->seq, e->time);
	for (int i = 0; i < AUDIT_NSTRINGS; i++)
		if (*s[i] != NULL && **s[i] != '\0')
			out_add(o, " %s=%s", audit_string_names[i], *s[i]);
	out_add(o, " ref=%" PRIu64 " prev=", e->ref_seq);
	out_hex(o, e->prev_hash, 32);
	out_add(o, " hash=");
	out_hex(o, e->hash, 32);
	out_add(o, "\n");
	return 0;
}

/* Counts rows into the fixture while writing them out (the SQLite side). */
struct counted {
	struct out	*o;
	uint64_t	*rows;
};

static int
entry_counted(const struct audit_entry *e, void *arg)
{
	struct counted *c = arg;

	(*c->rows)++;
	return entry_out(e, c->o);
}

static int
stat_out(const char *k, uint64_t count, void *arg)
{
	struct counted *c = arg;

	if (c->rows != NULL)
		(*c->rows)++;
	out_add(c->o, "%s=%" PRIu64 "\n", k, count);
	return 0;
}

static int
batch_out(const char *rid, uint64_t first, const char *agency, const char *store,
    int64_t t, void *arg)
{
	struct counted *c = arg;

	if (c->rows != NULL)
		(*c->rows)++;
	out_add(c->o, "%s first=%" PRIu64 " agency=%s store=%s t=%" PRId64 "\n", rid,
	    first, agency, store, t);
	return 0;
}

/* A note as what it says of the tree: the logs' ids differ. */
static void
note_out(struct out *o, int rc, const char *note)
{
	struct cpnote	c;
	char		why[128];

	if (rc != 0) {
		out_add(o, "note rc=%d\n", rc);
		return;
	}
	cr_assert_eq(audit_note_parse(note, &c, why, sizeof(why)), 0, "%s", why);
	out_add(o, "note n=%" PRIu64 " size=%" PRIu64 " root=", c.n, c.size);
	out_hex(o, c.root, 32);
	out_add(o, " sigs=%zu\n", c.nsig);
}

static int
cp_out(const struct audit_checkpoint *cp, void *arg)
{
	struct out *o = arg;

	out_add(o, "cp %" PRIu64 " size=%" PRIu64 " head=", cp->id, cp->size);
	out_hex(o, cp->head, 32);
	out_add(o, " ");
	note_out(o, 0, cp->note);
	return 0;
}

/* The filter and paging of a question's words (name=value). */
struct ask {
	struct audit_filter	 f;
	uint64_t		 after, limit, from, since;
	int			 newest;
	long long		 count;		/* -1: not said */
	const char		*by;
};

static void
ask_parse(char *words, struct ask *q)
{
	char *save = NULL;

	memset(q, 0, sizeof(*q));
	q->count = -1;
	for (char *w = strtok_r(words, " ", &save); w != NULL;
	    w = strtok_r(NULL, " ", &save)) {
		char *v = strchr(w, '=');

		if (strcmp(w, "newest") == 0) {
			q->newest = 1;
			continue;
		}
		if (strcmp(w, "overrides") == 0) {
			q->f.overrides_only = 1;
			continue;
		}
		cr_assert_not_null(v, "a question's word \"%s\" has no =", w);
		*v++ = '\0';
		if (strcmp(w, "after") == 0)
			q->after = strtoull(v, NULL, 10);
		else if (strcmp(w, "limit") == 0)
			q->limit = strtoull(v, NULL, 10);
		else if (strcmp(w, "from") == 0)
			q->from = strtoull(v, NULL, 10);
		else if (strcmp(w, "since") == 0)
			q->since = strtoull(v, NULL, 10);
		else if (strcmp(w, "count") == 0)
			q->count = strtoll(v, NULL, 10);
		else if (strcmp(w, "by") == 0)
			q->by = v;
		else if (strcmp(w, "from_time") == 0)
			q->f.from_time = strtoll(v, NULL, 10);
		else if (strcmp(w, "to_time") == 0)
			q->f.to_time = strtoll(v, NULL, 10);
		else if (strcmp(w, "subject") == 0)
			q->f.subject = v;
		else if (strcmp(w, "agency") == 0)
			q->f.agency = v;
		else if (strcmp(w, "practitioner") == 0)
			q->f.practitioner = v;
		else if (strcmp(w, "purpose") == 0)
			q->f.purpose = v;
		else if (strcmp(w, "decision") == 0)
			q->f.decision = v;
		else if (strcmp(w, "reason") == 0)
			q->f.reason = v;
		else if (strcmp(w, "kind") == 0)
			q->f.kind = v;
		else
			cr_assert_fail("a question's word \"%s\" is unknown", w);
	}
}

/*
 * Asks one question of both logs (verb: query, stats, scan or holder)
 * and asserts the two answers are the same text, and that the SQLite
 * answer has count rows if the case says so.
 */
static void
ask_both(struct fx *x, const char *verb, char *words, const char *line)
{
	struct ask	 q;
	struct out	 o[2];
	char		 err[2][256];
	int		 rc[2];
	uint64_t	 rows = 0;

	ask_parse(words, &q);
	memset(o, 0, sizeof(o));
	for (int b = 0; b < 2; b++) {
		struct counted c = { &o[b], b == 0 ? &rows : NULL };

		err[b][0] = '\0';
		if (strcmp(verb, "query") == 0)
			rc[b] = b == 0 ? audit_query(x->a, &q.f, q.after, q.limit, q.newest,
			    entry_counted, &c, err[b], sizeof(err[b])) :
			    pglog_query(x->pl[0], &q.f, q.after, q.limit, q.newest,
			    entry_out, &o[b], err[b], sizeof(err[b]));
		else if (strcmp(verb, "scan") == 0)
			rc[b] = b == 0 ? audit_scan(x->a, q.from, q.limit, entry_counted,
			    &c, err[b], sizeof(err[b])) : pglog_scan(x->pl[0], q.from,
			    q.limit, entry_out, &o[b], err[b], sizeof(err[b]));
		else if (strcmp(verb, "stats") == 0)
			rc[b] = b == 0 ? audit_stats(x->a, &q.f, q.by ? q.by : "", stat_out,
			    &c, err[b], sizeof(err[b])) : pglog_stats(x->pl[0], &q.f,
			    q.by ? q.by : "", stat_out, &c, err[b], sizeof(err[b]));
		else if (strcmp(verb, "holder") == 0)
			rc[b] = b == 0 ? audit_holder_batches(x->a, q.since, batch_out, &c,
			    err[b], sizeof(err[b])) : pglog_holder_batches(x->pl[0],
			    q.since, batch_out, &c, err[b], sizeof(err[b]));
		else
			cr_assert_fail("unknown question \"%s\"", verb);
		out_add(&o[b], "rc=%d %s\n", rc[b], rc[b] == 0 ? "" : err[b]);
	}
	cr_assert_str_eq(o[1].s, o[0].s, "\"%s\": PostgreSQL answered\n%s\nSQLite "
	    "answered\n%s", line, o[1].s, o[0].s);
	if (q.count >= 0)
		cr_assert_eq(rows, (uint64_t)q.count, "\"%s\": %" PRIu64 " rows, %lld "
		    "expected", line, rows, q.count);
	free(o[0].s);
	free(o[1].s);
}

/* Appends the batch to both logs (one commit each) and frees its lines. */
static void
commit(struct fx *x)
{
	struct audit_entry	 copy[MAXBATCH], *cp[MAXBATCH];
	char			 err[256];
	struct pglog		*pl = x->pl[x->turn];

	if (x->n == 0)
		return;
	for (size_t i = 0; i < x->n; i++) {
		copy[i] = x->e[i];
		cp[i] = &copy[i];
	}
	cr_assert_eq(audit_append(x->a, x->ep, x->n, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pglog_append(pl, cp, x->n, NULL, err, sizeof(err)), 0, "%s", err);
	for (size_t i = 0; i < x->n; i++) {
		cr_assert_eq(copy[i].seq, x->e[i].seq);
		cr_assert_eq(memcmp(copy[i].hash, x->e[i].hash, 32), 0,
		    "entry %" PRIu64 " hashes differently", copy[i].seq);
		free(x->owned[i]);
		x->owned[i] = NULL;
	}
	x->n = 0;
	x->turn = (x->turn + 1) % x->writers;
}

/* One entry line's members (name=value, tab separated) into the batch. */
static void
add_entry(struct fx *x, const char *line)
{
	struct audit_entry	 *e;
	const char		**s[AUDIT_NSTRINGS];
	char			 *save = NULL, *buf;

	cr_assert_lt(x->n, MAXBATCH);
	e = &x->e[x->n];
	memset(e, 0, sizeof(*e));
	cr_assert_not_null(buf = strdup(line));
	x->owned[x->n] = buf;
	e->time = ++x->time;
	audit_entry_strings(e, s);
	for (char *w = strtok_r(buf, "\t", &save); w != NULL;
	    w = strtok_r(NULL, "\t", &save)) {
		char	*v = strchr(w, '=');
		int	 found = 0;

		cr_assert_not_null(v, "an entry's member \"%s\" has no =", w);
		*v++ = '\0';
		if (strcmp(w, "time") == 0)
			e->time = x->time = strtoll(v, NULL, 10), found = 1;
		else if (strcmp(w, "ref_seq") == 0)
			e->ref_seq = strtoull(v, NULL, 10), found = 1;
		for (int i = 0; i < AUDIT_NSTRINGS && !found; i++)
			if (strcmp(w, audit_string_names[i]) == 0) {
				*s[i] = v;
				found = 1;
			}
		cr_assert(found, "no entry member \"%s\"", w);
	}
	x->ep[x->n] = e;
	x->n++;
}

/*
 * `gen N`: N disclosures made up from their number, spread over agencies,
 * subjects, purposes, decisions, reasons and days, one in 7 an override.
 */
static void
gen(struct fx *x, int n)
{
	static const char *const ag[] = { "police-north", "council-east", "school-west" };
	static const char *const pu[] = { "safeguarding", "emergency" };
	char line[512];

	for (int i = 0; i < n; i++) {
		int k = (int)(x->time % 1000) + i;

		snprintf(line, sizeof(line), "time=%lld\tkind=disclosure\tagency=%s\t"
		    "practitioner=pc%d\tpurpose=%s\tsubject=subj-%d\tdecision=%s\t"
		    "reason=%s\toverride_code=%s\trequest_id=gen-%lld",
		    (long long)(x->time + 3600 * 5), ag[k % 3], k % 4, pu[k % 2], k % 5,
		    k % 7 == 0 ? "allow" : k % 3 == 0 ? "deny" : "allow",
		    k % 7 == 0 ? "override" : k % 3 == 0 ? "no_rule" : "rule",
		    k % 7 == 0 || k % 9 == 0 ? "EMERGENCY" : "", (long long)x->time);
		add_entry(x, line);
		if (x->n == MAXBATCH)
			commit(x);
	}
}

/* The sizes the proofs are asked between: the edges of the stored levels. */
static const uint64_t sizes[] = { 0, 1, 2, 3, 5, 8, 15, 16, 17, 31, 32, 33, 63, 64,
    65, 100, 255, 256, 257, 300 };

static void
proofs(struct fx *x, uint64_t size)
{
	unsigned char	 p[2][AUDIT_MAX_PROOF][32], r[2][2][32];
	char		 err[2][256];
	uint64_t	 ns[sizeof(sizes) / sizeof(sizes[0]) + 2];
	size_t		 len[2], nn = 0;
	int		 rc[2];

	/* The sizes up to the log's, the log's own and one past it. */
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		if (sizes[i] < size)
			ns[nn++] = sizes[i];
	ns[nn++] = size;
	ns[nn++] = size + 1;
	for (size_t i = 0; i < nn; i++) {
		uint64_t n = ns[i];

		rc[0] = audit_root(x->a, n, r[0][1], err[0], sizeof(err[0]));
		rc[1] = pglog_root(x->pl[0], n, r[1][1], err[1], sizeof(err[1]));
		cr_assert_eq(rc[1], rc[0], "root %" PRIu64 ": %s / %s", n, err[1], err[0]);
		if (rc[0] == -1) {
			cr_assert_str_eq(err[1], err[0]);
			continue;
		}
		cr_assert_eq(memcmp(r[0][1], r[1][1], 32), 0, "root of %" PRIu64, n);
		for (size_t j = 0; j <= i; j++) {
			uint64_t m = ns[j];

			rc[0] = audit_consistency(x->a, m, n, p[0], &len[0], err[0],
			    sizeof(err[0]));
			rc[1] = pglog_consistency(x->pl[0], m, n, p[1], &len[1], err[1],
			    sizeof(err[1]));
			cr_assert_eq(rc[1], rc[0], "consistency %" PRIu64 " to %" PRIu64
			    ": %s / %s", m, n, err[1], err[0]);
			if (rc[0] == -1) {
				cr_assert_str_eq(err[1], err[0]);
				continue;
			}
			cr_assert_eq(len[1], len[0]);
			cr_assert_eq(memcmp(p[0], p[1], 32 * len[0]), 0);
			cr_assert_eq(audit_root(x->a, m, r[0][0], err[0], sizeof(err[0])), 0);
			cr_assert_eq(merkle_verify_consistency(m, n, r[0][0], r[0][1],
			    (const uint8_t (*)[32])p[1], len[1]), 0,
			    "consistency %" PRIu64 " to %" PRIu64 " does not verify", m, n);
		}
	}
	/* Sizes past the log and backwards: the same refusals, word for word. */
	rc[0] = audit_consistency(x->a, 2, 1, p[0], &len[0], err[0], sizeof(err[0]));
	rc[1] = pglog_consistency(x->pl[0], 2, 1, p[1], &len[1], err[1], sizeof(err[1]));
	cr_assert(rc[0] == -1 && rc[1] == -1);
	cr_assert_str_eq(err[1], err[0]);
	rc[0] = audit_consistency(x->a, 0, size + 1, p[0], &len[0], err[0], sizeof(err[0]));
	rc[1] = pglog_consistency(x->pl[0], 0, size + 1, p[1], &len[1], err[1],
	    sizeof(err[1]));
	cr_assert(rc[0] == -1 && rc[1] == -1);
	cr_assert_str_eq(err[1], err[0]);
}

/* The inclusion proof of every entry in the whole log and in a smaller tree. */
struct incl {
	struct fx	*x;
	uint64_t	 n;
};

static int
inclusion_cb(const struct audit_entry *e, void *arg)
{
	struct incl	*c = arg;
	unsigned char	 p[2][AUDIT_MAX_PROOF][32], root[32], leaf[32];
	char		 err[2][256];
	size_t		 len[2];
	int		 rc[2];

	rc[0] = audit_inclusion(c->x->a, e->seq, c->n, p[0], &len[0], err[0],
	    sizeof(err[0]));
	rc[1] = pglog_inclusion(c->x->pl[0], e->seq, c->n, p[1], &len[1], err[1],
	    sizeof(err[1]));
	cr_assert_eq(rc[1], rc[0], "inclusion of %" PRIu64 " in %" PRIu64 ": %s / %s",
	    e->seq, c->n, err[1], err[0]);
	if (rc[0] == -1) {
		cr_assert_str_eq(err[1], err[0]);
		return 0;
	}
	cr_assert_eq(len[1], len[0]);
	cr_assert_eq(memcmp(p[0], p[1], 32 * len[0]), 0);
	cr_assert_eq(audit_root(c->x->a, c->n, root, err[0], sizeof(err[0])), 0);
	merkle_leaf(e->hash, leaf);
	cr_assert_eq(merkle_verify_inclusion(e->seq - 1, c->n, leaf,
	    (const uint8_t (*)[32])p[1], len[1], root), 0);
	return 0;
}

/* What every log is asked, whatever its case. */
static void
ask_all(struct fx *x)
{
	struct out	 o[2];
	char		 err[2][256], *note;
	uint64_t	 size = audit_size(x->a);
	int		 rc;

	memset(o, 0, sizeof(o));
	for (int b = 0; b < 2; b++) {
		char		 last[256];
		uint64_t	 sizes_seen[] = { 0, 1, 2, size / 2, size, size + 1 };

		rc = b == 0 ? audit_checkpoints(x->a, cp_out, &o[b], err[b],
		    sizeof(err[b])) : pglog_checkpoints(x->pl[0], cp_out, &o[b], err[b],
		    sizeof(err[b]));
		cr_assert_eq(rc, 0, "checkpoints: %s", err[b]);
		for (uint64_t m = 0; m <= size + 1; m++) {
			rc = b == 0 ? audit_checkpoint_note_upto(x->a, m, &note, err[b],
			    sizeof(err[b])) : pglog_checkpoint_note_upto(x->pl[0], m,
			    &note, err[b], sizeof(err[b]));
			out_add(&o[b], "upto %" PRIu64 ": ", m);
			note_out(&o[b], rc, note);
			free(note);
		}
		for (size_t i = 0; i < sizeof(sizes_seen) / sizeof(sizes_seen[0]); i++) {
			rc = b == 0 ? audit_checkpoint_note(x->a, sizes_seen[i], &note,
			    err[b], sizeof(err[b])) : pglog_checkpoint_note(x->pl[0],
			    sizes_seen[i], &note, err[b], sizeof(err[b]));
			out_add(&o[b], "at %" PRIu64 ": ", sizes_seen[i]);
			note_out(&o[b], rc, note);
			free(note);
		}
		rc = b == 0 ? audit_last_store(x->a, last, sizeof(last), err[b],
		    sizeof(err[b])) : pglog_last_store(x->pl[0], last, sizeof(last),
		    err[b], sizeof(err[b]));
		out_add(&o[b], "last store rc=%d \"%s\"\nreviews\n", rc, last);
		rc = b == 0 ? audit_reviews_pending(x->a, entry_out, &o[b], err[b],
		    sizeof(err[b])) : pglog_reviews_pending(x->pl[0], entry_out, &o[b],
		    err[b], sizeof(err[b]));
		out_add(&o[b], "rc=%d\ninform\n", rc);
		rc = b == 0 ? audit_inform_pending(x->a, entry_out, &o[b], err[b],
		    sizeof(err[b])) : pglog_inform_pending(x->pl[0], entry_out, &o[b],
		    err[b], sizeof(err[b]));
		out_add(&o[b], "rc=%d\n", rc);
	}
	cr_assert_str_eq(o[1].s, o[0].s, "PostgreSQL answered\n%s\nSQLite answered\n%s",
	    o[1].s, o[0].s);
	free(o[0].s);
	free(o[1].s);
	proofs(x, size);
	{
		struct incl c = { x, size };

		cr_assert_eq(audit_scan(x->a, 1, 0, inclusion_cb, &c, err[0],
		    sizeof(err[0])), 0, "%s", err[0]);
		c.n = size / 2 + 1;
		cr_assert_eq(audit_scan(x->a, 1, 0, inclusion_cb, &c, err[0],
		    sizeof(err[0])), 0, "%s", err[0]);
	}
}

static void
verify_both(struct fx *x)
{
	struct audit_verify_result	 r[2];
	unsigned char			 id[16];
	uint64_t			 size;
	char				 err[256];

	r[0] = t_audit_verify(x->path, x->pk, NULL);
	cr_assert_eq(pglog_head(x->pl[0], &size, id, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pglog_verify_with(x->pl[0], audit_verifier_new(x->pk, id), &r[1]),
	    0, "%s", r[1].why);
	cr_assert(r[0].ok && r[1].ok, "%s / %s", r[0].why, r[1].why);
	cr_assert_eq(r[1].entries, r[0].entries);
	cr_assert_eq(r[1].checkpoints, r[0].checkpoints);
	cr_assert_eq(size, audit_size(x->a));
}

/*
 * The same readers through the log interface the daemon calls
 * (logstore.h): logstore_postgresql's answer as logstore_sqlite's, none
 * "not available on PostgreSQL yet".
 */
static void
through_logstore(struct fx *x)
{
	const struct logstore_ops	*ops[2] = { &logstore_sqlite, &logstore_postgresql };
	const char			*where[2] = { x->path, x->ci };
	struct audit_filter		 f;
	struct out			 o[2];
	uint64_t			 size = audit_size(x->a);

	memset(&f, 0, sizeof(f));
	memset(o, 0, sizeof(o));
	for (int b = 0; b < 2; b++) {
		struct logstore			*l;
		struct counted			 c = { &o[b], NULL };
		struct audit_verify_result	 r;
		unsigned char			 id[16], proof[AUDIT_MAX_PROOF][32];
		char				 err[256] = "", last[256], *note = NULL;
		size_t				 len = 0;
		int				 rc;

		cr_assert_eq(logstore_open(&l, ops[b], where[b], LOGSTORE_READER, err,
		    sizeof(err)), 0, "%s", err);
		out_add(&o[b], "size %" PRIu64 "\n", logstore_size(l));
		rc = logstore_query(l, &f, 0, 0, 0, entry_out, &o[b], err, sizeof(err));
		out_add(&o[b], "query rc=%d %s\n", rc, rc ? err : "");
		rc = logstore_query(l, &f, 0, 10, 1, entry_out, &o[b], err, sizeof(err));
		out_add(&o[b], "newest rc=%d %s\n", rc, rc ? err : "");
		rc = logstore_scan(l, 2, 5, entry_out, &o[b], err, sizeof(err));
		out_add(&o[b], "scan rc=%d %s\n", rc, rc ? err : "");
		rc = logstore_stats(l, &f, "agency", stat_out, &c, err, sizeof(err));
		out_add(&o[b], "stats rc=%d %s\n", rc, rc ? err : "");
		rc = logstore_checkpoints(l, cp_out, &o[b], err, sizeof(err));
		out_add(&o[b], "checkpoints rc=%d %s\n", rc, rc ? err : "");
		rc = logstore_checkpoint_note_upto(l, size, &note, err, sizeof(err));
		note_out(&o[b], rc, note);
		free(note);
		rc = logstore_consistency(l, size / 2, size, proof, &len, err, sizeof(err));
		out_add(&o[b], "consistency rc=%d %s ", rc, rc ? err : "");
		out_hex(&o[b], proof[0], 32 * len);
		rc = logstore_holder_batches(l, 0, batch_out, &c, err, sizeof(err));
		out_add(&o[b], "\nholder rc=%d %s\n", rc, rc ? err : "");
		rc = logstore_last_store(l, last, sizeof(last), err, sizeof(err));
		out_add(&o[b], "last store rc=%d \"%s\" %s\n", rc, last, rc ? err : "");
		rc = logstore_reviews_pending(l, entry_out, &o[b], err, sizeof(err));
		out_add(&o[b], "reviews rc=%d %s\n", rc, rc ? err : "");
		rc = logstore_inform_pending(l, entry_out, &o[b], err, sizeof(err));
		out_add(&o[b], "inform rc=%d %s\n", rc, rc ? err : "");
		logstore_log_id(l, id);
		rc = logstore_verify_with(l, audit_verifier_new(x->pk, id), &r);
		out_add(&o[b], "verify rc=%d ok=%d entries=%" PRIu64 " checkpoints=%"
		    PRIu64 "\n", rc, r.ok, r.entries, r.checkpoints);
		logstore_close(l);
	}
	cr_assert_str_eq(o[1].s, o[0].s, "through logstore.h, PostgreSQL answered\n%s\n"
	    "SQLite answered\n%s", o[1].s, o[0].s);
	free(o[0].s);
	free(o[1].s);
}

static EVP_PKEY *
read_private(const char *path)
{
	FILE		*fp = fopen(path, "r");
	EVP_PKEY	*k;

	cr_assert_not_null(fp, "%s", path);
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	cr_assert_not_null(k);
	return k;
}

ParameterizedTest(struct t_case_file *c, pglogq, cases)
{
	struct fx	*x;
	char		 schema[80], path[512], line[1024], err[256], name[64];
	FILE		*fp;
	int		 lineno = 0;

	cr_assert_not_null(x = calloc(1, sizeof(*x)));
	snprintf(name, sizeof(name), "pglogq-%.*s", (int)strcspn(c->name, "."),
	    c->name);
	snprintf(schema, sizeof(schema), "q_%.*s", (int)strcspn(c->name, "."), c->name);
	for (char *s = schema; *s; s++)
		if (*s == '-')
			*s = '_';
	t_audit_open(name, x->path, x->key, x->pub, sizeof(x->path), 0, 0, &x->a,
	    &x->pk);
	x->priv = read_private(x->key);
	x->adm = t_pg_schema(schema, x->ci, sizeof(x->ci));
	x->writers = 1;
	x->time = GEN_TIME;
	for (int w = 0; w < 2; w++) {
		cr_assert_eq(pglog_open(&x->pl[w], x->ci, err, sizeof(err)), 0, "%s", err);
		pglog_set_signer(x->pl[w], x->priv);
	}
	snprintf(path, sizeof(path), CDIR "/%s", c->name);
	cr_assert_not_null(fp = fopen(path, "r"), "%s", path);
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *words;

		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		words = strchr(line, ' ');
		words = words != NULL ? words + 1 : line + strlen(line);
		if (strncmp(line, "writers ", 8) == 0)
			x->writers = atoi(words);
		else if (strncmp(line, "e\t", 2) == 0)
			add_entry(x, line + 2);
		else if (strcmp(line, "commit") == 0)
			commit(x);
		else if (strncmp(line, "gen ", 4) == 0)
			gen(x, atoi(words));
		else {
			char	 copy[1024], verb[16];

			commit(x);
			snprintf(copy, sizeof(copy), "%s", line);
			snprintf(verb, sizeof(verb), "%.*s", (int)strcspn(line, " "), line);
			ask_both(x, verb, words, copy);
		}
		cr_assert(x->writers == 1 || x->writers == 2, "%s:%d: writers 1 or 2",
		    c->name, lineno);
	}
	fclose(fp);
	commit(x);
	ask_all(x);
	verify_both(x);
	through_logstore(x);
	for (int w = 0; w < 2; w++)
		pglog_close(x->pl[w]);
	PQfinish(x->adm);
	EVP_PKEY_free(x->priv);
	t_audit_close(x->path, x->key, x->pub, x->a, x->pk);
	free(x);
}

/*
 * A reader whose server process went away (a restart, a failover) fails
 * that once, saying why, and the next call reconnects, prepares the
 * readers' statements again and answers (the daemon's routes answer 503
 * meanwhile, never a wrong answer).
 */
Test(pglogq, reader_reconnects)
{
	struct audit_entry	 e, *ep = &e;
	struct pglog		*pl;
	PGconn			*adm;
	unsigned char		 proof[AUDIT_MAX_PROOF][32];
	char			 ci[1200], err[256], last[64];
	size_t			 len;

	adm = t_pg_schema("q_reconnect", ci, sizeof(ci));
	cr_assert_eq(pglog_open(&pl, ci, err, sizeof(err)), 0, "%s", err);
	for (int i = 0; i < 20; i++) {
		memset(&e, 0, sizeof(e));
		e.time = GEN_TIME + i;
		e.kind = i == 3 ? "store" : "disclosure";
		e.case_ref = i == 3 ? "store:x" : "";
		cr_assert_eq(pglog_append(pl, &ep, 1, NULL, err, sizeof(err)), 0, "%s",
		    err);
	}
	t_pg_terminate(adm, pglog_backend_pid(pl));
	(void)pglog_last_store(pl, last, sizeof(last), err, sizeof(err));
	cr_assert_eq(pglog_last_store(pl, last, sizeof(last), err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_str_eq(last, "store:x");
	t_pg_terminate(adm, pglog_backend_pid(pl));
	(void)pglog_consistency(pl, 3, 20, proof, &len, err, sizeof(err));
	cr_assert_eq(pglog_consistency(pl, 3, 20, proof, &len, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_gt(len, 0);
	pglog_close(pl);
	PQfinish(adm);
}
