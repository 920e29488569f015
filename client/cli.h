/* Shared by the safeshare CLI's command files. */
#ifndef SAFESHARE_CLI_H
#define SAFESHARE_CLI_H

#include <stdio.h>

#include "jsonw.h"
#include "note.h"
#include "util.h"

/*
 * Every string that came from the server, the log or a file goes to the
 * terminal through T() (term_safe() in util.c): control characters and
 * bidirectional overrides are shown escaped, so no value can move the
 * cursor, erase a line or fake an entry (issue 14 item 10). JSON output
 * is built as jansson values and written by jsonw_print() (jsonw.h)
 * instead, never by printf (issue 16 item 4).
 */
#define T(s)	term_safe(s)

/*
 * The CLI's exit codes (docs/cli.md, "Exit codes"). SS_EXIT_ and not EX_:
 * <sysexits.h> defines EX_OK, EX_USAGE and others with other values.
 */
enum {
	SS_EXIT_OK,		/* 0 done */
	SS_EXIT_LOCAL,		/* 1 local error */
	SS_EXIT_USAGE,		/* 2 usage error */
	SS_EXIT_DENIED,		/* 3 denied by the sharing protocol */
	SS_EXIT_REFUSED,	/* 4 the server refused the request */
	SS_EXIT_NOANSWER	/* 5 no answer */
};

int	cmd_policy(int argc, char *argv[]);
int	cmd_audit(int argc, char *argv[]);
int	cmd_holder(int argc, char *argv[]);
int	cmd_receipt(int argc, char *argv[]);
int	cmd_witness(int argc, char *argv[]);
/* holder accesses (alerts 0) and audit alerts (1); argv[0] is the subcommand. */
int	cmd_feed(int alerts, int argc, char *argv[]);
int	cmd_locate(int argc, char *argv[]);
/* admin migrate; argv[0] is "migrate". */
int	cmd_migrate(int argc, char *argv[]);

/* Connection options shared by the networked commands. */
struct conn_opts {
	const char	*server, *cert, *key, *ca;
};

enum { O_SERVER = 1000, O_CERT, O_KEY, O_CA, O_JSON, O_HELP };

#define CONN_LONGOPTS							\
	{ "server", required_argument, NULL, O_SERVER },		\
	{ "cert", required_argument, NULL, O_CERT },			\
	{ "key", required_argument, NULL, O_KEY },			\
	{ "ca", required_argument, NULL, O_CA },			\
	{ "json", no_argument, NULL, O_JSON },				\
	{ "help", no_argument, NULL, O_HELP }

struct ss_client;
/* Handles a shared option; returns 1 if it was one. */
int		 conn_opt(int ch, struct conn_opts *, int *json);
/* Connects with the options or SAFESHARE_* environment; returns an exit code. */
int		 connect_client(struct conn_opts *, struct ss_client **);
const char	*env_or(const char *, const char *env);

struct Safeshare__V1__Error;
/*
 * Says on stderr that the daemon refused: "safeshare: refused (HTTP n):
 * code: message", the daemon's words through T() like every other text
 * that reaches the terminal.
 */
void		 cli_refused(int status, const struct Safeshare__V1__Error *);
/*
 * A refusal that was logged (request, locate): the JSON object with
 * --json, else cli_refused() and "logged as <what><seq>" when it was.
 */
void		 cli_logged_refusal(int status, const struct Safeshare__V1__Error *,
		    int json, const char *what);

struct note_key;
struct Safeshare__V1__Receipt;
/* The log key from --pubkey (verifier key string or PEM file); 0 or -1. */
int		 log_key_load(const char *arg, const char *origin, struct note_key *);
/* Saves a reply's receipt as DIR/<seq>.receipt; 0 or -1 (said why). */
int		 receipt_save(const char *dir, const struct Safeshare__V1__Receipt *);
/*
 * Counts the distinct witness keys that co-signed the checkpoints kept in
 * the witnesses' state files (each also signed by the log key); *notes
 * gets the files' notes. -1 after saying why.
 */
int		 witness_cosigners(char *const *files, size_t nfiles,
		    char *const *wkeys, size_t nwkeys, const char *logkey,
		    char ***notes);
/*
 * audit verify --witness FILE... --witness-key K... --min-witnesses k:
 * at least k of the keys co-signed the files' checkpoints, and the log
 * (the file logpath, or the daemon's through c) extends every one of
 * them. Returns an exit code. With doc (--json), the verdict is added to
 * doc as "witnesses" and doc is printed and released.
 */
int		 witness_verify(char *const *files, size_t nfiles,
		    char *const *wkeys, size_t nwkeys, unsigned min,
		    const char *logkey, const char *logpath, const char *exportpath,
		    struct ss_client *c, json_t *doc);
/* The origin a checkpoint note names, before its signature is checked; 0 or -1. */
int		 note_origin_of(const char *note, char origin[NOTE_LINE_MAX]);
/* Prints both checkpoints of a failed comparison to fp, for the record. */
void		 print_pair(FILE *fp, const char *held_what, const char *held,
		    const char *now);
/* Replaces path with text whole or not at all; 0 or -1 with err. */
int		 file_write_atomic(const char *path, const char *text, char *err,
		    size_t errlen);

#endif
