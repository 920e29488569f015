/*
 * The daemon's route table (daemon/routes.c, issue 16 item 1): one row per
 * path, and the row is all there is. These tests check the table against
 * the wire contract (every rpc of proto/safeshare.proto is one row),
 * default deny (every row that is not public names the refusal it logs)
 * and the docs (every path in docs/api.md, every /metrics label in the
 * documented set). The handlers and the reply helpers are stubs here:
 * only the table is under test.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rate.h"
#include "req.h"
#include "routes.h"
#include "wire.h"

/* Stubs for what routes.c calls; the table tests never dispatch. */
#define STUB(name)	void name(struct req *r) { (void)r; }
STUB(disclose_handle)
STUB(locate_handle)
STUB(admin_handle_reload)
STUB(holder_handle)
STUB(holder_handle_show)
STUB(logproof_handle_consistency)
STUB(auditor_handle_query)
STUB(auditor_handle_stats)
STUB(auditor_handle_reviews)
STUB(auditor_handle_review)
STUB(auditor_handle_inform)
STUB(auditor_handle_inform_done)
STUB(auditor_handle_checkpoints)
STUB(auditor_handle_verify)
STUB(auditor_handle_report)
STUB(feed_handle_accesses)
STUB(feed_handle_alerts)
STUB(server_handle_health)
STUB(server_handle_metrics)

void peer_of(struct evhttp_request *e, struct peer *p) { (void)e; memset(p, 0, sizeof(*p)); }
const struct agency *peer_agency(struct server *s, const struct peer *p)
{ (void)s; (void)p; return NULL; }
void reply_error(struct evhttp_request *e, int st, const char *c, const char *m, uint64_t id)
{ (void)e; (void)st; (void)c; (void)m; (void)id; }
void refuse(struct server *s, struct evhttp_request *e, const struct peer *p,
    const char *a, int st, const char *c, const char *m, const char *rid)
{ (void)s; (void)e; (void)p; (void)a; (void)st; (void)c; (void)m; (void)rid; }
void new_request_id(char out[33]) { snprintf(out, 33, "0"); }
int rate_admit(struct server *s, struct evhttp_request *e, const char *a)
{ (void)s; (void)e; (void)a; return 1; }
void server_note_route(struct evhttp_request *e, const struct route *rt) { (void)e; (void)rt; }

static char *
slurp(const char *path)
{
	FILE	*f = fopen(path, "r");
	char	*buf;
	long	 n;

	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	cr_assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	return buf;
}

Test(routes, every_rpc_is_one_row)
{
	const ProtobufCServiceDescriptor *svcs[] = {
		&safeshare__v1__disclosure_service__descriptor,
		&safeshare__v1__holder_service__descriptor,
		&safeshare__v1__audit_service__descriptor,
		&safeshare__v1__log_service__descriptor,
		&safeshare__v1__admin_service__descriptor,
	};
	size_t nrpc = 0, nsvc = 0;

	for (size_t i = 0; i < sizeof(svcs) / sizeof(svcs[0]); i++)
		for (unsigned m = 0; m < svcs[i]->n_methods; m++) {
			const struct route *rt = route_connect(svcs[i]->name,
			    svcs[i]->methods[m].name);

			cr_assert_not_null(rt, "rpc %s/%s has no row in the route table",
			    svcs[i]->name, svcs[i]->methods[m].name);
			cr_expect_eq(rt->cmd, EVHTTP_REQ_POST, "%s", rt->path);
			nrpc++;
		}
	for (size_t i = 0; i < nroutes; i++)
		if (routes[i].svc != NULL)
			nsvc++;
	cr_expect_eq(nrpc, nsvc, "rows name %zu rpcs; the services have %zu", nsvc, nrpc);
	cr_expect_null(route_connect("safeshare.v1.AuditService", "Nope"));
}

Test(routes, rows_are_whole_and_unique)
{
	for (size_t i = 0; i < nroutes; i++) {
		const struct route *rt = &routes[i];

		cr_assert_not_null(rt->path);
		cr_expect_not_null(rt->fn, "%s has no handler", rt->path);
		cr_expect_not_null(rt->metric, "%s has no metric label", rt->path);
		cr_expect_eq(route_find(rt->path), rt, "%s is in two rows", rt->path);
		cr_expect_eq(route_index(rt), i);
		/* Default deny: a row that needs an agency says how it refuses. */
		if (rt->roles != ROUTE_PUBLIC)
			cr_expect(rt->deny_code != NULL && rt->deny_msg != NULL,
			    "%s refuses without a code", rt->path);
		else
			cr_expect_eq(rt->cmd, EVHTTP_REQ_GET, "%s: a public POST", rt->path);
		/* Only holder batches may be as large as an import. */
		if (rt->body == BODY_IMPORT)
			cr_expect_str_eq(rt->path, "/v1/holder/ops");
	}
	cr_expect_null(route_find("/v1/audit/nope"));
	cr_expect_null(route_find("/v1/disclosures/"));
	cr_expect_null(route_find(NULL));
	cr_expect_eq(route_index(NULL), nroutes);
	cr_expect_lt(nroutes, ROUTE_MAX);
}

/* The row for path, which must exist. */
static const struct route *
row(const char *path)
{
	const struct route *rt = route_find(path);

	cr_assert_not_null(rt, "no row for %s", path);
	return rt;
}

Test(routes, roles_as_documented)
{
	cr_expect_eq(row("/v1/admin/reload")->roles, ROLE_ADMIN);
	cr_expect_eq(row("/v1/holder/ops")->roles, ROLE_HOLDER);
	cr_expect_eq(row("/v1/holder/show")->roles, ROLE_HOLDER);
	cr_expect_eq(row("/v1/audit/review")->roles, ROLE_GUARDIAN | ROLE_ADMIN);
	cr_expect_eq(row("/v1/audit/query")->roles, ROLE_AUDITOR | ROLE_GUARDIAN);
	cr_expect_eq(row("/v1/disclosures")->roles, ROUTE_AGENCY);
	cr_expect_eq(row("/v1/log/consistency")->roles, ROUTE_AGENCY);
	cr_expect_eq(row("/healthz")->roles, ROUTE_PUBLIC);
	/* Feeds (issue 18): a holder's own accesses; alerts for the guardian. */
	cr_expect_eq(row("/v1/holder/accesses")->roles, ROLE_HOLDER);
	cr_expect_eq(row("/v1/audit/alerts")->roles, ROLE_AUDITOR | ROLE_GUARDIAN);
	/* Rate tokens: the calls that read or write records. */
	cr_expect(row("/v1/disclosures")->rate);
	cr_expect(row("/v1/holder/ops")->rate);
	cr_expect(!row("/v1/audit/query")->rate);
}

Test(routes, documented)
{
	char	*api = slurp(SOURCE_DIR "/docs/api.md");
	char	*line = strstr(api, "safeshare_http_responses_total{route,status}");
	char	 labels[512], label[64];

	cr_assert_not_null(line);
	snprintf(labels, sizeof(labels), "%.*s", (int)strcspn(line, "\n"), line);
	for (size_t i = 0; i < nroutes; i++) {
		snprintf(label, sizeof(label), "`%s`", routes[i].metric);
		cr_expect_not_null(strstr(labels, label), "label %s is not in docs/api.md",
		    routes[i].metric);
		cr_expect_not_null(strstr(api, routes[i].path), "%s is not in docs/api.md",
		    routes[i].path);
	}
	free(api);
}
