/* wal_record.h - the write-ahead log's records: encoding and decoding.
 *
 * Byte-for-byte layout is in docs/log-format.md. Every record starts with
 * the same 12-byte header - length, checksum (zlib crc32), type, version -
 * so a reader can skip a record it does not know and detect any damage.
 * Records are grouped in batches (one per group commit): a BATCH record
 * says how many bytes and records follow, and a batch is applied only when
 * all of it is intact, so a write torn by a crash is dropped whole.
 *
 * Decoding is a pure function over a byte buffer; the fuzzer drives it. */
#ifndef DEFER_WAL_RECORD_H
#define DEFER_WAL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define WAL_HEADER_SIZE 12
#define WAL_VERSION 1
/* Record length limit: the largest body (1 GiB) plus headroom. */
#define WAL_RECORD_MAX ((1u << 30) + 4096)

typedef enum wal_type {
    WAL_SEGMENT = 1,  /* first record of every file */
    WAL_BATCH = 2,    /* frames the records of one group commit */
    WAL_PUT = 3,      /* a job, whole */
    WAL_UPDATE = 4,   /* a job's changing fields */
    WAL_DELETE = 5,
    WAL_PAUSE = 6,    /* a tube's pause */
    WAL_NEXT_ID = 7,  /* ids below this were handed out */
    WAL_SNAPSHOT_END = 8,
    WAL_EXT = 9,      /* a job's key, attempt limit, last error, flags */
    WAL_HISTORY = 10, /* a finished task */
    WAL_SETTINGS = 11, /* a queue's push settings */
} wal_type_t;

#define WAL_EXT_FAILED 1u /* buried because its attempts ran out */
#define WAL_EXT_JSON 2u   /* the body is JSON text */
/* Strings in EXT and HISTORY records are cut to this many bytes. */
#define WAL_TEXT_MAX 1024
/* A queue's push settings text is at most this long. */
#define WAL_SETTINGS_MAX (64u << 10)
/* Ranges a record's values must lie in, so that no arithmetic on them can
 * overflow: ids below 2^63, times (ns) and burial orders from 0 to 3*2^61
 * (the year 2189: now plus the longest delay, 2^32 s, fits). */
#define WAL_ID_MAX (UINT64_C(1) << 63)
#define WAL_TIME_MAX (INT64_C(3) << 61)

/* The job state as logged: a reserved job is logged as ready, since a
 * reservation does not survive a restart. */
typedef enum wal_job_state {
    WAL_JOB_READY = 0,
    WAL_JOB_DELAYED = 1,
    WAL_JOB_BURIED = 3,
} wal_job_state_t;

typedef struct wal_counters {
    uint32_t reserves, timeouts, releases, buries, kicks;
} wal_counters_t;

/* The fields of a job that change after it is put. */
typedef struct wal_job_update {
    uint64_t id;
    int64_t deadline; /* delayed: ready-at ns; buried: burial order; else 0 */
    uint32_t pri;
    uint32_t delay;
    uint8_t state; /* wal_job_state_t */
    wal_counters_t counters;
} wal_job_update_t;

typedef struct wal_rec {
    wal_type_t type;
    uint32_t len; /* whole record, header included */
    union {
        struct {
            char magic[8];
            uint32_t format;
            uint32_t flags; /* WAL_SEGMENT_SNAPSHOT */
            uint64_t seq;
        } segment;
        struct {
            uint64_t seq;
            uint64_t synced; /* batches known durable when this one was written */
            uint32_t bytes;  /* of records following this one */
            uint32_t count;
        } batch;
        struct {
            wal_job_update_t u;
            int64_t created;
            uint32_t ttr;
            const char *tube; /* points into the decoded buffer */
            uint16_t tube_len;
            const char *body;
            uint32_t body_len;
        } put;
        wal_job_update_t update;
        uint64_t id; /* DELETE */
        struct {
            int64_t pause_ns;
            int64_t unpause_at;
            const char *tube;
            uint16_t tube_len;
        } pause;
        uint64_t next_id;
        struct {
            uint64_t covers; /* segments up to this one */
            uint64_t records;
        } snapshot_end;
        struct {
            uint64_t id;
            uint32_t max_attempts, attempt_base;
            uint8_t flags;
            int64_t failed_at;
            const char *key, *error; /* into the buffer, not NUL-terminated */
            uint16_t key_len, error_len;
        } ext;
        struct {
            uint64_t id;
            int64_t created, finished;
            uint32_t pri, ttr, attempts, max_attempts;
            uint8_t end; /* task_end_t */
            const char *queue, *key, *error;
            uint16_t queue_len, key_len, error_len;
        } history;
        struct {
            const char *tube, *text; /* text_len 0: the settings were cleared */
            uint16_t tube_len;
            uint32_t text_len;
        } settings;
    } u;
} wal_rec_t;

#define WAL_MAGIC "DEFERLOG"
#define WAL_FORMAT 1
#define WAL_SEGMENT_SNAPSHOT 1u

typedef enum wal_decode_result {
    WAL_OK,
    WAL_END,       /* zero bytes: the unwritten (preallocated) tail */
    WAL_TRUNCATED, /* the buffer ends inside the record */
    WAL_CORRUPT,   /* bad length, checksum, type or contents */
} wal_decode_result_t;

/* Decode the record at p[0..n). On WAL_OK, *rec is filled (pointers into
 * p) and rec->len bytes were used. */
wal_decode_result_t wal_decode(const uint8_t *p, size_t n, wal_rec_t *rec);

/* Encoders append one complete record to b; false when memory ran out. */
bool wal_put_segment(buf_t *b, uint64_t seq, uint32_t flags);
bool wal_put_batch(buf_t *b, uint64_t seq, uint64_t synced, uint32_t bytes, uint32_t count);
/* Overwrite a BATCH record already in b at offset off (space reserved with
 * wal_put_batch earlier), once the batch's size is known. */
void wal_patch_batch(buf_t *b, size_t off, uint64_t seq, uint64_t synced, uint32_t bytes,
                     uint32_t count);
bool wal_put_job(buf_t *b, const wal_job_update_t *u, int64_t created, uint32_t ttr,
                 const char *tube, uint16_t tube_len, const char *body, uint32_t body_len);
bool wal_put_update(buf_t *b, const wal_job_update_t *u);
bool wal_put_delete(buf_t *b, uint64_t id);
bool wal_put_pause(buf_t *b, int64_t pause_ns, int64_t unpause_at, const char *tube,
                   uint16_t tube_len);
bool wal_put_next_id(buf_t *b, uint64_t next_id);
bool wal_put_snapshot_end(buf_t *b, uint64_t covers, uint64_t records);
bool wal_put_ext(buf_t *b, uint64_t id, uint32_t max_attempts, uint32_t attempt_base, uint8_t flags,
                 int64_t failed_at, const char *key, size_t key_len, const char *error);
/* h->end, h->queue and the other fields as in task_history_t. */
bool wal_put_history(buf_t *b, uint64_t id, int64_t created, int64_t finished, uint32_t pri,
                     uint32_t ttr, uint32_t attempts, uint32_t max_attempts, uint8_t end,
                     const char *queue, size_t queue_len, const char *key, const char *error);

bool wal_put_settings(buf_t *b, const char *tube, uint16_t tube_len, const char *text,
                      uint32_t text_len);

/* Sizes, for space accounting before encoding. */
#define WAL_SEGMENT_SIZE (WAL_HEADER_SIZE + 24)
#define WAL_BATCH_SIZE (WAL_HEADER_SIZE + 24)
size_t wal_job_size(uint16_t tube_len, uint32_t body_len);
#define WAL_UPDATE_SIZE (WAL_HEADER_SIZE + 45)
#define WAL_DELETE_SIZE (WAL_HEADER_SIZE + 8)

#endif
