/*
 * Inside the protocol loader: what protocol.c (names, load, lookups, field
 * values), protocol_parse.c (YAML helpers, header, flags, agencies,
 * purposes, record types) and protocol_rules.c (rules) share. Not for the
 * rest of the tree, which sees protocol.h only.
 */
#ifndef SAFESHARE_PROTOCOL_INT_H
#define SAFESHARE_PROTOCOL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "protocol.h"
#include "yamlutil.h"

/* Spellings in the file, indexed by the enums in protocol.h (protocol.c). */
extern const char *const proto_transform_names[TR_REDACT + 1];
extern const char *const proto_type_names[FT_BOOLEAN + 1];
extern const char *const proto_override_names[OV_COUNT];
extern const char *const proto_role_names[5];
#define NTYPES	(sizeof(proto_type_names) / sizeof(proto_type_names[0]))
#define NROLES	5

/* A control character in v (newlines_ok: '\n' and '\t' are not). */
int		 proto_has_ctrl(const char *v, int newlines_ok);

/* protocol_parse.c: helpers that add to the file's diagnostics. */
int		 proto_lookup_name(const char *, const char *const *, size_t);
void		 proto_bad_choice(struct yfile *, yaml_node_t *, const char *,
		    const char *, const char *const *, size_t);
const char	*proto_req_str(struct yfile *, yaml_node_t *, const char *, const char *);
const char	*proto_req_id(struct yfile *, yaml_node_t *, const char *, const char *);
void		 proto_check_unique(struct yfile *, yaml_node_t *, const char *,
		    const char *, size_t *, char **, size_t);
const char	*proto_id_hint(char *, size_t, const char *, const void *, size_t,
		    size_t);
int		 proto_dup_key(struct yfile *, yaml_node_t *, yaml_node_pair_t *,
		    const char *);

/* The sections of a protocol file, in the order protocol_load_buffer() reads them. */
void		 proto_header(struct yfile *, struct protocol *, yaml_node_t *,
		    int64_t now);
void		 proto_flags(struct yfile *, struct protocol *, yaml_node_t *);
void		 proto_agencies(struct yfile *, struct protocol *, yaml_node_t *);
void		 proto_purposes(struct yfile *, struct protocol *, yaml_node_t *);
void		 proto_record_types(struct yfile *, struct protocol *,
		    yaml_node_t *);
/* protocol_rules.c */
void		 proto_rules(struct yfile *, struct protocol *, yaml_node_t *);

#endif
