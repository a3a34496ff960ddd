/* test_strmap.c - unit tests for core/strmap.c (string -> pointer map with
 * backward-shift deletion). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/strmap.h"

static uint32_t rng_state;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void *val(size_t i) {
    return (void *)(uintptr_t)(i * 16 + 16);
}

/* Capacity is a power of two, at most half full, count matches, and every
 * stored entry is found again by a lookup of its own key. */
static void check_shape(const strmap_t *m) {
    if (m->cap == 0) {
        assert_int_equal(m->count, 0);
        return;
    }
    assert_int_equal(m->cap & (m->cap - 1), 0);
    assert_true(m->count * 2 <= m->cap);
    size_t n = 0;
    for (size_t i = 0; i < m->cap; i++) {
        const strmap_entry_t *e = &m->slots[i];
        if (!e->key)
            continue;
        n++;
        assert_ptr_equal(strmap_get(m, e->key, e->len), e->value);
    }
    assert_int_equal(n, m->count);
}

static void test_empty(void **state) {
    (void)state;
    strmap_t m;
    strmap_init(&m);
    assert_null(strmap_get(&m, "x", 1));
    assert_null(strmap_get(&m, "", 0));
    strmap_del(&m, "x", 1); /* harmless */
    assert_int_equal(m.count, 0);
    strmap_free(&m);
    assert_null(m.slots);
    assert_int_equal(m.cap, 0);
}

static void test_basic(void **state) {
    (void)state;
    strmap_t m;
    strmap_init(&m);
    assert_true(strmap_put(&m, "default", 7, val(1)));
    assert_true(strmap_put(&m, "foo", 3, val(2)));
    assert_int_equal(m.count, 2);
    assert_ptr_equal(strmap_get(&m, "default", 7), val(1));
    assert_ptr_equal(strmap_get(&m, "foo", 3), val(2));
    /* Keys are compared by length too: prefixes are different keys. */
    assert_null(strmap_get(&m, "fo", 2));
    assert_null(strmap_get(&m, "foox", 4));
    assert_null(strmap_get(&m, "defaulT", 7));
    /* The lookup key need not be NUL-terminated or the same pointer. */
    char buf[] = {'f', 'o', 'o', 'x'};
    assert_ptr_equal(strmap_get(&m, buf, 3), val(2));
    strmap_del(&m, "foo", 3);
    assert_null(strmap_get(&m, "foo", 3));
    assert_ptr_equal(strmap_get(&m, "default", 7), val(1));
    assert_int_equal(m.count, 1);
    /* Deleting an absent key changes nothing. */
    strmap_del(&m, "foo", 3);
    strmap_del(&m, "nothere", 7);
    assert_int_equal(m.count, 1);
    check_shape(&m);
    strmap_free(&m);
}

static void test_binary_and_empty_keys(void **state) {
    (void)state;
    strmap_t m;
    strmap_init(&m);
    static const char k1[] = {'a', '\0', 'b'};
    static const char k2[] = {'a', '\0', 'c'};
    static const char k3[] = {'a'};
    assert_true(strmap_put(&m, k1, 3, val(1)));
    assert_true(strmap_put(&m, k2, 3, val(2)));
    assert_true(strmap_put(&m, k3, 1, val(3)));
    assert_true(strmap_put(&m, "", 0, val(4)));
    assert_ptr_equal(strmap_get(&m, k1, 3), val(1));
    assert_ptr_equal(strmap_get(&m, k2, 3), val(2));
    assert_ptr_equal(strmap_get(&m, k3, 1), val(3));
    assert_ptr_equal(strmap_get(&m, "", 0), val(4));
    assert_null(strmap_get(&m, k1, 2));
    strmap_del(&m, "", 0);
    assert_null(strmap_get(&m, "", 0));
    assert_ptr_equal(strmap_get(&m, k3, 1), val(3));
    check_shape(&m);
    strmap_free(&m);
}

static void test_many_keys_grow_and_shrink(void **state) {
    (void)state;
    enum { N = 20000 };
    char (*keys)[16] = calloc(N, sizeof *keys);
    size_t *lens = calloc(N, sizeof *lens);
    assert_non_null(keys);
    assert_non_null(lens);
    strmap_t m;
    strmap_init(&m);
    for (size_t i = 0; i < N; i++) {
        lens[i] = (size_t)snprintf(keys[i], sizeof keys[i], "tube-%zu", i);
        assert_true(strmap_put(&m, keys[i], lens[i], val(i)));
    }
    assert_int_equal(m.count, N);
    size_t big = m.cap;
    assert_true(big >= 2 * N);
    check_shape(&m);
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(strmap_get(&m, keys[i], lens[i]), val(i));

    /* Delete all but a few in a scattered order. */
    for (size_t k = 0; k < N; k++) {
        size_t i = (k * 7919) % N;
        if (i < 5)
            continue;
        strmap_del(&m, keys[i], lens[i]);
        assert_null(strmap_get(&m, keys[i], lens[i]));
        if (k % 2500 == 0)
            check_shape(&m);
    }
    assert_int_equal(m.count, 5);
    assert_true(m.cap < big);
    assert_true(m.cap <= 64);
    check_shape(&m);
    for (size_t i = 0; i < 5; i++)
        assert_ptr_equal(strmap_get(&m, keys[i], lens[i]), val(i));
    strmap_free(&m);
    free(keys);
    free(lens);
}

/* A small pool of keys in a minimum-size table: runs wrap around the end
 * of the slot array and deletions shift entries across the wrap. Checked
 * against a model after every step. */
static void test_random_small_table_wraparound(void **state) {
    (void)state;
    enum { K = 8 };
    char keys[64][8];
    size_t lens[64];
    for (size_t i = 0; i < 64; i++)
        lens[i] = (size_t)snprintf(keys[i], sizeof keys[i], "k%zu", i);
    for (uint32_t seed = 1; seed <= 40; seed++) {
        strmap_t m;
        strmap_init(&m);
        bool in[64] = {0};
        size_t live = 0;
        rng_state = seed * 2654435761u;
        /* Each seed uses its own pool of K keys out of 64, so that many
         * different collision patterns get exercised. */
        size_t pool[K];
        for (size_t i = 0; i < K; i++)
            pool[i] = (seed * 7 + i * 13) % 64;
        for (int step = 0; step < 2000; step++) {
            size_t k = pool[rnd() % K];
            if (!in[k]) {
                assert_true(strmap_put(&m, keys[k], lens[k], val(k)));
                in[k] = true;
                live++;
            } else {
                strmap_del(&m, keys[k], lens[k]);
                in[k] = false;
                live--;
            }
            assert_int_equal(m.count, live);
            assert_int_equal(m.cap, 16); /* never more than 8 keys */
            for (size_t i = 0; i < K; i++)
                assert_ptr_equal(strmap_get(&m, keys[pool[i]], lens[pool[i]]),
                                 in[pool[i]] ? val(pool[i]) : NULL);
            check_shape(&m);
        }
        strmap_free(&m);
    }
}

/* Large random workload against a model, including capacity changes. */
static void test_random_against_model(void **state) {
    (void)state;
    enum { N = 3000 };
    char (*keys)[24] = calloc(N, sizeof *keys);
    size_t *lens = calloc(N, sizeof *lens);
    bool *in = calloc(N, sizeof *in);
    assert_non_null(keys);
    assert_non_null(lens);
    assert_non_null(in);
    rng_state = 77;
    for (size_t i = 0; i < N; i++) {
        /* Names of varying length, some sharing long prefixes. */
        lens[i] = (size_t)snprintf(keys[i], sizeof keys[i], "%.*s%zu", (int)(rnd() % 12),
                                   "abcdefghijkl", i);
    }
    strmap_t m;
    strmap_init(&m);
    size_t live = 0;
    for (int step = 0; step < 100000; step++) {
        uint32_t r = rnd();
        /* Alternate phases of growth and shrinkage. */
        bool grow = (step / 10000) % 2 == 0;
        size_t k = (r >> 8) % N;
        bool want_put = (r & 7) < (grow ? 6u : 2u);
        if (want_put && !in[k]) {
            assert_true(strmap_put(&m, keys[k], lens[k], val(k)));
            in[k] = true;
            live++;
        } else if (!want_put && in[k]) {
            strmap_del(&m, keys[k], lens[k]);
            in[k] = false;
            live--;
        }
        assert_int_equal(m.count, live);
        assert_ptr_equal(strmap_get(&m, keys[k], lens[k]), in[k] ? val(k) : NULL);
        if (step % 4000 == 0) {
            check_shape(&m);
            for (size_t i = 0; i < N; i++)
                assert_ptr_equal(strmap_get(&m, keys[i], lens[i]), in[i] ? val(i) : NULL);
        }
    }
    check_shape(&m);
    strmap_free(&m);
    free(keys);
    free(lens);
    free(in);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_binary_and_empty_keys),
        cmocka_unit_test(test_many_keys_grow_and_shrink),
        cmocka_unit_test(test_random_small_table_wraparound),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
