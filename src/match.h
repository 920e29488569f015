/*
 * Finding the person (D18): NHS numbers and the deterministic demographic
 * matcher. Pure functions over strings and a candidate list: no store, no
 * clock, no globals, so the rules in docs/matching.md are table-tested
 * (tests/data/matching) and the daemon and the CLI give the same answers.
 */
#ifndef SAFESHARE_MATCH_H
#define SAFESHARE_MATCH_H

#include <stddef.h>
#include <stdint.h>

#define MATCH_NHS_LEN		10	/* digits, stored without spaces */
#define MATCH_NHS_INPUT_MAX	32	/* bytes accepted before normalising */
#define MATCH_NAME_MAX		128	/* bytes of a name, before and after */
#define MATCH_POSTCODE_MAX	16	/* bytes of a postcode as given */

/*
 * Parses an NHS number: ten digits, spaces anywhere between them ignored,
 * the tenth a modulus-11 check digit over the first nine. On success writes
 * the ten digits and a NUL to out and returns 0; otherwise returns -1 and
 * sets *why (a static message about the input, never about the store).
 */
int	match_nhs_parse(const char *in, char out[MATCH_NHS_LEN + 1], const char **why);

/*
 * A name as the matcher compares it: ASCII letters lowercased; ASCII
 * whitespace, hyphens (- and U+2010) and apostrophes (' and U+2019) dropped;
 * every other byte (letters outside ASCII) kept as given. Writes into out
 * (outlen bytes, at least MATCH_NAME_MAX + 1) and returns 0, or returns
 * -1 with *why when the input is too long, not clean UTF-8 text, or empty
 * once normalised.
 */
int	match_name_norm(const char *in, char *out, size_t outlen, const char **why);

/*
 * A UK postcode as the matcher compares it: letters uppercased, spaces
 * dropped; what is left must be 5 to 7 letters and digits. Returns 0 or
 * -1 with *why.
 */
int	match_postcode_norm(const char *in, char *out, size_t outlen, const char **why);

/* How a person is named in a request (one of the two forms, not both). */
struct match_query {
	const char	*nhs;		/* NHS number, or NULL */
	const char	*family;	/* demographics: family name, */
	const char	*given;		/* given name(s), */
	const char	*dob;		/* date of birth YYYY-MM-DD, */
	const char	*postcode;	/* and optionally the postcode */
};

/*
 * One holder's view of a person, as the store holds it: the person it
 * belongs to and the details the holder recorded (NULL or "" when the
 * holder has none). Not owned by the matcher.
 */
struct match_holding {
	int64_t		 person;
	const char	*nhs;
	const char	*family;
	const char	*given;
	const char	*dob;
	const char	*postcode;
};

enum match_outcome {
	MATCH_ONE,		/* exactly one person: the request goes on */
	MATCH_NONE,		/* no_match */
	MATCH_AMBIGUOUS,	/* more than one person */
	MATCH_INVALID		/* the query itself is malformed (why says how) */
};

struct match_result {
	enum match_outcome	 outcome;
	int64_t			 person;	/* with MATCH_ONE only */
	const char		*why;		/* with MATCH_INVALID only; static */
};

/*
 * Resolves a query against the candidate holdings (every holding, or a
 * superset of those that can match: the store narrows by index first).
 * Several holdings of one person count once. Only MATCH_ONE says which
 * person; the other outcomes say nothing about the candidates (D18: no
 * count, no hint of which detail failed).
 */
void	match_resolve(const struct match_query *, const struct match_holding *,
	    size_t n, struct match_result *);

/* "one", "no_match", "ambiguous", "invalid". */
const char *match_outcome_name(enum match_outcome);

#endif
