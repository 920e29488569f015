#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "auditfile.h"
#include "jsonw.h"
#include "util.h"

/*
 * The writers build each line as a jansson object and write it compactly,
 * keys in the order below (the order docs/audit-format.md shows).
 */
/* v's line; -1 if it or an earlier line could not be written. */
static int
line(FILE *fp, json_t *v)
{
	errno = 0;
	if (jsonw_print(fp, v) == -1 || ferror(fp)) {
		if (errno == 0)
			errno = EIO;
		return -1;
	}
	return 0;
}

int
auditfile_header(FILE *fp, const unsigned char log_id[16], uint64_t entries,
    uint64_t checkpoints, const char *public_pem)
{
	return line(fp, json_pack("{s:s,s:i,s:o,s:o,s:o,s:o}",
	    "format", "safeshare-log-export", "version", 2,
	    "log_id", jsonw_hex(log_id, 16), "entries", jsonw_u64(entries),
	    "checkpoints", jsonw_u64(checkpoints),
	    "public_key", jsonw_str(public_pem ? public_pem : "")));
}

int
auditfile_checkpoint(FILE *fp, const struct audit_checkpoint *cp)
{
	json_t *o = json_pack("{s:o,s:o,s:I}", "checkpoint", jsonw_u64(cp->id),
	    "size", jsonw_u64(cp->size), "time", (json_int_t)cp->time);

	if (cp->note != NULL && *cp->note != '\0')
		/* Version 2: the signed note is the checkpoint. */
		jsonw_set(o, "note", jsonw_str(cp->note));
	else {
		jsonw_set(o, "head_hash", jsonw_hex(cp->head, 32));
		jsonw_set(o, "signature", jsonw_hex(cp->sig, 64));
	}
	return line(fp, o);
}

int
auditfile_entry(FILE *fp, const struct audit_entry *e)
{
	struct audit_entry	 tmp = *e;
	const char		**s[AUDIT_NSTRINGS];
	json_t			*o;

	audit_entry_strings(&tmp, s);
	o = json_pack("{s:o,s:I,s:o}", "seq", jsonw_u64(e->seq),
	    "time", (json_int_t)e->time, "ref_seq", jsonw_u64(e->ref_seq));
	for (int i = 0; i < AUDIT_NSTRINGS; i++)
		jsonw_set(o, audit_string_names[i], jsonw_str(*s[i]));
	jsonw_set(o, "prev_hash", jsonw_hex(e->prev_hash, 32));
	jsonw_set(o, "hash", jsonw_hex(e->hash, 32));
	return line(fp, o);
}

/* The string at key k of m, or NULL when absent or not a string. */
static const char *
get(json_t *m, const char *k)
{
	return json_string_value(json_object_get(m, k));
}

/* A JSON integer >= 0 (a string or a fraction is malformed). */
static int
get_u64(json_t *m, const char *k, uint64_t *out)
{
	json_t *v = json_object_get(m, k);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int
get_hex(json_t *m, const char *k, unsigned char *out, size_t n)
{
	const char *s = get(m, k);

	return s == NULL ? -1 : hex_decode(s, out, n);
}

int
auditfile_verify(const char *path, EVP_PKEY *pub, struct audit_verify_result *res)
{
	return auditfile_verify_keys(path, &pub, pub != NULL, NULL, res);
}

int
auditfile_verify_keys(const char *path, EVP_PKEY **keys, size_t nkeys,
    const char *since, struct audit_verify_result *res)
{
	uint64_t		 want_entries = 0, got_entries = 0;
	struct audit_verifier	*v = NULL;
	unsigned char		 log_id[16];
	FILE			*fp;
	char			*line = NULL;
	size_t			 cap = 0, lineno = 0;
	ssize_t			 len;
	int			 bad = 0;

	memset(res, 0, sizeof(*res));
	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(res->why, sizeof(res->why), "%s: %s", path, strerror(errno));
		return -1;
	}
	while (!bad && (len = getline(&line, &cap, fp)) > 0) {
		json_error_t	 je;
		json_t		*m;

		lineno++;
		/* Strict JSON (issue 16): a key twice or text after the object
		 * is malformed, not silently read one way. */
		if ((m = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES,
		    &je)) == NULL) {
			snprintf(res->why, sizeof(res->why), "%s:%zu:%d: not valid JSON: "
			    "%s", path, lineno, je.column, je.text);
			bad = 1;
		} else if (!json_is_object(m)) {
			snprintf(res->why, sizeof(res->why), "%s:%zu: not a JSON object",
			    path, lineno);
			bad = 1;
		} else if (lineno == 1) {
			const char *f = get(m, "format");

			if (f == NULL || strcmp(f, "safeshare-log-export") != 0 ||
			    get_hex(m, "log_id", log_id, 16) == -1 ||
			    get_u64(m, "entries", &want_entries) == -1) {
				snprintf(res->why, sizeof(res->why), "%s:1: not a safeshare "
				    "log export", path);
				bad = 1;
			} else {
				char err[256];

				v = audit_verifier_new(nkeys > 0 ? keys[0] : NULL, log_id);
				for (size_t i = 1; i < nkeys; i++)
					audit_verifier_trust(v, keys[i]);
				if (since != NULL && audit_verifier_since(v, since, err,
				    sizeof(err)) == -1) {
					snprintf(res->why, sizeof(res->why), "%s", err);
					bad = 1;
				}
			}
		} else if (json_object_get(m, "checkpoint") != NULL) {
			struct audit_checkpoint cp;

			memset(&cp, 0, sizeof(cp));
			memcpy(cp.log_id, log_id, 16);
			cp.note = get(m, "note");
			if (get_u64(m, "checkpoint", &cp.id) == -1 ||
			    get_u64(m, "size", &cp.size) == -1 ||
			    get_u64(m, "time", (uint64_t *)&cp.time) == -1 ||
			    (cp.note == NULL && (get_hex(m, "head_hash", cp.head,
			    32) == -1 || get_hex(m, "signature", cp.sig, 64) == -1))) {
				snprintf(res->why, sizeof(res->why), "%s:%zu: malformed "
				    "checkpoint", path, lineno);
				bad = 1;
			} else
				audit_verifier_checkpoint(v, &cp);
		} else {
			struct audit_entry	 e;
			const char		**s[AUDIT_NSTRINGS];
			uint64_t		 t = 0;

			memset(&e, 0, sizeof(e));
			audit_entry_strings(&e, s);
			for (int i = 0; i < AUDIT_NSTRINGS; i++)
				if ((*s[i] = get(m, audit_string_names[i])) == NULL)
					bad = 1;
			if (bad || get_u64(m, "seq", &e.seq) == -1 ||
			    get_u64(m, "time", &t) == -1 ||
			    get_u64(m, "ref_seq", &e.ref_seq) == -1 ||
			    get_hex(m, "prev_hash", e.prev_hash, 32) == -1 ||
			    get_hex(m, "hash", e.hash, 32) == -1) {
				snprintf(res->why, sizeof(res->why), "%s:%zu: malformed "
				    "entry", path, lineno);
				bad = 1;
			} else {
				e.time = (int64_t)t;
				got_entries++;
				audit_verifier_entry(v, &e);
			}
		}
		json_decref(m);
	}
	free(line);
	fclose(fp);
	if (v == NULL && !bad) {
		snprintf(res->why, sizeof(res->why), "%s: empty", path);
		bad = 1;
	}
	if (!bad)
		audit_verifier_finish(v, res);
	/* Issue 13: entries cut from its end must not pass as a shorter export. */
	if (!bad && res->ok && got_entries != want_entries) {
		res->ok = 0;
		res->bad_seq = got_entries + 1;
		snprintf(res->why, sizeof(res->why), "the export's header says %llu "
		    "entries but it holds %llu: cut or padded",
		    (unsigned long long)want_entries, (unsigned long long)got_entries);
	}
	audit_verifier_free(v);
	if (bad)
		res->ok = 0;
	return res->ok ? 0 : -1;
}
