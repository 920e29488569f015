#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int
case_cmp(const void *a, const void *b)
{
	return strcmp(((const struct t_case_file *)a)->name,
	    ((const struct t_case_file *)b)->name);
}

size_t
t_case_files(const char *dir, struct t_case_file *cases, size_t max)
{
	DIR		*d = opendir(dir);
	struct dirent	*de;
	size_t		 n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < max) {
		size_t len = strlen(de->d_name);

		if (len > 5 && strcmp(de->d_name + len - 5, ".case") == 0)
			snprintf(cases[n++].name, sizeof(cases[0].name), "%s",
			    de->d_name);
	}
	closedir(d);
	qsort(cases, n, sizeof(cases[0]), case_cmp);
	return n;
}
