/* idmap.c - paged id -> job map (see idmap.h). */
#include "core/idmap.h"

#include "core/probe.h"

#include <stdlib.h>
#include <string.h>

/* Fibonacci hashing spreads consecutive page numbers (and any arithmetic
 * progression of them) evenly over the directory. */
static uint32_t dir_slot(const idmap_t *m, uint64_t number) {
    return (uint32_t)((number * 0x9E3779B97F4A7C15ull) >> 32) & (m->dir_cap - 1);
}

void idmap_init(idmap_t *m) {
    memset(m, 0, sizeof *m);
}

void idmap_free(idmap_t *m) {
    for (uint32_t i = 0; i < m->dir_cap; i++)
        free(m->dir[i]);
    free(m->dir);
    idmap_init(m);
}

static idmap_page_t *find_page(const idmap_t *m, uint64_t number, uint32_t *at) {
    if (!m->dir_cap)
        return NULL;
    uint32_t i = dir_slot(m, number);
    for (;;) {
        idmap_page_t *p = m->dir[i];
        if (!p) {
            if (at)
                *at = i;
            return NULL;
        }
        if (p->number == number) {
            if (at)
                *at = i;
            return p;
        }
        i = (i + 1) & (m->dir_cap - 1);
    }
}

/* Keep the directory between 1/8 and 1/2 full. */
static bool dir_resize(idmap_t *m, uint32_t cap) {
    idmap_page_t **old = m->dir;
    uint32_t old_cap = m->dir_cap;
    idmap_page_t **dir = calloc(cap, sizeof *dir);
    if (!dir)
        return false;
    m->dir = dir;
    m->dir_cap = cap;
    for (uint32_t i = 0; i < old_cap; i++) {
        if (!old[i])
            continue;
        uint32_t j = dir_slot(m, old[i]->number);
        while (dir[j])
            j = (j + 1) & (cap - 1);
        dir[j] = old[i];
    }
    free(old);
    return true;
}

void *idmap_get(const idmap_t *m, uint64_t id) {
    idmap_page_t *p = find_page(m, id >> IDMAP_PAGE_BITS, NULL);
    return p ? p->slot[id & (IDMAP_PAGE_SLOTS - 1)] : NULL;
}

bool idmap_put(idmap_t *m, uint64_t id, void *value) {
    uint64_t number = id >> IDMAP_PAGE_BITS;
    uint32_t at = 0;
    idmap_page_t *p = find_page(m, number, &at);
    if (!p) {
        if ((m->pages + 1) * 2 > m->dir_cap) {
            if (!dir_resize(m, m->dir_cap ? m->dir_cap * 2 : 16))
                return false;
            find_page(m, number, &at);
        }
        p = calloc(1, sizeof *p);
        if (!p)
            return false;
        p->number = number;
        m->dir[at] = p;
        m->pages++;
    }
    p->slot[id & (IDMAP_PAGE_SLOTS - 1)] = value;
    p->live++;
    m->count++;
    return true;
}

/* Remove the directory entry at i, moving later entries of its probe run
 * back so that lookups never need tombstones. */
static void dir_remove_at(idmap_t *m, uint32_t i) {
    uint32_t mask = m->dir_cap - 1;
    uint32_t hole = i;
    uint32_t j = i;
    m->dir[hole] = NULL;
    for (;;) {
        j = (j + 1) & mask;
        idmap_page_t *p = m->dir[j];
        if (!p)
            break;
        uint32_t home = dir_slot(m, p->number);
        if (probe_can_fill(hole, j, home)) {
            m->dir[hole] = p;
            m->dir[j] = NULL;
            hole = j;
        }
    }
}

void idmap_del(idmap_t *m, uint64_t id) {
    uint32_t at;
    idmap_page_t *p = find_page(m, id >> IDMAP_PAGE_BITS, &at);
    if (!p || !p->slot[id & (IDMAP_PAGE_SLOTS - 1)])
        return;
    p->slot[id & (IDMAP_PAGE_SLOTS - 1)] = NULL;
    p->live--;
    m->count--;
    if (p->live)
        return;
    free(p);
    dir_remove_at(m, at);
    m->pages--;
    if (m->dir_cap > 16 && m->pages * 8 < m->dir_cap)
        dir_resize(m, m->dir_cap / 2); /* failure to shrink is harmless */
}

void idmap_replace(idmap_t *m, uint64_t id, void *value) {
    idmap_page_t *p = find_page(m, id >> IDMAP_PAGE_BITS, NULL);
    if (p && p->slot[id & (IDMAP_PAGE_SLOTS - 1)])
        p->slot[id & (IDMAP_PAGE_SLOTS - 1)] = value;
}

void idmap_page_numbers(const idmap_t *m, uint64_t *out) {
    size_t n = 0;
    for (uint32_t i = 0; i < m->dir_cap; i++)
        if (m->dir[i])
            out[n++] = m->dir[i]->number;
}

const idmap_page_t *idmap_page(const idmap_t *m, uint64_t number) {
    return find_page(m, number, NULL);
}

void idmap_each(const idmap_t *m, bool (*fn)(void *value, void *arg), void *arg) {
    for (uint32_t i = 0; i < m->dir_cap; i++) {
        idmap_page_t *p = m->dir[i];
        if (!p)
            continue;
        for (uint32_t k = 0; k < IDMAP_PAGE_SLOTS; k++)
            if (p->slot[k] && !fn(p->slot[k], arg))
                return;
    }
}
