/*
 * Which store the disclosure log speaks of (issue 15). Holder entries name
 * the store their batch was for (case_ref "store:<id>"); this file adds the
 * entries of kind "store": a store the log has not seen last is now open
 * (decision opened: reason first or replaced), and a data file was loaded
 * into it with `safeshared -l` (decision loaded). -l does not write the
 * log itself: a daemon may be running, and the log has one writer; the
 * store keeps the load until the daemon has logged it. Runs at start,
 * before the log writer thread, so it appends directly.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "req.h"
#include "log.h"
#include "server.h"

struct loads {
	struct server	*srv;
	size_t		 logged;
	int		 failed;
	char		 err[256];	/* why the log or the store's note failed, or "" */
};

static void
store_entry(struct audit_entry *e, const struct server *srv, const char *decision,
    const char *reason)
{
	memset(e, 0, sizeof(*e));
	e->time = time(NULL);
	e->kind = "store";
	e->decision = decision;
	e->reason = reason;
	e->case_ref = srv->store_ref;
	e->protocol_id = srv->proto->id;
	e->protocol_version = srv->proto->version;
	e->protocol_sha256 = srv->proto->sha256;
}

/* One -l load: its own entry, then the store notes the entry's seq. */
static int
log_load(int64_t id, const char *file, size_t subjects, int64_t loaded_at,
    void *arg)
{
	struct loads		*l = arg;
	struct server		*srv = l->srv;
	struct audit_entry	 e, *ep = &e;
	struct tm		 tm;
	time_t			 t = (time_t)loaded_at;
	char			 released[96], rid[40];

	store_entry(&e, srv, "loaded", "data_file");
	gmtime_r(&t, &tm);
	snprintf(released, sizeof(released), "subjects=%zu loaded_at=", subjects);
	strftime(released + strlen(released), sizeof(released) - strlen(released),
	    "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(rid, sizeof(rid), "load-%lld", (long long)id);
	e.released = released;
	e.justification = file;
	e.request_id = rid;
	/*
	 * A crash between the append and the store's note logs the load
	 * again at the next start: twice, never not at all.
	 */
	if (logstore_append(srv->audit, &ep, 1, l->err, sizeof(l->err)) == -1 ||
	    storage_load_logged(srv->store, id, e.seq, l->err,
	    sizeof(l->err)) == -1) {
		l->failed = 1;
		return -1;
	}
	l->logged++;
	return 0;
}

int
storelog_start(struct server *srv, char *err, size_t errlen)
{
	struct audit_entry	 e, *ep = &e;
	struct loads		 l = { srv, 0, 0, "" };
	char			 last[128], why[160];

	if (logstore_last_store(srv->audit, last, sizeof(last), l.err,
	    sizeof(l.err)) == -1)
		goto fail;
	if (strcmp(last, srv->store_ref) != 0) {
		store_entry(&e, srv, "opened", last[0] != '\0' ? "replaced" : "first");
		if (last[0] != '\0') {
			snprintf(why, sizeof(why), "replaces %s", last);
			e.justification = why;
		}
		if (logstore_append(srv->audit, &ep, 1, l.err, sizeof(l.err)) == -1)
			goto fail;
		log_info("event=store_opened store=%s reason=%s seq=%llu",
		    srv->store_ref, e.reason, (unsigned long long)e.seq);
	}
	if (storage_unlogged_loads(srv->store, log_load, &l, l.err,
	    sizeof(l.err)) == -1 || l.failed)
		goto fail;
	if (l.logged > 0)
		log_info("event=store_loads_logged count=%zu", l.logged);
	return 0;
fail:
	return errorf(err, errlen, "logging the store: %s", l.err);
}
