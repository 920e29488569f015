#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "yamlutil.h"

enum ktype { K_STR, K_PATH, K_INT };

struct key {
	const char	*name;		/* dotted path */
	enum ktype	 type;
	size_t		 off;
	const char	*def;		/* NULL: required */
	long long	 min, max;
	const char	*doc;
};

#define OFF(m)	offsetof(struct config, m)
struct yfile;
static void	storage_check(struct yfile *, struct config *, struct diag *);
static const struct key keys[] = {
	{ "listen", K_STR, OFF(listen), "127.0.0.1", 0, 0,
	    "address to listen on" },
	{ "port", K_INT, OFF(port), "8443", 0, 65535,
	    "TCP port; 0 picks a free one (see safeshared -r)" },
	{ "tls.cert", K_PATH, OFF(tls_cert), NULL, 0, 0,
	    "server certificate chain (PEM)" },
	{ "tls.key", K_PATH, OFF(tls_key), NULL, 0, 0,
	    "server private key (PEM); must not be group/world readable" },
	{ "tls.ca", K_PATH, OFF(tls_ca), NULL, 0, 0,
	    "CA bundle that client certificates must chain to (PEM)" },
	{ "tls.crl", K_PATH, OFF(tls_crl), "", 0, 0,
	    "certificate revocation list (PEM) for client certificates; re-read "
	    "on SIGHUP. Empty: none" },
	{ "tls.ticket_rotation", K_INT, OFF(ticket_rotation), "3600", 1, 86400,
	    "forget the TLS sessions kept for resumption this often, seconds "
	    "(a client resuming an older one makes a full handshake)" },
	{ "protocol", K_PATH, OFF(protocol), NULL, 0, 0,
	    "the sharing protocol file" },
	{ "storage", K_STR, OFF(storage), "sqlite", 0, 0,
	    "where the store and the disclosure log live: sqlite (the files "
	    "store and audit_log) or postgresql (both in the database "
	    "postgresql.conninfo names; docs/deploy-ha.md)" },
	{ "postgresql.conninfo", K_STR, OFF(pg_conninfo), "", 0, 0,
	    "with storage: postgresql, required: the libpq connection string, "
	    "e.g. \"host=db.example port=5432 dbname=safeshare user=safeshare "
	    "passfile=/etc/safeshare/pgpass\" (a password belongs in the "
	    "passfile, not here)" },
	{ "store", K_PATH, OFF(store), NULL, 0, 0,
	    "records, consent and flags database (SQLite); only with storage: "
	    "sqlite" },
	{ "audit_log", K_PATH, OFF(audit_log), NULL, 0, 0,
	    "disclosure log database (SQLite); its subject index is kept beside it, "
	    "in the same path with -subjects added; only with storage: sqlite" },
	{ "audit.signing_key", K_PATH, OFF(audit_signing_key), "", 0, 0,
	    "Ed25519 private key (PEM) that signs a checkpoint in every commit of "
	    "the log; must not be group/world readable. Empty: no checkpoints (a "
	    "log that has some will not start without it)" },
	{ "audit.previous_signing_key", K_PATH, OFF(audit_previous_signing_key), "", 0,
	    0, "for the one start that changes audit.signing_key: the old key, which "
	    "signs a checkpoint naming the new one (docs/security.md)" },
	{ "audit.first_public_key", K_PATH, OFF(audit_first_public_key), "", 0, 0,
	    "public key (PEM) the log's first checkpoint was signed with, where the "
	    "daemon's own verify starts the chain of keys. Empty: the signing key's" },
	{ "audit.checkpoint_every", K_INT, OFF(checkpoint_every), "1000", 1, 100000000,
	    "ignored: every commit signs a checkpoint (kept so old configs load)" },
	{ "audit.checkpoint_seconds", K_INT, OFF(checkpoint_seconds), "60", 1, 86400,
	    "ignored: every commit signs a checkpoint (kept so old configs load)" },
	{ "audit.commit", K_STR, OFF(audit_commit), "inline", 0, 0,
	    "inline: the writer fdatasyncs each commit itself (one thread "
	    "hand-over fewer; measured faster on 2 cores); pipelined: a syncer "
	    "thread fdatasyncs the log while the writer prepares the next batch, "
	    "whose COMMIT waits for that fdatasync to return (for slow disks and "
	    "free cores). Either way no reply before its entry is on disk" },
	{ "limits.max_body", K_INT, OFF(max_body), "65536", 256, 16 * 1024 * 1024,
	    "largest request body accepted, bytes (413 above)" },
	{ "limits.max_import", K_INT, OFF(max_import), "8388608", 256, 256 * 1024 * 1024,
	    "largest body accepted by /v1/holder/ops (holders' bulk imports), bytes" },
	{ "limits.max_headers", K_INT, OFF(max_headers), "8192", 512, 1024 * 1024,
	    "largest request head accepted, bytes" },
	{ "limits.timeout", K_INT, OFF(timeout), "30", 1, 3600,
	    "idle timeout per connection (no bytes either way), seconds" },
	{ "limits.handshake_timeout", K_INT, OFF(handshake_timeout), "10", 1, 600,
	    "a TLS handshake must finish within this many seconds of the connection" },
	{ "limits.request_timeout", K_INT, OFF(request_timeout), "30", 1, 3600,
	    "a request's head and body must arrive in full within this many "
	    "seconds, however slowly they trickle in (after a reply, counted from "
	    "the end of the limits.timeout idle time)" },
	{ "limits.max_connections", K_INT, OFF(max_connections), "1024", 1, 1000000,
	    "open connections at most (including those still in the TLS handshake); "
	    "a new one beyond it closes the one idle longest (a handshake not "
	    "finished first), and only when every one is busy do new ones wait in "
	    "the kernel's queue" },
	{ "limits.max_connections_per_address", K_INT, OFF(max_conns_per_address),
	    "256", 1, 1000000,
	    "open connections from one client address at most; a new one beyond it "
	    "closes that address's connection idle longest, or is closed itself" },
	{ "limits.max_connections_per_certificate", K_INT, OFF(max_conns_per_cert),
	    "256", 1, 1000000,
	    "open connections with one client certificate (SPKI) at most, counted "
	    "when the handshake ends; as for the address" },
	{ "limits.max_connection_age", K_INT, OFF(max_conn_age), "3600", 1, 604800,
	    "a connection is closed this many seconds after it was opened (once its "
	    "request in hand is answered), so its certificate is checked again on "
	    "the next one" },
	{ "limits.rate_per_agency", K_INT, OFF(rate_per_agency), "1000", 0, 1000000,
	    "requests per second per agency, a holder batch counting one per "
	    "operation (429 with Retry-After above); 0: no limit" },
	{ "limits.rate_burst", K_INT, OFF(rate_burst), "2000", 1, 10000000,
	    "requests an agency may make at once before the rate applies" },
	{ "limits.rate_unknown", K_INT, OFF(rate_unknown), "1", 0, 1000000,
	    "refusals logged per second per certificate and per address before "
	    "an agency is known (no or unknown certificate; a certificate that "
	    "maps to no agency is refused at its handshake and only that is "
	    "logged); the rest are not logged, only counted in /metrics (a "
	    "request gets 429); 0: no limit" },
	{ "limits.rate_unknown_burst", K_INT, OFF(rate_unknown_burst), "10", 1, 1000000,
	    "refusals logged at once per certificate and per address before "
	    "limits.rate_unknown applies" },
	{ "user", K_STR, OFF(user), "", 0, 0,
	    "when started as root: the user to run as after binding and loading "
	    "keys. Empty: stay as started" },
	{ "log_level", K_STR, OFF(log_level_str), "info", 0, 0,
	    "error, warn, info or debug" },
};
#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

static void
set(struct config *c, const struct key *k, const char *v, long long iv)
{
	char *base = (char *)c;

	if (k->type == K_INT) {
		*(long long *)(void *)(base + k->off) = iv;
		return;
	}
	free(*(char **)(void *)(base + k->off));
	*(char **)(void *)(base + k->off) = k->type == K_PATH ?
	    path_relative_to(c->path, v) : xstrdup(v);
}

static const struct key *
find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* Walks nested mappings, building dotted names, and applies each value. */
static void
walk(struct yfile *yf, struct config *c, yaml_node_t *map, const char *prefix,
    int *seen)
{
	const char *names[NKEYS + 1];

	YMAP_FOREACH(yf, map, pair) {
		yaml_node_t		*kn = ynode(yf, pair->key);
		yaml_node_t		*vn = ynode(yf, pair->value);
		const char		*k = ystr(yf, kn, "key"), *hint, *s;
		char			 full[128];
		const struct key	*key;
		size_t			 nn = 0;
		long long		 iv = 0;
		int			 section = 0;

		if (k == NULL)
			continue;
		snprintf(full, sizeof(full), "%s%s%s", prefix, *prefix ? "." : "", k);
		for (size_t i = 0; i < NKEYS; i++) {
			size_t plen = strlen(full);

			if (strncmp(keys[i].name, full, plen) == 0 &&
			    keys[i].name[plen] == '.')
				section = 1;
		}
		if (*prefix == '\0' && strcmp(k, "notify") == 0) {
			if (c->notify != NULL)
				yerr(yf, kn, "duplicate key \"notify\"");
			else
				config_notify_parse(yf, c, vn);
			continue;
		}
		if (section) {
			if (yis_map(yf, vn, full))
				walk(yf, c, vn, full, seen);
			continue;
		}
		if ((key = find_key(full)) == NULL) {
			for (size_t i = 0; i < NKEYS; i++)
				names[nn++] = keys[i].name;
			hint = did_you_mean(full, names, nn);
			if (hint != NULL)
				yerr(yf, kn, "unknown key \"%s\"; did you mean \"%s\"?",
				    full, hint);
			else
				yerr(yf, kn, "unknown key \"%s\"", full);
			continue;
		}
		if (seen[key - keys]++) {
			yerr(yf, kn, "duplicate key \"%s\"", full);
			continue;
		}
		if (key->type == K_INT) {
			if (yint(yf, vn, full, key->min, key->max, &iv) == 0)
				set(c, key, NULL, iv);
			continue;
		}
		if ((s = ystr(yf, vn, full)) == NULL)
			continue;
		if (*s == '\0') {
			yerr(yf, vn, "%s: must not be empty", full);
			continue;
		}
		set(c, key, s, 0);
	}
}

int
config_load(const char *path, struct config *c, struct diag *d)
{
	struct yfile	 yf;
	int		 seen[NKEYS] = { 0 };
	size_t		 before = d->nerrors;

	memset(c, 0, sizeof(*c));
	c->path = xstrdup(path);
	if (yfile_load(&yf, path, d) == -1) {
		yfile_free(&yf);
		return -1;
	}
	if (yis_map(&yf, yfile_root(&yf), "config"))
		walk(&yf, c, yfile_root(&yf), "", seen);
	for (size_t i = 0; i < NKEYS; i++) {
		if (seen[i])
			continue;
		/* storage: postgresql has no files (storage_check()). */
		if (config_postgresql(c) && (keys[i].off == OFF(store) ||
		    keys[i].off == OFF(audit_log)))
			continue;
		if (keys[i].def == NULL) {
			diag_add(d, path, 0, 0, "missing required key \"%s\" (%s)",
			    keys[i].name, keys[i].doc);
			continue;
		}
		if (keys[i].type == K_INT || keys[i].def[0] != '\0')
			set(c, &keys[i], keys[i].def, strtoll(keys[i].def, NULL, 10));
	}
	if (c->log_level_str != NULL &&
	    log_level_parse(c->log_level_str, &c->log_level) == -1) {
		yaml_node_t *n = yget(&yf, yfile_root(&yf), "log_level");

		if (n != NULL)
			yerr(&yf, n, "log_level: expected error, warn, info or debug");
	}
	if (c->audit_commit != NULL && strcmp(c->audit_commit, "pipelined") != 0 &&
	    strcmp(c->audit_commit, "inline") != 0) {
		yaml_node_t *au = yget(&yf, yfile_root(&yf), "audit");
		yaml_node_t *n = au != NULL ? yget(&yf, au, "commit") : NULL;

		/* The value can only come from the file; n is found. */
		yerr(&yf, n != NULL ? n : yfile_root(&yf),
		    "audit.commit: expected pipelined or inline");
	}
	storage_check(&yf, c, d);
	yfile_free(&yf);
	return d->nerrors == before ? 0 : -1;
}

int
config_postgresql(const struct config *c)
{
	return c->storage != NULL && strcmp(c->storage, "postgresql") == 0;
}

/* The key node of name in map, for errors about the key itself; or NULL. */
static yaml_node_t *
key_node(struct yfile *yf, yaml_node_t *map, const char *name)
{
	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	YMAP_FOREACH(yf, map, pair) {
		yaml_node_t	*kn = ynode(yf, pair->key);

		if (kn != NULL && kn->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)kn->data.scalar.value, name) == 0)
			return kn;
	}
	return NULL;
}

/*
 * Issue 19: storage: sqlite wants the files store and audit_log and no
 * postgresql: mapping; storage: postgresql wants postgresql.conninfo and
 * neither file (both live in the database). Each key that does not
 * belong is an error where it stands.
 */
static void
storage_check(struct yfile *yf, struct config *c, struct diag *d)
{
	yaml_node_t	*root = yfile_root(yf), *n;
	const char	*files[] = { "store", "audit_log" };

	if (strcmp(c->storage, "sqlite") != 0 && !config_postgresql(c)) {
		n = yget(yf, root, "storage");
		yerr(yf, n != NULL ? n : root, "storage: expected sqlite or "
		    "postgresql");
		return;
	}
	if (!config_postgresql(c)) {
		if ((n = key_node(yf, root, "postgresql")) != NULL)
			yerr(yf, n, "postgresql: is for storage: postgresql");
		return;
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if ((n = key_node(yf, root, files[i])) != NULL)
			yerr(yf, n, "%s: is for storage: sqlite (with storage: "
			    "postgresql the store and the log are in the database)",
			    files[i]);
	if (c->pg_conninfo == NULL)
		diag_add(d, c->path, 0, 0, "missing required key "
		    "\"postgresql.conninfo\" (storage: postgresql needs the "
		    "libpq connection string)");
}

void
config_free(struct config *c)
{
	free(c->path);
	free(c->listen);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_ca);
	free(c->tls_crl);
	free(c->user);
	free(c->protocol);
	free(c->storage);
	free(c->pg_conninfo);
	free(c->store);
	free(c->audit_log);
	free(c->audit_signing_key);
	free(c->audit_previous_signing_key);
	free(c->audit_first_public_key);
	free(c->log_level_str);
	free(c->audit_commit);
	config_notify_free(c);
	memset(c, 0, sizeof(*c));
}

void
config_describe(FILE *fp)
{
	fprintf(fp, "| key | default | meaning |\n|---|---|---|\n");
	for (size_t i = 0; i < NKEYS; i++)
		fprintf(fp, "| `%s` | %s | %s |\n", keys[i].name,
		    keys[i].def ? keys[i].def : "(required)", keys[i].doc);
}
