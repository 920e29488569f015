/*
 * safeshare audit export|show|verify: the whole disclosure log, from the
 * daemon over mutual TLS or offline from a log database or an export file
 * with only the public key (D7). Parsed and dispatched by audit_cmd.c;
 * witness co-signatures are checked in witness_cmd.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "audit_cmd.h"
#include "audit_pb.h"
#include "auditfile.h"
#include "cli.h"
#include "safeshare/client.h"
#include "util.h"

void
a_progress(uint64_t done, uint64_t total)
{
	if (isatty(2) && total > 0)
		fprintf(stderr, "\rexporting: %" PRIu64 "/%" PRIu64 " (%d%%)", done, total,
		    (int)(done * 100 / total));
}

/*
 * Closes an export file; werr is the errno of a write that failed (0:
 * none). A failed write or close (a full disk) is an error that says the
 * file is incomplete, never a silently cut export; -1 then.
 */
int
a_export_close(FILE *fp, const char *path, int werr)
{
	if (werr == 0 && ferror(fp))
		werr = EIO;
	errno = 0;
	if (fclose(fp) != 0 && werr == 0)
		werr = errno != 0 ? errno : EIO;
	if (werr == 0)
		return 0;
	fprintf(stderr, "safeshare: %s: %s: the export is incomplete\n", path,
	    strerror(werr));
	return -1;
}

int
a_export_online(struct ss_client *c, struct aopts *o)
{
	Safeshare__V1__CheckpointList	*cl;
	Safeshare__V1__AuditQuery	 q;
	Safeshare__V1__AuditEntries	*r;
	unsigned char			 id[16] = { 0 };
	uint64_t			 n = 0;
	FILE				*fp;
	int				 rc, werr = 0;

	if ((rc = a_call(c, "/v1/audit/checkpoints", NULL,
	    &safeshare__v1__checkpoint_list__descriptor, (ProtobufCMessage **)&cl)) != SS_EXIT_OK)
		return rc;
	if ((fp = fopen(o->out, "w")) == NULL) {
		perror(o->out);
		safeshare__v1__checkpoint_list__free_unpacked(cl, NULL);
		return SS_EXIT_LOCAL;
	}
	if (cl->log_id.len == 16)
		memcpy(id, cl->log_id.data, 16);
	safeshare__v1__audit_query__init(&q);
	q.limit = 1000;
	/* The first page tells the log's size, which the header records. */
	if ((rc = a_call(c, "/v1/audit/query", &q.base,
	    &safeshare__v1__audit_entries__descriptor, (ProtobufCMessage **)&r)) != SS_EXIT_OK) {
		fclose(fp);
		safeshare__v1__checkpoint_list__free_unpacked(cl, NULL);
		return rc;
	}
	if (auditfile_header(fp, id, r->log_size, cl->n_checkpoints,
	    cl->public_key_pem) == -1)
		werr = errno;
	for (size_t i = 0; i < cl->n_checkpoints && werr == 0; i++) {
		struct audit_checkpoint cp;

		memset(&cp, 0, sizeof(cp));
		memcpy(cp.log_id, id, 16);
		cp.id = cl->checkpoints[i]->id;
		cp.size = cl->checkpoints[i]->size;
		cp.time = cl->checkpoints[i]->time;
		if (cl->checkpoints[i]->head_hash.len == 32)
			memcpy(cp.head, cl->checkpoints[i]->head_hash.data, 32);
		if (cl->checkpoints[i]->signature.len == 64)
			memcpy(cp.sig, cl->checkpoints[i]->signature.data, 64);
		cp.note = cl->checkpoints[i]->note;
		if (auditfile_checkpoint(fp, &cp) == -1)
			werr = errno;
	}
	safeshare__v1__checkpoint_list__free_unpacked(cl, NULL);
	for (;;) {
		for (size_t i = 0; i < r->n_entries && werr == 0; i++) {
			struct audit_entry e;

			audit_entry_from_pb(r->entries[i], &e);
			if (auditfile_entry(fp, &e) == -1)
				werr = errno;
			n++;
		}
		a_progress(n, r->log_size);
		q.after_seq = r->next_after_seq;
		safeshare__v1__audit_entries__free_unpacked(r, NULL);
		/* A write failed: no more pages, a_export_close() says so. */
		if (q.after_seq == 0 || werr != 0)
			break;
		if ((rc = a_call(c, "/v1/audit/query", &q.base,
		    &safeshare__v1__audit_entries__descriptor, (ProtobufCMessage **)&r)) != SS_EXIT_OK) {
			fclose(fp);
			return rc;
		}
	}
	if (a_export_close(fp, o->out, werr) == -1)
		return SS_EXIT_LOCAL;
	if (isatty(2))
		fputc('\n', stderr);
	printf("exported %" PRIu64 " entries to %s\n", n, o->out);
	return SS_EXIT_OK;
}

static int
print_offline(const struct audit_entry *e, void *arg)
{
	struct aopts	*o = arg;

	/* Non-zero stops the scan: stdout failed (main() says so). */
	return a_print_entry(e, o->json ? &o->seq : NULL) == -1;
}

/* Non-zero stops the walk: the file failed a write. */
int
a_export_cp(const struct audit_checkpoint *cp, void *arg)
{
	struct a_exp *x = arg;

	if (auditfile_checkpoint(x->fp, cp) == -1)
		x->werr = errno;
	return x->werr != 0;
}

int
a_export_entry(const struct audit_entry *e, void *arg)
{
	struct a_exp *x = arg;

	if (auditfile_entry(x->fp, e) == -1) {
		x->werr = errno;
		return 1;
	}
	if (++x->n % 10000 == 0)
		a_progress(x->n, x->total);
	return 0;
}

static int
count_cp(const struct audit_checkpoint *cp, void *arg)
{
	(*(uint64_t *)arg)++;
	return 0;
}

/*
 * The subject index disagrees with the log, or could not be checked:
 * subject-access reports may be wrong (D17).
 */
static int
index_bad(const struct audit_verify_result *r)
{
	return r->index_error ||
	    (r->index_checked && (r->index_missing > 0 || r->index_extra > 0));
}

void
a_print_result(const struct audit_verify_result *r, const char *what, const char *ix,
    struct aopts *o)
{
	if (o->json) {
		json_t *v = json_pack("{s:b,s:o,s:o,s:b,s:o,s:o,s:o}",
		    "ok", r->ok && !index_bad(r), "entries", jsonw_u64(r->entries),
		    "checkpoints", jsonw_u64(r->checkpoints),
		    "signatures_checked", r->signatures_checked,
		    "bad_seq", jsonw_u64(r->bad_seq),
		    "bad_checkpoint", jsonw_u64(r->bad_checkpoint),
		    "why", jsonw_str(r->why));

		if (r->index_error)
			jsonw_set(v, "index", json_pack("{s:b,s:o}", "ok", 0,
			    "error", jsonw_str(r->index_why)));
		else if (r->index_checked)
			jsonw_set(v, "index", json_pack("{s:b,s:o,s:o,s:o}",
			    "ok", !index_bad(r), "upto", jsonw_u64(r->index_upto),
			    "missing", jsonw_u64(r->index_missing),
			    "extra", jsonw_u64(r->index_extra)));
		/* With witnesses, their verdict joins this one document. */
		if (o->nwitness > 0 || o->min_witnesses > 0)
			o->verdict = v;
		else
			jsonw_print(stdout, v);
		return;
	}
	if (r->ok)
		printf("%s: ok, %" PRIu64 " entries, chain intact, %" PRIu64 " signed "
		    "checkpoints verified%s\n", what, r->entries, r->checkpoints,
		    r->signatures_checked ? "" : " (NOT signed: the log has no "
		    "checkpoints and no key was given; only the chain was checked)");
	else if (r->bad_seq == 0 && r->bad_checkpoint != 0)
		fprintf(stderr, "%s: FAILED at checkpoint %" PRIu64 ": %s\n", what,
		    r->bad_checkpoint, r->why);
	else
		fprintf(stderr, "%s: FAILED at entry %" PRIu64 ": %s\n", what, r->bad_seq,
		    r->why);
	if (r->index_error)
		fprintf(stderr, "%s: FAILED: the subject index could not be checked: %s\n",
		    ix, r->index_why);
	else if (index_bad(r))
		fprintf(stderr, "%s: FAILED: the subject index disagrees with the log up "
		    "to entry %" PRIu64 " (%" PRIu64 " entries missing, %" PRIu64 " rows "
		    "the log does not have); delete the index file: the daemon builds it "
		    "again\n", ix, r->index_upto, r->index_missing, r->index_extra);
	else if (r->index_checked)
		printf("%s: ok, the subject index agrees with the log up to entry %"
		    PRIu64 "\n", ix, r->index_upto);
}

/* Reads a checkpoint note the auditor kept (--since); the caller frees it. */
static char *
read_note(const char *path, char *err, size_t errlen)
{
	FILE	*fp;
	char	*buf = xcalloc(AUDIT_NOTE_MAX + 2, 1);
	size_t	 n;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(buf);
		return NULL;
	}
	n = fread(buf, 1, AUDIT_NOTE_MAX + 1, fp);
	fclose(fp);
	if (n == 0 || n > AUDIT_NOTE_MAX) {
		snprintf(err, errlen, "%s: not a checkpoint note (empty, or over %d "
		    "bytes)", path, AUDIT_NOTE_MAX);
		free(buf);
		return NULL;
	}
	return buf;
}

int
a_offline(struct aopts *o, const char *sub)
{
	struct audit_verify_result	 r;
	struct audit			*a = NULL;
	EVP_PKEY			*pub = NULL, *keys[MAX_PUBKEYS];
	char				 err[512], *since = NULL;
	size_t				 nkeys = 0;
	int				 rc = SS_EXIT_OK;

	/* The first --pubkey starts the chain of keys; the others are trusted. */
	for (size_t i = 0; i < o->npubkeys; i++) {
		if ((keys[nkeys] = audit_load_public_key(o->pubkeys[i], err,
		    sizeof(err))) == NULL) {
			fprintf(stderr, "safeshare: %s\n", err);
			rc = SS_EXIT_LOCAL;
			goto done;
		}
		nkeys++;
	}
	pub = nkeys > 0 ? keys[0] : NULL;
	if (o->since != NULL && (since = read_note(o->since, err, sizeof(err))) == NULL) {
		fprintf(stderr, "safeshare: %s\n", err);
		rc = SS_EXIT_LOCAL;
		goto done;
	}
	/* The log on PostgreSQL (issue 19): audit_pg_cmd.c. */
	if (o->pg != NULL) {
		rc = a_postgresql(o, sub, keys, nkeys, since);
		goto done;
	}
	if (strcmp(sub, "verify") == 0 && o->export != NULL) {
		/* The verifier fails a log with checkpoints and no key: no pass. */
		auditfile_verify_keys(o->export, keys, nkeys, since, &r);
		a_print_result(&r, o->export, NULL, o);
		rc = r.ok ? SS_EXIT_OK : SS_EXIT_LOCAL;
		goto done;
	}
	if (audit_open_reader(&a, o->log, err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		rc = SS_EXIT_LOCAL;
		goto done;
	}
	if (strcmp(sub, "show") == 0) {
		uint64_t size = audit_size(a);
		uint64_t from = o->last > 0 && o->last < size ? size - o->last + 1 : 1;

		if (o->json)
			jsonw_seq_begin(&o->seq, stdout);
		if (audit_scan(a, from, 0, print_offline, o, err, sizeof(err)) == -1) {
			fprintf(stderr, "safeshare: %s\n", err);
			rc = SS_EXIT_LOCAL;
		}
		if ((o->json && jsonw_seq_end(&o->seq) == -1) || ferror(stdout))
			rc = SS_EXIT_LOCAL;
	} else if (strcmp(sub, "verify") == 0) {
		struct audit_verifier	*v;
		unsigned char		 id[16];
		char			 ix[4200];

		audit_log_id(a, id);
		v = audit_verifier_new(pub, id);
		for (size_t i = 1; i < nkeys; i++)
			audit_verifier_trust(v, keys[i]);
		if (since != NULL && audit_verifier_since(v, since, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "safeshare: %s\n", err);
			audit_verifier_free(v);
			rc = SS_EXIT_LOCAL;
			goto done;
		}
		audit_verify_with(a, v, &r);
		/*
		 * The subject index beside the log is outside the chain, and
		 * subject-access reports (D17) read it: it must agree.
		 */
		audit_verify_index(a, &r);	/* a failure is index_bad() */
		snprintf(ix, sizeof(ix), "%s-subjects", o->log);
		a_print_result(&r, o->log, ix, o);
		if (!r.ok || index_bad(&r))
			rc = SS_EXIT_LOCAL;
	} else {	/* export */
		struct a_exp	 x = { NULL, 0, audit_size(a), 0 };
		unsigned char	 id[16];
		uint64_t	 ncp = 0;

		if (o->out == NULL || (x.fp = fopen(o->out, "w")) == NULL) {
			fprintf(stderr, "safeshare: export needs --out FILE\n");
			rc = o->out == NULL ? SS_EXIT_USAGE : SS_EXIT_LOCAL;
		} else {
			audit_log_id(a, id);
			audit_checkpoints(a, count_cp, &ncp, NULL, 0);
			if (auditfile_header(x.fp, id, x.total, ncp, NULL) == -1)
				x.werr = errno;
			if (x.werr == 0 && (audit_checkpoints(a, a_export_cp, &x, err,
			    sizeof(err)) == -1 || (x.werr == 0 && audit_scan(a, 1, 0,
			    a_export_entry, &x, err, sizeof(err)) == -1))) {
				fprintf(stderr, "safeshare: export failed: %s\n", err);
				fclose(x.fp);
				rc = SS_EXIT_LOCAL;
			} else if (a_export_close(x.fp, o->out, x.werr) == -1)
				rc = SS_EXIT_LOCAL;
			else {
				if (isatty(2))
					fputc('\n', stderr);
				printf("exported %" PRIu64 " entries and %" PRIu64 " checkpoints "
				    "to %s\n", x.n, ncp, o->out);
			}
		}
	}
done:
	audit_close(a);
	for (size_t i = 0; i < nkeys; i++)
		EVP_PKEY_free(keys[i]);
	free(since);
	return rc;
}

int
a_verify_online(struct ss_client *c, struct aopts *o)
{
	Safeshare__V1__VerifyResult	*v;
	struct audit_verify_result	 r;
	int				 rc;

	if ((rc = a_call(c, "/v1/audit/verify", NULL, &safeshare__v1__verify_result__descriptor,
	    (ProtobufCMessage **)&v)) != SS_EXIT_OK)
		return rc;
	memset(&r, 0, sizeof(r));
	r.ok = v->ok;
	r.entries = v->entries;
	r.checkpoints = v->checkpoints;
	r.bad_seq = v->bad_seq;
	r.bad_checkpoint = v->bad_checkpoint;
	r.signatures_checked = v->signatures_checked;
	r.index_checked = v->index_checked;
	r.index_upto = v->index_upto;
	r.index_missing = v->index_missing;
	r.index_extra = v->index_extra;
	r.index_error = v->index_error;
	snprintf(r.index_why, sizeof(r.index_why), "%s", v->index_why);
	snprintf(r.why, sizeof(r.why), "%s", v->why);
	a_print_result(&r, "disclosure log (verified by the daemon)",
	    "subject index (checked by the daemon)", o);
	safeshare__v1__verify_result__free_unpacked(v, NULL);
	return r.ok && !index_bad(&r) ? SS_EXIT_OK : SS_EXIT_LOCAL;
}

