/* task.c - what the HTTP API adds to a beanstalk job: unique keys,
 * attempt limits with the reason the last attempt failed, and cancel.
 *
 * These live in a job_ext_t beside the job, found by id, and only jobs that
 * use them have one: a task put over the beanstalk protocol costs nothing
 * more. A key is unique among its tube's unfinished tasks; the tube's key
 * map points at the holder, and the key is released when the task ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine_internal.h"

job_ext_t *eng_ext(const engine_t *e, const job_t *j) {
    return job_flag(j, JOB_FLAG_EXT) ? u64map_get(&e->ext, j->id) : NULL;
}

const job_ext_t *engine_job_ext(const engine_t *e, const job_t *j) {
    return eng_ext(e, j);
}

job_ext_t *eng_ext_get(engine_t *e, job_t *j) {
    job_ext_t *x = eng_ext(e, j);
    if (x)
        return x;
    x = calloc(1, sizeof *x);
    if (!x || !u64map_put(&e->ext, j->id, x)) {
        free(x);
        return NULL;
    }
    job_set_flag(j, JOB_FLAG_EXT, true);
    return x;
}

static void key_release(engine_t *e, const job_t *j, job_ext_t *x) {
    if (!x->key)
        return;
    tube_t *t = e->tube_table[j->tube];
    if (strmap_get(&t->keys, x->key, x->key_len) == j)
        strmap_del(&t->keys, x->key, x->key_len);
    free(x->key);
    x->key = NULL;
    x->key_len = 0;
}

void eng_ext_drop(engine_t *e, job_t *j) {
    if (!job_flag(j, JOB_FLAG_EXT))
        return;
    job_ext_t *x = u64map_del(&e->ext, j->id);
    if (x) {
        key_release(e, j, x);
        free(x->last_error);
        free(x);
    }
    job_set_flag(j, JOB_FLAG_EXT, false);
}

uint32_t engine_job_attempts(const engine_t *e, const job_t *j) {
    const job_ext_t *x = eng_ext(e, j);
    return x ? j->reserves - x->attempt_base : j->reserves;
}

bool engine_job_failed(const engine_t *e, const job_t *j) {
    const job_ext_t *x = eng_ext(e, j);
    return x && x->failed && job_state(j) == JOB_BURIED;
}

job_t *engine_key_holder(const tube_t *t, const char *key, size_t len) {
    return strmap_get(&t->keys, key, len);
}

static void set_error(job_ext_t *x, const char *msg) {
    char *copy = strdup(msg);
    if (!copy)
        return; /* the reason is informative only */
    free(x->last_error);
    x->last_error = copy;
}

bool eng_attempt_failed(engine_t *e, tube_t *t, job_t *j, const char *why, uint32_t max_attempts,
                        int64_t now) {
    job_ext_t *x = eng_ext(e, j);
    if (why && (x = eng_ext_get(e, j)))
        set_error(x, why);
    uint32_t limit = x && x->max_attempts ? x->max_attempts : max_attempts;
    if (!limit || engine_job_attempts(e, j) < limit || !(x = eng_ext_get(e, j)))
        return false;
    x->failed = true;
    x->failed_at = now;
    t->failed_total++;
    eng_bury(e, t, j);
    eng_emit(e, EVENT_FAILED, j->id, t, now);
    return true;
}

void eng_fresh_attempts(engine_t *e, job_t *j) {
    job_ext_t *x = eng_ext(e, j);
    if (!x)
        return;
    x->failed = false;
    x->attempt_base = j->reserves;
}

/* Give j the key: j is new and has no key yet. */
static bool key_bind(engine_t *e, tube_t *t, job_t *j, const char *key, size_t len) {
    job_ext_t *x = eng_ext_get(e, j);
    if (!x)
        return false;
    x->key = malloc(len + 1);
    if (!x->key)
        return false;
    memcpy(x->key, key, len);
    x->key[len] = '\0';
    x->key_len = (uint16_t)len;
    if (!strmap_put(&t->keys, x->key, len, j)) {
        free(x->key);
        x->key = NULL;
        return false;
    }
    return true;
}

/* The holder h (waiting, not reserved) takes n's body and settings: n
 * becomes the task under h's id, h's allocation goes. Returns n. */
static job_t *replace_in_place(engine_t *e, tube_t *t, job_t *h, job_t *n,
                               const engine_put_opts_t *o, int64_t now) {
    job_ext_t *x = eng_ext(e, h);
    eng_unlink(e, t, h);
    x->failed = false;
    n->id = h->id;
    n->created = h->created;
    n->reserves = h->reserves;
    n->timeouts = h->timeouts;
    n->releases = h->releases;
    n->buries = h->buries;
    n->kicks = h->kicks;
    job_set_flag(n, JOB_FLAG_EXT, true);
    x->max_attempts = o->max_attempts;
    x->attempt_base = n->reserves;
    free(x->last_error);
    x->last_error = NULL;
    /* Swap the allocations: the id, the ext entry and the key now lead
     * to n. */
    idmap_replace(&e->jobs, n->id, n);
    strmap_replace(&t->keys, x->key, x->key_len, n);
    e->count.job_bytes += n->size;
    e->count.job_bytes -= h->size;
    if (e->count.job_bytes > e->count.job_bytes_peak)
        e->count.job_bytes_peak = e->count.job_bytes;
    eng_tube_unref(e, t); /* h's reference; n holds its own */
    free(h);
    if (o->run_at > now) {
        n->deadline = o->run_at;
        eng_place_delayed(e, t, n);
    } else if (o->run_at == 0 && n->delay > 0) {
        n->deadline = now + (int64_t)n->delay * NS_PER_SEC;
        eng_place_delayed(e, t, n);
    } else {
        eng_make_ready(e, t, n, now);
    }
    eng_emit(e, EVENT_REPLACED, n->id, t, now);
    return n;
}

engine_result_t engine_put_opts(engine_t *e, job_t *j, const engine_put_opts_t *o, int64_t now,
                                engine_put_result_t *res) {
    static const engine_put_opts_t none = {0};
    if (!o)
        o = &none;
    tube_t *t = e->tube_table[j->tube];
    res->job = j;
    res->outcome = PUT_CREATED;
    res->superseded = 0;
    job_set_flag(j, JOB_FLAG_JSON, o->json);

    job_t *holder = o->key ? engine_key_holder(t, o->key, o->key_len) : NULL;
    if (holder && !o->replace) {
        engine_job_discard(e, j);
        res->job = holder;
        res->outcome = PUT_DEDUPLICATED;
        return ENGINE_OK;
    }
    if (holder && job_state(holder) != JOB_RESERVED) {
        job_t *n = replace_in_place(e, t, holder, j, o, now);
        res->job = n;
        res->outcome = PUT_REPLACED;
        eng_journal(e, JOURNAL_PUT, n, t);
        return ENGINE_OK;
    }
    engine_result_t r = eng_insert(e, t, j, o->run_at, now);
    if (r == ENGINE_NO_MEMORY) {
        engine_job_discard(e, j);
        return r;
    }
    if (holder) {
        /* The holder is running: it cannot change under its worker, so
         * the new task takes the key and the running one goes on without. */
        job_ext_t *hx = eng_ext(e, holder);
        key_release(e, holder, hx);
        eng_journal(e, JOURNAL_UPDATE, holder, t);
        res->outcome = PUT_SUPERSEDED;
        res->superseded = holder->id;
    }
    bool ok = true;
    if (o->key)
        ok = key_bind(e, t, j, o->key, o->key_len);
    if (ok && o->max_attempts) {
        job_ext_t *x = eng_ext_get(e, j);
        ok = x != NULL;
        if (ok)
            x->max_attempts = o->max_attempts;
    }
    if (!ok) {
        /* Inserted but its key or limit could not be kept: take it out. */
        eng_unlink(e, t, j);
        e->count.total_jobs--;
        t->total_jobs--;
        eng_destroy(e, j);
        return ENGINE_NO_MEMORY;
    }
    eng_journal(e, JOURNAL_PUT, j, t);
    eng_emit(e, EVENT_ENQUEUED, j->id, t, now);
    return r;
}

engine_result_t engine_cancel(engine_t *e, uint64_t id, int64_t now, const task_history_t **out) {
    job_t *j = engine_job_find(e, id);
    if (!j) {
        const task_history_t *h = engine_history_find(e, id, now);
        if (!h)
            return ENGINE_NOT_FOUND;
        if (h->end != TASK_CANCELLED)
            return ENGINE_FINISHED;
        *out = h;
        return ENGINE_OK;
    }
    if (job_state(j) == JOB_RESERVED)
        return ENGINE_RUNNING;
    if (engine_job_failed(e, j))
        return ENGINE_FINISHED;
    tube_t *t = e->tube_table[j->tube];
    eng_unlink(e, t, j);
    t->deletes++;
    t->cancelled_total++;
    eng_history_add(e, j, TASK_CANCELLED, now);
    eng_journal(e, JOURNAL_DELETE, j, t);
    eng_emit(e, EVENT_CANCELLED, id, t, now);
    eng_destroy(e, j);
    *out = engine_history_find(e, id, now);
    if (!*out)
        *out = eng_history_last(e, id);
    return ENGINE_OK;
}

engine_result_t engine_cancel_key(engine_t *e, tube_t *t, const char *key, size_t len, int64_t now,
                                  const task_history_t **out) {
    job_t *j = engine_key_holder(t, key, len);
    if (!j)
        return ENGINE_NOT_FOUND;
    return engine_cancel(e, j->id, now, out);
}

engine_result_t engine_restore_ext(engine_t *e, uint64_t id, const job_ext_t *src, bool json) {
    job_t *j = engine_job_find(e, id);
    if (!j)
        return ENGINE_OK;
    tube_t *t = e->tube_table[j->tube];
    bool was_failed = engine_job_failed(e, j);
    job_set_flag(j, JOB_FLAG_JSON, json);
    eng_ext_drop(e, j);
    if (src->key || src->max_attempts || src->attempt_base || src->failed || src->failed_at ||
        src->last_error) {
        if (src->key) {
            /* A later record wins the key (the earlier holder's record
             * that gave it up may have been compacted away). */
            job_t *other = engine_key_holder(t, src->key, src->key_len);
            if (other)
                key_release(e, other, eng_ext(e, other));
            if (!key_bind(e, t, j, src->key, src->key_len))
                return ENGINE_NO_MEMORY;
        }
        job_ext_t *x = eng_ext_get(e, j);
        if (!x)
            return ENGINE_NO_MEMORY;
        x->failed = src->failed;
        x->failed_at = src->failed_at;
        x->max_attempts = src->max_attempts;
        x->attempt_base = src->attempt_base;
        if (src->last_error)
            set_error(x, src->last_error);
    }
    bool is_failed = engine_job_failed(e, j);
    if (is_failed && !was_failed)
        t->failed++;
    else if (!is_failed && was_failed)
        t->failed--;
    return ENGINE_OK;
}

void engine_set_observer(engine_t *e, engine_observe_fn fn, void *ctx) {
    e->observe = fn;
    e->observe_ctx = ctx;
}
