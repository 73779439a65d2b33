/*
 * Tests of the request object and its parsers (include/csgi/request.h,
 * src/helpers/).
 *
 * Every environ is built from a real request head (scanner, head parser,
 * csgi_environ__new()), with an input provider that hands the body out in
 * pieces of a chosen size and answers CSGI_EAGAIN until the test releases
 * the next piece, as the engine's body arrives over a slow connection.
 */
#include "common/arena.h"
#include "engine_harness.h"
#include "gateway/environ_private.h"
#include "helpers/helpers.h"
#include "http/parser.h"

#include <csgi/app.h>
#include <csgi/json.h>
#include <csgi/server.h>
#include <csgi/request.h>

#include "test_alloc.h"
#include "test_sockaddr.h"

#include <check.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define LIT(s)       s, sizeof(s) - 1
#define COUNT(array) (sizeof(array) / sizeof((array)[0]))
#define MAX_FIELDS   32

/* ---- The fixture ----------------------------------------------------------- */

typedef struct fixture {
    char *head_text;
    csgi_http__header headers[MAX_FIELDS];
    csgi_http__head head;
    struct sockaddr_storage peer, local;
    csgi_input__provider provider;
    csgi_environ__source source;
    csgi_arena arena;
    csgi_environ *environ;
    csgi_request *request;

    /* the body: pieces of piece_size bytes; read answers CSGI_EAGAIN at
       each piece boundary until released says the piece arrived */
    const char *body;
    size_t body_len;
    size_t offset;
    size_t piece_size; /* 0: the whole body at once */
    size_t released;   /* pieces that arrived */
    unsigned eagains;  /* CSGI_EAGAIN answers given */
} fixture;

static fixture fx;

static long body_read(void *context, void *buf, size_t len)
{
    fixture *f = context;
    if (f->offset == f->body_len)
        return 0;
    size_t end = f->body_len;
    if (f->piece_size) {
        size_t piece = f->offset / f->piece_size;
        if (piece >= f->released) {
            f->eagains++;
            return CSGI_EAGAIN;
        }
        end = (piece + 1) * f->piece_size;
        if (end > f->body_len)
            end = f->body_len;
    }
    size_t n = end - f->offset < len ? end - f->offset : len;
    memcpy(buf, f->body + f->offset, n);
    f->offset += n;
    return (long)n;
}

static size_t body_buffered(void *context)
{
    (void)context;
    return 0;
}

static void ignore_log(void *context, int level, const char *line)
{
    (void)context;
    (void)level;
    (void)line;
}

/* An environ for the request head (ending with an empty line) and body,
   delivered in pieces of piece_size bytes (0: at once). */
static csgi_environ *start_body(const char *head, const char *body, size_t body_len,
                                size_t piece_size)
{
    static const csgi_http__limits limits = CSGI_HTTP__LIMITS_DEFAULT;
    size_t len = strlen(head);
    csgi_http__error herror = {0, NULL};
    csgi_http__scanner scanner;

    memset(&fx, 0, sizeof(fx));
    fx.head_text = malloc(len);
    ck_assert_ptr_nonnull(fx.head_text);
    memcpy(fx.head_text, head, len);
    csgi_http__scanner_init(&scanner);
    ck_assert_int_eq(csgi_http__scan(&scanner, fx.head_text, len, &limits, &herror),
                     CSGI_HTTP__SCAN_DONE);
    ck_assert_int_eq(csgi_http__parse_head(fx.head_text + scanner.skipped,
                                           scanner.head_length - scanner.skipped, fx.headers,
                                           MAX_FIELDS, &fx.head, &herror),
                     0);
    test_set_inet(&fx.peer, "192.0.2.7", 40000);
    test_set_inet(&fx.local, "10.0.0.1", 8080);
    fx.provider.read = body_read;
    fx.provider.buffered = body_buffered;
    fx.source.head = &fx.head;
    fx.source.peer = (const struct sockaddr *)&fx.peer;
    fx.source.local = (const struct sockaddr *)&fx.local;
    fx.source.url_scheme = "http";
    fx.source.input = &fx.provider;
    fx.source.input_context = &fx;
    fx.source.log = ignore_log;
    fx.body = body;
    fx.body_len = body_len;
    fx.piece_size = piece_size;
    csgi_arena__init(&fx.arena, NULL);
    fx.environ = csgi_environ__new(&fx.arena, &fx.source);
    ck_assert_ptr_nonnull(fx.environ);
    ck_assert_int_eq(csgi_request_from_environ(&fx.request, fx.environ), 0);
    return fx.environ;
}

static csgi_environ *start(const char *head)
{
    return start_body(head, "", 0, 0);
}

static void finish(void)
{
    csgi_arena__clear(&fx.arena);
    free(fx.head_text);
    fx.head_text = NULL;
}

static void set_limits(const csgi_form_limits *limits)
{
    ck_assert_int_eq(csgi_request_set_limits(fx.request, limits), 0);
}

/* csgi_request_form(), releasing a piece of the body after each
   CSGI_EAGAIN as the server would after csgi_input_on_ready(). */
static int form(const csgi_params **out, csgi_request_error *error)
{
    int rc;
    while ((rc = csgi_request_form(fx.request, out, error)) == CSGI_EAGAIN)
        fx.released++;
    return rc;
}

static void assert_value(const csgi_params *params, const char *name, const char *value)
{
    size_t len = 0;
    const char *got = csgi_params_get(params, name, &len);
    ck_assert_msg(got != NULL, "no value for %s", name);
    ck_assert_str_eq(got, value);
    ck_assert_uint_eq(len, strlen(value));
}

/* A multipart POST head for a body of len bytes. */
static const char *multipart_head(char *buf, size_t size, const char *content_type, size_t len)
{
    snprintf(buf, size,
             "POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Type: %s\r\n"
             "Content-Length: %zu\r\n\r\n",
             content_type, len);
    return buf;
}

static int multipart(const char *content_type, const char *body, size_t len, size_t piece_size,
                     const csgi_form_limits *limits, const csgi_params **out,
                     csgi_request_error *error)
{
    char head[512];
    start_body(multipart_head(head, sizeof(head), content_type, len), body, len, piece_size);
    if (limits)
        set_limits(limits);
    return form(out, error);
}

/* ---- The request object ----------------------------------------------------- */

START_TEST(test_from_environ)
{
    csgi_environ *environ = start("GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n");
    csgi_request *again = NULL;
    ck_assert_int_eq(csgi_request_from_environ(&again, environ), 0);
    ck_assert_ptr_eq(again, fx.request); /* kept in the environ */
    ck_assert_ptr_eq(csgi_environ_get_pointer(environ, "csgi.request"), fx.request);
    ck_assert_ptr_eq(csgi_request_environ(fx.request), environ);
    ck_assert_int_eq(csgi_request_from_environ(NULL, environ), CSGI_EINVAL);
    ck_assert_int_eq(csgi_request_from_environ(&again, NULL), CSGI_EINVAL);
    ck_assert_ptr_null(again);
    csgi_form_limits bad = CSGI_FORM_LIMITS_INIT;
    bad.version = 99;
    ck_assert_int_eq(csgi_request_set_limits(fx.request, &bad), CSGI_EINVAL);
    ck_assert_int_eq(csgi_request_set_limits(fx.request, NULL), 0);
    finish();
}
END_TEST

START_TEST(test_request_line)
{
    csgi_environ *environ = start("DELETE /items/7?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    ck_assert_str_eq(csgi_request_method(fx.request), "DELETE");
    ck_assert_str_eq(csgi_request_scheme(fx.request), "http");
    ck_assert_str_eq(csgi_request_remote_addr(fx.request), "192.0.2.7");
    size_t len;
    ck_assert_str_eq(csgi_request_path_info(fx.request, &len), "/items/7");
    ck_assert_uint_eq(len, 8);
    ck_assert_str_eq(csgi_request_script_name(fx.request, &len), "");
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(csgi_request_query_string(fx.request), "x=1");
    /* defaults when keys are gone */
    ck_assert_int_eq(csgi_environ_remove(environ, "REQUEST_METHOD"), 0);
    ck_assert_int_eq(csgi_environ_remove(environ, "csgi.url_scheme"), 0);
    ck_assert_int_eq(csgi_environ_remove(environ, "REMOTE_ADDR"), 0);
    ck_assert_int_eq(csgi_environ_remove(environ, "QUERY_STRING"), 0);
    ck_assert_str_eq(csgi_request_method(fx.request), "GET");
    ck_assert_str_eq(csgi_request_scheme(fx.request), "http");
    ck_assert_ptr_null(csgi_request_remote_addr(fx.request));
    ck_assert_str_eq(csgi_request_query_string(fx.request), "");
    ck_assert_ptr_null(csgi_request_method(NULL));
    finish();
}
END_TEST

/* ---- URLs -------------------------------------------------------------------- */

typedef struct url_case {
    const char *scheme;
    const char *host; /* Host header, or NULL */
    const char *server_name;
    const char *server_port;
    const char *expect_host;
    const char *expect_host_url;
} url_case;

static const url_case url_cases[] = {
    {"http", "example.com", NULL, NULL, "example.com", "http://example.com"},
    {"http", "example.com:80", NULL, NULL, "example.com:80", "http://example.com"},
    {"http", "example.com:8080", NULL, NULL, "example.com:8080", "http://example.com:8080"},
    {"https", "example.com:443", NULL, NULL, "example.com:443", "https://example.com"},
    {"https", "example.com:80", NULL, NULL, "example.com:80", "https://example.com:80"},
    {"https", "example.com", NULL, NULL, "example.com", "https://example.com"},
    {"http", "[::1]:8080", NULL, NULL, "[::1]:8080", "http://[::1]:8080"},
    {"http", "[::1]", NULL, NULL, "[::1]", "http://[::1]"},
    {"http", NULL, "svc.local", "80", "svc.local", "http://svc.local"},
    {"http", NULL, "svc.local", "8000", "svc.local:8000", "http://svc.local:8000"},
    {"https", NULL, "svc.local", "443", "svc.local", "https://svc.local"},
    {"https", NULL, "svc.local", "8443", "svc.local:8443", "https://svc.local:8443"},
};

START_TEST(test_url_hosts)
{
    const url_case *c = &url_cases[_i];
    csgi_environ *environ = start("GET /p HTTP/1.1\r\nHost: placeholder\r\n\r\n");
    ck_assert_int_eq(csgi_environ_set(environ, "csgi.url_scheme", c->scheme), 0);
    if (c->host)
        ck_assert_int_eq(csgi_environ_set(environ, "HTTP_HOST", c->host), 0);
    else {
        ck_assert_int_eq(csgi_environ_remove(environ, "HTTP_HOST"), 0);
        ck_assert_int_eq(csgi_environ_set(environ, "SERVER_NAME", c->server_name), 0);
        ck_assert_int_eq(csgi_environ_set(environ, "SERVER_PORT", c->server_port), 0);
    }
    ck_assert_str_eq(csgi_request_host(fx.request), c->expect_host);
    ck_assert_str_eq(csgi_request_host_url(fx.request), c->expect_host_url);
    finish();
}
END_TEST

START_TEST(test_url_builders)
{
    csgi_environ *environ =
        start("GET /caf%C3%A9/a%20b/x%3Fy?q=1&r=%20 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
    ck_assert_int_eq(csgi_request_set_script_name(fx.request, LIT("/my app")), 0);
    ck_assert_str_eq(csgi_request_application_url(fx.request), "http://example.com:8080/my%20app");
    ck_assert_str_eq(csgi_request_path_url(fx.request),
                     "http://example.com:8080/my%20app/caf%C3%A9/a%20b/x%3Fy");
    ck_assert_str_eq(csgi_request_url(fx.request),
                     "http://example.com:8080/my%20app/caf%C3%A9/a%20b/x%3Fy?q=1&r=%20");
    /* the safe characters stay, NUL and '%' and '#' are encoded */
    ck_assert_int_eq(csgi_request_set_path_info(fx.request, LIT("/-._~!$&'()*+,;=:@%#\0z")), 0);
    ck_assert_str_eq(csgi_request_path_url(fx.request),
                     "http://example.com:8080/my%20app/-._~!$&'()*+,;=:@%25%23%00z");
    /* an empty query adds no '?' */
    ck_assert_int_eq(csgi_request_set_query_string(fx.request, ""), 0);
    ck_assert_str_eq(csgi_request_url(fx.request),
                     "http://example.com:8080/my%20app/-._~!$&'()*+,;=:@%25%23%00z");
    /* a change made behind the request's back is seen too */
    ck_assert_int_eq(csgi_environ_set(environ, "HTTP_HOST", "other.example"), 0);
    ck_assert_int_eq(csgi_environ_set(environ, "QUERY_STRING", "v=2"), 0);
    ck_assert_str_eq(csgi_request_url(fx.request),
                     "http://other.example/my%20app/-._~!$&'()*+,;=:@%25%23%00z?v=2");
    ck_assert_ptr_eq(csgi_request_url(fx.request), csgi_request_url(fx.request)); /* cached */
    ck_assert_int_eq(csgi_request_set_path_info(NULL, "", 0), CSGI_EINVAL);
    ck_assert_int_eq(csgi_request_set_query_string(fx.request, NULL), CSGI_EINVAL);
    ck_assert_ptr_null(csgi_request_url(NULL));
    finish();
}
END_TEST

/* ---- path_info_pop ---------------------------------------------------------- */

static void expect_pop(int rc, const char *segment, const char *script, const char *path)
{
    const char *got = (const char *)&got;
    size_t len = 99;
    ck_assert_int_eq(csgi_request_path_info_pop(fx.request, &got, &len), rc);
    if (segment) {
        ck_assert_str_eq(got, segment);
        ck_assert_uint_eq(len, strlen(segment));
    } else
        ck_assert_ptr_null(got);
    ck_assert_str_eq(csgi_request_script_name(fx.request, NULL), script);
    ck_assert_str_eq(csgi_request_path_info(fx.request, NULL), path);
}

START_TEST(test_path_info_pop)
{
    start("GET /a/b//c/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
    ck_assert_int_eq(csgi_request_set_path_info(fx.request, LIT("/a/b//c/")), 0);
    ck_assert_int_eq(csgi_request_set_script_name(fx.request, LIT("/app")), 0);
    size_t len;
    ck_assert_str_eq(csgi_request_path_info_peek(fx.request, &len), "a");
    ck_assert_uint_eq(len, 1);
    const char *before = csgi_request_path_url(fx.request);
    ck_assert_str_eq(before, "http://example.com/app/a/b//c/");
    expect_pop(1, "a", "/app/a", "/b//c/");
    expect_pop(1, "b", "/app/a/b", "//c/");
    ck_assert_str_eq(csgi_request_path_info_peek(fx.request, NULL), "c");
    expect_pop(1, "c", "/app/a/b//c", "/");
    ck_assert_str_eq(csgi_request_path_info_peek(fx.request, NULL), "");
    expect_pop(1, "", "/app/a/b//c/", "");
    ck_assert_ptr_null(csgi_request_path_info_peek(fx.request, NULL));
    expect_pop(0, NULL, "/app/a/b//c/", "");
    /* the URL pieces follow */
    ck_assert_str_eq(csgi_request_application_url(fx.request), "http://example.com/app/a/b//c/");
    ck_assert_str_eq(csgi_request_path_url(fx.request), "http://example.com/app/a/b//c/");

    /* no leading slash; a segment holding a NUL */
    ck_assert_int_eq(csgi_request_set_script_name(fx.request, LIT("")), 0);
    ck_assert_int_eq(csgi_request_set_path_info(fx.request, LIT("x\0y/z")), 0);
    const char *segment;
    ck_assert_int_eq(csgi_request_path_info_pop(fx.request, &segment, &len), 1);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(segment, "x\0y", 4), 0);
    ck_assert_str_eq(csgi_request_path_info(fx.request, NULL), "/z");
    ck_assert_int_eq(csgi_request_path_info_pop(fx.request, NULL, NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_request_path_info_pop(NULL, &segment, NULL), CSGI_EINVAL);
    finish();
}
END_TEST

/* ---- Headers ----------------------------------------------------------------- */

START_TEST(test_headers)
{
    start("POST /h HTTP/1.1\r\nHost: example.com\r\nX-Auth-Token: secret\r\n"
          "Content-Type: Text/HTML ; Charset=\"UTF-8\"\r\nContent-Length: 0\r\n"
          "Accept: a\r\nAccept: b\r\n\r\n");
    size_t len;
    ck_assert_str_eq(csgi_request_header(fx.request, "X-Auth-Token", &len), "secret");
    ck_assert_uint_eq(len, 6);
    ck_assert_str_eq(csgi_request_header(fx.request, "x-auth-token", NULL), "secret");
    ck_assert_str_eq(csgi_request_header(fx.request, "X-AUTH-TOKEN", NULL), "secret");
    ck_assert_str_eq(csgi_request_header(fx.request, "content-type", NULL),
                     "Text/HTML ; Charset=\"UTF-8\"");
    ck_assert_str_eq(csgi_request_header(fx.request, "Content-Length", NULL), "0");
    ck_assert_str_eq(csgi_request_header(fx.request, "Accept", NULL), "a, b");
    ck_assert_str_eq(csgi_request_header(fx.request, "Host", NULL), "example.com");
    ck_assert_ptr_null(csgi_request_header(fx.request, "X-Missing", NULL));
    ck_assert_ptr_null(csgi_request_header(fx.request, "X_Auth_Token", NULL));
    ck_assert_ptr_null(csgi_request_header(fx.request, "X Auth", NULL));
    ck_assert_ptr_null(csgi_request_header(fx.request, "", NULL));
    ck_assert_ptr_null(csgi_request_header(fx.request, NULL, NULL));
    char long_name[202];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    ck_assert_ptr_null(csgi_request_header(fx.request, long_name, NULL));

    ck_assert_str_eq(csgi_request_content_type(fx.request), "text/html");
    ck_assert_str_eq(csgi_request_charset(fx.request), "UTF-8");
    ck_assert_int_eq(csgi_request_content_length(fx.request), 0);
    finish();
}
END_TEST

START_TEST(test_content_headers)
{
    csgi_environ *environ = start("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    ck_assert_str_eq(csgi_request_content_type(fx.request), "");
    ck_assert_ptr_null(csgi_request_charset(fx.request));
    ck_assert_int_eq(csgi_request_content_length(fx.request), -1);
    static const struct {
        const char *value;
        int64_t length;
    } lengths[] = {{"12", 12},
                   {"9223372036854775807", INT64_MAX},
                   {"9223372036854775808", -1},
                   {"12a", -1},
                   {"-1", -1},
                   {"", -1}};
    for (size_t i = 0; i < COUNT(lengths); i++) {
        ck_assert_int_eq(csgi_environ_set(environ, "CONTENT_LENGTH", lengths[i].value), 0);
        ck_assert_int_eq(csgi_request_content_length(fx.request), lengths[i].length);
    }
    ck_assert_int_eq(csgi_environ_set(environ, "CONTENT_TYPE", "application/json"), 0);
    ck_assert_str_eq(csgi_request_content_type(fx.request), "application/json");
    ck_assert_ptr_null(csgi_request_charset(fx.request));
    ck_assert_int_eq(
        csgi_environ_set(environ, "CONTENT_TYPE", "text/plain;format=flowed;charset=latin1 "), 0);
    ck_assert_str_eq(csgi_request_content_type(fx.request), "text/plain");
    ck_assert_str_eq(csgi_request_charset(fx.request), "latin1");
    ck_assert_int_eq(csgi_environ_set(environ, "CONTENT_TYPE", "text/plain; charset"), 0);
    ck_assert_ptr_null(csgi_request_charset(fx.request));
    finish();
}
END_TEST

/* ---- Query ------------------------------------------------------------------- */

START_TEST(test_query_basic)
{
    start("GET /?a=1&b=two+words&c=%41%42%2b&a=2&empty=&bare HTTP/1.1\r\nHost: x\r\n\r\n");
    const csgi_params *query;
    ck_assert_int_eq(csgi_request_query(fx.request, &query, NULL), 0);
    ck_assert_uint_eq(csgi_params_count(query), 6);
    assert_value(query, "a", "1");
    assert_value(query, "b", "two words");
    assert_value(query, "c", "AB+");
    assert_value(query, "empty", "");
    assert_value(query, "bare", "");
    ck_assert_uint_eq(csgi_params_count_name(query, "a"), 2);
    ck_assert_uint_eq(csgi_params_count_name(query, "missing"), 0);
    ck_assert_ptr_null(csgi_params_get(query, "missing", NULL));
    size_t cursor = 0;
    const csgi_param *param = csgi_params_find(query, "a", &cursor);
    ck_assert_str_eq(param->value, "1");
    param = csgi_params_find(query, "a", &cursor);
    ck_assert_str_eq(param->value, "2");
    ck_assert_ptr_null(csgi_params_find(query, "a", &cursor));
    ck_assert_ptr_null(csgi_params_find(query, "a", &cursor));
    ck_assert_str_eq(csgi_params_at(query, 1)->name, "b");
    ck_assert_str_eq(csgi_params_at(query, 5)->name, "bare");
    ck_assert_ptr_null(csgi_params_at(query, 6));
    ck_assert_ptr_null(csgi_params_at(NULL, 0));
    ck_assert_uint_eq(csgi_params_count(NULL), 0);
    ck_assert_ptr_null(csgi_params_find(query, "a", NULL));
    /* parsed once */
    const csgi_params *again;
    ck_assert_int_eq(csgi_request_query(fx.request, &again, NULL), 0);
    ck_assert_ptr_eq(again, query);
    finish();
}
END_TEST

START_TEST(test_query_malformed)
{
    csgi_environ *environ = start("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    const csgi_params *query;
    /* ';' is data; empty pairs go; malformed escapes stay; "%00" is a NUL */
    ck_assert_int_eq(
        csgi_environ_set(environ, "QUERY_STRING", "a=1;b=2&&=v&%zz=%&z=%2&&n=x%00y&%=%%41&"), 0);
    ck_assert_int_eq(csgi_request_query(fx.request, &query, NULL), 0);
    ck_assert_uint_eq(csgi_params_count(query), 6);
    assert_value(query, "a", "1;b=2");
    assert_value(query, "", "v");
    assert_value(query, "%zz", "%");
    assert_value(query, "z", "%2");
    assert_value(query, "%", "%A");
    size_t len;
    const char *value = csgi_params_get(query, "n", &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(value, "x\0y", 4), 0);
    finish();
}
END_TEST

START_TEST(test_query_strict)
{
    start("GET /?a=%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n");
    csgi_form_limits limits = CSGI_FORM_LIMITS_INIT;
    limits.strict = 1;
    set_limits(&limits);
    const csgi_params *query;
    csgi_request_error error;
    ck_assert_int_eq(csgi_request_query(fx.request, &query, &error), 0);
    assert_value(query, "a", "\xC3\xA9");
    static const char *const bad[] = {"a=%zz", "a=%", "a=%4", "a=%FF", "%C0%80=1", "a=%ED%A0%80"};
    for (size_t i = 0; i < COUNT(bad); i++) {
        ck_assert_int_eq(csgi_request_set_query_string(fx.request, bad[i]), 0);
        query = (const csgi_params *)&query;
        ck_assert_int_eq(csgi_request_query(fx.request, &query, &error), CSGI_EPARSE);
        ck_assert_ptr_null(query);
        ck_assert_ptr_nonnull(strstr(error.text, "malformed"));
    }
    /* the tolerant default keeps them */
    set_limits(NULL);
    ck_assert_int_eq(csgi_request_query(fx.request, &query, &error), 0);
    finish();
}
END_TEST

START_TEST(test_query_limits)
{
    csgi_environ *environ = start("GET /?a&b&c HTTP/1.1\r\nHost: x\r\n\r\n");
    csgi_form_limits limits = CSGI_FORM_LIMITS_INIT;
    limits.max_fields = 2;
    limits.max_query = 8;
    set_limits(&limits);
    const csgi_params *query;
    csgi_request_error error;
    ck_assert_int_eq(csgi_request_query(fx.request, &query, &error), CSGI_ETOOBIG);
    ck_assert_str_eq(error.text, "query string has more than 2 fields");
    ck_assert_int_eq(csgi_environ_set(environ, "QUERY_STRING", "a&&&b&"),
                     0); /* empty pairs are free */
    ck_assert_int_eq(csgi_request_query(fx.request, &query, &error), 0);
    ck_assert_uint_eq(csgi_params_count(query), 2);
    ck_assert_int_eq(csgi_environ_set(environ, "QUERY_STRING", "abcdefghi"), 0);
    ck_assert_int_eq(csgi_request_query(fx.request, &query, &error), CSGI_ETOOBIG);
    ck_assert_str_eq(error.text, "query string longer than 8 bytes");
    ck_assert_int_eq(csgi_request_query(fx.request, NULL, NULL), CSGI_EINVAL);
    finish();
}
END_TEST

START_TEST(test_query_follows_changes)
{
    csgi_environ *environ = start("GET /?a=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    const csgi_params *first, *second, *third;
    ck_assert_int_eq(csgi_request_query(fx.request, &first, NULL), 0);
    assert_value(first, "a", "1");
    ck_assert_int_eq(csgi_request_set_query_string(fx.request, "a=2"), 0);
    ck_assert_int_eq(csgi_request_query(fx.request, &second, NULL), 0);
    ck_assert_ptr_ne(second, first);
    assert_value(second, "a", "2");
    /* the same value set again through the environ is still a new string */
    ck_assert_int_eq(csgi_environ_set(environ, "QUERY_STRING", "b=3"), 0);
    ck_assert_int_eq(csgi_request_query(fx.request, &third, NULL), 0);
    assert_value(third, "b", "3");
    ck_assert_ptr_null(csgi_params_get(third, "a", NULL));
    finish();
}
END_TEST

START_TEST(test_params_parse_public)
{
    csgi_environ *environ = start("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    csgi_params *params;
    ck_assert_int_eq(csgi_params_parse_urlencoded(&params, environ, LIT("x=1&y=2"), NULL), 0);
    assert_value(params, "y", "2");
    ck_assert_int_eq(csgi_params_parse_urlencoded(&params, environ, NULL, 0, NULL), 0);
    ck_assert_uint_eq(csgi_params_count(params), 0);
    ck_assert_int_eq(csgi_params_parse_urlencoded(&params, environ, NULL, 1, NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_params_parse_urlencoded(&params, NULL, "", 0, NULL), CSGI_EINVAL);
    csgi_form_limits limits = CSGI_FORM_LIMITS_INIT;
    limits.version = 0;
    ck_assert_int_eq(csgi_params_parse_urlencoded(&params, environ, "", 0, &limits), CSGI_EINVAL);
    ck_assert_int_eq(csgi_params_parse_cookies(&params, environ, "", 0, &limits), CSGI_EINVAL);
    ck_assert_int_eq(csgi_params_parse_cookies(&params, environ, NULL, 2, NULL), CSGI_EINVAL);
    finish();
}
END_TEST

/* ---- UTF-8 --------------------------------------------------------------------- */

START_TEST(test_utf8)
{
    static const struct {
        const char *text;
        size_t len;
        int valid;
    } cases[] = {
        {LIT("plain ascii"), 1},
        {LIT("nul\0inside"), 1},
        {LIT("caf\xC3\xA9"), 1},
        {LIT("\xE2\x82\xAC"), 1},
        {LIT("\xF0\x9F\x98\x80"), 1},
        {LIT("\xF4\x8F\xBF\xBF"), 1}, /* U+10FFFF */
        {LIT("\xED\x9F\xBF"), 1},     /* U+D7FF */
        {LIT("\xC0\x80"), 0},         /* overlong NUL */
        {LIT("\xC1\xBF"), 0},
        {LIT("\xE0\x80\x80"), 0},
        {LIT("\xF0\x80\x80\x80"), 0},
        {LIT("\xED\xA0\x80"), 0}, /* surrogate */
        {LIT("\xF4\x90\x80\x80"), 0},
        {LIT("\xF5\x80\x80\x80"), 0},
        {LIT("\x80"), 0},
        {LIT("\xC3"), 0}, /* truncated */
        {LIT("\xE2\x82"), 0},
        {LIT("\xE2\x28\xA1"), 0},
        {LIT("\xFF"), 0},
    };
    for (size_t i = 0; i < COUNT(cases); i++)
        ck_assert_msg(csgi_request_text_is_utf8(cases[i].text, cases[i].len) == cases[i].valid,
                      "case %zu", i);
    ck_assert_int_eq(csgi_request_text_is_utf8(NULL, 0), 1);
    ck_assert_int_eq(csgi_request_text_is_utf8(NULL, 1), 0);
}
END_TEST

/* ---- Cookies ------------------------------------------------------------------ */

START_TEST(test_cookies)
{
    start("GET / HTTP/1.1\r\nHost: x\r\n"
          "Cookie: a=1; b=\"quoted value\"; c=; d=x=y;  e = spaced ; f=%20\r\n"
          "Cookie: a=again\r\n\r\n");
    const csgi_params *cookies;
    ck_assert_int_eq(csgi_request_cookies(fx.request, &cookies), 0);
    ck_assert_uint_eq(csgi_params_count(cookies), 7);
    assert_value(cookies, "a", "1");
    assert_value(cookies, "b", "quoted value");
    assert_value(cookies, "c", "");
    assert_value(cookies, "d", "x=y");
    assert_value(cookies, "e", "spaced");
    assert_value(cookies, "f", "%20"); /* not decoded */
    ck_assert_uint_eq(csgi_params_count_name(cookies, "a"), 2);
    ck_assert_str_eq(csgi_request_cookie(fx.request, "a", NULL), "1");
    ck_assert_ptr_null(csgi_request_cookie(fx.request, "zz", NULL));
    const csgi_params *again;
    ck_assert_int_eq(csgi_request_cookies(fx.request, &again), 0);
    ck_assert_ptr_eq(again, cookies);
    finish();
}
END_TEST

START_TEST(test_cookies_malformed)
{
    csgi_environ *environ = start("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    const csgi_params *cookies;
    ck_assert_int_eq(csgi_request_cookies(fx.request, &cookies), 0); /* no header */
    ck_assert_uint_eq(csgi_params_count(cookies), 0);
    ck_assert_ptr_null(csgi_request_cookie(fx.request, "a", NULL));

    static const char header[] = "novalue; =empty; bad name=1; ok=2;; ; \"q\"=3; x,y=4; "
                                 "ctl=a\x01"
                                 "b; q=\"; qq=\"\"; last=\"open";
    ck_assert_int_eq(csgi_environ_set(environ, "HTTP_COOKIE", header), 0);
    ck_assert_int_eq(csgi_request_cookies(fx.request, &cookies), 0);
    ck_assert_uint_eq(csgi_params_count(cookies), 4);
    assert_value(cookies, "ok", "2");
    assert_value(cookies, "q", "\""); /* one quote is not a quoted value */
    assert_value(cookies, "qq", "");
    assert_value(cookies, "last", "\"open");

    csgi_form_limits limits = CSGI_FORM_LIMITS_INIT;
    limits.max_fields = 2;
    set_limits(&limits);
    ck_assert_int_eq(csgi_environ_set(environ, "HTTP_COOKIE", "a=1; junk; b=2"), 0);
    ck_assert_int_eq(csgi_request_cookies(fx.request, &cookies), 0);
    ck_assert_int_eq(csgi_environ_set(environ, "HTTP_COOKIE", "a=1; b=2; c=3"), 0);
    ck_assert_int_eq(csgi_request_cookies(fx.request, &cookies), CSGI_ETOOBIG);
    ck_assert_ptr_null(csgi_request_cookie(fx.request, "a", NULL));
    ck_assert_int_eq(csgi_request_cookies(fx.request, NULL), CSGI_EINVAL);
    finish();
}
END_TEST

/* ---- URL-encoded forms --------------------------------------------------------- */

#define FORM_HEAD(type, length) \
    "POST /f HTTP/1.1\r\nHost: x\r\nContent-Type: " type "\r\nContent-Length: " #length "\r\n\r\n"

START_TEST(test_form_urlencoded)
{
    static const char body[] = "name=Ada+Lovelace&lang=C&lang=%E2%82%AC&note=";
    /* in pieces, each after a CSGI_EAGAIN */
    start_body(FORM_HEAD("application/x-www-form-urlencoded; charset=UTF-8", 45), LIT(body), 4);
    const csgi_params *params;
    ck_assert_int_eq(form(&params, NULL), 0);
    ck_assert_uint_ge(fx.eagains, 10);
    ck_assert_uint_eq(csgi_params_count(params), 4);
    assert_value(params, "name", "Ada Lovelace");
    assert_value(params, "note", "");
    ck_assert_uint_eq(csgi_params_count_name(params, "lang"), 2);
    ck_assert_uint_eq(csgi_request_file_count(fx.request), 0);
    /* the body is still there for whoever wants it */
    const char *raw;
    size_t len;
    ck_assert_int_eq(csgi_request_body(fx.request, 10, &raw, &len), 0);
    ck_assert_str_eq(raw, body);
    ck_assert_uint_eq(len, sizeof(body) - 1);
    const csgi_params *again;
    ck_assert_int_eq(csgi_request_form(fx.request, &again, NULL), 0);
    ck_assert_ptr_eq(again, params);
    finish();
}
END_TEST

START_TEST(test_form_after_body)
{
    start_body(FORM_HEAD("Application/X-WWW-Form-URLEncoded", 7), LIT("a=1&b=2"), 0);
    const char *raw;
    ck_assert_int_eq(csgi_request_body(fx.request, 100, &raw, NULL), 0);
    const csgi_params *params;
    ck_assert_int_eq(form(&params, NULL), 0);
    assert_value(params, "b", "2");
    finish();
}
END_TEST

START_TEST(test_form_other_type)
{
    start_body(FORM_HEAD("application/json", 7), LIT("{\"a\":1}"), 0);
    const csgi_params *params;
    ck_assert_int_eq(form(&params, NULL), 0);
    ck_assert_ptr_nonnull(params);
    ck_assert_uint_eq(csgi_params_count(params), 0);
    ck_assert_uint_eq(fx.offset, 0); /* the body was not read */
    const char *raw;
    ck_assert_int_eq(csgi_request_body(fx.request, 100, &raw, NULL), 0);
    ck_assert_str_eq(raw, "{\"a\":1}");
    finish();

    start("GET /?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"); /* no body, no type */
    ck_assert_int_eq(form(&params, NULL), 0);
    ck_assert_uint_eq(csgi_params_count(params), 0);
    ck_assert_int_eq(csgi_request_form(fx.request, NULL, NULL), CSGI_EINVAL);
    finish();
}
END_TEST

START_TEST(test_form_urlencoded_limits)
{
    csgi_form_limits limits = CSGI_FORM_LIMITS_INIT;
    limits.max_body = 4;
    start_body(FORM_HEAD("application/x-www-form-urlencoded", 7), LIT("a=1&b=2"), 0);
    set_limits(&limits);
    const csgi_params *params;
    csgi_request_error error;
    ck_assert_int_eq(form(&params, &error), CSGI_ETOOBIG);
    ck_assert_str_eq(error.text, "body longer than 4 bytes");
    ck_assert_uint_eq(fx.offset, 0); /* refused before reading */
    memset(&error, 0, sizeof(error));
    ck_assert_int_eq(form(&params, &error), CSGI_ETOOBIG); /* final */
    ck_assert_str_eq(error.text, "body longer than 4 bytes");
    finish();

    /* a chunked body has no length: refused while reading */
    start_body("POST /f HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
               "\r\nTransfer-Encoding: chunked\r\n\r\n",
               LIT("a=1&b=2"), 2);
    set_limits(&limits);
    ck_assert_int_eq(form(&params, &error), CSGI_ETOOBIG);
    finish();

    limits.max_body = 0;
    limits.max_fields = 1;
    start_body(FORM_HEAD("application/x-www-form-urlencoded", 7), LIT("a=1&b=2"), 0);
    set_limits(&limits);
    ck_assert_int_eq(form(&params, &error), CSGI_ETOOBIG);
    ck_assert_str_eq(error.text, "form has too many fields");
    finish();

    limits.max_fields = 0;
    limits.strict = 1;
    start_body(FORM_HEAD("application/x-www-form-urlencoded", 7), LIT("a=%FF&b"), 0);
    set_limits(&limits);
    ck_assert_int_eq(form(&params, &error), CSGI_EPARSE);
    finish();
}
END_TEST

/* ---- Multipart ------------------------------------------------------------------ */

static const char upload[] = "This is the preamble.\r\n"
                             "--XyZ\r\n"
                             "Content-Disposition: form-data; name=\"title\"\r\n"
                             "\r\n"
                             "Holiday\r\n"
                             "--XyZ\r\n"
                             "content-disposition: FORM-DATA; name=\"photo\"; "
                             "filename=\"beach.txt\"\r\n"
                             "Content-Type: text/x-notes\r\n"
                             "\r\n"
                             "sand\r\nsea\r\n"
                             "\r\n"
                             "--XyZ\r\n"
                             "Content-Disposition: form-data; name=\"title\"\r\n"
                             "\r\n"
                             "\r\n"
                             "--XyZ--\r\n"
                             "This is the epilogue.\r\n";

static void check_upload(void)
{
    const csgi_params *params = NULL;
    csgi_request_error error;
    ck_assert_int_eq(form(&params, &error), 0);
    ck_assert_uint_eq(csgi_params_count(params), 2);
    assert_value(params, "title", "Holiday");
    ck_assert_str_eq(csgi_params_at(params, 1)->value, "");
    ck_assert_uint_eq(csgi_request_file_count(fx.request), 1);
    const csgi_form_file *file = csgi_request_file(fx.request, "photo");
    ck_assert_ptr_nonnull(file);
    ck_assert_ptr_eq(file, csgi_request_file_at(fx.request, 0));
    ck_assert_ptr_null(csgi_request_file_at(fx.request, 1));
    ck_assert_ptr_null(csgi_request_file(fx.request, "title"));
    ck_assert_str_eq(file->name, "photo");
    ck_assert_str_eq(file->filename, "beach.txt");
    ck_assert_uint_eq(file->filename_len, 9);
    ck_assert_str_eq(file->content_type, "text/x-notes");
    ck_assert_uint_eq(file->size, 11);
    ck_assert_int_eq(file->fd, -1);
    ck_assert_str_eq(file->data, "sand\r\nsea\r\n");
    char buf[16];
    ck_assert_int_eq(csgi_form_file_read(file, 6, buf, sizeof(buf)), 5);
    ck_assert_int_eq(memcmp(buf, "sea\r\n", 5), 0);
    ck_assert_int_eq(csgi_form_file_read(file, 11, buf, sizeof(buf)), 0);
    ck_assert_int_eq(csgi_form_file_read(NULL, 0, buf, sizeof(buf)), CSGI_EINVAL);
    /* the body went to the form */
    const char *raw;
    ck_assert_int_eq(csgi_request_body(fx.request, 1000, &raw, NULL), CSGI_ESTATE);
}

START_TEST(test_multipart_basic)
{
    const csgi_params *params;
    multipart("multipart/form-data; boundary=XyZ", LIT(upload), 0, NULL, &params, NULL);
    check_upload();
    finish();
    /* a quoted boundary, and the body already read as bytes */
    char head[512];
    start_body(multipart_head(head, sizeof(head), "Multipart/Form-Data; boundary=\"XyZ\"; x=y",
                              sizeof(upload) - 1),
               LIT(upload), 0);
    const char *raw;
    ck_assert_int_eq(csgi_request_body(fx.request, 10000, &raw, NULL), 0);
    ck_assert_int_eq(form(&params, NULL), 0);
    assert_value(params, "title", "Holiday");
    ck_assert_uint_eq(csgi_request_file(fx.request, "photo")->size, 11);
    finish();
}
END_TEST

/* Every piece size, down to one byte at a time, each after a CSGI_EAGAIN. */
START_TEST(test_multipart_pieces)
{
    size_t piece = (size_t)_i + 1;
    char head[512];
    start_body(
        multipart_head(head, sizeof(head), "multipart/form-data; boundary=XyZ", sizeof(upload) - 1),
        LIT(upload), piece);
    check_upload();
    ck_assert_uint_ge(fx.eagains, (sizeof(upload) - 1) / piece - 1);
    finish();
}
END_TEST

START_TEST(test_multipart_boundary_lookalikes)
{
    /* data holding pieces of the delimiter that are not the delimiter */
    static const char body[] = "--b0undary\r\n"
                               "Content-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n"
                               "\r\n"
                               "a\r\n--b0undar\r\r\n--b0undarY--b0undary\n\r\n-\r\r\n--\r\n"
                               "\r\n--b0undary\r\n"
                               "Content-Disposition: form-data; name=\"g\"\r\n"
                               "\r\n"
                               "\r\r\n\r\n--b0undar"
                               "\r\n--b0undary--";
    static const char expect_f[] = "a\r\n--b0undar\r\r\n--b0undarY--b0undary\n\r\n-\r\r\n--\r\n";
    static const char expect_g[] = "\r\r\n\r\n--b0undar";
    for (size_t piece = 0; piece <= 5; piece++) {
        const csgi_params *params;
        ck_assert_int_eq(multipart("multipart/form-data; boundary=b0undary", LIT(body), piece, NULL,
                                   &params, NULL),
                         0);
        const csgi_form_file *file = csgi_request_file(fx.request, "f");
        ck_assert_ptr_nonnull(file);
        ck_assert_uint_eq(file->size, sizeof(expect_f) - 1);
        ck_assert_int_eq(memcmp(file->data, expect_f, sizeof(expect_f) - 1), 0);
        assert_value(params, "g", expect_g);
        finish();
    }
}
END_TEST

START_TEST(test_multipart_edges)
{
    const csgi_params *params;
    /* transport padding after the boundary, an empty file, no preamble */
    static const char padded[] = "--b  \t\r\n"
                                 "Content-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n"
                                 "\r\n"
                                 "\r\n--b--";
    ck_assert_int_eq(
        multipart("multipart/form-data; boundary=b", LIT(padded), 0, NULL, &params, NULL), 0);
    const csgi_form_file *file = csgi_request_file(fx.request, "empty");
    ck_assert_ptr_nonnull(file);
    ck_assert_str_eq(file->filename, "");
    ck_assert_str_eq(file->content_type, "text/plain");
    ck_assert_uint_eq(file->size, 0);
    ck_assert_str_eq(file->data, "");
    finish();

    /* a body with no part at all */
    ck_assert_int_eq(
        multipart("multipart/form-data; boundary=b", LIT("--b--\r\n"), 0, NULL, &params, NULL), 0);
    ck_assert_uint_eq(csgi_params_count(params), 0);
    finish();

    /* filename*, escaped quotes, a Windows path, a name with a ';' */
    static const char names[] =
        "--b\r\n"
        "Content-Disposition: form-data; name=\"doc\"; filename=\"fallback.txt\"; "
        "filename*=UTF-8''%E2%82%AC%20rates.txt\r\n\r\nx\r\n"
        "--b\r\n"
        "Content-Disposition: form-data; name=\"q\"; filename=\"say \\\"hi\\\".txt\"\r\n\r\ny\r\n"
        "--b\r\n"
        "Content-Disposition: form-data; name=\"w\"; filename=\"C:\\dir\\f.txt\"\r\n\r\nz\r\n"
        "--b\r\n"
        "Content-Disposition: form-data; name=\"a;b\"; filename*=latin1''x; filename=plain\r\n"
        "\r\nw\r\n"
        "--b--";
    ck_assert_int_eq(
        multipart("multipart/form-data; boundary=b", LIT(names), 0, NULL, &params, NULL), 0);
    ck_assert_uint_eq(csgi_request_file_count(fx.request), 4);
    ck_assert_str_eq(csgi_request_file(fx.request, "doc")->filename, "\xE2\x82\xAC rates.txt");
    ck_assert_str_eq(csgi_request_file(fx.request, "q")->filename, "say \"hi\".txt");
    ck_assert_str_eq(csgi_request_file(fx.request, "w")->filename, "C:\\dir\\f.txt");
    ck_assert_str_eq(csgi_request_file(fx.request, "a;b")->filename, "plain");
    finish();
}
END_TEST

typedef struct bad_case {
    const char *content_type;
    const char *body;
    int rc;
    const char *text;
} bad_case;

static const bad_case bad_cases[] = {
    {"multipart/form-data", "--b--", CSGI_EPARSE, "multipart Content-Type without a boundary"},
    {"multipart/form-data; boundary=", "----", CSGI_EPARSE, "invalid multipart boundary"},
    {"multipart/form-data; boundary=\"a<b\"", "--a<b--", CSGI_EPARSE, "invalid multipart boundary"},
    {"multipart/form-data; "
     "boundary=b12345678901234567890123456789012345678901234567890123456789012345678"
     "90",
     "--b--", CSGI_EPARSE, "invalid multipart boundary"},
    {"multipart/form-data; boundary=b", "", CSGI_EPARSE, "no multipart boundary in the body"},
    {"multipart/form-data; boundary=b", "no boundary here", CSGI_EPARSE,
     "no multipart boundary in the body"},
    {"multipart/form-data; boundary=b",
     "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue", CSGI_EPARSE,
     "body ends before the closing boundary"},
    {"multipart/form-data; boundary=b",
     "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue\r\n--b", CSGI_EPARSE,
     "body ends before the closing boundary"},
    {"multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n",
     CSGI_EPARSE, "body ends before the closing boundary"},
    {"multipart/form-data; boundary=b", "--bX\r\n", CSGI_EPARSE,
     "boundary not followed by CRLF or \"--\""},
    {"multipart/form-data; boundary=b", "--b-x", CSGI_EPARSE,
     "boundary not followed by CRLF or \"--\""},
    {"multipart/form-data; boundary=b", "--b \r\r", CSGI_EPARSE,
     "boundary not followed by CRLF or \"--\""},
    {"multipart/form-data; boundary=b", "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--",
     CSGI_EPARSE, "part without Content-Disposition"},
    {"multipart/form-data; boundary=b", "--b\r\n\r\nx\r\n--b--", CSGI_EPARSE,
     "part without Content-Disposition"},
    {"multipart/form-data; boundary=b",
     "--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--b--", CSGI_EPARSE,
     "part's Content-Disposition is not form-data"},
    {"multipart/form-data; boundary=b",
     "--b\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\nx\r\n--b--", CSGI_EPARSE,
     "part without a name"},
    {"multipart/form-data; boundary=b",
     "--b\r\nContent-Disposition form-data; name=a\r\n\r\nx\r\n--b--", CSGI_EPARSE,
     "part header without a name and ':'"},
    {"multipart/form-data; boundary=b",
     "--b\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\nx\r\n--b--", CSGI_EPARSE,
     "folded part header"},
    {"multipart/form-data; boundary=b",
     "--b\r\nContent-Disposition: form-data; name=a\n\nx\r\n--b--", CSGI_EPARSE,
     "part header line ends without CR"},
    {"multipart/form-data; boundary=b",
     "--b\r\nContent-Disposition: form-data; name=a\r\rx\r\n--b--", CSGI_EPARSE,
     "CR without LF in a part header"},
};

START_TEST(test_multipart_malformed)
{
    const bad_case *c = &bad_cases[_i];
    const csgi_params *params = (const csgi_params *)&params;
    csgi_request_error error;
    ck_assert_int_eq(multipart(c->content_type, c->body, strlen(c->body), 3, NULL, &params, &error),
                     c->rc);
    ck_assert_ptr_null(params);
    ck_assert_str_eq(error.text, c->text);
    ck_assert_uint_le(error.position, strlen(c->body));
    /* final: the same answer again, without reading */
    size_t offset = fx.offset;
    memset(&error, 0, sizeof(error));
    ck_assert_int_eq(csgi_request_form(fx.request, &params, &error), c->rc);
    ck_assert_str_eq(error.text, c->text);
    ck_assert_uint_eq(fx.offset, offset);
    finish();
}
END_TEST

static const char two_parts[] = "--b\r\n"
                                "Content-Disposition: form-data; name=\"field\"\r\n"
                                "\r\n"
                                "12345\r\n"
                                "--b\r\n"
                                "Content-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n"
                                "\r\n"
                                "0123456789\r\n"
                                "--b--\r\n";

START_TEST(test_multipart_limits)
{
    static const char *const type = "multipart/form-data; boundary=b";
    const csgi_params *params;
    csgi_request_error error;
    csgi_form_limits limits = CSGI_FORM_LIMITS_INIT;

    ck_assert_int_eq(multipart(type, LIT(two_parts), 0, &limits, &params, &error), 0);
    finish();

    limits.max_parts = 1;
    ck_assert_int_eq(multipart(type, LIT(two_parts), 0, &limits, &params, &error), CSGI_ETOOBIG);
    ck_assert_str_eq(error.text, "more than 1 parts");
    finish();

    limits = (csgi_form_limits)CSGI_FORM_LIMITS_INIT;
    limits.max_field_size = 4;
    ck_assert_int_eq(multipart(type, LIT(two_parts), 0, &limits, &params, &error), CSGI_ETOOBIG);
    ck_assert_str_eq(error.text, "field \"field\" longer than 4 bytes");
    finish();
    limits.max_field_size = 5; /* exactly */
    ck_assert_int_eq(multipart(type, LIT(two_parts), 0, &limits, &params, &error), 0);
    assert_value(params, "field", "12345");
    finish();

    limits = (csgi_form_limits)CSGI_FORM_LIMITS_INIT;
    limits.max_file_size = 9;
    ck_assert_int_eq(multipart(type, LIT(two_parts), 1, &limits, &params, &error), CSGI_ETOOBIG);
    ck_assert_str_eq(error.text, "file \"file\" longer than 9 bytes");
    finish();

    limits = (csgi_form_limits)CSGI_FORM_LIMITS_INIT;
    limits.max_part_header = 40;
    ck_assert_int_eq(multipart(type, LIT(two_parts), 0, &limits, &params, &error), CSGI_ETOOBIG);
    ck_assert_str_eq(error.text, "part header longer than 40 bytes");
    finish();

    /* the whole body: by its Content-Length before reading, or while reading */
    limits = (csgi_form_limits)CSGI_FORM_LIMITS_INIT;
    limits.max_body = 50;
    ck_assert_int_eq(multipart(type, LIT(two_parts), 0, &limits, &params, &error), CSGI_ETOOBIG);
    ck_assert_str_eq(error.text, "body longer than 50 bytes");
    ck_assert_uint_eq(fx.offset, 0);
    finish();
    start_body("POST /f HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
               "Transfer-Encoding: chunked\r\n\r\n",
               LIT(two_parts), 7);
    set_limits(&limits);
    ck_assert_int_eq(form(&params, &error), CSGI_ETOOBIG);
    ck_assert_str_eq(error.text, "body longer than 50 bytes");
    ck_assert_uint_lt(fx.offset, sizeof(two_parts) - 1);
    finish();

    /* strict: text must be UTF-8 */
    static const char latin1[] = "--b\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\n"
                                 "caf\xE9\r\n--b--";
    limits = (csgi_form_limits)CSGI_FORM_LIMITS_INIT;
    ck_assert_int_eq(multipart(type, LIT(latin1), 0, &limits, &params, &error), 0);
    finish();
    limits.strict = 1;
    ck_assert_int_eq(multipart(type, LIT(latin1), 0, &limits, &params, &error), CSGI_EPARSE);
    ck_assert_str_eq(error.text, "field \"t\" is not UTF-8");
    finish();
}
END_TEST

/* A multipart body of a 100,000-byte file "big" (every byte value, CRs
   and all: its bytes start at SPOOL_PREFIX) and a 16-byte file "small". */
enum { SPOOL_SIZE = 100000 };
static const char spool_prefix[] =
    "--b\r\n"
    "Content-Disposition: form-data; name=\"big\"; filename=\"big.bin\""
    "\r\nContent-Type: application/octet-stream\r\n\r\n";
#define SPOOL_PREFIX (sizeof(spool_prefix) - 1)

static char *spool_body(size_t *len)
{
    static const char suffix[] = "\r\n--b\r\n"
                                 "Content-Disposition: form-data; name=\"small\"; filename=\"s\""
                                 "\r\n\r\n0123456789abcdef\r\n--b--\r\n";
    *len = SPOOL_PREFIX + SPOOL_SIZE + sizeof(suffix) - 1;
    char *body = malloc(*len);
    ck_assert_ptr_nonnull(body);
    memcpy(body, spool_prefix, SPOOL_PREFIX);
    for (size_t i = 0; i < SPOOL_SIZE; i++)
        body[SPOOL_PREFIX + i] = (char)(i * 7 % 251);
    memcpy(body + SPOOL_PREFIX + SPOOL_SIZE, suffix, sizeof(suffix) - 1);
    return body;
}

/* path's bytes are want's (len of them). */
static void assert_file_holds(const char *path, const char *want, size_t len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char *got = malloc(len + 1);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(fread(got, 1, len + 1, f), len);
    ck_assert_int_eq(memcmp(got, want, len), 0);
    free(got);
    fclose(f);
}

/* csgi_form_file_save(): a spooled file is linked into place (the same
   inode: no byte copied) when the destination shares the spool's
   filesystem, copied when it does not; a file in memory is written; an
   existing name is refused with EEXIST. */
START_TEST(test_form_file_save)
{
    char spool[] = "/tmp/csgi-save-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(spool));
    size_t len;
    char *body = spool_body(&len);
    csgi_form_limits limits = CSGI_FORM_LIMITS_INIT;
    limits.spool_threshold = 16;
    limits.spool_dir = spool;
    const csgi_params *params;
    ck_assert_int_eq(
        multipart("multipart/form-data; boundary=b", body, len, 4093, &limits, &params, NULL), 0);
    const csgi_form_file *big = csgi_request_file(fx.request, "big");
    const csgi_form_file *small = csgi_request_file(fx.request, "small");
    ck_assert_ptr_nonnull(big);
    ck_assert_int_ge(big->fd, 0);

    char path[128], copy[128], tiny[128];
    snprintf(path, sizeof(path), "%s/kept.bin", spool);
    ck_assert_int_eq(csgi_form_file_save(big, AT_FDCWD, path), 0);
    assert_file_holds(path, body + SPOOL_PREFIX, SPOOL_SIZE);
    struct stat kept, spooled;
    ck_assert_int_eq(stat(path, &kept), 0);
    ck_assert_int_eq(fstat(big->fd, &spooled), 0);
    ck_assert_uint_eq(kept.st_mode & 0777, 0600);
    /* where the filesystem has O_TMPFILE (ext4, tmpfs...), linked, not copied */
    int probe = open(spool, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (probe >= 0) {
        close(probe);
        ck_assert_msg(kept.st_ino == spooled.st_ino, "copied, not linked");
    }

    errno = 0;
    ck_assert_int_eq(csgi_form_file_save(big, AT_FDCWD, path), CSGI_ESYSTEM);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_int_eq(csgi_form_file_save(small, AT_FDCWD, path), CSGI_ESYSTEM);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_int_eq(csgi_form_file_save(NULL, AT_FDCWD, path), CSGI_EINVAL);

    /* In memory: written, through a directory descriptor. */
    int dir = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(dir, 0);
    ck_assert_int_eq(csgi_form_file_save(small, dir, "small.txt"), 0);
    snprintf(tiny, sizeof(tiny), "%s/small.txt", spool);
    assert_file_holds(tiny, "0123456789abcdef", 16);
    close(dir);

    /* Another filesystem (/dev/shm is a tmpfs): copied, whole. */
    struct stat shm;
    int other_fs = stat("/dev/shm", &shm) == 0 && shm.st_dev != spooled.st_dev &&
                   access("/dev/shm", W_OK) == 0;
    snprintf(copy, sizeof(copy), "/dev/shm/csgi-save-%ld.bin", (long)getpid());
    if (other_fs) {
        unlink(copy);
        ck_assert_int_eq(csgi_form_file_save(big, AT_FDCWD, copy), 0);
        assert_file_holds(copy, body + SPOOL_PREFIX, SPOOL_SIZE);
        struct stat copied;
        ck_assert_int_eq(stat(copy, &copied), 0);
        ck_assert(copied.st_ino != spooled.st_ino || copied.st_dev != spooled.st_dev);
        unlink(copy);
    }
    finish();
    /* The saved file outlives the request and its temporary file. */
    assert_file_holds(path, body + SPOOL_PREFIX, SPOOL_SIZE);
    unlink(path);
    unlink(tiny);
    ck_assert_int_eq(rmdir(spool), 0); /* nothing else left behind */
    free(body);
}
END_TEST

START_TEST(test_multipart_spool)
{
    enum { SIZE = SPOOL_SIZE };
    size_t len;
    char *body = spool_body(&len);
    csgi_form_limits limits = CSGI_FORM_LIMITS_INIT;
    limits.spool_threshold = 16;
    const csgi_params *params;
    csgi_request_error error;
    ck_assert_int_eq(
        multipart("multipart/form-data; boundary=b", body, len, 4093, &limits, &params, &error), 0);
    const csgi_form_file *big = csgi_request_file(fx.request, "big");
    ck_assert_ptr_nonnull(big);
    ck_assert_uint_eq(big->size, SIZE);
    ck_assert_ptr_null(big->data);
    ck_assert_int_ge(big->fd, 0);
    ck_assert_str_eq(big->content_type, "application/octet-stream");
    /* the file is already unlinked */
    struct stat st;
    ck_assert_int_eq(fstat(big->fd, &st), 0);
    ck_assert_int_eq((int)st.st_nlink, 0);
    ck_assert_int_eq((long long)st.st_size, SIZE);
    char *back = malloc(SIZE);
    ck_assert_ptr_nonnull(back);
    size_t got = 0;
    long n;
    while ((n = csgi_form_file_read(big, got, back + got, 1000)) > 0)
        got += (size_t)n;
    ck_assert_int_eq(n, 0);
    ck_assert_uint_eq(got, SIZE);
    ck_assert_int_eq(memcmp(back, body + SPOOL_PREFIX, SIZE), 0);
    /* exactly the threshold stays in memory */
    const csgi_form_file *small = csgi_request_file(fx.request, "small");
    ck_assert_int_eq(small->fd, -1);
    ck_assert_str_eq(small->data, "0123456789abcdef");
    int fd = big->fd;
    finish();
    /* the request's end closed the descriptor */
    ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
    ck_assert_int_eq(errno, EBADF);

    /* a spool directory that does not exist */
    limits.spool_dir = "/nonexistent/csgi-test";
    ck_assert_int_eq(
        multipart("multipart/form-data; boundary=b", body, len, 0, &limits, &params, &error),
        CSGI_ESYSTEM);
    ck_assert_str_eq(error.text, "cannot create a temporary file in /nonexistent/csgi-test");
    finish();
    free(back);
    free(body);
}
END_TEST

/* ---- Body and JSON ------------------------------------------------------------- */

START_TEST(test_body)
{
    start_body(FORM_HEAD("text/plain", 11), LIT("hello world"), 3);
    const char *body = NULL;
    size_t len;
    int rc, eagains = 0;
    while ((rc = csgi_request_body(fx.request, 11, &body, &len)) == CSGI_EAGAIN) {
        fx.released++;
        eagains++;
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_int_ge(eagains, 3);
    ck_assert_str_eq(body, "hello world");
    ck_assert_uint_eq(len, 11);
    const char *again;
    ck_assert_int_eq(csgi_request_body(fx.request, 1, &again, NULL), 0); /* kept */
    ck_assert_ptr_eq(again, body);
    ck_assert_int_eq(csgi_request_body(fx.request, 1, NULL, NULL), CSGI_EINVAL);
    finish();

    start_body(FORM_HEAD("text/plain", 11), LIT("hello world"), 0);
    ck_assert_int_eq(csgi_request_body(fx.request, 10, &body, &len), CSGI_ETOOBIG);
    finish();
}
END_TEST

START_TEST(test_json)
{
    start_body(FORM_HEAD("application/json", 16), LIT("{\"a\": [1, 2.5]}"), 5);
    json_t *value = NULL;
    int rc;
    while ((rc = csgi_request_json(fx.request, 100, &value, NULL)) == CSGI_EAGAIN)
        fx.released++;
    ck_assert_int_eq(rc, 0);
    ck_assert(json_is_object(value));
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(value, "a"), 0)), 1);
    json_t *again;
    ck_assert_int_eq(csgi_request_json(fx.request, 100, &again, NULL), 0);
    ck_assert_ptr_eq(again, value);
    finish();

    /* any value, whatever the content type */
    start_body(FORM_HEAD("text/plain", 2), LIT("42"), 0);
    ck_assert_int_eq(csgi_request_json(fx.request, 100, &value, NULL), 0);
    ck_assert_int_eq(json_integer_value(value), 42);
    finish();
}
END_TEST

START_TEST(test_json_errors)
{
    static const char bad[] = "{\n  \"a\": tru\n}";
    start_body(FORM_HEAD("application/json", 14), LIT(bad), 0);
    json_t *value = (json_t *)&value;
    csgi_request_error error;
    ck_assert_int_eq(csgi_request_json(fx.request, 100, &value, &error), CSGI_EPARSE);
    ck_assert_ptr_null(value);
    ck_assert_int_eq(error.line, 2);
    ck_assert_int_gt(error.column, 0);
    ck_assert_uint_gt(error.position, 5);
    ck_assert_uint_le(error.position, sizeof(bad) - 1);
    ck_assert_ptr_nonnull(strstr(error.text, "invalid token"));
    finish();

    start_body(FORM_HEAD("application/json", 0), "", 0, 0);
    ck_assert_int_eq(csgi_request_json(fx.request, 100, &value, &error), CSGI_EPARSE);
    ck_assert_int_gt((int)strlen(error.text), 0);
    finish();

    start_body(FORM_HEAD("application/json", 14), LIT("[1, 2, 3, 4.5]"), 0);
    ck_assert_int_eq(csgi_request_json(fx.request, 13, &value, &error), CSGI_ETOOBIG);
    ck_assert_str_eq(error.text, "body longer than 13 bytes");
    finish();

    /* invalid UTF-8 in a string */
    start_body(FORM_HEAD("application/json", 4), LIT("\"\xFF\xFE\""), 0);
    ck_assert_int_eq(csgi_request_json(fx.request, 13, &value, &error), CSGI_EPARSE);
    finish();
}
END_TEST

/* ---- Header parameters (internal) ------------------------------------------------ */

START_TEST(test_header_param)
{
    csgi_arena arena;
    csgi_arena__init(&arena, NULL);
    static const char value[] =
        "form-data; empty=; bare; name = \"a \\\"b\\\" \\\\c\\d\" ; filename=plain ; x=\"open";
    const char *out;
    size_t len;
    ck_assert_int_eq(csgi_helpers__header_param(&arena, LIT(value), "NAME", &out, &len), 1);
    ck_assert_str_eq(out, "a \"b\" \\c\\d");
    ck_assert_uint_eq(len, strlen(out));
    ck_assert_int_eq(csgi_helpers__header_param(&arena, LIT(value), "filename", &out, &len), 1);
    ck_assert_str_eq(out, "plain");
    ck_assert_int_eq(csgi_helpers__header_param(&arena, LIT(value), "empty", &out, &len), 1);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(csgi_helpers__header_param(&arena, LIT(value), "x", &out, &len), 1);
    ck_assert_str_eq(out, "open");
    ck_assert_int_eq(csgi_helpers__header_param(&arena, LIT(value), "bare", &out, &len), 0);
    ck_assert_int_eq(csgi_helpers__header_param(&arena, LIT(value), "form-data", &out, &len), 0);
    /* a quoted ';' in the type does not start parameters */
    ck_assert_int_eq(csgi_helpers__header_param(&arena, LIT("t\";a=1\"; a=2"), "a", &out, &len), 1);
    ck_assert_str_eq(out, "2");
    csgi_arena__clear(&arena);
}
END_TEST

/* ---- Out of memory ----------------------------------------------------------------- */

/* Run scenario with the Nth allocation failing, for N = 0, 1, ... until it
   succeeds: each run returns 0 or CSGI_ENOMEM, never crashes or leaks
   (AddressSanitizer checks), and the run that succeeds checks the
   results. */
typedef int (*scenario_fn)(void);
typedef void (*check_fn)(void);

static void with_failures(const char *head, const char *body, size_t body_len, scenario_fn scenario,
                          check_fn check)
{
    ck_assert_int_eq(test_alloc_install(), 0);
    int succeeded = 0;
    long failures = 0;
    for (long n = 0; n < 2000 && !succeeded; n++) {
        start_body(head, body, body_len, 0);
        csgi_environ_get(fx.environ, "PATH_INFO"); /* the environ itself is built */
        test_alloc_fail_after(n);
        int rc = scenario();
        test_alloc_fail_never();
        if (rc == 0) {
            succeeded = 1;
            check();
        } else {
            ck_assert_msg(rc == CSGI_ENOMEM, "allocation %ld: %s", n, csgi_err_name(rc));
            failures++;
        }
        finish();
    }
    test_alloc_restore();
    ck_assert(succeeded);
    ck_assert_int_gt(failures, 0); /* the scenario did allocate */
}

#define QUERY_TAIL                                                                 \
    "&a=1&a=2&a=3&a=4&a=5&a=6&a=7&a=8&a=9&a=10&a=11&a=12&a=13&a=14&a=15&a=16&a=17" \
    "&a=18&a=19"

static const csgi_params *got_query, *got_cookies, *got_form;
static const char *got_segment;
static json_t *got_json;

static int scenario_query_cookies_url(void)
{
    int rc = csgi_request_query(fx.request, &got_query, NULL);
    if (rc == 0)
        rc = csgi_request_cookies(fx.request, &got_cookies);
    if (rc == 0 && (!csgi_request_url(fx.request) || !csgi_request_host(fx.request) ||
                    !csgi_request_content_type(fx.request)))
        rc = CSGI_ENOMEM;
    if (rc == 0)
        rc = csgi_request_path_info_pop(fx.request, &got_segment, NULL) == 1 ? 0 : CSGI_ENOMEM;
    if (rc == 0 && !csgi_request_path_info_peek(fx.request, NULL))
        rc = CSGI_ENOMEM;
    return rc;
}

static void check_query_cookies_url(void)
{
    assert_value(got_query, "q", "a b");
    ck_assert_uint_eq(csgi_params_count(got_query), 20);
    assert_value(got_cookies, "s", "1");
    ck_assert_str_eq(got_segment, "p");
    ck_assert_str_eq(csgi_request_script_name(fx.request, NULL), "/p");
    ck_assert_str_eq(csgi_request_url(fx.request), "http://x:81/p/q?q=a+b" QUERY_TAIL);
}

START_TEST(test_nomem_query_cookies_url)
{
    with_failures("GET /p/q?q=a+b" QUERY_TAIL " HTTP/1.1\r\nHost: x:81\r\n"
                  "Content-Type: text/plain\r\nCookie: s=1; t=2\r\n\r\n",
                  "", 0, scenario_query_cookies_url, check_query_cookies_url);
}
END_TEST

static int scenario_multipart(void)
{
    csgi_form_limits limits = CSGI_FORM_LIMITS_INIT;
    limits.spool_threshold = 4;
    set_limits(&limits);
    return csgi_request_form(fx.request, &got_form, NULL);
}

static void check_multipart(void)
{
    assert_value(got_form, "field", "12345");
    const csgi_form_file *file = csgi_request_file(fx.request, "file");
    ck_assert_int_ge(file->fd, 0);
    char buf[16];
    ck_assert_int_eq(csgi_form_file_read(file, 0, buf, sizeof(buf)), 10);
    ck_assert_int_eq(memcmp(buf, "0123456789", 10), 0);
}

START_TEST(test_nomem_multipart)
{
    char head[512];
    with_failures(multipart_head(head, sizeof(head), "multipart/form-data; boundary=b",
                                 sizeof(two_parts) - 1),
                  LIT(two_parts), scenario_multipart, check_multipart);
}
END_TEST

/* Bodies large enough to need allocations of their own. */
static char big_form[2048];
static char big_json[2048];

static int scenario_form(void)
{
    return csgi_request_form(fx.request, &got_form, NULL);
}

static void check_form(void)
{
    ck_assert_uint_eq(csgi_params_count(got_form), 200);
    ck_assert_str_eq(csgi_params_at(got_form, 199)->value, "199");
}

static int scenario_json(void)
{
    return csgi_request_json(fx.request, sizeof(big_json), &got_json, NULL);
}

static void check_json(void)
{
    ck_assert_str_eq(json_string_value(json_object_get(got_json, "k")), "v");
}

START_TEST(test_nomem_form_json)
{
    size_t len = 0;
    for (int i = 0; i < 200; i++)
        len += (size_t)snprintf(big_form + len, sizeof(big_form) - len, "%sa=%d", i ? "&" : "", i);
    char head[256];
    snprintf(head, sizeof(head),
             "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
             "Content-Length: %zu\r\n\r\n",
             len);
    with_failures(head, big_form, len, scenario_form, check_form);

    len = (size_t)snprintf(big_json, sizeof(big_json), "{\"k\": \"v\", \"pad\": \"%01000d\"}", 0);
    snprintf(head, sizeof(head),
             "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n",
             len);
    with_failures(head, big_json, len, scenario_json, check_json);
}
END_TEST

/* ---- In the server: a body that arrives late ------------------------------------ */

/* The pattern of docs/request-response.md: the form is read from the
   input's ready callback until it stops answering CSGI_EAGAIN. */
typedef struct upload_state {
    csgi_request *request;
    csgi_start_response *start_response;
    csgi_body *body;
    int eagains;
    int ready;
    int sent;
    char answer[256];
} upload_state;

static void upload_answer(upload_state *u, int rc, const csgi_params *form,
                          const csgi_request_error *error)
{
    const char *status = "200 OK";
    if (rc == 0) {
        const csgi_form_file *photo = csgi_request_file(u->request, "photo");
        snprintf(u->answer, sizeof(u->answer), "title=%s photo=%llu waited=%s",
                 csgi_params_get(form, "title", NULL),
                 photo ? (unsigned long long)photo->size : 0ULL, u->eagains ? "yes" : "no");
    } else {
        status = "400 Bad Request";
        snprintf(u->answer, sizeof(u->answer), "%s: %s", csgi_err_name(rc), error->text);
    }
    csgi_start_response_call(u->start_response, status, NULL, 0, NULL);
    u->ready = 1;
}

static void upload_ready(csgi_input *input, void *userdata)
{
    upload_state *u = userdata;
    const csgi_params *form;
    csgi_request_error error;
    int rc = csgi_request_form(u->request, &form, &error);
    if (rc == CSGI_EAGAIN) {
        u->eagains++;
        csgi_input_on_ready(input, upload_ready, u);
        return;
    }
    upload_answer(u, rc, form, &error);
    csgi_body_resume(u->body);
}

static int upload_next(void *state, csgi_chunk *chunk)
{
    upload_state *u = state;
    if (!u->ready)
        return CSGI_EAGAIN;
    if (u->sent)
        return 0;
    u->sent = 1;
    chunk->data = u->answer;
    chunk->len = strlen(u->answer);
    return 1;
}

static const csgi_body_type upload_body = {"upload", upload_next, NULL};

static csgi_body *upload_call(void *state, csgi_environ *environ,
                              csgi_start_response *start_response)
{
    (void)state;
    upload_state *u = csgi_environ_alloc(environ, sizeof(*u));
    if (!u)
        return NULL;
    memset(u, 0, sizeof(*u));
    u->start_response = start_response;
    if (csgi_request_from_environ(&u->request, environ) != 0)
        return NULL;
    u->body = csgi_body_new(environ, &upload_body, u);
    if (!u->body)
        return NULL;
    const csgi_params *form;
    csgi_request_error error;
    int rc = csgi_request_form(u->request, &form, &error);
    if (rc == CSGI_EAGAIN) {
        u->eagains++;
        csgi_input_on_ready(csgi_environ_input(environ), upload_ready, u);
    } else
        upload_answer(u, rc, form, &error);
    return u->body;
}

static const csgi_app_type upload_type = {"upload", upload_call, NULL};

/* POST body to the upload application, its first split bytes, a pause,
   then the rest. */
static void post_slowly(const char *body, size_t len, size_t split, test_response *response)
{
    csgi_app *app;
    ck_assert_int_eq(csgi_app_new(&app, &upload_type, NULL), 0);
    app_server served;
    app_server_start(&served, app, NULL);

    int fd = client_connect(served.port);
    char head[256];
    ck_assert_int_eq(client_send_str(fd, multipart_head(head, sizeof(head),
                                                        "multipart/form-data; boundary=XyZ", len)),
                     0);
    ck_assert_int_eq(client_send(fd, body, split), 0);
    usleep(200 * 1000);
    ck_assert_int_eq(client_send(fd, body + split, len - split), 0);
    ck_assert_int_eq(client_response(fd, response, 0, 5000), 0);
    close(fd);
    app_server_stop(&served);
}

START_TEST(test_server_late_body)
{
    test_response response;
    post_slowly(upload, sizeof(upload) - 1, 100, &response);
    ck_assert_int_eq(response.status, 200);
    ck_assert_str_eq(response.body, "title=Holiday photo=11 waited=yes");
    response_free(&response);

    /* the error comes through the same path */
    static const char broken[] = "--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--";
    post_slowly(broken, sizeof(broken) - 1, 3, &response);
    ck_assert_int_eq(response.status, 400);
    ck_assert_str_eq(response.body, "CSGI_EPARSE: part without Content-Disposition");
    response_free(&response);
}
END_TEST

/* ---- The suite --------------------------------------------------------------- */

static Suite *request_suite(void)
{
    Suite *suite = suite_create("request");

    TCase *tc = tcase_create("object");
    tcase_add_test(tc, test_from_environ);
    tcase_add_test(tc, test_request_line);
    tcase_add_loop_test(tc, test_url_hosts, 0, COUNT(url_cases));
    tcase_add_test(tc, test_url_builders);
    tcase_add_test(tc, test_path_info_pop);
    tcase_add_test(tc, test_headers);
    tcase_add_test(tc, test_content_headers);
    suite_add_tcase(suite, tc);

    tc = tcase_create("params");
    tcase_add_test(tc, test_query_basic);
    tcase_add_test(tc, test_query_malformed);
    tcase_add_test(tc, test_query_strict);
    tcase_add_test(tc, test_query_limits);
    tcase_add_test(tc, test_query_follows_changes);
    tcase_add_test(tc, test_params_parse_public);
    tcase_add_test(tc, test_utf8);
    tcase_add_test(tc, test_cookies);
    tcase_add_test(tc, test_cookies_malformed);
    tcase_add_test(tc, test_header_param);
    suite_add_tcase(suite, tc);

    tc = tcase_create("form");
    tcase_add_test(tc, test_form_urlencoded);
    tcase_add_test(tc, test_form_after_body);
    tcase_add_test(tc, test_form_other_type);
    tcase_add_test(tc, test_form_urlencoded_limits);
    tcase_add_test(tc, test_multipart_basic);
    tcase_add_loop_test(tc, test_multipart_pieces, 0, 12);
    tcase_add_test(tc, test_multipart_boundary_lookalikes);
    tcase_add_test(tc, test_multipart_edges);
    tcase_add_loop_test(tc, test_multipart_malformed, 0, COUNT(bad_cases));
    tcase_add_test(tc, test_multipart_limits);
    tcase_add_test(tc, test_multipart_spool);
    tcase_add_test(tc, test_form_file_save);
    suite_add_tcase(suite, tc);

    tc = tcase_create("body");
    tcase_add_test(tc, test_body);
    tcase_add_test(tc, test_json);
    tcase_add_test(tc, test_json_errors);
    suite_add_tcase(suite, tc);

    tc = tcase_create("server");
    tcase_add_test(tc, test_server_late_body);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(suite, tc);

    tc = tcase_create("memory");
    tcase_add_test(tc, test_nomem_query_cookies_url);
    tcase_add_test(tc, test_nomem_multipart);
    tcase_add_test(tc, test_nomem_form_json);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(suite, tc);

    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(request_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
