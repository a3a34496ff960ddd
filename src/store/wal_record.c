/* wal_record.c - log record encoding and decoding (see wal_record.h and
 * docs/log-format.md). All integers are little-endian, written byte by
 * byte so the format does not depend on the host. */
#include "store/wal_record.h"

#include <string.h>
#include <zlib.h>

#include "core/engine.h"

#define PAYLOAD_SEGMENT 24
#define PAYLOAD_BATCH 24
#define PAYLOAD_UPDATE 45
#define PAYLOAD_ID 8
#define PAYLOAD_SNAPSHOT_END 16

/* ---- little-endian helpers ---- */

static void le16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t rd16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) {
    return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}

/* The checksum covers the length field and everything after the checksum
 * field, so a damaged length is caught too. */
static uint32_t record_crc(const uint8_t *p, uint32_t len) {
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, p, 4);
    /* zlib takes uInt lengths; records are at most ~1 GiB. */
    c = crc32(c, p + 8, (uInt)(len - 8));
    return (uint32_t)c;
}

/* ---- encoding ---- */

/* Reserve a record of total length len in b and write its header; returns
 * a pointer to the payload, or NULL when memory ran out. */
static uint8_t *rec_begin(buf_t *b, wal_type_t type, uint32_t len) {
    if (!buf_reserve(b, len))
        return NULL;
    uint8_t *p = (uint8_t *)buf_tail(b);
    le32(p, len);
    p[8] = (uint8_t)type;
    p[9] = WAL_VERSION;
    le16(p + 10, 0);
    return p + WAL_HEADER_SIZE;
}

static void rec_end(buf_t *b, uint32_t len) {
    uint8_t *p = (uint8_t *)buf_tail(b);
    le32(p + 4, record_crc(p, len));
    b->len += len;
}

bool wal_put_segment(buf_t *b, uint64_t seq, uint32_t flags) {
    uint32_t len = WAL_HEADER_SIZE + PAYLOAD_SEGMENT;
    uint8_t *p = rec_begin(b, WAL_SEGMENT, len);
    if (!p)
        return false;
    memcpy(p, WAL_MAGIC, 8);
    le32(p + 8, WAL_FORMAT);
    le32(p + 12, flags);
    le64(p + 16, seq);
    rec_end(b, len);
    return true;
}

static void batch_fill(uint8_t *rec, uint64_t seq, uint64_t synced, uint32_t bytes,
                       uint32_t count) {
    uint32_t len = WAL_BATCH_SIZE;
    le32(rec, len);
    rec[8] = WAL_BATCH;
    rec[9] = WAL_VERSION;
    le16(rec + 10, 0);
    uint8_t *p = rec + WAL_HEADER_SIZE;
    le64(p, seq);
    le64(p + 8, synced);
    le32(p + 16, bytes);
    le32(p + 20, count);
    le32(rec + 4, record_crc(rec, len));
}

bool wal_put_batch(buf_t *b, uint64_t seq, uint64_t synced, uint32_t bytes, uint32_t count) {
    if (!buf_reserve(b, WAL_BATCH_SIZE))
        return false;
    batch_fill((uint8_t *)buf_tail(b), seq, synced, bytes, count);
    b->len += WAL_BATCH_SIZE;
    return true;
}

void wal_patch_batch(buf_t *b, size_t off, uint64_t seq, uint64_t synced, uint32_t bytes,
                     uint32_t count) {
    batch_fill((uint8_t *)buf_head(b) + off, seq, synced, bytes, count);
}

static void put_update_fields(uint8_t *p, const wal_job_update_t *u) {
    le64(p, u->id);
    le64(p + 8, (uint64_t)u->deadline);
    le32(p + 16, u->pri);
    le32(p + 20, u->delay);
    p[24] = u->state;
    le32(p + 25, u->counters.reserves);
    le32(p + 29, u->counters.timeouts);
    le32(p + 33, u->counters.releases);
    le32(p + 37, u->counters.buries);
    le32(p + 41, u->counters.kicks);
}

size_t wal_job_size(uint16_t tube_len, uint32_t body_len) {
    return (size_t)WAL_HEADER_SIZE + PAYLOAD_UPDATE + 8 + 4 + 2 + tube_len + 4 + body_len;
}

bool wal_put_job(buf_t *b, const wal_job_update_t *u, int64_t created, uint32_t ttr,
                 const char *tube, uint16_t tube_len, const char *body, uint32_t body_len) {
    uint32_t len = (uint32_t)wal_job_size(tube_len, body_len);
    uint8_t *p = rec_begin(b, WAL_PUT, len);
    if (!p)
        return false;
    put_update_fields(p, u);
    p += PAYLOAD_UPDATE;
    le64(p, (uint64_t)created);
    le32(p + 8, ttr);
    le16(p + 12, tube_len);
    memcpy(p + 14, tube, tube_len);
    p += 14 + tube_len;
    le32(p, body_len);
    if (body_len)
        memcpy(p + 4, body, body_len);
    rec_end(b, len);
    return true;
}

bool wal_put_update(buf_t *b, const wal_job_update_t *u) {
    uint8_t *p = rec_begin(b, WAL_UPDATE, WAL_UPDATE_SIZE);
    if (!p)
        return false;
    put_update_fields(p, u);
    rec_end(b, WAL_UPDATE_SIZE);
    return true;
}

static bool put_u64_record(buf_t *b, wal_type_t type, uint64_t v) {
    uint32_t len = WAL_HEADER_SIZE + PAYLOAD_ID;
    uint8_t *p = rec_begin(b, type, len);
    if (!p)
        return false;
    le64(p, v);
    rec_end(b, len);
    return true;
}

bool wal_put_delete(buf_t *b, uint64_t id) {
    return put_u64_record(b, WAL_DELETE, id);
}

bool wal_put_next_id(buf_t *b, uint64_t next_id) {
    return put_u64_record(b, WAL_NEXT_ID, next_id);
}

bool wal_put_pause(buf_t *b, int64_t pause_ns, int64_t unpause_at, const char *tube,
                   uint16_t tube_len) {
    uint32_t len = WAL_HEADER_SIZE + 18 + tube_len;
    uint8_t *p = rec_begin(b, WAL_PAUSE, len);
    if (!p)
        return false;
    le64(p, (uint64_t)pause_ns);
    le64(p + 8, (uint64_t)unpause_at);
    le16(p + 16, tube_len);
    memcpy(p + 18, tube, tube_len);
    rec_end(b, len);
    return true;
}

bool wal_put_snapshot_end(buf_t *b, uint64_t covers, uint64_t records) {
    uint32_t len = WAL_HEADER_SIZE + PAYLOAD_SNAPSHOT_END;
    uint8_t *p = rec_begin(b, WAL_SNAPSHOT_END, len);
    if (!p)
        return false;
    le64(p, covers);
    le64(p + 8, records);
    rec_end(b, len);
    return true;
}

/* A length-prefixed string: u16 length, then the bytes. */
static uint8_t *put_text(uint8_t *p, const char *s, size_t len) {
    le16(p, (uint16_t)len);
    if (len)
        memcpy(p + 2, s, len);
    return p + 2 + len;
}

static size_t text_len(const char *s) {
    size_t n = s ? strlen(s) : 0;
    return n > WAL_TEXT_MAX ? WAL_TEXT_MAX : n;
}

bool wal_put_ext(buf_t *b, uint64_t id, uint32_t max_attempts, uint32_t attempt_base, uint8_t flags,
                 int64_t failed_at, const char *key, size_t key_len, const char *error) {
    size_t elen = text_len(error);
    uint32_t len = (uint32_t)(WAL_HEADER_SIZE + 25 + 2 + key_len + 2 + elen);
    uint8_t *p = rec_begin(b, WAL_EXT, len);
    if (!p)
        return false;
    le64(p, id);
    le32(p + 8, max_attempts);
    le32(p + 12, attempt_base);
    p[16] = flags;
    le64(p + 17, (uint64_t)failed_at);
    p = put_text(p + 25, key, key_len);
    put_text(p, error, elen);
    rec_end(b, len);
    return true;
}

bool wal_put_history(buf_t *b, uint64_t id, int64_t created, int64_t finished, uint32_t pri,
                     uint32_t ttr, uint32_t attempts, uint32_t max_attempts, uint8_t end,
                     const char *queue, size_t queue_len, const char *key, const char *error) {
    size_t klen = text_len(key), elen = text_len(error);
    uint32_t len = (uint32_t)(WAL_HEADER_SIZE + 41 + 2 + queue_len + 2 + klen + 2 + elen);
    uint8_t *p = rec_begin(b, WAL_HISTORY, len);
    if (!p)
        return false;
    le64(p, id);
    le64(p + 8, (uint64_t)created);
    le64(p + 16, (uint64_t)finished);
    le32(p + 24, pri);
    le32(p + 28, ttr);
    le32(p + 32, attempts);
    le32(p + 36, max_attempts);
    p[40] = end;
    p = put_text(p + 41, queue, queue_len);
    p = put_text(p, key, klen);
    put_text(p, error, elen);
    rec_end(b, len);
    return true;
}

bool wal_put_settings(buf_t *b, const char *tube, uint16_t tube_len, const char *text,
                      uint32_t text_len) {
    uint32_t len = WAL_HEADER_SIZE + 2 + tube_len + 4 + text_len;
    uint8_t *p = rec_begin(b, WAL_SETTINGS, len);
    if (!p)
        return false;
    p = put_text(p, tube, tube_len);
    le32(p, text_len);
    if (text_len)
        memcpy(p + 4, text, text_len);
    rec_end(b, len);
    return true;
}

/* ---- decoding ---- */

/* Read a length-prefixed string at *q (within end); false if it does not
 * fit or holds a NUL byte (the engine keeps these as C strings). */
static bool read_text(const uint8_t **q, const uint8_t *end, const char **s, uint16_t *len) {
    if (end - *q < 2)
        return false;
    uint16_t n = rd16(*q);
    if ((size_t)(end - *q - 2) < n || memchr(*q + 2, '\0', n))
        return false;
    *s = n ? (const char *)*q + 2 : NULL;
    *len = n;
    *q += 2 + n;
    return true;
}

static bool time_ok(int64_t t) {
    return t >= 0 && t <= WAL_TIME_MAX;
}

static bool id_ok(uint64_t id) {
    return id > 0 && id < WAL_ID_MAX;
}

static bool read_update_fields(const uint8_t *p, wal_job_update_t *u) {
    u->id = rd64(p);
    u->deadline = (int64_t)rd64(p + 8);
    u->pri = rd32(p + 16);
    u->delay = rd32(p + 20);
    u->state = p[24];
    u->counters.reserves = rd32(p + 25);
    u->counters.timeouts = rd32(p + 29);
    u->counters.releases = rd32(p + 33);
    u->counters.buries = rd32(p + 37);
    u->counters.kicks = rd32(p + 41);
    return id_ok(u->id) && time_ok(u->deadline) &&
           (u->state == WAL_JOB_READY || u->state == WAL_JOB_DELAYED || u->state == WAL_JOB_BURIED);
}

static wal_decode_result_t decode_payload(const uint8_t *p, uint32_t n, wal_rec_t *rec) {
    switch (rec->type) {
    case WAL_SEGMENT:
        if (n != PAYLOAD_SEGMENT || memcmp(p, WAL_MAGIC, 8) != 0)
            return WAL_CORRUPT;
        memcpy(rec->u.segment.magic, p, 8);
        rec->u.segment.format = rd32(p + 8);
        rec->u.segment.flags = rd32(p + 12);
        rec->u.segment.seq = rd64(p + 16);
        return rec->u.segment.format == WAL_FORMAT ? WAL_OK : WAL_CORRUPT;
    case WAL_BATCH:
        if (n != PAYLOAD_BATCH)
            return WAL_CORRUPT;
        rec->u.batch.seq = rd64(p);
        rec->u.batch.synced = rd64(p + 8);
        rec->u.batch.bytes = rd32(p + 16);
        rec->u.batch.count = rd32(p + 20);
        return WAL_OK;
    case WAL_PUT: {
        if (n < PAYLOAD_UPDATE + 14 + 4 || !read_update_fields(p, &rec->u.put.u))
            return WAL_CORRUPT;
        const uint8_t *q = p + PAYLOAD_UPDATE;
        rec->u.put.created = (int64_t)rd64(q);
        rec->u.put.ttr = rd32(q + 8);
        uint16_t tl = rd16(q + 12);
        if ((uint32_t)PAYLOAD_UPDATE + 14 + tl + 4 > n)
            return WAL_CORRUPT;
        rec->u.put.tube = (const char *)q + 14;
        rec->u.put.tube_len = tl;
        q += 14 + tl;
        uint32_t bl = rd32(q);
        if ((uint64_t)PAYLOAD_UPDATE + 14 + tl + 4 + bl != n)
            return WAL_CORRUPT;
        rec->u.put.body = (const char *)q + 4;
        rec->u.put.body_len = bl;
        if (rec->u.put.ttr == 0 || !time_ok(rec->u.put.created) ||
            !engine_tube_name_valid(rec->u.put.tube, tl))
            return WAL_CORRUPT;
        return WAL_OK;
    }
    case WAL_UPDATE:
        if (n != PAYLOAD_UPDATE || !read_update_fields(p, &rec->u.update))
            return WAL_CORRUPT;
        return WAL_OK;
    case WAL_DELETE:
        if (n != PAYLOAD_ID)
            return WAL_CORRUPT;
        rec->u.id = rd64(p);
        return id_ok(rec->u.id) ? WAL_OK : WAL_CORRUPT;
    case WAL_NEXT_ID:
        if (n != PAYLOAD_ID)
            return WAL_CORRUPT;
        rec->u.next_id = rd64(p);
        return rec->u.next_id <= WAL_ID_MAX ? WAL_OK : WAL_CORRUPT;
    case WAL_PAUSE: {
        if (n < 18)
            return WAL_CORRUPT;
        uint16_t tl = rd16(p + 16);
        if ((uint32_t)18 + tl != n || !engine_tube_name_valid((const char *)p + 18, tl))
            return WAL_CORRUPT;
        rec->u.pause.pause_ns = (int64_t)rd64(p);
        rec->u.pause.unpause_at = (int64_t)rd64(p + 8);
        if (!time_ok(rec->u.pause.pause_ns) || !time_ok(rec->u.pause.unpause_at))
            return WAL_CORRUPT;
        rec->u.pause.tube = (const char *)p + 18;
        rec->u.pause.tube_len = tl;
        return WAL_OK;
    }
    case WAL_SETTINGS: {
        const uint8_t *q = p, *end = p + n;
        if (!read_text(&q, end, &rec->u.settings.tube, &rec->u.settings.tube_len) ||
            end - q < 4 ||
            !engine_tube_name_valid(rec->u.settings.tube, rec->u.settings.tube_len))
            return WAL_CORRUPT;
        uint32_t tl = rd32(q);
        if ((size_t)(end - q - 4) != tl || tl > WAL_SETTINGS_MAX || memchr(q + 4, '\0', tl))
            return WAL_CORRUPT;
        rec->u.settings.text = tl ? (const char *)q + 4 : NULL;
        rec->u.settings.text_len = tl;
        return WAL_OK;
    }
    case WAL_SNAPSHOT_END:
        if (n != PAYLOAD_SNAPSHOT_END)
            return WAL_CORRUPT;
        rec->u.snapshot_end.covers = rd64(p);
        rec->u.snapshot_end.records = rd64(p + 8);
        return WAL_OK;
    case WAL_EXT: {
        const uint8_t *q = p + 25, *end = p + n;
        if (n < 25 + 4)
            return WAL_CORRUPT;
        rec->u.ext.id = rd64(p);
        rec->u.ext.max_attempts = rd32(p + 8);
        rec->u.ext.attempt_base = rd32(p + 12);
        rec->u.ext.flags = p[16];
        rec->u.ext.failed_at = (int64_t)rd64(p + 17);
        if (!read_text(&q, end, &rec->u.ext.key, &rec->u.ext.key_len) ||
            !read_text(&q, end, &rec->u.ext.error, &rec->u.ext.error_len) || q != end ||
            !id_ok(rec->u.ext.id) || rec->u.ext.flags > (WAL_EXT_FAILED | WAL_EXT_JSON) ||
            !time_ok(rec->u.ext.failed_at) ||
            rec->u.ext.key_len > TUBE_NAME_MAX || rec->u.ext.error_len > WAL_TEXT_MAX)
            return WAL_CORRUPT;
        return WAL_OK;
    }
    case WAL_HISTORY: {
        const uint8_t *q = p + 41, *end = p + n;
        if (n < 41 + 6)
            return WAL_CORRUPT;
        rec->u.history.id = rd64(p);
        rec->u.history.created = (int64_t)rd64(p + 8);
        rec->u.history.finished = (int64_t)rd64(p + 16);
        rec->u.history.pri = rd32(p + 24);
        rec->u.history.ttr = rd32(p + 28);
        rec->u.history.attempts = rd32(p + 32);
        rec->u.history.max_attempts = rd32(p + 36);
        rec->u.history.end = p[40];
        if (!read_text(&q, end, &rec->u.history.queue, &rec->u.history.queue_len) ||
            !read_text(&q, end, &rec->u.history.key, &rec->u.history.key_len) ||
            !read_text(&q, end, &rec->u.history.error, &rec->u.history.error_len) || q != end ||
            !id_ok(rec->u.history.id) || !time_ok(rec->u.history.created) ||
            !time_ok(rec->u.history.finished) || rec->u.history.end < 1 || rec->u.history.end > 3 ||
            !engine_tube_name_valid(rec->u.history.queue, rec->u.history.queue_len) ||
            rec->u.history.key_len > TUBE_NAME_MAX || rec->u.history.error_len > WAL_TEXT_MAX)
            return WAL_CORRUPT;
        return WAL_OK;
    }
    }
    return WAL_CORRUPT;
}

wal_decode_result_t wal_decode(const uint8_t *p, size_t n, wal_rec_t *rec) {
    memset(rec, 0, sizeof *rec);
    /* Preallocated, never-written space reads as zeros: the end. */
    size_t z = n < 4 ? n : 4;
    bool zero = true;
    for (size_t i = 0; i < z; i++)
        zero = zero && p[i] == 0;
    if (zero)
        return n < 4 ? WAL_TRUNCATED : WAL_END;
    if (n < WAL_HEADER_SIZE)
        return WAL_TRUNCATED;
    uint32_t len = rd32(p);
    if (len < WAL_HEADER_SIZE || len > WAL_RECORD_MAX)
        return WAL_CORRUPT;
    if (n < len)
        return WAL_TRUNCATED;
    if (rd32(p + 4) != record_crc(p, len) || p[9] != WAL_VERSION || rd16(p + 10) != 0)
        return WAL_CORRUPT;
    rec->type = (wal_type_t)p[8];
    rec->len = len;
    return decode_payload(p + WAL_HEADER_SIZE, len - WAL_HEADER_SIZE, rec);
}
