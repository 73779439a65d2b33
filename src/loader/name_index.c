/* A name index: names to items, in linear time per file (see name_index.h). */
#include "loader/name_index.h"

#include <csgi/common.h>

#include <stdint.h>
#include <string.h>

/* What a removed slot's name points to: probing goes on past it. */
static const char removed[] = "";

/* FNV-1a, 64 bits. */
static uint64_t hash_of(const char *name)
{
    uint64_t hash = 14695981039346656037u;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        hash ^= *p;
        hash *= 1099511628211u;
    }
    return hash;
}

/* The slot holding name, or NULL. */
static csgi_name_index__slot *find_slot(const csgi_name_index *index, const char *name)
{
    if (!index->capacity)
        return NULL;
    size_t mask = index->capacity - 1;
    for (size_t i = (size_t)hash_of(name) & mask;; i = (i + 1) & mask) {
        csgi_name_index__slot *slot = &index->slots[i];
        if (!slot->name)
            return NULL;
        if (slot->name != removed && strcmp(slot->name, name) == 0)
            return slot;
    }
}

/* Insert into a table known to have room and not to hold name. */
static void insert(csgi_name_index__slot *slots, size_t capacity, const char *name, void *item)
{
    size_t mask = capacity - 1;
    size_t i = (size_t)hash_of(name) & mask;
    while (slots[i].name && slots[i].name != removed)
        i = (i + 1) & mask;
    slots[i].name = name;
    slots[i].item = item;
}

/* Rebuild into a table where one more name keeps the load under 3/4. */
static int grow(csgi_name_index *index, csgi_arena *arena)
{
    size_t live = 0;
    for (size_t i = 0; i < index->capacity; i++)
        if (index->slots[i].name && index->slots[i].name != removed)
            live++;
    size_t capacity = 16;
    while ((live + 1) * 2 > capacity) /* half full at most after growing */
        capacity *= 2;
    if (capacity > SIZE_MAX / sizeof(csgi_name_index__slot))
        return CSGI_ENOMEM;
    csgi_name_index__slot *slots = csgi_arena__alloc(arena, capacity * sizeof(*slots));
    if (!slots)
        return CSGI_ENOMEM;
    memset(slots, 0, capacity * sizeof(*slots));
    for (size_t i = 0; i < index->capacity; i++)
        if (index->slots[i].name && index->slots[i].name != removed)
            insert(slots, capacity, index->slots[i].name, index->slots[i].item);
    index->slots = slots;
    index->capacity = capacity;
    index->used = live;
    return 0;
}

void *csgi_name_index__get(const csgi_name_index *index, const char *name)
{
    csgi_name_index__slot *slot = find_slot(index, name);
    return slot ? slot->item : NULL;
}

int csgi_name_index__put(csgi_name_index *index, csgi_arena *arena, const char *name, void *item)
{
    csgi_name_index__slot *slot = find_slot(index, name);
    if (slot) {
        slot->item = item;
        return 0;
    }
    if ((index->used + 1) * 4 > index->capacity * 3) {
        int rc = grow(index, arena);
        if (rc != 0)
            return rc;
    }
    insert(index->slots, index->capacity, name, item);
    index->used++;
    return 0;
}

void csgi_name_index__remove(csgi_name_index *index, const char *name)
{
    csgi_name_index__slot *slot = find_slot(index, name);
    if (slot) {
        slot->name = removed;
        slot->item = NULL;
    }
}
