#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"

void
t_db_remove(const char *path)
{
	char p[1024];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}
