/*
 * Finding the person (D18). The rules, and why each one is as it is, are in
 * docs/matching.md; tests/data/matching holds one file per case.
 */
#include <string.h>

#include "match.h"
#include "util.h"
#include "yamlutil.h"

int
match_nhs_parse(const char *in, char out[MATCH_NHS_LEN + 1], const char **why)
{
	size_t		 n = 0, sum = 0, check;

	if (in == NULL || *in == '\0') {
		*why = "NHS number is empty";
		return -1;
	}
	if (strlen(in) > MATCH_NHS_INPUT_MAX) {
		*why = "NHS number is too long: expected 10 digits";
		return -1;
	}
	for (const char *p = in; *p != '\0'; p++) {
		if (*p == ' ')
			continue;
		if (*p < '0' || *p > '9') {
			*why = "NHS number may hold only digits and spaces";
			return -1;
		}
		if (n == MATCH_NHS_LEN) {
			*why = "NHS number has more than 10 digits";
			return -1;
		}
		out[n++] = *p;
	}
	out[n] = '\0';
	if (n != MATCH_NHS_LEN) {
		*why = "NHS number has fewer than 10 digits";
		return -1;
	}
	/* Modulus 11: weights 10 down to 2 over the first nine digits. */
	for (size_t i = 0; i < 9; i++)
		sum += (size_t)(out[i] - '0') * (10 - i);
	check = 11 - sum % 11;
	if (check == 11)
		check = 0;
	if (check == 10 || check != (size_t)(out[9] - '0')) {
		*why = "NHS number check digit is wrong";
		return -1;
	}
	return 0;
}

int
match_name_norm(const char *in, char *out, size_t outlen, const char **why)
{
	const unsigned char	*p;
	size_t			 n = 0;

	/* TEXT_MULTILINE lets tabs and newlines through: whitespace, dropped. */
	if (in == NULL || text_problem(in, MATCH_NAME_MAX, TEXT_MULTILINE) != NULL) {
		*why = "name must be text of at most 128 bytes";
		return -1;
	}
	for (p = (const unsigned char *)in; *p != '\0'; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' ||
		    *p == '-' || *p == '\'')
			continue;
		/* U+2010 hyphen and U+2019 right single quotation mark. */
		if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0x90 || p[2] == 0x99)) {
			p += 2;
			continue;
		}
		if (n + 1 >= outlen) {
			*why = "name is too long";
			return -1;
		}
		out[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	}
	out[n] = '\0';
	if (n == 0) {
		*why = "name is empty";
		return -1;
	}
	return 0;
}

int
match_postcode_norm(const char *in, char *out, size_t outlen, const char **why)
{
	size_t	 n = 0;

	if (in == NULL || strlen(in) > MATCH_POSTCODE_MAX) {
		*why = "postcode must be at most 16 bytes";
		return -1;
	}
	for (const char *p = in; *p != '\0'; p++) {
		char c = *p;

		if (c == ' ')
			continue;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
			*why = "postcode may hold only letters, digits and spaces";
			return -1;
		}
		if (n + 1 >= outlen) {
			*why = "postcode is too long";
			return -1;
		}
		out[n++] = c;
	}
	out[n] = '\0';
	if (n < 5 || n > 7) {
		*why = "postcode must have 5 to 7 letters and digits";
		return -1;
	}
	return 0;
}

static int
given(const char *s)
{
	return s != NULL && *s != '\0';
}

/*
 * The normalised query. Demographics need family name, given name and date
 * of birth; the postcode is optional. A query names the person one way.
 */
struct nquery {
	char	 nhs[MATCH_NHS_LEN + 1];
	char	 family[MATCH_NAME_MAX + 1];
	char	 given[MATCH_NAME_MAX + 1];
	int64_t	 dob;
	char	 postcode[MATCH_POSTCODE_MAX + 1];
	int	 by_nhs, has_postcode;
};

static const char *
query_norm(const struct match_query *q, struct nquery *nq)
{
	const char	*why;
	int		 demo;

	memset(nq, 0, sizeof(*nq));
	demo = given(q->family) || given(q->given) || given(q->dob) ||
	    given(q->postcode);
	if (given(q->nhs) && demo)
		return "name the person by NHS number or by demographics, not both";
	if (given(q->nhs)) {
		if (match_nhs_parse(q->nhs, nq->nhs, &why) == -1)
			return why;
		nq->by_nhs = 1;
		return NULL;
	}
	if (!demo)
		return "no NHS number and no demographics";
	if (!given(q->family) || !given(q->given) || !given(q->dob))
		return "demographics need family name, given name and date of birth";
	if (match_name_norm(q->family, nq->family, sizeof(nq->family), &why) == -1)
		return "family name: not a usable name";
	if (match_name_norm(q->given, nq->given, sizeof(nq->given), &why) == -1)
		return "given name: not a usable name";
	if (date_parse(q->dob, &nq->dob) == -1)
		return "date of birth: expected a date as YYYY-MM-DD";
	if (given(q->postcode)) {
		if (match_postcode_norm(q->postcode, nq->postcode,
		    sizeof(nq->postcode), &why) == -1)
			return why;
		nq->has_postcode = 1;
	}
	return NULL;
}

/*
 * Whether one holding matches the normalised query. A stored detail that
 * does not normalise (a holder's typo) matches nothing rather than failing
 * the whole search.
 */
static int
holding_matches(const struct nquery *nq, const struct match_holding *h)
{
	char		 a[MATCH_NAME_MAX + 1], b[MATCH_NAME_MAX + 1];
	const char	*why;
	int64_t		 dob;

	if (nq->by_nhs)
		return given(h->nhs) && match_nhs_parse(h->nhs, a, &why) == 0 &&
		    strcmp(a, nq->nhs) == 0;
	if (!given(h->family) || !given(h->given) || !given(h->dob))
		return 0;
	if (date_parse(h->dob, &dob) == -1 || dob != nq->dob)
		return 0;
	if (match_name_norm(h->family, a, sizeof(a), &why) == -1 ||
	    strcmp(a, nq->family) != 0)
		return 0;
	if (match_name_norm(h->given, b, sizeof(b), &why) == -1 ||
	    strcmp(b, nq->given) != 0)
		return 0;
	if (nq->has_postcode && (!given(h->postcode) ||
	    match_postcode_norm(h->postcode, a, sizeof(a), &why) == -1 ||
	    strcmp(a, nq->postcode) != 0))
		return 0;
	return 1;
}

void
match_resolve(const struct match_query *q, const struct match_holding *hs, size_t n,
    struct match_result *res)
{
	struct nquery	 nq;
	int		 found = 0;

	memset(res, 0, sizeof(*res));
	if ((res->why = query_norm(q, &nq)) != NULL) {
		res->outcome = MATCH_INVALID;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!holding_matches(&nq, &hs[i]))
			continue;
		if (found && hs[i].person != res->person) {
			res->outcome = MATCH_AMBIGUOUS;
			res->person = 0;
			return;
		}
		found = 1;
		res->person = hs[i].person;
	}
	res->outcome = found ? MATCH_ONE : MATCH_NONE;
	if (!found)
		res->person = 0;
}

const char *
match_outcome_name(enum match_outcome o)
{
	switch (o) {
	case MATCH_ONE:
		return "one";
	case MATCH_NONE:
		return "no_match";
	case MATCH_AMBIGUOUS:
		return "ambiguous";
	case MATCH_INVALID:
		return "invalid";
	}
	return "invalid";
}
