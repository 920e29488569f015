/*
 * Running it: what safeshared -t checks, what start says when it cannot
 * listen, the process hardening the systemd unit relies on, and the errors
 * people see on the way in (issue 14 items 16 and 17, issue 22).
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"

static struct daemon d;

H_SUITE(ops, d, H_PKI, 0);

/* Replaces one line of the test's config (a sed expression). */
static void
edit_config(const char *sed)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "sed -i '%s' %s", sed, d.conf);
	cr_assert_eq(h_run(cmd, NULL), 0);
}

/* Runs safeshared -t on the test's config; the exit status, output in *out. */
static int
check_config(char **out)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "%s -t -c %s 2>&1", SAFESHARED_BIN, d.conf);
	return h_run(cmd, out);
}

/* Issue 14 item 17: -t said ok to a 0644 signing key that start refused. */
Test(ops, check_refuses_readable_signing_key)
{
	char	 key[600], *out = NULL;

	cr_assert_eq(check_config(&out), 0, "the test config is valid: %s", out);
	free(out);
	snprintf(key, sizeof(key), "%s/pki/audit-signing.key", d.dir);
	cr_assert_eq(chmod(key, 0644), 0);
	cr_assert_neq(check_config(&out), 0, "-t accepted a 0644 signing key");
	cr_assert_not_null(strstr(out, "audit.signing_key"), "%s", out);
	cr_assert_not_null(strstr(out, "chmod 600"), "%s", out);
	free(out);
}

/* Issue 22: -t said ok, then start failed with "unable to open database file". */
Test(ops, check_refuses_missing_database_directory)
{
	char	*out = NULL;

	H_SQLITE_ONLY("the store file's directory");
	edit_config("s|^store: .*|store: nowhere/store.db|");
	cr_assert_neq(check_config(&out), 0, "-t accepted a store in a missing directory");
	cr_assert_not_null(strstr(out, "store:"), "%s", out);
	cr_assert_not_null(strstr(out, "No such file or directory"), "%s", out);
	free(out);
}

/* Issue 22: cannot listen says why, and what to change. */
Test(ops, start_says_why_it_cannot_listen)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	char			 cmd[1024], *out = NULL;
	int			 fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(listen(fd, 1), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(cmd, sizeof(cmd), "s|^port: .*|port: %d|", ntohs(sin.sin_port));
	edit_config(cmd);
	/* Bounded: the daemon exits at once when it cannot bind. */
	snprintf(cmd, sizeof(cmd), "timeout 20 %s -c %s 2>&1", SAFESHARED_BIN, d.conf);
	cr_assert_eq(h_run(cmd, &out), 1, "%s", out);
	cr_assert_not_null(strstr(out, "Address already in use"), "%s", out);
	cr_assert_not_null(strstr(out, "0 for any"), "%s", out);
	free(out);
	close(fd);
}

/* Issue 14 item 17: no core files of a process that holds keys and records. */
Test(ops, daemon_makes_no_core_files)
{
	char	 path[64], line[256];
	FILE	*fp;
	int	 seen = 0;

	h_start(&d);
	snprintf(path, sizeof(path), "/proc/%d/limits", (int)d.pid);
	cr_assert_not_null(fp = fopen(path, "r"));
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, "Max core file size", 18) == 0) {
			unsigned long soft = 1, hard = 1;

			seen = sscanf(line + 18, "%lu %lu", &soft, &hard) == 2 &&
			    soft == 0 && hard == 0;
			cr_assert(seen, "core limit not 0: %s", line);
		}
	fclose(fp);
	cr_assert(seen);
}

/* The same call the daemon makes first thing, observed from inside. */
Test(ops, no_dumps_clears_dumpable)
{
	struct rlimit rl;

	cr_assert_eq(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);
	cr_assert_eq(proc_no_dumps(), 0);
	cr_assert_eq(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	cr_assert_eq(getrlimit(RLIMIT_CORE, &rl), 0);
	cr_assert_eq(rl.rlim_cur, 0);
}

/* Runs `safeshare health` with the given server, cert/key dir and CA; exit status. */
static int
health(const char *server, const char *certdir, const char *cadir, char **out)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "SAFESHARE_SERVER=%s SAFESHARE_CERT=%s/%s/police.crt "
	    "SAFESHARE_KEY=%s/%s/police.key SAFESHARE_CA=%s/%s/ca.crt timeout 30 %s "
	    "health 2>&1", server, d.dir, certdir, d.dir, certdir, d.dir, cadir,
	    SAFESHARE_BIN);
	return h_run(cmd, out);
}

/*
 * Issue 14 item 16: with nothing listening the CLI said "TLS failure ...
 * error:00000005:lib(0)::reason(5)". A refused connection is said so.
 */
Test(ops, client_says_connection_refused)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	char			 server[64], want[128], *out = NULL;
	int			 fd;

	/* A port that was free a moment ago and has no listener now. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	snprintf(server, sizeof(server), "127.0.0.1:%d", ntohs(sin.sin_port));
	cr_assert_eq(health(server, "pki", "pki", &out), 5, "%s", out);
	snprintf(want, sizeof(want), "cannot connect to %s: Connection refused", server);
	cr_assert_not_null(strstr(out, want), "%s", out);
	cr_assert_null(strstr(out, "TLS"), "%s", out);
	free(out);
}

/* ... and a real TLS failure keeps TLS wording and names its cause. */
Test(ops, client_names_the_tls_cause)
{
	char *out = NULL;

	h_start(&d);
	/* Our certificate from a CA the server does not trust. */
	cr_assert_eq(health(d.server, "other", "pki", &out), 5, "%s", out);
	cr_assert_not_null(strstr(out, "TLS failure"), "%s", out);
	cr_assert_not_null(strstr(out, "unknown CA"), "%s", out);
	free(out);
	/* The server's certificate from a CA we do not trust. */
	cr_assert_eq(health(d.server, "pki", "other", &out), 5, "%s", out);
	cr_assert_not_null(strstr(out, "server's certificate"), "%s", out);
	cr_assert_not_null(strstr(out, "unknown CA"), "%s", out);
	free(out);
}

/*
 * Issue 14 item 16: without a client certificate curl mostly said "Broken
 * pipe": the daemon closed with the client's request unread, the kernel
 * sent RST and the alert was lost. Every round must see the alert
 * (certificate required), and the daemon logs one line per refusal with
 * the peer's address.
 */
Test(ops, certificate_required_alert_reaches_the_client)
{
	static const char	 get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	char			 buf[256], cmd[1024], *out = NULL;
	int			 got = 0, rounds = 10;

	h_start(&d);
	for (int i = 0; i < rounds; i++) {
		SSL		*ssl = h_tls_connect(&d, NULL, NULL);
		unsigned long	 e;

		ERR_clear_error();
		if (SSL_connect(ssl) == 1) {
			/* TLS 1.3: the client is done; its request goes at once. */
			SSL_write(ssl, get, (int)sizeof(get) - 1);
			if (SSL_read(ssl, buf, sizeof(buf)) <= 0)
				while ((e = ERR_get_error()) != 0)
					if (ERR_GET_REASON(e) ==
					    SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED)
						got++;
		}
		h_tls_close(ssl);
	}
	cr_assert_eq(got, rounds, "the alert reached the client in %d of %d rounds",
	    got, rounds);
	snprintf(cmd, sizeof(cmd), "grep -c 'event=tls_refused reason=no_certificate "
	    "addr=127.0.0.1:' %s", d.log);
	cr_assert_eq(h_run(cmd, &out), 0, "no tls_refused line in the log");
	cr_assert_geq(atoi(out), 1, "%s", out);
	free(out);
}

/*
 * Issue 22: the backup procedure of docs/operations.md, under load. While a
 * client keeps asking, the store then the log are copied with SQLite's
 * online backup; the daemon is stopped, the files (with their -wal, -shm
 * and the subject index) replaced by the copies, and started again. The
 * restored log verifies, and every request acknowledged before the backup
 * began is in it.
 */
Test(ops, backup_under_load_keeps_every_acknowledged_request, .timeout = 120)
{
	char		 acked[600], cmd[4096], *out = NULL;
	unsigned long	 ids[4096];
	size_t		 n = 0, missing = 0;
	FILE		*fp;
	pid_t		 kid;
	int		 st;

	H_SQLITE_ONLY("an online backup of the SQLite files (PostgreSQL's: "
	    "docs/deploy-ha.md, \"Backup\")");
	h_load_demo(&d);
	h_start(&d);
	snprintf(acked, sizeof(acked), "%s/acked", d.dir);
	if ((kid = fork()) == 0) {
		/* The load: bounded in count and time; each acknowledged id, a line. */
		struct ss_client	*c = h_client(&d, "police");
		time_t			 end = time(NULL) + 6;

		fp = fopen(acked, "w");
		for (int i = 0; i < 3000 && time(NULL) < end; i++) {
			Safeshare__V1__DisclosureRequest rq =
			    SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
			Safeshare__V1__DisclosureResponse *r = NULL;
			Safeshare__V1__Error *e = NULL;
			char err[256];
			int status;

			rq.subject_id = "S1001";
			rq.purpose = "child_protection";
			rq.record_type = "person";
			rq.case_reference = "CASE-BACKUP";
			rq.practitioner = "Test Practitioner";
			if (ss_disclose(c, &rq, &r, &e, &status, err, sizeof(err)) == 0 &&
			    r != NULL) {
				fprintf(fp, "%llu\n", (unsigned long long)r->disclosure_id);
				fflush(fp);
			}
			if (r != NULL)
				safeshare__v1__disclosure_response__free_unpacked(r, NULL);
			if (e != NULL)
				safeshare__v1__error__free_unpacked(e, NULL);
		}
		fclose(fp);
		ss_client_free(c);
		_exit(0);
	}
	cr_assert_gt(kid, 0);
	/* Let some requests be acknowledged (bounded: 10 s). */
	for (int i = 0; i < 100 && n < 20; i++) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		unsigned long id;

		nanosleep(&ts, NULL);
		n = 0;
		if ((fp = fopen(acked, "r")) == NULL)
			continue;
		while (n < 4096 && fscanf(fp, "%lu", &id) == 1)
			ids[n++] = id;
		fclose(fp);
	}
	cr_assert_geq(n, 20, "the load did not get going");
	/* Acknowledged before the backup: ids[0..n). Store first, then log. */
	snprintf(cmd, sizeof(cmd), "cd %s && mkdir -m 700 backup && "
	    "sqlite3 store.db \".backup 'backup/store.db'\" && "
	    "sqlite3 audit.db \".backup 'backup/audit.db'\"", d.dir);
	cr_assert_eq(h_run(cmd, &out), 0, "backup: %s", out);
	free(out);
	cr_assert_eq(waitpid(kid, &st, 0), kid);
	cr_assert_eq(h_stop(&d), 0);
	/* Restore as docs/operations.md says. */
	snprintf(cmd, sizeof(cmd), "cd %s && rm -f store.db store.db-wal store.db-shm "
	    "audit.db audit.db-wal audit.db-shm audit.db-subjects audit.db-subjects-wal "
	    "audit.db-subjects-shm && cp backup/store.db backup/audit.db .", d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0);
	h_start(&d);
	snprintf(cmd, sizeof(cmd), "SAFESHARE_SERVER=%s SAFESHARE_CERT=%s/pki/auditor.crt "
	    "SAFESHARE_KEY=%s/pki/auditor.key SAFESHARE_CA=%s/pki/ca.crt %s audit verify "
	    "2>&1", d.server, d.dir, d.dir, d.dir, SAFESHARE_BIN);
	cr_expect_eq(h_run(cmd, &out), 0, "restored log does not verify: %s", out);
	free(out);
	for (size_t i = 0; i < n; i++) {
		char where[64];

		snprintf(where, sizeof(where), "seq = %lu", ids[i]);
		if (h_log_count(&d, where) != 1)
			missing++;
	}
	cr_assert_eq(missing, 0, "%zu of %zu acknowledged requests lost", missing, n);
}

/*
 * docs/operations.md: monitoring with the certificate of an agency that has
 * no roles. It reads /healthz and /metrics and nothing else.
 */
Test(ops, a_monitoring_agency_without_roles_reads_health_and_metrics)
{
	char	 cmd[2048], *body = NULL;

	snprintf(cmd, sizeof(cmd), "%s/deploy/pki.sh %s/pki monitoring >/dev/null && "
	    "sed -i 's/^  - id: auditor$/  - id: monitoring\\n    name: \"Monitoring\"\\n"
	    "    subject: \"CN=monitoring,O=safeshare dev\"\\n    roles: []\\n&/' %s && "
	    "grep -q 'id: monitoring' %s", SOURCE_DIR, d.dir, d.protocol, d.protocol);
	cr_assert_eq(h_run(cmd, NULL), 0);
	h_load_demo(&d);
	h_start(&d);
	cr_expect_eq(h_get(&d, "monitoring", "/healthz", &body), 200);
	free(body);
	cr_expect_eq(h_get(&d, "monitoring", "/metrics", &body), 200);
	cr_expect_not_null(body != NULL ? strstr(body, "safeshare_log_ok") : NULL);
	free(body);
	body = NULL;
	/* ... and may not ask for records. */
	snprintf(cmd, sizeof(cmd), "SAFESHARE_SERVER=%s SAFESHARE_CERT=%s/pki/monitoring.crt "
	    "SAFESHARE_KEY=%s/pki/monitoring.key SAFESHARE_CA=%s/pki/ca.crt %s request "
	    "--subject S1001 --record-type person --purpose child_protection --case C-1 "
	    "--practitioner 'A. Person' 2>&1", d.server, d.dir, d.dir, d.dir, SAFESHARE_BIN);
	cr_expect_neq(h_run(cmd, &body), 0, "%s", body);
	cr_expect_not_null(strstr(body, "not_requester"), "%s", body);
	free(body);
}
