/* probe.h - the one rule shared by our linear-probing tables.
 *
 * When a slot is emptied, later members of its probe run are moved back
 * into the hole so lookups never meet tombstones. A member sitting at j with
 * home slot `home` may move into `hole` only if the hole lies cyclically
 * between home and j; otherwise a lookup starting at home would stop at the
 * hole before reaching it. */
#ifndef DEFER_PROBE_H
#define DEFER_PROBE_H

#include <stdbool.h>
#include <stddef.h>

static inline bool probe_can_fill(size_t hole, size_t j, size_t home) {
    if (hole <= j)
        return home <= hole || home > j;
    return home <= hole && home > j;
}

#endif
