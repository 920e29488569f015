/*
 * RFC 9162 Merkle tree hashing, proofs and their verification. The proof
 * generators follow the recursive definitions of sections 2.1.3.1 and
 * 2.1.4.1 with an offset, reading perfect subtrees through an accessor;
 * the verifiers follow the iterative algorithms of 2.1.3.2 and 2.1.4.2.
 */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "merkle.h"

void
merkle_leaf(const uint8_t entry_hash[32], uint8_t out[32])
{
	uint8_t	buf[33];

	buf[0] = 0x00;
	memcpy(buf + 1, entry_hash, 32);
	digest_sha256(buf, sizeof(buf), out);
}

void
merkle_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
	uint8_t	buf[65];

	buf[0] = 0x01;
	memcpy(buf + 1, l, 32);
	memcpy(buf + 33, r, 32);
	digest_sha256(buf, sizeof(buf), out);
}

void
merkle_fold(uint8_t (*h)[32], uint64_t n, uint8_t out[32])
{
	for (uint64_t w = n; w > 1; w /= 2)
		for (uint64_t i = 0; i < w / 2; i++)
			merkle_node(h[2 * i], h[2 * i + 1], h[i]);
	memcpy(out, h[0], 32);
}

void
merkle_empty_root(uint8_t out[32])
{
	digest_sha256("", 0, out);
}

/* The largest power of two strictly less than n (n >= 2). */
static uint64_t
split(uint64_t n)
{
	return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

static int
is_pow2(uint64_t n)
{
	return n != 0 && (n & (n - 1)) == 0;
}

void
merkle_range_init(struct merkle_range *r)
{
	memset(r, 0, sizeof(*r));
}

/*
 * Appending leaf `size` merges the trailing range nodes of equal height,
 * one per trailing one bit of the old size: each merge completes a
 * perfect subtree, which cb is told about.
 */
void
merkle_range_append(struct merkle_range *r, const uint8_t leaf[32],
    merkle_node_fn cb, void *arg)
{
	uint8_t		cur[32];
	uint64_t	idx = r->size;
	unsigned	level = 0;

	memcpy(cur, leaf, 32);
	if (cb != NULL)
		cb(arg, 0, idx, cur);
	while ((r->size >> level) & 1) {
		merkle_node(r->h[r->n - 1], cur, cur);
		r->n--;
		level++;
		idx >>= 1;
		if (cb != NULL)
			cb(arg, level, idx, cur);
	}
	memcpy(r->h[r->n++], cur, 32);
	r->size++;
}

void
merkle_range_root(const struct merkle_range *r, uint8_t root[32])
{
	uint8_t		acc[32];
	unsigned	i;

	if (r->n == 0) {
		merkle_empty_root(root);
		return;
	}
	memcpy(acc, r->h[r->n - 1], 32);
	for (i = r->n - 1; i > 0; i--)
		merkle_node(r->h[i - 1], acc, acc);
	memcpy(root, acc, 32);
}

int
merkle_range_load(struct merkle_range *r, uint64_t size, merkle_get_fn get,
    void *arg)
{
	uint64_t	off = 0;
	int		l;

	merkle_range_init(r);
	for (l = 63; l >= 0; l--) {
		if (!((size >> l) & 1))
			continue;
		if (get(arg, (unsigned)l, off >> l, r->h[r->n]) == -1)
			return -1;
		r->n++;
		off += (uint64_t)1 << l;
	}
	r->size = size;
	return 0;
}

/* MTH(D[start:start+len]) from stored perfect subtrees. */
static int
subtree(uint64_t start, uint64_t len, merkle_get_fn get, void *arg,
    uint8_t out[32])
{
	uint8_t		l[32], r[32];
	uint64_t	k;
	unsigned	level;

	if (is_pow2(len)) {
		level = (unsigned)__builtin_ctzll(len);
		if (start & (len - 1))
			return -1;	/* not a node of any tree */
		return get(arg, level, start >> level, out);
	}
	k = split(len);
	if (subtree(start, k, get, arg, l) == -1 ||
	    subtree(start + k, len - k, get, arg, r) == -1)
		return -1;
	merkle_node(l, r, out);
	return 0;
}

int
merkle_root_at(uint64_t size, merkle_get_fn get, void *arg, uint8_t root[32])
{
	if (size == 0) {
		merkle_empty_root(root);
		return 0;
	}
	return subtree(0, size, get, arg, root);
}

/* PATH(m, D[start:start+n]) of RFC 9162 2.1.3.1, deepest sibling first. */
static int
path(uint64_t m, uint64_t start, uint64_t n, merkle_get_fn get, void *arg,
    uint8_t proof[][32], size_t *len)
{
	uint64_t	k;

	if (n == 1)
		return 0;
	k = split(n);
	if (m < k) {
		if (path(m, start, k, get, arg, proof, len) == -1)
			return -1;
		return subtree(start + k, n - k, get, arg, proof[(*len)++]);
	}
	if (path(m - k, start + k, n - k, get, arg, proof, len) == -1)
		return -1;
	return subtree(start, k, get, arg, proof[(*len)++]);
}

int
merkle_inclusion_proof(uint64_t index, uint64_t size, merkle_get_fn get,
    void *arg, uint8_t proof[][32], size_t *n)
{
	*n = 0;
	if (index >= size)
		return -1;
	return path(index, 0, size, get, arg, proof, n);
}

/* SUBPROOF(m, D[start:start+n], b) of RFC 9162 2.1.4.1. */
static int
subproof(uint64_t m, uint64_t start, uint64_t n, int b, merkle_get_fn get,
    void *arg, uint8_t proof[][32], size_t *len)
{
	uint64_t	k;

	if (m == n) {
		if (b)
			return 0;
		return subtree(start, m, get, arg, proof[(*len)++]);
	}
	k = split(n);
	if (m <= k) {
		if (subproof(m, start, k, b, get, arg, proof, len) == -1)
			return -1;
		return subtree(start + k, n - k, get, arg, proof[(*len)++]);
	}
	if (subproof(m - k, start + k, n - k, 0, get, arg, proof, len) == -1)
		return -1;
	return subtree(start, k, get, arg, proof[(*len)++]);
}

int
merkle_consistency_proof(uint64_t m, uint64_t n, merkle_get_fn get,
    void *arg, uint8_t proof[][32], size_t *len)
{
	*len = 0;
	if (m > n)
		return -1;
	if (m == 0 || m == n)
		return 0;
	return subproof(m, 0, n, 1, get, arg, proof, len);
}

int
merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[32],
    const uint8_t proof[][32], size_t n, const uint8_t root[32])
{
	uint8_t		r[32];
	uint64_t	fn, sn;
	size_t		i;

	if (index >= size || n > MERKLE_MAX_PROOF)
		return -1;
	fn = index;
	sn = size - 1;
	memcpy(r, leaf, 32);
	for (i = 0; i < n; i++) {
		if (sn == 0)
			return -1;
		if ((fn & 1) || fn == sn) {
			merkle_node(proof[i], r, r);
			if (!(fn & 1))
				while (fn != 0 && !(fn & 1)) {
					fn >>= 1;
					sn >>= 1;
				}
		} else
			merkle_node(r, proof[i], r);
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || CRYPTO_memcmp(r, root, 32) != 0)
		return -1;
	return 0;
}

int
merkle_verify_consistency(uint64_t m, uint64_t n, const uint8_t root_m[32],
    const uint8_t root_n[32], const uint8_t proof[][32], size_t len)
{
	uint8_t		fr[32], sr[32];
	uint64_t	fn, sn;
	size_t		i, start;

	if (m > n || len > MERKLE_MAX_PROOF)
		return -1;
	if (m == n)
		return len == 0 && CRYPTO_memcmp(root_m, root_n, 32) == 0 ? 0 : -1;
	if (m == 0) {
		merkle_empty_root(fr);
		return len == 0 && CRYPTO_memcmp(root_m, fr, 32) == 0 ? 0 : -1;
	}
	if (len == 0)
		return -1;
	/* A power-of-two first tree is its own first proof node. */
	if (is_pow2(m)) {
		memcpy(fr, root_m, 32);
		start = 0;
	} else {
		memcpy(fr, proof[0], 32);
		start = 1;
	}
	memcpy(sr, fr, 32);
	fn = m - 1;
	sn = n - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (i = start; i < len; i++) {
		if (sn == 0)
			return -1;
		if ((fn & 1) || fn == sn) {
			merkle_node(proof[i], fr, fr);
			merkle_node(proof[i], sr, sr);
			if (!(fn & 1))
				while (fn != 0 && !(fn & 1)) {
					fn >>= 1;
					sn >>= 1;
				}
		} else
			merkle_node(sr, proof[i], sr);
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || CRYPTO_memcmp(fr, root_m, 32) != 0 ||
	    CRYPTO_memcmp(sr, root_n, 32) != 0)
		return -1;
	return 0;
}

/*
 * A group commit's nodes: for each level l, the perfect subtrees with
 * index in [prefix >> l, size >> l), i.e. those that end inside the batch,
 * kept in one array; older nodes come from the prefix's compact range.
 */
struct merkle_batch {
	struct merkle_range	 prefix;
	struct merkle_range	 after;
	uint64_t		 base[64];
	uint64_t		 lim[64];
	size_t			 off[64];
	uint8_t			(*nodes)[32];
};

static void
batch_put(void *arg, unsigned level, uint64_t index, const uint8_t hash[32])
{
	struct merkle_batch	*b = arg;

	if (level < 64 && index >= b->base[level] && index < b->lim[level])
		memcpy(b->nodes[b->off[level] + (index - b->base[level])], hash, 32);
}

static int
batch_get(void *arg, unsigned level, uint64_t index, uint8_t out[32])
{
	const struct merkle_batch	*b = arg;
	uint64_t			 off = 0, a = b->prefix.size;
	unsigned			 i = 0;
	int				 l;

	if (level < 64 && index >= b->base[level] && index < b->lim[level]) {
		memcpy(out, b->nodes[b->off[level] + (index - b->base[level])], 32);
		return 0;
	}
	for (l = 63; l >= 0; l--) {
		if (!((a >> l) & 1))
			continue;
		if ((unsigned)l == level && (off >> l) == index) {
			memcpy(out, b->prefix.h[i], 32);
			return 0;
		}
		i++;
		off += (uint64_t)1 << l;
	}
	return -1;
}

struct merkle_batch *
merkle_batch_new(const struct merkle_range *prefix, const uint8_t (*leaves)[32],
    size_t count)
{
	struct merkle_batch	*b;
	uint64_t		 a = prefix->size, size;
	size_t			 total = 0, i;
	unsigned		 l;

	if (count == 0 || a > UINT64_MAX - count ||
	    (uint64_t)__builtin_popcountll(a) != prefix->n)
		return NULL;
	size = a + count;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->prefix = *prefix;
	b->after = *prefix;
	for (l = 0; l < 64; l++) {
		b->base[l] = a >> l;
		b->lim[l] = size >> l;
		b->off[l] = total;
		total += (size_t)(b->lim[l] - b->base[l]);
	}
	if ((b->nodes = calloc(total, 32)) == NULL) {
		free(b);
		return NULL;
	}
	for (i = 0; i < count; i++)
		merkle_range_append(&b->after, leaves[i], batch_put, b);
	return b;
}

void
merkle_batch_root(const struct merkle_batch *b, uint8_t root[32])
{
	merkle_range_root(&b->after, root);
}

int
merkle_batch_proof(const struct merkle_batch *b, size_t i,
    uint8_t proof[][32], size_t *n)
{
	*n = 0;
	if (i >= b->after.size - b->prefix.size)
		return -1;
	return merkle_inclusion_proof(b->prefix.size + i, b->after.size,
	    batch_get, (void *)(uintptr_t)b, proof, n);
}

const struct merkle_range *
merkle_batch_range(const struct merkle_batch *b)
{
	return &b->after;
}

void
merkle_batch_free(struct merkle_batch *b)
{
	if (b == NULL)
		return;
	free(b->nodes);
	free(b);
}
