/*
 * healthcheck's oslo options beyond disable_by_file
 * (src/middleware/healthcheck.c): allowed_source_ranges,
 * ignore_proxied_requests and the disable_by_files_ports and
 * enable_by_files backends, through the test client and over sockets.
 */
#include "engine_harness.h"
#include "test_deploy.h"
#include "test_files.h"

#include <csgi.h>

#include <check.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The deploy file, with the files the backends look at filled in. */
static const char deploy_ini[] =
    "[pipeline:ranges]\n"
    "pipeline = ranges_hc hello\n"
    "\n"
    "[filter:ranges_hc]\n"
    "paste.filter_factory = oslo_middleware:Healthcheck.factory\n"
    "allowed_source_ranges = 192.168.0.0/24, 192.168.1.0/24 2001:db8::/32\n"
    "\n"
    "[app:ranges_app]\n"
    "use = egg:oslo.middleware#healthcheck\n"
    "allowed_source_ranges = 192.168.0.0/24\n"
    "\n"
    "[pipeline:proxied]\n"
    "pipeline = proxied_hc hello\n"
    "\n"
    "[filter:proxied_hc]\n"
    "paste.filter_factory = oslo_middleware.healthcheck:Healthcheck.factory\n"
    "ignore_proxied_requests = true\n"
    "\n"
    "[pipeline:not_ignored]\n"
    "pipeline = not_ignored_hc hello\n"
    "\n"
    "[filter:not_ignored_hc]\n"
    "paste.filter_factory = oslo_middleware:Healthcheck.factory\n"
    "\n"
    "[app:ports]\n"
    "paste.app_factory = oslo_middleware:Healthcheck.app_factory\n"
    "backends = disable_by_files_ports\n"
    "disable_by_file_paths = 5000:%s, 35357:%s\n"
    "detailed = %s\n"
    "\n"
    "[app:enable]\n"
    "use = egg:oslo.middleware#healthcheck\n"
    "backends = enable_by_files\n"
    "enable_by_file_paths = %s,%s\n"
    "detailed = %s\n"
    "\n"
    "[app:both]\n"
    "use = egg:oslo.middleware#healthcheck\n"
    "backends = disable_by_files_ports,enable_by_files\n"
    "disable_by_file_paths = 5000:%s\n"
    "enable_by_file_paths = %s\n"
    "\n"
    "[pipeline:guarded]\n"
    "pipeline = guarded_hc hello\n"
    "\n"
    "[filter:guarded_hc]\n"
    "use = egg:oslo.middleware#healthcheck\n"
    "allowed_source_ranges = 127.0.0.2/32\n"
    "ignore_proxied_requests = true\n"
    "backends = disable_by_files_ports\n"
    "disable_by_file_paths = 5000:%s\n"
    "\n"
    "[app:hello]\n"
    "use = egg:Test#hello\n";

static const char *write_deploy(const char *detailed)
{
    static char text[sizeof(deploy_ini) + 16384];
    char port5000[1024], port35357[1024], marker_a[1024], marker_b[1024];
    snprintf(port5000, sizeof(port5000), "%s", test_tmp_path("disable_5000"));
    snprintf(port35357, sizeof(port35357), "%s", test_tmp_path("disable_35357"));
    snprintf(marker_a, sizeof(marker_a), "%s", test_tmp_path("marker_a"));
    snprintf(marker_b, sizeof(marker_b), "%s", test_tmp_path("marker_b"));
    snprintf(text, sizeof(text), deploy_ini, port5000, port35357, detailed, marker_a, marker_b,
             detailed, port5000, marker_a, port5000);
    return test_write_file("healthcheck.ini", text);
}

static csgi_app *load(const char *path, const char *name)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:Test#hello", CSGI_FACTORY_APP,
                                              test_hello_app_factory),
                     0);
    char uri[4200];
    snprintf(uri, sizeof(uri), "%s#%s", path, name);
    csgi_app *app = test_load(loader, uri);
    csgi_loader_free(loader);
    return app;
}

/* GET url from remote (NULL: the client's 127.0.0.1) with an optional
   header through app: the status must be code and the body body. */
static void expect(csgi_app *app, const char *url, const char *remote, const char *name,
                   const char *value, int code, const char *body)
{
    csgi_test_request *request = NULL;
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", url), 0);
    if (remote)
        ck_assert_int_eq(csgi_test_request_set_remote(request, remote, 40000), 0);
    if (name)
        ck_assert_int_eq(csgi_test_request_add_header(request, name, value), 0);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    ck_assert_msg(csgi_test_response_code(response) == code, "%s from %s (%s): %d", url,
                  remote ? remote : "-", name ? name : "-", csgi_test_response_code(response));
    ck_assert_msg(strcmp(csgi_test_response_body(response, NULL), body) == 0, "%s from %s: %s", url,
                  remote ? remote : "-", csgi_test_response_body(response, NULL));
    csgi_test_response_free(response);
    csgi_test_request_free(request);
}

/* GET url through app asking for JSON: the status must be code and the body want. */
static void expect_json(csgi_app *app, const char *url, int code, const char *want)
{
    csgi_test_response *r = test_client_run(app, "GET", url, "Accept", "application/json", NULL);
    ck_assert_int_eq(csgi_test_response_code(r), code);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), want);
    csgi_test_response_free(r);
}

START_TEST(allowed_source_ranges)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s", write_deploy("false"));
    csgi_app *app = load(path, "ranges");
    expect(app, "/healthcheck", "192.168.0.1", NULL, NULL, 200, "OK");
    expect(app, "/healthcheck", "192.168.1.254", NULL, NULL, 200, "OK");
    expect(app, "/healthcheck", "2001:db8::5", NULL, NULL, 200, "OK");
    /* Outside the ranges the request is oslo's "ignored": it goes on. */
    expect(app, "/healthcheck", "192.168.3.1", NULL, NULL, 200, "hello");
    expect(app, "/healthcheck", "10.0.0.1", NULL, NULL, 200, "hello");
    expect(app, "/healthcheck", "2001:db9::5", NULL, NULL, 200, "hello");
    /* An IPv4-mapped IPv6 address is not the IPv4 one (as in oslo). */
    expect(app, "/healthcheck", "::ffff:192.168.0.1", NULL, NULL, 200, "hello");
    /* A forged X-Forwarded-For does not make the client someone else. */
    expect(app, "/healthcheck", "10.0.0.1", "X-Forwarded-For", "192.168.0.1", 200, "hello");
    csgi_app_free(app);
    /* The application form has nothing to pass the request to: 404. */
    app = load(path, "ranges_app");
    expect(app, "/", "192.168.0.9", NULL, NULL, 200, "OK");
    expect(app, "/", "192.168.1.9", NULL, NULL, 404, "Not Found");
    csgi_app_free(app);
}
END_TEST

START_TEST(ignore_proxied_requests)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s", write_deploy("false"));
    csgi_app *app = load(path, "proxied");
    expect(app, "/healthcheck", NULL, NULL, NULL, 200, "OK");
    static const char *const headers[] = {"X-Forwarded",        "X-Forwarded-Proto",
                                          "X-Forwarded-Host",   "X-Forwarded-For",
                                          "X-Forwarded-Prefix", "Forwarded"};
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
        expect(app, "/healthcheck", NULL, headers[i], "for=192.0.2.1", 200, "hello");
    /* Other requests go on as always; other headers change nothing. */
    expect(app, "/other", NULL, "X-Forwarded-For", "192.0.2.1", 200, "hello");
    expect(app, "/healthcheck", NULL, "Forwarded-For", "192.0.2.1", 200, "OK");
    csgi_app_free(app);
    /* oslo's default: proxied requests are answered. */
    app = load(path, "not_ignored");
    expect(app, "/healthcheck", NULL, "X-Forwarded-For", "192.0.2.1", 200, "OK");
    csgi_app_free(app);
}
END_TEST

START_TEST(disable_by_files_ports)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s", write_deploy("false"));
    csgi_app *app = load(path, "ports");
    expect(app, "http://api:5000/healthcheck", NULL, NULL, NULL, 200, "OK");
    test_write_file("disable_5000", "");
    expect(app, "http://api:5000/healthcheck", NULL, NULL, NULL, 503, "DISABLED BY FILE");
    /* Each port its own file; a port without one is healthy. */
    expect(app, "http://api:35357/healthcheck", NULL, NULL, NULL, 200, "OK");
    expect(app, "http://api:8080/healthcheck", NULL, NULL, NULL, 200, "OK");
    expect(app, "http://api/healthcheck", NULL, NULL, NULL, 200, "OK");
    test_write_file("disable_35357", "");
    expect(app, "http://api:35357/healthcheck", NULL, NULL, NULL, 503, "DISABLED BY FILE");
    ck_assert_int_eq(unlink(test_tmp_path("disable_5000")), 0);
    expect(app, "http://api:5000/healthcheck", NULL, NULL, NULL, 200, "OK");
    csgi_app_free(app);
    app = load(write_deploy("true"), "ports");
    char want[4096];
    snprintf(want, sizeof(want),
             "{\"detailed\":true,\"reasons\":[{\"class\":\"DisableByFilesPortsHealthcheck\","
             "\"reason\":\"DISABLED BY FILE\",\"details\":{\"port\":35357,\"path\":\"%s\"}}]}",
             test_tmp_path("disable_35357"));
    expect_json(app, "http://api:35357/", 503, want);
    csgi_app_free(app);
}
END_TEST

START_TEST(enable_by_files)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s", write_deploy("true"));
    csgi_app *app = load(path, "enable");
    expect(app, "/", NULL, NULL, NULL, 503, "FILE PATH MISSING");
    test_write_file("marker_a", "");
    expect(app, "/", NULL, NULL, NULL, 503, "FILE PATH MISSING");
    char want[4096];
    snprintf(want, sizeof(want),
             "{\"detailed\":true,\"reasons\":[{\"class\":\"EnableByFilesHealthcheck\","
             "\"reason\":\"FILE PATH MISSING\",\"details\":{\"missing\":\"%s\"}}]}",
             test_tmp_path("marker_b"));
    expect_json(app, "/", 503, want);
    test_write_file("marker_b", "");
    expect(app, "/", NULL, NULL, NULL, 200, "OK");
    ck_assert_int_eq(unlink(test_tmp_path("marker_a")), 0);
    expect(app, "/", NULL, NULL, NULL, 503, "FILE PATH MISSING");
    csgi_app_free(app);
    /* Two backends: every reason, one a line; healthy only if both are. */
    test_write_file("marker_a", "");
    app = load(path, "both");
    expect(app, "http://api:5000/", NULL, NULL, NULL, 200, "OK\nOK");
    test_write_file("disable_5000", "");
    ck_assert_int_eq(unlink(test_tmp_path("marker_a")), 0);
    expect(app, "http://api:5000/", NULL, NULL, NULL, 503, "DISABLED BY FILE\nFILE PATH MISSING");
    expect_json(app, "http://api:5000/", 503,
                "{\"detailed\":false,\"reasons\":[\"DISABLED BY FILE\",\"FILE PATH MISSING\"]}");
    csgi_app_free(app);
}
END_TEST

START_TEST(bad_options)
{
    static const struct {
        const char *conf, *key, *text;
    } bad[] = {
        {"backends = disable_by_file, enable_by_files\ndisable_by_file_path = /a\n"
         "enable_by_file_paths = /b\n",
         "backends", "enable_by_files and disable_by_file cannot be configured at once"},
        {"backends = enable_by_files\n", "backends", "enable_by_files needs enable_by_file_paths"},
        {"backends = disable_by_files_ports\n", "backends",
         "disable_by_files_ports needs disable_by_file_paths"},
        {"backends = disable_by_files_ports\ndisable_by_file_paths = 5000:/a, http:/b\n",
         "disable_by_file_paths", "'http:/b' is not PORT:FILE"},
        {"backends = disable_by_files_ports\ndisable_by_file_paths = 70000:/a\n",
         "disable_by_file_paths", "'70000:/a' is not PORT:FILE"},
        {"backends = disable_by_files_ports\ndisable_by_file_paths = 5000:\n",
         "disable_by_file_paths", "'5000:' is not PORT:FILE"},
        {"backends = disable_by_files_ports\ndisable_by_file_paths = /a\n", "disable_by_file_paths",
         "'/a' is not PORT:FILE"},
        {"backends = enable_by_file\nenable_by_file_paths = /a\n", "backends",
         "'enable_by_file' is not a healthcheck backend"},
        {"backends = enable_by_files,enable_by_files,enable_by_files,enable_by_files,"
         "enable_by_files,enable_by_files,enable_by_files,enable_by_files,enable_by_files\n"
         "enable_by_file_paths = /a\n",
         "backends", "more than 8 backends"},
        {"allowed_source_ranges = 10.0.0.0/8, 10.0.0.0/33\n", "allowed_source_ranges",
         "'10.0.0.0/33' is not an address or a CIDR block"},
        {"allowed_source_ranges = localhost\n", "allowed_source_ranges",
         "'localhost' is not an address or a CIDR block"},
        {"ignore_proxied_requests = maybe\n", "ignore_proxied_requests", ""},
    };
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[1024], uri[4200], message[2048], want[512];
        snprintf(text, sizeof(text), "[app:bad]\nuse = egg:oslo.middleware#healthcheck\n%s",
                 bad[i].conf);
        char name[32]; /* a file each: the loader keeps the files it read */
        snprintf(name, sizeof(name), "bad%zu.ini", i);
        snprintf(uri, sizeof(uri), "%s#bad", test_write_file(name, text));
        ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_EINVAL);
        snprintf(want, sizeof(want), "[app:bad] %s: %s", bad[i].key, bad[i].text);
        ck_assert_msg(strstr(message, want), "%s", message);
    }
    csgi_loader_free(loader);
}
END_TEST

/* GET /healthcheck from source with Host host and an optional extra
   header line (CRLF-ended, or ""): the response's body must be want. */
static void socket_expect(int port, const char *source, const char *host, const char *header,
                          int code, const char *want)
{
    int fd = client_connect_from(port, source);
    char request[512];
    snprintf(request, sizeof(request), "GET /healthcheck HTTP/1.1\r\nHost: %s\r\n%s\r\n", host,
             header);
    ck_assert_int_eq(client_send_str(fd, request), 0);
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_msg(r.status == code && strcmp(r.body, want) == 0, "from %s, %s%s: %d %s", source,
                  host, header, r.status, r.body);
    response_free(&r);
    close(fd);
}

START_TEST(over_sockets)
{
    app_server served;
    app_server_start(&served, load(write_deploy("false"), "guarded"), NULL);
    socket_expect(served.port, "127.0.0.2", "api:5000", "", 200, "OK");
    /* Not in allowed_source_ranges, or come through a proxy: passed on. */
    socket_expect(served.port, "127.0.0.1", "api:5000", "", 200, "hello");
    socket_expect(served.port, "127.0.0.2", "api:5000", "X-Forwarded-For: 127.0.0.2\r\n", 200,
                  "hello");
    socket_expect(served.port, "127.0.0.2", "api:5000", "Forwarded: for=127.0.0.2\r\n", 200,
                  "hello");
    /* disable_by_files_ports by the request's port. */
    test_write_file("disable_5000", "");
    socket_expect(served.port, "127.0.0.2", "api:5000", "", 503, "DISABLED BY FILE");
    socket_expect(served.port, "127.0.0.2", "api:35357", "", 200, "OK");
    app_server_stop(&served);
}
END_TEST

static Suite *oslo_healthcheck_suite(void)
{
    Suite *suite = suite_create("oslo_healthcheck");
    TCase *tc = tcase_create("options");
    tcase_add_test(tc, allowed_source_ranges);
    tcase_add_test(tc, ignore_proxied_requests);
    tcase_add_test(tc, disable_by_files_ports);
    tcase_add_test(tc, enable_by_files);
    tcase_add_test(tc, bad_options);
    tcase_add_test(tc, over_sockets);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(oslo_healthcheck_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
