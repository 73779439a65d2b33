/*
 * The in-process test client (include/csgi/testing.h): running a request.
 *
 * A run does what the engine and the gateway do for a request read from a
 * socket, minus the socket: the request head is written as HTTP/1.1 bytes
 * and parsed by the real parser, the environ is built by the real environ
 * code (with this file as its "source": the body as upload.c sends and
 * decodes it as csgi.input, a log that keeps the lines), and the
 * application is run by the server's own response driver
 * (src/gateway/driver.c), which holds every rule of the protocol. Only the
 * driver's sink differs, as in h2o's unit tests that replace the final
 * output stage: this file's memory sink keeps the response instead of
 * framing it on a socket.
 *
 * What differs: no Date or Server fields, no chunked framing of the
 * response, and the whole response body is kept in memory.
 */
#include "testing/testing_private.h"

#include "common/arena.h"
#include "common/log.h"
#include "common/status.h"
#include "common/token.h"
#include "gateway/driver.h"
#include "gateway/environ_private.h"
#include "gateway/sink.h"
#include "http/parser.h"

#include <csgi/testing.h>

#include <event2/event.h>

#include <stdio.h>
#include <string.h>

/* ---- Running: the memory sink -------------------------------------------------- */

/* A run drives the application with the server's response driver
   (src/gateway/driver.c); only the final stage differs: this sink keeps
   the response in memory instead of writing HTTP/1.1 to a socket. */
typedef csgi_test__run run;

/* Every line is kept, whatever its level: a test asserts on them. */
static void run_log(void *context, int level, const char *line)
{
    run *r = context;
    (void)level;
    csgi_test__response_log(r->response, line);
}

/* The sink's own failures (memory, the body cap) end the run. */
int csgi_test__run_failed(run *r, int rc)
{
    if (rc != 0 && !r->error)
        r->error = rc;
    return rc;
}

static int memory_send_head(csgi_sink *sink, const csgi_gateway__head *head, int64_t length)
{
    run *r = sink->context;
    int rc = csgi_test__response_set_head(r->response, head->status, head->reason, head->reason_len,
                                          head->fields, head->fields_len, length);
    r->head_sent = rc == 0;
    return csgi_test__run_failed(r, rc);
}

static int memory_write(csgi_sink *sink, const void *data, size_t len)
{
    run *r = sink->context;
    return csgi_test__run_failed(r, csgi_test__response_append(r->response, data, len));
}

/* The engine's answer: its error page when nothing was sent, else a cut. */
static void answer_failure(run *r, int status)
{
    if (r->error)
        return;
    if (r->head_sent)
        r->response->cut = 1;
    else
        csgi_test__run_failed(r, csgi_test__response_set_error(r->response, status));
}

/* As csgi_http__response_abort. */
static void memory_cut(csgi_sink *sink)
{
    answer_failure(sink->context, 500);
}

/* As the engine's request_fail for a body that broke. */
void csgi_test__run_abort(run *r, int status, const char *why)
{
    char line[160];
    if (r->head_sent)
        snprintf(line, sizeof(line), "connection cut (%s)", why);
    else
        snprintf(line, sizeof(line), "%d %s (%s)", status, csgi_status__reason(status), why);
    csgi_driver__log(&r->driver, CSGI_LOG__INFO, line);
    answer_failure(r, status);
    r->ended = 1;
    csgi_driver__end(&r->driver);
}

struct event_base *csgi_test__run_base(run *r)
{
    if (!r->base)
        r->base = event_base_new();
    return r->base;
}

/* The request's loop, made when the application first asks for it. */
static struct event_base *memory_event_base(csgi_sink *sink)
{
    return csgi_test__run_base(sink->context);
}

/* A pool thread still reads the request: the run waits for it to let go
   (csgi_test__run_once) before the memory goes. */
static void memory_hold(csgi_sink *sink)
{
    run *r = sink->context;
    r->holds++;
}

static void memory_release(csgi_sink *sink)
{
    run *r = sink->context;
    r->holds--;
}

static const csgi_sink_type memory_sink = {
    .name = "memory",
    .send_head = memory_send_head,
    .respond = csgi_sink__respond_in_parts,
    .write = memory_write,
    .write_reference = csgi_sink__write_reference_copy,
    .write_lent = csgi_sink__write_lent_copy,
    .sendfile = csgi_sink__sendfile_copy,
    .buffered = csgi_sink__buffered_none,
    .finish = csgi_sink__finish_none,
    .cut = memory_cut,
    .event_base = memory_event_base,
    .hold = memory_hold,
    .release = memory_release,
};

static void on_timeout(evutil_socket_t fd, short what, void *userdata)
{
    run *r = userdata;
    (void)fd;
    (void)what;
    r->error = CSGI_ETIMEDOUT;
}

/* Wait on the loop until the body is resumed to its end, or time is up. */
static int wait_for_body(run *r)
{
    if (!csgi_test__run_base(r))
        return CSGI_ENOMEM;
    if (!r->timer) {
        r->timer = evtimer_new(r->base, on_timeout, r);
        unsigned ms = r->request->timeout_ms;
        struct timeval limit = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        if (!r->timer || evtimer_add(r->timer, &limit) != 0)
            return CSGI_ENOMEM;
    }
    while (!csgi_driver__finished(&r->driver) && !r->ended && !r->error) {
        if (event_base_loop(r->base, EVLOOP_ONCE) < 0)
            return CSGI_ESYSTEM;
    }
    return r->error;
}

/* The request's head as the wire carries it, in arena, with a Cookie field
   of the session's when cookie is not NULL. */
static char *write_head(const csgi_test_request *request, const char *cookie, csgi_arena *arena,
                        size_t *len)
{
    int has_host = 0;
    size_t size = strlen(request->method) + strlen(request->target) + strlen(request->host) + 112 +
                  (cookie ? strlen(cookie) + 10 : 0);
    for (const csgi_test__pair *h = request->headers; h; h = h->next) {
        size += strlen(h->name) + strlen(h->value) + 4;
        if (csgi_token__lookup(h->name, strlen(h->name)) == CSGI_TOKEN__HOST)
            has_host = 1;
    }
    char *text = csgi_arena__alloc(arena, size);
    if (!text)
        return NULL;
    char *p = text;
    p += sprintf(p, "%s %s HTTP/1.1\r\n", request->method, request->target);
    if (!has_host)
        p += sprintf(p, "Host: %s\r\n", request->host);
    for (const csgi_test__pair *h = request->headers; h; h = h->next)
        p += sprintf(p, "%s: %s\r\n", h->name, h->value);
    if (cookie)
        p += sprintf(p, "Cookie: %s\r\n", cookie);
    p += csgi_test__upload_field(request, p);
    p += sprintf(p, "\r\n");
    *len = (size_t)(p - text);
    return text;
}

/* Parse the head with the server's parser and limits. */
static int parse_request(const char *text, size_t len, csgi_arena *arena, csgi_http__head *head)
{
    static const csgi_http__limits limits = CSGI_HTTP__LIMITS_DEFAULT;
    csgi_http__error error = {0, NULL};
    csgi_http__scanner scanner;
    csgi_http__scanner_init(&scanner);
    if (csgi_http__scan(&scanner, text, len, &limits, &error) != CSGI_HTTP__SCAN_DONE ||
        scanner.head_length != len)
        return CSGI_EPARSE;
    size_t capacity = scanner.header_count ? scanner.header_count : 1;
    csgi_http__header *headers = csgi_arena__alloc(arena, capacity * sizeof(*headers));
    if (!headers)
        return CSGI_ENOMEM;
    if (csgi_http__parse_head(text + scanner.skipped, scanner.head_length - scanner.skipped,
                              headers, capacity, head, &error) != 0)
        return CSGI_EPARSE;
    head->own_bytes = 1; /* text: write_head's, in the run's arena */
    /* What the gateway refuses with 400 before any application runs. */
    if (csgi_environ__path_refused(head->path, head->path_len))
        return CSGI_EPARSE;
    return 0;
}

static int run_app(run *r, csgi_app *app, const char *cookie, csgi_arena *arena)
{
    const csgi_test_request *request = r->request;
    size_t len = 0;
    char *text = write_head(request, cookie, arena, &len);
    csgi_http__head *head = csgi_arena__alloc(arena, sizeof(*head));
    if (!text || !head)
        return CSGI_ENOMEM;
    int rc = parse_request(text, len, arena, head);
    if (rc != 0)
        return rc;
    if ((rc = csgi_test__upload_start(r, head, arena)) != 0)
        return rc;

    struct sockaddr_storage *local = csgi_arena__alloc(arena, sizeof(*local));
    if (!local)
        return CSGI_ENOMEM;
    csgi_test__set_peer(local, "127.0.0.1", request->default_port);
    csgi_environ__source *source = &r->source;
    source->head = head;
    source->peer = (const struct sockaddr *)&request->peer;
    source->local = (const struct sockaddr *)local;
    source->url_scheme = request->scheme;
    source->input = &csgi_test__upload_input;
    source->input_context = r;
    source->log = run_log;
    source->log_context = r;
    source->owner = &r->driver;
    csgi_driver__init(&r->driver, &memory_sink, r, app, arena, source);
    r->environ = csgi_environ__new(arena, source);
    if (!r->environ)
        return CSGI_ENOMEM;
    for (const csgi_test__pair *o = request->overrides; o; o = o->next)
        if ((rc = csgi_environ_set(r->environ, o->name, o->value)) != 0)
            return rc;

    csgi_driver__run(&r->driver, r->environ);
    if (!csgi_driver__finished(&r->driver) && !r->ended && !r->error)
        rc = wait_for_body(r); /* the body answered CSGI_EAGAIN */
    return rc ? rc : r->error;
}

int csgi_test__run_once(csgi_test_response **out, csgi_test_request *request, csgi_app *app,
                        const char *cookie)
{
    *out = NULL;
    csgi_test_response *response = csgi_test__response_new();
    if (!response)
        return CSGI_ENOMEM;
    if (!(response->url = csgi_test__request_url(request, &response->arena))) {
        csgi_test_response_free(response);
        return CSGI_ENOMEM;
    }
    csgi_arena arena;
    csgi_arena__init(&arena, NULL);
    run *r = csgi_arena__alloc(&arena, sizeof(*r));
    int rc = CSGI_ENOMEM;
    if (r) {
        memset(r, 0, sizeof(*r));
        r->request = request;
        r->response = response;
        rc = run_app(r, app, cookie, &arena);
        /* Closed exactly once, whatever happened (a no-op when closed). */
        csgi_driver__end(&r->driver);
        /* Work on the request that goes on elsewhere (a pool thread) lets
           go from the request's loop: the memory goes after it. */
        while (r->holds && r->base && event_base_loop(r->base, EVLOOP_ONCE) == 0)
            continue;
    }
    struct event_base *base = r ? r->base : NULL;
    struct event *timer = r ? r->timer : NULL;
    struct event *arrival = r ? r->upload.arrival : NULL;
    /* The application's deferred callbacks may free events of the loop:
       the arena goes first. */
    csgi_arena__clear(&arena);
    if (timer)
        event_free(timer);
    if (arrival)
        event_free(arrival);
    if (base)
        event_base_free(base);
    if (rc != 0) {
        csgi_test_response_free(response);
        return rc;
    }
    *out = response;
    return 0;
}

int csgi_test_request_run(csgi_test_response **out, csgi_test_request *request, csgi_app *app)
{
    if (out)
        *out = NULL;
    if (!request || !app || !out)
        return CSGI_EINVAL;
    return csgi_test__follow(out, request, app, NULL);
}

int csgi_test__get(csgi_test_response **out, const char *url, csgi_app *app, csgi_test__jar *jar)
{
    csgi_test_request *request = NULL;
    int rc = csgi_test_request_new(&request, "GET", url);
    if (rc == 0)
        rc = csgi_test__follow(out, request, app, jar);
    csgi_test_request_free(request);
    return rc;
}

int csgi_test_get(csgi_test_response **out, csgi_app *app, const char *url)
{
    if (out)
        *out = NULL;
    if (!out || !app)
        return CSGI_EINVAL;
    return csgi_test__get(out, url, app, NULL);
}
