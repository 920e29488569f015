/*
 * POST /v1/admin/reload: re-read the sharing protocol (D13). The route
 * table admits only the admin role (routes.c).
 */
#include <event2/http.h>

#include <stdlib.h>
#include <string.h>

#include "req.h"
#include "routes.h"
#include "log.h"
#include "wire.h"

void
admin_handle_reload(struct req *rq)
{
	Safeshare__V1__ReloadResult	 r = SAFESHARE__V1__RELOAD_RESULT__INIT;
	struct server			*srv = rq->srv;
	struct diag			 d = { 0 };
	uint64_t			 seq;
	size_t				 len;
	uint8_t				*buf;
	char				*by;
	int				 rc;

	/* The reload frees the old protocol, and rq->agency with it. */
	by = xstrdup(rq->agency->id);
	rc = server_reload(srv, by, &d, &seq);
	free(by);
	/*
	 * D7 as for every route: with the log unwritable (its database
	 * unreachable, say) the reload cannot be logged, so it did not happen;
	 * 503, like the other routes, not a 200 with ok=false.
	 */
	if (rc == -2) {
		reply_error(rq->ev, 503, "audit_unavailable", "the disclosure log "
		    "cannot be written; the protocol was not reloaded", 0);
		diag_free(&d);
		return;
	}
	r.ok = rc == 0;
	r.protocol_id = srv->proto->id;
	r.protocol_version = srv->proto->version;
	r.protocol_sha256 = srv->proto->sha256;
	r.problems = d.msgs;
	r.n_problems = d.n;
	r.disclosure_id = seq;
	len = safeshare__v1__reload_result__get_packed_size(&r);
	buf = xcalloc(len + 1, 1);
	safeshare__v1__reload_result__pack(&r, buf);
	reply(rq->ev, 200, buf, len);
	diag_free(&d);
}
