/* json_scan.h - finding a value's own text inside a JSON document.
 *
 * A task's payload is stored as the JSON text the client sent, compacted,
 * rather than parsed and printed again: printing a parsed number changes
 * it (0.1 comes back as 0.10000000000000001), and the worker should get
 * what the web page sent. jansson validates the document first; these
 * functions only locate spans in it, and refuse anything unexpected. */
#ifndef DEFER_JSON_SCAN_H
#define DEFER_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

typedef struct json_span {
    const char *p; /* NULL: absent */
    size_t len;
} json_span_t;

/* The value of member name in the top-level object. */
bool json_scan_member(const char *doc, size_t len, const char *name, json_span_t *out);
/* For each element of the array that is the value of member array_name in
 * the top-level object: the value of member name in that element (absent
 * spans have p == NULL). spans has room for n elements. */
bool json_scan_each(const char *doc, size_t len, const char *array_name, const char *name,
                    json_span_t *spans, size_t n);
/* Append the value's text without the whitespace between tokens. */
bool json_compact(buf_t *out, const char *text, size_t len);

#endif
