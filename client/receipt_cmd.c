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

/* Reads and checks one receipt file offline; 0, or -1 after saying why. */
static int
receipt_load(const char *path, const char *pubkey, struct receipt *rc,
    struct note_checkpoint *cp, struct note_key *key)
{
	char	*text, err[512], origin[NOTE_LINE_MAX];
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
	if (log_key_load(pubkey, origin, key) == -1) {
		receipt_free(rc);
		return -1;
	}
	if (receipt_verify(rc, key, 1, cp, err, sizeof(err)) == -1) {
		fprintf(stderr, "safeshare: %s: FAILED: %s\n", path, err);
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
    "usage: safeshare receipt verify FILE... --pubkey KEY [--json]\n"
    "       safeshare receipt check DIR --pubkey KEY [--json] [connection options]\n"
    "\n"
    "verify: checks receipts offline (no server): the checkpoint is signed\n"
    "by the log's key and the entry's inclusion proof leads to its root.\n"
    "check: verifies every *.receipt in DIR, then asks the daemon for a\n"
    "consistency proof from each receipt's checkpoint to its current one.\n"
    "If the log no longer contains what a receipt proved (truncated,\n"
    "forked or rewritten), it says so and prints both checkpoints.\n"
    "KEY is the log's public key (PEM, from `safeshare audit checkpoints`\n"
    "or the daemon's key) or its verifier key string name+id+base64.\n"
    "Receipts are kept by `safeshare request --receipts DIR`.\n"
    "Exit: 0 all hold, 1 a receipt failed, 2 usage, 4 refused, 5 no answer.\n";

static int
receipt_verify_files(int n, char *files[], const char *pubkey, int json)
{
	struct receipt		rc;
	struct note_checkpoint	cp;
	struct note_key		key;
	struct jsonw_seq	seq;
	int			i, bad = 0;

	if (json)
		jsonw_seq_begin(&seq, stdout);
	for (i = 0; i < n; i++) {
		int ok = receipt_load(files[i], pubkey, &rc, &cp, &key) == 0;

		if (json) {
			json_t *o = json_pack("{s:o,s:b}", "file", jsonw_str(files[i]),
			    "ok", ok);

			if (ok) {
				jsonw_set(o, "seq", jsonw_u64(rc.seq));
				jsonw_set(o, "log", jsonw_str(cp.origin));
				jsonw_set(o, "size", jsonw_u64(cp.size));
			}
			jsonw_seq_add(&seq, o);
		} else if (ok)
			printf("%s: ok, entry %llu is in log %s of %llu entries, "
			    "signed by %s\n", files[i], (unsigned long long)rc.seq,
			    cp.origin, (unsigned long long)cp.size, key.name);
		if (ok)
			receipt_free(&rc);
		else
			bad++;
	}
	if (json)
		jsonw_seq_end(&seq);
	return bad ? SS_EXIT_LOCAL : SS_EXIT_OK;
}

static int
receipt_check_dir(const char *dir, const char *pubkey, struct conn_opts *co,
    int json)
{
	Safeshare__V1__ConsistencyProof	*pr = NULL;
	Safeshare__V1__Error		*e = NULL;
	struct ss_client		*c = NULL;
	struct receipt			 rc;
	struct note_checkpoint		 cp, now;
	struct note_key			 key;
	struct dirent			*de;
	DIR				*d;
	uint8_t				 proof[MERKLE_MAX_PROOF][32];
	char				 path[4096], err[512], why[512];
	size_t				 i, nfiles = 0, nbad = 0;
	int				 rc_exit = SS_EXIT_OK, status;
	enum receipt_verdict		 v;
	struct jsonw_seq		 seq;
	json_t				*o;

	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "safeshare: %s: %s\n", dir, strerror(errno));
		return SS_EXIT_LOCAL;
	}
	if ((rc_exit = connect_client(co, &c)) != SS_EXIT_OK) {
		closedir(d);
		return rc_exit;
	}
	if (json)
		jsonw_seq_begin(&seq, stdout);
	while ((de = readdir(d)) != NULL) {
		if (!has_suffix(de->d_name, ".receipt"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		nfiles++;
		if (receipt_load(path, pubkey, &rc, &cp, &key) == -1) {
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
		if (receipt_checkpoint(pr->checkpoint, &key, 1, &now, why,
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
			    "now)\n", path, (unsigned long long)rc.seq, now.origin,
			    (unsigned long long)now.size);
		if (json) {
			o = json_pack("{s:o,s:b,s:o}", "file", jsonw_str(path),
			    "ok", v == RECEIPT_CONSISTENT, "seq", jsonw_u64(rc.seq));
			if (v != RECEIPT_CONSISTENT)
				jsonw_set(o, "why", jsonw_str(why));
			jsonw_seq_add(&seq, o);
		}
		safeshare__v1__consistency_proof__free_unpacked(pr, NULL);
		receipt_free(&rc);
	}
	if (json)
		jsonw_seq_end(&seq);
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
	const char		*sub, *pubkey = NULL;
	int			 ch, json = 0;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(receipt_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? SS_EXIT_USAGE : SS_EXIT_OK;
	}
	sub = argv[1];
	argc--;
	argv++;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (conn_opt(ch, &o, &json))
			continue;
		switch (ch) {
		case 'k': pubkey = optarg; break;
		case O_HELP: fputs(receipt_help, stdout); return SS_EXIT_OK;
		default: fputs(receipt_help, stderr); return SS_EXIT_USAGE;
		}
	}
	if (pubkey == NULL || optind >= argc) {
		fprintf(stderr, "safeshare receipt %s: needs %s and --pubkey KEY\n",
		    sub, strcmp(sub, "check") == 0 ? "DIR" : "FILE...");
		return SS_EXIT_USAGE;
	}
	if (strcmp(sub, "verify") == 0)
		return receipt_verify_files(argc - optind, argv + optind, pubkey, json);
	if (strcmp(sub, "check") == 0) {
		if (argc - optind != 1) {
			fprintf(stderr, "safeshare receipt check: one DIR\n");
			return SS_EXIT_USAGE;
		}
		return receipt_check_dir(argv[optind], pubkey, &o, json);
	}
	fprintf(stderr, "safeshare: unknown receipt command \"%s\"\n\n%s", sub,
	    receipt_help);
	return SS_EXIT_USAGE;
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
