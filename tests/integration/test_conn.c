/*
 * The connection layer under hostile clients: memory per connection,
 * shutdown while a thread still works for a client, revocation of open
 * connections, and fair shares of the connection slots. The real daemon,
 * real TLS (D10).
 */
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "harness.h"

static struct daemon d;

static void
setup(void)
{
	h_setup(&d);
	h_load_demo(&d);
}

static void
teardown(void)
{
	h_cleanup(&d);
}

TestSuite(conn, .init = setup, .fini = teardown, .timeout = 180);

static void
pki_pair(const char *agency, char *cert, char *key, size_t len)
{
	snprintf(cert, len, "%s/pki/%s.crt", d.dir, agency);
	snprintf(key, len, "%s/pki/%s.key", d.dir, agency);
}

/*
 * A log of n entries with signed checkpoints, written before the daemon
 * starts, so that verifying it takes a while.
 */
static void
big_log(size_t n)
{
	enum { BATCH = 5000 };
	static struct audit_entry	 es[BATCH];
	static struct audit_entry	*ps[BATCH];
	struct audit			*a;
	char				 key[600], err[256];

	snprintf(key, sizeof(key), "%s/pki/audit-signing.key", d.dir);
	cr_assert_eq(audit_open(&a, d.audit, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(audit_set_signer(a, key, 1000, 60, err, sizeof(err)), 0, "%s", err);
	for (size_t done = 0; done < n; done += BATCH) {
		for (size_t i = 0; i < BATCH; i++) {
			memset(&es[i], 0, sizeof(es[i]));
			es[i].time = 1790000000 + (int64_t)(done + i);
			es[i].kind = "disclosure";
			es[i].agency = "police";
			es[i].subject = "S1001";
			es[i].purpose = "child_protection";
			es[i].record_type = "person";
			es[i].decision = "allow";
			es[i].reason = "released";
			ps[i] = &es[i];
		}
		cr_assert_eq(audit_append(a, ps, BATCH), 0, "%s", audit_errmsg(a));
	}
	audit_close(a);
}

/*
 * Issue 14 item 3: a verification in flight when SIGTERM arrives is
 * answered before the daemon frees what its thread uses (the log's public
 * key, the event base); before, the loop ended under the thread.
 */
Test(conn, shutdown_waits_for_a_verify_in_flight)
{
	static const char	 req[] = "POST /v1/audit/verify HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 0\r\n\r\n";
	char			 cert[600], key[600], buf[512];
	struct timespec		 ts = { 0, 150 * 1000 * 1000 };
	SSL			*ssl;
	int			 n;

	big_log(300000);
	h_start(&d);
	pki_pair("auditor", cert, key, sizeof(cert));
	ssl = h_tls_connect(&d, cert, key);
	cr_assert_eq(SSL_connect(ssl), 1);
	cr_assert_eq(SSL_write(ssl, req, (int)strlen(req)), (int)strlen(req));
	nanosleep(&ts, NULL);
	cr_assert_eq(kill(d.pid, SIGTERM), 0);
	n = SSL_read(ssl, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	cr_expect(n > 0 && strncmp(buf, "HTTP/1.1 200", 12) == 0,
	    "the verify in flight was not answered: %d \"%.40s\"", n, buf);
	h_tls_close(ssl);
	cr_expect_eq(h_stop(&d), 0, "stops cleanly after answering");
}

/* The daemon's resident memory in KiB, from /proc/PID/status. */
static long
rss_kib(pid_t pid)
{
	char	 path[64], line[256];
	long	 kib = -1;
	FILE	*fp;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(fp);
	return kib;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Issue 14 item 2: clients that pipeline requests and never read a reply
 * (four of them, 48 MiB of requests each at most, 8 s at most) do not grow
 * the daemon's memory: it stops reading from a connection whose reply has
 * not left, and buffers a bounded amount of input.
 */
Test(conn, pipelining_without_reading_keeps_memory_bounded)
{
	enum { NCLIENTS = 4, CHUNK = 16384 };
	static const char	 get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char	 post[] = "POST /v1/holder/ops HTTP/1.1\r\nHost: x\r\n"
	    "Content-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";
	static char		 chunk[2][CHUNK];
	size_t			 clen[2] = { 0, 0 };
	const size_t		 cap = 48u << 20;
	char			 cert[600], key[600];
	SSL			*ssl[NCLIENTS];
	size_t			 sent[NCLIENTS] = { 0 }, total = 0;
	int			 closed[NCLIENTS] = { 0 };
	double			 last_progress[NCLIENTS], t0;
	long			 before, peak = 0, after;
	int			 live = NCLIENTS;
	struct ss_client	*c;

	/* Chunks of whole requests, over and over. */
	for (int k = 0; k < 2; k++) {
		const char	*r = k ? post : get;
		size_t		 rl = strlen(r);

		for (clen[k] = 0; clen[k] + rl <= CHUNK; clen[k] += rl)
			memcpy(chunk[k] + clen[k], r, rl);
	}
	h_start(&d);
	before = rss_kib(d.pid);
	for (int i = 0; i < NCLIENTS; i++) {
		pki_pair(i % 2 ? "health_trust" : "police", cert, key, sizeof(cert));
		ssl[i] = h_tls_connect(&d, cert, key);
		cr_assert_eq(SSL_connect(ssl[i]), 1);
		fcntl(SSL_get_fd(ssl[i]), F_SETFL, O_NONBLOCK);
		last_progress[i] = now_s();
	}
	t0 = now_s();
	while (live > 0 && now_s() - t0 < 8) {
		live = 0;
		for (int i = 0; i < NCLIENTS; i++) {
			int n;

			/* Done: the cap, or no progress for 1.5 s (the daemon stopped reading). */
			if (sent[i] >= cap || now_s() - last_progress[i] > 1.5)
				continue;
			live++;
			n = SSL_write(ssl[i], chunk[i % 2] + sent[i] % clen[i % 2],
			    (int)(clen[i % 2] - sent[i] % clen[i % 2]));
			if (n > 0) {
				sent[i] += (size_t)n;
				last_progress[i] = now_s();
			} else if (SSL_get_error(ssl[i], n) == SSL_ERROR_WANT_WRITE) {
				usleep(1000);
			} else {
				closed[i] = 1;
				sent[i] = cap;
			}
			ERR_clear_error();
		}
		if (rss_kib(d.pid) > peak)
			peak = rss_kib(d.pid);
	}
	for (int i = 0; i < NCLIENTS; i++) {
		cr_log_info("client %d: sent %zu KiB, connection %s", i, sent[i] >> 10,
		    closed[i] ? "closed" : "open");
		total += sent[i];
	}
	after = rss_kib(d.pid);
	if (after > peak)
		peak = after;
	cr_log_info("sent %zu KiB in all; daemon RSS %ld KiB before, peak %ld KiB",
	    total >> 10, before, peak);
	cr_expect_lt(peak - before, 32 * 1024, "RSS grew from %ld to %ld KiB while "
	    "clients sent %zu KiB of requests without reading", before, peak, total >> 10);
	/* Others are served meanwhile. */
	c = h_client(&d, "housing");
	{
		Safeshare__V1__Health	*h = NULL;
		char			 err[256];
		int			 status = 0;

		cr_expect_eq(ss_health(c, &h, &status, err, sizeof(err)), 0, "%s", err);
		cr_expect_eq(status, 200);
		if (h != NULL)
			safeshare__v1__health__free_unpacked(h, NULL);
	}
	ss_client_free(c);
	for (int i = 0; i < NCLIENTS; i++) {
		int fd = SSL_get_fd(ssl[i]);

		SSL_free(ssl[i]);
		close(fd);
	}
}
