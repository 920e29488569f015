/*
 * Outbound notification (issue 18 item 3, D20; daemon/notify.c): for each
 * agency with notify: in the config, its feed POSTed to its receiver over
 * mutual TLS, at least once and in order, from an outbox cursor kept in a
 * file beside the log. One notifier thread with its own event loop, log
 * reader and store connection does all of it; the event loop only kicks it
 * after commits and reads its counters for /metrics.
 */
#ifndef SAFESHARED_NOTIFY_H
#define SAFESHARED_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct evbuffer;
struct notifier;

/*
 * Opens the notifier's connections, reads (or starts at the log's end) each
 * agency's cursor and starts the thread. NULL with err when it cannot;
 * call only when conf->nnotify > 0.
 */
struct notifier	*notify_new(const struct config *, char *err, size_t errlen);
/*
 * After a commit, from the event loop: new entries may be there. durable
 * is the log's size known to be on disk (the log writer's, logq.c):
 * nothing after it is sent. Cheap.
 */
void		 notify_kick(struct notifier *, uint64_t durable);
/*
 * After a protocol reload, from the event loop: an outbox whose agency no
 * longer has the feed's role (or is gone) pauses, its cursor kept, and
 * goes on from there if a later protocol gives the role back.
 */
struct protocol;
void		 notify_protocol(struct notifier *, const struct protocol *);
/* Each agency's outbox lag, failures and last success, for /metrics. */
void		 notify_metrics(struct notifier *, uint64_t log_size,
		    struct evbuffer *);
/* Stops the thread (a POST in flight is dropped: sent again next start). */
void		 notify_free(struct notifier *);

#endif
