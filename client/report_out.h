/*
 * `safeshare audit report` output (issue 21): one self-contained HTML page
 * (inline CSS and SVG, no script, no external resource) or one JSON
 * document, from the daemon's AuditReport, its verification result and
 * the log's latest signed checkpoint.
 */
#ifndef SAFESHARE_REPORT_OUT_H
#define SAFESHARE_REPORT_OUT_H

#include <stdio.h>

#include "safeshare/safeshare.pb-c.h"

struct report_context {
	const Safeshare__V1__AuditReport	*rep;
	const Safeshare__V1__VerifyResult	*verify;	/* NULL: not verified */
	const Safeshare__V1__Checkpoint		*checkpoint;	/* NULL: none yet */
	const char				*server;
};

/* Writes every foreign string HTML-escaped (&, <, >, ", '; no control characters). */
void	html_str(FILE *, const char *);
void	report_write_html(FILE *, const struct report_context *);
void	report_write_json(FILE *, const struct report_context *);

#endif
