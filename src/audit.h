/*
 * The disclosure log (D7): an append-only SQLite file of its own
 * (synchronous=FULL), each entry chained to the one before by
 * entry_hash = SHA-256(prev_hash || canonical entry bytes).
 * The canonical encoding is specified in docs/audit-format.md.
 */
#ifndef SAFESHARE_AUDIT_H
#define SAFESHARE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#define AUDIT_SCHEMA_VERSION	1

/* One entry. Strings may be NULL (encoded as empty). */
struct audit_entry {
	uint64_t	 seq;		/* assigned by audit_append() */
	int64_t		 time;		/* Unix seconds */
	const char	*kind;		/* disclosure, rejected, reload, ... */
	const char	*agency;
	const char	*cert_fp;	/* SHA-256 SPKI fingerprint, hex */
	const char	*practitioner;
	const char	*purpose;
	const char	*lawful_basis;
	const char	*case_ref;
	const char	*subject;
	const char	*record_type;
	const char	*decision;
	const char	*reason;
	const char	*released;	/* "name[/transform],..." */
	const char	*withheld;	/* "name:reason,..." */
	const char	*consent;
	const char	*override_code;
	const char	*justification;
	const char	*rule_id;
	const char	*protocol_id;
	const char	*protocol_version;
	const char	*protocol_sha256;
	const char	*request_id;
	const char	*inform_waiver;	/* why the subject is not to be told (D6) */
	uint64_t	 ref_seq;	/* the entry a review or inform note is about */
	unsigned char	 prev_hash[32];
	unsigned char	 hash[32];
};

#define AUDIT_NSTRINGS	22	/* the string members, kind .. inform_waiver */

struct audit;

int		 audit_open(struct audit **, const char *path, char *err, size_t errlen);
void		 audit_close(struct audit *);
const char	*audit_errmsg(struct audit *);
uint64_t	 audit_size(struct audit *);

/*
 * Appends entries in one durable transaction (group commit): on return 0
 * every entry has its seq and hash and is on disk. On -1 nothing was
 * written and the in-memory head is unchanged.
 */
int		 audit_append(struct audit *, struct audit_entry **, size_t n);

/* Computes an entry's hash from its fields and prev_hash. */
void		 audit_hash(const struct audit_entry *, unsigned char out[32]);

/* Iterates entries from seq `from` (1-based); the callback returns non-zero to stop. */
typedef int (*audit_cb)(const struct audit_entry *, void *);
int		 audit_scan(struct audit *, uint64_t from, uint64_t limit, audit_cb, void *);

/*
 * Recomputes the chain. Returns 0 when it verifies; otherwise -1 with the
 * first bad sequence number and why.
 */
int		 audit_verify(struct audit *, uint64_t *nentries, uint64_t *bad_seq,
		    char *why, size_t whylen);

#endif
