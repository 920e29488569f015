/*
 * The Merkle tree over the disclosure log (RFC 9162 section 2.1), beside
 * the hash chain (D15-D17). A leaf is an entry's chain hash: leaf hash =
 * SHA-256(0x00 || entry_hash), interior node = SHA-256(0x01 || left ||
 * right). Pure functions: no I/O, no clock, no allocation except in
 * merkle_batch_new(). Stored trees are read through an accessor, so the
 * same code proves from the SQLite store, from an export or from memory.
 *
 * A perfect subtree is named by (level, index): level 0 is the leaves, and
 * the node covers leaves [index << level, (index + 1) << level).
 */
#ifndef SAFESHARE_MERKLE_H
#define SAFESHARE_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH		32
#define MERKLE_MAX_PROOF	128	/* hashes in any proof; 2 * 64 is the bound */

/* Called for every perfect subtree an append completes (leaves included). */
typedef void	(*merkle_node_fn)(void *arg, unsigned level, uint64_t index,
		    const uint8_t hash[32]);
/* Returns the stored hash of a perfect subtree in out: 0, or -1 when unknown. */
typedef int	(*merkle_get_fn)(void *arg, unsigned level, uint64_t index,
		    uint8_t out[32]);

/*
 * A compact range: the roots of the perfect subtrees covering [0, size),
 * largest (leftmost) first. Enough to append and to compute the root.
 */
struct merkle_range {
	uint64_t	size;
	unsigned	n;
	uint8_t		h[64][32];
};

void	merkle_leaf(const uint8_t entry_hash[32], uint8_t out[32]);
void	merkle_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32]);
/*
 * The root of the perfect subtree over h[0..n), n a power of two, hashes
 * of one level in order; h is overwritten. The stored trees of both logs
 * (audit_tree.c, pglog_proof.c) finish a partly stored subtree with it.
 */
void	merkle_fold(uint8_t (*h)[32], uint64_t n, uint8_t out[32]);
/* The root of the empty tree: SHA-256 of the empty string. */
void	merkle_empty_root(uint8_t out[32]);

void	merkle_range_init(struct merkle_range *);
void	merkle_range_append(struct merkle_range *, const uint8_t leaf[32],
	    merkle_node_fn cb, void *arg);
void	merkle_range_root(const struct merkle_range *, uint8_t root[32]);
/* Rebuilds the compact range of a stored tree of the given size: 0 or -1. */
int	merkle_range_load(struct merkle_range *, uint64_t size, merkle_get_fn,
	    void *);

/*
 * Proofs from a stored tree. Each fills proof[] (room for MERKLE_MAX_PROOF)
 * and sets *n; returns 0, or -1 when the arguments are out of range or the
 * accessor lacks a node.
 */
int	merkle_root_at(uint64_t size, merkle_get_fn, void *, uint8_t root[32]);
int	merkle_inclusion_proof(uint64_t index, uint64_t size, merkle_get_fn,
	    void *, uint8_t proof[][32], size_t *n);
int	merkle_consistency_proof(uint64_t m, uint64_t n, merkle_get_fn, void *,
	    uint8_t proof[][32], size_t *len);

/*
 * Verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2): 0 when the proof
 * holds, -1 otherwise. A consistency proof from m == n is empty and needs
 * equal roots; from m == 0 it is empty (every tree extends the empty one).
 */
int	merkle_verify_inclusion(uint64_t index, uint64_t size,
	    const uint8_t leaf[32], const uint8_t proof[][32], size_t n,
	    const uint8_t root[32]);
int	merkle_verify_consistency(uint64_t m, uint64_t n,
	    const uint8_t root_m[32], const uint8_t root_n[32],
	    const uint8_t proof[][32], size_t len);

/*
 * Receipts for a group commit without reading storage: given the compact
 * range of the tree before the batch (size a) and the batch's leaf hashes
 * [a, a + count), computes every node the batch completes, so the root of
 * size a + count and each batch leaf's inclusion proof in it can be read
 * off. The left siblings on any path are prefix range nodes or batch
 * nodes; the right ones are batch nodes. Returns NULL on a bad argument or
 * out of memory; the caller frees it with merkle_batch_free().
 */
struct merkle_batch;

struct merkle_batch	*merkle_batch_new(const struct merkle_range *prefix,
			    const uint8_t (*leaves)[32], size_t count);
void			 merkle_batch_root(const struct merkle_batch *,
			    uint8_t root[32]);
/* The inclusion proof of batch leaf i (seq index a + i): 0 or -1. */
int			 merkle_batch_proof(const struct merkle_batch *,
			    size_t i, uint8_t proof[][32], size_t *n);
/* The compact range after the batch, for the next one. */
const struct merkle_range *merkle_batch_range(const struct merkle_batch *);
void			 merkle_batch_free(struct merkle_batch *);

#endif
