/*
 * The response driver (internal): runs an application for one request and
 * drives its answer into a sink (sink.h), whoever received the request.
 *
 * Every rule of the application protocol lives here, once: the checks on
 * what start-response is given (head.h), start-response twice and
 * exc_info, a body before start-response, the body kinds (bytes and files
 * go out whole, iterators are pulled while the sink is below its
 * watermark and again after csgi_body_resume()), Content-Length and
 * declared lengths, responses without a body (HEAD, 204, 304), a 500
 * when nothing was sent or a cut when something was, and closing the
 * body exactly once. The engine's gateway (gateway.c) and the in-process
 * test client (src/testing/client.c) each own a driver and differ only
 * in their sink, so a test through the client runs the server's code.
 */
#ifndef CSGI_GATEWAY_DRIVER_H
#define CSGI_GATEWAY_DRIVER_H

#include "gateway/app_private.h"
#include "gateway/environ_private.h"
#include "gateway/head.h"
#include "gateway/sink.h"

#include <csgi/app.h>

#include <stddef.h>
#include <stdint.h>

typedef struct csgi_driver {
    csgi_sink sink;
    csgi_app *app;                      /* borrowed: called once, named in log lines */
    csgi_arena *arena;                  /* the request's */
    const csgi_environ__source *source; /* borrowed: the request head and the log */
    csgi_environ *environ;              /* set by csgi_driver__run */
    csgi_start_response start_response; /* the root of the chain */
    csgi_body *body;                    /* what the application returned */
    csgi_gateway__head head;            /* as start-response was given it */
    int64_t left; /* once the head is sent: bytes the announced length still owes, or -1 */

    unsigned char started;   /* start-response was called */
    unsigned char head_sent; /* the sink has the head */
    unsigned char no_body;   /* once the head is sent: HEAD, 204 or 304, bytes dropped */
    unsigned char finished;  /* the response is complete or given up */
    unsigned char done;      /* the request ended (csgi_driver__end) */
    unsigned char pumping;   /* inside pump(): resume only marks */
    unsigned char again;     /* resumed while pumping */
    unsigned char failed;    /* start-response refused what it was given */
    unsigned char lent;      /* the sink holds a piece of the body (write_lent): no pull,
                                no close until it gives it back */
} csgi_driver;

/* Set up a driver for one request. Every field is set (the gateway does
   not clear its per-request block: this runs for every request). sink
   context, app and source are borrowed for the request's life; source's
   owner must be the driver (csgi_body_resume finds it there). */
static inline void csgi_driver__init(csgi_driver *driver, const csgi_sink_type *sink_type,
                                     void *sink_context, csgi_app *app, csgi_arena *arena,
                                     const csgi_environ__source *source)
{
    driver->sink.type = sink_type;
    driver->sink.context = sink_context;
    driver->app = app;
    driver->arena = arena;
    driver->source = source;
    driver->body = NULL;
    driver->head.content_length = -1;
    driver->started = 0;
    driver->head_sent = 0;
    driver->finished = 0;
    driver->done = 0;
    driver->pumping = 0;
    driver->again = 0;
    driver->failed = 0;
    driver->lent = 0;
}

/* Call the application with environ and the driver's start-response, and
   send its answer as far as the sink takes it now. What is left is sent by
   csgi_driver__writable() and csgi_body_resume(). */
void csgi_driver__run(csgi_driver *driver, csgi_environ *environ);

/* The sink drained below its watermark: pull the body again. */
void csgi_driver__writable(csgi_driver *driver);

/* The driver whose sink this is (a sink is the driver's first field). */
static inline csgi_driver *csgi_driver__of_sink(csgi_sink *sink)
{
    return (csgi_driver *)(void *)((char *)sink - offsetof(csgi_driver, sink));
}

/* The sink gives back the piece it was lent (write_lent): the body may be
   pulled and closed again; the sink then signals writable to go on. Only
   notes it: safe from inside the sink's own buffer handling. */
static inline void csgi_driver__lent_back(csgi_driver *driver)
{
    driver->lent = 0;
}

/* Keep the request's memory (its arena, its environ, its head) past its
   end, until csgi_driver__release: for work that still reads it on
   another thread when the client leaves (threadpool.c). On the request's
   loop thread, in pairs; the driver itself lives in that memory, so it is
   valid until the last release, which frees it when the request ended. */
static inline void csgi_driver__hold(csgi_driver *driver)
{
    driver->sink.type->hold(&driver->sink);
}

static inline void csgi_driver__release(csgi_driver *driver)
{
    driver->sink.type->release(&driver->sink);
}

/* The request ended, however it went: the body is closed (once). Later
   calls into the driver do nothing. */
void csgi_driver__end(csgi_driver *driver);

/* 1 once the response is complete or was given up. */
static inline int csgi_driver__finished(const csgi_driver *driver)
{
    return driver->finished;
}

/* One line on the request's log, naming the application and the request:
   "APP: METHOD TARGET: what". */
void csgi_driver__log(const csgi_driver *driver, int level, const char *what);

/* What app.c forwards: csgi_start_response_write() on the chain's root,
   and csgi_body_resume() on a body of the request. */
int csgi_driver__write(csgi_driver *driver, const void *data, size_t len);
void csgi_driver__resume(csgi_driver *driver);

#endif
