/*
 * The kill -9 test's checks (crash.h): after each restart, and after the
 * clean stop at the end, the log, the store and the clients' files of
 * acknowledgements are read and compared (test_crash.c says what must hold).
 */
#include <criterion/criterion.h>
#include <sqlite3.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash.h"

/* Parent side: reading the databases. */

sqlite3 *
open_ro(const char *path)
{
	sqlite3 *db;

	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK,
	    "%s: %s", path, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/*
 * The first column of the first row of a query built with sqlite3_mprintf
 * (%Q quotes a string) as an integer, or as text into buf when buf is set.
 */
static long long
q_vrow(sqlite3 *db, char *buf, size_t len, const char *fmt, va_list ap)
{
	sqlite3_stmt	*st;
	char		*sql = sqlite3_vmprintf(fmt, ap);
	long long	 v = 0;

	cr_assert_not_null(sql);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s",
	    sql, sqlite3_errmsg(db));
	if (buf != NULL)
		buf[0] = '\0';
	if (sqlite3_step(st) == SQLITE_ROW) {
		v = sqlite3_column_int64(st, 0);
		if (buf != NULL)
			snprintf(buf, len, "%s", sqlite3_column_text(st, 0) ?
			    (const char *)sqlite3_column_text(st, 0) : "");
	}
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return v;
}

long long
q_int(sqlite3 *db, const char *fmt, ...)
{
	va_list		 ap;
	long long	 v;

	va_start(ap, fmt);
	v = q_vrow(db, NULL, 0, fmt, ap);
	va_end(ap);
	return v;
}

static void
q_text(sqlite3 *db, char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	q_vrow(db, buf, len, fmt, ap);
	va_end(ap);
}

/* Fails the test on any "U" line in a round's files. */
void
check_unexpected(int round)
{
	char	 path[600], line[512];
	FILE	*fp;

	for (size_t k = 0; k < NCLIENTS; k++) {
		crash_acks_path(path, sizeof(path), round, k < NITEMS(requesters) ?
		    requesters[k].agency : writers[k - NITEMS(requesters)].tag);
		if ((fp = fopen(path, "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), fp) != NULL)
			if (line[0] == 'U')
				CHECK(0, "round %d: %s", round, line + 2);
		fclose(fp);
	}
}

/* check_log()'s look-up of each acknowledged disclosure in the SQLite log. */
struct lookup {
	sqlite3_stmt	*st;
	int		 round;
	long		 missing, wrong;
	char		 first[512];
};

static void
look_up(const struct crash_ack *a, void *arg)
{
	struct lookup	*lk = arg;
	sqlite3_stmt	*st = lk->st;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)a->seq);
	if (sqlite3_step(st) != SQLITE_ROW) {
		lk->missing++;
		if (lk->first[0] == '\0')
			snprintf(lk->first, sizeof(lk->first), "entry %llu (round %d, "
			    "%s) is not in the log", a->seq, lk->round, a->request_id);
	} else if (strcmp((const char *)sqlite3_column_text(st, 0), a->decision) != 0 ||
	    strcmp((const char *)sqlite3_column_text(st, 1), a->reason) != 0 ||
	    strcmp((const char *)sqlite3_column_text(st, 2), a->request_id) != 0) {
		lk->wrong++;
		if (lk->first[0] == '\0')
			snprintf(lk->first, sizeof(lk->first), "entry %llu says "
			    "%s/%s/%s; the client was told %s/%s/%s", a->seq,
			    sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
			    sqlite3_column_text(st, 2), a->decision, a->reason,
			    a->request_id);
	}
	sqlite3_reset(st);
}

/*
 * The log after rounds 0..last: seq runs 1..N, every acknowledged
 * disclosure is there as told, nothing was logged twice, and at most one
 * unacknowledged entry per requester and kill (its request was in flight).
 */
void
check_log(int last)
{
	sqlite3		*db = open_ro(crash_d.audit);
	struct lookup	 lk = { .first = "" };
	long long	 n, max, min, ours;
	long		 acked = 0;

	n = q_int(db, "SELECT count(*) FROM entries");
	max = q_int(db, "SELECT coalesce(max(seq), 0) FROM entries");
	min = q_int(db, "SELECT coalesce(min(seq), 1) FROM entries");
	CHECK(n == max && min == 1, "after round %d the log's seq has gaps: %lld "
	    "entries, seq %lld..%lld", last, n, min, max);
	CHECK(q_int(db, "SELECT count(*) FROM entries WHERE kind NOT IN "
	    "('disclosure', 'holder', 'store')") == 0, "after round %d: entries other "
	    "than disclosures, holder changes and the store opened", last);
	CHECK(q_int(db, "SELECT count(*) FROM (SELECT request_id FROM entries WHERE "
	    "kind = 'disclosure' GROUP BY request_id HAVING count(*) > 1)") == 0,
	    "after round %d: a disclosure request was logged twice", last);
	/*
	 * Nothing here makes a checked batch fail when applied; the only
	 * rollbacks are batches a kill interrupted, marked at the restart.
	 */
	CHECK(q_int(db, "SELECT count(*) FROM entries WHERE kind = 'holder' AND "
	    "decision = 'rolled_back' AND reason != 'interrupted'") == 0, "after round "
	    "%d: a holder batch was rolled back", last);

	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT decision, reason, request_id FROM "
	    "entries WHERE seq = ?1 AND kind = 'disclosure'", -1, &lk.st, NULL),
	    SQLITE_OK);
	for (int r = 0; r <= last; r++)
		for (size_t k = 0; k < NITEMS(requesters); k++) {
			char path[600];

			crash_acks_path(path, sizeof(path), r, requesters[k].agency);
			lk.round = r;
			acked += crash_each_ack(path, look_up, &lk);
		}
	sqlite3_finalize(lk.st);
	CHECK(lk.missing == 0 && lk.wrong == 0, "after round %d: %ld of %ld "
	    "acknowledged disclosures missing, %ld differ; first: %s", last,
	    lk.missing, acked, lk.wrong, lk.first);
	ours = q_int(db, "SELECT count(*) FROM entries WHERE kind = 'disclosure' AND "
	    "request_id LIKE 'crash-%%'");
	CHECK(ours >= acked && ours - acked <= (long long)(last + 1) *
	    (long long)NITEMS(requesters), "after round %d: %lld entries for %ld "
	    "acknowledged disclosures", last, ours, acked);
	crash_total_disclosures = acked;
	crash_unanswered_disclosures = ours - acked;
	sqlite3_close(db);
}

/*
 * The store after rounds 0..last: every acknowledged write is there,
 * batches are whole, consent decisions appear once each and in order.
 */
void
check_store(int last)
{
	sqlite3		*db = open_ro(crash_d.store);
	sqlite3_stmt	*subject, *rows;
	long		 put = 0, consents = 0, flags_set = 0, flags_cleared = 0;
	char		 first[512] = "";

	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM subjects s JOIN "
	    "records r ON r.subject = s.id AND r.record_type = 'person' JOIN "
	    "record_fields f ON f.subject = s.id AND f.record_type = 'person' AND "
	    "f.field = 'full_name' AND f.value = 'Casey Crashtest' WHERE s.id = ?1 "
	    "AND s.holder = ?2", -1, &subject, NULL), SQLITE_OK, "%s",
	    sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT state, expires_at FROM consents "
	    "WHERE subject = ?1 AND recorded_by = ?2 ORDER BY id", -1, &rows, NULL),
	    SQLITE_OK, "%s", sqlite3_errmsg(db));
	for (size_t w = 0; w < NITEMS(writers); w++) {
		const char	*subj = writers[w].subject;
		long		 mine = 0, sets = 0, clears = 0;
		long long	 nrows;
		int		 more;

		/* Consent rows in the order written, merged with the acknowledged ones. */
		sqlite3_bind_text(rows, 1, subj, -1, SQLITE_STATIC);
		sqlite3_bind_text(rows, 2, writers[w].agency, -1, SQLITE_STATIC);
		more = sqlite3_step(rows) == SQLITE_ROW;
		for (int r = 0; r <= last; r++) {
			char		 path[600], line[512], s[64], who[64], state[16];
			long long	 at;
			int		 v;
			FILE		*fp;

			crash_acks_path(path, sizeof(path), r, writers[w].tag);
			if ((fp = fopen(path, "r")) == NULL)
				continue;
			while (fgets(line, sizeof(line), fp) != NULL) {
				if (sscanf(line, "P %63s %63s", s, who) == 2) {
					put++;
					sqlite3_bind_text(subject, 1, s, -1, SQLITE_TRANSIENT);
					sqlite3_bind_text(subject, 2, who, -1, SQLITE_TRANSIENT);
					if ((sqlite3_step(subject) != SQLITE_ROW ||
					    sqlite3_column_int(subject, 0) != 1) &&
					    first[0] == '\0')
						snprintf(first, sizeof(first), "new subject %s "
						    "(round %d) is not in the store", s, r);
					sqlite3_reset(subject);
				} else if (sscanf(line, "C %63s %15s %lld", s, state,
				    &at) == 3) {
					consents++;
					mine++;
					/* Skip rows written but never acknowledged. */
					while (more && sqlite3_column_int64(rows, 1) < at)
						more = sqlite3_step(rows) == SQLITE_ROW;
					if (!more || sqlite3_column_int64(rows, 1) != at ||
					    strcmp((const char *)sqlite3_column_text(rows, 0),
					    state) != 0) {
						if (first[0] == '\0')
							snprintf(first, sizeof(first), "consent "
							    "%s expiring %lld on %s (round %d) "
							    "is not in the store", state, at, s,
							    r);
					} else
						more = sqlite3_step(rows) == SQLITE_ROW;
				} else if (sscanf(line, "F %d", &v) == 1) {
					if (v)
						sets++;
					else
						clears++;
				}
			}
			fclose(fp);
		}
		sqlite3_reset(rows);
		/* Written one at a time with growing expiry dates: ids keep that order. */
		CHECK(q_int(db, "SELECT count(*) FROM (SELECT expires_at, lag(expires_at) "
		    "OVER (ORDER BY id) AS before FROM consents WHERE subject = %Q) "
		    "WHERE before >= expires_at", subj) == 0,
		    "after round %d: %s's consent decisions are out of order", last, subj);
		nrows = q_int(db, "SELECT count(*) FROM consents WHERE subject = %Q", subj);
		CHECK(nrows >= mine && nrows - mine <= last + 1, "after round %d: %lld "
		    "consent decisions on %s, %ld acknowledged", last, nrows, subj, mine);
		/* Each acknowledged change left its history row (D12). */
		CHECK(q_int(db, "SELECT count(*) FROM flags WHERE subject = %Q AND "
		    "flag = 'domestic_abuse'", subj) >= sets && q_int(db, "SELECT "
		    "count(*) FROM flags WHERE subject = %Q AND flag = 'domestic_abuse' "
		    "AND removed_at IS NOT NULL", subj) >= clears, "after round %d: %s's "
		    "flag history lacks acknowledged changes (%ld set, %ld cleared)", last,
		    subj, sets, clears);
		flags_set += sets;
		flags_cleared += clears;
	}
	sqlite3_finalize(subject);
	sqlite3_finalize(rows);
	CHECK(first[0] == '\0', "after round %d: %s", last, first);
	/* All or nothing: a new subject has all three writes of its batch or none. */
	CHECK(q_int(db, "SELECT count(*) FROM subjects s WHERE s.id LIKE 'S-N-%%' "
	    "AND (NOT EXISTS (SELECT 1 FROM records r WHERE r.subject = s.id) OR "
	    "(SELECT count(*) FROM consents c WHERE c.subject = s.id) != 1 OR "
	    "(SELECT count(*) FROM flags f WHERE f.subject = s.id AND f.flag = "
	    "'hate_crime' AND f.removed_at IS NULL) != 1)") == 0,
	    "after round %d: a new subject with part of its batch", last);
	{
		long long n = q_int(db, "SELECT count(*) FROM subjects WHERE id LIKE "
		    "'S-N-%%'");

		CHECK(n >= put && n - put <= (long long)(last + 1) *
		    (long long)NITEMS(writers), "after round %d: %lld new subjects, %ld "
		    "acknowledged", last, n, put);
		crash_unanswered_subjects = n - put;
	}
	crash_total_writes = put + consents + flags_set + flags_cleared;
	sqlite3_close(db);
}

/*
 * The store against the log: every holder change in the store was logged
 * first (D7 for writes), and every batch logged but never applied (the kill
 * came between the log's commit and the store's) is marked rolled_back.
 */
void
check_store_logged(int last)
{
	sqlite3	*db;
	char	*sql;

	cr_assert_eq(sqlite3_open_v2(crash_d.store, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
	    NULL), SQLITE_OK, "%s: %s", crash_d.store, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 5000);
	sql = sqlite3_mprintf("ATTACH DATABASE 'file:%q?mode=ro' AS log", crash_d.audit);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql,
	    sqlite3_errmsg(db));
	sqlite3_free(sql);
	CHECK(q_int(db, "SELECT count(*) FROM subjects s WHERE s.id LIKE 'S-N-%%' AND "
	    "NOT EXISTS (SELECT 1 FROM log.entries e WHERE e.kind = 'holder' AND "
	    "e.decision = 'write' AND e.reason = 'put_record' AND e.subject = s.id AND "
	    "e.agency = s.holder)") == 0, "after round %d: a new subject in the store "
	    "was never logged", last);
	for (size_t w = 0; w < NITEMS(writers); w++) {
		const char *subj = writers[w].subject;

		CHECK(q_int(db, "SELECT count(*) FROM consents c WHERE c.subject = %Q AND "
		    "NOT EXISTS (SELECT 1 FROM log.entries e WHERE e.kind = 'holder' AND "
		    "e.decision = 'write' AND e.reason = 'consent' AND e.subject = "
		    "c.subject AND e.agency = c.recorded_by AND e.consent = c.state || "
		    "' agencies=* purposes=* expires=' || date(c.expires_at, "
		    "'unixepoch'))", subj) == 0, "after round %d: a consent decision on "
		    "%s in the store was never logged", last, subj);
		CHECK(q_int(db, "SELECT count(*) FROM flags WHERE subject = %Q", subj) <=
		    q_int(db, "SELECT count(*) FROM log.entries WHERE kind = 'holder' "
		    "AND reason = 'flag' AND subject = %Q", subj) &&
		    q_int(db, "SELECT count(*) FROM flags WHERE subject = %Q AND "
		    "removed_at IS NOT NULL", subj) <= q_int(db, "SELECT count(*) FROM "
		    "log.entries WHERE kind = 'holder' AND reason = 'unflag' AND "
		    "subject = %Q", subj), "after round %d: a flag change on %s in the "
		    "store was never logged", last, subj);
	}
	/*
	 * Logged, never applied, and nothing in the log says so: the daemon
	 * marks such batches rolled_back (interrupted) when it starts.
	 */
	crash_unapplied = q_int(db, "SELECT count(DISTINCT e.request_id) FROM log.entries e "
	    "WHERE e.kind = 'holder' AND e.decision = 'write' AND NOT EXISTS (SELECT 1 "
	    "FROM holder_batches b WHERE b.request_id = e.request_id) AND NOT EXISTS "
	    "(SELECT 1 FROM log.entries r WHERE r.kind = 'holder' AND r.decision = "
	    "'rolled_back' AND r.request_id = e.request_id)");
	CHECK(crash_unapplied == 0, "after round %d: %lld holder batches are logged as "
	    "written but were never applied, and no rolled_back entry says so", last,
	    crash_unapplied);
	sqlite3_close(db);
}

/*
 * The flag on each long-lived subject after a round: the state last
 * acknowledged, or the change in flight at the kill (the last line is its
 * "f" with no "F"). The next round's clients start from what is found.
 */
void
check_flags(int round)
{
	sqlite3 *db = open_ro(crash_d.store);

	for (size_t w = 0; w < NITEMS(writers); w++) {
		char	 path[600], line[512];
		int	 acked = writers[w].flagged, pending = -1, v, now;
		FILE	*fp;

		crash_acks_path(path, sizeof(path), round, writers[w].tag);
		if ((fp = fopen(path, "r")) != NULL) {
			while (fgets(line, sizeof(line), fp) != NULL) {
				if (sscanf(line, "f %d", &v) == 1)
					pending = v;
				else if (sscanf(line, "F %d", &v) == 1) {
					acked = v;
					pending = -1;
				}
			}
			fclose(fp);
		}
		now = (int)q_int(db, "SELECT count(*) FROM flags WHERE subject = %Q AND "
		    "flag = 'domestic_abuse' AND removed_at IS NULL", writers[w].subject);
		CHECK(now == acked || now == pending, "round %d: %s's flag is %s "
		    "(%d active rows) but %s was acknowledged last", round,
		    writers[w].subject, now ? "set" : "clear", now, acked ? "set" : "clear");
		writers[w].flagged = now != 0;
	}
	sqlite3_close(db);
}

/* integrity_check on both databases, and the chain verified offline. */
void
check_files(int last)
{
	const char	*paths[] = { crash_d.audit, crash_d.store };
	char		 cmd[2048], res[512], *out;

	for (size_t i = 0; i < NITEMS(paths); i++) {
		sqlite3 *db = open_ro(paths[i]);

		q_text(db, res, sizeof(res), "PRAGMA integrity_check");
		CHECK(strcmp(res, "ok") == 0, "after round %d: %s: %s", last, paths[i], res);
		sqlite3_close(db);
	}
	snprintf(cmd, sizeof(cmd), "%s audit verify --log %s --pubkey "
	    "%s/pki/audit-signing.pub 2>&1", SAFESHARE_BIN, crash_d.audit, crash_d.dir);
	CHECK(h_run(cmd, &out) == 0, "after round %d: %s", last, out);
	free(out);
}
