/* http_api.c - the routes of the HTTP API and their handlers
 * (docs/http-api.md is the contract).
 *
 * Requests are validated whole before anything changes: a batch is either
 * enqueued entirely or refused with the first bad task named, and every
 * error says which field was wrong and what is allowed. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http.h"
#include "util/base64.h"
#include "util/json_out.h"
#include "util/json_scan.h"

#define DEFAULT_PRIORITY 1024
#define DEFAULT_TTR 60
#define MAX_SEGMENTS 8

/* ---- the path ---- */

typedef struct route {
    char *seg[MAX_SEGMENTS]; /* percent-decoded, NUL-terminated */
    size_t len[MAX_SEGMENTS];
    int n;
    char storage[HTTP_HEADER_MAX + MAX_SEGMENTS];
} route_t;

static int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Split "/a/b%2Fc" into decoded segments. False on bad escapes or too
 * many segments. */
static bool split_path(const char *p, size_t len, route_t *r) {
    r->n = 0;
    char *out = r->storage;
    size_t i = 0;
    if (len == 0 || p[0] != '/')
        return false;
    while (i < len) {
        i++; /* the '/' */
        if (r->n == MAX_SEGMENTS)
            return false;
        r->seg[r->n] = out;
        while (i < len && p[i] != '/') {
            if (p[i] == '%') {
                int hi = i + 2 < len ? hex_value(p[i + 1]) : -1;
                int lo = i + 2 < len ? hex_value(p[i + 2]) : -1;
                if (hi < 0 || lo < 0)
                    return false;
                *out++ = (char)(hi * 16 + lo);
                i += 3;
            } else {
                *out++ = p[i++];
            }
        }
        r->len[r->n] = (size_t)(out - r->seg[r->n]);
        *out++ = '\0';
        r->n++;
    }
    return true;
}

static bool seg_is(const route_t *r, int i, const char *s) {
    return i < r->n && r->len[i] == strlen(s) && memcmp(r->seg[i], s, r->len[i]) == 0;
}

/* The value of name in the query string (not decoded: our values are
 * numbers and names), or NULL. */
static const char *query_get(const http_request_t *q, const char *name, size_t *len) {
    size_t nlen = strlen(name);
    const char *p = q->query, *end = q->query ? q->query + q->query_len : NULL;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
            *len = (size_t)(stop - p - nlen - 1);
            return p + nlen + 1;
        }
        p = amp ? amp + 1 : end;
    }
    return NULL;
}

/* Percent-decode in into out (cap bytes); false on a bad escape or if it
 * does not fit. */
static bool decode(const char *in, size_t len, char *out, size_t cap, size_t *outlen) {
    size_t n = 0;
    for (size_t i = 0; i < len; n++) {
        if (n == cap)
            return false;
        if (in[i] == '%') {
            int hi = i + 2 < len ? hex_value(in[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value(in[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return false;
            out[n] = (char)(hi * 16 + lo);
            i += 3;
        } else {
            out[n] = in[i++];
        }
    }
    *outlen = n;
    return true;
}

static bool parse_u64_text(const char *s, size_t len, uint64_t *out) {
    if (len == 0 || len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* ---- answers ---- */

static buf_t *scratch(http_conn_t *c) {
    buf_reset(&c->srv->scratch);
    return &c->srv->scratch;
}

static void respond_scratch(http_conn_t *c, int status, bool ok, const char *headers) {
    if (!ok) {
        http_error(c, 500, "internal", "out of memory formatting the answer");
        return;
    }
    http_respond(c, status, NULL, &c->srv->scratch, headers);
}

static void not_found_queue(http_conn_t *c, const route_t *r) {
    http_error(c, 404, "not_found", "no queue named '%s' (a queue exists while it holds tasks)",
               r->seg[2]);
}

static bool queue_name_ok(http_conn_t *c, const route_t *r) {
    if (engine_tube_name_valid(r->seg[2], r->len[2]))
        return true;
    http_error(c, 400, "invalid_field",
               "invalid queue name: use 1 to 200 of A-Z a-z 0-9 - + / ; . $ _ ( ), not starting "
               "with '-' (encode '/' as %%2F in URLs)");
    return false;
}

/* ---- reading request bodies ---- */

/* The body as a JSON object; NULL after answering 400. An empty body is
 * an empty object when allow_empty. */
static json_t *body_object(http_conn_t *c, const http_request_t *r, bool allow_empty) {
    if (r->body_len == 0 && allow_empty)
        return json_object();
    json_error_t err;
    /* Numbers as doubles: jansson would refuse integers beyond 64 bits,
     * which a payload may hold (its own text is what gets stored). */
    json_t *v = json_loadb(r->body, r->body_len,
                           JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &err);
    if (!v) {
        http_error(c, 400, "invalid_json", "the body is not valid JSON: %s (line %d, column %d)",
                   err.text, err.line, err.column);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        http_error(c, 400, "invalid_json", "the body must be a JSON object");
        return NULL;
    }
    return v;
}

/* A field problem, with where it is ("tasks[3].") in front. */
typedef struct field_error {
    int status;
    const char *code;
    char msg[300];
} field_error_t;

static bool fail(field_error_t *fe, int status, const char *code, const char *where,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static bool fail(field_error_t *fe, int status, const char *code, const char *where,
                 const char *fmt, ...) {
    fe->status = status;
    fe->code = code;
    int n = snprintf(fe->msg, sizeof fe->msg, "%s", where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fe->msg + n, sizeof fe->msg - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

/* An integer field within [min, max]; absent leaves *out as it is. */
static bool get_uint(json_t *o, const char *name, uint64_t min, uint64_t max, uint64_t *out,
                     const char *where, field_error_t *fe) {
    json_t *v = json_object_get(o, name);
    if (!v)
        return true;
    double d = json_is_number(v) ? json_number_value(v) : -1;
    if (d != floor(d) || d < (double)min || d > (double)max)
        return fail(fe, 400, "invalid_field", where,
                    "%s must be an integer from %" PRIu64 " to %" PRIu64, name, min, max);
    *out = (uint64_t)d;
    return true;
}

/* A task to enqueue, validated. */
typedef struct task_spec {
    buf_t body;
    bool json;
    uint32_t pri, ttr, max_attempts;
    int64_t run_at; /* 0: now */
    uint32_t delay_secs;
    const char *key; /* points into the request's JSON, alive until it is freed */
    size_t key_len;
    bool replace;
} task_spec_t;

static const char *const task_fields[] = {"payload", "payload_base64", "priority", "delay",
                                          "run_at",  "ttr",            "max_attempts", "key",
                                          "on_conflict", NULL};

static bool known_field(const char *k) {
    for (int i = 0; task_fields[i]; i++)
        if (strcmp(k, task_fields[i]) == 0)
            return true;
    return false;
}

/* raw: the payload's own text in the request, when it could be found. */
static bool parse_task(http_server_t *srv, json_t *o, json_span_t raw_payload, const char *where,
                       int64_t now, task_spec_t *t, field_error_t *fe) {
    if (!json_is_object(o))
        return fail(fe, 400, "invalid_field", where, "a task must be a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (!known_field(k))
            return fail(fe, 400, "unknown_field", where,
                        "unknown field '%s' (known: payload, payload_base64, priority, delay, "
                        "run_at, ttr, max_attempts, key, on_conflict)",
                        k);
    }
    json_t *payload = json_object_get(o, "payload");
    json_t *raw = json_object_get(o, "payload_base64");
    if (!payload == !raw)
        return fail(fe, 400, payload ? "invalid_field" : "missing_field", where,
                    "give exactly one of payload (any JSON) and payload_base64 (bytes)");
    if (payload) {
        /* The client's own text, compacted; printing the parsed value again
         * would change numbers. */
        bool ok;
        if (raw_payload.p) {
            ok = json_compact(&t->body, raw_payload.p, raw_payload.len);
        } else {
            char *text = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
            ok = text && buf_puts(&t->body, text);
            free(text);
        }
        if (!ok)
            return fail(fe, 500, "internal", where, "out of memory");
        t->json = true;
    } else {
        if (!json_is_string(raw) ||
            !base64_decode(&t->body, json_string_value(raw), json_string_length(raw)))
            return fail(fe, 400, "invalid_field", where,
                        "payload_base64 must be a string of standard base64 (with padding)");
    }
    if (t->body.len > srv->max_job_size)
        return fail(fe, 413, "too_large", where,
                    "the payload is %zu bytes; the largest task is %" PRIu32
                    " bytes (deferd -z to change)",
                    t->body.len, srv->max_job_size);
    uint64_t pri = DEFAULT_PRIORITY, ttr = DEFAULT_TTR, maxa = 0;
    if (!get_uint(o, "priority", 0, UINT32_MAX, &pri, where, fe) ||
        !get_uint(o, "ttr", 1, UINT32_MAX, &ttr, where, fe) ||
        !get_uint(o, "max_attempts", 0, UINT32_MAX, &maxa, where, fe))
        return false;
    t->pri = (uint32_t)pri;
    t->ttr = (uint32_t)ttr;
    t->max_attempts = (uint32_t)maxa;

    json_t *delay = json_object_get(o, "delay");
    json_t *run_at = json_object_get(o, "run_at");
    if (delay && run_at)
        return fail(fe, 400, "invalid_field", where, "give delay or run_at, not both");
    double secs = 0;
    if (delay) {
        if (!json_is_number(delay) || json_number_value(delay) < 0 ||
            json_number_value(delay) > UINT32_MAX)
            return fail(fe, 400, "invalid_field", where,
                        "delay must be a number of seconds from 0 to 4294967295");
        secs = json_number_value(delay);
        t->run_at = secs > 0 ? now + (int64_t)(secs * (double)NS_PER_SEC) : 0;
    } else if (run_at) {
        int64_t at;
        if (json_is_string(run_at)) {
            if (!json_parse_time(json_string_value(run_at), json_string_length(run_at), &at))
                return fail(fe, 400, "invalid_field", where,
                            "run_at must be an RFC 3339 time such as \"2026-11-22T14:45:00Z\" "
                            "or Unix seconds");
        } else if (json_is_number(run_at) && json_number_value(run_at) >= 0 &&
                   json_number_value(run_at) < 7.2e9) { /* before the year 2198 */
            at = (int64_t)(json_number_value(run_at) * (double)NS_PER_SEC);
        } else {
            return fail(fe, 400, "invalid_field", where,
                        "run_at must be an RFC 3339 time such as \"2026-11-22T14:45:00Z\" or "
                        "Unix seconds");
        }
        if (at > now + (int64_t)UINT32_MAX * NS_PER_SEC)
            return fail(fe, 400, "invalid_field", where,
                        "run_at is more than 4294967295 seconds (136 years) away");
        /* A time in the past means now (which also keeps it distinct from
         * "no run_at", 0, which would fall back to the delay). */
        t->run_at = at > now ? at : now;
        secs = at > now ? (double)(at - now) / (double)NS_PER_SEC : 0;
    }
    t->delay_secs = (uint32_t)ceil(secs);

    json_t *key = json_object_get(o, "key");
    if (key) {
        if (!json_is_string(key) || json_string_length(key) < 1 ||
            json_string_length(key) > TUBE_NAME_MAX ||
            memchr(json_string_value(key), '\0', json_string_length(key)))
            return fail(fe, 400, "invalid_field", where,
                        "key must be a string of 1 to %d bytes, without NUL", TUBE_NAME_MAX);
        t->key = json_string_value(key);
        t->key_len = json_string_length(key);
    }
    json_t *conflict = json_object_get(o, "on_conflict");
    if (conflict) {
        const char *s = json_is_string(conflict) ? json_string_value(conflict) : "";
        if (strcmp(s, "keep") && strcmp(s, "replace"))
            return fail(fe, 400, "invalid_field", where,
                        "on_conflict must be \"keep\" or \"replace\"");
        if (!key)
            return fail(fe, 400, "invalid_field", where, "on_conflict needs a key");
        t->replace = strcmp(s, "replace") == 0;
    }
    return true;
}

/* Can the log take these bytes of new tasks? Answers 503/507 if not. */
static bool admit(http_conn_t *c, size_t bytes) {
    http_server_t *srv = c->srv;
    if (srv->draining && *srv->draining) {
        http_error(c, 503, "draining",
                   "the server is draining (SIGUSR1): new tasks are refused; other requests work");
        return false;
    }
    if (srv->log_room && srv->log_room(srv->host_ctx, true) < bytes) {
        http_error(c, 507, "storage_full",
                   "the disk holding the log is full: new tasks are refused until space is freed "
                   "(cancels and deletes still work)");
        return false;
    }
    return true;
}

/* Enqueue one validated task; renders the answer entry into b. Returns the
 * status (201, 200, or 500 when memory ran out) and the task's id. */
static int enqueue(http_conn_t *c, tube_t *t, task_spec_t *ts, int64_t now, buf_t *b,
                   uint64_t *id) {
    engine_t *e = c->srv->engine;
    job_t *j = engine_job_new(e, t, ts->pri, ts->delay_secs, ts->ttr, (uint32_t)ts->body.len, now);
    if (!j)
        return 500;
    memcpy(j->body, buf_head(&ts->body), ts->body.len);
    engine_put_opts_t o = {
        .key = ts->key,
        .key_len = ts->key_len,
        .replace = ts->replace,
        .max_attempts = ts->max_attempts,
        .json = ts->json,
        .run_at = ts->run_at,
    };
    engine_put_result_t res;
    if (engine_put_opts(e, j, &o, now, &res) == ENGINE_NO_MEMORY)
        return 500;
    *id = res.job->id;
    bool ok = http_render_job(b, e, res.job, true, now);
    b->len--; /* reopen the object for the outcome */
    int status = 201;
    switch (res.outcome) {
    case PUT_CREATED:
        break;
    case PUT_DEDUPLICATED:
        ok = ok && buf_puts(b, ",\"deduplicated\":true");
        status = 200;
        break;
    case PUT_REPLACED:
        ok = ok && buf_puts(b, ",\"replaced\":true");
        status = 200;
        break;
    case PUT_SUPERSEDED:
        ok = ok && buf_appendf(b, ",\"superseded\":%" PRIu64, res.superseded);
        break;
    }
    ok = ok && buf_puts(b, "}");
    return ok ? status : 500;
}

static void spec_free(task_spec_t *t) {
    buf_free(&t->body);
}

static void handle_enqueue(http_conn_t *c, const http_request_t *r, const route_t *rt) {
    if (!queue_name_ok(c, rt))
        return;
    json_t *o = body_object(c, r, false);
    if (!o)
        return;
    task_spec_t ts = {0};
    buf_init(&ts.body);
    field_error_t fe;
    json_span_t raw = {0};
    json_scan_member(r->body, r->body_len, "payload", &raw);
    if (!parse_task(c->srv, o, raw, "", r->now, &ts, &fe)) {
        http_error(c, fe.status, fe.code, "%s", fe.msg);
    } else if (admit(c, ts.body.len + 512)) {
        tube_t *t = engine_tube_get(c->srv->engine, rt->seg[2], rt->len[2]);
        buf_t *b = scratch(c);
        uint64_t id = 0;
        int status = t ? enqueue(c, t, &ts, r->now, b, &id) : 500;
        if (status == 500) {
            http_error(c, 500, "internal", "out of memory enqueueing the task");
        } else {
            char loc[64];
            snprintf(loc, sizeof loc, "Location: /v1/tasks/%" PRIu64 "\r\n", id);
            http_respond(c, status, NULL, b, status == 201 ? loc : NULL);
        }
    }
    spec_free(&ts);
    json_decref(o);
}

static void handle_batch(http_conn_t *c, const http_request_t *r, const route_t *rt) {
    if (!queue_name_ok(c, rt))
        return;
    json_t *o = body_object(c, r, false);
    if (!o)
        return;
    json_t *tasks = json_object_get(o, "tasks");
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (strcmp(k, "tasks") != 0) {
            http_error(c, 400, "unknown_field", "unknown field '%s' (known: tasks)", k);
            json_decref(o);
            return;
        }
    }
    if (!json_is_array(tasks) || json_array_size(tasks) < 1 ||
        json_array_size(tasks) > HTTP_BATCH_MAX) {
        http_error(c, 400, tasks ? "invalid_field" : "missing_field",
                   "tasks must be an array of 1 to %d tasks", HTTP_BATCH_MAX);
        json_decref(o);
        return;
    }
    size_t n = json_array_size(tasks);
    task_spec_t *specs = calloc(n, sizeof *specs);
    json_span_t *raws = calloc(n, sizeof *raws);
    if (!specs || !raws) {
        free(specs);
        free(raws);
        http_error(c, 500, "internal", "out of memory");
        json_decref(o);
        return;
    }
    field_error_t fe;
    size_t bytes = 0, parsed = 0;
    bool ok = true;
    if (!json_scan_each(r->body, r->body_len, "tasks", "payload", raws, n))
        memset(raws, 0, n * sizeof *raws); /* fall back to printing the values */
    for (size_t i = 0; ok && i < n; i++) {
        char where[32];
        snprintf(where, sizeof where, "tasks[%zu]: ", i);
        buf_init(&specs[i].body);
        parsed = i + 1;
        ok = parse_task(c->srv, json_array_get(tasks, i), raws[i], where, r->now, &specs[i], &fe);
        bytes += specs[i].body.len + 512;
    }
    if (!ok) {
        http_error(c, fe.status, fe.code, "%s", fe.msg);
    } else if (admit(c, bytes)) {
        tube_t *t = engine_tube_get(c->srv->engine, rt->seg[2], rt->len[2]);
        buf_t *b = scratch(c);
        bool good = t && buf_puts(b, "{\"tasks\":[");
        for (size_t i = 0; good && i < n; i++) {
            if (i)
                good = buf_puts(b, ",");
            uint64_t id;
            good = good && enqueue(c, t, &specs[i], r->now, b, &id) != 500;
        }
        good = good && buf_puts(b, "]}");
        respond_scratch(c, 200, good, NULL);
    }
    for (size_t i = 0; i < parsed; i++)
        spec_free(&specs[i]);
    free(specs);
    free(raws);
    json_decref(o);
}

/* ---- tasks ---- */

static bool parse_id(http_conn_t *c, const route_t *rt, uint64_t *id) {
    if (parse_u64_text(rt->seg[2], rt->len[2], id) && *id > 0)
        return true;
    http_error(c, 404, "not_found", "no task '%s': task ids are positive integers", rt->seg[2]);
    return false;
}

static void handle_get_task(http_conn_t *c, const http_request_t *r, const route_t *rt) {
    uint64_t id;
    if (!parse_id(c, rt, &id))
        return;
    engine_t *e = c->srv->engine;
    job_t *j = engine_job_find(e, id);
    const task_history_t *h = j ? NULL : engine_history_find(e, id, r->now);
    if (!j && !h) {
        http_error(c, 404, "not_found",
                   "no task %" PRIu64 ": never created, or finished longer ago than the history "
                   "keeps (--history-max, --history-age)",
                   id);
        return;
    }
    buf_t *b = scratch(c);
    respond_scratch(c, 200, j ? http_render_job(b, e, j, true, r->now) : http_render_history(b, h),
                    NULL);
}

/* Answer a cancel's outcome. */
static void cancel_answer(http_conn_t *c, engine_result_t res, uint64_t id,
                          const task_history_t *h) {
    switch (res) {
    case ENGINE_OK:
        respond_scratch(c, 200, h && http_render_history(scratch(c), h), NULL);
        break;
    case ENGINE_RUNNING:
        http_error(c, 409, "task_running",
                   "task %" PRIu64 " is reserved by a worker: delete or release it from the worker, "
                   "or wait for its TTR to run out",
                   id);
        break;
    case ENGINE_FINISHED:
        http_error(c, 409, "finished", "task %" PRIu64 " has already finished", id);
        break;
    default:
        http_error(c, 404, "not_found", "no task %" PRIu64, id);
        break;
    }
}

static void handle_cancel(http_conn_t *c, const http_request_t *r, const route_t *rt) {
    uint64_t id;
    if (!parse_id(c, rt, &id))
        return;
    const task_history_t *h = NULL;
    engine_result_t res = engine_cancel(c->srv->engine, id, r->now, &h);
    cancel_answer(c, res, id, h);
}

static void handle_cancel_key(http_conn_t *c, const http_request_t *r, const route_t *rt) {
    engine_t *e = c->srv->engine;
    tube_t *t = engine_tube_find(e, rt->seg[2], rt->len[2]);
    job_t *holder = t ? engine_key_holder(t, rt->seg[4], rt->len[4]) : NULL;
    if (!holder) {
        http_error(c, 404, "not_found", "no unfinished task holds key '%s' in queue '%s'",
                   rt->seg[4], rt->seg[2]);
        return;
    }
    uint64_t id = holder->id;
    const task_history_t *h = NULL;
    engine_result_t res = engine_cancel(e, id, r->now, &h);
    cancel_answer(c, res, id, h);
}

/* ---- queues ---- */

static void handle_queues(http_conn_t *c, const http_request_t *r) {
    engine_t *e = c->srv->engine;
    buf_t *b = scratch(c);
    bool ok = buf_puts(b, "{\"queues\":[");
    for (uint32_t i = 0; ok && i < e->ntubes; i++)
        ok = (i == 0 || buf_puts(b, ",")) && http_render_queue(b, c->srv, e->tube_list[i], r->now);
    ok = ok && buf_puts(b, "]}");
    respond_scratch(c, 200, ok, NULL);
}

static tube_t *existing_queue(http_conn_t *c, const route_t *rt) {
    if (!queue_name_ok(c, rt))
        return NULL;
    tube_t *t = engine_tube_find(c->srv->engine, rt->seg[2], rt->len[2]);
    if (!t)
        not_found_queue(c, rt);
    return t;
}

static void answer_queue(http_conn_t *c, const tube_t *t, int64_t now) {
    buf_t *b = scratch(c);
    respond_scratch(c, 200, http_render_queue(b, c->srv, t, now), NULL);
}

static bool room_for_changes(http_conn_t *c, size_t bytes) {
    http_server_t *srv = c->srv;
    if (srv->log_room && srv->log_room(srv->host_ctx, false) < bytes) {
        http_error(c, 507, "storage_full",
                   "the disk holding the log is full: free space, then try again");
        return false;
    }
    return true;
}

/* PUT /v1/queues/{queue}: push settings (docs/push.md). */
static void handle_configure(http_conn_t *c, const http_request_t *r, const route_t *rt) {
    http_server_t *srv = c->srv;
    if (!queue_name_ok(c, rt))
        return;
    if (!srv->push_configure) {
        http_error(c, 404, "not_found", "push dispatch is not available in this server");
        return;
    }
    if (!room_for_changes(c, r->body_len + 512))
        return;
    char err[640];
    int status = srv->push_configure(srv->push_ctx, rt->seg[2], rt->len[2], r->body, r->body_len,
                                     err, sizeof err);
    if (status == 200) {
        tube_t *t = engine_tube_find(srv->engine, rt->seg[2], rt->len[2]);
        if (t)
            answer_queue(c, t, r->now);
        else /* settings cleared on a queue that had nothing else */
            respond_scratch(c, 200, buf_puts(scratch(c), "{\"push\":null}"), NULL);
        return;
    }
    http_error(c, status, status == 409 ? "conflict" : status == 400 ? "invalid_settings"
                                                                     : "unavailable",
               "%s", err);
}

static void handle_pause(http_conn_t *c, const http_request_t *r, const route_t *rt) {
    tube_t *t = existing_queue(c, rt);
    if (!t || !room_for_changes(c, 256))
        return;
    json_t *o = body_object(c, r, true);
    if (!o)
        return;
    uint64_t secs = UINT32_MAX; /* without a length: until resumed */
    field_error_t fe;
    const char *k;
    json_t *v;
    bool ok = true;
    json_object_foreach(o, k, v) {
        if (strcmp(k, "seconds") != 0)
            ok = fail(&fe, 400, "unknown_field", "", "unknown field '%s' (known: seconds)", k);
    }
    ok = ok && get_uint(o, "seconds", 1, UINT32_MAX, &secs, "", &fe);
    json_decref(o);
    if (!ok) {
        http_error(c, fe.status, fe.code, "%s", fe.msg);
        return;
    }
    engine_pause(c->srv->engine, t->name, t->name_len, (int64_t)secs * NS_PER_SEC, r->now);
    answer_queue(c, t, r->now);
}

static void handle_resume(http_conn_t *c, const http_request_t *r, const route_t *rt) {
    tube_t *t = existing_queue(c, rt);
    if (!t || !room_for_changes(c, 256))
        return;
    engine_resume(c->srv->engine, t, r->now);
    answer_queue(c, t, r->now);
}

static void handle_kick(http_conn_t *c, const http_request_t *r, const route_t *rt) {
    tube_t *t = existing_queue(c, rt);
    if (!t)
        return;
    json_t *o = body_object(c, r, true);
    if (!o)
        return;
    uint64_t bound = UINT32_MAX;
    field_error_t fe;
    const char *k;
    json_t *v;
    bool ok = true;
    json_object_foreach(o, k, v) {
        if (strcmp(k, "bound") != 0)
            ok = fail(&fe, 400, "unknown_field", "", "unknown field '%s' (known: bound)", k);
    }
    ok = ok && get_uint(o, "bound", 0, UINT32_MAX, &bound, "", &fe);
    json_decref(o);
    if (!ok) {
        http_error(c, fe.status, fe.code, "%s", fe.msg);
        return;
    }
    http_server_t *srv = c->srv;
    if (srv->log_room) {
        size_t most = srv->log_room(srv->host_ctx, false) / 64;
        if (most < bound)
            bound = most;
    }
    uint32_t n = engine_kick(srv->engine, t, (uint32_t)bound, r->now);
    buf_t *b = scratch(c);
    respond_scratch(c, 200, buf_appendf(b, "{\"kicked\":%" PRIu32 "}", n), NULL);
}

/* ---- listing a queue ---- */

typedef struct listing {
    const engine_t *e;
    const tube_t *t;
    uint64_t after;
    job_t **jobs;
    size_t n, cap;
    bool failed_only, buried_only;
} listing_t;

static bool listing_add(listing_t *l, job_t *j) {
    if (j->id <= l->after)
        return true;
    if (l->failed_only != engine_job_failed(l->e, j) && (l->failed_only || l->buried_only))
        return true;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        job_t **p = realloc(l->jobs, cap * sizeof *p);
        if (!p)
            return false;
        l->jobs = p;
        l->cap = cap;
    }
    l->jobs[l->n++] = j;
    return true;
}

static bool add_reserved(void *value, void *arg) {
    listing_t *l = arg;
    job_t *j = value;
    if (job_state(j) == JOB_RESERVED && engine_job_tube(l->e, j) == l->t)
        return listing_add(l, j);
    return true;
}

static int by_id(const void *a, const void *b) {
    uint64_t x = (*(job_t *const *)a)->id, y = (*(job_t *const *)b)->id;
    return x < y ? -1 : x > y;
}

static void handle_list(http_conn_t *c, const http_request_t *r, const route_t *rt) {
    tube_t *t = existing_queue(c, rt);
    if (!t)
        return;
    size_t len;
    const char *lim = query_get(r, "limit", &len);
    uint64_t limit = 100, after = 0;
    if (lim && (!parse_u64_text(lim, len, &limit) || limit < 1 || limit > HTTP_LIST_MAX)) {
        http_error(c, 400, "invalid_field", "limit must be an integer from 1 to %d", HTTP_LIST_MAX);
        return;
    }
    const char *aft = query_get(r, "after", &len);
    if (aft && !parse_u64_text(aft, len, &after)) {
        http_error(c, 400, "invalid_field", "after must be a task id");
        return;
    }
    size_t plen;
    const char *pay = query_get(r, "payload", &plen);
    bool with_payload = pay && plen == 1 && pay[0] == '1';
    const char *state = query_get(r, "state", &len);
    listing_t l = {.e = c->srv->engine, .t = t, .after = after};
    /* Which containers to look in; no state means all of them. */
    bool all = !state;
    bool ready = all, delayed = all, buried = all, reserved = all;
    if (!all) {
        if (len == 5 && memcmp(state, "ready", 5) == 0) {
            ready = true;
        } else if (len == 7 && memcmp(state, "delayed", 7) == 0) {
            delayed = true;
        } else if (len == 6 && memcmp(state, "buried", 6) == 0) {
            buried = l.buried_only = true;
        } else if (len == 6 && memcmp(state, "failed", 6) == 0) {
            buried = l.failed_only = true;
        } else if (len == 8 && memcmp(state, "reserved", 8) == 0) {
            reserved = true;
        } else {
            http_error(c, 400, "invalid_field",
                       "state must be one of ready, delayed, reserved, buried, failed (or absent: "
                       "all)");
            return;
        }
    }
    bool ok = true;
    if (reserved)
        idmap_each(&c->srv->engine->jobs, add_reserved, &l);
    const heap_t *heaps[3] = {ready ? &t->ready : NULL, delayed ? &t->delayed : NULL,
                              buried ? &t->buried : NULL};
    for (int k = 0; k < 3; k++)
        for (uint32_t i = 0; ok && heaps[k] && i < heaps[k]->len; i++)
            ok = listing_add(&l, heaps[k]->items[i]);
    if (l.n > 1)
        qsort(l.jobs, l.n, sizeof *l.jobs, by_id);
    size_t shown = l.n < limit ? l.n : (size_t)limit;
    buf_t *b = scratch(c);
    ok = ok && buf_puts(b, "{\"tasks\":[");
    for (size_t i = 0; ok && i < shown; i++)
        ok = (i == 0 || buf_puts(b, ",")) &&
             http_render_job(b, c->srv->engine, l.jobs[i], with_payload, r->now);
    if (ok && l.n > shown)
        ok = buf_appendf(b, "],\"next\":%" PRIu64 "}", l.jobs[shown - 1]->id);
    else if (ok)
        ok = buf_puts(b, "],\"next\":null}");
    free(l.jobs);
    respond_scratch(c, 200, ok, NULL);
}

/* ---- server ---- */

static void handle_health(http_conn_t *c) {
    bool draining = c->srv->draining && *c->srv->draining;
    buf_t *b = scratch(c);
    respond_scratch(c, draining ? 503 : 200,
                    buf_appendf(b, "{\"status\":\"%s\"}", draining ? "draining" : "ok"), NULL);
}

static void handle_metrics(http_conn_t *c, const http_request_t *r) {
    buf_t *b = scratch(c);
    if (!http_render_metrics(b, c->srv, r->now)) {
        http_error(c, 500, "internal", "out of memory formatting metrics");
        return;
    }
    http_respond(c, 200, "text/plain; version=0.0.4", b, NULL);
}

static void handle_stats(http_conn_t *c, const http_request_t *r) {
    buf_t *b = scratch(c);
    respond_scratch(c, 200, http_render_stats(b, c->srv, r->now), NULL);
}

static void handle_events(http_conn_t *c, const http_request_t *r) {
    size_t len = 0, qlen = 0;
    const char *q = query_get(r, "queue", &len);
    char name[TUBE_NAME_MAX + 1];
    if (q && (!decode(q, len, name, TUBE_NAME_MAX, &qlen) || !engine_tube_name_valid(name, qlen))) {
        http_error(c, 400, "invalid_field", "queue must be a valid queue name");
        return;
    }
    if (c->head) { /* the headers a stream would have, and no stream */
        http_respond(c, 200, "application/x-ndjson", scratch(c), NULL);
        return;
    }
    http_start_stream(c, q ? name : NULL, qlen);
}

/* ---- routing ---- */

static void method_not_allowed(http_conn_t *c, const http_request_t *r, const char *allow) {
    char h[64];
    snprintf(h, sizeof h, "Allow: %s%s\r\n", allow, strstr(allow, "GET") ? ", HEAD" : "");
    buf_t *b = scratch(c);
    bool ok = buf_appendf(b,
                          "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"%s is not "
                          "allowed here; use %s\"}}\n",
                          http_method_str((enum http_method)r->method), allow);
    if (ok)
        http_respond(c, 405, NULL, b, h);
    else
        c->state = HTTP_CLOSED;
}

void http_api_handle(http_conn_t *c, const http_request_t *r) {
    static route_t rt; /* the loop thread only */
    /* HEAD is GET without a body (http_respond leaves it out). */
    int m = r->method == HTTP_HEAD ? HTTP_GET : r->method;
    if (!split_path(r->path, r->path_len, &rt)) {
        http_error(c, 404, "not_found", "malformed path (bad %%-escape, or too many segments)");
        return;
    }
    if (rt.n == 1 && seg_is(&rt, 0, "healthz")) {
        if (m == HTTP_GET)
            handle_health(c);
        else
            method_not_allowed(c, r, "GET");
        return;
    }
    if (rt.n == 1 && seg_is(&rt, 0, "metrics")) {
        if (m == HTTP_GET)
            handle_metrics(c, r);
        else
            method_not_allowed(c, r, "GET");
        return;
    }
    if (!seg_is(&rt, 0, "v1"))
        goto unknown;
    if (rt.n == 2 && (seg_is(&rt, 1, "stats") || seg_is(&rt, 1, "events") || seg_is(&rt, 1, "queues"))) {
        if (m != HTTP_GET)
            method_not_allowed(c, r, "GET");
        else if (seg_is(&rt, 1, "stats"))
            handle_stats(c, r);
        else if (seg_is(&rt, 1, "events"))
            handle_events(c, r);
        else
            handle_queues(c, r);
        return;
    }
    if (rt.n == 3 && seg_is(&rt, 1, "tasks")) {
        if (m == HTTP_GET)
            handle_get_task(c, r, &rt);
        else if (m == HTTP_DELETE)
            handle_cancel(c, r, &rt);
        else
            method_not_allowed(c, r, "GET, DELETE");
        return;
    }
    if (rt.n >= 3 && seg_is(&rt, 1, "queues")) {
        if (rt.n == 3) {
            if (m == HTTP_PUT) {
                handle_configure(c, r, &rt);
            } else if (m != HTTP_GET) {
                method_not_allowed(c, r, "GET, PUT");
            } else {
                tube_t *t = existing_queue(c, &rt);
                if (t)
                    answer_queue(c, t, r->now);
            }
            return;
        }
        if (rt.n == 4 && seg_is(&rt, 3, "tasks")) {
            if (m == HTTP_POST)
                handle_enqueue(c, r, &rt);
            else if (m == HTTP_GET)
                handle_list(c, r, &rt);
            else
                method_not_allowed(c, r, "GET, POST");
            return;
        }
        if (rt.n == 5 && seg_is(&rt, 3, "tasks") && seg_is(&rt, 4, "batch")) {
            if (m == HTTP_POST)
                handle_batch(c, r, &rt);
            else
                method_not_allowed(c, r, "POST");
            return;
        }
        if (rt.n == 4 && (seg_is(&rt, 3, "pause") || seg_is(&rt, 3, "resume") || seg_is(&rt, 3, "kick"))) {
            if (m != HTTP_POST)
                method_not_allowed(c, r, "POST");
            else if (seg_is(&rt, 3, "pause"))
                handle_pause(c, r, &rt);
            else if (seg_is(&rt, 3, "resume"))
                handle_resume(c, r, &rt);
            else
                handle_kick(c, r, &rt);
            return;
        }
        if (rt.n == 5 && seg_is(&rt, 3, "keys")) {
            if (m == HTTP_DELETE)
                handle_cancel_key(c, r, &rt);
            else
                method_not_allowed(c, r, "DELETE");
            return;
        }
    }
unknown:
    http_error(c, 404, "not_found", "no such endpoint: %s %.*s (see docs/http-api.md)",
               http_method_str((enum http_method)m), (int)(r->path_len > 200 ? 200 : r->path_len),
               r->path);
}
