/*
 * An allocator for the out-of-memory tests: it counts the allocations that
 * succeed and, once a budget is set, refuses every allocation after that
 * many (malloc and realloc alike; free is the C library's).
 *
 * A test installs it, sets a budget, runs the code under test, lifts the
 * budget and restores csgi's default allocator:
 *
 *     ck_assert_int_eq(test_alloc_install(), 0);
 *     test_alloc_fail_after(n);   the (n+1)th allocation and all later fail
 *     ...
 *     test_alloc_fail_never();
 *     test_alloc_restore();
 *
 * The state is global to the test process (Check forks each test; with
 * CK_FORK=no every test leaves the budget lifted).
 */
#ifndef CSGI_TESTS_TEST_ALLOC_H
#define CSGI_TESTS_TEST_ALLOC_H

#include <stddef.h>

/* The allocator's functions, for tests of csgi_set_allocator itself. */
void *test_alloc_malloc(size_t size);
void *test_alloc_realloc(void *p, size_t size);

/* Install the counting allocator with csgi_set_allocator, no budget and a
   count of 0. Returns csgi_set_allocator's result. */
int test_alloc_install(void);

/* Restore csgi's default allocator (budget lifted). Returns
   csgi_set_allocator's result. */
int test_alloc_restore(void);

/* Reset the count to 0 and let n more allocations succeed; every later one
   fails until the budget is lifted. n < 0 means no budget. */
void test_alloc_fail_after(long n);

/* Lift the budget; the count is kept. */
void test_alloc_fail_never(void);

/* How many allocations succeeded since the last reset. */
long test_alloc_count(void);

#endif
