/* Small helpers shared by the unit suites. */
#ifndef SAFESHARE_TESTUTIL_H
#define SAFESHARE_TESTUTIL_H

#include <stddef.h>

/* Removes an SQLite database and its -wal and -shm files. */
void	 t_db_remove(const char *path);

#endif
