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

/*
 * Appends v to line[*n..len) as one logfmt value: bare when it can be
 * (nonempty, no space, '"', '=', '\\' or control byte), else with '"', '\\'
 * and control bytes escaped, and quoted unless the format already quotes
 * it. No value can end the line or start a new key. One pass finds both
 * the first byte that needs an escape and whether quotes are needed (a
 * byte that needs an escape needs them too): this runs for every %s of
 * every line, the decision's among them.
 */
static void
put_value(char *line, size_t len, size_t *n, const char *v, int quoted)
{
	const unsigned char	*u = (const unsigned char *)v;
	size_t			 vl;
	int			 q = 0;

	for (vl = 0; u[vl] != '\0'; vl++) {
		if (u[vl] < 0x20 || u[vl] == 0x7f || u[vl] == '"' || u[vl] == '\\')
			break;
		if (u[vl] == ' ' || u[vl] == '=')
			q = 1;
	}
	q = !quoted && (q || vl == 0 || u[vl] != '\0');
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

/* Appends s as it is, cut at len. */
static size_t
put_raw(char *line, size_t len, size_t n, const char *s)
{
	size_t k = strlen(s);

	if (k > len - n)
		k = len - n;
	memcpy(line + n, s, k);
	return n + k;
}

/*
 * Appends a decimal number as %d or %u would print it, cut as snprintf()
 * cuts: a number that does not fit whole takes the line to len.
 */
static size_t
put_number(char *line, size_t len, size_t n, unsigned long long u, int neg)
{
	char	 d[24];
	size_t	 i = sizeof(d), k;

	do {
		d[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (neg)
		d[--i] = '-';
	k = sizeof(d) - i;
	memcpy(line + n, d + i, k < len - n ? k : len - n);
	return k < len - n ? n + k : len;
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
			/* The format's text up to its next conversion, a copy. */
			sl = strcspn(fmt, "%");
			if (sl > len - n)
				sl = len - n;
			memcpy(line + n, fmt, sl);
			n += sl;
			fmt += sl;
			continue;
		}
		fmt++;
		if (*fmt == '%') {
			line[n++] = '%';
			fmt++;
			continue;
		}
		/*
		 * The plain conversions every per-request line uses (%s, %d,
		 * %u with no flag, width or precision, and l, ll or z), without
		 * the spec's copy and snprintf(): the decision's line is
		 * written for every disclosure on the event loop.
		 */
		if (*fmt == 's') {
			const char *v = va_arg(ap, const char *);

			put_value(line, len, &n, v != NULL ? v : "(null)",
			    start > fmt0 && start[-1] == '"');
			fmt++;
			continue;
		}
		sl = fmt[0] == 'l' && fmt[1] == 'l' ? 2 : fmt[0] == 'l' || fmt[0] == 'z';
		if (fmt[sl] == 'd' || fmt[sl] == 'i') {
			long long v = sl == 2 ? va_arg(ap, long long) : sl == 0 ?
			    va_arg(ap, int) : fmt[0] == 'l' ? va_arg(ap, long) :
			    va_arg(ap, ptrdiff_t);

			n = put_number(line, len, n, v < 0 ? 0ULL - (unsigned long long)v :
			    (unsigned long long)v, v < 0);
			fmt += sl + 1;
			continue;
		}
		if (fmt[sl] == 'u') {
			unsigned long long v = sl == 2 ? va_arg(ap, unsigned long long) :
			    sl == 0 ? va_arg(ap, unsigned) : fmt[0] == 'l' ?
			    va_arg(ap, unsigned long) : va_arg(ap, size_t);

			n = put_number(line, len, n, v, 0);
			fmt += sl + 1;
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
	long		 ms;

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
	 * The prefix as "ts=%s.%03ldZ prog=%s level=%s " would print it,
	 * without snprintf() (every line, the decision's per disclosure).
	 * The line is built first and written with one write(2): stderr is
	 * unbuffered, and three writes per line showed in the profile. A
	 * line longer than the buffer is cut, never split.
	 */
	ms = now.tv_nsec / 1000000;
	n = put_raw(line, sizeof(line), 0, "ts=");
	n = put_raw(line, sizeof(line), n, ts);
	n = put_raw(line, sizeof(line), n, ".");
	n = put_number(line, sizeof(line), n, (unsigned long long)ms / 100, 0);
	n = put_number(line, sizeof(line), n, (unsigned long long)ms / 10 % 10, 0);
	n = put_number(line, sizeof(line), n, (unsigned long long)ms % 10, 0);
	n = put_raw(line, sizeof(line), n, "Z prog=");
	n = put_raw(line, sizeof(line), n, log_prog);
	n = put_raw(line, sizeof(line), n, " level=");
	n = put_raw(line, sizeof(line), n, names[level]);
	n = put_raw(line, sizeof(line), n, " ");
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
