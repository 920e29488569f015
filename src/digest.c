/*
 * One SHA-256 fetched from the default provider and shared by every thread
 * (a fetched EVP_MD is read-only and reference counted), and one digest
 * context per thread, made on its first hash and reused for every later
 * one: each EVP_Digest() made and freed a context (two allocations, a
 * reference on the digest taken and dropped), which cost as much as
 * hashing a Merkle node. The context is the calling thread's alone; a
 * thread that ends frees its own (the key's destructor).
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>

#include "digest.h"

static CRYPTO_ONCE	 once = CRYPTO_ONCE_STATIC_INIT;
static EVP_MD		*sha256;	/* ours from the fetch until exit */
static pthread_key_t	 ctx_key;	/* frees a thread's context at its end */
static int		 have_key;
/* This thread's context, or NULL before its first hash. */
static _Thread_local EVP_MD_CTX *tctx;

static void
release(void)
{
	EVP_MD_free(sha256);
	sha256 = NULL;
}

static void
ctx_free(void *p)
{
	EVP_MD_CTX_free(p);
	tctx = NULL;
}

static void
fetch(void)
{
	have_key = pthread_key_create(&ctx_key, ctx_free) == 0;
	/*
	 * Registered after OpenSSL's own cleanup (it registers at its
	 * initialisation, which the fetch has done), so it runs before it.
	 */
	if ((sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) != NULL)
		atexit(release);
}

/*
 * The calling thread's context, made on first use and registered with the
 * key so that the thread's end frees it; NULL without memory or key.
 */
static EVP_MD_CTX *
thread_ctx(void)
{
	if (tctx != NULL || !have_key)
		return tctx;
	if ((tctx = EVP_MD_CTX_new()) != NULL &&
	    pthread_setspecific(ctx_key, tctx) != 0) {
		EVP_MD_CTX_free(tctx);
		tctx = NULL;
	}
	return tctx;
}

void
digest_sha256(const void *buf, size_t len, uint8_t out[32])
{
	EVP_MD_CTX *c;

	/* Without the fetched digest or a context, the slow path gives the same bytes. */
	if (!CRYPTO_THREAD_run_once(&once, fetch) || sha256 == NULL ||
	    (c = thread_ctx()) == NULL ||
	    EVP_DigestInit_ex2(c, sha256, NULL) != 1 ||
	    EVP_DigestUpdate(c, buf, len) != 1 ||
	    EVP_DigestFinal_ex(c, out, NULL) != 1)
		SHA256(buf, len, out);
}
