/* history.c - finished tasks, kept for a while.
 *
 * When a task ends (done, failed, cancelled) the engine keeps a small
 * record of it so that a web page can still show "sent" or "failed: why".
 * The record holds what a status page needs, not the payload. Retention is
 * bounded by count and by age; entries form a list in finish order, so the
 * oldest is always the one to drop. */
#include <stdlib.h>
#include <string.h>

#include "core/engine_internal.h"

static void history_drop_oldest(engine_t *e) {
    task_history_t *h = e->history_oldest;
    e->history_oldest = h->newer;
    if (!e->history_oldest)
        e->history_newest = NULL;
    u64map_del(&e->history, h->id);
    free(h->key);
    free(h->error);
    free(h);
}

/* Append h (newest) and drop what falls outside the retention. */
static void history_append(engine_t *e, task_history_t *h) {
    task_history_t *old = u64map_get(&e->history, h->id);
    if (old) {
        /* Replayed twice (a snapshot overlapping the log): keep one. */
        free(h->key);
        free(h->error);
        free(h);
        return;
    }
    if (!u64map_put(&e->history, h->id, h)) {
        free(h->key);
        free(h->error);
        free(h);
        return; /* history is informative: losing an entry is acceptable */
    }
    h->newer = NULL;
    if (e->history_newest)
        e->history_newest->newer = h;
    else
        e->history_oldest = h;
    e->history_newest = h;
    while (e->history.count > e->history_max)
        history_drop_oldest(e);
}

static task_history_t *history_new(const char *queue, size_t queue_len, const char *key,
                                   size_t key_len, const char *error) {
    task_history_t *h = calloc(1, sizeof *h + queue_len + 1);
    if (!h)
        return NULL;
    memcpy(h->queue, queue, queue_len);
    h->queue_len = (uint16_t)queue_len;
    if (key) {
        h->key = malloc(key_len + 1);
        if (h->key) {
            memcpy(h->key, key, key_len);
            h->key[key_len] = '\0';
        }
    }
    if (error)
        h->error = strdup(error);
    return h;
}

/* With no history kept, the last finished task is still remembered alone,
 * so that a cancel can say what it cancelled. */
static void keep_last(engine_t *e, task_history_t *h) {
    if (e->history_last) {
        free(e->history_last->key);
        free(e->history_last->error);
        free(e->history_last);
    }
    e->history_last = h;
}

void eng_history_add(engine_t *e, const job_t *j, task_end_t end, int64_t now) {
    const tube_t *t = e->tube_table[j->tube];
    const job_ext_t *x = eng_ext(e, j);
    task_history_t *h = history_new(t->name, t->name_len, x ? x->key : NULL,
                                    x ? x->key_len : 0, x ? x->last_error : NULL);
    if (!h)
        return;
    h->id = j->id;
    h->created = j->created;
    h->finished = now;
    h->pri = j->pri;
    h->ttr = j->ttr;
    h->attempts = engine_job_attempts(e, j);
    h->max_attempts = x ? x->max_attempts : 0;
    h->end = end;
    if (e->history_max)
        history_append(e, h);
    else
        keep_last(e, h);
}

const task_history_t *eng_history_last(const engine_t *e, uint64_t id) {
    if (e->history_last && e->history_last->id == id)
        return e->history_last;
    return NULL;
}

const task_history_t *engine_history_find(const engine_t *e, uint64_t id, int64_t now) {
    const task_history_t *h = u64map_get(&e->history, id);
    if (h && e->history_age && now - h->finished > e->history_age)
        return NULL;
    return h;
}

void engine_set_history(engine_t *e, uint64_t max, int64_t age_ns) {
    e->history_max = max;
    e->history_age = age_ns;
    while (e->history.count > e->history_max)
        history_drop_oldest(e);
}

void engine_expire_history(engine_t *e, int64_t now) {
    while (e->history_oldest && e->history_age &&
           now - e->history_oldest->finished > e->history_age)
        history_drop_oldest(e);
}

engine_result_t engine_restore_history(engine_t *e, const task_history_t *src) {
    if (!e->history_max)
        return ENGINE_OK;
    task_history_t *h = history_new(src->queue, src->queue_len, src->key,
                                    src->key ? strlen(src->key) : 0, src->error);
    if (!h)
        return ENGINE_NO_MEMORY;
    h->id = src->id;
    h->created = src->created;
    h->finished = src->finished;
    h->pri = src->pri;
    h->ttr = src->ttr;
    h->attempts = src->attempts;
    h->max_attempts = src->max_attempts;
    h->end = src->end;
    history_append(e, h);
    return ENGINE_OK;
}

void eng_history_free(engine_t *e) {
    while (e->history_oldest)
        history_drop_oldest(e);
    u64map_free(&e->history);
    keep_last(e, NULL);
}
