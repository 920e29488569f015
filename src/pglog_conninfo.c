/*
 * Naming a PostgreSQL connection string in messages without its secret
 * (issue 19): a connection string may hold a password, and libpq's own
 * complaint about one that does not parse quotes the word it stopped at,
 * which can be part of the password. So a string is parsed here first,
 * named by its host, port, database and user only, and a message that
 * still contains the password has it replaced.
 */
#include <libpq-fe.h>

#include <stdio.h>
#include <string.h>

#include "pglog.h"
#include "util.h"

int
pglog_conninfo_label(const char *conninfo, char *out, size_t len, char *err,
    size_t errlen)
{
	static const char *const keys[] = { "host", "hostaddr", "port", "dbname",
	    "user" };
	PQconninfoOption	*opts, *o;
	char			*perr = NULL;
	size_t			 off = 0;

	if (len > 0)
		out[0] = '\0';
	if ((opts = PQconninfoParse(conninfo, &perr)) == NULL) {
		/* Not libpq's message: it may quote the password. */
		PQfreemem(perr);
		return errorf(err, errlen, "the PostgreSQL connection string does not "
		    "parse (keyword=value pairs or a postgresql:// URI; libpq's "
		    "message is not shown, as it may quote a password)");
	}
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		for (o = opts; o->keyword != NULL; o++) {
			if (strcmp(o->keyword, keys[k]) != 0 || o->val == NULL ||
			    *o->val == '\0' || off >= len)
				continue;
			off += (size_t)snprintf(out + off, len - off, "%s%s=%s",
			    off > 0 ? " " : "", o->keyword, o->val);
		}
	PQconninfoFree(opts);
	if (off == 0 && len > 0)
		snprintf(out, len, "(libpq defaults)");
	return 0;
}

void
pglog_conninfo_scrub(const char *conninfo, char *msg)
{
	PQconninfoOption	*opts, *o;
	char			*p;

	if ((opts = PQconninfoParse(conninfo, NULL)) == NULL)
		return;
	for (o = opts; o->keyword != NULL; o++) {
		size_t n;

		if (strcmp(o->keyword, "password") != 0 || o->val == NULL ||
		    (n = strlen(o->val)) == 0)
			continue;
		while ((p = strstr(msg, o->val)) != NULL) {
			memset(p, '*', n < 3 ? n : 3);
			memmove(p + (n < 3 ? n : 3), p + n, strlen(p + n) + 1);
		}
	}
	PQconninfoFree(opts);
}
