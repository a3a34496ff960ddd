/* test_webhook.c - unit tests for dispatch/webhook.c.
 *
 * The webhooks go to a real HTTP server in this process: a small libuv TCP
 * server on 127.0.0.1 (requests parsed with http_parser) that records every
 * request and the connection it came on, and answers according to the
 * path. It runs on the same loop as the webhook client, so each test drives
 * real sockets through a real loop, single-threaded. No assertion depends
 * on timing; a watchdog only turns a hang into a failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "dispatch/webhook.h"

/* ---- the test server ---------------------------------------------------- */

#define MAX_HDRS 32
#define MAX_REQS 512
#define MAX_GATHER 64
#define HUGE_BLOCK 65536
#define HUGE_BLOCKS 2048 /* 128 MiB */

/* An error page with control characters, bad UTF-8 and more than the 300
 * bytes a reason shows. */
#define FAIL_HEAD                                                                                  \
    "Traceback (most recent call last):\r\n\tFile \"app.py\", line 3\x01\x7f caf\xc3\xa9 \xff"
#define FAIL_SHOWN "Traceback (most recent call last): File \"app.py\", line 3 caf\xc3\xa9 ?"

#define HTML_PAGE                                                                                  \
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title>"                                  \
    "<style>body { color: red }</style><script>var x = '<b>';</script></head>\n"                   \
    "<body><!-- upstream: app:9000 --><h1>502 Bad Gateway</h1>"                                    \
    "<p>upstream &quot;app&quot; is down</p><hr><center>nginx</center></body></html>\n"

typedef struct hdr {
    char name[64];
    char value[512];
} hdr_t;

typedef struct req {
    int conn_id; /* 1 for the first connection the server accepted */
    char method[16];
    char path[256];
    hdr_t hdrs[MAX_HDRS];
    int nhdrs;
    char *body;
    size_t body_len;
} req_t;

typedef struct sconn {
    uv_tcp_t tcp;
    http_parser parser;
    int id;
    req_t *cur;    /* the request being parsed */
    bool in_field; /* the last header callback was for a name */
    bool closing;
    struct sconn *prev, *next;
} sconn_t;

typedef struct wreq {
    uv_write_t req;
    sconn_t *conn;
    char *data;       /* freed when written */
    uv_buf_t *bufs;   /* likewise */
    bool close_after; /* close the connection once written */
} wreq_t;

static struct {
    uv_tcp_t listener;
    bool listening;
    int port;
    int accepted;
    req_t *reqs[MAX_REQS];
    int nreqs;
    sconn_t *conns;
    int gather_want; /* answer /gather once this many are waiting */
    sconn_t *gathered[MAX_GATHER];
    int ngathered;
    void (*on_request)(const req_t *r); /* test hook, after recording */
} S;

static char huge_block[HUGE_BLOCK];
static uv_loop_t loop;

static void srv_on_closed(uv_handle_t *h) {
    sconn_t *c = h->data;
    if (c->cur) {
        free(c->cur->body);
        free(c->cur);
    }
    free(c);
}

static void srv_close(sconn_t *c) {
    if (c->closing)
        return;
    c->closing = true;
    if (c->prev)
        c->prev->next = c->next;
    else
        S.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->tcp, srv_on_closed);
}

static void srv_on_written(uv_write_t *w, int status) {
    (void)status;
    wreq_t *wr = (wreq_t *)w;
    if (wr->close_after)
        srv_close(wr->conn);
    free(wr->data);
    free(wr->bufs);
    free(wr);
}

/* Send data (copied), then the blocks of the huge body if n_huge. */
static void srv_write(sconn_t *c, const char *data, size_t len, int n_huge, bool close_after) {
    if (c->closing)
        return;
    wreq_t *wr = calloc(1, sizeof *wr);
    assert_non_null(wr);
    wr->conn = c;
    wr->close_after = close_after;
    wr->data = malloc(len ? len : 1);
    assert_non_null(wr->data);
    memcpy(wr->data, data, len);
    wr->bufs = calloc((size_t)n_huge + 1, sizeof *wr->bufs);
    assert_non_null(wr->bufs);
    wr->bufs[0] = uv_buf_init(wr->data, (unsigned)len);
    for (int i = 1; i <= n_huge; i++)
        wr->bufs[i] = uv_buf_init(huge_block, HUGE_BLOCK);
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, wr->bufs, (unsigned)n_huge + 1,
                 srv_on_written)) {
        free(wr->data);
        free(wr->bufs);
        free(wr);
        srv_close(c);
    }
}

static void srv_respond(sconn_t *c, const char *status, const char *headers, const char *body) {
    char buf[8192];
    int n = snprintf(buf, sizeof buf, "HTTP/1.1 %s\r\nContent-Length: %zu\r\n%s\r\n%s", status,
                     strlen(body), headers ? headers : "", body);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    srv_write(c, buf, (size_t)n, 0, false);
}

/* What each path answers. */
static void srv_answer(sconn_t *c, const req_t *r) {
    char path[256];
    snprintf(path, sizeof path, "%s", r->path);
    path[strcspn(path, "?")] = '\0';
    char buf[1024];
    if (!strcmp(path, "/ok") || !strcmp(path, "/hook")) {
        srv_respond(c, "200 OK", NULL, "ok");
    } else if (!strcmp(path, "/nocontent")) {
        const char *s = "HTTP/1.1 204 No Content\r\n\r\n";
        srv_write(c, s, strlen(s), 0, false);
    } else if (!strcmp(path, "/fail")) {
        char body[1024];
        snprintf(body, sizeof body, "%s%0400d", FAIL_HEAD, 0);
        for (char *p = body + strlen(FAIL_HEAD); *p; p++)
            *p = 'z';
        srv_respond(c, "500 Internal Server Error", "Content-Type: text/plain\r\n", body);
    } else if (!strcmp(path, "/empty")) {
        srv_respond(c, "503 Service Unavailable", NULL, "");
    } else if (!strcmp(path, "/html")) {
        srv_respond(c, "502 Bad Gateway", "Content-Type: text/html; charset=utf-8\r\n", HTML_PAGE);
    } else if (!strcmp(path, "/redirect")) {
        snprintf(buf, sizeof buf, "Location: http://127.0.0.1:%d/ok\r\n", S.port);
        srv_respond(c, "301 Moved Permanently", buf, "moved");
    } else if (!strcmp(path, "/relredirect")) {
        srv_respond(c, "302 Found", "Location: /elsewhere?token=s3cret\r\n", "");
    } else if (!strcmp(path, "/slow")) {
        /* never answers */
    } else if (!strcmp(path, "/huge")) {
        int n = snprintf(buf, sizeof buf,
                         "HTTP/1.1 500 Internal Server Error\r\nContent-Length: %zu\r\n\r\n",
                         (size_t)HUGE_BLOCK * HUGE_BLOCKS);
        srv_write(c, buf, (size_t)n, HUGE_BLOCKS, false);
    } else if (!strcmp(path, "/cut")) {
        const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial";
        srv_write(c, s, strlen(s), 0, true);
    } else if (!strcmp(path, "/drop")) {
        srv_close(c);
    } else if (!strcmp(path, "/gather")) {
        assert_true(S.ngathered < MAX_GATHER);
        S.gathered[S.ngathered++] = c;
        if (S.ngathered == S.gather_want)
            for (int i = 0; i < S.ngathered; i++)
                srv_respond(S.gathered[i], "200 OK", NULL, "ok");
    } else {
        srv_respond(c, "404 Not Found", NULL, "no such path");
    }
}

static void append(char *dst, size_t cap, const char *p, size_t n) {
    size_t len = strlen(dst);
    if (n > cap - 1 - len)
        n = cap - 1 - len;
    memcpy(dst + len, p, n);
    dst[len + n] = '\0';
}

static int srv_on_begin(http_parser *p) {
    sconn_t *c = p->data;
    c->cur = calloc(1, sizeof *c->cur);
    assert_non_null(c->cur);
    c->cur->conn_id = c->id;
    c->in_field = false;
    return 0;
}

static int srv_on_url(http_parser *p, const char *at, size_t n) {
    sconn_t *c = p->data;
    append(c->cur->path, sizeof c->cur->path, at, n);
    return 0;
}

static int srv_on_field(http_parser *p, const char *at, size_t n) {
    sconn_t *c = p->data;
    req_t *r = c->cur;
    if (!c->in_field) {
        assert_true(r->nhdrs < MAX_HDRS);
        r->nhdrs++;
    }
    c->in_field = true;
    append(r->hdrs[r->nhdrs - 1].name, sizeof r->hdrs[0].name, at, n);
    return 0;
}

static int srv_on_value(http_parser *p, const char *at, size_t n) {
    sconn_t *c = p->data;
    req_t *r = c->cur;
    c->in_field = false;
    append(r->hdrs[r->nhdrs - 1].value, sizeof r->hdrs[0].value, at, n);
    return 0;
}

static int srv_on_headers(http_parser *p) {
    sconn_t *c = p->data;
    snprintf(c->cur->method, sizeof c->cur->method, "%s", http_method_str(p->method));
    return 0;
}

static int srv_on_body(http_parser *p, const char *at, size_t n) {
    sconn_t *c = p->data;
    req_t *r = c->cur;
    r->body = realloc(r->body, r->body_len + n);
    assert_non_null(r->body);
    memcpy(r->body + r->body_len, at, n);
    r->body_len += n;
    return 0;
}

static int srv_on_complete(http_parser *p) {
    sconn_t *c = p->data;
    req_t *r = c->cur;
    c->cur = NULL;
    assert_true(S.nreqs < MAX_REQS);
    S.reqs[S.nreqs++] = r;
    srv_answer(c, r);
    if (S.on_request)
        S.on_request(r);
    return c->closing ? 1 : 0;
}

static const http_parser_settings srv_settings = {
    .on_message_begin = srv_on_begin,
    .on_url = srv_on_url,
    .on_header_field = srv_on_field,
    .on_header_value = srv_on_value,
    .on_headers_complete = srv_on_headers,
    .on_body = srv_on_body,
    .on_message_complete = srv_on_complete,
};

static void srv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    (void)suggested;
    static char rbuf[65536];
    *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void srv_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    sconn_t *c = s->data;
    if (nread < 0) {
        srv_close(c);
        return;
    }
    if (nread == 0)
        return; /* nothing this time; a length of 0 would mean EOF to the parser */
    size_t done = http_parser_execute(&c->parser, &srv_settings, buf->base, (size_t)nread);
    if (!c->closing && (done != (size_t)nread || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK))
        srv_close(c); /* not HTTP (a TLS handshake, say) */
}

static void srv_on_connection(uv_stream_t *l, int status) {
    assert_int_equal(status, 0);
    sconn_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    uv_tcp_init(&loop, &c->tcp);
    c->tcp.data = c;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
    c->id = ++S.accepted;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->next = S.conns;
    if (S.conns)
        S.conns->prev = c;
    S.conns = c;
    uv_read_start((uv_stream_t *)&c->tcp, srv_alloc, srv_on_read);
}

static void srv_start(void) {
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    assert_int_equal(uv_tcp_init(&loop, &S.listener), 0);
    assert_int_equal(uv_tcp_bind(&S.listener, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&S.listener, 128, srv_on_connection), 0);
    struct sockaddr_in got;
    int len = sizeof got;
    assert_int_equal(uv_tcp_getsockname(&S.listener, (struct sockaddr *)&got, &len), 0);
    S.port = ntohs(got.sin_port);
    S.listening = true;
}

static void srv_stop(void) {
    while (S.conns)
        srv_close(S.conns);
    if (S.listening)
        uv_close((uv_handle_t *)&S.listener, NULL);
    S.listening = false;
}

/* The first value of a request header, or NULL. */
static const char *hdr(const req_t *r, const char *name) {
    for (int i = 0; i < r->nhdrs; i++)
        if (!strcasecmp(r->hdrs[i].name, name))
            return r->hdrs[i].value;
    return NULL;
}

static int hdr_count(const req_t *r, const char *name) {
    int n = 0;
    for (int i = 0; i < r->nhdrs; i++)
        n += !strcasecmp(r->hdrs[i].name, name);
    return n;
}

/* ---- the client side ---------------------------------------------------- */

typedef struct outcome {
    int calls;
    bool ok;
    int status;
    char reason[PUSH_REASON_MAX];
    push_attempt_t *att;
    void (*then)(struct outcome *o); /* runs inside done() */
    void *arg;
} outcome_t;

static uv_timer_t watchdog;
static bool watchdog_fired;
static bool wh_up, finished;
static int loop_close_rc;
static int refused_fd = -1;

static void on_done(void *ctx, const push_result_t *r) {
    outcome_t *o = ctx;
    o->calls++;
    o->ok = r->ok;
    o->status = r->status;
    snprintf(o->reason, sizeof o->reason, "%s", r->reason);
    if (o->then)
        o->then(o);
    /* done() from a timer callback would otherwise leave uv_run(ONCE) in
     * run_until() waiting in poll for the next event. */
    uv_stop(&loop);
}

static void on_watchdog(uv_timer_t *t) {
    (void)t;
    watchdog_fired = true;
}

/* Run the loop until *v reaches want (a hang fails after a minute). */
static void run_until(const int *v, int want) {
    uv_timer_start(&watchdog, on_watchdog, 60000, 0);
    while (*v < want && !watchdog_fired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&watchdog);
    assert_false(watchdog_fired);
}

static push_target_t *target_at(const char *scheme, const char *path) {
    char url[256], err[256];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", scheme, S.port, path);
    push_target_t *t = webhook_target_new(url, err, sizeof err);
    if (!t)
        fail_msg("%s: %s", url, err);
    return t;
}

static push_target_t *target(const char *path) {
    return target_at("http", path);
}

static push_attempt_t *post_full(push_target_t *t, outcome_t *o, uint64_t id, const char *queue,
                                 uint32_t attempt, const char *body, size_t len, bool json) {
    push_request_t req = {
        .task_id = id,
        .queue = queue,
        .attempt = attempt,
        .body = body,
        .body_len = len,
        .body_is_json = json,
    };
    push_attempt_t *a = webhook_target_ops.start(t, &req, on_done, o);
    assert_int_equal(o->calls, 0); /* never from inside start() */
    o->att = a;
    return a;
}

static push_attempt_t *post(push_target_t *t, outcome_t *o, uint64_t id) {
    return post_full(t, o, id, "default", 1, "{}", 2, true);
}

/* "POST http://127.0.0.1:<port><path>: " */
static const char *prefix(const char *path) {
    static char buf[256];
    snprintf(buf, sizeof buf, "POST http://127.0.0.1:%d%s: ", S.port, path);
    return buf;
}

static void assert_reason_is(const outcome_t *o, const char *path, const char *rest) {
    char want[PUSH_REASON_MAX + 64];
    snprintf(want, sizeof want, "%s%s", prefix(path), rest);
    assert_string_equal(o->reason, want);
}

/* The attempt succeeded with this status (else say why it did not). */
static void assert_ok(const outcome_t *o, int status) {
    if (!o->ok || o->status != status)
        fail_msg("wanted ok with %d, got ok=%d status=%d reason \"%s\"", status, o->ok, o->status,
                 o->reason);
}

static void assert_clean_text(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        assert_true(*p >= 0x20 && *p != 0x7F);
}

static int setup(void **state) {
    (void)state;
    memset(&S, 0, sizeof S);
    watchdog_fired = wh_up = finished = false;
    loop_close_rc = -1;
    if (uv_loop_init(&loop) != 0)
        return -1;
    uv_timer_init(&loop, &watchdog);
    char err[256];
    if (webhook_init(&loop, err, sizeof err) != 0) {
        fprintf(stderr, "webhook_init: %s\n", err);
        return -1;
    }
    wh_up = true;
    srv_start();
    return 0;
}

/* Shut everything down and let the loop end: after this no handle may be
 * left, or uv_loop_close() fails. */
static void finish(void) {
    if (finished)
        return;
    finished = true;
    srv_stop();
    if (wh_up)
        webhook_shutdown();
    wh_up = false;
    uv_close((uv_handle_t *)&watchdog, NULL);
    for (int i = 0; i < 100 && uv_run(&loop, UV_RUN_NOWAIT); i++)
        ;
    loop_close_rc = uv_loop_close(&loop);
}

static int teardown(void **state) {
    (void)state;
    finish();
    for (int i = 0; i < S.nreqs; i++) {
        free(S.reqs[i]->body);
        free(S.reqs[i]);
    }
    S.nreqs = 0;
    if (refused_fd >= 0)
        close(refused_fd);
    refused_fd = -1;
    return loop_close_rc == 0 ? 0 : -1;
}

static void finish_ok(void) {
    finish();
    assert_int_equal(loop_close_rc, 0);
}

/* ---- tests -------------------------------------------------------------- */

static void test_url_validation(void **state) {
    (void)state;
    char err[256];
    const char *good[] = {
        "http://127.0.0.1:8080/hook",        "https://example.com",
        "HTTP://Example.COM/Hook",           "http://[::1]:9/x",
        "https://app.internal/jobs/run?x=1",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        err[0] = '\0';
        push_target_t *t = webhook_target_new(good[i], err, sizeof err);
        if (!t)
            fail_msg("%s rejected: %s", good[i], err);
        webhook_target_ops.free(t);
    }
    const char *bad[] = {
        "",
        "ftp://example.com/x",
        "example.com/hook",
        "localhost:8080/hook",
        "http://",
        "http:///hook",
        "http:/hook",
        "http://exa mple.com/",
        "/hook",
        "file:///etc/passwd",
        "mailto:a@b.c",
        "http://:80/x",
        "http://h:99999/x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        push_target_t *t = webhook_target_new(bad[i], err, sizeof err);
        if (t)
            fail_msg("%s accepted", bad[i]);
        assert_true(strlen(err) > 0);
    }
    assert_null(webhook_target_new(NULL, err, sizeof err));

    /* The scheme is named; a password never shows in errors. */
    assert_null(webhook_target_new("ftp://user:hunter2@example.com/x", err, sizeof err));
    assert_non_null(strstr(err, "http or https"));
    assert_null(strstr(err, "hunter2"));

    /* Credentials, query and fragment stay out of reasons. */
    push_target_t *t = webhook_target_new("https://user:hunter2@hooks.example/run?token=s3cret#top",
                                          err, sizeof err);
    assert_non_null(t);
    assert_string_equal(webhook_target_display_url(t), "https://hooks.example/run?...");
    webhook_target_ops.free(t);

    /* A very long URL is cut in reasons. */
    char longurl[3000];
    int n = snprintf(longurl, sizeof longurl, "http://example.com/");
    memset(longurl + n, 'a', 2500);
    longurl[n + 2500] = '\0';
    t = webhook_target_new(longurl, err, sizeof err);
    assert_non_null(t);
    const char *d = webhook_target_display_url(t);
    assert_true(strlen(d) <= 210);
    assert_string_equal(d + strlen(d) - 3, "...");
    webhook_target_ops.free(t);
}

static void test_init_twice_fails(void **state) {
    (void)state;
    char err[256] = "";
    assert_int_equal(webhook_init(&loop, err, sizeof err), -1);
    assert_non_null(strstr(err, "already"));
    finish_ok();
}

static void test_post_json_with_headers(void **state) {
    (void)state;
    push_target_t *t = target("/ok");
    outcome_t o = {0};
    const char *body = "{\"to\":\"a@b.c\"}";
    post_full(t, &o, 42, "emails", 1, body, strlen(body), true);
    run_until(&o.calls, 1);
    assert_ok(&o, 200);
    assert_string_equal(o.reason, "");

    assert_int_equal(S.nreqs, 1);
    const req_t *r = S.reqs[0];
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->path, "/ok");
    assert_string_equal(hdr(r, "Content-Type"), "application/json");
    assert_int_equal(hdr_count(r, "Content-Type"), 1);
    assert_string_equal(hdr(r, "X-Defer-Task-Id"), "42");
    assert_string_equal(hdr(r, "X-Defer-Queue"), "emails");
    assert_string_equal(hdr(r, "X-Defer-Attempt"), "1");
    assert_string_equal(hdr(r, "User-Agent"), "deferd");
    assert_string_equal(hdr(r, "Content-Length"), "14");
    assert_null(hdr(r, "Expect"));
    assert_int_equal(r->body_len, strlen(body));
    assert_memory_equal(r->body, body, strlen(body));

    finish_ok();
    assert_int_equal(o.calls, 1);
    webhook_target_ops.free(t);
}

static void test_binary_body_and_headers_exact(void **state) {
    (void)state;
    /* 2 MiB, every byte value, NULs included: past any size at which
     * libcurl would otherwise ask for "100 Continue" first. */
    size_t len = 2u << 20;
    char *body = malloc(len);
    assert_non_null(body);
    for (size_t i = 0; i < len; i++)
        body[i] = (char)(i * 7 + (i >> 8));
    const char *queue = "a-b+c/d;e.f$g_(h)Z9";
    push_target_t *t = target("/ok");
    outcome_t o = {0};
    post_full(t, &o, UINT64_MAX, queue, UINT32_MAX, body, len, false);
    run_until(&o.calls, 1);
    assert_ok(&o, 200);

    assert_int_equal(S.nreqs, 1);
    const req_t *r = S.reqs[0];
    assert_string_equal(hdr(r, "Content-Type"), "application/octet-stream");
    assert_string_equal(hdr(r, "X-Defer-Task-Id"), "18446744073709551615");
    assert_string_equal(hdr(r, "X-Defer-Queue"), queue);
    assert_string_equal(hdr(r, "X-Defer-Attempt"), "4294967295");
    assert_null(hdr(r, "Expect"));
    assert_int_equal(r->body_len, len);
    assert_memory_equal(r->body, body, len);

    finish_ok();
    free(body);
    webhook_target_ops.free(t);
}

static void test_empty_body_and_204(void **state) {
    (void)state;
    push_target_t *t = target("/nocontent");
    outcome_t o = {0};
    post_full(t, &o, 7, "q", 2, NULL, 0, false);
    run_until(&o.calls, 1);
    assert_ok(&o, 204);
    assert_int_equal(S.nreqs, 1);
    assert_string_equal(S.reqs[0]->method, "POST");
    assert_string_equal(hdr(S.reqs[0], "Content-Length"), "0");
    assert_int_equal(S.reqs[0]->body_len, 0);
    finish_ok();
    webhook_target_ops.free(t);
}

static void test_error_answer_reason(void **state) {
    (void)state;
    push_target_t *t = target("/fail");
    outcome_t o = {0};
    post(t, &o, 1);
    run_until(&o.calls, 1);
    assert_false(o.ok);
    assert_int_equal(o.status, 500);
    char want[512];
    snprintf(want, sizeof want, "%sanswered 500: %szzz", prefix("/fail"), FAIL_SHOWN);
    assert_memory_equal(o.reason, want, strlen(want));
    assert_clean_text(o.reason);
    /* About 300 bytes of the body, then "..." for the rest. */
    size_t shown = strlen(o.reason) - strlen(prefix("/fail")) - strlen("answered 500: ");
    assert_true(shown <= 303);
    assert_true(shown >= 250);
    assert_string_equal(o.reason + strlen(o.reason) - 3, "...");
    finish_ok();
    assert_int_equal(o.calls, 1);
    webhook_target_ops.free(t);
}

static void test_empty_error_answer(void **state) {
    (void)state;
    push_target_t *t = target("/empty");
    outcome_t o = {0};
    post(t, &o, 1);
    run_until(&o.calls, 1);
    assert_false(o.ok);
    assert_int_equal(o.status, 503);
    assert_reason_is(&o, "/empty", "answered 503 with an empty body");
    finish_ok();
    webhook_target_ops.free(t);
}

static void test_html_error_page_text(void **state) {
    (void)state;
    push_target_t *t = target("/html");
    outcome_t o = {0};
    post(t, &o, 1);
    run_until(&o.calls, 1);
    assert_false(o.ok);
    assert_int_equal(o.status, 502);
    assert_reason_is(&o, "/html",
                     "answered 502: 502 Bad Gateway 502 Bad Gateway upstream &quot;app&quot; is "
                     "down nginx");
    finish_ok();
    webhook_target_ops.free(t);
}

static void test_redirect_is_a_failure(void **state) {
    (void)state;
    push_target_t *t = target("/redirect");
    outcome_t o = {0};
    post(t, &o, 1);
    run_until(&o.calls, 1);
    assert_false(o.ok);
    assert_int_equal(o.status, 301);
    char rest[256];
    snprintf(rest, sizeof rest,
             "answered 301, a redirect to http://127.0.0.1:%d/ok (redirects are not followed: "
             "configure the final URL)",
             S.port);
    assert_reason_is(&o, "/redirect", rest);
    assert_int_equal(S.nreqs, 1); /* not followed */
    finish_ok();
    webhook_target_ops.free(t);
}

static void test_redirect_reason_hides_credentials(void **state) {
    (void)state;
    /* libcurl resolves the relative Location against the configured URL,
     * password included; the reason must not repeat it. */
    char url[128], err[256], want[512];
    snprintf(url, sizeof url, "http://deferd:hunter2@127.0.0.1:%d/relredirect", S.port);
    push_target_t *t = webhook_target_new(url, err, sizeof err);
    assert_non_null(t);
    outcome_t o = {0};
    post(t, &o, 1);
    run_until(&o.calls, 1);
    assert_false(o.ok);
    assert_int_equal(o.status, 302);
    snprintf(want, sizeof want,
             "POST http://127.0.0.1:%d/relredirect: answered 302, a redirect to "
             "http://127.0.0.1:%d/elsewhere?... (redirects are not followed: configure the final "
             "URL)",
             S.port, S.port);
    assert_string_equal(o.reason, want);
    /* The credentials were used, all the same. */
    assert_int_equal(S.nreqs, 1);
    assert_string_equal(hdr(S.reqs[0], "Authorization"), "Basic ZGVmZXJkOmh1bnRlcjI=");
    finish_ok();
    webhook_target_ops.free(t);
}

static void test_extra_headers(void **state) {
    (void)state;
    push_target_t *t = target("/ok");
    char err[256];
    const char *good[] = {
        "Authorization: Bearer 7f0c9c1e",
        "X-Trace: a b\tc",
        "X-Empty:",
        "Content-Type: application/cloudevents+json",
        "User-Agent: crm-hooks/2",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (webhook_target_add_header(t, good[i], err, sizeof err) != 0)
            fail_msg("%s: %s", good[i], err);
    const char *bad[] = {
        "Host: evil.example",
        "content-length: 5",
        "X-Defer-Task-Id: 1",
        "Expect: 100-continue",
        "Bad Name: x",
        "NoColon",
        ": no name",
        "X-Split: a\r\nX-B: b",
        "Transfer-Encoding: chunked",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (webhook_target_add_header(t, bad[i], err, sizeof err) == 0)
            fail_msg("%s accepted", bad[i]);
        assert_true(strlen(err) > 0);
    }
    outcome_t o = {0};
    post(t, &o, 5);
    run_until(&o.calls, 1);
    assert_ok(&o, 200);
    const req_t *r = S.reqs[0];
    assert_string_equal(hdr(r, "Authorization"), "Bearer 7f0c9c1e");
    assert_string_equal(hdr(r, "X-Trace"), "a b\tc");
    assert_non_null(hdr(r, "X-Empty"));
    assert_string_equal(hdr(r, "X-Empty"), "");
    assert_int_equal(hdr_count(r, "Content-Type"), 1);
    assert_string_equal(hdr(r, "Content-Type"), "application/cloudevents+json");
    assert_int_equal(hdr_count(r, "User-Agent"), 1);
    assert_string_equal(hdr(r, "User-Agent"), "crm-hooks/2");
    assert_string_equal(hdr(r, "X-Defer-Task-Id"), "5");
    assert_null(hdr(r, "Expect"));
    finish_ok();

    /* At most WEBHOOK_HEADERS_MAX. */
    for (int i = (int)(sizeof good / sizeof good[0]); i < WEBHOOK_HEADERS_MAX; i++) {
        char line[64];
        snprintf(line, sizeof line, "X-N%d: %d", i, i);
        assert_int_equal(webhook_target_add_header(t, line, err, sizeof err), 0);
    }
    assert_int_equal(webhook_target_add_header(t, "X-One-Too-Many: 1", err, sizeof err), -1);
    webhook_target_ops.free(t);
}

static void test_connection_refused(void **state) {
    (void)state;
    /* A port bound but not listening refuses connections, and nobody else
     * can take it meanwhile. */
    refused_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(refused_fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(refused_fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(refused_fd, (struct sockaddr *)&a, &alen), 0);
    int port = ntohs(a.sin_port);

    char url[128], err[256], want[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", port);
    push_target_t *t = webhook_target_new(url, err, sizeof err);
    assert_non_null(t);
    outcome_t o = {0};
    post(t, &o, 1);
    run_until(&o.calls, 1);
    assert_false(o.ok);
    assert_int_equal(o.status, -1);
    snprintf(want, sizeof want, "POST %s: connection refused", url);
    assert_string_equal(o.reason, want);
    finish_ok();
    assert_int_equal(o.calls, 1);
    webhook_target_ops.free(t);
}

static outcome_t *abort_me;
static int abort_returned_early; /* abort() returned before done() ran */

static void abort_on_slow(const req_t *r) {
    if (strcmp(r->path, "/slow") != 0 || !abort_me)
        return;
    webhook_target_ops.abort(abort_me->att);
    abort_returned_early += abort_me->calls == 0;
    abort_me = NULL;
}

static void test_abort_while_waiting(void **state) {
    (void)state;
    push_target_t *t = target("/slow");
    outcome_t o = {0};
    post(t, &o, 1);
    abort_me = &o;
    abort_returned_early = 0;
    S.on_request = abort_on_slow;
    run_until(&o.calls, 1);
    assert_int_equal(abort_returned_early, 1);
    assert_false(o.ok);
    assert_int_equal(o.status, -1);
    assert_non_null(strstr(o.reason, prefix("/slow")));
    assert_non_null(strstr(o.reason, "aborted after "));
    assert_non_null(strstr(o.reason, "waiting for the answer"));
    assert_clean_text(o.reason);
    finish_ok();
    assert_int_equal(o.calls, 1);
    webhook_target_ops.free(t);
}

static void test_abort_before_sending(void **state) {
    (void)state;
    push_target_t *t = target("/ok");
    outcome_t o = {0};
    push_attempt_t *a = post(t, &o, 1);
    assert_non_null(a);
    webhook_target_ops.abort(a);
    assert_int_equal(o.calls, 0); /* not from inside abort() either */
    run_until(&o.calls, 1);
    assert_false(o.ok);
    assert_int_equal(o.status, -1);
    assert_non_null(strstr(o.reason, "aborted after "));
    assert_non_null(strstr(o.reason, "before the request was sent"));
    finish_ok();
    assert_int_equal(o.calls, 1);
    assert_int_equal(S.nreqs, 0);
    webhook_target_ops.free(t);
}

static void test_total_timeout(void **state) {
    (void)state;
    push_target_t *t = target("/slow");
    webhook_target_set_timeouts(t, 0, 200);
    outcome_t o = {0};
    post(t, &o, 1);
    run_until(&o.calls, 1);
    assert_false(o.ok);
    assert_int_equal(o.status, -1);
    assert_non_null(strstr(o.reason, prefix("/slow")));
    assert_non_null(strstr(o.reason, "timed out after "));
    assert_non_null(strstr(o.reason, "waiting for the answer"));
    assert_int_equal(S.nreqs, 1);
    finish_ok();
    webhook_target_ops.free(t);
}

static long max_rss_kib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void test_huge_answer_bounded_memory(void **state) {
    (void)state;
    memset(huge_block, 'x', sizeof huge_block);
    memcpy(huge_block, "HUGEBODY ", 9);
    long before = max_rss_kib();
    push_target_t *t = target("/huge");
    outcome_t o = {0};
    post(t, &o, 1);
    run_until(&o.calls, 1);
    long after = max_rss_kib();
    assert_false(o.ok);
    assert_int_equal(o.status, 500); /* the whole 128 MiB was read */
    char want[512];
    snprintf(want, sizeof want, "%sanswered 500: HUGEBODY xxxx", prefix("/huge"));
    assert_memory_equal(o.reason, want, strlen(want));
    assert_string_equal(o.reason + strlen(o.reason) - 3, "...");
    /* Reading 128 MiB grew the peak by far less than that. */
    assert_true(after - before < 32 * 1024);
    finish_ok();
    webhook_target_ops.free(t);
}

static void test_connection_cut_mid_answer(void **state) {
    (void)state;
    push_target_t *t = target("/cut");
    outcome_t o = {0};
    post(t, &o, 1);
    run_until(&o.calls, 1);
    assert_false(o.ok);
    assert_int_equal(o.status, 200);
    char want[512];
    snprintf(want, sizeof want, "%sanswered 200, then the connection broke mid-answer (",
             prefix("/cut"));
    assert_memory_equal(o.reason, want, strlen(want));
    finish_ok();
    webhook_target_ops.free(t);
}

static void test_connection_closed_without_answer(void **state) {
    (void)state;
    push_target_t *t = target("/drop");
    outcome_t o = {0};
    post(t, &o, 1);
    run_until(&o.calls, 1);
    assert_false(o.ok);
    assert_int_equal(o.status, -1);
    assert_reason_is(&o, "/drop", "the server closed the connection without answering");
    assert_int_equal(S.nreqs, 1);
    finish_ok();
    webhook_target_ops.free(t);
}

static void test_tls_to_a_plain_server(void **state) {
    (void)state;
    push_target_t *t = target_at("https", "/ok");
    outcome_t o = {0};
    post(t, &o, 1);
    run_until(&o.calls, 1);
    assert_false(o.ok);
    assert_int_equal(o.status, -1);
    char want[512];
    snprintf(want, sizeof want, "POST https://127.0.0.1:%d/ok: TLS failed: ", S.port);
    assert_memory_equal(o.reason, want, strlen(want));
    assert_clean_text(o.reason);
    finish_ok();
    webhook_target_ops.free(t);
}

/* Keep-alive: each done() starts the next attempt, alternating between
 * two targets on the same server; one connection carries them all. */
#define CHAIN 6
static push_target_t *chain_t[2];
static outcome_t chain_o[CHAIN];
static int chain_done;

static void chain_next(outcome_t *o) {
    int i = (int)(o - chain_o);
    chain_done++;
    if (i + 1 < CHAIN) {
        chain_o[i + 1].then = chain_next;
        post(chain_t[(i + 1) % 2], &chain_o[i + 1], (uint64_t)i + 2);
    }
}

static void test_keepalive_reuses_one_connection(void **state) {
    (void)state;
    chain_t[0] = target("/ok");
    chain_t[1] = target("/nocontent");
    memset(chain_o, 0, sizeof chain_o);
    chain_done = 0;
    chain_o[0].then = chain_next;
    post(chain_t[0], &chain_o[0], 1);
    run_until(&chain_done, CHAIN);
    for (int i = 0; i < CHAIN; i++) {
        assert_int_equal(chain_o[i].calls, 1);
        assert_ok(&chain_o[i], i % 2 ? 204 : 200);
    }
    assert_int_equal(S.nreqs, CHAIN);
    assert_int_equal(S.accepted, 1);
    for (int i = 0; i < CHAIN; i++)
        assert_int_equal(S.reqs[i]->conn_id, 1);
    finish_ok();
    webhook_target_ops.free(chain_t[0]);
    webhook_target_ops.free(chain_t[1]);
}

/* 50 at once: the server answers none until all 50 have arrived, so this
 * only finishes if they really run concurrently. */
static int gathered_calls;

static void count_gathered(outcome_t *o) {
    (void)o;
    gathered_calls++;
}

static void test_many_concurrent_attempts(void **state) {
    (void)state;
    enum { N = 50 };
    push_target_t *t = target("/gather");
    static outcome_t o[N];
    memset(o, 0, sizeof o);
    gathered_calls = 0;
    S.gather_want = N;
    for (int i = 0; i < N; i++) {
        o[i].then = count_gathered;
        post_full(t, &o[i], (uint64_t)i + 1, "bulk", 1, "{}", 2, true);
    }
    run_until(&gathered_calls, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_ok(&o[i], 200);
    }
    assert_int_equal(S.nreqs, N);
    bool seen[N + 1];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < N; i++) {
        const char *v = hdr(S.reqs[i], "X-Defer-Task-Id");
        assert_non_null(v);
        int id = atoi(v);
        assert_true(id >= 1 && id <= N);
        assert_false(seen[id]);
        seen[id] = true;
    }
    finish_ok();
    for (int i = 0; i < N; i++)
        assert_int_equal(o[i].calls, 1);
    webhook_target_ops.free(t);
}

/* done() may abort other attempts and free its own target. */
static outcome_t re_slow[2], re_ok;
static push_target_t *re_ok_t;
static int re_calls;
static int re_early; /* aborts that returned before their done() */

static void re_count(outcome_t *o) {
    (void)o;
    re_calls++;
}

static void re_on_ok(outcome_t *o) {
    (void)o;
    re_calls++;
    for (int i = 0; i < 2; i++) {
        webhook_target_ops.abort(re_slow[i].att);
        re_early += re_slow[i].calls == 0;
    }
    webhook_target_ops.free(re_ok_t);
    re_ok_t = NULL;
}

static void test_done_may_abort_others_and_free_its_target(void **state) {
    (void)state;
    push_target_t *slow = target("/slow");
    re_ok_t = target("/ok");
    memset(re_slow, 0, sizeof re_slow);
    memset(&re_ok, 0, sizeof re_ok);
    re_calls = re_early = 0;
    re_slow[0].then = re_slow[1].then = re_count;
    re_ok.then = re_on_ok;
    post(slow, &re_slow[0], 1);
    post(slow, &re_slow[1], 2);
    post(re_ok_t, &re_ok, 3);
    run_until(&re_calls, 3);
    assert_int_equal(re_early, 2);
    assert_true(re_ok.ok);
    for (int i = 0; i < 2; i++) {
        assert_false(re_slow[i].ok);
        assert_non_null(strstr(re_slow[i].reason, "aborted after "));
    }
    finish_ok();
    assert_int_equal(re_ok.calls, 1);
    assert_int_equal(re_slow[0].calls, 1);
    assert_int_equal(re_slow[1].calls, 1);
    assert_null(re_ok_t);
    webhook_target_ops.free(slow);
}

/* Shutdown stops what is in flight, from inside the call; an attempt
 * started from that done() fails too, still before shutdown returns. */
static outcome_t sd_first, sd_second;
static push_target_t *sd_t;

static void sd_start_another(outcome_t *o) {
    (void)o;
    post(sd_t, &sd_second, 2);
}

static void test_shutdown_stops_in_flight(void **state) {
    (void)state;
    sd_t = target("/slow");
    memset(&sd_first, 0, sizeof sd_first);
    memset(&sd_second, 0, sizeof sd_second);
    sd_first.then = sd_start_another;
    post(sd_t, &sd_first, 1);
    run_until(&S.nreqs, 1);
    assert_int_equal(sd_first.calls, 0);
    webhook_shutdown();
    wh_up = false;
    assert_int_equal(sd_first.calls, 1);
    assert_false(sd_first.ok);
    assert_non_null(strstr(sd_first.reason, "shutting down"));
    assert_int_equal(sd_second.calls, 1);
    assert_false(sd_second.ok);
    assert_non_null(strstr(sd_second.reason, "not sent: deferd is shutting down"));
    webhook_shutdown(); /* twice is harmless */
    finish_ok();
    assert_int_equal(sd_first.calls, 1);
    assert_int_equal(sd_second.calls, 1);
    webhook_target_ops.free(sd_t);

    /* And it can start again on a new loop. */
    uv_loop_t l2;
    char err[256];
    assert_int_equal(uv_loop_init(&l2), 0);
    assert_int_equal(webhook_init(&l2, err, sizeof err), 0);
    webhook_shutdown();
    assert_int_equal(uv_run(&l2, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&l2), 0);
}

static void test_unsendable_request_fails_next_turn(void **state) {
    (void)state;
    push_target_t *t = target("/ok");
    outcome_t o = {0};
    push_attempt_t *a = post_full(t, &o, 1, "bad\nqueue", 1, "{}", 2, true);
    assert_null(a);
    assert_int_equal(o.calls, 0);
    run_until(&o.calls, 1);
    assert_false(o.ok);
    assert_int_equal(o.status, -1);
    assert_reason_is(&o, "/ok",
                     "not sent: the queue name holds control characters, which cannot go in a "
                     "header");
    assert_int_equal(S.nreqs, 0);
    finish_ok();
    assert_int_equal(o.calls, 1);
    webhook_target_ops.free(t);
}

static void test_idle_loop_ends(void **state) {
    (void)state;
    /* After a finished attempt, nothing of ours keeps the loop running:
     * with the server gone too, uv_run returns by itself. */
    push_target_t *t = target("/ok");
    outcome_t o = {0};
    post(t, &o, 1);
    run_until(&o.calls, 1);
    assert_true(o.ok);
    srv_stop();
    uv_close((uv_handle_t *)&watchdog, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    /* Then the usual way down. */
    webhook_shutdown();
    wh_up = false;
    for (int i = 0; i < 100 && uv_run(&loop, UV_RUN_NOWAIT); i++)
        ;
    finished = true;
    loop_close_rc = uv_loop_close(&loop);
    assert_int_equal(loop_close_rc, 0);
    webhook_target_ops.free(t);
}

int main(void) {
    /* Requests to 127.0.0.1 must not go through a proxy of the caller's. */
    const char *proxies[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                             "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++)
        unsetenv(proxies[i]);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_validation),
        T(test_init_twice_fails),
        T(test_post_json_with_headers),
        T(test_binary_body_and_headers_exact),
        T(test_empty_body_and_204),
        T(test_error_answer_reason),
        T(test_empty_error_answer),
        T(test_html_error_page_text),
        T(test_redirect_is_a_failure),
        T(test_redirect_reason_hides_credentials),
        T(test_extra_headers),
        T(test_connection_refused),
        T(test_abort_while_waiting),
        T(test_abort_before_sending),
        T(test_total_timeout),
        T(test_huge_answer_bounded_memory),
        T(test_connection_cut_mid_answer),
        T(test_connection_closed_without_answer),
        T(test_tls_to_a_plain_server),
        T(test_keepalive_reuses_one_connection),
        T(test_many_concurrent_attempts),
        T(test_done_may_abort_others_and_free_its_target),
        T(test_shutdown_stops_in_flight),
        T(test_unsendable_request_fails_next_turn),
        T(test_idle_loop_ends),
    };
#undef T
    /* TEST_FILTER=test_name (or a pattern with * and ?) runs just those. */
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
