/*
 * The gateway: the engine's side of running an application. For each
 * request the engine parsed, on_request sets up the environ and a response
 * driver (driver.c, which holds the protocol's rules) whose sink is the
 * engine's HTTP/1.1 response; the engine's callbacks then keep the driver
 * going (on_writable), feed csgi.input (on_body) and end the request
 * (on_done).
 */
#include "gateway/gateway.h"
#include "common/log.h"

#include "common/arena.h"
#include "gateway/driver.h"
#include "gateway/sink.h"
#include "http/tls.h"

#include <csgi/app.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

typedef struct request {
    csgi_driver driver;          /* the environ's owner */
    const csgi_gateway *gateway; /* for the log */
    csgi_environ *environ;
    csgi_environ__source source; /* what the environ reads */
} request;

/* The request and its environ are one arena block: the environ follows. */
#define REQUEST_SIZE ((sizeof(request) + 15) & ~(size_t)15)

/* ---- Logging -------------------------------------------------------------------- */

void csgi_gateway__log(const csgi_gateway *gateway, int level, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    csgi_log__vwrite(gateway->log, gateway->log_userdata, gateway->log_level, level, format, args);
    va_end(args);
}

static void request_log(void *context, int level, const char *line)
{
    const request *r = context;
    csgi_gateway__log(r->gateway, level, "%s", line);
}

/* ---- The engine as a sink --------------------------------------------------------- */

/* Each entry hands the call to the engine (sink->context is the engine's
   request): a jump, for the compiler turns these into tail calls. */

static int engine_send_head(csgi_sink *sink, const csgi_gateway__head *head, int64_t length)
{
    return csgi_http__response_start_block(sink->context, head->status, head->reason,
                                           head->reason_len, head->fields, head->fields_len,
                                           head->field_flags, length);
}

/* The common answer in one call: small bodies are copied next to the
   head (one chain, no allocation), large ones referenced. */
static int engine_respond(csgi_sink *sink, const csgi_gateway__head *head, int64_t length,
                          const void *data, size_t len)
{
    csgi_http__request *http = sink->context;
    int r =
        csgi_http__response_start_block(http, head->status, head->reason, head->reason_len,
                                        head->fields, head->fields_len, head->field_flags, length);
    if (r == 0 && len)
        r = len <= 4096 ? csgi_http__response_write(http, data, len)
                        : csgi_http__response_write_reference(http, data, len, NULL, NULL);
    return r ? r : csgi_http__response_finish(http);
}

static int engine_write(csgi_sink *sink, const void *data, size_t len)
{
    return csgi_http__response_write(sink->context, data, len);
}

static int engine_write_reference(csgi_sink *sink, const void *data, size_t len)
{
    return csgi_http__response_write_reference(sink->context, data, len, NULL, NULL);
}

/* The engine is done with a lent piece (sent, or dropped: always before
   on_done). Runs inside the engine's buffer handling: only notes it, and
   asks for on_writable, which pulls the body again. */
static void lent_sent(const void *data, size_t len, void *arg)
{
    csgi_driver *driver = arg;
    (void)data;
    (void)len;
    csgi_driver__lent_back(driver);
    csgi_http__response_want_writable(driver->sink.context);
}

/* A long piece of an iterator body goes out as the application's own
   bytes: no second copy of a response stuck behind a slow client. */
static int engine_write_lent(csgi_sink *sink, const void *data, size_t len)
{
    int r = csgi_http__response_write_reference(sink->context, data, len, lent_sent,
                                                csgi_driver__of_sink(sink));
    return r < 0 ? r : 1;
}

static int engine_sendfile(csgi_sink *sink, int fd, int64_t offset, int64_t length)
{
    return csgi_http__response_sendfile(sink->context, fd, offset, length);
}

static size_t engine_buffered(const csgi_sink *sink)
{
    return csgi_http__response_buffered(sink->context);
}

static int engine_finish(csgi_sink *sink)
{
    return csgi_http__response_finish(sink->context);
}

/* The engine answers 500 when it sent nothing yet, else cuts. */
static void engine_cut(csgi_sink *sink)
{
    csgi_http__response_abort(sink->context, 500, CSGI_ESTATE);
}

static struct event_base *engine_event_base(csgi_sink *sink)
{
    return csgi_http__request_base(sink->context);
}

static void engine_hold(csgi_sink *sink)
{
    csgi_http__request_hold(sink->context);
}

static void engine_release(csgi_sink *sink)
{
    csgi_http__request_unhold(sink->context);
}

static const csgi_sink_type engine_sink = {
    .name = "http/1.1",
    .send_head = engine_send_head,
    .respond = engine_respond,
    .write = engine_write,
    .write_reference = engine_write_reference,
    .write_lent = engine_write_lent,
    .sendfile = engine_sendfile,
    .buffered = engine_buffered,
    .finish = engine_finish,
    .cut = engine_cut,
    .event_base = engine_event_base,
    .hold = engine_hold,
    .release = engine_release,
};

/* ---- Engine callbacks --------------------------------------------------------------- */

static void on_body(csgi_http__request *http, void *userdata)
{
    request *r = userdata;
    (void)http;
    csgi_environ__input_ready(r->environ);
}

static void on_writable(csgi_http__request *http, void *userdata)
{
    request *r = userdata;
    (void)http;
    csgi_driver__writable(&r->driver);
}

/* err says how the request ended. No line here: a cut or a failure
   already has its one line, from the engine (the client left, a timeout,
   a broken body: it knows why) or from the driver (the application). */
static void on_done(csgi_http__request *http, int err, void *userdata)
{
    request *r = userdata;
    (void)http;
    (void)err;
    csgi_driver__end(&r->driver);
}

/* The field name of the len bytes at line (one "Name: value\r\n" line of
   the head) is name, in any case. */
static int field_is(const char *line, size_t len, const char *name, size_t name_len)
{
    return len > name_len && line[name_len] == ':' && strncasecmp(line, name, name_len) == 0;
}

/* A response field as the application gave it (the first of that name),
   from the head's "Name: value\r\n" lines; the fields the engine adds
   (Date, Server, framing) are not among them. */
static const char *response_field(const csgi_gateway__head *head, const char *name, size_t *len)
{
    size_t name_len = strlen(name);
    const char *p = head->fields, *end = head->fields + head->fields_len;
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol)
            return NULL;
        if (field_is(p, (size_t)(eol - p), name, name_len)) {
            const char *value = p + name_len + 1;
            while (value < eol && *value == ' ')
                value++;
            *len = (size_t)(eol - value);
            return value;
        }
        p = eol + 2;
    }
    return NULL;
}

/* The access log's questions (engine.h): REMOTE_USER only when something
   set it, an environ key (which builds the environ when the application
   did not), a response field. */
static const char *log_value(csgi_http__request *http, int kind, const char *name, size_t *len,
                             void *userdata)
{
    request *r = userdata;
    (void)http;
    if (kind == CSGI_ACCESS_LOG__USER) /* the combined format's, for every request */
        return r->environ ? csgi_environ__peek_n(r->environ, name, len) : NULL;
    if (kind == CSGI_ACCESS_LOG__ENVIRON)
        return r->environ ? csgi_environ_get_n(r->environ, name, len) : NULL;
    if (kind == CSGI_ACCESS_LOG__RESPONSE)
        return r->driver.head_sent ? response_field(&r->driver.head, name, len) : NULL;
    return NULL;
}

static const csgi_http__request_callbacks gateway_callbacks = {on_body, on_writable, on_done,
                                                               log_value};

static long input_read(void *context, void *buf, size_t len)
{
    return (long)csgi_http__request_read(context, buf, len);
}

static size_t input_buffered(void *context)
{
    return csgi_http__request_body_buffered(context);
}

/* What the request's TLS connection proves (NULL over plain TCP): asked
   when the environ is built, so a request that never looks pays nothing. */
static const csgi_tls__info *input_tls(void *context)
{
    return csgi_http__request_tls(context);
}

static const csgi_input__provider engine_input = {input_read, input_buffered, input_tls};

void csgi_gateway__on_request(csgi_http__request *http, void *userdata)
{
    const csgi_gateway *gateway = userdata;
    csgi_arena *arena = csgi_http__request_arena(http);
    request *r = csgi_arena__alloc(arena, REQUEST_SIZE + csgi_environ__size());
    if (!r) {
        csgi_http__response_abort(http, 500, CSGI_ENOMEM);
        return;
    }
    /* Every field is set here: this runs for every request, and clearing
       the whole block first would cost more than the request's own work. */
    const csgi_http__head *head = csgi_http__request_head(http);
    csgi_environ__source *source = &r->source;
    source->head = head;
    source->peer = csgi_http__request_peer(http, NULL);
    source->local = csgi_http__request_local(http, NULL);
    source->url_scheme = "http";
    source->multithread = gateway->multithread;
    source->multiprocess = gateway->multiprocess;
    source->input = &engine_input;
    source->input_context = http;
    source->log = request_log;
    source->log_context = r;
    source->owner = &r->driver;
    r->gateway = gateway;
    r->environ = NULL; /* until it is made, below */
    csgi_driver__init(&r->driver, &engine_sink, http, gateway->app, arena, source);
    csgi_http__request_set_callbacks(http, &gateway_callbacks, r);

    /* PATH_INFO is the decoded path: refuse what decoding would turn
       into a climb above the root or a NUL byte. */
    if (csgi_environ__path_refused(head->path, head->path_len)) {
        csgi_driver__log(&r->driver, CSGI_LOG__INFO,
                         "encoded path climbs above the root or has NUL");
        csgi_http__response_abort(http, 400, CSGI_EPARSE);
        return;
    }

    r->environ = csgi_environ__init((char *)r + REQUEST_SIZE, arena, source);
    csgi_driver__run(&r->driver, r->environ);
}
