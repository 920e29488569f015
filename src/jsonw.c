#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "log.h"
#include "util.h"

json_t *
jsonw_str(const char *s)
{
	json_t	*v;
	char	*fixed;

	if ((v = json_string(s != NULL ? s : "")) != NULL)
		return v;
	/* Not UTF-8 (the only reason json_string() refuses a C string). */
	fixed = utf8_lossy(s);
	v = json_string(fixed);
	free(fixed);
	if (v == NULL)
		fatalx("%s: out of memory", __func__);
	return v;
}

json_t *
jsonw_u64(uint64_t u)
{
	json_t *v = json_integer(u > INT64_MAX ? INT64_MAX : (json_int_t)u);

	if (v == NULL)
		fatalx("%s: out of memory", __func__);
	return v;
}

json_t *
jsonw_hex(const unsigned char *b, size_t n)
{
	char	*hex = xcalloc(2 * n + 1, 1);
	json_t	*v;

	hex_encode(b, n, hex);
	v = jsonw_str(hex);
	free(hex);
	return v;
}

void
jsonw_set(json_t *obj, const char *key, json_t *v)
{
	char	*fixed;
	int	 rc;

	if (v == NULL)
		fatalx("%s: out of memory", __func__);
	/* A key from data (a record's field name) may not be UTF-8. */
	if ((rc = json_object_set(obj, key, v)) == -1) {
		fixed = utf8_lossy(key);
		rc = json_object_set(obj, fixed, v);
		free(fixed);
	}
	json_decref(v);
	if (rc == -1)
		fatalx("%s: out of memory", __func__);
}

int
jsonw_print(FILE *fp, json_t *v)
{
	int rc;

	if (v == NULL)
		return -1;
	rc = json_dumpf(v, fp, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
	json_decref(v);
	if (rc == 0 && fputc('\n', fp) == EOF)
		rc = -1;
	return rc;
}

/* Notes the first failed write of q (errno, or EIO if stdio left none). */
static int
seq_failed(struct jsonw_seq *q)
{
	if (q->error == 0)
		q->error = errno != 0 ? errno : EIO;
	return -1;
}

void
jsonw_seq_begin(struct jsonw_seq *q, FILE *fp)
{
	q->fp = fp;
	q->n = 0;
	q->error = 0;
	errno = 0;
	if (fputc('[', fp) == EOF)
		(void)seq_failed(q);
}

int
jsonw_seq_add(struct jsonw_seq *q, json_t *v)
{
	int rc;

	if (v == NULL)
		return -1;
	if (q->error != 0) {
		json_decref(v);
		return -1;
	}
	errno = 0;
	if (q->n++ > 0 && fputs(",\n", q->fp) == EOF) {
		json_decref(v);
		return seq_failed(q);
	}
	rc = json_dumpf(v, q->fp, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
	json_decref(v);
	/* stdio keeps what it could not write: ferror() is the only sign. */
	if (rc == -1 || ferror(q->fp))
		return seq_failed(q);
	return 0;
}

int
jsonw_seq_end(struct jsonw_seq *q)
{
	if (q->error == 0) {
		errno = 0;
		if (fputs("]\n", q->fp) == EOF || fflush(q->fp) == EOF ||
		    ferror(q->fp))
			(void)seq_failed(q);
	}
	if (q->error != 0) {
		errno = q->error;
		return -1;
	}
	return 0;
}
