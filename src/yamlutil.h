/*
 * A thin layer over libyaml's document API that turns every problem into a
 * "file:line:col: message" diagnostic.
 */
#ifndef SAFESHARE_YAMLUTIL_H
#define SAFESHARE_YAMLUTIL_H

#include <stdint.h>
#include <yaml.h>

#include "util.h"

struct yfile {
	const char	*path;		/* for messages; not owned */
	yaml_document_t	 doc;
	int		 loaded;
	struct diag	*diag;
};

/* Parses a file or buffer; on failure adds a diagnostic and returns -1. */
int		 yfile_load(struct yfile *, const char *path, struct diag *);
int		 yfile_load_buffer(struct yfile *, const char *name,
		    const unsigned char *buf, size_t len, struct diag *);
void		 yfile_free(struct yfile *);
yaml_node_t	*yfile_root(struct yfile *);

void		 yerr(struct yfile *, const yaml_node_t *, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
void		 ywarn(struct yfile *, const yaml_node_t *, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
size_t		 yline(const yaml_node_t *);

yaml_node_t	*ynode(struct yfile *, int index);
int		 yis_map(struct yfile *, yaml_node_t *, const char *what);
int		 yis_seq(struct yfile *, yaml_node_t *, const char *what);
/* The scalar's text, or NULL with a diagnostic when the node is not a scalar. */
const char	*ystr(struct yfile *, yaml_node_t *, const char *what);
int		 ybool(struct yfile *, yaml_node_t *, const char *what, int *out);
int		 yint(struct yfile *, yaml_node_t *, const char *what,
		    long long min, long long max, long long *out);
/* Parses YYYY-MM-DD into Unix seconds at 00:00 UTC of that day. */
int		 ydate(struct yfile *, yaml_node_t *, const char *what, int64_t *out);
/* YYYY-MM-DD (a real day) into Unix seconds at 00:00 UTC: 0, or -1. */
int		 date_parse(const char *s, int64_t *out);
/* The same, also giving year, month and day; out may be NULL. */
int		 date_ymd(const char *s, int *y, int *m, int *d, int64_t *out);
/*
 * One meaning for every date that ends something (a protocol's review_by,
 * a consent's expires): the named day is the last one that counts, through
 * 23:59:59 UTC. Returns 1 once that day (given as its 00:00 UTC) is over.
 */
int		 date_day_over(int64_t day, int64_t now);

/*
 * Reports every key of a mapping not in the NULL-terminated list, with a
 * did-you-mean for a close match. Returns the number of unknown keys.
 */
int		 ykeys_check(struct yfile *, yaml_node_t *map, const char *const *allowed,
		    const char *where);
/* Looks a key up in a mapping; NULL when absent. */
yaml_node_t	*yget(struct yfile *, yaml_node_t *map, const char *key);
/* Like yget, but a missing key is an error reported at the mapping. */
yaml_node_t	*yneed(struct yfile *, yaml_node_t *map, const char *key, const char *where);

/* Levenshtein distance, capped; used for did-you-mean. */
size_t		 edit_distance(const char *a, const char *b);
/* The closest candidate within distance 2 (or a third of the length), or NULL. */
const char	*did_you_mean(const char *word, const char *const *cands, size_t n);

#define YMAP_FOREACH(yf, map, pair)					\
	for (yaml_node_pair_t *pair = (map)->data.mapping.pairs.start;	\
	    pair < (map)->data.mapping.pairs.top; pair++)
#define YSEQ_FOREACH(yf, seq, item)					\
	for (yaml_node_item_t *item = (seq)->data.sequence.items.start;	\
	    item < (seq)->data.sequence.items.top; item++)

#endif
