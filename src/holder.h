/*
 * Data holders' writes: records, consent decisions, risk flags and NHS
 * number links for the holder's own subjects (D3, D9, D12, D18). A batch of
 * operations is checked against the protocol and applied in one
 * transaction, or not at all.
 */
#ifndef SAFESHARE_HOLDER_H
#define SAFESHARE_HOLDER_H

#include <stddef.h>
#include <stdint.h>

#include "match.h"
#include "protocol.h"
#include "storage.h"
#include "safeshare/safeshare.pb-c.h"

#define HOLDER_MAX_OPS		100000	/* per request */
#define HOLDER_MAX_PROBLEMS	100	/* reported per request */

struct holder_problem {
	size_t		 index;		/* op index in the batch */
	unsigned	 line;		/* the op's source line, 0 if none */
	int		 status;	/* 400, 403, 404 or 409 */
	const char	*code;		/* stable code, e.g. unknown_field */
	char		 field[64];	/* the field or key concerned, or "" */
	char		 message[256];
};

struct holder_report {
	size_t			 checked;
	size_t			 applied;
	/*
	 * Per op, when checked in full: 1 if it changes the store, 0 if it is
	 * a no-op (a flag already set, consent identical to the latest
	 * decision, a record identical to the stored one). Owned by the
	 * report; NULL after problems.
	 */
	unsigned char		*changes;
	size_t			 unchanged;	/* ops that change nothing */
	/*
	 * Per op: the NHS number a changing link_nhs or put_record op linked,
	 * or a changing unlink_nhs unlinked, for its log entry; "" for every
	 * other op. NULL when no op changed a link. Owned by the report.
	 */
	char			(*nhs)[MATCH_NHS_LEN + 1];
	struct holder_problem	*problems;	/* at most HOLDER_MAX_PROBLEMS */
	size_t			 nproblems;
	size_t			 more;		/* problems not kept */
	char			 error[256];	/* store failure, when -1 */
};

/*
 * The disclosure-log batch these ops were logged as (request id, first
 * seq), and which ops have an entry: logged[i] is 0 for an op the check
 * found to be a no-op, which is not logged (NULL: every op is logged).
 */
struct holder_batch {
	const char		*request_id;
	uint64_t		 first_seq;
	const unsigned char	*logged;
};

/*
 * Checks and applies ops for holder (an agency with the holder role) at
 * time now. Returns 0 when every op was applied (none if dry_run), 1 when
 * problems were found and nothing was written, -1 on a store error (nothing
 * written; report->error says why). With batch set, the store records in
 * the same transaction that the batch was applied; an op that was not
 * logged but would now change the store is a problem (409
 * changed_meanwhile): no change is made unlogged (D7). Free the report
 * with holder_report_free().
 */
int	holder_apply(struct storage *, const struct protocol *,
	    const struct agency *holder, Safeshare__V1__HolderOp *const *ops,
	    size_t nops, int dry_run, int64_t now, const struct holder_batch *,
	    struct holder_report *);
void	holder_report_free(struct holder_report *);

#endif
