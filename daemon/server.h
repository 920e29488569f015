/*
 * safeshared's HTTP side: the evhttp server over bufferevent_openssl, its
 * routes, and the state they share.
 */
#ifndef SAFESHARED_SERVER_H
#define SAFESHARED_SERVER_H

#include <sys/queue.h>

#include <openssl/ssl.h>
#include <stdint.h>

#include "audit.h"
#include "config.h"
#include "logstore.h"
#include "metrics.h"
#include "protocol.h"
#include "storage.h"

struct event_base;
struct evhttp_request;
struct event;
struct evhttp;
struct logq;
struct hworker;
struct feeds;
struct notifier;

struct conn;
TAILQ_HEAD(connq, conn);

struct server {
	struct config		*conf;
	struct event_base	*base;
	struct evhttp		*http;
	struct evhttp_bound_socket *listener;
	SSL_CTX			*ssl;
	struct protocol		*proto;		/* in force; swapped on reload */
	struct storage		*store;
	char			 store_ref[STORE_ID_LEN + 8];	/* "store:<id>", the log's name for it */
	struct logstore		*audit;		/* owned by the log writer thread */
	struct logstore		*reader;	/* read-only, for auditors' queries */
	EVP_PKEY		*public_key;	/* checkpoint signer's public half */
	EVP_PKEY		*first_key;	/* audit.first_public_key, or NULL */
	int			 new_log_ok;	/* -N: a new log where another was */
	char			 new_log_note[400]; /* ... and what it replaced */
	int			 log_remembered; /* the store notes this log's size */
	struct event		*logmark;	/* notes it every minute (issue 13) */
	char			*public_pem;
	struct logq		*logq;
	struct hworker		*holder;	/* the holder thread (holder_api.c) */
	struct feeds		*feeds;		/* parked feed requests (feed.c) */
	struct notifier		*notify;	/* outbound feeds (notify.c), or NULL */
	struct event		*forget;	/* forgets TLS sessions (tls.ticket_rotation) */
	struct event		*drain;		/* shutdown: waits for the log queue */
	struct event		*round;		/* end of a loop round, see server_read_scope() */
	struct event		*store_ev;	/* the store's reads in flight: */
	int			 store_fd;	/* ... its socket (store_watch()) */
	int			 port;		/* bound port */
	size_t			 nconns;	/* open connections, handshakes included */
	struct connq		 conns;		/* the same, least recently active first */
	int			 accepting;	/* the listener is enabled */
	struct rate		*rates;		/* per agency, see rate_take() */
	size_t			 nrates;
	struct unknown_bucket	*unknown;	/* per cert and address, see refuse() */
	struct metrics		 metrics;	/* for /metrics (metrics.h) */
	size_t			 verifying;	/* verify threads not yet answered */
};

/*
 * Opens the store's read scope for the rest of this event-loop round (one
 * snapshot and one lock for every request the round reads); the scope and
 * the held log lines end when the round's events have run.
 */
void	server_read_scope(struct server *);
/*
 * At start, before any request (daemon/storelog.c): logs that a store not
 * named by the log's last store entry is now open, and every data file
 * loaded into it with -l not yet logged (issue 15). 0 or -1 with err.
 */
int	storelog_start(struct server *, char *err, size_t errlen);

/*
 * The holder thread (daemon/holder_api.c): checks and applies holder batches
 * on its own store connection, off the event loop. hworker_new() opens
 * the store and starts it (NULL and err on failure); hworker_busy() counts
 * batches not yet answered; hworker_free() stops it.
 */
struct hworker	*hworker_new(struct server *, char *err, size_t errlen);
size_t		 hworker_busy(const struct hworker *);
void		 hworker_free(struct hworker *);
/*
 * The log entry saying a logged holder batch was not applied (audit-format.md):
 * its agency, request id and first entry, and why.
 */
void		 holder_rolled_back(struct audit_entry *, const struct protocol *,
		    const char *agency, const char *request_id, uint64_t first_seq,
		    const char *reason);

struct route;
/* Counts the request's replies in /metrics under rt (NULL: "other"). */
void	server_note_route(struct evhttp_request *, const struct route *rt);

/*
 * At start, before any request (holder_reconcile.c): a rolled_back entry
 * for each logged holder batch the store did not apply. 0 or -1 with err.
 */
int	holder_reconcile(struct server *, char *err, size_t errlen);

/*
 * Opens a connection to the daemon's disclosure log (the config's
 * backend: logstore.h) for one thread, in mode. 0 or -1 with err.
 */
int	server_log_open(const struct config *, enum logstore_mode,
	    struct logstore **, char *err, size_t errlen);
/* The same for the store (storage.h): one handle per thread. */
int	server_store_open(const struct config *, struct storage **, char *err,
	    size_t errlen);

/* An event loop for a thread of the daemon: epoll, no change list. */
struct event_base *server_new_base(void);
int	server_init(struct server *, struct config *, struct protocol *,
	    char *err, size_t errlen);
/* Stops accepting; the loop exits once every queued log entry is answered. */
void	server_stop(struct server *);
void	server_shutdown(struct server *);
/*
 * Re-reads the protocol; keeps the old one on any error (D13), leaving the
 * problems in diag. A successful reload is logged; its entry's seq in *seq.
 * 0 reloaded, -1 the files were refused, -2 the log could not be written
 * (nothing reloaded; the admin route answers 503 for it).
 */
int	server_reload(struct server *, const char *by, struct diag *, uint64_t *seq);

#endif
