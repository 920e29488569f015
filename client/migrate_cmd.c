/*
 * safeshare admin migrate (issue 19 item 5): the disclosure log of an
 * SQLite installation copied into an empty PostgreSQL log, offline, with
 * the daemon stopped (docs/deploy-ha.md, "Migrating from SQLite"). The
 * work is pglog_migrate(): this file parses the options, loads the keys,
 * names the target without its password and prints what was done.
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
#include "util.h"

#define MAX_KEYS	8

enum { M_FROM = 3000, M_TO, M_PUBKEY, M_JSON, M_HELP };

static const struct option longopts[] = {
	{ "from-sqlite", required_argument, NULL, M_FROM },
	{ "to-postgresql", required_argument, NULL, M_TO },
	{ "pubkey", required_argument, NULL, M_PUBKEY },
	{ "json", no_argument, NULL, M_JSON },
	{ "help", no_argument, NULL, M_HELP },
	{ NULL, 0, NULL, 0 }
};

static const char *const help =
    "usage: safeshare admin migrate --from-sqlite LOG.db --to-postgresql CONNINFO\n"
    "           [--pubkey PEM]... [--json]\n"
    "Copies the disclosure log LOG.db into an empty log in PostgreSQL, offline:\n"
    "stop the daemon first (docs/deploy-ha.md). Entries, hashes, checkpoint\n"
    "notes and the log id are copied as stored, so every checkpoint already\n"
    "handed out stays valid. LOG.db must verify with the keys (the log's\n"
    "public key; more than one after rotations, the first starting the chain,\n"
    "as in audit verify). The copy is one transaction: it is verified in\n"
    "PostgreSQL and compared with LOG.db (size, root hash, checkpoints, log id)\n"
    "before it commits; on any failure PostgreSQL is left as it was. A target\n"
    "that already holds entries is refused. CONNINFO is a libpq connection\n"
    "string or URI; keep its password in ~/.pgpass or PGPASSFILE (a command\n"
    "line is visible to other users); it is never printed. The record store\n"
    "is not migrated yet. Exit 0 migrated, 1 refused or failed, 2 usage.\n";

static void
print_done(const struct pglog_migration *m, const char *from, const char *label,
    int json)
{
	char id[33], root[65];

	hex_encode(m->log_id, 16, id);
	hex_encode(m->root, 32, root);
	if (json) {
		jsonw_print(stdout, json_pack("{s:b,s:s,s:s,s:s,s:o,s:o,s:o,s:s,s:b}",
		    "ok", 1, "log_id", id, "from", from, "to", label,
		    "entries", jsonw_u64(m->entries),
		    "checkpoints", jsonw_u64(m->checkpoints),
		    "tree_nodes", jsonw_u64(m->nodes), "root", root,
		    "signatures_checked", m->signatures_checked));
		return;
	}
	printf("migrated disclosure log %s from %s to PostgreSQL (%s):\n"
	    "  %" PRIu64 " entries, %" PRIu64 " checkpoints (%s), %" PRIu64
	    " tree nodes\n  verified in PostgreSQL and the same as %s: size %"
	    PRIu64 ", root %s\n", id, from, label, m->entries, m->checkpoints,
	    m->signatures_checked ? "signatures verified" : "unsigned log",
	    m->nodes, from, m->entries, root);
}

int
cmd_migrate(int argc, char *argv[])
{
	struct pglog_migration	 m;
	struct audit		*a = NULL;
	struct pglog		*pl = NULL;
	EVP_PKEY		*keys[MAX_KEYS];
	const char		*from = NULL, *to = NULL, *pubs[MAX_KEYS];
	char			 label[512], err[512];
	size_t			 npubs = 0, nkeys = 0;
	int			 ch, json = 0, rc = SS_EXIT_LOCAL;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case M_FROM: from = optarg; break;
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
	if (optind < argc || from == NULL || to == NULL) {
		fprintf(stderr, "safeshare: admin migrate needs --from-sqlite LOG.db and "
		    "--to-postgresql CONNINFO\n\n%s", help);
		return SS_EXIT_USAGE;
	}
	if (pglog_conninfo_label(to, label, sizeof(label), err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: --to-postgresql: %s\n", err);
		return SS_EXIT_USAGE;
	}
	for (; nkeys < npubs; nkeys++)
		if ((keys[nkeys] = audit_load_public_key(pubs[nkeys], err,
		    sizeof(err))) == NULL) {
			fprintf(stderr, "safeshare: %s\n", err);
			goto done;
		}
	if (audit_open_reader(&a, from, err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		goto done;
	}
	if (pglog_open(&pl, to, err, sizeof(err)) == -1) {
		pglog_conninfo_scrub(to, err);
		fprintf(stderr, "safeshare: PostgreSQL (%s): %s\n", label, err);
		goto done;
	}
	if (pglog_migrate(a, pl, keys, nkeys, &m, err, sizeof(err)) == -1) {
		pglog_conninfo_scrub(to, err);
		fprintf(stderr, "safeshare: migrate %s to PostgreSQL (%s): %s\n"
		    "safeshare: nothing was migrated: the copy is one transaction, "
		    "rolled back\n", from, label, err);
		goto done;
	}
	print_done(&m, from, label, json);
	rc = SS_EXIT_OK;
done:
	pglog_close(pl);
	audit_close(a);
	for (size_t i = 0; i < nkeys; i++)
		EVP_PKEY_free(keys[i]);
	return rc;
}
