/*
 * People and holders (D18): one person is held by several holders, each
 * under its own local id (a subject in store.h). A holder may link an NHS
 * number to its subject; every subject that links the same number belongs to
 * the same person, and a subject that links none is a person of its own.
 * Records and consent stay per subject, that is per (person, holder); risk
 * flags count for the person, whichever holder set them. The rules for
 * finding a person are in match.h and docs/matching.md.
 */
#ifndef SAFESHARE_PERSON_H
#define SAFESHARE_PERSON_H

#include <stddef.h>
#include <stdint.h>

#include "match.h"

struct store;

/*
 * Links an NHS number (already checked and normalised by match_nhs_parse())
 * to a subject, moving the subject to the person of the other subjects that
 * link it. Returns 1 if something changed, 0 if the subject already linked
 * that number, -1 on a database error or a refusal (the subject is unknown;
 * its holder already holds that person under another local id):
 * err (errlen bytes) says which. Run inside store_begin()/store_commit().
 * Every function here reports a failure into the caller's err/errlen
 * (docs/hacking.md "Errors").
 */
int	person_link_nhs(struct store *, const char *subject, const char *nhs,
	    char *err, size_t errlen);
/*
 * Whether linking nhs to subject would be refused because the subject's
 * holder already holds that person under another local id (D18: one view
 * per holder): 1 yes, with that local id in other (len bytes), 0 no, -1 on
 * error or an unknown subject. Looks only at the subject's own holder's
 * views, so the answer says nothing about other holders.
 */
int	person_nhs_clash(struct store *, const char *subject, const char *nhs,
	    char *other, size_t len, char *err, size_t errlen);
/*
 * Unlinks the subject's NHS number; the subject becomes a person of its own.
 * Returns 1 if a number was unlinked, 0 if none was linked, -1 on error.
 */
int	person_unlink_nhs(struct store *, const char *subject, char *err,
	    size_t errlen);
/* The subject's linked NHS number into out (11 bytes): 1, 0 none, -1 error. */
int	person_nhs_of(struct store *, const char *subject, char out[MATCH_NHS_LEN + 1],
	    char *err, size_t errlen);

/*
 * Sets the details a subject is found by (family and given names, date of
 * birth YYYY-MM-DD, postcode; NULL or "" clears one). They are checked as
 * match.h checks a query. Returns 0 or -1 (err says why).
 */
int	person_set_details(struct store *, const char *subject, const char *family,
	    const char *given, const char *dob, const char *postcode, char *err,
	    size_t errlen);
/*
 * The details from the subject's `person` record (full_name: the last word
 * is the family name, the rest given names; date_of_birth; postcode), for a
 * subject loaded without explicit details. Missing or unusable fields leave
 * the details unset. 0 or -1.
 */
int	person_details_from_record(struct store *, const char *subject, char *err,
	    size_t errlen);

/*
 * Both stores' checks of the details (person_details.c). The first checks
 * them as match.h checks a query, with the message a holder reads, and
 * puts the normalised family name (the index's family_key; "" without
 * one) into key (keylen bytes): 0 or -1. The second takes them from a
 * `person` record's fields (full changed in place): each of family,
 * given, d and p points at its detail, or is NULL when it is missing or
 * unusable.
 */
int	person_details_check(const char *family, const char *given,
	    const char *dob, const char *postcode, char *key, size_t keylen,
	    char *err, size_t errlen);
void	person_details_of_record(char *full, const char *dob, const char *postcode,
	    const char **family, const char **given, const char **d,
	    const char **p);

/*
 * Finds the person a query names (match_resolve() over the subjects the
 * indexes offer). Returns 0 with res filled, or -1 on a database error.
 */
int	person_find(struct store *, const struct match_query *, struct match_result *,
	    char *err, size_t errlen);
/* The person a subject belongs to: 1 found, 0 unknown subject, -1 error. */
int	person_of(struct store *, const char *subject, int64_t *person, char *err,
	    size_t errlen);
/*
 * The subject by which holder holds person, into subject (len bytes):
 * 1 found, 0 that holder does not hold the person, -1 error.
 */
int	person_holding(struct store *, int64_t person, const char *holder,
	    char *subject, size_t len, char *err, size_t errlen);
/*
 * Calls cb for every (holder, subject) holding the person, in holder order;
 * strings last for the call. cb returns 0, or -1 to stop. 0 or -1.
 */
typedef int (*person_holding_cb)(const char *holder, const char *subject, void *);
int	person_holdings(struct store *, int64_t person, person_holding_cb, void *,
	    char *err, size_t errlen);

/*
 * Calls cb for every record held about the person: (holder, subject, record
 * type), in holder then record type order; strings last for the call. cb
 * returns 0, or -1 to stop. 0 or -1.
 */
typedef int (*person_record_cb)(const char *holder, const char *subject,
	    const char *record_type, void *);
int	person_records(struct store *, int64_t person, person_record_cb, void *,
	    char *err, size_t errlen);
/*
 * Today's form of naming a person (holder + local id): the person of the
 * subject, if holder (NULL or "": any) holds it. 1 found, 0 not, -1 error.
 */
int	person_of_holding(struct store *, const char *holder, const char *subject,
	    int64_t *person, char *err, size_t errlen);

#endif
