/*
 * A log entry's text members, defined once (issue 16 item 2). Each name is
 * at once the member of struct audit_entry, the column of table entries,
 * the field of the LogEntry message (proto/safeshare.proto) and the key in
 * the JSON export and `--json` output. The order is canonical: the chain
 * hash takes the members in it (docs/audit-format.md), so reordering,
 * adding or removing one changes the chain format and breaks every log
 * already written; tests/unit/test_entry.c pins it. A new member goes at
 * the end, with a new hash tag.
 *
 * Use: #define F(name) ...; AUDIT_STRING_FIELDS(F) #undef F.
 */
#ifndef SAFESHARE_AUDIT_FIELDS_H
#define SAFESHARE_AUDIT_FIELDS_H

#define AUDIT_STRING_FIELDS(F)						\
	F(kind)			/* disclosure, rejected, reload, review, ... */ \
	F(agency)							\
	F(cert_fp)		/* SHA-256 SPKI fingerprint, hex */	\
	F(practitioner)							\
	F(purpose)							\
	F(lawful_basis)							\
	F(case_ref)							\
	F(subject)							\
	F(record_type)							\
	F(decision)							\
	F(reason)							\
	F(released)		/* "name[/transform],..." */		\
	F(withheld)		/* "name:reason,..." */			\
	F(consent)							\
	F(override_code)						\
	F(justification)						\
	F(rule_id)							\
	F(protocol_id)							\
	F(protocol_version)						\
	F(protocol_sha256)						\
	F(request_id)							\
	F(inform_waiver)	/* why the subject is not to be told (D6) */

#define AUDIT_FIELD_ONE_(name)	+ 1
/* The number of text members (22). */
#define AUDIT_NSTRINGS		(0 AUDIT_STRING_FIELDS(AUDIT_FIELD_ONE_))

#endif
