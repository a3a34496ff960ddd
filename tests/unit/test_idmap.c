/* test_idmap.c - unit tests for core/idmap.c (paged id -> pointer map). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/idmap.h"

/* Values are fake pointers derived from the id, never dereferenced. */
static void *val(uint64_t id) {
    return (void *)(uintptr_t)(id * 8 + 8);
}

static uint64_t rng_state;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Structural checks that hold whatever the contents: the directory is a
 * power of two at most half full, and its page count matches. */
static void check_shape(const idmap_t *m) {
    if (m->dir_cap == 0) {
        assert_int_equal(m->pages, 0);
        assert_int_equal(m->count, 0);
        return;
    }
    assert_int_equal(m->dir_cap & (m->dir_cap - 1), 0);
    assert_true((uint64_t)m->pages * 2 <= m->dir_cap);
    uint32_t pages = 0;
    uint64_t live = 0;
    for (uint32_t i = 0; i < m->dir_cap; i++) {
        const idmap_page_t *p = m->dir[i];
        if (!p)
            continue;
        pages++;
        uint32_t n = 0;
        for (uint32_t k = 0; k < IDMAP_PAGE_SLOTS; k++)
            n += p->slot[k] != NULL;
        assert_int_equal(n, p->live);
        assert_true(p->live > 0); /* empty pages are freed */
        live += n;
    }
    assert_int_equal(pages, m->pages);
    assert_int_equal(live, m->count);
}

static bool count_cb(void *value, void *arg) {
    (void)value;
    (*(uint64_t *)arg)++;
    return true;
}

static void test_empty(void **state) {
    (void)state;
    idmap_t m;
    idmap_init(&m);
    assert_null(idmap_get(&m, 0));
    assert_null(idmap_get(&m, 1));
    assert_null(idmap_get(&m, UINT64_MAX));
    idmap_del(&m, 1); /* deleting from an empty map is harmless */
    assert_int_equal(m.count, 0);
    uint64_t n = 0;
    idmap_each(&m, count_cb, &n);
    assert_int_equal(n, 0);
    check_shape(&m);
    idmap_free(&m);
}

static void test_put_get_del_one(void **state) {
    (void)state;
    idmap_t m;
    idmap_init(&m);
    assert_true(idmap_put(&m, 42, val(42)));
    assert_int_equal(m.count, 1);
    assert_int_equal(m.pages, 1);
    assert_ptr_equal(idmap_get(&m, 42), val(42));
    /* Neighbours in the same page and other pages are absent. */
    assert_null(idmap_get(&m, 41));
    assert_null(idmap_get(&m, 43));
    assert_null(idmap_get(&m, 42 + IDMAP_PAGE_SLOTS));
    /* Deleting an absent id of a present page changes nothing. */
    idmap_del(&m, 43);
    assert_int_equal(m.count, 1);
    assert_ptr_equal(idmap_get(&m, 42), val(42));
    idmap_del(&m, 42);
    assert_int_equal(m.count, 0);
    assert_int_equal(m.pages, 0); /* the page went with its last id */
    assert_null(idmap_get(&m, 42));
    /* Deleting twice is harmless. */
    idmap_del(&m, 42);
    assert_int_equal(m.count, 0);
    check_shape(&m);
    idmap_free(&m);
}

static void test_dense_run_uses_pages(void **state) {
    (void)state;
    idmap_t m;
    idmap_init(&m);
    enum { N = 100000 };
    for (uint64_t id = 1; id <= N; id++)
        assert_true(idmap_put(&m, id, val(id)));
    assert_int_equal(m.count, N);
    /* ids 1..N live in pages 0..N/64. */
    assert_int_equal(m.pages, N / IDMAP_PAGE_SLOTS + 1);
    check_shape(&m);
    for (uint64_t id = 1; id <= N; id++)
        assert_ptr_equal(idmap_get(&m, id), val(id));
    assert_null(idmap_get(&m, 0));
    assert_null(idmap_get(&m, N + 1));
    uint64_t n = 0;
    idmap_each(&m, count_cb, &n);
    assert_int_equal(n, N);

    /* Delete from the front, as a queue does: pages go one by one and the
     * directory shrinks back. */
    uint32_t big_cap = m.dir_cap;
    for (uint64_t id = 1; id <= N - 10; id++) {
        idmap_del(&m, id);
        if (id % 4099 == 0) {
            check_shape(&m);
            assert_null(idmap_get(&m, id));
            assert_ptr_equal(idmap_get(&m, id + 1), val(id + 1));
        }
    }
    assert_int_equal(m.count, 10);
    assert_true(m.pages <= 2);
    assert_true(m.dir_cap < big_cap);
    assert_true(m.dir_cap <= 16);
    check_shape(&m);
    for (uint64_t id = N - 9; id <= N; id++)
        assert_ptr_equal(idmap_get(&m, id), val(id));
    idmap_free(&m);
    assert_int_equal(m.count, 0);
    assert_null(m.dir);
}

static void test_sparse_and_extreme_ids(void **state) {
    (void)state;
    idmap_t m;
    idmap_init(&m);
    const uint64_t ids[] = {
        0,
        1,
        63,
        64,
        65,
        1000,
        UINT64_C(1) << 32,
        (UINT64_C(1) << 32) + 1,
        UINT64_C(1) << 63,
        (UINT64_C(1) << 63) + 64,
        UINT64_MAX - 64,
        UINT64_MAX - 1,
        UINT64_MAX,
    };
    size_t n = sizeof ids / sizeof ids[0];
    for (size_t i = 0; i < n; i++)
        assert_true(idmap_put(&m, ids[i], val(i)));
    assert_int_equal(m.count, n);
    check_shape(&m);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(idmap_get(&m, ids[i]), val(i));
    assert_null(idmap_get(&m, 2));
    assert_null(idmap_get(&m, UINT64_MAX - 2));
    assert_null(idmap_get(&m, (UINT64_C(1) << 63) + 1));
    for (size_t i = 0; i < n; i += 2)
        idmap_del(&m, ids[i]);
    check_shape(&m);
    for (size_t i = 0; i < n; i++) {
        if (i % 2 == 0)
            assert_null(idmap_get(&m, ids[i]));
        else
            assert_ptr_equal(idmap_get(&m, ids[i]), val(i));
    }
    idmap_free(&m);
}

static void test_many_sparse_pages(void **state) {
    (void)state;
    /* One id per page: the directory does all the work. */
    idmap_t m;
    idmap_init(&m);
    enum { N = 20000 };
    const uint64_t stride = 1000; /* > page size: every id its own page */
    for (uint64_t i = 0; i < N; i++)
        assert_true(idmap_put(&m, 7 + i * stride, val(i)));
    assert_int_equal(m.pages, N);
    assert_true(m.dir_cap >= 2 * N);
    check_shape(&m);
    for (uint64_t i = 0; i < N; i++)
        assert_ptr_equal(idmap_get(&m, 7 + i * stride), val(i));
    /* Delete in a scattered order; every remaining id stays reachable,
     * which exercises the backward shift of probe runs. 7919 is prime and
     * does not divide N, so k -> k * 7919 % N visits every index once. */
    uint8_t *gone = calloc(N, 1);
    assert_non_null(gone);
    for (uint64_t k = 0; k < N; k++) {
        uint64_t i = (k * 7919) % N;
        assert_int_equal(gone[i], 0);
        idmap_del(&m, 7 + i * stride);
        gone[i] = 1;
        assert_null(idmap_get(&m, 7 + i * stride));
        if (k % 1000 == 999) {
            check_shape(&m);
            for (uint64_t j = 0; j < N; j++)
                assert_ptr_equal(idmap_get(&m, 7 + j * stride), gone[j] ? NULL : val(j));
        }
    }
    free(gone);
    assert_int_equal(m.count, 0);
    assert_int_equal(m.pages, 0);
    assert_true(m.dir_cap <= 16);
    idmap_free(&m);
}

typedef struct {
    uint64_t stop_after;
    uint64_t seen;
} each_ctx_t;

static bool stop_cb(void *value, void *arg) {
    (void)value;
    each_ctx_t *c = arg;
    c->seen++;
    return c->seen < c->stop_after;
}

typedef struct {
    uint8_t *seen;
    uint64_t n;
} mark_ctx_t;

static bool mark_cb(void *value, void *arg) {
    mark_ctx_t *c = arg;
    uint64_t id = ((uint64_t)(uintptr_t)value - 8) / 8;
    assert_true(id < c->n);
    assert_int_equal(c->seen[id], 0); /* each value exactly once */
    c->seen[id] = 1;
    return true;
}

static void test_each_visits_all_once_and_stops(void **state) {
    (void)state;
    idmap_t m;
    idmap_init(&m);
    enum { N = 5000 };
    for (uint64_t id = 0; id < N; id++)
        if (id % 3 != 1)
            assert_true(idmap_put(&m, id, val(id)));
    uint8_t *seen = calloc(N, 1);
    assert_non_null(seen);
    mark_ctx_t mc = {seen, N};
    idmap_each(&m, mark_cb, &mc);
    for (uint64_t id = 0; id < N; id++)
        assert_int_equal(seen[id], id % 3 != 1);
    free(seen);

    each_ctx_t ec = {.stop_after = 17};
    idmap_each(&m, stop_cb, &ec);
    assert_int_equal(ec.seen, 17);
    idmap_free(&m);
}

static void test_reinsert_after_page_freed(void **state) {
    (void)state;
    idmap_t m;
    idmap_init(&m);
    for (int round = 0; round < 50; round++) {
        for (uint64_t id = 128; id < 192; id++)
            assert_true(idmap_put(&m, id, val(id + (uint64_t)round)));
        assert_int_equal(m.pages, 1);
        for (uint64_t id = 128; id < 192; id++)
            assert_ptr_equal(idmap_get(&m, id), val(id + (uint64_t)round));
        for (uint64_t id = 128; id < 192; id++)
            idmap_del(&m, id);
        assert_int_equal(m.pages, 0);
        assert_int_equal(m.count, 0);
    }
    idmap_free(&m);
}

/* Random puts and deletes over a clustered id space, checked against a
 * flat array after every step. The directory grows and shrinks many
 * times. */
static void test_random_against_model(void **state) {
    (void)state;
    enum { SPACE = 64 * 600 };
    void **model = calloc(SPACE, sizeof *model);
    assert_non_null(model);
    idmap_t m;
    idmap_init(&m);
    rng_state = 0x9e3779b97f4a7c15ull;
    uint64_t live = 0;
    for (int step = 0; step < 200000; step++) {
        uint64_t r = rnd();
        /* Bias towards a moving window so that whole pages empty out and
         * the directory shrinks, then grows again. */
        uint64_t phase = (uint64_t)(step / 20000);
        uint64_t id = (r >> 16) % (phase % 2 ? SPACE : SPACE / 16);
        bool put = (r & 3) < (phase % 2 ? 3u : 1u);
        if (put && !model[id]) {
            assert_true(idmap_put(&m, id, val(id)));
            model[id] = val(id);
            live++;
        } else if (!put && model[id]) {
            idmap_del(&m, id);
            model[id] = NULL;
            live--;
        } else if (!put) {
            idmap_del(&m, id); /* absent: no effect */
        }
        assert_int_equal(m.count, live);
        assert_ptr_equal(idmap_get(&m, id), model[id]);
        if (step % 5000 == 0) {
            check_shape(&m);
            for (uint64_t k = 0; k < SPACE; k++)
                assert_ptr_equal(idmap_get(&m, k), model[k]);
        }
    }
    check_shape(&m);
    for (uint64_t k = 0; k < SPACE; k++)
        assert_ptr_equal(idmap_get(&m, k), model[k]);
    idmap_free(&m);
    free(model);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_put_get_del_one),
        cmocka_unit_test(test_dense_run_uses_pages),
        cmocka_unit_test(test_sparse_and_extreme_ids),
        cmocka_unit_test(test_many_sparse_pages),
        cmocka_unit_test(test_each_visits_all_once_and_stops),
        cmocka_unit_test(test_reinsert_after_page_freed),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
