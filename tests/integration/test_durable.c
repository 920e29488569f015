/*
 * Issue 13: what the daemon serves from the log is capped at its durable
 * size, the entries whose commit's fdatasync has returned (daemon/logq.c,
 * logsync.c): a signed checkpoint (/v1/log/consistency, as witnesses and
 * receipts get it) and a feed page (/v1/holder/accesses) never show an
 * entry that a crash could still take back (D7). The real daemon runs
 * with fsync_hold.c preloaded, which holds the fdatasync of the log's
 * -wal file while a file exists. With audit.commit: pipelined the batch
 * being synced is committed and the writer prepares the next, whose
 * COMMIT waits for the fdatasync (logq.c, commit_gate()); inline (the
 * default), the writer's own commit waits in its fdatasync. Either way
 * the held batch is committed but not durable: neither read shows it, and
 * no disclosure is answered, until the hold ends.
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define NHELD	6	/* disclosures made during the hold */

static struct daemon	d;
static char		hold[PATH_MAX + 8], held[PATH_MAX + 16];

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

/* The daemon with the shim; the test process itself never loads it. */
static void
start(const char *commit)
{
	char	 dir[PATH_MAX], wal[PATH_MAX + 16], asan[1024];
	const char *old = getenv("ASAN_OPTIONS");

	h_setup(&d);
	h_load_demo(&d);
	cr_assert_not_null(realpath(d.dir, dir));
	snprintf(wal, sizeof(wal), "%s/audit.db-wal", dir);
	cr_assert_eq(strcmp(strrchr(d.audit, '/'), "/audit.db"), 0);
	snprintf(hold, sizeof(hold), "%s/hold", dir);
	snprintf(held, sizeof(held), "%s.held", hold);
	snprintf(d.extra, sizeof(d.extra), "audit:\n  commit: %s\n", commit);
	h_write_config(&d, d.audit);
	/* An ASan daemon would refuse a library loaded ahead of its runtime. */
	snprintf(asan, sizeof(asan), "%s%sverify_asan_link_order=0",
	    old != NULL ? old : "", old != NULL && *old != '\0' ? ":" : "");
	setenv("ASAN_OPTIONS", asan, 1);
	setenv("LD_PRELOAD", FSYNC_HOLD_LIB, 1);
	setenv("SAFESHARE_HOLD_WAL", wal, 1);
	setenv("SAFESHARE_HOLD_FILE", hold, 1);
	h_start(&d);
	unsetenv("LD_PRELOAD");
	unsetenv("SAFESHARE_HOLD_WAL");
	unsetenv("SAFESHARE_HOLD_FILE");
	if (old != NULL)
		setenv("ASAN_OPTIONS", old, 1);
	else
		unsetenv("ASAN_OPTIONS");
}

static void
teardown(void)
{
	unlink(hold);
	h_cleanup(&d);
}

static void
setup_pipelined(void)
{
	start("pipelined");
}

static void
setup_inline(void)
{
	start("inline");
}

TestSuite(durable, .fini = teardown, .timeout = 240);

/* A client as agency that waits up to 60 s (h_client()'s gives up sooner). */
static struct ss_client *
client(const char *agency)
{
	struct ss_client_config	 cfg;
	struct ss_client	*c;
	char			 cert[512], key[512], ca[512], err[512];

	snprintf(cert, sizeof(cert), "%s/pki/%s.crt", d.dir, agency);
	snprintf(key, sizeof(key), "%s/pki/%s.key", d.dir, agency);
	snprintf(ca, sizeof(ca), "%s/pki/ca.crt", d.dir);
	cfg.server = d.server;
	cfg.cert = cert;
	cfg.key = key;
	cfg.ca = ca;
	cfg.timeout = 60;
	if (ss_client_new(&c, &cfg, err, sizeof(err)) == -1)
		return NULL;
	return c;
}

/* One disclosure of S1001 (a childrens_social_care subject); 0 or -1. */
static int
disclose(void)
{
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__DisclosureResponse	*r = NULL;
	Safeshare__V1__Error			*e = NULL;
	struct ss_client			*c = client("police");
	char					 err[512];
	int					 status, rc;

	if (c == NULL)
		return -1;
	rq.subject_id = "S1001";
	rq.purpose = "child_protection";
	rq.record_type = "person";
	rq.case_reference = "CASE-13-DURABLE";
	rq.practitioner = "Durable Tester";
	rc = ss_disclose(c, &rq, &r, &e, &status, err, sizeof(err));
	if (rc == 0 && (r == NULL || r->disclosure_id == 0))
		rc = -1;
	if (r)
		safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	if (e)
		safeshare__v1__error__free_unpacked(e, NULL);
	ss_client_free(c);
	return rc;
}

/* The latest checkpoint the daemon serves: its tree size. */
static uint64_t
checkpoint_size(void)
{
	Safeshare__V1__ConsistencyProof	*p = NULL;
	Safeshare__V1__Error		*e = NULL;
	struct ss_client		*c = client("childrens_social_care");
	char				 err[512];
	int				 status;
	uint64_t			 size;

	cr_assert_not_null(c);
	cr_assert_eq(ss_log_consistency(c, 0, &p, &e, &status, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_not_null(p, "status %d: %s", status, e ? e->message : "");
	size = p->to_size;
	safeshare__v1__consistency_proof__free_unpacked(p, NULL);
	ss_client_free(c);
	return size;
}

/* childrens_social_care's feed after seq, no wait: items and log_size. */
static size_t
feed(uint64_t after, uint64_t *log_size)
{
	Safeshare__V1__FeedRequest	 rq = SAFESHARE__V1__FEED_REQUEST__INIT;
	Safeshare__V1__HolderAccesses	*a;
	ProtobufCMessage		*resp = NULL;
	Safeshare__V1__Error		*e = NULL;
	struct ss_client		*c = client("childrens_social_care");
	char				 err[512];
	int				 status;
	size_t				 n;

	cr_assert_not_null(c);
	rq.after_seq = after;
	rq.limit = 100;
	cr_assert_eq(ss_call_message(c, "/v1/holder/accesses", &rq.base,
	    &safeshare__v1__holder_accesses__descriptor, &resp, &e, &status, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_not_null(resp, "status %d: %s", status, e ? e->message : "");
	a = (Safeshare__V1__HolderAccesses *)resp;
	n = a->n_items;
	*log_size = a->log_size;
	safeshare__v1__holder_accesses__free_unpacked(a, NULL);
	if (e)
		safeshare__v1__error__free_unpacked(e, NULL);
	ss_client_free(c);
	return n;
}

/*
 * Holds the log's next fdatasync while NHELD disclosures are made; once
 * at least `want` entries past the durable end are committed, neither a
 * checkpoint nor a feed page may show them and no disclosure may be
 * answered; after the hold all are answered and served.
 */
static void
held_commits_are_not_served(long want)
{
	pid_t		 kids[NHELD];
	uint64_t	 base, size, cp0;
	long		 committed = 0;
	int		 fd, st, ok = 0;

	/* Durable ground: the log's end now, a checkpoint at or below it. */
	cr_assert_eq(disclose(), 0);
	base = (uint64_t)h_log_count(&d, NULL);
	cr_assert_eq(feed(base, &size), 0);
	cr_assert_eq(size, base, "the feed's log_size is the durable size");
	cp0 = checkpoint_size();
	cr_assert_leq(cp0, base);

	/* Hold the next fdatasync of the log; six disclosures commit behind it. */
	cr_assert_neq(fd = open(hold, O_WRONLY | O_CREAT, 0600), -1);
	close(fd);
	for (int i = 0; i < NHELD; i++) {
		if ((kids[i] = fork()) == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			_exit(disclose() == 0 ? 0 : 1);
		}
		cr_assert_gt(kids[i], 0);
	}
	for (int i = 0; i < 3000 && access(held, F_OK) != 0; i++)
		sleep_ms(10);
	cr_assert_eq(access(held, F_OK), 0, "the log's fdatasync never started");
	for (int i = 0; i < 3000; i++) {
		committed = h_log_count(&d, NULL);
		if (committed >= (long)base + want)
			break;
		sleep_ms(10);
	}
	cr_assert_geq(committed, (long)base + want,
	    "the writer did not commit while the fdatasync was held");

	/* Committed, not durable: neither read shows them. */
	cr_expect_eq(feed(base, &size), 0, "a feed page shows an entry whose "
	    "fdatasync has not returned");
	cr_expect_eq(size, base, "the feed's log_size counts undurable entries");
	cr_expect_leq(checkpoint_size(), base, "a checkpoint over undurable "
	    "entries was served (the log signs one every 5)");
	for (int i = 0; i < NHELD; i++)
		cr_expect_eq(waitpid(kids[i], &st, WNOHANG), 0,
		    "a disclosure was answered before its fdatasync (D7)");

	/* The hold ends: all six are durable, answered and served. */
	unlink(hold);
	for (int i = 0; i < NHELD; i++) {
		cr_assert_eq(waitpid(kids[i], &st, 0), kids[i]);
		ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	cr_expect_eq(ok, NHELD);
	cr_expect_eq(feed(base, &size), NHELD);
	cr_expect_eq(size, base + NHELD);
	cr_expect_gt(checkpoint_size(), base, "the checkpoint over the six");
}

/*
 * Pipelined: the syncer's fdatasync is held with its batch committed; the
 * writer prepares the rest but writes no frame until the sync returns.
 */
Test(durable, checkpoint_and_feed_wait_for_the_fdatasync, .init = setup_pipelined)
{
	held_commits_are_not_served(1);
}

/* Inline: the writer's own commit waits in its fdatasync, committed. */
Test(durable, inline_commit_is_not_served_before_its_fdatasync, .init = setup_inline)
{
	held_commits_are_not_served(1);
}
