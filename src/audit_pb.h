/*
 * A log entry as the LogEntry message (proto/safeshare.proto) and back,
 * member by member from audit_fields.h: the daemon's audit and feed
 * replies, and the CLI reading them.
 */
#ifndef SAFESHARE_AUDIT_PB_H
#define SAFESHARE_AUDIT_PB_H

#include "audit.h"
#include "safeshare.pb-c.h"

/*
 * Initialises m and fills it with copies of e's members (a NULL string
 * becomes ""). The caller frees them with audit_entry_pb_clear(), and m
 * itself if it allocated it.
 */
void	audit_entry_to_pb(const struct audit_entry *e, Safeshare__V1__LogEntry *m);
/* Frees what audit_entry_to_pb() allocated in m (not m). */
void	audit_entry_pb_clear(Safeshare__V1__LogEntry *m);
/*
 * Fills e from m: e's strings point into m, which must outlive it; a
 * hash of another length than 32 bytes is left zero.
 */
void	audit_entry_from_pb(const Safeshare__V1__LogEntry *m, struct audit_entry *e);

#endif
