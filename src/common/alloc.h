/* The allocator csgi uses for its own memory (replaceable, see csgi_set_allocator). */
#ifndef CSGI_COMMON_ALLOC_H
#define CSGI_COMMON_ALLOC_H

#include <stddef.h>

void *csgi__malloc(size_t size);
void *csgi__calloc(size_t count, size_t size);
void *csgi__realloc(void *ptr, size_t size);
void csgi__free(void *ptr);

/* A copy of len bytes plus a terminating NUL, or NULL. */
char *csgi__strndup(const char *s, size_t len);

#endif
