/* test_fcgi.c - the FastCGI push target (dispatch/fcgi.c) and its wire
 * format (dispatch/fcgi_proto.c).
 *
 * Three layers:
 *   - the encoders and decoder against an independent reading of the
 *     specification (a record walker written here), with every response
 *     decoded whole, cut in two at every byte, and one byte at a time;
 *   - the target against a fake FastCGI server on a unix socket in the
 *     same loop, for what php-fpm cannot be made to do on demand
 *     (malformed records, protocol statuses, a connection cut mid-record);
 *   - the target against a real php-fpm 8.2 started by the test in a
 *     temporary directory with PHP scripts written there: success with the
 *     payload and X-Defer headers checked byte for byte, error statuses,
 *     fatal errors, abort, huge output, request_terminate_timeout, TCP,
 *     concurrency, and php-fpm not running. Skipped when php-fpm is not
 *     installed (PHP_FPM names another binary).
 *
 * No assertion depends on timing; waits for an event have a generous
 * limit that only stops a hung test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "dispatch/fcgi.h"
#include "dispatch/fcgi_proto.h"
#include "util/buf.h"

/* A limit on any wait, only so that a hung test ends. */
#define HANG_MS 60000

/* ------------------------------------------------------------------ */
/* Helpers: a PRNG, an independent record walker. */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

typedef struct rec {
    uint8_t version, type;
    uint16_t id;
    const uint8_t *content;
    size_t len;
    uint8_t pad;
} rec_t;

/* Walk the complete records of p[0..n) as the specification lays them
 * out; returns how many, fills up to max of them, and the bytes they
 * cover in *used. */
static size_t walk(const uint8_t *p, size_t n, rec_t *out, size_t max, size_t *used) {
    size_t i = 0, count = 0;
    while (n - i >= 8) {
        size_t len = (size_t)p[i + 4] << 8 | p[i + 5];
        size_t pad = p[i + 6];
        if (n - i - 8 < len + pad)
            break;
        if (count < max)
            out[count] = (rec_t){.version = p[i],
                                 .type = p[i + 1],
                                 .id = (uint16_t)(p[i + 2] << 8 | p[i + 3]),
                                 .content = p + i + 8,
                                 .len = len,
                                 .pad = (uint8_t)pad};
        count++;
        i += 8 + len + pad;
    }
    if (used)
        *used = i;
    return count;
}

/* ------------------------------------------------------------------ */
/* Encoding */

static void test_header_and_padding(void **state) {
    (void)state;
    uint8_t h[8];
    fcgi_record_header(h, FCGI_STDIN, 0x1234, 0xabcd, 3);
    const uint8_t want[8] = {1, 5, 0x12, 0x34, 0xab, 0xcd, 3, 0};
    assert_memory_equal(h, want, 8);
    for (size_t n = 0; n < 40; n++) {
        uint8_t pad = fcgi_padding(n);
        assert_true(pad < 8);
        assert_int_equal((n + pad) % 8, 0);
    }
    assert_int_equal(fcgi_padding(FCGI_CHUNK), 0);
    assert_int_equal(FCGI_CHUNK % 8, 0);
    assert_true(FCGI_CHUNK <= FCGI_MAX_CONTENT);
}

static void test_begin_and_end_request_bytes(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_true(fcgi_put_begin_request(&b, 1, FCGI_RESPONDER, 0));
    const uint8_t begin[16] = {1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    assert_int_equal(b.len, 16);
    assert_memory_equal(buf_head(&b), begin, 16);
    buf_reset(&b);
    assert_true(fcgi_put_begin_request(&b, 0x0102, FCGI_FILTER, FCGI_KEEP_CONN));
    const uint8_t begin2[16] = {1, 1, 1, 2, 0, 8, 0, 0, 0, 3, 1, 0, 0, 0, 0, 0};
    assert_memory_equal(buf_head(&b), begin2, 16);
    buf_reset(&b);
    assert_true(fcgi_put_end_request(&b, 7, 0x01020304, FCGI_OVERLOADED));
    const uint8_t end[16] = {1, 3, 0, 7, 0, 8, 0, 0, 1, 2, 3, 4, 2, 0, 0, 0};
    assert_memory_equal(buf_head(&b), end, 16);
    buf_free(&b);
}

static void test_record_too_long_refused(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    static uint8_t big[FCGI_MAX_CONTENT + 1];
    assert_true(fcgi_put_record(&b, FCGI_STDOUT, 1, big, FCGI_MAX_CONTENT));
    assert_int_equal(b.len, 8 + FCGI_MAX_CONTENT + 1); /* padded to 65536 */
    buf_reset(&b);
    assert_false(fcgi_put_record(&b, FCGI_STDOUT, 1, big, FCGI_MAX_CONTENT + 1));
    buf_free(&b);
}

/* Every boundary of the one- and four-byte length forms. */
static void test_pair_lengths(void **state) {
    (void)state;
    const size_t lens[] = {0, 1, 126, 127, 128, 129, 255, 256, 65535, 65536, 1u << 20};
    char *mem = malloc((1u << 20) + 8);
    assert_non_null(mem);
    for (size_t i = 0; i < (1u << 20) + 8; i++)
        mem[i] = (char)rnd();
    for (size_t a = 0; a < sizeof lens / sizeof *lens; a++) {
        for (size_t v = 0; v < sizeof lens / sizeof *lens; v++) {
            if (lens[a] > 300 && lens[v] > 300)
                continue;
            buf_t b;
            buf_init(&b);
            assert_true(fcgi_put_pair(&b, mem, lens[a], mem + 7, lens[v]));
            const uint8_t *p = (const uint8_t *)buf_head(&b);
            size_t hdr = (lens[a] < 128 ? 1 : 4) + (lens[v] < 128 ? 1 : 4);
            assert_int_equal(b.len, hdr + lens[a] + lens[v]);
            /* The first length's form, as the specification draws it. */
            if (lens[a] < 128) {
                assert_int_equal(p[0], lens[a]);
            } else {
                assert_true(p[0] & 0x80);
                size_t got = ((size_t)(p[0] & 0x7f) << 24) | (size_t)p[1] << 16 |
                             (size_t)p[2] << 8 | p[3];
                assert_int_equal(got, lens[a]);
            }
            fcgi_pair_t pr;
            assert_int_equal(fcgi_pair_decode(p, b.len, &pr), b.len);
            assert_int_equal(pr.name_len, lens[a]);
            assert_int_equal(pr.value_len, lens[v]);
            if (lens[a])
                assert_memory_equal(pr.name, mem, lens[a]);
            if (lens[v])
                assert_memory_equal(pr.value, mem + 7, lens[v]);
            /* Every cut-short prefix is "incomplete", never a pair. */
            size_t step = b.len > 1000 ? 97 : 1;
            for (size_t k = 0; k < b.len; k += step)
                assert_int_equal(fcgi_pair_decode(p, k, &pr), 0);
            buf_free(&b);
        }
    }
    free(mem);
    buf_t b;
    buf_init(&b);
    assert_false(fcgi_put_pair(&b, "n", (size_t)FCGI_PAIR_LEN_MAX + 1, "v", 1));
    buf_free(&b);
}

/* PARAMS records: at most FCGI_CHUNK each, only whole pairs in a record
 * unless a pair is larger than a record, the stream ends with an empty
 * record, and the records' contents concatenate to the pairs. */
static void check_params_stream(const buf_t *pairs, const buf_t *out, bool all_fit) {
    rec_t recs[64];
    size_t used;
    size_t n = walk((const uint8_t *)buf_head(out), out->len, recs, 64, &used);
    assert_int_equal(used, out->len);
    assert_true(n >= 1 && n <= 64);
    buf_t cat;
    buf_init(&cat);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(recs[i].version, 1);
        assert_int_equal(recs[i].type, FCGI_PARAMS);
        assert_int_equal(recs[i].id, 1);
        assert_true(recs[i].len <= FCGI_CHUNK);
        assert_true(recs[i].len + recs[i].pad <= FCGI_MAX_CONTENT);
        assert_int_equal((recs[i].len + recs[i].pad) % 8, 0);
        assert_true(recs[i].len > 0 || i == n - 1);
        if (all_fit) {
            /* php-fpm decodes each record on its own. */
            size_t off = 0;
            while (off < recs[i].len) {
                fcgi_pair_t pr;
                size_t k = fcgi_pair_decode(recs[i].content + off, recs[i].len - off, &pr);
                assert_true(k > 0);
                off += k;
            }
        }
        assert_true(buf_append(&cat, recs[i].content, recs[i].len));
    }
    assert_int_equal(recs[n - 1].len, 0);
    assert_int_equal(cat.len, pairs->len);
    assert_memory_equal(buf_head(&cat), buf_head(pairs), cat.len);
    buf_free(&cat);
}

static void test_params_split_into_records(void **state) {
    (void)state;
    buf_t pairs, out;
    buf_init(&pairs);
    buf_init(&out);
    /* Nothing: just the empty record. */
    assert_true(fcgi_put_params(&out, 1, NULL, 0));
    check_params_stream(&pairs, &out, true);
    buf_reset(&out);
    /* Many pairs of all sizes, ~300 KB: several records, none cut. */
    char name[64], *value = malloc(40000);
    assert_non_null(value);
    memset(value, 'v', 40000);
    for (int i = 0; pairs.len < 300000; i++) {
        snprintf(name, sizeof name, "HTTP_X_%d", i);
        size_t vl = (size_t)(rnd() % (i % 5 == 0 ? 40000 : 200));
        assert_true(fcgi_put_pair(&pairs, name, strlen(name), value, vl));
    }
    assert_true(fcgi_put_params(&out, 1, buf_head(&pairs), pairs.len));
    check_params_stream(&pairs, &out, true);
    free(value);
    buf_free(&pairs);
    buf_free(&out);
}

static void test_params_pair_larger_than_a_record(void **state) {
    (void)state;
    buf_t pairs, out;
    buf_init(&pairs);
    buf_init(&out);
    size_t big = 200000;
    char *v = malloc(big);
    assert_non_null(v);
    for (size_t i = 0; i < big; i++)
        v[i] = (char)rnd();
    assert_true(fcgi_put_pair_str(&pairs, "A", "1"));
    assert_true(fcgi_put_pair(&pairs, "HUGE", 4, v, big));
    assert_true(fcgi_put_pair_str(&pairs, "B", "2"));
    assert_true(fcgi_put_params(&out, 1, buf_head(&pairs), pairs.len));
    check_params_stream(&pairs, &out, false);
    /* Not a sequence of whole pairs: refused. */
    buf_reset(&out);
    assert_false(fcgi_put_params(&out, 1, buf_head(&pairs), pairs.len - 1));
    free(v);
    buf_free(&pairs);
    buf_free(&out);
}

static void test_stream_records(void **state) {
    (void)state;
    const size_t lens[] = {0,     1,     7,     8,     9,      65527, 65528,
                           65529, 65535, 65536, 131056, 131057, 300001};
    uint8_t *data = malloc(300001);
    assert_non_null(data);
    for (size_t i = 0; i < 300001; i++)
        data[i] = (uint8_t)rnd();
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
        for (int end = 0; end < 2; end++) {
            buf_t out;
            buf_init(&out);
            assert_true(fcgi_put_stream(&out, FCGI_STDIN, 3, data, lens[k], end));
            rec_t recs[16];
            size_t used, n = walk((const uint8_t *)buf_head(&out), out.len, recs, 16, &used);
            assert_int_equal(used, out.len);
            assert_int_equal(n, (lens[k] + FCGI_CHUNK - 1) / FCGI_CHUNK + (size_t)end);
            size_t off = 0;
            for (size_t i = 0; i < n; i++) {
                assert_int_equal(recs[i].type, FCGI_STDIN);
                assert_int_equal(recs[i].id, 3);
                assert_int_equal((recs[i].len + recs[i].pad) % 8, 0);
                assert_true(recs[i].pad < 8);
                assert_true(recs[i].len <= FCGI_CHUNK);
                if (recs[i].len)
                    assert_memory_equal(recs[i].content, data + off, recs[i].len);
                off += recs[i].len;
            }
            assert_int_equal(off, lens[k]);
            if (end)
                assert_int_equal(recs[n - 1].len, 0);
            buf_free(&out);
        }
    }
    free(data);
}

/* ------------------------------------------------------------------ */
/* Decoding */

typedef struct decoded {
    buf_t out, err;
    bool ended, failed;
    uint32_t app_status;
    uint8_t protocol_status;
    size_t consumed;
    char error[160];
} decoded_t;

static void decoded_init(decoded_t *d) {
    memset(d, 0, sizeof *d);
    buf_init(&d->out);
    buf_init(&d->err);
}

static void decoded_free(decoded_t *d) {
    buf_free(&d->out);
    buf_free(&d->err);
}

/* Feed one piece; stops at END or ERROR as the target does. */
static void decode_piece(fcgi_decoder_t *dec, decoded_t *d, const uint8_t *p, size_t n) {
    while (!d->ended && !d->failed) {
        fcgi_event_t ev;
        size_t used = fcgi_decode(dec, p, n, &ev);
        assert_true(used <= n);
        d->consumed += used;
        p += used;
        n -= used;
        switch (ev.type) {
        case FCGI_EV_NONE:
            /* Nothing to report means the piece is used up. */
            assert_int_equal(n, 0);
            return;
        case FCGI_EV_STDOUT:
            assert_true(ev.len > 0);
            assert_true(buf_append(&d->out, ev.data, ev.len));
            break;
        case FCGI_EV_STDERR:
            assert_true(ev.len > 0);
            assert_true(buf_append(&d->err, ev.data, ev.len));
            break;
        case FCGI_EV_END:
            d->ended = true;
            d->app_status = ev.app_status;
            d->protocol_status = ev.protocol_status;
            assert_true(fcgi_decoder_ended(dec));
            break;
        case FCGI_EV_ERROR:
            d->failed = true;
            assert_non_null(ev.error);
            assert_true(strlen(ev.error) > 0);
            snprintf(d->error, sizeof d->error, "%s", ev.error);
            break;
        }
        if (!n)
            return;
    }
}

/* Decode p[0..n) cut at the given points (sorted, within 0..n). */
static void decode_cut(const uint8_t *p, size_t n, const size_t *cuts, size_t ncuts,
                       decoded_t *d) {
    fcgi_decoder_t dec;
    fcgi_decoder_init(&dec, 1);
    decoded_init(d);
    size_t from = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : n;
        decode_piece(&dec, d, p + from, to - from);
        from = to;
        if (d->ended || d->failed)
            break;
    }
}

static void assert_same_decoding(const decoded_t *a, const decoded_t *b) {
    assert_int_equal(a->ended, b->ended);
    assert_int_equal(a->failed, b->failed);
    assert_int_equal(a->out.len, b->out.len);
    if (a->out.len)
        assert_memory_equal(buf_head(&a->out), buf_head(&b->out), a->out.len);
    assert_int_equal(a->err.len, b->err.len);
    if (a->err.len)
        assert_memory_equal(buf_head(&a->err), buf_head(&b->err), a->err.len);
    assert_int_equal(a->app_status, b->app_status);
    assert_int_equal(a->protocol_status, b->protocol_status);
    assert_string_equal(a->error, b->error);
}

/* The same result whole, cut in two anywhere, and byte by byte. */
static void decode_all_ways(const uint8_t *p, size_t n, decoded_t *whole) {
    decode_cut(p, n, NULL, 0, whole);
    for (size_t c = 0; c <= n; c++) {
        decoded_t d;
        decode_cut(p, n, &c, 1, &d);
        assert_same_decoding(whole, &d);
        decoded_free(&d);
    }
    size_t *cuts = malloc((n + 1) * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t c = 0; c < n; c++)
        cuts[c] = c + 1;
    decoded_t d;
    decode_cut(p, n, cuts, n ? n - 1 : 0, &d);
    assert_same_decoding(whole, &d);
    decoded_free(&d);
    free(cuts);
}

/* A record with explicit padding (fcgi_put_record always pads minimally). */
static void put_raw(buf_t *b, uint8_t version, uint8_t type, uint16_t id, const void *c,
                    size_t len, uint8_t pad) {
    uint8_t h[8];
    fcgi_record_header(h, type, id, (uint16_t)len, pad);
    h[0] = version;
    assert_true(buf_append(b, h, 8));
    assert_true(buf_append(b, c, len));
    for (uint8_t i = 0; i < pad; i++)
        assert_true(buf_append(b, "\xee", 1));
}

static void test_decode_response_cut_everywhere(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    static const char head[] = "Status: 201 Created\r\nContent-type: text/plain\r\n\r\n";
    put_raw(&b, 1, FCGI_STDERR, 1, "PHP message: hi", 15, 255);
    put_raw(&b, 1, 200, 1, "future", 6, 2);          /* an unknown type: skipped */
    put_raw(&b, 1, 0, 9, "zero", 4, 0);              /* type 0: skipped */
    put_raw(&b, 1, FCGI_GET_VALUES_RESULT, 0, "\x0e\x01" "FCGI_MAX_CONNS1", 17, 7);
    put_raw(&b, 1, FCGI_UNKNOWN_TYPE, 0, "\x0c\0\0\0\0\0\0\0", 8, 0);
    put_raw(&b, 1, FCGI_STDOUT, 1, head, strlen(head), 0);
    put_raw(&b, 1, FCGI_STDOUT, 1, "body-1 ", 7, 1);
    put_raw(&b, 1, 12, 1, NULL, 0, 3);               /* empty unknown record */
    put_raw(&b, 1, FCGI_STDERR, 1, "; more", 6, 0);
    put_raw(&b, 1, FCGI_STDOUT, 1, "body-2", 6, 0);
    put_raw(&b, 1, FCGI_STDOUT, 1, NULL, 0, 0);      /* the end of STDOUT */
    put_raw(&b, 1, FCGI_STDERR, 1, NULL, 0, 0);
    /* php-fpm leaves the reserved bytes of END_REQUEST uninitialised. */
    put_raw(&b, 1, FCGI_END_REQUEST, 1, "\x00\x00\x01\x02\x00xyz", 8, 5);
    decoded_t d;
    decode_all_ways((const uint8_t *)buf_head(&b), b.len, &d);
    assert_true(d.ended);
    assert_false(d.failed);
    assert_int_equal(d.consumed, b.len - 5); /* END reported before its padding */
    assert_int_equal(d.app_status, 0x102);
    assert_int_equal(d.protocol_status, FCGI_REQUEST_COMPLETE);
    char want[256];
    snprintf(want, sizeof want, "%sbody-1 body-2", head);
    assert_int_equal(d.out.len, strlen(want));
    assert_memory_equal(buf_head(&d.out), want, d.out.len);
    assert_int_equal(d.err.len, 21);
    assert_memory_equal(buf_head(&d.err), "PHP message: hi; more", 21);
    decoded_free(&d);
    buf_free(&b);
}

/* The END_REQUEST padding may trail in a later read; anything past it is
 * an error. */
static void test_decode_after_end(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    put_raw(&b, 1, FCGI_END_REQUEST, 1, "\0\0\0\0\0\0\0\0", 8, 5);
    fcgi_decoder_t dec;
    fcgi_decoder_init(&dec, 1);
    fcgi_event_t ev;
    const uint8_t *p = (const uint8_t *)buf_head(&b);
    assert_int_equal(fcgi_decode(&dec, p, 16, &ev), 16);
    assert_int_equal(ev.type, FCGI_EV_END);
    assert_int_equal(fcgi_decode(&dec, p + 16, 0, &ev), 0);
    assert_int_equal(ev.type, FCGI_EV_NONE);
    assert_int_equal(fcgi_decode(&dec, p + 16, 3, &ev), 3);
    assert_int_equal(ev.type, FCGI_EV_NONE);
    assert_int_equal(fcgi_decode(&dec, p + 19, 2, &ev), 2);
    assert_int_equal(ev.type, FCGI_EV_NONE);
    assert_int_equal(fcgi_decode(&dec, (const uint8_t *)"x", 1, &ev), 0);
    assert_int_equal(ev.type, FCGI_EV_ERROR);
    assert_non_null(strstr(ev.error, "after END_REQUEST"));
    /* And it stays failed. */
    assert_int_equal(fcgi_decode(&dec, (const uint8_t *)"x", 1, &ev), 0);
    assert_int_equal(ev.type, FCGI_EV_ERROR);
    assert_int_equal(fcgi_decode(&dec, NULL, 0, &ev), 0);
    assert_int_equal(ev.type, FCGI_EV_ERROR);
    buf_free(&b);
}

static void expect_decode_error(const buf_t *b, const char *needle) {
    decoded_t d;
    decode_all_ways((const uint8_t *)buf_head(b), b->len, &d);
    assert_true(d.failed);
    assert_false(d.ended);
    if (!strstr(d.error, needle))
        fail_msg("decoder error '%s' does not mention '%s'", d.error, needle);
    decoded_free(&d);
}

static void test_decode_malformed(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    /* An HTTP server where php-fpm was expected. */
    assert_true(buf_puts(&b, "HTTP/1.1 400 Bad Request\r\n\r\n"));
    expect_decode_error(&b, "version 72");
    buf_reset(&b);
    put_raw(&b, 1, FCGI_STDOUT, 1, "ok", 2, 6);
    put_raw(&b, 2, FCGI_STDOUT, 1, "v2", 2, 6);
    expect_decode_error(&b, "version 2");
    buf_reset(&b);
    put_raw(&b, 1, FCGI_STDOUT, 2, "other request", 13, 3);
    expect_decode_error(&b, "request 2");
    buf_reset(&b);
    put_raw(&b, 1, FCGI_END_REQUEST, 0, "\0\0\0\0\0\0\0\0", 8, 0);
    expect_decode_error(&b, "request 0");
    buf_reset(&b);
    put_raw(&b, 1, FCGI_END_REQUEST, 1, "\0\0\0\0\0\0\0", 7, 1);
    expect_decode_error(&b, "not 8");
    buf_reset(&b);
    put_raw(&b, 1, FCGI_END_REQUEST, 1, "\0\0\0\0\0\0\0\0\0", 9, 7);
    expect_decode_error(&b, "not 8");
    buf_reset(&b);
    put_raw(&b, 1, FCGI_PARAMS, 1, "\x01\x01xy", 4, 4);
    expect_decode_error(&b, "PARAMS");
    buf_reset(&b);
    put_raw(&b, 1, FCGI_BEGIN_REQUEST, 1, "\0\1\0\0\0\0\0\0", 8, 0);
    expect_decode_error(&b, "BEGIN_REQUEST");
    buf_reset(&b);
    put_raw(&b, 1, FCGI_STDOUT, 1, "a", 1, 7);
    put_raw(&b, 1, FCGI_STDOUT, 1, NULL, 0, 0);
    put_raw(&b, 1, FCGI_STDOUT, 1, "late", 4, 4);
    expect_decode_error(&b, "after the end");
    buf_reset(&b);
    put_raw(&b, 1, FCGI_END_REQUEST, 1, "\0\0\0\0\0\0\0\0", 8, 0);
    put_raw(&b, 1, FCGI_STDOUT, 1, "late", 4, 4);
    /* The END comes first: decode_all_ways stops there, as the target. */
    decoded_t d;
    decode_all_ways((const uint8_t *)buf_head(&b), b.len, &d);
    assert_true(d.ended);
    decoded_free(&d);
    buf_free(&b);
}

/* Random bytes and random mutations of a good response, in random cuts:
 * the decoder never reads outside its input, never loops, and agrees with
 * itself however the input is cut. */
static void test_decode_garbage(void **state) {
    (void)state;
    buf_t good;
    buf_init(&good);
    put_raw(&good, 1, FCGI_STDERR, 1, "warn", 4, 4);
    put_raw(&good, 1, FCGI_STDOUT, 1, "Status: 200\r\n\r\nhello", 20, 4);
    put_raw(&good, 1, FCGI_END_REQUEST, 1, "\0\0\0\0\0\0\0\0", 8, 0);
    uint8_t *p = malloc(4096);
    assert_non_null(p);
    for (int iter = 0; iter < 3000; iter++) {
        size_t n;
        if (iter % 2) {
            n = (size_t)(rnd() % 600);
            for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)(rnd() % 4 ? rnd() % 16 : rnd());
            if (n > 0 && rnd() % 2)
                p[0] = 1;
        } else {
            n = good.len;
            memcpy(p, buf_head(&good), n);
            for (int k = (int)(rnd() % 4); k >= 0; k--)
                p[rnd() % n] = (uint8_t)rnd();
            n -= (size_t)(rnd() % 8);
        }
        /* Exact-size copy, so a read past the end is caught. */
        uint8_t *exact = malloc(n ? n : 1);
        assert_non_null(exact);
        memcpy(exact, p, n);
        decoded_t whole, cut;
        decode_cut(exact, n, NULL, 0, &whole);
        size_t cuts[8], nc = 0, at = 0;
        while (nc < 8 && n > at) {
            at += 1 + (size_t)(rnd() % (n - at));
            if (at >= n)
                break;
            cuts[nc++] = at;
        }
        decode_cut(exact, n, cuts, nc, &cut);
        assert_same_decoding(&whole, &cut);
        assert_true(whole.consumed <= n);
        decoded_free(&whole);
        decoded_free(&cut);
        free(exact);
    }
    free(p);
    buf_free(&good);
}

/* ------------------------------------------------------------------ */
/* The response head */

typedef struct head_case {
    const char *in;
    fcgi_head_result_t result;
    int status;
    size_t head_len; /* 0: the whole input */
} head_case_t;

static void test_parse_head(void **state) {
    (void)state;
    const head_case_t cases[] = {
        {"Status: 503 Service Unavailable\r\nContent-type: text/html\r\n\r\nbusy", FCGI_HEAD_OK,
         503, 60},
        {"Content-type: text/html\r\n\r\n", FCGI_HEAD_OK, 200, 0},
        {"\r\n", FCGI_HEAD_OK, 200, 0},
        {"\n", FCGI_HEAD_OK, 200, 0},
        {"Location: https://example.com/\r\n\r\n", FCGI_HEAD_OK, 302, 0},
        {"Location: /local\n\n", FCGI_HEAD_OK, 302, 0},
        {"Status: 201\r\nLocation: /x\r\n\r\n", FCGI_HEAD_OK, 201, 0},
        {"location: /x\r\nSTATUS: 404 Not Found\r\n\r\n", FCGI_HEAD_OK, 404, 0},
        {"status:204\r\n\r\n", FCGI_HEAD_OK, 204, 0},
        {"Status: \t 299 \t\r\n\r\n", FCGI_HEAD_OK, 299, 0},
        {"Status: 500\r\nStatus: 200\r\n\r\n", FCGI_HEAD_OK, 500, 0},
        {"X-Empty:\r\nX-A:b\r\n\r\n", FCGI_HEAD_OK, 200, 0},
        {"Status-Code: 500\r\n\r\n", FCGI_HEAD_OK, 200, 0},
        {"X: a\rb\r\n\r\n", FCGI_HEAD_BAD, 0, 0},
        {"", FCGI_HEAD_PARTIAL, 0, 0},
        {"Status: 500", FCGI_HEAD_PARTIAL, 0, 0},
        {"Status: 500\r\n", FCGI_HEAD_PARTIAL, 0, 0},
        {"Status: 500\r\n\r", FCGI_HEAD_PARTIAL, 0, 0},
        {"hello world\r\n\r\n", FCGI_HEAD_BAD, 0, 0},
        {"HTTP/1.1 200 OK\r\n\r\n", FCGI_HEAD_BAD, 0, 0},
        {" Status: 200\r\n\r\n", FCGI_HEAD_BAD, 0, 0},
        {": x\r\n\r\n", FCGI_HEAD_BAD, 0, 0},
        {"Bad Name: x\r\n\r\n", FCGI_HEAD_BAD, 0, 0},
        {"Status: abc\r\n\r\n", FCGI_HEAD_BAD, 0, 0},
        {"Status: 99\r\n\r\n", FCGI_HEAD_BAD, 0, 0},
        {"Status: 099\r\n\r\n", FCGI_HEAD_BAD, 0, 0},
        {"Status: 2000\r\n\r\n", FCGI_HEAD_BAD, 0, 0},
        {"Status: 20x\r\n\r\n", FCGI_HEAD_BAD, 0, 0},
        {"Status:\r\n\r\n", FCGI_HEAD_BAD, 0, 0},
        {"X: \x01\r\n\r\n", FCGI_HEAD_BAD, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const head_case_t *c = &cases[i];
        size_t n = strlen(c->in);
        char *exact = malloc(n ? n : 1);
        assert_non_null(exact);
        memcpy(exact, c->in, n);
        fcgi_head_t h;
        fcgi_head_result_t r = fcgi_parse_head(exact, n, &h);
        if (r != c->result)
            fail_msg("case %zu '%s': result %d, want %d", i, c->in, r, c->result);
        if (r == FCGI_HEAD_OK) {
            assert_int_equal(h.status, c->status);
            assert_int_equal(h.head_len, c->head_len ? c->head_len : n);
            /* Every shorter prefix is still partial. */
            for (size_t k = 0; k < h.head_len; k++) {
                fcgi_head_t h2;
                assert_int_equal(fcgi_parse_head(exact, k, &h2), FCGI_HEAD_PARTIAL);
            }
        }
        if (r == FCGI_HEAD_BAD)
            assert_non_null(h.error);
        free(exact);
    }
    /* A NUL in a header value. */
    fcgi_head_t h;
    assert_int_equal(fcgi_parse_head("X: a\0b\r\n\r\n", 10, &h), FCGI_HEAD_BAD);
    /* What php-fpm 8.2 really sends. */
    const char php[] = "Status: 500 Internal Server Error\r\nX-Powered-By: PHP/8.2.36\r\n"
                       "Content-type: text/html; charset=UTF-8\r\n\r\ncustom failure text";
    assert_int_equal(fcgi_parse_head(php, strlen(php), &h), FCGI_HEAD_OK);
    assert_int_equal(h.status, 500);
    assert_string_equal(php + h.head_len, "custom failure text");
    assert_string_equal(fcgi_protocol_status_name(FCGI_OVERLOADED), "overloaded");
}

/* ------------------------------------------------------------------ */
/* Running attempts in a loop */

typedef struct outcome {
    int calls;
    bool synchronous; /* done() ran inside start() */
    push_result_t res;
} outcome_t;

static bool in_start;

static void on_done(void *ctx, const push_result_t *r) {
    outcome_t *o = ctx;
    if (in_start)
        o->synchronous = true;
    o->calls++;
    o->res = *r;
}

static push_attempt_t *start_attempt(push_target_t *t, const push_request_t *req,
                                     outcome_t *o) {
    memset(o, 0, sizeof *o);
    in_start = true;
    push_attempt_t *a = fcgi_target_ops.start(t, req, on_done, o);
    in_start = false;
    assert_int_equal(o->calls, 0);
    return a;
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_tick(uv_timer_t *t) {
    (void)t;
}

/* Run the loop until *flag is set (another loop turn at least every
 * 10 ms, so conditions outside the loop are seen too). */
static void run_until(uv_loop_t *loop, const bool *flag, const char *what) {
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 10, 10);
    uint64_t deadline = now_ms() + HANG_MS;
    while (!*flag) {
        if (now_ms() > deadline)
            fail_msg("gave up waiting for %s", what);
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

typedef struct cond {
    bool met;
    bool (*test)(void *arg);
    void *arg;
    uv_check_t check;
} cond_t;

static void cond_check(uv_check_t *c) {
    cond_t *cd = c->data;
    if (!cd->met && cd->test(cd->arg))
        cd->met = true;
}

/* Run the loop until test(arg) holds. */
static void run_until_cond(uv_loop_t *loop, bool (*test)(void *), void *arg, const char *what) {
    cond_t cd = {.test = test, .arg = arg};
    uv_check_init(loop, &cd.check);
    cd.check.data = &cd;
    uv_check_start(&cd.check, cond_check);
    cd.met = test(arg);
    run_until(loop, &cd.met, what);
    uv_close((uv_handle_t *)&cd.check, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static bool outcome_done(void *arg) {
    return ((outcome_t *)arg)->calls > 0;
}

/* Start an attempt and run the loop until it is done. */
static void run_attempt(uv_loop_t *loop, push_target_t *t, const push_request_t *req,
                        outcome_t *o) {
    start_attempt(t, req, o);
    run_until_cond(loop, outcome_done, o, "the attempt to finish");
    assert_int_equal(o->calls, 1);
    assert_false(o->synchronous);
    if (getenv("FCGI_TEST_VERBOSE"))
        print_message("  -> ok=%d status=%d reason='%s'\n", o->res.ok, o->res.status,
                      o->res.reason);
    /* The reason is one clean line that fits. */
    assert_true(strlen(o->res.reason) < PUSH_REASON_MAX);
    for (const char *c = o->res.reason; *c; c++)
        assert_true((unsigned char)*c >= 0x20 && *c != 0x7f);
    if (o->res.ok)
        assert_string_equal(o->res.reason, "");
    else
        assert_true(strlen(o->res.reason) > 0);
}

static void expect_reason(const outcome_t *o, const char *needle) {
    if (!strstr(o->res.reason, needle))
        fail_msg("reason '%s' does not contain '%s'", o->res.reason, needle);
}

static void close_walk_cb(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Close the loop, checking that the target left no handle behind. */
static void loop_finish(uv_loop_t *loop) {
    uv_run(loop, UV_RUN_NOWAIT);
    int alive = 0;
    uv_walk(loop, close_walk_cb, &alive);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static push_request_t make_req(uint64_t id, const char *queue, uint32_t attempt,
                               const void *body, size_t len, bool json) {
    return (push_request_t){.task_id = id,
                            .queue = queue,
                            .attempt = attempt,
                            .body = body,
                            .body_len = len,
                            .body_is_json = json};
}

/* ------------------------------------------------------------------ */
/* A fake FastCGI server */

static char tmp_dir[64]; /* for the fake server's and stale sockets */

enum { REPLY_ON_REQUEST, REPLY_ON_ACCEPT, REPLY_NEVER };

typedef struct fake {
    uv_loop_t *loop;
    uv_pipe_t server;
    uv_pipe_t client;
    bool accepted, client_closing;
    buf_t got;
    bool request_done; /* the empty STDIN record arrived */
    bool eof;          /* the target's end closed */
    int when;
    bool close_after; /* close once the reply is written */
    const void *reply;
    size_t reply_len;
    bool replied;
    uv_write_t wreq;
    char path[128];
} fake_t;

static void fake_close_client(fake_t *f) {
    if (f->accepted && !f->client_closing) {
        f->client_closing = true;
        uv_close((uv_handle_t *)&f->client, NULL);
    }
}

static void fake_wrote(uv_write_t *w, int status) {
    fake_t *f = w->data;
    (void)status;
    if (f->close_after)
        fake_close_client(f);
}

static void fake_reply(fake_t *f) {
    if (f->replied || f->client_closing)
        return;
    f->replied = true;
    uv_buf_t b = uv_buf_init((char *)f->reply, (unsigned)f->reply_len);
    f->wreq.data = f;
    assert_int_equal(uv_write(&f->wreq, (uv_stream_t *)&f->client, &b, 1, fake_wrote), 0);
}

static void fake_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
    (void)h;
    static char chunk[65536];
    (void)s;
    *b = uv_buf_init(chunk, sizeof chunk);
}

static void fake_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    fake_t *f = s->data;
    if (n < 0) {
        f->eof = true;
        fake_close_client(f);
        return;
    }
    assert_true(buf_append(&f->got, b->base, (size_t)n));
    if (!f->request_done) {
        rec_t recs[64];
        size_t nrec = walk((const uint8_t *)buf_head(&f->got), f->got.len, recs, 64, NULL);
        for (size_t i = 0; i < nrec && i < 64; i++)
            if (recs[i].type == FCGI_STDIN && recs[i].len == 0)
                f->request_done = true;
        if (nrec > 64) {
            /* Big bodies: look at the last record only. */
            const uint8_t *p = (const uint8_t *)buf_head(&f->got);
            if (f->got.len >= 8 && p[f->got.len - 8 + 1] == FCGI_STDIN &&
                p[f->got.len - 8 + 4] == 0 && p[f->got.len - 8 + 5] == 0)
                f->request_done = true;
        }
        if (f->request_done && f->when == REPLY_ON_REQUEST)
            fake_reply(f);
    }
}

static void fake_accept(uv_stream_t *server, int status) {
    fake_t *f = server->data;
    assert_int_equal(status, 0);
    assert_false(f->accepted); /* one connection per attempt */
    uv_pipe_init(f->loop, &f->client, 0);
    f->client.data = f;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&f->client), 0);
    f->accepted = true;
    uv_read_start((uv_stream_t *)&f->client, fake_alloc, fake_read);
    if (f->when == REPLY_ON_ACCEPT)
        fake_reply(f);
}

/* Listen on tmp_dir/name. */
static void fake_start_at(fake_t *f, uv_loop_t *loop, const char *name, int when,
                          bool close_after, const void *reply, size_t reply_len) {
    memset(f, 0, sizeof *f);
    f->loop = loop;
    f->when = when;
    f->close_after = close_after;
    f->reply = reply;
    f->reply_len = reply_len;
    buf_init(&f->got);
    snprintf(f->path, sizeof f->path, "%s/%s", tmp_dir, name);
    unlink(f->path);
    uv_pipe_init(loop, &f->server, 0);
    f->server.data = f;
    assert_int_equal(uv_pipe_bind(&f->server, f->path), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->server, 8, fake_accept), 0);
}

static void fake_start(fake_t *f, uv_loop_t *loop, int when, bool close_after, const void *reply,
                       size_t reply_len) {
    fake_start_at(f, loop, "fake.sock", when, close_after, reply, reply_len);
}

static void fake_stop(fake_t *f) {
    fake_close_client(f);
    uv_close((uv_handle_t *)&f->server, NULL);
    uv_run(f->loop, UV_RUN_NOWAIT);
    buf_free(&f->got);
    unlink(f->path);
}

static push_target_t *fake_target(uv_loop_t *loop, const fake_t *f) {
    char addr[160], err[256];
    snprintf(addr, sizeof addr, "unix:%s", f->path);
    push_target_t *t = fcgi_target_new(loop, addr, "/srv/app/public/defer.php", err, sizeof err);
    if (!t)
        fail_msg("fcgi_target_new: %s", err);
    return t;
}

/* A response: the given STDOUT and STDERR, then END_REQUEST. */
static void make_reply(buf_t *b, const char *out, const char *err, uint8_t protocol_status) {
    buf_init(b);
    if (err && *err)
        assert_true(fcgi_put_stream(b, FCGI_STDERR, 1, err, strlen(err), false));
    if (out && *out)
        assert_true(fcgi_put_stream(b, FCGI_STDOUT, 1, out, strlen(out), false));
    assert_true(fcgi_put_end_request(b, 1, 0, protocol_status));
}

/* One attempt against a fake server answering `reply`. */
static void fake_exchange(const void *reply, size_t len, int when, bool close_after,
                          outcome_t *o, buf_t *request_seen) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    fake_t f;
    fake_start(&f, &loop, when, close_after, reply, len);
    push_target_t *t = fake_target(&loop, &f);
    push_request_t req = make_req(7, "mail", 1, "{\"to\":1}", 8, true);
    run_attempt(&loop, t, &req, o);
    if (request_seen) {
        buf_init(request_seen);
        assert_true(buf_append(request_seen, buf_head(&f.got), f.got.len));
    }
    fcgi_target_ops.free(t);
    fake_stop(&f);
    loop_finish(&loop);
}

static void test_fake_success_with_unknown_records(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    put_raw(&b, 1, 99, 1, "ignored", 7, 1);
    put_raw(&b, 1, FCGI_GET_VALUES_RESULT, 0, NULL, 0, 0);
    const char *out = "Status: 202 Accepted\r\nContent-type: text/plain\r\n\r\nqueued";
    put_raw(&b, 1, FCGI_STDOUT, 1, out, strlen(out), 0);
    put_raw(&b, 1, FCGI_END_REQUEST, 1, "\0\0\0\0\0\0\0\0", 8, 0);
    outcome_t o;
    fake_exchange(buf_head(&b), b.len, REPLY_ON_REQUEST, true, &o, NULL);
    assert_true(o.res.ok);
    assert_int_equal(o.res.status, 202);
    buf_free(&b);
}

/* What goes on the wire, read with the independent walker. */
static void test_fake_request_bytes(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    buf_t reply;
    make_reply(&reply, "Content-type: text/plain\r\n\r\nok", NULL, FCGI_REQUEST_COMPLETE);
    fake_t f;
    fake_start(&f, &loop, REPLY_ON_REQUEST, true, buf_head(&reply), reply.len);
    push_target_t *t = fake_target(&loop, &f);
    size_t blen = 3 * FCGI_CHUNK + 11;
    uint8_t *body = malloc(blen);
    assert_non_null(body);
    for (size_t i = 0; i < blen; i++)
        body[i] = (uint8_t)rnd();
    char queue[201];
    memset(queue, 'q', 200);
    queue[200] = '\0';
    push_request_t req = make_req(18446744073709551615ull, queue, 4000000000u, body, blen, false);
    outcome_t o;
    run_attempt(&loop, t, &req, &o);
    assert_true(o.res.ok);
    assert_int_equal(o.res.status, 200);

    const uint8_t *p = (const uint8_t *)buf_head(&f.got);
    size_t used;
    size_t n = walk(p, f.got.len, NULL, 0, &used);
    assert_int_equal(used, f.got.len);
    rec_t *recs = calloc(n, sizeof *recs);
    assert_non_null(recs);
    walk(p, f.got.len, recs, n, NULL);
    /* BEGIN_REQUEST: RESPONDER, the connection not kept. */
    assert_int_equal(recs[0].type, FCGI_BEGIN_REQUEST);
    assert_int_equal(recs[0].len, 8);
    assert_int_equal(recs[0].content[0] << 8 | recs[0].content[1], FCGI_RESPONDER);
    assert_int_equal(recs[0].content[2], 0);
    buf_t params, in;
    buf_init(&params);
    buf_init(&in);
    size_t i = 1;
    for (; i < n && recs[i].type == FCGI_PARAMS && recs[i].len; i++)
        assert_true(buf_append(&params, recs[i].content, recs[i].len));
    assert_int_equal(recs[i].type, FCGI_PARAMS);
    assert_int_equal(recs[i].len, 0);
    for (i++; i < n && recs[i].type == FCGI_STDIN && recs[i].len; i++) {
        assert_true(recs[i].len <= FCGI_CHUNK);
        assert_int_equal((recs[i].len + recs[i].pad) % 8, 0);
        assert_true(buf_append(&in, recs[i].content, recs[i].len));
    }
    assert_int_equal(i, n - 1);
    assert_int_equal(recs[i].type, FCGI_STDIN);
    assert_int_equal(recs[i].len, 0);
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(recs[k].version, 1);
        assert_int_equal(recs[k].id, 1);
    }
    assert_int_equal(in.len, blen);
    assert_memory_equal(buf_head(&in), body, blen);

    char clen[32];
    snprintf(clen, sizeof clen, "%zu", blen);
    const char *want[][2] = {
        {"SCRIPT_FILENAME", "/srv/app/public/defer.php"},
        {"SCRIPT_NAME", "/defer.php"},
        {"REQUEST_URI", "/defer.php"},
        {"DOCUMENT_ROOT", "/srv/app/public"},
        {"REQUEST_METHOD", "POST"},
        {"QUERY_STRING", ""},
        {"CONTENT_TYPE", "application/octet-stream"},
        {"CONTENT_LENGTH", clen},
        {"SERVER_PROTOCOL", "HTTP/1.1"},
        {"GATEWAY_INTERFACE", "CGI/1.1"},
        {"REMOTE_ADDR", "127.0.0.1"},
        {"SERVER_NAME", "localhost"},
        {"SERVER_PORT", "80"},
        {"HTTP_X_DEFER_TASK_ID", "18446744073709551615"},
        {"HTTP_X_DEFER_QUEUE", queue},
        {"HTTP_X_DEFER_ATTEMPT", "4000000000"},
    };
    bool seen[sizeof want / sizeof *want] = {0};
    bool software = false;
    size_t off = 0;
    while (off < params.len) {
        fcgi_pair_t pr;
        size_t k = fcgi_pair_decode((const uint8_t *)buf_head(&params) + off, params.len - off,
                                    &pr);
        assert_true(k > 0);
        off += k;
        for (size_t w = 0; w < sizeof want / sizeof *want; w++) {
            if (pr.name_len == strlen(want[w][0]) &&
                memcmp(pr.name, want[w][0], pr.name_len) == 0) {
                assert_false(seen[w]);
                seen[w] = true;
                if (pr.value_len != strlen(want[w][1]) ||
                    memcmp(pr.value, want[w][1], pr.value_len) != 0)
                    fail_msg("%s is '%.*s', want '%s'", want[w][0], (int)pr.value_len,
                             (const char *)pr.value, want[w][1]);
            }
        }
        if (pr.name_len == 15 && memcmp(pr.name, "SERVER_SOFTWARE", 15) == 0)
            software = pr.value_len >= 6 && memcmp(pr.value, "deferd", 6) == 0;
    }
    for (size_t w = 0; w < sizeof want / sizeof *want; w++)
        if (!seen[w])
            fail_msg("%s was not sent", want[w][0]);
    assert_true(software);

    buf_free(&params);
    buf_free(&in);
    free(recs);
    free(body);
    fcgi_target_ops.free(t);
    fake_stop(&f);
    buf_free(&reply);
    loop_finish(&loop);
}

static void test_fake_json_content_type(void **state) {
    (void)state;
    buf_t reply, seen;
    make_reply(&reply, "Status: 204 No Content\r\n\r\n", NULL, FCGI_REQUEST_COMPLETE);
    outcome_t o;
    fake_exchange(buf_head(&reply), reply.len, REPLY_ON_REQUEST, true, &o, &seen);
    assert_true(o.res.ok);
    assert_int_equal(o.res.status, 204);
    static const char pair[] = "\x0c\x10" "CONTENT_TYPEapplication/json";
    assert_non_null(memmem(buf_head(&seen), seen.len, pair, sizeof pair - 1));
    buf_free(&seen);
    buf_free(&reply);
}

static void test_fake_protocol_status(void **state) {
    (void)state;
    const struct {
        uint8_t ps;
        const char *needle;
    } cases[] = {{FCGI_OVERLOADED, "overloaded"},
                 {FCGI_CANT_MPX_CONN, "cannot multiplex"},
                 {FCGI_UNKNOWN_ROLE, "unknown role"},
                 {77, "protocol status 77"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        buf_t reply;
        make_reply(&reply, NULL, NULL, cases[i].ps);
        outcome_t o;
        fake_exchange(buf_head(&reply), reply.len, REPLY_ON_REQUEST, true, &o, NULL);
        assert_false(o.res.ok);
        expect_reason(&o, "refused the request");
        expect_reason(&o, cases[i].needle);
        buf_free(&reply);
    }
}

static void test_fake_not_fastcgi(void **state) {
    (void)state;
    const char *http = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    outcome_t o;
    fake_exchange(http, strlen(http), REPLY_ON_ACCEPT, true, &o, NULL);
    assert_false(o.res.ok);
    assert_int_equal(o.res.status, -1);
    expect_reason(&o, "malformed FastCGI");
    expect_reason(&o, "version 72");
}

static void test_fake_bad_head(void **state) {
    (void)state;
    buf_t reply;
    make_reply(&reply, "this is not a header\r\n\r\nbody", NULL, FCGI_REQUEST_COMPLETE);
    outcome_t o;
    fake_exchange(buf_head(&reply), reply.len, REPLY_ON_REQUEST, true, &o, NULL);
    assert_false(o.res.ok);
    expect_reason(&o, "malformed response head");
    buf_free(&reply);
    make_reply(&reply, NULL, NULL, FCGI_REQUEST_COMPLETE);
    fake_exchange(buf_head(&reply), reply.len, REPLY_ON_REQUEST, true, &o, NULL);
    assert_false(o.res.ok);
    expect_reason(&o, "without any output");
    buf_free(&reply);
    make_reply(&reply, "X-A: b\r\n", NULL, FCGI_REQUEST_COMPLETE);
    fake_exchange(buf_head(&reply), reply.len, REPLY_ON_REQUEST, true, &o, NULL);
    assert_false(o.res.ok);
    expect_reason(&o, "incomplete");
    buf_free(&reply);
}

/* Headers longer than what is kept of STDOUT. */
static void test_fake_head_too_long(void **state) {
    (void)state;
    buf_t out, reply;
    buf_init(&out);
    while (out.len < FCGI_KEEP_STDOUT + 100)
        assert_true(buf_puts(&out, "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"));
    assert_true(buf_puts(&out, "\r\nbody"));
    assert_true(buf_append(&out, "", 1));
    make_reply(&reply, buf_head(&out), NULL, FCGI_REQUEST_COMPLETE);
    outcome_t o;
    fake_exchange(buf_head(&reply), reply.len, REPLY_ON_REQUEST, true, &o, NULL);
    assert_false(o.res.ok);
    expect_reason(&o, "longer than 16 KiB");
    buf_free(&reply);
    buf_free(&out);
}

static void test_fake_closed_mid_response(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_true(fcgi_put_stream(&b, FCGI_STDERR, 1, "PHP message: PHP Warning:  slow", 31,
                                false));
    assert_true(fcgi_put_stream(&b, FCGI_STDOUT, 1, "Content-type: text/plain\r\n\r\npart", 33,
                                false));
    assert_true(buf_append(&b, "\x01\x06\x00\x01\x00\x10", 6)); /* a record cut short */
    outcome_t o;
    fake_exchange(buf_head(&b), b.len, REPLY_ON_REQUEST, true, &o, NULL);
    assert_false(o.res.ok);
    assert_int_equal(o.res.status, -1);
    expect_reason(&o, "php-fpm closed the connection before finishing the request (killed by "
                      "request_terminate_timeout, or crashed)");
    expect_reason(&o, "PHP Warning: slow");
    buf_free(&b);
}

/* php-fpm may answer and close before it has read the payload; the
 * answer is what counts, not the failed write. */
static void test_fake_answer_before_body(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    buf_t reply;
    make_reply(&reply, "Status: 200 OK\r\n\r\nearly", NULL, FCGI_REQUEST_COMPLETE);
    fake_t f;
    fake_start(&f, &loop, REPLY_ON_ACCEPT, true, buf_head(&reply), reply.len);
    push_target_t *t = fake_target(&loop, &f);
    size_t blen = 8u << 20;
    char *body = calloc(1, blen);
    assert_non_null(body);
    push_request_t req = make_req(1, "q", 1, body, blen, false);
    outcome_t o;
    run_attempt(&loop, t, &req, &o);
    assert_true(o.res.ok);
    assert_int_equal(o.res.status, 200);
    free(body);
    fcgi_target_ops.free(t);
    fake_stop(&f);
    buf_free(&reply);
    loop_finish(&loop);
}

static void test_fake_fatal_after_output(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    const char *out = "Content-type: text/html\r\n\r\npartial output";
    assert_true(fcgi_put_stream(&b, FCGI_STDOUT, 1, out, strlen(out), false));
    /* The mark cut across two records. */
    const char *e1 = "PHP message: PHP Fat", *e2 = "al error:  Uncaught Exception: late";
    assert_true(fcgi_put_stream(&b, FCGI_STDERR, 1, e1, strlen(e1), false));
    assert_true(fcgi_put_stream(&b, FCGI_STDERR, 1, e2, strlen(e2), false));
    assert_true(fcgi_put_end_request(&b, 1, 0, 0));
    outcome_t o;
    fake_exchange(buf_head(&b), b.len, REPLY_ON_REQUEST, true, &o, NULL);
    assert_false(o.res.ok);
    assert_int_equal(o.res.status, 200);
    expect_reason(&o, "php-fpm answered 200, but PHP reported a fatal error: PHP Fatal error: "
                      "Uncaught Exception: late");
    buf_free(&b);
    /* Warnings alone do not fail a 200. */
    make_reply(&b, "Status: 200\r\n\r\n", "PHP message: PHP Warning:  meh", 0);
    fake_exchange(buf_head(&b), b.len, REPLY_ON_REQUEST, true, &o, NULL);
    assert_true(o.res.ok);
    buf_free(&b);
}

/* The reason stays clean text: no control bytes, no invalid UTF-8, cut
 * to fit, and says where it was cut. */
static void test_fake_reason_is_clean(void **state) {
    (void)state;
    buf_t out, reply;
    buf_init(&out);
    buf_init(&reply);
    static const char odd[] = "Status: 500\r\n\r\nbad\x00\x01\xff\xfe \t\r\n  caf\xc3\xa9 \xe2\x82";
    assert_true(buf_append(&out, odd, sizeof odd - 1));
    for (int i = 0; i < 100; i++)
        assert_true(buf_puts(&out, "\xe2\x82\xac long line "));
    const char *err = "PHP message: first\nsecond\r\n";
    assert_true(fcgi_put_stream(&reply, FCGI_STDERR, 1, err, strlen(err), false));
    assert_true(fcgi_put_stream(&reply, FCGI_STDOUT, 1, buf_head(&out), out.len, false));
    assert_true(fcgi_put_end_request(&reply, 1, 0, 0));
    outcome_t o;
    fake_exchange(buf_head(&reply), reply.len, REPLY_ON_REQUEST, true, &o, NULL);
    assert_false(o.res.ok);
    assert_int_equal(o.res.status, 500);
    expect_reason(&o, "php-fpm answered 500: first second; output: bad ?? caf\xc3\xa9 "
                      "??\xe2\x82\xac long line \xe2\x82\xac long line");
    expect_reason(&o, "...");
    /* Valid UTF-8 throughout. */
    const unsigned char *r = (const unsigned char *)o.res.reason;
    for (size_t i = 0; r[i];) {
        size_t k = r[i] < 0x80 ? 1 : (r[i] >= 0xf0 ? 4 : r[i] >= 0xe0 ? 3 : 2);
        for (size_t j = 1; j < k; j++)
            assert_int_equal(r[i + j] & 0xc0, 0x80);
        i += k;
    }
    buf_free(&out);
    buf_free(&reply);
}

/* Output far beyond what is kept: memory stays bounded, the reason shows
 * the last of STDERR. */
static void test_fake_huge_output(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    const char *head = "Status: 503 Service Unavailable\r\n\r\n";
    assert_true(fcgi_put_stream(&b, FCGI_STDOUT, 1, head, strlen(head), false));
    char *chunk = malloc(FCGI_CHUNK);
    assert_non_null(chunk);
    memset(chunk, 'o', FCGI_CHUNK);
    for (int i = 0; i < 100; i++) {
        assert_true(fcgi_put_record(&b, FCGI_STDOUT, 1, chunk, FCGI_CHUNK));
        char line[64];
        int n = snprintf(line, sizeof line, "PHP message: PHP Notice:  line %d; ", i);
        memset(chunk, 'e', FCGI_CHUNK);
        memcpy(chunk + FCGI_CHUNK - n, line, (size_t)n);
        assert_true(fcgi_put_record(&b, FCGI_STDERR, 1, chunk, FCGI_CHUNK));
        memset(chunk, 'o', FCGI_CHUNK);
    }
    assert_true(fcgi_put_end_request(&b, 1, 0, 0));
    uv_loop_t loop;
    uv_loop_init(&loop);
    fake_t f;
    fake_start(&f, &loop, REPLY_ON_REQUEST, true, buf_head(&b), b.len);
    push_target_t *t = fake_target(&loop, &f);
    push_request_t req = make_req(1, "q", 1, "", 0, false);
    outcome_t o;
    run_attempt(&loop, t, &req, &o);
    assert_false(o.res.ok);
    assert_int_equal(o.res.status, 503);
    expect_reason(&o, "php-fpm answered 503: PHP Notice: line 99;");
    expect_reason(&o, "; output: ooo");
    fcgi_target_stats_t st;
    fcgi_target_stats(t, &st);
    assert_int_equal(st.stdout_bytes, strlen(head) + 100ull * FCGI_CHUNK);
    assert_int_equal(st.stderr_bytes, 100ull * FCGI_CHUNK);
    assert_true(st.kept_peak <= FCGI_KEEP_STDOUT + FCGI_KEEP_STDERR);
    assert_int_equal(st.started, 1);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.in_flight, 0);
    free(chunk);
    fcgi_target_ops.free(t);
    fake_stop(&f);
    buf_free(&b);
    loop_finish(&loop);
}

static bool fake_request_done(void *arg) {
    return ((fake_t *)arg)->request_done;
}

static bool fake_eof(void *arg) {
    return ((fake_t *)arg)->eof;
}

/* abort(): done() follows with a failure, and the server sees the
 * connection closed. */
static void test_fake_abort(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    fake_t f;
    fake_start(&f, &loop, REPLY_NEVER, false, NULL, 0);
    push_target_t *t = fake_target(&loop, &f);
    push_request_t req = make_req(1, "q", 1, "x", 1, false);
    outcome_t o;
    push_attempt_t *a = start_attempt(t, &req, &o);
    assert_non_null(a);
    run_until_cond(&loop, fake_request_done, &f, "the request to arrive");
    assert_int_equal(o.calls, 0);
    fcgi_target_ops.abort(a);
    assert_int_equal(o.calls, 0); /* not from inside abort() either */
    run_until_cond(&loop, outcome_done, &o, "done() after abort");
    assert_int_equal(o.calls, 1);
    assert_false(o.res.ok);
    assert_int_equal(o.res.status, -1);
    expect_reason(&o, "aborted after");
    expect_reason(&o, "while php-fpm was running the script");
    run_until_cond(&loop, fake_eof, &f, "the server to see the connection closed");
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(o.calls, 1);
    fcgi_target_ops.free(t);
    fake_stop(&f);
    loop_finish(&loop);
}

/* abort() while the connection is still being made, and right after
 * start(). */
static void test_abort_at_once(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    fake_t f;
    fake_start(&f, &loop, REPLY_NEVER, false, NULL, 0);
    push_target_t *t = fake_target(&loop, &f);
    push_request_t req = make_req(1, "q", 1, "x", 1, false);
    outcome_t o;
    push_attempt_t *a = start_attempt(t, &req, &o);
    assert_non_null(a);
    fcgi_target_ops.abort(a);
    assert_int_equal(o.calls, 0);
    run_until_cond(&loop, outcome_done, &o, "done() after abort");
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(o.calls, 1);
    assert_false(o.res.ok);
    expect_reason(&o, "while still connecting");
    fcgi_target_ops.free(t);
    fake_stop(&f);
    loop_finish(&loop);
}

/* Several attempts at once on one target, finishing in any order. */
static void test_fake_many_in_flight(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    buf_t reply;
    make_reply(&reply, "Status: 200\r\n\r\n", NULL, 0);
    enum { N = 6 };
    fake_t f[N];
    push_target_t *t[N];
    outcome_t o[N];
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "fake%d.sock", i);
        fake_start_at(&f[i], &loop, name, i % 2 ? REPLY_ON_REQUEST : REPLY_NEVER, true,
                      buf_head(&reply), reply.len);
        t[i] = fake_target(&loop, &f[i]);
    }
    push_request_t req = make_req(1, "q", 1, "x", 1, false);
    push_attempt_t *a[N];
    for (int i = 0; i < N; i++)
        a[i] = start_attempt(t[i], &req, &o[i]);
    for (int i = 0; i < N; i++)
        if (i % 2)
            run_until_cond(&loop, outcome_done, &o[i], "an answered attempt");
    for (int i = 0; i < N; i++) {
        if (i % 2 == 0) {
            run_until_cond(&loop, fake_request_done, &f[i], "a request");
            fcgi_target_ops.abort(a[i]);
            run_until_cond(&loop, outcome_done, &o[i], "an aborted attempt");
        }
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].res.ok, i % 2 == 1);
        fcgi_target_ops.free(t[i]);
        fake_stop(&f[i]);
    }
    buf_free(&reply);
    loop_finish(&loop);
}

/* ------------------------------------------------------------------ */
/* Connecting */

static void test_target_new_errors(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    const struct {
        const char *addr, *script, *needle;
    } bad[] = {
        {"", "/x.php", "no php-fpm address"},
        {"unix:", "/x.php", "empty or longer"},
        {"localhost", "/x.php", "neither unix:"},
        {"localhost:", "/x.php", "neither unix:"},
        {":9000", "/x.php", "neither unix:"},
        {"127.0.0.1:0", "/x.php", "port must be"},
        {"127.0.0.1:65536", "/x.php", "port must be"},
        {"127.0.0.1:90a", "/x.php", "port must be"},
        {"127.0.0.1:-1", "/x.php", "port must be"},
        {"[::1:9000", "/x.php", "brackets"},
        {"no-such-host.invalid:9000", "/x.php", "cannot resolve"},
        {"unix:/run/php.sock", "x.php", "absolute path"},
        {"unix:/run/php.sock", "/srv/", "directory"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        push_target_t *t = fcgi_target_new(&loop, bad[i].addr, bad[i].script, err, sizeof err);
        if (t)
            fail_msg("'%s' '%s' was accepted", bad[i].addr, bad[i].script);
        if (!strstr(err, bad[i].needle))
            fail_msg("'%s': error '%s' lacks '%s'", bad[i].addr, err, bad[i].needle);
    }
    char longpath[200] = "unix:/";
    memset(longpath + 6, 'a', 150);
    longpath[156] = '\0';
    assert_null(fcgi_target_new(&loop, longpath, "/x.php", err, sizeof err));
    const char *good[] = {"unix:/run/php/php8.2-fpm.sock", "127.0.0.1:9000", "[::1]:9000",
                          "localhost:9000"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        push_target_t *t = fcgi_target_new(&loop, good[i], "/index.php", err, sizeof err);
        if (!t)
            fail_msg("'%s' refused: %s", good[i], err);
        fcgi_target_ops.free(t);
    }
    assert_string_equal(fcgi_target_ops.name, "fastcgi");
    loop_finish(&loop);
}

static void connect_fails(const char *addr, const char *needle) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    push_target_t *t = fcgi_target_new(&loop, addr, "/x.php", err, sizeof err);
    if (!t)
        fail_msg("%s: %s", addr, err);
    push_request_t req = make_req(1, "q", 1, "x", 1, false);
    outcome_t o;
    run_attempt(&loop, t, &req, &o);
    assert_false(o.res.ok);
    assert_int_equal(o.res.status, -1);
    char want[256];
    snprintf(want, sizeof want, "cannot connect to php-fpm at %s: %s", addr, needle);
    expect_reason(&o, want);
    fcgi_target_stats_t st;
    fcgi_target_stats(t, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.in_flight, 0);
    fcgi_target_ops.free(t);
    loop_finish(&loop);
}

static void test_connect_refused(void **state) {
    (void)state;
    /* A socket file nobody listens on: what a stopped php-fpm leaves. */
    char path[100], addr[160];
    snprintf(path, sizeof path, "%s/stale.sock", tmp_dir);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
    close(fd);
    snprintf(addr, sizeof addr, "unix:%s", path);
    connect_fails(addr, "connection refused \u2014 is php-fpm running?");
    unlink(path);
    connect_fails(addr, "no such file or directory \u2014 is php-fpm running?");

    /* TCP: a port that was free a moment ago. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t sl = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &sl);
    close(fd);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", ntohs(sin.sin_port));
    connect_fails(addr, "connection refused \u2014 is php-fpm running?");
}

/* ------------------------------------------------------------------ */
/* Real php-fpm */

typedef struct fpm {
    bool available;
    bool running;
    pid_t pid;
    char dir[64];
    char main_addr[128], term_addr[128], tcp_addr[64];
    char script[128]; /* directory of the scripts, with a slash */
} fpm_t;

static fpm_t fpm;

static void write_file(const char *dir, const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

/* The whole file, or NULL. */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf_t b;
    buf_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_true(buf_append(&b, chunk, n));
    fclose(f);
    assert_true(buf_append(&b, "", 1));
    char *s = malloc(b.len);
    assert_non_null(s);
    memcpy(s, buf_head(&b), b.len);
    if (len)
        *len = b.len - 1;
    buf_free(&b);
    return s;
}

static const char *const php_scripts[][2] = {
    /* Writes the payload and what PHP saw of the request next to itself. */
    {"ok.php", "<?php\n"
               "$id = $_SERVER['HTTP_X_DEFER_TASK_ID'] ?? 'none';\n"
               "$h = getallheaders();\n"
               "file_put_contents(__DIR__ . \"/out/$id.body\", file_get_contents('php://input'));\n"
               "$meta = [\n"
               "  'id' => $id,\n"
               "  'queue' => $_SERVER['HTTP_X_DEFER_QUEUE'] ?? '-',\n"
               "  'attempt' => $_SERVER['HTTP_X_DEFER_ATTEMPT'] ?? '-',\n"
               "  'header' => $h['X-Defer-Task-Id'] ?? '-',\n"
               "  'method' => $_SERVER['REQUEST_METHOD'],\n"
               "  'type' => $_SERVER['CONTENT_TYPE'] ?? '-',\n"
               "  'length' => $_SERVER['CONTENT_LENGTH'] ?? '-',\n"
               "  'script' => $_SERVER['SCRIPT_NAME'],\n"
               "  'uri' => $_SERVER['REQUEST_URI'],\n"
               "  'query' => $_SERVER['QUERY_STRING'],\n"
               "  'software' => substr($_SERVER['SERVER_SOFTWARE'], 0, 6),\n"
               "  'remote' => $_SERVER['REMOTE_ADDR'],\n"
               "];\n"
               "$s = '';\n"
               "foreach ($meta as $k => $v) $s .= \"$k=$v\\n\";\n"
               "file_put_contents(__DIR__ . \"/out/$id.meta\", $s);\n"
               "echo \"ok $id\";\n"},
    {"fail500.php", "<?php\nhttp_response_code(500);\necho \"custom failure text\";\n"},
    {"exception.php",
     "<?php\nerror_log('a note first');\n"
     "throw new RuntimeException('boom from task ' . $_SERVER['HTTP_X_DEFER_TASK_ID']);\n"},
    {"undefined.php", "<?php\nno_such_function_here(1);\n"},
    {"late_fatal.php", "<?php\necho 'partial output';\nflush();\n"
                       "throw new LogicException('late boom');\n"},
    {"redirect.php", "<?php\nheader('Location: https://example.com/');\n"},
    {"created.php", "<?php\nhttp_response_code(201);\necho 'made';\n"},
    /* Runs until told the connection is gone, and says so in a file. */
    {"slow.php", "<?php\nignore_user_abort(true);\n"
                 "$id = $_SERVER['HTTP_X_DEFER_TASK_ID'];\n"
                 "touch(__DIR__ . \"/out/$id.started\");\n"
                 "for ($i = 0; $i < 6000; $i++) {\n"
                 "  echo str_repeat('.', 64);\n"
                 "  flush();\n"
                 "  if (connection_aborted()) {\n"
                 "    touch(__DIR__ . \"/out/$id.aborted\");\n"
                 "    exit;\n"
                 "  }\n"
                 "  usleep(20000);\n"
                 "}\n"},
    {"sleep.php", "<?php\ntouch(__DIR__ . '/out/sleep.started');\nsleep(120);\n"},
    /* 64 MiB of output, and 2.7 MB of log messages. */
    {"huge.php", "<?php\n$chunk = str_repeat('x', 65536);\n"
                 "for ($i = 0; $i < 1024; $i++) echo $chunk;\n"},
    {"noisy.php", "<?php\n$line = str_repeat('e', 900);\n"
                  "for ($i = 0; $i < 3000; $i++) error_log(\"line $i $line\");\n"
                  "echo 'done';\n"},
};

static bool connectable(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    bool ok = connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0;
    close(fd);
    return ok;
}

static bool tcp_connectable(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
    close(fd);
    return ok;
}

static void sleep_ms(int ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static const char *fpm_binary(void) {
    const char *b = getenv("PHP_FPM");
    return b && *b ? b : "/usr/sbin/php-fpm8.2";
}

static void fpm_stop(void) {
    if (!fpm.running)
        return;
    fpm.running = false;
    kill(fpm.pid, SIGQUIT);
    for (int i = 0; i < 500; i++) {
        if (waitpid(fpm.pid, NULL, WNOHANG) == fpm.pid)
            return;
        sleep_ms(20);
    }
    kill(fpm.pid, SIGKILL);
    waitpid(fpm.pid, NULL, 0);
}

static int fpm_setup(void **state) {
    (void)state;
    memset(&fpm, 0, sizeof fpm);
    if (access(fpm_binary(), X_OK) != 0)
        return 0; /* every test skips */
    fpm.available = true;
    snprintf(fpm.dir, sizeof fpm.dir, "/tmp/defer-fcgi-XXXXXX");
    if (!mkdtemp(fpm.dir)) {
        fprintf(stderr, "test_fcgi: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    char out[128];
    snprintf(out, sizeof out, "%s/out", fpm.dir);
    mkdir(out, 0777);
    for (size_t i = 0; i < sizeof php_scripts / sizeof *php_scripts; i++)
        write_file(fpm.dir, php_scripts[i][0], php_scripts[i][1]);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&sin, sizeof sin);
    socklen_t sl = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &sl);
    close(fd);
    uint16_t port = ntohs(sin.sin_port);

    const char *user = geteuid() == 0 ? "user = root\ngroup = root\n" : "";
    char pool_common[512];
    snprintf(pool_common, sizeof pool_common,
             "%spm = static\ncatch_workers_output = yes\ndecorate_workers_output = no\n"
             "php_admin_value[display_errors] = Off\nphp_admin_value[log_errors] = On\n"
             "php_admin_value[html_errors] = Off\nphp_admin_value[memory_limit] = 64M\n",
             user);
    char conf[4096];
    snprintf(conf, sizeof conf,
             "[global]\npid = %s/fpm.pid\nerror_log = %s/fpm.log\ndaemonize = no\n"
             "log_level = notice\n\n"
             "[main]\nlisten = %s/main.sock\npm.max_children = 3\n%s\n"
             "[term]\nlisten = %s/term.sock\npm.max_children = 1\n"
             "request_terminate_timeout = 1s\n%s\n"
             "[tcp]\nlisten = 127.0.0.1:%u\npm.max_children = 1\n%s\n",
             fpm.dir, fpm.dir, fpm.dir, pool_common, fpm.dir, pool_common, port, pool_common);
    write_file(fpm.dir, "fpm.conf", conf);
    snprintf(fpm.main_addr, sizeof fpm.main_addr, "unix:%s/main.sock", fpm.dir);
    snprintf(fpm.term_addr, sizeof fpm.term_addr, "unix:%s/term.sock", fpm.dir);
    snprintf(fpm.tcp_addr, sizeof fpm.tcp_addr, "127.0.0.1:%u", port);

    char confpath[128], outpath[128];
    snprintf(confpath, sizeof confpath, "%s/fpm.conf", fpm.dir);
    snprintf(outpath, sizeof outpath, "%s/fpm.out", fpm.dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int o = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o >= 0) {
            dup2(o, 1);
            dup2(o, 2);
        }
        /* -n: no php.ini, so the host's settings cannot change what the
         * scripts do; -R: allowed to run as root (in containers). */
        execl(fpm_binary(), fpm_binary(), "-F", "-n", "-y", confpath, "-R", (char *)NULL);
        _exit(127);
    }
    fpm.pid = pid;
    fpm.running = true;
    char main_sock[128], term_sock[128];
    snprintf(main_sock, sizeof main_sock, "%s/main.sock", fpm.dir);
    snprintf(term_sock, sizeof term_sock, "%s/term.sock", fpm.dir);
    for (int i = 0; i < 1500; i++) {
        if (connectable(main_sock) && connectable(term_sock) && tcp_connectable(port))
            return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fpm.running = false;
            break;
        }
        sleep_ms(20);
    }
    char *log = read_file(outpath, NULL);
    fprintf(stderr, "test_fcgi: php-fpm did not start; its output:\n%s\n", log ? log : "");
    free(log);
    fpm_stop();
    return -1;
}

static int fpm_teardown(void **state) {
    (void)state;
    fpm_stop();
    if (fpm.dir[0] && !getenv("FCGI_TEST_KEEP"))
        nftw(fpm.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

#define NEED_FPM()                                                                                \
    do {                                                                                          \
        if (!fpm.available) {                                                                     \
            print_message("php-fpm not installed (%s): skipped\n", fpm_binary());                 \
            skip();                                                                               \
        }                                                                                         \
        assert_true(fpm.running);                                                                 \
    } while (0)

static push_target_t *fpm_target(uv_loop_t *loop, const char *addr, const char *script) {
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/%s", fpm.dir, script);
    push_target_t *t = fcgi_target_new(loop, addr, path, err, sizeof err);
    if (!t)
        fail_msg("fcgi_target_new: %s", err);
    return t;
}

/* One attempt of `script` on the main pool. */
static void fpm_run(const char *script, const push_request_t *req, outcome_t *o) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    push_target_t *t = fpm_target(&loop, fpm.main_addr, script);
    run_attempt(&loop, t, req, o);
    fcgi_target_ops.free(t);
    loop_finish(&loop);
}

/* What ok.php recorded for task id: the payload and the request. */
static void check_ok_files(uint64_t id, const char *queue, uint32_t attempt, const void *body,
                           size_t len, bool json) {
    char path[256];
    snprintf(path, sizeof path, "%s/out/%llu.body", fpm.dir, (unsigned long long)id);
    size_t got_len;
    char *got = read_file(path, &got_len);
    assert_non_null(got);
    assert_int_equal(got_len, len);
    if (len)
        assert_memory_equal(got, body, len);
    free(got);
    snprintf(path, sizeof path, "%s/out/%llu.meta", fpm.dir, (unsigned long long)id);
    char *meta = read_file(path, NULL);
    assert_non_null(meta);
    char want[1024];
    snprintf(want, sizeof want,
             "id=%llu\nqueue=%s\nattempt=%u\nheader=%llu\nmethod=POST\ntype=%s\nlength=%zu\n"
             "script=/ok.php\nuri=/ok.php\nquery=\nsoftware=deferd\nremote=127.0.0.1\n",
             (unsigned long long)id, queue, attempt, (unsigned long long)id,
             json ? "application/json" : "application/octet-stream", len);
    assert_string_equal(meta, want);
    free(meta);
}

static void test_fpm_success(void **state) {
    (void)state;
    NEED_FPM();
    /* Binary payload spanning several STDIN records, every byte value. */
    size_t len = 200003;
    uint8_t *body = malloc(len);
    assert_non_null(body);
    for (size_t i = 0; i < len; i++)
        body[i] = (uint8_t)(i % 251 == 0 ? 0 : rnd());
    /* A queue name long enough for the 4-byte length form. */
    char queue[201];
    for (int i = 0; i < 200; i++)
        queue[i] = (char)('a' + i % 26);
    queue[200] = '\0';
    push_request_t req = make_req(1001, queue, 3, body, len, false);
    outcome_t o;
    fpm_run("ok.php", &req, &o);
    if (!o.res.ok)
        fail_msg("failed: %s", o.res.reason);
    assert_int_equal(o.res.status, 200);
    check_ok_files(1001, queue, 3, body, len, false);
    free(body);

    const char *json = "{\"user\":42,\"text\":\"h\\u00e9llo\"}";
    req = make_req(1002, "mail", 1, json, strlen(json), true);
    fpm_run("ok.php", &req, &o);
    assert_true(o.res.ok);
    check_ok_files(1002, "mail", 1, json, strlen(json), true);

    req = make_req(1003, "empty", 1, "", 0, false);
    fpm_run("ok.php", &req, &o);
    assert_true(o.res.ok);
    check_ok_files(1003, "empty", 1, "", 0, false);

    req = make_req(1004, "q", 1, "", 0, false);
    fpm_run("created.php", &req, &o);
    assert_true(o.res.ok);
    assert_int_equal(o.res.status, 201);
}

/* Payloads around every record boundary arrive intact. */
static void test_fpm_record_boundaries(void **state) {
    (void)state;
    NEED_FPM();
    const size_t lens[] = {1, 7, 8, 65527, 65528, 65529, 65535, 65536, 131056, 131057};
    uint8_t *body = malloc(131057);
    assert_non_null(body);
    for (size_t i = 0; i < 131057; i++)
        body[i] = (uint8_t)rnd();
    uv_loop_t loop;
    uv_loop_init(&loop);
    push_target_t *t = fpm_target(&loop, fpm.main_addr, "ok.php");
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
        push_request_t req = make_req(2000 + k, "b", 1, body, lens[k], false);
        outcome_t o;
        run_attempt(&loop, t, &req, &o);
        if (!o.res.ok)
            fail_msg("%zu bytes: %s", lens[k], o.res.reason);
        check_ok_files(2000 + k, "b", 1, body, lens[k], false);
    }
    fcgi_target_ops.free(t);
    loop_finish(&loop);
    free(body);
}

static void test_fpm_status_500(void **state) {
    (void)state;
    NEED_FPM();
    push_request_t req = make_req(3001, "q", 1, "x", 1, false);
    outcome_t o;
    fpm_run("fail500.php", &req, &o);
    assert_false(o.res.ok);
    assert_int_equal(o.res.status, 500);
    assert_string_equal(o.res.reason, "php-fpm answered 500: custom failure text");

    fpm_run("redirect.php", &req, &o);
    assert_false(o.res.ok);
    assert_int_equal(o.res.status, 302);
    assert_string_equal(o.res.reason, "php-fpm answered 302 with no output");
}

static void test_fpm_uncaught_exception(void **state) {
    (void)state;
    NEED_FPM();
    push_request_t req = make_req(3002, "q", 1, "x", 1, false);
    outcome_t o;
    fpm_run("exception.php", &req, &o);
    assert_false(o.res.ok);
    assert_int_equal(o.res.status, 500);
    expect_reason(&o, "php-fpm answered 500: PHP Fatal error: Uncaught RuntimeException: boom "
                      "from task 3002 in ");
    expect_reason(&o, "exception.php:3");

    fpm_run("undefined.php", &req, &o);
    assert_false(o.res.ok);
    assert_int_equal(o.res.status, 500);
    expect_reason(&o, "Call to undefined function no_such_function_here()");
}

/* Once output is flushed PHP can no longer say 500; the fatal error
 * message on STDERR still fails the attempt. */
static void test_fpm_fatal_after_output(void **state) {
    (void)state;
    NEED_FPM();
    push_request_t req = make_req(3003, "q", 1, "x", 1, false);
    outcome_t o;
    fpm_run("late_fatal.php", &req, &o);
    assert_false(o.res.ok);
    assert_int_equal(o.res.status, 200);
    expect_reason(&o, "but PHP reported a fatal error: PHP Fatal error: Uncaught "
                      "LogicException: late boom");
}

static void test_fpm_missing_script(void **state) {
    (void)state;
    NEED_FPM();
    push_request_t req = make_req(3004, "q", 1, "x", 1, false);
    outcome_t o;
    fpm_run("no-such-script.php", &req, &o);
    assert_false(o.res.ok);
    assert_int_equal(o.res.status, 404);
    assert_string_equal(o.res.reason,
                        "php-fpm answered 404: Primary script unknown; output: File not found.");
}

typedef struct file_wait {
    char path[256];
} file_wait_t;

static bool file_exists(void *arg) {
    return access(((file_wait_t *)arg)->path, F_OK) == 0;
}

/* abort() on a running script: done() with a failure, and the script
 * (ignoring user aborts) sees the connection gone. */
static void test_fpm_abort_slow_script(void **state) {
    (void)state;
    NEED_FPM();
    uv_loop_t loop;
    uv_loop_init(&loop);
    push_target_t *t = fpm_target(&loop, fpm.main_addr, "slow.php");
    push_request_t req = make_req(4001, "q", 1, "x", 1, false);
    outcome_t o;
    push_attempt_t *a = start_attempt(t, &req, &o);
    assert_non_null(a);
    file_wait_t started, aborted;
    snprintf(started.path, sizeof started.path, "%s/out/4001.started", fpm.dir);
    snprintf(aborted.path, sizeof aborted.path, "%s/out/4001.aborted", fpm.dir);
    run_until_cond(&loop, file_exists, &started, "slow.php to start");
    assert_int_equal(o.calls, 0);
    fcgi_target_ops.abort(a);
    run_until_cond(&loop, outcome_done, &o, "done() after abort");
    assert_int_equal(o.calls, 1);
    assert_false(o.res.ok);
    expect_reason(&o, "aborted after");
    expect_reason(&o, "while php-fpm was running the script");
    run_until_cond(&loop, file_exists, &aborted, "the script to see the connection closed");
    fcgi_target_stats_t st;
    fcgi_target_stats(t, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.in_flight, 0);
    fcgi_target_ops.free(t);
    loop_finish(&loop);
}

static void test_fpm_huge_output(void **state) {
    (void)state;
    NEED_FPM();
    uv_loop_t loop;
    uv_loop_init(&loop);
    push_target_t *t = fpm_target(&loop, fpm.main_addr, "huge.php");
    push_request_t req = make_req(5001, "q", 1, "", 0, false);
    outcome_t o;
    run_attempt(&loop, t, &req, &o);
    if (!o.res.ok)
        fail_msg("failed: %s", o.res.reason);
    fcgi_target_stats_t st;
    fcgi_target_stats(t, &st);
    assert_true(st.stdout_bytes >= 64ull << 20);
    assert_true(st.kept_peak <= FCGI_KEEP_STDOUT + FCGI_KEEP_STDERR);
    fcgi_target_ops.free(t);

    t = fpm_target(&loop, fpm.main_addr, "noisy.php");
    run_attempt(&loop, t, &req, &o);
    if (!o.res.ok)
        fail_msg("failed: %s", o.res.reason);
    fcgi_target_stats(t, &st);
    assert_true(st.stderr_bytes >= 3000ull * 900);
    assert_true(st.kept_peak <= FCGI_KEEP_STDOUT + FCGI_KEEP_STDERR);
    fcgi_target_ops.free(t);
    loop_finish(&loop);
}

/* request_terminate_timeout: php-fpm kills the worker; on the wire the
 * connection just ends (EOF, or a reset when input was left unread). */
static void test_fpm_terminate_timeout(void **state) {
    (void)state;
    NEED_FPM();
    uv_loop_t loop;
    uv_loop_init(&loop);
    push_target_t *t = fpm_target(&loop, fpm.term_addr, "sleep.php");
    push_request_t req = make_req(6001, "q", 1, "x", 1, false);
    outcome_t o;
    run_attempt(&loop, t, &req, &o);
    assert_false(o.res.ok);
    assert_int_equal(o.res.status, -1);
    expect_reason(&o, "before finishing the request (killed by request_terminate_timeout, or "
                      "crashed)");
    fcgi_target_ops.free(t);
    loop_finish(&loop);
}

static void test_fpm_tcp(void **state) {
    (void)state;
    NEED_FPM();
    uv_loop_t loop;
    uv_loop_init(&loop);
    push_target_t *t = fpm_target(&loop, fpm.tcp_addr, "ok.php");
    const char *body = "over tcp\0with a NUL";
    push_request_t req = make_req(7001, "tcp", 2, body, 19, false);
    outcome_t o;
    run_attempt(&loop, t, &req, &o);
    if (!o.res.ok)
        fail_msg("failed: %s", o.res.reason);
    check_ok_files(7001, "tcp", 2, body, 19, false);
    fcgi_target_ops.free(t);
    loop_finish(&loop);
}

/* More attempts at once than the pool has workers: the rest wait in
 * php-fpm's listen queue, and every one succeeds. */
static void test_fpm_concurrent(void **state) {
    (void)state;
    NEED_FPM();
    enum { N = 10 };
    uv_loop_t loop;
    uv_loop_init(&loop);
    push_target_t *t = fpm_target(&loop, fpm.main_addr, "ok.php");
    outcome_t o[N];
    char bodies[N][32];
    push_request_t req[N];
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], sizeof bodies[i], "payload number %d", i);
        req[i] = make_req(8000 + (uint64_t)i, "many", 1, bodies[i], strlen(bodies[i]), false);
        start_attempt(t, &req[i], &o[i]);
    }
    fcgi_target_stats_t st;
    fcgi_target_stats(t, &st);
    assert_int_equal(st.in_flight, N);
    for (int i = 0; i < N; i++)
        run_until_cond(&loop, outcome_done, &o[i], "a concurrent attempt");
    for (int i = 0; i < N; i++) {
        assert_int_equal(o[i].calls, 1);
        if (!o[i].res.ok)
            fail_msg("attempt %d: %s", i, o[i].res.reason);
        check_ok_files(8000 + (uint64_t)i, "many", 1, bodies[i], strlen(bodies[i]), false);
    }
    fcgi_target_stats(t, &st);
    assert_int_equal(st.started, N);
    assert_int_equal(st.succeeded, N);
    assert_int_equal(st.in_flight, 0);
    fcgi_target_ops.free(t);
    loop_finish(&loop);
}

/* Last: stop php-fpm, then try. */
static void test_fpm_not_running(void **state) {
    (void)state;
    NEED_FPM();
    fpm_stop();
    uv_loop_t loop;
    uv_loop_init(&loop);
    push_target_t *t = fpm_target(&loop, fpm.main_addr, "ok.php");
    push_request_t req = make_req(9001, "q", 1, "x", 1, false);
    outcome_t o;
    run_attempt(&loop, t, &req, &o);
    assert_false(o.res.ok);
    assert_int_equal(o.res.status, -1);
    char want[256];
    snprintf(want, sizeof want, "cannot connect to php-fpm at %s: ", fpm.main_addr);
    expect_reason(&o, want);
    expect_reason(&o, " \u2014 is php-fpm running?");
    fcgi_target_ops.free(t);
    loop_finish(&loop);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/defer-fcgi-t-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest proto[] = {
        cmocka_unit_test(test_header_and_padding),
        cmocka_unit_test(test_begin_and_end_request_bytes),
        cmocka_unit_test(test_record_too_long_refused),
        cmocka_unit_test(test_pair_lengths),
        cmocka_unit_test(test_params_split_into_records),
        cmocka_unit_test(test_params_pair_larger_than_a_record),
        cmocka_unit_test(test_stream_records),
        cmocka_unit_test(test_decode_response_cut_everywhere),
        cmocka_unit_test(test_decode_after_end),
        cmocka_unit_test(test_decode_malformed),
        cmocka_unit_test(test_decode_garbage),
        cmocka_unit_test(test_parse_head),
    };
    const struct CMUnitTest target[] = {
        cmocka_unit_test(test_target_new_errors),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_fake_success_with_unknown_records),
        cmocka_unit_test(test_fake_request_bytes),
        cmocka_unit_test(test_fake_json_content_type),
        cmocka_unit_test(test_fake_protocol_status),
        cmocka_unit_test(test_fake_not_fastcgi),
        cmocka_unit_test(test_fake_bad_head),
        cmocka_unit_test(test_fake_head_too_long),
        cmocka_unit_test(test_fake_closed_mid_response),
        cmocka_unit_test(test_fake_answer_before_body),
        cmocka_unit_test(test_fake_fatal_after_output),
        cmocka_unit_test(test_fake_reason_is_clean),
        cmocka_unit_test(test_fake_huge_output),
        cmocka_unit_test(test_fake_abort),
        cmocka_unit_test(test_abort_at_once),
        cmocka_unit_test(test_fake_many_in_flight),
    };
    const struct CMUnitTest php_fpm[] = {
        cmocka_unit_test(test_fpm_success),
        cmocka_unit_test(test_fpm_record_boundaries),
        cmocka_unit_test(test_fpm_status_500),
        cmocka_unit_test(test_fpm_uncaught_exception),
        cmocka_unit_test(test_fpm_fatal_after_output),
        cmocka_unit_test(test_fpm_missing_script),
        cmocka_unit_test(test_fpm_abort_slow_script),
        cmocka_unit_test(test_fpm_huge_output),
        cmocka_unit_test(test_fpm_terminate_timeout),
        cmocka_unit_test(test_fpm_tcp),
        cmocka_unit_test(test_fpm_concurrent),
        cmocka_unit_test(test_fpm_not_running),
    };
    int failed = cmocka_run_group_tests_name("fcgi_proto", proto, NULL, NULL);
    failed += cmocka_run_group_tests_name("fcgi_target", target, NULL, NULL);
    failed += cmocka_run_group_tests_name("fcgi_php_fpm", php_fpm, fpm_setup, fpm_teardown);
    nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed ? 1 : 0;
}
