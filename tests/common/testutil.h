/* Small helpers shared by the unit suites. */
#ifndef SAFESHARE_TESTUTIL_H
#define SAFESHARE_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "audit.h"

/* Removes an SQLite database and its -wal and -shm files. */
void	 t_db_remove(const char *path);

/*
 * An Ed25519 key pair made by the openssl command: the private key at key
 * (mode 0600), its public half at pub, both PEM; asserts on failure.
 */
void	 t_genkey(const char *key, const char *pub);

struct diag;
struct store;
struct protocol;
/*
 * A unit suite's store fixture: a new store at
 * /tmp/safeshare-test-NAME-PID.db (its path into path, pathlen bytes) and
 * the example protocol config/protocol.yaml; asserts on failure.
 * t_store_close() closes and frees both and removes the database.
 */
void	 t_store_open(const char *name, char *path, size_t pathlen,
	    struct store **, struct protocol **);
void	 t_store_close(const char *path, struct store *, struct protocol *);
/*
 * storage_load_yaml() into a store the test opened (through
 * storage_wrap_sqlite(); the store stays the test's).
 */
int	 t_load_yaml(struct store *, const struct protocol *, const char *path,
	    int64_t now, struct diag *);
/* config/demo-data.yaml into the store, asserting that it loads. */
void	 t_load_demo(struct store *, const struct protocol *);
/*
 * The suite `name` whose every test gets a new store st at path (a char
 * array) and the example protocol proto, through t_store_open() before
 * the test and t_store_close() after it. The suite declares all three.
 */
#define T_STORE_SUITE(name, path, st, proto)				\
	static void name##_init(void)					\
	{ t_store_open(#name, path, sizeof(path), &(st), &(proto)); }	\
	static void name##_fini(void) { t_store_close(path, st, proto); }	\
	TestSuite(name, .init = name##_init, .fini = name##_fini)

/*
 * A unit suite's log fixture: a new log at /tmp/safeshare-test-NAME-PID.db
 * (path, key and pub are arrays of len bytes) signed by a new Ed25519 key
 * at key (a checkpoint every `every` entries or `interval` seconds, 0 0:
 * every commit), its public half at pub loaded into *pk; asserts on
 * failure. t_audit_close() closes the log, frees the key and removes the
 * log, its subject index and the keys.
 */
void	 t_audit_open(const char *name, char *path, char *key, char *pub,
	    size_t len, int every, int interval, struct audit **, EVP_PKEY **);
void	 t_audit_close(const char *path, const char *key, const char *pub,
	    struct audit *, EVP_PKEY *);
/*
 * The suite `name` whose every test gets a new log a at path (char arrays
 * path, key and pub of one size), a checkpoint every `every` entries or
 * `interval` seconds, and its public key pk, through t_audit_open() and
 * t_audit_close(). The suite declares all five.
 */
#define T_AUDIT_SUITE(name, every, interval, path, key, pub, a, pk)	\
	static void name##_init(void)					\
	{ t_audit_open(#name, path, key, pub, sizeof(path), (every), (interval), \
	    &(a), &(pk)); }						\
	static void name##_fini(void) { t_audit_close(path, key, pub, a, pk); }	\
	TestSuite(name, .init = name##_init, .fini = name##_fini)
/* Removes the log at path's subject index (path-subjects and its -wal, -shm). */
void	 t_audit_index_remove(const char *path);
/* Runs SQL on the SQLite database at path; asserts it ran. */
void	 t_sql(const char *path, const char *stmt);
/* Runs SQL on the log at path's subject index, with the log attached as lg. */
void	 t_audit_index_sql(const char *path, const char *stmt);

/*
 * The log suites' helpers. t_audit_append() appends n disclosures one at
 * a time to a: with by_seq (the tamper suites) subject S0001 and time 1000
 * on, numbered by the log's size, practitioner pc1; without, subjects S0
 * to S(n-1) and times 1000 on each call, each asserted to land at the next
 * seq. t_audit_verify() verifies the log at path with a fresh reader, as an
 * auditor would, against key k and the checkpoint since (or NULL).
 * t_audit_recompute_chain() rewrites the hash chain of the file at path
 * from entry `from` on, as an attacker who edited rows would, so that every
 * link holds again. t_audit_reopen() closes *a and opens path again, signed
 * by signer (every commit) and with the previous signer's key, each if
 * not NULL.
 */
void	 t_audit_append(struct audit *, int n, int by_seq);
struct audit_verify_result t_audit_verify(const char *path, EVP_PKEY *k,
	    const char *since);
void	 t_audit_recompute_chain(const char *path, uint64_t from);
void	 t_audit_reopen(struct audit **, const char *path, const char *signer,
	    const char *previous);

/* One data-driven case: the name of a *.case file under tests/data. */
struct t_case_file {
	char name[256];
};

/*
 * Fills cases with the names of the *.case files in dir, at most max, in
 * name order, and returns how many. A directory that cannot be read gives
 * 0 rather than an assertion: a failing parameter generator hangs
 * Criterion, and each suite's cases_present test reports the shortfall.
 */
size_t	 t_case_files(const char *dir, struct t_case_file *cases, size_t max);

#endif
