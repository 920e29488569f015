#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "yamlutil.h"

static int
finish_load(struct yfile *yf, yaml_parser_t *p)
{
	if (!yaml_parser_load(p, &yf->doc)) {
		const char *what = p->problem ? p->problem : "syntax error";

		diag_add(yf->diag, yf->path, p->problem_mark.line + 1,
		    p->problem_mark.column + 1, "%s%s%s", what,
		    p->context ? " " : "", p->context ? p->context : "");
		yaml_parser_delete(p);
		return -1;
	}
	yaml_parser_delete(p);
	yf->loaded = 1;
	if (yaml_document_get_root_node(&yf->doc) == NULL) {
		diag_add(yf->diag, yf->path, 0, 0, "empty document");
		return -1;
	}
	return 0;
}

int
yfile_load(struct yfile *yf, const char *path, struct diag *d)
{
	yaml_parser_t	 p;
	FILE		*fp;
	int		 rc;

	memset(yf, 0, sizeof(*yf));
	yf->path = path;
	yf->diag = d;
	if ((fp = fopen(path, "r")) == NULL) {
		diag_add(d, path, 0, 0, "%s", strerror(errno));
		return -1;
	}
	yaml_parser_initialize(&p);
	yaml_parser_set_input_file(&p, fp);
	rc = finish_load(yf, &p);
	fclose(fp);
	return rc;
}

int
yfile_load_buffer(struct yfile *yf, const char *name, const unsigned char *buf,
    size_t len, struct diag *d)
{
	yaml_parser_t p;

	memset(yf, 0, sizeof(*yf));
	yf->path = name;
	yf->diag = d;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, buf, len);
	return finish_load(yf, &p);
}

void
yfile_free(struct yfile *yf)
{
	if (yf->loaded)
		yaml_document_delete(&yf->doc);
	yf->loaded = 0;
}

yaml_node_t *
yfile_root(struct yfile *yf)
{
	return yaml_document_get_root_node(&yf->doc);
}

yaml_node_t *
ynode(struct yfile *yf, int index)
{
	return yaml_document_get_node(&yf->doc, index);
}

size_t
yline(const yaml_node_t *n)
{
	return n->start_mark.line + 1;
}

void
yerr(struct yfile *yf, const yaml_node_t *n, const char *fmt, ...)
{
	char	 msg[1024];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diag_add(yf->diag, yf->path, n->start_mark.line + 1,
	    n->start_mark.column + 1, "%s", msg);
}

void
ywarn(struct yfile *yf, const yaml_node_t *n, const char *fmt, ...)
{
	char	 msg[1024];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diag_warn(yf->diag, yf->path, n->start_mark.line + 1,
	    n->start_mark.column + 1, "%s", msg);
}

int
yis_map(struct yfile *yf, yaml_node_t *n, const char *what)
{
	if (n->type == YAML_MAPPING_NODE)
		return 1;
	yerr(yf, n, "%s: expected a mapping (key: value)", what);
	return 0;
}

int
yis_seq(struct yfile *yf, yaml_node_t *n, const char *what)
{
	if (n->type == YAML_SEQUENCE_NODE)
		return 1;
	yerr(yf, n, "%s: expected a list", what);
	return 0;
}

const char *
ystr(struct yfile *yf, yaml_node_t *n, const char *what)
{
	if (n->type != YAML_SCALAR_NODE) {
		yerr(yf, n, "%s: expected a single value", what);
		return NULL;
	}
	return (const char *)n->data.scalar.value;
}

int
ybool(struct yfile *yf, yaml_node_t *n, const char *what, int *out)
{
	const char *s = ystr(yf, n, what);

	if (s == NULL)
		return -1;
	if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0) {
		*out = 1;
		return 0;
	}
	if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0) {
		*out = 0;
		return 0;
	}
	yerr(yf, n, "%s: expected true or false, got \"%s\"", what, s);
	return -1;
}

int
yint(struct yfile *yf, yaml_node_t *n, const char *what, long long min,
    long long max, long long *out)
{
	const char	*s = ystr(yf, n, what);
	char		*end;
	long long	 v;

	if (s == NULL)
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno == ERANGE) {
		yerr(yf, n, "%s: expected an integer, got \"%s\"", what, s);
		return -1;
	}
	if (v < min || v > max) {
		yerr(yf, n, "%s: %lld is out of range [%lld, %lld]", what, v, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

int
date_day_over(int64_t day, int64_t now)
{
	return now >= day + 86400;
}

/*
 * The one date parser (config, protocol, holder ops, policy transforms):
 * exactly YYYY-MM-DD naming a real day, years 1900-9999. Fills *y, *m, *d
 * and *out (Unix seconds at 00:00 UTC; out may be NULL) and returns 0, or
 * returns -1.
 */
int
date_ymd(const char *s, int *y, int *m, int *d, int64_t *out)
{
	struct tm	 tm, back;
	time_t		 t;
	char		 tail;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
	    sscanf(s, "%4d-%2d-%2d%c", y, m, d, &tail) != 3)
		return -1;
	if (*y < 1900 || *y > 9999 || *m < 1 || *m > 12 || *d < 1 || *d > 31)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = *y - 1900;
	tm.tm_mon = *m - 1;
	tm.tm_mday = *d;
	t = timegm(&tm);
	/* timegm normalises 2026-02-31 to March: reject such dates. */
	gmtime_r(&t, &back);
	if (back.tm_mday != *d || back.tm_mon != *m - 1)
		return -1;
	if (out != NULL)
		*out = (int64_t)t;
	return 0;
}

int
date_parse(const char *s, int64_t *out)
{
	int y, m, d;

	return date_ymd(s, &y, &m, &d, out);
}

int
ydate(struct yfile *yf, yaml_node_t *n, const char *what, int64_t *out)
{
	const char *s = ystr(yf, n, what);

	if (s == NULL)
		return -1;
	if (date_parse(s, out) == -1) {
		yerr(yf, n, "%s: expected a date as YYYY-MM-DD, got \"%s\"", what, s);
		return -1;
	}
	return 0;
}

size_t
edit_distance(const char *a, const char *b)
{
	size_t	 la = strlen(a), lb = strlen(b);
	size_t	 row[65];

	if (la > 64 || lb > 64)
		return 64;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best;

			best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

const char *
did_you_mean(const char *word, const char *const *cands, size_t n)
{
	const char	*best = NULL;
	size_t		 bestd = (size_t)-1;
	size_t		 limit = strlen(word) / 3;

	if (limit < 2)
		limit = 2;
	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(word, cands[i]);

		if (d < bestd) {
			bestd = d;
			best = cands[i];
		}
	}
	return bestd <= limit ? best : NULL;
}

int
ykeys_check(struct yfile *yf, yaml_node_t *map, const char *const *allowed,
    const char *where)
{
	size_t	 n = 0;
	int	 bad = 0;

	while (allowed[n] != NULL)
		n++;
	YMAP_FOREACH(yf, map, pair) {
		yaml_node_t	*k = ynode(yf, pair->key);
		const char	*key, *hint;
		int		 found = 0;

		if ((key = ystr(yf, k, where)) == NULL) {
			bad++;
			continue;
		}
		for (size_t i = 0; i < n && !found; i++)
			found = strcmp(key, allowed[i]) == 0;
		if (found)
			continue;
		bad++;
		if ((hint = did_you_mean(key, allowed, n)) != NULL)
			yerr(yf, k, "unknown key \"%s\" in %s; did you mean \"%s\"?",
			    key, where, hint);
		else
			yerr(yf, k, "unknown key \"%s\" in %s", key, where);
	}
	/* Duplicate keys are as confusing as unknown ones. */
	YMAP_FOREACH(yf, map, p1) {
		yaml_node_t *k1 = ynode(yf, p1->key);

		if (k1->type != YAML_SCALAR_NODE)
			continue;
		for (yaml_node_pair_t *p2 = map->data.mapping.pairs.start; p2 < p1; p2++) {
			yaml_node_t *k2 = ynode(yf, p2->key);

			if (k2->type == YAML_SCALAR_NODE &&
			    strcmp((char *)k1->data.scalar.value,
			    (char *)k2->data.scalar.value) == 0) {
				yerr(yf, k1, "duplicate key \"%s\" in %s (first at line %zu)",
				    (char *)k1->data.scalar.value, where, yline(k2));
				bad++;
				break;
			}
		}
	}
	return bad;
}

yaml_node_t *
yget(struct yfile *yf, yaml_node_t *map, const char *key)
{
	YMAP_FOREACH(yf, map, pair) {
		yaml_node_t *k = ynode(yf, pair->key);

		if (k->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)k->data.scalar.value, key) == 0)
			return ynode(yf, pair->value);
	}
	return NULL;
}

yaml_node_t *
yneed(struct yfile *yf, yaml_node_t *map, const char *key, const char *where)
{
	yaml_node_t *n = yget(yf, map, key);

	if (n == NULL)
		yerr(yf, map, "%s: missing required key \"%s\"", where, key);
	return n;
}
