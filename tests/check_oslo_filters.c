/*
 * oslo.middleware's filters as C (src/middleware/request_id.c): through the
 * test client, over real sockets, and loaded from deploy files under every
 * name OpenStack's api-paste.ini files use.
 */
#include "engine_harness.h"
#include "middleware/middleware.h"

#include <csgi.h>

#include <check.h>
#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Answers 200 with the request ids it saw in the environ, one a line
   ("-" for none), or with the length of a body it was sent; ?fail=1
   answers 404. */
static csgi_response *show_ids(csgi_request *request, void *userdata)
{
    (void)userdata;
    csgi_environ *environ = csgi_request_environ(request);
    const char *query = csgi_environ_get(environ, "QUERY_STRING");
    if (query && strcmp(query, "fail=1") == 0)
        return csgi_handler_error(request, 404, NULL);
    if (query && strcmp(query, "crash=1") == 0)
        return NULL;
    const char *id = csgi_environ_get(environ, "openstack.request_id");
    const char *global = csgi_environ_get(environ, "openstack.global_request_id");
    const char *body = NULL;
    size_t len = 0;
    if (csgi_request_body(request, 1 << 20, &body, &len) != 0)
        return NULL;
    char text[256];
    if (len)
        snprintf(text, sizeof(text), "%zu bytes\n", len);
    else
        snprintf(text, sizeof(text), "%s\n%s\n", id ? id : "-", global ? global : "-");
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_text(response, text, "utf-8") != 0)
        return NULL;
    return response;
}

CSGI_HANDLER_APP_FACTORY(show_ids_factory, show_ids, NULL)

/* Load the deploy file text with a loader knowing egg:test#show_ids:
   0 with *out set, or the loader's error with *error filled. */
static int load_text(const char *text, csgi_app **out, csgi_load_error *error)
{
    char path[] = "/tmp/check_oslo_XXXXXX.ini";
    int fd = mkstemps(path, 4);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:test#show_ids", CSGI_FACTORY_APP, show_ids_factory),
        0);
    *out = NULL;
    memset(error, 0, sizeof(*error));
    int rc = csgi_loader_load_app(out, loader, path, error);
    unlink(path);
    csgi_loader_free(loader);
    return rc;
}

/* egg:test#show_ids behind a filter section given as filter_lines. */
static csgi_app *load_with(const char *filter_lines)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "[pipeline:main]\npipeline = filter app\n\n[filter:filter]\n%s\n\n"
             "[app:app]\nuse = egg:test#show_ids\n",
             filter_lines);
    csgi_app *app;
    csgi_load_error error;
    ck_assert_msg(load_text(text, &app, &error) == 0, "%s: %s", filter_lines, error.text);
    return app;
}

static csgi_app *request_id_app(void)
{
    return load_with("use = egg:oslo.middleware#request_id");
}

static csgi_test_response *get(csgi_app *app, const char *url, const char *incoming)
{
    csgi_test_request *request = NULL;
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", url), 0);
    if (incoming)
        ck_assert_int_eq(csgi_test_request_add_header(request, "X-OpenStack-Request-ID", incoming),
                         0);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    csgi_test_request_free(request);
    return response;
}

/* "req-" and a version 4 UUID in lower case. */
static void assert_request_id(const char *id)
{
    ck_assert_ptr_nonnull(id);
    ck_assert_uint_eq(strlen(id), 40);
    ck_assert(strncmp(id, "req-", 4) == 0);
    for (size_t i = 4; i < 40; i++) {
        if (i == 12 || i == 17 || i == 22 || i == 27)
            ck_assert_int_eq(id[i], '-');
        else
            ck_assert_msg(strchr("0123456789abcdef", id[i]) != NULL, "%s", id);
    }
    ck_assert_int_eq(id[18], '4');
    ck_assert(strchr("89ab", id[23]) != NULL);
}

START_TEST(request_id_sets_header_and_environ)
{
    csgi_app *app = request_id_app();
    csgi_test_response *response = get(app, "/", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    const char *id = csgi_test_response_header(response, "x-openstack-request-id");
    assert_request_id(id);
    char expected[128];
    snprintf(expected, sizeof(expected), "%s\n-\n", id);
    ck_assert_str_eq(csgi_test_response_body(response, NULL), expected);
    char first[64];
    snprintf(first, sizeof(first), "%s", id);
    csgi_test_response_free(response);

    /* A new id for every request. */
    response = get(app, "/", NULL);
    ck_assert_str_ne(csgi_test_response_header(response, "x-openstack-request-id"), first);
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

START_TEST(request_id_on_errors)
{
    csgi_app *app = request_id_app();
    csgi_test_response *response = get(app, "/?fail=1", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 404);
    assert_request_id(csgi_test_response_header(response, "x-openstack-request-id"));
    ck_assert_uint_eq(csgi_test_response_header_count(response) > 0, 1);
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

START_TEST(request_id_global_id_carried)
{
    const char *global = "req-0f4c1d2a-3b5e-4c6d-8e7f-9a0b1c2d3e4f";
    csgi_app *app = request_id_app();
    csgi_test_response *response = get(app, "/", global);
    const char *id = csgi_test_response_header(response, "x-openstack-request-id");
    assert_request_id(id);
    ck_assert_str_ne(id, global); /* the local id stays our own */
    char expected[128];
    snprintf(expected, sizeof(expected), "%s\n%s\n", id, global);
    ck_assert_str_eq(csgi_test_response_body(response, NULL), expected);
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

START_TEST(request_id_forged_global_ids_dropped)
{
    static const char *const forged[] = {
        "req-0f4c1d2a-3b5e-4c6d-8e7f-9a0b1c2d3e4",    /* short */
        "req-0f4c1d2a-3b5e-4c6d-8e7f-9a0b1c2d3e4f0",  /* long */
        "0f4c1d2a-3b5e-4c6d-8e7f-9a0b1c2d3e4f",       /* no prefix */
        "REQ-0f4c1d2a-3b5e-4c6d-8e7f-9a0b1c2d3e4f",   /* prefix case */
        "req-0f4c1d2a-3b5e-4c6d-8e7f-9a0b1c2d3e4g",   /* not hex */
        "req-0f4c1d2a_3b5e-4c6d-8e7f-9a0b1c2d3e4f",   /* dash misplaced */
        "req-0f4c1d2a-3b5e-4c6d-8e7f-9a0b1c2d\"><x>", /* injection */
        "req-",
        "",
    };
    csgi_app *app = request_id_app();
    for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
        csgi_test_response *response = get(app, "/", forged[i]);
        ck_assert_int_eq(csgi_test_response_code(response), 200);
        const char *body = csgi_test_response_body(response, NULL);
        ck_assert_msg(strstr(body, "\n-\n") != NULL, "%s carried: %s", forged[i], body);
        csgi_test_response_free(response);
    }
    csgi_app_free(app);
}
END_TEST

/* Each name an api-paste.ini uses, as `use` or as the factory key. */
START_TEST(request_id_every_spelling_loads)
{
    static const char *const spellings[] = {
        "use = egg:oslo.middleware#request_id",
        "paste.filter_factory = oslo_middleware:RequestId.factory",
        "paste.filter_factory = oslo_middleware.request_id:RequestId.factory",
    };
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        csgi_app *app = load_with(spellings[i]);
        csgi_test_response *response = get(app, "/", NULL);
        ck_assert_msg(csgi_test_response_header(response, "x-openstack-request-id") != NULL, "%s",
                      spellings[i]);
        csgi_test_response_free(response);
        csgi_app_free(app);
    }
}
END_TEST

START_TEST(request_id_over_sockets)
{
    app_server served;
    app_server_start(&served, request_id_app(), NULL);
    int fd = client_connect(served.port);
    ck_assert_int_eq(client_send_str(fd, "GET /?fail=1 HTTP/1.1\r\nHost: x\r\n"
                                         "X-OpenStack-Request-ID: forged\r\n\r\n"),
                     0);
    test_response response;
    ck_assert_int_eq(client_response(fd, &response, 0, 5000), 0);
    ck_assert_int_eq(response.status, 404);
    assert_request_id(response_header(&response, "x-openstack-request-id"));
    response_free(&response);
    close(fd);
    app_server_stop(&served);
}
END_TEST

static csgi_app *sizelimit_app(void)
{
    return load_with("use = egg:oslo.middleware#sizelimit\nmax_request_body_size = 100");
}

/* POST a body of len bytes ('x') with Content-Length, arriving after the
   head in pieces of piece bytes (at once with the head when piece is 0),
   chunked when chunked is set. */
static csgi_test_response *post_as(csgi_app *app, size_t len, size_t piece, int chunked)
{
    char body[512];
    ck_assert_uint_le(len, sizeof(body));
    memset(body, 'x', len);
    csgi_test_request *request = NULL;
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "POST", "/"), 0);
    ck_assert_int_eq(csgi_test_request_set_body(request, body, len), 0);
    if (chunked)
        csgi_test_request_set_chunked(request, 1);
    if (piece)
        ck_assert_int_eq(
            csgi_test_request_set_body_delivery(request, CSGI_TEST_DELIVERY_LATE, piece), 0);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    csgi_test_request_free(request);
    return response;
}

/* POST a body of len bytes ('x'), chunked in pieces of piece bytes, or with
   Content-Length when piece is 0. */
static csgi_test_response *post(csgi_app *app, size_t len, size_t piece)
{
    return post_as(app, len, piece, piece != 0);
}

START_TEST(sizelimit_content_length)
{
    csgi_app *app = sizelimit_app();
    csgi_test_response *response = post(app, 100, 0);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(csgi_test_response_body(response, NULL), "100 bytes\n");
    csgi_test_response_free(response);

    /* Over it: 413 without the body read. */
    response = post(app, 101, 0);
    ck_assert_int_eq(csgi_test_response_code(response), 413);
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

START_TEST(sizelimit_chunked_in_pieces)
{
    static const size_t pieces[] = {1, 7, 33, 100, 101, 400};
    csgi_app *app = sizelimit_app();
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        csgi_test_response *response = post(app, 100, pieces[i]);
        ck_assert_int_eq(csgi_test_response_code(response), 200);
        ck_assert_str_eq(csgi_test_response_body(response, NULL), "100 bytes\n");
        csgi_test_response_free(response);

        response = post(app, 101, pieces[i]);
        ck_assert_msg(csgi_test_response_code(response) == 413, "piece %zu: %d", pieces[i],
                      csgi_test_response_code(response));
        csgi_test_response_free(response);

        response = post(app, 400, pieces[i]);
        ck_assert_int_eq(csgi_test_response_code(response), 413);
        csgi_test_response_free(response);
    }
    csgi_app_free(app);
}
END_TEST

/* A body with Content-Length within the limit goes on as the server reads
   it (sizelimit puts no stream in front): whole, however it arrives; one
   over the limit is refused however it would arrive. */
START_TEST(sizelimit_content_length_in_pieces)
{
    static const size_t pieces[] = {0, 1, 7, 33, 100, 400};
    static const size_t within[] = {1, 99, 100};
    csgi_app *app = sizelimit_app();
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        for (size_t j = 0; j < sizeof(within) / sizeof(within[0]); j++) {
            csgi_test_response *response = post_as(app, within[j], pieces[i], 0);
            char want[32];
            snprintf(want, sizeof(want), "%zu bytes\n", within[j]);
            ck_assert_msg(csgi_test_response_code(response) == 200, "piece %zu, %zu bytes: %d",
                          pieces[i], within[j], csgi_test_response_code(response));
            ck_assert_str_eq(csgi_test_response_body(response, NULL), want);
            csgi_test_response_free(response);
        }
        csgi_test_response *response = post_as(app, 101, pieces[i], 0);
        ck_assert_msg(csgi_test_response_code(response) == 413, "piece %zu: %d", pieces[i],
                      csgi_test_response_code(response));
        csgi_test_response_free(response);
    }
    /* No body at all: the application sees none. */
    csgi_test_response *response = post_as(app, 0, 0, 0);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(csgi_test_response_body(response, NULL), "-\n-\n");
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

/* A stream a middleware in front put in csgi.input: it says it holds 10
   bytes and gives `gives`. */
typedef struct claimed {
    size_t gives;
    size_t given;
} claimed;

static long claimed_read(void *state, void *buf, size_t len)
{
    claimed *c = state;
    size_t n = c->gives - c->given < len ? c->gives - c->given : len;
    memset(buf, 'z', n);
    c->given += n;
    return (long)n;
}

static const csgi_input_type claimed_type = {"claimed", claimed_read, NULL, NULL};

/* A filter putting such a stream in front of next. */
typedef struct claiming {
    size_t gives;
    csgi_app *next;
} claiming;

static csgi_body *claiming_call(void *state, csgi_environ *environ,
                                csgi_start_response *start_response)
{
    const claiming *f = state;
    claimed *c = csgi_environ_alloc(environ, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    *c = (claimed){f->gives, 0};
    csgi_input *input = csgi_input_new(environ, &claimed_type, c, 10);
    ck_assert_ptr_nonnull(input);
    ck_assert_int_eq(csgi_environ_set_input(environ, input), 0);
    return csgi_app_call(f->next, environ, start_response);
}

static void claiming_destroy(void *state)
{
    claiming *f = state;
    csgi_app_free(f->next);
    free(f);
}

static const csgi_app_type claiming_type = {"claiming", claiming_call, claiming_destroy};

/* sizelimit counts what a stream gives, whatever length it announces: only
   the server's own stream stops at its Content-Length. */
START_TEST(sizelimit_middleware_stream)
{
    static const size_t gives[] = {10, 100, 101, 150};
    for (size_t i = 0; i < sizeof(gives) / sizeof(gives[0]); i++) {
        claiming *f = malloc(sizeof(*f));
        ck_assert_ptr_nonnull(f);
        *f = (claiming){gives[i], sizelimit_app()};
        csgi_app *app;
        ck_assert_int_eq(csgi_app_new(&app, &claiming_type, f), 0);
        csgi_test_response *response = get(app, "/", NULL);
        if (gives[i] <= 100) {
            char want[32];
            snprintf(want, sizeof(want), "%zu bytes\n", gives[i]);
            ck_assert_int_eq(csgi_test_response_code(response), 200);
            ck_assert_str_eq(csgi_test_response_body(response, NULL), want);
        } else {
            ck_assert_msg(csgi_test_response_code(response) == 413, "%zu bytes: %d", gives[i],
                          csgi_test_response_code(response));
        }
        csgi_test_response_free(response);
        csgi_app_free(app);
    }
}
END_TEST

START_TEST(sizelimit_bad_option)
{
    static const char *const bad[] = {"-1", "lots"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char lines[256];
        snprintf(lines, sizeof(lines),
                 "paste.filter_factory = oslo_middleware:RequestBodySizeLimiter.factory\n"
                 "max_request_body_size = %s",
                 bad[i]);
        char text[1024];
        snprintf(text, sizeof(text),
                 "[pipeline:main]\npipeline = filter app\n\n[filter:filter]\n%s\n\n"
                 "[app:app]\nuse = egg:test#show_ids\n",
                 lines);
        csgi_app *app;
        csgi_load_error error;
        ck_assert_int_ne(load_text(text, &app, &error), 0);
        ck_assert_ptr_null(app);
        ck_assert_int_eq(error.line, 6);
        ck_assert_str_eq(error.key, "max_request_body_size");
    }
}
END_TEST

START_TEST(sizelimit_every_spelling_loads)
{
    static const char *const spellings[] = {
        "use = egg:oslo.middleware#sizelimit",
        "paste.filter_factory = oslo_middleware:RequestBodySizeLimiter.factory",
        "paste.filter_factory = oslo_middleware.sizelimit:RequestBodySizeLimiter.factory",
    };
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        char lines[256];
        snprintf(lines, sizeof(lines), "%s\nmax_request_body_size = 10", spellings[i]);
        csgi_app *app = load_with(lines);
        csgi_test_response *response = post(app, 11, 0);
        ck_assert_msg(csgi_test_response_code(response) == 413, "%s", spellings[i]);
        csgi_test_response_free(response);
        csgi_app_free(app);
    }
}
END_TEST

START_TEST(sizelimit_over_sockets)
{
    static char body[300];
    memset(body, 'y', sizeof(body));
    for (int split = 0; split < SPLIT_COUNT; split++) {
        app_server served;
        app_server_start(&served, sizelimit_app(), NULL);
        int fd = client_connect(served.port);
        /* The server may answer 413 before the body is all sent; to a
           client that waits for 100 Continue it answers that instead. */
        int sent = client_send_post(fd, "/", "", body, sizeof(body), (enum body_split)split);
        if (split == SPLIT_AFTER_CONTINUE) {
            ck_assert_int_eq(sent, -1);
            close(fd);
            app_server_stop(&served);
            continue;
        }
        test_response response;
        ck_assert_msg(client_response(fd, &response, 0, 5000) == 0, "%s: no response",
                      body_split_names[split]);
        ck_assert_msg(response.status == 413, "%s: %d", body_split_names[split], response.status);
        response_free(&response);
        close(fd);
        app_server_stop(&served);
    }
}
END_TEST

/* A body within the limit over a socket, however the client sends it
   (with the head, in two writes, byte by byte, chunked, after "100
   Continue"): the application reads all of it. */
START_TEST(sizelimit_within_over_sockets)
{
    static char body[100];
    memset(body, 'y', sizeof(body));
    for (int split = 0; split < SPLIT_COUNT; split++) {
        app_server served;
        app_server_start(&served, sizelimit_app(), NULL);
        int fd = client_connect(served.port);
        ck_assert_msg(client_send_post(fd, "/", "", body, sizeof(body), (enum body_split)split) ==
                          0,
                      "%s: not sent", body_split_names[split]);
        test_response response;
        ck_assert_msg(client_response(fd, &response, 0, 5000) == 0, "%s: no response",
                      body_split_names[split]);
        ck_assert_msg(response.status == 200, "%s: %d", body_split_names[split], response.status);
        ck_assert_msg(response.body_len == 10 && memcmp(response.body, "100 bytes\n", 10) == 0,
                      "%s: %.*s", body_split_names[split], (int)response.body_len, response.body);
        response_free(&response);
        close(fd);
        app_server_stop(&served);
    }
}
END_TEST

/* An application that fails: its call returns NULL, after starting its
   response when started is set. */
static csgi_body *failing_call(void *state, csgi_environ *environ,
                               csgi_start_response *start_response)
{
    if (state) {
        const csgi_header headers[] = {CSGI_HEADER("X-Secret", "internal")};
        ck_assert_int_eq(csgi_start_response_call(start_response, "200 OK", headers, 1, NULL), 0);
    }
    (void)environ;
    return NULL;
}

static const csgi_app_type failing_type = {"failing", failing_call, NULL};

static csgi_app *failing_app(int started)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &failing_type, started ? (void *)1 : NULL), 0);
    return app;
}

static csgi_app *catch_errors_over(csgi_app *next)
{
    csgi_app *app = NULL;
    csgi_load_error error;
    memset(&error, 0, sizeof(error));
    ck_assert_int_eq(csgi_catch_errors__filter_factory(&app, NULL, NULL, NULL, next, &error), 0);
    return app;
}

START_TEST(catch_errors_failing_app)
{
    for (int started = 0; started < 2; started++) {
        csgi_app *app = catch_errors_over(failing_app(started));
        csgi_test_response *response = get(app, "/", NULL);
        ck_assert_int_eq(csgi_test_response_code(response), 500);
        ck_assert_str_eq(csgi_test_response_status(response), "500 Internal Server Error");
        ck_assert_ptr_null(csgi_test_response_header(response, "X-Secret"));
        const char *body = csgi_test_response_body(response, NULL);
        ck_assert_ptr_null(strstr(body, "failing"));
        ck_assert_ptr_null(strstr(body, "Request ID"));
        ck_assert_uint_eq(csgi_test_response_log_count(response), 1);
        ck_assert(csgi_test_response_log_contains(response, "catch_errors: failing failed"));
        csgi_test_response_free(response);
        csgi_app_free(app);
    }
}
END_TEST

/* An application that answers later: its body waits once (a timer of
   10 ms), then fails before starting the response when state is set, or
   answers 200 "late" otherwise. */
typedef struct late {
    csgi_start_response *start_response;
    csgi_body *body;
    int fails, waited, fired;
} late;

static void late_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    late *l = arg;
    l->fired = 1;
    csgi_body_resume(l->body);
}

static int late_next(void *state, csgi_chunk *chunk)
{
    late *l = state;
    if (!l->fired)
        return CSGI_EAGAIN;
    if (l->fails)
        return CSGI_EIO;
    if (l->waited++)
        return 0;
    ck_assert_int_eq(csgi_start_response_call(l->start_response, "200 OK", NULL, 0, NULL), 0);
    chunk->data = "late";
    chunk->len = 4;
    return 1;
}

static const csgi_body_type late_body_type = {"late", late_next, NULL};

static csgi_body *late_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    late *l = csgi_environ_alloc_zeroed(environ, sizeof(*l));
    ck_assert_ptr_nonnull(l);
    l->start_response = start_response;
    l->fails = state != NULL;
    l->body = csgi_body_new(environ, &late_body_type, l);
    struct timeval delay = {0, 10000};
    ck_assert_int_eq(
        event_base_once(csgi_environ_event_base(environ), -1, EV_TIMEOUT, late_fire, l, &delay), 0);
    return l->body;
}

static const csgi_app_type late_type = {"late", late_call, NULL};

START_TEST(catch_errors_late_failure)
{
    for (int fails = 0; fails < 2; fails++) {
        csgi_app *late_app = NULL;
        ck_assert_int_eq(csgi_app_new(&late_app, &late_type, fails ? (void *)1 : NULL), 0);
        csgi_app *app = catch_errors_over(late_app);
        csgi_test_response *response = get(app, "/", NULL);
        if (fails) {
            ck_assert_int_eq(csgi_test_response_code(response), 500);
            ck_assert(csgi_test_response_log_contains(response, "catch_errors: late failed"));
            ck_assert_ptr_nonnull(
                strstr(csgi_test_response_body(response, NULL), "An unknown error"));
        } else {
            ck_assert_int_eq(csgi_test_response_code(response), 200);
            ck_assert_str_eq(csgi_test_response_body(response, NULL), "late");
            ck_assert_uint_eq(csgi_test_response_log_count(response), 0);
        }
        csgi_test_response_free(response);
        csgi_app_free(app);
    }
}
END_TEST

/* The OpenStack order: request_id in front, then catch_errors. */
START_TEST(catch_errors_with_request_id)
{
    csgi_app *app;
    csgi_load_error error;
    int rc = load_text(
        "[pipeline:main]\npipeline = request_id catch_errors app\n\n"
        "[filter:request_id]\npaste.filter_factory = oslo_middleware:RequestId.factory\n\n"
        "[filter:catch_errors]\n"
        "paste.filter_factory = oslo_middleware.catch_errors:CatchErrors.factory\n\n"
        "[app:app]\nuse = egg:test#show_ids\n",
        &app, &error);
    ck_assert_msg(rc == 0, "%s", error.text);

    csgi_test_response *response = get(app, "/?crash=1", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 500);
    const char *id = csgi_test_response_header(response, "x-openstack-request-id");
    assert_request_id(id);
    char expected[256];
    snprintf(expected, sizeof(expected),
             "An unknown error has occurred. Please try your request again.\nRequest ID: %s\n", id);
    ck_assert_str_eq(csgi_test_response_body(response, NULL), expected);
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

START_TEST(catch_errors_every_spelling_loads)
{
    static const char *const spellings[] = {
        "use = egg:oslo.middleware#catch_errors",
        "paste.filter_factory = oslo_middleware:CatchErrors.factory",
        "paste.filter_factory = oslo_middleware.catch_errors:CatchErrors.factory",
    };
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        csgi_app *app = load_with(spellings[i]);
        csgi_test_response *response = get(app, "/?crash=1", NULL);
        ck_assert_msg(csgi_test_response_code(response) == 500, "%s", spellings[i]);
        ck_assert(csgi_test_response_log_contains(response, "catch_errors:"));
        csgi_test_response_free(response);
        csgi_app_free(app);
    }
}
END_TEST

START_TEST(catch_errors_over_sockets)
{
    app_server served;
    app_server_start(&served, catch_errors_over(failing_app(1)), NULL);
    int fd = client_connect(served.port);
    ck_assert_int_eq(client_send_str(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    test_response response;
    ck_assert_int_eq(client_response(fd, &response, 0, 5000), 0);
    ck_assert_int_eq(response.status, 500);
    ck_assert_ptr_null(response_header(&response, "X-Secret"));
    ck_assert_ptr_nonnull(strstr(response.body, "An unknown error has occurred."));
    response_free(&response);
    close(fd);
    app_server_stop(&served);
}
END_TEST

static Suite *oslo_suite(void)
{
    Suite *s = suite_create("oslo_filters");
    TCase *tc = tcase_create("request_id");
    tcase_add_test(tc, request_id_sets_header_and_environ);
    tcase_add_test(tc, request_id_on_errors);
    tcase_add_test(tc, request_id_global_id_carried);
    tcase_add_test(tc, request_id_forged_global_ids_dropped);
    tcase_add_test(tc, request_id_every_spelling_loads);
    tcase_add_test(tc, request_id_over_sockets);
    suite_add_tcase(s, tc);
    tc = tcase_create("sizelimit");
    tcase_add_test(tc, sizelimit_content_length);
    tcase_add_test(tc, sizelimit_chunked_in_pieces);
    tcase_add_test(tc, sizelimit_content_length_in_pieces);
    tcase_add_test(tc, sizelimit_middleware_stream);
    tcase_add_test(tc, sizelimit_within_over_sockets);
    tcase_add_test(tc, sizelimit_bad_option);
    tcase_add_test(tc, sizelimit_every_spelling_loads);
    tcase_add_test(tc, sizelimit_over_sockets);
    suite_add_tcase(s, tc);
    tc = tcase_create("catch_errors");
    tcase_add_test(tc, catch_errors_failing_app);
    tcase_add_test(tc, catch_errors_late_failure);
    tcase_add_test(tc, catch_errors_with_request_id);
    tcase_add_test(tc, catch_errors_every_spelling_loads);
    tcase_add_test(tc, catch_errors_over_sockets);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(oslo_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
