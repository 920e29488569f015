/*
 * The disclosure log export format (docs/audit-format.md): JSON lines, a
 * header, the checkpoints, then every entry in order. Written by
 * `safeshare audit export`, read back by `safeshare audit verify --export`.
 */
#ifndef SAFESHARE_AUDITFILE_H
#define SAFESHARE_AUDITFILE_H

#include <stdio.h>

#include "audit.h"

/*
 * Each writes one line; 0, or -1 (errno set) once the stream has failed a
 * write: the caller stops and says the export is incomplete.
 */
int	auditfile_header(FILE *, const unsigned char log_id[16], uint64_t entries,
	    uint64_t checkpoints, const char *public_pem);
int	auditfile_checkpoint(FILE *, const struct audit_checkpoint *);
int	auditfile_entry(FILE *, const struct audit_entry *);

/*
 * Verifies an export with the public key (NULL: chain only). Returns 0 when
 * everything verifies; a malformed file is reported with its line number.
 */
int	auditfile_verify(const char *path, EVP_PKEY *pub, struct audit_verify_result *);
/*
 * With keys[0] the first key, the others trusted too, and since (may be
 * NULL) a checkpoint note the auditor kept: the export must reach it. The
 * export's entry count must match its header's.
 */
int	auditfile_verify_keys(const char *path, EVP_PKEY **keys, size_t nkeys,
	    const char *since, struct audit_verify_result *);

#endif
