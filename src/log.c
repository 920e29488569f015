/*
 * key=value logging in the manner of OpenBSD's log.c: log_warn() appends
 * strerror(errno), log_warnx() does not.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static enum log_level	 log_max = LOG_LEVEL_INFO;
static const char	*log_prog = "safeshare";

/* A holding thread's lines (log_hold()); other threads write at once. */
static __thread struct {
	int		 on;
	void		(*first)(void *);
	void		*arg;
	size_t		 len;
	char		 buf[16384];
} *held;

void
log_hold(void (*first)(void *), void *arg)
{
	if (first == NULL) {
		log_flush();
		if (held != NULL)
			held->on = 0;
		return;
	}
	if (held == NULL && (held = calloc(1, sizeof(*held))) == NULL)
		return;		/* then lines are written at once, as before */
	if (!held->on)
		atexit(log_flush);	/* a held line is not lost at exit() */
	held->on = 1;
	held->first = first;
	held->arg = arg;
}

void
log_flush(void)
{
	if (held != NULL && held->len > 0) {
		fwrite(held->buf, 1, held->len, stderr);
		held->len = 0;
	}
}

static void
emit(enum log_level level, const char *line, size_t n)
{
	if (held == NULL || !held->on) {
		fwrite(line, 1, n, stderr);
		return;
	}
	if (held->len + n > sizeof(held->buf))
		log_flush();
	if (held->len == 0 && held->first != NULL && level > LOG_LEVEL_WARN)
		held->first(held->arg);
	memcpy(held->buf + held->len, line, n);
	held->len += n;
	if (level <= LOG_LEVEL_WARN)
		log_flush();
}

void
log_init(enum log_level level, const char *progname)
{
	log_max = level;
	if (progname != NULL)
		log_prog = progname;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

static void	vlog(enum log_level, const char *, const char *, va_list)
		    __attribute__((format(printf, 3, 0)));

/* A value that needs no quotes in logfmt: nonempty, no space, '"', '=' or '\\'. */
static int
bare(const char *v)
{
	if (*v == '\0')
		return 0;
	for (const unsigned char *s = (const unsigned char *)v; *s != '\0'; s++)
		if (*s <= 0x20 || *s == 0x7f || *s == '"' || *s == '=' || *s == '\\')
			return 0;
	return 1;
}

/*
 * Appends v to line[*n..len) as one logfmt value: bare when it can be, else
 * with '"', '\\' and control bytes escaped, and quoted unless the format
 * already quotes it. No value can end the line or start a new key.
 */
static void
put_value(char *line, size_t len, size_t *n, const char *v, int quoted)
{
	int	q = !quoted && !bare(v);
	size_t	vl = strcspn(v, "\"\\\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b"
		    "\x0c\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19"
		    "\x1a\x1b\x1c\x1d\x1e\x1f\x7f");

	if (q && *n < len)
		line[(*n)++] = '"';
	/* Up to the first byte that needs an escape (most values: all of it), a copy. */
	if (vl > len - *n)
		vl = len - *n;
	memcpy(line + *n, v, vl);
	*n += vl;
	v += vl;
	for (const unsigned char *s = (const unsigned char *)v; *s != '\0' && *n < len;
	    s++) {
		int k;

		if (*s == '"' || *s == '\\')
			k = snprintf(line + *n, len - *n, "\\%c", *s);
		else if (*s == '\n')
			k = snprintf(line + *n, len - *n, "\\n");
		else if (*s == '\r')
			k = snprintf(line + *n, len - *n, "\\r");
		else if (*s == '\t')
			k = snprintf(line + *n, len - *n, "\\t");
		else if (*s < 0x20 || *s == 0x7f)
			k = snprintf(line + *n, len - *n, "\\x%02x", *s);
		else {
			line[(*n)++] = (char)*s;
			continue;
		}
		*n = k > 0 && (size_t)k < len - *n ? *n + (size_t)k : len;
	}
	if (q && *n < len)
		line[(*n)++] = '"';
}

/*
 * vsnprintf for the log: the format is the program's, the arguments may be
 * anyone's. Each %s goes through put_value(); numbers are printed as they
 * are. Supports the conversions the format attribute allows, with flags,
 * width and precision (including '*') and the hh/h/l/ll/z/j/t/L modifiers.
 * Each spec is a piece of the caller's format, which the format attribute
 * checked at the call site: hence the pragma.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static size_t
log_format(char *line, size_t len, size_t n, const char *fmt, va_list ap)
{
	const char *fmt0 = fmt;

	while (*fmt != '\0' && n < len) {
		char		 spec[32], mod[3] = "";
		const char	*start = fmt;
		size_t		 sl;
		int		 k = 0, star[2], nstar = 0;

		if (*fmt != '%') {
			line[n++] = *fmt++;
			continue;
		}
		fmt++;
		if (*fmt == '%') {
			line[n++] = '%';
			fmt++;
			continue;
		}
		fmt += strspn(fmt, "-+ #0");
		if (*fmt == '*') {
			star[nstar++] = va_arg(ap, int);
			fmt++;
		} else
			fmt += strspn(fmt, "0123456789");
		if (*fmt == '.') {
			fmt++;
			if (*fmt == '*') {
				star[nstar++] = va_arg(ap, int);
				fmt++;
			} else
				fmt += strspn(fmt, "0123456789");
		}
		while (strchr("hlzjtL", *fmt) != NULL && *fmt != '\0' &&
		    strlen(mod) < 2) {
			mod[strlen(mod) + 1] = '\0';
			mod[strlen(mod)] = *fmt++;
		}
		if (*fmt == '\0')
			break;
		sl = (size_t)(fmt - start) + 1;
		if (sl >= sizeof(spec))
			break;
		memcpy(spec, start, sl);
		spec[sl] = '\0';
		switch (*fmt++) {
		case 's': {
			const char	*v = va_arg(ap, const char *);
			char		 cut[2048];
			int		 quoted = start > fmt0 && start[-1] == '"';

			if (v == NULL)
				v = "(null)";
			if (nstar > 0 || strchr(spec, '.') != NULL) {
				/* Width or precision: apply it, then escape the result. */
				if (nstar == 2)
					snprintf(cut, sizeof(cut), spec, star[0], star[1], v);
				else if (nstar == 1)
					snprintf(cut, sizeof(cut), spec, star[0], v);
				else
					snprintf(cut, sizeof(cut), spec, v);
				v = cut;
			}
			put_value(line, len, &n, v, quoted);
			continue;
		}
		case 'd': case 'i': case 'c':
			if (strcmp(mod, "ll") == 0)
				k = snprintf(line + n, len - n, spec, va_arg(ap, long long));
			else if (strcmp(mod, "l") == 0)
				k = snprintf(line + n, len - n, spec, va_arg(ap, long));
			else if (strcmp(mod, "z") == 0 || strcmp(mod, "t") == 0)
				k = snprintf(line + n, len - n, spec, va_arg(ap, ptrdiff_t));
			else if (strcmp(mod, "j") == 0)
				k = snprintf(line + n, len - n, spec, va_arg(ap, intmax_t));
			else
				k = snprintf(line + n, len - n, spec, va_arg(ap, int));
			break;
		case 'u': case 'x': case 'X': case 'o':
			if (strcmp(mod, "ll") == 0)
				k = snprintf(line + n, len - n, spec,
				    va_arg(ap, unsigned long long));
			else if (strcmp(mod, "l") == 0)
				k = snprintf(line + n, len - n, spec, va_arg(ap, unsigned long));
			else if (strcmp(mod, "z") == 0 || strcmp(mod, "t") == 0)
				k = snprintf(line + n, len - n, spec, va_arg(ap, size_t));
			else if (strcmp(mod, "j") == 0)
				k = snprintf(line + n, len - n, spec, va_arg(ap, uintmax_t));
			else
				k = snprintf(line + n, len - n, spec, va_arg(ap, unsigned));
			break;
		case 'f': case 'F': case 'e': case 'E': case 'g': case 'G':
			if (strcmp(mod, "L") == 0)
				k = snprintf(line + n, len - n, spec, va_arg(ap, long double));
			else
				k = snprintf(line + n, len - n, spec, va_arg(ap, double));
			break;
		case 'p':
			k = snprintf(line + n, len - n, spec, va_arg(ap, void *));
			break;
		default:
			/* Not a conversion the log uses: leave the rest out. */
			return n;
		}
		n = k > 0 && (size_t)k < len - n ? n + (size_t)k : len;
	}
	return n < len ? n : len;
}
#pragma GCC diagnostic pop

static void
vlog(enum log_level level, const char *errstr, const char *fmt, va_list ap)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	static __thread char	 ts[32];	/* the date of ts_sec */
	static __thread time_t	 ts_sec;
	char		 line[2048];
	struct timespec	 now;
	struct tm	 tm;
	size_t		 n;
	int		 k;

	if (level > log_max)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	/* The date changes once a second; gmtime_r() and strftime() then. */
	if (now.tv_sec != ts_sec || ts[0] == '\0') {
		gmtime_r(&now.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		ts_sec = now.tv_sec;
	}
	/*
	 * The line is built first and written with one write(2): stderr is
	 * unbuffered, and three writes per line showed in the profile. A
	 * line longer than the buffer is cut, never split.
	 */
	k = snprintf(line, sizeof(line), "ts=%s.%03ldZ prog=%s level=%s ", ts,
	    now.tv_nsec / 1000000, log_prog, names[level]);
	n = k > 0 ? (size_t)k : 0;
	if (n < sizeof(line))
		n = log_format(line, sizeof(line), n, fmt, ap);
	if (errstr != NULL && n + 8 < sizeof(line)) {
		memcpy(line + n, " error=", 7);
		n += 7;
		put_value(line, sizeof(line), &n, errstr, 0);
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	emit(level, line, n);
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARN, strerror(saved), fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARN, NULL, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_INFO, NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_DEBUG, NULL, fmt, ap);
	va_end(ap);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
