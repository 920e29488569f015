/*
 * Holders' import files (client/import.c). Every tests/data/import/NAME.csv
 * or NAME.jsonl is read; NAME.expect holds either "ok N" (N operations, no
 * problems) or the exact problems, one per line, "NAME.ext:LINE: message".
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import.h"
#include "util.h"

#define IDIR DATA_DIR "/import"

struct import_file {
	char name[256];
};

static int
cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct import_file *)a)->name,
	    ((const struct import_file *)b)->name);
}

ParameterizedTestParameters(import, files)
{
	static struct import_file	 files[128];
	size_t				 n = 0;
	DIR				*dir = opendir(IDIR);
	struct dirent			*de;

	/* No assertion here: a failing generator hangs Criterion. */
	if (dir == NULL)
		return cr_make_param_array(struct import_file, files, 0);
	while ((de = readdir(dir)) != NULL && n < 128)
		if (import_format_of(de->d_name) != -1)
			snprintf(files[n++].name, sizeof(files[0].name), "%s", de->d_name);
	closedir(dir);
	qsort(files, n, sizeof(files[0]), cmp_file);
	return cr_make_param_array(struct import_file, files, n);
}

Test(import, files_present)
{
	cr_assert_geq(import_files_param().length, 10);
}

ParameterizedTest(struct import_file *f, import, files)
{
	struct import	 im = { .name = f->name };
	char		 path[1024], *buf, *expect, *save = NULL;
	size_t		 len, elen;
	int		 rc;
	unsigned	 want_ops;

	snprintf(path, sizeof(path), IDIR "/%s", f->name);
	buf = file_read(path, SIZE_MAX, &len, NULL, NULL, 0);
	cr_assert_not_null(buf);
	*strrchr(path, '.') = '\0';
	strcat(path, ".expect");
	expect = file_read(path, SIZE_MAX, &elen, NULL, NULL, 0);
	cr_assert_not_null(expect, "%s: no .expect file", f->name);
	rc = import_parse(&im, import_format_of(f->name), buf, len);
	for (size_t i = 0; i < im.nerrors; i++)
		fprintf(stderr, "%s: got: %s\n", f->name, im.errors[i]);
	if (sscanf(expect, "ok %u", &want_ops) == 1) {
		cr_expect_eq(rc, 0, "%s: problems in a good file", f->name);
		cr_expect_eq(im.nops, want_ops, "%s: %zu ops, expected %u", f->name,
		    im.nops, want_ops);
	} else {
		size_t want = 0;

		cr_expect_eq(rc, -1, "%s: a bad file was accepted", f->name);
		for (char *line = strtok_r(expect, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			int found = 0;

			if (line[0] == '#')
				continue;
			want++;
			for (size_t i = 0; i < im.nerrors; i++)
				found |= strcmp(im.errors[i], line) == 0;
			cr_expect(found, "%s: expected problem not reported: %s",
			    f->name, line);
		}
		cr_expect_eq(im.nerrors, want, "%s: %zu problems, expected %zu",
		    f->name, im.nerrors, want);
	}
	import_free(&im);
	free(buf);
	free(expect);
}

static const Safeshare__V1__FieldValue *
field(const Safeshare__V1__HolderOp *op, const char *name)
{
	for (size_t i = 0; i < op->n_fields; i++)
		if (strcmp(op->fields[i]->name, name) == 0)
			return op->fields[i];
	return NULL;
}

Test(import, csv_quoting_and_lines)
{
	struct import	 im = { .name = "t.csv" };
	const char	*csv = "subject,record_type,address,field.verified\r\n"
	    "S-1,person,\"1 High St, \"\"The Old Mill\"\"\nTown\",x\r\n"
	    "S-2,person,,\n";

	cr_assert_eq(import_parse(&im, IMPORT_CSV, csv, strlen(csv)), 0);
	cr_assert_eq(im.nops, 2);
	cr_expect_str_eq(field(im.ops[0], "address")->value,
	    "1 High St, \"The Old Mill\"\nTown");
	cr_expect_str_eq(field(im.ops[0], "verified")->value, "x",
	    "field.NAME names a field that shares a control key's name");
	cr_expect_str_eq(im.ops[0]->verified, "");
	cr_expect_eq(im.ops[0]->line, 2);
	cr_expect_eq(im.ops[1]->line, 4, "the quoted line break moves the line count");
	cr_expect_eq(im.ops[1]->n_fields, 0, "empty cells are not given");
	import_free(&im);
}

Test(import, jsonl_consent_scope)
{
	struct import	 im = { .name = "t.jsonl" };
	const char	*js = "{\"op\":\"consent\",\"subject\":\"S-1\",\"consent\":\"refused\","
	    "\"agencies\":[\"police\",\"housing\"],\"purposes\":\"marac; housing_support\"}\n";

	cr_assert_eq(import_parse(&im, IMPORT_JSONL, js, strlen(js)), 0);
	cr_assert_eq(im.nops, 1);
	cr_expect_eq(im.ops[0]->kind, SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_CONSENT);
	cr_expect_eq(im.ops[0]->n_agencies, 2);
	cr_expect_str_eq(im.ops[0]->agencies[1], "housing");
	cr_expect_eq(im.ops[0]->n_purposes, 2);
	cr_expect_str_eq(im.ops[0]->purposes[1], "housing_support");
	import_free(&im);
}

/* Issue 17 item 5 (D18): NHS numbers are sent checked and without spaces. */
Test(import, nhs_numbers_normalised)
{
	struct import	 im = { .name = "t.csv" };
	const char	*csv = "op,subject,record_type,full_name,nhs_number\n"
	    "put_record,S-1,person,Ann,943 476 5919\n"
	    "link_nhs,S-2,,,4010232137\n"
	    "unlink_nhs,S-3,,,\n"
	    "put_record,S-4,person,Bo,\n";

	cr_assert_eq(import_parse(&im, IMPORT_CSV, csv, strlen(csv)), 0);
	cr_assert_eq(im.nops, 4);
	cr_expect_str_eq(im.ops[0]->nhs_number, "9434765919");
	cr_expect_eq(im.ops[0]->n_fields, 1, "nhs_number is not a record field");
	cr_expect_eq(im.ops[1]->kind, SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_LINK_NHS);
	cr_expect_str_eq(im.ops[1]->nhs_number, "4010232137");
	cr_expect_eq(im.ops[2]->kind, SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_UNLINK_NHS);
	cr_expect_str_eq(im.ops[2]->nhs_number, "");
	cr_expect_str_eq(im.ops[3]->nhs_number, "", "an empty cell: not given");
	import_free(&im);
}

Test(import, nul_bytes_refused)
{
	struct import	 im = { .name = "t.csv" };

	cr_expect_eq(import_parse(&im, IMPORT_CSV, "subject\0x\n", 10), -1);
	cr_expect_eq(im.nops, 0);
	import_free(&im);
}

static size_t progress_calls;

static void
count_progress(const struct import *im, size_t line)
{
	(void)im;
	(void)line;
	progress_calls++;
}

Test(import, progress_every_thousand_rows)
{
	struct import	 im = { .name = "t.csv", .progress = count_progress };
	char		*buf = calloc(1, 64 * 2600), *p = buf;

	p += sprintf(p, "subject,record_type,full_name\n");
	for (int i = 0; i < 2500; i++)
		p += sprintf(p, "S-%d,person,Ann\n", i);
	cr_assert_eq(import_parse(&im, IMPORT_CSV, buf, strlen(buf)), 0);
	cr_expect_eq(im.nops, 2500);
	cr_expect_eq(progress_calls, 2);
	import_free(&im);
	free(buf);
}

/* Issue 14 item 12: a UTF-8 BOM (spreadsheet exports) made the header fail. */
Test(import, utf8_bom_is_skipped)
{
	struct import	 im = { .name = "bom.csv" }, jm = { .name = "bom.jsonl" };
	const char	*csv = "\xef\xbb\xbfop,subject,record_type,full_name\r\n"
	    "put_record,S-1,person,Ann Example\r\n";
	const char	*js = "\xef\xbb\xbf{\"op\":\"flag\",\"subject\":\"S-1\","
	    "\"flag\":\"domestic_abuse\"}\n";

	cr_assert_eq(import_parse(&im, IMPORT_CSV, csv, strlen(csv)), 0,
	    "%s", im.nerrors ? im.errors[0] : "");
	cr_assert_eq(im.nops, 1);
	cr_expect_str_eq(im.ops[0]->subject_id, "S-1");
	cr_expect_eq(im.ops[0]->line, 2);
	cr_assert_eq(import_parse(&jm, IMPORT_JSONL, js, strlen(js)), 0,
	    "%s", jm.nerrors ? jm.errors[0] : "");
	cr_expect_eq(jm.nops, 1);
	import_free(&im);
	import_free(&jm);
}

/* Issue 16: JSON values keep their JSON meaning (jansson, not libyaml). */
Test(import, json_null_and_surrogates)
{
	struct import	 im = { .name = "t.jsonl" };
	const char	*j = "{\"subject\":\"S-1\",\"record_type\":\"person\","
	    "\"verified\":null,\"fields\":{\"full_name\":\"Zo\\u00eb \\ud83d\\ude00\","
	    "\"middle_name\":null}}\n";

	cr_assert_eq(import_parse(&im, IMPORT_JSONL, j, strlen(j)), 0);
	cr_assert_eq(im.nops, 1);
	cr_expect_null(field(im.ops[0], "middle_name"), "null stored as a value");
	cr_expect_str_eq(im.ops[0]->verified, "");
	cr_expect_str_eq(field(im.ops[0], "full_name")->value,
	    "Zo\xc3\xab \xf0\x9f\x98\x80");
	import_free(&im);
}
