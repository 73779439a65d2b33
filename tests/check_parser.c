/*
 * Tests of the HTTP/1.1 request parser: the head scanner, the head parser,
 * field lines and the chunked decoder (src/http/parser.h).
 *
 * Inputs are copied to heap buffers of their exact size before parsing, so
 * AddressSanitizer catches any read past the end; the scanner is also fed
 * through a fresh buffer per call, as the engine may move its buffer.
 */
#include "http/parser.h"

#include <check.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A string literal and its length, embedded NULs included. */
#define LIT(s) s, sizeof(s) - 1

#define HOST "Host: h\r\n"

static const csgi_http__limits default_limits = CSGI_HTTP__LIMITS_DEFAULT;

#define MAX_FIELDS 64

/* One request: its bytes on the heap and what the scanner and parser made of it. */
typedef struct request {
    char *bytes;
    size_t len;
    csgi_http__scanner scanner;
    csgi_http__head head;
    csgi_http__header headers[MAX_FIELDS];
    csgi_http__error error;
} request;

static char *copy_bytes(const char *s, size_t len)
{
    char *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, s, len);
    return copy;
}

/* Scan and parse in one go. Returns 0, the error status, or -1 if the
   scanner wants more bytes. */
static int request_parse_with(request *r, const char *s, size_t len,
                              const csgi_http__limits *limits)
{
    memset(r, 0, sizeof(*r));
    r->bytes = copy_bytes(s, len);
    r->len = len;
    csgi_http__scanner_init(&r->scanner);
    csgi_http__scan_result result = csgi_http__scan(&r->scanner, r->bytes, len, limits, &r->error);
    if (result == CSGI_HTTP__SCAN_ERROR)
        return r->error.status;
    if (result == CSGI_HTTP__SCAN_MORE)
        return -1;
    ck_assert_uint_le(r->scanner.header_count, MAX_FIELDS);
    const char *head = r->bytes + r->scanner.skipped;
    return csgi_http__parse_head(head, r->scanner.head_length - r->scanner.skipped, r->headers,
                                 r->scanner.header_count, &r->head, &r->error);
}

static int request_parse(request *r, const char *s, size_t len)
{
    return request_parse_with(r, s, len, &default_limits);
}

static void request_free(request *r)
{
    free(r->bytes);
    r->bytes = NULL;
}

/* Whether the counted string equals the C string expected. */
static int span_equals(const char *s, size_t len, const char *expected)
{
    return s && len == strlen(expected) && memcmp(s, expected, len) == 0;
}

#define ck_assert_span(s, len, expected)                                                      \
    ck_assert_msg(span_equals((s), (len), (expected)), "%s is \"%.*s\", expected \"%s\"", #s, \
                  (s) ? (int)(len) : 6, (s) ? (s) : "(null)", (expected))

/* Whether [p, p + n) lies inside the request's bytes: nothing was copied. */
static int inside(const request *r, const char *p, size_t n)
{
    uintptr_t start = (uintptr_t)r->bytes;
    return (uintptr_t)p >= start && (uintptr_t)p + n <= start + r->len;
}

/* ---- Well-formed requests -------------------------------------------------- */

START_TEST(test_simple_get)
{
    request r;
    static const char in[] = "GET /index.html HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n"
                             "X-Empty:\r\nX-Pad: \t a  b \t\r\n"
                             "X-Long: caf\xc3\xa9 0123456789\tabcdefghij \x80\xff~\r\n\r\n";
    ck_assert_int_eq(request_parse(&r, LIT(in)), 0);
    ck_assert_uint_eq(r.scanner.head_length, sizeof(in) - 1);
    ck_assert_uint_eq(r.scanner.skipped, 0);
    ck_assert_uint_eq(r.scanner.header_count, 5);

    csgi_http__head *h = &r.head;
    ck_assert_span(h->method, h->method_len, "GET");
    ck_assert_span(h->target, h->target_len, "/index.html");
    ck_assert_int_eq(h->form, CSGI_HTTP__FORM_ORIGIN);
    ck_assert_span(h->path, h->path_len, "/index.html");
    ck_assert_ptr_null(h->query);
    ck_assert_uint_eq(h->scheme_len, 0);
    ck_assert_span(h->host, h->host_len, "example.com");
    ck_assert_int_eq(h->version_minor, 1);
    ck_assert_int_eq(h->body, CSGI_HTTP__BODY_NONE);
    ck_assert_uint_eq(h->keep_alive, 1);
    ck_assert_uint_eq(h->expect_continue, 0);
    ck_assert_uint_eq(h->underscore, 0);

    ck_assert_ptr_eq(h->headers, r.headers);
    ck_assert_uint_eq(h->header_count, 5);
    ck_assert_span(h->headers[0].name, h->headers[0].name_len, "Host");
    ck_assert_span(h->headers[1].name, h->headers[1].name_len, "Accept");
    ck_assert_span(h->headers[1].value, h->headers[1].value_len, "*/*");
    ck_assert_span(h->headers[2].name, h->headers[2].name_len, "X-Empty");
    ck_assert_uint_eq(h->headers[2].value_len, 0);
    ck_assert_span(h->headers[3].value, h->headers[3].value_len, "a  b");
    ck_assert_span(h->headers[4].value, h->headers[4].value_len,
                   "caf\xc3\xa9 0123456789\tabcdefghij \x80\xff~");

    /* Zero copy: everything points into the request's own bytes. */
    ck_assert_ptr_eq(h->method, r.bytes);
    ck_assert(inside(&r, h->target, h->target_len));
    ck_assert(inside(&r, h->path, h->path_len));
    ck_assert(inside(&r, h->host, h->host_len));
    for (size_t i = 0; i < h->header_count; i++) {
        ck_assert(inside(&r, h->headers[i].name, h->headers[i].name_len));
        ck_assert(inside(&r, h->headers[i].value, h->headers[i].value_len));
    }
    request_free(&r);
}
END_TEST

START_TEST(test_post_content_length)
{
    request r;
    static const char in[] =
        "POST /form HTTP/1.1\r\nHost: h\r\ncontent-length: 11\r\n\r\nhello world";
    ck_assert_int_eq(request_parse(&r, LIT(in)), 0);
    ck_assert_uint_eq(r.scanner.head_length, sizeof(in) - 1 - 11);
    ck_assert_int_eq(r.head.body, CSGI_HTTP__BODY_LENGTH);
    ck_assert_uint_eq(r.head.content_length, 11);
    request_free(&r);

    ck_assert_int_eq(request_parse(&r, LIT("POST / HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n")),
                     0);
    ck_assert_int_eq(r.head.body, CSGI_HTTP__BODY_LENGTH);
    ck_assert_uint_eq(r.head.content_length, 0);
    request_free(&r);

    ck_assert_int_eq(request_parse(&r, LIT("POST / HTTP/1.1\r\n" HOST
                                           "Content-Length:  18446744073709551615 \r\n\r\n")),
                     0);
    ck_assert_uint_eq(r.head.content_length, UINT64_MAX);
    request_free(&r);
}
END_TEST

START_TEST(test_transfer_encoding_chunked)
{
    static const char *const accepted[] = {
        "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: CHUNKED\r\n\r\n",
        "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: , chunked ,\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        request r;
        ck_assert_int_eq(request_parse(&r, accepted[i], strlen(accepted[i])), 0);
        ck_assert_int_eq(r.head.body, CSGI_HTTP__BODY_CHUNKED);
        request_free(&r);
    }
}
END_TEST

/* Targets that are accepted, and how they are split up. */
typedef struct target_case {
    const char *in;
    csgi_http__target_form form;
    const char *scheme; /* NULL: none */
    const char *path;
    const char *query; /* NULL: no '?' */
    const char *host;  /* NULL: none */
} target_case;

static const target_case target_cases[] = {
    {"GET /a/b?x=1&y HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/a/b", "x=1&y", "h"},
    {"GET /a? HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/a", "", "h"},
    {"GET /a HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/a", NULL, "h"},
    {"GET /? HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/", "", "h"},
    {"GET /a?b?c/../../d HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/a",
     "b?c/../../d", "h"},
    {"GET /caf\xc3\xa9/%20x HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ORIGIN, NULL,
     "/caf\xc3\xa9/%20x", NULL, "h"},
    {"GET http://example.com:8080/p/q?r=s HTTP/1.1\r\nHost: other\r\n\r\n",
     CSGI_HTTP__FORM_ABSOLUTE, "http", "/p/q", "r=s", "example.com:8080"},
    {"GET HTTPS://example.com HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ABSOLUTE, "HTTPS", "/",
     NULL, "example.com"},
    {"GET https://example.com?x HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ABSOLUTE, "https", "/",
     "x", "example.com"},
    {"GET http://[::1]:80/ HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ABSOLUTE, "http", "/", NULL,
     "[::1]:80"},
    {"GET http://a.b/x/../y HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ABSOLUTE, "http", "/x/../y",
     NULL, "a.b"},
    {"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", CSGI_HTTP__FORM_AUTHORITY,
     NULL, "", NULL, "example.com:443"},
    {"CONNECT [2001:db8::1]:443 HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_AUTHORITY, NULL, "",
     NULL, "[2001:db8::1]:443"},
    {"OPTIONS * HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ASTERISK, NULL, "", NULL, "h"},
    {"OPTIONS /x HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/x", NULL, "h"},
    /* dot segments that stay inside the root */
    {"GET /a/../b HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/a/../b", NULL, "h"},
    {"GET /./x HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/./x", NULL, "h"},
    {"GET /a/.. HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/a/..", NULL, "h"},
    {"GET /a/%2E%2e/b HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/a/%2E%2e/b", NULL,
     "h"},
    {"GET /a/./../b HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/a/./../b", NULL,
     "h"},
    {"GET /a//b/.. HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/a//b/..", NULL, "h"},
    {"GET /..a/.../x.. HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/..a/.../x..",
     NULL, "h"},
    {"GET /%2e%2e%2e/x HTTP/1.1\r\n" HOST "\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/%2e%2e%2e/x",
     NULL, "h"},
    /* Host values */
    {"GET / HTTP/1.1\r\nHost:\r\n\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/", NULL, ""},
    {"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/", NULL,
     "127.0.0.1:8080"},
    {"GET / HTTP/1.1\r\nHost: [::ffff:1.2.3.4]\r\n\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/", NULL,
     "[::ffff:1.2.3.4]"},
    {"GET / HTTP/1.1\r\nHost: ex%41mple.com:\r\n\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/", NULL,
     "ex%41mple.com:"},
    {"GET / HTTP/1.0\r\n\r\n", CSGI_HTTP__FORM_ORIGIN, NULL, "/", NULL, NULL},
};

START_TEST(test_targets)
{
    const target_case *c = &target_cases[_i];
    request r;
    ck_assert_msg(request_parse(&r, c->in, strlen(c->in)) == 0, "%s: %s", c->in, r.error.reason);
    const csgi_http__head *h = &r.head;
    ck_assert_int_eq(h->form, c->form);
    if (c->scheme)
        ck_assert_span(h->scheme, h->scheme_len, c->scheme);
    else
        ck_assert_uint_eq(h->scheme_len, 0);
    ck_assert_span(h->path, h->path_len, c->path);
    if (c->query)
        ck_assert_span(h->query, h->query_len, c->query);
    else
        ck_assert_ptr_null(h->query);
    if (c->host) {
        ck_assert_span(h->host, h->host_len, c->host);
        ck_assert(inside(&r, h->host, h->host_len));
    } else {
        ck_assert_ptr_null(h->host);
    }
    if (h->query)
        ck_assert(inside(&r, h->query, h->query_len));
    request_free(&r);
}
END_TEST

START_TEST(test_versions)
{
    static const struct {
        const char *version;
        int minor;
    } cases[] = {{"HTTP/1.0", 0}, {"HTTP/1.1", 1}, {"HTTP/1.2", 1}, {"HTTP/1.9", 1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char in[128];
        request r;
        snprintf(in, sizeof(in), "GET / %s\r\n" HOST "\r\n", cases[i].version);
        ck_assert_int_eq(request_parse(&r, in, strlen(in)), 0);
        ck_assert_int_eq(r.head.version_minor, cases[i].minor);
        request_free(&r);
    }
}
END_TEST

/* keep_alive from the version and the Connection fields. */
static const struct {
    const char *in;
    int keep_alive;
} keep_alive_cases[] = {
    {"GET / HTTP/1.1\r\n" HOST "\r\n", 1},
    {"GET / HTTP/1.1\r\n" HOST "Connection: close\r\n\r\n", 0},
    {"GET / HTTP/1.1\r\n" HOST "Connection: Keep-Alive, CLOSE\r\n\r\n", 0},
    {"GET / HTTP/1.1\r\n" HOST "Connection: upgrade\r\nConnection: close\r\n\r\n", 0},
    {"GET / HTTP/1.1\r\n" HOST "Connection: ,close,\r\n\r\n", 0},
    {"GET / HTTP/1.1\r\n" HOST "Connection: keep-alive\r\n\r\n", 1},
    {"GET / HTTP/1.1\r\n" HOST "Connection: closed, xclose\r\n\r\n", 1},
    {"GET / HTTP/1.2\r\n" HOST "\r\n", 1},
    {"GET / HTTP/1.0\r\n\r\n", 0},
    {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1},
    {"GET / HTTP/1.0\r\nConnection: foo ,\tKeep-Alive\r\n\r\n", 1},
    {"GET / HTTP/1.0\r\nConnection: foo\r\nconnection: keep-alive\r\n\r\n", 1},
    {"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", 0},
    {"GET / HTTP/1.0\r\nConnection: keep-alives\r\n\r\n", 0},
};

START_TEST(test_keep_alive)
{
    request r;
    const char *in = keep_alive_cases[_i].in;
    ck_assert_int_eq(request_parse(&r, in, strlen(in)), 0);
    ck_assert_msg(r.head.keep_alive == (unsigned)keep_alive_cases[_i].keep_alive, "%s", in);
    request_free(&r);
}
END_TEST

/* Expect: 100-continue on 1.1 only; other expectations on 1.1 -> 417. */
static const struct {
    const char *in;
    int status;
    int expect_continue;
} expect_cases[] = {
    {"POST / HTTP/1.1\r\n" HOST "Expect: 100-continue\r\n\r\n", 0, 1},
    {"POST / HTTP/1.1\r\n" HOST "Expect: 100-Continue\r\n\r\n", 0, 1},
    {"POST / HTTP/1.1\r\n" HOST "\r\n", 0, 0},
    {"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", 0, 0},
    {"POST / HTTP/1.0\r\nExpect: teapot\r\n\r\n", 0, 0},
    {"POST / HTTP/1.1\r\n" HOST "Expect: teapot\r\n\r\n", 417, 0},
    {"POST / HTTP/1.1\r\n" HOST "Expect: 100-continue, teapot\r\n\r\n", 417, 0},
    {"POST / HTTP/1.1\r\n" HOST "Expect: 100-continued\r\n\r\n", 417, 0},
};

START_TEST(test_expect)
{
    request r;
    const char *in = expect_cases[_i].in;
    ck_assert_int_eq(request_parse(&r, in, strlen(in)), expect_cases[_i].status);
    if (expect_cases[_i].status == 0)
        ck_assert_uint_eq(r.head.expect_continue, (unsigned)expect_cases[_i].expect_continue);
    else
        ck_assert_str_eq(r.error.reason, "unsupported expectation");
    request_free(&r);
}
END_TEST

/* ---- Refusals ---------------------------------------------------------------- */

typedef struct refusal {
    const char *in;
    size_t len;
    int status;
    const char *reason;
} refusal;

/* clang-format off */
#define REFUSE(s, status, reason) {s, sizeof(s) - 1, status, reason}
/* clang-format on */
#define POST_ "POST / HTTP/1.1\r\n" HOST

static const refusal refusals[] = {
    /* body framing (RFC 9112 6) */
    REFUSE(POST_ "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400,
           "Transfer-Encoding with Content-Length"),
    REFUSE(POST_ "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
           "Transfer-Encoding with Content-Length"),
    REFUSE(POST_ "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 400,
           "several Content-Length fields"),
    REFUSE(POST_ "Content-Length: 5, 5\r\n\r\n", 400, "several Content-Length values"),
    REFUSE(POST_ "Content-Length: +5\r\n\r\n", 400, "invalid Content-Length"),
    REFUSE(POST_ "Content-Length: -1\r\n\r\n", 400, "invalid Content-Length"),
    REFUSE(POST_ "Content-Length: 5a\r\n\r\n", 400, "invalid Content-Length"),
    REFUSE(POST_ "Content-Length: 5 5\r\n\r\n", 400, "invalid Content-Length"),
    REFUSE(POST_ "Content-Length: 0x5\r\n\r\n", 400, "invalid Content-Length"),
    REFUSE(POST_ "Content-Length:\r\n\r\n", 400, "empty Content-Length"),
    REFUSE(POST_ "Content-Length: 99999999999999999999\r\n\r\n", 400, "Content-Length too large"),
    REFUSE(POST_ "Content-Length: 18446744073709551616\r\n\r\n", 400, "Content-Length too large"),
    REFUSE(POST_ "Transfer-Encoding: gzip\r\n\r\n", 501, "unsupported transfer coding"),
    REFUSE(POST_ "Transfer-Encoding: gzip, chunked\r\n\r\n", 501, "unsupported transfer coding"),
    REFUSE(POST_ "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501,
           "unsupported transfer coding"),
    REFUSE(POST_ "Transfer-Encoding: gzip;level=1, chunked\r\n\r\n", 501,
           "unsupported transfer coding"),
    REFUSE(POST_ "Transfer-Encoding: chunked, chunked\r\n\r\n", 400, "chunked coding given twice"),
    REFUSE(POST_ "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
           "chunked coding given twice"),
    REFUSE(POST_ "Transfer-Encoding: chunked, gzip\r\n\r\n", 400,
           "chunked is not the final transfer coding"),
    REFUSE(POST_ "Transfer-Encoding: chunked;x=1\r\n\r\n", 400, "parameters on the chunked coding"),
    REFUSE(POST_ "Transfer-Encoding: chun ked\r\n\r\n", 400, "malformed Transfer-Encoding"),
    REFUSE(POST_ "Transfer-Encoding: \"chunked\"\r\n\r\n", 400, "malformed Transfer-Encoding"),
    REFUSE(POST_ "Transfer-Encoding:\r\n\r\n", 400, "empty Transfer-Encoding"),
    REFUSE(POST_ "Transfer-Encoding: , ,\r\n\r\n", 400, "empty Transfer-Encoding"),
    REFUSE("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
           "Transfer-Encoding on HTTP/1.0"),

    /* field lines (RFC 9112 5) */
    REFUSE("GET / HTTP/1.1\r\n" HOST "X: a\r\n b\r\n\r\n", 400, "obsolete line folding"),
    REFUSE("GET / HTTP/1.1\r\n" HOST "X: a\r\n\tb\r\n\r\n", 400, "obsolete line folding"),
    REFUSE("GET / HTTP/1.1\r\n " HOST "\r\n", 400, "obsolete line folding"),
    REFUSE("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "whitespace before header colon"),
    REFUSE("GET / HTTP/1.1\r\n" HOST "X\t: a\r\n\r\n", 400, "whitespace before header colon"),
    REFUSE("GET / HTTP/1.1\r\n" HOST "X Y: a\r\n\r\n", 400, "whitespace before header colon"),
    REFUSE("GET / HTTP/1.1\r\n" HOST "X@Y: a\r\n\r\n", 400, "invalid byte in header name"),
    REFUSE("GET / HTTP/1.1\r\n" HOST "X(Y): a\r\n\r\n", 400, "invalid byte in header name"),
    REFUSE("GET / HTTP/1.1\r\n" HOST "X\xc3\xa9: a\r\n\r\n", 400, "invalid byte in header name"),
    REFUSE("GET / HTTP/1.1\r\n" HOST "NoColon\r\n\r\n", 400, "invalid byte in header name"),
    REFUSE("GET / HTTP/1.1\r\n" HOST ": a\r\n\r\n", 400, "empty header name"),
    REFUSE("GET / HTTP/1.1\r\n" HOST "X: a\0b\r\n\r\n", 400, "control byte in header value"),
    REFUSE("GET / HTTP/1.1\r\n" HOST "X: a\x01\r\n\r\n", 400, "control byte in header value"),
    REFUSE("GET / HTTP/1.1\r\n" HOST "X: a\x1f\r\n\r\n", 400, "control byte in header value"),
    REFUSE("GET / HTTP/1.1\r\n" HOST "X: \x7f\r\n\r\n", 400, "control byte in header value"),
    /* the same in values long enough to be checked a word at a time */
    REFUSE("GET / HTTP/1.1\r\n" HOST "X: 0123456789abcdef\x7f"
           "0123456789\r\n\r\n",
           400, "control byte in header value"),
    REFUSE("GET / HTTP/1.1\r\n" HOST "X: 0123456789abcdef0123456\x01\r\n\r\n", 400,
           "control byte in header value"),
    REFUSE("GET / HTTP/1.1\r\n" HOST "X: \x80\xff\x80\xff\x80\xff\x80\xff\x7f\r\n\r\n", 400,
           "control byte in header value"),
    REFUSE("GET / HTTP/1.1\r\n" HOST "X: a\rb\r\n\r\n", 400,
           "CR not followed by LF in request head"),
    REFUSE("GET / HTTP/1.1\r\n" HOST "X: a\nb\r\n\r\n", 400, "bare LF in request head"),

    /* line ends (RFC 9112 2.2) */
    REFUSE("GET / HTTP/1.1\n" HOST "\r\n", 400, "bare LF in request head"),
    REFUSE("GET / HTTP/1.1\r\nHost: h\n\r\n", 400, "bare LF in request head"),
    REFUSE("GET / HTTP/1.1\r\n" HOST "\n", 400, "bare LF in request head"),
    REFUSE("\nGET / HTTP/1.1\r\n" HOST "\r\n", 400, "bare LF in request head"),
    REFUSE("GET / HTTP/1.1\rHost: h\r\n\r\n", 400, "CR not followed by LF in request head"),
    REFUSE("GET / HTTP/1.1\r\n" HOST "\rX", 400, "CR not followed by LF in request head"),
    REFUSE("\r\rGET / HTTP/1.1\r\n" HOST "\r\n", 400, "CR not followed by LF in request head"),
    REFUSE("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" HOST "\r\n", 400,
           "too many empty lines before the request line"),

    /* request line (RFC 9112 3) */
    REFUSE("G@T / HTTP/1.1\r\n" HOST "\r\n", 400, "invalid byte in method"),
    REFUSE(" GET / HTTP/1.1\r\n" HOST "\r\n", 400, "invalid method"),
    REFUSE("GET\t/ HTTP/1.1\r\n" HOST "\r\n", 400, "invalid byte in method"),
    REFUSE("GET  / HTTP/1.1\r\n" HOST "\r\n", 400, "empty request target"),
    REFUSE("GET /  HTTP/1.1\r\n" HOST "\r\n", 400, "malformed HTTP version"),
    REFUSE("GET / HTTP/1.1 \r\n" HOST "\r\n", 400, "malformed HTTP version"),
    REFUSE("GET /a b HTTP/1.1\r\n" HOST "\r\n", 400, "malformed HTTP version"),
    REFUSE("GET /\r\n" HOST "\r\n", 400, "malformed HTTP version"),
    REFUSE("GET / http/1.1\r\n" HOST "\r\n", 400, "malformed HTTP version"),
    REFUSE("GET / HTTP/1.10\r\n" HOST "\r\n", 400, "malformed HTTP version"),
    REFUSE("GET / HTTP/1\r\n" HOST "\r\n", 400, "malformed HTTP version"),
    REFUSE("GET / HTTP/1.x\r\n" HOST "\r\n", 400, "malformed HTTP version"),
    REFUSE("GET / HTTP/11.1\r\n" HOST "\r\n", 400, "malformed HTTP version"),
    REFUSE("GET / HTTP/2.0\r\n" HOST "\r\n", 505, "unsupported HTTP version"),
    REFUSE("GET / HTTP/0.9\r\n" HOST "\r\n", 505, "unsupported HTTP version"),
    REFUSE("GET / HTTP/3.1\r\n" HOST "\r\n", 505, "unsupported HTTP version"),

    /* request targets (RFC 9112 3.2) */
    REFUSE("GET /a\x01 HTTP/1.1\r\n" HOST "\r\n", 400, "invalid byte in request target"),
    REFUSE("GET /a\0b HTTP/1.1\r\n" HOST "\r\n", 400, "invalid byte in request target"),
    REFUSE("GET /a\x7f HTTP/1.1\r\n" HOST "\r\n", 400, "invalid byte in request target"),
    REFUSE("GET /a\tb HTTP/1.1\r\n" HOST "\r\n", 400, "invalid byte in request target"),
    REFUSE("GET /a\x1b HTTP/1.1\r\n" HOST "\r\n", 400, "invalid byte in request target"),
    REFUSE("GET /a\rb HTTP/1.1\r\n" HOST "\r\n", 400, "CR not followed by LF in request head"),
    REFUSE("GET /a\nb HTTP/1.1\r\n" HOST "\r\n", 400, "bare LF in request head"),
    REFUSE("GET /a#frag HTTP/1.1\r\n" HOST "\r\n", 400, "fragment in request target"),
    REFUSE("GET /a?b#frag HTTP/1.1\r\n" HOST "\r\n", 400, "fragment in request target"),
    REFUSE("GET * HTTP/1.1\r\n" HOST "\r\n", 400, "asterisk-form target without OPTIONS"),
    REFUSE("OPTIONS ** HTTP/1.1\r\n" HOST "\r\n", 400, "malformed request target"),
    REFUSE("GET example.com:80 HTTP/1.1\r\n" HOST "\r\n", 400, "malformed request target"),
    REFUSE("CONNECT / HTTP/1.1\r\n" HOST "\r\n", 400, "CONNECT needs an authority-form target"),
    REFUSE("CONNECT * HTTP/1.1\r\n" HOST "\r\n", 400, "CONNECT needs an authority-form target"),
    REFUSE("CONNECT example.com HTTP/1.1\r\n" HOST "\r\n", 400, "missing port"),
    REFUSE("CONNECT example.com: HTTP/1.1\r\n" HOST "\r\n", 400, "missing port"),
    REFUSE("CONNECT :443 HTTP/1.1\r\n" HOST "\r\n", 400, "missing host"),
    REFUSE("CONNECT u@example.com:443 HTTP/1.1\r\n" HOST "\r\n", 400, "userinfo in authority"),
    REFUSE("CONNECT http://example.com:443 HTTP/1.1\r\n" HOST "\r\n", 400, "malformed port"),
    REFUSE("GET ftp://example.com/ HTTP/1.1\r\n" HOST "\r\n", 400, "malformed request target"),
    REFUSE("GET http:/example.com/ HTTP/1.1\r\n" HOST "\r\n", 400, "malformed request target"),
    REFUSE("GET http:// HTTP/1.1\r\n" HOST "\r\n", 400, "malformed request target"),
    REFUSE("GET http:///x HTTP/1.1\r\n" HOST "\r\n", 400, "missing host"),
    REFUSE("GET http://u:p@example.com/ HTTP/1.1\r\n" HOST "\r\n", 400, "userinfo in authority"),
    REFUSE("GET http://[::1/ HTTP/1.1\r\n" HOST "\r\n", 400, "malformed IP literal"),
    REFUSE("GET http://a:b/ HTTP/1.1\r\n" HOST "\r\n", 400, "malformed port"),
    REFUSE("GET http://a\"b/ HTTP/1.1\r\n" HOST "\r\n", 400, "invalid byte in host"),

    /* dot segments climbing above the root */
    REFUSE("GET /../x HTTP/1.1\r\n" HOST "\r\n", 400, "path climbs above the root"),
    REFUSE("GET /.. HTTP/1.1\r\n" HOST "\r\n", 400, "path climbs above the root"),
    REFUSE("GET /a/../../x HTTP/1.1\r\n" HOST "\r\n", 400, "path climbs above the root"),
    /* Empty segments are no level, as a file system sees them. */
    REFUSE("GET //.. HTTP/1.1\r\n" HOST "\r\n", 400, "path climbs above the root"),
    REFUSE("GET /a//../../x HTTP/1.1\r\n" HOST "\r\n", 400, "path climbs above the root"),
    REFUSE("GET /%2e%2e/x HTTP/1.1\r\n" HOST "\r\n", 400, "path climbs above the root"),
    REFUSE("GET /%2E./x HTTP/1.1\r\n" HOST "\r\n", 400, "path climbs above the root"),
    REFUSE("GET /.%2e/x HTTP/1.1\r\n" HOST "\r\n", 400, "path climbs above the root"),
    REFUSE("GET /%2e%2E?x HTTP/1.1\r\n" HOST "\r\n", 400, "path climbs above the root"),
    REFUSE("GET /./../x HTTP/1.1\r\n" HOST "\r\n", 400, "path climbs above the root"),
    REFUSE("GET /a/./b/../../../x HTTP/1.1\r\n" HOST "\r\n", 400, "path climbs above the root"),
    REFUSE("GET http://h/../x HTTP/1.1\r\n" HOST "\r\n", 400, "path climbs above the root"),

    /* Host (RFC 9112 3.2) */
    REFUSE("GET / HTTP/1.1\r\n\r\n", 400, "missing Host"),
    REFUSE("GET http://example.com/ HTTP/1.1\r\n\r\n", 400, "missing Host"),
    REFUSE("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "several Host fields"),
    REFUSE("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400, "several Host fields"),
    REFUSE("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "malformed Host"),
    REFUSE("GET / HTTP/1.1\r\nHost: host:port:x\r\n\r\n", 400, "malformed Host"),
    REFUSE("GET / HTTP/1.1\r\nHost: host:80x\r\n\r\n", 400, "malformed Host"),
    REFUSE("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, "malformed Host"),
    REFUSE("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400, "malformed Host"),
    REFUSE("GET / HTTP/1.1\r\nHost: user@host\r\n\r\n", 400, "malformed Host"),
    REFUSE("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "malformed Host"),
    REFUSE("GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400, "malformed Host"),
    REFUSE("GET http://a/ HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "malformed Host"),
};

START_TEST(test_refusals)
{
    const refusal *c = &refusals[_i];
    request r;
    int status = request_parse(&r, c->in, c->len);
    ck_assert_msg(status == c->status, "%s: got %d (%s), expected %d", c->in, status,
                  status > 0 ? r.error.reason : "-", c->status);
    ck_assert_msg(strcmp(r.error.reason, c->reason) == 0, "%s: reason \"%s\", expected \"%s\"",
                  c->in, r.error.reason, c->reason);
    request_free(&r);
}
END_TEST

/* IP literals and reg-names, through the Host field. */
static const struct {
    const char *host;
    int valid;
} host_cases[] = {
    {"example.com", 1},
    {"EXAMPLE.com:80", 1},
    {"a-b_c~d.!$&'()*+,;=", 1},
    {"[::]", 1},
    {"[::1]:8080", 1},
    {"[1:2:3:4:5:6:7:8]", 1},
    {"[1::8]", 1},
    {"[1::]", 1},
    {"[fe80::1:2]", 1},
    {"[::ffff:192.168.0.1]", 1},
    {"[1:2:3:4:5:6:1.2.3.4]", 1},
    {"[1::5:6:1.2.3.4]", 1},
    {"[v1.a:b]", 1},
    {"[1:2:3:4:5:6:7:8:9]", 0},
    {"[1:2:3:4:5:6:7]", 0},
    {"[1::2::3]", 0},
    {"[12345::]", 0},
    {"[:1]", 0},
    {"[1:]", 0},
    {":::", 0},
    {"[:::]", 0},
    {"[g::]", 0},
    {"[::1.2.3.256]", 0},
    {"[::01.2.3.4]", 0},
    {"[::1.2.3]", 0},
    {"[1:2:3:4:5:6:7:1.2.3.4]", 0},
    {"[::1%25eth0]", 0},
    {"[v.a]", 0},
    {"[v1.]", 0},
    {"[]", 0},
    {"[::1]:x", 0},
    {"a]", 0},
};

START_TEST(test_hosts)
{
    char in[256];
    request r;
    snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host_cases[_i].host);
    int status = request_parse(&r, in, strlen(in));
    ck_assert_msg(status == (host_cases[_i].valid ? 0 : 400), "Host: %s gave %d",
                  host_cases[_i].host, status);
    if (status == 0)
        ck_assert_span(r.head.host, r.head.host_len, host_cases[_i].host);
    request_free(&r);
}
END_TEST

START_TEST(test_parse_head_checks_bytes_itself)
{
    /* Bytes the scanner refuses must be refused by the parser alone too, for
       a caller that hands it a head from elsewhere. */
    static const refusal cases[] = {
        REFUSE("GET / HTTP/1.1\r\nHost: h\rx\r\n\r\n", 400,
               "CR not followed by LF in header field"),
        REFUSE("GET / HTTP/1.1\r\nHost: h\nx: y\r\n\r\n", 400, "bare LF in header field"),
        REFUSE("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n", 400,
               "request head does not end with an empty line"),
        REFUSE("GET / HTTP/1.1\r\n\r\n\r\n", 400, "invalid byte in header name"),
        REFUSE("\r\n\r\n", 400, "invalid method"),
        REFUSE("GET /\r\n\r\n", 400, "invalid byte in request target"),
        REFUSE("GET /a\rb HTTP/1.1\r\n\r\n", 400, "invalid byte in request target"),
        REFUSE("GET /a\nb HTTP/1.1\r\n\r\n", 400, "invalid byte in request target"),
        REFUSE("GET / HTTP/1.1\r\r\n\r\n", 400, "malformed HTTP version"),
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        csgi_http__header headers[4];
        csgi_http__head head;
        csgi_http__error error = {0, NULL};
        char *copy = copy_bytes(cases[i].in, cases[i].len);
        int status = csgi_http__parse_head(copy, cases[i].len, headers, 4, &head, &error);
        ck_assert_msg(status == cases[i].status && strcmp(error.reason, cases[i].reason) == 0,
                      "case %zu: %d %s", i, status, error.reason);
        free(copy);
    }
}
END_TEST

START_TEST(test_parse_head_capacity)
{
    static const char in[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
    csgi_http__header headers[3];
    csgi_http__head head;
    csgi_http__error error = {0, NULL};
    ck_assert_int_eq(csgi_http__parse_head(in, sizeof(in) - 1, headers, 2, &head, &error), 431);
    ck_assert_int_eq(csgi_http__parse_head(in, sizeof(in) - 1, headers, 3, &head, &error), 0);
    ck_assert_uint_eq(head.header_count, 3);
}
END_TEST

/* ---- The scanner ------------------------------------------------------------- */

/* Feed s to a fresh scanner step bytes more at a time, each call through a
   new heap buffer (the engine's buffer may move). */
static csgi_http__scan_result scan_in_steps(const char *s, size_t len, size_t step,
                                            const csgi_http__limits *limits,
                                            csgi_http__scanner *scanner, csgi_http__error *error)
{
    csgi_http__scan_result result = CSGI_HTTP__SCAN_MORE;
    csgi_http__scanner_init(scanner);
    for (size_t n = step < len ? step : len; result == CSGI_HTTP__SCAN_MORE; n += step) {
        if (n > len)
            n = len;
        char *copy = copy_bytes(s, n);
        result = csgi_http__scan(scanner, copy, n, limits, error);
        free(copy);
        if (result == CSGI_HTTP__SCAN_MORE) {
            /* Every byte given was examined: the next call starts after them. */
            ck_assert_uint_eq(scanner->offset, n);
        }
        if (n == len)
            break;
    }
    return result;
}

/* The scanner's results fed in one go and fed in pieces must be the same. */
static void assert_scan_split_invariant(const char *s, size_t len, const csgi_http__limits *limits)
{
    static const size_t steps[] = {1, 2, 3, 7, 64};
    csgi_http__scanner whole;
    csgi_http__error whole_error = {0, NULL};
    csgi_http__scan_result whole_result =
        scan_in_steps(s, len, len ? len : 1, limits, &whole, &whole_error);

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        csgi_http__scanner split;
        csgi_http__error split_error = {0, NULL};
        csgi_http__scan_result result =
            scan_in_steps(s, len, steps[i], limits, &split, &split_error);
        ck_assert_msg(result == whole_result, "%.*s: step %zu gives %d, one go %d", (int)len, s,
                      steps[i], result, whole_result);
        if (result == CSGI_HTTP__SCAN_DONE) {
            ck_assert_uint_eq(split.head_length, whole.head_length);
            ck_assert_uint_eq(split.skipped, whole.skipped);
            ck_assert_uint_eq(split.header_count, whole.header_count);
        } else if (result == CSGI_HTTP__SCAN_ERROR) {
            ck_assert_int_eq(split_error.status, whole_error.status);
            ck_assert_str_eq(split_error.reason, whole_error.reason);
        }
    }
}

START_TEST(test_scan_split_invariant)
{
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
        assert_scan_split_invariant(refusals[i].in, refusals[i].len, &default_limits);
    for (size_t i = 0; i < sizeof(target_cases) / sizeof(target_cases[0]); i++)
        assert_scan_split_invariant(target_cases[i].in, strlen(target_cases[i].in),
                                    &default_limits);
    for (size_t i = 0; i < sizeof(keep_alive_cases) / sizeof(keep_alive_cases[0]); i++)
        assert_scan_split_invariant(keep_alive_cases[i].in, strlen(keep_alive_cases[i].in),
                                    &default_limits);

    /* and with limits small enough to be hit part-way through a line */
    static const csgi_http__limits small = {20, 12, 48, 3};
    static const char *const small_cases[] = {
        "GET /0123456789 HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nX: 0123456789\r\n\r\n",
        "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",
        "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 345678\r\n\r\n",
        "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3456\nx\r\n\r\n",
        "GET / HTTP/1.1\r\nA: 1\r\n\r\n"};
    for (size_t i = 0; i < sizeof(small_cases) / sizeof(small_cases[0]); i++)
        assert_scan_split_invariant(small_cases[i], strlen(small_cases[i]), &small);

    /* a bare LF past the head limit but within the line limit */
    static const csgi_http__limits small_head = {100, 100, 40, 10};
    static const char late_lf[] = "GET / HTTP/1.1\r\nX: 0123456789012345678901234\nx\r\n\r\n";
    assert_scan_split_invariant(late_lf, sizeof(late_lf) - 1, &small_head);
}
END_TEST

START_TEST(test_scan_byte_at_a_time)
{
    static const char in[] = "\r\n\r\nPOST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi";
    const size_t head_end = sizeof(in) - 1 - 2;
    csgi_http__scanner scanner;
    csgi_http__error error;
    csgi_http__scanner_init(&scanner);
    for (size_t n = 1; n <= sizeof(in) - 1; n++) {
        char *copy = copy_bytes(in, n);
        csgi_http__scan_result result = csgi_http__scan(&scanner, copy, n, NULL, &error);
        free(copy);
        ck_assert_int_eq(result, n < head_end ? CSGI_HTTP__SCAN_MORE : CSGI_HTTP__SCAN_DONE);
    }
    ck_assert_uint_eq(scanner.head_length, head_end);
    ck_assert_uint_eq(scanner.skipped, 4);
    ck_assert_uint_eq(scanner.header_count, 2);
}
END_TEST

/* A request line without a version (HTTP/0.9 style) is refused at its
   CRLF, not after header fields that will never come. */
START_TEST(test_scan_request_line_without_version)
{
    static const char *const cases[] = {"GET /\r\n", "GET / \r\n", "GET /x HTTP/1\r\n", "GET\r\n",
                                        "GET / HTTP/1.1 \r\n"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i]);
        for (size_t step = 1; step <= len; step++) {
            csgi_http__scanner scanner;
            csgi_http__error error = {0, NULL};
            ck_assert_int_eq(scan_in_steps(cases[i], len, step, NULL, &scanner, &error),
                             CSGI_HTTP__SCAN_ERROR);
            ck_assert_int_eq(error.status, 400);
            ck_assert_str_eq(error.reason, "malformed HTTP version");
        }
    }
    csgi_http__scanner scanner;
    csgi_http__error error = {0, NULL};
    ck_assert_int_eq(scan_in_steps("GET / HTTP/1.1\r\n", 16, 1, NULL, &scanner, &error),
                     CSGI_HTTP__SCAN_MORE);
    ck_assert_int_eq(scan_in_steps("GET / HTTP/2.0\r\n", 16, 1, NULL, &scanner, &error),
                     CSGI_HTTP__SCAN_MORE);
}
END_TEST

START_TEST(test_scan_pipelined)
{
    static const char in[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    const size_t half = (sizeof(in) - 1) / 2;
    csgi_http__scanner scanner;
    csgi_http__error error;
    csgi_http__scanner_init(&scanner);
    ck_assert_int_eq(csgi_http__scan(&scanner, in, sizeof(in) - 1, NULL, &error),
                     CSGI_HTTP__SCAN_DONE);
    ck_assert_uint_eq(scanner.head_length, half);
    ck_assert_uint_eq(scanner.header_count, 1);
    /* Called again after DONE, it keeps its result. */
    ck_assert_int_eq(csgi_http__scan(&scanner, in, sizeof(in) - 1, NULL, &error),
                     CSGI_HTTP__SCAN_DONE);
    ck_assert_uint_eq(scanner.head_length, half);

    /* The second request, scanned from its own first byte. */
    csgi_http__scanner_init(&scanner);
    ck_assert_int_eq(csgi_http__scan(&scanner, in + half, half, NULL, &error),
                     CSGI_HTTP__SCAN_DONE);
    ck_assert_uint_eq(scanner.head_length, half);
}
END_TEST

START_TEST(test_scan_leading_empty_lines)
{
    char in[128];
    for (int lines = 0; lines <= 9; lines++) {
        size_t n = 0;
        for (int i = 0; i < lines; i++)
            n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n");
        n += (size_t)snprintf(in + n, sizeof(in) - n, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        request r;
        int status = request_parse(&r, in, n);
        if (lines <= 8) {
            ck_assert_int_eq(status, 0);
            ck_assert_uint_eq(r.scanner.skipped, (size_t)lines * 2);
            ck_assert_uint_eq(r.scanner.head_length, n);
            ck_assert_ptr_eq(r.head.method, r.bytes + lines * 2);
        } else {
            ck_assert_int_eq(status, 400);
        }
        request_free(&r);
    }
}
END_TEST

START_TEST(test_scan_error_is_sticky)
{
    static const char in[] = "GET / HTTP/1.1\r\nHost: h\n\r\n";
    csgi_http__scanner scanner;
    csgi_http__error error = {0, NULL};
    csgi_http__scanner_init(&scanner);
    ck_assert_int_eq(csgi_http__scan(&scanner, in, 10, NULL, &error), CSGI_HTTP__SCAN_MORE);
    for (int i = 0; i < 2; i++) {
        error.status = 0;
        ck_assert_int_eq(csgi_http__scan(&scanner, in, sizeof(in) - 1, NULL, &error),
                         CSGI_HTTP__SCAN_ERROR);
        ck_assert_int_eq(error.status, 400);
        ck_assert_str_eq(error.reason, "bare LF in request head");
    }
}
END_TEST

/* A head "GET /<a...> HTTP/1.1\r\nHost: h\r\nX: <v...>\r\n\r\n" of chosen sizes. */
static size_t make_head(char *buf, size_t size, size_t path_len, size_t value_len,
                        size_t extra_fields)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, size - n, "GET /");
    for (size_t i = 0; i < path_len; i++)
        buf[n++] = 'a';
    n += (size_t)snprintf(buf + n, size - n, " HTTP/1.1\r\nHost: h\r\nX: ");
    for (size_t i = 0; i < value_len; i++)
        buf[n++] = 'v';
    n += (size_t)snprintf(buf + n, size - n, "\r\n");
    for (size_t i = 0; i < extra_fields; i++)
        n += (size_t)snprintf(buf + n, size - n, "F: %zu\r\n", i % 10);
    n += (size_t)snprintf(buf + n, size - n, "\r\n");
    return n;
}

START_TEST(test_limit_request_line)
{
    /* request line = 5 + path + 9 bytes */
    const csgi_http__limits limits = {32, 100, 1000, 100};
    char in[256];
    request r;
    size_t n = make_head(in, sizeof(in), 32 - 14, 1, 0);
    ck_assert_int_eq(request_parse_with(&r, in, n, &limits), 0);
    request_free(&r);

    n = make_head(in, sizeof(in), 33 - 14, 1, 0);
    ck_assert_int_eq(request_parse_with(&r, in, n, &limits), 414);
    ck_assert_str_eq(r.error.reason, "request line too long");
    request_free(&r);

    /* refused as soon as the 33rd byte arrives, long before its CRLF */
    ck_assert_int_eq(request_parse_with(&r, in, 32, &limits), -1);
    request_free(&r);
    ck_assert_int_eq(request_parse_with(&r, in, 33, &limits), 414);
    request_free(&r);
}
END_TEST

START_TEST(test_limit_header_line)
{
    /* the X line = 3 + value bytes */
    const csgi_http__limits limits = {100, 16, 1000, 100};
    char in[256];
    request r;
    size_t n = make_head(in, sizeof(in), 1, 13, 0);
    ck_assert_int_eq(request_parse_with(&r, in, n, &limits), 0);
    request_free(&r);

    n = make_head(in, sizeof(in), 1, 14, 0);
    ck_assert_int_eq(request_parse_with(&r, in, n, &limits), 431);
    ck_assert_str_eq(r.error.reason, "header line too long");
    request_free(&r);

    /* GET /a HTTP/1.1\r\n Host: h\r\n = 26 bytes, then 17 bytes of the X line */
    ck_assert_int_eq(request_parse_with(&r, in, 26 + 16, &limits), -1);
    request_free(&r);
    ck_assert_int_eq(request_parse_with(&r, in, 26 + 17, &limits), 431);
    request_free(&r);
}
END_TEST

START_TEST(test_limit_head)
{
    /* the head = 33 + value bytes; empty lines before it do not count */
    const csgi_http__limits limits = {100, 100, 64, 100};
    char in[256];
    request r;
    size_t n = make_head(in, sizeof(in), 1, 31, 0);
    ck_assert_uint_eq(n, 64);
    ck_assert_int_eq(request_parse_with(&r, in, n, &limits), 0);
    request_free(&r);

    memcpy(in, "\r\n\r\n", 4);
    n = make_head(in + 4, sizeof(in) - 4, 1, 31, 0);
    ck_assert_int_eq(request_parse_with(&r, in, n + 4, &limits), 0);
    ck_assert_uint_eq(r.scanner.skipped, 4);
    request_free(&r);

    n = make_head(in, sizeof(in), 1, 32, 0);
    ck_assert_int_eq(request_parse_with(&r, in, n, &limits), 431);
    ck_assert_str_eq(r.error.reason, "request head too large");
    request_free(&r);

    /* past the limit, a bare LF no longer matters: the head is too large */
    static const char late_lf[] =
        "GET / HTTP/1.1\r\nHost: h\r\nX: 012345678901234567890123456789012345678901234\n";
    ck_assert_int_eq(request_parse_with(&r, late_lf, sizeof(late_lf) - 1, &limits), 431);
    request_free(&r);

    /* refused before the head is complete */
    n = make_head(in, sizeof(in), 1, 80, 0);
    ck_assert_int_eq(request_parse_with(&r, in, 64, &limits), -1);
    request_free(&r);
    ck_assert_int_eq(request_parse_with(&r, in, 65, &limits), 431);
    ck_assert_str_eq(r.error.reason, "request head too large");
    request_free(&r);
}
END_TEST

START_TEST(test_limit_header_count)
{
    /* Host, X and the extra fields */
    const csgi_http__limits limits = {100, 100, 1000, 5};
    char in[256];
    request r;
    size_t n = make_head(in, sizeof(in), 1, 1, 3);
    ck_assert_int_eq(request_parse_with(&r, in, n, &limits), 0);
    ck_assert_uint_eq(r.scanner.header_count, 5);
    ck_assert_uint_eq(r.head.header_count, 5);
    request_free(&r);

    n = make_head(in, sizeof(in), 1, 1, 4);
    ck_assert_int_eq(request_parse_with(&r, in, n, &limits), 431);
    ck_assert_str_eq(r.error.reason, "too many header fields");
    request_free(&r);
}
END_TEST

/* ---- Field lines and helpers -------------------------------------------------- */

START_TEST(test_parse_fields)
{
    csgi_http__header fields[4];
    csgi_http__error error = {0, NULL};
    size_t count = 99;

    ck_assert_int_eq(csgi_http__parse_fields("", 0, fields, 4, &count, NULL, &error), 0);
    ck_assert_uint_eq(count, 0);

    static const char block[] = "X-Sum: 1\r\nx-other:\t two words \r\n";
    char *copy = copy_bytes(block, sizeof(block) - 1);
    ck_assert_int_eq(
        csgi_http__parse_fields(copy, sizeof(block) - 1, fields, 4, &count, NULL, &error), 0);
    ck_assert_uint_eq(count, 2);
    ck_assert_span(fields[0].name, fields[0].name_len, "X-Sum");
    ck_assert_span(fields[0].value, fields[0].value_len, "1");
    ck_assert_span(fields[1].name, fields[1].name_len, "x-other");
    ck_assert_span(fields[1].value, fields[1].value_len, "two words");
    ck_assert_ptr_eq(fields[0].name, copy);

    ck_assert_int_eq(
        csgi_http__parse_fields(copy, sizeof(block) - 1, fields, 1, &count, NULL, &error), 431);
    free(copy);

    /* A name with '_' is a token (kept whole) and is noted; others leave
       the flag alone. */
    static const char underscored[] = "X-A: 1\r\nX_Auth-T: 2\r\nY: 3\r\n";
    copy = copy_bytes(underscored, sizeof(underscored) - 1);
    int underscore = 0;
    ck_assert_int_eq(csgi_http__parse_fields(copy, sizeof(underscored) - 1, fields, 4, &count,
                                             &underscore, &error),
                     0);
    ck_assert_uint_eq(count, 3);
    ck_assert_span(fields[1].name, fields[1].name_len, "X_Auth-T");
    ck_assert_int_eq(underscore, 1);
    underscore = 0;
    ck_assert_int_eq(csgi_http__parse_fields(copy, 8, fields, 4, &count, &underscore, &error), 0);
    ck_assert_int_eq(underscore, 0);
    free(copy);
    request r;
    static const char head[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Auth_Token: x\r\n\r\n";
    ck_assert_int_eq(request_parse(&r, head, sizeof(head) - 1), 0);
    ck_assert_uint_eq(r.head.underscore, 1);
    request_free(&r);

    static const refusal bad[] = {
        REFUSE("X: 1", 400, "header field line without CRLF"),
        REFUSE("X: 1\r\nY: 2", 400, "header field line without CRLF"),
        REFUSE("\n", 400, "header field line without CRLF"),
        REFUSE("X: 1\r\n Y\r\n", 400, "obsolete line folding"),
        REFUSE("X : 1\r\n", 400, "whitespace before header colon"),
        REFUSE("X: 1\n\r\n", 400, "bare LF in header field"),
        REFUSE("X: 1\r2\r\n", 400, "CR not followed by LF in header field"),
        REFUSE("X: \0\r\n", 400, "control byte in header value"),
        REFUSE("\r\n", 400, "invalid byte in header name"),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        copy = copy_bytes(bad[i].in, bad[i].len);
        int status = csgi_http__parse_fields(copy, bad[i].len, fields, 4, &count, NULL, &error);
        ck_assert_msg(status == bad[i].status && strcmp(error.reason, bad[i].reason) == 0,
                      "case %zu: %d %s", i, status, error.reason);
        free(copy);
    }
}
END_TEST

START_TEST(test_token_equals)
{
    ck_assert_int_eq(csgi_http__token_equals("Host", 4, "host"), 1);
    ck_assert_int_eq(csgi_http__token_equals("CONTENT-LENGTH", 14, "content-length"), 1);
    ck_assert_int_eq(csgi_http__token_equals("", 0, ""), 1);
    ck_assert_int_eq(csgi_http__token_equals("Hos", 3, "host"), 0);
    ck_assert_int_eq(csgi_http__token_equals("Hostx", 5, "host"), 0);
    ck_assert_int_eq(csgi_http__token_equals("Host", 4, "hosT"), 0);
    /* no bit tricks that fold non-letters: CR | 0x20 would be '-' */
    ck_assert_int_eq(csgi_http__token_equals("a\rb", 3, "a-b"), 0);
    ck_assert_int_eq(csgi_http__token_equals("\0", 1, ""), 0);
}
END_TEST

/* ---- The chunked decoder ------------------------------------------------------ */

typedef struct decoded {
    csgi_http__chunk_result result; /* DONE, ERROR, or the last result when input ran out */
    int status;
    const char *reason;
    char data[16384];
    size_t data_len;
    char trailer[16384];
    size_t trailer_len;
    size_t consumed; /* total bytes consumed */
} decoded;

/* Decode s handing the decoder at most step bytes per call, each call
   through a heap buffer of exactly those bytes; max_body as the engine
   sets it (0: none). */
static void decode_in_steps(const char *s, size_t len, size_t step, uint64_t max_body, decoded *out)
{
    csgi_http__chunked decoder;
    csgi_http__chunked_init(&decoder);
    decoder.max_body = max_body;
    memset(out, 0, sizeof(*out));
    out->result = CSGI_HTTP__CHUNK_FRAMING;

    while (out->consumed < len) {
        size_t n = len - out->consumed < step ? len - out->consumed : step;
        char *copy = copy_bytes(s + out->consumed, n);
        size_t consumed = 0;
        csgi_http__error error = {0, NULL};
        out->result = csgi_http__chunked_decode(&decoder, copy, n, &consumed, &error);
        if (out->result == CSGI_HTTP__CHUNK_ERROR) {
            out->status = error.status;
            out->reason = error.reason;
            free(copy);
            return;
        }
        ck_assert_uint_gt(consumed, 0);
        ck_assert_uint_le(consumed, n);
        if (out->result == CSGI_HTTP__CHUNK_DATA) {
            ck_assert_uint_le(out->data_len + consumed, sizeof(out->data));
            memcpy(out->data + out->data_len, copy, consumed);
            out->data_len += consumed;
        } else if (out->result == CSGI_HTTP__CHUNK_TRAILER) {
            ck_assert_uint_le(out->trailer_len + consumed, sizeof(out->trailer));
            memcpy(out->trailer + out->trailer_len, copy, consumed);
            out->trailer_len += consumed;
        }
        free(copy);
        out->consumed += consumed;
        if (out->result == CSGI_HTTP__CHUNK_DONE)
            return;
    }
}

/* Decode in one go, byte at a time and in a few other steps; all must agree. */
static void decode_all_ways_limited(const char *s, size_t len, uint64_t max_body, decoded *out)
{
    static const size_t steps[] = {1, 2, 3, 5, 16};
    static decoded split;
    decode_in_steps(s, len, len ? len : 1, max_body, out);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        decode_in_steps(s, len, steps[i], max_body, &split);
        ck_assert_msg(split.result == out->result, "%.*s: step %zu gives %d, one go %d", (int)len,
                      s, steps[i], split.result, out->result);
        if (out->result == CSGI_HTTP__CHUNK_ERROR) {
            ck_assert_int_eq(split.status, out->status);
            continue;
        }
        ck_assert_uint_eq(split.consumed, out->consumed);
        ck_assert_uint_eq(split.data_len, out->data_len);
        ck_assert(memcmp(split.data, out->data, out->data_len) == 0);
        ck_assert_uint_eq(split.trailer_len, out->trailer_len);
        ck_assert(memcmp(split.trailer, out->trailer, out->trailer_len) == 0);
    }
}

static void decode_all_ways(const char *s, size_t len, decoded *out)
{
    decode_all_ways_limited(s, len, 0, out);
}

static const struct {
    const char *in;
    const char *data;
    const char *trailer;
    size_t rest; /* bytes after the end of the body, left unconsumed */
} chunked_good[] = {
    {"5\r\nhello\r\n0\r\n\r\n", "hello", "", 0},
    {"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", "", 0},
    {"0\r\n\r\n", "", "", 0},
    {"000\r\n\r\n", "", "", 0},
    {"a\r\n0123456789\r\nF\r\nABCDEFGHIJKLMNO\r\n0\r\n\r\n", "0123456789ABCDEFGHIJKLMNO", "", 0},
    /* chunk extensions, RFC 9112 7.1.1 */
    {"5;a\r\nhello\r\n0\r\n\r\n", "hello", "", 0},
    {"5;a=b;c\r\nhello\r\n0;last\r\n\r\n", "hello", "", 0},
    {"5 ; a = b ;\tc\r\nhello\r\n0\r\n\r\n", "hello", "", 0},
    {"5;a=\"\"\r\nhello\r\n0\r\n\r\n", "hello", "", 0},
    {"5;a=\"x y\\\"z\\\\\" ;b=\"\t;=\xff\"\r\nhello\r\n0\r\n\r\n", "hello", "", 0},
    /* trailers */
    {"3\r\nabc\r\n0\r\nX-Sum: 1\r\nY:two words \r\n\r\n", "abc", "X-Sum: 1\r\nY:two words \r\n", 0},
    {"0\r\nX:\r\n\r\n", "", "X:\r\n", 0},
    /* the bytes after the body are not consumed */
    {"1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "a", "", 16},
};

START_TEST(test_chunked_good)
{
    static decoded d;
    const char *in = chunked_good[_i].in;
    decode_all_ways(in, strlen(in), &d);
    ck_assert_msg(d.result == CSGI_HTTP__CHUNK_DONE, "%s: result %d (%s)", in, d.result, d.reason);
    ck_assert_span(d.data, d.data_len, chunked_good[_i].data);
    ck_assert_span(d.trailer, d.trailer_len, chunked_good[_i].trailer);
    ck_assert_uint_eq(d.consumed, strlen(in) - chunked_good[_i].rest);

    /* The kept trailer bytes are a block for csgi_http__parse_fields. */
    csgi_http__header fields[4];
    csgi_http__error error;
    size_t count;
    ck_assert_int_eq(
        csgi_http__parse_fields(d.trailer, d.trailer_len, fields, 4, &count, NULL, &error), 0);
}
END_TEST

START_TEST(test_chunked_large_chunks)
{
    /* chunks of 0xff and 0x1000 bytes, sizes in mixed case with leading zeros */
    static decoded d;
    static char in[8192];
    static char expected[8192];
    size_t n = 0;
    size_t data = 0;

    n += (size_t)snprintf(in + n, sizeof(in) - n, "0Ff\r\n");
    for (size_t i = 0; i < 0xff; i++)
        in[n++] = expected[data++] = (char)('a' + i % 26);
    n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n0001000;x=y\r\n");
    for (size_t i = 0; i < 0x1000; i++)
        in[n++] = expected[data++] = (char)('0' + i % 10);
    n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n0\r\n\r\n");
    decode_all_ways(in, n, &d);
    ck_assert_int_eq(d.result, CSGI_HTTP__CHUNK_DONE);
    ck_assert_uint_eq(d.data_len, data);
    ck_assert(memcmp(d.data, expected, data) == 0);
    ck_assert_uint_eq(d.consumed, n);
}
END_TEST

START_TEST(test_chunked_sequence)
{
    /* one go: framing, data, then the rest of the framing with DONE */
    static const char in[] = "5\r\nhello\r\n0\r\nA: b\r\n\r\n";
    static const struct {
        csgi_http__chunk_result result;
        size_t consumed;
    } expected[] = {
        {CSGI_HTTP__CHUNK_FRAMING, 3}, {CSGI_HTTP__CHUNK_DATA, 5}, {CSGI_HTTP__CHUNK_FRAMING, 5},
        {CSGI_HTTP__CHUNK_TRAILER, 6}, {CSGI_HTTP__CHUNK_DONE, 2},
    };
    csgi_http__chunked decoder;
    csgi_http__error error;
    size_t offset = 0;
    csgi_http__chunked_init(&decoder);
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        size_t consumed = 0;
        csgi_http__chunk_result result = csgi_http__chunked_decode(
            &decoder, in + offset, sizeof(in) - 1 - offset, &consumed, &error);
        ck_assert_int_eq(result, expected[i].result);
        ck_assert_uint_eq(consumed, expected[i].consumed);
        offset += consumed;
    }
    ck_assert_uint_eq(offset, sizeof(in) - 1);

    /* data split across calls, and the decoder refuses to go past the end */
    size_t consumed = 0;
    csgi_http__chunked_init(&decoder);
    ck_assert_int_eq(csgi_http__chunked_decode(&decoder, "3\r\nab", 6, &consumed, &error),
                     CSGI_HTTP__CHUNK_FRAMING);
    ck_assert_uint_eq(consumed, 3);
    ck_assert_int_eq(csgi_http__chunked_decode(&decoder, "ab", 2, &consumed, &error),
                     CSGI_HTTP__CHUNK_DATA);
    ck_assert_uint_eq(consumed, 2);
    ck_assert_uint_eq(decoder.remaining, 1);
    ck_assert_int_eq(csgi_http__chunked_decode(&decoder, "c\r\n0\r\n\r\n", 8, &consumed, &error),
                     CSGI_HTTP__CHUNK_DATA);
    ck_assert_uint_eq(consumed, 1);
    ck_assert_int_eq(csgi_http__chunked_decode(&decoder, "\r\n0\r\n\r\n", 7, &consumed, &error),
                     CSGI_HTTP__CHUNK_DONE);
    ck_assert_uint_eq(consumed, 7);
    ck_assert_int_eq(csgi_http__chunked_decode(&decoder, "0", 1, &consumed, &error),
                     CSGI_HTTP__CHUNK_ERROR);
}
END_TEST

static const refusal chunked_bad[] = {
    REFUSE("5\nhello\r\n0\r\n\r\n", 400, "bare LF in chunk size line"),
    REFUSE("5;a\nhello", 400, "bare LF in chunk size line"),
    REFUSE("0x5\r\nhello\r\n", 400, "invalid chunk size"),
    REFUSE("5 ;\r\nhello\r\n0\r\n\r\n", 400, "malformed chunk extension"),
    REFUSE("5;\r\nhello\r\n", 400, "malformed chunk extension"),
    REFUSE("5 \r\nhello\r\n", 400, "malformed chunk extension"),
    REFUSE("5;a=\r\nhello\r\n", 400, "malformed chunk extension"),
    REFUSE("5;a =\r\nhello\r\n", 400, "malformed chunk extension"),
    REFUSE("5;a \r\nhello\r\n", 400, "malformed chunk extension"),
    REFUSE("5;a b\r\nhello\r\n", 400, "malformed chunk extension"),
    REFUSE("5;a=b c\r\nhello\r\n", 400, "malformed chunk extension"),
    REFUSE("5;=b\r\nhello\r\n", 400, "malformed chunk extension"),
    REFUSE("5;a@=b\r\nhello\r\n", 400, "malformed chunk extension"),
    REFUSE("5;a=\"q\" \r\nhello\r\n", 400, "malformed chunk extension"),
    REFUSE("5;a=\"q\"x\r\nhello\r\n", 400, "malformed chunk extension"),
    REFUSE("5;a=\"q\r\nhello\r\n", 400, "malformed chunk extension"),
    REFUSE("5;a=\"q\x01\"\r\nhello\r\n", 400, "malformed chunk extension"),
    REFUSE("5;a=\"q\\\x01\"\r\nhello\r\n", 400, "malformed chunk extension"),
    REFUSE("5;a=b\x7f\r\nhello\r\n", 400, "malformed chunk extension"),
    REFUSE("\r\n", 400, "invalid chunk size"),
    REFUSE(";a\r\n", 400, "invalid chunk size"),
    REFUSE("-5\r\n", 400, "invalid chunk size"),
    REFUSE(" 5\r\n", 400, "invalid chunk size"),
    REFUSE("5\x00\r\n", 400, "invalid chunk size"),
    REFUSE("5\rX", 400, "CR not followed by LF in chunk size line"),
    REFUSE("1000000000000001\r\n", 400, "chunk size too large"),
    REFUSE("10000000000000000\r\n", 400, "chunk size too large"),
    REFUSE("ffffffffffffffffffff\r\n", 400, "chunk size too large"),
    REFUSE("5\r\nhelloX\r\n0\r\n\r\n", 400, "missing CRLF after chunk data"),
    REFUSE("5\r\nhelloX\n0\r\n\r\n", 400, "missing CRLF after chunk data"),
    REFUSE("5\r\nhello\n0\r\n\r\n", 400, "missing CRLF after chunk data"),
    REFUSE("5\r\nhello\rX0\r\n\r\n", 400, "missing CRLF after chunk data"),
    REFUSE("5\r\nhello0\r\n\r\n", 400, "missing CRLF after chunk data"),
    REFUSE("0\r\nX: a\r\n b\r\n\r\n", 400, "obsolete line folding in trailer"),
    REFUSE("0\r\nX : a\r\n\r\n", 400, "whitespace before trailer colon"),
    REFUSE("0\r\nX@Y: a\r\n\r\n", 400, "invalid byte in trailer field name"),
    REFUSE("0\r\n: a\r\n\r\n", 400, "invalid byte in trailer field name"),
    REFUSE("0\r\nXY\r\n\r\n", 400, "invalid byte in trailer field name"),
    REFUSE("0\r\nX: a\x01\r\n\r\n", 400, "control byte in trailer value"),
    REFUSE("0\r\nX: a\nb\r\n\r\n", 400, "control byte in trailer value"),
    REFUSE("0\r\nX: a\rb\r\n\r\n", 400, "CR not followed by LF in trailer"),
    REFUSE("0\r\n\rX", 400, "CR not followed by LF after trailer"),
    REFUSE("0\r\n\n", 400, "bare LF in trailer"),
};

START_TEST(test_chunked_bad)
{
    static decoded d;
    const char *in = chunked_bad[_i].in;
    decode_all_ways(in, chunked_bad[_i].len, &d);
    ck_assert_msg(d.result == CSGI_HTTP__CHUNK_ERROR, "%s: result %d", in, d.result);
    ck_assert_int_eq(d.status, chunked_bad[_i].status);
    ck_assert_msg(strcmp(d.reason, chunked_bad[_i].reason) == 0, "%s: reason %s, expected %s", in,
                  d.reason, chunked_bad[_i].reason);
}
END_TEST

/* With a body limit, the sum of the chunk sizes is held to it as soon as
   each size is complete: 413 before any data of the chunk that breaks it. */
START_TEST(test_chunked_body_limit)
{
    static decoded d;
    static const struct {
        const char *in;
        int status; /* 0: the body ends */
    } cases[] = {
        {"a\r\n0123456789\r\n0\r\n\r\n", 0},
        {"5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n", 0},
        {"b\r\n", 413},
        {"0000000b;x=y\r\n", 413},
        {"5\r\n01234\r\n6\r\n", 413},
        {"5\r\n01234\r\n6;", 413},
        {"ffffffffffffffffffff\r\n", 400}, /* overflowing: malformed, not too big */
        {"-1\r\n", 400},
        {"0x1\r\n", 400},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        decode_all_ways_limited(cases[i].in, strlen(cases[i].in), 10, &d);
        if (cases[i].status == 0) {
            ck_assert_msg(d.result == CSGI_HTTP__CHUNK_DONE, "%s: %d", cases[i].in, d.result);
            ck_assert_uint_eq(d.data_len, 10);
            continue;
        }
        ck_assert_msg(d.result == CSGI_HTTP__CHUNK_ERROR && d.status == cases[i].status,
                      "%s: result %d status %d", cases[i].in, d.result, d.status);
        if (d.status == 413) {
            ck_assert_str_eq(d.reason, "chunk size above the body limit");
            ck_assert_uint_le(d.data_len, 5);
        }
    }
    /* without a limit, the same sizes pass */
    decode_all_ways("b\r\n0123456789a\r\n0\r\n\r\n", 21, &d);
    ck_assert_int_eq(d.result, CSGI_HTTP__CHUNK_DONE);
}
END_TEST

START_TEST(test_chunked_limits)
{
    static decoded d;
    static char in[12000];
    size_t n;

    /* 2^60 is the largest chunk size */
    csgi_http__chunked decoder;
    csgi_http__error error;
    size_t consumed;
    csgi_http__chunked_init(&decoder);
    ck_assert_int_eq(
        csgi_http__chunked_decode(&decoder, "1000000000000000\r\n", 18, &consumed, &error),
        CSGI_HTTP__CHUNK_FRAMING);
    ck_assert_uint_eq(decoder.remaining, (uint64_t)1 << 60);

    /* size line: 4096 bytes pass, 4097 do not */
    n = (size_t)snprintf(in, sizeof(in), "1;x=");
    memset(in + n, 'v', 4096 - n);
    n = 4096;
    n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\na\r\n0\r\n\r\n");
    decode_all_ways(in, n, &d);
    ck_assert_int_eq(d.result, CSGI_HTTP__CHUNK_DONE);

    n = (size_t)snprintf(in, sizeof(in), "1;x=");
    memset(in + n, 'v', 4097 - n);
    n = 4097;
    n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\na\r\n0\r\n\r\n");
    decode_all_ways(in, n, &d);
    ck_assert_int_eq(d.result, CSGI_HTTP__CHUNK_ERROR);
    ck_assert_int_eq(d.status, 400);
    ck_assert_str_eq(d.reason, "chunk size line too long");

    /* leading zeros count towards the line too */
    memset(in, '0', 5000);
    memcpy(in + 5000, "1\r\na\r\n0\r\n\r\n", 11);
    decode_all_ways(in, 5011, &d);
    ck_assert_int_eq(d.status, 400);
    ck_assert_str_eq(d.reason, "chunk size line too long");

    /* trailer section: 8192 bytes pass, 8193 do not */
    for (size_t total = 8192; total <= 8193; total++) {
        n = (size_t)snprintf(in, sizeof(in), "0\r\nX: ");
        size_t value = total - 3 - 2; /* "X: " and CRLF */
        memset(in + n, 'v', value);
        n += value;
        n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n\r\n");
        decode_all_ways(in, n, &d);
        if (total == 8192) {
            ck_assert_int_eq(d.result, CSGI_HTTP__CHUNK_DONE);
            ck_assert_uint_eq(d.trailer_len, 8192);
        } else {
            ck_assert_int_eq(d.result, CSGI_HTTP__CHUNK_ERROR);
            ck_assert_int_eq(d.status, 431);
            ck_assert_str_eq(d.reason, "trailer section too large");
        }
    }

    /* the limits can be changed after init */
    csgi_http__chunked_init(&decoder);
    decoder.max_trailer = 4;
    ck_assert_int_eq(
        csgi_http__chunked_decode(&decoder, "0\r\nX: 1\r\n\r\n", 11, &consumed, &error),
        CSGI_HTTP__CHUNK_FRAMING);
    ck_assert_int_eq(csgi_http__chunked_decode(&decoder, "X: 1\r\n\r\n", 8, &consumed, &error),
                     CSGI_HTTP__CHUNK_ERROR);
    ck_assert_int_eq(error.status, 431);
}
END_TEST

static Suite *parser_suite(void)
{
    Suite *suite = suite_create("parser");

    TCase *tc = tcase_create("head");
    tcase_add_test(tc, test_simple_get);
    tcase_add_test(tc, test_post_content_length);
    tcase_add_test(tc, test_transfer_encoding_chunked);
    tcase_add_loop_test(tc, test_targets, 0, sizeof(target_cases) / sizeof(target_cases[0]));
    tcase_add_test(tc, test_versions);
    tcase_add_loop_test(tc, test_keep_alive, 0,
                        sizeof(keep_alive_cases) / sizeof(keep_alive_cases[0]));
    tcase_add_loop_test(tc, test_expect, 0, sizeof(expect_cases) / sizeof(expect_cases[0]));
    tcase_add_loop_test(tc, test_refusals, 0, sizeof(refusals) / sizeof(refusals[0]));
    tcase_add_loop_test(tc, test_hosts, 0, sizeof(host_cases) / sizeof(host_cases[0]));
    tcase_add_test(tc, test_parse_head_checks_bytes_itself);
    tcase_add_test(tc, test_parse_head_capacity);
    suite_add_tcase(suite, tc);

    tc = tcase_create("scanner");
    tcase_add_test(tc, test_scan_split_invariant);
    tcase_add_test(tc, test_scan_byte_at_a_time);
    tcase_add_test(tc, test_scan_pipelined);
    tcase_add_test(tc, test_scan_request_line_without_version);
    tcase_add_test(tc, test_scan_leading_empty_lines);
    tcase_add_test(tc, test_scan_error_is_sticky);
    tcase_add_test(tc, test_limit_request_line);
    tcase_add_test(tc, test_limit_header_line);
    tcase_add_test(tc, test_limit_head);
    tcase_add_test(tc, test_limit_header_count);
    suite_add_tcase(suite, tc);

    tc = tcase_create("fields");
    tcase_add_test(tc, test_parse_fields);
    tcase_add_test(tc, test_token_equals);
    suite_add_tcase(suite, tc);

    tc = tcase_create("chunked");
    tcase_add_loop_test(tc, test_chunked_good, 0, sizeof(chunked_good) / sizeof(chunked_good[0]));
    tcase_add_test(tc, test_chunked_large_chunks);
    tcase_add_test(tc, test_chunked_sequence);
    tcase_add_loop_test(tc, test_chunked_bad, 0, sizeof(chunked_bad) / sizeof(chunked_bad[0]));
    tcase_add_test(tc, test_chunked_limits);
    tcase_add_test(tc, test_chunked_body_limit);
    suite_add_tcase(suite, tc);

    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(parser_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
