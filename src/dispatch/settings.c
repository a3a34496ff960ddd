/* settings.c - push settings: parsing (config file pairs, JSON), checking
 * and printing. One function, settings_set, understands every name, so the
 * file and the API cannot drift apart: JSON values are turned into the
 * text they would have in the file and handed to it. */
#include "dispatch/settings.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/errmsg.h"
#include "util/json_out.h"

#define NS_PER_SEC INT64_C(1000000000)

static const char *const kind_names[] = {"none", "fastcgi", "http", "exec"};

const char *settings_kind_name(push_kind_t k) {
    return kind_names[k];
}

void settings_init(push_settings_t *s) {
    memset(s, 0, sizeof *s);
    s->concurrency = SETTINGS_DEFAULT_CONCURRENCY;
    s->burst = 1;
    s->max_attempts = SETTINGS_DEFAULT_MAX_ATTEMPTS;
    s->backoff_min_ns = SETTINGS_DEFAULT_BACKOFF_MIN;
    s->backoff_max_ns = SETTINGS_DEFAULT_BACKOFF_MAX;
}

void settings_free(push_settings_t *s) {
    free(s->address);
    free(s->script);
    free(s->url);
    for (uint32_t i = 0; i < s->nheaders; i++)
        free(s->headers[i]);
    free(s->command);
    free(s->workdir);
    settings_init(s);
}

static bool dup_into(char **dst, const char *src) {
    *dst = NULL;
    return !src || (*dst = strdup(src)) != NULL;
}

bool settings_copy(push_settings_t *dst, const push_settings_t *src) {
    *dst = *src;
    bool ok = dup_into(&dst->address, src->address) & dup_into(&dst->script, src->script) &
              dup_into(&dst->url, src->url) & dup_into(&dst->command, src->command) &
              dup_into(&dst->workdir, src->workdir);
    for (uint32_t i = 0; i < src->nheaders; i++)
        ok &= dup_into(&dst->headers[i], src->headers[i]);
    if (!ok)
        settings_free(dst);
    return ok;
}


/* ---- values ---- */

/* A decimal number: digits with at most one '.', nothing else. */
static bool parse_decimal(const char *p, size_t len, double *out) {
    char tmp[40];
    size_t digits = 0, dots = 0;
    if (len == 0 || len >= sizeof tmp)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (p[i] >= '0' && p[i] <= '9')
            digits++;
        else if (p[i] == '.')
            dots++;
        else
            return false;
    }
    if (!digits || dots > 1)
        return false;
    memcpy(tmp, p, len);
    tmp[len] = '\0';
    *out = strtod(tmp, NULL);
    return isfinite(*out);
}

static bool parse_whole(const char *text, uint64_t min, uint64_t max, uint64_t *out) {
    uint64_t v = 0;
    if (!*text)
        return false;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9' || v > max)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool settings_parse_duration(const char *text, int64_t *ns) {
    static const struct {
        const char *suffix;
        double ns;
    } units[] = {{"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}, {"d", 86400e9}, {"", 1e9}};
    size_t len = strlen(text);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t sl = strlen(units[i].suffix);
        if (len <= sl || strcmp(text + len - sl, units[i].suffix) != 0)
            continue;
        double v;
        if (!parse_decimal(text, len - sl, &v))
            return false;
        v *= units[i].ns;
        if (v > (double)SETTINGS_DURATION_MAX)
            return false;
        *ns = (int64_t)llround(v);
        return true;
    }
    return false;
}

/* "10", "10/s", "600/m", "3600/h": attempts per second. */
static bool parse_rate(const char *text, double *out) {
    const char *slash = strchr(text, '/');
    size_t len = slash ? (size_t)(slash - text) : strlen(text);
    double per = 1;
    if (slash) {
        if (strcmp(slash, "/s") == 0)
            per = 1;
        else if (strcmp(slash, "/m") == 0)
            per = 60;
        else if (strcmp(slash, "/h") == 0)
            per = 3600;
        else
            return false;
    }
    double v;
    if (!parse_decimal(text, len, &v))
        return false;
    v /= per;
    if (v > SETTINGS_RATE_MAX)
        return false;
    *out = v;
    return true;
}

static bool text_ok(const char *v) {
    size_t n = strlen(v);
    if (n == 0 || n > SETTINGS_TEXT_MAX || !json_utf8_valid(v, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return false; /* control characters, CR and LF included */
    return true;
}

static bool set_text(char **field, const char *name, const char *value, char *err, size_t errlen) {
    if (!text_ok(value))
        return errmsg(err, errlen, "%s: must be 1 to %d bytes of UTF-8 text, without control "
                    "characters", name, SETTINGS_TEXT_MAX);
    char *copy = strdup(value);
    if (!copy)
        return errmsg(err, errlen, "out of memory");
    free(*field);
    *field = copy;
    return true;
}

/* "Name: value", the name a valid HTTP token. */
static bool header_ok(const char *h) {
    const char *colon = strchr(h, ':');
    if (!colon || colon == h)
        return false;
    for (const char *p = h; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *p)))
            return false;
    return true;
}

bool settings_set(push_settings_t *s, const char *name, const char *value, char *err,
                  size_t errlen) {
    uint64_t n;
    if (strcmp(name, "target") == 0) {
        for (int k = PUSH_NONE; k <= PUSH_EXEC; k++)
            if (strcmp(value, kind_names[k]) == 0) {
                s->kind = (push_kind_t)k;
                return true;
            }
        return errmsg(err, errlen, "target: \"%.64s\" is not a target; use fastcgi, http or exec "
                    "(or none)", value);
    }
    if (strcmp(name, "address") == 0)
        return set_text(&s->address, name, value, err, errlen);
    if (strcmp(name, "script") == 0) {
        if (value[0] != '/')
            return errmsg(err, errlen, "script: \"%.64s\" must be an absolute path (php-fpm "
                        "looks it up as SCRIPT_FILENAME)", value);
        return set_text(&s->script, name, value, err, errlen);
    }
    if (strcmp(name, "url") == 0) {
        if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0)
            return errmsg(err, errlen, "url: \"%.64s\" must start with http:// or https://", value);
        return set_text(&s->url, name, value, err, errlen);
    }
    if (strcmp(name, "header") == 0) {
        if (!text_ok(value) || !header_ok(value))
            return errmsg(err, errlen, "header: \"%.64s\" is not a \"Name: value\" line", value);
        if (s->nheaders == SETTINGS_HEADERS_MAX)
            return errmsg(err, errlen, "header: at most %d headers", SETTINGS_HEADERS_MAX);
        size_t nlen = (size_t)(strchr(value, ':') - value);
        for (uint32_t i = 0; i < s->nheaders; i++)
            if (strncasecmp(s->headers[i], value, nlen) == 0 && s->headers[i][nlen] == ':')
                return errmsg(err, errlen, "header: %.*s is given twice", (int)nlen, value);
        if (!(s->headers[s->nheaders] = strdup(value)))
            return errmsg(err, errlen, "out of memory");
        s->nheaders++;
        return true;
    }
    if (strcmp(name, "command") == 0)
        return set_text(&s->command, name, value, err, errlen);
    if (strcmp(name, "workdir") == 0) {
        if (value[0] != '/')
            return errmsg(err, errlen, "workdir: \"%.64s\" must be an absolute path", value);
        return set_text(&s->workdir, name, value, err, errlen);
    }
    if (strcmp(name, "concurrency") == 0) {
        if (!parse_whole(value, 1, SETTINGS_CONCURRENCY_MAX, &n))
            return errmsg(err, errlen, "concurrency: \"%.64s\" is not a whole number from 1 to %u",
                        value, SETTINGS_CONCURRENCY_MAX);
        s->concurrency = (uint32_t)n;
        return true;
    }
    if (strcmp(name, "rate") == 0) {
        if (!parse_rate(value, &s->rate))
            return errmsg(err, errlen, "rate: \"%.64s\" is not a rate such as 10, 10/s, 600/m or "
                        "3600/h (at most 1000000/s; 0: no limit)", value);
        return true;
    }
    if (strcmp(name, "burst") == 0) {
        if (!parse_whole(value, 1, SETTINGS_CONCURRENCY_MAX * 100u, &n))
            return errmsg(err, errlen, "burst: \"%.64s\" is not a whole number from 1 to %u", value,
                        SETTINGS_CONCURRENCY_MAX * 100u);
        s->burst = (uint32_t)n;
        return true;
    }
    if (strcmp(name, "max_attempts") == 0) {
        if (!parse_whole(value, 0, SETTINGS_ATTEMPTS_MAX, &n))
            return errmsg(err, errlen, "max_attempts: \"%.64s\" is not a whole number from 0 (no "
                        "limit) to %u", value, SETTINGS_ATTEMPTS_MAX);
        s->max_attempts = (uint32_t)n;
        return true;
    }
    int64_t *dur = strcmp(name, "deadline") == 0      ? &s->deadline_ns
                   : strcmp(name, "backoff_min") == 0 ? &s->backoff_min_ns
                   : strcmp(name, "backoff_max") == 0 ? &s->backoff_max_ns
                                                      : NULL;
    if (dur) {
        if (!settings_parse_duration(value, dur))
            return errmsg(err, errlen, "%s: \"%.64s\" is not a duration such as 30s, 500ms, 5m or "
                        "1h (at most 30 days)", name, value);
        return true;
    }
    return errmsg(err, errlen, "unknown setting \"%.64s\"; known: target, address, script, url, "
                "header(s), command, workdir, concurrency, rate, burst, deadline, max_attempts, "
                "backoff_min, backoff_max", name);
}

bool settings_check(const push_settings_t *s, char *err, size_t errlen) {
    switch (s->kind) {
    case PUSH_NONE: /* no push: tasks wait for workers */
        break;
    case PUSH_FASTCGI:
        if (!s->address || !s->script)
            return errmsg(err, errlen, "a fastcgi target needs address (unix:/path/to/php-fpm.sock "
                        "or host:port) and script (the PHP file to run)");
        if (strncmp(s->address, "unix:", 5) != 0 && !strrchr(s->address, ':'))
            return errmsg(err, errlen, "address: \"%.64s\" is neither unix:/path nor host:port",
                        s->address);
        break;
    case PUSH_HTTP:
        if (!s->url)
            return errmsg(err, errlen, "an http target needs url");
        break;
    case PUSH_EXEC:
        if (!s->command)
            return errmsg(err, errlen, "an exec target needs command");
        break;
    }
    /* Settings of another target are a mistake worth pointing out. */
    const char *stray = s->kind != PUSH_FASTCGI && (s->address || s->script) ? "address/script"
                        : s->kind != PUSH_HTTP && (s->url || s->nheaders) ? "url/header"
                        : s->kind != PUSH_EXEC && (s->command || s->workdir) ? "command/workdir"
                                                                              : NULL;
    if (stray)
        return errmsg(err, errlen, "%s: not a setting of a %s target", stray,
                    kind_names[s->kind]);
    if (s->backoff_min_ns > s->backoff_max_ns)
        return errmsg(err, errlen, "backoff_min is longer than backoff_max");
    return true;
}

/* ---- JSON ---- */

/* The text a JSON scalar would have in the config file. */
static bool json_as_text(const json_t *v, char *out, size_t len) {
    switch (json_typeof(v)) {
    case JSON_STRING:
        if (strlen(json_string_value(v)) != json_string_length(v))
            return false; /* a NUL inside */
        snprintf(out, len, "%s", json_string_value(v));
        return json_string_length(v) < len;
    case JSON_INTEGER:
        if (json_integer_value(v) < 0)
            return false;
        snprintf(out, len, "%lld", (long long)json_integer_value(v));
        return true;
    case JSON_REAL: {
        double d = json_real_value(v);
        if (!(d >= 0) || d > 1e15)
            return false;
        /* Fixed notation: parse_decimal takes no exponent. */
        snprintf(out, len, "%.12f", d);
        return true;
    }
    default:
        return false;
    }
}

static bool headers_from_json(push_settings_t *s, const json_t *obj, char *err, size_t errlen) {
    if (!json_is_object(obj))
        return errmsg(err, errlen, "headers: must be an object of names and values");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        if (!json_is_string(v))
            return errmsg(err, errlen, "headers: the value of \"%.64s\" must be a string", k);
        char line[SETTINGS_TEXT_MAX + 2];
        int n = snprintf(line, sizeof line, "%s: %s", k, json_string_value(v));
        if (n < 0 || (size_t)n >= sizeof line)
            return errmsg(err, errlen, "headers: \"%.64s\" is too long", k);
        if (!settings_set(s, "header", line, err, errlen))
            return false;
    }
    return true;
}

bool settings_from_json(push_settings_t *s, const char *text, size_t len, char *err,
                        size_t errlen) {
    settings_init(s);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return errmsg(err, errlen, "the settings are not valid JSON: %s (at character %d)",
                    jerr.text, jerr.position);
    bool ok = true;
    if (!json_is_object(root))
        ok = errmsg(err, errlen, "the settings must be a JSON object");
    if (ok && !json_object_get(root, "target"))
        ok = errmsg(err, errlen, "target is missing; use fastcgi or http (or none)");
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        if (!ok)
            break;
        if (strcmp(k, "headers") == 0) {
            ok = headers_from_json(s, v, err, errlen);
            continue;
        }
        if (strcmp(k, "header") == 0) {
            ok = errmsg(err, errlen, "header: use \"headers\", an object, in JSON");
            continue;
        }
        char value[SETTINGS_TEXT_MAX + 1];
        if (!json_as_text(v, value, sizeof value)) {
            ok = errmsg(err, errlen, "%.64s: must be a string or a number not below 0", k);
            continue;
        }
        ok = settings_set(s, k, value, err, errlen);
    }
    json_decref(root);
    ok = ok && settings_check(s, err, errlen);
    if (!ok)
        settings_free(s);
    return ok;
}

/* Seconds, with up to nine decimals and no trailing zeros. */
static bool put_seconds(buf_t *b, const char *name, int64_t ns) {
    char num[40];
    snprintf(num, sizeof num, "%lld.%09lld", (long long)(ns / NS_PER_SEC),
             (long long)(ns % NS_PER_SEC));
    size_t n = strlen(num);
    while (num[n - 1] == '0')
        num[--n] = '\0';
    if (num[n - 1] == '.')
        num[--n] = '\0';
    return buf_appendf(b, ",\"%s\":%s", name, num);
}

static bool put_str(buf_t *b, const char *name, const char *v) {
    return !v || (buf_appendf(b, ",\"%s\":", name) && json_out_str(b, v, strlen(v)));
}

/* A URL with the password of its user info, if any, shown as ***. */
static bool put_url_redacted(buf_t *b, const char *url) {
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    size_t auth_len = strcspn(host, "/?#");
    const char *at = memrchr(host, '@', auth_len);
    const char *colon = at ? memchr(host, ':', (size_t)(at - host)) : NULL;
    if (!colon)
        return put_str(b, "url", url);
    buf_t tmp;
    buf_init(&tmp);
    bool ok = buf_append(&tmp, url, (size_t)(colon + 1 - url)) && buf_puts(&tmp, "***") &&
              buf_puts(&tmp, at) && buf_appendf(b, ",\"url\":") &&
              json_out_str(b, buf_head(&tmp), tmp.len);
    buf_free(&tmp);
    return ok;
}

bool settings_to_json(buf_t *b, const push_settings_t *s, bool redact) {
    bool ok = buf_appendf(b, "{\"target\":\"%s\"", kind_names[s->kind]) &&
              put_str(b, "address", s->address) && put_str(b, "script", s->script) &&
              (redact && s->url ? put_url_redacted(b, s->url) : put_str(b, "url", s->url));
    if (ok && s->nheaders) {
        ok = buf_puts(b, ",\"headers\":{");
        for (uint32_t i = 0; ok && i < s->nheaders; i++) {
            const char *h = s->headers[i], *colon = strchr(h, ':');
            const char *val = colon + 1;
            while (*val == ' ' || *val == '\t')
                val++;
            if (redact)
                val = "***";
            ok = (i == 0 || buf_puts(b, ",")) && json_out_str(b, h, (size_t)(colon - h)) &&
                 buf_puts(b, ":") && json_out_str(b, val, strlen(val));
        }
        ok = ok && buf_puts(b, "}");
    }
    char rate[48];
    snprintf(rate, sizeof rate, "%.9g", s->rate);
    return ok && put_str(b, "command", s->command) && put_str(b, "workdir", s->workdir) &&
           buf_appendf(b, ",\"concurrency\":%u,\"rate\":%s,\"burst\":%u", s->concurrency, rate,
                       s->burst) &&
           put_seconds(b, "deadline", s->deadline_ns) &&
           buf_appendf(b, ",\"max_attempts\":%u", s->max_attempts) &&
           put_seconds(b, "backoff_min", s->backoff_min_ns) &&
           put_seconds(b, "backoff_max", s->backoff_max_ns) && buf_puts(b, "}");
}

int64_t settings_backoff(const push_settings_t *s, uint32_t n, double u) {
    /* Past 2^64 times the minimum, every wait is the maximum anyway. */
    double base = n > 64 ? (double)s->backoff_max_ns : ldexp((double)s->backoff_min_ns, (int)n - 1);
    if (base > (double)s->backoff_max_ns)
        base = (double)s->backoff_max_ns;
    double wait = base - base / 2 * u;
    if (wait < (double)s->backoff_min_ns)
        wait = (double)s->backoff_min_ns;
    return (int64_t)wait;
}
