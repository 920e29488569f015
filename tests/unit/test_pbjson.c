/*
 * The proto3 JSON codec (src/pbjson.c, issue 20), table-driven: every
 * tests/data/pbjson/NAME.case is one decode (format in its README.md),
 * checked against the canonical output, the packed protobuf or the error.
 * Plus a round trip of every message type of the services and the
 * encoder's own refusals.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson.h"
#include "safeshare.pb-c.h"
#include "testutil.h"
#include "util.h"

#define PDIR	DATA_DIR "/pbjson"
#define MAXDESC	128

ParameterizedTestParameters(pbjson, table)
{
	static struct t_case_file cases[256];

	return cr_make_param_array(struct t_case_file, cases,
	    t_case_files(PDIR, cases, 256));
}

Test(pbjson, cases_present)
{
	struct criterion_test_params params = pbjson_table_param();

	cr_assert_geq(params.length, 40, "only %zu cases in " PDIR, params.length);
}

/* Every message reachable from the services, plus Error and Health. */
static const ProtobufCMessageDescriptor *descs[MAXDESC];
static size_t ndescs;

static void
add_desc(const ProtobufCMessageDescriptor *d)
{
	for (size_t i = 0; i < ndescs; i++)
		if (descs[i] == d)
			return;
	cr_assert_lt(ndescs, MAXDESC);
	descs[ndescs++] = d;
	for (unsigned i = 0; i < d->n_fields; i++)
		if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE)
			add_desc(d->fields[i].descriptor);
}

static void
collect(void)
{
	const ProtobufCServiceDescriptor *svcs[] = {
		&safeshare__v1__disclosure_service__descriptor,
		&safeshare__v1__holder_service__descriptor,
		&safeshare__v1__audit_service__descriptor,
		&safeshare__v1__log_service__descriptor,
		&safeshare__v1__admin_service__descriptor,
	};

	if (ndescs > 0)
		return;
	for (size_t s = 0; s < sizeof(svcs) / sizeof(svcs[0]); s++)
		for (unsigned m = 0; m < svcs[s]->n_methods; m++) {
			add_desc(svcs[s]->methods[m].input);
			add_desc(svcs[s]->methods[m].output);
		}
	add_desc(&safeshare__v1__error__descriptor);
	add_desc(&safeshare__v1__health__descriptor);
}

static const ProtobufCMessageDescriptor *
desc_by_name(const char *name)
{
	collect();
	for (size_t i = 0; i < ndescs; i++)
		if (strcmp(descs[i]->name, name) == 0)
			return descs[i];
	return NULL;
}

/* The value of "key: " in text, up to the end of its line (a new string), or NULL. */
static char *
field_of(const char *text, const char *key)
{
	size_t		 kl = strlen(key);
	const char	*p = text;

	while (*p != '\0') {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);

		if (n > kl && strncmp(p, key, kl) == 0 && p[kl] == ':' &&
		    (n == kl + 1 || p[kl + 1] == ' ')) {
			size_t off = n == kl + 1 ? kl + 1 : kl + 2;
			char *v = xcalloc(n - off + 1, 1);

			memcpy(v, p + off, n - off);
			return v;
		}
		p += n + (eol != NULL);
	}
	return NULL;
}

ParameterizedTest(struct t_case_file *c, pbjson, table)
{
	const ProtobufCMessageDescriptor	*d;
	ProtobufCMessage			*m;
	char					 path[512], err[512], *text;
	char					*msg, *in, *out, *hex, *want_err, *got;
	size_t					 len;

	snprintf(path, sizeof(path), PDIR "/%s", c->name);
	text = file_read(path, 1 << 16, &len, NULL, NULL, 0);
	cr_assert_not_null(text, "%s", path);
	msg = field_of(text, "message");
	in = field_of(text, "input");
	out = field_of(text, "output");
	hex = field_of(text, "proto");
	want_err = field_of(text, "error");
	cr_assert(msg && in && (out || want_err) && !(out && want_err),
	    "%s: needs message, input, and output or error", c->name);
	d = desc_by_name(msg);
	cr_assert_not_null(d, "%s: no message type %s", c->name, msg);

	err[0] = '\0';
	m = pbjson_decode(d, in, strlen(in), err, sizeof(err));
	if (want_err != NULL) {
		cr_expect_null(m, "%s: decoded, expected an error", c->name);
		cr_expect(strstr(err, want_err) != NULL, "%s: error \"%s\" lacks \"%s\"",
		    c->name, err, want_err);
		protobuf_c_message_free_unpacked(m, NULL);
		goto done;
	}
	cr_assert_not_null(m, "%s: %s", c->name, err);
	got = pbjson_encode(m, &len, err, sizeof(err));
	cr_assert_not_null(got, "%s: encode: %s", c->name, err);
	cr_expect_str_eq(got, out, "%s: output\n%s\nexpected\n%s", c->name, got, out);
	cr_expect_eq(len, strlen(got));
	if (hex != NULL) {
		size_t	 n = protobuf_c_message_get_packed_size(m);
		uint8_t	*buf = xcalloc(n + 1, 1);
		char	*h = xcalloc(2 * n + 1, 1);

		protobuf_c_message_pack(m, buf);
		hex_encode(buf, n, h);
		cr_expect_str_eq(h, hex, "%s: packed %s, expected %s", c->name, h, hex);
		free(buf);
		free(h);
	}
	free(got);
	protobuf_c_message_free_unpacked(m, NULL);
done:
	free(msg);
	free(in);
	free(out);
	free(hex);
	free(want_err);
	free(text);
}

/* JSON names as protoc makes them. */
Test(pbjson, names)
{
	char out[64];

	pbjson_name("case_reference", out, sizeof(out));
	cr_expect_str_eq(out, "caseReference");
	pbjson_name("ref_seq", out, sizeof(out));
	cr_expect_str_eq(out, "refSeq");
	pbjson_name("protocol_sha256", out, sizeof(out));
	cr_expect_str_eq(out, "protocolSha256");
	pbjson_name("purpose", out, sizeof(out));
	cr_expect_str_eq(out, "purpose");
	pbjson_name("a__b_", out, sizeof(out));
	cr_expect_str_eq(out, "aB");
	pbjson_name("very_long_name", out, 5);
	cr_expect_str_eq(out, "very");
}

/*
 * Every message type of the services: a message with every field set
 * (strings, numbers, enums, bytes, one element per repeated field, nested
 * messages) encodes, decodes back to the same packed bytes, and encodes
 * to the same text.
 */
static ProtobufCMessage *
filled(const ProtobufCMessageDescriptor *d, int depth)
{
	ProtobufCMessage *m = xcalloc(1, d->sizeof_message);

	d->message_init(m);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor	*f = &d->fields[i];
		void				*slot = (char *)m + f->offset;
		int				 rep = f->label == PROTOBUF_C_LABEL_REPEATED;
		size_t				 sz = 8;

		if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth > 3)
			continue;
		if (f->type == PROTOBUF_C_TYPE_BYTES)
			sz = sizeof(ProtobufCBinaryData);
		if (rep) {
			void *arr = xcalloc(1, sz);

			*(size_t *)(void *)((char *)m + f->quantifier_offset) = 1;
			*(void **)slot = arr;
			slot = arr;
		}
		switch (f->type) {
		case PROTOBUF_C_TYPE_STRING:
			*(char **)slot = xstrdup("x\"y\\ \xc3\xa9");
			break;
		case PROTOBUF_C_TYPE_BYTES:
			((ProtobufCBinaryData *)slot)->data = (uint8_t *)xstrdup("\xff\x01z");
			((ProtobufCBinaryData *)slot)->len = 3;
			break;
		case PROTOBUF_C_TYPE_MESSAGE:
			*(ProtobufCMessage **)slot = filled(f->descriptor, depth + 1);
			break;
		case PROTOBUF_C_TYPE_ENUM:
			*(int *)slot = ((const ProtobufCEnumDescriptor *)f->descriptor)->
			    values[((const ProtobufCEnumDescriptor *)f->descriptor)->n_values - 1].value;
			break;
		case PROTOBUF_C_TYPE_BOOL:
			*(protobuf_c_boolean *)slot = 1;
			break;
		case PROTOBUF_C_TYPE_INT64:
			*(int64_t *)slot = -1234567890123LL;
			break;
		case PROTOBUF_C_TYPE_UINT64:
			*(uint64_t *)slot = 18446744073709551615ULL;
			break;
		case PROTOBUF_C_TYPE_UINT32:
			*(uint32_t *)slot = 4294967295U;
			break;
		default:
			cr_assert_fail("%s.%s: a type this test does not fill", d->name,
			    f->name);
		}
	}
	return m;
}

Test(pbjson, every_message_round_trips)
{
	collect();
	cr_assert_gt(ndescs, 30);
	for (size_t i = 0; i < ndescs; i++) {
		ProtobufCMessage	*m = filled(descs[i], 0), *back;
		size_t			 n1, n2, len, len2;
		uint8_t			*b1, *b2;
		char			 err[256], *j1, *j2;

		j1 = pbjson_encode(m, &len, err, sizeof(err));
		cr_assert_not_null(j1, "%s: %s", descs[i]->name, err);
		back = pbjson_decode(descs[i], j1, len, err, sizeof(err));
		cr_assert_not_null(back, "%s: %s\n%s", descs[i]->name, err, j1);
		n1 = protobuf_c_message_get_packed_size(m);
		n2 = protobuf_c_message_get_packed_size(back);
		cr_assert_eq(n1, n2, "%s: %zu bytes, back %zu", descs[i]->name, n1, n2);
		b1 = xcalloc(n1 + 1, 1);
		b2 = xcalloc(n2 + 1, 1);
		protobuf_c_message_pack(m, b1);
		protobuf_c_message_pack(back, b2);
		cr_expect(memcmp(b1, b2, n1) == 0, "%s: packed bytes differ", descs[i]->name);
		j2 = pbjson_encode(back, &len2, err, sizeof(err));
		cr_assert_not_null(j2);
		cr_expect_str_eq(j1, j2, "%s", descs[i]->name);
		free(b1);
		free(b2);
		free(j1);
		free(j2);
		protobuf_c_message_free_unpacked(m, NULL);
		protobuf_c_message_free_unpacked(back, NULL);
	}
}

/* A string that is not UTF-8 cannot be JSON: refused, naming the field. */
Test(pbjson, encode_refuses_bad_utf8)
{
	Safeshare__V1__AuditStats	 st = SAFESHARE__V1__AUDIT_STATS__INIT;
	Safeshare__V1__AuditStats__Row	 row = SAFESHARE__V1__AUDIT_STATS__ROW__INIT;
	Safeshare__V1__AuditStats__Row	*rows[] = { &row };
	char				 err[256], *s;
	size_t				 len;

	row.key = "ok\xff";
	st.rows = rows;
	st.n_rows = 1;
	s = pbjson_encode(&st.base, &len, err, sizeof(err));
	cr_expect_null(s);
	cr_expect_str_eq(err, "field rows[0].key: a string that is not UTF-8");
}
