/*
 * A receiver for the daemon's outbound notifications, for the benchmarks
 * (issue 18 items 3 and 7): HTTPS on 127.0.0.1, client certificates
 * required, on a thread and event_base of its own. It notes when each
 * POSTed feed item arrived, or, hanging, takes each request and never
 * answers (a receiver that accepts and then stalls).
 */
#ifndef SAFESHARE_BENCH_SINK_H
#define SAFESHARE_BENCH_SINK_H

#include <stddef.h>
#include <stdint.h>

#define SINK_MAX	8192	/* items noted per run; more are counted only */

/* One feed item as it arrived: its log seq, CLOCK_MONOTONIC seconds. */
struct sink_arrival {
	uint64_t	seq;
	double		t;
};

struct sink;

/*
 * Listens on 127.0.0.1:port with cert and key, requiring a client
 * certificate that ca signed, and starts the thread. The process must have
 * called evthread_use_pthreads() first. Returns NULL with a message in err.
 */
struct sink	*sink_start(int port, const char *cert, const char *key,
		    const char *ca, int hang, char *err, size_t errlen);

/*
 * Copies up to max of the items noted so far into out and returns how many;
 * *posts is the number of POSTs taken (answered or, hanging, held).
 */
size_t		 sink_copy(struct sink *, struct sink_arrival *out, size_t max,
		    size_t *posts);

/* Stops the thread, closes every connection and frees the sink. */
void		 sink_stop(struct sink *);

/* CLOCK_MONOTONIC in seconds, the clock of every arrival. */
double		 sink_now(void);

#endif
