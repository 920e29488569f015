/*
 * The sharing protocol (docs/domain.md D13): parties, purposes with their lawful
 * basis, record types and their fields, and the rules that allow an agency to
 * see a record type for a purpose. Parsed from YAML, validated as a whole,
 * then read-only: a parsed protocol is shared by every request that started
 * under it and freed by the last one (protocol_ref/protocol_unref).
 */
#ifndef SAFESHARE_PROTOCOL_H
#define SAFESHARE_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define ROLE_REQUESTER	0x01
#define ROLE_HOLDER	0x02
#define ROLE_AUDITOR	0x04
#define ROLE_ADMIN	0x08
#define ROLE_GUARDIAN	0x10	/* Caldicott Guardian: reviews overrides (D15) */

#define PROTOCOL_MAX_FIELDS	64	/* per record type */
/*
 * Ids in a protocol (agencies, purposes, record types, fields, flags, rules,
 * the protocol itself): 1 to PROTOCOL_ID_MAX bytes of letters, digits, '_',
 * '-' and '.', starting with a letter or digit. They travel into the log,
 * metrics labels and terminals, so the loader refuses anything else.
 */
#define PROTOCOL_ID_MAX		64
/* An agency's certificate subject (RFC 2253), bytes. */
#define PROTOCOL_SUBJECT_MAX	1023

enum field_type {
	FT_STRING, FT_TEXT, FT_NAME, FT_DATE, FT_POSTCODE, FT_PHONE, FT_INTEGER,
	FT_ADDRESS, FT_BOOLEAN
};

enum transform {
	TR_NONE, TR_YEAR_ONLY, TR_AGE_BAND, TR_POSTCODE_DISTRICT, TR_INITIALS,
	TR_REDACT
};

/* Override exception codes (D5); a rule accepts a subset, as a bit mask. */
enum override_code {
	OV_CHILD_SIGNIFICANT_HARM, OV_ADULT_SERIOUS_HARM, OV_SERIOUS_CRIME,
	OV_LEGAL_PROCEEDINGS, OV_EMERGENCY_LIFE_THREAT, OV_OTHERS_AT_RISK,
	OV_COUNT
};

struct field_def {
	char		*name;
	enum field_type	 type;
	int		 opinion;	/* D8: 0 fact, 1 opinion */
	int		 identifying;	/* D11: dropped in consultation */
	int		 required;
};

struct record_type {
	char		*id;
	struct field_def *fields;
	size_t		 nfields;
};

struct agency {
	char		*id;
	char		*name;
	char		*subject;	/* RFC 2253 subject, or NULL */
	unsigned char	 spki[32];	/* SHA-256 of the SubjectPublicKeyInfo */
	int		 has_spki;
	unsigned	 roles;
};

struct purpose {
	char	*id;
	char	*description;
	char	*article6;		/* D14 */
	char	*article9;		/* special-category condition, or NULL */
	char	*lawful_basis;		/* "article6; article9", for replies and the log */
};

struct rule_field {
	size_t		 idx;		/* into record_type->fields */
	enum transform	 transform;
};

struct flag_withhold {
	char	*flag;
	size_t	*fields;		/* indexes into record_type->fields */
	size_t	 nfields;
};

struct rule {
	char			*id;
	struct strlist		 agencies;	/* explicit ids, or empty ... */
	unsigned		 agency_role;	/* ... and every agency with this role */
	const struct purpose	*purpose;
	const struct record_type *record_type;
	struct rule_field	*fields;
	size_t			 nfields;
	int			 consent_required;
	/*
	 * D19: `locate: false`: what this rule allows is never named in a
	 * locate answer (a service whose involvement is itself sensitive).
	 */
	int			 not_locatable;
	unsigned		 overrides;	/* bit (1 << enum override_code) */
	struct flag_withhold	*withhold;
	size_t			 nwithhold;
	size_t			 line;
};

struct protocol {
	char		*path;
	char		*id;
	char		*version;
	char		*owner;
	int64_t		 review_by;	/* in force until the end of this day, UTC */
	char		 review_by_str[11];
	char		 sha256[65];	/* of the file's bytes, hex */
	struct agency	*agencies;
	size_t		 nagencies;
	struct purpose	*purposes;
	size_t		 npurposes;
	struct record_type *record_types;
	size_t		 nrecord_types;
	struct rule	*rules;
	size_t		 nrules;
	struct strlist	 flags;		/* declared risk flags (D12) */
	int		 refs;
};

/*
 * Parses and validates a protocol file. Returns a protocol with one
 * reference, or NULL with every problem in diag. Warnings (review date close)
 * are added to diag without failing. `now` decides "past its review date".
 */
struct protocol	*protocol_load(const char *path, int64_t now, struct diag *);
struct protocol	*protocol_load_buffer(const char *name, const unsigned char *buf,
		    size_t len, int64_t now, struct diag *);
struct protocol	*protocol_ref(struct protocol *);
void		 protocol_unref(struct protocol *);

const struct agency	*protocol_agency(const struct protocol *, const char *id);
const struct agency	*protocol_agency_by_cert(const struct protocol *,
			    const unsigned char spki[32], const char *subject);
const struct purpose	*protocol_purpose(const struct protocol *, const char *id);
const struct record_type *protocol_record_type(const struct protocol *, const char *id);
const struct field_def	*record_type_field(const struct record_type *, const char *name,
			    size_t *idx);
int			 rule_applies_to(const struct rule *, const struct agency *);
const struct rule	*protocol_find_rule(const struct protocol *, const struct agency *,
			    const struct purpose *, const struct record_type *);
int			 protocol_in_force(const struct protocol *, int64_t now);

/* NULL if s is a valid protocol id (see PROTOCOL_ID_MAX), else why not. */
const char	*protocol_id_problem(const char *s);
const char	*transform_name(enum transform);
const char	*field_type_name(enum field_type);
#define FIELD_MAX_VALUE	8192	/* bytes in one field value */
/* NULL if value is acceptable for a field of this type, else why not. */
const char	*field_value_problem(enum field_type, const char *value);
/* A UK postcode (outward code, optional space, digit and two letters). */
int		 postcode_valid(const char *);
const char	*override_name(enum override_code);
int		 override_parse(const char *, enum override_code *);
const char	*roles_string(unsigned roles, char *buf, size_t len);

#endif
