/*
 * Load generator for safeshared and, side by side, nginx (not a test): N
 * non-blocking mutual-TLS connections on one epoll loop in one process,
 * HTTP/1.1, one request in flight per connection (closed loop).
 *
 *   loadgen --port P --cert F --key F --ca F [options]   run load
 *   loadgen --port P --cert F --key F --ca F --fetch PATH print one GET's body
 *   loadgen --make-data FILE [--subjects N]              write demo data
 *   loadgen --free-port                                  print a free port
 *
 * By default each request is a POST /v1/disclosures with a protobuf
 * DisclosureRequest for a subject drawn at random from --subjects generated
 * ids (the ones --make-data writes, with their NHS numbers), over keep-alive
 * connections. --new-conn makes every request a fresh TCP connection and a
 * full handshake (no session resumption); --get PATH fetches a static file
 * instead (nginx).
 * --api connect-proto or connect-json sends the same request over the
 * Connect protocol (issue 20), application/proto or application/json;
 * --api nhs names the subject by its NHS number and holder instead of its
 * id, and --api locate sends a POST /v1/locate by NHS number (issue 17).
 * The run stops at --requests measured requests or after --seconds, whichever
 * comes first, after --warmup seconds that are not measured. --idle N holds N
 * more connections open, each after one request, while the load runs.
 * --watch PID,... samples the servers' CPU time and RSS from /proc.
 * --port P1,P2,... (or --port repeated, or --connect 127.0.0.1:P1,...)
 * spreads the connections round-robin over several servers, as a TCP load
 * balancer in front of several daemons would (issue 19 item 6): connection
 * i always goes to target i mod the number of targets, and the rate and
 * latency are over all of them, with each target's share of the completed
 * requests reported.
 * --holder-batch N (with --holder-cert/--holder-key) sends, when the
 * measured time starts, one POST /v1/holder/ops of N put_record ops from a
 * child process, so the disclosures' latency is measured while the daemon
 * takes a large holder batch (issue 14 item 15).
 *
 * Only 127.0.0.1 is ever connected to. The report is text on stdout and one
 * line starting "RESULT " with key=value pairs for scripts.
 */
#define _GNU_SOURCE	/* memmem */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "pbjson.h"
#include "safeshare.pb-c.h"

#define MAX_CONNS	20000
#define MAX_WATCH	8
#define MAX_RESPONSE	(1024 * 1024)
#define MAX_HANDSHAKES	128		/* idle connections opened at once */
#define MAX_REQUESTS	100000000ULL
#define MAX_TARGETS	8		/* --port P1,P2,...: servers to spread over */

enum err_kind { E_CONNECT, E_TLS, E_IO, E_HTTP, E_TIMEOUT, E_PARSE, E_NKINDS };
static const char *const err_names[E_NKINDS] = {
	"connect", "tls", "io", "http", "timeout", "parse"
};

enum cstate { C_FREE, C_CONNECTING, C_HANDSHAKE, C_WRITING, C_READING, C_IDLE };

struct reqbuf {
	char	*data;
	size_t	 len;
};

struct conn {
	int			 fd;
	SSL			*ssl;
	enum cstate		 st;
	int			 idle;		/* one request, then hold the line */
	int			 measured;	/* this request started after warm-up */
	uint32_t		 events;	/* registered with epoll */
	int			 target;	/* index into G.sins: i mod G.ntargets */
	double			 t_conn;	/* connect() of this connection */
	double			 t_req;		/* the current request was started */
	double			 retry_at;	/* after an error, reconnect then */
	const struct reqbuf	*req;
	size_t			 woff;
	char			*rbuf;
	size_t			 rlen, rcap;
};

struct watch {
	int	pid;
	double	cpu0, cpu1;	/* seconds, at measured start and end */
	long	rss0, rss1;	/* KiB */
	long	rss_max;
};

/*
 * --api: which protocol a disclosure goes by (issue 20), or, by /v1, a
 * locate or a disclosure that names the person by NHS number (issue 17).
 */
enum { API_V1, API_PROTO, API_JSON, API_LOCATE, API_NHS, API_N };
static const char *const api_names[API_N] = { "v1", "connect-proto", "connect-json",
    "locate", "nhs" };
static const char *const api_paths[API_N] = { "/v1/disclosures",
    "/safeshare.v1.DisclosureService/Request", "/safeshare.v1.DisclosureService/Request",
    "/v1/locate", "/v1/disclosures" };
static const char *const api_types[API_N] = { "application/x-protobuf", "application/proto",
    "application/json", "application/x-protobuf", "application/x-protobuf" };

static struct {
	/* options */
	int		 port;
	const char	*cert, *key, *ca;
	int		 nconns;
	uint64_t	 max_requests;
	double		 seconds, warmup, timeout;
	int		 new_conn;
	const char	*get_path;
	const char	*idle_path;
	int		 nidle;
	int		 nsubjects;
	const char	*purpose, *record_type;
	const char	*label;
	int		 tls12;
	double		 idle_setup;
	int		 holder_ops;
	const char	*holder_cert, *holder_key;
	int		 api;		/* API_V1 .. API_NHS */

	/* state */
	SSL_CTX		*ctx;
	int		 ep;
	struct sockaddr_in sin;		/* the first target (--fetch, holder batch) */
	struct sockaddr_in sins[MAX_TARGETS];
	int		 ports[MAX_TARGETS];
	int		 ntargets;
	uint64_t	 target_done[MAX_TARGETS];	/* measured, completed */
	struct reqbuf	*reqs;
	size_t		 nreqs;
	struct reqbuf	 idle_req;
	struct conn	*conns;		/* active first, then idle */
	int		 stopping;	/* no new requests are started */
	int		 fetching;	/* --fetch: keep the one reply */
	double		 t_begin, t_measure, t_end, t_last;
	uint64_t	 started_measured;
	uint64_t	 rng;

	/* results */
	uint32_t	*lat_us;
	uint64_t	 nlat, caplat;
	uint64_t	 ok, completed, warm_done;
	uint64_t	 errors[E_NKINDS];
	uint64_t	 other_status[1000];
	uint64_t	 decisions[5];
	uint64_t	 located, unlocated;	/* --api locate: holders found or none */
	int		 idle_open, idle_failed;
	struct watch	 watch[MAX_WATCH];
	int		 nwatch;
	long		 rss_before_idle[MAX_WATCH], rss_idle[MAX_WATCH];
	double		 idle_secs;
} G;

static volatile sig_atomic_t interrupted;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
rnd(void)
{
	/* xorshift64: reproducible spread, no libc state */
	G.rng ^= G.rng << 13;
	G.rng ^= G.rng >> 7;
	G.rng ^= G.rng << 17;
	return G.rng;
}

static void
on_signal(int sig)
{
	interrupted = 1;
}

static void
die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;

	fputs("loadgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL)
		die("out of memory");
	return p;
}

/* The ids --make-data writes and the load draws from. */
static void
subject_id(int i, char *out, size_t len)
{
	snprintf(out, len, "B%06d", i);
}

/* Their holders: children's social care and the health trust in turn. */
static const char *
subject_holder(int i)
{
	return i % 2 ? "health_trust" : "childrens_social_care";
}

/* The modulus-11 check digit of nine digits; 10 means none is valid. */
static int
nhs_check(const char *d)
{
	int sum = 0, check;

	for (int k = 0; k < 9; k++)
		sum += (d[k] - '0') * (10 - k);
	check = 11 - sum % 11;
	return check == 11 ? 0 : check;
}

/*
 * Subject i's NHS number (issue 17), 10 digits with no spaces, the same in
 * --make-data and in the requests: the nine digits 400000000 + 2i, or, when
 * their check digit would be 10, 400000000 + 2i + 1. The two differ only in
 * the ninth digit (the even one never carries), which moves the sum by 2, so
 * at most one of them has no check digit and the numbers of two subjects
 * never meet.
 */
static void
nhs_number(int i, char out[11])
{
	char nine[24];

	snprintf(nine, sizeof(nine), "%09ld", 400000000L + 2L * i);
	if (nhs_check(nine) == 10)
		snprintf(nine, sizeof(nine), "%09ld", 400000000L + 2L * i + 1);
	memcpy(out, nine, 9);
	out[9] = (char)('0' + nhs_check(nine));
	out[10] = '\0';
}

/* ---- demo data ---- */

static const char *const first_names[] = {
	"Amelia", "Oliver", "Isla", "Noah", "Ava", "Leo", "Mia", "Arthur",
	"Freya", "Theo", "Ivy", "Oscar", "Rosie", "Finley", "Ella", "Jude",
};
static const char *const surnames[] = {
	"Hart", "Mills", "Shah", "Brennan", "Okafor", "Reed", "Patel", "Jones",
	"Nowak", "Evans", "Kaur", "Byrne", "Lewis", "Osei", "Walsh", "Price",
};
static const char *const streets[] = {
	"Orchard Row", "Mill Lane", "Canal Street", "Hill View", "Station Road",
	"Church Walk", "Park Terrace", "Bridge End",
};

/*
 * Writes N fictional subjects in config/demo-data.yaml's format, for
 * `safeshared -l`: a person and a concern record each, held alternately by
 * children's social care and the health trust; every 10th flagged for
 * domestic abuse (so the police rule withholds address and phone), every 4th
 * with a consent decision; each links an NHS number of its own
 * (nhs_number()). The police' child_protection rule can read every person
 * record (consent not required).
 */
static int
make_data(const char *path, int n)
{
	FILE	*fp;
	char	 id[16], nhs[11];

	if ((fp = fopen(path, "w")) == NULL) {
		fprintf(stderr, "loadgen: %s: %s\n", path, strerror(errno));
		return 1;
	}
	fprintf(fp, "# %d fictional subjects for deploy/bench.sh, written by "
	    "loadgen --make-data.\nsubjects:\n", n);
	for (int i = 0; i < n; i++) {
		const char *fn = first_names[i % 16], *sn = surnames[(i / 16) % 16];

		subject_id(i, id, sizeof(id));
		nhs_number(i, nhs);
		fprintf(fp, "  - id: %s\n    holder: %s\n    nhs_number: \"%s\"\n"
		    "    records:\n"
		    "      person:\n        verified: 2026-%02d-%02d\n        fields:\n"
		    "          full_name: \"%s %s\"\n"
		    "          date_of_birth: \"%04d-%02d-%02d\"\n"
		    "          address: \"%d %s, Exampleton\"\n"
		    "          postcode: \"EX%d %d%c%c\"\n"
		    "          phone: \"07700 9%05d\"\n"
		    "          gp_practice: \"%s Surgery\"\n",
		    id, subject_holder(i), nhs,
		    1 + i % 10, 1 + i % 28, fn, sn, 1940 + i % 80, 1 + i % 12,
		    1 + i % 28, 1 + i % 200, streets[i % 8], 1 + i % 9, i % 10,
		    'A' + i % 26, 'A' + (i / 26) % 26, i % 100000, streets[(i / 8) % 8]);
		fprintf(fp, "      concern:\n        verified: 2026-%02d-%02d\n"
		    "        fields:\n          summary: \"Concern %d raised by school\"\n"
		    "          risk_level: \"%s\"\n          allocated_worker: \"%s %s\"\n",
		    1 + i % 10, 1 + i % 28, i, i % 3 ? "medium" : "high",
		    first_names[(i + 5) % 16], surnames[(i + 3) % 16]);
		if (i % 4 == 0)
			fprintf(fp, "    consent:\n      - state: granted\n"
			    "        agencies: [health_trust, housing]\n"
			    "        purposes: [adult_safeguarding, housing_support]\n"
			    "        expires: 2030-12-31\n"
			    "        recorded_by: \"bench\"\n");
		if (i % 10 == 0)
			fprintf(fp, "    flags: [domestic_abuse]\n");
	}
	if (fclose(fp) != 0) {
		fprintf(stderr, "loadgen: %s: %s\n", path, strerror(errno));
		return 1;
	}
	printf("%s: %d subjects\n", path, n);
	return 0;
}

/* ---- requests ---- */

static void
build_get(struct reqbuf *r, const char *path, int close_after)
{
	char buf[1024];
	int n;

	n = snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "%s\r\n", path, close_after ? "Connection: close\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(buf))
		die("path too long");
	r->data = xmalloc((size_t)n);
	memcpy(r->data, buf, (size_t)n);
	r->len = (size_t)n;
}

/*
 * One request per subject (--api), head and body in one buffer: a
 * DisclosureRequest by subject id, or by NHS number and holder (nhs), or a
 * LocateRequest by NHS number (locate).
 */
static void
build_requests(void)
{
	G.nreqs = G.get_path ? 1 : (size_t)G.nsubjects;
	G.reqs = calloc(G.nreqs, sizeof(*G.reqs));
	if (G.reqs == NULL)
		die("out of memory");
	if (G.get_path) {
		build_get(&G.reqs[0], G.get_path, G.new_conn);
		return;
	}
	for (size_t i = 0; i < G.nreqs; i++) {
		Safeshare__V1__DisclosureRequest dr = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
		Safeshare__V1__LocateRequest lr = SAFESHARE__V1__LOCATE_REQUEST__INIT;
		Safeshare__V1__PersonRef pr = SAFESHARE__V1__PERSON_REF__INIT;
		ProtobufCMessage *msg = &dr.base;
		char	subj[16], nhs[11], cref[32], prac[32], head[256], err[128];
		char	*json = NULL;
		size_t	blen;
		int	hlen;

		subject_id((int)i, subj, sizeof(subj));
		snprintf(cref, sizeof(cref), "CP-BENCH-%zu", i % 997);
		snprintf(prac, sizeof(prac), "DC Bench %zu", i % 61);
		dr.purpose = (char *)G.purpose;
		dr.case_reference = cref;
		dr.practitioner = prac;
		dr.subject_id = subj;
		dr.record_type = (char *)G.record_type;
		if (G.api == API_LOCATE || G.api == API_NHS) {
			/* As `safeshare locate|request --holder H --nhs-number N`. */
			nhs_number((int)i, nhs);
			pr.nhs_number = nhs;
			if (G.api == API_NHS) {
				pr.holder = (char *)subject_holder((int)i);
				dr.subject_id = "";
				dr.person = &pr;
			} else {
				lr.purpose = dr.purpose;
				lr.case_reference = cref;
				lr.practitioner = prac;
				lr.person = &pr;
				msg = &lr.base;
			}
		}
		if (G.api == API_JSON) {
			if ((json = pbjson_encode(msg, &blen, err, sizeof(err))) == NULL)
				die("%s", err);
		} else
			blen = protobuf_c_message_get_packed_size(msg);
		hlen = snprintf(head, sizeof(head), "POST %s HTTP/1.1\r\n"
		    "Host: 127.0.0.1\r\nContent-Type: %s\r\n"
		    "Content-Length: %zu\r\n%s\r\n", api_paths[G.api], api_types[G.api],
		    blen, G.new_conn ? "Connection: close\r\n" : "");
		G.reqs[i].len = (size_t)hlen + blen;
		G.reqs[i].data = xmalloc(G.reqs[i].len);
		memcpy(G.reqs[i].data, head, (size_t)hlen);
		if (json != NULL)
			memcpy(G.reqs[i].data + hlen, json, blen);
		else
			protobuf_c_message_pack(msg, (uint8_t *)G.reqs[i].data + hlen);
		free(json);
	}
}

/* ---- /proc sampling ---- */

/* utime + stime of a process (all its threads), in seconds; -1 if gone. */
static double
proc_cpu(int pid)
{
	char	 path[64], buf[2048], *p;
	FILE	*fp;
	unsigned long long ut, st;
	size_t	 n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	/* The command name may hold spaces; fields resume after the last ')'. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	    &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long
proc_rss_kib(int pid)
{
	char	 path[64];
	FILE	*fp;
	long	 size, rss;

	snprintf(path, sizeof(path), "/proc/%d/statm", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	if (fscanf(fp, "%ld %ld", &size, &rss) != 2)
		rss = -1;
	fclose(fp);
	return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void
watch_sample(int end)
{
	for (int i = 0; i < G.nwatch; i++) {
		struct watch *w = &G.watch[i];
		long rss = proc_rss_kib(w->pid);

		if (end) {
			w->cpu1 = proc_cpu(w->pid);
			w->rss1 = rss;
		} else {
			w->cpu0 = proc_cpu(w->pid);
			w->rss0 = rss;
		}
		if (rss > w->rss_max)
			w->rss_max = rss;
	}
}

/* ---- connections ---- */

static void
want(struct conn *c, uint32_t ev)
{
	struct epoll_event e;

	if (c->events == ev)
		return;
	memset(&e, 0, sizeof(e));
	e.events = ev;
	e.data.ptr = c;
	if (epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &e) == -1)
		die("epoll_ctl: %s", strerror(errno));
	c->events = ev;
}

/* Closes without lingering: no TIME_WAIT piles up over many short runs. */
static void
conn_close(struct conn *c)
{
	struct linger lg = { 1, 0 };

	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd != -1) {
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(c->fd);
		c->fd = -1;
	}
	if (c->idle && c->st == C_IDLE)
		G.idle_open--;
	c->st = C_FREE;
	c->events = 0;
	c->rlen = 0;
}

static int
conn_open(struct conn *c, double now)
{
	struct epoll_event	e;
	int			one = 1;

	c->t_conn = now;
	c->rlen = 0;
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&G.sins[c->target],
	    sizeof(G.sins[c->target])) == -1 && errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	if ((c->ssl = SSL_new(G.ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		die("SSL_new failed");
	SSL_set_connect_state(c->ssl);
	memset(&e, 0, sizeof(e));
	e.events = EPOLLOUT;
	e.data.ptr = c;
	if (epoll_ctl(G.ep, EPOLL_CTL_ADD, c->fd, &e) == -1)
		die("epoll_ctl: %s", strerror(errno));
	c->events = EPOLLOUT;
	c->st = C_CONNECTING;
	return 0;
}

/* May this connection start another request now? */
static int
may_start(void)
{
	return !G.stopping && G.started_measured < G.max_requests;
}

static void
begin_request(struct conn *c, double now)
{
	c->req = c->idle ? &G.idle_req : &G.reqs[G.nreqs > 1 ? rnd() % G.nreqs : 0];
	c->woff = 0;
	c->rlen = 0;
	c->t_req = G.new_conn && !c->idle ? c->t_conn : now;
	c->measured = !c->idle && G.t_measure > 0 && c->t_req >= G.t_measure;
	if (c->measured)
		G.started_measured++;
	c->st = C_WRITING;
}

/* Starts the next piece of work on a free or finished connection. */
static void
conn_next(struct conn *c, double now)
{
	if (c->idle)
		return;
	if (!may_start()) {
		if (c->st != C_FREE)
			conn_close(c);
		return;
	}
	if (c->st == C_FREE || G.new_conn) {
		if (c->st != C_FREE)
			conn_close(c);
		if (now < c->retry_at)
			return;
		if (conn_open(c, now) == -1) {
			G.errors[E_CONNECT]++;
			c->retry_at = now + 0.01;
		}
		return;
	}
	begin_request(c, now);
}

static void
conn_fail(struct conn *c, enum err_kind k, double now)
{
	if (c->idle) {
		if (c->st != C_IDLE)
			G.idle_failed++;
		conn_close(c);
		return;
	}
	G.errors[k]++;
	if (getenv("LOADGEN_DEBUG"))
		fprintf(stderr, "loadgen: error %s state %d: %s\n", err_names[k],
		    c->st, ERR_error_string(ERR_peek_last_error(), NULL));
	ERR_clear_error();
	conn_close(c);
	c->retry_at = now + (k == E_CONNECT || k == E_TLS ? 0.01 : 0);
}

static void
record(struct conn *c, int status, const char *body, size_t blen, double now)
{
	if (c->idle) {
		c->st = C_IDLE;
		G.idle_open++;
		return;
	}
	if (!c->measured) {
		G.warm_done++;
		return;
	}
	if (status >= 200 && status < 300)
		G.ok++;
	else {
		G.errors[E_HTTP]++;
		if (status >= 100 && status < 1000)
			G.other_status[status]++;
	}
	if (!G.get_path && status == 200 && G.api == API_LOCATE) {
		Safeshare__V1__LocateResponse *l;

		l = safeshare__v1__locate_response__unpack(NULL, blen,
		    (const uint8_t *)body);
		if (l == NULL)
			G.errors[E_PARSE]++;
		else {
			if (l->n_holders > 0)
				G.located++;
			else
				G.unlocated++;
			safeshare__v1__locate_response__free_unpacked(l, NULL);
		}
	} else if (!G.get_path && status == 200) {
		Safeshare__V1__DisclosureResponse *r;

		if (G.api == API_JSON) {
			char err[128];

			r = (Safeshare__V1__DisclosureResponse *)pbjson_decode(
			    &safeshare__v1__disclosure_response__descriptor, body, blen,
			    err, sizeof(err));
		} else
			r = safeshare__v1__disclosure_response__unpack(NULL, blen,
			    (const uint8_t *)body);
		if (r == NULL)
			G.errors[E_PARSE]++;
		else {
			G.decisions[(unsigned)r->decision < 5 ? r->decision : 0]++;
			safeshare__v1__disclosure_response__free_unpacked(r, NULL);
		}
	}
	G.completed++;
	G.target_done[c->target]++;
	G.t_last = now;
	if (G.nlat == G.caplat) {
		uint32_t *v;

		G.caplat = G.caplat ? G.caplat * 2 : 65536;
		if ((v = realloc(G.lat_us, G.caplat * sizeof(*v))) == NULL)
			die("out of memory");
		G.lat_us = v;
	}
	{
		double us = (now - c->t_req) * 1e6;

		G.lat_us[G.nlat++] = us > 4e9 ? 4000000000U : (uint32_t)us;
	}
}

/*
 * Looks for one whole response in c->rbuf. Returns 1 when complete (status,
 * body and whether the server will close are set), 0 to read more, -1 when
 * it cannot be parsed. Content-Length bodies only: neither server chunks.
 */
static int
parse_response(struct conn *c, int *status, const char **body, size_t *blen,
    int *closing)
{
	char	*end, *line, *next;
	long	 clen = -1;
	size_t	 hlen;

	if (c->rlen < 12)
		return 0;
	if ((end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4)) == NULL)
		return c->rlen > 65536 ? -1 : 0;
	hlen = (size_t)(end - c->rbuf) + 4;
	if (strncmp(c->rbuf, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)c->rbuf[9]))
		return -1;
	*status = atoi(c->rbuf + 9);
	*closing = c->rbuf[7] == '0';
	for (line = (char *)memchr(c->rbuf, '\n', hlen) + 1; line < end; line = next + 1) {
		if ((next = memchr(line, '\n', (size_t)(end + 2 - line))) == NULL)
			break;
		if (strncasecmp(line, "Content-Length:", 15) == 0)
			clen = strtol(line + 15, NULL, 10);
		else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0)
			return -1;
		else if (strncasecmp(line, "Connection:", 11) == 0) {
			const char *v = line + 11;

			while (*v == ' ')
				v++;
			if (strncasecmp(v, "close", 5) == 0)
				*closing = 1;
		}
	}
	if (clen < 0 || clen > MAX_RESPONSE)
		return -1;
	if (c->rlen < hlen + (size_t)clen)
		return 0;
	if (c->rlen > hlen + (size_t)clen)
		return -1;	/* nothing was pipelined */
	*body = c->rbuf + hlen;
	*blen = (size_t)clen;
	return 1;
}

/* Drives one connection as far as it goes without blocking. */
static void
conn_io(struct conn *c, double now)
{
	for (;;) {
		int	r, e, status = 0, closing = 0;
		const char *body = NULL;
		size_t	blen = 0;

		switch (c->st) {
		case C_FREE:
			return;
		case C_CONNECTING: {
			socklen_t sl = sizeof(e);

			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &sl) == -1 || e != 0) {
				conn_fail(c, E_CONNECT, now);
				return;
			}
			c->st = C_HANDSHAKE;
			break;
		}
		case C_HANDSHAKE:
			if ((r = SSL_connect(c->ssl)) == 1) {
				begin_request(c, now);
				break;
			}
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ)
				want(c, EPOLLIN);
			else if (e == SSL_ERROR_WANT_WRITE)
				want(c, EPOLLOUT);
			else
				conn_fail(c, E_TLS, now);
			return;
		case C_WRITING:
			r = SSL_write(c->ssl, c->req->data + c->woff,
			    (int)(c->req->len - c->woff));
			if (r > 0) {
				c->woff += (size_t)r;
				if (c->woff == c->req->len)
					c->st = C_READING;
				break;
			}
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ)
				want(c, EPOLLIN);
			else if (e == SSL_ERROR_WANT_WRITE)
				want(c, EPOLLOUT);
			else
				conn_fail(c, e == SSL_ERROR_SSL ? E_TLS : E_IO, now);
			return;
		case C_READING:
		case C_IDLE:
			if (c->rcap - c->rlen < 16384) {
				size_t ncap = c->rcap ? c->rcap * 2 : 32768;
				char *nb;

				if (ncap > MAX_RESPONSE + 65536) {
					conn_fail(c, E_PARSE, now);
					return;
				}
				if ((nb = realloc(c->rbuf, ncap)) == NULL)
					die("out of memory");
				c->rbuf = nb;
				c->rcap = ncap;
			}
			r = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(c->rcap - c->rlen));
			if (r <= 0) {
				e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ) {
					want(c, EPOLLIN);
					return;
				}
				if (e == SSL_ERROR_WANT_WRITE) {
					want(c, EPOLLOUT);
					return;
				}
				if (c->st == C_IDLE) {
					/* The server hung up on a held connection. */
					if (getenv("LOADGEN_DEBUG"))
						fprintf(stderr, "loadgen: held connection "
						    "closed after %.1f s: SSL error %d, errno "
						    "%d\n", now - c->t_conn, e, errno);
					conn_close(c);
					return;
				}
				conn_fail(c, e == SSL_ERROR_SSL && c->rlen == 0 ?
				    E_TLS : E_IO, now);
				return;
			}
			if (c->st == C_IDLE) {
				c->rlen = 0;	/* nothing is expected; drop it */
				break;
			}
			c->rlen += (size_t)r;
			switch (parse_response(c, &status, &body, &blen, &closing)) {
			case 0:
				break;
			case -1:
				conn_fail(c, E_PARSE, now);
				return;
			default:
				if (G.fetching) {
					c->st = C_IDLE;
					return;
				}
				record(c, status, body, blen, now);
				if (c->idle) {
					c->rlen = 0;
					break;
				}
				if (closing && !G.new_conn) {
					/* The server ends keep-alive: start over. */
					conn_close(c);
				}
				conn_next(c, now);
				if (c->st == C_FREE || c->st == C_CONNECTING)
					return;
				break;
			}
			break;
		}
	}
}

/* Requests past their deadline count as timeouts; the connection is replaced. */
static void
check_timeouts(double now)
{
	int total = G.nconns + G.nidle;

	for (int i = 0; i < total; i++) {
		struct conn	*c = &G.conns[i];
		double		 since;

		if (c->st == C_FREE) {
			if (!c->idle)
				conn_next(c, now);
			continue;
		}
		if (c->st == C_IDLE)
			continue;
		since = c->st == C_CONNECTING || c->st == C_HANDSHAKE ? c->t_conn : c->t_req;
		if (now - since > G.timeout)
			conn_fail(c, c->st == C_CONNECTING ? E_CONNECT :
			    c->st == C_HANDSHAKE ? E_TLS : E_TIMEOUT, now);
	}
}

static int
busy_count(int from, int to)
{
	int n = 0;

	for (int i = from; i < to; i++)
		n += G.conns[i].st != C_FREE && G.conns[i].st != C_IDLE;
	return n;
}

static void
loop_once(int ms)
{
	struct epoll_event	evs[512];
	int			n;
	double			now;

	n = epoll_wait(G.ep, evs, 512, ms);
	now = now_s();
	for (int i = 0; i < n; i++) {
		struct conn *c = evs[i].data.ptr;

		if (evs[i].events & (EPOLLERR | EPOLLHUP) && c->st == C_CONNECTING) {
			conn_fail(c, E_CONNECT, now);
			continue;
		}
		conn_io(c, now);
	}
}

/* Opens the held connections, a bounded number of handshakes at a time. */
static void
open_idle(void)
{
	struct conn	*idle = G.conns + G.nconns;
	double		 t0 = now_s(), last = t0;
	int		 next = 0;

	while (!interrupted) {
		double	now = now_s();
		int	busy = busy_count(G.nconns, G.nconns + G.nidle);

		while (next < G.nidle && busy < MAX_HANDSHAKES) {
			if (conn_open(&idle[next], now) == -1) {
				G.idle_failed++;
				idle[next].st = C_FREE;
			} else
				busy++;
			next++;
		}
		if (next == G.nidle && busy == 0)
			break;
		if (now - t0 > G.idle_setup) {
			fprintf(stderr, "loadgen: idle connections not all open after "
			    "%.0f s\n", G.idle_setup);
			break;
		}
		if (now - last > 5) {
			fprintf(stderr, "loadgen: %d of %d idle connections open\n",
			    G.idle_open, G.nidle);
			last = now;
		}
		loop_once(20);
		for (int i = 0; i < next; i++) {
			struct conn *c = &idle[i];

			if (c->st != C_FREE && c->st != C_IDLE &&
			    now - c->t_conn > G.timeout)
				conn_fail(c, E_TIMEOUT, now);
		}
	}
	G.idle_secs = now_s() - t0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct_ms(double p)
{
	uint64_t i;

	if (G.nlat == 0)
		return 0;
	i = (uint64_t)(p * (double)(G.nlat - 1) + 0.5);
	return G.lat_us[i] / 1000.0;
}

static void
report(void)
{
	double	 secs = (G.t_last > G.t_measure ? G.t_last : G.t_end) - G.t_measure;
	double	 rps = secs > 0 ? (double)G.completed / secs : 0;
	double	 cpu = 0;
	long	 rss0 = 0, rss1 = 0, rssmax = 0, rss_before = 0, rss_idle = 0;
	uint64_t nerr = 0;
	const char *mode = G.new_conn ? "new-conn" : "keep-alive";

	qsort(G.lat_us, G.nlat, sizeof(*G.lat_us), cmp_u32);
	for (int i = 0; i < E_NKINDS; i++)
		nerr += G.errors[i];
	for (int i = 0; i < G.nwatch; i++) {
		if (G.watch[i].cpu0 >= 0 && G.watch[i].cpu1 >= 0)
			cpu += G.watch[i].cpu1 - G.watch[i].cpu0;
		rss0 += G.watch[i].rss0;
		rss1 += G.watch[i].rss1;
		rssmax += G.watch[i].rss_max;
		rss_before += G.rss_before_idle[i];
		rss_idle += G.rss_idle[i];
	}

	printf("loadgen %s: %s, %d connection%s, %s %s\n", G.label, mode, G.nconns,
	    G.nconns == 1 ? "" : "s", G.get_path ? "GET" : "POST",
	    G.get_path ? G.get_path : api_paths[G.api]);
	printf("  measured    %.2f s after %.1f s warm-up (%llu warm-up requests)\n",
	    secs, G.warmup, (unsigned long long)G.warm_done);
	printf("  requests    %llu completed, %llu ok (2xx): %.0f requests/s\n",
	    (unsigned long long)G.completed, (unsigned long long)G.ok, rps);
	if (G.ntargets > 1) {
		printf("  targets    ");
		for (int i = 0; i < G.ntargets; i++)
			printf(" 127.0.0.1:%d %llu completed%s", G.ports[i],
			    (unsigned long long)G.target_done[i],
			    i + 1 < G.ntargets ? "," : "\n");
	}
	printf("  latency     p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms\n",
	    pct_ms(0.50), pct_ms(0.90), pct_ms(0.99),
	    G.nlat ? G.lat_us[G.nlat - 1] / 1000.0 : 0);
	printf("  errors      %llu:", (unsigned long long)nerr);
	for (int i = 0; i < E_NKINDS; i++)
		printf(" %s %llu", err_names[i], (unsigned long long)G.errors[i]);
	printf("\n");
	for (int s = 100; s < 1000; s++)
		if (G.other_status[s])
			printf("  status      %d: %llu\n", s,
			    (unsigned long long)G.other_status[s]);
	if (!G.get_path && G.api == API_LOCATE)
		printf("  located     %llu with holders, %llu with none\n",
		    (unsigned long long)G.located, (unsigned long long)G.unlocated);
	else if (!G.get_path)
		printf("  decisions   allow %llu, partial %llu, deny %llu, "
		    "consultation %llu\n", (unsigned long long)G.decisions[1],
		    (unsigned long long)G.decisions[2], (unsigned long long)G.decisions[3],
		    (unsigned long long)G.decisions[4]);
	if (G.nwatch) {
		printf("  server      %.2f CPU s over the measured time (%.0f%% of a "
		    "core); RSS %ld KiB at start, %ld KiB at end, %ld KiB max\n", cpu,
		    secs > 0 ? 100 * cpu / secs : 0, rss0, rss1, rssmax);
		if (G.new_conn && cpu > 0)
			printf("  new conns   %.0f per server CPU second\n",
			    (double)G.completed / cpu);
	}
	if (G.nidle)
		printf("  idle        %d of %d held to the end (%d failed), opened in "
		    "%.1f s; server RSS %ld KiB before, %ld KiB with them: %.1f KiB "
		    "each\n", G.idle_open, G.nidle, G.idle_failed, G.idle_secs,
		    rss_before, rss_idle, G.nidle ? (double)(rss_idle - rss_before) /
		    G.nidle : 0);

	printf("RESULT label=%s mode=%s conns=%d completed=%llu ok=%llu secs=%.3f "
	    "rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%llu",
	    G.label, mode, G.nconns, (unsigned long long)G.completed,
	    (unsigned long long)G.ok, secs, rps, pct_ms(0.50), pct_ms(0.90),
	    pct_ms(0.99), G.nlat ? G.lat_us[G.nlat - 1] / 1000.0 : 0,
	    (unsigned long long)nerr);
	for (int i = 0; i < E_NKINDS; i++)
		printf(" err_%s=%llu", err_names[i], (unsigned long long)G.errors[i]);
	if (!G.get_path && G.api == API_LOCATE)
		printf(" located=%llu unlocated=%llu", (unsigned long long)G.located,
		    (unsigned long long)G.unlocated);
	else if (!G.get_path)
		printf(" allow=%llu partial=%llu deny=%llu",
		    (unsigned long long)G.decisions[1], (unsigned long long)G.decisions[2],
		    (unsigned long long)G.decisions[3]);
	if (G.nwatch)
		printf(" cpu_s=%.3f conn_per_cpu_s=%.1f rss_start_kib=%ld rss_end_kib=%ld "
		    "rss_max_kib=%ld", cpu, G.new_conn && cpu > 0 ?
		    (double)G.completed / cpu : 0, rss0, rss1, rssmax);
	if (G.nidle)
		printf(" idle=%d idle_held=%d idle_failed=%d rss_before_idle_kib=%ld "
		    "rss_idle_kib=%ld", G.nidle, G.idle_open, G.idle_failed, rss_before,
		    rss_idle);
	if (G.ntargets > 1) {
		printf(" targets=%d", G.ntargets);
		for (int i = 0; i < G.ntargets; i++)
			printf(" completed_%d=%llu", G.ports[i],
			    (unsigned long long)G.target_done[i]);
	}
	printf("\n");
	fflush(stdout);
}

static void
setup_tls(void)
{
	G.ctx = SSL_CTX_new(TLS_client_method());
	if (G.ctx == NULL)
		die("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(G.ctx, TLS1_2_VERSION);
	if (G.tls12)
		SSL_CTX_set_max_proto_version(G.ctx, TLS1_2_VERSION);
	/* Every handshake is a full one: no session is ever offered again. */
	SSL_CTX_set_session_cache_mode(G.ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(G.ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(G.ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	    SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(G.ctx, G.cert) != 1)
		die("%s: cannot load the certificate", G.cert);
	if (SSL_CTX_use_PrivateKey_file(G.ctx, G.key, SSL_FILETYPE_PEM) != 1)
		die("%s: cannot load the key", G.key);
	if (SSL_CTX_load_verify_locations(G.ctx, G.ca, NULL) != 1)
		die("%s: cannot load the CA", G.ca);
	SSL_CTX_set_verify(G.ctx, SSL_VERIFY_PEER, NULL);
}

static void
raise_nofile(int need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= (rlim_t)need)
		return;
	rl.rlim_cur = rl.rlim_max < (rlim_t)need ? rl.rlim_max : (rlim_t)need;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < (rlim_t)need)
		die("need %d descriptors, the hard limit is %llu", need,
		    (unsigned long long)rl.rlim_max);
}

/* One GET over one connection; the body goes to stdout. Returns 0 on a 200. */
static int
fetch(const char *path)
{
	struct conn	*c = &G.conns[0];
	double		 t0 = now_s();
	const char	*body;
	size_t		 blen;
	int		 status = 0, closing;

	build_get(&G.idle_req, path, 1);
	c->idle = 1;		/* no statistics, no next request */
	G.fetching = 1;
	if (conn_open(c, t0) == -1)
		die("cannot connect to 127.0.0.1:%d", G.port);
	while (c->st != C_FREE && c->st != C_IDLE && now_s() - t0 < G.timeout)
		loop_once(20);
	if (c->st != C_IDLE || parse_response(c, &status, &body, &blen, &closing) != 1)
		die("GET %s: no reply", path);
	fwrite(body, 1, blen, stdout);
	conn_close(c);
	return status == 200 ? 0 : 1;
}

/* Lets the kernel pick a loopback port, prints it and lets it go again. */
static int
free_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		sl = sizeof(sin);
	int			fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) == -1)
		die("free port: %s", strerror(errno));
	close(fd);
	printf("%d\n", ntohs(sin.sin_port));
	return 0;
}

/*
 * The holder batch, in a child process with blocking I/O and a TLS context
 * of its own: N put_record ops for subjects H000000.., one request. Prints
 * its status and duration, and a RESULT_HOLDER line. Returns the exit code.
 */
static int
holder_batch(void)
{
	Safeshare__V1__HolderRequest	 hr = SAFESHARE__V1__HOLDER_REQUEST__INIT;
	Safeshare__V1__HolderOp		*ops, **opp;
	Safeshare__V1__FieldValue	*fv, **fvp;
	struct timeval			 tv = { 600, 0 };
	SSL_CTX				*ctx;
	SSL				*ssl;
	char				(*ids)[24], head[256], *resp;
	uint8_t				*buf;
	size_t				 n = (size_t)G.holder_ops, blen, got = 0;
	double				 t0;
	int				 fd, hlen, status = 0, r;

	ops = xmalloc(n * sizeof(*ops));
	opp = xmalloc(n * sizeof(*opp));
	fv = xmalloc(2 * n * sizeof(*fv));
	fvp = xmalloc(2 * n * sizeof(*fvp));
	ids = xmalloc(n * sizeof(*ids));
	for (size_t i = 0; i < n; i++) {
		safeshare__v1__holder_op__init(&ops[i]);
		snprintf(ids[i], sizeof(ids[i]), "H%06zu", i);
		ops[i].kind = SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_PUT_RECORD;
		ops[i].subject_id = ids[i];
		ops[i].record_type = "person";
		for (int k = 0; k < 2; k++) {
			safeshare__v1__field_value__init(&fv[2 * i + k]);
			fv[2 * i + k].name = k ? "date_of_birth" : "full_name";
			fv[2 * i + k].value = k ? "2015-06-01" : "Holder Bench";
			fvp[2 * i + k] = &fv[2 * i + k];
		}
		ops[i].fields = &fvp[2 * i];
		ops[i].n_fields = 2;
		opp[i] = &ops[i];
	}
	hr.ops = opp;
	hr.n_ops = n;
	blen = safeshare__v1__holder_request__get_packed_size(&hr);
	hlen = snprintf(head, sizeof(head), "POST /v1/holder/ops HTTP/1.1\r\n"
	    "Host: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n", blen);
	buf = xmalloc((size_t)hlen + blen);
	memcpy(buf, head, (size_t)hlen);
	safeshare__v1__holder_request__pack(&hr, buf + hlen);

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_use_certificate_chain_file(ctx, G.holder_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, G.holder_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, G.ca, NULL) != 1)
		die("holder batch: cannot set up TLS with %s", G.holder_cert);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&G.sin, sizeof(G.sin)) == -1)
		die("holder batch: connect: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	t0 = now_s();
	if (SSL_connect(ssl) != 1)
		die("holder batch: TLS handshake failed");
	for (size_t off = 0; off < (size_t)hlen + blen; off += (size_t)r)
		if ((r = SSL_write(ssl, buf + off, (int)((size_t)hlen + blen - off))) <= 0)
			die("holder batch: write failed");
	resp = xmalloc(65536);
	while (got < 65535 && (r = SSL_read(ssl, resp + got, (int)(65535 - got))) > 0)
		got += (size_t)r;
	resp[got] = '\0';
	sscanf(resp, "HTTP/1.%*d %d", &status);
	printf("  holder      one batch of %zu put_record ops (%zu KiB): status %d "
	    "after %.2f s\n", n, ((size_t)hlen + blen) >> 10, status, now_s() - t0);
	printf("RESULT_HOLDER ops=%zu status=%d secs=%.3f\n", n, status, now_s() - t0);
	fflush(stdout);
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(ctx);
	free(resp);
	free(buf);
	free(ids);
	free(fvp);
	free(fv);
	free(opp);
	free(ops);
	return status == 200 ? 0 : 1;
}

static pid_t
holder_batch_start(void)
{
	pid_t pid;

	fflush(stdout);
	if ((pid = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (pid == 0)
		_exit(holder_batch());
	return pid;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen --port P --cert F --key F --ca F [options]\n"
	    "       loadgen --port P --cert F --key F --ca F --fetch PATH\n"
	    "       loadgen --make-data FILE [--subjects N]\n"
	    "       loadgen --free-port   print a port free on 127.0.0.1 now\n"
	    "  --port P[,P...]      one server, or several (repeat --port or list\n"
	    "                       them): connection i goes to the (i mod n)-th\n"
	    "  --connect 127.0.0.1:P[,127.0.0.1:P...]  the same, host and port\n"
	    "  --host 127.0.0.1     the only address accepted\n"
	    "  --conns N            concurrent connections (1)\n"
	    "  --requests N         measured requests at most (1000000)\n"
	    "  --seconds S          measured time at most (10)\n"
	    "  --warmup S           unmeasured time first (1)\n"
	    "  --new-conn           a new connection and full handshake per request\n"
	    "  --get PATH           GET PATH instead of POST /v1/disclosures\n"
	    "  --api NAME           how disclosures are sent: v1 (POST /v1/disclosures,\n"
	    "                       the default), connect-proto or connect-json (POST\n"
	    "                       /safeshare.v1.DisclosureService/Request); nhs (POST\n"
	    "                       /v1/disclosures naming the person by NHS number and\n"
	    "                       holder); locate (POST /v1/locate by NHS number)\n"
	    "  --subjects N         subject ids B000000.. (and their NHS numbers) to\n"
	    "                       draw from (10000)\n"
	    "  --purpose ID         (child_protection)\n"
	    "  --record-type ID     (person)\n"
	    "  --timeout S          per request, and per handshake (5)\n"
	    "  --idle N             hold N more connections open during the run\n"
	    "  --idle-path PATH     what each held connection asks once (/healthz,\n"
	    "                       or the --get PATH)\n"
	    "  --idle-setup S       time allowed to open them (300)\n"
	    "  --watch PID[,PID]    sample these processes' CPU time and RSS\n"
	    "  --tls12              TLS 1.2 only (default: 1.2 or 1.3)\n"
	    "  --label NAME         names the run in the report\n"
	    "  --holder-batch N     when measuring starts, one holder request of N\n"
	    "                       put_record ops (subjects H000000..), from a child\n"
	    "  --holder-cert F, --holder-key F   the holder's certificate for it\n"
	    "  --seed N             for the subject draw\n");
	exit(2);
}

/* Parses a bounded number; bad input is a usage error. */
static double
num(const char *s, double lo, double hi, const char *what)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		die("%s: expected a number from %g to %g, got \"%s\"", what, lo, hi, s);
	return v;
}

/*
 * --port P[,P...] (host 0) or --connect 127.0.0.1:P[,...] (host 1): more
 * targets, in order. Only loopback is ever connected to.
 */
static void
add_targets(const char *arg, int host)
{
	char	*copy, *tok, *save = NULL;

	if ((copy = strdup(arg)) == NULL)
		die("out of memory");
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		char *port = tok;

		if (host) {
			if (strncmp(tok, "127.0.0.1:", 10) != 0)
				die("--connect %s: expected 127.0.0.1:PORT (only "
				    "127.0.0.1 is allowed)", tok);
			port = tok + 10;
		}
		if (G.ntargets == MAX_TARGETS)
			die("at most %d targets", MAX_TARGETS);
		G.ports[G.ntargets++] = (int)num(port, 1, 65535,
		    host ? "--connect port" : "--port");
	}
	free(copy);
	if (G.ntargets > 0)
		G.port = G.ports[0];
}

enum {
	O_PORT = 256, O_HOST, O_CERT, O_KEY, O_CA, O_CONNS, O_REQUESTS, O_SECONDS,
	O_WARMUP, O_NEWCONN, O_GET, O_SUBJECTS, O_PURPOSE, O_RTYPE, O_TIMEOUT,
	O_IDLE, O_IDLEPATH, O_IDLESETUP, O_WATCH, O_TLS12, O_LABEL, O_SEED,
	O_FETCH, O_MAKEDATA, O_FREEPORT, O_HBATCH, O_HCERT, O_HKEY, O_API, O_HELP,
	O_CONNECT
};

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, O_PORT },
		{ "connect", required_argument, NULL, O_CONNECT },
		{ "host", required_argument, NULL, O_HOST },
		{ "cert", required_argument, NULL, O_CERT },
		{ "key", required_argument, NULL, O_KEY },
		{ "ca", required_argument, NULL, O_CA },
		{ "conns", required_argument, NULL, O_CONNS },
		{ "requests", required_argument, NULL, O_REQUESTS },
		{ "seconds", required_argument, NULL, O_SECONDS },
		{ "warmup", required_argument, NULL, O_WARMUP },
		{ "new-conn", no_argument, NULL, O_NEWCONN },
		{ "get", required_argument, NULL, O_GET },
		{ "subjects", required_argument, NULL, O_SUBJECTS },
		{ "purpose", required_argument, NULL, O_PURPOSE },
		{ "record-type", required_argument, NULL, O_RTYPE },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "idle", required_argument, NULL, O_IDLE },
		{ "idle-path", required_argument, NULL, O_IDLEPATH },
		{ "idle-setup", required_argument, NULL, O_IDLESETUP },
		{ "watch", required_argument, NULL, O_WATCH },
		{ "tls12", no_argument, NULL, O_TLS12 },
		{ "label", required_argument, NULL, O_LABEL },
		{ "seed", required_argument, NULL, O_SEED },
		{ "fetch", required_argument, NULL, O_FETCH },
		{ "api", required_argument, NULL, O_API },
		{ "make-data", required_argument, NULL, O_MAKEDATA },
		{ "free-port", no_argument, NULL, O_FREEPORT },
		{ "holder-batch", required_argument, NULL, O_HBATCH },
		{ "holder-cert", required_argument, NULL, O_HCERT },
		{ "holder-key", required_argument, NULL, O_HKEY },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 }
	};
	const char	*make = NULL, *fetch_path = NULL;
	double		 last_check = 0, last_sample = 0;
	pid_t		 holder = -1;
	int		 ch, total, hstatus;

	G.nconns = 1;
	G.max_requests = 1000000;
	G.seconds = 10;
	G.warmup = 1;
	G.timeout = 5;
	G.nsubjects = 10000;
	G.purpose = "child_protection";
	G.record_type = "person";
	G.label = "run";
	G.idle_setup = 300;
	G.rng = 0x9e3779b97f4a7c15ULL;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case O_PORT:
			add_targets(optarg, 0);
			break;
		case O_CONNECT:
			add_targets(optarg, 1);
			break;
		case O_HOST:
			if (strcmp(optarg, "127.0.0.1") != 0)
				die("--host %s: only 127.0.0.1 is allowed", optarg);
			break;
		case O_CERT: G.cert = optarg; break;
		case O_KEY: G.key = optarg; break;
		case O_CA: G.ca = optarg; break;
		case O_CONNS: G.nconns = (int)num(optarg, 1, MAX_CONNS, "--conns"); break;
		case O_REQUESTS:
			G.max_requests = (uint64_t)num(optarg, 1, (double)MAX_REQUESTS,
			    "--requests");
			break;
		case O_SECONDS: G.seconds = num(optarg, 0.1, 3600, "--seconds"); break;
		case O_WARMUP: G.warmup = num(optarg, 0, 600, "--warmup"); break;
		case O_NEWCONN: G.new_conn = 1; break;
		case O_GET: G.get_path = optarg; break;
		case O_API:
			for (G.api = 0; G.api < API_N &&
			    strcmp(optarg, api_names[G.api]) != 0; G.api++)
				;
			if (G.api == API_N)
				usage();
			break;
		case O_SUBJECTS:
			G.nsubjects = (int)num(optarg, 1, 1000000, "--subjects");
			break;
		case O_PURPOSE: G.purpose = optarg; break;
		case O_RTYPE: G.record_type = optarg; break;
		case O_TIMEOUT: G.timeout = num(optarg, 0.01, 600, "--timeout"); break;
		case O_IDLE: G.nidle = (int)num(optarg, 0, MAX_CONNS, "--idle"); break;
		case O_IDLEPATH: G.idle_path = optarg; break;
		case O_IDLESETUP: G.idle_setup = num(optarg, 1, 3600, "--idle-setup"); break;
		case O_WATCH: {
			char *s = optarg, *end;

			while (*s != '\0' && G.nwatch < MAX_WATCH) {
				long pid = strtol(s, &end, 10);

				if (end == s || pid <= 0)
					die("--watch: expected PID[,PID...]");
				G.watch[G.nwatch++].pid = (int)pid;
				s = *end == ',' ? end + 1 : end;
			}
			break;
		}
		case O_TLS12: G.tls12 = 1; break;
		case O_LABEL: G.label = optarg; break;
		case O_SEED:
			G.rng = (uint64_t)num(optarg, 1, 1e18, "--seed");
			break;
		case O_FETCH: fetch_path = optarg; break;
		case O_MAKEDATA: make = optarg; break;
		case O_FREEPORT: return free_port();
		case O_HBATCH:
			G.holder_ops = (int)num(optarg, 1, 100000, "--holder-batch");
			break;
		case O_HCERT: G.holder_cert = optarg; break;
		case O_HKEY: G.holder_key = optarg; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (make != NULL)
		return make_data(make, G.nsubjects);
	if (G.port == 0 || G.cert == NULL || G.key == NULL || G.ca == NULL)
		usage();
	if (G.nconns + G.nidle > MAX_CONNS)
		die("--conns plus --idle: at most %d", MAX_CONNS);
	if (G.holder_ops > 0 && (G.holder_cert == NULL || G.holder_key == NULL))
		die("--holder-batch needs --holder-cert and --holder-key");

	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	raise_nofile(G.nconns + G.nidle + 64);
	setup_tls();
	for (int i = 0; i < G.ntargets; i++) {
		memset(&G.sins[i], 0, sizeof(G.sins[i]));
		G.sins[i].sin_family = AF_INET;
		G.sins[i].sin_port = htons((uint16_t)G.ports[i]);
		G.sins[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	G.sin = G.sins[0];
	if ((G.ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1: %s", strerror(errno));
	total = G.nconns + G.nidle;
	if ((G.conns = calloc((size_t)total, sizeof(*G.conns))) == NULL)
		die("out of memory");
	for (int i = 0; i < total; i++) {
		G.conns[i].fd = -1;
		G.conns[i].idle = i >= G.nconns;
		G.conns[i].target = i % G.ntargets;
	}

	if (fetch_path != NULL) {
		int rc = fetch(fetch_path);

		free(G.conns[0].rbuf);
		free(G.idle_req.data);
		free(G.conns);
		SSL_CTX_free(G.ctx);
		close(G.ep);
		return rc;
	}

	build_requests();
	build_get(&G.idle_req, G.idle_path ? G.idle_path :
	    G.get_path ? G.get_path : "/healthz", 0);

	G.t_begin = now_s();
	if (G.nidle > 0) {
		watch_sample(0);
		for (int i = 0; i < G.nwatch; i++)
			G.rss_before_idle[i] = G.watch[i].rss0;
		open_idle();
		watch_sample(0);
		for (int i = 0; i < G.nwatch; i++)
			G.rss_idle[i] = G.watch[i].rss0;
	}

	/* Warm-up, then the measured part, then wait for what is in flight. */
	G.t_begin = now_s();
	G.t_measure = 0;
	for (int i = 0; i < G.nconns; i++)
		conn_next(&G.conns[i], G.t_begin);
	while (!interrupted) {
		double now;

		loop_once(5);
		now = now_s();
		if (G.t_measure == 0 && now - G.t_begin >= G.warmup) {
			G.t_measure = now;
			G.t_last = now;
			watch_sample(0);
			last_sample = now;
			if (G.holder_ops > 0)
				holder = holder_batch_start();
		}
		if (G.t_measure > 0 && !G.stopping &&
		    (now - G.t_measure >= G.seconds ||
		    G.started_measured >= G.max_requests)) {
			G.stopping = 1;
			G.t_end = now;
		}
		if (G.t_measure > 0 && now - last_sample >= 1) {
			/* Track the RSS peak; the end sample is taken below. */
			for (int i = 0; i < G.nwatch; i++) {
				long rss = proc_rss_kib(G.watch[i].pid);

				if (rss > G.watch[i].rss_max)
					G.watch[i].rss_max = rss;
			}
			last_sample = now;
		}
		if (now - last_check >= 0.05) {
			check_timeouts(now);
			last_check = now;
		}
		if (G.stopping && (busy_count(0, G.nconns) == 0 ||
		    now - G.t_end > G.timeout))
			break;
	}
	if (G.t_end == 0)
		G.t_end = now_s();
	watch_sample(1);
	report();
	/* The batch's own line comes after (it may outlast the measured time). */
	if (holder > 0 && waitpid(holder, &hstatus, 0) == -1)
		die("waitpid: %s", strerror(errno));
	for (int i = 0; i < total; i++) {
		conn_close(&G.conns[i]);
		free(G.conns[i].rbuf);
	}
	for (size_t i = 0; i < G.nreqs; i++)
		free(G.reqs[i].data);
	free(G.reqs);
	free(G.idle_req.data);
	free(G.conns);
	free(G.lat_us);
	SSL_CTX_free(G.ctx);
	close(G.ep);
	return interrupted ? 130 : 0;
}
