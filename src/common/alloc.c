#include "common/alloc.h"

#include <csgi/common.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static csgi_malloc_fn malloc_impl = malloc;
static csgi_realloc_fn realloc_impl = realloc;
static csgi_free_fn free_impl = free;

int csgi_set_allocator(csgi_malloc_fn malloc_fn, csgi_realloc_fn realloc_fn, csgi_free_fn free_fn)
{
    if (!malloc_fn && !realloc_fn && !free_fn) {
        malloc_impl = malloc;
        realloc_impl = realloc;
        free_impl = free;
        return 0;
    }
    if (!malloc_fn || !realloc_fn || !free_fn)
        return CSGI_EINVAL;
    malloc_impl = malloc_fn;
    realloc_impl = realloc_fn;
    free_impl = free_fn;
    return 0;
}

void *csgi__malloc(size_t size)
{
    return malloc_impl(size ? size : 1);
}

void *csgi__calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = csgi__malloc(count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *csgi__realloc(void *ptr, size_t size)
{
    return realloc_impl(ptr, size ? size : 1);
}

void csgi__free(void *ptr)
{
    if (ptr)
        free_impl(ptr);
}

char *csgi__strndup(const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *copy = csgi__malloc(len + 1);
    if (copy) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}
