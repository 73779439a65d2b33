/* An example Check suite testing an application with the in-process test
   client and the lint filter: the code docs/testing.md shows, kept in
   CTest so that the page cannot go stale. Public API only. */
#include <csgi.h>

#include <check.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The application under test: "Hello, NAME" for GET /hello?NAME, 404 else. */
static csgi_body *greet(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    (void)state;
    if (strcmp(csgi_environ_get(environ, "PATH_INFO"), "/hello") != 0) {
        csgi_start_response_call(start_response, "404 Not Found", headers, 1, NULL);
        return csgi_body_static(environ, "not here\n", 9);
    }
    const char *name = csgi_environ_get(environ, "QUERY_STRING");
    char text[128];
    int len = snprintf(text, sizeof(text), "Hello, %s", *name ? name : "World");
    csgi_environ_log(environ, "greeted %s", *name ? name : "the world");
    csgi_start_response_call(start_response, "200 OK", headers, 1, NULL);
    return csgi_body_bytes(environ, text, (size_t)len);
}

static const csgi_app_type greet_type = {"greet", greet, NULL};

/* The application wrapped in a strict lint filter: a protocol mistake
   fails the test with a 500 and a "lint: ..." line in the log. */
static csgi_app *make_app(void)
{
    csgi_app *app = NULL, *checked = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &greet_type, NULL), 0);
    csgi_lint_options options = CSGI_LINT_OPTIONS_INIT;
    options.strict = 1;
    ck_assert_int_eq(csgi_lint_new(&checked, app, &options), 0);
    return checked;
}

START_TEST(greets_by_name)
{
    csgi_app *app = make_app();
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_get(&response, app, "/hello?Alice"), 0);
    ck_assert_str_eq(csgi_test_response_status(response), "200 OK");
    ck_assert_str_eq(csgi_test_response_header(response, "content-type"), "text/plain");
    ck_assert_str_eq(csgi_test_response_body(response, NULL), "Hello, Alice");
    ck_assert_int_eq(csgi_test_response_log_contains(response, "greeted Alice"), 1);
    ck_assert_int_eq(csgi_test_response_log_contains(response, "lint:"), 0);
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

START_TEST(unknown_path_is_404)
{
    csgi_app *app = make_app();
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "https://example.com/elsewhere"), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Accept", "text/plain"), 0);
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    ck_assert_int_eq(csgi_test_response_code(response), 404);
    ck_assert_str_eq(csgi_test_response_body(response, NULL), "not here\n");
    csgi_test_response_free(response);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("example");
    TCase *greeting = tcase_create("greeting");
    tcase_add_test(greeting, greets_by_name);
    tcase_add_test(greeting, unknown_path_is_404);
    suite_add_tcase(suite, greeting);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
