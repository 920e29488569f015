/*
 * The PostgreSQL log's group commit alone (issue 19 item 6; not a test):
 * THREADS threads, each with its own pglog handle (its own connection, as
 * each daemon's log writer has), append batches of BATCH realistic signed
 * entries to one log for SECONDS, or until MAX_COMMITS commits in all.
 * Prints entries/s, commits/s, the commit latency (p50, p99, max: one
 * pglog_append() call, lock wait included), the client's CPU time and the
 * PostgreSQL server's (every process of the cluster, from /proc, when the
 * server runs on this machine as a user whose /proc we may read), and the
 * log verified at the end.
 *
 *   bench_pglog [--threads N] [--batch B] [--seconds S] [--conninfo STR]
 *
 * The connection string defaults to $SAFESHARE_PG_CONNINFO; the log's
 * tables are emptied first (DELETE), so point it at a throwaway database
 * (tests/pg/pgcluster.sh start DIR; its DIR/conninfo).
 */
#include <sys/resource.h>

#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "audit.h"
#include "pglog.h"

#define MAX_THREADS	16
#define MAX_BATCH	4096
#define MAX_COMMITS	200000
#define SUBJECTS	10000

static struct {
	const char	*conninfo;
	EVP_PKEY	*key;
	double		 until;
	size_t		 batch;
	pthread_mutex_t	 mu;
	unsigned	 commits;	/* under mu: the bound over all threads */
} G;

struct worker {
	pthread_t	 t;
	int		 id;
	struct pglog	*pl;		/* closed by main once the server's CPU is read */
	double		*lat;		/* seconds per commit; its own */
	size_t		 n;
	int		 failed;
	char		 err[256];
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * utime + stime of a process in seconds, or -1 when /proc cannot say; with
 * reaped, also that of its children that have exited and were waited for
 * (the postmaster's: backends that closed during the run).
 */
static double
proc_cpu(int pid, int *ppid, int reaped)
{
	char			 path[64], buf[1024], *p;
	FILE			*fp;
	unsigned long long	 ut, st, cut, cst;
	int			 pp;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	p = fgets(buf, sizeof(buf), fp);
	fclose(fp);
	if (p == NULL || (p = strrchr(buf, ')')) == NULL)
		return -1;
	/* After "pid (comm)": state ppid ... fields 14-17 utime stime cutime cstime. */
	if (sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
	    "%llu %llu", &pp, &ut, &st, &cut, &cst) != 5)
		return -1;
	if (ppid != NULL)
		*ppid = pp;
	if (!reaped)
		cut = cst = 0;
	return (double)(ut + st + cut + cst) / (double)sysconf(_SC_CLK_TCK);
}

/*
 * The CPU time of the postmaster and all its children now (backends, WAL
 * writer, checkpointer ...): the server's cost. -1 when unknown.
 */
static double
server_cpu(int postmaster)
{
	DIR		*d;
	struct dirent	*de;
	double		 sum, c;
	int		 pp;

	if (postmaster <= 0 || (sum = proc_cpu(postmaster, NULL, 1)) < 0 ||
	    (d = opendir("/proc")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		int pid = atoi(de->d_name);

		if (pid > 0 && (c = proc_cpu(pid, &pp, 0)) >= 0 && pp == postmaster)
			sum += c;
	}
	closedir(d);
	return sum;
}

/* A disclosure entry as the daemon writes one (sizes as in the demo). */
static void
fill(struct audit_entry *e, char subj[16], unsigned k)
{
	memset(e, 0, sizeof(*e));
	snprintf(subj, 16, "B%06u", k * 7919u % SUBJECTS);
	e->time = (int64_t)time(NULL);
	e->kind = "disclosure";
	e->agency = k % 3 ? "police" : "health_trust";
	e->cert_fp = "3f1c0e9a4d2b7c6e5f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e";
	e->practitioner = "DC R. Jones";
	e->purpose = "child_protection";
	e->lawful_basis = "Art 6(1)(e) public task; Art 9(2)(g)";
	e->case_ref = "CP-2026-0142";
	e->subject = subj;
	e->record_type = "person";
	e->decision = "allow";
	e->reason = "released";
	e->released = "full_name,date_of_birth,address,postcode,phone";
	e->withheld = "gp_practice:not_in_rule";
	e->consent = "none";
	e->rule_id = "police-child-person";
	e->protocol_id = "example-safeguarding-partnership";
	e->protocol_version = "1.0";
	e->protocol_sha256 = "9b1f0c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b";
	e->request_id = "71c8975c0401a866635a7baab9d8a952";
}

static void *
run(void *arg)
{
	struct worker		*w = arg;
	struct pglog		*pl = NULL;
	struct audit_entry	*es;
	struct audit_entry	**ps;
	struct audit_receipt	*rc;
	char			(*subj)[16];
	unsigned		 k = (unsigned)w->id * 100003u;

	es = calloc(G.batch, sizeof(*es));
	ps = calloc(G.batch, sizeof(*ps));
	rc = calloc(G.batch, sizeof(*rc));
	subj = calloc(G.batch, sizeof(*subj));
	w->lat = calloc(MAX_COMMITS, sizeof(double));
	if (es == NULL || ps == NULL || rc == NULL || subj == NULL || w->lat == NULL) {
		snprintf(w->err, sizeof(w->err), "out of memory");
		goto fail;
	}
	if (pglog_open(&pl, G.conninfo, w->err, sizeof(w->err)) == -1)
		goto fail;
	w->pl = pl;
	pglog_set_signer(pl, G.key);
	for (;;) {
		double t0;

		pthread_mutex_lock(&G.mu);
		if (G.commits >= MAX_COMMITS) {
			pthread_mutex_unlock(&G.mu);
			break;
		}
		G.commits++;
		pthread_mutex_unlock(&G.mu);
		if (now_s() >= G.until)
			break;
		for (size_t i = 0; i < G.batch; i++) {
			fill(&es[i], subj[i], k++);
			ps[i] = &es[i];
		}
		t0 = now_s();
		/* With receipts, as the daemon asks for them. */
		if (pglog_append(pl, ps, G.batch, rc, w->err, sizeof(w->err)) == -1)
			goto fail;
		w->lat[w->n++] = now_s() - t0;
	}
	free(es);
	free(ps);
	free(rc);
	free(subj);
	return NULL;
fail:
	w->failed = 1;
	free(es);
	free(ps);
	free(rc);
	free(subj);
	return NULL;
}

static const char *const reset_sql[] = {
	"BEGIN; DELETE FROM log_entries; DELETE FROM log_tree; "
	"DELETE FROM log_checkpoints; UPDATE log_head SET size = 0, head = "
	"'\\x0000000000000000000000000000000000000000000000000000000000000000'"
	"::bytea, frontier = ''::bytea, cp_n = 0, cp_time = 0, last_time = 0; COMMIT",
	"VACUUM ANALYZE log_entries",
	"VACUUM log_tree",
	"VACUUM log_checkpoints",
};

/* Empties the log (a throwaway database) so each run starts at seq 1. */
static int
reset_log(const char *conninfo, int *postmaster)
{
	struct pglog	*pl;
	PGconn		*c;
	PGresult	*res;
	char		 err[256];
	int		 ok;

	/* Creates the tables when the database has none. */
	if (pglog_open(&pl, conninfo, err, sizeof(err)) == -1) {
		fprintf(stderr, "bench_pglog: %s\n", err);
		return -1;
	}
	*postmaster = 0;
	proc_cpu(pglog_backend_pid(pl), postmaster, 0);
	pglog_close(pl);
	if ((c = PQconnectdb(conninfo)) == NULL || PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "bench_pglog: connect failed\n");
		PQfinish(c);
		return -1;
	}
	/* VACUUM and CHECKPOINT cannot share a transaction with the rest. */
	ok = 1;
	for (size_t i = 0; i < sizeof(reset_sql) / sizeof(reset_sql[0]) && ok; i++) {
		res = PQexec(c, reset_sql[i]);
		if (!(ok = PQresultStatus(res) == PGRES_COMMAND_OK))
			fprintf(stderr, "bench_pglog: reset: %s", PQerrorMessage(c));
		PQclear(res);
	}
	PQfinish(c);
	return ok ? 0 : -1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_pglog [--threads N (2)] [--batch B (64)] "
	    "[--seconds S (10)] [--conninfo STR ($SAFESHARE_PG_CONNINFO)]\n"
	    "  Empties the log in that database first: use a throwaway cluster.\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "batch", required_argument, NULL, 'b' },
		{ "seconds", required_argument, NULL, 's' },
		{ "conninfo", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 }
	};
	struct worker			 ws[MAX_THREADS];
	struct audit_verify_result	 vr;
	struct pglog			*pl;
	struct rusage			 ru0, ru1;
	double				*all, t0, t1, s0, s1, secs = 10, cpu;
	size_t				 nall = 0;
	int				 nthreads = 2, postmaster, ch, failed = 0;
	char				 err[256];

	memset(ws, 0, sizeof(ws));
	G.batch = 64;
	G.conninfo = getenv("SAFESHARE_PG_CONNINFO");
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't': nthreads = atoi(optarg); break;
		case 'b': G.batch = (size_t)atol(optarg); break;
		case 's': secs = atof(optarg); break;
		case 'c': G.conninfo = optarg; break;
		default: usage();
		}
	}
	if (optind != argc || G.conninfo == NULL || nthreads < 1 ||
	    nthreads > MAX_THREADS || G.batch < 1 || G.batch > MAX_BATCH ||
	    !(secs > 0 && secs <= 600))
		usage();
	if ((G.key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    reset_log(G.conninfo, &postmaster) == -1)
		return 1;
	pthread_mutex_init(&G.mu, NULL);
	getrusage(RUSAGE_SELF, &ru0);
	s0 = server_cpu(postmaster);
	t0 = now_s();
	G.until = t0 + secs;
	for (int i = 0; i < nthreads; i++) {
		ws[i].id = i;
		if (pthread_create(&ws[i].t, NULL, run, &ws[i]) != 0) {
			fprintf(stderr, "bench_pglog: pthread_create failed\n");
			return 1;
		}
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(ws[i].t, NULL);
	t1 = now_s();
	s1 = server_cpu(postmaster);
	getrusage(RUSAGE_SELF, &ru1);
	if ((all = calloc((size_t)nthreads * MAX_COMMITS, sizeof(double))) == NULL)
		return 1;
	for (int i = 0; i < nthreads; i++) {
		if (ws[i].failed) {
			fprintf(stderr, "bench_pglog: writer %d: %s\n", i, ws[i].err);
			failed = 1;
		}
		pglog_close(ws[i].pl);
		memcpy(all + nall, ws[i].lat, ws[i].n * sizeof(double));
		nall += ws[i].n;
		free(ws[i].lat);
	}
	if (nall == 0)
		return 1;
	qsort(all, nall, sizeof(double), cmp);
	cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
	    (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
	    (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
	    (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
	printf("bench_pglog: %d writers, batches of %zu, %.1f s: %zu commits, "
	    "%.0f entries/s, %.0f commits/s\n", nthreads, G.batch, t1 - t0, nall,
	    (double)nall * (double)G.batch / (t1 - t0), (double)nall / (t1 - t0));
	printf("commit latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
	    all[nall / 2] * 1e3, all[nall * 99 / 100] * 1e3, all[nall - 1] * 1e3);
	printf("client CPU %.2f s (%.1f us per entry)", cpu,
	    cpu * 1e6 / ((double)nall * (double)G.batch));
	if (s0 >= 0 && s1 >= 0)
		printf(", server CPU %.2f s (%.1f us per entry)", s1 - s0,
		    (s1 - s0) * 1e6 / ((double)nall * (double)G.batch));
	else
		printf(", server CPU not readable from /proc");
	printf("\n");
	printf("RESULT writers=%d batch=%zu entries_per_s=%.0f commits_per_s=%.0f "
	    "p50_ms=%.2f p99_ms=%.2f client_us_per_entry=%.1f server_us_per_entry=%.1f\n",
	    nthreads, G.batch, (double)nall * (double)G.batch / (t1 - t0),
	    (double)nall / (t1 - t0), all[nall / 2] * 1e3, all[nall * 99 / 100] * 1e3,
	    cpu * 1e6 / ((double)nall * (double)G.batch),
	    s0 >= 0 && s1 >= 0 ? (s1 - s0) * 1e6 / ((double)nall * (double)G.batch) : -1);
	free(all);
	/* The log the run wrote must verify, or the numbers mean nothing. */
	if (pglog_open_reader(&pl, G.conninfo, err, sizeof(err)) == -1) {
		fprintf(stderr, "bench_pglog: verify: %s\n", err);
		return 1;
	}
	/* The private key verifies as its public half. */
	pglog_verify(pl, G.key, &vr);
	printf("verify: %s, %" PRIu64 " entries, %" PRIu64 " checkpoints\n",
	    vr.ok ? "ok" : vr.why, vr.entries, vr.checkpoints);
	pglog_close(pl);
	EVP_PKEY_free(G.key);
	return failed || !vr.ok;
}
