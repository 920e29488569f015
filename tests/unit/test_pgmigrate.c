/*
 * The disclosure log moved from SQLite to PostgreSQL (issue 19 item 5:
 * pglog_migrate(), `safeshare admin migrate`) and read back by the
 * auditor's tools (`safeshare audit verify|export --postgresql`), against
 * the throwaway cluster of the ctest fixture "pg". The SQLite log is made
 * through the real audit code from tests/data/pgmigrate/entries.tsv plus
 * generated entries, each commit with its signed checkpoint. Each test
 * works in a schema of its own. Without PostgreSQL the tests skip, saying
 * why -- except under CI=true, where that fails.
 */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sqlite3.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit.h"
#include "pglog.h"
#include "pglog_migrate.h"
#include "t_pg.h"
#include "testutil.h"
#include "util.h"

#define MAXLINES	64
#define GEN_BATCH	50

/* One test's SQLite log, its keys and its PostgreSQL schema. */
struct fx {
	char		 db[256], key[256], pub[256], tmp[256];
	char		 ci[1200];
	PGconn		*adm;
	EVP_PKEY	*pk;
	uint64_t	 size, ncp;
};

static int
count_cp(const struct audit_checkpoint *cp, void *arg)
{
	(void)cp;
	(*(uint64_t *)arg)++;
	return 0;
}

/* One line of entries.tsv into e, pointing into line (which it edits). */
static void
parse_line(char *line, struct audit_entry *e)
{
	const char	**s[AUDIT_NSTRINGS];
	char		*save = NULL, *tok;

	memset(e, 0, sizeof(*e));
	audit_entry_strings(e, s);
	for (tok = strtok_r(line, "\t", &save); tok != NULL;
	    tok = strtok_r(NULL, "\t", &save)) {
		char	*eq = strchr(tok, '=');
		int	 found = 0;

		cr_assert_not_null(eq, "entries.tsv: no = in \"%s\"", tok);
		*eq++ = '\0';
		if (strcmp(tok, "time") == 0)
			e->time = strtoll(eq, NULL, 10), found = 1;
		else if (strcmp(tok, "ref_seq") == 0)
			e->ref_seq = strtoull(eq, NULL, 10), found = 1;
		for (int i = 0; i < AUDIT_NSTRINGS && !found; i++)
			if (strcmp(tok, audit_string_names[i]) == 0) {
				*s[i] = eq;
				found = 1;
			}
		cr_assert(found, "entries.tsv: no member \"%s\"", tok);
	}
}

/*
 * The SQLite log: the data file's commits, then `extra` generated entries
 * in commits of GEN_BATCH (so that a copy spans several pages).
 */
static void
make_log(struct fx *f, int extra)
{
	struct audit		*a;
	struct audit_entry	 e[MAXLINES], *ep[MAXLINES];
	char			*lines[MAXLINES], buf[4096], err[256];
	static char		 rid[GEN_BATCH][32];
	size_t			 n = 0, nl = 0;
	FILE			*fp;

	cr_assert_eq(audit_open(&a, f->db, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(audit_set_signer(a, f->key, 0, 0, err, sizeof(err)), 0, "%s", err);
	fp = fopen(DATA_DIR "/pgmigrate/entries.tsv", "r");
	cr_assert_not_null(fp);
	while (fgets(buf, sizeof(buf), fp) != NULL) {
		buf[strcspn(buf, "\n")] = '\0';
		if (buf[0] == '#')
			continue;
		if (buf[0] == '\0') {
			if (n > 0)
				cr_assert_eq(audit_append(a, ep, n, err, sizeof(err)), 0,
				    "%s", err);
			n = 0;
			continue;
		}
		cr_assert_lt(nl, MAXLINES);
		lines[nl] = strdup(buf);
		parse_line(lines[nl++], &e[n]);
		ep[n] = &e[n];
		n++;
	}
	fclose(fp);
	cr_assert_eq(n, 0, "entries.tsv must end with a blank line");
	for (int i = 0; i < extra; i += GEN_BATCH) {
		for (n = 0; n < GEN_BATCH && i + (int)n < extra; n++) {
			memset(&e[n], 0, sizeof(e[n]));
			snprintf(rid[n], sizeof(rid[n]), "gen-%d", i + (int)n);
			e[n].time = 1767300000 + i;
			e[n].kind = "disclosure";
			e[n].agency = (i / GEN_BATCH) % 2 ? "police-north" : "council-east";
			e[n].purpose = "safeguarding";
			e[n].decision = "allow";
			e[n].subject = "subj-0004";
			e[n].request_id = rid[n];
			ep[n] = &e[n];
		}
		cr_assert_eq(audit_append(a, ep, n, err, sizeof(err)), 0, "%s", err);
	}
	f->size = audit_size(a);
	f->ncp = 0;
	cr_assert_eq(audit_checkpoints(a, count_cp, &f->ncp, err, sizeof(err)), 0, "%s",
	    err);
	audit_close(a);
	for (size_t i = 0; i < nl; i++)
		free(lines[i]);
}

static void
fx_open(struct fx *f, const char *name, int extra)
{
	char err[256], schema[64];

	memset(f, 0, sizeof(*f));
	snprintf(f->db, sizeof(f->db), "/tmp/safeshare-test-pgm-%s-%d.db", name,
	    (int)getpid());
	snprintf(f->key, sizeof(f->key), "/tmp/safeshare-test-pgm-%s-%d.key", name,
	    (int)getpid());
	snprintf(f->pub, sizeof(f->pub), "/tmp/safeshare-test-pgm-%s-%d.pub", name,
	    (int)getpid());
	snprintf(f->tmp, sizeof(f->tmp), "/tmp/safeshare-test-pgm-%s-%d", name,
	    (int)getpid());
	snprintf(schema, sizeof(schema), "m_%s", name);
	f->adm = t_pg_schema(schema, f->ci, sizeof(f->ci));
	t_db_remove(f->db);
	t_genkey(f->key, f->pub);
	cr_assert_not_null(f->pk = audit_load_public_key(f->pub, err, sizeof(err)));
	make_log(f, extra);
}

static void
fx_close(struct fx *f)
{
	char p[300];

	PQfinish(f->adm);
	EVP_PKEY_free(f->pk);
	t_db_remove(f->db);
	snprintf(p, sizeof(p), "%s-subjects", f->db);
	t_db_remove(p);
	unlink(f->key);
	unlink(f->pub);
	snprintf(p, sizeof(p), "%s.out", f->tmp);
	unlink(p);
}

/* pglog_migrate() from f's log into its schema: its return, err filled. */
static int
migrate(struct fx *f, struct pglog_migration *m, char *err, size_t errlen)
{
	struct audit	*a;
	struct pglog	*pl;
	int		 rc;

	cr_assert_eq(audit_open_reader(&a, f->db, err, errlen), 0, "%s", err);
	cr_assert_eq(pglog_open(&pl, f->ci, err, errlen), 0, "%s", err);
	rc = pglog_migrate(a, pl, &f->pk, 1, m, err, errlen);
	pglog_close(pl);
	audit_close(a);
	return rc;
}

/* The target is an empty log: nothing of a failed migration is left. */
static void
assert_empty(struct fx *f)
{
	cr_assert_eq(t_pg_int(f->adm, "SELECT count(*) FROM log_entries"), 0);
	cr_assert_eq(t_pg_int(f->adm, "SELECT count(*) FROM log_checkpoints"), 0);
	cr_assert_eq(t_pg_int(f->adm, "SELECT count(*) FROM log_tree"), 0);
	cr_assert_eq(t_pg_int(f->adm, "SELECT size FROM log_head"), 0);
}

/*
 * Runs the safeshare binary with argv (argv[0] ignored), its stdout and
 * stderr into out; returns its exit status.
 */
static int
cli(struct fx *f, char *out, size_t len, const char *argv[])
{
	char	 path[300];
	pid_t	 pid;
	int	 st, fd;
	ssize_t	 n;

	snprintf(path, sizeof(path), "%s.out", f->tmp);
	fflush(NULL);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd == -1 || dup2(fd, 1) == -1 || dup2(fd, 2) == -1)
			_exit(127);
		argv[0] = SAFESHARE_BIN;
		execv(SAFESHARE_BIN, (char *const *)argv);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	fd = open(path, O_RDONLY);
	cr_assert_neq(fd, -1);
	n = read(fd, out, len - 1);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	cr_assert(WIFEXITED(st), "safeshare did not exit: %s", out);
	return WEXITSTATUS(st);
}

static char *
password_of(const char *ci)
{
	PQconninfoOption	*o = PQconninfoParse(ci, NULL), *p;
	char			*pw = NULL;

	cr_assert_not_null(o);
	for (p = o; p->keyword != NULL; p++)
		if (strcmp(p->keyword, "password") == 0 && p->val != NULL)
			pw = strdup(p->val);
	PQconninfoFree(o);
	return pw;
}

/*
 * The whole round trip through the binary: migrate, verify online in
 * PostgreSQL (also against a checkpoint an auditor kept from the SQLite
 * log: --since), export, and the export verifies offline and is byte for
 * byte the SQLite log's own export: same seq, times, fields, hashes,
 * checkpoint notes and log id. The tree has the SQLite log's rows.
 */
Test(pgmigrate, cli_migrate_verify_export, .timeout = 120)
{
	struct fx	 f;
	char		 out[8192], since[300], pgx[300], sqx[300], *note, *pw;
	char		 err[256];
	struct audit	*a;
	sqlite3		*db;
	sqlite3_stmt	*st;
	size_t		 l1, l2;
	char		*b1, *b2;
	FILE		*fp;
	long long	 nodes;

	fx_open(&f, "cli", 2600);
	pw = password_of(f.ci);
	/* A checkpoint an auditor took from the SQLite log, halfway. */
	cr_assert_eq(audit_open_reader(&a, f.db, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(audit_checkpoint_note(a, 1307, &note, err, sizeof(err)), 0,
	    "no checkpoint at 1307: %s", err);
	audit_close(a);
	snprintf(since, sizeof(since), "%s.since", f.tmp);
	cr_assert_not_null(fp = fopen(since, "w"));
	fputs(note, fp);
	fclose(fp);
	free(note);

	{
		const char *av[] = { "", "admin", "migrate", "--from-sqlite", f.db,
		    "--to-postgresql", f.ci, "--pubkey", f.pub, NULL };

		cr_assert_eq(cli(&f, out, sizeof(out), av), 0, "%s", out);
	}
	cr_assert(strstr(out, "migrated disclosure log") != NULL, "%s", out);
	cr_assert(strstr(out, "2607 entries") != NULL, "%s", out);
	cr_assert(pw == NULL || strstr(out, pw) == NULL, "password printed: %s", out);
	cr_assert(strstr(out, "dbname=safeshare_test") != NULL, "%s", out);
	{
		const char *av[] = { "", "audit", "verify", "--postgresql", f.ci,
		    "--pubkey", f.pub, "--since", since, NULL };

		cr_assert_eq(cli(&f, out, sizeof(out), av), 0, "%s", out);
		cr_assert(strstr(out, "ok, 2607 entries") != NULL, "%s", out);
		cr_assert(pw == NULL || strstr(out, pw) == NULL, "%s", out);
	}
	snprintf(pgx, sizeof(pgx), "%s.pg.jsonl", f.tmp);
	snprintf(sqx, sizeof(sqx), "%s.sq.jsonl", f.tmp);
	{
		const char *av[] = { "", "audit", "export", "--postgresql", f.ci,
		    "--out", pgx, NULL };
		const char *av2[] = { "", "audit", "export", "--log", f.db, "--out", sqx,
		    NULL };
		const char *av3[] = { "", "audit", "verify", "--export", pgx, "--pubkey",
		    f.pub, "--since", since, NULL };

		cr_assert_eq(cli(&f, out, sizeof(out), av), 0, "%s", out);
		cr_assert(strstr(out, "exported 2607 entries") != NULL, "%s", out);
		cr_assert_eq(cli(&f, out, sizeof(out), av2), 0, "%s", out);
		cr_assert_eq(cli(&f, out, sizeof(out), av3), 0, "%s", out);
		cr_assert(strstr(out, "ok, 2607 entries") != NULL, "%s", out);
	}
	cr_assert_not_null(b1 = file_read(pgx, 64 << 20, &l1, NULL, err, sizeof(err)),
	    "%s", err);
	cr_assert_not_null(b2 = file_read(sqx, 64 << 20, &l2, NULL, err, sizeof(err)),
	    "%s", err);
	cr_assert_eq(l1, l2, "the exports differ in length: %zu and %zu", l1, l2);
	cr_assert(memcmp(b1, b2, l1) == 0, "the PostgreSQL log's export is not the "
	    "SQLite log's");
	free(b1);
	free(b2);
	/* The stored tree: the same nodes as the SQLite log's table. */
	cr_assert_eq(sqlite3_open_v2(f.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM tree", -1, &st,
	    NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	nodes = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	cr_assert_gt(nodes, 0);
	cr_assert_eq(t_pg_int(f.adm, "SELECT count(*) FROM log_tree"), nodes);
	cr_assert_eq(t_pg_int(f.adm, "SELECT count(*) FROM log_checkpoints"),
	    (long long)f.ncp);

	/* audit show --postgresql prints what show --log prints, text and JSON. */
	for (int json = 0; json < 2; json++) {
		char		 out2[8192];
		const char	*av[] = { "", "audit", "show", "--postgresql", f.ci,
		    "--last", "7", json ? "--json" : NULL, NULL };
		const char	*av2[] = { "", "audit", "show", "--log", f.db,
		    "--last", "7", json ? "--json" : NULL, NULL };

		cr_assert_eq(cli(&f, out, sizeof(out), av), 0, "%s", out);
		cr_assert_eq(cli(&f, out2, sizeof(out2), av2), 0, "%s", out2);
		cr_assert_str_eq(out, out2);
		cr_assert(strstr(out, "2607") != NULL, "%s", out);
		if (!json) {
			size_t lines = 0;

			for (const char *c = out; *c != '\0'; c++)
				lines += *c == '\n';
			cr_assert_eq(lines, 7, "%s", out);
		}
	}

	/* An entry edited in PostgreSQL afterwards: online verify says where. */
	t_pg_run(f.adm, "UPDATE log_entries SET purpose = 'edited' WHERE seq = 1500");
	{
		const char *av[] = { "", "audit", "verify", "--postgresql", f.ci,
		    "--pubkey", f.pub, NULL };

		cr_assert_eq(cli(&f, out, sizeof(out), av), 1, "%s", out);
		cr_assert(strstr(out, "FAILED at entry 1500") != NULL, "%s", out);
	}
	unlink(since);
	unlink(pgx);
	unlink(sqx);
	free(pw);
	fx_close(&f);
}

/*
 * The migrated log is a PostgreSQL log like any other: daemons append to
 * it (pglog_append() with the same key), and it verifies, entries and
 * checkpoints continuing the SQLite log's numbering, and still extends
 * the last checkpoint the SQLite log gave out.
 */
Test(pgmigrate, migrated_log_takes_appends)
{
	struct fx			 f;
	struct pglog_migration		 m;
	struct audit_verify_result	 r;
	struct audit_verifier		*v;
	struct pglog			*pl;
	struct audit			*a;
	struct audit_entry		 e[3], *ep[3];
	EVP_PKEY			*sk;
	FILE				*fp;
	char				 err[256], *note;
	unsigned char			 id[16];
	uint64_t			 size;

	fx_open(&f, "append", 120);
	cr_assert_eq(migrate(&f, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(m.entries, f.size);
	cr_assert_eq(m.checkpoints, f.ncp);
	cr_assert(m.signatures_checked);
	cr_assert_eq(audit_open_reader(&a, f.db, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(audit_checkpoint_note(a, 0, &note, err, sizeof(err)), 0, "%s", err);
	audit_close(a);

	cr_assert_not_null(fp = fopen(f.key, "r"));
	cr_assert_not_null(sk = PEM_read_PrivateKey(fp, NULL, NULL, NULL));
	fclose(fp);
	cr_assert_eq(pglog_open(&pl, f.ci, err, sizeof(err)), 0, "%s", err);
	pglog_set_signer(pl, sk);
	for (int b = 0; b < 3; b++) {
		memset(e, 0, sizeof(e));
		for (int i = 0; i < 3; i++) {
			e[i].time = 1767400000;
			e[i].kind = "disclosure";
			e[i].agency = "police-north";
			e[i].request_id = "after-migration";
			ep[i] = &e[i];
		}
		cr_assert_eq(pglog_append(pl, ep, 3, NULL, err, sizeof(err)), 0, "%s", err);
	}
	cr_assert_eq(e[2].seq, f.size + 9);
	cr_assert_eq(pglog_head(pl, &size, id, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(memcmp(id, m.log_id, 16), 0, "the log id changed");
	cr_assert_eq(t_pg_int(f.adm, "SELECT max(n) FROM log_checkpoints"),
	    (long long)f.ncp + 3);
	v = audit_verifier_new(f.pk, id);
	cr_assert_eq(audit_verifier_since(v, note, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pglog_verify_with(pl, v, &r), 0, "%s", r.why);
	cr_assert_eq(r.entries, f.size + 9);
	cr_assert_eq(r.checkpoints, f.ncp + 3);
	free(note);
	pglog_close(pl);
	EVP_PKEY_free(sk);
	fx_close(&f);
}

/*
 * A target that already holds a log is refused, whether it is this log
 * (already migrated) or another one, and is left as it was.
 */
Test(pgmigrate, refuses_non_empty_target)
{
	struct fx		 f;
	struct pglog_migration	 m;
	struct pglog		*pl;
	struct audit_entry	 e, *ep = &e;
	char			 err[512];

	fx_open(&f, "nonempty", 0);
	cr_assert_eq(migrate(&f, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(migrate(&f, &m, err, sizeof(err)), -1);
	cr_assert(strstr(err, "not empty") != NULL, "%s", err);
	cr_assert(strstr(err, "already migrated") != NULL, "%s", err);
	cr_assert_eq(t_pg_int(f.adm, "SELECT count(*) FROM log_entries"), (long long)f.size);

	/* Another log: a daemon's first append in an empty database. */
	t_pg_run(f.adm, "DROP TABLE log_head, log_entries, log_tree, log_checkpoints");
	cr_assert_eq(pglog_open(&pl, f.ci, err, sizeof(err)), 0, "%s", err);
	memset(&e, 0, sizeof(e));
	e.kind = "disclosure";
	cr_assert_eq(pglog_append(pl, &ep, 1, NULL, err, sizeof(err)), 0, "%s", err);
	pglog_close(pl);
	cr_assert_eq(migrate(&f, &m, err, sizeof(err)), -1);
	cr_assert(strstr(err, "another log") != NULL, "%s", err);
	cr_assert_eq(t_pg_int(f.adm, "SELECT count(*) FROM log_entries"), 1);
	cr_assert_eq(t_pg_int(f.adm, "SELECT size FROM log_head"), 1);
	fx_close(&f);
}

/*
 * A source that does not verify is not copied: an entry edited in the
 * SQLite file, or checkpoints and no key to check them with.
 */
Test(pgmigrate, refuses_source_that_does_not_verify)
{
	struct fx		 f;
	struct pglog_migration	 m;
	struct audit		*a;
	struct pglog		*pl;
	sqlite3			*db;
	char			 err[512];

	fx_open(&f, "tampered", 40);
	/* No key: a signed log does not pass on its chain alone. */
	cr_assert_eq(audit_open_reader(&a, f.db, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pglog_open(&pl, f.ci, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pglog_migrate(a, pl, NULL, 0, &m, err, sizeof(err)), -1);
	cr_assert(strstr(err, "--pubkey") != NULL, "%s", err);
	pglog_close(pl);
	audit_close(a);
	assert_empty(&f);

	cr_assert_eq(sqlite3_open(f.db, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "UPDATE entries SET purpose = 'tampered-xyz' "
	    "WHERE seq = 5", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(migrate(&f, &m, err, sizeof(err)), -1);
	cr_assert(strstr(err, "does not verify") != NULL, "%s", err);
	cr_assert(strstr(err, "entry 5") != NULL, "%s", err);
	cr_assert(strstr(err, "tampered-xyz") == NULL, "an entry's contents in: %s",
	    err);
	assert_empty(&f);
	fx_close(&f);
}

/*
 * Connection strings: one that does not parse is a usage error that does
 * not quote it; a server that refuses the password or is not there is a
 * clear failure; the password is never printed.
 */
Test(pgmigrate, bad_conninfo_no_password_echoed)
{
	struct fx	 f;
	char		 out[8192], ci[1400], *pw, *p;
	const char	*av[] = { "", "admin", "migrate", "--from-sqlite", NULL,
			    "--to-postgresql", ci, "--pubkey", NULL, NULL };

	fx_open(&f, "conninfo", 0);
	av[4] = f.db;
	av[8] = f.pub;
	snprintf(ci, sizeof(ci), "host=127.0.0.1 password=s3cr3t-Pw9 with-space");
	cr_assert_eq(cli(&f, out, sizeof(out), av), 2, "%s", out);
	cr_assert(strstr(out, "does not parse") != NULL, "%s", out);
	cr_assert(strstr(out, "s3cr3t") == NULL && strstr(out, "with-space") == NULL,
	    "%s", out);

	/* The real server, a wrong password. */
	pw = password_of(f.ci);
	cr_assert_not_null(pw);
	snprintf(ci, sizeof(ci), "%s", f.ci);
	cr_assert_not_null(p = strstr(ci, pw));
	memcpy(p, "s3cr3t-Pw9", strlen(pw) < 10 ? strlen(pw) : 10);
	cr_assert_eq(cli(&f, out, sizeof(out), av), 1, "%s", out);
	cr_assert(strstr(out, "password authentication failed") != NULL, "%s", out);
	cr_assert(strstr(out, "s3cr3t") == NULL, "%s", out);

	/* Nothing listening there; the right password (to the wrong port). */
	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=1 dbname=x user=y password=%s "
	    "connect_timeout=5", pw);
	cr_assert_eq(cli(&f, out, sizeof(out), av), 1, "%s", out);
	cr_assert(strstr(out, "host=127.0.0.1 port=1 dbname=x user=y") != NULL, "%s",
	    out);
	cr_assert(strstr(out, pw) == NULL, "%s", out);
	/* The same for the auditor's verify. */
	{
		const char *av2[] = { "", "audit", "verify", "--postgresql", ci,
		    "--pubkey", f.pub, NULL };

		cr_assert_eq(cli(&f, out, sizeof(out), av2), 1, "%s", out);
		cr_assert(strstr(out, pw) == NULL, "%s", out);
	}
	free(pw);
	fx_close(&f);
}

struct killer {
	PGconn	*conn;
	int	 pid;
	int	 fired;
};

/* The test hook: after the first page, terminate the migration's backend. */
static void
kill_backend(void *arg, size_t copied)
{
	struct killer	*k = arg;

	if (copied < 1000 || k->fired)
		return;
	k->fired = 1;
	t_pg_terminate(k->conn, k->pid);
}

/*
 * The migration's server process killed after its first page of 1,000
 * entries: the migration fails and the target is an empty log (the copy
 * is one transaction); a second migration then succeeds and verifies.
 */
Test(pgmigrate, killed_midway_leaves_target_empty, .timeout = 120)
{
	struct fx			 f;
	struct pglog_migration		 m;
	struct audit_verify_result	 r;
	struct audit			*a;
	struct pglog			*pl;
	struct killer			 k;
	char				 err[512];

	fx_open(&f, "kill", 2200);
	cr_assert_eq(audit_open_reader(&a, f.db, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pglog_open(&pl, f.ci, err, sizeof(err)), 0, "%s", err);
	memset(&k, 0, sizeof(k));
	k.conn = f.adm;
	k.pid = pglog_backend_pid(pl);
	pglog_set_test_hook(pl, kill_backend, &k);
	cr_assert_eq(pglog_migrate(a, pl, &f.pk, 1, &m, err, sizeof(err)), -1);
	cr_assert(k.fired);
	cr_assert_neq(err[0], '\0');
	pglog_close(pl);
	audit_close(a);
	assert_empty(&f);

	cr_assert_eq(migrate(&f, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pglog_open_reader(&pl, f.ci, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pglog_verify(pl, f.pk, &r), 0, "%s", r.why);
	cr_assert_eq(r.entries, f.size);
	pglog_close(pl);
	fx_close(&f);
}

/* An auditor's verify does not create a log where there is none. */
Test(pgmigrate, reader_does_not_create)
{
	char		 ci[1200], err[256];
	PGconn		*adm = t_pg_schema("m_reader", ci, sizeof(ci));
	struct pglog	*pl;

	cr_assert_eq(pglog_open_reader(&pl, ci, err, sizeof(err)), -1);
	cr_assert(strstr(err, "no disclosure log") != NULL, "%s", err);
	cr_assert_eq(t_pg_int(adm, "SELECT (to_regclass('log_head') IS NULL)::int"), 1);
	PQfinish(adm);
}
