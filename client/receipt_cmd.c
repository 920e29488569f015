/*
 * safeshare receipt verify|check: the outside checks of the disclosure
 * log (D7, D15-D17, issue 13). A receipt proves one entry is in a signed
 * checkpoint; a consistency proof from the daemon shows that the log
 * today still extends that checkpoint. The checks themselves are in
 * src/receipt.c; this file reads files, talks to the daemon and prints.
 * It also holds the helpers the witness (witness_cmd.c) shares: the log
 * key, a checkpoint's origin, atomic writes (cli.h).
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
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

/*
 * The log's key from --pubkey: a verifier key string (name+id+key), or a
 * PEM public key file, whose key name is then the log's origin (the
 * daemon signs its checkpoints under the name "safeshare/<log id>").
 */
int
log_key_load(const char *arg, const char *origin, struct note_key *k)
{
	EVP_PKEY	*pub;
	char		 err[512];

	if (strchr(arg, '+') != NULL && access(arg, F_OK) == -1) {
		if (note_key_parse(arg, k, err, sizeof(err)) == -1) {
			fprintf(stderr, "safeshare: --pubkey %s: %s\n", arg, err);
			return -1;
		}
		return 0;
	}
	if ((pub = audit_load_public_key(arg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "safeshare: %s\n", err);
		return -1;
	}
	if (note_key_from_pkey(origin, pub, k, err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: --pubkey %s: %s\n", arg, err);
		EVP_PKEY_free(pub);
		return -1;
	}
	EVP_PKEY_free(pub);
	return 0;
}

/* The origin a checkpoint note names, before its signature is checked. */
int
note_origin_of(const char *note, char origin[NOTE_LINE_MAX])
{
	struct note		nt;
	struct note_checkpoint	c;
	char			why[256];

	if (note_parse(note, strlen(note), &nt, why, sizeof(why)) == -1 ||
	    note_checkpoint_parse(nt.body, nt.bodylen, &c, why, sizeof(why)) == -1)
		return -1;
	memcpy(origin, c.origin, NOTE_LINE_MAX);
	return 0;
}

/*
 * The keys a receipt may be checked with (issue 13 item 7): --pubkey as
 * given, up to 8 like audit verify's, the first starting the chain of
 * keys and the others trusted as they are; receipt check adds the keys
 * the log's rotations name. The arrays are the caller's.
 */
#define RECEIPT_ARGS_MAX	8
#define RECEIPT_CHAIN_MAX	1024	/* rotations followed, 64 a reply */

struct keyset {
	const char	*arg[RECEIPT_ARGS_MAX];
	size_t		 narg;
	struct note_key	 k[RECEIPT_ARGS_MAX + RECEIPT_CHAIN_MAX];
	const char	*what[RECEIPT_ARGS_MAX + RECEIPT_CHAIN_MAX];
	size_t		 n;
	char		 rot[RECEIPT_CHAIN_MAX][48];	/* "rotation at checkpoint N" */
};

/* The --pubkey keys under a log's origin, into ks->k[0..narg). 0 or -1. */
static int
keyset_load(struct keyset *ks, const char *origin)
{
	size_t i;

	for (i = 0; i < ks->narg; i++) {
		if (log_key_load(ks->arg[i], origin, &ks->k[i]) == -1)
			return -1;
		ks->what[i] = ks->arg[i];
	}
	ks->n = ks->narg;
	return 0;
}

/* A key's id, 8 hex digits, for messages. */
static const char *
key_id_hex(const struct note_key *k, char out[9])
{
	hex_encode(k->id, 4, out);
	out[8] = '\0';
	return out;
}

/*
 * Reads one receipt file and checks it offline with keys[0..n): 0 with
 * *which the index of the key that signed its checkpoint, or -1 after
 * saying why.
 */
static int
receipt_check_keys(const char *path, struct receipt *rc,
    const struct note_key *keys, size_t n, struct note_checkpoint *cp,
    size_t *which)
{
	char	err[512];
	size_t	i;

	snprintf(err, sizeof(err), "no key given");
	for (i = 0; i < n; i++)
		if (receipt_verify(rc, &keys[i], 1, cp, err, sizeof(err)) == 0) {
			*which = i;
			return 0;
		}
	fprintf(stderr, "safeshare: %s: FAILED: %s\n", path, err);
	return -1;
}

/* Reads and parses one receipt file; its checkpoint's origin. 0 or -1. */
static int
receipt_read(const char *path, struct receipt *rc, char origin[NOTE_LINE_MAX])
{
	char	*text, err[512];
	size_t	 len;

	if ((text = file_read(path, RECEIPT_MAX, &len, NULL, err, sizeof(err))) == NULL) {
		fprintf(stderr, "safeshare: %s: %s\n", path, err);
		return -1;
	}
	if (receipt_parse(text, len, rc, err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s: %s\n", path, err);
		free(text);
		return -1;
	}
	free(text);
	if (note_origin_of(rc->checkpoint, origin) == -1) {
		fprintf(stderr, "safeshare: %s: the checkpoint is malformed\n", path);
		receipt_free(rc);
		return -1;
	}
	return 0;
}

/* Reads and checks one receipt file offline; 0, or -1 after saying why. */
static int
receipt_load(const char *path, struct keyset *ks, struct receipt *rc,
    struct note_checkpoint *cp, size_t *which)
{
	char	origin[NOTE_LINE_MAX];

	if (receipt_read(path, rc, origin) == -1)
		return -1;
	if (keyset_load(ks, origin) == -1 ||
	    receipt_check_keys(path, rc, ks->k, ks->n, cp, which) == -1) {
		receipt_free(rc);
		return -1;
	}
	return 0;
}

static int
has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n > m && strcmp(s + n - m, suf) == 0;
}

/* Writes a file whole or not at all: a temporary file, fsync, rename. */
int
file_write_atomic(const char *path, const char *text, char *err, size_t errlen)
{
	char	 tmp[4096];
	FILE	*fp;
	int	 ok;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	if ((fp = fopen(tmp, "w")) == NULL) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	ok = fputs(text, fp) >= 0 && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
	ok = fclose(fp) == 0 && ok;
	if (!ok || rename(tmp, path) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Prints both checkpoints of a failed comparison, for the record. */
void
print_pair(FILE *fp, const char *held_what, const char *held, const char *now)
{
	fprintf(fp, "--- %s:\n%s--- the log's current checkpoint:\n%s---\n",
	    held_what, held, now);
}

static const char *const receipt_help =
    "usage: safeshare receipt verify FILE... --pubkey KEY [--pubkey KEY...] [--json]\n"
    "       safeshare receipt check DIR --pubkey KEY [--pubkey KEY...] [--json]\n"
    "           [connection options]\n"
    "\n"
    "verify: checks receipts offline (no server): the checkpoint is signed\n"
    "by one of the keys given, and the entry's inclusion proof leads to its\n"
    "root; it says which key signed.\n"
    "check: asks the daemon for the log's key rotations (64 a reply, page\n"
    "after page, up to 1,024) and follows the chain of keys from the first\n"
    "KEY (each rotation must be signed by the key in force before it, or a\n"
    "trusted one; a rotation signed by another key fails, named), verifies\n"
    "every *.receipt in DIR with the chain's keys, then asks for a\n"
    "consistency proof from each receipt's checkpoint to the current one,\n"
    "which the key the chain ends at must have signed.\n"
    "If the log no longer contains what a receipt proved (truncated,\n"
    "forked or rewritten), it says so and prints both checkpoints.\n"
    "--json: an array, one object per receipt; a check that stops before\n"
    "the receipts (the chain of keys fails, the daemon refuses or does not\n"
    "answer) prints one object {\"ok\":false,\"stage\":...,\"why\":...}.\n"
    "KEY is the log's public key (PEM, from `safeshare audit checkpoints`\n"
    "or the daemon's key) or its verifier key string name+id+base64; up to\n"
    "8, as audit verify: the first starts the chain of keys, the others are\n"
    "trusted as they are. After a rotation the first key alone is enough.\n"
    "Receipts are kept by `safeshare request --receipts DIR`.\n"
    "Exit: 0 all hold, 1 a receipt or a rotation failed, 2 usage, 4 refused,\n"
    "5 no answer.\n";

static int
receipt_verify_files(int n, char *files[], struct keyset *ks, int json)
{
	struct receipt		rc;
	struct note_checkpoint	cp;
	struct jsonw_seq	seq;
	char			id[9];
	size_t			which = 0;
	int			i, bad = 0;

	if (json)
		jsonw_seq_begin(&seq, stdout);
	for (i = 0; i < n; i++) {
		int ok = receipt_load(files[i], ks, &rc, &cp, &which) == 0;

		if (json) {
			json_t *o = json_pack("{s:o,s:b}", "file", jsonw_str(files[i]),
			    "ok", ok);

			if (ok) {
				jsonw_set(o, "seq", jsonw_u64(rc.seq));
				jsonw_set(o, "log", jsonw_str(cp.origin));
				jsonw_set(o, "size", jsonw_u64(cp.size));
				jsonw_set(o, "key", jsonw_str(ks->what[which]));
				jsonw_set(o, "key_id", jsonw_str(key_id_hex(
				    &ks->k[which], id)));
			}
			jsonw_seq_add(&seq, o);
		} else if (ok)
			printf("%s: ok, entry %llu is in log %s of %llu entries, "
			    "signed by %s (key id %s)\n", files[i],
			    (unsigned long long)rc.seq, cp.origin,
			    (unsigned long long)cp.size, ks->what[which],
			    key_id_hex(&ks->k[which], id));
		if (ok)
			receipt_free(&rc);
		else
			bad++;
	}
	if (json)
		jsonw_seq_end(&seq);
	return bad ? SS_EXIT_LOCAL : SS_EXIT_OK;
}

/*
 * Follows the chain of keys through the log's rotations (issue 13 item
 * 7): notes[] are the checkpoints naming a next key, oldest first. Each
 * must be signed by the key in force (ks->k[cur], at first the first
 * --pubkey) or a trusted one (the other --pubkey keys); its next key is
 * added to ks and is in force after it. On 0, *cur is the key the chain
 * ends at; -1 after saying which rotation failed, on stderr and in one
 * line into fail (for --json).
 */
static int
keys_follow(struct keyset *ks, char *const *notes, size_t n, size_t *cur,
    char *fail, size_t faillen)
{
	struct note_checkpoint	 cp;
	struct note_key		 pair[RECEIPT_ARGS_MAX];
	char			 why[512], id[9];
	const char		*nk;
	size_t			 i, j;

	*cur = 0;
	if (n > RECEIPT_CHAIN_MAX) {
		snprintf(fail, faillen, "the log names %zu key rotations, more "
		    "than %d", n, RECEIPT_CHAIN_MAX);
		fprintf(stderr, "safeshare: %s\n", fail);
		return -1;
	}
	for (i = 0; i < n; i++) {
		/* The key in force, then the trusted keys. */
		pair[0] = ks->k[*cur];
		for (j = 1; j < ks->narg; j++)
			pair[j] = ks->k[j];
		if (receipt_checkpoint(notes[i], pair, ks->narg, &cp, why,
		    sizeof(why)) == -1) {
			snprintf(fail, faillen, "the log's key rotation %zu is not "
			    "signed by the key in force before it (%s, key id %s) "
			    "nor by a trusted key: forged, or the wrong first key: "
			    "%s", i + 1, ks->what[*cur], key_id_hex(&ks->k[*cur],
			    id), why);
			fprintf(stderr, "safeshare: KEY ROTATION FAILED: %s\n--- the "
			    "rotation's checkpoint:\n%s---\n", fail, notes[i]);
			return -1;
		}
		for (nk = NULL, j = 0; j < cp.next && nk == NULL; j++)
			if (strncmp(cp.ext[j], "next-key ", 9) == 0)
				nk = cp.ext[j] + 9;
		if (nk == NULL ||
		    note_key_parse(nk, &ks->k[ks->n], why, sizeof(why)) == -1) {
			snprintf(fail, faillen, "the log's key rotation %zu names no "
			    "usable next key%s%s", i + 1, nk ? ": " : "",
			    nk ? why : "");
			fprintf(stderr, "safeshare: KEY ROTATION FAILED: %s\n", fail);
			return -1;
		}
		snprintf(ks->rot[i], sizeof(ks->rot[i]), "the key named at "
		    "checkpoint size %llu", (unsigned long long)cp.size);
		ks->what[ks->n] = ks->rot[i];
		*cur = ks->n++;
	}
	return 0;
}

/*
 * The log's key rotations, 64 a reply (daemon/logproof.c), asked for page
 * after page: kp->page[] are the replies, the last one carrying the log's
 * checkpoint now, and kp->note[] points into them, oldest first. The
 * caller frees the pages (key_pages_free()). 0, or an exit status after
 * saying why on stderr and in one line into fail (for --json).
 */
#define KEY_PAGES_MAX	(RECEIPT_CHAIN_MAX / 64 + 1)

struct key_pages {
	Safeshare__V1__ConsistencyProof	*page[KEY_PAGES_MAX];
	size_t				 npages;
	char				*note[KEY_PAGES_MAX * 64];
	size_t				 n;
};

static int
key_pages_get(struct ss_client *c, struct key_pages *kp, char *fail,
    size_t faillen)
{
	Safeshare__V1__ConsistencyProof	*pr;
	Safeshare__V1__Error		*e = NULL;
	struct note			 nt;
	struct note_checkpoint		 cp;
	unsigned long long		 after = 0;
	char				 err[512];
	const char			*last;
	int				 status;

	for (;;) {
		if (kp->npages == KEY_PAGES_MAX) {
			snprintf(fail, faillen, "the log names more than %d key "
			    "rotations", RECEIPT_CHAIN_MAX);
			fprintf(stderr, "safeshare: %s\n", fail);
			return SS_EXIT_LOCAL;
		}
		if (ss_log_consistency_keys_after(c, 0, after, &pr, &e, &status,
		    err, sizeof(err)) == -1) {
			snprintf(fail, faillen, "%s", err);
			fprintf(stderr, "safeshare: %s\n", err);
			return SS_EXIT_NOANSWER;
		}
		if (e != NULL) {
			cli_refused(status, e);
			snprintf(fail, faillen, "refused (HTTP %d): %s: %s", status,
			    e->code != NULL ? e->code : "", e->message != NULL ?
			    e->message : "");
			safeshare__v1__error__free_unpacked(e, NULL);
			return SS_EXIT_REFUSED;
		}
		kp->page[kp->npages++] = pr;
		if (pr->n_key_notes > 64)
			goto malformed;
		for (size_t i = 0; i < pr->n_key_notes; i++)
			kp->note[kp->n++] = pr->key_notes[i];
		if (!pr->key_notes_more)
			return 0;
		/* The next page: after the tree size of this one's last rotation. */
		last = pr->n_key_notes > 0 ? pr->key_notes[pr->n_key_notes - 1] :
		    NULL;
		if (last == NULL ||
		    note_parse(last, strlen(last), &nt, err, sizeof(err)) == -1 ||
		    note_checkpoint_parse(nt.body, nt.bodylen, &cp, err,
		    sizeof(err)) == -1 || cp.size <= after)
			goto malformed;
		after = cp.size;
	}
malformed:
	snprintf(fail, faillen, "the daemon's list of key rotations is malformed");
	fprintf(stderr, "safeshare: %s\n", fail);
	return SS_EXIT_LOCAL;
}

static void
key_pages_free(struct key_pages *kp)
{
	for (size_t i = 0; i < kp->npages; i++)
		safeshare__v1__consistency_proof__free_unpacked(kp->page[i], NULL);
	free(kp);
}

static int
receipt_check_dir(const char *dir, struct keyset *ks, struct conn_opts *co,
    int json)
{
	Safeshare__V1__ConsistencyProof	*pr = NULL, *head;
	Safeshare__V1__Error		*e = NULL;
	struct ss_client		*c = NULL;
	struct key_pages		*kp = xcalloc(1, sizeof(*kp));
	struct receipt			 rc;
	struct note_checkpoint		 cp, now;
	struct note_key			 last[RECEIPT_ARGS_MAX];
	struct dirent			*de;
	DIR				*d;
	uint8_t				 proof[MERKLE_MAX_PROOF][32];
	char				 path[4096], err[512], why[512], fail[1024];
	char				 origin[NOTE_LINE_MAX], id[9];
	const char			*stage = NULL;
	size_t				 i, nfiles = 0, nbad = 0, cur, which;
	int				 rc_exit = SS_EXIT_OK, status, ok;
	enum receipt_verdict		 v;
	struct jsonw_seq		 seq;
	json_t				*o;

	if ((d = opendir(dir)) == NULL) {
		snprintf(fail, sizeof(fail), "%s: %s", dir, strerror(errno));
		fprintf(stderr, "safeshare: %s\n", fail);
		if (json)
			jsonw_print(stdout, json_pack("{s:b,s:s,s:o}", "ok", 0,
			    "stage", "dir", "why", jsonw_str(fail)));
		free(kp);
		return SS_EXIT_LOCAL;
	}
	if ((rc_exit = connect_client(co, &c)) != SS_EXIT_OK) {
		snprintf(fail, sizeof(fail), "no connection to the daemon");
		stage = "connect";
		goto out;
	}
	/*
	 * The log's key rotations first: the chain from the first key to
	 * the key that signs its checkpoints today.
	 */
	if ((rc_exit = key_pages_get(c, kp, fail, sizeof(fail))) != SS_EXIT_OK) {
		stage = "key_rotations";
		goto out;
	}
	head = kp->page[kp->npages - 1];
	if (note_origin_of(head->checkpoint, origin) == -1) {
		snprintf(fail, sizeof(fail), "the daemon's checkpoint is malformed");
		fprintf(stderr, "safeshare: %s\n", fail);
		stage = "checkpoint";
		rc_exit = SS_EXIT_LOCAL;
		goto out;
	}
	if (keyset_load(ks, origin) == -1) {
		snprintf(fail, sizeof(fail), "a --pubkey could not be used");
		stage = "pubkey";
		rc_exit = SS_EXIT_LOCAL;
		goto out;
	}
	if (keys_follow(ks, kp->note, kp->n, &cur, fail, sizeof(fail)) == -1) {
		stage = "key_chain";
		rc_exit = SS_EXIT_LOCAL;
		goto out;
	}
	/* Today's checkpoints: the key the chain ends at, or a trusted one. */
	last[0] = ks->k[cur];
	for (i = 1; i < ks->narg; i++)
		last[i] = ks->k[i];
	if (!json && kp->n > 0)
		printf("keys: followed %zu rotation(s) from %s to key id %s\n",
		    kp->n, ks->what[0], key_id_hex(&ks->k[cur], id));
	if (json)
		jsonw_seq_begin(&seq, stdout);
	while ((de = readdir(d)) != NULL) {
		if (!has_suffix(de->d_name, ".receipt"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		nfiles++;
		ok = receipt_read(path, &rc, origin) == 0;
		if (ok && receipt_check_keys(path, &rc, ks->k, ks->n, &cp,
		    &which) == -1) {
			receipt_free(&rc);
			ok = 0;
		}
		if (!ok) {
			nbad++;
			if (json)
				jsonw_seq_add(&seq, json_pack("{s:o,s:b,s:s}",
				    "file", jsonw_str(path), "ok", 0,
				    "why", "receipt does not verify"));
			continue;
		}
		if (ss_log_consistency(c, cp.size, &pr, &e, &status, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "safeshare: %s\n", err);
			receipt_free(&rc);
			rc_exit = SS_EXIT_NOANSWER;
			break;
		}
		if (e != NULL) {
			cli_refused(status, e);
			safeshare__v1__error__free_unpacked(e, NULL);
			receipt_free(&rc);
			rc_exit = SS_EXIT_REFUSED;
			break;
		}
		v = RECEIPT_REWRITTEN;
		if (receipt_checkpoint(pr->checkpoint, last, ks->narg, &now, why,
		    sizeof(why)) == -1)
			;
		else if (pr->n_proof > MERKLE_MAX_PROOF || now.size != pr->to_size ||
		    pr->from_size != cp.size)
			snprintf(why, sizeof(why), "the daemon's proof is malformed");
		else {
			for (i = 0; i < pr->n_proof; i++) {
				if (pr->proof[i].len != 32)
					break;
				memcpy(proof[i], pr->proof[i].data, 32);
			}
			if (i == pr->n_proof)
				v = receipt_consistent(&cp, &now,
				    (const uint8_t (*)[32])proof, pr->n_proof, why,
				    sizeof(why));
			else
				snprintf(why, sizeof(why), "the daemon's proof is malformed");
		}
		if (v != RECEIPT_CONSISTENT) {
			nbad++;
			fprintf(stderr, "safeshare: %s: RECEIPT FAILED: the log no "
			    "longer contains entry %llu as this receipt proved: %s\n",
			    path, (unsigned long long)rc.seq, why);
			print_pair(stderr, "the receipt's checkpoint", rc.checkpoint,
			    pr->checkpoint);
		} else if (!json)
			printf("%s: ok, entry %llu still in log %s (%llu entries "
			    "now), signed by %s\n", path, (unsigned long long)rc.seq,
			    now.origin, (unsigned long long)now.size, ks->what[which]);
		if (json) {
			o = json_pack("{s:o,s:b,s:o}", "file", jsonw_str(path),
			    "ok", v == RECEIPT_CONSISTENT, "seq", jsonw_u64(rc.seq));
			if (v != RECEIPT_CONSISTENT)
				jsonw_set(o, "why", jsonw_str(why));
			else
				jsonw_set(o, "key_id", jsonw_str(key_id_hex(
				    &ks->k[which], id)));
			jsonw_seq_add(&seq, o);
		}
		safeshare__v1__consistency_proof__free_unpacked(pr, NULL);
		receipt_free(&rc);
	}
	if (json)
		jsonw_seq_end(&seq);
out:
	/*
	 * Stopped before the receipts: with --json, one object saying where
	 * and why, the stderr message and the exit status as without.
	 */
	if (json && stage != NULL)
		jsonw_print(stdout, json_pack("{s:b,s:s,s:o}", "ok", 0, "stage",
		    stage, "why", jsonw_str(fail)));
	key_pages_free(kp);
	closedir(d);
	ss_client_free(c);
	if (rc_exit != SS_EXIT_OK)
		return rc_exit;
	if (nfiles == 0) {
		fprintf(stderr, "safeshare: %s: no *.receipt files\n", dir);
		return SS_EXIT_LOCAL;
	}
	if (nbad > 0) {
		fprintf(stderr, "safeshare: %zu of %zu receipts FAILED\n", nbad, nfiles);
		return SS_EXIT_LOCAL;
	}
	return SS_EXIT_OK;
}

int
cmd_receipt(int argc, char *argv[])
{
	static const struct option longopts[] = {
		CONN_LONGOPTS,
		{ "pubkey", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 }
	};
	struct conn_opts	 o = { 0 };
	struct keyset		*ks;
	const char		*sub;
	int			 ch, json = 0, ret;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(receipt_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? SS_EXIT_USAGE : SS_EXIT_OK;
	}
	sub = argv[1];
	argc--;
	argv++;
	ks = xcalloc(1, sizeof(*ks));	/* some 200 KB of keys: not the stack */
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (conn_opt(ch, &o, &json))
			continue;
		switch (ch) {
		case 'k':
			if (ks->narg == RECEIPT_ARGS_MAX) {
				fprintf(stderr, "safeshare receipt: at most %d "
				    "--pubkey\n", RECEIPT_ARGS_MAX);
				free(ks);
				return SS_EXIT_USAGE;
			}
			ks->arg[ks->narg++] = optarg;
			break;
		case O_HELP: fputs(receipt_help, stdout); free(ks); return SS_EXIT_OK;
		default: fputs(receipt_help, stderr); free(ks); return SS_EXIT_USAGE;
		}
	}
	ret = SS_EXIT_USAGE;
	if (ks->narg == 0 || optind >= argc)
		fprintf(stderr, "safeshare receipt %s: needs %s and --pubkey KEY\n",
		    sub, strcmp(sub, "check") == 0 ? "DIR" : "FILE...");
	else if (strcmp(sub, "verify") == 0)
		ret = receipt_verify_files(argc - optind, argv + optind, ks, json);
	else if (strcmp(sub, "check") == 0) {
		if (argc - optind != 1)
			fprintf(stderr, "safeshare receipt check: one DIR\n");
		else
			ret = receipt_check_dir(argv[optind], ks, &o, json);
	} else
		fprintf(stderr, "safeshare: unknown receipt command \"%s\"\n\n%s",
		    sub, receipt_help);
	free(ks);
	return ret;
}

/*
 * Saves a receipt from a reply under DIR as <seq>.receipt, without
 * replacing one already there. Returns 0, or -1 after saying why.
 */
int
receipt_save(const char *dir, const Safeshare__V1__Receipt *m)
{
	struct receipt	 rc;
	char		 path[4096], err[512], *text;
	size_t		 i;
	int		 ret = -1;

	memset(&rc, 0, sizeof(rc));
	if (m == NULL || m->seq == 0 || m->leaf_hash.len != 32 ||
	    m->n_proof > MERKLE_MAX_PROOF || m->checkpoint == NULL ||
	    m->checkpoint[0] == '\0') {
		fprintf(stderr, "safeshare: the reply carries no usable receipt\n");
		return -1;
	}
	rc.seq = m->seq;
	memcpy(rc.leaf, m->leaf_hash.data, 32);
	for (i = 0; i < m->n_proof; i++) {
		if (m->proof[i].len != 32) {
			fprintf(stderr, "safeshare: the reply's receipt is malformed\n");
			return -1;
		}
		memcpy(rc.proof[i], m->proof[i].data, 32);
	}
	rc.nproof = m->n_proof;
	rc.checkpoint = m->checkpoint;
	if ((text = receipt_format(&rc)) == NULL) {
		fprintf(stderr, "safeshare: the reply's receipt is malformed\n");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%llu.receipt", dir,
	    (unsigned long long)m->seq);
	if (access(path, F_OK) == 0)
		fprintf(stderr, "safeshare: %s exists; not replaced\n", path);
	else if (file_write_atomic(path, text, err, sizeof(err)) == -1)
		fprintf(stderr, "safeshare: %s\n", err);
	else
		ret = 0;
	free(text);
	return ret;
}
