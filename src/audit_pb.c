/*
 * Log entries to and from the LogEntry message: the field names are the
 * members' (audit_fields.h), so one list makes both copies.
 */
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_pb.h"
#include "util.h"

void
audit_entry_to_pb(const struct audit_entry *e, Safeshare__V1__LogEntry *m)
{
	safeshare__v1__log_entry__init(m);
	m->seq = e->seq;
	m->time = e->time;
	m->ref_seq = e->ref_seq;
#define F(name)	m->name = xstrdup(e->name != NULL ? e->name : "");
	AUDIT_STRING_FIELDS(F)
#undef F
	m->prev_hash.len = m->hash.len = 32;
	m->prev_hash.data = xcalloc(32, 1);
	m->hash.data = xcalloc(32, 1);
	memcpy(m->prev_hash.data, e->prev_hash, 32);
	memcpy(m->hash.data, e->hash, 32);
}

void
audit_entry_pb_clear(Safeshare__V1__LogEntry *m)
{
#define F(name)	free(m->name); m->name = NULL;
	AUDIT_STRING_FIELDS(F)
#undef F
	free(m->prev_hash.data);
	free(m->hash.data);
	m->prev_hash.data = m->hash.data = NULL;
	m->prev_hash.len = m->hash.len = 0;
}

void
audit_entry_from_pb(const Safeshare__V1__LogEntry *m, struct audit_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->seq = m->seq;
	e->time = m->time;
	e->ref_seq = m->ref_seq;
#define F(name)	e->name = m->name;
	AUDIT_STRING_FIELDS(F)
#undef F
	if (m->prev_hash.len == 32)
		memcpy(e->prev_hash, m->prev_hash.data, 32);
	if (m->hash.len == 32)
		memcpy(e->hash, m->hash.data, 32);
}
