/*
 * Handlers (csgi/handler.h): applications and filters written as "request
 * in, response out", run through the public test client, a loaded INI
 * pipeline and, for a body that arrives late, a real server.
 */
#include "engine_harness.h"
#include "test_deploy.h"

#include <csgi.h>
#include <csgi/json.h>

#include "test_alloc.h"

#include <check.h>
#include <jansson.h>

#include <ctype.h>
#include <event2/event.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *body_of(const csgi_test_response *response)
{
    return csgi_test_response_body(response, NULL);
}

/* ---- Application handlers ----------------------------------------------------- */

static csgi_response *hello(csgi_request *request, void *userdata)
{
    (void)userdata;
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_text(response, "Hello World\n", "utf-8") != 0)
        return NULL;
    return response;
}

/* ?code=N: that error, with a detail that needs escaping in HTML. */
static csgi_response *fail_with(csgi_request *request, void *userdata)
{
    (void)userdata;
    const csgi_params *query;
    if (csgi_request_query(request, &query, NULL) != 0)
        return NULL;
    const char *code = csgi_params_get(query, "code", NULL);
    return csgi_handler_error(request, code ? atoi(code) : 500, "no <such> thing");
}

static csgi_response *no_response(csgi_request *request, void *userdata)
{
    (void)request;
    (void)userdata;
    return NULL;
}

static atomic_int echo_calls;

/* The JSON body back, as 201. */
static csgi_response *echo_json(csgi_request *request, void *userdata)
{
    (void)userdata;
    atomic_fetch_add(&echo_calls, 1);
    json_t *value;
    csgi_response *error;
    int rc = csgi_handler_json(request, 64, &value, &error);
    if (rc != 0)
        return error;
    /* The value is the request's; the response takes a reference. */
    csgi_response *response = csgi_handler_response(request);
    if (response && (csgi_response_set_status(response, 201) != 0 ||
                     csgi_response_set_json(response, json_incref(value)) != 0))
        response = NULL;
    return response;
}

static csgi_app *handler_app(csgi_handler_fn fn)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_handler_app(&app, "test", fn, NULL, NULL), 0);
    return app;
}

START_TEST(test_app_handler)
{
    csgi_app *app = handler_app(hello);
    ck_assert_str_eq(csgi_app_name(app), "test");
    csgi_test_response *response = test_client_run(app, "GET", "/", NULL, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "Hello World\n");
    ck_assert_str_eq(csgi_test_response_header(response, "Content-Type"),
                     "text/plain; charset=utf-8");
    ck_assert_str_eq(csgi_test_response_header(response, "Content-Length"), "12");
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_error_handler)
{
    csgi_app *app = handler_app(fail_with);
    csgi_test_response *response =
        test_client_run(app, "GET", "/?code=404", "Accept", "application/json", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 404);
    json_error_t error;
    json_t *value = json_loads(body_of(response), 0, &error);
    ck_assert_ptr_nonnull(value);
    ck_assert_int_eq(json_integer_value(json_object_get(value, "code")), 404);
    ck_assert_str_eq(json_string_value(json_object_get(value, "title")), "Not Found");
    ck_assert_str_eq(json_string_value(json_object_get(value, "message")), "no <such> thing");
    json_decref(value);
    csgi_test_response_free(response);

    response = test_client_run(app, "GET", "/?code=403", "Accept", "text/html", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 403);
    ck_assert_ptr_nonnull(strstr(body_of(response), "no &lt;such&gt; thing"));
    csgi_test_response_free(response);

    /* Not an error status: the handler returns NULL, the client gets 500. */
    response = test_client_run(app, "GET", "/?code=299", NULL, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 500);
    ck_assert(csgi_test_response_log_contains(response, "the handler failed"));
    csgi_test_response_free(response);
    csgi_app_free(app);

    app = handler_app(no_response);
    response = test_client_run(app, "GET", "/", NULL, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 500);
    ck_assert(csgi_test_response_log_contains(response, "test: the handler failed"));
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_json_handler)
{
    csgi_app *app = handler_app(echo_json);
    csgi_test_response *response =
        test_client_run(app, "POST", "/", "Content-Type", "application/json", "{\"a\": [1, 2]}");
    ck_assert_int_eq(csgi_test_response_code(response), 201);
    ck_assert_str_eq(csgi_test_response_header(response, "Content-Type"), "application/json");
    json_t *value = json_loads(body_of(response), 0, NULL);
    ck_assert_ptr_nonnull(value);
    ck_assert_int_eq(json_array_size(json_object_get(value, "a")), 2);
    json_decref(value);
    csgi_test_response_free(response);

    /* Bad JSON: 400 naming where. */
    response = test_client_run(app, "POST", "/", "Accept", "text/plain", "{\"a\": [1,\n 2,]}");
    ck_assert_int_eq(csgi_test_response_code(response), 400);
    ck_assert_msg(strstr(body_of(response), "invalid JSON at line 2, column") != NULL, "%s",
                  body_of(response));
    csgi_test_response_free(response);

    /* Too long: 413. */
    char big[100];
    memset(big, ' ', sizeof(big) - 1);
    big[0] = '1';
    big[sizeof(big) - 1] = '\0';
    response = test_client_run(app, "POST", "/", NULL, NULL, big);
    ck_assert_int_eq(csgi_test_response_code(response), 413);
    ck_assert_ptr_nonnull(strstr(body_of(response), "longer than 64 bytes"));
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_bad_arguments)
{
    csgi_app *app = (csgi_app *)&app;
    ck_assert_int_eq(csgi_handler_app(&app, "x", NULL, NULL, NULL), CSGI_EINVAL);
    ck_assert_ptr_null(app);
    ck_assert_int_eq(csgi_handler_app(NULL, "x", hello, NULL, NULL), CSGI_EINVAL);
    /* The filter takes next, also when it fails. */
    csgi_app *next = handler_app(hello);
    ck_assert_int_eq(csgi_handler_filter(&app, "x", NULL, next, NULL, NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_handler_filter(&app, "x", NULL, NULL, NULL, NULL), CSGI_EINVAL);
    ck_assert_ptr_null(csgi_handler_response(NULL));
    ck_assert_ptr_null(csgi_handler_error(NULL, 404, NULL));
    /* What only a running handler can return. */
    ck_assert_ptr_null(csgi_handler_forward_then(NULL, next, NULL, NULL));
    ck_assert_ptr_null(csgi_handler_read_body(NULL, NULL, NULL));
    /* Options: only on a handler's application, a known version and body. */
    csgi_handler_options options = CSGI_HANDLER_OPTIONS_INIT;
    ck_assert_int_eq(csgi_handler_set_options(NULL, &options), CSGI_EINVAL);
    app = handler_app(hello);
    ck_assert_int_eq(csgi_handler_set_options(app, NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_handler_set_options(app, &options), 0);
    options.version = 99;
    ck_assert_int_eq(csgi_handler_set_options(app, &options), CSGI_EINVAL);
    options.version = CSGI_HANDLER_OPTIONS_VERSION;
    options.body = (csgi_handler_body)7;
    ck_assert_int_eq(csgi_handler_set_options(app, &options), CSGI_EINVAL);
    csgi_response *answer = NULL;
    ck_assert_int_eq(csgi_response_new(&answer, NULL), 0);
    csgi_app *raw = NULL;
    ck_assert_int_eq(csgi_response_app(&raw, answer), 0);
    options.body = CSGI_HANDLER_BODY_STREAM;
    ck_assert_int_eq(csgi_handler_set_options(raw, &options), CSGI_EINVAL);
    csgi_app_free(raw);
    csgi_app_free(app);
}
END_TEST

/* ---- Filter handlers ----------------------------------------------------------- */

/* The talk's auth filter: 403 unless X-Auth-Token is the configured token. */
static csgi_response *auth(csgi_request *request, csgi_app *next, void *token)
{
    const char *given = csgi_request_header(request, "X-Auth-Token", NULL);
    if (!given || strcmp(given, token) != 0)
        return csgi_handler_error(request, 403, NULL);
    return csgi_handler_forward(request, next);
}

/* Marks the answer of the application behind: a header, and 202 with
   ?accept. */
static csgi_response *mark_answer(csgi_request *request, csgi_response *response, void *state)
{
    (void)state;
    const csgi_params *query;
    if (csgi_request_query(request, &query, NULL) == 0 && csgi_params_get(query, "accept", NULL))
        csgi_response_set_status(response, 202);
    if (csgi_response_add_header(response, "X-Marked", "yes") != 0)
        return NULL;
    return response;
}

/* Runs next, then marks its answer. */
static csgi_response *mark(csgi_request *request, csgi_app *next, void *userdata)
{
    (void)userdata;
    return csgi_handler_forward_then(request, next, mark_answer, NULL);
}

static csgi_app *filter(csgi_filter_handler_fn fn, csgi_app *next, void *userdata,
                        csgi_destroy_fn destroy)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_handler_filter(&app, "filter", fn, next, userdata, destroy), 0);
    return app;
}

START_TEST(test_auth_filter)
{
    csgi_app *app = filter(auth, handler_app(hello), strdup("open-sesame"), free);
    csgi_test_response *response = test_client_run(app, "GET", "/", NULL, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 403);
    csgi_test_response_free(response);
    response = test_client_run(app, "GET", "/", "X-Auth-Token", "open-sesamE", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 403);
    csgi_test_response_free(response);
    response = test_client_run(app, "GET", "/", "X-Auth-Token", "open-sesame", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "Hello World\n");
    csgi_test_response_free(response);
    csgi_app_free(app); /* frees hello and the token */
}
END_TEST

/* Raw applications for the filter to run. */
static int closes;

static csgi_body *bytes_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    (void)state;
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/x-bytes"),
                                          CSGI_HEADER("Content-Length", "5")};
    csgi_start_response_call(sr, "200 OK", headers, 2, NULL);
    return csgi_body_static(environ, "bytes", 5);
}

typedef struct pieces {
    int lazy;    /* start the response from the first next() */
    int stall;   /* answer CSGI_EAGAIN for ever */
    int declare; /* declare the length (4) */
    int at;
    csgi_start_response *start_response;
} pieces;

static int pieces_next(void *state, csgi_chunk *chunk)
{
    pieces *p = state;
    static const char *const parts[] = {"ab", "cd"};
    if (p->stall)
        return CSGI_EAGAIN;
    if (p->lazy && p->at == 0)
        csgi_start_response_call(p->start_response, "404 Not Here", NULL, 0, NULL);
    if (p->at == 2)
        return 0;
    chunk->data = parts[p->at];
    chunk->len = 2;
    p->at++;
    return 1;
}

static void pieces_close(void *state)
{
    (void)state;
    closes++;
}

static const csgi_body_type pieces_type = {"pieces", pieces_next, pieces_close};

static csgi_body *pieces_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    const pieces *how = state;
    pieces *p = csgi_environ_alloc(environ, sizeof(*p));
    if (!p)
        return NULL;
    *p = *how;
    p->start_response = sr;
    if (!p->lazy && !p->stall)
        csgi_start_response_call(sr, "200 OK", NULL, 0, NULL);
    csgi_body *body = csgi_body_new(environ, &pieces_type, p);
    if (body && p->declare)
        csgi_body_set_length(body, 4);
    return body;
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

static csgi_body *outside_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    (void)state;
    csgi_request *request;
    if (csgi_request_from_environ(&request, environ) != 0)
        return NULL;
    csgi_response *response = csgi_handler_forward_then(request, state, mark_answer, NULL);
    csgi_start_response_call(sr, "200 OK", NULL, 0, NULL);
    const char *name = response ? "a response" : "NULL";
    return csgi_body_static(environ, name, strlen(name));
}

/* Answers later: its body waits for a timer on the request's loop, then
   starts the response from its first piece. */
typedef struct timed {
    pieces pieces; /* first: pieces_next's state */
    csgi_body *body;
} timed;

static void timed_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    timed *t = arg;
    t->pieces.stall = 0;
    csgi_body_resume(t->body);
}

static csgi_body *timed_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    (void)state;
    timed *t = csgi_environ_alloc(environ, sizeof(*t));
    if (!t)
        return NULL;
    *t = (timed){.pieces = {.lazy = 1, .stall = 1, .start_response = sr}};
    t->body = csgi_body_new(environ, &pieces_type, t);
    struct timeval delay = {0, 20000};
    if (t->body && event_base_once(csgi_environ_event_base(environ), -1, EV_TIMEOUT, timed_fire, t,
                                   &delay) != 0)
        return NULL;
    return t->body;
}

static const pieces eager = {0, 0, 0, 0, NULL}, lazy = {1, 0, 0, 0, NULL},
                    stalled = {0, 1, 0, 0, NULL}, declared = {0, 0, 1, 0, NULL};
static const csgi_app_type bytes_type = {"bytes", bytes_call, NULL};
static const csgi_app_type eager_type = {"eager", pieces_call, NULL};
static const csgi_app_type file_type = {"file", file_call, NULL};
static const csgi_app_type timed_type = {"timed", timed_call, NULL};
static const csgi_app_type outside_type = {"outside", outside_call, NULL};

static csgi_app *raw_app(const csgi_app_type *type, const void *state)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, type, (void *)state), 0);
    return app;
}

START_TEST(test_forward_then)
{
    /* Bytes: status, headers and the length pass through, marked. */
    csgi_app *app = filter(mark, raw_app(&bytes_type, NULL), NULL, NULL);
    csgi_test_response *response = test_client_run(app, "GET", "/?accept=1", NULL, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 202);
    ck_assert_str_eq(body_of(response), "bytes");
    ck_assert_str_eq(csgi_test_response_header(response, "Content-Type"), "text/x-bytes");
    ck_assert_str_eq(csgi_test_response_header(response, "Content-Length"), "5");
    ck_assert_str_eq(csgi_test_response_header(response, "X-Marked"), "yes");
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* An iterator, started before it returns: relayed, closed once. */
    closes = 0;
    app = filter(mark, raw_app(&eager_type, &eager), NULL, NULL);
    response = test_client_run(app, "GET", "/", NULL, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "abcd");
    ck_assert_str_eq(csgi_test_response_header(response, "X-Marked"), "yes");
    ck_assert_ptr_null(csgi_test_response_header(response, "Content-Length"));
    ck_assert_int_eq(closes, 1);
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* An iterator with a declared length keeps it through the filter. */
    app = filter(mark, raw_app(&eager_type, &declared), NULL, NULL);
    response = test_client_run(app, "GET", "/", NULL, NULL, NULL);
    ck_assert_str_eq(body_of(response), "abcd");
    ck_assert_str_eq(csgi_test_response_header(response, "Content-Length"), "4");
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* Started from its first piece: that piece is pulled, then replayed. */
    closes = 0;
    app = filter(mark, raw_app(&eager_type, &lazy), NULL, NULL);
    response = test_client_run(app, "GET", "/", NULL, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 404);
    ck_assert_str_eq(csgi_test_response_status(response), "404 Not Here");
    ck_assert_str_eq(body_of(response), "abcd");
    ck_assert_int_eq(closes, 1);
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* Answers later, from a timer: the filter waits, and marks it once. */
    closes = 0;
    app = filter(mark, raw_app(&timed_type, NULL), NULL, NULL);
    response = test_client_run(app, "GET", "/?accept=1", NULL, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 202);
    ck_assert_str_eq(csgi_test_response_header(response, "X-Marked"), "yes");
    ck_assert_ptr_null(csgi_test_response_header_value(response, "X-Marked", 1));
    ck_assert_str_eq(body_of(response), "abcd");
    ck_assert_int_eq(closes, 1);
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* Never starts: the request times out, and its body is closed. */
    closes = 0;
    app = filter(mark, raw_app(&eager_type, &stalled), NULL, NULL);
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "/"), 0);
    csgi_test_request_set_timeout(request, 100);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), CSGI_ETIMEDOUT);
    csgi_test_request_free(request);
    ck_assert_int_eq(closes, 1);
    csgi_app_free(app);

    /* A file keeps its range. */
    app = filter(mark, raw_app(&file_type, NULL), NULL, NULL);
    response = test_client_run(app, "GET", "/", NULL, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "23456");
    ck_assert_str_eq(csgi_test_response_header(response, "Content-Length"), "5");
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* A handler behind the filter (adapters nest). */
    app = filter(mark, filter(auth, handler_app(hello), strdup("t"), free), NULL, NULL);
    response = test_client_run(app, "GET", "/", "X-Auth-Token", "t", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "Hello World\n");
    ck_assert_str_eq(csgi_test_response_header(response, "X-Marked"), "yes");
    csgi_test_response_free(response);
    response = test_client_run(app, "GET", "/", NULL, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 403);
    ck_assert_str_eq(csgi_test_response_header(response, "X-Marked"), "yes");
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* Outside a handler there is nobody to run it. */
    csgi_app *inner = raw_app(&bytes_type, NULL);
    app = raw_app(&outside_type, inner);
    response = test_client_run(app, "GET", "/", NULL, NULL, NULL);
    ck_assert_str_eq(body_of(response), "NULL");
    csgi_test_response_free(response);
    csgi_app_free(app);
    csgi_app_free(inner);
}
END_TEST

/* ---- Negotiation and conditions on the request ----------------------------------- */

static csgi_response *negotiate(csgi_request *request, void *userdata)
{
    (void)userdata;
    static const char *const types[] = {"text/html", "application/json"};
    static const char *const languages[] = {"en", "fr"};
    static const char *const codings[] = {"gzip", "identity"};
    time_t since = 0;
    int ims = csgi_request_if_modified_since(request, &since);
    csgi_etag etag;
    csgi_etag_parse("\"v2\"", 4, &etag);
    csgi_range range = {0, 0};
    int r = csgi_request_range(request, 100, &range);
    char text[256];
    snprintf(text, sizeof(text), "type=%d lang=%d coding=%d ims=%s:%lld inm=%d range=%s:%lld-%lld",
             csgi_request_accept_best(request, types, 2),
             csgi_request_accept_language_best(request, languages, 2),
             csgi_request_accept_encoding_best(request, codings, 2), csgi_err_name(ims),
             (long long)since, csgi_request_if_none_match(request, &etag), csgi_err_name(r),
             (long long)range.first, (long long)range.last);
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_text(response, text, NULL) != 0)
        return NULL;
    return response;
}

START_TEST(test_request_negotiation)
{
    csgi_app *app = handler_app(negotiate);
    csgi_test_response *response = test_client_run(app, "GET", "/", NULL, NULL, NULL);
    ck_assert_str_eq(body_of(response), "type=0 lang=0 coding=0 ims=CSGI_ENOTFOUND:0 "
                                        "inm=-7 range=CSGI_ENOTFOUND:0-0");
    csgi_test_response_free(response);

    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "/"), 0);
    ck_assert_int_eq(
        csgi_test_request_add_header(request, "Accept", "text/html;q=0.5, application/json"), 0);
    ck_assert_int_eq(
        csgi_test_request_add_header(request, "Accept-Language", "fr-CA, fr;q=0.9, en;q=0.8"), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Accept-Encoding", "identity;q=0, gzip"),
                     0);
    ck_assert_int_eq(
        csgi_test_request_add_header(request, "If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"),
        0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "If-None-Match", "\"v1\", W/\"v2\""), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Range", "bytes=-10"), 0);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    ck_assert_str_eq(body_of(response), "type=1 lang=1 coding=0 ims=CSGI_OK:784111777 inm=1 "
                                        "range=CSGI_OK:90-99");
    csgi_test_response_free(response);
    csgi_test_request_free(request);

    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "/"), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Accept", "image/png"), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "If-Modified-Since", "yesterday"), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "If-None-Match", "\"v1\""), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Range", "bytes=200-"), 0);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    ck_assert_str_eq(body_of(response), "type=-1 lang=0 coding=0 ims=CSGI_EPARSE:0 inm=0 "
                                        "range=CSGI_ERANGE:0-0");
    csgi_test_response_free(response);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

/* ---- INI factories ------------------------------------------------------------------ */

static int auth_setup(void **userdata, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                      const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)global_conf;
    const char *token = csgi_conf_get(local_conf, "token");
    if (token && !*token) {
        snprintf(error->key, sizeof(error->key), "token");
        snprintf(error->text, sizeof(error->text), "must not be empty");
        return CSGI_EINVAL;
    }
    *userdata = strdup(token ? token : "open-sesame");
    *destroy = free;
    return *userdata ? 0 : CSGI_ENOMEM;
}

CSGI_HANDLER_FILTER_FACTORY(auth_filter_factory, auth, auth_setup)
CSGI_HANDLER_APP_FACTORY(hello_app_factory, hello, NULL)

static char ini_path[256];

static void write_ini(const char *text)
{
    snprintf(ini_path, sizeof(ini_path), "/tmp/csgi-handler-XXXXXX");
    int fd = mkstemp(ini_path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static csgi_loader *test_loader(void)
{
    csgi_loader *loader;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(csgi_loader_register_filter(loader, "egg:test#auth", CSGI_FACTORY_FILTER,
                                                 auth_filter_factory),
                     0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:test#hello", CSGI_FACTORY_APP, hello_app_factory), 0);
    return loader;
}

START_TEST(test_factories)
{
    write_ini("[pipeline:main]\npipeline = auth hello\n\n[filter:auth]\nuse = egg:test#auth\n"
              "token = sesame\n\n[app:hello]\nuse = egg:test#hello\n");
    csgi_loader *loader = test_loader();
    csgi_app *app = NULL;
    csgi_load_error error;
    ck_assert_int_eq(csgi_loader_load_app(&app, loader, ini_path, &error), 0);
    csgi_test_response *response = test_client_run(app, "GET", "/", "X-Auth-Token", "sesame", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "Hello World\n");
    csgi_test_response_free(response);
    response = test_client_run(app, "GET", "/", "X-Auth-Token", "open-sesame", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 403);
    csgi_test_response_free(response);
    csgi_app_free(app);
    csgi_loader_free(loader);
    unlink(ini_path);

    /* The setup's error, with the file and line. */
    write_ini("[pipeline:main]\npipeline = auth hello\n\n[filter:auth]\nuse = egg:test#auth\n"
              "token =\n\n[app:hello]\nuse = egg:test#hello\n");
    loader = test_loader();
    app = NULL;
    ck_assert_int_ne(csgi_loader_load_app(&app, loader, ini_path, &error), 0);
    ck_assert_ptr_null(app);
    char text[1024];
    csgi_load_error_format(&error, text, sizeof(text));
    ck_assert_msg(strstr(text, "[filter:auth] token: must not be empty") != NULL, "%s", text);
    ck_assert_msg(strstr(text, ini_path) != NULL, "%s", text);
    csgi_loader_free(loader);
    unlink(ini_path);

    /* The handler's body keys: a bad value names the file, line and key. */
    write_ini("[app:main]\nuse = egg:test#hello\nbody_mode = sideways\n");
    loader = test_loader();
    ck_assert_int_ne(csgi_loader_load_app(&app, loader, ini_path, &error), 0);
    csgi_load_error_format(&error, text, sizeof(text));
    ck_assert_msg(strstr(text, ":3: [app:main] body_mode: must be gather, stream or default") !=
                      NULL,
                  "%s", text);
    csgi_loader_free(loader);
    unlink(ini_path);
    write_ini("[app:main]\nuse = egg:test#hello\nclient_max_body_size = -5\n");
    loader = test_loader();
    ck_assert_int_ne(csgi_loader_load_app(&app, loader, ini_path, &error), 0);
    csgi_load_error_format(&error, text, sizeof(text));
    ck_assert_msg(strstr(text, ":3: [app:main] client_max_body_size: must be a size in bytes") !=
                      NULL,
                  "%s", text);
    csgi_loader_free(loader);
    unlink(ini_path);

    /* A good max_body is what the handler refuses past. */
    write_ini("[app:main]\nuse = egg:test#hello\nclient_max_body_size = 10\nbody_mode = gather\n");
    loader = test_loader();
    ck_assert_int_eq(csgi_loader_load_app(&app, loader, ini_path, &error), 0);
    response = test_client_run(app, "POST", "/", "Accept", "text/plain", "eleven byte");
    ck_assert_int_eq(csgi_test_response_code(response), 413);
    ck_assert_msg(strstr(body_of(response), "longer than 10 bytes") != NULL, "%s",
                  body_of(response));
    csgi_test_response_free(response);
    response = test_client_run(app, "POST", "/", NULL, NULL, "ten bytes!");
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    csgi_test_response_free(response);
    csgi_app_free(app);
    csgi_loader_free(loader);
    unlink(ini_path);
}
END_TEST

/* ---- A body that arrives late, in a real server ----------------------------------------- */

START_TEST(test_late_body)
{
    app_server served;
    app_server_start(&served, handler_app(echo_json), NULL);
    int port = served.port;

    for (int attempt = 0; attempt < 2; attempt++) {
        /* The second time the client leaves while the handler waits. */
        atomic_store(&echo_calls, 0);
        int fd = client_connect(port);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(client_send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\n"
                                             "Content-Type: application/json\r\n"
                                             "Content-Length: 12\r\n\r\n{\"late\": "),
                         0);
        usleep(200 * 1000);
        /* The handler waits for the whole body: it has not run yet. */
        ck_assert_int_eq(atomic_load(&echo_calls), 0);
        if (attempt == 1) {
            close(fd);
            usleep(100 * 1000);
            ck_assert_int_eq(atomic_load(&echo_calls), 0);
            break;
        }
        ck_assert_int_eq(client_send_str(fd, "1}\n"), 0);
        test_response response;
        ck_assert_int_eq(client_response(fd, &response, 0, 5000), 0);
        ck_assert_int_eq(response.status, 201);
        ck_assert_str_eq(response.body, "{\"late\":1}");
        response_free(&response);
        close(fd);
        /* Called once, when the whole body was there. */
        ck_assert_int_eq(atomic_load(&echo_calls), 1);
    }
    app_server_stop(&served);
}
END_TEST

/* ---- Waiting for an event of the handler's own -------------------------------------- */

/* A filter that decides after a timer, as auth_token decides after the
   identity service answers: ?ms=N waits N ms, then forwards when
   X-Auth-Token is "ok" and answers 401 otherwise; ?early decides before
   the handler returns; ?then marks the answer of the application behind. */
typedef struct gate {
    csgi_handler_later *later;
    struct event *timer;
    csgi_app *next;
} gate;

static atomic_int gate_cancels;

static csgi_response *gate_decide(csgi_request *request, void *state)
{
    gate *g = state;
    if (g->timer)
        event_free(g->timer);
    g->timer = NULL;
    const char *token = csgi_request_header(request, "X-Auth-Token", NULL);
    if (!token || strcmp(token, "ok") != 0)
        return csgi_handler_error(request, 401, "the token is not ok");
    const csgi_params *query;
    if (csgi_request_query(request, &query, NULL) == 0 && csgi_params_get(query, "then", NULL))
        return csgi_handler_forward_then(request, g->next, mark_answer, NULL);
    return csgi_handler_forward(request, g->next);
}

static void gate_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gate *g = arg;
    csgi_handler_resume(g->later, gate_decide, g);
}

static void gate_cancel(void *state)
{
    gate *g = state;
    event_free(g->timer);
    g->timer = NULL;
    atomic_fetch_add(&gate_cancels, 1);
}

static csgi_response *gate_filter(csgi_request *request, csgi_app *next, void *userdata)
{
    (void)userdata;
    csgi_environ *environ = csgi_request_environ(request);
    gate *g = csgi_environ_alloc_zeroed(environ, sizeof(*g));
    if (!g)
        return NULL;
    g->next = next;
    csgi_response *waiting = csgi_handler_wait(request, &g->later, gate_cancel, g);
    /* Only one wait per handler call. */
    ck_assert_ptr_null(csgi_handler_wait(request, &g->later, gate_cancel, g));
    const csgi_params *query;
    ck_assert_int_eq(csgi_request_query(request, &query, NULL), 0);
    if (csgi_params_get(query, "early", NULL)) {
        csgi_handler_resume(g->later, gate_decide, g);
        return waiting;
    }
    const char *ms = csgi_params_get(query, "ms", NULL);
    long delay = ms ? atol(ms) : 10;
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    g->timer = event_new(csgi_environ_event_base(environ), -1, 0, gate_fire, g);
    if (!g->timer || event_add(g->timer, &tv) != 0)
        return NULL;
    return waiting;
}

START_TEST(test_wait_resume)
{
    csgi_app *app = filter(gate_filter, handler_app(hello), NULL, NULL);
    const char *urls[] = {"/?ms=20", "/?early", "/?ms=5&then", "/?early&then"};
    for (size_t i = 0; i < COUNT(urls); i++) {
        csgi_test_response *response =
            test_client_run(app, "GET", urls[i], "X-Auth-Token", "ok", NULL);
        ck_assert_int_eq(csgi_test_response_code(response), 200);
        ck_assert_str_eq(body_of(response), "Hello World\n");
        const char *marked = csgi_test_response_header(response, "X-Marked");
        ck_assert_int_eq(marked != NULL, strstr(urls[i], "then") != NULL);
        csgi_test_response_free(response);
        response = test_client_run(app, "GET", urls[i], "X-Auth-Token", "forged", NULL);
        ck_assert_int_eq(csgi_test_response_code(response), 401);
        ck_assert_ptr_nonnull(strstr(body_of(response), "the token is not ok"));
        csgi_test_response_free(response);
    }
    /* Outside a handler there is nothing to wait for. */
    csgi_handler_later *later = NULL;
    ck_assert_ptr_null(csgi_handler_wait(NULL, &later, NULL, NULL));
    csgi_handler_resume(NULL, gate_decide, NULL);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_wait_client_leaves)
{
    app_server served;
    app_server_start(&served, filter(gate_filter, handler_app(hello), NULL, NULL), NULL);
    atomic_store(&gate_cancels, 0);
    /* Answered after the wait, over a socket. */
    int fd = client_connect(served.port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(client_send_str(fd, "GET /?ms=30 HTTP/1.1\r\nHost: t\r\n"
                                         "X-Auth-Token: ok\r\n\r\n"),
                     0);
    test_response response;
    ck_assert_int_eq(client_response(fd, &response, 0, 5000), 0);
    ck_assert_int_eq(response.status, 200);
    ck_assert_str_eq(response.body, "Hello World\n");
    response_free(&response);
    close(fd);
    /* The client leaves while the filter waits: the wait is cancelled
       (the timer deleted), and the server goes on serving. */
    fd = client_connect(served.port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(client_send_str(fd, "GET /?ms=400 HTTP/1.1\r\nHost: t\r\n"
                                         "X-Auth-Token: ok\r\n\r\n"),
                     0);
    usleep(50 * 1000);
    close(fd);
    for (int i = 0; i < 100 && atomic_load(&gate_cancels) == 0; i++)
        usleep(10 * 1000);
    ck_assert_int_eq(atomic_load(&gate_cancels), 1);
    fd = client_connect(served.port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(client_send_str(fd, "GET /?ms=1 HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    ck_assert_int_eq(client_response(fd, &response, 0, 5000), 0);
    ck_assert_int_eq(response.status, 401);
    response_free(&response);
    close(fd);
    app_server_stop(&served);
    ck_assert_int_eq(atomic_load(&gate_cancels), 1);
}
END_TEST

/* ---- A handler that changes its mind ------------------------------------------------- */

static atomic_int changed_cancels;

static void changed_cancel(void *state)
{
    (void)state;
    atomic_fetch_add(&changed_cancels, 1);
}

static int ignore_data(void *state, csgi_request *request, const void *data, size_t len)
{
    (void)state;
    (void)request;
    (void)data;
    (void)len;
    return 0;
}

static csgi_response *never_end(void *state, csgi_request *request, int result)
{
    (void)state;
    (void)result;
    ck_abort_msg("a body reader the handler did not return ran");
    return csgi_handler_error(request, 500, NULL);
}

static const csgi_body_reader_type ignoring_reader = {"ignoring", ignore_data, never_end};

/* Asks for a feature that outlives the handler's call (a forward-then, a
   wait, a body reader), then returns something else: what it returns
   counts, and the feature asked for never runs. */
static csgi_response *changes_mind(csgi_request *request, csgi_app *next, void *userdata)
{
    (void)userdata;
    const csgi_params *query;
    ck_assert_int_eq(csgi_request_query(request, &query, NULL), 0);
    if (csgi_params_get(query, "then", NULL)) {
        ck_assert_ptr_nonnull(csgi_handler_forward_then(request, next, mark_answer, NULL));
        return csgi_handler_error(request, 409, "changed its mind");
    }
    if (csgi_params_get(query, "wait", NULL)) {
        csgi_handler_later *later = NULL;
        ck_assert_ptr_nonnull(csgi_handler_wait(request, &later, changed_cancel, NULL));
        ck_assert_ptr_nonnull(later);
        return csgi_handler_forward(request, next);
    }
    if (csgi_params_get(query, "read", NULL)) {
        ck_assert_ptr_nonnull(csgi_handler_read_body(request, &ignoring_reader, NULL));
        /* One reader per handler call. */
        ck_assert_ptr_null(csgi_handler_read_body(request, &ignoring_reader, NULL));
        return csgi_handler_forward_then(request, next, mark_answer, NULL);
    }
    return csgi_handler_forward(request, next);
}

START_TEST(test_changed_mind)
{
    csgi_app *app = filter(changes_mind, handler_app(hello), NULL, NULL);
    atomic_store(&changed_cancels, 0);
    csgi_test_response *response = test_client_run(app, "GET", "/?then", NULL, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 409);
    ck_assert_ptr_nonnull(strstr(body_of(response), "changed its mind"));
    ck_assert_ptr_null(csgi_test_response_header(response, "X-Marked"));
    csgi_test_response_free(response);
    static const char *const forwarded[] = {"/?wait", "/?read", "/"};
    for (size_t i = 0; i < COUNT(forwarded); i++) {
        response = test_client_run(app, "POST", forwarded[i], NULL, NULL, "a body");
        ck_assert_int_eq(csgi_test_response_code(response), 200);
        ck_assert_str_eq(body_of(response), "Hello World\n");
        ck_assert_int_eq(csgi_test_response_header(response, "X-Marked") != NULL,
                         strcmp(forwarded[i], "/?read") == 0);
        csgi_test_response_free(response);
    }
    /* The wait it gave up was never waited on: nothing to cancel. */
    ck_assert_int_eq(atomic_load(&changed_cancels), 0);
    csgi_app_free(app);
}
END_TEST

/* The same over a socket, several requests on one connection: each is
   answered as its handler finally said. */
START_TEST(test_changed_mind_over_sockets)
{
    app_server served;
    app_server_start(&served, filter(changes_mind, handler_app(hello), NULL, NULL), NULL);
    int fd = client_connect(served.port);
    ck_assert_int_ge(fd, 0);
    static const char *const paths[] = {"/?then", "/?wait", "/?read", "/"};
    static const int codes[] = {409, 200, 200, 200};
    for (size_t i = 0; i < COUNT(paths); i++) {
        char head[256];
        snprintf(head, sizeof(head), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", paths[i]);
        ck_assert_int_eq(client_send_str(fd, head), 0);
        test_response response;
        ck_assert_int_eq(client_response(fd, &response, 0, 5000), 0);
        ck_assert_msg(response.status == codes[i], "%s: %d", paths[i], response.status);
        if (codes[i] == 200)
            ck_assert_str_eq(response.body, "Hello World\n");
        response_free(&response);
    }
    close(fd);
    app_server_stop(&served);
}
END_TEST

/* ---- A filter that replaces csgi.input --------------------------------------------- */

/* The stream replaced and ours: the state of the test filters' streams
   begins with it, so that they share the waiting. */
typedef struct replaced_input {
    csgi_input *inner;
    csgi_input *outer;
} replaced_input;

/* Upper-cases the request body for the application behind. */
typedef replaced_input upper_input;

static long upper_read(void *state, void *buf, size_t len)
{
    upper_input *u = state;
    long n = csgi_input_read(u->inner, buf, len);
    for (long i = 0; i < n; i++)
        ((char *)buf)[i] = (char)toupper(((unsigned char *)buf)[i]);
    return n;
}

static void replaced_inner_ready(csgi_input *inner, void *userdata)
{
    (void)inner;
    replaced_input *r = userdata;
    csgi_input_notify(r->outer);
}

static void replaced_wait(void *state, csgi_input *input, int waiting)
{
    replaced_input *r = state;
    r->outer = input;
    csgi_input_on_ready(r->inner, waiting ? replaced_inner_ready : NULL, r);
}

static const csgi_input_type upper_input_type = {"upper", upper_read, replaced_wait, NULL};

static csgi_body *upper_input_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    upper_input *u = csgi_environ_alloc(environ, sizeof(*u));
    if (!u)
        return NULL;
    u->inner = csgi_environ_input(environ);
    const char *length = csgi_environ_get(environ, "CONTENT_LENGTH");
    u->outer = csgi_input_new(environ, &upper_input_type, u, length ? atoll(length) : -1);
    if (!u->outer || csgi_environ_set_input(environ, u->outer) != 0)
        return NULL;
    return csgi_app_call(state, environ, sr);
}

static void app_free(void *state)
{
    csgi_app_free(state);
}

static const csgi_app_type upper_input_app = {"upper-input", upper_input_call, app_free};

/* The body back as text, after the csgi.input checks. */
static csgi_response *echo_text(csgi_request *request, void *userdata)
{
    (void)userdata;
    atomic_fetch_add(&echo_calls, 1);
    csgi_environ *environ = csgi_request_environ(request);
    /* The key and the accessor give the replacement. */
    if (csgi_environ_get_pointer(environ, "csgi.input") != csgi_environ_input(environ))
        return NULL;
    const char *body;
    size_t len;
    int rc = csgi_request_body(request, 16, &body, &len);
    if (rc == CSGI_ETOOBIG)
        return csgi_handler_error(request, 413, NULL);
    if (rc != 0)
        return NULL;
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_body(response, body, len) != 0)
        return NULL;
    return response;
}

static csgi_app *upper_echo(void)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &upper_input_app, handler_app(echo_text)), 0);
    return app;
}

START_TEST(test_replaced_input)
{
    csgi_app *app = upper_echo();
    csgi_test_response *response = test_client_run(app, "POST", "/", NULL, NULL, "hello world");
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "HELLO WORLD");
    csgi_test_response_free(response);
    /* The declared length lets read_all refuse at once. */
    response = test_client_run(app, "POST", "/", NULL, NULL, "a body longer than sixteen bytes");
    ck_assert_int_eq(csgi_test_response_code(response), 413);
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* In a real server, the body in two parts: the handler waits on the
       replacement, which waits on the server's stream. */
    app_server served;
    app_server_start(&served, upper_echo(), NULL);
    int port = served.port;
    atomic_store(&echo_calls, 0);
    int fd = client_connect(port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(client_send_str(fd, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n"
                                         "\r\nhello"),
                     0);
    usleep(200 * 1000);
    ck_assert_int_eq(client_send_str(fd, " world"), 0);
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "HELLO WORLD");
    response_free(&r);
    close(fd);
    ck_assert_int_eq(atomic_load(&echo_calls), 1);
    app_server_stop(&served);

    /* Arguments. */
    csgi_test_response_free(NULL);
    ck_assert_ptr_null(csgi_input_new(NULL, &upper_input_type, NULL, -1));
    ck_assert_int_eq(csgi_environ_set_input(NULL, NULL), CSGI_EINVAL);
}
END_TEST

/* ---- A size limit in a replaced csgi.input ---------------------------------------- */

/* Refuses a body longer than max bytes (CSGI_ETOOBIG), declaring the limit
   with csgi_input_set_limit() when declare is set. */
typedef struct limit_filter {
    csgi_app *next;
    uint64_t max;
    int declare;
} limit_filter;

typedef struct limit_input {
    replaced_input replaced; /* first: replaced_wait's state */
    uint64_t max, seen;
} limit_input;

static long limit_read(void *state, void *buf, size_t len)
{
    limit_input *l = state;
    /* One byte more than the limit is enough to tell. */
    if (len > l->max - l->seen + 1)
        len = (size_t)(l->max - l->seen + 1);
    long n = csgi_input_read(l->replaced.inner, buf, len);
    if (n > 0 && (l->seen += (uint64_t)n) > l->max)
        return CSGI_ETOOBIG;
    return n;
}

static const csgi_input_type limit_input_type = {"limit", limit_read, replaced_wait, NULL};

static csgi_body *limit_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    limit_filter *filter = state;
    limit_input *l = csgi_environ_alloc(environ, sizeof(*l));
    if (!l)
        return NULL;
    l->replaced.inner = csgi_environ_input(environ);
    l->max = filter->max;
    l->seen = 0;
    const char *length = csgi_environ_get(environ, "CONTENT_LENGTH");
    csgi_input *outer = csgi_input_new(environ, &limit_input_type, l, length ? atoll(length) : -1);
    l->replaced.outer = outer;
    if (!outer || (filter->declare && csgi_input_set_limit(outer, filter->max) != 0) ||
        csgi_environ_set_input(environ, outer) != 0)
        return NULL;
    return csgi_app_call(filter->next, environ, sr);
}

static void limit_free(void *state)
{
    limit_filter *filter = state;
    csgi_app_free(filter->next);
    free(filter);
}

static const csgi_app_type limit_app_type = {"limit", limit_call, limit_free};

/* The JSON body's size as text, the helper's own limit 16384 bytes. */
static csgi_response *json_size(csgi_request *request, void *userdata)
{
    (void)userdata;
    json_t *value;
    csgi_response *error;
    int rc = csgi_handler_json(request, 16384, &value, &error);
    if (rc != 0)
        return error;
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_text(response, "ok", "utf-8") != 0)
        return NULL;
    return response;
}

/* The form, or its error's text as a 413 / 400. */
static csgi_response *form_text(csgi_request *request, void *userdata)
{
    (void)userdata;
    const csgi_params *form;
    csgi_request_error error;
    int rc = csgi_request_form(request, &form, &error);
    if (rc != 0)
        return csgi_handler_error(request, rc == CSGI_ETOOBIG ? 413 : 400, error.text);
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_text(response, "ok", "utf-8") != 0)
        return NULL;
    return response;
}

static csgi_app *limited(csgi_handler_fn fn, uint64_t max, int declare)
{
    limit_filter *filter = malloc(sizeof(*filter));
    ck_assert_ptr_nonnull(filter);
    filter->next = handler_app(fn);
    filter->max = max;
    filter->declare = declare;
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &limit_app_type, filter), 0);
    return app;
}

/* A JSON array of n bytes. */
static char *json_of_size(size_t n)
{
    char *text = malloc(n + 1);
    ck_assert_ptr_nonnull(text);
    memset(text, ' ', n);
    text[0] = '[';
    text[n - 1] = ']';
    text[n] = '\0';
    return text;
}

/* Run a POST of body (Content-Type type, NULL for none) through app, which
   this frees: 413 with text in the answer. */
static void expect_413(csgi_app *app, const char *type, const char *body, const char *text)
{
    csgi_test_response *response =
        test_client_run(app, "POST", "/", type ? "Content-Type" : NULL, type, body);
    ck_assert_int_eq(csgi_test_response_code(response), 413);
    ck_assert_msg(strstr(body_of(response), text) != NULL, "%s", body_of(response));
    csgi_test_response_free(response);
    csgi_app_free(app);
}

START_TEST(test_replaced_input_limit)
{
    char *big = json_of_size(2000), *small = json_of_size(1000);

    /* The stream's declared limit is the number the 413 names, not the
       helper's own 16384; under it the body goes through. */
    expect_413(limited(json_size, 1024, 1), NULL, big, "the body is longer than 1024 bytes");
    csgi_app *app = limited(json_size, 1024, 1);
    csgi_test_response *response = test_client_run(app, "POST", "/", NULL, NULL, small);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* Without a declared limit: no number, and not the helper's. */
    expect_413(limited(json_size, 1024, 0), NULL, big, "the body is longer than the server allows");

    /* The helper's own limit still names itself. */
    char *huge = json_of_size(20000);
    expect_413(limited(json_size, 100000, 1), NULL, huge, "the body is longer than 16384 bytes");
    free(huge);

    /* A URL-encoded form: the stream's limit, not max_body's 10 MiB; a
       multipart one, which streams the body, the same. */
    const char *urlencoded = "application/x-www-form-urlencoded";
    expect_413(limited(form_text, 8, 1), urlencoded, "a=1&b=2&c=3", "longer than 8 bytes");
    expect_413(limited(form_text, 8, 0), urlencoded, "a=1&b=2&c=3",
               "longer than the server allows");
    expect_413(limited(form_text, 8, 1), "multipart/form-data; boundary=b",
               "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b--\r\n",
               "longer than 8 bytes");

    /* Over a real socket, a chunked body that arrives in two parts. */
    app_server served;
    app_server_start(&served, limited(json_size, 1024, 1), NULL);
    int fd = client_connect(served.port);
    ck_assert_int_ge(fd, 0);
    char head[128];
    snprintf(head, sizeof(head),
             "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n", 1000);
    ck_assert_int_eq(client_send_str(fd, head), 0);
    ck_assert_int_eq(client_send(fd, big, 1000), 0);
    usleep(100 * 1000);
    snprintf(head, sizeof(head), "\r\n%x\r\n", 1000);
    ck_assert_int_eq(client_send_str(fd, head), 0);
    ck_assert_int_eq(client_send(fd, big + 1000, 1000), 0);
    ck_assert_int_eq(client_send_str(fd, "\r\n0\r\n\r\n"), 0);
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 413);
    ck_assert_msg(strstr(r.body, "the body is longer than 1024 bytes") != NULL, "%s", r.body);
    response_free(&r);
    close(fd);
    app_server_stop(&served);

    /* And with a Content-Length, no limit declared. */
    app_server_start(&served, limited(json_size, 1024, 0), NULL);
    fd = client_connect(served.port);
    ck_assert_int_ge(fd, 0);
    snprintf(head, sizeof(head), "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n");
    ck_assert_int_eq(client_send_str(fd, head), 0);
    ck_assert_int_eq(client_send(fd, big, 2000), 0);
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 413);
    ck_assert_msg(strstr(r.body, "the body is longer than the server allows") != NULL, "%s",
                  r.body);
    response_free(&r);
    close(fd);
    app_server_stop(&served);

    /* Arguments. */
    ck_assert_int_eq(csgi_input_set_limit(NULL, 1), CSGI_EINVAL);
    ck_assert_int_eq(csgi_input_limit(NULL), -1);

    free(big);
    free(small);
}
END_TEST

/* ---- Out of memory ------------------------------------------------------------------------ */

/* Make and run the pipeline with each allocation failing in turn: every
   attempt ends in an error or a response, and nothing leaks. */
START_TEST(test_out_of_memory)
{
    ck_assert_int_eq(test_alloc_install(), 0);
    int succeeded = 0;
    for (long budget = 0; budget < 500 && !succeeded; budget++) {
        test_alloc_fail_after(budget);
        csgi_app *next = NULL, *app = NULL;
        csgi_test_response *response = NULL;
        int rc = csgi_handler_app(&next, "hello", hello, NULL, NULL);
        if (rc == 0)
            rc = csgi_handler_filter(&app, "mark", mark, next, NULL, NULL);
        csgi_test_request *request = NULL;
        if (rc == 0)
            rc = csgi_test_request_new(&request, "GET", "/?accept=1");
        if (rc == 0)
            rc = csgi_test_request_run(&response, request, app);
        ck_assert_msg(rc == 0 || rc == CSGI_ENOMEM, "budget %ld: %s", budget, csgi_err_name(rc));
        if (rc == 0) {
            int code = csgi_test_response_code(response);
            ck_assert_msg(code == 202 || code == 500 || code == 502, "budget %ld: %d", budget,
                          code);
            if (code == 202) {
                ck_assert_str_eq(body_of(response), "Hello World\n");
                succeeded = test_alloc_count() < budget;
            }
        }
        test_alloc_fail_never();
        csgi_test_response_free(response);
        csgi_test_request_free(request);
        csgi_app_free(app);
    }
    ck_assert_int_eq(test_alloc_restore(), 0);
    ck_assert_int_eq(succeeded, 1);
}
END_TEST

static Suite *handler_suite(void)
{
    Suite *suite = suite_create("handler");
    TCase *tc = tcase_create("handler");
    tcase_add_test(tc, test_app_handler);
    tcase_add_test(tc, test_error_handler);
    tcase_add_test(tc, test_json_handler);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_auth_filter);
    tcase_add_test(tc, test_forward_then);
    tcase_add_test(tc, test_request_negotiation);
    tcase_add_test(tc, test_factories);
    tcase_add_test(tc, test_late_body);
    tcase_add_test(tc, test_wait_resume);
    tcase_add_test(tc, test_wait_client_leaves);
    tcase_add_test(tc, test_changed_mind);
    tcase_add_test(tc, test_changed_mind_over_sockets);
    tcase_add_test(tc, test_replaced_input);
    tcase_add_test(tc, test_replaced_input_limit);
    tcase_add_test(tc, test_out_of_memory);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(handler_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
