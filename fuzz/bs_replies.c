/* bs_replies.c - see bs_replies.h. */
#include "bs_replies.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct where {
    const char *who, *context;
    const char *line; /* the reply being read */
    size_t len;
} where_t;

static void bad(const where_t *w, int line, const char *cond) {
    fprintf(stderr, "%s: bad beanstalk reply%s%s%s: '%.*s'\n  failed: %s\n  at %s:%d\n", w->who,
            w->context ? " (" : "", w->context ? w->context : "", w->context ? ")" : "",
            (int)(w->len > 200 ? 200 : w->len), w->line, cond, __FILE__, line);
    abort();
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            bad(&w, __LINE__, #cond);                                                              \
    } while (0)

static bool starts(const char *p, size_t n, const char *s) {
    size_t k = strlen(s);
    return n >= k && memcmp(p, s, k) == 0;
}

/* A decimal without sign or leading zeros, up to end or the first
 * non-digit. */
static bool read_dec(const char **p, const char *end, uint64_t *v) {
    const char *q = *p;
    uint64_t x = 0;
    if (q == end || *q < '0' || *q > '9')
        return false;
    if (*q == '0' && q + 1 < end && q[1] >= '0' && q[1] <= '9')
        return false;
    for (; q < end && *q >= '0' && *q <= '9'; q++) {
        if (x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(*q - '0');
    }
    *p = q;
    *v = x;
    return true;
}

static const char *const plain_replies[] = {
    "BURIED",      "KICKED",        "DELETED",     "RELEASED",   "TOUCHED",
    "PAUSED",      "NOT_FOUND",     "NOT_IGNORED", "BAD_FORMAT", "UNKNOWN_COMMAND",
    "JOB_TOO_BIG", "EXPECTED_CRLF", "DRAINING",    "TIMED_OUT",  "DEADLINE_SOON",
};

void bs_check_replies(const char *who, const char *context, const engine_t *e, uint64_t max_body,
                      bool log_full, const char *p, size_t n) {
    const char *end = p + n;
    where_t w = {.who = who, .context = context};
    while (p < end) {
        w.line = p;
        w.len = (size_t)(end - p);
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        CHECK(eol != NULL); /* a reply line cut short */
        size_t len = (size_t)(eol - p);
        w.len = len;
        const char *next = eol + 2;
        const char *q;
        uint64_t a, b;
        if (starts(p, len, "RESERVED ") || starts(p, len, "FOUND ")) {
            q = p + (p[0] == 'R' ? 9 : 6);
            CHECK(read_dec(&q, eol, &a) && a > 0 && a < e->next_id);
            CHECK(q < eol && *q == ' ');
            q++;
            CHECK(read_dec(&q, eol, &b) && q == eol && b <= max_body);
            CHECK((uint64_t)(end - next) >= b + 2);
            CHECK(next[b] == '\r' && next[b + 1] == '\n');
            next += b + 2;
        } else if (starts(p, len, "OK ")) {
            q = p + 3;
            CHECK(read_dec(&q, eol, &b) && q == eol);
            CHECK((uint64_t)(end - next) >= b + 2);
            CHECK(b >= 4 && memcmp(next, "---\n", 4) == 0);
            CHECK(next[b] == '\r' && next[b + 1] == '\n');
            CHECK(memmem(next, b, "\r\n", 2) == NULL);
            next += b + 2;
        } else if (starts(p, len, "INSERTED ") || starts(p, len, "BURIED ")) {
            q = p + (p[0] == 'I' ? 9 : 7);
            CHECK(read_dec(&q, eol, &a) && q == eol && a > 0 && a < e->next_id);
        } else if (starts(p, len, "WATCHING ")) {
            q = p + 9;
            CHECK(read_dec(&q, eol, &a) && q == eol && a >= 1);
        } else if (starts(p, len, "KICKED ")) {
            q = p + 7;
            CHECK(read_dec(&q, eol, &a) && q == eol && a <= UINT32_MAX);
        } else if (starts(p, len, "USING ")) {
            CHECK(engine_tube_name_valid(p + 6, len - 6));
        } else if (log_full && len == 13 && memcmp(p, "OUT_OF_MEMORY", 13) == 0) {
            /* The log has no room for the change. */
        } else {
            bool known = false;
            for (size_t i = 0; i < sizeof plain_replies / sizeof plain_replies[0]; i++)
                if (len == strlen(plain_replies[i]) && memcmp(p, plain_replies[i], len) == 0)
                    known = true;
            CHECK(known); /* an unexpected reply */
        }
        p = next;
    }
}
