/*
 * A log entry: its string members in canonical order, the chain hash over
 * them, the SQL columns it is stored in, and the legacy checkpoint
 * message. docs/audit-format.md specifies the bytes; tests/unit/test_entry.c
 * pins them.
 */
#include <sqlite3.h>

#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_int.h"
#include "digest.h"
#include "util.h"

const char *const audit_string_names[AUDIT_NSTRINGS] = {
#define F(name)	#name,
	AUDIT_STRING_FIELDS(F)
#undef F
};

#define F(name)	#name ", "
const char *const audit_columns =
    "seq, time, " AUDIT_STRING_FIELDS(F) "ref_seq, prev_hash, hash";
#undef F

/* One anonymous parameter per column: ?N is column N - 1 (enum audit_col). */
#define F(name)	#name ", "
#define P(name)	"?, "
const char *const audit_insert_sql =
    "INSERT INTO entries(seq, time, " AUDIT_STRING_FIELDS(F) "ref_seq, prev_hash, "
    "hash) VALUES (?, ?, " AUDIT_STRING_FIELDS(P) "?, ?, ?)";
#undef P
#undef F

void
audit_entry_strings(struct audit_entry *e, const char **p[AUDIT_NSTRINGS])
{
	size_t i = 0;

#define F(name)	p[i++] = &e->name;
	AUDIT_STRING_FIELDS(F)
#undef F
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
 * Built in one buffer so that hashing is a single call. Each string is
 * measured once, into lens, which the writer's insert binds with
 * (audit_entry_bind()): it was measured three times per entry, 6 % of
 * the writer thread's samples.
 */
void
audit_hash_lens(const struct audit_entry *e, unsigned char out[32],
    size_t lens[AUDIT_NSTRINGS])
{
	static const char	 tag[] = "safeshare-log-v1";
	struct audit_entry	 tmp = *e;
	const char		**s[AUDIT_NSTRINGS];
	unsigned char		 stackbuf[2048], *buf = stackbuf;
	size_t			 need = 32 + 16 + 24, n = 0;

	audit_entry_strings(&tmp, s);
	for (int i = 0; i < AUDIT_NSTRINGS; i++) {
		lens[i] = *s[i] ? strlen(*s[i]) : 0;
		need += 4 + lens[i];
	}
	if (need > sizeof(stackbuf))
		buf = xcalloc(need, 1);
	memcpy(buf, e->prev_hash, 32);
	memcpy(buf + 32, tag, 16);
	n = 48;
	put_be(buf + n, e->seq, 8);
	put_be(buf + n + 8, (uint64_t)e->time, 8);
	put_be(buf + n + 16, e->ref_seq, 8);
	n += 24;
	for (int i = 0; i < AUDIT_NSTRINGS; i++) {
		put_be(buf + n, lens[i], 4);
		if (lens[i])
			memcpy(buf + n + 4, *s[i], lens[i]);
		n += 4 + lens[i];
	}
	digest_sha256(buf, n, out);
	if (buf != stackbuf)
		free(buf);
}

void
audit_hash(const struct audit_entry *e, unsigned char out[32])
{
	size_t lens[AUDIT_NSTRINGS];

	audit_hash_lens(e, out, lens);
}

size_t
audit_checkpoint_message(const struct audit_checkpoint *cp, unsigned char out[128])
{
	static const char tag[] = "safeshare-checkpoint-v1";

	memcpy(out, tag, 23);
	memcpy(out + 23, cp->log_id, 16);
	put_be(out + 39, cp->size, 8);
	memcpy(out + 47, cp->head, 32);
	put_be(out + 79, (uint64_t)cp->time, 8);
	return 87;
}

static const char *
col_text(sqlite3_stmt *st, int col)
{
	const char *t = (const char *)sqlite3_column_text(st, col);

	return t != NULL ? t : "";
}

static void
col_hash(sqlite3_stmt *st, int col, unsigned char out[32])
{
	if (sqlite3_column_bytes(st, col) == 32)
		memcpy(out, sqlite3_column_blob(st, col), 32);
}

/*
 * Fills an entry from a row selected with audit_columns, each member from
 * its own column by name; the strings live until the next step.
 */
void
audit_row_entry(sqlite3_stmt *st, struct audit_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->seq = (uint64_t)sqlite3_column_int64(st, AUDIT_COL_seq);
	e->time = sqlite3_column_int64(st, AUDIT_COL_time);
#define F(name)	e->name = col_text(st, AUDIT_COL_##name);
	AUDIT_STRING_FIELDS(F)
#undef F
	e->ref_seq = (uint64_t)sqlite3_column_int64(st, AUDIT_COL_ref_seq);
	col_hash(st, AUDIT_COL_prev_hash, e->prev_hash);
	col_hash(st, AUDIT_COL_hash, e->hash);
}

void
audit_entry_bind(sqlite3_stmt *st, const struct audit_entry *e,
    const size_t lens[AUDIT_NSTRINGS])
{
	int i = 0;

	sqlite3_bind_int64(st, AUDIT_COL_seq + 1, (sqlite3_int64)e->seq);
	sqlite3_bind_int64(st, AUDIT_COL_time + 1, e->time);
#define F(name)	sqlite3_bind_text(st, AUDIT_COL_##name + 1, e->name != NULL ? \
	    e->name : "", (int)lens[i++], SQLITE_STATIC);
	AUDIT_STRING_FIELDS(F)
#undef F
	sqlite3_bind_int64(st, AUDIT_COL_ref_seq + 1, (sqlite3_int64)e->ref_seq);
	sqlite3_bind_blob(st, AUDIT_COL_prev_hash + 1, e->prev_hash, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, AUDIT_COL_hash + 1, e->hash, 32, SQLITE_STATIC);
}
