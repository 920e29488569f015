/*
 * Receipt files and the checks receipt holders and witnesses make. The
 * file is text so that a person can read what it proves:
 *
 *	safeshare receipt v1
 *	seq 42
 *	leaf <base64 leaf hash>
 *	proof <base64 hash>		(one line per proof hash, deepest first)
 *	checkpoint
 *	<the signed checkpoint note, verbatim>
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "receipt.h"
#include "util.h"

char *
receipt_format(const struct receipt *r)
{
	char	*out, b64[64];
	size_t	 cap, off, i;
	int	 n;

	if (r->checkpoint == NULL || r->nproof > MERKLE_MAX_PROOF ||
	    strlen(r->checkpoint) > NOTE_MAX)
		return NULL;
	cap = strlen(r->checkpoint) + 64 * (r->nproof + 2) + 64;
	if ((out = malloc(cap)) == NULL)
		return NULL;
	note_b64_encode(r->leaf, 32, b64, sizeof(b64));
	n = snprintf(out, cap, RECEIPT_MAGIC "\nseq %llu\nleaf %s\n",
	    (unsigned long long)r->seq, b64);
	off = (size_t)n;
	for (i = 0; i < r->nproof; i++) {
		note_b64_encode(r->proof[i], 32, b64, sizeof(b64));
		off += (size_t)snprintf(out + off, cap - off, "proof %s\n", b64);
	}
	snprintf(out + off, cap - off, "checkpoint\n%s", r->checkpoint);
	return out;
}

void
receipt_free(struct receipt *r)
{
	free(r->checkpoint);
	r->checkpoint = NULL;
}

int
receipt_parse(const char *text, size_t len, struct receipt *r, char *err,
    size_t errlen)
{
	const char	*p = text, *end = text + len, *nl;
	size_t		 ln, line = 0;
	int		 have_seq = 0, have_leaf = 0;

	memset(r, 0, sizeof(*r));
	if (len > RECEIPT_MAX)
		return errorf(err, errlen, "longer than a receipt can be");
	if (memchr(text, '\0', len) != NULL)
		return errorf(err, errlen, "not a text file");
	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return errorf(err, errlen, "line %zu: no newline", line + 1);
		ln = (size_t)(nl - p);
		line++;
		if (line == 1) {
			if (ln != strlen(RECEIPT_MAGIC) ||
			    memcmp(p, RECEIPT_MAGIC, ln) != 0)
				return errorf(err, errlen, "line 1: not a safeshare "
				    "receipt (expected \"" RECEIPT_MAGIC "\")");
		} else if (ln > 4 && memcmp(p, "seq ", 4) == 0 && !have_seq) {
			char	num[24];
			char	*e;

			if (ln - 4 >= sizeof(num) || p[4] < '1' || p[4] > '9')
				return errorf(err, errlen, "line %zu: bad seq", line);
			memcpy(num, p + 4, ln - 4);
			num[ln - 4] = '\0';
			r->seq = strtoull(num, &e, 10);
			if (*e != '\0' || r->seq == 0 || r->seq == UINT64_MAX)
				return errorf(err, errlen, "line %zu: bad seq", line);
			have_seq = 1;
		} else if (ln > 5 && memcmp(p, "leaf ", 5) == 0 && !have_leaf) {
			if (note_b64_decode(p + 5, ln - 5, r->leaf, 32) != 32)
				return errorf(err, errlen, "line %zu: the leaf hash "
				    "is not 32 bytes of base64", line);
			have_leaf = 1;
		} else if (ln > 6 && memcmp(p, "proof ", 6) == 0) {
			if (r->nproof == MERKLE_MAX_PROOF)
				return errorf(err, errlen, "line %zu: too many proof "
				    "hashes", line);
			if (note_b64_decode(p + 6, ln - 6, r->proof[r->nproof],
			    32) != 32)
				return errorf(err, errlen, "line %zu: a proof hash "
				    "is not 32 bytes of base64", line);
			r->nproof++;
		} else if (ln == 10 && memcmp(p, "checkpoint", 10) == 0) {
			p = nl + 1;
			if (!have_seq || !have_leaf)
				return errorf(err, errlen, "the receipt lacks its seq "
				    "or leaf line");
			if (end - p <= 0 || (size_t)(end - p) > NOTE_MAX)
				return errorf(err, errlen, "the checkpoint is missing "
				    "or too long");
			if ((r->checkpoint = malloc((size_t)(end - p) + 1)) == NULL)
				return errorf(err, errlen, "out of memory");
			memcpy(r->checkpoint, p, (size_t)(end - p));
			r->checkpoint[end - p] = '\0';
			if (strlen(r->checkpoint) != (size_t)(end - p)) {
				receipt_free(r);
				return errorf(err, errlen, "not a text file");
			}
			return 0;
		} else
			return errorf(err, errlen, "line %zu: unexpected \"%.*s\"",
			    line, (int)(ln > 40 ? 40 : ln), p);
		p = nl + 1;
	}
	return errorf(err, errlen, "the receipt has no checkpoint");
}

int
receipt_checkpoint(const char *note, const struct note_key *keys,
    size_t nkeys, struct note_checkpoint *cp, char *err, size_t errlen)
{
	struct note	nt;
	char		why[256];
	int		n;

	if (note_parse(note, strlen(note), &nt, why, sizeof(why)) == -1)
		return errorf(err, errlen, "the checkpoint is not a signed note: %s",
		    why);
	if ((n = note_verify(&nt, keys, nkeys, NULL, why, sizeof(why))) == -1)
		return errorf(err, errlen, "the checkpoint: %s", why);
	if (n == 0)
		return errorf(err, errlen, "the checkpoint is not signed by the "
		    "given log key");
	if (note_checkpoint_parse(nt.body, nt.bodylen, cp, why, sizeof(why)) == -1)
		return errorf(err, errlen, "the checkpoint: %s", why);
	return 0;
}

int
receipt_verify(const struct receipt *r, const struct note_key *keys,
    size_t nkeys, struct note_checkpoint *cp, char *err, size_t errlen)
{
	if (r->checkpoint == NULL)
		return errorf(err, errlen, "the receipt has no checkpoint");
	if (receipt_checkpoint(r->checkpoint, keys, nkeys, cp, err, errlen) == -1)
		return -1;
	if (r->seq == 0 || r->seq > cp->size)
		return errorf(err, errlen, "entry %llu is not within the checkpoint's "
		    "%llu entries", (unsigned long long)r->seq,
		    (unsigned long long)cp->size);
	if (merkle_verify_inclusion(r->seq - 1, cp->size, r->leaf,
	    (const uint8_t (*)[32])r->proof, r->nproof, cp->root) == -1)
		return errorf(err, errlen, "the inclusion proof of entry %llu does "
		    "not lead to the checkpoint's root: forged or altered",
		    (unsigned long long)r->seq);
	return 0;
}

enum receipt_verdict
receipt_consistent(const struct note_checkpoint *a,
    const struct note_checkpoint *b, const uint8_t proof[][32], size_t len,
    char *why, size_t whylen)
{
	if (strcmp(a->origin, b->origin) != 0) {
		errorf(why, whylen, "the checkpoints are of different logs (%s, %s)",
		    a->origin, b->origin);
		return RECEIPT_OTHER_LOG;
	}
	if (b->size < a->size) {
		errorf(why, whylen, "the log was truncated: it had %llu entries, it "
		    "now has %llu", (unsigned long long)a->size,
		    (unsigned long long)b->size);
		return RECEIPT_TRUNCATED;
	}
	if (b->size == a->size) {
		if (memcmp(a->root, b->root, 32) == 0)
			return RECEIPT_CONSISTENT;
		errorf(why, whylen, "the log was forked: two different trees of "
		    "%llu entries are signed", (unsigned long long)a->size);
		return RECEIPT_FORKED;
	}
	if (merkle_verify_consistency(a->size, b->size, a->root, b->root, proof,
	    len) == -1) {
		errorf(why, whylen, "the log was rewritten: its tree of %llu entries "
		    "does not extend the one of %llu entries seen before",
		    (unsigned long long)b->size, (unsigned long long)a->size);
		return RECEIPT_REWRITTEN;
	}
	return RECEIPT_CONSISTENT;
}

const char *
receipt_verdict_name(enum receipt_verdict v)
{
	switch (v) {
	case RECEIPT_CONSISTENT: return "consistent";
	case RECEIPT_OTHER_LOG: return "other_log";
	case RECEIPT_TRUNCATED: return "truncated";
	case RECEIPT_FORKED: return "forked";
	case RECEIPT_REWRITTEN: return "rewritten";
	}
	return "unknown";
}
