/* The counting, failing allocator of the out-of-memory tests (test_alloc.h). */
#include "test_alloc.h"

#include <csgi/common.h>

#include <stdlib.h>

static long budget = -1; /* successes allowed since the reset; -1: no budget */
static long count;       /* allocations that succeeded since the last reset */

void *test_alloc_malloc(size_t size)
{
    if (budget >= 0 && count >= budget)
        return NULL;
    count++;
    return malloc(size);
}

void *test_alloc_realloc(void *p, size_t size)
{
    if (budget >= 0 && count >= budget)
        return NULL;
    count++;
    return realloc(p, size);
}

int test_alloc_install(void)
{
    budget = -1;
    count = 0;
    return csgi_set_allocator(test_alloc_malloc, test_alloc_realloc, free);
}

int test_alloc_restore(void)
{
    budget = -1;
    return csgi_set_allocator(NULL, NULL, NULL);
}

void test_alloc_fail_after(long n)
{
    count = 0;
    budget = n;
}

void test_alloc_fail_never(void)
{
    budget = -1;
}

long test_alloc_count(void)
{
    return count;
}
