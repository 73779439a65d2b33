/* The in-process test client (csgi/testing.h) and the lint filter
   (csgi/lint.h): every feature of the client, every rule of the gateway it
   mirrors, and every violation lint reports. */
#include "hello_app.h"

#include <csgi.h>
#include <csgi/lint.h>
#include <csgi/testing.h>

#include "test_alloc.h"

#include <check.h>
#include <event2/event.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- Helpers --------------------------------------------------------------------- */

static csgi_test_response *run(csgi_test_request *request, csgi_app *app)
{
    csgi_test_response *response = NULL;
    int rc = csgi_test_request_run(&response, request, app);
    ck_assert_msg(rc == 0, "run: %s", csgi_err_name(rc));
    ck_assert_ptr_nonnull(response);
    return response;
}

static csgi_test_response *get(csgi_app *app, const char *url)
{
    csgi_test_response *response = NULL;
    int rc = csgi_test_get(&response, app, url);
    ck_assert_msg(rc == 0, "get %s: %s", url, csgi_err_name(rc));
    return response;
}

static csgi_test_request *new_request(const char *method, const char *url)
{
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, method, url), 0);
    return request;
}

static csgi_app *new_app(const csgi_app_type *type, void *state)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, type, state), 0);
    return app;
}

static size_t lint_lines(const csgi_test_response *response)
{
    size_t n = 0;
    for (size_t i = 0; i < csgi_test_response_log_count(response); i++)
        if (strstr(csgi_test_response_log_at(response, i), "lint: "))
            n++;
    return n;
}

static void assert_500(const csgi_test_response *response)
{
    ck_assert_str_eq(csgi_test_response_status(response), "500 Internal Server Error");
    ck_assert_int_eq(csgi_test_response_code(response), 500);
    ck_assert_str_eq(csgi_test_response_body(response, NULL), "500 Internal Server Error\n");
    ck_assert_str_eq(csgi_test_response_header(response, "content-type"),
                     "text/plain; charset=utf-8");
    ck_assert_int_eq(csgi_test_response_cut(response), 0);
}

/* ---- A configurable application -------------------------------------------------- */

/* What the test application does; most modes break a rule on purpose. */
typedef enum mode {
    BYTES,             /* 200, "hello" as bytes */
    STREAM,            /* 200, "one" "two" "three" as an iterator */
    ECHO_ENVIRON,      /* the environ keys listed in the state's keys, "K=V\n" each */
    ECHO_INPUT,        /* the request body read in 3-byte pieces */
    READLINE_INPUT,    /* the request body line by line, "[line]" each */
    READ_ALL_INPUT,    /* the request body with csgi_input_read_all */
    LOG_LINES,         /* logs two lines, answers 200 */
    SET_COOKIES,       /* two Set-Cookie fields */
    LEGACY_WRITE,      /* write("abc") then body "def" */
    TWICE,             /* start-response twice without exc_info */
    EXC_INFO_EARLY,    /* 200, then 503 with exc_info before any byte */
    EXC_INFO_LATE,     /* iterator: a chunk, then start-response with exc_info */
    BODY_BEFORE_START, /* iterator yields a chunk before start-response */
    NO_START_EMPTY,    /* an empty iterator, start-response never called */
    NO_BODY,           /* returns NULL */
    LENGTH_MISMATCH,   /* Content-Length 10 on a 5-byte bytes body */
    STREAM_TOO_LONG,   /* Content-Length 3 on an iterator of 3 + 3 bytes */
    STREAM_TOO_SHORT,  /* Content-Length 10 on an iterator of 3 bytes */
    DECLARED_OK,       /* an iterator of 3 bytes that declares 3 */
    DECLARED_SHORT,    /* an iterator of 3 bytes that declares 10 */
    DECLARED_EMPTY,    /* an empty iterator that declares 4 */
    FAIL_FIRST,        /* iterator fails before its first chunk */
    FAIL_LATER,        /* iterator fails after its first chunk */
    HOP_BY_HOP,        /* a Connection header */
    BAD_VALUE,         /* a header value with LF */
    BAD_STATUS,        /* "200OK" */
    NO_CONTENT_BODY,   /* 204 with "junk" as an iterator */
    LATER,             /* EAGAIN, a timer resumes, three rounds */
    NEVER,             /* EAGAIN forever */
    START_IN_NEXT,     /* start-response called from the first next() */
    FILE_BODY,         /* a file body from state->fd */
    NULL_CHUNK,        /* a chunk of 3 bytes with NULL data */
    NO_CONTENT_TYPE,   /* 200 without Content-Type */
    STATUS_HEADER,     /* a Status header */
    NO_REASON,         /* "200 " */
    TWO_LENGTHS,       /* Content-Length twice */
    INFORMATIONAL,     /* "103 Early Hints" */
    HUGE_BODY,         /* an iterator of 1 MiB pieces, one more than the client keeps */
} mode;

typedef struct test_app {
    mode mode;
    const char *const *keys; /* ECHO_ENVIRON */
    int fd;                  /* FILE_BODY */
    int calls;
} test_app;

/* Per request: the iterator's state. */
typedef struct stream {
    test_app *app;
    csgi_environ *environ;
    csgi_start_response *start_response;
    csgi_body *body;
    struct event *timer;
    int step;
    int ready;
} stream;

static int closes; /* stream bodies closed, across the test */

static const csgi_header html[] = {CSGI_HEADER("Content-Type", "text/html")};

static void on_timer(evutil_socket_t fd, short what, void *userdata)
{
    stream *s = userdata;
    (void)fd;
    (void)what;
    s->ready = 1;
    csgi_body_resume(s->body);
}

static void free_timer(void *timer)
{
    event_free(timer);
}

static int stream_next(void *state, csgi_chunk *chunk)
{
    stream *s = state;
    static const char *const words[] = {"one", "two", "three"};
    int step = s->step++;
    switch (s->app->mode) {
    case BODY_BEFORE_START:
        chunk->data = "early";
        chunk->len = 5;
        return 1;
    case NO_START_EMPTY: return 0;
    case EXC_INFO_LATE:
        if (step == 0) {
            chunk->data = "partial";
            chunk->len = 7;
            return 1;
        }
        csgi_start_response_call(s->start_response, "503 Service Unavailable", html, 1,
                                 "database went away");
        return 0;
    case DECLARED_EMPTY: return 0;
    case DECLARED_OK:
    case DECLARED_SHORT:
    case STREAM_TOO_LONG:
    case STREAM_TOO_SHORT:
        if (step >= (s->app->mode == STREAM_TOO_LONG ? 2 : 1))
            return 0;
        chunk->data = "abc";
        chunk->len = 3;
        return 1;
    case FAIL_FIRST: return CSGI_EIO;
    case FAIL_LATER:
        if (step > 0)
            return CSGI_EIO;
        chunk->data = "ok";
        chunk->len = 2;
        return 1;
    case NO_CONTENT_BODY:
        if (step > 0)
            return 0;
        chunk->data = "junk";
        chunk->len = 4;
        return 1;
    case NULL_CHUNK:
        if (step > 0)
            return 0;
        chunk->data = NULL;
        chunk->len = 3;
        return 1;
    case NEVER: return CSGI_EAGAIN;
    case HUGE_BODY: {
        static char mib[1 << 20];
        if ((size_t)step > CSGI_TEST_BODY_MAX / sizeof(mib))
            return 0;
        chunk->data = mib;
        chunk->len = sizeof(mib);
        return 1;
    }
    case LATER:
        /* Rounds 0, 2, 4 wait for the timer; 1, 3, 5 answer. */
        if (step >= 6)
            return 0;
        if (step % 2 == 0) {
            struct event_base *base = csgi_environ_event_base(s->environ);
            if (!base)
                return CSGI_ENOMEM;
            if (!s->timer) {
                s->timer = evtimer_new(base, on_timer, s);
                if (!s->timer)
                    return CSGI_ENOMEM;
                if (csgi_environ_defer(s->environ, free_timer, s->timer) != 0) {
                    event_free(s->timer);
                    s->timer = NULL;
                    return CSGI_ENOMEM;
                }
            }
            struct timeval ten_ms = {0, 10000};
            s->ready = 0;
            evtimer_add(s->timer, &ten_ms);
            return CSGI_EAGAIN;
        }
        if (!s->ready) {
            s->step--;
            return CSGI_EAGAIN;
        }
        chunk->data = words[step / 2];
        chunk->len = strlen(words[step / 2]);
        return 1;
    case START_IN_NEXT:
        if (step == 0)
            csgi_start_response_call(s->start_response, "200 OK", html, 1, NULL);
        if (step >= 1)
            return 0;
        chunk->data = "late start";
        chunk->len = 10;
        return 1;
    default:
        if (step >= 3)
            return 0;
        chunk->data = words[step];
        chunk->len = strlen(words[step]);
        return 1;
    }
}

static void stream_close(void *state)
{
    (void)state;
    closes++;
}

static const csgi_body_type stream_type = {"stream", stream_next, stream_close};

static csgi_body *stream_body(test_app *app, csgi_environ *environ,
                              csgi_start_response *start_response)
{
    stream *s = csgi_environ_alloc(environ, sizeof(*s));
    if (!s)
        return NULL;
    memset(s, 0, sizeof(*s));
    s->app = app;
    s->environ = environ;
    s->start_response = start_response;
    s->body = csgi_body_new(environ, &stream_type, s);
    return s->body;
}

static csgi_body *echo_environ(test_app *app, csgi_environ *environ)
{
    char text[8192];
    size_t used = 0;
    for (const char *const *key = app->keys; *key; key++) {
        const char *value = csgi_environ_get(environ, *key);
        used += (size_t)snprintf(text + used, sizeof(text) - used, "%s=%s\n", *key,
                                 value ? value : "(none)");
    }
    return csgi_body_bytes(environ, text, used);
}

static csgi_body *read_input(test_app *app, csgi_environ *environ)
{
    csgi_input *input = csgi_environ_input(environ);
    char text[4096];
    size_t used = 0;
    long n;
    if (app->mode == READ_ALL_INPUT) {
        const char *all = NULL;
        size_t len = 0;
        int rc = csgi_input_read_all(input, 1024, &all, &len);
        if (rc != 0)
            return csgi_body_static(environ, "read_all failed", 15);
        return csgi_body_bytes(environ, all, len);
    }
    if (app->mode == READLINE_INPUT) {
        char line[64];
        while ((n = csgi_input_readline(input, line, sizeof(line))) > 0)
            used += (size_t)snprintf(text + used, sizeof(text) - used, "[%s]", line);
    } else {
        while ((n = csgi_input_read(input, text + used, 3)) > 0)
            used += (size_t)n;
    }
    if (n < 0)
        return NULL;
    return csgi_body_bytes(environ, text, used);
}

static csgi_body *test_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    test_app *app = state;
    app->calls++;
    static const csgi_header cookies[] = {
        CSGI_HEADER("Content-Type", "text/plain"), CSGI_HEADER("Set-Cookie", "a=1"),
        CSGI_HEADER("X-Other", "x"), CSGI_HEADER("set-cookie", "b=2")};
    static const csgi_header length_10[] = {CSGI_HEADER("Content-Type", "text/plain"),
                                            CSGI_HEADER("Content-Length", "10")};
    static const csgi_header length_3[] = {CSGI_HEADER("Content-Type", "text/plain"),
                                           CSGI_HEADER("Content-Length", "3")};
    static const csgi_header hop[] = {CSGI_HEADER("Content-Type", "text/plain"),
                                      CSGI_HEADER("Connection", "close")};
    static const csgi_header bad_value[] = {CSGI_HEADER("Content-Type", "text/plain"),
                                            CSGI_HEADER("X-Bad", "a\nb")};
    static const csgi_header status_header[] = {CSGI_HEADER("Content-Type", "text/plain"),
                                                CSGI_HEADER("Status", "200 OK")};
    static const csgi_header two_lengths[] = {CSGI_HEADER("Content-Type", "text/plain"),
                                              CSGI_HEADER("Content-Length", "2"),
                                              CSGI_HEADER("Content-Length", "2")};
    switch (app->mode) {
    case BYTES:
        csgi_start_response_call(start_response, "200 OK", html, 1, NULL);
        return csgi_body_static(environ, "hello", 5);
    case ECHO_ENVIRON:
        csgi_start_response_call(start_response, "200 OK", html, 1, NULL);
        return echo_environ(app, environ);
    case ECHO_INPUT:
    case READLINE_INPUT:
    case READ_ALL_INPUT:
        csgi_start_response_call(start_response, "200 OK", html, 1, NULL);
        return read_input(app, environ);
    case LOG_LINES:
        csgi_environ_log(environ, "first %d", 1);
        csgi_environ_log(environ, "second");
        csgi_start_response_call(start_response, "200 OK", html, 1, NULL);
        return csgi_body_static(environ, "logged", 6);
    case SET_COOKIES:
        csgi_start_response_call(start_response, "200 OK", cookies, 4, NULL);
        return csgi_body_static(environ, "", 0);
    case LEGACY_WRITE:
        csgi_start_response_call(start_response, "200 OK", html, 1, NULL);
        ck_assert_int_eq(csgi_start_response_write(start_response, "abc", 3), 0);
        return stream_body(app, environ, start_response);
    case TWICE:
        csgi_start_response_call(start_response, "200 OK", html, 1, NULL);
        ck_assert_int_eq(csgi_start_response_call(start_response, "201 Created", html, 1, NULL),
                         CSGI_ESTATE);
        return csgi_body_static(environ, "hello", 5);
    case EXC_INFO_EARLY:
        csgi_start_response_call(start_response, "200 OK", html, 1, NULL);
        ck_assert_int_eq(csgi_start_response_call(start_response, "503 Service Unavailable", html,
                                                  1, "went wrong"),
                         0);
        return csgi_body_static(environ, "sorry", 5);
    case NO_BODY: return NULL;
    case LENGTH_MISMATCH:
        csgi_start_response_call(start_response, "200 OK", length_10, 2, NULL);
        return csgi_body_static(environ, "hello", 5);
    case STREAM_TOO_LONG:
        csgi_start_response_call(start_response, "200 OK", length_3, 2, NULL);
        return stream_body(app, environ, start_response);
    case STREAM_TOO_SHORT:
        csgi_start_response_call(start_response, "200 OK", length_10, 2, NULL);
        return stream_body(app, environ, start_response);
    case DECLARED_OK:
    case DECLARED_SHORT:
    case DECLARED_EMPTY: {
        csgi_start_response_call(start_response, "200 OK", html, 1, NULL);
        csgi_body *body = stream_body(app, environ, start_response);
        int64_t declared = app->mode == DECLARED_OK ? 3 : app->mode == DECLARED_SHORT ? 10 : 4;
        if (body)
            ck_assert_int_eq(csgi_body_set_length(body, declared), 0);
        return body;
    }
    case HOP_BY_HOP:
        csgi_start_response_call(start_response, "200 OK", hop, 2, NULL);
        return csgi_body_static(environ, "hello", 5);
    case BAD_VALUE:
        csgi_start_response_call(start_response, "200 OK", bad_value, 2, NULL);
        return csgi_body_static(environ, "hello", 5);
    case BAD_STATUS:
        csgi_start_response_call(start_response, "200OK", html, 1, NULL);
        return csgi_body_static(environ, "hello", 5);
    case NO_CONTENT_BODY:
        csgi_start_response_call(start_response, "204 No Content", NULL, 0, NULL);
        return stream_body(app, environ, start_response);
    case FILE_BODY:
        csgi_start_response_call(start_response, "200 OK", html, 1, NULL);
        return csgi_body_file(environ, dup(app->fd), 2, 6);
    case NO_CONTENT_TYPE:
        csgi_start_response_call(start_response, "200 OK", NULL, 0, NULL);
        return csgi_body_static(environ, "x", 1);
    case STATUS_HEADER:
        csgi_start_response_call(start_response, "200 OK", status_header, 2, NULL);
        return csgi_body_static(environ, "x", 1);
    case NO_REASON:
        csgi_start_response_call(start_response, "200 ", html, 1, NULL);
        return csgi_body_static(environ, "x", 1);
    case TWO_LENGTHS:
        csgi_start_response_call(start_response, "200 OK", two_lengths, 3, NULL);
        return csgi_body_static(environ, "xx", 2);
    case INFORMATIONAL:
        csgi_start_response_call(start_response, "103 Early Hints", html, 1, NULL);
        return csgi_body_static(environ, "x", 1);
    case BODY_BEFORE_START:
    case NO_START_EMPTY:
    case START_IN_NEXT: return stream_body(app, environ, start_response);
    default:
        if (csgi_start_response_call(start_response, "200 OK", html, 1, NULL) != 0)
            return NULL;
        return stream_body(app, environ, start_response);
    }
}

static const csgi_app_type test_type = {"test", test_call, NULL};

static csgi_app *mode_app(test_app *state, mode m)
{
    memset(state, 0, sizeof(*state));
    state->mode = m;
    state->fd = -1;
    return new_app(&test_type, state);
}

/* Run GET /x through a mode's application; the response. */
static csgi_test_response *get_mode(mode m)
{
    test_app state;
    csgi_app *app = mode_app(&state, m);
    csgi_test_response *response = get(app, "/x");
    csgi_app_free(app);
    return response;
}

/* Run GET /x through lint (strict or not) around a mode's application. */
static csgi_test_response *lint_mode(mode m, int strict, const char *method)
{
    static test_app state;
    csgi_app *app = mode_app(&state, m);
    csgi_lint_options options = CSGI_LINT_OPTIONS_INIT;
    options.strict = strict;
    csgi_app *lint = NULL;
    ck_assert_int_eq(csgi_lint_new(&lint, app, &options), 0);
    csgi_test_request *request = new_request(method, "/x");
    csgi_test_response *response = run(request, lint);
    csgi_test_request_free(request);
    csgi_app_free(lint);
    return response;
}

/* ---- The test client: requests and responses ------------------------------------- */

START_TEST(get_bytes)
{
    test_app state;
    csgi_app *app = mode_app(&state, BYTES);
    csgi_test_response *r = get(app, "/x");
    ck_assert_str_eq(csgi_test_response_status(r), "200 OK");
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_header(r, "CONTENT-TYPE"), "text/html");
    ck_assert_str_eq(csgi_test_response_header(r, "content-length"), "5");
    ck_assert_ptr_null(csgi_test_response_header(r, "X-Missing"));
    ck_assert_uint_eq(csgi_test_response_header_count(r), 2);
    const char *name = NULL, *value = NULL;
    ck_assert_int_eq(csgi_test_response_header_at(r, 0, &name, &value), 1);
    ck_assert_str_eq(name, "Content-Type");
    ck_assert_str_eq(value, "text/html");
    ck_assert_int_eq(csgi_test_response_header_at(r, 1, &name, NULL), 1);
    ck_assert_str_eq(name, "Content-Length");
    ck_assert_int_eq(csgi_test_response_header_at(r, 2, &name, &value), 0);
    size_t len = 0;
    ck_assert_str_eq(csgi_test_response_body(r, &len), "hello");
    ck_assert_uint_eq(len, 5);
    ck_assert_int_eq(csgi_test_response_cut(r), 0);
    ck_assert_uint_eq(csgi_test_response_log_count(r), 0);
    ck_assert_ptr_null(csgi_test_response_log_at(r, 0));
    csgi_test_response_free(r);
    /* The same request runs again, and the application was called twice. */
    csgi_test_request *request = new_request("GET", "/x");
    csgi_test_response_free(run(request, app));
    csgi_test_response_free(run(request, app));
    ck_assert_int_eq(state.calls, 3);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

static const char *const url_keys[] = {"REQUEST_METHOD",
                                       "SCRIPT_NAME",
                                       "PATH_INFO",
                                       "QUERY_STRING",
                                       "SERVER_NAME",
                                       "SERVER_PORT",
                                       "REQUEST_URI",
                                       "csgi.url_scheme",
                                       "REMOTE_ADDR",
                                       "REMOTE_PORT",
                                       "HTTP_HOST",
                                       "SERVER_PROTOCOL",
                                       NULL};

START_TEST(environ_from_full_url)
{
    test_app state;
    csgi_app *app = mode_app(&state, ECHO_ENVIRON);
    state.keys = url_keys;
    csgi_test_response *r = get(app, "https://Example.com:8443/a%20b/c?q=1&r");
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "REQUEST_METHOD=GET\n"
                                                       "SCRIPT_NAME=\n"
                                                       "PATH_INFO=/a b/c\n"
                                                       "QUERY_STRING=q=1&r\n"
                                                       "SERVER_NAME=Example.com\n"
                                                       "SERVER_PORT=8443\n"
                                                       "REQUEST_URI=/a%20b/c?q=1&r\n"
                                                       "csgi.url_scheme=https\n"
                                                       "REMOTE_ADDR=127.0.0.1\n"
                                                       "REMOTE_PORT=0\n"
                                                       "HTTP_HOST=Example.com:8443\n"
                                                       "SERVER_PROTOCOL=HTTP/1.1\n");
    csgi_test_response_free(r);
    r = get(app, "http://example.org");
    ck_assert_ptr_nonnull(strstr(csgi_test_response_body(r, NULL), "PATH_INFO=/\n"));
    ck_assert_ptr_nonnull(strstr(csgi_test_response_body(r, NULL), "SERVER_PORT=80\n"));
    csgi_test_response_free(r);
    r = get(app, "https://example.org?x=y");
    ck_assert_ptr_nonnull(strstr(csgi_test_response_body(r, NULL), "SERVER_PORT=443\n"));
    ck_assert_ptr_nonnull(strstr(csgi_test_response_body(r, NULL), "QUERY_STRING=x=y\n"));
    ck_assert_ptr_nonnull(strstr(csgi_test_response_body(r, NULL), "REQUEST_URI=/?x=y\n"));
    csgi_test_response_free(r);
    csgi_app_free(app);
}
END_TEST

START_TEST(environ_from_target_and_overrides)
{
    static const char *const keys[] = {"REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO",
                                       "SERVER_NAME",    "SERVER_PORT", "csgi.url_scheme",
                                       "REMOTE_ADDR",    "REMOTE_PORT", "HTTP_X_MANY",
                                       "HTTP_HOST",      "my.key",      NULL};
    test_app state;
    csgi_app *app = mode_app(&state, ECHO_ENVIRON);
    state.keys = keys;
    csgi_test_request *request = new_request("DELETE", "/p");
    ck_assert_int_eq(csgi_test_request_add_header(request, "X-Many", "1"), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "x-many", "2"), 0);
    ck_assert_int_eq(csgi_test_request_set_environ(request, "SCRIPT_NAME", "/mount"), 0);
    ck_assert_int_eq(csgi_test_request_set_environ(request, "my.key", "mine"), 0);
    ck_assert_int_eq(csgi_test_request_set_remote(request, "192.0.2.7", 5555), 0);
    csgi_test_response *r = run(request, app);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "REQUEST_METHOD=DELETE\n"
                                                       "SCRIPT_NAME=/mount\n"
                                                       "PATH_INFO=/p\n"
                                                       "SERVER_NAME=localhost\n"
                                                       "SERVER_PORT=80\n"
                                                       "csgi.url_scheme=http\n"
                                                       "REMOTE_ADDR=192.0.2.7\n"
                                                       "REMOTE_PORT=5555\n"
                                                       "HTTP_X_MANY=1, 2\n"
                                                       "HTTP_HOST=localhost:80\n"
                                                       "my.key=mine\n");
    csgi_test_response_free(r);
    /* A Host header replaces the default one; IPv6 clients. */
    ck_assert_int_eq(csgi_test_request_add_header(request, "Host", "other.test:81"), 0);
    ck_assert_int_eq(csgi_test_request_set_remote(request, "2001:db8::1", 65535), 0);
    r = run(request, app);
    const char *body = csgi_test_response_body(r, NULL);
    ck_assert_ptr_nonnull(strstr(body, "SERVER_NAME=other.test\nSERVER_PORT=81\n"));
    ck_assert_ptr_nonnull(strstr(body, "REMOTE_ADDR=2001:db8::1\nREMOTE_PORT=65535\n"));
    csgi_test_response_free(r);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

START_TEST(invalid_arguments)
{
    csgi_test_request *request = (csgi_test_request *)&request;
    ck_assert_int_eq(csgi_test_request_new(&request, "G T", "/"), CSGI_EINVAL);
    ck_assert_ptr_null(request);
    ck_assert_int_eq(csgi_test_request_new(&request, "GET\r\nX: y", "/"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_request_new(&request, "", "/"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_request_new(&request, NULL, "/"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_request_new(NULL, "GET", "/"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "ftp://example.com/"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "http:///path"), CSGI_EINVAL);
    request = new_request("GET", "/");
    ck_assert_int_eq(csgi_test_request_add_header(request, "X-A", "a\r\nX-Injected: 1"),
                     CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Bad Name", "v"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_request_add_header(request, "X-A", NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_request_set_environ(request, "", "v"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_request_set_remote(request, "example.com", 1), CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_request_set_remote(request, "127.0.0.1", 65536), CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_request_set_body(request, NULL, 3), CSGI_EINVAL);
    csgi_test_response *response = (csgi_test_response *)&response;
    ck_assert_int_eq(csgi_test_request_run(&response, request, NULL), CSGI_EINVAL);
    ck_assert_ptr_null(response);
    test_app state;
    csgi_app *app = mode_app(&state, BYTES);
    ck_assert_int_eq(csgi_test_request_run(&response, NULL, app), CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_request_run(NULL, request, app), CSGI_EINVAL);
    ck_assert_int_eq(state.calls, 0);
    csgi_test_request_free(request);
    csgi_test_request_free(NULL);
    csgi_test_response_free(NULL);
    csgi_app_free(app);
}
END_TEST

/* A malformed request is refused as the server refuses it: no application runs. */
static void expect_parse_error(csgi_test_request *request)
{
    test_app state;
    csgi_app *app = mode_app(&state, BYTES);
    csgi_test_response *response = (csgi_test_response *)&response;
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), CSGI_EPARSE);
    ck_assert_ptr_null(response);
    ck_assert_int_eq(state.calls, 0);
    csgi_app_free(app);
    csgi_test_request_free(request);
}

START_TEST(malformed_requests)
{
    expect_parse_error(new_request("GET", "/a b"));
    expect_parse_error(new_request("GET", "/../etc/passwd"));
    expect_parse_error(new_request("GET", "/a/%2e%2e/%2e%2e/x"));
    expect_parse_error(new_request("GET", "/a%2f..%2f..%2fx"));
    expect_parse_error(new_request("GET", "/nul%00byte"));
    expect_parse_error(new_request("GET", "*"));
    expect_parse_error(new_request("GET", "http://bad host/"));
    csgi_test_request *request = new_request("POST", "/");
    ck_assert_int_eq(csgi_test_request_add_header(request, "Content-Length", "abc"), 0);
    expect_parse_error(request);
    request = new_request("POST", "/");
    ck_assert_int_eq(csgi_test_request_add_header(request, "Content-Length", "3"), 0);
    ck_assert_int_eq(csgi_test_request_set_body(request, "abc", 3), 0); /* two lengths */
    expect_parse_error(request);
    request = new_request("POST", "/");
    ck_assert_int_eq(csgi_test_request_add_header(request, "Transfer-Encoding", "gzip"), 0);
    expect_parse_error(request);
    request = new_request("GET", "/");
    ck_assert_int_eq(csgi_test_request_add_header(request, "Host", "a"), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Host", "b"), 0);
    expect_parse_error(request);
    /* The server's limits: 100 fields pass, 101 do not; 8 KiB lines. */
    request = new_request("GET", "/");
    for (int i = 0; i < 99; i++)
        ck_assert_int_eq(csgi_test_request_add_header(request, "X-Field", "value"), 0);
    test_app state;
    csgi_app *app = mode_app(&state, BYTES);
    csgi_test_response_free(run(request, app));
    ck_assert_int_eq(csgi_test_request_add_header(request, "X-Field", "value"), 0);
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), CSGI_EPARSE);
    csgi_test_request_free(request);
    static char big[9000];
    memset(big, 'v', sizeof(big) - 1);
    request = new_request("GET", "/");
    ck_assert_int_eq(csgi_test_request_add_header(request, "X-Big", big + 1000), 0);
    csgi_test_response_free(run(request, app));
    ck_assert_int_eq(csgi_test_request_add_header(request, "X-Bigger", big), 0);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), CSGI_EPARSE);
    csgi_test_request_free(request);
    ck_assert_int_eq(state.calls, 2);
    csgi_app_free(app);
}
END_TEST

START_TEST(options_asterisk)
{
    static const char *const keys[] = {"PATH_INFO", NULL};
    test_app state;
    csgi_app *app = mode_app(&state, ECHO_ENVIRON);
    state.keys = keys;
    csgi_test_request *request = new_request("OPTIONS", "*");
    csgi_test_response *r = run(request, app);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "PATH_INFO=*\n");
    csgi_test_response_free(r);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

static csgi_test_response *post(csgi_app *app, const char *body)
{
    csgi_test_request *request = new_request("POST", "/upload");
    ck_assert_int_eq(csgi_test_request_add_header(request, "Content-Type", "text/plain"), 0);
    ck_assert_int_eq(csgi_test_request_set_body(request, "replaced", 8), 0);
    ck_assert_int_eq(csgi_test_request_set_body(request, body, strlen(body)), 0);
    csgi_test_response *r = run(request, app);
    csgi_test_request_free(request);
    return r;
}

START_TEST(input_reading)
{
    static const char text[] = "first line\nsecond\nlast without newline";
    test_app state;
    csgi_app *app = mode_app(&state, ECHO_INPUT);
    csgi_test_response *r = post(app, text);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), text);
    csgi_test_response_free(r);
    state.mode = READLINE_INPUT;
    r = post(app, text);
    ck_assert_str_eq(csgi_test_response_body(r, NULL),
                     "[first line\n][second\n][last without newline]");
    csgi_test_response_free(r);
    state.mode = READ_ALL_INPUT;
    r = post(app, text);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), text);
    csgi_test_response_free(r);
    /* An empty body, and no body at all. */
    r = post(app, "");
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "");
    csgi_test_response_free(r);
    r = get(app, "/");
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "");
    csgi_test_response_free(r);
    /* CONTENT_TYPE and CONTENT_LENGTH come from the body. */
    static const char *const keys[] = {"CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_CONTENT_LENGTH",
                                       NULL};
    state.mode = ECHO_ENVIRON;
    state.keys = keys;
    r = post(app, "12345");
    ck_assert_str_eq(csgi_test_response_body(r, NULL),
                     "CONTENT_TYPE=text/plain\nCONTENT_LENGTH=5\nHTTP_CONTENT_LENGTH=(none)\n");
    csgi_test_response_free(r);
    csgi_app_free(app);
}
END_TEST

START_TEST(repeated_header_values)
{
    csgi_test_response *r = get_mode(SET_COOKIES);
    ck_assert_str_eq(csgi_test_response_header(r, "Set-Cookie"), "a=1");
    ck_assert_str_eq(csgi_test_response_header_value(r, "SET-COOKIE", 0), "a=1");
    ck_assert_str_eq(csgi_test_response_header_value(r, "set-cookie", 1), "b=2");
    ck_assert_ptr_null(csgi_test_response_header_value(r, "set-cookie", 2));
    ck_assert_str_eq(csgi_test_response_header(r, "content-length"), "0");
    ck_assert_uint_eq(csgi_test_response_header_count(r), 5);
    const char *name = NULL;
    ck_assert_int_eq(csgi_test_response_header_at(r, 3, &name, NULL), 1);
    ck_assert_str_eq(name, "set-cookie"); /* as the application wrote it */
    csgi_test_response_free(r);
}
END_TEST

START_TEST(log_lines)
{
    test_app state;
    csgi_app *app = mode_app(&state, LOG_LINES);
    csgi_test_request *request = new_request("GET", "/logs?secret=1");
    ck_assert_int_eq(csgi_test_request_set_remote(request, "192.0.2.9", 1234), 0);
    csgi_test_response *r = run(request, app);
    ck_assert_uint_eq(csgi_test_response_log_count(r), 2);
    ck_assert_str_eq(csgi_test_response_log_at(r, 0), "GET /logs (client 192.0.2.9:1234): first 1");
    ck_assert_str_eq(csgi_test_response_log_at(r, 1), "GET /logs (client 192.0.2.9:1234): second");
    ck_assert_int_eq(csgi_test_response_log_contains(r, "second"), 1);
    ck_assert_int_eq(csgi_test_response_log_contains(r, "third"), 0);
    ck_assert_int_eq(csgi_test_response_log_contains(r, "secret"), 0);
    csgi_test_response_free(r);
    csgi_test_request_free(request);
    /* The environ's own lines are kept too: a header it drops. */
    static const char *const keys[] = {"HTTP_X_UNDER_SCORE", NULL};
    state.mode = ECHO_ENVIRON;
    state.keys = keys;
    request = new_request("GET", "/h");
    ck_assert_int_eq(csgi_test_request_add_header(request, "X_Under_Score", "1"), 0);
    r = run(request, app);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "HTTP_X_UNDER_SCORE=(none)\n");
    ck_assert_int_eq(csgi_test_response_log_contains(
                         r, "dropped header X_Under_Score: underscores are not allowed"),
                     1);
    csgi_test_response_free(r);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

/* ---- Bodies ------------------------------------------------------------------------ */

START_TEST(stream_body_closed_once)
{
    closes = 0;
    csgi_test_response *r = get_mode(STREAM);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "onetwothree");
    ck_assert_ptr_null(csgi_test_response_header(r, "Content-Length"));
    ck_assert_int_eq(closes, 1);
    csgi_test_response_free(r);
    /* A start-response from inside next() works as on the server. */
    r = get_mode(START_IN_NEXT);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "late start");
    ck_assert_int_eq(closes, 2);
    csgi_test_response_free(r);
}
END_TEST

/* An unlinked temporary file holding "0123456789". */
static int digits_file(void)
{
    char path[] = "/tmp/check_testing_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    ck_assert_int_eq(write(fd, "0123456789", 10), 10);
    return fd;
}

START_TEST(file_body)
{
    int fd = digits_file();
    test_app state;
    csgi_app *app = mode_app(&state, FILE_BODY);
    state.fd = fd;
    csgi_test_response *r = get(app, "/file");
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "234567");
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Length"), "6");
    csgi_test_response_free(r);
    /* A file shorter than promised: the response is cut. */
    ck_assert_int_eq(ftruncate(fd, 4), 0);
    r = get(app, "/file");
    ck_assert_int_eq(csgi_test_response_cut(r), 1);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "23");
    ck_assert_int_eq(csgi_test_response_log_contains(r, "could not send the file"), 1);
    csgi_test_response_free(r);
    close(fd);
    csgi_app_free(app);
}
END_TEST

/* What middleware can see of a body without pulling it (kind, bytes, file). */
static csgi_body *accessors_call(void *state, csgi_environ *environ,
                                 csgi_start_response *start_response)
{
    int *file = state;
    csgi_body *bytes = csgi_body_static(environ, "hello", 5);
    size_t len = 99;
    ck_assert_int_eq(csgi_body_kind_of(bytes), CSGI_BODY_BYTES);
    ck_assert_ptr_eq(csgi_body_data(bytes, &len), "hello");
    ck_assert_uint_eq(len, 5);
    int fd = -1;
    ck_assert_int_eq(csgi_body_take_file(bytes, &fd, NULL, NULL), CSGI_EINVAL);

    csgi_body *iterator = stream_body(NULL, environ, start_response);
    ck_assert_int_eq(csgi_body_kind_of(iterator), CSGI_BODY_ITERATOR);
    ck_assert_ptr_null(csgi_body_data(iterator, &len));
    ck_assert_uint_eq(len, 0);
    csgi_body_close(iterator);

    csgi_body *from_file = csgi_body_file(environ, dup(*file), 2, 6);
    ck_assert_int_eq(csgi_body_kind_of(from_file), CSGI_BODY_FILE);
    ck_assert_ptr_null(csgi_body_data(from_file, NULL));
    ck_assert_int_eq(csgi_body_take_file(from_file, NULL, NULL, NULL), CSGI_EINVAL);
    int64_t offset = -1, length = -1;
    ck_assert_int_eq(csgi_body_take_file(from_file, &fd, &offset, &length), 0);
    ck_assert_int_eq(offset, 2);
    ck_assert_int_eq(length, 6);
    ck_assert_int_eq(csgi_body_take_file(from_file, &fd, NULL, NULL), CSGI_ESTATE);
    /* The caller owns the descriptor: closing the body leaves it open. */
    csgi_body_close(from_file);
    char byte = 0;
    ck_assert_int_eq(pread(fd, &byte, 1, offset), 1);
    ck_assert_int_eq(byte, '2');
    close(fd);

    csgi_start_response_call(start_response, "200 OK", html, 1, NULL);
    return bytes;
}

START_TEST(body_accessors)
{
    int fd = digits_file();
    static const csgi_app_type accessors_type = {"accessors", accessors_call, NULL};
    csgi_app *app = new_app(&accessors_type, &fd);
    csgi_test_response *r = get(app, "/x");
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "hello");
    csgi_test_response_free(r);
    csgi_app_free(app);
    close(fd);
}
END_TEST

START_TEST(head_and_no_content)
{
    test_app state;
    csgi_app *app = mode_app(&state, BYTES);
    csgi_test_request *request = new_request("HEAD", "/x");
    csgi_test_response *r = run(request, app);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "");
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Length"), "5");
    csgi_test_response_free(r);
    closes = 0;
    state.mode = STREAM;
    r = run(request, app);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "");
    ck_assert_ptr_null(csgi_test_response_header(r, "Content-Length"));
    ck_assert_int_eq(closes, 1);
    csgi_test_response_free(r);
    csgi_test_request_free(request);
    /* 204: the body is dropped, no Content-Length. */
    state.mode = NO_CONTENT_BODY;
    r = get(app, "/x");
    ck_assert_int_eq(csgi_test_response_code(r), 204);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "");
    ck_assert_ptr_null(csgi_test_response_header(r, "Content-Length"));
    ck_assert_int_eq(closes, 2);
    csgi_test_response_free(r);
    csgi_app_free(app);
}
END_TEST

START_TEST(legacy_write)
{
    csgi_test_response *r = get_mode(LEGACY_WRITE);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "abconetwothree");
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    csgi_test_response_free(r);
}
END_TEST

START_TEST(answers_later)
{
    closes = 0;
    test_app state;
    csgi_app *app = mode_app(&state, LATER);
    csgi_test_response *r = get(app, "/later");
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "onetwothree");
    ck_assert_int_eq(closes, 1);
    csgi_test_response_free(r);
    /* Through lint, which passes CSGI_EAGAIN on. */
    csgi_app *lint = NULL;
    ck_assert_int_eq(csgi_lint_new(&lint, csgi_app_ref(app), NULL), 0);
    r = get(lint, "/later");
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "onetwothree");
    ck_assert_uint_eq(lint_lines(r), 0);
    ck_assert_int_eq(closes, 2);
    csgi_test_response_free(r);
    csgi_app_free(lint);
    csgi_app_free(app);
}
END_TEST

START_TEST(body_over_the_limit)
{
    closes = 0;
    test_app state;
    csgi_app *app = mode_app(&state, HUGE_BODY);
    csgi_test_response *response = (csgi_test_response *)&response;
    ck_assert_int_eq(csgi_test_get(&response, app, "/huge"), CSGI_ETOOBIG);
    ck_assert_ptr_null(response);
    ck_assert_int_eq(closes, 1);
    /* HEAD keeps no bytes: the same body is fine. */
    csgi_test_request *request = new_request("HEAD", "/huge");
    response = run(request, app);
    ck_assert_str_eq(csgi_test_response_body(response, NULL), "");
    ck_assert_int_eq(closes, 2);
    csgi_test_response_free(response);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

START_TEST(timeout)
{
    closes = 0;
    test_app state;
    csgi_app *app = mode_app(&state, NEVER);
    csgi_test_request *request = new_request("GET", "/never");
    csgi_test_request_set_timeout(request, 50);
    csgi_test_response *response = (csgi_test_response *)&response;
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), CSGI_ETIMEDOUT);
    ck_assert_ptr_null(response);
    ck_assert_int_eq(closes, 1);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

/* ---- The gateway's rules ----------------------------------------------------------- */

START_TEST(rule_start_response_twice)
{
    csgi_test_response *r = get_mode(TWICE);
    assert_500(r);
    ck_assert_int_eq(
        csgi_test_response_log_contains(r, "test: GET /x: start-response called twice"), 1);
    csgi_test_response_free(r);
}
END_TEST

START_TEST(rule_exc_info)
{
    /* Before anything was sent, exc_info replaces the answer. */
    csgi_test_response *r = get_mode(EXC_INFO_EARLY);
    ck_assert_int_eq(csgi_test_response_code(r), 503);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "sorry");
    ck_assert_uint_eq(csgi_test_response_log_count(r), 0);
    csgi_test_response_free(r);
    /* After a chunk went out, only cutting tells the client. */
    closes = 0;
    r = get_mode(EXC_INFO_LATE);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_int_eq(csgi_test_response_cut(r), 1);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "partial");
    ck_assert_int_eq(csgi_test_response_log_contains(r, "database went away"), 1);
    ck_assert_int_eq(closes, 1);
    csgi_test_response_free(r);
}
END_TEST

START_TEST(rule_order_and_no_body)
{
    closes = 0;
    csgi_test_response *r = get_mode(BODY_BEFORE_START);
    assert_500(r);
    ck_assert_int_eq(csgi_test_response_log_contains(r, "body produced before start-response"), 1);
    csgi_test_response_free(r);
    r = get_mode(NO_START_EMPTY);
    assert_500(r);
    ck_assert_int_eq(csgi_test_response_log_contains(r, "returned without calling start-response"),
                     1);
    csgi_test_response_free(r);
    ck_assert_int_eq(closes, 2);
    r = get_mode(NO_BODY);
    assert_500(r);
    ck_assert_int_eq(csgi_test_response_log_contains(r, "returned no body"), 1);
    csgi_test_response_free(r);
}
END_TEST

START_TEST(rule_content_length)
{
    csgi_test_response *r = get_mode(LENGTH_MISMATCH);
    assert_500(r);
    ck_assert_int_eq(
        csgi_test_response_log_contains(r, "Content-Length differs from the body's length"), 1);
    csgi_test_response_free(r);
    r = get_mode(STREAM_TOO_LONG);
    ck_assert_int_eq(csgi_test_response_cut(r), 1);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "abc");
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Length"), "3");
    ck_assert_int_eq(csgi_test_response_log_contains(r, "longer than its Content-Length"), 1);
    csgi_test_response_free(r);
    r = get_mode(STREAM_TOO_SHORT);
    ck_assert_int_eq(csgi_test_response_cut(r), 1);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "abc");
    ck_assert_int_eq(csgi_test_response_log_contains(r, "shorter than its Content-Length"), 1);
    csgi_test_response_free(r);
}
END_TEST

/* An iterator that declares its length: a Content-Length, held to it. */
START_TEST(rule_declared_length)
{
    csgi_test_response *r = get_mode(DECLARED_OK);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_int_eq(csgi_test_response_cut(r), 0);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "abc");
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Length"), "3");
    csgi_test_response_free(r);
    r = get_mode(DECLARED_SHORT);
    ck_assert_int_eq(csgi_test_response_cut(r), 1);
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Length"), "10");
    ck_assert_int_eq(csgi_test_response_log_contains(r, "shorter than its Content-Length"), 1);
    csgi_test_response_free(r);
    r = get_mode(DECLARED_EMPTY);
    assert_500(r);
    ck_assert_int_eq(csgi_test_response_log_contains(r, "shorter than its declared length"), 1);
    csgi_test_response_free(r);
}
END_TEST

START_TEST(rule_body_fails)
{
    csgi_test_response *r = get_mode(FAIL_FIRST);
    assert_500(r);
    ck_assert_int_eq(csgi_test_response_log_contains(r, "the response body failed"), 1);
    csgi_test_response_free(r);
    r = get_mode(FAIL_LATER);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_int_eq(csgi_test_response_cut(r), 1);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "ok");
    ck_assert_int_eq(csgi_test_response_log_contains(r, "the response body failed"), 1);
    csgi_test_response_free(r);
}
END_TEST

START_TEST(rule_refused_head)
{
    static const struct {
        mode mode;
        const char *problem;
    } cases[] = {
        {HOP_BY_HOP, "start-response refused: hop-by-hop header"},
        {BAD_VALUE, "start-response refused: CR, LF, NUL or control character"},
        {BAD_STATUS, "start-response refused: status is not"},
        {INFORMATIONAL, "start-response refused: status code outside 200-599"},
        {TWO_LENGTHS, "start-response refused: Content-Length given twice"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        csgi_test_response *r = get_mode(cases[i].mode);
        assert_500(r);
        ck_assert_msg(csgi_test_response_log_contains(r, cases[i].problem), "case %zu: %s", i,
                      csgi_test_response_log_at(r, 0));
        ck_assert_int_eq(
            csgi_test_response_log_contains(r, "the application's response was refused"), 1);
        csgi_test_response_free(r);
    }
}
END_TEST

/* ---- Allocation failures ------------------------------------------------------------ */

/* Build and run a request with every allocation failing in turn: each
   attempt ends in CSGI_ENOMEM or a response, and nothing leaks (ASan and
   valgrind check that). */
static void out_of_memory_run(csgi_app *app, const char *expected_body)
{
    static char big[6000];
    memset(big, 'b', sizeof(big) - 1);
    ck_assert_int_eq(test_alloc_install(), 0);
    int succeeded = 0;
    for (long budget = 0; budget < 400 && !succeeded; budget++) {
        test_alloc_fail_after(budget);
        csgi_test_request *request = NULL;
        csgi_test_response *response = NULL;
        int rc = csgi_test_request_new(&request, "POST", "https://example.com/p?q=1");
        if (rc == 0)
            rc = csgi_test_request_add_header(request, "X-Big", big);
        if (rc == 0)
            rc = csgi_test_request_set_body(request, "body", 4);
        if (rc == 0)
            rc = csgi_test_request_set_environ(request, "my.key", "v");
        if (rc == 0)
            rc = csgi_test_request_run(&response, request, app);
        ck_assert_msg(rc == 0 || rc == CSGI_ENOMEM, "budget %ld: %s", budget, csgi_err_name(rc));
        if (rc == 0) {
            ck_assert_ptr_nonnull(response);
            int code = csgi_test_response_code(response);
            ck_assert_msg(code == 200 || code == 500, "budget %ld: %d", budget, code);
            if (code == 200) {
                ck_assert_str_eq(csgi_test_response_body(response, NULL), expected_body);
                succeeded = test_alloc_count() < budget; /* no allocation failed */
            }
        } else {
            ck_assert_ptr_null(response);
        }
        test_alloc_fail_never();
        csgi_test_response_free(response);
        csgi_test_request_free(request);
    }
    ck_assert_int_eq(test_alloc_restore(), 0);
    ck_assert_int_eq(succeeded, 1);
}

START_TEST(out_of_memory_every_allocation)
{
    static const char *const keys[] = {"PATH_INFO", "HTTP_X_BIG", NULL};
    test_app state;
    csgi_app *app = mode_app(&state, STREAM);
    out_of_memory_run(app, "onetwothree");
    csgi_app_free(app);
    app = mode_app(&state, LOG_LINES);
    out_of_memory_run(app, "logged");
    csgi_app_free(app);
    app = mode_app(&state, ECHO_ENVIRON);
    state.keys = keys;
    csgi_app *lint = NULL;
    ck_assert_int_eq(csgi_lint_new(&lint, app, NULL), 0);
    char expected[6100];
    memset(expected, 'b', sizeof(expected));
    memcpy(expected, "PATH_INFO=/p\nHTTP_X_BIG=", 24);
    memcpy(expected + 24 + 5999, "\n", 2);
    out_of_memory_run(lint, expected);
    csgi_app_free(lint);
}
END_TEST

/* ---- Lint ------------------------------------------------------------------------- */

START_TEST(lint_clean_apps)
{
    static const mode clean[] = {BYTES, STREAM, SET_COOKIES, LOG_LINES, START_IN_NEXT, LATER};
    for (size_t i = 0; i < sizeof(clean) / sizeof(clean[0]); i++) {
        csgi_test_response *r = lint_mode(clean[i], 1, "GET");
        ck_assert_msg(lint_lines(r) == 0, "mode %d: %s", (int)clean[i],
                      csgi_test_response_log_at(r, 0));
        ck_assert_int_eq(csgi_test_response_code(r), 200);
        csgi_test_response_free(r);
    }
    /* The hello example, through lint, strict. */
    csgi_app *hello = NULL, *lint = NULL;
    ck_assert_int_eq(hello_app_new(&hello), 0);
    csgi_lint_options options = CSGI_LINT_OPTIONS_INIT;
    options.strict = 1;
    ck_assert_int_eq(csgi_lint_new(&lint, hello, &options), 0);
    csgi_test_response *r = get(lint, "http://127.0.0.1:8080/");
    ck_assert_str_eq(csgi_test_response_status(r), "200 OK");
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "Hello World");
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Type"), "text/html");
    ck_assert_uint_eq(csgi_test_response_log_count(r), 0);
    csgi_test_response_free(r);
    csgi_app_free(lint);
}
END_TEST

/* Each violation of the application: its lint line, then what the server
   does anyway (lint is not strict). */
START_TEST(lint_application_violations)
{
    static const struct {
        mode mode;
        const char *method;
        const char *line;
    } cases[] = {
        {TWICE, "GET", "lint: start-response called twice without exc_info"},
        {BODY_BEFORE_START, "GET", "lint: body produced before start-response"},
        {NO_START_EMPTY, "GET", "lint: the body ended before start-response was called"},
        {NO_BODY, "GET", "lint: the application returned no body"},
        {LENGTH_MISMATCH, "GET",
         "lint: the body (5 bytes) is shorter than its Content-Length (10)"},
        {STREAM_TOO_LONG, "GET", "lint: the body is longer than its Content-Length (3)"},
        {STREAM_TOO_SHORT, "GET", "lint: the body (3 bytes) is shorter than its Content-Length"},
        {DECLARED_SHORT, "GET",
         "lint: the body (3 bytes) is shorter than its declared length (10)"},
        {HOP_BY_HOP, "GET", "lint: header Connection is hop-by-hop"},
        {BAD_VALUE, "GET", "lint: header X-Bad: CR, LF, NUL or control character"},
        {BAD_STATUS, "GET", "lint: start-response: status is not \"DDD Reason\": \"200OK\""},
        {NO_CONTENT_BODY, "GET", "lint: body bytes in a response to 204 or 304"},
        {BYTES, "HEAD", "lint: body bytes in a response to HEAD"},
        {NULL_CHUNK, "GET", "lint: a chunk of 3 bytes without data"},
        {NO_CONTENT_TYPE, "GET", "lint: no Content-Type header in a 200 response"},
        {STATUS_HEADER, "GET", "lint: header Status is not allowed"},
        {NO_REASON, "GET", "lint: start-response: status 200 has no reason phrase"},
        {TWO_LENGTHS, "GET", "lint: header Content-Length given twice"},
        {INFORMATIONAL, "GET", "lint: start-response: status 103 is informational"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        csgi_test_response *r = lint_mode(cases[i].mode, 0, cases[i].method);
        ck_assert_msg(csgi_test_response_log_contains(r, cases[i].line), "case %zu: got %s", i,
                      csgi_test_response_log_at(r, 0) ? csgi_test_response_log_at(r, 0)
                                                      : "(nothing)");
        /* Each line also names the request, as csgi_environ_log does. */
        ck_assert_ptr_nonnull(strstr(csgi_test_response_log_at(r, 0), "/x (client 127.0.0.1"));
        csgi_test_response_free(r);
    }
    /* Not strict: the server's own rule decides (a 500, or the response as is). */
    csgi_test_response *r = lint_mode(NO_CONTENT_TYPE, 0, "GET");
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "x");
    csgi_test_response_free(r);
    r = lint_mode(STREAM_TOO_LONG, 0, "GET");
    ck_assert_int_eq(csgi_test_response_cut(r), 1);
    csgi_test_response_free(r);
}
END_TEST

START_TEST(lint_strict)
{
    /* Before the body started: the filter answers 500 itself. */
    static const mode before[] = {NO_CONTENT_TYPE, HOP_BY_HOP,        STATUS_HEADER,
                                  TWICE,           BODY_BEFORE_START, NO_START_EMPTY,
                                  LENGTH_MISMATCH, NO_REASON,         NULL_CHUNK};
    for (size_t i = 0; i < sizeof(before) / sizeof(before[0]); i++) {
        closes = 0;
        csgi_test_response *r = lint_mode(before[i], 1, "GET");
        ck_assert_msg(csgi_test_response_code(r) == 500, "mode %d: %s", (int)before[i],
                      csgi_test_response_status(r));
        ck_assert_str_eq(csgi_test_response_body(r, NULL), "500 Internal Server Error\n");
        ck_assert_int_eq(csgi_test_response_cut(r), 0);
        ck_assert_uint_ge(lint_lines(r), 1);
        csgi_test_response_free(r);
    }
    /* After the first bytes: logged, and the server cuts as usual. */
    csgi_test_response *r = lint_mode(STREAM_TOO_LONG, 1, "GET");
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_int_eq(csgi_test_response_cut(r), 1);
    ck_assert_int_eq(csgi_test_response_log_contains(r, "lint: the body is longer"), 1);
    csgi_test_response_free(r);
}
END_TEST

static csgi_test_response *lint_environ(const char *key, const char *value, int strict)
{
    test_app state;
    csgi_app *app = mode_app(&state, BYTES), *lint = NULL;
    csgi_lint_options options = CSGI_LINT_OPTIONS_INIT;
    options.strict = strict;
    ck_assert_int_eq(csgi_lint_new(&lint, app, &options), 0);
    csgi_test_request *request = new_request("GET", "/x");
    ck_assert_int_eq(csgi_test_request_set_environ(request, key, value), 0);
    csgi_test_response *r = run(request, lint);
    ck_assert_int_eq(state.calls, strict ? 0 : 1);
    csgi_test_request_free(request);
    csgi_app_free(lint);
    return r;
}

START_TEST(lint_environ_violations)
{
    static const struct {
        const char *key, *value, *line;
    } cases[] = {
        {"REQUEST_METHOD", "", "lint: environ: REQUEST_METHOD is not a token"},
        {"REQUEST_METHOD", "G T", "lint: environ: REQUEST_METHOD is not a token"},
        {"SCRIPT_NAME", "app", "lint: environ: SCRIPT_NAME must be empty or start with /"},
        {"SCRIPT_NAME", "/app/", "lint: environ: SCRIPT_NAME must be empty or start with /"},
        {"PATH_INFO", "x", "lint: environ: PATH_INFO must be empty or start with /"},
        {"PATH_INFO", "*", "lint: environ: PATH_INFO must be empty or start with /"},
        {"SERVER_PORT", "80a", "lint: environ: SERVER_PORT is not digits"},
        {"SERVER_PORT", "", "lint: environ: SERVER_PORT is not digits"},
        {"SERVER_NAME", "", "lint: environ: SERVER_NAME is empty"},
        {"SERVER_PROTOCOL", "SPDY", "lint: environ: SERVER_PROTOCOL is not HTTP/x.y"},
        {"csgi.url_scheme", "ftp", "lint: environ: csgi.url_scheme is neither http nor https"},
        {"csgi.input", "text", "lint: environ: csgi.input is not a pointer"},
        {"csgi.errors", "text", "lint: environ: csgi.errors is not a pointer"},
        {"csgi.multithread", "0", "lint: environ: csgi.multithread is not an integer"},
        {"HTTP_CONTENT_TYPE", "text/plain", "lint: environ: HTTP_CONTENT_TYPE is set"},
        {"HTTP_CONTENT_LENGTH", "3", "lint: environ: HTTP_CONTENT_LENGTH is set"},
        {"CONTENT_LENGTH", "three", "lint: environ: CONTENT_LENGTH is not digits"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        csgi_test_response *r = lint_environ(cases[i].key, cases[i].value, 0);
        ck_assert_msg(csgi_test_response_log_contains(r, cases[i].line), "case %zu: got %s", i,
                      csgi_test_response_log_at(r, 0) ? csgi_test_response_log_at(r, 0)
                                                      : "(nothing)");
        ck_assert_int_eq(csgi_test_response_code(r), 200);
        csgi_test_response_free(r);
        r = lint_environ(cases[i].key, cases[i].value, 1);
        assert_500(r);
        csgi_test_response_free(r);
    }
}
END_TEST

/* A key removed (not just malformed) is reported missing. */
static csgi_body *remove_and_call(void *state, csgi_environ *environ,
                                  csgi_start_response *start_response)
{
    csgi_environ_remove(environ, "QUERY_STRING");
    csgi_environ_remove(environ, "csgi.input");
    return csgi_app_call(state, environ, start_response);
}

static void free_next(void *state)
{
    csgi_app_free(state);
}

static const csgi_app_type remover_type = {"remover", remove_and_call, free_next};

START_TEST(lint_missing_keys)
{
    test_app state;
    csgi_app *app = mode_app(&state, BYTES), *lint = NULL;
    ck_assert_int_eq(csgi_lint_new(&lint, app, NULL), 0);
    csgi_app *outer = new_app(&remover_type, lint);
    csgi_test_response *r = get(outer, "/x");
    ck_assert_int_eq(csgi_test_response_log_contains(r, "lint: environ: QUERY_STRING is missing"),
                     1);
    ck_assert_int_eq(csgi_test_response_log_contains(r, "lint: environ: csgi.input is missing"), 1);
    ck_assert_uint_eq(lint_lines(r), 2);
    csgi_test_response_free(r);
    csgi_app_free(outer);
}
END_TEST

START_TEST(lint_new_arguments)
{
    csgi_app *out = (csgi_app *)&out;
    ck_assert_int_eq(csgi_lint_new(&out, NULL, NULL), CSGI_EINVAL);
    ck_assert_ptr_null(out);
    test_app state;
    csgi_lint_options options = CSGI_LINT_OPTIONS_INIT;
    options.version = 99;
    /* The next application is taken even on failure (no leak under ASan). */
    ck_assert_int_eq(csgi_lint_new(&out, mode_app(&state, BYTES), &options), CSGI_EINVAL);
    /* Versions 1 to the current one are accepted, 0 (never initialised) is not. */
    options.version = 0;
    ck_assert_int_eq(csgi_lint_new(&out, mode_app(&state, BYTES), &options), CSGI_EINVAL);
    options.version = CSGI_LINT_OPTIONS_VERSION + 1;
    ck_assert_int_eq(csgi_lint_new(&out, mode_app(&state, BYTES), &options), CSGI_EINVAL);
    options.version = CSGI_LINT_OPTIONS_VERSION;
    ck_assert_int_eq(csgi_lint_new(&out, mode_app(&state, BYTES), &options), 0);
    csgi_app_free(out);
    ck_assert_int_eq(csgi_lint_new(NULL, mode_app(&state, BYTES), NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_lint_new(&out, mode_app(&state, BYTES), NULL), 0);
    ck_assert_str_eq(csgi_app_name(out), "lint");
    csgi_app_free(out);
}
END_TEST

/* ---- Lint from a deploy file --------------------------------------------------------- */

static test_app ini_state;

static int test_app_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                            const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)error;
    const char *m = csgi_conf_get(local_conf, "mode");
    memset(&ini_state, 0, sizeof(ini_state));
    ini_state.mode = m && strcmp(m, "no_content_type") == 0 ? NO_CONTENT_TYPE : BYTES;
    return csgi_app_new(out, &test_type, &ini_state);
}

static char ini_path[64];

static void remove_ini(void)
{
    if (ini_path[0])
        unlink(ini_path);
}

static csgi_app *load_ini(const char *text, const char *name, int *rc, char *message, size_t size)
{
    snprintf(ini_path, sizeof(ini_path), "/tmp/check_testing_ini_XXXXXX");
    int fd = mkstemp(ini_path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:Test#app", CSGI_FACTORY_APP, test_app_factory), 0);
    char uri[128];
    snprintf(uri, sizeof(uri), "config:%s#%s", ini_path, name);
    csgi_app *app = NULL;
    csgi_load_error error;
    *rc = csgi_loader_load_app(&app, loader, uri, &error);
    csgi_load_error_format(&error, message, size);
    csgi_loader_free(loader);
    remove_ini();
    return app;
}

START_TEST(lint_from_deploy_file)
{
    static const char ini[] = "[pipeline:main]\n"
                              "pipeline = lint app\n"
                              "\n"
                              "[pipeline:strict]\n"
                              "pipeline = strict_lint bad\n"
                              "\n"
                              "[pipeline:lenient]\n"
                              "pipeline = lint bad\n"
                              "\n"
                              "[filter:lint]\n"
                              "use = egg:csgi#lint\n"
                              "\n"
                              "[filter:strict_lint]\n"
                              "use = egg:Paste#lint\n"
                              "strict = true\n"
                              "\n"
                              "[filter:broken_lint]\n"
                              "use = egg:csgi#lint\n"
                              "strict = maybe\n"
                              "\n"
                              "[pipeline:broken]\n"
                              "pipeline = broken_lint app\n"
                              "\n"
                              "[app:app]\n"
                              "use = egg:Test#app\n"
                              "\n"
                              "[app:bad]\n"
                              "use = egg:Test#app\n"
                              "mode = no_content_type\n";
    int rc = 0;
    char message[1024];
    csgi_app *app = load_ini(ini, "main", &rc, message, sizeof(message));
    ck_assert_msg(rc == 0, "%s", message);
    ck_assert_str_eq(csgi_app_name(app), "lint");
    csgi_test_response *r = get(app, "/x");
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_uint_eq(lint_lines(r), 0);
    csgi_test_response_free(r);
    csgi_app_free(app);

    app = load_ini(ini, "strict", &rc, message, sizeof(message));
    ck_assert_msg(rc == 0, "%s", message);
    r = get(app, "/x");
    assert_500(r);
    ck_assert_int_eq(csgi_test_response_log_contains(r, "lint: no Content-Type header"), 1);
    csgi_test_response_free(r);
    csgi_app_free(app);

    app = load_ini(ini, "lenient", &rc, message, sizeof(message));
    ck_assert_msg(rc == 0, "%s", message);
    r = get(app, "/x");
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_int_eq(csgi_test_response_log_contains(r, "lint: no Content-Type header"), 1);
    csgi_test_response_free(r);
    csgi_app_free(app);

    app = load_ini(ini, "broken", &rc, message, sizeof(message));
    ck_assert_ptr_null(app);
    ck_assert_int_eq(rc, CSGI_EINVAL);
    ck_assert_msg(strstr(message, "strict") != NULL, "%s", message);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("testing");

    TCase *client = tcase_create("client");
    tcase_add_test(client, get_bytes);
    tcase_add_test(client, environ_from_full_url);
    tcase_add_test(client, environ_from_target_and_overrides);
    tcase_add_test(client, invalid_arguments);
    tcase_add_test(client, malformed_requests);
    tcase_add_test(client, options_asterisk);
    tcase_add_test(client, input_reading);
    tcase_add_test(client, repeated_header_values);
    tcase_add_test(client, log_lines);
    suite_add_tcase(suite, client);

    TCase *bodies = tcase_create("bodies");
    tcase_add_test(bodies, stream_body_closed_once);
    tcase_add_test(bodies, file_body);
    tcase_add_test(bodies, body_accessors);
    tcase_add_test(bodies, head_and_no_content);
    tcase_add_test(bodies, legacy_write);
    tcase_add_test(bodies, answers_later);
    tcase_add_test(bodies, timeout);
    tcase_add_test(bodies, body_over_the_limit);
    suite_add_tcase(suite, bodies);

    TCase *rules = tcase_create("rules");
    tcase_add_test(rules, rule_start_response_twice);
    tcase_add_test(rules, rule_exc_info);
    tcase_add_test(rules, rule_order_and_no_body);
    tcase_add_test(rules, rule_content_length);
    tcase_add_test(rules, rule_declared_length);
    tcase_add_test(rules, rule_body_fails);
    tcase_add_test(rules, rule_refused_head);
    tcase_add_test(rules, out_of_memory_every_allocation);
    suite_add_tcase(suite, rules);

    TCase *lint = tcase_create("lint");
    tcase_add_test(lint, lint_clean_apps);
    tcase_add_test(lint, lint_application_violations);
    tcase_add_test(lint, lint_strict);
    tcase_add_test(lint, lint_environ_violations);
    tcase_add_test(lint, lint_missing_keys);
    tcase_add_test(lint, lint_new_arguments);
    tcase_add_test(lint, lint_from_deploy_file);
    suite_add_tcase(suite, lint);

    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
