/* json_scan.c - see json_scan.h. */
#include "util/json_scan.h"

#include <string.h>

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p is at a '"': the end of the string, or NULL. */
static const char *skip_string(const char *p, const char *end) {
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* The end of the value at p, or NULL. Containers are skipped by counting
 * brackets outside strings, so depth costs no stack. */
static const char *skip_value(const char *p, const char *end) {
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        size_t depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
                if (!p)
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if ((*p == '}' || *p == ']') && --depth == 0)
                return p + 1;
            p++;
        }
        return NULL;
    }
    /* A number or true/false/null. */
    const char *start = p;
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
           *p != '\n' && *p != '\r')
        p++;
    return p > start ? p : NULL;
}

/* Does the key string at p (a '"') decode to name? Keys with escapes are
 * compared after decoding the simple escapes; \u escapes never match our
 * ASCII member names unless they spell them, which is decoded too. */
static bool key_is(const char *p, const char *kend, const char *name) {
    size_t n = 0, nlen = strlen(name);
    for (p++; p < kend - 1; p++) {
        char c = *p;
        if (c == '\\') {
            p++;
            if (p >= kend - 1)
                return false;
            if (*p == 'u') {
                if (kend - 1 - p < 5)
                    return false;
                unsigned v = 0;
                for (int i = 1; i <= 4; i++) {
                    char h = p[i];
                    v = v * 16 + (unsigned)(h >= '0' && h <= '9'   ? h - '0'
                                            : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                            : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                                   : 99);
                }
                if (v > 127)
                    return false;
                c = (char)v;
                p += 4;
            } else {
                c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'r' ? '\r' : *p == 'b' ? '\b'
                    : *p == 'f'                                                   ? '\f'
                                                                                  : *p;
            }
        }
        if (n >= nlen || name[n] != c)
            return false;
        n++;
    }
    return n == nlen;
}

/* Walk the members of the object at p: for each, if its key is name, set
 * *out to its value. Returns the end of the object, or NULL. */
static const char *object_member(const char *p, const char *end, const char *name,
                                 json_span_t *out) {
    out->p = NULL;
    out->len = 0;
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return p + 1;
    while (p < end) {
        if (*p != '"')
            return NULL;
        const char *kend = skip_string(p, end);
        if (!kend)
            return NULL;
        bool match = key_is(p, kend, name);
        p = skip_ws(kend, end);
        if (p >= end || *p != ':')
            return NULL;
        p = skip_ws(p + 1, end);
        const char *vend = skip_value(p, end);
        if (!vend)
            return NULL;
        if (match) {
            out->p = p;
            out->len = (size_t)(vend - p);
        }
        p = skip_ws(vend, end);
        if (p < end && *p == '}')
            return p + 1;
        if (p >= end || *p != ',')
            return NULL;
        p = skip_ws(p + 1, end);
    }
    return NULL;
}

bool json_scan_member(const char *doc, size_t len, const char *name, json_span_t *out) {
    return object_member(doc, doc + len, name, out) != NULL;
}

bool json_scan_each(const char *doc, size_t len, const char *array_name, const char *name,
                    json_span_t *spans, size_t n) {
    const char *end = doc + len;
    json_span_t arr;
    if (!object_member(doc, end, array_name, &arr) || !arr.p || *arr.p != '[')
        return false;
    const char *p = skip_ws(arr.p + 1, end);
    size_t i = 0;
    while (p < end && *p != ']') {
        if (i == n)
            return false;
        const char *vend = skip_value(p, end);
        if (!vend)
            return false;
        if (*p == '{') {
            if (!object_member(p, vend, name, &spans[i]))
                return false;
        } else {
            spans[i].p = NULL;
            spans[i].len = 0;
        }
        i++;
        p = skip_ws(vend, end);
        if (p < end && *p == ',')
            p = skip_ws(p + 1, end);
    }
    return i == n;
}

bool json_compact(buf_t *out, const char *text, size_t len) {
    if (!buf_reserve(out, len))
        return false;
    char *o = buf_tail(out);
    size_t n = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            o[n++] = c;
            if (c == '\\' && i + 1 < len)
                o[n++] = text[++i];
            else if (c == '"')
                in_string = false;
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            o[n++] = c;
            in_string = c == '"';
        }
    }
    out->len += n;
    return true;
}
