/*
 * The daemon config's notify: mapping (issue 18 item 3): per agency, where
 * to POST its feed and with which client certificate. Everything that can
 * be checked without the protocol is checked here, with file:line:col; the
 * key must be private (the same rule as tls.key) and the certificate, key
 * and CA must make a TLS client context, so a daemon never starts with a
 * notifier that cannot connect for a reason a person wrote down.
 *
 * notify:
 *   childrens_social_care:
 *     url: https://receiver.example:8443/safeshare
 *     cert: notify-client.crt
 *     key: notify-client.key
 *     ca: receiver-ca.crt
 *     feed: accesses            # optional: by the agency's role
 *     timeout: 10               # optional, seconds
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "protocol.h"
#include "tls.h"
#include "yamlutil.h"

#define NOTIFY_TIMEOUT_DEFAULT	10
#define NOTIFY_TIMEOUT_MAX	600
#define NOTIFY_URL_MAX		2048

static const char *const notify_keys[] = { "url", "cert", "key", "ca", "feed",
    "timeout", NULL };

/*
 * Splits an https URL into host, port and path; NULL, or why not. Only
 * https (D10: every hop is mutual TLS), a host name or IPv4 address, an
 * optional port and a path; no user info, query or fragment.
 */
static const char *
url_split(const char *url, struct notify_conf *n)
{
	const char	*h, *p;
	size_t		 hl;
	long		 port = 443;

	if (strlen(url) > NOTIFY_URL_MAX)
		return "url: longer than 2048 bytes";
	if (strncmp(url, "https://", 8) != 0)
		return "url: must start with https:// (the feed goes over mutual TLS only)";
	h = url + 8;
	hl = strcspn(h, ":/");
	if (hl == 0)
		return "url: no host";
	for (size_t i = 0; i < hl; i++)
		if (!isalnum((unsigned char)h[i]) && h[i] != '.' && h[i] != '-')
			return "url: the host may have letters, digits, '.' and '-' only";
	p = h + hl;
	if (*p == ':') {
		char *end;

		p++;
		if (!isdigit((unsigned char)*p))
			return "url: bad port";
		port = strtol(p, &end, 10);
		if (port < 1 || port > 65535 || (*end != '/' && *end != '\0'))
			return "url: bad port (1 to 65535)";
		p = end;
	}
	if (*p == '\0')
		p = "/";
	for (const char *q = p; *q != '\0'; q++)
		if (!isgraph((unsigned char)*q) || *q == '#' || *q == '?')
			return "url: the path may not have spaces, control "
			    "characters, a query or a fragment";
	n->host = xcalloc(hl + 1, 1);
	memcpy(n->host, h, hl);
	n->port = (int)port;
	n->path = xstrdup(p);
	return NULL;
}

/* A path value (resolved against the config's directory), or NULL. */
static char *
notify_path(struct yfile *yf, struct config *c, yaml_node_t *map, const char *k,
    const char *where)
{
	yaml_node_t	*vn;
	const char	*s;

	if ((vn = yneed(yf, map, k, where)) == NULL ||
	    (s = ystr(yf, vn, k)) == NULL)
		return NULL;
	if (*s == '\0') {
		yerr(yf, vn, "%s.%s: must not be empty", where, k);
		return NULL;
	}
	return path_relative_to(c->path, s);
}

static void
notify_one(struct yfile *yf, struct config *c, yaml_node_t *kn, yaml_node_t *map,
    struct notify_conf *n)
{
	char		 where[128], err[512];
	const char	*s, *why;
	yaml_node_t	*vn;
	size_t		 before = yf->diag->nerrors;
	SSL_CTX		*ctx;

	n->line = kn->start_mark.line + 1;
	n->col = kn->start_mark.column + 1;
	n->timeout = NOTIFY_TIMEOUT_DEFAULT;
	snprintf(where, sizeof(where), "notify.%s", n->agency);
	if (protocol_id_problem(n->agency) != NULL) {
		yerr(yf, kn, "%s: %s", where, protocol_id_problem(n->agency));
		return;
	}
	if (!yis_map(yf, map, where))
		return;
	ykeys_check(yf, map, notify_keys, where);
	if ((vn = yneed(yf, map, "url", where)) != NULL &&
	    (s = ystr(yf, vn, "url")) != NULL) {
		n->url = xstrdup(s);
		if ((why = url_split(s, n)) != NULL)
			yerr(yf, vn, "%s.%s", where, why);
	}
	n->cert = notify_path(yf, c, map, "cert", where);
	n->key = notify_path(yf, c, map, "key", where);
	n->ca = notify_path(yf, c, map, "ca", where);
	if ((vn = yget(yf, map, "feed")) != NULL &&
	    (s = ystr(yf, vn, "feed")) != NULL) {
		if (strcmp(s, "accesses") != 0 && strcmp(s, "alerts") != 0)
			yerr(yf, vn, "%s.feed: expected accesses or alerts", where);
		else
			n->feed = xstrdup(s);
	}
	if ((vn = yget(yf, map, "timeout")) != NULL)
		yint(yf, vn, "timeout", 1, NOTIFY_TIMEOUT_MAX, &n->timeout);
	if (n->key != NULL && file_is_secret(n->key, err, sizeof(err)) == -1) {
		yerr(yf, yget(yf, map, "key"), "%s.key: %s", where, err);
		return;
	}
	if (yf->diag->nerrors != before || n->cert == NULL || n->key == NULL ||
	    n->ca == NULL)
		return;
	/* What the notifier will build at start: a mistake shows here. */
	if ((ctx = tls_client_ctx(n->cert, n->key, n->ca, err, sizeof(err))) == NULL)
		yerr(yf, map, "%s: %s", where, err);
	SSL_CTX_free(ctx);
}

void
config_notify_parse(struct yfile *yf, struct config *c, yaml_node_t *map)
{
	size_t	 n = 0;

	if (!yis_map(yf, map, "notify"))
		return;
	YMAP_FOREACH(yf, map, pair)
		n++;
	c->notify = xcalloc(n + 1, sizeof(*c->notify));
	YMAP_FOREACH(yf, map, pair) {
		yaml_node_t	*kn = ynode(yf, pair->key);
		const char	*k = ystr(yf, kn, "notify key");
		int		 dup = 0;

		if (k == NULL)
			continue;
		for (size_t i = 0; i < c->nnotify; i++)
			dup |= strcmp(c->notify[i].agency, k) == 0;
		if (dup) {
			yerr(yf, kn, "notify: duplicate agency \"%s\"", k);
			continue;
		}
		c->notify[c->nnotify].agency = xstrdup(k);
		notify_one(yf, c, kn, ynode(yf, pair->value), &c->notify[c->nnotify]);
		c->nnotify++;
	}
}

int
config_notify_check(struct config *c, const struct protocol *p, struct diag *d)
{
	size_t before = d->nerrors;

	for (size_t i = 0; i < c->nnotify; i++) {
		struct notify_conf	*n = &c->notify[i];
		const struct agency	*a = protocol_agency(p, n->agency);
		unsigned		 want;

		if (a == NULL) {
			diag_add(d, c->path, n->line, n->col, "notify.%s: no agency "
			    "\"%s\" in the protocol", n->agency, n->agency);
			continue;
		}
		if (n->feed == NULL)
			n->feed = xstrdup(a->roles & ROLE_HOLDER ? "accesses" :
			    "alerts");
		want = strcmp(n->feed, "accesses") == 0 ? ROLE_HOLDER :
		    ROLE_GUARDIAN | ROLE_AUDITOR;
		if ((a->roles & want) == 0)
			diag_add(d, c->path, n->line, n->col, "notify.%s: the agency "
			    "has no %s feed (it needs the role %s)", n->agency, n->feed,
			    want == ROLE_HOLDER ? "holder" : "guardian or auditor");
	}
	return d->nerrors == before ? 0 : -1;
}

void
config_notify_free(struct config *c)
{
	for (size_t i = 0; i < c->nnotify; i++) {
		struct notify_conf *n = &c->notify[i];

		free(n->agency);
		free(n->url);
		free(n->host);
		free(n->path);
		free(n->cert);
		free(n->key);
		free(n->ca);
		free(n->feed);
	}
	free(c->notify);
	c->notify = NULL;
	c->nnotify = 0;
}
