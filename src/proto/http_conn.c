/* http_conn.c - HTTP/1.1 framing for the API: requests in, responses out.
 *
 * libhttp-parser is fed the bytes and calls back with the URL, headers and
 * body; a complete request is handed to the API at once, so pipelined
 * requests are answered in order. Limits: 8 KiB of request line and
 * headers, max_body bytes of body; over either, the answer is 413 and the
 * connection closes (what follows cannot be trusted to be in step). */
#include "proto/http.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/json_out.h"

static const char *status_text(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 507:
        return "Insufficient Storage";
    default:
        return "Unknown";
    }
}

/* The Date header, formatted once a second. */
static const char *http_date(http_server_t *srv, int64_t now) {
    int64_t sec = now / NS_PER_SEC;
    if (sec != srv->date_sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(srv->date, sizeof srv->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        srv->date_sec = sec;
    }
    return srv->date;
}

static bool keep_alive(http_conn_t *c) {
    return c->state == HTTP_READING && http_should_keep_alive(&c->parser);
}

void http_respond(http_conn_t *c, int status, const char *type, const buf_t *body,
                  const char *extra_headers) {
    /* A request refused half-read (c->reject) leaves the stream out of
     * step, and after an Upgrade or CONNECT request the client would speak
     * a protocol we do not: close. Any other answer, errors included,
     * keeps it alive. */
    bool ka = keep_alive(c) && !c->reject && !c->parser.upgrade;
    bool head = c->head;
    bool ok = buf_appendf(c->out,
                          "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\nContent-Length: "
                          "%zu\r\n%s%s\r\n",
                          status, status_text(status), http_date(c->srv, c->now),
                          type ? type : "application/json", body->len,
                          ka ? "" : "Connection: close\r\n", extra_headers ? extra_headers : "") &&
              (head || buf_append(c->out, buf_head(body), body->len));
    if (!ok || !ka)
        c->state = HTTP_CLOSED;
}

void http_error(http_conn_t *c, int status, const char *code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    buf_t *b = &c->srv->scratch;
    buf_reset(b);
    bool ok = buf_puts(b, "{\"error\":{\"code\":") && json_out_str(b, code, strlen(code)) &&
              buf_puts(b, ",\"message\":") && json_out_str(b, msg, strlen(msg)) &&
              buf_puts(b, "}}\n");
    if (!ok) {
        c->state = HTTP_CLOSED;
        return;
    }
    http_respond(c, status, NULL, b, NULL);
}

/* ---- parser callbacks ---- */

static int add_header_bytes(http_conn_t *c, size_t n) {
    c->header_bytes += n;
    if (c->header_bytes > HTTP_HEADER_MAX) {
        c->reject = 413;
        return 1;
    }
    return 0;
}

static int on_message_begin(http_parser *p) {
    http_conn_t *c = p->data;
    buf_reset(&c->url);
    buf_reset(&c->body);
    buf_reset(&c->field);
    buf_reset(&c->auth);
    buf_reset(&c->expect);
    c->header_bytes = 0;
    c->field_done = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
    http_conn_t *c = p->data;
    if (add_header_bytes(c, len) || !buf_append(&c->url, at, len))
        return 1;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
    http_conn_t *c = p->data;
    if (c->field_done) { /* a new header begins */
        buf_reset(&c->field);
        c->field_done = false;
    }
    if (add_header_bytes(c, len) || !buf_append(&c->field, at, len))
        return 1;
    return 0;
}

static bool field_is(const http_conn_t *c, const char *name) {
    return c->field.len == strlen(name) && strncasecmp(buf_head(&c->field), name, c->field.len) == 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
    http_conn_t *c = p->data;
    c->field_done = true;
    if (add_header_bytes(c, len))
        return 1;
    if (field_is(c, "authorization") && !buf_append(&c->auth, at, len))
        return 1;
    /* A value may come in pieces (split across reads): gather it. */
    if (field_is(c, "expect") && !buf_append(&c->expect, at, len))
        return 1;
    return 0;
}

static int on_headers_complete(http_parser *p) {
    http_conn_t *c = p->data;
    /* Refuse an announced body that is too large before reading it. */
    if (p->content_length != ULLONG_MAX && p->content_length > c->srv->max_body) {
        c->reject = 413;
        return -1; /* stop: the body is not read */
    }
    /* A client that waits for leave to send its body (curl does, for
     * large ones) gets it at once instead of after its own timeout. An
     * HTTP/1.0 client knows no 100 Continue (RFC 9110, 10.1.1). */
    bool expect = c->expect.len == 12 &&
                  strncasecmp(buf_head(&c->expect), "100-continue", 12) == 0 &&
                  (p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1));
    if (expect && !buf_puts(c->out, "HTTP/1.1 100 Continue\r\n\r\n"))
        return 1;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
    http_conn_t *c = p->data;
    if (c->body.len + len > c->srv->max_body) {
        c->reject = 413;
        return 1;
    }
    return buf_append(&c->body, at, len) ? 0 : 1;
}

/* Constant-time comparison, so the token cannot be guessed byte by byte
 * from response times. */
static bool token_ok(const http_conn_t *c) {
    const http_server_t *srv = c->srv;
    if (!srv->token)
        return true;
    const char *v = buf_head(&c->auth);
    size_t n = c->auth.len;
    if (n < 7 || strncasecmp(v, "Bearer ", 7) != 0)
        return false;
    v += 7;
    n -= 7;
    unsigned char diff = n != srv->token_len;
    for (size_t i = 0; i < n && i < srv->token_len; i++)
        diff |= (unsigned char)(v[i] ^ srv->token[i]);
    return diff == 0;
}

static int on_message_complete(http_parser *p) {
    http_conn_t *c = p->data;
    http_request_t r = {.method = (int)p->method, .now = c->now};
    const char *url = buf_head(&c->url);
    const char *q = memchr(url, '?', c->url.len);
    r.path = url;
    r.path_len = q ? (size_t)(q - url) : c->url.len;
    if (q) {
        r.query = q + 1;
        r.query_len = c->url.len - r.path_len - 1;
    }
    r.body = buf_head(&c->body);
    r.body_len = c->body.len;
    c->srv->requests++;
    /* Only a whole, parsed request is a HEAD: a parser that failed may
     * have guessed the method from its first letters. */
    c->head = p->method == HTTP_HEAD;
    bool health = r.path_len == 8 && memcmp(r.path, "/healthz", 8) == 0;
    if (!health && !token_ok(c))
        http_error(c, 401, "unauthorized",
                   "this server requires a token: send 'Authorization: Bearer <token>'");
    else
        http_api_handle(c, &r);
    /* Stop after this request when the connection changed state, or when
     * the client is not reading its answers. */
    c->head = false;
    if (c->state != HTTP_READING || c->out->len >= c->srv->out_limit)
        http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- connections ---- */

http_conn_t *http_conn_new(http_server_t *srv, buf_t *out, void (*wake)(void *ctx), void *ctx) {
    http_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = srv;
    c->out = out;
    c->wake = wake;
    c->ctx = ctx;
    buf_init(&c->url);
    buf_init(&c->body);
    buf_init(&c->field);
    buf_init(&c->auth);
    buf_init(&c->expect);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    srv->cur_conns++;
    srv->total_conns++;
    return c;
}

void http_conn_free(http_conn_t *c) {
    if (!c)
        return;
    http_events_detach(c);
    c->srv->cur_conns--;
    buf_free(&c->url);
    buf_free(&c->body);
    buf_free(&c->field);
    buf_free(&c->auth);
    buf_free(&c->expect);
    free(c->stream_queue);
    free(c);
}

void http_conn_eof(http_conn_t *c) {
    /* A half-closed client may still read the answers to what it sent;
     * an event stream ends. */
    if (c->state == HTTP_STREAMING) {
        http_events_detach(c);
        c->state = HTTP_CLOSED;
    }
}

size_t http_conn_feed(http_conn_t *c, const char *data, size_t len, int64_t now) {
    if (c->state == HTTP_STREAMING)
        return len; /* nothing more is read from a stream's client */
    if (c->state == HTTP_CLOSED || c->out->len >= c->srv->out_limit)
        return 0;
    c->now = now;
    if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED)
        http_parser_pause(&c->parser, 0);
    size_t n = http_parser_execute(&c->parser, &settings, data, len);
    enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
    if (err == HPE_OK || err == HPE_PAUSED)
        return n;
    if (c->state == HTTP_READING) {
        if (c->reject == 413)
            http_error(c, 413, "too_large",
                       "request too large: headers are limited to %u bytes and bodies to %zu "
                       "(--http-max-body)",
                       HTTP_HEADER_MAX, c->srv->max_body);
        else {
            c->reject = 400; /* out of step: the answer says Connection: close */
            http_error(c, 400, "bad_request", "malformed HTTP request: %s",
                       http_errno_description(err));
        }
    }
    c->state = HTTP_CLOSED;
    return len;
}

void http_server_init(http_server_t *srv, engine_t *engine) {
    memset(srv, 0, sizeof *srv);
    srv->engine = engine;
    srv->max_body = HTTP_DEFAULT_MAX_BODY;
    srv->out_limit = HTTP_STREAM_OUT_MAX;
    srv->version = "";
    buf_init(&srv->scratch);
    buf_init(&srv->event_line);
}

void http_server_free(http_server_t *srv) {
    buf_free(&srv->scratch);
    buf_free(&srv->event_line);
    free(srv->token);
}
