/* Small helpers shared by the unit suites. */
#ifndef SAFESHARE_TESTUTIL_H
#define SAFESHARE_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

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
