/* Growing arrays with a cap (common/vec.h). */
#include "common/vec.h"

#include "common/alloc.h"

#include <csgi/common.h>

#include <stdint.h>
#include <string.h>

int csgi_vec__grow(size_t capacity, size_t needed, size_t item_size, size_t max_items, size_t *out)
{
    if (needed <= capacity) {
        *out = capacity;
        return 0;
    }
    if (needed > max_items)
        return CSGI_ETOOBIG;
    size_t limit = SIZE_MAX / (item_size ? item_size : 1);
    if (needed > limit)
        return CSGI_ENOMEM;
    if (limit > max_items)
        limit = max_items;
    size_t grown = capacity <= limit / 2 ? capacity * 2 : limit;
    size_t first = CSGI_VEC__FIRST_BYTES / (item_size ? item_size : 1);
    if (grown < first)
        grown = first;
    if (grown < needed)
        grown = needed;
    *out = grown < limit ? grown : limit;
    return 0;
}

int csgi_vec__reserve(void **items, size_t *capacity, size_t item_size, size_t needed,
                      size_t max_items)
{
    size_t grown;
    int rc = csgi_vec__grow(*capacity, needed, item_size, max_items, &grown);
    if (rc != 0 || grown == *capacity)
        return rc;
    void *moved = csgi__realloc(*items, grown * item_size);
    if (!moved)
        return CSGI_ENOMEM;
    *items = moved;
    *capacity = grown;
    return 0;
}

int csgi_vec__reserve_in(csgi_arena *arena, void **items, size_t *capacity, size_t item_size,
                         size_t used, size_t needed, size_t max_items)
{
    size_t grown;
    int rc = csgi_vec__grow(*capacity, needed, item_size, max_items, &grown);
    if (rc != 0 || grown == *capacity)
        return rc;
    void *moved = csgi_arena__alloc(arena, grown * item_size);
    if (!moved)
        return CSGI_ENOMEM;
    if (used)
        memcpy(moved, *items, used * item_size);
    *items = moved;
    *capacity = grown;
    return 0;
}
