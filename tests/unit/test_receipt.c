/*
 * Receipts and checkpoint consistency (D7, D15-D17, issue 13): a receipt
 * made from a group commit verifies offline with the log key and nothing
 * else; any change to it fails; and two checkpoints signed by the same key
 * over different logs (a fork made with the key) are told apart from a
 * log that only grew.
 */
#include <criterion/criterion.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "receipt.h"

#define ORIGIN	"safeshare/00112233445566778899aabbccddeeff"

static EVP_PKEY *
t_key(void)
{
	EVP_PKEY_CTX	*c = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	EVP_PKEY	*k = NULL;

	cr_assert(c != NULL && EVP_PKEY_keygen_init(c) == 1 &&
	    EVP_PKEY_keygen(c, &k) == 1);
	EVP_PKEY_CTX_free(c);
	return k;
}

/* Leaf i of a log; `variant` changes entry 3, as a rewrite would. */
static void
t_leaf(unsigned i, int variant, uint8_t out[32])
{
	char	buf[48];
	uint8_t	eh[32];

	snprintf(buf, sizeof(buf), "entry %u%s", i, variant && i == 3 ? " forged" : "");
	SHA256((const unsigned char *)buf, strlen(buf), eh);
	merkle_leaf(eh, out);
}

/* Signs the checkpoint of the first `size` leaves; the caller frees it. */
static char *
t_checkpoint(EVP_PKEY *k, unsigned size, int variant, struct merkle_range *out)
{
	struct note_checkpoint	 c;
	struct merkle_range	 r;
	uint8_t			 leaf[32];
	char			 body[1024], err[256], *note;
	unsigned		 i;

	merkle_range_init(&r);
	for (i = 0; i < size; i++) {
		t_leaf(i, variant, leaf);
		merkle_range_append(&r, leaf, NULL, NULL);
	}
	memset(&c, 0, sizeof(c));
	strcpy(c.origin, ORIGIN);
	c.size = size;
	merkle_range_root(&r, c.root);
	snprintf(c.ext[c.next++], NOTE_LINE_MAX, "time 1764000000");
	cr_assert_gt(note_checkpoint_body(&c, body, sizeof(body)), 0);
	note = note_sign(body, strlen(body), ORIGIN, k, err, sizeof(err));
	cr_assert_not_null(note, "%s", err);
	if (out != NULL)
		*out = r;
	return note;
}

/* The receipts of a commit of leaves [a, a+count), as the writer makes them. */
static void
t_receipt(EVP_PKEY *k, unsigned a, unsigned count, unsigned i, struct receipt *rc)
{
	struct merkle_range	 prefix;
	struct merkle_batch	*b;
	uint8_t			 leaves[64][32];
	unsigned		 j;

	free(t_checkpoint(k, a, 0, &prefix));
	for (j = 0; j < count; j++)
		t_leaf(a + j, 0, leaves[j]);
	b = merkle_batch_new(&prefix, (const uint8_t (*)[32])leaves, count);
	cr_assert_not_null(b);
	memset(rc, 0, sizeof(*rc));
	rc->seq = a + i + 1;
	memcpy(rc->leaf, leaves[i], 32);
	cr_assert_eq(merkle_batch_proof(b, i, rc->proof, &rc->nproof), 0);
	merkle_batch_free(b);
	rc->checkpoint = t_checkpoint(k, a + count, 0, NULL);
}

Test(receipt, round_trip_and_offline_verify)
{
	EVP_PKEY		*k = t_key(), *other = t_key();
	struct note_key		 key, wrong;
	struct note_checkpoint	 cp;
	struct receipt		 rc, back;
	char			*text, err[256];
	unsigned		 a, count, i;

	cr_assert_eq(note_key_from_pkey(ORIGIN, k, &key, err, sizeof(err)), 0);
	cr_assert_eq(note_key_from_pkey(ORIGIN, other, &wrong, err, sizeof(err)), 0);
	for (a = 0; a < 12; a += 5)
		for (count = 1; count < 9; count += 3)
			for (i = 0; i < count; i++) {
				t_receipt(k, a, count, i, &rc);
				text = receipt_format(&rc);
				cr_assert_not_null(text);
				cr_assert_eq(receipt_parse(text, strlen(text), &back, err,
				    sizeof(err)), 0, "%s", err);
				cr_assert_eq(back.seq, rc.seq);
				cr_assert_eq(back.nproof, rc.nproof);
				cr_assert_str_eq(back.checkpoint, rc.checkpoint);
				cr_assert_eq(receipt_verify(&back, &key, 1, &cp, err,
				    sizeof(err)), 0, "%u+%u #%u: %s", a, count, i, err);
				cr_assert_eq(cp.size, a + count);
				cr_assert_eq(receipt_verify(&back, &wrong, 1, &cp, err,
				    sizeof(err)), -1, "another key of the same name");
				receipt_free(&back);
				free(text);
				receipt_free(&rc);
			}
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
}

Test(receipt, tampering_fails)
{
	EVP_PKEY		*k = t_key();
	struct note_key		 key;
	struct note_checkpoint	 cp;
	struct receipt		 rc;
	char			 err[256], *p;

	cr_assert_eq(note_key_from_pkey(ORIGIN, k, &key, err, sizeof(err)), 0);
	t_receipt(k, 5, 6, 2, &rc);
	cr_assert_eq(receipt_verify(&rc, &key, 1, &cp, err, sizeof(err)), 0, "%s", err);

	rc.leaf[7] ^= 1;
	cr_expect_eq(receipt_verify(&rc, &key, 1, &cp, err, sizeof(err)), -1);
	cr_expect(strstr(err, "inclusion proof") != NULL, "%s", err);
	rc.leaf[7] ^= 1;
	rc.seq++;
	cr_expect_eq(receipt_verify(&rc, &key, 1, &cp, err, sizeof(err)), -1);
	rc.seq = 12;	/* past the checkpoint */
	cr_expect_eq(receipt_verify(&rc, &key, 1, &cp, err, sizeof(err)), -1);
	cr_expect(strstr(err, "not within") != NULL, "%s", err);
	rc.seq = 8;
	rc.proof[1][0] ^= 0x80;
	cr_expect_eq(receipt_verify(&rc, &key, 1, &cp, err, sizeof(err)), -1);
	rc.proof[1][0] ^= 0x80;
	rc.nproof--;
	cr_expect_eq(receipt_verify(&rc, &key, 1, &cp, err, sizeof(err)), -1);
	rc.nproof++;
	cr_assert_eq(receipt_verify(&rc, &key, 1, &cp, err, sizeof(err)), 0);
	/* A checkpoint that claims a larger log: its signature fails. */
	p = strchr(rc.checkpoint, '\n') + 1;
	*p = '2';
	cr_expect_eq(receipt_verify(&rc, &key, 1, &cp, err, sizeof(err)), -1);
	cr_expect(strstr(err, "forged or altered") != NULL, "%s", err);
	receipt_free(&rc);
	EVP_PKEY_free(k);
}

Test(receipt, malformed_files)
{
	static const char *const bad[] = {
		"",
		"safeshare receipt v2\nseq 1\n",
		RECEIPT_MAGIC "\nseq 0\nleaf AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ncheckpoint\nx\n",
		RECEIPT_MAGIC "\nseq 01\nleaf AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ncheckpoint\nx\n",
		RECEIPT_MAGIC "\nseq 1x\nleaf AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ncheckpoint\nx\n",
		RECEIPT_MAGIC "\nseq 1\nleaf AAAA\ncheckpoint\nx\n",
		RECEIPT_MAGIC "\nseq 1\ncheckpoint\nx\n",
		RECEIPT_MAGIC "\nseq 1\nleaf AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		RECEIPT_MAGIC "\nseq 1\nleaf AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ncheckpoint\n",
		RECEIPT_MAGIC "\nseq 1\nleaf AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nproof AA==\ncheckpoint\nx\n",
		RECEIPT_MAGIC "\nseq 1\nleaf AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nextra\ncheckpoint\nx\n",
	};
	struct receipt	rc;
	char		err[256];
	size_t		i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_expect_eq(receipt_parse(bad[i], strlen(bad[i]), &rc, err,
		    sizeof(err)), -1, "case %zu accepted", i);
		cr_expect_neq(err[0], '\0', "case %zu has no reason", i);
		receipt_free(&rc);
	}
}

static int
t_get_st(void *arg, unsigned level, uint64_t index, uint8_t out[32])
{
	uint8_t	(*h)[64][32] = arg;

	if (level >= 8 || index >= 64)
		return -1;
	memcpy(out, h[level][index], 32);
	return 0;
}

/*
 * A fork made with the key: two logs that agree up to entry 3 and then
 * differ, both signed by the log key. Each checkpoint verifies on its own;
 * only comparing them, with a consistency proof, shows the fork.
 */
Test(receipt, consistency_catches_fork_truncation_rewrite)
{
	EVP_PKEY		*k = t_key();
	struct note_key		 key;
	struct note_checkpoint	 c10, c20, f10, f20, other;
	struct merkle_range	 r;
	uint8_t			 proof[MERKLE_MAX_PROOF][32], leaf[32];
	char			*n10, *n20, *m10, *m20, err[256], why[256];
	size_t			 len;
	unsigned		 i;

	/* A proof from the real log's stored tree (rebuilt here in memory). */
	struct { uint8_t h[8][64][32]; } *st = calloc(1, sizeof(*st));

	cr_assert_eq(note_key_from_pkey(ORIGIN, k, &key, err, sizeof(err)), 0);
	n10 = t_checkpoint(k, 10, 0, NULL);
	n20 = t_checkpoint(k, 20, 0, NULL);
	m10 = t_checkpoint(k, 10, 1, NULL);
	m20 = t_checkpoint(k, 20, 1, NULL);
	cr_assert_eq(receipt_checkpoint(n10, &key, 1, &c10, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(receipt_checkpoint(n20, &key, 1, &c20, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(receipt_checkpoint(m10, &key, 1, &f10, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(receipt_checkpoint(m20, &key, 1, &f20, err, sizeof(err)), 0, "%s", err);

	merkle_range_init(&r);
	for (i = 0; i < 20; i++) {
		t_leaf(i, 0, leaf);
		merkle_range_append(&r, leaf, NULL, NULL);
	}
	{
		/* Every perfect subtree of the 20 leaves, for the proof. */
		unsigned l, j;

		for (j = 0; j < 20; j++)
			t_leaf(j, 0, st->h[0][j]);
		for (l = 1; l < 5; l++)
			for (j = 0; j < (20u >> l); j++)
				merkle_node(st->h[l - 1][2 * j], st->h[l - 1][2 * j + 1],
				    st->h[l][j]);
	}
	cr_assert_eq(merkle_consistency_proof(10, 20, t_get_st, st, proof, &len), 0);

	cr_expect_eq(receipt_consistent(&c10, &c20, (const uint8_t (*)[32])proof,
	    len, why, sizeof(why)), RECEIPT_CONSISTENT, "%s", why);
	cr_expect_eq(receipt_consistent(&c10, &c10, NULL, 0, why, sizeof(why)),
	    RECEIPT_CONSISTENT);
	/* The witness saw the real 10, the log now shows the forked 20. */
	cr_expect_eq(receipt_consistent(&c10, &f20, (const uint8_t (*)[32])proof,
	    len, why, sizeof(why)), RECEIPT_REWRITTEN);
	cr_expect(strstr(why, "rewritten") != NULL, "%s", why);
	cr_expect_eq(receipt_consistent(&c10, &f10, NULL, 0, why, sizeof(why)),
	    RECEIPT_FORKED);
	cr_expect_eq(receipt_consistent(&c20, &c10, NULL, 0, why, sizeof(why)),
	    RECEIPT_TRUNCATED);
	other = c20;
	strcpy(other.origin, "safeshare/ffffffffffffffffffffffffffffffff");
	cr_expect_eq(receipt_consistent(&c10, &other, (const uint8_t (*)[32])proof,
	    len, why, sizeof(why)), RECEIPT_OTHER_LOG);
	free(st);
	free(n10);
	free(n20);
	free(m10);
	free(m20);
	EVP_PKEY_free(k);
}
