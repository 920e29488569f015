/* The record store: records, consent scope and history, flags, all-or-nothing loads. */
#include <criterion/criterion.h>
#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "testutil.h"
#include "util.h"
#include "yamlutil.h"

static char		 dbpath[256];
static struct store	*st;
static struct protocol	*proto;

T_STORE_SUITE(store, dbpath, st, proto);

/* Reads the demo subject S1001 and checks its person record. */
static void
read_s1001(const struct record_type *rt, struct store_subject *s)
{
	size_t idx;

	cr_assert_eq(store_subject(st, rt, "S1001", "police", "child_protection", s,
	    NULL, 0), 0);
	cr_expect(s->view.known);
	record_type_field(rt, "full_name", &idx);
	cr_expect_str_eq(s->values[idx], "Amelia Hart");
	cr_expect_str_eq(s->holder, "childrens_social_care");
}

Test(store, record_values_by_field)
{
	struct store_subject	 s;
	const struct record_type *rt = protocol_record_type(proto, "person");

	t_load_demo(st, proto);
	read_s1001(rt, &s);
	cr_expect_gt(s.view.last_verified, 0, "D9");
	cr_expect_eq(s.view.consent, CONSENT_NONE);
	store_subject_free(&s);

	cr_assert_eq(store_subject(st, rt, "NOPE", "police", "child_protection", &s,
	    NULL, 0), 0);
	cr_expect_not(s.view.known);
	store_subject_free(&s);
}

Test(store, consent_scope_and_latest_wins)
{
	struct store_subject	 s;
	const struct record_type *rt = protocol_record_type(proto, "person");

	t_load_demo(st, proto);
	/* S1003 granted consent to health_trust and housing only (D3). */
	cr_assert_eq(store_subject(st, rt, "S1003", "housing", "housing_support", &s,
	    NULL, 0), 0);
	cr_expect_eq(s.view.consent, CONSENT_GRANTED);
	cr_expect_gt(s.view.consent_expires, 0);
	store_subject_free(&s);
	cr_assert_eq(store_subject(st, rt, "S1003", "police", "housing_support", &s,
	    NULL, 0), 0);
	cr_expect_eq(s.view.consent, CONSENT_NONE, "out of scope is no consent");
	store_subject_free(&s);

	/* A later withdrawal wins; the grant stays in the history. */
	cr_assert_eq(store_add_consent(st, "S1003", CONSENT_WITHDRAWN, "*", "*", 0, 0, "x", 200,
	    NULL, 0), 0);
	cr_assert_eq(store_subject(st, rt, "S1003", "housing", "housing_support", &s,
	    NULL, 0), 0);
	cr_expect_eq(s.view.consent, CONSENT_WITHDRAWN);
	store_subject_free(&s);
}

Test(store, flags)
{
	struct store_subject	 s;
	const struct record_type *rt = protocol_record_type(proto, "person");

	t_load_demo(st, proto);
	cr_assert_eq(store_subject(st, rt, "S1003", "police", "child_protection", &s,
	    NULL, 0), 0);
	cr_assert_eq(s.view.nflags, 1);
	cr_expect_str_eq(s.view.flags[0], "domestic_abuse");
	store_subject_free(&s);
}

Test(store, bad_data_file_loads_nothing)
{
	struct diag		 d = { 0 };
	struct store_subject	 s;
	const struct record_type *rt = protocol_record_type(proto, "person");
	char			 bad[300];
	FILE			*fp;
	int			 found = 0;

	snprintf(bad, sizeof(bad), "%s.yaml", dbpath);
	fp = fopen(bad, "w");
	fputs("subjects:\n"
	    "  - id: X1\n    holder: health_trust\n    records:\n      person:\n"
	    "        verified: 2026-01-01\n        fields: {full_name: \"Ok Person\"}\n"
	    "  - id: X2\n    holder: health_trust\n    records:\n      person:\n"
	    "        verified: 2026-01-01\n        fields: {full_nme: \"Typo\"}\n"
	    "  - id: X3\n    holder: health_trust\n    records:\n      person:\n"
	    "        verified: 2026-01-01\n        fields: {full_name: \"Ann\", "
	    "postcode: \"nowhere\"}\n", fp);
	fclose(fp);
	cr_expect_eq(t_load_yaml(st, proto, bad, 100, &d), -1);
	for (size_t i = 0; i < d.n; i++) {
		found |= strstr(d.msgs[i], ":13:18: record type \"person\" has no field "
		    "\"full_nme\"") != NULL;
		/* Values are checked by type, like holders' writes. */
		found |= (strstr(d.msgs[i], ":19:46: ") != NULL && strstr(d.msgs[i],
		    "postcode: value is not a UK postcode (type postcode)") != NULL) << 1;
	}
	diag_print(&d, stderr);
	cr_expect(found & 1, "names the file, line and column");
	cr_expect(found & 2, "a bad value is named with its line");
	cr_assert_eq(store_subject(st, rt, "X1", "police", "child_protection", &s,
	    NULL, 0), 0);
	cr_expect_not(s.view.known, "all or nothing: the good subject was not kept");
	store_subject_free(&s);
	unlink(bad);
	diag_free(&d);
}

/*
 * Issue 15: a consent decision can carry the day it was made (an import of
 * history), never in the future; the history keeps it.
 */
Test(store, consent_decided_date_kept_and_not_in_the_future)
{
	struct diag		 d = { 0 };
	char			 path[300];
	FILE			*fp;
	sqlite3			*db;
	sqlite3_stmt		*q;
	int64_t			 day, now;
	int			 found = 0;

	cr_assert_eq(date_parse("2026-11-25", &now), 0);
	snprintf(path, sizeof(path), "%s.yaml", dbpath);
	fp = fopen(path, "w");
	fputs("subjects:\n"
	    "  - id: X1\n    holder: health_trust\n    records:\n      person:\n"
	    "        verified: 2026-01-01\n        fields: {full_name: \"Ok Person\"}\n"
	    "    consent:\n"
	    "      - { state: granted, decided: 2026-11-26 }\n", fp);
	fclose(fp);
	cr_expect_eq(t_load_yaml(st, proto, path, now, &d), -1);
	for (size_t i = 0; i < d.n; i++)
		found |= strstr(d.msgs[i], ":9:36: decided: a date in the future") != NULL;
	diag_print(&d, stderr);
	cr_expect(found, "the future date is named with its line and column");
	diag_free(&d);

	fp = fopen(path, "w");
	fputs("subjects:\n"
	    "  - id: X1\n    holder: health_trust\n    records:\n      person:\n"
	    "        verified: 2026-01-01\n        fields: {full_name: \"Ok Person\"}\n"
	    "    consent:\n"
	    "      - { state: refused, decided: 2019-04-01 }\n"
	    "      - { state: granted, decided: 2026-11-25 }\n", fp);
	fclose(fp);
	memset(&d, 0, sizeof(d));
	cr_expect_eq(t_load_yaml(st, proto, path, now, &d), 0);
	diag_print(&d, stderr);
	diag_free(&d);
	unlink(path);

	cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT decided_at, recorded_at FROM "
	    "consents WHERE subject = 'X1' ORDER BY id", -1, &q, NULL), SQLITE_OK);
	cr_assert_eq(date_parse("2019-04-01", &day), 0);
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	cr_expect_eq(sqlite3_column_int64(q, 0), day, "the day it was decided");
	cr_expect_eq(sqlite3_column_int64(q, 1), now, "and when it was recorded");
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	cr_assert_eq(date_parse("2026-11-25", &day), 0);
	cr_expect_eq(sqlite3_column_int64(q, 0), day, "today is not the future");
	sqlite3_finalize(q);
	sqlite3_close(db);
}

Test(store, schema_version_recorded)
{
	char		 err[256];
	struct store	*again;

	store_close(st);
	cr_assert_eq(store_open(&again, dbpath, err, sizeof(err)), 0, "reopen migrates nothing");
	st = again;
}

static enum consent_state
consent_of(struct store *s, const char *subject)
{
	struct store_subject	 v;
	enum consent_state	 c;
	char			 err[256];

	cr_assert_eq(store_subject(s, protocol_record_type(proto, "person"), subject,
	    "housing", "housing_support", &v, err, sizeof(err)), 0, "%s", err);
	c = v.view.consent;
	store_subject_free(&v);
	return c;
}

/*
 * A read scope is one snapshot (the daemon opens one per event-loop round);
 * it ends at store_read_end() or at this connection's next write, so a
 * withdrawal is seen by every read after it (D3).
 */
Test(store, read_scope_is_one_snapshot_until_it_ends)
{
	struct store	*other;
	char		 err[256];

	t_load_demo(st, proto);
	cr_assert_eq(store_open(&other, dbpath, err, sizeof(err)), 0, "%s", err);
	store_read_begin(st);
	cr_expect_eq(consent_of(st, "S1003"), CONSENT_GRANTED);
	cr_assert_eq(store_add_consent(other, "S1003", CONSENT_WITHDRAWN, "*", "*", 0,
	    0, "x", 200, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(consent_of(st, "S1003"), CONSENT_GRANTED, "the scope's snapshot");
	cr_expect_eq(consent_of(other, "S1003"), CONSENT_WITHDRAWN);
	store_read_end(st);
	cr_expect_eq(consent_of(st, "S1003"), CONSENT_WITHDRAWN, "a new snapshot");

	/* A write on the scope's own connection ends the scope first. */
	store_read_begin(st);
	cr_expect_eq(consent_of(st, "S1003"), CONSENT_WITHDRAWN);
	cr_assert_eq(store_begin(st, err, sizeof(err)), 0, "a write inside a scope: %s",
	    err);
	cr_assert_eq(store_add_consent(st, "S1003", CONSENT_GRANTED, "*", "*", 0,
	    0, "x", 300, NULL, 0), 0);
	cr_assert_eq(store_commit(st, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(consent_of(st, "S1003"), CONSENT_GRANTED);
	cr_expect_eq(consent_of(other, "S1003"), CONSENT_GRANTED, "committed");
	store_read_end(st);
	store_read_end(st);	/* ending no scope is harmless */
	store_close(other);
}

/*
 * Migrations 3 (WITHOUT ROWID records and fields, a flag index), 4
 * (consents.decided_at), 5 (a store id), 6 (the log it is used with,
 * issue 13 item 5) and 7 (persons, issue 17; test_person checks it in
 * detail) keep every row.
 */
Test(store, migration_from_version_2_keeps_every_row)
{
	const struct record_type *rt = protocol_record_type(proto, "person");
	struct store_subject	 s;
	sqlite3			*db;
	size_t			 len;
	char			*sql, err[256];

	store_close(st);
	t_db_remove(dbpath);
	sql = file_read(SOURCE_DIR "/tests/data/store/v2.sql", 1 << 20, &len, NULL, NULL, 0);
	cr_assert_not_null(sql);
	cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s",
	    sqlite3_errmsg(db));
	sqlite3_close(db);
	free(sql);
	{
		unsigned char	 id[16];
		uint64_t	 size;

		cr_expect_eq(store_log_memory(dbpath, id, &size, err, sizeof(err)), 0,
		    "a store from before migration 6 remembers no log: %s", err);
	}

	cr_assert_eq(store_open(&st, dbpath, err, sizeof(err)), 0, "%s", err);
	read_s1001(rt, &s);
	cr_expect_eq(s.view.nflags, 0, "a removed flag stays removed (D12)");
	store_subject_free(&s);
	cr_assert_eq(store_subject(st, rt, "S1003", "police", "child_protection", &s,
	    NULL, 0), 0);
	cr_assert_eq(s.view.nflags, 1, "two active rows of one flag are one flag");
	cr_expect_str_eq(s.view.flags[0], "domestic_abuse");
	store_subject_free(&s);
	cr_expect_eq(consent_of(st, "S1003"), CONSENT_GRANTED);

	cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	{
		static const char *const counts[][2] = {
			{ "SELECT count(*) FROM records", "7" },
			{ "SELECT count(*) FROM record_fields", "37" },
			{ "SELECT count(*) FROM consents", "3" },
			{ "SELECT count(*) FROM flags", "4" },
			{ "PRAGMA user_version", "8" },
			/*
			 * Migration 8 (issue 13): the subject row and a person's
			 * subjects a disclosure reads, from covering indexes.
			 */
			{ "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND "
			    "name IN ('subjects_read', 'subjects_person_id')", "2" },
			/* Migration 7: each subject a person of its own. */
			{ "SELECT count(DISTINCT person) FROM subjects", "5" },
			/* Migration 4: consents gain decided_at, unknown for old rows. */
			{ "SELECT count(*) FROM consents WHERE decided_at IS NULL", "3" },
			/* Migration 5: an id, and created_at 0 (made before ids). */
			{ "SELECT length(value) FROM store_meta WHERE key = 'store_id'", "32" },
			{ "SELECT value FROM store_meta WHERE key = 'created_at'", "0" },
			{ "SELECT count(*) FROM sqlite_schema WHERE name LIKE '%_v3'", "0" },
			/* Migration 6: no log remembered until the daemon starts. */
			{ "SELECT count(*) FROM store_log", "0" },
		};

		for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
			sqlite3_stmt *q;

			cr_assert_eq(sqlite3_prepare_v2(db, counts[i][0], -1, &q, NULL),
			    SQLITE_OK);
			cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
			cr_expect_str_eq((const char *)sqlite3_column_text(q, 0),
			    counts[i][1], "%s", counts[i][0]);
			sqlite3_finalize(q);
		}
	}
	sqlite3_close(db);
}

static int
stop_record(void *arg, const char *type, int64_t verified_at)
{
	(void)arg;
	(void)type;
	(void)verified_at;
	return -1;
}

/* Issue 16 item 5: store_show() says why it stopped in the caller's err. */
Test(store, show_stopped_by_the_caller_says_so_in_err)
{
	static const struct store_show_cb cb = { stop_record, NULL, NULL, NULL };
	char err[256] = "";

	t_load_demo(st, proto);
	cr_expect_eq(store_show(st, "S1001", 10, &cb, NULL, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "show: stopped by the caller");
}

/*
 * Issue 16 item 5: the store reports into the caller's err/errlen
 * (docs/hacking.md "Errors"). The periodic note gives up at once when
 * another writer holds the lock, and says so in err.
 */
Test(store, a_failed_log_note_says_why_in_err)
{
	unsigned char	 a[16];
	sqlite3		*other;
	char		 err[256] = "";

	memset(a, 0xaa, sizeof(a));
	cr_assert_eq(sqlite3_open(dbpath, &other), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK);
	cr_expect_eq(store_remember_log(st, a, 5, 0, err, sizeof(err)), -1);
	cr_expect(strncmp(err, "store_log: ", 11) == 0 && strstr(err, "locked"),
	    "%s", err);
	sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(other);
	cr_expect_eq(store_remember_log(st, a, 5, 1, err, sizeof(err)), 0, "%s",
	    err);
}

/*
 * Issue 13 item 5: the store remembers the log it is used with and the
 * largest size seen; the size never goes down for the same log, and a
 * new log (a start with -N) replaces the memory. Read read-only by path.
 */
Test(store, remembers_its_log_and_the_largest_size_seen)
{
	unsigned char	 a[16], b[16], id[16];
	uint64_t	 size = 0;
	char		 err[256];

	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	cr_expect_eq(store_log_memory(dbpath, id, &size, err, sizeof(err)), 0,
	    "a new store remembers no log: %s", err);
	cr_expect_eq(store_log_memory("/nonexistent/store.db", id, &size, err,
	    sizeof(err)), 0, "no store, no memory");

	cr_assert_eq(store_remember_log(st, a, 10, 1, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_log_memory(dbpath, id, &size, err, sizeof(err)), 1, "%s", err);
	cr_expect_eq(memcmp(id, a, 16), 0);
	cr_expect_eq(size, 10);

	cr_assert_eq(store_remember_log(st, a, 25, 0, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_remember_log(st, a, 7, 1, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_log_memory(dbpath, id, &size, err, sizeof(err)), 1, "%s", err);
	cr_expect_eq(size, 25, "a high-water mark: a smaller size is not taken");

	cr_assert_eq(store_remember_log(st, b, 0, 1, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_log_memory(dbpath, id, &size, err, sizeof(err)), 1, "%s", err);
	cr_expect_eq(memcmp(id, b, 16), 0, "another log replaces the memory");
	cr_expect_eq(size, 0);
}

/*
 * Issue 16 item 5: the holder writes report into the caller's err
 * (docs/hacking.md "Errors", convention 1), "what: why", as the holder API's
 * error body and the import report show them. Each write below is refused
 * by the store itself, not by a caller's check.
 */
Test(store, refused_writes_say_why_in_err)
{
	const char	*names[] = { "full_name" }, *values[] = { "Amelia Hart" };
	char		 err[256];

	t_load_demo(st, proto);
	err[0] = '\0';
	cr_assert_eq(store_commit(st, err, sizeof(err)), -1, "no transaction");
	cr_expect(strncmp(err, "commit: ", 8) == 0 && strstr(err, "no transaction"),
	    "%s", err);

	cr_assert_eq(store_begin(st, err, sizeof(err)), 0, "%s", err);
	err[0] = '\0';
	cr_expect_eq(store_begin(st, err, sizeof(err)), -1, "a transaction in one");
	cr_expect(strncmp(err, "begin: ", 7) == 0 && strstr(err, "within a transaction"),
	    "%s", err);

	err[0] = '\0';
	cr_expect_eq(store_add_consent(st, "S1001", CONSENT_NONE, "*", "*", 0, 0, "x",
	    200, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "consent state must be granted, refused or withdrawn");

	err[0] = '\0';
	cr_expect_eq(store_add_consent(st, "S1001", CONSENT_GRANTED, "*", "*", 0, 0,
	    NULL, 200, err, sizeof(err)), -1, "recorded_by is NOT NULL");
	cr_expect_str_eq(err, "consent: NOT NULL constraint failed: consents.recorded_by");

	err[0] = '\0';
	cr_expect_eq(store_set_flag(st, "S1001", NULL, "x", 200, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "flag: NOT NULL constraint failed: flags.flag");

	err[0] = '\0';
	cr_expect_eq(store_put_record(st, "NEW-1", "person", NULL, 100, names, values,
	    1, err, sizeof(err)), -1, "a new subject needs a holder");
	cr_expect_str_eq(err, "subject: NOT NULL constraint failed: subjects.holder");

	cr_assert_eq(store_mark_batch(st, "req-1", 1, 200, err, sizeof(err)), 0, "%s",
	    err);
	err[0] = '\0';
	cr_expect_eq(store_mark_batch(st, "req-1", 2, 200, err, sizeof(err)), -1,
	    "a batch is applied once");
	cr_expect_str_eq(err, "batch: UNIQUE constraint failed: holder_batches.request_id");
	cr_expect_eq(store_batch_applied(st, "req-1", err, sizeof(err)), 1, "%s", err);
	cr_expect_eq(store_batch_applied(st, "req-2", err, sizeof(err)), 0, "%s", err);
	store_rollback(st);
}

/*
 * The holder checks and the writes that read first say why a read failed:
 * here the tables went from under the open store (another program).
 */
Test(store, failed_checks_say_why_in_err)
{
	const char	*names[] = { "full_name" }, *values[] = { "Amelia Hart" };
	char		 holder[64], err[256];
	sqlite3		*other;

	t_load_demo(st, proto);
	cr_assert_eq(sqlite3_open(dbpath, &other), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(other, "DROP TABLE consents; DROP TABLE flags; "
	    "DROP TABLE record_fields; DROP TABLE records; DROP TABLE subjects; "
	    "DROP TABLE holder_batches",
	    NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(other));
	sqlite3_close(other);

	err[0] = '\0';
	cr_expect_eq(store_subject_holder(st, "S1001", holder, sizeof(holder), err,
	    sizeof(err)), -1);
	cr_expect_str_eq(err, "subject: no such table: subjects");
	err[0] = '\0';
	cr_expect_eq(store_flag_active(st, "S1001", "domestic_abuse", err,
	    sizeof(err)), -1);
	cr_expect_str_eq(err, "flag: no such table: flags");
	err[0] = '\0';
	cr_expect_eq(store_consent_same(st, "S1001", CONSENT_GRANTED, "*", "*", 0, 0,
	    err, sizeof(err)), -1);
	cr_expect_str_eq(err, "consent: no such table: consents");
	err[0] = '\0';
	cr_expect_eq(store_record_same(st, "S1001", "person", "childrens_social_care",
	    100, 0, names, values, 1, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "record: no such table: records");
	err[0] = '\0';
	cr_expect_eq(store_batch_applied(st, "req-1", err, sizeof(err)), -1);
	cr_expect_str_eq(err, "batch: no such table: holder_batches");

	cr_assert_eq(store_begin(st, err, sizeof(err)), 0, "%s", err);
	err[0] = '\0';
	cr_expect_eq(store_delete_record(st, "S1001", "person", err, sizeof(err)), -1);
	cr_expect_str_eq(err, "record: no such table: records");
	err[0] = '\0';
	cr_expect_eq(store_remove_flag(st, "S1001", "domestic_abuse", "x", 200, err,
	    sizeof(err)), -1);
	cr_expect_str_eq(err, "flag: no such table: flags");
	store_rollback(st);
}

/*
 * store_open() and its migrations say why a file is refused, with the
 * path first (`safeshared -l` and the daemon print it as it is).
 */
Test(store, refused_opens_say_why_in_err)
{
	struct store	*s = NULL;
	sqlite3		*db;
	char		 path[300], want[600], err[256];
	FILE		*f;

	snprintf(path, sizeof(path), "%s.other", dbpath);
	t_db_remove(path);
	cr_assert_not_null(f = fopen(path, "w"));
	fputs("not a database, but long enough to have a header page of its own\n"
	    "not a database, but long enough to have a header page of its own\n", f);
	fclose(f);
	err[0] = '\0';
	cr_expect_eq(store_open(&s, path, err, sizeof(err)), -1);
	cr_expect_null(s);
	snprintf(want, sizeof(want), "%s: pragma: file is not a database", path);
	cr_expect_str_eq(err, want);
	t_db_remove(path);

	/* A store a newer program made. */
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	err[0] = '\0';
	cr_expect_eq(store_open(&s, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: store schema version 99 is newer than this "
	    "program (%d)", path, 8);
	cr_expect_str_eq(err, want);
	t_db_remove(path);

	/* A migration that cannot run: version 2 without its tables. */
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 2", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	err[0] = '\0';
	cr_expect_eq(store_open(&s, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: migration: no such table: records", path);
	cr_expect_str_eq(err, want);
	t_db_remove(path);
}
