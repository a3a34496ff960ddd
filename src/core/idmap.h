/* idmap.h - find a job by id.
 *
 * Ids are handed out in increasing order, so the live ids cluster into runs.
 * Instead of a hash table (16 bytes per job at a typical load, plus a pause
 * to rehash a million entries) the map keeps pages of 64 consecutive ids; a
 * small hash table finds the page. A dense run of jobs costs 8.5 bytes each,
 * nothing ever rehashes more than one small directory, and a page is freed
 * as soon as its last job goes. */
#ifndef DEFER_IDMAP_H
#define DEFER_IDMAP_H

#include <stdbool.h>
#include <stdint.h>

#define IDMAP_PAGE_BITS 6
#define IDMAP_PAGE_SLOTS (1u << IDMAP_PAGE_BITS)

typedef struct idmap_page {
    uint64_t number; /* id >> IDMAP_PAGE_BITS */
    uint32_t live;
    void *slot[IDMAP_PAGE_SLOTS];
} idmap_page_t;

typedef struct idmap {
    idmap_page_t **dir; /* open addressing, linear probing, NULL = empty */
    uint32_t dir_cap;   /* power of two, or 0 */
    uint32_t pages;
    uint64_t count;
} idmap_t;

void idmap_init(idmap_t *m);
/* Frees the map's own memory, not the values. */
void idmap_free(idmap_t *m);
void *idmap_get(const idmap_t *m, uint64_t id);
/* False when memory is exhausted. The id must not be present. */
bool idmap_put(idmap_t *m, uint64_t id, void *value);
void idmap_del(idmap_t *m, uint64_t id);
/* Point an id that is present at another value. */
void idmap_replace(idmap_t *m, uint64_t id, void *value);

/* Ordered iteration without holding pointers across changes: copy the page
 * numbers (out has room for m->pages), sort them, and look each page up
 * again when its turn comes - it may be gone by then. */
void idmap_page_numbers(const idmap_t *m, uint64_t *out);
const idmap_page_t *idmap_page(const idmap_t *m, uint64_t number);

/* Visit every value, in no particular order; stop when fn returns false. */
void idmap_each(const idmap_t *m, bool (*fn)(void *value, void *arg), void *arg);

#endif
