/* dispatch.c - the push dispatcher (see dispatch.h).
 *
 * State per queue (pusher_t): its settings, its target, an engine session,
 * the attempts running, and a token bucket for the rate limit. One libuv
 * timer serves the whole dispatcher: it wakes the loop for the earliest of
 * an attempt's deadline, a rate-limited queue's next token, and the end of
 * the shutdown grace period. Attempts start only at the end of a loop turn
 * (dispatch_end_turn), never from inside an engine callback.
 *
 * Settings changes do not disturb running attempts: a target is
 * reference-counted (target_gen_t), and attempts keep the one they started
 * with until they end. */
#include "dispatch/dispatch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/targets.h"
#include "util/clock.h"
#include "util/json_out.h"
#include "util/log.h"
#include "util/panic.h"

typedef struct target_gen {
    push_target_ref_t ref;
    uint32_t refs; /* the pusher while it is current, plus its attempts */
} target_gen_t;

typedef struct pusher pusher_t;

typedef struct attempt {
    pusher_t *p;
    target_gen_t *gen;
    push_attempt_t *handle;
    uint64_t task_id;
    uint32_t number;
    int64_t started;
    int64_t limit;       /* ns: the deadline's length */
    int64_t deadline_at; /* ns */
    uint32_t heap_pos;   /* in the dispatcher's deadline heap, while in it */
    bool in_heap;
    bool aborted;        /* abort() was called: a deadline, or shutdown */
    bool timed_out;      /* ... because of its deadline */
    bool handed_back;    /* ... because of shutdown: leave the task reserved */
    struct attempt *prev, *next;
} attempt_t;

struct pusher {
    dispatch_t *d;
    char *queue;
    size_t queue_len;
    push_settings_t set;
    bool fixed;          /* from the config file */
    target_gen_t *gen;   /* NULL: no longer pushing (attempts may still run) */
    session_t *session;
    uint64_t handed_id;  /* reserved for us by a waiting reserve; start it */
    attempt_t *running;
    uint32_t nrunning;
    double tokens;       /* the rate limit's bucket */
    int64_t tokens_at;
    int64_t wake_at;     /* waiting for a token until then; 0: not */
    bool failing;        /* the last attempt failed (logged once per run of failures) */
    uint64_t started_total, succeeded_total, failed_total, timed_out_total, gave_up_total;
    double seconds_total; /* of ended attempts */
    pusher_t *next;
};

struct dispatch {
    uv_loop_t *loop;
    engine_t *engine;
    config_t file;
    pusher_t *pushers;
    heap_t deadlines; /* running attempts by deadline_at */
    uv_timer_t timer;
    int64_t timer_at; /* INT64_MAX: not armed */
    uint64_t random;  /* xorshift state, for backoff jitter */
    bool stopping;
    int64_t grace_at;
    bool grace_over;
    void (*stopped)(void *ctx);
    void *stopped_ctx;
};

static void arm_timer(dispatch_t *d);
static void maybe_stopped(dispatch_t *d);
static void pushers_free(dispatch_t *d);

/* ---- targets ---- */

static void gen_unref(target_gen_t *g) {
    if (g && --g->refs == 0) {
        g->ref.ops->free(g->ref.target);
        free(g);
    }
}

static target_gen_t *gen_new(dispatch_t *d, const push_settings_t *s, char *err, size_t errlen) {
    target_gen_t *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!targets_open(d->loop, s, &g->ref, err, errlen)) {
        free(g);
        return NULL;
    }
    g->refs = 1;
    return g;
}

/* ---- pushers ---- */

static void on_session_event(void *owner, session_event_t ev, const job_t *job) {
    pusher_t *p = owner;
    /* Only note it: the engine is mid-operation. The turn's end starts it. */
    if (ev == SESSION_RESERVED && job)
        p->handed_id = job->id;
}

static pusher_t *pusher_find(const dispatch_t *d, const char *queue, size_t len) {
    for (pusher_t *p = d->pushers; p; p = p->next)
        if (p->queue_len == len && memcmp(p->queue, queue, len) == 0)
            return p;
    return NULL;
}

static pusher_t *pusher_new(dispatch_t *d, const char *queue, size_t len) {
    pusher_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->d = d;
    p->queue = malloc(len + 1);
    p->session = engine_session_new(d->engine, on_session_event, p);
    uint32_t n;
    bool ok = p->queue && p->session &&
              engine_watch(d->engine, p->session, queue, len, &n) == ENGINE_OK;
    /* Watch this queue alone. */
    if (ok && !(len == 7 && memcmp(queue, "default", 7) == 0))
        ok = engine_ignore(d->engine, p->session, "default", 7, &n) == ENGINE_OK;
    if (!ok) {
        if (p->session)
            engine_session_free(d->engine, p->session, clock_now_ns());
        free(p->queue);
        free(p);
        return NULL;
    }
    memcpy(p->queue, queue, len);
    p->queue[len] = '\0';
    p->queue_len = len;
    settings_init(&p->set);
    p->next = d->pushers;
    d->pushers = p;
    return p;
}

static void pusher_free(dispatch_t *d, pusher_t *p) {
    pusher_t **pp = &d->pushers;
    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    /* A task handed to us but not started goes back to ready with the
     * session. */
    engine_session_free(d->engine, p->session, clock_now_ns());
    gen_unref(p->gen);
    settings_free(&p->set);
    free(p->queue);
    free(p);
}

/* Give p (new) settings and a target. Running attempts keep the old one. */
static bool pusher_apply(pusher_t *p, const push_settings_t *s, bool fixed, char *err,
                         size_t errlen) {
    push_settings_t copy;
    if (!settings_copy(&copy, s)) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    target_gen_t *g = gen_new(p->d, s, err, errlen);
    if (!g) {
        settings_free(&copy);
        return false;
    }
    gen_unref(p->gen);
    p->gen = g;
    settings_free(&p->set);
    p->set = copy;
    p->fixed = fixed;
    p->tokens = s->burst;
    p->tokens_at = clock_now_ns();
    p->wake_at = 0;
    return true;
}

/* Stop pushing p's queue; p goes once its attempts have ended. */
static void pusher_retire(dispatch_t *d, pusher_t *p) {
    gen_unref(p->gen);
    p->gen = NULL;
    p->wake_at = 0;
    if (p->session->waiting)
        engine_cancel_wait(d->engine, p->session);
    if (!p->nrunning)
        pusher_free(d, p);
}

/* ---- the rate limit ---- */

static bool token_ready(pusher_t *p, int64_t now) {
    if (p->set.rate <= 0)
        return true;
    double add = (double)(now - p->tokens_at) / (double)NS_PER_SEC * p->set.rate;
    p->tokens_at = now;
    if (add > 0) {
        p->tokens += add;
        if (p->tokens > p->set.burst)
            p->tokens = p->set.burst;
    }
    if (p->tokens >= 1)
        return true;
    p->wake_at = now + (int64_t)((1 - p->tokens) / p->set.rate * (double)NS_PER_SEC) + 1;
    return false;
}

/* ---- attempts ---- */

static bool deadline_less(const void *a, const void *b) {
    const attempt_t *x = a, *y = b;
    return x->deadline_at < y->deadline_at;
}

static void deadline_setpos(void *item, uint32_t pos) {
    ((attempt_t *)item)->heap_pos = pos;
}

static void deadline_forget(dispatch_t *d, attempt_t *a) {
    if (a->in_heap) {
        heap_remove(&d->deadlines, a->heap_pos);
        a->in_heap = false;
    }
}

static double random_unit(dispatch_t *d) {
    uint64_t x = d->random;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    d->random = x;
    return (double)(x >> 11) / 9007199254740992.0; /* [0, 1) */
}

static void describe_seconds(char *out, size_t len, int64_t ns) {
    if (ns % NS_PER_SEC == 0)
        snprintf(out, len, "%" PRId64 " s", ns / NS_PER_SEC);
    else
        snprintf(out, len, "%.3f s", (double)ns / (double)NS_PER_SEC);
}

/* The attempt has ended: apply its outcome to the task. */
static void on_attempt_done(void *ctx, const push_result_t *res) {
    attempt_t *a = ctx;
    pusher_t *p = a->p;
    dispatch_t *d = p->d;
    engine_t *e = d->engine;
    int64_t now = clock_now_ns();

    deadline_forget(d, a);
    if (a->prev)
        a->prev->next = a->next;
    else
        p->running = a->next;
    if (a->next)
        a->next->prev = a->prev;
    p->nrunning--;
    p->seconds_total += (double)(now - a->started) / (double)NS_PER_SEC;

    /* An attempt that ended well is done, even if an abort crossed its
     * end: running it again would repeat finished work. */
    if (res->ok) {
        p->succeeded_total++;
        if (p->failing)
            log_msg("queue %s: attempts succeed again", p->queue);
        p->failing = false;
        if (engine_delete(e, p->session, a->task_id, now) != ENGINE_OK)
            log_msg("queue %s: task %" PRIu64 " succeeded but was no longer held (its "
                    "reservation ended first)", p->queue, a->task_id);
    } else if (a->handed_back) {
        /* Shutdown: the task stays reserved and is ready again once the
         * session ends (and after a restart: it was never logged as
         * anything but ready). */
    } else {
        char reason[PUSH_REASON_MAX + 64];
        if (a->timed_out) {
            char limit[32];
            describe_seconds(limit, sizeof limit, a->limit);
            snprintf(reason, sizeof reason, "deadline of %s passed; %s", limit,
                     res->reason[0] ? res->reason : "aborted");
            p->timed_out_total++;
        } else {
            snprintf(reason, sizeof reason, "%s", res->reason[0] ? res->reason : "failed");
            p->failed_total++;
        }
        if (!p->failing)
            log_msg("queue %s: task %" PRIu64 " attempt %u failed: %s (further failures are "
                    "not logged until one succeeds)", p->queue, a->task_id, a->number, reason);
        p->failing = true;
        int64_t wait = settings_backoff(&p->set, a->number, random_unit(d));
        engine_result_t r = engine_attempt_failed(e, p->session, a->task_id, reason,
                                                  p->set.max_attempts, now + wait, now);
        if (r == ENGINE_BURIED)
            p->gave_up_total++;
        else if (r == ENGINE_NOT_FOUND)
            log_msg("queue %s: task %" PRIu64 " failed but was no longer held", p->queue,
                    a->task_id);
        log_debug("queue %s: task %" PRIu64 " attempt %u: %s; %s", p->queue, a->task_id,
                  a->number, reason, r == ENGINE_BURIED ? "no attempts left: failed" : "retry");
    }
    gen_unref(a->gen);
    free(a);
    if (!p->gen && !p->nrunning)
        pusher_free(d, p);
    if (d->stopping)
        maybe_stopped(d);
    else
        arm_timer(d);
}

static void attempt_start(pusher_t *p, job_t *j, int64_t now) {
    dispatch_t *d = p->d;
    attempt_t *a = calloc(1, sizeof *a);
    if (!a)
        defer_panic("out of memory starting a push attempt");
    a->p = p;
    a->gen = p->gen;
    a->gen->refs++;
    a->task_id = j->id;
    a->number = engine_job_attempts(d->engine, j);
    a->started = now;
    a->limit = p->set.deadline_ns ? p->set.deadline_ns : (int64_t)j->ttr * NS_PER_SEC;
    a->deadline_at = now + a->limit;
    if (!heap_insert(&d->deadlines, a))
        defer_panic("out of memory starting a push attempt");
    a->in_heap = true;
    engine_hold(d->engine, p->session, j->id, a->deadline_at + DISPATCH_HOLD_MARGIN);
    a->next = p->running;
    if (p->running)
        p->running->prev = a;
    p->running = a;
    p->nrunning++;
    p->started_total++;
    push_request_t req = {
        .task_id = j->id,
        .queue = p->queue,
        .attempt = a->number,
        .body = j->body,
        .body_len = j->size,
        .body_is_json = job_flag(j, JOB_FLAG_JSON),
    };
    a->handle = a->gen->ref.ops->start(a->gen->ref.target, &req, on_attempt_done, a);
}

static void attempt_abort(attempt_t *a) {
    if (a->aborted)
        return;
    a->aborted = true;
    /* A target that could not start the attempt has its done() queued. */
    if (a->handle)
        a->gen->ref.ops->abort(a->handle);
}

/* ---- the turn ---- */

static void pusher_pump(pusher_t *p, int64_t now) {
    dispatch_t *d = p->d;
    engine_t *e = d->engine;
    if (p->handed_id) {
        job_t *j = engine_job_find(e, p->handed_id);
        p->handed_id = 0;
        if (j && engine_session_holds(p->session, j)) {
            token_ready(p, now); /* it was there when the wait began */
            p->tokens -= p->set.rate > 0;
            attempt_start(p, j, now);
        }
    }
    p->wake_at = 0;
    while (p->nrunning < p->set.concurrency && !p->session->waiting && token_ready(p, now)) {
        job_t *j;
        /* Wait (no timeout) when nothing is ready: the engine hands the
         * next task over through on_session_event. */
        if (engine_reserve(e, p->session, -1, now, &j) != ENGINE_OK)
            break;
        p->tokens -= p->set.rate > 0;
        attempt_start(p, j, now);
    }
}

void dispatch_end_turn(dispatch_t *d, int64_t now) {
    if (d->stopping)
        return;
    for (pusher_t *p = d->pushers; p; p = p->next)
        if (p->gen)
            pusher_pump(p, now);
    arm_timer(d);
}

static void on_timer(uv_timer_t *h) {
    dispatch_t *d = h->data;
    int64_t now = clock_now_ns();
    d->timer_at = INT64_MAX;
    attempt_t *a;
    while ((a = heap_top(&d->deadlines)) && a->deadline_at <= now) {
        deadline_forget(d, a);
        a->timed_out = true;
        attempt_abort(a);
    }
    if (d->stopping && !d->grace_over && now >= d->grace_at) {
        d->grace_over = true;
        uint32_t n = 0;
        for (pusher_t *p = d->pushers; p; p = p->next)
            for (attempt_t *x = p->running; x; x = x->next, n++) {
                x->handed_back = true;
                attempt_abort(x);
            }
        if (n)
            log_msg("grace period over: %u attempts stopped; their tasks run again after the "
                    "restart", n);
    }
    /* Rate-limited queues whose token is due are served by the end of
     * this turn, which sets their next wake-up. */
    for (pusher_t *p = d->pushers; p; p = p->next)
        if (p->wake_at && p->wake_at <= now)
            p->wake_at = 0;
    arm_timer(d);
}

static void arm_timer(dispatch_t *d) {
    int64_t at = INT64_MAX;
    const attempt_t *a = heap_top(&d->deadlines);
    if (a)
        at = a->deadline_at;
    if (d->stopping && !d->grace_over && d->grace_at < at)
        at = d->grace_at;
    if (!d->stopping)
        for (const pusher_t *p = d->pushers; p; p = p->next)
            if (p->wake_at && p->wake_at < at)
                at = p->wake_at;
    if (at == d->timer_at)
        return;
    d->timer_at = at;
    if (at == INT64_MAX) {
        uv_timer_stop(&d->timer);
        return;
    }
    /* At least 1 ms: a timer started at 0 from inside its own callback
     * runs again at once in libuv before 1.45, and the loop never gets to
     * its I/O. */
    int64_t now = clock_now_ns();
    uint64_t ms = at <= now ? 1 : (uint64_t)((at - now + 999999) / 1000000);
    uv_update_time(d->loop);
    uv_timer_start(&d->timer, on_timer, ms, 0);
}

/* ---- settings ---- */

int dispatch_configure(dispatch_t *d, const char *queue, size_t len, const char *json,
                       size_t json_len, char *err, size_t errlen) {
    if (config_find(&d->file, queue, len)) {
        snprintf(err, errlen, "queue %.*s is set in the config file; change it there and "
                 "restart deferd", (int)len, queue);
        return DISPATCH_FIXED;
    }
    push_settings_t s;
    if (!settings_from_json(&s, json, json_len, err, errlen))
        return DISPATCH_INVALID;
    int status = DISPATCH_OK;
    if (s.kind == PUSH_EXEC) {
        snprintf(err, errlen, "an exec target can only be set in the config file: accepting a "
                 "command over the network would let anyone who can reach the API run it");
        status = DISPATCH_INVALID;
        goto out;
    }
    pusher_t *p = pusher_find(d, queue, len);
    if (s.kind == PUSH_NONE) {
        if (engine_set_settings(d->engine, queue, len, NULL, 0) != ENGINE_OK) {
            snprintf(err, errlen, "out of memory");
            status = DISPATCH_NO_MEMORY;
        } else if (p && p->gen) {
            pusher_retire(d, p);
        }
        goto out;
    }
    buf_t text;
    buf_init(&text);
    bool made = !p;
    if (!settings_to_json(&text, &s, false) || (!p && !(p = pusher_new(d, queue, len)))) {
        snprintf(err, errlen, "out of memory");
        status = DISPATCH_NO_MEMORY;
    } else if (!pusher_apply(p, &s, false, err, errlen)) {
        status = DISPATCH_INVALID;
        if (made)
            pusher_free(d, p);
    } else if (engine_set_settings(d->engine, queue, len, buf_head(&text), text.len) !=
               ENGINE_OK) {
        snprintf(err, errlen, "out of memory");
        status = DISPATCH_NO_MEMORY;
        pusher_retire(d, p);
    }
    buf_free(&text);
out:
    settings_free(&s);
    return status;
}

static bool start_queue(dispatch_t *d, const char *queue, size_t len, const push_settings_t *s,
                        bool fixed, char *err, size_t errlen) {
    pusher_t *p = pusher_new(d, queue, len);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    char why[512];
    if (!pusher_apply(p, s, fixed, why, sizeof why)) {
        snprintf(err, errlen, "queue %.*s: %s", (int)len, queue, why);
        pusher_free(d, p);
        return false;
    }
    log_msg("queue %s: pushing to %s (concurrency %u)", p->queue, settings_kind_name(s->kind),
            s->concurrency);
    return true;
}

void dispatch_start(dispatch_t *d) {
    engine_t *e = d->engine;
    for (uint32_t i = 0; i < e->ntubes; i++) {
        const tube_t *t = e->tube_list[i];
        if (!t->settings || config_find(&d->file, t->name, t->name_len))
            continue; /* the config file wins over what the API once set */
        push_settings_t s;
        char why[512];
        if (!settings_from_json(&s, t->settings, t->settings_len, why, sizeof why)) {
            log_msg("queue %s: its logged push settings are not understood (%s); set them "
                    "again with PUT /v1/queues/%s", t->name, why, t->name);
            continue;
        }
        bool ok = s.kind == PUSH_NONE || start_queue(d, t->name, t->name_len, &s, false, why,
                                                     sizeof why);
        if (!ok)
            log_msg("%s", why);
        settings_free(&s);
    }
}

/* ---- showing ---- */

bool dispatch_render_queue(const dispatch_t *d, buf_t *b, const tube_t *t) {
    const pusher_t *p = pusher_find(d, t->name, t->name_len);
    if (!p || !p->gen)
        return buf_puts(b, "null");
    if (!settings_to_json(b, &p->set, true))
        return false;
    b->len--; /* reopen the object */
    return buf_appendf(b,
                       ",\"source\":\"%s\",\"running\":%u,\"attempts\":%" PRIu64
                       ",\"succeeded\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"timed_out\":%" PRIu64
                       ",\"gave_up\":%" PRIu64 "}",
                       p->fixed ? "config" : "api", p->nrunning, p->started_total,
                       p->succeeded_total, p->failed_total, p->timed_out_total, p->gave_up_total);
}

bool dispatch_render_metrics(const dispatch_t *d, buf_t *b) {
    bool ok = buf_puts(b, "# HELP defer_push_running Push attempts running now.\n"
                          "# TYPE defer_push_running gauge\n");
    for (const pusher_t *p = d->pushers; ok && p; p = p->next)
        ok = buf_appendf(b, "defer_push_running{queue=\"%s\"} %u\n", p->queue, p->nrunning);
    ok = ok && buf_puts(b, "# HELP defer_push_attempts_total Push attempts that ended, by "
                           "outcome.\n# TYPE defer_push_attempts_total counter\n");
    for (const pusher_t *p = d->pushers; ok && p; p = p->next)
        ok = buf_appendf(b,
                         "defer_push_attempts_total{queue=\"%s\",outcome=\"succeeded\"} %" PRIu64
                         "\ndefer_push_attempts_total{queue=\"%s\",outcome=\"failed\"} %" PRIu64
                         "\ndefer_push_attempts_total{queue=\"%s\",outcome=\"timed_out\"} %" PRIu64
                         "\n",
                         p->queue, p->succeeded_total, p->queue, p->failed_total, p->queue,
                         p->timed_out_total);
    ok = ok && buf_puts(b, "# HELP defer_push_attempt_seconds_total Time spent in push attempts "
                           "that ended.\n# TYPE defer_push_attempt_seconds_total counter\n");
    for (const pusher_t *p = d->pushers; ok && p; p = p->next)
        ok = buf_appendf(b, "defer_push_attempt_seconds_total{queue=\"%s\"} %.6f\n", p->queue,
                         p->seconds_total);
    return ok;
}

/* ---- life ---- */

dispatch_t *dispatch_new(uv_loop_t *loop, engine_t *e, config_t *file, char *err, size_t errlen) {
    dispatch_t *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->loop = loop;
    d->engine = e;
    if (file) {
        d->file = *file;
        memset(file, 0, sizeof *file);
    }
    heap_init(&d->deadlines, deadline_less, deadline_setpos);
    d->timer_at = INT64_MAX;
    d->random = (uint64_t)clock_now_ns() | 1;
    for (uint32_t i = 0; i < d->file.nqueues; i++) {
        const config_queue_t *q = &d->file.queues[i];
        if (!start_queue(d, q->name, strlen(q->name), &q->settings, true, err, errlen)) {
            pushers_free(d);
            dispatch_free(d);
            return NULL;
        }
    }
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    return d;
}

static void on_timer_closed(uv_handle_t *h) {
    dispatch_t *d = h->data;
    if (d->stopped)
        d->stopped(d->stopped_ctx);
}

/* End the sessions (handing back what they hold) and free the targets;
 * nothing may run. */
static void pushers_free(dispatch_t *d) {
    while (d->pushers) {
        pusher_t *p = d->pushers;
        gen_unref(p->gen);
        p->gen = NULL;
        pusher_free(d, p);
    }
    targets_shutdown();
}

/* Once nothing runs: free the pushers and close the timer. */
static void maybe_stopped(dispatch_t *d) {
    for (const pusher_t *p = d->pushers; p; p = p->next)
        if (p->nrunning)
            return;
    if (uv_is_closing((uv_handle_t *)&d->timer))
        return;
    pushers_free(d);
    uv_close((uv_handle_t *)&d->timer, on_timer_closed);
}

void dispatch_stop(dispatch_t *d, int64_t grace_ns, void (*stopped)(void *ctx), void *ctx) {
    d->stopping = true;
    d->stopped = stopped;
    d->stopped_ctx = ctx;
    d->grace_at = clock_now_ns() + grace_ns;
    uint32_t n = 0;
    for (pusher_t *p = d->pushers; p; p = p->next) {
        if (p->session->waiting)
            engine_cancel_wait(d->engine, p->session);
        n += p->nrunning;
    }
    if (n)
        log_msg("waiting up to %" PRId64 " s for %u running push attempts", grace_ns / NS_PER_SEC,
                n);
    maybe_stopped(d);
    if (!uv_is_closing((uv_handle_t *)&d->timer))
        arm_timer(d);
}

void dispatch_free(dispatch_t *d) {
    if (!d)
        return;
    heap_free(&d->deadlines);
    config_free(&d->file);
    free(d);
}
