/* test_heap.c - unit tests for core/heap.c (indexed binary min-heap). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/heap.h"

typedef struct item {
    int key;
    int tag; /* tie-breaker so that order is total */
    uint32_t pos;
    bool in;
} item_t;

static bool item_less(const void *a, const void *b) {
    const item_t *x = a, *y = b;
    return x->key < y->key || (x->key == y->key && x->tag < y->tag);
}

static void item_setpos(void *p, uint32_t pos) {
    ((item_t *)p)->pos = pos;
}

static uint32_t rng_state;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Heap order, every item's recorded position, len <= cap. */
static void check_heap(const heap_t *h) {
    assert_true(h->len <= h->cap);
    for (uint32_t i = 0; i < h->len; i++) {
        const item_t *it = h->items[i];
        assert_int_equal(it->pos, i);
        assert_true(it->in);
        if (i > 0)
            assert_false(item_less(it, h->items[(i - 1) / 2]));
    }
}

static void test_empty(void **state) {
    (void)state;
    heap_t h;
    heap_init(&h, item_less, item_setpos);
    assert_int_equal(h.len, 0);
    assert_null(heap_top(&h));
    assert_null(heap_pop(&h));
    heap_free(&h);
    assert_null(h.items);
    assert_int_equal(h.len, 0);
    assert_int_equal(h.cap, 0);
}

static void test_single(void **state) {
    (void)state;
    heap_t h;
    heap_init(&h, item_less, item_setpos);
    item_t a = {.key = 5, .in = true};
    assert_true(heap_insert(&h, &a));
    assert_int_equal(h.len, 1);
    assert_int_equal(a.pos, 0);
    assert_ptr_equal(heap_top(&h), &a);
    assert_ptr_equal(heap_pop(&h), &a);
    assert_int_equal(h.len, 0);
    assert_null(heap_top(&h));
    heap_free(&h);
}

static void test_pop_order_sorted(void **state) {
    (void)state;
    enum { N = 2000 };
    item_t *items = calloc(N, sizeof *items);
    assert_non_null(items);
    heap_t h;
    heap_init(&h, item_less, item_setpos);
    rng_state = 7;
    for (int i = 0; i < N; i++) {
        items[i].key = (int)(rnd() % 100); /* many duplicate keys */
        items[i].tag = i;
        items[i].in = true;
        assert_true(heap_insert(&h, &items[i]));
        assert_int_equal(h.len, (uint32_t)i + 1);
    }
    check_heap(&h);
    const item_t *prev = NULL;
    for (int i = 0; i < N; i++) {
        item_t *it = heap_pop(&h);
        assert_non_null(it);
        it->in = false;
        if (prev)
            assert_false(item_less(it, prev));
        prev = it;
        if (i % 97 == 0)
            check_heap(&h);
    }
    assert_int_equal(h.len, 0);
    assert_null(heap_pop(&h));
    heap_free(&h);
    free(items);
}

static void test_ascending_and_descending_inserts(void **state) {
    (void)state;
    enum { N = 300 };
    item_t items[N];
    heap_t h;
    heap_init(&h, item_less, item_setpos);
    for (int i = 0; i < N; i++) {
        items[i] = (item_t){.key = N - i, .tag = i, .in = true};
        assert_true(heap_insert(&h, &items[i]));
        /* Every insert of a new minimum must surface at the top. */
        assert_ptr_equal(heap_top(&h), &items[i]);
    }
    check_heap(&h);
    for (int i = N - 1; i >= 0; i--)
        assert_ptr_equal(heap_pop(&h), &items[i]);
    for (int i = 0; i < N; i++) {
        items[i] = (item_t){.key = i, .tag = i, .in = true};
        assert_true(heap_insert(&h, &items[i]));
        assert_ptr_equal(heap_top(&h), &items[0]);
    }
    check_heap(&h);
    heap_free(&h);
}

static void test_remove_arbitrary(void **state) {
    (void)state;
    enum { N = 500 };
    item_t items[N];
    heap_t h;
    heap_init(&h, item_less, item_setpos);
    rng_state = 99;
    for (int i = 0; i < N; i++) {
        items[i] = (item_t){.key = (int)(rnd() % 1000), .tag = i, .in = true};
        assert_true(heap_insert(&h, &items[i]));
    }
    /* Remove every third item by its position, check after each. */
    for (int i = 0; i < N; i += 3) {
        item_t *got = heap_remove(&h, items[i].pos);
        assert_ptr_equal(got, &items[i]);
        items[i].in = false;
        check_heap(&h);
    }
    /* Remove the last item of the array (pos == len - 1): no swap. */
    item_t *last = h.items[h.len - 1];
    assert_ptr_equal(heap_remove(&h, h.len - 1), last);
    last->in = false;
    check_heap(&h);
    /* The rest pops in order and none of the removed ones appear. */
    const item_t *prev = NULL;
    while (h.len) {
        item_t *it = heap_pop(&h);
        assert_true(it->in);
        it->in = false;
        if (prev)
            assert_false(item_less(it, prev));
        prev = it;
    }
    heap_free(&h);
}

static void test_remove_needs_sift_up(void **state) {
    (void)state;
    /* Removing from one subtree may move a smaller item from the other
     * subtree's bottom into the hole: it must go up, not only down. */
    heap_t h;
    heap_init(&h, item_less, item_setpos);
    int keys[] = {1, 100, 2, 101, 102, 3, 4, 103, 104, 105, 106, 5};
    item_t items[12];
    for (int i = 0; i < 12; i++) {
        items[i] = (item_t){.key = keys[i], .tag = i, .in = true};
        assert_true(heap_insert(&h, &items[i]));
    }
    check_heap(&h);
    /* Remove a deep item under the big subtree. */
    for (int i = 0; i < 12; i++) {
        if (items[i].key == 104) {
            heap_remove(&h, items[i].pos);
            items[i].in = false;
        }
    }
    check_heap(&h);
    heap_free(&h);
}

static void test_fix_after_key_change(void **state) {
    (void)state;
    enum { N = 400 };
    item_t items[N];
    heap_t h;
    heap_init(&h, item_less, item_setpos);
    rng_state = 4242;
    for (int i = 0; i < N; i++) {
        items[i] = (item_t){.key = (int)(rnd() % 500), .tag = i, .in = true};
        assert_true(heap_insert(&h, &items[i]));
    }
    for (int round = 0; round < 2000; round++) {
        item_t *it = &items[rnd() % N];
        int r = (int)(rnd() % 3);
        if (r == 0)
            it->key -= (int)(rnd() % 300); /* decrease: must sift up */
        else if (r == 1)
            it->key += (int)(rnd() % 300); /* increase: must sift down */
        heap_fix(&h, it->pos);             /* r == 2: unchanged */
        check_heap(&h);
    }
    /* Make one item the minimum and it must be on top. */
    items[N / 2].key = -1000000;
    heap_fix(&h, items[N / 2].pos);
    assert_ptr_equal(heap_top(&h), &items[N / 2]);
    /* And the maximum goes to the bottom of the order. */
    items[N / 2].key = 1000000;
    heap_fix(&h, items[N / 2].pos);
    check_heap(&h);
    item_t *it = NULL;
    while (h.len)
        it = heap_pop(&h);
    assert_ptr_equal(it, &items[N / 2]);
    heap_free(&h);
}

static void test_capacity_grows_and_shrinks(void **state) {
    (void)state;
    enum { N = 4096 };
    item_t *items = calloc(N, sizeof *items);
    assert_non_null(items);
    heap_t h;
    heap_init(&h, item_less, item_setpos);
    for (int i = 0; i < N; i++) {
        items[i] = (item_t){.key = i, .tag = i, .in = true};
        assert_true(heap_insert(&h, &items[i]));
    }
    assert_true(h.cap >= N);
    uint32_t big = h.cap;
    while (h.len > 10)
        ((item_t *)heap_pop(&h))->in = false;
    /* A queue that drained hands memory back. */
    assert_true(h.cap < big);
    assert_true(h.cap <= 64);
    check_heap(&h);
    /* It still works after shrinking. */
    for (int i = 0; i < 100; i++) {
        items[i].in = true;
        assert_true(heap_insert(&h, &items[i]));
    }
    check_heap(&h);
    assert_ptr_equal(heap_top(&h), &items[0]);
    heap_free(&h);
    free(items);
}

/* A random mix of operations checked against a plain array model. */
static void test_random_against_model(void **state) {
    (void)state;
    enum { N = 1000 };
    item_t *items = calloc(N, sizeof *items);
    assert_non_null(items);
    for (int i = 0; i < N; i++)
        items[i].tag = i;
    heap_t h;
    heap_init(&h, item_less, item_setpos);
    rng_state = 2024;
    uint32_t in = 0;
    for (int step = 0; step < 30000; step++) {
        item_t *it = &items[rnd() % N];
        switch (rnd() % 4) {
        case 0:
        case 1:
            if (!it->in) {
                it->key = (int)(rnd() % 64);
                it->in = true;
                assert_true(heap_insert(&h, it));
                in++;
            }
            break;
        case 2:
            if (it->in) {
                assert_ptr_equal(heap_remove(&h, it->pos), it);
                it->in = false;
                in--;
            }
            break;
        case 3: {
            item_t *top = heap_pop(&h);
            if (!in) {
                assert_null(top);
                break;
            }
            /* The top is the minimum of the model. */
            for (int i = 0; i < N; i++)
                if (items[i].in && &items[i] != top)
                    assert_false(item_less(&items[i], top));
            top->in = false;
            in--;
            break;
        }
        }
        assert_int_equal(h.len, in);
        if (step % 50 == 0)
            check_heap(&h);
    }
    check_heap(&h);
    heap_free(&h);
    free(items);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_single),
        cmocka_unit_test(test_pop_order_sorted),
        cmocka_unit_test(test_ascending_and_descending_inserts),
        cmocka_unit_test(test_remove_arbitrary),
        cmocka_unit_test(test_remove_needs_sift_up),
        cmocka_unit_test(test_fix_after_key_change),
        cmocka_unit_test(test_capacity_grows_and_shrinks),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
