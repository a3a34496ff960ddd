/* heap.c - indexed binary min-heap (see heap.h).
 *
 * The backing array doubles when full and halves when a quarter full, so a
 * queue that drains hands its memory back. */
#include "core/heap.h"

#include <stdlib.h>

#define HEAP_MIN_CAP 8

void heap_init(heap_t *h, heap_less_fn less, heap_setpos_fn setpos) {
    h->items = NULL;
    h->len = h->cap = 0;
    h->less = less;
    h->setpos = setpos;
}

void heap_free(heap_t *h) {
    free(h->items);
    h->items = NULL;
    h->len = h->cap = 0;
}

static void heap_set(heap_t *h, uint32_t pos, void *item) {
    h->items[pos] = item;
    h->setpos(item, pos);
}

static uint32_t heap_sift_up(heap_t *h, uint32_t pos) {
    void *item = h->items[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!h->less(item, h->items[parent]))
            break;
        heap_set(h, pos, h->items[parent]);
        pos = parent;
    }
    heap_set(h, pos, item);
    return pos;
}

static void heap_sift_down(heap_t *h, uint32_t pos) {
    void *item = h->items[pos];
    for (;;) {
        uint32_t child = 2 * pos + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && h->less(h->items[child + 1], h->items[child]))
            child++;
        if (!h->less(h->items[child], item))
            break;
        heap_set(h, pos, h->items[child]);
        pos = child;
    }
    heap_set(h, pos, item);
}

static bool heap_resize(heap_t *h, uint32_t cap) {
    void **p = realloc(h->items, (size_t)cap * sizeof *p);
    if (!p)
        return false;
    h->items = p;
    h->cap = cap;
    return true;
}

bool heap_insert(heap_t *h, void *item) {
    if (h->len == h->cap) {
        if (h->cap > UINT32_MAX / 2)
            return false;
        if (!heap_resize(h, h->cap ? h->cap * 2 : HEAP_MIN_CAP))
            return false;
    }
    h->items[h->len] = item;
    heap_sift_up(h, h->len++);
    return true;
}

void heap_fix(heap_t *h, uint32_t pos) {
    if (heap_sift_up(h, pos) == pos)
        heap_sift_down(h, pos);
}

void *heap_remove(heap_t *h, uint32_t pos) {
    void *item = h->items[pos];
    h->len--;
    if (pos < h->len) {
        h->items[pos] = h->items[h->len];
        heap_fix(h, pos);
    }
    if (h->cap > HEAP_MIN_CAP && h->len < h->cap / 4) {
        heap_resize(h, h->cap / 2); /* failure to shrink is harmless */
    }
    return item;
}
