/* engine_check.c - the engine's invariants for the fuzz harnesses (see
 * engine_check.h for the list). */
#include "engine_check.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ctx {
    const engine_t *e;
    const engine_check_opts_t *o;
    uint32_t n; /* tube table length */
    /* Per tube index: what refers to it, as counted here. */
    uint64_t *jobs, *using, *watching, *reserved, *keys, *failed;
    uint64_t njobs, bytes, exts;
} ctx_t;

static void ec_fail(const ctx_t *x, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));

static void ec_fail(const ctx_t *x, int line, const char *cond, const char *fmt, ...) {
    const engine_check_opts_t *o = x->o;
    fprintf(stderr, "%s: engine invariant broken%s%s%s: ", o->who ? o->who : "engine_check",
            o->context ? " (" : "", o->context ? o->context : "", o->context ? ")" : "");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  failed: %s\n  at %s:%d\n", cond, __FILE__, line);
    abort();
}

/* EC(condition, "what must hold", args...): the message says which
 * invariant broke, with the values involved. */
#define EC(cond, ...)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ec_fail(x, __LINE__, #cond, __VA_ARGS__);                                              \
    } while (0)

static bool by_pri(const job_t *a, const job_t *b) {
    return a->pri < b->pri || (a->pri == b->pri && a->id < b->id);
}

static bool by_deadline(const job_t *a, const job_t *b) {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->id < b->id);
}

static bool tube_ok(const ctx_t *x, const tube_t *t) {
    return t && t->index < x->n && x->e->tube_table[t->index] == t;
}

/* ---- one job ---- */

static void check_ext(ctx_t *x, const job_t *j) {
    const engine_t *e = x->e;
    const job_ext_t *ext = u64map_get(&e->ext, j->id);
    EC(job_flag(j, JOB_FLAG_EXT) == (ext != NULL),
       "job %" PRIu64 ": a task extension exists exactly when the job is flagged EXT (flag %d, "
       "extension %s)",
       j->id, job_flag(j, JOB_FLAG_EXT), ext ? "present" : "absent");
    EC(engine_job_ext(e, j) == ext, "job %" PRIu64 ": engine_job_ext finds its extension", j->id);
    if (!ext)
        return;
    const tube_t *t = e->tube_table[j->tube];
    x->exts++;
    EC((ext->key == NULL) == (ext->key_len == 0),
       "job %" PRIu64 ": a key is absent exactly when its length is 0 (len %u)", j->id,
       (unsigned)ext->key_len);
    if (ext->key) {
        EC(ext->key_len <= TUBE_NAME_MAX, "job %" PRIu64 ": a key has at most %d bytes (%u)", j->id,
           TUBE_NAME_MAX, (unsigned)ext->key_len);
        EC(ext->key[ext->key_len] == '\0' && memchr(ext->key, '\0', ext->key_len) == NULL,
           "job %" PRIu64 ": a key is NUL-terminated with no NUL inside", j->id);
        EC(engine_key_holder(t, ext->key, ext->key_len) == j,
           "job %" PRIu64 ": its key '%.*s' is held by it in queue '%s'", j->id, (int)ext->key_len,
           ext->key, t->name);
        x->keys[j->tube]++;
    }
    if (x->o->live) {
        EC(ext->attempt_base <= j->reserves,
           "job %" PRIu64 ": attempts start at most at its reserves (base %u, reserves %u)", j->id,
           ext->attempt_base, j->reserves);
        if (engine_job_failed(e, j))
            EC(ext->max_attempts > 0 && engine_job_attempts(e, j) >= ext->max_attempts,
               "job %" PRIu64 ": a failed task used up its attempts (%u of max %u)", j->id,
               engine_job_attempts(e, j), ext->max_attempts);
    }
}

static void check_job(ctx_t *x, const job_t *j) {
    const engine_t *e = x->e;
    const engine_check_opts_t *o = x->o;
    EC(j->id > 0, "a job id is never 0");
    EC(j->id < e->next_id, "job %" PRIu64 ": ids are below next_id (%" PRIu64 ")", j->id,
       e->next_id);
    EC(idmap_get(&e->jobs, j->id) == j, "job %" PRIu64 ": the id map leads to it", j->id);
    EC(j->ttr >= 1, "job %" PRIu64 ": ttr >= 1", j->id);
    EC(j->tube < x->n && e->tube_table[j->tube] != NULL,
       "job %" PRIu64 ": its tube index %u is a live tube", j->id, j->tube);
    if (o->live) {
        EC(j->created >= o->created_min && (!o->now || j->created <= o->now),
           "job %" PRIu64 ": created (%" PRId64 ") within the run [%" PRId64 ", %" PRId64 "]",
           j->id, j->created, o->created_min, o->now);
        if (job_flag(j, JOB_FLAG_JSON)) {
            json_t *v = json_loadb(
                j->body, j->size, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
            EC(v != NULL, "job %" PRIu64 ": a body flagged JSON is JSON text (%u bytes: %.*s)",
               j->id, j->size, (int)(j->size > 200 ? 200 : j->size), j->body);
            json_decref(v);
        }
    }
}

/* A heap of jobs: ordered by less, each knowing its position and state;
 * t: the tube they all belong to (NULL for a session's reservations). */
static void check_heap(ctx_t *x, const heap_t *hp, job_state_t st,
                       bool (*less)(const job_t *, const job_t *), const tube_t *t,
                       const char *what) {
    EC(hp->len <= hp->cap, "%s: heap length %u <= capacity %u", what, hp->len, hp->cap);
    for (uint32_t i = 0; i < hp->len; i++) {
        const job_t *j = hp->items[i];
        check_job(x, j);
        EC(job_state(j) == st, "%s: job %" PRIu64 " is in state %s", what, j->id,
           job_state_name(st));
        EC(job_pos(j) == i, "%s: job %" PRIu64 " knows its heap position (%u, is at %u)", what,
           j->id, job_pos(j), i);
        if (t)
            EC(j->tube == t->index, "%s: job %" PRIu64 " belongs to tube '%s'", what, j->id,
               t->name);
        if (i)
            EC(!less(j, hp->items[(i - 1) / 2]),
               "%s: heap order (job %" PRIu64 " at %u sorts before its parent %" PRIu64 ")", what,
               j->id, i, ((const job_t *)hp->items[(i - 1) / 2])->id);
    }
}

static void check_timer(ctx_t *x, const engine_timer_t *tm, int64_t want, const void *owner,
                        bool is_tube, const char *what) {
    const engine_t *e = x->e;
    EC(tm->owner == owner && tm->is_tube == is_tube, "%s: its timer knows its owner", what);
    if (want == ENGINE_NEVER) {
        EC(!tm->armed, "%s: its timer is not armed, nothing being due (armed at %" PRId64 ")", what,
           tm->at);
        return;
    }
    EC(tm->armed, "%s: its timer is armed for %" PRId64, what, want);
    EC(tm->at == want, "%s: its timer is set for %" PRId64 " (is %" PRId64 ")", what, want, tm->at);
    EC(tm->pos < e->timers.len && e->timers.items[tm->pos] == tm,
       "%s: its timer knows its place in the timer heap", what);
}

/* ---- sessions ---- */

static bool known_session(const ctx_t *x, const session_t *s) {
    for (size_t i = 0; i < x->o->nsessions; i++)
        if (x->o->sessions[i] == s)
            return true;
    return false;
}

static uint64_t check_session(ctx_t *x, const session_t *s, size_t k) {
    char what[48];
    snprintf(what, sizeof what, "session %zu", k);
    EC(s != NULL, "%s exists", what);
    for (size_t m = 0; m < k; m++)
        EC(x->o->sessions[m] != s, "%s is listed once", what);
    EC(tube_ok(x, s->use), "%s: uses a live tube", what);
    x->using[s->use->index]++;
    EC(s->nwatch >= 1 && s->nwatch <= s->capwatch,
       "%s: watches 1..capwatch tubes (%u, capacity %u)", what, s->nwatch, s->capwatch);
    for (uint32_t i = 0; i < s->nwatch; i++) {
        const tube_t *t = s->watch[i].tube;
        EC(tube_ok(x, t), "%s: watches live tubes", what);
        x->watching[t->index]++;
        for (uint32_t m = 0; m < i; m++)
            EC(s->watch[m].tube != t, "%s: watches '%s' once", what, t->name);
        if (s->waiting) {
            const waiter_t *w = &s->watch[i].node;
            EC(w->session == s, "%s: its waiter node in '%s' points back to it", what, t->name);
            EC(w->prev && w->next && w->prev->next == w && w->next->prev == w,
               "%s: waiting, it is linked into the waiters of '%s'", what, t->name);
        }
    }
    check_heap(x, &s->reserved, JOB_RESERVED, by_deadline, NULL, what);
    for (uint32_t i = 0; i < s->reserved.len; i++) {
        const job_t *j = s->reserved.items[i];
        x->reserved[j->tube]++;
        x->jobs[j->tube]++;
        if (x->o->live && x->o->now)
            EC(j->deadline > x->o->now,
               "%s: after a tick, no reservation's TTR has ended (job %" PRIu64 " ends %" PRId64
               ", now %" PRId64 ")",
               what, j->id, j->deadline, x->o->now);
    }
    int64_t at = ENGINE_NEVER;
    const job_t *top = s->reserved.len ? s->reserved.items[0] : NULL;
    if (top)
        at = s->waiting ? top->deadline - DEADLINE_MARGIN : top->deadline;
    if (s->waiting && s->wait_until < at)
        at = s->wait_until;
    check_timer(x, &s->timer, at, s, false, what);
    return at != ENGINE_NEVER;
}

/* ---- the id map ---- */

static bool visit_job(void *value, void *arg) {
    ctx_t *x = arg;
    const engine_t *e = x->e;
    const job_t *j = value;
    check_job(x, j);
    check_ext(x, j);
    const tube_t *t = e->tube_table[j->tube];
    uint32_t pos = job_pos(j);
    switch (job_state(j)) {
    case JOB_READY:
        EC(pos < t->ready.len && t->ready.items[pos] == j,
           "job %" PRIu64 ", ready, is in the ready heap of '%s'", j->id, t->name);
        break;
    case JOB_DELAYED:
        EC(pos < t->delayed.len && t->delayed.items[pos] == j,
           "job %" PRIu64 ", delayed, is in the delayed heap of '%s'", j->id, t->name);
        break;
    case JOB_BURIED:
        EC(pos < t->buried.len && t->buried.items[pos] == j,
           "job %" PRIu64 ", buried, is in the buried heap of '%s'", j->id, t->name);
        EC(j->deadline <= e->bury_seq,
           "job %" PRIu64 ": its burial order (%" PRId64 ") was handed out (bury_seq %" PRId64 ")",
           j->id, j->deadline, e->bury_seq);
        x->failed[j->tube] += engine_job_failed(e, j);
        break;
    case JOB_RESERVED: {
        size_t holders = 0;
        for (size_t i = 0; i < x->o->nsessions; i++)
            holders += engine_session_holds(x->o->sessions[i], j);
        EC(holders == 1, "job %" PRIu64 ", reserved, is held by exactly one session (%zu of %zu)",
           j->id, holders, x->o->nsessions);
        break;
    }
    }
    x->njobs++;
    x->bytes += j->size;
    return true;
}

/* ---- history ---- */

static void check_history(ctx_t *x) {
    const engine_t *e = x->e;
    const engine_check_opts_t *o = x->o;
    EC(e->history.count <= e->history_max,
       "history: at most history_max (%" PRIu64 ") finished tasks are kept (%" PRIu64 ")",
       e->history_max, e->history.count);
    uint64_t nh = 0;
    const task_history_t *last = NULL;
    for (const task_history_t *h = e->history_oldest; h; h = h->newer) {
        EC(++nh <= e->history.count, "history: the list is no longer than the map (%" PRIu64 ")",
           e->history.count);
        EC(u64map_get(&e->history, h->id) == h,
           "history: task %" PRIu64 " of the list is in the map", h->id);
        EC(h->end >= TASK_DONE && h->end <= TASK_CANCELLED,
           "history: task %" PRIu64 " ended done, failed or cancelled (%d)", h->id, (int)h->end);
        EC(engine_tube_name_valid(h->queue, h->queue_len) && h->queue[h->queue_len] == 0,
           "history: task %" PRIu64 " names a valid queue", h->id);
        if (o->live) {
            EC(h->id < e->next_id, "history: task %" PRIu64 " has an id below next_id", h->id);
            EC(engine_job_find(e, h->id) == NULL,
               "history: task %" PRIu64 " has finished, so it is not a live job", h->id);
            EC(h->created <= h->finished && (!o->now || h->finished <= o->now),
               "history: task %" PRIu64 " was created (%" PRId64 ") before it finished (%" PRId64
               ")",
               h->id, h->created, h->finished);
            EC(!last || last->finished <= h->finished,
               "history: finish order (task %" PRIu64 " finished %" PRId64 ", before %" PRIu64
               " at %" PRId64 ")",
               h->id, h->finished, last->id, last->finished);
            if (h->end == TASK_FAILED)
                EC(h->max_attempts > 0 && h->attempts >= h->max_attempts,
                   "history: task %" PRIu64 " failed only after its attempt limit (%u of %u)",
                   h->id, h->attempts, h->max_attempts);
            EC(!h->key || strlen(h->key) <= TUBE_NAME_MAX,
               "history: task %" PRIu64 " has a key of at most %d bytes", h->id, TUBE_NAME_MAX);
        }
        last = h;
    }
    EC(nh == e->history.count && e->history_newest == last,
       "history: the list holds what the map holds (%" PRIu64 " of %" PRIu64 "), newest last", nh,
       e->history.count);
    if (!e->history_max)
        EC(e->history_oldest == NULL, "history: nothing is kept when history_max is 0");
}

/* ---- the engine ---- */

void engine_check(const engine_t *e, const engine_check_opts_t *o) {
    ctx_t c = {.e = e, .o = o, .n = e->tube_table_len}, *x = &c;
    uint32_t n = x->n;

    /* Tubes: table, free slots, list and name map. */
    EC(e->ntubes >= 1, "tubes: there is at least the default tube");
    EC(e->tube_table_len <= e->tube_cap, "tubes: the table fits its capacity");
    EC(e->ntubes + e->nfree == e->tube_table_len,
       "tubes: live (%u) + free (%u) slots make the table (%u)", e->ntubes, e->nfree,
       e->tube_table_len);
    EC(e->tubes_by_name.count == e->ntubes, "tubes: the name map holds every tube (%zu of %u)",
       (size_t)e->tubes_by_name.count, e->ntubes);
    EC(e->default_tube != NULL && engine_tube_find(e, "default", 7) == e->default_tube,
       "tubes: 'default' is the default tube");
    uint32_t live = 0;
    for (uint32_t i = 0; i < n; i++)
        if (e->tube_table[i]) {
            live++;
            EC(e->tube_table[i]->index == i, "tubes: the tube at table slot %u knows its index", i);
        }
    EC(live == e->ntubes, "tubes: the table holds ntubes tubes (%u, ntubes %u)", live, e->ntubes);
    for (uint32_t k = 0; k < e->nfree; k++)
        EC(e->free_slots[k] < n && e->tube_table[e->free_slots[k]] == NULL,
           "tubes: free slot %u is free", e->free_slots[k]);

    size_t sz = (n ? n : 1) * sizeof(uint64_t);
    c.jobs = calloc(1, sz);
    c.using = calloc(1, sz);
    c.watching = calloc(1, sz);
    c.reserved = calloc(1, sz);
    c.keys = calloc(1, sz);
    c.failed = calloc(1, sz);
    if (!c.jobs || !c.using || !c.watching || !c.reserved || !c.keys || !c.failed) {
        fprintf(stderr, "engine_check: out of memory\n");
        abort();
    }

    /* Sessions. */
    uint64_t armed = 0, nreserved = 0, nwaiting = 0;
    for (size_t k = 0; k < o->nsessions; k++) {
        const session_t *s = o->sessions[k];
        armed += check_session(x, s, k);
        nreserved += s->reserved.len;
        nwaiting += s->waiting;
    }
    for (size_t k = 0; k < o->npending; k++) {
        const job_t *j = o->pending[k];
        EC(j->id > 0 && j->id < e->next_id && idmap_get(&e->jobs, j->id) == NULL,
           "pending job %" PRIu64 ": has an id, and is not in the id map yet", j->id);
        EC(j->tube < n && e->tube_table[j->tube] != NULL,
           "pending job %" PRIu64 ": its tube is live", j->id);
        c.jobs[j->tube]++;
    }

    /* Each tube. */
    uint64_t ready = 0, delayed = 0, buried = 0, urgent = 0;
    for (uint32_t i = 0; i < e->ntubes; i++) {
        const tube_t *t = e->tube_list[i];
        EC(t && t->list_pos == i, "tubes: the tube at list position %u knows it", i);
        EC(tube_ok(x, t), "tubes: '%s' of the list is in the table", t->name);
        EC(strlen(t->name) == t->name_len && engine_tube_name_valid(t->name, t->name_len),
           "tubes: '%s' has a valid name", t->name);
        EC(engine_tube_find(e, t->name, t->name_len) == t, "tubes: the name map finds '%s'",
           t->name);
        char what[TUBE_NAME_MAX + 32];
        snprintf(what, sizeof what, "tube '%s' ready", t->name);
        check_heap(x, &t->ready, JOB_READY, by_pri, t, what);
        snprintf(what, sizeof what, "tube '%s' delayed", t->name);
        check_heap(x, &t->delayed, JOB_DELAYED, by_deadline, t, what);
        snprintf(what, sizeof what, "tube '%s' buried", t->name);
        check_heap(x, &t->buried, JOB_BURIED, by_deadline, t, what);
        uint64_t u = 0;
        for (uint32_t k = 0; k < t->ready.len; k++)
            u += ((const job_t *)t->ready.items[k])->pri < URGENT_PRI;
        EC(t->urgent == u,
           "tube '%s': urgent (%" PRIu64 ") counts ready jobs of pri < %d (%" PRIu64 ")", t->name,
           t->urgent, URGENT_PRI, u);
        urgent += u;
        ready += t->ready.len;
        delayed += t->delayed.len;
        buried += t->buried.len;
        c.jobs[t->index] += (uint64_t)t->ready.len + t->delayed.len + t->buried.len;
        if (o->live && o->now && t->delayed.len)
            EC(((const job_t *)t->delayed.items[0])->deadline > o->now,
               "tube '%s': after a tick, no delayed job is due (one is due at %" PRId64
               ", now %" PRId64 ")",
               t->name, ((const job_t *)t->delayed.items[0])->deadline, o->now);
        if (o->live && o->now && t->pause_ns > 0)
            EC(t->unpause_at > o->now,
               "tube '%s': after a tick, no pause has ended (ends %" PRId64 ", now %" PRId64 ")",
               t->name, t->unpause_at, o->now);

        /* Waiters: waiting sessions watching this tube, each once. */
        uint64_t w = 0;
        const waiter_t *head = &t->waiters;
        EC(head->next && head->prev && head->next->prev == head && head->prev->next == head,
           "tube '%s': the waiter list is linked", t->name);
        for (const waiter_t *node = head->next; node != head; node = node->next) {
            EC(++w <= o->nsessions, "tube '%s': at most one waiter per session (%zu sessions)",
               t->name, o->nsessions);
            EC(node->next->prev == node, "tube '%s': the waiter list is linked", t->name);
            const session_t *s = node->session;
            EC(known_session(x, s) && s->waiting, "tube '%s': its waiters are waiting sessions",
               t->name);
            bool found = false;
            for (uint32_t k = 0; k < s->nwatch; k++)
                if (s->watch[k].tube == t && &s->watch[k].node == node)
                    found = true;
            EC(found, "tube '%s': a waiter is its session's node for this tube", t->name);
        }
        EC(t->waiting == w, "tube '%s': waiting (%u) counts its waiters (%" PRIu64 ")", t->name,
           t->waiting, w);
        /* The engine's matching rule. */
        if (t->pause_ns == 0)
            EC(!(t->ready.len && t->waiting),
               "tube '%s', not paused: never ready jobs (%u) and waiting sessions (%u) at once",
               t->name, t->ready.len, t->waiting);

        int64_t at = ENGINE_NEVER;
        if (t->delayed.len)
            at = ((const job_t *)t->delayed.items[0])->deadline;
        if (t->pause_ns > 0 && t->unpause_at < at)
            at = t->unpause_at;
        snprintf(what, sizeof what, "tube '%s'", t->name);
        check_timer(x, &t->timer, at, t, true, what);
        armed += at != ENGINE_NEVER;
        EC(isfinite(t->enqueued_rate) && t->enqueued_rate >= 0 && isfinite(t->done_rate) &&
               t->done_rate >= 0,
           "tube '%s': rates are finite and not negative (%g, %g)", t->name, t->enqueued_rate,
           t->done_rate);
    }

    /* The id map: every job where its state says, tallied per tube. */
    idmap_each(&e->jobs, visit_job, x);
    EC(c.njobs == e->jobs.count,
       "jobs: the id map walk finds its count (%" PRIu64 " of %" PRIu64 ")", c.njobs,
       (uint64_t)e->jobs.count);
    EC(c.bytes == e->count.job_bytes,
       "jobs: job_bytes (%" PRIu64 ") is the sum of the bodies (%" PRIu64 ")", e->count.job_bytes,
       c.bytes);
    EC(c.exts == e->ext.count,
       "task extensions: ext holds one per flagged job (%" PRIu64 ", %" PRIu64 " flagged)",
       (uint64_t)e->ext.count, c.exts);

    for (uint32_t i = 0; i < e->ntubes; i++) {
        const tube_t *t = e->tube_list[i];
        uint32_t k = t->index;
        EC(t->reserved == c.reserved[k],
           "tube '%s': reserved (%" PRIu64 ") counts its jobs the sessions hold (%" PRIu64 ")",
           t->name, t->reserved, c.reserved[k]);
        EC(t->using == c.using[k], "tube '%s': using (%u) counts sessions using it (%" PRIu64 ")",
           t->name, t->using, c.using[k]);
        EC(t->watching == c.watching[k],
           "tube '%s': watching (%u) counts sessions watching it (%" PRIu64 ")", t->name,
           t->watching, c.watching[k]);
        uint64_t want = c.jobs[k] + c.using[k] + c.watching[k] + (t == e->default_tube) +
                        (t->settings != NULL);
        EC(t->refs == want,
           "tube '%s': refs (%u) = jobs %" PRIu64 " + using %" PRIu64 " + watching %" PRIu64
           " + %d for default + %d for push settings",
           t->name, t->refs, c.jobs[k], c.using[k], c.watching[k], t == e->default_tube,
           t->settings != NULL);
        EC(!t->settings == !t->settings_len && (!t->settings || strlen(t->settings) ==
                                                                    t->settings_len),
           "tube '%s': settings text (%u bytes) is NUL-terminated text", t->name,
           t->settings_len);
        if (!e->restoring)
            EC(t->refs > 0, "tube '%s': a tube nothing refers to is gone (outside a replay)",
               t->name);
        /* Each key in the map was found held by a job of this tube, and
         * keys are distinct, so equal counts make the map exact. */
        EC(t->keys.count == c.keys[k],
           "tube '%s': its key map (%zu) holds the keys of its jobs (%" PRIu64 ")", t->name,
           (size_t)t->keys.count, c.keys[k]);
        EC(t->failed == c.failed[k],
           "tube '%s': failed (%" PRIu64 ") counts its buried jobs whose attempts ran out (%" PRIu64
           ")",
           t->name, t->failed, c.failed[k]);
    }

    /* The engine's counters. */
    EC(e->count.ready == ready, "counts: ready %" PRIu64 ", the heaps hold %" PRIu64,
       e->count.ready, ready);
    EC(e->count.delayed == delayed, "counts: delayed %" PRIu64 ", the heaps hold %" PRIu64,
       e->count.delayed, delayed);
    EC(e->count.buried == buried, "counts: buried %" PRIu64 ", the heaps hold %" PRIu64,
       e->count.buried, buried);
    EC(e->count.urgent == urgent, "counts: urgent %" PRIu64 ", the heaps hold %" PRIu64,
       e->count.urgent, urgent);
    EC(e->count.reserved == nreserved, "counts: reserved %" PRIu64 ", the sessions hold %" PRIu64,
       e->count.reserved, nreserved);
    EC(e->count.waiting == nwaiting, "counts: waiting %" PRIu64 ", sessions waiting %" PRIu64,
       e->count.waiting, nwaiting);
    EC(e->jobs.count == ready + delayed + buried + nreserved,
       "counts: the id map (%" PRIu64 ") holds exactly the jobs of the heaps and sessions",
       (uint64_t)e->jobs.count);
    if (o->live)
        EC(e->count.job_bytes_peak >= e->count.job_bytes,
           "counts: the peak of job bytes (%" PRIu64 ") is at least job bytes (%" PRIu64 ")",
           e->count.job_bytes_peak, e->count.job_bytes);

    check_history(x);

    /* The timer heap: exactly the armed timers, ordered. */
    EC(e->timers.len == armed, "timers: the heap (%u) holds exactly the armed timers (%" PRIu64 ")",
       e->timers.len, armed);
    for (uint32_t i = 0; i < e->timers.len; i++) {
        const engine_timer_t *tm = e->timers.items[i];
        EC(tm->armed && tm->pos == i, "timers: the timer at %u is armed and knows its place", i);
        if (i)
            EC(tm->at >= ((const engine_timer_t *)e->timers.items[(i - 1) / 2])->at,
               "timers: heap order at %u", i);
    }

    free(c.jobs);
    free(c.using);
    free(c.watching);
    free(c.reserved);
    free(c.keys);
    free(c.failed);
}
