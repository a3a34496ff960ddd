/* http.h - the HTTP/1.1 + JSON API (docs/http-api.md).
 *
 * Like the beanstalk side, an HTTP connection is a state machine fed with
 * bytes (http_conn_feed) that appends its answers to an output buffer; it
 * owns no socket, so the fuzzer drives it directly. libhttp-parser does the
 * HTTP framing; jansson parses request bodies; answers are written by hand
 * (util/json_out.h).
 *
 * Files: http_conn.c (framing, limits, auth, responses), http_api.c
 * (routes and handlers), http_render.c (task and queue objects),
 * http_metrics.c (/metrics, /v1/stats), http_events.c (/v1/events). */
#ifndef DEFER_HTTP_H
#define DEFER_HTTP_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"
#include "util/buf.h"

#define HTTP_HEADER_MAX (8u << 10)
#define HTTP_DEFAULT_MAX_BODY (16u << 20)
#define HTTP_BATCH_MAX 10000
#define HTTP_LIST_MAX 1000
/* An event stream that falls this far behind is cut off. */
#define HTTP_STREAM_OUT_MAX (1u << 20)
#define HTTP_HEARTBEAT_NS (15 * NS_PER_SEC)

typedef struct http_conn http_conn_t;

/* What the host (main.c) knows and the protocol must not find out itself:
 * filled on demand for /metrics and /v1/stats. */
typedef struct http_host_stats {
    uint64_t rss_bytes;
    uint32_t beanstalk_conns;
    /* The log (all zero without one). */
    bool log;
    uint64_t log_bytes;
    uint64_t log_records_written;
    uint64_t log_syncs;
    uint64_t log_sync_us_sum;
    uint64_t log_sync_us_buckets[24]; /* bucket i: syncs of at most 2^i us */
    uint64_t log_compactions;
    uint64_t log_current_segment;
    bool log_space_low;
} http_host_stats_t;

typedef struct http_server {
    engine_t *engine;
    const bool *draining;  /* drain mode, shared with the beanstalk side */
    char *token;           /* NULL: no authentication */
    size_t token_len;
    uint32_t max_job_size; /* body bytes of a task */
    size_t max_body;       /* bytes of a request body */
    size_t out_limit;      /* stop reading requests while this much is unsent */
    /* Bytes the log can still take (SIZE_MAX: no limit); NULL without a log. */
    size_t (*log_room)(void *ctx, bool for_put);
    void (*host_stats)(void *ctx, http_host_stats_t *out);
    void *host_ctx;
    /* Push dispatch (docs/push.md), wired by the host; all NULL without a
     * dispatcher. configure answers an HTTP status and fills err on error;
     * render appends a queue's "push" value; metrics appends lines. */
    int (*push_configure)(void *ctx, const char *queue, size_t len, const char *json,
                          size_t json_len, char *err, size_t errlen);
    bool (*push_render)(void *ctx, buf_t *b, const tube_t *t);
    bool (*push_metrics)(void *ctx, buf_t *b);
    void *push_ctx;
    const char *version;
    int64_t started_at;
    uint32_t cur_conns;
    uint64_t total_conns, requests;
    http_conn_t *streams; /* connections following /v1/events */
    buf_t scratch;        /* reused for bodies of answers */
    buf_t event_line;     /* reused for event lines (events fire mid-answer) */
    char date[40];        /* cached Date header */
    int64_t date_sec;
} http_server_t;

typedef struct http_request {
    int method; /* enum http_method */
    const char *path;
    size_t path_len;
    const char *query; /* NULL if none */
    size_t query_len;
    const char *body;
    size_t body_len;
    int64_t now;
} http_request_t;

typedef enum http_state {
    HTTP_READING,
    HTTP_STREAMING, /* answering /v1/events; input is ignored */
    HTTP_CLOSED,
} http_state_t;

struct http_conn {
    http_server_t *srv;
    http_parser parser;
    buf_t *out;
    http_state_t state;
    /* The request being read. */
    buf_t url, body, field, auth, expect;
    size_t header_bytes;
    bool field_done; /* the header name is complete; a value follows */
    bool head; /* answering a HEAD request: headers only */
    int reject;      /* status to answer once the request is dropped (413) */
    int64_t now;
    /* Event stream. */
    char *stream_queue; /* NULL: every queue */
    http_conn_t *stream_prev, *stream_next;
    int64_t stream_last;
    void (*wake)(void *ctx);
    void *ctx;
};

void http_server_init(http_server_t *srv, engine_t *engine);
void http_server_free(http_server_t *srv);
/* Once a second: heartbeats on event streams. */
void http_server_tick(http_server_t *srv, int64_t now);

http_conn_t *http_conn_new(http_server_t *srv, buf_t *out, void (*wake)(void *ctx), void *ctx);
void http_conn_free(http_conn_t *c);
/* Like bs_conn_feed: returns bytes consumed, fewer than len only when the
 * connection is closed or holds out_limit bytes of unsent output. */
size_t http_conn_feed(http_conn_t *c, const char *data, size_t len, int64_t now);
void http_conn_eof(http_conn_t *c);
static inline bool http_conn_closed(const http_conn_t *c) { return c->state == HTTP_CLOSED; }

/* ---- answering (http_conn.c) ---- */

/* A complete response; type NULL means application/json. extra_headers,
 * if any, are whole lines ending in CRLF. */
void http_respond(http_conn_t *c, int status, const char *type, const buf_t *body,
                  const char *extra_headers);
/* {"error": {"code": ..., "message": ...}} with a printf-style message. */
void http_error(http_conn_t *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Switch to a chunked event stream (http_events.c feeds it). */
void http_start_stream(http_conn_t *c, const char *queue, size_t queue_len);

/* ---- the API (http_api.c) ---- */
void http_api_handle(http_conn_t *c, const http_request_t *r);

/* ---- rendering (http_render.c) ---- */
bool http_render_job(buf_t *b, const engine_t *e, const job_t *j, bool with_payload,
                     int64_t now);
bool http_render_history(buf_t *b, const task_history_t *h);
bool http_render_queue(buf_t *b, const http_server_t *srv, const tube_t *t, int64_t now);

/* ---- /metrics and /v1/stats (http_metrics.c) ---- */
bool http_render_metrics(buf_t *b, http_server_t *srv, int64_t now);
bool http_render_stats(buf_t *b, http_server_t *srv, int64_t now);

/* ---- /v1/events (http_events.c) ---- */
/* The engine's observer: pass http_server_t as ctx. */
void http_events_observe(void *ctx, engine_event_t ev, uint64_t id, const tube_t *t, int64_t now);
void http_events_detach(http_conn_t *c);

#endif
