/*
 * Protocol parsing and validation. Every tests/data/protocol/NAME.yaml is a
 * bad protocol; NAME.expect lists diagnostics that must each appear exactly,
 * as "NAME.yaml:line:col: message" (D13: precise errors).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "holder.h"
#include "policy.h"
#include "protocol.h"
#include "storage.h"
#include "testutil.h"
#include "yamlutil.h"
#include "util.h"

#define PDIR DATA_DIR "/protocol"

struct bad_file {
	char name[256];
};

static int
cmp_bad(const void *a, const void *b)
{
	return strcmp(((const struct bad_file *)a)->name, ((const struct bad_file *)b)->name);
}

ParameterizedTestParameters(protocol, bad_files)
{
	static struct bad_file	 files[256];
	size_t			 n = 0;
	DIR			*dir = opendir(PDIR);
	struct dirent		*de;

	/* No assertion here: a failing generator hangs Criterion. count_files checks. */
	if (dir == NULL)
		return cr_make_param_array(struct bad_file, files, 0);
	while ((de = readdir(dir)) != NULL && n < 256) {
		size_t len = strlen(de->d_name);

		if (len > 5 && strcmp(de->d_name + len - 5, ".yaml") == 0)
			snprintf(files[n++].name, sizeof(files[0].name), "%s", de->d_name);
	}
	closedir(dir);
	qsort(files, n, sizeof(files[0]), cmp_bad);
	return cr_make_param_array(struct bad_file, files, n);
}

/* Issue 4 asks for at least 25 bad protocol files. */
Test(protocol, bad_files_present)
{
	struct criterion_test_params	 params = protocol_bad_files_param();

	cr_assert_geq(params.length, 25, "only %zu bad protocol files in " PDIR,
	    params.length);
}

ParameterizedTest(struct bad_file *f, protocol, bad_files)
{
	struct diag	 d = { 0 };
	struct protocol	*p;
	char		 path[512], *yaml, *expect, *save = NULL;
	size_t		 len, elen;
	int64_t		 now;

	snprintf(path, sizeof(path), PDIR "/%s", f->name);
	yaml = file_read(path, SIZE_MAX, &len, NULL, NULL, 0);
	cr_assert_not_null(yaml);
	snprintf(path + strlen(path) - 5, 16, ".expect");
	expect = file_read(path, SIZE_MAX, &elen, NULL, NULL, 0);
	cr_assert_not_null(expect, "%s: missing .expect file", f->name);
	date_parse("2026-11-25", &now);
	p = protocol_load_buffer(f->name, (unsigned char *)yaml, len, now, &d);
	cr_expect_null(p, "%s: a bad protocol was accepted", f->name);
	protocol_unref(p);
	for (char *line = strtok_r(expect, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		int found = 0;

		if (line[0] == '#' || line[0] == '\0')
			continue;
		for (size_t i = 0; i < d.n; i++)
			found |= strcmp(d.msgs[i], line) == 0;
		if (!found) {
			fprintf(stderr, "%s: got:\n", f->name);
			diag_print(&d, stderr);
		}
		cr_expect(found, "%s: expected diagnostic not produced: %s", f->name, line);
	}
	free(yaml);
	free(expect);
	diag_free(&d);
}

Test(protocol, example_loads)
{
	struct diag	 d = { 0 };
	struct protocol	*p;
	int64_t		 now;

	date_parse("2026-11-25", &now);
	p = protocol_load(SOURCE_DIR "/config/protocol.yaml", now, &d);
	diag_print(&d, stderr);
	cr_assert_not_null(p);
	cr_expect_eq(d.nerrors, 0);
	cr_expect_geq(p->nagencies, 3);
	cr_expect_eq(strlen(p->sha256), 64);
	cr_expect_not_null(protocol_agency(p, "police"));
	cr_expect_not_null(protocol_find_rule(p, protocol_agency(p, "police"),
	    protocol_purpose(p, "child_protection"), protocol_record_type(p, "person")));
	cr_expect_null(protocol_find_rule(p, protocol_agency(p, "police"),
	    protocol_purpose(p, "adult_safeguarding"), protocol_record_type(p, "person")),
	    "D1: no rule, no access");
	/* {role: requester} applies to every requester. */
	cr_expect_not_null(protocol_find_rule(p, protocol_agency(p, "housing"),
	    protocol_purpose(p, "marac"), protocol_record_type(p, "concern")));
	protocol_unref(p);
	diag_free(&d);
}

Test(protocol, expired_refused_and_warned_before)
{
	struct diag	 d = { 0 };
	struct protocol	*p;
	int64_t		 now;

	/* The example's review-by date is 2027-09-30. */
	date_parse("2027-10-01", &now);
	p = protocol_load(SOURCE_DIR "/config/protocol.yaml", now, &d);
	cr_assert_null(p, "a protocol past its review-by date is not in force (D13)");
	cr_expect(d.n > 0 && strstr(d.msgs[0], "2027-09-30") != NULL, "names the date");
	diag_free(&d);

	date_parse("2027-09-30", &now);
	p = protocol_load(SOURCE_DIR "/config/protocol.yaml", now, &d);
	cr_assert_not_null(p, "in force through its review-by day");
	cr_expect_eq(d.nerrors, 0);
	/* Then the subject-only agencies' warnings (issue 14 item 5). */
	cr_expect(d.n >= 1 && strstr(d.msgs[0], "less than 30 days") != NULL,
	    "warns 30 days before");
	protocol_unref(p);
	diag_free(&d);
}

Test(protocol, certificate_lookup)
{
	struct diag	 d = { 0 };
	unsigned char	 spki[32] = { 0 };
	struct protocol	*p;

	p = protocol_load(SOURCE_DIR "/config/protocol.yaml", 0, &d);
	cr_assert_not_null(p);
	cr_expect_str_eq(protocol_agency_by_cert(p, spki, "CN=police,O=safeshare dev")->id,
	    "police");
	cr_expect_null(protocol_agency_by_cert(p, spki, "CN=police,O=someone else"));
	cr_expect_null(protocol_agency_by_cert(p, spki, NULL));
	protocol_unref(p);
	diag_free(&d);
}

/* Issue 14 item 5: a pin restricts; the subject alone is only warned about. */
Test(protocol, a_pin_must_match)
{
	static const char y[] =
	    "protocol: { id: t, version: \"1\", owner: o, review_by: 2099-01-01 }\n"
	    "agencies:\n"
	    "  - { id: pinned, subject: \"CN=p,O=t\", roles: [requester],\n"
	    "      spki_sha256: \"0101010101010101010101010101010101010101010101010101010101010101\" }\n"
	    "  - { id: plain, subject: \"CN=q,O=t\", roles: [requester] }\n"
	    "purposes: []\nrecord_types: []\nrules: []\n";
	unsigned char	 pin[32], other[32] = { 0 };
	struct diag	 d = { 0 };
	struct protocol	*p;

	memset(pin, 1, sizeof(pin));
	p = protocol_load_buffer("pin.yaml", (const unsigned char *)y, strlen(y), 0, &d);
	cr_assert_not_null(p);
	cr_expect_str_eq(protocol_agency_by_cert(p, pin, "CN=p,O=t")->id, "pinned");
	cr_expect_str_eq(protocol_agency_by_cert(p, pin, "CN=else")->id, "pinned");
	cr_expect_null(protocol_agency_by_cert(p, other, "CN=p,O=t"),
	    "another key under the pinned subject");
	cr_expect_str_eq(protocol_agency_by_cert(p, other, "CN=q,O=t")->id, "plain");
	cr_expect_null(protocol_agency_by_cert(p, other, ""));
	cr_expect_eq(d.nerrors, 0);
	cr_assert_eq(d.n, 1);
	cr_expect_str_eq(d.msgs[0], "pin.yaml:5:5: warning: agency \"plain\" is identified "
	    "by subject alone: any key the CA certifies under that subject is this "
	    "agency; pin its key with spki_sha256");
	protocol_unref(p);
	diag_free(&d);
}

Test(yamlutil, did_you_mean)
{
	static const char *const c[] = { "fields", "purpose", "record_type" };

	cr_expect_str_eq(did_you_mean("fileds", c, 3), "fields");
	cr_expect_str_eq(did_you_mean("record-type", c, 3), "record_type");
	cr_expect_null(did_you_mean("zzzzzz", c, 3));
}

Test(yamlutil, dates)
{
	int64_t t;

	cr_expect_eq(date_parse("2026-02-28", &t), 0);
	cr_expect_eq(date_parse("2026-02-29", &t), -1, "not a leap year");
	cr_expect_eq(date_parse("2026-2-28", &t), -1);
	cr_expect_eq(date_parse("28/02/2026", &t), -1);
}

/*
 * Property (issue 14 item 1): any protocol the loader accepts can be used.
 * Protocols are generated from a fixed seed with ids of every length around
 * PROTOCOL_ID_MAX and some hostile bytes; each accepted one has valid ids
 * only, and every agency then exercises what its roles allow: holders write
 * each record type (checked, then applied), flags and consent; requesters
 * ask for every (purpose, record type) of every subject; certificates map
 * back to their agency. A crash fails the test.
 */
static uint64_t gen_state;

static unsigned
gen(unsigned n)
{
	gen_state ^= gen_state << 13;
	gen_state ^= gen_state >> 7;
	gen_state ^= gen_state << 17;
	return (unsigned)(gen_state % n);
}

/* A double-quoted YAML scalar holding an id, usually valid, sometimes not. */
static void
gen_id(FILE *fp, const char *prefix)
{
	static const char *const odd[] = { " ", "/", "\\n", "\\x1b[2K", "\\u200b",
	    "\\u00e9", "-", ".", ":", "\\t", "\\\"", "=" };
	size_t	 len = strlen(prefix);
	unsigned target = gen(10) < 9 ? 1 + gen(12) : 56 + gen(16);

	fprintf(fp, "\"%s", prefix);
	for (; len < target; len++) {
		if (gen(100) == 0)
			fputs(odd[gen(sizeof(odd) / sizeof(odd[0]))], fp);
		else
			fputc("abcdefghijklmnopqrstuvwxyz0123456789_"[gen(37)], fp);
	}
	fputc('"', fp);
}

static const char *
gen_value(enum field_type t)
{
	static const char *const v[] = { "a value", "some text\nover lines",
	    "Ann Example", "2001-02-03", "AB1 2CD", "01234 567890", "42",
	    "1 Example Road", "true" };

	return v[t];
}

static char *
gen_protocol(size_t *len)
{
	static const char *const roles[] = { "requester", "holder", "auditor", "admin",
	    "guardian" };
	static const char *const types[] = { "string", "text", "name", "date",
	    "postcode", "phone", "integer", "address", "boolean" };
	char	*buf = NULL;
	FILE	*fp = open_memstream(&buf, len);
	unsigned nag = 1 + gen(4), npu = 1 + gen(2), nrt = 1 + gen(2);

	fputs("protocol:\n  id: ", fp);
	gen_id(fp, "p");
	fputs("\n  version: \"1.0\"\n  owner: o\n  review_by: 2099-01-01\n"
	    "flags: [", fp);
	gen_id(fp, "f");
	fputs("]\nagencies:\n", fp);
	for (unsigned i = 0; i < nag; i++) {
		unsigned r = 1 + gen(31);

		fputs("  - id: ", fp);
		gen_id(fp, "a");
		fprintf(fp, "\n    subject: \"CN=ag%u,O=t\"\n    roles: [", i);
		for (unsigned k = 0, first = 1; k < 5; k++)
			if (r & (1u << k)) {
				fprintf(fp, "%s%s", first ? "" : ", ", roles[k]);
				first = 0;
			}
		fputs("]\n", fp);
	}
	fputs("purposes:\n", fp);
	for (unsigned i = 0; i < npu; i++) {
		fputs("  - id: ", fp);
		gen_id(fp, "u");
		fputs("\n    lawful_basis: { article6: \"Art 6(1)(e)\" }\n", fp);
	}
	fputs("record_types:\n", fp);
	for (unsigned i = 0; i < nrt; i++) {
		fputs("  - id: ", fp);
		gen_id(fp, "t");
		fputs("\n    fields:\n", fp);
		for (unsigned k = 0, nf = 1 + gen(4); k < nf; k++) {
			fputs("      - { name: ", fp);
			gen_id(fp, "x");
			fprintf(fp, ", type: %s, label: %s }\n", types[gen(9)],
			    gen(2) ? "fact" : "opinion");
		}
	}
	/* One rule per (purpose, record type) for every requester. */
	fputs("rules:\n", fp);
	for (unsigned i = 0; i < npu * nrt; i++) {
		fputs("  - id: ", fp);
		gen_id(fp, "r");
		fputs("\n    agencies: { role: requester }\n", fp);
		fprintf(fp, "    purpose: PURPOSE%u\n    record_type: TYPE%u\n",
		    i / nrt, i % nrt);
		fprintf(fp, "    fields: FIELDS%u\n    consent: %s\n", i % nrt,
		    gen(2) ? "required" : "not_required");
	}
	fclose(fp);
	return buf;
}

/*
 * The generated rules name purposes, record types and field lists by
 * placeholders (PURPOSE0, TYPE1, FIELDS1); this replaces them with the ids
 * written above them, read back from the YAML text. Returns a new string.
 */
static char *
gen_resolve(const char *y)
{
	char	*out = NULL, *p;
	size_t	 olen;
	FILE	*fp = open_memstream(&out, &olen);
	char	 pu[8][128], rt[8][128], fields[8][1024];
	size_t	 npu = 0, nrt = 0;
	const char *s = y;

	/* Collect ids in order from the known shapes the generator writes. */
	while ((p = strstr(s, "\n  - id: ")) != NULL) {
		const char *q = p + 9, *e = strchr(q, '\n');
		char	 id[128];

		snprintf(id, sizeof(id), "%.*s", (int)(e - q), q);
		if (strstr(e, "\n    lawful_basis") == e && npu < 8)
			snprintf(pu[npu++], sizeof(pu[0]), "%s", id);
		else if (strstr(e, "\n    fields:\n") == e && nrt < 8) {
			const char *f = e + strlen("\n    fields:\n");

			fields[nrt][0] = '\0';
			strcat(fields[nrt], "[");
			while (strncmp(f, "      - { name: ", 16) == 0) {
				const char *fe = strstr(f, ", type:");

				if (fields[nrt][1] != '\0')
					strcat(fields[nrt], ", ");
				strncat(fields[nrt], f + 16, (size_t)(fe - f - 16));
				f = strchr(f, '\n') + 1;
			}
			strcat(fields[nrt], "]");
			snprintf(rt[nrt++], sizeof(rt[0]), "%s", id);
		}
		s = e;
	}
	for (s = y; *s != '\0'; ) {
		unsigned k;

		if (sscanf(s, "PURPOSE%u", &k) == 1 && k < npu) {
			fputs(pu[k], fp);
			s += strspn(s, "PURPOSE0123456789");
		} else if (sscanf(s, "TYPE%u", &k) == 1 && k < nrt) {
			fputs(rt[k], fp);
			s += strspn(s, "TYPE0123456789");
		} else if (sscanf(s, "FIELDS%u", &k) == 1 && k < nrt) {
			fputs(fields[k], fp);
			s += strspn(s, "FIELDS0123456789");
		} else
			fputc(*s++, fp);
	}
	fclose(fp);
	return out;
}

/* Every route the agency's roles allow, against a real store. */
static void
exercise(const struct protocol *p, struct storage *st, int64_t now)
{
	for (size_t i = 0; i < p->nagencies; i++) {
		const struct agency	*a = &p->agencies[i];
		unsigned char		 zero[32] = { 0 };

		cr_expect_eq(protocol_agency_by_cert(p, zero, a->subject), a);
		if (!(a->roles & ROLE_HOLDER))
			continue;
		for (size_t t = 0; t < p->nrecord_types; t++) {
			const struct record_type	*rt = &p->record_types[t];
			Safeshare__V1__HolderOp		 op[3], *ops[3];
			Safeshare__V1__FieldValue	 fv[PROTOCOL_MAX_FIELDS];
			Safeshare__V1__FieldValue	*fp[PROTOCOL_MAX_FIELDS];
			struct holder_report		 r;
			char				 subj[48];

			snprintf(subj, sizeof(subj), "S%zu-%zu", i, t);
			for (size_t k = 0; k < 3; k++) {
				safeshare__v1__holder_op__init(&op[k]);
				op[k].subject_id = subj;
				ops[k] = &op[k];
			}
			op[0].kind = SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_PUT_RECORD;
			op[0].record_type = rt->id;
			for (size_t f = 0; f < rt->nfields; f++) {
				safeshare__v1__field_value__init(&fv[f]);
				fv[f].name = rt->fields[f].name;
				fv[f].value = (char *)gen_value(rt->fields[f].type);
				fp[f] = &fv[f];
			}
			op[0].fields = fp;
			op[0].n_fields = rt->nfields;
			op[1].kind = SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_FLAG;
			op[1].flag = p->flags.n > 0 ? p->flags.v[0] : "";
			op[2].kind = SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_CONSENT;
			op[2].consent = "granted";
			for (int dry = 1; dry >= 0; dry--) {
				int rc = holder_apply(st, p, a, ops, p->flags.n > 0 ? 3 : 1,
				    dry, now, NULL, &r);

				cr_expect_eq(rc, 0, "holder %s, %s: %s", a->id, rt->id,
				    r.nproblems ? r.problems[0].message : r.error);
				holder_report_free(&r);
			}
		}
	}
	for (size_t i = 0; i < p->nagencies; i++) {
		const struct agency *a = &p->agencies[i];

		if (!(a->roles & ROLE_REQUESTER))
			continue;
		for (size_t h = 0; h < p->nagencies; h++)
		for (size_t t = 0; t < p->nrecord_types; t++)
		for (size_t u = 0; u < p->npurposes; u++) {
			struct policy_request	 pr = { 0 };
			struct store_subject	 ss;
			struct decision		 dec;
			char			 subj[48];

			snprintf(subj, sizeof(subj), "S%zu-%zu", h, t);
			pr.purpose = p->purposes[u].id;
			pr.case_ref = "C-1";
			pr.practitioner = "P";
			pr.subject_id = subj;
			pr.record_type = p->record_types[t].id;
			cr_assert_eq(storage_subject(st, &p->record_types[t], subj, a->id,
			    pr.purpose, &ss, NULL, 0), 0);
			policy_decide(p, a, &pr, &ss.view, now, &dec);
			cr_expect_not_null(dec.reason);
			store_subject_free(&ss);
		}
	}
}

Test(protocol, generated_protocols_load_and_run)
{
	size_t	 accepted = 0, refused = 0;
	int64_t	 now;
	char	 db[256], err[256];

	gen_state = 0x5afe5ba2e14ULL;	/* fixed: the same 300 protocols every run */
	date_parse("2026-11-25", &now);
	snprintf(db, sizeof(db), "/tmp/safeshare-test-gen-%d.db", (int)getpid());
	for (int n = 0; n < 300; n++) {
		struct diag	 d = { 0 };
		struct protocol	*p;
		struct storage	*st;
		size_t		 len;
		char		*raw = gen_protocol(&len), *y = gen_resolve(raw);

		p = protocol_load_buffer("gen.yaml", (unsigned char *)y, strlen(y), now,
		    &d);
		if (p == NULL) {
			refused++;
			goto next;
		}
		accepted++;
		for (size_t i = 0; i < p->nagencies; i++)
			cr_expect_null(protocol_id_problem(p->agencies[i].id), "%s",
			    p->agencies[i].id);
		for (size_t i = 0; i < p->nrecord_types; i++)
			for (size_t f = 0; f < p->record_types[i].nfields; f++)
				cr_expect_null(protocol_id_problem(
				    p->record_types[i].fields[f].name));
		t_db_remove(db);
		cr_assert_eq(storage_open(&st, &storage_sqlite, db, err, sizeof(err)), 0,
		    "%s", err);
		exercise(p, st, now);
		storage_close(st);
		protocol_unref(p);
next:
		diag_free(&d);
		free(raw);
		free(y);
	}
	t_db_remove(db);
	/* Both kinds, so the generator is not vacuous. */
	cr_expect_geq(accepted, 50, "only %zu generated protocols accepted", accepted);
	cr_expect_geq(refused, 50, "only %zu generated protocols refused", refused);
}

/*
 * Issue 22: onboarding school_dsl, named in no rule, silently gave it what
 * a {role: requester} rule releases. policy check says so; an agency that
 * some rule names is not warned about.
 */
Test(protocol, role_rule_reaching_an_unnamed_agency_is_warned)
{
	static const char y[] =
	    "protocol: { id: t, version: \"1\", owner: o, review_by: 2099-01-01 }\n"
	    "agencies:\n"
	    "  - { id: police, spki_sha256: \"0101010101010101010101010101010101010101010101010101010101010101\", roles: [requester] }\n"
	    "  - { id: school_dsl, spki_sha256: \"0202020202020202020202020202020202020202020202020202020202020202\", roles: [requester] }\n"
	    "purposes:\n"
	    "  - { id: marac, description: d, lawful_basis: { article6: a, article9: b } }\n"
	    "record_types:\n"
	    "  - id: concern\n"
	    "    fields: [ { name: summary, type: text, label: fact } ]\n"
	    "  - id: note\n"
	    "    fields: [ { name: summary, type: text, label: fact } ]\n"
	    "rules:\n"
	    "  - { id: police-marac, agencies: [police], purpose: marac, record_type: note,\n"
	    "      fields: [summary], consent: not_required }\n"
	    "  - id: marac-concern\n"
	    "    agencies: { role: requester }\n"
	    "    purpose: marac\n    record_type: concern\n"
	    "    fields: [summary]\n    consent: not_required\n";
	struct diag	 d = { 0 };
	struct protocol	*p;
	size_t		 hits = 0;

	p = protocol_load_buffer("role.yaml", (const unsigned char *)y, strlen(y), 0, &d);
	for (size_t i = 0; i < d.n; i++)
		if (strstr(d.msgs[i], "named in no rule") != NULL) {
			hits++;
			cr_expect_not_null(strstr(d.msgs[i], "\"school_dsl\""), "%s", d.msgs[i]);
			cr_expect_not_null(strstr(d.msgs[i], "marac-concern"), "%s", d.msgs[i]);
		}
	cr_expect_eq(hits, 1, "one warning, for school_dsl only");
	cr_expect_eq(d.nerrors, 0, "%s", d.n ? d.msgs[0] : "");
	protocol_unref(p);
	diag_free(&d);
}
