/*
 * Locate (D19): "who holds records about this person?" answered with the
 * holders and record types the requester could ask for under a rule for
 * that purpose, never under a rule marked `locate: false`, never with
 * values. Pure functions over the protocol and what the store says is held:
 * no I/O, no clock (now is passed), so they are table-tested like the
 * policy. The daemon resolves the person (person.h) and logs the answer.
 */
#ifndef SAFESHARE_LOCATE_H
#define SAFESHARE_LOCATE_H

#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

/* What the store holds about the person: one row per (holder, record type). */
struct locate_held {
	const char	*holder;
	const char	*subject;	/* the holder's local id */
	const char	*record_type;
};

/*
 * Step 1 to 3 of a locate, before anything about the person is read: the
 * agency may request, the protocol is in force, purpose, case reference and
 * practitioner are given and the purpose is declared. Returns NULL when the
 * locate may go on, else a reason code (not_requester, incomplete_request,
 * protocol_expired, unknown_purpose) with a static message in *detail.
 */
const char	*locate_check(const struct protocol *, const struct agency *,
		    const char *purpose, const char *case_ref, const char *practitioner,
		    int64_t now, const char **detail);

/*
 * For each held row, whether the answer names it: NULL (named: a rule for
 * (agency, purpose, record type) exists and is locatable), or why not:
 * "no_rule", "not_locatable", "unknown_record_type". why[] has n slots.
 * Returns how many rows are named.
 */
size_t		 locate_filter(const struct protocol *, const struct agency *,
		    const struct purpose *, const struct locate_held *, size_t n,
		    const char **why);

/*
 * The answer as one line, "holder:type+type;holder:type" over the rows
 * named (named = 1) or "holder:type:why;..." over the rows left out
 * (named = 0), in the order given (the store's: holder, record type).
 * Always NUL-terminated; truncated with "..." when it does not fit.
 */
void		 locate_summary(const struct locate_held *, size_t n, const char **why,
		    int named, char *buf, size_t len);

#endif
