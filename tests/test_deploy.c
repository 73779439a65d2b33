/* Load a deploy file and run a request through it (test_deploy.h). */
#include "test_deploy.h"

#include <csgi/testing.h>

#include <check.h>
#include <stdio.h>
#include <string.h>

csgi_app *test_load(csgi_loader *loader, const char *uri)
{
    csgi_app *app = NULL;
    csgi_load_error error;
    int rc = csgi_loader_load_app(&app, loader, uri, &error);
    char message[2048];
    csgi_load_error_format(&error, message, sizeof(message));
    ck_assert_msg(rc == 0, "loading %s: %s (%s)", uri, message, csgi_err_name(rc));
    ck_assert_ptr_nonnull(app);
    return app;
}

int test_load_fails(csgi_loader *loader, const char *uri, char *message, size_t size)
{
    csgi_app *app = (csgi_app *)&app; /* must be reset */
    csgi_load_error error;
    int rc = csgi_loader_load_app(&app, loader, uri, &error);
    ck_assert_int_ne(rc, 0);
    ck_assert_ptr_null(app);
    csgi_load_error_format(&error, message, size);
    return rc;
}

void test_run_request(csgi_app *app, const char *path, const char *remote, const char *header,
                      test_client_response *out)
{
    char url[512];
    snprintf(url, sizeof(url), "http://example.com%s", path);
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", url), 0);
    ck_assert_int_eq(csgi_test_request_set_remote(request, remote ? remote : "192.0.2.7", 40000),
                     0);
    if (header) {
        char name[128];
        const char *colon = strchr(header, ':');
        ck_assert_ptr_nonnull(colon);
        snprintf(name, sizeof(name), "%.*s", (int)(colon - header), header);
        ck_assert_int_eq(csgi_test_request_add_header(request, name, colon + 1 + (colon[1] == ' ')),
                         0);
    }
    csgi_test_response *got = NULL;
    ck_assert_int_eq(csgi_test_request_run(&got, request, app), 0);
    memset(out, 0, sizeof(*out));
    snprintf(out->status, sizeof(out->status), "%s", csgi_test_response_status(got));
    const char *type = csgi_test_response_header(got, "Content-Type");
    snprintf(out->content_type, sizeof(out->content_type), "%s", type ? type : "");
    size_t len = 0;
    const char *body = csgi_test_response_body(got, &len);
    ck_assert_uint_lt(len, sizeof(out->body));
    memcpy(out->body, body, len);
    csgi_test_response_free(got);
    csgi_test_request_free(request);
}
