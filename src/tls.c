#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <string.h>

#include "tls.h"
#include "util.h"

/* TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 suites are all AEAD. */
static const char tls12_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

const char *
tls_error(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, len, "unknown TLS error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

static SSL_CTX *
common_ctx(const SSL_METHOD *m, const char *cert, const char *key, const char *ca,
    char *err, size_t errlen)
{
	SSL_CTX	*ctx;
	char	 buf[256];

	if ((ctx = SSL_CTX_new(m)) == NULL) {
		snprintf(err, errlen, "SSL_CTX_new: %s", tls_error(buf, sizeof(buf)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1) {
		snprintf(err, errlen, "cipher list: %s", tls_error(buf, sizeof(buf)));
		goto fail;
	}
	if (file_is_secret(key, err, errlen) == -1)
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, errlen, "%s: %s", cert, tls_error(buf, sizeof(buf)));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errlen, "%s: %s", key, tls_error(buf, sizeof(buf)));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "%s does not match %s", key, cert);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		snprintf(err, errlen, "%s: %s", ca, tls_error(buf, sizeof(buf)));
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Adds a CRL file to the context's store and turns revocation checks on. */
static int
load_crl(SSL_CTX *ctx, const char *crl, char *err, size_t errlen)
{
	X509_STORE	*st = SSL_CTX_get_cert_store(ctx);
	X509_LOOKUP	*lu;
	char		 buf[256];

	if ((lu = X509_STORE_add_lookup(st, X509_LOOKUP_file())) == NULL ||
	    X509_load_crl_file(lu, crl, X509_FILETYPE_PEM) <= 0) {
		snprintf(err, errlen, "%s: %s", crl, tls_error(buf, sizeof(buf)));
		return -1;
	}
	X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
	return 0;
}

void
tls_forget_sessions(SSL_CTX *ctx)
{
	SSL_CTX_flush_sessions(ctx, 0);		/* 0: every session, not only expired ones */
}

SSL_CTX *
tls_server_ctx(const char *cert, const char *key, const char *ca, const char *crl,
    char *err, size_t errlen)
{
	SSL_CTX			*ctx;
	STACK_OF(X509_NAME)	*names;

	if ((ctx = common_ctx(TLS_server_method(), cert, key, ca, err, errlen)) == NULL)
		return NULL;
	if (crl != NULL && load_crl(ctx, crl, err, errlen) == -1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* A client certificate must be meant for client authentication. */
	SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	/* D10: no certificate, no conversation. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT |
	    SSL_VERIFY_CLIENT_ONCE, NULL);
	SSL_CTX_set_verify_depth(ctx, 4);
	if ((names = SSL_load_client_CA_file(ca)) != NULL)
		SSL_CTX_set_client_CA_list(ctx, names);
	/*
	 * Sessions are resumed from a cache in this process (stateful TLS 1.3
	 * tickets, TLS 1.2 session ids), not from stateless tickets: building
	 * a stateless ticket serialises the session and parses it back, client
	 * certificate included, which cost an eighth of a new connection's CPU
	 * (BENCHMARKS.md). No ticket key exists to be stolen, either. At most
	 * TLS_SESSIONS sessions are kept (the oldest go first), and all are
	 * forgotten every tls.ticket_rotation seconds and on a TLS reload.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, TLS_SESSIONS);
	SSL_CTX_set_num_tickets(ctx, 1);
	/*
	 * Idle keep-alive connections give their read/write buffers back. A
	 * write retried after a full socket may come from another address
	 * with the same bytes (daemon/req.c send_one_record()).
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"safeshared", 10);
	return ctx;
}

SSL_CTX *
tls_client_ctx(const char *cert, const char *key, const char *ca, char *err,
    size_t errlen)
{
	SSL_CTX *ctx;

	if ((ctx = common_ctx(TLS_client_method(), cert, key, ca, err, errlen)) == NULL)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	return ctx;
}

int
tls_cert_identity(X509 *x, unsigned char spki[32], char *subject, size_t len)
{
	unsigned char	*der = NULL;
	unsigned int	 mdlen = 32;
	int		 n;
	BIO		*bio;

	if ((n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der)) <= 0)
		return -1;
	EVP_Digest(der, (size_t)n, spki, &mdlen, EVP_sha256(), NULL);
	OPENSSL_free(der);
	if (subject == NULL)
		return 0;
	subject[0] = '\0';
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return -1;
	if (X509_NAME_print_ex(bio, X509_get_subject_name(x), 0,
	    XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0 &&
	    BIO_pending(bio) < (int)len) {
		int r = BIO_read(bio, subject, (int)len - 1);

		subject[r > 0 ? r : 0] = '\0';
	}
	/* A subject that does not fit stays "": a cut one could match another. */
	BIO_free(bio);
	return 0;
}

int
tls_cert_file_identity(const char *path, unsigned char spki[32], char *subject,
    size_t len)
{
	FILE	*fp;
	X509	*x;
	int	 rc;

	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (x == NULL)
		return -1;
	rc = tls_cert_identity(x, spki, subject, len);
	X509_free(x);
	return rc;
}

int
tls_verify_peer(SSL_CTX *ctx, const SSL *ssl)
{
	X509		*leaf = SSL_get0_peer_certificate(ssl);
	X509_STORE_CTX	*xs;
	int		 rc = -1;

	if (leaf == NULL || (xs = X509_STORE_CTX_new()) == NULL)
		return -1;
	/* On the server side the peer's chain does not include its leaf. */
	if (X509_STORE_CTX_init(xs, SSL_CTX_get_cert_store(ctx), leaf,
	    SSL_get_peer_cert_chain(ssl)) == 1 &&
	    X509_STORE_CTX_set_purpose(xs, X509_PURPOSE_SSL_CLIENT) == 1) {
		X509_VERIFY_PARAM_set_depth(X509_STORE_CTX_get0_param(xs), 4);
		rc = X509_verify_cert(xs) == 1 ? X509_V_OK :
		    X509_STORE_CTX_get_error(xs);
	}
	X509_STORE_CTX_free(xs);
	ERR_clear_error();
	return rc;
}
