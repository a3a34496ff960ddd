/* base64.c - see base64.h. */
#include "util/base64.h"

#include <stdint.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool base64_encode(buf_t *out, const void *data, size_t len) {
    const unsigned char *p = data;
    if (!buf_reserve(out, (len + 2) / 3 * 4))
        return false;
    char *o = buf_tail(out);
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    out->len += (size_t)(o - buf_tail(out));
    return true;
}

static int value_of(char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

bool base64_decode(buf_t *out, const char *text, size_t len) {
    if (len == 0)
        return true; /* an empty buffer may have no storage to point into */
    if (len % 4 || !buf_reserve(out, base64_decoded_max(len)))
        return false;
    unsigned char *o = (unsigned char *)buf_tail(out);
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        int pad = last && text[i + 3] == '=' ? (text[i + 2] == '=' ? 2 : 1) : 0;
        uint32_t v = 0;
        for (int k = 0; k < 4; k++) {
            int d = k >= 4 - pad ? 0 : value_of(text[i + k]);
            if (d < 0)
                return false;
            v = v << 6 | (uint32_t)d;
        }
        o[n++] = (unsigned char)(v >> 16);
        if (pad < 2)
            o[n++] = (unsigned char)(v >> 8);
        if (pad < 1)
            o[n++] = (unsigned char)v;
    }
    out->len += n;
    return true;
}
