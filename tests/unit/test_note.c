/*
 * Signed notes and checkpoints (D15-D17, issue 13): the public signed-note
 * vectors in tests/data/note verify and re-sign byte for byte, checkpoint
 * bodies round-trip, and every malformed note, key or checkpoint is
 * refused with a reason.
 */
#include <criterion/criterion.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "note.h"
#include "util.h"

/* The public vectors: golang.org/x/mod sumdb/note tests, the C2SP spec example. */
#define PETER_VKEY	"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
#define ENOCH_VKEY	"EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
#define SPEC_VKEY	"example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
#define PETER_SEED_B64	"AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"	/* 0x01 || seed */
#define PETER_TEXT	"If you think cryptography is the answer to your problem,\n" \
			"then you don't know what your problem is.\n"

static char *
t_read(const char *name, size_t *len)
{
	char	 path[512], *s;

	snprintf(path, sizeof(path), DATA_DIR "/note/%s", name);
	s = file_read(path, NOTE_MAX * 2, len, NULL, NULL, 0);
	cr_assert_not_null(s, "%s", path);
	return s;
}

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

static EVP_PKEY *
t_peter(void)
{
	uint8_t		 blob[40];
	EVP_PKEY	*k;

	cr_assert_eq(note_b64_decode(PETER_SEED_B64, strlen(PETER_SEED_B64),
	    blob, sizeof(blob)), 33);
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, blob + 1, 32);
	cr_assert_not_null(k);
	return k;
}

Test(note, public_vectors_verify)
{
	struct note_key	 keys[3];
	struct note	 nt;
	char		*text, err[256];
	size_t		 len;
	int		 ok[3];

	cr_assert_eq(note_key_parse(PETER_VKEY, &keys[0], err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(note_key_parse(ENOCH_VKEY, &keys[1], err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(note_key_parse(SPEC_VKEY, &keys[2], err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(keys[2].name, "example.com/foo");

	text = t_read("peter.note", &len);
	cr_assert_eq(note_parse(text, len, &nt, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(nt.bodylen, strlen(PETER_TEXT));
	cr_expect_eq(memcmp(nt.body, PETER_TEXT, nt.bodylen), 0);
	cr_expect_eq(nt.nsigs, 1);
	cr_expect_eq(note_verify(&nt, keys, 3, ok, err, sizeof(err)), 1);
	cr_expect(ok[0] && !ok[1] && !ok[2]);
	cr_expect_eq(note_verify(&nt, keys + 1, 2, NULL, err, sizeof(err)), 0,
	    "signatures from unknown keys are ignored, not trusted");
	free(text);

	text = t_read("peter_enoch.note", &len);
	cr_assert_eq(note_parse(text, len, &nt, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(nt.nsigs, 2);
	cr_expect_eq(note_verify(&nt, keys, 3, ok, err, sizeof(err)), 2);
	cr_expect(ok[0] && ok[1] && !ok[2]);
	free(text);

	text = t_read("spec_example.note", &len);
	cr_assert_eq(note_parse(text, len, &nt, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(note_verify(&nt, keys, 3, ok, err, sizeof(err)), 1);
	cr_expect(ok[2]);
	/* One altered byte of the text: the known key's signature fails. */
	text[0] = 't';
	cr_assert_eq(note_parse(text, len, &nt, err, sizeof(err)), 0);
	cr_expect_eq(note_verify(&nt, keys, 3, ok, err, sizeof(err)), -1);
	cr_expect(strstr(err, "example.com/foo") != NULL, "%s", err);
	free(text);
}

/* Ed25519 is deterministic: signing the Go test text gives the Go note. */
Test(note, sign_reproduces_vector)
{
	EVP_PKEY	*k = t_peter();
	struct note_key	 key;
	char		*want, *got, err[256], vkey[256];
	size_t		 len;

	cr_assert_eq(note_key_from_pkey("PeterNeumann", k, &key, err, sizeof(err)), 0);
	cr_assert_eq(note_key_format(&key, vkey, sizeof(vkey)), 0);
	cr_expect_str_eq(vkey, PETER_VKEY);
	want = t_read("peter.note", &len);
	got = note_sign(PETER_TEXT, strlen(PETER_TEXT), "PeterNeumann", k, err, sizeof(err));
	cr_assert_not_null(got, "%s", err);
	cr_expect_str_eq(got, want);
	free(got);
	free(want);
	EVP_PKEY_free(k);
}

/*
 * A kept signer (the log writer's, one per log: its context is set up once
 * and copied per signature) gives, note after note, the same bytes as
 * note_sign() and the spec's vector, and the raw signature of the line.
 */
Test(note, kept_signer_signs_as_note_sign_does)
{
	EVP_PKEY		*k = t_peter();
	struct note_signer	*sg;
	struct note		 nt;
	uint8_t			 sig[64];
	char			*want, *got, *fresh, err[256], body[256];
	size_t			 len;

	cr_assert_not_null(sg = note_signer_new("PeterNeumann", k, err, sizeof(err)),
	    "%s", err);
	cr_expect(note_signer_is(sg, k, "PeterNeumann"));
	cr_expect_not(note_signer_is(sg, k, "Other"));
	want = t_read("peter.note", &len);
	for (int i = 0; i < 5; i++) {
		got = note_signer_sign(sg, PETER_TEXT, strlen(PETER_TEXT), sig, err,
		    sizeof(err));
		cr_assert_not_null(got, "%s", err);
		cr_expect_str_eq(got, want, "signature %d", i);
		cr_assert_eq(note_parse(got, strlen(got), &nt, err, sizeof(err)), 0);
		cr_assert_eq(nt.nsigs, 1);
		cr_assert_eq(nt.sigs[0].siglen, 64);
		cr_expect_eq(memcmp(sig, nt.sigs[0].sig, 64), 0, "the raw signature");
		free(got);
	}
	for (int i = 0; i < 20; i++) {
		snprintf(body, sizeof(body), "example.com/log\n%d\nbody number %d\n",
		    i * 7, i);
		got = note_signer_sign(sg, body, strlen(body), NULL, err, sizeof(err));
		fresh = note_sign(body, strlen(body), "PeterNeumann", k, err,
		    sizeof(err));
		cr_assert(got != NULL && fresh != NULL, "%s", err);
		cr_expect_str_eq(got, fresh, "note %d", i);
		free(got);
		free(fresh);
	}
	note_signer_free(sg);
	free(want);
	EVP_PKEY_free(k);
}

/* A witness adds its line to the log's note; both then verify. */
Test(note, cosign_appends_a_line)
{
	EVP_PKEY	*log = t_key(), *wit = t_key();
	struct note_key	 keys[2];
	struct note	 nt;
	char		*n1, *n2, err[256];
	int		 ok[2];
	const char	*body = "safeshare/00112233445566778899aabbccddeeff\n3\n"
			    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";

	cr_assert_eq(note_key_from_pkey("safeshare/log", log, &keys[0], err, sizeof(err)), 0);
	cr_assert_eq(note_key_from_pkey("witness.agency-b", wit, &keys[1], err, sizeof(err)), 0);
	n1 = note_sign(body, strlen(body), "safeshare/log", log, err, sizeof(err));
	cr_assert_not_null(n1, "%s", err);
	n2 = note_sign(n1, strlen(n1), "witness.agency-b", wit, err, sizeof(err));
	cr_assert_not_null(n2, "%s", err);
	cr_expect_eq(strncmp(n2, n1, strlen(n1)), 0, "the cosignature is appended");
	cr_assert_eq(note_parse(n2, strlen(n2), &nt, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(nt.nsigs, 2);
	cr_expect_eq(nt.bodylen, strlen(body));
	cr_expect_eq(note_verify(&nt, keys, 2, ok, err, sizeof(err)), 2);
	cr_expect(ok[0] && ok[1]);
	/* A key of the same name but another key id is not the witness. */
	keys[1].id[0] ^= 1;
	cr_expect_eq(note_verify(&nt, keys, 2, ok, err, sizeof(err)), 1);
	/* Same name and id, other key bytes: a forgery, refused. */
	keys[1].id[0] ^= 1;
	keys[1].pub[5] ^= 1;
	cr_expect_eq(note_verify(&nt, keys, 2, ok, err, sizeof(err)), -1);
	free(n1);
	free(n2);
	EVP_PKEY_free(log);
	EVP_PKEY_free(wit);
}

Test(note, checkpoint_round_trip)
{
	struct note_checkpoint	c, back;
	char			buf[2048], err[256];
	int			n;
	unsigned		i;
	unsigned char		log_id[16];

	memset(&c, 0, sizeof(c));
	for (i = 0; i < 16; i++)
		log_id[i] = (unsigned char)(i * 17);
	note_log_origin(log_id, c.origin);
	cr_expect_str_eq(c.origin, "safeshare/00112233445566778899aabbccddeeff");
	c.size = 18446744073709551615ULL;
	for (i = 0; i < 32; i++)
		c.root[i] = (uint8_t)i;
	snprintf(c.ext[c.next++], NOTE_LINE_MAX, "time 1764000000");
	snprintf(c.ext[c.next++], NOTE_LINE_MAX, "next-key %s", PETER_VKEY);
	n = note_checkpoint_body(&c, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	cr_expect_str_eq(buf, "safeshare/00112233445566778899aabbccddeeff\n"
	    "18446744073709551615\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
	    "time 1764000000\nnext-key " PETER_VKEY "\n");
	cr_assert_eq(note_checkpoint_parse(buf, (size_t)n, &back, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(back.origin, c.origin);
	cr_expect_eq(back.size, c.size);
	cr_expect_eq(memcmp(back.root, c.root, 32), 0);
	cr_expect_eq(back.next, 2);
	cr_expect_str_eq(note_checkpoint_ext(&back, "time"), "1764000000");
	cr_expect_str_eq(note_checkpoint_ext(&back, "next-key"), PETER_VKEY);
	cr_expect_null(note_checkpoint_ext(&back, "tim"));
	cr_expect_eq(note_checkpoint_body(&c, buf, 40), -1, "too small a buffer");
	strcpy(c.origin, "two\nlines");
	cr_expect_eq(note_checkpoint_body(&c, buf, sizeof(buf)), -1);
}

/* Each malformed checkpoint body is refused with a reason. */
Test(note, checkpoint_malformed)
{
	static const char *const bad[] = {
		"",
		"origin\n",
		"origin\n5\n",
		"origin\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",	/* no final newline */
		"\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",		/* empty origin */
		"origin\n05\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",	/* leading zero */
		"origin\n-5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
		"origin\n+5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
		"origin\n5 \nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
		"origin\n18446744073709551616\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
		"origin\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw=\n",		/* 29 bytes */
		"origin\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=\n",	/* not canonical */
		"origin\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n",	/* no padding */
		"origin\n5\n AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
		"origin\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n",	/* empty line */
		"origin\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\nx\tz\n",
		"origin\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n1\n2\n3\n4\n5\n6\n7\n8\n9\n",
	};
	struct note_checkpoint	c;
	char			err[256];
	size_t			i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_expect_eq(note_checkpoint_parse(bad[i], strlen(bad[i]), &c, err,
		    sizeof(err)), -1, "case %zu accepted", i);
		cr_expect_neq(err[0], '\0', "case %zu has no reason", i);
	}
}

/* Each malformed note is refused with a reason. */
Test(note, note_malformed)
{
	static const char *const bad[] = {
		"",
		"text\n",						/* no signatures */
		"text\n\n",						/* blank line, no signatures */
		"text\n\n\xe2\x80\x94 name\n",				/* no signature */
		"text\n\n- name AAAAAAAAAAAAAAAAAAAA\n",		/* hyphen, not em dash */
		"text\n\n\xe2\x80\x94 name AAAA\n",			/* 3 bytes: no key id + sig */
		"text\n\n\xe2\x80\x94 name AAAAAAAA!AAA\n",		/* not base64 */
		"text\n\n\xe2\x80\x94 na+me AAAAAAAAAAAA\n",		/* '+' in the name */
		"text\n\n\xe2\x80\x94  AAAAAAAAAAAA\n",			/* empty name */
		"text\n\n\xe2\x80\x94 name AAAAAAAAAAAA",		/* no final newline */
		"te\rxt\n\n\xe2\x80\x94 name AAAAAAAAAAAA\n",		/* control character */
		"\n\n\xe2\x80\x94 name AAAAAAAAAAAA\n",			/* empty text */
		"text\n\n\xe2\x80\x94 name AAAAAAAAAAAA\n\n",		/* blank after signatures */
	};
	struct note	nt;
	char		err[256], *big;
	size_t		i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_expect_eq(note_parse(bad[i], strlen(bad[i]), &nt, err, sizeof(err)),
		    -1, "case %zu accepted", i);
		cr_expect_neq(err[0], '\0', "case %zu has no reason", i);
	}
	/* Longer than NOTE_MAX. */
	big = malloc(NOTE_MAX + 64);
	memset(big, 'a', NOTE_MAX + 64);
	memcpy(big + NOTE_MAX + 64 - 20, "\n\n\xe2\x80\x94 n AAAAAAAAA\n", 19);
	big[NOTE_MAX + 63] = '\n';
	cr_expect_eq(note_parse(big, NOTE_MAX + 64, &nt, err, sizeof(err)), -1);
	free(big);
	/* Seventeen signature lines. */
	big = malloc(4096);
	strcpy(big, "text\n\n");
	for (i = 0; i < NOTE_MAX_SIGS + 1; i++)
		strcat(big, "\xe2\x80\x94 name AAAAAAAAAAAA\n");
	cr_expect_eq(note_parse(big, strlen(big), &nt, err, sizeof(err)), -1);
	cr_expect(strstr(err, "signatures") != NULL, "%s", err);
	free(big);
}

Test(note, key_malformed)
{
	static const char *const bad[] = {
		"",
		"PeterNeumann",
		"PeterNeumann+c74f20a3",
		"PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",	/* wrong id */
		"PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",	/* 7 hex */
		"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",	/* short */
		"PeterNeumann+c74f20a3+AhpcZQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",	/* alg 2 */
		"Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=",
		"+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		"PeterNeumannX+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",	/* name in id */
	};
	struct note_key	k;
	EVP_PKEY	*pk;
	char		err[256];
	size_t		i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_expect_eq(note_key_parse(bad[i], &k, err, sizeof(err)), -1,
		    "case %zu accepted", i);
		cr_expect_neq(err[0], '\0', "case %zu has no reason", i);
	}
	pk = t_peter();
	cr_expect_eq(note_key_from_pkey("bad name", pk, &k, err, sizeof(err)), -1);
	cr_expect_eq(note_key_from_pkey("ok", NULL, &k, err, sizeof(err)), -1);
	EVP_PKEY_free(pk);
}

Test(note, base64_is_strict)
{
	uint8_t	out[64];
	char	enc[64];

	cr_expect_eq(note_b64_decode("AAECAw==", 8, out, sizeof(out)), 4);
	cr_expect_eq(note_b64_decode("AAECAwQ=", 8, out, sizeof(out)), 5);
	cr_expect_eq(note_b64_decode("AAECAwQF", 8, out, sizeof(out)), 6);
	cr_expect_eq(note_b64_decode("AAECAw=A", 8, out, sizeof(out)), -1);
	cr_expect_eq(note_b64_decode("AAECA===", 8, out, sizeof(out)), -1);
	cr_expect_eq(note_b64_decode("AAECAx==", 8, out, sizeof(out)), -1, "non-canonical");
	cr_expect_eq(note_b64_decode("AAEC Aw=", 8, out, sizeof(out)), -1);
	cr_expect_eq(note_b64_decode("AAECAwQF", 8, out, 5), -1, "no room");
	cr_expect_eq(note_b64_decode("", 0, out, sizeof(out)), -1);
	cr_expect_eq(note_b64_encode(out, 6, enc, sizeof(enc)), 8);
	cr_expect_str_eq(enc, "AAECAwQF");
	cr_expect_eq(note_b64_encode(out, 6, enc, 8), -1, "no room for the NUL");
}
