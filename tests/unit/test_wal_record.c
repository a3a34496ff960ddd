/* test_wal_record.c - the log's record codec and its replay rules.
 *
 * Both are pure functions over byte buffers, so damage can be tried
 * exhaustively: every record is decoded after being cut at every length
 * and after every single-byte flip, and a log is replayed after being cut
 * at every offset of its last batches and with a byte flipped in every
 * position. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/engine.h"
#include "store/wal_internal.h"
#include "store/wal_record.h"

#define T0 (INT64_C(1700000000) * NS_PER_SEC)

static wal_job_update_t sample_update(uint64_t id) {
    wal_job_update_t u = {
        .id = id,
        .deadline = T0 + 5 * NS_PER_SEC,
        .pri = 1024,
        .delay = 5,
        .state = WAL_JOB_DELAYED,
        .counters = {.reserves = 1, .timeouts = 2, .releases = 3, .buries = 4, .kicks = 5},
    };
    return u;
}

static void test_job_round_trip(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    wal_job_update_t u = sample_update(42);
    const char body[] = "a\0b\r\nc"; /* binary-safe */
    assert_true(wal_put_job(&b, &u, T0, 60, "mail", 4, body, sizeof body));
    assert_int_equal(b.len, wal_job_size(4, sizeof body));

    wal_rec_t r;
    assert_int_equal(wal_decode((uint8_t *)buf_head(&b), b.len, &r), WAL_OK);
    assert_int_equal(r.type, WAL_PUT);
    assert_int_equal(r.len, b.len);
    assert_int_equal(r.u.put.u.id, 42);
    assert_int_equal(r.u.put.u.deadline, u.deadline);
    assert_int_equal(r.u.put.u.pri, 1024);
    assert_int_equal(r.u.put.u.delay, 5);
    assert_int_equal(r.u.put.u.state, WAL_JOB_DELAYED);
    assert_int_equal(r.u.put.u.counters.reserves, 1);
    assert_int_equal(r.u.put.u.counters.kicks, 5);
    assert_int_equal(r.u.put.created, T0);
    assert_int_equal(r.u.put.ttr, 60);
    assert_int_equal(r.u.put.tube_len, 4);
    assert_memory_equal(r.u.put.tube, "mail", 4);
    assert_int_equal(r.u.put.body_len, sizeof body);
    assert_memory_equal(r.u.put.body, body, sizeof body);
    buf_free(&b);
}

static void test_other_records_round_trip(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    wal_job_update_t u = sample_update(7);
    u.state = WAL_JOB_BURIED;
    assert_true(wal_put_segment(&b, 9, WAL_SEGMENT_SNAPSHOT));
    assert_true(wal_put_batch(&b, 11, 10, 123, 4));
    assert_true(wal_put_update(&b, &u));
    assert_true(wal_put_delete(&b, 8));
    assert_true(wal_put_pause(&b, 5 * NS_PER_SEC, T0, "a(b)", 4));
    assert_true(wal_put_next_id(&b, 1000));
    assert_true(wal_put_snapshot_end(&b, 9, 77));
    assert_true(wal_put_settings(&b, "mail", 4, "{\"target\":\"http\"}", 17));
    assert_true(wal_put_settings(&b, "mail", 4, NULL, 0));

    const uint8_t *p = (const uint8_t *)buf_head(&b);
    size_t n = b.len, off = 0;
    wal_rec_t r;
    assert_int_equal(wal_decode(p + off, n - off, &r), WAL_OK);
    assert_int_equal(r.type, WAL_SEGMENT);
    assert_int_equal(r.len, WAL_SEGMENT_SIZE);
    assert_int_equal(r.u.segment.seq, 9);
    assert_int_equal(r.u.segment.flags, WAL_SEGMENT_SNAPSHOT);
    off += r.len;
    assert_int_equal(wal_decode(p + off, n - off, &r), WAL_OK);
    assert_int_equal(r.type, WAL_BATCH);
    assert_int_equal(r.len, WAL_BATCH_SIZE);
    assert_int_equal(r.u.batch.seq, 11);
    assert_int_equal(r.u.batch.synced, 10);
    assert_int_equal(r.u.batch.bytes, 123);
    assert_int_equal(r.u.batch.count, 4);
    off += r.len;
    assert_int_equal(wal_decode(p + off, n - off, &r), WAL_OK);
    assert_int_equal(r.type, WAL_UPDATE);
    assert_int_equal(r.len, WAL_UPDATE_SIZE);
    assert_int_equal(r.u.update.id, 7);
    assert_int_equal(r.u.update.state, WAL_JOB_BURIED);
    assert_int_equal(r.u.update.counters.buries, 4);
    off += r.len;
    assert_int_equal(wal_decode(p + off, n - off, &r), WAL_OK);
    assert_int_equal(r.type, WAL_DELETE);
    assert_int_equal(r.len, WAL_DELETE_SIZE);
    assert_int_equal(r.u.id, 8);
    off += r.len;
    assert_int_equal(wal_decode(p + off, n - off, &r), WAL_OK);
    assert_int_equal(r.type, WAL_PAUSE);
    assert_int_equal(r.u.pause.pause_ns, 5 * NS_PER_SEC);
    assert_int_equal(r.u.pause.unpause_at, T0);
    assert_memory_equal(r.u.pause.tube, "a(b)", 4);
    off += r.len;
    assert_int_equal(wal_decode(p + off, n - off, &r), WAL_OK);
    assert_int_equal(r.type, WAL_NEXT_ID);
    assert_int_equal(r.u.next_id, 1000);
    off += r.len;
    assert_int_equal(wal_decode(p + off, n - off, &r), WAL_OK);
    assert_int_equal(r.type, WAL_SNAPSHOT_END);
    assert_int_equal(r.u.snapshot_end.covers, 9);
    assert_int_equal(r.u.snapshot_end.records, 77);
    off += r.len;
    assert_int_equal(wal_decode(p + off, n - off, &r), WAL_OK);
    assert_int_equal(r.type, WAL_SETTINGS);
    assert_int_equal(r.u.settings.tube_len, 4);
    assert_memory_equal(r.u.settings.tube, "mail", 4);
    assert_int_equal(r.u.settings.text_len, 17);
    assert_memory_equal(r.u.settings.text, "{\"target\":\"http\"}", 17);
    off += r.len;
    assert_int_equal(wal_decode(p + off, n - off, &r), WAL_OK);
    assert_int_equal(r.type, WAL_SETTINGS);
    assert_int_equal(r.u.settings.text_len, 0); /* cleared */
    assert_null(r.u.settings.text);
    off += r.len;
    assert_int_equal(off, n);
    buf_free(&b);
}

/* Little-endian on the wire whatever the host: check one field's bytes. */
static void test_layout_is_little_endian(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_true(wal_put_delete(&b, 0x0102030405060708ull));
    const uint8_t *p = (const uint8_t *)buf_head(&b);
    assert_int_equal(p[0], WAL_DELETE_SIZE); /* length, low byte first */
    assert_int_equal(p[1], 0);
    assert_int_equal(p[8], WAL_DELETE);
    assert_int_equal(p[9], WAL_VERSION);
    assert_int_equal(p[12], 0x08);
    assert_int_equal(p[19], 0x01);
    buf_free(&b);
}

static void test_every_prefix_is_truncated(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    wal_job_update_t u = sample_update(3);
    assert_true(wal_put_job(&b, &u, T0, 1, "default", 7, "hello", 5));
    const uint8_t *p = (const uint8_t *)buf_head(&b);
    wal_rec_t r;
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(wal_decode(p, n, &r), WAL_TRUNCATED);
    assert_int_equal(wal_decode(p, b.len, &r), WAL_OK);
    buf_free(&b);
}

static void test_every_flip_is_detected(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    wal_job_update_t u = sample_update(3);
    assert_true(wal_put_job(&b, &u, T0, 1, "default", 7, "hello", 5));
    uint8_t *p = (uint8_t *)buf_head(&b);
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            p[i] ^= (uint8_t)(1u << bit);
            wal_rec_t r;
            wal_decode_result_t res = wal_decode(p, b.len, &r);
            /* Never silently accepted: a changed length may also read as a
             * truncated record, or (length zeroed) as the end. */
            assert_true(res == WAL_CORRUPT || res == WAL_TRUNCATED || res == WAL_END);
            p[i] ^= (uint8_t)(1u << bit);
        }
    }
    buf_free(&b);
}

static void test_zeros_are_the_end(void **state) {
    (void)state;
    uint8_t z[64] = {0};
    wal_rec_t r;
    assert_int_equal(wal_decode(z, sizeof z, &r), WAL_END);
    assert_int_equal(wal_decode(z, 2, &r), WAL_TRUNCATED);
}

static void test_invalid_contents_refused(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    wal_job_update_t u = sample_update(0); /* id 0 is never valid */
    assert_true(wal_put_update(&b, &u));
    wal_rec_t r;
    assert_int_equal(wal_decode((uint8_t *)buf_head(&b), b.len, &r), WAL_CORRUPT);
    buf_reset(&b);
    u = sample_update(1);
    u.state = 2; /* "reserved" is never logged */
    assert_true(wal_put_update(&b, &u));
    assert_int_equal(wal_decode((uint8_t *)buf_head(&b), b.len, &r), WAL_CORRUPT);
    buf_reset(&b);
    u = sample_update(1);
    assert_true(wal_put_job(&b, &u, T0, 1, "-bad", 4, "", 0)); /* invalid tube name */
    assert_int_equal(wal_decode((uint8_t *)buf_head(&b), b.len, &r), WAL_CORRUPT);
    buf_reset(&b);
    assert_true(wal_put_settings(&b, "q", 1, "a\0b", 3)); /* settings are text */
    assert_int_equal(wal_decode((uint8_t *)buf_head(&b), b.len, &r), WAL_CORRUPT);
    buf_reset(&b);
    assert_true(wal_put_settings(&b, "", 0, "{}", 2)); /* a queue name is needed */
    assert_int_equal(wal_decode((uint8_t *)buf_head(&b), b.len, &r), WAL_CORRUPT);
    buf_free(&b);
}

/* ---- replay ---- */

/* A segment: header, then batches of puts of ids first..first+n-1, then a
 * delete of the first id, each batch of per_batch records, with `synced`
 * as an fdatasync-always writer would set it. Returns the offsets where
 * each batch starts in *starts (batches + 1 entries, the last = end). */
static void build_segment(buf_t *b, uint64_t seq, int batches, int per_batch,
                          size_t *starts) {
    assert_true(wal_put_segment(b, seq, 0));
    uint64_t id = 1;
    for (int k = 0; k < batches; k++) {
        starts[k] = b->len;
        size_t at = b->len;
        assert_true(wal_put_batch(b, 0, 0, 0, 0));
        for (int i = 0; i < per_batch; i++) {
            wal_job_update_t u = {.id = id, .pri = (uint32_t)id, .state = WAL_JOB_READY};
            char body[16];
            int n = snprintf(body, sizeof body, "job-%llu", (unsigned long long)id);
            assert_true(wal_put_job(b, &u, T0, 60, "default", 7, body, (uint32_t)n));
            id++;
        }
        wal_patch_batch(b, at, (uint64_t)k + 1, (uint64_t)k, (uint32_t)(b->len - at - WAL_BATCH_SIZE),
                        (uint32_t)per_batch);
    }
    starts[batches] = b->len;
}

static uint64_t replay(const uint8_t *p, size_t n, bool last, bool repair, wal_replay_result_t *res,
                       wal_replay_info_t *info) {
    engine_t *e = engine_new();
    assert_non_null(e);
    *res = wal_replay_buffer(p, n, 1, false, last, repair, e, info);
    engine_restore_done(e);
    uint64_t count = e->jobs.count;
    engine_free(e);
    return count;
}

static void test_replay_whole(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    size_t starts[6];
    build_segment(&b, 1, 5, 3, starts);
    wal_replay_result_t res;
    wal_replay_info_t info;
    assert_int_equal(replay((uint8_t *)buf_head(&b), b.len, true, false, &res, &info), 15);
    assert_int_equal(res, WAL_REPLAY_OK);
    assert_int_equal(info.last_batch, 5);
    assert_int_equal(info.records, 15);
    buf_free(&b);
}

/* A crash can stop a write anywhere in the last batch(es): cut the log at
 * every offset of its last two batches. Exactly the whole batches before
 * the cut are kept, and the cut is reported as torn - never as damage. */
static void test_torn_tail_at_every_offset(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    size_t starts[6];
    build_segment(&b, 1, 5, 3, starts);
    for (size_t cut = starts[3]; cut < b.len; cut++) {
        wal_replay_result_t res;
        wal_replay_info_t info;
        uint64_t n = replay((uint8_t *)buf_head(&b), cut, true, false, &res, &info);
        int whole = cut >= starts[4] ? 4 : 3;
        assert_int_equal(n, (uint64_t)whole * 3);
        if (cut == starts[3] || cut == starts[4]) {
            assert_int_equal(res, WAL_REPLAY_OK);
        } else {
            assert_int_equal(res, WAL_REPLAY_TORN);
            assert_int_equal(info.torn_at, starts[whole]);
        }
    }
    buf_free(&b);
}

/* A torn write may also leave zeros (preallocated space) after the cut. */
static void test_torn_tail_followed_by_zeros(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    size_t starts[4];
    build_segment(&b, 1, 3, 2, starts);
    size_t cut = (starts[2] + starts[3]) / 2;
    memset(buf_head(&b) + cut, 0, b.len - cut);
    wal_replay_result_t res;
    wal_replay_info_t info;
    assert_int_equal(replay((uint8_t *)buf_head(&b), b.len, true, false, &res, &info), 4);
    assert_int_equal(res, WAL_REPLAY_TORN);
    assert_int_equal(info.torn_at, starts[2]);
    buf_free(&b);
}

/* A flipped byte in any batch but the last is damage to acknowledged data
 * (a later batch says an earlier one was durable); in the last batch of the
 * newest segment it is indistinguishable from a torn write. */
static void test_flip_every_byte(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    size_t starts[5];
    build_segment(&b, 1, 4, 2, starts);
    uint8_t *p = (uint8_t *)buf_head(&b);
    for (size_t i = starts[0]; i < b.len; i++) {
        p[i] ^= 0x40;
        int batch = 0;
        while (i >= starts[batch + 1])
            batch++;
        wal_replay_result_t res;
        wal_replay_info_t info;
        replay(p, b.len, true, false, &res, &info);
        if (batch == 3)
            assert_int_equal(res, WAL_REPLAY_TORN);
        else
            assert_int_equal(res, WAL_REPLAY_DAMAGED);
        /* In an older segment any damage is damage. */
        replay(p, b.len, false, false, &res, &info);
        assert_int_equal(res, WAL_REPLAY_DAMAGED);
        assert_int_equal(info.damaged_at, starts[batch]);
        p[i] ^= 0x40;
    }
    buf_free(&b);
}

/* --repair-log skips the damaged batch and keeps the rest. */
static void test_repair_skips_damaged_batch(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    size_t starts[5];
    build_segment(&b, 1, 4, 2, starts);
    uint8_t *p = (uint8_t *)buf_head(&b);
    p[starts[1] + WAL_BATCH_SIZE + 20] ^= 0xff; /* inside batch 2's first record */
    wal_replay_result_t res;
    wal_replay_info_t info;
    assert_int_equal(replay(p, b.len, false, true, &res, &info), 6);
    assert_int_equal(res, WAL_REPLAY_OK);
    assert_true(info.repaired);
    assert_int_equal(info.damaged_at, starts[1]);
    assert_int_equal(info.dropped, starts[2] - starts[1]);
    buf_free(&b);
}

static void test_bad_header_refused(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    size_t starts[2];
    build_segment(&b, 1, 1, 1, starts);
    wal_replay_result_t res;
    wal_replay_info_t info;
    engine_t *e = engine_new();
    /* The file's header names sequence 1; asked for 2, it is refused. */
    res = wal_replay_buffer((uint8_t *)buf_head(&b), b.len, 2, false, false, false, e, &info);
    assert_int_equal(res, WAL_REPLAY_BAD_HEADER);
    /* A snapshot is not a segment and the other way round. */
    res = wal_replay_buffer((uint8_t *)buf_head(&b), b.len, 1, true, false, false, e, &info);
    assert_int_equal(res, WAL_REPLAY_BAD_HEADER);
    engine_free(e);
    buf_free(&b);
}

/* Replay applies set-operations: updates and deletes of jobs that are not
 * there are ignored, a second put of an id replaces the first. */
static void test_replay_is_idempotent(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_true(wal_put_segment(&b, 1, 0));
    size_t at = b.len;
    assert_true(wal_put_batch(&b, 0, 0, 0, 0));
    wal_job_update_t u = {.id = 5, .pri = 9, .state = WAL_JOB_READY};
    assert_true(wal_put_update(&b, &u)); /* absent: ignored */
    assert_true(wal_put_delete(&b, 6));  /* absent: ignored */
    assert_true(wal_put_job(&b, &u, T0, 60, "a", 1, "x", 1));
    u.pri = 3;
    assert_true(wal_put_job(&b, &u, T0, 60, "a", 1, "y", 1));
    u.state = WAL_JOB_BURIED;
    u.deadline = 17;
    assert_true(wal_put_update(&b, &u));
    assert_true(wal_put_next_id(&b, 100));
    wal_patch_batch(&b, at, 1, 0, (uint32_t)(b.len - at - WAL_BATCH_SIZE), 6);

    engine_t *e = engine_new();
    wal_replay_info_t info;
    assert_int_equal(wal_replay_buffer((uint8_t *)buf_head(&b), b.len, 1, false, true, false, e, &info),
                     WAL_REPLAY_OK);
    engine_restore_done(e);
    assert_int_equal(e->jobs.count, 1);
    job_t *j = engine_job_find(e, 5);
    assert_non_null(j);
    assert_int_equal(j->pri, 3);
    assert_int_equal(j->body[0], 'y');
    assert_int_equal(job_state(j), JOB_BURIED);
    assert_int_equal(e->bury_seq, 17);
    assert_int_equal(e->next_id, 100);
    engine_free(e);
    buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_round_trip),
        cmocka_unit_test(test_other_records_round_trip),
        cmocka_unit_test(test_layout_is_little_endian),
        cmocka_unit_test(test_every_prefix_is_truncated),
        cmocka_unit_test(test_every_flip_is_detected),
        cmocka_unit_test(test_zeros_are_the_end),
        cmocka_unit_test(test_invalid_contents_refused),
        cmocka_unit_test(test_replay_whole),
        cmocka_unit_test(test_torn_tail_at_every_offset),
        cmocka_unit_test(test_torn_tail_followed_by_zeros),
        cmocka_unit_test(test_flip_every_byte),
        cmocka_unit_test(test_repair_skips_damaged_batch),
        cmocka_unit_test(test_bad_header_refused),
        cmocka_unit_test(test_replay_is_idempotent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
