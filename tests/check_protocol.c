/*
 * The application protocol, once through each sink: every case of the
 * table below runs through the in-process test client (csgi/testing.h)
 * and through a real server on 127.0.0.1, and both must give the answer
 * the table expects: status, the headers that matter (Content-Length,
 * Content-Type), body, and whether the response was cut. The two share
 * the response driver (src/gateway/driver.c); this suite is what keeps
 * them from drifting apart.
 */
#include "engine_harness.h"

#include <csgi.h>
#include <csgi/testing.h>

#include <check.h>
#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- The application: one behaviour per path -------------------------------------- */

static const csgi_header text_plain[] = {CSGI_HEADER("Content-Type", "text/plain")};

/* An unlinked file holding "0123456789", for file bodies. */
static int digits_fd = -1;

typedef struct pieces {
    const char *const *texts; /* NULL-terminated */
    size_t next;
    int start_first;   /* call start-response before the first piece */
    int exc_info_late; /* start-response with exc_info after the first piece */
    int fail_at;       /* fail (CSGI_EIO) instead of piece n; -1 never */
    int ready;         /* for /later: the timer fired */
    csgi_start_response *start_response;
    csgi_body *self;
    struct event *timer;
} pieces;

static int pieces_next(void *state, csgi_chunk *chunk)
{
    pieces *p = state;
    if (p->timer && !p->ready)
        return CSGI_EAGAIN;
    if (p->start_first && p->next == 0)
        csgi_start_response_call(p->start_response, "200 OK", text_plain, 1, NULL);
    if (p->exc_info_late && p->next == 1) {
        ck_assert_int_eq(csgi_start_response_call(p->start_response, "500 Internal Server Error",
                                                  NULL, 0, "backend went away"),
                         CSGI_ESTATE);
        return CSGI_EIO;
    }
    if ((int)p->next == p->fail_at)
        return CSGI_EIO;
    const char *text = p->texts[p->next];
    if (!text)
        return 0;
    p->next++;
    chunk->data = text;
    chunk->len = strlen(text);
    return 1;
}

static void pieces_close(void *state)
{
    pieces *p = state;
    if (p->timer)
        event_free(p->timer);
    p->timer = NULL;
}

static const csgi_body_type pieces_type = {"pieces", pieces_next, pieces_close};

static void later_fire(evutil_socket_t fd, short what, void *arg)
{
    pieces *p = arg;
    (void)fd;
    (void)what;
    csgi_start_response_call(p->start_response, "200 OK", text_plain, 1, NULL);
    p->ready = 1;
    csgi_body_resume(p->self);
}

static const char *const one_two_three[] = {"one", "two", "three", NULL};
static const char *const nothing[] = {NULL};

/* An iterator body over texts; declared >= 0 declares its length. */
static pieces *pieces_new(csgi_environ *environ, csgi_start_response *sr, const char *const *texts,
                          int64_t declared)
{
    pieces *p = csgi_environ_alloc(environ, sizeof(*p));
    ck_assert_ptr_nonnull(p);
    memset(p, 0, sizeof(*p));
    p->texts = texts;
    p->fail_at = -1;
    p->start_response = sr;
    p->self = csgi_body_new(environ, &pieces_type, p);
    ck_assert_ptr_nonnull(p->self);
    if (declared >= 0)
        ck_assert_int_eq(csgi_body_set_length(p->self, declared), 0);
    return p;
}

static int is(csgi_environ *environ, const char *path)
{
    const char *p = csgi_environ_get(environ, "PATH_INFO");
    return p && strcmp(p, path) == 0;
}

static csgi_body *start_then(csgi_start_response *sr, const char *status,
                             const csgi_header *headers, size_t count, csgi_body *body)
{
    csgi_start_response_call(sr, status, headers, count, NULL);
    return body;
}

/* The iterator cases: which texts, the declared length, and what else. */
static csgi_body *iterator_case(csgi_environ *environ, csgi_start_response *sr)
{
    static const csgi_header length_10[] = {CSGI_HEADER("Content-Type", "text/plain"),
                                            CSGI_HEADER("Content-Length", "10")};
    pieces *p = pieces_new(environ, sr, is(environ, "/declared-empty") ? nothing : one_two_three,
                           is(environ, "/declared")             ? 11
                           : is(environ, "/declared-too-long")  ? 20
                           : is(environ, "/declared-too-short") ? 5
                           : is(environ, "/declared-empty")     ? 4
                                                                : -1);
    if (is(environ, "/body-before-start"))
        return p->self;
    if (is(environ, "/start-in-next")) {
        p->start_first = 1;
        return p->self;
    }
    if (is(environ, "/later")) {
        p->timer = evtimer_new(csgi_environ_event_base(environ), later_fire, p);
        struct timeval soon = {0, 20000};
        evtimer_add(p->timer, &soon);
        return p->self;
    }
    p->exc_info_late = is(environ, "/exc-info-late");
    p->fail_at = is(environ, "/fails-early") ? 0 : is(environ, "/fails-late") ? 1 : -1;
    if (is(environ, "/length-header-iterator"))
        return start_then(sr, "200 OK", length_10, 2, p->self);
    return start_then(sr, is(environ, "/204") ? "204 No Content" : "200 OK", text_plain, 1,
                      p->self);
}

static csgi_body *protocol_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    static const csgi_header length_10[] = {CSGI_HEADER("Content-Type", "text/plain"),
                                            CSGI_HEADER("Content-Length", "10")};
    static const csgi_header crlf[] = {CSGI_HEADER("X-Evil", "a\r\nSet-Cookie: x=1")};
    static const csgi_header hop[] = {CSGI_HEADER("Connection", "close")};
    (void)state;
    const char *path = csgi_environ_get(environ, "PATH_INFO");
    if (strncmp(path, "/it/", 4) == 0) {
        csgi_environ_set(environ, "PATH_INFO", path + 3);
        return iterator_case(environ, sr);
    }
    if (is(environ, "/bytes") || is(environ, "/304"))
        return start_then(sr, is(environ, "/304") ? "304 Not Modified" : "200 OK", text_plain, 1,
                          csgi_body_static(environ, "hello", 5));
    if (is(environ, "/empty"))
        return start_then(sr, "200 OK", text_plain, 1, csgi_body_static(environ, "", 0));
    if (is(environ, "/big")) {
        char *big = csgi_environ_alloc(environ, 100000);
        memset(big, 'q', 100000);
        return start_then(sr, "200 OK", text_plain, 1, csgi_body_static(environ, big, 100000));
    }
    if (is(environ, "/file"))
        return start_then(sr, "200 OK", text_plain, 1,
                          csgi_body_file(environ, dup(digits_fd), 2, 6));
    if (is(environ, "/length-header-bytes"))
        return start_then(sr, "200 OK", length_10, 2, csgi_body_static(environ, "hello", 5));
    if (is(environ, "/twice")) {
        csgi_start_response_call(sr, "200 OK", text_plain, 1, NULL);
        ck_assert_int_eq(csgi_start_response_call(sr, "404 Not Found", NULL, 0, NULL), CSGI_ESTATE);
        return csgi_body_static(environ, "never", 5);
    }
    if (is(environ, "/no-start"))
        return csgi_body_static(environ, "never", 5);
    if (is(environ, "/bad-status"))
        return start_then(sr, "20 OK", text_plain, 1, csgi_body_static(environ, "x", 1));
    if (is(environ, "/bad-header"))
        return start_then(sr, "200 OK", crlf, 1, csgi_body_static(environ, "x", 1));
    if (is(environ, "/hop-by-hop"))
        return start_then(sr, "200 OK", hop, 1, csgi_body_static(environ, "x", 1));
    if (is(environ, "/null"))
        return NULL;
    if (is(environ, "/exc-info-early")) {
        csgi_start_response_call(sr, "200 OK", text_plain, 1, NULL);
        ck_assert_int_eq(
            csgi_start_response_call(sr, "503 Service Unavailable", text_plain, 1, "backend down"),
            0);
        return csgi_body_static(environ, "sorry", 5);
    }
    if (is(environ, "/legacy-write")) {
        csgi_start_response_call(sr, "200 OK", text_plain, 1, NULL);
        ck_assert_int_eq(csgi_start_response_write(sr, "abc", 3), 0);
        return csgi_body_static(environ, "hello", 5);
    }
    return start_then(sr, "404 Not Found", text_plain, 1, csgi_body_static(environ, "nothing", 7));
}

static const csgi_app_type protocol_type = {"protocol", protocol_call, NULL};

/* ---- The table -------------------------------------------------------------------- */

#define PLAIN     "text/plain"
#define ERROR_500 "500 Internal Server Error\n"
#define PAGE_TYPE "text/plain; charset=utf-8"

typedef struct protocol_case {
    const char *method;
    const char *path;
    int status;                 /* 0: no head reaches the client */
    const char *content_length; /* NULL: none */
    const char *content_type;   /* NULL: none (or not checked for a cut response) */
    const char *body;           /* NULL: cut (not compared), or /big's 100000 'q' */
    int cut;
} protocol_case;

static const protocol_case cases[] = {
    /* Bodies of every kind. */
    {"GET", "/bytes", 200, "5", PLAIN, "hello", 0},
    {"GET", "/empty", 200, "0", PLAIN, "", 0},
    {"GET", "/big", 200, "100000", PLAIN, NULL, 0}, /* body checked by length below */
    {"GET", "/file", 200, "6", PLAIN, "234567", 0},
    {"GET", "/it/iterator", 200, NULL, PLAIN, "onetwothree", 0},
    {"GET", "/it/start-in-next", 200, NULL, PLAIN, "onetwothree", 0},
    {"GET", "/it/later", 200, NULL, PLAIN, "onetwothree", 0},
    {"GET", "/legacy-write", 200, NULL, PLAIN, "abchello", 0},
    /* Declared lengths. */
    {"GET", "/it/declared", 200, "11", PLAIN, "onetwothree", 0},
    {"GET", "/it/declared-too-long", 200, "20", PLAIN, NULL, 1},
    {"GET", "/it/declared-too-short", 200, "5", PLAIN, NULL, 1},
    {"GET", "/it/declared-empty", 500, "26", PAGE_TYPE, ERROR_500, 0},
    {"GET", "/length-header-bytes", 500, "26", PAGE_TYPE, ERROR_500, 0},
    {"GET", "/it/length-header-iterator", 200, "10", PLAIN, NULL, 1},
    /* Responses without a body. */
    {"HEAD", "/bytes", 200, "5", PLAIN, "", 0},
    {"HEAD", "/it/iterator", 200, NULL, PLAIN, "", 0},
    {"HEAD", "/it/declared", 200, "11", PLAIN, "", 0},
    {"GET", "/it/204", 204, NULL, PLAIN, "", 0},
    {"GET", "/304", 304, NULL, PLAIN, "", 0},
    /* Applications that break the protocol. */
    {"GET", "/twice", 500, "26", PAGE_TYPE, ERROR_500, 0},
    {"GET", "/no-start", 500, "26", PAGE_TYPE, ERROR_500, 0},
    {"GET", "/it/body-before-start", 500, "26", PAGE_TYPE, ERROR_500, 0},
    {"GET", "/bad-status", 500, "26", PAGE_TYPE, ERROR_500, 0},
    {"GET", "/bad-header", 500, "26", PAGE_TYPE, ERROR_500, 0},
    {"GET", "/hop-by-hop", 500, "26", PAGE_TYPE, ERROR_500, 0},
    {"GET", "/null", 500, "26", PAGE_TYPE, ERROR_500, 0},
    {"GET", "/it/fails-early", 500, "26", PAGE_TYPE, ERROR_500, 0},
    {"GET", "/it/fails-late", 200, NULL, PLAIN, NULL, 1},
    /* exc_info. */
    {"GET", "/exc-info-early", 503, "5", PLAIN, "sorry", 0},
    {"GET", "/it/exc-info-late", 200, NULL, PLAIN, NULL, 1},
};

/* What came back, whichever way. */
typedef struct answer {
    int status;
    char content_length[32]; /* "" when absent */
    char content_type[64];   /* "" when absent */
    char *body;              /* malloc'd; NULL when cut */
    size_t body_len;
    int cut;
} answer;

static void copy_header(char *dst, size_t size, const char *value)
{
    snprintf(dst, size, "%s", value ? value : "");
}

static void through_client(const protocol_case *c, csgi_app *app, answer *out)
{
    memset(out, 0, sizeof(*out));
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, c->method, c->path), 0);
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    out->status = csgi_test_response_code(response);
    copy_header(out->content_length, sizeof(out->content_length),
                csgi_test_response_header(response, "Content-Length"));
    copy_header(out->content_type, sizeof(out->content_type),
                csgi_test_response_header(response, "Content-Type"));
    out->cut = csgi_test_response_cut(response);
    if (!out->cut) {
        const char *body = csgi_test_response_body(response, &out->body_len);
        out->body = malloc(out->body_len + 1);
        memcpy(out->body, body, out->body_len + 1);
    }
    csgi_test_response_free(response);
    csgi_test_request_free(request);
}

static void through_socket(const protocol_case *c, int port, answer *out)
{
    memset(out, 0, sizeof(*out));
    int fd = client_connect(port);
    char text[256];
    snprintf(text, sizeof(text), "%s %s HTTP/1.1\r\nHost: example.org\r\n\r\n", c->method, c->path);
    ck_assert_int_eq(client_send_str(fd, text), 0);
    test_response r;
    int rc = client_response(fd, &r, strcmp(c->method, "HEAD") == 0, 5000);
    out->status = r.status;
    copy_header(out->content_length, sizeof(out->content_length),
                response_header(&r, "Content-Length"));
    copy_header(out->content_type, sizeof(out->content_type), response_header(&r, "Content-Type"));
    out->cut = rc != 0;
    if (!out->cut) {
        out->body = r.body;
        out->body_len = r.body_len;
    }
    close(fd);
}

/* A cut response is compared by its cut alone on the wire: the engine
   drops what it had queued, so whether its head got out depends on when
   the socket was written. The test client reports the head it was given. */
static void check_answer(const protocol_case *c, const char *way, const answer *a, int wire)
{
    const char *what = c->path;
    ck_assert_msg(a->cut == c->cut, "%s %s via %s: cut %d, expected %d", c->method, what, way,
                  a->cut, c->cut);
    if (wire && c->cut)
        return;
    ck_assert_msg(a->status == c->status, "%s %s via %s: status %d, expected %d", c->method, what,
                  way, a->status, c->status);
    ck_assert_msg(strcmp(a->content_length, c->content_length ? c->content_length : "") == 0,
                  "%s %s via %s: Content-Length '%s', expected '%s'", c->method, what, way,
                  a->content_length, c->content_length ? c->content_length : "");
    ck_assert_msg(strcmp(a->content_type, c->content_type ? c->content_type : "") == 0,
                  "%s %s via %s: Content-Type '%s', expected '%s'", c->method, what, way,
                  a->content_type, c->content_type ? c->content_type : "");
    if (c->body)
        ck_assert_msg(a->body && strcmp(a->body, c->body) == 0,
                      "%s %s via %s: body '%s', expected '%s'", c->method, what, way,
                      a->body ? a->body : "(cut)", c->body);
    else if (!c->cut)
        ck_assert_msg(a->body_len == 100000 && a->body[0] == 'q' && a->body[99999] == 'q',
                      "%s %s via %s: %zu bytes", c->method, what, way, a->body_len);
}

START_TEST(same_answer_both_ways)
{
    const protocol_case *c = &cases[_i];
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &protocol_type, NULL), 0);
    answer memory;
    through_client(c, app, &memory);
    check_answer(c, "the test client", &memory, 0);

    app_server server;
    app_server_start(&server, app, NULL); /* takes app */
    answer wire;
    through_socket(c, server.port, &wire);
    app_server_stop(&server);
    check_answer(c, "a socket", &wire, 1);
    free(memory.body);
    free(wire.body);
}
END_TEST

static void make_digits_file(void)
{
    char path[] = "/tmp/check_protocol_XXXXXX";
    digits_fd = mkstemp(path);
    ck_assert_int_ge(digits_fd, 0);
    unlink(path);
    ck_assert_int_eq(write(digits_fd, "0123456789", 10), 10);
}

int main(void)
{
    Suite *suite = suite_create("protocol");
    TCase *table = tcase_create("table");
    tcase_add_unchecked_fixture(table, make_digits_file, NULL);
    tcase_add_loop_test(table, same_answer_both_ways, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    suite_add_tcase(suite, table);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
