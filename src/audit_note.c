/*
 * The log's checkpoint notes (the format is in audit_int.h and
 * docs/audit-format.md). Building and signing one, and the verifier key
 * string, go through note.h; the strict parse of the log's own notes and
 * the check of their signatures are still here.
 */
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_int.h"
#include "note.h"
#include "util.h"

void
audit_note_origin(const unsigned char log_id[16], char out[80])
{
	char hex[33];

	hex_encode(log_id, 16, hex);
	snprintf(out, 80, "safeshare/%s", hex);
}

/* Decodes exactly want bytes of padded base64 (slen chars): 0 or -1. */
static int
b64_decode(const char *s, size_t slen, unsigned char *out, size_t want)
{
	unsigned char	 buf[512];
	size_t		 pad = 0;
	int		 n;

	if (slen == 0 || slen % 4 != 0 || slen / 4 * 3 > sizeof(buf))
		return -1;
	while (pad < 2 && s[slen - 1 - pad] == '=')
		pad++;
	if ((n = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)slen)) < 0 ||
	    (size_t)n - pad != want)
		return -1;
	memcpy(out, buf, want);
	return 0;
}

static int
key_raw(EVP_PKEY *k, unsigned char pub[32])
{
	size_t len = 32;

	return EVP_PKEY_get_raw_public_key(k, pub, &len) == 1 && len == 32 ? 0 : -1;
}

static int
key_id(const char *name, EVP_PKEY *k, unsigned char id[4])
{
	unsigned char	 buf[80 + 2 + 32], h[32];
	size_t		 n = strlen(name);

	if (n > 80 || key_raw(k, buf + n + 2) == -1)
		return -1;
	memcpy(buf, name, n);
	buf[n] = '\n';
	buf[n + 1] = 0x01;
	SHA256(buf, n + 2 + 32, h);
	memcpy(id, h, 4);
	return 0;
}

/* "<name>+<hex key id>+<base64(0x01 || public key)>", the signed-note form (note.h). */
int
audit_verifier_key(const char *name, EVP_PKEY *k, char *out, size_t len)
{
	struct note_key	 nk;
	char		 err[128];

	if (note_key_from_pkey(name, k, &nk, err, sizeof(err)) == -1)
		return -1;
	return note_key_format(&nk, out, len);
}

/* The Ed25519 key a verifier key string names, if its key id agrees. */
EVP_PKEY *
audit_verifier_key_parse(const char *s)
{
	const char	*p1, *p2;
	unsigned char	 raw[33], id[4], want[4];
	char		 name[80];
	EVP_PKEY	*k;

	if ((p1 = strchr(s, '+')) == NULL || (p2 = strchr(p1 + 1, '+')) == NULL ||
	    (size_t)(p1 - s) >= sizeof(name) || p2 - p1 - 1 != 8)
		return NULL;
	memcpy(name, s, (size_t)(p1 - s));
	name[p1 - s] = '\0';
	{
		char hex[9];

		memcpy(hex, p1 + 1, 8);
		hex[8] = '\0';
		if (hex_decode(hex, want, 4) == -1)
			return NULL;
	}
	if (b64_decode(p2 + 1, strlen(p2 + 1), raw, 33) == -1 || raw[0] != 0x01 ||
	    (k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw + 1,
	    32)) == NULL)
		return NULL;
	if (key_id(name, k, id) == -1 || memcmp(id, want, 4) != 0) {
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

static int
parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 19 || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/*
 * Parses a checkpoint note strictly: every line as above, nothing else.
 * Returns 0, or -1 with why.
 */
int
audit_note_parse(const char *note, struct cpnote *c, char *why, size_t wlen)
{
	const char	*p = note, *end, *nl, *body_end;
	uint64_t	 t;
	int		 line = 0, have_time = 0, have_n = 0;
	size_t		 len = strlen(note);

	memset(c, 0, sizeof(*c));
	if (len > AUDIT_NOTE_MAX) {
		snprintf(why, wlen, "the note is over %d bytes", AUDIT_NOTE_MAX);
		return -1;
	}
	if ((body_end = strstr(note, "\n\n")) == NULL) {
		snprintf(why, wlen, "no blank line before the signatures");
		return -1;
	}
	c->bodylen = (size_t)(body_end - note) + 1;
	end = note + c->bodylen;
	for (; p < end; p = nl + 1, line++) {
		size_t n;

		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)(nl - p);
		if (line == 0) {
			if (n == 0 || n >= sizeof(c->origin))
				goto bad;
			memcpy(c->origin, p, n);
		} else if (line == 1) {
			if (parse_u64(p, n, &c->size) == -1)
				goto bad;
		} else if (line == 2) {
			if (b64_decode(p, n, c->root, 32) == -1)
				goto bad;
		} else if (n > 5 && strncmp(p, "time ", 5) == 0 && !have_time) {
			if (parse_u64(p + 5, n - 5, &t) == -1 || t > INT64_MAX)
				goto bad;
			c->time = (int64_t)t;
			have_time = 1;
		} else if (n > 11 && strncmp(p, "checkpoint ", 11) == 0 && !have_n) {
			if (parse_u64(p + 11, n - 11, &c->n) == -1 || c->n == 0)
				goto bad;
			have_n = 1;
		} else if (n > 9 && strncmp(p, "next-key ", 9) == 0 &&
		    c->next_key[0] == '\0' && n - 9 < sizeof(c->next_key)) {
			memcpy(c->next_key, p + 9, n - 9);
		} else
			goto bad;
	}
	if (line < 3 || !have_time || !have_n)
		goto bad;
	for (p = end + 1; *p != '\0'; p = nl + 1) {
		const char	*sp;
		unsigned char	 raw[68];

		if ((nl = strchr(p, '\n')) == NULL || strncmp(p, EM_DASH " ", 4) != 0 ||
		    (sp = memchr(p + 4, ' ', (size_t)(nl - p - 4))) == NULL) {
			snprintf(why, wlen, "a malformed signature line");
			return -1;
		}
		/* Only the log's own signatures: cosignatures have other names. */
		if ((size_t)(sp - p - 4) != strlen(c->origin) ||
		    strncmp(p + 4, c->origin, strlen(c->origin)) != 0 ||
		    b64_decode(sp + 1, (size_t)(nl - sp - 1), raw, 68) == -1 ||
		    c->nsig == NOTE_SIGS)
			continue;
		memcpy(c->sig[c->nsig].id, raw, 4);
		memcpy(c->sig[c->nsig].sig, raw + 4, 64);
		c->nsig++;
	}
	return 0;
bad:
	snprintf(why, wlen, "line %d of the note is not a safeshare checkpoint's",
	    line + 1);
	return -1;
}

/* 1 if key signed the note (a signature line with its key id verifies). */
int
audit_note_signed_by(const char *note, const struct cpnote *c, EVP_PKEY *key)
{
	unsigned char	 id[4];
	int		 ok = 0;

	if (key == NULL || key_id(c->origin, key, id) == -1)
		return 0;
	for (size_t i = 0; i < c->nsig && !ok; i++) {
		EVP_MD_CTX *md;

		if (memcmp(c->sig[i].id, id, 4) != 0 || (md = EVP_MD_CTX_new()) == NULL)
			continue;
		ok = EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) == 1 &&
		    EVP_DigestVerify(md, c->sig[i].sig, 64, (const unsigned char *)note,
		    c->bodylen) == 1;
		EVP_MD_CTX_free(md);
	}
	return ok;
}

/* The body of a checkpoint note (note.h's format) into body: its length, or -1. */
static int
checkpoint_body(const unsigned char log_id[16], uint64_t size,
    const unsigned char root[32], int64_t t, uint64_t n, const char *next_key,
    char *body, size_t bodylen)
{
	struct note_checkpoint	 c;

	memset(&c, 0, sizeof(c));
	note_log_origin(log_id, c.origin);
	c.size = size;
	memcpy(c.root, root, 32);
	snprintf(c.ext[c.next++], NOTE_LINE_MAX, "time %lld", (long long)t);
	snprintf(c.ext[c.next++], NOTE_LINE_MAX, "checkpoint %llu",
	    (unsigned long long)n);
	if (next_key != NULL && snprintf(c.ext[c.next++], NOTE_LINE_MAX,
	    "next-key %s", next_key) >= NOTE_LINE_MAX)
		return -1;
	return note_checkpoint_body(&c, body, bodylen);
}

/*
 * Builds and signs a checkpoint note through note.h; *out is the caller's
 * to free. tests/unit/test_entry.c pins its bytes.
 */
int
audit_note_sign(EVP_PKEY *key, const unsigned char log_id[16], uint64_t size,
    const unsigned char root[32], int64_t t, uint64_t n, const char *next_key,
    char **out)
{
	struct note_signer	*sg;
	char			 origin[NOTE_NAME_MAX + 1], err[128];
	int			 rc;

	*out = NULL;
	note_log_origin(log_id, origin);
	if ((sg = note_signer_new(origin, key, err, sizeof(err))) == NULL)
		return -1;
	rc = audit_note_sign_with(sg, log_id, size, root, t, n, next_key, out, NULL);
	note_signer_free(sg);
	return rc;
}

/*
 * audit_note_sign() with a signer kept by the caller (the log writer's,
 * one per log and key: see insert_checkpoint()), which also gives the raw
 * signature in sig (may be NULL).
 */
int
audit_note_sign_with(struct note_signer *sg, const unsigned char log_id[16],
    uint64_t size, const unsigned char root[32], int64_t t, uint64_t n,
    const char *next_key, char **out, unsigned char sig[64])
{
	char	 body[1024], err[128];
	int	 len;

	*out = NULL;
	if ((len = checkpoint_body(log_id, size, root, t, n, next_key, body,
	    sizeof(body))) < 0 || (*out = note_signer_sign(sg, body, (size_t)len,
	    sig, err, sizeof(err))) == NULL)
		return -1;
	return 0;
}
