/*
 * The translogger filter (src/middleware/translogger.c): every name it
 * answers to, the line in Paste's format on the error stream and in a
 * file, bytes counted as a late body streams, hostile bytes escaped, bad
 * keys refused at their line, and the logging level over real sockets.
 */
#include "engine_harness.h"
#include "test_deploy.h"
#include "test_files.h"
#include "test_smallmw.h"

#include <csgi.h>

#include <check.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char ini[] = "[pipeline:egg]\n"
                          "pipeline = egg_log hello\n"
                          "\n"
                          "[pipeline:paste]\n"
                          "pipeline = paste_log hello\n"
                          "\n"
                          "[pipeline:csgi]\n"
                          "pipeline = csgi_log hello\n"
                          "\n"
                          "[pipeline:named]\n"
                          "pipeline = named_log hello\n"
                          "\n"
                          "[pipeline:to_file]\n"
                          "pipeline = file_log streamer\n"
                          "\n"
                          "[filter:egg_log]\n"
                          "use = egg:Paste#translogger\n"
                          "\n"
                          "[filter:paste_log]\n"
                          "paste.filter_factory = paste.translogger:make_filter\n"
                          "setup_console_handler = false\n"
                          "\n"
                          "[filter:csgi_log]\n"
                          "use = egg:csgi#translogger\n"
                          "\n"
                          "[filter:named_log]\n"
                          "use = egg:Paste#translogger\n"
                          "logger_name = api\n"
                          "logging_level = WARNING\n"
                          "set_logger_level = DEBUG\n"
                          "\n"
                          "[filter:file_log]\n"
                          "use = egg:Paste#translogger\n"
                          "file = %s\n"
                          "\n"
                          "[app:hello]\n"
                          "use = egg:Test#hello\n"
                          "\n"
                          "[app:streamer]\n"
                          "use = egg:Test#stream\n"
                          "\n"
                          "[filter:with_format]\n"
                          "use = egg:Paste#translogger\n"
                          "format = %%%%(REMOTE_ADDR)s\n"
                          "\n"
                          "[filter:loud]\n"
                          "use = egg:Paste#translogger\n"
                          "logging_level = LOUD\n"
                          "\n"
                          "[filter:nowhere]\n"
                          "use = egg:Paste#translogger\n"
                          "file = /nonexistent/dir/access.log\n"
                          "\n"
                          "[filter:typo]\n"
                          "use = egg:Paste#translogger\n"
                          "logger = x\n"
                          "\n"
                          "[pipeline:bad_format]\n"
                          "pipeline = with_format hello\n"
                          "\n"
                          "[pipeline:bad_level]\n"
                          "pipeline = loud hello\n"
                          "\n"
                          "[pipeline:bad_file]\n"
                          "pipeline = nowhere hello\n"
                          "\n"
                          "[pipeline:bad_key]\n"
                          "pipeline = typo hello\n"
                          "\n"
                          "[pipeline:failing]\n"
                          "pipeline = egg_log failer\n"
                          "\n"
                          "[app:failer]\n"
                          "use = egg:Test#fail\n";

static char ini_text[sizeof(ini) + 4096];

static const char *write_ini(void)
{
    snprintf(ini_text, sizeof(ini_text), ini, test_tmp_path("access.log"));
    return ini_text;
}

static csgi_app *load(csgi_loader *loader, const char *name)
{
    return smallmw_load(loader, "log.ini", write_ini(), name);
}

/* line matches the extended regular expression pattern. */
static void assert_matches(const char *line, const char *pattern)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, line, 0, NULL, 0);
    regfree(&re);
    ck_assert_msg(rc == 0, "'%s' does not match '%s'", line, pattern);
}

/* The one log line holding "HTTP/1.1\"" (the access line). */
static const char *access_line(const csgi_test_response *r)
{
    const char *found = NULL;
    for (size_t i = 0; i < csgi_test_response_log_count(r); i++) {
        const char *line = csgi_test_response_log_at(r, i);
        if (strstr(line, "HTTP/1.1\"")) {
            ck_assert_msg(!found, "two access lines: %s / %s", found, line);
            found = line;
        }
    }
    ck_assert_msg(found != NULL, "no access line");
    return found;
}

#define DATE "\\[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} [-+][0-9]{4}\\]"

START_TEST(translogger_spellings)
{
    csgi_loader *loader = smallmw_loader();
    static const char *const names[] = {"egg", "paste", "csgi"};
    for (size_t i = 0; i < 3; i++) {
        csgi_app *app = load(loader, names[i]);
        csgi_test_response *r =
            smallmw_run(app, "GET", "/p/a?q=1&r=2", "192.0.2.7",
                        "Referer: https://ref.example/x\nUser-Agent: agent/1.0 (test)");
        ck_assert_str_eq(csgi_test_response_body(r, NULL), "hello");
        assert_matches(access_line(r), ": wsgi: 192\\.0\\.2\\.7 - - " DATE
                                       " \"GET /p/a\\?q=1&r=2 HTTP/1\\.1\" 200 5 "
                                       "\"https://ref\\.example/x\" \"agent/1\\.0 \\(test\\)\"$");
        csgi_test_response_free(r);
        /* Without the optional fields, and an error status. */
        r = smallmw_run(app, "DELETE", "/", NULL, NULL);
        assert_matches(access_line(r), ": wsgi: 127\\.0\\.0\\.1 - - " DATE
                                       " \"DELETE / HTTP/1\\.1\" 200 5 \"-\" \"-\"$");
        csgi_test_response_free(r);
        csgi_app_free(app);
    }
    csgi_loader_free(loader);
}
END_TEST

START_TEST(translogger_user_and_escapes)
{
    csgi_loader *loader = smallmw_loader();
    csgi_app *app = load(loader, "named");
    csgi_test_request *request = NULL;
    csgi_test_response *r = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "/x"), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "User-Agent", "a\"b\\c caf\xc3\xa9"), 0);
    /* What filters in front could set: a user, bytes no wire allows. */
    ck_assert_int_eq(csgi_test_request_set_environ(request, "REMOTE_USER", "bob"), 0);
    ck_assert_int_eq(
        csgi_test_request_set_environ(request, "HTTP_REFERER", "x\r\n1.2.3.4 - - [forged] \x1b[2J"),
        0);
    ck_assert_int_eq(csgi_test_request_run(&r, request, app), 0);
    csgi_test_request_free(request);
    const char *line = access_line(r);
    ck_assert_ptr_null(strpbrk(line, "\r\n\x1b"));
    assert_matches(line, ": api: 127\\.0\\.0\\.1 - bob " DATE " \"GET /x HTTP/1\\.1\" 200 9 "
                         "\"x\\\\x0d\\\\x0a1\\.2\\.3\\.4 - - \\[forged\\] \\\\x1b\\[2J\" "
                         "\"a\\\\x22b\\\\x5cc caf\\\\xc3\\\\xa9\"$");
    csgi_test_response_free(r);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(translogger_file)
{
    csgi_loader *loader = smallmw_loader();
    csgi_app *app = load(loader, "to_file");
    /* A body that answers later, counted as it streams. */
    csgi_test_response *r = smallmw_run(app, "GET", "/one", "198.51.100.1", "User-Agent: u");
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "onetwothree");
    for (size_t i = 0; i < csgi_test_response_log_count(r); i++)
        ck_assert_msg(!strstr(csgi_test_response_log_at(r, i), "HTTP/1.1"), "%s",
                      csgi_test_response_log_at(r, i));
    csgi_test_response_free(r);
    r = smallmw_run(app, "HEAD", "/two", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    csgi_test_response_free(r);
    csgi_app_free(app);
    /* Loaded again: appended to. */
    app = load(loader, "to_file");
    r = smallmw_run(app, "GET", "/three", NULL, NULL);
    csgi_test_response_free(r);
    csgi_app_free(app);
    assert_matches(test_read_file(test_tmp_path("access.log")),
                   "^198\\.51\\.100\\.1 - - " DATE " \"GET /one HTTP/1\\.1\" 200 11 \"-\" \"u\"\n"
                   "127\\.0\\.0\\.1 - - " DATE " \"HEAD /two HTTP/1\\.1\" 200 - \"-\" \"-\"\n"
                   "127\\.0\\.0\\.1 - - " DATE " \"GET /three HTTP/1\\.1\" 200 11 \"-\" \"-\"\n$");
    csgi_loader_free(loader);
}
END_TEST

START_TEST(translogger_failing_app)
{
    csgi_loader *loader = smallmw_loader();
    csgi_app *app = load(loader, "failing");
    csgi_test_response *r = smallmw_run(app, "POST", "/broken", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 500);
    assert_matches(access_line(r), ": wsgi: 127\\.0\\.0\\.1 - - " DATE
                                   " \"POST /broken HTTP/1\\.1\" 500 - \"-\" \"-\"$");
    csgi_test_response_free(r);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(translogger_bad_conf)
{
    csgi_loader *loader = smallmw_loader();
    const char *path = test_write_file("log.ini", write_ini());
    static const struct {
        const char *name, *text;
    } bad[] = {
        {"bad_format", "log.ini:44: [filter:with_format] format: Paste's Python format strings "
                       "are not supported"},
        {"bad_level", "log.ini:48: [filter:loud] logging_level: 'LOUD' is not a logging level"},
        {"bad_file", "log.ini:52: [filter:nowhere] file: cannot open /nonexistent/dir/access.log"},
        {"bad_key", "log.ini:56: [filter:typo] logger: unknown key for translogger"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char uri[4200], message[2048];
        snprintf(uri, sizeof(uri), "%s#%s", path, bad[i].name);
        ck_assert_int_ne(test_load_fails(loader, uri, message, sizeof(message)), 0);
        ck_assert_msg(strstr(message, bad[i].text), "%s", message);
    }
    csgi_loader_free(loader);
}
END_TEST

/* Over sockets with the server's default threshold (warning): the
   default info line is not shown, the WARNING one is, and so is the
   file's. */
START_TEST(translogger_sockets)
{
    csgi_loader *loader = smallmw_loader();
    static const char *const names[] = {"egg", "named", "to_file"};
    for (size_t i = 0; i < 3; i++) {
        captured_log log;
        captured_log_init(&log);
        csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
        options.log = captured_log_fn;
        options.log_userdata = &log;
        app_server served;
        app_server_start(&served, load(loader, names[i]), &options);
        int fd = client_connect(served.port);
        ck_assert_int_eq(client_send_str(fd, "GET /s HTTP/1.1\r\nHost: t\r\n"
                                             "User-Agent: sock\r\n\r\n"),
                         0);
        test_response r;
        ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(r.body, i == 2 ? "onetwothree" : "hello");
        response_free(&r);
        close(fd);
        if (i == 1)
            ck_assert(captured_log_wait(&log, "api: 127.0.0.1 - - [", 5000));
        app_server_stop(&served);
        if (i == 0)
            ck_assert_ptr_null(strstr(log.text, "HTTP/1.1\""));
        if (i == 1)
            ck_assert_ptr_nonnull(strstr(log.text, "\"GET /s HTTP/1.1\" 200 5 \"-\" \"sock\""));
        pthread_mutex_destroy(&log.lock);
    }
    assert_matches(test_read_file(test_tmp_path("access.log")),
                   "^127\\.0\\.0\\.1 - - " DATE " \"GET /s HTTP/1\\.1\" 200 11 \"-\" \"sock\"\n$");
    csgi_loader_free(loader);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("translogger");
    TCase *tc = tcase_create("translogger");
    tcase_add_test(tc, translogger_spellings);
    tcase_add_test(tc, translogger_user_and_escapes);
    tcase_add_test(tc, translogger_file);
    tcase_add_test(tc, translogger_failing_app);
    tcase_add_test(tc, translogger_bad_conf);
    tcase_add_test(tc, translogger_sockets);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
