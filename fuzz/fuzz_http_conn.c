/* fuzz_http_conn.c - libFuzzer harness for the HTTP API (http_conn,
 * http_api, http_events, http_render, http_metrics) over a real engine,
 * with a beanstalk connection beside it: tasks are one set.
 *
 * One engine, an http_server and a bs_server sharing it (and drain mode),
 * the engine's observer feeding the event streams as main.c wires it, up to
 * three HTTP connections and one beanstalk connection, driven the way
 * src/net/conn.c drives them (feed a read directly, keep what is not
 * consumed, feed it again when the connection is woken, its output is read,
 * or the client half-closes), with time passed in explicitly.
 *
 * The input: one configuration byte, then a script.
 *
 *   bits 0-1  history: 0 the defaults (10000 tasks, 1 day); 1: 3 tasks, 1
 *             day; 2: none (0, 0); 3: 10000 tasks, 10 s
 *   bit 2     a token is required (Authorization: Bearer <TOKEN below>)
 *   bits 3-4  --http-max-body: 16 MiB, 64, 512, 0
 *   bits 5-6  max task size (-z, both protocols): 65535, 16, 0, 300
 *   bit 7     a log: log_room answers (see ~f) and /v1/stats shows "log"
 *
 * The script: plain bytes are data for the current connection; '~' starts a
 * control sequence. Data collected since the last control sequence is
 * delivered as one read (or several, see "~b") when the next control
 * sequence or the end of input comes.
 *
 *   ~~      a literal '~' in the data
 *   ~#      in the data: a number, one more each time it is sent (from 1)
 *   ~c B    set that number to B
 *   ~0 ~1 ~2  make HTTP connection 0, 1 or 2 current
 *   ~3      make the beanstalk connection current
 *   ~|      nothing but a read boundary (split the data here)
 *   ~b B    deliver later reads in pieces of B bytes (0: whole)
 *   ~R B    deliver the last read again, B+1 times
 *   ~t B    advance the clock (B<64: B*50ms; <128: 1..64 s; <192: 1..64 min;
 *           else 1..64 days), then what the server does on its timers:
 *           engine_tick, engine_update_rates, engine_expire_history,
 *           http_server_tick (heartbeats)
 *   ~T      jump the clock to the engine's next deadline, as ~t
 *   ~U      jump the clock to 1 ns before the next deadline, as ~t
 *   ~e      the client half-closes (EOF); the connection ends once its
 *           input is used up
 *   ~x      the connection drops (freed at once, whatever its state)
 *   ~r      the client reads all its output
 *   ~d      toggle drain mode
 *   ~l      cycle the output limit (back-pressure): HTTP 1 MiB (the
 *           server's), 1, 200 bytes; beanstalk none, 1, 200
 *   ~f      cycle the log's room (with bit 7): plenty; none for puts;
 *           600 bytes; none at all
 *   other   like ~|
 * A connection is opened when data is first sent to a closed slot; data
 * sent to a half-closed one opens a new connection in its place.
 *
 * The harness reads each HTTP connection's requests itself, from the bytes
 * the server consumed, with its own http_parser (the same limits: 8 KiB of
 * headers, max_body), so it knows which request each response answers:
 * they come in order.
 *
 * After every step it checks:
 *   - framing: each HTTP connection's output is a sequence of whole
 *     HTTP/1.1 responses (status line with the right reason, headers,
 *     Date, a Content-Length the body matches exactly), or, after a 200
 *     to GET /v1/events, a chunked stream of valid chunks, each one line of
 *     JSON, ended by a zero chunk; nothing after a "Connection: close"
 *     response or the stream's end, and such a response exactly when the
 *     request did not keep the connection alive (or could not be parsed);
 *   - the contract (docs/http-api.md): every JSON body parses and is an
 *     object; statuses >= 400 carry {"error":{"code","message"}} with a
 *     code the table pairs with that status (but the 503 of /healthz); no
 *     500 (memory never runs out here); 401 exactly when a token is
 *     required, the request lacks it and is not GET /healthz; 404 for
 *     unknown paths, 405 (with Allow) for a known path with another
 *     method; 503 only when draining (healthz, enqueues), 507 only when
 *     the log is short of room; 201 only for an enqueue, with Location
 *     /v1/tasks/<id>; the shape of each answer: task objects (fields,
 *     states, times, run_at exactly when delayed, finished_at exactly
 *     when it ended (done, cancelled) or failed, payload or payload_base64
 *     but not for done or cancelled tasks, a "failed" task used up its
 *     attempts), queue objects, lists in id order (of the state asked
 *     for), batches one entry per task, stats, healthz, kicked, /metrics
 *     (Prometheus text with the documented metrics); HEAD answered with
 *     headers only, Expect: 100-continue with "100 Continue" at once;
 *   - answers against the engine, for the last request each read
 *     completed (nothing ran after it): a refused enqueue or batch
 *     enqueued nothing and took no id, an accepted one one id per task
 *     (deduplicated and replacing ones too; when it was alone in its
 *     read); a task read or enqueued is as the engine holds it (queue,
 *     state, priority, ttr, attempts, key, finished_at, payload, and the
 *     request's fields for a new or replaced task), a
 *     deduplicated one is the key's holder, a superseded one still runs
 *     without its key, a cancelled one is gone (and in the history when
 *     one is kept), a 404 task is neither live nor retained, a 409
 *     task_running one is reserved, a queue's counts and pause are the
 *     tube's, stats are the engine's, healthz says the drain mode;
 *   - event streams carry exactly the events the engine reported since
 *     the stream began (of its queue, if it asked for one), with their
 *     time, task and queue, a heartbeat after 15 s of silence, and
 *     {"event":"overflow"} then the end when the client fell 1 MiB behind;
 *   - the beanstalk connection's replies are well formed (bs_replies.c);
 *   - a connection that consumed less than it was fed is closed, waiting
 *     (beanstalk), held back by the output limit, or has just begun an
 *     event stream; no connection is left
 *     with input it could consume and no wake-up to consume it; wake-ups
 *     come only to streams (HTTP) or waiting reserves (beanstalk), never
 *     for a connection being freed;
 *   - the server's counters: connections, requests (one per request the
 *     harness read), the stream list holds exactly the streaming
 *     connections;
 *   - the engine's invariants (engine_check.c), after every step until
 *     CHECK_BUDGET work is spent, then at the end.
 * At the end everything is freed, so LeakSanitizer sees real leaks.
 *
 * Also: cutting a connection's data into smaller reads must change nothing.
 * A script that used ~b is run a second time with whole reads, and every
 * connection's output must be the same byte for byte.
 *
 * With FUZZ_TRACE=1 it prints the script's steps and every connection's
 * output to stderr. */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <http_parser.h>
#include <jansson.h>

#include "bs_replies.h"
#include "core/engine.h"
#include "engine_check.h"
#include "harness_util.h"
#include "proto/bs_conn.h"
#include "proto/http.h"
#include "script.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NHTTP 3
#define BS_SLOT 3
#define NSLOTS 4
_Static_assert(NSLOTS <= SCRIPT_MAX_CONNS, "script.h compares this many");
/* Sunday 2026-11-22 12:20 UTC: the documentation's examples are that day. */
#define BASE_NOW (INT64_C(1795350000) * NS_PER_SEC)
#define MAX_NOW (BASE_NOW + INT64_C(100000000) * NS_PER_SEC)
#define FEED_BUDGET (256 * 1024)
#define MAX_READS 16384
/* Output beyond this is read by the client automatically: above the event
 * streams' limit, so that overflow can happen. */
#define OUT_BOUND (2u << 20)
#define CHECK_BUDGET 60000
#define TOKEN "fuzz-token-0123456789abcdef"
#define HTTP_OUT_DEFAULT (1u << 20) /* NET_OUT_HIGH, what main.c sets */

typedef struct harness harness_t;

/* ---- what the harness read of a request ---- */

typedef enum route {
    R_UNKNOWN, /* 404: no such endpoint, or a malformed path */
    R_HEALTHZ,
    R_METRICS,
    R_STATS,
    R_EVENTS,
    R_QUEUES,
    R_QUEUE,
    R_TASKS, /* /v1/queues/Q/tasks: enqueue (POST), list (GET) */
    R_BATCH,
    R_PAUSE,
    R_RESUME,
    R_KICK,
    R_TASK, /* /v1/tasks/ID */
    R_KEY,  /* /v1/queues/Q/keys/K */
} route_t;

typedef struct request {
    int method;
    char *url;
    size_t url_len;
    char *body;
    size_t body_len;
    bool auth_ok;    /* the Authorization header carries the token */
    bool expect;     /* Expect: 100-continue, to be answered with a 100 */
    bool upgrade;    /* CONNECT, or Connection: upgrade with Upgrade */
    bool keep_alive; /* http_should_keep_alive when it was complete */
    bool last;       /* the last request its read completed */
    bool only;       /* ... and the only one: the engine was as before the read */
    route_t route;
    /* Decoded path segments: the queue (seg 2), the id (seg 2), the key
     * (seg 4). */
    char *seg[8];
    size_t seg_len[8];
    int nseg;
    const char *query;
    size_t query_len;
} request_t;

/* The harness's own reading of a connection's requests. */
typedef struct reader {
    http_parser p;
    buf_t url, body, field, auth, expect;
    bool field_done;
    bool cur_expect;
    size_t header_bytes;
    bool broken;  /* a parse error or a limit: the server answered and closed */
    request_t *q; /* requests not answered yet, oldest first */
    size_t qhead, qlen, qcap;
    uint64_t completed;
} reader_t;

/* An event a stream must carry. */
typedef struct expect {
    int kind; /* 0: an event, 1: heartbeat, 2: overflow (then the end) */
    engine_event_t ev;
    uint64_t id;
    int64_t now;
    char queue[TUBE_NAME_MAX + 1];
} expect_t;

typedef struct slot {
    harness_t *h;
    int index;
    http_conn_t *hc; /* slots 0..2 */
    bs_conn_t *bc;   /* slot 3 */
    buf_t out, in;
    size_t checked;
    bool eof, dirty;
    uint64_t out_hash, out_total;
    reader_t rd;
    /* The output, as the client reads it. */
    bool streaming;  /* after the stream's header: chunks */
    bool ended;      /* the server closes: nothing may follow */
    int continues;   /* "100 Continue" answers not followed by a final one */
    bool stream_any; /* the stream follows every queue */
    char stream_queue[TUBE_NAME_MAX + 1];
    int64_t stream_last;
    expect_t *ex;
    size_t exhead, exlen, excap;
} slot_t;

struct harness {
    engine_t *e;
    http_server_t hs;
    bs_server_t bs;
    slot_t slots[NSLOTS];
    int64_t now;
    int cur;
    size_t split, fed, reads, step;
    uint64_t check_work;
    uint64_t http_opens, bs_opens, requests;
    bool whole_reads, split_used;
    const slot_t *feeding, *freeing;
    int limit_i, room_i;
    bool log;
    uint32_t max_job_size;
    /* The engine before the read being fed (for a request alone in it). */
    uint64_t pre_next_id, pre_jobs;
    /* The response being checked, for failure messages. */
    const char *resp;
    size_t resp_len;
    const request_t *req;
};

static const size_t http_limits[] = {HTTP_OUT_DEFAULT, 1, 200};
static const size_t bs_limits[] = {0, 1, 200};
static const size_t max_bodies[] = {HTTP_DEFAULT_MAX_BODY, 64, 512, 0};
static const uint32_t job_sizes[] = {BS_DEFAULT_MAX_JOB_SIZE, 16, 0, 300};

static harness_t *g_h;
static int g_trace;

/* ---- failing ---- */

static void fail(const char *what, int line) {
    harness_t *h = g_h;
    fprintf(stderr, "fuzz_http_conn: invariant failed at %s:%d (script step %zu): %s\n", __FILE__,
            line, h ? h->step : 0, what);
    if (h && h->req)
        fprintf(stderr, "  request: %s %.*s (body %zu bytes: %.*s)\n",
                http_method_str((enum http_method)h->req->method),
                (int)(h->req->url_len > 300 ? 300 : h->req->url_len), h->req->url, h->req->body_len,
                (int)(h->req->body_len > 300 ? 300 : h->req->body_len),
                h->req->body ? h->req->body : "");
    if (h && h->resp)
        fprintf(stderr, "  response: %.*s\n", (int)(h->resp_len > 600 ? 600 : h->resp_len),
                h->resp);
    abort();
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail(#cond, __LINE__);                                                                 \
    } while (0)

/* ---- reading requests ---- */

static void request_free(request_t *r) {
    free(r->url);
    free(r->body);
    for (int i = 0; i < r->nseg; i++)
        free(r->seg[i]);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode s[0..n) into a new string; NULL on a bad escape. */
static char *pct_decode(const char *s, size_t n, size_t *outlen) {
    char *o = malloc(n + 1);
    CHECK(o != NULL);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '%') {
            o[k++] = s[i++];
            continue;
        }
        if (i + 2 >= n) {
            free(o);
            return NULL;
        }
        int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
        if (a < 0 || b < 0) {
            free(o);
            return NULL;
        }
        o[k++] = (char)(a * 16 + b);
        i += 3;
    }
    o[k] = '\0';
    *outlen = k;
    return o;
}

/* A task id as the API reads it: 1 to 20 digits, positive, no overflow. */
static bool parse_id(const char *s, size_t n, uint64_t *id) {
    uint64_t v = 0;
    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *id = v;
    return v > 0;
}

static bool seg_is(const request_t *r, int i, const char *s) {
    return i < r->nseg && r->seg_len[i] == strlen(s) && memcmp(r->seg[i], s, r->seg_len[i]) == 0;
}

/* The documented endpoints (docs/http-api.md), from the path. */
static void route_request(request_t *r) {
    const char *u = r->url, *q = memchr(u, '?', r->url_len);
    size_t plen = q ? (size_t)(q - u) : r->url_len;
    if (q) {
        r->query = q + 1;
        r->query_len = r->url_len - plen - 1;
    }
    r->route = R_UNKNOWN;
    if (plen == 0 || u[0] != '/')
        return;
    size_t i = 0;
    while (i < plen) {
        i++;
        size_t start = i;
        while (i < plen && u[i] != '/')
            i++;
        if (r->nseg == 8)
            return; /* too many segments */
        r->seg[r->nseg] = pct_decode(u + start, i - start, &r->seg_len[r->nseg]);
        if (!r->seg[r->nseg])
            return;
        r->nseg++;
    }
    int n = r->nseg;
    if (n == 1 && seg_is(r, 0, "healthz"))
        r->route = R_HEALTHZ;
    else if (n == 1 && seg_is(r, 0, "metrics"))
        r->route = R_METRICS;
    else if (!seg_is(r, 0, "v1"))
        r->route = R_UNKNOWN;
    else if (n == 2 && seg_is(r, 1, "stats"))
        r->route = R_STATS;
    else if (n == 2 && seg_is(r, 1, "events"))
        r->route = R_EVENTS;
    else if (n == 2 && seg_is(r, 1, "queues"))
        r->route = R_QUEUES;
    else if (n == 3 && seg_is(r, 1, "tasks"))
        r->route = R_TASK;
    else if (n >= 3 && seg_is(r, 1, "queues")) {
        if (n == 3)
            r->route = R_QUEUE;
        else if (n == 4 && seg_is(r, 3, "tasks"))
            r->route = R_TASKS;
        else if (n == 5 && seg_is(r, 3, "tasks") && seg_is(r, 4, "batch"))
            r->route = R_BATCH;
        else if (n == 4 && seg_is(r, 3, "pause"))
            r->route = R_PAUSE;
        else if (n == 4 && seg_is(r, 3, "resume"))
            r->route = R_RESUME;
        else if (n == 4 && seg_is(r, 3, "kick"))
            r->route = R_KICK;
        else if (n == 5 && seg_is(r, 3, "keys"))
            r->route = R_KEY;
    }
}

/* The methods a route answers (405 otherwise). */
static bool method_ok(route_t rt, int m) {
    switch (rt) {
    case R_HEALTHZ:
    case R_METRICS:
    case R_STATS:
    case R_EVENTS:
    case R_QUEUES:
        return m == HTTP_GET;
    case R_QUEUE: /* PUT: push settings (docs/push.md) */
        return m == HTTP_GET || m == HTTP_PUT;
    case R_TASKS:
        return m == HTTP_GET || m == HTTP_POST;
    case R_BATCH:
    case R_PAUSE:
    case R_RESUME:
    case R_KICK:
        return m == HTTP_POST;
    case R_TASK:
        return m == HTTP_GET || m == HTTP_DELETE;
    case R_KEY:
        return m == HTTP_DELETE;
    case R_UNKNOWN:
        break;
    }
    return true;
}

/* The value of a query parameter (not decoded), or NULL. */
static const char *query_param(const request_t *r, const char *name, size_t *len) {
    size_t n = strlen(name);
    const char *p = r->query, *end = r->query ? r->query + r->query_len : NULL;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) > n && memcmp(p, name, n) == 0 && p[n] == '=') {
            *len = (size_t)(stop - p - n - 1);
            return p + n + 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

static slot_t *reader_slot(http_parser *p) { return p->data; }

static bool add_header_bytes(reader_t *rd, size_t n) {
    rd->header_bytes += n;
    return rd->header_bytes <= HTTP_HEADER_MAX;
}

static int rd_begin(http_parser *p) {
    reader_t *rd = &reader_slot(p)->rd;
    buf_reset(&rd->url);
    buf_reset(&rd->body);
    buf_reset(&rd->field);
    buf_reset(&rd->auth);
    buf_reset(&rd->expect);
    rd->header_bytes = 0;
    rd->field_done = false;
    rd->cur_expect = false;
    return 0;
}

static int rd_url(http_parser *p, const char *at, size_t n) {
    reader_t *rd = &reader_slot(p)->rd;
    CHECK(buf_append(&rd->url, at, n));
    return add_header_bytes(rd, n) ? 0 : 1;
}

static int rd_field(http_parser *p, const char *at, size_t n) {
    reader_t *rd = &reader_slot(p)->rd;
    if (rd->field_done) {
        buf_reset(&rd->field);
        rd->field_done = false;
    }
    CHECK(buf_append(&rd->field, at, n));
    return add_header_bytes(rd, n) ? 0 : 1;
}

static int rd_value(http_parser *p, const char *at, size_t n) {
    reader_t *rd = &reader_slot(p)->rd;
    rd->field_done = true;
    if (rd->field.len == 13 && strncasecmp(buf_head(&rd->field), "authorization", 13) == 0)
        CHECK(buf_append(&rd->auth, at, n));
    if (rd->field.len == 6 && strncasecmp(buf_head(&rd->field), "expect", 6) == 0)
        CHECK(buf_append(&rd->expect, at, n));
    return add_header_bytes(rd, n) ? 0 : 1;
}

static int rd_headers_complete(http_parser *p) {
    slot_t *s = reader_slot(p);
    if (p->content_length != ULLONG_MAX && p->content_length > s->h->hs.max_body)
        return -1;
    reader_t *rd = &s->rd;
    /* Exactly 100-continue, from an HTTP/1.1 client (1.0 has no 100). */
    rd->cur_expect = rd->expect.len == 12 &&
                     strncasecmp(buf_head(&rd->expect), "100-continue", 12) == 0 &&
                     (p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1));
    return 0;
}

static int rd_body(http_parser *p, const char *at, size_t n) {
    slot_t *s = reader_slot(p);
    if (s->rd.body.len + n > s->h->hs.max_body)
        return 1;
    CHECK(buf_append(&s->rd.body, at, n));
    return 0;
}

static char *dup_bytes(const buf_t *b) {
    char *p = malloc(b->len + 1);
    CHECK(p != NULL);
    if (b->len)
        memcpy(p, buf_head(b), b->len);
    p[b->len] = '\0';
    return p;
}

static int rd_complete(http_parser *p) {
    slot_t *s = reader_slot(p);
    reader_t *rd = &s->rd;
    if (rd->qhead + rd->qlen == rd->qcap) {
        if (rd->qhead) {
            memmove(rd->q, rd->q + rd->qhead, rd->qlen * sizeof *rd->q);
            rd->qhead = 0;
        } else {
            rd->qcap = rd->qcap ? rd->qcap * 2 : 8;
            rd->q = realloc(rd->q, rd->qcap * sizeof *rd->q);
            CHECK(rd->q != NULL);
        }
    }
    request_t *r = &rd->q[rd->qhead + rd->qlen++];
    memset(r, 0, sizeof *r);
    r->method = (int)p->method;
    r->url = dup_bytes(&rd->url);
    r->url_len = rd->url.len;
    r->body = dup_bytes(&rd->body);
    r->body_len = rd->body.len;
    static const char want[] = "Bearer " TOKEN;
    size_t n = sizeof want - 1;
    r->auth_ok = rd->auth.len == n && strncasecmp(buf_head(&rd->auth), want, 7) == 0 &&
                 memcmp(buf_head(&rd->auth) + 7, want + 7, n - 7) == 0;
    /* After CONNECT or an Upgrade the server closes: it speaks no other
     * protocol. */
    r->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    r->expect = rd->cur_expect;
    r->upgrade = p->upgrade;
    route_request(r);
    rd->completed++;
    return 0;
}

static const http_parser_settings rd_settings = {
    .on_message_begin = rd_begin,
    .on_url = rd_url,
    .on_header_field = rd_field,
    .on_header_value = rd_value,
    .on_headers_complete = rd_headers_complete,
    .on_body = rd_body,
    .on_message_complete = rd_complete,
};

static void reader_init(slot_t *s) {
    reader_t *rd = &s->rd;
    http_parser_init(&rd->p, HTTP_REQUEST);
    rd->p.data = s;
    rd->broken = false;
    rd->header_bytes = 0;
    rd->field_done = false;
}

static void reader_reset(reader_t *rd) {
    for (size_t i = 0; i < rd->qlen; i++)
        request_free(&rd->q[rd->qhead + i]);
    rd->qhead = rd->qlen = 0;
    buf_reset(&rd->url);
    buf_reset(&rd->body);
    buf_reset(&rd->field);
    buf_reset(&rd->auth);
    buf_reset(&rd->expect);
}

static void reader_free(reader_t *rd) {
    reader_reset(rd);
    free(rd->q);
    rd->q = NULL;
    rd->qcap = 0;
    buf_free(&rd->url);
    buf_free(&rd->body);
    buf_free(&rd->field);
    buf_free(&rd->auth);
    buf_free(&rd->expect);
}

/* The bytes the server consumed, read by the harness too. */
static void reader_feed(slot_t *s, const char *p, size_t n) {
    reader_t *rd = &s->rd;
    if (rd->broken || n == 0)
        return;
    size_t done = 0;
    while (done < n) {
        size_t k = http_parser_execute(&rd->p, &rd_settings, p + done, n - done);
        if (HTTP_PARSER_ERRNO(&rd->p) != HPE_OK) {
            rd->broken = true;
            return;
        }
        CHECK(k > 0);
        done += k;
    }
}

/* ---- JSON helpers ---- */

static bool is_uint(const json_t *v, double max) {
    if (!json_is_number(v))
        return false;
    double d = json_number_value(v);
    return d >= 0 && d <= max && d == floor(d);
}

static uint64_t num(const json_t *v) { return (uint64_t)json_number_value(v); }

/* "2026-11-22T14:45:00.000Z" */
static bool is_time(const json_t *v) {
    if (!json_is_string(v) || json_string_length(v) != 24)
        return false;
    const char *s = json_string_value(v);
    for (int i = 0; i < 24; i++) {
        char c = s[i];
        bool digit = c >= '0' && c <= '9';
        switch (i) {
        case 4:
        case 7:
            if (c != '-')
                return false;
            break;
        case 10:
            if (c != 'T')
                return false;
            break;
        case 13:
        case 16:
            if (c != ':')
                return false;
            break;
        case 19:
            if (c != '.')
                return false;
            break;
        case 23:
            if (c != 'Z')
                return false;
            break;
        default:
            if (!digit)
                return false;
        }
    }
    return true;
}

static void fmt_time(int64_t ns, char out[48]) {
    time_t sec = (time_t)(ns / NS_PER_SEC);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ns % NS_PER_SEC / 1000000));
}

static bool time_is(const json_t *v, int64_t ns) {
    char t[48];
    fmt_time(ns, t);
    return json_is_string(v) && strcmp(json_string_value(v), t) == 0;
}

static bool str_is(const json_t *v, const char *s, size_t n) {
    return json_is_string(v) && json_string_length(v) == n &&
           memcmp(json_string_value(v), s, n) == 0;
}

/* Base64 of p[0..n), standard alphabet, padded. */
static char *b64(const char *p, size_t n) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc((n + 2) / 3 * 4 + 1), *w = o;
    CHECK(o != NULL);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)p[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)p[i + 2];
        *w++ = abc[v >> 18 & 63];
        *w++ = abc[v >> 12 & 63];
        *w++ = i + 1 < n ? abc[v >> 6 & 63] : '=';
        *w++ = i + 2 < n ? abc[v & 63] : '=';
    }
    *w = '\0';
    return o;
}

/* Standard base64 with padding, as the API takes it (the pad bits are not
 * looked at). Returns the bytes (*n of them), or NULL if it is not. */
static char *unb64(const char *t, size_t len, size_t *n) {
    if (len % 4)
        return NULL;
    char *o = malloc(len / 4 * 3 + 1);
    CHECK(o != NULL);
    size_t k = 0;
    for (size_t i = 0; i < len; i += 4) {
        int pad = i + 4 == len && t[i + 3] == '=' ? (t[i + 2] == '=' ? 2 : 1) : 0;
        uint32_t v = 0;
        for (int j = 0; j < 4; j++) {
            char c = t[i + j];
            int d = j >= 4 - pad           ? 0
                    : c >= 'A' && c <= 'Z' ? c - 'A'
                    : c >= 'a' && c <= 'z' ? c - 'a' + 26
                    : c >= '0' && c <= '9' ? c - '0' + 52
                    : c == '+'             ? 62
                    : c == '/'             ? 63
                                           : -1;
            if (d < 0) {
                free(o);
                return NULL;
            }
            v = v << 6 | (uint32_t)d;
        }
        o[k++] = (char)(v >> 16);
        if (pad < 2)
            o[k++] = (char)(v >> 8);
        if (pad < 1)
            o[k++] = (char)v;
    }
    *n = k;
    return o;
}

static json_t *parse_json(const char *p, size_t n) {
    return json_loadb(p, n, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
}

/* ---- answers: shapes ---- */

static const char *const states[] = {"ready",  "delayed", "reserved",  "buried",
                                     "failed", "done",    "cancelled", NULL};

static bool one_of(const json_t *v, const char *const *set) {
    if (!json_is_string(v))
        return false;
    for (int i = 0; set[i]; i++)
        if (strcmp(json_string_value(v), set[i]) == 0)
            return true;
    return false;
}

/* What a task object says of its task. */
typedef enum task_kind {
    T_LIVE,   /* ready, delayed, reserved, buried */
    T_FAILED, /* its attempts ran out: buried (kick tries again), or deleted so */
    T_ENDED,  /* done or cancelled */
} task_kind_t;

/* A task object. enqueue: the outcome flags may be there. */
static task_kind_t check_task_shape(const harness_t *h, const json_t *o, bool enqueue) {
    static const char *const fields[] = {
        "id",  "queue",      "state",  "priority",    "ttr",        "attempts", "max_attempts",
        "key", "created_at", "run_at", "finished_at", "last_error", NULL};
    CHECK(json_is_object(o));
    for (int i = 0; fields[i]; i++)
        CHECK(json_object_get(o, fields[i]) != NULL); /* a documented field is missing */
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        bool ok = strcmp(k, "payload") == 0 || strcmp(k, "payload_base64") == 0;
        for (int i = 0; !ok && fields[i]; i++)
            ok = strcmp(k, fields[i]) == 0;
        if (enqueue)
            ok = ok || strcmp(k, "deduplicated") == 0 || strcmp(k, "replaced") == 0 ||
                 strcmp(k, "superseded") == 0;
        if (!ok)
            fprintf(stderr, "fuzz_http_conn: undocumented field '%s' in a task\n", k);
        CHECK(ok);
    }
    const json_t *id = json_object_get(o, "id");
    CHECK(is_uint(id, 9e15) && num(id) > 0 && num(id) < h->e->next_id);
    const json_t *q = json_object_get(o, "queue");
    CHECK(json_is_string(q) && engine_tube_name_valid(json_string_value(q), json_string_length(q)));
    const json_t *st = json_object_get(o, "state");
    const json_t *fin = json_object_get(o, "finished_at");
    CHECK(one_of(st, states));
    const char *sv = json_string_value(st);
    task_kind_t kind = strcmp(sv, "failed") == 0                                 ? T_FAILED
                       : strcmp(sv, "done") == 0 || strcmp(sv, "cancelled") == 0 ? T_ENDED
                                                                                 : T_LIVE;
    /* finished_at: when it ended (done, cancelled) or failed; null otherwise. */
    CHECK(kind == T_LIVE ? json_is_null(fin) : is_time(fin));
    CHECK(is_uint(json_object_get(o, "priority"), UINT32_MAX));
    const json_t *ttr = json_object_get(o, "ttr");
    CHECK(is_uint(ttr, UINT32_MAX) && num(ttr) >= 1);
    const json_t *att = json_object_get(o, "attempts"), *maxa = json_object_get(o, "max_attempts");
    CHECK(is_uint(att, UINT32_MAX) && is_uint(maxa, UINT32_MAX));
    const json_t *key = json_object_get(o, "key");
    CHECK(json_is_null(key) || (json_is_string(key) && json_string_length(key) >= 1 &&
                                json_string_length(key) <= TUBE_NAME_MAX));
    CHECK(is_time(json_object_get(o, "created_at")));
    const json_t *run_at = json_object_get(o, "run_at");
    bool delayed = strcmp(sv, "delayed") == 0;
    CHECK(delayed ? is_time(run_at) : json_is_null(run_at)); /* run_at exactly when delayed */
    const json_t *err = json_object_get(o, "last_error");
    CHECK(json_is_null(err) || json_is_string(err));
    bool pay = json_object_get(o, "payload") != NULL;
    const json_t *raw = json_object_get(o, "payload_base64");
    CHECK(!(pay && raw));
    if (raw)
        CHECK(json_is_string(raw) && json_string_length(raw) % 4 == 0);
    if (kind == T_ENDED)
        CHECK(!pay && !raw); /* finished tasks are kept without their payload */
    if (kind == T_FAILED)
        CHECK(num(maxa) > 0 && num(att) >= num(maxa));
    if (enqueue) {
        const json_t *d = json_object_get(o, "deduplicated"), *r = json_object_get(o, "replaced"),
                     *sup = json_object_get(o, "superseded");
        CHECK(!d || json_is_true(d));
        CHECK(!r || json_is_true(r));
        CHECK(!sup || (is_uint(sup, 9e15) && num(sup) > 0 && num(sup) != num(id)));
        CHECK((d != NULL) + (r != NULL) + (sup != NULL) <= 1);
    }
    return kind;
}

static void check_queue_shape(const json_t *o) {
    static const char *const counts[] = {
        "ready",  "delayed",         "reserved",       "buried",     "failed",
        "urgent", "workers_waiting", "total_enqueued", "total_done", NULL};
    CHECK(json_is_object(o));
    const json_t *name = json_object_get(o, "name");
    CHECK(json_is_string(name) &&
          engine_tube_name_valid(json_string_value(name), json_string_length(name)));
    for (int i = 0; counts[i]; i++)
        CHECK(is_uint(json_object_get(o, counts[i]), 1e15));
    const json_t *paused = json_object_get(o, "paused"),
                 *left = json_object_get(o, "pause_seconds_left");
    CHECK(json_is_boolean(paused));
    CHECK(left != NULL);
    if (json_is_false(paused))
        CHECK(is_uint(left, 0)); /* not paused: 0 */
    else
        CHECK(json_is_null(left) || (is_uint(left, 4294967296.0) && num(left) >= 1));
    const json_t *er = json_object_get(o, "enqueued_per_second"),
                 *dr = json_object_get(o, "done_per_second");
    CHECK(json_is_number(er) && json_number_value(er) >= 0);
    CHECK(json_is_number(dr) && json_number_value(dr) >= 0);
}

/* ---- answers against the engine ---- */

static const char *live_state(const engine_t *e, const job_t *j) {
    return engine_job_failed(e, j) ? "failed" : job_state_name(job_state(j));
}

static const char *end_name(task_end_t end) {
    return end == TASK_DONE ? "done" : end == TASK_FAILED ? "failed" : "cancelled";
}

/* A task object as the engine holds the task now. */
static void check_task_against(const harness_t *h, const json_t *o) {
    const engine_t *e = h->e;
    uint64_t id = num(json_object_get(o, "id"));
    const job_t *j = engine_job_find(e, id);
    const json_t *key = json_object_get(o, "key");
    if (!j) {
        const task_history_t *t = engine_history_find(e, id, h->now);
        if (!t)
            return; /* answered from the last task to end, when none is kept */
        CHECK(str_is(json_object_get(o, "state"), end_name(t->end), strlen(end_name(t->end))));
        CHECK(str_is(json_object_get(o, "queue"), t->queue, t->queue_len));
        CHECK(time_is(json_object_get(o, "finished_at"), t->finished));
        CHECK(num(json_object_get(o, "priority")) == t->pri);
        CHECK(num(json_object_get(o, "attempts")) == t->attempts);
        CHECK(t->key ? str_is(key, t->key, strlen(t->key)) : json_is_null(key));
        return;
    }
    const tube_t *t = engine_job_tube(e, j);
    const job_ext_t *x = engine_job_ext(e, j);
    const char *st = live_state(e, j);
    if (engine_job_failed(e, j))
        CHECK(time_is(json_object_get(o, "finished_at"), x->failed_at));
    else
        CHECK(json_is_null(json_object_get(o, "finished_at")));
    CHECK(str_is(json_object_get(o, "state"), st, strlen(st)));
    CHECK(str_is(json_object_get(o, "queue"), t->name, t->name_len));
    CHECK(num(json_object_get(o, "priority")) == j->pri);
    CHECK(num(json_object_get(o, "ttr")) == j->ttr);
    CHECK(num(json_object_get(o, "attempts")) == engine_job_attempts(e, j));
    CHECK(num(json_object_get(o, "max_attempts")) == (x ? x->max_attempts : 0));
    CHECK(x && x->key ? str_is(key, x->key, x->key_len) : json_is_null(key));
    CHECK(time_is(json_object_get(o, "created_at"), j->created));
    if (job_state(j) == JOB_DELAYED)
        CHECK(time_is(json_object_get(o, "run_at"), j->deadline));
    const json_t *pay = json_object_get(o, "payload"), *raw = json_object_get(o, "payload_base64");
    if (pay) {
        CHECK(job_flag(j, JOB_FLAG_JSON));
        json_t *body = parse_json(j->body, j->size);
        CHECK(body != NULL && json_equal(body, (json_t *)pay));
        json_decref(body);
    } else if (raw) {
        char *enc = b64(j->body, j->size);
        CHECK(strcmp(enc, json_string_value(raw)) == 0);
        free(enc);
    }
}

/* The task fields a request asked for, against the task it made. */
static void check_task_as_asked(const harness_t *h, const json_t *spec, const json_t *o) {
    const engine_t *e = h->e;
    const job_t *j = engine_job_find(e, num(json_object_get(o, "id")));
    CHECK(j != NULL);
    const json_t *v;
    v = json_object_get(spec, "priority");
    CHECK(j->pri == (v ? num(v) : 1024));
    v = json_object_get(spec, "ttr");
    CHECK(j->ttr == (v ? num(v) : 60));
    v = json_object_get(spec, "max_attempts");
    const job_ext_t *x = engine_job_ext(e, j);
    CHECK((x ? x->max_attempts : 0) == (v ? num(v) : 0));
    const json_t *pay = json_object_get(spec, "payload"),
                 *raw = json_object_get(spec, "payload_base64");
    if (pay) {
        CHECK(job_flag(j, JOB_FLAG_JSON));
        json_t *body = parse_json(j->body, j->size);
        CHECK(body != NULL && json_equal(body, (json_t *)pay));
        json_decref(body);
    } else if (raw) {
        size_t n = 0;
        char *bytes = unb64(json_string_value(raw), json_string_length(raw), &n);
        CHECK(bytes != NULL); /* the server took what is not standard base64 */
        CHECK(n == j->size && memcmp(bytes, j->body, n) == 0);
        free(bytes);
    }
    /* Fresh attempts, and ready or delayed as asked (or reserved at once
     * by a waiting worker). */
    CHECK(engine_job_attempts(e, j) == (job_state(j) == JOB_RESERVED));
    const json_t *delay = json_object_get(spec, "delay"), *run_at = json_object_get(spec, "run_at");
    bool later = (delay && json_number_value(delay) >= 0.001) ||
                 (run_at && json_is_number(run_at) &&
                  json_number_value(run_at) * 1e9 > (double)h->now + 1e6);
    if (later)
        CHECK(job_state(j) == JOB_DELAYED);
    if (!delay && !run_at)
        CHECK(job_state(j) == JOB_READY || job_state(j) == JOB_RESERVED);
}

static void check_enqueued(const harness_t *h, const request_t *r, const json_t *spec,
                           const json_t *o, int status) {
    const engine_t *e = h->e;
    CHECK(json_is_object(spec));
    uint64_t id = num(json_object_get(o, "id"));
    const job_t *j = engine_job_find(e, id);
    CHECK(j != NULL);
    const tube_t *t = engine_job_tube(e, j);
    CHECK(t->name_len == r->seg_len[2] && memcmp(t->name, r->seg[2], t->name_len) == 0);
    const json_t *key = json_object_get(spec, "key");
    const json_t *oc = json_object_get(spec, "on_conflict");
    bool replace = json_is_string(oc) && strcmp(json_string_value(oc), "replace") == 0;
    CHECK(!key || json_is_string(key));
    const json_t *dedup = json_object_get(o, "deduplicated"),
                 *repl = json_object_get(o, "replaced"), *sup = json_object_get(o, "superseded");
    if (key) {
        /* The task answering holds the key now. */
        CHECK(engine_key_holder(t, json_string_value(key), json_string_length(key)) == j);
    }
    if (dedup) {
        CHECK(key && !replace && status == 200);
        return;
    }
    if (repl)
        CHECK(key && replace && status == 200);
    if (sup) {
        CHECK(key && replace && status == 201);
        const job_t *old = engine_job_find(e, num(sup));
        /* The running task carries on without its key (if it still runs). */
        if (old) {
            const job_ext_t *x = engine_job_ext(e, old);
            CHECK(!x || !x->key || engine_key_holder(t, x->key, x->key_len) != old);
        }
    }
    if (!repl)
        CHECK(status == 201);
    check_task_as_asked(h, spec, o);
}

/* ---- answers: one response ---- */

static bool error_code_ok(int status, const char *code) {
    static const struct {
        int status;
        const char *code;
    } pairs[] = {{400, "invalid_json"},  {400, "invalid_field"},      {400, "unknown_field"},
                 {400, "missing_field"}, {400, "bad_request"},        {401, "unauthorized"},
                 {404, "not_found"},     {405, "method_not_allowed"}, {409, "task_running"},
                 {409, "finished"},      {413, "too_large"},          {503, "draining"},
                 {507, "storage_full"},
                 /* push settings (docs/push.md) */
                 {400, "invalid_settings"}, {409, "conflict"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        if (pairs[i].status == status && strcmp(pairs[i].code, code) == 0)
            return true;
    return false;
}

static const char *reason(int status) {
    switch (status) {
    case 100:
        return "Continue";
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
    case 503:
        return "Service Unavailable";
    case 507:
        return "Insufficient Storage";
    }
    return NULL;
}

/* Prometheus text: comments, and samples "name{label=\"v\",...} value";
 * the documented metrics are there (those of the log when there is one). */
static void check_metrics(const char *p, size_t n, bool log) {
    static const char *const names[] = {"defer_tasks",
                                        "defer_enqueued_total",
                                        "defer_reserved_total",
                                        "defer_done_total",
                                        "defer_failed_total",
                                        "defer_cancelled_total",
                                        "defer_timeouts_total",
                                        "defer_connections",
                                        "defer_log_fsync_seconds_bucket",
                                        "defer_log_bytes",
                                        "defer_resident_memory_bytes",
                                        "defer_task_bytes",
                                        "defer_draining",
                                        NULL};
    bool seen[sizeof names / sizeof names[0]] = {false};
    const char *end = p + n;
    CHECK(n > 0 && end[-1] == '\n');
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)(eol - p);
        if (len && p[0] == '#') {
            CHECK(len > 7 && (memcmp(p, "# HELP ", 7) == 0 || memcmp(p, "# TYPE ", 7) == 0));
        } else {
            const char *q = p;
            while (q < eol && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || *q == '_' ||
                               *q == ':' || (q > p && *q >= '0' && *q <= '9')))
                q++;
            CHECK(q > p);
            for (int i = 0; names[i]; i++)
                if ((size_t)(q - p) == strlen(names[i]) &&
                    memcmp(p, names[i], (size_t)(q - p)) == 0)
                    seen[i] = true;
            if (q < eol && *q == '{') {
                /* label="value" pairs; values escape \\, \" and \n */
                q++;
                while (q < eol && *q != '}') {
                    const char *eq = memchr(q, '=', (size_t)(eol - q));
                    CHECK(eq && eq > q && eq + 1 < eol && eq[1] == '"');
                    q = eq + 2;
                    while (q < eol && *q != '"')
                        q += *q == '\\' ? 2 : 1;
                    CHECK(q < eol);
                    q++;
                    if (q < eol && *q == ',')
                        q++;
                }
                CHECK(q < eol);
                q++;
            }
            CHECK(q < eol && *q == ' ');
            q++;
            char num[64];
            CHECK(eol - q > 0 && eol - q < 64);
            memcpy(num, q, (size_t)(eol - q));
            num[eol - q] = '\0';
            char *stop;
            double v = strtod(num, &stop);
            CHECK(*stop == '\0' || strcmp(num, "+Inf") == 0);
            (void)v;
        }
        p = eol + 1;
    }
    for (int i = 0; names[i]; i++) {
        if (!log && strncmp(names[i], "defer_log_", 10) == 0)
            continue;
        if (!seen[i])
            fprintf(stderr, "fuzz_http_conn: /metrics lacks %s\n", names[i]);
        CHECK(seen[i]); /* a documented metric */
    }
}

typedef struct response {
    int status;
    bool has_length, chunked, close, date, json;
    uint64_t length;
    const char *type, *location, *allow;
    size_t type_len, location_len;
    const char *body;
    size_t body_len;
} response_t;

static bool draining(const harness_t *h) { return h->bs.draining; }

/* The status and body of r answering req (NULL: the server could not read
 * a request). */
static void check_answer(harness_t *h, slot_t *s, const request_t *req, const response_t *r) {
    const engine_t *e = h->e;
    int st = r->status;
    CHECK(st != 500); /* memory never runs out here */
    if (!req) {
        /* A request the server could not read: 400 or 413, then close. */
        CHECK(s->rd.broken);
        CHECK(st == 400 || st == 413);
        CHECK(r->close);
    } else {
        CHECK(r->close == !req->keep_alive);
    }
    json_t *body = NULL;
    if (!r->body) {
        /* A HEAD answer: the status, and the headers, are what GET gets. */
        CHECK(r->json || r->type);
    } else if (r->json) {
        body = parse_json(r->body, r->body_len);
        CHECK(body != NULL);         /* a JSON body parses */
        CHECK(json_is_object(body)); /* ... and is an object */
    }
    int m = req ? (req->method == HTTP_HEAD ? HTTP_GET : req->method) : 0;
    bool health = req && req->route == R_HEALTHZ && m == HTTP_GET;
    if (st >= 400 && !(health && st == 503) && r->body) {
        CHECK(r->json);
        CHECK(json_object_size(body) == 1);
        const json_t *err = json_object_get(body, "error");
        CHECK(json_is_object(err) && json_object_size(err) == 2);
        const json_t *code = json_object_get(err, "code"), *msg = json_object_get(err, "message");
        CHECK(json_is_string(code) && json_is_string(msg) && json_string_length(msg) > 0);
        if (!error_code_ok(st, json_string_value(code)))
            fprintf(stderr, "fuzz_http_conn: status %d with code '%s'\n", st,
                    json_string_value(code));
        CHECK(error_code_ok(st, json_string_value(code)));
        if (st == 405)
            CHECK(r->allow != NULL);
    }
    if (!req) {
        json_decref(body);
        return;
    }
    route_t rt = req->route;
    bool authorized = !h->hs.token || req->auth_ok ||
                      (req->url_len >= 8 && memcmp(req->url, "/healthz", 8) == 0 &&
                       (req->url_len == 8 || req->url[8] == '?'));
    /* 401 exactly when a required token is missing. */
    CHECK((st == 401) == !authorized);
    if (!authorized) {
        json_decref(body);
        return;
    }
    if (rt == R_UNKNOWN)
        CHECK(st == 404);
    else if (!method_ok(rt, m))
        CHECK(st == 405);
    else
        CHECK(st != 405);
    if (st == 503)
        CHECK(draining(h) && (rt == R_HEALTHZ || rt == R_TASKS || rt == R_BATCH));
    if (st == 507)
        CHECK(h->log && h->room_i != 0);
    if (st == 201)
        CHECK(rt == R_TASKS && m == HTTP_POST);
    /* JSON, but for metrics, and HEAD of the event stream (its type). */
    CHECK(r->json || (rt == R_METRICS && st == 200) || (rt == R_EVENTS && st == 200 && !r->body));
    if (rt == R_METRICS && st == 200)
        CHECK(r->type_len >= 10 && memcmp(r->type, "text/plain", 10) == 0);
    if (!r->body) {
        json_decref(body);
        return; /* HEAD: nothing more to look at */
    }
    if (st >= 300 || rt == R_UNKNOWN || !method_ok(rt, m)) {
        /* A refused enqueue or batch enqueued nothing (and took no id). */
        if (req->only && (rt == R_TASKS || rt == R_BATCH))
            CHECK(e->next_id == h->pre_next_id && e->jobs.count == h->pre_jobs);
        /* Errors that the engine's state explains. */
        uint64_t id;
        bool has_id = rt == R_TASK && parse_id(req->seg[2], req->seg_len[2], &id);
        if (req->last && has_id && st == 404)
            CHECK(!engine_job_find(e, id) && !engine_history_find(e, id, h->now));
        if (req->last && has_id && st == 409) {
            const json_t *code = json_object_get(json_object_get(body, "error"), "code");
            const job_t *j = engine_job_find(e, id);
            if (strcmp(json_string_value(code), "task_running") == 0)
                CHECK(j && job_state(j) == JOB_RESERVED);
            else /* done, or failed (its attempts ran out; kick gives it another try) */
                CHECK((j && engine_job_failed(e, j)) ||
                      (!j && engine_history_find(e, id, h->now) &&
                       engine_history_find(e, id, h->now)->end != TASK_CANCELLED));
        }
        if (req->last && (rt == R_QUEUE || rt == R_PAUSE || rt == R_RESUME) && st == 404)
            CHECK(engine_tube_find(e, req->seg[2], req->seg_len[2]) == NULL);
        json_decref(body);
        return;
    }

    /* Successful answers: their shape, and for the last request of its
     * read, the engine's state behind them. */
    switch (rt) {
    case R_HEALTHZ: {
        const json_t *v = json_object_get(body, "status");
        CHECK(json_object_size(body) == 1);
        if (req->last)
            CHECK(draining(h) ? st == 503 && str_is(v, "draining", 8)
                              : st == 200 && str_is(v, "ok", 2));
        break;
    }
    case R_METRICS:
        check_metrics(r->body, r->body_len, h->log);
        break;
    case R_STATS: {
        static const char *const top[] = {"version",
                                          "uptime_seconds",
                                          "draining",
                                          "tasks",
                                          "total_enqueued",
                                          "timeouts",
                                          "workers_waiting",
                                          "queues",
                                          "history",
                                          "connections",
                                          "memory",
                                          "log",
                                          NULL};
        for (int i = 0; top[i]; i++)
            CHECK(json_object_get(body, top[i]) != NULL);
        const json_t *tasks = json_object_get(body, "tasks");
        CHECK(json_is_object(tasks));
        const json_t *conns = json_object_get(body, "connections");
        CHECK(json_is_object(conns) && is_uint(json_object_get(conns, "http"), 1e9) &&
              is_uint(json_object_get(conns, "beanstalk"), 1e9));
        const json_t *log = json_object_get(body, "log");
        CHECK(h->log ? json_is_object(log) : json_is_null(log));
        if (req->last) {
            CHECK(num(json_object_get(tasks, "ready")) == e->count.ready);
            CHECK(num(json_object_get(tasks, "delayed")) == e->count.delayed);
            CHECK(num(json_object_get(tasks, "reserved")) == e->count.reserved);
            CHECK(num(json_object_get(tasks, "buried")) == e->count.buried);
            CHECK(num(json_object_get(tasks, "urgent")) == e->count.urgent);
            CHECK(num(json_object_get(body, "queues")) == e->ntubes);
            CHECK(num(json_object_get(body, "history")) == e->history.count);
            CHECK(num(json_object_get(conns, "http")) == h->hs.cur_conns);
            CHECK(num(json_object_get(conns, "beanstalk")) == h->bs.cur_conns);
            CHECK(json_is_boolean(json_object_get(body, "draining")) &&
                  json_is_true(json_object_get(body, "draining")) == draining(h));
        }
        break;
    }
    case R_EVENTS:
        CHECK(!"a 2xx to GET /v1/events that is not a stream");
        break;
    case R_QUEUES: {
        const json_t *qs = json_object_get(body, "queues");
        CHECK(json_is_array(qs));
        size_t i;
        json_t *q;
        json_array_foreach(qs, i, q) check_queue_shape(q);
        if (req->last) {
            CHECK(json_array_size(qs) == e->ntubes);
            json_array_foreach(qs, i, q) {
                const tube_t *t = e->tube_list[i];
                CHECK(str_is(json_object_get(q, "name"), t->name, t->name_len));
            }
        }
        break;
    }
    case R_QUEUE:
    case R_PAUSE:
    case R_RESUME: {
        check_queue_shape(body);
        CHECK(str_is(json_object_get(body, "name"), req->seg[2], req->seg_len[2]));
        if (!req->last)
            break;
        const tube_t *t = engine_tube_find(e, req->seg[2], req->seg_len[2]);
        CHECK(t != NULL);
        bool paused = t->pause_ns > 0 && t->unpause_at > h->now;
        CHECK(json_is_true(json_object_get(body, "paused")) == paused);
        CHECK(num(json_object_get(body, "ready")) == t->ready.len);
        CHECK(num(json_object_get(body, "delayed")) == t->delayed.len);
        CHECK(num(json_object_get(body, "reserved")) == t->reserved);
        CHECK(num(json_object_get(body, "failed")) == t->failed);
        CHECK(num(json_object_get(body, "buried")) + t->failed == t->buried.len);
        CHECK(num(json_object_get(body, "urgent")) == t->urgent);
        CHECK(num(json_object_get(body, "workers_waiting")) == t->waiting);
        if (rt == R_RESUME)
            CHECK(!paused);
        if (rt == R_PAUSE) {
            CHECK(paused);
            json_t *spec = req->body_len ? parse_json(req->body, req->body_len) : json_object();
            CHECK(spec != NULL);
            const json_t *secs = json_object_get(spec, "seconds");
            const json_t *left = json_object_get(body, "pause_seconds_left");
            /* The longest pause is shown as one until resumed. */
            if (secs && json_number_value(secs) < UINT32_MAX)
                CHECK(json_is_number(left) && json_number_value(left) == json_number_value(secs));
            else
                CHECK(json_is_null(left));
            json_decref(spec);
        }
        break;
    }
    case R_KICK:
        CHECK(json_object_size(body) == 1 && is_uint(json_object_get(body, "kicked"), UINT32_MAX));
        break;
    case R_TASK: {
        task_kind_t kind = check_task_shape(h, body, false);
        uint64_t id = 0;
        CHECK(parse_id(req->seg[2], req->seg_len[2], &id) &&
              num(json_object_get(body, "id")) == id);
        if (m == HTTP_DELETE) {
            CHECK(str_is(json_object_get(body, "state"), "cancelled", 9));
            if (req->last) {
                CHECK(engine_job_find(e, id) == NULL);
                const task_history_t *t = engine_history_find(e, id, h->now);
                if (e->history_max)
                    CHECK(t && t->end == TASK_CANCELLED);
            }
        } else if (kind == T_LIVE) {
            CHECK(json_object_get(body, "payload") || json_object_get(body, "payload_base64"));
        }
        if (req->last)
            check_task_against(h, body);
        break;
    }
    case R_KEY: {
        check_task_shape(h, body, false);
        CHECK(str_is(json_object_get(body, "state"), "cancelled", 9));
        CHECK(str_is(json_object_get(body, "key"), req->seg[4], req->seg_len[4]));
        CHECK(str_is(json_object_get(body, "queue"), req->seg[2], req->seg_len[2]));
        if (req->last) {
            CHECK(engine_job_find(e, num(json_object_get(body, "id"))) == NULL);
            const tube_t *t = engine_tube_find(e, req->seg[2], req->seg_len[2]);
            CHECK(!t || engine_key_holder(t, req->seg[4], req->seg_len[4]) == NULL);
        }
        break;
    }
    case R_TASKS:
        if (m == HTTP_POST) {
            CHECK(check_task_shape(h, body, true) != T_ENDED);
            char loc[64];
            int n =
                snprintf(loc, sizeof loc, "/v1/tasks/%" PRIu64, num(json_object_get(body, "id")));
            if (st == 201)
                CHECK(r->location && r->location_len == (size_t)n &&
                      memcmp(r->location, loc, (size_t)n) == 0);
            CHECK(str_is(json_object_get(body, "queue"), req->seg[2], req->seg_len[2]));
            /* Every request uses up an id, deduplicated or replacing ones
             * too. */
            if (req->only)
                CHECK(e->next_id == h->pre_next_id + 1);
            if (req->last) {
                json_t *spec = parse_json(req->body, req->body_len);
                check_enqueued(h, req, spec, body, st);
                check_task_against(h, body);
                json_decref(spec);
            }
        } else {
            const json_t *tasks = json_object_get(body, "tasks"),
                         *next = json_object_get(body, "next");
            CHECK(json_object_size(body) == 2 && json_is_array(tasks));
            size_t len = 0, i;
            const char *state = query_param(req, "state", &len);
            json_t *t;
            uint64_t prev = 0;
            json_array_foreach(tasks, i, t) {
                CHECK(check_task_shape(h, t, false) != T_ENDED); /* lists hold live tasks */
                uint64_t id = num(json_object_get(t, "id"));
                CHECK(id > prev); /* in id order */
                prev = id;
                CHECK(str_is(json_object_get(t, "queue"), req->seg[2], req->seg_len[2]));
                if (state)
                    CHECK(str_is(json_object_get(t, "state"), state, len));
                if (req->last)
                    check_task_against(h, t);
            }
            CHECK(json_is_null(next) ||
                  (json_array_size(tasks) > 0 && is_uint(next, 9e15) && num(next) == prev));
        }
        break;
    case R_BATCH: {
        const json_t *tasks = json_object_get(body, "tasks");
        CHECK(json_object_size(body) == 1 && json_is_array(tasks));
        json_t *spec = parse_json(req->body, req->body_len);
        const json_t *asked = json_object_get(spec, "tasks");
        CHECK(json_is_array(asked) && json_array_size(asked) == json_array_size(tasks));
        if (req->only)
            CHECK(e->next_id == h->pre_next_id + json_array_size(tasks));
        size_t i;
        json_t *t;
        json_array_foreach(tasks, i, t) {
            CHECK(check_task_shape(h, t, true) != T_ENDED);
            CHECK(str_is(json_object_get(t, "queue"), req->seg[2], req->seg_len[2]));
            /* Fields as asked, where no later task of the batch could
             * have changed it. */
            if (req->last && i + 1 == json_array_size(tasks) && !json_object_get(t, "deduplicated"))
                check_task_as_asked(h, json_array_get(asked, i), t);
        }
        json_decref(spec);
        break;
    }
    case R_UNKNOWN:
        break;
    }
    json_decref(body);
}

/* ---- answers: framing ---- */

static bool header_is(const char *p, size_t n, const char *name, const char **val, size_t *vlen) {
    size_t k = strlen(name);
    if (n < k + 1 || strncasecmp(p, name, k) != 0 || p[k] != ':')
        return false;
    const char *v = p + k + 1;
    while (v < p + n && *v == ' ')
        v++;
    *val = v;
    *vlen = (size_t)(p + n - v);
    return true;
}

static request_t *next_request(slot_t *s) {
    reader_t *rd = &s->rd;
    return rd->qlen ? &rd->q[rd->qhead] : NULL;
}

static void pop_request(slot_t *s) {
    reader_t *rd = &s->rd;
    request_free(&rd->q[rd->qhead]);
    rd->qhead++;
    rd->qlen--;
}

/* One response at p (whole: they are appended whole); returns its length. */
static size_t check_response(harness_t *h, slot_t *s, const char *p, size_t n) {
    const char *end = p + n;
    h->resp = p;
    h->resp_len = n;
    const char *eol = memmem(p, n, "\r\n", 2);
    CHECK(eol != NULL);
    CHECK(eol - p >= 13 && memcmp(p, "HTTP/1.1 ", 9) == 0 && p[12] == ' ');
    response_t r = {0};
    for (int i = 9; i < 12; i++) {
        CHECK(p[i] >= '0' && p[i] <= '9');
        r.status = r.status * 10 + (p[i] - '0');
    }
    const char *why = reason(r.status);
    CHECK(why != NULL); /* a status the API uses */
    CHECK((size_t)(eol - p - 13) == strlen(why) && memcmp(p + 13, why, strlen(why)) == 0);
    if (r.status == 100) {
        /* The interim answer to Expect: 100-continue, before the body. */
        CHECK((size_t)(end - eol) >= 4 && memcmp(eol, "\r\n\r\n", 4) == 0);
        CHECK(s->continues == 0);
        s->continues++;
        h->resp = NULL;
        return (size_t)(eol + 4 - p);
    }
    const char *line = eol + 2;
    for (;;) {
        CHECK(line < end);
        const char *le = memmem(line, (size_t)(end - line), "\r\n", 2);
        CHECK(le != NULL);
        size_t len = (size_t)(le - line);
        if (len == 0) {
            line = le + 2;
            break;
        }
        const char *v;
        size_t vlen;
        const char *colon = memchr(line, ':', len);
        CHECK(colon && colon > line);
        for (const char *c = line; c < colon; c++)
            CHECK(*c > 32 && *c < 127);
        CHECK(memchr(line, '\n', len) == NULL && memchr(line, '\r', len) == NULL);
        if (header_is(line, len, "content-length", &v, &vlen)) {
            CHECK(!r.has_length);
            r.has_length = true;
            const char *q = v;
            CHECK(vlen > 0 && vlen < 16);
            for (; q < v + vlen; q++) {
                CHECK(*q >= '0' && *q <= '9');
                r.length = r.length * 10 + (uint64_t)(*q - '0');
            }
        } else if (header_is(line, len, "transfer-encoding", &v, &vlen)) {
            CHECK(vlen == 7 && strncasecmp(v, "chunked", 7) == 0);
            r.chunked = true;
        } else if (header_is(line, len, "connection", &v, &vlen)) {
            CHECK(vlen == 5 && strncasecmp(v, "close", 5) == 0);
            r.close = true;
        } else if (header_is(line, len, "content-type", &v, &vlen)) {
            CHECK(!r.type);
            r.type = v;
            r.type_len = vlen;
        } else if (header_is(line, len, "location", &v, &vlen)) {
            r.location = v;
            r.location_len = vlen;
        } else if (header_is(line, len, "allow", &v, &vlen)) {
            r.allow = v;
        } else if (header_is(line, len, "date", &v, &vlen)) {
            r.date = true;
        }
        line = le + 2;
    }
    CHECK(r.type != NULL);
    r.json = r.type_len == 16 && memcmp(r.type, "application/json", 16) == 0;
    request_t *req = next_request(s);
    h->req = req;
    /* Expect: 100-continue is answered at once (before the final answer). */
    if (req)
        CHECK(s->continues == (req->expect ? 1 : 0));
    s->continues = 0;
    bool head = req && req->method == HTTP_HEAD;
    if (r.chunked) {
        /* The event stream: a 200 to GET /v1/events, chunks follow. */
        CHECK(!r.has_length && r.status == 200 && !r.close);
        CHECK(r.type_len == 20 && memcmp(r.type, "application/x-ndjson", 20) == 0);
        CHECK(req && req->route == R_EVENTS);
        CHECK(!head); /* HEAD is answered with headers only */
        CHECK(!h->hs.token || req->auth_ok);
        size_t qlen = 0;
        const char *q = query_param(req, "queue", &qlen);
        s->stream_any = q == NULL;
        if (q) {
            size_t dlen;
            char *d = pct_decode(q, qlen, &dlen);
            CHECK(d && engine_tube_name_valid(d, dlen)); /* else 400 */
            memcpy(s->stream_queue, d, dlen + 1);
            free(d);
        }
        s->streaming = true;
        s->stream_last = h->now;
        pop_request(s);
        h->req = NULL;
        h->resp = NULL;
        return (size_t)(line - p);
    }
    CHECK(r.has_length && r.date);
    /* A HEAD answer stops after the headers (Content-Length says what a GET
     * would get). */
    r.body = head ? NULL : line;
    r.body_len = head ? 0 : (size_t)r.length;
    CHECK((uint64_t)(end - line) >= r.body_len);
    h->resp_len = (size_t)(line - p) + r.body_len;
    check_answer(h, s, req, &r);
    if (req)
        pop_request(s);
    if (r.close)
        s->ended = true;
    h->req = NULL;
    h->resp = NULL;
    return (size_t)(line - p) + r.body_len;
}

static const char *event_names[] = {
    [EVENT_ENQUEUED] = "enqueued", [EVENT_RESERVED] = "reserved",   [EVENT_RELEASED] = "released",
    [EVENT_BURIED] = "buried",     [EVENT_FAILED] = "failed",       [EVENT_KICKED] = "kicked",
    [EVENT_DONE] = "done",         [EVENT_CANCELLED] = "cancelled", [EVENT_TIMED_OUT] = "timed_out",
    [EVENT_REPLACED] = "replaced",
};

/* One chunk of an event stream; returns its length. */
static size_t check_chunk(harness_t *h, slot_t *s, const char *p, size_t n) {
    const char *end = p + n;
    h->resp = p;
    h->resp_len = n;
    const char *eol = memmem(p, n, "\r\n", 2);
    CHECK(eol != NULL && eol > p && eol - p <= 8);
    uint64_t size = 0;
    for (const char *q = p; q < eol; q++) {
        int v = hexval(*q);
        CHECK(v >= 0);
        size = size * 16 + (uint64_t)v;
    }
    const char *data = eol + 2;
    CHECK((uint64_t)(end - data) >= size + 2);
    CHECK(data[size] == '\r' && data[size + 1] == '\n');
    size_t total = (size_t)(data + size + 2 - p);
    h->resp_len = total;
    if (size == 0) {
        /* The end of the stream, after an overflow notice. */
        s->ended = true;
        h->resp = NULL;
        return total;
    }
    CHECK(data[size - 1] == '\n' && memchr(data, '\n', size) == data + size - 1);
    json_t *o = parse_json(data, size);
    CHECK(json_is_object(o));
    const json_t *ev = json_object_get(o, "event");
    CHECK(json_is_string(ev));
    CHECK(s->exlen > 0); /* an event the engine did not report (to this stream) */
    expect_t *x = &s->ex[s->exhead];
    s->exhead++;
    s->exlen--;
    if (x->kind == 1) {
        CHECK(json_object_size(o) == 1 && str_is(ev, "heartbeat", 9));
    } else if (x->kind == 2) {
        CHECK(json_object_size(o) == 1 && str_is(ev, "overflow", 8));
    } else {
        const char *name = event_names[x->ev];
        CHECK(json_object_size(o) == 4);
        CHECK(str_is(ev, name, strlen(name)));
        const json_t *task = json_object_get(o, "task");
        CHECK(is_uint(task, 9e15) && num(task) == x->id);
        CHECK(str_is(json_object_get(o, "queue"), x->queue, strlen(x->queue)));
        CHECK(time_is(json_object_get(o, "time"), x->now));
    }
    json_decref(o);
    h->resp = NULL;
    return total;
}

static void hash_output(slot_t *s, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        s->out_hash = (s->out_hash ^ (unsigned char)p[i]) * 0x100000001b3ull;
    s->out_total += n;
}

static void check_http_output(harness_t *h, slot_t *s, const char *p, size_t n) {
    const char *end = p + n;
    while (p < end) {
        CHECK(!s->ended); /* nothing after the last response */
        size_t k = s->streaming ? check_chunk(h, s, p, (size_t)(end - p))
                                : check_response(h, s, p, (size_t)(end - p));
        hash_output(s, p, k);
        p += k;
    }
}

/* Validate what the connection appended since last time; past OUT_BOUND
 * the client reads everything. */
static void check_output(harness_t *h, slot_t *s) {
    CHECK(s->checked <= s->out.len);
    if (s->out.len > s->checked) {
        const char *p = buf_head(&s->out) + s->checked;
        size_t n = s->out.len - s->checked;
        if (g_trace)
            fuzz_trace_bytes("<-", s->index, p, n);
        if (s->index == BS_SLOT) {
            char where[48];
            snprintf(where, sizeof where, "script step %zu", h->step);
            bs_check_replies("fuzz_http_conn", where, h->e, BS_DEFAULT_MAX_JOB_SIZE,
                             h->log && h->room_i != 0, p, n);
            hash_output(s, p, n);
        } else {
            check_http_output(h, s, p, n);
        }
    }
    s->checked = s->out.len;
    if (s->out.len > OUT_BOUND) {
        buf_reset(&s->out);
        s->checked = 0;
    }
}

/* ---- events: what each stream must carry ---- */

static void expect_push(slot_t *s, const expect_t *x) {
    if (s->exhead + s->exlen == s->excap) {
        if (s->exhead) {
            memmove(s->ex, s->ex + s->exhead, s->exlen * sizeof *s->ex);
            s->exhead = 0;
        } else {
            s->excap = s->excap ? s->excap * 2 : 16;
            s->ex = realloc(s->ex, s->excap * sizeof *s->ex);
            CHECK(s->ex != NULL);
        }
    }
    s->ex[s->exhead + s->exlen++] = *x;
}

/* The engine's observer: note what every stream must get, then let the
 * server send it. */
static void observe(void *ctx, engine_event_t ev, uint64_t id, const tube_t *t, int64_t now) {
    harness_t *h = ctx;
    CHECK(ev >= EVENT_ENQUEUED && ev <= EVENT_REPLACED);
    CHECK(now == h->now);
    CHECK(id > 0 && id < h->e->next_id);
    for (int i = 0; i < NHTTP; i++) {
        slot_t *s = &h->slots[i];
        if (!s->hc || s->hc->state != HTTP_STREAMING)
            continue;
        CHECK(s->streaming || s->checked < s->out.len); /* its header is out */
        if (!s->stream_any && strcmp(s->stream_queue, t->name) != 0)
            continue;
        expect_t x = {.kind = 0, .ev = ev, .id = id, .now = now};
        if (s->out.len > HTTP_STREAM_OUT_MAX) {
            x.kind = 2;
        } else {
            memcpy(x.queue, t->name, t->name_len + 1);
            s->stream_last = now;
        }
        expect_push(s, &x);
    }
    http_events_observe(&h->hs, ev, id, t, now);
}

/* ---- the hosts ---- */

static void fake_bs_stats(void *ctx, bs_host_stats_t *out) {
    (void)ctx;
    out->utime_sec = 1;
    out->binlog_current_index = 3;
    out->binlog_max_size = 10485760;
}

static void fake_http_stats(void *ctx, http_host_stats_t *out) {
    harness_t *h = ctx;
    out->rss_bytes = 8425472;
    out->beanstalk_conns = h->bs.cur_conns;
    if (h->log) {
        out->log = true;
        out->log_bytes = 3145728;
        out->log_records_written = 15300;
        out->log_syncs = 5100;
        out->log_sync_us_sum = 99;
        out->log_sync_us_buckets[3] = 5100;
        out->log_compactions = 2;
        out->log_current_segment = 14;
        out->log_space_low = h->room_i != 0;
    }
}

/* The log's room: plenty; none for puts (the disk is nearly full); a
 * little; none. */
static size_t fake_room(void *ctx, bool for_put) {
    harness_t *h = ctx;
    switch (h->room_i) {
    case 0:
        return SIZE_MAX;
    case 1:
        return for_put ? 0 : 100000;
    case 2:
        return 600;
    default:
        return 0;
    }
}

static void on_wake(void *ctx) {
    slot_t *s = ctx;
    harness_t *h = s->h;
    CHECK(s->hc != NULL || s->bc != NULL);
    CHECK(h->freeing != s); /* a connection being freed is not woken */
    if (s->bc) {
        /* A connection's own commands never answer its own wait. */
        CHECK(h->feeding != s);
        CHECK(!s->bc->session->waiting && s->bc->state == BS_WANT_LINE);
    } else {
        /* Only streams are woken: an event or their end. */
        CHECK(s->hc->state != HTTP_READING);
    }
    s->dirty = true; /* only record: the engine is in the middle of something */
}

static bool conn_closed(const slot_t *s) {
    return s->bc ? bs_conn_closed(s->bc) : http_conn_closed(s->hc);
}

static bool conn_waiting(const slot_t *s) { return s->bc && bs_conn_waiting(s->bc); }

static bool limited(const harness_t *h, const slot_t *s) {
    if (s->bc)
        return h->bs.out_limit && s->out.len >= h->bs.out_limit;
    return s->out.len >= h->hs.out_limit;
}

static void slot_open(harness_t *h, slot_t *s) {
    if (s->index == BS_SLOT) {
        s->bc = bs_conn_new(&h->bs, &s->out, on_wake, s);
        CHECK(s->bc != NULL);
        h->bs_opens++;
    } else {
        s->hc = http_conn_new(&h->hs, &s->out, on_wake, s);
        CHECK(s->hc != NULL);
        h->http_opens++;
        reader_init(s);
    }
    s->eof = s->streaming = s->ended = false;
    s->checked = 0;
    s->exhead = s->exlen = 0;
}

static void slot_close(harness_t *h, slot_t *s) {
    check_output(h, s);
    h->freeing = s;
    if (s->bc) {
        bs_conn_free(s->bc, h->now);
        s->bc = NULL;
    } else {
        /* Closed by the server: it said so (Connection: close or the
         * stream's end), unless the client went first. */
        if (http_conn_closed(s->hc) && !s->eof)
            CHECK(s->ended);
        http_conn_free(s->hc);
        s->hc = NULL;
        reader_reset(&s->rd);
    }
    h->freeing = NULL;
    buf_free(&s->in);
    buf_free(&s->out);
    s->checked = 0;
    s->eof = s->dirty = s->streaming = s->ended = false;
    s->exhead = s->exlen = 0;
}

/* Feed an exact-size copy (overreads are caught). */
static size_t do_feed(harness_t *h, slot_t *s, const char *p, size_t n) {
    char *copy = malloc(n);
    CHECK(copy != NULL);
    memcpy(copy, p, n);
    size_t used;
    h->feeding = s;
    if (s->bc) {
        bool was_waiting = bs_conn_waiting(s->bc);
        used = bs_conn_feed(s->bc, copy, n, h->now);
        if (was_waiting)
            CHECK(used == 0);
        CHECK(bs_conn_waiting(s->bc) == s->bc->session->waiting);
    } else {
        bool reading = s->hc->state == HTTP_READING;
        h->pre_next_id = h->e->next_id;
        h->pre_jobs = h->e->jobs.count;
        uint64_t before = s->rd.completed;
        used = http_conn_feed(s->hc, copy, n, h->now);
        /* The harness reads what the server consumed (a stream's client
         * sends nothing the server reads). */
        if (reading)
            reader_feed(s, copy, used);
        if (s->rd.completed > before) {
            request_t *r = &s->rd.q[s->rd.qhead + s->rd.qlen - 1];
            r->last = true;
            r->only = s->rd.completed == before + 1;
        }
        h->requests += s->rd.completed - before;
    }
    h->feeding = NULL;
    free(copy);
    CHECK(used <= n);
    /* Less is consumed only by a connection that is closed, waiting
     * (beanstalk), held back by the output limit, or that has just begun
     * an event stream (whose client's bytes it then discards). */
    if (used < n)
        CHECK(conn_closed(s) || conn_waiting(s) || limited(h, s) ||
              (s->hc && s->hc->state == HTTP_STREAMING));
    check_output(h, s);
    return used;
}

static void slot_turn(harness_t *h, slot_t *s) {
    if (!s->hc && !s->bc)
        return;
    for (;;) {
        if (s->eof && conn_waiting(s)) {
            bs_conn_eof(s->bc);
            CHECK(!bs_conn_waiting(s->bc) && !s->bc->session->waiting);
        }
        if (!s->in.len || conn_closed(s) || conn_waiting(s))
            break;
        size_t used = do_feed(h, s, buf_head(&s->in), s->in.len);
        buf_consume(&s->in, used);
        if (used == 0 && !(s->eof && conn_waiting(s)))
            break;
    }
    check_output(h, s);
    if (conn_closed(s) || (s->eof && !s->in.len && !conn_waiting(s)))
        slot_close(h, s);
}

/* ---- the whole ---- */

static void check_engine(harness_t *h) {
    session_t *sessions[1];
    const job_t *pending[1];
    size_t ns = 0, np = 0;
    const bs_conn_t *c = h->slots[BS_SLOT].bc;
    if (c) {
        sessions[ns++] = c->session;
        CHECK(c->session->waiting == (c->state == BS_WAITING));
        CHECK(c->state != BS_CLOSED);
        CHECK((c->in_job != NULL) == (c->state == BS_WANT_BODY));
        if (c->in_job)
            pending[np++] = c->in_job;
    }
    char where[48];
    snprintf(where, sizeof where, "script step %zu", h->step);
    engine_check_opts_t o = {
        .who = "fuzz_http_conn",
        .context = where,
        .sessions = sessions,
        .nsessions = ns,
        .pending = pending,
        .npending = np,
        .live = true,
        .now = h->now,
        .created_min = BASE_NOW,
    };
    engine_check(h->e, &o);
}

static void check_all(harness_t *h, bool full) {
    uint32_t http_conns = 0, streams = 0;
    for (int i = 0; i < NSLOTS; i++) {
        slot_t *s = &h->slots[i];
        CHECK(!s->dirty);
        if (!s->hc && !s->bc) {
            CHECK(s->in.len == 0 && s->out.len == 0 && !s->eof);
            continue;
        }
        /* Closed connections are freed at their turn. */
        CHECK(!conn_closed(s));
        /* Input left over waits for something that will come: a wake-up
         * (the wait's answer) or the client reading its output. */
        if (s->in.len)
            CHECK(conn_waiting(s) || limited(h, s));
        if (s->eof)
            CHECK(s->in.len > 0 || conn_waiting(s));
        if (s->hc) {
            http_conns++;
            CHECK(s->hc->state == HTTP_READING || s->hc->state == HTTP_STREAMING);
            if (s->hc->state == HTTP_STREAMING) {
                streams++;
                CHECK(s->streaming && s->exlen == 0); /* every event was sent */
            }
            /* Every request read was answered. */
            CHECK(s->rd.qlen == 0);
        }
    }
    uint32_t listed = 0;
    for (const http_conn_t *c = h->hs.streams; c; c = c->stream_next) {
        CHECK(++listed <= streams);
        CHECK(c->state == HTTP_STREAMING);
        CHECK(!c->stream_next || c->stream_next->stream_prev == c);
    }
    CHECK(listed == streams);
    CHECK(h->hs.cur_conns == http_conns);
    CHECK(h->hs.total_conns == h->http_opens);
    CHECK(h->hs.requests == h->requests);
    CHECK(h->bs.cur_conns == (h->slots[BS_SLOT].bc != NULL));
    CHECK(h->bs.total_conns == h->bs_opens);
    uint64_t cost = h->e->jobs.count + h->e->ntubes + h->e->history.count + 16;
    if (full || h->check_work + cost <= CHECK_BUDGET) {
        h->check_work += cost;
        check_engine(h);
    }
}

static void settle(harness_t *h) {
    for (unsigned round = 0;; round++) {
        CHECK(round < 1000000);
        bool any = false;
        for (int i = 0; i < NSLOTS; i++) {
            slot_t *s = &h->slots[i];
            if (!s->dirty)
                continue;
            s->dirty = false;
            any = true;
            slot_turn(h, s);
        }
        if (!any)
            break;
    }
    check_all(h, false);
}

static void read_event(harness_t *h, slot_t *s, const uint8_t *p, size_t n) {
    size_t used = 0;
    if (s->in.len == 0)
        used = do_feed(h, s, (const char *)p, n);
    if (used < n)
        CHECK(buf_append(&s->in, p + used, n - used));
    s->dirty = true;
}

static void deliver(harness_t *h, const uint8_t *p, size_t n) {
    slot_t *s = &h->slots[h->cur];
    if (n == 0 || h->fed >= FEED_BUDGET || h->reads >= MAX_READS)
        return;
    if ((s->hc || s->bc) && s->eof) {
        slot_close(h, s);
        settle(h);
    }
    if (!s->hc && !s->bc)
        slot_open(h, s);
    size_t piece = h->split ? h->split : n;
    for (size_t off = 0; off < n; off += piece) {
        size_t k = n - off < piece ? n - off : piece;
        if (h->fed >= FEED_BUDGET || h->reads >= MAX_READS)
            break;
        h->fed += k;
        h->reads++;
        if (g_trace)
            fuzz_trace_bytes("->", s->index, (const char *)p + off, k);
        read_event(h, s, p + off, k);
        /* Between the pieces of one chunk only this connection runs (see
         * fuzz_bs_conn.c: it keeps the two deliveries comparable). */
        while ((s->hc || s->bc) && s->dirty) {
            s->dirty = false;
            slot_turn(h, s);
        }
        if (!s->hc && !s->bc)
            break;
    }
    settle(h);
}

/* The script's chunks (script.c): one read, or several (~b). */
static bool deliver_data(void *ctx, const uint8_t *p, size_t n) {
    harness_t *h = ctx;
    deliver(h, p, n);
    return h->fed < FEED_BUDGET && h->reads < MAX_READS;
}

/* Time passes: what the engine's timer and the server's once-a-second
 * housekeeping do. */
static void advance_to(harness_t *h, int64_t to) {
    if (to > MAX_NOW)
        to = MAX_NOW;
    if (to > h->now)
        h->now = to;
    engine_tick(h->e, h->now);
    CHECK(engine_next_deadline(h->e) > h->now);
    engine_update_rates(h->e, h->now);
    engine_expire_history(h->e, h->now);
    for (int i = 0; i < NHTTP; i++) {
        slot_t *s = &h->slots[i];
        if (s->hc && s->hc->state == HTTP_STREAMING &&
            h->now - s->stream_last >= HTTP_HEARTBEAT_NS) {
            expect_t x = {.kind = 1};
            expect_push(s, &x);
            s->stream_last = h->now;
            s->dirty = true;
        }
    }
    http_server_tick(&h->hs, h->now);
    settle(h);
}

static void control(void *ctx, uint8_t op, uint8_t arg) {
    harness_t *h = ctx;
    slot_t *s = &h->slots[h->cur];
    if (g_trace)
        fprintf(stderr, "step %zu: ~%c %u (now +%.2fs)\n", h->step, op, arg,
                (double)(h->now - BASE_NOW) / 1e9);
    switch (op) {
    case '0':
    case '1':
    case '2':
    case '3':
        h->cur = op - '0';
        break;
    case 'b':
        if (!h->whole_reads)
            h->split = arg;
        h->split_used |= arg != 0;
        break;
    case 't':
        advance_to(h, h->now + fuzz_step_ns(arg));
        break;
    case 'T':
    case 'U': {
        int64_t at = engine_next_deadline(h->e);
        advance_to(h, at == ENGINE_NEVER ? h->now : op == 'T' ? at : at - 1);
        break;
    }
    case 'e':
        if ((s->hc || s->bc) && !s->eof) {
            s->eof = true;
            if (s->bc)
                bs_conn_eof(s->bc);
            else
                http_conn_eof(s->hc);
            s->dirty = true;
            settle(h);
        }
        break;
    case 'x':
        if (s->hc || s->bc) {
            slot_close(h, s);
            settle(h);
        }
        break;
    case 'r':
        if (s->hc || s->bc) {
            check_output(h, s);
            buf_reset(&s->out);
            s->checked = 0;
            s->dirty = true;
            settle(h);
        }
        break;
    case 'd':
        h->bs.draining = !h->bs.draining;
        break;
    case 'l':
        h->limit_i = (h->limit_i + 1) % 3;
        h->hs.out_limit = http_limits[h->limit_i];
        h->bs.out_limit = bs_limits[h->limit_i];
        for (int i = 0; i < NSLOTS; i++)
            h->slots[i].dirty = h->slots[i].hc || h->slots[i].bc;
        settle(h);
        break;
    case 'f':
        h->room_i = (h->room_i + 1) % 4;
        break;
    default:
        break;
    }
}

static void run_script(const uint8_t *data, size_t size, bool whole_reads, script_digest_t *d) {
    harness_t *h = calloc(1, sizeof *h);
    CHECK(h != NULL);
    g_h = h;
    h->whole_reads = whole_reads;
    h->e = engine_new();
    CHECK(h->e != NULL);
    uint8_t cfg = size ? data[0] : 0;
    static const uint64_t hist_max[] = {10000, 3, 0, 10000};
    static const int64_t hist_age[] = {86400, 86400, 0, 10};
    engine_set_history(h->e, hist_max[cfg & 3], hist_age[cfg & 3] * NS_PER_SEC);
    h->now = BASE_NOW;
    h->log = cfg & 0x80;
    h->max_job_size = job_sizes[(cfg >> 5) & 3];

    bs_server_init(&h->bs, h->e);
    h->bs.started_at = BASE_NOW;
    h->bs.version = "fuzz";
    h->bs.host_stats = fake_bs_stats;
    h->bs.max_job_size = h->max_job_size;
    http_server_init(&h->hs, h->e);
    h->hs.draining = &h->bs.draining;
    h->hs.max_job_size = h->max_job_size;
    h->hs.max_body = max_bodies[(cfg >> 3) & 3];
    h->hs.out_limit = HTTP_OUT_DEFAULT;
    h->hs.host_stats = fake_http_stats;
    h->hs.host_ctx = h;
    h->hs.version = "fuzz";
    h->hs.started_at = BASE_NOW;
    if (cfg & 4) {
        h->hs.token = strdup(TOKEN);
        CHECK(h->hs.token != NULL);
        h->hs.token_len = strlen(TOKEN);
    }
    if (h->log) {
        h->hs.log_room = fake_room;
        h->bs.log_room = fake_room;
        h->bs.host_ctx = h;
    }
    engine_set_observer(h->e, observe, h);
    engine_update_rates(h->e, h->now);
    for (int i = 0; i < NSLOTS; i++) {
        h->slots[i].h = h;
        h->slots[i].index = i;
        h->slots[i].out_hash = 0xcbf29ce484222325ull;
        buf_init(&h->slots[i].in);
        buf_init(&h->slots[i].out);
    }
    static const script_ops_t ops = {.deliver = deliver_data, .control = control};
    if (size > 1)
        script_run(data + 1, size - 1, "bRtc", &ops, h, &h->step);
    check_all(h, true);
    script_digest_engine(d, h->e);

    /* Tear down: every connection goes, then the servers and the engine. */
    h->step++;
    for (int k = 0; k < NSLOTS; k++)
        if (h->slots[k].hc || h->slots[k].bc) {
            h->slots[k].eof = true; /* the client goes: no "close" owed */
            slot_close(h, &h->slots[k]);
        }
    for (int k = 0; k < NSLOTS; k++)
        h->slots[k].dirty = false;
    check_all(h, true);
    CHECK(h->e->count.reserved == 0 && h->e->count.waiting == 0 && h->hs.streams == NULL);
    for (int k = 0; k < NSLOTS; k++) {
        check_output(h, &h->slots[k]);
        d->out_hash[k] = h->slots[k].out_hash;
        d->out_total[k] = h->slots[k].out_total;
    }
    d->split_used = h->split_used;
    d->truncated = h->fed >= FEED_BUDGET || h->reads >= MAX_READS;

    bs_server_free(&h->bs);
    http_server_free(&h->hs);
    engine_free(h->e);
    for (int k = 0; k < NSLOTS; k++) {
        buf_free(&h->slots[k].in);
        buf_free(&h->slots[k].out);
        reader_free(&h->slots[k].rd);
        free(h->slots[k].ex);
    }
    free(h);
    g_h = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    g_trace = getenv("FUZZ_TRACE") != NULL;
    script_run_twice("fuzz_http_conn", data, size, NSLOTS, run_script, g_trace);
    return 0;
}
