/*
 * The route table: every path safeshared serves, who may call it, how
 * large its body may be, its /metrics label, the Connect rpc that is the
 * same call, and the handler that answers it. route_dispatch() is the
 * only reader that decides anything: it refuses what a row does not
 * allow and hands the rest to the row's handler as a struct req (req.h).
 *
 * To add a route (docs/hacking.md): write a handler `void x_handle(struct
 * req *)` in its own file (or the file of its concern) that decodes the
 * body, does the work and answers with reply() or reply_error() on every
 * path; declare it in routes.h; add one row below. Nothing else routes:
 * the role check, the rate token, the body limit, the 404/405 replies,
 * the Connect name and the /metrics counts all come from the row.
 */
#include <event2/buffer.h>
#include <event2/http.h>

#include <string.h>

#include "log.h"
#include "rate.h"
#include "req.h"
#include "routes.h"
#include "wire.h"

#define AUDITORS	(ROLE_AUDITOR | ROLE_GUARDIAN)
#define SVC(s)		&safeshare__v1__##s##_service__descriptor

#define NOT_AUDITOR(what) "not_auditor", what " needs the auditor role"

/*
 * Rows with the same metric label are counted together in /metrics
 * (safeshare_http_responses_total{route=...}); a path in no row counts as
 * "other". The labels are a bounded set: add one only for a new concern.
 */
const struct route routes[] = {
	{ EVHTTP_REQ_POST, "/v1/disclosures", ROUTE_AGENCY, "unknown_agency",
	    "this certificate does not belong to any agency in the sharing protocol",
	    1, BODY_SMALL, "disclosures", SVC(disclosure), "Request", disclose_handle },
	/* Who holds records about a person (issue 17); requester checked and logged as a locate. */
	{ EVHTTP_REQ_POST, "/v1/locate", ROUTE_AGENCY, "unknown_agency",
	    "this certificate does not belong to any agency in the sharing protocol",
	    1, BODY_SMALL, "locate", SVC(disclosure), "Locate", locate_handle },
	{ EVHTTP_REQ_POST, "/v1/holder/ops", ROLE_HOLDER, "not_holder",
	    "writing records needs the holder role",
	    1, BODY_IMPORT, "holder", SVC(holder), "Write", holder_handle },
	{ EVHTTP_REQ_POST, "/v1/holder/show", ROLE_HOLDER, "not_holder",
	    "reading back records needs the holder role",
	    1, BODY_SMALL, "holder", SVC(holder), "Show", holder_handle_show },
	/* Every use of the holder's own records, long-polled (feed.c, D20). */
	{ EVHTTP_REQ_POST, "/v1/holder/accesses", ROLE_HOLDER, "not_holder",
	    "reading the access feed needs the holder role",
	    1, BODY_SMALL, "holder", SVC(holder), "Accesses", feed_handle_accesses },
	{ EVHTTP_REQ_POST, "/v1/admin/reload", ROLE_ADMIN, "not_admin",
	    "reloading the protocol needs the admin role",
	    0, BODY_SMALL, "admin", SVC(admin), "Reload", admin_handle_reload },
	{ EVHTTP_REQ_POST, "/v1/audit/query", AUDITORS,
	    NOT_AUDITOR("reading the disclosure log"),
	    0, BODY_SMALL, "audit", SVC(audit), "Query", auditor_handle_query },
	{ EVHTTP_REQ_POST, "/v1/audit/stats", AUDITORS,
	    NOT_AUDITOR("reading the disclosure log"),
	    0, BODY_SMALL, "audit", SVC(audit), "Stats", auditor_handle_stats },
	{ EVHTTP_REQ_POST, "/v1/audit/reviews", AUDITORS | ROLE_ADMIN, "not_auditor",
	    "listing reviews needs the auditor, guardian or admin role",
	    0, BODY_SMALL, "audit", SVC(audit), "Reviews", auditor_handle_reviews },
	{ EVHTTP_REQ_POST, "/v1/audit/review", ROLE_GUARDIAN | ROLE_ADMIN, "not_guardian",
	    "reviewing overrides needs the guardian or admin role",
	    0, BODY_SMALL, "audit", SVC(audit), "Review", auditor_handle_review },
	{ EVHTTP_REQ_POST, "/v1/audit/inform", AUDITORS,
	    NOT_AUDITOR("listing inform-the-subject items"),
	    0, BODY_SMALL, "audit", SVC(audit), "Inform", auditor_handle_inform },
	{ EVHTTP_REQ_POST, "/v1/audit/inform/done", AUDITORS,
	    NOT_AUDITOR("marking inform-the-subject items"),
	    0, BODY_SMALL, "audit", SVC(audit), "InformDone", auditor_handle_inform_done },
	{ EVHTTP_REQ_POST, "/v1/audit/checkpoints", AUDITORS,
	    NOT_AUDITOR("reading the disclosure log"),
	    0, BODY_SMALL, "audit", SVC(audit), "Checkpoints", auditor_handle_checkpoints },
	{ EVHTTP_REQ_POST, "/v1/audit/verify", AUDITORS,
	    NOT_AUDITOR("verifying the disclosure log"),
	    0, BODY_SMALL, "audit", SVC(audit), "Verify", auditor_handle_verify },
	{ EVHTTP_REQ_POST, "/v1/audit/report", AUDITORS, "not_auditor",
	    "reports on the disclosure log need the auditor or guardian role",
	    0, BODY_SMALL, "audit", SVC(audit), "Report", auditor_handle_report },
	{ EVHTTP_REQ_POST, "/v1/audit/alerts", AUDITORS, "not_guardian",
	    "alerts need the guardian or auditor role",
	    0, BODY_SMALL, "audit", SVC(audit), "Alerts", feed_handle_alerts },
	{ EVHTTP_REQ_GET, "/healthz", ROUTE_PUBLIC, NULL, NULL,
	    0, BODY_SMALL, "healthz", NULL, NULL, server_handle_health },
	{ EVHTTP_REQ_GET, "/metrics", ROUTE_PUBLIC, NULL, NULL,
	    0, BODY_SMALL, "metrics", NULL, NULL, server_handle_metrics },
	/* Any agency may witness the log (logproof.c). */
	{ EVHTTP_REQ_POST, "/v1/log/consistency", ROUTE_AGENCY, "unknown_agency",
	    "this certificate does not belong to any agency in the sharing protocol",
	    0, BODY_SMALL, "other", SVC(log), "Consistency", logproof_handle_consistency },
};
const size_t nroutes = sizeof(routes) / sizeof(routes[0]);
_Static_assert(sizeof(routes) / sizeof(routes[0]) < ROUTE_MAX,
    "more routes than ROUTE_MAX: raise it in routes.h");

const struct route *
route_find(const char *path)
{
	for (size_t i = 0; path != NULL && i < nroutes; i++)
		if (strcmp(path, routes[i].path) == 0)
			return &routes[i];
	return NULL;
}

const struct route *
route_connect(const char *svc, const char *method)
{
	for (size_t i = 0; i < nroutes; i++)
		if (routes[i].svc != NULL && strcmp(routes[i].svc->name, svc) == 0 &&
		    strcmp(routes[i].method, method) == 0)
			return &routes[i];
	return NULL;
}

size_t
route_index(const struct route *rt)
{
	return rt != NULL ? (size_t)(rt - routes) : nroutes;
}

/* evhttp enforces the larger limit; the row's is enforced here. */
static int
body_too_large(struct server *srv, struct evhttp_request *ev, const struct route *rt)
{
	size_t len = evbuffer_get_length(evhttp_request_get_input_buffer(ev));
	int max = rt->body == BODY_IMPORT ? srv->conf->max_import : srv->conf->max_body;

	if (len <= (size_t)max)
		return 0;
	evhttp_add_header(evhttp_request_get_output_headers(ev), "Connection", "close");
	reply_error(ev, 413, "body_too_large", "the request body is larger than "
	    "this endpoint accepts", 0);
	return 1;
}

/*
 * The row's roles (default deny): the peer's agency, or a logged 403 and
 * NULL. A peer with no verified identity is refused as such on every route
 * that needs one.
 */
static const struct agency *
admit(struct req *r)
{
	const struct route	*rt = r->route;
	const struct agency	*ag;

	new_request_id(r->rid);
	peer_of(r->ev, &r->peer);
	if (!r->peer.ok) {
		refuse(r->srv, r->ev, &r->peer, NULL, 403, "no_identity",
		    "no verified client certificate", r->rid);
		return NULL;
	}
	ag = peer_agency(r->srv, &r->peer);
	if (ag == NULL || (rt->roles != ROUTE_AGENCY && !(ag->roles & rt->roles))) {
		refuse(r->srv, r->ev, &r->peer, ag ? ag->id : NULL, 403, rt->deny_code,
		    rt->deny_msg, r->rid);
		return NULL;
	}
	if (rt->rate && !rate_admit(r->srv, r->ev, ag->id)) {
		log_warnx("event=rate_limited agency=%s", ag->id);
		return NULL;
	}
	return ag;
}

void
route_dispatch(struct server *srv, struct evhttp_request *ev, const char *path)
{
	const struct route	*rt = route_find(path);
	struct req		 r;

	/* A Connect call counts in /metrics under the route that serves it. */
	server_note_route(ev, rt);
	if (rt == NULL) {
		reply_error(ev, 404, "not_found", "no such endpoint", 0);
		return;
	}
	if (body_too_large(srv, ev, rt))
		return;
	if (evhttp_request_get_command(ev) != rt->cmd) {
		reply_error(ev, 405, "method_not_allowed",
		    rt->cmd == EVHTTP_REQ_GET ? "use GET" : "use POST", 0);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.srv = srv;
	r.ev = ev;
	r.route = rt;
	if (rt->roles != ROUTE_PUBLIC && (r.agency = admit(&r)) == NULL)
		return;
	rt->fn(&r);
}

const uint8_t *
req_body(struct req *r, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->ev);

	*len = evbuffer_get_length(in);
	return evbuffer_pullup(in, -1);
}
