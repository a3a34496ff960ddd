/* wal.h - the durable log: nothing acknowledged is ever lost.
 *
 * The engine reports every durable change (engine_journal_fn); the log
 * encodes it into the batch being filled. At the end of each loop turn the
 * batch is handed to the writer thread, which writes it and - with the
 * default policy - fdatasyncs it, while the loop goes on filling the next
 * one (group commit). Replies wait until the batch holding their changes
 * is durable: wal_position() says which batch a reply must wait for,
 * wal_durable() how far the writer has got.
 *
 * On disk: segment files of batches, plus at most one snapshot that holds
 * the live state as of the end of some segment; older segments are deleted
 * once a snapshot covers them (compaction), so the directory follows the
 * live set, not the history. Recovery replays the snapshot, then the
 * segments after it. docs/log-format.md has the byte layout. */
#ifndef DEFER_WAL_H
#define DEFER_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/engine.h"

typedef enum wal_sync {
    WAL_SYNC_ALWAYS,   /* a reply means the change is on disk */
    WAL_SYNC_INTERVAL, /* written at once, fdatasync at most every sync_ms */
    WAL_SYNC_NEVER,    /* written at once, the kernel flushes when it likes */
} wal_sync_t;

typedef struct wal_config {
    const char *dir;
    wal_sync_t sync;
    uint32_t sync_ms;
    uint64_t segment_size; /* rotate segment files at about this size */
    bool repair;           /* start despite damage, dropping the damaged batches */
    bool readonly;         /* check only: change nothing in the directory */
} wal_config_t;

typedef struct wal_stats {
    uint64_t oldest_segment;
    uint64_t current_segment;
    uint64_t records_written;  /* appended since start */
    uint64_t records_migrated; /* rewritten by compaction since start */
    uint64_t segment_size;
    uint64_t batches;
    uint64_t syncs;
    uint64_t compactions;
    uint64_t disk_bytes;       /* of the files in the directory, as last counted */
    bool space_low;            /* the disk is full: only changes fit in the reserve */
    /* fdatasync latency histogram, bucket i counts syncs <= 2^i microseconds */
    uint64_t sync_us_buckets[24];
    uint64_t sync_us_sum;
} wal_stats_t;

typedef struct wal wal_t;

/* Lock dir, create it if missing, and replay it into e. On damage that is
 * not a torn tail, fails with a message naming the file, the offset and
 * the flag that starts anyway. Returns 0 or -1 with err filled. */
int wal_open(wal_t **out, const wal_config_t *cfg, engine_t *e, int64_t now, char *err,
             size_t errlen);
/* Replay dir read-only into e and report what it holds; for --check-log.
 * Returns 0, or -1 with err filled as wal_open would. */
int wal_check(const wal_config_t *cfg, engine_t *e, char *err, size_t errlen);
/* Start the writer thread. durable(ctx) runs on the loop thread whenever
 * wal_durable() has advanced. */
int wal_start(wal_t *w, uv_loop_t *loop, void (*durable)(void *ctx), void *ctx);
/* The engine's journal (engine_set_journal(e, wal_journal, w)). */
void wal_journal(void *w, journal_kind_t kind, const job_t *j, const tube_t *t);
/* A reply produced now must wait until wal_durable() reaches this. Call it
 * for each reply that is held back: while group commit lingers, a held reply
 * that brought no record of its own ends the linger (see wal_internal.h). */
uint64_t wal_position(wal_t *w);
uint64_t wal_durable(const wal_t *w);
/* End of a loop turn: hand the filled batch to the writer, advance
 * compaction. */
void wal_end_turn(wal_t *w, int64_t now);
/* Bytes that may still be logged: puts need room beyond a reserve kept for
 * deletes and other changes, so a full disk stops new tasks first.
 * SIZE_MAX when there is no limit. */
size_t wal_room(const wal_t *w, bool for_put);
void wal_get_stats(const wal_t *w, wal_stats_t *out);
/* Write what is pending, stop the writer, unlock. */
void wal_close(wal_t *w);

#endif
