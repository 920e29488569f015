/*
 * The store's subject-read cache (store_cache.c), inside the SQLite store:
 * store_read.c fills and reads it, store.c owns it. Not for the daemon or
 * the CLI, which see store.h only.
 */
#ifndef SAFESHARE_STORE_CACHE_H
#define SAFESHARE_STORE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "store.h"

/* Keys longer than this (subject, record type, agency, purpose) are not kept. */
#define SCENTRY_KEY_MAX	512

/*
 * What one store_subject() read: the record, its fields by name (the
 * protocol maps them to its own order on each use, so a reload cannot
 * mismatch them), the consent decision in scope, the person's active
 * flags. Immutable once filled; shared by the cache and each
 * store_subject lent it, and freed by the last scentry_unref().
 */
struct scentry {
	struct scentry		*next;		/* the cache bucket's chain */
	uint32_t		 hash;
	int			 refs;
	size_t			 size;		/* bytes, for the cache's bound */
	char			*key;
	size_t			 keylen;
	int			 known;
	int64_t			 last_verified;
	enum consent_state	 consent;
	int64_t			 consent_expires;
	char			*holder;
	char			**fields;	/* name, value, name, value... */
	size_t			 nfields;	/* pairs */
	char			**flags;
	size_t			 nflags;
};

struct scache	*scache_new(void);
void		 scache_free(struct scache *);
/*
 * At the start of each read transaction: the database's data version and
 * the connection's change count (SQLite), or the store's version that a
 * statement read (PostgreSQL, changes 0). Drops every entry when either
 * moved, and then returns 1.
 */
int		 scache_check(struct scache *, int64_t version, int64_t changes);
/* The entry for the key, with a reference for the caller, or NULL. */
struct scentry	*scache_get(struct scache *, const char *subject,
		    const char *record_type, const char *agency, const char *purpose);
/* Keeps e (a reference of the cache's own), unless it is too big. */
void		 scache_put(struct scache *, struct scentry *);
void		 scache_stats(const struct scache *, struct store_cache_stats *);

/* A new entry with one reference, the caller's. */
struct scentry	*scentry_new(const char *subject, const char *record_type,
		    const char *agency, const char *purpose);
void		 scentry_set_holder(struct scentry *, const char *);
void		 scentry_add_field(struct scentry *, const char *name,
		    const char *value);
/* Each flag once. */
void		 scentry_add_flag(struct scentry *, const char *);
/*
 * e's read as out's, for rt: the fields rt declares in its order, the
 * strings lent; out takes the caller's reference (store_subject_free()
 * drops it).
 */
void		 scentry_lend(struct scentry *, const struct record_type *,
		    struct store_subject *out);
void		 scentry_unref(struct scentry *);

#endif
