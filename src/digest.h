/*
 * SHA-256 for the hot paths: every log entry's chain hash and its Merkle
 * leaf and nodes, on the log writer and in verify.
 */
#ifndef SAFESHARE_DIGEST_H
#define SAFESHARE_DIGEST_H

#include <stddef.h>
#include <stdint.h>

/*
 * out = SHA-256(buf[0..len)). The same bytes as OpenSSL's SHA256(), which
 * in OpenSSL 3 looks the algorithm up by name (a global lock and a hash
 * table) on every call: here it is fetched once per process and kept
 * until exit. Safe from any thread.
 */
void	digest_sha256(const void *buf, size_t len, uint8_t out[32]);

#endif
