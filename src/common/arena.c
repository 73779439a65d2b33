#include "common/arena.h"

#include "common/alloc.h"

#include <csgi/common.h>

#include <stdalign.h>
#include <stdint.h>
#include <string.h>

struct csgi_arena__chunk {
    csgi_arena__chunk *next;
    alignas(max_align_t) char data[];
};

struct csgi_arena__deferred {
    csgi_arena__deferred *next;
    void (*fn)(void *data);
    void *data;
};

typedef struct large_block {
    struct large_block *next;
    alignas(max_align_t) char data[];
} large_block;

#define ALIGNMENT alignof(max_align_t)

_Static_assert(CSGI_ARENA__ALIGN % ALIGNMENT == 0,
               "the inline fast path aligns at least as strictly as the slow path");
#define CHUNK_DATA (CSGI_ARENA__CHUNK_SIZE - offsetof(csgi_arena__chunk, data))

void csgi_arena__recycler_init(csgi_arena__recycler *recycler, size_t max)
{
    recycler->free_chunks = NULL;
    recycler->count = 0;
    recycler->max = max;
}

void csgi_arena__recycler_clear(csgi_arena__recycler *recycler)
{
    while (recycler->free_chunks) {
        csgi_arena__chunk *chunk = recycler->free_chunks;
        recycler->free_chunks = chunk->next;
        csgi__free(chunk);
    }
    recycler->count = 0;
}

void csgi_arena__init(csgi_arena *arena, csgi_arena__recycler *recycler)
{
    memset(arena, 0, sizeof(*arena));
    arena->recycler = recycler;
}

static csgi_arena__chunk *chunk_get(csgi_arena__recycler *recycler)
{
    if (recycler && recycler->free_chunks) {
        csgi_arena__chunk *chunk = recycler->free_chunks;
        recycler->free_chunks = chunk->next;
        recycler->count--;
        return chunk;
    }
    return csgi__malloc(CSGI_ARENA__CHUNK_SIZE);
}

static void chunk_put(csgi_arena__recycler *recycler, csgi_arena__chunk *chunk)
{
    if (recycler && recycler->count < recycler->max) {
        chunk->next = recycler->free_chunks;
        recycler->free_chunks = chunk;
        recycler->count++;
        return;
    }
    csgi__free(chunk);
}

void *csgi_arena__alloc_slow(csgi_arena *arena, size_t size)
{
    if (size == 0)
        size = 1;
    if (size > SIZE_MAX - ALIGNMENT)
        return NULL;
    size_t rounded = (size + ALIGNMENT - 1) & ~(ALIGNMENT - 1);

    if (rounded > CHUNK_DATA / 4) {
        if (rounded > SIZE_MAX - sizeof(large_block))
            return NULL;
        large_block *block = csgi__malloc(sizeof(large_block) + rounded);
        if (!block)
            return NULL;
        block->next = arena->large;
        arena->large = block;
        arena->allocated += rounded;
        return block->data;
    }

    if ((size_t)(arena->end - arena->cursor) < rounded) {
        csgi_arena__chunk *chunk = chunk_get(arena->recycler);
        if (!chunk)
            return NULL;
        chunk->next = arena->chunk;
        arena->chunk = chunk;
        arena->cursor = chunk->data;
        arena->end = chunk->data + CHUNK_DATA;
    }
    void *p = arena->cursor;
    arena->cursor += rounded;
    arena->allocated += rounded;
    return p;
}

char *csgi_arena__strndup(csgi_arena *arena, const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *copy = csgi_arena__alloc(arena, len + 1);
    if (copy) {
        if (len)
            memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

int csgi_arena__defer(csgi_arena *arena, void (*fn)(void *data), void *data)
{
    csgi_arena__deferred *d = csgi_arena__alloc(arena, sizeof(*d));
    if (!d)
        return CSGI_ENOMEM;
    d->fn = fn;
    d->data = data;
    d->next = arena->defers;
    arena->defers = d;
    return 0;
}

void csgi_arena__clear(csgi_arena *arena)
{
    /* Callbacks may still read arena memory, so they run before any of it
       is released. A callback may register further callbacks: loop until
       none is left. */
    while (arena->defers) {
        csgi_arena__deferred *d = arena->defers;
        arena->defers = d->next;
        d->fn(d->data);
    }
    while (arena->large) {
        large_block *block = arena->large;
        arena->large = block->next;
        csgi__free(block);
    }
    while (arena->chunk) {
        csgi_arena__chunk *chunk = arena->chunk;
        arena->chunk = chunk->next;
        chunk_put(arena->recycler, chunk);
    }
    arena->cursor = arena->end = NULL;
    arena->allocated = 0;
}
