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
