/* buf.c - growable byte buffer (see buf.h). */
#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A buffer that grew past this is released when emptied, so one large
 * reply does not pin its memory on an idle connection. */
#define BUF_KEEP_MAX (64 * 1024)

char *buf_head(const buf_t *b) {
    static char empty[1];
    return b->data ? b->data + b->off : empty;
}

void buf_init(buf_t *b) {
    b->data = NULL;
    b->len = b->off = b->cap = 0;
}

void buf_free(buf_t *b) {
    free(b->data);
    buf_init(b);
}

bool buf_reserve(buf_t *b, size_t n) {
    if (b->cap - b->off - b->len >= n)
        return true;
    /* Slide the live bytes to the front first when that makes room. */
    if (b->off && b->cap - b->len >= n) {
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
        return true;
    }
    size_t need = b->len + n;
    if (need < n)
        return false;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > ((size_t)-1) / 2)
            return false;
        cap *= 2;
    }
    char *p = malloc(cap);
    if (!p)
        return false;
    if (b->len)
        memcpy(p, b->data + b->off, b->len);
    free(b->data);
    b->data = p;
    b->off = 0;
    b->cap = cap;
    return true;
}

bool buf_append(buf_t *b, const void *p, size_t n) {
    if (!buf_reserve(b, n))
        return false;
    if (n)
        memcpy(buf_tail(b), p, n);
    b->len += n;
    return true;
}

bool buf_puts(buf_t *b, const char *s) {
    return buf_append(b, s, strlen(s));
}

bool buf_vappendf(buf_t *b, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return false;
    if ((size_t)n < sizeof small)
        return buf_append(b, small, (size_t)n);
    if (!buf_reserve(b, (size_t)n + 1))
        return false;
    vsnprintf(buf_tail(b), (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return true;
}

bool buf_appendf(buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    bool ok = buf_vappendf(b, fmt, ap);
    va_end(ap);
    return ok;
}

bool buf_append_u64(buf_t *b, uint64_t v) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof tmp - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return buf_append(b, tmp + sizeof tmp - n, n);
}

void buf_consume(buf_t *b, size_t n) {
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    b->off += n;
    b->len -= n;
}

void buf_reset(buf_t *b) {
    b->len = b->off = 0;
    if (b->cap > BUF_KEEP_MAX)
        buf_free(b);
}
