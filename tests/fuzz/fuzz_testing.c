/*
 * libFuzzer target for the in-process test client (include/csgi/testing.h,
 * src/testing/) and the lint filter in front of an application.
 *
 * The input is a request in a simple text form:
 *
 *     METHOD\n
 *     URL\n
 *     Name: value\n        (any number of header lines)
 *     \n
 *     body bytes
 *
 * with a first byte choosing the application (an echo of the environ and
 * the body, which waits for the body with csgi_input_on_ready(), or a
 * three-piece stream), lint's strictness, and how the body is sent: at
 * once or late in pieces of 0 to 7 bytes, with Content-Length or chunked
 * by the client (a Transfer-Encoding header of the input sends the body
 * as it is, framing and all). The request is built with the public calls
 * (a refused method, URL or header ends the input) and run.
 *
 * Invariants: a run returns 0 with a response whose status code is
 * 200-599, CSGI_EPARSE (a request the server would refuse), or
 * CSGI_ETIMEDOUT (a body announced and never all sent, which the echo
 * waits for), never anything else; the response's body, headers and log
 * lines are readable. A violation aborts.
 */
#include "fuzz_common.h"

#include <csgi.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const csgi_header text_plain[] = {CSGI_HEADER("Content-Type", "text/plain")};

typedef struct echo {
    csgi_environ *environ;
    csgi_start_response *start_response;
    csgi_body *self;
    const char *all;
    size_t len;
    int ready;
    int sent;
} echo;

static void echo_ready(csgi_input *input, void *userdata);

/* Read the whole body, waiting for it; 1 once it is there (or failed). */
static int echo_read(echo *e)
{
    csgi_input *input = csgi_environ_input(e->environ);
    int rc = csgi_input_read_all(input, 1 << 16, &e->all, &e->len);
    if (rc == CSGI_EAGAIN) {
        csgi_input_on_ready(input, echo_ready, e);
        return 0;
    }
    if (rc != 0) {
        e->all = "";
        e->len = 0;
    }
    const char *path = csgi_environ_get(e->environ, "PATH_INFO");
    csgi_environ_log(e->environ, "path %s, %zu body bytes", path ? path : "(none)", e->len);
    e->ready =
        csgi_start_response_call(e->start_response, "200 OK", text_plain, 1, NULL) == 0 ? 1 : -1;
    return 1;
}

static void echo_ready(csgi_input *input, void *userdata)
{
    echo *e = userdata;
    (void)input;
    if (echo_read(e))
        csgi_body_resume(e->self);
}

static int echo_next(void *state, csgi_chunk *chunk)
{
    echo *e = state;
    if (e->ready < 0)
        return CSGI_ESTATE;
    if (!e->ready)
        return CSGI_EAGAIN;
    if (e->sent || !e->len)
        return 0;
    e->sent = 1;
    chunk->data = e->all;
    chunk->len = e->len;
    return 1;
}

static const csgi_body_type echo_body = {"echo", echo_next, NULL};

static csgi_body *echo_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    (void)state;
    echo *e = csgi_environ_alloc(environ, sizeof(*e));
    if (!e)
        return NULL;
    memset(e, 0, sizeof(*e));
    e->environ = environ;
    e->start_response = start_response;
    if (!(e->self = csgi_body_new(environ, &echo_body, e)))
        return NULL;
    echo_read(e);
    return e->self;
}

static int stream_next(void *state, csgi_chunk *chunk)
{
    int *step = state;
    static const char *const words[] = {"one", "two", "three"};
    if (*step >= 3)
        return 0;
    chunk->data = words[*step];
    chunk->len = strlen(words[*step]);
    ++*step;
    return 1;
}

static const csgi_body_type stream_type = {"stream", stream_next, NULL};

static csgi_body *stream_call(void *state, csgi_environ *environ,
                              csgi_start_response *start_response)
{
    (void)state;
    int *step = csgi_environ_alloc(environ, sizeof(*step));
    if (!step || csgi_start_response_call(start_response, "200 OK", text_plain, 1, NULL) != 0)
        return NULL;
    *step = 0;
    return csgi_body_new(environ, &stream_type, step);
}

static const csgi_app_type echo_type = {"echo", echo_call, NULL};
static const csgi_app_type stream_type_app = {"stream", stream_call, NULL};

/* The next line of [*p, end) as a NUL-terminated copy in buf, or NULL. */
static const char *next_line(const char **p, const char *end, char *buf, size_t size)
{
    const char *eol = memchr(*p, '\n', (size_t)(end - *p));
    if (!eol || (size_t)(eol - *p) >= size)
        return NULL;
    memcpy(buf, *p, (size_t)(eol - *p));
    buf[eol - *p] = '\0';
    *p = eol + 1;
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned choice = data[0];
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    char method[64], url[2048], line[9000];
    if (!next_line(&p, end, method, sizeof(method)) || !next_line(&p, end, url, sizeof(url)))
        return 0;

    csgi_app *app = NULL, *lint = NULL;
    CHECK(csgi_app_new(&app, choice & 1 ? &stream_type_app : &echo_type, NULL) == 0);
    csgi_lint_options options = CSGI_LINT_OPTIONS_INIT;
    options.strict = (choice & 2) != 0;
    CHECK(csgi_lint_new(&lint, app, &options) == 0);

    csgi_test_request *request = NULL;
    int rc = csgi_test_request_new(&request, method, url);
    CHECK(rc == 0 || rc == CSGI_EINVAL);
    int usable = rc == 0;
    while (usable && p < end) {
        const char *text = next_line(&p, end, line, sizeof(line));
        if (!text || !*text)
            break;
        const char *colon = strchr(text, ':');
        if (!colon) {
            usable = 0;
            break;
        }
        line[colon - text] = '\0';
        const char *value = colon + 1;
        while (*value == ' ')
            value++;
        rc = csgi_test_request_add_header(request, line, value);
        CHECK(rc == 0 || rc == CSGI_EINVAL);
        usable = rc == 0;
    }
    if (usable && p < end)
        CHECK(csgi_test_request_set_body(request, p, (size_t)(end - p)) == 0);
    if (usable) {
        CHECK(csgi_test_request_set_body_delivery(
                  request, choice & 8 ? CSGI_TEST_DELIVERY_LATE : CSGI_TEST_DELIVERY_AT_ONCE,
                  (choice >> 5) & 7) == 0);
        csgi_test_request_set_chunked(request, (choice & 16) != 0);
        csgi_test_request_set_timeout(request, 20);
        csgi_test_response *response = NULL;
        rc = csgi_test_request_run(&response, request, choice & 4 ? app : lint);
        CHECK(rc == 0 || rc == CSGI_EPARSE || rc == CSGI_ETIMEDOUT);
        if (rc == 0) {
            int code = csgi_test_response_code(response);
            CHECK(code >= 200 && code <= 599);
            size_t len = 0;
            const char *body = csgi_test_response_body(response, &len);
            CHECK(body && body[len] == '\0');
            for (size_t i = 0; i < csgi_test_response_header_count(response); i++) {
                const char *name = NULL, *value = NULL;
                CHECK(csgi_test_response_header_at(response, i, &name, &value) == 1);
                CHECK(csgi_test_response_header(response, name) != NULL);
            }
            for (size_t i = 0; i < csgi_test_response_log_count(response); i++)
                CHECK(csgi_test_response_log_at(response, i) != NULL);
        } else {
            CHECK(response == NULL);
        }
        csgi_test_response_free(response);
    }
    csgi_test_request_free(request);
    csgi_app_free(lint);
    return 0;
}
