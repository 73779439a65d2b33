/*
 * Running an application for one request: the environ, the server's
 * start-response, checking what the application gives back, and pulling its
 * body into the engine as the client reads it.
 *
 * The application is called once, from the engine's on_request. Its body is
 * then "pumped": pieces are pulled and written while the engine's output
 * buffer is below its watermark. The pump runs again when the output
 * drained (on_writable) and when a body that answered CSGI_EAGAIN is
 * resumed. Whatever happens (the body ends, the client leaves, the
 * application misbehaves), the body is closed exactly once, and the engine's
 * on_done ends the request.
 */
#include "gateway/gateway.h"
#include "gateway/log.h"

#include "common/arena.h"

#include <csgi/app.h>

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct csgi_gateway__request {
    csgi_http__request *http;
    csgi_arena *arena; /* the request's */
    const csgi_gateway *gateway;
    csgi_environ *environ;
    csgi_start_response start_response;
    csgi_body *body;

    /* The response head, as the application gave it (arena copies). */
    csgi_gateway__head head;

    unsigned char started;   /* start-response was called */
    unsigned char head_sent; /* the engine has the head */
    unsigned char finished;  /* the response is complete or given up */
    unsigned char done;      /* the engine ended the request */
    unsigned char pumping;   /* inside pump(): resume only marks */
    unsigned char again;     /* resumed while pumping */
    unsigned char failed;    /* start-response refused what it was given */

    csgi_environ__source source; /* what the environ reads */
};

/* The request and its environ are one arena block: the environ follows. */
#define REQUEST_SIZE ((sizeof(csgi_gateway__request) + 15) & ~(size_t)15)

/* ---- Logging -------------------------------------------------------------------- */

void csgi_gateway__log(const csgi_gateway *gateway, int level, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    csgi_log__vwrite(gateway->log, gateway->log_userdata, gateway->log_level, level, format, args);
    va_end(args);
}

static void request_log(const csgi_gateway__request *request, int level, const char *what)
{
    const csgi_http__head *head = csgi_http__request_head(request->http);
    csgi_gateway__log(request->gateway, level, "%s: %.*s %.*s: %s",
                      csgi_app_name(request->gateway->app), (int)head->method_len, head->method,
                      (int)(head->target_len > 200 ? 200 : head->target_len), head->target, what);
}

static void environ_log(void *context, int level, const char *line)
{
    csgi_gateway__request *request = context;
    csgi_gateway__log(request->gateway, level, "%s", line);
}

/* start-response was given something the server will not send. */
static int refuse(csgi_gateway__request *request, const char *problem)
{
    char text[160];
    snprintf(text, sizeof(text), "start-response refused: %s", problem);
    request_log(request, CSGI_LOG__ERROR, text);
    request->failed = 1;
    return CSGI_EINVAL;
}

int csgi_gateway__start_response(csgi_gateway__request *request, const char *status,
                                 const csgi_header *headers, size_t count, const char *exc_info)
{
    if (!request || request->done)
        return CSGI_ESTATE;
    if (request->started && !exc_info) {
        request_log(request, CSGI_LOG__ERROR, "start-response called twice without exc_info");
        request->failed = 1;
        return CSGI_ESTATE;
    }
    if (request->started && request->head_sent) {
        /* Too late to change the answer: only cutting tells the client. */
        request_log(request, CSGI_LOG__ERROR, exc_info);
        request->finished = 1;
        csgi_http__response_abort(request->http, 500, CSGI_ESTATE);
        return CSGI_ESTATE;
    }
    const char *problem = NULL;
    int r =
        csgi_gateway__head_build(request->arena, status, headers, count, &request->head, &problem);
    if (r == CSGI_EINVAL)
        return refuse(request, problem);
    if (r != 0)
        return r;
    request->started = 1;
    request->failed = 0;
    return 0;
}

/* Hand the head to the engine. length: the body's length when known. */
static int send_head(csgi_gateway__request *request, int64_t length)
{
    const csgi_gateway__head *head = &request->head;
    if (head->content_length >= 0) {
        if (length >= 0 && length != head->content_length) {
            request_log(request, CSGI_LOG__ERROR, "Content-Length differs from the body's length");
            return CSGI_EINVAL;
        }
        length = head->content_length;
    }
    int r =
        csgi_http__response_start_block(request->http, head->status, head->reason, head->reason_len,
                                        head->fields, head->fields_len, head->field_flags, length);
    if (r == 0)
        request->head_sent = 1;
    return r;
}

int csgi_gateway__write(csgi_gateway__request *request, const void *data, size_t len)
{
    if (!request || request->done || !request->started || request->finished)
        return CSGI_ESTATE;
    if (!request->head_sent && send_head(request, -1) != 0)
        return CSGI_ESTATE;
    return csgi_http__response_write(request->http, data, len);
}

/* ---- Pumping the body ----------------------------------------------------------- */

/* The application broke the protocol or failed: answer 500 when nothing
   was sent, else cut. The body is closed. */
static void fail(csgi_gateway__request *request, const char *why)
{
    request_log(request, CSGI_LOG__ERROR, why);
    request->finished = 1;
    csgi_body_close(request->body);
    csgi_http__response_abort(request->http, 500, CSGI_ESTATE);
}

static void finish(csgi_gateway__request *request)
{
    request->finished = 1;
    csgi_body_close(request->body);
    if (csgi_http__response_finish(request->http) != 0)
        request_log(request, CSGI_LOG__ERROR, "response shorter than its Content-Length");
}

/* A body of bytes, after start-response: its length is known, so the
   whole response goes out at once. */
static void send_bytes(csgi_gateway__request *request, csgi_body *body)
{
    if (send_head(request, (int64_t)body->len) != 0) {
        fail(request, "could not start the response");
        return;
    }
    /* Small bodies are copied next to the head (one chain, no allocation);
       large ones are referenced: bytes live in the arena or are static,
       both outlast the response. */
    int r = body->len <= 4096 ? csgi_http__response_write(request->http, body->data, body->len)
                              : csgi_http__response_write_reference(request->http, body->data,
                                                                    body->len, NULL, NULL);
    if (r != 0) {
        fail(request, "could not write the response");
        return;
    }
    body->delivered = 1;
    finish(request);
}

static void pump(csgi_gateway__request *request)
{
    if (request->pumping) {
        request->again = 1;
        return;
    }
    request->pumping = 1;
    csgi_body *body = request->body;
    size_t watermark = 64 * 1024;
    while (!request->finished && !request->done) {
        request->again = 0;
        if (request->failed) {
            fail(request, "the application's response was refused");
            break;
        }
        if (request->started && !request->head_sent) {
            /* Bytes and files need no pulling: their length is known. */
            if (body->kind == CSGI_BODY__BYTES) {
                send_bytes(request, body);
                break;
            }
            if (body->kind == CSGI_BODY__FILE) {
                int64_t length = body->length;
                if (send_head(request, length) != 0) {
                    fail(request, "could not start the response");
                    break;
                }
                int64_t offset = body->offset;
                int fd = csgi_body__take_fd(body);
                if (csgi_http__response_sendfile(request->http, fd, offset, length) != 0) {
                    fail(request, "could not send the file");
                    break;
                }
                finish(request);
                break;
            }
            /* An iterator's head waits for its first piece: if the body
               fails before that, the client still gets a clean 500. */
        }
        if (request->head_sent && csgi_http__response_buffered(request->http) >= watermark)
            break; /* on_writable pumps again */
        csgi_chunk chunk = {NULL, 0};
        int r = csgi_body_next(body, &chunk);
        if (r == CSGI_EAGAIN) {
            if (request->again)
                continue;
            break; /* csgi_body_resume pumps again */
        }
        if (r < 0) {
            fail(request, "the response body failed");
            break;
        }
        if (!request->started) {
            fail(request, r == 0 ? "the application returned without calling start-response"
                                 : "body produced before start-response");
            break;
        }
        if (request->failed)
            continue;
        if (r == 0) {
            if (!request->head_sent && csgi_body_length(body) > 0) {
                fail(request, "the body is shorter than its declared length");
                break;
            }
            if (!request->head_sent && send_head(request, 0) != 0) {
                fail(request, "could not start the response");
                break;
            }
            finish(request);
            break;
        }
        /* start-response may have been called from inside next(). The
           length is the iterator's declared one, or unknown. */
        if (!request->head_sent && send_head(request, csgi_body_length(body)) != 0) {
            fail(request, "could not start the response");
            break;
        }
        if (chunk.len && csgi_http__response_write(request->http, chunk.data, chunk.len) != 0) {
            fail(request, "the body is longer than its Content-Length");
            break;
        }
    }
    request->pumping = 0;
}

/* "env", not "environ": glibc declares a global of that name. */
struct event_base *csgi_environ_event_base(csgi_environ *env)
{
    const csgi_environ__owner_hooks *hooks = env ? csgi_environ__hooks(env) : NULL;
    if (hooks)
        return hooks->event_base ? hooks->event_base(csgi_environ__owner(env)) : NULL;
    csgi_gateway__request *request = env ? csgi_environ__owner(env) : NULL;
    return request ? csgi_http__request_base(request->http) : NULL;
}

void csgi_gateway__resume(csgi_gateway__request *request)
{
    if (request && !request->done && !request->finished && request->body)
        pump(request);
}

/* ---- Engine callbacks --------------------------------------------------------------- */

static void on_body(csgi_http__request *http, void *userdata)
{
    csgi_gateway__request *request = userdata;
    (void)http;
    csgi_environ__input_ready(request->environ);
}

static void on_writable(csgi_http__request *http, void *userdata)
{
    csgi_gateway__request *request = userdata;
    (void)http;
    if (!request->finished)
        pump(request);
}

static void on_done(csgi_http__request *http, int err, void *userdata)
{
    csgi_gateway__request *request = userdata;
    (void)http;
    request->done = 1;
    if (err && err != CSGI_ESTATE && request->started)
        request_log(request, CSGI_LOG__INFO, csgi_strerror(err));
    /* Closed exactly once: here if the response did not run its course
       (the client left, a timeout); csgi_body_close ignores a second call. */
    if (request->body && !request->body->closed)
        csgi_body_close(request->body);
}

static const csgi_http__request_callbacks gateway_callbacks = {on_body, on_writable, on_done};

static long input_read(void *context, void *buf, size_t len)
{
    return (long)csgi_http__request_read(context, buf, len);
}

static size_t input_buffered(void *context)
{
    return csgi_http__request_body_buffered(context);
}

static const csgi_input__provider engine_input = {input_read, input_buffered};

/* Whether a path has a '%' (then its decoding is checked). Paths are
   short: a plain loop beats a call to memchr. */
static int has_percent(const char *path, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (path[i] == '%')
            return 1;
    return 0;
}

void csgi_gateway__on_request(csgi_http__request *http, void *userdata)
{
    const csgi_gateway *gateway = userdata;
    csgi_arena *arena = csgi_http__request_arena(http);
    csgi_gateway__request *request = csgi_arena__alloc(arena, REQUEST_SIZE + csgi_environ__size());
    if (!request) {
        csgi_http__response_abort(http, 500, CSGI_ENOMEM);
        return;
    }
    /* Every field is set here: this runs for every request, and clearing
       the whole block first would cost more than the request's own work. */
    request->http = http;
    request->arena = arena;
    request->gateway = gateway;
    request->body = NULL;
    request->head.content_length = -1;
    request->started = 0;
    request->head_sent = 0;
    request->finished = 0;
    request->done = 0;
    request->pumping = 0;
    request->again = 0;
    request->failed = 0;
    csgi_http__request_set_callbacks(http, &gateway_callbacks, request);

    const csgi_http__head *head = csgi_http__request_head(http);
    /* PATH_INFO is the decoded path: refuse what decoding would turn
       into a climb above the root ("%2F.." ) or a NUL byte ("%00"), which
       would cut the path short for C string functions. */
    if (has_percent(head->path, head->path_len) &&
        (!csgi_environ__path_is_safe(head->path, head->path_len) ||
         memmem(head->path, head->path_len, "%00", 3))) {
        request_log(request, CSGI_LOG__INFO, "encoded path climbs above the root or has NUL");
        csgi_http__response_abort(http, 400, CSGI_EPARSE);
        return;
    }

    csgi_environ__source *source = &request->source;
    source->head = head;
    source->peer = csgi_http__request_peer(http, NULL);
    source->local = csgi_http__request_local(http, NULL);
    source->url_scheme = "http";
    source->multithread = gateway->multithread;
    source->multiprocess = 0;
    source->input = &engine_input;
    source->input_context = http;
    source->log = environ_log;
    source->log_context = request;
    source->owner = request;
    source->owner_hooks = NULL;
    request->environ = csgi_environ__init((char *)request + REQUEST_SIZE, arena, source);
    request->start_response.environ = request->environ;
    request->start_response.parent = NULL;
    request->start_response.fn = NULL;
    request->start_response.userdata = NULL;
    request->start_response.request = request;

    request->body = csgi_app_call(gateway->app, request->environ, &request->start_response);
    if (!request->body) {
        request->finished = 1;
        request_log(request, CSGI_LOG__ERROR, "the application failed (returned no body)");
        csgi_http__response_abort(http, 500, CSGI_ESTATE);
        return;
    }
    /* The common answer, bytes after start-response, needs no pumping. */
    if (request->body->kind == CSGI_BODY__BYTES && request->started && !request->failed) {
        send_bytes(request, request->body);
        return;
    }
    pump(request);
}
