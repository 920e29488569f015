/*
 * JSON output through jansson (issue 16 item 4): every `--json` of the CLI,
 * the report's JSON and the log export are built as json_t values and
 * written by jansson, never by printf, so escaping has one owner.
 */
#ifndef SAFESHARE_JSONW_H
#define SAFESHARE_JSONW_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/*
 * A string value: s as it is when it is UTF-8 (NULL is ""), otherwise a
 * copy with each invalid byte replaced by U+FFFD, since JSON cannot carry
 * raw bytes. Returns a new reference (never NULL).
 */
json_t	*jsonw_str(const char *s);
/* An unsigned counter or sequence number; one beyond INT64_MAX is clamped. */
json_t	*jsonw_u64(uint64_t);
/* n bytes as lowercase hex, as a string value. */
json_t	*jsonw_hex(const unsigned char *, size_t n);
/*
 * Sets key in obj to v (stolen); a key that is not UTF-8 is written with
 * U+FFFD as jsonw_str() does.
 */
void	 jsonw_set(json_t *obj, const char *key, json_t *v);

/*
 * Writes v compactly (keys in the order they were set) followed by a
 * newline, and drops the reference. Returns 0, or -1 if it could not be
 * written.
 */
int	 jsonw_print(FILE *, json_t *v);

/*
 * An array written element by element, for outputs too long to hold (every
 * entry of a log): "[" at begin, ",\n" between elements, "]\n" at the end.
 * A write that fails (a full disk, a closed pipe) is remembered: nothing
 * more is written, each later add returns -1 so that the caller can stop
 * reading, and end returns -1 with errno saying why; the caller then says
 * the output is incomplete and exits non-zero.
 */
struct jsonw_seq {
	FILE	*fp;
	size_t	 n;
	int	 error;		/* errno of the first failed write, 0: none */
};

void	 jsonw_seq_begin(struct jsonw_seq *, FILE *);
/* Writes v (stolen) as the next element; 0, or -1 once a write failed. */
int	 jsonw_seq_add(struct jsonw_seq *, json_t *v);
/* "]", and the stream flushed; 0, or -1 (errno set) if any write failed. */
int	 jsonw_seq_end(struct jsonw_seq *);

#endif
