/* The daemon config: defaults, bounds, relative paths, precise errors. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char path[256];

static void
write_conf(const char *text)
{
	FILE *fp;

	snprintf(path, sizeof(path), "/tmp/safeshare-test-config-%d.yaml", (int)getpid());
	fp = fopen(path, "w");
	cr_assert_not_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void
teardown(void)
{
	unlink(path);
}

TestSuite(config, .fini = teardown);

Test(config, example_loads_with_defaults_and_relative_paths)
{
	struct config	 c;
	struct diag	 d = { 0 };

	cr_assert_eq(config_load(SOURCE_DIR "/config/safeshared.yaml", &c, &d), 0);
	cr_expect_str_eq(c.listen, "127.0.0.1");
	cr_expect_eq(c.port, 8443);
	cr_expect_str_eq(c.protocol, SOURCE_DIR "/config/protocol.yaml",
	    "paths are relative to the config file");
	cr_expect_str_eq(c.tls_key, SOURCE_DIR "/config/../run/pki/server.key");
	cr_expect_eq(c.max_body, 65536);
	config_free(&c);
	diag_free(&d);
}

Test(config, defaults_apply)
{
	struct config	 c;
	struct diag	 d = { 0 };

	write_conf("tls: {cert: a, key: b, ca: c}\nprotocol: p\nstore: s\naudit_log: l\n");
	cr_assert_eq(config_load(path, &c, &d), 0);
	cr_expect_eq(c.port, 8443);
	cr_expect_eq(c.timeout, 30);
	cr_expect_eq(c.max_headers, 8192);
	cr_expect_eq(c.log_level, LOG_LEVEL_INFO);
	cr_expect_str_eq(c.audit_commit, "inline");
	cr_expect_str_eq(c.store, "/tmp/s");
	config_free(&c);
	diag_free(&d);
}

static void
expect_error(const char *text, const char *want)
{
	struct config	 c;
	struct diag	 d = { 0 };
	char		 full[512];
	int		 found = 0;

	write_conf(text);
	cr_assert_eq(config_load(path, &c, &d), -1, "accepted: %s", text);
	snprintf(full, sizeof(full), "%s%s", path, want);
	for (size_t i = 0; i < d.n; i++)
		found |= strcmp(d.msgs[i], full) == 0;
	if (!found)
		diag_print(&d, stderr);
	cr_expect(found, "missing diagnostic: %s", full);
	config_free(&c);
	diag_free(&d);
}

Test(config, errors_name_line_and_column)
{
	expect_error("tls: {cert: a, key: b, ca: c}\nprotocol: p\nstore: s\naudit_log: l\n"
	    "prot: 9\n", ":5:1: unknown key \"prot\"; did you mean \"port\"?");
	expect_error("tls: {cert: a, key: b, ca: c}\nprotocol: p\nstore: s\naudit_log: l\n"
	    "port: 70000\n", ":5:7: port: 70000 is out of range [0, 65535]");
	expect_error("tls: {cert: a, key: b, ca: c}\nprotocol: p\nstore: s\naudit_log: l\n"
	    "limits:\n  max_body: lots\n", ":6:13: limits.max_body: expected an integer, got \"lots\"");
	expect_error("tls: {cert: a, key: b, ca: c}\nprotocol: p\nstore: s\naudit_log: l\n"
	    "tls:\n  cert: x\n", ":6:3: duplicate key \"tls.cert\"");
	expect_error("tls: {cert: a, key: b}\nprotocol: p\nstore: s\naudit_log: l\n",
	    ": missing required key \"tls.ca\" (CA bundle that client certificates must chain to (PEM))");
	expect_error("tls: {cert: a, key: b, ca: c}\nprotocol: p\nstore: s\naudit_log: l\n"
	    "log_level: loud\n", ":5:12: log_level: expected error, warn, info or debug");
	expect_error("tls: {cert: a, key: b, ca: c}\nprotocol: p\nstore: s\naudit_log: l\n"
	    "audit:\n  commit: sometimes\n", ":6:11: audit.commit: expected pipelined or inline");
	expect_error("tls: {cert: a, key: b, ca: c\n", ":2:1: did not find expected ',' or '}' while parsing a flow mapping");
}

/* docs/config.md carries the key table verbatim (safeshared -K prints it). */
Test(config, docs_list_every_key)
{
	char	*table = NULL, *doc, line[4096];
	size_t	 tlen = 0, n;
	FILE	*fp = open_memstream(&table, &tlen);

	config_describe(fp);
	fclose(fp);
	fp = fopen(SOURCE_DIR "/docs/config.md", "r");
	cr_assert_not_null(fp);
	doc = calloc(1, 65536);
	n = fread(doc, 1, 65535, fp);
	fclose(fp);
	cr_assert_gt(n, 0);
	for (char *save = NULL, *l = strtok_r(table, "\n", &save); l != NULL;
	    l = strtok_r(NULL, "\n", &save)) {
		snprintf(line, sizeof(line), "%s\n", l);
		cr_expect(strstr(doc, line) != NULL, "docs/config.md lacks (run "
		    "safeshared -K): %s", l);
	}
	free(doc);
	free(table);
}

/* One tests/data/config case (its README): its first lines say what is wanted. */
static void
storage_case(const char *file)
{
	struct config	 c;
	struct diag	 d = { 0 };
	char		 want[512], backend[64] = "", full[2048];
	FILE		*fp;
	int		 rc, found = 0;

	cr_assert_not_null(fp = fopen(file, "r"), "%s", file);
	cr_assert_not_null(fgets(want, sizeof(want), fp), "%s", file);
	want[strcspn(want, "\n")] = '\0';
	cr_assert(strncmp(want, "# want: ", 8) == 0, "%s: no want line", file);
	if (fscanf(fp, "# backend: %63s", backend) != 1)
		backend[0] = '\0';
	fclose(fp);
	rc = config_load(file, &c, &d);
	if (strcmp(want + 8, "ok") == 0) {
		if (rc != 0)
			diag_print(&d, stderr);
		cr_expect_eq(rc, 0, "%s: refused", file);
		cr_expect_str_eq(config_postgresql(&c) ? "postgresql" : "sqlite",
		    backend, "%s", file);
		if (config_postgresql(&c)) {
			cr_expect_null(c.store, "%s", file);
			cr_expect_null(c.audit_log, "%s", file);
			cr_expect_not_null(c.pg_conninfo, "%s", file);
		}
	} else {
		cr_expect_eq(rc, -1, "%s: accepted", file);
		snprintf(full, sizeof(full), "%s%s", file, want + 8);
		for (size_t i = 0; i < d.n; i++)
			found |= strcmp(d.msgs[i], full) == 0;
		if (!found)
			diag_print(&d, stderr);
		cr_expect(found, "missing diagnostic: %s", full);
	}
	config_free(&c);
	diag_free(&d);
}

/*
 * Issue 19: storage: sqlite (the default) or postgresql, and the keys
 * that belong to each, as the case files under tests/data/config say.
 */
Test(config, storage_cases)
{
	DIR		*dir;
	struct dirent	*de;
	char		 file[768];
	int		 n = 0;

	cr_assert_not_null(dir = opendir(SOURCE_DIR "/tests/data/config"));
	while ((de = readdir(dir)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len < 6 || strcmp(de->d_name + len - 5, ".yaml") != 0)
			continue;
		snprintf(file, sizeof(file), "%s/%s", SOURCE_DIR "/tests/data/config",
		    de->d_name);
		storage_case(file);
		n++;
	}
	closedir(dir);
	cr_expect_geq(n, 10, "the cases were not found");
}

/* The example of docs/deploy-ha.md loads as what it says it is. */
Test(config, postgresql_example_loads)
{
	struct config	 c;
	struct diag	 d = { 0 };

	cr_assert_eq(config_load(SOURCE_DIR "/config/safeshared.pg.yaml", &c, &d),
	    0);
	cr_expect(config_postgresql(&c));
	cr_expect_null(c.store);
	cr_expect(strstr(c.pg_conninfo, "passfile=") != NULL);
	cr_expect(strstr(c.pg_conninfo, "password") == NULL);
	config_free(&c);
	diag_free(&d);
}
