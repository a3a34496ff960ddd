/* strmap.h - a hash map from byte strings to pointers.
 *
 * Keys are not copied: the caller keeps each key alive for as long as it is
 * in the map (a tube's name lives in the tube itself). Open addressing with
 * backward-shift deletion, so there are no tombstones to clean up. */
#ifndef DEFER_STRMAP_H
#define DEFER_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct strmap_entry {
    const char *key;
    size_t len;
    uint64_t hash;
    void *value;
} strmap_entry_t;

typedef struct strmap {
    strmap_entry_t *slots; /* key == NULL marks an empty slot */
    size_t cap;            /* power of two, or 0 */
    size_t count;
} strmap_t;

void strmap_init(strmap_t *m);
void strmap_free(strmap_t *m);
void *strmap_get(const strmap_t *m, const char *key, size_t len);
/* False when memory is exhausted. The key must not be present. */
bool strmap_put(strmap_t *m, const char *key, size_t len, void *value);
void strmap_del(strmap_t *m, const char *key, size_t len);
/* Point a key that is present at another value (and the key's storage at
 * key, which must hold the same bytes). */
void strmap_replace(strmap_t *m, const char *key, size_t len, void *value);

#endif
