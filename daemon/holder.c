/*
 * POST /v1/holder/ops (role holder): records, consent and flags for the
 * holder's own subjects, all or nothing per request (src/holder.c).
 */
#include <event2/buffer.h>
#include <event2/http.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "holder.h"
#include "http.h"
#include "log.h"

static Safeshare__V1__HolderProblem **
problems(const struct holder_report *r, Safeshare__V1__HolderProblem *pv)
{
	Safeshare__V1__HolderProblem **pp = xcalloc(r->nproblems + 1, sizeof(*pp));

	for (size_t i = 0; i < r->nproblems; i++) {
		safeshare__v1__holder_problem__init(&pv[i]);
		pv[i].index = (uint32_t)r->problems[i].index;
		pv[i].line = r->problems[i].line;
		pv[i].code = (char *)r->problems[i].code;
		pv[i].field = (char *)r->problems[i].field;
		pv[i].message = (char *)r->problems[i].message;
		pp[i] = &pv[i];
	}
	return pp;
}

static void
reply_problems(struct evhttp_request *req, const struct holder_report *r)
{
	Safeshare__V1__Error		 e = SAFESHARE__V1__ERROR__INIT;
	Safeshare__V1__HolderProblem	*pv = xcalloc(r->nproblems, sizeof(*pv));
	const struct holder_problem	*first = &r->problems[0];
	char				 msg[384];
	size_t				 len;
	uint8_t				*buf;

	snprintf(msg, sizeof(msg), "%zu problem%s, nothing was written; first: %s",
	    r->nproblems + r->more, r->nproblems + r->more == 1 ? "" : "s",
	    first->message);
	e.code = (char *)first->code;
	e.message = msg;
	e.problems = problems(r, pv);
	e.n_problems = r->nproblems;
	len = safeshare__v1__error__get_packed_size(&e);
	buf = xcalloc(len + 1, 1);
	safeshare__v1__error__pack(&e, buf);
	free(e.problems);
	free(pv);
	reply(req, first->status, buf, len);
}

void
holder_handle(struct server *srv, struct evhttp_request *req)
{
	struct evbuffer			*in = evhttp_request_get_input_buffer(req);
	Safeshare__V1__HolderRequest	*hr;
	Safeshare__V1__HolderResult	 res = SAFESHARE__V1__HOLDER_RESULT__INIT;
	struct holder_report		 r;
	const struct agency		*ag;
	struct peer			 p;
	size_t				 len = evbuffer_get_length(in);
	uint8_t				*buf;
	char				 rid[33];
	int				 rc;

	new_request_id(rid);
	peer_of(req, &p);
	if ((ag = peer_agency(srv, &p)) == NULL || !(ag->roles & ROLE_HOLDER)) {
		refuse(srv, req, &p, ag ? ag->id : NULL, 403, "not_holder",
		    "writing records needs the holder role", rid);
		return;
	}
	if (!rate_take(srv, ag->id, mono_seconds())) {
		reply_error(req, 429, "rate_limited", "too many requests from this "
		    "agency; retry after a second", 0);
		return;
	}
	hr = safeshare__v1__holder_request__unpack(NULL, len, evbuffer_pullup(in, -1));
	if (hr == NULL) {
		reply_error(req, 400, "malformed_request", "the body is not a valid "
		    "safeshare.v1.HolderRequest", 0);
		return;
	}
	if (hr->n_ops == 0) {
		safeshare__v1__holder_request__free_unpacked(hr, NULL);
		reply_error(req, 400, "missing_field", "the request has no operations", 0);
		return;
	}
	rc = holder_apply(srv->store, srv->proto, ag, hr->ops, hr->n_ops, hr->dry_run,
	    time(NULL), &r);
	/* Counts only: never subject ids or values in the daemon's log. */
	log_info("event=holder_write agency=%s ops=%zu applied=%zu problems=%zu "
	    "dry_run=%d", ag->id, hr->n_ops, r.applied, r.nproblems + r.more,
	    hr->dry_run ? 1 : 0);
	safeshare__v1__holder_request__free_unpacked(hr, NULL);
	if (rc == -1) {
		log_warnx("event=store_failed error=\"%s\"", r.error);
		reply_error(req, 500, "store_unavailable", "the record store could not "
		    "be written; nothing was changed", 0);
	} else if (rc == 1)
		reply_problems(req, &r);
	else {
		res.applied = (uint32_t)r.applied;
		res.checked = (uint32_t)r.checked;
		len = safeshare__v1__holder_result__get_packed_size(&res);
		buf = xcalloc(len + 1, 1);
		safeshare__v1__holder_result__pack(&res, buf);
		reply(req, 200, buf, len);
	}
	holder_report_free(&r);
}
