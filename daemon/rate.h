/* Rate limits (rate.c): per agency, and for refusals of unknown peers. */
#ifndef SAFESHARED_RATE_H
#define SAFESHARED_RATE_H

struct evhttp_request;
struct peer;
struct server;

/* CLOCK_MONOTONIC in seconds, for rate buckets and deadlines. */
double	mono_seconds(void);
/* Takes one request from the agency's bucket; 0 if it must wait (429). */
int	rate_take(struct server *, const char *agency, double now);
/* rate_take() now, or a 429 with Retry-After sent on req: 1 admitted, 0 answered. */
int	rate_admit(struct server *, struct evhttp_request *, const char *agency);
/*
 * Takes n more from the agency's bucket after rate_take() admitted the
 * request; the bucket may go into debt (holder ops, see holder_api.c).
 */
void	rate_charge(struct server *, const char *agency, double n, double now);
/* 1 if a refusal of req's peer, whose agency is not known, may be logged. */
int	unknown_take(struct server *, struct evhttp_request *, const struct peer *);
/* The same by address (text, NULL if unknown) and fingerprint ("" if none). */
int	unknown_allow(struct server *, const char *addr, const char *fp);
/* Frees every bucket (shutdown). */
void	rate_free(struct server *);

#endif
