/* The test client's request bodies (csgi/testing.h): a body that arrives
   with the head, late in pieces, after "100 Continue", or chunked, as the
   engine delivers each to csgi.input. An application that waits for its
   body gets the same answer every way; one that assumes the body is there
   is caught once the body comes late. */
#include <csgi.h>
#include <csgi/testing.h>

#include "test_alloc.h"

#include <check.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const csgi_header text_plain[] = {CSGI_HEADER("Content-Type", "text/plain")};

static csgi_app *new_app(const csgi_app_type *type, void *state)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, type, state), 0);
    return app;
}

static csgi_test_request *new_request(const char *method, const char *url)
{
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, method, url), 0);
    return request;
}

static csgi_test_response *run(csgi_test_request *request, csgi_app *app)
{
    csgi_test_response *response = NULL;
    int rc = csgi_test_request_run(&response, request, app);
    ck_assert_msg(rc == 0, "run: %s", csgi_err_name(rc));
    return response;
}

/* How a body is sent. */
typedef struct sending {
    csgi_test_delivery delivery;
    size_t piece_size;
    int chunked;
    int expect; /* Expect: 100-continue */
} sending;

static csgi_test_request *upload_request(const char *body, const sending *how)
{
    csgi_test_request *request = new_request("POST", "/upload");
    ck_assert_int_eq(csgi_test_request_set_body(request, body, strlen(body)), 0);
    ck_assert_int_eq(csgi_test_request_set_body_delivery(request, how->delivery, how->piece_size),
                     0);
    csgi_test_request_set_chunked(request, how->chunked);
    if (how->expect)
        ck_assert_int_eq(csgi_test_request_add_header(request, "Expect", "100-continue"), 0);
    return request;
}

/* ---- An application that waits for its body ------------------------------------- */

typedef struct app_counts {
    int calls;
    int waits; /* reads that answered CSGI_EAGAIN */
} app_counts;

typedef struct echo {
    csgi_environ *environ;
    csgi_start_response *start_response;
    csgi_body *body;
    app_counts *counts;
    char text[256];
    int ready;
    int sent;
} echo;

/* Read the whole body; on CSGI_EAGAIN wait for more. 1 once answered. */
static int echo_try(echo *e);

static void echo_ready(csgi_input *input, void *userdata)
{
    echo *e = userdata;
    (void)input;
    if (echo_try(e))
        csgi_body_resume(e->body);
}

static int echo_try(echo *e)
{
    csgi_input *input = csgi_environ_input(e->environ);
    const char *data = NULL;
    size_t len = 0;
    int rc = csgi_input_read_all(input, 4096, &data, &len);
    if (rc == CSGI_EAGAIN) {
        e->counts->waits++;
        csgi_input_on_ready(input, echo_ready, e);
        return 0;
    }
    if (rc == 0)
        snprintf(e->text, sizeof(e->text), "%zu bytes [%.*s]", len, (int)len, data);
    else
        snprintf(e->text, sizeof(e->text), "read failed: %s", csgi_err_name(rc));
    csgi_start_response_call(e->start_response, "200 OK", text_plain, 1, NULL);
    e->ready = 1;
    return 1;
}

static int echo_next(void *state, csgi_chunk *chunk)
{
    echo *e = state;
    if (!e->ready)
        return CSGI_EAGAIN;
    if (e->sent)
        return 0;
    e->sent = 1;
    chunk->data = e->text;
    chunk->len = strlen(e->text);
    return 1;
}

static const csgi_body_type echo_body = {"echo", echo_next, NULL};

static csgi_body *echo_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    echo *e = csgi_environ_alloc(environ, sizeof(*e));
    if (!e)
        return NULL;
    memset(e, 0, sizeof(*e));
    e->environ = environ;
    e->start_response = start_response;
    e->counts = state;
    e->counts->calls++;
    const char *length = csgi_environ_get(environ, "CONTENT_LENGTH");
    csgi_environ_log(environ, "CONTENT_LENGTH=%s", length ? length : "(absent)");
    if (!(e->body = csgi_body_new(environ, &echo_body, e)))
        return NULL;
    echo_try(e);
    return e->body;
}

static const csgi_app_type echo_type = {"echo", echo_call, NULL};

/* ---- An application that assumes the body is there ------------------------------ */

/* Reads once and takes CSGI_EAGAIN for a broken request: right only when
   the whole body came with the head. */
static csgi_body *naive_call(void *state, csgi_environ *environ,
                             csgi_start_response *start_response)
{
    (void)state;
    char buf[256];
    long n = csgi_input_read(csgi_environ_input(environ), buf, sizeof(buf));
    if (n < 0) {
        csgi_start_response_call(start_response, "400 Bad Request", text_plain, 1, NULL);
        return csgi_body_static(environ, "no body\n", 8);
    }
    char *text = csgi_environ_alloc(environ, 300);
    if (!text)
        return NULL;
    int len = snprintf(text, 300, "%ld bytes [%.*s]", n, (int)n, buf);
    csgi_start_response_call(start_response, "200 OK", text_plain, 1, NULL);
    return csgi_body_bytes(environ, text, (size_t)len);
}

static const csgi_app_type naive_type = {"naive", naive_call, NULL};

/* ---- Tests ------------------------------------------------------------------------ */

#define BODY "hello, body!" /* 12 bytes */

/* The same answer whichever way the body comes; the number of waits shows
   how it came: one per piece that arrived late (the last-chunk of a
   chunked body is a piece of its own), none when it came with the head. */
START_TEST(waiting_app_same_answer_every_way)
{
    static const struct {
        sending how;
        int waits;
        int continued;
        const char *length;
    } cases[] = {
        {{CSGI_TEST_DELIVERY_AT_ONCE, 0, 0, 0}, 0, 0, "12"},
        {{CSGI_TEST_DELIVERY_LATE, 0, 0, 0}, 1, 0, "12"},
        {{CSGI_TEST_DELIVERY_LATE, 1, 0, 0}, 12, 0, "12"},
        {{CSGI_TEST_DELIVERY_LATE, 5, 0, 0}, 3, 0, "12"},
        {{CSGI_TEST_DELIVERY_LATE, 100, 0, 0}, 1, 0, "12"},
        {{CSGI_TEST_DELIVERY_AT_ONCE, 0, 0, 1}, 1, 1, "12"},
        {{CSGI_TEST_DELIVERY_LATE, 1, 0, 1}, 12, 1, "12"},
        {{CSGI_TEST_DELIVERY_AT_ONCE, 0, 1, 0}, 0, 0, "(absent)"},
        {{CSGI_TEST_DELIVERY_AT_ONCE, 5, 1, 0}, 0, 0, "(absent)"},
        {{CSGI_TEST_DELIVERY_LATE, 0, 1, 0}, 2, 0, "(absent)"},
        {{CSGI_TEST_DELIVERY_LATE, 1, 1, 0}, 13, 0, "(absent)"},
        {{CSGI_TEST_DELIVERY_LATE, 5, 1, 0}, 4, 0, "(absent)"},
        {{CSGI_TEST_DELIVERY_LATE, 5, 1, 1}, 4, 1, "(absent)"},
        {{CSGI_TEST_DELIVERY_AT_ONCE, 5, 1, 1}, 1, 1, "(absent)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        app_counts counts = {0, 0};
        csgi_app *app = new_app(&echo_type, &counts);
        csgi_test_request *request = upload_request(BODY, &cases[i].how);
        csgi_test_response *r = run(request, app);
        ck_assert_msg(strcmp(csgi_test_response_body(r, NULL), "12 bytes [" BODY "]") == 0,
                      "case %zu: %s", i, csgi_test_response_body(r, NULL));
        ck_assert_int_eq(csgi_test_response_code(r), 200);
        ck_assert_msg(counts.waits == cases[i].waits, "case %zu: %d waits", i, counts.waits);
        ck_assert_int_eq(counts.calls, 1);
        ck_assert_msg(csgi_test_response_continued(r) == cases[i].continued, "case %zu", i);
        char line[64];
        snprintf(line, sizeof(line), "CONTENT_LENGTH=%s", cases[i].length);
        ck_assert_msg(csgi_test_response_log_contains(r, line), "case %zu: %s", i,
                      csgi_test_response_log_at(r, 0));
        /* The request runs again the same way. */
        csgi_test_response_free(r);
        r = run(request, app);
        ck_assert_str_eq(csgi_test_response_body(r, NULL), "12 bytes [" BODY "]");
        ck_assert_int_eq(counts.waits, 2 * cases[i].waits);
        csgi_test_response_free(r);
        csgi_test_request_free(request);
        csgi_app_free(app);
    }
}
END_TEST

/* Why late delivery matters: the naive application passes while the body
   comes with the head, and is caught as soon as it comes late, as it
   would be on the real server. */
START_TEST(naive_app_caught_when_body_is_late)
{
    csgi_app *app = new_app(&naive_type, NULL);
    static const sending at_once = {CSGI_TEST_DELIVERY_AT_ONCE, 0, 0, 0};
    csgi_test_request *request = upload_request(BODY, &at_once);
    csgi_test_response *r = run(request, app);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "12 bytes [" BODY "]");
    csgi_test_response_free(r);
    csgi_test_request_free(request);

    static const sending late[] = {
        {CSGI_TEST_DELIVERY_LATE, 0, 0, 0},
        {CSGI_TEST_DELIVERY_LATE, 1, 0, 0},
        {CSGI_TEST_DELIVERY_AT_ONCE, 0, 0, 1},
        {CSGI_TEST_DELIVERY_LATE, 0, 1, 0},
    };
    for (size_t i = 0; i < sizeof(late) / sizeof(late[0]); i++) {
        request = upload_request(BODY, &late[i]);
        r = run(request, app);
        ck_assert_msg(csgi_test_response_code(r) == 400, "case %zu: %d", i,
                      csgi_test_response_code(r));
        ck_assert_str_eq(csgi_test_response_body(r, NULL), "no body\n");
        csgi_test_response_free(r);
        csgi_test_request_free(request);
    }
    csgi_app_free(app);
}
END_TEST

/* The same through the request helpers: a handler that parses a form. It
   runs once, when the body has all arrived, however it was sent. */
static csgi_response *form_handler(csgi_request *request, void *userdata)
{
    int *calls = userdata;
    ++*calls;
    const csgi_params *form = NULL;
    int rc = csgi_request_form(request, &form, NULL);
    if (rc != 0)
        return csgi_handler_error(request, 400, csgi_err_name(rc));
    csgi_response *response = csgi_handler_response(request);
    char text[128];
    snprintf(text, sizeof(text), "name=%s size=%s", csgi_params_get(form, "name", NULL),
             csgi_params_get(form, "size", NULL));
    if (response && csgi_response_set_text(response, text, NULL) != 0)
        return NULL;
    return response;
}

START_TEST(form_handler_every_way)
{
    static const sending ways[] = {
        {CSGI_TEST_DELIVERY_AT_ONCE, 0, 0, 0}, {CSGI_TEST_DELIVERY_LATE, 1, 0, 0},
        {CSGI_TEST_DELIVERY_LATE, 4, 1, 0},    {CSGI_TEST_DELIVERY_LATE, 3, 0, 1},
        {CSGI_TEST_DELIVERY_AT_ONCE, 0, 1, 1},
    };
    static const char form[] = "name=caf%C3%A9&size=large";
    int calls = 0;
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_handler_app(&app, "form", form_handler, &calls, NULL), 0);
    for (size_t i = 0; i < sizeof(ways) / sizeof(ways[0]); i++) {
        csgi_test_request *request = upload_request(form, &ways[i]);
        ck_assert_int_eq(csgi_test_request_add_header(request, "Content-Type",
                                                      "application/x-www-form-urlencoded"),
                         0);
        calls = 0;
        csgi_test_response *r = run(request, app);
        ck_assert_int_eq(csgi_test_response_code(r), 200);
        ck_assert_str_eq(csgi_test_response_body(r, NULL), "name=caf\xc3\xa9 size=large");
        /* Called once, whenever the pieces came. */
        ck_assert_msg(calls == 1, "way %zu: %d calls", i, calls);
        csgi_test_response_free(r);
        csgi_test_request_free(request);
    }
    csgi_app_free(app);
}
END_TEST

/* ---- 100 Continue ---------------------------------------------------------------- */

/* Refuses without reading: 413 for a long body, 401 without credentials. */
static csgi_body *gatekeeper_call(void *state, csgi_environ *environ,
                                  csgi_start_response *start_response)
{
    app_counts *counts = state;
    counts->calls++;
    const char *length = csgi_environ_get(environ, "CONTENT_LENGTH");
    if (length && atoi(length) > 16) {
        csgi_start_response_call(start_response, "413 Content Too Large", text_plain, 1, NULL);
        return csgi_body_static(environ, "too large\n", 10);
    }
    if (!csgi_environ_get(environ, "HTTP_AUTHORIZATION")) {
        csgi_start_response_call(start_response, "401 Unauthorized", text_plain, 1, NULL);
        return csgi_body_static(environ, "who are you?\n", 13);
    }
    return echo_call(state, environ, start_response);
}

static const csgi_app_type gatekeeper_type = {"gatekeeper", gatekeeper_call, NULL};

START_TEST(continue_only_when_the_body_is_read)
{
    app_counts counts = {0, 0};
    csgi_app *app = new_app(&gatekeeper_type, &counts);
    static const sending expect = {CSGI_TEST_DELIVERY_AT_ONCE, 0, 0, 1};
    static const sending expect_late = {CSGI_TEST_DELIVERY_LATE, 1, 0, 1};

    /* 413 without reading: no 100, and the body is never sent. */
    csgi_test_request *request = upload_request("a body longer than sixteen bytes", &expect);
    csgi_test_response *r = run(request, app);
    ck_assert_int_eq(csgi_test_response_code(r), 413);
    ck_assert_int_eq(csgi_test_response_continued(r), 0);
    csgi_test_response_free(r);
    csgi_test_request_free(request);

    /* 401 without reading, also when the body would come in pieces. */
    request = upload_request(BODY, &expect_late);
    r = run(request, app);
    ck_assert_int_eq(csgi_test_response_code(r), 401);
    ck_assert_int_eq(csgi_test_response_continued(r), 0);
    ck_assert_int_eq(counts.waits, 0);
    csgi_test_response_free(r);

    /* With credentials the application reads: 100, then the body. */
    ck_assert_int_eq(csgi_test_request_add_header(request, "Authorization", "Bearer x"), 0);
    r = run(request, app);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_int_eq(csgi_test_response_continued(r), 1);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "12 bytes [" BODY "]");
    ck_assert_int_eq(counts.waits, 12);
    csgi_test_response_free(r);
    csgi_test_request_free(request);

    /* Without Expect the 100 is never sent; without a body neither. */
    static const sending plain = {CSGI_TEST_DELIVERY_AT_ONCE, 0, 0, 0};
    request = upload_request(BODY, &plain);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Authorization", "Bearer x"), 0);
    r = run(request, app);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "12 bytes [" BODY "]");
    ck_assert_int_eq(csgi_test_response_continued(r), 0);
    csgi_test_response_free(r);
    csgi_test_request_free(request);
    request = upload_request("", &expect);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Authorization", "Bearer x"), 0);
    r = run(request, app);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "0 bytes []");
    ck_assert_int_eq(csgi_test_response_continued(r), 0);
    csgi_test_response_free(r);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

/* An application that starts its response, then reads: the server sends
   no 100 once the head is out; the client sends the body anyway. */
typedef struct late_reader {
    csgi_environ *environ;
    csgi_body *body;
    char text[64];
    int step;
} late_reader;

static void late_reader_ready(csgi_input *input, void *userdata)
{
    late_reader *l = userdata;
    (void)input;
    csgi_body_resume(l->body);
}

static int late_reader_next(void *state, csgi_chunk *chunk)
{
    late_reader *l = state;
    if (l->step == 0) {
        l->step = 1;
        chunk->data = "head out;";
        chunk->len = 9;
        return 1;
    }
    if (l->step == 2)
        return 0;
    csgi_input *input = csgi_environ_input(l->environ);
    const char *data = NULL;
    size_t len = 0;
    int rc = csgi_input_read_all(input, 100, &data, &len);
    if (rc == CSGI_EAGAIN) {
        csgi_input_on_ready(input, late_reader_ready, l);
        return CSGI_EAGAIN;
    }
    l->step = 2;
    snprintf(l->text, sizeof(l->text), " read [%.*s]", (int)len, rc == 0 ? data : "");
    chunk->data = l->text;
    chunk->len = strlen(l->text);
    return 1;
}

static const csgi_body_type late_reader_body = {"late_reader", late_reader_next, NULL};

static csgi_body *late_reader_call(void *state, csgi_environ *environ,
                                   csgi_start_response *start_response)
{
    (void)state;
    late_reader *l = csgi_environ_alloc(environ, sizeof(*l));
    if (!l)
        return NULL;
    memset(l, 0, sizeof(*l));
    l->environ = environ;
    csgi_start_response_call(start_response, "200 OK", text_plain, 1, NULL);
    return l->body = csgi_body_new(environ, &late_reader_body, l);
}

/* read_all with a max below the announced length refuses before reading a
   byte: no 100 goes out, as on the server. */
static csgi_body *small_reader_call(void *state, csgi_environ *environ,
                                    csgi_start_response *start_response)
{
    (void)state;
    const char *data = NULL;
    size_t len = 0;
    int rc = csgi_input_read_all(csgi_environ_input(environ), 5, &data, &len);
    const char *status = rc == CSGI_ETOOBIG ? "413 Content Too Large" : "500 Unexpected";
    csgi_start_response_call(start_response, status, text_plain, 1, NULL);
    return csgi_body_static(environ, "", 0);
}

START_TEST(no_continue_when_read_all_refuses_the_length)
{
    csgi_app *app = new_app(&(const csgi_app_type){"small_reader", small_reader_call, NULL}, NULL);
    static const sending expect = {CSGI_TEST_DELIVERY_AT_ONCE, 0, 0, 1};
    csgi_test_request *request = upload_request(BODY, &expect);
    csgi_test_response *r = run(request, app);
    ck_assert_int_eq(csgi_test_response_code(r), 413);
    ck_assert_int_eq(csgi_test_response_continued(r), 0);
    csgi_test_response_free(r);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

START_TEST(no_continue_after_the_response_started)
{
    csgi_app *app = new_app(&(const csgi_app_type){"late_reader", late_reader_call, NULL}, NULL);
    static const sending expect = {CSGI_TEST_DELIVERY_LATE, 4, 0, 1};
    csgi_test_request *request = upload_request(BODY, &expect);
    csgi_test_response *r = run(request, app);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "head out; read [" BODY "]");
    ck_assert_int_eq(csgi_test_response_continued(r), 0);
    csgi_test_response_free(r);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

/* ---- Framing ----------------------------------------------------------------------- */

/* A body framed by the test itself under its own Transfer-Encoding goes
   through the server's decoder as it is. */
START_TEST(own_chunked_framing)
{
    app_counts counts = {0, 0};
    csgi_app *app = new_app(&echo_type, &counts);
    static const char good[] =
        "5;ext=1\r\nhello\r\n2\r\n, \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n";
    for (size_t piece = 0; piece <= 3; piece++) {
        csgi_test_request *request = new_request("PUT", "/x");
        ck_assert_int_eq(csgi_test_request_add_header(request, "Transfer-Encoding", "chunked"), 0);
        ck_assert_int_eq(csgi_test_request_set_body(request, good, strlen(good)), 0);
        ck_assert_int_eq(
            csgi_test_request_set_body_delivery(
                request, piece ? CSGI_TEST_DELIVERY_LATE : CSGI_TEST_DELIVERY_AT_ONCE, piece),
            0);
        csgi_test_response *r = run(request, app);
        ck_assert_str_eq(csgi_test_response_body(r, NULL), "12 bytes [hello, world]");
        ck_assert_int_eq(csgi_test_response_log_contains(r, "CONTENT_LENGTH=(absent)"), 1);
        csgi_test_response_free(r);
        csgi_test_request_free(request);
    }

    /* Broken framing with the head: the server refuses the request before
       any application runs. */
    static const char bad[] = "5\r\nhello\r\nzz\r\n";
    counts.calls = 0;
    csgi_test_request *request = new_request("PUT", "/x");
    ck_assert_int_eq(csgi_test_request_add_header(request, "Transfer-Encoding", "chunked"), 0);
    ck_assert_int_eq(csgi_test_request_set_body(request, bad, strlen(bad)), 0);
    csgi_test_response *r = (csgi_test_response *)&r;
    ck_assert_int_eq(csgi_test_request_run(&r, request, app), CSGI_EPARSE);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(counts.calls, 0);

    /* Late, it breaks while the application waits: the server answers 400
       and logs why. */
    ck_assert_int_eq(csgi_test_request_set_body_delivery(request, CSGI_TEST_DELIVERY_LATE, 2), 0);
    r = run(request, app);
    ck_assert_int_eq(counts.calls, 1);
    ck_assert_int_eq(csgi_test_response_code(r), 400);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "400 Bad Request\n");
    ck_assert_int_eq(csgi_test_response_log_contains(r, "400 Bad Request (invalid chunk size)"), 1);
    csgi_test_response_free(r);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

/* A body announced and never sent keeps a waiting reader waiting, as on
   the server, until the run's time is up. */
START_TEST(announced_body_never_sent)
{
    app_counts counts = {0, 0};
    csgi_app *app = new_app(&echo_type, &counts);
    csgi_test_request *request = new_request("POST", "/x");
    ck_assert_int_eq(csgi_test_request_add_header(request, "Transfer-Encoding", "chunked"), 0);
    csgi_test_request_set_timeout(request, 50);
    csgi_test_response *r = (csgi_test_response *)&r;
    ck_assert_int_eq(csgi_test_request_run(&r, request, app), CSGI_ETIMEDOUT);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(counts.waits, 1);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

/* Chunked with an empty body: the last-chunk alone. */
START_TEST(chunked_empty_body)
{
    app_counts counts = {0, 0};
    csgi_app *app = new_app(&echo_type, &counts);
    static const sending late = {CSGI_TEST_DELIVERY_LATE, 1, 1, 0};
    csgi_test_request *request = upload_request("", &late);
    csgi_test_response *r = run(request, app);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "0 bytes []");
    ck_assert_int_eq(counts.waits, 1);
    csgi_test_response_free(r);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

/* The client's framing and the test's own: Transfer-Encoding twice is
   refused as the server refuses it. */
START_TEST(delivery_arguments)
{
    csgi_test_request *request = new_request("POST", "/x");
    ck_assert_int_eq(csgi_test_request_set_body_delivery(NULL, CSGI_TEST_DELIVERY_LATE, 1),
                     CSGI_EINVAL);
    ck_assert_int_eq(csgi_test_request_set_body_delivery(request, (csgi_test_delivery)7, 1),
                     CSGI_EINVAL);
    csgi_test_request_set_chunked(NULL, 1);
    csgi_test_request_set_chunked(request, 1);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Transfer-Encoding", "chunked"), 0);
    app_counts counts = {0, 0};
    csgi_app *app = new_app(&echo_type, &counts);
    csgi_test_response *r = NULL;
    ck_assert_int_eq(csgi_test_request_run(&r, request, app), CSGI_EPARSE);
    ck_assert_int_eq(counts.calls, 0);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

/* Every allocation of a run with a late, chunked body behind
   100-continue fails in turn: the run fails with CSGI_ENOMEM or answers
   (a 500, or the application's own answer to a failed read), and once
   nothing fails the answer is the right one. No leak (the sanitizer and
   valgrind runs check). */
START_TEST(out_of_memory_every_allocation)
{
    app_counts counts = {0, 0};
    csgi_app *app = new_app(&echo_type, &counts);
    static const sending how = {CSGI_TEST_DELIVERY_LATE, 3, 1, 1};
    ck_assert_int_eq(test_alloc_install(), 0);
    int succeeded = 0;
    for (long budget = 0; budget < 400 && !succeeded; budget++) {
        test_alloc_fail_after(budget);
        csgi_test_request *request = NULL;
        csgi_test_response *response = NULL;
        int rc = csgi_test_request_new(&request, "POST", "/upload");
        if (rc == 0)
            rc = csgi_test_request_set_body(request, BODY, strlen(BODY));
        if (rc == 0)
            rc = csgi_test_request_set_body_delivery(request, how.delivery, how.piece_size);
        csgi_test_request_set_chunked(request, how.chunked);
        if (rc == 0)
            rc = csgi_test_request_add_header(request, "Expect", "100-continue");
        if (rc == 0)
            rc = csgi_test_request_run(&response, request, app);
        ck_assert_msg(rc == 0 || rc == CSGI_ENOMEM, "budget %ld: %s", budget, csgi_err_name(rc));
        ck_assert(rc == 0 ? response != NULL : response == NULL);
        if (rc == 0 && test_alloc_count() < budget) {
            ck_assert_str_eq(csgi_test_response_body(response, NULL), "12 bytes [" BODY "]");
            ck_assert_int_eq(csgi_test_response_continued(response), 1);
            succeeded = 1;
        }
        test_alloc_fail_never();
        csgi_test_response_free(response);
        csgi_test_request_free(request);
    }
    ck_assert_int_eq(test_alloc_restore(), 0);
    ck_assert_int_eq(succeeded, 1);
    csgi_app_free(app);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("testing_upload");
    TCase *delivery = tcase_create("delivery");
    tcase_add_test(delivery, waiting_app_same_answer_every_way);
    tcase_add_test(delivery, naive_app_caught_when_body_is_late);
    tcase_add_test(delivery, form_handler_every_way);
    tcase_add_test(delivery, continue_only_when_the_body_is_read);
    tcase_add_test(delivery, no_continue_when_read_all_refuses_the_length);
    tcase_add_test(delivery, no_continue_after_the_response_started);
    tcase_add_test(delivery, own_chunked_framing);
    tcase_add_test(delivery, announced_body_never_sent);
    tcase_add_test(delivery, chunked_empty_body);
    tcase_add_test(delivery, delivery_arguments);
    tcase_add_test(delivery, out_of_memory_every_allocation);
    suite_add_tcase(suite, delivery);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
