/*
 * What the kill -9 tests share: test_crash.c (one daemon on SQLite: its
 * writers, the kills and the rounds), test_crash_pg.c (two daemons on one
 * PostgreSQL), crash_client.c (the requesting clients, forked, and
 * crash_each_ack() reading their files for both tests) and
 * crash_check.c (reading the SQLite databases after each restart and
 * checking that everything acknowledged is there).
 */
#ifndef SAFESHARE_CRASH_H
#define SAFESHARE_CRASH_H

#include <sys/types.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include <stddef.h>
#include <stdio.h>

#include "harness.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

enum {
	ROUNDS = 20,
	MAX_REQUESTS = 2000,	/* per client and round */
	CLIENT_SECONDS = 5,	/* per client and round, and its reply timeout */
	KILL_MIN_MS = 50,
	KILL_MAX_MS = 300,
};

/* 2030-01-01T00:00:00Z: consent expiry dates count days from here. */
#define EXPIRY_BASE	1893456000LL

/* A disclosure request and the reply it must get (as the log names it). */
struct ask {
	const char	*subject, *purpose, *record_type;
	int		 consultation;
	const char	*override;
	int		 status;
	const char	*decision, *reason;
};

struct requester {
	const char		*agency;
	const struct ask	*asks;
	size_t			 nasks;
};

#define NREQUESTERS	3
extern const struct requester requesters[NREQUESTERS];

/*
 * A holder writing in turn: a new subject (record, consent and flag in one
 * request), a consent decision on its own long-lived subject, and setting
 * or clearing a flag on that subject.
 */
struct writer {
	const char	*agency;
	const char	*tag;		/* in its new subjects' ids and its file names */
	const char	*subject;	/* its long-lived subject */
	int		 flagged;	/* the flag's state found at the last restart */
};

#define NWRITERS	2
extern struct writer writers[NWRITERS];

#define NCLIENTS	(NREQUESTERS + NWRITERS)

/* crash_client.c: the requesting clients, in forked processes. */
extern int	 crash_ready_fd;
struct ss_client *crash_client(const struct daemon *, const char *agency,
		    int timeout, FILE *out);
void		 crash_announce(void);
long long	 crash_now_ms(void);
void		 crash_requester(const struct daemon *, const struct requester *,
		    const char *prefix, int seconds, FILE *out);
/*
 * Waits for the n forked clients in kids (0: already reaped), bounded by
 * 3 times their seconds: one that failed, or is still there then (killed),
 * is a failed CHECK of the round.
 */
void		 crash_reap(pid_t *kids, size_t n, int round, int seconds);

/* One "D" line of a client's file: an acknowledged disclosure. */
struct crash_ack {
	unsigned long long	 seq;
	char			 decision[32], reason[64], request_id[40];
	long long		 ms;	/* crash_now_ms() at the reply */
};
/*
 * Calls fn for each acknowledged disclosure in the file at path (none if
 * it does not exist); returns how many there were.
 */
long		 crash_each_ack(const char *path,
		    void (*fn)(const struct crash_ack *, void *), void *arg);

/* The daemon under test. */
extern struct daemon crash_d;

/* Checks failed so far: the rounds stop after the first round with one. */
extern int crash_problems;

/* cr_expect, counted. */
#define CHECK(cond, ...)	do {					\
	if (!(cond)) {							\
		crash_problems++;					\
		cr_expect_fail(__VA_ARGS__);				\
	}								\
} while (0)

/* Totals for the summary line; "unanswered" were in flight at a kill. */
extern long crash_total_disclosures, crash_total_writes;
extern long long crash_unanswered_disclosures, crash_unanswered_subjects;
/* Holder changes (new subjects, consent) logged but not in the store. */
extern long long crash_unapplied;

void		 crash_acks_path(char *, size_t, int, const char *);
long long	 crash_expiry(long, char *, size_t);

/* crash_check.c: the parent's checks after each restart. */
sqlite3		*open_ro(const char *);
long long	 q_int(sqlite3 *, const char *, ...);
void		 check_unexpected(int);
void		 check_log(int);
void		 check_store(int);
void		 check_store_logged(int);
void		 check_flags(int);
void		 check_files(int);

#endif
