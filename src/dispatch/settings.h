/* settings.h - a queue's push settings: which target runs its tasks, and
 * how many at once, how fast, for how long, and how often.
 *
 * Settings come from the --config file (INI, read with libinih) or from
 * PUT /v1/queues/{queue} (JSON, read with jansson); both land in the same
 * struct through the same validation, and are shown and logged as JSON
 * (settings_to_json). Parsing is pure - no I/O, no clock - so a fuzzer can
 * drive it (fuzz/fuzz_settings.c). */
#ifndef DEFER_SETTINGS_H
#define DEFER_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef enum push_kind {
    PUSH_NONE = 0,
    PUSH_FASTCGI,
    PUSH_HTTP,
    PUSH_EXEC,
} push_kind_t;

/* Limits a setting must lie within. */
#define SETTINGS_CONCURRENCY_MAX 10000u
#define SETTINGS_RATE_MAX 1e6
#define SETTINGS_DURATION_MAX (INT64_C(30) * 86400 * 1000000000) /* 30 days, in ns */
#define SETTINGS_ATTEMPTS_MAX 1000000u
#define SETTINGS_HEADERS_MAX 32
#define SETTINGS_TEXT_MAX 4096 /* an address, a URL, a command, a header */

typedef struct push_settings {
    push_kind_t kind;
    /* fastcgi */
    char *address; /* "unix:/path/to/php-fpm.sock" or "host:port" */
    char *script;  /* SCRIPT_FILENAME: the absolute path of the PHP script */
    /* http */
    char *url;
    char *headers[SETTINGS_HEADERS_MAX]; /* "Name: value" lines */
    uint32_t nheaders;
    /* exec (config file only) */
    char *command; /* split into words as a shell would, without running one */
    char *workdir; /* NULL: deferd's own */
    /* every target */
    uint32_t concurrency;   /* attempts running at once, at least 1 */
    double rate;            /* attempts started per second; 0: no limit */
    uint32_t burst;         /* attempts that may start at once under the rate */
    int64_t deadline_ns;    /* an attempt's time limit; 0: the task's TTR */
    uint32_t max_attempts;  /* when the task sets none; 0: no limit */
    int64_t backoff_min_ns; /* the first retry's wait */
    int64_t backoff_max_ns; /* the longest wait between attempts */
} push_settings_t;

/* Defaults, documented in docs/push.md. */
#define SETTINGS_DEFAULT_CONCURRENCY 1u
#define SETTINGS_DEFAULT_MAX_ATTEMPTS 5u
#define SETTINGS_DEFAULT_BACKOFF_MIN (INT64_C(1) * 1000000000)
#define SETTINGS_DEFAULT_BACKOFF_MAX (INT64_C(300) * 1000000000)

/* Everything zero, with the defaults filled in. */
void settings_init(push_settings_t *s);
void settings_free(push_settings_t *s);
/* A deep copy; false when memory ran out (dst is then left empty). */
bool settings_copy(push_settings_t *dst, const push_settings_t *src);

/* Parse one name = value pair, as written in the config file. Checks the
 * value alone; settings_check looks at the whole. False with err filled. */
bool settings_set(push_settings_t *s, const char *name, const char *value, char *err,
                  size_t errlen);
/* Everything the target needs is there and the values agree. */
bool settings_check(const push_settings_t *s, char *err, size_t errlen);

/* Parse a JSON object (the body of PUT /v1/queues/{queue}, or a logged
 * SETTINGS record) and check it. Returns false with err filled: a sentence
 * naming the field and what is wrong with it. */
bool settings_from_json(push_settings_t *s, const char *text, size_t len, char *err,
                        size_t errlen);
/* Append the settings as a JSON object. With redact, as the API shows
 * them: header values and the password of a URL are "***" (they are often
 * credentials, and whoever reads the queue need not learn them). */
bool settings_to_json(buf_t *b, const push_settings_t *s, bool redact);

/* "30s", "500ms", "5m", "1h", "2d", or a plain number of seconds ("1.5").
 * False unless the whole text is one such value within 0..30 days. */
bool settings_parse_duration(const char *text, int64_t *ns);

/* The wait before retrying after failed attempt n (1 for the first):
 * backoff_min doubled n-1 times, at most backoff_max, of which a random
 * part up to half is taken off (u in [0, 1) picks it) so that tasks that
 * failed together do not all come back together - but never below
 * backoff_min. */
int64_t settings_backoff(const push_settings_t *s, uint32_t n, double u);

const char *settings_kind_name(push_kind_t k);

#endif
