/*
 * The gateway over real sockets: the application protocol (start-response,
 * bodies of every kind, answering later), the checks on what applications
 * give, close exactly once, and the three middleware examples of
 * docs/middleware.md (answer by itself, change headers, transform the body).
 */
#include "engine_harness.h"
#include "test_tls.h"
#include "gateway/head.h"

#include <csgi.h>
#include <csgi/json.h>

#include <check.h>
#include <event2/event.h>

#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int closes;   /* iterator bodies closed */
static atomic_int iterated; /* iterator bodies created */
static atomic_int pulls;    /* chunks produced by counter bodies */

/* ---- The application under test, by path ------------------------------------- */

typedef struct counter_body {
    int left;
    size_t size;
    char buffer[16384];
    csgi_environ *environ;
    struct event *timer;
    int ready;
    int start_later;
    int fail_after_first; /* start-response again with exc_info after one chunk */
    csgi_start_response *start_response;
    csgi_body *self;
} counter_body;

static int counter_next(void *state, csgi_chunk *chunk)
{
    counter_body *c = state;
    if (c->start_later && !c->ready)
        return CSGI_EAGAIN;
    if (c->left == 0)
        return 0;
    if (c->fail_after_first && atomic_load(&pulls) > 0) {
        /* Too late: the head is on its way, so the server must cut. */
        ck_assert_int_eq(csgi_start_response_call(c->start_response, "500 Internal Server Error",
                                                  NULL, 0, "database went away"),
                         CSGI_ESTATE);
        return CSGI_EIO;
    }
    atomic_fetch_add(&pulls, 1);
    c->left--;
    memset(c->buffer, 'a' + c->left % 26, c->size);
    chunk->data = c->buffer;
    chunk->len = c->size;
    return 1;
}

static void counter_close(void *state)
{
    counter_body *c = state;
    if (c->timer)
        event_free(c->timer);
    c->timer = NULL;
    atomic_fetch_add(&closes, 1);
}

static const csgi_body_type counter_type = {"counter", counter_next, counter_close};

static void later_fire(evutil_socket_t fd, short what, void *arg)
{
    counter_body *c = arg;
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    (void)fd;
    (void)what;
    csgi_start_response_call(c->start_response, "200 OK", headers, 1, NULL);
    c->ready = 1;
    csgi_body_resume(c->self);
}

/* A body that yields once before start-response was ever called. */
static int eager_next(void *state, csgi_chunk *chunk)
{
    (void)state;
    chunk->data = "x";
    chunk->len = 1;
    return 1;
}

static void eager_close(void *state)
{
    (void)state;
    atomic_fetch_add(&closes, 1);
}

static const csgi_body_type eager_type = {"eager", eager_next, eager_close};

/* A body that fails before producing anything. */
static int broken_next(void *state, csgi_chunk *chunk)
{
    (void)state;
    (void)chunk;
    return CSGI_EIO;
}

static const csgi_body_type broken_type = {"broken", broken_next, eager_close};

static int path_is(csgi_environ *environ, const char *path)
{
    const char *p = csgi_environ_get(environ, "PATH_INFO");
    return p && strcmp(p, path) == 0;
}

/* Every 200 names its type (lint, which the middleware test runs, insists). */
static const csgi_header text_plain[] = {CSGI_HEADER("Content-Type", "text/plain")};

static csgi_body *plain(csgi_environ *environ, csgi_start_response *sr, const char *status,
                        const char *text)
{
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    csgi_start_response_call(sr, status, headers, 1, NULL);
    return csgi_body_bytes(environ, text, strlen(text));
}

typedef struct echo_state {
    csgi_environ *environ;
    csgi_start_response *sr;
    csgi_body *self;
    const char *data;
    size_t len;
    int have;
    int sent;
} echo_state;

static void echo_ready(csgi_input *input, void *userdata);

static int echo_next(void *state, csgi_chunk *chunk)
{
    echo_state *e = state;
    if (!e->have) {
        int r = csgi_input_read_all(csgi_environ_input(e->environ), 1 << 20, &e->data, &e->len);
        if (r == CSGI_EAGAIN) {
            csgi_input_on_ready(csgi_environ_input(e->environ), echo_ready, e);
            return CSGI_EAGAIN;
        }
        if (r != 0)
            return r;
        e->have = 1;
        csgi_start_response_call(e->sr, "200 OK", NULL, 0, NULL);
    }
    if (e->sent)
        return 0;
    e->sent = 1;
    chunk->data = e->data;
    chunk->len = e->len;
    return 1;
}

static void echo_ready(csgi_input *input, void *userdata)
{
    echo_state *e = userdata;
    (void)input;
    csgi_body_resume(e->self);
}

static const csgi_body_type echo_type = {"echo", echo_next, NULL};

/* Pieces long enough to be lent to the engine (not copied): count pieces
   of size bytes, the n-th of letter 'a' + n, in memory of their own
   (malloc'd, freed by close). With `change_after_ms`, a timer then writes
   'Z' over the first piece: a probe of whether the engine sends the
   application's own bytes or a copy made when they were written. */
typedef struct lent_body {
    char *piece;
    size_t size;
    int count, given;
    struct event *timer;
} lent_body;

static void lent_change(evutil_socket_t fd, short what, void *arg)
{
    lent_body *b = arg;
    (void)fd;
    (void)what;
    memset(b->piece, 'Z', b->size);
}

static int lent_next(void *state, csgi_chunk *chunk)
{
    lent_body *b = state;
    if (b->given == b->count)
        return 0;
    memset(b->piece, 'a' + b->given % 26, b->size);
    b->given++;
    chunk->data = b->piece;
    chunk->len = b->size;
    return 1;
}

static void lent_close(void *state)
{
    lent_body *b = state;
    atomic_fetch_add(&closes, 1);
    if (b->timer)
        event_free(b->timer);
    free(b->piece);
}

static const csgi_body_type lent_type = {"lent", lent_next, lent_close};

static csgi_body *lent_app(csgi_environ *environ, csgi_start_response *sr, int count, size_t size,
                           long change_after_ms)
{
    lent_body *b = csgi_environ_alloc_zeroed(environ, sizeof(*b));
    b->piece = malloc(size);
    b->size = size;
    b->count = count;
    if (change_after_ms > 0) {
        b->timer = evtimer_new(csgi_environ_event_base(environ), lent_change, b);
        struct timeval t = {0, change_after_ms * 1000};
        evtimer_add(b->timer, &t);
    }
    atomic_fetch_add(&iterated, 1);
    csgi_start_response_call(sr, "200 OK", text_plain, 1, NULL);
    return csgi_body_new(environ, &lent_type, b);
}

static csgi_body *test_app(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    (void)state;
    if (path_is(environ, "/lent-probe"))
        return lent_app(environ, sr, 1, 8 << 20, 200);
    if (path_is(environ, "/lent-pieces"))
        return lent_app(environ, sr, 5, 100000, 0);
    if (path_is(environ, "/hello"))
        return plain(environ, sr, "200 OK", "Hello World");
    if (path_is(environ, "/environ")) {
        char text[2048];
        snprintf(text, sizeof(text), "%s|%s|%s|%s|%s|%s|%s",
                 csgi_environ_get(environ, "REQUEST_METHOD"),
                 csgi_environ_get(environ, "SCRIPT_NAME"), csgi_environ_get(environ, "PATH_INFO"),
                 csgi_environ_get(environ, "QUERY_STRING"),
                 csgi_environ_get(environ, "SERVER_NAME"), csgi_environ_get(environ, "SERVER_PORT"),
                 csgi_environ_get(environ, "HTTP_X_TEST") ? csgi_environ_get(environ, "HTTP_X_TEST")
                                                          : "-");
        return plain(environ, sr, "200 OK", text);
    }
    if (path_is(environ, "/whoami")) {
        json_t *info = csgi_environ_get_json(environ, "test.token_info");
        const char *user = info ? json_string_value(json_object_get(info, "user")) : NULL;
        return plain(environ, sr, "200 OK", user ? user : "nobody");
    }
    if (path_is(environ, "/big")) {
        char *big = csgi_environ_alloc(environ, 100000);
        memset(big, 'q', 100000);
        csgi_start_response_call(sr, "200 OK", text_plain, 1, NULL);
        return csgi_body_static(environ, big, 100000);
    }
    if (path_is(environ, "/fails-early")) {
        csgi_start_response_call(sr, "200 OK", text_plain, 1, NULL);
        atomic_fetch_add(&iterated, 1);
        return csgi_body_new(environ, &broken_type, NULL);
    }
    if (path_is(environ, "/bad-status"))
        return plain(environ, sr, "20 OK", "never");
    if (path_is(environ, "/crlf-header")) {
        static const csgi_header bad[] = {CSGI_HEADER("X-Evil", "a\r\nSet-Cookie: x=1")};
        csgi_start_response_call(sr, "200 OK", bad, 1, NULL);
        return csgi_body_static(environ, "never", 5);
    }
    if (path_is(environ, "/hop-by-hop")) {
        static const csgi_header bad[] = {CSGI_HEADER("Connection", "close")};
        csgi_start_response_call(sr, "200 OK", bad, 1, NULL);
        return csgi_body_static(environ, "never", 5);
    }
    if (path_is(environ, "/no-start"))
        return csgi_body_static(environ, "never", 5);
    if (path_is(environ, "/null"))
        return NULL;
    if (path_is(environ, "/eager")) {
        atomic_fetch_add(&iterated, 1);
        return csgi_body_new(environ, &eager_type, NULL);
    }
    if (path_is(environ, "/length-mismatch")) {
        static const csgi_header h[] = {CSGI_HEADER("Content-Length", "5")};
        csgi_start_response_call(sr, "200 OK", h, 1, NULL);
        return csgi_body_static(environ, "abc", 3);
    }
    if (path_is(environ, "/twice")) {
        csgi_start_response_call(sr, "200 OK", text_plain, 1, NULL);
        ck_assert_int_eq(csgi_start_response_call(sr, "404 Not Found", NULL, 0, NULL), CSGI_ESTATE);
        return csgi_body_static(environ, "never", 5);
    }
    if (path_is(environ, "/exc-info")) {
        csgi_start_response_call(sr, "200 OK", text_plain, 1, NULL);
        /* Something failed after all: the answer changes, as nothing was sent. */
        ck_assert_int_eq(
            csgi_start_response_call(sr, "503 Service Unavailable", NULL, 0, "backend down"), 0);
        return csgi_body_static(environ, "sorry", 5);
    }
    if (path_is(environ, "/declared") || path_is(environ, "/declared-long") ||
        path_is(environ, "/declared-empty")) {
        /* Two pieces of 10 000 bytes (none for -empty) from an iterator
           that declares 20 000 bytes (15 000 for -long, 4 for -empty). */
        counter_body *c = csgi_environ_alloc(environ, sizeof(*c));
        memset(c, 0, sizeof(*c));
        int empty = path_is(environ, "/declared-empty");
        c->left = empty ? 0 : 2;
        c->size = 10000;
        c->environ = environ;
        c->start_response = sr;
        atomic_fetch_add(&iterated, 1);
        csgi_body *body = csgi_body_new(environ, &counter_type, c);
        c->self = body;
        ck_assert_int_eq(csgi_body_set_length(body, empty                           ? 4
                                                    : path_is(environ, "/declared") ? 20000
                                                                                    : 15000),
                         0);
        csgi_start_response_call(sr, "200 OK", text_plain, 1, NULL);
        return body;
    }
    if (path_is(environ, "/stream") || path_is(environ, "/later") ||
        path_is(environ, "/exc-late")) {
        counter_body *c = csgi_environ_alloc(environ, sizeof(*c));
        memset(c, 0, sizeof(*c));
        const char *query = csgi_environ_get(environ, "QUERY_STRING");
        c->left = query && *query ? atoi(query) : 3;
        c->size = 10000;
        c->environ = environ;
        c->start_response = sr;
        atomic_fetch_add(&iterated, 1);
        csgi_body *body = csgi_body_new(environ, &counter_type, c);
        c->self = body;
        c->fail_after_first = path_is(environ, "/exc-late");
        if (path_is(environ, "/later")) {
            c->start_later = 1;
            c->size = 5;
            c->left = 1;
            c->timer = evtimer_new(csgi_environ_event_base(environ), later_fire, c);
            struct timeval t = {0, 50000};
            evtimer_add(c->timer, &t);
        } else {
            csgi_start_response_call(sr, "200 OK", text_plain, 1, NULL);
        }
        return body;
    }
    if (path_is(environ, "/echo")) {
        echo_state *e = csgi_environ_alloc(environ, sizeof(*e));
        memset(e, 0, sizeof(*e));
        e->environ = environ;
        e->sr = sr;
        e->self = csgi_body_new(environ, &echo_type, e);
        return e->self;
    }
    return plain(environ, sr, "404 Not Found", "not found");
}

static const csgi_app_type test_type = {"test", test_app, NULL};

/* ---- Server ------------------------------------------------------------------------- */

static app_server served;
static int port;

/* Log lines, kept for assertions. */
static char log_text[16384];
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void keep_log(int level, const char *message, void *userdata)
{
    (void)level;
    (void)userdata;
    pthread_mutex_lock(&log_lock);
    size_t len = strlen(log_text);
    snprintf(log_text + len, sizeof(log_text) - len, "%s\n", message);
    pthread_mutex_unlock(&log_lock);
}

static int logged(const char *text)
{
    pthread_mutex_lock(&log_lock);
    int found = strstr(log_text, text) != NULL;
    pthread_mutex_unlock(&log_lock);
    return found;
}

static void start_verbose(csgi_app *app, int verbose)
{
    atomic_store(&closes, 0);
    atomic_store(&iterated, 0);
    atomic_store(&pulls, 0);
    log_text[0] = '\0';
    csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
    options.log = keep_log;
    options.verbose = verbose;
    app_server_start(&served, app, &options);
    port = served.port;
}

static void start(csgi_app *app)
{
    start_verbose(app, 0);
}

static csgi_app *test_application(void)
{
    csgi_app *app;
    ck_assert_int_eq(csgi_app_new(&app, &test_type, NULL), 0);
    return app;
}

static void stop(void)
{
    app_server_stop(&served);
}

static void request(int fd, const char *method, const char *path, const char *extra,
                    test_response *r)
{
    char text[1024];
    snprintf(text, sizeof(text), "%s %s HTTP/1.1\r\nHost: example.org:8080\r\n%s\r\n", method, path,
             extra ? extra : "");
    ck_assert_int_eq(client_send_str(fd, text), 0);
    ck_assert_int_eq(client_response(fd, r, strcmp(method, "HEAD") == 0, 5000), 0);
}

START_TEST(hello_through_the_gateway)
{
    start(test_application());
    int fd = client_connect(port);
    test_response r;
    request(fd, "GET", "/hello", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "Hello World");
    ck_assert_str_eq(response_header(&r, "Content-Length"), "11");
    ck_assert_str_eq(response_header(&r, "Content-Type"), "text/plain");
    response_free(&r);
    request(fd, "HEAD", "/hello", NULL, &r);
    ck_assert_str_eq(response_header(&r, "Content-Length"), "11");
    response_free(&r);
    request(fd, "GET", "/environ?a=1", "X-Test: yes\r\n", &r);
    ck_assert_str_eq(r.body, "GET||/environ|a=1|example.org|8080|yes");
    response_free(&r);
    close(fd);
    stop();
}
END_TEST

START_TEST(misbehaving_applications_get_500)
{
    static const char *const paths[] = {
        "/bad-status", "/crlf-header",     "/hop-by-hop", "/no-start",    "/null",
        "/eager",      "/length-mismatch", "/twice",      "/fails-early", "/declared-empty"};
    /* What the error log must say about each, in the same order. */
    static const char *const reasons[] = {"status code is not three digits",
                                          "CR, LF, NUL or control character in a header value",
                                          "hop-by-hop header",
                                          "GET /no-start: body produced before start-response",
                                          "returned no body",
                                          "GET /eager: body produced before start-response",
                                          "Content-Length differs from the body's length",
                                          "start-response called twice without exc_info",
                                          "GET /fails-early: the response body failed",
                                          "the body is shorter than its declared length"};
    start(test_application());
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        int fd = client_connect(port);
        test_response r;
        request(fd, "GET", paths[i], NULL, &r);
        ck_assert_msg(r.status == 500, "%s gave %d", paths[i], r.status);
        ck_assert_msg(logged(reasons[i]), "no log line for %s in:\n%s", paths[i], log_text);
        ck_assert_ptr_null(strstr(r.headers, "Set-Cookie"));
        response_free(&r);
        /* The server goes on serving, on a new connection. */
        close(fd);
        fd = client_connect(port);
        request(fd, "GET", "/hello", NULL, &r);
        ck_assert_int_eq(r.status, 200);
        response_free(&r);
        close(fd);
    }
    stop();
    int closed = atomic_load(&closes), made = atomic_load(&iterated);
    ck_assert_int_eq(closed, made);
}
END_TEST

START_TEST(decoded_path_refusals)
{
    start(test_application());
    static const char *const paths[] = {"/a%2f..%2f..%2fetc", "/admin%00.png",
                                        "/x/%2e%2e/%2E%2E/y"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        int fd = client_connect(port);
        test_response r;
        request(fd, "GET", paths[i], NULL, &r);
        ck_assert_msg(r.status == 400, "%s gave %d", paths[i], r.status);
        response_free(&r);
        close(fd);
    }
    int fd = client_connect(port);
    test_response r;
    request(fd, "GET", "/a%2fb/../environ", NULL, &r); /* stays below the root */
    ck_assert_int_eq(r.status, 404);
    response_free(&r);
    close(fd);
    stop();
}
END_TEST

START_TEST(exc_info_replaces_unsent_headers)
{
    start(test_application());
    int fd = client_connect(port);
    test_response r;
    request(fd, "GET", "/exc-info", NULL, &r);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(r.body, "sorry");
    response_free(&r);
    close(fd);
    stop();
}
END_TEST

START_TEST(exc_info_after_head_cuts)
{
    start(test_application());
    int fd = client_connect(port);
    ck_assert_int_eq(client_send_str(fd, "GET /exc-late?5 HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    ck_assert(client_closed(fd, 3000));
    close(fd);
    ck_assert(logged("database went away"));
    stop();
    ck_assert_int_eq(atomic_load(&closes), 1);
}
END_TEST

START_TEST(slow_reader_is_not_fed)
{
    start(test_application());
    int fd = client_connect(port);
    /* 100 MB for a client that reads nothing for a while: once the
       kernel's buffers and the server's 64 KiB are full, the application
       is asked for nothing more, so the server's memory stays flat. */
    ck_assert_int_eq(client_send_str(fd, "GET /stream?10000 HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    usleep(700000);
    int stalled = atomic_load(&pulls);
    usleep(700000);
    ck_assert_int_eq(atomic_load(&pulls), stalled);
    ck_assert_int_lt(stalled, 10000);
    /* Reading again resumes the stream. */
    char buf[65536];
    size_t got = 0;
    for (int i = 0; i < 200; i++)
        got += client_read(fd, buf, sizeof(buf), 20, NULL, NULL);
    ck_assert_uint_gt(got, 100000);
    ck_assert_int_gt(atomic_load(&pulls), stalled);
    close(fd);
    stop();
}
END_TEST

/* A client that leaves in the middle of a response: the response is cut,
   and the log says so once (the engine's line), not once per layer. */
START_TEST(a_cut_logs_one_line)
{
    start_verbose(test_application(), 1);
    int fd = client_connect(port);
    ck_assert_int_eq(client_send_str(fd, "GET /stream?10000 HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    char buf[4096];
    ck_assert_uint_gt(client_read(fd, buf, sizeof(buf), 2000, NULL, NULL), 0);
    close(fd);
    for (int i = 0; i < 200 && atomic_load(&closes) < 1; i++)
        usleep(10 * 1000);
    ck_assert_int_eq(atomic_load(&closes), 1);
    usleep(50 * 1000);
    stop();
    int lines = 0;
    for (const char *p = log_text; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    ck_assert_msg(lines == 1, "%d lines:\n%s", lines, log_text);
    ck_assert_msg(logged("went away"), "%s", log_text);
}
END_TEST

START_TEST(streamed_body_and_close_once)
{
    start(test_application());
    int fd = client_connect(port);
    test_response r;
    request(fd, "GET", "/stream?300", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.chunked, 1);
    ck_assert_uint_eq(r.body_len, 3000000);
    response_free(&r);
    close(fd);
    usleep(50000);
    ck_assert_int_eq(atomic_load(&closes), 1);

    /* A client that leaves mid-stream: close runs once all the same. */
    fd = client_connect(port);
    ck_assert_int_eq(client_send_str(fd, "GET /stream?100000 HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    char buf[65536];
    ck_assert_uint_gt(client_read(fd, buf, sizeof(buf), 2000, NULL, NULL), 1000);
    close(fd);
    for (int i = 0; i < 100 && atomic_load(&closes) < 2; i++)
        usleep(20000);
    ck_assert_int_eq(atomic_load(&closes), 2);
    fd = client_connect(port);
    request(fd, "GET", "/hello", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    response_free(&r);
    close(fd);
    stop();
    ck_assert_int_eq(atomic_load(&closes), 2);
}
END_TEST

START_TEST(answer_later_and_streamed_input)
{
    start(test_application());

    int fd = client_connect(port);
    test_response r;
    request(fd, "GET", "/later", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 5);
    response_free(&r);

    /* The body arrives in two parts; the application waits for all of it. */
    ck_assert_int_eq(client_send_str(fd, "POST /echo HTTP/1.1\r\nHost: a\r\n"
                                         "Content-Length: 10\r\n\r\nhello"),
                     0);
    usleep(100000);
    ck_assert_int_eq(client_send_str(fd, "world"), 0);
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "helloworld");
    response_free(&r);
    close(fd);
    stop();
}
END_TEST

/* ---- Middleware: the three examples of docs/middleware.md ------------------------- */

/* 1. Answers by itself: the talk's auth filter. */
static csgi_body *auth_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    const char *token = csgi_environ_get(environ, "HTTP_X_AUTH_TOKEN");
    if (!token || strcmp(token, "open-sesame") != 0) {
        static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
        csgi_start_response_call(sr, "403 Forbidden", headers, 1, NULL);
        return csgi_body_static(environ, "Forbidden\n", 10);
    }
    /* What keystone's auth_token does: token information for the
       application behind, released when the request ends. */
    if (csgi_environ_set_json_new(environ, "test.token_info", json_pack("{s:s}", "user", "demo")))
        return NULL;
    return csgi_app_call(state, environ, sr);
}

static void filter_destroy(void *state)
{
    csgi_app_free(state);
}

static const csgi_app_type auth_type = {"auth", auth_call, filter_destroy};

/* 2. Changes the response headers, through its own start-response. */
static int add_header(const char *status, const csgi_header *headers, size_t count,
                      const char *exc_info, void *userdata)
{
    csgi_start_response *parent = userdata;
    csgi_header more[16];
    if (count >= 16)
        return CSGI_EINVAL;
    if (count)
        memcpy(more, headers, count * sizeof(*headers));
    more[count] = (csgi_header)CSGI_HEADER("X-Filtered", "yes");
    return csgi_start_response_call(parent, status, more, count + 1, exc_info);
}

static csgi_body *header_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    csgi_start_response *mine = csgi_start_response_new(environ, sr, add_header, sr);
    return mine ? csgi_app_call(state, environ, mine) : NULL;
}

static const csgi_app_type header_type = {"headers", header_call, filter_destroy};

/* 3. Transforms the body: upper-cases what the application behind sends. */
typedef struct upper {
    csgi_body *inner;
    csgi_chunk pending; /* what is left of the inner piece */
    char buffer[16384];
} upper;

static int upper_next(void *state, csgi_chunk *chunk)
{
    upper *u = state;
    if (u->pending.len == 0) {
        int r = csgi_body_next(u->inner, &u->pending);
        if (r != 1)
            return r;
    }
    /* A piece larger than the buffer goes out over several calls. */
    size_t n = u->pending.len < sizeof(u->buffer) ? u->pending.len : sizeof(u->buffer);
    const unsigned char *in = u->pending.data;
    for (size_t i = 0; i < n; i++)
        u->buffer[i] = (char)toupper(in[i]);
    u->pending.data = in + n;
    u->pending.len -= n;
    chunk->data = u->buffer;
    chunk->len = n;
    return 1;
}

static void upper_close(void *state)
{
    upper *u = state;
    csgi_body_close(u->inner);
}

static const csgi_body_type upper_body = {"upper", upper_next, upper_close};

/* A transforming filter must drop a Content-Length it cannot keep; this
   one keeps every byte count, so it passes the length on. */
static csgi_body *upper_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    csgi_body *inner = csgi_app_call(state, environ, sr);
    if (!inner)
        return NULL;
    upper *u = csgi_environ_alloc(environ, sizeof(*u));
    if (!u) {
        csgi_body_close(inner);
        return NULL;
    }
    memset(u, 0, sizeof(*u)); /* csgi_environ_alloc does not clear */
    u->inner = inner;
    csgi_body *body = csgi_body_new(environ, &upper_body, u);
    /* Every byte stays a byte: the length, when known, stays too. */
    if (body && csgi_body_length(inner) >= 0)
        csgi_body_set_length(body, csgi_body_length(inner));
    return body;
}

static const csgi_app_type upper_type = {"upper", upper_call, filter_destroy};

static csgi_app *wrap(const csgi_app_type *type, csgi_app *next)
{
    csgi_app *app;
    ck_assert_int_eq(csgi_app_new(&app, type, next), 0);
    return app;
}

/* next behind the lint filter in strict mode: a protocol slip of any
   layer becomes a 500 and a "lint:" line. */
static csgi_app *linted(csgi_app *next)
{
    csgi_lint_options options = CSGI_LINT_OPTIONS_INIT;
    options.strict = 1;
    csgi_app *app;
    ck_assert_int_eq(csgi_lint_new(&app, next, &options), 0);
    return app;
}

START_TEST(middleware_pipeline)
{
    /* auth(headers(upper(test))), each layer checked by lint: freeing the
       server frees the chain. */
    start(linted(
        wrap(&auth_type,
             linted(wrap(&header_type, linted(wrap(&upper_type, linted(test_application()))))))));
    int fd = client_connect(port);
    test_response r;
    request(fd, "GET", "/hello", NULL, &r);
    ck_assert_int_eq(r.status, 403);
    ck_assert_str_eq(r.body, "Forbidden\n");
    ck_assert_ptr_null(response_header(&r, "X-Filtered"));
    response_free(&r);
    request(fd, "GET", "/hello", "X-Auth-Token: wrong\r\n", &r);
    ck_assert_int_eq(r.status, 403);
    response_free(&r);
    request(fd, "GET", "/hello", "X-Auth-Token: open-sesame\r\n", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "HELLO WORLD");
    ck_assert_str_eq(response_header(&r, "X-Filtered"), "yes");
    response_free(&r);
    /* A piece of 100 000 bytes, larger than the filter's buffer, arrives whole. */
    request(fd, "GET", "/big", "X-Auth-Token: open-sesame\r\n", &r);
    ck_assert_uint_eq(r.body_len, 100000);
    ck_assert_int_eq(r.body[0], 'Q');
    ck_assert_int_eq(r.body[99999], 'Q');
    response_free(&r);
    request(fd, "GET", "/whoami", "X-Auth-Token: open-sesame\r\n", &r);
    ck_assert_str_eq(r.body, "DEMO");
    response_free(&r);
    request(fd, "GET", "/stream?2", "X-Auth-Token: open-sesame\r\n", &r);
    ck_assert_uint_eq(r.body_len, 20000);
    ck_assert_int_eq(r.body[0], 'B');
    response_free(&r);
    close(fd);
    stop();
    ck_assert_int_eq(atomic_load(&closes), 1);
    ck_assert_msg(!logged("lint:"), "lint found:\n%s", log_text);
}
END_TEST

/* An iterator that declares its length gets a Content-Length, not
   chunked framing, and is held to it; a filter passes the length on. */
START_TEST(declared_length)
{
    start(linted(wrap(&upper_type, test_application())));
    int fd = client_connect(port);
    test_response r;
    request(fd, "GET", "/declared", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(response_header(&r, "Content-Length"), "20000");
    ck_assert_ptr_null(response_header(&r, "Transfer-Encoding"));
    ck_assert_uint_eq(r.body_len, 20000);
    ck_assert_int_eq(r.body[0], 'B');
    ck_assert_int_eq(r.body[19999], 'A');
    response_free(&r);
    /* upper keeps hello's length: 11 bytes, not chunked. */
    request(fd, "GET", "/hello", NULL, &r);
    ck_assert_str_eq(r.body, "HELLO WORLD");
    ck_assert_str_eq(response_header(&r, "Content-Length"), "11");
    response_free(&r);
    /* Without a declared length: chunked. */
    request(fd, "GET", "/stream?1", NULL, &r);
    ck_assert_str_eq(response_header(&r, "Transfer-Encoding"), "chunked");
    response_free(&r);
    close(fd);

    /* More bytes than declared: the head is out, so the response is cut. */
    fd = client_connect(port);
    client_send_str(fd, "GET /declared-long HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert(client_closed(fd, 5000));
    close(fd);
    ck_assert_msg(logged("the body is longer than its Content-Length"), "%s", log_text);
    ck_assert_msg(logged("lint: the body is longer than its declared length (15000)"), "%s",
                  log_text);
    stop();
    ck_assert_int_eq(atomic_load(&closes), atomic_load(&iterated));
}
END_TEST

/* ---- The framing does not depend on when the request body came ------------ */

/* A handler that reads the whole body, then answers it back as 201 with
   a known length. */
static csgi_response *created_echo(csgi_request *request, void *userdata)
{
    (void)userdata;
    const char *body;
    size_t len;
    int rc = csgi_request_body(request, 1 << 16, &body, &len);
    csgi_response *response = csgi_handler_response(request);
    if (rc != 0 || !response || csgi_response_set_status(response, 201) != 0 ||
        csgi_response_set_content_type(response, "text/plain", NULL) != 0 ||
        csgi_response_set_body(response, body, len) != 0)
        return NULL;
    return response;
}

/* What a relay does with the answer: sends it unchanged. */
static csgi_response *relay_then(csgi_request *request, csgi_response *response, void *state)
{
    (void)request;
    (void)state;
    return response;
}

/* A filter handler that runs the next application with
   csgi_handler_forward_then and sends what it answered: a relay. */
static csgi_response *relay_next(csgi_request *request, csgi_app *next, void *userdata)
{
    (void)userdata;
    return csgi_handler_forward_then(request, next, relay_then, NULL);
}

/* The late handler alone, behind strict lint, behind a forward-then
   relay, and behind lint and the relay: each wrapper must let the late
   answer's length through. */
static csgi_app *late_pipeline(int which)
{
    csgi_app *app = NULL, *relay = NULL;
    ck_assert_int_eq(csgi_handler_app(&app, "created", created_echo, NULL, NULL), 0);
    if (which >= 2) {
        ck_assert_int_eq(csgi_handler_filter(&relay, "relay", relay_next, app, NULL, NULL), 0);
        app = relay;
    }
    return which == 1 || which == 3 ? linted(app) : app;
}

START_TEST(framing_independent_of_body_timing)
{
    static const char *const pipelines[] = {"handler", "lint(handler)", "relay(handler)",
                                            "lint(relay(handler))"};
    start(late_pipeline(_i));
    static const struct {
        const char *name;
        const char *head;
        int wait_continue; /* send the body after the 100 Continue */
        int later;         /* send the body 100 ms after the head */
        int keep_alive;    /* the connection stays open */
    } cases[] = {
        {"with the head", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", 0, 0, 1},
        {"after the head", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", 0, 1, 1},
        {"after 100-continue",
         "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", 1, 0,
         1},
        {"HTTP/1.0 with the head", "POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\n", 0, 0, 0},
        {"HTTP/1.0 after the head", "POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\n", 0, 1, 0},
        {"HTTP/1.0 keep-alive after the head",
         "POST / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n", 0, 1, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = client_connect(port);
        ck_assert_int_eq(client_send_str(fd, cases[i].head), 0);
        if (cases[i].wait_continue) {
            char buf[256];
            client_read(fd, buf, sizeof(buf), 3000, "\r\n\r\n", NULL);
            ck_assert_str_eq(buf, "HTTP/1.1 100 Continue\r\n\r\n");
        } else if (cases[i].later) {
            usleep(100 * 1000);
        }
        ck_assert_int_eq(client_send_str(fd, "hello"), 0);
        test_response r;
        ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
        ck_assert_msg(r.status == 201, "%s, body %s: %d\n%s", pipelines[_i], cases[i].name,
                      r.status, log_text);
        ck_assert_str_eq(r.body, "hello");
        const char *length = response_header(&r, "Content-Length");
        ck_assert_msg(length && strcmp(length, "5") == 0, "%s, body %s: no Content-Length",
                      pipelines[_i], cases[i].name);
        ck_assert_ptr_null(response_header(&r, "Transfer-Encoding"));
        response_free(&r);
        if (cases[i].keep_alive) {
            request(fd, "GET", "/", NULL, &r); /* served on the same connection */
            ck_assert_int_eq(r.status, 201);
            response_free(&r);
        }
        close(fd);
    }
    stop();
    ck_assert_msg(!logged("lint"), "%s: %s", pipelines[_i], log_text);
}
END_TEST

/* ---- HEAD, 204 and 304 from response objects pass strict lint ------------- */

static int pieces_next(void *state, csgi_chunk *chunk)
{
    int *left = state;
    if (*left == 0)
        return 0;
    (*left)--;
    chunk->data = "piece;";
    chunk->len = 6;
    return 1;
}

static const csgi_body_type pieces_type = {"pieces", pieces_next, NULL};

static char shaped_file[64];

/* A response object of the kind the path names. */
static csgi_response *shaped(csgi_request *request, void *userdata)
{
    (void)userdata;
    const char *path = csgi_environ_get(csgi_request_environ(request), "PATH_INFO");
    csgi_response *response = NULL;
    if (strcmp(path, "/missing") == 0) {
        csgi_response_error(&response, csgi_request_environ(request), 404, "no such thing");
        return response;
    }
    response = csgi_handler_response(request);
    if (!response)
        return NULL;
    if (strcmp(path, "/text") == 0) {
        csgi_response_set_text(response, "hello world", NULL);
    } else if (strcmp(path, "/file") == 0) {
        csgi_response_set_content_type(response, "application/octet-stream", NULL);
        csgi_response_set_file(response, open(shaped_file, O_RDONLY), 0, 16);
    } else if (strcmp(path, "/stream") == 0) {
        int *left = csgi_environ_alloc(csgi_request_environ(request), sizeof(*left));
        *left = 3;
        csgi_response_set_content_type(response, "text/plain", NULL);
        csgi_response_set_stream(response, &pieces_type, left);
    } else if (strcmp(path, "/nocontent") == 0) {
        csgi_response_set_status(response, 204);
        csgi_response_set_body(response, "dropped", 7);
    } else if (strcmp(path, "/cached") == 0) {
        csgi_response_set_text(response, "cached body", NULL);
        csgi_response_set_etag(response, "v1", 0);
        csgi_response_set_conditional(response, 1);
    }
    return response;
}

START_TEST(head_and_no_body_responses_pass_strict_lint)
{
    snprintf(shaped_file, sizeof(shaped_file), "/tmp/csgi-shaped-XXXXXX");
    int fd = mkstemp(shaped_file);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "0123456789abcdef", 16), 16);
    close(fd);
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_handler_app(&app, "shaped", shaped, NULL, NULL), 0);
    start(linted(app));
    static const struct {
        const char *path;
        const char *extra;
        int status;
        const char *length; /* the Content-Length GET and HEAD get, or NULL */
        int chunked;        /* GET's body is chunked */
    } cases[] = {
        {"/text", NULL, 200, "11", 0},
        {"/file", NULL, 200, "16", 0},
        {"/stream", NULL, 200, NULL, 1},
        {"/missing", NULL, 404, NULL, 0}, /* the page's length, checked below */
        {"/nocontent", NULL, 204, NULL, 0},
        {"/cached", "If-None-Match: \"v1\"\r\n", 304, NULL, 0},
    };
    fd = client_connect(port);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        test_response get, head;
        request(fd, "GET", cases[i].path, cases[i].extra, &get);
        request(fd, "HEAD", cases[i].path, cases[i].extra, &head);
        ck_assert_msg(get.status == cases[i].status && head.status == cases[i].status,
                      "%s: GET %d, HEAD %d", cases[i].path, get.status, head.status);
        const char *get_length = response_header(&get, "Content-Length");
        char copy[32] = "";
        if (get_length)
            snprintf(copy, sizeof(copy), "%s", get_length);
        const char *head_length = response_header(&head, "Content-Length");
        if (cases[i].length)
            ck_assert_str_eq(copy, cases[i].length);
        if (cases[i].status == 404)
            ck_assert_uint_eq(strtoul(copy, NULL, 10), get.body_len);
        /* HEAD's head has the framing GET's has, and no body follows */
        if (*copy)
            ck_assert_msg(head_length && strcmp(head_length, copy) == 0, "%s: HEAD length %s",
                          cases[i].path, head_length ? head_length : "none");
        else
            ck_assert_msg(!head_length || cases[i].status >= 300, "%s: HEAD length %s",
                          cases[i].path, head_length);
        ck_assert_int_eq(get.chunked, cases[i].chunked);
        ck_assert_ptr_null(response_header(&head, "Transfer-Encoding"));
        ck_assert_uint_eq(head.body_len, 0);
        if (cases[i].status == 204 || cases[i].status == 304)
            ck_assert_uint_eq(get.body_len, 0);
        response_free(&get);
        response_free(&head);
    }
    close(fd);
    stop();
    unlink(shaped_file);
    ck_assert_msg(!logged("lint"), "%s", log_text);
}
END_TEST

static void *run_base(void *arg)
{
    event_base_dispatch(arg);
    return NULL;
}

static void end_base(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopexit(arg, NULL);
}

START_TEST(server_threads_and_host_loop)
{
    /* Two loops in threads, sharing the port. */
    csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
    options.threads = 2;
    options.log = keep_log;
    app_server_start(&served, test_application(), &options);
    port = served.port;
    for (int i = 0; i < 20; i++) {
        int fd = client_connect(port);
        test_response r;
        request(fd, "GET", "/environ", NULL, &r);
        ck_assert_int_eq(r.status, 200);
        response_free(&r);
        close(fd);
    }
    stop();

    /* Options with a bad version are refused, and the app is freed. */
    options.version = 99;
    csgi_server *server = NULL;
    ck_assert_int_eq(csgi_server_new(&server, test_application(), &options, NULL), CSGI_EINVAL);
    ck_assert_ptr_null(server);

    /* On the host's own loop, beside its events. */
    struct event_base *base = event_base_new();
    ck_assert_int_eq(csgi_server_new(&server, test_application(), NULL, base), 0);
    ck_assert_int_eq(csgi_server_listen(server, "127.0.0.1:0"), 0);
    port = csgi_server_port(server, 0);
    ck_assert_int_eq(csgi_server_start(server), 0);
    ck_assert_int_eq(csgi_server_run(server), CSGI_ESTATE);
    /* The test thread ends the host's loop through a pipe: libevent is
       not thread-safe here, so no event_active from another thread. */
    int wake[2];
    ck_assert_int_eq(pipe(wake), 0);
    struct event *keep = event_new(base, wake[0], EV_READ, end_base, base);
    event_add(keep, NULL);
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, run_base, base), 0);
    int fd = client_connect(port);
    test_response r;
    request(fd, "GET", "/hello", NULL, &r);
    ck_assert_str_eq(r.body, "Hello World");
    response_free(&r);
    close(fd);
    ck_assert_int_eq(write(wake[1], "x", 1), 1);
    pthread_join(thread, NULL);
    event_free(keep);
    close(wake[0]);
    close(wake[1]);
    csgi_server_free(server);
    event_base_free(base);
}
END_TEST

/* ---- Responses stuck behind a slow client -------------------------------- */

START_TEST(long_pieces_are_sent_without_a_copy)
{
    /* One 8 MiB piece to a client that reads nothing for 400 ms: most of
       it waits in the server. 200 ms in, the application writes 'Z' over
       its piece. What the client then reads ends in 'Z': the server sent
       the application's own bytes, it did not hold a copy of them. */
    start(test_application());
    int fd = client_connect_rcvbuf(port, 4096);
    ck_assert_int_eq(client_send_str(fd, "GET /lent-probe HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    usleep(400000);
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 20000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, (size_t)8 << 20);
    ck_assert_int_eq(r.body[0], 'a');
    ck_assert_int_eq(r.body[r.body_len - 1], 'Z');
    response_free(&r);
    close(fd);

    /* Several long pieces, one after the other: each is pulled once the
       one before was sent, in order, and the body is closed once. */
    atomic_store(&closes, 0);
    fd = client_connect(port);
    ck_assert_int_eq(client_send_str(fd, "GET /lent-pieces HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_uint_eq(r.body_len, 500000);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(r.body[i * 100000 + 99999], 'a' + i);
    response_free(&r);
    close(fd);

    /* A client that leaves with a piece still in the server: the server
       lets go of the piece before the body is closed (the sanitizer
       builds would see a use after free), and closes it once. */
    atomic_store(&closes, 0);
    fd = client_connect_rcvbuf(port, 4096);
    ck_assert_int_eq(client_send_str(fd, "GET /lent-probe HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    usleep(50000);
    close(fd);
    for (int i = 0; i < 200 && atomic_load(&closes) == 0; i++)
        usleep(10000);
    ck_assert_int_eq(atomic_load(&closes), 1);
    stop();
    ck_assert_int_eq(atomic_load(&closes), 1);
}
END_TEST

/* ---- A minimum body rate ---------------------------------------------------- */

/* POST a body of total bytes to /echo on a server with options, piece
   bytes every every_ms. Returns the ms from the first body byte to an
   answer or a close that came before the body was all sent (the status in
   *status, 0 for a close), or -1 when it was all sent and echoed. */
static long post_slowly(const csgi_server_options *options, size_t piece, long every_ms,
                        size_t total, int *status)
{
    csgi_server_options o = *options;
    o.log = keep_log;
    o.verbose = 1;
    log_text[0] = '\0';
    app_server_start(&served, test_application(), &o);
    int fd = client_connect(served.port);
    char head[256];
    snprintf(head, sizeof(head), "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n",
             total);
    ck_assert_int_eq(client_send_str(fd, head), 0);
    char bytes[256];
    memset(bytes, 'x', sizeof(bytes));
    long start = now_ms(), elapsed = -1;
    test_response r;
    *status = 0;
    for (size_t sent = 0; sent < total; sent += piece) {
        if (client_send(fd, bytes, piece) != 0) {
            elapsed = now_ms() - start;
            break;
        }
        if (sent + piece >= total)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)every_ms) > 0) { /* an answer, or the close */
            elapsed = now_ms() - start;
            break;
        }
    }
    if (client_response(fd, &r, 0, 3000) == 0) {
        *status = r.status;
        response_free(&r);
    }
    close(fd);
    stop();
    return elapsed;
}

START_TEST(body_min_rate_option)
{
    /* 1000 bytes/s with body_timeout 500 ms: too slow for a minimum of
       100000 bytes/s (408 after about 0.5 s), fine for the default 500. */
    csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
    options.body_timeout_ms = 500;
    options.body_min_rate = 100000;
    int status = 0;
    long elapsed = post_slowly(&options, 100, 100, 2000, &status);
    ck_assert_int_ge(elapsed, 400);
    ck_assert_int_lt(elapsed, 2000);
    ck_assert_int_eq(status, 408);
    ck_assert(logged("408 Request Timeout (request body not received in time (body_timeout, "
                     "body_min_rate))"));

    /* A version 5 struct has no body_min_rate: what lies past it is never
       read, and the default applies. */
    options.version = 5;
    ck_assert_int_eq(post_slowly(&options, 100, 100, 2000, &status), -1);
    ck_assert_int_eq(status, 200);

    /* No minimum: 10 bytes/s, a byte every 100 ms, is within a 500 ms
       body_timeout between reads. */
    options.version = CSGI_SERVER_OPTIONS_VERSION;
    options.body_min_rate = CSGI_SERVER_NO_MIN_RATE;
    ck_assert_int_eq(post_slowly(&options, 1, 100, 20, &status), -1);
    ck_assert_int_eq(status, 200);
    options.body_min_rate = 0; /* the default, 500 bytes/s: the same client is cut */
    options.body_timeout_ms = 300;
    elapsed = post_slowly(&options, 1, 100, 20, &status);
    ck_assert_int_ge(elapsed, 250);
    ck_assert_int_lt(elapsed, 1500);
    ck_assert_int_eq(status, 408);
}
END_TEST

/* ---- The response head's header names ------------------------------------ */

/* The fast path (the usual spelling) and the slow one (any case) both
   answer from the token table: same id, hop-by-hop names refused. */
START_TEST(head_names_follow_the_token_table)
{
    int fast = 0;
    for (int id = 1; id < CSGI_TOKEN__COUNT; id++) {
        const csgi_token__info *info = &csgi_token__table[id];
        char lower[64], copy[64];
        for (size_t i = 0; i < info->len; i++)
            lower[i] = (char)tolower((unsigned char)info->name[i]);
        csgi_token__id known = csgi_head__known_name(info->name, info->len);
        int hop = (info->flags & CSGI_TOKEN__HOP_BY_HOP) != 0;
        ck_assert_msg(known == CSGI_TOKEN__UNKNOWN || ((int)known == id && !hop), "%s", info->name);
        fast += known != CSGI_TOKEN__UNKNOWN;
        int other = csgi_head__other_name(copy, lower, info->len);
        ck_assert_msg(other == (hop ? CSGI_HEAD__HOP_BY_HOP : id), "%s: %d", info->name, other);
        ck_assert(memcmp(copy, lower, info->len) == 0);
    }
    ck_assert_int_ge(fast, 15);
    char copy[32];
    ck_assert_int_eq(csgi_head__known_name("content-type", 12), CSGI_TOKEN__UNKNOWN);
    ck_assert_int_eq(csgi_head__other_name(copy, "X-Request-Id", 12), CSGI_TOKEN__UNKNOWN);
    ck_assert_int_eq(csgi_head__other_name(copy, "Proxy-Whatever", 14), CSGI_HEAD__HOP_BY_HOP);
    ck_assert_int_eq(csgi_head__other_name(copy, "Bad Name", 8), CSGI_HEAD__NOT_TOKEN);
    ck_assert_int_eq(csgi_head__other_name(copy, "", 0), CSGI_HEAD__NOT_TOKEN);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("gateway");
    TCase *tc = tcase_create("sockets");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, hello_through_the_gateway);
    tcase_add_test(tc, misbehaving_applications_get_500);
    tcase_add_test(tc, exc_info_replaces_unsent_headers);
    tcase_add_test(tc, decoded_path_refusals);
    tcase_add_test(tc, streamed_body_and_close_once);
    tcase_add_test(tc, exc_info_after_head_cuts);
    tcase_add_test(tc, slow_reader_is_not_fed);
    tcase_add_test(tc, a_cut_logs_one_line);
    tcase_add_test(tc, answer_later_and_streamed_input);
    tcase_add_test(tc, middleware_pipeline);
    tcase_add_test(tc, declared_length);
    tcase_add_loop_test(tc, framing_independent_of_body_timing, 0, 4);
    tcase_add_test(tc, head_and_no_body_responses_pass_strict_lint);
    if (!test_tls_mode()) /* its own servers listen plain */
        tcase_add_test(tc, server_threads_and_host_loop);
    tcase_add_test(tc, body_min_rate_option);
    tcase_add_test(tc, long_pieces_are_sent_without_a_copy);
    suite_add_tcase(suite, tc);
    TCase *head = tcase_create("head");
    tcase_add_test(head, head_names_follow_the_token_table);
    suite_add_tcase(suite, head);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
