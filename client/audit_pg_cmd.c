/*
 * safeshare audit verify|export|show --postgresql CONNINFO (issue 19): the
 * disclosure log on PostgreSQL, read in one snapshot with a connection of
 * the auditor's own, no daemon involved. The verdict is printed as for
 * --log and the export is written by the same callbacks as --log's
 * (audit_verify_cmd.c), so `audit verify --export FILE` checks it. The
 * connection string is named by host, port, database and user only: it
 * may hold a password (pglog_conninfo_label()).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "audit_cmd.h"
#include "auditfile.h"
#include "cli.h"
#include "pglog.h"
#include "util.h"

struct pgexp {
	struct a_exp	 x;
	uint64_t	 ncp;
};

static int
header(const unsigned char log_id[16], uint64_t size, uint64_t checkpoints, void *arg)
{
	struct pgexp *e = arg;

	e->x.total = size;
	e->ncp = checkpoints;
	if (auditfile_header(e->x.fp, log_id, size, checkpoints, NULL) == -1)
		e->x.werr = errno;
	return e->x.werr != 0;	/* non-zero stops the walk */
}

static int
verify(struct pglog *pl, struct aopts *o, const char *label, EVP_PKEY **keys,
    size_t nkeys, const char *since)
{
	struct audit_verify_result	 r;
	struct audit_verifier		*v;
	unsigned char			 id[16];
	uint64_t			 size;
	char				 err[512], what[600];

	if (pglog_head(pl, &size, id, err, sizeof(err)) == -1) {
		pglog_conninfo_scrub(o->pg, err);
		fprintf(stderr, "safeshare: %s\n", err);
		return SS_EXIT_LOCAL;
	}
	v = audit_verifier_new(nkeys > 0 ? keys[0] : NULL, id);
	for (size_t i = 1; i < nkeys; i++)
		audit_verifier_trust(v, keys[i]);
	if (since != NULL && audit_verifier_since(v, since, err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		audit_verifier_free(v);
		return SS_EXIT_LOCAL;
	}
	pglog_verify_with(pl, v, &r);
	pglog_conninfo_scrub(o->pg, r.why);
	snprintf(what, sizeof(what), "PostgreSQL log (%s)", label);
	a_print_result(&r, what, NULL, o);
	return r.ok ? SS_EXIT_OK : SS_EXIT_LOCAL;
}

/* Non-zero stops the scan: stdout failed (main() says so). */
static int
print_entry(const struct audit_entry *e, void *arg)
{
	struct aopts *o = arg;

	return a_print_entry(e, o->json ? &o->seq : NULL) == -1;
}

/* show --postgresql [--last N]: as show --log, through pglog_scan(). */
static int
show(struct pglog *pl, struct aopts *o)
{
	unsigned char	 id[16];
	uint64_t	 size, from;
	char		 err[512];
	int		 rc = SS_EXIT_OK;

	if (pglog_head(pl, &size, id, err, sizeof(err)) == -1) {
		pglog_conninfo_scrub(o->pg, err);
		fprintf(stderr, "safeshare: %s\n", err);
		return SS_EXIT_LOCAL;
	}
	from = o->last > 0 && o->last < size ? size - o->last + 1 : 1;
	if (o->json)
		jsonw_seq_begin(&o->seq, stdout);
	if (pglog_scan(pl, from, 0, print_entry, o, err, sizeof(err)) == -1) {
		pglog_conninfo_scrub(o->pg, err);
		fprintf(stderr, "safeshare: %s\n", err);
		rc = SS_EXIT_LOCAL;
	}
	if ((o->json && jsonw_seq_end(&o->seq) == -1) || ferror(stdout))
		rc = SS_EXIT_LOCAL;
	return rc;
}

static int
export(struct pglog *pl, struct aopts *o, const char *label)
{
	struct pgexp	 e;
	char		 err[512];

	memset(&e, 0, sizeof(e));
	if (o->out == NULL) {
		fprintf(stderr, "safeshare: export needs --out FILE\n");
		return SS_EXIT_USAGE;
	}
	if ((e.x.fp = fopen(o->out, "w")) == NULL) {
		perror(o->out);
		return SS_EXIT_LOCAL;
	}
	/* A failed write stops the walk; a_export_close() then says so. */
	if (pglog_walk(pl, header, a_export_cp, a_export_entry, &e, err,
	    sizeof(err)) == -1) {
		pglog_conninfo_scrub(o->pg, err);
		fprintf(stderr, "safeshare: export failed: %s\n", err);
		fclose(e.x.fp);
		return SS_EXIT_LOCAL;
	}
	if (a_export_close(e.x.fp, o->out, e.x.werr) == -1)
		return SS_EXIT_LOCAL;
	if (isatty(2))
		fputc('\n', stderr);
	printf("exported %" PRIu64 " entries and %" PRIu64 " checkpoints from the "
	    "PostgreSQL log (%s) to %s\n", e.x.n, e.ncp, label, o->out);
	return SS_EXIT_OK;
}

int
a_postgresql(struct aopts *o, const char *sub, EVP_PKEY **keys, size_t nkeys,
    const char *since)
{
	struct pglog	*pl;
	char		 label[512], err[512];
	int		 rc;

	if (pglog_conninfo_label(o->pg, label, sizeof(label), err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: --postgresql: %s\n", err);
		return SS_EXIT_USAGE;
	}
	if (pglog_open_reader(&pl, o->pg, err, sizeof(err)) == -1) {
		pglog_conninfo_scrub(o->pg, err);
		fprintf(stderr, "safeshare: PostgreSQL (%s): %s\n", label, err);
		return SS_EXIT_LOCAL;
	}
	if (strcmp(sub, "verify") == 0)
		rc = verify(pl, o, label, keys, nkeys, since);
	else if (strcmp(sub, "show") == 0)
		rc = show(pl, o);
	else
		rc = export(pl, o, label);
	pglog_close(pl);
	return rc;
}
