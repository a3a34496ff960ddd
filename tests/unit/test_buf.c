/* test_buf.c - unit tests for util/buf.c (growable byte buffer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/buf.h"

/* The unconsumed bytes must equal exp[0..n). */
static void assert_buf_is(const buf_t *b, const char *exp, size_t n) {
    assert_int_equal(b->len, n);
    if (n)
        assert_memory_equal(buf_head(b), exp, n);
    assert_true(b->off + b->len <= b->cap);
}

static void test_init_is_empty(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.off, 0);
    assert_int_equal(b.cap, 0);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
}

static void test_append_and_grow(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_true(buf_append(&b, "hello", 5));
    assert_buf_is(&b, "hello", 5);
    assert_true(b.cap >= 5);
    assert_true(buf_append(&b, " world", 6));
    assert_buf_is(&b, "hello world", 11);

    /* Grow well past the first allocation; contents must survive every
     * reallocation. */
    char *ref = malloc(100000);
    assert_non_null(ref);
    memcpy(ref, "hello world", 11);
    size_t n = 11;
    for (int i = 0; n + 7 <= 100000; i++) {
        char chunk[7];
        for (int k = 0; k < 7; k++)
            chunk[k] = (char)('a' + (i + k) % 26);
        assert_true(buf_append(&b, chunk, 7));
        memcpy(ref + n, chunk, 7);
        n += 7;
    }
    assert_buf_is(&b, ref, n);
    free(ref);
    buf_free(&b);
}

static void test_append_zero_bytes(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_true(buf_append(&b, NULL, 0));
    assert_int_equal(b.len, 0);
    assert_true(buf_append(&b, "x", 1));
    assert_true(buf_append(&b, "", 0));
    assert_buf_is(&b, "x", 1);
    buf_free(&b);
}

static void test_binary_safe(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    const char bin[] = {'a', '\0', '\r', '\n', (char)0xff, '\0'};
    assert_true(buf_append(&b, bin, sizeof bin));
    assert_buf_is(&b, bin, sizeof bin);
    buf_free(&b);
}

static void test_append_u64(void **state) {
    (void)state;
    static const struct {
        uint64_t v;
        const char *s;
    } cases[] = {
        {0, "0"},
        {1, "1"},
        {9, "9"},
        {10, "10"},
        {99, "99"},
        {100, "100"},
        {1234567890, "1234567890"},
        {UINT32_MAX, "4294967295"},
        {UINT64_C(4294967296), "4294967296"},
        {UINT64_C(10000000000000000000), "10000000000000000000"},
        {UINT64_MAX, "18446744073709551615"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf_t b;
        buf_init(&b);
        assert_true(buf_append(&b, "<", 1));
        assert_true(buf_append_u64(&b, cases[i].v));
        assert_true(buf_append(&b, ">", 1));
        char exp[32];
        int n = snprintf(exp, sizeof exp, "<%s>", cases[i].s);
        assert_buf_is(&b, exp, (size_t)n);
        buf_free(&b);
    }
}

static void test_appendf_small_and_large(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_true(buf_appendf(&b, "%s-%d-%u", "abc", -5, 7u));
    assert_buf_is(&b, "abc--5-7", 8);

    /* Exactly at and around the 256-byte stack buffer boundary. */
    for (size_t want = 250; want <= 262; want++) {
        buf_t c;
        buf_init(&c);
        assert_true(buf_append(&c, "pre", 3));
        char *s = malloc(want + 1);
        assert_non_null(s);
        for (size_t i = 0; i < want; i++)
            s[i] = (char)('A' + i % 26);
        s[want] = '\0';
        assert_true(buf_appendf(&c, "%s", s));
        assert_int_equal(c.len, want + 3);
        assert_memory_equal(buf_head(&c), "pre", 3);
        assert_memory_equal(buf_head(&c) + 3, s, want);
        free(s);
        buf_free(&c);
    }

    /* A long formatted string with several arguments. */
    char big[5000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    buf_reset(&b);
    assert_true(buf_appendf(&b, "[%s|%d|%s]", big, 42, big));
    size_t exp_len = 1 + 4999 + 1 + 2 + 1 + 4999 + 1;
    assert_int_equal(b.len, exp_len);
    assert_int_equal(buf_head(&b)[0], '[');
    assert_memory_equal(buf_head(&b) + 1 + 4999, "|42|", 4);
    assert_int_equal(buf_head(&b)[exp_len - 1], ']');
    buf_free(&b);
}

static bool call_vappendf(buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    bool ok = buf_vappendf(b, fmt, ap);
    va_end(ap);
    return ok;
}

static void test_vappendf(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_true(call_vappendf(&b, "%d %s", 12, "x"));
    assert_buf_is(&b, "12 x", 4);
    char big[1000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_true(call_vappendf(&b, "%s!", big));
    assert_int_equal(b.len, 4 + 999 + 1);
    assert_int_equal(buf_head(&b)[b.len - 1], '!');
    assert_int_equal(buf_head(&b)[4], 'q');
    buf_free(&b);
}

static void test_consume(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_true(buf_append(&b, "0123456789", 10));
    buf_consume(&b, 3);
    assert_buf_is(&b, "3456789", 7);
    assert_int_equal(b.off, 3);
    buf_consume(&b, 0);
    assert_buf_is(&b, "3456789", 7);
    buf_consume(&b, 6);
    assert_buf_is(&b, "9", 1);
    /* Consuming everything resets the offsets. */
    buf_consume(&b, 1);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.off, 0);
    /* Consuming more than is held is the same as consuming all. */
    assert_true(buf_append(&b, "ab", 2));
    buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.off, 0);
    /* Appending after a partial consume keeps order. */
    assert_true(buf_append(&b, "abcdef", 6));
    buf_consume(&b, 2);
    assert_true(buf_append(&b, "gh", 2));
    assert_buf_is(&b, "cdefgh", 6);
    buf_free(&b);
}

static void test_reserve_slides_consumed_space(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_true(buf_reserve(&b, 1));
    size_t cap = b.cap;
    assert_true(cap >= 1);
    /* Fill the buffer completely, consume most of the front, then ask for
     * room that only exists if the live bytes slide to the front. */
    char *fill = malloc(cap);
    assert_non_null(fill);
    for (size_t i = 0; i < cap; i++)
        fill[i] = (char)('a' + i % 26);
    assert_true(buf_append(&b, fill, cap));
    assert_int_equal(b.cap, cap);
    buf_consume(&b, cap - 4);
    assert_int_equal(b.off, cap - 4);
    assert_true(buf_reserve(&b, 10));
    assert_int_equal(b.cap, cap); /* no reallocation needed */
    assert_int_equal(b.off, 0);
    assert_buf_is(&b, fill + cap - 4, 4);
    assert_true(b.cap - b.off - b.len >= 10);
    /* buf_tail is where the next byte goes. */
    assert_ptr_equal(buf_tail(&b), buf_head(&b) + b.len);
    memcpy(buf_tail(&b), "XYZ", 3);
    b.len += 3;
    char exp[7];
    memcpy(exp, fill + cap - 4, 4);
    memcpy(exp + 4, "XYZ", 3);
    assert_buf_is(&b, exp, 7);
    free(fill);
    buf_free(&b);
}

static void test_reserve_grows_keeping_data(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_true(buf_append(&b, "abcdef", 6));
    buf_consume(&b, 2);
    size_t old_cap = b.cap;
    assert_true(buf_reserve(&b, old_cap * 3));
    assert_true(b.cap >= 4 + old_cap * 3);
    assert_int_equal(b.off, 0);
    assert_buf_is(&b, "cdef", 4);
    /* Reserving what is already there changes nothing. */
    size_t cap = b.cap;
    char *data = b.data;
    assert_true(buf_reserve(&b, 1));
    assert_int_equal(b.cap, cap);
    assert_ptr_equal(b.data, data);
    buf_free(&b);
}

static void test_reserve_overflow_fails(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_true(buf_append(&b, "abc", 3));
    /* len + n overflows size_t: must fail cleanly and keep the data. */
    assert_false(buf_reserve(&b, SIZE_MAX - 1));
    assert_buf_is(&b, "abc", 3);
    assert_false(buf_append(&b, "x", SIZE_MAX - 1));
    assert_buf_is(&b, "abc", 3);
    buf_free(&b);
}

static void test_reset_keeps_small_releases_large(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_true(buf_append(&b, "small", 5));
    char *data = b.data;
    size_t cap = b.cap;
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.off, 0);
    assert_ptr_equal(b.data, data); /* small storage is kept */
    assert_int_equal(b.cap, cap);

    char *big = calloc(1, 200000);
    assert_non_null(big);
    assert_true(buf_append(&b, big, 200000));
    assert_true(b.cap > 64 * 1024);
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_null(b.data); /* large storage is released */
    assert_int_equal(b.cap, 0);
    /* And the buffer is still usable. */
    assert_true(buf_append(&b, "again", 5));
    assert_buf_is(&b, "again", 5);

    /* Consuming everything of a large buffer releases it too. */
    assert_true(buf_append(&b, big, 200000));
    buf_consume(&b, 200005);
    assert_null(b.data);
    free(big);
    buf_free(&b);
}

/* A random mix of appends and consumes, checked against a flat model. */
static void test_random_against_model(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    size_t model_cap = 1 << 20;
    char *model = malloc(model_cap);
    assert_non_null(model);
    size_t mlen = 0;
    uint32_t seed = 12345;
    for (int step = 0; step < 20000; step++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t r = seed >> 8;
        if (r % 3 != 0 && mlen + 600 < model_cap) {
            char chunk[600];
            size_t n = r % 600;
            for (size_t i = 0; i < n; i++)
                chunk[i] = (char)(step + i);
            if (r % 7 == 0) {
                assert_true(buf_append_u64(&b, r));
                mlen += (size_t)snprintf(model + mlen, model_cap - mlen, "%u", r);
            } else {
                assert_true(buf_append(&b, chunk, n));
                memcpy(model + mlen, chunk, n);
                mlen += n;
            }
        } else {
            size_t n = mlen ? r % (mlen + 1) : 0;
            buf_consume(&b, n);
            memmove(model, model + n, mlen - n);
            mlen -= n;
        }
        assert_int_equal(b.len, mlen);
        if (mlen)
            assert_memory_equal(buf_head(&b), model, mlen);
    }
    free(model);
    buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_is_empty),
        cmocka_unit_test(test_append_and_grow),
        cmocka_unit_test(test_append_zero_bytes),
        cmocka_unit_test(test_binary_safe),
        cmocka_unit_test(test_append_u64),
        cmocka_unit_test(test_appendf_small_and_large),
        cmocka_unit_test(test_vappendf),
        cmocka_unit_test(test_consume),
        cmocka_unit_test(test_reserve_slides_consumed_space),
        cmocka_unit_test(test_reserve_grows_keeping_data),
        cmocka_unit_test(test_reserve_overflow_fails),
        cmocka_unit_test(test_reset_keeps_small_releases_large),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
