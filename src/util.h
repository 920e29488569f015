/*
 * Small shared helpers: diagnostics that name file:line:col, string lists,
 * hex encoding, path handling.
 */
#ifndef SAFESHARE_UTIL_H
#define SAFESHARE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * A list of user-facing messages. Parsers append every problem they find,
 * so an admin sees all of them at once, each as "file:line:col: message".
 */
struct diag {
	char	**msgs;
	size_t	  n;
	size_t	  nerrors;	/* warnings are in msgs but not counted here */
};

void	diag_add(struct diag *, const char *file, size_t line, size_t col,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void	diag_warn(struct diag *, const char *file, size_t line, size_t col,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void	diag_print(const struct diag *, FILE *);
void	diag_free(struct diag *);

/* A growable array of owned strings. */
struct strlist {
	char	**v;
	size_t	  n;
};

int	strlist_add(struct strlist *, const char *);
int	strlist_has(const struct strlist *, const char *);
void	strlist_free(struct strlist *);

/*
 * How long an SQLite connection (store or log) waits for another's lock
 * before SQLITE_BUSY, in milliseconds: sqlite3_busy_timeout()'s argument.
 */
#define DB_BUSY_MS	5000

void	*xcalloc(size_t n, size_t size);
char	*xstrdup(const char *);
void	 hex_encode(const unsigned char *in, size_t n, char *out);
int	 hex_decode(const char *in, unsigned char *out, size_t outlen);

/* Resolves a path relative to the directory of another file; caller frees. */
char	*path_relative_to(const char *base_file, const char *path);

/*
 * Free text and identifiers from clients (practitioner, case reference,
 * justification, subject ids): NULL if s is acceptable, else why not. s must
 * be at most max bytes of valid UTF-8 without control characters (C0, DEL,
 * C1, bidirectional overrides; TEXT_MULTILINE allows newline and tab), and,
 * when not empty, show at least one visible character: spaces and invisible
 * code points such as U+200B alone are "blank". Empty is acceptable here;
 * whether a field is required is the caller's decision.
 */
#define TEXT_MULTILINE	0x01
const char	*text_problem(const char *s, size_t max, int flags);

/*
 * s made safe for a terminal: control characters, bidirectional overrides
 * and invalid UTF-8 become visible escapes (\n, \x1b, \u202e); everything
 * else is unchanged. Returns one of a few rotating thread-local buffers, so
 * several may appear in one printf(); valid until the same thread's
 * sixteenth call after it. NULL becomes "".
 */
const char	*term_safe(const char *s);

/*
 * A copy of s (NULL is "") with every byte that is not part of valid UTF-8
 * replaced by U+FFFD; the caller frees it. JSON output uses it (jsonw_str()).
 */
char	*utf8_lossy(const char *s);

/*
 * Reads a whole regular file of at most max bytes; the buffer (malloc'd,
 * NUL-terminated, the caller frees it) holds *len bytes. NULL on failure
 * with the reason in err, without the path, which the caller puts in
 * front: "not a regular file", "larger than N MiB|bytes" or strerror().
 * *absent, if not NULL, is 1 when the file does not exist (for a caller
 * to whom that is normal) and 0 otherwise; callers need not read errno.
 */
char	*file_read(const char *path, size_t max, size_t *len, int *absent,
	    char *err, size_t errlen);

/*
 * Formats a message into err (errlen bytes, NUL-terminated; err may be
 * NULL) and returns -1: the "-1 plus err/errlen" convention in one call,
 * as in `return errorf(err, errlen, "bad %s", what);`.
 */
int	 errorf(char *err, size_t errlen, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/*
 * Checks that a private key file is not group/world readable (smtpd's
 * check_file_secrecy). In secret.c, which the client library also carries.
 */
int	 file_is_secret(const char *path, char *err, size_t errlen);

/*
 * Checks, without creating anything, that a database can be opened for
 * writing at path: its directory exists and is writable (SQLite adds -wal
 * and -shm files beside it) and an existing file is a regular file this
 * process may read and write. 0, or -1 with what to do in err.
 */
int	 file_db_writable(const char *path, char *err, size_t errlen);

/*
 * No core dumps and no ptrace by the same user: keys, records and
 * justifications live in this process's memory (PR_SET_DUMPABLE 0,
 * RLIMIT_CORE 0). 0, or -1 with errno.
 */
int	 proc_no_dumps(void);

#endif
