/*
 * safeshare holder: data-holding agencies write records, consent decisions,
 * risk flags and NHS number links for their own subjects (D3, D9, D12,
 * D18), one at a time or in bulk from a CSV or JSON lines file, all or
 * nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "import.h"
#include "safeshare/client.h"
#include "util.h"

static const char *const usage =
    "usage: safeshare holder COMMAND [options] [connection options]\n"
    "\n"
    "Commands (role holder; only for subjects your agency holds):\n"
    "  put-record SUBJECT RECORD_TYPE NAME=VALUE...  [--verified YYYY-MM-DD]\n"
    "        [--nhs-number N]\n"
    "        create or replace a record; every field it holds, by name;\n"
    "        --nhs-number also links the subject to that NHS number\n"
    "  delete-record SUBJECT RECORD_TYPE\n"
    "  consent SUBJECT granted|refused|withdrawn  [--agencies A,B]\n"
    "        [--purposes P,Q] [--expires YYYY-MM-DD] [--decided YYYY-MM-DD]\n"
    "        record a consent decision (scope: all agencies/purposes unless\n"
    "        given; --decided: the day it was made, not in the future, when\n"
    "        not today); earlier decisions are kept as history\n"
    "  flag SUBJECT FLAG      set a risk flag declared in the protocol\n"
    "  unflag SUBJECT FLAG    remove it (the history is kept)\n"
    "  link-nhs SUBJECT NHS_NUMBER\n"
    "        link the subject to an NHS number (10 digits, check digit; spaces\n"
    "        allowed): every holder's subject linking it is the same person\n"
    "  unlink-nhs SUBJECT [NHS_NUMBER]\n"
    "        unlink it: the subject is a person of its own again, with its\n"
    "        records, its consent and the flags set on it (docs/holder-import.md)\n"
    "  import FILE            load a .csv or .jsonl file (docs/holder-import.md):\n"
    "        every row is checked, then all are written or none\n"
    "  show SUBJECT           read back what is held: the NHS number linked,\n"
    "        records (verified, fields and values), the consent decisions in\n"
    "        force with their history, and the flags set (with removed ones);\n"
    "        not a disclosure, not logged\n"
    "  accesses [--since SEQ] [--follow]\n"
    "        every use of your records by other agencies, as the log has it\n"
    "        (see safeshare holder accesses --help)\n"
    "\n"
    "Options:\n"
    "  --dry-run              check everything, write nothing\n"
    "  --format csv|jsonl     import: the file's format (default: its extension)\n"
    "  --progress             import: show progress even when not on a terminal\n"
    "  --json                 print the result as JSON\n"
    "  --server HOST:PORT --cert FILE --key FILE --ca FILE\n"
    "\n"
    "Exit codes: 0 written (or checked, with --dry-run; shown), 1 the file has\n"
    "problems, 2 usage, 4 refused by the server (show: 404 unknown_subject for\n"
    "a subject that is not yours), 5 no answer.\n";

enum { O_DRY = O_HELP + 1, O_VERIFIED, O_AGENCIES, O_PURPOSES, O_EXPIRES, O_DECIDED,
    O_FORMAT, O_PROGRESS, O_NHS };

struct hopts {
	struct conn_opts	 conn;
	int			 json, dry_run, progress;
	const char		*verified, *agencies, *purposes, *expires, *decided;
	const char		*format, *nhs;
};

static int
fail_usage(const char *msg)
{
	if (msg != NULL)
		fprintf(stderr, "safeshare holder: %s\n", msg);
	fputs(usage, stderr);
	return SS_EXIT_USAGE;
}

static void
show_progress(const struct import *im, size_t line)
{
	fprintf(stderr, "\rreading %s: line %zu", im->name, line);
}

/* Requests above this ask the server for its limit first (one more round trip). */
#define BIG_REQUEST	(256 * 1024)

/*
 * The server's limits.max_import when a request of size bytes is over it,
 * else 0 (also when the server does not say, or size is small).
 */
static unsigned long long
server_max_import(struct ss_client *c, size_t size)
{
	Safeshare__V1__Health	*h = NULL;
	unsigned long long	 limit = 0;
	char			 err[256];
	int			 status;

	if (size <= BIG_REQUEST || ss_health(c, &h, &status, err, sizeof(err)) == -1)
		return 0;
	if (h->max_import > 0 && size > h->max_import)
		limit = (unsigned long long)h->max_import;
	safeshare__v1__health__free_unpacked(h, NULL);
	return limit;
}

/* Sends the ops; prints the outcome. src names the file for problem lines. */
static int
send_ops(struct hopts *o, struct import *im, const char *src)
{
	Safeshare__V1__HolderRequest	 rq = SAFESHARE__V1__HOLDER_REQUEST__INIT;
	Safeshare__V1__HolderResult	*res = NULL;
	Safeshare__V1__Error		*e = NULL;
	struct ss_client		*c;
	char				 err[512];
	unsigned long long		 limit;
	size_t				 size;
	int				 status, rc;

	rq.ops = im->ops;
	rq.n_ops = im->nops;
	rq.dry_run = o->dry_run;
	if ((rc = connect_client(&o->conn, &c)) != SS_EXIT_OK)
		return rc;
	size = safeshare__v1__holder_request__get_packed_size(&rq);
	if (src != NULL && o->progress)
		fprintf(stderr, "sending %zu operations (%zu bytes) ...\n", im->nops, size);
	if ((limit = server_max_import(c, size)) != 0) {
		/* Issue 14: said before sending, not as a broken connection. */
		fprintf(stderr, "safeshare: %s: too large: %zu bytes as a request, and "
		    "the server accepts at most %llu (its limits.max_import); split "
		    "the file\n", src ? src : "request", size, limit);
		ss_client_free(c);
		return SS_EXIT_REFUSED;
	}
	rc = ss_call_message(c, "/v1/holder/ops", &rq.base,
	    &safeshare__v1__holder_result__descriptor, (ProtobufCMessage **)&res, &e,
	    &status, err, sizeof(err));
	ss_client_free(c);
	if (rc == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		if (size > BIG_REQUEST)
			fprintf(stderr, "safeshare: the request was %zu bytes; a server "
			    "closes the connection on a body over its limits.max_import "
			    "(8388608 bytes by default)\n", size);
		return SS_EXIT_NOANSWER;
	}
	if (e != NULL) {
		if (o->json) {
			json_t *pr = json_array();

			for (size_t i = 0; i < e->n_problems; i++)
				json_array_append_new(pr, json_pack("{s:i,s:o,s:o,s:o}",
				    "line", (int)e->problems[i]->line,
				    "code", jsonw_str(e->problems[i]->code),
				    "field", jsonw_str(e->problems[i]->field),
				    "message", jsonw_str(e->problems[i]->message)));
			jsonw_print(stdout, json_pack("{s:b,s:i,s:o,s:o,s:o}", "ok", 0,
			    "status", status, "code", jsonw_str(e->code),
			    "message", jsonw_str(e->message), "problems", pr));
		} else if (e->n_problems == 0) {
			cli_refused(status, e);
			if (status == 413)
				fprintf(stderr, "safeshare: the server's limits.max_import "
				    "is smaller; split the file or raise the limit\n");
		} else {
			for (size_t i = 0; i < e->n_problems; i++)
				if (src != NULL)
					fprintf(stderr, "%s:%u: %s: %s\n", T(src),
					    e->problems[i]->line, T(e->problems[i]->code),
					    T(e->problems[i]->message));
				else
					fprintf(stderr, "safeshare: refused (HTTP %d): %s: "
					    "%s\n", status, T(e->problems[i]->code),
					    T(e->problems[i]->message));
			if (src != NULL)
				fprintf(stderr, "safeshare: %s: nothing was imported\n", src);
		}
		safeshare__v1__error__free_unpacked(e, NULL);
		return SS_EXIT_REFUSED;
	}
	if (o->json)
		jsonw_print(stdout, json_pack("{s:b,s:I,s:I,s:b}", "ok", 1,
		    "checked", (json_int_t)res->checked,
		    "applied", (json_int_t)res->applied, "dry_run", o->dry_run));
	else if (o->dry_run)
		printf("checked %u operation%s: all would be accepted; nothing was "
		    "written (--dry-run)\n", res->checked, res->checked == 1 ? "" : "s");
	else if (src != NULL)
		printf("imported %u operation%s from %s\n", res->applied,
		    res->applied == 1 ? "" : "s", src);
	else
		printf("ok\n");
	safeshare__v1__holder_result__free_unpacked(res, NULL);
	return SS_EXIT_OK;
}

/* YYYY-MM-DD of t into buf, or "-" for 0. */
static const char *
day(int64_t t, char *buf, size_t len)
{
	time_t		tt = (time_t)t;
	struct tm	tm;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL)
		snprintf(buf, len, "-");
	else
		strftime(buf, len, "%Y-%m-%d", &tm);
	return buf;
}

/* A day as "YYYY-MM-DD", or null for 0 (never set). */
static json_t *
json_day(int64_t t)
{
	char buf[32];

	return t == 0 ? json_null() : jsonw_str(day(t, buf, sizeof(buf)));
}

static json_t *
json_list(char **v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, jsonw_str(v[i]));
	return a;
}

static void
show_json(const Safeshare__V1__HolderShow *h)
{
	json_t	*o = json_object(), *recs = json_array(), *cons = json_array();
	json_t	*flags = json_array();

	jsonw_set(o, "ok", json_true());
	jsonw_set(o, "subject", jsonw_str(h->subject_id));
	jsonw_set(o, "nhs_number", h->nhs_number[0] ? jsonw_str(h->nhs_number) :
	    json_null());
	for (size_t i = 0; i < h->n_records; i++) {
		const Safeshare__V1__HolderShowRecord	*r = h->records[i];
		json_t					*x = json_object();
		json_t					*fields = json_object();

		jsonw_set(x, "record_type", jsonw_str(r->record_type));
		jsonw_set(x, "verified", json_day(r->verified));
		for (size_t j = 0; j < r->n_fields; j++)
			jsonw_set(fields, r->fields[j]->name,
			    jsonw_str(r->fields[j]->value));
		jsonw_set(x, "fields", fields);
		json_array_append_new(recs, x);
	}
	jsonw_set(o, "records", recs);
	for (size_t i = 0; i < h->n_consents; i++) {
		const Safeshare__V1__HolderShowConsent	*c = h->consents[i];
		json_t					*x = json_object();

		jsonw_set(x, "state", jsonw_str(c->state));
		jsonw_set(x, "agencies", json_list(c->agencies, c->n_agencies));
		jsonw_set(x, "purposes", json_list(c->purposes, c->n_purposes));
		jsonw_set(x, "expires", json_day(c->expires));
		jsonw_set(x, "decided", json_day(c->decided));
		jsonw_set(x, "recorded", json_day(c->recorded));
		jsonw_set(x, "recorded_by", jsonw_str(c->recorded_by));
		jsonw_set(x, "in_force", json_boolean(c->in_force));
		jsonw_set(x, "expired", json_boolean(c->expired));
		json_array_append_new(cons, x);
	}
	jsonw_set(o, "consents", cons);
	for (size_t i = 0; i < h->n_flags; i++) {
		const Safeshare__V1__HolderShowFlag	*f = h->flags[i];
		json_t					*x = json_object();

		jsonw_set(x, "flag", jsonw_str(f->flag));
		jsonw_set(x, "active", json_boolean(f->removed_at == 0));
		jsonw_set(x, "set", json_day(f->set_at));
		jsonw_set(x, "set_by", jsonw_str(f->set_by));
		jsonw_set(x, "removed", json_day(f->removed_at));
		jsonw_set(x, "removed_by", f->removed_at == 0 ? json_null() :
		    jsonw_str(f->removed_by));
		json_array_append_new(flags, x);
	}
	jsonw_set(o, "flags", flags);
	jsonw_set(o, "truncated", json_boolean(h->truncated));
	jsonw_print(stdout, o);
}

/* "a,b" from a scope list, "all" when empty; a T()'d string. */
static const char *
scope(char **v, size_t n, char *buf, size_t len)
{
	size_t off = 0;

	snprintf(buf, len, "%s", n == 0 ? "all" : "");
	for (size_t i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "", v[i]);
	return T(buf);
}

static void
show_consent_line(const Safeshare__V1__HolderShowConsent *c)
{
	char	a[512], p[512], d1[32], d2[32], d3[32];

	printf("  %-9s agencies=%s purposes=%s expires=%s decided=%s recorded=%s "
	    "by %s%s\n", T(c->state), scope(c->agencies, c->n_agencies, a, sizeof(a)),
	    scope(c->purposes, c->n_purposes, p, sizeof(p)),
	    day(c->expires, d1, sizeof(d1)), day(c->decided, d2, sizeof(d2)),
	    day(c->recorded, d3, sizeof(d3)), T(c->recorded_by),
	    c->expired ? " (expired)" : "");
}

static void
show_text(const Safeshare__V1__HolderShow *h)
{
	char	d1[32], d2[32];
	size_t	n;

	printf("subject %s\nNHS number: %s\n\nrecords:\n", T(h->subject_id),
	    h->nhs_number[0] ? T(h->nhs_number) : "(none linked)");
	if (h->n_records == 0)
		printf("  (none)\n");
	for (size_t i = 0; i < h->n_records; i++) {
		const Safeshare__V1__HolderShowRecord *r = h->records[i];

		printf("  %s (verified %s)\n", T(r->record_type),
		    day(r->verified, d1, sizeof(d1)));
		for (size_t j = 0; j < r->n_fields; j++)
			printf("    %s = %s\n", T(r->fields[j]->name),
			    T(r->fields[j]->value));
	}
	printf("\nconsent in force:\n");
	for (size_t i = n = 0; i < h->n_consents; i++)
		if (h->consents[i]->in_force) {
			show_consent_line(h->consents[i]);
			n++;
		}
	if (n == 0)
		printf("  (none: the protocol's default applies)\n");
	printf("\nconsent history (newest first):\n");
	if (h->n_consents == 0)
		printf("  (none)\n");
	for (size_t i = 0; i < h->n_consents; i++)
		show_consent_line(h->consents[i]);
	printf("\nflags set:\n");
	for (size_t i = n = 0; i < h->n_flags; i++)
		if (h->flags[i]->removed_at == 0) {
			printf("  %s (set %s by %s)\n", T(h->flags[i]->flag),
			    day(h->flags[i]->set_at, d1, sizeof(d1)),
			    T(h->flags[i]->set_by));
			n++;
		}
	if (n == 0)
		printf("  (none)\n");
	for (size_t i = n = 0; i < h->n_flags; i++)
		if (h->flags[i]->removed_at != 0) {
			if (n++ == 0)
				printf("\nflags removed (newest first):\n");
			printf("  %s (set %s by %s, removed %s by %s)\n",
			    T(h->flags[i]->flag), day(h->flags[i]->set_at, d1, sizeof(d1)),
			    T(h->flags[i]->set_by),
			    day(h->flags[i]->removed_at, d2, sizeof(d2)),
			    T(h->flags[i]->removed_by));
		}
	if (h->truncated)
		printf("\n(older history was left out: only the newest entries are "
		    "shown)\n");
}

/* safeshare holder show SUBJECT: the holder's own subject, read back. */
static int
do_show(struct hopts *o, const char *subject)
{
	Safeshare__V1__HolderShow	*h = NULL;
	Safeshare__V1__Error		*e = NULL;
	struct ss_client		*c;
	char				 err[512];
	int				 status, rc;

	if ((rc = connect_client(&o->conn, &c)) != SS_EXIT_OK)
		return rc;
	rc = ss_holder_show(c, subject, &h, &e, &status, err, sizeof(err));
	ss_client_free(c);
	if (rc == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		return SS_EXIT_NOANSWER;
	}
	if (e != NULL) {
		if (o->json) {
			jsonw_print(stdout, json_pack("{s:b,s:i,s:o,s:o}", "ok", 0,
			    "status", status, "code", jsonw_str(e->code),
			    "message", jsonw_str(e->message)));
		} else
			cli_refused(status, e);
		safeshare__v1__error__free_unpacked(e, NULL);
		return SS_EXIT_REFUSED;
	}
	if (o->json)
		show_json(h);
	else
		show_text(h);
	safeshare__v1__holder_show__free_unpacked(h, NULL);
	return SS_EXIT_OK;
}

static int
do_import(struct hopts *o, const char *path)
{
	struct import	 im = { 0 };
	size_t		 len = 0;
	char		*buf, err[256];
	int		 fmt, rc;

	if (o->format != NULL)
		fmt = strcmp(o->format, "csv") == 0 ? IMPORT_CSV :
		    strcmp(o->format, "jsonl") == 0 ? IMPORT_JSONL : -1;
	else
		fmt = import_format_of(path);
	if (fmt == -1)
		return fail_usage(o->format ? "--format: expected csv or jsonl" :
		    "cannot tell the format from the name; use --format csv|jsonl");
	if ((buf = file_read(path, SIZE_MAX, &len, NULL, err, sizeof(err))) == NULL) {
		fprintf(stderr, "safeshare: %s: %s\n", path, err);
		return SS_EXIT_LOCAL;
	}
	im.name = path;
	if (o->progress)
		im.progress = show_progress;
	rc = import_parse(&im, fmt, buf, len);
	free(buf);
	if (o->progress)
		fprintf(stderr, "\rread %s: %zu operations%s\n", path, im.nops,
		    rc == -1 ? ", with problems" : "");
	if (rc == -1) {
		for (size_t i = 0; i < im.nerrors; i++)
			fprintf(stderr, "%s\n", T(im.errors[i]));
		if (im.more > 0)
			fprintf(stderr, "%s: ... and %zu more problems\n", path, im.more);
		fprintf(stderr, "safeshare: %s: nothing was imported\n", path);
		import_free(&im);
		return SS_EXIT_LOCAL;
	}
	rc = send_ops(o, &im, path);
	import_free(&im);
	return rc;
}

int
cmd_holder(int argc, char *argv[])
{
	static const struct option longopts[] = {
		CONN_LONGOPTS,
		{ "dry-run", no_argument, NULL, O_DRY },
		{ "verified", required_argument, NULL, O_VERIFIED },
		{ "agencies", required_argument, NULL, O_AGENCIES },
		{ "purposes", required_argument, NULL, O_PURPOSES },
		{ "expires", required_argument, NULL, O_EXPIRES },
		{ "decided", required_argument, NULL, O_DECIDED },
		{ "format", required_argument, NULL, O_FORMAT },
		{ "progress", no_argument, NULL, O_PROGRESS },
		{ "nhs-number", required_argument, NULL, O_NHS },
		{ NULL, 0, NULL, 0 }
	};
	struct hopts			 o = { 0 };
	struct import			 im = { .name = "command line" };
	Safeshare__V1__HolderOp		*op;
	const char			*cmd;
	int				 ch, rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? SS_EXIT_USAGE : SS_EXIT_OK;
	}
	cmd = argv[1];
	if (strcmp(cmd, "accesses") == 0)
		return cmd_feed(0, argc - 1, argv + 1);
	argc--;
	argv++;
	o.progress = isatty(STDERR_FILENO);
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (conn_opt(ch, &o.conn, &o.json))
			continue;
		switch (ch) {
		case O_HELP: fputs(usage, stdout); return SS_EXIT_OK;
		case O_DRY: o.dry_run = 1; break;
		case O_VERIFIED: o.verified = optarg; break;
		case O_AGENCIES: o.agencies = optarg; break;
		case O_PURPOSES: o.purposes = optarg; break;
		case O_EXPIRES: o.expires = optarg; break;
		case O_DECIDED: o.decided = optarg; break;
		case O_FORMAT: o.format = optarg; break;
		case O_PROGRESS: o.progress = 1; break;
		case O_NHS: o.nhs = optarg; break;
		default: return fail_usage(NULL);
		}
	}
	argc -= optind;
	argv += optind;

	if (strcmp(cmd, "import") == 0) {
		if (argc != 1)
			return fail_usage("import takes one FILE");
		return do_import(&o, argv[0]);
	}
	if (strcmp(cmd, "show") == 0) {
		if (argc != 1)
			return fail_usage("show takes one SUBJECT");
		return do_show(&o, argv[0]);
	}
	op = import_new_op(&im, 0);
	if (strcmp(cmd, "put-record") == 0) {
		if (argc < 3)
			return fail_usage("put-record needs SUBJECT RECORD_TYPE NAME=VALUE...");
		for (int i = 2; i < argc; i++) {
			char *eq = strchr(argv[i], '=');

			if (eq == NULL || eq == argv[i]) {
				fprintf(stderr, "safeshare holder: \"%s\": expected "
				    "NAME=VALUE\n", argv[i]);
				import_free(&im);
				return SS_EXIT_USAGE;
			}
			*eq = '\0';
			import_add_field(op, argv[i], eq + 1);
		}
		import_set_key(&im, op, 0, "record_type", argv[1]);
		if (o.verified != NULL)
			import_set_key(&im, op, 0, "verified", o.verified);
		if (o.nhs != NULL)
			import_set_key(&im, op, 0, "nhs_number", o.nhs);
	} else if (strcmp(cmd, "delete-record") == 0) {
		if (argc != 2)
			return fail_usage("delete-record needs SUBJECT RECORD_TYPE");
		import_set_key(&im, op, 0, "op", "delete_record");
		import_set_key(&im, op, 0, "record_type", argv[1]);
	} else if (strcmp(cmd, "consent") == 0) {
		if (argc != 2)
			return fail_usage("consent needs SUBJECT granted|refused|withdrawn");
		import_set_key(&im, op, 0, "op", "consent");
		import_set_key(&im, op, 0, "consent", argv[1]);
		if (o.agencies != NULL)
			import_set_key(&im, op, 0, "agencies", o.agencies);
		if (o.purposes != NULL)
			import_set_key(&im, op, 0, "purposes", o.purposes);
		if (o.expires != NULL)
			import_set_key(&im, op, 0, "expires", o.expires);
		if (o.decided != NULL)
			import_set_key(&im, op, 0, "decided", o.decided);
	} else if (strcmp(cmd, "flag") == 0 || strcmp(cmd, "unflag") == 0) {
		if (argc != 2)
			return fail_usage("flag and unflag need SUBJECT FLAG");
		import_set_key(&im, op, 0, "op", cmd);
		import_set_key(&im, op, 0, "flag", argv[1]);
	} else if (strcmp(cmd, "link-nhs") == 0) {
		if (argc != 2)
			return fail_usage("link-nhs needs SUBJECT NHS_NUMBER");
		import_set_key(&im, op, 0, "op", "link_nhs");
		import_set_key(&im, op, 0, "nhs_number", argv[1]);
	} else if (strcmp(cmd, "unlink-nhs") == 0) {
		if (argc != 1 && argc != 2)
			return fail_usage("unlink-nhs needs SUBJECT [NHS_NUMBER]");
		import_set_key(&im, op, 0, "op", "unlink_nhs");
		if (argc == 2)
			import_set_key(&im, op, 0, "nhs_number", argv[1]);
	} else {
		import_free(&im);
		fprintf(stderr, "safeshare holder: unknown command \"%s\"\n\n", cmd);
		return fail_usage(NULL);
	}
	import_set_key(&im, op, 0, "subject", argv[0]);
	/* A bad NHS number is refused here, before anything is sent. */
	if (im.nerrors > 0) {
		for (size_t i = 0; i < im.nerrors; i++) {
			const char	*m = im.errors[i];
			size_t		 k = strlen(im.name) + 4;	/* "NAME:0: " */

			fprintf(stderr, "safeshare holder: %s\n", T(strlen(m) > k ?
			    m + k : m));
		}
		import_free(&im);
		return SS_EXIT_USAGE;
	}
	rc = send_ops(&o, &im, NULL);
	import_free(&im);
	return rc;
}
