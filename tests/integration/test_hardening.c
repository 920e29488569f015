/*
 * Staying closed and up under bad certificates, floods and bad bytes: the
 * real daemon, real TLS, hostile clients made by the test (D10).
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct daemon d;

H_SUITE(hardening, d, H_DEMO_DATA, 120);

static int
ask(struct ss_client *c)
{
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e;
	char					 err[512];
	int					 status;

	rq.subject_id = "S1001";
	rq.purpose = "child_protection";
	rq.record_type = "person";
	rq.case_reference = "C";
	rq.practitioner = "P";
	if (ss_disclose(c, &rq, &r, &e, &status, err, sizeof(err)) == -1)
		return 0;
	if (r)
		safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	if (e)
		safeshare__v1__error__free_unpacked(e, NULL);
	return status;
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
probe_bad(const char *name)
{
	char cert[600], key[600];

	snprintf(cert, sizeof(cert), "%s/bad/%s.crt", d.dir, name);
	snprintf(key, sizeof(key), "%s/bad/%s.key", d.dir, name);
	return h_tls_probe(&d, cert, key);
}

/* The store, the log and its subject index hold personal data: private files. */
Test(hardening, files_it_makes_are_private)
{
	char		 idx[600];
	const char	*files[3];
	struct stat	 sb;

	H_SQLITE_ONLY("the modes of the store, log and index files");
	snprintf(idx, sizeof(idx), "%s-subjects", d.audit);
	files[0] = d.store;
	files[1] = d.audit;
	files[2] = idx;
	h_start(&d);
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(stat(files[i], &sb), 0, "%s", files[i]);
		cr_expect_eq(sb.st_mode & 077, 0, "%s is mode %o", files[i],
		    (unsigned)(sb.st_mode & 0777));
	}
}

Test(hardening, certificate_matrix_is_refused_before_the_policy)
{
	char cmd[4096], cert[600], key[600];

	snprintf(cmd, sizeof(cmd), "%s/tests/integration/badcerts.sh %s >/dev/null",
	    SOURCE_DIR, d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0, "badcerts.sh failed");
	snprintf(d.crl, sizeof(d.crl), "pki/crl.pem");
	h_write_config(&d, d.audit);
	h_start(&d);

	cr_expect_eq(probe_bad("expired"), 0, "expired");
	cr_expect_eq(probe_bad("notyet"), 0, "not yet valid");
	cr_expect_eq(probe_bad("revoked"), 0, "revoked (CRL)");
	cr_expect_eq(probe_bad("serveronly"), 0, "no clientAuth purpose");
	cr_expect_eq(probe_bad("selfsigned"), 0, "self-signed");
	cr_expect_eq(h_tls_probe(&d, NULL, NULL), 0, "no certificate");
	/* The store the daemon opened is logged at start (issue 15); nothing else. */
	cr_expect_eq(h_log_count(&d, "kind != 'store'"), 0, "none reached the policy step");
	/* Each refusal is counted under its reason in /metrics. */
	{
		static const char *const want[] = { "expired", "not_yet_valid", "revoked",
		    "bad_purpose", "unknown_ca", "no_certificate" };
		char	*body, line[128];

		cr_assert_eq(h_get(&d, "auditor", "/metrics", &body), 200);
		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
			snprintf(line, sizeof(line), "safeshare_tls_handshake_failures_total"
			    "{reason=\"%s\"} 1\n", want[i]);
			cr_expect(strstr(body, line) != NULL, "no %s", line);
		}
		free(body);
	}

	/* The genuine police certificate still works... */
	snprintf(cert, sizeof(cert), "%s/pki/police.crt", d.dir);
	snprintf(key, sizeof(key), "%s/pki/police.key", d.dir);
	cr_expect_eq(h_tls_probe(&d, cert, key), 1);

	/* ... until it is revoked and the CRL reloaded with SIGHUP. */
	snprintf(cmd, sizeof(cmd), "openssl ca -batch -config %s/ca-work/ca.cnf -revoke %s "
	    ">/dev/null 2>&1 && openssl ca -batch -config %s/ca-work/ca.cnf -gencrl -out "
	    "%s/pki/crl.pem >/dev/null 2>&1", d.dir, cert, d.dir, d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0);
	kill(d.pid, SIGHUP);
	usleep(300 * 1000);
	cr_expect_eq(h_tls_probe(&d, cert, key), 0, "revoked after reload");
}

Test(hardening, per_agency_rate_limit_answers_429)
{
	struct ss_client	*police, *health;
	int			 ok = 0, limited = 0;

	snprintf(d.extra, sizeof(d.extra), "limits:\n  rate_per_agency: 5\n  rate_burst: 5\n");
	h_write_config(&d, d.audit);
	h_start(&d);
	police = h_client(&d, "police");
	health = h_client(&d, "health_trust");
	for (int i = 0; i < 10; i++) {
		int st = ask(police);

		ok += st == 200;
		limited += st == 429;
	}
	cr_expect_eq(ok, 5, "the burst");
	cr_expect_eq(limited, 5, "then 429");
	cr_expect_neq(ask(health), 429, "other agencies are not affected");
	usleep(1200 * 1000);
	cr_expect_eq(ask(police), 200, "tokens come back with time");
	cr_expect_eq(h_log_count(&d, "agency = 'police'"), 6, "429s are not decisions");
	ss_client_free(police);
	ss_client_free(health);
}

/*
 * Issue 14 item 14: refusals before the agency is known are logged at
 * most limits.rate_unknown a second (after a burst) per certificate and
 * per address; the rest are not logged, only counted in /metrics. An
 * unknown certificate once wrote 32,147 entries in 10 s. Such a
 * certificate now gets nothing (items 7 and 13): its handshake is refused
 * once the chain verifies, no request is read, and the disclosure log gets
 * nothing; the one stderr line per refused connection is what is limited.
 */
Test(hardening, refusals_of_unknown_certificates_are_rate_limited)
{
	char	 cmd[1024], *body, *m, *out;
	double	 t0;
	long	 logged, unlogged;

	snprintf(cmd, sizeof(cmd), "%s/deploy/pki.sh %s/pki stranger2 >/dev/null",
	    SOURCE_DIR, d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0);
	/* The defaults: limits.rate_unknown 1, limits.rate_unknown_burst 10. */
	h_start(&d);
	t0 = now_seconds();
	for (int i = 0; i < 30; i++) {
		struct ss_client *c = h_client(&d, "stranger");
		int st = ask(c);

		cr_expect(st == 0, "status %d", st);
		ss_client_free(c);
	}
	{
		/* Another unknown certificate from the same address: the address's bucket. */
		struct ss_client *c = h_client(&d, "stranger2");

		cr_expect_eq(ask(c), 0);
		ss_client_free(c);
	}
	cr_expect_eq(h_log_count(&d, "kind != 'store'"), 0,
	    "nothing reaches the disclosure log (but the store opened, issue 15)");
	usleep(100 * 1000);	/* info lines leave at the end of a loop round */
	snprintf(cmd, sizeof(cmd), "grep -c 'event=connection_refused' %s", d.log);
	h_run(cmd, &out);
	logged = atol(out);
	free(out);
	cr_expect_geq(logged, 10, "the burst is logged");
	cr_expect_leq(logged, 10 + (long)(now_seconds() - t0) + 1,
	    "%ld refusals logged", logged);
	cr_assert_eq(h_get(&d, "auditor", "/metrics", &body), 200);
	cr_assert_not_null(m = strstr(body, "\nsafeshare_refusals_unlogged_total "));
	unlogged = atol(m + strlen("\nsafeshare_refusals_unlogged_total "));
	cr_expect_eq(logged + unlogged, 31, "%ld logged, %ld not", logged, unlogged);
	cr_expect(strstr(body, "safeshare_connections_closed_total"
	    "{reason=\"unknown_agency\"} 31\n") != NULL, "every one counted");
	free(body);
	{
		struct ss_client *c = h_client(&d, "police");

		cr_expect_eq(ask(c), 200, "agencies are not affected");
		ss_client_free(c);
	}
}

static int
raw_connect(int nonblock)
{
	struct sockaddr_in	 sin;
	int			 fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd == -1)
		return -1;
	if (nonblock)
		fcntl(fd, F_SETFL, O_NONBLOCK);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)d.port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

Test(hardening, stalled_handshakes_do_not_starve_a_working_client)
{
	enum { IDLE = 2000 };
	static int	 fds[IDLE];
	struct rlimit	 rl;
	struct ss_client *c;
	int		 n = 0, ok = 0;

	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
	setrlimit(RLIMIT_NOFILE, &rl);
	snprintf(d.extra, sizeof(d.extra), "limits:\n  max_connections: 512\n");
	h_write_config(&d, d.audit);
	h_start(&d);
	c = h_client(&d, "police");
	cr_assert_eq(ask(c), 200, "a legitimate client, connected first");
	/* 2,000 connections that never send a byte of TLS. */
	for (int i = 0; i < IDLE && (size_t)i + 64 < rl.rlim_cur; i++)
		if ((fds[n] = raw_connect(1)) != -1)
			n++;
	cr_expect_gt(n, 1000, "could open only %d connections", n);
	for (int i = 0; i < 20; i++)
		ok += ask(c) == 200;
	cr_expect_eq(ok, 20, "the working client kept getting answers");
	for (int i = 0; i < n; i++)
		close(fds[i]);
	usleep(500 * 1000);
	ss_client_free(c);
	c = h_client(&d, "police");
	cr_expect_eq(ask(c), 200, "new connections are accepted again");
	ss_client_free(c);
}

Test(hardening, garbage_and_oversized_input_leave_it_running)
{
	struct ss_client	*c;
	char			 cert[600], key[600], buf[512], *big;
	int			 fd;
	ssize_t			 n;

	h_start(&d);
	/* Plain HTTP, and random bytes, where TLS was expected. */
	fd = raw_connect(0);
	cr_assert_neq(fd, -1);
	n = write(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 34);
	cr_expect_eq(n, 34);
	n = read(fd, buf, sizeof(buf));
	cr_expect(n <= 0 || strncmp(buf, "HTTP/", 5) != 0, "no HTTP answer without TLS");
	close(fd);
	fd = raw_connect(0);
	for (int i = 0; i < 64; i++)
		buf[i] = (char)(i * 37 + 11);
	n = write(fd, buf, 64);
	close(fd);

	/* A head far over limits.max_headers. */
	snprintf(cert, sizeof(cert), "%s/pki/police.crt", d.dir);
	snprintf(key, sizeof(key), "%s/pki/police.key", d.dir);
	big = malloc(40000);
	n = snprintf(big, 40000, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: ");
	memset(big + n, 'a', 30000);
	memcpy(big + n + 30000, "\r\n\r\n", 4);
	n = h_tls_exchange(&d, cert, key, big, (size_t)n + 30004, buf, sizeof(buf));
	cr_expect(n <= 0 || strncmp(buf, "HTTP/1.1 200", 12) != 0, "oversized head refused");
	free(big);

	c = h_client(&d, "police");
	cr_expect_eq(ask(c), 200, "still serving");
	ss_client_free(c);
	cr_expect_eq(h_stop(&d), 0, "and stops cleanly");
}

/* Milliseconds until the server closes fd (read returns 0 or an error), or -1. */
static long
ms_until_closed(int fd, int max_ms)
{
	struct timespec	 t0, t1;
	char		 b;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct timeval tv = { 0, 200 * 1000 };

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (read(fd, &b, 1) <= 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			break;
		errno = 0;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >
		    max_ms)
			return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
}

Test(hardening, handshake_deadline_closes_silent_connections)
{
	int	 fd;
	long	 ms;

	snprintf(d.extra, sizeof(d.extra), "limits:\n  handshake_timeout: 2\n");
	h_write_config(&d, d.audit);
	h_start(&d);
	fd = raw_connect(0);
	cr_assert_neq(fd, -1);
	/* Half a ClientHello's record header, then nothing. */
	cr_assert_eq(write(fd, "\x16\x03\x01", 3), 3);
	ms = ms_until_closed(fd, 8000);
	close(fd);
	cr_expect(ms >= 1500 && ms <= 4000, "closed after %ld ms, expected ~2000", ms);
}

Test(hardening, slow_clients_are_cut_off_while_others_are_served)
{
	static const char	 head[] = "POST /v1/disclosures HTTP/1.1\r\nHost: x\r\n"
	    "Content-Type: application/x-protobuf\r\nContent-Length: 40\r\n\r\n";
	char			 cert[600], key[600];
	struct ss_client	*c;
	SSL			*slow_head, *slow_body;
	struct timespec		 t0, t1;
	int			 ok = 0, head_open = 1, body_open = 1;
	size_t			 sent = 0;

	snprintf(d.extra, sizeof(d.extra), "limits:\n  request_timeout: 3\n");
	h_write_config(&d, d.audit);
	h_start(&d);
	snprintf(cert, sizeof(cert), "%s/pki/police.crt", d.dir);
	snprintf(key, sizeof(key), "%s/pki/police.key", d.dir);
	slow_head = h_tls_connect(&d, cert, key);
	slow_body = h_tls_connect(&d, cert, key);
	cr_assert_eq(SSL_connect(slow_head), 1);
	cr_assert_eq(SSL_connect(slow_body), 1);
	/* The second sends its head at once and then trickles its body. */
	cr_assert_gt(SSL_write(slow_body, head, (int)strlen(head)), 0);
	c = h_client(&d, "police");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* One byte every 250 ms each: never silent, so only the deadline helps. */
	for (int i = 0; i < 40 && (head_open || body_open); i++) {
		struct timespec ts = { 0, 250 * 1000 * 1000 };

		if (head_open && SSL_write(slow_head, head + sent % strlen(head), 1) <= 0)
			head_open = 0;
		if (body_open && SSL_write(slow_body, "x", 1) <= 0)
			body_open = 0;
		sent++;
		ok += ask(c) == 200;
		nanosleep(&ts, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_expect(!head_open, "a head trickled for 10 s was not cut off");
	cr_expect(!body_open, "a body trickled for 10 s was not cut off");
	/*
	 * About 3 s, and a round or two of the loop (250 ms and a disclosure,
	 * slower on a TSan daemon or a loaded machine) to see it: 8 s, short
	 * of the 10 s the loop trickles for.
	 */
	cr_expect_leq(t1.tv_sec - t0.tv_sec, 8, "cut off after ~3 s, took %ld s",
	    (long)(t1.tv_sec - t0.tv_sec));
	cr_expect_eq(ok, (int)sent, "the working client was answered every time");
	h_tls_close(slow_head);
	h_tls_close(slow_body);
	ss_client_free(c);
	cr_expect_eq(h_log_count(&d, "decision = 'allow'"), ok);
}

/*
 * One GET /healthz with openssl s_client, saving the session (its ticket)
 * to sess and resuming from it when it exists; 1 if the session was reused.
 */
static int
resumed(const char *sess)
{
	char	 cmd[2048], *out;
	int	 reused;

	/* A disclosure request too: a resumed session must still say who asks. */
	snprintf(cmd, sizeof(cmd), "(printf 'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"
	    "POST /v1/disclosures HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 0\\r\\n\\r\\n'; "
	    "sleep 0.5) | timeout 10 openssl s_client -connect 127.0.0.1:%d -cert "
	    "%s/pki/police.crt -key %s/pki/police.key -CAfile %s/pki/ca.crt "
	    "-sess_out %s %s%s 2>&1", d.port, d.dir, d.dir, d.dir, sess,
	    access(sess, F_OK) == 0 ? "-sess_in " : "", access(sess, F_OK) == 0 ? sess : "");
	h_run(cmd, &out);
	cr_assert(strstr(out, "HTTP/1.1 200") != NULL, "%s", out);
	cr_assert(strstr(out, "no_identity") == NULL && strstr(out, "HTTP/1.1 403") == NULL,
	    "the client's identity is known on every connection: %s", out);
	reused = strstr(out, "\nReused, ") != NULL;
	free(out);
	return reused;
}

Test(hardening, session_tickets_resume_until_the_keys_rotate)
{
	char sess[600];

	snprintf(d.extra, sizeof(d.extra), "tls:\n  ticket_rotation: 2\n");
	h_write_config(&d, d.audit);
	h_start(&d);
	snprintf(sess, sizeof(sess), "%s/session.pem", d.dir);
	cr_expect_eq(resumed(sess), 0, "the first connection is a full handshake");
	cr_expect_eq(resumed(sess), 1, "a fresh ticket resumes the session");
	sleep(3);
	cr_expect_eq(resumed(sess), 0, "after the keys rotate an old ticket needs a "
	    "full handshake");
	cr_expect_eq(resumed(sess), 1);
	/* A TLS reload (new certificates or CRL) forgets every session too. */
	cr_assert_eq(kill(d.pid, SIGHUP), 0);
	usleep(500000);
	cr_expect_eq(resumed(sess), 0, "after a reload a session needs a full handshake");
}
