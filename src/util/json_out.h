/* json_out.h - writing JSON by hand into a buffer.
 *
 * Replies on the hot path (an enqueue answers with the task) are written
 * directly rather than built as a jansson tree and serialised: a stored
 * JSON payload is copied as it is, without being parsed again. jansson
 * still parses every request. */
#ifndef DEFER_JSON_OUT_H
#define DEFER_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* A JSON string, quoted and escaped. Bytes that are not valid UTF-8 are
 * written as U+FFFD, so the output is always valid JSON. */
bool json_out_str(buf_t *b, const char *s, size_t len);
/* Whether s is valid UTF-8 throughout (what json_out_str keeps as it is). */
bool json_utf8_valid(const char *s, size_t len);
/* An RFC 3339 UTC time with milliseconds, quoted, from ns since the epoch. */
bool json_out_time(buf_t *b, int64_t ns);
/* RFC 3339 text of ns (no quotes) into out (at least 32 bytes). */
void json_format_time(char *out, size_t outlen, int64_t ns);
/* Parse an RFC 3339 time ("2026-11-22T14:45:00Z", fractions and offsets
 * allowed; years 1970 to 2199) into ns since the epoch. */
bool json_parse_time(const char *s, size_t len, int64_t *ns);

#endif
