/*
 * The details a subject is found by (D18, docs/matching.md): checked as
 * match.h checks a query, and taken from a `person` record's fields. Pure
 * functions, shared by the SQLite store (person.c) and the PostgreSQL one
 * (pgstore_person.c) so both refuse and keep the same details.
 */
#include <stdio.h>
#include <string.h>

#include "person.h"
#include "util.h"
#include "yamlutil.h"

static int
given(const char *v)
{
	return v != NULL && *v != '\0';
}

int
person_details_check(const char *family, const char *given_name, const char *dob,
    const char *postcode, char *key, size_t keylen, char *err, size_t errlen)
{
	char		 tmp[MATCH_NAME_MAX + 1];
	const char	*why;
	int64_t		 t;

	key[0] = '\0';
	if (given(family) && match_name_norm(family, key, keylen, &why) == -1)
		return errorf(err, errlen, "family name: %s", why);
	if (given(given_name) && match_name_norm(given_name, tmp, sizeof(tmp),
	    &why) == -1)
		return errorf(err, errlen, "given name: %s", why);
	if (given(dob) && date_parse(dob, &t) == -1)
		return errorf(err, errlen, "date of birth: expected a date as YYYY-MM-DD");
	if (given(postcode) && match_postcode_norm(postcode, tmp, sizeof(tmp),
	    &why) == -1)
		return errorf(err, errlen, "postcode: %s", why);
	return 0;
}

/*
 * Splits a full name at its last space: "Amelia Rose Hart" is given
 * "Amelia Rose", family "Hart". A name of one word gives no details.
 */
static int
split_name(char *full, const char **given_name, const char **family)
{
	char *sp;

	while (*full == ' ')
		full++;
	for (size_t n = strlen(full); n > 0 && full[n - 1] == ' '; n--)
		full[n - 1] = '\0';
	if ((sp = strrchr(full, ' ')) == NULL)
		return -1;
	*sp = '\0';
	*given_name = full;
	*family = sp + 1;
	return 0;
}

void
person_details_of_record(char *full, const char *dob, const char *postcode,
    const char **family, const char **given_name, const char **d, const char **p)
{
	char		 tmp[MATCH_NAME_MAX + 1];
	const char	*why;
	int64_t		 t;

	*family = *given_name = NULL;
	/* An unusable detail is left unset rather than refused. */
	if (split_name(full, given_name, family) == -1 ||
	    match_name_norm(*family, tmp, sizeof(tmp), &why) == -1 ||
	    match_name_norm(*given_name, tmp, sizeof(tmp), &why) == -1)
		*family = *given_name = NULL;
	*d = given(dob) && date_parse(dob, &t) == 0 ? dob : NULL;
	*p = given(postcode) && match_postcode_norm(postcode, tmp, sizeof(tmp),
	    &why) == 0 ? postcode : NULL;
}
