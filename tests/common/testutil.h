/* Small helpers shared by the unit suites. */
#ifndef SAFESHARE_TESTUTIL_H
#define SAFESHARE_TESTUTIL_H

#include <stddef.h>

/* The whole file, NUL-terminated (malloc'd), its length in *len; NULL if unreadable. */
char	*t_slurp(const char *path, size_t *len);
/* Removes an SQLite database and its -wal and -shm files. */
void	 t_db_remove(const char *path);

#endif
