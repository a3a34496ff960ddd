/* strmap.c - string -> pointer hash map (see strmap.h). */
#include "core/strmap.h"

#include "core/probe.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a: keys are short names chosen by our own users, not an adversary
 * with a reason to collide them, and it is fast on short strings. */
static uint64_t strmap_hash(const char *key, size_t len) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void strmap_init(strmap_t *m) {
    m->slots = NULL;
    m->cap = m->count = 0;
}

void strmap_free(strmap_t *m) {
    free(m->slots);
    strmap_init(m);
}

static size_t find(const strmap_t *m, const char *key, size_t len, uint64_t h) {
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].key) {
        const strmap_entry_t *e = &m->slots[i];
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

void *strmap_get(const strmap_t *m, const char *key, size_t len) {
    if (!m->cap)
        return NULL;
    const strmap_entry_t *e = &m->slots[find(m, key, len, strmap_hash(key, len))];
    return e->key ? e->value : NULL;
}

static bool resize(strmap_t *m, size_t cap) {
    strmap_entry_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return false;
    strmap_entry_t *old = m->slots;
    size_t old_cap = m->cap;
    m->slots = slots;
    m->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].key)
            continue;
        size_t j = old[i].hash & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = old[i];
    }
    free(old);
    return true;
}

bool strmap_put(strmap_t *m, const char *key, size_t len, void *value) {
    if ((m->count + 1) * 2 > m->cap && !resize(m, m->cap ? m->cap * 2 : 16))
        return false;
    uint64_t h = strmap_hash(key, len);
    strmap_entry_t *e = &m->slots[find(m, key, len, h)];
    e->key = key;
    e->len = len;
    e->hash = h;
    e->value = value;
    m->count++;
    return true;
}

void strmap_replace(strmap_t *m, const char *key, size_t len, void *value) {
    if (!m->cap)
        return;
    strmap_entry_t *e = &m->slots[find(m, key, len, strmap_hash(key, len))];
    if (e->key) {
        e->key = key;
        e->value = value;
    }
}

void strmap_del(strmap_t *m, const char *key, size_t len) {
    if (!m->cap)
        return;
    size_t mask = m->cap - 1;
    size_t hole = find(m, key, len, strmap_hash(key, len));
    if (!m->slots[hole].key)
        return;
    m->slots[hole].key = NULL;
    m->count--;
    /* Move later members of the probe run into the hole when the hole lies
     * between their home slot and where they sit. */
    for (size_t j = (hole + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        if (probe_can_fill(hole, j, home)) {
            m->slots[hole] = m->slots[j];
            m->slots[j].key = NULL;
            hole = j;
        }
    }
    if (m->cap > 16 && m->count * 8 < m->cap)
        resize(m, m->cap / 2); /* failure to shrink is harmless */
}
