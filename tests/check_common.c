/* Error table, version, allocator, arena, byte classes, header names, dates
   and growing arrays. */
#include "common/alloc.h"
#include "common/arena.h"
#include "common/chartab.h"
#include "common/date.h"
#include "common/options.h"
#include "common/token.h"
#include "common/vec.h"

#include <csgi.h>

#include "test_alloc.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

/* ---- Byte classes ------------------------------------------------------------ */

/* The classes as the RFCs define them, written here without the generator. */
static int rfc_alpha(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int rfc_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int rfc_in(int c, const char *set)
{
    return c != 0 && strchr(set, c) != NULL;
}

static int rfc_vchar(int c)
{
    return c > 0x20 && c < 0x7f;
}

static int rfc_unreserved(int c)
{
    return rfc_alpha(c) || rfc_digit(c) || rfc_in(c, "-._~");
}

static int rfc_sub_delims(int c)
{
    return rfc_in(c, "!$&'()*+,;=");
}

START_TEST(chartab_matches_rfc)
{
    for (int c = 0; c < 256; c++) {
        unsigned char b = (unsigned char)c;
        int tchar = rfc_alpha(c) || rfc_digit(c) || rfc_in(c, "!#$%&'*+-.^_`|~");
        int field_vchar = rfc_vchar(c) || c >= 0x80;
        int ws = c == ' ' || c == '\t';
        struct {
            const char *name;
            int expected, actual;
        } cases[] = {
            {"tchar", tchar, csgi_char__is_tchar(b)},
            {"field-vchar", field_vchar, csgi_char__is_field_vchar(b)},
            {"field", field_vchar || ws, csgi_char__is_field(b)},
            {"qdtext", (field_vchar || ws) && c != '"' && c != '\\', csgi_char__is_qdtext(b)},
            {"hexdig", rfc_digit(c) || rfc_in(c, "abcdefABCDEF"), csgi_char__is_hexdig(b)},
            {"digit", rfc_digit(c), csgi_char__is_digit(b)},
            {"alpha", rfc_alpha(c), csgi_char__is_alpha(b)},
            {"ws", ws, csgi_char__is_ws(b)},
            {"unreserved", rfc_unreserved(c), csgi_char__is_unreserved(b)},
            {"sub-delims", rfc_sub_delims(c), csgi_char__is_sub_delims(b)},
            {"path", rfc_unreserved(c) || rfc_sub_delims(c) || rfc_in(c, ":@/"),
             csgi_char__is_path(b)},
            {"target", (rfc_vchar(c) && c != '#') || c >= 0x80, csgi_char__is_target(b)},
            {"name", tchar && c != '_', csgi_char__is_name(b)},
            {"etagc", (rfc_vchar(c) && c != '"') || c >= 0x80, csgi_char__is_etagc(b)},
            {"cookie-octet", rfc_vchar(c) && !rfc_in(c, "\",;\\"), csgi_char__is_cookie_octet(b)},
            {"bchars", rfc_alpha(c) || rfc_digit(c) || rfc_in(c, "'()+_,-./:=? "),
             csgi_char__is_bchar(b)},
            {"target-mark", rfc_in(c, "?.%"), csgi_char__is_target_mark(b)},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
            ck_assert_msg(cases[i].expected == cases[i].actual, "byte 0x%02x: %s is %d", c,
                          cases[i].name, cases[i].actual);
        int hex = csgi_char__hex_value(b);
        ck_assert_int_eq(hex, rfc_digit(c)           ? c - '0'
                              : c >= 'a' && c <= 'f' ? c - 'a' + 10
                              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                     : -1);
        ck_assert_int_eq(csgi_char__lower(b), c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    /* Several classes at once: one lookup. */
    ck_assert(csgi_char__is('7', CSGI_CHAR__ALPHA | CSGI_CHAR__DIGIT));
    ck_assert(!csgi_char__is('-', CSGI_CHAR__ALPHA | CSGI_CHAR__DIGIT));
    ck_assert(csgi_char__is_token("X-Forwarded-For", 15));
    ck_assert(!csgi_char__is_token("", 0));
    ck_assert(!csgi_char__is_token("a b", 3));
    ck_assert(!csgi_char__is_token("a\0b", 3));
    /* Copy and check in one loop: the bytes are copied either way. */
    char copy[16] = "";
    ck_assert(csgi_char__copy_all(copy, "Set-Cookie", 10, CSGI_CHAR__TCHAR));
    ck_assert_str_eq(copy, "Set-Cookie");
    ck_assert(!csgi_char__copy_all(copy, "a b", 3, CSGI_CHAR__TCHAR));
    ck_assert(memcmp(copy, "a b", 3) == 0);
    ck_assert(!csgi_char__copy_all(copy, "", 0, CSGI_CHAR__TCHAR));
}
END_TEST

START_TEST(percent_encode_outside_class)
{
    char out[64];
    static const char path[] = "/a b/\xc3\xa9?#%~:@!";
    size_t len = csgi_char__percent_encode(NULL, path, sizeof(path) - 1, CSGI_CHAR__PATH);
    ck_assert_uint_lt(len, sizeof(out));
    ck_assert_uint_eq(csgi_char__percent_encode(out, path, sizeof(path) - 1, CSGI_CHAR__PATH), len);
    out[len] = '\0';
    ck_assert_str_eq(out, "/a%20b/%C3%A9%3F%23%25~:@!");
    ck_assert_uint_eq(csgi_char__percent_encode(out, "", 0, CSGI_CHAR__PATH), 0);
    ck_assert_uint_eq(csgi_char__percent_encode(out, "\0", 1, CSGI_CHAR__PATH), 3);
    ck_assert_int_eq(memcmp(out, "%00", 3), 0);
}
END_TEST

START_TEST(equal_nocase_letters_only)
{
    ck_assert(csgi_char__equal_nocase("Content-Type", "content-type", 12));
    ck_assert(csgi_char__equal_nocase("CONTENT-TYPE", "content-type", 12));
    /* '\r' | 0x20 is '-': only letters may differ in case */
    ck_assert(!csgi_char__equal_nocase("content\rtype", "content-type", 12));
    ck_assert(!csgi_char__equal_nocase("content-typ\x05", "content-type", 12));
    ck_assert(!csgi_char__equal_nocase("\x10", "0", 1));
    ck_assert(csgi_char__equal_nocase("anything", "", 0));
}
END_TEST

/* ---- Header names ------------------------------------------------------------ */

static void upper_copy(char *out, const char *in, size_t len)
{
    for (size_t i = 0; i < len; i++)
        out[i] = (char)(in[i] >= 'a' && in[i] <= 'z' ? in[i] - 32 : in[i]);
}

START_TEST(token_lookup_every_name)
{
    ck_assert_int_eq(csgi_token__table[CSGI_TOKEN__UNKNOWN].len, 0);
    for (int id = 1; id < CSGI_TOKEN__COUNT; id++) {
        const csgi_token__info *t = &csgi_token__table[id];
        char lower[64], upper[64];
        ck_assert_uint_eq(strlen(t->name), t->len);
        ck_assert_msg(csgi_char__is_token(t->name, t->len), "%s is not a token", t->name);
        ck_assert_int_eq(csgi_token__lookup(t->name, t->len), id);
        for (size_t i = 0; i < t->len; i++)
            lower[i] = (char)csgi_char__lower((unsigned char)t->name[i]);
        upper_copy(upper, t->name, t->len);
        ck_assert_int_eq(csgi_token__lookup(lower, t->len), id);
        ck_assert_int_eq(csgi_token__lookup(upper, t->len), id);
        /* one byte more or less, or the last one changed, is another name */
        ck_assert_int_eq(csgi_token__lookup(t->name, t->len - 1), CSGI_TOKEN__UNKNOWN);
        upper[t->len] = 'X';
        ck_assert_int_eq(csgi_token__lookup(upper, t->len + 1), CSGI_TOKEN__UNKNOWN);
        upper[t->len - 1] = '~';
        ck_assert_int_eq(csgi_token__lookup(upper, t->len), CSGI_TOKEN__UNKNOWN);
        upper[0] = '!';
        ck_assert_int_eq(csgi_token__lookup(upper, t->len), CSGI_TOKEN__UNKNOWN);
    }
    ck_assert_int_eq(csgi_token__lookup("content-type", 12), CSGI_TOKEN__CONTENT_TYPE);
    ck_assert_str_eq(csgi_token__table[CSGI_TOKEN__WWW_AUTHENTICATE].name, "WWW-Authenticate");
    ck_assert_int_eq(csgi_token__lookup("content\rtype", 12), CSGI_TOKEN__UNKNOWN);
    ck_assert_int_eq(csgi_token__lookup("", 0), CSGI_TOKEN__UNKNOWN);
    ck_assert_int_eq(csgi_token__lookup("X-Request-Id", 12), CSGI_TOKEN__UNKNOWN);
}
END_TEST

/* RFC 9110 7.6.1 and RFC 9112 (Keep-Alive, Proxy-Connection): the fields a
   proxy or server must not forward; csgi also reserves every Proxy-* name. */
static int expect_hop_by_hop(const char *name)
{
    static const char *const hop[] = {"connection", "keep-alive", "te",
                                      "trailer",    "upgrade",    "transfer-encoding"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (strcasecmp(name, hop[i]) == 0)
            return 1;
    return strncasecmp(name, "proxy-", 6) == 0 && name[6] != '\0';
}

START_TEST(token_flags)
{
    const char *names[] = {"Connection",
                           "KEEP-ALIVE",
                           "te",
                           "Trailer",
                           "Trailers",
                           "Upgrade",
                           "Transfer-Encoding",
                           "Proxy-Authenticate",
                           "Proxy-Authorization",
                           "proxy-connection",
                           "Proxy-Status",
                           "Proxy-",
                           "Proxy",
                           "Content-Type",
                           "Content-Length",
                           "Date",
                           "Via",
                           "X-Connection",
                           "Set-Cookie",
                           "Cookie",
                           "tE",
                           "T"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ck_assert_msg(csgi_token__is_hop_by_hop(names[i], strlen(names[i])) ==
                          expect_hop_by_hop(names[i]),
                      "%s", names[i]);
    /* every known name: the flag agrees with the list above */
    for (int id = 1; id < CSGI_TOKEN__COUNT; id++) {
        const csgi_token__info *t = &csgi_token__table[id];
        ck_assert_msg(((t->flags & CSGI_TOKEN__HOP_BY_HOP) != 0) == expect_hop_by_hop(t->name),
                      "%s", t->name);
        /* representation metadata: Content-* but Content-Location */
        int content = strncasecmp(t->name, "Content-", 8) == 0 &&
                      strcasecmp(t->name, "Content-Location") != 0;
        ck_assert_msg(((t->flags & CSGI_TOKEN__CONTENT) != 0) == content, "%s", t->name);
    }
    ck_assert_uint_eq(csgi_token__flags("Content-MD5", 11), CSGI_TOKEN__CONTENT);
    ck_assert_uint_eq(csgi_token__flags("Content-", 8), 0);
    ck_assert_uint_eq(csgi_token__flags("Content-Location", 16), 0);
    ck_assert(csgi_token__flags("Set-Cookie", 10) & CSGI_TOKEN__REPEATABLE);
    ck_assert(csgi_token__flags("Vary", 4) & CSGI_TOKEN__REPEATABLE);
    ck_assert(!(csgi_token__flags("Cookie", 6) & CSGI_TOKEN__REPEATABLE));
    ck_assert(!(csgi_token__flags("Content-Type", 12) & CSGI_TOKEN__REPEATABLE));
    ck_assert(!(csgi_token__flags("Host", 4) & CSGI_TOKEN__REPEATABLE));
    ck_assert_uint_eq(csgi_token__flags("X-Anything", 10), 0);
}
END_TEST

/* ---- Dates --------------------------------------------------------------------- */

START_TEST(date_format_matches_libc)
{
    /* From 1970 to 2200 in uneven steps, and a few before 1970. */
    for (int64_t t = -86400LL * 365 * 3; t < 7258118400LL; t += 86400LL * 17 + 3601 * 7 + 13) {
        time_t when = (time_t)t;
        struct tm tm;
        ck_assert_ptr_nonnull(gmtime_r(&when, &tm));
        char expected[64];
        /* strftime's %a and %b are English in the C locale the tests run in */
        strftime(expected, sizeof(expected), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        char text[CSGI_DATE__LEN + 1];
        text[CSGI_DATE__LEN] = '\0';
        ck_assert_int_eq(csgi_date__format(when, text), 0);
        ck_assert_str_eq(text, expected);
        time_t back;
        ck_assert_int_eq(csgi_date__parse(text, &back), 0);
        ck_assert_int_eq((int64_t)back, t);
    }
}
END_TEST

START_TEST(date_edges_and_stamp)
{
    char text[CSGI_DATE__LEN + 1] = "";
    ck_assert_int_eq(csgi_date__format((time_t)-62167219200LL, text), 0);
    ck_assert_str_eq(text, "Sat, 01 Jan 0000 00:00:00 GMT");
    ck_assert_int_eq(csgi_date__format((time_t)253402300799LL, text), 0);
    ck_assert_str_eq(text, "Fri, 31 Dec 9999 23:59:59 GMT");
    memcpy(text, "untouched", 10);
    ck_assert_int_eq(csgi_date__format((time_t)253402300800LL, text), CSGI_ERANGE);
    ck_assert_int_eq(csgi_date__format((time_t)-62167219201LL, text), CSGI_ERANGE);
    ck_assert_str_eq(text, "untouched");
    time_t t = 1;
    ck_assert_int_eq(csgi_date__parse("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
    ck_assert_int_eq((int64_t)t, 784111777);
    ck_assert_int_eq(csgi_date__parse("Sun Nov  6 08:49:37 1994", &t), 0);
    ck_assert_int_eq((int64_t)t, 784111777);
    ck_assert_int_eq(csgi_date__parse("Sun, 06 Nov 1994 08:49:37 UTC", &t), CSGI_EPARSE);
    char stamp[CSGI_DATE__STAMP_SIZE];
    csgi_date__stamp((time_t)784111777, stamp);
    ck_assert_str_eq(stamp, "1994-11-06T08:49:37Z");
}
END_TEST

/* ---- Growing arrays ------------------------------------------------------------ */

START_TEST(vec_grow_rule)
{
    static const struct {
        size_t capacity, needed, item_size, max_items;
        int rc;
        size_t out;
    } cases[] = {
        /* empty: CSGI_VEC__FIRST_BYTES worth, or what is needed */
        {0, 1, 1, SIZE_MAX, 0, CSGI_VEC__FIRST_BYTES},
        {0, 1, 32, SIZE_MAX, 0, CSGI_VEC__FIRST_BYTES / 32},
        {0, 1, 1000, SIZE_MAX, 0, 1},
        {0, 5000, 1, SIZE_MAX, 0, 5000},
        /* enough already: unchanged */
        {16, 16, 8, 16, 0, 16},
        /* doubling, or what is needed when that is more */
        {300, 301, 1, SIZE_MAX, 0, 600},
        {300, 1000, 1, SIZE_MAX, 0, 1000},
        /* the cap: never above it, and needing more is refused */
        {300, 301, 1, 400, 0, 400},
        {0, 1, 1, 10, 0, 10},
        {400, 401, 1, 400, CSGI_ETOOBIG, 7},
        /* sizes that overflow a size_t: no wrap-around */
        {0, SIZE_MAX / 8 + 1, 8, SIZE_MAX, CSGI_ENOMEM, 7},
        {SIZE_MAX / 16 - 1, SIZE_MAX / 16, 16, SIZE_MAX, 0, SIZE_MAX / 16},
        {SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 2, 1, SIZE_MAX, 0, SIZE_MAX},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t out = 7; /* kept on error */
        int rc = csgi_vec__grow(cases[i].capacity, cases[i].needed, cases[i].item_size,
                                cases[i].max_items, &out);
        ck_assert_msg(rc == cases[i].rc, "case %zu: rc %d", i, rc);
        ck_assert_msg(out == cases[i].out, "case %zu: capacity %zu", i, out);
    }
}
END_TEST

START_TEST(vec_reserve_heap)
{
    ck_assert_int_eq(test_alloc_install(), 0);
    int *items = NULL;
    size_t count = 0, capacity = 0;
    for (int i = 0; i < 1000; i++) {
        void *p = items;
        ck_assert_int_eq(csgi_vec__reserve(&p, &capacity, sizeof(int), count + 1, 1000), 0);
        items = p;
        ck_assert_uint_ge(capacity, count + 1);
        ck_assert_uint_le(capacity, 1000);
        items[count++] = i;
    }
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(items[i], i);
    /* the cap holds; nothing changes */
    void *p = items;
    ck_assert_int_eq(csgi_vec__reserve(&p, &capacity, sizeof(int), 1001, 1000), CSGI_ETOOBIG);
    ck_assert_ptr_eq(p, items);
    ck_assert_uint_eq(capacity, 1000);
    csgi__free(items);

    /* a failed allocation leaves the array as it was */
    items = NULL;
    capacity = 0;
    p = NULL;
    ck_assert_int_eq(csgi_vec__reserve(&p, &capacity, sizeof(int), 10, SIZE_MAX), 0);
    items = p;
    items[0] = 42;
    size_t before = capacity;
    test_alloc_fail_after(0);
    ck_assert_int_eq(csgi_vec__reserve(&p, &capacity, sizeof(int), before + 1, SIZE_MAX),
                     CSGI_ENOMEM);
    ck_assert_ptr_eq(p, items);
    ck_assert_uint_eq(capacity, before);
    ck_assert_int_eq(items[0], 42);
    test_alloc_fail_never();
    csgi__free(items);
    ck_assert_int_eq(test_alloc_restore(), 0);
}
END_TEST

START_TEST(vec_reserve_arena)
{
    ck_assert_int_eq(test_alloc_install(), 0);
    csgi_arena arena;
    csgi_arena__init(&arena, NULL);
    char *data = NULL;
    size_t len = 0, capacity = 0;
    for (int i = 0; i < 5000; i++) {
        void *p = data;
        ck_assert_int_eq(csgi_vec__reserve_in(&arena, &p, &capacity, 1, len, len + 1, SIZE_MAX), 0);
        data = p;
        data[len++] = (char)('a' + i % 26);
    }
    for (size_t i = 0; i < len; i++)
        ck_assert_int_eq(data[i], 'a' + (int)(i % 26));
    void *p = data;
    size_t before = capacity;
    ck_assert_int_eq(csgi_vec__reserve_in(&arena, &p, &capacity, 1, len, before + 1, before),
                     CSGI_ETOOBIG);
    test_alloc_fail_after(0);
    ck_assert_int_eq(csgi_vec__reserve_in(&arena, &p, &capacity, 1, len, before + 1, SIZE_MAX),
                     CSGI_ENOMEM);
    ck_assert_ptr_eq(p, data);
    ck_assert_uint_eq(capacity, before);
    test_alloc_fail_never();
    csgi_arena__clear(&arena);
    ck_assert_int_eq(test_alloc_restore(), 0);
}
END_TEST

START_TEST(options_version_range)
{
    ck_assert(!csgi_options__version_ok(0, 3));
    ck_assert(csgi_options__version_ok(1, 3));
    ck_assert(csgi_options__version_ok(3, 3));
    ck_assert(!csgi_options__version_ok(4, 3));
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
    tc = tcase_create("tables");
    tcase_add_test(tc, chartab_matches_rfc);
    tcase_add_test(tc, percent_encode_outside_class);
    tcase_add_test(tc, equal_nocase_letters_only);
    tcase_add_test(tc, token_lookup_every_name);
    tcase_add_test(tc, token_flags);
    suite_add_tcase(suite, tc);
    tc = tcase_create("dates");
    tcase_add_test(tc, date_format_matches_libc);
    tcase_add_test(tc, date_edges_and_stamp);
    suite_add_tcase(suite, tc);
    tc = tcase_create("growth");
    tcase_add_test(tc, vec_grow_rule);
    tcase_add_test(tc, vec_reserve_heap);
    tcase_add_test(tc, vec_reserve_arena);
    tcase_add_test(tc, options_version_range);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
