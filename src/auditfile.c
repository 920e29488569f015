#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "auditfile.h"
#include "util.h"
#include "yamlutil.h"

static void
hex_field(FILE *fp, const char *name, const unsigned char *b, size_t n)
{
	char hex[2 * 64 + 1];

	hex_encode(b, n, hex);
	fprintf(fp, ",\"%s\":\"%s\"", name, hex);
}

void
auditfile_header(FILE *fp, const unsigned char log_id[16], uint64_t entries,
    uint64_t checkpoints, const char *public_pem)
{
	char hex[33];

	hex_encode(log_id, 16, hex);
	fprintf(fp, "{\"format\":\"safeshare-log-export\",\"version\":2,\"log_id\":\"%s\","
	    "\"entries\":%" PRIu64 ",\"checkpoints\":%" PRIu64 ",\"public_key\":", hex,
	    entries, checkpoints);
	json_str(fp, public_pem ? public_pem : "");
	fputs("}\n", fp);
}

void
auditfile_checkpoint(FILE *fp, const struct audit_checkpoint *cp)
{
	fprintf(fp, "{\"checkpoint\":%" PRIu64 ",\"size\":%" PRIu64 ",\"time\":%" PRId64,
	    cp->id, cp->size, cp->time);
	if (cp->note != NULL && *cp->note != '\0') {
		/* Version 2: the signed note is the checkpoint. */
		fputs(",\"note\":", fp);
		json_str(fp, cp->note);
	} else {
		hex_field(fp, "head_hash", cp->head, 32);
		hex_field(fp, "signature", cp->sig, 64);
	}
	fputs("}\n", fp);
}

void
auditfile_entry(FILE *fp, const struct audit_entry *e)
{
	struct audit_entry	 tmp = *e;
	const char		**s[AUDIT_NSTRINGS];

	audit_entry_strings(&tmp, s);
	fprintf(fp, "{\"seq\":%" PRIu64 ",\"time\":%" PRId64 ",\"ref_seq\":%" PRIu64,
	    e->seq, e->time, e->ref_seq);
	for (int i = 0; i < AUDIT_NSTRINGS; i++) {
		fprintf(fp, ",\"%s\":", audit_string_names[i]);
		json_str(fp, *s[i]);
	}
	hex_field(fp, "prev_hash", e->prev_hash, 32);
	hex_field(fp, "hash", e->hash, 32);
	fputs("}\n", fp);
}

static const char *
get(struct yfile *yf, yaml_node_t *m, const char *k)
{
	yaml_node_t *n = yget(yf, m, k);

	return n != NULL && n->type == YAML_SCALAR_NODE ?
	    (const char *)n->data.scalar.value : NULL;
}

static int
get_u64(struct yfile *yf, yaml_node_t *m, const char *k, uint64_t *out)
{
	const char	*s = get(yf, m, k);
	char		*end;

	if (s == NULL)
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return *s == '\0' || *end != '\0' || errno ? -1 : 0;
}

static int
get_hex(struct yfile *yf, yaml_node_t *m, const char *k, unsigned char *out, size_t n)
{
	const char *s = get(yf, m, k);

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
	struct diag		 d = { 0 };
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
		struct yfile	 yf;
		yaml_node_t	*m;

		lineno++;
		if (yfile_load_buffer(&yf, path, (unsigned char *)line, (size_t)len, &d) == -1 ||
		    (m = yfile_root(&yf))->type != YAML_MAPPING_NODE) {
			snprintf(res->why, sizeof(res->why), "%s:%zu: not a JSON object",
			    path, lineno);
			bad = 1;
		} else if (lineno == 1) {
			const char *f = get(&yf, m, "format");

			if (f == NULL || strcmp(f, "safeshare-log-export") != 0 ||
			    get_hex(&yf, m, "log_id", log_id, 16) == -1 ||
			    get_u64(&yf, m, "entries", &want_entries) == -1) {
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
		} else if (yget(&yf, m, "checkpoint") != NULL) {
			struct audit_checkpoint cp;

			memset(&cp, 0, sizeof(cp));
			memcpy(cp.log_id, log_id, 16);
			cp.note = get(&yf, m, "note");
			if (get_u64(&yf, m, "checkpoint", &cp.id) == -1 ||
			    get_u64(&yf, m, "size", &cp.size) == -1 ||
			    get_u64(&yf, m, "time", (uint64_t *)&cp.time) == -1 ||
			    (cp.note == NULL && (get_hex(&yf, m, "head_hash", cp.head,
			    32) == -1 || get_hex(&yf, m, "signature", cp.sig, 64) == -1))) {
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
				if ((*s[i] = get(&yf, m, audit_string_names[i])) == NULL)
					bad = 1;
			if (bad || get_u64(&yf, m, "seq", &e.seq) == -1 ||
			    get_u64(&yf, m, "time", &t) == -1 ||
			    get_u64(&yf, m, "ref_seq", &e.ref_seq) == -1 ||
			    get_hex(&yf, m, "prev_hash", e.prev_hash, 32) == -1 ||
			    get_hex(&yf, m, "hash", e.hash, 32) == -1) {
				snprintf(res->why, sizeof(res->why), "%s:%zu: malformed "
				    "entry", path, lineno);
				bad = 1;
			} else {
				e.time = (int64_t)t;
				got_entries++;
				audit_verifier_entry(v, &e);
			}
		}
		yfile_free(&yf);
		diag_free(&d);
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
