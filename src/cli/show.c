/* show.c - tasks, queues and times as people read them.
 *
 * The server's times are RFC 3339 in UTC; they are shown as they are (so
 * they can be pasted back into --run-at) with how far off they are, which
 * is what a person usually wants to know. Payloads are pretty-printed
 * when they are JSON; byte payloads are shown as text when they are text. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "util/base64.h"
#include "util/json_out.h"

#define NS_PER_SECOND 1000000000LL

const char *show_scalar(const json_t *v, char *tmp, size_t tmplen) {
    if (!v)
        return "-";
    if (!tmp && json_is_number(v))
        return "?"; /* the caller expected a string here */
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_string_value(v);
    case JSON_INTEGER:
        snprintf(tmp, tmplen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return tmp;
    case JSON_REAL:
        snprintf(tmp, tmplen, "%.2f", json_real_value(v));
        return tmp;
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    case JSON_OBJECT:
    case JSON_ARRAY:
        return "...";
    case JSON_NULL:
    default:
        return "-";
    }
}

void show_duration(char *out, size_t len, int64_t secs) {
    if (secs < 60)
        snprintf(out, len, "%" PRId64 "s", secs);
    else if (secs < 3600)
        snprintf(out, len, "%" PRId64 "m %" PRId64 "s", secs / 60, secs % 60);
    else if (secs < 86400)
        snprintf(out, len, "%" PRId64 "h %" PRId64 "m", secs / 3600, secs % 3600 / 60);
    else
        snprintf(out, len, "%" PRId64 "d %" PRId64 "h", secs / 86400, secs % 86400 / 3600);
}

char *show_time(const json_t *v) {
    if (!json_is_string(v))
        return strdup("-");
    const char *s = json_string_value(v);
    int64_t at;
    if (!json_parse_time(s, json_string_length(v), &at))
        return strdup(s);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * NS_PER_SECOND + ts.tv_nsec;
    int64_t diff = at - now;
    int64_t secs = (diff < 0 ? -diff : diff) / NS_PER_SECOND;
    char d[48];
    show_duration(d, sizeof d, secs);
    char *out = NULL;
    int n;
    if (secs == 0)
        n = asprintf(&out, "%s (now)", s);
    else
        n = asprintf(&out, diff > 0 ? "%s (in %s)" : "%s (%s ago)", s, d);
    return n < 0 ? NULL : out;
}

void show_pause(char *out, size_t len, const json_t *queue) {
    const json_t *left = json_object_get(queue, "pause_seconds_left");
    if (!json_is_true(json_object_get(queue, "paused")))
        snprintf(out, len, "no");
    else if (json_is_null(left)) /* paused until resumed */
        snprintf(out, len, "until resumed");
    else
        show_duration(out, len, (int64_t)json_integer_value(left));
}

/* No control characters other than tab and newline, and UTF-8 in shape:
 * bytes a person can read as they are. (jansson checks the finer rules of
 * UTF-8 when the text becomes a JSON string.) */
static bool is_text(const unsigned char *p, size_t len) {
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        size_t more;
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
                return false;
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            more = 1;
        else if (c >= 0xE0 && c <= 0xEF)
            more = 2;
        else if (c >= 0xF0 && c <= 0xF4)
            more = 3;
        else
            return false;
        if (len - i <= more)
            return false;
        for (size_t k = 1; k <= more; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
        i += more + 1;
    }
    return true;
}

/* The payload lines: pretty JSON, a byte payload as a JSON string when it
 * is text, or its base64 when it is not. */
static bool add_payload(fields_t *f, const json_t *task) {
    const json_t *payload = json_object_get(task, "payload");
    if (payload) {
        char *text =
            json_dumps(payload, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_REAL_PRECISION(16));
        bool ok = text && fields_add(f, "payload", text);
        free(text);
        return ok;
    }
    const json_t *b64 = json_object_get(task, "payload_base64");
    if (!json_is_string(b64))
        return true; /* a finished task: its payload is not kept */
    buf_t raw;
    buf_init(&raw);
    json_t *str = NULL;
    if (base64_decode(&raw, json_string_value(b64), json_string_length(b64)) &&
        is_text((const unsigned char *)buf_head(&raw), raw.len))
        str = json_stringn(buf_head(&raw), raw.len); /* NULL: not UTF-8 after all */
    bool ok;
    if (str) {
        char *text = json_dumps(str, JSON_ENCODE_ANY);
        ok = text && fields_addf(f, "payload", "%s  (%zu bytes, not JSON)", text, raw.len);
        free(text);
        json_decref(str);
    } else {
        ok = fields_addf(f, "payload_base64", "%s  (%zu bytes)", json_string_value(b64), raw.len);
    }
    buf_free(&raw);
    return ok;
}

static const char *const time_fields[] = {"created_at", "run_at", "finished_at"};

int show_task(const json_t *task) {
    static const char *const order[] = {"id",         "queue",    "state",        "priority",
                                        "ttr",        "attempts", "max_attempts", "key",
                                        "created_at", "run_at",   "finished_at",  "last_error"};
    fields_t f;
    fields_init(&f);
    bool ok = true;
    char tmp[64];
    for (size_t i = 0; ok && i < sizeof order / sizeof *order; i++) {
        const json_t *v = json_object_get(task, order[i]);
        if (!v && i > 1)
            continue;
        bool is_time = false;
        for (size_t k = 0; k < sizeof time_fields / sizeof *time_fields; k++)
            is_time |= strcmp(order[i], time_fields[k]) == 0;
        if (is_time) {
            char *t = show_time(v);
            ok = t && fields_add(&f, order[i], t);
            free(t);
        } else if (strcmp(order[i], "max_attempts") == 0 && json_integer_value(v) == 0) {
            ok = fields_add(&f, order[i], "0 (no limit)");
        } else if (strcmp(order[i], "ttr") == 0) {
            ok = fields_addf(&f, order[i], "%s s", show_scalar(v, tmp, sizeof tmp));
        } else {
            ok = fields_add(&f, order[i], show_scalar(v, tmp, sizeof tmp));
        }
    }
    /* Whatever else the server says (deduplicated, replaced, superseded,
     * fields of later versions), before the payload. */
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)task, k, v) {
        bool known = strcmp(k, "payload") == 0 || strcmp(k, "payload_base64") == 0;
        for (size_t i = 0; !known && i < sizeof order / sizeof *order; i++)
            known = strcmp(k, order[i]) == 0;
        if (!known && ok)
            ok = fields_add(&f, k, show_scalar(v, tmp, sizeof tmp));
    }
    ok = ok && add_payload(&f, task);
    if (ok)
        fields_print(&f, stdout);
    fields_free(&f);
    return ok ? CLI_OK : cli_oom();
}
