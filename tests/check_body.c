/*
 * Handlers and their request bodies (csgi/handler.h): an application
 * handler runs once, when the whole body is there, however the body
 * arrives; past a threshold the body waits in a temporary file, removed
 * when the request ends; over the maximum it is refused (without a "100
 * Continue" when its length says so); a streaming handler reads it piece
 * by piece; a filter sees the head only and lets the body stream through,
 * unless it asks to gather it.
 */
#include "engine_harness.h"

#include <csgi.h>

#include <check.h>
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- Where spilled bodies go ------------------------------------------------------ */

static char temp_dir[64];

static void make_temp_dir(void)
{
    snprintf(temp_dir, sizeof(temp_dir), "/tmp/csgi-body-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(temp_dir));
}

/* Files in temp_dir now. */
static int temp_files(void)
{
    DIR *dir = opendir(temp_dir);
    ck_assert_ptr_nonnull(dir);
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)))
        n += entry->d_name[0] != '.';
    closedir(dir);
    return n;
}

/* Wait (bounded) until temp_dir is empty; 1 when it is. */
static int temp_dir_empties(int timeout_ms)
{
    long end = now_ms() + timeout_ms;
    while (temp_files() != 0 && now_ms() < end)
        usleep(10 * 1000);
    return temp_files() == 0;
}

/* ---- The handlers --------------------------------------------------------------- */

static atomic_int calls;       /* handler calls */
static atomic_int filter_runs; /* filter calls */
static atomic_int pieces;      /* reader data calls */
static atomic_int ends;        /* reader end calls */
static atomic_int spilled;     /* files seen while the handler ran */

/* Answers "LEN:CHECKSUM" of the whole body, counting the calls and the
   files in temp_dir while it runs. */
static csgi_response *digest(csgi_request *request, void *userdata)
{
    (void)userdata;
    atomic_fetch_add(&calls, 1);
    if (temp_dir[0])
        atomic_store(&spilled, temp_files());
    const char *body;
    size_t len;
    int rc = csgi_request_body(request, 64 * 1024 * 1024, &body, &len);
    if (rc != 0)
        return csgi_handler_error(request, 500, csgi_err_name(rc));
    unsigned long sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = sum * 31 + (unsigned char)body[i];
    char text[64];
    snprintf(text, sizeof(text), "%zu:%lu", len, sum);
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_text(response, text, NULL) != 0)
        return NULL;
    return response;
}

static unsigned long sum_of(const char *data, size_t len)
{
    unsigned long sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = sum * 31 + (unsigned char)data[i];
    return sum;
}

/* A streaming reader: the same digest, computed as pieces come. */
typedef struct streamed {
    size_t len;
    unsigned long sum;
} streamed;

static int streamed_data(void *state, csgi_request *request, const void *data, size_t len)
{
    (void)request;
    streamed *s = state;
    atomic_fetch_add(&pieces, 1);
    for (size_t i = 0; i < len; i++)
        s->sum = s->sum * 31 + ((const unsigned char *)data)[i];
    s->len += len;
    return s->len > 100000 ? 7 : 0; /* stop past 100000 bytes */
}

static csgi_response *streamed_end(void *state, csgi_request *request, int result)
{
    streamed *s = state;
    atomic_fetch_add(&ends, 1);
    if (result == 7)
        return csgi_handler_error(request, 413, "that is enough");
    if (result != 0)
        return csgi_handler_error(request, 400, csgi_err_name(result));
    char text[64];
    snprintf(text, sizeof(text), "%zu:%lu", s->len, s->sum);
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_text(response, text, NULL) != 0)
        return NULL;
    return response;
}

static const csgi_body_reader_type streamed_reader = {"digest", streamed_data, streamed_end};

static csgi_response *stream_digest(csgi_request *request, void *userdata)
{
    (void)userdata;
    atomic_fetch_add(&calls, 1);
    streamed *s = csgi_environ_alloc(csgi_request_environ(request), sizeof(*s));
    if (!s)
        return NULL;
    *s = (streamed){0, 0};
    return csgi_handler_read_body(request, &streamed_reader, s);
}

/* A filter that only looks at the head, counting its runs. */
static csgi_response *counting_filter(csgi_request *request, csgi_app *next, void *userdata)
{
    (void)userdata;
    atomic_fetch_add(&filter_runs, 1);
    return csgi_handler_forward(request, next);
}

/* A filter that reads the body (it gathers), and says how long it was. */
static csgi_response *body_length_header(csgi_request *request, csgi_response *response,
                                         void *state)
{
    (void)request;
    return csgi_response_set_header(response, "X-Body-Length", state) == 0 ? response : NULL;
}

static csgi_response *reading_filter(csgi_request *request, csgi_app *next, void *userdata)
{
    (void)userdata;
    atomic_fetch_add(&filter_runs, 1);
    const char *body;
    size_t len;
    if (csgi_request_body(request, 1 << 20, &body, &len) != 0)
        return NULL;
    char *text = csgi_environ_alloc(csgi_request_environ(request), 32);
    if (!text)
        return NULL;
    snprintf(text, 32, "%zu", len);
    return csgi_handler_forward_then(request, next, body_length_header, text);
}

static csgi_app *handler(csgi_handler_fn fn, csgi_handler_body body, uint64_t max_body,
                         size_t buffer)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_handler_app(&app, "digest", fn, NULL, NULL), 0);
    csgi_handler_options options = CSGI_HANDLER_OPTIONS_INIT;
    options.body = body;
    options.max_body = max_body;
    options.body_buffer_size = buffer;
    options.body_temp_dir = temp_dir[0] ? temp_dir : NULL;
    ck_assert_int_eq(csgi_handler_set_options(app, &options), 0);
    return app;
}

static csgi_app *filtered(csgi_filter_handler_fn fn, csgi_handler_body body, csgi_app *next)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_handler_filter(&app, "filter", fn, next, NULL, NULL), 0);
    csgi_handler_options options = CSGI_HANDLER_OPTIONS_INIT;
    options.body = body;
    ck_assert_int_eq(csgi_handler_set_options(app, &options), 0);
    return app;
}

/* ---- Sending a body the ways the network does ------------------------------------------ */

static char *pattern(size_t len)
{
    char *body = malloc(len + 1);
    ck_assert_ptr_nonnull(body);
    for (size_t i = 0; i < len; i++)
        body[i] = (char)('a' + (i * 7) % 26);
    body[len] = '\0';
    return body;
}

/* Every split of a body of len bytes: 200 "LEN:SUM", one handler call. */
static void expect_digest_every_split(int port, size_t len, int byte_by_byte)
{
    char *body = pattern(len);
    char expected[64];
    snprintf(expected, sizeof(expected), "%zu:%lu", len, sum_of(body, len));
    for (int split = 0; split < SPLIT_COUNT; split++) {
        if ((split == SPLIT_BYTE_BY_BYTE && !byte_by_byte) ||
            (split == SPLIT_AFTER_CONTINUE && len == 0))
            continue; /* (nothing to continue for) */
        atomic_store(&calls, 0);
        atomic_store(&filter_runs, 0);
        int fd = client_connect(port);
        ck_assert_int_eq(client_send_post(fd, "/", "", body, len, (enum body_split)split), 0);
        test_response r;
        ck_assert_int_eq(client_response(fd, &r, 0, 10000), 0);
        ck_assert_msg(r.status == 200, "%zu bytes %s: %d %s", len, body_split_names[split],
                      r.status, r.body);
        ck_assert_msg(strcmp(r.body, expected) == 0, "%zu bytes %s: %s", len,
                      body_split_names[split], r.body);
        ck_assert_msg(atomic_load(&calls) == 1, "%s: %d calls", body_split_names[split],
                      atomic_load(&calls));
        response_free(&r);
        close(fd);
    }
    free(body);
}

/* ---- Tests --------------------------------------------------------------------- */

START_TEST(gathered_once_every_split)
{
    make_temp_dir();
    app_server served;
    /* Bodies up to 1 KiB stay in memory; longer ones are spilled. */
    app_server_start(&served, handler(digest, CSGI_HANDLER_BODY_DEFAULT, 0, 1024), NULL);
    expect_digest_every_split(served.port, 0, 0);
    expect_digest_every_split(served.port, 300, 1);
    ck_assert_int_eq(atomic_load(&spilled), 0);
    expect_digest_every_split(served.port, 200000, 0);
    /* The long body was in a file while the handler ran; the file is gone. */
    ck_assert_int_eq(atomic_load(&spilled), 1);
    ck_assert(temp_dir_empties(2000));
    app_server_stop(&served);
    rmdir(temp_dir);
}
END_TEST

START_TEST(streaming_reader_every_split)
{
    app_server served;
    app_server_start(&served, handler(stream_digest, CSGI_HANDLER_BODY_STREAM, 0, 0), NULL);
    atomic_store(&ends, 0);
    expect_digest_every_split(served.port, 5000, 1);
    expect_digest_every_split(served.port, 90000, 0);
    ck_assert_int_eq(atomic_load(&ends), 9);

    /* The reader stops: its end answers, once. */
    atomic_store(&ends, 0);
    char *body = pattern(300000);
    int fd = client_connect(served.port);
    client_send_post(fd, "/", "", body, 300000, SPLIT_WITH_HEAD);
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 413);
    ck_assert_ptr_nonnull(strstr(r.body, "that is enough"));
    response_free(&r);
    close(fd);
    ck_assert_int_eq(atomic_load(&ends), 1);
    free(body);
    app_server_stop(&served);
}
END_TEST

START_TEST(filter_lets_the_body_stream)
{
    app_server served;
    app_server_start(&served,
                     filtered(counting_filter, CSGI_HANDLER_BODY_DEFAULT,
                              handler(stream_digest, CSGI_HANDLER_BODY_STREAM, 0, 0)),
                     NULL);
    atomic_store(&filter_runs, 0);
    atomic_store(&pieces, 0);
    char *body = pattern(20000);
    int fd = client_connect(served.port);
    ck_assert_int_eq(
        client_send_str(fd, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 20000\r\n\r\n"), 0);
    ck_assert_int_eq(client_send(fd, body, 10000), 0);
    /* Half the body is there: the filter ran, and the handler behind it is
       reading already. */
    long end = now_ms() + 3000;
    while (atomic_load(&pieces) == 0 && now_ms() < end)
        usleep(5 * 1000);
    ck_assert_int_eq(atomic_load(&filter_runs), 1);
    ck_assert_int_ge(atomic_load(&pieces), 1);
    ck_assert_int_eq(client_send(fd, body + 10000, 10000), 0);
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    char expected[64];
    snprintf(expected, sizeof(expected), "20000:%lu", sum_of(body, 20000));
    ck_assert_str_eq(r.body, expected);
    response_free(&r);
    close(fd);
    ck_assert_int_eq(atomic_load(&filter_runs), 1);
    free(body);
    app_server_stop(&served);
}
END_TEST

START_TEST(gathering_filter_runs_once)
{
    app_server served;
    app_server_start(&served,
                     filtered(reading_filter, CSGI_HANDLER_BODY_GATHER,
                              handler(digest, CSGI_HANDLER_BODY_DEFAULT, 0, 0)),
                     NULL);
    char *body = pattern(3000);
    char expected[64];
    snprintf(expected, sizeof(expected), "3000:%lu", sum_of(body, 3000));
    for (int split = 0; split < SPLIT_COUNT; split++) {
        atomic_store(&filter_runs, 0);
        atomic_store(&calls, 0);
        int fd = client_connect(served.port);
        ck_assert_int_eq(client_send_post(fd, "/", "", body, 3000, (enum body_split)split), 0);
        test_response r;
        ck_assert_int_eq(client_response(fd, &r, 0, 10000), 0);
        ck_assert_msg(r.status == 200, "%s: %d", body_split_names[split], r.status);
        /* Both read the same body: the filter's gathering serves both. */
        ck_assert_str_eq(r.body, expected);
        ck_assert_str_eq(response_header(&r, "X-Body-Length"), "3000");
        ck_assert_int_eq(atomic_load(&filter_runs), 1);
        ck_assert_int_eq(atomic_load(&calls), 1);
        response_free(&r);
        close(fd);
    }
    free(body);
    app_server_stop(&served);
}
END_TEST

START_TEST(refused_without_continue)
{
    app_server served;
    app_server_start(&served, handler(digest, CSGI_HANDLER_BODY_DEFAULT, 1000, 0), NULL);
    atomic_store(&calls, 0);
    /* Announced too long: 413 at once, no "100 Continue" first. */
    int fd = client_connect(served.port);
    ck_assert_int_eq(client_send_str(fd,
                                     "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n"
                                     "Expect: 100-continue\r\nAccept: application/json\r\n\r\n"),
                     0);
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 413);
    ck_assert_ptr_nonnull(strstr(r.body, "longer than 1000 bytes"));
    response_free(&r);
    close(fd);

    /* Chunked: refused once it passes the limit. */
    char *body = pattern(5000);
    fd = client_connect(served.port);
    client_send_post(fd, "/", "", body, 5000, SPLIT_CHUNKED);
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 413);
    response_free(&r);
    close(fd);
    /* Under it: served. */
    fd = client_connect(served.port);
    client_send_post(fd, "/", "", body, 1000, SPLIT_CHUNKED);
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 200);
    response_free(&r);
    close(fd);
    ck_assert_int_eq(atomic_load(&calls), 1);
    free(body);
    app_server_stop(&served);
}
END_TEST

START_TEST(spill_removed_when_client_leaves)
{
    make_temp_dir();
    app_server served;
    csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
    options.max_body = 1 << 24;
    options.log = quiet_log;
    app_server_start(&served, handler(digest, CSGI_HANDLER_BODY_DEFAULT, 1 << 24, 4096), &options);
    atomic_store(&calls, 0);
    char *body = pattern(100000);
    int fd = client_connect(served.port);
    ck_assert_int_eq(client_send_str(fd, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n"
                                         "\r\n"),
                     0);
    ck_assert_int_eq(client_send(fd, body, 100000), 0);
    /* The body is on its way into a file... */
    long end = now_ms() + 3000;
    while (temp_files() == 0 && now_ms() < end)
        usleep(5 * 1000);
    ck_assert_int_eq(temp_files(), 1);
    /* ...and the client leaves: the file goes, the handler never ran. */
    close(fd);
    ck_assert(temp_dir_empties(3000));
    ck_assert_int_eq(atomic_load(&calls), 0);
    free(body);
    app_server_stop(&served);
    rmdir(temp_dir);
}
END_TEST

START_TEST(test_client_gathers_too)
{
    /* The in-process client runs the same adapter: the body is gathered
       (and spilled) the same way. */
    make_temp_dir();
    csgi_app *app = handler(digest, CSGI_HANDLER_BODY_DEFAULT, 0, 100);
    char *body = pattern(5000);
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "POST", "/"), 0);
    ck_assert_int_eq(csgi_test_request_set_body(request, body, 5000), 0);
    csgi_test_response *response = NULL;
    atomic_store(&spilled, 0);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    char expected[64];
    snprintf(expected, sizeof(expected), "5000:%lu", sum_of(body, 5000));
    ck_assert_str_eq(csgi_test_response_body(response, NULL), expected);
    ck_assert_int_eq(atomic_load(&spilled), 1);
    ck_assert_int_eq(temp_files(), 0);
    csgi_test_response_free(response);
    csgi_test_request_free(request);
    csgi_app_free(app);
    free(body);
    rmdir(temp_dir);

    /* A temporary directory that cannot be used: 500 and a log line. */
    snprintf(temp_dir, sizeof(temp_dir), "/nonexistent/csgi");
    app = handler(digest, CSGI_HANDLER_BODY_DEFAULT, 0, 10);
    ck_assert_int_eq(csgi_test_request_new(&request, "POST", "/"), 0);
    ck_assert_int_eq(csgi_test_request_set_body(request, "more than ten bytes", 19), 0);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    ck_assert_int_eq(csgi_test_response_code(response), 500);
    ck_assert(csgi_test_response_log_contains(response, "cannot make a file for the request body"));
    csgi_test_response_free(response);
    csgi_test_request_free(request);
    csgi_app_free(app);
    temp_dir[0] = '\0';
}
END_TEST

static Suite *body_suite(void)
{
    Suite *suite = suite_create("body");
    TCase *tc = tcase_create("body");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, gathered_once_every_split);
    tcase_add_test(tc, streaming_reader_every_split);
    tcase_add_test(tc, filter_lets_the_body_stream);
    tcase_add_test(tc, gathering_filter_runs_once);
    tcase_add_test(tc, refused_without_continue);
    tcase_add_test(tc, spill_removed_when_client_leaves);
    tcase_add_test(tc, test_client_gathers_too);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(body_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
