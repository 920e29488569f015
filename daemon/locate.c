/*
 * POST /v1/locate (D18, D19): who holds records about this person. The
 * person is resolved (holder + local id, NHS number or demographics:
 * person.h, docs/matching.md), what is held is filtered by the protocol
 * (locate.h), and the answer goes out only once the log has it (D7): one
 * entry of kind `locate` per holder's view of the person, so each appears
 * in that subject's access report (D17), all with the request's id. A locate
 * that finds no one, or more than one, is one entry and names no one.
 * docs/audit-format.md says what each column holds.
 */
#include <event2/buffer.h>
#include <event2/http.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "locate.h"
#include "log.h"
#include "logq.h"
#include "storage.h"
#include "req.h"
#include "routes.h"
#include "wire.h"

#define LOCATE_MAX_HELD		256	/* (holder, record type) rows per person */
#define LOCATE_MAX_SUMMARY	MAX_LOG_FIELD

/* One locate in flight: what the reply needs once every entry is durable. */
struct lpending {
	struct server			*srv;
	struct evhttp_request		*req;
	struct protocol			*proto;
	Safeshare__V1__LocateRequest	*lr;
	const struct agency		*ag;
	struct peer			 peer;
	char				 rid[WIRE_MAX_REQUEST_ID + 1];
	int64_t				 now;
	/* The held rows (strings owned here) and why each is left out. */
	struct locate_held		 held[LOCATE_MAX_HELD];
	const char			*why[LOCATE_MAX_HELD];
	struct strlist			 strs;
	size_t				 nheld;
	struct strlist			 subjects;	/* each view of the person */
	size_t				 waiting;	/* entries not yet durable */
	int				 failed;
	/* A refusal (status != 200) or no one found: one entry, an Error. */
	int				 status;
	char				 code[64];
	char				 msg[200];
};

static void
lpending_free(struct lpending *lp)
{
	strlist_free(&lp->strs);
	strlist_free(&lp->subjects);
	if (lp->lr != NULL)
		safeshare__v1__locate_request__free_unpacked(lp->lr, NULL);
	protocol_unref(lp->proto);
	free(lp);
}

static const char *
str(const char *s)
{
	return s != NULL ? s : "";
}

/* The request's person form, or NULL. */
static const Safeshare__V1__PersonRef *
pref(const struct lpending *lp)
{
	return lp->lr->person;
}

/* The reply: the holders named, grouped, with the last entry's receipt. */
static void
reply_located(struct lpending *lp, uint64_t seq, const struct audit_receipt *rc)
{
	Safeshare__V1__LocateResponse	 m = SAFESHARE__V1__LOCATE_RESPONSE__INIT;
	Safeshare__V1__LocateHolder	 hs[LOCATE_MAX_HELD], *hp[LOCATE_MAX_HELD];
	char				*types[LOCATE_MAX_HELD];
	Safeshare__V1__Receipt		 rm = SAFESHARE__V1__RECEIPT__INIT;
	ProtobufCBinaryData		 bins[AUDIT_MAX_PROOF + 1];
	size_t				 nh = 0, nt = 0, len;
	uint8_t				*buf;

	for (size_t i = 0; i < lp->nheld; i++) {
		if (lp->why[i] != NULL)
			continue;
		if (nh == 0 || strcmp(hs[nh - 1].holder, lp->held[i].holder) != 0) {
			safeshare__v1__locate_holder__init(&hs[nh]);
			hs[nh].holder = (char *)lp->held[i].holder;
			hs[nh].record_types = &types[nt];
			hp[nh] = &hs[nh];
			nh++;
		}
		types[nt++] = (char *)lp->held[i].record_type;
		hs[nh - 1].n_record_types++;
	}
	m.request_id = lp->rid;
	m.holders = hp;
	m.n_holders = nh;
	m.protocol_id = lp->proto->id;
	m.protocol_version = lp->proto->version;
	m.disclosure_id = seq;
	if (wire_receipt_view(rc, &rm, bins) == 0)
		m.receipt = &rm;
	len = safeshare__v1__locate_response__get_packed_size(&m);
	buf = xcalloc(len + 1, 1);
	safeshare__v1__locate_response__pack(&m, buf);
	reply(lp->req, 200, buf, len);
}

/* Each entry is durable (or not); the last one sends the reply. */
static void
logged(int ok, uint64_t seq, const struct audit_receipt *rc, void *arg)
{
	struct lpending *lp = arg;

	if (!ok)
		lp->failed = 1;
	if (--lp->waiting > 0)
		return;
	if (lp->failed) {
		log_warnx("event=withheld_unlogged agency=%s request_id=%s",
		    lp->ag->id, lp->rid);
		reply_audit_unavailable(lp->req);
	} else if (lp->status != 200) {
		log_info("event=locate agency=%s outcome=%s seq=%llu request_id=%s",
		    lp->ag->id, lp->code, (unsigned long long)seq, lp->rid);
		reply_error_receipt(lp->req, lp->status, lp->code, lp->msg, seq, rc);
	} else {
		log_info("event=locate agency=%s outcome=located seq=%llu "
		    "request_id=%s", lp->ag->id, (unsigned long long)seq, lp->rid);
		reply_located(lp, seq, rc);
	}
	lpending_free(lp);
}

/* The columns every locate entry shares. */
static void
entry_base(struct lpending *lp, struct audit_entry *e)
{
	const struct purpose *pu = protocol_purpose(lp->proto, str(lp->lr->purpose));

	memset(e, 0, sizeof(*e));
	e->time = lp->now;
	e->kind = "locate";
	e->agency = lp->ag->id;
	e->cert_fp = lp->peer.fp;
	e->practitioner = str(lp->lr->practitioner);
	e->purpose = str(lp->lr->purpose);
	e->lawful_basis = pu != NULL ? pu->lawful_basis : "";
	e->case_ref = str(lp->lr->case_reference);
	e->protocol_id = lp->proto->id;
	e->protocol_version = lp->proto->version;
	e->protocol_sha256 = lp->proto->sha256;
	e->request_id = lp->rid;
	e->consent = "";
}

/* One entry, then an Error reply naming it: a refusal, no_match, ambiguous. */
static void
finish_error(struct lpending *lp, int status, const char *decision, const char *code,
    const char *msg)
{
	struct audit_entry	 e;
	char			 subject[1024];

	lp->status = status;
	snprintf(lp->code, sizeof(lp->code), "%s", code);
	snprintf(lp->msg, sizeof(lp->msg), "%s", msg);
	wire_person_asked(lp->lr->subject_id, pref(lp), subject, sizeof(subject));
	entry_base(lp, &e);
	e.subject = subject;
	e.decision = decision;
	e.reason = code;
	lp->waiting = 1;
	logq_submit_receipt(lp->srv->logq, &e, logged, lp);
}

static int
keep_held(const char *holder, const char *subject, const char *record_type, void *arg)
{
	struct lpending *lp = arg;

	if (lp->nheld == LOCATE_MAX_HELD)
		return -1;
	strlist_add(&lp->strs, holder);
	lp->held[lp->nheld].holder = lp->strs.v[lp->strs.n - 1];
	strlist_add(&lp->strs, subject);
	lp->held[lp->nheld].subject = lp->strs.v[lp->strs.n - 1];
	strlist_add(&lp->strs, record_type);
	lp->held[lp->nheld].record_type = lp->strs.v[lp->strs.n - 1];
	lp->nheld++;
	return 0;
}

static int
keep_subject(const char *holder, const char *subject, void *arg)
{
	struct lpending *lp = arg;

	(void)holder;
	return strlist_add(&lp->subjects, subject) == -1 ? -1 : 0;
}

/* The located answer: one entry per view of the person. */
static void
finish_located(struct lpending *lp)
{
	struct audit_entry	 e;
	char			 named[LOCATE_MAX_SUMMARY], left[LOCATE_MAX_SUMMARY];

	locate_filter(lp->proto, lp->ag, protocol_purpose(lp->proto, lp->lr->purpose),
	    lp->held, lp->nheld, lp->why);
	locate_summary(lp->held, lp->nheld, lp->why, 1, named, sizeof(named));
	locate_summary(lp->held, lp->nheld, lp->why, 0, left, sizeof(left));
	lp->status = 200;
	lp->waiting = lp->subjects.n;
	for (size_t i = 0; i < lp->subjects.n; i++) {
		entry_base(lp, &e);
		e.subject = lp->subjects.v[i];
		e.decision = "located";
		e.reason = "located";
		e.released = named;
		e.withheld = left;
		logq_submit_receipt(lp->srv->logq, &e, logged, lp);
	}
}

/* Issue 14's limits on the request's strings; a bad one is a logged 400. */
static int
refuse_bad_text(struct lpending *lp)
{
	const Safeshare__V1__LocateRequest	*r = lp->lr;
	const Safeshare__V1__PersonRef		*p = r->person;
	const struct { const char *name, *wire, *v; } f[] = {
		{ "request_id", "request_id", r->request_id },
		{ "purpose", "purpose", r->purpose },
		{ "case_reference", "case_reference", r->case_reference },
		{ "practitioner", "practitioner", r->practitioner },
		{ "subject_id", "subject_id", r->subject_id },
		{ "holder", "purpose", p ? p->holder : NULL },
		{ "nhs_number", "practitioner", p ? p->nhs_number : NULL },
		{ "family_name", "practitioner", p ? p->family_name : NULL },
		{ "given_name", "practitioner", p ? p->given_name : NULL },
		{ "date_of_birth", "purpose", p ? p->date_of_birth : NULL },
		{ "postcode", "purpose", p ? p->postcode : NULL },
	};
	struct audit_entry	 e;
	const char		*why;
	char			 code[64], msg[200];

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if (f[i].v == NULL || (why = wire_field_problem(f[i].wire,
		    f[i].v)) == NULL)
			continue;
		memset(&e, 0, sizeof(e));
		e.agency = lp->ag->id;
		e.cert_fp = lp->peer.fp;
		e.record_type = "locate";
		e.request_id = lp->rid;
		snprintf(code, sizeof(code), "invalid_%s", f[i].name);
		snprintf(msg, sizeof(msg), "%s %s", f[i].name, why);
		refuse_entry(lp->srv, lp->req, &e, 400, code, msg);
		return -1;
	}
	return 0;
}

/*
 * Finds the person; 1 found (*person), 0 answered already, -1 store error
 * (err says which).
 */
static int
resolve(struct lpending *lp, int64_t *person, char *err, size_t errlen)
{
	const Safeshare__V1__PersonRef	*p = pref(lp);
	struct match_query		 q;
	struct match_result		 res;
	int				 rc;

	if (str(lp->lr->subject_id)[0] != '\0') {
		/* Today's form; the holder, when given, must be the subject's. */
		if ((rc = storage_of_holding(lp->srv->store,
		    p ? p->holder : NULL, lp->lr->subject_id, person, err,
		    errlen)) != 0)
			return rc;
		finish_error(lp, 404, "no_match", "no_match", "no one matches");
		return 0;
	}
	memset(&q, 0, sizeof(q));
	if (p != NULL) {
		q.nhs = p->nhs_number;
		q.family = p->family_name;
		q.given = p->given_name;
		q.dob = p->date_of_birth;
		q.postcode = p->postcode;
	}
	if (storage_find(lp->srv->store, &q, &res, err, errlen) == -1)
		return -1;
	switch (res.outcome) {
	case MATCH_ONE:
		*person = res.person;
		return 1;
	case MATCH_NONE:
		/* D18: no data, no count, no hint of which detail failed. */
		finish_error(lp, 404, "no_match", "no_match", "no one matches");
		return 0;
	case MATCH_AMBIGUOUS:
		finish_error(lp, 409, "ambiguous", "ambiguous", "more than one person "
		    "matches; give the NHS number or the postcode");
		return 0;
	case MATCH_INVALID:
		finish_error(lp, 400, "deny", "invalid_person", res.why);
		return 0;
	}
	return 0;
}

/*
 * The route table has admitted an agency (any: the requester role is
 * checked here, so that a refusal is a locate entry like the others) and
 * taken its rate token.
 */
void
locate_handle(struct req *r)
{
	struct server		*srv = r->srv;
	struct lpending		*lp;
	const uint8_t		*body;
	const char		*reason, *detail;
	size_t			 len;
	int64_t			 person;
	char			 serr[256];
	int			 rc;

	lp = xcalloc(1, sizeof(*lp));
	lp->srv = srv;
	lp->req = r->ev;
	lp->proto = protocol_ref(srv->proto);
	lp->now = time(NULL);
	lp->ag = protocol_agency(lp->proto, r->agency->id);
	lp->peer = r->peer;
	snprintf(lp->rid, sizeof(lp->rid), "%s", r->rid);
	body = req_body(r, &len);
	if (lp->ag == NULL || (lp->lr = safeshare__v1__locate_request__unpack(NULL,
	    len, body)) == NULL) {
		refuse(srv, r->ev, &lp->peer, r->agency->id, 400, "malformed_request",
		    "the body is not a valid safeshare.v1.LocateRequest", lp->rid);
		goto done;
	}
	if (wire_request_id_ok(lp->lr->request_id))
		snprintf(lp->rid, sizeof(lp->rid), "%s", lp->lr->request_id);
	if (refuse_bad_text(lp) == -1)
		goto done;
	/* D1, D19: who asks, for what, under a protocol in force. */
	if ((reason = locate_check(lp->proto, lp->ag, lp->lr->purpose,
	    lp->lr->case_reference, lp->lr->practitioner, lp->now, &detail)) != NULL) {
		finish_error(lp, strcmp(reason, "not_requester") == 0 ||
		    strcmp(reason, "protocol_expired") == 0 ? 403 : 400, "deny", reason,
		    detail);
		return;
	}
	server_read_scope(srv);
	if ((rc = resolve(lp, &person, serr, sizeof(serr))) == 0)
		return;		/* answered: the entry's callback frees lp */
	if (rc == 1 && (storage_records(srv->store, person, keep_held, lp, serr,
	    sizeof(serr)) == -1 ||
	    storage_holdings(srv->store, person, keep_subject, lp, serr,
	    sizeof(serr)) == -1))
		rc = -1;
	if (rc == -1) {
		log_warnx("event=store_failed error=\"%s\"", serr);
		reply_error(r->ev, 503, "store_unavailable", "the record store could "
		    "not be read; nothing was answered", 0);
		goto done;
	}
	finish_located(lp);
	return;
done:
	lpending_free(lp);
}
