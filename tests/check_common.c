/* Error table, version, allocator and arena. */
#include "common/alloc.h"
#include "common/arena.h"

#include <csgi.h>

#include "test_alloc.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(error_table)
{
    ck_assert_str_eq(csgi_strerror(CSGI_ENOMEM), "out of memory");
    ck_assert_str_eq(csgi_err_name(CSGI_ENOMEM), "CSGI_ENOMEM");
    ck_assert_str_eq(csgi_err_name(CSGI_EADDRINUSE), "CSGI_EADDRINUSE");
    ck_assert_str_eq(csgi_err_name(0), "CSGI_OK");
    ck_assert_str_eq(csgi_strerror(0), "success");
    ck_assert_str_eq(csgi_strerror(-9999), "unknown error");
    ck_assert_str_eq(csgi_err_name(12345), "CSGI_EUNKNOWN");
    /* Every code in the table has a distinct name and a real text. */
    for (int e = -1; e > CSGI_E_LAST_; e--) {
        ck_assert_str_ne(csgi_strerror(e), "unknown error");
        ck_assert_int_eq(strncmp(csgi_err_name(e), "CSGI_E", 6), 0);
        for (int f = e - 1; f > CSGI_E_LAST_; f--)
            ck_assert_str_ne(csgi_err_name(e), csgi_err_name(f));
    }
}
END_TEST

START_TEST(version)
{
    char expected[32];
    snprintf(expected, sizeof(expected), "%d.%d.%d", CSGI_VERSION_MAJOR, CSGI_VERSION_MINOR,
             CSGI_VERSION_PATCH);
    ck_assert_str_eq(csgi_version_string(), expected);
}
END_TEST

START_TEST(allocator_replaced)
{
    ck_assert_int_eq(csgi_set_allocator(test_alloc_malloc, NULL, free), CSGI_EINVAL);
    ck_assert_int_eq(test_alloc_install(), 0);
    test_alloc_fail_after(1);
    void *a = csgi__malloc(10);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_null(csgi__malloc(10));
    ck_assert_int_eq(test_alloc_count(), 1);
    csgi__free(a);
    test_alloc_fail_never();
    ck_assert_ptr_null(csgi__calloc(SIZE_MAX / 2, 4)); /* overflow refused */
    ck_assert_int_eq(test_alloc_restore(), 0);
}
END_TEST

START_TEST(arena_alloc_and_alignment)
{
    csgi_arena__recycler recycler;
    csgi_arena__recycler_init(&recycler, 4);
    csgi_arena arena;
    csgi_arena__init(&arena, &recycler);
    char *previous = NULL;
    for (int i = 1; i < 2000; i++) {
        char *p = csgi_arena__alloc(&arena, (size_t)(i % 37) + 1);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq((uintptr_t)p % _Alignof(max_align_t), 0);
        memset(p, 0xAB, (size_t)(i % 37) + 1);
        ck_assert_ptr_ne(p, previous);
        previous = p;
    }
    char *big = csgi_arena__alloc(&arena, 100000); /* a block of its own */
    ck_assert_ptr_nonnull(big);
    memset(big, 1, 100000);
    char *copy = csgi_arena__strndup(&arena, "hello world", 5);
    ck_assert_str_eq(copy, "hello");
    csgi_arena__clear(&arena);
    ck_assert_uint_gt(recycler.count, 0);
    ck_assert_uint_le(recycler.count, 4);
    /* The arena is reusable and takes chunks from the recycler. */
    size_t kept = recycler.count;
    ck_assert_ptr_nonnull(csgi_arena__alloc(&arena, 16));
    ck_assert_uint_eq(recycler.count, kept - 1);
    csgi_arena__clear(&arena);
    csgi_arena__recycler_clear(&recycler);
    ck_assert_uint_eq(recycler.count, 0);
}
END_TEST

static char order[8];
static int order_len;

static void record(void *data)
{
    order[order_len++] = *(char *)data;
}

START_TEST(arena_defer_order)
{
    csgi_arena arena;
    csgi_arena__init(&arena, NULL);
    static char a = 'a', b = 'b', c = 'c';
    order_len = 0;
    ck_assert_int_eq(csgi_arena__defer(&arena, record, &a), 0);
    ck_assert_int_eq(csgi_arena__defer(&arena, record, &b), 0);
    ck_assert_int_eq(csgi_arena__defer(&arena, record, &c), 0);
    csgi_arena__clear(&arena);
    ck_assert_int_eq(order_len, 3);
    ck_assert_int_eq(memcmp(order, "cba", 3), 0);
    csgi_arena__clear(&arena); /* nothing runs twice */
    ck_assert_int_eq(order_len, 3);
}
END_TEST

START_TEST(arena_out_of_memory)
{
    ck_assert_int_eq(test_alloc_install(), 0);
    csgi_arena arena;
    csgi_arena__init(&arena, NULL);
    test_alloc_fail_after(0);
    ck_assert_ptr_null(csgi_arena__alloc(&arena, 10));
    ck_assert_int_eq(csgi_arena__defer(&arena, record, NULL), CSGI_ENOMEM);
    test_alloc_fail_never();
    ck_assert_ptr_nonnull(csgi_arena__alloc(&arena, 10));
    csgi_arena__clear(&arena);
    test_alloc_restore();
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("common");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, error_table);
    tcase_add_test(tc, version);
    tcase_add_test(tc, allocator_replaced);
    tcase_add_test(tc, arena_alloc_and_alignment);
    tcase_add_test(tc, arena_defer_order);
    tcase_add_test(tc, arena_out_of_memory);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
