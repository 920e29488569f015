/*
 * Import files for holders. CSV is read by the small RFC 4180 reader below
 * (no library in our set reads CSV); JSON lines are read one line at a time
 * with jansson (strict JSON: no duplicate keys, nothing after the object,
 * typed values; see json_text() for what a non-string means).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "import.h"
#include "match.h"
#include "util.h"
#include "yamlutil.h"	/* did_you_mean() */

#define MAX_COLUMNS	64

static const struct {
	const char		*name;
	Safeshare__V1__HolderOpKind kind;
} kinds[] = {
	{ "put_record", SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_PUT_RECORD },
	{ "delete_record", SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_DELETE_RECORD },
	{ "consent", SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_CONSENT },
	{ "flag", SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_FLAG },
	{ "unflag", SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_UNFLAG },
	{ "link_nhs", SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_LINK_NHS },
	{ "unlink_nhs", SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_UNLINK_NHS },
};

/* Keys with a meaning of their own; in CSV any other column is a field. */
static const char *const control_keys[] = { "op", "subject", "record_type",
    "verified", "consent", "agencies", "purposes", "expires", "decided", "flag",
    "nhs_number", "fields" };

/*
 * Records a problem at a line (and column, when col is not 0); problem()
 * and not error(), which is error(3).
 */
static void	problem_at(struct import *, size_t, size_t, const char *, ...)
		    __attribute__((format(printf, 4, 5)));
#define problem(im, line, ...)	problem_at((im), (line), 0, __VA_ARGS__)

static void
problem_at(struct import *im, size_t line, size_t col, const char *fmt, ...)
{
	char	 msg[256], at[32], *s;
	size_t	 len;
	va_list	 ap;

	if (im->nerrors == IMPORT_MAX_ERRORS) {
		im->more++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (col != 0)
		snprintf(at, sizeof(at), "%zu:%zu", line, col);
	else
		snprintf(at, sizeof(at), "%zu", line);
	len = strlen(im->name) + strlen(msg) + 48;
	s = xcalloc(len, 1);
	snprintf(s, len, "%s:%s: %s", im->name, at, msg);
	if (im->errors == NULL)
		im->errors = xcalloc(IMPORT_MAX_ERRORS, sizeof(*im->errors));
	im->errors[im->nerrors++] = s;
}

int
import_format_of(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (dot == NULL)
		return -1;
	if (strcmp(dot, ".csv") == 0)
		return IMPORT_CSV;
	if (strcmp(dot, ".jsonl") == 0 || strcmp(dot, ".ndjson") == 0 ||
	    strcmp(dot, ".json") == 0)
		return IMPORT_JSONL;
	return -1;
}

Safeshare__V1__HolderOp *
import_new_op(struct import *im, size_t line)
{
	Safeshare__V1__HolderOp *op = xcalloc(1, sizeof(*op));

	safeshare__v1__holder_op__init(op);
	/* protobuf-c's empty default strings are shared; ours are owned. */
	op->subject_id = xstrdup("");
	op->record_type = xstrdup("");
	op->verified = xstrdup("");
	op->consent = xstrdup("");
	op->expires = xstrdup("");
	op->decided = xstrdup("");
	op->flag = xstrdup("");
	op->nhs_number = xstrdup("");
	op->line = (uint32_t)line;
	op->kind = SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_PUT_RECORD;
	if (im->nops == im->cap) {
		size_t cap = im->cap ? im->cap * 2 : 64;
		Safeshare__V1__HolderOp **v = realloc(im->ops, cap * sizeof(*v));

		if (v == NULL) {
			fprintf(stderr, "safeshare: out of memory\n");
			exit(1);
		}
		im->ops = v;
		im->cap = cap;
	}
	im->ops[im->nops++] = op;
	return op;
}

static void
free_op(Safeshare__V1__HolderOp *op)
{
	for (size_t i = 0; i < op->n_fields; i++) {
		free(op->fields[i]->name);
		free(op->fields[i]->value);
		free(op->fields[i]);
	}
	for (size_t i = 0; i < op->n_agencies; i++)
		free(op->agencies[i]);
	for (size_t i = 0; i < op->n_purposes; i++)
		free(op->purposes[i]);
	free(op->fields);
	free(op->agencies);
	free(op->purposes);
	free(op->subject_id);
	free(op->record_type);
	free(op->verified);
	free(op->consent);
	free(op->expires);
	free(op->decided);
	free(op->flag);
	free(op->nhs_number);
	free(op);
}

void
import_free(struct import *im)
{
	for (size_t i = 0; i < im->nops; i++)
		free_op(im->ops[i]);
	for (size_t i = 0; i < im->nerrors; i++)
		free(im->errors[i]);
	free(im->ops);
	free(im->errors);
	im->ops = NULL;
	im->errors = NULL;
	im->nops = im->cap = im->nerrors = im->more = 0;
}

static void
add_str(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(*nv));

	if (nv == NULL) {
		fprintf(stderr, "safeshare: out of memory\n");
		exit(1);
	}
	nv[(*n)++] = xstrdup(s);
	*v = nv;
}

void
import_add_field(Safeshare__V1__HolderOp *op, const char *name, const char *value)
{
	Safeshare__V1__FieldValue	**nv;
	Safeshare__V1__FieldValue	 *f = xcalloc(1, sizeof(*f));

	safeshare__v1__field_value__init(f);
	f->name = xstrdup(name);
	f->value = xstrdup(value);
	if ((nv = realloc(op->fields, (op->n_fields + 1) * sizeof(*nv))) == NULL) {
		fprintf(stderr, "safeshare: out of memory\n");
		exit(1);
	}
	nv[op->n_fields++] = f;
	op->fields = nv;
}

/* "a;b c, d" -> a, b, c, d */
static void
add_ids(char ***v, size_t *n, const char *list)
{
	char *copy = xstrdup(list), *save = NULL;

	for (char *t = strtok_r(copy, ";, \t", &save); t != NULL;
	    t = strtok_r(NULL, ";, \t", &save))
		add_str(v, n, t);
	free(copy);
}

static void
replace(char **slot, const char *value)
{
	free(*slot);
	*slot = xstrdup(value);
}

/*
 * An NHS number (D18): checked here, so a bad one is a problem on its line
 * and column (col 0: not known) and the file is not sent; sent without
 * its spaces.
 */
static void
set_nhs(struct import *im, Safeshare__V1__HolderOp *op, size_t line, size_t col,
    const char *value)
{
	char		 nhs[MATCH_NHS_LEN + 1];
	const char	*why;

	if (match_nhs_parse(value, nhs, &why) == -1) {
		problem_at(im, line, col, "nhs_number: %s", why);
		replace(&op->nhs_number, value);	/* given, if bad */
	} else
		replace(&op->nhs_number, nhs);
}

int
import_set_key(struct import *im, Safeshare__V1__HolderOp *op, size_t line,
    const char *key, const char *value)
{
	if (strcmp(key, "op") == 0) {
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			if (strcmp(value, kinds[i].name) == 0) {
				op->kind = kinds[i].kind;
				return 1;
			}
		problem(im, line, "op: \"%s\" is not one of put_record, delete_record, "
		    "consent, flag, unflag, link_nhs, unlink_nhs", value);
	} else if (strcmp(key, "subject") == 0)
		replace(&op->subject_id, value);
	else if (strcmp(key, "record_type") == 0)
		replace(&op->record_type, value);
	else if (strcmp(key, "verified") == 0)
		replace(&op->verified, value);
	else if (strcmp(key, "consent") == 0)
		replace(&op->consent, value);
	else if (strcmp(key, "expires") == 0)
		replace(&op->expires, value);
	else if (strcmp(key, "decided") == 0)
		replace(&op->decided, value);
	else if (strcmp(key, "flag") == 0)
		replace(&op->flag, value);
	else if (strcmp(key, "nhs_number") == 0)
		set_nhs(im, op, line, 0, value);
	else if (strcmp(key, "agencies") == 0)
		add_ids(&op->agencies, &op->n_agencies, value);
	else if (strcmp(key, "purposes") == 0)
		add_ids(&op->purposes, &op->n_purposes, value);
	else
		return 0;
	return 1;
}

/* What every op needs, whatever the format. */
void
import_check_op(struct import *im, const Safeshare__V1__HolderOp *op, size_t line)
{
	if (op->subject_id[0] == '\0')
		problem(im, line, "subject: missing");
	if ((op->kind == SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_PUT_RECORD ||
	    op->kind == SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_DELETE_RECORD) &&
	    op->record_type[0] == '\0')
		problem(im, line, "record_type: missing");
	if (op->kind == SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_CONSENT &&
	    op->consent[0] == '\0')
		problem(im, line, "consent: missing (granted, refused or withdrawn)");
	if ((op->kind == SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_FLAG ||
	    op->kind == SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_UNFLAG) &&
	    op->flag[0] == '\0')
		problem(im, line, "flag: missing");
	if (op->kind == SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_LINK_NHS &&
	    op->nhs_number[0] == '\0')
		problem(im, line, "nhs_number: missing");
	if (op->nhs_number[0] != '\0' &&
	    op->kind != SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_PUT_RECORD &&
	    op->kind != SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_LINK_NHS &&
	    op->kind != SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_UNLINK_NHS)
		problem(im, line, "nhs_number: only put_record, link_nhs and "
		    "unlink_nhs rows take one");
}

static void
progress(struct import *im, size_t row, size_t line)
{
	if (im->progress != NULL && row % 1000 == 0)
		im->progress(im, line);
}

/* Where a CSV cell starts. */
struct csv_at {
	size_t	line, col;
};

/*
 * CSV (RFC 4180): one record per row, cells separated by commas, quoted
 * with " when they hold commas, quotes ("") or line breaks. Reads one row
 * into cells (pointers into *scratch), and where each cell starts into
 * at (line and byte column, from 1; NULL: not wanted); returns the cell
 * count, 0 at the end, -1 on a malformed row. *line advances past the
 * row's line breaks.
 */
static int
csv_row(struct import *im, const char **pp, const char *end, char *scratch,
    char **cells, struct csv_at *at, size_t *line)
{
	const char	*p = *pp, *bol = *pp;	/* a row starts a line */
	char		*out = scratch;
	int		 n = 0, quoted;
	size_t		 start = *line;

	if (p >= end)
		return 0;
	for (;;) {
		if (n == MAX_COLUMNS) {
			problem(im, start, "more than %d columns", MAX_COLUMNS);
			return -1;
		}
		if (at != NULL) {
			at[n].line = *line;
			at[n].col = (size_t)(p - bol) + 1;
		}
		cells[n++] = out;
		quoted = p < end && *p == '"';
		if (quoted) {
			for (p++;; p++) {
				if (p >= end) {
					problem(im, start, "a quoted cell is not closed");
					return -1;
				}
				if (*p == '"' && p + 1 < end && p[1] == '"')
					*out++ = *p++;
				else if (*p == '"')
					break;
				else {
					if (*p == '\n') {
						(*line)++;
						bol = p + 1;
					}
					*out++ = *p;
				}
			}
			p++;
		} else
			while (p < end && *p != ',' && *p != '\n' && *p != '\r') {
				if (*p == '"') {
					problem(im, start, "a quote inside an unquoted cell "
					    "(quote the whole cell and double the quote)");
					return -1;
				}
				*out++ = *p++;
			}
		*out++ = '\0';
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p < end && *p == '\r')
			p++;
		if (p < end && *p == '\n')
			p++;
		else if (p < end) {
			problem(im, start, "text after a closing quote");
			return -1;
		}
		(*line)++;
		*pp = p;
		return n;
	}
}

static void
parse_csv(struct import *im, const char *buf, size_t len)
{
	const char	*p = buf, *end = buf + len;
	char		*scratch = xcalloc(len + 1, 1), *cells[MAX_COLUMNS];
	char		*header[MAX_COLUMNS];
	struct csv_at	 pos[MAX_COLUMNS];
	size_t		 line = 1, row = 0;
	int		 ncols, n, has_subject = 0;

	/* The header names the columns. */
	if ((ncols = csv_row(im, &p, end, scratch, cells, NULL, &line)) <= 0) {
		if (ncols == 0)
			problem(im, 1, "empty file: expected a header row");
		free(scratch);
		return;
	}
	for (int i = 0; i < ncols; i++) {
		header[i] = xstrdup(cells[i]);
		has_subject |= strcmp(header[i], "subject") == 0;
		for (int j = 0; j < i; j++)
			if (strcmp(header[i], header[j]) == 0)
				problem(im, 1, "column \"%s\" appears twice", header[i]);
	}
	if (!has_subject) {
		/* Issue 22: a misspelt header gets a did-you-mean. */
		const char *want[] = { "subject" }, *close = NULL;

		for (int i = 0; i < ncols && close == NULL; i++)
			if (did_you_mean(header[i], want, 1) != NULL)
				close = header[i];
		problem(im, 1, "the header has no \"subject\" column%s%s%s",
		    close ? " (column \"" : "", close ? close : "",
		    close ? "\": did you mean \"subject\"?)" : "");
	}
	while (im->nerrors < IMPORT_MAX_ERRORS) {
		size_t				 at = line;
		Safeshare__V1__HolderOp		*op;

		/* Blank lines are skipped. */
		if (p < end && (*p == '\n' || *p == '\r')) {
			p += *p == '\r' && p + 1 < end && p[1] == '\n' ? 2 : 1;
			line++;
			continue;
		}
		if ((n = csv_row(im, &p, end, scratch, cells, pos, &line)) == 0)
			break;
		if (n == -1) {
			/* Resynchronise at the next line. */
			while (p < end && *p != '\n')
				p++;
			if (p < end)
				p++;
			line = at + 1;
			continue;
		}
		progress(im, ++row, at);
		if (n != ncols) {
			problem(im, at, "%d cells, the header has %d", n, ncols);
			continue;
		}
		op = import_new_op(im, at);
		for (int i = 0; i < ncols; i++) {
			const char *name = header[i];

			if (cells[i][0] == '\0')
				continue;	/* empty cell: not given */
			if (strncmp(name, "field.", 6) == 0)
				name += 6;	/* a field named like a control key */
			else if (strcmp(name, "nhs_number") == 0) {
				set_nhs(im, op, pos[i].line, pos[i].col, cells[i]);
				continue;
			} else if (import_set_key(im, op, at, name, cells[i]))
				continue;
			if (op->kind != SAFESHARE__V1__HOLDER_OP_KIND__HOLDER_OP_PUT_RECORD)
				problem(im, at, "%s: fields belong to put_record rows only",
				    name);
			else
				import_add_field(op, name, cells[i]);
		}
		import_check_op(im, op, at);
	}
	for (int i = 0; i < ncols; i++)
		free(header[i]);
	free(scratch);
}

static int
control_key(const char *key)
{
	for (size_t i = 0; i < sizeof(control_keys) / sizeof(control_keys[0]); i++)
		if (strcmp(key, control_keys[i]) == 0)
			return 1;
	return 0;
}

/* What a JSON value is, for a message: "a number", "true", "an array". */
static const char *
json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:	return "an object";
	case JSON_ARRAY:	return "an array";
	case JSON_STRING:	return "a string";
	case JSON_INTEGER:
	case JSON_REAL:		return "a number";
	case JSON_TRUE:		return "true";
	case JSON_FALSE:	return "false";
	default:		return "null";
	}
}

/*
 * One value where the format wants a string. A string is taken as it is;
 * null means "not given", like an empty CSV cell (it never becomes the text
 * "null"); true, false and numbers are refused, since 0123 or 1e3 would not
 * come back as the text the holder meant. Returns the string, or NULL when
 * there is nothing to store (a problem was recorded if it was not null).
 */
static const char *
json_text(struct import *im, size_t line, const char *what, const char *key,
    const json_t *v)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (!json_is_null(v))
		problem(im, line, "%s%s: expected a string, got %s%s", what, key,
		    json_kind(v), json_is_number(v) || json_is_boolean(v) ?
		    " (write it in quotes)" : "");
	return NULL;
}

static void
json_ids(struct import *im, Safeshare__V1__HolderOp *op, size_t line,
    const char *key, const json_t *v)
{
	const char	*s;
	size_t		 i;
	json_t		*e;

	if (!json_is_array(v)) {
		if ((s = json_text(im, line, "", key, v)) != NULL)
			import_set_key(im, op, line, key, s);
		return;
	}
	json_array_foreach(v, i, e) {
		if (!json_is_string(e)) {
			problem(im, line, "%s: expected a list of ids (strings), got %s",
			    key, json_kind(e));
			return;
		}
		import_set_key(im, op, line, key, json_string_value(e));
	}
}

/*
 * The byte column (from 1) where the top-level key named key starts on the
 * line bol..eol, written plainly ("key", no escapes); 0 if not found. The
 * line is valid JSON already: this only skips strings and nesting.
 */
static size_t
json_key_col(const char *bol, const char *eol, const char *key)
{
	size_t	klen = strlen(key);
	int	depth = 0;

	for (const char *p = bol; p < eol; p++) {
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			depth--;
		else if (*p == '"') {
			const char *q = p + 1;

			while (q < eol && *q != '"')
				q += *q == '\\' ? 2 : 1;
			if (depth == 1 && (size_t)(q - p - 1) == klen &&
			    memcmp(p + 1, key, klen) == 0) {
				const char *c = q + 1;

				while (c < eol && (*c == ' ' || *c == '\t'))
					c++;
				if (c < eol && *c == ':')
					return (size_t)(p - bol) + 1;
			}
			p = q;
		}
	}
	return 0;
}

/* One JSON line's object into an op; every problem is recorded. */
static void
parse_json_object(struct import *im, json_t *root, size_t line, const char *bol,
    const char *eol)
{
	Safeshare__V1__HolderOp	*op;
	const char		*key, *s;
	json_t			*v;

	if (!json_is_object(root)) {
		problem(im, line, "expected a JSON object");
		return;
	}
	op = import_new_op(im, line);
	json_object_foreach(root, key, v) {
		if (strcmp(key, "fields") == 0) {
			const char	*fk;
			json_t		*fv;

			if (json_is_null(v))
				continue;
			if (!json_is_object(v)) {
				problem(im, line, "fields: expected an object of "
				    "\"name\": \"value\"");
				continue;
			}
			json_object_foreach(v, fk, fv)
				if ((s = json_text(im, line, "fields.", fk, fv)) != NULL)
					import_add_field(op, fk, s);
			continue;
		}
		if (strcmp(key, "agencies") == 0 || strcmp(key, "purposes") == 0) {
			json_ids(im, op, line, key, v);
			continue;
		}
		if (!control_key(key)) {
			const char *dym = did_you_mean(key, control_keys,
			    sizeof(control_keys) / sizeof(control_keys[0]));

			problem(im, line, "unknown key \"%s\"%s%s%s", key,
			    dym ? " (did you mean \"" : "", dym ? dym : "", dym ? "\"?)" : "");
			continue;
		}
		if ((s = json_text(im, line, "", key, v)) == NULL)
			continue;
		if (strcmp(key, "nhs_number") == 0)
			set_nhs(im, op, line, json_key_col(bol, eol, key), s);
		else
			import_set_key(im, op, line, key, s);
	}
	import_check_op(im, op, line);
}

/*
 * JSON lines through jansson: each line is one document, so a duplicate
 * key, trailing text after the object, a lone surrogate or a \u0000 is a
 * problem on that line, with jansson's column.
 */
static void
parse_jsonl(struct import *im, const char *buf, size_t len)
{
	const char	*p = buf, *end = buf + len;
	size_t		 line = 0, row = 0;

	while (p < end && im->nerrors < IMPORT_MAX_ERRORS) {
		const char	*nl = memchr(p, '\n', (size_t)(end - p));
		const char	*eol = nl ? nl : end, *s = p, *bol = p;
		json_error_t	 je;
		json_t		*root;

		line++;
		p = nl ? nl + 1 : end;
		while (s < eol && (*s == ' ' || *s == '\t' || *s == '\r'))
			s++;
		if (s == eol)
			continue;	/* blank line */
		progress(im, ++row, line);
		if (*s != '{') {
			problem(im, line, "expected a JSON object");
			continue;
		}
		if ((root = json_loadb(s, (size_t)(eol - s), JSON_REJECT_DUPLICATES,
		    &je)) == NULL) {
			problem(im, line, "not valid JSON: column %d: %s",
			    (int)(s - bol) + je.column,
			    json_error_code(&je) == json_error_null_character ?
			    "a string holds \\u0000 (NUL)" : je.text);
			continue;
		}
		parse_json_object(im, root, line, bol, eol);
		json_decref(root);
	}
}

int
import_parse(struct import *im, enum import_format fmt, const char *buf, size_t len)
{
	if (memchr(buf, '\0', len) != NULL) {
		problem(im, 1, "the file holds NUL bytes: not a text file");
		return -1;
	}
	/* Issue 14: spreadsheet exports often start with a UTF-8 BOM. */
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
		buf += 3;
		len -= 3;
	}
	if (fmt == IMPORT_CSV)
		parse_csv(im, buf, len);
	else
		parse_jsonl(im, buf, len);
	if (im->nerrors == 0 && im->nops == 0)
		problem(im, 1, "no rows to import");
	return im->nerrors > 0 ? -1 : 0;
}
