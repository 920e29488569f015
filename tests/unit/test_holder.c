/*
 * Holders' writes (src/holder.c) on a real SQLite file with the example
 * protocol: field checks, ownership, consent and flag history, all or nothing.
 */
#include <criterion/criterion.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "holder.h"
#include "person.h"
#include "storage.h"
#include "yamlutil.h"
#include "testutil.h"

/* The person_*() calls' error buffer (docs/hacking.md "Errors"). */
static char perr[256];

static char		 dbpath[256];
static struct store	*st;
static struct storage	*sg;		/* st through the interface */
static struct protocol	*proto;
static const struct agency *csc, *health;
static int64_t		 now;

static void
setup(void)
{
	char	err[256];

	t_store_open("holder", dbpath, sizeof(dbpath), &st, &proto);
	cr_assert_eq(storage_wrap_sqlite(&sg, st, err, sizeof(err)), 0, "%s", err);
	csc = protocol_agency(proto, "childrens_social_care");
	health = protocol_agency(proto, "health_trust");
	date_parse("2026-11-25", &now);
}

static void
teardown(void)
{
	storage_close(sg);
	t_store_close(dbpath, st, proto);
}

TestSuite(holder, .init = setup, .fini = teardown);

/* Ops built on the stack; holder_apply only reads them. */
struct opbuf {
	Safeshare__V1__HolderOp		 op;
	Safeshare__V1__FieldValue	 fv[8];
	Safeshare__V1__FieldValue	*fp[8];
};

static Safeshare__V1__HolderOp *
op(struct opbuf *b, Safeshare__V1__HolderOpKind kind, const char *subject,
    const char *rt, const char *const *kv)
{
	safeshare__v1__holder_op__init(&b->op);
	b->op.kind = kind;
	b->op.subject_id = (char *)subject;
	b->op.record_type = (char *)(rt ? rt : "");
	for (size_t i = 0; kv != NULL && kv[2 * i] != NULL; i++) {
		safeshare__v1__field_value__init(&b->fv[i]);
		b->fv[i].name = (char *)kv[2 * i];
		b->fv[i].value = (char *)kv[2 * i + 1];
		b->fp[i] = &b->fv[i];
		b->op.n_fields = i + 1;
	}
	b->op.fields = b->fp;
	return &b->op;
}

#define PUT	SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_PUT_RECORD
#define DEL	SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_DELETE_RECORD
#define CONSENT	SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_CONSENT
#define FLAG	SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_FLAG
#define UNFLAG	SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_UNFLAG
#define LINK	SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_LINK_NHS
#define UNLINK	SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_UNLINK_NHS

static const char *const ann[] = { "full_name", "Ann Example", "date_of_birth",
    "2012-03-04", "postcode", "AB1 2CD", NULL };

static int
apply1(const struct agency *a, Safeshare__V1__HolderOp *o, struct holder_report *r)
{
	return holder_apply(sg, proto, a, &o, 1, 0, now, NULL, r);
}

static long
count(const char *sql)
{
	sqlite3		*db;
	sqlite3_stmt	*q;
	long		 n = -1;

	cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s", sql);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

static struct store_subject
read_subject(const char *subject, const char *agency, const char *purpose)
{
	struct store_subject s;

	cr_assert_eq(store_subject(st, protocol_record_type(proto, "person"), subject,
	    agency, purpose, &s, NULL, 0), 0);
	return s;
}

Test(holder, put_record_then_read_it)
{
	struct opbuf		 b;
	struct holder_report	 r;
	struct store_subject	 s;
	size_t			 idx;

	cr_assert_eq(apply1(csc, op(&b, PUT, "S-1", "person", ann), &r), 0);
	cr_expect_eq(r.applied, 1);
	holder_report_free(&r);
	s = read_subject("S-1", "police", "child_protection");
	cr_expect(s.view.known);
	cr_expect_str_eq(s.holder, "childrens_social_care");
	cr_expect_eq(s.view.last_verified, now, "verified defaults to today (D9)");
	record_type_field(protocol_record_type(proto, "person"), "postcode", &idx);
	cr_expect_str_eq(s.values[idx], "AB1 2CD");
	store_subject_free(&s);
}

Test(holder, bad_fields_are_named_and_nothing_is_written)
{
	static const char *const bad[] = { "full_name", "Ann", "shoe_size", "5",
	    "date_of_birth", "last tuesday", NULL };
	static const char *const noname[] = { "postcode", "AB1 2CD", NULL };
	struct opbuf		 b1, b2, b3;
	struct holder_report	 r;
	Safeshare__V1__HolderOp	*ops[3];

	ops[0] = op(&b1, PUT, "S-1", "person", ann);	/* good, but rolled back */
	ops[1] = op(&b2, PUT, "S-2", "person", bad);
	ops[2] = op(&b3, PUT, "S-3", "person", noname);
	ops[2]->line = 7;
	cr_assert_eq(holder_apply(sg, proto, csc, ops, 3, 0, now, NULL, &r), 1);
	cr_assert_eq(r.nproblems, 3);
	cr_expect_str_eq(r.problems[0].code, "unknown_field");
	cr_expect_str_eq(r.problems[0].field, "shoe_size");
	cr_expect_eq(r.problems[0].status, 400);
	cr_expect_eq(r.problems[0].index, 1);
	cr_expect_str_eq(r.problems[1].code, "bad_value");
	cr_expect_str_eq(r.problems[1].field, "date_of_birth");
	cr_expect_str_eq(r.problems[2].code, "missing_field");
	cr_expect_str_eq(r.problems[2].field, "full_name");
	cr_expect_eq(r.problems[2].line, 7, "the op's source line comes back");
	cr_expect_eq(r.applied, 0);
	holder_report_free(&r);
	cr_expect_eq(count("SELECT count(*) FROM subjects"), 0, "all or nothing");
	cr_expect_eq(count("SELECT count(*) FROM record_fields"), 0);
}

Test(holder, unknown_record_type_and_future_verified)
{
	struct opbuf		 b1, b2;
	struct holder_report	 r;
	Safeshare__V1__HolderOp	*ops[2];

	ops[0] = op(&b1, PUT, "S-1", "pet", ann);
	ops[1] = op(&b2, PUT, "S-1", "person", ann);
	ops[1]->verified = "2030-01-01";
	cr_assert_eq(holder_apply(sg, proto, csc, ops, 2, 0, now, NULL, &r), 1);
	cr_assert_eq(r.nproblems, 2);
	cr_expect_str_eq(r.problems[0].code, "unknown_record_type");
	cr_expect_str_eq(r.problems[1].field, "verified");
	holder_report_free(&r);
}

Test(holder, another_holders_subject_is_refused_without_naming_it)
{
	struct opbuf		 b;
	struct holder_report	 r;

	cr_assert_eq(apply1(csc, op(&b, PUT, "S-1", "person", ann), &r), 0);
	holder_report_free(&r);
	cr_assert_eq(apply1(health, op(&b, PUT, "S-1", "person", ann), &r), 1);
	cr_expect_eq(r.problems[0].status, 403);
	cr_expect_str_eq(r.problems[0].code, "not_your_subject");
	cr_expect_null(strstr(r.problems[0].message, "childrens_social_care"));
	holder_report_free(&r);
	/*
	 * Issue 14 item 6: ops on an existing subject answer another holder's
	 * subject exactly as an unknown one, so they cannot probe.
	 */
	for (int k = 0; k < 3; k++) {
		struct holder_report	 u;
		struct opbuf		 ub;

		if (k == 0) {
			op(&b, FLAG, "S-1", NULL, NULL)->flag = "domestic_abuse";
			op(&ub, FLAG, "S-NONE", NULL, NULL)->flag = "domestic_abuse";
		} else if (k == 1) {
			op(&b, DEL, "S-1", "person", NULL);
			op(&ub, DEL, "S-NONE", "person", NULL);
		} else {
			op(&b, CONSENT, "S-1", NULL, NULL)->consent = "granted";
			op(&ub, CONSENT, "S-NONE", NULL, NULL)->consent = "granted";
		}
		cr_assert_eq(apply1(health, &b.op, &r), 1);
		cr_assert_eq(apply1(health, &ub.op, &u), 1);
		cr_expect_eq(r.problems[0].status, 404, "op %d", k);
		cr_expect_str_eq(r.problems[0].code, u.problems[0].code, "op %d", k);
		cr_expect_eq(r.problems[0].status, u.problems[0].status, "op %d", k);
		/* The same words but for the id itself. */
		cr_expect_eq(strlen(r.problems[0].message) + 3,
		    strlen(u.problems[0].message), "op %d", k);
		holder_report_free(&r);
		holder_report_free(&u);
	}
	cr_expect_eq(count("SELECT count(*) FROM flags"), 0);
	cr_expect_eq(count("SELECT count(*) FROM records"), 1);
}

Test(holder, consent_history_is_kept_latest_wins)
{
	static char		*police[] = { "police" };
	struct opbuf		 b;
	struct holder_report	 r;
	struct store_subject	 s;

	cr_assert_eq(apply1(csc, op(&b, PUT, "S-1", "person", ann), &r), 0);
	holder_report_free(&r);
	op(&b, CONSENT, "S-1", NULL, NULL)->consent = "granted";
	b.op.agencies = police;
	b.op.n_agencies = 1;
	b.op.expires = "2027-01-01";
	cr_assert_eq(apply1(csc, &b.op, &r), 0);
	holder_report_free(&r);
	s = read_subject("S-1", "police", "child_protection");
	cr_expect_eq(s.view.consent, CONSENT_GRANTED);
	cr_expect_neq(s.view.consent_expires, 0);
	store_subject_free(&s);
	s = read_subject("S-1", "housing", "child_protection");
	cr_expect_eq(s.view.consent, CONSENT_NONE, "out of scope (D3)");
	store_subject_free(&s);

	op(&b, CONSENT, "S-1", NULL, NULL)->consent = "withdrawn";
	cr_assert_eq(apply1(csc, &b.op, &r), 0);
	holder_report_free(&r);
	s = read_subject("S-1", "police", "child_protection");
	cr_expect_eq(s.view.consent, CONSENT_WITHDRAWN);
	store_subject_free(&s);
	cr_expect_eq(count("SELECT count(*) FROM consents WHERE recorded_by = "
	    "'childrens_social_care'"), 2, "history is kept, never overwritten");
}

Test(holder, consent_checks_state_scope_and_subject)
{
	static char		*who[] = { "police", "mi5" };
	struct opbuf		 b;
	struct holder_report	 r;

	op(&b, CONSENT, "S-404", NULL, NULL)->consent = "granted";
	cr_assert_eq(apply1(csc, &b.op, &r), 1);
	cr_expect_eq(r.problems[0].status, 404);
	cr_expect_str_eq(r.problems[0].code, "unknown_subject");
	holder_report_free(&r);
	op(&b, CONSENT, "S-404", NULL, NULL)->consent = "maybe";
	b.op.agencies = who;
	b.op.n_agencies = 2;
	b.op.expires = "soon";
	cr_assert_eq(apply1(csc, &b.op, &r), 1);
	cr_assert_eq(r.nproblems, 3);
	cr_expect_str_eq(r.problems[0].field, "consent");
	cr_expect_str_eq(r.problems[1].code, "unknown_agency");
	cr_expect_str_eq(r.problems[2].field, "expires");
	holder_report_free(&r);
}

Test(holder, flags_set_remove_and_keep_history)
{
	struct opbuf		 b;
	struct holder_report	 r;
	struct store_subject	 s;

	cr_assert_eq(apply1(csc, op(&b, PUT, "S-1", "person", ann), &r), 0);
	holder_report_free(&r);
	op(&b, FLAG, "S-1", NULL, NULL)->flag = "domestic_abuse";
	cr_assert_eq(apply1(csc, &b.op, &r), 0);
	holder_report_free(&r);
	cr_assert_eq(apply1(csc, &b.op, &r), 0, "setting a set flag is harmless");
	holder_report_free(&r);
	s = read_subject("S-1", "police", "child_protection");
	cr_expect_eq(s.view.nflags, 1);
	store_subject_free(&s);
	b.op.kind = UNFLAG;
	cr_assert_eq(apply1(csc, &b.op, &r), 0);
	holder_report_free(&r);
	s = read_subject("S-1", "police", "child_protection");
	cr_expect_eq(s.view.nflags, 0);
	store_subject_free(&s);
	cr_expect_eq(count("SELECT count(*) FROM flags WHERE removed_by = "
	    "'childrens_social_care'"), 1, "removal is history, not deletion (D12)");
	cr_assert_eq(apply1(csc, &b.op, &r), 1);
	cr_expect_str_eq(r.problems[0].code, "flag_not_set");
	holder_report_free(&r);
	op(&b, FLAG, "S-1", NULL, NULL)->flag = "vip";
	cr_assert_eq(apply1(csc, &b.op, &r), 1);
	cr_expect_str_eq(r.problems[0].code, "unknown_flag");
	cr_expect_null(strstr(r.problems[0].message, "did you mean"), "%s",
	    r.problems[0].message);
	holder_report_free(&r);
	/* Issue 22: a misspelt flag gets a did-you-mean. */
	op(&b, FLAG, "S-1", NULL, NULL)->flag = "domestic_abuze";
	cr_assert_eq(apply1(csc, &b.op, &r), 1);
	cr_expect_str_eq(r.problems[0].code, "unknown_flag");
	cr_expect_not_null(strstr(r.problems[0].message,
	    "did you mean \"domestic_abuse\"?"), "%s", r.problems[0].message);
	holder_report_free(&r);
}

Test(holder, delete_record_and_dry_run)
{
	struct opbuf		 b;
	struct holder_report	 r;
	struct store_subject	 s;
	Safeshare__V1__HolderOp	*o;

	o = op(&b, PUT, "S-1", "person", ann);
	cr_assert_eq(holder_apply(sg, proto, csc, &o, 1, 1, now, NULL, &r), 0);
	cr_expect_eq(r.checked, 1);
	cr_expect_eq(r.applied, 0);
	holder_report_free(&r);
	cr_expect_eq(count("SELECT count(*) FROM records"), 0, "dry run writes nothing");
	cr_assert_eq(apply1(csc, o, &r), 0);
	holder_report_free(&r);
	cr_assert_eq(apply1(csc, op(&b, DEL, "S-1", "person", NULL), &r), 0);
	holder_report_free(&r);
	s = read_subject("S-1", "police", "child_protection");
	cr_expect(!s.view.known, "a deleted record is not released");
	store_subject_free(&s);
	cr_expect_eq(count("SELECT count(*) FROM record_fields"), 0);
	cr_assert_eq(apply1(csc, op(&b, DEL, "S-1", "person", NULL), &r), 1);
	cr_expect_str_eq(r.problems[0].code, "no_record");
	holder_report_free(&r);
}

Test(holder, value_checks_by_type)
{
	static const struct {
		enum field_type	 t;
		const char	*v;
		int		 ok;
	} cases[] = {
		{ FT_DATE, "2012-02-29", 1 }, { FT_DATE, "2013-02-29", 0 },
		{ FT_DATE, "04/05/2012", 0 }, { FT_POSTCODE, "SW1A 1AA", 1 },
		{ FT_POSTCODE, "m1 1ae", 1 }, { FT_POSTCODE, "B338TH", 1 },
		{ FT_POSTCODE, "12345", 0 }, { FT_POSTCODE, "AB1 2C", 0 },
		{ FT_PHONE, "+44 (0)20 7946 0018", 1 }, { FT_PHONE, "12", 0 },
		{ FT_PHONE, "call me", 0 }, { FT_INTEGER, "-42", 1 },
		{ FT_INTEGER, "4.2", 0 }, { FT_NAME, "Anne-Marie O'Neil", 1 },
		{ FT_NAME, "R2D2", 0 }, { FT_STRING, "a\x01" "b", 0 },
		{ FT_TEXT, "line one\nline two", 1 }, { FT_STRING, "", 0 },
		{ FT_ADDRESS, "1 High St,\nTown", 1 },
		/* Issue 15: a boolean is exactly true or false. */
		{ FT_BOOLEAN, "true", 1 }, { FT_BOOLEAN, "false", 1 },
		{ FT_BOOLEAN, "yes", 0 }, { FT_BOOLEAN, "True", 0 }, { FT_BOOLEAN, "1", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(field_value_problem(cases[i].t, cases[i].v) == NULL,
		    cases[i].ok, "%s \"%s\"", field_type_name(cases[i].t), cases[i].v);
}

/*
 * Issue 14 item 14: a no-op write (a set flag set again, the latest consent
 * decision again, the stored record again) is found when checking, so the
 * daemon logs no entry for it; a different write is a change.
 */
Test(holder, no_op_writes_are_found_when_checking)
{
	static const char *const ann2[] = { "full_name", "Ann Example", "date_of_birth",
	    "2012-03-04", "postcode", "ZZ9 9ZZ", NULL };
	static char		*police[] = { "police" };
	struct opbuf		 b[4];
	Safeshare__V1__HolderOp	*ops[4];
	struct holder_report	 r;

	ops[0] = op(&b[0], PUT, "S-1", "person", ann);
	b[0].op.verified = "2026-11-01";
	ops[1] = op(&b[1], FLAG, "S-1", NULL, NULL);
	b[1].op.flag = "domestic_abuse";
	ops[2] = op(&b[2], CONSENT, "S-1", NULL, NULL);
	b[2].op.consent = "granted";
	b[2].op.agencies = police;
	b[2].op.n_agencies = 1;
	cr_assert_eq(holder_apply(sg, proto, csc, ops, 3, 1, now, NULL, &r), 0);
	cr_assert_not_null(r.changes);
	cr_expect(r.changes[0] && r.changes[1] && r.changes[2], "all new");
	cr_expect_eq(r.unchanged, 0);
	holder_report_free(&r);
	cr_assert_eq(holder_apply(sg, proto, csc, ops, 3, 0, now, NULL, &r), 0);
	holder_report_free(&r);

	/* The same three again: each changes nothing. */
	cr_assert_eq(holder_apply(sg, proto, csc, ops, 3, 1, now, NULL, &r), 0);
	cr_expect(!r.changes[0], "the stored record again");
	cr_expect(!r.changes[1], "a set flag set again");
	cr_expect(!r.changes[2], "the latest consent decision again");
	cr_expect_eq(r.unchanged, 3);
	holder_report_free(&r);

	/* A value, a verification date or a consent scope differing is a change. */
	ops[3] = op(&b[3], PUT, "S-1", "person", ann2);
	b[3].op.verified = "2026-11-01";
	cr_assert_eq(holder_apply(sg, proto, csc, &ops[3], 1, 1, now, NULL, &r), 0);
	cr_expect(r.changes[0], "another postcode");
	holder_report_free(&r);
	b[0].op.verified = "2026-11-02";
	cr_assert_eq(holder_apply(sg, proto, csc, ops, 1, 1, now, NULL, &r), 0);
	cr_expect(r.changes[0], "re-verified");
	holder_report_free(&r);
	b[2].op.n_agencies = 0;
	cr_assert_eq(holder_apply(sg, proto, csc, &ops[2], 1, 1, now, NULL, &r), 0);
	cr_expect(r.changes[0], "a wider scope");
	holder_report_free(&r);
	cr_expect_eq(count("SELECT count(*) FROM flags"), 1);
	cr_expect_eq(count("SELECT count(*) FROM consents"), 1);

	/* Without verified: the same record again the same day is a no-op. */
	ops[3] = op(&b[3], PUT, "S-2", "person", ann);
	cr_assert_eq(holder_apply(sg, proto, csc, &ops[3], 1, 0, now, NULL, &r), 0);
	holder_report_free(&r);
	cr_assert_eq(holder_apply(sg, proto, csc, &ops[3], 1, 1, now + 3600, NULL, &r), 0);
	cr_expect(!r.changes[0], "re-sent later the same day");
	holder_report_free(&r);
	cr_assert_eq(holder_apply(sg, proto, csc, &ops[3], 1, 1, now + 86400, NULL, &r), 0);
	cr_expect(r.changes[0], "the next day it re-verifies the record");
	holder_report_free(&r);
}

/*
 * An op left unlogged as a no-op that has become a change by the time the
 * batch is applied (another batch came between) stops the batch: nothing
 * changes unlogged (D7).
 */
Test(holder, an_unlogged_op_that_became_a_change_stops_the_batch)
{
	static const unsigned char logged[] = { 0 };
	struct holder_batch	 batch = { "rid-1", 7, logged };
	struct opbuf		 b;
	struct holder_report	 r;

	cr_assert_eq(apply1(csc, op(&b, PUT, "S-1", "person", ann), &r), 0);
	holder_report_free(&r);
	op(&b, FLAG, "S-1", NULL, NULL)->flag = "domestic_abuse";
	Safeshare__V1__HolderOp *o = &b.op;
	cr_assert_eq(holder_apply(sg, proto, csc, &o, 1, 0, now, &batch, &r), 1);
	cr_expect_eq(r.problems[0].status, 409);
	cr_expect_str_eq(r.problems[0].code, "changed_meanwhile");
	holder_report_free(&r);
	cr_expect_eq(count("SELECT count(*) FROM flags"), 0, "nothing written");
	cr_expect_eq(count("SELECT count(*) FROM holder_batches"), 0);
}

/* Issue 14 item 10: subject ids an auditor's terminal would obey are refused. */
Test(holder, subject_ids_without_controls)
{
	static const char *const bad[] = { "S-1\n#999 deny", "S-1\r\x1b[1A\x1b[2K",
	    "S-1\xe2\x80\xae", "S-1\xc2\x9b" "2K", " ", "\xe2\x80\x8b", "S-\xff" };
	struct opbuf		 b;
	struct holder_report	 r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(apply1(csc, op(&b, PUT, bad[i], "person", ann), &r), 1,
		    "case %zu", i);
		cr_expect_str_eq(r.problems[0].code, "bad_value", "case %zu", i);
		cr_expect_str_eq(r.problems[0].field, "subject_id", "case %zu", i);
		holder_report_free(&r);
	}
	cr_expect_eq(count("SELECT count(*) FROM subjects"), 0);
}

/*
 * Issue 17 item 5 (D18): NHS numbers through holder ops. A put_record that
 * carries one links the subject; link_nhs links an existing one; two
 * holders linking the same number hold the same person.
 */
static int64_t
person(const char *subject)
{
	int64_t p = 0;

	cr_assert_eq(person_of(st, subject, &p, perr, sizeof(perr)), 1, "%s is in the store", subject);
	return p;
}

static int
has_flag(const char *subject, const char *flag)
{
	struct store_subject	s = read_subject(subject, "police", "child_protection");
	int			found = 0;

	for (size_t i = 0; i < s.view.nflags; i++)
		found |= strcmp(s.view.flags[i], flag) == 0;
	store_subject_free(&s);
	return found;
}

Test(holder, nhs_number_links_two_holders_views)
{
	struct opbuf		 b;
	struct holder_report	 r;
	Safeshare__V1__HolderOp	*o;
	char			 nhs[MATCH_NHS_LEN + 1];

	o = op(&b, PUT, "CSC-1", "person", ann);
	o->nhs_number = "943 476 5919";		/* spaces accepted */
	cr_assert_eq(apply1(csc, o, &r), 0, "%s", r.nproblems ? r.problems[0].message : "");
	cr_assert_not_null(r.nhs, "the link is reported for the log entry");
	cr_expect_str_eq(r.nhs[0], "9434765919");
	holder_report_free(&r);
	cr_expect_eq(person_nhs_of(st, "CSC-1", nhs, perr, sizeof(perr)), 1);
	cr_expect_str_eq(nhs, "9434765919", "stored without spaces");

	cr_assert_eq(apply1(health, op(&b, PUT, "HLT-1", "person", ann), &r), 0);
	holder_report_free(&r);
	cr_expect_neq(person("CSC-1"), person("HLT-1"), "not linked yet");
	o = op(&b, LINK, "HLT-1", NULL, NULL);
	o->nhs_number = "9434765919";
	cr_assert_eq(apply1(health, o, &r), 0);
	cr_expect_eq(r.unchanged, 0);
	cr_expect_str_eq(r.nhs[0], "9434765919");
	holder_report_free(&r);
	cr_expect_eq(person("CSC-1"), person("HLT-1"), "D18: one person, two holders");

	/* Linking it again changes nothing (no log entry). */
	cr_assert_eq(apply1(health, o, &r), 0);
	cr_expect_eq(r.unchanged, 1);
	cr_expect_null(r.nhs);
	holder_report_free(&r);
	o = op(&b, PUT, "CSC-1", "person", ann);
	o->nhs_number = "9434765919";
	cr_assert_eq(apply1(csc, o, &r), 0);
	cr_expect_eq(r.unchanged, 1, "same record, same number: a no-op");
	holder_report_free(&r);
}

Test(holder, nhs_number_bad_or_misplaced_is_a_problem)
{
	struct opbuf		 b1, b2;
	struct holder_report	 r;
	Safeshare__V1__HolderOp	*ops[2];

	ops[0] = op(&b1, PUT, "S-1", "person", ann);
	ops[0]->nhs_number = "9434765918";	/* check digit wrong */
	ops[1] = op(&b2, LINK, "S-1", NULL, NULL);
	cr_assert_eq(holder_apply(sg, proto, csc, ops, 2, 0, now, NULL, &r), 1);
	cr_assert_eq(r.nproblems, 2);
	cr_expect_str_eq(r.problems[0].code, "bad_value");
	cr_expect_str_eq(r.problems[0].field, "nhs_number");
	cr_expect_null(strstr(r.problems[0].message, "9434765918"), "not echoed");
	cr_expect_str_eq(r.problems[1].code, "missing_field");
	holder_report_free(&r);
	cr_expect_eq(count("SELECT count(*) FROM subjects"), 0, "nothing written");

	ops[0] = op(&b1, PUT, "S-1", "person", ann);
	ops[1] = op(&b2, FLAG, "S-1", NULL, NULL);
	ops[1]->flag = "domestic_abuse";
	ops[1]->nhs_number = "9434765919";
	cr_assert_eq(holder_apply(sg, proto, csc, ops, 2, 0, now, NULL, &r), 1);
	cr_expect_str_eq(r.problems[0].field, "nhs_number");
	holder_report_free(&r);
}

Test(holder, nhs_link_of_another_holders_subject_is_refused)
{
	struct opbuf		 b;
	struct holder_report	 r;
	Safeshare__V1__HolderOp	*o;
	char			 nhs[MATCH_NHS_LEN + 1];

	cr_assert_eq(apply1(csc, op(&b, PUT, "CSC-1", "person", ann), &r), 0);
	holder_report_free(&r);
	for (int k = 0; k < 2; k++) {
		o = op(&b, k ? UNLINK : LINK, "CSC-1", NULL, NULL);
		o->nhs_number = "9434765919";
		cr_assert_eq(apply1(health, o, &r), 1);
		cr_expect_eq(r.problems[0].status, 404, "D18/D19: as if unknown");
		cr_expect_str_eq(r.problems[0].code, "unknown_subject");
		holder_report_free(&r);
	}
	cr_expect_eq(person_nhs_of(st, "CSC-1", nhs, perr, sizeof(perr)), 0, "not linked");
}

Test(holder, one_local_id_per_person_and_holder)
{
	struct opbuf		 b;
	struct holder_report	 r;
	Safeshare__V1__HolderOp	*o;

	o = op(&b, PUT, "CSC-1", "person", ann);
	o->nhs_number = "9434765919";
	cr_assert_eq(apply1(csc, o, &r), 0);
	holder_report_free(&r);
	o = op(&b, PUT, "CSC-2", "person", ann);
	o->nhs_number = "9434765919";
	cr_assert_eq(apply1(csc, o, &r), 1);
	cr_expect_eq(r.problems[0].status, 409);
	cr_expect_str_eq(r.problems[0].code, "nhs_number_held");
	cr_expect_not_null(strstr(r.problems[0].message, "CSC-1"), "names the "
	    "holder's own local id");
	holder_report_free(&r);
	cr_expect_eq(count("SELECT count(*) FROM subjects"), 1);
}

Test(holder, unlink_keeps_the_holders_flags_consent_and_records)
{
	struct opbuf		 b;
	struct holder_report	 r;
	Safeshare__V1__HolderOp	*o;
	char			 nhs[MATCH_NHS_LEN + 1];

	o = op(&b, PUT, "CSC-1", "person", ann);
	o->nhs_number = "9434765919";
	cr_assert_eq(apply1(csc, o, &r), 0);
	holder_report_free(&r);
	o = op(&b, PUT, "HLT-1", "person", ann);
	o->nhs_number = "9434765919";
	cr_assert_eq(apply1(health, o, &r), 0);
	holder_report_free(&r);
	o = op(&b, FLAG, "CSC-1", NULL, NULL);
	o->flag = "domestic_abuse";
	cr_assert_eq(apply1(csc, o, &r), 0);
	holder_report_free(&r);
	o = op(&b, FLAG, "HLT-1", NULL, NULL);
	o->flag = "hate_crime";
	cr_assert_eq(apply1(health, o, &r), 0);
	holder_report_free(&r);
	cr_expect(has_flag("HLT-1", "domestic_abuse"), "D12/D18: the person's flag");
	cr_expect(has_flag("CSC-1", "hate_crime"));

	/* Unlinking another number than the linked one is refused. */
	o = op(&b, UNLINK, "HLT-1", NULL, NULL);
	o->nhs_number = "4010232137";
	cr_assert_eq(apply1(health, o, &r), 1);
	cr_expect_str_eq(r.problems[0].code, "nhs_number_not_linked");
	holder_report_free(&r);

	o->nhs_number = "943 476 5919";
	cr_assert_eq(apply1(health, o, &r), 0);
	cr_expect_str_eq(r.nhs[0], "9434765919", "the unlinked number, for the log");
	holder_report_free(&r);
	cr_expect_eq(person_nhs_of(st, "HLT-1", nhs, perr, sizeof(perr)), 0);
	cr_expect_neq(person("CSC-1"), person("HLT-1"), "two people again");
	cr_expect_not(has_flag("HLT-1", "domestic_abuse"), "the police-style flag "
	    "set on CSC's view stays with CSC's person");
	cr_expect(has_flag("HLT-1", "hate_crime"), "the flag health set follows its view");
	cr_expect(has_flag("CSC-1", "domestic_abuse"));
	cr_expect_not(has_flag("CSC-1", "hate_crime"));
	cr_expect_eq(count("SELECT count(*) FROM records WHERE subject = 'HLT-1'"), 1);

	/* Unlinking again changes nothing. */
	o = op(&b, UNLINK, "HLT-1", NULL, NULL);
	cr_assert_eq(apply1(health, o, &r), 0);
	cr_expect_eq(r.unchanged, 1);
	holder_report_free(&r);
}
