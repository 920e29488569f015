#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	/* Messages quote the file's own text: show its control bytes, escaped. */
	for (size_t i = 0; i < d->n; i++)
		fprintf(fp, "%s\n", term_safe(d->msgs[i]));
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
errorf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/*
 * Decodes one UTF-8 sequence at s; returns its length and the code point in
 * *cp, or 0 for an invalid or overlong sequence, a surrogate or a value
 * beyond U+10FFFF.
 */
static size_t
utf8_next(const unsigned char *s, uint32_t *cp)
{
	size_t	 n, i;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		c = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		c = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		c = s[0] & 0x07;
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	*cp = c;
	return n;
}

/* Control code points: C0, DEL, C1 and the bidirectional embeddings. */
static int
cp_control(uint32_t c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) ||
	    (c >= 0x2066 && c <= 0x2069);
}

/* Code points that print nothing visible: spaces, zero-width and fillers. */
static int
cp_invisible(uint32_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == 0xa0 || c == 0xad ||
	    c == 0x34f || c == 0x115f || c == 0x1160 || c == 0x180e ||
	    (c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) ||
	    (c >= 0x205f && c <= 0x2064) || c == 0x3000 || c == 0x3164 ||
	    c == 0xfeff || c == 0xffa0 || (c >= 0xe0000 && c <= 0xe007f);
}

const char *
text_problem(const char *s, size_t max, int flags)
{
	const unsigned char	*u = (const unsigned char *)s;
	int			 visible = 0;

	if (strlen(s) > max)
		return "is too long";
	while (*u != '\0') {
		uint32_t	 c;
		size_t		 n = utf8_next(u, &c);

		if (n == 0)
			return "is not valid UTF-8";
		if (cp_control(c) && !((flags & TEXT_MULTILINE) && (c == '\n' || c == '\t')))
			return "contains control characters";
		if (!cp_invisible(c))
			visible = 1;
		u += n;
	}
	if (*s != '\0' && !visible)
		return "is blank (only spaces or invisible characters)";
	return NULL;
}

const char *
term_safe(const char *s)
{
	static __thread char	*ring[16];
	static __thread size_t	 next;
	const unsigned char	*u = (const unsigned char *)(s ? s : "");
	char			*out, *o;

	next = (next + 1) % 16;
	free(ring[next]);
	/* Each input byte becomes at most 6 output bytes ("\u202e" is 3 in). */
	out = o = ring[next] = xcalloc(strlen((const char *)u) * 4 + 1, 1);
	while (*u != '\0') {
		uint32_t	 c;
		size_t		 n = utf8_next(u, &c);

		if (n == 0) {
			o += sprintf(o, "\\x%02x", *u++);
			continue;
		}
		if (c == '\n')
			o += sprintf(o, "\\n");
		else if (c == '\r')
			o += sprintf(o, "\\r");
		else if (c == '\t')
			o += sprintf(o, "\\t");
		else if (c < 0x20 || c == 0x7f)
			o += sprintf(o, "\\x%02x", c);
		else if (cp_control(c))
			o += sprintf(o, "\\u%04x", c);
		else {
			memcpy(o, u, n);
			o += n;
		}
		u += n;
	}
	*o = '\0';
	return out;
}

int
file_db_writable(const char *path, char *err, size_t errlen)
{
	struct stat	 st;
	char		*dir, *slash;
	int		 rc = -1;

	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) == NULL) {
		free(dir);
		dir = xstrdup(".");
	} else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (stat(dir, &st) == -1) {
		snprintf(err, errlen, "%s: directory %s: %s; create it, owned by the "
		    "daemon's user, mode 0700", path, dir, strerror(errno));
		goto fail;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: %s is not a directory", path, dir);
		goto fail;
	}
	if (access(dir, W_OK | X_OK) == -1) {
		snprintf(err, errlen, "%s: directory %s: %s; it must be writable by "
		    "the daemon's user (SQLite creates -wal and -shm files there)",
		    path, dir, strerror(errno));
		goto fail;
	}
	if (stat(path, &st) == -1) {
		if (errno == ENOENT) {
			rc = 0;		/* created at start */
			goto fail;
		}
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if (access(path, R_OK | W_OK) == -1) {
		snprintf(err, errlen, "%s: %s; it must be readable and writable by "
		    "the daemon's user", path, strerror(errno));
		goto fail;
	}
	rc = 0;
fail:
	free(dir);
	return rc;
}

int
proc_no_dumps(void)
{
	struct rlimit	 rl;

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		return -1;
	/* Under the unit's LimitCORE=0 the limit is 0 already (and its
	 * SystemCallFilter refuses setrlimit). */
	if (getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_max == 0)
		return 0;
	rl.rlim_cur = rl.rlim_max = 0;
	return setrlimit(RLIMIT_CORE, &rl);
}

char *
utf8_lossy(const char *s)
{
	const unsigned char	*u = (const unsigned char *)(s ? s : "");
	char			*out, *o;

	/* An invalid byte (1 in) becomes U+FFFD (3 out). */
	out = o = xcalloc(strlen((const char *)u) * 3 + 1, 1);
	while (*u != '\0') {
		uint32_t	 c;
		size_t		 n = utf8_next(u, &c);

		if (n == 0) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			u++;
			continue;
		}
		memcpy(o, u, n);
		o += n;
		u += n;
	}
	*o = '\0';
	return out;
}

char *
file_read(const char *path, size_t max, size_t *len, int *absent, char *err,
    size_t errlen)
{
	struct stat	 sb;
	FILE		*fp = NULL;
	char		*buf = NULL;

	if (absent != NULL)
		*absent = 0;
	if ((fp = fopen(path, "rb")) == NULL) {
		if (absent != NULL && errno == ENOENT)
			*absent = 1;
		errorf(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	if (fstat(fileno(fp), &sb) == -1) {
		errorf(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		errorf(err, errlen, "not a regular file");
		goto fail;
	}
	if ((uintmax_t)sb.st_size > max) {
		if (max >= 1024 * 1024 && max % (1024 * 1024) == 0)
			errorf(err, errlen, "larger than %zu MiB", max / (1024 * 1024));
		else
			errorf(err, errlen, "larger than %zu bytes", max);
		goto fail;
	}
	buf = xcalloc((size_t)sb.st_size + 1, 1);
	*len = fread(buf, 1, (size_t)sb.st_size, fp);
	if (ferror(fp)) {
		errorf(err, errlen, "%s", strerror(errno ? errno : EIO));
		goto fail;
	}
	fclose(fp);
	return buf;
fail:
	free(buf);
	if (fp != NULL)
		fclose(fp);
	return NULL;
}
