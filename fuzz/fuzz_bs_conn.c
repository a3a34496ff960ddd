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
 * is left with input it could consume and no wake-up to consume it; engine
 * counters equal what the tubes and sessions hold; every heap is ordered
 * and its jobs know their position; tube reference counts, using/watching
 * counts and waiter lists match the sessions; timers are armed exactly
 * when something is due; an unpaused tube never has both ready jobs and
 * waiting sessions. At the end everything is freed, so LeakSanitizer sees
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
#include "proto/bs_conn.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSLOTS 3
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

/* What a run of a script produced, to compare two deliveries of it. */
typedef struct digest {
    uint64_t out_hash[NSLOTS], out_total[NSLOTS];
    uint64_t next_id, ready, delayed, buried, reserved, total_jobs;
    bool split_used; /* the script asked for reads in pieces (~b) */
    bool truncated;  /* it hit FEED_BUDGET or MAX_READS */
} digest_t;

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
    uint8_t *last; /* the last chunk, unexpanded (see expand) */
    size_t last_len;
    uint64_t counter; /* for ~# */
    int limit_i, size_i;
    /* scratch for check_engine */
    uint64_t ck_jobs, ck_bytes;
};

static const size_t out_limits[] = {0, 1, 200};
static const uint32_t job_sizes[] = {BS_DEFAULT_MAX_JOB_SIZE, 16, 0};

static harness_t *g_h; /* for failure messages */
static int g_trace;

static void trace_bytes(const char *what, int slot, const char *p, size_t n) {
    fprintf(stderr, "[%d] %s \"", slot, what);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '\r')
            fputs("\\r", stderr);
        else if (ch == '\n')
            fputs("\\n", stderr);
        else if (ch < 32 || ch > 126 || ch == '"' || ch == '\\')
            fprintf(stderr, "\\x%02x", ch);
        else
            fputc(ch, stderr);
    }
    fputs("\"\n", stderr);
}

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

/* ---- reply validation ---- */

static bool starts(const char *p, size_t n, const char *w) {
    size_t k = strlen(w);
    return n >= k && memcmp(p, w, k) == 0;
}

/* A decimal without sign or leading zeros, up to end or the first
 * non-digit. */
static bool read_dec(const char **p, const char *end, uint64_t *v) {
    const char *q = *p;
    uint64_t x = 0;
    if (q == end || *q < '0' || *q > '9')
        return false;
    if (*q == '0' && q + 1 < end && q[1] >= '0' && q[1] <= '9')
        return false;
    for (; q < end && *q >= '0' && *q <= '9'; q++) {
        if (x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(*q - '0');
    }
    *p = q;
    *v = x;
    return true;
}

static const char *const plain_replies[] = {
    "BURIED",        "KICKED",      "DELETED",     "RELEASED",        "TOUCHED",
    "PAUSED",        "NOT_FOUND",   "NOT_IGNORED", "BAD_FORMAT",      "UNKNOWN_COMMAND",
    "JOB_TOO_BIG",   "EXPECTED_CRLF", "DRAINING",  "TIMED_OUT",       "DEADLINE_SOON",
};

/* p[0..n) must be a sequence of whole replies: they are appended whole, so
 * between two calls into the protocol no reply is ever cut. Memory never
 * runs out here, so OUT_OF_MEMORY is a bug too. */
static void check_replies(const harness_t *h, const char *p, size_t n) {
    const char *end = p + n;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        CHECK(eol != NULL); /* a reply line cut short */
        size_t len = (size_t)(eol - p);
        const char *next = eol + 2;
        const char *q;
        uint64_t a, b;
        if (starts(p, len, "RESERVED ") || starts(p, len, "FOUND ")) {
            q = p + (p[0] == 'R' ? 9 : 6);
            CHECK(read_dec(&q, eol, &a) && a > 0 && a < h->e->next_id);
            CHECK(q < eol && *q == ' ');
            q++;
            CHECK(read_dec(&q, eol, &b) && q == eol && b <= BS_DEFAULT_MAX_JOB_SIZE);
            CHECK((uint64_t)(end - next) >= b + 2);
            CHECK(next[b] == '\r' && next[b + 1] == '\n');
            next += b + 2;
        } else if (starts(p, len, "OK ")) {
            q = p + 3;
            CHECK(read_dec(&q, eol, &b) && q == eol);
            CHECK((uint64_t)(end - next) >= b + 2);
            CHECK(b >= 4 && memcmp(next, "---\n", 4) == 0);
            CHECK(next[b] == '\r' && next[b + 1] == '\n');
            CHECK(memmem(next, b, "\r\n", 2) == NULL);
            next += b + 2;
        } else if (starts(p, len, "INSERTED ") || starts(p, len, "BURIED ")) {
            q = p + (p[0] == 'I' ? 9 : 7);
            CHECK(read_dec(&q, eol, &a) && q == eol && a > 0 && a < h->e->next_id);
        } else if (starts(p, len, "WATCHING ")) {
            q = p + 9;
            CHECK(read_dec(&q, eol, &a) && q == eol && a >= 1);
        } else if (starts(p, len, "KICKED ")) {
            q = p + 7;
            CHECK(read_dec(&q, eol, &a) && q == eol && a <= UINT32_MAX);
        } else if (starts(p, len, "USING ")) {
            CHECK(engine_tube_name_valid(p + 6, len - 6));
        } else {
            bool known = false;
            for (size_t i = 0; i < sizeof plain_replies / sizeof plain_replies[0]; i++)
                if (len == strlen(plain_replies[i]) && memcmp(p, plain_replies[i], len) == 0)
                    known = true;
            if (!known) {
                fprintf(stderr, "fuzz_bs_conn: unexpected reply '%.*s'\n", (int)len, p);
                CHECK(known);
            }
        }
        p = next;
    }
}

/* Validate what the connection appended since last time; past OUT_BOUND
 * the client reads everything. */
static void check_output(harness_t *h, slot_t *s) {
    CHECK(s->checked <= s->out.len);
    if (s->out.len > s->checked) { /* (an empty buf_t has no data pointer) */
        const char *p = buf_head(&s->out) + s->checked;
        if (g_trace)
            trace_bytes("<-", s->index, p, s->out.len - s->checked);
        check_replies(h, p, s->out.len - s->checked);
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

static bool by_pri(const job_t *a, const job_t *b) {
    return a->pri < b->pri || (a->pri == b->pri && a->id < b->id);
}

static bool by_deadline(const job_t *a, const job_t *b) {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->id < b->id);
}

static void check_job(const harness_t *h, const job_t *j) {
    const engine_t *e = h->e;
    CHECK(j->id > 0 && j->id < e->next_id);
    CHECK(idmap_get(&e->jobs, j->id) == j);
    CHECK(j->ttr >= 1);
    CHECK(j->tube < e->tube_table_len && e->tube_table[j->tube] != NULL);
    CHECK(j->created >= BASE_NOW && j->created <= h->now);
}

static void check_job_heap(const harness_t *h, const heap_t *hp, job_state_t st,
                           bool (*less)(const job_t *, const job_t *), const tube_t *t) {
    CHECK(hp->len <= hp->cap);
    for (uint32_t i = 0; i < hp->len; i++) {
        const job_t *j = hp->items[i];
        check_job(h, j);
        CHECK(job_state(j) == st);
        CHECK(job_pos(j) == i);
        if (t)
            CHECK(j->tube == t->index);
        if (i)
            CHECK(!less(j, hp->items[(i - 1) / 2]));
    }
}

static void check_timer(const engine_t *e, const engine_timer_t *tm, int64_t want,
                        const void *owner, bool is_tube) {
    CHECK(tm->owner == owner && tm->is_tube == is_tube);
    if (want == ENGINE_NEVER) {
        CHECK(!tm->armed);
        return;
    }
    CHECK(tm->armed);
    CHECK(tm->at == want);
    CHECK(tm->pos < e->timers.len && e->timers.items[tm->pos] == tm);
}

static const slot_t *slot_of_session(const harness_t *h, const session_t *s) {
    for (int i = 0; i < NSLOTS; i++)
        if (h->slots[i].c && h->slots[i].c->session == s)
            return &h->slots[i];
    return NULL;
}

static bool visit_job(void *value, void *arg) {
    harness_t *h = arg;
    const job_t *j = value;
    check_job(h, j);
    const tube_t *t = h->e->tube_table[j->tube];
    uint32_t pos = job_pos(j);
    switch (job_state(j)) {
    case JOB_READY:
        CHECK(pos < t->ready.len && t->ready.items[pos] == j);
        break;
    case JOB_DELAYED:
        CHECK(pos < t->delayed.len && t->delayed.items[pos] == j);
        break;
    case JOB_BURIED:
        CHECK(pos < t->buried.len && t->buried.items[pos] == j);
        break;
    case JOB_RESERVED: {
        int holders = 0;
        for (int i = 0; i < NSLOTS; i++)
            if (h->slots[i].c && engine_session_holds(h->slots[i].c->session, j))
                holders++;
        CHECK(holders == 1);
        break;
    }
    }
    h->ck_jobs++;
    h->ck_bytes += j->size;
    return true;
}

static void check_engine(harness_t *h) {
    const engine_t *e = h->e;
    uint32_t n = e->tube_table_len;

    CHECK(e->ntubes >= 1);
    CHECK(e->tube_table_len <= e->tube_cap);
    CHECK(e->ntubes + e->nfree == e->tube_table_len);
    CHECK(e->tubes_by_name.count == e->ntubes);
    CHECK(engine_tube_find(e, "default", 7) == e->default_tube);
    uint32_t live = 0;
    for (uint32_t i = 0; i < n; i++)
        if (e->tube_table[i]) {
            live++;
            CHECK(e->tube_table[i]->index == i);
        }
    CHECK(live == e->ntubes);
    for (uint32_t k = 0; k < e->nfree; k++)
        CHECK(e->free_slots[k] < n && e->tube_table[e->free_slots[k]] == NULL);

    /* What each tube should be referenced by, from the sessions' side. */
    uint64_t *jobs_in = calloc(n ? n : 1, sizeof *jobs_in);
    uint64_t *using = calloc(n ? n : 1, sizeof *using);
    uint64_t *watching = calloc(n ? n : 1, sizeof *watching);
    uint64_t *reserved = calloc(n ? n : 1, sizeof *reserved);
    CHECK(jobs_in && using && watching && reserved);

    uint64_t nwaiting = 0, nreserved = 0, armed = 0;
    for (int i = 0; i < NSLOTS; i++) {
        const slot_t *sl = &h->slots[i];
        if (!sl->c)
            continue;
        const bs_conn_t *c = sl->c;
        const session_t *s = c->session;
        CHECK(s != NULL);
        CHECK(s->use && s->use->index < n && e->tube_table[s->use->index] == s->use);
        using[s->use->index]++;
        CHECK(s->nwatch >= 1 && s->nwatch <= s->capwatch);
        for (uint32_t k = 0; k < s->nwatch; k++) {
            const tube_t *t = s->watch[k].tube;
            CHECK(t && t->index < n && e->tube_table[t->index] == t);
            watching[t->index]++;
            for (uint32_t m = 0; m < k; m++)
                CHECK(s->watch[m].tube != t);
            if (s->waiting) {
                const waiter_t *w = &s->watch[k].node;
                CHECK(w->session == s);
                CHECK(w->prev && w->next && w->prev->next == w && w->next->prev == w);
            }
        }
        check_job_heap(h, &s->reserved, JOB_RESERVED, by_deadline, NULL);
        for (uint32_t k = 0; k < s->reserved.len; k++) {
            const job_t *j = s->reserved.items[k];
            reserved[j->tube]++;
            jobs_in[j->tube]++;
        }
        nreserved += s->reserved.len;
        CHECK(s->waiting == (c->state == BS_WAITING));
        if (s->waiting)
            nwaiting++;
        int64_t at = ENGINE_NEVER;
        const job_t *top = s->reserved.len ? s->reserved.items[0] : NULL;
        if (top)
            at = s->waiting ? top->deadline - DEADLINE_MARGIN : top->deadline;
        if (s->waiting && s->wait_until < at)
            at = s->wait_until;
        check_timer(e, &s->timer, at, s, false);
        armed += at != ENGINE_NEVER;

        /* The connection's own state. */
        CHECK(c->state >= BS_WANT_LINE && c->state <= BS_CLOSED);
        CHECK(c->state != BS_CLOSED); /* closed ones are freed at their turn */
        CHECK(c->line_len < BS_LINE_MAX);
        CHECK(c->line_len == 0 || c->state == BS_WANT_LINE);
        CHECK((c->in_job != NULL) == (c->state == BS_WANT_BODY));
        if (c->in_job) {
            const job_t *j = c->in_job;
            CHECK(j->id > 0 && j->id < e->next_id && idmap_get(&e->jobs, j->id) == NULL);
            CHECK(j->tube < n && e->tube_table[j->tube] != NULL);
            CHECK(c->in_read < (uint64_t)j->size + 2);
            CHECK(j->size <= BS_DEFAULT_MAX_JOB_SIZE);
            jobs_in[j->tube]++;
        }
        if (c->state == BS_DISCARD)
            CHECK(c->discard_left > 0 && c->discard_reply != NULL);
        CHECK(c->producer || !c->in_job);
    }

    uint64_t ready = 0, delayed = 0, buried = 0, urgent = 0;
    for (uint32_t i = 0; i < e->ntubes; i++) {
        const tube_t *t = e->tube_list[i];
        CHECK(t && t->list_pos == i);
        CHECK(t->index < n && e->tube_table[t->index] == t);
        CHECK(strlen(t->name) == t->name_len);
        CHECK(engine_tube_name_valid(t->name, t->name_len));
        CHECK(engine_tube_find(e, t->name, t->name_len) == t);

        check_job_heap(h, &t->ready, JOB_READY, by_pri, t);
        check_job_heap(h, &t->delayed, JOB_DELAYED, by_deadline, t);
        check_job_heap(h, &t->buried, JOB_BURIED, by_deadline, t);
        uint64_t u = 0;
        for (uint32_t k = 0; k < t->ready.len; k++)
            u += ((const job_t *)t->ready.items[k])->pri < URGENT_PRI;
        CHECK(t->urgent == u);
        urgent += u;
        ready += t->ready.len;
        delayed += t->delayed.len;
        buried += t->buried.len;
        jobs_in[t->index] += (uint64_t)t->ready.len + t->delayed.len + t->buried.len;

        /* Waiters: waiting sessions watching this tube, each once. */
        uint32_t w = 0;
        const waiter_t *head = &t->waiters;
        CHECK(head->next->prev == head && head->prev->next == head);
        for (const waiter_t *node = head->next; node != head; node = node->next) {
            CHECK(++w <= NSLOTS);
            CHECK(node->next->prev == node);
            const session_t *s = node->session;
            CHECK(slot_of_session(h, s) != NULL);
            CHECK(s->waiting);
            bool found = false;
            for (uint32_t k = 0; k < s->nwatch; k++)
                if (s->watch[k].tube == t && &s->watch[k].node == node)
                    found = true;
            CHECK(found);
        }
        CHECK(t->waiting == w);
        /* The engine's matching invariant. */
        if (t->pause_ns == 0)
            CHECK(!(t->ready.len && t->waiting));

        int64_t at = ENGINE_NEVER;
        if (t->delayed.len)
            at = ((const job_t *)t->delayed.items[0])->deadline;
        if (t->pause_ns > 0 && t->unpause_at < at)
            at = t->unpause_at;
        check_timer(e, &t->timer, at, t, true);
        armed += at != ENGINE_NEVER;
    }
    for (uint32_t i = 0; i < e->ntubes; i++) {
        const tube_t *t = e->tube_list[i];
        uint32_t x = t->index;
        CHECK(t->reserved == reserved[x]);
        CHECK(t->using == using[x]);
        CHECK(t->watching == watching[x]);
        uint64_t want = jobs_in[x] + using[x] + watching[x] + (t == e->default_tube);
        if (t->refs != want) {
            fprintf(stderr, "fuzz_bs_conn: tube '%s' refs %u, expected %llu\n", t->name,
                    (unsigned)t->refs, (unsigned long long)want);
            CHECK(t->refs == want);
        }
    }
    free(jobs_in);
    free(using);
    free(watching);
    free(reserved);

    CHECK(e->count.ready == ready);
    CHECK(e->count.delayed == delayed);
    CHECK(e->count.buried == buried);
    CHECK(e->count.urgent == urgent);
    CHECK(e->count.reserved == nreserved);
    CHECK(e->count.waiting == nwaiting);
    CHECK(e->jobs.count == ready + delayed + buried + nreserved);

    h->ck_jobs = h->ck_bytes = 0;
    idmap_each(&e->jobs, visit_job, h);
    CHECK(h->ck_jobs == e->jobs.count);
    CHECK(h->ck_bytes == e->count.job_bytes);

    CHECK(e->timers.len == armed);
    for (uint32_t i = 0; i < e->timers.len; i++) {
        const engine_timer_t *tm = e->timers.items[i];
        CHECK(tm->armed && tm->pos == i);
        if (i)
            CHECK(tm->at >= ((const engine_timer_t *)e->timers.items[(i - 1) / 2])->at);
    }
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
            trace_bytes("->", s->index, (const char *)p + off, k);
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

/* A chunk is kept as the script wrote it, with "~~" for '~' and "~#" for
 * the counter; this makes the bytes to send. */
static void deliver_chunk(harness_t *h, const uint8_t *t, size_t n) {
    size_t cap = n * 10 + 1, len = 0;
    uint8_t *out = malloc(cap);
    CHECK(out != NULL);
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '~' && i + 1 < n && t[i + 1] == '#') {
            len += (size_t)snprintf((char *)out + len, cap - len, "%llu",
                                    (unsigned long long)h->counter++);
            i++;
        } else if (t[i] == '~') {
            out[len++] = '~';
            i++;
        } else {
            out[len++] = t[i];
        }
    }
    deliver(h, out, len);
    free(out);
}

static void flush_chunk(harness_t *h, uint8_t *chunk, size_t *len) {
    if (!*len)
        return;
    deliver_chunk(h, chunk, *len);
    uint8_t *p = realloc(h->last, *len);
    CHECK(p != NULL);
    memcpy(p, chunk, *len);
    h->last = p;
    h->last_len = *len;
    *len = 0;
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

static int64_t step_ns(uint8_t b) {
    if (b < 64)
        return (int64_t)b * (NS_PER_SEC / 20);
    if (b < 128)
        return (int64_t)(b - 63) * NS_PER_SEC;
    if (b < 192)
        return (int64_t)(b - 127) * 60 * NS_PER_SEC;
    return (int64_t)(b - 191) * 86400 * NS_PER_SEC;
}

static void control(harness_t *h, uint8_t op, uint8_t arg) {
    slot_t *s = &h->slots[h->cur];
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
    case 'R':
        for (unsigned k = 0; k <= arg && h->fed < FEED_BUDGET && h->reads < MAX_READS; k++)
            deliver_chunk(h, h->last, h->last_len);
        break;
    case 't':
        advance_to(h, h->now + step_ns(arg));
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
    case 'c':
        h->counter = arg;
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

static bool takes_arg(uint8_t op) {
    return op == 'b' || op == 'R' || op == 't' || op == 'c';
}

static void run_script(const uint8_t *data, size_t size, bool whole_reads, digest_t *d) {
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
    h->counter = 1;
    for (int i = 0; i < NSLOTS; i++) {
        h->slots[i].h = h;
        h->slots[i].index = i;
        h->slots[i].out_hash = 0xcbf29ce484222325ull;
        buf_init(&h->slots[i].in);
        buf_init(&h->slots[i].out);
    }
    uint8_t *chunk = malloc(size + 1);
    CHECK(chunk != NULL);
    size_t clen = 0;

    size_t i = 0;
    while (i < size) {
        uint8_t b = data[i++];
        if (b != '~') {
            chunk[clen++] = b;
            continue;
        }
        if (i >= size)
            break;
        uint8_t op = data[i++];
        if (op == '~' || op == '#') {
            chunk[clen++] = '~';
            chunk[clen++] = op;
            continue;
        }
        uint8_t arg = 0;
        if (takes_arg(op) && i < size)
            arg = data[i++];
        flush_chunk(h, chunk, &clen);
        h->step++;
        if (g_trace)
            fprintf(stderr, "step %zu: ~%c %u (now +%.2fs)\n", h->step, op, arg,
                    (double)(h->now - BASE_NOW) / 1e9);
        control(h, op, arg);
    }
    flush_chunk(h, chunk, &clen);
    check_all(h, true);
    d->next_id = h->e->next_id;
    d->ready = h->e->count.ready;
    d->delayed = h->e->count.delayed;
    d->buried = h->e->count.buried;
    d->reserved = h->e->count.reserved;
    d->total_jobs = h->e->count.total_jobs;

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
    free(h->last);
    free(chunk);
    free(h);
    g_h = NULL;
}

/* How a client's data is cut into reads must not change anything it sees:
 * a script that asked for small pieces (~b) is run again with whole reads,
 * and every connection's output, byte for byte, must be the same. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    g_trace = getenv("FUZZ_TRACE") != NULL;
    digest_t split = {0}, whole = {0};
    run_script(data, size, false, &split);
    if (!split.split_used || split.truncated)
        return 0;
    if (g_trace)
        fprintf(stderr, "== the same script with whole reads\n");
    run_script(data, size, true, &whole);
    if (whole.truncated)
        return 0;
    for (int k = 0; k < NSLOTS; k++) {
        if (split.out_hash[k] != whole.out_hash[k] || split.out_total[k] != whole.out_total[k]) {
            fprintf(stderr,
                    "fuzz_bs_conn: connection %d answered differently when its input came in "
                    "pieces (%llu bytes of output) than in whole reads (%llu bytes); run with "
                    "FUZZ_TRACE=1 to compare\n",
                    k, (unsigned long long)split.out_total[k],
                    (unsigned long long)whole.out_total[k]);
            abort();
        }
    }
    CHECK(split.next_id == whole.next_id && split.ready == whole.ready &&
          split.delayed == whole.delayed && split.buried == whole.buried &&
          split.reserved == whole.reserved && split.total_jobs == whole.total_jobs);
    return 0;
}
