/*
 * Suite "response": response objects, cookies, Location, conditional and
 * range requests, HTTP errors (csgi/response.h), run in-process: an environ
 * built from a parsed head, a start-response that records what it gets,
 * the body pulled to its end.
 */
#include <csgi.h>
#include <csgi/json.h>

#include "common/arena.h"
#include "gateway/environ_private.h"
#include "gateway/gateway.h"
#include "http/parser.h"
#include "common/status.h"

#include "test_alloc.h"
#include "test_sockaddr.h"

#include <check.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FIELDS 32

/* ---- An in-process request ---------------------------------------------------- */

typedef struct fixture {
    char text[4096];
    csgi_http__header headers[MAX_FIELDS];
    csgi_http__head head;
    struct sockaddr_storage peer, local;
    csgi_input__provider provider;
    csgi_environ__source source;
    csgi_arena arena;
    csgi_environ *environ;
} fixture;

typedef struct captured {
    int calls;
    char status[128];
    size_t count;
    char names[MAX_FIELDS][64];
    char values[MAX_FIELDS][512];
    int refuse; /* the start-response answers CSGI_EINVAL */
    char *body;
    size_t body_len;
    int64_t body_length; /* csgi_body_length */
} captured;

static long no_body_read(void *context, void *buf, size_t len)
{
    (void)context;
    (void)buf;
    (void)len;
    return 0;
}

static size_t no_body_buffered(void *context)
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

/* A request: method, target, and extra header lines each ending in "\r\n". */
static fixture *request(const char *method, const char *target, const char *headers)
{
    static const csgi_http__limits limits = CSGI_HTTP__LIMITS_DEFAULT;
    fixture *f = calloc(1, sizeof(*f));
    ck_assert_ptr_nonnull(f);
    int len = snprintf(f->text, sizeof(f->text), "%s %s HTTP/1.1\r\nHost: example.com\r\n%s\r\n",
                       method, target, headers ? headers : "");
    ck_assert_int_lt(len, (int)sizeof(f->text));
    csgi_http__error error = {0, NULL};
    csgi_http__scanner scanner;
    csgi_http__scanner_init(&scanner);
    ck_assert_int_eq(csgi_http__scan(&scanner, f->text, (size_t)len, &limits, &error),
                     CSGI_HTTP__SCAN_DONE);
    ck_assert_int_eq(csgi_http__parse_head(f->text + scanner.skipped,
                                           scanner.head_length - scanner.skipped, f->headers,
                                           MAX_FIELDS, &f->head, &error),
                     0);
    test_set_inet(&f->peer, "192.0.2.7", 40000);
    test_set_inet(&f->local, "10.0.0.1", 8080);
    f->provider.read = no_body_read;
    f->provider.buffered = no_body_buffered;
    f->source.head = &f->head;
    f->source.peer = (const struct sockaddr *)&f->peer;
    f->source.local = (const struct sockaddr *)&f->local;
    f->source.url_scheme = "http";
    f->source.input = &f->provider;
    f->source.log = ignore_log;
    csgi_arena__init(&f->arena, NULL);
    f->environ = csgi_environ__new(&f->arena, &f->source);
    ck_assert_ptr_nonnull(f->environ);
    /* build the keys now, so allocation counts start after */
    ck_assert_ptr_nonnull(csgi_environ_get(f->environ, "REQUEST_METHOD"));
    return f;
}

static void finish(fixture *f)
{
    csgi_arena__clear(&f->arena);
    free(f);
}

static int capture_start(const char *status, const csgi_header *headers, size_t count,
                         const char *exc_info, void *userdata)
{
    (void)exc_info;
    captured *c = userdata;
    c->calls++;
    if (c->refuse)
        return CSGI_EINVAL;
    snprintf(c->status, sizeof(c->status), "%s", status);
    ck_assert_uint_le(count, MAX_FIELDS);
    c->count = count;
    for (size_t i = 0; i < count; i++) {
        snprintf(c->names[i], sizeof(c->names[i]), "%.*s", (int)headers[i].name_len,
                 headers[i].name);
        snprintf(c->values[i], sizeof(c->values[i]), "%.*s", (int)headers[i].value_len,
                 headers[i].value);
    }
    return 0;
}

/* Send response (or call app) for f, record the head and drain the body
   into c. Returns 1 when a body came back. */
static int run(fixture *f, csgi_response *response, csgi_app *app, captured *c)
{
    free(c->body);
    int refuse = c->refuse;
    memset(c, 0, sizeof(*c));
    c->refuse = refuse;
    csgi_start_response root = {f->environ, NULL, capture_start, c};
    csgi_body *body = app ? csgi_app_call(app, f->environ, &root)
                          : csgi_response_send(response, f->environ, &root);
    if (!body)
        return 0;
    c->body_length = csgi_body_length(body);
    size_t room = 1 << 16;
    c->body = malloc(room + 1);
    ck_assert_ptr_nonnull(c->body);
    csgi_chunk chunk;
    int rc;
    while ((rc = csgi_body_next(body, &chunk)) == 1) {
        ck_assert_uint_le(c->body_len + chunk.len, room);
        memcpy(c->body + c->body_len, chunk.data, chunk.len);
        c->body_len += chunk.len;
    }
    c->body[c->body_len] = '\0';
    ck_assert_int_eq(rc, 0);
    csgi_body_close(body);
    return 1;
}

/* The value of the index-th field named name, or NULL. */
static const char *field(const captured *c, const char *name, int index)
{
    for (size_t i = 0; i < c->count; i++)
        if (strcasecmp(c->names[i], name) == 0 && index-- == 0)
            return c->values[i];
    return NULL;
}

static void done(captured *c)
{
    free(c->body);
    c->body = NULL;
}

static csgi_response *new_response(fixture *f)
{
    csgi_response *response = NULL;
    ck_assert_int_eq(csgi_response_new(&response, f ? f->environ : NULL), 0);
    ck_assert_ptr_nonnull(response);
    return response;
}

/* ---- Status and headers ------------------------------------------------------- */

START_TEST(status_by_code_and_line)
{
    fixture *f = request("GET", "/", NULL);
    csgi_response *r = new_response(f);
    captured c = {0};
    ck_assert_int_eq(csgi_response_status(r), 200);
    ck_assert_int_eq(csgi_response_set_status(r, 404), 0);
    ck_assert_int_eq(csgi_response_status(r), 404);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.status, "404 Not Found");
    ck_assert_uint_eq(c.body_len, 0);

    static const int bad_codes[] = {0, 99, 100, 101, 199, 299, 306, 418, 600, 1000, -200};
    for (size_t i = 0; i < sizeof(bad_codes) / sizeof(bad_codes[0]); i++)
        ck_assert_int_eq(csgi_response_set_status(r, bad_codes[i]), CSGI_EINVAL);
    static const char *const bad_lines[] = {
        "99 X", "600 Too Big",  "200OK", "2x0 OK", "200 a\r\nX-Injected: 1", "200 a\nb",
        "",     "100 Continue", "20"};
    for (size_t i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++)
        ck_assert_msg(csgi_response_set_status_line(r, bad_lines[i]) == CSGI_EINVAL, "took %s",
                      bad_lines[i]);
    ck_assert_int_eq(csgi_response_status(r), 404);
    ck_assert_int_eq(csgi_response_set_status_line(r, "299 Custom\tThing"), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.status, "299 Custom\tThing");
    ck_assert_int_eq(csgi_response_set_status_line(r, "201 "), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.status, "201 ");
    ck_assert_ptr_null(csgi_response_reason(299));
    ck_assert_str_eq(csgi_response_reason(418 - 4), "URI Too Long");
    ck_assert_int_eq(csgi_response_new(NULL, f->environ), CSGI_EINVAL);
    done(&c);
    finish(f);
}
END_TEST

START_TEST(headers_add_set_remove_get)
{
    fixture *f = request("GET", "/", NULL);
    csgi_response *r = new_response(f);
    captured c = {0};
    ck_assert_int_eq(csgi_response_add_header(r, "Vary", "Accept"), 0);
    ck_assert_int_eq(csgi_response_add_header(r, "X-One", "1"), 0);
    ck_assert_int_eq(csgi_response_add_header(r, "vary", "Cookie"), 0);
    ck_assert_str_eq(csgi_response_get_header(r, "VARY", 0), "Accept");
    ck_assert_str_eq(csgi_response_get_header(r, "Vary", 1), "Cookie");
    ck_assert_ptr_null(csgi_response_get_header(r, "Vary", 2));
    ck_assert_ptr_null(csgi_response_get_header(r, "X-None", 0));

    size_t cursor = 0;
    const char *name, *value;
    const char *order[] = {"Vary", "X-One", "vary"};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(csgi_response_next_header(r, &cursor, &name, &value), 1);
        ck_assert_str_eq(name, order[i]);
    }
    ck_assert_int_eq(csgi_response_next_header(r, &cursor, &name, &value), 0);

    ck_assert_int_eq(csgi_response_set_header(r, "VARY", "Origin"), 0);
    ck_assert_str_eq(csgi_response_get_header(r, "Vary", 0), "Origin");
    ck_assert_ptr_null(csgi_response_get_header(r, "Vary", 1));
    /* many fields: the table grows */
    char name_buf[32];
    for (int i = 0; i < 20; i++) {
        snprintf(name_buf, sizeof(name_buf), "X-Many-%d", i);
        ck_assert_int_eq(csgi_response_add_header(r, name_buf, "\tv\x80"), 0);
    }
    ck_assert_uint_eq(csgi_response_remove_header(r, "x-one"), 1);
    ck_assert_uint_eq(csgi_response_remove_header(r, "x-one"), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_uint_eq(c.count, 21);
    ck_assert_str_eq(field(&c, "Vary", 0), "Origin");
    ck_assert_str_eq(field(&c, "X-Many-19", 0), "\tv\x80");
    ck_assert_ptr_null(field(&c, "X-One", 0));

    /* refused: not tokens, control characters, the server's own fields */
    static const char *const bad_names[] = {
        "",           "Bad Name",          "X:Y",
        "X\r\nY",     "Content-Length",    "connection",
        "Keep-Alive", "Transfer-Encoding", "TE",
        "Trailer",    "Upgrade",           "Proxy-Authenticate"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
        ck_assert_msg(csgi_response_add_header(r, bad_names[i], "v") == CSGI_EINVAL, "took %s",
                      bad_names[i]);
    static const char *const bad_values[] = {"a\r\nSet-Cookie: x=1", "a\nb", "a\rb", "\x01",
                                             "del\x7f"};
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
        ck_assert_int_eq(csgi_response_add_header(r, "X-Bad", bad_values[i]), CSGI_EINVAL);
        ck_assert_int_eq(csgi_response_set_header(r, "Vary", bad_values[i]), CSGI_EINVAL);
    }
    ck_assert_int_eq(csgi_response_add_header(r, "X-Bad", NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_response_add_header(r, NULL, "v"), CSGI_EINVAL);
    /* a refused set leaves the old value */
    ck_assert_str_eq(csgi_response_get_header(r, "Vary", 0), "Origin");
    ck_assert_ptr_null(csgi_response_get_header(r, "X-Bad", 0));
    done(&c);
    finish(f);
}
END_TEST

/* The names refused are the gateway's hop-by-hop list (common/token.h), in
   any case, and the field array grows past many doublings in order. */
START_TEST(headers_hop_by_hop_and_many)
{
    csgi_response *r;
    ck_assert_int_eq(csgi_response_new(&r, NULL), 0);
    static const char *const refused[] = {"proxy-status",   "PROXY-CONNECTION",
                                          "content-length", "tRaIlEr",
                                          "keep-alive",     "Proxy-Authorization"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        ck_assert_msg(csgi_response_add_header(r, refused[i], "v") == CSGI_EINVAL, "took %s",
                      refused[i]);
    static const char *const taken[] = {
        "Proxy", "X-Upgrade", "Content-Location", "Trailers", "Upgrade-Insecure-Requests", "T"};
    for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++)
        ck_assert_msg(csgi_response_add_header(r, taken[i], "v") == 0, "refused %s", taken[i]);
    char value[16];
    for (int i = 0; i < 300; i++) {
        snprintf(value, sizeof(value), "%d", i);
        ck_assert_int_eq(csgi_response_add_header(r, "X-Many", value), 0);
    }
    for (int i = 0; i < 300; i++) {
        snprintf(value, sizeof(value), "%d", i);
        ck_assert_str_eq(csgi_response_get_header(r, "x-many", (size_t)i), value);
    }
    ck_assert_ptr_null(csgi_response_get_header(r, "X-Many", 300));
    csgi_response_free(r);
}
END_TEST

/* ---- Bodies ------------------------------------------------------------------------- */

START_TEST(bodies_bytes_text_json)
{
    fixture *f = request("GET", "/", NULL);
    csgi_response *r = new_response(f);
    captured c = {0};
    char source[] = "copied bytes";
    ck_assert_int_eq(csgi_response_set_body(r, source, 6), 0);
    source[0] = 'X';
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.body, "copied");
    ck_assert_int_eq(c.body_length, 6);

    static const char literal[] = "static body";
    ck_assert_int_eq(csgi_response_set_body_static(r, literal, sizeof(literal) - 1), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.body, "static body");
    ck_assert_int_eq(csgi_response_set_body(r, NULL, 3), CSGI_EINVAL);
    ck_assert_int_eq(csgi_response_set_body_static(r, NULL, 3), CSGI_EINVAL);

    ck_assert_int_eq(csgi_response_set_text(r, "h\xc3\xa9llo", NULL), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(field(&c, "Content-Type", 0), "text/plain; charset=utf-8");
    ck_assert_str_eq(c.body, "h\xc3\xa9llo");
    ck_assert_int_eq(csgi_response_set_text(r, "x", "iso-8859-1"), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(field(&c, "Content-Type", 0), "text/plain; charset=iso-8859-1");
    ck_assert_ptr_null(field(&c, "Content-Type", 1));
    ck_assert_int_eq(csgi_response_set_text(r, "x", "bad charset"), CSGI_EINVAL);

    ck_assert_int_eq(csgi_response_set_content_type(r, "image/svg+xml", NULL), 0);
    ck_assert_str_eq(csgi_response_get_header(r, "Content-Type", 0), "image/svg+xml");
    static const char *const bad_types[] = {"text",       "/html",      "text/",
                                            "te xt/html", "text/ht;ml", "text/html\r\n"};
    for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++)
        ck_assert_int_eq(csgi_response_set_content_type(r, bad_types[i], NULL), CSGI_EINVAL);

    json_t *value = json_pack("{s:i, s:[s]}", "answer", 42, "list", "a\"b");
    json_incref(value); /* keep one to watch the reference taken */
    ck_assert_int_eq(csgi_response_set_json(r, value), 0);
    ck_assert_int_eq((int)value->refcount, 1);
    json_decref(value);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(field(&c, "Content-Type", 0), "application/json");
    ck_assert_str_eq(c.body, "{\"answer\":42,\"list\":[\"a\\\"b\"]}");
    ck_assert_int_eq(csgi_response_set_json(r, json_integer(7)), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.body, "7");
    /* Around the size serialized in one pass (512 bytes) and far beyond:
       a string of n bytes is n + 2 of JSON. */
    static const size_t sizes[] = {1, 509, 510, 511, 512, 5000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *text = malloc(sizes[i] + 1);
        ck_assert_ptr_nonnull(text);
        for (size_t k = 0; k < sizes[i]; k++)
            text[k] = (char)('a' + k % 26);
        text[sizes[i]] = '\0';
        ck_assert_int_eq(csgi_response_set_json(r, json_string(text)), 0);
        ck_assert(run(f, r, NULL, &c));
        ck_assert_uint_eq(c.body_len, sizes[i] + 2);
        ck_assert_int_eq(c.body[0], '"');
        ck_assert_mem_eq(c.body + 1, text, sizes[i]);
        ck_assert_int_eq(c.body[sizes[i] + 1], '"');
        free(text);
    }
    ck_assert_int_eq(csgi_response_set_json(r, NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_response_set_json(NULL, json_true()), CSGI_EINVAL);
    done(&c);
    finish(f);
}
END_TEST

static char file_path[64];

/* A temporary file holding "0123456789abcdef"; returns an open fd. */
static int make_file(void)
{
    snprintf(file_path, sizeof(file_path), "/tmp/csgi_response_XXXXXX");
    int fd = mkstemp(file_path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "0123456789abcdef", 16), 16);
    unlink(file_path);
    return fd;
}

static int open_fds(void)
{
    int count = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) != -1)
            count++;
    return count;
}

START_TEST(file_body_and_descriptors)
{
    int before = open_fds();
    fixture *f = request("GET", "/", NULL);
    csgi_response *r = new_response(f);
    captured c = {0};
    ck_assert_int_eq(csgi_response_set_file(r, make_file(), 2, 10), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.body, "23456789ab");
    ck_assert_int_eq(c.body_length, 10);
    /* sent twice: each send has its own descriptor */
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.body, "23456789ab");
    /* replacing the body closes the file */
    int with_file = open_fds();
    ck_assert_int_eq(csgi_response_set_body_static(r, "x", 1), 0);
    ck_assert_int_eq(open_fds(), with_file - 1);
    ck_assert_int_eq(csgi_response_set_file(r, -1, 0, 1), CSGI_EINVAL);
    ck_assert_int_eq(csgi_response_set_file(r, make_file(), -1, 1), CSGI_EINVAL);
    ck_assert_int_eq(csgi_response_set_file(r, make_file(), 0, -1), CSGI_EINVAL);
    ck_assert_int_eq(csgi_response_set_file(r, make_file(), 0, 16), 0);
    done(&c);
    finish(f);
    ck_assert_int_eq(open_fds(), before); /* all closed when the request ended */

    /* a heap response closes its file when freed */
    r = new_response(NULL);
    ck_assert_int_eq(csgi_response_set_file(r, make_file(), 0, 16), 0);
    ck_assert_int_eq(open_fds(), before + 1);
    csgi_response_free(r);
    ck_assert_int_eq(open_fds(), before);
}
END_TEST

static int stream_closes;
static int stream_left;

static int stream_next(void *state, csgi_chunk *chunk)
{
    (void)state;
    if (stream_left == 0)
        return 0;
    stream_left--;
    chunk->data = "piece;";
    chunk->len = 6;
    return 1;
}

static void stream_close(void *state)
{
    (void)state;
    stream_closes++;
}

static const csgi_body_type stream_type = {"pieces", stream_next, stream_close};
static const csgi_body_type broken_type = {"broken", NULL, stream_close};

START_TEST(stream_body_sent_once)
{
    fixture *f = request("GET", "/", NULL);
    csgi_response *r = new_response(f);
    captured c = {0};
    stream_closes = 0;
    stream_left = 3;
    ck_assert_int_eq(csgi_response_set_stream(r, &stream_type, NULL), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.body, "piece;piece;piece;");
    ck_assert_int_eq(c.body_length, -1);
    ck_assert_int_eq(stream_closes, 1);
    ck_assert(!run(f, r, NULL, &c)); /* a stream goes once */
    ck_assert_int_eq(c.calls, 0);

    /* not sent: closed when the request ends; replaced: closed at once */
    ck_assert_int_eq(csgi_response_set_stream(r, &stream_type, NULL), 0);
    ck_assert_int_eq(csgi_response_set_stream(r, &stream_type, NULL), 0);
    ck_assert_int_eq(stream_closes, 2);
    ck_assert_int_eq(csgi_response_set_stream(r, &broken_type, NULL), CSGI_EINVAL);
    ck_assert_int_eq(stream_closes, 3);
    ck_assert_int_eq(csgi_response_set_stream(r, NULL, NULL), CSGI_EINVAL);
    done(&c);
    finish(f);
    ck_assert_int_eq(stream_closes, 4);

    /* start-response refusing the head: the body is closed, NULL returned */
    f = request("GET", "/", NULL);
    r = new_response(f);
    ck_assert_int_eq(csgi_response_set_stream(r, &stream_type, NULL), 0);
    c.refuse = 1;
    ck_assert(!run(f, r, NULL, &c));
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(stream_closes, 5);
    finish(f);
    ck_assert_int_eq(stream_closes, 5);

    /* a heap response closes an unsent stream when freed; no app of it */
    r = new_response(NULL);
    ck_assert_int_eq(csgi_response_set_stream(r, &stream_type, NULL), 0);
    csgi_response_free(r);
    ck_assert_int_eq(stream_closes, 6);
    r = new_response(NULL);
    ck_assert_int_eq(csgi_response_set_stream(r, &stream_type, NULL), 0);
    csgi_app *app = (csgi_app *)&app;
    ck_assert_int_eq(csgi_response_app(&app, r), CSGI_EINVAL);
    ck_assert_ptr_null(app);
    ck_assert_int_eq(stream_closes, 7);
}
END_TEST

static int delegate_destroyed;

static csgi_body *delegate_call(void *state, csgi_environ *environ,
                                csgi_start_response *start_response)
{
    static const csgi_header headers[] = {CSGI_HEADER("X-Delegate", "yes")};
    ck_assert_str_eq(state, "state");
    csgi_start_response_call(start_response, "202 Accepted", headers, 1, NULL);
    return csgi_body_static(environ, csgi_environ_get(environ, "PATH_INFO"),
                            strlen(csgi_environ_get(environ, "PATH_INFO")));
}

static void delegate_destroy(void *state)
{
    (void)state;
    delegate_destroyed++;
}

static const csgi_app_type delegate_type = {"delegate", delegate_call, delegate_destroy};

START_TEST(no_body_for_head_204_304)
{
    /* HEAD: no bytes, the length a GET would get declared */
    fixture *f = request("HEAD", "/", NULL);
    csgi_response *r = new_response(f);
    captured c = {0};
    ck_assert_int_eq(csgi_response_set_text(r, "Hello World", NULL), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.status, "200 OK");
    ck_assert_str_eq(field(&c, "Content-Type", 0), "text/plain; charset=utf-8");
    ck_assert_uint_eq(c.body_len, 0);
    ck_assert_int_eq(c.body_length, 11);
    int before = open_fds();
    ck_assert_int_eq(csgi_response_set_file(r, make_file(), 2, 5), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_uint_eq(c.body_len, 0);
    ck_assert_int_eq(c.body_length, 5);
    /* a stream is not pulled, but closed, and goes once all the same */
    stream_closes = 0;
    stream_left = 3;
    ck_assert_int_eq(csgi_response_set_stream(r, &stream_type, NULL), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_uint_eq(c.body_len, 0);
    ck_assert_int_eq(c.body_length, -1);
    ck_assert_int_eq(stream_left, 3);
    ck_assert_int_eq(stream_closes, 1);
    ck_assert(!run(f, r, NULL, &c));
    done(&c);
    finish(f);
    ck_assert_int_eq(open_fds(), before);

    /* 204, and a 304 to a conditional GET: no bytes, nothing declared */
    f = request("GET", "/", "If-None-Match: \"v\"\r\n");
    r = new_response(f);
    ck_assert_int_eq(csgi_response_set_status(r, 204), 0);
    ck_assert_int_eq(csgi_response_set_body(r, "dropped", 7), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.status, "204 No Content");
    ck_assert_uint_eq(c.body_len, 0);
    ck_assert_int_eq(c.body_length, 0);
    ck_assert_int_eq(csgi_response_set_status(r, 200), 0);
    ck_assert_int_eq(csgi_response_set_etag(r, "v", 0), 0);
    csgi_response_set_conditional(r, 1);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.status, "304 Not Modified");
    ck_assert_uint_eq(c.body_len, 0);
    done(&c);
    finish(f);
}
END_TEST

START_TEST(delegate_to_application)
{
    csgi_app *app = NULL;
    delegate_destroyed = 0;
    static char state[] = "state";
    ck_assert_int_eq(csgi_app_new(&app, &delegate_type, state), 0);
    fixture *f = request("GET", "/delegated", NULL);
    csgi_response *r = new_response(f);
    captured c = {0};
    ck_assert_int_eq(csgi_response_set_status(r, 500), 0);
    ck_assert_int_eq(csgi_response_add_header(r, "X-Ignored", "1"), 0);
    ck_assert_int_eq(csgi_response_set_app(r, csgi_app_ref(app)), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.status, "202 Accepted");
    ck_assert_str_eq(field(&c, "X-Delegate", 0), "yes");
    ck_assert_ptr_null(field(&c, "X-Ignored", 0));
    ck_assert_str_eq(c.body, "/delegated");
    ck_assert_int_eq(csgi_response_set_app(r, NULL), CSGI_EINVAL);
    done(&c);
    finish(f);
    ck_assert_int_eq(delegate_destroyed, 0); /* our reference is left */
    csgi_app_free(app);
    ck_assert_int_eq(delegate_destroyed, 1);
}
END_TEST

/* ---- Cookies ------------------------------------------------------------------------ */

START_TEST(cookies_set_and_delete)
{
    fixture *f = request("GET", "/", NULL);
    csgi_response *r = new_response(f);
    csgi_cookie_options options = CSGI_COOKIE_OPTIONS_INIT;
    ck_assert_int_eq(csgi_response_set_cookie(r, "plain", "v1", NULL), 0);
    ck_assert_str_eq(csgi_response_get_header(r, "Set-Cookie", 0), "plain=v1");
    options.max_age = 3600;
    options.has_expires = 1;
    options.expires = 784111777;
    options.path = "/app";
    options.domain = "example.com";
    options.secure = 1;
    options.http_only = 1;
    options.same_site = CSGI_SAME_SITE_STRICT;
    ck_assert_int_eq(
        csgi_response_set_cookie(r, "sid", "\"a1!#$%&'()*+-./:<=>?@[]^_`{|}~\"", &options), 0);
    ck_assert_str_eq(csgi_response_get_header(r, "Set-Cookie", 1),
                     "sid=\"a1!#$%&'()*+-./:<=>?@[]^_`{|}~\"; Max-Age=3600; "
                     "Expires=Sun, 06 Nov 1994 08:49:37 GMT; Path=/app; Domain=example.com; "
                     "Secure; HttpOnly; SameSite=Strict");
    csgi_cookie_options lax = CSGI_COOKIE_OPTIONS_INIT;
    lax.same_site = CSGI_SAME_SITE_LAX;
    ck_assert_int_eq(csgi_response_set_cookie(r, "l", "", &lax), 0);
    ck_assert_str_eq(csgi_response_get_header(r, "Set-Cookie", 2), "l=; SameSite=Lax");
    ck_assert_int_eq(csgi_response_delete_cookie(r, "sid", "/app", NULL), 0);
    ck_assert_str_eq(csgi_response_get_header(r, "Set-Cookie", 3),
                     "sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/app");

    /* refused: names, values and attributes outside RFC 6265 */
    static const char *const bad_names[] = {"", "a b", "a;b", "a=b", "a,b", "caf\xc3\xa9", "a\""};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
        ck_assert_int_eq(csgi_response_set_cookie(r, bad_names[i], "v", NULL), CSGI_EINVAL);
    static const char *const bad_values[] = {"a b",  "a;b", "a,b",       "a\\b", "a\"b",
                                             "\"ab", "\"",  "a\r\nX: y", "\x7f", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++)
        ck_assert_msg(csgi_response_set_cookie(r, "n", bad_values[i], NULL) == CSGI_EINVAL,
                      "took %s", bad_values[i]);
    csgi_cookie_options bad = CSGI_COOKIE_OPTIONS_INIT;
    bad.path = "/a;b";
    ck_assert_int_eq(csgi_response_set_cookie(r, "n", "v", &bad), CSGI_EINVAL);
    bad.path = "/a\nb";
    ck_assert_int_eq(csgi_response_set_cookie(r, "n", "v", &bad), CSGI_EINVAL);
    bad.path = "";
    ck_assert_int_eq(csgi_response_set_cookie(r, "n", "v", &bad), CSGI_EINVAL);
    bad.path = NULL;
    bad.domain = "exa mple.com";
    ck_assert_int_eq(csgi_response_set_cookie(r, "n", "v", &bad), CSGI_EINVAL);
    bad.domain = NULL;
    bad.same_site = CSGI_SAME_SITE_NONE;
    ck_assert_int_eq(csgi_response_set_cookie(r, "n", "v", &bad), CSGI_EINVAL);
    bad.secure = 1;
    ck_assert_int_eq(csgi_response_set_cookie(r, "n", "v", &bad), 0);
    ck_assert_str_eq(csgi_response_get_header(r, "Set-Cookie", 4), "n=v; Secure; SameSite=None");
    bad.same_site = (csgi_same_site)9;
    ck_assert_int_eq(csgi_response_set_cookie(r, "n", "v", &bad), CSGI_EINVAL);
    bad.same_site = CSGI_SAME_SITE_UNSET;
    bad.max_age = -2;
    ck_assert_int_eq(csgi_response_set_cookie(r, "n", "v", &bad), CSGI_EINVAL);
    bad.max_age = -1;
    bad.version = 0;
    ck_assert_int_eq(csgi_response_set_cookie(r, "n", "v", &bad), CSGI_EINVAL);
    ck_assert_int_eq(csgi_response_set_cookie(r, "n", NULL, NULL), CSGI_EINVAL);
    ck_assert_ptr_null(csgi_response_get_header(r, "Set-Cookie", 5));
    finish(f);
}
END_TEST

/* ---- Caching, validators, Location ---------------------------------------------------- */

START_TEST(cache_control_etag_last_modified)
{
    fixture *f = request("GET", "/", NULL);
    csgi_response *r = new_response(f);
    csgi_cache_control cache = CSGI_CACHE_CONTROL_INIT;
    cache.is_public = 1;
    cache.max_age = 60;
    ck_assert_int_eq(csgi_response_set_cache_control(r, &cache), 0);
    ck_assert_str_eq(csgi_response_get_header(r, "Cache-Control", 0), "public, max-age=60");
    csgi_cache_control all = CSGI_CACHE_CONTROL_INIT;
    all.is_private = all.no_cache = all.no_store = all.must_revalidate = all.immutable = 1;
    all.max_age = 0;
    all.s_maxage = 9223372036854775807LL;
    ck_assert_int_eq(csgi_response_set_cache_control(r, &all), 0);
    ck_assert_str_eq(csgi_response_get_header(r, "Cache-Control", 0),
                     "private, no-cache, no-store, must-revalidate, max-age=0, "
                     "s-maxage=9223372036854775807, immutable");
    ck_assert_ptr_null(csgi_response_get_header(r, "Cache-Control", 1));
    cache.is_private = 1;
    ck_assert_int_eq(csgi_response_set_cache_control(r, &cache), CSGI_EINVAL);
    csgi_cache_control none = CSGI_CACHE_CONTROL_INIT;
    ck_assert_int_eq(csgi_response_set_cache_control(r, &none), 0);
    ck_assert_ptr_null(csgi_response_get_header(r, "Cache-Control", 0));
    none.version = 2;
    ck_assert_int_eq(csgi_response_set_cache_control(r, &none), CSGI_EINVAL);
    ck_assert_int_eq(csgi_response_set_cache_control(r, NULL), CSGI_EINVAL);

    ck_assert_int_eq(csgi_response_set_etag(r, "v1", 0), 0);
    ck_assert_str_eq(csgi_response_get_header(r, "ETag", 0), "\"v1\"");
    ck_assert_int_eq(csgi_response_set_etag(r, "v2", 1), 0);
    ck_assert_str_eq(csgi_response_get_header(r, "ETag", 0), "W/\"v2\"");
    ck_assert_ptr_null(csgi_response_get_header(r, "ETag", 1));
    ck_assert_int_eq(csgi_response_set_etag(r, "a\"b", 0), CSGI_EINVAL);
    ck_assert_int_eq(csgi_response_set_etag(r, "a b", 0), CSGI_EINVAL);
    ck_assert_int_eq(csgi_response_set_etag(r, "a\r\n", 0), CSGI_EINVAL);
    ck_assert_int_eq(csgi_response_set_last_modified(r, 784111777), 0);
    ck_assert_str_eq(csgi_response_get_header(r, "Last-Modified", 0),
                     "Sun, 06 Nov 1994 08:49:37 GMT");
    if (sizeof(time_t) > 4)
        ck_assert_int_eq(csgi_response_set_last_modified(r, (time_t)300000000000LL), CSGI_ERANGE);
    finish(f);
}
END_TEST

static const char *location_for(fixture *f, const char *location, captured *c)
{
    csgi_response *r = new_response(f);
    ck_assert_int_eq(csgi_response_set_status(r, 302), 0);
    ck_assert_int_eq(csgi_response_set_location(r, location), 0);
    ck_assert(run(f, r, NULL, c));
    return field(c, "Location", 0);
}

START_TEST(location_made_absolute)
{
    fixture *f = request("GET", "/a/b?x=1", NULL);
    captured c = {0};
    ck_assert_int_eq(csgi_environ_set(f->environ, "SCRIPT_NAME", "/app"), 0);
    ck_assert_str_eq(location_for(f, "https://other.example/x", &c), "https://other.example/x");
    ck_assert_str_eq(location_for(f, "mailto:a@b", &c), "mailto:a@b");
    ck_assert_str_eq(location_for(f, "/login", &c), "http://example.com/login");
    ck_assert_str_eq(location_for(f, "//cdn.example/x", &c), "http://cdn.example/x");
    ck_assert_str_eq(location_for(f, "c", &c), "http://example.com/app/a/c");
    ck_assert_str_eq(location_for(f, "../c", &c), "http://example.com/app/a/../c");
    ck_assert_str_eq(location_for(f, "?y=2", &c), "http://example.com/app/a/b?y=2");
    ck_assert_str_eq(location_for(f, "#top", &c), "http://example.com/app/a/b?x=1#top");
    ck_assert_str_eq(location_for(f, "", &c), "http://example.com/app/a/b");
    /* a decoded path is encoded again: no header splitting from PATH_INFO */
    ck_assert_int_eq(csgi_environ_set(f->environ, "PATH_INFO", "/s p\r\n%/"), 0);
    ck_assert_str_eq(location_for(f, "z", &c), "http://example.com/app/s%20p%0D%0A%25/z");
    /* no Host: SERVER_NAME and a port that is not the default */
    ck_assert_int_eq(csgi_environ_remove(f->environ, "HTTP_HOST"), 0);
    ck_assert_int_eq(csgi_environ_set(f->environ, "SERVER_NAME", "internal"), 0);
    ck_assert_int_eq(csgi_environ_set(f->environ, "SERVER_PORT", "8080"), 0);
    ck_assert_str_eq(location_for(f, "/x", &c), "http://internal:8080/x");
    ck_assert_int_eq(csgi_environ_set(f->environ, "SERVER_PORT", "80"), 0);
    ck_assert_str_eq(location_for(f, "/x", &c), "http://internal/x");
    ck_assert_int_eq(csgi_environ_set(f->environ, "csgi.url_scheme", "https"), 0);
    ck_assert_int_eq(csgi_environ_set(f->environ, "SCRIPT_NAME", ""), 0);
    ck_assert_int_eq(csgi_environ_set(f->environ, "PATH_INFO", ""), 0);
    ck_assert_str_eq(location_for(f, "y", &c), "https://internal:80/y");

    csgi_response *r = new_response(f);
    ck_assert_int_eq(csgi_response_set_location(r, "/a\r\nSet-Cookie: x=1"), CSGI_EINVAL);
    done(&c);
    finish(f);
}
END_TEST

/* ---- Conditional responses --------------------------------------------------------------- */

/* A conditional 200 with "0123456789abcdef", ETag "v1", Last-Modified
   784111777, Cache-Control, a cookie and a Content-Language. */
static csgi_response *conditional_response(fixture *f)
{
    csgi_response *r = new_response(f);
    csgi_cache_control cache = CSGI_CACHE_CONTROL_INIT;
    cache.max_age = 10;
    ck_assert_int_eq(csgi_response_set_text(r, "0123456789abcdef", NULL), 0);
    ck_assert_int_eq(csgi_response_set_etag(r, "v1", 0), 0);
    ck_assert_int_eq(csgi_response_set_last_modified(r, 784111777), 0);
    ck_assert_int_eq(csgi_response_set_cache_control(r, &cache), 0);
    ck_assert_int_eq(csgi_response_set_cookie(r, "k", "v", NULL), 0);
    ck_assert_int_eq(csgi_response_add_header(r, "Content-Language", "en"), 0);
    csgi_response_set_conditional(r, 1);
    return r;
}

/* Send the conditional response to method + header lines; c gets it. */
static void conditional(const char *method, const char *headers, captured *c)
{
    fixture *f = request(method, "/doc", headers);
    ck_assert(run(f, conditional_response(f), NULL, c));
    finish(f);
}

START_TEST(not_modified_by_etag)
{
    captured c = {0};
    conditional("GET", "If-None-Match: \"v1\"\r\n", &c);
    ck_assert_str_eq(c.status, "304 Not Modified");
    ck_assert_uint_eq(c.body_len, 0);
    ck_assert_int_eq(c.body_length, 0);
    ck_assert_str_eq(field(&c, "ETag", 0), "\"v1\"");
    ck_assert_str_eq(field(&c, "Last-Modified", 0), "Sun, 06 Nov 1994 08:49:37 GMT");
    ck_assert_str_eq(field(&c, "Cache-Control", 0), "max-age=10");
    ck_assert_str_eq(field(&c, "Set-Cookie", 0), "k=v");
    ck_assert_ptr_null(field(&c, "Content-Type", 0));
    ck_assert_ptr_null(field(&c, "Content-Language", 0));
    ck_assert_ptr_null(field(&c, "Content-Length", 0));
    ck_assert_ptr_null(field(&c, "Accept-Ranges", 0));

    conditional("HEAD", "If-None-Match: \"x\", W/\"v1\"\r\n", &c); /* weak comparison */
    ck_assert_str_eq(c.status, "304 Not Modified");
    conditional("GET", "If-None-Match: *\r\n", &c);
    ck_assert_str_eq(c.status, "304 Not Modified");
    conditional("GET", "If-None-Match: \"v2\"\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    ck_assert_str_eq(c.body, "0123456789abcdef");
    ck_assert_str_eq(field(&c, "Accept-Ranges", 0), "bytes");
    ck_assert_str_eq(field(&c, "Content-Type", 0), "text/plain; charset=utf-8");
    /* other methods: 412 */
    conditional("POST", "If-None-Match: \"v1\"\r\n", &c);
    ck_assert_str_eq(c.status, "412 Precondition Failed");
    ck_assert_str_eq(c.body, "412 Precondition Failed\n");
    ck_assert_str_eq(field(&c, "Content-Type", 0), "text/plain; charset=utf-8");
    ck_assert_ptr_null(field(&c, "Content-Type", 1));
    /* If-None-Match wins over a matching If-Modified-Since */
    conditional(
        "GET", "If-None-Match: \"v2\"\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    done(&c);
}
END_TEST

START_TEST(not_modified_by_date)
{
    captured c = {0};
    conditional("GET", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n", &c);
    ck_assert_str_eq(c.status, "304 Not Modified");
    ck_assert_uint_eq(c.body_len, 0);
    conditional("GET", "If-Modified-Since: Sunday, 06-Nov-94 08:49:38 GMT\r\n", &c);
    ck_assert_str_eq(c.status, "304 Not Modified");
    conditional("GET", "If-Modified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    conditional("GET", "If-Modified-Since: yesterday\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    conditional("POST", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    ck_assert_str_eq(c.body, "0123456789abcdef");

    /* not conditional: the same headers change nothing */
    fixture *f = request("GET", "/",
                         "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                         "If-None-Match: *\r\nRange: bytes=0-1\r\n");
    csgi_response *r = conditional_response(f);
    csgi_response_set_conditional(r, 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.status, "200 OK");
    ck_assert_ptr_null(field(&c, "Accept-Ranges", 0));
    ck_assert_str_eq(c.body, "0123456789abcdef");
    /* only a 200 is made conditional */
    csgi_response_set_conditional(r, 1);
    ck_assert_int_eq(csgi_response_set_status(r, 201), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.status, "201 Created");
    finish(f);
    done(&c);
}
END_TEST

START_TEST(precondition_if_match)
{
    captured c = {0};
    conditional("PUT", "If-Match: \"v0\"\r\n", &c);
    ck_assert_str_eq(c.status, "412 Precondition Failed");
    conditional("PUT", "If-Match: W/\"v1\"\r\n", &c); /* strong comparison */
    ck_assert_str_eq(c.status, "412 Precondition Failed");
    conditional("PUT", "If-Match: \"v0\", \"v1\"\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    conditional("PUT", "If-Match: *\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    conditional("PUT", "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n", &c);
    ck_assert_str_eq(c.status, "412 Precondition Failed");
    conditional("PUT", "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    conditional("PUT", "If-Unmodified-Since: not a date\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    /* If-Match decides alone when present */
    conditional("PUT", "If-Match: \"v1\"\r\nIf-Unmodified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n",
                &c);
    ck_assert_str_eq(c.status, "200 OK");
    done(&c);
}
END_TEST

START_TEST(partial_content_bytes)
{
    captured c = {0};
    conditional("GET", "Range: bytes=2-5\r\n", &c);
    ck_assert_str_eq(c.status, "206 Partial Content");
    ck_assert_str_eq(c.body, "2345");
    ck_assert_int_eq(c.body_length, 4);
    ck_assert_str_eq(field(&c, "Content-Range", 0), "bytes 2-5/16");
    ck_assert_str_eq(field(&c, "Content-Type", 0), "text/plain; charset=utf-8");
    ck_assert_str_eq(field(&c, "Accept-Ranges", 0), "bytes");
    conditional("GET", "Range: bytes=-3\r\n", &c);
    ck_assert_str_eq(c.body, "def");
    ck_assert_str_eq(field(&c, "Content-Range", 0), "bytes 13-15/16");
    conditional("GET", "Range: bytes=10-\r\n", &c);
    ck_assert_str_eq(c.body, "abcdef");
    /* several ranges, malformed ones, HEAD: the whole body */
    conditional("GET", "Range: bytes=0-1,4-5\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    ck_assert_str_eq(c.body, "0123456789abcdef");
    ck_assert_ptr_null(field(&c, "Content-Range", 0));
    conditional("GET", "Range: bytes=5-1\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    conditional("GET", "Range: lines=1-2\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    conditional("HEAD", "Range: bytes=0-1\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    done(&c);
}
END_TEST

START_TEST(partial_content_file)
{
    int before = open_fds();
    captured c = {0};
    fixture *f = request("GET", "/", "Range: bytes=4-7\r\n");
    csgi_response *r = new_response(f);
    ck_assert_int_eq(csgi_response_set_file(r, make_file(), 2, 12), 0);
    csgi_response_set_conditional(r, 1);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.status, "206 Partial Content");
    ck_assert_str_eq(c.body, "6789");
    ck_assert_int_eq(c.body_length, 4);
    ck_assert_str_eq(field(&c, "Content-Range", 0), "bytes 4-7/12");
    finish(f);

    f = request("GET", "/", "Range: bytes=12-\r\n");
    r = new_response(f);
    ck_assert_int_eq(csgi_response_set_file(r, make_file(), 2, 12), 0);
    csgi_response_set_conditional(r, 1);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.status, "416 Range Not Satisfiable");
    ck_assert_str_eq(field(&c, "Content-Range", 0), "bytes */12");
    finish(f);
    ck_assert_int_eq(open_fds(), before);
    done(&c);
}
END_TEST

START_TEST(if_range_validators)
{
    captured c = {0};
    conditional("GET", "Range: bytes=0-1\r\nIf-Range: \"v1\"\r\n", &c);
    ck_assert_str_eq(c.status, "206 Partial Content");
    ck_assert_str_eq(c.body, "01");
    conditional("GET", "Range: bytes=0-1\r\nIf-Range: \"v0\"\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    ck_assert_str_eq(c.body, "0123456789abcdef");
    conditional("GET", "Range: bytes=0-1\r\nIf-Range: W/\"v1\"\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    conditional("GET", "Range: bytes=0-1\r\nIf-Range: Sun, 06 Nov 1994 08:49:37 GMT\r\n", &c);
    ck_assert_str_eq(c.status, "206 Partial Content");
    conditional("GET", "Range: bytes=0-1\r\nIf-Range: Sun, 06 Nov 1994 08:49:38 GMT\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    conditional("GET", "Range: bytes=0-1\r\nIf-Range: garbage\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    /* If-Range ignored without Range; a mismatch never gives 416 */
    conditional("GET", "Range: bytes=99-\r\nIf-Range: \"v0\"\r\n", &c);
    ck_assert_str_eq(c.status, "200 OK");
    done(&c);
}
END_TEST

START_TEST(range_not_satisfiable)
{
    captured c = {0};
    conditional("GET", "Range: bytes=16-\r\n", &c);
    ck_assert_str_eq(c.status, "416 Range Not Satisfiable");
    ck_assert_str_eq(field(&c, "Content-Range", 0), "bytes */16");
    ck_assert_str_eq(field(&c, "Content-Type", 0), "text/plain; charset=utf-8");
    ck_assert_ptr_null(field(&c, "Content-Type", 1));
    ck_assert_str_eq(c.body, "416 Range Not Satisfiable\n");
    conditional("GET", "Range: bytes=-0\r\n", &c);
    ck_assert_str_eq(c.status, "416 Range Not Satisfiable");
    done(&c);
}
END_TEST

/* ---- HTTP errors ------------------------------------------------------------------------- */

static void error_for(const char *accept_line, int status, const char *detail, captured *c)
{
    fixture *f = request("GET", "/", accept_line);
    csgi_response *r = NULL;
    ck_assert_int_eq(csgi_response_error(&r, f->environ, status, detail), 0);
    ck_assert(run(f, r, NULL, c));
    finish(f);
}

START_TEST(error_bodies_by_accept)
{
    captured c = {0};
    error_for(NULL, 404, "no such page", &c);
    ck_assert_str_eq(c.status, "404 Not Found");
    ck_assert_str_eq(field(&c, "Content-Type", 0), "text/plain; charset=utf-8");
    ck_assert_str_eq(c.body, "404 Not Found\n\nno such page\n");
    error_for("Accept: */*\r\n", 404, NULL, &c);
    ck_assert_str_eq(c.body, "404 Not Found\n");
    error_for("Accept: image/png\r\n", 404, NULL, &c);
    ck_assert_str_eq(field(&c, "Content-Type", 0), "text/plain; charset=utf-8");

    error_for("Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n", 403,
              "<script>alert('x')</script> & \"co\"", &c);
    ck_assert_str_eq(c.status, "403 Forbidden");
    ck_assert_str_eq(field(&c, "Content-Type", 0), "text/html; charset=utf-8");
    ck_assert_ptr_nonnull(strstr(c.body, "<title>403 Forbidden</title>"));
    ck_assert_ptr_nonnull(strstr(c.body, "<h1>403 Forbidden</h1>"));
    ck_assert_ptr_nonnull(strstr(c.body, "<p>&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; "
                                         "&amp; &quot;co&quot;</p>"));
    ck_assert_ptr_null(strstr(c.body, "<script>"));

    error_for("Accept: text/html;q=0.5, application/json\r\n", 422, "bad \"field\"", &c);
    ck_assert_str_eq(c.status, "422 Unprocessable Content");
    ck_assert_str_eq(field(&c, "Content-Type", 0), "application/json");
    json_error_t error;
    json_t *body = json_loads(c.body, 0, &error);
    ck_assert_ptr_nonnull(body);
    ck_assert_str_eq(json_string_value(json_object_get(body, "message")), "bad \"field\"");
    ck_assert_int_eq(json_integer_value(json_object_get(body, "code")), 422);
    ck_assert_str_eq(json_string_value(json_object_get(body, "title")), "Unprocessable Content");
    json_decref(body);
    error_for("Accept: application/json\r\n", 500, NULL, &c);
    ck_assert_str_eq(c.body, "{\"message\":\"Internal Server Error\",\"code\":500,"
                             "\"title\":\"Internal Server Error\"}");
    error_for("Accept: application/json\r\n", 400, "not utf-8 \xff", &c);
    ck_assert_str_eq(c.body,
                     "{\"message\":\"Bad Request\",\"code\":400,\"title\":\"Bad Request\"}");

    /* extra headers through the setters; 304 without a body */
    fixture *f = request("GET", "/", NULL);
    csgi_response *r = NULL;
    ck_assert_int_eq(csgi_response_error(&r, f->environ, 405, NULL), 0);
    ck_assert_int_eq(csgi_response_set_header(r, "Allow", "GET, HEAD"), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(field(&c, "Allow", 0), "GET, HEAD");
    ck_assert_int_eq(csgi_response_error(&r, f->environ, 301, NULL), 0);
    ck_assert_int_eq(csgi_response_set_location(r, "/new"), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.status, "301 Moved Permanently");
    ck_assert_str_eq(field(&c, "Location", 0), "http://example.com/new");
    ck_assert_int_eq(csgi_response_error(&r, f->environ, 304, "ignored"), 0);
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.status, "304 Not Modified");
    ck_assert_uint_eq(c.body_len, 0);
    finish(f);
    done(&c);
}
END_TEST

START_TEST(error_page_is_the_engines)
{
    /* the engine's queue_error_response and the text/plain body share
       csgi_status__error_text */
    char text[128];
    ck_assert_uint_eq(csgi_status__error_text(text, sizeof(text), 431, NULL), 36);
    ck_assert_str_eq(text, "431 Request Header Fields Too Large\n");
    ck_assert_uint_eq(csgi_status__error_text(text, 5, 404, "d"), 17);
    ck_assert_str_eq(text, "404 ");
    captured c = {0};
    error_for(NULL, 431, NULL, &c);
    ck_assert_str_eq(c.body, "431 Request Header Fields Too Large\n");
    done(&c);
}
END_TEST

START_TEST(error_codes_all_have_reasons)
{
    static const int codes[] = {300, 301, 302, 303, 304, 305, 307, 308, 400, 401,
                                402, 403, 404, 405, 406, 407, 408, 409, 410, 411,
                                412, 413, 414, 415, 416, 417, 421, 422, 426, 428,
                                429, 431, 451, 500, 501, 502, 503, 504, 505, 511};
    fixture *f = request("GET", "/", NULL);
    captured c = {0};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *reason = csgi_response_reason(codes[i]);
        ck_assert_msg(reason != NULL, "no reason for %d", codes[i]);
        ck_assert_str_ne(reason, "Unknown");
        csgi_response *r = NULL;
        ck_assert_int_eq(csgi_response_error(&r, f->environ, codes[i], NULL), 0);
        ck_assert(run(f, r, NULL, &c));
        char line[128];
        snprintf(line, sizeof(line), "%d %s", codes[i], reason);
        ck_assert_str_eq(c.status, line);
    }
    static const int unknown[] = {0, 200, 204, 299, 306, 309, 418, 499, 509, 600, -404};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        csgi_response *r = (csgi_response *)&r;
        ck_assert_int_eq(csgi_response_error(&r, f->environ, unknown[i], NULL), CSGI_EINVAL);
        ck_assert_ptr_null(r);
    }
    ck_assert_int_eq(csgi_response_error(NULL, f->environ, 404, NULL), CSGI_EINVAL);
    finish(f);
    done(&c);
}
END_TEST

/* ---- Heap responses and applications --------------------------------------------------------- */

START_TEST(heap_response_as_application)
{
    csgi_response *r = NULL;
    ck_assert_int_eq(csgi_response_error(&r, NULL, 503, "maintenance"), 0);
    ck_assert_int_eq(csgi_response_set_header(r, "Retry-After", "120"), 0);
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_response_app(&app, r), 0);
    ck_assert_str_eq(csgi_app_name(app), "response");
    captured c = {0};
    for (int i = 0; i < 2; i++) {
        fixture *f = request("GET", "/", i ? "Accept: application/json\r\n" : NULL);
        ck_assert(run(f, NULL, app, &c));
        ck_assert_str_eq(c.status, "503 Service Unavailable");
        ck_assert_str_eq(field(&c, "Retry-After", 0), "120");
        ck_assert_str_eq(c.body, i ? "{\"message\":\"maintenance\",\"code\":503,"
                                     "\"title\":\"Service Unavailable\"}"
                                   : "503 Service Unavailable\n\nmaintenance\n");
        finish(f);
    }
    csgi_app_free(app);

    /* a conditional heap file: two requests, each its own range */
    int before = open_fds();
    r = new_response(NULL);
    ck_assert_int_eq(csgi_response_set_file(r, make_file(), 0, 16), 0);
    ck_assert_int_eq(csgi_response_set_etag(r, "f", 0), 0);
    ck_assert_int_eq(csgi_response_set_location(r, "here"), 0);
    csgi_response_set_conditional(r, 1);
    ck_assert_int_eq(csgi_response_app(&app, r), 0);
    fixture *f = request("GET", "/dir/file", "Range: bytes=0-2\r\n");
    ck_assert(run(f, NULL, app, &c));
    ck_assert_str_eq(c.body, "012");
    ck_assert_str_eq(field(&c, "Location", 0), "http://example.com/dir/here");
    finish(f);
    f = request("GET", "/", "If-None-Match: \"f\"\r\n");
    ck_assert(run(f, NULL, app, &c));
    ck_assert_str_eq(c.status, "304 Not Modified");
    finish(f);
    f = request("GET", "/", NULL);
    ck_assert(run(f, NULL, app, &c));
    ck_assert_str_eq(c.body, "0123456789abcdef");
    ck_assert_str_eq(field(&c, "Location", 0), "http://example.com/here");
    finish(f);
    csgi_app_free(app);
    ck_assert_int_eq(open_fds(), before);

    /* a request's response is no application; NULLs */
    f = request("GET", "/", NULL);
    r = new_response(f);
    app = (csgi_app *)&app;
    ck_assert_int_eq(csgi_response_app(&app, r), CSGI_EINVAL);
    ck_assert_ptr_null(app);
    csgi_response_free(r); /* does nothing to a request's response */
    ck_assert(run(f, r, NULL, &c));
    ck_assert_str_eq(c.status, "200 OK");
    ck_assert_int_eq(csgi_response_app(&app, NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_response_app(NULL, new_response(NULL)), CSGI_EINVAL);
    csgi_response_free(NULL);
    csgi_start_response root = {f->environ, NULL, capture_start, &c};
    ck_assert_ptr_null(csgi_response_send(NULL, f->environ, &root));
    ck_assert_ptr_null(csgi_response_send(r, NULL, &root));
    ck_assert_ptr_null(csgi_response_send(r, f->environ, NULL));
    finish(f);
    done(&c);
}
END_TEST

/* ---- Out of memory ------------------------------------------------------------------------- */

/* Build and send a response with every feature; returns 0 when all went
   through, else the first error (CSGI_ENOMEM expected). */
static int build_and_send(fixture *f, csgi_environ *owner, int error_page)
{
    csgi_response *r = NULL;
    csgi_cookie_options options = CSGI_COOKIE_OPTIONS_INIT;
    options.path = "/";
    int rc = error_page ? csgi_response_error(&r, owner, 404, "detail <b>")
                        : csgi_response_new(&r, owner);
    if (rc != 0) {
        ck_assert_ptr_null(r);
        return rc;
    }
    char name[16];
    for (int i = 0; i < 12 && rc == 0; i++) {
        snprintf(name, sizeof(name), "X-H%d", i);
        rc = csgi_response_add_header(r, name, "value");
    }
    if (rc == 0)
        rc = csgi_response_set_header(r, "X-H3", "again");
    if (rc == 0 && !error_page)
        rc = csgi_response_set_text(r, "0123456789", "utf-8");
    if (rc == 0)
        rc = csgi_response_set_cookie(r, "a", "b", &options);
    if (rc == 0)
        rc = csgi_response_set_location(r, "next");
    if (rc == 0)
        rc = csgi_response_set_etag(r, "e", 0);
    if (rc == 0)
        rc = csgi_response_set_status_line(r, error_page ? "404 Gone Away" : "200 Fine");
    if (rc == 0) {
        csgi_response_set_conditional(r, 1);
        captured c = {0};
        if (!run(f, r, NULL, &c))
            rc = CSGI_ENOMEM;
        else if (error_page)
            ck_assert_str_eq(c.status, "404 Gone Away");
        else
            ck_assert_str_eq(c.body, "23");
        done(&c);
    }
    if (!owner)
        csgi_response_free(r);
    return rc;
}

START_TEST(out_of_memory_every_allocation)
{
    /* _i: 0 a request's response, 1 a heap one, 2 a request's error page,
       3 a heap error page */
    int heap = _i % 2, error_page = _i / 2;
    ck_assert_int_eq(test_alloc_install(), 0);
    int succeeded = 0;
    long budget;
    for (budget = 0; budget < 500 && !succeeded; budget++) {
        test_alloc_fail_never();
        fixture *f =
            request("GET", "/a", error_page ? "Accept: text/html\r\n" : "Range: bytes=2-3\r\n");
        test_alloc_fail_after(budget);
        int rc = build_and_send(f, heap ? NULL : f->environ, error_page);
        test_alloc_fail_never();
        if (rc == 0)
            succeeded = 1;
        else
            ck_assert_msg(rc == CSGI_ENOMEM, "budget %ld: %s", budget, csgi_err_name(rc));
        finish(f);
    }
    ck_assert_int_eq(succeeded, 1);
    ck_assert_int_gt(budget, 2); /* some allocations were made to fail */
    test_alloc_restore();
}
END_TEST

static Suite *response_suite(void)
{
    Suite *s = suite_create("response");
    TCase *tc = tcase_create("building");
    tcase_add_test(tc, status_by_code_and_line);
    tcase_add_test(tc, headers_add_set_remove_get);
    tcase_add_test(tc, headers_hop_by_hop_and_many);
    tcase_add_test(tc, bodies_bytes_text_json);
    tcase_add_test(tc, file_body_and_descriptors);
    tcase_add_test(tc, stream_body_sent_once);
    tcase_add_test(tc, no_body_for_head_204_304);
    tcase_add_test(tc, delegate_to_application);
    tcase_add_test(tc, cookies_set_and_delete);
    tcase_add_test(tc, cache_control_etag_last_modified);
    tcase_add_test(tc, location_made_absolute);
    suite_add_tcase(s, tc);
    tc = tcase_create("conditional");
    tcase_add_test(tc, not_modified_by_etag);
    tcase_add_test(tc, not_modified_by_date);
    tcase_add_test(tc, precondition_if_match);
    tcase_add_test(tc, partial_content_bytes);
    tcase_add_test(tc, partial_content_file);
    tcase_add_test(tc, if_range_validators);
    tcase_add_test(tc, range_not_satisfiable);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, error_bodies_by_accept);
    tcase_add_test(tc, error_page_is_the_engines);
    tcase_add_test(tc, error_codes_all_have_reasons);
    tcase_add_test(tc, heap_response_as_application);
    tcase_add_loop_test(tc, out_of_memory_every_allocation, 0, 4);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(response_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
