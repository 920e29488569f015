/*
 * A hostile daemon's words on the auditor's terminal (issue 16 review):
 * the CLI prints a refusal's code and message through T() (cli_refused()),
 * so control characters arrive escaped and a missing message is not a
 * NULL %s. The hostile daemon is notify_sink in its "hostile" modes
 * (mutual TLS on loopback, the harness PKI's server certificate): it
 * refuses every request with escapes in the code and message, or with no
 * message. The real daemon over the demo data only makes the receipt that
 * `receipt check` needs before it asks.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct daemon d;

H_DEMO_SUITE(cli_hostile, d, 120);

/* Starts notify_sink in d.dir in the given mode; returns its pid and port. */
static pid_t
hostile_start(const char *mode, int *port)
{
	char	 path[700], cert[600], key[600], ca[600];
	FILE	*fp;
	pid_t	 pid;

	snprintf(path, sizeof(path), "%s/sink.mode", d.dir);
	cr_assert_not_null(fp = fopen(path, "w"));
	fprintf(fp, "%s\n", mode);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/sink.port", d.dir);
	unlink(path);
	snprintf(cert, sizeof(cert), "%s/pki/server.crt", d.dir);
	snprintf(key, sizeof(key), "%s/pki/server.key", d.dir);
	snprintf(ca, sizeof(ca), "%s/pki/ca.crt", d.dir);
	if ((pid = fork()) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(NOTIFY_SINK_BIN, "notify_sink", d.dir, cert, key, ca, "0",
		    (char *)NULL);
		_exit(127);
	}
	cr_assert_gt(pid, 0);
	for (int i = 0; i < 500; i++) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		if ((fp = fopen(path, "r")) != NULL) {
			int ok = fscanf(fp, "%d", port) == 1;

			fclose(fp);
			if (ok)
				return pid;
		}
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_assert_fail("notify_sink did not start");
	return -1;
}

/*
 * Runs `safeshare ARGS` as agency against the hostile daemon on port
 * (stdout and stderr together); expects the refusal exit (4) and output
 * with no raw escape and no "(null)".
 */
static void
expect_safe(const char *agency, const char *args, int port)
{
	char	 real[sizeof(d.server)], *out = NULL;
	int	 rc;

	snprintf(real, sizeof(real), "%s", d.server);
	snprintf(d.server, sizeof(d.server), "127.0.0.1:%d", port);
	rc = h_cli(&d, agency, args, &out);
	snprintf(d.server, sizeof(d.server), "%s", real);
	cr_assert_not_null(out);
	cr_expect_eq(rc, 4, "%s: exit %d: %s", args, rc, out);
	cr_expect(strstr(out, "refused (HTTP 403)") != NULL, "%s: %s", args, out);
	cr_expect(strchr(out, '\x1b') == NULL, "%s: a raw ESC reached the "
	    "terminal", args);
	cr_expect(strchr(out, '\x07') == NULL, "%s: a raw BEL reached the "
	    "terminal", args);
	cr_expect(strstr(out, "(null)") == NULL, "%s: %s", args, out);
	free(out);
}

static void
hostile_run(const char *mode)
{
	char	args[2048], *out = NULL;
	int	port;
	pid_t	pid;

	/* A receipt from the real daemon: `receipt check` asks only for one. */
	snprintf(args, sizeof(args), "%s/r", d.dir);
	cr_assert_eq(mkdir(args, 0700), 0);
	snprintf(args, sizeof(args), "request --subject S1001 --record-type person "
	    "--purpose child_protection --case CASE-16 --practitioner 'DC Jones' "
	    "--receipts %s/r", d.dir);
	cr_assert_eq(h_cli(&d, "police", args, &out), 0, "%s", out);
	free(out);
	pid = hostile_start(mode, &port);

	snprintf(args, sizeof(args), "receipt check %s/r --pubkey "
	    "%s/pki/audit-signing.pub", d.dir, d.dir);
	expect_safe("housing", args, port);
	snprintf(args, sizeof(args), "audit witness --state %s/witness.state "
	    "--pubkey %s/pki/audit-signing.pub", d.dir, d.dir);
	expect_safe("housing", args, port);
	snprintf(args, sizeof(args), "request --subject S1001 --record-type person "
	    "--purpose child_protection --case CASE-16 --practitioner 'DC Jones'");
	expect_safe("police", args, port);

	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

Test(cli_hostile, escapes_in_code_and_message_arrive_escaped)
{
	hostile_run("hostile");
}

Test(cli_hostile, a_refusal_without_a_message)
{
	hostile_run("hostile_bare");
}
