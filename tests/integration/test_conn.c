/*
 * The connection layer under hostile clients: memory per connection,
 * shutdown while a thread still works for a client, revocation of open
 * connections, and fair shares of the connection slots. The real daemon,
 * real TLS (D10).
 */
#define _GNU_SOURCE		/* strptime() */
#include <sys/socket.h>
#include <poll.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/pem.h>
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
#include "pglog.h"
#include "safeshare.pb-c.h"

static struct daemon d;

H_SUITE(conn, d, H_DEMO_DATA, 180);

static void
pki_pair(const char *agency, char *cert, char *key, size_t len)
{
	snprintf(cert, len, "%s/pki/%s.crt", d.dir, agency);
	snprintf(key, len, "%s/pki/%s.key", d.dir, agency);
}

/*
 * A log of n entries with signed checkpoints (n / 5 on PostgreSQL),
 * written before the daemon starts, so that verifying it takes a while.
 */
static void
big_log(size_t n)
{
	enum { BATCH = 5000 };
	static struct audit_entry	 es[BATCH];
	static struct audit_entry	*ps[BATCH];
	struct audit			*a = NULL;
	char				 key[600], err[256];

	struct pglog			*pl = NULL;
	EVP_PKEY			*pk = NULL;
	FILE				*fp;

	snprintf(key, sizeof(key), "%s/pki/audit-signing.key", d.dir);
	/*
	 * On PostgreSQL the daemon's database, through the log module (one
	 * round trip per entry: fewer entries, and its verify is slower).
	 */
	if (d.pg_conninfo[0] != '\0') {
		n /= 5;
		cr_assert_not_null(fp = fopen(key, "r"));
		cr_assert_not_null(pk = PEM_read_PrivateKey(fp, NULL, NULL, NULL));
		fclose(fp);
		cr_assert_eq(pglog_open(&pl, d.pg_conninfo, err, sizeof(err)), 0, "%s", err);
		pglog_set_signer(pl, pk);
		EVP_PKEY_free(pk);
	} else {
		cr_assert_eq(audit_open(&a, d.audit, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(audit_set_signer(a, key, 1000, 60, err, sizeof(err)), 0,
		    "%s", err);
	}
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
		if (pl != NULL)
			cr_assert_eq(pglog_append(pl, ps, BATCH, NULL, err, sizeof(err)),
			    0, "%s", err);
		else
			cr_assert_eq(audit_append(a, ps, BATCH, err, sizeof(err)), 0,
			    "%s", err);
	}
	if (pl != NULL)
		pglog_close(pl);
	else
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
	struct timeval		 wait = { 60, 0 };
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
	/* Verifying takes about a second here, far longer under ASan. */
	setsockopt(SSL_get_fd(ssl), SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
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
#ifdef __SANITIZE_ADDRESS__
	{
		/*
		 * ASan keeps freed memory in a quarantine of 256 MiB, which
		 * RSS would count; shrink it so RSS shows what the daemon holds.
		 */
		const char	*o = getenv("ASAN_OPTIONS");
		char		 opts[512];

		snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=1",
		    o ? o : "", o && *o ? ":" : "");
		setenv("ASAN_OPTIONS", opts, 1);
	}
#endif
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

/* An established TLS connection with agency's certificate, sending nothing. */
static SSL *
idle_tls(const char *agency)
{
	char	 cert[600], key[600];
	SSL	*ssl;

	pki_pair(agency, cert, key, sizeof(cert));
	ssl = h_tls_connect(&d, cert, key);
	cr_assert_eq(SSL_connect(ssl), 1, "handshake with %s's certificate", agency);
	return ssl;
}

/*
 * 1 if the daemon has closed the connection (within max_ms), 0 if it is
 * still open. TLS 1.3 session tickets arrive as data and are skipped.
 */
static int
tls_closed(SSL *ssl, int max_ms)
{
	struct pollfd	 pfd = { SSL_get_fd(ssl), POLLIN, 0 };
	double		 t0 = now_s();
	char		 b[256];

	fcntl(pfd.fd, F_SETFL, fcntl(pfd.fd, F_GETFL) | O_NONBLOCK);
	while ((now_s() - t0) * 1000 < max_ms) {
		int n, e;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = SSL_read(ssl, b, sizeof(b));
		e = SSL_get_error(ssl, n);
		ERR_clear_error();
		if (n <= 0 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return 1;
	}
	return 0;
}

/* One GET on an open connection; 1 if an HTTP 200 came back. */
static int
tls_get_ok(SSL *ssl, const char *path)
{
	char	 req[256], buf[512];
	int	 n;

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
	if (SSL_write(ssl, req, (int)strlen(req)) <= 0) {
		ERR_clear_error();
		return 0;
	}
	n = SSL_read(ssl, buf, sizeof(buf) - 1);
	ERR_clear_error();
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strncmp(buf, "HTTP/1.1 200", 12) == 0;
}

/* A counter or gauge from /metrics (asked with the auditor's certificate). */
static long
metric(const char *name)
{
	char	*body, *p;
	long	 v = -1;

	cr_assert_eq(h_get(&d, "auditor", "/metrics", &body), 200);
	if ((p = strstr(body, name)) != NULL && p[strlen(name)] == ' ')
		v = strtol(p + strlen(name) + 1, NULL, 10);
	free(body);
	return v;
}

static int
disclosure_ok(struct ss_client *c)
{
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__DisclosureResponse	*r = NULL;
	Safeshare__V1__Error			*e = NULL;
	char					 err[512];
	int					 status = 0;

	rq.subject_id = "S1001";
	rq.purpose = "child_protection";
	rq.record_type = "person";
	rq.case_reference = "C";
	rq.practitioner = "P";
	if (ss_disclose(c, &rq, &r, &e, &status, err, sizeof(err)) == -1)
		cr_log_warn("disclosure: %s", err);
	if (r)
		safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	if (e)
		safeshare__v1__error__free_unpacked(e, NULL);
	return status == 200;
}

/*
 * Issue 14 items 7 and 13: a certificate that chains to our CA but maps to
 * no agency gets nothing, not /healthz, not /metrics; its handshake is
 * refused with a bad_certificate alert, with one log line, counted.
 */
Test(conn, unknown_agency_gets_nothing_not_even_health)
{
	static const char	*paths[] = { "/healthz", "/metrics" };
	char			 cert[600], key[600], req[128], buf[512], *log;

	h_start(&d);
	pki_pair("stranger", cert, key, sizeof(cert));
	for (size_t i = 0; i < 2; i++) {
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", paths[i]);
		cr_expect_eq(h_tls_exchange(&d, cert, key, req, strlen(req), buf,
		    sizeof(buf)), 0, "%s answered an unknown agency: %.40s", paths[i], buf);
	}
	{
		struct ss_client	*c = h_client(&d, "stranger");
		Safeshare__V1__Health	*h = NULL;
		char			 err[256];
		int			 status = 0;

		cr_expect_eq(ss_health(c, &h, &status, err, sizeof(err)), -1);
		cr_expect(strstr(err, "refused our certificate") != NULL,
		    "the client is told why: %s", err);
		cr_expect(strstr(err, "no agency in the sharing protocol") != NULL,
		    "and what to check: %s", err);
		ss_client_free(c);
	}
	cr_expect_eq(metric("safeshare_connections_closed_total{reason=\"unknown_agency\"}"),
	    3);
	cr_expect_eq(h_log_count(&d, "kind != 'store'"), 0,
	    "nothing reached the policy step (store entries: issue 15)");
	pki_pair("police", cert, key, sizeof(cert));
	cr_expect_eq(h_tls_probe(&d, cert, key), 1, "a known agency is answered");
	h_stop(&d);
	h_run("true", NULL);
	{
		char cmd[700];

		snprintf(cmd, sizeof(cmd), "grep -c 'event=connection_refused "
		    "reason=unknown_agency fp=[0-9a-f]\\{64\\} addr=127.0.0.1' %s", d.log);
		h_run(cmd, &log);
		cr_expect_eq(atoi(log), 3, "one log line per refused connection: %s", log);
		free(log);
	}
}

/*
 * Issue 14 item 13: when every slot is taken by idle connections, a new
 * one closes the connection idle longest instead of waiting in the
 * kernel's queue until an idle timeout.
 */
Test(conn, idle_connections_do_not_lock_out_a_new_client)
{
	enum { SLOTS = 16, IDLE = 40 };
	SSL			*idle[IDLE];
	struct ss_client	*c;
	int			 open = 0;

	char			 cmd[700];

	snprintf(d.extra, sizeof(d.extra), "limits:\n  max_connections: %d\n"
	    "  handshake_timeout: 60\n", SLOTS);
	h_write_config(&d, d.audit);
	/* Idle connections are not closed for silence during the test. */
	snprintf(cmd, sizeof(cmd), "sed -i 's/^  timeout: 10$/  timeout: 60/' %s", d.conf);
	cr_assert_eq(h_run(cmd, NULL), 0);
	h_start(&d);
	for (int i = 0; i < IDLE; i++)
		idle[i] = idle_tls("housing");
	c = h_client(&d, "police");
	cr_expect(disclosure_ok(c), "a new client got in while %d idle connections "
	    "held every slot", IDLE);
	cr_expect(disclosure_ok(c));
	for (int i = 0; i < IDLE; i++) {
		open += !tls_closed(idle[i], i < IDLE - SLOTS ? 300 : 20);
		h_tls_close(idle[i]);
	}
	cr_expect_leq(open, SLOTS, "%d idle connections kept", open);
	ss_client_free(c);
	cr_expect_geq(metric("safeshare_connections_closed_total{reason=\"evicted\"}"),
	    IDLE - SLOTS);
}

/* Issue 14 item 13: one certificate gets limits.max_connections_per_certificate. */
Test(conn, one_certificate_gets_its_share_of_connections)
{
	enum { CAP = 4, IDLE = 12 };
	SSL			*idle[IDLE];
	struct ss_client	*c;
	int			 open = 0;

	snprintf(d.extra, sizeof(d.extra), "limits:\n  max_connections_per_certificate: %d\n",
	    CAP);
	h_write_config(&d, d.audit);
	h_start(&d);
	for (int i = 0; i < IDLE; i++)
		idle[i] = idle_tls("housing");
	for (int i = 0; i < IDLE; i++) {
		int closed = tls_closed(idle[i], 300);

		/* The newest CAP stay; each one over the cap closed the one idle longest. */
		cr_expect_eq(closed, i < IDLE - CAP, "connection %d %s", i,
		    closed ? "closed" : "open");
		open += !closed;
	}
	cr_expect_eq(open, CAP);
	c = h_client(&d, "police");
	cr_expect(disclosure_ok(c), "another agency is not affected");
	ss_client_free(c);
	for (int i = 0; i < IDLE; i++)
		h_tls_close(idle[i]);
	cr_expect_eq(metric("safeshare_connections_closed_total"
	    "{reason=\"per_certificate\"}"), IDLE - CAP);
}

static int
raw_connect(void)
{
	struct sockaddr_in	 sin;
	int			 fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)d.port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/*
 * Issue 14 item 13: one address gets limits.max_connections_per_address;
 * connections that never start TLS go first, so a working client from the
 * same address still gets in.
 */
Test(conn, one_address_gets_its_share_of_connections)
{
	enum { CAP = 8, RAW = 30 };
	int			 fds[RAW];
	struct ss_client	*c;

	snprintf(d.extra, sizeof(d.extra), "limits:\n  max_connections_per_address: %d\n"
	    "  handshake_timeout: 60\n", CAP);
	h_write_config(&d, d.audit);
	h_start(&d);
	for (int i = 0; i < RAW; i++)
		fds[i] = raw_connect();
	usleep(300 * 1000);
	cr_expect_leq(metric("safeshare_connections_open"), CAP, "the cap holds");
	c = h_client(&d, "police");
	cr_expect(disclosure_ok(c), "a client from the same address got in");
	ss_client_free(c);
	for (int i = 0; i < RAW; i++)
		close(fds[i]);
	cr_expect_geq(metric("safeshare_connections_closed_total{reason=\"per_address\"}"),
	    RAW - CAP);
}

/*
 * Issue 14 item 4: revoking a certificate and reloading closes its
 * connections that are already open (kept alive), not only new ones.
 */
Test(conn, revoked_certificate_loses_its_open_connection)
{
	char	 cmd[4096], cert[600], key[600];
	SSL	*police, *health;

	snprintf(cmd, sizeof(cmd), "%s/tests/integration/badcerts.sh %s >/dev/null",
	    SOURCE_DIR, d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0, "badcerts.sh failed");
	snprintf(d.crl, sizeof(d.crl), "pki/crl.pem");
	h_write_config(&d, d.audit);
	h_start(&d);
	police = idle_tls("police");
	health = idle_tls("health_trust");
	cr_assert(tls_get_ok(police, "/healthz"));
	cr_assert(tls_get_ok(health, "/healthz"));
	pki_pair("police", cert, key, sizeof(cert));
	snprintf(cmd, sizeof(cmd), "openssl ca -batch -config %s/ca-work/ca.cnf -revoke %s "
	    ">/dev/null 2>&1 && openssl ca -batch -config %s/ca-work/ca.cnf -gencrl -out "
	    "%s/pki/crl.pem >/dev/null 2>&1", d.dir, cert, d.dir, d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0);
	cr_assert_eq(kill(d.pid, SIGHUP), 0);
	cr_expect(tls_closed(police, 3000), "the revoked certificate's connection stays open");
	cr_expect(tls_get_ok(health, "/healthz"), "another agency's connection is kept");
	h_tls_close(police);
	h_tls_close(health);
	cr_expect_eq(metric("safeshare_connections_closed_total{reason=\"revoked\"}"), 1);
}

/* Issue 14 item 4: limits.max_connection_age ends even a busy client's connection. */
Test(conn, connection_age_is_capped)
{
	SSL	*ssl;
	double	 t0;
	int	 ok = 0;

	snprintf(d.extra, sizeof(d.extra), "limits:\n  max_connection_age: 2\n");
	h_write_config(&d, d.audit);
	h_start(&d);
	t0 = now_s();
	ssl = idle_tls("police");
	/* A request every 200 ms: never idle for long, yet closed at about 2 s. */
	for (int i = 0; i < 30 && tls_get_ok(ssl, "/healthz"); i++) {
		struct timespec ts = { 0, 200 * 1000 * 1000 };

		ok++;
		nanosleep(&ts, NULL);
	}
	/*
	 * Closed by its age, not by the 30 requests' end (at least 6 s): the
	 * count and the time depend on the machine's speed (a TSan daemon on
	 * a loaded machine answers slower), so only that, and not before
	 * about 2 s (the age counts from the accept, after t0).
	 */
	cr_expect(ok >= 1 && ok < 30, "%d requests answered before the close", ok);
	cr_expect(now_s() - t0 >= 1.0, "closed after %.1f s", now_s() - t0);
	cr_log_info("%d requests, closed after %.1f s", ok, now_s() - t0);
	h_tls_close(ssl);
	cr_expect_eq(metric("safeshare_connections_closed_total{reason=\"max_age\"}"), 1);
}

/* One POST /v1/disclosures as raw HTTP/1.1, its body a packed request. */
static size_t
disclosure_http(const char *subject, char *out, size_t len)
{
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	uint8_t					 body[512];
	size_t					 blen;
	int					 n;

	rq.purpose = "child_protection";
	rq.case_reference = "CASE-1";
	rq.practitioner = "DC Jones";
	rq.subject_id = (char *)subject;
	rq.record_type = "person";
	cr_assert(safeshare__v1__disclosure_request__get_packed_size(&rq) <= sizeof(body));
	blen = safeshare__v1__disclosure_request__pack(&rq, body);
	n = snprintf(out, len, "POST /v1/disclosures HTTP/1.1\r\nHost: x\r\n"
	    "Content-Type: application/x-protobuf\r\nContent-Length: %zu\r\n\r\n", blen);
	cr_assert(n > 0 && (size_t)n + blen <= len);
	memcpy(out + n, body, blen);
	return (size_t)n + blen;
}

static int
count_str(const char *hay, size_t len, const char *needle)
{
	int	 n = 0;
	size_t	 nl = strlen(needle);

	for (size_t i = 0; i + nl <= len; i++)
		if (memcmp(hay + i, needle, nl) == 0)
			n++;
	return n;
}

/*
 * The daemon reads on while a disclosure's entry is being logged (one
 * epoll_ctl per request instead of two): requests pipelined behind it
 * wait in the input buffer and are each answered, in order, after it;
 * a client that closes meanwhile costs nothing but its reply, and the
 * entry is logged all the same (D7).
 */
Test(conn, pipelined_disclosures_answered_in_order)
{
	char	 cert[600], key[600], req[4096], buf[65536];
	size_t	 len = 0, got = 0;
	long	 before;
	SSL	*ssl;
	int	 n;

	h_start(&d);
	before = h_log_count(&d, "kind = 'disclosure'");
	pki_pair("police", cert, key, sizeof(cert));
	ssl = h_tls_connect(&d, cert, key);
	cr_assert_eq(SSL_connect(ssl), 1);
	len += disclosure_http("S1001", req + len, sizeof(req) - len);
	len += disclosure_http("S1004", req + len, sizeof(req) - len);
	len += disclosure_http("S1002", req + len, sizeof(req) - len);
	cr_assert_eq(SSL_write(ssl, req, (int)len), (int)len, "one write, three requests");
	/* Bounded: three replies, or the socket's 5 s read timeout. */
	while (count_str(buf, got, "HTTP/1.1 ") < 3 && got < sizeof(buf) &&
	    (n = SSL_read(ssl, buf + got, (int)(sizeof(buf) - got))) > 0)
		got += (size_t)n;
	cr_expect_eq(count_str(buf, got, "HTTP/1.1 200 OK"), 3, "%d replies",
	    count_str(buf, got, "HTTP/1.1 "));
	h_tls_close(ssl);
	cr_expect_eq(h_log_count(&d, "kind = 'disclosure'"), before + 3);
	cr_expect_eq(h_log_count(&d, "kind = 'disclosure' AND subject = 'S1004' AND "
	    "seq = (SELECT max(seq) - 1 FROM entries WHERE kind = 'disclosure')"), 1,
	    "logged in the order asked");

	/* Asked, then gone before the reply: logged, and the daemon serves on. */
	ssl = h_tls_connect(&d, cert, key);
	cr_assert_eq(SSL_connect(ssl), 1);
	len = disclosure_http("S1001", req, sizeof(req));
	cr_assert_eq(SSL_write(ssl, req, (int)len), (int)len);
	close(SSL_get_fd(ssl));
	SSL_free(ssl);
	for (int i = 0; i < 50 && h_log_count(&d, "kind = 'disclosure'") < before + 4; i++)
		usleep(100000);
	cr_expect_eq(h_log_count(&d, "kind = 'disclosure'"), before + 4);
	cr_expect(h_tls_probe(&d, cert, key), "the daemon still answers");
}


/*
 * A client that pipelines disclosures and reads the replies only later.
 * Once the socket is full a reply written as one record (daemon/req.c
 * send_one_record()) is left to the bufferevent, which must retry it in
 * one SSL_write() of at least its length: retried chain by chain (head,
 * then body) OpenSSL refused it, and the daemon dropped the connection
 * with the replies of logged decisions in it (D7 still held: logged, not
 * delivered). Every request sent whole gets its reply. Bounded: 10 s of
 * writing (less once the daemon stops taking more for 2 s), 2 s of not
 * reading, then reads under the socket's 5 s timeout.
 */
/* Counts needle in a stream read in pieces: a match cut by a read counts once. */
struct stream_count {
	const char	*needle;
	char		 carry[32];
	size_t		 ncarry;
	int		 n;
};

static void
stream_count(struct stream_count *sc, const char *p, size_t len)
{
	size_t	 nl = strlen(sc->needle), k;
	char	*all = malloc(sc->ncarry + len);

	cr_assert(all != NULL && nl > 1 && nl - 1 <= sizeof(sc->carry));
	memcpy(all, sc->carry, sc->ncarry);
	memcpy(all + sc->ncarry, p, len);
	sc->n += count_str(all, sc->ncarry + len, sc->needle);
	k = sc->ncarry + len < nl - 1 ? sc->ncarry + len : nl - 1;
	memcpy(sc->carry, all + sc->ncarry + len - k, k);
	sc->ncarry = k;
	free(all);
}

Test(conn, replies_read_late_all_arrive)
{
	enum { N = 8000 };
	struct stream_count	 replies = { .needle = "HTTP/1.1 " };
	struct stream_count	 oks = { .needle = "HTTP/1.1 200 OK" };
	struct stream_count	 limited = { .needle = "HTTP/1.1 429 " };
	char			 cert[600], key[600], one[1024], buf[65536];
	size_t			 olen, off = 0, sent = 0;
	double			 t0, last;
	SSL			*ssl;
	int			 fd, r;

	h_start(&d);
	pki_pair("police", cert, key, sizeof(cert));
	ssl = h_tls_connect(&d, cert, key);
	cr_assert_eq(SSL_connect(ssl), 1);
	fd = SSL_get_fd(ssl);
	olen = disclosure_http("S1001", one, sizeof(one));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	t0 = last = now_s();
	while (sent < N && now_s() - t0 < 10 && now_s() - last < 2) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };

		if ((r = SSL_write(ssl, one + off, (int)(olen - off))) > 0) {
			if ((off += (size_t)r) == olen) {
				off = 0;
				sent++;
			}
			last = now_s();
		} else
			poll(&pfd, 1, 100);
	}
	fcntl(fd, F_SETFL, 0);
	/*
	 * Read nothing for a while: the daemon answers into the socket until
	 * it is full (the client's window does not grow while it reads
	 * nothing), and the reply that finds it full is the one retried.
	 */
	sleep(2);
	while (replies.n < (int)sent &&
	    (r = SSL_read(ssl, buf, (int)sizeof(buf))) > 0) {
		stream_count(&replies, buf, (size_t)r);
		stream_count(&oks, buf, (size_t)r);
		stream_count(&limited, buf, (size_t)r);
	}
	cr_log_info("%zu requests sent whole, %d replies", sent, replies.n);
	cr_assert_gt(sent, 1000, "the daemon took %zu requests", sent);
	cr_expect_eq(replies.n, (int)sent, "%d replies to %zu requests",
	    replies.n, sent);
	/* Over limits.rate_per_agency (1,000/s by default) a request is 429. */
	cr_expect(oks.n > 0 && oks.n + limited.n == replies.n,
	    "%d replies 200 and %d 429 of %d", oks.n, limited.n, replies.n);
	h_tls_close(ssl);
	cr_expect(h_tls_probe(&d, cert, key), "the daemon still answers");
}

/*
 * Requests in separate TLS records, each head and each body its own,
 * that reach the daemon in one TCP segment (the client corks its socket
 * around the writes). The daemon
 * reads ahead (daemon/sockclose.c): one read(2) takes all the records,
 * and OpenSSL keeps those after the first, which libevent's TLS
 * bufferevent does not look for and epoll cannot report (the socket is
 * empty). Each must still be answered: disclosures, which read on while
 * their entry is logged, and refusals, after whose reply reading starts
 * again.
 */
static int
corked_records(SSL *ssl, const char *reqs[], const size_t lens[], int n,
    const char *status, int want)
{
	char	 buf[65536];
	size_t	 got = 0;
	int	 on = 1, off = 0, r;

	cr_assert_eq(setsockopt(SSL_get_fd(ssl), IPPROTO_TCP, TCP_CORK, &on,
	    sizeof(on)), 0);
	/* Head and body each a record, as clients that write them apart make. */
	for (int i = 0; i < n; i++) {
		const char	*body = strstr(reqs[i], "\r\n\r\n");
		size_t		 head;

		cr_assert_not_null(body);
		head = (size_t)(body + 4 - reqs[i]);
		cr_assert(head < lens[i]);
		cr_assert_eq(SSL_write(ssl, reqs[i], (int)head), (int)head);
		cr_assert_eq(SSL_write(ssl, reqs[i] + head, (int)(lens[i] - head)),
		    (int)(lens[i] - head));
	}
	cr_assert_eq(setsockopt(SSL_get_fd(ssl), IPPROTO_TCP, TCP_CORK, &off,
	    sizeof(off)), 0);
	/* Bounded: the replies, or the socket's 5 s read timeout. */
	while (count_str(buf, got, "HTTP/1.1 ") < want && got < sizeof(buf) &&
	    (r = SSL_read(ssl, buf + got, (int)(sizeof(buf) - got))) > 0)
		got += (size_t)r;
	return count_str(buf, got, status);
}

Test(conn, pipelined_records_in_one_segment_answered)
{
	static const char	 bad[] = "POST /v1/disclosures HTTP/1.1\r\nHost: x\r\n"
				    "Content-Type: application/x-protobuf\r\n"
				    "Content-Length: 1\r\n\r\nx";
	char			 cert[600], key[600], r1[2048], r2[2048], r3[2048];
	const char		*reqs[3] = { r1, r2, r3 };
	size_t			 lens[3];
	long			 before;
	SSL			*ssl;

	h_start(&d);
	pki_pair("police", cert, key, sizeof(cert));
	before = h_log_count(&d, "kind = 'disclosure'");
	ssl = h_tls_connect(&d, cert, key);
	cr_assert_eq(SSL_connect(ssl), 1);
	lens[0] = disclosure_http("S1001", r1, sizeof(r1));
	lens[1] = disclosure_http("S1004", r2, sizeof(r2));
	lens[2] = disclosure_http("S1002", r3, sizeof(r3));
	cr_expect_eq(corked_records(ssl, reqs, lens, 3, "HTTP/1.1 200 OK", 3), 3,
	    "three disclosures in six records, three replies");
	cr_expect_eq(h_log_count(&d, "kind = 'disclosure'"), before + 3);

	/* Refused (logged, then answered): reading stops until each reply. */
	before = h_log_count(&d, "kind = 'rejected'");
	for (int i = 0; i < 3; i++) {
		reqs[i] = bad;
		lens[i] = sizeof(bad) - 1;
	}
	cr_expect_eq(corked_records(ssl, reqs, lens, 3, "HTTP/1.1 400 ", 3), 3,
	    "three refusals in six records, three replies");
	cr_expect_eq(h_log_count(&d, "kind = 'rejected'"), before + 3);
	h_tls_close(ssl);
	cr_expect(h_tls_probe(&d, cert, key), "the daemon still answers");
}

/*
 * A reply's head as the daemon now writes it (daemon/req.c): the body is
 * handed to evhttp without a copy and the Date header comes from a
 * once-a-second cache, so check the bytes a client parses: one Date, in
 * RFC 9110's IMF-fixdate and the current second (give or take the
 * test's own delay), a Content-Length that is the body's, and the body a
 * DisclosureResponse.
 */
Test(conn, reply_head_is_one_valid_http_reply)
{
	char		 cert[600], key[600], req[2048], buf[16384], *hdr, *end, *p;
	size_t		 len, got = 0, blen;
	struct tm	 tm;
	time_t		 t, now;
	SSL		*ssl;
	int		 n;

	h_start(&d);
	pki_pair("police", cert, key, sizeof(cert));
	ssl = h_tls_connect(&d, cert, key);
	cr_assert_eq(SSL_connect(ssl), 1);
	len = disclosure_http("S1001", req, sizeof(req));
	cr_assert_eq(SSL_write(ssl, req, (int)len), (int)len);
	/* Bounded: the head and a Content-Length of body, or 5 s. */
	for (;;) {
		buf[got] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) != NULL &&
		    (p = strstr(buf, "\r\nContent-Length: ")) != NULL && p < end &&
		    got >= (size_t)(end + 4 - buf) + strtoul(p + 18, NULL, 10))
			break;
		cr_assert((n = SSL_read(ssl, buf + got, (int)(sizeof(buf) - 1 - got))) > 0,
		    "the whole reply");
		got += (size_t)n;
	}
	now = time(NULL);
	h_tls_close(ssl);
	*end = '\0';
	cr_assert(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", buf);
	cr_assert_eq(count_str(buf, (size_t)(end - buf), "\r\nDate: "), 1, "one Date: %s",
	    buf);
	hdr = strstr(buf, "\r\nDate: ") + 8;
	memset(&tm, 0, sizeof(tm));
	p = strptime(hdr, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	cr_assert(p != NULL && (*p == '\r' || *p == '\0'), "IMF-fixdate: %.40s", hdr);
	cr_expect_eq(strlen("Sun, 06 Nov 1994 08:49:37 GMT"), (size_t)(p - hdr));
	t = timegm(&tm);
	cr_expect(t <= now && t >= now - 5, "Date is now: %.29s", hdr);
	cr_assert_eq(count_str(buf, (size_t)(end - buf), "\r\nContent-Length: "), 1);
	blen = strtoul(strstr(buf, "\r\nContent-Length: ") + 18, NULL, 10);
	cr_expect_eq(got - (size_t)(end + 4 - buf), blen, "the body is Content-Length");
	cr_expect_eq(count_str(buf, (size_t)(end - buf), "\r\nCache-Control: no-store"), 1);
	{
		Safeshare__V1__DisclosureResponse *r =
		    safeshare__v1__disclosure_response__unpack(NULL, blen,
		    (const uint8_t *)end + 4);

		cr_assert_not_null(r, "the body is a DisclosureResponse");
		cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_ALLOW);
		cr_expect_gt(r->disclosure_id, 0);
		safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	}
}
