/*
 * Receipts and consistency between checkpoints (D7, D15-D17, issue 13).
 * A receipt proves that log entry seq is in the tree a signed checkpoint
 * commits to; a consistency proof shows that a later checkpoint's tree
 * extends an earlier one's. Receipt holders (`safeshare receipt`) and
 * witnesses (`safeshare audit witness`) use the same checks. Pure: no
 * I/O, no clock. The file format is in docs/audit-format.md.
 */
#ifndef SAFESHARE_RECEIPT_H
#define SAFESHARE_RECEIPT_H

#include <stddef.h>
#include <stdint.h>

#include "merkle.h"
#include "note.h"

#define RECEIPT_MAGIC	"safeshare receipt v1"
#define RECEIPT_MAX	(NOTE_MAX + 64 * MERKLE_MAX_PROOF + 256)

/* A receipt; checkpoint is owned (receipt_free). */
struct receipt {
	uint64_t	 seq;
	uint8_t		 leaf[32];
	size_t		 nproof;
	uint8_t		 proof[MERKLE_MAX_PROOF][32];
	char		*checkpoint;
};

/* The receipt as file text; the caller frees it. NULL on a bad receipt. */
char	*receipt_format(const struct receipt *);
/* Parses receipt file text strictly; 0, or -1 with a reason in err. */
int	 receipt_parse(const char *text, size_t len, struct receipt *,
	    char *err, size_t errlen);
void	 receipt_free(struct receipt *);

/*
 * Checks a receipt offline: the checkpoint is signed by the log key
 * (keys[0..nkeys), any one of them), and the inclusion proof puts the leaf
 * at index seq - 1 of the tree whose root it names. On 0 fills *cp.
 * Returns -1 with the reason in err.
 */
int	 receipt_verify(const struct receipt *, const struct note_key *keys,
	    size_t nkeys, struct note_checkpoint *cp, char *err, size_t errlen);

/*
 * Whether checkpoint b's tree extends checkpoint a's, given the proof from
 * a's size to b's. Both are already signature-checked.
 */
enum receipt_verdict {
	RECEIPT_CONSISTENT,	/* b is a or grows it */
	RECEIPT_OTHER_LOG,	/* different origins */
	RECEIPT_TRUNCATED,	/* b is smaller than a */
	RECEIPT_FORKED,		/* same size, different roots */
	RECEIPT_REWRITTEN	/* larger, but the proof does not hold */
};

enum receipt_verdict receipt_consistent(const struct note_checkpoint *a,
	    const struct note_checkpoint *b, const uint8_t proof[][32],
	    size_t len, char *why, size_t whylen);
const char	*receipt_verdict_name(enum receipt_verdict);

/*
 * Parses and checks a signed checkpoint note: at least one of keys signed
 * it, and its body is a checkpoint. Returns 0 and fills *cp, or -1.
 */
int	 receipt_checkpoint(const char *note, const struct note_key *keys,
	    size_t nkeys, struct note_checkpoint *cp, char *err, size_t errlen);

#endif
