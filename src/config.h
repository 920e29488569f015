/*
 * The daemon config (safeshared.yaml). One table of keys drives parsing,
 * defaults, bounds and docs/config.md. Relative paths are resolved against
 * the directory of the config file.
 */
#ifndef SAFESHARE_CONFIG_H
#define SAFESHARE_CONFIG_H

#include <yaml.h>

#include "log.h"
#include "util.h"

/*
 * One agency's outbound notification (issue 18 item 3, notify.AGENCY in the
 * config; daemon/notify.c delivers): its feed POSTed to url over mutual
 * TLS with cert/key, the receiver verified against ca. Parsed and checked
 * by src/config_notify.c; line and col say where, for errors found later
 * (an agency the protocol does not have).
 */
struct notify_conf {
	char		*agency;
	char		*url;
	char		*host;		/* from url */
	int		 port;		/* from url; 443 when it names none */
	char		*path;		/* from url, starting with '/' */
	char		*cert;
	char		*key;
	char		*ca;
	char		*feed;		/* "accesses", "alerts" or NULL: by role */
	long long	 timeout;	/* seconds for connect, TLS and the reply */
	size_t		 line, col;
};

struct config {
	char		*path;
	char		*listen;
	long long	 port;
	char		*tls_cert;
	char		*tls_key;
	char		*tls_ca;
	char		*tls_crl;		/* optional */
	char		*protocol;
	char		*storage;		/* "sqlite" or "postgresql" */
	char		*pg_conninfo;		/* postgresql.conninfo */
	char		*store;			/* SQLite: the store's file */
	char		*audit_log;		/* SQLite: the log's file */
	char		*audit_signing_key;	/* optional: no checkpoints without it */
	char		*audit_previous_signing_key; /* the start that rotates keys */
	char		*audit_first_public_key; /* the daemon's verify starts here */
	long long	 checkpoint_every;
	long long	 checkpoint_seconds;
	char		*audit_commit;		/* "pipelined" or "inline" */
	long long	 max_body;
	long long	 max_import;
	long long	 ticket_rotation;
	long long	 handshake_timeout;
	long long	 request_timeout;
	long long	 max_headers;
	long long	 timeout;
	long long	 max_connections;
	long long	 max_conns_per_address;
	long long	 max_conns_per_cert;
	long long	 max_conn_age;
	long long	 rate_per_agency;	/* requests per second; 0: no limit */
	long long	 rate_burst;
	long long	 rate_unknown;		/* logged refusals per second, per cert/address */
	long long	 rate_unknown_burst;
	char		*user;			/* drop privileges to this user */
	char		*log_level_str;
	enum log_level	 log_level;
	struct notify_conf *notify;		/* nnotify of them */
	size_t		 nnotify;
};

int	config_load(const char *path, struct config *, struct diag *);
/*
 * 1 with storage: postgresql (issue 19): the store and the log are in the
 * database named by pg_conninfo, and store and audit_log are NULL.
 */
int	config_postgresql(const struct config *);
void	config_free(struct config *);
/* config_notify.c: the notify: mapping (config_load calls it). */
struct yfile;
void	config_notify_parse(struct yfile *, struct config *, yaml_node_t *);
void	config_notify_free(struct config *);
/*
 * Checks each notify.AGENCY names an agency of the protocol with a feed
 * (role holder: accesses; guardian or auditor: alerts), and settles feed.
 * Returns 0, or -1 with file:line:col diagnostics in d.
 */
struct protocol;
int	config_notify_check(struct config *, const struct protocol *, struct diag *);
/* Writes the key table as markdown (used to check docs/config.md is current). */
void	config_describe(FILE *);

#endif
