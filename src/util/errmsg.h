/* errmsg.h - saying why something failed, into the caller's buffer.
 *
 * Functions that can fail take (char *err, size_t errlen) and write a
 * sentence there; this is the one place that does the writing. */
#ifndef DEFER_ERRMSG_H
#define DEFER_ERRMSG_H

#include <stdbool.h>
#include <stddef.h>

/* printf into err (nothing when err is NULL or errlen 0). Returns false,
 * so that a failing path can read `return errmsg(err, errlen, ...);`. */
bool errmsg(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
