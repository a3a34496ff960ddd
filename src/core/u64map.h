/* u64map.h - a hash map from non-zero 64-bit ids to pointers.
 *
 * For data only some jobs have (a unique key, an error message) and for
 * finished tasks' history: sparse over the id space, where the paged
 * idmap would waste a page per entry. Open addressing, Fibonacci hashing,
 * backward-shift deletion (see probe.h). */
#ifndef DEFER_U64MAP_H
#define DEFER_U64MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct u64map_slot {
    uint64_t key; /* 0 = empty */
    void *value;
} u64map_slot_t;

typedef struct u64map {
    u64map_slot_t *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
} u64map_t;

void u64map_init(u64map_t *m);
void u64map_free(u64map_t *m);
void *u64map_get(const u64map_t *m, uint64_t key);
/* Insert or overwrite; false when memory ran out. key must not be 0. */
bool u64map_put(u64map_t *m, uint64_t key, void *value);
/* Remove and return the value (NULL if absent). */
void *u64map_del(u64map_t *m, uint64_t key);

#endif
