/*
 * What the files of `safeshare audit` share: the parsed options and the
 * commands. audit_cmd.c parses and dispatches and holds the helpers
 * below; audit_query_cmd.c has the online queries, queues and report;
 * audit_verify_cmd.c the export, show and verify of the whole log,
 * online and offline. Witnesses are in witness_cmd.c (cli.h).
 */
#ifndef SAFESHARE_AUDIT_CMD_H
#define SAFESHARE_AUDIT_CMD_H

#include <openssl/evp.h>

#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "safeshare/client.h"

#define MAX_PUBKEYS	8
#define MAX_WITNESSES	32

/* The options of one audit command; the strings point into argv. */
struct aopts {
	struct conn_opts	 conn;
	char			*witness[MAX_WITNESSES];	/* witnesses' state files */
	char			*wkeys[MAX_WITNESSES];	/* their verifier keys */
	size_t			 nwitness, nwkeys;
	unsigned		 min_witnesses;
	int			 json, all, overrides;
	const char		*log, *pubkey, *export, *out, *by, *outcome, *note;
	const char		*html;
	const char		*pg;		/* --postgresql CONNINFO */
	const char		*pubkeys[MAX_PUBKEYS], *since;
	size_t			 npubkeys;
	const char		*subject, *agency, *practitioner, *purpose, *decision;
	const char		*reason, *kind;
	int64_t			 from, to;
	uint64_t		 after, last;
	uint32_t		 limit;
	struct jsonw_seq	 seq;		/* audit show --json */
	json_t			*verdict;	/* verify --json, held for witnesses */
};

struct audit_entry;
struct audit_checkpoint;
struct audit_verify_result;

/* audit_cmd.c */
/* One entry as a new JSON object: its fields by name, time as ISO 8601 UTC. */
json_t	*a_entry_json(const struct audit_entry *);
/*
 * One entry as the next element of seq, or a text line when seq is NULL;
 * 0, or -1 when stdout could not take it (stop: main() says so).
 */
int	 a_print_entry(const struct audit_entry *, struct jsonw_seq *seq);
/* Calls an audit endpoint; returns an exit code, *resp set on success. */
int	 a_call(struct ss_client *, const char *path, const ProtobufCMessage *req,
	    const ProtobufCMessageDescriptor *, ProtobufCMessage **resp);

/* audit_query_cmd.c; each returns an exit code. */
int	 a_query(struct ss_client *, struct aopts *);
int	 a_stats(struct ss_client *, struct aopts *);
int	 a_subject_report(struct ss_client *, struct aopts *, const char *subject);
int	 a_pending(struct ss_client *, struct aopts *, const char *path,
	    const char *what);
int	 a_note(struct ss_client *, struct aopts *, const char *path,
	    const char *seqs, int review);
int	 a_report(struct ss_client *, struct aopts *);

/* audit_verify_cmd.c; each returns an exit code. */
int	 a_export_online(struct ss_client *, struct aopts *);
/* show, export --log, verify --log|--export: files only, no daemon. */
int	 a_offline(struct aopts *, const char *sub);
int	 a_verify_online(struct ss_client *, struct aopts *);
/*
 * What the offline verifies and exports share: the verdict printed (what
 * names the log, ix its subject index, may be NULL), the export's
 * callbacks writing x->fp with progress on a terminal.
 */
void	 a_print_result(const struct audit_verify_result *, const char *what,
	    const char *ix, struct aopts *);
struct a_exp {
	FILE		*fp;
	uint64_t	 n, total;
	int		 werr;		/* errno of a failed write, 0: none */
};
int	 a_export_cp(const struct audit_checkpoint *, void *x);
int	 a_export_entry(const struct audit_entry *, void *x);
void	 a_progress(uint64_t done, uint64_t total);
/*
 * Closes an export file; werr: the errno of a write that failed (0: none).
 * A failed write or close says the export is incomplete: -1.
 */
int	 a_export_close(FILE *fp, const char *path, int werr);

/*
 * audit_pg_cmd.c: show, verify and export --postgresql CONNINFO, with the keys
 * and --since note a_offline() loaded (keys[0] starts the chain of keys).
 */
int	 a_postgresql(struct aopts *, const char *sub, EVP_PKEY **keys, size_t nkeys,
	    const char *since);

#endif
