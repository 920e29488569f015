/*
 * People and holders (D18): NHS numbers linking one person's subjects at
 * several holders, flags that count for the person, consent that stays with
 * the holder, finding a person, and migration 7 on a store made by the
 * release before it from config/demo-data.yaml (tests/data/store/v6-demo.sql).
 */
#include <criterion/criterion.h>
#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "person.h"
#include "store.h"
#include "store_int.h"
#include "testutil.h"
#include "util.h"

/* The person_*() calls' error buffer (docs/hacking.md "Errors"). */
static char perr[256];

static char		 dbpath[256];
static struct store	*st;
static struct protocol	*proto;

T_STORE_SUITE(person, dbpath, st, proto);

/* A person record for subject at holder, with its matching details. */
static void
put(const char *subject, const char *holder, const char *family, const char *given,
    const char *dob, const char *postcode)
{
	char		 full[256];
	const char	*names[] = { "full_name", "date_of_birth", "address", "postcode" };
	const char	*values[] = { full, dob, "1 Test Street, Exampleton", postcode };

	snprintf(full, sizeof(full), "%s %s", given, family);
	cr_assert_eq(store_put_record(st, subject, "person", holder, 100, names, values,
	    4, perr, sizeof(perr)), 0, "%s", perr);
	cr_assert_eq(person_set_details(st, subject, family, given, dob, postcode, perr, sizeof(perr)), 0,
	    "%s", perr);
}

static int64_t
person(const char *subject)
{
	int64_t p = 0;

	cr_assert_eq(person_of(st, subject, &p, perr, sizeof(perr)), 1, "%s", subject);
	return p;
}

/* Three holders, three local ids; two link an NHS number: one person of two. */
static void
three_holders(void)
{
	cr_assert_eq(store_begin(st, NULL, 0), 0);
	put("CSC-1", "childrens_social_care", "Hart", "Amelia", "2015-03-09", "EX1 4QT");
	put("POL-1", "police", "Hart", "Amelia", "2015-03-09", "EX1 4QT");
	put("HLT-1", "health_trust", "Hart", "Amelia", "2015-03-09", "EX1 4QT");
	cr_assert_eq(person_link_nhs(st, "CSC-1", "9434765919", perr, sizeof(perr)), 1, "%s", perr);
	cr_assert_eq(person_link_nhs(st, "HLT-1", "9434765919", perr, sizeof(perr)), 1, "%s", perr);
	cr_assert_eq(store_commit(st, NULL, 0), 0);
}

Test(person, same_nhs_number_same_person)
{
	char nhs[MATCH_NHS_LEN + 1];

	three_holders();
	cr_expect_eq(person("CSC-1"), person("HLT-1"), "D18: same NHS number, same person");
	cr_expect_neq(person("CSC-1"), person("POL-1"), "no number: a person of its own");
	cr_expect_eq(person_nhs_of(st, "HLT-1", nhs, perr, sizeof(perr)), 1);
	cr_expect_str_eq(nhs, "9434765919");
	cr_expect_eq(person_nhs_of(st, "POL-1", nhs, perr, sizeof(perr)), 0);
	/* Linking again changes nothing. */
	cr_expect_eq(person_link_nhs(st, "CSC-1", "9434765919", perr, sizeof(perr)), 0);
}

struct seen {
	char	 list[512];
};

static int
collect(const char *holder, const char *subject, void *arg)
{
	struct seen *s = arg;

	snprintf(s->list + strlen(s->list), sizeof(s->list) - strlen(s->list), "%s=%s;",
	    holder, subject);
	return 0;
}

Test(person, holdings_of_a_person)
{
	struct seen	 seen = { "" };
	char		 subj[64];

	three_holders();
	cr_assert_eq(person_holdings(st, person("CSC-1"), collect, &seen, perr, sizeof(perr)), 0);
	cr_expect_str_eq(seen.list, "childrens_social_care=CSC-1;health_trust=HLT-1;");
	cr_expect_eq(person_holding(st, person("CSC-1"), "health_trust", subj,
	    sizeof(subj), perr, sizeof(perr)), 1);
	cr_expect_str_eq(subj, "HLT-1");
	cr_expect_eq(person_holding(st, person("CSC-1"), "police", subj, sizeof(subj), perr, sizeof(perr)), 0);
}

Test(person, unlink_makes_a_person_of_its_own)
{
	int64_t p;

	three_holders();
	p = person("CSC-1");
	cr_assert_eq(store_begin(st, NULL, 0), 0);
	cr_expect_eq(person_unlink_nhs(st, "HLT-1", perr, sizeof(perr)), 1, "%s", perr);
	cr_expect_eq(person_unlink_nhs(st, "HLT-1", perr, sizeof(perr)), 0, "nothing left to unlink");
	cr_assert_eq(store_commit(st, NULL, 0), 0);
	cr_expect_eq(person("CSC-1"), p, "the other subject keeps the person");
	cr_expect_neq(person("HLT-1"), p);
	/* The police links the number: it joins the person. */
	cr_assert_eq(store_begin(st, NULL, 0), 0);
	cr_expect_eq(person_link_nhs(st, "POL-1", "9434765919", perr, sizeof(perr)), 1);
	cr_assert_eq(store_commit(st, NULL, 0), 0);
	cr_expect_eq(person("POL-1"), p);
}

Test(person, relinking_another_number_leaves_the_person)
{
	int64_t p;

	three_holders();
	p = person("CSC-1");
	cr_assert_eq(store_begin(st, NULL, 0), 0);
	cr_expect_eq(person_link_nhs(st, "HLT-1", "4010232137", perr, sizeof(perr)), 1);
	cr_assert_eq(store_commit(st, NULL, 0), 0);
	cr_expect_neq(person("HLT-1"), p, "another number, another person");
	cr_expect_eq(person("CSC-1"), p);
}

/* D18: a holder's view of a person is one local id. */
Test(person, one_local_id_per_holder_and_person)
{
	three_holders();
	cr_assert_eq(store_begin(st, NULL, 0), 0);
	put("CSC-2", "childrens_social_care", "Hart", "Amelia", "2015-03-09", "EX1 4QT");
	cr_expect_eq(person_link_nhs(st, "CSC-2", "9434765919", perr, sizeof(perr)), -1);
	cr_expect(strstr(perr, "another local id") != NULL, "%s",
	    perr);
	cr_expect_eq(person_link_nhs(st, "NOPE", "9434765919", perr, sizeof(perr)), -1);
	cr_expect_str_eq(perr, "unknown subject");
	store_rollback(st);
}

/*
 * D12, D18: the police's domestic_abuse flag on its own subject withholds
 * the address health holds, once both link the person's NHS number; consent
 * recorded by one holder stays with that holder's subject.
 */
Test(person, flags_count_for_the_person_consent_stays_with_the_holder)
{
	const struct record_type *rt = protocol_record_type(proto, "person");
	struct store_subject	 s;

	three_holders();
	cr_assert_eq(store_begin(st, NULL, 0), 0);
	cr_assert_eq(store_set_flag(st, "POL-1", "domestic_abuse", "police", 100, NULL,
	    0), 0);
	cr_assert_eq(store_add_consent(st, "CSC-1", CONSENT_REFUSED, "*", "*", 0, 0,
	    "social worker", 100, NULL, 0), 0);
	cr_assert_eq(store_commit(st, NULL, 0), 0);

	cr_assert_eq(store_subject(st, rt, "HLT-1", "police", "child_protection", &s,
	    NULL, 0), 0);
	cr_expect_eq(s.view.nflags, 0, "POL-1 is not yet the same person");
	cr_expect_eq(s.view.consent, CONSENT_NONE, "CSC-1's refusal is not health's");
	store_subject_free(&s);

	cr_assert_eq(store_begin(st, NULL, 0), 0);
	cr_assert_eq(person_link_nhs(st, "POL-1", "9434765919", perr, sizeof(perr)), 1);
	cr_assert_eq(store_commit(st, NULL, 0), 0);
	cr_assert_eq(store_subject(st, rt, "HLT-1", "housing", "adult_safeguarding", &s,
	    NULL, 0), 0);
	cr_assert_eq(s.view.nflags, 1, "the police's flag counts at health");
	cr_expect_str_eq(s.view.flags[0], "domestic_abuse");
	cr_expect_eq(s.view.consent, CONSENT_NONE, "consent stays per holder");
	store_subject_free(&s);
	cr_assert_eq(store_subject(st, rt, "CSC-1", "housing", "adult_safeguarding", &s,
	    NULL, 0), 0);
	cr_expect_eq(s.view.consent, CONSENT_REFUSED);
	cr_expect_eq(s.view.nflags, 1);
	store_subject_free(&s);

	/* Unlinked again, the flag stays with the police's subject only. */
	cr_assert_eq(store_begin(st, NULL, 0), 0);
	cr_assert_eq(person_unlink_nhs(st, "POL-1", perr, sizeof(perr)), 1);
	cr_assert_eq(store_commit(st, NULL, 0), 0);
	cr_assert_eq(store_subject(st, rt, "HLT-1", "housing", "adult_safeguarding", &s,
	    NULL, 0), 0);
	cr_expect_eq(s.view.nflags, 0);
	store_subject_free(&s);
}

/*
 * D12, D18, issue 13: the store reads a person's flags by the person its
 * record row names, and a flag set by two holders of the same person
 * counts once; one holder removing its flag leaves the other's in force,
 * and a flag on a subject of another person never counts.
 */
Test(person, a_flag_two_holders_set_counts_once_and_until_both_remove_it)
{
	const struct record_type *rt = protocol_record_type(proto, "person");
	struct store_subject	 s;

	three_holders();
	cr_assert_eq(store_begin(st, perr, sizeof(perr)), 0);
	cr_assert_eq(store_set_flag(st, "CSC-1", "domestic_abuse", "csc", 100,
	    perr, sizeof(perr)), 0);
	cr_assert_eq(store_set_flag(st, "HLT-1", "domestic_abuse", "health", 101,
	    perr, sizeof(perr)), 0);
	cr_assert_eq(store_set_flag(st, "HLT-1", "self_harm", "health", 102,
	    perr, sizeof(perr)), 0);
	cr_assert_eq(store_set_flag(st, "POL-1", "weapons", "police", 103,
	    perr, sizeof(perr)), 0);
	cr_assert_eq(store_commit(st, perr, sizeof(perr)), 0);

	cr_assert_eq(store_subject(st, rt, "CSC-1", "police", "child_protection", &s,
	    perr, sizeof(perr)), 0, "%s", perr);
	cr_expect_eq(s.view.nflags, 2, "domestic_abuse once, and self_harm");
	for (size_t i = 0; i < s.view.nflags; i++)
		cr_expect(strcmp(s.view.flags[i], "domestic_abuse") == 0 ||
		    strcmp(s.view.flags[i], "self_harm") == 0, "%s", s.view.flags[i]);
	store_subject_free(&s);

	cr_assert_eq(store_begin(st, perr, sizeof(perr)), 0);
	cr_assert_eq(store_remove_flag(st, "CSC-1", "domestic_abuse", "csc", 200,
	    perr, sizeof(perr)), 1);
	cr_assert_eq(store_commit(st, perr, sizeof(perr)), 0);
	cr_assert_eq(store_subject(st, rt, "CSC-1", "police", "child_protection", &s,
	    perr, sizeof(perr)), 0, "%s", perr);
	cr_expect_eq(s.view.nflags, 2, "health's domestic_abuse is still in force");
	store_subject_free(&s);

	cr_assert_eq(store_subject(st, rt, "POL-1", "police", "child_protection", &s,
	    perr, sizeof(perr)), 0, "%s", perr);
	cr_assert_eq(s.view.nflags, 1, "POL-1 is a person of its own");
	cr_expect_str_eq(s.view.flags[0], "weapons");
	store_subject_free(&s);
}

static struct match_result
find(const char *nhs, const char *family, const char *given, const char *dob,
    const char *postcode)
{
	struct match_query	 q = { nhs, family, given, dob, postcode };
	struct match_result	 r;

	cr_assert_eq(person_find(st, &q, &r, perr, sizeof(perr)), 0, "%s", perr);
	return r;
}

Test(person, find_by_nhs_number_and_demographics)
{
	struct match_result r;

	three_holders();
	r = find("943 476 5919", NULL, NULL, NULL, NULL);
	cr_expect_eq(r.outcome, MATCH_ONE);
	cr_expect_eq(r.person, person("HLT-1"));
	r = find("9434765918", NULL, NULL, NULL, NULL);
	cr_expect_eq(r.outcome, MATCH_INVALID);
	cr_expect(strstr(r.why, "check digit") != NULL);
	r = find("4010232137", NULL, NULL, NULL, NULL);
	cr_expect_eq(r.outcome, MATCH_NONE);
	cr_expect_eq(r.person, 0);
	/* The police's Amelia links no number: two persons match. */
	r = find(NULL, "HART", "amelia", "2015-03-09", NULL);
	cr_expect_eq(r.outcome, MATCH_AMBIGUOUS);
	cr_expect_eq(r.person, 0, "D18: no hint");
	r = find(NULL, "Hart", "Amelia", "2015-09-03", NULL);
	cr_expect_eq(r.outcome, MATCH_NONE, "day and month swapped");
	r = find(NULL, "Hart", "Amelia", "2015-03-09", "EX1 4QX");
	cr_expect_eq(r.outcome, MATCH_NONE);
	r = find(NULL, "Hart", NULL, "2015-03-09", NULL);
	cr_expect_eq(r.outcome, MATCH_INVALID);

	/* Once the police links the number, one person. */
	cr_assert_eq(store_begin(st, NULL, 0), 0);
	cr_assert_eq(person_link_nhs(st, "POL-1", "9434765919", perr, sizeof(perr)), 1);
	cr_assert_eq(store_commit(st, NULL, 0), 0);
	r = find(NULL, "Hart", "Amelia", "2015-03-09", "ex14qt");
	cr_expect_eq(r.outcome, MATCH_ONE);
	cr_expect_eq(r.person, person("POL-1"));
}

Test(person, details_are_checked)
{
	cr_assert_eq(store_begin(st, NULL, 0), 0);
	put("X-1", "police", "Okafor", "Ada", "1980-06-01", "EX1 1AA");
	cr_expect_eq(person_set_details(st, "X-1", "Okafor", "Ada", "01/06/1980", NULL, perr, sizeof(perr)), -1);
	cr_expect(strstr(perr, "date of birth") != NULL);
	cr_expect_eq(person_set_details(st, "X-1", "-'-", "Ada", NULL, NULL, perr, sizeof(perr)), -1);
	cr_expect_eq(person_set_details(st, "X-1", "Okafor", "Ada", NULL, "EX1", perr, sizeof(perr)), -1);
	store_commit(st, NULL, 0);
}

/* Loads tests/data/store/v6-demo.sql into dbpath as the release before made it. */
static void
old_store(void)
{
	sqlite3	*db;
	size_t	 len;
	char	*sql;

	store_close(st);
	st = NULL;
	t_db_remove(dbpath);
	sql = file_read(SOURCE_DIR "/tests/data/store/v6-demo.sql", 1 << 20, &len, NULL, NULL, 0);
	cr_assert_not_null(sql);
	cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s",
	    sqlite3_errmsg(db));
	sqlite3_close(db);
	free(sql);
}

static char *
one_value(const char *sql)
{
	sqlite3		*db;
	sqlite3_stmt	*q;
	char		*v;

	cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s: %s", sql,
	    sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW, "%s", sql);
	v = xstrdup(sqlite3_column_text(q, 0) ? (const char *)sqlite3_column_text(q, 0) :
	    "NULL");
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

static void
expect_value(const char *sql, const char *want)
{
	char *v = one_value(sql);

	cr_expect_str_eq(v, want, "%s", sql);
	free(v);
}

/*
 * Issue 17: a store made by the release before (schema 6) from
 * config/demo-data.yaml migrates to schema 7 without losing a row; every
 * subject becomes a person of its own, found by the details of its `person`
 * record; today's reads by subject id go on as before.
 */
Test(person, migration_from_version_6_demo_store)
{
	static const char *const tables[] = { "subjects", "records", "record_fields",
	    "consents", "flags", "store_meta", "store_loads", "holder_batches" };
	const struct record_type *rt = protocol_record_type(proto, "person");
	struct store_subject	 s;
	struct match_result	 r;
	char			*before[8], err[256], sql[128];

	old_store();
	expect_value("PRAGMA user_version", "6");
	for (size_t i = 0; i < 8; i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tables[i]);
		before[i] = one_value(sql);
	}
	cr_assert_str_eq(before[0], "5", "the demo data's five subjects");
	cr_assert_eq(store_open(&st, dbpath, err, sizeof(err)), 0, "%s", err);

	expect_value("PRAGMA user_version", "8");	/* 7, then 8's indexes */
	for (size_t i = 0; i < 8; i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tables[i]);
		expect_value(sql, before[i]);
		free(before[i]);
	}
	expect_value("SELECT count(*) FROM persons", "5");
	expect_value("SELECT count(DISTINCT person) FROM subjects", "5");
	expect_value("SELECT count(*) FROM subjects WHERE nhs_number IS NOT NULL", "0");
	expect_value("SELECT family || '|' || given || '|' || dob || '|' || postcode "
	    "|| '|' || family_key FROM subjects WHERE id = 'S1001'",
	    "Hart|Amelia|2015-03-09|EX1 4QT|hart");
	expect_value("SELECT family_key FROM subjects WHERE id = 'S1005'", "oneill");

	cr_assert_eq(store_subject(st, rt, "S1003", "police", "child_protection", &s,
	    NULL, 0), 0);
	cr_expect(s.view.known);
	cr_expect_eq(s.view.nflags, 1, "S1003's flag survives");
	cr_expect_eq(s.view.consent, CONSENT_NONE, "granted only to health and housing");
	store_subject_free(&s);
	cr_assert_eq(store_subject(st, rt, "S1002", "police", "adult_safeguarding", &s,
	    NULL, 0), 0);
	cr_expect_eq(s.view.consent, CONSENT_REFUSED);
	store_subject_free(&s);

	r = find(NULL, "o'neill", "MARGARET", "1939-04-02", NULL);
	cr_expect_eq(r.outcome, MATCH_ONE);
	cr_expect_eq(r.person, person("S1005"));
	r = find(NULL, "Shah", "Priya", "1991-07-21", "EX3 9RR");
	cr_expect_eq(r.person, person("S1003"));

	/* A new subject after the migration is a person of its own too. */
	cr_assert_eq(store_begin(st, NULL, 0), 0);
	put("N-1", "police", "Hart", "Amelia", "2015-03-09", "EX1 4QT");
	cr_assert_eq(store_commit(st, NULL, 0), 0);
	cr_expect_neq(person("N-1"), person("S1001"));
	r = find(NULL, "Hart", "Amelia", "2015-03-09", NULL);
	cr_expect_eq(r.outcome, MATCH_AMBIGUOUS);
}

static int
load_text(const char *text, struct diag *d)
{
	char	 path[300];
	FILE	*f;
	int	 rc;

	snprintf(path, sizeof(path), "%s.yaml", dbpath);
	cr_assert_not_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
	rc = t_load_yaml(st, proto, path, 100, d);
	unlink(path);
	return rc;
}

static const char two_holders_yaml[] =
	"subjects:\n"
	"  - id: CSC-9\n"
	"    holder: childrens_social_care\n"
	"    nhs_number: \"943 476 5919\"\n"
	"    records:\n"
	"      person:\n"
	"        verified: 2026-10-02\n"
	"        fields: {full_name: \"Amelia Rose Hart\", date_of_birth: \"2015-03-09\"}\n"
	"  - id: HLT-9\n"
	"    holder: health_trust\n"
	"    nhs_number: \"9434765919\"\n"
	"    details: {family_name: Hart, given_name: Amelia, date_of_birth: 2015-03-09,\n"
	"      postcode: EX1 4QT}\n"
	"    records:\n"
	"      person:\n"
	"        verified: 2026-10-02\n"
	"        fields: {full_name: \"Amelia Hart\", date_of_birth: \"2015-03-09\"}\n";

/* A data file's subjects link NHS numbers; details default to the person record's. */
Test(person, data_file_links_nhs_numbers)
{
	struct diag		 d = { 0 };
	struct match_result	 r;

	cr_assert_eq(load_text(two_holders_yaml, &d), 0);
	diag_free(&d);
	cr_expect_eq(person("CSC-9"), person("HLT-9"));
	r = find(NULL, "Hart", "Amelia Rose", "2015-03-09", NULL);
	cr_expect_eq(r.outcome, MATCH_ONE, "given names from full_name's first words");
	r = find(NULL, "Hart", "Amelia", "2015-03-09", "EX1 4QT");
	cr_expect_eq(r.outcome, MATCH_ONE, "the explicit details");
	cr_expect_eq(r.person, person("CSC-9"));
}

/* A bad NHS number is reported at its line and nothing is loaded. */
Test(person, data_file_bad_nhs_number_loads_nothing)
{
	struct diag	 d = { 0 };
	char		 bad[sizeof(two_holders_yaml)];
	char		*p;
	int64_t		 x;

	memcpy(bad, two_holders_yaml, sizeof(bad));
	cr_assert_not_null(p = strstr(bad, "9434765919"));
	p[9] = '8';
	cr_assert_eq(load_text(bad, &d), -1);
	cr_assert_eq(d.nerrors, 1);
	cr_expect(strstr(d.msgs[0], ":11:") != NULL && strstr(d.msgs[0],
	    "check digit") != NULL, "%s", d.msgs[0]);
	diag_free(&d);
	cr_expect_eq(person_of(st, "CSC-9", &x, perr, sizeof(perr)), 0, "all or nothing");
}

/*
 * A write refused by the database says why in the caller's err (issue 16
 * item 5; docs/hacking.md "Errors"): here another connection holds the
 * write lock, and this one does not wait for it.
 */
Test(person, refused_write_reports_into_err)
{
	sqlite3	*other;
	char	 err[256] = "";

	three_holders();
	cr_assert_eq(sqlite3_open(dbpath, &other), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK, "%s", sqlite3_errmsg(other));
	sqlite3_busy_timeout(store_db(st), 0);
	cr_expect_eq(person_link_nhs(st, "POL-1", "9434765919", err, sizeof(err)),
	    -1, "the write lock is the other connection's");
	cr_expect_str_eq(err, "nhs_number: database is locked");
	sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(other);
	sqlite3_busy_timeout(store_db(st), DB_BUSY_MS);
	cr_expect_eq(person_link_nhs(st, "POL-1", "9434765919", err, sizeof(err)),
	    1, "%s", err);
}
