/*
 * json-c against jansson on the two JSON paths that carry volume (issue 16
 * item 4): writing and reading a log export of N entries (JSON lines of 25
 * keys, docs/audit-format.md) and reading a holder import of N ops (JSON
 * lines, docs/holder-import.md). Built only with -DSAFESHARE_JSON_BENCH=ON,
 * which needs libjson-c-dev; json-c is not a dependency of safeshare, this
 * file only measured it. Also prints how the library treats the inputs the
 * import must refuse. Results are in BENCHMARKS.md ("JSON library").
 *
 * The two libraries export functions of the same name (json_object_get()
 * is a lookup in one and a reference count in the other), so one program
 * cannot link both: this file is built twice, json_bench_jansson and
 * json_bench_jsonc (-DJSON_BENCH_JSONC).
 *
 *   json_bench_jansson [N]	(default 100000)
 *   json_bench_jsonc [N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef JSON_BENCH_JSONC
#include <json-c/json.h>
#define LIB "json-c"
#else
#include <jansson.h>
#define LIB "jansson"
#endif

static const char *const keys[] = { "kind", "agency", "cert_fp", "practitioner",
    "purpose", "lawful_basis", "case_ref", "subject", "record_type", "decision",
    "reason", "released", "withheld", "consent", "override_code",
    "justification", "rule_id", "protocol_id", "protocol_version",
    "protocol_sha256", "request_id", "inform_waiver" };
#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

struct lines {
	char	**v;
	size_t	 n;
	size_t	 bytes;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The text of key k of entry i: typical lengths, some escapes, non-ASCII. */
static void
value(size_t i, size_t k, char *buf, size_t len)
{
	switch (k % 6) {
	case 0:
		snprintf(buf, len, "S%06zu", i);
		break;
	case 1:
		snprintf(buf, len, "Zo\xc3\xab O'Brien \"%zu\" line\nnext", i);
		break;
	case 2:
		snprintf(buf, len, "%064zx", i * 2654435761u);
		break;
	case 3:
		snprintf(buf, len, "full_name,date_of_birth,address,postcode,phone");
		break;
	case 4:
		snprintf(buf, len, "child_protection");
		break;
	default:
		snprintf(buf, len, "Art 6(1)(e) public task; Art 9(2)(g) substantial "
		    "public interest; DPA 2018 Sch 1 para 18");
	}
}

static void
add(struct lines *l, const char *s, size_t n)
{
	l->v[l->n] = malloc(n + 1);
	memcpy(l->v[l->n], s, n);
	l->v[l->n][n] = '\0';
	l->bytes += n;
	l->n++;
}

#ifndef JSON_BENCH_JSONC
static double
write_lib(size_t n, struct lines *out)
{
	char	 buf[256];
	double	 t0 = now();

	for (size_t i = 0; i < n; i++) {
		json_t	*o = json_object();
		char	*s;

		json_object_set_new(o, "seq", json_integer((json_int_t)i + 1));
		json_object_set_new(o, "time", json_integer(1764000000 + (json_int_t)i));
		json_object_set_new(o, "ref_seq", json_integer(0));
		for (size_t k = 0; k < NKEYS; k++) {
			value(i, k, buf, sizeof(buf));
			json_object_set_new(o, keys[k], json_string(buf));
		}
		s = json_dumps(o, JSON_COMPACT);
		add(out, s, strlen(s));
		free(s);
		json_decref(o);
	}
	return now() - t0;
}

#else
static double
write_lib(size_t n, struct lines *out)
{
	char	 buf[256];
	double	 t0 = now();

	for (size_t i = 0; i < n; i++) {
		struct json_object	*o = json_object_new_object();
		const char		*s;

		json_object_object_add(o, "seq", json_object_new_int64((int64_t)i + 1));
		json_object_object_add(o, "time", json_object_new_int64(1764000000 +
		    (int64_t)i));
		json_object_object_add(o, "ref_seq", json_object_new_int64(0));
		for (size_t k = 0; k < NKEYS; k++) {
			value(i, k, buf, sizeof(buf));
			json_object_object_add(o, keys[k], json_object_new_string(buf));
		}
		s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
		    JSON_C_TO_STRING_NOSLASHESCAPE);
		add(out, s, strlen(s));
		json_object_put(o);
	}
	return now() - t0;
}

#endif

#ifndef JSON_BENCH_JSONC
/* Parses every line and reads every key's string, as verify does. */
static double
read_lib(const struct lines *l, const char *const *want, size_t nwant,
    size_t *sum)
{
	double t0 = now();

	for (size_t i = 0; i < l->n; i++) {
		json_error_t	 je;
		json_t		*o = json_loadb(l->v[i], strlen(l->v[i]),
		    JSON_REJECT_DUPLICATES, &je);

		if (o == NULL) {
			fprintf(stderr, "jansson: line %zu: %s\n", i + 1, je.text);
			exit(1);
		}
		for (size_t k = 0; k < nwant; k++) {
			json_t *v = json_object_get(o, want[k]);

			if (json_is_string(v))
				*sum += json_string_length(v);
		}
		json_decref(o);
	}
	return now() - t0;
}

#else
static double
read_lib(const struct lines *l, const char *const *want, size_t nwant, size_t *sum)
{
	struct json_tokener	*tok = json_tokener_new();
	double			 t0 = now();

	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	for (size_t i = 0; i < l->n; i++) {
		struct json_object	*o, *v;
		int			 len = (int)strlen(l->v[i]);

		json_tokener_reset(tok);
		o = json_tokener_parse_ex(tok, l->v[i], len);
		if (o == NULL || json_tokener_get_parse_end(tok) != (size_t)len) {
			fprintf(stderr, "json-c: line %zu: %s\n", i + 1,
			    json_tokener_error_desc(json_tokener_get_error(tok)));
			exit(1);
		}
		for (size_t k = 0; k < nwant; k++)
			if (json_object_object_get_ex(o, want[k], &v) &&
			    json_object_is_type(v, json_type_string))
				*sum += (size_t)json_object_get_string_len(v);
		json_object_put(o);
	}
	json_tokener_free(tok);
	return now() - t0;
}

#endif

static void
import_lines(size_t n, struct lines *l)
{
	char buf[512];

	for (size_t i = 0; i < n; i++) {
		int len = snprintf(buf, sizeof(buf), "{\"op\":\"put_record\",\"subject\":"
		    "\"S-%zu\",\"record_type\":\"person\",\"verified\":\"2026-09-01\","
		    "\"fields\":{\"full_name\":\"Zo\\u00eb O'Brien \\ud83d\\ude00\","
		    "\"date_of_birth\":\"2010-05-04\",\"postcode\":\"AB1 2CD\","
		    "\"address\":\"1 High Street, \\\"The Mill\\\"\"}}", i);

		add(l, buf, (size_t)len);
	}
}

static void
free_lines(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = l->bytes = 0;
}

/* What the library does with an input the import must refuse. */
static void
strictness(void)
{
	static const char *const cases[] = {
		"{\"subject\":\"S-1\",\"subject\":\"S-2\"}",
		"{\"subject\":\"S-1\"} x",
		"{\"name\":\"\\ud83d\\ude00\"}",
		"{\"name\":\"\\ud83d\"}",
		"{\"name\":\"a\\u0000b\"}",
		"{\"n\":123,\"t\":true,\"z\":null}",
		"{\"n\":1e400}",
	};

	printf("\n%-44s %s\n", "input", LIB);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char	*c = cases[i];
		char		 r[512];
#ifdef JSON_BENCH_JSONC
		struct json_tokener	*tok = json_tokener_new();
		struct json_object	*b;

		json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
		b = json_tokener_parse_ex(tok, c, (int)strlen(c));
		if (b == NULL)
			snprintf(r, sizeof(r), "refused: %s",
			    json_tokener_error_desc(json_tokener_get_error(tok)));
		else if (json_tokener_get_parse_end(tok) != strlen(c))
			snprintf(r, sizeof(r), "accepted %s, %zu bytes left over",
			    json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN),
			    strlen(c) - json_tokener_get_parse_end(tok));
		else
			snprintf(r, sizeof(r), "accepted %s (value length %d)",
			    json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN),
			    json_object_object_get_ex(b, "name", NULL) ?
			    json_object_get_string_len(json_object_object_get(b,
			    "name")) : -1);
		json_object_put(b);
		json_tokener_free(tok);
#else
		json_error_t	 je;
		json_t		*a = json_loadb(c, strlen(c), JSON_REJECT_DUPLICATES, &je);

		if (a == NULL)
			snprintf(r, sizeof(r), "refused: %s", je.text);
		else {
			char *s = json_dumps(a, JSON_COMPACT | JSON_ENSURE_ASCII);

			snprintf(r, sizeof(r), "accepted %s", s);
			free(s);
			json_decref(a);
		}
#endif
		printf("%-44s %s\n", c, r);
	}
}

int
main(int argc, char *argv[])
{
	size_t		 n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000, sum = 0;
	struct lines	 l = { calloc(n, sizeof(char *)), 0, 0 };
	const char	*ikeys[] = { "op", "subject", "record_type", "verified", "fields" };
	double		 t;

	if (l.v == NULL || n == 0)
		return 1;
#ifdef JSON_BENCH_JSONC
	printf("json-c %s, %zu lines\n", json_c_version(), n);
#else
	printf("jansson %s, %zu lines\n", JANSSON_VERSION, n);
#endif
	printf("%-8s %-16s %10s %12s %10s\n", "library", "path", "seconds", "lines/s",
	    "MB/s");
#define ROW(path, secs) printf("%-8s %-16s %10.3f %12.0f %10.1f\n", LIB, path, \
	    secs, (double)n / (secs), (double)l.bytes / (secs) / 1e6)
	t = write_lib(n, &l);
	ROW("export write", t);
	t = read_lib(&l, keys, NKEYS, &sum);
	ROW("export read", t);
	free_lines(&l);
	import_lines(n, &l);
	t = read_lib(&l, ikeys, 5, &sum);
	ROW("import read", t);
	free_lines(&l);
	free(l.v);
	strictness();
	return sum == 0;
}
