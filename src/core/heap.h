/* heap.h - an indexed binary min-heap of pointers.
 *
 * Every container in the engine (a tube's ready, delayed and buried sets, a
 * session's reservations, the timer queue) is one of these. Each item
 * remembers its own position (through setpos), so removing an arbitrary item
 * - a delete by id, a kick-job - is O(log n) instead of a scan. */
#ifndef DEFER_HEAP_H
#define DEFER_HEAP_H

#include <stdbool.h>
#include <stdint.h>

typedef bool (*heap_less_fn)(const void *a, const void *b);
typedef void (*heap_setpos_fn)(void *item, uint32_t pos);

typedef struct heap {
    void **items;
    uint32_t len;
    uint32_t cap;
    heap_less_fn less;
    heap_setpos_fn setpos;
} heap_t;

void heap_init(heap_t *h, heap_less_fn less, heap_setpos_fn setpos);
void heap_free(heap_t *h);

/* False when memory is exhausted; the heap is unchanged then. */
bool heap_insert(heap_t *h, void *item);
/* Remove the item at position pos and return it. */
void *heap_remove(heap_t *h, uint32_t pos);
/* Restore order after the key of the item at pos changed. */
void heap_fix(heap_t *h, uint32_t pos);

static inline void *heap_top(const heap_t *h) { return h->len ? h->items[0] : 0; }
static inline void *heap_pop(heap_t *h) { return h->len ? heap_remove(h, 0) : 0; }

#endif
