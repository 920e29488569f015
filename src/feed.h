/*
 * Feeds (issue 18, D20): which log entries a holder's access feed and the
 * Caldicott Guardian's alerts carry. A feed is a filtered read of the
 * disclosure log after a cursor (the log seq); these are the filters, pure
 * functions of one entry, so the daemon, the tests and the docs agree on
 * them. Who holds a subject is the store's to say (the daemon asks it).
 */
#ifndef SAFESHARE_FEED_H
#define SAFESHARE_FEED_H

#include "audit.h"

#define FEED_WAIT_MAX	60	/* seconds a feed request may long-poll */
#define FEED_PAGE	100	/* items per reply when the request says 0 */
#define FEED_PAGE_MAX	1000

/*
 * 1 if the entry is a use of, or an attempt on, a subject's records that
 * the subject's holder follows in its access feed: a disclosure of any
 * decision (consultations included), a locate, or a refusal naming a
 * subject (kind rejected). The holder's own writes (kind holder) and the
 * log's housekeeping are not accesses. 0 otherwise, or if no subject.
 */
int		 feed_is_access(const struct audit_entry *);
/*
 * The alert an entry raises for the Caldicott Guardian (D5, D15, D20), or
 * NULL: "override" (an override decided the outcome), "denied_emergency"
 * (a denied request that invoked an override), "review", "reload",
 * "holder_refused" (a holder op refused on a subject not the holder's) or
 * "holder_rolled_back" (a logged holder batch not applied). The strings
 * are static.
 */
const char	*feed_alert_type(const struct audit_entry *);

/*
 * A locate entry's released or withheld list (docs/audit-format.md:
 * "holder:type+type;holder:type", "holder:type:why,...") cut to the parts
 * of one holder, for that holder's feed: the rest would tell it which
 * other holders hold the person (D19). Items are split at ';' and ','
 * and kept with their separator. Returns a new string; the caller frees it.
 */
char		*feed_own_part(const char *list, const char *holder);

#endif
