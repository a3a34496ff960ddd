/* http_render.c - tasks and queues as JSON objects (docs/http-api.md).
 *
 * Written by hand into a buffer: a task's JSON payload is stored as JSON
 * text and is copied as it is. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "proto/http.h"
#include "util/base64.h"
#include "util/json_out.h"

static bool field(buf_t *b, const char *name) {
    return buf_appendf(b, ",\"%s\":", name);
}

static bool str_or_null(buf_t *b, const char *s, size_t len) {
    return s ? json_out_str(b, s, len) : buf_puts(b, "null");
}

/* Is this JSON text? A body flagged JSON came from a parsed payload, but
 * the answer must be valid JSON even if a log file said so wrongly. */
static bool json_text_valid(const char *p, size_t n) {
    json_t *v = json_loadb(p, n, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    json_decref(v);
    return v != NULL;
}

static const char *live_state(const engine_t *e, const job_t *j) {
    if (engine_job_failed(e, j))
        return "failed";
    return job_state_name(job_state(j));
}

static const char *end_state(task_end_t end) {
    switch (end) {
    case TASK_DONE:
        return "done";
    case TASK_FAILED:
        return "failed";
    case TASK_CANCELLED:
        return "cancelled";
    }
    return "done";
}

bool http_render_job(buf_t *b, const engine_t *e, const job_t *j, bool with_payload,
                     int64_t now) {
    (void)now;
    const tube_t *t = engine_job_tube(e, j);
    const job_ext_t *x = engine_job_ext(e, j);
    bool ok = buf_appendf(b, "{\"id\":%" PRIu64 ",\"queue\":", j->id) &&
              json_out_str(b, t->name, t->name_len) &&
              buf_appendf(b,
                          ",\"state\":\"%s\",\"priority\":%" PRIu32 ",\"ttr\":%" PRIu32
                          ",\"attempts\":%" PRIu32 ",\"max_attempts\":%" PRIu32,
                          live_state(e, j), j->pri, j->ttr, engine_job_attempts(e, j),
                          x ? x->max_attempts : 0) &&
              field(b, "key") && str_or_null(b, x ? x->key : NULL, x ? x->key_len : 0) &&
              field(b, "created_at") && json_out_time(b, j->created) && field(b, "run_at");
    if (ok && job_state(j) == JOB_DELAYED)
        ok = json_out_time(b, j->deadline);
    else if (ok)
        ok = buf_puts(b, "null");
    if (ok && engine_job_failed(e, j))
        ok = field(b, "finished_at") && json_out_time(b, x->failed_at);
    else if (ok)
        ok = buf_puts(b, ",\"finished_at\":null");
    ok = ok && field(b, "last_error") &&
         str_or_null(b, x ? x->last_error : NULL, x && x->last_error ? strlen(x->last_error) : 0);
    if (ok && with_payload) {
        if (job_flag(j, JOB_FLAG_JSON) && json_text_valid(j->body, j->size))
            ok = field(b, "payload") && buf_append(b, j->body, j->size);
        else
            ok = buf_puts(b, ",\"payload_base64\":\"") && base64_encode(b, j->body, j->size) &&
                 buf_puts(b, "\"");
    }
    return ok && buf_puts(b, "}");
}

bool http_render_history(buf_t *b, const task_history_t *h) {
    return buf_appendf(b, "{\"id\":%" PRIu64 ",\"queue\":", h->id) &&
           json_out_str(b, h->queue, h->queue_len) &&
           buf_appendf(b,
                       ",\"state\":\"%s\",\"priority\":%" PRIu32 ",\"ttr\":%" PRIu32
                       ",\"attempts\":%" PRIu32 ",\"max_attempts\":%" PRIu32,
                       end_state(h->end), h->pri, h->ttr, h->attempts, h->max_attempts) &&
           field(b, "key") && str_or_null(b, h->key, h->key ? strlen(h->key) : 0) &&
           field(b, "created_at") && json_out_time(b, h->created) &&
           buf_puts(b, ",\"run_at\":null") && field(b, "finished_at") &&
           json_out_time(b, h->finished) && field(b, "last_error") &&
           str_or_null(b, h->error, h->error ? strlen(h->error) : 0) && buf_puts(b, "}");
}

bool http_render_queue(buf_t *b, const http_server_t *srv, const tube_t *t, int64_t now) {
    bool paused = t->pause_ns > 0 && t->unpause_at > now;
    /* A pause of the longest length is a pause "until resumed". */
    bool forever = paused && t->pause_ns >= (int64_t)UINT32_MAX * NS_PER_SEC;
    char left[24];
    snprintf(left, sizeof left, "%" PRId64,
             paused ? (t->unpause_at - now + NS_PER_SEC - 1) / NS_PER_SEC : 0);
    return buf_puts(b, "{\"name\":") && json_out_str(b, t->name, t->name_len) &&
           buf_appendf(b,
                       ",\"ready\":%" PRIu32 ",\"delayed\":%" PRIu32 ",\"reserved\":%" PRIu64
                       ",\"buried\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"urgent\":%" PRIu64
                       ",\"workers_waiting\":%" PRIu32 ",\"total_enqueued\":%" PRIu64
                       ",\"total_done\":%" PRIu64 ",\"paused\":%s,\"pause_seconds_left\":%s"
                       ",\"enqueued_per_second\":%.2f,\"done_per_second\":%.2f,\"push\":",
                       t->ready.len, t->delayed.len, t->reserved, t->buried.len - t->failed,
                       t->failed, t->urgent, t->waiting, t->total_jobs, t->done_total,
                       paused ? "true" : "false", forever ? "null" : left, t->enqueued_rate,
                       t->done_rate) &&
           (srv->push_render ? srv->push_render(srv->push_ctx, b, t) : buf_puts(b, "null")) &&
           buf_puts(b, "}");
}
