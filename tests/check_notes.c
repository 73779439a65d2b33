/*
 * The notes service (examples/notes), as a user deploys it: notes.ini
 * loaded with notes.so, served by csgi's server over real sockets. Every
 * request body is sent with the head, in two writes, a byte at a time,
 * chunked and after 100-continue: the answers are the same, each request
 * gets one request id and one log line, and the errors (404, 405, 413,
 * 415, 422, 400) are JSON, whatever Accept says. The same requests go
 * through the in-process test client, with the body at once, late in
 * pieces, chunked and after 100-continue; and a filter that reads the body
 * without asking for it to be gathered is shown to be caught.
 */
#include "engine_harness.h"

#include <csgi.h>

#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- The server and its log ---------------------------------------------------------- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[1 << 16];

static void capture_log(int level, const char *message, void *userdata)
{
    (void)level;
    (void)userdata;
    pthread_mutex_lock(&log_lock);
    size_t used = strlen(log_text);
    snprintf(log_text + used, sizeof(log_text) - used, "%s\n", message);
    pthread_mutex_unlock(&log_lock);
}

/* Lines of the log containing text. */
static int log_lines_with(const char *text)
{
    int n = 0;
    pthread_mutex_lock(&log_lock);
    for (const char *line = log_text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char copy[1024];
        snprintf(copy, sizeof(copy), "%.*s", (int)len, line);
        n += strstr(copy, text) != NULL;
        line += len + (end != NULL);
    }
    pthread_mutex_unlock(&log_lock);
    return n;
}

static csgi_app *load_notes(void)
{
    const char *dir = getenv("CSGI_NOTES_DIR");
    const char *ini = getenv("CSGI_NOTES_INI");
    ck_assert_msg(dir && ini, "CSGI_NOTES_DIR and CSGI_NOTES_INI are set by CTest");
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(csgi_loader_add_module_path(loader, dir), 0);
    csgi_app *app = NULL;
    csgi_load_error error;
    int rc = csgi_loader_load_app(&app, loader, ini, &error);
    char text[1024];
    csgi_load_error_format(&error, text, sizeof(text));
    ck_assert_msg(rc == 0, "%s", text);
    csgi_loader_free(loader);
    return app;
}

static app_server served;

static void start(void)
{
    log_text[0] = '\0';
    csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
    options.log = capture_log;
    options.verbose = 1; /* the request-id filter logs at info level */
    app_server_start(&served, load_notes(), &options);
}

/* ---- Requests ----------------------------------------------------------------------- */

typedef struct answer {
    test_response r;
    json_t *json; /* the body, parsed (NULL when not JSON) */
} answer;

static void answer_free(answer *a)
{
    response_free(&a->r);
    json_decref(a->json);
}

static void read_answer(int fd, answer *a, int head)
{
    ck_assert_int_eq(client_response(fd, &a->r, head, 10000), 0);
    a->json = a->r.body && a->r.body_len ? json_loads(a->r.body, 0, NULL) : NULL;
}

/* A request without a body: method, path, extra header lines. */
static void request(answer *a, const char *method, const char *path, const char *headers)
{
    int fd = client_connect(served.port);
    char head[1024];
    snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: t\r\n%s\r\n", method, path, headers);
    ck_assert_int_eq(client_send_str(fd, head), 0);
    read_answer(fd, a, strcmp(method, "HEAD") == 0);
    close(fd);
}

static void post(answer *a, const char *headers, const char *body, enum body_split split)
{
    int fd = client_connect(served.port);
    /* (A body refused early may find the connection closing: the answer
       tells.) */
    client_send_post(fd, "/notes", headers, body, strlen(body), split);
    read_answer(fd, a, 0);
    close(fd);
}

/* The answer is a JSON error with this status. */
static void expect_json_error(const answer *a, int status, const char *what)
{
    ck_assert_msg(a->r.status == status, "%s: %d, not %d: %s", what, a->r.status, status,
                  a->r.body);
    const char *type = response_header(&a->r, "Content-Type");
    ck_assert_msg(type && strncmp(type, "application/json", 16) == 0, "%s: Content-Type %s", what,
                  type ? type : "(none)");
    ck_assert_msg(a->json && json_integer_value(json_object_get(a->json, "code")) == status,
                  "%s: %s", what, a->r.body);
}

/* One id in the answer, and one log line naming it. */
static void expect_one_request_id(const answer *a, const char *what)
{
    const char *header = response_header(&a->r, "X-Request-Id");
    ck_assert_msg(header != NULL, "%s: no X-Request-Id", what);
    char id[64], line[80];
    snprintf(id, sizeof(id), "%s", header);
    snprintf(line, sizeof(line), "request %s", id);
    /* The log line is written before the answer; give the thread a moment. */
    for (int i = 0; i < 100 && log_lines_with(line) == 0; i++)
        usleep(10 * 1000);
    ck_assert_msg(log_lines_with(line) == 1, "%s: %d lines for %s\n%s", what, log_lines_with(line),
                  id, log_text);
}

#define JSON_TYPE "Content-Type: application/json\r\n"
/* A browser's Accept: the errors are JSON all the same. */
#define ACCEPT_HTML "Accept: text/html,application/xhtml+xml;q=0.9,*/*;q=0.8\r\n"

/* ---- Tests ----------------------------------------------------------------------------- */

START_TEST(create_show_delete_every_split)
{
    start();
    for (int split = 0; split < SPLIT_COUNT; split++) {
        const char *how = body_split_names[split];
        char body[128];
        snprintf(body, sizeof(body), "{\"text\": \"sent %s\"}", how);
        answer created = {0};
        post(&created, JSON_TYPE, body, (enum body_split)split);
        ck_assert_msg(created.r.status == 201, "%s: %d %s\n%s", how, created.r.status,
                      created.r.body, log_text);
        expect_one_request_id(&created, how);
        json_t *note = json_object_get(created.json, "note");
        char expected[128];
        snprintf(expected, sizeof(expected), "sent %s", how);
        ck_assert_str_eq(json_string_value(json_object_get(note, "text")), expected);
        char location[64];
        snprintf(location, sizeof(location), "/notes/%lld",
                 (long long)json_integer_value(json_object_get(note, "id")));
        char absolute[80];
        snprintf(absolute, sizeof(absolute), "http://t%s", location);
        ck_assert_str_eq(response_header(&created.r, "Location"), absolute);

        answer shown = {0};
        request(&shown, "GET", location, "");
        ck_assert_int_eq(shown.r.status, 200);
        expect_one_request_id(&shown, "GET");
        ck_assert_str_eq(
            json_string_value(json_object_get(json_object_get(shown.json, "note"), "text")),
            expected);
        answer_free(&shown);

        answer deleted = {0};
        request(&deleted, "DELETE", location, "");
        ck_assert_int_eq(deleted.r.status, 204);
        answer_free(&deleted);
        request(&deleted, "GET", location, ACCEPT_HTML);
        expect_json_error(&deleted, 404, "deleted");
        answer_free(&deleted);
        answer_free(&created);
    }
    /* The list has what is left: nothing. */
    answer list = {0};
    request(&list, "GET", "/notes", "");
    ck_assert_int_eq(list.r.status, 200);
    ck_assert_int_eq(json_array_size(json_object_get(list.json, "notes")), 0);
    answer_free(&list);
    app_server_stop(&served);
}
END_TEST

START_TEST(errors_are_json_every_split)
{
    start();
    answer a = {0};
    request(&a, "GET", "/notes/999999", ACCEPT_HTML);
    expect_json_error(&a, 404, "no such note");
    answer_free(&a);
    request(&a, "GET", "/elsewhere", ACCEPT_HTML);
    expect_json_error(&a, 404, "no such route");
    answer_free(&a);
    request(&a, "PUT", "/notes", ACCEPT_HTML "Content-Length: 0\r\n");
    expect_json_error(&a, 405, "PUT /notes");
    ck_assert_str_eq(response_header(&a.r, "Allow"), "GET, POST, HEAD, OPTIONS");
    answer_free(&a);

    char *big = malloc(2001);
    ck_assert_ptr_nonnull(big);
    snprintf(big, 2001, "{\"text\": \"%01988d\"}", 0);
    for (int split = 0; split < SPLIT_COUNT; split++) {
        const char *how = body_split_names[split];
        int before = log_lines_with("request req-");
        post(&a, JSON_TYPE ACCEPT_HTML, "{\"title\": \"no text\"}", (enum body_split)split);
        expect_json_error(&a, 422, how);
        expect_one_request_id(&a, how);
        answer_free(&a);
        post(&a, "Content-Type: text/plain\r\n" ACCEPT_HTML, "just text", (enum body_split)split);
        expect_json_error(&a, 415, how);
        answer_free(&a);
        post(&a, JSON_TYPE ACCEPT_HTML, "{\"text\": ", (enum body_split)split);
        expect_json_error(&a, 400, how);
        ck_assert_ptr_nonnull(strstr(a.r.body, "invalid JSON"));
        answer_free(&a);
        if (split != SPLIT_AFTER_CONTINUE) { /* refused before a 100 Continue */
            post(&a, JSON_TYPE ACCEPT_HTML, big, (enum body_split)split);
            expect_json_error(&a, 413, how);
            ck_assert_msg(strstr(a.r.body, "longer than 1024 bytes"), "%s: %s", how, a.r.body);
            answer_free(&a);
        }
        /* One line per request: three or four requests, as many lines. */
        ck_assert_int_eq(log_lines_with("request req-") - before,
                         split != SPLIT_AFTER_CONTINUE ? 4 : 3);
    }
    /* Announced too long, with 100-continue: 413 before any body. */
    int fd = client_connect(served.port);
    ck_assert_int_eq(client_send_str(fd, "POST /notes HTTP/1.1\r\nHost: t\r\n" JSON_TYPE ACCEPT_HTML
                                         "Content-Length: 2000\r\nExpect: 100-continue\r\n\r\n"),
                     0);
    read_answer(fd, &a, 0);
    expect_json_error(&a, 413, "100-continue, too long");
    answer_free(&a);
    close(fd);
    free(big);
    app_server_stop(&served);
}
END_TEST

/* ---- The same through the test client ----------------------------------------------- */

/* How the test client sends a body: delivery, piece size, chunked, with
   100-continue. */
typedef struct sending {
    const char *name;
    csgi_test_delivery delivery;
    size_t piece;
    int chunked, expect;
} sending;

static const sending ways[] = {
    {"at once", CSGI_TEST_DELIVERY_AT_ONCE, 0, 0, 0},
    {"late, a byte at a time", CSGI_TEST_DELIVERY_LATE, 1, 0, 0},
    {"late, chunked", CSGI_TEST_DELIVERY_LATE, 5, 1, 0},
    {"after 100-continue", CSGI_TEST_DELIVERY_LATE, 7, 0, 1},
};

static csgi_test_response *client_post(csgi_app *app, const sending *way, const char *type,
                                       const char *body)
{
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "POST", "/notes"), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Content-Type", type), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Accept", "text/html"), 0);
    if (way->expect)
        ck_assert_int_eq(csgi_test_request_add_header(request, "Expect", "100-continue"), 0);
    ck_assert_int_eq(csgi_test_request_set_body(request, body, strlen(body)), 0);
    ck_assert_int_eq(csgi_test_request_set_body_delivery(request, way->delivery, way->piece), 0);
    csgi_test_request_set_chunked(request, way->chunked);
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    csgi_test_request_free(request);
    return response;
}

/* One X-Request-Id, and one log line of the run naming it. */
static void expect_client_request_id(const csgi_test_response *response, const char *what)
{
    const char *id = csgi_test_response_header(response, "X-Request-Id");
    ck_assert_msg(id != NULL, "%s: no X-Request-Id", what);
    ck_assert_ptr_null(csgi_test_response_header_value(response, "X-Request-Id", 1));
    int lines = 0;
    for (size_t i = 0; i < csgi_test_response_log_count(response); i++)
        lines += strstr(csgi_test_response_log_at(response, i), "request req-") != NULL;
    ck_assert_msg(lines == 1, "%s: %d request lines", what, lines);
    char line[80];
    snprintf(line, sizeof(line), "request %s", id);
    ck_assert(csgi_test_response_log_contains(response, line));
}

static void expect_client_json_error(const csgi_test_response *response, int status,
                                     const char *what)
{
    ck_assert_msg(csgi_test_response_code(response) == status, "%s: %d, not %d", what,
                  csgi_test_response_code(response), status);
    ck_assert_str_eq(csgi_test_response_header(response, "Content-Type"), "application/json");
    json_t *value = json_loads(csgi_test_response_body(response, NULL), 0, NULL);
    ck_assert_msg(value && json_integer_value(json_object_get(value, "code")) == status, "%s: %s",
                  what, csgi_test_response_body(response, NULL));
    json_decref(value);
}

START_TEST(test_client_every_way)
{
    csgi_app *app = load_notes();
    char big[1100];
    snprintf(big, sizeof(big), "{\"text\": \"%01080d\"}", 0);
    for (size_t i = 0; i < sizeof(ways) / sizeof(ways[0]); i++) {
        const sending *way = &ways[i];
        csgi_test_response *response =
            client_post(app, way, "application/json", "{\"text\": \"by the test client\"}");
        ck_assert_msg(csgi_test_response_code(response) == 201, "%s: %d %s", way->name,
                      csgi_test_response_code(response), csgi_test_response_body(response, NULL));
        ck_assert_int_eq(csgi_test_response_continued(response), way->expect);
        expect_client_request_id(response, way->name);
        csgi_test_response_free(response);

        response = client_post(app, way, "application/json", "{\"title\": 1}");
        expect_client_json_error(response, 422, way->name);
        expect_client_request_id(response, way->name);
        csgi_test_response_free(response);
        response = client_post(app, way, "text/plain", "words");
        expect_client_json_error(response, 415, way->name);
        csgi_test_response_free(response);
        response = client_post(app, way, "application/json", "[1,");
        expect_client_json_error(response, 400, way->name);
        csgi_test_response_free(response);
        response = client_post(app, way, "application/json", big);
        expect_client_json_error(response, 413, way->name);
        /* Refused by its Content-Length: no 100 Continue, no body read. */
        ck_assert_int_eq(csgi_test_response_continued(response), 0);
        csgi_test_response_free(response);
    }
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_get(&response, app, "/notes/424242"), 0);
    expect_client_json_error(response, 404, "GET a missing note");
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

/* A filter that reads the body without asking for it to be gathered: it
   assumes the whole body is there when it runs, which holds only when the
   body came with the head. It refuses notes that shout. */
static csgi_response *no_shouting(csgi_request *request, csgi_app *next, void *userdata)
{
    (void)userdata;
    json_t *body;
    csgi_response *error;
    if (csgi_handler_json(request, 4096, &body, &error) != 0)
        return error ? error : csgi_handler_error(request, 500, "the body was not there");
    const char *text = json_string_value(json_object_get(body, "text"));
    if (text && strchr(text, '!'))
        return csgi_handler_error(request, 422, "no shouting");
    return csgi_handler_forward(request, next);
}

static csgi_app *shouting_filter(csgi_handler_body body)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(
        csgi_handler_filter(&app, "no-shouting", no_shouting, load_notes(), NULL, NULL), 0);
    csgi_handler_options options = CSGI_HANDLER_OPTIONS_INIT;
    options.body = body;
    ck_assert_int_eq(csgi_handler_set_options(app, &options), 0);
    return app;
}

START_TEST(a_filter_that_is_not_once_safe_is_caught)
{
    /* With the body at once, the careless filter seems to work... */
    csgi_app *careless = shouting_filter(CSGI_HANDLER_BODY_DEFAULT);
    csgi_test_response *response =
        client_post(careless, &ways[0], "application/json", "{\"text\": \"calm\"}");
    ck_assert_int_eq(csgi_test_response_code(response), 201);
    csgi_test_response_free(response);
    /* ...and sent late, as the network does, it fails: caught. */
    for (size_t i = 1; i < sizeof(ways) / sizeof(ways[0]); i++) {
        response = client_post(careless, &ways[i], "application/json", "{\"text\": \"calm\"}");
        ck_assert_msg(csgi_test_response_code(response) == 500, "%s: %d", ways[i].name,
                      csgi_test_response_code(response));
        csgi_test_response_free(response);
    }
    csgi_app_free(careless);

    /* Asking for the body (CSGI_HANDLER_BODY_GATHER) makes it right every way. */
    csgi_app *careful = shouting_filter(CSGI_HANDLER_BODY_GATHER);
    for (size_t i = 0; i < sizeof(ways) / sizeof(ways[0]); i++) {
        response = client_post(careful, &ways[i], "application/json", "{\"text\": \"calm\"}");
        ck_assert_msg(csgi_test_response_code(response) == 201, "%s: %d", ways[i].name,
                      csgi_test_response_code(response));
        csgi_test_response_free(response);
        response = client_post(careful, &ways[i], "application/json", "{\"text\": \"hey!\"}");
        ck_assert_int_eq(csgi_test_response_code(response), 422);
        csgi_test_response_free(response);
    }
    csgi_app_free(careful);
}
END_TEST

static Suite *notes_suite(void)
{
    Suite *suite = suite_create("notes");
    TCase *tc = tcase_create("sockets");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, create_show_delete_every_split);
    tcase_add_test(tc, errors_are_json_every_split);
    suite_add_tcase(suite, tc);
    TCase *client = tcase_create("test client");
    tcase_add_test(client, test_client_every_way);
    tcase_add_test(client, a_filter_that_is_not_once_safe_is_caught);
    suite_add_tcase(suite, client);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(notes_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
