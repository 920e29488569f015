/*
 * The proto3 JSON mapping over protobuf-c descriptors (pbjson.h). JSON
 * text goes through jansson, base64 through OpenSSL's EVP coder; this file
 * only walks descriptors. A decoded message is laid out exactly as
 * protobuf-c's unpacker would lay it out, with malloc'd strings, arrays and
 * sub-messages, so protobuf_c_message_free_unpacked() frees it, also when
 * decoding stopped half way.
 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "pbjson.h"

#define MEMBER(type, m, off)	(*(type *)(void *)((char *)(m) + (off)))
#define CMEMBER(type, m, off)	(*(const type *)(const void *)((const char *)(m) + (off)))

/* Where in the message a decoder or encoder is, for its error messages. */
struct walk {
	char	 path[256];
	size_t	 plen;
	char	*err;
	size_t	 errlen;
};

static int	fail(struct walk *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static int
fail(struct walk *w, const char *fmt, ...)
{
	va_list	ap;
	char	msg[256];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (w->plen > 0)
		snprintf(w->err, w->errlen, "field %s: %s", w->path, msg);
	else
		snprintf(w->err, w->errlen, "%s", msg);
	return -1;
}

/* Appends ".name" or "[i]" to the path; returns the old length to restore. */
static size_t
path_push(struct walk *w, const char *name, long idx)
{
	size_t	old = w->plen;
	int	n;

	if (name != NULL)
		n = snprintf(w->path + w->plen, sizeof(w->path) - w->plen, "%s%s",
		    w->plen > 0 ? "." : "", name);
	else
		n = snprintf(w->path + w->plen, sizeof(w->path) - w->plen, "[%ld]", idx);
	if (n > 0)
		w->plen += (size_t)n < sizeof(w->path) - w->plen ? (size_t)n :
		    sizeof(w->path) - w->plen - 1;
	return old;
}

static void
path_pop(struct walk *w, size_t old)
{
	w->plen = old;
	w->path[old] = '\0';
}

void
pbjson_name(const char *name, char *out, size_t outlen)
{
	size_t	o = 0;
	int	up = 0;

	if (outlen == 0)
		return;
	for (; *name != '\0' && o + 1 < outlen; name++) {
		if (*name == '_')
			up = 1;
		else {
			out[o++] = up && *name >= 'a' && *name <= 'z' ?
			    (char)(*name - 'a' + 'A') : *name;
			up = 0;
		}
	}
	out[o] = '\0';
}

/* The field named key, by its JSON name or its proto name; NULL if none. */
static const ProtobufCFieldDescriptor *
field_by_key(const ProtobufCMessageDescriptor *d, const char *key)
{
	const ProtobufCFieldDescriptor	*f;
	char				 jn[128];

	if ((f = protobuf_c_message_descriptor_get_field_by_name(d, key)) != NULL)
		return f;
	if (strlen(key) >= sizeof(jn))
		return NULL;
	for (unsigned i = 0; i < d->n_fields; i++) {
		pbjson_name(d->fields[i].name, jn, sizeof(jn));
		if (strcmp(jn, key) == 0)
			return &d->fields[i];
	}
	return NULL;
}

/* A key as it may appear in an error message: short, printable, unquoted. */
static void
safe_key(const char *key, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *key != '\0' && o + 4 < outlen; key++)
		out[o++] = *key > ' ' && *key < 0x7f && *key != '"' && *key != '\\' ?
		    *key : '?';
	if (*key != '\0')
		out[o++] = '.', out[o++] = '.', out[o++] = '.';
	out[o] = '\0';
}

/* ---- reading ---- */

/* A JSON number or decimal string as a signed integer in [lo, hi]. */
static int
read_signed(struct walk *w, json_t *v, int64_t lo, int64_t hi, int64_t *out)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		if (i < lo || i > hi)
			return fail(w, "integer out of range");
		*out = i;
		return 0;
	}
	if (json_is_real(v)) {
		double x = json_real_value(v);

		if (x != floor(x) || x < (double)lo || x >= -(double)lo ||
		    x > (double)hi)
			return fail(w, "not an integer in range");
		*out = (int64_t)x;
		return 0;
	}
	if (json_is_string(v)) {
		const char	*s = json_string_value(v);
		char		*end;
		long long	 i;

		if (s[0] == '\0' || strspn(s + (s[0] == '-'), "0123456789") !=
		    strlen(s + (s[0] == '-')) || s[s[0] == '-'] == '\0')
			return fail(w, "expected an integer (digits, optionally '-')");
		errno = 0;
		i = strtoll(s, &end, 10);
		if (errno != 0 || *end != '\0' || i < lo || i > hi)
			return fail(w, "integer out of range");
		*out = i;
		return 0;
	}
	return fail(w, "expected an integer (a number or a string of digits)");
}

static int
read_unsigned(struct walk *w, json_t *v, uint64_t hi, uint64_t *out)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		if (i < 0 || (uint64_t)i > hi)
			return fail(w, "integer out of range");
		*out = (uint64_t)i;
		return 0;
	}
	if (json_is_real(v)) {
		double x = json_real_value(v);

		if (x != floor(x) || x < 0 || x >= 18446744073709551616.0 ||
		    (uint64_t)x > hi)
			return fail(w, "not an unsigned integer in range");
		*out = (uint64_t)x;
		return 0;
	}
	if (json_is_string(v)) {
		const char		*s = json_string_value(v);
		char			*end;
		unsigned long long	 i;

		if (s[0] == '\0' || strspn(s, "0123456789") != strlen(s))
			return fail(w, "expected an unsigned integer (digits)");
		errno = 0;
		i = strtoull(s, &end, 10);
		if (errno != 0 || *end != '\0' || i > hi)
			return fail(w, "integer out of range");
		*out = i;
		return 0;
	}
	return fail(w, "expected an unsigned integer (a number or a string of digits)");
}

static int
read_double(struct walk *w, json_t *v, double *out)
{
	if (json_is_number(v)) {
		*out = json_number_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		const char	*s = json_string_value(v);
		char		*end;

		if (strcmp(s, "NaN") == 0)
			*out = NAN;
		else if (strcmp(s, "Infinity") == 0)
			*out = INFINITY;
		else if (strcmp(s, "-Infinity") == 0)
			*out = -INFINITY;
		else {
			errno = 0;
			*out = strtod(s, &end);
			if (s[0] == '\0' || *end != '\0' || errno != 0 ||
			    strspn(s, "0123456789+-.eE") != strlen(s))
				return fail(w, "expected a number");
		}
		return 0;
	}
	return fail(w, "expected a number");
}

/*
 * Standard or URL-safe base64, padded or not, through EVP_DecodeBlock
 * after checking the alphabet here (EVP_DecodeBlock would skip spaces and
 * count padding as data).
 */
static int
read_bytes(struct walk *w, json_t *v, ProtobufCBinaryData *out)
{
	const char	*s;
	size_t		 n, data, pad, i;
	unsigned char	*in, *buf;
	int		 got;

	if (!json_is_string(v))
		return fail(w, "expected a base64 string");
	s = json_string_value(v);
	n = json_string_length(v);
	for (data = n; data > 0 && s[data - 1] == '='; data--)
		;
	if (n - data > 2 || data % 4 == 1 || (n != data && n % 4 != 0))
		return fail(w, "bad base64 length or padding");
	if (data == 0) {
		out->data = NULL;
		out->len = 0;
		return 0;
	}
	pad = (4 - data % 4) % 4;
	if (data + pad > INT32_MAX)
		return fail(w, "bytes too long");
	in = malloc(data + pad + 1);
	buf = malloc((data + pad) / 4 * 3 + 1);
	if (in == NULL || buf == NULL) {
		free(in);
		free(buf);
		return fail(w, "out of memory");
	}
	for (i = 0; i < data; i++) {
		char c = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/')) {
			free(in);
			free(buf);
			return fail(w, "not base64");
		}
		in[i] = (unsigned char)c;
	}
	memset(in + data, '=', pad);
	got = EVP_DecodeBlock(buf, in, (int)(data + pad));
	free(in);
	if (got < 0) {
		free(buf);
		return fail(w, "not base64");
	}
	out->data = buf;
	out->len = (size_t)got - pad;
	return 0;
}

static int	read_message(struct walk *, const ProtobufCMessageDescriptor *,
		    json_t *, ProtobufCMessage **, int depth);

/* One value of field f from v into slot (the field's member or an array element). */
static int
read_value(struct walk *w, const ProtobufCFieldDescriptor *f, json_t *v, void *slot,
    int depth)
{
	int64_t		i;
	uint64_t	u;
	double		x;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (read_signed(w, v, INT32_MIN, INT32_MAX, &i) == -1)
			return -1;
		*(int32_t *)slot = (int32_t)i;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (read_unsigned(w, v, UINT32_MAX, &u) == -1)
			return -1;
		*(uint32_t *)slot = (uint32_t)u;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (read_signed(w, v, INT64_MIN, INT64_MAX, &i) == -1)
			return -1;
		*(int64_t *)slot = i;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (read_unsigned(w, v, UINT64_MAX, &u) == -1)
			return -1;
		*(uint64_t *)slot = u;
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
		if (read_double(w, v, &x) == -1)
			return -1;
		if (isfinite(x) && fabs(x) > FLT_MAX)
			return fail(w, "number out of range for a float");
		*(float *)slot = (float)x;
		return 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		if (read_double(w, v, &x) == -1)
			return -1;
		*(double *)slot = x;
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(v))
			return fail(w, "expected true or false");
		*(protobuf_c_boolean *)slot = json_is_true(v);
		return 0;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor	*ed = f->descriptor;
		const ProtobufCEnumValue	*ev;

		if (json_is_string(v)) {
			ev = protobuf_c_enum_descriptor_get_value_by_name(ed,
			    json_string_value(v));
			if (ev == NULL)
				return fail(w, "not a value of enum %s", ed->name);
			*(int *)slot = ev->value;
			return 0;
		}
		/* Open enums (proto3): any int32 number, as protobuf-c unpacks. */
		if (read_signed(w, v, INT32_MIN, INT32_MAX, &i) == -1)
			return fail(w, "expected a value name of enum %s", ed->name);
		*(int *)slot = (int)i;
		return 0;
	}
	case PROTOBUF_C_TYPE_STRING: {
		char *s;

		if (!json_is_string(v))
			return fail(w, "expected a string");
		if (memchr(json_string_value(v), '\0', json_string_length(v)) != NULL)
			return fail(w, "a string with a NUL character");
		if ((s = strdup(json_string_value(v))) == NULL)
			return fail(w, "out of memory");
		*(char **)slot = s;
		return 0;
	}
	case PROTOBUF_C_TYPE_BYTES:
		return read_bytes(w, v, slot);
	case PROTOBUF_C_TYPE_MESSAGE:
		return read_message(w, f->descriptor, v, slot, depth + 1);
	}
	return fail(w, "unsupported field type");
}

static size_t
slot_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

/* Field f of m from v (not null). */
static int
read_field(struct walk *w, const ProtobufCFieldDescriptor *f, json_t *v,
    ProtobufCMessage *m, int depth)
{
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t	 n, sz = slot_size(f), i;
		char	*arr;

		if (!json_is_array(v))
			return fail(w, "expected an array");
		if ((n = json_array_size(v)) == 0)
			return 0;
		if ((arr = calloc(n, sz)) == NULL)
			return fail(w, "out of memory");
		/* Set now, so that a failure below frees what was read. */
		MEMBER(void *, m, f->offset) = arr;
		MEMBER(size_t, m, f->quantifier_offset) = n;
		for (i = 0; i < n; i++) {
			json_t	*e = json_array_get(v, i);
			size_t	 old = path_push(w, NULL, (long)i);

			if (json_is_null(e)) {
				fail(w, "null in an array");
				return -1;
			}
			if (read_value(w, f, e, arr + i * sz, depth) == -1)
				return -1;
			path_pop(w, old);
		}
		return 0;
	}
	if (read_value(w, f, v, (char *)m + f->offset, depth) == -1)
		return -1;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		MEMBER(uint32_t, m, f->quantifier_offset) = f->id;
	else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
	    f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
		MEMBER(protobuf_c_boolean, m, f->quantifier_offset) = 1;
	return 0;
}

static int
read_message(struct walk *w, const ProtobufCMessageDescriptor *d, json_t *v,
    ProtobufCMessage **out, int depth)
{
	ProtobufCMessage	*m;
	unsigned char		*seen = NULL;
	const char		*key;
	json_t			*val;

	*out = NULL;
	if (!json_is_object(v))
		return fail(w, "expected an object for %s", d->name);
	if (depth > PBJSON_MAX_DEPTH)
		return fail(w, "messages nested more than %d deep", PBJSON_MAX_DEPTH);
	if ((m = malloc(d->sizeof_message)) == NULL)
		return fail(w, "out of memory");
	d->message_init(m);
	*out = m;
	if (d->n_fields > 0 && (seen = calloc(d->n_fields, 1)) == NULL)
		return fail(w, "out of memory");
	json_object_foreach(v, key, val) {
		const ProtobufCFieldDescriptor	*f = field_by_key(d, key);
		const ProtobufCFieldDescriptor	*o;
		size_t				 old, idx;
		char				 sk[72];

		if (f == NULL) {
			safe_key(key, sk, sizeof(sk));
			old = path_push(w, sk, 0);
			snprintf(w->err, w->errlen, "unknown field \"%s\" in %s",
			    w->path, d->name);
			path_pop(w, old);
			goto fail;
		}
		old = path_push(w, key, 0);
		idx = (size_t)(f - d->fields);
		if (seen[idx]) {
			fail(w, "given twice (by its JSON name and its proto name)");
			goto fail;
		}
		seen[idx] = 1;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			for (o = d->fields; o < d->fields + d->n_fields; o++)
				if (o != f && seen[o - d->fields] &&
				    (o->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
				    o->quantifier_offset == f->quantifier_offset) {
					fail(w, "a second member of the same oneof");
					goto fail;
				}
		}
		if (!json_is_null(val) && read_field(w, f, val, m, depth) == -1)
			goto fail;
		path_pop(w, old);
	}
	free(seen);
	return 0;
fail:
	free(seen);
	return -1;
}

ProtobufCMessage *
pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
    char *err, size_t errlen)
{
	struct walk		 w = { .err = err, .errlen = errlen };
	ProtobufCMessage	*m = NULL;
	json_error_t		 je;
	json_t			*root;

	/* Duplicate keys are refused; so is anything after the value (default). */
	if ((root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je)) == NULL) {
		snprintf(err, errlen, "invalid JSON at line %d column %d: %s",
		    je.line, je.column, je.text);
		return NULL;
	}
	if (read_message(&w, desc, root, &m, 0) == -1) {
		protobuf_c_message_free_unpacked(m, NULL);
		m = NULL;
	}
	json_decref(root);
	return m;
}

/* ---- writing ---- */

static json_t	*write_message(struct walk *, const ProtobufCMessage *, int depth);

static json_t *
write_double(double x)
{
	if (isnan(x))
		return json_string("NaN");
	if (isinf(x))
		return json_string(x > 0 ? "Infinity" : "-Infinity");
	return json_real(x);
}

static json_t *
write_value(struct walk *w, const ProtobufCFieldDescriptor *f, const void *slot,
    int depth)
{
	char	 num[24];
	json_t	*v;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_integer(*(const int32_t *)slot);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_integer(*(const uint32_t *)slot);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		snprintf(num, sizeof(num), "%" PRId64, *(const int64_t *)slot);
		return json_string(num);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		snprintf(num, sizeof(num), "%" PRIu64, *(const uint64_t *)slot);
		return json_string(num);
	case PROTOBUF_C_TYPE_FLOAT:
		return write_double(*(const float *)slot);
	case PROTOBUF_C_TYPE_DOUBLE:
		return write_double(*(const double *)slot);
	case PROTOBUF_C_TYPE_BOOL:
		return json_boolean(*(const protobuf_c_boolean *)slot);
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
		    f->descriptor, *(const int *)slot);

		return ev ? json_string(ev->name) : json_integer(*(const int *)slot);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)slot;

		if ((v = json_string(s ? s : "")) == NULL)
			fail(w, "a string that is not UTF-8");
		return v;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData	*b = slot;
		unsigned char			*o;

		if (b->len > INT32_MAX / 2 || (o = malloc(b->len / 3 * 4 + 5)) == NULL) {
			fail(w, "bytes too long");
			return NULL;
		}
		EVP_EncodeBlock(o, b->data, (int)b->len);
		v = json_string((char *)o);
		free(o);
		return v;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		return write_message(w, *(ProtobufCMessage *const *)slot, depth + 1);
	}
	fail(w, "unsupported field type");
	return NULL;
}

/* Whether a field without presence holds its default (and is left out). */
static int
is_default(const ProtobufCFieldDescriptor *f, const void *slot)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)slot;

		return s == NULL || s[0] == '\0';
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)slot)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(ProtobufCMessage *const *)slot == NULL;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)slot == 0 && !signbit(*(const float *)slot);
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)slot == 0 && !signbit(*(const double *)slot);
	default: {
		static const unsigned char zero[8];

		return memcmp(slot, zero, slot_size(f)) == 0;
	}
	}
}

static json_t *
write_message(struct walk *w, const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor	*d = m->descriptor;
	json_t					*obj, *v;
	char					 jn[128];

	if (depth > PBJSON_MAX_DEPTH) {
		fail(w, "messages nested more than %d deep", PBJSON_MAX_DEPTH);
		return NULL;
	}
	if ((obj = json_object()) == NULL)
		return NULL;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor	*f = &d->fields[i];
		const void			*slot = (const char *)m + f->offset;
		size_t				 old;

		pbjson_name(f->name, jn, sizeof(jn));
		old = path_push(w, jn, 0);
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t		 n = CMEMBER(size_t, m, f->quantifier_offset);
			const char	*arr = CMEMBER(char *, m, f->offset);

			if (n == 0) {
				path_pop(w, old);
				continue;
			}
			if ((v = json_array()) == NULL)
				goto fail;
			for (size_t j = 0; j < n; j++) {
				size_t	 at = path_push(w, NULL, (long)j);
				json_t	*e = write_value(w, f, arr + j * slot_size(f), depth);

				if (e == NULL || json_array_append_new(v, e) == -1) {
					json_decref(v);
					goto fail;
				}
				path_pop(w, at);
			}
		} else {
			if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
				if (CMEMBER(uint32_t, m, f->quantifier_offset) != f->id) {
					path_pop(w, old);
					continue;
				}
			} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
			    f->type != PROTOBUF_C_TYPE_STRING &&
			    f->type != PROTOBUF_C_TYPE_MESSAGE) {
				if (!CMEMBER(protobuf_c_boolean, m, f->quantifier_offset)) {
					path_pop(w, old);
					continue;
				}
			} else if (f->type == PROTOBUF_C_TYPE_MESSAGE ||
			    f->label != PROTOBUF_C_LABEL_OPTIONAL) {
				if (is_default(f, slot)) {
					path_pop(w, old);
					continue;
				}
			} else if (*(char *const *)slot == NULL) {
				path_pop(w, old);
				continue;
			}
			if ((v = write_value(w, f, slot, depth)) == NULL)
				goto fail;
		}
		if (json_object_set_new(obj, jn, v) == -1)
			goto fail;
		path_pop(w, old);
	}
	return obj;
fail:
	json_decref(obj);
	return NULL;
}

char *
pbjson_encode(const ProtobufCMessage *m, size_t *len, char *err, size_t errlen)
{
	struct walk	 w = { .err = err, .errlen = errlen };
	json_t		*root;
	char		*s;

	err[0] = '\0';
	if ((root = write_message(&w, m, 0)) == NULL) {
		if (err[0] == '\0')
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (s == NULL) {
		snprintf(err, errlen, "cannot write JSON");
		return NULL;
	}
	*len = strlen(s);
	return s;
}
