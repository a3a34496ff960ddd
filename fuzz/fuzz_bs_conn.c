/* fuzz_bs_conn.c - libFuzzer harness for the beanstalk protocol layer and
 * the engine under it.
 *
 * One engine, one bs_server and up to NSLOTS client connections, driven
 * the way src/net/conn.c drives them (feed a read directly, keep what is
 * not consumed, feed it again when the connection is woken, its output is
 * read, or the client half-closes), with time passed in explicitly.
 *
 * The input is a script: plain bytes are protocol data for the current
 * connection; '~' starts a control sequence. Data collected since the last
 * control sequence is delivered as one read (or several, see "~b") when
 * the next control sequence or the end of input comes.
 *
 *   ~~      a literal '~' in the data
 *   ~#      in the data: a number, one more each time it is sent (from 1),
 *           so that a repeated read can say "delete ~#" or "watch t~#"
 *   ~c B    set that number to B
 *   ~0 ~1 ~2  make connection 0, 1 or 2 current
 *   ~|      nothing but a read boundary (split the data here)
 *   ~b B    deliver later reads in pieces of B bytes (0: whole)
 *   ~R B    deliver the last read again, B+1 times
 *   ~t B    advance the clock (B<64: B*50ms; <128: 1..64 s; <192: 1..64 min;
 *           else 1..64 days), then engine_tick
 *   ~T      jump the clock to the engine's next deadline, tick
 *   ~U      jump the clock to 1 ns before the next deadline, tick
 *   ~e      the client half-closes (EOF); the connection ends once its
 *           input is used up
 *   ~x      the connection drops (freed at once, whatever its state)
 *   ~r      the client reads all its output
 *   ~d      toggle drain mode
 *   ~l      cycle the output limit (back-pressure): 0, 1, 200 bytes
 *   ~z      cycle max-job-size: 65535, 16, 0
 *   other   like ~|
 * A connection is opened when data is first sent to a closed slot; data
 * sent to a half-closed one opens a new connection in its place.
 *
 * Limits keep executions fast: FEED_BUDGET bytes and MAX_READS reads per
 * input (later data is dropped), and the engine-wide check below runs after
 * every step only until CHECK_BUDGET work is spent, then at the end.
 *
 * After every step it checks, among others: every output buffer holds only
 * whole, well-formed replies; a connection that did not consume all it was
 * fed is waiting, closed, or held back by the output limit; no connection
 * is left with input it could consume and no wake-up to consume it; each
 * connection's own state (line, put body, discard, waiting) is consistent;
 * and the engine's invariants (engine_check.c, given the connections'
 * sessions and half-read puts): engine counters equal what the tubes and
 * sessions hold; every heap is ordered and its jobs know their position;
 * tube reference counts, using/watching counts and waiter lists match the
 * sessions; timers are armed exactly when something is due; an unpaused
 * tube never has both ready jobs and waiting sessions; history and task
 * extensions agree. At the end everything is freed, so LeakSanitizer sees
 * real leaks.
 *
 * Also: cutting a connection's data into smaller reads must change nothing.
 * A script that used ~b is run a second time with whole reads, and every
 * connection's output must be the same byte for byte.
 *
 * With FUZZ_TRACE=1 in the environment it prints the script's steps and
 * every connection's output to stderr (for reading a reproducer). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"
#include "bs_replies.h"
#include "engine_check.h"
#include "harness_util.h"
#include "script.h"
#include "proto/bs_conn.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSLOTS 3
_Static_assert(NSLOTS <= SCRIPT_MAX_CONNS, "script.h compares this many");
/* A realistic wall clock (Nov 2023), and a bound on how far the script may
 * move it, so that now + u32 seconds stays far from int64 overflow. */
#define BASE_NOW (INT64_C(1700000000) * NS_PER_SEC)
#define MAX_NOW (BASE_NOW + INT64_C(100000000) * NS_PER_SEC)
/* Bytes delivered per input, repeats included: keeps executions fast. */
#define FEED_BUDGET (256 * 1024)
/* Reads per input, repeats and small pieces included. */
#define MAX_READS 16384
/* Output beyond this is read by the client automatically. */
#define OUT_BOUND (1 << 20)
/* The full engine check costs about (jobs + tubes); past this much work
 * per input it runs only at the end, so huge scripts stay fast. The cheap
 * per-connection checks always run. */
#define CHECK_BUDGET 60000

typedef struct harness harness_t;

typedef struct slot {
    harness_t *h;
    int index;
    bs_conn_t *c; /* NULL: no connection */
    buf_t out;    /* what the connection wrote, unread by the client */
    size_t checked; /* bytes of out already validated */
    buf_t in;     /* received, not consumed yet */
    bool eof;
    bool dirty; /* needs a turn (woken, new input, output read) */
    uint64_t out_hash, out_total; /* of everything this slot ever wrote */
} slot_t;

struct harness {
    engine_t *e;
    bs_server_t srv;
    slot_t slots[NSLOTS];
    int64_t now;
    int cur;
    size_t split;
    size_t fed;
    size_t reads;
    uint64_t check_work;
    uint32_t opens;
    size_t step;
    bool whole_reads; /* ignore ~b */
    bool split_used;
    const slot_t *feeding; /* inside bs_conn_feed of this slot */
    const slot_t *freeing; /* inside bs_conn_free of this slot */
    int limit_i, size_i;
};

static const size_t out_limits[] = {0, 1, 200};
static const uint32_t job_sizes[] = {BS_DEFAULT_MAX_JOB_SIZE, 16, 0};

static harness_t *g_h; /* for failure messages */
static int g_trace;

static void fail(const char *what, int line) {
    fprintf(stderr, "fuzz_bs_conn: invariant failed at %s:%d (script step %zu): %s\n",
            __FILE__, line, g_h ? g_h->step : 0, what);
    abort();
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail(#cond, __LINE__);                                                                 \
    } while (0)

/* ---- reply validation (bs_replies.c) ---- */

/* Validate what the connection appended since last time; past OUT_BOUND
 * the client reads everything. */
static void check_output(harness_t *h, slot_t *s) {
    CHECK(s->checked <= s->out.len);
    if (s->out.len > s->checked) { /* (an empty buf_t has no data pointer) */
        const char *p = buf_head(&s->out) + s->checked;
        if (g_trace)
            fuzz_trace_bytes("<-", s->index, p, s->out.len - s->checked);
        char where[48];
        snprintf(where, sizeof where, "script step %zu, connection %d", h->step, s->index);
        bs_check_replies("fuzz_bs_conn", where, h->e, BS_DEFAULT_MAX_JOB_SIZE, false, p,
                         s->out.len - s->checked);
        for (size_t i = 0; i < s->out.len - s->checked; i++)
            s->out_hash = (s->out_hash ^ (unsigned char)p[i]) * 0x100000001b3ull;
        s->out_total += s->out.len - s->checked;
    }
    s->checked = s->out.len;
    if (s->out.len > OUT_BOUND) {
        buf_reset(&s->out);
        s->checked = 0;
    }
}

/* ---- engine and server invariants ---- */

/* The connections' own state, then the engine's invariants (shared with
 * the other harnesses: engine_check.c), given the sessions and the puts
 * whose body is being read. */
static void check_engine(harness_t *h) {
    const engine_t *e = h->e;
    session_t *sessions[NSLOTS];
    const job_t *pending[NSLOTS];
    size_t ns = 0, np = 0;
    for (int i = 0; i < NSLOTS; i++) {
        const bs_conn_t *c = h->slots[i].c;
        if (!c)
            continue;
        CHECK(c->session != NULL);
        sessions[ns++] = c->session;
        CHECK(c->session->waiting == (c->state == BS_WAITING));
        CHECK(c->state >= BS_WANT_LINE && c->state <= BS_CLOSED);
        CHECK(c->state != BS_CLOSED); /* closed ones are freed at their turn */
        CHECK(c->line_len < BS_LINE_MAX);
        CHECK(c->line_len == 0 || c->state == BS_WANT_LINE);
        CHECK((c->in_job != NULL) == (c->state == BS_WANT_BODY));
        if (c->in_job) {
            const job_t *j = c->in_job;
            CHECK(c->in_read < (uint64_t)j->size + 2);
            CHECK(j->size <= BS_DEFAULT_MAX_JOB_SIZE);
            pending[np++] = j;
        }
        if (c->state == BS_DISCARD)
            CHECK(c->discard_left > 0 && c->discard_reply != NULL);
        CHECK(c->producer || !c->in_job);
    }
    char where[48];
    snprintf(where, sizeof where, "script step %zu", h->step);
    engine_check_opts_t o = {
        .who = "fuzz_bs_conn",
        .context = where,
        .sessions = sessions,
        .nsessions = ns,
        .pending = pending,
        .npending = np,
        .live = true,
        .now = h->now,
        .created_min = BASE_NOW,
    };
    engine_check(e, &o);
}

static void check_all(harness_t *h, bool full) {
    uint32_t conns = 0, producers = 0, workers = 0;
    for (int i = 0; i < NSLOTS; i++) {
        slot_t *s = &h->slots[i];
        CHECK(!s->dirty);
        if (!s->c) {
            CHECK(s->in.len == 0 && s->out.len == 0 && !s->eof);
            continue;
        }
        const bs_conn_t *c = s->c;
        conns++;
        producers += c->producer;
        workers += c->worker;
        CHECK(bs_conn_waiting(c) == c->session->waiting);
        /* After a half-close a wait is answered at once. */
        CHECK(!(s->eof && bs_conn_waiting(c)));
        /* Input left over must be blocked by something that will send a
         * wake-up (the wait's answer) or that the client controls (reading
         * its output). Anything else is a connection stuck forever. */
        bool limited = h->srv.out_limit && s->out.len >= h->srv.out_limit;
        if (s->in.len)
            CHECK(bs_conn_waiting(c) || (limited && c->state == BS_WANT_LINE));
        if (s->eof)
            CHECK(s->in.len > 0);
    }
    CHECK(h->srv.cur_conns == conns);
    CHECK(h->srv.cur_producers == producers);
    CHECK(h->srv.cur_workers == workers);
    CHECK(h->srv.total_conns == h->opens);
    uint64_t cost = h->e->jobs.count + h->e->ntubes + 16;
    if (full || h->check_work + cost <= CHECK_BUDGET) {
        h->check_work += cost;
        check_engine(h);
    }
}

/* ---- the host: connections, reads, turns ---- */

static void fake_host_stats(void *ctx, bs_host_stats_t *out) {
    (void)ctx;
    out->utime_sec = 1;
    out->utime_usec = 999999;
    out->binlog_current_index = 3;
    out->binlog_max_size = 10485760;
}

static void on_wake(void *ctx) {
    slot_t *s = ctx;
    harness_t *h = s->h;
    CHECK(s->c != NULL);
    /* A connection's own commands never answer its own wait, and a
     * connection being freed is not woken. */
    CHECK(h->feeding != s);
    CHECK(h->freeing != s);
    CHECK(!s->c->session->waiting);
    CHECK(s->c->state == BS_WANT_LINE);
    /* Only record: the engine is in the middle of an operation. */
    s->dirty = true;
}

static void slot_open(harness_t *h, slot_t *s) {
    s->c = bs_conn_new(&h->srv, &s->out, on_wake, s);
    CHECK(s->c != NULL);
    h->opens++;
    s->eof = false;
    s->checked = 0;
}

static void slot_close(harness_t *h, slot_t *s) {
    check_output(h, s);
    h->freeing = s;
    bs_conn_free(s->c, h->now);
    h->freeing = NULL;
    s->c = NULL;
    buf_free(&s->in);
    buf_free(&s->out);
    s->checked = 0;
    s->eof = false;
    s->dirty = false;
}

/* bs_conn_feed on an exact-size copy, so overreads are caught. */
static size_t do_feed(harness_t *h, slot_t *s, const char *p, size_t n) {
    bs_conn_t *c = s->c;
    char *copy = malloc(n);
    CHECK(copy != NULL);
    memcpy(copy, p, n);
    bool was_waiting = bs_conn_waiting(c);
    h->feeding = s;
    size_t used = bs_conn_feed(c, copy, n, h->now);
    h->feeding = NULL;
    free(copy);
    CHECK(used <= n);
    if (was_waiting)
        CHECK(used == 0);
    if (used < n) {
        bool limited = h->srv.out_limit && s->out.len >= h->srv.out_limit;
        CHECK(c->state == BS_WAITING || c->state == BS_CLOSED ||
              (c->state == BS_WANT_LINE && limited));
    }
    CHECK(bs_conn_waiting(c) == c->session->waiting);
    check_output(h, s);
    return used;
}

/* As net_conn_turn: feed buffered input while it is consumed, answer a
 * wait of a half-closed client, close when done. */
static void slot_turn(harness_t *h, slot_t *s) {
    if (!s->c)
        return;
    for (;;) {
        if (s->eof && bs_conn_waiting(s->c)) {
            bs_conn_eof(s->c);
            CHECK(!bs_conn_waiting(s->c) && !s->c->session->waiting);
        }
        if (!s->in.len || bs_conn_closed(s->c) || bs_conn_waiting(s->c))
            break;
        size_t used = do_feed(h, s, buf_head(&s->in), s->in.len);
        buf_consume(&s->in, used);
        if (used == 0 && !(s->eof && bs_conn_waiting(s->c)))
            break;
    }
    check_output(h, s);
    if (bs_conn_closed(s->c) || (s->eof && !s->in.len && !bs_conn_waiting(s->c)))
        slot_close(h, s);
}

/* Give every connection that needs one a turn, until none does. */
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

/* As on_read: feed directly when nothing is buffered, keep the rest. */
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
    if (s->c && s->eof) {
        /* A new client in the place of the half-closed one. */
        slot_close(h, s);
        settle(h);
    }
    if (!s->c)
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
        /* Between the pieces of one chunk only this connection runs; the
         * others (woken meanwhile) get their turn after it, exactly as if
         * the chunk had come in one read - which makes the two deliveries
         * comparable (see LLVMFuzzerTestOneInput). */
        while (s->c && s->dirty) {
            s->dirty = false;
            slot_turn(h, s);
        }
        if (!s->c)
            break; /* closed (quit): the rest of the stream is dropped */
    }
    settle(h);
}

/* The script's chunks (script.c): one read, or several (~b). */
static bool deliver_data(void *ctx, const uint8_t *p, size_t n) {
    harness_t *h = ctx;
    deliver(h, p, n);
    return h->fed < FEED_BUDGET && h->reads < MAX_READS;
}

static void advance_to(harness_t *h, int64_t to) {
    if (to > MAX_NOW)
        to = MAX_NOW;
    if (to > h->now)
        h->now = to;
    engine_tick(h->e, h->now);
    /* Everything due has fired; nothing re-armed in the past. */
    CHECK(engine_next_deadline(h->e) > h->now);
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
    case 'T': {
        int64_t at = engine_next_deadline(h->e);
        advance_to(h, at == ENGINE_NEVER ? h->now : at);
        break;
    }
    case 'U': {
        int64_t at = engine_next_deadline(h->e);
        advance_to(h, at == ENGINE_NEVER ? h->now : at - 1);
        break;
    }
    case 'e':
        if (s->c && !s->eof) {
            s->eof = true;
            bs_conn_eof(s->c);
            s->dirty = true;
            settle(h);
        }
        break;
    case 'x':
        if (s->c) {
            slot_close(h, s);
            settle(h);
        }
        break;
    case 'r':
        if (s->c) {
            check_output(h, s);
            buf_reset(&s->out);
            s->checked = 0;
            s->dirty = true;
            settle(h);
        }
        break;
    case 'd':
        h->srv.draining = !h->srv.draining;
        break;
    case 'l':
        h->limit_i = (h->limit_i + 1) % 3;
        h->srv.out_limit = out_limits[h->limit_i];
        /* Only the harness changes the limit: let every connection try. */
        for (int i = 0; i < NSLOTS; i++)
            h->slots[i].dirty = h->slots[i].c != NULL;
        settle(h);
        break;
    case 'z':
        h->size_i = (h->size_i + 1) % 3;
        h->srv.max_job_size = job_sizes[h->size_i];
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
    bs_server_init(&h->srv, h->e);
    h->now = BASE_NOW;
    h->srv.started_at = BASE_NOW;
    h->srv.version = "fuzz";
    h->srv.host_stats = fake_host_stats;
    for (int i = 0; i < NSLOTS; i++) {
        h->slots[i].h = h;
        h->slots[i].index = i;
        h->slots[i].out_hash = 0xcbf29ce484222325ull;
        buf_init(&h->slots[i].in);
        buf_init(&h->slots[i].out);
    }
    static const script_ops_t ops = {.deliver = deliver_data, .control = control};
    script_run(data, size, "bRtc", &ops, h, &h->step);
    check_all(h, true);
    script_digest_engine(d, h->e);

    /* Tear down: every connection goes away (which may answer others'
     * waits), then the engine must hold only jobs. */
    h->step++;
    for (int k = 0; k < NSLOTS; k++)
        if (h->slots[k].c)
            slot_close(h, &h->slots[k]);
    for (int k = 0; k < NSLOTS; k++)
        h->slots[k].dirty = false;
    check_all(h, true);
    CHECK(h->e->count.reserved == 0 && h->e->count.waiting == 0);
    CHECK(h->srv.cur_conns == 0);
    for (int k = 0; k < NSLOTS; k++) {
        check_output(h, &h->slots[k]);
        d->out_hash[k] = h->slots[k].out_hash;
        d->out_total[k] = h->slots[k].out_total;
    }
    d->split_used = h->split_used;
    d->truncated = h->fed >= FEED_BUDGET || h->reads >= MAX_READS;

    bs_server_free(&h->srv);
    engine_free(h->e);
    for (int k = 0; k < NSLOTS; k++) {
        buf_free(&h->slots[k].in);
        buf_free(&h->slots[k].out);
    }
    free(h);
    g_h = NULL;
}

/* How a client's data is cut into reads must not change anything it sees:
 * a script that asked for small pieces (~b) is run again with whole reads,
 * and every connection's output, byte for byte, must be the same. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    g_trace = getenv("FUZZ_TRACE") != NULL;
    script_run_twice("fuzz_bs_conn", data, size, NSLOTS, run_script, g_trace);
    return 0;
}
