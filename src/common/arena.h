/*
 * Request arenas (internal).
 *
 * Everything a request needs while it lives (the copy of its head, the
 * header array, later the environ, parsed query and cookies) is carved from
 * its arena, and released at once when the request ends. Deferred callbacks
 * release what lives outside the arena (files, JSON values, middleware
 * state), in reverse order of registration.
 *
 * Arenas grow in chunks of CSGI_ARENA__CHUNK_SIZE bytes; a recycler (one per
 * event loop, so no locking) keeps a few freed chunks for the next request,
 * which makes a typical request cost no malloc at all for its arena.
 * Allocations above a quarter chunk get a block of their own.
 */
#ifndef CSGI_COMMON_ARENA_H
#define CSGI_COMMON_ARENA_H

#include <stddef.h>

#define CSGI_ARENA__CHUNK_SIZE 4096

typedef struct csgi_arena__chunk csgi_arena__chunk;
typedef struct csgi_arena__deferred csgi_arena__deferred;

/* Freed chunks kept for reuse by one thread. */
typedef struct csgi_arena__recycler {
    csgi_arena__chunk *free_chunks;
    size_t count;
    size_t max; /* chunks kept at most; the rest go back to the allocator */
} csgi_arena__recycler;

typedef struct csgi_arena {
    csgi_arena__chunk *chunk; /* current chunk (head of the chunk list) */
    char *cursor;             /* next free byte in the current chunk */
    char *end;                /* end of the current chunk */
    void *large;              /* list of blocks of their own */
    csgi_arena__deferred *defers;
    csgi_arena__recycler *recycler; /* borrowed; may be NULL */
    size_t allocated;               /* bytes handed out, for limits and statistics */
} csgi_arena;

/* A recycler keeping at most max chunks. */
void csgi_arena__recycler_init(csgi_arena__recycler *recycler, size_t max);
/* Free every kept chunk. */
void csgi_arena__recycler_clear(csgi_arena__recycler *recycler);

/* An empty arena; recycler may be NULL. Allocates nothing. */
void csgi_arena__init(csgi_arena *arena, csgi_arena__recycler *recycler);

/* The slow path of csgi_arena__alloc: a new chunk, or a block of its own. */
void *csgi_arena__alloc_slow(csgi_arena *arena, size_t size);

#define CSGI_ARENA__ALIGN 16 /* alignof(max_align_t) on the platforms csgi builds on */

/* size bytes aligned for any type, or NULL when memory is exhausted. The
   common case (room in the current chunk) is inline: a request makes
   a dozen of these. */
static inline void *csgi_arena__alloc(csgi_arena *arena, size_t size)
{
    size_t rounded = (size + CSGI_ARENA__ALIGN - 1) & ~(size_t)(CSGI_ARENA__ALIGN - 1);
    if (size - 1 < CSGI_ARENA__CHUNK_SIZE / 8 && (size_t)(arena->end - arena->cursor) >= rounded) {
        void *p = arena->cursor;
        arena->cursor += rounded;
        arena->allocated += rounded;
        return p;
    }
    return csgi_arena__alloc_slow(arena, size);
}

/* A NUL-terminated copy of len bytes, or NULL. */
char *csgi_arena__strndup(csgi_arena *arena, const char *s, size_t len);

/* Run fn(data) when the arena is cleared. Returns 0, or CSGI_ENOMEM (then
   fn is NOT called: the caller still owns data). */
int csgi_arena__defer(csgi_arena *arena, void (*fn)(void *data), void *data);

/* Run the deferred callbacks (last registered first), then release all
   memory. The arena is empty and reusable afterwards. */
void csgi_arena__clear(csgi_arena *arena);

#endif
