/* Small helpers shared by the unit suites. */
#ifndef SAFESHARE_TESTUTIL_H
#define SAFESHARE_TESTUTIL_H

#include <stddef.h>

/* Removes an SQLite database and its -wal and -shm files. */
void	 t_db_remove(const char *path);

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
