#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol.h"
#include "storage.h"
#include "store.h"
#include "testutil.h"
#include "util.h"

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

void
t_store_open(const char *name, char *path, size_t pathlen, struct store **st,
    struct protocol **proto)
{
	struct diag	 d = { 0 };
	char		 err[256];

	snprintf(path, pathlen, "/tmp/safeshare-test-%s-%d.db", name, (int)getpid());
	t_db_remove(path);
	cr_assert_eq(store_open(st, path, err, sizeof(err)), 0, "%s", err);
	*proto = protocol_load(SOURCE_DIR "/config/protocol.yaml", 0, &d);
	cr_assert_not_null(*proto);
	diag_free(&d);
}

void
t_store_close(const char *path, struct store *st, struct protocol *proto)
{
	store_close(st);
	protocol_unref(proto);
	t_db_remove(path);
}

int
t_load_yaml(struct store *st, const struct protocol *proto, const char *path,
    int64_t now, struct diag *d)
{
	struct storage	*sg;
	char		 err[256];
	int		 rc;

	cr_assert_eq(storage_wrap_sqlite(&sg, st, err, sizeof(err)), 0, "%s",
	    err);
	rc = storage_load_yaml(sg, proto, path, now, d);
	storage_close(sg);
	return rc;
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

void
t_genkey(const char *key, const char *pub)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "umask 077; openssl genpkey -algorithm ed25519 "
	    "-out %s && openssl pkey -in %s -pubout -out %s", key, key, pub);
	cr_assert_eq(system(cmd), 0);
}
