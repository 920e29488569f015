/*
 * RFC 9162 proofs and roots from the PostgreSQL log's stored tree
 * (issue 19), with the answers of audit_consistency(), audit_inclusion()
 * and audit_root() (audit_tree.c): the proofs are merkle.c's, read
 * through a merkle_get_fn over log_tree, which keeps every TREE_STRIDE-th
 * level as SQLite's table tree does (pglog_append() stores them). Each
 * call reads the head's size and every node in one REPEATABLE READ, READ
 * ONLY snapshot, so a proof is of one tree even while daemons append.
 */
#include <libpq-fe.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "audit_int.h"
#include "merkle.h"
#include "pglog.h"
#include "pglog_int.h"
#include "util.h"

/* The stored tree of one snapshot, for merkle_get_fn. */
struct pgtree {
	struct pglog	*p;
	PGconn		*conn;
	int		 failed;	/* a statement failed: err says why */
	char		 err[192];
};

/* A prepared read of the tree (pglog_query.c) with up to three numbers, binary rows. */
static PGresult *
tree_rows(struct pgtree *t, const char *name, int n, uint64_t a, uint64_t b,
    uint64_t c)
{
	char		 buf[3][24];
	const char	*vals[3] = { buf[0], buf[1], buf[2] };
	PGresult	*res;

	snprintf(buf[0], sizeof(buf[0]), "%" PRIu64, a);
	snprintf(buf[1], sizeof(buf[1]), "%" PRIu64, b);
	snprintf(buf[2], sizeof(buf[2]), "%" PRIu64, c);
	if ((res = pglog_query_prepared(t->p, name, n, vals, 1, t->err,
	    sizeof(t->err))) == NULL)
		t->failed = 1;
	return res;
}

/*
 * merkle_get_fn: a node at a stored level from log_tree, any other from
 * the stored level below it (or the entries' hashes), at most
 * 2^(TREE_STRIDE-1) rows, as audit_tree_get() reads SQLite's.
 */
static int
tree_get(void *arg, unsigned level, uint64_t index, uint8_t out[32])
{
	struct pgtree	*t = arg;
	unsigned	 base = level - level % TREE_STRIDE, k = level - base;
	uint64_t	 cnt = (uint64_t)1 << k, first = index << k, got = 0, v;
	unsigned char	 h[1 << (TREE_STRIDE - 1)][32];
	PGresult	*res;

	if (t->failed || level >= 63 || index >= ((uint64_t)1 << (63 - level)))
		return -1;
	if (level > 0 && k == 0) {
		if ((res = tree_rows(t, "pglog_r_node", 2, level, index, 0)) == NULL)
			return -1;
		v = PQntuples(res) == 1 && pglog_col_bytes(res, 0, 0, out, 32) == 0;
		PQclear(res);
		return v ? 0 : -1;
	}
	if (base == 0)
		res = tree_rows(t, "pglog_r_leaves", 2, first + 1, first + cnt + 1, 0);
	else
		res = tree_rows(t, "pglog_r_nodes", 3, first, first + cnt, base);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res) && got < cnt; i++) {
		unsigned char hash[32];

		if (pglog_col_u64(res, i, 0, &v) == -1 ||
		    v != first + got + (base == 0) ||
		    pglog_col_bytes(res, i, 1, hash, 32) == -1)
			break;
		if (base == 0)
			merkle_leaf(hash, h[got]);
		else
			memcpy(h[got], hash, 32);
		got++;
	}
	PQclear(res);
	if (got != cnt)
		return -1;
	merkle_fold(h, cnt, out);
	return 0;
}

/* Opens the snapshot and reads the log's size in it: 0 or -1 with err. */
static int
tree_begin(struct pglog *p, struct pgtree *t, uint64_t *size, char *err,
    size_t errlen)
{
	PGresult	*res;
	int		 ok;

	memset(t, 0, sizeof(*t));
	if (pglog_ready(p, err, errlen) == -1)
		return -1;
	t->p = p;
	t->conn = pglog_conn(p);
	if (pglog_exec(t->conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	    "proof", err, errlen) == -1)
		return -1;
	if ((res = pglog_query_prepared(p, "pglog_r_size", 0, NULL, 1, err,
	    errlen)) == NULL) {
		PQclear(PQexec(t->conn, "ROLLBACK"));
		return -1;
	}
	ok = PQntuples(res) == 1 && pglog_col_u64(res, 0, 0, size) == 0;
	PQclear(res);
	if (!ok) {
		PQclear(PQexec(t->conn, "ROLLBACK"));
		return errorf(err, errlen, "PostgreSQL log: the head row is missing or "
		    "malformed");
	}
	return 0;
}

/* Ends the snapshot; a node that could not be read is rc -1 with why. */
static int
tree_end(struct pgtree *t, int rc, char *err, size_t errlen)
{
	if (PQstatus(t->conn) == CONNECTION_OK &&
	    PQtransactionStatus(t->conn) != PQTRANS_IDLE)
		PQclear(PQexec(t->conn, "ROLLBACK"));
	if (rc == -1 && t->failed)
		return errorf(err, errlen, "%s", t->err);
	if (rc == -1)
		return errorf(err, errlen, "the stored tree lacks a node for the proof");
	return 0;
}

int
pglog_root(struct pglog *p, uint64_t n, unsigned char root[32], char *err,
    size_t errlen)
{
	struct pgtree	 t;
	uint64_t	 size;

	if (tree_begin(p, &t, &size, err, errlen) == -1)
		return -1;
	if (n > size) {
		tree_end(&t, 0, err, errlen);
		return errorf(err, errlen, "no tree of %llu entries",
		    (unsigned long long)n);
	}
	if (merkle_root_at(n, tree_get, &t, root) == -1 && !t.failed) {
		tree_end(&t, 0, err, errlen);
		return errorf(err, errlen, "no tree of %llu entries",
		    (unsigned long long)n);
	}
	return tree_end(&t, t.failed ? -1 : 0, err, errlen);
}

int
pglog_consistency(struct pglog *p, uint64_t m, uint64_t n, unsigned char proof[][32],
    size_t *len, char *err, size_t errlen)
{
	struct pgtree	 t;
	uint64_t	 size;

	*len = 0;
	if (tree_begin(p, &t, &size, err, errlen) == -1)
		return -1;
	if (m > n || n > size) {
		tree_end(&t, 0, err, errlen);
		return errorf(err, errlen, "no consistency proof from %llu to %llu "
		    "entries: the log has %llu", (unsigned long long)m,
		    (unsigned long long)n, (unsigned long long)size);
	}
	return tree_end(&t, merkle_consistency_proof(m, n, tree_get, &t, proof, len),
	    err, errlen);
}

int
pglog_inclusion(struct pglog *p, uint64_t seq, uint64_t n, unsigned char proof[][32],
    size_t *len, char *err, size_t errlen)
{
	struct pgtree	 t;
	uint64_t	 size;

	*len = 0;
	if (tree_begin(p, &t, &size, err, errlen) == -1)
		return -1;
	if (seq == 0 || seq > n || n > size) {
		tree_end(&t, 0, err, errlen);
		return errorf(err, errlen, "entry %llu is not in a tree of %llu entries",
		    (unsigned long long)seq, (unsigned long long)n);
	}
	return tree_end(&t, merkle_inclusion_proof(seq - 1, n, tree_get, &t, proof, len),
	    err, errlen);
}
