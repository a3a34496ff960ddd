/* json_out.c - see json_out.h. */
#include "util/json_out.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len;
    uint32_t min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    uint32_t cp = c & (0x3f >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool json_utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_len(p + i, len - i);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

bool json_out_str(buf_t *b, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    if (!buf_append(b, "\"", 1))
        return false;
    size_t run = 0; /* bytes copied as they are, flushed in one go */
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        size_t n = c >= 0x20 && c != '"' && c != '\\' ? utf8_len(p + i, len - i) : 0;
        if (n) {
            i += n;
            run += n;
            continue;
        }
        if (run && !buf_append(b, p + i - run, run))
            return false;
        run = 0;
        char esc[8];
        const char *e = esc;
        size_t elen = 2;
        switch (c) {
        case '"':
            e = "\\\"";
            break;
        case '\\':
            e = "\\\\";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\t':
            e = "\\t";
            break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                elen = 6;
            } else {
                e = "\\ufffd"; /* not valid UTF-8 */
                elen = 6;
            }
            break;
        }
        if (!buf_append(b, e, elen))
            return false;
        i++;
    }
    if (run && !buf_append(b, p + len - run, run))
        return false;
    return buf_append(b, "\"", 1);
}

void json_format_time(char *out, size_t outlen, int64_t ns) {
    time_t secs = (time_t)(ns / 1000000000);
    int ms = (int)((ns % 1000000000) / 1000000);
    if (ns < 0 && ns % 1000000000) {
        secs--;
        ms += 1000;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

bool json_out_time(buf_t *b, int64_t ns) {
    char t[48];
    json_format_time(t, sizeof t, ns);
    return buf_append(b, "\"", 1) && buf_append(b, t, strlen(t)) && buf_append(b, "\"", 1);
}

/* n decimal digits at s into *v. */
static bool digits(const char *s, size_t n, int *v) {
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

bool json_parse_time(const char *s, size_t len, int64_t *ns) {
    /* YYYY-MM-DDTHH:MM:SS */
    int y, mo, d, h, mi, sec;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':' || !digits(s, 4, &y) || !digits(s + 5, 2, &mo) ||
        !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) ||
        !digits(s + 17, 2, &sec))
        return false;
    /* 1970 to 2199: nanoseconds since the epoch stay well inside 64 bits. */
    if (y < 1970 || y > 2199 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60)
        return false;
    size_t i = 19;
    int64_t frac = 0, scale = 1000000000;
    if (i < len && s[i] == '.') {
        i++;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (scale > 1) {
                scale /= 10;
                frac += (s[i] - '0') * scale;
            }
            i++;
        }
        if (i == start)
            return false;
    }
    int offset = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh, om;
        if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        offset = (oh * 60 + om) * 60 * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return false;
    }
    if (i != len)
        return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                    .tm_min = mi, .tm_sec = sec};
    time_t t = timegm(&tm);
    /* timegm rolls 30 February over to March: refuse days a month lacks. */
    if (tm.tm_mday != d)
        return false;
    *ns = ((int64_t)t - offset) * 1000000000 + frac;
    return true;
}
