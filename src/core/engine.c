/* engine.c - the job state machine (see engine.h).
 *
 * Invariant that keeps matching cheap: an unpaused tube never has both
 * ready jobs and waiting sessions. So when a job becomes ready, only its
 * own tube's waiters can want it, and when a session starts to wait, only
 * its watched tubes' ready heaps need a look. No operation scans all tubes. */
#include "core/engine_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/panic.h"

const char *job_state_name(job_state_t s) {
    switch (s) {
    case JOB_READY:
        return "ready";
    case JOB_DELAYED:
        return "delayed";
    case JOB_RESERVED:
        return "reserved";
    case JOB_BURIED:
        return "buried";
    }
    return "invalid";
}

/* ---- heap callbacks ---- */

static void job_heap_setpos(void *item, uint32_t pos) {
    job_set_pos(item, pos);
}

static bool ready_less(const void *a, const void *b) {
    const job_t *x = a, *y = b;
    return x->pri < y->pri || (x->pri == y->pri && x->id < y->id);
}

/* Delayed and reserved jobs: soonest deadline first. Buried jobs: the
 * deadline field holds the burial sequence, so this is FIFO. */
static bool deadline_less(const void *a, const void *b) {
    const job_t *x = a, *y = b;
    return x->deadline < y->deadline || (x->deadline == y->deadline && x->id < y->id);
}

static void timer_heap_setpos(void *item, uint32_t pos) {
    ((engine_timer_t *)item)->pos = pos;
}

static bool timer_less(const void *a, const void *b) {
    return ((const engine_timer_t *)a)->at < ((const engine_timer_t *)b)->at;
}

/* ---- timers ---- */

static void timer_set(engine_t *e, engine_timer_t *tm, int64_t at) {
    if (at == ENGINE_NEVER) {
        if (tm->armed) {
            heap_remove(&e->timers, tm->pos);
            tm->armed = false;
        }
        return;
    }
    tm->at = at;
    if (tm->armed) {
        heap_fix(&e->timers, tm->pos);
        return;
    }
    if (!heap_insert(&e->timers, tm))
        defer_panic("out of memory growing the timer queue");
    tm->armed = true;
}

int64_t engine_next_deadline(const engine_t *e) {
    const engine_timer_t *tm = heap_top(&e->timers);
    return tm ? tm->at : ENGINE_NEVER;
}

static bool tube_paused(const tube_t *t, int64_t now) {
    return t->pause_ns > 0 && t->unpause_at > now;
}

static void tube_rearm(engine_t *e, tube_t *t) {
    int64_t at = ENGINE_NEVER;
    const job_t *j = heap_top(&t->delayed);
    if (j)
        at = j->deadline;
    if (t->pause_ns > 0 && t->unpause_at < at)
        at = t->unpause_at;
    timer_set(e, &t->timer, at);
}

static void session_rearm(engine_t *e, session_t *s) {
    int64_t at = ENGINE_NEVER;
    const job_t *j = heap_top(&s->reserved);
    if (j)
        at = s->waiting ? j->deadline - DEADLINE_MARGIN : j->deadline;
    if (s->waiting && s->wait_until < at)
        at = s->wait_until;
    timer_set(e, &s->timer, at);
}

/* ---- tubes ---- */

bool engine_tube_name_valid(const char *name, size_t len) {
    if (len == 0 || len > TUBE_NAME_MAX || name[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("-+/;.$_()", c) != NULL;
        if (!ok || c == 0)
            return false;
    }
    return true;
}

tube_t *engine_tube_find(const engine_t *e, const char *name, size_t len) {
    return strmap_get(&e->tubes_by_name, name, len);
}

/* A free index in the tube table. The table, the free-index stack and the
 * tube list share one capacity, since none can hold more than it. */
static bool tube_slot_take(engine_t *e, uint32_t *idx) {
    if (e->nfree) {
        *idx = e->free_slots[--e->nfree];
        return true;
    }
    if (e->tube_table_len == e->tube_cap) {
        uint32_t cap = e->tube_cap ? e->tube_cap * 2 : 8;
        tube_t **tab = realloc(e->tube_table, (size_t)cap * sizeof *tab);
        if (!tab)
            return false;
        e->tube_table = tab;
        uint32_t *fs = realloc(e->free_slots, (size_t)cap * sizeof *fs);
        if (!fs)
            return false;
        e->free_slots = fs;
        tube_t **list = realloc(e->tube_list, (size_t)cap * sizeof *list);
        if (!list)
            return false;
        e->tube_list = list;
        e->tube_cap = cap;
    }
    *idx = e->tube_table_len++;
    e->tube_table[*idx] = NULL;
    return true;
}

static tube_t *tube_create(engine_t *e, const char *name, size_t len) {
    tube_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->name = malloc(len + 1);
    if (!t->name)
        goto fail;
    memcpy(t->name, name, len);
    t->name[len] = '\0';
    t->name_len = len;

    uint32_t idx;
    if (!tube_slot_take(e, &idx))
        goto fail;
    if (!strmap_put(&e->tubes_by_name, t->name, len, t)) {
        e->free_slots[e->nfree++] = idx;
        goto fail;
    }

    t->index = idx;
    e->tube_table[idx] = t;
    t->list_pos = e->ntubes;
    e->tube_list[e->ntubes++] = t;
    heap_init(&t->ready, ready_less, job_heap_setpos);
    heap_init(&t->delayed, deadline_less, job_heap_setpos);
    heap_init(&t->buried, deadline_less, job_heap_setpos);
    strmap_init(&t->keys);
    t->waiters.prev = t->waiters.next = &t->waiters;
    t->timer.is_tube = true;
    t->timer.owner = t;
    return t;
fail:
    free(t->name);
    free(t);
    return NULL;
}

static void tube_destroy(engine_t *e, tube_t *t) {
    /* A pause dies with its tube; say so in the log, or a replay would
     * find the pause and give it to the next tube of that name. */
    if (t->pause_ns > 0) {
        t->pause_ns = 0;
        t->unpause_at = 0;
        eng_journal(e, JOURNAL_PAUSE, NULL, t);
    }
    timer_set(e, &t->timer, ENGINE_NEVER);
    strmap_del(&e->tubes_by_name, t->name, t->name_len);
    e->tube_table[t->index] = NULL;
    e->free_slots[e->nfree++] = t->index;
    /* Swap-remove from the list, as beanstalkd's tube set does, so that
     * list-tubes answers in the same order. */
    tube_t *last = e->tube_list[--e->ntubes];
    e->tube_list[t->list_pos] = last;
    last->list_pos = t->list_pos;
    heap_free(&t->ready);
    heap_free(&t->delayed);
    heap_free(&t->buried);
    strmap_free(&t->keys);
    free(t->settings);
    free(t->name);
    free(t);
}

void eng_tube_ref(tube_t *t) {
    t->refs++;
}

void eng_tube_unref(engine_t *e, tube_t *t) {
    /* While the log is replayed, a tube whose last job goes stays: the live
     * server kept it too if clients used it, and a later record (a put, a
     * pause) may need its state. engine_restore_done sweeps them. */
    if (--t->refs == 0 && !e->restoring)
        tube_destroy(e, t);
}

/* A tube created for an operation that then failed has no references. */
static void tube_drop_if_unused(engine_t *e, tube_t *t) {
    if (t->refs == 0)
        tube_destroy(e, t);
}

tube_t *eng_tube_find_or_make(engine_t *e, const char *name, size_t len) {
    tube_t *t = engine_tube_find(e, name, len);
    return t ? t : tube_create(e, name, len);
}

/* ---- job placement ---- */

void eng_journal(engine_t *e, journal_kind_t kind, const job_t *j, const tube_t *t) {
    if (e->journal)
        e->journal(e->journal_ctx, kind, j, t);
}

void eng_emit(engine_t *e, engine_event_t ev, uint64_t id, const tube_t *t, int64_t now) {
    if (e->observe)
        e->observe(e->observe_ctx, ev, id, t, now);
}

/* Insert j, whose deadline holds its burial order, into t's buried heap. */
static void job_place_buried(engine_t *e, tube_t *t, job_t *j) {
    job_set_state(j, JOB_BURIED);
    if (!heap_insert(&t->buried, j))
        defer_panic("out of memory growing a buried list");
    e->count.buried++;
    if (engine_job_failed(e, j))
        t->failed++;
}

void eng_bury(engine_t *e, tube_t *t, job_t *j) {
    j->deadline = ++e->bury_seq;
    j->buries++;
    job_place_buried(e, t, j);
}

static void session_take(engine_t *e, session_t *s, job_t *j, int64_t now);
static void session_unwait(engine_t *e, session_t *s);

/* Hand ready jobs of t to its waiting sessions, oldest waiter first. */
static void tube_match(engine_t *e, tube_t *t, int64_t now) {
    while (t->ready.len && t->waiters.next != &t->waiters && !tube_paused(t, now)) {
        session_t *s = t->waiters.next->session;
        job_t *j = heap_pop(&t->ready);
        e->count.ready--;
        if (j->pri < URGENT_PRI) {
            e->count.urgent--;
            t->urgent--;
        }
        session_unwait(e, s);
        session_take(e, s, j, now);
        s->notify(s->owner, SESSION_RESERVED, j);
    }
}

/* Make j ready in t (j is in no container). Returns ENGINE_BURIED when the
 * ready heap could not grow and j was buried instead. */
engine_result_t eng_make_ready(engine_t *e, tube_t *t, job_t *j, int64_t now) {
    job_set_state(j, JOB_READY);
    if (!heap_insert(&t->ready, j)) {
        eng_bury(e, t, j);
        return ENGINE_BURIED;
    }
    e->count.ready++;
    if (j->pri < URGENT_PRI) {
        e->count.urgent++;
        t->urgent++;
    }
    tube_match(e, t, now);
    return ENGINE_OK;
}

/* Insert j, whose deadline holds its ready-at time, into t's delayed heap. */
engine_result_t eng_place_delayed(engine_t *e, tube_t *t, job_t *j) {
    job_set_state(j, JOB_DELAYED);
    if (!heap_insert(&t->delayed, j)) {
        eng_bury(e, t, j);
        return ENGINE_BURIED;
    }
    e->count.delayed++;
    tube_rearm(e, t);
    return ENGINE_OK;
}

static engine_result_t job_make_delayed(engine_t *e, tube_t *t, job_t *j, int64_t now) {
    j->deadline = now + (int64_t)j->delay * NS_PER_SEC;
    return eng_place_delayed(e, t, j);
}

/* Take j out of its ready, delayed or buried heap. */
void eng_unlink(engine_t *e, tube_t *t, job_t *j) {
    switch (job_state(j)) {
    case JOB_READY:
        heap_remove(&t->ready, job_pos(j));
        e->count.ready--;
        if (j->pri < URGENT_PRI) {
            e->count.urgent--;
            t->urgent--;
        }
        break;
    case JOB_DELAYED:
        heap_remove(&t->delayed, job_pos(j));
        e->count.delayed--;
        tube_rearm(e, t);
        break;
    case JOB_BURIED:
        if (engine_job_failed(e, j))
            t->failed--;
        heap_remove(&t->buried, job_pos(j));
        e->count.buried--;
        break;
    case JOB_RESERVED:
        defer_panic("eng_unlink called on a reserved job");
    }
}

void eng_destroy(engine_t *e, job_t *j) {
    eng_ext_drop(e, j);
    idmap_del(&e->jobs, j->id);
    e->count.job_bytes -= j->size;
    eng_tube_unref(e, e->tube_table[j->tube]);
    free(j);
}

/* ---- sessions ---- */

bool engine_session_holds(const session_t *s, const job_t *j) {
    return job_state(j) == JOB_RESERVED && job_pos(j) < s->reserved.len &&
           s->reserved.items[job_pos(j)] == j;
}

/* Reserve j (in no container) for s. */
static void session_take(engine_t *e, session_t *s, job_t *j, int64_t now) {
    tube_t *t = e->tube_table[j->tube];
    job_set_state(j, JOB_RESERVED);
    j->deadline = now + (int64_t)j->ttr * NS_PER_SEC;
    j->reserves++;
    if (!heap_insert(&s->reserved, j))
        defer_panic("out of memory growing a session's reservations");
    t->reserved++;
    t->reserved_total++;
    e->count.reserved++;
    session_rearm(e, s);
    eng_emit(e, EVENT_RESERVED, j->id, t, now);
}

/* Take j, held by s, out of s's reservations. */
static void session_drop(engine_t *e, session_t *s, job_t *j) {
    tube_t *t = e->tube_table[j->tube];
    heap_remove(&s->reserved, job_pos(j));
    t->reserved--;
    e->count.reserved--;
    session_rearm(e, s);
}

static void session_wait(engine_t *e, session_t *s, int64_t until) {
    s->waiting = true;
    s->wait_until = until;
    for (uint32_t i = 0; i < s->nwatch; i++) {
        watch_t *w = &s->watch[i];
        waiter_t *head = &w->tube->waiters;
        w->node.session = s;
        w->node.prev = head->prev;
        w->node.next = head;
        head->prev->next = &w->node;
        head->prev = &w->node;
        w->tube->waiting++;
    }
    e->count.waiting++;
    session_rearm(e, s);
}

static void session_unwait(engine_t *e, session_t *s) {
    if (!s->waiting)
        return;
    for (uint32_t i = 0; i < s->nwatch; i++) {
        watch_t *w = &s->watch[i];
        w->node.prev->next = w->node.next;
        w->node.next->prev = w->node.prev;
        w->node.prev = w->node.next = NULL;
        w->tube->waiting--;
    }
    s->waiting = false;
    e->count.waiting--;
    session_rearm(e, s);
}

session_t *engine_session_new(engine_t *e, session_notify_fn notify, void *owner) {
    session_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->watch = malloc(sizeof *s->watch);
    if (!s->watch) {
        free(s);
        return NULL;
    }
    s->capwatch = 1;
    s->nwatch = 1;
    s->watch[0].tube = e->default_tube;
    s->use = e->default_tube;
    eng_tube_ref(e->default_tube);
    eng_tube_ref(e->default_tube);
    e->default_tube->using++;
    e->default_tube->watching++;
    heap_init(&s->reserved, deadline_less, job_heap_setpos);
    s->wait_until = ENGINE_NEVER;
    s->timer.owner = s;
    s->notify = notify;
    s->owner = owner;
    return s;
}

void engine_session_free(engine_t *e, session_t *s, int64_t now) {
    session_unwait(e, s);
    /* Reservations go back to ready, as when their TTR ends (but they are
     * not counted as timeouts). */
    job_t *j;
    while ((j = heap_top(&s->reserved))) {
        session_drop(e, s, j);
        eng_make_ready(e, e->tube_table[j->tube], j, now);
    }
    timer_set(e, &s->timer, ENGINE_NEVER);
    for (uint32_t i = 0; i < s->nwatch; i++) {
        s->watch[i].tube->watching--;
        eng_tube_unref(e, s->watch[i].tube);
    }
    s->use->using--;
    eng_tube_unref(e, s->use);
    heap_free(&s->reserved);
    free(s->watch);
    free(s);
}

engine_result_t engine_use(engine_t *e, session_t *s, const char *name, size_t len) {
    tube_t *t = eng_tube_find_or_make(e, name, len);
    if (!t)
        return ENGINE_NO_MEMORY;
    eng_tube_ref(t);
    t->using++;
    s->use->using--;
    eng_tube_unref(e, s->use);
    s->use = t;
    return ENGINE_OK;
}

static int32_t watch_index(const session_t *s, const char *name, size_t len) {
    for (uint32_t i = 0; i < s->nwatch; i++) {
        const tube_t *t = s->watch[i].tube;
        if (t->name_len == len && memcmp(t->name, name, len) == 0)
            return (int32_t)i;
    }
    return -1;
}

engine_result_t engine_watch(engine_t *e, session_t *s, const char *name, size_t len,
                             uint32_t *count) {
    if (watch_index(s, name, len) < 0) {
        tube_t *t = eng_tube_find_or_make(e, name, len);
        if (!t)
            return ENGINE_NO_MEMORY;
        if (s->nwatch == s->capwatch) {
            watch_t *w = realloc(s->watch, (size_t)s->capwatch * 2 * sizeof *w);
            if (!w) {
                tube_drop_if_unused(e, t);
                return ENGINE_NO_MEMORY;
            }
            s->watch = w;
            s->capwatch *= 2;
        }
        memset(&s->watch[s->nwatch], 0, sizeof s->watch[0]);
        s->watch[s->nwatch++].tube = t;
        t->watching++;
        eng_tube_ref(t);
    }
    *count = s->nwatch;
    return ENGINE_OK;
}

engine_result_t engine_ignore(engine_t *e, session_t *s, const char *name, size_t len,
                              uint32_t *count) {
    int32_t i = watch_index(s, name, len);
    if (i >= 0) {
        if (s->nwatch < 2)
            return ENGINE_NOT_IGNORED;
        tube_t *t = s->watch[i].tube;
        s->watch[i] = s->watch[--s->nwatch];
        t->watching--;
        eng_tube_unref(e, t);
    }
    *count = s->nwatch;
    return ENGINE_OK;
}

bool engine_deadline_soon(const engine_t *e, const session_t *s, int64_t now) {
    (void)e;
    const job_t *j = heap_top(&s->reserved);
    return j && now >= j->deadline - DEADLINE_MARGIN;
}

/* ---- engine ---- */

engine_t *engine_new(void) {
    engine_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    idmap_init(&e->jobs);
    strmap_init(&e->tubes_by_name);
    u64map_init(&e->ext);
    u64map_init(&e->history);
    heap_init(&e->timers, timer_less, timer_heap_setpos);
    e->next_id = 1;
    e->default_tube = tube_create(e, "default", 7);
    if (!e->default_tube) {
        engine_free(e);
        return NULL;
    }
    eng_tube_ref(e->default_tube); /* default always exists */
    return e;
}

static bool free_job_cb(void *value, void *arg) {
    engine_t *e = arg;
    job_t *j = value;
    job_ext_t *x = eng_ext(e, j);
    if (x) {
        free(x->key);
        free(x->last_error);
        free(x);
    }
    free(j);
    return true;
}

/* Frees everything, including tubes still referenced by jobs or sessions:
 * sessions must have been freed first. */
void engine_free(engine_t *e) {
    if (!e)
        return;
    e->journal = NULL; /* tearing down is not a change to log */
    idmap_each(&e->jobs, free_job_cb, e);
    idmap_free(&e->jobs);
    u64map_free(&e->ext);
    eng_history_free(e);
    while (e->ntubes)
        tube_destroy(e, e->tube_list[0]);
    free(e->tube_list);
    free(e->tube_table);
    free(e->free_slots);
    strmap_free(&e->tubes_by_name);
    heap_free(&e->timers);
    free(e);
}

/* ---- jobs ---- */

job_t *engine_job_new(engine_t *e, tube_t *t, uint32_t pri, uint32_t delay, uint32_t ttr,
                      uint32_t size, int64_t now) {
    job_t *j = malloc(job_alloc_size(size));
    if (!j)
        return NULL;
    memset(j, 0, offsetof(job_t, body));
    j->id = e->next_id++;
    j->created = now;
    j->tube = t->index;
    j->pri = pri;
    j->delay = delay;
    j->ttr = ttr ? ttr : 1;
    j->size = size;
    eng_tube_ref(t);
    return j;
}

void engine_job_discard(engine_t *e, job_t *j) {
    eng_tube_unref(e, e->tube_table[j->tube]);
    free(j);
}

engine_result_t eng_insert(engine_t *e, tube_t *t, job_t *j, int64_t run_at, int64_t now) {
    if (e->jobs.count >= JOB_POS_MAX || !idmap_put(&e->jobs, j->id, j))
        return ENGINE_NO_MEMORY;
    e->count.job_bytes += j->size;
    if (e->count.job_bytes > e->count.job_bytes_peak)
        e->count.job_bytes_peak = e->count.job_bytes;
    e->count.total_jobs++;
    t->total_jobs++;
    if (run_at > now) {
        j->deadline = run_at;
        return eng_place_delayed(e, t, j);
    }
    if (run_at == 0 && j->delay > 0)
        return job_make_delayed(e, t, j, now);
    return eng_make_ready(e, t, j, now);
}

engine_result_t engine_put(engine_t *e, job_t *j, int64_t now) {
    engine_put_result_t res;
    return engine_put_opts(e, j, NULL, now, &res);
}

job_t *engine_job_find(const engine_t *e, uint64_t id) {
    return idmap_get(&e->jobs, id);
}

/* The best ready job among the unpaused tubes s watches. */
static job_t *session_best_ready(const engine_t *e, const session_t *s, int64_t now) {
    (void)e;
    job_t *best = NULL;
    for (uint32_t i = 0; i < s->nwatch; i++) {
        const tube_t *t = s->watch[i].tube;
        job_t *j = heap_top(&t->ready);
        if (j && !tube_paused(t, now) && (!best || ready_less(j, best)))
            best = j;
    }
    return best;
}

static bool session_any_ready(const session_t *s) {
    for (uint32_t i = 0; i < s->nwatch; i++)
        if (s->watch[i].tube->ready.len)
            return true;
    return false;
}

engine_result_t engine_reserve(engine_t *e, session_t *s, int64_t timeout_ns, int64_t now,
                               job_t **out) {
    /* beanstalkd's rule: a ready job in any watched tube, even a paused
     * one, means "wait" rather than DEADLINE_SOON. */
    if (engine_deadline_soon(e, s, now) && !session_any_ready(s))
        return ENGINE_DEADLINE_SOON;
    job_t *j = session_best_ready(e, s, now);
    if (j) {
        tube_t *t = e->tube_table[j->tube];
        eng_unlink(e, t, j);
        session_take(e, s, j, now);
        *out = j;
        return ENGINE_OK;
    }
    if (timeout_ns == 0)
        return ENGINE_TIMED_OUT;
    session_wait(e, s, timeout_ns < 0 ? ENGINE_NEVER : now + timeout_ns);
    return ENGINE_WAITING;
}

engine_result_t engine_reserve_job(engine_t *e, session_t *s, uint64_t id, int64_t now,
                                   job_t **out) {
    job_t *j = engine_job_find(e, id);
    if (!j || job_state(j) == JOB_RESERVED)
        return ENGINE_NOT_FOUND;
    eng_unlink(e, e->tube_table[j->tube], j);
    session_take(e, s, j, now);
    *out = j;
    return ENGINE_OK;
}

void engine_cancel_wait(engine_t *e, session_t *s) {
    session_unwait(e, s);
}

engine_result_t engine_delete(engine_t *e, session_t *s, uint64_t id, int64_t now) {
    job_t *j = engine_job_find(e, id);
    if (!j)
        return ENGINE_NOT_FOUND;
    tube_t *t = e->tube_table[j->tube];
    task_end_t end;
    if (job_state(j) == JOB_RESERVED) {
        if (!s || !engine_session_holds(s, j))
            return ENGINE_NOT_FOUND;
        session_drop(e, s, j);
        end = TASK_DONE;
    } else {
        end = engine_job_failed(e, j) ? TASK_FAILED : TASK_CANCELLED;
        eng_unlink(e, t, j);
    }
    t->deletes++;
    if (end == TASK_DONE)
        t->done_total++;
    else if (end == TASK_CANCELLED)
        t->cancelled_total++;
    eng_history_add(e, j, end, now);
    eng_journal(e, JOURNAL_DELETE, j, t);
    eng_emit(e, end == TASK_DONE ? EVENT_DONE : end == TASK_FAILED ? EVENT_FAILED : EVENT_CANCELLED,
             j->id, t, now);
    eng_destroy(e, j);
    return ENGINE_OK;
}

engine_result_t engine_release(engine_t *e, session_t *s, uint64_t id, uint32_t pri,
                               uint32_t delay, int64_t now) {
    job_t *j = engine_job_find(e, id);
    if (!j || !engine_session_holds(s, j))
        return ENGINE_NOT_FOUND;
    tube_t *t = e->tube_table[j->tube];
    session_drop(e, s, j);
    j->pri = pri;
    j->delay = delay;
    j->releases++;
    /* A release is a failed attempt: when it was the last one the job is
     * buried as failed - the worker is still told RELEASED, since from its
     * side that is what it did. */
    engine_result_t r = ENGINE_OK;
    /* Only a task that has an extension anyway (an HTTP task) pays for
     * remembering a release; plain beanstalk jobs stay as they are. */
    char msg[64];
    const char *why = NULL;
    if (engine_job_ext(e, j)) {
        snprintf(msg, sizeof msg, "attempt %u released by a worker", engine_job_attempts(e, j));
        why = msg;
    }
    if (!eng_attempt_failed(e, t, j, why, 0, now)) {
        r = delay > 0 ? job_make_delayed(e, t, j, now) : eng_make_ready(e, t, j, now);
        eng_emit(e, EVENT_RELEASED, j->id, t, now);
    }
    eng_journal(e, JOURNAL_UPDATE, j, t);
    return r;
}

engine_result_t engine_bury(engine_t *e, session_t *s, uint64_t id, uint32_t pri, int64_t now) {
    job_t *j = engine_job_find(e, id);
    if (!j || !engine_session_holds(s, j))
        return ENGINE_NOT_FOUND;
    session_drop(e, s, j);
    j->pri = pri;
    tube_t *t = e->tube_table[j->tube];
    eng_bury(e, t, j);
    eng_journal(e, JOURNAL_UPDATE, j, t);
    eng_emit(e, EVENT_BURIED, j->id, t, now);
    return ENGINE_OK;
}

engine_result_t engine_touch(engine_t *e, session_t *s, uint64_t id, int64_t now) {
    job_t *j = engine_job_find(e, id);
    if (!j || !engine_session_holds(s, j))
        return ENGINE_NOT_FOUND;
    j->deadline = now + (int64_t)j->ttr * NS_PER_SEC;
    heap_fix(&s->reserved, job_pos(j));
    session_rearm(e, s);
    return ENGINE_OK;
}

engine_result_t engine_hold(engine_t *e, session_t *s, uint64_t id, int64_t until) {
    job_t *j = engine_job_find(e, id);
    if (!j || !engine_session_holds(s, j))
        return ENGINE_NOT_FOUND;
    j->deadline = until;
    heap_fix(&s->reserved, job_pos(j));
    session_rearm(e, s);
    return ENGINE_OK;
}

engine_result_t engine_attempt_failed(engine_t *e, session_t *s, uint64_t id, const char *reason,
                                      uint32_t max_attempts, int64_t retry_at, int64_t now) {
    job_t *j = engine_job_find(e, id);
    if (!j || !engine_session_holds(s, j))
        return ENGINE_NOT_FOUND;
    tube_t *t = e->tube_table[j->tube];
    session_drop(e, s, j);
    j->releases++;
    char why[640];
    snprintf(why, sizeof why, "attempt %u: %s", engine_job_attempts(e, j), reason);
    engine_result_t r = ENGINE_BURIED;
    if (!eng_attempt_failed(e, t, j, why, max_attempts, now)) {
        /* The delay a beanstalk client would see: whole seconds, rounded up. */
        int64_t wait = retry_at > now ? retry_at - now : 0;
        j->delay = (uint32_t)((wait + NS_PER_SEC - 1) / NS_PER_SEC);
        if (wait > 0) {
            j->deadline = retry_at;
            r = eng_place_delayed(e, t, j);
        } else {
            r = eng_make_ready(e, t, j, now);
        }
        if (r == ENGINE_OK)
            eng_emit(e, EVENT_RELEASED, j->id, t, now);
    }
    eng_journal(e, JOURNAL_UPDATE, j, t);
    return r;
}

static void job_kick(engine_t *e, tube_t *t, job_t *j, int64_t now) {
    eng_unlink(e, t, j);
    j->kicks++;
    eng_fresh_attempts(e, j);
    eng_emit(e, EVENT_KICKED, j->id, t, now);
    eng_make_ready(e, t, j, now);
    eng_journal(e, JOURNAL_UPDATE, j, t);
}

uint32_t engine_kick(engine_t *e, tube_t *t, uint32_t bound, int64_t now) {
    heap_t *from = t->buried.len ? &t->buried : &t->delayed;
    uint32_t n = 0;
    while (n < bound && from->len) {
        job_kick(e, t, heap_top(from), now);
        n++;
    }
    return n;
}

engine_result_t engine_kick_job(engine_t *e, uint64_t id, int64_t now) {
    job_t *j = engine_job_find(e, id);
    if (!j || (job_state(j) != JOB_BURIED && job_state(j) != JOB_DELAYED))
        return ENGINE_NOT_FOUND;
    job_kick(e, e->tube_table[j->tube], j, now);
    return ENGINE_OK;
}

job_t *engine_peek_ready(const tube_t *t) {
    return heap_top(&t->ready);
}

job_t *engine_peek_delayed(const tube_t *t) {
    return heap_top(&t->delayed);
}

job_t *engine_peek_buried(const tube_t *t) {
    return heap_top(&t->buried);
}

engine_result_t engine_pause(engine_t *e, const char *name, size_t len, int64_t delay_ns,
                             int64_t now) {
    tube_t *t = engine_tube_find(e, name, len);
    if (!t)
        return ENGINE_NOT_FOUND;
    /* Always a positive pause, so that waiters are looked at again when it
     * ends. */
    if (delay_ns <= 0)
        delay_ns = 1;
    t->pause_ns = delay_ns;
    t->unpause_at = now + delay_ns;
    t->pauses++;
    tube_rearm(e, t);
    eng_journal(e, JOURNAL_PAUSE, NULL, t);
    return ENGINE_OK;
}

void engine_resume(engine_t *e, tube_t *t, int64_t now) {
    t->pause_ns = 0;
    t->unpause_at = 0;
    tube_match(e, t, now);
    tube_rearm(e, t);
    eng_journal(e, JOURNAL_PAUSE, NULL, t);
}

/* Settings hold a reference to their tube: it lives while they do. */
static engine_result_t settings_put(engine_t *e, const char *name, size_t len, const char *text,
                                    size_t text_len, tube_t **out) {
    tube_t *t = eng_tube_find_or_make(e, name, len);
    char *copy = t ? malloc(text_len + 1) : NULL;
    if (!copy) {
        if (t)
            tube_drop_if_unused(e, t);
        return ENGINE_NO_MEMORY;
    }
    memcpy(copy, text, text_len);
    copy[text_len] = '\0';
    if (!t->settings)
        eng_tube_ref(t);
    free(t->settings);
    t->settings = copy;
    t->settings_len = (uint32_t)text_len;
    *out = t;
    return ENGINE_OK;
}

/* Clear t's settings, journaling that while t still exists. */
static void settings_clear(engine_t *e, tube_t *t) {
    free(t->settings);
    t->settings = NULL;
    t->settings_len = 0;
    eng_journal(e, JOURNAL_SETTINGS, NULL, t);
    eng_tube_unref(e, t);
}

engine_result_t engine_set_settings(engine_t *e, const char *name, size_t len, const char *text,
                                    size_t text_len) {
    tube_t *t = engine_tube_find(e, name, len);
    if (!text_len) {
        if (t && t->settings)
            settings_clear(e, t);
        return ENGINE_OK;
    }
    engine_result_t r = settings_put(e, name, len, text, text_len, &t);
    if (r == ENGINE_OK)
        eng_journal(e, JOURNAL_SETTINGS, NULL, t);
    return r;
}

tube_t *engine_tube_get(engine_t *e, const char *name, size_t len) {
    return eng_tube_find_or_make(e, name, len);
}

int64_t engine_seconds_left(int64_t deadline, int64_t now) {
    /* As beanstalkd counts: whole seconds, rounded down, of a time left
     * that has always shrunk a little by the time anyone asks - so a TTR
     * of 10 read at once shows 9. */
    return (deadline - now - 1) / NS_PER_SEC;
}

int64_t engine_job_time_left(const job_t *j, int64_t now) {
    job_state_t st = job_state(j);
    if (st != JOB_RESERVED && st != JOB_DELAYED)
        return 0;
    return engine_seconds_left(j->deadline, now);
}

/* ---- durability ---- */

void engine_set_journal(engine_t *e, engine_journal_fn fn, void *ctx) {
    e->journal = fn;
    e->journal_ctx = ctx;
}

static void restore_fields(job_t *j, const engine_restore_t *r) {
    j->pri = r->pri;
    j->delay = r->delay;
    j->deadline = r->deadline;
    j->reserves = r->reserves;
    j->timeouts = r->timeouts;
    j->releases = r->releases;
    j->buries = r->buries;
    j->kicks = r->kicks;
}

/* Put j (in no container) where its restored state says. */
static void restore_place(engine_t *e, tube_t *t, job_t *j, job_state_t state) {
    switch (state) {
    case JOB_DELAYED:
        eng_place_delayed(e, t, j);
        break;
    case JOB_BURIED:
        if (j->deadline > e->bury_seq)
            e->bury_seq = j->deadline;
        job_place_buried(e, t, j);
        break;
    default:
        eng_make_ready(e, t, j, 0);
        break;
    }
}

engine_result_t engine_restore_job(engine_t *e, const engine_restore_t *r, const char *body,
                                   uint32_t size) {
    e->restoring = true;
    engine_restore_delete(e, r->id);
    tube_t *t = eng_tube_find_or_make(e, r->tube, r->tube_len);
    if (!t)
        return ENGINE_NO_MEMORY;
    job_t *j = malloc(job_alloc_size(size));
    if (!j || !idmap_put(&e->jobs, r->id, j)) {
        free(j);
        tube_drop_if_unused(e, t);
        return ENGINE_NO_MEMORY;
    }
    memset(j, 0, offsetof(job_t, body));
    j->id = r->id;
    j->created = r->created;
    j->tube = t->index;
    j->ttr = r->ttr ? r->ttr : 1;
    j->size = size;
    memcpy(j->body, body, size);
    restore_fields(j, r);
    eng_tube_ref(t);
    e->count.job_bytes += size;
    if (r->id >= e->next_id)
        e->next_id = r->id + 1;
    restore_place(e, t, j, r->state);
    return ENGINE_OK;
}

void engine_restore_update(engine_t *e, const engine_restore_t *r) {
    e->restoring = true;
    job_t *j = engine_job_find(e, r->id);
    if (!j)
        return;
    tube_t *t = e->tube_table[j->tube];
    eng_unlink(e, t, j);
    restore_fields(j, r);
    restore_place(e, t, j, r->state);
}

void engine_restore_delete(engine_t *e, uint64_t id) {
    e->restoring = true;
    job_t *j = engine_job_find(e, id);
    if (!j)
        return;
    eng_unlink(e, e->tube_table[j->tube], j);
    eng_destroy(e, j);
}

engine_result_t engine_restore_pause(engine_t *e, const char *name, size_t len, int64_t pause_ns,
                                     int64_t unpause_at) {
    e->restoring = true;
    tube_t *t = eng_tube_find_or_make(e, name, len);
    if (!t)
        return ENGINE_NO_MEMORY;
    t->pause_ns = pause_ns;
    t->unpause_at = unpause_at;
    tube_rearm(e, t);
    return ENGINE_OK;
}

engine_result_t engine_restore_settings(engine_t *e, const char *name, size_t len,
                                        const char *text, size_t text_len) {
    e->restoring = true;
    tube_t *t = engine_tube_find(e, name, len);
    if (text_len)
        return settings_put(e, name, len, text, text_len, &t);
    if (t && t->settings)
        settings_clear(e, t); /* restoring: no journal, and t stays */
    return ENGINE_OK;
}

void engine_restore_next_id(engine_t *e, uint64_t next_id) {
    if (next_id > e->next_id)
        e->next_id = next_id;
}

void engine_restore_done(engine_t *e) {
    e->restoring = false;
    for (uint32_t i = 0; i < e->ntubes;) {
        tube_t *t = e->tube_list[i];
        if (t->refs == 0)
            tube_destroy(e, t); /* swaps the last tube into slot i */
        else
            i++;
    }
}

/* ---- rates ---- */

void engine_update_rates(engine_t *e, int64_t now) {
    double dt = (double)(now - e->rates_at) / (double)NS_PER_SEC;
    if (e->rates_at && dt <= 0)
        return;
    /* One-minute exponential moving averages, as load averages are. */
    double a = e->rates_at ? 1.0 - exp(-dt / 60.0) : 0.0;
    for (uint32_t i = 0; i < e->ntubes; i++) {
        tube_t *t = e->tube_list[i];
        if (e->rates_at) {
            t->enqueued_rate += ((double)(t->total_jobs - t->rate_enqueued_mark) / dt - t->enqueued_rate) * a;
            t->done_rate += ((double)(t->done_total - t->rate_done_mark) / dt - t->done_rate) * a;
        }
        t->rate_enqueued_mark = t->total_jobs;
        t->rate_done_mark = t->done_total;
    }
    e->rates_at = now;
}

/* ---- time ---- */

static void tube_fire(engine_t *e, tube_t *t, int64_t now) {
    job_t *j;
    while ((j = heap_top(&t->delayed)) && j->deadline <= now) {
        heap_pop(&t->delayed);
        e->count.delayed--;
        eng_make_ready(e, t, j, now);
    }
    if (t->pause_ns > 0 && t->unpause_at <= now) {
        t->pause_ns = 0;
        tube_match(e, t, now);
    }
    tube_rearm(e, t);
}

static void session_fire(engine_t *e, session_t *s, int64_t now) {
    if (s->waiting && engine_deadline_soon(e, s, now)) {
        session_unwait(e, s);
        s->notify(s->owner, SESSION_DEADLINE_SOON, NULL);
    }
    job_t *j;
    while ((j = heap_top(&s->reserved)) && j->deadline <= now) {
        tube_t *t = e->tube_table[j->tube];
        session_drop(e, s, j);
        j->timeouts++;
        e->count.timeouts++;
        t->timeouts_total++;
        eng_emit(e, EVENT_TIMED_OUT, j->id, t, now);
        /* Worth saying for any task: "what happened to 812?" */
        char why[64];
        snprintf(why, sizeof why, "attempt %u timed out (ttr %u s)", engine_job_attempts(e, j),
                 j->ttr);
        if (!eng_attempt_failed(e, t, j, why, 0, now))
            eng_make_ready(e, t, j, now);
        eng_journal(e, JOURNAL_UPDATE, j, t);
    }
    if (s->waiting && s->wait_until <= now) {
        session_unwait(e, s);
        s->notify(s->owner, SESSION_TIMED_OUT, NULL);
    }
    session_rearm(e, s);
}

void engine_tick(engine_t *e, int64_t now) {
    engine_timer_t *tm;
    while ((tm = heap_top(&e->timers)) && tm->at <= now) {
        heap_pop(&e->timers);
        tm->armed = false;
        if (tm->is_tube)
            tube_fire(e, tm->owner, now);
        else
            session_fire(e, tm->owner, now);
    }
}
