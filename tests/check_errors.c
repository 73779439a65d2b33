/*
 * Error pages (csgi/errors.h): the built-in renderers, the server's own
 * error pages through a renderer over real sockets (text bytes unchanged,
 * JSON, a custom renderer, renderers that fail falling back to text, old
 * option versions), the application's pages in a fixed format (the
 * error_format filter, csgi_error_format_set(), csgi.error_format), and the
 * INI keys (error_format of egg:csgi#http, egg:csgi#error_format).
 */
#include "engine_harness.h"
#include "test_deploy.h"
#include "test_files.h"

#include "common/error_page.h"
#include "common/status.h"

#include <csgi.h>
#include <csgi/errors.h>
#include <csgi/loader.h>
#include <csgi/testing.h>

#include <check.h>
#include <jansson.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- The built-in renderers ------------------------------------------------------------- */

/* Render with render into a buffer of size bytes followed by canaries:
   the return value, and nothing written past size. */
static int render_into(csgi_error_render_fn render, char *out, size_t size, size_t *len,
                       const char **type, int status, const char *detail)
{
    char buffer[4096 + 16];
    ck_assert_uint_le(size, 4096);
    memset(buffer, '#', sizeof(buffer));
    int rc = render(buffer, size, len, type, status, csgi_status__reason(status), detail, NULL);
    for (size_t i = size; i < sizeof(buffer); i++)
        ck_assert_msg(buffer[i] == '#', "byte %zu written past a buffer of %zu", i, size);
    if (rc == 0 && *len <= size) {
        memcpy(out, buffer, *len);
        out[*len] = '\0';
    }
    return rc;
}

START_TEST(text_renderer_is_the_text_page)
{
    static const int codes[] = {400, 404, 408, 413, 414, 431, 500, 501, 505, 599};
    char page[4097], expected[256];
    size_t len;
    const char *type;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *details[] = {NULL, "", "no such thing"};
        for (size_t d = 0; d < 3; d++) {
            ck_assert_int_eq(
                render_into(csgi_error_render_text, page, 4096, &len, &type, codes[i], details[d]),
                0);
            size_t n = csgi_status__error_text(expected, sizeof(expected), codes[i], details[d]);
            ck_assert_uint_eq(len, n);
            ck_assert_str_eq(page, expected);
            ck_assert_str_eq(type, "text/plain; charset=utf-8");
        }
    }
    ck_assert_int_eq(render_into(csgi_error_render_text, page, 4096, &len, &type, 404, "d"), 0);
    ck_assert_str_eq(page, "404 Not Found\n\nd\n");
    /* snprintf's rules: a short buffer gets what fits, *len the whole */
    for (size_t size = 0; size < 18; size++) {
        ck_assert_int_eq(render_into(csgi_error_render_text, page, size, &len, &type, 404, "d"), 0);
        ck_assert_uint_eq(len, 17);
    }
    ck_assert_int_eq(csgi_error_render_text(page, 10, NULL, &type, 404, "Not Found", NULL, NULL),
                     CSGI_EINVAL);
    ck_assert_int_eq(csgi_error_render_text(page, 10, &len, &type, 404, NULL, NULL, NULL),
                     CSGI_EINVAL);
}
END_TEST

/* The page csgi_response_error() gave before the renderers, built with
   jansson: the JSON renderer must give exactly these bytes. */
static char *jansson_page(int status, const char *detail)
{
    const char *reason = csgi_status__reason(status);
    json_t *message = detail && *detail ? json_string(detail) : NULL;
    if (!message)
        message = json_string(reason);
    json_t *object = json_object();
    json_object_set_new(object, "message", message);
    json_object_set_new(object, "code", json_integer(status));
    json_object_set_new(object, "title", json_string(reason));
    char *text = json_dumps(object, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(object);
    return text;
}

static void json_matches_jansson(int status, const char *detail)
{
    char page[4097];
    size_t len;
    const char *type;
    ck_assert_int_eq(render_into(csgi_error_render_json, page, 4096, &len, &type, status, detail),
                     0);
    char *expected = jansson_page(status, detail);
    ck_assert_ptr_nonnull(expected);
    ck_assert_msg(strcmp(page, expected) == 0, "json %s, jansson %s", page, expected);
    ck_assert_uint_eq(len, strlen(expected));
    ck_assert_str_eq(type, "application/json");
    free(expected);
}

START_TEST(json_renderer_gives_janssons_bytes)
{
    static const char *const details[] = {
        NULL,
        "",
        "plain words",
        "bad \"field\" and \\ back/slash",
        "\x01\x02\x07\b\f\n\r\t\x0b\x1f\x7f end",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", /* é € 😀 */
        "not utf-8 \xff",                            /* invalid byte */
        "overlong \xc0\x80",                         /* overlong NUL */
        "overlong \xe0\x80\x80",                     /* overlong 3 */
        "overlong \xf0\x80\x80\x80",                 /* overlong 4 */
        "surrogate \xed\xa0\x80",                    /* U+D800 */
        "last BMP \xef\xbf\xbf and \xed\x9f\xbf",    /* U+FFFF, U+D7FF */
        "above \xf4\x90\x80\x80",                    /* U+110000 */
        "max \xf4\x8f\xbf\xbf",                      /* U+10FFFF */
        "cut \xe2\x82",                              /* cut sequence */
        "cut \xf0\x9f\x98",                          /* cut sequence */
        "lone continuation \x80",                    /* continuation first */
        "\xf5\x80\x80\x80",                          /* F5 never starts one */
        "\xc2\x80\xdf\xbf",                          /* U+0080, U+07FF */
    };
    for (size_t i = 0; i < sizeof(details) / sizeof(details[0]); i++)
        json_matches_jansson(422, details[i]);
    json_matches_jansson(500, NULL);
    json_matches_jansson(404, "x");

    /* random bytes, weighted towards the interesting ones */
    static const unsigned char pool[] = {'a',  '"',  '\\', '/',  '\n', 0x01, 0x1f, 0x7f, 0x80,
                                         0xbf, 0xc2, 0xc0, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4,
                                         0xf5, 0xff, 0xa0, 0x9f, 0x8f, 0x90, ' ',  'z'};
    unsigned seed = 12345;
    char detail[32];
    for (int round = 0; round < 3000; round++) {
        size_t n = (size_t)(round % 12) + 1;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            detail[i] = (char)pool[(seed >> 16) % sizeof(pool)];
        }
        detail[n] = '\0';
        json_matches_jansson(400, detail);
    }
    /* a reason that is not UTF-8 is no page */
    char page[64];
    size_t len;
    const char *type;
    ck_assert_int_eq(
        csgi_error_render_json(page, sizeof(page), &len, &type, 400, "bad \xff", NULL, NULL),
        CSGI_EINVAL);
}
END_TEST

START_TEST(html_renderer_page)
{
    char page[4097];
    size_t len;
    const char *type;
    ck_assert_int_eq(render_into(csgi_error_render_html, page, 4096, &len, &type, 403,
                                 "<script>alert('x')</script> & \"co\""),
                     0);
    ck_assert_str_eq(page, "<!DOCTYPE html>\n<html>\n<head>\n<title>403 Forbidden</title>\n"
                           "</head>\n<body>\n<h1>403 Forbidden</h1>\n"
                           "<p>&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; "
                           "&quot;co&quot;</p>\n</body>\n</html>\n");
    ck_assert_uint_eq(len, strlen(page));
    ck_assert_str_eq(type, "text/html; charset=utf-8");
    ck_assert_int_eq(render_into(csgi_error_render_html, page, 4096, &len, &type, 404, NULL), 0);
    ck_assert_str_eq(page, "<!DOCTYPE html>\n<html>\n<head>\n<title>404 Not Found</title>\n"
                           "</head>\n<body>\n<h1>404 Not Found</h1>\n</body>\n</html>\n");
    /* a reason of the caller's is escaped too */
    ck_assert_int_eq(
        csgi_error_render_html(page, sizeof(page), &len, &type, 499, "A<B", NULL, NULL), 0);
    page[len] = '\0';
    ck_assert_ptr_nonnull(strstr(page, "<title>499 A&lt;B</title>"));
    ck_assert_int_eq(render_into(csgi_error_render_html, page, 4096, &len, &type, 404, "d"), 0);
    size_t whole = strlen(page);
    ck_assert_uint_eq(len, whole);
    for (size_t size = 0; size < whole + 2; size += 7) {
        ck_assert_int_eq(render_into(csgi_error_render_html, page, size, &len, &type, 404, "d"), 0);
        ck_assert_uint_eq(len, whole);
    }
}
END_TEST

START_TEST(renderer_names)
{
    ck_assert_ptr_eq(csgi_error_page__named("json"), csgi_error_render_json);
    ck_assert_ptr_eq(csgi_error_page__named(" JSON\t"), csgi_error_render_json);
    ck_assert_ptr_eq(csgi_error_page__named("html"), csgi_error_render_html);
    ck_assert_ptr_eq(csgi_error_page__named("Text"), csgi_error_render_text);
    ck_assert_ptr_null(csgi_error_page__named("xml"));
    ck_assert_ptr_null(csgi_error_page__named(""));
    ck_assert_ptr_null(csgi_error_page__named("jsonx"));
    ck_assert_ptr_null(csgi_error_page__named(NULL));
    ck_assert_str_eq(csgi_error_page__name(csgi_error_render_json), "json");
    ck_assert_str_eq(csgi_error_page__name(csgi_error_render_html), "html");
    ck_assert_str_eq(csgi_error_page__name(csgi_error_render_text), "text");
    ck_assert_ptr_null(csgi_error_page__name(NULL));
}
END_TEST

/* ---- Renderers of the tests' own ---------------------------------------------------------- */

/* What the OpenStack renderer was called with. */
static int openstack_calls;
static const char *openstack_detail_seen = "unset";

/* {"itemNotFound": {"code": 404, "message": "Not Found"}}, OpenStack's shape,
   with the name from userdata for any status but 404. */
static int openstack_render(char *buffer, size_t size, size_t *len, const char **content_type,
                            int status, const char *reason, const char *detail, void *userdata)
{
    openstack_calls++;
    openstack_detail_seen = detail;
    const char *name = status == 404 ? "itemNotFound" : userdata;
    int n = snprintf(buffer, size, "{\"%s\": {\"code\": %d, \"message\": \"%s\"}}", name, status,
                     detail ? detail : reason);
    *len = (size_t)n;
    *content_type = "application/json; charset=UTF-8";
    return 0;
}

/* Renderers that break the contract, by what userdata names. */
static int broken_render(char *buffer, size_t size, size_t *len, const char **content_type,
                         int status, const char *reason, const char *detail, void *userdata)
{
    const char *how = userdata;
    memset(buffer, 'x', size); /* may scribble over all it was given */
    *len = 10;
    *content_type = "application/json";
    if (strcmp(how, "fails") == 0)
        return CSGI_ENOMEM;
    if (strcmp(how, "positive") == 0)
        return 7;
    if (strcmp(how, "header injection") == 0)
        *content_type = "text/plain\r\nX-Injected: yes";
    else if (strcmp(how, "no content type") == 0)
        *content_type = NULL;
    else if (strcmp(how, "empty content type") == 0)
        *content_type = "";
    else if (strcmp(how, "no slash") == 0)
        *content_type = "json";
    else if (strcmp(how, "blank first") == 0)
        *content_type = " text/plain";
    else if (strcmp(how, "too big") == 0)
        *len = size + 1; /* wants more than any buffer it gets */
    else if (strcmp(how, "no length") == 0)
        *len = SIZE_MAX;
    return 0;
}

static const char *const broken_ways[] = {
    "fails",    "positive",    "header injection", "no content type", "empty content type",
    "no slash", "blank first", "too big",          "no length",
};

#define BROKEN_WAY_COUNT (sizeof(broken_ways) / sizeof(broken_ways[0]))

START_TEST(render_checks_what_it_gets)
{
    char buffer[64];
    size_t len = 0;
    const char *type = NULL;
    for (size_t i = 0; i < BROKEN_WAY_COUNT; i++) {
        int rc = csgi_error_page__render(buffer, sizeof(buffer), &len, &type, 400, "Bad Request",
                                         NULL, broken_render, (void *)broken_ways[i]);
        if (strcmp(broken_ways[i], "too big") == 0) {
            ck_assert_int_eq(rc, 1);
            ck_assert_uint_eq(len, sizeof(buffer) + 1);
        } else {
            ck_assert_msg(rc < 0, "%s accepted", broken_ways[i]);
        }
    }
    ck_assert_int_eq(csgi_error_page__render(buffer, sizeof(buffer), &len, &type, 400,
                                             "Bad Request", NULL, broken_render, (void *)"fails"),
                     CSGI_ENOMEM);
    ck_assert_int_eq(csgi_error_page__render(buffer, sizeof(buffer), &len, &type, 404, "Not Found",
                                             NULL, openstack_render, NULL),
                     0);
    ck_assert_str_eq(type, "application/json; charset=UTF-8");
    ck_assert_uint_eq(len,
                      strlen("{\"itemNotFound\": {\"code\": 404, \"message\": \"Not Found\"}}"));
    ck_assert_int_eq(csgi_error_page__render(buffer, 8, &len, &type, 404, "Not Found", NULL,
                                             openstack_render, NULL),
                     1);
}
END_TEST

/* ---- The server's own errors over a real socket --------------------------------------------- */

static char log_lines[16][256];
static int log_count;

static void capture_log(int level, const char *message, void *userdata)
{
    (void)level;
    (void)userdata;
    if (log_count < 16)
        snprintf(log_lines[log_count++], sizeof(log_lines[0]), "%s", message);
}

static int logged(const char *text)
{
    for (int i = 0; i < log_count; i++)
        if (strstr(log_lines[i], text))
            return 1;
    return 0;
}

static csgi_body *hello_call(void *state, csgi_environ *environ,
                             csgi_start_response *start_response)
{
    (void)state;
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    const char *path = csgi_environ_get(environ, "PATH_INFO");
    if (path && strcmp(path, "/fail") == 0)
        return NULL; /* the server answers 500 */
    if (csgi_start_response_call(start_response, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_static(environ, "hello", 5);
}

static const csgi_app_type hello_type = {"hello", hello_call, NULL};

static csgi_app *hello_app(void)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &hello_type, NULL), 0);
    return app;
}

/* Options for the servers here: a body limit of 1000 bytes, logs captured. */
static csgi_server_options test_server_options(void)
{
    csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
    options.max_body = 1000;
    options.log = capture_log;
    log_count = 0;
    return options;
}

/* Send request on a new connection and read everything until the server
   closes, into out, with the Date line taken out (it changes). */
static void exchange(int port, const char *request, char *out, size_t cap)
{
    int fd = client_connect(port);
    ck_assert_int_eq(client_send_str(fd, request), 0);
    int eof = 0;
    client_read(fd, out, cap, 3000, NULL, &eof);
    ck_assert_msg(eof, "the server did not close after %s", request);
    close(fd);
    char *date = strstr(out, "\r\nDate: ");
    ck_assert_ptr_nonnull(date);
    char *end = strstr(date + 2, "\r\n");
    memmove(date, end, strlen(end) + 1);
}

/* A request over max_headers (431), one without Host (400), one with a body
   over max_body (413). */
static char many_headers[4096];

static const char *request_431(void)
{
    strcpy(many_headers, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 101; i++)
        sprintf(many_headers + strlen(many_headers), "X-%d: v\r\n", i);
    strcat(many_headers, "\r\n");
    return many_headers;
}

#define REQUEST_400 "GET / HTTP/1.1\r\n\r\n"
#define REQUEST_413 "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n"

START_TEST(server_text_pages_unchanged)
{
    /* the defaults, and the text renderer named: the same bytes as ever */
    for (int named = 0; named < 2; named++) {
        csgi_server_options options = test_server_options();
        if (named)
            options.error_render = csgi_error_render_text;
        app_server server;
        app_server_start(&server, hello_app(), &options);
        char raw[8192];
        exchange(server.port, REQUEST_400, raw, sizeof(raw));
        ck_assert_str_eq(raw, "HTTP/1.1 400 Bad Request\r\n"
                              "Server: csgi\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "Content-Length: 16\r\n"
                              "Connection: close\r\n"
                              "\r\n"
                              "400 Bad Request\n");
        exchange(server.port, REQUEST_413, raw, sizeof(raw));
        ck_assert_str_eq(raw, "HTTP/1.1 413 Content Too Large\r\n"
                              "Server: csgi\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "Content-Length: 22\r\n"
                              "Connection: close\r\n"
                              "\r\n"
                              "413 Content Too Large\n");
        exchange(server.port, request_431(), raw, sizeof(raw));
        ck_assert_str_eq(raw, "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                              "Server: csgi\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "Content-Length: 36\r\n"
                              "Connection: close\r\n"
                              "\r\n"
                              "431 Request Header Fields Too Large\n");
        exchange(server.port, "GET /fail HTTP/1.1\r\nHost: a\r\n\r\n", raw, sizeof(raw));
        ck_assert_ptr_nonnull(strstr(raw, "\r\n\r\n500 Internal Server Error\n"));
        app_server_stop(&server);
        ck_assert(!logged("error renderer"));
    }
}
END_TEST

/* The body after the head of raw, and the Content-Type and Content-Length
   values, checked against each other. */
static const char *page_of(const char *raw, char *content_type, size_t cap)
{
    const char *body = strstr(raw, "\r\n\r\n");
    ck_assert_ptr_nonnull(body);
    body += 4;
    const char *type = strstr(raw, "\r\nContent-Type: ");
    ck_assert_ptr_nonnull(type);
    type += 16;
    size_t n = strcspn(type, "\r");
    ck_assert_uint_lt(n, cap);
    memcpy(content_type, type, n);
    content_type[n] = '\0';
    const char *length = strstr(raw, "\r\nContent-Length: ");
    ck_assert_ptr_nonnull(length);
    ck_assert_uint_eq(strtoul(length + 18, NULL, 10), strlen(body));
    ck_assert_ptr_nonnull(strstr(raw, "\r\nConnection: close\r\n"));
    return body;
}

START_TEST(server_json_pages)
{
    csgi_server_options options = test_server_options();
    options.error_render = csgi_error_render_json;
    app_server server;
    app_server_start(&server, hello_app(), &options);
    char raw[8192], type[128];
    exchange(server.port, REQUEST_400, raw, sizeof(raw));
    ck_assert_ptr_nonnull(strstr(raw, "HTTP/1.1 400 Bad Request\r\n"));
    ck_assert_str_eq(page_of(raw, type, sizeof(type)),
                     "{\"message\":\"Bad Request\",\"code\":400,\"title\":\"Bad Request\"}");
    ck_assert_str_eq(type, "application/json");
    exchange(server.port, REQUEST_413, raw, sizeof(raw));
    ck_assert_str_eq(page_of(raw, type, sizeof(type)),
                     "{\"message\":\"Content Too Large\",\"code\":413,"
                     "\"title\":\"Content Too Large\"}");
    exchange(server.port, request_431(), raw, sizeof(raw));
    ck_assert_str_eq(page_of(raw, type, sizeof(type)),
                     "{\"message\":\"Request Header Fields Too Large\",\"code\":431,"
                     "\"title\":\"Request Header Fields Too Large\"}");
    ck_assert_str_eq(type, "application/json");
    /* an application that failed: the engine's 500, rendered the same way */
    exchange(server.port, "GET /fail HTTP/1.1\r\nHost: a\r\n\r\n", raw, sizeof(raw));
    ck_assert_str_eq(page_of(raw, type, sizeof(type)),
                     "{\"message\":\"Internal Server Error\",\"code\":500,"
                     "\"title\":\"Internal Server Error\"}");
    /* a normal request is not touched */
    int fd = client_connect(server.port);
    test_response r;
    ck_assert_int_eq(client_send_str(fd, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    ck_assert_int_eq(client_response(fd, &r, 0, 3000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "hello");
    response_free(&r);
    close(fd);
    app_server_stop(&server);
}
END_TEST

START_TEST(server_custom_renderer)
{
    csgi_server_options options = test_server_options();
    options.error_render = openstack_render;
    options.error_render_userdata = (void *)"badRequest";
    openstack_calls = 0;
    app_server server;
    app_server_start(&server, hello_app(), &options);
    char raw[8192], type[128];
    exchange(server.port, REQUEST_400, raw, sizeof(raw));
    ck_assert_str_eq(page_of(raw, type, sizeof(type)),
                     "{\"badRequest\": {\"code\": 400, \"message\": \"Bad Request\"}}");
    ck_assert_str_eq(type, "application/json; charset=UTF-8");
    exchange(server.port, REQUEST_413, raw, sizeof(raw));
    ck_assert_str_eq(page_of(raw, type, sizeof(type)),
                     "{\"badRequest\": {\"code\": 413, \"message\": \"Content Too Large\"}}");
    app_server_stop(&server);
    ck_assert_int_eq(openstack_calls, 2);
    ck_assert_ptr_null(openstack_detail_seen); /* the server's errors have no detail */
}
END_TEST

START_TEST(server_broken_renderer_falls_back_to_text)
{
    const char *how = broken_ways[_i];
    csgi_server_options options = test_server_options();
    options.error_render = broken_render;
    options.error_render_userdata = (void *)how;
    app_server server;
    app_server_start(&server, hello_app(), &options);
    char raw[8192];
    exchange(server.port, REQUEST_400, raw, sizeof(raw));
    ck_assert_msg(strcmp(raw, "HTTP/1.1 400 Bad Request\r\n"
                              "Server: csgi\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "Content-Length: 16\r\n"
                              "Connection: close\r\n"
                              "\r\n"
                              "400 Bad Request\n") == 0,
                  "%s: %s", how, raw);
    app_server_stop(&server);
    ck_assert_msg(logged("error renderer"), "%s: not logged", how);
    ck_assert(logged("sent the text page"));
}
END_TEST

/* A page over CSGI_ERROR_PAGE_MAX is not sent; one of exactly that size is. */
static int sized_render(char *buffer, size_t size, size_t *len, const char **content_type,
                        int status, const char *reason, const char *detail, void *userdata)
{
    size_t want = *(const size_t *)userdata;
    memset(buffer, 'p', want < size ? want : size);
    *len = want;
    *content_type = "text/x-long";
    return 0;
}

START_TEST(server_page_size_limit)
{
    for (size_t extra = 0; extra < 2; extra++) {
        size_t want = CSGI_ERROR_PAGE_MAX + extra;
        csgi_server_options options = test_server_options();
        options.error_render = sized_render;
        options.error_render_userdata = &want;
        app_server server;
        app_server_start(&server, hello_app(), &options);
        char raw[8192], type[128];
        exchange(server.port, REQUEST_400, raw, sizeof(raw));
        const char *body = page_of(raw, type, sizeof(type));
        if (extra) {
            ck_assert_str_eq(body, "400 Bad Request\n");
            ck_assert(logged("the 400 page has 2049 bytes (at most 2048)"));
        } else {
            ck_assert_uint_eq(strlen(body), CSGI_ERROR_PAGE_MAX);
            ck_assert_str_eq(type, "text/x-long");
        }
        app_server_stop(&server);
    }
}
END_TEST

/* A program built against version 2 of the options has no error_render:
   whatever lies past its struct is never read. A version above the
   current one is refused. */
START_TEST(server_options_versions)
{
    csgi_server_options options = test_server_options();
    options.version = 2;
    options.error_render = broken_render; /* "past the end" of a version 2 struct */
    options.error_render_userdata = (void *)"fails";
    app_server server;
    app_server_start(&server, hello_app(), &options);
    char raw[8192];
    exchange(server.port, REQUEST_400, raw, sizeof(raw));
    ck_assert_ptr_nonnull(strstr(raw, "\r\n\r\n400 Bad Request\n"));
    app_server_stop(&server);
    ck_assert(!logged("error renderer"));

    options.version = CSGI_SERVER_OPTIONS_VERSION + 1;
    csgi_server *bad = NULL;
    ck_assert_int_eq(csgi_server_new(&bad, hello_app(), &options, NULL), CSGI_EINVAL);
    ck_assert_ptr_null(bad);
    ck_assert_uint_eq(CSGI_SERVER_OPTIONS_VERSION, 8);
    csgi_server_options init;
    csgi_server_options_init(&init);
    ck_assert_int_eq(init.backlog, 0); /* version 7: 0 is the default (511) */
    ck_assert_uint_eq(init.unix_mode, 0);
    ck_assert_uint_eq(init.umask, 0);
    ck_assert_ptr_null(init.pidfile);
    ck_assert_ptr_null(init.chdir);
    ck_assert_uint_eq(init.busy_timeout_ms, 0); /* version 8 */
    ck_assert_int_eq(init.reload_exec, 0);
    options = test_server_options();
    options.busy_timeout_ms = 1000; /* a timeout without workers: nothing would replace us */
    ck_assert_int_eq(csgi_server_new(&bad, hello_app(), &options, NULL), CSGI_EINVAL);
    options.busy_timeout_ms = 0;
    options.backlog = -1;
    ck_assert_int_eq(csgi_server_new(&bad, hello_app(), &options, NULL), CSGI_EINVAL);
    options.backlog = 0;
    options.umask = 01000;
    ck_assert_int_eq(csgi_server_new(&bad, hello_app(), &options, NULL), CSGI_EINVAL);
    options.umask = 0;
    options.unix_owner = "no-such-user-of-csgi";
    ck_assert_int_eq(csgi_server_new(&bad, hello_app(), &options, NULL), CSGI_EINVAL);
    ck_assert(logged("unix_owner: no user 'no-such-user-of-csgi'"));
    ck_assert_ptr_null(init.error_render);
    ck_assert_ptr_null(init.error_render_userdata);
}
END_TEST

/* ---- The application's errors in a fixed format --------------------------------------------- */

/* Answers csgi_response_error(): the status from the path (/404, /422...),
   detail "no <such> thing"; /long a detail of 3000 bytes; /file a 16-byte
   conditional response with an ETag (for 412 and 416). */
static csgi_body *errors_call(void *state, csgi_environ *environ,
                              csgi_start_response *start_response)
{
    (void)state;
    const char *path = csgi_environ_get(environ, "PATH_INFO");
    csgi_response *response = NULL;
    int rc;
    if (strcmp(path, "/file") == 0) {
        rc = csgi_response_new(&response, environ);
        if (rc == 0)
            rc = csgi_response_set_body_static(response, "0123456789abcdef", 16);
        if (rc == 0)
            rc = csgi_response_set_etag(response, "v1", 0);
        if (rc == 0)
            csgi_response_set_conditional(response, 1);
    } else if (strcmp(path, "/long") == 0) {
        char *detail = csgi_environ_alloc(environ, 3001);
        if (!detail)
            return NULL;
        memset(detail, 'd', 3000);
        detail[3000] = '\0';
        rc = csgi_response_error(&response, environ, 400, detail);
    } else {
        rc = csgi_response_error(&response, environ, atoi(path + 1), "no <such> thing");
    }
    return rc ? NULL : csgi_response_send(response, environ, start_response);
}

static const csgi_app_type errors_type = {"errors", errors_call, NULL};

static csgi_app *errors_app(void)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &errors_type, NULL), 0);
    return app;
}

/* GET path through app with the test client, with an Accept header (or
   none) and another header line "Name: value" (or NULL). */
static csgi_test_response *run_get(csgi_app *app, const char *path, const char *accept,
                                   const char *name, const char *value)
{
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", path), 0);
    if (accept)
        ck_assert_int_eq(csgi_test_request_add_header(request, "Accept", accept), 0);
    if (name)
        ck_assert_int_eq(csgi_test_request_add_header(request, name, value), 0);
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    csgi_test_request_free(request);
    return response;
}

static const char *body_of(const csgi_test_response *response)
{
    return csgi_test_response_body(response, NULL);
}

static const char *type_of(const csgi_test_response *response)
{
    const char *type = csgi_test_response_header(response, "Content-Type");
    return type ? type : "";
}

#define JSON_404 "{\"message\":\"no <such> thing\",\"code\":404,\"title\":\"Not Found\"}"

START_TEST(filter_fixes_json_whatever_accept_says)
{
    csgi_app *plain = errors_app();
    csgi_app *filtered = NULL;
    ck_assert_int_eq(
        csgi_error_format_new(&filtered, csgi_app_ref(plain), csgi_error_render_json, NULL, NULL),
        0);
    ck_assert_str_eq(csgi_app_name(filtered), "error_format");
    static const char *const accepts[] = {"text/html", "text/plain", NULL, "*/*",
                                          "text/html,application/xhtml+xml,*/*;q=0.8"};
    for (size_t i = 0; i < sizeof(accepts) / sizeof(accepts[0]); i++) {
        csgi_test_response *r = run_get(filtered, "/404", accepts[i], NULL, NULL);
        ck_assert_int_eq(csgi_test_response_code(r), 404);
        ck_assert_str_eq(type_of(r), "application/json");
        ck_assert_str_eq(body_of(r), JSON_404);
        csgi_test_response_free(r);
    }
    /* without the filter, Accept decides */
    csgi_test_response *r = run_get(plain, "/404", "text/html", NULL, NULL);
    ck_assert_str_eq(type_of(r), "text/html; charset=utf-8");
    csgi_test_response_free(r);

    /* the conditional pages of a response follow the fixed format too, and
       stay text without it */
    r = run_get(filtered, "/file", "text/html", "If-Match", "\"other\"");
    ck_assert_int_eq(csgi_test_response_code(r), 412);
    ck_assert_str_eq(body_of(r), "{\"message\":\"Precondition Failed\",\"code\":412,"
                                 "\"title\":\"Precondition Failed\"}");
    ck_assert_str_eq(type_of(r), "application/json");
    csgi_test_response_free(r);
    r = run_get(filtered, "/file", NULL, "Range", "bytes=100-");
    ck_assert_int_eq(csgi_test_response_code(r), 416);
    ck_assert_str_eq(type_of(r), "application/json");
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Range"), "bytes */16");
    csgi_test_response_free(r);
    r = run_get(plain, "/file", "application/json", "If-Match", "\"other\"");
    ck_assert_str_eq(body_of(r), "412 Precondition Failed\n");
    ck_assert_str_eq(type_of(r), "text/plain; charset=utf-8");
    csgi_test_response_free(r);
    r = run_get(filtered, "/file", "text/html", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(body_of(r), "0123456789abcdef");
    csgi_test_response_free(r);

    csgi_app_free(filtered);
    csgi_app_free(plain);
}
END_TEST

START_TEST(filter_with_html_and_text)
{
    csgi_app *html = NULL, *text = NULL;
    ck_assert_int_eq(csgi_error_format_new(&html, errors_app(), csgi_error_render_html, NULL, NULL),
                     0);
    ck_assert_int_eq(csgi_error_format_new(&text, errors_app(), csgi_error_render_text, NULL, NULL),
                     0);
    csgi_test_response *r = run_get(html, "/404", "application/json", NULL, NULL);
    ck_assert_str_eq(type_of(r), "text/html; charset=utf-8");
    ck_assert_ptr_nonnull(strstr(body_of(r), "<p>no &lt;such&gt; thing</p>"));
    csgi_test_response_free(r);
    r = run_get(text, "/404", "application/json", NULL, NULL);
    ck_assert_str_eq(type_of(r), "text/plain; charset=utf-8");
    ck_assert_str_eq(body_of(r), "404 Not Found\n\nno <such> thing\n");
    csgi_test_response_free(r);
    csgi_app_free(html);
    csgi_app_free(text);
}
END_TEST

/* The renderer a filter closer to the application sets wins. */
START_TEST(inner_filter_wins)
{
    csgi_app *inner = NULL, *outer = NULL;
    ck_assert_int_eq(
        csgi_error_format_new(&inner, errors_app(), csgi_error_render_html, NULL, NULL), 0);
    ck_assert_int_eq(csgi_error_format_new(&outer, inner, csgi_error_render_json, NULL, NULL), 0);
    csgi_test_response *r = run_get(outer, "/404", "application/json", NULL, NULL);
    ck_assert_str_eq(type_of(r), "text/html; charset=utf-8");
    csgi_test_response_free(r);
    csgi_app_free(outer);
}
END_TEST

static int destroyed;

static void count_destroy(void *pointer)
{
    ck_assert_str_eq(pointer, "computeFault");
    destroyed++;
}

START_TEST(filter_with_custom_renderer)
{
    destroyed = 0;
    openstack_calls = 0;
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_error_format_new(&app, errors_app(), openstack_render,
                                           (void *)"computeFault", count_destroy),
                     0);
    csgi_test_response *r = run_get(app, "/404", "text/html", NULL, NULL);
    ck_assert_str_eq(body_of(r), "{\"itemNotFound\": {\"code\": 404, \"message\": \"no <such> "
                                 "thing\"}}");
    ck_assert_str_eq(type_of(r), "application/json; charset=UTF-8");
    csgi_test_response_free(r);
    r = run_get(app, "/500", "text/html", NULL, NULL);
    ck_assert_str_eq(body_of(r), "{\"computeFault\": {\"code\": 500, \"message\": \"no <such> "
                                 "thing\"}}");
    csgi_test_response_free(r);
    /* a page longer than the first buffer is rendered again, whole */
    r = run_get(app, "/long", NULL, NULL, NULL);
    size_t len = 0;
    const char *body = csgi_test_response_body(r, &len);
    ck_assert_uint_eq(len, strlen("{\"computeFault\": {\"code\": 400, \"message\": \"\"}}") + 3000);
    ck_assert_ptr_nonnull(strstr(body, "\"message\": \"dddd"));
    ck_assert_int_eq(body[len - 1], '}');
    csgi_test_response_free(r);
    ck_assert_int_eq(destroyed, 0);
    csgi_app_free(app);
    ck_assert_int_eq(destroyed, 1);
}
END_TEST

START_TEST(filter_with_broken_renderer_sends_text)
{
    const char *how = broken_ways[_i];
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_error_format_new(&app, errors_app(), broken_render, (void *)how, NULL),
                     0);
    csgi_test_response *r = run_get(app, "/404", "application/json", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 404);
    ck_assert_msg(strcmp(body_of(r), "404 Not Found\n\nno <such> thing\n") == 0, "%s: %s", how,
                  body_of(r));
    ck_assert_str_eq(type_of(r), "text/plain; charset=utf-8");
    ck_assert_ptr_null(csgi_test_response_header(r, "X-Injected"));
    ck_assert_msg(csgi_test_response_log_contains(r, "error renderer failed for 404"), "%s", how);
    csgi_test_response_free(r);
    csgi_app_free(app);
}
END_TEST

START_TEST(filter_new_refuses)
{
    destroyed = 0;
    csgi_app *app = (csgi_app *)&app;
    ck_assert_int_eq(
        csgi_error_format_new(&app, errors_app(), NULL, (void *)"computeFault", count_destroy),
        CSGI_EINVAL);
    ck_assert_ptr_null(app);
    ck_assert_int_eq(destroyed, 1); /* taken, also when the call fails */
    ck_assert_int_eq(csgi_error_format_new(&app, NULL, csgi_error_render_json,
                                           (void *)"computeFault", count_destroy),
                     CSGI_EINVAL);
    ck_assert_int_eq(destroyed, 2);
    ck_assert_int_eq(csgi_error_format_new(NULL, errors_app(), csgi_error_render_json, NULL, NULL),
                     CSGI_EINVAL);
}
END_TEST

/* A middleware of the caller's fixes the format per request: by the
   string key, or csgi_error_format_set(); NULL goes back to Accept; a
   pointer of someone else's under the key is not taken for a renderer. */
static csgi_body *setter_call(void *state, csgi_environ *environ,
                              csgi_start_response *start_response)
{
    const char *how = csgi_environ_get(environ, "HTTP_X_HOW");
    int rc = 0;
    if (strcmp(how, "string html") == 0)
        rc = csgi_environ_set(environ, "csgi.error_format", "html");
    else if (strcmp(how, "string unknown") == 0)
        rc = csgi_environ_set(environ, "csgi.error_format", "yaml");
    else if (strcmp(how, "set json") == 0)
        rc = csgi_error_format_set(environ, csgi_error_render_json, NULL);
    else if (strcmp(how, "set custom") == 0)
        rc = csgi_error_format_set(environ, openstack_render, (void *)"x");
    else if (strcmp(how, "set then unset") == 0) {
        rc = csgi_error_format_set(environ, openstack_render, (void *)"x");
        if (rc == 0)
            rc = csgi_error_format_set(environ, NULL, NULL);
        if (rc == 0)
            rc = csgi_error_format_set(environ, NULL, NULL); /* nothing to remove */
    } else if (strcmp(how, "foreign pointer") == 0) {
        static char foreign[64] = "not a renderer";
        rc = csgi_environ_set_pointer(environ, "csgi.error_format", foreign, NULL);
    }
    if (rc == 0 && strcmp(how, "set json") == 0)
        rc = strcmp(csgi_environ_get(environ, "csgi.error_format"), "json") == 0 ? 0 : -1;
    return rc ? NULL : csgi_app_call(state, environ, start_response);
}

static void destroy_app(void *state)
{
    csgi_app_free(state);
}

static const csgi_app_type setter_type = {"setter", setter_call, destroy_app};

START_TEST(format_set_per_request)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &setter_type, errors_app()), 0);
    static const struct {
        const char *how, *type;
    } cases[] = {
        {"string html", "text/html; charset=utf-8"},
        {"string unknown", "text/plain; charset=utf-8"}, /* ignored: Accept decides */
        {"set json", "application/json"},
        {"set custom", "application/json; charset=UTF-8"},
        {"set then unset", "text/plain; charset=utf-8"},
        {"foreign pointer", "text/plain; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        csgi_test_response *r = run_get(app, "/404", "text/plain", "X-How", cases[i].how);
        ck_assert_int_eq(csgi_test_response_code(r), 404);
        ck_assert_msg(strcmp(type_of(r), cases[i].type) == 0, "%s: %s", cases[i].how, type_of(r));
        csgi_test_response_free(r);
    }
    /* the conditional pages too; an unknown name leaves them text */
    csgi_test_response *r = NULL;
    static const struct {
        const char *how, *type;
    } conditional[] = {
        {"string html", "text/html; charset=utf-8"},
        {"string unknown", "text/plain; charset=utf-8"},
        {"set custom", "application/json; charset=UTF-8"},
        {"foreign pointer", "text/plain; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof(conditional) / sizeof(conditional[0]); i++) {
        csgi_test_request *request = NULL;
        ck_assert_int_eq(csgi_test_request_new(&request, "GET", "/file"), 0);
        ck_assert_int_eq(csgi_test_request_add_header(request, "X-How", conditional[i].how), 0);
        ck_assert_int_eq(csgi_test_request_add_header(request, "If-Match", "\"other\""), 0);
        ck_assert_int_eq(csgi_test_request_run(&r, request, app), 0);
        csgi_test_request_free(request);
        ck_assert_int_eq(csgi_test_response_code(r), 412);
        ck_assert_msg(strcmp(type_of(r), conditional[i].type) == 0, "412 %s: %s",
                      conditional[i].how, type_of(r));
        csgi_test_response_free(r);
    }
    ck_assert_int_eq(csgi_error_format_set(NULL, csgi_error_render_json, NULL), CSGI_EINVAL);
    csgi_app_free(app);
}
END_TEST

/* ---- INI ------------------------------------------------------------------------------------ */

static int errors_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                          const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)local_conf;
    (void)error;
    *out = errors_app();
    return 0;
}

static csgi_loader *new_loader(void)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:Test#errors", CSGI_FACTORY_APP, errors_factory), 0);
    return loader;
}

static const char filter_ini[] = "[pipeline:main]\n"
                                 "pipeline = errors app\n"
                                 "\n"
                                 "[filter:errors]\n"
                                 "use = egg:csgi#error_format\n"
                                 "format = json\n"
                                 "\n"
                                 "[app:app]\n"
                                 "use = egg:Test#errors\n"
                                 "\n"
                                 "[pipeline:html]\n"
                                 "pipeline = html_errors app\n"
                                 "\n"
                                 "[filter:html_errors]\n"
                                 "use = egg:csgi#error_format\n"
                                 "format = HTML\n"
                                 "\n"
                                 "[pipeline:bad]\n"
                                 "pipeline = bad_errors app\n"
                                 "\n"
                                 "[filter:bad_errors]\n"
                                 "use = egg:csgi#error_format\n"
                                 "format = xml\n"
                                 "\n"
                                 "[pipeline:missing]\n"
                                 "pipeline = missing_errors app\n"
                                 "\n"
                                 "[filter:missing_errors]\n"
                                 "use = egg:csgi#error_format\n"
                                 "\n"
                                 "[pipeline:typo]\n"
                                 "pipeline = typo_errors app\n"
                                 "\n"
                                 "[filter:typo_errors]\n"
                                 "use = egg:csgi#error_format\n"
                                 "format = json\n"
                                 "fromat = json\n";

START_TEST(ini_error_format_filter)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("filter.ini", filter_ini);
    csgi_app *app = test_load(loader, path);
    csgi_test_response *r = run_get(app, "/404", "text/html", NULL, NULL);
    ck_assert_str_eq(type_of(r), "application/json");
    ck_assert_str_eq(body_of(r), JSON_404);
    csgi_test_response_free(r);
    csgi_app_free(app);

    char uri[4200];
    snprintf(uri, sizeof(uri), "%s#html", path);
    app = test_load(loader, uri);
    r = run_get(app, "/404", "application/json", NULL, NULL);
    ck_assert_str_eq(type_of(r), "text/html; charset=utf-8");
    csgi_test_response_free(r);
    csgi_app_free(app);

    static const struct {
        const char *name, *text;
    } bad[] = {
        {"bad", "filter.ini:23: [filter:bad_errors] format: 'xml' is not an error format "
                "(text, json or html)"},
        {"missing", "[filter:missing_errors] format: missing (text, json or html)"},
        {"typo", "filter.ini:37: [filter:typo_errors] fromat: unknown key for "
                 "egg:csgi#error_format (known: format)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char message[2048];
        snprintf(uri, sizeof(uri), "%s#%s", path, bad[i].name);
        ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_EINVAL);
        ck_assert_msg(strstr(message, bad[i].text) != NULL, "%s", message);
    }
    csgi_loader_free(loader);
}
END_TEST

static const char server_ini[] = "[app:main]\n"
                                 "use = egg:Test#errors\n"
                                 "\n"
                                 "[server:main]\n"
                                 "use = egg:csgi#http\n"
                                 "error_format = json\n"
                                 "\n"
                                 "[server:html]\n"
                                 "use = egg:csgi#http\n"
                                 "error_format = html\n"
                                 "\n"
                                 "[server:bad]\n"
                                 "use = egg:csgi#http\n"
                                 "error_format = xml\n"
                                 "\n"
                                 "[server:empty]\n"
                                 "use = egg:csgi#http\n"
                                 "error_format =\n";

START_TEST(ini_server_error_format_checked)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("servers.ini", server_ini);
    char uri[4200], message[2048];
    csgi_load_error error;
    ck_assert_int_eq(csgi_loader_check_server(loader, path, &error), 0);
    snprintf(uri, sizeof(uri), "%s#html", path);
    ck_assert_int_eq(csgi_loader_check_server(loader, uri, &error), 0);
    static const struct {
        const char *name, *text;
    } bad[] = {
        {"bad", "servers.ini:14: [server:bad] error_format: 'xml' is not an error format "
                "(text, json or html)"},
        {"empty", "servers.ini:18: [server:empty] error_format: '' is not an error format"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(uri, sizeof(uri), "%s#%s", path, bad[i].name);
        ck_assert_int_eq(csgi_loader_check_server(loader, uri, &error), CSGI_EINVAL);
        csgi_load_error_format(&error, message, sizeof(message));
        ck_assert_msg(strstr(message, bad[i].text) != NULL, "%s", message);
        /* serving checks the same before it would listen */
        csgi_app *app = test_load(loader, path);
        ck_assert_int_eq(csgi_loader_serve(loader, uri, app, &error), CSGI_EINVAL);
        csgi_load_error_format(&error, message, sizeof(message));
        ck_assert_msg(strstr(message, bad[i].text) != NULL, "%s", message);
    }
    csgi_loader_free(loader);
}
END_TEST

/* Serving a deploy file with error_format = json: a client on the Unix
   socket sends a malformed request, then SIGTERM stops the server. */
START_TEST(ini_server_error_format_serves_json)
{
    csgi_loader *loader = new_loader();
    const char *path = test_write_file("serve.ini", server_ini);
    csgi_app *app = test_load(loader, path);
    char response[4096];
    csgi_load_error error;
    ck_assert_int_eq(test_serve_one_request(loader, path, app, test_tmp_path("errors.sock"),
                                            REQUEST_400, response, sizeof(response), &error),
                     0);
    csgi_loader_free(loader);
    ck_assert_ptr_nonnull(strstr(response, "HTTP/1.1 400 Bad Request\r\n"));
    ck_assert_ptr_nonnull(strstr(response, "\r\nContent-Type: application/json\r\n"));
    ck_assert_ptr_nonnull(strstr(
        response, "\r\n\r\n{\"message\":\"Bad Request\",\"code\":400,\"title\":\"Bad Request\"}"));
}
END_TEST

static Suite *errors_suite(void)
{
    Suite *suite = suite_create("errors");

    TCase *renderers = tcase_create("renderers");
    tcase_add_test(renderers, text_renderer_is_the_text_page);
    tcase_add_test(renderers, json_renderer_gives_janssons_bytes);
    tcase_add_test(renderers, html_renderer_page);
    tcase_add_test(renderers, renderer_names);
    tcase_add_test(renderers, render_checks_what_it_gets);
    suite_add_tcase(suite, renderers);

    TCase *server = tcase_create("server");
    tcase_set_timeout(server, 30);
    tcase_add_test(server, server_text_pages_unchanged);
    tcase_add_test(server, server_json_pages);
    tcase_add_test(server, server_custom_renderer);
    tcase_add_loop_test(server, server_broken_renderer_falls_back_to_text, 0,
                        (int)BROKEN_WAY_COUNT);
    tcase_add_test(server, server_page_size_limit);
    tcase_add_test(server, server_options_versions);
    suite_add_tcase(suite, server);

    TCase *app = tcase_create("application");
    tcase_add_test(app, filter_fixes_json_whatever_accept_says);
    tcase_add_test(app, filter_with_html_and_text);
    tcase_add_test(app, inner_filter_wins);
    tcase_add_test(app, filter_with_custom_renderer);
    tcase_add_loop_test(app, filter_with_broken_renderer_sends_text, 0, (int)BROKEN_WAY_COUNT);
    tcase_add_test(app, filter_new_refuses);
    tcase_add_test(app, format_set_per_request);
    suite_add_tcase(suite, app);

    TCase *ini = tcase_create("ini");
    tcase_set_timeout(ini, 30);
    tcase_add_test(ini, ini_error_format_filter);
    tcase_add_test(ini, ini_server_error_format_checked);
    tcase_add_test(ini, ini_server_error_format_serves_json);
    suite_add_tcase(suite, ini);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(errors_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
