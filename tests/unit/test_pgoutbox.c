/*
 * Outbound notification's cursors and deliverers on PostgreSQL
 * (src/pgstore_outbox.c; docs/deploy-ha.md "Notification with several
 * daemons"): two store handles stand for two daemons' notifiers. One
 * deliverer per agency; the cursor starts at the log's end, moves on and
 * never back; the deliverer's session ended, it has lost the role and
 * cannot save, and the other takes over at the committed cursor.
 */
#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <stdint.h>
#include <stdio.h>

#include "pgstore.h"
#include "t_pg.h"

static struct pgstore *
notifier(const char *ci)
{
	struct pgstore	*p;
	char		 err[256] = "";

	cr_assert_eq(pgstore_open(&p, ci, err, sizeof(err)), 0, "%s", err);
	return p;
}

Test(pgoutbox, one_deliverer_and_a_takeover_at_the_cursor)
{
	char		 ci[1200], err[256] = "";
	PGconn		*adm = t_pg_schema("t_outbox", ci, sizeof(ci));
	struct pgstore	*a = notifier(ci), *b = notifier(ci);
	uint64_t	 cur = 0;
	int		 ha = 0, hb = 0;

	/* The first claim makes the row at start (the log's end). */
	cr_assert_eq(pgstore_outbox_claim(a, "csc", 7, &ha, &cur, err,
	    sizeof(err)), 0, "%s", err);
	cr_expect_eq(ha, 1);
	cr_expect_eq(cur, 7);
	cr_assert_eq(pgstore_outbox_claim(b, "csc", 99, &hb, &cur, err,
	    sizeof(err)), 0, "%s", err);
	cr_expect_eq(hb, 0, "two deliverers for one receiver");
	/* Another receiver is free for b. */
	cr_assert_eq(pgstore_outbox_claim(b, "health", 3, &hb, &cur, err,
	    sizeof(err)), 0, "%s", err);
	cr_expect_eq(hb, 1);
	hb = 0;
	/* Moved on, never back. */
	cr_expect_eq(pgstore_outbox_save(a, "csc", 20, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(pgstore_outbox_save(a, "csc", 12, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(t_pg_int(adm, "SELECT cursor FROM notify_outbox WHERE "
	    "agency = 'csc'"), 20);
	/* Still held: the check is a round trip, the cursor the committed one. */
	cr_assert_eq(pgstore_outbox_claim(a, "csc", 0, &ha, &cur, err,
	    sizeof(err)), 0, "%s", err);
	cr_expect_eq(ha, 1);
	cr_expect_eq(cur, 20);

	/* a's session ends (its daemon died, or the server cut it). */
	t_pg_terminate(adm, pgstore_backend_pid(a));
	cr_expect_eq(pgstore_outbox_save(a, "csc", 30, err, sizeof(err)), -1,
	    "a save on a lost session");
	cr_assert_eq(pgstore_outbox_claim(b, "csc", 99, &hb, &cur, err,
	    sizeof(err)), 0, "%s", err);
	cr_expect_eq(hb, 1, "the other did not take over");
	cr_expect_eq(cur, 20, "taken over at the committed cursor");
	/* a, back on a new session, stands by. */
	cr_assert_eq(pgstore_outbox_claim(a, "csc", 0, &ha, &cur, err,
	    sizeof(err)), 0, "%s", err);
	cr_expect_eq(ha, 0);
	cr_expect_eq(pgstore_outbox_save(b, "csc", 25, err, sizeof(err)), 0, "%s", err);
	pgstore_close(b);
	/* b's session closed: a takes over at 25. */
	for (int i = 0; i < 50 && !ha; i++) {
		cr_assert_eq(pgstore_outbox_claim(a, "csc", 0, &ha, &cur, err,
		    sizeof(err)), 0, "%s", err);
		if (!ha)
			t_pg_int(adm, "SELECT count(*) FROM pg_sleep(0.1)");
	}
	cr_expect_eq(ha, 1);
	cr_expect_eq(cur, 25);
	pgstore_close(a);
	PQfinish(adm);
}
