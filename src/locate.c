/*
 * Locate (D19). What is named and why is documented in docs/api.md
 * (POST /v1/locate) and docs/matching.md; the cases are in
 * tests/unit/test_locate.c.
 */
#include <stdio.h>
#include <string.h>

#include "locate.h"

static int
blank(const char *s)
{
	return s == NULL || *s == '\0';
}

const char *
locate_check(const struct protocol *p, const struct agency *ag, const char *purpose,
    const char *case_ref, const char *practitioner, int64_t now, const char **detail)
{
	if (ag == NULL || !(ag->roles & ROLE_REQUESTER)) {
		*detail = "this agency does not have the requester role";
		return "not_requester";
	}
	/* D1: every locate names a purpose, a case and the practitioner. */
	if (blank(purpose) || blank(case_ref) || blank(practitioner)) {
		*detail = "purpose, case reference and practitioner are required";
		return "incomplete_request";
	}
	if (!protocol_in_force(p, now)) {
		*detail = "the sharing protocol is past its review date";
		return "protocol_expired";
	}
	if (protocol_purpose(p, purpose) == NULL) {
		*detail = "the purpose is not declared in the sharing protocol";
		return "unknown_purpose";
	}
	*detail = "";
	return NULL;
}

size_t
locate_filter(const struct protocol *p, const struct agency *ag,
    const struct purpose *pu, const struct locate_held *held, size_t n,
    const char **why)
{
	size_t named = 0;

	for (size_t i = 0; i < n; i++) {
		const struct record_type	*rt;
		const struct rule		*r;

		if ((rt = protocol_record_type(p, held[i].record_type)) == NULL)
			why[i] = "unknown_record_type";	/* no longer declared */
		else if ((r = protocol_find_rule(p, ag, pu, rt)) == NULL)
			why[i] = "no_rule";
		else if (r->not_locatable)
			why[i] = "not_locatable";
		else {
			why[i] = NULL;
			named++;
		}
	}
	return named;
}

/* Appends s to buf at *off; once it does not fit, ends buf with "...". */
static void
put(char *buf, size_t len, size_t *off, const char *s)
{
	size_t n = strlen(s);

	if (*off >= len)
		return;
	if (*off + n + 4 > len) {
		snprintf(buf + *off, len - *off, "...");
		*off = len;
		return;
	}
	memcpy(buf + *off, s, n + 1);
	*off += n;
}

void
locate_summary(const struct locate_held *held, size_t n, const char **why, int named,
    char *buf, size_t len)
{
	const char	*last = NULL;
	size_t		 off = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if ((why[i] == NULL) != (named != 0))
			continue;
		if (named && last != NULL && strcmp(last, held[i].holder) == 0)
			put(buf, len, &off, "+");
		else {
			if (off > 0)
				put(buf, len, &off, ";");
			put(buf, len, &off, held[i].holder);
			put(buf, len, &off, ":");
		}
		put(buf, len, &off, held[i].record_type);
		if (!named) {
			put(buf, len, &off, ":");
			put(buf, len, &off, why[i]);
		}
		last = held[i].holder;
	}
}
