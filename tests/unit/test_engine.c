/* test_engine.c - unit tests for the job engine (core/engine.c).
 *
 * The engine is pure: time is a parameter, so every timing rule (delays,
 * TTR, reserve timeouts, DEADLINE_SOON, pauses) is tested by passing
 * chosen instants to the calls and to engine_tick(). No sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/engine.h"

#define T0 (INT64_C(1700000000) * NS_PER_SEC)
#define SEC(x) ((int64_t)(x) * NS_PER_SEC)
#define MS(x) ((int64_t)(x) * 1000000)

/* ------------------------------------------------------------------ */
/* Session event recorder                                              */

#define REC_MAX 64

typedef struct rec {
    engine_t *e;
    session_t *s;
    int n;
    session_event_t ev[REC_MAX];
    uint64_t id[REC_MAX];
} rec_t;

/* The notify callback: records the event and checks what must hold at
 * the moment it is called (it must not call back into the engine, but it
 * may look). */
static void on_notify(void *owner, session_event_t ev, const job_t *job) {
    rec_t *r = owner;
    assert_true(r->n < REC_MAX);
    r->ev[r->n] = ev;
    r->id[r->n] = job ? job->id : 0;
    r->n++;
    assert_non_null(r->s);
    assert_false(r->s->waiting);
    if (ev == SESSION_RESERVED) {
        assert_non_null(job);
        assert_int_equal(job_state(job), JOB_RESERVED);
        assert_true(engine_session_holds(r->s, job));
    } else {
        assert_null(job);
    }
}

static session_t *new_session(engine_t *e, rec_t *r) {
    memset(r, 0, sizeof *r);
    r->e = e;
    r->s = engine_session_new(e, on_notify, r);
    assert_non_null(r->s);
    return r->s;
}

static void free_session(engine_t *e, rec_t *r, int64_t now) {
    engine_session_free(e, r->s, now);
    r->s = NULL;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static void use(engine_t *e, session_t *s, const char *name) {
    assert_int_equal(engine_use(e, s, name, strlen(name)), ENGINE_OK);
    assert_string_equal(s->use->name, name);
}

static uint32_t watch(engine_t *e, session_t *s, const char *name) {
    uint32_t n = 0;
    assert_int_equal(engine_watch(e, s, name, strlen(name), &n), ENGINE_OK);
    assert_int_equal(n, s->nwatch);
    return n;
}

static engine_result_t ignore(engine_t *e, session_t *s, const char *name, uint32_t *n) {
    return engine_ignore(e, s, name, strlen(name), n);
}

static tube_t *tube(engine_t *e, const char *name) {
    return engine_tube_find(e, name, strlen(name));
}

/* Put a job into s's used tube; returns its id. */
static uint64_t put_body(engine_t *e, session_t *s, uint32_t pri, uint32_t delay, uint32_t ttr,
                         const char *body, int64_t now) {
    uint32_t size = (uint32_t)strlen(body);
    job_t *j = engine_job_new(e, s->use, pri, delay, ttr, size, now);
    assert_non_null(j);
    memcpy(j->body, body, size);
    uint64_t id = j->id;
    assert_int_equal(engine_put(e, j, now), ENGINE_OK);
    return id;
}

static uint64_t put(engine_t *e, session_t *s, uint32_t pri, uint32_t delay, uint32_t ttr,
                    int64_t now) {
    return put_body(e, s, pri, delay, ttr, "body", now);
}

static job_t *job(engine_t *e, uint64_t id) {
    job_t *j = engine_job_find(e, id);
    assert_non_null(j);
    return j;
}

/* Reserve with timeout 0 and expect a job. */
static uint64_t reserve_id(engine_t *e, session_t *s, int64_t now) {
    job_t *j = NULL;
    engine_result_t r = engine_reserve(e, s, 0, now, &j);
    if (r != ENGINE_OK)
        fail_msg("reserve returned %d, expected a job", (int)r);
    assert_non_null(j);
    assert_true(engine_session_holds(s, j));
    return j->id;
}

static engine_result_t reserve_res(engine_t *e, session_t *s, int64_t timeout, int64_t now) {
    job_t *j = NULL;
    engine_result_t r = engine_reserve(e, s, timeout, now, &j);
    if (r != ENGINE_OK)
        assert_null(j);
    return r;
}

static const char *list_names(const engine_t *e, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < e->ntubes; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? "," : "", e->tube_list[i]->name);
    return buf;
}

static const char *watch_names(const session_t *s, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < s->nwatch; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? "," : "", s->watch[i].tube->name);
    return buf;
}

/* ------------------------------------------------------------------ */
/* The invariant checker                                                */

typedef struct inv {
    engine_t *e;
    session_t **ss;
    size_t nss;
    uint64_t jobs, ready, delayed, buried, reserved, urgent, bytes;
    uint64_t *tube_jobs;     /* by tube index */
    uint64_t *tube_reserved; /* by tube index */
} inv_t;

static bool ready_le(const job_t *a, const job_t *b) {
    return a->pri < b->pri || (a->pri == b->pri && a->id <= b->id);
}

static bool deadline_le(const job_t *a, const job_t *b) {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->id <= b->id);
}

/* A job heap: order, positions, states, and every member in the idmap. */
static void check_job_heap(const engine_t *e, const heap_t *h, job_state_t st,
                           bool (*le)(const job_t *, const job_t *)) {
    assert_true(h->len <= h->cap);
    for (uint32_t i = 0; i < h->len; i++) {
        const job_t *j = h->items[i];
        assert_int_equal(job_pos(j), i);
        assert_int_equal(job_state(j), st);
        assert_ptr_equal(engine_job_find(e, j->id), j);
        if (i > 0)
            assert_true(le(h->items[(i - 1) / 2], j));
    }
}

static bool inv_job_cb(void *value, void *arg) {
    inv_t *v = arg;
    const engine_t *e = v->e;
    const job_t *j = value;
    assert_true(j->tube < e->tube_table_len);
    const tube_t *t = e->tube_table[j->tube];
    assert_non_null(t);
    assert_true(j->ttr >= 1);
    assert_true(j->id >= 1 && j->id < e->next_id);
    v->jobs++;
    v->bytes += j->size;
    v->tube_jobs[j->tube]++;
    uint32_t pos = job_pos(j);
    int holders = 0;
    switch (job_state(j)) {
    case JOB_READY:
        assert_true(pos < t->ready.len);
        assert_ptr_equal(t->ready.items[pos], j);
        v->ready++;
        if (j->pri < URGENT_PRI)
            v->urgent++;
        break;
    case JOB_DELAYED:
        assert_true(pos < t->delayed.len);
        assert_ptr_equal(t->delayed.items[pos], j);
        v->delayed++;
        break;
    case JOB_BURIED:
        assert_true(pos < t->buried.len);
        assert_ptr_equal(t->buried.items[pos], j);
        v->buried++;
        break;
    case JOB_RESERVED:
        for (size_t i = 0; i < v->nss; i++)
            if (v->ss[i] && engine_session_holds(v->ss[i], j))
                holders++;
        assert_int_equal(holders, 1);
        v->reserved++;
        v->tube_reserved[j->tube]++;
        break;
    default:
        fail_msg("job %llu has an invalid state", (unsigned long long)j->id);
    }
    return true;
}

static int64_t expected_session_timer(const session_t *s) {
    int64_t at = ENGINE_NEVER;
    const job_t *j = heap_top(&s->reserved);
    if (j)
        at = s->waiting ? j->deadline - DEADLINE_MARGIN : j->deadline;
    if (s->waiting && s->wait_until < at)
        at = s->wait_until;
    return at;
}

static int64_t expected_tube_timer(const tube_t *t) {
    int64_t at = ENGINE_NEVER;
    const job_t *j = heap_top(&t->delayed);
    if (j)
        at = j->deadline;
    if (t->pause_ns > 0 && t->unpause_at < at)
        at = t->unpause_at;
    return at;
}

static void check_timer(const engine_t *e, const engine_timer_t *tm, int64_t expect,
                        uint32_t *armed, int64_t *soonest) {
    if (expect == ENGINE_NEVER) {
        assert_false(tm->armed);
        return;
    }
    assert_true(tm->armed);
    assert_int_equal(tm->at, expect);
    assert_true(tm->pos < e->timers.len);
    assert_ptr_equal(e->timers.items[tm->pos], tm);
    (*armed)++;
    if (expect < *soonest)
        *soonest = expect;
}

static bool session_watches(const session_t *s, const tube_t *t) {
    for (uint32_t i = 0; i < s->nwatch; i++)
        if (s->watch[i].tube == t)
            return true;
    return false;
}

/* Check every structural invariant of the engine, given every live
 * session (NULL entries are skipped). */
static void check_invariants(engine_t *e, session_t **ss, size_t nss) {
    inv_t v = {.e = e, .ss = ss, .nss = nss};
    v.tube_jobs = calloc(e->tube_table_len + 1, sizeof *v.tube_jobs);
    v.tube_reserved = calloc(e->tube_table_len + 1, sizeof *v.tube_reserved);
    assert_non_null(v.tube_jobs);
    assert_non_null(v.tube_reserved);
    idmap_each(&e->jobs, inv_job_cb, &v);
    assert_int_equal(v.jobs, e->jobs.count);

    /* Tubes. */
    assert_int_equal(e->ntubes, e->tubes_by_name.count);
    assert_int_equal(e->ntubes + e->nfree, e->tube_table_len);
    bool default_listed = false;
    uint64_t in_containers = 0;
    uint32_t armed = 0;
    int64_t soonest = ENGINE_NEVER;
    for (uint32_t i = 0; i < e->ntubes; i++) {
        const tube_t *t = e->tube_list[i];
        assert_int_equal(t->list_pos, i);
        assert_ptr_equal(e->tube_table[t->index], t);
        assert_ptr_equal(engine_tube_find(e, t->name, t->name_len), t);
        assert_int_equal(strlen(t->name), t->name_len);
        assert_true(engine_tube_name_valid(t->name, t->name_len));
        if (t == e->default_tube)
            default_listed = true;
        check_job_heap(e, &t->ready, JOB_READY, ready_le);
        check_job_heap(e, &t->delayed, JOB_DELAYED, deadline_le);
        check_job_heap(e, &t->buried, JOB_BURIED, deadline_le);
        for (uint32_t k = 0; k < t->ready.len; k++)
            assert_int_equal(((job_t *)t->ready.items[k])->tube, t->index);
        for (uint32_t k = 0; k < t->delayed.len; k++)
            assert_int_equal(((job_t *)t->delayed.items[k])->tube, t->index);
        for (uint32_t k = 0; k < t->buried.len; k++)
            assert_int_equal(((job_t *)t->buried.items[k])->tube, t->index);
        in_containers += t->ready.len + t->delayed.len + t->buried.len;
        uint64_t urgent = 0;
        for (uint32_t k = 0; k < t->ready.len; k++)
            urgent += ((job_t *)t->ready.items[k])->pri < URGENT_PRI;
        assert_int_equal(t->urgent, urgent);
        assert_int_equal(t->reserved, v.tube_reserved[t->index]);

        uint32_t using = 0, watching = 0, waiting_watchers = 0;
        for (size_t k = 0; k < nss; k++) {
            if (!ss[k])
                continue;
            using += ss[k]->use == t;
            if (session_watches(ss[k], t)) {
                watching++;
                waiting_watchers += ss[k]->waiting;
            }
        }
        assert_int_equal(t->using, using);
        assert_int_equal(t->watching, watching);
        assert_int_equal(t->refs, v.tube_jobs[t->index] + using + watching +
                                      (t == e->default_tube ? 1u : 0u));
        assert_true(t->refs > 0); /* unreferenced tubes are gone */

        /* The waiter list: well linked, every member waiting on t. */
        uint32_t nwait = 0;
        const waiter_t *w = t->waiters.next;
        for (; w != &t->waiters; w = w->next) {
            assert_ptr_equal(w->next->prev, w);
            assert_non_null(w->session);
            assert_true(w->session->waiting);
            assert_true(session_watches(w->session, t));
            nwait++;
            assert_true(nwait <= nss);
        }
        assert_int_equal(nwait, t->waiting);
        assert_int_equal(waiting_watchers, t->waiting);

        /* The key invariant: an unpaused tube never has both ready jobs
         * and waiting sessions. */
        if (t->pause_ns == 0 && t->ready.len && t->waiting)
            fail_msg("tube %s is not paused but has %u ready jobs and %u waiters", t->name,
                     t->ready.len, t->waiting);
        check_timer(e, &t->timer, expected_tube_timer(t), &armed, &soonest);
    }
    assert_true(default_listed);
    assert_ptr_equal(tube(e, "default"), e->default_tube);
    uint32_t live_slots = 0;
    for (uint32_t i = 0; i < e->tube_table_len; i++)
        live_slots += e->tube_table[i] != NULL;
    assert_int_equal(live_slots, e->ntubes);

    /* Sessions. */
    uint64_t waiting = 0;
    for (size_t k = 0; k < nss; k++) {
        const session_t *s = ss[k];
        if (!s)
            continue;
        assert_true(s->nwatch >= 1);
        assert_true(s->nwatch <= s->capwatch);
        for (uint32_t i = 0; i < s->nwatch; i++) {
            const tube_t *t = s->watch[i].tube;
            assert_ptr_equal(e->tube_table[t->index], t);
            for (uint32_t q = i + 1; q < s->nwatch; q++)
                assert_ptr_not_equal(s->watch[q].tube, t);
        }
        assert_ptr_equal(e->tube_table[s->use->index], s->use);
        check_job_heap(e, &s->reserved, JOB_RESERVED, deadline_le);
        in_containers += s->reserved.len;
        waiting += s->waiting;
        check_timer(e, &s->timer, expected_session_timer(s), &armed, &soonest);
    }
    assert_int_equal(in_containers, v.jobs);
    assert_int_equal(armed, e->timers.len);
    assert_int_equal(engine_next_deadline(e), soonest);

    /* Counters. */
    assert_int_equal(e->count.ready, v.ready);
    assert_int_equal(e->count.delayed, v.delayed);
    assert_int_equal(e->count.buried, v.buried);
    assert_int_equal(e->count.reserved, v.reserved);
    assert_int_equal(e->count.urgent, v.urgent);
    assert_int_equal(e->count.job_bytes, v.bytes);
    assert_int_equal(e->count.waiting, waiting);
    free(v.tube_jobs);
    free(v.tube_reserved);
}

/* After engine_tick(e, now) nothing due at or before now is left. */
static void check_nothing_due(engine_t *e, session_t **ss, size_t nss, int64_t now) {
    for (uint32_t i = 0; i < e->ntubes; i++) {
        const tube_t *t = e->tube_list[i];
        const job_t *j = heap_top(&t->delayed);
        if (j)
            assert_true(j->deadline > now);
        if (t->pause_ns > 0)
            assert_true(t->unpause_at > now);
    }
    for (size_t k = 0; k < nss; k++) {
        const session_t *s = ss[k];
        if (!s)
            continue;
        const job_t *j = heap_top(&s->reserved);
        if (j)
            assert_true(j->deadline > now);
        if (s->waiting) {
            assert_true(s->wait_until > now);
            assert_false(engine_deadline_soon(e, s, now));
        }
    }
    assert_true(engine_next_deadline(e) > now);
}

/* ------------------------------------------------------------------ */
/* Fixture                                                              */

typedef struct fx {
    engine_t *e;
    rec_t r[4];
    session_t *s[4];
} fx_t;

static int fx_setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->e = engine_new();
    assert_non_null(f->e);
    for (int i = 0; i < 4; i++)
        f->s[i] = new_session(f->e, &f->r[i]);
    *state = f;
    return 0;
}

static int fx_teardown(void **state) {
    fx_t *f = *state;
    for (int i = 0; i < 4; i++)
        if (f->r[i].s)
            free_session(f->e, &f->r[i], T0);
    engine_free(f->e);
    free(f);
    return 0;
}

static void fx_check(fx_t *f) {
    session_t *ss[4];
    for (int i = 0; i < 4; i++)
        ss[i] = f->r[i].s;
    check_invariants(f->e, ss, 4);
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */

static void test_new_engine(void **state) {
    (void)state;
    engine_t *e = engine_new();
    assert_non_null(e);
    assert_int_equal(e->ntubes, 1);
    assert_non_null(e->default_tube);
    assert_string_equal(e->default_tube->name, "default");
    assert_ptr_equal(tube(e, "default"), e->default_tube);
    assert_int_equal(engine_next_deadline(e), ENGINE_NEVER);
    assert_int_equal(e->count.total_jobs, 0);
    assert_null(engine_job_find(e, 1));
    check_invariants(e, NULL, 0);
    engine_tick(e, T0); /* nothing to do */
    check_invariants(e, NULL, 0);
    engine_free(e);
    engine_free(NULL); /* allowed */
}

static void test_job_state_names(void **state) {
    (void)state;
    assert_string_equal(job_state_name(JOB_READY), "ready");
    assert_string_equal(job_state_name(JOB_DELAYED), "delayed");
    assert_string_equal(job_state_name(JOB_RESERVED), "reserved");
    assert_string_equal(job_state_name(JOB_BURIED), "buried");
    assert_string_equal(job_state_name((job_state_t)7), "invalid");
}

static void test_tube_name_valid(void **state) {
    (void)state;
    static const struct {
        const char *name;
        bool ok;
    } t[] = {
        {"default", true},
        {"a", true},
        {"A-Z_a.z", true},
        {"0123456789", true},
        {"+/;.$_()", true},
        {"a-", true},
        {"-a", false},
        {"-", false},
        {"", false},
        {"a b", false},
        {"a*", false},
        {"a:b", false},
        {"a\tb", false},
        {"a\nb", false},
        {"a\rb", false},
        {"\xc3\xa9", false},
        {"a\x7f", false},
        {"a,b", false},
        {"a!", false},
        {"a#", false},
        {"a%", false},
        {"a&", false},
        {"a'b", false},
        {"a\"b", false},
        {"a@b", false},
        {"a[b]", false},
        {"a{b}", false},
        {"a|b", false},
        {"a\\b", false},
        {"a~b", false},
        {"a^b", false},
        {"a=b", false},
        {"a?b", false},
        {"a<b>", false},
        {"a`b", false},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (engine_tube_name_valid(t[i].name, strlen(t[i].name)) != t[i].ok)
            fail_msg("name \"%s\": expected %s", t[i].name, t[i].ok ? "valid" : "invalid");
    }
    /* Embedded NUL. */
    assert_false(engine_tube_name_valid("a\0b", 3));
    assert_false(engine_tube_name_valid("\0", 1));
    /* Length 200 ok, 201 not. */
    char name[202];
    memset(name, 'x', sizeof name);
    assert_true(engine_tube_name_valid(name, 200));
    assert_false(engine_tube_name_valid(name, 201));
    assert_true(engine_tube_name_valid(name, 1));
    /* Every byte value alone. */
    for (int c = 0; c < 256; c++) {
        char b[1] = {(char)c};
        bool exp = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   (c != 0 && strchr("+/;.$_()", c) != NULL);
        if (engine_tube_name_valid(b, 1) != exp)
            fail_msg("single byte 0x%02x: expected %s", c, exp ? "valid" : "invalid");
        char b2[2] = {'a', (char)c};
        bool exp2 = exp || c == '-';
        if (engine_tube_name_valid(b2, 2) != exp2)
            fail_msg("'a' then byte 0x%02x: expected %s", c, exp2 ? "valid" : "invalid");
    }
}

static void test_put_ready(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0];
    uint64_t id1 = put_body(e, s, 10, 0, 30, "hello", T0);
    uint64_t id2 = put_body(e, s, 2000, 0, 0, "", T0 + 5);
    assert_int_equal(id1, 1); /* ids start at 1 */
    assert_int_equal(id2, 2);
    job_t *j = job(e, id1);
    assert_int_equal(job_state(j), JOB_READY);
    assert_int_equal(j->pri, 10);
    assert_int_equal(j->delay, 0);
    assert_int_equal(j->ttr, 30);
    assert_int_equal(j->size, 5);
    assert_memory_equal(j->body, "hello", 5);
    assert_int_equal(j->created, T0);
    assert_ptr_equal(engine_job_tube(e, j), e->default_tube);
    assert_int_equal(j->reserves + j->timeouts + j->releases + j->buries + j->kicks, 0);
    /* ttr 0 becomes 1. */
    assert_int_equal(job(e, id2)->ttr, 1);
    assert_int_equal(job(e, id2)->size, 0);
    assert_int_equal(e->count.ready, 2);
    assert_int_equal(e->count.urgent, 1);
    assert_int_equal(e->count.total_jobs, 2);
    assert_int_equal(e->count.job_bytes, 5);
    assert_int_equal(e->default_tube->total_jobs, 2);
    assert_int_equal(e->default_tube->urgent, 1);
    assert_ptr_equal(engine_peek_ready(e->default_tube), j);
    assert_null(engine_peek_delayed(e->default_tube));
    assert_null(engine_peek_buried(e->default_tube));
    assert_int_equal(engine_job_time_left(j, T0 + SEC(100)), 0);
    assert_int_equal(engine_next_deadline(e), ENGINE_NEVER);
    /* Jobs go into the used tube. */
    use(e, s, "other");
    uint64_t id3 = put(e, s, 0, 0, 1, T0);
    assert_int_equal(id3, 3);
    assert_ptr_equal(engine_job_tube(e, job(e, id3)), tube(e, "other"));
    assert_int_equal(tube(e, "other")->total_jobs, 1);
    assert_int_equal(e->default_tube->total_jobs, 2);
    assert_int_equal(e->count.total_jobs, 3);
    fx_check(f);
}

static void test_urgent_threshold(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0];
    put(e, s, 1023, 0, 10, T0);
    put(e, s, 1024, 0, 10, T0);
    put(e, s, 0, 0, 10, T0);
    put(e, s, UINT32_MAX, 0, 10, T0);
    assert_int_equal(e->count.urgent, 2);
    assert_int_equal(e->default_tube->urgent, 2);
    /* Urgent counts ready jobs only: reserving one drops it. */
    uint64_t id = reserve_id(e, s, T0); /* pri 0 */
    assert_int_equal(job(e, id)->pri, 0);
    assert_int_equal(e->count.urgent, 1);
    /* Released with a non-urgent priority it is not urgent. */
    assert_int_equal(engine_release(e, s, id, 5000, 0, T0), ENGINE_OK);
    assert_int_equal(e->count.urgent, 1);
    assert_int_equal(e->default_tube->urgent, 1);
    /* Released urgent again. */
    id = reserve_id(e, s, T0); /* pri 1023 */
    assert_int_equal(job(e, id)->pri, 1023);
    assert_int_equal(e->count.urgent, 0);
    assert_int_equal(engine_release(e, s, id, 7, 0, T0), ENGINE_OK);
    assert_int_equal(e->count.urgent, 1);
    fx_check(f);
}

static void test_put_delayed(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0];
    uint64_t id = put(e, s, 5, 10, 30, T0);
    job_t *j = job(e, id);
    assert_int_equal(job_state(j), JOB_DELAYED);
    assert_int_equal(j->delay, 10);
    assert_int_equal(e->count.delayed, 1);
    assert_int_equal(e->count.ready, 0);
    assert_int_equal(e->count.urgent, 0);
    assert_ptr_equal(engine_peek_delayed(e->default_tube), j);
    assert_null(engine_peek_ready(e->default_tube));
    assert_int_equal(engine_next_deadline(e), T0 + SEC(10));
    assert_int_equal(engine_job_time_left(j, T0 + 1), 9);
    assert_int_equal(engine_job_time_left(j, T0 + MS(2500)), 7);
    /* Not reservable while delayed. */
    assert_int_equal(reserve_res(e, s, 0, T0 + SEC(9)), ENGINE_TIMED_OUT);
    engine_tick(e, T0 + SEC(10) - 1);
    assert_int_equal(job_state(j), JOB_DELAYED);
    fx_check(f);
    engine_tick(e, T0 + SEC(10));
    assert_int_equal(job_state(j), JOB_READY);
    assert_int_equal(e->count.delayed, 0);
    assert_int_equal(e->count.ready, 1);
    assert_int_equal(e->count.urgent, 1);
    assert_int_equal(engine_next_deadline(e), ENGINE_NEVER);
    assert_int_equal(engine_job_time_left(j, T0 + SEC(10)), 0);
    assert_int_equal(j->delay, 10); /* the delay is remembered */
    fx_check(f);
}

static void test_delayed_order_and_bulk_tick(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0];
    uint64_t a = put(e, s, 1, 3, 10, T0);
    uint64_t b = put(e, s, 1, 1, 10, T0);
    uint64_t c = put(e, s, 1, 2, 10, T0);
    uint64_t d = put(e, s, 1, 1, 10, T0); /* same deadline as b, later id */
    assert_int_equal(engine_peek_delayed(e->default_tube)->id, b);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(1));
    engine_tick(e, T0 + SEC(1));
    assert_int_equal(job_state(job(e, b)), JOB_READY);
    assert_int_equal(job_state(job(e, d)), JOB_READY);
    assert_int_equal(engine_peek_delayed(e->default_tube)->id, c);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(2));
    /* One tick far ahead releases everything due. */
    engine_tick(e, T0 + SEC(100));
    assert_int_equal(job_state(job(e, a)), JOB_READY);
    assert_int_equal(job_state(job(e, c)), JOB_READY);
    assert_int_equal(e->count.delayed, 0);
    assert_int_equal(engine_next_deadline(e), ENGINE_NEVER);
    /* Ready order is by id among equal priorities. */
    assert_int_equal(reserve_id(e, s, T0 + SEC(100)), a);
    assert_int_equal(reserve_id(e, s, T0 + SEC(100)), b);
    assert_int_equal(reserve_id(e, s, T0 + SEC(100)), c);
    assert_int_equal(reserve_id(e, s, T0 + SEC(100)), d);
    fx_check(f);
}

static void test_reserve_order(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *p = f->s[0], *w = f->s[1];
    uint64_t id1 = put(e, p, 5, 0, 10, T0);
    uint64_t id2 = put(e, p, 1, 0, 10, T0);
    uint64_t id3 = put(e, p, 5, 0, 10, T0);
    uint64_t id4 = put(e, p, 1, 0, 10, T0);
    use(e, p, "a");
    uint64_t id5 = put(e, p, 0, 0, 10, T0);
    uint64_t id6 = put(e, p, 5, 0, 10, T0);
    use(e, p, "b");
    uint64_t id7 = put(e, p, 0, 0, 10, T0); /* b is not watched */
    assert_int_equal(watch(e, w, "a"), 2);
    assert_int_equal(reserve_id(e, w, T0), id5);
    assert_int_equal(reserve_id(e, w, T0), id2);
    assert_int_equal(reserve_id(e, w, T0), id4);
    assert_int_equal(reserve_id(e, w, T0), id1);
    assert_int_equal(reserve_id(e, w, T0), id3);
    assert_int_equal(reserve_id(e, w, T0), id6);
    assert_int_equal(reserve_res(e, w, 0, T0), ENGINE_TIMED_OUT);
    assert_int_equal(job_state(job(e, id7)), JOB_READY);
    assert_int_equal(e->count.reserved, 6);
    assert_int_equal(e->default_tube->reserved, 4);
    assert_int_equal(tube(e, "a")->reserved, 2);
    /* reserves counts each reservation */
    assert_int_equal(job(e, id5)->reserves, 1);
    job_t *j = job(e, id1);
    assert_int_equal(j->deadline, T0 + SEC(10));
    assert_int_equal(engine_job_time_left(j, T0 + MS(1)), 9);
    assert_int_equal(engine_job_time_left(j, T0 + MS(1500)), 8);
    fx_check(f);
}

static void test_reserve_timeout_zero(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0];
    assert_int_equal(reserve_res(e, s, 0, T0), ENGINE_TIMED_OUT);
    assert_false(s->waiting);
    assert_int_equal(e->count.waiting, 0);
    assert_int_equal(engine_next_deadline(e), ENGINE_NEVER);
    assert_int_equal(f->r[0].n, 0);
    fx_check(f);
}

static void test_reserve_waits_then_put_wakes(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *w = f->s[0], *p = f->s[1];
    rec_t *rw = &f->r[0];
    assert_int_equal(reserve_res(e, w, -1, T0), ENGINE_WAITING);
    assert_true(w->waiting);
    assert_int_equal(e->count.waiting, 1);
    assert_int_equal(e->default_tube->waiting, 1);
    assert_int_equal(engine_next_deadline(e), ENGINE_NEVER); /* no timeout */
    fx_check(f);
    /* A put into an unwatched tube does not wake it. */
    use(e, p, "elsewhere");
    put(e, p, 0, 0, 10, T0);
    assert_int_equal(rw->n, 0);
    assert_true(w->waiting);
    /* A delayed put into the watched tube does not either, until due. */
    use(e, p, "default");
    uint64_t d = put(e, p, 0, 2, 10, T0);
    assert_int_equal(rw->n, 0);
    fx_check(f);
    /* A ready put does: the job is reserved straight away. */
    uint64_t id = put(e, p, 3, 0, 7, T0 + SEC(1));
    assert_int_equal(rw->n, 1);
    assert_int_equal(rw->ev[0], SESSION_RESERVED);
    assert_int_equal(rw->id[0], id);
    assert_false(w->waiting);
    assert_int_equal(e->count.waiting, 0);
    assert_int_equal(e->default_tube->waiting, 0);
    job_t *j = job(e, id);
    assert_int_equal(job_state(j), JOB_RESERVED);
    assert_true(engine_session_holds(w, j));
    assert_int_equal(j->deadline, T0 + SEC(1) + SEC(7));
    assert_int_equal(j->reserves, 1);
    assert_int_equal(e->count.ready, 1); /* the one in "elsewhere" */
    assert_int_equal(e->count.reserved, 1);
    fx_check(f);
    /* Waiting again, the delayed job wakes it when it comes due. */
    assert_int_equal(reserve_res(e, w, -1, T0 + SEC(1)), ENGINE_WAITING);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(2));
    engine_tick(e, T0 + SEC(2));
    assert_int_equal(rw->n, 2);
    assert_int_equal(rw->ev[1], SESSION_RESERVED);
    assert_int_equal(rw->id[1], d);
    fx_check(f);
}

static void test_waiters_served_oldest_first(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *p = f->s[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(reserve_res(e, f->s[i], -1, T0 + i), ENGINE_WAITING);
    assert_int_equal(e->count.waiting, 3);
    assert_int_equal(e->default_tube->waiting, 3);
    fx_check(f);
    uint64_t a = put(e, p, 0, 0, 10, T0);
    uint64_t b = put(e, p, 0, 0, 10, T0);
    assert_int_equal(f->r[0].n, 1);
    assert_int_equal(f->r[0].id[0], a);
    assert_int_equal(f->r[1].n, 1);
    assert_int_equal(f->r[1].id[0], b);
    assert_int_equal(f->r[2].n, 0);
    assert_true(f->s[2]->waiting);
    assert_int_equal(e->count.waiting, 1);
    fx_check(f);
}

static void test_waiter_on_several_tubes(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *w = f->s[0], *p = f->s[1];
    watch(e, w, "a");
    watch(e, w, "b");
    assert_int_equal(reserve_res(e, w, -1, T0), ENGINE_WAITING);
    assert_int_equal(tube(e, "a")->waiting, 1);
    assert_int_equal(tube(e, "b")->waiting, 1);
    assert_int_equal(e->default_tube->waiting, 1);
    assert_int_equal(e->count.waiting, 1); /* one session */
    fx_check(f);
    use(e, p, "b");
    uint64_t id = put(e, p, 9, 0, 10, T0);
    assert_int_equal(f->r[0].n, 1);
    assert_int_equal(f->r[0].id[0], id);
    assert_int_equal(tube(e, "a")->waiting, 0);
    assert_int_equal(tube(e, "b")->waiting, 0);
    assert_int_equal(e->default_tube->waiting, 0);
    /* A second put goes nowhere: the session is no longer waiting. */
    put(e, p, 9, 0, 10, T0);
    assert_int_equal(f->r[0].n, 1);
    assert_int_equal(tube(e, "b")->ready.len, 1);
    fx_check(f);
}

static void test_reserve_with_timeout_times_out(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *w = f->s[0], *p = f->s[1];
    assert_int_equal(reserve_res(e, w, SEC(5), T0), ENGINE_WAITING);
    assert_int_equal(w->wait_until, T0 + SEC(5));
    assert_int_equal(engine_next_deadline(e), T0 + SEC(5));
    engine_tick(e, T0 + SEC(5) - 1);
    assert_int_equal(f->r[0].n, 0);
    assert_true(w->waiting);
    fx_check(f);
    engine_tick(e, T0 + SEC(5));
    assert_int_equal(f->r[0].n, 1);
    assert_int_equal(f->r[0].ev[0], SESSION_TIMED_OUT);
    assert_false(w->waiting);
    assert_int_equal(e->count.waiting, 0);
    assert_int_equal(e->default_tube->waiting, 0);
    assert_int_equal(engine_next_deadline(e), ENGINE_NEVER);
    /* Later puts do not reach it. */
    put(e, p, 0, 0, 10, T0 + SEC(6));
    assert_int_equal(f->r[0].n, 1);
    assert_int_equal(e->count.ready, 1);
    fx_check(f);
}

static void test_reserve_fractional_timeout(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *w = f->s[0];
    assert_int_equal(reserve_res(e, w, MS(1500), T0 + 7), ENGINE_WAITING);
    assert_int_equal(engine_next_deadline(e), T0 + 7 + MS(1500));
    engine_tick(e, T0 + 7 + MS(1500) - 1);
    assert_int_equal(f->r[0].n, 0);
    engine_tick(e, T0 + 7 + MS(1500));
    assert_int_equal(f->r[0].n, 1);
    assert_int_equal(f->r[0].ev[0], SESSION_TIMED_OUT);
    fx_check(f);
}

static void test_cancel_wait(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *w = f->s[0], *p = f->s[1];
    assert_int_equal(reserve_res(e, w, SEC(5), T0), ENGINE_WAITING);
    engine_cancel_wait(e, w);
    assert_false(w->waiting);
    assert_int_equal(e->count.waiting, 0);
    assert_int_equal(e->default_tube->waiting, 0);
    assert_int_equal(engine_next_deadline(e), ENGINE_NEVER);
    engine_tick(e, T0 + SEC(10));
    assert_int_equal(f->r[0].n, 0); /* no TIMED_OUT after a cancel */
    put(e, p, 0, 0, 10, T0 + SEC(10));
    assert_int_equal(f->r[0].n, 0);
    /* Cancelling when not waiting is harmless. */
    engine_cancel_wait(e, w);
    fx_check(f);
}

static void test_ttr_expiry(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0];
    uint64_t id = put(e, s, 4, 0, 3, T0);
    assert_int_equal(reserve_id(e, s, T0), id);
    job_t *j = job(e, id);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(3));
    assert_int_equal(engine_job_time_left(j, T0 + 1), 2);
    assert_int_equal(engine_job_time_left(j, T0 + MS(500)), 2);
    engine_tick(e, T0 + SEC(3) - 1);
    assert_int_equal(job_state(j), JOB_RESERVED);
    assert_int_equal(j->timeouts, 0);
    fx_check(f);
    engine_tick(e, T0 + SEC(3));
    assert_int_equal(job_state(j), JOB_READY);
    assert_int_equal(j->timeouts, 1);
    assert_int_equal(j->reserves, 1);
    assert_int_equal(e->count.timeouts, 1);
    assert_int_equal(e->count.reserved, 0);
    assert_int_equal(e->count.ready, 1);
    assert_int_equal(e->count.urgent, 1);
    assert_int_equal(e->default_tube->reserved, 0);
    assert_false(engine_session_holds(s, j));
    assert_int_equal(engine_next_deadline(e), ENGINE_NEVER);
    assert_int_equal(f->r[0].n, 0); /* not waiting: no event */
    /* The session no longer holds it. */
    assert_int_equal(engine_release(e, s, id, 0, 0, T0 + SEC(3)), ENGINE_NOT_FOUND);
    assert_int_equal(engine_touch(e, s, id, T0 + SEC(3)), ENGINE_NOT_FOUND);
    assert_int_equal(engine_bury(e, s, id, 0, T0), ENGINE_NOT_FOUND);
    /* Reserved again, it times out again. */
    assert_int_equal(reserve_id(e, s, T0 + SEC(4)), id);
    assert_int_equal(j->reserves, 2);
    engine_tick(e, T0 + SEC(7));
    assert_int_equal(j->timeouts, 2);
    assert_int_equal(e->count.timeouts, 2);
    fx_check(f);
}

static void test_ttr_expiry_goes_to_waiter(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *a = f->s[0], *b = f->s[1];
    uint64_t id = put(e, a, 0, 0, 2, T0);
    assert_int_equal(reserve_id(e, a, T0), id);
    assert_int_equal(reserve_res(e, b, SEC(10), T0), ENGINE_WAITING);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(2));
    engine_tick(e, T0 + SEC(2));
    assert_int_equal(f->r[0].n, 0);
    assert_int_equal(f->r[1].n, 1);
    assert_int_equal(f->r[1].ev[0], SESSION_RESERVED);
    assert_int_equal(f->r[1].id[0], id);
    job_t *j = job(e, id);
    assert_true(engine_session_holds(b, j));
    assert_false(engine_session_holds(a, j));
    assert_int_equal(j->timeouts, 1);
    assert_int_equal(j->reserves, 2);
    assert_int_equal(j->deadline, T0 + SEC(4));
    assert_int_equal(engine_next_deadline(e), T0 + SEC(4));
    fx_check(f);
}

static void test_deadline_soon_immediate(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0], *p = f->s[1];
    uint64_t id = put(e, p, 0, 0, 5, T0);
    assert_int_equal(reserve_id(e, s, T0), id);
    assert_false(engine_deadline_soon(e, s, T0));
    /* More than a second left: an ordinary reserve. */
    assert_false(engine_deadline_soon(e, s, T0 + SEC(4) - 1));
    assert_int_equal(reserve_res(e, s, 0, T0 + SEC(4) - 1), ENGINE_TIMED_OUT);
    /* Within the last second: DEADLINE_SOON, whatever the timeout. */
    assert_true(engine_deadline_soon(e, s, T0 + SEC(4)));
    assert_int_equal(reserve_res(e, s, 0, T0 + SEC(4)), ENGINE_DEADLINE_SOON);
    assert_int_equal(reserve_res(e, s, -1, T0 + SEC(4)), ENGINE_DEADLINE_SOON);
    assert_int_equal(reserve_res(e, s, SEC(10), T0 + MS(4500)), ENGINE_DEADLINE_SOON);
    assert_false(s->waiting);
    assert_int_equal(e->count.waiting, 0);
    /* Another session is not affected. */
    assert_false(engine_deadline_soon(e, p, T0 + SEC(4)));
    assert_int_equal(reserve_res(e, p, 0, T0 + SEC(4)), ENGINE_TIMED_OUT);
    /* With a job ready in a watched tube, reserve hands it out instead. */
    uint64_t id2 = put(e, p, 0, 0, 5, T0 + SEC(4));
    assert_int_equal(reserve_id(e, s, T0 + SEC(4)), id2);
    fx_check(f);
}

static void test_deadline_soon_ready_in_paused_tube_waits(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0], *p = f->s[1];
    uint64_t id = put(e, p, 0, 0, 5, T0);
    assert_int_equal(reserve_id(e, s, T0), id);
    /* A job ready in a watched but paused tube: beanstalkd's rule is to
     * wait rather than answer DEADLINE_SOON at once. */
    use(e, p, "a");
    watch(e, s, "a");
    put(e, p, 0, 0, 5, T0);
    assert_int_equal(engine_pause(e, "a", 1, SEC(60), T0), ENGINE_OK);
    assert_int_equal(reserve_res(e, s, -1, T0 + SEC(4)), ENGINE_WAITING);
    /* ... and the margin, already reached, fires on the next tick. */
    assert_int_equal(engine_next_deadline(e), T0 + SEC(4));
    fx_check(f);
    engine_tick(e, T0 + SEC(4));
    assert_int_equal(f->r[0].n, 1);
    assert_int_equal(f->r[0].ev[0], SESSION_DEADLINE_SOON);
    assert_false(s->waiting);
    assert_int_equal(job_state(job(e, id)), JOB_RESERVED);
    fx_check(f);
}

static void test_deadline_soon_while_waiting(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0];
    uint64_t id = put(e, s, 0, 0, 10, T0);
    assert_int_equal(reserve_id(e, s, T0), id);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(10));
    assert_int_equal(reserve_res(e, s, -1, T0 + SEC(1)), ENGINE_WAITING);
    /* While waiting the session's timer is the start of the margin. */
    assert_int_equal(engine_next_deadline(e), T0 + SEC(9));
    fx_check(f);
    engine_tick(e, T0 + SEC(9) - 1);
    assert_int_equal(f->r[0].n, 0);
    assert_true(s->waiting);
    engine_tick(e, T0 + SEC(9));
    assert_int_equal(f->r[0].n, 1);
    assert_int_equal(f->r[0].ev[0], SESSION_DEADLINE_SOON);
    assert_false(s->waiting);
    assert_int_equal(e->count.waiting, 0);
    job_t *j = job(e, id);
    assert_int_equal(job_state(j), JOB_RESERVED);
    /* No longer waiting: the timer is the TTR end again. */
    assert_int_equal(engine_next_deadline(e), T0 + SEC(10));
    fx_check(f);
    engine_tick(e, T0 + SEC(10));
    assert_int_equal(job_state(j), JOB_READY);
    assert_int_equal(j->timeouts, 1);
    assert_int_equal(f->r[0].n, 1); /* no further event */
    fx_check(f);
}

static void test_deadline_soon_before_wait_timeout(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0];
    put(e, s, 0, 0, 3, T0);
    reserve_id(e, s, T0);
    /* Wait timeout (5 s) is later than the margin (2 s). */
    assert_int_equal(reserve_res(e, s, SEC(5), T0), ENGINE_WAITING);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(2));
    /* One tick far in the future: one event only, DEADLINE_SOON. */
    engine_tick(e, T0 + SEC(60));
    assert_int_equal(f->r[0].n, 1);
    assert_int_equal(f->r[0].ev[0], SESSION_DEADLINE_SOON);
    assert_int_equal(e->count.timeouts, 1);
    fx_check(f);
    /* Wait timeout earlier than the margin: TIMED_OUT first. (The job
     * that timed out above is deleted first.) */
    assert_int_equal(reserve_id(e, s, T0 + SEC(60)), 1);
    assert_int_equal(engine_delete(e, s, 1, T0), ENGINE_OK);
    put(e, s, 0, 0, 10, T0 + SEC(60));
    reserve_id(e, s, T0 + SEC(60));
    assert_int_equal(reserve_res(e, s, SEC(2), T0 + SEC(60)), ENGINE_WAITING);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(62));
    engine_tick(e, T0 + SEC(62));
    assert_int_equal(f->r[0].n, 2);
    assert_int_equal(f->r[0].ev[1], SESSION_TIMED_OUT);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(70));
    fx_check(f);
}

static void test_waiting_session_gets_job_then_deadline(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0], *p = f->s[1];
    uint64_t a = put(e, p, 0, 0, 4, T0);
    assert_int_equal(reserve_id(e, s, T0), a);
    assert_int_equal(reserve_res(e, s, -1, T0 + SEC(1)), ENGINE_WAITING);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(3));
    uint64_t b = put(e, p, 0, 0, 100, T0 + SEC(2));
    assert_int_equal(f->r[0].n, 1);
    assert_int_equal(f->r[0].id[0], b);
    /* Not waiting: the timer is job a's TTR end. */
    assert_int_equal(engine_next_deadline(e), T0 + SEC(4));
    fx_check(f);
}

static void test_release(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0], *o = f->s[1];
    uint64_t id = put(e, s, 5, 0, 10, T0);
    uint64_t other = put(e, s, 6, 0, 10, T0);
    assert_int_equal(reserve_id(e, s, T0), id);
    /* Only the holder can release. */
    assert_int_equal(engine_release(e, o, id, 1, 0, T0), ENGINE_NOT_FOUND);
    assert_int_equal(engine_release(e, s, other, 1, 0, T0), ENGINE_NOT_FOUND); /* ready */
    assert_int_equal(engine_release(e, s, 999, 1, 0, T0), ENGINE_NOT_FOUND);
    assert_int_equal(engine_release(e, s, id, 2000, 0, T0 + SEC(1)), ENGINE_OK);
    job_t *j = job(e, id);
    assert_int_equal(job_state(j), JOB_READY);
    assert_int_equal(j->pri, 2000);
    assert_int_equal(j->releases, 1);
    assert_int_equal(j->delay, 0);
    assert_int_equal(e->count.reserved, 0);
    assert_int_equal(e->count.urgent, 1); /* only "other" */
    assert_int_equal(engine_next_deadline(e), ENGINE_NEVER);
    /* Its new priority puts it behind "other". */
    assert_int_equal(reserve_id(e, s, T0 + SEC(1)), other);
    assert_int_equal(reserve_id(e, s, T0 + SEC(1)), id);
    /* Release with a delay. */
    assert_int_equal(engine_release(e, s, id, 3, 4, T0 + SEC(2)), ENGINE_OK);
    assert_int_equal(job_state(j), JOB_DELAYED);
    assert_int_equal(j->delay, 4);
    assert_int_equal(j->pri, 3);
    assert_int_equal(j->releases, 2);
    assert_int_equal(j->deadline, T0 + SEC(6));
    assert_int_equal(engine_job_time_left(j, T0 + MS(2500)), 3);
    assert_int_equal(e->count.delayed, 1);
    /* The delay (T0+6) ends before "other"'s TTR (T0+11). */
    assert_int_equal(engine_next_deadline(e), T0 + SEC(6));
    engine_tick(e, T0 + SEC(6));
    assert_int_equal(job_state(j), JOB_READY);
    fx_check(f);
}

static void test_release_wakes_waiter(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0], *w = f->s[1];
    uint64_t id = put(e, s, 5, 0, 10, T0);
    assert_int_equal(reserve_id(e, s, T0), id);
    assert_int_equal(reserve_res(e, w, -1, T0), ENGINE_WAITING);
    assert_int_equal(engine_release(e, s, id, 5, 0, T0 + SEC(1)), ENGINE_OK);
    assert_int_equal(f->r[1].n, 1);
    assert_int_equal(f->r[1].id[0], id);
    assert_true(engine_session_holds(w, job(e, id)));
    /* A delayed release reaches the waiter when due. */
    assert_int_equal(engine_release(e, w, id, 5, 2, T0 + SEC(1)), ENGINE_OK);
    assert_int_equal(reserve_res(e, s, -1, T0 + SEC(1)), ENGINE_WAITING);
    assert_int_equal(f->r[0].n, 0);
    engine_tick(e, T0 + SEC(3));
    assert_int_equal(f->r[0].n, 1);
    assert_int_equal(f->r[0].id[0], id);
    fx_check(f);
}

static void test_bury_fifo_and_kick(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0], *o = f->s[1];
    uint64_t a = put(e, s, 1, 0, 10, T0);
    uint64_t b = put(e, s, 2, 0, 10, T0);
    uint64_t c = put(e, s, 3, 0, 10, T0);
    reserve_id(e, s, T0);
    reserve_id(e, s, T0);
    reserve_id(e, s, T0);
    assert_int_equal(engine_bury(e, o, c, 0, T0), ENGINE_NOT_FOUND); /* not the holder */
    assert_int_equal(engine_bury(e, s, 12345, 0, T0), ENGINE_NOT_FOUND);
    /* Bury in the order c, a, b, with new priorities. */
    assert_int_equal(engine_bury(e, s, c, 100, T0), ENGINE_OK);
    assert_int_equal(engine_bury(e, s, a, 50, T0), ENGINE_OK);
    assert_int_equal(engine_bury(e, s, b, 0, T0), ENGINE_OK);
    assert_int_equal(engine_bury(e, s, b, 0, T0), ENGINE_NOT_FOUND); /* already buried */
    assert_int_equal(job_state(job(e, c)), JOB_BURIED);
    assert_int_equal(job(e, c)->pri, 100);
    assert_int_equal(job(e, c)->buries, 1);
    assert_int_equal(e->count.buried, 3);
    assert_int_equal(e->count.reserved, 0);
    assert_int_equal(e->count.urgent, 0);
    assert_int_equal(engine_job_time_left(job(e, c), T0), 0);
    assert_int_equal(engine_next_deadline(e), ENGINE_NEVER);
    /* Buried order is FIFO, not priority. */
    assert_int_equal(engine_peek_buried(e->default_tube)->id, c);
    assert_int_equal(reserve_res(e, s, 0, T0), ENGINE_TIMED_OUT);
    fx_check(f);
    assert_int_equal(engine_kick(e, e->default_tube, 1, T0), 1);
    assert_int_equal(job_state(job(e, c)), JOB_READY);
    assert_int_equal(job(e, c)->kicks, 1);
    assert_int_equal(engine_peek_buried(e->default_tube)->id, a);
    /* Re-buried, a job goes to the back of the line. */
    assert_int_equal(engine_kick_job(e, a, T0), ENGINE_OK);
    assert_int_equal(engine_peek_buried(e->default_tube)->id, b);
    assert_int_equal(engine_reserve_job(e, s, a, T0, &(job_t *){NULL}), ENGINE_OK);
    assert_int_equal(engine_bury(e, s, a, 50, T0), ENGINE_OK);
    assert_int_equal(job(e, a)->buries, 2);
    assert_int_equal(engine_peek_buried(e->default_tube)->id, b);
    assert_int_equal(engine_kick(e, e->default_tube, 1, T0), 1);
    assert_int_equal(job_state(job(e, b)), JOB_READY);
    assert_int_equal(engine_peek_buried(e->default_tube)->id, a);
    fx_check(f);
}

static void test_touch(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0], *o = f->s[1];
    uint64_t id = put(e, s, 0, 0, 10, T0);
    uint64_t ready = put(e, s, 0, 0, 10, T0);
    assert_int_equal(reserve_id(e, s, T0), id);
    job_t *j = job(e, id);
    assert_int_equal(engine_touch(e, o, id, T0 + SEC(8)), ENGINE_NOT_FOUND);
    assert_int_equal(engine_touch(e, s, ready, T0 + SEC(8)), ENGINE_NOT_FOUND);
    assert_int_equal(engine_touch(e, s, 777, T0 + SEC(8)), ENGINE_NOT_FOUND);
    assert_int_equal(engine_touch(e, s, id, T0 + SEC(8)), ENGINE_OK);
    assert_int_equal(j->deadline, T0 + SEC(18));
    assert_int_equal(engine_job_time_left(j, T0 + SEC(8) + MS(200)), 9);
    assert_int_equal(engine_job_time_left(j, T0 + SEC(17) + MS(900)), 0);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(18));
    assert_false(engine_deadline_soon(e, s, T0 + SEC(9)));
    engine_tick(e, T0 + SEC(10));
    assert_int_equal(job_state(j), JOB_RESERVED);
    assert_int_equal(j->timeouts, 0);
    fx_check(f);
    engine_tick(e, T0 + SEC(18));
    assert_int_equal(job_state(j), JOB_READY);
    assert_int_equal(j->timeouts, 1);
    fx_check(f);
}

static void test_touch_reorders_reservations(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0];
    uint64_t a = put(e, s, 0, 0, 5, T0);
    uint64_t b = put(e, s, 1, 0, 10, T0);
    reserve_id(e, s, T0);
    reserve_id(e, s, T0);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(5));
    /* Touching a moves its TTR end; past b's (T0+10) b becomes the
     * soonest. */
    assert_int_equal(engine_touch(e, s, a, T0 + SEC(4)), ENGINE_OK);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(9));
    assert_int_equal(engine_touch(e, s, a, T0 + SEC(8)), ENGINE_OK);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(10));
    engine_tick(e, T0 + SEC(10));
    assert_int_equal(job_state(job(e, b)), JOB_READY);
    assert_int_equal(job_state(job(e, a)), JOB_RESERVED);
    fx_check(f);
}

static void test_delete(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0], *o = f->s[1];
    uint64_t r = put_body(e, s, 0, 0, 10, "12345", T0);
    uint64_t ready = put_body(e, s, 0, 0, 10, "123", T0);
    uint64_t delayed = put_body(e, s, 0, 5, 10, "1", T0);
    uint64_t buried = put_body(e, s, 0, 0, 10, "12", T0);
    uint64_t theirs = put_body(e, s, 0, 0, 10, "1234", T0);
    assert_int_equal(reserve_id(e, s, T0), r);
    assert_int_equal(reserve_id(e, s, T0), ready);
    assert_int_equal(engine_release(e, s, ready, 0, 0, T0), ENGINE_OK);
    assert_int_equal(engine_reserve_job(e, s, buried, T0, &(job_t *){NULL}), ENGINE_OK);
    assert_int_equal(engine_bury(e, s, buried, 0, T0), ENGINE_OK);
    assert_int_equal(engine_reserve_job(e, o, theirs, T0, &(job_t *){NULL}), ENGINE_OK);
    assert_int_equal(e->count.job_bytes, 15);
    fx_check(f);

    /* Someone else's reservation: NOT_FOUND, also without a session. */
    assert_int_equal(engine_delete(e, s, theirs, T0), ENGINE_NOT_FOUND);
    assert_int_equal(engine_delete(e, NULL, theirs, T0), ENGINE_NOT_FOUND);
    assert_int_equal(engine_delete(e, s, 999, T0), ENGINE_NOT_FOUND);
    assert_int_equal(engine_delete(e, s, 0, T0), ENGINE_NOT_FOUND);
    assert_int_equal(e->default_tube->deletes, 0);

    assert_int_equal(engine_delete(e, s, r, T0), ENGINE_OK);
    assert_null(engine_job_find(e, r));
    assert_int_equal(e->count.reserved, 1);
    assert_int_equal(engine_delete(e, s, ready, T0), ENGINE_OK);
    assert_int_equal(engine_delete(e, s, delayed, T0), ENGINE_OK);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(10)); /* o's reservation */
    assert_int_equal(engine_delete(e, NULL, buried, T0), ENGINE_OK);
    assert_int_equal(engine_delete(e, o, theirs, T0), ENGINE_OK);
    assert_int_equal(engine_delete(e, o, theirs, T0), ENGINE_NOT_FOUND);
    assert_int_equal(e->default_tube->deletes, 5);
    assert_int_equal(e->count.job_bytes, 0);
    assert_int_equal(e->count.ready + e->count.reserved + e->count.delayed + e->count.buried, 0);
    assert_int_equal(e->count.total_jobs, 5); /* puts, not live jobs */
    assert_int_equal(engine_next_deadline(e), ENGINE_NEVER);
    fx_check(f);
}

static void test_kick(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0];
    tube_t *t = e->default_tube;
    assert_int_equal(engine_kick(e, t, 10, T0), 0); /* nothing to kick */
    uint64_t d1 = put(e, s, 0, 30, 10, T0);
    uint64_t d2 = put(e, s, 0, 10, 10, T0);
    uint64_t d3 = put(e, s, 0, 20, 10, T0);
    uint64_t b1 = put(e, s, 0, 0, 10, T0);
    uint64_t b2 = put(e, s, 0, 0, 10, T0);
    reserve_id(e, s, T0);
    reserve_id(e, s, T0);
    assert_int_equal(engine_bury(e, s, b2, 0, T0), ENGINE_OK);
    assert_int_equal(engine_bury(e, s, b1, 0, T0), ENGINE_OK);
    assert_int_equal(engine_kick(e, t, 0, T0), 0);
    /* Buried jobs exist: only they are kicked, even with a large bound. */
    assert_int_equal(engine_kick(e, t, 10, T0), 2);
    assert_int_equal(job_state(job(e, b1)), JOB_READY);
    assert_int_equal(job_state(job(e, b2)), JOB_READY);
    assert_int_equal(job(e, b1)->kicks, 1);
    assert_int_equal(e->count.delayed, 3);
    assert_int_equal(e->count.buried, 0);
    /* No buried left: delayed ones, soonest first, up to the bound. */
    assert_int_equal(engine_next_deadline(e), T0 + SEC(10));
    assert_int_equal(engine_kick(e, t, 2, T0), 2);
    assert_int_equal(job_state(job(e, d2)), JOB_READY);
    assert_int_equal(job_state(job(e, d3)), JOB_READY);
    assert_int_equal(job_state(job(e, d1)), JOB_DELAYED);
    assert_int_equal(job(e, d2)->kicks, 1);
    assert_int_equal(job(e, d2)->delay, 10); /* delay is kept after a kick */
    assert_int_equal(engine_next_deadline(e), T0 + SEC(30));
    assert_int_equal(engine_kick(e, t, UINT32_MAX, T0), 1);
    assert_int_equal(engine_next_deadline(e), ENGINE_NEVER);
    assert_int_equal(engine_kick(e, t, UINT32_MAX, T0), 0);
    assert_int_equal(e->count.ready, 5);
    /* Kick only touches the given tube. */
    use(e, s, "other");
    put(e, s, 0, 5, 10, T0);
    assert_int_equal(engine_kick(e, t, 10, T0), 0);
    assert_int_equal(engine_kick(e, tube(e, "other"), 10, T0), 1);
    fx_check(f);
}

static void test_kick_wakes_waiter(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0], *w = f->s[1];
    uint64_t id = put(e, s, 0, 100, 10, T0);
    assert_int_equal(reserve_res(e, w, -1, T0), ENGINE_WAITING);
    assert_int_equal(engine_kick(e, e->default_tube, 1, T0), 1);
    assert_int_equal(f->r[1].n, 1);
    assert_int_equal(f->r[1].id[0], id);
    assert_int_equal(job(e, id)->kicks, 1);
    fx_check(f);
}

static void test_kick_job(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0];
    uint64_t ready = put(e, s, 0, 0, 10, T0);
    uint64_t delayed = put(e, s, 0, 10, 10, T0);
    uint64_t buried = put(e, s, 0, 0, 10, T0);
    uint64_t reserved = put(e, s, 1, 0, 10, T0);
    assert_int_equal(engine_reserve_job(e, s, buried, T0, &(job_t *){NULL}), ENGINE_OK);
    assert_int_equal(engine_bury(e, s, buried, 0, T0), ENGINE_OK);
    assert_int_equal(engine_reserve_job(e, s, reserved, T0, &(job_t *){NULL}), ENGINE_OK);
    assert_int_equal(engine_kick_job(e, ready, T0), ENGINE_NOT_FOUND);
    assert_int_equal(engine_kick_job(e, reserved, T0), ENGINE_NOT_FOUND);
    assert_int_equal(engine_kick_job(e, 4242, T0), ENGINE_NOT_FOUND);
    assert_int_equal(engine_kick_job(e, delayed, T0), ENGINE_OK);
    assert_int_equal(job_state(job(e, delayed)), JOB_READY);
    assert_int_equal(job(e, delayed)->kicks, 1);
    assert_int_equal(engine_kick_job(e, delayed, T0), ENGINE_NOT_FOUND);
    assert_int_equal(engine_kick_job(e, buried, T0), ENGINE_OK);
    assert_int_equal(job_state(job(e, buried)), JOB_READY);
    assert_int_equal(e->count.buried, 0);
    assert_int_equal(e->count.delayed, 0);
    assert_int_equal(e->count.ready, 3);
    /* Any tube, not only the used one. */
    use(e, s, "x");
    uint64_t x = put(e, s, 0, 5, 10, T0);
    use(e, s, "default");
    assert_int_equal(engine_kick_job(e, x, T0), ENGINE_OK);
    assert_int_equal(job_state(job(e, x)), JOB_READY);
    fx_check(f);
}

static void test_reserve_job(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0], *o = f->s[1];
    uint64_t ready = put(e, s, 0, 0, 10, T0);
    uint64_t delayed = put(e, s, 0, 10, 20, T0);
    uint64_t buried = put(e, s, 0, 0, 10, T0);
    job_t *j = NULL;
    assert_int_equal(engine_reserve_job(e, o, buried, T0, &j), ENGINE_OK);
    assert_int_equal(engine_bury(e, o, buried, 0, T0), ENGINE_OK);
    /* From an unwatched tube too. */
    use(e, s, "unwatched");
    uint64_t far = put(e, s, 0, 0, 10, T0);

    j = NULL;
    assert_int_equal(engine_reserve_job(e, s, delayed, T0 + SEC(1), &j), ENGINE_OK);
    assert_non_null(j);
    assert_int_equal(j->id, delayed);
    assert_int_equal(job_state(j), JOB_RESERVED);
    assert_true(engine_session_holds(s, j));
    assert_int_equal(j->deadline, T0 + SEC(21));
    assert_int_equal(j->reserves, 1);
    assert_int_equal(e->count.delayed, 0);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(21));
    /* Already reserved (by itself or another): NOT_FOUND. */
    assert_int_equal(engine_reserve_job(e, s, delayed, T0, &j), ENGINE_NOT_FOUND);
    assert_int_equal(engine_reserve_job(e, o, delayed, T0, &j), ENGINE_NOT_FOUND);
    assert_int_equal(engine_reserve_job(e, s, 5555, T0, &j), ENGINE_NOT_FOUND);
    assert_int_equal(engine_reserve_job(e, s, ready, T0, &j), ENGINE_OK);
    assert_int_equal(engine_reserve_job(e, s, buried, T0, &j), ENGINE_OK);
    assert_int_equal(job(e, buried)->reserves, 2);
    assert_int_equal(engine_reserve_job(e, s, far, T0, &j), ENGINE_OK);
    assert_int_equal(e->count.reserved, 4);
    assert_int_equal(e->count.buried, 0);
    assert_int_equal(e->count.ready, 0);
    assert_int_equal(tube(e, "unwatched")->reserved, 1);
    fx_check(f);
}

static void test_pause(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *w = f->s[0], *p = f->s[1];
    watch(e, w, "a");
    use(e, p, "a");
    uint64_t ja = put(e, p, 0, 0, 10, T0);
    use(e, p, "default");
    uint64_t jd = put(e, p, 10, 0, 10, T0);
    assert_int_equal(engine_pause(e, "nope", 4, SEC(5), T0), ENGINE_NOT_FOUND);
    assert_int_equal(engine_pause(e, "a", 1, SEC(5), T0), ENGINE_OK);
    tube_t *ta = tube(e, "a");
    assert_int_equal(ta->pauses, 1);
    assert_int_equal(ta->pause_ns, SEC(5));
    assert_int_equal(ta->unpause_at, T0 + SEC(5));
    assert_int_equal(engine_next_deadline(e), T0 + SEC(5));
    /* The paused tube is skipped even though its job is more urgent. */
    assert_int_equal(reserve_id(e, w, T0 + SEC(1)), jd);
    assert_int_equal(reserve_res(e, w, 0, T0 + SEC(1)), ENGINE_TIMED_OUT);
    assert_int_equal(reserve_res(e, w, -1, T0 + SEC(1)), ENGINE_WAITING);
    /* Paused: a ready job and a waiter may coexist. */
    assert_int_equal(ta->ready.len, 1);
    assert_int_equal(ta->waiting, 1);
    fx_check(f);
    /* A new put into the paused tube does not reach the waiter either. */
    use(e, p, "a");
    uint64_t ja2 = put(e, p, 0, 0, 10, T0 + SEC(2));
    assert_int_equal(f->r[0].n, 0);
    engine_tick(e, T0 + SEC(5) - 1);
    assert_int_equal(f->r[0].n, 0);
    fx_check(f);
    engine_tick(e, T0 + SEC(5));
    assert_int_equal(f->r[0].n, 1);
    assert_int_equal(f->r[0].ev[0], SESSION_RESERVED);
    assert_int_equal(f->r[0].id[0], ja);
    assert_int_equal(ta->pause_ns, 0);
    assert_int_equal(job_state(job(e, ja2)), JOB_READY);
    /* The default job's TTR end is the next deadline now. */
    assert_int_equal(engine_next_deadline(e), T0 + SEC(11));
    fx_check(f);
}

static void test_pause_zero_and_repause(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *w = f->s[0], *p = f->s[1];
    uint64_t id = put(e, p, 0, 0, 10, T0);
    /* A zero pause is still a (minimal) pause. */
    assert_int_equal(engine_pause(e, "default", 7, 0, T0), ENGINE_OK);
    assert_true(e->default_tube->pause_ns > 0);
    assert_int_equal(e->default_tube->unpause_at, T0 + 1);
    assert_int_equal(engine_next_deadline(e), T0 + 1);
    assert_int_equal(reserve_res(e, w, -1, T0), ENGINE_WAITING);
    engine_tick(e, T0 + 1);
    assert_int_equal(f->r[0].n, 1);
    assert_int_equal(f->r[0].id[0], id);
    assert_int_equal(e->default_tube->pause_ns, 0);
    assert_int_equal(e->default_tube->pauses, 1);
    /* Pausing again replaces the previous pause, longer or shorter. */
    assert_int_equal(engine_pause(e, "default", 7, SEC(100), T0 + SEC(1)), ENGINE_OK);
    assert_int_equal(engine_pause(e, "default", 7, SEC(2), T0 + SEC(1)), ENGINE_OK);
    assert_int_equal(e->default_tube->pauses, 3);
    /* Next deadline: min(pause end T0+3s, TTR end T0+1ns+10s). */
    assert_int_equal(engine_next_deadline(e), T0 + SEC(3));
    engine_tick(e, T0 + SEC(3));
    assert_int_equal(e->default_tube->pause_ns, 0);
    assert_int_equal(engine_next_deadline(e), T0 + 1 + SEC(10));
    fx_check(f);
}

static void test_pause_and_delayed_share_tube_timer(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *w = f->s[0], *p = f->s[1];
    uint64_t id = put(e, p, 0, 2, 10, T0);
    assert_int_equal(engine_pause(e, "default", 7, SEC(5), T0), ENGINE_OK);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(2));
    assert_int_equal(reserve_res(e, w, -1, T0), ENGINE_WAITING);
    engine_tick(e, T0 + SEC(2));
    /* Ready now, but the tube is paused: still waiting. */
    assert_int_equal(job_state(job(e, id)), JOB_READY);
    assert_int_equal(f->r[0].n, 0);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(5));
    fx_check(f);
    engine_tick(e, T0 + SEC(5));
    assert_int_equal(f->r[0].n, 1);
    assert_int_equal(f->r[0].id[0], id);
    fx_check(f);
}

static void test_tube_lifecycle(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0];
    char buf[512];
    assert_string_equal(list_names(e, buf, sizeof buf), "default");
    use(e, s, "a");
    assert_string_equal(list_names(e, buf, sizeof buf), "default,a");
    assert_int_equal(tube(e, "a")->using, 1);
    watch(e, s, "b");
    watch(e, s, "c");
    assert_string_equal(list_names(e, buf, sizeof buf), "default,a,b,c");
    fx_check(f);
    /* Unreferenced tubes go away; the last tube takes the freed place. */
    use(e, s, "default");
    assert_null(tube(e, "a"));
    assert_string_equal(list_names(e, buf, sizeof buf), "default,c,b");
    uint32_t n;
    assert_int_equal(ignore(e, s, "b", &n), ENGINE_OK);
    assert_int_equal(n, 2);
    assert_null(tube(e, "b"));
    assert_string_equal(list_names(e, buf, sizeof buf), "default,c");
    fx_check(f);
    /* A job keeps its tube alive. */
    use(e, s, "d");
    uint64_t id = put(e, s, 0, 0, 10, T0);
    use(e, s, "default");
    assert_non_null(tube(e, "d"));
    assert_int_equal(tube(e, "d")->using, 0);
    assert_string_equal(list_names(e, buf, sizeof buf), "default,c,d");
    fx_check(f);
    assert_int_equal(engine_delete(e, s, id, T0), ENGINE_OK);
    assert_null(tube(e, "d"));
    assert_string_equal(list_names(e, buf, sizeof buf), "default,c");
    /* Several sessions on one tube: gone only after the last. */
    use(e, f->s[1], "c");
    assert_int_equal(ignore(e, s, "c", &n), ENGINE_OK);
    assert_non_null(tube(e, "c"));
    use(e, f->s[1], "default");
    assert_null(tube(e, "c"));
    assert_string_equal(list_names(e, buf, sizeof buf), "default");
    /* Table slots are reused rather than growing the table. */
    uint32_t len = e->tube_table_len;
    use(e, s, "e1");
    use(e, s, "e2");
    use(e, s, "e3");
    assert_int_equal(e->tube_table_len, len);
    fx_check(f);
    /* The default tube never goes, even when nobody refers to it. */
    watch(e, s, "x");
    for (int i = 0; i < 4; i++) {
        if (i != 0)
            use(e, f->s[i], "x");
        if (i != 0)
            watch(e, f->s[i], "x");
        assert_int_equal(ignore(e, f->s[i], "default", &n), ENGINE_OK);
    }
    use(e, s, "x");
    assert_int_equal(e->default_tube->using, 0);
    assert_int_equal(e->default_tube->watching, 0);
    assert_non_null(tube(e, "default"));
    assert_int_equal(e->default_tube->refs, 1);
    fx_check(f);
}

static void test_many_tubes(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0];
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "t%d", i);
        watch(e, s, name);
        use(e, s, name);
        put(e, s, (uint32_t)i, 0, 10, T0);
    }
    assert_int_equal(e->ntubes, 301);
    assert_int_equal(s->nwatch, 301);
    fx_check(f);
    /* Reserve all: lowest priority first, across all 301 watched tubes. */
    for (int i = 0; i < 300; i++) {
        job_t *j = NULL;
        assert_int_equal(engine_reserve(e, s, 0, T0, &j), ENGINE_OK);
        assert_int_equal(j->pri, (uint32_t)i);
    }
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "t%d", i);
        uint32_t n;
        assert_int_equal(ignore(e, s, name, &n), ENGINE_OK);
    }
    /* Still referenced by their reserved jobs. */
    assert_int_equal(e->ntubes, 301);
    fx_check(f);
    free_session(e, &f->r[0], T0);
    f->s[0] = NULL;
    /* Its reservations went back to ready, not counted as timeouts; the
     * tubes live on through their jobs. */
    assert_int_equal(e->count.ready, 300);
    assert_int_equal(e->count.timeouts, 0);
    assert_int_equal(e->ntubes, 301);
    fx_check(f);
}

static void test_watch_ignore(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0];
    char buf[256];
    uint32_t n = 0;
    assert_int_equal(watch(e, s, "a"), 2);
    assert_int_equal(watch(e, s, "a"), 2); /* no duplicate */
    assert_int_equal(tube(e, "a")->watching, 1);
    assert_int_equal(watch(e, s, "b"), 3);
    assert_int_equal(watch(e, s, "c"), 4);
    assert_string_equal(watch_names(s, buf, sizeof buf), "default,a,b,c");
    /* Ignoring an unwatched (even unknown) tube answers the count and does
     * not create it. */
    assert_int_equal(ignore(e, s, "zzz", &n), ENGINE_OK);
    assert_int_equal(n, 4);
    assert_null(tube(e, "zzz"));
    /* Swap-remove, as beanstalkd's watch list. */
    assert_int_equal(ignore(e, s, "a", &n), ENGINE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(watch_names(s, buf, sizeof buf), "default,c,b");
    assert_int_equal(ignore(e, s, "default", &n), ENGINE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(watch_names(s, buf, sizeof buf), "b,c");
    assert_int_equal(ignore(e, s, "c", &n), ENGINE_OK);
    assert_int_equal(n, 1);
    /* The last watched tube cannot be ignored. */
    n = 99;
    assert_int_equal(ignore(e, s, "b", &n), ENGINE_NOT_IGNORED);
    assert_int_equal(s->nwatch, 1);
    assert_string_equal(watch_names(s, buf, sizeof buf), "b");
    /* Ignoring an unwatched tube with one watched still answers. */
    assert_int_equal(ignore(e, s, "default", &n), ENGINE_OK);
    assert_int_equal(n, 1);
    /* Now it only reserves from b. */
    put(e, f->s[1], 0, 0, 10, T0);
    assert_int_equal(reserve_res(e, s, 0, T0), ENGINE_TIMED_OUT);
    fx_check(f);
}

static void test_session_free_returns_reservations(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0], *w = f->s[1];
    uint64_t a = put(e, s, 0, 0, 10, T0);
    uint64_t b = put(e, s, 1, 0, 10, T0);
    reserve_id(e, s, T0);
    reserve_id(e, s, T0);
    use(e, s, "gone");
    watch(e, s, "gone2");
    assert_int_equal(reserve_res(e, w, -1, T0), ENGINE_WAITING);
    free_session(e, &f->r[0], T0 + SEC(1));
    f->s[0] = NULL;
    /* One went to the waiter, the other is ready. Not timeouts. */
    assert_int_equal(f->r[1].n, 1);
    uint64_t got = f->r[1].id[0];
    assert_true(got == a || got == b);
    uint64_t left = got == a ? b : a;
    assert_int_equal(job_state(job(e, left)), JOB_READY);
    assert_int_equal(job(e, a)->timeouts, 0);
    assert_int_equal(job(e, b)->timeouts, 0);
    assert_int_equal(e->count.timeouts, 0);
    assert_int_equal(e->count.reserved, 1);
    assert_null(tube(e, "gone"));
    assert_null(tube(e, "gone2"));
    fx_check(f);
}

static void test_session_free_while_waiting(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *w = f->s[0];
    watch(e, w, "a");
    assert_int_equal(reserve_res(e, w, SEC(5), T0), ENGINE_WAITING);
    assert_int_equal(e->count.waiting, 1);
    free_session(e, &f->r[0], T0);
    f->s[0] = NULL;
    assert_int_equal(e->count.waiting, 0);
    assert_int_equal(e->default_tube->waiting, 0);
    assert_null(tube(e, "a"));
    assert_int_equal(engine_next_deadline(e), ENGINE_NEVER);
    engine_tick(e, T0 + SEC(10));
    fx_check(f);
    /* A put after that reaches nobody and nothing crashes. */
    put(e, f->s[1], 0, 0, 10, T0);
    assert_int_equal(e->count.ready, 1);
    fx_check(f);
}

static void test_job_discard_releases_tube(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0];
    use(e, s, "tmp");
    uint32_t refs = tube(e, "tmp")->refs;
    job_t *j = engine_job_new(e, s->use, 7, 8, 0, 3, T0);
    assert_non_null(j);
    assert_int_equal(j->id, 1);
    assert_int_equal(j->pri, 7);
    assert_int_equal(j->delay, 8);
    assert_int_equal(j->ttr, 1); /* ttr 0 is raised to 1 */
    assert_int_equal(j->size, 3);
    assert_int_equal(j->created, T0);
    assert_int_equal(j->reserves + j->timeouts + j->releases + j->buries + j->kicks, 0);
    assert_int_equal(tube(e, "tmp")->refs, refs + 1);
    /* A job not yet put is not findable and not counted. */
    assert_null(engine_job_find(e, 1));
    assert_int_equal(e->count.total_jobs, 0);
    use(e, s, "default");
    assert_non_null(tube(e, "tmp")); /* held by the pending job */
    engine_job_discard(e, j);
    assert_null(tube(e, "tmp"));
    /* The id was used up. */
    assert_int_equal(put(e, s, 0, 0, 1, T0), 2);
    assert_int_equal(e->count.total_jobs, 1);
    fx_check(f);
}

static void test_next_deadline_combinations(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *a = f->s[0], *b = f->s[1], *c = f->s[2];
    assert_int_equal(engine_next_deadline(e), ENGINE_NEVER);
    use(e, a, "x");
    uint64_t dx = put(e, a, 0, 5, 10, T0);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(5));
    use(e, a, "default");
    put(e, a, 0, 3, 10, T0);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(3));
    uint64_t r = put(e, a, 0, 0, 2, T0);
    assert_int_equal(reserve_id(e, b, T0), r);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(2));
    assert_int_equal(reserve_res(e, c, SEC(1), T0), ENGINE_WAITING);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(1));
    assert_int_equal(engine_pause(e, "x", 1, MS(500), T0), ENGINE_OK);
    assert_int_equal(engine_next_deadline(e), T0 + MS(500));
    fx_check(f);
    /* Peel them off one by one. */
    engine_tick(e, T0 + MS(500));
    assert_int_equal(engine_next_deadline(e), T0 + SEC(1));
    engine_cancel_wait(e, c);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(2));
    assert_int_equal(engine_delete(e, b, r, T0), ENGINE_OK);
    assert_int_equal(engine_next_deadline(e), T0 + SEC(3));
    engine_tick(e, T0 + SEC(3));
    assert_int_equal(engine_next_deadline(e), T0 + SEC(5));
    assert_int_equal(engine_kick_job(e, dx, T0 + SEC(3)), ENGINE_OK);
    assert_int_equal(engine_next_deadline(e), ENGINE_NEVER);
    fx_check(f);
}

/* Whole seconds, rounded down. (The value at the very instant of a put,
 * reserve or touch is left to the protocol tests: beanstalkd reads its
 * clock again when formatting and so always reports one less there.) */
static void test_time_left(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0];
    uint64_t d = put(e, s, 0, 10, 5, T0);
    uint64_t r = put(e, s, 0, 0, 5, T0);
    job_t *jd = job(e, d), *jr = job(e, r);
    assert_int_equal(engine_job_time_left(jd, T0 + MS(999)), 9);
    assert_int_equal(engine_job_time_left(jd, T0 + 1), 9);
    assert_int_equal(engine_job_time_left(jd, T0 + SEC(10) - 1), 0);
    assert_int_equal(engine_job_time_left(jr, T0), 0); /* ready */
    reserve_id(e, s, T0 + SEC(1));
    assert_int_equal(engine_job_time_left(jr, T0 + SEC(1) + 1), 4);
    assert_int_equal(engine_job_time_left(jr, T0 + MS(4500)), 1);
    assert_int_equal(engine_bury(e, s, r, 0, T0), ENGINE_OK);
    assert_int_equal(engine_job_time_left(jr, T0 + SEC(2)), 0);
    fx_check(f);
}

static void test_counts_mixed(void **state) {
    fx_t *f = *state;
    engine_t *e = f->e;
    session_t *s = f->s[0];
    put_body(e, s, 0, 0, 10, "aaaa", T0);     /* ready, urgent */
    put_body(e, s, 5000, 0, 10, "bb", T0);    /* ready */
    put_body(e, s, 1, 5, 10, "c", T0);        /* delayed */
    uint64_t r = put_body(e, s, 2, 0, 10, "", T0);
    assert_int_equal(engine_reserve_job(e, s, r, T0, &(job_t *){NULL}), ENGINE_OK);
    uint64_t b = put_body(e, s, 3, 0, 10, "dddddd", T0);
    assert_int_equal(engine_reserve_job(e, s, b, T0, &(job_t *){NULL}), ENGINE_OK);
    assert_int_equal(engine_bury(e, s, b, 3, T0), ENGINE_OK);
    assert_int_equal(e->count.ready, 2);
    assert_int_equal(e->count.urgent, 1);
    assert_int_equal(e->count.delayed, 1);
    assert_int_equal(e->count.reserved, 1);
    assert_int_equal(e->count.buried, 1);
    assert_int_equal(e->count.total_jobs, 5);
    assert_int_equal(e->count.job_bytes, 13);
    assert_int_equal(e->count.waiting, 0);
    assert_int_equal(reserve_res(e, f->s[1], -1, T0), ENGINE_OK);
    assert_int_equal(reserve_res(e, f->s[1], -1, T0), ENGINE_OK);
    assert_int_equal(reserve_res(e, f->s[1], -1, T0), ENGINE_WAITING);
    assert_int_equal(e->count.waiting, 1);
    fx_check(f);
}

/* ------------------------------------------------------------------ */
/* Randomised model test                                                */

#define M_SESS 5
#define M_TUBES 5

static const char *const m_names[M_TUBES] = {"default", "a", "b", "c", "d"};

/* How often interesting things happened, over all runs: the model test
 * checks that it really exercised them. */
static struct {
    uint64_t ev[3];
    uint64_t immediate_soon, waits, matched_puts, not_found, kicked, paused_skips;
} m_seen;

static uint64_t m_rng;
static uint32_t m_rnd(void) {
    m_rng ^= m_rng << 13;
    m_rng ^= m_rng >> 7;
    m_rng ^= m_rng << 17;
    return (uint32_t)(m_rng >> 16);
}

typedef struct model {
    engine_t *e;
    rec_t r[M_SESS];
    session_t *s[M_SESS];
    int64_t now;
    /* Per session, state just before an operation. */
    bool was_waiting[M_SESS];
    int events_before[M_SESS];
    uint32_t held_before[M_SESS];
} model_t;

static bool m_paused(const tube_t *t, int64_t now) {
    return t->pause_ns > 0 && t->unpause_at > now;
}

typedef struct best_ctx {
    const session_t *s;
    int64_t now;
    const job_t *best;
    bool any_ready; /* in a watched tube, paused or not */
} best_ctx_t;

/* An independent search of every job for the one reserve should pick. */
static bool best_cb(void *value, void *arg) {
    best_ctx_t *c = arg;
    const job_t *j = value;
    if (job_state(j) != JOB_READY)
        return true;
    const tube_t *t = NULL;
    for (uint32_t i = 0; i < c->s->nwatch; i++)
        if (c->s->watch[i].tube->index == j->tube)
            t = c->s->watch[i].tube;
    if (!t)
        return true;
    c->any_ready = true;
    if (m_paused(t, c->now))
        return true;
    if (!c->best || j->pri < c->best->pri || (j->pri == c->best->pri && j->id < c->best->id))
        c->best = j;
    return true;
}

static bool m_holds_soon(const session_t *s, int64_t now) {
    for (uint32_t i = 0; i < s->reserved.len; i++) {
        const job_t *j = s->reserved.items[i];
        if (now >= j->deadline - DEADLINE_MARGIN)
            return true;
    }
    return false;
}

static session_t *m_idle_session(model_t *m) {
    for (int tries = 0; tries < 8; tries++) {
        int i = (int)(m_rnd() % M_SESS);
        if (!m->s[i]->waiting)
            return m->s[i];
    }
    return NULL;
}

static uint64_t m_random_id(model_t *m) {
    /* Mostly ids that exist or existed, sometimes beyond. */
    return m_rnd() % (m->e->next_id + 2);
}

static job_t *m_random_held(model_t *m, session_t *s) {
    (void)m;
    if (!s->reserved.len)
        return NULL;
    return s->reserved.items[m_rnd() % s->reserved.len];
}

static void m_step(model_t *m) {
    engine_t *e = m->e;
    uint32_t op = m_rnd() % 100;
    session_t *s;
    job_t *j;
    uint32_t n;
    if (op < 22) { /* put */
        s = m_idle_session(m);
        /* Keep the population small so that sessions still run dry and
         * wait, rather than jobs piling up forever. */
        if (!s || e->jobs.count >= 30)
            return;
        static const uint32_t pris[] = {0, 1, 2, 1023, 1024, 5000, UINT32_MAX};
        uint32_t pri = pris[m_rnd() % 7];
        uint32_t delay = m_rnd() % 3 == 0 ? 1 + m_rnd() % 4 : 0;
        uint32_t ttr = m_rnd() % 5;
        uint32_t size = m_rnd() % 24;
        tube_t *t = s->use;
        /* Who, if anyone, must get this job at once. */
        session_t *first = NULL;
        if (delay == 0 && !m_paused(t, m->now) && t->waiters.next != &t->waiters)
            first = t->waiters.next->session;
        j = engine_job_new(e, t, pri, delay, ttr, size, m->now);
        assert_non_null(j);
        memset(j->body, 'x', size);
        uint64_t id = j->id;
        assert_int_equal(engine_put(e, j, m->now), ENGINE_OK);
        j = job(e, id);
        if (first) {
            m_seen.matched_puts++;
            assert_int_equal(job_state(j), JOB_RESERVED);
            assert_true(engine_session_holds(first, j));
        } else {
            assert_int_equal(job_state(j), delay ? JOB_DELAYED : JOB_READY);
        }
    } else if (op < 42) { /* reserve */
        s = m_idle_session(m);
        if (!s)
            return;
        static const int64_t tos[] = {0, 0, -1, SEC(1), SEC(3), MS(1500)};
        int64_t to = tos[m_rnd() % 6];
        best_ctx_t c = {.s = s, .now = m->now};
        idmap_each(&e->jobs, best_cb, &c);
        bool soon = m_holds_soon(s, m->now);
        const job_t *expect = c.best;
        j = NULL;
        engine_result_t r = engine_reserve(e, s, to, m->now, &j);
        if (c.any_ready && !c.best)
            m_seen.paused_skips++;
        if (soon && !c.any_ready) {
            m_seen.immediate_soon++;
            assert_int_equal(r, ENGINE_DEADLINE_SOON);
        } else if (expect) {
            assert_int_equal(r, ENGINE_OK);
            assert_ptr_equal(j, expect);
            assert_true(engine_session_holds(s, j));
            assert_int_equal(j->deadline, m->now + (int64_t)j->ttr * NS_PER_SEC);
        } else if (to == 0) {
            assert_int_equal(r, ENGINE_TIMED_OUT);
        } else {
            assert_int_equal(r, ENGINE_WAITING);
            assert_true(s->waiting);
            m_seen.waits++;
        }
    } else if (op < 46) { /* reserve-job */
        s = m_idle_session(m);
        if (!s)
            return;
        uint64_t id = m_random_id(m);
        job_t *before = engine_job_find(e, id);
        bool ok = before && job_state(before) != JOB_RESERVED;
        j = NULL;
        assert_int_equal(engine_reserve_job(e, s, id, m->now, &j),
                         ok ? ENGINE_OK : ENGINE_NOT_FOUND);
        if (ok)
            assert_true(engine_session_holds(s, j));
    } else if (op < 56) { /* delete */
        s = m_idle_session(m);
        if (!s)
            return;
        j = m_rnd() % 2 ? m_random_held(m, s) : NULL;
        uint64_t id = j ? j->id : m_random_id(m);
        job_t *before = engine_job_find(e, id);
        bool ok = before && (job_state(before) != JOB_RESERVED || engine_session_holds(s, before));
        if (before && !ok)
            m_seen.not_found++;
        assert_int_equal(engine_delete(e, s, id, T0), ok ? ENGINE_OK : ENGINE_NOT_FOUND);
        if (ok)
            assert_null(engine_job_find(e, id));
    } else if (op < 64) { /* release */
        s = m_idle_session(m);
        if (!s)
            return;
        j = m_random_held(m, s);
        uint64_t id = j && m_rnd() % 5 ? j->id : m_random_id(m);
        job_t *before = engine_job_find(e, id);
        bool ok = before && engine_session_holds(s, before);
        uint32_t delay = m_rnd() % 2 ? 0 : m_rnd() % 4;
        assert_int_equal(engine_release(e, s, id, m_rnd() % 2000, delay, m->now),
                         ok ? ENGINE_OK : ENGINE_NOT_FOUND);
    } else if (op < 69) { /* bury */
        s = m_idle_session(m);
        if (!s)
            return;
        j = m_random_held(m, s);
        uint64_t id = j && m_rnd() % 5 ? j->id : m_random_id(m);
        job_t *before = engine_job_find(e, id);
        bool ok = before && engine_session_holds(s, before);
        assert_int_equal(engine_bury(e, s, id, m_rnd() % 2000, m->now), ok ? ENGINE_OK : ENGINE_NOT_FOUND);
        if (ok)
            assert_int_equal(job_state(before), JOB_BURIED);
    } else if (op < 73) { /* touch */
        s = m_idle_session(m);
        if (!s)
            return;
        j = m_random_held(m, s);
        uint64_t id = j && m_rnd() % 5 ? j->id : m_random_id(m);
        job_t *before = engine_job_find(e, id);
        bool ok = before && engine_session_holds(s, before);
        assert_int_equal(engine_touch(e, s, id, m->now), ok ? ENGINE_OK : ENGINE_NOT_FOUND);
        if (ok)
            assert_int_equal(before->deadline, m->now + (int64_t)before->ttr * NS_PER_SEC);
    } else if (op < 76) { /* kick */
        const char *name = m_names[m_rnd() % M_TUBES];
        tube_t *t = engine_tube_find(e, name, strlen(name));
        if (!t)
            return;
        uint32_t bound = m_rnd() % 4;
        uint32_t avail = t->buried.len ? t->buried.len : t->delayed.len;
        uint32_t expect = bound < avail ? bound : avail;
        assert_int_equal(engine_kick(e, t, bound, m->now), expect);
        m_seen.kicked += expect;
    } else if (op < 79) { /* kick-job */
        uint64_t id = m_random_id(m);
        job_t *before = engine_job_find(e, id);
        bool ok = before && (job_state(before) == JOB_BURIED || job_state(before) == JOB_DELAYED);
        assert_int_equal(engine_kick_job(e, id, m->now), ok ? ENGINE_OK : ENGINE_NOT_FOUND);
    } else if (op < 81) { /* pause */
        const char *name = m_names[m_rnd() % M_TUBES];
        bool exists = engine_tube_find(e, name, strlen(name)) != NULL;
        int64_t d = (int64_t)(m_rnd() % 3000) * MS(1);
        assert_int_equal(engine_pause(e, name, strlen(name), d, m->now),
                         exists ? ENGINE_OK : ENGINE_NOT_FOUND);
    } else if (op < 87) { /* use / watch / ignore */
        s = m_idle_session(m);
        if (!s)
            return;
        const char *name = m_names[m_rnd() % M_TUBES];
        size_t len = strlen(name);
        switch (m_rnd() % 3) {
        case 0:
            assert_int_equal(engine_use(e, s, name, len), ENGINE_OK);
            break;
        case 1:
            assert_int_equal(engine_watch(e, s, name, len, &n), ENGINE_OK);
            assert_int_equal(n, s->nwatch);
            break;
        default: {
            bool watched = false;
            for (uint32_t i = 0; i < s->nwatch; i++)
                watched |= s->watch[i].tube->name_len == len &&
                           memcmp(s->watch[i].tube->name, name, len) == 0;
            uint32_t before = s->nwatch;
            engine_result_t r = engine_ignore(e, s, name, len, &n);
            if (watched && before == 1) {
                assert_int_equal(r, ENGINE_NOT_IGNORED);
            } else {
                assert_int_equal(r, ENGINE_OK);
                assert_int_equal(n, watched ? before - 1 : before);
            }
        }
        }
    } else if (op < 97) { /* time passes */
        uint32_t k = m_rnd() % 4;
        int64_t dt = k == 0 ? 0 : k == 1 ? (int64_t)(m_rnd() % 1000) * MS(1)
                                         : (int64_t)(m_rnd() % 2500) * MS(1);
        m->now += dt;
        engine_tick(e, m->now);
        check_nothing_due(e, m->s, M_SESS, m->now);
    } else if (op < 98) { /* cancel a wait */
        int i = (int)(m_rnd() % M_SESS);
        if (m->s[i]->waiting) {
            engine_cancel_wait(e, m->s[i]);
            m->was_waiting[i] = false; /* no event expected */
        }
    } else { /* a session ends, another starts */
        int i = (int)(m_rnd() % M_SESS);
        free_session(e, &m->r[i], m->now);
        m->s[i] = NULL;
        /* Its reservations may have woken other sessions: account for
         * that below, with this slot treated as idle. */
        m->s[i] = new_session(e, &m->r[i]);
        m->was_waiting[i] = false;
        m->events_before[i] = 0;
    }
}

static void m_check_events(model_t *m) {
    for (int i = 0; i < M_SESS; i++) {
        const session_t *s = m->s[i];
        int got = m->r[i].n - m->events_before[i];
        if (m->was_waiting[i] && !s->waiting) {
            /* Woken: exactly one event, and it must be justified. */
            assert_int_equal(got, 1);
            session_event_t ev = m->r[i].ev[m->r[i].n - 1];
            m_seen.ev[ev]++;
            if (ev == SESSION_TIMED_OUT)
                assert_true(s->wait_until <= m->now);
            /* (The reservation may have timed out right after, in
             * the same tick.) */
            if (ev == SESSION_DEADLINE_SOON)
                assert_true(m->held_before[i] > 0);
        } else {
            assert_int_equal(got, 0);
        }
        if (m->r[i].n >= REC_MAX - 4)
            m->r[i].n = 0; /* keep the recorder from filling up */
    }
}

static void run_model(uint64_t seed, int steps) {
    model_t m;
    memset(&m, 0, sizeof m);
    m_rng = seed;
    m.e = engine_new();
    assert_non_null(m.e);
    m.now = T0;
    for (int i = 0; i < M_SESS; i++)
        m.s[i] = new_session(m.e, &m.r[i]);
    for (int step = 0; step < steps; step++) {
        for (int i = 0; i < M_SESS; i++) {
            m.was_waiting[i] = m.s[i]->waiting;
            m.events_before[i] = m.r[i].n;
            m.held_before[i] = m.s[i]->reserved.len;
        }
        m_step(&m);
        m_check_events(&m);
        check_invariants(m.e, m.s, M_SESS);
    }
    /* Drain: time moves far ahead, everything due fires. */
    m.now += SEC(3600);
    engine_tick(m.e, m.now);
    check_nothing_due(m.e, m.s, M_SESS, m.now);
    check_invariants(m.e, m.s, M_SESS);
    for (int i = 0; i < M_SESS; i++)
        free_session(m.e, &m.r[i], m.now);
    check_invariants(m.e, NULL, 0);
    /* With every session gone nothing is reserved or waiting. */
    assert_int_equal(m.e->count.reserved, 0);
    assert_int_equal(m.e->count.waiting, 0);
    engine_free(m.e);
}

static void test_model_random(void **state) {
    (void)state;
    static const uint64_t seeds[] = {1, 0xdeadbeefULL, 0x123456789abcdefULL, 42, 7777};
    memset(&m_seen, 0, sizeof m_seen);
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        run_model(seeds[i], 30000);
    print_message("model: %llu reserved / %llu timed-out / %llu deadline-soon events, %llu "
                  "waits, %llu immediate DEADLINE_SOON, %llu puts to waiters, %llu paused "
                  "skips, %llu kicked, %llu foreign deletes\n",
                  (unsigned long long)m_seen.ev[SESSION_RESERVED],
                  (unsigned long long)m_seen.ev[SESSION_TIMED_OUT],
                  (unsigned long long)m_seen.ev[SESSION_DEADLINE_SOON],
                  (unsigned long long)m_seen.waits, (unsigned long long)m_seen.immediate_soon,
                  (unsigned long long)m_seen.matched_puts,
                  (unsigned long long)m_seen.paused_skips, (unsigned long long)m_seen.kicked,
                  (unsigned long long)m_seen.not_found);
    assert_true(m_seen.ev[SESSION_RESERVED] > 0);
    assert_true(m_seen.ev[SESSION_TIMED_OUT] > 0);
    assert_true(m_seen.ev[SESSION_DEADLINE_SOON] > 0);
    assert_true(m_seen.waits > 0);
    assert_true(m_seen.immediate_soon > 0);
    assert_true(m_seen.matched_puts > 0);
    assert_true(m_seen.paused_skips > 0);
    assert_true(m_seen.kicked > 0);
    assert_true(m_seen.not_found > 0);
}

#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_engine),
        cmocka_unit_test(test_job_state_names),
        cmocka_unit_test(test_tube_name_valid),
        FX(test_put_ready),
        FX(test_urgent_threshold),
        FX(test_put_delayed),
        FX(test_delayed_order_and_bulk_tick),
        FX(test_reserve_order),
        FX(test_reserve_timeout_zero),
        FX(test_reserve_waits_then_put_wakes),
        FX(test_waiters_served_oldest_first),
        FX(test_waiter_on_several_tubes),
        FX(test_reserve_with_timeout_times_out),
        FX(test_reserve_fractional_timeout),
        FX(test_cancel_wait),
        FX(test_ttr_expiry),
        FX(test_ttr_expiry_goes_to_waiter),
        FX(test_deadline_soon_immediate),
        FX(test_deadline_soon_ready_in_paused_tube_waits),
        FX(test_deadline_soon_while_waiting),
        FX(test_deadline_soon_before_wait_timeout),
        FX(test_waiting_session_gets_job_then_deadline),
        FX(test_release),
        FX(test_release_wakes_waiter),
        FX(test_bury_fifo_and_kick),
        FX(test_touch),
        FX(test_touch_reorders_reservations),
        FX(test_delete),
        FX(test_kick),
        FX(test_kick_wakes_waiter),
        FX(test_kick_job),
        FX(test_reserve_job),
        FX(test_pause),
        FX(test_pause_zero_and_repause),
        FX(test_pause_and_delayed_share_tube_timer),
        FX(test_tube_lifecycle),
        FX(test_many_tubes),
        FX(test_watch_ignore),
        FX(test_session_free_returns_reservations),
        FX(test_session_free_while_waiting),
        FX(test_job_discard_releases_tube),
        FX(test_next_deadline_combinations),
        FX(test_time_left),
        FX(test_counts_mixed),
        cmocka_unit_test(test_model_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
