/*
 * The filters of docs/middleware.md, each followed by the tests that check
 * what the page says it does; the factories of its last section are
 * tests/docs/greet.h, greet.c and host.c, built into this suite and tested
 * at the end. The docs_example test checks that every C block of the page
 * is in one of these files as it is there. Public API only, plus the test
 * helpers (test_files.h, test_trickle.h).
 */
#include <csgi.h>
#include <csgi/json.h>

#include "docs/greet.h"
#include "test_files.h"
#include "test_trickle.h"

#include <check.h>
#include <event2/event.h>
#include <jansson.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* host.c's main, built under this name (tests/CMakeLists.txt). */
int host_main(int argc, char **argv);

/* ---- Running requests ------------------------------------------------------------ */

/* Run method url through app, with header name/value pairs up to a NULL
   name, then the body (NULL for none); the response must come back. */
static csgi_test_response *run(csgi_app *app, const char *method, const char *url, const char *body,
                               ...)
{
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, method, url), 0);
    va_list args;
    va_start(args, body);
    const char *name;
    while ((name = va_arg(args, const char *))) {
        const char *value = va_arg(args, const char *);
        ck_assert_int_eq(csgi_test_request_add_header(request, name, value), 0);
    }
    va_end(args);
    if (body)
        ck_assert_int_eq(csgi_test_request_set_body(request, body, strlen(body)), 0);
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    csgi_test_request_free(request);
    return response;
}

static const char *body_of(const csgi_test_response *response)
{
    return csgi_test_response_body(response, NULL);
}

static const char *header_of(const csgi_test_response *response, const char *name)
{
    return csgi_test_response_header(response, name);
}

/* A GET that must answer code; the response is freed, its body kept in a
   static buffer. */
static const char *get_code(csgi_app *app, const char *url, int code, const char *token)
{
    static char body[512];
    csgi_test_response *response =
        run(app, "GET", url, NULL, token ? "X-Auth-Token" : NULL, token, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), code);
    snprintf(body, sizeof(body), "%s", body_of(response));
    csgi_test_response_free(response);
    return body;
}

static csgi_app *app_of(csgi_handler_fn handler)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_handler_app(&app, "docs", handler, NULL, NULL), 0);
    return app;
}

static csgi_app *raw_app(const csgi_app_type *type, void *state)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, type, state), 0);
    return app;
}

/* app behind a body that arrives piece bytes at a time (unsized: of
   unknown length, as a chunked one). */
static csgi_app *trickled(csgi_app *app, size_t piece, int unsized)
{
    csgi_app *slow = NULL;
    ck_assert_int_eq(unsized ? test_trickle_unsized_new(&slow, app, piece)
                             : test_trickle_new(&slow, app, piece),
                     0);
    test_trickle_reset();
    return slow;
}

/* n bytes of 'x'. */
static char *text_of_size(size_t n)
{
    char *text = malloc(n + 1);
    ck_assert_ptr_nonnull(text);
    memset(text, 'x', n);
    text[n] = '\0';
    return text;
}

/* Calls of the handlers the tests watch: how many, and how many body bytes
   had arrived at each (the first few) and at the last one. */
static int calls;
static size_t delivered_at[4];
static size_t delivered_at_call;

static void watch(void)
{
    delivered_at_call = test_trickle_delivered();
    if (calls < 4)
        delivered_at[calls] = delivered_at_call;
    calls++;
}

/* ---- Filter handlers -------------------------------------------------------------- */

static csgi_response *auth(csgi_request *request, csgi_app *next, void *token)
{
    const char *given = csgi_request_header(request, "X-Auth-Token", NULL);
    if (!given || strcmp(given, token) != 0)
        return csgi_handler_error(request, 403, NULL);
    /* For the applications behind: which user this is. */
    if (csgi_environ_set(csgi_request_environ(request), "auth.user", "demo") != 0)
        return NULL;
    return csgi_handler_forward(request, next);
}

/* The auth filter in front of next (taken, also on failure). */
static csgi_app *auth_filter(csgi_app *next, const char *token)
{
    char *copy = strdup(token);
    if (!copy) {
        csgi_app_free(next);
        return NULL;
    }
    csgi_app *app = NULL;
    if (csgi_handler_filter(&app, "auth", auth, next, copy, free) != 0)
        return NULL; /* it freed next, and copy with free() */
    return app;
}

/* Who the auth filter let in, and how long the body was. */
static csgi_response *echo_user(csgi_request *request, void *userdata)
{
    (void)userdata;
    const char *user = csgi_environ_get(csgi_request_environ(request), "auth.user");
    const char *body;
    size_t len;
    if (csgi_request_body(request, 64 * 1024, &body, &len) != 0)
        return NULL;
    char text[128];
    snprintf(text, sizeof(text), "%s sent %zu bytes\n", user ? user : "nobody", len);
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_text(response, text, NULL) != 0)
        return NULL;
    return response;
}

static csgi_response *watched_auth(csgi_request *request, csgi_app *next, void *token)
{
    watch();
    return auth(request, next, token);
}

static csgi_response *watched_echo_user(csgi_request *request, void *userdata)
{
    watch();
    return echo_user(request, userdata);
}

START_TEST(auth_answers_or_passes_on)
{
    csgi_app *app = auth_filter(app_of(echo_user), "open-sesame");
    ck_assert_ptr_nonnull(app);
    get_code(app, "/", 403, NULL);
    get_code(app, "/", 403, "open-sesamE");
    ck_assert_str_eq(get_code(app, "/", 200, "open-sesame"), "demo sent 0 bytes\n");
    /* Dropped (an underscore), or joined (repeated): refused. */
    csgi_test_response *response = run(app, "GET", "/", NULL, "X-Auth_Token", "open-sesame", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 403);
    csgi_test_response_free(response);
    response = run(app, "GET", "/", NULL, "X-Auth-Token", "open-sesame", "X-Auth-Token",
                   "open-sesame", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 403);
    csgi_test_response_free(response);
    csgi_app_free(app); /* frees echo_user and the token */
}
END_TEST

START_TEST(auth_does_not_wait_for_the_body)
{
    /* auth runs at the head, echo_user once the body is all there. */
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_handler_filter(&app, "auth", watched_auth, app_of(watched_echo_user),
                                         (void *)"open-sesame", NULL),
                     0);
    app = trickled(app, 100, 0);
    char *body = text_of_size(3000);
    calls = 0;
    csgi_test_response *response = run(app, "POST", "/", body, "X-Auth-Token", "open-sesame", NULL);
    ck_assert_str_eq(body_of(response), "demo sent 3000 bytes\n");
    ck_assert_int_eq(calls, 2);
    ck_assert_uint_eq(delivered_at[0], 0);    /* auth */
    ck_assert_uint_eq(delivered_at[1], 3000); /* echo_user */
    csgi_test_response_free(response);

    /* Refused: answered without reading a byte of the body. */
    calls = 0;
    test_trickle_reset();
    response = run(app, "POST", "/", body, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 403);
    ck_assert_int_eq(calls, 1);
    ck_assert_uint_eq(delivered_at_call, 0);
    ck_assert_uint_eq(test_trickle_delivered(), 0);
    csgi_test_response_free(response);
    free(body);
    csgi_app_free(app);
}
END_TEST

static atomic_ullong last_request_id;

static csgi_response *add_request_id(csgi_request *request, csgi_response *response, void *id)
{
    (void)request;
    if (csgi_response_set_header(response, "X-Request-Id", id) != 0)
        return NULL;
    return response;
}

/* Gives each request an id: in the environ for the applications behind, in
   the log, and in the X-Request-Id of the response. */
static csgi_response *request_id(csgi_request *request, csgi_app *next, void *userdata)
{
    (void)userdata;
    csgi_environ *environ = csgi_request_environ(request);
    char *id = csgi_environ_alloc(environ, 32); /* this request's, freed when it ends */
    if (!id)
        return NULL;
    snprintf(id, 32, "req-%llu", atomic_fetch_add(&last_request_id, 1) + 1);
    if (csgi_environ_set(environ, "request.id", id) != 0)
        return NULL;
    csgi_environ_log_at(environ, CSGI_LOG_INFO, "request %s", id);
    return csgi_handler_forward_then(request, next, add_request_id, id);
}

/* The client gets the standard 500 page, not what the application said. */
static csgi_response *plain_500(csgi_request *request, csgi_response *response, void *state)
{
    (void)state;
    if (csgi_response_status(response) != 500)
        return response;
    return csgi_handler_error(request, 500, NULL);
}

static csgi_response *hide_errors(csgi_request *request, csgi_app *next, void *userdata)
{
    (void)userdata;
    return csgi_handler_forward_then(request, next, plain_500, NULL);
}

/* Applications of every kind for the filters to run: bytes, a file, an
   iterator (with its length declared or not, counting its closes), and a
   status chosen by the test. */
static int iterator_closes;
static int answer_status = 200;

static csgi_body *bytes_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    (void)state;
    char status[64];
    snprintf(status, sizeof(status), "%d %s", answer_status, csgi_response_reason(answer_status));
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    csgi_start_response_call(sr, status, headers, 1, NULL);
    return csgi_body_static(environ, "a stack trace", 13);
}

static csgi_body *file_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    (void)state;
    FILE *f = tmpfile();
    if (!f)
        return NULL;
    fputs("0123456789", f);
    fflush(f);
    int fd = dup(fileno(f));
    fclose(f);
    csgi_start_response_call(sr, "200 OK", NULL, 0, NULL);
    return csgi_body_file(environ, fd, 2, 5);
}

typedef struct pieces {
    int at;
} pieces;

static int pieces_next(void *state, csgi_chunk *chunk)
{
    pieces *p = state;
    if (p->at == 2)
        return 0;
    chunk->data = p->at++ ? "cd" : "ab";
    chunk->len = 2;
    return 1;
}

static void pieces_close(void *state)
{
    (void)state;
    iterator_closes++;
}

static const csgi_body_type pieces_type = {"pieces", pieces_next, pieces_close};

/* state: non-NULL to declare the length. */
static csgi_body *iterator_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    pieces *p = csgi_environ_alloc_zeroed(environ, sizeof(*p));
    if (!p)
        return NULL;
    char status[64];
    snprintf(status, sizeof(status), "%d %s", answer_status, csgi_response_reason(answer_status));
    csgi_start_response_call(sr, status, NULL, 0, NULL);
    csgi_body *body = csgi_body_new(environ, &pieces_type, p);
    if (body && state)
        csgi_body_set_length(body, 4);
    return body;
}

static const csgi_app_type bytes_type = {"bytes", bytes_call, NULL};
static const csgi_app_type file_type = {"file", file_call, NULL};
static const csgi_app_type iterator_type = {"iterator", iterator_call, NULL};

static csgi_app *filtered(csgi_filter_handler_fn fn, csgi_app *next)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_handler_filter(&app, "docs", fn, next, NULL, NULL), 0);
    return app;
}

/* The request id the environ holds. */
static csgi_response *show_request_id(csgi_request *request, void *userdata)
{
    (void)userdata;
    const char *id = csgi_environ_get(csgi_request_environ(request), "request.id");
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_text(response, id ? id : "none", NULL) != 0)
        return NULL;
    return response;
}

/* The number of a response's X-Request-Id "req-N". */
static unsigned long long id_number(const csgi_test_response *response)
{
    const char *id = header_of(response, "X-Request-Id");
    ck_assert_ptr_nonnull(id);
    ck_assert_int_eq(strncmp(id, "req-", 4), 0);
    return strtoull(id + 4, NULL, 10);
}

START_TEST(request_id_marks_every_answer)
{
    csgi_app *app = filtered(request_id, app_of(show_request_id));
    csgi_test_response *response = run(app, "GET", "/", NULL, NULL);
    const char *id = header_of(response, "X-Request-Id");
    ck_assert_str_eq(body_of(response), id);
    char line[64];
    snprintf(line, sizeof(line), "request %s", id);
    ck_assert(csgi_test_response_log_contains(response, line));
    unsigned long long first = id_number(response);
    csgi_test_response_free(response);
    response = run(app, "GET", "/", NULL, NULL);
    ck_assert_uint_eq(id_number(response), first + 1);
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* Bytes and a file keep their length; an iterator keeps a declared one. */
    static const struct {
        const csgi_app_type *type;
        void *state;
        const char *body, *length;
    } kinds[] = {
        {&bytes_type, NULL, "a stack trace", "13"},
        {&file_type, NULL, "23456", "5"},
        {&iterator_type, (void *)"declared", "abcd", "4"},
        {&iterator_type, NULL, "abcd", NULL},
    };
    for (size_t i = 0; i < 4; i++) {
        iterator_closes = 0;
        app = filtered(request_id, raw_app(kinds[i].type, kinds[i].state));
        response = run(app, "GET", "/", NULL, NULL);
        ck_assert_int_eq(csgi_test_response_code(response), 200);
        ck_assert_str_eq(body_of(response), kinds[i].body);
        ck_assert_ptr_nonnull(header_of(response, "X-Request-Id"));
        if (kinds[i].length)
            ck_assert_str_eq(header_of(response, "Content-Length"), kinds[i].length);
        else
            ck_assert_ptr_null(header_of(response, "Content-Length"));
        ck_assert_int_eq(iterator_closes, kinds[i].type == &iterator_type);
        csgi_test_response_free(response);
        csgi_app_free(app);
    }
}
END_TEST

START_TEST(hide_errors_replaces_500)
{
    csgi_app *app = filtered(hide_errors, raw_app(&bytes_type, NULL));
    answer_status = 500;
    csgi_test_response *response = run(app, "GET", "/", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 500);
    ck_assert_str_eq(body_of(response), "500 Internal Server Error\n");
    csgi_test_response_free(response);
    answer_status = 404;
    response = run(app, "GET", "/", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 404);
    ck_assert_str_eq(body_of(response), "a stack trace");
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* The replaced answer's body is closed, once. */
    app = filtered(hide_errors, raw_app(&iterator_type, NULL));
    answer_status = 500;
    iterator_closes = 0;
    response = run(app, "GET", "/", NULL, NULL);
    ck_assert_str_eq(body_of(response), "500 Internal Server Error\n");
    ck_assert_int_eq(iterator_closes, 1);
    csgi_test_response_free(response);
    csgi_app_free(app);
    answer_status = 200;
}
END_TEST

/* Refuses request bodies that are not UTF-8 before any application sees them. */
static csgi_response *utf8_only(csgi_request *request, csgi_app *next, void *userdata)
{
    (void)userdata;
    const char *body;
    size_t len;
    int rc = csgi_request_body(request, 1024 * 1024, &body, &len);
    if (rc == CSGI_ETOOBIG)
        return csgi_handler_error(request, 413, NULL);
    if (rc != 0)
        return NULL;
    if (!csgi_request_text_is_utf8(body, len))
        return csgi_handler_error(request, 400, "the body is not UTF-8");
    return csgi_handler_forward(request, next);
}

static csgi_app *utf8_filter(csgi_app *next)
{
    csgi_app *app = NULL;
    if (csgi_handler_filter(&app, "utf8-only", utf8_only, next, NULL, NULL) != 0)
        return NULL;
    csgi_handler_options options = CSGI_HANDLER_OPTIONS_INIT;
    options.body = CSGI_HANDLER_BODY_GATHER;
    if (csgi_handler_set_options(app, &options) != 0) {
        csgi_app_free(app);
        return NULL;
    }
    return app;
}

static csgi_response *watched_utf8_only(csgi_request *request, csgi_app *next, void *userdata)
{
    watch();
    return utf8_only(request, next, userdata);
}

/* What csgi_request_body() answers in a filter that does not gather. */
static int body_rc;

static csgi_response *body_reader(csgi_request *request, csgi_app *next, void *userdata)
{
    (void)userdata;
    const char *body;
    size_t len;
    body_rc = csgi_request_body(request, 1 << 20, &body, &len);
    return csgi_handler_forward(request, next);
}

/* How many bytes csgi.input still gives. */
static csgi_body *input_length_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    (void)state;
    char buf[256], text[32];
    long n, total = 0;
    while ((n = csgi_input_read(csgi_environ_input(environ), buf, sizeof(buf))) > 0)
        total += n;
    csgi_start_response_call(sr, "200 OK", NULL, 0, NULL);
    int len = snprintf(text, sizeof(text), "%ld", n < 0 ? n : total);
    return csgi_body_bytes(environ, text, (size_t)len);
}

static const csgi_app_type input_length_type = {"input-length", input_length_call, NULL};

START_TEST(utf8_filter_gathers)
{
    csgi_app *app = utf8_filter(app_of(echo_user));
    ck_assert_ptr_nonnull(app);
    csgi_test_response *response = run(app, "POST", "/", "h\xc3\xa9llo", NULL);
    ck_assert_str_eq(body_of(response), "nobody sent 6 bytes\n");
    csgi_test_response_free(response);
    response = run(app, "POST", "/", "h\xe9llo", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 400);
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* Trickled: the filter runs once, with the whole body; the handler
       behind reads the same bytes. */
    app = NULL;
    ck_assert_int_eq(
        csgi_handler_filter(&app, "utf8", watched_utf8_only, app_of(echo_user), NULL, NULL), 0);
    csgi_handler_options options = CSGI_HANDLER_OPTIONS_INIT;
    options.body = CSGI_HANDLER_BODY_GATHER;
    ck_assert_int_eq(csgi_handler_set_options(app, &options), 0);
    app = trickled(app, 50, 0);
    char *body = text_of_size(2000);
    calls = 0;
    response = run(app, "POST", "/", body, NULL);
    ck_assert_str_eq(body_of(response), "nobody sent 2000 bytes\n");
    ck_assert_int_eq(calls, 1);
    ck_assert_uint_eq(delivered_at_call, 2000);
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* A gathered body is rewound for what is behind: a raw application
       reading csgi.input gets all of it, though the filter read it. */
    app = utf8_filter(raw_app(&input_length_type, NULL));
    response = run(app, "POST", "/", "hello", NULL);
    ck_assert_str_eq(body_of(response), "5");
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* Without gathering, the filter runs first and the body is not there. */
    app = trickled(filtered(body_reader, app_of(echo_user)), 50, 0);
    response = run(app, "POST", "/", body, NULL);
    ck_assert_int_eq(body_rc, CSGI_EAGAIN);
    ck_assert_str_eq(body_of(response), "nobody sent 2000 bytes\n");
    csgi_test_response_free(response);
    free(body);
    csgi_app_free(app);
}
END_TEST

/* The request's stream: the one it replaced, and how much went through. */
typedef struct limited {
    csgi_input *inner;
    csgi_input *outer;
    unsigned long long max, seen;
} limited;

static long limited_read(void *state, void *buf, size_t len)
{
    limited *l = state;
    if (len > l->max - l->seen + 1) /* one byte more tells the body is too long */
        len = (size_t)(l->max - l->seen + 1);
    long n = csgi_input_read(l->inner, buf, len); /* bytes, 0, CSGI_EAGAIN, an error */
    if (n > 0 && (l->seen += (unsigned long long)n) > l->max)
        return CSGI_ETOOBIG;
    return n;
}

/* A reader of ours got CSGI_EAGAIN and waits: wait on the inner stream,
   and wake our reader when it has news. */
static void limited_inner_ready(csgi_input *inner, void *userdata)
{
    (void)inner;
    limited *l = userdata;
    csgi_input_notify(l->outer);
}

static void limited_wait(void *state, csgi_input *input, int waiting)
{
    limited *l = state;
    l->outer = input;
    csgi_input_on_ready(l->inner, waiting ? limited_inner_ready : NULL, l);
}

static const csgi_input_type limited_type = {"size-limit", limited_read, limited_wait, NULL};

/* Refuses bodies longer than *userdata bytes. */
static csgi_response *size_limit(csgi_request *request, csgi_app *next, void *userdata)
{
    const unsigned long long *max = userdata;
    int64_t length = csgi_request_content_length(request); /* -1: unknown (chunked) */
    if (length >= 0 && (unsigned long long)length > *max)
        return csgi_handler_error(request, 413, NULL); /* at once: nothing is read */
    csgi_environ *environ = csgi_request_environ(request);
    limited *l = csgi_environ_alloc_zeroed(environ, sizeof(*l));
    if (!l)
        return NULL;
    l->inner = csgi_environ_input(environ);
    l->max = *max;
    csgi_input *input = csgi_input_new(environ, &limited_type, l, length);
    if (!input || csgi_input_set_limit(input, *max) != 0 ||
        csgi_environ_set_input(environ, input) != 0)
        return NULL;
    return csgi_handler_forward(request, next);
}

/* A JSON body's helper limit is 16384 bytes. */
static csgi_response *json_size(csgi_request *request, void *userdata)
{
    (void)userdata;
    json_t *value;
    csgi_response *error;
    if (csgi_handler_json(request, 16384, &value, &error) != 0)
        return error;
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_text(response, "ok", NULL) != 0)
        return NULL;
    return response;
}

/* A JSON string of n bytes. */
static char *json_of_size(size_t n)
{
    char *text = text_of_size(n);
    text[0] = text[n - 1] = '"';
    return text;
}

START_TEST(size_limit_refuses)
{
    static unsigned long long max = 1024;
    char *big = json_of_size(2000), *small = json_of_size(1000);

    /* Announced too long: at once, nothing read. */
    csgi_app *limit_filter = NULL;
    ck_assert_int_eq(
        csgi_handler_filter(&limit_filter, "limit", size_limit, app_of(json_size), &max, NULL), 0);
    csgi_app *app = trickled(limit_filter, 100, 0);
    csgi_test_response *response = run(app, "POST", "/", big, "Accept", "text/plain", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 413);
    ck_assert_uint_eq(test_trickle_delivered(), 0);
    csgi_test_response_free(response);
    response = run(app, "POST", "/", small, NULL);
    ck_assert_str_eq(body_of(response), "ok");
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* Of unknown length: the stream refuses it, and the answer names its
       limit. */
    limit_filter = NULL;
    ck_assert_int_eq(
        csgi_handler_filter(&limit_filter, "limit", size_limit, app_of(json_size), &max, NULL), 0);
    app = trickled(limit_filter, 100, 1);
    response = run(app, "POST", "/", big, "Accept", "text/plain", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 413);
    ck_assert_msg(strstr(body_of(response), "the body is longer than 1024 bytes"), "%s",
                  body_of(response));
    csgi_test_response_free(response);
    response = run(app, "POST", "/", small, NULL);
    ck_assert_str_eq(body_of(response), "ok");
    csgi_test_response_free(response);
    csgi_app_free(app);
    free(big);
    free(small);
}
END_TEST

static int auth_setup(void **token, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                      const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)global_conf;
    const char *value = csgi_conf_get(local_conf, "token");
    if (value && !*value) { /* the file, line and key go with the text */
        csgi_conf_error(local_conf, "token", error, "empty token: every request would pass");
        return CSGI_EINVAL;
    }
    *token = strdup(value ? value : "open-sesame");
    *destroy = free;
    return *token ? 0 : CSGI_ENOMEM;
}

CSGI_HANDLER_FILTER_FACTORY(auth_filter_factory, auth, auth_setup)
CSGI_HANDLER_FILTER_FACTORY(utf8_filter_factory, utf8_only, NULL)
CSGI_HANDLER_APP_FACTORY(echo_user_factory, echo_user, NULL)

static csgi_loader *filters_loader(void)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(csgi_loader_register_filter(loader, "egg:docs#auth", CSGI_FACTORY_FILTER,
                                                 auth_filter_factory),
                     0);
    ck_assert_int_eq(csgi_loader_register_filter(loader, "egg:docs#utf8_only", CSGI_FACTORY_FILTER,
                                                 utf8_filter_factory),
                     0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:docs#echo_user", CSGI_FACTORY_APP, echo_user_factory),
        0);
    return loader;
}

/* A file of the test data (tests/data/docs/NAME), read whole (owned). */
static char *docs_data(const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/docs/%s", test_testdata_dir(), name);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char *text = calloc(1, 8192);
    ck_assert_ptr_nonnull(text);
    size_t len = fread(text, 1, 8191, f);
    fclose(f);
    text[len] = '\0';
    return text;
}

/* text with its first from replaced by to (owned). */
static char *replaced(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    ck_assert_ptr_nonnull(at);
    char *out = malloc(strlen(text) + strlen(to) + 1);
    ck_assert_ptr_nonnull(out);
    sprintf(out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return out;
}

/* Load the file name holding text with loader (freed); 0 or the error,
   formatted in message. */
static int load(csgi_app **out, csgi_loader *loader, const char *name, const char *text,
                char *message, size_t size)
{
    const char *path = test_write_file(name, text);
    csgi_load_error error;
    *out = NULL;
    int rc = csgi_loader_load_app(out, loader, path, &error);
    if (rc != 0)
        csgi_load_error_format(&error, message, size);
    csgi_loader_free(loader);
    return rc;
}

START_TEST(filters_from_ini)
{
    char *ini = docs_data("filters.ini");
    csgi_app *app;
    char message[1200];
    ck_assert_int_eq(load(&app, filters_loader(), "filters.ini", ini, message, sizeof(message)), 0);
    csgi_test_response *response = run(app, "POST", "/", "hello", "X-Auth-Token", "s3cret", NULL);
    ck_assert_str_eq(body_of(response), "demo sent 5 bytes\n");
    csgi_test_response_free(response);
    ck_assert_str_eq(get_code(app, "/", 403, "open-sesame"), "403 Forbidden\n");
    response = run(app, "POST", "/", "h\xe9llo", "X-Auth-Token", "s3cret", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 400);
    csgi_test_response_free(response);

    /* body_mode = gather: the UTF-8 filter has the whole body when it runs. */
    app = trickled(app, 10, 0);
    char *body = text_of_size(500);
    response = run(app, "POST", "/", body, "X-Auth-Token", "s3cret", NULL);
    ck_assert_str_eq(body_of(response), "demo sent 500 bytes\n");
    csgi_test_response_free(response);
    free(body);
    csgi_app_free(app);

    /* The setup's error, at the key's line. */
    char *empty = replaced(ini, "token = s3cret", "token =");
    ck_assert_int_ne(load(&app, filters_loader(), "filters.ini", empty, message, sizeof(message)),
                     0);
    ck_assert_msg(strstr(message, "filters.ini:10: [filter:auth] token: empty token: every "
                                  "request would pass"),
                  "%s", message);
    free(empty);
    free(ini);
}
END_TEST

/* ---- The raw protocol ------------------------------------------------------------- */

static csgi_body *filter_call(void *state, csgi_environ *environ,
                              csgi_start_response *start_response)
{
    csgi_app *next = state;
    /* ... look at the request ... */
    return csgi_app_call(next, environ, start_response);
}

static void filter_destroy(void *state)
{
    csgi_app_free(state); /* the filter owns the next application */
}

static const csgi_app_type filter_type = {"filter", filter_call, filter_destroy};

/* "Hello World", or the user the auth filter found. */
static csgi_body *hello(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    json_t *info = csgi_environ_get_json(environ, "auth.token_info");
    const char *user = info ? json_string_value(json_object_get(info, "user")) : NULL;
    (void)state;
    csgi_start_response_call(start_response, "200 OK", headers, 1, NULL);
    if (user)
        return csgi_body_bytes(environ, user, strlen(user));
    return csgi_body_static(environ, "Hello World", 11);
}

static const csgi_app_type hello_type = {"hello", hello, NULL};

START_TEST(pass_through_filter)
{
    csgi_app *app = raw_app(&filter_type, raw_app(&hello_type, NULL));
    ck_assert_str_eq(get_code(app, "/", 200, NULL), "Hello World");
    csgi_app_free(app); /* frees hello too */
}
END_TEST

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
    if (csgi_environ_set_json_new(environ, "auth.token_info", json_pack("{s:s}", "user", "demo")))
        return NULL;
    return csgi_app_call(state, environ, sr);
}

static const csgi_app_type auth_type = {"auth", auth_call, filter_destroy};

typedef struct add_header_call {
    csgi_environ *environ;
    csgi_start_response *parent; /* the start-response this filter was given */
} add_header_call;

static int add_header(const char *status, const csgi_header *headers, size_t count,
                      const char *exc_info, void *userdata)
{
    add_header_call *call = userdata;
    /* The headers may live on the caller's stack: build the longer list in
       the request's memory, which start-response copies from. */
    csgi_header *more = csgi_environ_alloc(call->environ, (count + 1) * sizeof(*more));
    if (!more)
        return CSGI_ENOMEM;
    if (count)
        memcpy(more, headers, count * sizeof(*headers));
    more[count] = (csgi_header)CSGI_HEADER("X-Filtered", "yes");
    return csgi_start_response_call(call->parent, status, more, count + 1, exc_info);
}

static csgi_body *header_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    add_header_call *call = csgi_environ_alloc(environ, sizeof(*call));
    if (!call)
        return NULL;
    call->environ = environ;
    call->parent = sr;
    csgi_start_response *mine = csgi_start_response_new(environ, sr, add_header, call);
    return mine ? csgi_app_call(state, environ, mine) : NULL;
}

static const csgi_app_type header_type = {"headers", header_call, filter_destroy};

typedef struct upper {
    csgi_body *inner; /* the body of the application behind */
    csgi_chunk rest;  /* what is left of its last piece */
    char buffer[16384];
} upper;

static int upper_next(void *state, csgi_chunk *chunk)
{
    upper *u = state;
    if (u->rest.len == 0) {
        int r = csgi_body_next(u->inner, &u->rest);
        if (r != 1)
            return r; /* 0 at the end, CSGI_EAGAIN, or an error: passed on */
    }
    /* A piece larger than the buffer is sent in several: its bytes stay
       valid until the next call on the inner body. */
    size_t n = u->rest.len < sizeof(u->buffer) ? u->rest.len : sizeof(u->buffer);
    const unsigned char *in = u->rest.data;
    for (size_t i = 0; i < n; i++)
        u->buffer[i] = (char)toupper(in[i]);
    u->rest.data = in + n;
    u->rest.len -= n;
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
    u->inner = inner;
    u->rest.len = 0;
    csgi_body *body = csgi_body_new(environ, &upper_body, u);
    /* Same number of bytes: a known length stays known. */
    if (body && csgi_body_length(inner) >= 0)
        csgi_body_set_length(body, csgi_body_length(inner));
    return body;
}

static const csgi_app_type upper_type = {"upper", upper_call, filter_destroy};

/* Wrap next in a filter of the given type: takes next, also on failure. */
static csgi_app *wrap(const csgi_app_type *type, csgi_app *next)
{
    csgi_app *app = NULL;
    if (next && csgi_app_new(&app, type, next) != 0)
        return NULL; /* csgi_app_new ran filter_destroy(next) */
    return app;
}

static csgi_app *pipeline(void)
{
    csgi_app *app = NULL;
    if (csgi_app_new(&app, &hello_type, NULL) != 0)
        return NULL;
    return wrap(&auth_type, wrap(&header_type, wrap(&upper_type, app)));
}

START_TEST(pipeline_answers)
{
    csgi_app *app = pipeline();
    ck_assert_ptr_nonnull(app);
    csgi_test_response *response = run(app, "GET", "/", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 403);
    ck_assert_str_eq(body_of(response), "Forbidden\n");
    ck_assert_str_eq(header_of(response, "Content-Type"), "text/plain");
    ck_assert_str_eq(header_of(response, "Content-Length"), "10");
    ck_assert_ptr_null(header_of(response, "X-Filtered"));
    csgi_test_response_free(response);

    response = run(app, "GET", "/", NULL, "X-Auth-Token", "open-sesame", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "DEMO");
    ck_assert_str_eq(header_of(response, "Content-Type"), "text/plain");
    ck_assert_str_eq(header_of(response, "X-Filtered"), "yes");
    ck_assert_str_eq(header_of(response, "Content-Length"), "4");
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* headers in front of auth marks its 403 too. */
    app = wrap(&header_type, wrap(&auth_type, raw_app(&hello_type, NULL)));
    response = run(app, "GET", "/", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 403);
    ck_assert_str_eq(header_of(response, "X-Filtered"), "yes");
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

/* A file of 100000 lower-case letters. */
static csgi_body *letters_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    (void)state;
    FILE *f = tmpfile();
    if (!f)
        return NULL;
    for (int i = 0; i < 100000; i++)
        fputc('a' + i % 26, f);
    fflush(f);
    int fd = dup(fileno(f));
    fclose(f);
    csgi_start_response_call(sr, "200 OK", NULL, 0, NULL);
    return csgi_body_file(environ, fd, 0, 100000);
}

static const csgi_app_type letters_type = {"letters", letters_call, NULL};

START_TEST(upper_cases_a_file)
{
    csgi_app *app = wrap(&upper_type, raw_app(&letters_type, NULL));
    csgi_test_response *response = run(app, "GET", "/", NULL, NULL);
    size_t len = 0;
    const char *body = csgi_test_response_body(response, &len);
    ck_assert_uint_eq(len, 100000);
    for (size_t i = 0; i < len; i++)
        ck_assert_int_eq(body[i], 'A' + (int)(i % 26));
    ck_assert_str_eq(header_of(response, "Content-Length"), "100000");
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

/* The page's main, compiled here but not run: it serves until a signal. */
int serve_pipeline(void);
#define main serve_pipeline
int main(void)
{
    csgi_app *app = pipeline();
    /* csgi_serve takes the pipeline and frees the whole chain when it stops. */
    return app && csgi_serve(app, "127.0.0.1", 8080) == 0 ? 0 : 1;
}
#undef main

typedef struct later {
    csgi_app *next; /* the filter's state: the application behind */
    csgi_environ *environ;
    csgi_start_response *start_response;
    csgi_body *self;  /* this filter's body */
    csgi_body *inner; /* the next application's body, once it was called */
    struct event *timer;
    int decided, refused, sent;
} later;

static void later_decide(evutil_socket_t fd, short what, void *arg)
{
    later *l = arg;
    (void)fd;
    (void)what;
    event_free(l->timer);
    l->timer = NULL;
    const char *token = csgi_environ_get(l->environ, "HTTP_X_AUTH_TOKEN");
    if (token && strcmp(token, "open-sesame") == 0) {
        l->inner = csgi_app_call(l->next, l->environ, l->start_response);
    } else {
        static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
        csgi_start_response_call(l->start_response, "403 Forbidden", headers, 1, NULL);
        l->refused = 1;
    }
    l->decided = 1;
    csgi_body_resume(l->self); /* the server calls later_next again */
}

static int later_next(void *state, csgi_chunk *chunk)
{
    later *l = state;
    if (!l->decided)
        return CSGI_EAGAIN;
    if (l->refused) {
        if (l->sent)
            return 0;
        l->sent = 1;
        chunk->data = "Forbidden\n";
        chunk->len = 10;
        return 1;
    }
    if (!l->inner)
        return CSGI_ESTATE; /* the application behind failed: the server answers 500 */
    return csgi_body_next(l->inner, chunk);
}

static void later_close(void *state)
{
    later *l = state;
    if (l->timer) /* the client left before the decision */
        event_free(l->timer);
    csgi_body_close(l->inner); /* accepts NULL */
}

static const csgi_body_type later_body = {"later", later_next, later_close};

static csgi_body *later_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    struct event_base *base = csgi_environ_event_base(environ);
    later *l = csgi_environ_alloc(environ, sizeof(*l));
    if (!base || !l)
        return NULL;
    memset(l, 0, sizeof(*l));
    l->next = state;
    l->environ = environ;
    l->start_response = sr;
    l->self = csgi_body_new(environ, &later_body, l);
    if (!l->self)
        return NULL;
    /* Stands for asking an authentication service: decide in 10 ms. */
    struct timeval delay = {0, 10000};
    l->timer = evtimer_new(base, later_decide, l);
    if (!l->timer || evtimer_add(l->timer, &delay) != 0)
        return NULL; /* the body is closed when the request ends: later_close frees the timer */
    return l->self;
}

static const csgi_app_type later_type = {"later", later_call, filter_destroy};

START_TEST(later_decides)
{
    csgi_app *app =
        wrap(&later_type, wrap(&header_type, wrap(&upper_type, raw_app(&hello_type, NULL))));
    ck_assert_ptr_nonnull(app);
    csgi_test_response *response = run(app, "GET", "/", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 403);
    ck_assert_str_eq(body_of(response), "Forbidden\n");
    csgi_test_response_free(response);
    response = run(app, "GET", "/", NULL, "X-Auth-Token", "open-sesame", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "HELLO WORLD");
    ck_assert_str_eq(header_of(response, "X-Filtered"), "yes");
    csgi_test_response_free(response);

    /* A filter handler in front waits for the late answer itself. */
    app = filtered(request_id, app);
    response = run(app, "GET", "/", NULL, "X-Auth-Token", "open-sesame", NULL);
    ck_assert_str_eq(body_of(response), "HELLO WORLD");
    unsigned long long first = id_number(response);
    ck_assert_ptr_null(csgi_test_response_header_value(response, "X-Request-Id", 1));
    csgi_test_response_free(response);
    response = run(app, "GET", "/", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 403);
    ck_assert_uint_eq(id_number(response), first + 1);
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

/* ---- Factories: tests/docs/greet.c and host.c --------------------------------------- */

/* greet.c's factories, registered under the references greet.ini writes
   (the loader would find them in greet.so). */
static csgi_loader *greet_loader(void)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "greet:hello", CSGI_FACTORY_APP, hello_factory), 0);
    ck_assert_int_eq(
        csgi_loader_register_filter(loader, "greet:auth", CSGI_FACTORY_FILTER, auth_factory), 0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:greet#strategy", CSGI_FACTORY_COMPOSITE,
                                              strategy_factory),
                     0);
    return loader;
}

START_TEST(greet_ini_serves)
{
    char *ini = docs_data("greet.ini");
    csgi_app *app;
    char message[1200];
    ck_assert_int_eq(load(&app, greet_loader(), "greet.ini", ini, message, sizeof(message)), 0);
    get_code(app, "/", 403, NULL);
    csgi_test_response *response = run(app, "GET", "/", NULL, "X-Auth-Token", "s3cret", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(header_of(response, "Content-Type"), "text/html");
    ck_assert_str_eq(header_of(response, "Cache-Control"), "max-age=60");
    ck_assert_str_eq(body_of(response), "Hello, Secret World of WebOb !");
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* auth_strategy=noauth: hello alone. */
    csgi_loader *loader = greet_loader();
    ck_assert_int_eq(csgi_loader_set_global(loader, "auth_strategy", "noauth"), 0);
    ck_assert_int_eq(load(&app, loader, "greet.ini", ini, message, sizeof(message)), 0);
    ck_assert_str_eq(get_code(app, "/", 200, NULL), "Hello, Secret World of WebOb !");
    csgi_app_free(app);
    free(ini);
}
END_TEST

START_TEST(greet_errors)
{
    char *ini = docs_data("greet.ini");
    static const char *const cases[][3] = {
        {"max_age = 60", "max_age = 99999999999",
         "greet.ini:17: [app:hello] max_age: 99999999999 is more than a year"},
        {"token = s3cret",
         "token =", "greet.ini:13: [filter:auth] token: empty token: every request would pass"},
        {"auth_strategy = keystone", "auth_strategy = basic",
         "greet.ini:5: [composite:main] auth_strategy 'basic' names no key of this section"},
        {"max_age = 60", "max_age = sixty",
         "greet.ini:19: [app:hello] max_age: not an integer: 'sixty'"},
    };
    for (size_t i = 0; i < 4; i++) {
        char *text = replaced(ini, cases[i][0], cases[i][1]);
        csgi_app *app;
        char message[1200];
        ck_assert_int_ne(load(&app, greet_loader(), "greet.ini", text, message, sizeof(message)),
                         0);
        ck_assert_ptr_null(app);
        ck_assert_msg(strstr(message, cases[i][2]), "%s", message);
        free(text);
    }
    free(ini);
}
END_TEST

START_TEST(host_ini_serves)
{
    /* What host.c registers. */
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:Greet#hello", CSGI_FACTORY_APP, hello_factory), 0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:Greet#strategy", CSGI_FACTORY_COMPOSITE,
                                              strategy_factory),
                     0);
    ck_assert_int_eq(csgi_loader_register_filter(loader, "greet.middleware:auth_factory",
                                                 CSGI_FACTORY_FILTER, auth_factory),
                     0);
    char *ini = docs_data("host.ini");
    csgi_app *app;
    char message[1200];
    ck_assert_int_eq(load(&app, loader, "host.ini", ini, message, sizeof(message)), 0);
    ck_assert_str_eq(get_code(app, "/", 200, NULL), "Hello World");
    get_code(app, "/v1/x", 403, NULL);
    ck_assert_str_eq(get_code(app, "/v1/x", 200, "s3cret"), "Hello World");
    csgi_app_free(app);

    /* host.c itself: a file it cannot serve is an error, with its text. */
    char *bad = replaced(ini, "port = 8080", "port = 99999");
    char *argv[] = {(char *)"host", (char *)test_write_file("host.ini", bad), NULL};
    ck_assert_int_eq(host_main(2, argv), 1);
    char *missing[] = {(char *)"host", (char *)"/nonexistent/host.ini", NULL};
    ck_assert_int_eq(host_main(2, missing), 1);
    free(bad);
    free(ini);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("docs_middleware");
    TCase *handlers = tcase_create("filter_handlers");
    tcase_add_test(handlers, auth_answers_or_passes_on);
    tcase_add_test(handlers, auth_does_not_wait_for_the_body);
    tcase_add_test(handlers, request_id_marks_every_answer);
    tcase_add_test(handlers, hide_errors_replaces_500);
    tcase_add_test(handlers, utf8_filter_gathers);
    tcase_add_test(handlers, size_limit_refuses);
    tcase_add_test(handlers, filters_from_ini);
    suite_add_tcase(suite, handlers);
    TCase *raw = tcase_create("raw");
    tcase_add_test(raw, pass_through_filter);
    tcase_add_test(raw, pipeline_answers);
    tcase_add_test(raw, upper_cases_a_file);
    tcase_add_test(raw, later_decides);
    suite_add_tcase(suite, raw);
    TCase *factories = tcase_create("factories");
    tcase_add_test(factories, greet_ini_serves);
    tcase_add_test(factories, greet_errors);
    tcase_add_test(factories, host_ini_serves);
    suite_add_tcase(suite, factories);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
