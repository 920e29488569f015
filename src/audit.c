/*
 * The disclosure log: storage, hash chain, signed checkpoints, queries and
 * verification. See audit.h and docs/audit-format.md.
 */
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "digest.h"
#include "log.h"
#include "merkle.h"
#include "policy.h"
#include "util.h"

const char *const audit_string_names[AUDIT_NSTRINGS] = {
	"kind", "agency", "cert_fp", "practitioner", "purpose", "lawful_basis",
	"case_ref", "subject", "record_type", "decision", "reason", "released",
	"withheld", "consent", "override_code", "justification", "rule_id",
	"protocol_id", "protocol_version", "protocol_sha256", "request_id",
	"inform_waiver"
};

/*
 * What the queues read (docs/audit-format.md). An override is used when its
 * reason says it decided the outcome: a request that named an exception it
 * did not need (consent granted) is a plain release, neither reviewed nor
 * an inform item nor counted (D5, D6, issue 15). Each predicate implies
 * the partial index it is served by (entries_override, entries_refused).
 */
#define OVERRIDE_USED	"override_code != '' AND kind = 'disclosure' AND " \
	"decision != 'deny' AND reason IN ('override', 'override_partial')"
#define OVERRIDE_REFUSED "override_code != '' AND kind = 'disclosure' AND " \
	"decision = 'deny'"
/* No accepted waiver: none, or one logged behind the not-accepted marker. */
#define NO_WAIVER	"(inform_waiver = '' OR inform_waiver GLOB '" \
	POLICY_WAIVER_REJECTED "*')"

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
    "CREATE INDEX entries_agency ON entries(agency, seq);"
    "CREATE INDEX entries_time ON entries(time);"
    "CREATE INDEX entries_override ON entries(seq) WHERE override_code != '' "
    " AND kind = 'disclosure' AND decision != 'deny';"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE checkpoints(id INTEGER PRIMARY KEY, size INTEGER NOT NULL,"
    " head_hash BLOB NOT NULL, time INTEGER NOT NULL, signature BLOB NOT NULL,"
    " root BLOB, note TEXT);"
    "CREATE INDEX checkpoints_size ON checkpoints(size);"
    "CREATE TABLE tree(level INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " hash BLOB NOT NULL, PRIMARY KEY(level, idx)) WITHOUT ROWID;"
    "PRAGMA user_version = 3;";

/*
 * Version 2 moved the index by subject out of the log (see audit_index_*
 * below): each append dirtied one random leaf of entries_subject per
 * entry, two thirds of the pages every commit wrote and synced.
 */
static const char *const upgrade_1_to_2 =
    "DROP INDEX IF EXISTS entries_subject;"
    "PRAGMA user_version = 2;";

/*
 * Version 3 adds the Merkle tree (table tree, built once from the entries
 * by the first writer to open the log, see tree_sync()) and checkpoints as
 * signed notes over it (note, root). v3_from records the size the log had
 * then: the only size at which a log may have entries and no tree
 * checkpoint (the start-up check signs one over it).
 */
static const char *const upgrade_2_to_3 =
    "ALTER TABLE checkpoints ADD COLUMN root BLOB;"
    "ALTER TABLE checkpoints ADD COLUMN note TEXT;"
    "CREATE INDEX checkpoints_size ON checkpoints(size);"
    "CREATE TABLE tree(level INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " hash BLOB NOT NULL, PRIMARY KEY(level, idx)) WITHOUT ROWID;"
    "INSERT INTO meta(key, value) VALUES ('v3_from',"
    " (SELECT coalesce(max(seq), 0) FROM entries));"
    "PRAGMA user_version = 3;";

/*
 * The tree keeps only every TREE_STRIDE-th level of perfect subtrees
 * (16, 256, 4096, ... leaves): a commit adds a row every 16 entries, at
 * the end of its level, and a node at any other level is recomputed from
 * at most 2^(TREE_STRIDE-1) nodes below it, or from the entries' hashes.
 */
#define TREE_STRIDE	4

/*
 * The subject index file: next to the log, derived from it, rebuilt if
 * lost. Its rows lead with the entry's generation (seq / INDEX_GEN), so
 * that rows are only ever added among the newest generation's, at the end
 * of the B-tree: an update writes a few pages, where keying by subject first
 * rewrote one leaf at random per entry (4 KiB written per 60-byte row;
 * those bursts stalled the log's own fdatasync, BENCHMARKS.md). A query
 * looks its subject up in each generation in turn.
 *
 * Version 1 was keyed (subject, seq); any other version is emptied and
 * rebuilt, as is an index of another log.
 */
#define INDEX_GEN	4096
#define INDEX_VERSION	2
#define STR(x)		STR_(x)
#define STR_(x)		#x

static const char *const index_schema =
    "CREATE TABLE IF NOT EXISTS subject_index(gen INTEGER NOT NULL,"
    " subject TEXT NOT NULL, seq INTEGER NOT NULL,"
    " PRIMARY KEY(gen, subject, seq)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS state(id INTEGER PRIMARY KEY CHECK(id = 1),"
    " log_id BLOB, upto INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO state(id, log_id, upto) VALUES (1, NULL, 0);"
    "PRAGMA user_version = " STR(INDEX_VERSION) ";";

struct audit {
	sqlite3		*db;
	sqlite3_stmt	*ins;
	sqlite3_stmt	*ins_cp;
	uint64_t	 size;
	unsigned char	 head[32];
	unsigned char	 log_id[16];
	char		 err[256];
	EVP_PKEY	*signer;
	uint64_t	 cp_every;
	int64_t		 cp_seconds;
	uint64_t	 cp_size;	/* entries covered by the last checkpoint */
	int64_t		 cp_time;
	int		 wal_pages;	/* in the WAL after the last commit */
	char		*path;
	int		 index;		/* subject index attached: 1, absent: 0 */
	dev_t		 index_dev;	/* the file attached */
	ino_t		 index_ino;
	dev_t		 dev;		/* the log file opened */
	ino_t		 ino;
	int		 gone;		/* ... since deleted or replaced */
	int		 migrated;	/* upgraded to version 3 by this open */
	int		 legacy;	/* a version-2 log read as it is (no tree) */
	sqlite3_stmt	*ins_node;
	sqlite3_stmt	*get_node;	/* prepared on first use */
	sqlite3_stmt	*get_nodes;
	sqlite3_stmt	*get_leaves;
	int		 node_failed;	/* an insert into tree failed in this commit */
	struct merkle_range range;	/* the tree of the first `size` entries */
	EVP_PKEY	*prev_signer;	/* the key being rotated from */
	uint64_t	 cp_n;		/* tree checkpoints so far (the last one's number) */
	uint64_t	 cp_tree_size;	/* entries the last tree checkpoint covers */
	int64_t		 last_time;	/* of the last entry or checkpoint */
	int		 clock_back;	/* warned that the clock went back */
	char		*note;		/* the last checkpoint's note */
};

struct audit_index {
	sqlite3		*db;		/* the index file, the log attached as lg */
	unsigned char	 log_id[16];
	char		 path[4096];
	dev_t		 dev;		/* the file opened at path */
	ino_t		 ino;
	char		 err[256];
};

static void
index_path(const char *log, char *out, size_t len)
{
	snprintf(out, len, "%s-subjects", log);
}

/*
 * 1 if path is still the file once found there. An index file deleted to
 * have it rebuilt is another file when it comes back, and whoever holds
 * the old one open (writer or reader) must open it again.
 */
static int
same_file(const char *path, dev_t dev, ino_t ino)
{
	struct stat sb;

	return stat(path, &sb) == 0 && sb.st_dev == dev && sb.st_ino == ino;
}

/* The entries the subject index holds; its update and its check agree on it. */
#define INDEXED	"subject IS NOT NULL AND subject != ''"

/*
 * The seq up to which the attached index is complete, as an SQL
 * expression: NULL when the index belongs to another log. Never past the
 * log's last entry as this statement sees it: the state row is outside the
 * chain (a huge upto would make queries walk that many generations), and
 * the index may have moved on since the statement read the log.
 */
static void
index_upto(const struct audit *a, char *out, size_t len)
{
	char hex[33];

	hex_encode(a->log_id, 16, hex);
	snprintf(out, len, "min((SELECT max(upto) FROM subj.state WHERE log_id = "
	    "X'%s'), (SELECT coalesce(max(seq), 0) FROM main.entries))", hex);
}

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

void
audit_log_id(struct audit *a, unsigned char out[16])
{
	memcpy(out, a->log_id, 16);
}

static int
int_query(struct audit *a, const char *sql, long long *out)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Checkpoint notes: a C2SP tlog-checkpoint body signed as a C2SP signed
 * note (docs/audit-format.md). The body is
 *
 *	safeshare/<log id, 32 hex>\n<size>\n<base64 root>\n
 *	time <unix seconds>\ncheckpoint <n>\n[next-key <verifier key>\n]
 *
 * and one signature line per signer, "— <name> <base64(key id || sig)>",
 * where the key name is the origin and the key id the first 4 bytes of
 * SHA-256(name || "\n" || 0x01 || public key).
 */
#define EM_DASH		"\xe2\x80\x94"
#define NOTE_SIGS	8

struct cpnote {
	char		 origin[80];
	uint64_t	 size;
	unsigned char	 root[32];
	int64_t		 time;
	uint64_t	 n;
	char		 next_key[256];	/* empty: no rotation */
	size_t		 bodylen;	/* the signed bytes */
	size_t		 nsig;
	struct {
		unsigned char	 id[4];
		unsigned char	 sig[64];
	}		 sig[NOTE_SIGS];
};

static void
note_origin(const unsigned char log_id[16], char out[80])
{
	char hex[33];

	hex_encode(log_id, 16, hex);
	snprintf(out, 80, "safeshare/%s", hex);
}

/* Base64 of n bytes into out (room for 4 * ((n + 2) / 3) + 1). */
static void
b64_encode(const unsigned char *in, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Decodes exactly want bytes of padded base64 (slen chars): 0 or -1. */
static int
b64_decode(const char *s, size_t slen, unsigned char *out, size_t want)
{
	unsigned char	 buf[512];
	size_t		 pad = 0;
	int		 n;

	if (slen == 0 || slen % 4 != 0 || slen / 4 * 3 > sizeof(buf))
		return -1;
	while (pad < 2 && s[slen - 1 - pad] == '=')
		pad++;
	if ((n = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)slen)) < 0 ||
	    (size_t)n - pad != want)
		return -1;
	memcpy(out, buf, want);
	return 0;
}

static int
key_raw(EVP_PKEY *k, unsigned char pub[32])
{
	size_t len = 32;

	return EVP_PKEY_get_raw_public_key(k, pub, &len) == 1 && len == 32 ? 0 : -1;
}

static int
key_id(const char *name, EVP_PKEY *k, unsigned char id[4])
{
	unsigned char	 buf[80 + 2 + 32], h[32];
	size_t		 n = strlen(name);

	if (n > 80 || key_raw(k, buf + n + 2) == -1)
		return -1;
	memcpy(buf, name, n);
	buf[n] = '\n';
	buf[n + 1] = 0x01;
	SHA256(buf, n + 2 + 32, h);
	memcpy(id, h, 4);
	return 0;
}

/* "<name>+<hex key id>+<base64(0x01 || public key)>", the signed-note form. */
static int
verifier_key(const char *name, EVP_PKEY *k, char *out, size_t len)
{
	unsigned char	 id[4], raw[33];
	char		 hex[9], b64[64];

	raw[0] = 0x01;
	if (key_id(name, k, id) == -1 || key_raw(k, raw + 1) == -1)
		return -1;
	hex_encode(id, 4, hex);
	b64_encode(raw, 33, b64);
	return snprintf(out, len, "%s+%s+%s", name, hex, b64) < (int)len ? 0 : -1;
}

/* The Ed25519 key a verifier key string names, if its key id agrees. */
static EVP_PKEY *
verifier_key_parse(const char *s)
{
	const char	*p1, *p2;
	unsigned char	 raw[33], id[4], want[4];
	char		 name[80];
	EVP_PKEY	*k;

	if ((p1 = strchr(s, '+')) == NULL || (p2 = strchr(p1 + 1, '+')) == NULL ||
	    (size_t)(p1 - s) >= sizeof(name) || p2 - p1 - 1 != 8)
		return NULL;
	memcpy(name, s, (size_t)(p1 - s));
	name[p1 - s] = '\0';
	{
		char hex[9];

		memcpy(hex, p1 + 1, 8);
		hex[8] = '\0';
		if (hex_decode(hex, want, 4) == -1)
			return NULL;
	}
	if (b64_decode(p2 + 1, strlen(p2 + 1), raw, 33) == -1 || raw[0] != 0x01 ||
	    (k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw + 1,
	    32)) == NULL)
		return NULL;
	if (key_id(name, k, id) == -1 || memcmp(id, want, 4) != 0) {
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

static int
parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 19 || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/*
 * Parses a checkpoint note strictly: every line as above, nothing else.
 * Returns 0, or -1 with why.
 */
static int
note_parse(const char *note, struct cpnote *c, char *why, size_t wlen)
{
	const char	*p = note, *end, *nl, *body_end;
	uint64_t	 t;
	int		 line = 0, have_time = 0, have_n = 0;
	size_t		 len = strlen(note);

	memset(c, 0, sizeof(*c));
	if (len > AUDIT_NOTE_MAX) {
		snprintf(why, wlen, "the note is over %d bytes", AUDIT_NOTE_MAX);
		return -1;
	}
	if ((body_end = strstr(note, "\n\n")) == NULL) {
		snprintf(why, wlen, "no blank line before the signatures");
		return -1;
	}
	c->bodylen = (size_t)(body_end - note) + 1;
	end = note + c->bodylen;
	for (; p < end; p = nl + 1, line++) {
		size_t n;

		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)(nl - p);
		if (line == 0) {
			if (n == 0 || n >= sizeof(c->origin))
				goto bad;
			memcpy(c->origin, p, n);
		} else if (line == 1) {
			if (parse_u64(p, n, &c->size) == -1)
				goto bad;
		} else if (line == 2) {
			if (b64_decode(p, n, c->root, 32) == -1)
				goto bad;
		} else if (n > 5 && strncmp(p, "time ", 5) == 0 && !have_time) {
			if (parse_u64(p + 5, n - 5, &t) == -1 || t > INT64_MAX)
				goto bad;
			c->time = (int64_t)t;
			have_time = 1;
		} else if (n > 11 && strncmp(p, "checkpoint ", 11) == 0 && !have_n) {
			if (parse_u64(p + 11, n - 11, &c->n) == -1 || c->n == 0)
				goto bad;
			have_n = 1;
		} else if (n > 9 && strncmp(p, "next-key ", 9) == 0 &&
		    c->next_key[0] == '\0' && n - 9 < sizeof(c->next_key)) {
			memcpy(c->next_key, p + 9, n - 9);
		} else
			goto bad;
	}
	if (line < 3 || !have_time || !have_n)
		goto bad;
	for (p = end + 1; *p != '\0'; p = nl + 1) {
		const char	*sp;
		unsigned char	 raw[68];

		if ((nl = strchr(p, '\n')) == NULL || strncmp(p, EM_DASH " ", 4) != 0 ||
		    (sp = memchr(p + 4, ' ', (size_t)(nl - p - 4))) == NULL) {
			snprintf(why, wlen, "a malformed signature line");
			return -1;
		}
		/* Only the log's own signatures: cosignatures have other names. */
		if ((size_t)(sp - p - 4) != strlen(c->origin) ||
		    strncmp(p + 4, c->origin, strlen(c->origin)) != 0 ||
		    b64_decode(sp + 1, (size_t)(nl - sp - 1), raw, 68) == -1 ||
		    c->nsig == NOTE_SIGS)
			continue;
		memcpy(c->sig[c->nsig].id, raw, 4);
		memcpy(c->sig[c->nsig].sig, raw + 4, 64);
		c->nsig++;
	}
	return 0;
bad:
	snprintf(why, wlen, "line %d of the note is not a safeshare checkpoint's",
	    line + 1);
	return -1;
}

/* 1 if key signed the note (a signature line with its key id verifies). */
static int
note_signed_by(const char *note, const struct cpnote *c, EVP_PKEY *key)
{
	unsigned char	 id[4];
	int		 ok = 0;

	if (key == NULL || key_id(c->origin, key, id) == -1)
		return 0;
	for (size_t i = 0; i < c->nsig && !ok; i++) {
		EVP_MD_CTX *md;

		if (memcmp(c->sig[i].id, id, 4) != 0 || (md = EVP_MD_CTX_new()) == NULL)
			continue;
		ok = EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) == 1 &&
		    EVP_DigestVerify(md, c->sig[i].sig, 64, (const unsigned char *)note,
		    c->bodylen) == 1;
		EVP_MD_CTX_free(md);
	}
	return ok;
}

/* Builds and signs a checkpoint note; *out is the caller's to free. */
static int
note_sign(EVP_PKEY *key, const unsigned char log_id[16], uint64_t size,
    const unsigned char root[32], int64_t t, uint64_t n, const char *next_key,
    char **out)
{
	char		 origin[80], rootb64[48], body[1024], sigb64[96];
	unsigned char	 raw[68];
	size_t		 siglen = 64, blen, need;
	EVP_MD_CTX	*md;
	int		 ok;

	note_origin(log_id, origin);
	b64_encode(root, 32, rootb64);
	blen = (size_t)snprintf(body, sizeof(body), "%s\n%llu\n%s\ntime %lld\n"
	    "checkpoint %llu\n%s%s%s", origin, (unsigned long long)size, rootb64,
	    (long long)t, (unsigned long long)n, next_key ? "next-key " : "",
	    next_key ? next_key : "", next_key ? "\n" : "");
	if (blen >= sizeof(body) || key_id(origin, key, raw) == -1 ||
	    (md = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestSignInit(md, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestSign(md, raw + 4, &siglen, (unsigned char *)body, blen) == 1;
	EVP_MD_CTX_free(md);
	if (!ok)
		return -1;
	b64_encode(raw, 68, sigb64);
	need = blen + strlen(origin) + strlen(sigb64) + 16;
	*out = xcalloc(need, 1);
	snprintf(*out, need, "%s\n" EM_DASH " %s %s\n", body, origin, sigb64);
	return 0;
}

/*
 * The stored tree, read through merkle_get_fn: a node at a stored level
 * from table tree, any other from the level below it that is stored (or
 * from the entries' hashes), at most 2^(TREE_STRIDE-1) of them.
 */
static int
tree_get(void *arg, unsigned level, uint64_t index, uint8_t out[32])
{
	struct audit	*a = arg;
	unsigned	 base = level - level % TREE_STRIDE, k = level - base;
	uint64_t	 cnt = (uint64_t)1 << k, first = index << k, got = 0;
	unsigned char	 h[1 << (TREE_STRIDE - 1)][32];
	sqlite3_stmt	*st;
	int		 rc;

	if (level >= 63 || index >= ((uint64_t)1 << (63 - level)))
		return -1;
	if (level > 0 && k == 0) {
		if (a->get_node == NULL && sqlite3_prepare_v3(a->db, "SELECT hash FROM "
		    "tree WHERE level = ?1 AND idx = ?2", -1, SQLITE_PREPARE_PERSISTENT,
		    &a->get_node, NULL) != SQLITE_OK)
			return -1;
		st = a->get_node;
		sqlite3_bind_int(st, 1, (int)level);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)index);
		rc = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32;
		if (rc)
			memcpy(out, sqlite3_column_blob(st, 0), 32);
		sqlite3_reset(st);
		return rc ? 0 : -1;
	}
	if (base == 0) {
		if (a->get_leaves == NULL && sqlite3_prepare_v3(a->db, "SELECT seq, hash "
		    "FROM entries WHERE seq >= ?1 AND seq < ?2 ORDER BY seq", -1,
		    SQLITE_PREPARE_PERSISTENT, &a->get_leaves, NULL) != SQLITE_OK)
			return -1;
		st = a->get_leaves;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)(first + 1));
		sqlite3_bind_int64(st, 2, (sqlite3_int64)(first + cnt + 1));
	} else {
		if (a->get_nodes == NULL && sqlite3_prepare_v3(a->db, "SELECT idx, hash "
		    "FROM tree WHERE level = ?3 AND idx >= ?1 AND idx < ?2 ORDER BY idx",
		    -1, SQLITE_PREPARE_PERSISTENT, &a->get_nodes, NULL) != SQLITE_OK)
			return -1;
		st = a->get_nodes;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)first);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)(first + cnt));
		sqlite3_bind_int(st, 3, (int)base);
	}
	while (got < cnt && sqlite3_step(st) == SQLITE_ROW) {
		if ((uint64_t)sqlite3_column_int64(st, 0) != first + got + (base == 0) ||
		    sqlite3_column_bytes(st, 1) != 32)
			break;
		if (base == 0)
			merkle_leaf(sqlite3_column_blob(st, 1), h[got]);
		else
			memcpy(h[got], sqlite3_column_blob(st, 1), 32);
		got++;
	}
	sqlite3_reset(st);
	if (got != cnt)
		return -1;
	for (uint64_t w = cnt; w > 1; w /= 2)
		for (uint64_t i = 0; i < w / 2; i++)
			merkle_node(h[2 * i], h[2 * i + 1], h[i]);
	memcpy(out, h[0], 32);
	return 0;
}

/* merkle_node_fn for appends: stores the nodes of the stored levels. */
static void
tree_put(void *arg, unsigned level, uint64_t index, const uint8_t hash[32])
{
	struct audit *a = arg;

	if (level == 0 || level % TREE_STRIDE != 0)
		return;
	sqlite3_bind_int(a->ins_node, 1, (int)level);
	sqlite3_bind_int64(a->ins_node, 2, (sqlite3_int64)index);
	sqlite3_bind_blob(a->ins_node, 3, hash, 32, SQLITE_TRANSIENT);
	if (sqlite3_step(a->ins_node) != SQLITE_DONE)
		a->node_failed = 1;
	sqlite3_reset(a->ins_node);
}

struct tree_build {
	struct audit		*a;
	struct merkle_range	 r;
};

static int
tree_build_cb(const struct audit_entry *e, void *arg)
{
	struct tree_build	*b = arg;
	unsigned char		 leaf[32];

	merkle_leaf(e->hash, leaf);
	merkle_range_append(&b->r, leaf, tree_put, b->a);
	return b->a->node_failed;
}

static int audit_scan_hashes(struct audit *, audit_cb, void *);

/*
 * The writer's tree: complete in table tree for the log's size, or built
 * again from the entries' hashes (a log of version 2, once; a table that
 * lost rows), then loaded as the compact range appends extend.
 */
static int
tree_sync(struct audit *a)
{
	sqlite3_stmt	*st;
	int		 complete = 1;
	long long	 rows = 0;
	uint64_t	 want = 0;

	for (unsigned l = TREE_STRIDE; l < 63; l += TREE_STRIDE)
		want += a->size >> l;
	if (int_query(a, "SELECT count(*) FROM tree", &rows) == -1)
		return fail(a, "tree");
	complete = (uint64_t)rows == want;
	if (!complete) {
		struct tree_build b;

		memset(&b, 0, sizeof(b));
		b.a = a;
		merkle_range_init(&b.r);
		log_info("event=log_tree_build entries=%llu",
		    (unsigned long long)a->size);
		if (sqlite3_exec(a->db, "BEGIN IMMEDIATE; DELETE FROM tree", NULL, NULL,
		    NULL) != SQLITE_OK)
			return fail(a, "tree");
		a->node_failed = 0;
		if (audit_scan_hashes(a, tree_build_cb, &b) == -1 || a->node_failed ||
		    b.r.size != a->size ||
		    sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			fail(a, "tree");
			sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
	}
	(void)st;
	if (merkle_range_load(&a->range, a->size, tree_get, a) == -1) {
		snprintf(a->err, sizeof(a->err), "the stored Merkle tree cannot be read");
		return -1;
	}
	return 0;
}

/* Loads the head of the chain, the log id and the last checkpoint. */
static int
load_state(struct audit *a)
{
	sqlite3_stmt	*st;
	long long	 v = 0;

	if (sqlite3_prepare_v2(a->db, "SELECT seq, hash FROM entries ORDER BY seq "
	    "DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return fail(a, "head");
	if (sqlite3_step(st) == SQLITE_ROW) {
		a->size = (uint64_t)sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) == 32)
			memcpy(a->head, sqlite3_column_blob(st, 1), 32);
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(a->db, "SELECT value FROM meta WHERE key = 'log_id'",
	    -1, &st, NULL) != SQLITE_OK)
		return fail(a, "log id");
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16)
		memcpy(a->log_id, sqlite3_column_blob(st, 0), 16);
	sqlite3_finalize(st);
	if (int_query(a, "SELECT coalesce(max(size), 0) FROM checkpoints", &v) == -1)
		return fail(a, "checkpoints");
	a->cp_size = (uint64_t)v;
	v = 0;
	if (int_query(a, "SELECT coalesce(max(time), 0) FROM checkpoints", &v) == -1)
		return fail(a, "checkpoints");
	a->cp_time = v;
	v = 0;
	if (int_query(a, "SELECT coalesce(max(time), 0) FROM entries WHERE seq = "
	    "(SELECT max(seq) FROM entries)", &v) == -1)
		return fail(a, "head");
	a->last_time = v;
	free(a->note);
	a->note = NULL;
	a->cp_n = 0;
	a->cp_tree_size = 0;
	if (audit_checkpoint_note(a, 0, &a->note) == -1)
		return -1;
	if (a->note != NULL) {
		struct cpnote	 c;
		char		 why[128];

		if (note_parse(a->note, &c, why, sizeof(why)) == -1) {
			snprintf(a->err, sizeof(a->err), "the last checkpoint: %s", why);
			return -1;
		}
		a->cp_n = c.n;
		a->cp_tree_size = c.size;
	}
	return 0;
}

static int
open_common(struct audit **out, const char *path, int readonly, char *err,
    size_t errlen)
{
	struct audit	*a = xcalloc(1, sizeof(*a));
	long long	 version = 0;
	int		 flags = readonly ? SQLITE_OPEN_READONLY :
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

	*out = NULL;
	a->path = xstrdup(path);
	if (sqlite3_open_v2(path, &a->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, a->db ? sqlite3_errmsg(a->db) :
		    "cannot open");
		audit_close(a);
		return -1;
	}
	sqlite3_busy_timeout(a->db, 5000);
	/* Durable on commit: WAL with synchronous=FULL fsyncs the WAL on COMMIT. */
	if (!readonly && sqlite3_exec(a->db, "PRAGMA journal_mode=WAL; "
	    "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	if (int_query(a, "PRAGMA user_version", &version) == -1)
		goto dberr;
	if (version >= 1 && version < 3 && readonly) {
		/* The version-2 layout lacks the tree: read it as it is. */
	} else if (version == 0 && readonly) {
		snprintf(err, errlen, "%s: not a safeshare disclosure log", path);
		audit_close(a);
		return -1;
	}
	if (version == 0) {
		unsigned char id[16];

		RAND_bytes(id, sizeof(id));
		if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(a->db, schema, NULL, NULL, NULL) != SQLITE_OK)
			goto dberr;
		{
			sqlite3_stmt *st;

			if (sqlite3_prepare_v2(a->db, "INSERT INTO meta(key, value) "
			    "VALUES ('log_id', ?1)", -1, &st, NULL) != SQLITE_OK)
				goto dberr;
			sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
			if (sqlite3_step(st) != SQLITE_DONE) {
				sqlite3_finalize(st);
				goto dberr;
			}
			sqlite3_finalize(st);
		}
		if (sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			goto dberr;
	} else if ((version == 1 || version == 2) && !readonly) {
		if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
		    (version == 1 && sqlite3_exec(a->db, upgrade_1_to_2, NULL, NULL,
		    NULL) != SQLITE_OK) ||
		    sqlite3_exec(a->db, upgrade_2_to_3, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
			goto dberr;
		}
		a->migrated = 1;
	} else if (version > AUDIT_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s: log schema version %lld is newer than this "
		    "program", path, version);
		audit_close(a);
		return -1;
	}
	a->legacy = version >= 1 && version < 3 && readonly;
	if (load_state(a) == -1) {
		snprintf(err, errlen, "%s: %s", path, a->err);
		audit_close(a);
		return -1;
	}
	/*
	 * The review queue's second half (denied requests that invoked an
	 * override, D15), added to logs of any version when a writer opens.
	 */
	if (!readonly && sqlite3_exec(a->db, "CREATE INDEX IF NOT EXISTS "
	    "entries_refused ON entries(seq) WHERE " OVERRIDE_REFUSED, NULL, NULL,
	    NULL) != SQLITE_OK)
		goto dberr;
	{
		struct stat sb;

		/* The file audit_file_gone() compares with. */
		if (stat(path, &sb) == 0) {
			a->dev = sb.st_dev;
			a->ino = sb.st_ino;
		}
	}
	if (!readonly) {
		char sql[1024];

		snprintf(sql, sizeof(sql), "INSERT INTO entries(%s) VALUES (?1, ?2, ?3, "
		    "?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
		    "?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)", columns);
		if (sqlite3_prepare_v3(a->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
		    &a->ins, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v3(a->db, "INSERT INTO checkpoints(size, head_hash, "
		    "time, signature, root, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1,
		    SQLITE_PREPARE_PERSISTENT, &a->ins_cp, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v3(a->db, "INSERT INTO tree(level, idx, hash) VALUES "
		    "(?1, ?2, ?3)", -1, SQLITE_PREPARE_PERSISTENT, &a->ins_node,
		    NULL) != SQLITE_OK)
			goto dberr;
		if (tree_sync(a) == -1) {
			snprintf(err, errlen, "%s: %s", path, a->err);
			audit_close(a);
			return -1;
		}
	}
	*out = a;
	return 0;
dberr:
	snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(a->db));
	audit_close(a);
	return -1;
}

int
audit_open(struct audit **out, const char *path, char *err, size_t errlen)
{
	return open_common(out, path, 0, err, errlen);
}

int
audit_open_reader(struct audit **out, const char *path, char *err, size_t errlen)
{
	return open_common(out, path, 1, err, errlen);
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	sqlite3_finalize(a->ins);
	sqlite3_finalize(a->ins_cp);
	sqlite3_finalize(a->ins_node);
	sqlite3_finalize(a->get_node);
	sqlite3_finalize(a->get_nodes);
	sqlite3_finalize(a->get_leaves);
	sqlite3_close(a->db);
	EVP_PKEY_free(a->signer);
	EVP_PKEY_free(a->prev_signer);
	free(a->note);
	free(a->path);
	free(a);
}

static int
wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct audit *a = arg;

	(void)db;
	(void)name;
	a->wal_pages = pages;
	return SQLITE_OK;
}

int
audit_wal_manual(struct audit *a)
{
	if (sqlite3_exec(a->db, "PRAGMA wal_autocheckpoint=0", NULL, NULL,
	    NULL) != SQLITE_OK)
		return fail(a, "wal_autocheckpoint");
	sqlite3_wal_hook(a->db, wal_hook, a);
	return 0;
}

int
audit_wal_pages(struct audit *a)
{
	return a->wal_pages;
}

int
audit_open_checkpointer(struct audit **out, const char *path, char *err,
    size_t errlen)
{
	struct audit *a = xcalloc(1, sizeof(*a));

	*out = NULL;
	if (sqlite3_open_v2(path, &a->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
	    NULL) != SQLITE_OK || sqlite3_exec(a->db, "PRAGMA synchronous=FULL",
	    NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, a->db ? sqlite3_errmsg(a->db) :
		    "cannot open");
		audit_close(a);
		return -1;
	}
	sqlite3_busy_timeout(a->db, 5000);
	*out = a;
	return 0;
}

int
audit_wal_checkpoint(struct audit *a, int *left)
{
	int nlog = 0, ncopied = 0, rc;

	rc = sqlite3_wal_checkpoint_v2(a->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
	    &nlog, &ncopied);
	if (left != NULL)
		*left = nlog > ncopied ? nlog - ncopied : 0;
	/* Busy: another checkpoint runs; the next call does the rest. */
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		return fail(a, "wal checkpoint");
	return 0;
}

/* Reads the checkpoint signing key; the caller frees it with EVP_PKEY_free(). */
static EVP_PKEY *
signer_load(const char *keyfile, char *err, size_t errlen)
{
	EVP_PKEY	*k;
	FILE		*fp;

	if (file_is_secret(keyfile, err, errlen) == -1)
		return NULL;
	if ((fp = fopen(keyfile, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", keyfile, strerror(errno));
		return NULL;
	}
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "%s: not an Ed25519 private key (PEM)", keyfile);
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

int
audit_check_signer(const char *keyfile, char *err, size_t errlen)
{
	EVP_PKEY	*k;

	if ((k = signer_load(keyfile, err, errlen)) == NULL)
		return -1;
	EVP_PKEY_free(k);
	return 0;
}

int
audit_set_signer(struct audit *a, const char *keyfile, uint64_t every,
    int64_t seconds, char *err, size_t errlen)
{
	EVP_PKEY	*k;

	if ((k = signer_load(keyfile, err, errlen)) == NULL)
		return -1;
	EVP_PKEY_free(a->signer);
	a->signer = k;
	a->cp_every = every ? every : 1000;
	a->cp_seconds = seconds ? seconds : 60;
	return 0;
}

char *
audit_public_pem(struct audit *a)
{
	BIO	*bio;
	char	*data, *out = NULL;
	long	 len;

	if (a->signer == NULL || (bio = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	if (PEM_write_bio_PUBKEY(bio, a->signer) == 1 &&
	    (len = BIO_get_mem_data(bio, &data)) > 0) {
		out = xcalloc((size_t)len + 1, 1);
		memcpy(out, data, (size_t)len);
	}
	BIO_free(bio);
	return out;
}

static int
insert(struct audit *a, const struct audit_entry *e)
{
	struct audit_entry	 tmp = *e;
	const char		**s[AUDIT_NSTRINGS];
	int			 rc;

	audit_entry_strings(&tmp, s);
	sqlite3_bind_int64(a->ins, 1, (sqlite3_int64)e->seq);
	sqlite3_bind_int64(a->ins, 2, e->time);
	for (int i = 0; i < AUDIT_NSTRINGS; i++)
		sqlite3_bind_text(a->ins, 3 + i, *s[i] ? *s[i] : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(a->ins, 25, (sqlite3_int64)e->ref_seq);
	sqlite3_bind_blob(a->ins, 26, e->prev_hash, 32, SQLITE_STATIC);
	sqlite3_bind_blob(a->ins, 27, e->hash, 32, SQLITE_STATIC);
	rc = sqlite3_step(a->ins);
	sqlite3_reset(a->ins);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Fills an entry from a row selected with `columns`; strings live until the next step. */
static void
row_entry(sqlite3_stmt *st, struct audit_entry *e)
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

static int
run_scan(struct audit *a, sqlite3_stmt *st, audit_cb cb, void *arg)
{
	struct audit_entry	 e;
	int			 rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_entry(st, &e);
		if (cb(&e, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return fail(a, "scan");
	return 0;
}

int
audit_scan(struct audit *a, uint64_t from, uint64_t limit, audit_cb cb, void *arg)
{
	sqlite3_stmt	*st;
	char		 sql[1024];

	snprintf(sql, sizeof(sql), "SELECT %s FROM entries WHERE seq >= ?1 ORDER BY "
	    "seq LIMIT ?2", columns);
	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
		return fail(a, "scan");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)from);
	sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
	return run_scan(a, st, cb, arg);
}

/*
 * Signs a tree checkpoint for the tree of a->size + pending entries (root)
 * and inserts it inside the open transaction; *note gets its text.
 */
static int
insert_checkpoint(struct audit *a, EVP_PKEY *key, uint64_t size,
    const unsigned char head[32], const unsigned char root[32], int64_t t,
    const char *next_key, char **note)
{
	struct cpnote	 c;
	char		 why[128];
	int		 rc;

	if (note_sign(key, a->log_id, size, root, t, a->cp_n + 1, next_key,
	    note) == -1 || note_parse(*note, &c, why, sizeof(why)) == -1 || c.nsig != 1) {
		snprintf(a->err, sizeof(a->err), "checkpoint: signing failed");
		return -1;
	}
	sqlite3_bind_int64(a->ins_cp, 1, (sqlite3_int64)size);
	sqlite3_bind_blob(a->ins_cp, 2, head, 32, SQLITE_STATIC);
	sqlite3_bind_int64(a->ins_cp, 3, t);
	sqlite3_bind_blob(a->ins_cp, 4, c.sig[0].sig, 64, SQLITE_TRANSIENT);
	sqlite3_bind_blob(a->ins_cp, 5, root, 32, SQLITE_STATIC);
	sqlite3_bind_text(a->ins_cp, 6, *note, -1, SQLITE_STATIC);
	rc = sqlite3_step(a->ins_cp);
	sqlite3_reset(a->ins_cp);
	if (rc != SQLITE_DONE) {
		free(*note);
		*note = NULL;
		return fail(a, "checkpoint");
	}
	return 0;
}

/*
 * The time to give an entry or checkpoint: never earlier than the last
 * (D7: the log's order is its time order). A clock that went back is
 * overruled, with a warning when it happens and a note when it is over.
 */
static int64_t
monotonic(struct audit *a, int64_t t)
{
	if (t < a->last_time) {
		if (!a->clock_back)
			log_warnx("event=clock_went_back by=%lld keeping=%lld",
			    (long long)(a->last_time - t), (long long)a->last_time);
		a->clock_back = 1;
		return a->last_time;
	}
	if (a->clock_back)
		log_info("event=clock_caught_up time=%lld", (long long)t);
	a->clock_back = 0;
	return t;
}

/*
 * One group commit: the entries, the tree nodes they complete and, with a
 * signer, the checkpoint over the new tree, in one transaction (D7, D16):
 * there is never an unsigned tail, before or after a crash. key and
 * next_key are the rotation's (see audit_check_start()); NULL: the signer.
 */
static int
append(struct audit *a, struct audit_entry **es, size_t n, struct audit_receipt *rc,
    EVP_PKEY *key, const char *next_key)
{
	struct merkle_range	 r = a->range;
	unsigned char		 head[32], root[32], (*leaves)[32] = NULL;
	uint64_t		 size = a->size;
	int64_t			 last = a->last_time, t;
	int			 back = a->clock_back;
	char			*note = NULL;

	if (audit_file_gone(a)) {
		snprintf(a->err, sizeof(a->err), "the log file %s was deleted or "
		    "replaced while open: nothing more is written to it (restore it "
		    "and restart)", a->path);
		return -1;
	}
	if (key == NULL)
		key = a->signer;
	memcpy(head, a->head, 32);
	if (rc != NULL)
		leaves = xcalloc(n ? n : 1, 32);
	if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		free(leaves);
		return fail(a, "begin");
	}
	a->node_failed = 0;
	for (size_t i = 0; i < n; i++) {
		struct audit_entry	*e = es[i];
		unsigned char		 leaf[32];

		e->time = monotonic(a, e->time);
		a->last_time = e->time;
		e->seq = ++size;
		memcpy(e->prev_hash, head, 32);
		audit_hash(e, e->hash);
		memcpy(head, e->hash, 32);
		if (insert(a, e) == -1) {
			fail(a, "insert");
			goto rollback;
		}
		merkle_leaf(e->hash, leaf);
		if (leaves != NULL)
			memcpy(leaves[i], leaf, 32);
		merkle_range_append(&r, leaf, tree_put, a);
	}
	if (a->node_failed) {
		fail(a, "tree");
		goto rollback;
	}
	merkle_range_root(&r, root);
	/* Checkpoints have their own order in time (D7): entries may be dated ahead. */
	t = (int64_t)time(NULL);
	if (t < a->cp_time)
		t = a->cp_time;
	if (key != NULL && insert_checkpoint(a, key, size, head, root, t, next_key,
	    &note) == -1)
		goto rollback;
	if (sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		fail(a, "commit");
		goto rollback;
	}
	if (rc != NULL) {
		struct merkle_batch *b = merkle_batch_new(&a->range,
		    (const uint8_t (*)[32])leaves, n);

		for (size_t i = 0; i < n; i++) {
			rc[i].seq = a->size + 1 + i;
			memcpy(rc[i].leaf, leaves[i], 32);
			rc[i].checkpoint = note;
			rc[i].nproof = 0;
			if (b == NULL || merkle_batch_proof(b, i, rc[i].proof,
			    &rc[i].nproof) == -1)
				rc[i].nproof = 0;
		}
		merkle_batch_free(b);
		free(leaves);
	}
	a->size = size;
	a->range = r;
	memcpy(a->head, head, 32);
	if (note != NULL) {
		free(a->note);
		a->note = note;
		a->cp_n++;
		a->cp_size = a->cp_tree_size = size;
		a->cp_time = t;
	}
	return 0;
rollback:
	sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	a->last_time = last;
	a->clock_back = back;
	free(note);
	free(leaves);
	return -1;
}

int
audit_append(struct audit *a, struct audit_entry **es, size_t n)
{
	return append(a, es, n, NULL, NULL, NULL);
}

int
audit_append_receipts(struct audit *a, struct audit_entry **es, size_t n,
    struct audit_receipt *rc)
{
	return append(a, es, n, rc, NULL, NULL);
}

int
audit_checkpoint_due(struct audit *a, int64_t now)
{
	(void)a;
	(void)now;
	return 0;
}

int
audit_file_gone(struct audit *a)
{
	if (!a->gone && a->ino != 0 && !same_file(a->path, a->dev, a->ino))
		a->gone = 1;
	return a->gone;
}

int
audit_set_previous_signer(struct audit *a, const char *keyfile, char *err,
    size_t errlen)
{
	EVP_PKEY	*k;
	FILE		*fp;

	if (file_is_secret(keyfile, err, errlen) == -1)
		return -1;
	if ((fp = fopen(keyfile, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", keyfile, strerror(errno));
		return -1;
	}
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "%s: not an Ed25519 private key (PEM)", keyfile);
		EVP_PKEY_free(k);
		return -1;
	}
	EVP_PKEY_free(a->prev_signer);
	a->prev_signer = k;
	return 0;
}

/* The hash of entry seq, recomputed from its row and compared: 0 or -1. */
static int
entry_intact(struct audit *a, uint64_t seq)
{
	struct audit_entry	 e;
	sqlite3_stmt		*st;
	char			 sql[1024];
	unsigned char		 h[32];
	int			 ok = 0;

	snprintf(sql, sizeof(sql), "SELECT %s FROM entries WHERE seq = ?1", columns);
	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
		return fail(a, "entry");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	if (sqlite3_step(st) == SQLITE_ROW) {
		row_entry(st, &e);
		audit_hash(&e, h);
		ok = memcmp(h, e.hash, 32) == 0;
	}
	sqlite3_finalize(st);
	return ok ? 0 : -1;
}

int
audit_check_start(struct audit *a, int dry_run, char *err, size_t errlen)
{
	struct cpnote	 c;
	char		 why[128], vk[256], origin[80];
	unsigned char	 root[32];
	long long	 from = -1;
	int		 by_new, by_old;

	if (a->note == NULL) {
		/* Empty, or of version 2 (read only, by -t): the start upgrades it. */
		if (a->size == 0 || a->legacy)
			return 0;
		/*
		 * Entries and no tree checkpoint: a log of version 2 the
		 * upgrade has just given a tree, and nothing else.
		 */
		if (int_query(a, "SELECT value FROM meta WHERE key = 'v3_from'",
		    &from) == -1 || from != (long long)a->size) {
			snprintf(err, errlen, "the log has %llu entries and no signed tree "
			    "checkpoint: its checkpoints were deleted; refusing to sign "
			    "over it (docs/security.md)", (unsigned long long)a->size);
			return -1;
		}
		if (a->signer == NULL || dry_run)
			return 0;
		log_warnx("event=log_upgraded entries=%llu signed_before=%llu reason=\""
		    "the first tree checkpoint signs the log as it stands\"",
		    (unsigned long long)a->size, (unsigned long long)a->cp_size);
		if (append(a, NULL, 0, NULL, NULL, NULL) == -1) {
			snprintf(err, errlen, "signing the upgraded log: %s", a->err);
			return -1;
		}
		return 0;
	}
	if (note_parse(a->note, &c, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "the log's last checkpoint: %s", why);
		return -1;
	}
	note_origin(a->log_id, origin);
	if (strcmp(c.origin, origin) != 0) {
		snprintf(err, errlen, "the log's last checkpoint belongs to another log");
		return -1;
	}
	if (a->signer == NULL) {
		snprintf(err, errlen, "the log is signed (%llu checkpoints) and "
		    "audit.signing_key is not set: refusing to add unsigned entries",
		    (unsigned long long)c.n);
		return -1;
	}
	if (c.size != a->size) {
		snprintf(err, errlen, c.size > a->size ? "the log ends at entry %llu but "
		    "its last checkpoint (%llu) signed %llu: entries were deleted" :
		    "entries %llu.. are past the last checkpoint (%llu, of %llu "
		    "entries): they were added outside the daemon",
		    (unsigned long long)(c.size > a->size ? a->size : c.size + 1),
		    (unsigned long long)c.n, (unsigned long long)c.size);
		return -1;
	}
	if (audit_root(a, c.size, root) == -1 || memcmp(root, c.root, 32) != 0 ||
	    (c.size > 0 && entry_intact(a, c.size) == -1)) {
		snprintf(err, errlen, "the log differs from what its last checkpoint "
		    "(%llu) signed: it was rewritten; run safeshare audit verify --log",
		    (unsigned long long)c.n);
		return -1;
	}
	by_new = note_signed_by(a->note, &c, a->signer);
	by_old = a->prev_signer != NULL && note_signed_by(a->note, &c, a->prev_signer);
	if (by_new) {
		if (a->prev_signer != NULL)
			log_warnx("event=previous_signing_key_unused reason=\"the log's "
			    "last checkpoint is already signed by audit.signing_key\"");
		return 0;
	}
	if (!by_old) {
		snprintf(err, errlen, "audit.signing_key is not the key that signed the "
		    "log's last checkpoint (%llu)%s; to change keys, set "
		    "audit.previous_signing_key to the old key for one start "
		    "(docs/security.md)", (unsigned long long)c.n, a->prev_signer ?
		    ", nor is audit.previous_signing_key" : "");
		return -1;
	}
	if (dry_run)
		return 0;
	/* The rotation: the old key signs a checkpoint naming the new one. */
	{
		struct audit_entry	 e, *ep = &e;
		char			 just[300];

		if (verifier_key(origin, a->signer, vk, sizeof(vk)) == -1)
			goto sign_fail;
		memset(&e, 0, sizeof(e));
		e.time = time(NULL);
		e.kind = "key_rotation";
		e.decision = "rotate";
		e.reason = "signing_key_changed";
		snprintf(just, sizeof(just), "next-key %s", vk);
		e.justification = just;
		if (append(a, &ep, 1, NULL, a->prev_signer, vk) == -1)
			goto sign_fail;
		log_warnx("event=signing_key_rotated checkpoint=%llu next_key=%s",
		    (unsigned long long)a->cp_n, vk);
	}
	return 0;
sign_fail:
	snprintf(err, errlen, "logging the key rotation: %s", a->err);
	return -1;
}

int
audit_checkpoint_note(struct audit *a, uint64_t size, char **note)
{
	sqlite3_stmt	*st;
	int		 rc;

	*note = NULL;
	if (a->legacy)
		return 1;
	if (sqlite3_prepare_v2(a->db, size == 0 ? "SELECT note FROM checkpoints WHERE "
	    "note IS NOT NULL ORDER BY size DESC, id DESC LIMIT 1" : "SELECT note FROM "
	    "checkpoints WHERE note IS NOT NULL AND size = ?1 ORDER BY id DESC LIMIT 1",
	    -1, &st, NULL) != SQLITE_OK)
		return fail(a, "checkpoint note");
	if (size != 0)
		sqlite3_bind_int64(st, 1, (sqlite3_int64)size);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    sqlite3_column_bytes(st, 0) <= AUDIT_NOTE_MAX)
		*note = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(a, "checkpoint note");
	return *note != NULL ? 0 : 1;
}

/* The log's size as this connection sees it now (a reader's moves on). */
static uint64_t
size_now(struct audit *a)
{
	long long v = 0;

	if (int_query(a, "SELECT coalesce(max(seq), 0) FROM entries", &v) == -1)
		return a->size;
	return (uint64_t)v;
}

int
audit_root(struct audit *a, uint64_t n, unsigned char root[32])
{
	if (a->legacy || n > size_now(a) || merkle_root_at(n, tree_get, a, root) == -1) {
		snprintf(a->err, sizeof(a->err), "no tree of %llu entries",
		    (unsigned long long)n);
		return -1;
	}
	return 0;
}

int
audit_consistency(struct audit *a, uint64_t m, uint64_t n, unsigned char proof[][32],
    size_t *len, char *err, size_t errlen)
{
	*len = 0;
	if (a->legacy || m > n || n > size_now(a)) {
		snprintf(err, errlen, "no consistency proof from %llu to %llu entries: "
		    "the log has %llu", (unsigned long long)m, (unsigned long long)n,
		    (unsigned long long)size_now(a));
		return -1;
	}
	if (merkle_consistency_proof(m, n, tree_get, a, proof, len) == -1) {
		snprintf(err, errlen, "the stored tree lacks a node for the proof");
		return -1;
	}
	return 0;
}

int
audit_inclusion(struct audit *a, uint64_t seq, uint64_t n, unsigned char proof[][32],
    size_t *len, char *err, size_t errlen)
{
	*len = 0;
	if (a->legacy || seq == 0 || seq > n || n > size_now(a)) {
		snprintf(err, errlen, "entry %llu is not in a tree of %llu entries",
		    (unsigned long long)seq, (unsigned long long)n);
		return -1;
	}
	if (merkle_inclusion_proof(seq - 1, n, tree_get, a, proof, len) == -1) {
		snprintf(err, errlen, "the stored tree lacks a node for the proof");
		return -1;
	}
	return 0;
}

/* Entries in seq order with only seq and hash filled (building the tree). */
static int
audit_scan_hashes(struct audit *a, audit_cb cb, void *arg)
{
	struct audit_entry	 e;
	sqlite3_stmt		*st;
	int			 rc;

	if (sqlite3_prepare_v2(a->db, "SELECT seq, hash FROM entries ORDER BY seq", -1,
	    &st, NULL) != SQLITE_OK)
		return fail(a, "scan");
	memset(&e, 0, sizeof(e));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		e.seq = (uint64_t)sqlite3_column_int64(st, 0);
		memset(e.hash, 0, 32);
		if (sqlite3_column_bytes(st, 1) == 32)
			memcpy(e.hash, sqlite3_column_blob(st, 1), 32);
		if (cb(&e, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fail(a, "scan");
}

/*
 * Attaches the subject index file, if there is one and it can be read, to
 * a connection about to query by subject (see audit_index_open()); one
 * attached before is kept while it is still the file at the path.
 */
static void
index_attach(struct audit *a)
{
	sqlite3_stmt	*st;
	char		 path[4096];
	struct stat	 sb;
	long long	 version = 0;

	index_path(a->path, path, sizeof(path));
	if (a->index) {
		if (same_file(path, a->index_dev, a->index_ino))
			return;
		sqlite3_exec(a->db, "DETACH DATABASE subj", NULL, NULL, NULL);
		a->index = 0;
	}
	if (stat(path, &sb) == -1 ||
	    sqlite3_prepare_v2(a->db, "ATTACH DATABASE ?1 AS subj", -1, &st, NULL) != SQLITE_OK)
		return;
	a->index_dev = sb.st_dev;
	a->index_ino = sb.st_ino;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	a->index = sqlite3_step(st) == SQLITE_DONE;
	sqlite3_finalize(st);
	if (a->index && (sqlite3_exec(a->db, "SELECT upto FROM subj.state", NULL, NULL,
	    NULL) != SQLITE_OK || int_query(a, "PRAGMA subj.user_version",
	    &version) == -1 || version != INDEX_VERSION)) {
		sqlite3_exec(a->db, "DETACH DATABASE subj", NULL, NULL, NULL);
		a->index = 0;
	}
}

/*
 * The condition for entries naming subject ?p: from the subject index up
 * to the seq it is complete for (when it belongs to this log), and from
 * the log's own rows after that.
 */
static void
where_subject(struct audit *a, int p, char *sql, size_t len)
{
	char	 upto[256];

	if (!a->index) {
		snprintf(sql + strlen(sql), len - strlen(sql), " AND subject = ?%d", p);
		return;
	}
	index_upto(a, upto, sizeof(upto));
	/*
	 * One lookup per generation, then the log's tail. An index of another
	 * log counts as complete up to nothing. The bound is spelled out as a
	 * scalar each time: joined in from a CTE, the planner scanned the whole
	 * log for the tail (an automatic index on subject).
	 */
	snprintf(sql + strlen(sql), len - strlen(sql), " AND subject = ?%d AND seq IN "
	    "(WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g "
	    "WHERE n < coalesce(%s, 0) / " STR(INDEX_GEN) ") "
	    "SELECT seq FROM subj.subject_index WHERE gen IN g AND subject = ?%d "
	    "AND seq <= coalesce(%s, 0) UNION ALL SELECT seq FROM main.entries WHERE "
	    "seq > coalesce(%s, 0) AND subject = ?%d)", p, upto, p, upto, upto, p);
}

/* Appends the filter's conditions; binds happen in bind_filter() in the same order. */
static void
where_filter(struct audit *a, const struct audit_filter *f, char *sql, size_t len)
{
	static const struct { size_t off; const char *col; } eq[] = {
		{ offsetof(struct audit_filter, subject), "subject" },
		{ offsetof(struct audit_filter, agency), "agency" },
		{ offsetof(struct audit_filter, practitioner), "practitioner" },
		{ offsetof(struct audit_filter, purpose), "purpose" },
		{ offsetof(struct audit_filter, decision), "decision" },
		{ offsetof(struct audit_filter, reason), "reason" },
		{ offsetof(struct audit_filter, kind), "kind" },
	};
	int p = 3;	/* ?1 and ?2 are the caller's */

	for (size_t i = 0; i < sizeof(eq) / sizeof(eq[0]); i++) {
		const char *v = *(const char *const *)(const void *)((const char *)f + eq[i].off);

		if (v == NULL || *v == '\0')
			continue;
		if (i == 0)
			where_subject(a, p++, sql, len);
		else
			snprintf(sql + strlen(sql), len - strlen(sql), " AND %s = ?%d",
			    eq[i].col, p++);
	}
	if (f->overrides_only)
		snprintf(sql + strlen(sql), len - strlen(sql), " AND " OVERRIDE_USED);
	if (f->from_time)
		snprintf(sql + strlen(sql), len - strlen(sql), " AND time >= ?%d", p++);
	if (f->to_time)
		snprintf(sql + strlen(sql), len - strlen(sql), " AND time < ?%d", p++);
}

static void
bind_filter(sqlite3_stmt *st, const struct audit_filter *f)
{
	const char *const v[] = { f->subject, f->agency, f->practitioner, f->purpose,
	    f->decision, f->reason, f->kind };
	int p = 3;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (v[i] != NULL && *v[i] != '\0')
			sqlite3_bind_text(st, p++, v[i], -1, SQLITE_STATIC);
	if (f->from_time)
		sqlite3_bind_int64(st, p++, f->from_time);
	if (f->to_time)
		sqlite3_bind_int64(st, p++, f->to_time);
}

int
audit_query(struct audit *a, const struct audit_filter *f, uint64_t after,
    uint64_t limit, int newest_first, audit_cb cb, void *arg)
{
	sqlite3_stmt	*st;
	char		 sql[4096];

	/* ?1 is the paging cursor and ?2 the limit; filters bind from ?3. */
	if (f->subject != NULL && *f->subject != '\0')
		index_attach(a);
	snprintf(sql, sizeof(sql), "SELECT %s FROM entries WHERE %s", columns,
	    newest_first ? "(?1 = 0 OR seq < ?1)" : "seq > ?1");
	where_filter(a, f, sql, sizeof(sql));
	snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), " ORDER BY seq %s LIMIT ?2",
	    newest_first ? "DESC" : "ASC");
	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
		return fail(a, "query");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
	sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
	bind_filter(st, f);
	return run_scan(a, st, cb, arg);
}

int
audit_stats(struct audit *a, const struct audit_filter *f, const char *by,
    audit_stat_cb cb, void *arg)
{
	static const struct { const char *name, *expr; } groups[] = {
		{ "agency", "agency" }, { "purpose", "purpose" },
		{ "decision", "decision" }, { "reason", "reason" }, { "kind", "kind" },
		{ "day", "date(time, 'unixepoch')" },
	};
	const char	*expr = NULL;
	sqlite3_stmt	*st;
	char		 sql[4096];
	int		 rc;

	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		if (strcmp(by, groups[i].name) == 0)
			expr = groups[i].expr;
	if (expr == NULL) {
		snprintf(a->err, sizeof(a->err), "cannot group by \"%s\" (agency, purpose, "
		    "decision, reason, kind or day)", by);
		return -1;
	}
	if (f->subject != NULL && *f->subject != '\0')
		index_attach(a);
	snprintf(sql, sizeof(sql), "SELECT %s AS k, count(*) FROM entries WHERE "
	    "?1 = ?1 AND ?2 = ?2", expr);
	where_filter(a, f, sql, sizeof(sql));
	snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), " GROUP BY k ORDER BY k");
	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
		return fail(a, "stats");
	sqlite3_bind_int(st, 1, 0);
	sqlite3_bind_int(st, 2, 0);
	bind_filter(st, f);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);

		if (cb(k ? k : "", (uint64_t)sqlite3_column_int64(st, 1), arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fail(a, "stats");
}

static int
pending_items(struct audit *a, const char *cond, const char *done_kind, audit_cb cb,
    void *arg)
{
	sqlite3_stmt	*st;
	char		 sql[4096];

	snprintf(sql, sizeof(sql), "SELECT %s FROM entries e WHERE seq IN (%s) "
	    "AND NOT EXISTS (SELECT 1 FROM entries r WHERE r.ref_seq = e.seq AND "
	    "r.kind = ?1) ORDER BY seq", columns, cond);
	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
		return fail(a, "pending");
	sqlite3_bind_text(st, 1, done_kind, -1, SQLITE_STATIC);
	return run_scan(a, st, cb, arg);
}

/* Overrides used, and denied requests that invoked one (D15). */
int
audit_reviews_pending(struct audit *a, audit_cb cb, void *arg)
{
	return pending_items(a, "SELECT seq FROM entries WHERE " OVERRIDE_USED
	    " UNION ALL SELECT seq FROM entries WHERE " OVERRIDE_REFUSED, "review",
	    cb, arg);
}

/* Overrides used without an accepted waiver (D6). */
int
audit_inform_pending(struct audit *a, audit_cb cb, void *arg)
{
	return pending_items(a, "SELECT seq FROM entries WHERE " OVERRIDE_USED
	    " AND " NO_WAIVER, "inform_done", cb, arg);
}

int
audit_checkpoints(struct audit *a, audit_checkpoint_cb cb, void *arg)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(a->db, a->legacy ? "SELECT id, size, head_hash, time, "
	    "signature, NULL FROM checkpoints ORDER BY size, id" : "SELECT id, size, "
	    "head_hash, time, signature, note FROM checkpoints ORDER BY size, id", -1,
	    &st, NULL) != SQLITE_OK)
		return fail(a, "checkpoints");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct audit_checkpoint cp;

		memset(&cp, 0, sizeof(cp));
		cp.id = (uint64_t)sqlite3_column_int64(st, 0);
		memcpy(cp.log_id, a->log_id, 16);
		cp.size = (uint64_t)sqlite3_column_int64(st, 1);
		if (sqlite3_column_bytes(st, 2) == 32)
			memcpy(cp.head, sqlite3_column_blob(st, 2), 32);
		cp.time = sqlite3_column_int64(st, 3);
		if (sqlite3_column_bytes(st, 4) == 64)
			memcpy(cp.sig, sqlite3_column_blob(st, 4), 64);
		cp.note = (const char *)sqlite3_column_text(st, 5);
		if (cb(&cp, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fail(a, "checkpoints");
}

/*
 * Streaming verification. Checkpoints come sorted by size, each no later
 * than the entry at its size (a database walk interleaves them; an export
 * may put them all first): a checkpoint's signature, number and time are
 * checked when it arrives, what it signed when the entries reach its size.
 */
struct vcp {
	uint64_t	 id;		/* its number (tree) or row id (legacy) */
	uint64_t	 size;
	int		 legacy;
	int		 held;		/* --since: the auditor's own copy */
	unsigned char	 hash[32];	/* root (tree) or head (legacy) */
};

struct audit_verifier {
	EVP_PKEY		*pub;		/* the first key */
	EVP_PKEY		*cur;		/* the key now, after next-key lines */
	EVP_PKEY		*owned;		/* cur, when a next-key made it */
	EVP_PKEY		**trust;	/* more keys (not owned) */
	size_t			 ntrust;
	unsigned char		 log_id[16];
	char			 origin[80];
	struct vcp		*pend;		/* sorted by size */
	size_t			 npend, cap;
	uint64_t		 expect;
	unsigned char		 prev[32];
	int64_t			 last_time;
	struct merkle_range	 range;
	uint64_t		 covered;	/* the largest checkpoint size */
	uint64_t		 last_n;	/* the last tree checkpoint's number */
	uint64_t		 last_tree_size;
	int64_t			 cp_time;
	uint64_t		 last_checked;	/* entries up to here matched a checkpoint */
	struct audit_verify_result res;
	int			 failed;
};

struct audit_verifier *
audit_verifier_new(EVP_PKEY *pub, const unsigned char log_id[16])
{
	struct audit_verifier *v = xcalloc(1, sizeof(*v));

	v->pub = v->cur = pub;
	memcpy(v->log_id, log_id, 16);
	note_origin(log_id, v->origin);
	v->expect = 1;
	merkle_range_init(&v->range);
	v->res.signatures_checked = pub != NULL;
	return v;
}

void
audit_verifier_trust(struct audit_verifier *v, EVP_PKEY *k)
{
	v->trust = realloc(v->trust, (v->ntrust + 1) * sizeof(*v->trust));
	if (v->trust == NULL)
		fatalx("%s: out of memory", __func__);
	v->trust[v->ntrust++] = k;
	if (v->pub == NULL)
		v->pub = v->cur = k;
	v->res.signatures_checked = 1;
}

static int
vfail(struct audit_verifier *v, uint64_t seq, uint64_t cp, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
vfail(struct audit_verifier *v, uint64_t seq, uint64_t cp, const char *fmt, ...)
{
	va_list ap;

	if (v->failed)
		return -1;
	v->failed = 1;
	v->res.bad_seq = seq;
	v->res.bad_checkpoint = cp;
	va_start(ap, fmt);
	vsnprintf(v->res.why, sizeof(v->res.why), fmt, ap);
	va_end(ap);
	return -1;
}

static void
pend_add(struct audit_verifier *v, const struct vcp *c)
{
	size_t i = v->npend;

	if (v->npend == v->cap) {
		v->cap = v->cap ? 2 * v->cap : 16;
		if ((v->pend = realloc(v->pend, v->cap * sizeof(*v->pend))) == NULL)
			fatalx("%s: out of memory", __func__);
	}
	/* The auditor's own copy last among equals: the log's checkpoint names. */
	while (i > 0 && (v->pend[i - 1].size > c->size || (v->pend[i - 1].size ==
	    c->size && v->pend[i - 1].held && !c->held)))
		i--;
	memmove(v->pend + i + 1, v->pend + i, (v->npend - i) * sizeof(*v->pend));
	v->pend[i] = *c;
	v->npend++;
}

/* The entries so far (expect - 1 of them) against the checkpoints of that size. */
static int
check_reached(struct audit_verifier *v)
{
	uint64_t	 size = v->expect - 1;
	unsigned char	 root[32];

	merkle_range_root(&v->range, root);
	while (v->npend > 0 && v->pend[0].size == size) {
		struct vcp *c = &v->pend[0];

		if (c->legacy && memcmp(c->hash, v->prev, 32) != 0)
			return vfail(v, size, 0, "entry %llu differs from what checkpoint "
			    "%llu signed: the log was rewritten", (unsigned long long)size,
			    (unsigned long long)c->id);
		if (!c->legacy && memcmp(c->hash, root, 32) != 0) {
			if (c->held)
				return vfail(v, v->last_checked + 1, 0, "the log's first %llu "
				    "entries differ from the checkpoint you hold (--since): "
				    "rewritten after entry %llu", (unsigned long long)size,
				    (unsigned long long)v->last_checked);
			return vfail(v, v->last_checked + 1, c->id, "entries %llu..%llu "
			    "differ from what checkpoint %llu signed (its tree root): the "
			    "log was rewritten", (unsigned long long)(v->last_checked + 1),
			    (unsigned long long)size, (unsigned long long)c->id);
		}
		v->last_checked = size;
		memmove(v->pend, v->pend + 1, (v->npend - 1) * sizeof(*v->pend));
		v->npend--;
	}
	return 0;
}

/* 1 if k signed the legacy checkpoint. */
static int
legacy_signed_by(const struct audit_checkpoint *cp, EVP_PKEY *k)
{
	unsigned char	 msg[128];
	size_t		 mlen = audit_checkpoint_message(cp, msg);
	EVP_MD_CTX	*md = EVP_MD_CTX_new();
	int		 ok;

	ok = k != NULL && md != NULL &&
	    EVP_DigestVerifyInit(md, NULL, NULL, NULL, k) == 1 &&
	    EVP_DigestVerify(md, cp->sig, 64, msg, mlen) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

static int
trusted(struct audit_verifier *v, const char *note, const struct cpnote *c,
    const struct audit_checkpoint *cp)
{
	if (note != NULL ? note_signed_by(note, c, v->cur) : legacy_signed_by(cp, v->cur))
		return 1;
	for (size_t i = 0; i < v->ntrust; i++)
		if (note != NULL ? note_signed_by(note, c, v->trust[i]) :
		    legacy_signed_by(cp, v->trust[i]))
			return 1;
	return 0;
}

int
audit_verifier_checkpoint(struct audit_verifier *v, const struct audit_checkpoint *cp)
{
	struct vcp	 p;
	struct cpnote	 c;
	char		 why[128];

	if (v->failed)
		return -1;
	memset(&p, 0, sizeof(p));
	p.size = cp->size;
	v->res.checkpoints_seen++;
	if (cp->note == NULL) {
		p.id = cp->id;
		p.legacy = 1;
		memcpy(p.hash, cp->head, 32);
		if (memcmp(cp->log_id, v->log_id, 16) != 0)
			return vfail(v, 0, 0, "checkpoint %llu belongs to another log",
			    (unsigned long long)cp->id);
		if (v->last_n > 0)
			return vfail(v, 0, 0, "a version-2 checkpoint (%llu) after tree "
			    "checkpoint %llu: inserted", (unsigned long long)cp->id,
			    (unsigned long long)v->last_n);
		if (v->pub != NULL) {
			if (!trusted(v, NULL, NULL, cp))
				return vfail(v, cp->size, 0, "checkpoint %llu (size %llu): the "
				    "signature does not verify: forged or altered",
				    (unsigned long long)cp->id, (unsigned long long)cp->size);
			v->res.checkpoints++;
		}
	} else {
		if (note_parse(cp->note, &c, why, sizeof(why)) == -1)
			return vfail(v, 0, v->last_n + 1, "the checkpoint after %llu: %s",
			    (unsigned long long)v->last_n, why);
		p.id = c.n;
		p.size = c.size;
		memcpy(p.hash, c.root, 32);
		if (strcmp(c.origin, v->origin) != 0)
			return vfail(v, 0, c.n, "checkpoint %llu belongs to another log (%s)",
			    (unsigned long long)c.n, c.origin);
		if (v->pub != NULL) {
			if (!trusted(v, cp->note, &c, NULL))
				return vfail(v, c.size, c.n, "checkpoint %llu (size %llu): the "
				    "signature does not verify with the log's key: forged or "
				    "altered", (unsigned long long)c.n,
				    (unsigned long long)c.size);
			v->res.checkpoints++;
			if (c.next_key[0] != '\0') {
				EVP_PKEY *k = verifier_key_parse(c.next_key);

				if (k == NULL)
					return vfail(v, c.size, c.n, "checkpoint %llu names a "
					    "next key that cannot be read",
					    (unsigned long long)c.n);
				EVP_PKEY_free(v->owned);
				v->cur = v->owned = k;
			}
		}
		if (c.n != v->last_n + 1)
			return vfail(v, v->last_tree_size + 1, v->last_n + 1, c.n > v->last_n + 1 ?
			    "checkpoint %llu is missing (the next is %llu): deleted" :
			    "checkpoint %llu appears twice or out of order (%llu)",
			    (unsigned long long)(v->last_n + 1), (unsigned long long)c.n);
		if (c.n > 1 && c.size <= v->last_tree_size)
			return vfail(v, c.size, c.n, "checkpoint %llu (size %llu) does not "
			    "grow the log past checkpoint %llu (size %llu)",
			    (unsigned long long)c.n, (unsigned long long)c.size,
			    (unsigned long long)v->last_n,
			    (unsigned long long)v->last_tree_size);
		if (c.time < v->cp_time)
			return vfail(v, c.size, c.n, "checkpoint %llu is dated before "
			    "checkpoint %llu: the clock went back or it was forged",
			    (unsigned long long)c.n, (unsigned long long)v->last_n);
		v->last_n = c.n;
		v->last_tree_size = c.size;
		v->cp_time = c.time;
	}
	if (p.size < v->covered)
		return vfail(v, p.size, p.id, "checkpoints out of order at %llu",
		    (unsigned long long)p.id);
	if (p.size < v->expect - 1)
		return vfail(v, p.size, p.id, "checkpoint %llu (size %llu) comes after "
		    "entry %llu", (unsigned long long)p.id, (unsigned long long)p.size,
		    (unsigned long long)(v->expect - 1));
	v->covered = p.size;
	pend_add(v, &p);
	return p.size == v->expect - 1 ? check_reached(v) : 0;
}

int
audit_verifier_since(struct audit_verifier *v, const char *note, char *err,
    size_t errlen)
{
	struct cpnote	 c;
	struct vcp	 p;
	char		 why[128];

	if (note_parse(note, &c, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "the checkpoint you hold: %s", why);
		return -1;
	}
	if (strcmp(c.origin, v->origin) != 0) {
		snprintf(err, errlen, "the checkpoint you hold is of another log (%s)",
		    c.origin);
		return -1;
	}
	if (v->pub == NULL || !trusted(v, note, &c, NULL)) {
		/* A rotation since: then it must be a key given as trusted. */
		snprintf(err, errlen, "the checkpoint you hold is not signed by a key "
		    "given with --pubkey");
		return -1;
	}
	memset(&p, 0, sizeof(p));
	p.id = c.n;
	p.size = c.size;
	p.held = 1;
	memcpy(p.hash, c.root, 32);
	pend_add(v, &p);
	return 0;
}

int
audit_verifier_entry(struct audit_verifier *v, const struct audit_entry *e)
{
	unsigned char h[32], leaf[32];

	if (v->failed)
		return -1;
	if (e->seq != v->expect)
		return vfail(v, v->expect, 0, "entry %llu is missing (next is %llu): "
		    "deleted or reordered", (unsigned long long)v->expect,
		    (unsigned long long)e->seq);
	if (memcmp(e->prev_hash, v->prev, 32) != 0)
		return vfail(v, e->seq, 0, "entry %llu does not link to the entry before "
		    "it: deleted, inserted or reordered", (unsigned long long)e->seq);
	audit_hash(e, h);
	if (memcmp(h, e->hash, 32) != 0)
		return vfail(v, e->seq, 0, "entry %llu's contents do not match its hash: "
		    "edited", (unsigned long long)e->seq);
	if (e->time < v->last_time)
		return vfail(v, e->seq, 0, "entry %llu is dated before the entry before "
		    "it: time went back (D7)", (unsigned long long)e->seq);
	v->last_time = e->time;
	merkle_leaf(h, leaf);
	merkle_range_append(&v->range, leaf, NULL, NULL);
	memcpy(v->prev, h, 32);
	v->expect++;
	v->res.entries++;
	/* A rewrite that recomputed the chain still contradicts a signed root. */
	return v->npend > 0 && v->pend[0].size == e->seq ? check_reached(v) : 0;
}

void
audit_verifier_finish(struct audit_verifier *v, struct audit_verify_result *res)
{
	uint64_t n = v->expect - 1;

	if (!v->failed && v->npend > 0) {
		if (v->pend[0].held)
			vfail(v, n + 1, 0, "the log is shorter than the checkpoint you hold "
			    "(--since): it covers %llu entries but the log ends at %llu",
			    (unsigned long long)v->pend[0].size, (unsigned long long)n);
		else
			vfail(v, n + 1, v->pend[0].legacy ? 0 : v->pend[0].id, "truncated: "
			    "checkpoint %llu covers %llu entries but the log ends at %llu",
			    (unsigned long long)v->pend[0].id,
			    (unsigned long long)v->pend[0].size, (unsigned long long)n);
	}
	if (!v->failed && n > v->covered && (v->pub != NULL || v->res.checkpoints_seen))
		vfail(v, v->covered + 1, 0, "entries %llu..%llu are not covered by a signed "
		    "checkpoint: added after the last one, or its checkpoints were "
		    "deleted", (unsigned long long)(v->covered + 1), (unsigned long long)n);
	if (!v->failed && v->pub == NULL && v->res.checkpoints_seen > 0)
		vfail(v, 0, 0, "the log has %llu signed checkpoints and no public key "
		    "was given: they were not verified, which is not a pass",
		    (unsigned long long)v->res.checkpoints_seen);
	v->res.ok = !v->failed;
	*res = v->res;
}

void
audit_verifier_free(struct audit_verifier *v)
{
	if (v == NULL)
		return;
	EVP_PKEY_free(v->owned);
	free(v->trust);
	free(v->pend);
	free(v);
}

struct vwalk {
	struct audit_verifier	*v;
	sqlite3_stmt		*cps;
	int			 have;		/* cps is on a row */
	int			 rc;
};

/* Feeds the checkpoints of size <= upto (all when upto is UINT64_MAX). */
static int
feed_checkpoints(struct vwalk *w, struct audit *a, uint64_t upto)
{
	while (w->have && (uint64_t)sqlite3_column_int64(w->cps, 1) <= upto) {
		struct audit_checkpoint cp;

		memset(&cp, 0, sizeof(cp));
		cp.id = (uint64_t)sqlite3_column_int64(w->cps, 0);
		memcpy(cp.log_id, a->log_id, 16);
		cp.size = (uint64_t)sqlite3_column_int64(w->cps, 1);
		if (sqlite3_column_bytes(w->cps, 2) == 32)
			memcpy(cp.head, sqlite3_column_blob(w->cps, 2), 32);
		cp.time = sqlite3_column_int64(w->cps, 3);
		if (sqlite3_column_bytes(w->cps, 4) == 64)
			memcpy(cp.sig, sqlite3_column_blob(w->cps, 4), 64);
		cp.note = (const char *)sqlite3_column_text(w->cps, 5);
		if (audit_verifier_checkpoint(w->v, &cp) == -1)
			return -1;
		if ((w->rc = sqlite3_step(w->cps)) != SQLITE_ROW) {
			w->have = 0;
			if (w->rc != SQLITE_DONE)
				return -1;
		}
	}
	return 0;
}

struct vwalk_entry {
	struct vwalk	*w;
	struct audit	*a;
};

static int
verify_entry_cb(const struct audit_entry *e, void *arg)
{
	struct vwalk_entry *x = arg;

	/* Those of its size first: the entry then checks them all at once. */
	return feed_checkpoints(x->w, x->a, e->seq) == -1 ||
	    audit_verifier_entry(x->w->v, e) == -1;
}

int
audit_verify_with(struct audit *a, struct audit_verifier *v,
    struct audit_verify_result *res)
{
	struct vwalk		 w = { v, NULL, 0, SQLITE_DONE };
	struct vwalk_entry	 x = { &w, a };
	int			 rc = 0;

	if (sqlite3_prepare_v2(a->db, a->legacy ? "SELECT id, size, head_hash, time, "
	    "signature, NULL FROM checkpoints ORDER BY size, id" : "SELECT id, size, "
	    "head_hash, time, signature, note FROM checkpoints ORDER BY size, id", -1,
	    &w.cps, NULL) != SQLITE_OK)
		rc = fail(a, "checkpoints");
	else {
		w.have = (w.rc = sqlite3_step(w.cps)) == SQLITE_ROW;
		if ((!w.have && w.rc != SQLITE_DONE) || feed_checkpoints(&w, a, 0) == -1 ||
		    audit_scan(a, 1, 0, verify_entry_cb, &x) == -1 ||
		    feed_checkpoints(&w, a, UINT64_MAX) == -1)
			rc = -1;
		if (w.rc != SQLITE_DONE && w.rc != SQLITE_ROW)
			rc = fail(a, "checkpoints");
	}
	sqlite3_finalize(w.cps);
	audit_verifier_finish(v, res);
	audit_verifier_free(v);
	if (rc == -1 && res->ok) {
		res->ok = 0;
		snprintf(res->why, sizeof(res->why), "%s", a->err);
	}
	return res->ok ? 0 : -1;
}

int
audit_verify(struct audit *a, EVP_PKEY *pub, struct audit_verify_result *res)
{
	return audit_verify_with(a, audit_verifier_new(pub, a->log_id), res);
}

EVP_PKEY *
audit_load_public_key(const char *path, char *err, size_t errlen)
{
	EVP_PKEY	*k;
	FILE		*fp;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	k = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
	fclose(fp);
	if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "%s: not an Ed25519 public key (PEM)", path);
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

int
audit_holder_batches(struct audit *a, uint64_t since, audit_batch_cb cb, void *arg)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(a->db, "SELECT request_id, min(seq), min(agency), "
	    "min(case_ref), min(time) FROM entries WHERE seq > ?1 AND kind = 'holder' "
	    "GROUP BY request_id HAVING sum(decision = 'rolled_back') = 0 ORDER BY 2",
	    -1, &st, NULL) != SQLITE_OK)
		return fail(a, "holder batches");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *rid = (const char *)sqlite3_column_text(st, 0);
		const char *agency = (const char *)sqlite3_column_text(st, 2);
		const char *store = (const char *)sqlite3_column_text(st, 3);

		if (cb(rid ? rid : "", (uint64_t)sqlite3_column_int64(st, 1),
		    agency ? agency : "", store ? store : "",
		    sqlite3_column_int64(st, 4), arg) == -1) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fail(a, "holder batches");
}

int
audit_last_store(struct audit *a, char *out, size_t len)
{
	sqlite3_stmt	*st;
	int		 rc;

	out[0] = '\0';
	if (sqlite3_prepare_v2(a->db, "SELECT case_ref FROM entries WHERE kind = "
	    "'store' ORDER BY seq DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return fail(a, "last store");
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		snprintf(out, len, "%s", sqlite3_column_text(st, 0) ?
		    (const char *)sqlite3_column_text(st, 0) : "");
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(a, "last store");
}

/*
 * The subject index. Which entries name a subject is kept in a database of
 * its own next to the log (<log>-subjects), written behind the log by
 * audit_index_update() (the daemon's checkpointer thread), never by an
 * append. It holds nothing the log does not: its state row names the log
 * (log_id) and the seq up to which it is complete, and a query by subject
 * reads it up to there and the log's own tail after that, so a missing,
 * lagging or foreign index file gives the same answers, only slower. Like
 * any SQLite index it is outside the hash chain; verify checks the entries,
 * and the index against them (audit_index_check()).
 */
int
audit_index_open(struct audit_index **out, const char *log, char *err, size_t errlen)
{
	struct audit_index	*x = xcalloc(1, sizeof(*x));
	sqlite3_stmt		*st = NULL;
	char			*path = x->path;
	struct stat		 sb;
	int			 ok = 0, version;

	*out = NULL;
	index_path(log, path, sizeof(x->path));
	/*
	 * A -wal or -shm without its database is left from a deleted index:
	 * SQLite would replay that WAL into the new file.
	 */
	if (stat(path, &sb) == -1 && errno == ENOENT) {
		char side[sizeof(x->path) + 8];

		snprintf(side, sizeof(side), "%s-wal", path);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", path);
		unlink(side);
	}
	if (sqlite3_open_v2(path, &x->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		goto fail;
	/* Created by the open: the file audit_index_replaced() compares with. */
	if (stat(path, &sb) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		audit_index_close(x);
		return -1;
	}
	x->dev = sb.st_dev;
	x->ino = sb.st_ino;
	sqlite3_busy_timeout(x->db, 5000);
	/*
	 * NORMAL: a power cut may lose the last updates, which are redone.
	 */
	if (sqlite3_exec(x->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
	    NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	/* Busy or failing: give up, rather than take a good index for an old one. */
	if (sqlite3_step(st) != SQLITE_ROW)
		goto fail;
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if ((version != INDEX_VERSION && sqlite3_exec(x->db, "DROP TABLE IF EXISTS "
	    "subject_index; DROP TABLE IF EXISTS state", NULL, NULL, NULL) != SQLITE_OK) ||
	    sqlite3_exec(x->db, index_schema, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "ATTACH DATABASE ?1 AS lg", -1, &st,
	    NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, log, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(x->db, "SELECT value FROM lg.meta WHERE key = 'log_id'",
	    -1, &st, NULL) != SQLITE_OK)
		goto fail;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16)
		memcpy(x->log_id, sqlite3_column_blob(st, 0), 16);
	sqlite3_finalize(st);
	/*
	 * An index of another log, or of a longer past of this one (the log
	 * was restored from a backup): start again.
	 */
	if (sqlite3_prepare_v2(x->db, "SELECT count(*) FROM state WHERE log_id = ?1 "
	    "AND upto <= (SELECT coalesce(max(seq), 0) FROM lg.entries)", -1, &st,
	    NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_blob(st, 1, x->log_id, 16, SQLITE_STATIC);
	ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
	sqlite3_finalize(st);
	st = NULL;
	if (!ok) {
		/* Deferred: see audit_index_update(). */
		if (sqlite3_exec(x->db, "BEGIN; DELETE FROM subject_index;",
		    NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(x->db, "UPDATE state SET log_id = ?1, upto = 0",
		    -1, &st, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_blob(st, 1, x->log_id, 16, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE ||
		    sqlite3_exec(x->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_finalize(st);
	}
	*out = x;
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", path, x->db ? sqlite3_errmsg(x->db) :
	    "cannot open");
	sqlite3_finalize(st);
	if (x->db != NULL && !sqlite3_get_autocommit(x->db))
		sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
	audit_index_close(x);
	return -1;
}

static int
index_fail(struct audit_index *x, const char *what)
{
	snprintf(x->err, sizeof(x->err), "%s: %s", what, sqlite3_errmsg(x->db));
	if (!sqlite3_get_autocommit(x->db))
		sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int
audit_index_update(struct audit_index *x, uint64_t most, uint64_t *left)
{
	sqlite3_stmt	*st;
	sqlite3_int64	 upto = 0, top = 0, to;

	*left = 0;
	/*
	 * Deferred, not IMMEDIATE: that would take the write lock of every
	 * attached database, the log's too, and the log's writer would wait
	 * (sleeping in its busy handler) while the index is updated. Only the
	 * daemon writes the index; should anything else have written it since
	 * this read began, the insert fails (SQLITE_BUSY_SNAPSHOT) and the
	 * next update, a second later, does the work.
	 */
	if (sqlite3_exec(x->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return index_fail(x, "begin");
	if (sqlite3_prepare_v2(x->db, "SELECT (SELECT upto FROM state), "
	    "(SELECT coalesce(max(seq), 0) FROM lg.entries)", -1, &st, NULL) != SQLITE_OK)
		return index_fail(x, "state");
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return index_fail(x, "state");
	}
	upto = sqlite3_column_int64(st, 0);
	top = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	to = top - upto > (sqlite3_int64)most ? upto + (sqlite3_int64)most : top;
	if (to > upto) {
		/* In key order, into the newest generation's pages. */
		if (sqlite3_prepare_v2(x->db, "INSERT OR IGNORE INTO subject_index(gen, "
		    "subject, seq) SELECT seq / " STR(INDEX_GEN) ", subject, seq FROM "
		    "lg.entries WHERE seq > ?1 AND seq <= ?2 AND " INDEXED " ORDER BY 1, 2, 3",
		    -1, &st, NULL) != SQLITE_OK)
			return index_fail(x, "index");
		sqlite3_bind_int64(st, 1, upto);
		sqlite3_bind_int64(st, 2, to);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_finalize(st);
			return index_fail(x, "index");
		}
		sqlite3_finalize(st);
		if (sqlite3_prepare_v2(x->db, "UPDATE state SET upto = ?1", -1, &st,
		    NULL) != SQLITE_OK)
			return index_fail(x, "state");
		sqlite3_bind_int64(st, 1, to);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_finalize(st);
			return index_fail(x, "state");
		}
		sqlite3_finalize(st);
	}
	if (sqlite3_exec(x->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return index_fail(x, "commit");
	*left = (uint64_t)(top - to);
	return 0;
}

int
audit_index_remembers(const char *log, unsigned char log_id[16], uint64_t *upto)
{
	sqlite3		*db = NULL;
	sqlite3_stmt	*st = NULL;
	char		 path[4096];
	struct stat	 sb;
	int		 rc = 0;

	index_path(log, path, sizeof(path));
	if (stat(path, &sb) == -1)
		return 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT log_id, upto FROM state WHERE id = 1", -1,
	    &st, NULL) != SQLITE_OK)
		rc = -1;
	else if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16) {
		memcpy(log_id, sqlite3_column_blob(st, 0), 16);
		*upto = (uint64_t)sqlite3_column_int64(st, 1);
		rc = 1;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

int
audit_memory_check(const struct audit_memory *mem, const char *who, int exists,
    const unsigned char log_id[16], uint64_t size, char *why, size_t whylen)
{
	char	 hex[33], now[33];

	hex_encode(mem->log_id, 16, hex);
	if (!exists) {
		snprintf(why, whylen, "%s remembers log %s with %llu entries, and "
		    "the log is missing", who, hex, (unsigned long long)mem->size);
		return -1;
	}
	if (memcmp(mem->log_id, log_id, 16) != 0) {
		hex_encode(log_id, 16, now);
		snprintf(why, whylen, "%s remembers log %s with %llu entries, and "
		    "this is %s log %s with %llu entries", who, hex,
		    (unsigned long long)mem->size, size == 0 ? "a new, empty" :
		    "another", now, (unsigned long long)size);
		return -1;
	}
	if (size < mem->size) {
		snprintf(why, whylen, "%s remembers log %s with %llu entries, and "
		    "it has only %llu: entries were cut from its end", who, hex,
		    (unsigned long long)mem->size, (unsigned long long)size);
		return -1;
	}
	return 0;
}

int
audit_index_replaced(struct audit_index *x)
{
	return !same_file(x->path, x->dev, x->ino);
}

const char *
audit_index_errmsg(struct audit_index *x)
{
	return x->err;
}

void
audit_index_close(struct audit_index *x)
{
	if (x == NULL)
		return;
	sqlite3_close(x->db);
	free(x);
}

int
audit_index_check(struct audit *a, uint64_t *upto, uint64_t *missing, uint64_t *extra)
{
	sqlite3_stmt	*st;
	char		 sql[2048], u[256];
	int		 rc;

	*upto = *missing = *extra = 0;
	index_attach(a);
	if (!a->index)
		return 1;
	index_upto(a, u, sizeof(u));
	/*
	 * Both ways: entries the index lacks, and index rows the log lacks (a
	 * row filed under the wrong generation is both: queries miss it).
	 */
	snprintf(sql, sizeof(sql), "WITH u(n) AS (SELECT %s), l AS (SELECT seq / "
	    STR(INDEX_GEN) " AS gen, subject, seq FROM main.entries, u WHERE "
	    "seq <= u.n AND " INDEXED "), x AS (SELECT gen, subject, seq FROM "
	    "subj.subject_index, u WHERE seq <= u.n) SELECT (SELECT n FROM u), "
	    "(SELECT count(*) FROM (SELECT * FROM l EXCEPT SELECT * FROM x)), "
	    "(SELECT count(*) FROM (SELECT * FROM x EXCEPT SELECT * FROM l))", u);
	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
		return fail(a, "index check");
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
			sqlite3_finalize(st);
			return 1;	/* another log's: queries do not use it */
		}
		*upto = (uint64_t)sqlite3_column_int64(st, 0);
		*missing = (uint64_t)sqlite3_column_int64(st, 1);
		*extra = (uint64_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : fail(a, "index check");
}

int
audit_verify_index(struct audit *a, struct audit_verify_result *res)
{
	int rc = audit_index_check(a, &res->index_upto, &res->index_missing,
	    &res->index_extra);

	res->index_checked = rc == 0;
	res->index_error = rc == -1;
	if (rc == -1)
		snprintf(res->index_why, sizeof(res->index_why), "%s", a->err);
	return rc == -1 ? -1 : 0;
}
