#include <openssl/evp.h>
#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "util.h"

struct audit {
	sqlite3		*db;
	sqlite3_stmt	*ins;
	uint64_t	 size;
	unsigned char	 head[32];
	char		 err[256];
	EVP_MD_CTX	*md;
};

static const char *const columns =
    "seq, time, kind, agency, cert_fp, practitioner, purpose, lawful_basis, "
    "case_ref, subject, record_type, decision, reason, released, withheld, "
    "consent, override_code, justification, rule_id, protocol_id, "
    "protocol_version, protocol_sha256, request_id, inform_waiver, ref_seq, "
    "prev_hash, hash";

static const char *const schema =
    "CREATE TABLE entries(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
    " kind TEXT, agency TEXT, cert_fp TEXT, practitioner TEXT, purpose TEXT,"
    " lawful_basis TEXT, case_ref TEXT, subject TEXT, record_type TEXT,"
    " decision TEXT, reason TEXT, released TEXT, withheld TEXT, consent TEXT,"
    " override_code TEXT, justification TEXT, rule_id TEXT, protocol_id TEXT,"
    " protocol_version TEXT, protocol_sha256 TEXT, request_id TEXT,"
    " inform_waiver TEXT, ref_seq INTEGER NOT NULL DEFAULT 0,"
    " prev_hash BLOB NOT NULL, hash BLOB NOT NULL);"
    "CREATE INDEX entries_ref ON entries(ref_seq) WHERE ref_seq != 0;"
    "CREATE INDEX entries_subject ON entries(subject, seq);"
    "CREATE INDEX entries_agency ON entries(agency, seq);"
    "PRAGMA user_version = 1;";

/* The string members in canonical order. */
static const char *const *
strings(const struct audit_entry *e, const char *out[AUDIT_NSTRINGS])
{
	const char *v[AUDIT_NSTRINGS] = {
		e->kind, e->agency, e->cert_fp, e->practitioner, e->purpose,
		e->lawful_basis, e->case_ref, e->subject, e->record_type,
		e->decision, e->reason, e->released, e->withheld, e->consent,
		e->override_code, e->justification, e->rule_id, e->protocol_id,
		e->protocol_version, e->protocol_sha256, e->request_id,
		e->inform_waiver
	};

	memcpy(out, v, sizeof(v));
	return out;
}

static void
put_be(unsigned char *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

/*
 * entry_hash = SHA-256(prev_hash || "safeshare-log-v1" || seq:u64be ||
 * time:i64be || ref_seq:u64be || for each string: len:u32be || bytes).
 * See docs/audit-format.md.
 */
void
audit_hash(const struct audit_entry *e, unsigned char out[32])
{
	static const char	 tag[] = "safeshare-log-v1";
	const char		*s[AUDIT_NSTRINGS];
	unsigned char		 num[8];
	unsigned int		 len = 32;
	EVP_MD_CTX		*md = EVP_MD_CTX_new();

	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, e->prev_hash, 32);
	EVP_DigestUpdate(md, tag, sizeof(tag) - 1);
	put_be(num, e->seq, 8);
	EVP_DigestUpdate(md, num, 8);
	put_be(num, (uint64_t)e->time, 8);
	EVP_DigestUpdate(md, num, 8);
	put_be(num, e->ref_seq, 8);
	EVP_DigestUpdate(md, num, 8);
	strings(e, s);
	for (int i = 0; i < AUDIT_NSTRINGS; i++) {
		size_t n = s[i] ? strlen(s[i]) : 0;

		put_be(num, n, 4);
		EVP_DigestUpdate(md, num, 4);
		if (n > 0)
			EVP_DigestUpdate(md, s[i], n);
	}
	EVP_DigestFinal_ex(md, out, &len);
	EVP_MD_CTX_free(md);
}

static int
fail(struct audit *a, const char *what)
{
	snprintf(a->err, sizeof(a->err), "%s: %s", what, sqlite3_errmsg(a->db));
	return -1;
}

const char *
audit_errmsg(struct audit *a)
{
	return a->err;
}

uint64_t
audit_size(struct audit *a)
{
	return a->size;
}

int
audit_open(struct audit **out, const char *path, char *err, size_t errlen)
{
	struct audit	*a = xcalloc(1, sizeof(*a));
	sqlite3_stmt	*st;
	char		 sql[1024];
	int		 version = 0;

	*out = NULL;
	if (sqlite3_open_v2(path, &a->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, a->db ? sqlite3_errmsg(a->db) :
		    "cannot open");
		audit_close(a);
		return -1;
	}
	sqlite3_busy_timeout(a->db, 5000);
	/* Durable on commit: WAL with synchronous=FULL fsyncs the WAL on COMMIT. */
	if (sqlite3_exec(a->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL",
	    NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	if (sqlite3_prepare_v2(a->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version == 0 && sqlite3_exec(a->db, schema, NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	if (version > AUDIT_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s: log schema version %d is newer than this "
		    "program", path, version);
		audit_close(a);
		return -1;
	}
	/* The head of the chain: the last entry's hash, or zeros. */
	if (sqlite3_prepare_v2(a->db, "SELECT seq, hash FROM entries ORDER BY seq "
	    "DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	if (sqlite3_step(st) == SQLITE_ROW) {
		a->size = (uint64_t)sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) == 32)
			memcpy(a->head, sqlite3_column_blob(st, 1), 32);
	}
	sqlite3_finalize(st);
	snprintf(sql, sizeof(sql), "INSERT INTO entries(%s) VALUES (?1, ?2, ?3, ?4, "
	    "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, "
	    "?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)", columns);
	if (sqlite3_prepare_v3(a->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &a->ins,
	    NULL) != SQLITE_OK)
		goto dberr;
	*out = a;
	return 0;
dberr:
	snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(a->db));
	audit_close(a);
	return -1;
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	sqlite3_finalize(a->ins);
	sqlite3_close(a->db);
	free(a);
}

static int
insert(struct audit *a, const struct audit_entry *e)
{
	const char	*s[AUDIT_NSTRINGS];
	int		 rc;

	strings(e, s);
	sqlite3_bind_int64(a->ins, 1, (sqlite3_int64)e->seq);
	sqlite3_bind_int64(a->ins, 2, e->time);
	for (int i = 0; i < AUDIT_NSTRINGS; i++)
		sqlite3_bind_text(a->ins, 3 + i, s[i] ? s[i] : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(a->ins, 25, (sqlite3_int64)e->ref_seq);
	sqlite3_bind_blob(a->ins, 26, e->prev_hash, 32, SQLITE_STATIC);
	sqlite3_bind_blob(a->ins, 27, e->hash, 32, SQLITE_STATIC);
	rc = sqlite3_step(a->ins);
	sqlite3_reset(a->ins);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
audit_append(struct audit *a, struct audit_entry **es, size_t n)
{
	unsigned char	 head[32];
	uint64_t	 size = a->size;

	memcpy(head, a->head, 32);
	if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return fail(a, "begin");
	for (size_t i = 0; i < n; i++) {
		struct audit_entry *e = es[i];

		e->seq = ++size;
		memcpy(e->prev_hash, head, 32);
		audit_hash(e, e->hash);
		memcpy(head, e->hash, 32);
		if (insert(a, e) == -1) {
			fail(a, "insert");
			sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
	}
	if (sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		fail(a, "commit");
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	a->size = size;
	memcpy(a->head, head, 32);
	return 0;
}

int
audit_scan(struct audit *a, uint64_t from, uint64_t limit, audit_cb cb, void *arg)
{
	sqlite3_stmt	*st;
	char		 sql[1024];
	int		 rc;

	snprintf(sql, sizeof(sql), "SELECT %s FROM entries WHERE seq >= ?1 ORDER BY "
	    "seq LIMIT ?2", columns);
	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
		return fail(a, "scan");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)from);
	sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct audit_entry	 e;
		const char		*s[AUDIT_NSTRINGS];

		memset(&e, 0, sizeof(e));
		e.seq = (uint64_t)sqlite3_column_int64(st, 0);
		e.time = sqlite3_column_int64(st, 1);
		for (int i = 0; i < AUDIT_NSTRINGS; i++)
			s[i] = (const char *)sqlite3_column_text(st, 2 + i);
		e.kind = s[0]; e.agency = s[1]; e.cert_fp = s[2];
		e.practitioner = s[3]; e.purpose = s[4]; e.lawful_basis = s[5];
		e.case_ref = s[6]; e.subject = s[7]; e.record_type = s[8];
		e.decision = s[9]; e.reason = s[10]; e.released = s[11];
		e.withheld = s[12]; e.consent = s[13]; e.override_code = s[14];
		e.justification = s[15]; e.rule_id = s[16]; e.protocol_id = s[17];
		e.protocol_version = s[18]; e.protocol_sha256 = s[19];
		e.request_id = s[20]; e.inform_waiver = s[21];
		e.ref_seq = (uint64_t)sqlite3_column_int64(st, 24);
		if (sqlite3_column_bytes(st, 25) == 32)
			memcpy(e.prev_hash, sqlite3_column_blob(st, 25), 32);
		if (sqlite3_column_bytes(st, 26) == 32)
			memcpy(e.hash, sqlite3_column_blob(st, 26), 32);
		if (cb(&e, arg) != 0)
			break;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(a, "scan");
	return 0;
}

struct verify_state {
	uint64_t	 expect;
	unsigned char	 prev[32];
	uint64_t	 bad;
	char		*why;
	size_t		 whylen;
};

static int
verify_one(const struct audit_entry *e, void *arg)
{
	struct verify_state	*v = arg;
	unsigned char		 h[32];

	if (e->seq != v->expect) {
		v->bad = v->expect;
		snprintf(v->why, v->whylen, "entry %llu is missing (next is %llu): "
		    "deleted or reordered", (unsigned long long)v->expect,
		    (unsigned long long)e->seq);
		return 1;
	}
	if (memcmp(e->prev_hash, v->prev, 32) != 0) {
		v->bad = e->seq;
		snprintf(v->why, v->whylen, "entry %llu does not link to the entry "
		    "before it: deleted, inserted or reordered",
		    (unsigned long long)e->seq);
		return 1;
	}
	audit_hash(e, h);
	if (memcmp(h, e->hash, 32) != 0) {
		v->bad = e->seq;
		snprintf(v->why, v->whylen, "entry %llu's contents do not match its "
		    "hash: edited", (unsigned long long)e->seq);
		return 1;
	}
	memcpy(v->prev, e->hash, 32);
	v->expect++;
	return 0;
}

int
audit_verify(struct audit *a, uint64_t *nentries, uint64_t *bad_seq, char *why,
    size_t whylen)
{
	struct verify_state v;

	memset(&v, 0, sizeof(v));
	v.expect = 1;
	v.why = why;
	v.whylen = whylen;
	why[0] = '\0';
	if (audit_scan(a, 1, 0, verify_one, &v) == -1) {
		snprintf(why, whylen, "%s", a->err);
		return -1;
	}
	*nentries = v.expect - 1;
	*bad_seq = v.bad;
	return v.bad ? -1 : 0;
}
