/*
 * Signed notes (C2SP signed-note) carrying checkpoints (C2SP
 * tlog-checkpoint), Ed25519 through OpenSSL EVP. The log signs one per
 * group commit (D15-D17, issue 13); receipts carry it; witnesses keep it
 * and may add their own signature line. Pure functions: no I/O, no clock.
 *
 * A note is a body (UTF-8 text lines, each ending in '\n'), a blank line,
 * then one or more signature lines "\u2014 <key name> <base64(key id ||
 * signature)>\n". An Ed25519 key id is the first 4 bytes of SHA-256(name
 * || '\n' || 0x01 || public key); its verifier key string is
 * "<name>+<8 hex key id>+<base64(0x01 || public key)>".
 *
 * A checkpoint body is "<origin>\n<size>\n<base64 root>\n" and then
 * extension lines. The log's origin is "safeshare/<32 hex log id>".
 */
#ifndef SAFESHARE_NOTE_H
#define SAFESHARE_NOTE_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define NOTE_MAX		8192	/* bytes in a whole note */
#define NOTE_MAX_SIGS		16	/* signature lines in a note */
#define NOTE_NAME_MAX		128	/* bytes in a key name */
#define NOTE_LINE_MAX		256	/* bytes in a checkpoint line */
#define NOTE_MAX_EXT		8	/* checkpoint extension lines */
#define NOTE_SIGBLOB_MAX	128	/* key id + signature, any algorithm */
#define NOTE_ALG_ED25519	0x01
#define NOTE_ORIGIN_PREFIX	"safeshare/"

/* A verifier key: who may sign, and how to check it. */
struct note_key {
	char		name[NOTE_NAME_MAX + 1];
	uint8_t		id[4];
	uint8_t		pub[32];
};

/* One signature line; alg-specific bytes after the key id in sig. */
struct note_sig {
	char		name[NOTE_NAME_MAX + 1];
	uint8_t		id[4];
	uint8_t		sig[NOTE_SIGBLOB_MAX];
	size_t		siglen;
};

/* A parsed note. body points into the text given to note_parse(). */
struct note {
	const char	*body;
	size_t		 bodylen;	/* includes the body's last '\n' */
	struct note_sig	 sigs[NOTE_MAX_SIGS];
	size_t		 nsigs;
};

struct note_checkpoint {
	char		origin[NOTE_LINE_MAX];
	uint64_t	size;
	uint8_t		root[32];
	char		ext[NOTE_MAX_EXT][NOTE_LINE_MAX];
	size_t		next;
};

/*
 * Keys. note_key_from_pkey() takes an Ed25519 EVP_PKEY (public or
 * private; only the public half is read). note_key_format() writes the
 * verifier key string. All return 0, or -1 with a reason in err.
 */
int	note_key_from_pkey(const char *name, EVP_PKEY *, struct note_key *,
	    char *err, size_t errlen);
int	note_key_format(const struct note_key *, char *out, size_t outlen);
int	note_key_parse(const char *s, struct note_key *, char *err,
	    size_t errlen);
/* A new EVP_PKEY for the key's public half; the caller frees it. */
EVP_PKEY *note_key_pkey(const struct note_key *);
/* "safeshare/<32 hex>" for a 16-byte log id, in out[64]. */
void	note_log_origin(const unsigned char log_id[16], char out[64]);

/*
 * Checkpoint bodies. note_checkpoint_body() returns the body's length
 * written into out (NUL-terminated), or -1 when a field is malformed or
 * out is too small. note_checkpoint_parse() is strict: exact decimal, a
 * 32-byte root, no empty lines; 0 or -1 with a reason in err.
 * note_checkpoint_ext() returns the value of the first extension line
 * "<keyword> <value>", or NULL.
 */
int	note_checkpoint_body(const struct note_checkpoint *, char *out,
	    size_t outlen);
int	note_checkpoint_parse(const char *body, size_t len,
	    struct note_checkpoint *, char *err, size_t errlen);
const char *note_checkpoint_ext(const struct note_checkpoint *,
	    const char *keyword);

/*
 * Parses a note of at most NOTE_MAX bytes; 0, or -1 with a reason in err.
 * The note keeps pointing into text, which the caller owns.
 */
int	note_parse(const char *text, size_t len, struct note *, char *err,
	    size_t errlen);

/*
 * Signs: text is either a bare body (no blank line) or a whole note, to
 * which one more signature line is added (a witness's cosignature).
 * Returns a new NUL-terminated note the caller frees, or NULL with a
 * reason in err. key is an Ed25519 private key.
 */
char	*note_sign(const char *text, size_t len, const char *name,
	    EVP_PKEY *key, char *err, size_t errlen);

/*
 * A signer kept for many notes (the log writer signs one per commit): the
 * key's name, id and public half worked out once, and a signing context
 * set up once and copied for each signature instead of set up again.
 * note_signer_sign() is note_sign() with it, and also gives the raw
 * signature in sig (may be NULL). The signer takes its own reference on
 * key. Not shared between threads.
 */
struct note_signer;
struct note_signer *note_signer_new(const char *name, EVP_PKEY *key, char *err,
	    size_t errlen);
char	*note_signer_sign(struct note_signer *, const char *text, size_t len,
	    uint8_t sig[64], char *err, size_t errlen);
/* Whether the signer is of this key and name. */
int	 note_signer_is(const struct note_signer *, EVP_PKEY *key, const char *name);
void	 note_signer_free(struct note_signer *);

/*
 * Checks the note's signatures against the known keys. A signature
 * whose name and key id match a known key must verify, or the note is
 * refused (-1, reason in err); signatures from unknown keys are ignored.
 * Returns the number of known keys that signed and, when ok is not
 * NULL, sets ok[i] for each key i that did.
 */
int	note_verify(const struct note *, const struct note_key *keys,
	    size_t nkeys, int *ok, char *err, size_t errlen);

/* Standard base64 with padding, through OpenSSL; decode is strict. */
int	note_b64_encode(const uint8_t *in, size_t len, char *out,
	    size_t outlen);
int	note_b64_decode(const char *in, size_t inlen, uint8_t *out,
	    size_t outlen);

#endif
