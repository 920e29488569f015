/*
 * POST /v1/holder/show (role holder): what the store holds about one of
 * the holder's own subjects (records with their fields, the consent
 * history, the flags, the NHS number it links), for `safeshare holder
 * show` (issue 22, issue 17).
 *
 * A holder reading back its own subject is not a disclosure (the data are
 * its own, nothing crosses to another agency), so that read is not a log
 * entry; the daemon's log gets counts only. Another holder's subject and
 * an unknown one get the same 404 unknown_subject, in the words holder ops
 * use, and that refusal is a logged `rejected` entry before the answer,
 * as for ops (docs/security.md, D1, D17, D20).
 */
#include <event2/buffer.h>
#include <event2/http.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "req.h"
#include "routes.h"
#include "log.h"
#include "storage.h"
#include "util.h"
#include "wire.h"

#define SHOW_MAX_HISTORY	100	/* consent decisions, flag rows */
#define SHOW_MAX_RECORDS	64

/* The reply being built; owns every string and array in it. */
struct show {
	Safeshare__V1__HolderShow	 out;
	Safeshare__V1__HolderShowRecord	*rec[SHOW_MAX_RECORDS];
	Safeshare__V1__HolderShowConsent *con[SHOW_MAX_HISTORY];
	Safeshare__V1__HolderShowFlag	*flg[SHOW_MAX_HISTORY];
	size_t				 nfields;	/* over all records */
	char				 nhs[MATCH_NHS_LEN + 1];
};

/* "a,b" into a new array of strings, none for "*" (all). */
static char **
split_scope(const char *list, size_t *n)
{
	char	**v, *dup, *p, *tok;
	size_t	 k = 1;

	*n = 0;
	if (strcmp(list, "*") == 0 || list[0] == '\0')
		return NULL;
	for (p = (char *)list; *p != '\0'; p++)
		k += *p == ',';
	v = xcalloc(k, sizeof(*v));
	dup = xstrdup(list);
	for (tok = strtok_r(dup, ",", &p); tok != NULL && *n < k;
	    tok = strtok_r(NULL, ",", &p))
		v[(*n)++] = xstrdup(tok);
	free(dup);
	return v;
}

static int
on_record(void *arg, const char *type, int64_t verified_at)
{
	struct show			*s = arg;
	Safeshare__V1__HolderShowRecord	*r;

	if (s->out.n_records == SHOW_MAX_RECORDS) {
		s->out.truncated = 1;
		return 0;
	}
	r = xcalloc(1, sizeof(*r));
	safeshare__v1__holder_show_record__init(r);
	r->record_type = xstrdup(type);
	r->verified = verified_at;
	s->rec[s->out.n_records++] = r;
	return 0;
}

static int
on_field(void *arg, const char *type, const char *name, const char *value)
{
	struct show			*s = arg;
	Safeshare__V1__HolderShowRecord	*r = NULL;
	Safeshare__V1__FieldValue	*f, **nv;

	for (size_t i = 0; i < s->out.n_records; i++)
		if (strcmp(s->rec[i]->record_type, type) == 0)
			r = s->rec[i];
	if (r == NULL || r->n_fields >= PROTOCOL_MAX_FIELDS) {
		s->out.truncated = 1;
		return 0;
	}
	if ((nv = realloc(r->fields, (r->n_fields + 1) * sizeof(*nv))) == NULL)
		fatalx("%s: out of memory", __func__);
	r->fields = nv;
	f = xcalloc(1, sizeof(*f));
	safeshare__v1__field_value__init(f);
	f->name = xstrdup(name);
	f->value = xstrdup(value);
	r->fields[r->n_fields++] = f;
	s->nfields++;
	return 0;
}

static int
on_consent(void *arg, const char *state, const char *agencies, const char *purposes,
    int64_t expires_at, int64_t decided_at, const char *recorded_by,
    int64_t recorded_at)
{
	struct show			 *s = arg;
	Safeshare__V1__HolderShowConsent *c;

	if (s->out.n_consents == SHOW_MAX_HISTORY) {
		s->out.truncated = 1;
		return 0;
	}
	c = xcalloc(1, sizeof(*c));
	safeshare__v1__holder_show_consent__init(c);
	c->state = xstrdup(state);
	c->agencies = split_scope(agencies, &c->n_agencies);
	c->purposes = split_scope(purposes, &c->n_purposes);
	c->expires = expires_at;
	c->decided = decided_at;
	c->recorded_by = xstrdup(recorded_by);
	c->recorded = recorded_at;
	s->con[s->out.n_consents++] = c;
	return 0;
}

static int
on_flag(void *arg, const char *flag, const char *set_by, int64_t set_at,
    const char *removed_by, int64_t removed_at)
{
	struct show			*s = arg;
	Safeshare__V1__HolderShowFlag	*f;

	if (s->out.n_flags == SHOW_MAX_HISTORY) {
		s->out.truncated = 1;
		return 0;
	}
	f = xcalloc(1, sizeof(*f));
	safeshare__v1__holder_show_flag__init(f);
	f->flag = xstrdup(flag);
	f->set_by = xstrdup(set_by);
	f->set_at = set_at;
	f->removed_by = xstrdup(removed_by);
	f->removed_at = removed_at;
	s->flg[s->out.n_flags++] = f;
	return 0;
}

/* 1 if every item of scope a is in scope b (n 0: all). */
static int
scope_within(char **a, size_t na, char **b, size_t nb)
{
	if (nb == 0)
		return 1;
	if (na == 0)
		return 0;
	for (size_t i = 0; i < na; i++) {
		size_t j;

		for (j = 0; j < nb && strcmp(a[i], b[j]) != 0; j++)
			;
		if (j == nb)
			return 0;
	}
	return 1;
}

/*
 * D3: the policy reads the latest decision whose scope covers the agency
 * and purpose asked about. A decision is in force while no later one
 * covers all of its scope and it has not expired. Consents are newest first.
 */
static void
mark_in_force(struct show *s, int64_t now)
{
	for (size_t i = 0; i < s->out.n_consents; i++) {
		Safeshare__V1__HolderShowConsent *c = s->con[i];
		int covered = 0;

		for (size_t k = 0; k < i && !covered; k++)
			covered = scope_within(c->agencies, c->n_agencies,
			    s->con[k]->agencies, s->con[k]->n_agencies) &&
			    scope_within(c->purposes, c->n_purposes,
			    s->con[k]->purposes, s->con[k]->n_purposes);
		c->expired = c->expires != 0 && c->expires <= now;
		c->in_force = !covered && !c->expired;
	}
}

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
show_free(struct show *s)
{
	for (size_t i = 0; i < s->out.n_records; i++) {
		for (size_t j = 0; j < s->rec[i]->n_fields; j++) {
			free(s->rec[i]->fields[j]->name);
			free(s->rec[i]->fields[j]->value);
			free(s->rec[i]->fields[j]);
		}
		free(s->rec[i]->fields);
		free(s->rec[i]->record_type);
		free(s->rec[i]);
	}
	for (size_t i = 0; i < s->out.n_consents; i++) {
		strv_free(s->con[i]->agencies, s->con[i]->n_agencies);
		strv_free(s->con[i]->purposes, s->con[i]->n_purposes);
		free(s->con[i]->state);
		free(s->con[i]->recorded_by);
		free(s->con[i]);
	}
	for (size_t i = 0; i < s->out.n_flags; i++) {
		free(s->flg[i]->flag);
		free(s->flg[i]->set_by);
		free(s->flg[i]->removed_by);
		free(s->flg[i]);
	}
	free(s);
}

/*
 * The route table has admitted the holder role and taken a rate token
 * (routes.c). One exit: everything is freed at done.
 */
void
holder_handle_show(struct req *r)
{
	static const struct store_show_cb cb = { on_record, on_field, on_consent,
	    on_flag };
	Safeshare__V1__HolderShowRequest *rq = NULL;
	struct server		*srv = r->srv;
	struct evhttp_request	*req = r->ev;
	const struct agency	*ag = r->agency;
	const uint8_t		*body;
	struct audit_entry	 e;
	struct show		*s = NULL;
	char			 holder[PROTOCOL_ID_MAX + 2], msg[256], why[256];
	const char		*subject;
	size_t			 len;
	uint8_t			*buf;
	int			 rc;

	body = req_body(r, &len);
	if ((rq = safeshare__v1__holder_show_request__unpack(NULL, len, body)) == NULL) {
		reply_error(req, 400, "malformed_request", "the body is not a valid "
		    "safeshare.v1.HolderShowRequest", 0);
		goto done;
	}
	subject = rq->subject_id;
	if (subject[0] == '\0') {
		reply_error(req, 400, "missing_field", "subject_id is required", 0);
		goto done;
	}
	/* The same check as holder ops' (src/holder.c): no control, bidi or blank ids. */
	if (strlen(subject) > 128 || field_value_problem(FT_STRING, subject) != NULL ||
	    text_problem(subject, 128, 0) != NULL) {
		reply_error(req, 400, "bad_value", "subject_id must be at most 128 "
		    "printable characters", 0);
		goto done;
	}
	server_read_scope(srv);
	if ((rc = storage_subject_holder(srv->store, subject, holder,
	    sizeof(holder), why, sizeof(why))) == -1)
		goto store_failed;
	if (rc == 0 || strcmp(holder, ag->id) != 0) {
		/* Another holder's subject reads exactly as an unknown one. */
		memset(&e, 0, sizeof(e));
		e.agency = ag->id;
		e.cert_fp = r->peer.fp;
		e.subject = subject;
		e.request_id = r->rid;
		snprintf(msg, sizeof(msg), "subject %s has no records; put a record "
		    "first", subject);
		refuse_entry(srv, req, &e, 404, "unknown_subject", msg);
		goto done;
	}
	s = xcalloc(1, sizeof(*s));
	safeshare__v1__holder_show__init(&s->out);
	if (storage_show(srv->store, subject, SHOW_MAX_HISTORY, &cb, s, why,
	    sizeof(why)) == -1)
		goto store_failed;
	if (storage_nhs_of(srv->store, subject, s->nhs, why, sizeof(why)) == -1)
		goto store_failed;
	s->out.nhs_number = s->nhs;
	s->out.subject_id = (char *)subject;
	s->out.now = (int64_t)time(NULL);
	s->out.records = s->rec;
	s->out.consents = s->con;
	s->out.flags = s->flg;
	mark_in_force(s, s->out.now);
	/* Counts only: never the subject or its values in the daemon's log. */
	log_info("event=holder_show agency=%s request_id=%s records=%zu fields=%zu "
	    "consents=%zu flags=%zu truncated=%d", ag->id, r->rid, s->out.n_records,
	    s->nfields, s->out.n_consents, s->out.n_flags, s->out.truncated);
	len = safeshare__v1__holder_show__get_packed_size(&s->out);
	buf = xcalloc(len + 1, 1);
	safeshare__v1__holder_show__pack(&s->out, buf);
	reply(req, 200, buf, len);
	goto done;
store_failed:
	log_warnx("event=store_failed error=\"%s\"", why);
	reply_error(req, 503, "store_unavailable", "the record store could not be "
	    "read", 0);
done:
	if (s != NULL)
		show_free(s);
	safeshare__v1__holder_show_request__free_unpacked(rq, NULL);
}
