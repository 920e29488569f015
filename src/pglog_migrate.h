/*
 * Moving an SQLite disclosure log into an empty PostgreSQL log (issue 19
 * item 5; `safeshare admin migrate`, docs/deploy-ha.md "Migrating"): the
 * entries, their hashes, the checkpoints' signed notes and the log id are
 * copied as stored, never recomputed or re-signed, so every checkpoint an
 * auditor or witness holds stays consistent with the migrated log.
 */
#ifndef SAFESHARE_PGLOG_MIGRATE_H
#define SAFESHARE_PGLOG_MIGRATE_H

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "pglog.h"

/* What a migration did (filled as far as it got). */
struct pglog_migration {
	unsigned char	 log_id[16];
	uint64_t	 entries;	/* copied, and verified in PostgreSQL */
	uint64_t	 checkpoints;
	uint64_t	 nodes;		/* stored tree nodes written */
	unsigned char	 root[32];	/* the tree's root at `entries` */
	int		 signatures_checked;
};

/*
 * Verifies src with keys[0..nkeys) (keys[0] starts the chain of keys, the
 * others are trusted, as in audit verify; none: only an unsigned log
 * passes), then copies it into dst in ONE transaction, streamed in pages
 * of entries (memory bounded by a page, not the log): entries, tree
 * nodes, checkpoints, head. Before it commits it verifies what it wrote
 * (pglog_verify(), in that transaction) and compares it with the source:
 * size, root hash, last checkpoint note, number of checkpoints, log id.
 * dst must be empty (no entries, checkpoints or tree nodes, whatever its
 * log id); it takes src's log id. Any failure rolls the transaction back,
 * so dst is as it was: empty. Returns 0 once committed, or -1 with err.
 * The test hook of pglog_set_test_hook() runs after each page, with the
 * entries copied so far.
 */
int	pglog_migrate(struct audit *src, struct pglog *dst, EVP_PKEY **keys,
	    size_t nkeys, struct pglog_migration *out, char *err, size_t errlen);

/*
 * More work in the same transaction (the record store's copy,
 * pgstore_migrate_txn()): run on the log's connection after the log has
 * been copied, verified and compared, before the commit, with the log's
 * id and size; its -1 (err filled) rolls back everything, the log too.
 */
typedef int	(*pglog_migrate_also)(PGconn *, const unsigned char log_id[16],
		    uint64_t size, void *arg, char *err, size_t errlen);
int	pglog_migrate_with(struct audit *src, struct pglog *dst, EVP_PKEY **keys,
	    size_t nkeys, pglog_migrate_also also, void *arg,
	    struct pglog_migration *out, char *err, size_t errlen);

#endif
