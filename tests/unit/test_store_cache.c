/*
 * The store's subject-read cache (src/store_cache.c): a read answered from
 * it is what the database holds at that read's snapshot, whoever changed
 * the database since, and strings lent to a request outlive the entry's
 * place in the cache.
 */
#include <criterion/criterion.h>
#include <sqlite3.h>

#include <stdio.h>
#include <string.h>

#include "store.h"
#include "testutil.h"

static char		 dbpath[256];
static struct store	*st;
static struct protocol	*proto;

T_STORE_SUITE(store_cache, dbpath, st, proto);

/* S1001's person record as police asks for it, in one read transaction. */
static void
read_s1001(struct store *s, struct store_subject *out)
{
	const struct record_type *rt = protocol_record_type(proto, "person");

	cr_assert_eq(store_subject(s, rt, "S1001", "police", "child_protection",
	    out, NULL, 0), 0);
	cr_assert(out->view.known);
}

static const char *
full_name(const struct store_subject *s)
{
	const struct record_type *rt = protocol_record_type(proto, "person");
	size_t idx;

	cr_assert_not_null(record_type_field(rt, "full_name", &idx));
	return s->values[idx];
}

/* Another process's change, through a connection of its own. */
static void
rename_s1001(const char *name)
{
	sqlite3	*db;
	char	 sql[256];

	snprintf(sql, sizeof(sql), "UPDATE record_fields SET value = '%s' WHERE "
	    "subject = 'S1001' AND field = 'full_name'", name);
	cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s",
	    sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_changes(db), 1);
	sqlite3_close(db);
}

Test(store_cache, a_second_read_is_a_hit)
{
	struct store_subject		 a, b;
	struct store_cache_stats	 cs0, cs;

	t_load_demo(st, proto);
	store_cache_stats(st, &cs0);
	read_s1001(st, &a);
	read_s1001(st, &b);
	store_cache_stats(st, &cs);
	cr_expect_eq(cs.misses, cs0.misses + 1);
	cr_expect_eq(cs.hits, cs0.hits + 1);
	cr_expect_geq(cs.entries, 1);
	cr_expect_str_eq(full_name(&a), "Amelia Hart");
	cr_expect_str_eq(full_name(&b), "Amelia Hart");
	cr_expect_str_eq(b.holder, "childrens_social_care");
	store_subject_free(&a);
	store_subject_free(&b);
}

/* PRAGMA data_version: another connection's commit empties the cache. */
Test(store_cache, another_connections_write_is_seen)
{
	struct store_subject		 s;
	struct store_cache_stats	 cs0, cs;

	t_load_demo(st, proto);
	read_s1001(st, &s);
	store_subject_free(&s);
	store_cache_stats(st, &cs0);
	rename_s1001("Amelia Renamed");
	read_s1001(st, &s);
	cr_expect_str_eq(full_name(&s), "Amelia Renamed", "not the cached name");
	store_subject_free(&s);
	store_cache_stats(st, &cs);
	cr_expect_eq(cs.flushes, cs0.flushes + 1);
	cr_expect_eq(cs.hits, cs0.hits);
}

/*
 * The connection's own writes leave data_version alone: its change count
 * empties the cache. A consent withdrawn (D3) and a flag set (D12) count
 * from the next read.
 */
Test(store_cache, own_writes_are_seen)
{
	const struct record_type *rt = protocol_record_type(proto, "person");
	struct store_subject	 s;
	char			 err[256];

	t_load_demo(st, proto);
	cr_assert_eq(store_subject(st, rt, "S1003", "housing", "housing_support",
	    &s, NULL, 0), 0);
	cr_expect_eq(s.view.consent, CONSENT_GRANTED);
	store_subject_free(&s);
	cr_assert_eq(store_add_consent(st, "S1003", CONSENT_WITHDRAWN, "*", "*", 0,
	    0, "x", 200, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_subject(st, rt, "S1003", "housing", "housing_support",
	    &s, NULL, 0), 0);
	cr_expect_eq(s.view.consent, CONSENT_WITHDRAWN, "D3: not the cached grant");
	store_subject_free(&s);

	read_s1001(st, &s);
	cr_expect_eq(s.view.nflags, 0);
	store_subject_free(&s);
	cr_assert_eq(store_set_flag(st, "S1001", "domestic_abuse", "police", 300,
	    err, sizeof(err)), 0, "%s", err);
	read_s1001(st, &s);
	cr_assert_eq(s.view.nflags, 1, "D12: the new flag");
	cr_expect_str_eq(s.view.flags[0], "domestic_abuse");
	store_subject_free(&s);
}

/*
 * Inside a write transaction nothing is read from or kept in the cache: a
 * value written and rolled back is never served afterwards.
 */
Test(store_cache, a_rolled_back_write_is_never_served)
{
	const struct record_type *rt = protocol_record_type(proto, "person");
	const char		*names[] = { "full_name" };
	const char		*values[] = { "Not Committed" };
	struct store_subject	 s;
	char			 err[256];

	t_load_demo(st, proto);
	read_s1001(st, &s);
	store_subject_free(&s);
	cr_assert_eq(store_begin(st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_put_record(st, "S1001", rt->id, "childrens_social_care",
	    400, names, values, 1, err, sizeof(err)), 0, "%s", err);
	read_s1001(st, &s);
	cr_expect_str_eq(full_name(&s), "Not Committed", "the transaction's own");
	store_subject_free(&s);
	store_rollback(st);
	read_s1001(st, &s);
	cr_expect_str_eq(full_name(&s), "Amelia Hart");
	store_subject_free(&s);
}

/*
 * A request holds what it read while its log entry is written; the entry
 * dropped from the cache meanwhile stays alive (ASan checks) and keeps
 * that snapshot's values.
 */
Test(store_cache, lent_strings_outlive_a_flush)
{
	struct store_subject held, s;

	t_load_demo(st, proto);
	read_s1001(st, &held);
	rename_s1001("Amelia Later");
	read_s1001(st, &s);
	cr_expect_str_eq(full_name(&s), "Amelia Later");
	cr_expect_str_eq(full_name(&held), "Amelia Hart");
	cr_expect_str_eq(held.holder, "childrens_social_care");
	store_subject_free(&s);
	store_subject_free(&held);
}

/* An unknown subject is cached as unknown, and learns of its record. */
Test(store_cache, an_unknown_subject_then_its_record)
{
	const struct record_type *rt = protocol_record_type(proto, "person");
	const char		*names[] = { "full_name" };
	const char		*values[] = { "New Person" };
	struct store_subject	 s;
	char			 err[256];

	t_load_demo(st, proto);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(store_subject(st, rt, "S9999", "police",
		    "child_protection", &s, NULL, 0), 0);
		cr_expect_not(s.view.known);
		cr_expect_null(s.holder);
		store_subject_free(&s);
	}
	cr_assert_eq(store_begin(st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_put_record(st, "S9999", rt->id, "police", 500, names,
	    values, 1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_commit(st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_subject(st, rt, "S9999", "police", "child_protection",
	    &s, NULL, 0), 0);
	cr_expect(s.view.known);
	cr_expect_str_eq(full_name(&s), "New Person");
	store_subject_free(&s);
}
