/*
 * The log entry's format, pinned (issue 16 item 2): the chain hash of a
 * known entry, of a small known log and its Merkle root, so that changing
 * how an entry is defined in the code cannot change the chain by accident
 * (D7: every log already written must still verify). If one of these
 * fails, the chain format changed: that needs a new tag in audit_hash()
 * and a note in docs/audit-format.md, never a new pinned value.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "audit_int.h"
#include "audit_pb.h"
#include "util.h"

/* Every member set, each string distinct, so a swapped pair shows. */
static void
known_entry(struct audit_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->seq = 7;
	e->time = 1764000000;
	e->kind = "disclosure";
	e->agency = "agency-02";
	e->cert_fp = "fp-03";
	e->practitioner = "practitioner-04";
	e->purpose = "purpose-05";
	e->lawful_basis = "basis-06";
	e->case_ref = "case-07";
	e->subject = "subject-08";
	e->record_type = "record-09";
	e->decision = "decision-10";
	e->reason = "reason-11";
	e->released = "released-12";
	e->withheld = "withheld-13";
	e->consent = "consent-14";
	e->override_code = "override-15";
	e->justification = "justification-16 with \"quotes\" and \xc3\xa9";
	e->rule_id = "rule-17";
	e->protocol_id = "protocol-18";
	e->protocol_version = "version-19";
	e->protocol_sha256 = "sha256-20";
	e->request_id = "request-21";
	e->inform_waiver = "waiver-22";
	e->ref_seq = 3;
	for (int i = 0; i < 32; i++)
		e->prev_hash[i] = (unsigned char)(0xa0 + i);
}

static void
expect_hex(const unsigned char *h, size_t n, const char *want, const char *what)
{
	char got[2 * 128 + 1];

	cr_assert_leq(n, 128, "%s: %zu bytes is more than this helper holds", what, n);
	hex_encode(h, n, got);
	cr_expect_str_eq(got, want, "%s: got %s", what, got);
}

Test(entry, hash_of_a_known_entry_is_pinned)
{
	struct audit_entry	e;
	unsigned char		h[32];

	known_entry(&e);
	audit_hash(&e, h);
	expect_hex(h, 32, "ac91650b4f875664760a4084a8e9b5b8"
	    "9bbce5584c912b88c28b6e2d42f7204e", "entry hash");
	/* NULL strings hash as empty ones (audit.h). */
	e.consent = NULL;
	audit_hash(&e, h);
	{
		unsigned char	h2[32];

		e.consent = "";
		audit_hash(&e, h2);
		cr_expect_eq(memcmp(h, h2, 32), 0, "NULL and \"\" hash alike");
	}
}

Test(entry, legacy_checkpoint_message_is_pinned)
{
	struct audit_checkpoint	cp;
	unsigned char		msg[128];

	memset(&cp, 0, sizeof(cp));
	for (int i = 0; i < 16; i++)
		cp.log_id[i] = (unsigned char)i;
	cp.size = 258;
	for (int i = 0; i < 32; i++)
		cp.head[i] = (unsigned char)(0xff - i);
	cp.time = 1764000001;
	cr_assert_eq(audit_checkpoint_message(&cp, msg), 87);
	expect_hex(msg, 87, "7361666573686172652d636865636b706f696e742d7631"
	    "000102030405060708090a0b0c0d0e0f0000000000000102"
	    "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efeeedecebeae9e8e7e6e5e4e3e2e1e0"
	    "0000000069248101", "checkpoint message");
}

struct collect {
	struct audit_entry	e[4];
	char			*s[4][32];
	size_t			n;
};

/*
 * Copies each entry read back by name, as a caller outside the log would
 * (the strings live only until the next row).
 */
static int
collect_cb(const struct audit_entry *e, void *arg)
{
	struct collect	*c = arg;
	size_t		 k = 0;

	cr_assert_lt(c->n, 4);
	c->e[c->n] = *e;
#define DUP(m) (c->s[c->n][k++] = strdup(e->m), c->e[c->n].m = c->s[c->n][k - 1])
	DUP(kind); DUP(agency); DUP(cert_fp); DUP(practitioner); DUP(purpose);
	DUP(lawful_basis); DUP(case_ref); DUP(subject); DUP(record_type);
	DUP(decision); DUP(reason); DUP(released); DUP(withheld); DUP(consent);
	DUP(override_code); DUP(justification); DUP(rule_id); DUP(protocol_id);
	DUP(protocol_version); DUP(protocol_sha256); DUP(request_id);
	DUP(inform_waiver);
#undef DUP
	c->n++;
	return 0;
}

static void
expect_same(const struct audit_entry *x, const struct audit_entry *y)
{
#define SAME(m) cr_expect_str_eq(x->m, y->m, "member " #m)
	SAME(kind); SAME(agency); SAME(cert_fp); SAME(practitioner); SAME(purpose);
	SAME(lawful_basis); SAME(case_ref); SAME(subject); SAME(record_type);
	SAME(decision); SAME(reason); SAME(released); SAME(withheld); SAME(consent);
	SAME(override_code); SAME(justification); SAME(rule_id); SAME(protocol_id);
	SAME(protocol_version); SAME(protocol_sha256); SAME(request_id);
	SAME(inform_waiver);
#undef SAME
	cr_expect_eq(x->seq, y->seq);
	cr_expect_eq(x->time, y->time);
	cr_expect_eq(x->ref_seq, y->ref_seq);
	cr_expect_eq(memcmp(x->prev_hash, y->prev_hash, 32), 0);
	cr_expect_eq(memcmp(x->hash, y->hash, 32), 0);
}

/*
 * A log of three known entries: the head of the chain and the tree root
 * do not depend on the log id or the clock, so both are pinned; and every
 * member reads back from the database as it was written, each under its
 * own name.
 */
Test(entry, a_small_known_log_is_pinned_and_reads_back)
{
	struct audit_entry	 e[3], *ep[3];
	struct collect		 c;
	struct audit		*a;
	char			 path[256], p[300], err[256];
	unsigned char		 root[32];

	snprintf(path, sizeof(path), "/tmp/safeshare-test-entry-%d.db", (int)getpid());
	unlink(path);
	cr_assert_eq(audit_open(&a, path, err, sizeof(err)), 0, "%s", err);
	for (int i = 0; i < 3; i++) {
		known_entry(&e[i]);
		e[i].time += i;
		e[i].ref_seq = (uint64_t)i;
		ep[i] = &e[i];
	}
	e[1].subject = "subject-other";
	e[2].kind = "review";
	e[2].justification = "";
	cr_assert_eq(audit_append(a, ep, 2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(audit_append(a, ep + 2, 1, err, sizeof(err)), 0, "%s", err);
	expect_hex(e[0].hash, 32, "c7c86141d942b8e67256106449a12910"
	    "b4a9a5dad95bb3a97713597e77e1dc76", "entry 1");
	expect_hex(e[2].hash, 32, "715cc683d6b14b7000f03b02ef95377e"
	    "88699601e749d87184d8e4b70238859a", "head of the log");
	cr_assert_eq(audit_root(a, 3, root, err, sizeof(err)), 0, "%s", err);
	expect_hex(root, 32, "01565c45c14a3ba6ba8ba95140481edd"
	    "ae3aa361637f332b69a16f9db4f5c74a", "tree root of 3 entries");

	memset(&c, 0, sizeof(c));
	cr_assert_eq(audit_scan(a, 1, 0, collect_cb, &c, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(c.n, 3);
	for (size_t i = 0; i < 3; i++) {
		expect_same(&c.e[i], &e[i]);
		for (size_t k = 0; k < 32; k++)
			free(c.s[i][k]);
	}
	audit_close(a);
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

/*
 * The LogEntry message carries every member under the member's own name
 * (looked up in the message's descriptor), and back.
 */
Test(entry, the_protobuf_copy_carries_every_member_by_name)
{
	Safeshare__V1__LogEntry	 m;
	struct audit_entry	 e, back;
	const char		**s[AUDIT_NSTRINGS];

	known_entry(&e);
	for (int i = 0; i < 32; i++)
		e.hash[i] = (unsigned char)i;
	audit_entry_to_pb(&e, &m);
	audit_entry_strings(&e, s);
	for (int i = 0; i < AUDIT_NSTRINGS; i++) {
		const ProtobufCFieldDescriptor *fd =
		    protobuf_c_message_descriptor_get_field_by_name(
		    &safeshare__v1__log_entry__descriptor, audit_string_names[i]);

		cr_assert_not_null(fd, "LogEntry has no field %s", audit_string_names[i]);
		cr_expect_str_eq(*(char **)(void *)((char *)&m + fd->offset), *s[i],
		    "field %s", audit_string_names[i]);
	}
	audit_entry_from_pb(&m, &back);
	expect_same(&back, &e);
	audit_entry_pb_clear(&m);
}

/*
 * The checkpoint note the log signs, byte for byte (issue 16: switching
 * the log to note.h must change nothing). Ed25519 signatures are
 * deterministic, so a fixed key, log id, size, root, time and number give
 * one note; with and without a next-key line.
 */
Test(entry, checkpoint_note_bytes_are_pinned)
{
	unsigned char	 seed[32], log_id[16], root[32];
	EVP_PKEY	*k;
	char		*note = NULL, vk[256], origin[80];

	for (int i = 0; i < 32; i++) {
		seed[i] = (unsigned char)(7 * i + 1);
		root[i] = (unsigned char)(0x40 + i);
	}
	for (int i = 0; i < 16; i++)
		log_id[i] = (unsigned char)(0xf0 - i);
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	cr_assert_not_null(k);
	cr_assert_eq(audit_note_sign(k, log_id, 1234, root, 1764000002, 56, NULL,
	    &note), 0);
	cr_expect_str_eq(note, "safeshare/f0efeeedecebeae9e8e7e6e5e4e3e2e1\n"
	    "1234\n"
	    "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=\n"
	    "time 1764000002\n"
	    "checkpoint 56\n"
	    "\n"
	    "\xe2\x80\x94 safeshare/f0efeeedecebeae9e8e7e6e5e4e3e2e1 "
	    "/VG1G8ESILNBtTVjc5/GSzQkycatUODFFllMpFuFYOk9fHOFL6e80leI4eauK5azeH2P"
	    "sHQ0DykU7sKi5yfGkCCSggs=\n", "note: got\n%s", note);
	free(note);
	audit_note_origin(log_id, origin);
	cr_assert_eq(audit_verifier_key(origin, k, vk, sizeof(vk)), 0);
	cr_expect_str_eq(vk, "safeshare/f0efeeedecebeae9e8e7e6e5e4e3e2e1+fd51b51b+"
	    "AeQDCZjP1a0XI8Fp+VaqC564YZtZkr1hLCr0KOvHn43w", "verifier key: got %s", vk);
	cr_assert_eq(audit_note_sign(k, log_id, 1235, root, 1764000003, 57, vk,
	    &note), 0);
	cr_expect_str_eq(note, "safeshare/f0efeeedecebeae9e8e7e6e5e4e3e2e1\n"
	    "1235\n"
	    "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=\n"
	    "time 1764000003\n"
	    "checkpoint 57\n"
	    "next-key safeshare/f0efeeedecebeae9e8e7e6e5e4e3e2e1+fd51b51b+AeQDCZjP1a0XI8Fp+VaqC564YZtZkr1hLCr0KOvHn43w\n"
	    "\n"
	    "\xe2\x80\x94 safeshare/f0efeeedecebeae9e8e7e6e5e4e3e2e1 "
	    "/VG1G+H7kLsgAimED3cRMnF8yQ1Mo10aUCRgIRMKgkzCiDx4YR94+/83e6CvZ3Jwv8nj"
	    "ouMHkDtgvqOcYQpYn/qN6Q8=\n", "note: got\n%s", note);
	free(note);
	EVP_PKEY_free(k);
}
