#include <criterion/criterion.h>

#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
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

void
t_load_demo(struct store *st, const struct protocol *proto)
{
	struct diag d = { 0 };

	cr_assert_eq(t_load_yaml(st, proto, SOURCE_DIR "/config/demo-data.yaml",
	    100, &d), 0);
	diag_free(&d);
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

void
t_audit_open(const char *name, char *path, char *key, char *pub, size_t len,
    int every, int interval, struct audit **a, EVP_PKEY **pk)
{
	char err[256];

	snprintf(path, len, "/tmp/safeshare-test-%s-%d.db", name, (int)getpid());
	snprintf(key, len, "/tmp/safeshare-test-%s-%d.key", name, (int)getpid());
	snprintf(pub, len, "/tmp/safeshare-test-%s-%d.pub", name, (int)getpid());
	t_db_remove(path);
	t_genkey(key, pub);
	cr_assert_eq(audit_open(a, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(audit_set_signer(*a, key, every, interval, err, sizeof(err)), 0,
	    "%s", err);
	*pk = audit_load_public_key(pub, err, sizeof(err));
	cr_assert_not_null(*pk, "%s", err);
}

void
t_audit_index_remove(const char *path)
{
	char p[512];

	snprintf(p, sizeof(p), "%s-subjects", path);
	t_db_remove(p);
}

void
t_audit_close(const char *path, const char *key, const char *pub, struct audit *a,
    EVP_PKEY *pk)
{
	audit_close(a);
	EVP_PKEY_free(pk);
	t_db_remove(path);
	unlink(key);
	unlink(pub);
	t_audit_index_remove(path);
}

void
t_sql(const char *path, const char *stmt)
{
	sqlite3 *db;

	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, stmt, NULL, NULL, NULL), SQLITE_OK, "%s: %s",
	    stmt, sqlite3_errmsg(db));
	sqlite3_close(db);
}

void
t_audit_index_sql(const char *path, const char *stmt)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	char		 ip[1024];

	snprintf(ip, sizeof(ip), "%s-subjects", path);
	cr_assert_eq(sqlite3_open(ip, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "ATTACH DATABASE ?1 AS lg", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	cr_assert_eq(sqlite3_exec(db, stmt, NULL, NULL, NULL), SQLITE_OK, "%s",
	    sqlite3_errmsg(db));
	sqlite3_close(db);
}

void
t_audit_append(struct audit *a, int n, int by_seq)
{
	char err[256];

	for (int i = 0; i < n; i++) {
		struct audit_entry	 e, *ep = &e;
		char			 subj[32];

		memset(&e, 0, sizeof(e));
		if (by_seq) {
			snprintf(subj, sizeof(subj), "S%04d", (int)audit_size(a) + 1);
			e.time = 1000 + (int64_t)audit_size(a);
			e.practitioner = "pc1";
		} else {
			snprintf(subj, sizeof(subj), "S%d", i);
			e.time = 1000 + i;
		}
		e.kind = "disclosure";
		e.agency = "police";
		e.subject = subj;
		e.decision = "allow";
		e.reason = "released";
		cr_assert_eq(audit_append(a, &ep, 1, err, sizeof(err)), 0, "%s", err);
		if (!by_seq)
			cr_assert_eq(e.seq, audit_size(a));
	}
}

struct audit_verify_result
t_audit_verify(const char *path, EVP_PKEY *k, const char *since)
{
	struct audit_verify_result	 r;
	struct audit_verifier		*v;
	struct audit			*rd;
	unsigned char			 id[16];
	char				 err[256];

	memset(&r, 0, sizeof(r));
	cr_assert_eq(audit_open_reader(&rd, path, err, sizeof(err)), 0, "%s", err);
	audit_log_id(rd, id);
	v = audit_verifier_new(k, id);
	if (since != NULL)
		cr_assert_eq(audit_verifier_since(v, since, err, sizeof(err)),
		    0, "%s", err);
	audit_verify_with(rd, v, &r);
	audit_close(rd);
	return r;
}

/* The entries t_audit_recompute_chain() reads, their strings copied. */
struct t_rows {
	struct audit_entry	 e[256];
	char			*str[256][AUDIT_NSTRINGS];
	int			 n;
};

static int
t_keep_row(const struct audit_entry *e, void *arg)
{
	struct t_rows	*r = arg;
	const char	**s[AUDIT_NSTRINGS];

	cr_assert(r->n < 256);
	r->e[r->n] = *e;
	audit_entry_strings(&r->e[r->n], s);
	for (int i = 0; i < AUDIT_NSTRINGS; i++) {
		r->str[r->n][i] = strdup(*s[i] ? *s[i] : "");
		*s[i] = r->str[r->n][i];
	}
	r->n++;
	return 0;
}

void
t_audit_recompute_chain(const char *path, uint64_t from)
{
	struct t_rows	*r = calloc(1, sizeof(*r));
	struct audit	*rd;
	sqlite3		*db;
	sqlite3_stmt	*st;
	unsigned char	 prev[32] = { 0 };
	char		 err[256];

	cr_assert_eq(audit_open_reader(&rd, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(audit_scan(rd, 1, 0, t_keep_row, r, err, sizeof(err)), 0);
	audit_close(rd);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "UPDATE entries SET prev_hash = ?1, hash = ?2 "
	    "WHERE seq = ?3", -1, &st, NULL), SQLITE_OK);
	for (int i = 0; i < r->n; i++) {
		if (r->e[i].seq >= from) {
			memcpy(r->e[i].prev_hash, prev, 32);
			audit_hash(&r->e[i], r->e[i].hash);
			sqlite3_bind_blob(st, 1, r->e[i].prev_hash, 32, SQLITE_STATIC);
			sqlite3_bind_blob(st, 2, r->e[i].hash, 32, SQLITE_STATIC);
			sqlite3_bind_int64(st, 3, (sqlite3_int64)r->e[i].seq);
			cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
			sqlite3_reset(st);
		}
		memcpy(prev, r->e[i].hash, 32);
		for (int k = 0; k < AUDIT_NSTRINGS; k++)
			free(r->str[i][k]);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(r);
}

void
t_audit_reopen(struct audit **a, const char *path, const char *signer,
    const char *previous)
{
	char err[256];

	audit_close(*a);
	*a = NULL;
	cr_assert_eq(audit_open(a, path, err, sizeof(err)), 0, "%s", err);
	if (signer != NULL)
		cr_assert_eq(audit_set_signer(*a, signer, 0, 0, err,
		    sizeof(err)), 0, "%s", err);
	if (previous != NULL)
		cr_assert_eq(audit_set_previous_signer(*a, previous, err,
		    sizeof(err)), 0,
		    "%s", err);
}
