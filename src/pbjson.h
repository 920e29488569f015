/*
 * The proto3 canonical JSON mapping for any protobuf-c message, driven by
 * its descriptor (issue 20): the Connect protocol's application/json
 * bodies, so no message has JSON code of its own.
 *
 * Names are lowerCamelCase (the json_name protoc would give: underscores
 * dropped, the letter after each upper-cased); on input the proto field
 * name is accepted too. Enums are written by name and read by name or
 * number. 64-bit integers are written as strings and read from strings or
 * numbers, 32-bit ones written as numbers and read from either. Bytes are
 * standard base64 with padding, read as standard or URL-safe, padded or
 * not. Fields holding their default value are left out on output; null on
 * input means the default. A key that names no field, a field given twice
 * (also once by each of its names), a duplicate key, a value of the wrong
 * type or out of range, and anything after the object are errors that name
 * the field's path (e.g. `ops[2].kind`), never its value.
 *
 * Not supported, because safeshare.proto has none: map fields and the
 * well-known types' special forms (Timestamp, Any, wrappers).
 */
#ifndef SAFESHARE_PBJSON_H
#define SAFESHARE_PBJSON_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#define PBJSON_MAX_DEPTH	32	/* nested messages, on input and output */

/*
 * Parses len bytes of JSON into a new message of type desc. Returns it, or
 * NULL with a message in err. The caller frees it with
 * protobuf_c_message_free_unpacked(m, NULL), as if protobuf-c had
 * unpacked it.
 */
ProtobufCMessage *pbjson_decode(const ProtobufCMessageDescriptor *desc,
		    const char *json, size_t len, char *err, size_t errlen);

/*
 * Writes m as compact JSON. Returns a NUL-terminated string of *len bytes
 * that the caller frees with free(), or NULL with a message in err (a
 * string that is not UTF-8, a message nested too deep).
 */
char		*pbjson_encode(const ProtobufCMessage *m, size_t *len, char *err,
		    size_t errlen);

/* The JSON name of a field: lowerCamelCase of name, into out (NUL-terminated). */
void		 pbjson_name(const char *name, char *out, size_t outlen);

#endif
