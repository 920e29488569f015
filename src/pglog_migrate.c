/*
 * An SQLite disclosure log copied into an empty PostgreSQL log (issue 19
 * item 5; pglog_migrate.h says what is guaranteed). The whole copy is one
 * transaction on the target's connection: the entries go in binary COPY
 * pages of PAGE entries, each followed by the tree nodes its entries
 * complete, then the checkpoints, then the head row; what was written is
 * verified and compared with the source inside that transaction, and only
 * then committed. A failure anywhere (a refused row, the connection lost,
 * the server process killed) rolls everything back: no half-migrated log
 * exists at any moment, so there is no "incomplete" state to mark.
 *
 * The SQLite log is read through its public API (audit_scan(),
 * audit_checkpoints()); rows are copied as stored. The tree nodes are
 * built from the stored entry hashes, as pglog_append() builds them, and
 * the root they give is compared with the SQLite log's own tree.
 */
#include <libpq-fe.h>
#include <openssl/evp.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_int.h"
#include "merkle.h"
#include "pglog.h"
#include "pglog_int.h"
#include "pglog_migrate.h"
#include "util.h"

#define PAGE		1000		/* entries per COPY */
#define COPYBUF		65536		/* bytes sent to libpq at a time */

struct node {
	unsigned	 level;
	uint64_t	 idx;
	unsigned char	 hash[32];
};

/* One migration's state: heap-allocated (the COPY buffer is large). */
struct mig {
	struct pglog		*pl;
	PGconn			*conn;
	struct audit		*src;
	uint64_t		 upto;		/* entries to copy (the source verified) */
	uint64_t		 copied;
	struct merkle_range	 range;		/* the tree of the entries copied */
	unsigned char		 last[32];	/* the last entry's hash */
	int64_t			 last_time;
	struct node		*nodes;		/* completed in this page */
	size_t			 nnodes, cap;
	uint64_t		 nodes_total;
	uint64_t		 ncp, cp_n;	/* checkpoints copied, the last number */
	uint64_t		 src_ncp;	/* ... in the source, up to `upto` */
	int64_t			 cp_time;
	uint64_t		 legacy;	/* version-2 checkpoints in the source */
	int			 copying;	/* a COPY of entries is open */
	int			 failed;
	char			 err[256];
	size_t			 len;
	char			 buf[COPYBUF];
};

static int
mfail(struct mig *m, const char *msg)
{
	if (!m->failed)
		errorf(m->err, sizeof(m->err), "%s", msg);
	m->failed = 1;
	return -1;
}

static int
flush(struct mig *m)
{
	if (m->failed)
		return -1;
	if (m->len > 0 && PQputCopyData(m->conn, m->buf, (int)m->len) != 1) {
		m->failed = 1;
		return pglog_fail(m->conn, NULL, "copy", m->err, sizeof(m->err));
	}
	m->len = 0;
	return 0;
}

static void
put(struct mig *m, const void *data, size_t len)
{
	if (m->failed)
		return;
	if (m->len + len > sizeof(m->buf) && flush(m) == -1)
		return;
	if (len > sizeof(m->buf)) {
		if (PQputCopyData(m->conn, data, (int)len) != 1) {
			pglog_fail(m->conn, NULL, "copy", m->err, sizeof(m->err));
			m->failed = 1;
		}
		return;
	}
	memcpy(m->buf + m->len, data, len);
	m->len += len;
}

static void
put_be(struct mig *m, uint64_t v, int bytes)
{
	char b[8];

	pglog_put_be64(b, v);
	put(m, b + 8 - bytes, (size_t)bytes);
}

/* One field of a binary COPY tuple: its length, then its bytes. */
static void
put_field(struct mig *m, const void *data, size_t len)
{
	if (len > INT32_MAX) {
		mfail(m, "PostgreSQL log: copy: a field is too long");
		return;
	}
	put_be(m, len, 4);
	put(m, data, len);
}

static void
put_i64(struct mig *m, uint64_t v)
{
	put_be(m, 8, 4);
	put_be(m, v, 8);
}

/* COPY table(columns) in binary: the signature, flags and extension length. */
static int
copy_begin(struct mig *m, const char *sql)
{
	static const char sig[] = "PGCOPY\n\377\r\n";	/* and its NUL */
	PGresult *res = PQexec(m->conn, sql);

	if (PQresultStatus(res) != PGRES_COPY_IN) {
		m->failed = 1;
		return pglog_fail(m->conn, res, "copy", m->err, sizeof(m->err));
	}
	PQclear(res);
	m->len = 0;
	put(m, sig, sizeof(sig));
	put_be(m, 0, 4);
	put_be(m, 0, 4);
	return m->failed ? -1 : 0;
}

static int
copy_end(struct mig *m, const char *what)
{
	PGresult	*res;
	int		 ok = 1;

	put_be(m, 0xffff, 2);		/* the trailer: a field count of -1 */
	if (flush(m) == -1)
		return -1;
	if (PQputCopyEnd(m->conn, NULL) != 1) {
		m->failed = 1;
		return pglog_fail(m->conn, NULL, what, m->err, sizeof(m->err));
	}
	while ((res = PQgetResult(m->conn)) != NULL) {
		if (ok && PQresultStatus(res) != PGRES_COMMAND_OK) {
			ok = 0;
			m->failed = 1;
			pglog_fail(m->conn, res, what, m->err, sizeof(m->err));
			continue;
		}
		PQclear(res);
	}
	return ok ? 0 : -1;
}

/* merkle_node_fn: the nodes of the stored levels, written after the page. */
static void
keep_node(void *arg, unsigned level, uint64_t index, const uint8_t hash[32])
{
	struct mig	*m = arg;
	struct node	*n;

	if (level == 0 || level % TREE_STRIDE != 0 || m->failed)
		return;
	if (m->nnodes == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 128;

		if ((n = reallocarray(m->nodes, cap, sizeof(*n))) == NULL) {
			mfail(m, "PostgreSQL log: tree: out of memory");
			return;
		}
		m->nodes = n;
		m->cap = cap;
	}
	n = &m->nodes[m->nnodes++];
	n->level = level;
	n->idx = index;
	memcpy(n->hash, hash, 32);
}

/* Ends the page's COPY, writes its tree nodes, runs the test hook. */
static int
end_page(struct mig *m)
{
	if (!m->copying)
		return 0;
	m->copying = 0;
	if (copy_end(m, "copy entries") == -1)
		return -1;
	if (m->nnodes > 0) {
		if (copy_begin(m, "COPY log_tree(level, idx, hash) FROM STDIN "
		    "(FORMAT binary)") == -1)
			return -1;
		for (size_t i = 0; i < m->nnodes; i++) {
			put_be(m, 3, 2);
			put_be(m, 4, 4);
			put_be(m, m->nodes[i].level, 4);
			put_i64(m, m->nodes[i].idx);
			put_field(m, m->nodes[i].hash, 32);
		}
		if (copy_end(m, "copy tree") == -1)
			return -1;
		m->nodes_total += m->nnodes;
		m->nnodes = 0;
	}
	pglog_run_hook(m->pl, (size_t)m->copied);
	return 0;
}

/* audit_cb: one entry, as stored, into the open page (a new one if none). */
static int
copy_entry(const struct audit_entry *e, void *arg)
{
	struct mig	*m = arg;
	const char	*s[AUDIT_NCOLS];
	unsigned char	 leaf[32];
	char		 sql[1024];

	if (e->seq != m->copied + 1) {
		errorf(m->err, sizeof(m->err), "the SQLite log has entry %" PRIu64
		    " after entry %" PRIu64, e->seq, m->copied);
		m->failed = 1;
		return 1;
	}
	if (!m->copying) {
		snprintf(sql, sizeof(sql), "COPY log_entries(%s) FROM STDIN "
		    "(FORMAT binary)", audit_columns);
		if (copy_begin(m, sql) == -1)
			return 1;
		m->copying = 1;
	}
	memset(s, 0, sizeof(s));
#define F(name)	s[AUDIT_COL_##name] = e->name != NULL ? e->name : "";
	AUDIT_STRING_FIELDS(F)
#undef F
	put_be(m, AUDIT_NCOLS, 2);
	for (int i = 0; i < AUDIT_NCOLS; i++) {
		if (i == AUDIT_COL_seq)
			put_i64(m, e->seq);
		else if (i == AUDIT_COL_time)
			put_i64(m, (uint64_t)e->time);
		else if (i == AUDIT_COL_ref_seq)
			put_i64(m, e->ref_seq);
		else if (i == AUDIT_COL_prev_hash)
			put_field(m, e->prev_hash, 32);
		else if (i == AUDIT_COL_hash)
			put_field(m, e->hash, 32);
		else
			put_field(m, s[i], strlen(s[i]));
	}
	/* The hash as stored: the tree is of what the log holds. */
	merkle_leaf(e->hash, leaf);
	merkle_range_append(&m->range, leaf, keep_node, m);
	memcpy(m->last, e->hash, 32);
	m->last_time = e->time;
	m->copied++;
	if (m->copied % PAGE == 0 && end_page(m) == -1)
		return 1;
	return m->failed;
}

/* audit_checkpoint_cb: counts those within the copy, and the legacy ones. */
static int
count_cp(const struct audit_checkpoint *cp, void *arg)
{
	struct mig *m = arg;

	if (cp->size <= m->upto) {
		m->src_ncp++;
		if (cp->note == NULL)
			m->legacy++;
	}
	return 0;
}

/* audit_checkpoint_cb: one checkpoint, its note and signature as stored. */
static int
copy_cp(const struct audit_checkpoint *cp, void *arg)
{
	struct mig	*m = arg;
	struct cpnote	 c;
	char		 why[128];

	if (cp->size > m->upto)
		return 0;
	if (cp->note == NULL || audit_note_parse(cp->note, &c, why, sizeof(why)) == -1 ||
	    c.size != cp->size) {
		mfail(m, "the SQLite log has a checkpoint that is not a signed "
		    "tree note");
		return 1;
	}
	put_be(m, 7, 2);
	put_i64(m, c.n);
	put_i64(m, cp->size);
	put_field(m, cp->head, 32);
	put_i64(m, (uint64_t)cp->time);
	put_field(m, cp->sig, 64);
	put_field(m, c.root, 32);
	put_field(m, cp->note, strlen(cp->note));
	m->ncp++;
	if (c.n > m->cp_n) {
		m->cp_n = c.n;
		m->cp_time = cp->time;
	}
	return m->failed;
}

/* The target is empty (locking its head), whatever log it was made for. */
static int
check_empty(struct mig *m, const unsigned char src_id[16])
{
	PGresult	*res;
	uint64_t	 size, n[3];
	unsigned char	 id[16];
	char		 hex[33];

	res = PQexecParams(m->conn, "SELECT log_id, size, (SELECT count(*) FROM "
	    "log_entries), (SELECT count(*) FROM log_checkpoints), (SELECT count(*) "
	    "FROM log_tree) FROM log_head WHERE one FOR UPDATE", 0, NULL, NULL, NULL,
	    NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return pglog_fail(m->conn, res, "lock head", m->err, sizeof(m->err));
	if (PQntuples(res) != 1 || pglog_col_bytes(res, 0, 0, id, 16) == -1 ||
	    pglog_col_u64(res, 0, 1, &size) == -1 || pglog_col_u64(res, 0, 2, &n[0]) == -1 ||
	    pglog_col_u64(res, 0, 3, &n[1]) == -1 || pglog_col_u64(res, 0, 4, &n[2]) == -1) {
		PQclear(res);
		return errorf(m->err, sizeof(m->err), "PostgreSQL log: the head row is "
		    "missing or malformed");
	}
	PQclear(res);
	if (size == 0 && n[0] == 0 && n[1] == 0 && n[2] == 0)
		return 0;
	hex_encode(id, 16, hex);
	return errorf(m->err, sizeof(m->err), "the PostgreSQL log is not empty (log %s: "
	    "%" PRIu64 " entries, %" PRIu64 " checkpoints, %" PRIu64 " tree nodes)%s; "
	    "a log is migrated only into an empty one", hex, n[0], n[1], n[2],
	    memcmp(id, src_id, 16) == 0 ? ", and it is this log: already migrated?" :
	    ", and it is another log");
}

static int
move_head(struct mig *m, const unsigned char id[16])
{
	char		 sb[24], nb[24], cb[24], lb[24];
	const char	*vals[7] = { (const char *)id, sb, (const char *)m->last,
			    (const char *)m->range.h, nb, cb, lb };
	int		 lens[7] = { 16, 0, 32, (int)(32 * m->range.n), 0, 0, 0 };
	int		 fmts[7] = { 1, 0, 1, 1, 0, 0, 0 };
	PGresult	*res;

	snprintf(sb, sizeof(sb), "%" PRIu64, m->copied);
	snprintf(nb, sizeof(nb), "%" PRIu64, m->cp_n);
	snprintf(cb, sizeof(cb), "%" PRId64, m->cp_time);
	snprintf(lb, sizeof(lb), "%" PRId64, m->last_time);
	res = PQexecParams(m->conn, "UPDATE log_head SET log_id = $1, size = $2, "
	    "head = $3, frontier = $4, cp_n = $5, cp_time = $6, last_time = $7 "
	    "WHERE one", 7, NULL, vals, lens, fmts, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK || strcmp(PQcmdTuples(res), "1") != 0)
		return pglog_fail(m->conn, res, "move head", m->err, sizeof(m->err));
	PQclear(res);
	return 0;
}

static struct audit_verifier *
verifier(EVP_PKEY **keys, size_t nkeys, const unsigned char id[16])
{
	struct audit_verifier *v = audit_verifier_new(nkeys > 0 ? keys[0] : NULL, id);

	for (size_t i = 1; v != NULL && i < nkeys; i++)
		audit_verifier_trust(v, keys[i]);
	return v;
}

/*
 * What was written, against the source: it verifies (chain, signatures,
 * head row) with the same keys, and has the source's size, root, number of
 * checkpoints and last checkpoint note, byte for byte.
 */
static int
compare(struct mig *m, EVP_PKEY **keys, size_t nkeys, const unsigned char id[16],
    struct pglog_migration *out)
{
	struct audit_verify_result	 r;
	unsigned char			 root[32];
	PGresult			*res;
	char				*note = NULL, serr[256];
	int				 same;

	if (pglog_verify_txn(m->pl, verifier(keys, nkeys, id), &r) == -1)
		return errorf(m->err, sizeof(m->err), "the migrated log does not verify "
		    "in PostgreSQL (entry %" PRIu64 ", checkpoint %" PRIu64 "): %s",
		    r.bad_seq, r.bad_checkpoint, r.why);
	if (r.entries != m->upto || r.checkpoints_seen != m->src_ncp)
		return errorf(m->err, sizeof(m->err), "the migrated log has %" PRIu64
		    " entries and %" PRIu64 " checkpoints, the source %" PRIu64 " and %"
		    PRIu64, r.entries, r.checkpoints_seen, m->upto, m->src_ncp);
	merkle_range_root(&m->range, out->root);
	if (m->copied > 0 && audit_root(m->src, m->copied, root, serr,
	    sizeof(serr)) == -1)
		return errorf(m->err, sizeof(m->err), "the SQLite log's root hash: %s",
		    serr);
	if (m->copied > 0 && memcmp(root, out->root, 32) != 0)
		return errorf(m->err, sizeof(m->err), "the migrated log's root hash at "
		    "size %" PRIu64 " is not the SQLite log's", m->copied);
	if (m->src_ncp == 0)
		return 0;
	res = PQexec(m->conn, "SELECT size, note FROM log_checkpoints ORDER BY size "
	    "DESC, n DESC LIMIT 1");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		return pglog_fail(m->conn, res, "last checkpoint", m->err, sizeof(m->err));
	same = audit_checkpoint_note(m->src, strtoull(PQgetvalue(res, 0, 0), NULL, 10),
	    &note, serr, sizeof(serr)) == 0 && strcmp(note, PQgetvalue(res, 0, 1)) == 0;
	PQclear(res);
	free(note);
	if (!same)
		return errorf(m->err, sizeof(m->err), "the migrated log's last checkpoint "
		    "note is not the SQLite log's");
	out->signatures_checked = r.signatures_checked;
	return 0;
}

int
pglog_migrate(struct audit *src, struct pglog *dst, EVP_PKEY **keys, size_t nkeys,
    struct pglog_migration *out, char *err, size_t errlen)
{
	return pglog_migrate_with(src, dst, keys, nkeys, NULL, NULL, out, err,
	    errlen);
}

int
pglog_migrate_with(struct audit *src, struct pglog *dst, EVP_PKEY **keys,
    size_t nkeys, pglog_migrate_also also, void *arg, struct pglog_migration *out,
    char *err, size_t errlen)
{
	struct audit_verify_result	 r;
	struct mig			*m;
	char				 serr[256];
	int				 began = 0, rc = -1;

	memset(out, 0, sizeof(*out));
	audit_log_id(src, out->log_id);
	/* The source first: a log that does not verify is not copied. */
	if (audit_verify_with(src, verifier(keys, nkeys, out->log_id), &r) == -1)
		return errorf(err, errlen, "the SQLite log does not verify (entry %"
		    PRIu64 ", checkpoint %" PRIu64 "): %s%s; nothing migrated", r.bad_seq,
		    r.bad_checkpoint, r.why, nkeys == 0 ? " (its public key: --pubkey)" : "");
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return errorf(err, errlen, "out of memory");
	m->pl = dst;
	m->src = src;
	m->upto = r.entries;
	merkle_range_init(&m->range);
	if (audit_checkpoints(src, count_cp, m, serr, sizeof(serr)) == -1) {
		errorf(m->err, sizeof(m->err), "the SQLite log's checkpoints: %s", serr);
		goto fail;
	}
	if (m->legacy > 0) {
		errorf(m->err, sizeof(m->err), "the SQLite log has %" PRIu64 " version-2 "
		    "checkpoints (signed over the chain head, not a tree), which the "
		    "PostgreSQL log cannot hold", m->legacy);
		goto fail;
	}
	if (pglog_ready(dst, m->err, sizeof(m->err)) == -1)
		goto fail;
	m->conn = pglog_conn(dst);
	if (pglog_exec(m->conn, "BEGIN", "begin", m->err, sizeof(m->err)) == -1)
		goto fail;
	began = 1;
	if (check_empty(m, out->log_id) == -1)
		goto fail;
	/* (audit_scan()'s limit 0 would be no limit.) */
	if ((m->upto > 0 && audit_scan(src, 1, m->upto, copy_entry, m, serr,
	    sizeof(serr)) == -1) || m->failed || end_page(m) == -1) {
		if (!m->failed)
			errorf(m->err, sizeof(m->err), "the SQLite log's entries: %s",
			    serr);
		goto fail;
	}
	if (m->copied != m->upto) {
		errorf(m->err, sizeof(m->err), "the SQLite log gave %" PRIu64 " entries, "
		    "%" PRIu64 " verified", m->copied, m->upto);
		goto fail;
	}
	if (copy_begin(m, "COPY log_checkpoints(n, size, head_hash, time, signature, "
	    "root, note) FROM STDIN (FORMAT binary)") == -1)
		goto fail;
	if ((audit_checkpoints(src, copy_cp, m, serr, sizeof(serr)) == -1 &&
	    !m->failed) || m->failed) {
		if (!m->failed)
			errorf(m->err, sizeof(m->err), "the SQLite log's checkpoints: %s",
			    serr);
		goto fail;
	}
	if (copy_end(m, "copy checkpoints") == -1 || move_head(m, out->log_id) == -1 ||
	    compare(m, keys, nkeys, out->log_id, out) == -1)
		goto fail;
	if (also != NULL && also(m->conn, out->log_id, m->copied, arg, m->err,
	    sizeof(m->err)) == -1)
		goto fail;
	if (pglog_exec(m->conn, "COMMIT", "commit", m->err, sizeof(m->err)) == -1)
		goto fail;
	began = 0;
	rc = 0;
fail:
	if (began && PQstatus(m->conn) == CONNECTION_OK &&
	    PQtransactionStatus(m->conn) != PQTRANS_IDLE)
		PQclear(PQexec(m->conn, "ROLLBACK"));
	out->entries = m->copied;
	out->checkpoints = m->ncp;
	out->nodes = m->nodes_total;
	if (rc == -1)
		errorf(err, errlen, "%s", m->err);
	free(m->nodes);
	free(m);
	return rc;
}
