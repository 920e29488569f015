/*
 * safeshare admin migrate (issue 19 item 5): the disclosure log and the
 * record store of an SQLite installation copied into an empty PostgreSQL
 * database, offline, with the daemon stopped (docs/deploy-ha.md,
 * "Migrating from SQLite"), both in one transaction when both are given.
 * The work is pglog_migrate_with() and pgstore_migrate_txn() (or
 * pgstore_migrate() for a store alone): this file parses the options,
 * loads the keys, names the target without its password and prints what
 * was done.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "cli.h"
#include "jsonw.h"
#include "pglog.h"
#include "pglog_migrate.h"
#include "pgstore.h"
#include "pgstore_migrate.h"
#include "util.h"

#define MAX_KEYS	8

enum { M_FROM = 3000, M_TO, M_PUBKEY, M_JSON, M_HELP, M_STORE };

static const struct option longopts[] = {
	{ "from-sqlite", required_argument, NULL, M_FROM },
	{ "store", required_argument, NULL, M_STORE },
	{ "to-postgresql", required_argument, NULL, M_TO },
	{ "pubkey", required_argument, NULL, M_PUBKEY },
	{ "json", no_argument, NULL, M_JSON },
	{ "help", no_argument, NULL, M_HELP },
	{ NULL, 0, NULL, 0 }
};

static const char *const help =
    "usage: safeshare admin migrate [--from-sqlite LOG.db] [--store STORE.db]\n"
    "           --to-postgresql CONNINFO [--pubkey PEM]... [--json]\n"
    "Copies the disclosure log LOG.db and/or the record store STORE.db into an\n"
    "empty PostgreSQL database, offline: stop the daemon first\n"
    "(docs/deploy-ha.md). Entries, hashes, checkpoint notes and the log id are\n"
    "copied as stored, so every checkpoint already handed out stays valid.\n"
    "LOG.db must verify with the keys (the log's public key; more than one\n"
    "after rotations, the first starting the chain, as in audit verify).\n"
    "The store's rows are copied as stored (records and fields, consent and\n"
    "flag history, holder batches, persons, NHS numbers and details, data file\n"
    "loads, its id and creation time, the log it remembers, which must be\n"
    "LOG.db, or without it the log already in PostgreSQL, if any). Both go in\n"
    "one transaction: the log is verified in PostgreSQL and compared with\n"
    "LOG.db (size, root hash, checkpoints, log id), each store table compared\n"
    "with STORE.db row by row, before it commits; on any failure PostgreSQL is\n"
    "left as it was. A target that already holds entries or store rows is\n"
    "refused. After the commit the store's tables are analyzed (fresh planner\n"
    "statistics). CONNINFO is a libpq connection string or URI; keep its\n"
    "password in ~/.pgpass or PGPASSFILE (a command line is visible to other\n"
    "users); it is never printed. Exit 0 migrated, 1 refused or failed, 2\n"
    "usage.\n";

/* The store's copy inside the log's transaction (pglog_migrate_also). */
struct also {
	sqlite3				*src;
	struct pgstore_migration	*out;
};

static int
store_too(PGconn *conn, const unsigned char log_id[16], uint64_t size, void *arg,
    char *err, size_t errlen)
{
	struct also *a = arg;

	return pgstore_migrate_txn(a->src, conn, log_id, size, a->out, err, errlen);
}

static const char *const table_words[PGSTORE_MIGRATE_NTABLES] = {
	"subjects", "records", "record fields", "consent decisions",
	"flags", "holder batches", "data file loads",
};

static void
print_store(const struct pgstore_migration *s, const char *from,
    const char *label)
{
	printf("migrated record store %s from %s to PostgreSQL (%s):\n  ",
	    s->store_id, from, label);
	for (int i = 0; i < PGSTORE_MIGRATE_NTABLES; i++)
		printf("%s%" PRIu64 " %s", i ? ", " : "", s->rows[i], table_words[i]);
	printf("\n  each table compared with %s row by row (count and SHA-256)",
	    from);
	if (s->remembers) {
		char id[33];

		hex_encode(s->log_id, 16, id);
		printf("; it remembers log %s with %" PRIu64 " entries", id,
		    s->log_size);
	}
	printf("\n");
}

static json_t *
store_json(const struct pgstore_migration *s, const char *from)
{
	json_t	*o = json_object(), *rows = json_object();
	char	 id[33];

	for (int i = 0; i < PGSTORE_MIGRATE_NTABLES; i++)
		json_object_set_new(rows, pgstore_migrate_tables[i],
		    jsonw_u64(s->rows[i]));
	json_object_set_new(o, "store_id", json_string(s->store_id));
	json_object_set_new(o, "from", json_string(from));
	json_object_set_new(o, "rows", rows);
	if (s->remembers) {
		hex_encode(s->log_id, 16, id);
		json_object_set_new(o, "remembers_log", json_string(id));
		json_object_set_new(o, "remembers_size", jsonw_u64(s->log_size));
	}
	return o;
}

static void
print_log(const struct pglog_migration *m, const char *from, const char *label)
{
	char id[33], root[65];

	hex_encode(m->log_id, 16, id);
	hex_encode(m->root, 32, root);
	printf("migrated disclosure log %s from %s to PostgreSQL (%s):\n"
	    "  %" PRIu64 " entries, %" PRIu64 " checkpoints (%s), %" PRIu64
	    " tree nodes\n  verified in PostgreSQL and the same as %s: size %"
	    PRIu64 ", root %s\n", id, from, label, m->entries, m->checkpoints,
	    m->signatures_checked ? "signatures verified" : "unsigned log",
	    m->nodes, from, m->entries, root);
}

static json_t *
log_json(const struct pglog_migration *m, const char *from)
{
	char id[33], root[65];

	hex_encode(m->log_id, 16, id);
	hex_encode(m->root, 32, root);
	return json_pack("{s:s,s:s,s:o,s:o,s:o,s:s,s:b}", "log_id", id,
	    "from", from, "entries", jsonw_u64(m->entries),
	    "checkpoints", jsonw_u64(m->checkpoints),
	    "tree_nodes", jsonw_u64(m->nodes), "root", root,
	    "signatures_checked", m->signatures_checked);
}

/*
 * The JSON answer: {"ok", "to", "log": {...}, "store": {...}}, and for a
 * log the members it had at the top level before the store was added
 * (log_id, entries, ...), so scripts that read them still work.
 */
static void
print_json(const struct pglog_migration *m, const char *from,
    const struct pgstore_migration *s, const char *store, const char *label)
{
	json_t *o = json_pack("{s:b,s:s}", "ok", 1, "to", label);

	if (from != NULL) {
		json_t *l = log_json(m, from);

		json_object_update(o, l);
		json_object_set_new(o, "log", l);
	}
	if (store != NULL)
		json_object_set_new(o, "store", store_json(s, store));
	jsonw_print(stdout, o);
}

int
cmd_migrate(int argc, char *argv[])
{
	struct pglog_migration		 m;
	struct pgstore_migration	 sm;
	struct also			 also;
	struct audit			*a = NULL;
	struct pglog			*pl = NULL;
	struct pgstore			*ps = NULL;
	sqlite3				*sdb = NULL;
	EVP_PKEY			*keys[MAX_KEYS];
	const char			*from = NULL, *to = NULL, *store = NULL;
	const char			*pubs[MAX_KEYS];
	char				 label[512], err[512], what[1200];
	size_t				 npubs = 0, nkeys = 0;
	int				 ch, json = 0, rc = SS_EXIT_LOCAL;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case M_FROM: from = optarg; break;
		case M_STORE: store = optarg; break;
		case M_TO: to = optarg; break;
		case M_PUBKEY:
			if (npubs == MAX_KEYS) {
				fprintf(stderr, "safeshare: at most %d --pubkey\n", MAX_KEYS);
				return SS_EXIT_USAGE;
			}
			pubs[npubs++] = optarg;
			break;
		case M_JSON: json = 1; break;
		case M_HELP: fputs(help, stdout); return SS_EXIT_OK;
		default: fputs(help, stderr); return SS_EXIT_USAGE;
		}
	}
	if (optind < argc || (from == NULL && store == NULL) || to == NULL) {
		fprintf(stderr, "safeshare: admin migrate needs --from-sqlite LOG.db "
		    "or --store STORE.db (or both), and --to-postgresql CONNINFO\n\n%s",
		    help);
		return SS_EXIT_USAGE;
	}
	if (from == NULL && npubs > 0) {
		fprintf(stderr, "safeshare: --pubkey is for the log (--from-sqlite)\n");
		return SS_EXIT_USAGE;
	}
	if (pglog_conninfo_label(to, label, sizeof(label), err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: --to-postgresql: %s\n", err);
		return SS_EXIT_USAGE;
	}
	snprintf(what, sizeof(what), "%s%s%s", from ? from : "", from && store ?
	    " and " : "", store ? store : "");
	for (; nkeys < npubs; nkeys++)
		if ((keys[nkeys] = audit_load_public_key(pubs[nkeys], err,
		    sizeof(err))) == NULL) {
			fprintf(stderr, "safeshare: %s\n", err);
			goto done;
		}
	if (store != NULL && pgstore_migrate_source(&sdb, store, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		goto done;
	}
	if (from != NULL && audit_open_reader(&a, from, err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		goto done;
	}
	/* The store's tables, if missing, before the transaction that fills them. */
	if ((store != NULL && pgstore_open(&ps, to, err, sizeof(err)) == -1) ||
	    (from != NULL && pglog_open(&pl, to, err, sizeof(err)) == -1)) {
		pglog_conninfo_scrub(to, err);
		fprintf(stderr, "safeshare: PostgreSQL (%s): %s\n", label, err);
		goto done;
	}
	pgstore_close(ps);
	ps = NULL;
	also.src = sdb;
	also.out = &sm;
	if ((from != NULL && pglog_migrate_with(a, pl, keys, nkeys, store != NULL ?
	    store_too : NULL, &also, &m, err, sizeof(err)) == -1) ||
	    (from == NULL && pgstore_migrate(sdb, to, &sm, err, sizeof(err)) == -1)) {
		pglog_conninfo_scrub(to, err);
		fprintf(stderr, "safeshare: migrate %s to PostgreSQL (%s): %s\n"
		    "safeshare: nothing was migrated: the copy is one transaction, "
		    "rolled back\n", what, label, err);
		goto done;
	}
	/*
	 * The copy has committed: fresh planner statistics for the store's
	 * tables (pgstore_analyze()), or the first disclosures plan with those
	 * of empty tables. A failure is a warning; the migration stands.
	 */
	if (store != NULL && (pgstore_open(&ps, to, err, sizeof(err)) == -1 ||
	    pgstore_analyze(ps, err, sizeof(err)) == -1)) {
		pglog_conninfo_scrub(to, err);
		fprintf(stderr, "safeshare: warning: migrated, but the store's "
		    "statistics were not refreshed (run ANALYZE on %s): %s\n",
		    label, err);
	}
	if (json)
		print_json(&m, from, &sm, store, label);
	else {
		if (from != NULL)
			print_log(&m, from, label);
		if (store != NULL)
			print_store(&sm, store, label);
	}
	rc = SS_EXIT_OK;
done:
	pgstore_close(ps);
	pglog_close(pl);
	audit_close(a);
	sqlite3_close(sdb);
	for (size_t i = 0; i < nkeys; i++)
		EVP_PKEY_free(keys[i]);
	return rc;
}
