/*
 * http_proxy_to_wsgi and cors (src/middleware/http_proxy_to_wsgi.c, cors.c)
 * over real sockets: deploy files loaded as OpenStack writes them, served
 * on 127.0.0.1 port 0, raw requests sent in one write, in two and a byte at
 * a time. The hostile cases: a client that is not a trusted proxy sending
 * the proxy headers itself, and an origin that is not allowed.
 */
#include "engine_harness.h"
#include "test_deploy.h"
#include "test_files.h"
#include "test_tls.h"

#include <csgi.h>

#include <check.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum split { ONE_WRITE, TWO_WRITES, BYTE_AT_A_TIME, SPLITS };
static const char *const split_names[SPLITS] = {"one write", "two writes", "byte at a time"};

/* Send request as asked: whole, cut in the middle of its head with a pause
   between the halves, or one byte per write. */
static void send_split(int fd, const char *request, enum split how)
{
    size_t len = strlen(request);
    if (how == ONE_WRITE) {
        ck_assert_int_eq(client_send(fd, request, len), 0);
    } else if (how == TWO_WRITES) {
        ck_assert_int_eq(client_send(fd, request, len / 2), 0);
        usleep(20 * 1000);
        ck_assert_int_eq(client_send(fd, request + len / 2, len - len / 2), 0);
    } else {
        for (size_t i = 0; i < len; i++)
            ck_assert_int_eq(client_send(fd, request + i, 1), 0);
    }
}

/* Send request on fd as asked and read its response into *r. */
static void exchange(int fd, const char *request, enum split how, test_response *r)
{
    send_split(fd, request, how);
    ck_assert_msg(client_response(fd, r, 0, 5000) == 0, "%s: no response to %s", split_names[how],
                  request);
}

/* What the application behind the filter saw, one environ key a line. */
static csgi_response *environ_echo(csgi_request *request, void *userdata)
{
    (void)userdata;
    csgi_environ *environ = csgi_request_environ(request);
    const char *host = csgi_environ_get(environ, "HTTP_HOST");
    char text[1024];
    snprintf(text, sizeof(text), "scheme=%s\nhost=%s\nremote=%s\nscript=[%s]\n",
             csgi_environ_get(environ, "csgi.url_scheme"), host ? host : "(none)",
             csgi_environ_get(environ, "REMOTE_ADDR"), csgi_environ_get(environ, "SCRIPT_NAME"));
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_text(response, text, NULL) != 0)
        return NULL;
    return response;
}

static int environ_echo_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                                const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    return csgi_handler_app_factory(out, global_conf, local_conf, "environ_echo", environ_echo,
                                    NULL, error);
}

static const char deploy_ini[] = "[pipeline:loopback]\n"
                                 "pipeline = trust_loopback environ_echo\n"
                                 "\n"
                                 "[pipeline:elsewhere]\n"
                                 "pipeline = trust_elsewhere environ_echo\n"
                                 "\n"
                                 "[filter:trust_loopback]\n"
                                 "paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory\n"
                                 "enable_proxy_headers_parsing = true\n"
                                 "trusted_proxies = 127.0.0.1\n"
                                 "\n"
                                 "[filter:trust_elsewhere]\n"
                                 "use = egg:oslo.middleware#http_proxy_to_wsgi\n"
                                 "enable_proxy_headers_parsing = true\n"
                                 "trusted_proxies = 10.0.0.0/8, 127.0.0.2/32\n"
                                 "\n"
                                 "[app:environ_echo]\n"
                                 "use = egg:Test#environ_echo\n"
                                 "\n"
                                 "[pipeline:cors]\n"
                                 "pipeline = cors_filter hello\n"
                                 "\n"
                                 "[filter:cors_filter]\n"
                                 "paste.filter_factory = oslo_middleware.cors:filter_factory\n"
                                 "allowed_origin = https://dash.example.org\n"
                                 "allow_methods = GET, POST\n"
                                 "allow_headers = X-Auth-Token\n"
                                 "expose_headers = X-Request-Id\n"
                                 "max_age = 600\n"
                                 "\n"
                                 "[app:hello]\n"
                                 "use = egg:Test#hello\n";

/* Serve the deploy file's app name on 127.0.0.1 port 0. */
static void serve(app_server *served, const char *name)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:Test#hello", CSGI_FACTORY_APP,
                                              test_hello_app_factory),
                     0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:Test#environ_echo", CSGI_FACTORY_APP,
                                              environ_echo_factory),
                     0);
    char uri[4200];
    snprintf(uri, sizeof(uri), "%s#%s", test_write_file("oslo_sockets.ini", deploy_ini), name);
    app_server_start(served, test_load(loader, uri), NULL);
    csgi_loader_free(loader);
}

/* ---- http_proxy_to_wsgi ---------------------------------------------------------------- */

/* The scheme the client really uses, and the one a forger claims. */
static const char *real_scheme(void)
{
    return test_tls_mode() ? "https" : "http";
}

static const char *forged_scheme(void)
{
    return test_tls_mode() ? "http" : "https";
}

/* Requests carrying every proxy header, X-Forwarded-* or Forwarded. */
static void proxy_requests(char x_forwarded[1024], char forwarded[1024])
{
    snprintf(x_forwarded, 1024,
             "GET /v2.1/servers HTTP/1.1\r\n"
             "Host: app.internal\r\n"
             "X-Forwarded-Proto: %s\r\n"
             "X-Forwarded-Host: api.example.org\r\n"
             "X-Forwarded-For: 198.51.100.7\r\n"
             "X-Forwarded-Prefix: /compute\r\n"
             "\r\n",
             forged_scheme());
    snprintf(forwarded, 1024,
             "GET /v2.1/servers HTTP/1.1\r\n"
             "Host: app.internal\r\n"
             "Forwarded: for=\"[2001:db8::7]:4711\";proto=%s;host=\"api.example.org:8443\"\r\n"
             "\r\n",
             forged_scheme());
}

/* Both requests, each split every way, on one connection from source to
   served; the echo must show want_x and want_forwarded. */
static void expect_proxied(const app_server *served, const char *source, const char *want_x,
                           const char *want_forwarded)
{
    char x_forwarded[1024], forwarded[1024];
    proxy_requests(x_forwarded, forwarded);
    int fd = client_connect_from(served->port, source);
    for (int how = 0; how < SPLITS; how++) {
        test_response r;
        exchange(fd, x_forwarded, (enum split)how, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_msg(strcmp(r.body, want_x) == 0, "%s from %s: %s", split_names[how], source,
                      r.body);
        response_free(&r);
        exchange(fd, forwarded, (enum split)how, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_msg(strcmp(r.body, want_forwarded) == 0, "%s from %s: %s", split_names[how],
                      source, r.body);
        response_free(&r);
    }
    close(fd);
}

START_TEST(proxy_untrusted_client_not_believed)
{
    char want[256];
    /* The filter trusts 127.0.0.1 only: a client at 127.0.0.2 sending the
       headers itself changes nothing. */
    app_server served;
    serve(&served, "loopback");
    snprintf(want, sizeof(want), "scheme=%s\nhost=app.internal\nremote=127.0.0.2\nscript=[]\n",
             real_scheme());
    expect_proxied(&served, "127.0.0.2", want, want);
    app_server_stop(&served);
    /* Nor does one at 127.0.0.1 when the filter trusts other addresses. */
    serve(&served, "elsewhere");
    snprintf(want, sizeof(want), "scheme=%s\nhost=app.internal\nremote=127.0.0.1\nscript=[]\n",
             real_scheme());
    expect_proxied(&served, "127.0.0.1", want, want);
    app_server_stop(&served);
}
END_TEST

START_TEST(proxy_trusted_proxy_believed)
{
    char want_x[256], want_forwarded[256];
    snprintf(want_x, sizeof(want_x),
             "scheme=%s\nhost=api.example.org\nremote=198.51.100.7\nscript=[/compute]\n",
             forged_scheme());
    snprintf(want_forwarded, sizeof(want_forwarded),
             "scheme=%s\nhost=api.example.org:8443\nremote=2001:db8::7\nscript=[]\n",
             forged_scheme());
    app_server served;
    serve(&served, "loopback");
    expect_proxied(&served, "127.0.0.1", want_x, want_forwarded);
    app_server_stop(&served);
    /* 127.0.0.2/32 among trusted_proxies: that proxy is believed too. */
    serve(&served, "elsewhere");
    expect_proxied(&served, "127.0.0.2", want_x, want_forwarded);
    app_server_stop(&served);
}
END_TEST

/* ---- cors ------------------------------------------------------------------------------ */

/* No Access-Control-* header and no Vary in r. */
static void no_cors_headers(const test_response *r, const char *what)
{
    for (const char *p = r->headers; *p;) {
        ck_assert_msg(strncasecmp(p, "access-control-", 15) != 0 && strncasecmp(p, "vary:", 5) != 0,
                      "%s: %s", what, r->headers);
        const char *next = strstr(p, "\r\n");
        if (!next)
            break;
        p = next + 2;
    }
}

static const char preflight_format[] = "OPTIONS /v2/images HTTP/1.1\r\n"
                                       "Host: api.example.org\r\n"
                                       "Origin: %s\r\n"
                                       "Access-Control-Request-Method: POST\r\n"
                                       "Access-Control-Request-Headers: x-auth-token\r\n"
                                       "\r\n";

static const char actual_format[] = "POST /v2/images HTTP/1.1\r\n"
                                    "Host: api.example.org\r\n"
                                    "Origin: %s\r\n"
                                    "Content-Type: application/json\r\n"
                                    "Content-Length: 11\r\n"
                                    "\r\n"
                                    "{\"name\":1}\n";

START_TEST(cors_allowed_origin)
{
    app_server served;
    serve(&served, "cors");
    char preflight[512], actual[512];
    snprintf(preflight, sizeof(preflight), preflight_format, "https://dash.example.org");
    snprintf(actual, sizeof(actual), actual_format, "https://dash.example.org");
    int fd = client_connect(served.port);
    for (int how = 0; how < SPLITS; how++) {
        test_response r;
        exchange(fd, preflight, (enum split)how, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(response_header(&r, "access-control-allow-origin"),
                         "https://dash.example.org");
        ck_assert_str_eq(response_header(&r, "access-control-allow-methods"), "POST");
        ck_assert_str_eq(response_header(&r, "access-control-allow-headers"), "x-auth-token");
        ck_assert_str_eq(response_header(&r, "access-control-max-age"), "600");
        ck_assert_str_eq(response_header(&r, "vary"), "Origin");
        ck_assert_str_eq(r.body, "");
        response_free(&r);
        exchange(fd, actual, (enum split)how, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(r.body, "hello");
        ck_assert_str_eq(response_header(&r, "access-control-allow-origin"),
                         "https://dash.example.org");
        ck_assert_str_eq(response_header(&r, "access-control-expose-headers"), "X-Request-Id");
        ck_assert_str_eq(response_header(&r, "vary"), "Origin");
        response_free(&r);
    }
    close(fd);
    app_server_stop(&served);
}
END_TEST

START_TEST(cors_other_origin_served_without_cors)
{
    app_server served;
    serve(&served, "cors");
    static const char *const origins[] = {"https://evil.example",
                                          "https://dash.example.org.evil.example",
                                          "http://dash.example.org", "null"};
    int fd = client_connect(served.port);
    for (size_t i = 0; i < sizeof(origins) / sizeof(origins[0]); i++) {
        char preflight[512], actual[512];
        snprintf(preflight, sizeof(preflight), preflight_format, origins[i]);
        snprintf(actual, sizeof(actual), actual_format, origins[i]);
        for (int how = 0; how < SPLITS; how++) {
            test_response r;
            /* The preflight goes on to the application, unanswered by CORS. */
            exchange(fd, preflight, (enum split)how, &r);
            ck_assert_int_eq(r.status, 200);
            no_cors_headers(&r, origins[i]);
            response_free(&r);
            exchange(fd, actual, (enum split)how, &r);
            ck_assert_int_eq(r.status, 200);
            ck_assert_str_eq(r.body, "hello");
            no_cors_headers(&r, origins[i]);
            response_free(&r);
        }
    }
    close(fd);
    app_server_stop(&served);
}
END_TEST

static Suite *oslo_sockets_suite(void)
{
    Suite *suite = suite_create("oslo_sockets");
    TCase *tc = tcase_create("http_proxy_to_wsgi");
    tcase_add_test(tc, proxy_untrusted_client_not_believed);
    tcase_add_test(tc, proxy_trusted_proxy_believed);
    suite_add_tcase(suite, tc);
    tc = tcase_create("cors");
    tcase_add_test(tc, cors_allowed_origin);
    tcase_add_test(tc, cors_other_origin_served_without_cors);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(oslo_sockets_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
