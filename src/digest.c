/*
 * One SHA-256 fetched from the default provider and shared by every thread
 * (a fetched EVP_MD is read-only and reference counted); each call makes
 * its own context, so nothing else is shared.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>

#include "digest.h"

static CRYPTO_ONCE	 once = CRYPTO_ONCE_STATIC_INIT;
static EVP_MD		*sha256;	/* ours from the fetch until exit */

static void
release(void)
{
	EVP_MD_free(sha256);
	sha256 = NULL;
}

static void
fetch(void)
{
	/*
	 * Registered after OpenSSL's own cleanup (it registers at its
	 * initialisation, which the fetch has done), so it runs before it.
	 */
	if ((sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) != NULL)
		atexit(release);
}

void
digest_sha256(const void *buf, size_t len, uint8_t out[32])
{
	/* Without the fetched digest, the slow path gives the same bytes. */
	if (!CRYPTO_THREAD_run_once(&once, fetch) || sha256 == NULL ||
	    EVP_Digest(buf, len, out, NULL, sha256, NULL) != 1)
		SHA256(buf, len, out);
}
