/*
 * A log entry: its string members in canonical order, the chain hash over
 * them, the SQL audit_columns it is stored in, and the legacy checkpoint
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
	"kind", "agency", "cert_fp", "practitioner", "purpose", "lawful_basis",
	"case_ref", "subject", "record_type", "decision", "reason", "released",
	"withheld", "consent", "override_code", "justification", "rule_id",
	"protocol_id", "protocol_version", "protocol_sha256", "request_id",
	"inform_waiver"
};

const char *const audit_columns =
    "seq, time, kind, agency, cert_fp, practitioner, purpose, lawful_basis, "
    "case_ref, subject, record_type, decision, reason, released, withheld, "
    "consent, override_code, justification, rule_id, protocol_id, "
    "protocol_version, protocol_sha256, request_id, inform_waiver, ref_seq, "
    "prev_hash, hash";

void
audit_entry_strings(struct audit_entry *e, const char **p[AUDIT_NSTRINGS])
{
	const char **v[AUDIT_NSTRINGS] = {
		&e->kind, &e->agency, &e->cert_fp, &e->practitioner, &e->purpose,
		&e->lawful_basis, &e->case_ref, &e->subject, &e->record_type,
		&e->decision, &e->reason, &e->released, &e->withheld, &e->consent,
		&e->override_code, &e->justification, &e->rule_id, &e->protocol_id,
		&e->protocol_version, &e->protocol_sha256, &e->request_id,
		&e->inform_waiver
	};

	memcpy(p, v, sizeof(v));
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
 * Built in one buffer so that hashing is a single call.
 */
void
audit_hash(const struct audit_entry *e, unsigned char out[32])
{
	static const char	 tag[] = "safeshare-log-v1";
	struct audit_entry	 tmp = *e;
	const char		**s[AUDIT_NSTRINGS];
	unsigned char		 stackbuf[2048], *buf = stackbuf;
	size_t			 need = 32 + 16 + 24, n = 0;

	audit_entry_strings(&tmp, s);
	for (int i = 0; i < AUDIT_NSTRINGS; i++)
		need += 4 + (*s[i] ? strlen(*s[i]) : 0);
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
		size_t len = *s[i] ? strlen(*s[i]) : 0;

		put_be(buf + n, len, 4);
		if (len)
			memcpy(buf + n + 4, *s[i], len);
		n += 4 + len;
	}
	digest_sha256(buf, n, out);
	if (buf != stackbuf)
		free(buf);
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

/* Fills an entry from a row selected with `audit_columns`; strings live until the next step. */
void
audit_row_entry(sqlite3_stmt *st, struct audit_entry *e)
{
	const char **s[AUDIT_NSTRINGS];

	memset(e, 0, sizeof(*e));
	audit_entry_strings(e, s);
	e->seq = (uint64_t)sqlite3_column_int64(st, 0);
	e->time = sqlite3_column_int64(st, 1);
	for (int i = 0; i < AUDIT_NSTRINGS; i++) {
		const char *t = (const char *)sqlite3_column_text(st, 2 + i);

		*s[i] = t ? t : "";
	}
	e->ref_seq = (uint64_t)sqlite3_column_int64(st, 24);
	if (sqlite3_column_bytes(st, 25) == 32)
		memcpy(e->prev_hash, sqlite3_column_blob(st, 25), 32);
	if (sqlite3_column_bytes(st, 26) == 32)
		memcpy(e->hash, sqlite3_column_blob(st, 26), 32);
}
