#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		fatalx("%s: out of memory", __func__);
	return p;
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		fatalx("%s: out of memory", __func__);
	return p;
}

static void	vdiag(struct diag *, int, const char *, size_t, size_t, const char *,
		    va_list) __attribute__((format(printf, 6, 0)));

static void
vdiag(struct diag *d, int error, const char *file, size_t line, size_t col,
    const char *fmt, va_list ap)
{
	char	 msg[1024], full[1400];
	char	**v;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (line > 0)
		snprintf(full, sizeof(full), "%s:%zu:%zu: %s%s", file, line, col,
		    error ? "" : "warning: ", msg);
	else
		snprintf(full, sizeof(full), "%s: %s%s", file,
		    error ? "" : "warning: ", msg);
	v = realloc(d->msgs, (d->n + 1) * sizeof(*v));
	if (v == NULL)
		fatalx("%s: out of memory", __func__);
	d->msgs = v;
	d->msgs[d->n++] = xstrdup(full);
	if (error)
		d->nerrors++;
}

void
diag_add(struct diag *d, const char *file, size_t line, size_t col,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdiag(d, 1, file, line, col, fmt, ap);
	va_end(ap);
}

void
diag_warn(struct diag *d, const char *file, size_t line, size_t col,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdiag(d, 0, file, line, col, fmt, ap);
	va_end(ap);
}

void
diag_print(const struct diag *d, FILE *fp)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(fp, "%s\n", d->msgs[i]);
}

void
diag_free(struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->msgs[i]);
	free(d->msgs);
	memset(d, 0, sizeof(*d));
}

int
strlist_add(struct strlist *l, const char *s)
{
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (v == NULL)
		return -1;
	l->v = v;
	l->v[l->n++] = xstrdup(s);
	return 0;
}

int
strlist_has(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return 1;
	return 0;
}

void
strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void
hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes exactly outlen bytes of hex, ignoring ':' separators; -1 on error. */
int
hex_decode(const char *in, unsigned char *out, size_t outlen)
{
	size_t n = 0;

	while (*in != '\0') {
		int hi, lo;

		if (*in == ':') {
			in++;
			continue;
		}
		if ((hi = hexval(in[0])) < 0 || (lo = hexval(in[1])) < 0)
			return -1;
		if (n == outlen)
			return -1;
		out[n++] = (unsigned char)(hi << 4 | lo);
		in += 2;
	}
	return n == outlen ? 0 : -1;
}

char *
path_relative_to(const char *base_file, const char *path)
{
	const char	*slash;
	char		*out;
	size_t		 dirlen;

	if (path[0] == '/' || (slash = strrchr(base_file, '/')) == NULL)
		return xstrdup(path);
	dirlen = (size_t)(slash - base_file);
	out = xcalloc(dirlen + strlen(path) + 2, 1);
	memcpy(out, base_file, dirlen);
	out[dirlen] = '/';
	strcpy(out + dirlen + 1, path);
	return out;
}

int
file_is_secret(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen,
		    "%s: private key is group or world accessible (mode %03o); "
		    "run chmod 600 on it", path, (unsigned)(st.st_mode & 0777));
		return -1;
	}
	return 0;
}

void
json_str(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", fp);
		else if (c < 0x20 || c == 0x7f)
			fprintf(fp, "\\u%04x", c);
		else
			fputc(c, fp);
	}
	fputc('"', fp);
}

char *
file_read(const char *path, size_t max, size_t *len)
{
	struct stat	 sb;
	FILE		*fp;
	char		*buf;
	int		 saved;

	if ((fp = fopen(path, "rb")) == NULL)
		return NULL;
	if (fstat(fileno(fp), &sb) == -1)
		saved = errno;
	else if (!S_ISREG(sb.st_mode))
		saved = EINVAL;
	else if ((uintmax_t)sb.st_size > max)
		saved = EFBIG;
	else
		saved = 0;
	if (saved != 0) {
		fclose(fp);
		errno = saved;
		return NULL;
	}
	buf = xcalloc((size_t)sb.st_size + 1, 1);
	*len = fread(buf, 1, (size_t)sb.st_size, fp);
	if (ferror(fp)) {
		saved = errno ? errno : EIO;
		free(buf);
		fclose(fp);
		errno = saved;
		return NULL;
	}
	fclose(fp);
	return buf;
}
