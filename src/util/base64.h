/* base64.h - standard base64 (RFC 4648, with padding), for payloads that
 * are bytes rather than JSON. None of our libraries exposes one (jansson,
 * zlib and libuv do not), and it is forty lines. */
#ifndef DEFER_BASE64_H
#define DEFER_BASE64_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

bool base64_encode(buf_t *out, const void *data, size_t len);
/* Decode into out (appending); false on any byte outside the alphabet,
 * bad padding or a length that is not a multiple of 4. */
bool base64_decode(buf_t *out, const char *text, size_t len);
/* Upper bound of the decoded size. */
static inline size_t base64_decoded_max(size_t len) { return len / 4 * 3; }

#endif
