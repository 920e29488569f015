/*
 * The store's subject-read cache: what store_subject() read for a subject,
 * record type, agency and purpose, kept so that the next request for the
 * same finds it without four index seeks (28 % of the event loop's CPU in
 * the 64-connection row before it; BENCHMARKS.md "The subject-read cache").
 *
 * It can never answer from data older than the read snapshot it serves:
 * read_begin() (store_read.c) asks SQLite for the database's data version
 * and this connection's change count once per read transaction, and
 * scache_check() drops every entry when either moved (a holder write
 * through any connection, a consent, a flag, a remembered log size). An
 * entry is filled only inside such a checked read transaction, so it holds
 * what that snapshot holds. Decisions are made again on every request
 * (the policy reads the entry; nothing decided is cached), so a consent's
 * expiry still counts from now (D3).
 *
 * Entries are shared, not copied: a store_subject lends the entry's
 * strings and holds a reference, so one dropped from the cache while a
 * request waits for its log entry lives until that request is freed.
 * Bounded: SCACHE_MAX_BYTES of entries at most, then the cache starts
 * empty again. One thread uses a store (store.h), so no locks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_cache.h"
#include "util.h"

#define SCACHE_BUCKETS		16384	/* a power of two */
#define SCACHE_MAX_BYTES	(32u * 1024 * 1024)

struct scache {
	struct scentry	*bucket[SCACHE_BUCKETS];
	size_t		 bytes;		/* of entries in the buckets */
	size_t		 count;
	int64_t		 version;	/* PRAGMA data_version they were read at */
	int64_t		 changes;	/* sqlite3_total_changes64() then */
	uint64_t	 hits, misses, flushes;
};

/* FNV-1a over the key, which holds its own NULs. */
static uint32_t
key_hash(const char *key, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 16777619u;
	}
	return h;
}

/* The key's length: "subject\0record_type\0agency\0purpose\0". */
static size_t
key_len(const char *const part[4])
{
	size_t n = 0;

	for (int i = 0; i < 4; i++)
		n += strlen(part[i]) + 1;
	return n;
}

static void
key_fill(char *buf, const char *const part[4])
{
	for (int i = 0; i < 4; i++) {
		size_t len = strlen(part[i]) + 1;

		memcpy(buf, part[i], len);
		buf += len;
	}
}

struct scache *
scache_new(void)
{
	return xcalloc(1, sizeof(struct scache));
}

static void
flush(struct scache *c)
{
	for (size_t i = 0; i < SCACHE_BUCKETS && c->count > 0; i++) {
		struct scentry *e, *next;

		for (e = c->bucket[i]; e != NULL; e = next) {
			next = e->next;
			e->next = NULL;
			scentry_unref(e);
			c->count--;
		}
		c->bucket[i] = NULL;
	}
	c->bytes = 0;
	c->count = 0;
}

void
scache_free(struct scache *c)
{
	if (c == NULL)
		return;
	flush(c);
	free(c);
}

int
scache_check(struct scache *c, int64_t version, int64_t changes)
{
	if (c->version == version && c->changes == changes)
		return 0;
	if (c->count > 0)
		c->flushes++;
	flush(c);
	c->version = version;
	c->changes = changes;
	return 1;
}

struct scentry *
scache_get(struct scache *c, const char *subject, const char *rt,
    const char *agency, const char *purpose)
{
	const char	*part[4] = { subject, rt, agency, purpose };
	struct scentry	*e;
	char		 key[SCENTRY_KEY_MAX];
	size_t		 len = key_len(part);
	uint32_t	 h;

	if (len > sizeof(key))
		return NULL;	/* never cached (scache_put()) */
	key_fill(key, part);
	h = key_hash(key, len);
	for (e = c->bucket[h & (SCACHE_BUCKETS - 1)]; e != NULL; e = e->next)
		if (e->hash == h && e->keylen == len &&
		    memcmp(e->key, key, len) == 0) {
			c->hits++;
			e->refs++;
			return e;
		}
	c->misses++;
	return NULL;
}

struct scentry *
scentry_new(const char *subject, const char *rt, const char *agency,
    const char *purpose)
{
	const char	*part[4] = { subject, rt, agency, purpose };
	struct scentry	*e = xcalloc(1, sizeof(*e));

	e->refs = 1;
	e->keylen = key_len(part);
	e->key = xcalloc(1, e->keylen);
	key_fill(e->key, part);
	e->hash = key_hash(e->key, e->keylen);
	e->size = sizeof(*e) + e->keylen;
	return e;
}

/* Appends s (a copy) to the vector v of n strings. */
static void
push(struct scentry *e, char ***v, size_t *n, const char *s)
{
	char	**nv;
	size_t	  len = strlen(s) + 1;

	if ((nv = realloc(*v, (*n + 1) * sizeof(**v))) == NULL)
		fatalx("%s: out of memory", __func__);
	*v = nv;
	nv[(*n)++] = xstrdup(s);
	e->size += sizeof(**v) + len;
}

void
scentry_set_holder(struct scentry *e, const char *holder)
{
	free(e->holder);
	e->holder = xstrdup(holder);
	e->size += strlen(holder) + 1;
}

void
scentry_add_field(struct scentry *e, const char *name, const char *value)
{
	size_t n = 2 * e->nfields;

	push(e, &e->fields, &n, name);
	push(e, &e->fields, &n, value);
	e->nfields++;
}

void
scentry_add_flag(struct scentry *e, const char *flag)
{
	for (size_t i = 0; i < e->nflags; i++)
		if (strcmp(e->flags[i], flag) == 0)
			return;		/* each flag once */
	push(e, &e->flags, &e->nflags, flag);
}

void
scache_put(struct scache *c, struct scentry *e)
{
	struct scentry **b;

	if (e->size > SCACHE_MAX_BYTES / 16 || e->keylen > SCENTRY_KEY_MAX)
		return;		/* a huge record is not worth its room */
	if (c->bytes + e->size > SCACHE_MAX_BYTES) {
		c->flushes++;
		flush(c);
	}
	b = &c->bucket[e->hash & (SCACHE_BUCKETS - 1)];
	e->next = *b;
	*b = e;
	e->refs++;
	c->bytes += e->size;
	c->count++;
}

void
scentry_lend(struct scentry *e, const struct record_type *rt,
    struct store_subject *out)
{
	memset(out, 0, sizeof(*out));
	out->ent = e;
	out->view.values = (const char *const *)out->values;
	out->view.known = e->known;
	out->view.last_verified = e->last_verified;
	out->view.consent = e->consent;
	out->view.consent_expires = e->consent_expires;
	out->holder = e->holder;
	for (size_t i = 0; i < e->nfields; i++) {
		size_t idx;

		/* Fields the protocol no longer declares are never released. */
		if (record_type_field(rt, e->fields[2 * i], &idx) != NULL &&
		    out->values[idx] == NULL)
			out->values[idx] = e->fields[2 * i + 1];
	}
	out->flags = e->flags;
	out->nflags = e->nflags;
	out->view.flags = (const char *const *)out->flags;
	out->view.nflags = out->nflags;
}

void
scentry_unref(struct scentry *e)
{
	if (e == NULL || --e->refs > 0)
		return;
	for (size_t i = 0; i < 2 * e->nfields; i++)
		free(e->fields[i]);
	free(e->fields);
	for (size_t i = 0; i < e->nflags; i++)
		free(e->flags[i]);
	free(e->flags);
	free(e->holder);
	free(e->key);
	free(e);
}

void
scache_stats(const struct scache *c, struct store_cache_stats *st)
{
	st->hits = c->hits;
	st->misses = c->misses;
	st->flushes = c->flushes;
	st->entries = c->count;
	st->bytes = c->bytes;
}
