/* fuzz_wal_decode.c - libFuzzer harness for wal_decode(), the log record
 * decoder.
 *
 * Input: one mode byte, then bytes read as a sequence of records, decoded
 * one after the other the way recovery walks a file: wal_decode at offset
 * 0, advance by rec.len on WAL_OK, stop at anything else (or after
 * MAX_RECORDS).
 *
 *   mode bit 0  first fix up the checksums: walk the records by their
 *               length fields and write each one's correct crc, so that
 *               mutations reach the payload checks instead of dying at the
 *               crc (a copy is fixed; the input is never written)
 *   mode bit 1  also fix up BATCH records' bytes/count to frame the
 *               records that follow, up to the next BATCH or SEGMENT
 *
 * Besides the sanitizers (every decode also runs on an exact-size copy of
 * the record, so a read past its end is caught) it checks:
 *   - the result agrees with an independent reading of docs/log-format.md
 *     (spec_decode below, written from the document, not from the code):
 *     OK exactly when the spec says the record is well-formed, and every
 *     decoded field equals the bytes at the documented offset;
 *   - on WAL_OK: 12 <= len <= the bytes available, len <= WAL_RECORD_MAX,
 *     the type is known, tube, body, key and error pointers lie inside the
 *     record (the last field ends exactly at its end), state is 0, 1 or 3,
 *     ids are non-zero, ttr >= 1, tube and queue names are valid, EXT flags
 *     are known, keys are at most 200 bytes and errors 1024, a HISTORY end
 *     is 1-3, SETTINGS text is at most 65536 bytes without NUL;
 *   - re-encoding the decoded record with the wal_put_* encoders gives the
 *     same bytes (round trip);
 *   - decoding only the record's own bytes gives the same result, and any
 *     shorter prefix gives WAL_TRUNCATED;
 *   - WAL_END only for four zero bytes; WAL_TRUNCATED only when the buffer
 *     is shorter than the header or than the length field says; a valid
 *     length field with enough bytes is never WAL_TRUNCATED;
 *   - decoding is deterministic (a second call gives the same answer).
 *
 * Built by fuzz/run.sh with libFuzzer, or with fuzz/replay_main.c to
 * replay a corpus without libFuzzer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/engine.h"
#include "store/wal_record.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECORDS 4096

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_wal_decode: invariant failed at %s:%d: %s\n", __FILE__,         \
                    __LINE__, #cond);                                                              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool has_nul(const char *s, size_t n) {
    return s && memchr(s, 0, n) != NULL;
}

/* ---- the format as docs/log-format.md states it ---- */

static uint16_t get16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}
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

/* crc32 of bytes 0-3 followed by bytes 8 to len-1. */
static uint32_t spec_crc(const uint8_t *p, uint32_t len) {
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, p, 4);
    c = crc32(c, p + 8, len - 8);
    return (uint32_t)c;
}

static bool spec_name_ok(const uint8_t *s, size_t n) {
    if (n < 1 || n > 200 || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != 0 && strchr("-+/;.$_()", c))))
            return false;
    }
    return true;
}

/* Fields 12-56 of PUT and UPDATE. */
/* docs/log-format.md, "Values": ids from 1 to 2^63-1; times and burial
 * orders from 0 to 3*2^61; no NUL in EXT and HISTORY strings. */
static bool spec_id(uint64_t id) {
    return id >= 1 && id < (UINT64_C(1) << 63);
}

static bool spec_time(int64_t t) {
    return t >= 0 && t <= (INT64_C(3) << 61);
}

static bool spec_text(const uint8_t *s, uint32_t n) {
    return memchr(s, 0, n) == NULL;
}

static bool spec_update(const uint8_t *q, wal_job_update_t *u) {
    u->id = get64(q);
    u->deadline = (int64_t)get64(q + 8);
    u->pri = get32(q + 16);
    u->delay = get32(q + 20);
    u->state = q[24];
    u->counters.reserves = get32(q + 25);
    u->counters.timeouts = get32(q + 29);
    u->counters.releases = get32(q + 33);
    u->counters.buries = get32(q + 37);
    u->counters.kicks = get32(q + 41);
    return spec_id(u->id) && spec_time(u->deadline) &&
           (u->state == 0 || u->state == 1 || u->state == 3);
}

/* What the document says p[0..n) holds, fields included when OK. */
static wal_decode_result_t spec_decode(const uint8_t *p, size_t n, wal_rec_t *r) {
    memset(r, 0, sizeof *r);
    if (n >= 4 && get32(p) == 0)
        return WAL_END;
    if (n < WAL_HEADER_SIZE)
        return WAL_TRUNCATED;
    uint32_t len = get32(p);
    if (len < 12 || len > (1u << 30) + 4096)
        return WAL_CORRUPT;
    if (n < len)
        return WAL_TRUNCATED;
    if (get32(p + 4) != spec_crc(p, len) || p[9] != 1 || get16(p + 10) != 0)
        return WAL_CORRUPT;
    r->type = (wal_type_t)p[8];
    r->len = len;
    const uint8_t *q = p + 12;
    uint32_t pl = len - 12;
    switch (p[8]) {
    case 1:
        if (pl != 24 || memcmp(q, "DEFERLOG", 8) != 0 || get32(q + 8) != 1)
            return WAL_CORRUPT;
        memcpy(r->u.segment.magic, q, 8);
        r->u.segment.format = 1;
        r->u.segment.flags = get32(q + 12);
        r->u.segment.seq = get64(q + 16);
        return WAL_OK;
    case 2:
        if (pl != 24)
            return WAL_CORRUPT;
        r->u.batch.seq = get64(q);
        r->u.batch.synced = get64(q + 8);
        r->u.batch.bytes = get32(q + 16);
        r->u.batch.count = get32(q + 20);
        return WAL_OK;
    case 3: {
        /* Offsets relative to the record: 57 created, 65 ttr, 69 t, 71 tube,
         * 71+t body length, 75+t body. */
        if (len < 75 || !spec_update(q, &r->u.put.u))
            return WAL_CORRUPT;
        uint32_t t = get16(p + 69);
        if ((uint64_t)75 + t > len)
            return WAL_CORRUPT;
        uint32_t b = get32(p + 71 + t);
        if ((uint64_t)75 + t + b != len)
            return WAL_CORRUPT;
        r->u.put.created = (int64_t)get64(p + 57);
        r->u.put.ttr = get32(p + 65);
        r->u.put.tube = (const char *)p + 71;
        r->u.put.tube_len = (uint16_t)t;
        r->u.put.body = (const char *)p + 75 + t;
        r->u.put.body_len = b;
        if (r->u.put.ttr < 1 || !spec_time(r->u.put.created) || !spec_name_ok(p + 71, t))
            return WAL_CORRUPT;
        return WAL_OK;
    }
    case 4:
        if (pl != 45 || !spec_update(q, &r->u.update))
            return WAL_CORRUPT;
        return WAL_OK;
    case 5:
        if (pl != 8)
            return WAL_CORRUPT;
        r->u.id = get64(q);
        return spec_id(r->u.id) ? WAL_OK : WAL_CORRUPT;
    case 6: {
        if (pl < 18)
            return WAL_CORRUPT;
        uint32_t t = get16(p + 28);
        if (30 + t != len || !spec_name_ok(p + 30, t))
            return WAL_CORRUPT;
        r->u.pause.pause_ns = (int64_t)get64(q);
        r->u.pause.unpause_at = (int64_t)get64(q + 8);
        r->u.pause.tube = (const char *)p + 30;
        r->u.pause.tube_len = (uint16_t)t;
        if (!spec_time(r->u.pause.pause_ns) || !spec_time(r->u.pause.unpause_at))
            return WAL_CORRUPT;
        return WAL_OK;
    }
    case 7:
        if (pl != 8)
            return WAL_CORRUPT;
        r->u.next_id = get64(q);
        return r->u.next_id <= (UINT64_C(1) << 63) ? WAL_OK : WAL_CORRUPT;
    case 8:
        if (pl != 16)
            return WAL_CORRUPT;
        r->u.snapshot_end.covers = get64(q);
        r->u.snapshot_end.records = get64(q + 8);
        return WAL_OK;
    case 9: {
        /* 12 id, 20 max_attempts, 24 attempt_base, 28 flags, 29 failed_at,
         * 37 k, 39 key, 39+k e, 41+k error. */
        if (len < 41)
            return WAL_CORRUPT;
        uint32_t k = get16(p + 37);
        if ((uint64_t)41 + k > len)
            return WAL_CORRUPT;
        uint32_t e = get16(p + 39 + k);
        if ((uint64_t)41 + k + e != len)
            return WAL_CORRUPT;
        r->u.ext.id = get64(p + 12);
        r->u.ext.max_attempts = get32(p + 20);
        r->u.ext.attempt_base = get32(p + 24);
        r->u.ext.flags = p[28];
        r->u.ext.failed_at = (int64_t)get64(p + 29);
        r->u.ext.key = k ? (const char *)p + 39 : NULL;
        r->u.ext.key_len = (uint16_t)k;
        r->u.ext.error = e ? (const char *)p + 41 + k : NULL;
        r->u.ext.error_len = (uint16_t)e;
        if (!spec_id(r->u.ext.id) || (p[28] & ~3u) != 0 || !spec_time(r->u.ext.failed_at) ||
            k > 200 || e > 1024 || !spec_text(p + 39, k) || !spec_text(p + 41 + k, e))
            return WAL_CORRUPT;
        return WAL_OK;
    }
    case 10: {
        /* 12 id, 20 created, 28 finished, 36 pri, 40 ttr, 44 attempts,
         * 48 max_attempts, 52 end, 53 q, 55 queue, 55+q k, 57+q key,
         * 57+q+k e, 59+q+k error. */
        if (len < 59)
            return WAL_CORRUPT;
        uint32_t qn = get16(p + 53);
        if ((uint64_t)59 + qn > len)
            return WAL_CORRUPT;
        uint32_t k = get16(p + 55 + qn);
        if ((uint64_t)59 + qn + k > len)
            return WAL_CORRUPT;
        uint32_t e = get16(p + 57 + qn + k);
        if ((uint64_t)59 + qn + k + e != len)
            return WAL_CORRUPT;
        r->u.history.id = get64(p + 12);
        r->u.history.created = (int64_t)get64(p + 20);
        r->u.history.finished = (int64_t)get64(p + 28);
        r->u.history.pri = get32(p + 36);
        r->u.history.ttr = get32(p + 40);
        r->u.history.attempts = get32(p + 44);
        r->u.history.max_attempts = get32(p + 48);
        r->u.history.end = p[52];
        r->u.history.queue = qn ? (const char *)p + 55 : NULL;
        r->u.history.queue_len = (uint16_t)qn;
        r->u.history.key = k ? (const char *)p + 57 + qn : NULL;
        r->u.history.key_len = (uint16_t)k;
        r->u.history.error = e ? (const char *)p + 59 + qn + k : NULL;
        r->u.history.error_len = (uint16_t)e;
        if (!spec_id(r->u.history.id) || !spec_time(r->u.history.created) ||
            !spec_time(r->u.history.finished) || p[52] < 1 || p[52] > 3 ||
            !spec_name_ok(p + 55, qn) || k > 200 || e > 1024 || !spec_text(p + 57 + qn, k) ||
            !spec_text(p + 59 + qn + k, e))
            return WAL_CORRUPT;
        return WAL_OK;
    }
    case 11: {
        /* 12 q, 14 queue, 14+q s (4 bytes), 18+q settings. */
        if (len < 18)
            return WAL_CORRUPT;
        uint32_t qn = get16(p + 12);
        if ((uint64_t)18 + qn > len)
            return WAL_CORRUPT;
        uint32_t s = get32(p + 14 + qn);
        if ((uint64_t)18 + qn + s != len || !spec_name_ok(p + 14, qn) || s > 65536 ||
            !spec_text(p + 18 + qn, s))
            return WAL_CORRUPT;
        r->u.settings.tube = (const char *)p + 14;
        r->u.settings.tube_len = (uint16_t)qn;
        r->u.settings.text = s ? (const char *)p + 18 + qn : NULL;
        r->u.settings.text_len = s;
        return WAL_OK;
    }
    default:
        return WAL_CORRUPT;
    }
}

/* ---- checks ---- */

static bool same_update(const wal_job_update_t *a, const wal_job_update_t *b) {
    return a->id == b->id && a->deadline == b->deadline && a->pri == b->pri &&
           a->delay == b->delay && a->state == b->state &&
           a->counters.reserves == b->counters.reserves &&
           a->counters.timeouts == b->counters.timeouts &&
           a->counters.releases == b->counters.releases &&
           a->counters.buries == b->counters.buries && a->counters.kicks == b->counters.kicks;
}

/* Same type, length and fields; pointers must be the same addresses. */
static bool same_rec(const wal_rec_t *a, const wal_rec_t *b) {
    if (a->type != b->type || a->len != b->len)
        return false;
    switch (a->type) {
    case WAL_SEGMENT:
        return memcmp(a->u.segment.magic, b->u.segment.magic, 8) == 0 &&
               a->u.segment.format == b->u.segment.format &&
               a->u.segment.flags == b->u.segment.flags && a->u.segment.seq == b->u.segment.seq;
    case WAL_BATCH:
        return a->u.batch.seq == b->u.batch.seq && a->u.batch.synced == b->u.batch.synced &&
               a->u.batch.bytes == b->u.batch.bytes && a->u.batch.count == b->u.batch.count;
    case WAL_PUT:
        return same_update(&a->u.put.u, &b->u.put.u) && a->u.put.created == b->u.put.created &&
               a->u.put.ttr == b->u.put.ttr && a->u.put.tube == b->u.put.tube &&
               a->u.put.tube_len == b->u.put.tube_len && a->u.put.body == b->u.put.body &&
               a->u.put.body_len == b->u.put.body_len;
    case WAL_UPDATE:
        return same_update(&a->u.update, &b->u.update);
    case WAL_DELETE:
        return a->u.id == b->u.id;
    case WAL_PAUSE:
        return a->u.pause.pause_ns == b->u.pause.pause_ns &&
               a->u.pause.unpause_at == b->u.pause.unpause_at && a->u.pause.tube == b->u.pause.tube &&
               a->u.pause.tube_len == b->u.pause.tube_len;
    case WAL_NEXT_ID:
        return a->u.next_id == b->u.next_id;
    case WAL_SNAPSHOT_END:
        return a->u.snapshot_end.covers == b->u.snapshot_end.covers &&
               a->u.snapshot_end.records == b->u.snapshot_end.records;
    case WAL_EXT:
        return a->u.ext.id == b->u.ext.id && a->u.ext.max_attempts == b->u.ext.max_attempts &&
               a->u.ext.attempt_base == b->u.ext.attempt_base &&
               a->u.ext.flags == b->u.ext.flags && a->u.ext.failed_at == b->u.ext.failed_at &&
               a->u.ext.key == b->u.ext.key &&
               a->u.ext.key_len == b->u.ext.key_len && a->u.ext.error == b->u.ext.error &&
               a->u.ext.error_len == b->u.ext.error_len;
    case WAL_HISTORY:
#define SAME(f) (a->u.history.f == b->u.history.f)
        return SAME(id) && SAME(created) && SAME(finished) && SAME(pri) && SAME(ttr) &&
               SAME(attempts) && SAME(max_attempts) && SAME(end) && SAME(queue) &&
               SAME(queue_len) && SAME(key) && SAME(key_len) && SAME(error) && SAME(error_len);
#undef SAME
    case WAL_SETTINGS:
        return a->u.settings.tube == b->u.settings.tube &&
               a->u.settings.tube_len == b->u.settings.tube_len &&
               a->u.settings.text == b->u.settings.text &&
               a->u.settings.text_len == b->u.settings.text_len;
    }
    return false;
}

static const char *move(const char *s, const uint8_t *from, const uint8_t *to) {
    return s ? (const char *)to + ((const uint8_t *)s - from) : NULL;
}

/* Same record, but with pointers into another copy of the bytes. */
static void rebase(wal_rec_t *r, const uint8_t *from, const uint8_t *to) {
    if (r->type == WAL_PUT) {
        r->u.put.tube = (const char *)to + ((const uint8_t *)r->u.put.tube - from);
        r->u.put.body = (const char *)to + ((const uint8_t *)r->u.put.body - from);
    } else if (r->type == WAL_PAUSE) {
        r->u.pause.tube = (const char *)to + ((const uint8_t *)r->u.pause.tube - from);
    } else if (r->type == WAL_EXT) {
        r->u.ext.key = move(r->u.ext.key, from, to);
        r->u.ext.error = move(r->u.ext.error, from, to);
    } else if (r->type == WAL_HISTORY) {
        r->u.history.queue = move(r->u.history.queue, from, to);
        r->u.history.key = move(r->u.history.key, from, to);
        r->u.history.error = move(r->u.history.error, from, to);
    } else if (r->type == WAL_SETTINGS) {
        r->u.settings.tube = move(r->u.settings.tube, from, to);
        r->u.settings.text = move(r->u.settings.text, from, to);
    }
}

static bool inside(const void *ptr, size_t n, const uint8_t *p, size_t len) {
    const uint8_t *q = ptr;
    return q >= p && q <= p + len && n <= (size_t)(p + len - q);
}

/* A NUL-terminated copy of a decoded string, NULL for none. */
static char *cstr(const char *s, size_t n) {
    if (!s)
        return NULL;
    char *c = malloc(n + 1);
    CHECK(c != NULL);
    memcpy(c, s, n);
    c[n] = '\0';
    return c;
}

static void re_encode(const wal_rec_t *r, buf_t *b) {
    bool ok = false;
    switch (r->type) {
    case WAL_SEGMENT:
        ok = wal_put_segment(b, r->u.segment.seq, r->u.segment.flags);
        break;
    case WAL_BATCH:
        ok = wal_put_batch(b, r->u.batch.seq, r->u.batch.synced, r->u.batch.bytes,
                           r->u.batch.count);
        break;
    case WAL_PUT:
        ok = wal_put_job(b, &r->u.put.u, r->u.put.created, r->u.put.ttr, r->u.put.tube,
                         r->u.put.tube_len, r->u.put.body, r->u.put.body_len);
        break;
    case WAL_UPDATE:
        ok = wal_put_update(b, &r->u.update);
        break;
    case WAL_DELETE:
        ok = wal_put_delete(b, r->u.id);
        break;
    case WAL_PAUSE:
        ok = wal_put_pause(b, r->u.pause.pause_ns, r->u.pause.unpause_at, r->u.pause.tube,
                           r->u.pause.tube_len);
        break;
    case WAL_NEXT_ID:
        ok = wal_put_next_id(b, r->u.next_id);
        break;
    case WAL_SNAPSHOT_END:
        ok = wal_put_snapshot_end(b, r->u.snapshot_end.covers, r->u.snapshot_end.records);
        break;
    case WAL_EXT: {
        /* The encoder takes the error as a C string (as the engine keeps it). */
        char *err = cstr(r->u.ext.error, r->u.ext.error_len);
        ok = wal_put_ext(b, r->u.ext.id, r->u.ext.max_attempts, r->u.ext.attempt_base,
                         r->u.ext.flags, r->u.ext.failed_at, r->u.ext.key, r->u.ext.key_len, err);
        free(err);
        break;
    }
    case WAL_HISTORY: {
        char *key = cstr(r->u.history.key, r->u.history.key_len);
        char *err = cstr(r->u.history.error, r->u.history.error_len);
        ok = wal_put_history(b, r->u.history.id, r->u.history.created, r->u.history.finished,
                             r->u.history.pri, r->u.history.ttr, r->u.history.attempts,
                             r->u.history.max_attempts, r->u.history.end, r->u.history.queue,
                             r->u.history.queue_len, key, err);
        free(key);
        free(err);
        break;
    }
    case WAL_SETTINGS:
        ok = wal_put_settings(b, r->u.settings.tube, r->u.settings.tube_len, r->u.settings.text,
                              r->u.settings.text_len);
        break;
    }
    CHECK(ok);
}

static void check_ok(const uint8_t *p, size_t n, const wal_rec_t *r) {
    uint32_t len = r->len;
    CHECK(len >= WAL_HEADER_SIZE && len <= n && len <= WAL_RECORD_MAX);
    CHECK(len == get32(p) && r->type == p[8]);
    CHECK(r->type >= WAL_SEGMENT && r->type <= WAL_SETTINGS);
    switch (r->type) {
    case WAL_SEGMENT:
        CHECK(len == WAL_SEGMENT_SIZE);
        CHECK(memcmp(r->u.segment.magic, WAL_MAGIC, 8) == 0 && r->u.segment.format == WAL_FORMAT);
        break;
    case WAL_BATCH:
        CHECK(len == WAL_BATCH_SIZE);
        break;
    case WAL_PUT: {
        const wal_job_update_t *u = &r->u.put.u;
        CHECK(u->id != 0);
        CHECK(u->state == WAL_JOB_READY || u->state == WAL_JOB_DELAYED ||
              u->state == WAL_JOB_BURIED);
        CHECK(r->u.put.ttr >= 1);
        CHECK(r->u.put.tube_len >= 1 && r->u.put.tube_len <= TUBE_NAME_MAX);
        CHECK(inside(r->u.put.tube, r->u.put.tube_len, p, len));
        CHECK(engine_tube_name_valid(r->u.put.tube, r->u.put.tube_len));
        CHECK(inside(r->u.put.body, r->u.put.body_len, p, len));
        CHECK((const uint8_t *)r->u.put.body + r->u.put.body_len == p + len);
        CHECK(len == wal_job_size(r->u.put.tube_len, r->u.put.body_len));
        break;
    }
    case WAL_UPDATE:
        CHECK(len == WAL_UPDATE_SIZE);
        CHECK(r->u.update.id != 0);
        CHECK(r->u.update.state == WAL_JOB_READY || r->u.update.state == WAL_JOB_DELAYED ||
              r->u.update.state == WAL_JOB_BURIED);
        break;
    case WAL_DELETE:
        CHECK(len == WAL_DELETE_SIZE && r->u.id != 0);
        break;
    case WAL_PAUSE:
        CHECK(r->u.pause.tube_len >= 1 && r->u.pause.tube_len <= TUBE_NAME_MAX);
        CHECK(inside(r->u.pause.tube, r->u.pause.tube_len, p, len));
        CHECK((const uint8_t *)r->u.pause.tube + r->u.pause.tube_len == p + len);
        CHECK(engine_tube_name_valid(r->u.pause.tube, r->u.pause.tube_len));
        break;
    case WAL_NEXT_ID:
        CHECK(len == WAL_HEADER_SIZE + 8);
        break;
    case WAL_SNAPSHOT_END:
        CHECK(len == WAL_HEADER_SIZE + 16);
        break;
    case WAL_EXT:
        CHECK(r->u.ext.id != 0);
        CHECK((r->u.ext.flags & ~(WAL_EXT_FAILED | WAL_EXT_JSON)) == 0);
        CHECK(r->u.ext.key_len <= TUBE_NAME_MAX && r->u.ext.error_len <= WAL_TEXT_MAX);
        CHECK((r->u.ext.key == NULL) == (r->u.ext.key_len == 0));
        CHECK((r->u.ext.error == NULL) == (r->u.ext.error_len == 0));
        CHECK(!r->u.ext.key || inside(r->u.ext.key, r->u.ext.key_len, p, len));
        CHECK(!r->u.ext.error || inside(r->u.ext.error, r->u.ext.error_len, p, len));
        CHECK(len == WAL_HEADER_SIZE + 29u + r->u.ext.key_len + r->u.ext.error_len);
        break;
    case WAL_HISTORY:
        CHECK(r->u.history.id != 0);
        CHECK(r->u.history.end >= TASK_DONE && r->u.history.end <= TASK_CANCELLED);
        CHECK(inside(r->u.history.queue, r->u.history.queue_len, p, len));
        CHECK(engine_tube_name_valid(r->u.history.queue, r->u.history.queue_len));
        CHECK(r->u.history.key_len <= TUBE_NAME_MAX && r->u.history.error_len <= WAL_TEXT_MAX);
        CHECK(!r->u.history.key || inside(r->u.history.key, r->u.history.key_len, p, len));
        CHECK(!r->u.history.error || inside(r->u.history.error, r->u.history.error_len, p, len));
        CHECK(len == WAL_HEADER_SIZE + 47u + r->u.history.queue_len + r->u.history.key_len +
                         r->u.history.error_len);
        break;
    case WAL_SETTINGS:
        CHECK(engine_tube_name_valid(r->u.settings.tube, r->u.settings.tube_len));
        CHECK(inside(r->u.settings.tube, r->u.settings.tube_len, p, len));
        CHECK(r->u.settings.text_len <= WAL_SETTINGS_MAX);
        CHECK((r->u.settings.text == NULL) == (r->u.settings.text_len == 0));
        CHECK(!r->u.settings.text ||
              ((const uint8_t *)r->u.settings.text + r->u.settings.text_len == p + len &&
               !has_nul(r->u.settings.text, r->u.settings.text_len)));
        CHECK(len == WAL_HEADER_SIZE + 6u + r->u.settings.tube_len + r->u.settings.text_len);
        break;
    }

    /* Round trip: the encoders write exactly these bytes (texts hold no
     * NUL byte, which the C-string encoders could not write back: the
     * decoder refuses them). */
    CHECK(r->type != WAL_EXT || !has_nul(r->u.ext.error, r->u.ext.error_len));
    CHECK(r->type != WAL_HISTORY || (!has_nul(r->u.history.key, r->u.history.key_len) &&
                                     !has_nul(r->u.history.error, r->u.history.error_len)));
    buf_t b;
    buf_init(&b);
    re_encode(r, &b);
    if (b.len != len || memcmp(buf_head(&b), p, len) != 0) {
        fprintf(stderr, "fuzz_wal_decode: record of type %d, %u bytes, re-encodes to %zu "
                        "different bytes\n",
                (int)r->type, len, b.len);
        abort();
    }
    buf_free(&b);

    /* Only the record's own bytes, in an exact-size copy: the same record,
     * and nothing read past its end. Every shorter prefix is truncated. */
    uint8_t *copy = malloc(len);
    CHECK(copy != NULL);
    memcpy(copy, p, len);
    wal_rec_t again;
    CHECK(wal_decode(copy, len, &again) == WAL_OK);
    rebase(&again, copy, p);
    CHECK(same_rec(r, &again));
    free(copy);
    size_t cuts[3] = {len - 1, len / 2, (size_t)(get32(p + 4) % len)};
    for (int i = 0; i < 3; i++) {
        /* An exact-size copy of the prefix, so a read past it is caught. */
        uint8_t *pre = malloc(cuts[i] ? cuts[i] : 1);
        CHECK(pre != NULL);
        memcpy(pre, p, cuts[i]);
        wal_rec_t t;
        wal_decode_result_t res = wal_decode(pre, cuts[i], &t);
        if (res != WAL_TRUNCATED) {
            fprintf(stderr, "fuzz_wal_decode: the first %zu bytes of a %u-byte record decode as "
                            "%d, not WAL_TRUNCATED\n",
                    cuts[i], len, (int)res);
            abort();
        }
        free(pre);
    }
}

/* One decode at p[0..n). Returns the result. */
static wal_decode_result_t decode_one(const uint8_t *p, size_t n, wal_rec_t *r) {
    wal_decode_result_t res = wal_decode(p, n, r);
    CHECK(res == WAL_OK || res == WAL_END || res == WAL_TRUNCATED || res == WAL_CORRUPT);

    wal_rec_t again;
    CHECK(wal_decode(p, n, &again) == res);
    if (res == WAL_OK)
        CHECK(same_rec(r, &again));

    /* What the document says. */
    wal_rec_t want;
    wal_decode_result_t expect = spec_decode(p, n, &want);
    if (res != expect) {
        fprintf(stderr,
                "fuzz_wal_decode: wal_decode says %d, docs/log-format.md says %d "
                "(%zu bytes, length field %u, type %u)\n",
                (int)res, (int)expect, n, n >= 4 ? get32(p) : 0, n >= 9 ? p[8] : 0);
        abort();
    }
    if (res == WAL_OK && !same_rec(r, &want)) {
        fprintf(stderr, "fuzz_wal_decode: a record of type %d decodes to other field values "
                        "than the documented offsets hold\n",
                (int)r->type);
        abort();
    }

    uint32_t lenf = n >= 4 ? get32(p) : 0;
    bool len_ok = lenf >= WAL_HEADER_SIZE && lenf <= WAL_RECORD_MAX;
    switch (res) {
    case WAL_OK:
        check_ok(p, n, r);
        break;
    case WAL_END:
        CHECK(n >= 4 && lenf == 0);
        break;
    case WAL_TRUNCATED:
        CHECK(n < WAL_HEADER_SIZE || (len_ok && n < lenf));
        break;
    case WAL_CORRUPT:
        CHECK(n >= WAL_HEADER_SIZE && lenf != 0);
        CHECK(!len_ok || n >= lenf);
        break;
    }
    if (n >= WAL_HEADER_SIZE && len_ok && n < lenf)
        CHECK(res == WAL_TRUNCATED);
    return res;
}

/* ---- fix-ups (mode bits) ---- */

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
        set32(p + off + 4, spec_crc(p + off, len));
        off += len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    uint8_t *fixed = NULL;
    if (mode & 3) {
        fixed = malloc(n ? n : 1);
        CHECK(fixed != NULL);
        memcpy(fixed, p, n);
        fix_records(fixed, n, (mode & 2) != 0);
        p = fixed;
    }
    size_t off = 0;
    for (int i = 0; i < MAX_RECORDS; i++) {
        wal_rec_t r;
        if (decode_one(p + off, n - off, &r) != WAL_OK)
            break;
        off += r.len;
    }
    free(fixed);
    return 0;
}
