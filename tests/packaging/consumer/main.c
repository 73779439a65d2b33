/*
 * A program that uses the installed csgi the way a user's first test does:
 * a handler answering with a response object, behind the strict lint
 * filter, run through the in-process test client for GET and HEAD, then
 * the same on a pool thread (csgi/threadpool.h). It also checks that the
 * linked library matches the installed headers.
 */
#include <csgi.h>
#include <csgi/handler.h>
#include <csgi/lint.h>
#include <csgi/response.h>
#include <csgi/testing.h>
#include <csgi/threadpool.h>

#include <stdio.h>
#include <string.h>

static csgi_response *hello(csgi_request *request, void *userdata)
{
    csgi_response *response = csgi_handler_response(request);
    (void)userdata;
    if (response && csgi_response_set_text(response, "Hello World\n", "utf-8") != 0)
        return NULL;
    return response;
}

static int fail(const char *what, const csgi_test_response *response)
{
    fprintf(stderr, "consumer: %s (status %s, %zu log lines)\n", what,
            response ? csgi_test_response_status(response) : "-",
            response ? csgi_test_response_log_count(response) : (size_t)0);
    return 1;
}

/* Run method on app; expect 200, Content-Length 12 and body (NULL: none). */
static int check(csgi_app *app, const char *method, const char *body)
{
    csgi_test_request *request;
    csgi_test_response *response = NULL;
    size_t len;
    int failed = 0;

    if (csgi_test_request_new(&request, method, "http://localhost/") != 0)
        return fail("csgi_test_request_new failed", NULL);
    if (csgi_test_request_run(&response, request, app) != 0)
        failed = fail("csgi_test_request_run failed", NULL);
    else if (csgi_test_response_code(response) != 200)
        failed = fail("status is not 200", response);
    else if (strcmp(csgi_test_response_header(response, "Content-Length"), "12") != 0)
        failed = fail("Content-Length is not 12", response);
    else if (csgi_test_response_log_count(response) != 0)
        failed = fail(csgi_test_response_log_at(response, 0), response);
    else {
        const char *got = csgi_test_response_body(response, &len);
        if (body ? len != strlen(body) || memcmp(got, body, len) != 0 : len != 0)
            failed = fail("unexpected body", response);
    }
    if (!failed)
        printf("consumer: %s / -> %s, %zu body bytes\n", method,
               csgi_test_response_status(response), len);
    csgi_test_response_free(response);
    csgi_test_request_free(request);
    return failed;
}

int main(void)
{
    char expected[32];
    const char *version = csgi_version_string();
    csgi_app *handler;
    csgi_app *app;
    csgi_lint_options options = CSGI_LINT_OPTIONS_INIT;
    int failed;

    snprintf(expected, sizeof(expected), "%d.%d.%d", CSGI_VERSION_MAJOR, CSGI_VERSION_MINOR,
             CSGI_VERSION_PATCH);
    if (version == NULL || strcmp(version, expected) != 0) {
        fprintf(stderr, "csgi_version_string() = \"%s\", headers say \"%s\"\n",
                version ? version : "(null)", expected);
        return 1;
    }
    if (strcmp(csgi_strerror(CSGI_ENOMEM), "out of memory") != 0) {
        fprintf(stderr, "csgi_strerror(CSGI_ENOMEM) = \"%s\"\n", csgi_strerror(CSGI_ENOMEM));
        return 1;
    }

    options.strict = 1;
    if (csgi_handler_app(&handler, "hello", hello, NULL, NULL) != 0)
        return fail("csgi_handler_app failed", NULL);
    if (csgi_lint_new(&app, handler, &options) != 0) {
        csgi_app_free(handler);
        return fail("csgi_lint_new failed", NULL);
    }
    failed = check(app, "GET", "Hello World\n") || check(app, "HEAD", NULL);
    if (!failed)
        printf("csgi %s: a handler behind strict lint answers GET and HEAD\n", version);
    /* The same on a pool thread (the filter takes app). */
    if (!failed && csgi_threadpool_new(&app, app, NULL) != 0)
        return fail("csgi_threadpool_new failed", NULL);
    if (!failed && (failed = check(app, "GET", "Hello World\n") || check(app, "HEAD", NULL)) == 0)
        printf("csgi %s: and so it does on a pool thread\n", version);
    csgi_app_free(app);
    return failed;
}
