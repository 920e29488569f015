/*
 * POST /v1/log/consistency: the log's latest signed checkpoint and the RFC
 * 9162 proof that an earlier tree is a prefix of it (D7, D15-D17, issue
 * 13). Any agency of the sharing protocol may ask, not only auditors, so
 * that partners can witness the log and check their receipts. It reveals
 * hashes only, never an entry. Reads use the auditors' read-only
 * connection; the checkpoint and the tree nodes it covers were committed
 * in one transaction by the log writer, so they always agree.
 */
#include <event2/buffer.h>
#include <event2/http.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "req.h"
#include "routes.h"
#include "log.h"
#include "logq.h"
#include "note.h"
#include "wire.h"

/*
 * The key rotations up to the answered checkpoint, for a verifier that
 * holds only the first key (issue 13 item 7): those after the tree size
 * `after`, at most KEY_NOTES_MAX a reply, and whether more follow (the
 * client asks again after the last one's size). The list and its notes
 * are the handler's, so a reply stays bounded however often the key was
 * rotated.
 */
#define KEY_NOTES_MAX	64

struct keynotes {
	uint64_t	 after;
	uint64_t	 upto;
	char		*v[KEY_NOTES_MAX];
	size_t		 n;
	int		 more;
};

/*
 * Keeps a checkpoint naming a next key. Its form is the verifier's to
 * check: a malformed one is passed on, so that it fails there, named.
 * Checkpoints come in the order of their tree sizes, which only grow.
 */
static int
keynote_add(const struct audit_checkpoint *c, void *arg)
{
	struct keynotes	*k = arg;

	if (c->note == NULL || c->size <= k->after || c->size > k->upto ||
	    strstr(c->note, "\nnext-key ") == NULL)
		return 0;
	if (k->n == KEY_NOTES_MAX) {
		k->more = 1;
		return 1;
	}
	k->v[k->n++] = xstrdup(c->note);
	return 0;
}

void
logproof_handle_consistency(struct req *r)
{
	struct server				*srv = r->srv;
	struct evhttp_request			*req = r->ev;
	Safeshare__V1__ConsistencyProof		 out = SAFESHARE__V1__CONSISTENCY_PROOF__INIT;
	Safeshare__V1__ConsistencyRequest	*rq = NULL;
	struct evbuffer		*in = evhttp_request_get_input_buffer(req);
	struct note_checkpoint	 cp;
	struct note		 nt;
	ProtobufCBinaryData	 bins[AUDIT_MAX_PROOF];
	unsigned char		 proof[AUDIT_MAX_PROOF][32];
	struct logq_stats	 st;
	struct keynotes		 kn;
	char			 err[256], *note = NULL;
	size_t			 len = 0, i;
	uint8_t			*buf;
	int			 rc;

	memset(&kn, 0, sizeof(kn));
	rq = safeshare__v1__consistency_request__unpack(NULL,
	    evbuffer_get_length(in), evbuffer_pullup(in, -1));
	if (rq == NULL) {
		reply_error(req, 400, "malformed_request", "the body is not a valid "
		    "safeshare.v1.ConsistencyRequest", 0);
		goto done;
	}
	/*
	 * The latest checkpoint the log writer knows is on disk: one just
	 * committed may wait for its fdatasync (logq.c), and a witness keeps
	 * what it is given as the log's promise.
	 */
	logq_stats(srv->logq, &st);
	if ((rc = logstore_checkpoint_note_upto(srv->reader, st.size, &note, err,
	    sizeof(err))) != 0 ||
	    note_parse(note, strlen(note), &nt, err, sizeof(err)) == -1 ||
	    note_checkpoint_parse(nt.body, nt.bodylen, &cp, err, sizeof(err)) == -1) {
		log_warnx("%s: event=checkpoint_unreadable rc=%d", __func__, rc);
		reply_error(req, rc == 1 ? 404 : 500, rc == 1 ? "no_checkpoint" :
		    "audit_unavailable", rc == 1 ? "the log has no signed checkpoint "
		    "yet" : "the log's checkpoint could not be read", 0);
		goto done;
	}
	out.checkpoint = note;
	out.from_size = rq->from_size;
	out.to_size = cp.size;
	/*
	 * A tree larger than the log's is answered with the checkpoint alone:
	 * the caller sees for itself that the log is now shorter (truncated).
	 */
	if (rq->from_size > 0 && rq->from_size < cp.size) {
		if (logstore_consistency(srv->reader, rq->from_size, cp.size, proof,
		    &len, err, sizeof(err)) == -1) {
			log_warnx("%s: event=consistency_failed from=%llu to=%llu "
			    "error=\"%s\"", __func__, (unsigned long long)rq->from_size,
			    (unsigned long long)cp.size, err);
			reply_error(req, 503, "audit_unavailable", "the consistency "
			    "proof could not be made", 0);
			goto done;
		}
		for (i = 0; i < len; i++) {
			bins[i].len = 32;
			bins[i].data = proof[i];
		}
		out.proof = NULL;
		out.n_proof = len;
	}
	/*
	 * Asked for, the checkpoints naming a next key: a scan of the
	 * checkpoints (one per group commit), so only on request, never on
	 * the disclosure path.
	 */
	if (rq->key_notes) {
		kn.after = rq->key_notes_after;
		kn.upto = cp.size;
		if (logstore_checkpoints(srv->reader, keynote_add, &kn, err,
		    sizeof(err)) == -1) {
			log_warnx("%s: event=key_notes_failed", __func__);
			reply_error(req, 503, "audit_unavailable", "the log's key "
			    "rotations could not be read", 0);
			goto done;
		}
		out.key_notes = kn.v;
		out.n_key_notes = kn.n;
		out.key_notes_more = kn.more;
	}
	{
		ProtobufCBinaryData	*pv = len ? bins : NULL;
		size_t			 plen;

		out.proof = pv;
		plen = protobuf_c_message_get_packed_size(&out.base);
		buf = xcalloc(plen + 1, 1);
		protobuf_c_message_pack(&out.base, buf);
		reply(req, 200, buf, plen);
	}
done:
	for (i = 0; i < kn.n; i++)
		free(kn.v[i]);
	free(note);
	safeshare__v1__consistency_request__free_unpacked(rq, NULL);
}
