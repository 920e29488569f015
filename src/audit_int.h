/*
 * Private to the audit_*.c files: the log's handles, the macros their SQL
 * shares, and the helpers one file provides to the others. Nothing outside
 * src/audit_*.c includes it (tests do, to pin formats).
 */
#ifndef SAFESHARE_AUDIT_INT_H
#define SAFESHARE_AUDIT_INT_H

#include <sys/types.h>

#include <openssl/evp.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "merkle.h"

/*
 * What the queues read (docs/audit-format.md). An override is used when its
 * reason says it decided the outcome: a request that named an exception it
 * did not need (consent granted) is a plain release, neither reviewed nor
 * an inform item nor counted (D5, D6, issue 15). Each predicate implies
 * the partial index it is served by (entries_override, entries_refused).
 */
#define OVERRIDE_USED	"override_code != '' AND kind = 'disclosure' AND " \
	"decision != 'deny' AND reason IN ('override', 'override_partial')"
/*
 * Entries of the kinds the daemon looks up at start (store: the last store
 * opened; holder: batches a crash may have left unapplied). They are few
 * among the disclosures, so each partial index takes a page now and then.
 */
#define AUDIT_RARE_KIND_INDEXES \
	"CREATE INDEX IF NOT EXISTS entries_store ON entries(seq) " \
	"WHERE kind = 'store';" \
	"CREATE INDEX IF NOT EXISTS entries_holder ON entries(seq) " \
	"WHERE kind = 'holder';"
#define OVERRIDE_REFUSED "override_code != '' AND kind = 'disclosure' AND " \
	"decision = 'deny'"
/*
 * No accepted waiver: none, or one logged behind the not-accepted marker
 * (POLICY_WAIVER_REJECTED: the user includes policy.h).
 */
#define NO_WAIVER	"(inform_waiver = '' OR inform_waiver GLOB '" \
	POLICY_WAIVER_REJECTED "*')"

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

/* The entries the subject index holds; its update and its check agree on it. */
#define INDEXED	"subject IS NOT NULL AND subject != ''"

struct audit {
	sqlite3		*db;
	sqlite3_stmt	*ins;
	sqlite3_stmt	*ins_cp;
	uint64_t	 size;
	unsigned char	 head[32];
	unsigned char	 log_id[16];
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
	int		 fd;		/* O_PATH on the file opened, for its link count; or -1 */
	int		 migrated;	/* upgraded to version 3 by this open */
	int		 legacy;	/* a version-2 log read as it is (no tree) */
	int		 time_index;	/* has entries_time: made before times were kept in order */
	int		 cp_by_id;	/* no checkpoints_size: checkpoints in id order (audit.c) */
	sqlite3_stmt	*ins_node;
	sqlite3_stmt	*begin;		/* the writer's BEGIN IMMEDIATE and COMMIT */
	sqlite3_stmt	*commit;
	sqlite3_stmt	*get_node;	/* prepared on first use */
	sqlite3_stmt	*get_nodes;
	sqlite3_stmt	*get_leaves;
	int		 node_failed;	/* an insert into tree failed in this commit */
	struct merkle_range range;	/* the tree of the first `size` entries */
	EVP_PKEY	*prev_signer;	/* the key being rotated from */
	uint64_t	 cp_n;		/* tree checkpoints so far (the last one's number) */
	uint64_t	 cp_tree_size;	/* entries the last tree checkpoint covers */
	uint64_t	 start_steps;	/* audit_start_steps() */
	int64_t		 last_time;	/* of the last entry or checkpoint */
	int		 clock_back;	/* warned that the clock went back */
	void		(*gate)(void *);	/* audit_set_commit_gate() */
	void		*gate_arg;
	char		*note;		/* the last checkpoint's note */
	struct note_signer *nsigner;	/* the writer's, for signer (insert_checkpoint()) */
};

struct audit_index {
	sqlite3		*db;		/* the index file, the log attached as lg */
	unsigned char	 log_id[16];
	char		 path[4096];
	dev_t		 dev;		/* the file opened at path */
	ino_t		 ino;
};

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

/*
 * The columns of table entries, in this order in audit_columns: the text
 * members' come from audit_fields.h, so a row is read by name, not number.
 */
enum audit_col {
	AUDIT_COL_seq,
	AUDIT_COL_time,
#define F(name)	AUDIT_COL_##name,
	AUDIT_STRING_FIELDS(F)
#undef F
	AUDIT_COL_ref_seq,
	AUDIT_COL_prev_hash,
	AUDIT_COL_hash,
	AUDIT_NCOLS
};
extern const char *const audit_columns;	/* "seq, time, kind, ..., hash" */
extern const char *const audit_insert_sql;	/* INSERT of every column */

/* audit.c */
/* "what: <SQLite's message>" into err; returns -1. */
int	 audit_sqlerr(struct audit *, const char *what, char *err, size_t errlen);
int	 audit_int_query(struct audit *, const char *sql, long long *out);
/* Reads the rows of st (selected with audit_columns) into cb; finalizes st. */
int	 audit_run_scan(struct audit *, sqlite3_stmt *, audit_cb, void *, char *err,
	    size_t errlen);
/*
 * One group commit (see audit_append()); key and next_key sign a key
 * rotation's checkpoint (audit_check_start()), NULL: the signer.
 */
int	 audit_commit(struct audit *, struct audit_entry **, size_t n,
	    struct audit_receipt *, EVP_PKEY *key, const char *next_key, char *err,
	    size_t errlen);

/* audit_entry.c */
void	 audit_row_entry(sqlite3_stmt *, struct audit_entry *);
/*
 * Binds every column of audit_insert_sql, each string of the length lens
 * gives (audit_hash_lens()); the strings must outlive the step.
 */
void	 audit_entry_bind(sqlite3_stmt *, const struct audit_entry *,
	    const size_t lens[AUDIT_NSTRINGS]);
/* audit_hash(), and the strings' lengths, in audit_entry_strings() order. */
void	 audit_hash_lens(const struct audit_entry *, unsigned char out[32],
	    size_t lens[AUDIT_NSTRINGS]);

/* audit_note.c */
void	 audit_note_origin(const unsigned char log_id[16], char out[80]);
int	 audit_note_parse(const char *note, struct cpnote *, char *why, size_t wlen);
int	 audit_note_signed_by(const char *note, const struct cpnote *, EVP_PKEY *);
int	 audit_note_sign(EVP_PKEY *, const unsigned char log_id[16], uint64_t size,
	    const unsigned char root[32], int64_t t, uint64_t n, const char *next_key,
	    char **out);
struct note_signer;
int	 audit_note_sign_with(struct note_signer *, const unsigned char log_id[16],
	    uint64_t size, const unsigned char root[32], int64_t t, uint64_t n,
	    const char *next_key, char **out, unsigned char sig[64]);
int	 audit_verifier_key(const char *name, EVP_PKEY *, char *out, size_t len);
EVP_PKEY *audit_verifier_key_parse(const char *);

/*
 * audit_start.c: the key_rotation entry, built here for both backends
 * (audit_check_start(); logstore_pg.c through pglog_rotate()): e made
 * anew, dated now, its justification "next-key VK", VK the new key's
 * verifier key for the log's origin, which goes into vk too (the
 * checkpoint names it). vk and just are the caller's and must outlive e.
 * 0, or -1 when the key has no verifier key.
 */
#define AUDIT_VK_LEN		256
#define AUDIT_ROTATION_LEN	300
int	 audit_rotation_entry(struct audit_entry *e, int64_t now,
	    const char *origin, EVP_PKEY *next, char vk[AUDIT_VK_LEN],
	    char just[AUDIT_ROTATION_LEN]);

/* audit_tree.c */
int	 audit_tree_get(void *arg, unsigned level, uint64_t index, uint8_t out[32]);
void	 audit_tree_put(void *arg, unsigned level, uint64_t index,
	    const uint8_t hash[32]);
int	 audit_tree_sync(struct audit *, char *err, size_t errlen);

/* audit_query.c: what the SQLite and the PostgreSQL queries share */
#define AUDIT_FILTER_TERMS	7	/* subject, agency, ..., kind */
size_t	 audit_filter_terms(const struct audit_filter *,
	    const char *cols[AUDIT_FILTER_TERMS], const char *vals[AUDIT_FILTER_TERMS]);
/* The stats groupings, in order; audit_stats_group() gives the index. */
#define AUDIT_STATS_GROUPS	"agency", "purpose", "decision", "reason", "kind", "day"
int	 audit_stats_group(const char *by, char *err, size_t errlen);
/* The checkpoints' rows in the order they are read and verified. */
const char *audit_checkpoints_sql(const struct audit *);

/* audit_index.c */
void	 audit_index_path(const char *log, char *out, size_t len);
int	 audit_same_file(const char *path, dev_t dev, ino_t ino);
void	 audit_index_upto(const struct audit *, char *out, size_t len);
void	 audit_index_attach(struct audit *);

#endif
