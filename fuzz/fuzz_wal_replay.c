/* fuzz_wal_replay.c - libFuzzer harness for wal_replay_buffer(), the replay
 * of one log file into the engine at start-up, and for the engine state it
 * leaves behind.
 *
 * Input: one mode byte, then a log file's bytes.
 *
 *   bit 0  prepend a SEGMENT header (sequence 1, the snapshot flag as bit 3
 *          says), so that mutations need not keep a valid header
 *   bit 1  last: the file is the newest segment (its end may be torn)
 *   bit 2  repair (--repair-log)
 *   bit 3  snapshot: the file is a snapshot
 *   bit 4  fix up every record's checksum first (walking the records by
 *          their length fields), so mutations reach what lies behind it
 *   bit 5  also fix up BATCH records' bytes/count to frame the records
 *          that follow, up to the next BATCH or SEGMENT
 *   bit 6  the expected sequence number is the one in the file's header
 *          (bytes 28-35) rather than 1: the committed seeds are real files
 *          of other numbers
 *
 * The file is replayed into a fresh engine; then it checks:
 *   - the result: BAD_HEADER exactly when the first record is not this
 *     file's SEGMENT header (but an all-zero newest segment is OK), and
 *     then nothing was applied; TORN only when last && !snapshot; DAMAGED
 *     never with repair; never NO_MEMORY; torn_at/damaged_at inside the
 *     file, past the header; repaired only with repair (then OK, or TORN
 *     after the damage), and dropped <= the file; a snapshot reports no
 *     batch numbers; records <= what fits;
 *   - the engine (engine_check.c, as replayed: no sessions): counters
 *     equal what the heaps hold; every heap is ordered and its jobs know
 *     their position and state; every job in the id map is in exactly one
 *     heap of its own tube, in the state its slot says, with ttr >= 1 and
 *     an id below next_id; tube reference counts equal the jobs in the
 *     tube (+1 for default); the tube table, list and name map agree;
 *     timers are armed exactly when a delayed job or a pause end is due;
 *   - idempotence: records are "set"s, so replaying the same bytes twice
 *     into one engine gives the same result (code and info) both times,
 *     and the same jobs - every field, tube, body, flag and extension -
 *     the same tube pauses and the same history as replaying once;
 *   - extensions and history: a job has an extension exactly when it is
 *     flagged so; each key is in its tube's key map, held by its job, and
 *     the maps hold nothing else; each tube's count of failed tasks equals
 *     its buried jobs whose extension says failed; the history list and
 *     map agree, within the retention count (HISTORY_MAX);
 *   - the recovered state is usable, as the server uses it right after
 *     start-up: engine_restore_done, beanstalk stats of every job and
 *     tube, the HTTP API's JSON for every task, queue and finished task
 *     (which must parse as JSON), history expiry, engine_tick, a new put
 *     (whose id must be new and non-zero), a reserve-job and bury of it, a
 *     cancel of it (which must land in the history), kick, then the checks
 *     above again.
 * Everything is freed at the end, so LeakSanitizer sees real leaks.
 *
 * With FUZZ_TRACE=1 in the environment it prints the mode, the result and
 * what replay reports, and the jobs and tubes it recovered (to read a
 * reproducer).
 *
 * Built by fuzz/run.sh with libFuzzer, or with fuzz/replay_main.c to
 * replay a corpus without libFuzzer. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <zlib.h>

#include "core/engine.h"
#include "engine_check.h"
#include "harness_util.h"
#include "proto/bs_stats.h"
#include "proto/http.h"
#include "store/wal_internal.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The wall clock of the checks after replay (Jan 2027); the seeds were
 * written by a server running in 2026. */
#define NOW (INT64_C(1800000000) * NS_PER_SEC)
/* History retention during replay (the server's default age, a small
 * count so that dropping the oldest happens). */
#define HISTORY_MAX 8
#define HISTORY_AGE (INT64_C(86400) * NS_PER_SEC)

static const char *g_what = "";

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_wal_replay: invariant failed at %s:%d (%s): %s\n", __FILE__,     \
                    __LINE__, g_what, #cond);                                                      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) {
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}
static void set32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- engine invariants ---- */

/* The shared checks (engine_check.c). No sessions exist while they run;
 * tubes nothing refers to (made by a PAUSE record) may exist until
 * engine_restore_done. */
static void check_engine(const engine_t *e) {
    engine_check_opts_t o = {
        .who = "fuzz_wal_replay",
        .context = g_what,
    };
    engine_check(e, &o);
}

/* ---- comparing two engines ---- */

typedef struct pair {
    const engine_t *a, *b;
    const char *what;
} pair_t;

static bool same_str(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_ext(const job_ext_t *a, const job_ext_t *b) {
    if (!a || !b)
        return a == b;
    return a->key_len == b->key_len && (!a->key || memcmp(a->key, b->key, a->key_len) == 0) &&
           (a->key == NULL) == (b->key == NULL) && a->failed == b->failed &&
           a->max_attempts == b->max_attempts && a->attempt_base == b->attempt_base &&
           same_str(a->last_error, b->last_error);
}

static bool job_same(void *value, void *arg) {
    const pair_t *pr = arg;
    const job_t *x = value;
    const job_t *y = engine_job_find(pr->b, x->id);
    if (!y) {
        fprintf(stderr, "fuzz_wal_replay: job %" PRIu64 " is missing after %s\n", x->id,
                pr->what);
        abort();
    }
    const tube_t *tx = engine_job_tube(pr->a, x), *ty = engine_job_tube(pr->b, y);
    bool same = job_state(x) == job_state(y) && x->deadline == y->deadline &&
                x->created == y->created && x->pri == y->pri && x->delay == y->delay &&
                x->ttr == y->ttr && x->size == y->size && x->reserves == y->reserves &&
                x->timeouts == y->timeouts && x->releases == y->releases &&
                x->buries == y->buries && x->kicks == y->kicks &&
                tx->name_len == ty->name_len && memcmp(tx->name, ty->name, tx->name_len) == 0 &&
                memcmp(x->body, y->body, x->size) == 0 &&
                job_flag(x, JOB_FLAG_JSON) == job_flag(y, JOB_FLAG_JSON) &&
                same_ext(engine_job_ext(pr->a, x), engine_job_ext(pr->b, y));
    if (!same) {
        fprintf(stderr,
                "fuzz_wal_replay: job %" PRIu64 " differs after %s: state %s/%s, tube %s/%s, "
                "pri %u/%u, deadline %" PRId64 "/%" PRId64 "\n",
                x->id, pr->what, job_state_name(job_state(x)), job_state_name(job_state(y)),
                tx->name, ty->name, x->pri, y->pri, x->deadline, y->deadline);
        abort();
    }
    return true;
}

/* Every job of a is in b with the same fields, tube and body; every tube
 * of a is in b, paused alike. */
static void same_jobs(const engine_t *a, const engine_t *b, const char *what) {
    CHECK(a->jobs.count == b->jobs.count);
    CHECK(a->count.job_bytes == b->count.job_bytes);
    CHECK(a->next_id == b->next_id);
    pair_t pr = {a, b, what};
    idmap_each(&a->jobs, job_same, &pr);
    for (uint32_t i = 0; i < a->ntubes; i++) {
        const tube_t *ta = a->tube_list[i];
        const tube_t *tb = engine_tube_find(b, ta->name, ta->name_len);
        if (!tb) {
            fprintf(stderr, "fuzz_wal_replay: tube '%s' is missing after %s\n", ta->name, what);
            abort();
        }
        bool pa = ta->pause_ns > 0, pb = tb->pause_ns > 0;
        if (pa != pb || (pa && (ta->pause_ns != tb->pause_ns || ta->unpause_at != tb->unpause_at))) {
            fprintf(stderr,
                    "fuzz_wal_replay: tube '%s' is %s once but %s after %s (pause %" PRId64
                    " until %" PRId64 " vs %" PRId64 " until %" PRId64 ")\n",
                    ta->name, pa ? "paused" : "not paused", pb ? "paused" : "not paused", what,
                    ta->pause_ns, ta->unpause_at, tb->pause_ns, tb->unpause_at);
            abort();
        }
    }
    CHECK(a->ntubes == b->ntubes);
    CHECK(a->history.count == b->history.count);
    for (const task_history_t *h = a->history_oldest; h; h = h->newer) {
        const task_history_t *g = u64map_get(&b->history, h->id);
        if (!g || g->created != h->created || g->finished != h->finished || g->pri != h->pri ||
            g->ttr != h->ttr || g->attempts != h->attempts ||
            g->max_attempts != h->max_attempts || g->end != h->end ||
            strcmp(g->queue, h->queue) != 0 || !same_str(g->key, h->key) ||
            !same_str(g->error, h->error)) {
            fprintf(stderr, "fuzz_wal_replay: history of task %" PRIu64 " differs after %s\n",
                    h->id, what);
            abort();
        }
    }
}

/* ---- the recovered state in use ---- */

static void notify(void *owner, session_event_t ev, const job_t *job) {
    (void)owner;
    (void)ev;
    (void)job;
}

/* b holds one JSON value. */
static void check_json(const buf_t *b, const char *what) {
    json_error_t err;
    json_t *v = json_loadb(buf_head(b), b->len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &err);
    if (!v) {
        fprintf(stderr, "fuzz_wal_replay: %s renders as invalid JSON (%s): %.*s\n", what,
                err.text, (int)(b->len > 300 ? 300 : b->len), buf_head(b));
        abort();
    }
    json_decref(v);
}

static bool stats_job(void *value, void *arg) {
    const engine_t *e = arg;
    const job_t *j = value;
    buf_t y;
    buf_init(&y);
    CHECK(bs_format_job_stats(e, j, &y, NOW));
    buf_reset(&y);
    /* The task as the HTTP API shows it. */
    CHECK(http_render_job(&y, e, j, true, NOW));
    check_json(&y, "a task");
    buf_free(&y);
    return true;
}

static bool max_id_of(void *value, void *arg) {
    uint64_t *m = arg;
    if (((const job_t *)value)->id > *m)
        *m = ((const job_t *)value)->id;
    return true;
}

static void use_engine(engine_t *e) {
    g_what = "stats after replay";
    idmap_each(&e->jobs, stats_job, e);
    buf_t y;
    buf_init(&y);
    http_server_t srv; /* as the API renders queues (no push dispatch) */
    http_server_init(&srv, e);
    for (uint32_t i = 0; i < e->ntubes; i++) {
        const tube_t *t = e->tube_list[i];
        CHECK(bs_format_tube_stats(t, &y, NOW));
        buf_reset(&y);
        CHECK(http_render_queue(&y, &srv, t, NOW));
        check_json(&y, "a queue");
        buf_reset(&y);
    }
    http_server_free(&srv);
    CHECK(bs_format_tube_list(e, &y));
    for (const task_history_t *h = e->history_oldest; h; h = h->newer) {
        buf_reset(&y);
        CHECK(http_render_history(&y, h));
        check_json(&y, "a finished task");
        (void)engine_history_find(e, h->id, NOW);
    }
    buf_free(&y);
    engine_expire_history(e, NOW);
    check_engine(e);

    g_what = "tick after replay";
    engine_tick(e, NOW);
    check_engine(e);

    /* A put: its id must be new. */
    g_what = "put after replay";
    uint64_t max_id = 0;
    idmap_each(&e->jobs, max_id_of, &max_id);
    tube_t *t = e->default_tube;
    job_t *j = engine_job_new(e, t, 7, 0, 60, 3, NOW);
    CHECK(j != NULL);
    memcpy(j->body, "new", 3);
    if (j->id == 0 || engine_job_find(e, j->id) != NULL) {
        fprintf(stderr,
                "fuzz_wal_replay: a put after replay got id %" PRIu64
                ", which is 0 or already taken (next_id wrapped around)\n",
                j->id);
        abort();
    }
    uint64_t id = j->id;
    engine_result_t r = engine_put(e, j, NOW);
    CHECK(r == ENGINE_OK);
    check_engine(e);

    /* Reserve it and bury it: the newest burial comes last. */
    g_what = "bury after replay";
    session_t *s = engine_session_new(e, notify, NULL);
    CHECK(s != NULL);
    job_t *got = NULL;
    CHECK(engine_reserve_job(e, s, id, NOW, &got) == ENGINE_OK && got && got->id == id);
    CHECK(engine_bury(e, s, id, 9, NOW) == ENGINE_OK);
    CHECK(job_state(got) == JOB_BURIED);
    for (uint32_t k = 0; k < t->buried.len; k++) {
        const job_t *b = t->buried.items[k];
        CHECK(b == got || b->deadline < got->deadline);
    }
    engine_session_free(e, s, NOW);
    check_engine(e);

    /* Cancel it: it ends in the history. */
    g_what = "cancel after replay";
    const task_history_t *h = NULL;
    CHECK(engine_cancel(e, id, NOW, &h) == ENGINE_OK && h && h->id == id &&
          h->end == TASK_CANCELLED);
    check_engine(e);

    g_what = "kick after replay";
    for (uint32_t i = 0; i < e->ntubes; i++)
        engine_kick(e, e->tube_list[i], 2, NOW);
    check_engine(e);
}

/* ---- fix-ups (mode bits) ---- */

static uint32_t rec_crc(const uint8_t *p, uint32_t len) {
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, p, 4);
    c = crc32(c, p + 8, len - 8);
    return (uint32_t)c;
}

static void fix_records(uint8_t *p, size_t n, bool frames) {
    size_t off = 0;
    while (n - off >= WAL_HEADER_SIZE) {
        uint32_t len = get32(p + off);
        if (len < WAL_HEADER_SIZE || len > n - off)
            break;
        if (frames && p[off + 8] == WAL_BATCH && len == WAL_BATCH_SIZE) {
            size_t q = off + len;
            uint32_t count = 0;
            while (n - q >= WAL_HEADER_SIZE) {
                uint32_t l = get32(p + q);
                if (l < WAL_HEADER_SIZE || l > n - q || p[q + 8] == WAL_BATCH ||
                    p[q + 8] == WAL_SEGMENT)
                    break;
                q += l;
                count++;
            }
            set32(p + off + 28, (uint32_t)(q - off - len));
            set32(p + off + 32, count);
        }
        set32(p + off + 4, rec_crc(p + off, len));
        off += len;
    }
}

/* ---- one input ---- */

static const char *result_name(wal_replay_result_t r) {
    switch (r) {
    case WAL_REPLAY_OK:
        return "OK";
    case WAL_REPLAY_TORN:
        return "TORN";
    case WAL_REPLAY_DAMAGED:
        return "DAMAGED";
    case WAL_REPLAY_BAD_HEADER:
        return "BAD_HEADER";
    case WAL_REPLAY_NO_MEMORY:
        return "NO_MEMORY";
    }
    return "?";
}

static bool trace_job(void *value, void *arg) {
    const engine_t *e = arg;
    const job_t *j = value;
    fprintf(stderr,
            "  job %" PRIu64 " tube %s %s pri %u delay %u ttr %u deadline %" PRId64
            " created %" PRId64 " size %u\n",
            j->id, engine_job_tube(e, j)->name, job_state_name(job_state(j)), j->pri, j->delay,
            j->ttr, j->deadline, j->created, j->size);
    return true;
}

static void trace(const engine_t *e, uint8_t mode, uint64_t seq, size_t n,
                  wal_replay_result_t r, const wal_replay_info_t *i) {
    fprintf(stderr,
            "mode 0x%02x (%s%s%s%s%s%s), %zu bytes, seq %" PRIu64 ": %s; records %" PRIu64
            ", last_batch %" PRIu64 ", torn_at %zu, damaged_at %zu, dropped %zu%s%s\n",
            mode, mode & 1 ? "header " : "", mode & 2 ? "last " : "", mode & 4 ? "repair " : "",
            mode & 8 ? "snapshot " : "", mode & 16 ? "fix-crc " : "",
            mode & 32 ? "fix-frames " : "", n, seq, result_name(r), i->records, i->last_batch,
            i->torn_at, i->damaged_at, i->dropped, i->repaired ? ", repaired" : "",
            i->snapshot_complete ? ", snapshot complete" : "");
    fprintf(stderr, "  next_id %" PRIu64 ", %" PRIu64 " jobs, %u tubes\n", e->next_id,
            e->jobs.count, e->ntubes);
    idmap_each(&e->jobs, trace_job, (void *)e);
    for (uint32_t k = 0; k < e->ntubes; k++) {
        const tube_t *t = e->tube_list[k];
        fprintf(stderr, "  tube %s refs %u pause %" PRId64 " until %" PRId64 "\n", t->name,
                t->refs, t->pause_ns, t->unpause_at);
    }
}

static bool all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static bool same_info(const wal_replay_info_t *a, const wal_replay_info_t *b) {
    return a->last_batch == b->last_batch && a->records == b->records &&
           a->torn_at == b->torn_at && a->damaged_at == b->damaged_at &&
           a->dropped == b->dropped && a->repaired == b->repaired &&
           a->snapshot_complete == b->snapshot_complete && a->covers == b->covers;
}

static void check_result(const uint8_t *p, size_t size, uint64_t seq, bool snapshot, bool last,
                         bool repair, wal_replay_result_t r, const wal_replay_info_t *info,
                         const engine_t *e) {
    CHECK(r == WAL_REPLAY_OK || r == WAL_REPLAY_TORN || r == WAL_REPLAY_DAMAGED ||
          r == WAL_REPLAY_BAD_HEADER);
    wal_rec_t h;
    bool header_ok = wal_decode(p, size, &h) == WAL_OK && h.type == WAL_SEGMENT &&
                     h.u.segment.seq == seq &&
                     ((h.u.segment.flags & WAL_SEGMENT_SNAPSHOT) != 0) == snapshot;
    if (!header_ok) {
        CHECK(r == WAL_REPLAY_BAD_HEADER || (r == WAL_REPLAY_OK && last && all_zero(p, size)));
        CHECK(info->records == 0 && e->jobs.count == 0);
        return;
    }
    CHECK(r != WAL_REPLAY_BAD_HEADER);
    if (r == WAL_REPLAY_TORN) {
        CHECK(last && !snapshot);
        CHECK(info->torn_at >= WAL_SEGMENT_SIZE && info->torn_at < size);
    } else {
        CHECK(info->torn_at == 0);
    }
    if (r == WAL_REPLAY_DAMAGED) {
        CHECK(!repair);
        CHECK(info->damaged_at >= WAL_SEGMENT_SIZE && info->damaged_at < size);
    }
    if (info->repaired) {
        /* Damage skipped, then maybe a torn tail after it. */
        CHECK(repair && (r == WAL_REPLAY_OK || r == WAL_REPLAY_TORN));
        CHECK(info->damaged_at >= WAL_SEGMENT_SIZE && info->damaged_at < size);
        CHECK(info->dropped > 0 && info->dropped <= size - info->damaged_at);
        if (r == WAL_REPLAY_TORN)
            CHECK(info->damaged_at < info->torn_at &&
                  info->dropped <= info->torn_at - info->damaged_at);
    } else {
        CHECK(info->dropped == 0);
        if (r != WAL_REPLAY_DAMAGED)
            CHECK(info->damaged_at == 0);
    }
    if (snapshot)
        CHECK(info->last_batch == 0);
    CHECK(info->records <= (size - WAL_SEGMENT_SIZE) / WAL_HEADER_SIZE);
    if (info->snapshot_complete)
        CHECK(info->records >= 1);
}

static engine_t *new_engine(void) {
    engine_t *e = engine_new();
    CHECK(e != NULL);
    engine_set_history(e, HISTORY_MAX, HISTORY_AGE);
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    bool header = mode & 1, last = mode & 2, repair = mode & 4, snapshot = mode & 8;
    size_t hlen = header ? WAL_SEGMENT_SIZE : 0;
    size_t n = hlen + size - 1;
    /* An exact-size copy: a read past the end is caught. */
    uint8_t *p = malloc(n ? n : 1);
    CHECK(p != NULL);
    if (header) {
        buf_t b;
        buf_init(&b);
        CHECK(wal_put_segment(&b, 1, snapshot ? WAL_SEGMENT_SNAPSHOT : 0));
        memcpy(p, buf_head(&b), hlen);
        buf_free(&b);
    }
    memcpy(p + hlen, data + 1, size - 1);
    if (mode & 0x30)
        fix_records(p, n, (mode & 0x20) != 0);
    uint64_t seq = (mode & 0x40) && n >= WAL_SEGMENT_SIZE ? get64(p + 28) : 1;

    /* Once. */
    g_what = "replay";
    engine_t *e1 = new_engine();
    wal_replay_info_t i1;
    wal_replay_result_t r1 = wal_replay_buffer(p, n, seq, snapshot, last, repair, e1, &i1);
    if (getenv("FUZZ_TRACE"))
        trace(e1, mode, seq, n, r1, &i1);
    check_result(p, n, seq, snapshot, last, repair, r1, &i1, e1);
    check_engine(e1);

    /* Twice, into one engine. */
    g_what = "replay twice";
    engine_t *e2 = new_engine();
    wal_replay_info_t i2a, i2b;
    wal_replay_result_t r2a = wal_replay_buffer(p, n, seq, snapshot, last, repair, e2, &i2a);
    wal_replay_result_t r2b = wal_replay_buffer(p, n, seq, snapshot, last, repair, e2, &i2b);
    CHECK(r2a == r1 && r2b == r1);
    CHECK(same_info(&i1, &i2a) && same_info(&i1, &i2b));
    check_engine(e2);
    same_jobs(e1, e2, "replaying the file twice");
    same_jobs(e2, e1, "replaying the file once");

    /* As recovery ends, and as the server then uses it. */
    g_what = "restore done";
    engine_restore_done(e1);
    check_engine(e1);
    engine_restore_done(e2);
    same_jobs(e1, e2, "replaying the file twice");
    same_jobs(e2, e1, "replaying the file once");
    use_engine(e1);

    engine_free(e1);
    engine_free(e2);
    free(p);
    g_what = "";
    return 0;
}
