/*
 * NHS numbers through the holder API (issue 17 item 5, D18, D19), end to
 * end over real mutual TLS with the command line: holders link and unlink
 * NHS numbers as ops, a request by NHS number then finds (or no longer
 * finds) the person at each holder, a holder cannot link or unlink another
 * holder's subject, an import with a bad NHS number applies nothing, and
 * every change is a log entry. Example protocol, an initially empty store.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct daemon d;

H_SUITE(holder_nhs, d, H_RUNNING, 60);

/* Runs `safeshare ARGS` as agency; output (stdout and stderr) into *out. */
static int
cli(const char *agency, const char *args, char **out)
{
	return h_cli(&d, agency, args, out);
}

/* Runs it and expects exit status want; returns the output (malloc'd). */
static char *
run(const char *agency, const char *args, int want)
{
	char	*out = NULL;
	int	 rc = cli(agency, args, &out);

	cr_expect_eq(rc, want, "safeshare %s: exit %d, want %d: %s", args, rc, want,
	    out ? out : "");
	return out ? out : calloc(1, 1);
}

static void
run_ok(const char *agency, const char *args)
{
	free(run(agency, args, 0));
}

/* The police ask holder for the person record of NHS number 943 476 5919. */
static char *
request_by_nhs(const char *holder, int want)
{
	char args[512];

	snprintf(args, sizeof(args), "request --holder %s --nhs-number '943 476 5919' "
	    "--record-type person --purpose child_protection --case C-17 "
	    "--practitioner 'DC Jones'", holder);
	return run("police", args, want);
}

/* One value from the store, on either backend (harness_pg.c). */
static char *
store_value(const char *sql)
{
	return h_store_value(&d, sql);
}

/* The store's contents, on either backend. */
static char *
dump_store(void)
{
	return h_store_dump(&d);
}

static void
put_both(void)
{
	run_ok("childrens_social_care", "holder put-record CSC-1 person "
	    "full_name='Ann Example' date_of_birth=2012-03-04 "
	    "address='1 High Street, Exampletown' --nhs-number '943 476 5919'");
	run_ok("health_trust", "holder put-record HLT-1 person full_name='Ann Example' "
	    "date_of_birth=2012-03-04 address='Flat 2, 9 New Road'");
}

Test(holder_nhs, link_then_found_at_both_holders_and_unlink_hides_it)
{
	char *out;

	put_both();
	/* Health holds Ann but has not linked her NHS number: not found there. */
	free(request_by_nhs("childrens_social_care", 0));
	out = request_by_nhs("health_trust", 4);
	cr_expect(strstr(out, "no_match") != NULL, "%s", out);
	free(out);

	run_ok("health_trust", "holder link-nhs HLT-1 9434765919");
	out = run("health_trust", "holder show HLT-1", 0);
	cr_expect(strstr(out, "NHS number: 9434765919\n") != NULL, "%s", out);
	free(out);
	out = request_by_nhs("health_trust", 0);
	cr_expect(strstr(out, "Flat 2") != NULL, "health's own view: %s", out);
	free(out);
	out = request_by_nhs("childrens_social_care", 0);
	cr_expect(strstr(out, "1 High Street") != NULL, "%s", out);
	free(out);
	out = run("police", "locate --nhs-number 9434765919 --purpose child_protection "
	    "--case C-17 --practitioner 'DC Jones' --json", 0);
	cr_expect(strstr(out, "childrens_social_care") != NULL &&
	    strstr(out, "health_trust") != NULL, "D18: one person, two holders: %s", out);
	free(out);

	/* A flag CSC sets on its view withholds the address health holds (D12). */
	run_ok("childrens_social_care", "holder flag CSC-1 domestic_abuse");
	out = request_by_nhs("health_trust", 0);
	cr_expect(strstr(out, "Flat 2") == NULL && strstr(out, "flag:domestic_abuse"),
	    "%s", out);
	free(out);

	/* The same link again changes nothing and adds no entry. */
	run_ok("health_trust", "holder link-nhs HLT-1 '943 476 5919'");
	cr_expect_eq(h_log_count(&d, "kind = 'holder' AND reason = 'link_nhs'"), 1);

	/* Another number than the linked one is not unlinked. */
	out = run("health_trust", "holder unlink-nhs HLT-1 4010232137", 4);
	cr_expect(strstr(out, "nhs_number_not_linked") != NULL, "%s", out);
	free(out);

	run_ok("health_trust", "holder unlink-nhs HLT-1");
	out = run("health_trust", "holder show HLT-1 --json", 0);
	cr_expect(strstr(out, "\"nhs_number\":null") != NULL, "%s", out);
	free(out);
	out = request_by_nhs("health_trust", 4);
	cr_expect(strstr(out, "no_match") != NULL, "unlinked: %s", out);
	free(out);
	free(request_by_nhs("childrens_social_care", 0));
	out = store_value("SELECT count(*) FROM subjects WHERE id = 'HLT-1' AND "
	    "nhs_number IS NULL");
	cr_expect_str_eq(out, "1");
	free(out);
	/* CSC's flag stayed with CSC's person: health's view is its own again. */
	out = run("police", "request --subject HLT-1 --record-type person --purpose "
	    "child_protection --case C-17 --practitioner 'DC Jones'", 0);
	cr_expect(strstr(out, "Flat 2") != NULL, "%s", out);
	free(out);

	/* Every change is a log entry naming the number, never a record value. */
	cr_expect_eq(h_log_count(&d, "kind = 'holder' AND reason = 'put_record' AND "
	    "subject = 'CSC-1' AND withheld = 'nhs:9434765919'"), 1);
	cr_expect_eq(h_log_count(&d, "kind = 'holder' AND reason = 'link_nhs' AND "
	    "agency = 'health_trust' AND subject = 'HLT-1' AND "
	    "withheld = 'nhs:9434765919'"), 1);
	cr_expect_eq(h_log_count(&d, "kind = 'holder' AND reason = 'unlink_nhs' AND "
	    "subject = 'HLT-1' AND withheld = 'nhs:9434765919'"), 1);
	cr_expect_eq(h_log_count(&d, "kind = 'holder' AND reason = 'unlink_nhs'"), 1,
	    "the refused unlink wrote nothing");
}

/* D18, D19: another holder's subject is answered as an unknown one, and logged. */
Test(holder_nhs, another_holders_subject_cannot_be_linked_or_unlinked)
{
	char *out, *before, *after;

	put_both();
	before = dump_store();
	out = run("health_trust", "holder link-nhs CSC-1 4010232137", 4);
	cr_expect(strstr(out, "unknown_subject") != NULL, "%s", out);
	cr_expect(strstr(out, "childrens_social_care") == NULL, "never named: %s", out);
	free(out);
	out = run("health_trust", "holder unlink-nhs CSC-1", 4);
	cr_expect(strstr(out, "unknown_subject") != NULL, "%s", out);
	free(out);
	out = run("health_trust", "holder put-record CSC-1 person full_name=X "
	    "--nhs-number 4010232137", 4);
	cr_expect(strstr(out, "not_your_subject") != NULL, "%s", out);
	free(out);
	after = dump_store();
	cr_expect_str_eq(before, after, "nothing of CSC's view changed");
	free(before);
	free(after);
	cr_expect_eq(h_log_count(&d, "kind = 'rejected' AND agency = 'health_trust' "
	    "AND subject = 'CSC-1' AND reason = 'unknown_subject'"), 2);
	cr_expect_eq(h_log_count(&d, "kind = 'rejected' AND agency = 'health_trust' "
	    "AND subject = 'CSC-1' AND reason = 'not_your_subject'"), 1);
	cr_expect_eq(h_log_count(&d, "kind = 'holder' AND agency = 'health_trust' "
	    "AND subject = 'CSC-1'"), 0);

	/* A holder keeps one local id per person: a second one is refused. */
	out = run("childrens_social_care", "holder put-record CSC-2 person "
	    "full_name='Ann Again' --nhs-number 9434765919", 4);
	cr_expect(strstr(out, "nhs_number_held") != NULL && strstr(out, "CSC-1"),
	    "%s", out);
	free(out);
	out = store_value("SELECT count(*) FROM subjects WHERE id = 'CSC-2'");
	cr_expect_str_eq(out, "0");
	free(out);
}

/* Writes an import file into the test dir; its path into path. */
static void
write_file(const char *name, const char *content, char *path, size_t len)
{
	FILE *fp;

	snprintf(path, len, "%s/%s", d.dir, name);
	cr_assert_not_null(fp = fopen(path, "w"));
	fputs(content, fp);
	fclose(fp);
}

Test(holder_nhs, import_with_a_bad_nhs_number_applies_nothing)
{
	char	 path[512], args[1024], want[640], *out, *before, *after;

	put_both();
	before = dump_store();
	write_file("people.csv",
	    "op,subject,record_type,full_name,nhs_number\n"
	    "put_record,CSC-2,person,Bo Example,401 023 2137\n"
	    "link_nhs,CSC-1,,,943 476 5918\n"
	    "unlink_nhs,CSC-1,,,\n", path, sizeof(path));
	snprintf(args, sizeof(args), "holder import %s", path);
	out = run("childrens_social_care", args, 1);
	snprintf(want, sizeof(want), "%s:3:18: nhs_number: NHS number check digit "
	    "is wrong", path);
	cr_expect(strstr(out, want) != NULL, "line 3, column 18: %s", out);
	cr_expect(strstr(out, "nothing was imported") != NULL, "%s", out);
	free(out);
	after = dump_store();
	cr_expect_str_eq(before, after, "the store is unchanged");
	free(after);

	/* The server's own refusal (a second local id) also applies nothing. */
	write_file("clash.jsonl",
	    "{\"subject\":\"CSC-3\",\"record_type\":\"person\",\"nhs_number\":"
	    "\"4010232137\",\"fields\":{\"full_name\":\"Cy\"}}\n"
	    "{\"subject\":\"CSC-4\",\"record_type\":\"person\",\"nhs_number\":"
	    "\"9434765919\",\"fields\":{\"full_name\":\"Di\"}}\n", path, sizeof(path));
	snprintf(args, sizeof(args), "holder import %s", path);
	out = run("childrens_social_care", args, 4);
	snprintf(want, sizeof(want), "%s:2: nhs_number_held", path);
	cr_expect(strstr(out, want) != NULL, "%s", out);
	free(out);
	after = dump_store();
	cr_expect_str_eq(before, after, "all or nothing");
	free(after);
	free(before);
	cr_expect_eq(h_log_count(&d, "kind = 'holder' AND subject IN "
	    "('CSC-2', 'CSC-3', 'CSC-4')"), 0, "nothing logged as a change");

	/* The good file: each op one entry, the numbers linked. */
	write_file("good.csv",
	    "op,subject,record_type,full_name,nhs_number\n"
	    "put_record,CSC-2,person,Bo Example,401 023 2137\n"
	    "unlink_nhs,CSC-1,,,\n"
	    "link_nhs,HLT-1,,,9434765919\n", path, sizeof(path));
	snprintf(args, sizeof(args), "holder import %s", path);
	out = run("childrens_social_care", args, 4);
	cr_expect(strstr(out, "good.csv:4: unknown_subject") != NULL, "HLT-1 is health's: %s",
	    out);
	free(out);
	write_file("good.csv",
	    "op,subject,record_type,full_name,nhs_number\n"
	    "put_record,CSC-2,person,Bo Example,401 023 2137\n"
	    "unlink_nhs,CSC-1,,,\n", path, sizeof(path));
	out = run("childrens_social_care", args, 0);
	cr_expect(strstr(out, "imported 2 operations") != NULL, "%s", out);
	free(out);
	out = store_value("SELECT nhs_number FROM subjects WHERE id = 'CSC-2'");
	cr_expect_str_eq(out, "4010232137", "stored without spaces");
	free(out);
	cr_expect_eq(h_log_count(&d, "kind = 'holder' AND reason = 'put_record' AND "
	    "subject = 'CSC-2' AND withheld = 'nhs:4010232137'"), 1);
	cr_expect_eq(h_log_count(&d, "kind = 'holder' AND reason = 'unlink_nhs' AND "
	    "subject = 'CSC-1' AND withheld = 'nhs:9434765919'"), 1);
}
