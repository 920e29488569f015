/*
 * The log's Merkle tree (RFC 9162 hashing) as stored beside the entries:
 * reading a node, storing the nodes a commit completes, building the tree
 * of a log that lacks it, and the roots and proofs read from it.
 */
#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_int.h"
#include "log.h"
#include "merkle.h"
#include "util.h"

/*
 * The stored tree, read through merkle_get_fn: a node at a stored level
 * from table tree, any other from the level below it that is stored (or
 * from the entries' hashes), at most 2^(TREE_STRIDE-1) of them.
 */
int
audit_tree_get(void *arg, unsigned level, uint64_t index, uint8_t out[32])
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
	merkle_fold(h, cnt, out);
	return 0;
}

/* merkle_node_fn for appends: stores the nodes of the stored levels. */
void
audit_tree_put(void *arg, unsigned level, uint64_t index, const uint8_t hash[32])
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
	merkle_range_append(&b->r, leaf, audit_tree_put, b->a);
	return b->a->node_failed;
}

static int audit_scan_hashes(struct audit *, audit_cb, void *, char *, size_t);

/*
 * The writer's tree: complete in table tree for the log's size, or built
 * again from the entries' hashes (a log of version 2, once; a table that
 * lost rows), then loaded as the compact range appends extend.
 */
int
audit_tree_sync(struct audit *a, char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	int		 complete = 1;
	long long	 rows = 0;
	uint64_t	 want = 0;

	for (unsigned l = TREE_STRIDE; l < 63; l += TREE_STRIDE)
		want += a->size >> l;
	if (audit_int_query(a, "SELECT count(*) FROM tree", &rows) == -1)
		return audit_sqlerr(a, "tree", err, errlen);
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
			return audit_sqlerr(a, "tree", err, errlen);
		a->node_failed = 0;
		if (audit_scan_hashes(a, tree_build_cb, &b, err, errlen) == -1 ||
		    a->node_failed || b.r.size != a->size ||
		    sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			audit_sqlerr(a, "tree", err, errlen);
			sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
	}
	(void)st;
	if (merkle_range_load(&a->range, a->size, audit_tree_get, a) == -1)
		return errorf(err, errlen, "the stored Merkle tree cannot be read");
	return 0;
}

/* The log's size as this connection sees it now (a reader's moves on). */
static uint64_t
size_now(struct audit *a)
{
	long long v = 0;

	if (audit_int_query(a, "SELECT coalesce(max(seq), 0) FROM entries", &v) == -1)
		return a->size;
	return (uint64_t)v;
}

int
audit_root(struct audit *a, uint64_t n, unsigned char root[32], char *err,
    size_t errlen)
{
	if (a->legacy || n > size_now(a) ||
	    merkle_root_at(n, audit_tree_get, a, root) == -1)
		return errorf(err, errlen, "no tree of %llu entries",
		    (unsigned long long)n);
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
	if (merkle_consistency_proof(m, n, audit_tree_get, a, proof, len) == -1) {
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
	if (merkle_inclusion_proof(seq - 1, n, audit_tree_get, a, proof, len) == -1) {
		snprintf(err, errlen, "the stored tree lacks a node for the proof");
		return -1;
	}
	return 0;
}

/* Entries in seq order with only seq and hash filled (building the tree). */
static int
audit_scan_hashes(struct audit *a, audit_cb cb, void *arg, char *err, size_t errlen)
{
	struct audit_entry	 e;
	sqlite3_stmt		*st;
	int			 rc;

	if (sqlite3_prepare_v2(a->db, "SELECT seq, hash FROM entries ORDER BY seq", -1,
	    &st, NULL) != SQLITE_OK)
		return audit_sqlerr(a, "scan", err, errlen);
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
	return rc == SQLITE_DONE ? 0 : audit_sqlerr(a, "scan", err, errlen);
}
