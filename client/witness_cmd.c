/*
 * safeshare audit witness, and the witnesses' co-signatures that audit
 * verify --witness checks: the outside checks of the disclosure log (D7,
 * issue 13). A witness keeps the latest checkpoint it has seen and fails
 * loudly when the log no longer extends it. The checks themselves are in
 * src/receipt.c and src/note.c; this file reads files, talks to the
 * daemon and prints. Receipts are in receipt_cmd.c.
 */
#include <errno.h>
#include <getopt.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "auditfile.h"
#include "receipt.h"
#include "safeshare/client.h"
#include "util.h"
#include "cli.h"

static volatile sig_atomic_t	witness_stop;

static void
witness_signal(int sig)
{
	(void)sig;
	witness_stop = 1;
}

static const char *const witness_help =
    "usage: safeshare audit witness --state FILE --pubkey KEY [--follow]\n"
    "         [--interval SECONDS] [--rounds N] [--cosign KEYFILE --name NAME]\n"
    "         [--json] [connection options]\n"
    "\n"
    "Keeps the disclosure log honest from outside (any agency of the\n"
    "protocol may run it). FILE holds the latest checkpoint this witness has\n"
    "seen. Each round asks the daemon for its current signed checkpoint and\n"
    "a consistency proof from the one in FILE, checks both, and only then\n"
    "replaces FILE. If the log was truncated, forked or rewritten it prints\n"
    "both checkpoints and exits 1, leaving FILE as it was (the evidence).\n"
    "--follow repeats every --interval seconds (default 10) until stopped\n"
    "or --rounds rounds are done. --cosign adds this witness's Ed25519\n"
    "signature (key name NAME) to the checkpoint kept in FILE; `audit verify\n"
    "--witness FILE --witness-key K --min-witnesses k` checks such files.\n"
    "Exit: 0 consistent, 1 inconsistent or bad state, 2 usage, 4 refused,\n"
    "5 no answer.\n";

static EVP_PKEY *
load_private(const char *path)
{
	EVP_PKEY	*k;
	FILE		*fp;
	char		 err[512];

	if (file_is_secret(path, err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		return NULL;
	}
	if ((fp = fopen(path, "r")) == NULL) {
		fprintf(stderr, "safeshare: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		fprintf(stderr, "safeshare: %s: not an Ed25519 private key (PEM)\n",
		    path);
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

struct witness {
	const char		*state;
	const char		*pubkey;
	EVP_PKEY		*cosign;
	const char		*name;
	int			 json;
	struct ss_client	*c;
};

/* One round. Returns an exit code; SS_EXIT_LOCAL when the log is inconsistent. */
static int
witness_round(struct witness *w)
{
	Safeshare__V1__ConsistencyProof	*pr = NULL;
	Safeshare__V1__Error		*e = NULL;
	struct note_checkpoint		 old, now;
	struct note_key			 key;
	uint8_t				 proof[MERKLE_MAX_PROOF][32];
	char				*held = NULL, *keep = NULL, err[512], why[512];
	char				 origin[NOTE_LINE_MAX];
	size_t				 len, i;
	int				 status, have_old = 0, absent, ret = SS_EXIT_LOCAL;
	enum receipt_verdict		 v = RECEIPT_CONSISTENT;

	/* No state file yet: the first round keeps what it sees. */
	if ((held = file_read(w->state, NOTE_MAX, &len, &absent, err,
	    sizeof(err))) == NULL && !absent) {
		fprintf(stderr, "safeshare: %s: %s\n", w->state, err);
		return SS_EXIT_LOCAL;
	}
	if (held != NULL) {
		if (note_origin_of(held, origin) == -1 ||
		    log_key_load(w->pubkey, origin, &key) == -1 ||
		    receipt_checkpoint(held, &key, 1, &old, err, sizeof(err)) == -1) {
			fprintf(stderr, "safeshare: %s: the checkpoint kept there "
			    "does not verify%s%s\n", w->state, held ? ": " : "",
			    held ? err : "");
			goto done;
		}
		have_old = 1;
	}
	if (ss_log_consistency(w->c, have_old ? old.size : 0, &pr, &e, &status,
	    err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		ret = SS_EXIT_NOANSWER;
		goto done;
	}
	if (e != NULL) {
		cli_refused(status, e);
		ret = SS_EXIT_REFUSED;
		goto done;
	}
	if (!have_old && (note_origin_of(pr->checkpoint, origin) == -1 ||
	    log_key_load(w->pubkey, origin, &key) == -1)) {
		fprintf(stderr, "safeshare: the daemon's checkpoint is malformed\n");
		goto done;
	}
	if (receipt_checkpoint(pr->checkpoint, &key, 1, &now, err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: the daemon's checkpoint does not "
		    "verify: %s\n", err);
		goto done;
	}
	if (have_old) {
		if (pr->n_proof > MERKLE_MAX_PROOF || pr->from_size != old.size ||
		    pr->to_size != now.size) {
			v = RECEIPT_REWRITTEN;
			snprintf(why, sizeof(why), "the daemon's proof is malformed");
		} else {
			for (i = 0; i < pr->n_proof && pr->proof[i].len == 32; i++)
				memcpy(proof[i], pr->proof[i].data, 32);
			if (i != pr->n_proof) {
				v = RECEIPT_REWRITTEN;
				snprintf(why, sizeof(why), "the daemon's proof is malformed");
			} else
				v = receipt_consistent(&old, &now,
				    (const uint8_t (*)[32])proof, pr->n_proof,
				    why, sizeof(why));
		}
		if (v != RECEIPT_CONSISTENT) {
			fprintf(stderr, "safeshare: WITNESS ALARM: %s\n", why);
			print_pair(stderr, "the checkpoint this witness kept", held,
			    pr->checkpoint);
			if (w->json) {
				jsonw_print(stdout, json_pack("{s:b,s:o,s:o,s:o,s:o}",
				    "ok", 0, "verdict", jsonw_str(receipt_verdict_name(v)),
				    "why", jsonw_str(why), "kept", jsonw_str(held),
				    "current", jsonw_str(pr->checkpoint)));
			}
			goto done;
		}
	}
	/* Consistent: keep the new checkpoint, co-signed if asked. */
	if (w->cosign != NULL) {
		if ((keep = note_sign(pr->checkpoint, strlen(pr->checkpoint), w->name,
		    w->cosign, err, sizeof(err))) == NULL) {
			fprintf(stderr, "safeshare: cosigning: %s\n", err);
			goto done;
		}
	} else
		keep = xstrdup(pr->checkpoint);
	if ((!have_old || now.size != old.size || w->cosign != NULL ||
	    strcmp(held, keep) != 0) &&
	    file_write_atomic(w->state, keep, err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s\n", err);
		goto done;
	}
	if (w->json)
		jsonw_print(stdout, json_pack("{s:b,s:o,s:o,s:o,s:b}", "ok", 1,
		    "log", jsonw_str(now.origin),
		    "from", jsonw_u64(have_old ? old.size : 0),
		    "size", jsonw_u64(now.size), "cosigned", w->cosign != NULL));
	else if (!have_old)
		printf("witness: first checkpoint of log %s: %llu entries%s\n",
		    now.origin, (unsigned long long)now.size,
		    w->cosign ? ", cosigned" : "");
	else
		printf("witness: log %s consistent, %llu -> %llu entries%s\n",
		    now.origin, (unsigned long long)old.size,
		    (unsigned long long)now.size, w->cosign ? ", cosigned" : "");
	fflush(stdout);
	ret = SS_EXIT_OK;
done:
	if (e != NULL)
		safeshare__v1__error__free_unpacked(e, NULL);
	if (pr != NULL)
		safeshare__v1__consistency_proof__free_unpacked(pr, NULL);
	free(held);
	free(keep);
	return ret;
}

int
cmd_witness(int argc, char *argv[])
{
	static const struct option longopts[] = {
		CONN_LONGOPTS,
		{ "state", required_argument, NULL, 's' },
		{ "pubkey", required_argument, NULL, 'k' },
		{ "follow", no_argument, NULL, 'f' },
		{ "interval", required_argument, NULL, 'i' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "cosign", required_argument, NULL, 'c' },
		{ "name", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 }
	};
	struct witness		 w;
	struct conn_opts	 o = { 0 };
	struct note_key		 wk;
	struct sigaction	 sa;
	const char		*cosign = NULL;
	char			*end, err[512], vkey[512];
	unsigned long		 interval = 10, rounds = 0, done;
	int			 ch, follow = 0, rc;

	memset(&w, 0, sizeof(w));
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (conn_opt(ch, &o, &w.json))
			continue;
		switch (ch) {
		case 's': w.state = optarg; break;
		case 'k': w.pubkey = optarg; break;
		case 'f': follow = 1; break;
		case 'i':
			interval = strtoul(optarg, &end, 10);
			if (*end != '\0' || interval == 0 || interval > 86400) {
				fprintf(stderr, "safeshare: --interval is 1..86400 seconds\n");
				return SS_EXIT_USAGE;
			}
			break;
		case 'r':
			rounds = strtoul(optarg, &end, 10);
			if (*end != '\0' || rounds == 0) {
				fprintf(stderr, "safeshare: --rounds is a positive number\n");
				return SS_EXIT_USAGE;
			}
			break;
		case 'c': cosign = optarg; break;
		case 'n': w.name = optarg; break;
		case O_HELP: fputs(witness_help, stdout); return SS_EXIT_OK;
		default: fputs(witness_help, stderr); return SS_EXIT_USAGE;
		}
	}
	if (w.state == NULL || w.pubkey == NULL || optind < argc ||
	    (cosign != NULL) != (w.name != NULL)) {
		fputs(witness_help, stderr);
		return SS_EXIT_USAGE;
	}
	if (cosign != NULL) {
		if ((w.cosign = load_private(cosign)) == NULL)
			return SS_EXIT_LOCAL;
		if (note_key_from_pkey(w.name, w.cosign, &wk, err, sizeof(err)) == -1 ||
		    note_key_format(&wk, vkey, sizeof(vkey)) == -1) {
			fprintf(stderr, "safeshare: --name %s: %s\n", w.name, err);
			EVP_PKEY_free(w.cosign);
			return SS_EXIT_USAGE;
		}
		if (!w.json)
			printf("witness: cosigning as %s\n", vkey);
	}
	if ((rc = connect_client(&o, &w.c)) != SS_EXIT_OK) {
		EVP_PKEY_free(w.cosign);
		return rc;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = witness_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (done = 0;;) {
		rc = witness_round(&w);
		done++;
		if (rc != SS_EXIT_OK || !follow || witness_stop ||
		    (rounds > 0 && done >= rounds))
			break;
		for (unsigned long s = 0; s < interval && !witness_stop; s++)
			sleep(1);
		if (witness_stop)
			break;
	}
	ss_client_free(w.c);
	EVP_PKEY_free(w.cosign);
	return rc;
}

/*
 * For audit verify --witness FILE --witness-key K --min-witnesses k:
 * reads the witnesses' state files, checks that each note is signed by
 * the log key (logkey, as --pubkey) and counts the distinct witness keys
 * whose cosignature verifies on at least one of them. The notes are
 * returned in *notes (the caller frees each and the array) so verify can
 * require the log to extend every one of them. Returns the count, or -1
 * after saying why.
 */
int
witness_cosigners(char *const *files, size_t nfiles, char *const *wkeys,
    size_t nwkeys, const char *logkey, char ***notes)
{
	struct note_key		*keys, lk;
	struct note_checkpoint	 cp;
	struct note		 nt;
	char			*text, err[512], origin[NOTE_LINE_MAX];
	int			*ok, *seen, count = 0;
	size_t			 i, j, len;

	keys = xcalloc(nwkeys ? nwkeys : 1, sizeof(*keys));
	ok = xcalloc(nwkeys ? nwkeys : 1, sizeof(*ok));
	seen = xcalloc(nwkeys ? nwkeys : 1, sizeof(*seen));
	*notes = xcalloc(nfiles ? nfiles : 1, sizeof(**notes));
	for (j = 0; j < nwkeys; j++)
		if (note_key_parse(wkeys[j], &keys[j], err, sizeof(err)) == -1) {
			fprintf(stderr, "safeshare: --witness-key %s: %s\n", wkeys[j], err);
			goto fail;
		}
	for (i = 0; i < nfiles; i++) {
		if ((text = file_read(files[i], NOTE_MAX, &len, NULL, err,
		    sizeof(err))) == NULL) {
			fprintf(stderr, "safeshare: %s: %s\n", files[i], err);
			goto fail;
		}
		(*notes)[i] = text;
		if (note_origin_of(text, origin) == -1 ||
		    log_key_load(logkey, origin, &lk) == -1 ||
		    receipt_checkpoint(text, &lk, 1, &cp, err, sizeof(err)) == -1 ||
		    note_parse(text, len, &nt, err, sizeof(err)) == -1) {
			fprintf(stderr, "safeshare: %s: not a checkpoint signed by the "
			    "log's key\n", files[i]);
			goto fail;
		}
		if (note_verify(&nt, keys, nwkeys, ok, err, sizeof(err)) == -1) {
			fprintf(stderr, "safeshare: %s: %s\n", files[i], err);
			goto fail;
		}
		for (j = 0; j < nwkeys; j++)
			if (ok[j] && !seen[j]) {
				seen[j] = 1;
				count++;
			}
	}
	free(keys);
	free(ok);
	free(seen);
	return count;
fail:
	for (i = 0; i < nfiles; i++)
		free((*notes)[i]);
	free(*notes);
	*notes = NULL;
	free(keys);
	free(ok);
	free(seen);
	return -1;
}

/* The tree of a log file's first entries, from the entries themselves. */
struct treescan {
	struct merkle_range	r;
	uint64_t		upto;
};

static int
tree_entry(const struct audit_entry *e, void *arg)
{
	struct treescan	*t = arg;
	uint8_t		 leaf[32];

	if (t->r.size >= t->upto)
		return 1;
	merkle_leaf(e->hash, leaf);
	merkle_range_append(&t->r, leaf, NULL, NULL);
	return 0;
}

/*
 * Whether an export extends the witnessed checkpoint note: verified with
 * the log's key as the checkpoint the auditor holds (--since), so its
 * first entries must rebuild the witnessed root. 0, or -1 with why.
 */
static int
export_extends(const char *exportpath, const char *logkey, const char *note,
    char *why, size_t whylen)
{
	struct audit_verify_result	 r;
	EVP_PKEY			*k;
	char				 err[512];
	int				 ret;

	if ((k = audit_load_public_key(logkey, err, sizeof(err))) == NULL) {
		snprintf(why, whylen, "%s", err);
		return -1;
	}
	if ((ret = auditfile_verify_keys(exportpath, &k, 1, note, &r)) == -1)
		snprintf(why, whylen, "%s", r.why);
	EVP_PKEY_free(k);
	return ret;
}

/*
 * Whether the log (a file, or the daemon's live log through c) extends the
 * checkpoint cp: offline by recomputing the tree of its first cp->size
 * entries (the entries' chain is verify's business), online with a
 * consistency proof to the daemon's latest checkpoint. 0, or -1 with why.
 */
static int
log_extends(const char *logpath, struct ss_client *c, const struct note_key *lk,
    const struct note_checkpoint *cp, char *why, size_t whylen)
{
	Safeshare__V1__ConsistencyProof	*pr = NULL;
	Safeshare__V1__Error		*e = NULL;
	struct note_checkpoint		 now;
	struct treescan			 t;
	struct audit			*a = NULL;
	uint8_t				 root[32], proof[MERKLE_MAX_PROOF][32];
	char				 err[512];
	size_t				 i;
	int				 status, ret = -1;

	if (logpath != NULL) {
		if (audit_open_reader(&a, logpath, err, sizeof(err)) == -1) {
			snprintf(why, whylen, "%s", err);
			return -1;
		}
		merkle_range_init(&t.r);
		t.upto = cp->size;
		if (audit_scan(a, 1, 0, tree_entry, &t, err, sizeof(err)) == -1)
			snprintf(why, whylen, "%s", err);
		else if (t.r.size < cp->size)
			snprintf(why, whylen, "the log has %llu entries, fewer than the "
			    "%llu witnessed", (unsigned long long)t.r.size,
			    (unsigned long long)cp->size);
		else {
			merkle_range_root(&t.r, root);
			if (memcmp(root, cp->root, 32) != 0)
				snprintf(why, whylen, "its first %llu entries are not the "
				    "ones witnessed", (unsigned long long)cp->size);
			else
				ret = 0;
		}
		audit_close(a);
		return ret;
	}
	if (ss_log_consistency(c, cp->size, &pr, &e, &status, err, sizeof(err)) == -1) {
		snprintf(why, whylen, "%s", err);
		return -1;
	}
	if (e != NULL) {
		snprintf(why, whylen, "refused (HTTP %d): %s", status, T(e->code));
		safeshare__v1__error__free_unpacked(e, NULL);
		return -1;
	}
	if (receipt_checkpoint(pr->checkpoint, lk, 1, &now, why, whylen) == 0) {
		for (i = 0; i < pr->n_proof && i < MERKLE_MAX_PROOF &&
		    pr->proof[i].len == 32; i++)
			memcpy(proof[i], pr->proof[i].data, 32);
		if (i != pr->n_proof)
			snprintf(why, whylen, "the daemon's proof is malformed");
		else if (receipt_consistent(cp, &now, (const uint8_t (*)[32])proof,
		    pr->n_proof, why, whylen) == RECEIPT_CONSISTENT)
			ret = 0;
	}
	safeshare__v1__consistency_proof__free_unpacked(pr, NULL);
	return ret;
}

int
witness_verify(char *const *files, size_t nfiles, char *const *wkeys,
    size_t nwkeys, unsigned min, const char *logkey, const char *logpath,
    const char *exportpath, struct ss_client *c, json_t *doc)
{
	struct note_checkpoint	 cp;
	struct note_key		 lk;
	char			**notes = NULL, why[512], origin[NOTE_LINE_MAX];
	size_t			 i;
	int			 count, bad = 0;

	if (logkey == NULL) {
		fprintf(stderr, "safeshare: --witness needs --pubkey (the log's key)\n");
		json_decref(doc);
		return SS_EXIT_USAGE;
	}
	if ((count = witness_cosigners(files, nfiles, wkeys, nwkeys, logkey,
	    &notes)) == -1) {
		/* The witnesses could not be read: the document says so. */
		if (doc != NULL) {
			jsonw_set(doc, "witnesses", json_pack("{s:b}", "ok", 0));
			jsonw_print(stdout, doc);
		}
		return SS_EXIT_LOCAL;
	}
	for (i = 0; i < nfiles; i++) {
		if (note_origin_of(notes[i], origin) == -1 ||
		    log_key_load(logkey, origin, &lk) == -1 ||
		    receipt_checkpoint(notes[i], &lk, 1, &cp, why, sizeof(why)) == -1 ||
		    (exportpath != NULL ? export_extends(exportpath, logkey, notes[i],
		    why, sizeof(why)) : log_extends(logpath, c, &lk, &cp, why,
		    sizeof(why))) == -1) {
			fprintf(stderr, "safeshare: %s: FAILED: the log does not extend "
			    "this witnessed checkpoint: %s\n", files[i], why);
			bad++;
		}
		free(notes[i]);
	}
	free(notes);
	if ((unsigned)count < min) {
		fprintf(stderr, "safeshare: FAILED: %d of the %zu witness keys "
		    "co-signed, %u required\n", count, nwkeys, min);
		bad++;
	}
	if (doc != NULL) {
		jsonw_set(doc, "witnesses", json_pack("{s:b,s:i,s:I,s:I}",
		    "ok", !bad, "cosigners", count, "required", (json_int_t)min,
		    "checkpoints", (json_int_t)nfiles));
		jsonw_print(stdout, doc);
	}
	else if (!bad)
		printf("witnesses: ok, %d witness key(s) co-signed (%u required); the "
		    "log extends all %zu witnessed checkpoint(s)\n", count, min, nfiles);
	return bad ? SS_EXIT_LOCAL : SS_EXIT_OK;
}
