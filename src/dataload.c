/*
 * Loads a YAML data file of subjects, their records, consent decisions and
 * flags into the store, checked against the protocol. The whole file goes in
 * one transaction: any problem and nothing is written.
 */
#include <stdio.h>
#include <string.h>

#include "match.h"
#include "storage.h"
#include "yamlutil.h"

/* "*" or a list of ids, joined with commas for the consent scope. */
static int
scope(struct yfile *yf, yaml_node_t *map, const char *key, char *out, size_t len)
{
	yaml_node_t *n = yget(yf, map, key);

	if (n == NULL) {
		snprintf(out, len, "*");
		return 0;
	}
	if (n->type == YAML_SCALAR_NODE) {
		const char *s = (const char *)n->data.scalar.value;

		if (strcmp(s, "*") != 0 && strcmp(s, "all") != 0) {
			yerr(yf, n, "%s: expected \"all\" or a list of ids", key);
			return -1;
		}
		snprintf(out, len, "*");
		return 0;
	}
	if (!yis_seq(yf, n, key))
		return -1;
	out[0] = '\0';
	YSEQ_FOREACH(yf, n, it) {
		const char *s = ystr(yf, ynode(yf, *it), key);

		if (s == NULL)
			return -1;
		if (out[0] != '\0')
			strncat(out, ",", len - strlen(out) - 1);
		strncat(out, s, len - strlen(out) - 1);
	}
	return 0;
}

static void
load_records(struct storage *st, const struct protocol *p, struct yfile *yf,
    const char *subject, const char *holder, yaml_node_t *recs)
{
	static const char *const keys[] = { "verified", "fields", NULL };
	char err[256];

	if (!yis_map(yf, recs, "records"))
		return;
	YMAP_FOREACH(yf, recs, pair) {
		yaml_node_t		*kn = ynode(yf, pair->key);
		yaml_node_t		*rn = ynode(yf, pair->value), *vn, *fn;
		const struct record_type *rt;
		const char		*names[PROTOCOL_MAX_FIELDS];
		const char		*values[PROTOCOL_MAX_FIELDS];
		size_t			 n = 0;
		int64_t			 verified = 0;
		const char		*id = ystr(yf, kn, "record type");

		if (id == NULL)
			continue;
		if ((rt = protocol_record_type(p, id)) == NULL) {
			yerr(yf, kn, "unknown record type \"%s\"", id);
			continue;
		}
		if (!yis_map(yf, rn, "record"))
			continue;
		ykeys_check(yf, rn, keys, "record");
		if ((vn = yneed(yf, rn, "verified", "record")) == NULL ||
		    ydate(yf, vn, "verified", &verified) == -1)
			continue;
		if ((fn = yneed(yf, rn, "fields", "record")) == NULL ||
		    !yis_map(yf, fn, "fields"))
			continue;
		YMAP_FOREACH(yf, fn, fp) {
			yaml_node_t	*fk = ynode(yf, fp->key);
			const char	*name = ystr(yf, fk, "field");
			const char	*val = ystr(yf, ynode(yf, fp->value), "value");

			if (name == NULL || val == NULL)
				continue;
			const struct field_def *fd = record_type_field(rt, name, NULL);
			const char *why;

			if (fd == NULL) {
				yerr(yf, fk, "record type \"%s\" has no field \"%s\"",
				    rt->id, name);
				continue;
			}
			/* The same checks as holders' writes (api.md). */
			if ((why = field_value_problem(fd->type, val)) != NULL) {
				yerr(yf, ynode(yf, fp->value), "%s: value %s (type %s)", name,
				    why, field_type_name(fd->type));
				continue;
			}
			names[n] = name;
			values[n++] = val;
		}
		for (size_t i = 0; i < rt->nfields; i++) {
			int found = 0;

			for (size_t j = 0; j < n; j++)
				found |= strcmp(names[j], rt->fields[i].name) == 0;
			if (rt->fields[i].required && !found)
				yerr(yf, fn, "subject %s: required field \"%s\" missing",
				    subject, rt->fields[i].name);
		}
		if (yf->diag->nerrors == 0 &&
		    storage_put_record(st, subject, rt->id, holder, verified,
		    names, values, n, err, sizeof(err)) == -1)
			yerr(yf, rn, "%s", err);
	}
}

static void
load_consent(struct storage *st, struct yfile *yf, const char *subject,
    const char *holder, yaml_node_t *list, int64_t now)
{
	static const char *const keys[] = { "state", "agencies", "purposes",
	    "expires", "decided", "recorded_by", NULL };
	char err[256];

	if (!yis_seq(yf, list, "consent"))
		return;
	YSEQ_FOREACH(yf, list, it) {
		yaml_node_t		*cn = ynode(yf, *it), *sn, *en;
		enum consent_state	 c;
		char			 agencies[512], purposes[512];
		int64_t			 expires = 0, decided = 0;
		const char		*s, *by;

		if (!yis_map(yf, cn, "consent"))
			continue;
		ykeys_check(yf, cn, keys, "consent");
		if ((sn = yneed(yf, cn, "state", "consent")) == NULL ||
		    (s = ystr(yf, sn, "state")) == NULL)
			continue;
		if (consent_parse(s, &c) == -1 || c == CONSENT_NONE) {
			yerr(yf, sn, "state: expected granted, refused or withdrawn");
			continue;
		}
		if (scope(yf, cn, "agencies", agencies, sizeof(agencies)) == -1 ||
		    scope(yf, cn, "purposes", purposes, sizeof(purposes)) == -1)
			continue;
		if ((en = yget(yf, cn, "expires")) != NULL &&
		    ydate(yf, en, "expires", &expires) == -1)
			continue;
		/* When the decision was made; never in the future (issue 15). */
		if ((en = yget(yf, cn, "decided")) != NULL) {
			if (ydate(yf, en, "decided", &decided) == -1)
				continue;
			if (decided > now) {
				yerr(yf, en, "decided: a date in the future");
				continue;
			}
		}
		by = (sn = yget(yf, cn, "recorded_by")) != NULL ?
		    ystr(yf, sn, "recorded_by") : holder;
		if (by == NULL)
			continue;
		if (yf->diag->nerrors == 0 && storage_add_consent(st, subject,
		    c, agencies, purposes, expires, decided, by, now, err,
		    sizeof(err)) == -1)
			yerr(yf, cn, "%s", err);
	}
}

/*
 * D18: the NHS number the holder links and, when the person record's
 * full_name does not split into given and family names as the holder
 * means, the details the subject is found by.
 */
static void
load_identity(struct storage *st, struct yfile *yf, const char *subject,
    yaml_node_t *sn)
{
	static const char *const keys[] = { "family_name", "given_name",
	    "date_of_birth", "postcode", NULL };
	yaml_node_t	*n;
	const char	*v, *why;
	char		 nhs[MATCH_NHS_LEN + 1], err[256];

	if ((n = yget(yf, sn, "details")) != NULL && yis_map(yf, n, "details")) {
		const char *f[4];

		ykeys_check(yf, n, keys, "details");
		for (int i = 0; i < 4; i++) {
			yaml_node_t *vn = yget(yf, n, keys[i]);

			f[i] = vn ? ystr(yf, vn, keys[i]) : NULL;
		}
		if (yf->diag->nerrors == 0 &&
		    storage_set_details(st, subject, f[0], f[1], f[2], f[3],
		    err, sizeof(err)) == -1)
			yerr(yf, n, "%s", err);
	}
	if ((n = yget(yf, sn, "nhs_number")) == NULL ||
	    (v = ystr(yf, n, "nhs_number")) == NULL)
		return;
	if (match_nhs_parse(v, nhs, &why) == -1)
		yerr(yf, n, "nhs_number: %s", why);
	else if (yf->diag->nerrors == 0 && storage_link_nhs(st, subject, nhs,
	    err, sizeof(err)) == -1)
		yerr(yf, n, "nhs_number: %s", err);
}

int
storage_load_yaml(struct storage *st, const struct protocol *p,
    const char *path, int64_t now, struct diag *d)
{
	static const char *const top[] = { "subjects", NULL };
	static const char *const keys[] = { "id", "holder", "nhs_number", "details",
	    "records", "consent", "flags", NULL };
	struct yfile	 yf;
	yaml_node_t	*root, *subjects;
	size_t		 nsubjects = 0;
	char		 err[256];

	if (yfile_load(&yf, path, d) == -1) {
		yfile_free(&yf);
		return -1;
	}
	/*
	 * One transaction for the whole file, which may link any number of NHS
	 * numbers: it takes the one lock that stands for every number (D18;
	 * on PostgreSQL, deploy-ha.md "NHS number locks"), not one per number.
	 */
	if (storage_begin(st, err, sizeof(err)) == -1) {
		diag_add(d, path, 0, 0, "%s", err);
		yfile_free(&yf);
		return -1;
	}
	if (storage_lock_nhs(st, NULL, 0, err, sizeof(err)) == -1) {
		diag_add(d, path, 0, 0, "%s", err);
		storage_rollback(st);
		yfile_free(&yf);
		return -1;
	}
	root = yfile_root(&yf);
	if (yis_map(&yf, root, "data file")) {
		ykeys_check(&yf, root, top, "data file");
		if ((subjects = yneed(&yf, root, "subjects", "data file")) != NULL &&
		    yis_seq(&yf, subjects, "subjects"))
			YSEQ_FOREACH(&yf, subjects, it) {
				yaml_node_t	*sn = ynode(&yf, *it), *n;
				const char	*id, *holder;
				const struct agency *ag;

				if (!yis_map(&yf, sn, "subject"))
					continue;
				nsubjects++;
				ykeys_check(&yf, sn, keys, "subject");
				if ((n = yneed(&yf, sn, "id", "subject")) == NULL ||
				    (id = ystr(&yf, n, "id")) == NULL)
					continue;
				if ((n = yneed(&yf, sn, "holder", "subject")) == NULL ||
				    (holder = ystr(&yf, n, "holder")) == NULL)
					continue;
				if ((ag = protocol_agency(p, holder)) == NULL ||
				    !(ag->roles & ROLE_HOLDER)) {
					yerr(&yf, n, "holder \"%s\" is not an agency with "
					    "the holder role", holder);
					continue;
				}
				if ((n = yget(&yf, sn, "records")) != NULL)
					load_records(st, p, &yf, id, holder, n);
				load_identity(st, &yf, id, sn);
				if ((n = yget(&yf, sn, "consent")) != NULL)
					load_consent(st, &yf, id, holder, n, now);
				if ((n = yget(&yf, sn, "flags")) != NULL &&
				    yis_seq(&yf, n, "flags"))
					YSEQ_FOREACH(&yf, n, fi) {
						yaml_node_t *fn = ynode(&yf, *fi);
						const char *f = ystr(&yf, fn, "flag");

						if (f == NULL)
							continue;
						if (!strlist_has(&p->flags, f))
							yerr(&yf, fn, "undeclared flag \"%s\"", f);
						else if (d->nerrors == 0 &&
						    storage_set_flag(st, id, f, holder, now,
						    err, sizeof(err)) == -1)
							yerr(&yf, fn, "%s", err);
					}
			}
	}
	yfile_free(&yf);
	/* The load itself is history: the daemon logs it (issue 15). */
	if (d->nerrors == 0 && storage_note_load(st, path, nsubjects, now, err,
	    sizeof(err)) == -1)
		diag_add(d, path, 0, 0, "%s", err);
	if (d->nerrors > 0) {
		storage_rollback(st);
		return -1;
	}
	if (storage_commit(st, err, sizeof(err)) == -1) {
		diag_add(d, path, 0, 0, "%s", err);
		storage_rollback(st);
		return -1;
	}
	/*
	 * Fresh planner statistics for what was loaded (PostgreSQL). The load
	 * has committed: a failure here is a warning, not "nothing loaded".
	 */
	if (storage_after_load(st, err, sizeof(err)) == -1)
		diag_warn(d, path, 0, 0, "loaded, but the statistics were not "
		    "refreshed (run ANALYZE): %s", err);
	return 0;
}
