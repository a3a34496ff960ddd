/* wal.c - the durable log, loop side: encode changes into the batch being
 * filled, hand batches to the writer (one in flight at a time: group
 * commit), track what is durable, and drive compaction.
 *
 * Compaction writes a snapshot of the live state while the server runs, a
 * chunk per turn, and needs no pause: every record is a whole-state
 * "set", never a delta, so replaying the snapshot and then the segments
 * written since it began gives the same state even where the two overlap.
 * The snapshot covers every segment up to the one in use when it began;
 * once it is durable those segments are deleted. */
#include "store/wal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/panic.h"

#define COMPACT_RETRY_NS (10 * NS_PER_SEC)
#define GROW_RETRY_NS NS_PER_SEC
/* Estimated log bytes per live job beyond its body: the record header and
 * fields plus a typical tube name. */
#define LIVE_JOB_OVERHEAD 96

/* ---- encoding changes ---- */

static void job_update_of(const job_t *j, wal_job_update_t *u) {
    u->id = j->id;
    u->pri = j->pri;
    u->delay = j->delay;
    switch (job_state(j)) {
    case JOB_DELAYED:
        u->state = WAL_JOB_DELAYED;
        u->deadline = j->deadline;
        break;
    case JOB_BURIED:
        u->state = WAL_JOB_BURIED;
        u->deadline = j->deadline;
        break;
    default: /* a reservation does not survive a restart */
        u->state = WAL_JOB_READY;
        u->deadline = 0;
        break;
    }
    u->counters.reserves = j->reserves;
    u->counters.timeouts = j->timeouts;
    u->counters.releases = j->releases;
    u->counters.buries = j->buries;
    u->counters.kicks = j->kicks;
}

/* A job's extension and flags, when it has any: written after each PUT
 * and UPDATE of such a job, whole. */
static bool encode_ext(buf_t *b, const engine_t *e, const job_t *j, uint32_t *count) {
    const job_ext_t *x = engine_job_ext(e, j);
    bool json = job_flag(j, JOB_FLAG_JSON);
    if (!x && !json)
        return true;
    uint8_t flags = (uint8_t)((x && x->failed ? WAL_EXT_FAILED : 0) | (json ? WAL_EXT_JSON : 0));
    (*count)++;
    return wal_put_ext(b, j->id, x ? x->max_attempts : 0, x ? x->attempt_base : 0, flags,
                       x ? x->failed_at : 0, x ? x->key : NULL, x ? x->key_len : 0,
                       x ? x->last_error : NULL);
}

static bool encode_job(buf_t *b, const engine_t *e, const job_t *j, uint32_t *count) {
    wal_job_update_t u;
    job_update_of(j, &u);
    const tube_t *t = engine_job_tube(e, j);
    (*count)++;
    return wal_put_job(b, &u, j->created, j->ttr, t->name, (uint16_t)t->name_len, j->body,
                       j->size) &&
           encode_ext(b, e, j, count);
}

static bool encode_history(buf_t *b, const task_history_t *h, uint32_t *count) {
    (*count)++;
    return wal_put_history(b, h->id, h->created, h->finished, h->pri, h->ttr, h->attempts,
                           h->max_attempts, (uint8_t)h->end, h->queue, h->queue_len, h->key,
                           h->error);
}

void wal_journal(void *ctx, journal_kind_t kind, const job_t *j, const tube_t *t) {
    wal_t *w = ctx;
    bool ok = true;
    uint32_t count = 0;
    if (w->batch_count == 0 && w->batch.len == 0)
        ok = wal_put_batch(&w->batch, 0, 0, 0, 0); /* filled in when sealed */
    wal_job_update_t u;
    const task_history_t *h;
    switch (kind) {
    case JOURNAL_PUT:
        ok = ok && encode_job(&w->batch, w->engine, j, &count);
        break;
    case JOURNAL_UPDATE:
        job_update_of(j, &u);
        count++;
        ok = ok && wal_put_update(&w->batch, &u) && encode_ext(&w->batch, w->engine, j, &count);
        break;
    case JOURNAL_DELETE:
        /* The history entry (if kept) is made just before the delete. */
        h = u64map_get(&w->engine->history, j->id);
        if (h)
            ok = ok && encode_history(&w->batch, h, &count);
        count++;
        ok = ok && wal_put_delete(&w->batch, j->id);
        break;
    case JOURNAL_PAUSE:
        count++;
        ok = ok && wal_put_pause(&w->batch, t->pause_ns, t->unpause_at, t->name,
                                 (uint16_t)t->name_len);
        break;
    case JOURNAL_SETTINGS:
        count++;
        ok = ok && wal_put_settings(&w->batch, t->name, (uint16_t)t->name_len, t->settings,
                                    t->settings_len);
        break;
    }
    /* The engine has already made the change: it cannot be refused now. */
    if (!ok)
        defer_panic("out of memory while logging a change");
    w->batch_count += count;
    w->records_written += count;
}

uint64_t wal_position(wal_t *w) {
    if (!w->batch_count)
        return w->next_seq - 1;
    if (w->lingering)
        w->linger_holds++;
    return w->next_seq;
}

uint64_t wal_durable(const wal_t *w) {
    return w->durable_seq;
}

/* ---- group commit ---- */

static void submit_batch(wal_t *w) {
    wop_t *op = wal_op_new(WOP_APPEND);
    op->data = w->batch;
    op->seq = w->next_seq++;
    op->count = w->batch_count;
    w->inflight_count = w->batch_count;
    op->rotate = w->seg_bytes >= w->cfg.segment_size;
    if (op->rotate)
        w->seg_bytes = 0;
    w->seg_bytes += op->data.len;
    w->tail_bytes += op->data.len;
    w->batches++;
    w->inflight_bytes = op->data.len;
    buf_init(&w->batch);
    w->batch_count = 0;
    w->inflight = true;
    wal_writer_submit(&w->wr, op);
}

size_t wal_room(const wal_t *w, bool for_put) {
    if (!atomic_load(&w->wr.space_low))
        return SIZE_MAX;
    uint64_t room = atomic_load(&w->wr.room);
    uint64_t pending = w->batch.len + (w->inflight ? w->inflight_bytes : 0);
    uint64_t avail = room > pending ? room - pending : 0;
    if (for_put)
        avail = avail > WAL_RESERVE ? avail - WAL_RESERVE : 0;
    return avail > SIZE_MAX ? SIZE_MAX : (size_t)avail;
}

/* ---- compaction ---- */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void compaction_start(wal_t *w) {
    const idmap_t *m = &w->engine->jobs;
    w->pages = malloc((m->pages ? m->pages : 1) * sizeof *w->pages);
    if (!w->pages)
        return;
    idmap_page_numbers(m, w->pages);
    w->npages = m->pages;
    qsort(w->pages, w->npages, sizeof *w->pages, cmp_u64);
    w->page_i = 0;
    w->snap_limit = w->engine->next_id;
    w->snap_records = 0;
    w->compacting = true;
    w->snapshot_wanted = false;
    /* What is logged from now on lands in the segments after the snapshot;
     * the writer starts a new segment for it. */
    w->tail_bytes = 0;
    w->seg_bytes = 0;
    atomic_store(&w->wr.snap_state, SNAP_IDLE);
    wal_writer_submit(&w->wr, wal_op_new(WOP_SNAP_BEGIN));
}

/* One chunk of the snapshot: jobs in id order, as one frame. The last
 * chunk adds the history, the pauses, push settings and the next id; the writer closes the snapshot
 * with its end record, since only it knows which segments it covers. */
static void compaction_chunk(wal_t *w) {
    const engine_t *e = w->engine;
    bool last = false;
    wop_t *op = wal_op_new(WOP_SNAP_WRITE);
    buf_t *b = &op->data;
    uint32_t count = 0;
    bool ok = wal_put_batch(b, 0, 0, 0, 0);
    while (ok && b->len < WAL_SNAP_CHUNK && w->page_i < w->npages) {
        const idmap_page_t *pg = idmap_page(&e->jobs, w->pages[w->page_i++]);
        for (uint32_t k = 0; ok && pg && k < IDMAP_PAGE_SLOTS; k++) {
            const job_t *j = pg->slot[k];
            if (j && j->id < w->snap_limit)
                ok = encode_job(b, e, j, &count);
        }
    }
    if (ok && w->page_i == w->npages) {
        last = true;
        for (const task_history_t *h = e->history_oldest; ok && h; h = h->newer)
            ok = encode_history(b, h, &count);
        for (uint32_t i = 0; ok && i < e->ntubes; i++) {
            const tube_t *t = e->tube_list[i];
            if (t->pause_ns > 0) {
                ok = wal_put_pause(b, t->pause_ns, t->unpause_at, t->name, (uint16_t)t->name_len);
                count++;
            }
            if (ok && t->settings) {
                ok = wal_put_settings(b, t->name, (uint16_t)t->name_len, t->settings,
                                      t->settings_len);
                count++;
            }
        }
        ok = ok && wal_put_next_id(b, w->snap_limit);
        count++;
        op->kind = WOP_SNAP_COMMIT;
        op->seq = w->snap_records + count;
    }
    if (!ok)
        defer_panic("out of memory while compacting the log");
    wal_patch_batch(b, 0, 1, 0, (uint32_t)(b->len - WAL_BATCH_SIZE), count);
    w->snap_records += count;
    w->records_migrated += count;
    w->snap_ops_submitted++;
    wal_writer_submit(&w->wr, op);
    if (last) {
        free(w->pages);
        w->pages = NULL;
    }
}

static uint64_t live_estimate(const wal_t *w) {
    const engine_t *e = w->engine;
    return e->count.job_bytes + e->jobs.count * LIVE_JOB_OVERHEAD;
}

static void compaction_step(wal_t *w, int64_t now) {
    if (!w->compacting) {
        uint64_t threshold = 2 * live_estimate(w);
        if (threshold < WAL_COMPACT_MIN)
            threshold = WAL_COMPACT_MIN;
        /* Restarts each begin a segment: fold many small ones too. */
        uint64_t files = atomic_load(&w->wr.cur_seg) - atomic_load(&w->wr.oldest_seg);
        bool due = w->snapshot_wanted || w->tail_bytes >= threshold ||
                   (files > WAL_COMPACT_FILES && w->tail_bytes > 0);
        if (due && now >= w->compact_not_before && !atomic_load(&w->wr.space_low))
            compaction_start(w);
        return;
    }
    /* At most two chunks wait for the writer: memory stays bounded however
     * slow the disk. */
    while (w->pages && w->snap_ops_submitted - atomic_load(&w->wr.snap_ops_done) < 2)
        compaction_chunk(w);
}

/* The writer finished something: collect its results. */
static void compaction_collect(wal_t *w, int64_t now) {
    if (!w->compacting)
        return;
    int st = atomic_load(&w->wr.snap_state);
    if (st == SNAP_IDLE)
        return;
    w->compacting = false;
    free(w->pages);
    w->pages = NULL;
    atomic_store(&w->wr.snap_state, SNAP_IDLE);
    if (st == SNAP_DONE) {
        w->compactions++;
        return;
    }
    w->snapshot_wanted = true;
    w->compact_not_before = now + COMPACT_RETRY_NS;
}

/* Hand the filling batch to the writer if it may go now. */
static void submit_if_ready(wal_t *w) {
    if (!w->inflight && !w->lingering && w->batch_count)
        submit_batch(w);
}

void wal_end_turn(wal_t *w, int64_t now) {
    if (!w->started)
        return;
    if (w->lingering) {
        uint32_t gained = w->batch_count - w->linger_base;
        if (gained >= w->inflight_count || w->linger_holds > gained) {
            w->lingering = false;
            uv_timer_stop(&w->linger_timer);
        }
    }
    submit_if_ready(w);
    compaction_step(w, now);
    if (atomic_load(&w->wr.space_low) && now >= w->grow_not_before) {
        w->grow_not_before = now + GROW_RETRY_NS;
        wal_writer_submit(&w->wr, wal_op_new(WOP_GROW));
    }
}

static void on_linger_timer(uv_timer_t *h) {
    wal_t *w = h->data;
    w->lingering = false;
    submit_if_ready(w);
}

static void on_writer_async(uv_async_t *h) {
    wal_t *w = h->data;
    int64_t now = clock_now_ns();
    uint64_t done = atomic_load(&w->wr.done_seq);
    bool advanced = done > w->durable_seq;
    w->durable_seq = done;
    if (w->inflight && done + 1 >= w->next_seq) {
        w->inflight = false;
        if (w->cfg.sync == WAL_SYNC_ALWAYS && w->inflight_count >= WAL_LINGER_MIN) {
            w->lingering = true;
            w->linger_base = w->batch_count;
            w->linger_holds = 0;
            uv_timer_start(&w->linger_timer, on_linger_timer, WAL_LINGER_MS, 0);
        }
    }
    submit_if_ready(w);
    compaction_collect(w, now);
    compaction_step(w, now);
    if (advanced && w->durable_cb)
        w->durable_cb(w->durable_ctx);
}

/* ---- open, start, close ---- */

static int lock_dir(wal_t *w, char *err, size_t errlen) {
    char path[512];
    snprintf(path, sizeof path, "%s/lock", w->cfg.dir);
    w->lockfd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0640);
    if (w->lockfd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(w->lockfd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen,
                 "%s is in use by another deferd (its lock is held); give each server its own "
                 "data directory",
                 w->cfg.dir);
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(w->lockfd, 0) != 0 || pwrite(w->lockfd, pid, (size_t)n, 0) != n) {
        /* the pid in the lock file is informational only */
    }
    return 0;
}

int wal_open(wal_t **out, const wal_config_t *cfg, engine_t *e, int64_t now, char *err,
             size_t errlen) {
    wal_t *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->cfg = *cfg;
    w->engine = e;
    w->lockfd = -1;
    w->wr.dirfd = -1;
    buf_init(&w->batch);
    if (mkdir(cfg->dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create data directory %s: %s", cfg->dir, strerror(errno));
        goto fail;
    }
    if (lock_dir(w, err, errlen) != 0)
        goto fail;
    w->wr.dir = cfg->dir;
    w->wr.sync = cfg->sync;
    w->wr.sync_ms = cfg->sync_ms;
    w->wr.dirfd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->wr.dirfd < 0) {
        snprintf(err, errlen, "cannot open data directory %s: %s", cfg->dir, strerror(errno));
        goto fail;
    }
    wal_recovery_t rc;
    if (wal_recover(cfg, e, &rc, err, errlen) != 0)
        goto fail;
    w->next_seq = rc.last_batch + 1;
    w->durable_seq = rc.last_batch;
    atomic_store(&w->wr.done_seq, rc.last_batch);
    w->wr.written_seq = w->wr.synced_seq = rc.last_batch;
    atomic_store(&w->wr.oldest_seg, rc.oldest_segment);
    if (wal_writer_open_segment(&w->wr, rc.last_segment + 1, err, errlen) != 0)
        goto fail;
    w->snapshot_wanted = rc.repaired;
    log_msg("recovered %llu tasks from %s in %.0f ms", (unsigned long long)rc.jobs, cfg->dir,
            (double)(clock_now_ns() - now) / 1e6);
    *out = w;
    return 0;
fail:
    if (w->wr.dirfd >= 0)
        close(w->wr.dirfd);
    if (w->lockfd >= 0)
        close(w->lockfd);
    free(w);
    return -1;
}

int wal_check(const wal_config_t *cfg, engine_t *e, char *err, size_t errlen) {
    wal_config_t ro = *cfg;
    ro.readonly = true;
    ro.repair = false;
    wal_recovery_t rc;
    if (wal_recover(&ro, e, &rc, err, errlen) != 0)
        return -1;
    /* A server start takes an empty directory as a fresh log; a check is
     * asked about a log, so no log at all is worth saying. */
    if (!rc.last_segment) {
        snprintf(err, errlen,
                 "no log files here (seg-*.log and snap-*.log are missing): nothing to check; "
                 "a copy of a data directory must include its *.log files");
        return -1;
    }
    return 0;
}

int wal_start(wal_t *w, uv_loop_t *loop, void (*durable)(void *ctx), void *ctx) {
    w->durable_cb = durable;
    w->durable_ctx = ctx;
    if (wal_writer_start(&w->wr, loop, on_writer_async, w) != 0)
        return -1;
    /* The writer must not keep the loop alive on its own. */
    uv_unref((uv_handle_t *)&w->wr.async);
    uv_timer_init(loop, &w->linger_timer);
    w->linger_timer.data = w;
    w->handles_open = 2;
    w->started = true;
    return 0;
}

void wal_get_stats(const wal_t *w, wal_stats_t *s) {
    memset(s, 0, sizeof *s);
    s->oldest_segment = atomic_load(&w->wr.oldest_seg);
    s->current_segment = atomic_load(&w->wr.cur_seg);
    s->records_written = w->records_written;
    s->records_migrated = w->records_migrated;
    s->segment_size = w->cfg.segment_size;
    s->batches = w->batches;
    s->syncs = atomic_load(&w->wr.syncs);
    s->compactions = w->compactions;
    s->disk_bytes = atomic_load(&w->wr.disk_bytes);
    s->space_low = atomic_load(&w->wr.space_low);
    for (int i = 0; i < WAL_SYNC_BUCKETS; i++)
        s->sync_us_buckets[i] = atomic_load(&w->wr.sync_us_buckets[i]);
    s->sync_us_sum = atomic_load(&w->wr.sync_us_sum);
}

static void free_wal_cb(uv_handle_t *h) {
    wal_t *w = h->data;
    if (--w->handles_open == 0)
        free(w);
}

void wal_close(wal_t *w) {
    if (!w)
        return;
    if (w->started) {
        if (w->batch_count)
            submit_batch(w);
        wal_writer_stop(&w->wr);
    }
    free(w->pages);
    buf_free(&w->batch);
    close(w->wr.dirfd);
    close(w->lockfd);
    if (w->started) {
        uv_close((uv_handle_t *)&w->linger_timer, free_wal_cb);
        uv_close((uv_handle_t *)&w->wr.async, free_wal_cb);
    } else {
        free(w);
    }
}
