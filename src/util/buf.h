/* buf.h - a growable byte buffer.
 *
 * Used for connection output, partial input and formatted replies. Growth is
 * geometric; buf_reset() releases storage that grew large, so a buffer that
 * once held a big reply does not pin that memory forever. */
#ifndef DEFER_BUF_H
#define DEFER_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    char *data;
    size_t len; /* bytes held, starting at data + off */
    size_t off; /* bytes already consumed at the front */
    size_t cap;
} buf_t;

void buf_init(buf_t *b);
void buf_free(buf_t *b);

/* Make room for at least n more bytes; false when memory is exhausted. */
bool buf_reserve(buf_t *b, size_t n);
bool buf_append(buf_t *b, const void *p, size_t n);
/* A NUL-terminated string, without its NUL. */
bool buf_puts(buf_t *b, const char *s);
bool buf_appendf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool buf_vappendf(buf_t *b, const char *fmt, va_list ap);
/* Decimal, without printf: replies on the hot path carry ids and sizes. */
bool buf_append_u64(buf_t *b, uint64_t v);

/* The unconsumed bytes (a valid pointer even when nothing was allocated). */
char *buf_head(const buf_t *b);
/* Where the next appended byte goes (valid after buf_reserve). */
static inline char *buf_tail(const buf_t *b) { return b->data + b->off + b->len; }

/* Drop n bytes from the front. */
void buf_consume(buf_t *b, size_t n);
/* Forget everything, keeping (or, when large, releasing) the storage. */
void buf_reset(buf_t *b);

#endif
