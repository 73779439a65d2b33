/*
 * Tests of the environ (include/csgi/environ.h, src/gateway/environ.c).
 *
 * Every environ is built from a real request head: the request string goes
 * through the scanner and the head parser (on a heap copy of its exact
 * size, so AddressSanitizer sees any read past it), then into
 * csgi_environ__new() with a source whose peer is an IPv4, IPv6 or Unix
 * socket and whose input provider reads a body string along a script of
 * steps (at most n bytes, CSGI_EAGAIN, an error), as the engine's body
 * arrives piecemeal.
 */
#include "common/arena.h"
#include "common/chartab.h"
#include "gateway/environ_private.h"
#include "http/engine.h"
#include "http/parser.h"

#include <csgi/common.h>
#include <csgi/environ.h>

#include "test_sockaddr.h"

#include <check.h>

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* From environ.c, until environ_private.h declares them. */
int csgi_environ__set_value(csgi_environ *environ, const char *key, int kind, void *pointer,
                            csgi_destroy_fn destroy);
void *csgi_environ__get_value(csgi_environ *environ, const char *key, int kind);

#define LIT(s)       s, sizeof(s) - 1
#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

#define MAX_FIELDS 64
#define MAX_LOGS   8
#define LOG_SIZE   2048

/* ---- The fixture ----------------------------------------------------------- */

typedef enum peer_kind { PEER_INET, PEER_INET6, PEER_UNIX } peer_kind;

/* A body the input provider hands out along a script: each step is "at
   most n bytes" (n > 0) or a value to return (CSGI_EAGAIN, an error); once
   the script is done, the rest of the bytes in any sizes, then `final`
   (0 for the end, or an error). */
typedef struct body {
    const char *bytes;
    size_t len;
    size_t offset;
    const long *steps;
    size_t step_count;
    size_t step;
    long final;
    unsigned reads;           /* calls to read */
    unsigned reads_after_end; /* calls after it returned final */
    int ended;
} body;

typedef struct fixture {
    csgi_arena arena;
    char *bytes;
    csgi_http__scanner scanner;
    csgi_http__header headers[MAX_FIELDS];
    csgi_http__head head;
    struct sockaddr_storage peer;
    struct sockaddr_storage local;
    csgi_input__provider provider;
    body body;
    csgi_environ__source source;
    char logs[MAX_LOGS][LOG_SIZE];
    int levels[MAX_LOGS]; /* CSGI_LOG__* of each line */
    size_t log_count;
    csgi_environ *environ;
} fixture;

static long body_read(void *context, void *buf, size_t len)
{
    body *b = context;
    size_t limit = SIZE_MAX;

    ck_assert_uint_gt(len, 0);
    b->reads++;
    if (b->ended) {
        b->reads_after_end++;
        return b->final;
    }
    if (b->step < b->step_count) {
        long step = b->steps[b->step++];
        if (step < 0)
            return step;
        limit = (size_t)step;
    }
    size_t left = b->len - b->offset;
    if (left == 0) {
        b->ended = 1;
        return b->final;
    }
    size_t n = left < len ? left : len;
    if (n > limit)
        n = limit;
    memcpy(buf, b->bytes + b->offset, n);
    b->offset += n;
    return (long)n;
}

static size_t body_buffered(void *context)
{
    const body *b = context;
    size_t left = b->len - b->offset;
    if (b->step < b->step_count) {
        long step = b->steps[b->step];
        if (step < 0)
            return 0;
        if ((size_t)step < left)
            return (size_t)step;
    }
    return left;
}

static void capture_log(void *context, int level, const char *line)
{
    fixture *f = context;
    ck_assert_ptr_null(strchr(line, '\n'));
    if (f->log_count < MAX_LOGS) {
        ck_assert_uint_lt(strlen(line), LOG_SIZE);
        strcpy(f->logs[f->log_count], line);
        f->levels[f->log_count] = level;
    }
    f->log_count++;
}

static void set_unix(struct sockaddr_storage *storage)
{
    struct sockaddr_un *un = (struct sockaddr_un *)storage;
    memset(storage, 0, sizeof(*storage));
    un->sun_family = AF_UNIX;
    strcpy(un->sun_path, "/run/csgi.sock");
}

/* Parse request (which must be a complete, valid head) and prepare a source
   with an empty body; the environ is not created yet. */
static fixture *fixture_make(const char *request, peer_kind peer)
{
    static const csgi_http__limits limits = CSGI_HTTP__LIMITS_DEFAULT;
    csgi_http__error error = {0, NULL};
    size_t len = strlen(request);
    fixture *f = calloc(1, sizeof(*f));
    ck_assert_ptr_nonnull(f);

    f->bytes = malloc(len);
    ck_assert_ptr_nonnull(f->bytes);
    memcpy(f->bytes, request, len);
    csgi_http__scanner_init(&f->scanner);
    ck_assert_int_eq(csgi_http__scan(&f->scanner, f->bytes, len, &limits, &error),
                     CSGI_HTTP__SCAN_DONE);
    ck_assert_uint_le(f->scanner.header_count, MAX_FIELDS);
    int status = csgi_http__parse_head(f->bytes + f->scanner.skipped,
                                       f->scanner.head_length - f->scanner.skipped, f->headers,
                                       MAX_FIELDS, &f->head, &error);
    ck_assert_msg(status == 0, "parse: %d %s", status, error.reason ? error.reason : "");

    switch (peer) {
    case PEER_INET:
        test_set_inet(&f->peer, "192.0.2.7", 40000);
        test_set_inet(&f->local, "10.0.0.1", 8080);
        break;
    case PEER_INET6:
        test_set_inet6(&f->peer, "2001:db8::7", 40001);
        test_set_inet6(&f->local, "::1", 8443);
        break;
    case PEER_UNIX:
        set_unix(&f->peer);
        set_unix(&f->local);
        break;
    }

    csgi_arena__init(&f->arena, NULL);
    f->provider.read = body_read;
    f->provider.buffered = body_buffered;
    f->body.bytes = "";
    f->source.head = &f->head;
    f->source.peer = (const struct sockaddr *)&f->peer;
    f->source.local = (const struct sockaddr *)&f->local;
    f->source.url_scheme = "http";
    f->source.multithread = 0;
    f->source.multiprocess = 1;
    f->source.input = &f->provider;
    f->source.input_context = &f->body;
    f->source.log = capture_log;
    f->source.log_context = f;
    return f;
}

static void fixture_body(fixture *f, const char *bytes, const long *steps, size_t step_count,
                         long final)
{
    f->body.bytes = bytes;
    f->body.len = strlen(bytes);
    f->body.steps = steps;
    f->body.step_count = step_count;
    f->body.final = final;
}

static csgi_environ *fixture_environ(fixture *f)
{
    f->environ = csgi_environ__new(&f->arena, &f->source);
    ck_assert_ptr_nonnull(f->environ);
    return f->environ;
}

static fixture *fixture_open(const char *request, peer_kind peer)
{
    fixture *f = fixture_make(request, peer);
    fixture_environ(f);
    return f;
}

/* Like fixture_open, with a body read along a script. */
static fixture *fixture_open_body(const char *request, const char *bytes, const long *steps,
                                  size_t step_count, long final)
{
    fixture *f = fixture_make(request, PEER_INET);
    fixture_body(f, bytes, steps, step_count, final);
    fixture_environ(f);
    return f;
}

/* The request ends: deferred callbacks and destructors run. */
static void fixture_free(fixture *f)
{
    csgi_arena__clear(&f->arena);
    free(f->bytes);
    free(f);
}

/* Build every server key now, as iterating does (what a read of a key the
   parsed head answers does not). */
static void fixture_build(fixture *f)
{
    size_t cursor = 0;
    const char *key;
    ck_assert_int_eq(csgi_environ_next(f->environ, &cursor, &key, NULL), 1);
}

/* ---- Failing allocations --------------------------------------------------- */

/* Counts csgi__malloc calls; fails them all while failing is set. */
static int failing;
static unsigned mallocs;

static void *test_malloc(size_t size)
{
    mallocs++;
    return failing ? NULL : malloc(size);
}

static void *test_realloc(void *ptr, size_t size)
{
    return failing ? NULL : realloc(ptr, size);
}

static void allocator_install(int fail)
{
    failing = fail;
    mallocs = 0;
    ck_assert_int_eq(csgi_set_allocator(test_malloc, test_realloc, free), 0);
}

static void allocator_restore(void)
{
    failing = 0;
    ck_assert_int_eq(csgi_set_allocator(NULL, NULL, NULL), 0);
}

/* Use up the arena's current chunk, so that its next allocation calls the
   allocator (and fails, once it fails). */
static void arena_exhaust(csgi_arena *arena)
{
    while (arena->end - arena->cursor >= 512)
        ck_assert_ptr_nonnull(csgi_arena__alloc(arena, 512));
    while (arena->cursor < arena->end)
        ck_assert_ptr_nonnull(csgi_arena__alloc(arena, 1));
}

/* ---- Destructors ----------------------------------------------------------- */

typedef struct tracked {
    int destroyed;
} tracked;

static void tracked_destroy(void *pointer)
{
    ((tracked *)pointer)->destroyed++;
}

/* ---- Helpers --------------------------------------------------------------- */

#define ck_assert_key(environ, key, expected) \
    ck_assert_str_eq(csgi_environ_get((environ), (key)), (expected))

#define ck_assert_no_key(environ, key) \
    ck_assert_int_eq(csgi_environ_kind((environ), (key)), CSGI_VALUE_NONE)

static const char *const CGI_KEYS[] = {
    "REQUEST_METHOD", "SCRIPT_NAME",     "PATH_INFO",   "QUERY_STRING", "SERVER_NAME",
    "SERVER_PORT",    "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT",  "REQUEST_URI"};

/* ---- CGI keys -------------------------------------------------------------- */

START_TEST(test_basic_get)
{
    fixture *f = fixture_open("GET /hello/world?x=1 HTTP/1.1\r\nHost: example.com:8000\r\n"
                              "User-Agent: test/1.0\r\n\r\n",
                              PEER_INET);
    csgi_environ *e = f->environ;

    ck_assert_key(e, "REQUEST_METHOD", "GET");
    ck_assert_key(e, "SCRIPT_NAME", "");
    ck_assert_key(e, "PATH_INFO", "/hello/world");
    ck_assert_key(e, "QUERY_STRING", "x=1");
    ck_assert_key(e, "SERVER_NAME", "example.com");
    ck_assert_key(e, "SERVER_PORT", "8000");
    ck_assert_key(e, "SERVER_PROTOCOL", "HTTP/1.1");
    ck_assert_key(e, "REMOTE_ADDR", "192.0.2.7");
    ck_assert_key(e, "REMOTE_PORT", "40000");
    ck_assert_key(e, "REQUEST_URI", "/hello/world?x=1");
    ck_assert_key(e, "HTTP_HOST", "example.com:8000");
    ck_assert_key(e, "HTTP_USER_AGENT", "test/1.0");
    ck_assert_no_key(e, "CONTENT_TYPE");
    ck_assert_no_key(e, "CONTENT_LENGTH");
    for (size_t i = 0; i < COUNT(CGI_KEYS); i++)
        ck_assert_int_eq(csgi_environ_kind(e, CGI_KEYS[i]), CSGI_VALUE_STRING);
    ck_assert_uint_eq(f->log_count, 0);
    fixture_free(f);
}
END_TEST

static const struct server_case {
    const char *request;
    const char *scheme;
    const char *name;
    const char *port;
} server_cases[] = {
    {"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "http", "example.com", "80"},
    {"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "https", "example.com", "443"},
    {"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", "https", "example.com", "8080"},
    {"GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n", "http", "example.com", "80"},
    {"GET / HTTP/1.1\r\nHost: Example.COM\r\n\r\n", "http", "Example.COM", "80"},
    {"GET / HTTP/1.1\r\nHost: 192.0.2.1:81\r\n\r\n", "http", "192.0.2.1", "81"},
    {"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", "http", "[::1]", "8080"},
    {"GET / HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n", "https", "[2001:db8::1]", "443"},
    {"GET / HTTP/1.0\r\nHost: old.example\r\n\r\n", "http", "old.example", "80"},
    /* The target's authority wins over Host (RFC 9112 3.2.2). */
    {"GET http://other.org:81/x HTTP/1.1\r\nHost: example.com\r\n\r\n", "http", "other.org", "81"},
    {"GET https://other.org/x HTTP/1.1\r\nHost: example.com\r\n\r\n", "https", "other.org", "443"},
    {"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "http", "example.com",
     "443"},
};

START_TEST(test_server_from_host)
{
    const struct server_case *c = &server_cases[_i];
    fixture *f = fixture_make(c->request, PEER_INET);
    f->source.url_scheme = c->scheme;
    csgi_environ *e = fixture_environ(f);
    ck_assert_key(e, "SERVER_NAME", c->name);
    ck_assert_key(e, "SERVER_PORT", c->port);
    ck_assert_key(e, "csgi.url_scheme", c->scheme);
    fixture_free(f);
}
END_TEST

START_TEST(test_server_from_listener)
{
    static const struct {
        peer_kind peer;
        const char *name;
        const char *port;
    } cases[] = {
        {PEER_INET, "10.0.0.1", "8080"},
        {PEER_INET6, "[::1]", "8443"},
        {PEER_UNIX, "localhost", ""},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        /* HTTP/1.0 without Host */
        fixture *f = fixture_open("GET / HTTP/1.0\r\n\r\n", cases[i].peer);
        ck_assert_key(f->environ, "SERVER_NAME", cases[i].name);
        ck_assert_key(f->environ, "SERVER_PORT", cases[i].port);
        ck_assert_no_key(f->environ, "HTTP_HOST");
        fixture_free(f);

        /* An empty Host (allowed when the URI has no authority) */
        f = fixture_open("GET / HTTP/1.1\r\nHost:\r\n\r\n", cases[i].peer);
        ck_assert_key(f->environ, "SERVER_NAME", cases[i].name);
        ck_assert_key(f->environ, "SERVER_PORT", cases[i].port);
        ck_assert_key(f->environ, "HTTP_HOST", "");
        fixture_free(f);
    }
}
END_TEST

START_TEST(test_remote_address)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    ck_assert_key(f->environ, "REMOTE_ADDR", "192.0.2.7");
    ck_assert_key(f->environ, "REMOTE_PORT", "40000");
    fixture_free(f);

    f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET6);
    ck_assert_key(f->environ, "REMOTE_ADDR", "2001:db8::7");
    ck_assert_key(f->environ, "REMOTE_PORT", "40001");
    fixture_free(f);

    f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_UNIX);
    ck_assert_key(f->environ, "REMOTE_ADDR", "");
    ck_assert_key(f->environ, "REMOTE_PORT", "");
    fixture_free(f);

    /* Port 0 and 65535 format as numbers too. */
    f = fixture_make("GET / HTTP/1.0\r\n\r\n", PEER_INET);
    test_set_inet(&f->peer, "127.0.0.1", 65535);
    test_set_inet(&f->local, "0.0.0.0", 0);
    fixture_environ(f);
    ck_assert_key(f->environ, "REMOTE_ADDR", "127.0.0.1");
    ck_assert_key(f->environ, "REMOTE_PORT", "65535");
    ck_assert_key(f->environ, "SERVER_NAME", "0.0.0.0");
    ck_assert_key(f->environ, "SERVER_PORT", "0");
    fixture_free(f);
}
END_TEST

START_TEST(test_server_protocol)
{
    fixture *f = fixture_open("GET / HTTP/1.0\r\n\r\n", PEER_INET);
    ck_assert_key(f->environ, "SERVER_PROTOCOL", "HTTP/1.0");
    fixture_free(f);
    f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    ck_assert_key(f->environ, "SERVER_PROTOCOL", "HTTP/1.1");
    fixture_free(f);
}
END_TEST

static const struct target_case {
    const char *request;
    const char *path; /* PATH_INFO */
    size_t path_len;
    const char *query;
    const char *uri;
} target_cases[] = {
    {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", LIT("/"), "", "/"},
    {"GET /p HTTP/1.1\r\nHost: h\r\n\r\n", LIT("/p"), "", "/p"},
    {"GET /p? HTTP/1.1\r\nHost: h\r\n\r\n", LIT("/p"), "", "/p?"},
    {"GET /p?a=1&b=%20+c HTTP/1.1\r\nHost: h\r\n\r\n", LIT("/p"), "a=1&b=%20+c", "/p?a=1&b=%20+c"},
    {"GET /a%2Fb%2fc HTTP/1.1\r\nHost: h\r\n\r\n", LIT("/a/b/c"), "", "/a%2Fb%2fc"},
    {"GET /%41%62%7e HTTP/1.1\r\nHost: h\r\n\r\n", LIT("/Ab~"), "", "/%41%62%7e"},
    {"GET /a+b HTTP/1.1\r\nHost: h\r\n\r\n", LIT("/a+b"), "", "/a+b"},
    {"GET /caf\xc3\xa9/%C3%A9 HTTP/1.1\r\nHost: h\r\n\r\n", LIT("/caf\xc3\xa9/\xc3\xa9"), "",
     "/caf\xc3\xa9/%C3%A9"},
    {"GET /%zz%4%%2 HTTP/1.1\r\nHost: h\r\n\r\n", LIT("/%zz%4%%2"), "", "/%zz%4%%2"},
    {"GET /a%00b HTTP/1.1\r\nHost: h\r\n\r\n", LIT("/a\0b"), "", "/a%00b"},
    {"GET /a/%2e%2e/b HTTP/1.1\r\nHost: h\r\n\r\n", LIT("/a/../b"), "", "/a/%2e%2e/b"},
    {"GET http://h/x%20y?q HTTP/1.1\r\nHost: h\r\n\r\n", LIT("/x y"), "q", "http://h/x%20y?q"},
    {"GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", LIT("/"), "", "http://h"},
    {"GET http://h?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", LIT("/"), "q=1", "http://h?q=1"},
    {"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", LIT("*"), "", "*"},
    {"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", LIT(""), "", "h:443"},
};

START_TEST(test_targets)
{
    const struct target_case *c = &target_cases[_i];
    fixture *f = fixture_open(c->request, PEER_INET);
    size_t len = 12345;
    const char *path = csgi_environ_get_n(f->environ, "PATH_INFO", &len);
    ck_assert_ptr_nonnull(path);
    ck_assert_uint_eq(len, c->path_len);
    ck_assert_mem_eq(path, c->path, c->path_len);
    ck_assert_int_eq(path[len], '\0');
    ck_assert_key(f->environ, "QUERY_STRING", c->query);
    ck_assert_key(f->environ, "REQUEST_URI", c->uri);
    ck_assert_key(f->environ, "SCRIPT_NAME", "");
    fixture_free(f);
}
END_TEST

START_TEST(test_content_headers)
{
    fixture *f = fixture_open("POST /form HTTP/1.1\r\nHost: h\r\n"
                              "Content-Type: application/x-www-form-urlencoded\r\n"
                              "Content-Length: 7\r\n\r\n",
                              PEER_INET);
    ck_assert_key(f->environ, "CONTENT_TYPE", "application/x-www-form-urlencoded");
    ck_assert_key(f->environ, "CONTENT_LENGTH", "7");
    ck_assert_no_key(f->environ, "HTTP_CONTENT_TYPE");
    ck_assert_no_key(f->environ, "HTTP_CONTENT_LENGTH");
    fixture_free(f);

    /* Any case; a zero length is still sent as is. */
    f = fixture_open("POST / HTTP/1.1\r\nhost: h\r\ncontent-LENGTH: 0\r\n"
                     "CONTENT-TYPE: text/plain\r\n\r\n",
                     PEER_INET);
    ck_assert_key(f->environ, "CONTENT_LENGTH", "0");
    ck_assert_key(f->environ, "CONTENT_TYPE", "text/plain");
    ck_assert_no_key(f->environ, "HTTP_CONTENT_LENGTH");
    ck_assert_no_key(f->environ, "HTTP_CONTENT_TYPE");
    fixture_free(f);

    /* Chunked: no CONTENT_LENGTH at all. */
    f = fixture_open("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                     "Content-Type: text/plain\r\n\r\n",
                     PEER_INET);
    ck_assert_no_key(f->environ, "CONTENT_LENGTH");
    ck_assert_no_key(f->environ, "HTTP_CONTENT_LENGTH");
    ck_assert_key(f->environ, "CONTENT_TYPE", "text/plain");
    ck_assert_key(f->environ, "HTTP_TRANSFER_ENCODING", "chunked");
    fixture_free(f);
}
END_TEST

START_TEST(test_http_keys)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\nx-MiXed-Case: v\r\n"
                              "Accept-Language: en, fr;q=0.5\r\nX-Empty:\r\nX-Spaces:   a  b  \r\n"
                              "X-Bytes: caf\xc3\xa9\x80\r\nX.Dot: d\r\n\r\n",
                              PEER_INET);
    csgi_environ *e = f->environ;
    ck_assert_key(e, "HTTP_HOST", "h");
    ck_assert_key(e, "HTTP_X_MIXED_CASE", "v");
    ck_assert_key(e, "HTTP_ACCEPT_LANGUAGE", "en, fr;q=0.5");
    ck_assert_key(e, "HTTP_X_EMPTY", "");
    ck_assert_key(e, "HTTP_X_SPACES", "a  b");
    ck_assert_key(e, "HTTP_X_BYTES", "caf\xc3\xa9\x80");
    ck_assert_key(e, "HTTP_X.DOT", "d");
    /* Keys are case-sensitive, as in PEP 3333. */
    ck_assert_no_key(e, "http_host");
    ck_assert_no_key(e, "HTTP_X-MIXED-CASE");
    fixture_free(f);
}
END_TEST

START_TEST(test_repeated_headers)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nX-B: 1\r\n"
                              "accept: b\r\nCookie: a=1\r\nACCEPT: c\r\ncookie: b=2; c=3\r\n"
                              "X-E: \r\nX-E: e\r\n\r\n",
                              PEER_INET);
    csgi_environ *e = f->environ;
    ck_assert_key(e, "HTTP_ACCEPT", "a, b, c");
    ck_assert_key(e, "HTTP_COOKIE", "a=1; b=2; c=3");
    ck_assert_key(e, "HTTP_X_B", "1");
    ck_assert_key(e, "HTTP_X_E", ", e");

    /* One key per name, where the name first appeared. */
    static const char *const expected[] = {"HTTP_HOST", "HTTP_ACCEPT", "HTTP_X_B", "HTTP_COOKIE",
                                           "HTTP_X_E"};
    size_t cursor = 0, n = 0;
    const char *key;
    while (csgi_environ_next(e, &cursor, &key, NULL)) {
        if (strncmp(key, "HTTP_", 5) != 0)
            continue;
        ck_assert_uint_lt(n, COUNT(expected));
        ck_assert_str_eq(key, expected[n]);
        n++;
    }
    ck_assert_uint_eq(n, COUNT(expected));
    fixture_free(f);
}
END_TEST

START_TEST(test_underscore_headers)
{
    fixture *f = fixture_open("GET /p?secret=1 HTTP/1.1\r\nHost: h\r\nX-Auth_Token: evil\r\n"
                              "X-Auth-Token: good\r\n\r\n",
                              PEER_INET);
    ck_assert_uint_eq(f->log_count, 0); /* nothing happens before a key is read */
    ck_assert_key(f->environ, "HTTP_X_AUTH_TOKEN", "good");
    ck_assert_uint_eq(f->log_count, 1);
    ck_assert_str_eq(f->logs[0], "GET /p (client 192.0.2.7:40000): dropped header X-Auth_Token: "
                                 "underscores are not allowed");
    /* The client's doing, not the application's: a warning. */
    ck_assert_int_eq(f->levels[0], CSGI_LOG__WARN);
    /* Once per request. */
    ck_assert_key(f->environ, "HTTP_X_AUTH_TOKEN", "good");
    ck_assert_int_eq(csgi_environ_set(f->environ, "k", "v"), 0);
    ck_assert_uint_eq(f->log_count, 1);
    fixture_free(f);

    /* Dropped, even alone, and several make one line. */
    f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\nX-Auth_Token: evil\r\nX_A: 1\r\n"
                     "x_a: 2\r\n\r\n",
                     PEER_INET6);
    ck_assert_no_key(f->environ, "HTTP_X_AUTH_TOKEN");
    ck_assert_no_key(f->environ, "HTTP_X_A");
    size_t cursor = 0;
    const char *key;
    while (csgi_environ_next(f->environ, &cursor, &key, NULL))
        ck_assert_ptr_null(strchr(key, '-'));
    ck_assert_uint_eq(f->log_count, 1);
    ck_assert_str_eq(f->logs[0], "GET / (client [2001:db8::7]:40001): dropped header "
                                 "X-Auth_Token (and 2 more): underscores are not allowed");
    fixture_free(f);

    /* A Content_Type is not a Content-Type. */
    f = fixture_open("POST / HTTP/1.1\r\nHost: h\r\nContent_Type: text/evil\r\n"
                     "Content-Length: 0\r\n\r\n",
                     PEER_INET);
    ck_assert_no_key(f->environ, "CONTENT_TYPE");
    ck_assert_no_key(f->environ, "HTTP_CONTENT_TYPE");
    ck_assert_key(f->environ, "CONTENT_LENGTH", "0");
    fixture_free(f);
}
END_TEST

START_TEST(test_gateway_keys)
{
    fixture *f = fixture_make("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    f->source.url_scheme = "https";
    f->source.multithread = 1;
    f->source.multiprocess = 0;
    csgi_environ *e = fixture_environ(f);
    int64_t value = -1;

    ck_assert_key(e, "csgi.version", "1.0");
    ck_assert_key(e, "csgi.url_scheme", "https");
    ck_assert_int_eq(csgi_environ_kind(e, "csgi.input"), CSGI_VALUE_POINTER);
    ck_assert_ptr_eq(csgi_environ_get_pointer(e, "csgi.input"), csgi_environ_input(e));
    ck_assert_int_eq(csgi_environ_kind(e, "csgi.errors"), CSGI_VALUE_POINTER);
    ck_assert_ptr_eq(csgi_environ_get_pointer(e, "csgi.errors"), e);
    ck_assert_int_eq(csgi_environ_get_int(e, "csgi.multithread", &value), 0);
    ck_assert_int_eq(value, 1);
    ck_assert_int_eq(csgi_environ_get_int(e, "csgi.multiprocess", &value), 0);
    ck_assert_int_eq(value, 0);
    ck_assert_int_eq(csgi_environ_get_int(e, "csgi.run_once", &value), 0);
    ck_assert_int_eq(value, 0);
    ck_assert_no_key(e, "wsgi.version");
    fixture_free(f);

    /* Booleans are 0 or 1; the scheme defaults to http. */
    f = fixture_make("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    f->source.url_scheme = NULL;
    f->source.multithread = 4;
    f->source.multiprocess = 2;
    e = fixture_environ(f);
    ck_assert_key(e, "csgi.url_scheme", "http");
    ck_assert_key(e, "SERVER_PORT", "80");
    ck_assert_int_eq(csgi_environ_get_int(e, "csgi.multithread", &value), 0);
    ck_assert_int_eq(value, 1);
    ck_assert_int_eq(csgi_environ_get_int(e, "csgi.multiprocess", &value), 0);
    ck_assert_int_eq(value, 1);
    fixture_free(f);
}
END_TEST

/* ---- Laziness and allocations ---------------------------------------------- */

START_TEST(test_lazy)
{
    fixture *f = fixture_make("GET / HTTP/1.1\r\nHost: h\r\nX_Dropped: 1\r\n\r\n", PEER_INET);
    size_t before = f->arena.allocated;
    csgi_environ *e = fixture_environ(f);
    size_t environ_bytes = f->arena.allocated - before;
    ck_assert_uint_gt(environ_bytes, 0);
    ck_assert_uint_le(environ_bytes, 512);
    ck_assert_uint_eq(f->log_count, 0);

    /* The environ's own memory functions do not materialise it. */
    ck_assert_ptr_nonnull(csgi_environ_input(e));
    csgi_environ_log(e, "x");
    ck_assert_uint_eq(f->log_count, 1);
    ck_assert_uint_eq(f->arena.allocated - before, environ_bytes);

    /* Neither do the keys the server never sets, nor the request line's. */
    ck_assert_int_eq(csgi_environ_kind(e, "nothing"), CSGI_VALUE_NONE);
    ck_assert_key(e, "PATH_INFO", "/");
    ck_assert_key(e, "REQUEST_METHOD", "GET");
    ck_assert_uint_eq(f->log_count, 1);

    /* The first access to another server key does, once. */
    ck_assert_int_eq(csgi_environ_kind(e, "SERVER_NAME"), CSGI_VALUE_STRING);
    size_t materialised = f->arena.allocated;
    ck_assert_uint_gt(materialised, before + environ_bytes);
    ck_assert_uint_eq(f->log_count, 2);
    ck_assert_key(e, "HTTP_HOST", "h");
    size_t cursor = 0;
    const char *key;
    while (csgi_environ_next(e, &cursor, &key, NULL))
        ;
    ck_assert_uint_eq(f->arena.allocated, materialised);
    ck_assert_uint_eq(f->log_count, 2);
    fixture_free(f);
}
END_TEST

/* An HTTP_ key read before anything else is answered from the head, and
   the answer is the one the full build gives: from a head in bytes of its
   own (the engine's, own_bytes: the value itself, given a NUL) and from
   one in borrowed bytes (copied). */
START_TEST(test_header_fast_path)
{
    int own = _i;
    static const char *const requests[] = {
        "GET / HTTP/1.1\r\nHost: h\r\nX-Auth-Token: open-sesame\r\nAccept: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nx-auth-token: one\r\nX-Auth-Token: two\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-Auth_Token: evil\r\nX-Auth-Token: good\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Type: text/x\r\nContent-Length: 0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\n\r\n",
        /* Names around a word's length (the match goes eight bytes at a
           time), in odd cases, with every non-letter tchar kind. */
        "GET / HTTP/1.1\r\nHost: h\r\nAbcdefg: v7\r\nAbCdEfGh: value-of-8\r\n"
        "x-Y-zAbCd: 0123456789abcdef\r\nA1-b2`C3|d4~e5^F: seventeen-bytes!!\r\n"
        "xxxxxxxx-YYYYYYYYYYYYYYY: long\r\n\r\n",
        /* more fields than the short path takes */
        "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\n"
        "G: 7\r\nH: 8\r\nI: 9\r\nJ: 10\r\nK: 11\r\nL: 12\r\nM: 13\r\nN: 14\r\nO: 15\r\n"
        "P: 16\r\nX-Auth-Token:  seventeenth \r\n\r\n",
    };
    static const char *const keys[] = {"HTTP_X_AUTH_TOKEN",
                                       "HTTP_HOST",
                                       "HTTP_ACCEPT",
                                       "HTTP_CONTENT_TYPE",
                                       "HTTP_CONTENT_LENGTH",
                                       "HTTP_X_EMPTY",
                                       "HTTP_x_auth_token",
                                       "HTTP_X-AUTH-TOKEN",
                                       "HTTP_MISSING",
                                       "HTTP_ABCDEFG",
                                       "HTTP_ABCDEFGH",
                                       "HTTP_ABCDEFGI",
                                       "HTTP_X_Y_ZABCD",
                                       "HTTP_X_Y_ZABCE",
                                       "HTTP_X_Y_YABCD",
                                       "HTTP_X-Y_ZABCD",
                                       "HTTP_A1_B2`C3|D4~E5^F",
                                       "HTTP_A1_B2@C3|D4~E5^F",
                                       "HTTP_A1_B2`C3|D4^E5^F",
                                       "HTTP_XXXXXXXX_YYYYYYYYYYYYYYY",
                                       "HTTP_XXXXXXXX_YYYYYYYYYYYYYYZ"};
    size_t found = 0;
    for (size_t r = 0; r < COUNT(requests); r++) {
        for (size_t k = 0; k < COUNT(keys); k++) {
            /* First read: possibly the fast path. */
            fixture *f = fixture_open(requests[r], PEER_INET);
            f->head.own_bytes = (unsigned)own;
            size_t fast_len = 0;
            const char *fast = csgi_environ_get_n(f->environ, keys[k], &fast_len);
            char *fast_copy = fast ? strndup(fast, fast_len) : NULL;
            if (fast)
                ck_assert_uint_eq(strlen(fast), fast_len);
            /* The full build, forced by iterating first. */
            fixture *g = fixture_open(requests[r], PEER_INET);
            fixture_build(g);
            size_t full_len = 0;
            const char *full = csgi_environ_get_n(g->environ, keys[k], &full_len);
            if (!full) {
                ck_assert_msg(!fast, "%s in request %zu: fast path found what the build does not",
                              keys[k], r);
            } else {
                found++;
                ck_assert_msg(fast != NULL, "%s in request %zu: fast path missed it", keys[k], r);
                ck_assert_uint_eq(fast_len, full_len);
                ck_assert_str_eq(fast_copy, full);
            }
            free(fast_copy);
            fixture_free(f);
            fixture_free(g);
        }
    }
    /* Host in each request, the token in four, Accept, Content-Type and
       Content-Length as CGI keys only, X-Empty, and the five long names. */
    ck_assert_uint_eq(found, 7 + 4 + 1 + 1 + 5);
    /* The fast path builds nothing: an auth filter's read stays cheap. In
       bytes of its own, the answer is the value where it was parsed. */
    fixture *f = fixture_open(requests[0], PEER_INET);
    f->head.own_bytes = (unsigned)own;
    size_t before = f->arena.allocated;
    ck_assert_key(f->environ, "HTTP_X_AUTH_TOKEN", "open-sesame");
    ck_assert_uint_lt(f->arena.allocated - before, 64);
    if (own) {
        ck_assert_uint_eq(f->arena.allocated, before);
        const char *token = csgi_environ_get(f->environ, "HTTP_X_AUTH_TOKEN");
        ck_assert(token > f->bytes && token < f->bytes + strlen(requests[0]));
    }
    fixture_free(f);
}
END_TEST

/* The request line's keys read before anything else are answered from the
   head, with what the full build gives, and the build keeps those strings. */
START_TEST(test_line_fast_path)
{
    static const char *const requests[] = {
        "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /v2/4f2a9c01/servers/42/action HTTP/1.1\r\nHost: h\r\n\r\n",
        /* Escapes, a '+' (not a space in a path), a query, an escape across
           the eight-byte words the decoder looks at. */
        "POST /a%20b/c+d/%E2%82%AC/0123456%2F/x?q=1&r=%20 HTTP/1.1\r\nHost: h\r\n\r\n",
        "PUT /trailing/slash/?= HTTP/1.0\r\n\r\n",
        "DELETE /%41%42%43%44%45%46%47%48%49 HTTP/1.1\r\nHost: h\r\n\r\n",
        "PROPFIND /dav/%zz%4 HTTP/1.1\r\nHost: h\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        "GET http://example.com/abs%2Fpath?x HTTP/1.1\r\nHost: other\r\n\r\n",
        "GET http://example.com HTTP/1.1\r\nHost: x\r\n\r\n",
        "HEAD /x? HTTP/1.1\r\nHost: h\r\nX_Dropped: 1\r\n\r\n",
    };
    static const char *const keys[] = {"REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO",
                                       "QUERY_STRING",   "REQUEST_URI", "SERVER_PROTOCOL"};
    for (size_t r = 0; r < COUNT(requests); r++) {
        fixture *f = fixture_open(requests[r], PEER_INET);
        fixture *g = fixture_open(requests[r], PEER_INET);
        fixture_build(g);
        size_t before = f->arena.allocated;
        const char *fast[COUNT(keys)];
        size_t fast_len[COUNT(keys)];
        for (size_t k = 0; k < COUNT(keys); k++) {
            fast[k] = csgi_environ_get_n(f->environ, keys[k], &fast_len[k]);
            size_t full_len = 0;
            const char *full = csgi_environ_get_n(g->environ, keys[k], &full_len);
            ck_assert_msg(fast[k] && full, "%s in request %zu", keys[k], r);
            ck_assert_uint_eq(fast_len[k], full_len);
            ck_assert_mem_eq(fast[k], full, full_len + 1);
            /* A second read gives the same string. */
            ck_assert_ptr_eq(csgi_environ_get(f->environ, keys[k]), fast[k]);
        }
        /* Nothing was built: no dropped header was logged, little memory. */
        ck_assert_uint_eq(f->log_count, 0);
        ck_assert_uint_lt(f->arena.allocated - before, 256);
        /* The build gives the strings read before it. */
        fixture_build(f);
        for (size_t k = 0; k < COUNT(keys); k++)
            ck_assert_ptr_eq(csgi_environ_get(f->environ, keys[k]), fast[k]);
        fixture_free(f);
        fixture_free(g);
    }

    /* What the router reads, without building anything. */
    fixture *f =
        fixture_open("GET /v2/4f2a9c01/servers/42/action HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    size_t before = f->arena.allocated;
    size_t len = 0;
    ck_assert_key(f->environ, "REQUEST_METHOD", "GET");
    ck_assert_str_eq(csgi_environ_get_n(f->environ, "PATH_INFO", &len),
                     "/v2/4f2a9c01/servers/42/action");
    ck_assert_uint_eq(len, 30);
    ck_assert_uint_le(f->arena.allocated - before, 32);
    fixture_free(f);
}
END_TEST

/* The router's accessors give what csgi_environ_get_n() gives, before and
   after the build, and after middleware changed the keys. */
START_TEST(test_router_accessors)
{
    static const char *const requests[] = {
        "GET /v2/4f2a9c01/servers/42/action HTTP/1.1\r\nHost: h\r\n\r\n",
        "POST /a%20b/c+d/%E2%82%AC/%2F?q=1 HTTP/1.1\r\nHost: h\r\n\r\n",
        "PROPFIND / HTTP/1.1\r\nHost: h\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        "GET http://example.com/abs%2Fpath?x HTTP/1.1\r\nHost: other\r\n\r\n",
    };
    for (size_t r = 0; r < COUNT(requests); r++) {
        /* 0: nothing read; 1: PATH_INFO read first; 2: built; 3: keys set;
           4: keys removed. */
        for (int state = 0; state <= 4; state++) {
            fixture *f = fixture_open(requests[r], PEER_INET);
            csgi_environ *e = f->environ;
            if (state == 1)
                ck_assert_ptr_nonnull(csgi_environ_get(e, "PATH_INFO"));
            if (state == 2)
                fixture_build(f);
            if (state == 3) {
                ck_assert_int_eq(csgi_environ_set(e, "REQUEST_METHOD", "DELETE"), 0);
                ck_assert_int_eq(csgi_environ_set_n(e, "PATH_INFO", "/x\0y", 4), 0);
            }
            if (state == 4) {
                ck_assert_int_eq(csgi_environ_remove(e, "REQUEST_METHOD"), 0);
                ck_assert_int_eq(csgi_environ_set_int(e, "PATH_INFO", 1), 0);
            }
            size_t want_len = 0, len = 7, method_len = 0;
            const char *method = csgi_environ__request_method(e, &method_len);
            const char *want = csgi_environ_get_n(e, "REQUEST_METHOD", &want_len);
            ck_assert_ptr_eq(method, want);
            if (want)
                ck_assert_uint_eq(method_len, want_len);

            char *block = csgi_environ__path_info_block(e, 24, 9, &len);
            ck_assert_ptr_nonnull(block);
            want = csgi_environ_get_n(e, "PATH_INFO", &want_len);
            if (!want) {
                ck_assert_uint_eq(len, (size_t)-1);
                ck_assert_mem_eq(block + 24, "\0\0\0\0\0\0\0\0\0", 9);
            } else {
                ck_assert_uint_eq(len, want_len);
                ck_assert_mem_eq(block + 24, want, len);
                ck_assert_mem_eq(block + 24 + len, "\0\0\0\0\0\0\0\0\0", 9);
                ck_assert_ptr_ne(block + 24, want); /* a copy the caller may change */
            }
            fixture_free(f);
        }
    }
}
END_TEST

/* Keys the server never sets live in the environ before it is built; the
   build puts the server's keys in front of them, as if it had come first. */
START_TEST(test_keys_before_build)
{
    fixture *f = fixture_open("GET /p?q HTTP/1.1\r\nHost: h\r\nX_Dropped: 1\r\n\r\n", PEER_INET);
    csgi_environ *e = f->environ;
    tracked t = {0}, u = {0};
    int64_t value = 0;

    ck_assert_int_eq(csgi_environ_set(e, "app.first", "1"), 0);
    ck_assert_int_eq(csgi_environ_set_int(e, "app.removed", 2), 0);
    ck_assert_int_eq(csgi_environ_set_pointer(e, "csgi.routing_args", &t, tracked_destroy), 0);
    ck_assert_int_eq(csgi_environ_set_int(e, "csgi.requests", 3), 0);
    ck_assert_int_eq(csgi_environ_remove(e, "app.removed"), 0);
    ck_assert_int_eq(csgi_environ_remove(e, "app.removed"), CSGI_ENOTFOUND);
    ck_assert_key(e, "app.first", "1");
    ck_assert_ptr_eq(csgi_environ_get_pointer(e, "csgi.routing_args"), &t);
    ck_assert_int_eq(csgi_environ_get_int(e, "csgi.requests", &value), 0);
    ck_assert_int_eq(value, 3);
    ck_assert_int_eq(csgi_environ_kind(e, "app.removed"), CSGI_VALUE_NONE);
    ck_assert_int_eq(csgi_environ_kind(e, "REMOTE_USER"), CSGI_VALUE_NONE);
    ck_assert_key(e, "PATH_INFO", "/p");
    /* Nothing needed the server's keys yet. */
    ck_assert_uint_eq(f->log_count, 0);

    /* A gateway key's name is the server's: reading it builds. */
    ck_assert_int_eq(csgi_environ_get_int(e, "csgi.run_once", &value), 0);
    ck_assert_int_eq(value, 0);
    ck_assert_uint_eq(f->log_count, 1);

    /* The server's keys first, then those set before, in their order. */
    static const char *const tail[] = {"csgi.run_once", "app.first", "csgi.routing_args",
                                       "csgi.requests"};
    const char *seen[64];
    size_t n = 0, cursor = 0;
    const char *key;
    while (n < COUNT(seen) && csgi_environ_next(e, &cursor, &key, NULL))
        seen[n++] = key;
    ck_assert_uint_ge(n, COUNT(tail));
    ck_assert_str_eq(seen[0], "REQUEST_METHOD");
    for (size_t i = 0; i < COUNT(tail); i++)
        ck_assert_str_eq(seen[n - COUNT(tail) + i], tail[i]);

    /* They still work after the build; destructors run once. */
    ck_assert_int_eq(csgi_environ_set_pointer(e, "csgi.routing_args", &u, tracked_destroy), 0);
    ck_assert_int_eq(t.destroyed, 1);
    ck_assert_ptr_eq(csgi_environ_get_pointer(e, "csgi.routing_args"), &u);
    fixture_free(f);
    ck_assert_int_eq(t.destroyed, 1);
    ck_assert_int_eq(u.destroyed, 1);

    /* A key of csgi's own with static storage (the router's record): set
       without a copy before the build, replaced after it. */
    static const char routing_key[] = "csgi.routing_args";
    int first = 1, second = 2;
    f = fixture_open("GET /p HTTP/1.1\r\nHost: h\r\nX_Dropped: 1\r\n\r\n", PEER_INET);
    ck_assert_int_eq(
        csgi_environ__set_static_pointer(f->environ, routing_key, sizeof(routing_key) - 1, &first),
        0);
    ck_assert_ptr_eq(csgi_environ_get_pointer(f->environ, "csgi.routing_args"), &first);
    ck_assert_uint_eq(f->log_count, 0);
    fixture_build(f);
    ck_assert_uint_eq(f->log_count, 1);
    ck_assert_ptr_eq(csgi_environ_get_pointer(f->environ, "csgi.routing_args"), &first);
    ck_assert_int_eq(
        csgi_environ__set_static_pointer(f->environ, routing_key, sizeof(routing_key) - 1, &second),
        0);
    ck_assert_ptr_eq(csgi_environ_get_pointer(f->environ, "csgi.routing_args"), &second);
    size_t found = 0;
    cursor = 0;
    while (csgi_environ_next(f->environ, &cursor, &key, NULL))
        found += strcmp(key, "csgi.routing_args") == 0;
    ck_assert_uint_eq(found, 1);
    fixture_free(f);

    /* Setting or removing a server key before the build does not build:
       the entry shadows the server's, reads see it, and the build puts it
       where the server's key is. */
    f = fixture_open("GET /p HTTP/1.1\r\nHost: h\r\nX_Dropped: 1\r\n\r\n", PEER_INET);
    ck_assert_int_eq(csgi_environ_set(f->environ, "PATH_INFO", "/q"), 0);
    ck_assert_int_eq(csgi_environ_set(f->environ, "csgi.url_scheme", "https"), 0);
    ck_assert_int_eq(csgi_environ_remove(f->environ, "QUERY_STRING"), 0);
    ck_assert_int_eq(csgi_environ_remove(f->environ, "QUERY_STRING"), CSGI_ENOTFOUND);
    ck_assert_key(f->environ, "PATH_INFO", "/q");
    ck_assert_key(f->environ, "csgi.url_scheme", "https");
    ck_assert_key(f->environ, "REMOTE_ADDR", "192.0.2.7");
    ck_assert_no_key(f->environ, "QUERY_STRING");
    ck_assert_uint_eq(f->log_count, 0);
    /* The connection's address stands for REMOTE_ADDR until someone sets it. */
    fixture *g = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    ck_assert_ptr_eq(csgi_environ__peer(g->environ), g->source.peer);
    csgi_environ_set(g->environ, "mine", "1");
    ck_assert_ptr_eq(csgi_environ__peer(g->environ), g->source.peer);
    ck_assert_int_eq(csgi_environ_set(g->environ, "REMOTE_ADDR", "203.0.113.9"), 0);
    ck_assert_ptr_null(csgi_environ__peer(g->environ));
    fixture_free(g);
    g = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    fixture_build(g);
    ck_assert_ptr_null(csgi_environ__peer(g->environ));
    fixture_free(g);

    ck_assert_key(f->environ, "HTTP_HOST", "h"); /* a head with '_': only the build tells */
    ck_assert_uint_eq(f->log_count, 1);
    ck_assert_key(f->environ, "PATH_INFO", "/q");
    ck_assert_key(f->environ, "csgi.url_scheme", "https");
    ck_assert_no_key(f->environ, "QUERY_STRING");
    fixture_free(f);
}
END_TEST

/* Every key of e as "key=value" lines (strings) or "key:kind" lines, in
   the order of iteration. */
static void dump_environ(csgi_environ *e, char *out, size_t size)
{
    size_t cursor = 0, used = 0;
    const char *key;
    csgi_value_kind kind;
    out[0] = '\0';
    while (csgi_environ_next(e, &cursor, &key, &kind)) {
        int n = kind == CSGI_VALUE_STRING
                    ? snprintf(out + used, size - used, "%s=%s\n", key, csgi_environ_get(e, key))
                    : snprintf(out + used, size - used, "%s:%d\n", key, (int)kind);
        ck_assert(n > 0 && (size_t)n < size - used);
        used += (size_t)n;
    }
}

/* What one case does to an environ: set, remove, both orders, or strip
   identity headers and set some (auth_token's way). */
enum shadow_op {
    OP_SET,
    OP_REMOVE,
    OP_REMOVE_SET,
    OP_SET_REMOVE,
    OP_SET_STATIC,
    OP_STRIP,
    OP_COUNT
};

static const csgi_environ__key strip_keys[] = {
    {"HTTP_X_ROLES", 12}, {"HTTP_X_USER_ID", 14}, {"HTTP_X_PROJECT_ID", 17}}; /* by length */

static void shadow_apply(csgi_environ *e, const char *key, int op)
{
    switch (op) {
    case OP_SET: csgi_environ_set(e, key, "new"); break;
    case OP_REMOVE: csgi_environ_remove(e, key); break;
    case OP_REMOVE_SET:
        csgi_environ_remove(e, key);
        csgi_environ_set(e, key, "again");
        break;
    case OP_SET_REMOVE:
        csgi_environ_set(e, key, "new");
        csgi_environ_remove(e, key);
        break;
    case OP_SET_STATIC: /* removed first in some cases, set twice in all */
        if (key[0] == 'S')
            csgi_environ_remove(e, key);
        ck_assert_int_eq(csgi_environ__set_static(e, key, strlen(key), "static", 6), 0);
        ck_assert_int_eq(csgi_environ__set_static(e, key, strlen(key), "again", 5), 0);
        break;
    default:
        ck_assert_int_eq(csgi_environ__remove_keys(e, "HTTP_X_", strip_keys, 3), 0);
        ck_assert_int_eq(csgi_environ__append_borrowed(e, "HTTP_X_USER_ID", 14, "u1", 2), 0);
        {
            /* One of them removed (a tombstone) in some heads, not in others. */
            static const csgi_environ__key more[] = {{"HTTP_X_PROJECT_ID", 17},
                                                     {"HTTP_X_ROLES", 12}};
            static const char *const values[] = {"p1", "reader"};
            static const size_t lens[] = {2, 6};
            ck_assert_int_eq(csgi_environ__append_borrowed_many(e, more, values, lens, 2), 0);
        }
        break;
    }
}

START_TEST(test_get_headers)
{
    /* The one pass over the head answers what a read of each key would:
       absent, present, repeated (joined), shadowed by a set or a removal,
       in a head with a '_' name, after the build. */
    static const char *const heads[] = {
        "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: a\r\n"
        "x-forwarded-for: b\r\nContent-Type: t\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX_Dropped: 1\r\nX-Forwarded-Host: fh\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
    };
    static const csgi_environ__key keys[] = {
        {"HTTP_X_FORWARDED_PROTO", 22}, {"HTTP_X_FORWARDED_FOR", 20},
        {"HTTP_X_FORWARDED_HOST", 21},  {"HTTP_HOST", 9},
        {"HTTP_CONTENT_TYPE", 17},      {"HTTP_ABSENT", 11},
    };
    for (size_t h = 0; h < COUNT(heads); h++) {
        for (int variant = 0; variant < 4; variant++) {
            fixture *f = fixture_open(heads[h], PEER_INET);
            if (variant == 1)
                csgi_environ_set(f->environ, "HTTP_HOST", "set");
            if (variant == 2)
                csgi_environ_remove(f->environ, "HTTP_X_FORWARDED_PROTO");
            if (variant == 3)
                fixture_build(f);
            const char *values[COUNT(keys)];
            ck_assert_int_eq(csgi_environ__get_headers(f->environ, keys, COUNT(keys), values), 0);
            for (size_t k = 0; k < COUNT(keys); k++) {
                const char *want = csgi_environ_get(f->environ, keys[k].name);
                ck_assert_msg(want ? values[k] && strcmp(values[k], want) == 0 : !values[k],
                              "head %zu variant %d %s: %s, want %s", h, variant, keys[k].name,
                              values[k] ? values[k] : "(absent)", want ? want : "(absent)");
            }
            fixture_free(f);
        }
    }
}
END_TEST

START_TEST(test_path_info_is)
{
    /* What csgi_environ_get gives for PATH_INFO, without the copy: plain
       and escaped paths, "*", set before and after the build. */
    static const char *const heads[] = {
        "GET /healthcheck HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /health%63heck?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /healthcheckx HTTP/1.1\r\nHost: h\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    };
    static const char *const paths[] = {"/healthcheck", "*", "/other", ""};
    for (size_t h = 0; h < COUNT(heads); h++) {
        for (int variant = 0; variant < 3; variant++) {
            for (size_t p = 0; p < COUNT(paths); p++) {
                fixture *f = fixture_open(heads[h], PEER_INET);
                if (variant == 1)
                    csgi_environ_set(f->environ, "PATH_INFO", "/other");
                if (variant == 2)
                    fixture_build(f);
                int is = csgi_environ__path_info_is(f->environ, paths[p], strlen(paths[p]));
                ck_assert_int_eq(is,
                                 strcmp(csgi_environ_get(f->environ, "PATH_INFO"), paths[p]) == 0);
                fixture_free(f);
            }
        }
    }
}
END_TEST

START_TEST(test_shadows_as_if_built)
{
    /* Whatever is set or removed before the build, the environ is then the
       one the same calls make after the build: the same keys, values and
       order. With and without a '_' in a name (which sends some reads to
       the build), with repeated and forged identity headers. */
    static const char *const heads[] = {
        "POST /p?q=1 HTTP/1.1\r\nHost: h:81\r\nContent-Type: t\r\nContent-Length: 0\r\n"
        "X-User-Id: forged\r\nX-Roles: admin\r\nx-roles: more\r\nX-Auth-Token: tok\r\n\r\n",
        "GET /p HTTP/1.1\r\nHost: h\r\nX_Dropped: 1\r\nX-Roles: admin\r\n\r\n",
        "GET /p HTTP/1.0\r\n\r\n",
    };
    static const char *const keys[] = {
        "REQUEST_METHOD", "SCRIPT_NAME",      "PATH_INFO",     "QUERY_STRING",    "CONTENT_TYPE",
        "CONTENT_LENGTH", "SERVER_NAME",      "SERVER_PORT",   "SERVER_PROTOCOL", "REMOTE_ADDR",
        "REMOTE_PORT",    "REQUEST_URI",      "HTTP_HOST",     "HTTP_X_ROLES",    "HTTP_X_ABSENT",
        "HTTPS",          "SSL_PROTOCOL",     "csgi.version",  "csgi.url_scheme", "csgi.input",
        "csgi.errors",    "csgi.multithread", "csgi.run_once", "csgi.request"};
    char before[4096], after[4096];
    for (size_t h = 0; h < COUNT(heads); h++) {
        for (size_t k = 0; k < COUNT(keys); k++) {
            for (int op = 0; op < OP_COUNT; op++) {
                if (op == OP_STRIP && k > 0)
                    continue;
                fixture *a = fixture_open(heads[h], PEER_INET);
                csgi_environ_set(a->environ, "mine", "1"); /* a key of middleware's */
                shadow_apply(a->environ, keys[k], op);
                if (op == OP_STRIP) {
                    ck_assert_str_eq(csgi_environ_get(a->environ, "HTTP_X_ROLES"), "reader");
                    ck_assert_str_eq(csgi_environ_get(a->environ, "HTTP_X_PROJECT_ID"), "p1");
                    ck_assert_str_eq(csgi_environ_get(a->environ, "HTTP_X_USER_ID"), "u1");
                }
                dump_environ(a->environ, before, sizeof(before));

                fixture *b = fixture_open(heads[h], PEER_INET);
                fixture_build(b);
                csgi_environ_set(b->environ, "mine", "1");
                shadow_apply(b->environ, keys[k], op);
                dump_environ(b->environ, after, sizeof(after));
                ck_assert_msg(strcmp(before, after) == 0,
                              "head %zu, %s, op %d: before the build\n%s\nafter it\n%s", h, keys[k],
                              op, before, after);
                fixture_free(a);
                fixture_free(b);
            }
        }
    }
}
END_TEST

START_TEST(test_allocations)
{
    /* 10 headers: the environ and its keys fit one fresh chunk: one malloc
       in all, not one per header. */
    fixture *f = fixture_make("POST /submit?x=1 HTTP/1.1\r\nHost: www.example.com\r\n"
                              "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0)\r\n"
                              "Accept: text/html,application/xhtml+xml\r\n"
                              "Accept-Language: en-US,en;q=0.5\r\n"
                              "Accept-Encoding: gzip, deflate, br\r\n"
                              "Cookie: session=0123456789abcdef\r\nConnection: keep-alive\r\n"
                              "Referer: https://www.example.com/form\r\n"
                              "Content-Type: application/x-www-form-urlencoded\r\n"
                              "Content-Length: 11\r\n\r\n",
                              PEER_INET6);
    ck_assert_uint_eq(f->head.header_count, 10);
    allocator_install(0);
    csgi_environ *e = fixture_environ(f);
    ck_assert_str_eq(csgi_environ_get(e, "HTTP_COOKIE"), "session=0123456789abcdef");
    unsigned count = mallocs;
    allocator_restore();
    ck_assert_uint_eq(count, 1);

    size_t keys = 0, cursor = 0;
    const char *key;
    while (csgi_environ_next(e, &cursor, &key, NULL))
        keys++;
    ck_assert_uint_eq(keys, 27);
    fixture_free(f);
}
END_TEST

START_TEST(test_materialise_nomem)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\nX_A: 1\r\n\r\n", PEER_INET);
    csgi_environ *e = f->environ;
    tracked t = {0};
    int64_t value = 7;
    size_t cursor = 0;
    const char *key;

    arena_exhaust(&f->arena);
    allocator_install(1);
    ck_assert_ptr_null(csgi_environ_get(e, "HTTP_HOST"));
    ck_assert_int_eq(csgi_environ_kind(e, "HTTP_HOST"), CSGI_VALUE_NONE);
    ck_assert_int_eq(csgi_environ_set(e, "k", "v"), CSGI_ENOMEM);
    ck_assert_int_eq(csgi_environ_set_int(e, "k", 1), CSGI_ENOMEM);
    ck_assert_int_eq(csgi_environ_get_int(e, "csgi.run_once", &value), CSGI_ENOMEM);
    ck_assert_int_eq(value, 7);
    ck_assert_int_eq(csgi_environ_set_pointer(e, "p", &t, tracked_destroy), CSGI_ENOMEM);
    ck_assert_int_eq(t.destroyed, 1);
    ck_assert_int_eq(csgi_environ_remove(e, "HTTP_HOST"), CSGI_ENOTFOUND);
    ck_assert_int_eq(csgi_environ_next(e, &cursor, &key, NULL), 0);
    ck_assert_uint_eq(f->log_count, 0);
    allocator_restore();

    /* Retried at the next call. */
    ck_assert_key(e, "HTTP_HOST", "h");
    ck_assert_uint_eq(f->log_count, 1);
    fixture_free(f);
    ck_assert_int_eq(t.destroyed, 1);
}
END_TEST

START_TEST(test_set_nomem)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    csgi_environ *e = f->environ;
    tracked first = {0}, second = {0}, third = {0};

    ck_assert_int_eq(csgi_environ_set(e, "k", "old"), 0);
    ck_assert_int_eq(csgi_environ_set_int(e, "n", 1), 0);
    arena_exhaust(&f->arena);
    allocator_install(1);
    ck_assert_int_eq(csgi_environ_set(e, "k", "new"), CSGI_ENOMEM);
    ck_assert_int_eq(csgi_environ_set(e, "other", "x"), CSGI_ENOMEM);
    ck_assert_int_eq(csgi_environ_set_int(e, "other", 2), CSGI_ENOMEM);
    /* Replacing an int needs no memory. */
    ck_assert_int_eq(csgi_environ_set_int(e, "n", 2), 0);
    /* The first destructor-carrying value needs the arena callback. */
    ck_assert_int_eq(csgi_environ_set_pointer(e, "p", &first, tracked_destroy), CSGI_ENOMEM);
    ck_assert_int_eq(first.destroyed, 1);
    allocator_restore();

    ck_assert_key(e, "k", "old");
    ck_assert_no_key(e, "other");
    ck_assert_int_eq(csgi_environ_set_pointer(e, "p", &second, tracked_destroy), 0);

    /* With the callback registered, a new key still needs its copy. */
    arena_exhaust(&f->arena);
    allocator_install(1);
    ck_assert_int_eq(csgi_environ_set_pointer(e, "q", &third, tracked_destroy), CSGI_ENOMEM);
    ck_assert_int_eq(third.destroyed, 1);
    allocator_restore();

    fixture_free(f);
    ck_assert_int_eq(first.destroyed, 1);
    ck_assert_int_eq(second.destroyed, 1);
    ck_assert_int_eq(third.destroyed, 1);
}
END_TEST

START_TEST(test_new_invalid)
{
    fixture *f = fixture_make("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    ck_assert_ptr_null(csgi_environ__new(NULL, &f->source));
    ck_assert_ptr_null(csgi_environ__new(&f->arena, NULL));
    f->source.head = NULL;
    ck_assert_ptr_null(csgi_environ__new(&f->arena, &f->source));
    f->source.head = &f->head;

    allocator_install(1);
    ck_assert_ptr_null(csgi_environ__new(&f->arena, &f->source));
    allocator_restore();

    csgi_environ *e = fixture_environ(f);
    ck_assert_ptr_eq(csgi_environ__arena(e), &f->arena);
    fixture_free(f);
}
END_TEST

/* ---- Extension keys -------------------------------------------------------- */

START_TEST(test_strings)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    csgi_environ *e = f->environ;
    char key[] = "myapp.user";
    char value[] = "alice";
    size_t len = 0;

    ck_assert_int_eq(csgi_environ_set(e, key, value), 0);
    key[0] = 'X';
    value[0] = 'X';
    ck_assert_key(e, "myapp.user", "alice"); /* both were copied */
    ck_assert_no_key(e, "Xyapp.user");
    ck_assert_int_eq(csgi_environ_kind(e, "myapp.user"), CSGI_VALUE_STRING);

    ck_assert_int_eq(csgi_environ_set_n(e, "bin", "a\0b", 3), 0);
    ck_assert_ptr_nonnull(csgi_environ_get_n(e, "bin", &len));
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(csgi_environ_get_n(e, "bin", NULL), "a\0b", 4);
    ck_assert_int_eq(csgi_environ_set_n(e, "empty", "", 0), 0);
    ck_assert_key(e, "empty", "");

    /* Replacing keeps the key's place; server keys can be replaced. */
    ck_assert_int_eq(csgi_environ_set(e, "myapp.user", "bob"), 0);
    ck_assert_key(e, "myapp.user", "bob");
    ck_assert_int_eq(csgi_environ_set(e, "SCRIPT_NAME", "/app"), 0);
    ck_assert_key(e, "SCRIPT_NAME", "/app");
    ck_assert_int_eq(csgi_environ_set(e, "PATH_INFO", ""), 0);
    ck_assert_key(e, "PATH_INFO", "");
    ck_assert_int_eq(csgi_environ_set(e, "csgi.run_once", "no"), 0);
    ck_assert_int_eq(csgi_environ_kind(e, "csgi.run_once"), CSGI_VALUE_STRING);

    /* A key of another kind is not a string. */
    ck_assert_ptr_null(csgi_environ_get(e, "csgi.multithread"));
    ck_assert_ptr_null(csgi_environ_get(e, "csgi.input"));
    ck_assert_ptr_null(csgi_environ_get(e, "missing"));
    len = 99;
    ck_assert_ptr_null(csgi_environ_get_n(e, "missing", &len));
    ck_assert_uint_eq(len, 99);

    /* Invalid arguments. */
    ck_assert_int_eq(csgi_environ_set(NULL, "k", "v"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_environ_set(e, NULL, "v"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_environ_set(e, "", "v"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_environ_set(e, "k", NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_environ_set_n(e, "k", NULL, 0), CSGI_EINVAL);
    ck_assert_ptr_null(csgi_environ_get(NULL, "k"));
    ck_assert_ptr_null(csgi_environ_get(e, NULL));
    ck_assert_ptr_null(csgi_environ_get(e, ""));
    ck_assert_int_eq(csgi_environ_kind(NULL, "k"), CSGI_VALUE_NONE);
    fixture_free(f);
}
END_TEST

START_TEST(test_integers)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    csgi_environ *e = f->environ;
    int64_t value = 0;

    ck_assert_int_eq(csgi_environ_set_int(e, "n", INT64_MIN), 0);
    ck_assert_int_eq(csgi_environ_get_int(e, "n", &value), 0);
    ck_assert_int_eq(value, INT64_MIN);
    ck_assert_int_eq(csgi_environ_set_int(e, "n", INT64_MAX), 0);
    ck_assert_int_eq(csgi_environ_get_int(e, "n", &value), 0);
    ck_assert_int_eq(value, INT64_MAX);
    ck_assert_int_eq(csgi_environ_kind(e, "n"), CSGI_VALUE_INT);
    ck_assert_ptr_null(csgi_environ_get(e, "n"));
    ck_assert_ptr_null(csgi_environ_get_pointer(e, "n"));

    value = 42;
    ck_assert_int_eq(csgi_environ_get_int(e, "missing", &value), CSGI_ENOTFOUND);
    ck_assert_int_eq(csgi_environ_get_int(e, "PATH_INFO", &value), CSGI_EINVAL);
    ck_assert_int_eq(value, 42);
    ck_assert_int_eq(csgi_environ_get_int(e, "n", NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_environ_get_int(NULL, "n", &value), CSGI_EINVAL);
    ck_assert_int_eq(csgi_environ_set_int(e, "", 1), CSGI_EINVAL);
    ck_assert_int_eq(csgi_environ_set_int(NULL, "k", 1), CSGI_EINVAL);

    /* A string becomes an int and back. */
    ck_assert_int_eq(csgi_environ_set_int(e, "PATH_INFO", 3), 0);
    ck_assert_ptr_null(csgi_environ_get(e, "PATH_INFO"));
    ck_assert_int_eq(csgi_environ_set(e, "PATH_INFO", "/x"), 0);
    ck_assert_key(e, "PATH_INFO", "/x");
    fixture_free(f);
}
END_TEST

START_TEST(test_pointer_destroyed_at_end)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    tracked a = {0}, b = {0};
    int plain = 0;

    ck_assert_int_eq(csgi_environ_set_pointer(f->environ, "a", &a, tracked_destroy), 0);
    ck_assert_int_eq(csgi_environ_set_pointer(f->environ, "b", &b, tracked_destroy), 0);
    ck_assert_int_eq(csgi_environ_set_pointer(f->environ, "plain", &plain, NULL), 0);
    ck_assert_int_eq(csgi_environ_set_pointer(f->environ, "null", NULL, NULL), 0);
    ck_assert_ptr_eq(csgi_environ_get_pointer(f->environ, "a"), &a);
    ck_assert_ptr_eq(csgi_environ_get_pointer(f->environ, "plain"), &plain);
    ck_assert_ptr_null(csgi_environ_get_pointer(f->environ, "null"));
    ck_assert_int_eq(csgi_environ_kind(f->environ, "null"), CSGI_VALUE_POINTER);
    ck_assert_ptr_null(csgi_environ_get_pointer(f->environ, "PATH_INFO"));
    ck_assert_ptr_null(csgi_environ_get_pointer(f->environ, "missing"));
    ck_assert_int_eq(a.destroyed, 0);
    ck_assert_int_eq(b.destroyed, 0);
    fixture_free(f);
    ck_assert_int_eq(a.destroyed, 1);
    ck_assert_int_eq(b.destroyed, 1);
}
END_TEST

START_TEST(test_pointer_replaced)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    csgi_environ *e = f->environ;
    tracked a = {0}, b = {0}, c = {0};

    ck_assert_int_eq(csgi_environ_set_pointer(e, "k", &a, tracked_destroy), 0);
    ck_assert_int_eq(csgi_environ_set_pointer(e, "k", &b, tracked_destroy), 0);
    ck_assert_int_eq(a.destroyed, 1);
    ck_assert_int_eq(b.destroyed, 0);

    /* Setting the value a key holds does not destroy it. */
    ck_assert_int_eq(csgi_environ_set_pointer(e, "k", &b, tracked_destroy), 0);
    ck_assert_int_eq(b.destroyed, 0);
    ck_assert_ptr_eq(csgi_environ_get_pointer(e, "k"), &b);

    /* Replaced by a string, or an int. */
    ck_assert_int_eq(csgi_environ_set(e, "k", "s"), 0);
    ck_assert_int_eq(b.destroyed, 1);
    ck_assert_int_eq(csgi_environ_set_pointer(e, "k", &c, tracked_destroy), 0);
    ck_assert_int_eq(csgi_environ_set_int(e, "k", 1), 0);
    ck_assert_int_eq(c.destroyed, 1);

    fixture_free(f);
    ck_assert_int_eq(a.destroyed, 1);
    ck_assert_int_eq(b.destroyed, 1);
    ck_assert_int_eq(c.destroyed, 1);
}
END_TEST

START_TEST(test_pointer_removed)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    tracked a = {0};

    ck_assert_int_eq(csgi_environ_set_pointer(f->environ, "k", &a, tracked_destroy), 0);
    ck_assert_int_eq(csgi_environ_remove(f->environ, "k"), 0);
    ck_assert_int_eq(a.destroyed, 1);
    ck_assert_int_eq(csgi_environ_remove(f->environ, "k"), CSGI_ENOTFOUND);
    ck_assert_ptr_null(csgi_environ_get_pointer(f->environ, "k"));
    fixture_free(f);
    ck_assert_int_eq(a.destroyed, 1);
}
END_TEST

START_TEST(test_pointer_invalid)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    tracked a = {0};

    /* The value is taken even when the call fails. */
    ck_assert_int_eq(csgi_environ_set_pointer(f->environ, "", &a, tracked_destroy), CSGI_EINVAL);
    ck_assert_int_eq(a.destroyed, 1);
    ck_assert_int_eq(csgi_environ_set_pointer(f->environ, NULL, &a, tracked_destroy), CSGI_EINVAL);
    ck_assert_int_eq(a.destroyed, 2);
    ck_assert_int_eq(csgi_environ_set_pointer(NULL, "k", &a, tracked_destroy), CSGI_EINVAL);
    ck_assert_int_eq(a.destroyed, 3);
    ck_assert_int_eq(csgi_environ_set_pointer(NULL, "k", &a, NULL), CSGI_EINVAL);
    fixture_free(f);
    ck_assert_int_eq(a.destroyed, 3);
}
END_TEST

/* A value whose destructor sets another value with a destructor. */
typedef struct chained {
    csgi_environ *environ;
    tracked *next;
    int destroyed;
} chained;

static void chained_destroy(void *pointer)
{
    chained *c = pointer;
    c->destroyed++;
    ck_assert_int_eq(csgi_environ_set_pointer(c->environ, "late", c->next, tracked_destroy), 0);
}

START_TEST(test_destructor_sets_value)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    tracked late = {0};
    chained c = {f->environ, &late, 0};

    ck_assert_int_eq(csgi_environ_set_pointer(f->environ, "c", &c, chained_destroy), 0);
    fixture_free(f);
    ck_assert_int_eq(c.destroyed, 1);
    ck_assert_int_eq(late.destroyed, 1);
}
END_TEST

START_TEST(test_json_values)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    csgi_environ *e = f->environ;
    tracked a = {0}, b = {0}, c = {0};

    /* What csgi/json.h will do with json_decref as the destructor. */
    ck_assert_int_eq(csgi_environ__set_value(e, "app.json", CSGI_VALUE_JSON, &a, tracked_destroy),
                     0);
    ck_assert_int_eq(csgi_environ_kind(e, "app.json"), CSGI_VALUE_JSON);
    ck_assert_ptr_eq(csgi_environ__get_value(e, "app.json", CSGI_VALUE_JSON), &a);
    ck_assert_ptr_null(csgi_environ__get_value(e, "app.json", CSGI_VALUE_POINTER));
    ck_assert_ptr_null(csgi_environ_get_pointer(e, "app.json"));
    ck_assert_ptr_null(csgi_environ_get(e, "app.json"));
    ck_assert_ptr_null(csgi_environ__get_value(e, "missing", CSGI_VALUE_JSON));
    ck_assert_ptr_eq(csgi_environ__get_value(e, "csgi.input", CSGI_VALUE_POINTER),
                     csgi_environ_input(e));

    /* Replaced by a pointer: the JSON value goes. */
    ck_assert_int_eq(csgi_environ_set_pointer(e, "app.json", &b, tracked_destroy), 0);
    ck_assert_int_eq(a.destroyed, 1);
    ck_assert_int_eq(csgi_environ__set_value(e, "app.json", CSGI_VALUE_JSON, &b, tracked_destroy),
                     0);
    ck_assert_int_eq(b.destroyed, 1); /* same pointer, other kind: the old value went */

    /* Only pointer kinds go through set_value; the value is taken anyway. */
    ck_assert_int_eq(csgi_environ__set_value(e, "x", CSGI_VALUE_STRING, &c, tracked_destroy),
                     CSGI_EINVAL);
    ck_assert_int_eq(csgi_environ__set_value(e, "x", CSGI_VALUE_NONE, &c, tracked_destroy),
                     CSGI_EINVAL);
    ck_assert_int_eq(c.destroyed, 2);
    ck_assert_no_key(e, "x");

    fixture_free(f);
    ck_assert_int_eq(a.destroyed, 1);
    ck_assert_int_eq(b.destroyed, 2);
    ck_assert_int_eq(c.destroyed, 2);
}
END_TEST

/* ---- Removing and iterating ------------------------------------------------ */

START_TEST(test_remove)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n", PEER_INET);
    csgi_environ *e = f->environ;
    size_t cursor = 0;
    const char *key;

    ck_assert_int_eq(csgi_environ_remove(e, "HTTP_X_A"), 0);
    ck_assert_no_key(e, "HTTP_X_A");
    ck_assert_ptr_null(csgi_environ_get(e, "HTTP_X_A"));
    ck_assert_int_eq(csgi_environ_remove(e, "HTTP_X_A"), CSGI_ENOTFOUND);
    ck_assert_int_eq(csgi_environ_remove(e, "missing"), CSGI_ENOTFOUND);
    ck_assert_int_eq(csgi_environ_remove(e, ""), CSGI_ENOTFOUND);
    ck_assert_int_eq(csgi_environ_remove(e, NULL), CSGI_ENOTFOUND);
    ck_assert_int_eq(csgi_environ_remove(NULL, "k"), CSGI_ENOTFOUND);
    while (csgi_environ_next(e, &cursor, &key, NULL))
        ck_assert_str_ne(key, "HTTP_X_A");

    /* Set again, it comes last. */
    ck_assert_int_eq(csgi_environ_set(e, "HTTP_X_A", "2"), 0);
    const char *last = NULL;
    cursor = 0;
    while (csgi_environ_next(e, &cursor, &key, NULL))
        last = key;
    ck_assert_str_eq(last, "HTTP_X_A");
    ck_assert_key(e, "HTTP_X_A", "2");
    fixture_free(f);
}
END_TEST

START_TEST(test_iteration_order)
{
    static const char *const expected[] = {
        "REQUEST_METHOD",  "SCRIPT_NAME", "PATH_INFO",   "QUERY_STRING",     "CONTENT_TYPE",
        "CONTENT_LENGTH",  "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL",  "REMOTE_ADDR",
        "REMOTE_PORT",     "REQUEST_URI", "HTTP_HOST",   "HTTP_X_A",         "csgi.version",
        "csgi.url_scheme", "csgi.input",  "csgi.errors", "csgi.multithread", "csgi.multiprocess",
        "csgi.run_once",   "app.first",   "app.second",
    };
    static const csgi_value_kind kinds[] = {
        CSGI_VALUE_STRING,  CSGI_VALUE_STRING,  CSGI_VALUE_STRING, CSGI_VALUE_STRING,
        CSGI_VALUE_STRING,  CSGI_VALUE_STRING,  CSGI_VALUE_STRING, CSGI_VALUE_STRING,
        CSGI_VALUE_STRING,  CSGI_VALUE_STRING,  CSGI_VALUE_STRING, CSGI_VALUE_STRING,
        CSGI_VALUE_STRING,  CSGI_VALUE_STRING,  CSGI_VALUE_STRING, CSGI_VALUE_STRING,
        CSGI_VALUE_POINTER, CSGI_VALUE_POINTER, CSGI_VALUE_INT,    CSGI_VALUE_INT,
        CSGI_VALUE_INT,     CSGI_VALUE_INT,     CSGI_VALUE_STRING,
    };
    fixture *f = fixture_open("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nX-A: 1\r\n"
                              "Content-Type: text/plain\r\n\r\n",
                              PEER_INET);
    csgi_environ *e = f->environ;
    ck_assert_int_eq(csgi_environ_set_int(e, "app.first", 1), 0);
    ck_assert_int_eq(csgi_environ_set(e, "app.second", "2"), 0);
    ck_assert_int_eq(csgi_environ_set_int(e, "app.first", 3), 0); /* keeps its place */
    ck_assert_int_eq(csgi_environ_set(e, "HTTP_HOST", "other"), 0);

    size_t cursor = 0, n = 0;
    const char *key;
    csgi_value_kind kind;
    while (csgi_environ_next(e, &cursor, &key, &kind)) {
        ck_assert_uint_lt(n, COUNT(expected));
        ck_assert_str_eq(key, expected[n]);
        ck_assert_int_eq(kind, kinds[n]);
        n++;
    }
    ck_assert_uint_eq(n, COUNT(expected));
    ck_assert_int_eq(csgi_environ_next(e, &cursor, &key, &kind), 0); /* stays at the end */

    /* Removing during an iteration skips the removed key only. */
    cursor = 0;
    n = 0;
    while (csgi_environ_next(e, &cursor, &key, NULL)) {
        if (n == 2)
            ck_assert_int_eq(csgi_environ_remove(e, "QUERY_STRING"), 0);
        if (n == 3)
            ck_assert_str_eq(key, "CONTENT_TYPE");
        n++;
    }
    ck_assert_uint_eq(n, COUNT(expected) - 1);

    ck_assert_int_eq(csgi_environ_next(e, NULL, &key, NULL), 0);
    ck_assert_int_eq(csgi_environ_next(e, &cursor, NULL, NULL), 0);
    ck_assert_int_eq(csgi_environ_next(NULL, &cursor, &key, NULL), 0);
    fixture_free(f);
}
END_TEST

START_TEST(test_growth)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    csgi_environ *e = f->environ;
    tracked t[200];
    char key[32], value[32];

    memset(t, 0, sizeof(t));
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        if (i % 2)
            ck_assert_int_eq(csgi_environ_set(e, key, value), 0);
        else
            ck_assert_int_eq(csgi_environ_set_pointer(e, key, &t[i], tracked_destroy), 0);
    }
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        if (i % 2)
            ck_assert_key(e, key, value);
        else
            ck_assert_ptr_eq(csgi_environ_get_pointer(e, key), &t[i]);
    }
    ck_assert_key(e, "REQUEST_METHOD", "GET");
    ck_assert_key(e, "HTTP_HOST", "h");

    size_t cursor = 0, n = 0;
    const char *k;
    while (csgi_environ_next(e, &cursor, &k, NULL)) {
        if (n >= 18) {
            snprintf(key, sizeof(key), "k%zu", n - 18);
            ck_assert_str_eq(k, key);
        }
        n++;
    }
    ck_assert_uint_eq(n, 18 + 200); /* 10 CGI, HTTP_HOST, 7 gateway keys */
    fixture_free(f);
    for (int i = 0; i < 200; i++)
        ck_assert_int_eq(t[i].destroyed, i % 2 ? 0 : 1);
}
END_TEST

START_TEST(test_growth_nomem)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    csgi_environ *e = f->environ;
    tracked t = {0};
    char key[16];
    int i = 0;

    /* Fill the spare entries; the next key needs a larger array, which
       is too large for the chunk: the allocator is asked and fails. */
    ck_assert_int_eq(csgi_environ_set_pointer(e, "first", &t, NULL), 0);
    size_t used = f->arena.allocated;
    for (;; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        used = f->arena.allocated;
        allocator_install(1);
        int err = csgi_environ_set_int(e, key, i);
        allocator_restore();
        if (err) {
            ck_assert_int_eq(err, CSGI_ENOMEM);
            break;
        }
        ck_assert_int_lt(i, 100);
    }
    ck_assert_uint_gt(f->arena.allocated, used); /* the key was copied, the array not grown */
    ck_assert_no_key(e, key);
    allocator_install(1);
    ck_assert_int_eq(csgi_environ_set_pointer(e, "p", &t, tracked_destroy), CSGI_ENOMEM);
    ck_assert_int_eq(t.destroyed, 1);
    allocator_restore();

    /* Later, with memory, it grows and nothing was lost. */
    ck_assert_int_eq(csgi_environ_set_int(e, key, i), 0);
    for (int j = 0; j <= i; j++) {
        int64_t value = -1;
        snprintf(key, sizeof(key), "k%d", j);
        ck_assert_int_eq(csgi_environ_get_int(e, key, &value), 0);
        ck_assert_int_eq(value, j);
    }
    ck_assert_key(e, "HTTP_HOST", "h");
    fixture_free(f);
    ck_assert_int_eq(t.destroyed, 1);
}
END_TEST

/* ---- Request memory --------------------------------------------------------- */

typedef struct order {
    int log[4];
    int count;
} order;

static void record_first(void *data)
{
    order *o = data;
    o->log[o->count++] = 1;
}

static void record_second(void *data)
{
    order *o = data;
    o->log[o->count++] = 2;
}

START_TEST(test_alloc_and_defer)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    order o = {{0}, 0};

    for (size_t size = 1; size < 5000; size = size * 3 + 1) {
        char *p = csgi_environ_alloc(f->environ, size);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % _Alignof(max_align_t), 0);
        memset(p, 0xa5, size);
    }
    ck_assert_ptr_null(csgi_environ_alloc(NULL, 8));
    ck_assert_int_eq(csgi_environ_defer(f->environ, record_first, &o), 0);
    ck_assert_int_eq(csgi_environ_defer(f->environ, record_second, &o), 0);
    ck_assert_int_eq(csgi_environ_defer(f->environ, NULL, &o), CSGI_EINVAL);
    ck_assert_int_eq(csgi_environ_defer(NULL, record_first, &o), CSGI_EINVAL);
    ck_assert_int_eq(o.count, 0);
    fixture_free(f);
    ck_assert_int_eq(o.count, 2);
    ck_assert_int_eq(o.log[0], 2); /* last registered first */
    ck_assert_int_eq(o.log[1], 1);
}
END_TEST

/* Zeroed memory is zero even where the heap hands back bytes an earlier
   request dirtied (glibc reuses the freed block; ASan fills new blocks). */
START_TEST(test_alloc_zeroed)
{
    fixture *f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    for (size_t size = 1; size < 5000; size = size * 3 + 1)
        memset(csgi_environ_alloc(f->environ, size), 0xa5, size);
    fixture_free(f);

    f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    for (size_t size = 1; size < 5000; size = size * 3 + 1) {
        unsigned char *p = csgi_environ_alloc_zeroed(f->environ, size);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % _Alignof(max_align_t), 0);
        for (size_t i = 0; i < size; i++)
            ck_assert_uint_eq(p[i], 0);
    }
    ck_assert_ptr_null(csgi_environ_alloc_zeroed(NULL, 8));
    fixture_free(f);
}
END_TEST

/* ---- The error log ----------------------------------------------------------- */

START_TEST(test_log_prefix)
{
    fixture *f = fixture_open("GET /a%20b?token=secret HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    csgi_environ_log(f->environ, "hello %d %s", 42, "world");
    ck_assert_uint_eq(f->log_count, 1);
    ck_assert_str_eq(f->logs[0], "GET /a%20b (client 192.0.2.7:40000): hello 42 world");
    ck_assert_int_eq(f->levels[0], CSGI_LOG__ERROR); /* csgi.errors */
    fixture_free(f);

    f = fixture_open("POST http://h/x?q HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
                     PEER_INET6);
    csgi_environ_log(f->environ, "m");
    ck_assert_str_eq(f->logs[0], "POST /x (client [2001:db8::7]:40001): m");
    fixture_free(f);

    f = fixture_open("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", PEER_UNIX);
    csgi_environ_log(f->environ, "m");
    ck_assert_str_eq(f->logs[0], "OPTIONS * (client unix): m");
    fixture_free(f);

    f = fixture_open("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", PEER_INET);
    csgi_environ_log(f->environ, "m");
    ck_assert_str_eq(f->logs[0], "CONNECT h:443 (client 192.0.2.7:40000): m");
    fixture_free(f);
}
END_TEST

START_TEST(test_log_long)
{
    char request[1200];
    char path[601];
    char message[3000];

    memset(path, 'p', 600);
    path[0] = '/';
    path[600] = '\0';
    snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", path);
    fixture *f = fixture_open(request, PEER_INET);

    memset(message, 'm', sizeof(message) - 1);
    message[sizeof(message) - 1] = '\0';
    csgi_environ_log(f->environ, "%s", message);
    ck_assert_uint_eq(f->log_count, 1);
    const char *line = f->logs[0];
    ck_assert_int_eq(strncmp(line, "GET /ppp", 8), 0);
    /* The path is cut to 256 bytes and marked. */
    const char *dots = strstr(line, "... (client 192.0.2.7:40000): mmm");
    ck_assert_ptr_nonnull(dots);
    ck_assert_int_eq(dots - line, 4 + 256);
    ck_assert_uint_lt(strlen(line), 2000);
    fixture_free(f);

    /* No log function: nothing happens. */
    f = fixture_make("GET / HTTP/1.1\r\nHost: h\r\nA_B: 1\r\n\r\n", PEER_INET);
    f->source.log = NULL;
    fixture_environ(f);
    csgi_environ_log(f->environ, "x");
    ck_assert_key(f->environ, "HTTP_HOST", "h");
    ck_assert_uint_eq(f->log_count, 0);
    csgi_environ_log(NULL, "x");
    fixture_free(f);
}
END_TEST

/* ---- csgi.input -------------------------------------------------------------- */

#define POST_LENGTH(n) "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " #n "\r\n\r\n"
#define POST_CHUNKED   "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"

START_TEST(test_read_pieces)
{
    fixture *f = fixture_open_body(POST_LENGTH(11), "hello world", NULL, 0, 0);
    csgi_input *in = csgi_environ_input(f->environ);
    char buf[16];

    ck_assert_int_eq(csgi_input_read(in, buf, 4), 4);
    ck_assert_mem_eq(buf, "hell", 4);
    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), 7);
    ck_assert_mem_eq(buf, "o world", 7);
    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), 0);
    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), 0);
    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), 0);
    ck_assert_uint_eq(f->body.reads_after_end, 0); /* the end is remembered */
    ck_assert_int_eq(csgi_input_read(in, buf, 0), CSGI_EINVAL);
    ck_assert_int_eq(csgi_input_read(in, NULL, 1), CSGI_EINVAL);
    ck_assert_int_eq(csgi_input_read(NULL, buf, 1), CSGI_EINVAL);
    fixture_free(f);

    /* No body at all. */
    f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    ck_assert_int_eq(csgi_input_read(csgi_environ_input(f->environ), buf, sizeof(buf)), 0);
    fixture_free(f);

    /* No provider: an empty body. */
    f = fixture_make("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    f->source.input = NULL;
    fixture_environ(f);
    ck_assert_int_eq(csgi_input_read(csgi_environ_input(f->environ), buf, sizeof(buf)), 0);
    fixture_free(f);
}
END_TEST

START_TEST(test_read_eagain)
{
    static const long steps[] = {CSGI_EAGAIN, 3, CSGI_EAGAIN, CSGI_EAGAIN};
    fixture *f = fixture_open_body(POST_LENGTH(6), "abcdef", steps, COUNT(steps), 0);
    csgi_input *in = csgi_environ_input(f->environ);
    char buf[16];

    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), CSGI_EAGAIN);
    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), 3);
    ck_assert_mem_eq(buf, "abc", 3);
    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), CSGI_EAGAIN);
    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), CSGI_EAGAIN);
    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), 3);
    ck_assert_mem_eq(buf, "def", 3);
    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), 0);
    fixture_free(f);
}
END_TEST

START_TEST(test_read_error_sticks)
{
    static const long steps[] = {2, CSGI_ECLOSED};
    fixture *f = fixture_open_body(POST_LENGTH(6), "abcdef", steps, COUNT(steps), 0);
    csgi_input *in = csgi_environ_input(f->environ);
    char buf[16];

    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), 2);
    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), CSGI_ECLOSED);
    unsigned reads = f->body.reads;
    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), CSGI_ECLOSED);
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), CSGI_ECLOSED);
    ck_assert_uint_eq(f->body.reads, reads);
    fixture_free(f);

    /* An error in place of the end (a chunked body cut short). */
    f = fixture_open_body(POST_CHUNKED, "abc", NULL, 0, CSGI_EPARSE);
    in = csgi_environ_input(f->environ);
    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), 3);
    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), CSGI_EPARSE);
    fixture_free(f);
}
END_TEST

START_TEST(test_readline)
{
    fixture *f = fixture_open_body(POST_LENGTH(21), "line1\nline2\r\n\nlast", NULL, 0, 0);
    csgi_input *in = csgi_environ_input(f->environ);
    char buf[64];

    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), 6);
    ck_assert_str_eq(buf, "line1\n");
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), 7);
    ck_assert_str_eq(buf, "line2\r\n");
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), 1);
    ck_assert_str_eq(buf, "\n");
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), 4);
    ck_assert_str_eq(buf, "last");
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), 0);
    ck_assert_uint_eq(f->body.reads_after_end, 0);

    ck_assert_int_eq(csgi_input_readline(in, buf, 1), CSGI_EINVAL);
    ck_assert_int_eq(csgi_input_readline(in, NULL, 8), CSGI_EINVAL);
    ck_assert_int_eq(csgi_input_readline(NULL, buf, 8), CSGI_EINVAL);
    fixture_free(f);
}
END_TEST

START_TEST(test_readline_partial)
{
    static const long steps[] = {3, CSGI_EAGAIN, 4, CSGI_EAGAIN, 1, CSGI_EAGAIN};
    fixture *f = fixture_open_body(POST_CHUNKED, "abcdefg\nxy", steps, COUNT(steps), 0);
    csgi_input *in = csgi_environ_input(f->environ);
    char buf[64];

    /* The partial line is kept between calls, not handed out. */
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), CSGI_EAGAIN); /* "abc" */
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), CSGI_EAGAIN); /* "abcdefg" */
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), 8);
    ck_assert_str_eq(buf, "abcdefg\n");
    /* The last line ends with the body, not with a LF. */
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), CSGI_EAGAIN);
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), 2);
    ck_assert_str_eq(buf, "xy");
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), 0);
    fixture_free(f);
}
END_TEST

START_TEST(test_readline_limit)
{
    fixture *f = fixture_open_body(POST_LENGTH(10), "abcdefgh\nz", NULL, 0, 0);
    csgi_input *in = csgi_environ_input(f->environ);
    char buf[5];

    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), 4);
    ck_assert_str_eq(buf, "abcd");
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), 4);
    ck_assert_str_eq(buf, "efgh");
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), 1);
    ck_assert_str_eq(buf, "\n");
    ck_assert_int_eq(csgi_input_readline(in, buf, 2), 1);
    ck_assert_str_eq(buf, "z");
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), 0);
    fixture_free(f);
}
END_TEST

START_TEST(test_readline_then_read)
{
    fixture *f = fixture_open_body(POST_LENGTH(14), "one\ntwo\nthree\n", NULL, 0, 0);
    csgi_input *in = csgi_environ_input(f->environ);
    char buf[64];

    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), 4);
    ck_assert_str_eq(buf, "one\n");
    /* Bytes readline read ahead come first. */
    ck_assert_int_eq(csgi_input_read(in, buf, 2), 2);
    ck_assert_mem_eq(buf, "tw", 2);
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), 2);
    ck_assert_str_eq(buf, "o\n");
    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), 6);
    ck_assert_mem_eq(buf, "three\n", 6);
    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), 0);
    fixture_free(f);
}
END_TEST

START_TEST(test_readline_error)
{
    static const long steps[] = {3, CSGI_ETIMEDOUT};
    fixture *f = fixture_open_body(POST_LENGTH(8), "abc\ndefg", steps, COUNT(steps), 0);
    csgi_input *in = csgi_environ_input(f->environ);
    char buf[64];

    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), CSGI_ETIMEDOUT);
    /* The error sticks; bytes already read are still delivered. */
    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), 3);
    ck_assert_mem_eq(buf, "abc", 3);
    ck_assert_int_eq(csgi_input_read(in, buf, sizeof(buf)), CSGI_ETIMEDOUT);
    fixture_free(f);
}
END_TEST

START_TEST(test_read_all)
{
    fixture *f = fixture_open_body(POST_LENGTH(11), "hello world", NULL, 0, 0);
    csgi_input *in = csgi_environ_input(f->environ);
    const char *out = NULL;
    size_t len = 0;

    ck_assert_int_eq(csgi_input_read_all(in, 11, &out, &len), 0);
    ck_assert_uint_eq(len, 11);
    ck_assert_str_eq(out, "hello world");
    ck_assert_uint_eq(f->body.reads, 2); /* the body, then its end */

    /* The stream is at its end; the body stays valid. */
    const char *again = NULL;
    ck_assert_int_eq(csgi_input_read_all(in, 11, &again, &len), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(again, "");
    ck_assert_str_eq(out, "hello world");
    char buf[4];
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), 0);
    ck_assert_str_eq(out, "hello world");
    ck_assert_int_eq(csgi_input_read_all(in, 1, &again, NULL), 0);
    ck_assert_int_eq(csgi_input_read_all(NULL, 1, &again, NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_input_read_all(in, 1, NULL, NULL), CSGI_EINVAL);
    fixture_free(f);

    /* Empty bodies. */
    f = fixture_open("GET / HTTP/1.1\r\nHost: h\r\n\r\n", PEER_INET);
    ck_assert_int_eq(csgi_input_read_all(csgi_environ_input(f->environ), 0, &out, &len), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(out, "");
    fixture_free(f);
    f = fixture_open_body(POST_LENGTH(0), "", NULL, 0, 0);
    ck_assert_int_eq(csgi_input_read_all(csgi_environ_input(f->environ), 0, &out, &len), 0);
    ck_assert_uint_eq(len, 0);
    fixture_free(f);
}
END_TEST

START_TEST(test_read_all_eagain)
{
    static const long steps[] = {CSGI_EAGAIN, 5, CSGI_EAGAIN, 3, 3, CSGI_EAGAIN};
    fixture *f = fixture_open_body(POST_CHUNKED, "0123456789abcdef", steps, COUNT(steps), 0);
    csgi_input *in = csgi_environ_input(f->environ);
    const char *out = NULL;
    size_t len = 0;

    ck_assert_int_eq(csgi_input_read_all(in, 100, &out, &len), CSGI_EAGAIN);
    ck_assert_int_eq(csgi_input_read_all(in, 100, &out, &len), CSGI_EAGAIN);
    ck_assert_int_eq(csgi_input_read_all(in, 100, &out, &len), CSGI_EAGAIN);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(csgi_input_read_all(in, 100, &out, &len), 0);
    ck_assert_uint_eq(len, 16);
    ck_assert_str_eq(out, "0123456789abcdef");
    fixture_free(f);

    /* A known length arriving piecemeal. */
    static const long pieces[] = {1, CSGI_EAGAIN, 2, CSGI_EAGAIN, 7};
    f = fixture_open_body(POST_LENGTH(10), "abcdefghij", pieces, COUNT(pieces), 0);
    in = csgi_environ_input(f->environ);
    ck_assert_int_eq(csgi_input_read_all(in, 10, &out, &len), CSGI_EAGAIN);
    ck_assert_int_eq(csgi_input_read_all(in, 10, &out, &len), CSGI_EAGAIN);
    ck_assert_int_eq(csgi_input_read_all(in, 10, &out, &len), 0);
    ck_assert_uint_eq(len, 10);
    ck_assert_str_eq(out, "abcdefghij");
    fixture_free(f);
}
END_TEST

START_TEST(test_read_all_too_big)
{
    const char *out = NULL;
    size_t len = 0;

    /* Announced too long: refused before reading (no 100 Continue). */
    fixture *f = fixture_open_body(POST_LENGTH(11), "hello world", NULL, 0, 0);
    csgi_input *in = csgi_environ_input(f->environ);
    ck_assert_int_eq(csgi_input_read_all(in, 10, &out, &len), CSGI_ETOOBIG);
    ck_assert_uint_eq(f->body.reads, 0);
    ck_assert_int_eq(csgi_input_read_all(in, 11, &out, &len), 0);
    ck_assert_str_eq(out, "hello world");
    fixture_free(f);

    /* Chunked: refused once more than max bytes came, which stay readable. */
    static const long steps[] = {4, 4, 4};
    f = fixture_open_body(POST_CHUNKED, "0123456789ab", steps, COUNT(steps), 0);
    in = csgi_environ_input(f->environ);
    ck_assert_int_eq(csgi_input_read_all(in, 10, &out, &len), CSGI_ETOOBIG);
    char buf[32];
    long n = csgi_input_read(in, buf, sizeof(buf));
    ck_assert_int_ge(n, 11);
    ck_assert_mem_eq(buf, "0123456789ab", (size_t)n);
    fixture_free(f);

    /* Exactly max is fine. */
    f = fixture_open_body(POST_CHUNKED, "0123456789", steps, COUNT(steps), 0);
    in = csgi_environ_input(f->environ);
    ck_assert_int_eq(csgi_input_read_all(in, 10, &out, &len), 0);
    ck_assert_str_eq(out, "0123456789");
    fixture_free(f);

    /* max 0 with a body. */
    f = fixture_open_body(POST_CHUNKED, "x", NULL, 0, 0);
    in = csgi_environ_input(f->environ);
    ck_assert_int_eq(csgi_input_read_all(in, 0, &out, &len), CSGI_ETOOBIG);
    fixture_free(f);
}
END_TEST

START_TEST(test_read_all_error)
{
    static const long steps[] = {3, CSGI_EPARSE};
    fixture *f = fixture_open_body(POST_CHUNKED, "abcdef", steps, COUNT(steps), 0);
    const char *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(csgi_input_read_all(csgi_environ_input(f->environ), 100, &out, &len),
                     CSGI_EPARSE);
    ck_assert_int_eq(csgi_input_read_all(csgi_environ_input(f->environ), 100, &out, &len),
                     CSGI_EPARSE);
    ck_assert_ptr_null(out);
    fixture_free(f);
}
END_TEST

START_TEST(test_read_all_after_readline)
{
    fixture *f = fixture_open_body(POST_LENGTH(14), "one\ntwo\nthree\n", NULL, 0, 0);
    csgi_input *in = csgi_environ_input(f->environ);
    char buf[64];
    const char *out = NULL;
    size_t len = 0;

    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), 4);
    ck_assert_int_eq(csgi_input_read_all(in, 10, &out, &len), 0);
    ck_assert_uint_eq(len, 10);
    ck_assert_str_eq(out, "two\nthree\n");
    fixture_free(f);
}
END_TEST

START_TEST(test_input_nomem)
{
    static const long steps[] = {4, CSGI_EAGAIN};
    fixture *f = fixture_open_body(POST_CHUNKED, "abcd\nefgh", steps, COUNT(steps), 0);
    csgi_input *in = csgi_environ_input(f->environ);
    char buf[64];
    const char *out = NULL;
    size_t len = 0;

    arena_exhaust(&f->arena);
    allocator_install(1);
    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), CSGI_ENOMEM);
    ck_assert_int_eq(csgi_input_read_all(in, 100, &out, &len), CSGI_ENOMEM);
    allocator_restore();
    ck_assert_uint_eq(f->body.reads, 0); /* nothing was read, nothing lost */

    ck_assert_int_eq(csgi_input_readline(in, buf, sizeof(buf)), CSGI_EAGAIN);
    ck_assert_int_eq(csgi_input_read_all(in, 100, &out, &len), 0);
    ck_assert_str_eq(out, "abcd\nefgh");
    fixture_free(f);
}
END_TEST

typedef struct ready_state {
    int calls;
    int rearm; /* register again from the callback this many times */
    void *userdata_seen;
} ready_state;

static void on_ready(csgi_input *input, void *userdata)
{
    ready_state *s = userdata;
    s->calls++;
    s->userdata_seen = userdata;
    if (s->rearm > 0) {
        s->rearm--;
        csgi_input_on_ready(input, on_ready, userdata);
    }
}

START_TEST(test_on_ready)
{
    fixture *f = fixture_open_body(POST_LENGTH(3), "abc", NULL, 0, 0);
    csgi_environ *e = f->environ;
    csgi_input *in = csgi_environ_input(e);
    ready_state a = {0, 0, NULL}, b = {0, 1, NULL};

    csgi_environ__input_ready(e); /* nobody asked */

    csgi_input_on_ready(in, on_ready, &a);
    csgi_environ__input_ready(e);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_ptr_eq(a.userdata_seen, &a);
    csgi_environ__input_ready(e); /* once */
    ck_assert_int_eq(a.calls, 1);

    /* A second registration replaces the first; NULL cancels. */
    csgi_input_on_ready(in, on_ready, &a);
    csgi_input_on_ready(in, on_ready, &b);
    csgi_environ__input_ready(e);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(b.calls, 1);
    /* b registered again from its callback. */
    csgi_environ__input_ready(e);
    ck_assert_int_eq(b.calls, 2);
    csgi_environ__input_ready(e);
    ck_assert_int_eq(b.calls, 2);

    csgi_input_on_ready(in, on_ready, &a);
    csgi_input_on_ready(in, NULL, &a);
    csgi_environ__input_ready(e);
    ck_assert_int_eq(a.calls, 1);
    csgi_input_on_ready(NULL, on_ready, &a);
    fixture_free(f);
}
END_TEST

/* ---- Paths ------------------------------------------------------------------- */

static const struct decode_case {
    const char *in;
    size_t in_len;
    const char *out;
    size_t out_len;
} decode_cases[] = {
    {LIT(""), LIT("")},         {LIT("/plain"), LIT("/plain")},
    {LIT("%2F%2f"), LIT("//")}, {LIT("%41%4a%4A%7e%7E"), LIT("AJJ~~")},
    {LIT("%00"), LIT("\0")},    {LIT("%ff%80"), LIT("\xff\x80")},
    {LIT("%"), LIT("%")},       {LIT("%4"), LIT("%4")},
    {LIT("%g1"), LIT("%g1")},   {LIT("%1g"), LIT("%1g")},
    {LIT("%%41"), LIT("%A")},   {LIT("%2541"), LIT("%41")}, /* decoded once */
    {LIT("a+b"), LIT("a+b")},   {LIT("\xc3\xa9"), LIT("\xc3\xa9")},
    {LIT("end%"), LIT("end%")}, {LIT("end%2"), LIT("end%2")},
};

START_TEST(test_percent_decode)
{
    const struct decode_case *c = &decode_cases[_i];
    char *src = malloc(c->in_len ? c->in_len : 1);
    char *dst = malloc(c->in_len ? c->in_len : 1);
    ck_assert_ptr_nonnull(src);
    ck_assert_ptr_nonnull(dst);
    memcpy(src, c->in, c->in_len);

    size_t n = csgi_environ__percent_decode(dst, src, c->in_len);
    ck_assert_uint_eq(n, c->out_len);
    ck_assert_mem_eq(dst, c->out, n);

    /* In place. */
    n = csgi_environ__percent_decode(src, src, c->in_len);
    ck_assert_uint_eq(n, c->out_len);
    ck_assert_mem_eq(src, c->out, n);
    free(src);
    free(dst);
}
END_TEST

/* A byte at a time, as the decoder was before it looked at words. */
static size_t reference_unescape(char *dst, const char *src, size_t len, unsigned flags)
{
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        int high = i + 2 < len ? csgi_char__hex_value((unsigned char)src[i + 1]) : -1;
        int low = i + 2 < len ? csgi_char__hex_value((unsigned char)src[i + 2]) : -1;
        if (src[i] == '+' && (flags & CSGI_ENVIRON__PLUS_IS_SPACE)) {
            dst[out++] = ' ';
        } else if (src[i] == '%' && high >= 0 && low >= 0) {
            dst[out++] = (char)(high << 4 | low);
            i += 2;
        } else {
            dst[out++] = src[i];
        }
    }
    return out;
}

/* The decoder copies the bytes before the first escape a word at a time:
   an escape or a '+' at every position of every length up to 40 (around
   the words and the last word, which overlaps the one before), each on a
   heap copy of its exact size so that AddressSanitizer sees a read past
   it. */
START_TEST(test_unescape_words)
{
    static const char *const marks[] = {"%41", "+", "%", "%4", "%zz", "%2F"};
    char text[64], expected[64];
    for (size_t len = 0; len <= 40; len++) {
        for (size_t at = 0; at < len || at == 0; at++) {
            for (size_t k = 0; k < COUNT(marks); k++) {
                for (unsigned flags = 0; flags <= CSGI_ENVIRON__PLUS_IS_SPACE; flags++) {
                    /* len bytes: letters, the mark at at (when it fits). */
                    size_t mark_len = strlen(marks[k]);
                    size_t n = len;
                    for (size_t i = 0; i < len; i++)
                        text[i] = (char)((i < at ? 'a' : 'A') + i % 26);
                    if (at + mark_len > len)
                        continue;
                    memcpy(text + at, marks[k], mark_len);
                    char *src = malloc(n ? n : 1);
                    char *dst = malloc(n ? n : 1);
                    ck_assert_ptr_nonnull(src);
                    ck_assert_ptr_nonnull(dst);
                    memcpy(src, text, n);
                    size_t want = reference_unescape(expected, text, n, flags);
                    size_t got = csgi_environ__unescape(dst, src, n, flags);
                    ck_assert_msg(got == want && memcmp(dst, expected, want) == 0,
                                  "\"%.*s\" (flags %u): %zu bytes, %zu expected", (int)n, text,
                                  flags, got, want);
                    /* In place. */
                    got = csgi_environ__unescape(src, src, n, flags);
                    ck_assert_uint_eq(got, want);
                    ck_assert_mem_eq(src, expected, want);
                    free(src);
                    free(dst);
                }
            }
        }
    }
}
END_TEST

static const struct safe_case {
    const char *path;
    int safe;
} safe_cases[] = {
    {"", 1},
    {"/", 1},
    {"/a/b/c", 1},
    {"/a/..", 1},
    {"/a/../b", 1},
    {"/a/b/../../c", 1},
    {"/./a/.", 1},
    {"/...", 1},
    {"/a/.../..", 1},
    {"/..a/..", 1},
    {"/a%2F..", 1},
    {"/a%2fb%2F..%2F..", 1},
    {"/%2e%2e%2e", 1},
    {"/%zz/..", 1},
    {"/%2e%2", 1},
    {"/..", 0},
    {"/../a", 0},
    {"/a/../..", 0},
    {"/a%2f..%2f..%2fx", 0},
    {"/a%2F%2E%2E%2F%2e%2e%2Fetc", 0},
    {"%2F..", 0},
    {"/%2e%2e", 0},
    {"/.%2E/x", 0},
    {"/a/./../..", 0},
    /* Empty segments do not count, as "//" is "/" to a file system. */
    {"/a//../..", 0},
    {"/a%2F%2F..%2F..", 0},
    {"//..", 0},
    {"/a/b//../..", 1},
};

START_TEST(test_path_is_safe)
{
    const struct safe_case *c = &safe_cases[_i];
    size_t len = strlen(c->path);
    char *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, c->path, len);
    ck_assert_msg(csgi_environ__path_is_safe(copy, len) == c->safe, "path_is_safe(\"%s\") != %d",
                  c->path, c->safe);
    free(copy);
}
END_TEST

/* ---- The suite --------------------------------------------------------------- */

static Suite *environ_suite(void)
{
    Suite *suite = suite_create("environ");

    TCase *tc = tcase_create("cgi");
    tcase_add_test(tc, test_basic_get);
    tcase_add_loop_test(tc, test_server_from_host, 0, COUNT(server_cases));
    tcase_add_test(tc, test_server_from_listener);
    tcase_add_test(tc, test_remote_address);
    tcase_add_test(tc, test_server_protocol);
    tcase_add_loop_test(tc, test_targets, 0, COUNT(target_cases));
    tcase_add_test(tc, test_content_headers);
    tcase_add_test(tc, test_http_keys);
    tcase_add_test(tc, test_repeated_headers);
    tcase_add_test(tc, test_underscore_headers);
    tcase_add_test(tc, test_gateway_keys);
    suite_add_tcase(suite, tc);

    tc = tcase_create("memory");
    tcase_add_test(tc, test_lazy);
    tcase_add_loop_test(tc, test_header_fast_path, 0, 2);
    tcase_add_test(tc, test_line_fast_path);
    tcase_add_test(tc, test_keys_before_build);
    tcase_add_test(tc, test_shadows_as_if_built);
    tcase_add_test(tc, test_get_headers);
    tcase_add_test(tc, test_path_info_is);
    tcase_add_test(tc, test_router_accessors);
    tcase_add_test(tc, test_allocations);
    tcase_add_test(tc, test_materialise_nomem);
    tcase_add_test(tc, test_set_nomem);
    tcase_add_test(tc, test_new_invalid);
    tcase_add_test(tc, test_alloc_and_defer);
    tcase_add_test(tc, test_alloc_zeroed);
    suite_add_tcase(suite, tc);

    tc = tcase_create("keys");
    tcase_add_test(tc, test_strings);
    tcase_add_test(tc, test_integers);
    tcase_add_test(tc, test_pointer_destroyed_at_end);
    tcase_add_test(tc, test_pointer_replaced);
    tcase_add_test(tc, test_pointer_removed);
    tcase_add_test(tc, test_pointer_invalid);
    tcase_add_test(tc, test_destructor_sets_value);
    tcase_add_test(tc, test_json_values);
    tcase_add_test(tc, test_remove);
    tcase_add_test(tc, test_iteration_order);
    tcase_add_test(tc, test_growth);
    tcase_add_test(tc, test_growth_nomem);
    suite_add_tcase(suite, tc);

    tc = tcase_create("log");
    tcase_add_test(tc, test_log_prefix);
    tcase_add_test(tc, test_log_long);
    suite_add_tcase(suite, tc);

    tc = tcase_create("input");
    tcase_add_test(tc, test_read_pieces);
    tcase_add_test(tc, test_read_eagain);
    tcase_add_test(tc, test_read_error_sticks);
    tcase_add_test(tc, test_readline);
    tcase_add_test(tc, test_readline_partial);
    tcase_add_test(tc, test_readline_limit);
    tcase_add_test(tc, test_readline_then_read);
    tcase_add_test(tc, test_readline_error);
    tcase_add_test(tc, test_read_all);
    tcase_add_test(tc, test_read_all_eagain);
    tcase_add_test(tc, test_read_all_too_big);
    tcase_add_test(tc, test_read_all_error);
    tcase_add_test(tc, test_read_all_after_readline);
    tcase_add_test(tc, test_input_nomem);
    tcase_add_test(tc, test_on_ready);
    suite_add_tcase(suite, tc);

    tc = tcase_create("paths");
    tcase_add_loop_test(tc, test_percent_decode, 0, COUNT(decode_cases));
    tcase_add_test(tc, test_unescape_words);
    tcase_add_loop_test(tc, test_path_is_safe, 0, COUNT(safe_cases));
    suite_add_tcase(suite, tc);

    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(environ_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
