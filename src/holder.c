/*
 * Data holders' writes. Each op is checked, then applied inside the batch's
 * transaction, so a later op sees earlier ones (a record put, then consent
 * for that new subject). Any problem rolls the whole batch back.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "holder.h"
#include "storage.h"
#include "util.h"
#include "yamlutil.h"

struct batch {
	struct storage		*st;
	const struct protocol	*p;
	const struct agency	*holder;
	int64_t			 now;
	struct holder_report	*r;
	size_t			 index;
	unsigned		 line;
	int			 changed;	/* the op in hand changes the store */
	size_t			 nops;		/* in the batch */
};

static void	problem(struct batch *, int, const char *, const char *, const char *, ...)
		    __attribute__((format(printf, 5, 6)));

static void
problem(struct batch *b, int status, const char *code, const char *field,
    const char *fmt, ...)
{
	struct holder_report	*r = b->r;
	struct holder_problem	*pr;
	va_list			 ap;

	if (r->nproblems == HOLDER_MAX_PROBLEMS) {
		r->more++;
		return;
	}
	if (r->problems == NULL)
		r->problems = xcalloc(HOLDER_MAX_PROBLEMS, sizeof(*r->problems));
	pr = &r->problems[r->nproblems++];
	pr->index = b->index;
	pr->line = b->line;
	pr->status = status;
	pr->code = code;
	snprintf(pr->field, sizeof(pr->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(pr->message, sizeof(pr->message), fmt, ap);
	va_end(ap);
}

/*
 * The subject must belong to this holder. 1: yes; 0: a problem was
 * reported (unknown or another holder's, D1); -1: store error.
 *
 * Issue 14 item 6: for an op that needs an existing subject, another
 * holder's subject is answered exactly as an unknown one, so flag, consent
 * and delete cannot be used to probe which ids others hold. Creating one
 * (put_record) must still be refused while subject ids are one namespace
 * for all holders; that answer never names the holder, and the daemon logs
 * every such refusal (docs/security.md).
 */
static int
own(struct batch *b, const char *subject, int may_create)
{
	char	holder[PROTOCOL_ID_MAX + 2];	/* a longer stored id is cut, never equal */
	int	rc;

	if ((rc = storage_subject_holder(b->st, subject, holder, sizeof(holder),
	    b->r->error, sizeof(b->r->error))) == -1)
		return -1;
	if (rc == 0 && may_create)
		return 1;
	if (rc == 0 || (!may_create && strcmp(holder, b->holder->id) != 0)) {
		problem(b, 404, "unknown_subject", "subject_id", "subject %s has no "
		    "records; put a record first", subject);
		return 0;
	}
	if (strcmp(holder, b->holder->id) != 0) {
		/* Never name the other holder. */
		problem(b, 403, "not_your_subject", "subject_id", "subject %s is held "
		    "by another agency", subject);
		return 0;
	}
	return 1;
}

static const struct record_type *
record_type(struct batch *b, const char *id)
{
	const struct record_type *rt;

	if (id[0] == '\0') {
		problem(b, 400, "missing_field", "record_type", "record_type is required");
		return NULL;
	}
	if ((rt = protocol_record_type(b->p, id)) == NULL)
		problem(b, 400, "unknown_record_type", "record_type", "the protocol has "
		    "no record type \"%s\"", id);
	return rt;
}

/*
 * The op's NHS number, checked and without spaces, into out: 1 given, 0
 * not given, -1 bad (a problem was reported; the number is not echoed).
 */
static int
nhs_number(struct batch *b, const Safeshare__V1__HolderOp *op,
    char out[MATCH_NHS_LEN + 1])
{
	const char *why;

	out[0] = '\0';
	if (op->nhs_number == NULL || op->nhs_number[0] == '\0')
		return 0;
	if (match_nhs_parse(op->nhs_number, out, &why) == -1) {
		problem(b, 400, "bad_value", "nhs_number", "nhs_number: %s", why);
		return -1;
	}
	return 1;
}

/* The NHS number the op in hand links or unlinks, for its log entry. */
static void
linked(struct batch *b, const char *nhs)
{
	if (b->r->nhs == NULL)
		b->r->nhs = xcalloc(b->nops ? b->nops : 1, sizeof(*b->r->nhs));
	memcpy(b->r->nhs[b->index], nhs, MATCH_NHS_LEN + 1);
}

/*
 * Links nhs to the holder's own subject (D18): its view then belongs to
 * the person every other view linking that number belongs to. Linking the
 * number already linked changes nothing. The answer is the same whether or
 * not another holder links the number (D19); the one refusal is about the
 * holder's own views: it already holds that person under another local id.
 * 0, or -1 on a store error.
 */
static int
link_nhs(struct batch *b, const char *subject, const char *nhs)
{
	char	cur[MATCH_NHS_LEN + 1], other[130];
	int	rc;

	if ((rc = storage_nhs_of(b->st, subject, cur, b->r->error,
	    sizeof(b->r->error))) == -1)
		return -1;
	if (rc == 1 && strcmp(cur, nhs) == 0)
		return 0;
	if ((rc = storage_nhs_clash(b->st, subject, nhs, other, sizeof(other),
	    b->r->error, sizeof(b->r->error))) == -1)
		return -1;
	if (rc == 1) {
		problem(b, 409, "nhs_number_held", "nhs_number", "your agency already "
		    "holds the person with this NHS number as subject %s (one local "
		    "id per person: unlink it there first)", other);
		return 0;
	}
	b->changed = 1;
	linked(b, nhs);
	return storage_link_nhs(b->st, subject, nhs, b->r->error,
	    sizeof(b->r->error)) == -1 ? -1 : 0;
}

static int
put_record(struct batch *b, const Safeshare__V1__HolderOp *op)
{
	const struct record_type *rt;
	const char	*names[PROTOCOL_MAX_FIELDS], *values[PROTOCOL_MAX_FIELDS];
	const char	*why;
	size_t		 n = 0, before = b->r->nproblems, idx;
	int64_t		 verified = b->now;
	int		 seen[PROTOCOL_MAX_FIELDS] = { 0 }, rc, has_nhs;
	char		 nhs[MATCH_NHS_LEN + 1];

	has_nhs = nhs_number(b, op, nhs);
	if ((rt = record_type(b, op->record_type)) == NULL)
		return 0;
	for (size_t i = 0; i < op->n_fields; i++) {
		const Safeshare__V1__FieldValue *f = op->fields[i];
		const struct field_def *fd = record_type_field(rt, f->name, &idx);

		if (fd == NULL) {
			problem(b, 400, "unknown_field", f->name, "record type %s has no "
			    "field \"%s\"", rt->id, f->name);
			continue;
		}
		if (seen[idx]++) {
			problem(b, 400, "duplicate_field", f->name, "field \"%s\" given "
			    "twice", f->name);
			continue;
		}
		if ((why = field_value_problem(fd->type, f->value)) != NULL) {
			problem(b, 400, "bad_value", f->name, "%s: value %s (type %s)",
			    f->name, why, field_type_name(fd->type));
			continue;
		}
		names[n] = fd->name;
		values[n++] = f->value;
	}
	for (size_t i = 0; i < rt->nfields; i++)
		if (rt->fields[i].required && !seen[i])
			problem(b, 400, "missing_field", rt->fields[i].name, "required "
			    "field \"%s\" is missing", rt->fields[i].name);
	if (op->verified[0] != '\0' && date_parse(op->verified, &verified) == -1)
		problem(b, 400, "bad_value", "verified", "verified: not a date "
		    "(YYYY-MM-DD)");
	else if (verified > b->now)
		problem(b, 400, "bad_value", "verified", "verified: %s is in the future",
		    op->verified);
	if (b->r->nproblems > before)
		return 0;
	if ((rc = own(b, op->subject_id, 1)) != 1)
		return rc;
	/* Without a verified day, sent again the same day, it changes nothing. */
	if ((rc = storage_record_same(b->st, op->subject_id, rt->id,
	    b->holder->id, verified, op->verified[0] == '\0', names, values, n,
	    b->r->error, sizeof(b->r->error))) == -1)
		return -1;
	if (rc == 0) {
		b->changed = 1;
		if (storage_put_record(b->st, op->subject_id, rt->id,
		    b->holder->id, verified, names, values, n, b->r->error,
		    sizeof(b->r->error)) == -1)
			return -1;
	}
	/* A subject created or updated with an NHS number links it (D18). */
	return has_nhs == 1 ? link_nhs(b, op->subject_id, nhs) : 0;
}

static int
link_op(struct batch *b, const Safeshare__V1__HolderOp *op)
{
	char	nhs[MATCH_NHS_LEN + 1];
	int	rc;

	if ((rc = nhs_number(b, op, nhs)) != 1) {
		if (rc == 0)
			problem(b, 400, "missing_field", "nhs_number", "nhs_number is "
			    "required");
		return 0;
	}
	if ((rc = own(b, op->subject_id, 0)) != 1)
		return rc;
	return link_nhs(b, op->subject_id, nhs);
}

/*
 * The subject's view becomes a person of its own again (D18). What stays
 * with it: its records and its consent decisions, which are per (person,
 * holder), and the flags this holder set on it; flags other holders set
 * on their views stay with the person they hold. Unlinking a subject that
 * links no number changes nothing; with nhs_number given, it must be the
 * one linked.
 */
static int
unlink_op(struct batch *b, const Safeshare__V1__HolderOp *op)
{
	char	nhs[MATCH_NHS_LEN + 1], cur[MATCH_NHS_LEN + 1];
	int	given, rc;

	if ((given = nhs_number(b, op, nhs)) == -1)
		return 0;
	if ((rc = own(b, op->subject_id, 0)) != 1)
		return rc;
	if ((rc = storage_nhs_of(b->st, op->subject_id, cur, b->r->error,
	    sizeof(b->r->error))) != 1)
		return rc;	/* 0: none linked, nothing to do */
	if (given && strcmp(cur, nhs) != 0) {
		problem(b, 409, "nhs_number_not_linked", "nhs_number", "subject %s "
		    "links another NHS number; nothing was unlinked", op->subject_id);
		return 0;
	}
	b->changed = 1;
	linked(b, cur);
	return storage_unlink_nhs(b->st, op->subject_id, b->r->error,
	    sizeof(b->r->error)) == -1 ? -1 : 0;
}

static int
delete_record(struct batch *b, const Safeshare__V1__HolderOp *op)
{
	const struct record_type	*rt;
	int				 rc;

	if ((rt = record_type(b, op->record_type)) == NULL)
		return 0;
	if ((rc = own(b, op->subject_id, 0)) != 1)
		return rc;
	b->changed = 1;
	if ((rc = storage_delete_record(b->st, op->subject_id, rt->id,
	    b->r->error, sizeof(b->r->error))) == 0)
		problem(b, 404, "no_record", "record_type", "subject %s has no %s record",
		    op->subject_id, rt->id);
	return rc == -1 ? -1 : 0;
}

/*
 * "; did you mean \"ID\"?" for a misspelt agency (kind 1), purpose (0) or
 * flag (2) of the protocol, or "" (issue 22). These ids are the
 * partnership's, known to every holder: the hint tells it nothing new.
 */
static const char *
id_hint(const struct protocol *p, int kind, const char *word, char *buf, size_t len)
{
	size_t		  n = kind == 1 ? p->nagencies : kind == 0 ? p->npurposes :
			    p->flags.n;
	const char	**cands = xcalloc(n, sizeof(*cands));
	const char	 *hint;

	for (size_t i = 0; i < n; i++)
		cands[i] = kind == 1 ? p->agencies[i].id : kind == 0 ?
		    p->purposes[i].id : p->flags.v[i];
	if ((hint = did_you_mean(word, cands, n)) != NULL)
		snprintf(buf, len, "; did you mean \"%s\"?", hint);
	else
		buf[0] = '\0';
	free(cands);
	return buf;
}

/* Joins scope ids with commas after checking each; "*" when empty (all). */
static int
scope(struct batch *b, char *const *ids, size_t n, int agencies, char *out, size_t len)
{
	size_t	 before = b->r->nproblems;
	char	 hint[96];

	snprintf(out, len, "%s", n == 0 ? "*" : "");
	for (size_t i = 0; i < n; i++) {
		int known = agencies ? protocol_agency(b->p, ids[i]) != NULL :
		    protocol_purpose(b->p, ids[i]) != NULL;

		if (!known)
			problem(b, 400, agencies ? "unknown_agency" : "unknown_purpose",
			    agencies ? "agencies" : "purposes", "the protocol has no %s "
			    "\"%s\"%s", agencies ? "agency" : "purpose", ids[i],
			    id_hint(b->p, agencies, ids[i], hint, sizeof(hint)));
		else if (strlen(out) + strlen(ids[i]) + 2 > len)
			problem(b, 400, "bad_value", agencies ? "agencies" : "purposes",
			    "too many ids in the consent scope");
		else {
			if (out[0] != '\0')
				strcat(out, ",");
			strcat(out, ids[i]);
		}
	}
	return b->r->nproblems == before ? 0 : -1;
}

static int
consent(struct batch *b, const Safeshare__V1__HolderOp *op)
{
	enum consent_state	 c;
	char			 agencies[1024], purposes[1024];
	int64_t			 expires = 0, decided = 0;
	int			 bad = 0, rc;

	if (consent_parse(op->consent, &c) == -1 || c == CONSENT_NONE) {
		problem(b, 400, "bad_value", "consent", "consent must be granted, "
		    "refused or withdrawn");
		bad = 1;
	}
	bad |= scope(b, op->agencies, op->n_agencies, 1, agencies, sizeof(agencies));
	bad |= scope(b, op->purposes, op->n_purposes, 0, purposes, sizeof(purposes));
	if (op->expires[0] != '\0' && date_parse(op->expires, &expires) == -1) {
		problem(b, 400, "bad_value", "expires", "expires: not a date (YYYY-MM-DD)");
		bad = 1;
	}
	/* When the decision was made, kept in the history (D3, issue 15). */
	if (op->decided[0] != '\0') {
		if (date_parse(op->decided, &decided) == -1) {
			problem(b, 400, "bad_value", "decided", "decided: not a date "
			    "(YYYY-MM-DD)");
			bad = 1;
		} else if (decided > b->now) {
			problem(b, 400, "bad_value", "decided", "decided: %s is in the "
			    "future", op->decided);
			bad = 1;
		}
	}
	if (bad)
		return 0;
	if ((rc = own(b, op->subject_id, 0)) != 1)
		return rc;
	/* The same decision again changes no answer and adds no history. */
	if ((rc = storage_consent_same(b->st, op->subject_id, c, agencies,
	    purposes, expires, decided, b->r->error, sizeof(b->r->error))) != 0)
		return rc == 1 ? 0 : -1;
	b->changed = 1;
	return storage_add_consent(b->st, op->subject_id, c, agencies, purposes,
	    expires, decided, b->holder->id, b->now, b->r->error,
	    sizeof(b->r->error));
}

static int
flag(struct batch *b, const Safeshare__V1__HolderOp *op, int set)
{
	int rc;

	if (op->flag[0] == '\0') {
		problem(b, 400, "missing_field", "flag", "flag is required");
		return 0;
	}
	if (!strlist_has(&b->p->flags, op->flag)) {
		char hint[96];

		problem(b, 400, "unknown_flag", "flag", "the protocol declares no flag "
		    "\"%s\"%s", op->flag, id_hint(b->p, 2, op->flag, hint,
		    sizeof(hint)));
		return 0;
	}
	if ((rc = own(b, op->subject_id, 0)) != 1)
		return rc;
	if ((rc = storage_flag_active(b->st, op->subject_id, op->flag,
	    b->r->error, sizeof(b->r->error))) == -1)
		return -1;
	if (set) {	/* setting a set flag changes nothing and adds no history */
		if (rc)
			return 0;
		b->changed = 1;
		return storage_set_flag(b->st, op->subject_id, op->flag,
		    b->holder->id, b->now, b->r->error, sizeof(b->r->error));
	}
	if (rc == 0) {
		problem(b, 404, "flag_not_set", "flag", "subject %s has no active flag "
		    "%s", op->subject_id, op->flag);
		return 0;
	}
	b->changed = 1;
	return storage_remove_flag(b->st, op->subject_id, op->flag,
	    b->holder->id, b->now, b->r->error,
	    sizeof(b->r->error)) == -1 ? -1 : 0;
}

/* Issue 14 item 10: no control, bidi or blank ids to show auditors. */
static int
subject_id_ok(const char *id)
{
	return strlen(id) <= 128 && field_value_problem(FT_STRING, id) == NULL &&
	    text_problem(id, 128, 0) == NULL;
}

static int
apply_one(struct batch *b, const Safeshare__V1__HolderOp *op)
{
	if (op->subject_id[0] == '\0') {
		problem(b, 400, "missing_field", "subject_id", "subject_id is required");
		return 0;
	}
	if (!subject_id_ok(op->subject_id)) {
		problem(b, 400, "bad_value", "subject_id", "subject_id must be at most "
		    "128 printable characters");
		return 0;
	}
	if (op->nhs_number != NULL && op->nhs_number[0] != '\0' &&
	    op->kind != SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_PUT_RECORD &&
	    op->kind != SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_LINK_NHS &&
	    op->kind != SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_UNLINK_NHS) {
		problem(b, 400, "bad_value", "nhs_number", "nhs_number: only put_record, "
		    "link_nhs and unlink_nhs take one");
		return 0;
	}
	switch (op->kind) {
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_PUT_RECORD:
		return put_record(b, op);
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_LINK_NHS:
		return link_op(b, op);
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_UNLINK_NHS:
		return unlink_op(b, op);
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_DELETE_RECORD:
		return delete_record(b, op);
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_CONSENT:
		return consent(b, op);
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_FLAG:
		return flag(b, op, 1);
	case SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_UNFLAG:
		return flag(b, op, 0);
	default:
		problem(b, 400, "bad_value", "kind", "unknown operation kind %d",
		    (int)op->kind);
		return 0;
	}
}

/*
 * Before the ops run: the NHS numbers they may link, locked in one go and
 * in an order that cannot deadlock with another daemon's batch
 * (storage_lock_nhs(); D18), then the subjects the ops name (those with a
 * valid id), read and locked in one go (storage_prefetch(): on PostgreSQL
 * one round trip instead of one per op). Numbers before rows: no
 * transaction then waits for a number while it holds a row.
 */
static int
prefetch(struct storage *st, Safeshare__V1__HolderOp *const *ops, size_t nops,
    struct holder_report *r)
{
	char	**ids = xcalloc(nops ? nops : 1, sizeof(*ids));
	char	(*nhs)[MATCH_NHS_LEN + 1] = xcalloc(nops ? nops : 1, sizeof(*nhs));
	const char **nhsv = xcalloc(nops ? nops : 1, sizeof(*nhsv));
	const char *why;
	size_t	  n = 0, m = 0;
	int	  rc;

	for (size_t i = 0; i < nops; i++) {
		if (ops[i]->subject_id[0] != '\0' && subject_id_ok(ops[i]->subject_id))
			ids[n++] = ops[i]->subject_id;
		if ((ops[i]->kind == SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_LINK_NHS ||
		    ops[i]->kind == SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_PUT_RECORD) &&
		    ops[i]->nhs_number != NULL && ops[i]->nhs_number[0] != '\0' &&
		    match_nhs_parse(ops[i]->nhs_number, nhs[m], &why) == 0) {
			nhsv[m] = nhs[m];
			m++;
		}
	}
	rc = storage_lock_nhs(st, nhsv, m, r->error, sizeof(r->error));
	if (rc == 0)
		rc = storage_prefetch(st, ids, n, r->error, sizeof(r->error));
	free(nhsv);
	free(nhs);
	free(ids);
	return rc;
}

int
holder_apply(struct storage *st, const struct protocol *p,
    const struct agency *holder, Safeshare__V1__HolderOp *const *ops,
    size_t nops, int dry_run, int64_t now, const struct holder_batch *batch,
    struct holder_report *r)
{
	struct batch b = { st, p, holder, now, r, 0, 0, 0, nops };
	int rc;

	memset(r, 0, sizeof(*r));
	if (nops > HOLDER_MAX_OPS) {
		problem(&b, 400, "too_many_ops", "", "at most %d operations per request",
		    HOLDER_MAX_OPS);
		return 1;
	}
	if (storage_begin(st, r->error, sizeof(r->error)) == -1)
		goto dberr;
	if (prefetch(st, ops, nops, r) == -1) {
		storage_rollback(st);
		goto dberr;
	}
	r->changes = xcalloc(nops ? nops : 1, 1);
	for (size_t i = 0; i < nops; i++) {
		b.index = i;
		b.line = ops[i]->line;
		b.changed = 0;
		if (apply_one(&b, ops[i]) == -1) {
			storage_rollback(st);
			goto dberr;
		}
		r->changes[i] = (unsigned char)b.changed;
		r->unchanged += !b.changed;
		/* Unlogged because a no-op when checked; a change now (D7). */
		if (b.changed && batch != NULL && batch->logged != NULL &&
		    !batch->logged[i])
			problem(&b, 409, "changed_meanwhile", "", "op %zu: the store "
			    "changed after the batch was checked; nothing was written, "
			    "send it again", i);
		r->checked++;
	}
	if (r->nproblems > 0 || dry_run) {
		storage_rollback(st);
		if (r->nproblems > 0) {
			free(r->changes);
			r->changes = NULL;
		}
		return r->nproblems > 0;
	}
	if (batch != NULL && (rc = storage_mark_batch(st, batch->request_id,
	    batch->first_seq, now, r->error, sizeof(r->error))) != 0) {
		storage_rollback(st);
		if (rc == -1)
			goto dberr;
		/*
		 * Another daemon's start logged it rolled back while this one
		 * had lost its session (deploy-ha.md): the log says it did not
		 * happen, so it does not, and nothing more is owed to the log.
		 */
		b.index = 0;
		b.line = 0;
		problem(&b, 409, "rolled_back", "", "the batch was logged rolled back "
		    "by another daemon while this one was away from the database; "
		    "nothing was written, send it again");
		free(r->changes);
		r->changes = NULL;
		r->checked = 0;
		return 1;
	}
	if (storage_commit(st, r->error, sizeof(r->error)) == -1) {
		storage_rollback(st);
		goto dberr;
	}
	r->applied = nops;
	return 0;
dberr:
	/* The store's and person.c's functions wrote why into r->error. */
	free(r->changes);
	r->changes = NULL;
	return -1;
}

void
holder_report_free(struct holder_report *r)
{
	free(r->changes);
	free(r->nhs);
	free(r->problems);
	memset(r, 0, sizeof(*r));
}
