/*
 * C2SP signed notes and tlog checkpoints. Parsing is strict and bounded:
 * a note is at most NOTE_MAX bytes, has no control characters but '\n',
 * and every length is checked before it is copied.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "note.h"
#include "util.h"

#define SIG_PREFIX	"\xe2\x80\x94 "	/* U+2014 EM DASH, then a space */
#define SIG_PREFIXLEN	4

int
note_b64_encode(const uint8_t *in, size_t len, char *out, size_t outlen)
{
	if (len > (size_t)INT32_MAX / 2 || outlen < 4 * ((len + 2) / 3) + 1)
		return -1;
	return EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/*
 * EVP_DecodeBlock skips surrounding blanks and keeps the bytes that the
 * padding stands for, so the input is checked first: only the alphabet, a
 * multiple of 4, at most two '=' at the end; then the padding is taken
 * off, and the result must encode back to the same text (canonical).
 */
int
note_b64_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen)
{
	uint8_t		buf[NOTE_MAX];
	char		back[NOTE_MAX + 4];
	size_t		i, pad = 0;
	int		n;

	if (inlen == 0 || inlen % 4 != 0 || inlen > sizeof(buf))
		return -1;
	for (i = 0; i < inlen; i++) {
		char c = in[i];

		if (c == '=') {
			if (i < inlen - 2)
				return -1;
			pad++;
			continue;
		}
		if (pad > 0)
			return -1;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return -1;
	}
	n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)inlen);
	if (n < 0 || (size_t)n < pad)
		return -1;
	n -= (int)pad;
	if ((size_t)n > outlen)
		return -1;
	if (EVP_EncodeBlock((unsigned char *)back, buf, n) != (int)inlen ||
	    memcmp(back, in, inlen) != 0)
		return -1;
	memcpy(out, buf, (size_t)n);
	OPENSSL_cleanse(buf, sizeof(buf));
	return n;
}

/* A key name: non-empty, printable ASCII or UTF-8, no space and no '+'. */
static int
name_ok(const char *s, size_t len)
{
	size_t	i;

	if (len == 0 || len > NOTE_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f || c == '+')
			return 0;
	}
	return 1;
}

static void
key_id(const char *name, const uint8_t pub[32], uint8_t id[4])
{
	EVP_MD_CTX	*md;
	uint8_t		 h[32], tail[2] = { '\n', NOTE_ALG_ED25519 };
	unsigned int	 hl = 0;

	memset(h, 0, sizeof(h));
	if ((md = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(md, name, strlen(name)) == 1 &&
	    EVP_DigestUpdate(md, tail, 2) == 1 &&
	    EVP_DigestUpdate(md, pub, 32) == 1)
		EVP_DigestFinal_ex(md, h, &hl);
	EVP_MD_CTX_free(md);
	memcpy(id, h, 4);
}

int
note_key_from_pkey(const char *name, EVP_PKEY *k, struct note_key *out,
    char *err, size_t errlen)
{
	size_t	len = 32;

	memset(out, 0, sizeof(*out));
	if (!name_ok(name, strlen(name)))
		return errorf(err, errlen, "key name \"%.40s\" is empty, too long "
		    "or has a space or '+'", name);
	if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519)
		return errorf(err, errlen, "not an Ed25519 key");
	if (EVP_PKEY_get_raw_public_key(k, out->pub, &len) != 1 || len != 32)
		return errorf(err, errlen, "cannot read the Ed25519 public key");
	memcpy(out->name, name, strlen(name) + 1);
	key_id(out->name, out->pub, out->id);
	return 0;
}

int
note_key_format(const struct note_key *k, char *out, size_t outlen)
{
	uint8_t		blob[33];
	char		hex[9], b64[64];

	blob[0] = NOTE_ALG_ED25519;
	memcpy(blob + 1, k->pub, 32);
	hex_encode(k->id, 4, hex);
	if (note_b64_encode(blob, sizeof(blob), b64, sizeof(b64)) < 0)
		return -1;
	if ((size_t)snprintf(out, outlen, "%s+%s+%s", k->name, hex, b64) >= outlen)
		return -1;
	return 0;
}

int
note_key_parse(const char *s, struct note_key *k, char *err, size_t errlen)
{
	const char	*p1, *p2;
	uint8_t		 blob[64], id[4];
	char		 hexid[9];
	int		 n;

	memset(k, 0, sizeof(*k));
	if ((p1 = strchr(s, '+')) == NULL || (p2 = strchr(p1 + 1, '+')) == NULL)
		return errorf(err, errlen, "a verifier key is name+keyid+base64key");
	if (!name_ok(s, (size_t)(p1 - s)))
		return errorf(err, errlen, "the key name is empty, too long or "
		    "has a space or '+'");
	if (p2 - p1 - 1 != 8)
		return errorf(err, errlen, "the key id is not 8 hex digits");
	memcpy(hexid, p1 + 1, 8);
	hexid[8] = '\0';
	if (strspn(hexid, "0123456789abcdefABCDEF") != 8 ||
	    hex_decode(hexid, id, 4) != 0)
		return errorf(err, errlen, "the key id is not 8 hex digits");
	n = note_b64_decode(p2 + 1, strlen(p2 + 1), blob, sizeof(blob));
	if (n < 0)
		return errorf(err, errlen, "the key is not valid base64");
	if (n != 33 || blob[0] != NOTE_ALG_ED25519)
		return errorf(err, errlen, "not an Ed25519 verifier key");
	memcpy(k->name, s, (size_t)(p1 - s));
	memcpy(k->pub, blob + 1, 32);
	key_id(k->name, k->pub, k->id);
	if (memcmp(k->id, id, 4) != 0)
		return errorf(err, errlen, "the key id does not match the name and key");
	return 0;
}

EVP_PKEY *
note_key_pkey(const struct note_key *k)
{
	return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, k->pub, 32);
}

void
note_log_origin(const unsigned char log_id[16], char out[64])
{
	char	hex[33];

	hex_encode(log_id, 16, hex);
	snprintf(out, 64, "%s%s", NOTE_ORIGIN_PREFIX, hex);
}

/* A checkpoint line: non-empty, bounded, no control characters. */
static int
line_ok(const char *s, size_t len)
{
	size_t	i;

	if (len == 0 || len >= NOTE_LINE_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

int
note_checkpoint_body(const struct note_checkpoint *c, char *out, size_t outlen)
{
	char	b64[64];
	size_t	i, off;
	int	n;

	if (!line_ok(c->origin, strlen(c->origin)) || c->next > NOTE_MAX_EXT)
		return -1;
	if (note_b64_encode(c->root, 32, b64, sizeof(b64)) < 0)
		return -1;
	n = snprintf(out, outlen, "%s\n%llu\n%s\n", c->origin,
	    (unsigned long long)c->size, b64);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	off = (size_t)n;
	for (i = 0; i < c->next; i++) {
		if (!line_ok(c->ext[i], strlen(c->ext[i])))
			return -1;
		n = snprintf(out + off, outlen - off, "%s\n", c->ext[i]);
		if (n < 0 || (size_t)n >= outlen - off)
			return -1;
		off += (size_t)n;
	}
	return (int)off;
}

int
note_checkpoint_parse(const char *body, size_t len, struct note_checkpoint *c,
    char *err, size_t errlen)
{
	const char	*p = body, *end = body + len, *nl;
	uint8_t		 root[64];
	size_t		 ln, i;
	int		 line = 0, n;

	memset(c, 0, sizeof(*c));
	if (len == 0 || body[len - 1] != '\n')
		return errorf(err, errlen, "a checkpoint ends with a newline");
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		ln = (size_t)(nl - p);
		line++;
		if (!line_ok(p, ln))
			return errorf(err, errlen, "checkpoint line %d is empty, too "
			    "long or has a control character", line);
		if (line == 1)
			memcpy(c->origin, p, ln);
		else if (line == 2) {
			if (ln > 20 || (p[0] == '0' && ln > 1))
				return errorf(err, errlen, "the tree size is not a "
				    "plain decimal number");
			for (i = 0; i < ln; i++) {
				if (p[i] < '0' || p[i] > '9')
					return errorf(err, errlen, "the tree size "
					    "is not a plain decimal number");
				if (c->size > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
					return errorf(err, errlen, "the tree size "
					    "is too large");
				c->size = c->size * 10 + (uint64_t)(p[i] - '0');
			}
		} else if (line == 3) {
			n = note_b64_decode(p, ln, root, sizeof(root));
			if (n != 32)
				return errorf(err, errlen, "the root hash is not 32 "
				    "bytes of base64");
			memcpy(c->root, root, 32);
		} else {
			if (c->next == NOTE_MAX_EXT)
				return errorf(err, errlen, "more than %d checkpoint "
				    "extension lines", NOTE_MAX_EXT);
			memcpy(c->ext[c->next++], p, ln);
		}
		p = nl + 1;
	}
	if (line < 3)
		return errorf(err, errlen, "a checkpoint has an origin, a size "
		    "and a root hash");
	return 0;
}

const char *
note_checkpoint_ext(const struct note_checkpoint *c, const char *keyword)
{
	size_t	i, kl = strlen(keyword);

	for (i = 0; i < c->next; i++)
		if (strncmp(c->ext[i], keyword, kl) == 0 && c->ext[i][kl] == ' ')
			return c->ext[i] + kl + 1;
	return NULL;
}

/* One signature line "— name base64\n" of len bytes (newline excluded). */
static int
parse_sig(const char *p, size_t len, struct note_sig *s, char *err,
    size_t errlen, size_t lineno)
{
	const char	*sp;
	uint8_t		 blob[NOTE_SIGBLOB_MAX + 8];
	size_t		 nl;
	int		 n;

	if (len < SIG_PREFIXLEN || memcmp(p, SIG_PREFIX, SIG_PREFIXLEN) != 0)
		return errorf(err, errlen, "signature line %zu does not start "
		    "with an em dash and a space", lineno);
	p += SIG_PREFIXLEN;
	len -= SIG_PREFIXLEN;
	if ((sp = memchr(p, ' ', len)) == NULL)
		return errorf(err, errlen, "signature line %zu has no signature",
		    lineno);
	nl = (size_t)(sp - p);
	if (!name_ok(p, nl))
		return errorf(err, errlen, "signature line %zu has a bad key "
		    "name", lineno);
	n = note_b64_decode(sp + 1, len - nl - 1, blob, sizeof(blob));
	if (n < 5 || n > NOTE_SIGBLOB_MAX + 4)
		return errorf(err, errlen, "signature line %zu is not a key id "
		    "and a signature in base64", lineno);
	memcpy(s->name, p, nl);
	s->name[nl] = '\0';
	memcpy(s->id, blob, 4);
	s->siglen = (size_t)n - 4;
	memcpy(s->sig, blob + 4, s->siglen);
	return 0;
}

/*
 * The body ends at the last blank line; what follows are signature
 * lines, at least one. Only '\n' among the control characters.
 */
int
note_parse(const char *text, size_t len, struct note *nt, char *err,
    size_t errlen)
{
	const char	*p, *end = text + len, *nl;
	size_t		 i, lineno = 0;

	memset(nt, 0, sizeof(*nt));
	if (len > NOTE_MAX)
		return errorf(err, errlen, "the note is longer than %d bytes",
		    NOTE_MAX);
	if (len == 0 || text[len - 1] != '\n')
		return errorf(err, errlen, "the note does not end with a newline");
	for (i = 0; i < len; i++)
		if (((unsigned char)text[i] < 0x20 && text[i] != '\n') ||
		    text[i] == 0x7f)
			return errorf(err, errlen, "the note has a control "
			    "character at byte %zu", i);
	for (i = len - 1; i > 0; i--)
		if (text[i] == '\n' && text[i - 1] == '\n')
			break;
	if (i == 0)
		return errorf(err, errlen, "the note has no signatures (no blank "
		    "line after its text)");
	nt->body = text;
	nt->bodylen = i;	/* up to and including the body's last '\n' */
	if (nt->bodylen < 2 || text[0] == '\n')
		return errorf(err, errlen, "the note's text is empty or starts "
		    "with a blank line");
	p = text + i + 1;
	if (p == end)
		return errorf(err, errlen, "the note has no signatures");
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		lineno++;
		if (nt->nsigs == NOTE_MAX_SIGS)
			return errorf(err, errlen, "more than %d signatures",
			    NOTE_MAX_SIGS);
		if (parse_sig(p, (size_t)(nl - p), &nt->sigs[nt->nsigs], err,
		    errlen, lineno) == -1)
			return -1;
		nt->nsigs++;
		p = nl + 1;
	}
	return 0;
}

struct note_signer {
	struct note_key	 k;
	EVP_PKEY	*key;	/* ours: a reference */
	EVP_MD_CTX	*tmpl;	/* initialised for key, copied per signature */
};

struct note_signer *
note_signer_new(const char *name, EVP_PKEY *key, char *err, size_t errlen)
{
	struct note_signer *sg;

	if ((sg = calloc(1, sizeof(*sg))) == NULL) {
		errorf(err, errlen, "out of memory");
		return NULL;
	}
	if (note_key_from_pkey(name, key, &sg->k, err, errlen) == -1)
		goto fail;
	if ((sg->tmpl = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(sg->tmpl, NULL, NULL, NULL, key) != 1 ||
	    EVP_PKEY_up_ref(key) != 1) {
		errorf(err, errlen, "signing failed");
		goto fail;
	}
	sg->key = key;
	return sg;
fail:
	note_signer_free(sg);
	return NULL;
}

int
note_signer_is(const struct note_signer *sg, EVP_PKEY *key, const char *name)
{
	return sg != NULL && sg->key == key && strcmp(sg->k.name, name) == 0;
}

void
note_signer_free(struct note_signer *sg)
{
	if (sg == NULL)
		return;
	EVP_MD_CTX_free(sg->tmpl);
	EVP_PKEY_free(sg->key);
	free(sg);
}

char *
note_signer_sign(struct note_signer *sg, const char *text, size_t len,
    uint8_t sig[64], char *err, size_t errlen)
{
	struct note	 nt;
	EVP_MD_CTX	*md = NULL;
	uint8_t		 blob[4 + 64];
	char		 b64[128], *out = NULL;
	const char	*body = text;
	size_t		 bodylen = len, siglen = 64, outlen;
	int		 isnote, n;

	isnote = 0;
	for (bodylen = 1; bodylen < len; bodylen++)
		if (text[bodylen] == '\n' && text[bodylen - 1] == '\n')
			isnote = 1;
	bodylen = len;
	if (isnote) {
		if (note_parse(text, len, &nt, err, errlen) == -1)
			return NULL;
		body = nt.body;
		bodylen = nt.bodylen;
	} else if (len == 0 || text[len - 1] != '\n' || len > NOTE_MAX) {
		errorf(err, errlen, "a note's text is non-empty and ends with a newline");
		return NULL;
	}
	memcpy(blob, sg->k.id, 4);
	/* A copy of the context set up once: Ed25519 signs once per set-up. */
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_MD_CTX_copy_ex(md, sg->tmpl) != 1 ||
	    EVP_DigestSign(md, blob + 4, &siglen, (const unsigned char *)body,
	    bodylen) != 1 || siglen != 64) {
		errorf(err, errlen, "signing failed");
		goto done;
	}
	if (note_b64_encode(blob, sizeof(blob), b64, sizeof(b64)) < 0) {
		errorf(err, errlen, "signing failed");
		goto done;
	}
	outlen = len + 1 + SIG_PREFIXLEN + strlen(sg->k.name) + 1 + strlen(b64) + 2;
	if (outlen > NOTE_MAX + 1) {
		errorf(err, errlen, "the signed note would be longer than %d bytes",
		    NOTE_MAX);
		goto done;
	}
	if ((out = malloc(outlen)) == NULL) {
		errorf(err, errlen, "out of memory");
		goto done;
	}
	n = snprintf(out, outlen, "%.*s%s%s%s %s\n", (int)len, text,
	    isnote ? "" : "\n", SIG_PREFIX, sg->k.name, b64);
	if (n < 0 || (size_t)n >= outlen) {
		free(out);
		out = NULL;
		errorf(err, errlen, "signing failed");
		goto done;
	}
	if (sig != NULL)
		memcpy(sig, blob + 4, 64);
done:
	EVP_MD_CTX_free(md);
	return out;
}

char *
note_sign(const char *text, size_t len, const char *name, EVP_PKEY *key,
    char *err, size_t errlen)
{
	struct note_signer	*sg;
	char			*out;

	if ((sg = note_signer_new(name, key, err, errlen)) == NULL)
		return NULL;
	out = note_signer_sign(sg, text, len, NULL, err, errlen);
	note_signer_free(sg);
	return out;
}

/* Whether a signature line before line i names the same key (counted once). */
static int
signed_before(const struct note *nt, size_t i, const struct note_key *k)
{
	size_t	j;

	for (j = 0; j < i; j++)
		if (strcmp(nt->sigs[j].name, k->name) == 0 &&
		    memcmp(nt->sigs[j].id, k->id, 4) == 0)
			return 1;
	return 0;
}

int
note_verify(const struct note *nt, const struct note_key *keys, size_t nkeys,
    int *ok, char *err, size_t errlen)
{
	EVP_PKEY	*pk;
	EVP_MD_CTX	*md;
	size_t		 i, j;
	int		 count = 0, good;

	if (ok != NULL)
		for (j = 0; j < nkeys; j++)
			ok[j] = 0;
	for (i = 0; i < nt->nsigs; i++) {
		const struct note_sig *s = &nt->sigs[i];

		for (j = 0; j < nkeys; j++) {
			if (strcmp(s->name, keys[j].name) != 0 ||
			    memcmp(s->id, keys[j].id, 4) != 0)
				continue;
			good = 0;
			if (s->siglen == 64 && (pk = note_key_pkey(&keys[j])) != NULL) {
				if ((md = EVP_MD_CTX_new()) != NULL &&
				    EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) == 1 &&
				    EVP_DigestVerify(md, s->sig, 64,
				    (const unsigned char *)nt->body, nt->bodylen) == 1)
					good = 1;
				EVP_MD_CTX_free(md);
				EVP_PKEY_free(pk);
			}
			if (!good)
				return errorf(err, errlen, "the signature of key %s "
				    "does not verify: forged or altered", s->name);
			if (!signed_before(nt, i, &keys[j]))
				count++;
			if (ok != NULL)
				ok[j] = 1;
		}
	}
	return count;
}
