/* test_task.c - the engine's task extensions (core/task.c, core/history.c):
 * unique keys (keep, replace in place, supersede a running holder), attempt
 * limits and failure, cancel, finished-task history and its retention, push
 * attempts (failure with retry, reservations held past the TTR), queue
 * settings, and restoring all of it from the log. Time is a parameter: no sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/engine.h"

#define T0 (INT64_C(1700000000) * NS_PER_SEC)
#define SEC(x) ((int64_t)(x) * NS_PER_SEC)

/* ---- recording the journal and the events ---- */

typedef struct log_rec {
    int puts, updates, deletes, pauses, settings;
    uint64_t last_id;
    int events[16];
    int nevents;
} log_rec_t;

static void on_journal(void *ctx, journal_kind_t kind, const job_t *j, const tube_t *t) {
    (void)t;
    log_rec_t *r = ctx;
    if (kind == JOURNAL_PUT)
        r->puts++;
    else if (kind == JOURNAL_UPDATE)
        r->updates++;
    else if (kind == JOURNAL_DELETE)
        r->deletes++;
    else if (kind == JOURNAL_SETTINGS)
        r->settings++;
    else
        r->pauses++;
    if (j)
        r->last_id = j->id;
}

static void on_event(void *ctx, engine_event_t ev, uint64_t id, const tube_t *t, int64_t now) {
    (void)id;
    (void)t;
    (void)now;
    log_rec_t *r = ctx;
    if (r->nevents < 16)
        r->events[r->nevents++] = ev;
}

static void on_notify(void *owner, session_event_t ev, const job_t *job) {
    (void)owner;
    (void)ev;
    (void)job;
}

static engine_t *new_engine(log_rec_t *r) {
    engine_t *e = engine_new();
    assert_non_null(e);
    memset(r, 0, sizeof *r);
    engine_set_journal(e, on_journal, r);
    engine_set_observer(e, on_event, r);
    engine_set_history(e, 100, SEC(3600));
    return e;
}

/* Put body into queue q with the given options; returns the result. */
static engine_put_result_t put(engine_t *e, const char *q, const char *body,
                               const engine_put_opts_t *o, uint32_t ttr, int64_t now) {
    tube_t *t = engine_tube_get(e, q, strlen(q));
    assert_non_null(t);
    job_t *j = engine_job_new(e, t, 10, 0, ttr, (uint32_t)strlen(body), now);
    assert_non_null(j);
    memcpy(j->body, body, strlen(body));
    engine_put_result_t res;
    assert_int_equal(engine_put_opts(e, j, o, now, &res), ENGINE_OK);
    return res;
}

static engine_put_opts_t keyed(const char *key, bool replace) {
    engine_put_opts_t o = {.key = key, .key_len = strlen(key), .replace = replace, .json = true};
    return o;
}

/* ---- keys ---- */

static void test_key_keep_returns_the_holder(void **state) {
    (void)state;
    log_rec_t r;
    engine_t *e = new_engine(&r);
    engine_put_opts_t o = keyed("room-301", false);
    engine_put_result_t a = put(e, "net", "{\"v\":1}", &o, 60, T0);
    assert_int_equal(a.outcome, PUT_CREATED);
    engine_put_result_t b = put(e, "net", "{\"v\":2}", &o, 60, T0 + 1);
    assert_int_equal(b.outcome, PUT_DEDUPLICATED);
    assert_ptr_equal(b.job, a.job);
    assert_memory_equal(b.job->body, "{\"v\":1}", 7);
    assert_int_equal(e->jobs.count, 1);
    assert_int_equal(r.puts, 1); /* the dropped job was never logged */
    assert_true(job_flag(a.job, JOB_FLAG_JSON));
    assert_string_equal(engine_job_ext(e, a.job)->key, "room-301");
    engine_free(e);
}

static void test_key_replace_in_place(void **state) {
    (void)state;
    log_rec_t r;
    engine_t *e = new_engine(&r);
    engine_put_opts_t o = keyed("room-301", true);
    o.run_at = T0 + SEC(3600);
    engine_put_result_t a = put(e, "net", "restore-1", &o, 60, T0);
    uint64_t id = a.job->id;
    assert_int_equal(job_state(a.job), JOB_DELAYED);
    o.run_at = T0 + SEC(60);
    o.max_attempts = 4;
    engine_put_result_t b = put(e, "net", "restore-two", &o, 30, T0 + SEC(1));
    assert_int_equal(b.outcome, PUT_REPLACED);
    assert_int_equal(b.job->id, id);
    assert_int_equal(b.job->size, 11);
    assert_memory_equal(b.job->body, "restore-two", 11);
    assert_int_equal(b.job->deadline, T0 + SEC(60));
    assert_int_equal(b.job->ttr, 30);
    assert_int_equal(b.job->created, T0); /* it is the same task */
    assert_int_equal(engine_job_ext(e, b.job)->max_attempts, 4);
    assert_ptr_equal(engine_job_find(e, id), b.job);
    tube_t *t = engine_tube_find(e, "net", 3);
    assert_ptr_equal(engine_key_holder(t, "room-301", 8), b.job);
    assert_int_equal(e->jobs.count, 1);
    assert_int_equal(e->count.delayed, 1);
    assert_int_equal(e->count.job_bytes, 11);
    assert_int_equal(r.puts, 2);
    assert_int_equal(r.events[r.nevents - 1], EVENT_REPLACED);
    /* A replacement that runs now makes it ready. */
    o.run_at = T0;
    engine_put_result_t c = put(e, "net", "now", &o, 30, T0 + SEC(2));
    assert_int_equal(c.outcome, PUT_REPLACED);
    assert_int_equal(job_state(c.job), JOB_READY);
    assert_int_equal(e->count.delayed, 0);
    assert_int_equal(e->count.ready, 1);
    engine_free(e);
}

static void test_key_supersedes_a_running_holder(void **state) {
    (void)state;
    log_rec_t r;
    engine_t *e = new_engine(&r);
    session_t *s = engine_session_new(e, on_notify, NULL);
    uint32_t n;
    assert_int_equal(engine_watch(e, s, "net", 3, &n), ENGINE_OK);
    engine_put_opts_t o = keyed("k", true);
    engine_put_result_t a = put(e, "net", "old", &o, 60, T0);
    job_t *got;
    assert_int_equal(engine_reserve(e, s, 0, T0, &got), ENGINE_OK);
    assert_ptr_equal(got, a.job);
    engine_put_result_t b = put(e, "net", "new", &o, 60, T0 + 1);
    assert_int_equal(b.outcome, PUT_SUPERSEDED);
    assert_int_equal(b.superseded, a.job->id);
    assert_true(b.job != a.job);
    tube_t *t = engine_tube_find(e, "net", 3);
    assert_ptr_equal(engine_key_holder(t, "k", 1), b.job);
    assert_null(engine_job_ext(e, a.job)->key);
    /* The running one ends normally; the key stays with the new one. */
    assert_int_equal(engine_delete(e, s, a.job->id, T0 + 2), ENGINE_OK);
    assert_ptr_equal(engine_key_holder(t, "k", 1), b.job);
    engine_session_free(e, s, T0 + 3);
    engine_free(e);
}

static void test_key_released_when_the_task_ends(void **state) {
    (void)state;
    log_rec_t r;
    engine_t *e = new_engine(&r);
    engine_put_opts_t o = keyed("once", false);
    engine_put_result_t a = put(e, "q", "1", &o, 60, T0);
    uint64_t first = a.job->id;
    assert_int_equal(engine_delete(e, NULL, first, T0 + 1), ENGINE_OK);
    engine_put_result_t b = put(e, "q", "2", &o, 60, T0 + 2);
    assert_int_equal(b.outcome, PUT_CREATED);
    assert_true(b.job->id != first);
    /* Keys are per queue. */
    engine_put_result_t c = put(e, "other", "3", &o, 60, T0 + 3);
    assert_int_equal(c.outcome, PUT_CREATED);
    engine_free(e);
}

/* ---- attempts ---- */

static void test_attempts_run_out_on_ttr(void **state) {
    (void)state;
    log_rec_t r;
    engine_t *e = new_engine(&r);
    session_t *s = engine_session_new(e, on_notify, NULL);
    uint32_t n;
    engine_watch(e, s, "q", 1, &n);
    engine_put_opts_t o = {.max_attempts = 2};
    engine_put_result_t a = put(e, "q", "x", &o, 1, T0);
    tube_t *t = engine_tube_find(e, "q", 1);
    job_t *got;
    int64_t now = T0;
    for (int attempt = 1; attempt <= 2; attempt++) {
        assert_int_equal(engine_reserve(e, s, 0, now, &got), ENGINE_OK);
        assert_int_equal(engine_job_attempts(e, got), (uint32_t)attempt);
        now += SEC(2);
        engine_tick(e, now); /* TTR runs out */
    }
    assert_int_equal(job_state(a.job), JOB_BURIED);
    assert_true(engine_job_failed(e, a.job));
    assert_int_equal(t->failed, 1);
    assert_int_equal(t->failed_total, 1);
    assert_string_equal(engine_job_ext(e, a.job)->last_error, "attempt 2 timed out (ttr 1 s)");
    /* Kick: a fresh set of attempts. */
    assert_int_equal(engine_kick(e, t, 10, now), 1);
    assert_false(engine_job_failed(e, a.job));
    assert_int_equal(t->failed, 0);
    assert_int_equal(engine_job_attempts(e, a.job), 0);
    engine_session_free(e, s, now);
    engine_free(e);
}

static void test_attempts_run_out_on_release(void **state) {
    (void)state;
    log_rec_t r;
    engine_t *e = new_engine(&r);
    session_t *s = engine_session_new(e, on_notify, NULL);
    uint32_t n;
    engine_watch(e, s, "q", 1, &n);
    engine_put_opts_t o = {.max_attempts = 1};
    engine_put_result_t a = put(e, "q", "x", &o, 60, T0);
    job_t *got;
    assert_int_equal(engine_reserve(e, s, 0, T0, &got), ENGINE_OK);
    /* The worker is told RELEASED; the job is buried as failed. */
    assert_int_equal(engine_release(e, s, got->id, 5, 0, T0 + 1), ENGINE_OK);
    assert_true(engine_job_failed(e, a.job));
    assert_string_equal(engine_job_ext(e, a.job)->last_error, "attempt 1 released by a worker");
    /* A task without a limit just goes back. */
    engine_put_result_t b = put(e, "q", "y", NULL, 60, T0 + 2);
    assert_int_equal(engine_reserve_job(e, s, b.job->id, T0 + 2, &got), ENGINE_OK);
    assert_int_equal(engine_release(e, s, got->id, 5, 0, T0 + 3), ENGINE_OK);
    assert_int_equal(job_state(b.job), JOB_READY);
    assert_false(engine_job_failed(e, b.job));
    /* Deleting a failed task ends it as failed. */
    uint64_t id = a.job->id;
    assert_int_equal(engine_delete(e, s, id, T0 + 4), ENGINE_OK);
    assert_int_equal(engine_history_find(e, id, T0 + 4)->end, TASK_FAILED);
    engine_session_free(e, s, T0 + 5);
    engine_free(e);
}

/* ---- cancel and history ---- */

static void test_cancel(void **state) {
    (void)state;
    log_rec_t r;
    engine_t *e = new_engine(&r);
    session_t *s = engine_session_new(e, on_notify, NULL);
    uint32_t n;
    engine_watch(e, s, "q", 1, &n);
    engine_put_opts_t o = keyed("k", false);
    engine_put_result_t a = put(e, "q", "waiting", &o, 60, T0);
    engine_put_result_t b = put(e, "q", "running", NULL, 60, T0);
    job_t *got;
    assert_int_equal(engine_reserve_job(e, s, b.job->id, T0, &got), ENGINE_OK);
    const task_history_t *h = NULL;
    uint64_t aid = a.job->id, bid = b.job->id;
    assert_int_equal(engine_cancel(e, bid, T0 + 1, &h), ENGINE_RUNNING);
    tube_t *t = engine_tube_find(e, "q", 1);
    assert_int_equal(engine_cancel_key(e, t, "k", 1, T0 + 1, &h), ENGINE_OK);
    assert_non_null(h);
    assert_int_equal(h->id, aid);
    assert_int_equal(h->end, TASK_CANCELLED);
    assert_string_equal(h->key, "k");
    assert_string_equal(h->queue, "q");
    assert_int_equal(h->finished, T0 + 1);
    assert_null(engine_key_holder(t, "k", 1));
    /* Cancelling again answers the same; unknown ids are not found. */
    assert_int_equal(engine_cancel(e, aid, T0 + 2, &h), ENGINE_OK);
    assert_int_equal(engine_cancel(e, 999, T0 + 2, &h), ENGINE_NOT_FOUND);
    assert_int_equal(engine_cancel_key(e, t, "k", 1, T0 + 2, &h), ENGINE_NOT_FOUND);
    /* A task its worker finished is done, and cannot be cancelled. */
    assert_int_equal(engine_delete(e, s, bid, T0 + 3), ENGINE_OK);
    assert_int_equal(engine_history_find(e, bid, T0 + 3)->end, TASK_DONE);
    assert_int_equal(engine_cancel(e, bid, T0 + 4, &h), ENGINE_FINISHED);
    assert_int_equal(r.deletes, 2);
    assert_int_equal(t->done_total, 1);
    assert_int_equal(t->cancelled_total, 1);
    engine_session_free(e, s, T0 + 5);
    engine_free(e);
}

static void test_history_retention(void **state) {
    (void)state;
    log_rec_t r;
    engine_t *e = new_engine(&r);
    engine_set_history(e, 3, SEC(100));
    uint64_t ids[5];
    for (int i = 0; i < 5; i++) {
        ids[i] = put(e, "q", "x", NULL, 60, T0).job->id;
        assert_int_equal(engine_delete(e, NULL, ids[i], T0 + SEC(i)), ENGINE_OK);
    }
    /* The newest three are kept. */
    assert_int_equal(e->history.count, 3);
    assert_null(engine_history_find(e, ids[0], T0 + SEC(5)));
    assert_null(engine_history_find(e, ids[1], T0 + SEC(5)));
    assert_non_null(engine_history_find(e, ids[2], T0 + SEC(5)));
    /* Entries older than the age are not answered, then dropped. */
    assert_null(engine_history_find(e, ids[2], T0 + SEC(103)));
    assert_non_null(engine_history_find(e, ids[4], T0 + SEC(103)));
    engine_expire_history(e, T0 + SEC(103)); /* 101 s old: gone; 100 s old: kept */
    assert_int_equal(e->history.count, 2);
    engine_expire_history(e, T0 + SEC(104));
    assert_int_equal(e->history.count, 1);
    assert_ptr_equal(e->history_oldest, e->history_newest);
    /* No history at all. */
    engine_set_history(e, 0, 0);
    assert_int_equal(e->history.count, 0);
    uint64_t id = put(e, "q", "x", NULL, 60, T0).job->id;
    assert_int_equal(engine_delete(e, NULL, id, T0), ENGINE_OK);
    assert_null(engine_history_find(e, id, T0));
    engine_free(e);
}

/* ---- restore ---- */

static void test_restore_ext_and_history(void **state) {
    (void)state;
    log_rec_t r;
    engine_t *e = new_engine(&r);
    engine_set_journal(e, NULL, NULL);
    engine_restore_t jr = {.id = 7, .tube = "q", .tube_len = 1, .state = JOB_BURIED, .deadline = 3,
                           .created = T0, .pri = 1, .ttr = 5, .reserves = 4};
    assert_int_equal(engine_restore_job(e, &jr, "body", 4), ENGINE_OK);
    job_ext_t x = {.key = "kk", .key_len = 2, .failed = true, .max_attempts = 3, .attempt_base = 1,
                   .last_error = "boom"};
    assert_int_equal(engine_restore_ext(e, 7, &x, true), ENGINE_OK);
    job_t *j = engine_job_find(e, 7);
    tube_t *t = engine_tube_find(e, "q", 1);
    assert_true(engine_job_failed(e, j));
    assert_int_equal(t->failed, 1);
    assert_true(job_flag(j, JOB_FLAG_JSON));
    assert_ptr_equal(engine_key_holder(t, "kk", 2), j);
    assert_int_equal(engine_job_attempts(e, j), 3);
    assert_string_equal(engine_job_ext(e, j)->last_error, "boom");
    /* A later extension without the flag clears it; the count follows. */
    job_ext_t y = {.key = "kk", .key_len = 2};
    assert_int_equal(engine_restore_ext(e, 7, &y, false), ENGINE_OK);
    assert_false(engine_job_failed(e, j));
    assert_int_equal(t->failed, 0);
    assert_false(job_flag(j, JOB_FLAG_JSON));
    /* A later job taking the key takes it from the earlier holder. */
    jr.id = 8;
    jr.state = JOB_READY;
    assert_int_equal(engine_restore_job(e, &jr, "b2", 2), ENGINE_OK);
    assert_int_equal(engine_restore_ext(e, 8, &y, false), ENGINE_OK);
    assert_ptr_equal(engine_key_holder(t, "kk", 2), engine_job_find(e, 8));
    assert_null(engine_job_ext(e, j)->key);
    /* History: a duplicate (snapshot and log overlap) is kept once. */
    task_history_t *h = calloc(1, sizeof *h + 2);
    h->id = 3;
    h->end = TASK_DONE;
    h->finished = T0;
    h->queue_len = 1;
    h->queue[0] = 'q';
    assert_int_equal(engine_restore_history(e, h), ENGINE_OK);
    assert_int_equal(engine_restore_history(e, h), ENGINE_OK);
    assert_int_equal(e->history.count, 1);
    assert_int_equal(engine_history_find(e, 3, T0)->end, TASK_DONE);
    free(h);
    engine_restore_done(e);
    engine_free(e);
}

/* ---- push attempts ---- */

static job_t *reserve_one(engine_t *e, session_t *s, int64_t now) {
    job_t *j = NULL;
    assert_int_equal(engine_reserve(e, s, 0, now, &j), ENGINE_OK);
    return j;
}

static void test_push_attempt_failed_retries_then_fails(void **state) {
    (void)state;
    log_rec_t r;
    engine_t *e = new_engine(&r);
    session_t *s = engine_session_new(e, on_notify, NULL);
    uint32_t n;
    assert_int_equal(engine_watch(e, s, "mail", 4, &n), ENGINE_OK);
    uint64_t id = put(e, "mail", "{}", NULL, 60, T0).job->id;

    /* Attempt 1 fails: delayed until the retry time, sub-second. */
    job_t *j = reserve_one(e, s, T0);
    int updates = r.updates;
    assert_int_equal(engine_attempt_failed(e, s, id, "php-fpm answered 500", 2,
                                           T0 + SEC(1) / 4, T0),
                     ENGINE_OK);
    assert_int_equal(job_state(j), JOB_DELAYED);
    assert_int_equal(j->deadline, T0 + SEC(1) / 4);
    assert_int_equal(j->delay, 1); /* whole seconds, rounded up */
    assert_int_equal(r.updates, updates + 1);
    assert_string_equal(engine_job_ext(e, j)->last_error, "attempt 1: php-fpm answered 500");
    engine_tick(e, T0 + SEC(1) / 4 - 1);
    assert_int_equal(job_state(j), JOB_DELAYED);
    engine_tick(e, T0 + SEC(1) / 4);
    assert_int_equal(job_state(j), JOB_READY);

    /* Attempt 2 is the queue's last: buried as failed. */
    j = reserve_one(e, s, T0 + SEC(1));
    assert_int_equal(engine_attempt_failed(e, s, id, "timeout", 2, T0 + SEC(5), T0 + SEC(1)),
                     ENGINE_BURIED);
    assert_int_equal(job_state(j), JOB_BURIED);
    assert_true(engine_job_failed(e, j));
    assert_string_equal(engine_job_ext(e, j)->last_error, "attempt 2: timeout");
    assert_int_equal(engine_tube_find(e, "mail", 4)->failed, 1);
    assert_int_equal(r.events[r.nevents - 1], EVENT_FAILED);
    /* Not held any more. */
    assert_int_equal(engine_attempt_failed(e, s, id, "x", 2, T0, T0), ENGINE_NOT_FOUND);

    /* A kick gives fresh attempts; the task's own limit beats the queue's. */
    assert_int_equal(engine_kick_job(e, id, T0 + SEC(2)), ENGINE_OK);
    j = reserve_one(e, s, T0 + SEC(2));
    assert_int_equal(engine_job_attempts(e, j), 1);
    assert_int_equal(engine_attempt_failed(e, s, id, "again", 0, T0 + SEC(2), T0 + SEC(2)),
                     ENGINE_OK); /* no limit at all: retried, at once */
    assert_int_equal(job_state(j), JOB_READY);
    engine_session_free(e, s, T0 + SEC(3));
    engine_free(e);
}

static void test_push_task_limit_wins(void **state) {
    (void)state;
    log_rec_t r;
    engine_t *e = new_engine(&r);
    session_t *s = engine_session_new(e, on_notify, NULL);
    uint32_t n;
    assert_int_equal(engine_watch(e, s, "q", 1, &n), ENGINE_OK);
    engine_put_opts_t o = {.max_attempts = 1};
    uint64_t id = put(e, "q", "x", &o, 60, T0).job->id;
    job_t *j = reserve_one(e, s, T0);
    assert_int_equal(engine_attempt_failed(e, s, id, "no", 10, T0 + SEC(1), T0), ENGINE_BURIED);
    assert_true(engine_job_failed(e, j));
    engine_session_free(e, s, T0);
    engine_free(e);
}

static void test_hold_outlasts_the_ttr(void **state) {
    (void)state;
    log_rec_t r;
    engine_t *e = new_engine(&r);
    session_t *s = engine_session_new(e, on_notify, NULL);
    uint64_t id = put(e, "default", "x", NULL, 1, T0).job->id;
    job_t *j = reserve_one(e, s, T0);
    assert_int_equal(engine_hold(e, s, id, T0 + SEC(100)), ENGINE_OK);
    engine_tick(e, T0 + SEC(99));
    assert_int_equal(job_state(j), JOB_RESERVED);
    assert_int_equal(j->timeouts, 0);
    engine_tick(e, T0 + SEC(100));
    assert_int_equal(job_state(j), JOB_READY);
    assert_int_equal(j->timeouts, 1);
    session_t *other = engine_session_new(e, on_notify, NULL);
    assert_int_equal(engine_hold(e, other, id, T0), ENGINE_NOT_FOUND);
    engine_session_free(e, other, T0);
    engine_session_free(e, s, T0);
    engine_free(e);
}

/* ---- queue settings ---- */

static void test_settings_keep_the_queue(void **state) {
    (void)state;
    log_rec_t r;
    engine_t *e = new_engine(&r);
    const char *text = "{\"target\":\"http\"}";
    assert_int_equal(engine_set_settings(e, "hooks", 5, text, strlen(text)), ENGINE_OK);
    assert_int_equal(r.settings, 1);
    tube_t *t = engine_tube_find(e, "hooks", 5);
    assert_non_null(t);
    assert_string_equal(t->settings, text);
    assert_int_equal(t->settings_len, strlen(text));
    /* A job that comes and goes does not take the queue with it. */
    uint64_t id = put(e, "hooks", "x", NULL, 60, T0).job->id;
    assert_int_equal(engine_delete(e, NULL, id, T0), ENGINE_OK);
    assert_ptr_equal(engine_tube_find(e, "hooks", 5), t);
    /* Replacing keeps one reference; clearing logs and lets it go. */
    assert_int_equal(engine_set_settings(e, "hooks", 5, "{}", 2), ENGINE_OK);
    assert_string_equal(t->settings, "{}");
    assert_int_equal(engine_set_settings(e, "hooks", 5, NULL, 0), ENGINE_OK);
    assert_int_equal(r.settings, 3);
    assert_null(engine_tube_find(e, "hooks", 5));
    /* Clearing what is not there changes nothing and logs nothing. */
    assert_int_equal(engine_set_settings(e, "none", 4, NULL, 0), ENGINE_OK);
    assert_null(engine_tube_find(e, "none", 4));
    assert_int_equal(r.settings, 3);
    engine_free(e);
}

static void test_restore_settings(void **state) {
    (void)state;
    engine_t *e = engine_new();
    assert_non_null(e);
    assert_int_equal(engine_restore_settings(e, "a", 1, "{\"x\":1}", 7), ENGINE_OK);
    assert_int_equal(engine_restore_settings(e, "b", 1, "{}", 2), ENGINE_OK);
    assert_int_equal(engine_restore_settings(e, "b", 1, NULL, 0), ENGINE_OK);
    engine_restore_done(e);
    assert_string_equal(engine_tube_find(e, "a", 1)->settings, "{\"x\":1}");
    assert_null(engine_tube_find(e, "b", 1)); /* cleared, nothing else held it */
    engine_free(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_keep_returns_the_holder),
        cmocka_unit_test(test_key_replace_in_place),
        cmocka_unit_test(test_key_supersedes_a_running_holder),
        cmocka_unit_test(test_key_released_when_the_task_ends),
        cmocka_unit_test(test_attempts_run_out_on_ttr),
        cmocka_unit_test(test_attempts_run_out_on_release),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_history_retention),
        cmocka_unit_test(test_restore_ext_and_history),
        cmocka_unit_test(test_push_attempt_failed_retries_then_fails),
        cmocka_unit_test(test_push_task_limit_wins),
        cmocka_unit_test(test_hold_outlasts_the_ttr),
        cmocka_unit_test(test_settings_keep_the_queue),
        cmocka_unit_test(test_restore_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
