/* POST /v1/admin/reload: re-read the sharing protocol (role admin, D13). */
#include <event2/http.h>

#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "wire.h"

void
admin_handle_reload(struct server *srv, struct evhttp_request *req)
{
	Safeshare__V1__ReloadResult	 r = SAFESHARE__V1__RELOAD_RESULT__INIT;
	const struct agency		*ag;
	struct diag			 d = { 0 };
	struct peer			 p;
	uint64_t			 seq;
	size_t				 len;
	uint8_t				*buf;
	char				 rid[33], *by;

	new_request_id(rid);
	peer_of(req, &p);
	if ((ag = peer_agency(srv, &p)) == NULL || !(ag->roles & ROLE_ADMIN)) {
		refuse(srv, req, &p, ag ? ag->id : NULL, 403, "not_admin",
		    "reloading the protocol needs the admin role", rid);
		return;
	}
	/* The reload frees the old protocol, and ag with it. */
	by = xstrdup(ag->id);
	r.ok = server_reload(srv, by, &d, &seq) == 0;
	free(by);
	r.protocol_id = srv->proto->id;
	r.protocol_version = srv->proto->version;
	r.protocol_sha256 = srv->proto->sha256;
	r.problems = d.msgs;
	r.n_problems = d.n;
	r.disclosure_id = seq;
	len = safeshare__v1__reload_result__get_packed_size(&r);
	buf = xcalloc(len + 1, 1);
	safeshare__v1__reload_result__pack(&r, buf);
	reply(req, 200, buf, len);
	diag_free(&d);
}
