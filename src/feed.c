/*
 * Which log entries the feeds carry (feed.h). Kinds and reasons are the
 * ones docs/audit-format.md lists; an override is "used" exactly when the
 * review queue says so (reason override or override_partial, not denied).
 */
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "feed.h"

static int
is(const char *s, const char *want)
{
	return s != NULL && strcmp(s, want) == 0;
}

static int
empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

int
feed_is_access(const struct audit_entry *e)
{
	if (empty(e->subject))
		return 0;
	return is(e->kind, "disclosure") || is(e->kind, "locate") ||
	    is(e->kind, "rejected");
}

const char *
feed_alert_type(const struct audit_entry *e)
{
	if (is(e->kind, "disclosure")) {
		if (is(e->decision, "deny"))
			return empty(e->override_code) ? NULL : "denied_emergency";
		if (is(e->reason, "override") || is(e->reason, "override_partial"))
			return "override";
		return NULL;
	}
	if (is(e->kind, "review"))
		return "review";
	if (is(e->kind, "reload"))
		return "reload";
	if (is(e->kind, "rejected") && (is(e->reason, "not_your_subject") ||
	    is(e->reason, "unknown_subject")))
		return "holder_refused";
	if (is(e->kind, "holder") && is(e->decision, "rolled_back"))
		return "holder_rolled_back";
	return NULL;
}

char *
feed_own_part(const char *list, const char *holder)
{
	size_t	 hl = strlen(holder), n = 0;
	char	*out;

	if (list == NULL)
		return xstrdup("");
	out = xcalloc(strlen(list) + 1, 1);
	while (*list != '\0') {
		size_t len = strcspn(list, ";,");

		if (len > hl && strncmp(list, holder, hl) == 0 && list[hl] == ':') {
			if (n > 0)
				out[n++] = list[-1] == ',' ? ',' : ';';
			memcpy(out + n, list, len);
			n += len;
		}
		list += len;
		if (*list != '\0')
			list++;
	}
	out[n] = '\0';
	return out;
}
