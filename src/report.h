/*
 * The auditor's report (issue 21): aggregates of the disclosure log over a
 * time range, computed in one pass over its entries, for `safeshare audit
 * report`. Pure: entries in, an AuditReport message out; no database, no
 * clock (the caller passes `now`), so it is unit-tested on generated
 * entries. Memory is bounded by REPORT_MAX_KEYS per table, not by the
 * number of entries; past it the report says it is truncated.
 */
#ifndef SAFESHARE_REPORT_H
#define SAFESHARE_REPORT_H

#include <stdint.h>

#include "audit.h"
#include "safeshare/safeshare.pb-c.h"

#define REPORT_MAX_KEYS		200000	/* distinct keys per table */
#define REPORT_SEQS		10	/* seqs listed behind a pattern */
#define REPORT_TOP		20	/* rows of a top-N list */
#define REPORT_MANY		10	/* requests by one practitioner about one person */
#define REPORT_DAY_START	8	/* working hours, UTC, Monday to Friday */
#define REPORT_DAY_END		18

struct report;

/*
 * A new report over [from, to) (to 0: no bound), of requests by `agency`
 * only if it is not NULL or empty; `now` dates the ages of pending items.
 * Returns NULL if memory runs out. Free it with report_free().
 */
struct report	*report_new(int64_t from, int64_t to, const char *agency, int64_t now);
/*
 * Adds one entry; entries come in seq order. Reviews and inform-the-subject
 * notes after `to` still count (they close items of the range); other
 * entries outside the range are ignored. Returns 0, or -1 if memory ran out.
 */
int		 report_add(struct report *, const struct audit_entry *);
/* An audit_cb for audit_query(): report_add(arg, e), stopping on -1. */
int		 report_cb(const struct audit_entry *, void *arg);
/*
 * The aggregates as a message; the caller frees it with
 * report_msg_free(). NULL if memory ran out.
 */
Safeshare__V1__AuditReport *report_finish(struct report *);
void		 report_msg_free(Safeshare__V1__AuditReport *);
void		 report_free(struct report *);

#endif
