/*
 * A name index (internal): a hash table from a NUL-terminated name to an
 * item, for the loader's lookups by name (the sections of a file, the keys
 * of a section, the entries of a conf), so that files of 100,000 keys load
 * in linear time. Open addressing with linear probing; the slots live in an
 * arena (a grown table leaves the old slots to the arena), so an index needs
 * no freeing of its own. Names are borrowed: they must outlive the index.
 *
 * A zeroed csgi_name_index is an empty index.
 */
#ifndef CSGI_LOADER_NAME_INDEX_H
#define CSGI_LOADER_NAME_INDEX_H

#include "common/arena.h"

#include <stddef.h>

typedef struct csgi_name_index__slot {
    const char *name; /* NULL: empty; a removed slot keeps a marker */
    void *item;
} csgi_name_index__slot;

typedef struct csgi_name_index {
    csgi_name_index__slot *slots;
    size_t capacity; /* a power of two, or 0 */
    size_t used;     /* slots holding an item or a removal marker */
} csgi_name_index;

/* The item called name, or NULL. */
void *csgi_name_index__get(const csgi_name_index *index, const char *name);

/* index[name] = item (replacing an item of that name). Returns 0 or
   CSGI_ENOMEM (the index is unchanged then). */
int csgi_name_index__put(csgi_name_index *index, csgi_arena *arena, const char *name, void *item);

/* Take the item called name out, if there is one. */
void csgi_name_index__remove(csgi_name_index *index, const char *name);

#endif
