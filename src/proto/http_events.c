/* http_events.c - GET /v1/events: what happens to tasks, as it happens.
 *
 * The engine reports each event to one observer (this file); every
 * connection following the stream gets it as a line of JSON in a chunk of a
 * chunked response. A follower that does not read fast enough is told
 * {"event":"overflow"} and cut off rather than buffered without bound. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http.h"
#include "util/json_out.h"

static const char *event_name(engine_event_t ev) {
    switch (ev) {
    case EVENT_ENQUEUED:
        return "enqueued";
    case EVENT_RESERVED:
        return "reserved";
    case EVENT_RELEASED:
        return "released";
    case EVENT_BURIED:
        return "buried";
    case EVENT_FAILED:
        return "failed";
    case EVENT_KICKED:
        return "kicked";
    case EVENT_DONE:
        return "done";
    case EVENT_CANCELLED:
        return "cancelled";
    case EVENT_TIMED_OUT:
        return "timed_out";
    case EVENT_REPLACED:
        return "replaced";
    }
    return "unknown";
}

/* One line as a chunk. */
static bool chunk(http_conn_t *c, const char *line, size_t len) {
    return buf_appendf(c->out, "%zx\r\n", len) && buf_append(c->out, line, len) &&
           buf_append(c->out, "\r\n", 2);
}

void http_events_detach(http_conn_t *c) {
    http_server_t *srv = c->srv;
    if (c->stream_prev)
        c->stream_prev->stream_next = c->stream_next;
    else if (srv->streams == c)
        srv->streams = c->stream_next;
    if (c->stream_next)
        c->stream_next->stream_prev = c->stream_prev;
    c->stream_prev = c->stream_next = NULL;
}

/* End the stream: last line, the chunked terminator, then close. */
static void stream_end(http_conn_t *c, const char *line) {
    http_events_detach(c);
    chunk(c, line, strlen(line));
    buf_append(c->out, "0\r\n\r\n", 5);
    c->state = HTTP_CLOSED;
    c->wake(c->ctx);
}

void http_start_stream(http_conn_t *c, const char *queue, size_t queue_len) {
    http_server_t *srv = c->srv;
    if (queue) {
        c->stream_queue = malloc(queue_len + 1);
        if (!c->stream_queue) {
            http_error(c, 500, "internal", "out of memory");
            return;
        }
        memcpy(c->stream_queue, queue, queue_len);
        c->stream_queue[queue_len] = '\0';
    }
    if (!buf_appendf(c->out,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                     "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n\r\n")) {
        c->state = HTTP_CLOSED;
        return;
    }
    c->state = HTTP_STREAMING;
    c->stream_last = c->now;
    c->stream_prev = NULL;
    c->stream_next = srv->streams;
    if (srv->streams)
        srv->streams->stream_prev = c;
    srv->streams = c;
}

void http_events_observe(void *ctx, engine_event_t ev, uint64_t id, const tube_t *t, int64_t now) {
    http_server_t *srv = ctx;
    if (!srv->streams)
        return;
    /* Not srv->scratch: events fire in the middle of an answer being
     * written there (an enqueue reports "enqueued"). */
    buf_t *line = &srv->event_line;
    buf_reset(line);
    if (!buf_puts(line, "{\"time\":") || !json_out_time(line, now) ||
        !buf_appendf(line, ",\"event\":\"%s\",\"task\":%" PRIu64 ",\"queue\":", event_name(ev), id) ||
        !json_out_str(line, t->name, t->name_len) || !buf_puts(line, "}\n"))
        return;
    http_conn_t *next;
    for (http_conn_t *c = srv->streams; c; c = next) {
        next = c->stream_next;
        if (c->stream_queue && strcmp(c->stream_queue, t->name) != 0)
            continue;
        if (c->out->len > HTTP_STREAM_OUT_MAX) {
            stream_end(c, "{\"event\":\"overflow\"}\n");
            continue;
        }
        if (!chunk(c, buf_head(line), line->len)) {
            stream_end(c, "{\"event\":\"overflow\"}\n");
            continue;
        }
        c->stream_last = now;
        c->wake(c->ctx);
    }
}

void http_server_tick(http_server_t *srv, int64_t now) {
    static const char beat[] = "{\"event\":\"heartbeat\"}\n";
    for (http_conn_t *c = srv->streams; c; c = c->stream_next) {
        if (now - c->stream_last < HTTP_HEARTBEAT_NS)
            continue;
        c->stream_last = now;
        if (chunk(c, beat, sizeof beat - 1))
            c->wake(c->ctx);
    }
}
