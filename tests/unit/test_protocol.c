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

#include "protocol.h"
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
	yaml = file_read(path, SIZE_MAX, &len);
	cr_assert_not_null(yaml);
	snprintf(path + strlen(path) - 5, 16, ".expect");
	expect = file_read(path, SIZE_MAX, &elen);
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
	cr_expect(d.n == 1 && strstr(d.msgs[0], "less than 30 days") != NULL,
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
