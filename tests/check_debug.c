/*
 * The debug filter (src/middleware/debug.c): every name it answers to, the
 * environ and the answer in the log, hostile bytes escaped, the body passed
 * on and not logged, an unknown key refused, and over real sockets.
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

static const char ini[] = "[pipeline:egg]\n"
                          "pipeline = egg_debug hello\n"
                          "\n"
                          "[pipeline:short]\n"
                          "pipeline = short_debug hello\n"
                          "\n"
                          "[pipeline:long]\n"
                          "pipeline = long_debug hello\n"
                          "\n"
                          "[pipeline:stream]\n"
                          "pipeline = egg_debug streamer\n"
                          "\n"
                          "[filter:egg_debug]\n"
                          "use = egg:oslo.middleware#debug\n"
                          "\n"
                          "[filter:short_debug]\n"
                          "paste.filter_factory = oslo_middleware:Debug.factory\n"
                          "\n"
                          "[filter:long_debug]\n"
                          "paste.filter_factory = oslo_middleware.debug:Debug.factory\n"
                          "\n"
                          "[app:hello]\n"
                          "use = egg:Test#hello\n"
                          "\n"
                          "[app:streamer]\n"
                          "use = egg:Test#stream\n"
                          "\n"
                          "[filter:typo]\n"
                          "use = egg:oslo.middleware#debug\n"
                          "verbose = true\n"
                          "\n"
                          "[pipeline:bad]\n"
                          "pipeline = typo hello\n";

/* The log line holding text, or NULL. */
static const char *line_with(const csgi_test_response *r, const char *text)
{
    for (size_t i = 0; i < csgi_test_response_log_count(r); i++)
        if (strstr(csgi_test_response_log_at(r, i), text))
            return csgi_test_response_log_at(r, i);
    return NULL;
}

START_TEST(debug_spellings)
{
    csgi_loader *loader = smallmw_loader();
    static const char *const names[] = {"egg", "short", "long"};
    for (size_t i = 0; i < 3; i++) {
        csgi_app *app = smallmw_load(loader, "debug.ini", ini, names[i]);
        csgi_test_response *r =
            smallmw_run(app, "GET", "/path?q=1", "192.0.2.44", "X-Trace: abc\nUser-Agent: t/1");
        ck_assert_int_eq(csgi_test_response_code(r), 200);
        ck_assert_str_eq(csgi_test_response_body(r, NULL), "hello");
        ck_assert_ptr_nonnull(line_with(r, "debug: request environ"));
        ck_assert_ptr_nonnull(line_with(r, "debug: environ REQUEST_METHOD = GET"));
        ck_assert_ptr_nonnull(line_with(r, "debug: environ PATH_INFO = /path"));
        ck_assert_ptr_nonnull(line_with(r, "debug: environ QUERY_STRING = q=1"));
        ck_assert_ptr_nonnull(line_with(r, "debug: environ REMOTE_ADDR = 192.0.2.44"));
        ck_assert_ptr_nonnull(line_with(r, "debug: environ HTTP_X_TRACE = abc"));
        ck_assert_ptr_nonnull(line_with(r, "debug: environ HTTP_USER_AGENT = t/1"));
        ck_assert_ptr_nonnull(line_with(r, "debug: environ csgi.multithread = "));
        ck_assert_ptr_nonnull(line_with(r, "debug: response status 200 OK"));
        ck_assert_ptr_nonnull(line_with(r, "debug: response header Content-Type = text/plain"));
        ck_assert_ptr_nonnull(line_with(r, "debug: response body not logged"));
        csgi_test_response_free(r);
        csgi_app_free(app);
    }
    csgi_loader_free(loader);
}
END_TEST

START_TEST(debug_escapes)
{
    csgi_loader *loader = smallmw_loader();
    csgi_app *app = smallmw_load(loader, "debug.ini", ini, "egg");
    csgi_test_request *request = NULL;
    csgi_test_response *r = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "/"), 0);
    /* What the wire allows: obs-text bytes. */
    ck_assert_int_eq(csgi_test_request_add_header(request, "X-Name", "caf\xc3\xa9 \"q\""), 0);
    /* What an application in front could put in the environ: CR LF, ESC. */
    ck_assert_int_eq(csgi_test_request_set_environ(request, "HTTP_X_EVIL",
                                                   "a\r\nGET /forged (client 1.2.3.4): x\x1b[31m"),
                     0);
    ck_assert_int_eq(csgi_test_request_run(&r, request, app), 0);
    csgi_test_request_free(request);
    ck_assert_ptr_nonnull(line_with(r, "debug: environ HTTP_X_NAME = caf\\xc3\\xa9 \\x22q\\x22"));
    const char *evil = line_with(r, "HTTP_X_EVIL");
    ck_assert_ptr_nonnull(evil);
    ck_assert_msg(strstr(evil, "= a\\x0d\\x0aGET /forged (client 1.2.3.4): x\\x1b[31m"), "%s",
                  evil);
    for (size_t i = 0; i < csgi_test_response_log_count(r); i++) {
        const char *line = csgi_test_response_log_at(r, i);
        ck_assert_ptr_null(strpbrk(line, "\r\n\x1b"));
        ck_assert_msg(strncmp(line, "GET /forged", 11) != 0, "%s", line);
    }
    csgi_test_response_free(r);
    /* A value longer than a line holds is cut, visibly. */
    char longer[3000];
    memset(longer, 'v', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "/"), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "X-Long", longer), 0);
    ck_assert_int_eq(csgi_test_request_run(&r, request, app), 0);
    csgi_test_request_free(request);
    const char *line = line_with(r, "HTTP_X_LONG");
    ck_assert_ptr_nonnull(line);
    ck_assert_msg(strstr(line, "vvv...") && strlen(line) < 1024, "%s", line);
    ck_assert_ptr_nonnull(line_with(r, "debug: response status 200 OK"));
    csgi_test_response_free(r);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(debug_body_passes)
{
    csgi_loader *loader = smallmw_loader();
    csgi_app *app = smallmw_load(loader, "debug.ini", ini, "stream");
    csgi_test_response *r = smallmw_run(app, "GET", "/s", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "onetwothree");
    ck_assert_ptr_nonnull(line_with(r, "debug: response status 200 OK"));
    ck_assert_ptr_null(line_with(r, "three"));
    ck_assert_ptr_null(line_with(r, "one"));
    csgi_test_response_free(r);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(debug_unknown_key)
{
    csgi_loader *loader = smallmw_loader();
    char uri[4200], message[2048];
    snprintf(uri, sizeof(uri), "%s#bad", test_write_file("debug.ini", ini));
    ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_EINVAL);
    ck_assert_msg(strstr(message, "debug.ini:30: [filter:typo] verbose: unknown key for debug"),
                  "%s", message);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(debug_sockets)
{
    csgi_loader *loader = smallmw_loader();
    captured_log log;
    captured_log_init(&log);
    csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
    options.log = captured_log_fn;
    options.log_userdata = &log;
    options.log_level = CSGI_LOG_INFO;
    app_server served;
    app_server_start(&served, smallmw_load(loader, "debug.ini", ini, "egg"), &options);
    int fd = client_connect(served.port);
    ck_assert_int_eq(client_send_str(fd, "GET /sock HTTP/1.1\r\nHost: t\r\n"
                                         "X-Trace: caf\xc3\xa9\r\n\r\n"),
                     0);
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "hello");
    response_free(&r);
    close(fd);
    ck_assert(captured_log_wait(&log, "debug: response status 200 OK", 5000));
    ck_assert(captured_log_wait(&log, "debug: environ HTTP_X_TRACE = caf\\xc3\\xa9", 0));
    ck_assert(captured_log_wait(&log, "debug: environ PATH_INFO = /sock", 0));
    ck_assert(captured_log_wait(&log, "debug: environ REMOTE_ADDR = 127.0.0.1", 0));
    app_server_stop(&served);
    csgi_loader_free(loader);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("debug");
    TCase *tc = tcase_create("debug");
    tcase_add_test(tc, debug_spellings);
    tcase_add_test(tc, debug_escapes);
    tcase_add_test(tc, debug_body_passes);
    tcase_add_test(tc, debug_unknown_key);
    tcase_add_test(tc, debug_sockets);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
