/*
 * safeshare holder accesses and safeshare audit alerts (issue 18, D20):
 * the feeds of daemon/feed.c, read once or followed. With --follow the
 * cursor (the log seq read up to) lives in a state file, replaced whole
 * (tmp + fsync + rename) after each item is printed or, with --exec, after
 * the command accepted it; a restart resumes from it, so nothing is
 * skipped and nothing printed twice unless the program died between an
 * item and its state write (at least once, never a gap).
 */
#include <sys/wait.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "safeshare/client.h"

#define FOLLOW_WAIT	20	/* seconds per long-poll (the client waits 30) */
#define BACKOFF_MAX	30.0	/* seconds between retries, at most */

static const char *const accesses_help =
    "usage: safeshare holder accesses [--since SEQ] [--follow [--state FILE]]\n"
    "       [--wait SECONDS] [--limit N] [--json] [connection options]\n"
    "\n"
    "Every use of your agency's own records (role holder, D20): disclosures\n"
    "of any decision, consultations, locates and refusals naming one of your\n"
    "subjects, oldest first: when, which agency and practitioner, purpose,\n"
    "case reference, decision, fields released and withheld (names, never\n"
    "values), override code. Never another holder's subjects.\n"
    "\n"
    "  --since SEQ     start after this log seq (default 0, or the state file)\n"
    "  --follow        keep reading, long-polling; the cursor is kept in the\n"
    "                  state file, so a restart resumes with no gap or repeat\n"
    "  --state FILE    the cursor file (default safeshare-accesses.state)\n"
    "  --wait SECONDS  without --follow: wait up to this long (at most 60)\n"
    "                  for a first item\n"
    "  --limit N       items per request (default 100, at most 1000)\n"
    "  --json          one JSON object; with --follow one per item per line\n"
    "\n"
    "Exit codes: 0 read, 2 usage, 4 refused by the server, 5 no answer\n"
    "(--follow retries with backoff instead).\n";

static const char *const alerts_help =
    "usage: safeshare audit alerts [--since SEQ] [--follow [--state FILE]\n"
    "       [--exec CMD]] [--wait SECONDS] [--limit N] [--json]\n"
    "       [connection options]\n"
    "\n"
    "Alerts for the Caldicott Guardian (role guardian or auditor; D5, D15,\n"
    "D20), oldest first: override (an override decided an outcome),\n"
    "denied_emergency (a denied request that invoked an override), review,\n"
    "reload, holder_refused, holder_rolled_back, each with its log entry;\n"
    "log_unwritable and log_writable (seq 0, no entry) to requests waiting\n"
    "when the log's state changes.\n"
    "\n"
    "  --since SEQ     start after this log seq (default 0, or the state file)\n"
    "  --follow        keep reading, long-polling; the cursor is kept in the\n"
    "                  state file (default safeshare-alerts.state)\n"
    "  --state FILE    the cursor file\n"
    "  --exec CMD      with --follow: run CMD (with /bin/sh -c) once per alert,\n"
    "                  the alert as one JSON object on its standard input; a\n"
    "                  failing CMD is retried with backoff (1 s doubling to\n"
    "                  30 s) before the next alert: at least once, in order\n"
    "  --wait SECONDS  without --follow: wait up to this long (at most 60)\n"
    "  --limit N       alerts per request (default 100, at most 1000)\n"
    "  --json          one JSON object; with --follow one per alert per line\n"
    "\n"
    "Exit codes: 0 read, 2 usage, 4 refused by the server, 5 no answer\n"
    "(--follow retries with backoff instead).\n";

enum { F_SINCE = O_HELP + 1, F_FOLLOW, F_STATE, F_EXEC, F_WAIT, F_LIMIT };

struct fopts {
	struct conn_opts	 conn;
	int			 alerts;	/* audit alerts, else holder accesses */
	int			 json, follow, since_set;
	uint64_t		 since;
	const char		*state, *exec;
	unsigned		 wait, limit;
};

static volatile sig_atomic_t stopping;

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* Through jsonw_str(): a value that is not UTF-8 keeps its key (U+FFFD). */
static void
set_str(json_t *o, const char *k, const char *v)
{
	jsonw_set(o, k, jsonw_str(v));
}

static char *
utc(int64_t t, char *buf, size_t len)
{
	time_t		tt = (time_t)t;
	struct tm	tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ",
	    &tm) == 0)
		snprintf(buf, len, "%" PRId64, t);
	return buf;
}

static json_t *
access_json(const Safeshare__V1__HolderAccess *a)
{
	json_t	*o = json_object();
	char	 t[32];

	json_object_set_new(o, "seq", json_integer((json_int_t)a->seq));
	set_str(o, "time", utc(a->time, t, sizeof(t)));
	set_str(o, "kind", a->kind);
	set_str(o, "agency", a->agency);
	set_str(o, "practitioner", a->practitioner);
	set_str(o, "purpose", a->purpose);
	set_str(o, "lawful_basis", a->lawful_basis);
	set_str(o, "case_ref", a->case_ref);
	set_str(o, "subject", a->subject);
	set_str(o, "record_type", a->record_type);
	set_str(o, "decision", a->decision);
	set_str(o, "reason", a->reason);
	set_str(o, "released", a->released);
	set_str(o, "withheld", a->withheld);
	set_str(o, "override_code", a->override_code);
	set_str(o, "rule_id", a->rule_id);
	return o;
}

static json_t *
alert_json(const Safeshare__V1__Alert *a)
{
	const Safeshare__V1__LogEntry	*e = a->entry;
	json_t				*o = json_object(), *ej;
	char				 t[32];

	json_object_set_new(o, "seq", json_integer((json_int_t)a->seq));
	set_str(o, "time", utc(a->time, t, sizeof(t)));
	set_str(o, "type", a->type);
	if (a->message[0] != '\0')
		set_str(o, "message", a->message);
	if (e == NULL)
		return o;
	ej = json_object();
	set_str(ej, "kind", e->kind);
	set_str(ej, "agency", e->agency);
	set_str(ej, "practitioner", e->practitioner);
	set_str(ej, "purpose", e->purpose);
	set_str(ej, "case_ref", e->case_ref);
	set_str(ej, "subject", e->subject);
	set_str(ej, "record_type", e->record_type);
	set_str(ej, "decision", e->decision);
	set_str(ej, "reason", e->reason);
	set_str(ej, "released", e->released);
	set_str(ej, "withheld", e->withheld);
	set_str(ej, "override_code", e->override_code);
	set_str(ej, "justification", e->justification);
	set_str(ej, "inform_waiver", e->inform_waiver);
	set_str(ej, "rule_id", e->rule_id);
	set_str(ej, "protocol_version", e->protocol_version);
	set_str(ej, "request_id", e->request_id);
	json_object_set_new(ej, "ref_seq", json_integer((json_int_t)e->ref_seq));
	json_object_set_new(o, "entry", ej);
	return o;
}

static void
access_text(const Safeshare__V1__HolderAccess *a)
{
	char t[32];

	printf("%" PRIu64 " %s %s %s", a->seq, utc(a->time, t, sizeof(t)),
	    T(a->kind), T(a->agency));
	printf(" practitioner=\"%s\"", T(a->practitioner));
	printf(" purpose=%s", T(a->purpose));
	printf(" case=\"%s\"", T(a->case_ref));
	printf(" subject=%s", T(a->subject));
	printf(" record_type=%s", T(a->record_type));
	if (a->decision[0] != '\0')
		printf(" decision=%s", T(a->decision));
	printf(" reason=%s", T(a->reason));
	if (a->released[0] != '\0')
		printf(" released=%s", T(a->released));
	if (a->withheld[0] != '\0')
		printf(" withheld=%s", T(a->withheld));
	if (a->override_code[0] != '\0')
		printf(" override=%s", T(a->override_code));
	putchar('\n');
}

static void
alert_text(const Safeshare__V1__Alert *a)
{
	const Safeshare__V1__LogEntry	*e = a->entry;
	char				 t[32];

	printf("%" PRIu64 " %s %s", a->seq, utc(a->time, t, sizeof(t)), T(a->type));
	if (a->message[0] != '\0')
		printf(" \"%s\"", T(a->message));
	if (e != NULL) {
		printf(" agency=%s", T(e->agency));
		if (e->practitioner[0] != '\0')
			printf(" practitioner=\"%s\"", T(e->practitioner));
		if (e->subject[0] != '\0')
			printf(" subject=%s", T(e->subject));
		if (e->decision[0] != '\0')
			printf(" decision=%s", T(e->decision));
		printf(" reason=%s", T(e->reason));
		if (e->override_code[0] != '\0')
			printf(" override=%s", T(e->override_code));
		if (e->ref_seq != 0)
			printf(" ref_seq=%" PRIu64, e->ref_seq);
	}
	putchar('\n');
}

/* The cursor in the state file: 1 read, 0 no file, -1 unreadable (said why). */
static int
state_read(const char *path, uint64_t *seq)
{
	FILE		*fp;
	char		 line[64], *end;
	unsigned long long v;

	if ((fp = fopen(path, "r")) == NULL) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "safeshare: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fgets(line, sizeof(line), fp) == NULL ||
	    (errno = 0, v = strtoull(line, &end, 10), errno != 0) || end == line ||
	    (*end != '\n' && *end != '\0')) {
		fclose(fp);
		fprintf(stderr, "safeshare: %s: expected one log seq\n", path);
		return -1;
	}
	fclose(fp);
	*seq = (uint64_t)v;
	return 1;
}

static int
state_write(const char *path, uint64_t seq)
{
	char	text[32], err[512];

	snprintf(text, sizeof(text), "%" PRIu64 "\n", seq);
	if (file_write_atomic(path, text, err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		return -1;
	}
	return 0;
}

/* Runs cmd with text on its standard input; its exit status, or -1. */
static int
run_exec(const char *cmd, const char *text)
{
	int	 fds[2], status;
	pid_t	 pid;
	size_t	 len = strlen(text), off = 0;

	if (pipe(fds) == -1)
		return -1;
	if ((pid = fork()) == -1) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[0], STDIN_FILENO);
		close(fds[0]);
		close(fds[1]);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	signal(SIGPIPE, SIG_IGN);	/* a command that does not read is fine */
	while (off < len) {
		ssize_t n = write(fds[1], text + off, len - off);

		if (n <= 0 && errno != EINTR)
			break;
		off += n > 0 ? (size_t)n : 0;
	}
	close(fds[1]);
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void
pause_for(double seconds)
{
	struct timespec ts;

	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (!stopping && nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * Hands one item over: printed (text or a JSON line), or given to --exec
 * until it succeeds. Returns 0, or -1 if stopped meanwhile.
 */
static int
deliver(const struct fopts *o, json_t *j, const void *item)
{
	double	 backoff = 1;
	char	*text;
	int	 rc;

	if (o->exec == NULL) {
		if (o->json) {
			text = json_dumps(j, JSON_COMPACT);
			printf("%s\n", text);
			free(text);
		} else if (o->alerts)
			alert_text(item);
		else
			access_text(item);
		fflush(stdout);
		return 0;
	}
	text = json_dumps(j, JSON_COMPACT);
	while ((rc = run_exec(o->exec, text)) != 0 && !stopping) {
		fprintf(stderr, "safeshare: --exec exited %d; retrying in %.0f s\n",
		    rc, backoff);
		pause_for(backoff);
		backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
	}
	free(text);
	return rc == 0 ? 0 : -1;
}

/*
 * One request: items after *after. On 0 the items went out (and, with
 * state, the cursor after each) and *after moved on. Returns an exit code
 * for a refusal, or -1 for no answer.
 */
static int
one_round(const struct fopts *o, struct ss_client *c, uint64_t *after,
    unsigned wait, int last)
{
	Safeshare__V1__FeedRequest	 rq = SAFESHARE__V1__FEED_REQUEST__INIT;
	ProtobufCMessage		*resp = NULL;
	Safeshare__V1__Error		*e = NULL;
	json_t				*all = NULL, *arr = NULL;
	char				 err[512];
	size_t				 n, i;
	uint64_t			 next, size;
	int				 status, rc = SS_EXIT_OK;

	rq.after_seq = *after;
	rq.limit = o->limit;
	rq.wait_seconds = wait;
	if (ss_call_message(c, o->alerts ? "/v1/audit/alerts" : "/v1/holder/accesses",
	    &rq.base, o->alerts ? &safeshare__v1__audit_alerts__descriptor :
	    &safeshare__v1__holder_accesses__descriptor, &resp, &e, &status, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		return -1;
	}
	if (e != NULL) {
		fprintf(stderr, "safeshare: %d %s: %s\n", status, T(e->code),
		    T(e->message));
		rc = status == 429 || status >= 500 ? -1 : SS_EXIT_REFUSED;
		safeshare__v1__error__free_unpacked(e, NULL);
		return rc;
	}
	if (o->alerts) {
		Safeshare__V1__AuditAlerts *r = (Safeshare__V1__AuditAlerts *)resp;

		n = r->n_alerts;
		next = r->next_after_seq;
		size = r->log_size;
	} else {
		Safeshare__V1__HolderAccesses *r = (Safeshare__V1__HolderAccesses *)resp;

		n = r->n_items;
		next = r->next_after_seq;
		size = r->log_size;
	}
	if (last && o->json)
		arr = json_array();
	for (i = 0; i < n && rc == SS_EXIT_OK; i++) {
		const void	*item;
		uint64_t	 seq;
		json_t		*j;

		if (o->alerts) {
			item = ((Safeshare__V1__AuditAlerts *)resp)->alerts[i];
			j = alert_json(item);
			seq = ((const Safeshare__V1__Alert *)item)->seq;
		} else {
			item = ((Safeshare__V1__HolderAccesses *)resp)->items[i];
			j = access_json(item);
			seq = ((const Safeshare__V1__HolderAccess *)item)->seq;
		}
		if (arr != NULL) {
			json_array_append_new(arr, j);
			continue;
		}
		if (deliver(o, j, item) == -1)
			rc = -1;
		else if (seq > *after) {
			*after = seq;
			if (o->state != NULL && state_write(o->state, seq) == -1)
				rc = SS_EXIT_LOCAL;
		}
		json_decref(j);
	}
	if (rc == SS_EXIT_OK && next > *after) {
		*after = next;	/* every entry up to it was read */
		if (o->state != NULL && state_write(o->state, next) == -1)
			rc = SS_EXIT_LOCAL;
	}
	if (arr != NULL) {
		char *text;

		all = json_object();
		json_object_set_new(all, o->alerts ? "alerts" : "items", arr);
		json_object_set_new(all, "next_after_seq", json_integer((json_int_t)next));
		json_object_set_new(all, "log_size", json_integer((json_int_t)size));
		text = json_dumps(all, JSON_INDENT(2));
		printf("%s\n", text);
		free(text);
		json_decref(all);
	} else if (last && !o->json)
		printf("next: --since %" PRIu64 " (log size %" PRIu64 ")\n", next, size);
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

/* --follow: rounds until a signal, reconnecting with backoff. */
static int
follow(struct fopts *o, uint64_t after)
{
	struct ss_client	*c = NULL;
	double			 backoff = 0.2;
	int			 rc;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!stopping) {
		if (c == NULL && (rc = connect_client(&o->conn, &c)) != SS_EXIT_OK)
			return rc;
		rc = one_round(o, c, &after, FOLLOW_WAIT, 0);
		if (rc == SS_EXIT_OK) {
			backoff = 0.2;
			continue;
		}
		if (rc != -1)
			break;
		/* No answer (daemon restarting, 429, 5xx): a new connection later. */
		ss_client_free(c);
		c = NULL;
		pause_for(backoff);
		backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
	}
	ss_client_free(c);
	return stopping ? SS_EXIT_OK : rc;
}

/* safeshare holder accesses / safeshare audit alerts: argv[0] is the subcommand. */
int
cmd_feed(int alerts, int argc, char *argv[])
{
	static const struct option longopts[] = {
		CONN_LONGOPTS,
		{ "since", required_argument, NULL, F_SINCE },
		{ "follow", no_argument, NULL, F_FOLLOW },
		{ "state", required_argument, NULL, F_STATE },
		{ "exec", required_argument, NULL, F_EXEC },
		{ "wait", required_argument, NULL, F_WAIT },
		{ "limit", required_argument, NULL, F_LIMIT },
		{ NULL, 0, NULL, 0 }
	};
	const char		*help = alerts ? alerts_help : accesses_help;
	struct fopts		 o;
	struct ss_client	*c;
	char			*end;
	uint64_t		 after = 0;
	int			 ch, rc;

	memset(&o, 0, sizeof(o));
	o.alerts = alerts;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (conn_opt(ch, &o.conn, &o.json))
			continue;
		switch (ch) {
		case O_HELP: fputs(help, stdout); return SS_EXIT_OK;
		case F_SINCE:
			errno = 0;
			o.since = strtoull(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || optarg[0] == '-') {
				fprintf(stderr, "safeshare: --since takes a log seq\n");
				return SS_EXIT_USAGE;
			}
			o.since_set = 1;
			break;
		case F_FOLLOW: o.follow = 1; break;
		case F_STATE: o.state = optarg; break;
		case F_EXEC:
			if (!alerts) {
				fputs(help, stderr);
				return SS_EXIT_USAGE;
			}
			o.exec = optarg;
			break;
		case F_WAIT:
			o.wait = (unsigned)strtoul(optarg, &end, 10);
			if (*end != '\0' || o.wait > 60) {
				fprintf(stderr, "safeshare: --wait takes 0 to 60 seconds\n");
				return SS_EXIT_USAGE;
			}
			break;
		case F_LIMIT:
			o.limit = (unsigned)strtoul(optarg, &end, 10);
			if (*end != '\0' || o.limit > 1000) {
				fprintf(stderr, "safeshare: --limit takes 0 to 1000\n");
				return SS_EXIT_USAGE;
			}
			break;
		default: fputs(help, stderr); return SS_EXIT_USAGE;
		}
	}
	if (optind < argc || ((o.state != NULL || o.exec != NULL) && !o.follow)) {
		fprintf(stderr, "safeshare: %s\n", optind < argc ? "unexpected argument" :
		    "--state and --exec go with --follow");
		return SS_EXIT_USAGE;
	}
	if (o.follow) {
		if (o.state == NULL)
			o.state = alerts ? "safeshare-alerts.state" :
			    "safeshare-accesses.state";
		if (o.since_set)
			after = o.since;
		else if (state_read(o.state, &after) == -1)
			return SS_EXIT_LOCAL;
		return follow(&o, after);
	}
	if ((rc = connect_client(&o.conn, &c)) != SS_EXIT_OK)
		return rc;
	after = o.since;
	rc = one_round(&o, c, &after, o.wait, 1);
	ss_client_free(c);
	return rc == -1 ? SS_EXIT_NOANSWER : rc;
}
