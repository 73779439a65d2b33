/*
 * The router example of docs/router.md, as a test: an image API of two
 * routes mounted under /api, answered through the test client.
 */
#include <csgi.h>
#include <csgi/composite.h>
#include <csgi/handler.h>
#include <csgi/router.h>
#include <csgi/testing.h>

#include <check.h>
#include <stdio.h>
#include <string.h>

/* GET /images/{image_id:int}: the id and the URL of the image. */
static csgi_response *show_image(csgi_request *request, void *userdata)
{
    csgi_environ *environ = csgi_request_environ(request);
    const char *id = csgi_router_arg(environ, "image_id");
    const char *const args[] = {"image_id", id, NULL};
    const char *url = NULL;
    (void)userdata;
    if (csgi_router_url(environ, "show_image", args, &url) != 0)
        return NULL;
    csgi_response *response = csgi_handler_response(request);
    char text[256];
    snprintf(text, sizeof(text), "image %s at %s\n", id, url);
    if (response && csgi_response_set_text(response, text, "utf-8") != 0)
        return NULL;
    return response;
}

/* The API: a router of named routes, mounted at /api by a urlmap. */
static csgi_app *image_api(void)
{
    csgi_router *router = NULL;
    csgi_urlmap *map = NULL;
    csgi_app *show = NULL, *api = NULL, *app = NULL;
    if (csgi_router_new(&router) != 0 ||
        csgi_handler_app(&show, "show", show_image, NULL, NULL) != 0 ||
        csgi_router_add(router, "show_image", "GET", "/images/{image_id:int}", show) != 0 ||
        csgi_router_app(&api, &router) != 0 || csgi_urlmap_new(&map) != 0 ||
        csgi_urlmap_add(map, "/api", api) != 0 || csgi_urlmap_app(&app, &map) != 0) {
        csgi_router_free(router);
        csgi_urlmap_free(map);
        return NULL;
    }
    return app;
}

START_TEST(routes_and_urls)
{
    csgi_app *app = image_api();
    csgi_test_response *response = NULL;
    ck_assert_ptr_nonnull(app);

    ck_assert_int_eq(csgi_test_get(&response, app, "/api/images/42"), 0);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(csgi_test_response_body(response, NULL), "image 42 at /api/images/42\n");
    csgi_test_response_free(response);

    /* Not an int: no route matches. */
    ck_assert_int_eq(csgi_test_get(&response, app, "/api/images/latest"), 0);
    ck_assert_int_eq(csgi_test_response_code(response), 404);
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

START_TEST(other_methods)
{
    csgi_app *app = image_api();
    csgi_test_request *request = NULL;
    csgi_test_response *response = NULL;
    ck_assert_ptr_nonnull(app);

    ck_assert_int_eq(csgi_test_request_new(&request, "DELETE", "/api/images/42"), 0);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    ck_assert_int_eq(csgi_test_response_code(response), 405);
    ck_assert_str_eq(csgi_test_response_header(response, "Allow"), "GET, HEAD, OPTIONS");
    csgi_test_response_free(response);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("router_example");
    TCase *tc = tcase_create("image_api");
    tcase_add_test(tc, routes_and_urls);
    tcase_add_test(tc, other_methods);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? 0 : 1;
}
