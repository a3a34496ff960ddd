/* wal_recover.c - rebuild the engine from the data directory at start-up.
 *
 * Replays the newest snapshot, then every segment after it, batch by batch:
 * a batch is applied only when all of it is intact. Damage at the end of
 * the last segment is a write the crash interrupted - never acknowledged -
 * and is cut off with a notice. Damage anywhere else means acknowledged
 * data is unreadable: start-up stops and says which file and offset, and
 * which flag starts anyway by dropping the damaged batches. */
#include "store/wal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

void wal_segment_path(char *out, size_t outlen, const char *dir, const char *prefix,
                      uint64_t seq, const char *ext) {
    snprintf(out, outlen, "%s/%s-%010" PRIu64 "%s", dir, prefix, seq, ext);
}

typedef struct replay {
    const wal_config_t *cfg;
    engine_t *e;
    wal_recovery_t *rc;
    char *err;
    size_t errlen;
    const char *path;
    bool snapshot_complete;
    uint64_t covers;
} replay_t;

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

/* A frame is a BATCH record and the records it announces. Returns its total
 * length when all of it is intact, else 0. */
static size_t frame_check(const uint8_t *p, size_t n, wal_rec_t *batch) {
    if (wal_decode(p, n, batch) != WAL_OK || batch->type != WAL_BATCH)
        return 0;
    size_t end = (size_t)batch->len + batch->u.batch.bytes;
    if (end > n)
        return 0;
    size_t q = batch->len;
    for (uint32_t i = 0; i < batch->u.batch.count; i++) {
        wal_rec_t r;
        if (wal_decode(p + q, end - q, &r) != WAL_OK || r.type < WAL_PUT)
            return 0;
        q += r.len;
    }
    return q == end ? end : 0;
}

static void to_restore(const wal_job_update_t *u, engine_restore_t *r) {
    r->id = u->id;
    r->state = (job_state_t)u->state; /* WAL_JOB_* share job_state_t's values */
    r->deadline = u->deadline;
    r->pri = u->pri;
    r->delay = u->delay;
    r->reserves = u->counters.reserves;
    r->timeouts = u->counters.timeouts;
    r->releases = u->counters.releases;
    r->buries = u->counters.buries;
    r->kicks = u->counters.kicks;
}

/* A copy of a length-prefixed string as a C string (NULL for none). */
static char *text_dup(const char *s, uint16_t len, bool *ok) {
    if (!s)
        return NULL;
    char *c = malloc((size_t)len + 1);
    if (!c) {
        *ok = false;
        return NULL;
    }
    memcpy(c, s, len);
    c[len] = '\0';
    return c;
}

static bool apply_ext(engine_t *e, const wal_rec_t *rec) {
    bool ok = true;
    job_ext_t x = {
        .key = text_dup(rec->u.ext.key, rec->u.ext.key_len, &ok),
        .key_len = rec->u.ext.key_len,
        .failed = (rec->u.ext.flags & WAL_EXT_FAILED) != 0,
        .failed_at = rec->u.ext.failed_at,
        .max_attempts = rec->u.ext.max_attempts,
        .attempt_base = rec->u.ext.attempt_base,
        .last_error = text_dup(rec->u.ext.error, rec->u.ext.error_len, &ok),
    };
    ok = ok && engine_restore_ext(e, rec->u.ext.id, &x, (rec->u.ext.flags & WAL_EXT_JSON) != 0) ==
                   ENGINE_OK;
    free(x.key);
    free(x.last_error);
    return ok;
}

static bool apply_history(engine_t *e, const wal_rec_t *rec) {
    bool ok = true;
    task_history_t *h = calloc(1, sizeof *h + rec->u.history.queue_len + 1);
    if (!h)
        return false;
    h->id = rec->u.history.id;
    h->created = rec->u.history.created;
    h->finished = rec->u.history.finished;
    h->pri = rec->u.history.pri;
    h->ttr = rec->u.history.ttr;
    h->attempts = rec->u.history.attempts;
    h->max_attempts = rec->u.history.max_attempts;
    h->end = (task_end_t)rec->u.history.end;
    h->queue_len = rec->u.history.queue_len;
    memcpy(h->queue, rec->u.history.queue, h->queue_len);
    h->key = text_dup(rec->u.history.key, rec->u.history.key_len, &ok);
    h->error = text_dup(rec->u.history.error, rec->u.history.error_len, &ok);
    ok = ok && engine_restore_history(e, h) == ENGINE_OK;
    free(h->key);
    free(h->error);
    free(h);
    return ok;
}

static bool apply(engine_t *e, const wal_rec_t *rec, wal_replay_info_t *info) {
    engine_restore_t r = {0};
    switch (rec->type) {
    case WAL_PUT:
        to_restore(&rec->u.put.u, &r);
        r.tube = rec->u.put.tube;
        r.tube_len = rec->u.put.tube_len;
        r.created = rec->u.put.created;
        r.ttr = rec->u.put.ttr;
        return engine_restore_job(e, &r, rec->u.put.body, rec->u.put.body_len) == ENGINE_OK;
    case WAL_UPDATE:
        to_restore(&rec->u.update, &r);
        engine_restore_update(e, &r);
        return true;
    case WAL_DELETE:
        engine_restore_delete(e, rec->u.id);
        return true;
    case WAL_PAUSE:
        return engine_restore_pause(e, rec->u.pause.tube, rec->u.pause.tube_len,
                                    rec->u.pause.pause_ns, rec->u.pause.unpause_at) == ENGINE_OK;
    case WAL_NEXT_ID:
        engine_restore_next_id(e, rec->u.next_id);
        return true;
    case WAL_SETTINGS:
        return engine_restore_settings(e, rec->u.settings.tube, rec->u.settings.tube_len,
                                       rec->u.settings.text, rec->u.settings.text_len) == ENGINE_OK;
    case WAL_EXT:
        return apply_ext(e, rec);
    case WAL_HISTORY:
        return apply_history(e, rec);
    case WAL_SNAPSHOT_END:
        info->snapshot_complete = true;
        info->covers = rec->u.snapshot_end.covers;
        return true;
    default:
        return true;
    }
}

static bool apply_frame(engine_t *e, const uint8_t *p, const wal_rec_t *batch,
                        wal_replay_info_t *info) {
    size_t q = batch->len;
    size_t end = (size_t)batch->len + batch->u.batch.bytes;
    for (uint32_t i = 0; i < batch->u.batch.count; i++) {
        wal_rec_t r;
        wal_decode(p + q, end - q, &r); /* frame_check verified it */
        if (!apply(e, &r, info))
            return false;
        info->records++;
        q += r.len;
    }
    return true;
}

/* The intact batch with the highest "synced" value after pos, found by
 * one scan of the rest of the file and remembered: damage is usually one
 * region, but a file with many damaged spots must not cost a scan each. */
typedef struct ack_scan {
    bool done;
    size_t from;         /* the scan covered (from, size) */
    size_t best_at;      /* where the batch with the highest synced is */
    uint64_t best_synced;
} ack_scan_t;

/* Is there, after pos, an intact batch written when a batch later than
 * last_good was already durable? Then the damage at pos hit data that had
 * been acknowledged. Otherwise it is the unfinished tail of the log. */
static bool acknowledged_after(const uint8_t *p, size_t size, size_t pos, uint64_t last_good,
                               ack_scan_t *scan) {
    if (!scan->done || pos < scan->from || pos >= scan->best_at) {
        scan->done = true;
        scan->from = pos;
        scan->best_at = size;
        scan->best_synced = 0;
        for (size_t off = pos + 1; off + WAL_BATCH_SIZE <= size; off++) {
            if (rd32(p + off) != WAL_BATCH_SIZE || p[off + 8] != WAL_BATCH)
                continue;
            wal_rec_t b;
            if (frame_check(p + off, size - off, &b) &&
                (scan->best_at == size || b.u.batch.synced > scan->best_synced)) {
                scan->best_at = off;
                scan->best_synced = b.u.batch.synced;
            }
        }
    }
    return scan->best_at < size && scan->best_synced > last_good;
}

static bool all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* The next intact frame after pos, or size when there is none. */
static size_t resync(const uint8_t *p, size_t size, size_t pos) {
    for (size_t off = pos + 1; off + WAL_BATCH_SIZE <= size; off++) {
        wal_rec_t b;
        if (rd32(p + off) == WAL_BATCH_SIZE && p[off + 8] == WAL_BATCH &&
            frame_check(p + off, size - off, &b))
            return off;
    }
    return size;
}

static int cut_tail(replay_t *rp, size_t pos, size_t size) {
    if (rp->cfg->readonly) {
        log_msg("%s: an unfinished write at offset %zu (%zu bytes, never acknowledged) would "
                "be dropped",
                rp->path, pos, size - pos);
        return 0;
    }
    int fd = open(rp->path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)pos) != 0 || fdatasync(fd) != 0) {
        snprintf(rp->err, rp->errlen, "cannot cut the unfinished end of %s: %s", rp->path,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    log_msg("%s: dropped an unfinished write at offset %zu (%zu bytes, never acknowledged)",
            rp->path, pos, size - pos);
    return 0;
}

wal_replay_result_t wal_replay_buffer(const uint8_t *p, size_t size, uint64_t seq, bool snapshot,
                                      bool last, bool repair, engine_t *e, wal_replay_info_t *info) {
    memset(info, 0, sizeof *info);
    wal_rec_t rec;
    if (wal_decode(p, size, &rec) != WAL_OK || rec.type != WAL_SEGMENT ||
        rec.u.segment.seq != seq ||
        ((rec.u.segment.flags & WAL_SEGMENT_SNAPSHOT) != 0) != snapshot)
        return last && all_zero(p, size) ? WAL_REPLAY_OK : WAL_REPLAY_BAD_HEADER;
    size_t pos = rec.len;
    uint64_t last_good = 0;
    ack_scan_t scan = {0};
    while (pos < size) {
        wal_rec_t batch;
        size_t flen = frame_check(p + pos, size - pos, &batch);
        if (flen) {
            if (!apply_frame(e, p + pos, &batch, info))
                return WAL_REPLAY_NO_MEMORY;
            if (!snapshot && batch.u.batch.seq > info->last_batch)
                info->last_batch = batch.u.batch.seq;
            last_good = batch.u.batch.seq;
            pos += flen;
            continue;
        }
        /* Zeros to the end: the preallocated, unwritten part. */
        if (all_zero(p + pos, size - pos))
            break;
        if (last && !snapshot && !acknowledged_after(p, size, pos, last_good, &scan)) {
            info->torn_at = pos;
            return WAL_REPLAY_TORN;
        }
        if (!repair) {
            info->damaged_at = pos;
            return WAL_REPLAY_DAMAGED;
        }
        size_t next = resync(p, size, pos);
        info->dropped += next - pos;
        if (!info->repaired)
            info->damaged_at = pos;
        info->repaired = true;
        pos = next;
    }
    return WAL_REPLAY_OK;
}

/* Replay one file. Segment seq's header must say seq (and "snapshot" for a
 * snapshot); last says it is the newest segment, whose end may be torn. */
static int replay_file(replay_t *rp, const char *path, uint64_t seq, bool snapshot, bool last) {
    rp->path = path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(rp->err, rp->errlen, "cannot read %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        close(fd);
        return 0; /* created, never written: nothing in it was acknowledged */
    }
    const uint8_t *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(rp->err, rp->errlen, "cannot map %s: %s", path, strerror(errno));
        return -1;
    }
    wal_replay_info_t info;
    wal_replay_result_t r =
        wal_replay_buffer(p, size, seq, snapshot, last, rp->cfg->repair, rp->e, &info);
    munmap((void *)p, size);
    if (info.last_batch > rp->rc->last_batch)
        rp->rc->last_batch = info.last_batch;
    if (info.snapshot_complete) {
        rp->snapshot_complete = true;
        rp->covers = info.covers;
    }
    if (info.repaired && (r == WAL_REPLAY_OK || r == WAL_REPLAY_TORN)) {
        log_msg("%s: --repair-log: dropped %zu damaged bytes from offset %zu", path, info.dropped,
                info.damaged_at);
        rp->rc->repaired = true;
    }
    switch (r) {
    case WAL_REPLAY_OK:
        return 0;
    case WAL_REPLAY_TORN:
        return cut_tail(rp, info.torn_at, size);
    case WAL_REPLAY_BAD_HEADER:
        snprintf(rp->err, rp->errlen,
                 "%s is not a deferd log file of this sequence (bad header); move it out of "
                 "the data directory",
                 path);
        return -1;
    case WAL_REPLAY_DAMAGED:
        snprintf(rp->err, rp->errlen,
                 "%s is damaged at offset %zu, before the end of the log: changes that were "
                 "acknowledged cannot be read. deferd stops so that nothing is lost silently. "
                 "Copy the data directory somewhere safe, then start with --repair-log to drop "
                 "the damaged part and keep everything else",
                 path, info.damaged_at);
        return -1;
    case WAL_REPLAY_NO_MEMORY:
        snprintf(rp->err, rp->errlen, "out of memory replaying %s", path);
        return -1;
    }
    return -1;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct seqlist {
    uint64_t *v;
    size_t n, cap;
} seqlist_t;

static bool seqlist_add(seqlist_t *l, uint64_t seq) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        uint64_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = seq;
    return true;
}

/* Find segments and snapshots; remove unfinished snapshots (unless
 * readonly). */
static int scan_dir(const char *dir, bool readonly, seqlist_t *segs, seqlist_t *snaps, char *err,
                    size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    bool ok = true;
    while (ok && (de = readdir(d))) {
        unsigned long long seq;
        int n = 0;
        if (sscanf(de->d_name, "seg-%llu.log%n", &seq, &n) == 1 && de->d_name[n] == '\0') {
            ok = seqlist_add(segs, seq);
        } else if (sscanf(de->d_name, "snap-%llu.log%n", &seq, &n) == 1 && de->d_name[n] == '\0') {
            ok = seqlist_add(snaps, seq);
        } else if (!readonly && sscanf(de->d_name, "snap-%llu.tmp%n", &seq, &n) == 1 &&
                   de->d_name[n] == '\0') {
            char path[512];
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            unlink(path);
            log_msg("%s: removed an unfinished snapshot", path);
        }
    }
    closedir(d);
    if (!ok) {
        snprintf(err, errlen, "out of memory listing %s", dir);
        return -1;
    }
    if (segs->n)
        qsort(segs->v, segs->n, sizeof *segs->v, cmp_u64);
    if (snaps->n)
        qsort(snaps->v, snaps->n, sizeof *snaps->v, cmp_u64);
    return 0;
}

int wal_recover(const wal_config_t *cfg, engine_t *e, wal_recovery_t *rc, char *err,
                size_t errlen) {
    memset(rc, 0, sizeof *rc);
    seqlist_t segs = {0}, snaps = {0};
    replay_t rp = {.cfg = cfg, .e = e, .rc = rc, .err = err, .errlen = errlen};
    char path[512];
    int ret = -1;
    if (scan_dir(cfg->dir, cfg->readonly, &segs, &snaps, err, errlen) != 0)
        goto out;

    uint64_t covered = 0;
    if (snaps.n) {
        covered = snaps.v[snaps.n - 1];
        wal_segment_path(path, sizeof path, cfg->dir, "snap", covered, ".log");
        if (replay_file(&rp, path, covered, true, false) != 0)
            goto out;
        if (!rp.snapshot_complete || rp.covers != covered) {
            snprintf(err, errlen,
                     "%s is incomplete (no end record): the snapshot cannot be trusted; "
                     "restore the data directory from a backup",
                     path);
            goto out;
        }
        rc->oldest_segment = covered;
        rc->last_segment = covered;
    }
    /* Segments a snapshot covers may remain if a crash interrupted their
     * deletion; older snapshots likewise. */
    for (size_t i = 0; !cfg->readonly && i + 1 < snaps.n; i++) {
        wal_segment_path(path, sizeof path, cfg->dir, "snap", snaps.v[i], ".log");
        unlink(path);
    }
    /* The log begins at seg-1; segments are only ever deleted once a
     * snapshot covers them. So without a snapshot the first segment must be
     * seg-1: a later one means the snapshot is gone (a copy taken while a
     * compaction replaced it, say), and starting from the rest would
     * silently lose every task the snapshot held. */
    uint64_t expect = covered + 1;
    for (size_t i = 0; i < segs.n; i++) {
        uint64_t seq = segs.v[i];
        wal_segment_path(path, sizeof path, cfg->dir, "seg", seq, ".log");
        if (seq <= covered) {
            if (!cfg->readonly)
                unlink(path);
            continue;
        }
        if (seq != expect && expect == 1) {
            snprintf(err, errlen,
                     "%s is not the first log file and no snapshot (snap-*.log) covers the ones "
                     "before it: the snapshot is missing; restore the data directory from a "
                     "backup (or copy it again)",
                     path);
            goto out;
        }
        if (seq != expect) {
            snprintf(err, errlen,
                     "log file %s/seg-%010" PRIu64 ".log is missing (found %s): the log has a "
                     "gap; restore the data directory from a backup",
                     cfg->dir, expect, path);
            goto out;
        }
        if (!rc->oldest_segment)
            rc->oldest_segment = seq;
        if (replay_file(&rp, path, seq, false, i + 1 == segs.n) != 0)
            goto out;
        rc->last_segment = seq;
        expect = seq + 1;
    }
    engine_restore_done(e);
    rc->jobs = e->jobs.count;
    ret = 0;
out:
    free(segs.v);
    free(snaps.v);
    return ret;
}
