/*
 * The examples of docs/request-response.md, each followed by the tests
 * that check what the page says it does. The docs_example test checks that
 * every C block of the page is in this file as it is here. Public API only,
 * plus the test helpers (test_files.h, test_trickle.h).
 */
#include <csgi.h>
#include <csgi/json.h>

#include "test_files.h"
#include "test_trickle.h"

#include <check.h>
#include <jansson.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Running requests ------------------------------------------------------------ */

/* Run method url through app, with header name/value pairs up to a NULL
   name, then the body (NULL for none) and its length; the response must
   come back. */
static csgi_test_response *run(csgi_app *app, const char *method, const char *url, const void *body,
                               size_t len, ...)
{
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, method, url), 0);
    va_list args;
    va_start(args, len);
    const char *name;
    while ((name = va_arg(args, const char *))) {
        const char *value = va_arg(args, const char *);
        if (strcmp(name, "environ:SCRIPT_NAME") == 0 || strcmp(name, "environ:PATH_INFO") == 0)
            ck_assert_int_eq(csgi_test_request_set_environ(request, name + 8, value), 0);
        else
            ck_assert_int_eq(csgi_test_request_add_header(request, name, value), 0);
    }
    va_end(args);
    if (body)
        ck_assert_int_eq(csgi_test_request_set_body(request, body, len), 0);
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    csgi_test_request_free(request);
    return response;
}

/* A POST of a string body. */
static csgi_test_response *post(csgi_app *app, const char *url, const char *body, const char *type)
{
    return run(app, "POST", url, body, strlen(body), "Content-Type", type, NULL);
}

static const char *body_of(const csgi_test_response *response)
{
    return csgi_test_response_body(response, NULL);
}

static csgi_app *app_of(csgi_handler_fn handler, void *userdata)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_handler_app(&app, "docs", handler, userdata, NULL), 0);
    return app;
}

/* A handler's application that streams its body (CSGI_HANDLER_BODY_STREAM). */
static csgi_app *streaming_app_of(csgi_handler_fn handler, void *userdata)
{
    csgi_app *app = app_of(handler, userdata);
    csgi_handler_options options = CSGI_HANDLER_OPTIONS_INIT;
    options.body = CSGI_HANDLER_BODY_STREAM;
    ck_assert_int_eq(csgi_handler_set_options(app, &options), 0);
    return app;
}

/* app behind a body that arrives piece bytes at a time. */
static csgi_app *trickled(csgi_app *app, size_t piece)
{
    csgi_app *slow = NULL;
    ck_assert_int_eq(test_trickle_new(&slow, app, piece), 0);
    test_trickle_reset();
    return slow;
}

/* A JSON response's value equals the JSON text expected. */
static void assert_json(const csgi_test_response *response, const char *expected)
{
    json_t *got = json_loads(body_of(response), 0, NULL);
    json_t *want = json_loads(expected, 0, NULL);
    ck_assert_ptr_nonnull(want);
    ck_assert_msg(got && json_equal(got, want), "%s is not %s", body_of(response), expected);
    json_decref(got);
    json_decref(want);
}

/* n bytes of text: lines of "line\n". */
static char *text_of_size(size_t n)
{
    char *text = malloc(n + 1);
    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < n; i++)
        text[i] = "line\n"[i % 5];
    text[n] = '\0';
    return text;
}

/* A JSON string value of n bytes in all: "\"xxx...\"". */
static char *json_of_size(size_t n)
{
    char *text = malloc(n + 1);
    ck_assert_ptr_nonnull(text);
    memset(text, 'x', n);
    text[0] = text[n - 1] = '"';
    text[n] = '\0';
    return text;
}

/* How many files a directory holds. */
static int files_in(const char *path)
{
    DIR *dir = opendir(path);
    ck_assert_ptr_nonnull(dir);
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)))
        n += entry->d_name[0] != '.';
    closedir(dir);
    return n;
}

/* A new empty directory in the test's temporary directory. */
static const char *empty_dir(const char *name)
{
    const char *path = test_tmp_path(name);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    return path;
}

/* A 200 with text, for the tests' own handlers. */
static csgi_response *text_answer(csgi_request *request, const char *text)
{
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_text(response, text, NULL) != 0)
        return NULL;
    return response;
}

/* Calls of the handlers the tests watch, and what they saw. */
static int calls;
static size_t delivered_at_call; /* trickled bytes when the handler was called */
static int files_at_call;        /* files in watched_dir then */
static const char *watched_dir;

static void watch(void)
{
    calls++;
    delivered_at_call = test_trickle_delivered();
    files_at_call = watched_dir ? files_in(watched_dir) : 0;
}

/* ---- Handlers ---------------------------------------------------------------------- */

static csgi_response *hello(csgi_request *request, void *userdata)
{
    (void)userdata;
    csgi_response *response = csgi_handler_response(request); /* 200 OK, no body */
    if (!response || csgi_response_set_text(response, "Hello World\n", "utf-8") != 0)
        return NULL; /* out of memory: the client gets a 500 */
    return response;
}

START_TEST(hello_says_hello)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_handler_app(&app, "hello", hello, NULL, NULL), 0);
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_get(&response, app, "/"), 0);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(csgi_test_response_header(response, "Content-Type"),
                     "text/plain; charset=utf-8");
    ck_assert_str_eq(csgi_test_response_body(response, NULL), "Hello World\n");
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

START_TEST(hello_to_head)
{
    /* HEAD: no body, the Content-Length a GET would get. */
    csgi_app *app = app_of(hello, NULL);
    csgi_test_response *response = run(app, "HEAD", "/", NULL, 0, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "");
    ck_assert_str_eq(csgi_test_response_header(response, "Content-Length"), "12");
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

/* POST {"name": "..."}: 201 with the image as stored. */
static csgi_response *create_image(csgi_request *request, void *userdata)
{
    (void)userdata;
    json_t *image;
    csgi_response *error;
    if (csgi_handler_json(request, 64 * 1024, &image, &error) != 0)
        return error; /* 400 or 413, ready to send; NULL when memory ran out */
    if (!json_is_string(json_object_get(image, "name")))
        return csgi_handler_error(request, 422, "an image needs a \"name\" string");
    /* ... store it ... */
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_status(response, 201) != 0 ||
        csgi_response_set_json(response, json_incref(image)) != 0)
        return NULL;
    return response;
}

static csgi_response *watched_create_image(csgi_request *request, void *userdata)
{
    watch();
    return create_image(request, userdata);
}

START_TEST(create_image_answers)
{
    csgi_app *app = app_of(create_image, NULL);
    csgi_test_response *response = post(app, "/", "{\"name\": \"cat\"}", "application/json");
    ck_assert_int_eq(csgi_test_response_code(response), 201);
    ck_assert_str_eq(csgi_test_response_header(response, "Content-Type"), "application/json");
    assert_json(response, "{\"name\": \"cat\"}");
    csgi_test_response_free(response);

    response = post(app, "/", "{\"name\": cat}", "application/json");
    ck_assert_int_eq(csgi_test_response_code(response), 400);
    ck_assert_msg(strstr(body_of(response), "invalid JSON at line 1, column 12 (byte 12)"), "%s",
                  body_of(response));
    csgi_test_response_free(response);

    response = post(app, "/", "{\"size\": 3}", "application/json");
    ck_assert_int_eq(csgi_test_response_code(response), 422);
    csgi_test_response_free(response);

    /* 70 KB: the handler's own limit. */
    char *big = json_of_size(70000);
    response = post(app, "/", big, "application/json");
    ck_assert_int_eq(csgi_test_response_code(response), 413);
    ck_assert_msg(strstr(body_of(response), "the body is longer than 65536 bytes"), "%s",
                  body_of(response));
    csgi_test_response_free(response);
    free(big);
    csgi_app_free(app);
}
END_TEST

START_TEST(create_image_body_gathered)
{
    /* 2 MiB: the adapter refuses it; the handler never runs. */
    csgi_app *app = app_of(watched_create_image, NULL);
    calls = 0;
    char *huge = json_of_size(2 * 1024 * 1024);
    csgi_test_response *response = post(app, "/", huge, "application/json");
    ck_assert_int_eq(csgi_test_response_code(response), 413);
    ck_assert_msg(strstr(body_of(response), "the body is longer than 1048576 bytes"), "%s",
                  body_of(response));
    ck_assert_int_eq(calls, 0);
    csgi_test_response_free(response);
    free(huge);

    /* Ten bytes at a time: one call, with the whole body. */
    app = trickled(app, 10);
    calls = 0;
    const char *image = "{\"name\": \"a cat on a mat\", \"tags\": [\"cat\", \"mat\"]}";
    response = post(app, "/", image, "application/json");
    ck_assert_int_eq(csgi_test_response_code(response), 201);
    assert_json(response, image);
    ck_assert_int_eq(calls, 1);
    ck_assert_uint_eq(delivered_at_call, strlen(image));
    ck_assert_int_ge(test_trickle_waits(), 5);
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

/* Copies the body to where uploads are kept; answers how long it was. */
static csgi_response *upload(csgi_request *request, void *userdata)
{
    (void)userdata;
    csgi_input *input = csgi_environ_input(csgi_request_environ(request));
    char buffer[8192];
    unsigned long long total = 0;
    long n;
    while ((n = csgi_input_read(input, buffer, sizeof(buffer))) > 0)
        total += (unsigned long long)n; /* ... write the n bytes somewhere ... */
    if (n < 0)
        return NULL; /* never CSGI_EAGAIN here: the body is all there */
    char text[64];
    snprintf(text, sizeof(text), "stored %llu bytes\n", total);
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_text(response, text, NULL) != 0)
        return NULL;
    return response;
}

/* An upload handler's application: bodies up to 100 MiB, in memory up to
   64 KiB and in temp_dir past that. */
static csgi_app *upload_app(csgi_handler_fn handler, const char *temp_dir)
{
    csgi_app *app = NULL;
    if (csgi_handler_app(&app, "upload", handler, NULL, NULL) != 0)
        return NULL;
    csgi_handler_options options = CSGI_HANDLER_OPTIONS_INIT;
    options.max_body = 100 * 1024 * 1024;
    options.body_buffer_size = 64 * 1024;
    options.body_temp_dir = temp_dir; /* copied */
    if (csgi_handler_set_options(app, &options) != 0) {
        csgi_app_free(app);
        return NULL;
    }
    return app;
}

static csgi_response *watched_upload(csgi_request *request, void *userdata)
{
    watch();
    return upload(request, userdata);
}

START_TEST(upload_app_spills_and_cleans)
{
    watched_dir = empty_dir("uploads");
    csgi_app *app = upload_app(watched_upload, watched_dir);
    ck_assert_ptr_nonnull(app);

    /* 2 MiB, over the default 1 MiB: in a file while the handler runs. */
    char *body = text_of_size(2 * 1024 * 1024);
    csgi_test_response *response = post(app, "/", body, "text/plain");
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "stored 2097152 bytes\n");
    ck_assert_int_eq(files_at_call, 1);
    ck_assert_int_eq(files_in(watched_dir), 0);
    csgi_test_response_free(response);

    /* Under 64 KiB: in memory. */
    body[60000] = '\0';
    response = post(app, "/", body, "text/plain");
    ck_assert_str_eq(body_of(response), "stored 60000 bytes\n");
    ck_assert_int_eq(files_at_call, 0);
    csgi_test_response_free(response);
    free(body);
    csgi_app_free(app);
    watched_dir = NULL;
}
END_TEST

/* Counts the lines of a body of any length without keeping it. */
typedef struct line_count {
    unsigned long long lines;
    unsigned long long bytes;
} line_count;

static int count_data(void *state, csgi_request *request, const void *data, size_t len)
{
    (void)request;
    line_count *count = state;
    const char *bytes = data;
    for (size_t i = 0; i < len; i++)
        count->lines += bytes[i] == '\n';
    count->bytes += len;
    return 0; /* go on; another value stops reading and is end's result */
}

static csgi_response *count_end(void *state, csgi_request *request, int result)
{
    line_count *count = state;
    if (result == CSGI_ETOOBIG) /* over max_body, or the server's limit */
        return csgi_handler_error(request, 413, NULL);
    if (result != 0) /* malformed chunked framing, a timeout */
        return csgi_handler_error(request, 400, csgi_strerror(result));
    char text[80];
    snprintf(text, sizeof(text), "%llu lines, %llu bytes\n", count->lines, count->bytes);
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_text(response, text, NULL) != 0)
        return NULL;
    return response;
}

static const csgi_body_reader_type line_counter = {"line-count", count_data, count_end};

static csgi_response *count_lines(csgi_request *request, void *userdata)
{
    (void)userdata;
    /* State for this request only, in its arena: zeroed, freed when it ends. */
    line_count *count = csgi_environ_alloc_zeroed(csgi_request_environ(request), sizeof(*count));
    if (!count)
        return NULL;
    return csgi_handler_read_body(request, &line_counter, count);
}

static csgi_response *watched_count_lines(csgi_request *request, void *userdata)
{
    watch();
    return count_lines(request, userdata);
}

START_TEST(count_lines_streams)
{
    csgi_app *app = streaming_app_of(count_lines, NULL);
    csgi_test_response *response = post(app, "/", "a\nb\nc\n", "text/plain");
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "3 lines, 6 bytes\n");
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* Seven bytes at a time: called before any byte arrived, once. */
    app = trickled(streaming_app_of(watched_count_lines, NULL), 7);
    calls = 0;
    char *body = text_of_size(1000);
    response = post(app, "/", body, "text/plain");
    ck_assert_str_eq(body_of(response), "200 lines, 1000 bytes\n");
    ck_assert_int_eq(calls, 1);
    ck_assert_uint_eq(delivered_at_call, 0);
    ck_assert_int_ge(test_trickle_waits(), 100);
    csgi_test_response_free(response);
    free(body);
    csgi_app_free(app);

    /* The handler's max_body holds for a body it streams too. */
    app = streaming_app_of(count_lines, NULL);
    csgi_handler_options options = CSGI_HANDLER_OPTIONS_INIT;
    options.body = CSGI_HANDLER_BODY_STREAM;
    options.max_body = 10;
    ck_assert_int_eq(csgi_handler_set_options(app, &options), 0);
    response = post(app, "/", "one\ntwo\nthree\nfour\n", "text/plain");
    ck_assert_int_eq(csgi_test_response_code(response), 413);
    csgi_test_response_free(response);
    options.max_body = 19;
    ck_assert_int_eq(csgi_handler_set_options(app, &options), 0);
    response = post(app, "/", "one\ntwo\nthree\nfour\n", "text/plain");
    ck_assert_str_eq(body_of(response), "4 lines, 19 bytes\n");
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

CSGI_HANDLER_APP_FACTORY(upload_factory, upload, NULL)
CSGI_HANDLER_APP_FACTORY(count_lines_factory, count_lines, NULL)

static csgi_loader *docs_loader(void)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:docs#upload", CSGI_FACTORY_APP, upload_factory), 0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:docs#count_lines", CSGI_FACTORY_APP,
                                              count_lines_factory),
                     0);
    return loader;
}

static const char *handlers_ini(void)
{
    static char path[4096];
    snprintf(path, sizeof(path), "%s/docs/handlers.ini", test_testdata_dir());
    return path;
}

START_TEST(handlers_from_ini)
{
    csgi_loader *loader = docs_loader();
    const char *dir = empty_dir("spool");
    ck_assert_int_eq(csgi_loader_set_global(loader, "upload_dir", dir), 0);
    csgi_app *app = NULL;
    csgi_load_error error;
    ck_assert_int_eq(csgi_loader_load_app(&app, loader, handlers_ini(), &error), 0);

    /* max_body = 104857600: 2 MiB is taken. */
    char *body = text_of_size(2 * 1024 * 1024);
    csgi_test_response *response = post(app, "/upload", body, "text/plain");
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "stored 2097152 bytes\n");
    csgi_test_response_free(response);
    ck_assert_int_eq(files_in(dir), 0);

    response = post(app, "/count", "a\nb\n", "text/plain");
    ck_assert_str_eq(body_of(response), "2 lines, 4 bytes\n");
    csgi_test_response_free(response);
    csgi_app_free(app);
    csgi_loader_free(loader);

    /* body_temp_dir comes from upload_dir, which the caller's global sets. */
    loader = docs_loader();
    ck_assert_int_eq(csgi_loader_set_global(loader, "upload_dir", "/nonexistent/spool"), 0);
    ck_assert_int_eq(csgi_loader_load_app(&app, loader, handlers_ini(), &error), 0);
    response = post(app, "/upload", body, "text/plain");
    ck_assert_int_eq(csgi_test_response_code(response), 500);
    ck_assert(csgi_test_response_log_contains(
        response, "cannot make a file for the request body in /nonexistent/spool"));
    csgi_test_response_free(response);
    csgi_app_free(app);
    csgi_loader_free(loader);
    free(body);
}
END_TEST

START_TEST(handler_keys_checked)
{
    static const char *const bad[][2] = {
        {"body_mode = sideways", ":3: [app:main] body_mode: must be gather, stream or default"},
        {"client_max_body_size = -5",
         ":3: [app:main] client_max_body_size: must be a size in bytes"},
    };
    for (size_t i = 0; i < 2; i++) {
        char text[256];
        snprintf(text, sizeof(text), "[app:main]\nuse = egg:docs#upload\n%s\n", bad[i][0]);
        const char *path = test_write_file("bad.ini", text);
        csgi_loader *loader = docs_loader();
        csgi_app *app = NULL;
        csgi_load_error error;
        ck_assert_int_ne(csgi_loader_load_app(&app, loader, path, &error), 0);
        char message[1200];
        csgi_load_error_format(&error, message, sizeof(message));
        ck_assert_msg(strstr(message, bad[i][1]) && strstr(message, path), "%s", message);
        csgi_loader_free(loader);
    }
}
END_TEST

/* ---- Requests ------------------------------------------------------------------------ */

/* The values of the request line table. */
static csgi_response *request_line(csgi_request *request, void *userdata)
{
    (void)userdata;
    char text[512];
    snprintf(text, sizeof(text), "%s|%s|%s|%s|%s|%s|%s|%s|%lld", csgi_request_method(request),
             csgi_request_scheme(request), csgi_request_path_info(request, NULL),
             csgi_request_script_name(request, NULL), csgi_request_query_string(request),
             csgi_request_remote_addr(request), csgi_request_content_type(request),
             csgi_request_charset(request), (long long)csgi_request_content_length(request));
    return text_answer(request, text);
}

START_TEST(request_line_table)
{
    csgi_app *app = app_of(request_line, NULL);
    char *body = text_of_size(1234);
    csgi_test_request *request = NULL;
    ck_assert_int_eq(
        csgi_test_request_new(&request, "POST", "https://example.com/api/users/7?page=2&q=a+b"), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Content-Type",
                                                  "Multipart/Form-Data; charset=UTF-8; boundary=b"),
                     0);
    ck_assert_int_eq(csgi_test_request_set_body(request, body, 1234), 0);
    ck_assert_int_eq(csgi_test_request_set_remote(request, "192.0.2.7", 40000), 0);
    ck_assert_int_eq(csgi_test_request_set_environ(request, "SCRIPT_NAME", "/api"), 0);
    ck_assert_int_eq(csgi_test_request_set_environ(request, "PATH_INFO", "/users/7"), 0);
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    ck_assert_str_eq(body_of(response), "POST|https|/users/7|/api|page=2&q=a+b|192.0.2.7|"
                                        "multipart/form-data|UTF-8|1234");
    csgi_test_response_free(response);
    csgi_test_request_free(request);
    free(body);
    csgi_app_free(app);
}
END_TEST

static csgi_response *whoami(csgi_request *request, void *userdata)
{
    (void)userdata;
    const char *token = csgi_request_header(request, "X-Auth-Token", NULL);
    if (!token)
        return csgi_handler_error(request, 401, "token required");
    char text[256];
    snprintf(text, sizeof(text), "%s %s with token %s\n", csgi_request_method(request),
             csgi_request_path_info(request, NULL), token);
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_text(response, text, NULL) != 0)
        return NULL;
    return response;
}

START_TEST(whoami_reads_headers)
{
    csgi_app *app = app_of(whoami, NULL);
    csgi_test_response *response = run(app, "GET", "/me", NULL, 0, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 401);
    csgi_test_response_free(response);

    response = run(app, "GET", "/me", NULL, 0, "x-auth-token", "abc", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "GET /me with token abc\n");
    csgi_test_response_free(response);

    /* Dropped by the server: an underscore in the name. */
    response = run(app, "GET", "/me", NULL, 0, "X-Auth_Token", "abc", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 401);
    csgi_test_response_free(response);

    /* Repeated: joined. */
    response = run(app, "GET", "/me", NULL, 0, "X-Auth-Token", "a", "X-Auth-Token", "b", NULL);
    ck_assert_str_eq(body_of(response), "GET /me with token a, b\n");
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

/* The values of the URL table. */
static csgi_response *urls(csgi_request *request, void *userdata)
{
    (void)userdata;
    char text[1024];
    snprintf(text, sizeof(text), "%s %s %s %s %s", csgi_request_host(request),
             csgi_request_host_url(request), csgi_request_application_url(request),
             csgi_request_path_url(request), csgi_request_url(request));
    return text_answer(request, text);
}

START_TEST(url_table)
{
    csgi_app *app = app_of(urls, NULL);
    csgi_test_response *response =
        run(app, "GET", "https://example.com:8443/api/caf%C3%A9?page=2", NULL, 0,
            "environ:SCRIPT_NAME", "/api", "environ:PATH_INFO", "/caf\xc3\xa9", NULL);
    ck_assert_str_eq(body_of(response),
                     "example.com:8443 https://example.com:8443 https://example.com:8443/api "
                     "https://example.com:8443/api/caf%C3%A9 "
                     "https://example.com:8443/api/caf%C3%A9?page=2");
    csgi_test_response_free(response);

    /* A default port is left out, even when the client wrote it. */
    response = run(app, "GET", "/", NULL, 0, "Host", "example.com:80", NULL);
    ck_assert_str_eq(body_of(response), "example.com:80 http://example.com http://example.com "
                                        "http://example.com/ http://example.com/");
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

/* POST to a collection: 201 with the new member's absolute URL. */
static csgi_response *create_member(csgi_request *request, void *userdata)
{
    (void)userdata;
    const char *id = "42"; /* ... the id the new member got ... */
    char location[1024];
    snprintf(location, sizeof(location), "%s/%s", csgi_request_path_url(request), id);
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_status(response, 201) != 0 ||
        csgi_response_set_location(response, location) != 0)
        return NULL;
    return response;
}

START_TEST(create_member_location)
{
    csgi_app *app = app_of(create_member, NULL);
    csgi_test_response *response =
        run(app, "POST", "https://example.com:8443/api/images", "", 0, "environ:SCRIPT_NAME",
            "/api", "environ:PATH_INFO", "/images", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 201);
    ck_assert_str_eq(csgi_test_response_header(response, "Location"),
                     "https://example.com:8443/api/images/42");
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

/* The pop table, one row per request. */
static csgi_response *pop_row(csgi_request *request, void *userdata)
{
    (void)userdata;
    const char *segment = NULL;
    int rc = csgi_request_path_info_pop(request, &segment, NULL);
    char text[256];
    snprintf(text, sizeof(text), "%d %s %s %s", rc, segment ? segment : "NULL",
             csgi_request_script_name(request, NULL), csgi_request_path_info(request, NULL));
    return text_answer(request, text);
}

START_TEST(path_info_pop_table)
{
    static const char *const rows[][3] = {
        {"", "/users/7", "1 users /users /7"},
        {"/users", "//7", "1 7 /users//7 "},
        {"/a", "/", "1  /a/ "},
        {"/a", "", "0 NULL /a "},
    };
    csgi_app *app = app_of(pop_row, NULL);
    for (size_t i = 0; i < 4; i++) {
        csgi_test_response *response = run(app, "GET", "/", NULL, 0, "environ:SCRIPT_NAME",
                                           rows[i][0], "environ:PATH_INFO", rows[i][1], NULL);
        ck_assert_str_eq(body_of(response), rows[i][2]);
        csgi_test_response_free(response);
    }
    csgi_app_free(app);
}
END_TEST

typedef struct sections {
    csgi_app *index;
    csgi_app *users;
} sections;

static csgi_response *dispatch(csgi_request *request, void *userdata)
{
    sections *to = userdata;
    const char *segment;
    int rc = csgi_request_path_info_pop(request, &segment, NULL);
    if (rc < 0)
        return NULL;
    if (rc == 0 || *segment == '\0')
        return csgi_handler_forward(request, to->index);
    if (strcmp(segment, "users") == 0)
        return csgi_handler_forward(request, to->users); /* sees PATH_INFO "/7" */
    return csgi_handler_error(request, 404, "no such page");
}

/* Where the request went: the application's name, SCRIPT_NAME, PATH_INFO,
   the application URL and the body's length. */
static csgi_response *where(csgi_request *request, void *userdata)
{
    watch();
    const char *body;
    size_t len;
    if (csgi_request_body(request, 1 << 20, &body, &len) != 0)
        return NULL;
    char text[512];
    snprintf(text, sizeof(text), "%s %s %s %s %zu", (const char *)userdata,
             csgi_request_script_name(request, NULL), csgi_request_path_info(request, NULL),
             csgi_request_application_url(request), len);
    return text_answer(request, text);
}

static size_t delivered_at_dispatch;

static csgi_response *watched_dispatch(csgi_request *request, void *userdata)
{
    delivered_at_dispatch = test_trickle_delivered();
    return dispatch(request, userdata);
}

START_TEST(dispatch_pops)
{
    sections to = {app_of(where, (void *)"index"), app_of(where, (void *)"users")};
    csgi_app *app = streaming_app_of(dispatch, &to);
    csgi_test_response *response = run(app, "GET", "/users/7", NULL, 0, NULL);
    ck_assert_str_eq(body_of(response), "users /users /7 http://localhost/users 0");
    csgi_test_response_free(response);
    response = run(app, "GET", "/", NULL, 0, NULL);
    ck_assert_str_eq(body_of(response), "index /  http://localhost/ 0");
    csgi_test_response_free(response);
    response = run(app, "GET", "/elsewhere", NULL, 0, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 404);
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* Streaming, the dispatcher runs at the head; the body goes to users,
       which gathers it. */
    app = trickled(streaming_app_of(watched_dispatch, &to), 100);
    calls = 0;
    char *body = text_of_size(5000);
    response = post(app, "/users/7", body, "text/plain");
    ck_assert_str_eq(body_of(response), "users /users /7 http://localhost/users 5000");
    ck_assert_uint_eq(delivered_at_dispatch, 0);
    ck_assert_uint_eq(delivered_at_call, 5000);
    ck_assert_int_eq(calls, 1);
    csgi_test_response_free(response);
    free(body);
    csgi_app_free(app);
    csgi_app_free(to.index);
    csgi_app_free(to.users);
}
END_TEST

/* ?page=2&tag=a&tag=b: {"page": "2", "tags": ["a", "b"], "parameters": 3} */
static csgi_response *search(csgi_request *request, void *userdata)
{
    (void)userdata;
    const csgi_params *query;
    csgi_request_error error;
    int rc = csgi_request_query(request, &query, &error);
    if (rc == CSGI_ETOOBIG || rc == CSGI_EPARSE)
        return csgi_handler_error(request, 400, error.text);
    if (rc != 0)
        return NULL;
    const char *page = csgi_params_get(query, "page", NULL); /* the first value, or NULL */
    json_t *tags = json_array();
    size_t cursor = 0;
    const csgi_param *tag;
    while ((tag = csgi_params_find(query, "tag", &cursor))) /* every value of a name */
        json_array_append_new(tags, json_stringn(tag->value, tag->value_len));
    json_t *answer = json_pack("{s:o?, s:o, s:I}", "page", page ? json_string(page) : NULL, "tags",
                               tags, "parameters", (json_int_t)csgi_params_count(query));
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_json(response, answer) != 0)
        return NULL;
    return response;
}

START_TEST(search_reads_the_query)
{
    csgi_app *app = app_of(search, NULL);
    csgi_test_response *response = run(app, "GET", "/?page=2&tag=a&tag=b", NULL, 0, NULL);
    assert_json(response, "{\"page\": \"2\", \"tags\": [\"a\", \"b\"], \"parameters\": 3}");
    csgi_test_response_free(response);
    /* ';' is data; empty pairs are skipped; '+' and %XX decode; a malformed
       escape stays. */
    response = run(app, "GET", "/?tag=1;b=2&&tag=a+b%21&tag=%zz&", NULL, 0, NULL);
    assert_json(response, "{\"page\": null, \"tags\": [\"1;b=2\", \"a b!\", \"%zz\"], "
                          "\"parameters\": 3}");
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

/* {"session": the session cookie or null, "names": every cookie's name} */
static csgi_response *cookie_names(csgi_request *request, void *userdata)
{
    (void)userdata;
    const char *session = csgi_request_cookie(request, "session", NULL);
    const csgi_params *cookies;
    if (csgi_request_cookies(request, &cookies) != 0)
        return csgi_handler_error(request, 400, "too many cookies");
    json_t *names = json_array();
    for (size_t i = 0; i < csgi_params_count(cookies); i++)
        json_array_append_new(names, json_string(csgi_params_at(cookies, i)->name));
    csgi_response *response = csgi_handler_response(request);
    json_t *answer =
        json_pack("{s:o?, s:o}", "session", session ? json_string(session) : NULL, "names", names);
    if (!response || csgi_response_set_json(response, answer) != 0)
        return NULL;
    return response;
}

START_TEST(cookie_names_tolerant)
{
    csgi_app *app = app_of(cookie_names, NULL);
    csgi_test_response *response = run(app, "GET", "/", NULL, 0, "Cookie",
                                       "a=1; session=\"%20abc\"; bad name=x; c; b=2", NULL);
    assert_json(response, "{\"session\": \"%20abc\", \"names\": [\"a\", \"session\", \"b\"]}");
    csgi_test_response_free(response);
    response = run(app, "GET", "/", NULL, 0, NULL);
    assert_json(response, "{\"session\": null, \"names\": []}");
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

static csgi_response *post_photo(csgi_request *request, void *userdata)
{
    (void)userdata;
    const csgi_params *form;
    csgi_request_error error;
    int rc = csgi_request_form(request, &form, &error);
    if (rc == CSGI_EPARSE)
        return csgi_handler_error(request, 400, error.text);
    if (rc == CSGI_ETOOBIG)
        return csgi_handler_error(request, 413, error.text);
    if (rc != 0)
        return NULL;
    const char *title = csgi_params_get(form, "title", NULL);
    const csgi_form_file *photo = csgi_request_file(request, "photo");
    if (!title || !photo)
        return csgi_handler_error(request, 422, "send a title and a photo");
    /* photo->filename is what the client sent: never use it as a path. */
    char buf[8192];
    unsigned long long offset = 0;
    long n;
    while ((n = csgi_form_file_read(photo, offset, buf, sizeof(buf))) > 0)
        offset += (unsigned long long)n; /* ... store the n bytes ... */
    if (n < 0)
        return NULL;
    char text[256];
    snprintf(text, sizeof(text), "%s: %llu bytes of %s\n", title, offset, photo->content_type);
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_text(response, text, NULL) != 0)
        return NULL;
    return response;
}

/* A multipart body: a title field and a photo of size bytes. */
static char *photo_form(const char *title, size_t size, size_t *len)
{
    static const char head[] = "--b\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n%s\r\n"
                               "--b\r\nContent-Disposition: form-data; name=\"photo\"; "
                               "filename=\"cat.png\"\r\nContent-Type: image/png\r\n\r\n";
    char *body = malloc(sizeof(head) + strlen(title) + size + 16);
    ck_assert_ptr_nonnull(body);
    int n = sprintf(body, head, title);
    memset(body + n, 'p', size);
    n += (int)size;
    n += sprintf(body + n, "\r\n--b--\r\n");
    *len = (size_t)n;
    return body;
}

static csgi_test_response *post_form(csgi_app *app, const char *body, size_t len)
{
    return run(app, "POST", "/", body, len, "Content-Type", "multipart/form-data; boundary=b",
               NULL);
}

START_TEST(post_photo_reads_the_form)
{
    csgi_app *app = app_of(post_photo, NULL);
    size_t len;
    char *body = photo_form("Cat", 5, &len);
    csgi_test_response *response = post_form(app, body, len);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "Cat: 5 bytes of image/png\n");
    csgi_test_response_free(response);
    free(body);

    /* Over spool_threshold: in a temporary file, read the same way. */
    body = photo_form("Big cat", 100000, &len);
    response = post_form(app, body, len);
    ck_assert_str_eq(body_of(response), "Big cat: 100000 bytes of image/png\n");
    csgi_test_response_free(response);

    /* No closing boundary: 400. */
    response = post_form(app, body, len - 8);
    ck_assert_int_eq(csgi_test_response_code(response), 400);
    csgi_test_response_free(response);
    free(body);

    response = post(app, "/", "title=Cat", "application/x-www-form-urlencoded");
    ck_assert_int_eq(csgi_test_response_code(response), 422);
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

/* Videos: the photo handler with files up to 100 MiB spooled to
   userdata's directory, and at most 10 fields. */
static csgi_response *post_video(csgi_request *request, void *userdata)
{
    csgi_form_limits limits = CSGI_FORM_LIMITS_INIT;
    limits.max_fields = 10;
    limits.max_file_size = 100 * 1024 * 1024;
    limits.spool_dir = userdata;
    if (csgi_request_set_limits(request, &limits) != 0)
        return NULL;
    return post_photo(request, NULL);
}

START_TEST(post_video_limits)
{
    const char *spool = empty_dir("videos");
    csgi_app *app = app_of(post_video, (void *)spool);
    csgi_test_response *response = post(app, "/", "a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11",
                                        "application/x-www-form-urlencoded");
    ck_assert_int_eq(csgi_test_response_code(response), 413);
    csgi_test_response_free(response);
    size_t len;
    char *body = photo_form("Film", 100000, &len);
    response = post_form(app, body, len);
    ck_assert_str_eq(body_of(response), "Film: 100000 bytes of image/png\n");
    csgi_test_response_free(response);
    csgi_app_free(app);

    /* The spool directory is the one given. */
    app = app_of(post_video, (void *)"/nonexistent/videos");
    response = post_form(app, body, len);
    ck_assert_int_eq(csgi_test_response_code(response), 500);
    csgi_test_response_free(response);
    free(body);
    csgi_app_free(app);
}
END_TEST

/* The body back, when it is UTF-8 text of at most 64 KiB. */
static csgi_response *echo(csgi_request *request, void *userdata)
{
    (void)userdata;
    const char *body;
    size_t len;
    int rc = csgi_request_body(request, 64 * 1024, &body, &len);
    if (rc == CSGI_ETOOBIG)
        return csgi_handler_error(request, 413, NULL);
    if (rc != 0)
        return NULL;
    if (!csgi_request_text_is_utf8(body, len))
        return csgi_handler_error(request, 400, "the body is not UTF-8");
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_body(response, body, len) != 0 ||
        csgi_response_set_content_type(response, "text/plain", "utf-8") != 0)
        return NULL;
    return response;
}

/* The type of the JSON value posted: "object", "array", "string"... */
static csgi_response *value_type(csgi_request *request, void *userdata)
{
    (void)userdata;
    const char *type = csgi_request_content_type(request);
    if (!type || strcmp(type, "application/json") != 0)
        return csgi_handler_error(request, 415, "send application/json");
    json_t *value;
    csgi_request_error error;
    int rc = csgi_request_json(request, 64 * 1024, &value, &error);
    if (rc == CSGI_ETOOBIG)
        return csgi_handler_error(request, 413, error.text);
    if (rc == CSGI_EPARSE) {
        char text[256];
        snprintf(text, sizeof(text), "line %d, column %d: %s", error.line, error.column,
                 error.text);
        return csgi_handler_error(request, 400, text);
    }
    if (rc != 0)
        return NULL;
    static const char *const names[] = {"object", "array", "string", "number",
                                        "number", "true",  "false",  "null"};
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_text(response, names[json_typeof(value)], NULL) != 0)
        return NULL;
    return response;
}

START_TEST(echo_and_json_type)
{
    csgi_app *app = app_of(echo, NULL);
    csgi_test_response *response = post(app, "/", "h\xc3\xa9llo", "text/plain");
    ck_assert_str_eq(body_of(response), "h\xc3\xa9llo");
    ck_assert_str_eq(csgi_test_response_header(response, "Content-Type"),
                     "text/plain; charset=utf-8");
    csgi_test_response_free(response);
    response = post(app, "/", "h\xe9llo", "text/plain");
    ck_assert_int_eq(csgi_test_response_code(response), 400);
    csgi_test_response_free(response);
    char *big = text_of_size(70000);
    response = post(app, "/", big, "text/plain");
    ck_assert_int_eq(csgi_test_response_code(response), 413);
    csgi_test_response_free(response);
    csgi_app_free(app);

    app = app_of(value_type, NULL);
    static const char *const values[][2] = {
        {"{}", "object"},  {"[1]", "array"}, {"\"x\"", "string"}, {"1", "number"},
        {"1.5", "number"}, {"true", "true"}, {"null", "null"},
    };
    for (size_t i = 0; i < 7; i++) {
        response = post(app, "/", values[i][0], "application/json; charset=utf-8");
        ck_assert_str_eq(body_of(response), values[i][1]);
        csgi_test_response_free(response);
    }
    response = post(app, "/", "[1,\n 2,]", "application/json");
    ck_assert_int_eq(csgi_test_response_code(response), 400);
    ck_assert_msg(strstr(body_of(response), "line 2, column"), "%s", body_of(response));
    csgi_test_response_free(response);
    response = post(app, "/", "", "application/json");
    ck_assert_int_eq(csgi_test_response_code(response), 400);
    csgi_test_response_free(response);
    response = post(app, "/", "[1]", "text/plain");
    ck_assert_int_eq(csgi_test_response_code(response), 415);
    csgi_test_response_free(response);
    big[0] = '[';
    response = post(app, "/", big, "application/json");
    ck_assert_int_eq(csgi_test_response_code(response), 413);
    ck_assert_msg(strstr(body_of(response), "longer than 65536 bytes"), "%s", body_of(response));
    csgi_test_response_free(response);
    free(big);
    csgi_app_free(app);
}
END_TEST

/* "Hello" in the language the client prefers, as JSON or HTML. */
static csgi_response *greet(csgi_request *request, void *userdata)
{
    (void)userdata;
    static const char *const types[] = {"application/json", "text/html"};
    static const char *const languages[] = {"en", "fr", "de-CH"};
    static const char *const words[] = {"Hello", "Bonjour", "Grüezi"};
    int type = csgi_request_accept_best(request, types, 2);
    if (type < 0)
        return csgi_handler_error(request, 406, "JSON or HTML only");
    int language = csgi_request_accept_language_best(request, languages, 3);
    const char *word = words[language < 0 ? 0 : language];
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_add_header(response, "Vary", "Accept, Accept-Language") != 0)
        return NULL;
    if (type == 0) {
        if (csgi_response_set_json(response, json_pack("{s:s}", "greeting", word)) != 0)
            return NULL;
    } else {
        char html[64];
        snprintf(html, sizeof(html), "<p>%s</p>\n", word);
        if (csgi_response_set_body(response, html, strlen(html)) != 0 ||
            csgi_response_set_content_type(response, "text/html", "utf-8") != 0)
            return NULL;
    }
    return response;
}

START_TEST(greet_negotiates)
{
    csgi_app *app = app_of(greet, NULL);
    csgi_test_response *response = run(app, "GET", "/", NULL, 0, NULL);
    assert_json(response, "{\"greeting\": \"Hello\"}");
    ck_assert_str_eq(csgi_test_response_header(response, "Vary"), "Accept, Accept-Language");
    csgi_test_response_free(response);
    response = run(app, "GET", "/", NULL, 0, "Accept", "application/json", "Accept-Language",
                   "fr;q=0.9, en;q=0.5", NULL);
    assert_json(response, "{\"greeting\": \"Bonjour\"}");
    csgi_test_response_free(response);
    response = run(app, "GET", "/", NULL, 0, "Accept", "text/html, */*;q=0.8", "Accept-Language",
                   "de", NULL);
    ck_assert_str_eq(body_of(response), "<p>Gr\xc3\xbc"
                                        "ezi</p>\n");
    csgi_test_response_free(response);
    response = run(app, "GET", "/", NULL, 0, "Accept", "image/png", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 406);
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

/* ---- Responses ------------------------------------------------------------------------ */

/* A page that is not there yet: 404, or "299 Preview" to those who preview. */
static csgi_response *not_yet(csgi_request *request, void *userdata)
{
    (void)userdata;
    int preview = csgi_request_header(request, "X-Preview", NULL) != NULL;
    csgi_response *response = csgi_handler_response(request);
    if (!response)
        return NULL;
    int rc = preview ? csgi_response_set_status_line(response, "299 Preview") /* any reason */
                     : csgi_response_set_status(response, 404);               /* "404 Not Found" */
    /* add_header keeps the fields of that name already there, set_header
       replaces them all. */
    if (rc != 0 || csgi_response_set_content_type(response, "text/html", "utf-8") != 0 ||
        csgi_response_add_header(response, "Vary", "X-Preview") != 0 ||
        csgi_response_set_header(response, "X-Robots-Tag", "noindex") != 0 ||
        csgi_response_set_body_static(response, "<p>Soon.</p>\n", 13) != 0)
        return NULL;
    return response;
}

START_TEST(not_yet_status_and_headers)
{
    csgi_app *app = app_of(not_yet, NULL);
    csgi_test_response *response = run(app, "GET", "/", NULL, 0, NULL);
    ck_assert_str_eq(csgi_test_response_status(response), "404 Not Found");
    ck_assert_str_eq(csgi_test_response_header(response, "Content-Type"),
                     "text/html; charset=utf-8");
    ck_assert_str_eq(csgi_test_response_header(response, "Vary"), "X-Preview");
    ck_assert_str_eq(csgi_test_response_header(response, "X-Robots-Tag"), "noindex");
    ck_assert_str_eq(body_of(response), "<p>Soon.</p>\n");
    csgi_test_response_free(response);
    response = run(app, "GET", "/", NULL, 0, "X-Preview", "1", NULL);
    ck_assert_str_eq(csgi_test_response_status(response), "299 Preview");
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

/* What the prose of "Status and header fields" says. */
static csgi_response *header_rules(csgi_request *request, void *userdata)
{
    (void)userdata;
    csgi_response *response = csgi_handler_response(request);
    ck_assert_ptr_nonnull(response);
    ck_assert_str_eq(csgi_response_reason(429), "Too Many Requests");
    ck_assert_int_eq(csgi_response_set_status(response, 299), CSGI_EINVAL);
    ck_assert_int_eq(csgi_response_set_status_line(response, "199 Early"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_response_add_header(response, "Vary", "Accept"), 0);
    ck_assert_int_eq(csgi_response_add_header(response, "vary", "Cookie"), 0);
    ck_assert_str_eq(csgi_response_get_header(response, "VARY", 1), "Cookie");
    ck_assert_int_eq(csgi_response_set_header(response, "Vary", "Origin"), 0);
    ck_assert_ptr_null(csgi_response_get_header(response, "Vary", 1));
    ck_assert_int_eq(csgi_response_add_header(response, "Vary", "Accept"), 0);
    ck_assert_uint_eq(csgi_response_remove_header(response, "Vary"), 2);
    ck_assert_int_eq(csgi_response_add_header(response, "X-Bad", "a\r\nb"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_response_add_header(response, "Content-Length", "1"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_response_add_header(response, "Connection", "close"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_response_add_header(response, "Bad Name", "x"), CSGI_EINVAL);
    return response;
}

START_TEST(header_field_rules)
{
    csgi_app *app = app_of(header_rules, NULL);
    csgi_test_response *response = run(app, "GET", "/", NULL, 0, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

static csgi_response *login(csgi_request *request, void *userdata)
{
    (void)userdata;
    const char *token = "c2Vzc2lvbg"; /* ... a new session's token ... */
    csgi_cookie_options options = CSGI_COOKIE_OPTIONS_INIT;
    options.max_age = 3600;
    options.path = "/";
    options.secure = 1;
    options.http_only = 1;
    options.same_site = CSGI_SAME_SITE_LAX;
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_cookie(response, "session", token, &options) != 0 ||
        csgi_response_delete_cookie(response, "old", "/", NULL) != 0)
        return NULL;
    return response;
}

START_TEST(login_sets_cookies)
{
    csgi_app *app = app_of(login, NULL);
    csgi_test_response *response = run(app, "GET", "/", NULL, 0, NULL);
    ck_assert_str_eq(csgi_test_response_header_value(response, "Set-Cookie", 0),
                     "session=c2Vzc2lvbg; Max-Age=3600; Path=/; Secure; HttpOnly; SameSite=Lax");
    ck_assert_str_eq(csgi_test_response_header_value(response, "Set-Cookie", 1),
                     "old=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/");
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

/* A document that changes rarely: cacheable for ten minutes, with validators. */
static csgi_response *cached_document(csgi_request *request, void *userdata)
{
    (void)userdata;
    csgi_cache_control cache = CSGI_CACHE_CONTROL_INIT;
    cache.is_public = 1;
    cache.max_age = 600;
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_cache_control(response, &cache) != 0 ||
        csgi_response_set_etag(response, "v42", 1) != 0 ||           /* W/"v42"; 0: "v42" */
        csgi_response_set_last_modified(response, 784111777) != 0 || /* an IMF-fixdate */
        csgi_response_set_text(response, "version 42\n", NULL) != 0)
        return NULL;
    return response;
}

/* POST .../orders/7/confirm: 303 to the order's "done" page. */
static csgi_response *confirm(csgi_request *request, void *userdata)
{
    (void)userdata;
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_status(response, 303) != 0 ||
        csgi_response_set_location(response, "done") != 0)
        return NULL;
    return response;
}

START_TEST(caching_and_redirect)
{
    csgi_app *app = app_of(cached_document, NULL);
    csgi_test_response *response = run(app, "GET", "/", NULL, 0, NULL);
    ck_assert_str_eq(csgi_test_response_header(response, "Cache-Control"), "public, max-age=600");
    ck_assert_str_eq(csgi_test_response_header(response, "ETag"), "W/\"v42\"");
    ck_assert_str_eq(csgi_test_response_header(response, "Last-Modified"),
                     "Sun, 06 Nov 1994 08:49:37 GMT");
    csgi_test_response_free(response);
    csgi_app_free(app);

    app = app_of(confirm, NULL);
    response = run(app, "POST", "http://example.com/app/orders/7/confirm", "", 0,
                   "environ:SCRIPT_NAME", "/app", "environ:PATH_INFO", "/orders/7/confirm", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 303);
    ck_assert_str_eq(csgi_test_response_header(response, "Location"),
                     "http://example.com/app/orders/7/done");
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

static csgi_response *slow_down(csgi_request *request, void *userdata)
{
    (void)userdata;
    csgi_response *response = csgi_handler_error(request, 429, "Slow down.");
    if (!response || csgi_response_set_header(response, "Retry-After", "60") != 0)
        return NULL;
    return response;
}

START_TEST(slow_down_by_accept)
{
    csgi_app *app = app_of(slow_down, NULL);
    csgi_test_response *response = run(app, "GET", "/", NULL, 0, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 429);
    ck_assert_str_eq(csgi_test_response_header(response, "Retry-After"), "60");
    ck_assert_str_eq(body_of(response), "429 Too Many Requests\n\nSlow down.\n");
    csgi_test_response_free(response);
    response = run(app, "GET", "/", NULL, 0, "Accept", "*/*", NULL);
    ck_assert_str_eq(body_of(response), "429 Too Many Requests\n\nSlow down.\n");
    csgi_test_response_free(response);
    response = run(app, "GET", "/", NULL, 0, "Accept", "application/json", NULL);
    ck_assert_str_eq(body_of(response),
                     "{\"message\":\"Slow down.\",\"code\":429,\"title\":\"Too Many Requests\"}");
    csgi_test_response_free(response);
    response =
        run(app, "GET", "/", NULL, 0, "Accept", "text/html,application/xhtml+xml,*/*;q=0.8", NULL);
    ck_assert_str_eq(csgi_test_response_header(response, "Content-Type"),
                     "text/html; charset=utf-8");
    ck_assert_ptr_nonnull(strstr(body_of(response), "<title>429 Too Many Requests</title>"));
    ck_assert_ptr_nonnull(strstr(body_of(response), "Slow down."));
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

/* Every request: 503 with Retry-After, in the format each client accepts. */
static csgi_app *maintenance_app(void)
{
    csgi_response *down = NULL;
    if (csgi_response_error(&down, NULL, 503, "Back at 14:00 UTC.") != 0)
        return NULL;
    if (csgi_response_set_header(down, "Retry-After", "3600") != 0) {
        csgi_response_free(down);
        return NULL;
    }
    csgi_app *app = NULL;
    if (csgi_response_app(&app, down) != 0) /* takes down, also when it fails */
        return NULL;
    return app;
}

START_TEST(maintenance_for_every_request)
{
    csgi_app *app = maintenance_app();
    ck_assert_ptr_nonnull(app);
    for (int i = 0; i < 2; i++) {
        csgi_test_response *response =
            run(app, "GET", "/", NULL, 0, "Accept", i ? "application/json" : "text/plain", NULL);
        ck_assert_int_eq(csgi_test_response_code(response), 503);
        ck_assert_str_eq(csgi_test_response_header(response, "Retry-After"), "3600");
        ck_assert_ptr_nonnull(strstr(body_of(response), "Back at 14:00 UTC."));
        ck_assert_int_eq(body_of(response)[0] == '{', i);
        csgi_test_response_free(response);
    }
    csgi_app_free(app);
}
END_TEST

/* The file named by userdata, with validators, ranges and 304s. */
static csgi_response *document(csgi_request *request, void *userdata)
{
    const char *path = userdata;
    csgi_response *response = csgi_handler_response(request);
    if (!response)
        return NULL;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return csgi_handler_error(request, 404, NULL);
    }
    if (csgi_response_set_file(response, fd, 0, st.st_size) != 0 || /* takes fd */
        csgi_response_set_content_type(response, "application/pdf", NULL) != 0 ||
        csgi_response_set_last_modified(response, st.st_mtime) != 0)
        return NULL;
    csgi_response_set_conditional(response, 1);
    return response;
}

START_TEST(document_conditional)
{
    const char *path = test_write_file("report.pdf", "0123456789abcdef");
    csgi_app *app = app_of(document, (void *)path);
    csgi_test_response *response = run(app, "GET", "/", NULL, 0, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "0123456789abcdef");
    ck_assert_str_eq(csgi_test_response_header(response, "Accept-Ranges"), "bytes");
    ck_assert_str_eq(csgi_test_response_header(response, "Content-Type"), "application/pdf");
    char modified[64];
    snprintf(modified, sizeof(modified), "%s",
             csgi_test_response_header(response, "Last-Modified"));
    csgi_test_response_free(response);

    response = run(app, "GET", "/", NULL, 0, "Range", "bytes=2-5", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 206);
    ck_assert_str_eq(body_of(response), "2345");
    ck_assert_str_eq(csgi_test_response_header(response, "Content-Range"), "bytes 2-5/16");
    csgi_test_response_free(response);
    response = run(app, "GET", "/", NULL, 0, "Range", "bytes=20-30", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 416);
    ck_assert_str_eq(csgi_test_response_header(response, "Content-Range"), "bytes */16");
    csgi_test_response_free(response);
    response = run(app, "GET", "/", NULL, 0, "Range", "bytes=0-1,4-5", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "0123456789abcdef");
    csgi_test_response_free(response);
    response = run(app, "GET", "/", NULL, 0, "If-Modified-Since", modified, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 304);
    ck_assert_str_eq(body_of(response), "");
    ck_assert_str_eq(csgi_test_response_header(response, "Last-Modified"), modified);
    csgi_test_response_free(response);
    csgi_app_free(app);

    app = app_of(document, (void *)"/nonexistent/report.pdf");
    response = run(app, "GET", "/", NULL, 0, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 404);
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

/* ---- The raw protocol --------------------------------------------------------------- */

static csgi_body *raw_hello(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    (void)state;
    csgi_response *response;
    if (csgi_response_new(&response, environ) != 0 ||
        csgi_response_set_text(response, "Hello World\n", NULL) != 0)
        return NULL; /* out of memory: the server answers 500 */
    return csgi_response_send(response, environ, start_response);
}

static const csgi_app_type raw_hello_type = {"raw-hello", raw_hello, NULL};

START_TEST(raw_hello_answers)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &raw_hello_type, NULL), 0);
    csgi_test_response *response = run(app, "GET", "/", NULL, 0, NULL);
    ck_assert_str_eq(body_of(response), "Hello World\n");
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

typedef struct upload_state {
    csgi_request *request;
    csgi_start_response *start_response;
    csgi_body *body; /* ours, to resume */
    int ready;
    int sent;
    char answer[256];
} upload_state;

/* The form is there, or broken: start the response. */
static void answer(upload_state *u, int rc, const csgi_params *form,
                   const csgi_request_error *error)
{
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    const char *title = rc == 0 ? csgi_params_get(form, "title", NULL) : NULL;
    if (rc == 0)
        snprintf(u->answer, sizeof(u->answer), "stored %s\n", title ? title : "(untitled)");
    else /* error is filled for these two only */
        snprintf(u->answer, sizeof(u->answer), "%s\n",
                 rc == CSGI_EPARSE || rc == CSGI_ETOOBIG ? error->text : csgi_strerror(rc));
    csgi_start_response_call(u->start_response, rc == 0 ? "200 OK" : "400 Bad Request", headers, 1,
                             NULL);
    u->ready = 1;
}

static void body_ready(csgi_input *input, void *userdata)
{
    upload_state *u = userdata;
    const csgi_params *form;
    csgi_request_error error;
    int rc = csgi_request_form(u->request, &form, &error);
    if (rc == CSGI_EAGAIN) {
        csgi_input_on_ready(input, body_ready, u); /* not yet: wait again */
        return;
    }
    answer(u, rc, form, &error);
    csgi_body_resume(u->body); /* the server pulls upload_next again */
}

static int upload_next(void *state, csgi_chunk *chunk)
{
    upload_state *u = state;
    if (!u->ready)
        return CSGI_EAGAIN; /* still waiting for the body */
    if (u->sent)
        return 0;
    u->sent = 1;
    chunk->data = u->answer;
    chunk->len = strlen(u->answer);
    return 1;
}

static void upload_close(void *state)
{
    upload_state *u = state;
    if (!u->ready) /* the client left first: stop waiting */
        csgi_input_on_ready(csgi_environ_input(csgi_request_environ(u->request)), NULL, NULL);
}

static const csgi_body_type upload_body = {"upload", upload_next, upload_close};

static csgi_body *raw_upload(void *state, csgi_environ *environ,
                             csgi_start_response *start_response)
{
    (void)state;
    upload_state *u = csgi_environ_alloc_zeroed(environ, sizeof(*u));
    if (!u || csgi_request_from_environ(&u->request, environ) != 0)
        return NULL;
    u->start_response = start_response;
    if (!(u->body = csgi_body_new(environ, &upload_body, u)))
        return NULL;
    const csgi_params *form;
    csgi_request_error error;
    int rc = csgi_request_form(u->request, &form, &error);
    if (rc == CSGI_EAGAIN)
        csgi_input_on_ready(csgi_environ_input(environ), body_ready, u);
    else
        answer(u, rc, form, &error); /* the body was already there */
    return u->body;
}

static const csgi_app_type raw_upload_type = {"raw-upload", raw_upload, NULL};

START_TEST(raw_upload_waits)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &raw_upload_type, NULL), 0);
    /* The body is there at once. */
    csgi_test_response *response =
        post(app, "/", "title=Cat+on+a+mat", "application/x-www-form-urlencoded");
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "stored Cat on a mat\n");
    csgi_test_response_free(response);

    /* Three bytes at a time: the form answers CSGI_EAGAIN, the application
       waits on csgi.input. */
    app = trickled(app, 3);
    response = post(app, "/", "title=Cat+on+a+mat", "application/x-www-form-urlencoded");
    ck_assert_str_eq(body_of(response), "stored Cat on a mat\n");
    ck_assert_int_ge(test_trickle_waits(), 6);
    csgi_test_response_free(response);
    response = post(app, "/", "--b\r\nno header end", "multipart/form-data; boundary=b");
    ck_assert_int_eq(csgi_test_response_code(response), 400);
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("docs_request");
    TCase *handlers = tcase_create("handlers");
    tcase_set_timeout(handlers, 60);
    tcase_add_test(handlers, hello_says_hello);
    tcase_add_test(handlers, hello_to_head);
    tcase_add_test(handlers, create_image_answers);
    tcase_add_test(handlers, create_image_body_gathered);
    tcase_add_test(handlers, upload_app_spills_and_cleans);
    tcase_add_test(handlers, count_lines_streams);
    tcase_add_test(handlers, handlers_from_ini);
    tcase_add_test(handlers, handler_keys_checked);
    suite_add_tcase(suite, handlers);
    TCase *requests = tcase_create("requests");
    tcase_add_test(requests, request_line_table);
    tcase_add_test(requests, whoami_reads_headers);
    tcase_add_test(requests, url_table);
    tcase_add_test(requests, create_member_location);
    tcase_add_test(requests, path_info_pop_table);
    tcase_add_test(requests, dispatch_pops);
    tcase_add_test(requests, search_reads_the_query);
    tcase_add_test(requests, cookie_names_tolerant);
    tcase_add_test(requests, post_photo_reads_the_form);
    tcase_add_test(requests, post_video_limits);
    tcase_add_test(requests, echo_and_json_type);
    tcase_add_test(requests, greet_negotiates);
    suite_add_tcase(suite, requests);
    TCase *responses = tcase_create("responses");
    tcase_add_test(responses, not_yet_status_and_headers);
    tcase_add_test(responses, header_field_rules);
    tcase_add_test(responses, login_sets_cookies);
    tcase_add_test(responses, caching_and_redirect);
    tcase_add_test(responses, slow_down_by_accept);
    tcase_add_test(responses, maintenance_for_every_request);
    tcase_add_test(responses, document_conditional);
    suite_add_tcase(suite, responses);
    TCase *raw = tcase_create("raw");
    tcase_add_test(raw, raw_hello_answers);
    tcase_add_test(raw, raw_upload_waits);
    suite_add_tcase(suite, raw);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
