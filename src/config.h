/*
 * The daemon config (safeshared.yaml). One table of keys drives parsing,
 * defaults, bounds and docs/config.md. Relative paths are resolved against
 * the directory of the config file.
 */
#ifndef SAFESHARE_CONFIG_H
#define SAFESHARE_CONFIG_H

#include "log.h"
#include "util.h"

struct config {
	char		*path;
	char		*listen;
	long long	 port;
	char		*tls_cert;
	char		*tls_key;
	char		*tls_ca;
	char		*tls_crl;		/* optional */
	char		*protocol;
	char		*store;
	char		*audit_log;
	char		*audit_signing_key;	/* optional: no checkpoints without it */
	char		*audit_previous_signing_key; /* the start that rotates keys */
	char		*audit_first_public_key; /* the daemon's verify starts here */
	long long	 checkpoint_every;
	long long	 checkpoint_seconds;
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
};

int	config_load(const char *path, struct config *, struct diag *);
void	config_free(struct config *);
/* Writes the key table as markdown (used to check docs/config.md is current). */
void	config_describe(FILE *);

#endif
