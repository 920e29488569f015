/*
 * The store's behaviour as data (tests/data/storage/NAME.case, format in
 * its README.md): each line is one operation of the storage interface
 * (storage.h) and the answer expected, run against every backend given,
 * so the SQLite store and the PostgreSQL one are held to the same answers.
 */
#ifndef SAFESHARE_STORAGE_CASE_H
#define SAFESHARE_STORAGE_CASE_H

#include <stddef.h>

struct storage;
struct protocol;

struct storage_ops;

/*
 * One backend: its name for messages, an open handle (storage.h), and
 * the backend and where it was opened (the SQLite file's path or the
 * connection string), which storage_log_memory() reads by.
 */
struct sc_backend {
	const char			*name;
	struct storage			*s;
	const struct protocol		*proto;
	const struct storage_ops	*ops;
	const char			*where;
};

/*
 * Runs every line of the case file at path against each of the n
 * backends in turn (each from an empty store), expecting (cr_expect) the
 * answer the line gives; returns how many operations were run.
 */
size_t	sc_run_file(const char *path, struct sc_backend *, size_t n);

#endif

/*
 * One tests/data/matching/NAME.case (format in its README.md) through the
 * subject index of each backend: its holdings (or those of population,
 * the file beside it) are stored as subjects with their details and NHS
 * numbers linked, then the query goes through storage_find() and must
 * give the case's outcome, person and reason. Returns 1 when it ran, or
 * 0 with why in skip (skiplen bytes) when the holdings cannot be stored
 * as the case has them (the store refuses a stored NHS number or detail
 * the matcher must cope with, or views of one person that link no common
 * NHS number): the pure matcher's suite, tests/unit/test_match.c, runs
 * those.
 */
int	sc_run_matching(const char *path, const char *population,
	    struct sc_backend *, size_t n, char *skip, size_t skiplen);
