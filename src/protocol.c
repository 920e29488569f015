/*
 * Sharing protocol parser and validator (D1, D2, D5, D8, D11-D14).
 * Every problem is reported with its position, and parsing goes on after an
 * error so that an admin sees them all in one run.
 */
#include <openssl/evp.h>

#include <errno.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "protocol.h"
#include "protocol_int.h"
#include "yamlutil.h"

const char *const proto_transform_names[] = {
	"none", "year_only", "age_band", "postcode_district", "initials", "redact"
};
const char *const proto_type_names[] = {
	"string", "text", "name", "date", "postcode", "phone", "integer", "address",
	"boolean"
};
const char *const proto_override_names[] = {
	"child_significant_harm", "adult_serious_harm", "serious_crime",
	"legal_proceedings", "emergency_life_threat", "others_at_risk"
};
const char *const proto_role_names[] = { "requester", "holder", "auditor", "admin",
    "guardian" };
#define STR_(x)		#x
#define STR(x)		STR_(x)
#define ID_MAX_STR	STR(PROTOCOL_ID_MAX)

const char *
transform_name(enum transform t)
{
	return proto_transform_names[t];
}

const char *
field_type_name(enum field_type t)
{
	return proto_type_names[t];
}

const char *
override_name(enum override_code c)
{
	return proto_override_names[c];
}

int
override_parse(const char *s, enum override_code *out)
{
	for (int i = 0; i < OV_COUNT; i++)
		if (strcmp(s, proto_override_names[i]) == 0) {
			*out = (enum override_code)i;
			return 0;
		}
	return -1;
}

const char *
roles_string(unsigned roles, char *buf, size_t len)
{
	buf[0] = '\0';
	for (int i = 0; i < NROLES; i++) {
		if (!(roles & (1u << i)))
			continue;
		if (buf[0] != '\0')
			strncat(buf, ",", len - strlen(buf) - 1);
		strncat(buf, proto_role_names[i], len - strlen(buf) - 1);
	}
	return buf;
}

const char *
protocol_id_problem(const char *s)
{
	size_t n = strlen(s);

	if (n == 0)
		return "must not be empty";
	if (n > PROTOCOL_ID_MAX)
		return "is too long (at most " ID_MAX_STR " bytes)";
	if (!isalnum((unsigned char)s[0]))
		return "must start with a letter or digit";
	for (; *s != '\0'; s++)
		if (!isascii((unsigned char)*s) || (!isalnum((unsigned char)*s) &&
		    strchr("_-.", *s) == NULL))
			return "may only contain letters, digits, '_', '-' and '.'";
	return NULL;
}

static void
sha256_hex(const unsigned char *buf, size_t len, char out[65])
{
	unsigned char	 md[32];
	unsigned int	 mdlen = 0;

	EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, 32, out);
}

struct protocol *
protocol_load_buffer(const char *name, const unsigned char *buf, size_t len,
    int64_t now, struct diag *d)
{
	static const char *const keys[] = { "protocol", "flags", "agencies",
	    "purposes", "record_types", "rules", NULL };
	struct yfile	 yf;
	struct protocol	*p;
	yaml_node_t	*root, *n;
	size_t		 before = d->nerrors;

	if (yfile_load_buffer(&yf, name, buf, len, d) == -1) {
		yfile_free(&yf);
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	p->refs = 1;
	p->path = xstrdup(name);
	sha256_hex(buf, len, p->sha256);
	root = yfile_root(&yf);
	if (yis_map(&yf, root, "protocol file")) {
		ykeys_check(&yf, root, keys, "protocol file");
		if ((n = yneed(&yf, root, "protocol", "protocol file")) != NULL)
			proto_header(&yf, p, n, now);
		if ((n = yget(&yf, root, "flags")) != NULL)
			proto_flags(&yf, p, n);
		if ((n = yneed(&yf, root, "agencies", "protocol file")) != NULL)
			proto_agencies(&yf, p, n);
		if ((n = yneed(&yf, root, "purposes", "protocol file")) != NULL)
			proto_purposes(&yf, p, n);
		if ((n = yneed(&yf, root, "record_types", "protocol file")) != NULL)
			proto_record_types(&yf, p, n);
		if ((n = yneed(&yf, root, "rules", "protocol file")) != NULL)
			proto_rules(&yf, p, n);
	}
	yfile_free(&yf);
	if (d->nerrors != before) {
		protocol_unref(p);
		return NULL;
	}
	return p;
}

struct protocol *
protocol_load(const char *path, int64_t now, struct diag *d)
{
	struct protocol	*p;
	char		*buf, err[256];
	size_t		 len;

	if ((buf = file_read(path, 16 * 1024 * 1024, &len, NULL, err,
	    sizeof(err))) == NULL) {
		diag_add(d, path, 0, 0, "%s", err);
		return NULL;
	}
	p = protocol_load_buffer(path, (unsigned char *)buf, len, now, d);
	free(buf);
	return p;
}

struct protocol *
protocol_ref(struct protocol *p)
{
	__atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
	return p;
}

void
protocol_unref(struct protocol *p)
{
	if (p == NULL || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (size_t i = 0; i < p->nagencies; i++) {
		free(p->agencies[i].id);
		free(p->agencies[i].name);
		free(p->agencies[i].subject);
	}
	for (size_t i = 0; i < p->npurposes; i++) {
		free(p->purposes[i].id);
		free(p->purposes[i].description);
		free(p->purposes[i].article6);
		free(p->purposes[i].article9);
		free(p->purposes[i].lawful_basis);
	}
	for (size_t i = 0; i < p->nrecord_types; i++) {
		for (size_t j = 0; j < p->record_types[i].nfields; j++)
			free(p->record_types[i].fields[j].name);
		free(p->record_types[i].fields);
		free(p->record_types[i].id);
	}
	for (size_t i = 0; i < p->nrules; i++) {
		struct rule *r = &p->rules[i];

		free(r->id);
		strlist_free(&r->agencies);
		free(r->fields);
		for (size_t j = 0; j < r->nwithhold; j++) {
			free(r->withhold[j].flag);
			free(r->withhold[j].fields);
		}
		free(r->withhold);
	}
	free(p->agencies);
	free(p->purposes);
	free(p->record_types);
	free(p->rules);
	strlist_free(&p->flags);
	free(p->id);
	free(p->version);
	free(p->owner);
	free(p->path);
	free(p);
}

const struct agency *
protocol_agency(const struct protocol *p, const char *id)
{
	for (size_t i = 0; i < p->nagencies; i++)
		if (strcmp(p->agencies[i].id, id) == 0)
			return &p->agencies[i];
	return NULL;
}

/*
 * The fingerprint wins over the subject when both could match. An agency
 * with a pin (spki_sha256) is found by its key only: its subject does not
 * admit another key (issue 14: a new key under a pinned agency's subject
 * was mapped to it). The subject matches only agencies without a pin.
 */
const struct agency *
protocol_agency_by_cert(const struct protocol *p, const unsigned char spki[32],
    const char *subject)
{
	for (size_t i = 0; i < p->nagencies; i++)
		if (p->agencies[i].has_spki && memcmp(p->agencies[i].spki, spki, 32) == 0)
			return &p->agencies[i];
	if (subject == NULL || *subject == '\0')
		return NULL;
	for (size_t i = 0; i < p->nagencies; i++)
		if (!p->agencies[i].has_spki && p->agencies[i].subject != NULL &&
		    strcmp(p->agencies[i].subject, subject) == 0)
			return &p->agencies[i];
	return NULL;
}

const struct purpose *
protocol_purpose(const struct protocol *p, const char *id)
{
	for (size_t i = 0; i < p->npurposes; i++)
		if (strcmp(p->purposes[i].id, id) == 0)
			return &p->purposes[i];
	return NULL;
}

const struct record_type *
protocol_record_type(const struct protocol *p, const char *id)
{
	for (size_t i = 0; i < p->nrecord_types; i++)
		if (strcmp(p->record_types[i].id, id) == 0)
			return &p->record_types[i];
	return NULL;
}

const struct field_def *
record_type_field(const struct record_type *rt, const char *name, size_t *idx)
{
	for (size_t i = 0; i < rt->nfields; i++)
		if (strcmp(rt->fields[i].name, name) == 0) {
			if (idx != NULL)
				*idx = i;
			return &rt->fields[i];
		}
	return NULL;
}

int
rule_applies_to(const struct rule *r, const struct agency *a)
{
	if (r->agency_role != 0 && (a->roles & r->agency_role))
		return 1;
	return strlist_has(&r->agencies, a->id);
}

const struct rule *
protocol_find_rule(const struct protocol *p, const struct agency *a,
    const struct purpose *pu, const struct record_type *rt)
{
	for (size_t i = 0; i < p->nrules; i++) {
		const struct rule *r = &p->rules[i];

		if (r->purpose == pu && r->record_type == rt && rule_applies_to(r, a))
			return r;
	}
	return NULL;
}

/* In force through the whole review-by day (UTC), like a consent's expires. */
int
protocol_in_force(const struct protocol *p, int64_t now)
{
	return !date_day_over(p->review_by, now);
}

/* Field values, by type: what holders may store (D9: data fit to share). */
int
proto_has_ctrl(const char *v, int newlines_ok)
{
	for (const unsigned char *s = (const unsigned char *)v; *s != '\0'; s++)
		if ((*s < 0x20 && !(newlines_ok && (*s == '\n' || *s == '\t'))) ||
		    *s == 0x7f)
			return 1;
	return 0;
}

/* A UK postcode: outward code (2-4), optional space, inward code (digit, 2 letters). */
int
postcode_valid(const char *v)
{
	char	 c[16];
	size_t	 n = 0, out;

	for (const char *s = v; *s != '\0'; s++) {
		if (*s == ' ')
			continue;
		if (!isalnum((unsigned char)*s) || n == sizeof(c) - 1)
			return 0;
		c[n++] = (char)toupper((unsigned char)*s);
	}
	if (n < 5 || n > 7)
		return 0;
	out = n - 3;
	if (!isalpha((unsigned char)c[0]) || !isdigit((unsigned char)c[out]) ||
	    !isalpha((unsigned char)c[out + 1]) || !isalpha((unsigned char)c[out + 2]))
		return 0;
	for (size_t i = 1; i < out; i++)
		if (!isdigit((unsigned char)c[i]) && !isalpha((unsigned char)c[i]))
			return 0;
	return isdigit((unsigned char)c[1]) || isdigit((unsigned char)c[2]);
}

const char *
field_value_problem(enum field_type t, const char *v)
{
	size_t	 len = strlen(v), digits = 0;
	int64_t	 when;

	if (len == 0)
		return "must not be empty";
	if (len > FIELD_MAX_VALUE)
		return "is too long";
	switch (t) {
	case FT_TEXT:
	case FT_ADDRESS:
		return proto_has_ctrl(v, 1) ? "contains control characters" : NULL;
	case FT_STRING:
		return proto_has_ctrl(v, 0) ? "contains control characters" : NULL;
	case FT_NAME:
		for (const char *s = v; *s != '\0'; s++)
			if (isdigit((unsigned char)*s) || strchr("@<>{}[]|\\/;:=_", *s) ||
			    (unsigned char)*s < 0x20)
				return "is not a name (letters, spaces, hyphens, apostrophes)";
		return len > 200 ? "is too long for a name" : NULL;
	case FT_DATE:
		return date_parse(v, &when) == -1 ? "is not a date (YYYY-MM-DD)" : NULL;
	case FT_POSTCODE:
		return postcode_valid(v) ? NULL : "is not a UK postcode";
	case FT_PHONE:
		for (const char *s = v; *s != '\0'; s++) {
			if (isdigit((unsigned char)*s))
				digits++;
			else if (strchr(" +-()", *s) == NULL)
				return "is not a phone number";
		}
		return digits < 7 || digits > 15 ? "is not a phone number (7 to 15 digits)" :
		    NULL;
	case FT_INTEGER:
		if (*v == '-')
			v++;
		if (*v == '\0' || len > 19)
			return "is not an integer";
		for (; *v != '\0'; v++)
			if (!isdigit((unsigned char)*v))
				return "is not an integer";
		return NULL;
	case FT_BOOLEAN:
		/* One spelling each, so a released value reads the same everywhere. */
		return strcmp(v, "true") == 0 || strcmp(v, "false") == 0 ? NULL :
		    "is not a boolean (true or false)";
	}
	return "has an unknown type";
}
