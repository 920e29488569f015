/*
 * The disclosure decision (DESIGN.md "The decision, in order"). A pure
 * function: it takes the parsed protocol, the requesting agency, the request,
 * the subject's stored state and the time, and fills a decision. No I/O, no
 * clock, no globals, no allocation; the daemon and `safeshare policy explain`
 * both call exactly this.
 */
#ifndef SAFESHARE_POLICY_H
#define SAFESHARE_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

/*
 * A justification or inform waiver is "at least a sentence" (D5, D6): at
 * least 20 characters and 4 words, counted on the text as written with
 * leading and trailing whitespace dropped and each run of whitespace
 * counted as one space (docs/protocol.md).
 */
#define POLICY_MIN_JUSTIFICATION	20	/* characters */
#define POLICY_MIN_WORDS		4

/*
 * The disclosure log keeps an inform waiver the policy did not accept
 * behind this marker, so the inform list can show it (D6, issue 15); a
 * waiver that itself begins with the marker is never accepted.
 */
#define POLICY_WAIVER_REJECTED		"not accepted: "

/* Requested names the record type does not have, kept for the reply. */
#define POLICY_MAX_UNKNOWN		16

enum decision_kind {
	DECISION_DENY, DECISION_ALLOW, DECISION_PARTIAL, DECISION_CONSULTATION
};

enum consent_state {
	CONSENT_NONE, CONSENT_GRANTED, CONSENT_REFUSED, CONSENT_WITHDRAWN
};

struct policy_request {
	const char		*purpose;
	const char		*case_ref;
	const char		*practitioner;
	const char		*subject_id;
	const char		*record_type;
	const char *const	*fields;	/* asked for; none means all allowed */
	size_t			 nfields;
	int			 consult;	/* D11 */
	const char		*override_code;	/* D5, or NULL/"" */
	const char		*justification;
	const char		*inform_waiver;	/* D6 */
};

/* What the store knows of the subject; values are indexed like the record type's fields. */
struct policy_subject {
	int			 known;		/* a record of this type exists */
	enum consent_state	 consent;	/* latest decision in scope, D3 */
	int64_t			 consent_expires; /* 0: no expiry */
	const char *const	*flags;		/* D12 */
	size_t			 nflags;
	int64_t			 last_verified;	/* D9 */
	const char *const	*values;	/* NULL entries: no value held */
};

struct decided_field {
	const struct field_def	*def;
	int			 released;
	enum transform		 transform;
	const char		*reason;	/* why withheld; NULL when released */
	char			 reasonbuf[48];
	const char		*value;		/* borrowed from the subject, or tbuf */
	char			 tbuf[48];
};

/*
 * The outcome. Strings point into the protocol, the subject or the struct
 * itself: a decision is valid while those are.
 */
struct decision {
	enum decision_kind	 kind;
	const char		*reason;	/* reason code, e.g. "no_rule" */
	int			 step;		/* the step that decided (1-8) */
	char			 detail[768];	/* one line for humans: what, then what to do */
	const struct rule	*rule;
	const struct purpose	*purpose;
	const struct record_type *record_type;
	struct decided_field	 fields[PROTOCOL_MAX_FIELDS];
	size_t			 nfields;
	size_t			 nreleased;
	/* Asked-for names that are no field of the record type (unknown_field). */
	const char		*unknown[POLICY_MAX_UNKNOWN];	/* borrowed from the request */
	size_t			 nunknown;
	int			 override_used;	/* the override decided the outcome (D5) */
	enum override_code	 override;
	int			 review_required;	/* an override used or refused (D5, D15) */
	int			 inform_subject;	/* D6 */
	const char		*consent;		/* state as a word, for the log */
};

void		 policy_decide(const struct protocol *, const struct agency *,
		    const struct policy_request *, const struct policy_subject *,
		    int64_t now, struct decision *);
const char	*decision_name(enum decision_kind);
const char	*consent_name(enum consent_state);
int		 consent_parse(const char *, enum consent_state *);

int		 policy_sentence_ok(const char *);
int		 policy_waiver_ok(const char *);

/* Applies one transform to a value; writes into out and returns it. Pure. */
const char	*policy_transform(enum transform, const char *value, int64_t now,
		    char *out, size_t outlen);

#endif
