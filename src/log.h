/*
 * Structured logging to stderr: one event per line, key=value.
 * Never pass record contents, justifications or key material here.
 */
#ifndef SAFESHARE_LOG_H
#define SAFESHARE_LOG_H

#include <stdarg.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void	log_init(enum log_level level, const char *progname);
int	log_level_parse(const char *s, enum log_level *out);
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * Holding, for an event loop: the calling thread's info and debug lines
 * collect in a buffer and leave in one write(2) at log_flush(), which the
 * loop calls once per round; first(arg) runs when a line lands in an empty
 * buffer, so the loop knows a flush is owed. A warning or an error flushes
 * at once (after the lines before it), and so does a full buffer and
 * fatalx(). Other threads are not affected. log_hold(NULL, NULL) flushes
 * and stops holding.
 */
void	log_hold(void (*first)(void *), void *arg);
void	log_flush(void);

#endif
