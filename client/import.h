/*
 * Holders' bulk import files, CSV or JSON lines, read into HolderOps for
 * POST /v1/holder/ops. The format is in docs/holder-import.md. Problems are
 * kept per line; a file with any problem is not sent at all.
 */
#ifndef SAFESHARE_IMPORT_H
#define SAFESHARE_IMPORT_H

#include <stddef.h>

#include "safeshare/safeshare.pb-c.h"

#define IMPORT_MAX_ERRORS	100

enum import_format { IMPORT_CSV, IMPORT_JSONL };

struct import {
	const char			 *name;		/* file name, for messages */
	Safeshare__V1__HolderOp		**ops;
	size_t				  nops, cap;
	char				**errors;	/* "NAME:LINE: message" */
	size_t				  nerrors;	/* kept, at most IMPORT_MAX_ERRORS */
	size_t				  more;		/* errors not kept */
	/* Called every 1000 rows while reading, if set. */
	void				(*progress)(const struct import *, size_t line);
};

/* From the file name's extension: .csv, or .jsonl/.ndjson/.json; -1 if neither. */
int	import_format_of(const char *name);
/*
 * Reads buf (len bytes) in the format. Returns 0 when every row was read
 * into an op, -1 when errors were recorded. Free with import_free() either way.
 */
int	import_parse(struct import *, enum import_format, const char *buf, size_t len);
void	import_free(struct import *);

/* Building ops by hand (the single-op commands use these too). */
Safeshare__V1__HolderOp *import_new_op(struct import *, size_t line);
/*
 * Sets a control key (op, subject, record_type, verified, consent,
 * agencies, purposes, expires, decided, flag, nhs_number); returns 0 if key
 * is not one. A bad nhs_number is recorded as an error at line.
 */
int	import_set_key(struct import *, Safeshare__V1__HolderOp *, size_t line,
	    const char *key, const char *value);
void	import_add_field(Safeshare__V1__HolderOp *, const char *name, const char *value);
/* Records an error for what every op of its kind needs and op lacks. */
void	import_check_op(struct import *, const Safeshare__V1__HolderOp *, size_t line);

#endif
