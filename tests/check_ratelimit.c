/*
 * The ratelimit filter (src/middleware/ratelimit.c) with small rates and
 * real time (a wait of about a second at most): the burst, 429 with
 * Retry-After, the refill, buckets per address and per project, the
 * least recently seen bucket evicted, bad keys refused at their line, and
 * over real sockets.
 */
#include "engine_harness.h"
#include "test_deploy.h"
#include "test_files.h"
#include "test_smallmw.h"

#include <csgi.h>

#include <check.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char ini[] = "[pipeline:main]\n"
                          "pipeline = limit hello\n"
                          "\n"
                          "[pipeline:slow]\n"
                          "pipeline = slow_limit hello\n"
                          "\n"
                          "[pipeline:address]\n"
                          "pipeline = address_limit hello\n"
                          "\n"
                          "[pipeline:project]\n"
                          "pipeline = project_limit hello\n"
                          "\n"
                          "[pipeline:small]\n"
                          "pipeline = small_limit hello\n"
                          "\n"
                          "[filter:limit]\n"
                          "use = egg:csgi#ratelimit\n"
                          "rate = 1\n"
                          "burst = 2\n"
                          "\n"
                          "[filter:slow_limit]\n"
                          "use = egg:csgi#ratelimit\n"
                          "rate = 0.1\n"
                          "\n"
                          "[filter:address_limit]\n"
                          "use = egg:csgi#ratelimit\n"
                          "rate = 0.001\n"
                          "burst = 2\n"
                          "by = address\n"
                          "\n"
                          "[filter:project_limit]\n"
                          "use = egg:csgi#ratelimit\n"
                          "rate = 0.001\n"
                          "burst = 2\n"
                          "by = project\n"
                          "\n"
                          "[filter:small_limit]\n"
                          "use = egg:csgi#ratelimit\n"
                          "rate = 0.001\n"
                          "burst = 1\n"
                          "max_clients = 2\n"
                          "\n"
                          "[app:hello]\n"
                          "use = egg:Test#hello\n";

static csgi_app *load(csgi_loader *loader, const char *name)
{
    return smallmw_load(loader, "limit.ini", ini, name);
}

/* GET / from remote (NULL: 127.0.0.1), with project as HTTP_X_PROJECT_ID
   (what auth_token sets) unless NULL: the status; retry_after gets the
   Retry-After of a 429 (NULL otherwise). */
static int get(csgi_app *app, const char *remote, const char *project, char *retry_after)
{
    csgi_test_request *request = NULL;
    csgi_test_response *r = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "/"), 0);
    if (remote)
        ck_assert_int_eq(csgi_test_request_set_remote(request, remote, 40000), 0);
    if (project)
        ck_assert_int_eq(csgi_test_request_set_environ(request, "HTTP_X_PROJECT_ID", project), 0);
    ck_assert_int_eq(csgi_test_request_run(&r, request, app), 0);
    csgi_test_request_free(request);
    int code = csgi_test_response_code(r);
    const char *after = csgi_test_response_header(r, "retry-after");
    if (code == 429) {
        ck_assert_ptr_nonnull(after);
        ck_assert_ptr_nonnull(strstr(csgi_test_response_body(r, NULL), "Too many requests"));
    } else {
        ck_assert_ptr_null(after);
        ck_assert_str_eq(csgi_test_response_body(r, NULL), "hello");
    }
    if (retry_after)
        snprintf(retry_after, 32, "%s", after ? after : "");
    csgi_test_response_free(r);
    return code;
}

START_TEST(ratelimit_burst_and_refill)
{
    csgi_loader *loader = smallmw_loader();
    csgi_app *app = load(loader, "main");
    char after[32];
    ck_assert_int_eq(get(app, NULL, NULL, NULL), 200);
    ck_assert_int_eq(get(app, NULL, NULL, NULL), 200);
    ck_assert_int_eq(get(app, NULL, NULL, after), 429);
    ck_assert_str_eq(after, "1");
    /* Refused requests take nothing. */
    ck_assert_int_eq(get(app, NULL, NULL, after), 429);
    /* Another address has a bucket of its own. */
    ck_assert_int_eq(get(app, "192.0.2.9", NULL, NULL), 200);
    /* A token a second: back after a second, then gone again. */
    usleep(1100 * 1000);
    ck_assert_int_eq(get(app, NULL, NULL, NULL), 200);
    ck_assert_int_eq(get(app, NULL, NULL, after), 429);
    ck_assert_str_eq(after, "1");
    csgi_app_free(app);
    /* A slower rate: ten seconds to wait; burst defaults to 1. */
    app = load(loader, "slow");
    ck_assert_int_eq(get(app, NULL, NULL, NULL), 200);
    ck_assert_int_eq(get(app, NULL, NULL, after), 429);
    ck_assert_str_eq(after, "10");
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(ratelimit_projects)
{
    csgi_loader *loader = smallmw_loader();
    /* auto: one bucket per project, whatever the address. */
    csgi_app *app = smallmw_load(loader, "limit.ini", ini, "main");
    ck_assert_int_eq(get(app, "192.0.2.1", "p1", NULL), 200);
    ck_assert_int_eq(get(app, "192.0.2.2", "p1", NULL), 200);
    ck_assert_int_eq(get(app, "192.0.2.3", "p1", NULL), 429);
    ck_assert_int_eq(get(app, "192.0.2.1", "p2", NULL), 200);
    /* Without a project, by address: 192.0.2.1's bucket is full. */
    ck_assert_int_eq(get(app, "192.0.2.1", NULL, NULL), 200);
    ck_assert_int_eq(get(app, "192.0.2.1", "", NULL), 200);
    ck_assert_int_eq(get(app, "192.0.2.1", NULL, NULL), 429);
    /* A project id and an address of the same text are not one key. */
    ck_assert_int_eq(get(app, "192.0.2.7", "192.0.2.1", NULL), 200);
    csgi_app_free(app);
    /* address: the project does not matter. */
    app = load(loader, "address");
    ck_assert_int_eq(get(app, "192.0.2.1", "p1", NULL), 200);
    ck_assert_int_eq(get(app, "192.0.2.1", "p2", NULL), 200);
    ck_assert_int_eq(get(app, "192.0.2.1", "p3", NULL), 429);
    csgi_app_free(app);
    /* project: only requests with one are limited. */
    app = load(loader, "project");
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(get(app, "192.0.2.1", NULL, NULL), 200);
    ck_assert_int_eq(get(app, "192.0.2.1", "p1", NULL), 200);
    ck_assert_int_eq(get(app, "192.0.2.2", "p1", NULL), 200);
    ck_assert_int_eq(get(app, "192.0.2.3", "p1", NULL), 429);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(ratelimit_evicts_least_recent)
{
    csgi_loader *loader = smallmw_loader();
    csgi_app *app = load(loader, "small");
    ck_assert_int_eq(get(app, "10.0.0.1", NULL, NULL), 200);
    ck_assert_int_eq(get(app, "10.0.0.1", NULL, NULL), 429);
    ck_assert_int_eq(get(app, "10.0.0.2", NULL, NULL), 200);
    /* 10.0.0.1 is seen again: 10.0.0.2 is now the least recent. */
    ck_assert_int_eq(get(app, "10.0.0.1", NULL, NULL), 429);
    ck_assert_int_eq(get(app, "10.0.0.3", NULL, NULL), 200); /* evicts 10.0.0.2 */
    ck_assert_int_eq(get(app, "10.0.0.1", NULL, NULL), 429); /* kept */
    ck_assert_int_eq(get(app, "10.0.0.2", NULL, NULL), 200); /* new, evicts 10.0.0.3 */
    ck_assert_int_eq(get(app, "10.0.0.1", NULL, NULL), 429);
    ck_assert_int_eq(get(app, "10.0.0.3", NULL, NULL), 200); /* new, evicts 10.0.0.2 */
    /* Many clients through a table of two: memory stays bounded, and
       whoever comes back after being evicted starts full. */
    char address[32];
    for (int i = 0; i < 200; i++) {
        snprintf(address, sizeof(address), "2001:db8::%x", i);
        ck_assert_int_eq(get(app, address, NULL, NULL), 200);
    }
    ck_assert_int_eq(get(app, "10.0.0.1", NULL, NULL), 200);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(ratelimit_bad_conf)
{
    csgi_loader *loader = smallmw_loader();
    static const struct {
        const char *keys, *want;
    } bad[] = {
        {"burst = 2\n", "[filter:l] rate: ratelimit needs a rate"},
        {"rate = 0\n", ".ini:6: [filter:l] rate: '0' is not a number"},
        {"rate = -1\n", "rate: '-1' is not a number of requests per second above 0"},
        {"rate = fast\n", "rate: 'fast' is not a number"},
        {"rate = nan\n", "rate: 'nan' is not a number"},
        {"rate = 1\nburst = 0\n", ".ini:7: [filter:l] burst: must be from 1"},
        {"rate = 1\nmax_clients = 0\n", "max_clients: must be from 1 to 10000000"},
        {"rate = 1\nby = user\n", "by: 'user' is not address, project or auto"},
        {"rate = 1\nwindow = 60\n", ".ini:7: [filter:l] window: unknown key for "
                                    "ratelimit"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[1024];
        snprintf(text, sizeof(text),
                 "[pipeline:main]\npipeline = l hello\n\n[filter:l]\nuse = egg:csgi#ratelimit\n"
                 "%s\n[app:hello]\nuse = egg:Test#hello\n",
                 bad[i].keys);
        smallmw_load_fails(loader, text, "main", bad[i].want);
    }
    csgi_loader_free(loader);
}
END_TEST

START_TEST(ratelimit_sockets)
{
    csgi_loader *loader = smallmw_loader();
    app_server served;
    app_server_start(&served, load(loader, "main"), NULL);
    int fd = client_connect(served.port);
    ck_assert_int_eq(client_send_str(fd, "GET /1 HTTP/1.1\r\nHost: t\r\n\r\n"
                                         "GET /2 HTTP/1.1\r\nHost: t\r\n\r\n"),
                     0);
    test_response r;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(r.body, "hello");
        response_free(&r);
    }
    /* Over the limit, a body the filter does not read, sent whole, in two
       writes and a byte at a time: 429 each time, the connection usable. */
    static const enum body_split splits[] = {SPLIT_WITH_HEAD, SPLIT_TWO_WRITES, SPLIT_BYTE_BY_BYTE};
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(client_send_post(fd, "/3", "", "a=1&b=2", 7, splits[i]), 0);
        ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
        ck_assert_int_eq(r.status, 429);
        ck_assert_str_eq(response_header(&r, "retry-after"), "1");
        response_free(&r);
    }
    usleep(1100 * 1000);
    ck_assert_int_eq(client_send_post(fd, "/4", "", "a=1&b=2", 7, SPLIT_BYTE_BY_BYTE), 0);
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 200);
    response_free(&r);
    close(fd);
    app_server_stop(&served);
    csgi_loader_free(loader);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("ratelimit");
    TCase *tc = tcase_create("ratelimit");
    tcase_add_test(tc, ratelimit_burst_and_refill);
    tcase_add_test(tc, ratelimit_projects);
    tcase_add_test(tc, ratelimit_evicts_least_recent);
    tcase_add_test(tc, ratelimit_bad_conf);
    tcase_add_test(tc, ratelimit_sockets);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
