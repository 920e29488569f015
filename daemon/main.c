/*
 * safeshared: shares safeguarding information between agencies over mutual
 * TLS, under a local sharing protocol, logging every decision first.
 */
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>

#include <sys/resource.h>
#include <sys/stat.h>

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit.h"
#include "config.h"
#include "log.h"
#include "logq.h"
#include "pglog.h"
#include "protocol.h"
#include "server.h"
#include "storage.h"
#include "tls.h"

/* The usage: on stdout and exit 0 when asked for, else on stderr, exit 2. */
static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: safeshared [-dNt] -c config [-l datafile] [-r portfile]\n"
	    "       safeshared -K\n"
	    "  -c config    daemon config (YAML)\n"
	    "  -K           print every config key, its default and meaning (markdown)\n"
	    "  -t           check everything start checks but the port (config,\n"
	    "               protocol, TLS files, key modes, database directories,\n"
	    "               user, the disclosure log against its last checkpoint,\n"
	    "               audit.signing_key and what the store remembers of\n"
	    "               it), then exit: 0 if valid, 1 with each problem\n"
	    "  -N           use this disclosure log although the store remembers\n"
	    "               another, or a longer one, or the subject index another\n"
	    "               (the log was lost, replaced or restored from an older\n"
	    "               backup); the log's next entry (new_log) records what was\n"
	    "               remembered, and the store then remembers this log\n"
	    "  -l datafile  load subjects, records, consent and flags from a YAML\n"
	    "               data file into the store (all or nothing), then exit; on\n"
	    "               PostgreSQL the store's tables are analyzed after the\n"
	    "               commit; the daemon logs the load (kind store) when it\n"
	    "               next starts\n"
	    "  -r portfile  write the bound TCP port to portfile once listening\n"
	    "  -d           debug logging\n"
	    "  -h, --help   this text\n");
	exit(status);
}

static void
on_stop(evutil_socket_t sig, short ev, void *arg)
{
	log_info("event=stopping signal=%d", (int)sig);
	/* Stop accepting; every decision in the log queue is still answered. */
	server_stop(arg);
}

static void
on_hup(evutil_socket_t sig, short ev, void *arg)
{
	struct diag	 d = { 0 };
	uint64_t	 seq;

	server_reload(arg, NULL, &d, &seq);
	diag_free(&d);
}

/* Enough descriptors for max_connections plus databases and logs. */
static void
raise_fd_limit(long long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur < (rlim_t)want + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)want + 64 ? rl.rlim_max : (rlim_t)want + 64;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("event=rlimit_failed");
	}
	if (rl.rlim_cur < (rlim_t)want + 64)
		log_warnx("event=fd_limit limit=%llu max_connections=%lld",
		    (unsigned long long)rl.rlim_cur, want);
}

/* After binding and loading keys: run as an unprivileged user (smtpd, httpd). */
static int
drop_privileges(const char *user)
{
	struct passwd *pw;

	if (user == NULL || *user == '\0')
		return 0;
	if (geteuid() != 0) {
		log_warnx("event=not_root user=%s note=\"not started as root; staying as "
		    "uid %d\"", user, (int)geteuid());
		return 0;
	}
	if ((pw = getpwnam(user)) == NULL) {
		log_warnx("event=start_failed error=\"no such user %s\"", user);
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) == -1 || setresgid(pw->pw_gid, pw->pw_gid,
	    pw->pw_gid) == -1 || setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1) {
		log_warn("event=start_failed step=drop_privileges");
		return -1;
	}
	/* Belt and braces: root must be gone for good. */
	if (pw->pw_uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
		log_warnx("event=start_failed error=\"could regain root after dropping "
		    "privileges\"");
		return -1;
	}
	log_info("event=privileges_dropped user=%s uid=%d", user, (int)pw->pw_uid);
	return 0;
}

/*
 * -t: the disclosure log as the start would find it, without writing:
 * its last checkpoint, the key that must sign the next (D16).
 */
static int
check_log(const struct config *conf, char *err, size_t errlen)
{
	struct audit		*a;
	struct audit_memory	 mem;
	unsigned char		 id[16];
	char			 why[300];
	int			 rc = -1, known;

	memset(id, 0, sizeof(id));
	/* Issue 13 item 5: as the start's new_log_check(), read-only. */
	if ((known = storage_log_memory(&storage_sqlite, conf->store,
	    mem.log_id, &mem.size, err, errlen)) == -1)
		return -1;
	if (access(conf->audit_log, F_OK) == -1) {
		if (known == 1)
			audit_memory_check(&mem, "the store", 0, id, 0, why, sizeof(why));
		else if (audit_index_remembers(conf->audit_log, mem.log_id,
		    &mem.size) == 1)
			audit_memory_check(&mem, "the subject index beside it", 0, id,
			    0, why, sizeof(why));
		else
			return 0;
		snprintf(err, errlen, "%s: %s: restore it from backup, or start "
		    "with -N to begin a new log (which records this)",
		    conf->audit_log, why);
		return -1;
	}
	if (audit_open_reader(&a, conf->audit_log, err, errlen) == -1)
		return -1;
	audit_log_id(a, id);
	if (known == 1 && audit_memory_check(&mem, "the store", 1, id,
	    audit_size(a), why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s: the log was deleted, replaced or cut; "
		    "restore it from backup, or start with -N to begin a new log "
		    "(which records this)", conf->audit_log, why);
		audit_close(a);
		return -1;
	}
	if ((conf->audit_signing_key == NULL || audit_set_signer(a,
	    conf->audit_signing_key, 0, 0, err, errlen) == 0) &&
	    (conf->audit_previous_signing_key == NULL || audit_set_previous_signer(a,
	    conf->audit_previous_signing_key, err, errlen) == 0) &&
	    audit_check_start(a, 1, err, errlen) == 0)
		rc = 0;
	audit_close(a);
	return rc;
}

/*
 * -t with storage: postgresql: the connection string parses, and the log
 * in that database (if there is one yet: the first start creates it) has
 * a last checkpoint the key can sign after. Nothing is created.
 */
static int
check_pg_log(const struct config *conf, char *err, size_t errlen)
{
	struct logstore	*l;
	int		 rc = -1;

	if (server_log_open(conf, LOGSTORE_READER, &l, err, errlen) == -1)
		return strstr(err, "there is no disclosure log") != NULL ? 0 : -1;
	if ((conf->audit_signing_key == NULL || logstore_set_signer(l,
	    conf->audit_signing_key, 0, 0, err, errlen) == 0) &&
	    (conf->audit_previous_signing_key == NULL ||
	    logstore_set_previous_signer(l, conf->audit_previous_signing_key, err,
	    errlen) == 0) &&
	    logstore_check_start(l, 1, err, errlen) == 0)
		rc = 0;
	logstore_close(l);
	return rc;
}

/* -t with storage: sqlite: the two files. Returns how many problems. */
static int
check_files(const struct config *conf, const char *confpath)
{
	char	 err[1024];
	int	 bad = 0;

	/* The databases: start creates them, so their directories must allow it. */
	if (file_db_writable(conf->store, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: store: %s\n", confpath, err);
		bad++;
	}
	if (file_db_writable(conf->audit_log, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: audit_log: %s\n", confpath, err);
		bad++;
	} else if (check_log(conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: audit_log: %s\n", confpath, err);
		bad++;
	}
	return bad;
}

/*
 * safeshared -t: everything start checks before it serves, short of binding
 * the port (the running daemon may hold it) and creating files (issue 14
 * item 17: -t said ok to a 0644 signing key that start refused). Prints
 * each problem as "config: key: problem; what to do" and returns how many.
 */
static int
check_start(const struct config *conf, const char *confpath)
{
	SSL_CTX	*ctx;
	char	 err[1024];
	int	 bad = 0;

	/* The TLS files, as server_init loads them. */
	if ((ctx = tls_server_ctx(conf->tls_cert, conf->tls_key, conf->tls_ca,
	    conf->tls_crl, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s: tls: %s\n", confpath, err);
		bad++;
	}
	SSL_CTX_free(ctx);
	if (conf->audit_signing_key != NULL &&
	    audit_check_signer(conf->audit_signing_key, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: audit.signing_key: %s\n", confpath, err);
		bad++;
	}
	if (config_postgresql(conf)) {
		char label[512];

		if (pglog_conninfo_label(conf->pg_conninfo, label, sizeof(label),
		    err, sizeof(err)) == -1 ||
		    check_pg_log(conf, err, sizeof(err)) == -1) {
			fprintf(stderr, "%s: postgresql.conninfo: %s\n", confpath,
			    err);
			bad++;
		}
	} else
		bad += check_files(conf, confpath);
	if (conf->user != NULL && *conf->user != '\0' && geteuid() == 0 &&
	    getpwnam(conf->user) == NULL) {
		fprintf(stderr, "%s: user: no such user %s; create it (useradd "
		    "--system %s) or leave user empty\n", confpath, conf->user,
		    conf->user);
		bad++;
	}
	return bad;
}

static int
write_port(const char *path, int port)
{
	char	 tmp[4096];
	FILE	*fp;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fp = fopen(tmp, "w")) == NULL)
		return -1;
	fprintf(fp, "%d\n", port);
	if (fclose(fp) != 0)
		return -1;
	return rename(tmp, path);
}

int
main(int argc, char *argv[])
{
	struct config	 conf;
	struct diag	 d = { 0 };
	struct protocol	*proto;
	struct server	 srv;
	struct logq_stats ls;
	struct event	*ev_term, *ev_int, *ev_hup;
	const char	*confpath = NULL, *datafile = NULL, *portfile = NULL;
	char		 err[512];
	int		 ch, check = 0, debug = 0, new_log = 0;

	if (argc > 1 && strcmp(argv[1], "--help") == 0)
		usage(0);
	while ((ch = getopt(argc, argv, "c:dhKl:Nr:t")) != -1) {
		switch (ch) {
		case 'h': usage(0); break;
		case 'K': config_describe(stdout); return 0;
		case 'c': confpath = optarg; break;
		case 'd': debug = 1; break;
		case 'l': datafile = optarg; break;
		case 'N': new_log = 1; break;
		case 'r': portfile = optarg; break;
		case 't': check = 1; break;
		default: usage(2);
		}
	}
	if (confpath == NULL || optind != argc)
		usage(2);
	/*
	 * The store, the disclosure log and its subject index hold personal
	 * data: nothing the daemon creates is readable by anyone else, under
	 * systemd (UMask=0077) or not.
	 */
	umask(077);
	/*
	 * SQLite keeps allocation statistics under one global mutex unless
	 * told not to, before its first use; the daemon never reads them,
	 * and every statement on the event loop, the log writer and the
	 * checkpointer took that mutex for each of its allocations.
	 */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	log_init(LOG_LEVEL_INFO, "safeshared");
	/* Before any key or record is read into memory. */
	if (proc_no_dumps() == -1)
		log_warn("event=no_dumps_failed");

	if (config_load(confpath, &conf, &d) == -1) {
		diag_print(&d, stderr);
		return 1;
	}
	log_init(debug ? LOG_LEVEL_DEBUG : conf.log_level, "safeshared");
	proto = protocol_load(conf.protocol, time(NULL), &d);
	diag_print(&d, stderr);
	if (proto == NULL) {
		fprintf(stderr, "safeshared: %s: sharing protocol rejected\n",
		    conf.protocol);
		config_free(&conf);
		diag_free(&d);
		return 1;
	}
	if (config_notify_check(&conf, proto, &d) == -1) {
		diag_print(&d, stderr);
		protocol_unref(proto);
		config_free(&conf);
		diag_free(&d);
		return 1;
	}
	diag_free(&d);
	if (check) {
		int bad = check_start(&conf, confpath);

		if (bad == 0)
			printf("%s: ok; protocol %s version %s (%zu agencies, %zu "
			    "purposes, %zu record types, %zu rules); storage %s\n",
			    confpath, proto->id, proto->version, proto->nagencies,
			    proto->npurposes, proto->nrecord_types, proto->nrules,
			    config_postgresql(&conf) ? "postgresql" : "sqlite");
		protocol_unref(proto);
		config_free(&conf);
		return bad != 0;
	}
	if (datafile != NULL) {
		struct storage *st;
		int rc;

		if (server_store_open(&conf, &st, err, sizeof(err)) == -1) {
			fprintf(stderr, "safeshared: %s\n", err);
			return 1;
		}
		rc = storage_load_yaml(st, proto, datafile, time(NULL), &d);
		diag_print(&d, stderr);
		if (rc == 0)
			printf("%s: loaded into %s\n", datafile,
			    config_postgresql(&conf) ? "the PostgreSQL store" :
			    conf.store);
		else
			fprintf(stderr, "%s: nothing was loaded\n", datafile);
		diag_free(&d);
		storage_close(st);
		protocol_unref(proto);
		config_free(&conf);
		return rc == 0 ? 0 : 1;
	}

	signal(SIGPIPE, SIG_IGN);
	/* The log writer and verification threads wake the loop. */
	/*
	 * Requests allocate and free small blocks all the time; without this
	 * glibc trims the heap top and grows it again (brk in the profile).
	 */
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
	mallopt(M_TOP_PAD, 16 * 1024 * 1024);
	evthread_use_pthreads();
	raise_fd_limit(conf.max_connections);
	memset(&srv, 0, sizeof(srv));
	srv.new_log_ok = new_log;
	if (server_init(&srv, &conf, proto, err, sizeof(err)) == -1) {
		log_warnx("event=start_failed error=\"%s\"", err);
		if (srv.proto == NULL)
			protocol_unref(proto);
		server_shutdown(&srv);
		config_free(&conf);
		return 1;
	}
	if (drop_privileges(conf.user) == -1) {
		server_shutdown(&srv);
		config_free(&conf);
		return 1;
	}
	ev_term = evsignal_new(srv.base, SIGTERM, on_stop, &srv);
	ev_int = evsignal_new(srv.base, SIGINT, on_stop, &srv);
	ev_hup = evsignal_new(srv.base, SIGHUP, on_hup, &srv);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	event_add(ev_hup, NULL);
	if (portfile != NULL && write_port(portfile, srv.port) == -1)
		log_warn("event=portfile_failed path=%s", portfile);
	/*
	 * The log writer thread owns srv.audit since server_init() started
	 * it (on PostgreSQL its idle probe uses the connection): the size
	 * is the writer's.
	 */
	logq_stats(srv.logq, &ls);
	log_info("event=listening addr=%s port=%d protocol=%s version=%s "
	    "log_size=%llu", conf.listen, srv.port, proto->id, proto->version,
	    (unsigned long long)ls.size);

	event_base_dispatch(srv.base);

	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	server_shutdown(&srv);
	config_free(&conf);
	log_info("event=stopped");
	return 0;
}
