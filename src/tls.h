/*
 * TLS helpers shared by the daemon and the client library: contexts that
 * allow only TLS 1.2+ with AEAD ciphers and require certificates both ways,
 * and the certificate identity used to find an agency (D10).
 */
#ifndef SAFESHARE_TLS_H
#define SAFESHARE_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

/*
 * Server context: our cert/key, client certificates required, verified
 * against ca (and crl when not NULL), with the clientAuth purpose.
 */
SSL_CTX	*tls_server_ctx(const char *cert, const char *key, const char *ca,
	    const char *crl, char *err, size_t errlen);
/* Sessions a server context keeps for resumption (about 1 KiB each). */
#define TLS_SESSIONS	1024
/*
 * Forgets every session the server context keeps: a client resuming one
 * of them then makes a full handshake (certificate verified again).
 */
void	tls_forget_sessions(SSL_CTX *);
/* Client context: our cert/key, the server verified against ca. */
SSL_CTX	*tls_client_ctx(const char *cert, const char *key, const char *ca,
	    char *err, size_t errlen);

/*
 * The SHA-256 of a certificate's SubjectPublicKeyInfo and its RFC 2253
 * subject; the subject is "" when it does not fit in len bytes.
 */
int	 tls_cert_identity(X509 *, unsigned char spki[32], char *subject, size_t len);
/* Same, read from a PEM file. */
int	 tls_cert_file_identity(const char *path, unsigned char spki[32],
	    char *subject, size_t len);

/* The last OpenSSL error as text (and the queue cleared). */
/*
 * Verifies the peer certificate of an established connection again, against
 * ctx's trust store and CRL (a reloaded context), for client authentication.
 * Returns X509_V_OK, an X509_V_ERR_* code, or -1 when there is no
 * certificate or no memory.
 */
int	 tls_verify_peer(SSL_CTX *ctx, const SSL *ssl);
const char *tls_error(char *buf, size_t len);

#endif
