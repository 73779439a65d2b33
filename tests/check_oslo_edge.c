/*
 * The bundled oslo.middleware equivalents (src/middleware/healthcheck.c):
 * each behaviour through the in-process test client, deploy files naming
 * them as OpenStack api-paste.ini files do, and one over real sockets.
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

/* Run method url with an optional header through app. */
static csgi_test_response *run(csgi_app *app, const char *method, const char *url, const char *name,
                               const char *value)
{
    return test_client_run(app, method, url, name, value, NULL);
}

/* What the application saw: scheme host remote script. */
static csgi_response *echo(csgi_request *request, void *userdata)
{
    (void)userdata;
    csgi_environ *environ = csgi_request_environ(request);
    char text[1024];
    const char *host = csgi_environ_get(environ, "HTTP_HOST");
    snprintf(text, sizeof(text), "%s %s %s %s", csgi_environ_get(environ, "csgi.url_scheme"),
             host ? host : "-", csgi_environ_get(environ, "REMOTE_ADDR"),
             csgi_environ_get(environ, "SCRIPT_NAME"));
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_text(response, text, NULL) != 0)
        return NULL;
    return response;
}

static int echo_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                        const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    return csgi_handler_app_factory(out, global_conf, local_conf, "echo", echo, NULL, error);
}

static csgi_loader *new_loader(void)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:Test#hello", CSGI_FACTORY_APP,
                                              test_hello_app_factory),
                     0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:Test#echo", CSGI_FACTORY_APP, echo_factory), 0);
    return loader;
}

/* The deploy file of these tests, with the disable file's path filled in. */
static const char deploy_ini[] =
    "[app:egg]\n"
    "use = egg:oslo.middleware#healthcheck\n"
    "\n"
    "[app:short]\n"
    "paste.app_factory = oslo_middleware:Healthcheck.app_factory\n"
    "\n"
    "[app:long]\n"
    "paste.app_factory = oslo_middleware.healthcheck:Healthcheck.app_factory\n"
    "\n"
    "[app:used]\n"
    "use = oslo_middleware:Healthcheck.app_factory\n"
    "\n"
    "[app:disabled]\n"
    "paste.app_factory = oslo_middleware:Healthcheck.app_factory\n"
    "backends = disable_by_file\n"
    "disable_by_file_path = %s\n"
    "\n"
    "[app:detailed]\n"
    "use = egg:oslo.middleware#healthcheck\n"
    "backends = disable_by_file\n"
    "disable_by_file_path = %s\n"
    "detailed = true\n"
    "\n"
    "[pipeline:filtered]\n"
    "pipeline = hc hello\n"
    "\n"
    "[pipeline:filtered_long]\n"
    "pipeline = hc_long hello\n"
    "\n"
    "[filter:hc]\n"
    "paste.filter_factory = oslo_middleware:Healthcheck.factory\n"
    "path = /status\n"
    "\n"
    "[filter:hc_long]\n"
    "paste.filter_factory = oslo_middleware.healthcheck:Healthcheck.factory\n"
    "\n"
    "[app:hello]\n"
    "use = egg:Test#hello\n"
    "\n"
    "[app:bad_backend]\n"
    "use = egg:oslo.middleware#healthcheck\n"
    "backends = disable_by_file, database\n"
    "disable_by_file_path = /nonexistent\n"
    "\n"
    "[app:no_file]\n"
    "use = egg:oslo.middleware#healthcheck\n"
    "backends = disable_by_file\n"
    "\n"
    "[app:typo]\n"
    "use = egg:oslo.middleware#healthcheck\n"
    "detailled = true\n";

static const char *write_deploy(void)
{
    static char text[sizeof(deploy_ini) + 8192];
    char file[4096];
    snprintf(file, sizeof(file), "%s", test_tmp_path("disabled"));
    snprintf(text, sizeof(text), deploy_ini, file, file);
    return test_write_file("oslo.ini", text);
}

static csgi_app *load(csgi_loader *loader, const char *path, const char *name)
{
    char uri[4200];
    snprintf(uri, sizeof(uri), "%s#%s", path, name);
    return test_load(loader, uri);
}

static void expect(csgi_app *app, const char *method, const char *url, int code, const char *body)
{
    csgi_test_response *r = run(app, method, url, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), code);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), body);
    csgi_test_response_free(r);
}

START_TEST(healthcheck_spellings)
{
    csgi_loader *loader = new_loader();
    const char *path = write_deploy();
    static const char *const apps[] = {"egg", "short", "long", "used"};
    for (size_t i = 0; i < sizeof(apps) / sizeof(apps[0]); i++) {
        csgi_app *app = load(loader, path, apps[i]);
        expect(app, "GET", "/healthcheck", 200, "OK");
        /* The application answers wherever it is mounted. */
        expect(app, "GET", "/anything", 200, "OK");
        expect(app, "HEAD", "/healthcheck", 200, "");
        csgi_app_free(app);
    }
    csgi_app *app = load(loader, path, "filtered");
    expect(app, "GET", "/status", 200, "OK");
    expect(app, "GET", "/healthcheck", 200, "hello");
    expect(app, "GET", "/", 200, "hello");
    /* Only the path itself: a prefix of it, or one longer, goes on. */
    expect(app, "GET", "/statu", 200, "hello");
    expect(app, "GET", "/status/", 200, "hello");
    expect(app, "GET", "/statusx", 200, "hello");
    csgi_app_free(app);
    app = load(loader, path, "filtered_long");
    expect(app, "GET", "/healthcheck", 200, "OK");
    expect(app, "HEAD", "/healthcheck", 200, "");
    expect(app, "GET", "/other", 200, "hello");
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(healthcheck_disable_file)
{
    csgi_loader *loader = new_loader();
    const char *path = write_deploy();
    csgi_app *app = load(loader, path, "disabled");
    expect(app, "GET", "/healthcheck", 200, "OK");
    test_write_file("disabled", "maintenance\n");
    expect(app, "GET", "/healthcheck", 503, "DISABLED BY FILE");
    expect(app, "HEAD", "/healthcheck", 503, "");
    /* Not detailed: JSON says only the reason. */
    csgi_test_response *r = run(app, "GET", "/healthcheck", "Accept", "application/json");
    ck_assert_int_eq(csgi_test_response_code(r), 503);
    ck_assert_str_eq(csgi_test_response_header(r, "content-type"), "application/json");
    ck_assert_str_eq(csgi_test_response_body(r, NULL),
                     "{\"detailed\":false,\"reasons\":[\"DISABLED BY FILE\"]}");
    csgi_test_response_free(r);
    ck_assert_int_eq(unlink(test_tmp_path("disabled")), 0);
    expect(app, "GET", "/healthcheck", 200, "OK");
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(healthcheck_detailed)
{
    csgi_loader *loader = new_loader();
    const char *path = write_deploy();
    csgi_app *app = load(loader, path, "detailed");
    char want[8192];
    snprintf(want, sizeof(want),
             "{\"detailed\":true,\"reasons\":[{\"class\":\"DisableByFileHealthcheck\","
             "\"reason\":\"OK\",\"details\":{\"path\":\"%s\"}}]}",
             test_tmp_path("disabled"));
    csgi_test_response *r = run(app, "GET", "/healthcheck", "Accept", "application/json");
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), want);
    csgi_test_response_free(r);
    /* Without asking for JSON: plain text still. */
    expect(app, "GET", "/healthcheck", 200, "OK");
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(healthcheck_bad_conf)
{
    csgi_loader *loader = new_loader();
    const char *path = write_deploy();
    static const struct {
        const char *name, *text;
    } bad[] = {
        {"bad_backend", "oslo.ini:42: [app:bad_backend] backends: 'database' is not a "
                        "healthcheck backend (known: disable_by_file, disable_by_files_ports, "
                        "enable_by_files)"},
        {"no_file", "oslo.ini:47: [app:no_file] backends: disable_by_file needs "
                    "disable_by_file_path"},
        {"typo", "oslo.ini:51: [app:typo] detailled: unknown key for healthcheck"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char uri[4200], message[2048];
        snprintf(uri, sizeof(uri), "%s#%s", path, bad[i].name);
        ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_EINVAL);
        ck_assert_msg(strstr(message, bad[i].text), "%s", message);
    }
    csgi_loader_free(loader);
}
END_TEST

/* docs/middleware.md's example loads and answers. */
START_TEST(healthcheck_docs_example)
{
    csgi_loader *loader = new_loader();
    char uri[4200];
    snprintf(uri, sizeof(uri), "%s/docs/healthcheck.ini#healthcheck", test_testdata_dir());
    csgi_app *app = test_load(loader, uri);
    expect(app, "GET", "/healthcheck", 200, "OK");
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(healthcheck_sockets)
{
    csgi_loader *loader = new_loader();
    const char *path = write_deploy();
    app_server served;
    app_server_start(&served, load(loader, path, "filtered_long"), NULL);
    int fd = client_connect(served.port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(client_send_str(fd, "GET /healthcheck HTTP/1.1\r\nHost: t\r\n\r\n"
                                         "HEAD /healthcheck HTTP/1.1\r\nHost: t\r\n\r\n"
                                         "GET /x HTTP/1.1\r\nHost: t\r\n\r\n"),
                     0);
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "OK");
    response_free(&r);
    ck_assert_int_eq(client_response(fd, &r, 1, 5000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(response_header(&r, "content-length"), "2");
    response_free(&r);
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_str_eq(r.body, "hello");
    response_free(&r);
    close(fd);
    app_server_stop(&served);
    csgi_loader_free(loader);
}
END_TEST

/* ---- http_proxy_to_wsgi -------------------------------------------------------------- */

static const char proxy_ini[] =
    "[pipeline:egg]\n"
    "pipeline = egg_proxy echo\n"
    "\n"
    "[pipeline:short]\n"
    "pipeline = short_proxy echo\n"
    "\n"
    "[pipeline:long]\n"
    "pipeline = long_proxy echo\n"
    "\n"
    "[pipeline:off]\n"
    "pipeline = off_proxy echo\n"
    "\n"
    "[pipeline:nobody]\n"
    "pipeline = nobody_proxy echo\n"
    "\n"
    "[filter:egg_proxy]\n"
    "use = egg:oslo.middleware#http_proxy_to_wsgi\n"
    "enable_proxy_headers_parsing = true\n"
    "trusted_proxies = 10.0.0.0/8, 2001:db8::1 192.0.2.9\n"
    "\n"
    "[filter:short_proxy]\n"
    "paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory\n"
    "enable_proxy_headers_parsing = true\n"
    "trusted_proxies = 10.0.0.0/8\n"
    "\n"
    "[filter:long_proxy]\n"
    "paste.filter_factory = oslo_middleware.http_proxy_to_wsgi:HTTPProxyToWSGI.factory\n"
    "enable_proxy_headers_parsing = yes\n"
    "trusted_proxies = 10.1.2.3\n"
    "\n"
    "[filter:off_proxy]\n"
    "use = egg:oslo.middleware#http_proxy_to_wsgi\n"
    "trusted_proxies = 10.0.0.0/8\n"
    "\n"
    "[filter:nobody_proxy]\n"
    "use = egg:oslo.middleware#http_proxy_to_wsgi\n"
    "enable_proxy_headers_parsing = true\n"
    "\n"
    "[app:echo]\n"
    "use = egg:Test#echo\n"
    "\n"
    "[filter:bad_cidr]\n"
    "use = egg:oslo.middleware#http_proxy_to_wsgi\n"
    "enable_proxy_headers_parsing = true\n"
    "trusted_proxies = 10.0.0.0/33\n"
    "\n"
    "[pipeline:bad]\n"
    "pipeline = bad_cidr echo\n";

/* method / from remote (NULL: the client's default) with headers ("Name:
   value" lines joined by \n, or NULL) through app; the response. */
static csgi_test_response *run_headers(csgi_app *app, const char *method, const char *remote,
                                       const char *headers)
{
    csgi_test_request *request = NULL;
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, method, "/"), 0);
    if (remote)
        ck_assert_int_eq(csgi_test_request_set_remote(request, remote, 40000), 0);
    char copy[1024];
    snprintf(copy, sizeof(copy), "%s", headers ? headers : "");
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        char *colon = strchr(line, ':');
        *colon = '\0';
        ck_assert_int_eq(csgi_test_request_add_header(request, line, colon + 2), 0);
    }
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    csgi_test_request_free(request);
    ck_assert_ptr_nonnull(response);
    return response;
}

/* GET / from remote with headers through app; the echo's body must be want. */
static void proxied(csgi_app *app, const char *remote, const char *headers, const char *want)
{
    csgi_test_response *response = run_headers(app, "GET", remote, headers);
    ck_assert_str_eq(csgi_test_response_body(response, NULL), want);
    csgi_test_response_free(response);
}

static const char x_headers[] = "X-Forwarded-Proto: https\n"
                                "X-Forwarded-Host: api.example.org\n"
                                "X-Forwarded-For: 198.51.100.7\n"
                                "X-Forwarded-Prefix: /compute/";

START_TEST(proxy_spellings)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("proxy.ini", proxy_ini);
    static const char *const names[] = {"egg", "short", "long"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        csgi_app *app = load(loader, path, names[i]);
        proxied(app, "10.1.2.3", x_headers, "https api.example.org 198.51.100.7 /compute");
        csgi_app_free(app);
    }
    csgi_loader_free(loader);
}
END_TEST

START_TEST(proxy_forwarded)
{
    csgi_loader *loader = new_loader();
    csgi_app *app = load(loader, test_write_file("proxy.ini", proxy_ini), "egg");
    /* Forwarded wins over X-Forwarded-*; its last element is the proxy's. */
    proxied(app, "192.0.2.9",
            "Forwarded: for=1.1.1.1;host=evil, for=\"[2001:db8::7]:4711\";proto=https;"
            "host=\"api.example.org:8443\"\n"
            "X-Forwarded-Host: other",
            "https api.example.org:8443 2001:db8::7 ");
    proxied(app, "2001:db8::1", "Forwarded: for=203.0.113.5:80;proto=http",
            "http localhost:80 203.0.113.5 ");
    /* Malformed values are ignored one by one. */
    proxied(app, "10.9.9.9", "Forwarded: for=_hidden;proto=gopher;host=\"a b\"",
            "http localhost:80 10.9.9.9 ");
    proxied(app, "10.9.9.9",
            "X-Forwarded-Proto: javascript\nX-Forwarded-Host: a/b\n"
            "X-Forwarded-For: not-an-ip\nX-Forwarded-Prefix: no-slash",
            "http localhost:80 10.9.9.9 ");
    /* Of X-Forwarded-For the last entry, which the trusted proxy wrote. */
    proxied(app, "10.0.0.1", "X-Forwarded-For: 6.6.6.6, 198.51.100.8",
            "http localhost:80 198.51.100.8 ");
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(proxy_untrusted)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("proxy.ini", proxy_ini);
    csgi_app *app = load(loader, path, "egg");
    /* A client that is not a trusted proxy is not believed. */
    proxied(app, "203.0.113.66", x_headers, "http localhost:80 203.0.113.66 ");
    proxied(app, "11.0.0.1", "Forwarded: for=1.2.3.4;proto=https", "http localhost:80 11.0.0.1 ");
    proxied(app, "2001:db8::2", x_headers, "http localhost:80 2001:db8::2 ");
    csgi_app_free(app);
    /* Parsing off (oslo's default), or no trusted_proxies: nobody is. */
    app = load(loader, path, "off");
    proxied(app, "10.1.2.3", x_headers, "http localhost:80 10.1.2.3 ");
    csgi_app_free(app);
    app = load(loader, path, "nobody");
    proxied(app, "10.1.2.3", x_headers, "http localhost:80 10.1.2.3 ");
    csgi_app_free(app);
    char uri[4200], message[2048];
    snprintf(uri, sizeof(uri), "%s#bad", path);
    ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_EINVAL);
    ck_assert_msg(strstr(message, "proxy.ini:45: [filter:bad_cidr] trusted_proxies: "
                                  "'10.0.0.0/33' is not an address or a CIDR block"),
                  "%s", message);
    csgi_loader_free(loader);
}
END_TEST

/* ---- cors ------------------------------------------------------------------------------ */

static const char cors_ini[] = "[pipeline:egg]\n"
                               "pipeline = egg_cors hello\n"
                               "\n"
                               "[pipeline:short]\n"
                               "pipeline = short_cors hello\n"
                               "\n"
                               "[pipeline:long]\n"
                               "pipeline = long_cors hello\n"
                               "\n"
                               "[filter:egg_cors]\n"
                               "use = egg:oslo.middleware#cors\n"
                               "allowed_origin = https://dash.example.org, https://b.example\n"
                               "expose_headers = X-Auth-Token, X-Request-Id\n"
                               "max_age = 3600\n"
                               "allow_methods = GET, POST\n"
                               "allow_headers = X-Auth-Token\n"
                               "\n"
                               "[filter:short_cors]\n"
                               "paste.filter_factory = oslo_middleware:CORS.factory\n"
                               "allowed_origin = https://dash.example.org\n"
                               "allow_credentials = false\n"
                               "\n"
                               "[filter:long_cors]\n"
                               "paste.filter_factory = oslo_middleware.cors:filter_factory\n"
                               "allowed_origin = https://dash.example.org\n"
                               "\n"
                               "[app:hello]\n"
                               "use = egg:Test#hello\n";

/* method / with headers through app; the response, which must be 200. */
static csgi_test_response *cors_run(csgi_app *app, const char *method, const char *headers)
{
    csgi_test_response *response = run_headers(app, method, NULL, headers);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    return response;
}

static void no_cors_headers(const csgi_test_response *r)
{
    ck_assert_ptr_null(csgi_test_response_header(r, "access-control-allow-origin"));
    ck_assert_ptr_null(csgi_test_response_header(r, "access-control-allow-methods"));
    ck_assert_ptr_null(csgi_test_response_header(r, "access-control-allow-credentials"));
    ck_assert_ptr_null(csgi_test_response_header(r, "vary"));
}

START_TEST(cors_preflight)
{
    csgi_loader *loader = new_loader();
    csgi_app *app = load(loader, test_write_file("cors.ini", cors_ini), "egg");
    csgi_test_response *r = cors_run(app, "OPTIONS",
                                     "Origin: https://b.example\n"
                                     "Access-Control-Request-Method: POST\n"
                                     "Access-Control-Request-Headers: x-auth-token, content-type");
    ck_assert_str_eq(csgi_test_response_header(r, "access-control-allow-origin"),
                     "https://b.example");
    ck_assert_str_eq(csgi_test_response_header(r, "access-control-allow-methods"), "POST");
    ck_assert_str_eq(csgi_test_response_header(r, "access-control-allow-headers"),
                     "x-auth-token, content-type");
    ck_assert_str_eq(csgi_test_response_header(r, "access-control-max-age"), "3600");
    ck_assert_str_eq(csgi_test_response_header(r, "access-control-allow-credentials"), "true");
    ck_assert_str_eq(csgi_test_response_header(r, "vary"), "Origin");
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "");
    csgi_test_response_free(r);
    /* Hostile or not allowed: an origin not on the list, a method or a
       header not allowed. */
    static const char *const refused[] = {
        "Origin: https://evil.example\nAccess-Control-Request-Method: GET",
        "Origin: https://dash.example.org.evil.example\nAccess-Control-Request-Method: GET",
        "Origin: https://b.example\nAccess-Control-Request-Method: DELETE",
        "Origin: https://b.example\nAccess-Control-Request-Method: GET\n"
        "Access-Control-Request-Headers: X-Secret",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        r = cors_run(app, "OPTIONS", refused[i]);
        no_cors_headers(r);
        csgi_test_response_free(r);
    }
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(cors_simple)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("cors.ini", cors_ini);
    csgi_app *app = load(loader, path, "egg");
    csgi_test_response *r = cors_run(app, "GET", "Origin: https://dash.example.org");
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "hello");
    ck_assert_str_eq(csgi_test_response_header(r, "access-control-allow-origin"),
                     "https://dash.example.org");
    ck_assert_str_eq(csgi_test_response_header(r, "access-control-allow-credentials"), "true");
    ck_assert_str_eq(csgi_test_response_header(r, "access-control-expose-headers"),
                     "X-Auth-Token, X-Request-Id");
    ck_assert_str_eq(csgi_test_response_header(r, "vary"), "Origin");
    csgi_test_response_free(r);
    r = cors_run(app, "GET", "Origin: https://evil.example");
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "hello");
    no_cors_headers(r);
    csgi_test_response_free(r);
    /* Without Origin: no CORS; OPTIONS without a requested method goes on. */
    r = cors_run(app, "GET", "Accept: */*");
    no_cors_headers(r);
    csgi_test_response_free(r);
    csgi_app_free(app);
    static const char *const names[] = {"short", "long"};
    for (size_t i = 0; i < 2; i++) {
        app = load(loader, path, names[i]);
        r = cors_run(app, "POST", "Origin: https://dash.example.org");
        ck_assert_str_eq(csgi_test_response_header(r, "access-control-allow-origin"),
                         "https://dash.example.org");
        if (i == 0)
            ck_assert_ptr_null(csgi_test_response_header(r, "access-control-allow-credentials"));
        csgi_test_response_free(r);
        r = cors_run(app, "OPTIONS",
                     "Origin: https://dash.example.org\nAccess-Control-Request-Method: PATCH");
        ck_assert_str_eq(csgi_test_response_header(r, "access-control-allow-methods"), "PATCH");
        csgi_test_response_free(r);
        csgi_app_free(app);
    }
    csgi_loader_free(loader);
}
END_TEST

/* What decides between a preflight, an actual request and no CORS at all:
   Origin first (without it nothing is added, whatever else the request
   says), then OPTIONS with Access-Control-Request-Method. */
START_TEST(cors_origin_decides)
{
    csgi_loader *loader = new_loader();
    csgi_app *app = load(loader, test_write_file("cors.ini", cors_ini), "egg");
    /* A preflight's method without Origin: an ordinary OPTIONS, passed on. */
    csgi_test_response *r = cors_run(app, "OPTIONS", "Access-Control-Request-Method: POST");
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "hello");
    no_cors_headers(r);
    ck_assert_ptr_null(csgi_test_response_header(r, "access-control-max-age"));
    csgi_test_response_free(r);
    /* The same method on a GET with Origin: an actual request. */
    r = cors_run(app, "GET", "Origin: https://b.example\nAccess-Control-Request-Method: POST");
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "hello");
    ck_assert_str_eq(csgi_test_response_header(r, "access-control-allow-origin"),
                     "https://b.example");
    ck_assert_ptr_null(csgi_test_response_header(r, "access-control-allow-methods"));
    csgi_test_response_free(r);
    /* OPTIONS with Origin but no method asked for: an actual request too. */
    r = cors_run(app, "OPTIONS", "Origin: https://b.example");
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "hello");
    ck_assert_str_eq(csgi_test_response_header(r, "access-control-allow-origin"),
                     "https://b.example");
    ck_assert_ptr_null(csgi_test_response_header(r, "access-control-allow-methods"));
    csgi_test_response_free(r);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

static Suite *oslo_edge_suite(void)
{
    Suite *suite = suite_create("oslo_edge");
    TCase *tc = tcase_create("healthcheck");
    tcase_add_test(tc, healthcheck_spellings);
    tcase_add_test(tc, healthcheck_disable_file);
    tcase_add_test(tc, healthcheck_detailed);
    tcase_add_test(tc, healthcheck_bad_conf);
    tcase_add_test(tc, healthcheck_docs_example);
    tcase_add_test(tc, healthcheck_sockets);
    suite_add_tcase(suite, tc);
    tc = tcase_create("http_proxy_to_wsgi");
    tcase_add_test(tc, proxy_spellings);
    tcase_add_test(tc, proxy_forwarded);
    tcase_add_test(tc, proxy_untrusted);
    suite_add_tcase(suite, tc);
    tc = tcase_create("cors");
    tcase_add_test(tc, cors_preflight);
    tcase_add_test(tc, cors_simple);
    tcase_add_test(tc, cors_origin_decides);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(oslo_edge_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
