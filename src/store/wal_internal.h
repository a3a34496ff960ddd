/* wal_internal.h - state shared by the files of the durable log:
 * wal.c (the loop side: batches, group commit, compaction driver),
 * wal_writer.c (the writer thread: files, write, fdatasync) and
 * wal_recover.c (replay at start-up). */
#ifndef DEFER_WAL_INTERNAL_H
#define DEFER_WAL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "store/wal.h"
#include "store/wal_record.h"
#include "util/buf.h"

/* Segment files grow in steps of this much preallocated (fallocate) space:
 * an fdatasync into preallocated space costs less than one that also
 * extends the file, and running out of disk shows up before a batch is
 * accepted rather than in the middle of writing it. */
#define WAL_PREALLOC (1u << 20)
/* After a batch of at least WAL_LINGER_MIN records became durable, the next
 * one is sealed once it holds as many records again (or WAL_LINGER_MS
 * later): the clients just answered send their next changes at once, and
 * they then share one fdatasync with those that were already waiting,
 * instead of taking turns with them in batches of half the size.
 *
 * It is sealed at once, too, when more replies were held for it than it
 * gained records: a reply that logged nothing (a reserve, say, that hands
 * out a task put in this batch) comes from a client that will send nothing
 * to fill the batch until it has that reply, so waiting longer only delays
 * it. */
#define WAL_LINGER_MIN 8
#define WAL_LINGER_MS 1
/* When the disk is full, this much of the preallocated space is kept for
 * deletes and other changes: new tasks are refused first. */
#define WAL_RESERVE (256u << 10)
/* Compact once the log written since the last snapshot is this large and
 * at least twice the live state. */
#define WAL_COMPACT_MIN (2u << 20)
/* ... or once this many segment files follow the snapshot. */
#define WAL_COMPACT_FILES 16
/* A snapshot is written in chunks of about this much per loop turn, so
 * the loop never stalls on a large live set. */
#define WAL_SNAP_CHUNK (1u << 20)
#define WAL_SYNC_BUCKETS 24

typedef enum wop_kind {
    WOP_APPEND,      /* a batch for the current segment */
    WOP_SNAP_BEGIN,  /* start snapshot file for everything up to now */
    WOP_SNAP_WRITE,  /* a chunk of the snapshot */
    WOP_SNAP_COMMIT, /* the last chunk: make it durable, delete what it covers */
    WOP_GROW,        /* retry preallocation after the disk was full */
    WOP_STOP,
} wop_kind_t;

typedef struct wop {
    wop_kind_t kind;
    buf_t data;
    uint64_t seq;     /* WOP_APPEND: the batch's sequence number;
                         WOP_SNAP_COMMIT: records in the snapshot */
    uint32_t count;   /* WOP_APPEND: records in the batch */
    bool rotate;      /* WOP_APPEND: start a new segment first */
    struct wop *next;
} wop_t;

enum { SNAP_IDLE, SNAP_DONE, SNAP_FAILED };

typedef struct wal_writer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wop_t *head, *tail;
    uv_async_t async;

    /* The writer thread's own. */
    const char *dir;
    int dirfd;
    wal_sync_t sync;
    uint32_t sync_ms;
    int fd;            /* current segment, -1 if none could be created */
    uint64_t seg;      /* its sequence number */
    uint64_t off;      /* bytes written to it */
    uint64_t allocated;
    int snap_fd;
    uint64_t snap_seq; /* segments up to this one are covered */
    uint64_t snap_off;
    bool snap_failed;
    uint64_t written_seq; /* last batch written */
    uint64_t synced_seq;  /* last batch fdatasync'd */
    int64_t last_sync_ns;

    /* Read by the loop. */
    _Atomic uint64_t done_seq; /* last batch whose replies may go out */
    _Atomic bool space_low;
    _Atomic uint64_t room;     /* preallocated, unwritten bytes in the segment */
    _Atomic int snap_state;
    _Atomic uint64_t snap_ops_done; /* snapshot chunks written */
    _Atomic uint64_t cur_seg;
    _Atomic uint64_t oldest_seg;
    _Atomic uint64_t disk_bytes;
    _Atomic uint64_t syncs;
    _Atomic uint64_t sync_us_sum;
    _Atomic uint64_t sync_us_buckets[WAL_SYNC_BUCKETS];
} wal_writer_t;

struct wal {
    wal_config_t cfg;
    engine_t *engine;
    int lockfd;

    /* The batch being filled; its first WAL_BATCH_SIZE bytes are kept for
     * the BATCH record, written when it is sealed. */
    buf_t batch;
    uint32_t batch_count;
    uint64_t next_seq;     /* sequence number the filling batch will get */
    uint64_t durable_seq;  /* the loop's copy of done_seq */
    bool inflight;         /* a batch is with the writer */
    size_t inflight_bytes;
    uint32_t inflight_count; /* its records */
    /* Group commit lingers after a batch became durable (WAL_LINGER_MIN):
     * until the filling batch has gained inflight_count records since, more
     * replies were held for it than it gained, or the timer fires. */
    bool lingering;
    uint32_t linger_base;  /* records in the batch when the linger began */
    uint32_t linger_holds; /* replies held for the batch since then */
    uv_timer_t linger_timer;
    int handles_open; /* the writer's async and the timer: w is freed after both */
    uint64_t seg_bytes;    /* written to the current segment, as the loop counts */

    /* Compaction. */
    bool compacting;
    bool snapshot_wanted; /* after a repair, or when asked */
    uint64_t *pages;      /* idmap page numbers at the start, sorted */
    size_t npages;
    size_t page_i;
    uint64_t snap_limit;  /* jobs with smaller ids belong to the snapshot */
    uint64_t snap_records;
    uint64_t snap_ops_submitted;
    uint64_t tail_bytes;  /* logged since the last snapshot began */
    int64_t compact_not_before;
    int64_t grow_not_before;

    uint64_t records_written, records_migrated, batches, compactions;
    void (*durable_cb)(void *ctx);
    void *durable_ctx;
    bool started;
    wal_writer_t wr;
};

/* wal_recover.c */
typedef struct wal_recovery {
    uint64_t last_segment; /* highest segment or snapshot number found */
    uint64_t oldest_segment;
    uint64_t last_batch;   /* highest batch sequence number found */
    uint64_t jobs;
    bool repaired;         /* damage was skipped: a snapshot should follow */
} wal_recovery_t;

int wal_recover(const wal_config_t *cfg, engine_t *e, wal_recovery_t *rec, char *err,
                size_t errlen);

typedef enum wal_replay_result {
    WAL_REPLAY_OK,
    WAL_REPLAY_TORN,       /* an unfinished write at info.torn_at */
    WAL_REPLAY_DAMAGED,    /* acknowledged data unreadable at info.damaged_at */
    WAL_REPLAY_BAD_HEADER, /* not a log file of this sequence */
    WAL_REPLAY_NO_MEMORY,
} wal_replay_result_t;

typedef struct wal_replay_info {
    uint64_t last_batch;
    uint64_t records;
    size_t torn_at, damaged_at, dropped;
    bool repaired;
    bool snapshot_complete;
    uint64_t covers;
} wal_replay_info_t;

/* Replay one file's bytes into e: every intact batch, in order. Pure but
 * for the engine calls, so the fuzzer can drive it. */
wal_replay_result_t wal_replay_buffer(const uint8_t *p, size_t size, uint64_t seq, bool snapshot,
                                      bool last, bool repair, engine_t *e, wal_replay_info_t *info);
void wal_segment_path(char *out, size_t outlen, const char *dir, const char *prefix,
                      uint64_t seq, const char *ext);

/* wal_writer.c */
int wal_writer_start(wal_writer_t *wr, uv_loop_t *loop, uv_async_cb cb, void *data);
/* Create the first segment before the server starts answering. */
int wal_writer_open_segment(wal_writer_t *wr, uint64_t seq, char *err, size_t errlen);
void wal_writer_submit(wal_writer_t *wr, wop_t *op);
void wal_writer_stop(wal_writer_t *wr);
wop_t *wal_op_new(wop_kind_t kind);

#endif
