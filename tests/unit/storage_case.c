/*
 * The interpreter of tests/data/storage/NAME.case (storage_case.h): one
 * function per operation, each calling the storage interface (storage.h)
 * and printing its answer, so the case file says what every backend must
 * answer.
 */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "storage.h"
#include "storage_case.h"
#include "util.h"
#include "yamlutil.h"

#define MAXARG	24

struct out {
	char	*buf;
	size_t	 len;
};

static void
put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct out *o, const char *fmt, ...)
{
	size_t	used = strlen(o->buf);
	va_list	ap;

	if (used >= o->len)
		return;
	va_start(ap, fmt);
	vsnprintf(o->buf + used, o->len - used, fmt, ap);
	va_end(ap);
}

/* 0 ok, 1/0 answers, or the error: what every write and question prints. */
static void
answer(struct out *o, int rc, const char *ok, const char *err)
{
	if (rc == -1)
		put(o, "error: %s", err);
	else if (ok != NULL)
		put(o, "%s", ok);
	else
		put(o, "%d", rc);
}

/* "-" is NULL, and "" too for the optional strings of a case. */
static const char *
opt(const char *s)
{
	return strcmp(s, "-") == 0 ? NULL : s;
}

static int64_t
num(const char *s)
{
	return strcmp(s, "-") == 0 ? 0 : strtoll(s, NULL, 10);
}

/* name=value arguments into names and values; returns how many. */
static size_t
fields(char **argv, int argc, const char **names, const char **values,
    char store[][128])
{
	size_t n = 0;

	for (int i = 0; i < argc && n < PROTOCOL_MAX_FIELDS; i++) {
		char *eq = strchr(argv[i], '=');

		cr_assert_not_null(eq, "field %s: expected name=value", argv[i]);
		snprintf(store[n], 128, "%.*s", (int)(eq - argv[i]), argv[i]);
		names[n] = store[n];
		values[n++] = eq + 1;
	}
	return n;
}

static void
op_put(struct sc_backend *b, char **a, int n, struct out *o)
{
	const char	*names[PROTOCOL_MAX_FIELDS], *values[PROTOCOL_MAX_FIELDS];
	char		 nb[PROTOCOL_MAX_FIELDS][128], err[256] = "";
	size_t		 nf;
	int		 rc;

	cr_assert_geq(n, 4, "put SUBJECT TYPE HOLDER VERIFIED name=value...");
	nf = fields(a + 4, n - 4, names, values, nb);
	rc = storage_put_record(b->s, a[0], a[1], a[2], num(a[3]), names,
	    values, nf, err, sizeof(err));
	answer(o, rc, "ok", err);
}

static void
op_record_same(struct sc_backend *b, char **a, int n, struct out *o)
{
	const char	*names[PROTOCOL_MAX_FIELDS], *values[PROTOCOL_MAX_FIELDS];
	char		 nb[PROTOCOL_MAX_FIELDS][128], err[256] = "";
	size_t		 nf;
	int		 rc;

	cr_assert_geq(n, 5, "record_same SUBJECT TYPE HOLDER VERIFIED SAME_DAY ...");
	nf = fields(a + 5, n - 5, names, values, nb);
	rc = storage_record_same(b->s, a[0], a[1], a[2], num(a[3]), atoi(a[4]),
	    names, values, nf, err, sizeof(err));
	answer(o, rc, NULL, err);
}

static enum consent_state
state(const char *s)
{
	enum consent_state c = CONSENT_NONE;

	if (strcmp(s, "none") != 0)
		cr_assert_eq(consent_parse(s, &c), 0, "consent state %s", s);
	return c;
}

static void
op_consent(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int	rc;

	cr_assert_eq(n, 8, "consent SUBJECT STATE AGENCIES PURPOSES EXPIRES "
	    "DECIDED BY AT");
	rc = storage_add_consent(b->s, a[0], state(a[1]), a[2], a[3], num(a[4]),
	    num(a[5]), a[6], num(a[7]), err, sizeof(err));
	answer(o, rc, "ok", err);
}

static void
op_consent_same(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int	rc;

	cr_assert_eq(n, 6, "consent_same SUBJECT STATE AGENCIES PURPOSES EXPIRES "
	    "DECIDED");
	rc = storage_consent_same(b->s, a[0], state(a[1]), a[2], a[3],
	    num(a[4]), num(a[5]), err, sizeof(err));
	answer(o, rc, NULL, err);
}

static void
op_flag(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int	rc;

	cr_assert_eq(n, 4, "flag SUBJECT FLAG BY AT");
	rc = storage_set_flag(b->s, a[0], a[1], a[2], num(a[3]), err,
	    sizeof(err));
	answer(o, rc, "ok", err);
}

static void
op_unflag(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int	rc;

	cr_assert_eq(n, 4, "unflag SUBJECT FLAG BY AT");
	rc = storage_remove_flag(b->s, a[0], a[1], a[2], num(a[3]), err,
	    sizeof(err));
	answer(o, rc, NULL, err);
}

static void
op_active(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int	rc;

	cr_assert_eq(n, 2, "active SUBJECT FLAG");
	rc = storage_flag_active(b->s, a[0], a[1], err, sizeof(err));
	answer(o, rc, NULL, err);
}

static void
op_delete(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int	rc;

	cr_assert_eq(n, 2, "delete SUBJECT TYPE");
	rc = storage_delete_record(b->s, a[0], a[1], err, sizeof(err));
	answer(o, rc, NULL, err);
}

static void
op_owner(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	holder[130], err[256] = "";
	int	rc;

	cr_assert_eq(n, 1, "owner SUBJECT");
	rc = storage_subject_holder(b->s, a[0], holder, sizeof(holder), err,
	    sizeof(err));
	answer(o, rc, rc == 1 ? holder : rc == 0 ? "none" : NULL, err);
}

/* What a disclosure reads: known, holder, verified, consent, flags, fields. */
static void
put_subject(struct out *o, const struct record_type *rt, struct store_subject *s)
{
	if (!s->view.known) {
		put(o, "unknown");
		return;
	}
	put(o, "known holder=%s verified=%" PRId64 " consent=%s expires=%" PRId64
	    " flags=", s->holder, s->view.last_verified, s->view.consent ==
	    CONSENT_NONE ? "none" : consent_name(s->view.consent),
	    s->view.consent_expires);
	/* Flags in name order: the SQLite store does not promise an order. */
	for (size_t k = 0; k < s->nflags; k++)
		for (size_t j = k + 1; j < s->nflags; j++)
			if (strcmp(s->flags[j], s->flags[k]) < 0) {
				char *t = s->flags[k];

				s->flags[k] = s->flags[j];
				s->flags[j] = t;
			}
	for (size_t k = 0; k < s->nflags; k++)
		put(o, "%s%s", k ? "," : "", s->flags[k]);
	if (s->nflags == 0)
		put(o, "-");
	for (size_t k = 0; k < rt->nfields; k++)
		if (s->values[k] != NULL)
			put(o, " %s=%s", rt->fields[k].name, s->values[k]);
}

static void
op_read(struct sc_backend *b, char **a, int n, struct out *o)
{
	const struct record_type	*rt;
	struct store_subject		 s;
	char				 err[256] = "";
	int				 rc;

	cr_assert_eq(n, 4, "read SUBJECT TYPE AGENCY PURPOSE");
	rt = protocol_record_type(b->proto, a[1]);
	cr_assert_not_null(rt, "no record type %s", a[1]);
	rc = storage_subject(b->s, rt, a[0], a[2], a[3], &s, err, sizeof(err));
	if (rc == -1) {
		answer(o, rc, NULL, err);
		return;
	}
	put_subject(o, rt, &s);
	store_subject_free(&s);
}

/* One read of op_batch(): its callback's answer. */
struct queued {
	int	calls;
	int	rc;
	char	err[256];
};

static void
queued_done(int rc, const char *err, void *arg)
{
	struct queued *q = arg;

	q->calls++;
	q->rc = rc;
	snprintf(q->err, sizeof(q->err), "%s", err != NULL ? err : "");
}

/*
 * Reads as one event-loop round does (daemon/disclose.c): each queued
 * (storage_subject_queue()), then storage_flush(); the answers in order,
 * each as read's, between " | ". A read done at once (SQLite) gets no
 * callback; a queued one exactly one, by the flush.
 */
#define BATCH_MAX	(MAXARG / 4)
static void
op_batch(struct sc_backend *b, char **a, int n, struct out *o)
{
	const struct record_type	*rt[BATCH_MAX];
	struct store_subject		 s[BATCH_MAX];
	struct queued			 q[BATCH_MAX];
	int				 rc[BATCH_MAX];

	cr_assert(n > 0 && n % 4 == 0, "batch (SUBJECT TYPE AGENCY PURPOSE)...");
	memset(q, 0, sizeof(q));
	for (int i = 0; i < n / 4; i++) {
		rt[i] = protocol_record_type(b->proto, a[4 * i + 1]);
		cr_assert_not_null(rt[i], "no record type %s", a[4 * i + 1]);
		rc[i] = storage_subject_queue(b->s, rt[i], a[4 * i], a[4 * i + 2],
		    a[4 * i + 3], &s[i], queued_done, &q[i], q[i].err,
		    sizeof(q[i].err));
		cr_assert(rc[i] >= -1 && rc[i] <= 1);
		cr_assert_eq(q[i].calls, 0, "a callback before the flush");
	}
	storage_flush(b->s);
	for (int i = 0; i < n / 4; i++) {
		cr_assert_eq(q[i].calls, rc[i] == 1, "%s: %d callbacks for rc %d",
		    b->name, q[i].calls, rc[i]);
		if (rc[i] == 1)
			rc[i] = q[i].rc;
		if (i > 0)
			put(o, " | ");
		if (rc[i] == -1) {
			answer(o, -1, NULL, q[i].err);
			continue;
		}
		put_subject(o, rt[i], &s[i]);
		store_subject_free(&s[i]);
	}
}

static int
sh_record(void *arg, const char *type, int64_t verified)
{
	put(arg, " record:%s:%" PRId64, type, verified);
	return 0;
}

static int
sh_field(void *arg, const char *type, const char *name, const char *value)
{
	put(arg, " field:%s:%s=%s", type, name, value);
	return 0;
}

static int
sh_consent(void *arg, const char *st, const char *agencies, const char *purposes,
    int64_t expires, int64_t decided, const char *by, int64_t at)
{
	put(arg, " consent:%s:%s:%s:%" PRId64 ":%" PRId64 ":%s:%" PRId64, st,
	    agencies, purposes, expires, decided, by, at);
	return 0;
}

static int
sh_flag(void *arg, const char *flag, const char *by, int64_t at,
    const char *removed_by, int64_t removed_at)
{
	put(arg, " flag:%s:%s:%" PRId64 ":%s:%" PRId64, flag, by, at, removed_by,
	    removed_at);
	return 0;
}

static void
op_show(struct sc_backend *b, char **a, int n, struct out *o)
{
	static const struct store_show_cb cb = { sh_record, sh_field, sh_consent,
	    sh_flag };
	char	err[256] = "";
	int	rc;

	cr_assert_eq(n, 2, "show SUBJECT MAX_HISTORY");
	put(o, "show");
	rc = storage_show(b->s, a[0], (size_t)num(a[1]), &cb, o, err,
	    sizeof(err));
	if (rc == -1) {
		o->buf[0] = '\0';
		answer(o, rc, NULL, err);
	}
}

static void
op_txn(struct sc_backend *b, const char *what, struct out *o)
{
	char	err[256] = "";
	int	rc = 0;

	if (strcmp(what, "begin") == 0)
		rc = storage_begin(b->s, err, sizeof(err));
	else if (strcmp(what, "commit") == 0)
		rc = storage_commit(b->s, err, sizeof(err));
	else
		storage_rollback(b->s);
	answer(o, rc, "ok", err);
}

static void
op_mark(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int	rc;

	cr_assert_eq(n, 3, "mark REQUEST_ID FIRST_SEQ NOW");
	rc = storage_mark_batch(b->s, a[0], (uint64_t)num(a[1]), num(a[2]), err,
	    sizeof(err));
	/* The two databases word a duplicate key differently. */
	answer(o, rc, "ok", rc == -1 ? "refused" : err);
}

static void
op_applied(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int	rc;

	cr_assert_eq(n, 1, "applied REQUEST_ID");
	rc = storage_batch_applied(b->s, a[0], err, sizeof(err));
	answer(o, rc, NULL, err);
}

static void
op_link(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int	rc;

	cr_assert_eq(n, 2, "link SUBJECT NHS");
	rc = storage_link_nhs(b->s, a[0], a[1], err, sizeof(err));
	answer(o, rc, NULL, err);
}

static void
op_unlink(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int	rc;

	cr_assert_eq(n, 1, "unlink SUBJECT");
	rc = storage_unlink_nhs(b->s, a[0], err, sizeof(err));
	answer(o, rc, NULL, err);
}

static void
op_nhs(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	nhs[MATCH_NHS_LEN + 1], err[256] = "";
	int	rc;

	cr_assert_eq(n, 1, "nhs SUBJECT");
	rc = storage_nhs_of(b->s, a[0], nhs, err, sizeof(err));
	answer(o, rc, rc == 1 ? nhs : rc == 0 ? "none" : NULL, err);
}

static void
op_clash(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	other[130], err[256] = "";
	int	rc;

	cr_assert_eq(n, 2, "clash SUBJECT NHS");
	rc = storage_nhs_clash(b->s, a[0], a[1], other, sizeof(other), err,
	    sizeof(err));
	answer(o, rc, rc == 1 ? other : rc == 0 ? "none" : NULL, err);
}

static void
op_details(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int	rc;

	cr_assert_eq(n, 5, "details SUBJECT FAMILY GIVEN DOB POSTCODE");
	rc = storage_set_details(b->s, a[0], opt(a[1]), opt(a[2]), opt(a[3]),
	    opt(a[4]), err, sizeof(err));
	answer(o, rc, "ok", err);
}

/* The subject's person: of_holding with any holder (person_of()). */
static int
person_of_any(struct sc_backend *b, const char *subject, int64_t *person,
    char *err, size_t errlen)
{
	return storage_of_holding(b->s, NULL, subject, person, err, errlen);
}

static int
hold_cb(const char *holder, const char *subject, void *arg)
{
	struct out *o = arg;

	put(o, "%s%s:%s", o->buf[0] != '\0' && o->buf[strlen(o->buf) - 1] != ' ' ?
	    "," : "", holder, subject);
	return 0;
}

/* Every (holder:subject) of a person; persons are numbered differently. */
static int
holdings(struct sc_backend *b, int64_t person, struct out *o, char *err,
    size_t errlen)
{
	return storage_holdings(b->s, person, hold_cb, o, err, errlen);
}

static void
op_holdings(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int64_t	person;
	int	rc;

	cr_assert_eq(n, 1, "holdings SUBJECT");
	if ((rc = person_of_any(b, a[0], &person, err, sizeof(err))) == 1)
		rc = holdings(b, person, o, err, sizeof(err));
	if (rc != 0 || o->buf[0] == '\0')
		answer(o, rc, rc == 1 ? "none" : "unknown", err);
}

static int
rec_cb(const char *holder, const char *subject, const char *type, void *arg)
{
	struct out *o = arg;

	put(o, "%s%s:%s:%s", o->buf[0] != '\0' ? "," : "", holder, subject, type);
	return 0;
}

static void
op_records(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int64_t	person;
	int	rc;

	cr_assert_eq(n, 1, "records SUBJECT");
	if ((rc = person_of_any(b, a[0], &person, err, sizeof(err))) == 1)
		rc = storage_records(b->s, person, rec_cb, o, err, sizeof(err));
	if (rc != 0 || o->buf[0] == '\0')
		answer(o, rc, rc == 0 ? "none" : "unknown", err);
}

/* By which local id HOLDER holds the person of SUBJECT. */
static void
op_holding(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	sub[130], err[256] = "";
	int64_t	person;
	int	rc;

	cr_assert_eq(n, 2, "holding SUBJECT HOLDER");
	if ((rc = person_of_any(b, a[0], &person, err, sizeof(err))) == 1)
		rc = storage_holding(b->s, person, a[1], sub, sizeof(sub), err,
		    sizeof(err));
	answer(o, rc, rc == 1 ? sub : "none", err);
}

static void
op_of_holding(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int64_t	person, p2;
	int	rc;

	cr_assert_eq(n, 2, "of_holding HOLDER SUBJECT");
	rc = storage_of_holding(b->s, opt(a[0]), a[1], &person, err,
	    sizeof(err));
	/* The person found must be the subject's own. */
	if (rc == 1 && (person_of_any(b, a[1], &p2, err, sizeof(err)) != 1 ||
	    p2 != person))
		rc = errorf(err, sizeof(err), "of_holding: another person");
	answer(o, rc, NULL, err);
}

/* find nhs=X | family=F given=G dob=D [postcode=P]: outcome and holdings. */
static void
op_find(struct sc_backend *b, char **a, int n, struct out *o)
{
	struct match_query	 q = { 0 };
	struct match_result	 res;
	char			 err[256] = "";
	int			 rc;

	for (int i = 0; i < n; i++) {
		char *v = strchr(a[i], '=');

		cr_assert_not_null(v, "find: %s is not key=value", a[i]);
		*v++ = '\0';
		if (strcmp(a[i], "nhs") == 0)
			q.nhs = v;
		else if (strcmp(a[i], "family") == 0)
			q.family = v;
		else if (strcmp(a[i], "given") == 0)
			q.given = v;
		else if (strcmp(a[i], "dob") == 0)
			q.dob = v;
		else if (strcmp(a[i], "postcode") == 0)
			q.postcode = v;
		else
			cr_assert_fail("find: unknown key %s", a[i]);
	}
	rc = storage_find(b->s, &q, &res, err, sizeof(err));
	if (rc == -1) {
		answer(o, rc, NULL, err);
		return;
	}
	put(o, "%s", match_outcome_name(res.outcome));
	if (res.outcome == MATCH_INVALID)
		put(o, " %s", res.why);
	if (res.outcome == MATCH_ONE) {
		put(o, " ");
		if (holdings(b, res.person, o, err, sizeof(err)) == -1)
			put(o, "error: %s", err);
	}
}

static void
op_note_load(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int	rc;

	cr_assert_eq(n, 3, "note_load FILE SUBJECTS NOW");
	rc = storage_note_load(b->s, a[0], (size_t)num(a[1]), num(a[2]), err,
	    sizeof(err));
	answer(o, rc, "ok", err);
}

static int
load_cb(int64_t id, const char *file, size_t subjects, int64_t at, void *arg)
{
	struct out *o = arg;

	put(o, "%s%" PRId64 ":%s:%zu:%" PRId64, o->buf[0] != '\0' ? "," : "", id,
	    file, subjects, at);
	return 0;
}

static void
op_unlogged(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int	rc;

	(void)a;
	cr_assert_eq(n, 0, "unlogged");
	rc = storage_unlogged_loads(b->s, load_cb, o, err, sizeof(err));
	if (rc == -1 || o->buf[0] == '\0')
		answer(o, rc, "none", err);
}

static void
op_load_logged(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int	rc;

	cr_assert_eq(n, 2, "load_logged ID SEQ");
	rc = storage_load_logged(b->s, num(a[0]), (uint64_t)num(a[1]), err,
	    sizeof(err));
	answer(o, rc, "ok", err);
}

/*
 * Issue 13 item 5: what the store remembers of its log. LOG is a short
 * name expanded to a 16-byte id (its bytes, zero padded), so a case
 * reads `remember a 10`.
 */
static void
log_id_of(const char *name, unsigned char id[16])
{
	memset(id, 0, 16);
	memcpy(id, name, strnlen(name, 16));
}

static void
op_remember(struct sc_backend *b, char **a, int n, struct out *o)
{
	unsigned char	id[16];
	char		err[256] = "";
	int		rc;

	cr_assert_eq(n, 2, "remember LOG SIZE");
	log_id_of(a[0], id);
	rc = storage_remember_log(b->s, id, (uint64_t)num(a[1]), 1, err,
	    sizeof(err));
	answer(o, rc, "ok", err);
}

static void
op_forget(struct sc_backend *b, char **a, int n, struct out *o)
{
	char	err[256] = "";
	int	rc;

	(void)a;
	cr_assert_eq(n, 0, "forget");
	rc = storage_forget_log(b->s, err, sizeof(err));
	answer(o, rc, "ok", err);
}

/* `LOG:SIZE` (LOG without its zero padding), or `none`. */
static void
op_log_memory(struct sc_backend *b, char **a, int n, struct out *o)
{
	unsigned char	id[16];
	uint64_t	size = 0;
	char		err[256] = "", name[17];
	int		rc;

	(void)a;
	cr_assert_eq(n, 0, "log_memory");
	cr_assert_not_null(b->ops, "%s: no backend for log_memory", b->name);
	rc = storage_log_memory(b->ops, b->where, id, &size, err, sizeof(err));
	if (rc != 1) {
		answer(o, rc, "none", err);
		return;
	}
	memcpy(name, id, 16);
	name[16] = '\0';
	put(o, "%s:%llu", name, (unsigned long long)size);
}

static const struct {
	const char	*name;
	void		(*fn)(struct sc_backend *, char **, int, struct out *);
} ops[] = {
	{ "put", op_put }, { "record_same", op_record_same },
	{ "consent", op_consent }, { "consent_same", op_consent_same },
	{ "flag", op_flag }, { "unflag", op_unflag }, { "active", op_active },
	{ "delete", op_delete }, { "owner", op_owner }, { "read", op_read },
	{ "batch", op_batch },
	{ "show", op_show }, { "mark", op_mark }, { "applied", op_applied },
	{ "link", op_link }, { "unlink", op_unlink }, { "nhs", op_nhs },
	{ "clash", op_clash }, { "details", op_details },
	{ "holdings", op_holdings }, { "records", op_records },
	{ "holding", op_holding }, { "of_holding", op_of_holding },
	{ "find", op_find }, { "note_load", op_note_load },
	{ "unlogged", op_unlogged }, { "load_logged", op_load_logged },
	{ "remember", op_remember }, { "forget", op_forget },
	{ "log_memory", op_log_memory },
};

/*
 * Splits line at blanks into argv, in place. A double quote starts or
 * ends a quoted part, where blanks are kept: full_name="Amelia Hart" is
 * one word; the quotes go.
 */
static int
words(char *line, char **argv, int max)
{
	int n = 0;

	for (;;) {
		char	*d;
		int	 quoted = 0;

		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '\0' || n == max)
			return n;
		argv[n++] = d = line;
		for (; *line != '\0' && (quoted || (*line != ' ' && *line != '\t'));
		    line++)
			if (*line == '"')
				quoted = !quoted;
			else
				*d++ = *line;
		if (*line != '\0')
			line++;
		*d = '\0';
	}
}

/* Runs one line on one backend; out gets its answer. */
static void
run_line(struct sc_backend *b, const char *op, char *args, char *out, size_t len)
{
	char		*argv[MAXARG], copy[1024];
	struct out	 o = { out, len };
	int		 argc;

	out[0] = '\0';
	snprintf(copy, sizeof(copy), "%s", args);
	argc = words(copy, argv, MAXARG);
	if (strcmp(op, "begin") == 0 || strcmp(op, "commit") == 0 ||
	    strcmp(op, "rollback") == 0) {
		op_txn(b, op, &o);
		return;
	}
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(ops[i].name, op) == 0) {
			ops[i].fn(b, argv, argc, &o);
			return;
		}
	cr_assert_fail("unknown operation %s", op);
}

size_t
sc_run_file(const char *path, struct sc_backend *bs, size_t nb)
{
	char	*text, *line, *next, err[256];
	size_t	 len, nops = 0;

	text = file_read(path, 1 << 20, &len, NULL, err, sizeof(err));
	cr_assert_not_null(text, "%s", err);
	for (size_t k = 0; k < nb; k++) {
		unsigned lineno = 0;
		char *copy = xstrdup(text);

		for (line = copy; line != NULL; line = next) {
			char *arrow, *op, *args, got[2048], want[1024];

			lineno++;
			if ((next = strchr(line, '\n')) != NULL)
				*next++ = '\0';
			while (*line == ' ' || *line == '\t')
				line++;
			if (*line == '#' || *line == '\0')
				continue;
			if ((arrow = strstr(line, " => ")) != NULL) {
				*arrow = '\0';
				snprintf(want, sizeof(want), "%s", arrow + 4);
			} else
				snprintf(want, sizeof(want), "ok");
			op = line;
			args = line + strcspn(line, " \t");
			if (*args != '\0')
				*args++ = '\0';
			run_line(&bs[k], op, args, got, sizeof(got));
			cr_expect_str_eq(got, want, "%s:%u: %s (%s): got \"%s\", "
			    "expected \"%s\"", path, lineno, op, bs[k].name, got, want);
			nops += k == 0;
		}
		free(copy);
	}
	free(text);
	return nops;
}
