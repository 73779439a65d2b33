/*
 * Growing arrays (internal): the one growth rule of csgi, with a hard cap,
 * as curl's dynbuf (a too-big limit given at init) and h2o's H2O_VECTOR.
 * Callers keep their own pointer, count and capacity; these functions only
 * decide the new capacity and move the items.
 *
 * An item array is passed as void **: the caller copies its typed pointer
 * to a void * and back, so no pointer is accessed through another type.
 */
#ifndef CSGI_COMMON_VEC_H
#define CSGI_COMMON_VEC_H

#include "common/arena.h"

#include <stddef.h>

/* The first allocation of an empty array holds at least this many bytes
   of items, so small arrays do not grow one item at a time. */
#define CSGI_VEC__FIRST_BYTES 256

/* The capacity an array of item_size items should grow to so that needed
   items fit: twice capacity, at least CSGI_VEC__FIRST_BYTES worth, at
   least needed, never more than max_items. capacity itself when needed
   already fits. Returns 0 with *out; CSGI_ETOOBIG when needed > max_items;
   CSGI_ENOMEM when needed items of item_size bytes overflow a size_t. */
int csgi_vec__grow(size_t capacity, size_t needed, size_t item_size, size_t max_items, size_t *out);

/* Make the heap array *items (csgi__realloc'd, NULL when empty) hold at
   least needed items of item_size bytes, at most max_items. Returns 0;
   CSGI_ETOOBIG or CSGI_ENOMEM with *items and *capacity unchanged. */
int csgi_vec__reserve(void **items, size_t *capacity, size_t item_size, size_t needed,
                      size_t max_items);

/* The same for an array in arena, which cannot grow a block in place: a
   larger block is carved and the first used items copied into it. The old
   block stays until the arena is cleared; doubling bounds that waste to
   the final size. */
int csgi_vec__reserve_in(csgi_arena *arena, void **items, size_t *capacity, size_t item_size,
                         size_t used, size_t needed, size_t max_items);

#endif
