/*
 * key=value logging in the manner of OpenBSD's log.c: log_warn() appends
 * strerror(errno), log_warnx() does not.
 */
#include <errno.h>
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

static void
vlog(enum log_level level, const char *errstr, const char *fmt, va_list ap)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	char		 ts[32], line[2048];
	struct timespec	 now;
	struct tm	 tm;
	size_t		 n;
	int		 k;

	if (level > log_max)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	/*
	 * The line is built first and written with one write(2): stderr is
	 * unbuffered, and three writes per line showed in the profile. A
	 * line longer than the buffer is cut, never split.
	 */
	k = snprintf(line, sizeof(line), "ts=%s.%03ldZ prog=%s level=%s ", ts,
	    now.tv_nsec / 1000000, log_prog, names[level]);
	n = k > 0 ? (size_t)k : 0;
	if (n < sizeof(line) && (k = vsnprintf(line + n, sizeof(line) - n, fmt, ap)) > 0)
		n += (size_t)k;
	if (errstr != NULL && n < sizeof(line) &&
	    (k = snprintf(line + n, sizeof(line) - n, " error=\"%s\"", errstr)) > 0)
		n += (size_t)k;
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
