/* u64map.c - id -> pointer hash map (see u64map.h). */
#include "core/u64map.h"

#include <stdlib.h>

#include "core/probe.h"

static size_t home(const u64map_t *m, uint64_t key) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (m->cap - 1);
}

void u64map_init(u64map_t *m) {
    m->slots = NULL;
    m->cap = m->count = 0;
}

void u64map_free(u64map_t *m) {
    free(m->slots);
    u64map_init(m);
}

static size_t find(const u64map_t *m, uint64_t key) {
    size_t i = home(m, key);
    while (m->slots[i].key && m->slots[i].key != key)
        i = (i + 1) & (m->cap - 1);
    return i;
}

void *u64map_get(const u64map_t *m, uint64_t key) {
    if (!m->cap)
        return NULL;
    const u64map_slot_t *s = &m->slots[find(m, key)];
    return s->key ? s->value : NULL;
}

static bool resize(u64map_t *m, size_t cap) {
    u64map_slot_t *old = m->slots;
    size_t old_cap = m->cap;
    u64map_slot_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return false;
    m->slots = slots;
    m->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key)
            m->slots[find(m, old[i].key)] = old[i];
    free(old);
    return true;
}

bool u64map_put(u64map_t *m, uint64_t key, void *value) {
    if ((m->count + 1) * 2 > m->cap && !resize(m, m->cap ? m->cap * 2 : 16))
        return false;
    u64map_slot_t *s = &m->slots[find(m, key)];
    if (!s->key) {
        s->key = key;
        m->count++;
    }
    s->value = value;
    return true;
}

void *u64map_del(u64map_t *m, uint64_t key) {
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    size_t hole = find(m, key);
    if (!m->slots[hole].key)
        return NULL;
    void *value = m->slots[hole].value;
    m->slots[hole].key = 0;
    m->count--;
    for (size_t j = (hole + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        if (probe_can_fill(hole, j, home(m, m->slots[j].key))) {
            m->slots[hole] = m->slots[j];
            m->slots[j].key = 0;
            hole = j;
        }
    }
    if (m->cap > 16 && m->count * 8 < m->cap)
        resize(m, m->cap / 2); /* failure to shrink is harmless */
    return value;
}
