/* Suite "negotiate": Accept lists, HTTP dates, entity tags, ranges (csgi/negotiate.h). */
#include <csgi.h>

#include <check.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Accept ------------------------------------------------------------------- */

START_TEST(accept_no_header_takes_first_offer)
{
    static const char *const offers[] = {"text/html", "application/json"};
    ck_assert_int_eq(csgi_accept_best(NULL, offers, 2), 0);
    ck_assert_int_eq(csgi_accept_quality(NULL, "image/png"), 1000);
    ck_assert_int_eq(csgi_accept_best(NULL, offers, 0), -1);
}
END_TEST

START_TEST(accept_rfc_example_specificity)
{
    /* RFC 9110 12.5.1 */
    const char *header = "text/*;q=0.3, text/plain;q=0.7, text/plain;format=flowed, "
                         "text/plain;format=fixed;q=0.4, */*;q=0.5";
    ck_assert_int_eq(csgi_accept_quality(header, "text/plain;format=flowed"), 1000);
    ck_assert_int_eq(csgi_accept_quality(header, "text/plain"), 700);
    ck_assert_int_eq(csgi_accept_quality(header, "text/html"), 300);
    ck_assert_int_eq(csgi_accept_quality(header, "image/jpeg"), 500);
    ck_assert_int_eq(csgi_accept_quality(header, "text/plain;format=fixed"), 400);
    ck_assert_int_eq(csgi_accept_quality(header, "text/html;level=3"), 300);
}
END_TEST

START_TEST(accept_best_by_quality_then_order)
{
    static const char *const offers[] = {"text/html", "application/json", "text/plain"};
    ck_assert_int_eq(csgi_accept_best("application/json", offers, 3), 1);
    ck_assert_int_eq(csgi_accept_best("text/html;q=0.5, application/json;q=0.9", offers, 3), 1);
    /* a tie keeps the server's order */
    ck_assert_int_eq(csgi_accept_best("*/*", offers, 3), 0);
    ck_assert_int_eq(csgi_accept_best("text/plain, application/json", offers, 3), 1);
    ck_assert_int_eq(csgi_accept_best("TEXT/PLAIN", offers, 3), 2);
    ck_assert_int_eq(csgi_accept_best("image/png", offers, 3), -1);
}
END_TEST

START_TEST(accept_q_zero_excludes)
{
    static const char *const offers[] = {"text/html", "application/json"};
    ck_assert_int_eq(csgi_accept_best("*/*, text/html;q=0", offers, 2), 1);
    ck_assert_int_eq(csgi_accept_best("text/html;q=0, application/json;q=0.000", offers, 2), -1);
    ck_assert_int_eq(csgi_accept_quality("text/*;q=0, text/html", "text/html"), 1000);
    ck_assert_int_eq(csgi_accept_quality("text/*;q=0, text/html", "text/css"), 0);
}
END_TEST

START_TEST(accept_malformed_elements_skipped)
{
    /* bad q-values, a type without subtype, "*" with a subtype, junk */
    ck_assert_int_eq(csgi_accept_quality("text/html;q=1.5, application/json", "text/html"), 0);
    ck_assert_int_eq(csgi_accept_quality("text/html;q=0.1234, */*;q=0.2", "text/html"), 200);
    ck_assert_int_eq(csgi_accept_quality("text/html;q=2", "text/html"), 1000); /* all bad = none */
    ck_assert_int_eq(csgi_accept_quality("text/html;q=, text/css", "text/html"), 0);
    ck_assert_int_eq(csgi_accept_quality("text, text/css", "text/css"), 1000);
    ck_assert_int_eq(csgi_accept_quality("*/html, text/css;q=0.5", "text/html"), 0);
    ck_assert_int_eq(csgi_accept_quality("text/html garbage, text/css", "text/html"), 0);
    ck_assert_int_eq(csgi_accept_quality(",,, text/html ,", "text/html"), 1000);
    ck_assert_int_eq(
        csgi_accept_quality("text/html;a=\"x,y\";q=0.5, */*;q=0.1", "text/html;a=\"x,y\""), 500);
    ck_assert_int_eq(csgi_accept_quality("text/html;a=\"unterminated, */*", "text/html"), 1000);
    ck_assert_int_eq(csgi_accept_quality("text/html;q=0.5;ext=1", "text/html"), 500);
    ck_assert_int_eq(csgi_accept_quality("text/html;Q=0.25", "text/html"), 250);
    ck_assert_int_eq(csgi_accept_quality("text/html;q=1.000", "text/html"), 1000);
    ck_assert_int_eq(csgi_accept_quality("text/html;q=1.001, */*;q=0.1", "text/html"), 100);
    /* an empty Accept accepts nothing */
    ck_assert_int_eq(csgi_accept_quality("", "text/html"), 0);
    ck_assert_int_eq(csgi_accept_quality("text/html", NULL), 0);
}
END_TEST

START_TEST(accept_params_must_match)
{
    ck_assert_int_eq(csgi_accept_quality("text/html;level=1;q=0.9, text/html;q=0.2", "text/html"),
                     200);
    ck_assert_int_eq(
        csgi_accept_quality("text/html;level=1;q=0.9, text/html;q=0.2", "text/html;level=1"), 900);
    ck_assert_int_eq(csgi_accept_quality("text/html;LEVEL=\"1\"", "text/html; level=1"), 1000);
    ck_assert_int_eq(csgi_accept_quality("text/html;level=2", "text/html;level=1"), 0);
}
END_TEST

START_TEST(accept_language_basic_filtering)
{
    static const char *const offers[] = {"fr", "en-GB", "en"};
    ck_assert_int_eq(csgi_accept_language_quality("en", "en-GB"), 1000);
    ck_assert_int_eq(csgi_accept_language_quality("en", "eng"), 0);
    ck_assert_int_eq(csgi_accept_language_quality("en-GB", "en"), 0);
    ck_assert_int_eq(csgi_accept_language_quality("EN-gb", "en-GB"), 1000);
    ck_assert_int_eq(csgi_accept_language_quality("*;q=0.1, en;q=0.8", "de"), 100);
    ck_assert_int_eq(csgi_accept_language_quality("en;q=0.8, en-GB;q=0.3", "en-GB"), 300);
    ck_assert_int_eq(csgi_accept_language_best("da, en-gb;q=0.8, en;q=0.7", offers, 3), 1);
    ck_assert_int_eq(csgi_accept_language_best("de", offers, 3), -1);
    ck_assert_int_eq(csgi_accept_language_best(NULL, offers, 3), 0);
    ck_assert_int_eq(csgi_accept_language_best("*", offers, 3), 0);
    ck_assert_int_eq(csgi_accept_language_best("en, *;q=0", offers, 3), 1);
    /* malformed ranges: digits in the first subtag, a subtag over 8 */
    ck_assert_int_eq(csgi_accept_language_quality("e1, fr", "e1"), 0);
    ck_assert_int_eq(csgi_accept_language_quality("en-abcdefghi, fr", "en-abcdefghi"), 0);
    ck_assert_int_eq(csgi_accept_language_quality("zh-Hant-TW", "zh-Hant-TW"), 1000);
    ck_assert_int_eq(csgi_accept_language_quality("de-1996", "de-1996"), 1000);
}
END_TEST

START_TEST(accept_encoding_identity_and_star)
{
    static const char *const offers[] = {"br", "gzip", "identity"};
    ck_assert_int_eq(csgi_accept_encoding_best("gzip", offers, 3), 1);
    ck_assert_int_eq(csgi_accept_encoding_best("gzip;q=0.5, br", offers, 3), 0);
    ck_assert_int_eq(csgi_accept_encoding_best("compress", offers, 3), 2);
    ck_assert_int_eq(csgi_accept_encoding_best("", offers, 3), 2);
    ck_assert_int_eq(csgi_accept_encoding_best("*", offers, 3), 0);
    ck_assert_int_eq(csgi_accept_encoding_best(NULL, offers, 3), 0);
    ck_assert_int_eq(csgi_accept_encoding_quality("gzip", "identity"), 1000);
    ck_assert_int_eq(csgi_accept_encoding_quality("identity;q=0", "identity"), 0);
    ck_assert_int_eq(csgi_accept_encoding_quality("*;q=0", "identity"), 0);
    ck_assert_int_eq(csgi_accept_encoding_quality("*;q=0, identity;q=0.5", "identity"), 500);
    ck_assert_int_eq(csgi_accept_encoding_quality("gzip;q=1.0, *;q=0", "br"), 0);
    ck_assert_int_eq(csgi_accept_encoding_quality("x-gzip", "gzip"), 1000);
    ck_assert_int_eq(csgi_accept_encoding_quality("GZIP;q=0.3", "gzip"), 300);
    ck_assert_int_eq(csgi_accept_encoding_best("identity;q=0, *;q=0", offers, 3), -1);
}
END_TEST

/* ---- Dates ------------------------------------------------------------------------- */

START_TEST(date_three_forms)
{
    time_t t = 0;
    ck_assert_int_eq(csgi_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
    ck_assert_int_eq((long long)t, 784111777LL);
    t = 0;
    ck_assert_int_eq(csgi_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
    ck_assert_int_eq((long long)t, 784111777LL);
    t = 0;
    ck_assert_int_eq(csgi_date_parse("Sun Nov  6 08:49:37 1994", &t), 0);
    ck_assert_int_eq((long long)t, 784111777LL);
    ck_assert_int_eq(csgi_date_parse("  Thu, 01 Jan 1970 00:00:00 GMT ", &t), 0);
    ck_assert_int_eq((long long)t, 0);
    ck_assert_int_eq(csgi_date_parse("Tue, 29 Feb 2000 23:59:59 GMT", &t), 0);
    ck_assert_int_eq((long long)t, 951868799LL);
    /* RFC 850 two-digit years: within 50 years ahead, else the past century */
    ck_assert_int_eq(csgi_date_parse("Friday, 01-Jan-21 00:00:00 GMT", &t), 0);
    ck_assert_int_eq((long long)t, 1609459200LL);
}
END_TEST

START_TEST(date_malformed_refused)
{
    static const char *const bad[] = {
        "",
        "Sun, 06 Nov 1994 08:49:37",       /* no GMT */
        "Sun, 06 Nov 1994 08:49:37 UTC",   /* not GMT */
        "Sun, 6 Nov 1994 08:49:37 GMT",    /* one-digit day */
        "Sun, 06 Noe 1994 08:49:37 GMT",   /* month */
        "Sun, 31 Apr 1994 08:49:37 GMT",   /* no 31st */
        "Sun, 29 Feb 1900 08:49:37 GMT",   /* not a leap year */
        "Sun, 06 Nov 1994 24:00:00 GMT",   /* hour */
        "Sun, 06 Nov 1994 08:60:00 GMT",   /* minute */
        "Xyz, 06 Nov 1994 08:49:37 GMT",   /* weekday */
        "Sun, 06 Nov 1994 08:49:37 GMT x", /* trailing junk */
        "Sun, 00 Nov 1994 08:49:37 GMT",   /* day 0 */
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 94",
        "1994-11-06T08:49:37Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        time_t t = 12345;
        ck_assert_msg(csgi_date_parse(bad[i], &t) == CSGI_EPARSE, "accepted \"%s\"", bad[i]);
        ck_assert_int_eq((long long)t, 12345);
    }
    ck_assert_int_eq(csgi_date_parse(NULL, NULL), CSGI_EINVAL);
}
END_TEST

START_TEST(date_format_round_trip)
{
    char text[CSGI_DATE_SIZE];
    ck_assert_int_eq(csgi_date_format(784111777, text), 0);
    ck_assert_str_eq(text, "Sun, 06 Nov 1994 08:49:37 GMT");
    ck_assert_int_eq(csgi_date_format(0, text), 0);
    ck_assert_str_eq(text, "Thu, 01 Jan 1970 00:00:00 GMT");
    ck_assert_int_eq(csgi_date_format(-1, text), 0);
    ck_assert_str_eq(text, "Wed, 31 Dec 1969 23:59:59 GMT");
    for (long long t = -86400LL * 800; t < 4102444800LL; t += 86400LL * 97 + 3631) {
        time_t back = 0;
        ck_assert_int_eq(csgi_date_format((time_t)t, text), 0);
        ck_assert_int_eq(csgi_date_parse(text, &back), 0);
        ck_assert_int_eq((long long)back, t);
    }
    if (sizeof(time_t) > 4) {
        ck_assert_int_eq(csgi_date_format((time_t)253402300800LL, text), CSGI_ERANGE);
        ck_assert_str_eq(text, "");
    }
}
END_TEST

/* ---- Entity tags --------------------------------------------------------------------- */

static csgi_etag tag(const char *text)
{
    csgi_etag out;
    ck_assert_int_eq(csgi_etag_parse(text, strlen(text), &out), 0);
    return out;
}

START_TEST(etag_parse_and_compare)
{
    /* RFC 9110 8.8.3.2's table */
    csgi_etag w1 = tag("W/\"1\""), w2 = tag("W/\"2\""), s1 = tag("\"1\""), s2 = tag("\"2\"");
    ck_assert_int_eq(w1.weak, 1);
    ck_assert_int_eq((int)w1.len, 1);
    ck_assert_int_eq(csgi_etag_compare(&w1, &w1, 0), 0);
    ck_assert_int_eq(csgi_etag_compare(&w1, &w1, 1), 1);
    ck_assert_int_eq(csgi_etag_compare(&w1, &w2, 1), 0);
    ck_assert_int_eq(csgi_etag_compare(&w1, &s1, 0), 0);
    ck_assert_int_eq(csgi_etag_compare(&w1, &s1, 1), 1);
    ck_assert_int_eq(csgi_etag_compare(&s1, &s1, 0), 1);
    ck_assert_int_eq(csgi_etag_compare(&s1, &s2, 1), 0);
    csgi_etag empty = tag("\"\"");
    ck_assert_int_eq((int)empty.len, 0);

    static const char *const bad[] = {"1", "\"1", "w/\"1\"", "W/1", "\"a b\"", "\"a\"x", "W/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        csgi_etag out = {NULL, 99, 7};
        ck_assert_int_eq(csgi_etag_parse(bad[i], strlen(bad[i]), &out), CSGI_EPARSE);
        ck_assert_int_eq((int)out.len, 99);
    }
}
END_TEST

START_TEST(etag_list_match)
{
    csgi_etag mine = tag("\"xyzzy\""), weak_mine = tag("W/\"xyzzy\"");
    ck_assert_int_eq(csgi_etag_list_match("\"xyzzy\"", &mine, 1, 1), 1);
    ck_assert_int_eq(csgi_etag_list_match("\"a\", W/\"xyzzy\" , \"b\"", &mine, 1, 1), 1);
    ck_assert_int_eq(csgi_etag_list_match("\"a\", W/\"xyzzy\"", &mine, 0, 1), 0);
    ck_assert_int_eq(csgi_etag_list_match("\"xyzzy\"", &weak_mine, 0, 1), 0);
    ck_assert_int_eq(csgi_etag_list_match("\"a\", \"b\"", &mine, 1, 1), 0);
    ck_assert_int_eq(csgi_etag_list_match("*", &mine, 1, 1), 1);
    ck_assert_int_eq(csgi_etag_list_match(" * ", NULL, 1, 1), 1);
    ck_assert_int_eq(csgi_etag_list_match("*", NULL, 1, 0), 0);
    ck_assert_int_eq(csgi_etag_list_match("\"xyzzy\"", NULL, 1, 1), 0);
    /* malformed elements are skipped, the good ones still count */
    ck_assert_int_eq(csgi_etag_list_match("bogus, \"xyzzy\"", &mine, 1, 1), 1);
    ck_assert_int_eq(csgi_etag_list_match("\"unterminated, \"xyzzy\"", &mine, 1, 1), 0);
    ck_assert_int_eq(csgi_etag_list_match("\"xyzzy\"junk", &mine, 1, 1), 0);
    ck_assert_int_eq(csgi_etag_list_match("", &mine, 1, 1), 0);
    ck_assert_int_eq(csgi_etag_list_match(NULL, &mine, 1, 1), 0);
}
END_TEST

/* ---- Ranges ------------------------------------------------------------------------------ */

START_TEST(range_parse_forms)
{
    csgi_range ranges[4];
    size_t count = 0;
    ck_assert_int_eq(csgi_range_parse("bytes=0-499, 500-, -300,", ranges, 4, &count), 0);
    ck_assert_uint_eq(count, 3);
    ck_assert_int_eq(ranges[0].first, 0);
    ck_assert_int_eq(ranges[0].last, 499);
    ck_assert_int_eq(ranges[1].first, 500);
    ck_assert_int_eq(ranges[1].last, -1);
    ck_assert_int_eq(ranges[2].first, -1);
    ck_assert_int_eq(ranges[2].last, 300);
    ck_assert_int_eq(csgi_range_parse("Bytes = 1-2", ranges, 4, &count), CSGI_EPARSE);
    ck_assert_int_eq(csgi_range_parse("BYTES=1-2", ranges, 4, &count), 0);

    static const char *const bad[] = {"bytes=",    "bytes=5-4", "bytes=a-b",
                                      "bytes=-",   "items=0-1", "bytes=1-2-3",
                                      "bytes=--1", "bytes=1 2", "bytes=99999999999999999999-",
                                      "bytes",     ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(csgi_range_parse(bad[i], ranges, 4, &count) == CSGI_EPARSE, "accepted %s",
                      bad[i]);
    ck_assert_int_eq(csgi_range_parse("bytes=1-2,3-4,5-6,7-8,9-10", ranges, 4, &count),
                     CSGI_ETOOBIG);
}
END_TEST

START_TEST(range_resolve_cases)
{
    csgi_range r;
    ck_assert_int_eq(csgi_range_resolve("bytes=0-499", 10000, &r), 0);
    ck_assert_int_eq(r.first, 0);
    ck_assert_int_eq(r.last, 499);
    ck_assert_int_eq(csgi_range_resolve("bytes=9500-", 10000, &r), 0);
    ck_assert_int_eq(r.first, 9500);
    ck_assert_int_eq(r.last, 9999);
    ck_assert_int_eq(csgi_range_resolve("bytes=-500", 10000, &r), 0);
    ck_assert_int_eq(r.first, 9500);
    ck_assert_int_eq(r.last, 9999);
    ck_assert_int_eq(csgi_range_resolve("bytes=-50000", 10000, &r), 0);
    ck_assert_int_eq(r.first, 0);
    ck_assert_int_eq(csgi_range_resolve("bytes=5-99999", 10, &r), 0);
    ck_assert_int_eq(r.last, 9);
    /* unsatisfiable ones are dropped; one satisfiable left is served */
    ck_assert_int_eq(csgi_range_resolve("bytes=100-200, 2-3", 10, &r), 0);
    ck_assert_int_eq(r.first, 2);
    ck_assert_int_eq(r.last, 3);
    ck_assert_int_eq(csgi_range_resolve("bytes=10-", 10, &r), CSGI_ERANGE);
    ck_assert_int_eq(csgi_range_resolve("bytes=-0", 10, &r), CSGI_ERANGE);
    ck_assert_int_eq(csgi_range_resolve("bytes=0-", 0, &r), CSGI_ERANGE);
    ck_assert_int_eq(csgi_range_resolve("bytes=0-1, 5-6", 10, &r), CSGI_ETOOBIG);
    ck_assert_int_eq(csgi_range_resolve("bytes=0-5, 3-8", 10, &r), CSGI_ETOOBIG);
    ck_assert_int_eq(csgi_range_resolve("bytes=x", 10, &r), CSGI_EPARSE);

    /* more than CSGI_RANGE_MAX ranges: ignored as malformed */
    char many[CSGI_RANGE_MAX * 8 + 16];
    size_t n = (size_t)snprintf(many, sizeof(many), "bytes=0-0");
    for (int i = 0; i < CSGI_RANGE_MAX; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, ",%d-%d", i, i);
    ck_assert_int_eq(csgi_range_resolve(many, 1000, &r), CSGI_EPARSE);
    ck_assert_int_eq(csgi_range_resolve("bytes=0-1", -1, &r), CSGI_EINVAL);
}
END_TEST

static Suite *negotiate_suite(void)
{
    Suite *s = suite_create("negotiate");
    TCase *tc = tcase_create("accept");
    tcase_add_test(tc, accept_no_header_takes_first_offer);
    tcase_add_test(tc, accept_rfc_example_specificity);
    tcase_add_test(tc, accept_best_by_quality_then_order);
    tcase_add_test(tc, accept_q_zero_excludes);
    tcase_add_test(tc, accept_malformed_elements_skipped);
    tcase_add_test(tc, accept_params_must_match);
    tcase_add_test(tc, accept_language_basic_filtering);
    tcase_add_test(tc, accept_encoding_identity_and_star);
    suite_add_tcase(s, tc);
    tc = tcase_create("dates");
    tcase_add_test(tc, date_three_forms);
    tcase_add_test(tc, date_malformed_refused);
    tcase_add_test(tc, date_format_round_trip);
    suite_add_tcase(s, tc);
    tc = tcase_create("etags");
    tcase_add_test(tc, etag_parse_and_compare);
    tcase_add_test(tc, etag_list_match);
    suite_add_tcase(s, tc);
    tc = tcase_create("ranges");
    tcase_add_test(tc, range_parse_forms);
    tcase_add_test(tc, range_resolve_cases);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(negotiate_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
