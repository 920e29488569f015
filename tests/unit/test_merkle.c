/*
 * The Merkle tree (D15-D17, issue 13): the Certificate Transparency
 * reference vectors from tests/data/merkle, then every proof of every tree
 * up to 70 leaves verifies and no altered one does, and the batch receipts
 * of a group commit equal the proofs from the stored tree.
 */
#include <criterion/criterion.h>

#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "merkle.h"
#include "util.h"

#define MAXLEAVES	128

/* An in-memory store of every perfect subtree, filled by the append callback. */
struct tstore {
	uint8_t		node[8][MAXLEAVES][32];
	int		have[8][MAXLEAVES];
	uint64_t	size;
};

static void
t_put(void *arg, unsigned level, uint64_t index, const uint8_t hash[32])
{
	struct tstore	*s = arg;

	cr_assert(level < 8 && index < MAXLEAVES);
	memcpy(s->node[level][index], hash, 32);
	s->have[level][index] = 1;
}

static int
t_get(void *arg, unsigned level, uint64_t index, uint8_t out[32])
{
	struct tstore	*s = arg;

	if (level >= 8 || index >= MAXLEAVES || !s->have[level][index])
		return -1;
	memcpy(out, s->node[level][index], 32);
	return 0;
}

/* Leaves that differ: leaf i is the leaf hash of SHA-256("leaf i"). */
static void
t_leaf(unsigned i, uint8_t out[32])
{
	char	buf[32];
	uint8_t	eh[32];

	snprintf(buf, sizeof(buf), "leaf %u", i);
	SHA256((const unsigned char *)buf, strlen(buf), eh);
	merkle_leaf(eh, out);
}

static struct tstore *
t_build(unsigned n, struct merkle_range *r, uint8_t roots[][32])
{
	struct tstore	*s = calloc(1, sizeof(*s));
	uint8_t		 leaf[32];
	unsigned	 i;

	cr_assert_not_null(s);
	merkle_range_init(r);
	if (roots != NULL)
		merkle_range_root(r, roots[0]);
	for (i = 0; i < n; i++) {
		t_leaf(i, leaf);
		merkle_range_append(r, leaf, t_put, s);
		if (roots != NULL)
			merkle_range_root(r, roots[i + 1]);
	}
	s->size = n;
	return s;
}

/* The reference tree: leaf hashes of arbitrary inputs, fed as leaf hashes. */
struct vectors {
	uint8_t		leaves[8][32];
	unsigned	nleaves;
	uint8_t		roots[9][32];
	int		have_root[9];
};

static size_t
parse_hashes(char *p, uint8_t out[][32], size_t max)
{
	size_t	n = 0;
	char	*tok;

	while ((tok = strsep(&p, " \n")) != NULL) {
		if (*tok == '\0')
			continue;
		cr_assert(n < max);
		cr_assert_eq(hex_decode(tok, out[n], 32), 0, "bad hash %s", tok);
		n++;
	}
	return n;
}

Test(merkle, ct_reference_vectors)
{
	static struct vectors	 v;
	struct tstore		*s;
	struct merkle_range	 r;
	uint8_t			 want[MERKLE_MAX_PROOF][32], got[MERKLE_MAX_PROOF][32];
	uint8_t			 root[32];
	size_t			 nwant, ngot;
	unsigned long long	 a, b;
	char			 line[2048], *p;
	FILE			*f;
	unsigned		 i, checked = 0;

	f = fopen(DATA_DIR "/merkle/ct_vectors.txt", "r");
	cr_assert_not_null(f);
	s = calloc(1, sizeof(*s));
	merkle_range_init(&r);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (strncmp(line, "leaf ", 5) == 0) {
			unsigned char	data[64];
			size_t		len = 0;

			line[strcspn(line, "\n")] = '\0';
			if (strcmp(line + 5, "-") != 0) {
				len = strlen(line + 5) / 2;
				cr_assert_eq(hex_decode(line + 5, data + 1, len), 0);
			}
			data[0] = 0x00;
			SHA256(data, len + 1, v.leaves[v.nleaves]);
			merkle_range_append(&r, v.leaves[v.nleaves], t_put, s);
			v.nleaves++;
		} else if (sscanf(line, "root %llu", &a) == 1) {
			p = strchr(line + 5, ' ');
			cr_assert_eq(parse_hashes(p, want, 1), 1);
			cr_assert_eq(merkle_root_at(a, t_get, s, root), 0);
			cr_expect_eq(memcmp(root, want[0], 32), 0, "root of size %llu", a);
			memcpy(v.roots[a], want[0], 32);
			v.have_root[a] = 1;
			checked++;
		} else if (sscanf(line, "inclusion %llu %llu", &a, &b) == 2) {
			p = strchr(strchr(line + 10, ' ') + 1, ' ');
			nwant = p == NULL ? 0 : parse_hashes(p, want, MERKLE_MAX_PROOF);
			cr_assert_eq(merkle_inclusion_proof(a, b, t_get, s, got, &ngot), 0);
			cr_expect_eq(ngot, nwant, "inclusion %llu/%llu length", a, b);
			for (i = 0; i < ngot && i < nwant; i++)
				cr_expect_eq(memcmp(got[i], want[i], 32), 0,
				    "inclusion %llu/%llu hash %u", a, b, i);
			cr_assert(v.have_root[b]);
			cr_expect_eq(merkle_verify_inclusion(a, b, v.leaves[a],
			    (const uint8_t (*)[32])want, nwant, v.roots[b]), 0);
			checked++;
		} else if (sscanf(line, "consistency %llu %llu", &a, &b) == 2) {
			p = strchr(strchr(line + 12, ' ') + 1, ' ');
			nwant = parse_hashes(p, want, MERKLE_MAX_PROOF);
			cr_assert_eq(merkle_consistency_proof(a, b, t_get, s, got, &ngot), 0);
			cr_expect_eq(ngot, nwant, "consistency %llu->%llu length", a, b);
			for (i = 0; i < ngot && i < nwant; i++)
				cr_expect_eq(memcmp(got[i], want[i], 32), 0,
				    "consistency %llu->%llu hash %u", a, b, i);
			cr_expect_eq(merkle_verify_consistency(a, b, v.roots[a],
			    v.roots[b], (const uint8_t (*)[32])want, nwant), 0);
			checked++;
		} else
			cr_assert_fail("bad vector line: %s", line);
	}
	fclose(f);
	/* The compact range agrees with the stored tree at every size. */
	merkle_range_root(&r, root);
	cr_expect_eq(memcmp(root, v.roots[8], 32), 0);
	cr_expect_geq(checked, 16);
	free(s);
}

Test(merkle, empty_and_single)
{
	struct merkle_range	r;
	uint8_t			root[32], want[32], leaf[32];

	merkle_range_init(&r);
	merkle_range_root(&r, root);
	SHA256((const unsigned char *)"", 0, want);
	cr_expect_eq(memcmp(root, want, 32), 0, "the empty tree's root is SHA-256 of nothing");
	t_leaf(0, leaf);
	merkle_range_append(&r, leaf, NULL, NULL);
	merkle_range_root(&r, root);
	cr_expect_eq(memcmp(root, leaf, 32), 0, "a one-leaf tree's root is its leaf");
	cr_expect_eq(merkle_verify_inclusion(0, 1, leaf, NULL, 0, root), 0);
	cr_expect_eq(merkle_verify_inclusion(1, 1, leaf, NULL, 0, root), -1);
	cr_expect_eq(merkle_verify_inclusion(0, 0, leaf, NULL, 0, root), -1);
}

/* Every index of every size up to 70: the proof verifies; altered, it fails. */
Test(merkle, inclusion_all_sizes)
{
	struct merkle_range	 r;
	struct tstore		*s;
	static uint8_t		 roots[71][32];
	uint8_t			 proof[MERKLE_MAX_PROOF][32], leaf[32], root[32];
	size_t			 n, j;
	unsigned		 size, i, bit;

	s = t_build(70, &r, roots);
	for (size = 1; size <= 70; size++) {
		cr_assert_eq(merkle_root_at(size, t_get, s, root), 0);
		cr_assert_eq(memcmp(root, roots[size], 32), 0, "root_at %u", size);
		for (i = 0; i < size; i++) {
			t_leaf(i, leaf);
			cr_assert_eq(merkle_inclusion_proof(i, size, t_get, s, proof, &n), 0);
			cr_assert_eq(merkle_verify_inclusion(i, size, leaf,
			    (const uint8_t (*)[32])proof, n, roots[size]), 0,
			    "inclusion %u/%u", i, size);
			/*
			 * Wrong index, wrong root, short or long proof. (A wrong
			 * size is not always caught: leaf 0 has the same path in
			 * trees of 3 and 4 leaves. The size is bound by the signed
			 * checkpoint the root comes from.)
			 */
			if (size > 1)
				cr_assert_eq(merkle_verify_inclusion((i + 1) % size, size,
				    leaf, (const uint8_t (*)[32])proof, n, roots[size]), -1);
			cr_assert_eq(merkle_verify_inclusion(i, size, leaf,
			    (const uint8_t (*)[32])proof, n, roots[size - 1]), -1);
			if (n > 0)
				cr_assert_eq(merkle_verify_inclusion(i, size, leaf,
				    (const uint8_t (*)[32])proof, n - 1, roots[size]), -1);
			memset(proof[n], 0xab, 32);
			cr_assert_eq(merkle_verify_inclusion(i, size, leaf,
			    (const uint8_t (*)[32])proof, n + 1, roots[size]), -1);
			/* Any flipped bit of the leaf or of any proof hash. */
			for (bit = 0; bit < 256; bit += 37) {
				leaf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
				cr_assert_eq(merkle_verify_inclusion(i, size, leaf,
				    (const uint8_t (*)[32])proof, n, roots[size]), -1);
				leaf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
				for (j = 0; j < n; j++) {
					proof[j][bit / 8] ^= (uint8_t)(1u << (bit % 8));
					cr_assert_eq(merkle_verify_inclusion(i, size, leaf,
					    (const uint8_t (*)[32])proof, n, roots[size]), -1,
					    "flipped bit %u of hash %zu, %u/%u", bit, j, i, size);
					proof[j][bit / 8] ^= (uint8_t)(1u << (bit % 8));
				}
			}
		}
	}
	cr_assert_eq(merkle_inclusion_proof(70, 70, t_get, s, proof, &n), -1);
	cr_assert_eq(merkle_inclusion_proof(3, 71, t_get, s, proof, &n), -1,
	    "a node the store lacks");
	free(s);
}

/* Every m <= n <= 70: the proof verifies; altered or misapplied, it fails. */
Test(merkle, consistency_all_sizes)
{
	struct merkle_range	 r;
	struct tstore		*s;
	static uint8_t		 roots[71][32];
	uint8_t			 proof[MERKLE_MAX_PROOF][32];
	size_t			 len, j;
	unsigned		 m, n, bit;

	s = t_build(70, &r, roots);
	for (n = 0; n <= 70; n++) {
		for (m = 0; m <= n; m++) {
			cr_assert_eq(merkle_consistency_proof(m, n, t_get, s, proof, &len), 0);
			cr_assert_eq(merkle_verify_consistency(m, n, roots[m], roots[n],
			    (const uint8_t (*)[32])proof, len), 0, "consistency %u->%u", m, n);
			if (m == 0 || m == n) {
				cr_assert_eq(len, 0);
				/* Equal sizes need equal roots; size 0 the empty root. */
				if (n > 0)
					cr_assert_eq(merkle_verify_consistency(m, n,
					    m == 0 ? roots[1] : roots[n - 1], roots[n],
					    (const uint8_t (*)[32])proof, len), -1);
				continue;
			}
			/* A fork: the same sizes with another old root. */
			cr_assert_eq(merkle_verify_consistency(m, n, roots[m - 1], roots[n],
			    (const uint8_t (*)[32])proof, len), -1);
			cr_assert_eq(merkle_verify_consistency(m, n, roots[m], roots[n - 1],
			    (const uint8_t (*)[32])proof, len), -1);
			cr_assert_eq(merkle_verify_consistency(m - 1, n, roots[m], roots[n],
			    (const uint8_t (*)[32])proof, len), -1);
			cr_assert_eq(merkle_verify_consistency(n, m, roots[n], roots[m],
			    (const uint8_t (*)[32])proof, len), -1);
			cr_assert_eq(merkle_verify_consistency(m, n, roots[m], roots[n],
			    (const uint8_t (*)[32])proof, len - 1), -1);
			memset(proof[len], 0xcd, 32);
			cr_assert_eq(merkle_verify_consistency(m, n, roots[m], roots[n],
			    (const uint8_t (*)[32])proof, len + 1), -1);
			for (bit = 0; bit < 256; bit += 41)
				for (j = 0; j < len; j++) {
					proof[j][bit / 8] ^= (uint8_t)(1u << (bit % 8));
					cr_assert_eq(merkle_verify_consistency(m, n, roots[m],
					    roots[n], (const uint8_t (*)[32])proof, len), -1,
					    "flipped bit %u of hash %zu, %u->%u", bit, j, m, n);
					proof[j][bit / 8] ^= (uint8_t)(1u << (bit % 8));
				}
		}
	}
	cr_assert_eq(merkle_consistency_proof(5, 4, t_get, s, proof, &len), -1);
	free(s);
}

/* The compact range reloaded from the store continues as if never dropped. */
Test(merkle, range_load)
{
	struct merkle_range	 r, back;
	struct tstore		*s;
	uint8_t			 a[32], b[32];
	unsigned		 size;

	s = t_build(70, &r, NULL);
	for (size = 0; size <= 70; size++) {
		cr_assert_eq(merkle_range_load(&back, size, t_get, s), 0);
		cr_assert_eq(back.size, size);
		merkle_range_root(&back, a);
		cr_assert_eq(merkle_root_at(size, t_get, s, b), 0);
		cr_assert_eq(memcmp(a, b, 32), 0, "size %u", size);
	}
	cr_assert_eq(merkle_range_load(&back, 100, t_get, s), -1);
	free(s);
}

/*
 * A group commit's receipts, computed from the compact range before it and
 * its own leaves only, equal the proofs read from the whole stored tree,
 * for every split of 0..70 into a prefix and a batch.
 */
Test(merkle, batch_proofs_match_stored_tree)
{
	struct merkle_range	 r, prefix;
	struct merkle_batch	*b;
	struct tstore		*s;
	static uint8_t		 roots[71][32];
	uint8_t			 leaves[70][32], root[32];
	uint8_t			 p1[MERKLE_MAX_PROOF][32], p2[MERKLE_MAX_PROOF][32];
	size_t			 n1, n2, i;
	unsigned		 a, count;

	s = t_build(70, &r, roots);
	for (i = 0; i < 70; i++)
		t_leaf((unsigned)i, leaves[i]);
	for (a = 0; a < 70; a++) {
		cr_assert_eq(merkle_range_load(&prefix, a, t_get, s), 0);
		for (count = 1; a + count <= 70; count++) {
			b = merkle_batch_new(&prefix,
			    (const uint8_t (*)[32])leaves + a, count);
			cr_assert_not_null(b);
			merkle_batch_root(b, root);
			cr_assert_eq(memcmp(root, roots[a + count], 32), 0,
			    "batch root %u+%u", a, count);
			cr_assert_eq(merkle_batch_range(b)->size, a + count);
			for (i = 0; i < count; i++) {
				cr_assert_eq(merkle_batch_proof(b, i, p1, &n1), 0,
				    "batch proof %u+%u leaf %zu", a, count, i);
				cr_assert_eq(merkle_inclusion_proof(a + i, a + count,
				    t_get, s, p2, &n2), 0);
				cr_assert_eq(n1, n2);
				cr_assert_eq(memcmp(p1, p2, n1 * 32), 0);
			}
			cr_assert_eq(merkle_batch_proof(b, count, p1, &n1), -1);
			merkle_batch_free(b);
		}
	}
	cr_assert_null(merkle_batch_new(&prefix, (const uint8_t (*)[32])leaves, 0));
	prefix.n++;	/* a range whose node count does not match its size */
	cr_assert_null(merkle_batch_new(&prefix, (const uint8_t (*)[32])leaves, 1));
	free(s);
}

/* The append callback reports each perfect subtree once, with its place. */
Test(merkle, append_callback_names_subtrees)
{
	struct merkle_range	 r;
	struct tstore		*s;
	uint8_t			 l[32], rr[32], want[32];
	unsigned		 level, idx;

	s = t_build(64, &r, NULL);
	for (level = 1; level < 7; level++)
		for (idx = 0; idx < (64u >> level); idx++) {
			cr_assert(s->have[level][idx]);
			memcpy(l, s->node[level - 1][2 * idx], 32);
			memcpy(rr, s->node[level - 1][2 * idx + 1], 32);
			merkle_node(l, rr, want);
			cr_assert_eq(memcmp(want, s->node[level][idx], 32), 0);
		}
	cr_assert_not(s->have[6][1]);
	free(s);
}

/*
 * digest_sha256() keeps one context per thread and reuses it: every hash,
 * of every length, on every thread, first or later, is SHA256()'s bytes.
 */
struct dthread {
	int	bad;
};

static void *
digest_many(void *arg)
{
	struct dthread	*d = arg;
	unsigned char	 buf[700], want[32], got[32];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 31 + 7);
	for (int round = 0; round < 3; round++)
		for (size_t len = 0; len <= sizeof(buf); len += 13) {
			SHA256(buf, len, want);
			digest_sha256(buf, len, got);
			if (memcmp(want, got, 32) != 0)
				d->bad++;
		}
	return NULL;
}

Test(digest, reused_contexts_give_sha256_on_every_thread)
{
	pthread_t	t[4];
	struct dthread	d[4];

	memset(d, 0, sizeof(d));
	digest_many(&d[0]);
	cr_assert_eq(d[0].bad, 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, digest_many, &d[i]), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_expect_eq(d[i].bad, 0, "thread %d: %d hashes differ", i, d[i].bad);
	}
}
