/*
 * examples/imageapi's compute part (nova's flavors), loaded from a deploy
 * file with imageapi.so as a user deploys it: versions, the flavor list
 * and detail with their filters and pagination, one flavor and its extra
 * specs, the microversion headers, nova's errors, and a flavors_file that
 * is wrong reported with the file and line of the key.
 */
#include <csgi.h>

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char ini_path[] = "/tmp/csgi-compute-XXXXXX.ini";
static char flavors_path[] = "/tmp/csgi-flavors-XXXXXX.json";

static void write_file(char *path, int suffix, const char *text)
{
    int fd = mkstemps(path, suffix);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* The compute app from a deploy file with extra lines in its section;
   NULL with the loader's message in why when it does not load. */
static csgi_app *load(const char *extra, char *why, size_t why_size)
{
    char text[1024];
    snprintf(text, sizeof(text), "[app:main]\npaste.app_factory = imageapi:compute_factory\n%s",
             extra);
    strcpy(ini_path, "/tmp/csgi-compute-XXXXXX.ini");
    write_file(ini_path, 4, text);
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    const char *dir = getenv("CSGI_IMAGEAPI_DIR");
    ck_assert_msg(dir != NULL, "CSGI_IMAGEAPI_DIR is set by CTest");
    ck_assert_int_eq(csgi_loader_add_module_path(loader, dir), 0);
    csgi_app *app = NULL;
    csgi_load_error error;
    if (csgi_loader_load_app(&app, loader, ini_path, &error) != 0)
        csgi_load_error_format(&error, why, why_size);
    csgi_loader_free(loader);
    unlink(ini_path);
    return app;
}

static csgi_app *load_ok(const char *extra)
{
    char why[1024] = "";
    csgi_app *app = load(extra, why, sizeof(why));
    ck_assert_msg(app != NULL, "%s", why);
    return app;
}

typedef struct answer {
    csgi_test_response *response;
    json_t *json;
} answer;

static answer get(csgi_app *app, const char *url, const char *version_header, const char *version)
{
    csgi_test_request *request;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", url), 0);
    if (version_header)
        ck_assert_int_eq(csgi_test_request_add_header(request, version_header, version), 0);
    answer a = {NULL, NULL};
    ck_assert_int_eq(csgi_test_request_run(&a.response, request, app), 0);
    csgi_test_request_free(request);
    size_t len;
    const char *body = csgi_test_response_body(a.response, &len);
    a.json = json_loadb(body, len, 0, NULL);
    return a;
}

static void answer_free(answer *a)
{
    csgi_test_response_free(a->response);
    json_decref(a->json);
}

static const char *header(const answer *a, const char *name)
{
    return csgi_test_response_header(a->response, name);
}

START_TEST(test_versions)
{
    csgi_app *app = load_ok("");
    answer a = get(app, "http://cloud.test/", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(a.response), 200);
    json_t *versions = json_object_get(a.json, "versions");
    ck_assert_int_eq(json_array_size(versions), 2);
    json_t *v21 = json_array_get(versions, 1);
    ck_assert_str_eq(json_string_value(json_object_get(v21, "id")), "v2.1");
    ck_assert_str_eq(json_string_value(json_object_get(v21, "status")), "CURRENT");
    ck_assert_str_eq(json_string_value(json_object_get(v21, "version")), "2.75");
    ck_assert_str_eq(json_string_value(
                         json_object_get(json_array_get(json_object_get(v21, "links"), 0), "href")),
                     "http://cloud.test/v2.1/");
    answer_free(&a);

    a = get(app, "http://cloud.test/v2.1", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(a.response), 200);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(a.json, "version"), "min_version")),
        "2.1");
    answer_free(&a);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_list_and_detail)
{
    csgi_app *app = load_ok("");
    answer a = get(app, "http://cloud.test/v2.1/flavors", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(a.response), 200);
    json_t *flavors = json_object_get(a.json, "flavors");
    ck_assert_int_eq(json_array_size(flavors), 5);
    json_t *tiny = json_array_get(flavors, 0);
    ck_assert_str_eq(json_string_value(json_object_get(tiny, "name")), "m1.tiny");
    ck_assert_ptr_null(json_object_get(tiny, "ram")); /* not in the short list */
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(tiny, "links"), 0), "href")),
                     "http://cloud.test/v2.1/flavors/1");
    answer_free(&a);

    a = get(app, "http://cloud.test/v2.1/flavors/detail", NULL, NULL);
    json_t *large = json_array_get(json_object_get(a.json, "flavors"), 3);
    ck_assert_str_eq(json_string_value(json_object_get(large, "name")), "m1.large");
    ck_assert_int_eq(json_integer_value(json_object_get(large, "ram")), 8192);
    ck_assert_int_eq(json_integer_value(json_object_get(large, "disk")), 80);
    ck_assert_int_eq(json_integer_value(json_object_get(large, "vcpus")), 4);
    ck_assert_str_eq(json_string_value(json_object_get(large, "swap")), ""); /* before 2.75 */
    ck_assert(json_is_true(json_object_get(large, "os-flavor-access:is_public")));
    ck_assert_ptr_null(json_object_get(large, "description")); /* before 2.55 */
    answer_free(&a);

    /* filters and pagination */
    a = get(app, "http://cloud.test/v2.1/flavors/detail?minRam=4096&minDisk=50", NULL, NULL);
    flavors = json_object_get(a.json, "flavors");
    ck_assert_int_eq(json_array_size(flavors), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(flavors, 0), "id")), "4");
    answer_free(&a);
    a = get(app, "http://cloud.test/v2.1/flavors?limit=2&marker=2", NULL, NULL);
    flavors = json_object_get(a.json, "flavors");
    ck_assert_int_eq(json_array_size(flavors), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(flavors, 0), "id")), "3");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(flavors, 1), "id")), "4");
    answer_free(&a);
    a = get(app, "http://cloud.test/v2.1/flavors?marker=nope", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(a.response), 400);
    answer_free(&a);
    a = get(app, "http://cloud.test/v2.1/flavors?limit=x", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(a.response), 400);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(a.json, "badRequest"), "code")), 400);
    answer_free(&a);
    a = get(app, "http://cloud.test/v2.1/flavors?is_public=false", NULL, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(a.json, "flavors")), 0);
    answer_free(&a);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_show_and_extra_specs)
{
    csgi_app *app = load_ok("");
    answer a = get(app, "http://cloud.test/v2.1/flavors/2", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(a.response), 200);
    json_t *flavor = json_object_get(a.json, "flavor");
    ck_assert_str_eq(json_string_value(json_object_get(flavor, "name")), "m1.small");
    ck_assert_int_eq(json_integer_value(json_object_get(flavor, "ram")), 2048);
    answer_free(&a);

    a = get(app, "http://cloud.test/v2.1/flavors/2/os-extra_specs", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(a.response), 200);
    ck_assert(json_is_object(json_object_get(a.json, "extra_specs")));
    answer_free(&a);

    /* openstackclient asks for a flavor by name first: nova's 404 */
    a = get(app, "http://cloud.test/v2.1/flavors/m1.small", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(a.response), 404);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(a.json, "itemNotFound"), "message")),
        "Flavor m1.small could not be found.");
    answer_free(&a);
    a = get(app, "http://cloud.test/v2.1/servers", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(a.response), 404);
    answer_free(&a);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_microversions)
{
    csgi_app *app = load_ok("");
    answer a = get(app, "http://cloud.test/v2.1/flavors/1", NULL, NULL);
    ck_assert_str_eq(header(&a, "OpenStack-API-Version"), "compute 2.1");
    ck_assert_str_eq(header(&a, "X-OpenStack-Nova-API-Version"), "2.1");
    ck_assert_ptr_nonnull(strstr(header(&a, "Vary"), "OpenStack-API-Version"));
    answer_free(&a);

    a = get(app, "http://cloud.test/v2.1/flavors/1", "OpenStack-API-Version", "compute 2.60");
    ck_assert_str_eq(header(&a, "OpenStack-API-Version"), "compute 2.60");
    json_t *flavor = json_object_get(a.json, "flavor");
    ck_assert(json_is_null(json_object_get(flavor, "description"))); /* 2.55 */
    ck_assert_str_eq(json_string_value(json_object_get(flavor, "swap")), "");
    answer_free(&a);

    a = get(app, "http://cloud.test/v2.1/flavors/1", "X-OpenStack-Nova-API-Version", "latest");
    ck_assert_str_eq(header(&a, "X-OpenStack-Nova-API-Version"), "2.75");
    flavor = json_object_get(a.json, "flavor");
    ck_assert_int_eq(json_integer_value(json_object_get(flavor, "swap")), 0); /* 2.75 */
    ck_assert(json_is_object(json_object_get(flavor, "extra_specs")));        /* 2.61 */
    answer_free(&a);

    /* a header for another service is not ours */
    a = get(app, "http://cloud.test/v2.1/flavors/1", "OpenStack-API-Version", "image 2.99");
    ck_assert_int_eq(csgi_test_response_code(a.response), 200);
    ck_assert_str_eq(header(&a, "OpenStack-API-Version"), "compute 2.1");
    answer_free(&a);

    const char *bad[] = {"compute 2.76", "compute 3.0", "compute 2.0", "compute 2.x", "compute "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        a = get(app, "http://cloud.test/v2.1/flavors", "OpenStack-API-Version", bad[i]);
        ck_assert_msg(csgi_test_response_code(a.response) == 406, "%s: %d", bad[i],
                      csgi_test_response_code(a.response));
        answer_free(&a);
    }
    csgi_app_free(app);
}
END_TEST

START_TEST(test_flavors_file)
{
    strcpy(flavors_path, "/tmp/csgi-flavors-XXXXXX.json");
    write_file(flavors_path, 5,
               "{\"flavors\": [{\"id\": \"g1\", \"name\": \"gpu.big\", \"ram\": 65536, "
               "\"disk\": 200, \"vcpus\": 16, \"swap\": 1024, \"description\": \"GPU\"}, "
               "{\"id\": \"p1\", \"name\": \"private.one\", \"ram\": 1, \"disk\": 1, "
               "\"vcpus\": 1, \"public\": false}]}");
    char extra[256];
    snprintf(extra, sizeof(extra), "flavors_file = %s\n", flavors_path);
    csgi_app *app = load_ok(extra);
    answer a = get(app, "http://cloud.test/v2.1/flavors/detail?is_public=none",
                   "OpenStack-API-Version", "compute 2.55");
    json_t *flavors = json_object_get(a.json, "flavors");
    ck_assert_int_eq(json_array_size(flavors), 2);
    json_t *gpu = json_array_get(flavors, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(gpu, "swap")), 1024);
    ck_assert_str_eq(json_string_value(json_object_get(gpu, "description")), "GPU");
    ck_assert(
        json_is_false(json_object_get(json_array_get(flavors, 1), "os-flavor-access:is_public")));
    answer_free(&a);
    a = get(app, "http://cloud.test/v2.1/flavors", NULL, NULL); /* public only */
    ck_assert_int_eq(json_array_size(json_object_get(a.json, "flavors")), 1);
    answer_free(&a);
    csgi_app_free(app);

    /* a flavor without vcpus: the loader's error names the key's line */
    FILE *f = fopen(flavors_path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"flavors\": [{\"id\": \"x\", \"name\": \"x\", \"ram\": 1, \"disk\": 1}]}", f);
    fclose(f);
    char why[1024] = "";
    ck_assert_ptr_null(load(extra, why, sizeof(why)));
    ck_assert_msg(strstr(why, ":3") && strstr(why, "flavors_file") && strstr(why, "vcpus"), "%s",
                  why);
    /* not JSON: the parser's line */
    f = fopen(flavors_path, "w");
    fputs("{\"flavors\":\n [", f);
    fclose(f);
    ck_assert_ptr_null(load(extra, why, sizeof(why)));
    ck_assert_msg(strstr(why, flavors_path) != NULL, "%s", why);
    unlink(flavors_path);
    ck_assert_ptr_null(load(extra, why, sizeof(why)));
    ck_assert_msg(strstr(why, flavors_path) != NULL, "%s", why);
}
END_TEST

START_TEST(test_methods)
{
    csgi_app *app = load_ok("");
    csgi_test_request *request;
    ck_assert_int_eq(csgi_test_request_new(&request, "POST", "http://cloud.test/v2.1/flavors"), 0);
    ck_assert_int_eq(csgi_test_request_set_body(request, "{}", 2), 0);
    csgi_test_response *response;
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    ck_assert_int_eq(csgi_test_response_code(response), 405);
    csgi_test_response_free(response);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("imageapi_compute");
    TCase *tc = tcase_create("compute");
    tcase_add_test(tc, test_versions);
    tcase_add_test(tc, test_list_and_detail);
    tcase_add_test(tc, test_show_and_extra_specs);
    tcase_add_test(tc, test_microversions);
    tcase_add_test(tc, test_flavors_file);
    tcase_add_test(tc, test_methods);
    suite_add_tcase(s, tc);
    SRunner *runner = srunner_create(s);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
