/*
 * The report's HTML and JSON. Every string from the log or the server goes
 * through html_str() or jansson (jsonw.h); the page has no <script> and names no
 * URL, so it opens the same with no network.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonw.h"
#include "report_out.h"
#include "util.h"

#define CHART_W		900
#define BAR_H		22

void
html_str(FILE *fp, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		switch (c) {
		case '&': fputs("&amp;", fp); break;
		case '<': fputs("&lt;", fp); break;
		case '>': fputs("&gt;", fp); break;
		case '"': fputs("&quot;", fp); break;
		case '\'': fputs("&#39;", fp); break;
		default:
			if (c < 0x20 || c == 0x7f)
				fputs("&#xfffd;", fp);
			else
				fputc(c, fp);
		}
	}
}

static const char *
fmt_time(int64_t t, char *buf, size_t len)
{
	time_t		tt = (time_t)t;
	struct tm	tm;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL)
		snprintf(buf, len, "-");
	else
		strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm);
	return buf;
}

static const char *
decision_colour(const char *d, size_t i)
{
	static const char *const other[] = { "#6a51a3", "#3182bd", "#636363", "#8c6d31" };

	if (strcmp(d, "allow") == 0)
		return "#2ca25f";
	if (strcmp(d, "partial") == 0)
		return "#fdae6b";
	if (strcmp(d, "deny") == 0)
		return "#de2d26";
	return other[i % 4];
}

/* Index of s in v[0..*n), appended if absent. */
static size_t
intern(const char **v, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(v[i], s) == 0)
			return i;
	v[*n] = s;
	return (*n)++;
}

/* Disclosures per day, stacked by decision, with its table. */
static void
chart_days(FILE *fp, const Safeshare__V1__AuditReport *r)
{
	size_t		  nd = 0, nk = 0, n = r->n_per_day;
	const char	**days = calloc(n + 1, sizeof(*days));
	const char	**dec = calloc(n + 1, sizeof(*dec));
	uint64_t	 *tot, max = 1;
	double		  bw;

	if (days == NULL || dec == NULL)
		goto done;
	for (size_t i = 0; i < n; i++) {
		intern(days, &nd, r->per_day[i]->key);
		intern(dec, &nk, r->per_day[i]->key2);
	}
	if ((tot = calloc(nd + 1, sizeof(*tot))) == NULL)
		goto done;
	for (size_t i = 0; i < n; i++) {
		size_t d = intern(days, &nd, r->per_day[i]->key);

		tot[d] += r->per_day[i]->count;
		if (tot[d] > max)
			max = tot[d];
	}
	fputs("<h2>Disclosure requests per day, by decision</h2>\n", fp);
	if (nd == 0) {
		fputs("<p>No disclosure requests in this period.</p>\n", fp);
		free(tot);
		goto done;
	}
	bw = (double)(CHART_W - 60) / (double)nd;
	fprintf(fp, "<svg class=\"chart\" id=\"per-day\" role=\"img\" width=\"%d\" "
	    "height=\"300\" viewBox=\"0 0 %d 300\" aria-label=\"Disclosure requests per "
	    "day\">\n", CHART_W, CHART_W);
	fprintf(fp, "<text x=\"0\" y=\"14\">%" PRIu64 "</text><text x=\"0\" y=\"250\">0"
	    "</text>\n", max);
	memset(tot, 0, (nd + 1) * sizeof(*tot));
	for (size_t i = 0; i < n; i++) {
		const Safeshare__V1__ReportCount *c = r->per_day[i];
		size_t	d = intern(days, &nd, c->key), k = intern(dec, &nk, c->key2);
		double	h = 230.0 * (double)c->count / (double)max;
		double	y = 250.0 - 230.0 * (double)tot[d] / (double)max - h;

		tot[d] += c->count;
		fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
		    "fill=\"%s\"><title>", 50 + bw * (double)d, y, bw > 2 ? bw - 1 : bw,
		    h, decision_colour(c->key2, k));
		html_str(fp, c->key);
		fputs(" ", fp);
		html_str(fp, c->key2);
		fprintf(fp, ": %" PRIu64 "</title></rect>\n", c->count);
	}
	fputs("<text x=\"50\" y=\"268\">", fp);
	html_str(fp, days[0]);
	fprintf(fp, "</text><text x=\"%d\" y=\"268\" text-anchor=\"end\">", CHART_W - 10);
	html_str(fp, days[nd - 1]);
	fputs("</text>\n", fp);
	for (size_t k = 0; k < nk; k++) {
		fprintf(fp, "<rect x=\"%zu\" y=\"280\" width=\"12\" height=\"12\" fill=\"%s\"/>"
		    "<text x=\"%zu\" y=\"291\">", 50 + k * 140, decision_colour(dec[k], k),
		    66 + k * 140);
		html_str(fp, dec[k]);
		fputs("</text>\n", fp);
	}
	fputs("</svg>\n<details><summary>Table: requests per day</summary>\n<table>"
	    "<tr><th>Day</th>", fp);
	for (size_t k = 0; k < nk; k++) {
		fputs("<th>", fp);
		html_str(fp, dec[k]);
		fputs("</th>", fp);
	}
	fputs("</tr>\n", fp);
	for (size_t d = 0; d < nd; d++) {
		fputs("<tr><td>", fp);
		html_str(fp, days[d]);
		fputs("</td>", fp);
		for (size_t k = 0; k < nk; k++) {
			uint64_t v = 0;

			for (size_t i = 0; i < n; i++)
				if (strcmp(r->per_day[i]->key, days[d]) == 0 &&
				    strcmp(r->per_day[i]->key2, dec[k]) == 0)
					v = r->per_day[i]->count;
			fprintf(fp, "<td>%" PRIu64 "</td>", v);
		}
		fputs("</tr>\n", fp);
	}
	fputs("</table></details>\n", fp);
	free(tot);
done:
	free(days);
	free(dec);
}

/* Horizontal bars, one per row, with the same rows as a table. */
static void
chart_bars(FILE *fp, const char *id, const char *title, const char *head,
    const char *const *labels, const char *const *labels2, const uint64_t *v,
    size_t n, const char *colour)
{
	uint64_t max = 1;

	fprintf(fp, "<h2>%s</h2>\n", title);
	if (n == 0) {
		fputs("<p>None in this period.</p>\n", fp);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (v[i] > max)
			max = v[i];
	fprintf(fp, "<svg class=\"chart\" id=\"%s\" role=\"img\" width=\"%d\" "
	    "height=\"%zu\" viewBox=\"0 0 %d %zu\" aria-label=\"%s\">\n", id, CHART_W,
	    n * (BAR_H + 6) + 6, CHART_W, n * (BAR_H + 6) + 6, title);
	for (size_t i = 0; i < n; i++) {
		double	w = 520.0 * (double)v[i] / (double)max;
		size_t	y = 6 + i * (BAR_H + 6);

		fprintf(fp, "<text x=\"0\" y=\"%zu\">", y + 16);
		html_str(fp, labels[i]);
		if (labels2 && labels2[i][0]) {
			fputs(" (", fp);
			html_str(fp, labels2[i]);
			fputs(")", fp);
		}
		fprintf(fp, "</text><rect x=\"300\" y=\"%zu\" width=\"%.1f\" height=\"%d\" "
		    "fill=\"%s\"/><text x=\"%.1f\" y=\"%zu\">%" PRIu64 "</text>\n", y,
		    w < 1 ? 1 : w, BAR_H, colour, 306 + w, y + 16, v[i]);
	}
	fprintf(fp, "</svg>\n<details><summary>Table: %s</summary>\n<table><tr>"
	    "<th>%s</th>%s<th>Count</th></tr>\n", title, head, labels2 ?
	    "<th></th>" : "");
	for (size_t i = 0; i < n; i++) {
		fputs("<tr><td>", fp);
		html_str(fp, labels[i]);
		if (labels2) {
			fputs("</td><td>", fp);
			html_str(fp, labels2[i]);
		}
		fprintf(fp, "</td><td>%" PRIu64 "</td></tr>\n", v[i]);
	}
	fputs("</table></details>\n", fp);
}

static void
chart_counts(FILE *fp, const char *id, const char *title, const char *head,
    Safeshare__V1__ReportCount *const *c, size_t n, int two, const char *colour)
{
	const char	**l = calloc(n + 1, sizeof(*l)), **l2 = calloc(n + 1, sizeof(*l2));
	uint64_t	 *v = calloc(n + 1, sizeof(*v));

	if (l && l2 && v) {
		for (size_t i = 0; i < n; i++) {
			l[i] = c[i]->key;
			l2[i] = c[i]->key2;
			v[i] = c[i]->count;
		}
		chart_bars(fp, id, title, head, l, two ? l2 : NULL, v, n, colour);
	}
	free(l);
	free(l2);
	free(v);
}

/* Requesting agency x purpose: a grid shaded by requests, with denials. */
static void
chart_matrix(FILE *fp, const Safeshare__V1__AuditReport *r)
{
	size_t		  n = r->n_agency_purpose, na = 0, np = 0;
	const char	**ag = calloc(n + 1, sizeof(*ag)), **pu = calloc(n + 1, sizeof(*pu));
	uint64_t	  max = 1;

	fputs("<h2>Requests and denials by requesting agency and purpose</h2>\n", fp);
	if (ag == NULL || pu == NULL || n == 0) {
		fputs("<p>None in this period.</p>\n", fp);
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		intern(ag, &na, r->agency_purpose[i]->key);
		intern(pu, &np, r->agency_purpose[i]->key2);
		if (r->agency_purpose[i]->count > max)
			max = r->agency_purpose[i]->count;
	}
	fprintf(fp, "<svg class=\"chart\" id=\"matrix\" role=\"img\" width=\"%d\" "
	    "height=\"%zu\" viewBox=\"0 0 %d %zu\" aria-label=\"Agency by purpose\">\n",
	    CHART_W, 40 + na * 40, CHART_W, 40 + na * 40);
	for (size_t p = 0; p < np; p++) {
		fprintf(fp, "<text x=\"%zu\" y=\"24\">", 200 + p * 140);
		html_str(fp, pu[p]);
		fputs("</text>\n", fp);
	}
	for (size_t a = 0; a < na; a++) {
		fprintf(fp, "<text x=\"0\" y=\"%zu\">", 64 + a * 40);
		html_str(fp, ag[a]);
		fputs("</text>\n", fp);
	}
	for (size_t i = 0; i < n; i++) {
		const Safeshare__V1__ReportCount *c = r->agency_purpose[i];
		size_t	a = intern(ag, &na, c->key), p = intern(pu, &np, c->key2);
		double	o = 0.15 + 0.85 * (double)c->count / (double)max;

		fprintf(fp, "<rect x=\"%zu\" y=\"%zu\" width=\"136\" height=\"36\" "
		    "fill=\"#3182bd\" fill-opacity=\"%.2f\"/><text x=\"%zu\" y=\"%zu\">"
		    "%" PRIu64 " / %" PRIu64 " denied</text>\n", 200 + p * 140, 40 + a * 40,
		    o, 204 + p * 140, 64 + a * 40, c->count, c->count2);
	}
	fputs("</svg>\n<details><summary>Table: agency and purpose</summary>\n<table>"
	    "<tr><th>Agency</th><th>Purpose</th><th>Requests</th><th>Denied</th></tr>\n", fp);
	for (size_t i = 0; i < n; i++) {
		fputs("<tr><td>", fp);
		html_str(fp, r->agency_purpose[i]->key);
		fputs("</td><td>", fp);
		html_str(fp, r->agency_purpose[i]->key2);
		fprintf(fp, "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td></tr>\n",
		    r->agency_purpose[i]->count, r->agency_purpose[i]->count2);
	}
	fputs("</table></details>\n", fp);
done:
	free(ag);
	free(pu);
}

static void
patterns(FILE *fp, const Safeshare__V1__AuditReport *r, const char *kind,
    const char *title, uint64_t total)
{
	size_t shown = 0;

	fprintf(fp, "<h3>%s: %" PRIu64 "</h3>\n", title, total);
	for (size_t i = 0; i < r->n_patterns; i++) {
		const Safeshare__V1__ReportPattern *p = r->patterns[i];

		if (strcmp(p->kind, kind) != 0)
			continue;
		if (shown++ == 0)
			fputs("<table><tr><th>Practitioner</th><th>Agency</th><th>Subject</th>"
			    "<th>Count</th><th>Log entries (seq)</th></tr>\n", fp);
		fputs("<tr><td>", fp);
		html_str(fp, p->practitioner);
		fputs("</td><td>", fp);
		html_str(fp, p->agency);
		fputs("</td><td>", fp);
		html_str(fp, p->subject);
		fprintf(fp, "</td><td>%" PRIu64 "</td><td>", p->count);
		for (size_t j = 0; j < p->n_seqs; j++)
			fprintf(fp, "%s%" PRIu64, j ? ", " : "", p->seqs[j]);
		fputs(p->count > p->n_seqs ? ", ...</td></tr>\n" : "</td></tr>\n", fp);
	}
	if (shown)
		fputs("</table>\n", fp);
	if (shown >= 20 && total > shown)
		fprintf(fp, "<p>The first %zu rows; <code>safeshare audit query</code> "
		    "lists the rest.</p>\n", shown);
}

static void
hex(FILE *fp, const ProtobufCBinaryData *b)
{
	for (size_t i = 0; i < b->len; i++)
		fprintf(fp, "%02x", b->data[i]);
}

void
report_write_html(FILE *fp, const struct report_context *x)
{
	const Safeshare__V1__AuditReport	*r = x->rep;
	const char				*lab[3] = { "upheld", "not upheld", "pending" };
	uint64_t				 rv[3];
	char					 b1[64], b2[64];

	rv[0] = r->reviews_upheld;
	rv[1] = r->reviews_not_upheld;
	rv[2] = r->reviews_pending;
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	    "<title>Disclosure log report</title>\n<style>\n"
	    "body{font-family:sans-serif;margin:2em;max-width:960px;color:#222}\n"
	    "h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px "
	    "solid #ccc}\n"
	    "svg.chart{display:block;max-width:100%;height:auto;font-size:12px}\n"
	    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
	    "padding:2px 8px;text-align:left}\n"
	    ".ok{color:#2ca25f;font-weight:bold}.bad{color:#de2d26;font-weight:bold}\n"
	    ".tiles{display:flex;gap:1em;flex-wrap:wrap}.tile{border:1px solid #ccc;"
	    "padding:.6em 1em;border-radius:4px}\n.tile b{display:block;font-size:1.5em}\n"
	    "</style></head><body>\n<h1>Disclosure log report</h1>\n<p>", fp);
	fprintf(fp, "Period: %s", r->from_time ? fmt_time(r->from_time, b1, sizeof(b1)) :
	    "the start of the log");
	fprintf(fp, " to %s", r->to_time ? fmt_time(r->to_time, b2, sizeof(b2)) :
	    "the end of the log");
	if (r->agency[0]) {
		fputs("; requests by ", fp);
		html_str(fp, r->agency);
	}
	fprintf(fp, ". Made %s", fmt_time(r->generated, b1, sizeof(b1)));
	if (x->server) {
		fputs(" from ", fp);
		html_str(fp, x->server);
	}
	fprintf(fp, "; %" PRIu64 " log entries in the period.</p>\n", r->entries);
	if (r->truncated)
		fputs("<p class=\"bad\">A table reached its bound: some counts are partial."
		    "</p>\n", fp);

	fputs("<h2>The log</h2>\n<div class=\"tiles\">", fp);
	if (x->verify == NULL)
		fputs("<div class=\"tile\">Verification<b>not run</b></div>", fp);
	else {
		fprintf(fp, "<div class=\"tile\">Verification<b class=\"%s\">%s</b>"
		    "%" PRIu64 " entries, %" PRIu64 " signed checkpoints", x->verify->ok ?
		    "ok" : "bad", x->verify->ok ? "verifies" : "FAILS", x->verify->entries,
		    x->verify->checkpoints);
		if (!x->verify->ok) {
			fprintf(fp, "; first bad entry %" PRIu64 ": ", x->verify->bad_seq);
			html_str(fp, x->verify->why);
		}
		fputs("</div>", fp);
	}
	if (x->checkpoint == NULL)
		fputs("<div class=\"tile\">Latest signed checkpoint<b>none yet</b></div>", fp);
	else {
		fprintf(fp, "<div class=\"tile\">Latest signed checkpoint<b>size %" PRIu64
		    "</b>%s<br>head <code>", x->checkpoint->size,
		    fmt_time(x->checkpoint->time, b1, sizeof(b1)));
		hex(fp, &x->checkpoint->head_hash);
		fputs("</code></div>", fp);
	}
	fprintf(fp, "<div class=\"tile\">Overrides awaiting review<b>%" PRIu64 "</b>"
	    "oldest since %s</div>", r->reviews_pending,
	    fmt_time(r->oldest_pending_time, b1, sizeof(b1)));
	fprintf(fp, "<div class=\"tile\">Inform-the-subject backlog (D6)<b>%" PRIu64
	    "</b>oldest since %s</div></div>\n", r->inform_pending,
	    fmt_time(r->oldest_inform_time, b2, sizeof(b2)));

	chart_days(fp, r);
	chart_counts(fp, "overrides", "Overrides by exception code", "Exception code",
	    r->overrides_by_code, r->n_overrides_by_code, 1, "#fd8d3c");
	chart_bars(fp, "reviews", "Override reviews by outcome (D15)", "Outcome", lab,
	    NULL, rv, 3, "#756bb1");
	chart_matrix(fp, r);
	chart_counts(fp, "deny-reasons", "Most frequent deny reasons", "Reason",
	    r->deny_reasons, r->n_deny_reasons, 0, "#de2d26");
	chart_counts(fp, "kinds", "Log entries by kind (disclosures, rejected requests, "
	    "holder accesses, ...)", "Kind", r->kinds, r->n_kinds, 0, "#636363");

	fputs("<h2>Patterns worth a look</h2>\n", fp);
	fprintf(fp, "<p>Each lists the log entries behind it (at most %d seqs; "
	    "<code>safeshare audit query</code> shows them).</p>\n", 10);
	fprintf(fp, "<h3 class=\"sub\">Threshold: %u or more requests by one practitioner "
	    "about one person</h3>\n", r->many_requests_threshold);
	patterns(fp, r, "many_requests", "Practitioners with many requests about one "
	    "person", r->many_requests_total);
	patterns(fp, r, "deny_then_override", "A denial followed by an override on the "
	    "same person within a day", r->deny_then_override_total);
	patterns(fp, r, "out_of_hours", "Requests outside working hours (08:00-18:00 UTC, "
	    "Monday to Friday)", r->out_of_hours_total);
	fputs("</body></html>\n", fp);
}

static void
json_counts(json_t *o, const char *name, Safeshare__V1__ReportCount *const *c,
    size_t n, const char *k1, const char *k2, const char *c2)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *x = json_object();

		jsonw_set(x, k1, jsonw_str(c[i]->key));
		if (k2)
			jsonw_set(x, k2, jsonw_str(c[i]->key2));
		jsonw_set(x, "count", jsonw_u64(c[i]->count));
		if (c2)
			jsonw_set(x, c2, jsonw_u64(c[i]->count2));
		json_array_append_new(a, x);
	}
	jsonw_set(o, name, a);
}

void
report_write_json(FILE *fp, const struct report_context *x)
{
	const Safeshare__V1__AuditReport	*r = x->rep;
	json_t					*o = json_object(), *pats;

	jsonw_set(o, "from_time", json_integer(r->from_time));
	jsonw_set(o, "to_time", json_integer(r->to_time));
	jsonw_set(o, "agency", jsonw_str(r->agency));
	jsonw_set(o, "generated", json_integer(r->generated));
	jsonw_set(o, "entries", jsonw_u64(r->entries));
	jsonw_set(o, "truncated", json_boolean(r->truncated));
	json_counts(o, "per_day", r->per_day, r->n_per_day, "day", "decision", NULL);
	json_counts(o, "kinds", r->kinds, r->n_kinds, "kind", NULL, NULL);
	json_counts(o, "overrides_by_code", r->overrides_by_code, r->n_overrides_by_code,
	    "code", "outcome", NULL);
	jsonw_set(o, "reviews", json_pack("{s:o,s:o,s:o,s:I}",
	    "upheld", jsonw_u64(r->reviews_upheld),
	    "not_upheld", jsonw_u64(r->reviews_not_upheld),
	    "pending", jsonw_u64(r->reviews_pending),
	    "oldest_pending_time", (json_int_t)r->oldest_pending_time));
	jsonw_set(o, "inform_backlog", json_pack("{s:o,s:I}",
	    "pending", jsonw_u64(r->inform_pending),
	    "oldest_time", (json_int_t)r->oldest_inform_time));
	json_counts(o, "agency_purpose", r->agency_purpose, r->n_agency_purpose,
	    "agency", "purpose", "denied");
	json_counts(o, "deny_reasons", r->deny_reasons, r->n_deny_reasons, "reason",
	    NULL, NULL);
	jsonw_set(o, "pattern_totals", json_pack("{s:o,s:I,s:o,s:o}",
	    "many_requests", jsonw_u64(r->many_requests_total),
	    "many_requests_threshold", (json_int_t)r->many_requests_threshold,
	    "deny_then_override", jsonw_u64(r->deny_then_override_total),
	    "out_of_hours", jsonw_u64(r->out_of_hours_total)));
	pats = json_array();
	for (size_t i = 0; i < r->n_patterns; i++) {
		const Safeshare__V1__ReportPattern	*p = r->patterns[i];
		json_t					*seqs = json_array();

		for (size_t j = 0; j < p->n_seqs; j++)
			json_array_append_new(seqs, jsonw_u64(p->seqs[j]));
		json_array_append_new(pats, json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}",
		    "kind", jsonw_str(p->kind), "practitioner", jsonw_str(p->practitioner),
		    "agency", jsonw_str(p->agency), "subject", jsonw_str(p->subject),
		    "count", jsonw_u64(p->count), "seqs", seqs));
	}
	jsonw_set(o, "patterns", pats);
	if (x->verify)
		jsonw_set(o, "verify", json_pack("{s:b,s:o,s:o,s:o,s:o}",
		    "ok", x->verify->ok, "entries", jsonw_u64(x->verify->entries),
		    "checkpoints", jsonw_u64(x->verify->checkpoints),
		    "bad_seq", jsonw_u64(x->verify->bad_seq),
		    "why", jsonw_str(x->verify->why)));
	if (x->checkpoint)
		jsonw_set(o, "checkpoint", json_pack("{s:o,s:I,s:o}",
		    "size", jsonw_u64(x->checkpoint->size),
		    "time", (json_int_t)x->checkpoint->time,
		    "head_hash", jsonw_hex(x->checkpoint->head_hash.data,
		    x->checkpoint->head_hash.len)));
	jsonw_print(fp, o);
}
