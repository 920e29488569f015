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
    " head_hash BLOB NOT NULL, time INTEGER NOT NULL, signature BLOB NOT NULL);"
    "PRAGMA user_version = 2;";

/*
 * Version 2 moved the index by subject out of the log (see audit_index_*
 * below): each append dirtied one random leaf of entries_subject per
 * entry, two thirds of the pages every commit wrote and synced.
 */
static const char *const upgrade_1_to_2 =
    "DROP INDEX IF EXISTS entries_subject;"
    "PRAGMA user_version = 2;";

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
	SHA256(buf, n, out);
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
	/* With no checkpoint yet, the clock for the timed one starts now. */
	a->cp_time = v ? v : (int64_t)time(NULL);
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
	if (version == 0 && readonly) {
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
	} else if (version == 1 && !readonly) {
		if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(a->db, upgrade_1_to_2, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
			goto dberr;
		}
	} else if (version > AUDIT_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s: log schema version %lld is newer than this "
		    "program", path, version);
		audit_close(a);
		return -1;
	}
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
	if (!readonly) {
		char sql[1024];

		snprintf(sql, sizeof(sql), "INSERT INTO entries(%s) VALUES (?1, ?2, ?3, "
		    "?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
		    "?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)", columns);
		if (sqlite3_prepare_v3(a->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
		    &a->ins, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v3(a->db, "INSERT INTO checkpoints(size, head_hash, "
		    "time, signature) VALUES (?1, ?2, ?3, ?4)", -1,
		    SQLITE_PREPARE_PERSISTENT, &a->ins_cp, NULL) != SQLITE_OK)
			goto dberr;
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
	sqlite3_close(a->db);
	EVP_PKEY_free(a->signer);
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

/* Signs and inserts a checkpoint for (size, head) inside the open transaction. */
static int
insert_checkpoint(struct audit *a, uint64_t size, const unsigned char head[32],
    int64_t now)
{
	struct audit_checkpoint	 cp;
	unsigned char		 msg[128];
	size_t			 mlen, siglen = sizeof(cp.sig);
	EVP_MD_CTX		*md;
	int			 rc;

	memset(&cp, 0, sizeof(cp));
	memcpy(cp.log_id, a->log_id, 16);
	cp.size = size;
	memcpy(cp.head, head, 32);
	cp.time = now;
	mlen = audit_checkpoint_message(&cp, msg);
	if ((md = EVP_MD_CTX_new()) == NULL)
		return -1;
	rc = EVP_DigestSignInit(md, NULL, NULL, NULL, a->signer) == 1 &&
	    EVP_DigestSign(md, cp.sig, &siglen, msg, mlen) == 1 ? 0 : -1;
	EVP_MD_CTX_free(md);
	if (rc == -1) {
		snprintf(a->err, sizeof(a->err), "checkpoint: signing failed");
		return -1;
	}
	sqlite3_bind_int64(a->ins_cp, 1, (sqlite3_int64)size);
	sqlite3_bind_blob(a->ins_cp, 2, head, 32, SQLITE_STATIC);
	sqlite3_bind_int64(a->ins_cp, 3, now);
	sqlite3_bind_blob(a->ins_cp, 4, cp.sig, (int)siglen, SQLITE_STATIC);
	rc = sqlite3_step(a->ins_cp);
	sqlite3_reset(a->ins_cp);
	return rc == SQLITE_DONE ? 0 : fail(a, "checkpoint");
}

int
audit_append(struct audit *a, struct audit_entry **es, size_t n)
{
	unsigned char	 head[32];
	uint64_t	 size = a->size;
	int64_t		 now = time(NULL);
	int		 cp = 0;

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
			goto rollback;
		}
	}
	if (a->signer != NULL && size - a->cp_size >= a->cp_every) {
		if (insert_checkpoint(a, size, head, now) == -1)
			goto rollback;
		cp = 1;
	}
	if (sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		fail(a, "commit");
		goto rollback;
	}
	a->size = size;
	memcpy(a->head, head, 32);
	if (cp) {
		a->cp_size = size;
		a->cp_time = now;
	}
	return 0;
rollback:
	sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int
audit_checkpoint_due(struct audit *a, int64_t now)
{
	if (a->signer == NULL || a->size == a->cp_size || now - a->cp_time < a->cp_seconds)
		return 0;
	if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return fail(a, "begin");
	if (insert_checkpoint(a, a->size, a->head, now) == -1 ||
	    sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	a->cp_size = a->size;
	a->cp_time = now;
	return 0;
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

	if (sqlite3_prepare_v2(a->db, "SELECT id, size, head_hash, time, signature "
	    "FROM checkpoints ORDER BY size, id", -1, &st, NULL) != SQLITE_OK)
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
		if (cb(&cp, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fail(a, "checkpoints");
}

/* Streaming verification. */
struct audit_verifier {
	EVP_PKEY		*pub;
	unsigned char		 log_id[16];
	struct audit_checkpoint	*cps;
	size_t			 ncps, next_cp;
	uint64_t		 expect;
	unsigned char		 prev[32];
	struct audit_verify_result res;
	int			 failed;
};

struct audit_verifier *
audit_verifier_new(EVP_PKEY *pub, const unsigned char log_id[16])
{
	struct audit_verifier *v = xcalloc(1, sizeof(*v));

	v->pub = pub;
	memcpy(v->log_id, log_id, 16);
	v->expect = 1;
	v->res.signatures_checked = pub != NULL;
	return v;
}

static int
vfail(struct audit_verifier *v, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
vfail(struct audit_verifier *v, uint64_t seq, const char *fmt, ...)
{
	va_list ap;

	if (v->failed)
		return -1;
	v->failed = 1;
	v->res.bad_seq = seq;
	va_start(ap, fmt);
	vsnprintf(v->res.why, sizeof(v->res.why), fmt, ap);
	va_end(ap);
	return -1;
}

int
audit_verifier_checkpoint(struct audit_verifier *v, const struct audit_checkpoint *cp)
{
	struct audit_checkpoint	*n;
	unsigned char		 msg[128];
	size_t			 mlen;

	if (v->failed)
		return -1;
	if (memcmp(cp->log_id, v->log_id, 16) != 0)
		return vfail(v, cp->size, "checkpoint %llu belongs to another log",
		    (unsigned long long)cp->id);
	if (v->pub != NULL) {
		EVP_MD_CTX	*md = EVP_MD_CTX_new();
		int		 ok;

		mlen = audit_checkpoint_message(cp, msg);
		ok = md != NULL && EVP_DigestVerifyInit(md, NULL, NULL, NULL, v->pub) == 1 &&
		    EVP_DigestVerify(md, cp->sig, 64, msg, mlen) == 1;
		EVP_MD_CTX_free(md);
		if (!ok)
			return vfail(v, cp->size, "checkpoint %llu (size %llu): the signature "
			    "does not verify: forged or altered", (unsigned long long)cp->id,
			    (unsigned long long)cp->size);
		v->res.checkpoints++;
	}
	if (v->ncps > 0 && cp->size < v->cps[v->ncps - 1].size)
		return vfail(v, cp->size, "checkpoints out of order at %llu",
		    (unsigned long long)cp->id);
	if ((n = realloc(v->cps, (v->ncps + 1) * sizeof(*n))) == NULL)
		return vfail(v, 0, "out of memory");
	v->cps = n;
	v->cps[v->ncps++] = *cp;
	return 0;
}

int
audit_verifier_entry(struct audit_verifier *v, const struct audit_entry *e)
{
	unsigned char h[32];

	if (v->failed)
		return -1;
	if (e->seq != v->expect)
		return vfail(v, v->expect, "entry %llu is missing (next is %llu): deleted "
		    "or reordered", (unsigned long long)v->expect,
		    (unsigned long long)e->seq);
	if (memcmp(e->prev_hash, v->prev, 32) != 0)
		return vfail(v, e->seq, "entry %llu does not link to the entry before it: "
		    "deleted, inserted or reordered", (unsigned long long)e->seq);
	audit_hash(e, h);
	if (memcmp(h, e->hash, 32) != 0)
		return vfail(v, e->seq, "entry %llu's contents do not match its hash: "
		    "edited", (unsigned long long)e->seq);
	/* A rewrite that recomputed the chain still contradicts a signed head. */
	while (v->next_cp < v->ncps && v->cps[v->next_cp].size == e->seq) {
		if (memcmp(v->cps[v->next_cp].head, h, 32) != 0)
			return vfail(v, e->seq, "entry %llu differs from what checkpoint %llu "
			    "signed: the log was rewritten", (unsigned long long)e->seq,
			    (unsigned long long)v->cps[v->next_cp].id);
		v->next_cp++;
	}
	memcpy(v->prev, h, 32);
	v->expect++;
	v->res.entries++;
	return 0;
}

void
audit_verifier_finish(struct audit_verifier *v, struct audit_verify_result *res)
{
	if (!v->failed && v->next_cp < v->ncps)
		vfail(v, v->expect, "truncated: checkpoint %llu covers %llu entries but "
		    "the log ends at %llu", (unsigned long long)v->cps[v->next_cp].id,
		    (unsigned long long)v->cps[v->next_cp].size,
		    (unsigned long long)(v->expect - 1));
	v->res.ok = !v->failed;
	*res = v->res;
}

void
audit_verifier_free(struct audit_verifier *v)
{
	if (v == NULL)
		return;
	free(v->cps);
	free(v);
}

static int
verify_cp_cb(const struct audit_checkpoint *cp, void *arg)
{
	return audit_verifier_checkpoint(arg, cp) == -1;
}

static int
verify_entry_cb(const struct audit_entry *e, void *arg)
{
	return audit_verifier_entry(arg, e) == -1;
}

int
audit_verify(struct audit *a, EVP_PKEY *pub, struct audit_verify_result *res)
{
	struct audit_verifier	*v = audit_verifier_new(pub, a->log_id);
	int			 rc = 0;

	if (audit_checkpoints(a, verify_cp_cb, v) == -1 ||
	    audit_scan(a, 1, 0, verify_entry_cb, v) == -1)
		rc = -1;
	audit_verifier_finish(v, res);
	audit_verifier_free(v);
	if (rc == -1 && res->ok) {
		res->ok = 0;
		snprintf(res->why, sizeof(res->why), "%s", a->err);
	}
	return res->ok ? 0 : -1;
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
