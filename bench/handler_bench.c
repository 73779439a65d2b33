/*
 * What the handler model costs: one server, one application per mode, for
 * bench/handler.sh (instructions per request, memory per request in
 * flight) and bench/spill.sh (memory while large bodies are spilled).
 *
 *   handler_bench --mode MODE [--host ADDRESS] [--port N] [--max-body BYTES]
 *                 [--body-buffer-size BYTES] [--body-temp-dir DIR]
 *
 * Every mode but count answers 200 "Hello World" (text/html), as
 * examples/hello does:
 *
 *   raw-get         examples/hello's application (csgi_app_type): the baseline
 *   handler-get     the same answer from a handler (csgi_handler_app())
 *   raw-post        a raw application reading a JSON object body with
 *                   csgi_request_json(); the body must be there when it is
 *                   called (it came with the head): CSGI_EAGAIN is a 500
 *   handler-post    the same from a handler with csgi_handler_json(): the
 *                   adapter gathers the body first (with --body-buffer-size
 *                   below the body's length, into a temporary file)
 *   handler-stream  a streaming handler (CSGI_HANDLER_BODY_STREAM) counting
 *                   the body's bytes with csgi_handler_read_body()
 *   raw-stream      a raw application counting the body's bytes as they
 *                   arrive, waiting with csgi_input_on_ready()
 *   count           a gathering handler that reads csgi.input with a small
 *                   buffer and answers the number of bytes, in text/plain
 *                   (nothing of the body stays in memory)
 *
 * The body readers (all but the GETs) answer 500 when the count differs
 * from the Content-Length, and 400 when the JSON is not an object.
 * --max-body sets both the server's limit and the handler's (default: the
 * defaults, 1 MiB); --body-buffer-size and --body-temp-dir set the
 * handler's options. Only the public API, one loop, served until SIGINT
 * or SIGTERM; --port 0 picks a free port and the first line printed names
 * the address bound.
 */
#include <csgi.h>
#include <csgi/json.h>

#include "hello_app.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HELLO     "Hello World"
#define HELLO_LEN (sizeof(HELLO) - 1)
/* The longest JSON body accepted (the benchmark's is about 100 bytes). */
#define JSON_MAX 4096

static const csgi_header hello_headers[] = {CSGI_HEADER("Content-Type", "text/html")};

/* ---- Raw applications ------------------------------------------------------ */

static csgi_body *hello_body(csgi_environ *environ, csgi_start_response *start_response)
{
    if (csgi_start_response_call(start_response, "200 OK", hello_headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_static(environ, HELLO, HELLO_LEN);
}

/* raw-post: the JSON body, which must have arrived with the head. */
static csgi_body *raw_post_call(void *state, csgi_environ *environ,
                                csgi_start_response *start_response)
{
    static const csgi_header text[] = {CSGI_HEADER("Content-Type", "text/plain")};
    csgi_request *request;
    json_t *value = NULL;
    (void)state;
    if (csgi_request_from_environ(&request, environ) != 0)
        return NULL;
    int rc = csgi_request_json(request, JSON_MAX, &value, NULL);
    if (rc == 0 && json_is_object(value))
        return hello_body(environ, start_response);
    /* CSGI_EAGAIN too: the benchmark sends the body with the head. */
    const char *status =
        rc == 0 || rc == CSGI_EPARSE ? "400 Bad Request" : "500 Internal Server Error";
    if (csgi_start_response_call(start_response, status, text, 1, NULL) != 0)
        return NULL;
    const char *why = rc == 0 ? "not an object" : csgi_err_name(rc);
    return csgi_body_static(environ, why, strlen(why));
}

static const csgi_app_type raw_post_type = {"raw-post", raw_post_call, NULL};

/* raw-stream: one request's count, read as the body arrives. */
typedef struct raw_stream {
    csgi_environ *environ;
    csgi_start_response *start_response;
    csgi_body *self;
    uint64_t count;
    int answered;
} raw_stream;

static void raw_stream_ready(csgi_input *input, void *userdata)
{
    raw_stream *s = userdata;
    (void)input;
    csgi_body_resume(s->self);
}

static int raw_stream_next(void *state, csgi_chunk *chunk)
{
    raw_stream *s = state;
    if (s->answered)
        return 0;
    csgi_input *input = csgi_environ_input(s->environ);
    char buf[4096];
    long n;
    while ((n = csgi_input_read(input, buf, sizeof(buf))) > 0)
        s->count += (uint64_t)n;
    if (n == CSGI_EAGAIN) {
        csgi_input_on_ready(input, raw_stream_ready, s);
        return CSGI_EAGAIN;
    }
    if (n < 0)
        return (int)n;
    const char *length = csgi_environ_get(s->environ, "CONTENT_LENGTH");
    if (length && strtoull(length, NULL, 10) != s->count)
        return CSGI_ESTATE; /* a 500: bytes went missing */
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/html"),
                                          CSGI_HEADER("Content-Length", "11")};
    int rc = csgi_start_response_call(s->start_response, "200 OK", headers, 2, NULL);
    if (rc != 0)
        return rc;
    s->answered = 1;
    chunk->data = HELLO;
    chunk->len = HELLO_LEN;
    return 1;
}

static const csgi_body_type raw_stream_body = {"raw-stream", raw_stream_next, NULL};

static csgi_body *raw_stream_call(void *state, csgi_environ *environ,
                                  csgi_start_response *start_response)
{
    (void)state;
    raw_stream *s = csgi_environ_alloc_zeroed(environ, sizeof(*s));
    if (!s)
        return NULL;
    s->environ = environ;
    s->start_response = start_response;
    s->self = csgi_body_new(environ, &raw_stream_body, s);
    return s->self;
}

static const csgi_app_type raw_stream_type = {"raw-stream", raw_stream_call, NULL};

/* ---- Handlers ------------------------------------------------------------- */

static csgi_response *hello_response(csgi_request *request)
{
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_header(response, "Content-Type", "text/html") != 0 ||
        csgi_response_set_body_static(response, HELLO, HELLO_LEN) != 0)
        return NULL;
    return response;
}

/* The body's length was not the count read: a 500. */
static csgi_response *count_mismatch(csgi_request *request, uint64_t count)
{
    int64_t length = csgi_request_content_length(request);
    if (length >= 0 && (uint64_t)length != count)
        return csgi_handler_error(request, 500, "the body's length is not what was read");
    return NULL;
}

static csgi_response *handler_get(csgi_request *request, void *userdata)
{
    (void)userdata;
    return hello_response(request);
}

static csgi_response *handler_post(csgi_request *request, void *userdata)
{
    json_t *value;
    csgi_response *error;
    (void)userdata;
    if (csgi_handler_json(request, JSON_MAX, &value, &error) != 0)
        return error;
    if (!json_is_object(value))
        return csgi_handler_error(request, 400, "not an object");
    return hello_response(request);
}

/* handler-stream: the reader counts into a uint64_t of the request. */
static int stream_data(void *state, csgi_request *request, const void *data, size_t len)
{
    uint64_t *count = state;
    (void)request;
    (void)data;
    *count += len;
    return 0;
}

static csgi_response *stream_end(void *state, csgi_request *request, int result)
{
    uint64_t *count = state;
    if (result != 0)
        return csgi_handler_error(request, 500, csgi_err_name(result));
    csgi_response *mismatch = count_mismatch(request, *count);
    return mismatch ? mismatch : hello_response(request);
}

static const csgi_body_reader_type stream_reader = {"count", stream_data, stream_end};

static csgi_response *handler_stream(csgi_request *request, void *userdata)
{
    (void)userdata;
    uint64_t *count = csgi_environ_alloc_zeroed(csgi_request_environ(request), sizeof(*count));
    return count ? csgi_handler_read_body(request, &stream_reader, count) : NULL;
}

/* count: csgi.input is the gathered body (memory or file); reads never wait. */
static csgi_response *handler_count(csgi_request *request, void *userdata)
{
    (void)userdata;
    csgi_input *input = csgi_environ_input(csgi_request_environ(request));
    char buf[16384];
    uint64_t count = 0;
    long n;
    while ((n = csgi_input_read(input, buf, sizeof(buf))) > 0)
        count += (uint64_t)n;
    if (n < 0)
        return csgi_handler_error(request, 500, csgi_err_name((int)n));
    csgi_response *mismatch = count_mismatch(request, count);
    if (mismatch)
        return mismatch;
    char text[32];
    snprintf(text, sizeof(text), "%" PRIu64, count);
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_header(response, "Content-Type", "text/plain") != 0 ||
        csgi_response_set_body(response, text, strlen(text)) != 0)
        return NULL;
    return response;
}

/* ---- Modes ---------------------------------------------------------------- */

static const struct mode {
    const char *name;
    const csgi_app_type *raw; /* a raw application, or */
    csgi_handler_fn handler;  /* a handler */
    csgi_handler_body body;
} modes[] = {
    {"raw-get", NULL, NULL, CSGI_HANDLER_BODY_DEFAULT}, /* hello_app_new() */
    {"handler-get", NULL, handler_get, CSGI_HANDLER_BODY_DEFAULT},
    {"raw-post", &raw_post_type, NULL, CSGI_HANDLER_BODY_DEFAULT},
    {"handler-post", NULL, handler_post, CSGI_HANDLER_BODY_DEFAULT},
    {"handler-stream", NULL, handler_stream, CSGI_HANDLER_BODY_STREAM},
    {"raw-stream", &raw_stream_type, NULL, CSGI_HANDLER_BODY_DEFAULT},
    {"count", NULL, handler_count, CSGI_HANDLER_BODY_DEFAULT},
};

static int usage(int status)
{
    fprintf(stderr, "usage: handler_bench --mode MODE [--host ADDRESS] [--port N] "
                    "[--max-body BYTES]\n"
                    "                     [--body-buffer-size BYTES] [--body-temp-dir DIR]\n"
                    "modes:");
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        fprintf(stderr, " %s", modes[i].name);
    fprintf(stderr, "\n");
    return status;
}

/* A number of bytes from argv, or -1. */
static long long parse_bytes(const char *text, long long max)
{
    char *end;
    long long value = strtoll(text, &end, 10);
    return *text && !*end && value >= 0 && value <= max ? value : -1;
}

static int make_app(csgi_app **out, const struct mode *mode, const csgi_handler_options *options)
{
    if (!mode->raw && !mode->handler)
        return hello_app_new(out);
    if (mode->raw)
        return csgi_app_new(out, mode->raw, NULL);
    int rc = csgi_handler_app(out, mode->name, mode->handler, NULL, NULL);
    if (rc == 0 && (rc = csgi_handler_set_options(*out, options)) != 0) {
        csgi_app_free(*out);
        *out = NULL;
    }
    return rc;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    long long port = 8080;
    const struct mode *mode = NULL;
    csgi_server_options server_options = CSGI_SERVER_OPTIONS_INIT;
    csgi_handler_options options = CSGI_HANDLER_OPTIONS_INIT;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        long long bytes = value ? parse_bytes(value, INT64_MAX) : -1;
        if (strcmp(arg, "--help") == 0)
            return usage(0);
        if (!value)
            return usage(2);
        i++;
        if (strcmp(arg, "--mode") == 0) {
            for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
                if (strcmp(modes[m].name, value) == 0)
                    mode = &modes[m];
            if (!mode)
                return usage(2);
        } else if (strcmp(arg, "--host") == 0) {
            host = value;
        } else if (strcmp(arg, "--port") == 0 && bytes >= 0 && bytes <= 65535) {
            port = bytes;
        } else if (strcmp(arg, "--max-body") == 0 && bytes > 0) {
            server_options.max_body = (uint64_t)bytes;
            options.max_body = (uint64_t)bytes;
        } else if (strcmp(arg, "--body-buffer-size") == 0 && bytes > 0) {
            options.body_buffer_size = (size_t)bytes;
        } else if (strcmp(arg, "--body-temp-dir") == 0) {
            options.body_temp_dir = value;
        } else {
            fprintf(stderr, "handler_bench: bad option %s %s\n", arg, value);
            return usage(2);
        }
    }
    if (!mode)
        return usage(2);
    options.body = mode->body;

    csgi_app *app;
    csgi_server *server;
    char address[300];
    snprintf(address, sizeof(address), strchr(host, ':') ? "[%s]:%lld" : "%s:%lld", host, port);
    int rc = make_app(&app, mode, &options);
    if (rc == 0)
        rc = csgi_server_new(&server, app, &server_options, NULL); /* takes app */
    if (rc != 0) {
        fprintf(stderr, "handler_bench: %s\n", csgi_strerror(rc));
        return 1;
    }
    rc = csgi_server_listen(server, address);
    if (rc == 0)
        rc = csgi_server_run_until_signal(server);
    else
        fprintf(stderr, "handler_bench: cannot serve on %s: %s\n", address, csgi_strerror(rc));
    csgi_server_free(server);
    return rc == 0 ? 0 : 1;
}
