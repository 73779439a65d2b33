/*
 * Sinks: where the response driver (driver.h) sends a response.
 *
 * The driver holds every rule of the application protocol; a sink only
 * carries the result to a client. A sink type is a const table of
 * functions, as curl's connection filters are (lib/cfilters.h): the
 * engine's HTTP/1.1 connection is one sink (gateway.c), the in-process
 * test client's memory another (src/testing/client.c), and a TLS or an
 * HTTP/2 stream would each be one more table. Entries a sink has no use
 * for take the defaults below, so the driver calls every entry directly,
 * without testing for NULL.
 */
#ifndef CSGI_GATEWAY_SINK_H
#define CSGI_GATEWAY_SINK_H

#include "gateway/head.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;

typedef struct csgi_sink csgi_sink;

typedef struct csgi_sink_type {
    const char *name; /* for logs: "http/1.1", "memory" */
    /* The response head, checked and copied (borrowed for the call).
       length: the Content-Length to announce, or -1 when unknown (and
       for 204 and 304, which have none). Called once. */
    int (*send_head)(csgi_sink *sink, const csgi_gateway__head *head, int64_t length);
    /* A whole response at once, the common case: the head (as
       send_head), len body bytes that outlive the response (as
       write_reference; none when len is 0), and finish. A sink that can
       do this in one go saves the driver two calls per response. */
    int (*respond)(csgi_sink *sink, const csgi_gateway__head *head, int64_t length,
                   const void *data, size_t len);
    /* Body bytes, borrowed for the call (copied if kept). The driver
       already dropped the bytes of responses without a body and held the
       rest to the announced length. */
    int (*write)(csgi_sink *sink, const void *data, size_t len);
    /* Body bytes that outlive the response (a bytes body lives in the
       request's arena or is static): a sink may keep a reference. */
    int (*write_reference)(csgi_sink *sink, const void *data, size_t len);
    /* A piece of an iterator body, lent: valid until the next call on the
       body or its close (csgi_chunk), which the driver holds back until
       the sink gives the piece back. Returns 1 when the sink keeps it
       without a copy: it then calls csgi_driver__lent_back() once it no
       longer needs the bytes (sent, or dropped; before that sink's request
       ends, also when the client left), possibly already from inside this
       call, and gets the driver going again (its writable signal). 0 when
       it copied the bytes, or an error (the bytes are not kept). */
    int (*write_lent)(csgi_sink *sink, const void *data, size_t len);
    /* length bytes of a file from offset. Takes fd: closed once sent,
       dropped, or on error. */
    int (*sendfile)(csgi_sink *sink, int fd, int64_t offset, int64_t length);
    /* Bytes taken and not yet delivered: the driver pulls an iterator
       body only while this is below CSGI_SINK__WATERMARK. */
    size_t (*buffered)(const csgi_sink *sink);
    /* The response is complete. */
    int (*finish)(csgi_sink *sink);
    /* Give up: a 500 when the head was not sent, else cut the response
       short so the client sees it is incomplete. Cannot fail. */
    void (*cut)(csgi_sink *sink);
    /* The event loop the request runs on, for applications that answer
       later (csgi_environ_event_base()), or NULL. */
    struct event_base *(*event_base)(csgi_sink *sink);
    /* Keep the request's memory (its arena: the environ, the head, the
       body) past the request's end until as many releases, for work on it
       that goes on elsewhere (a pool thread: threadpool.c) when the
       request ends early. In pairs, on the request's loop thread; the
       last release after the request ended frees the memory. The sink's
       owner frees no loop, and ends no run, while its requests are held. */
    void (*hold)(csgi_sink *sink);
    void (*release)(csgi_sink *sink);
} csgi_sink_type;

/* A sink: its type and the state the type's functions work on. */
struct csgi_sink {
    const csgi_sink_type *type;
    void *context;
};

#define CSGI_SINK__WATERMARK (64 * 1024)

/* Pieces of an iterator body at least this long go to write_lent: a copy
   of a smaller one costs less than waiting for it to be sent before the
   next pull (and the driver stops pulling after a piece this long anyway,
   the sink being at its watermark). */
#define CSGI_SINK__LEND_FROM CSGI_SINK__WATERMARK

/* ---- Defaults (sink.c) ---- */

/* respond: type->send_head, type->write_reference, type->finish. */
int csgi_sink__respond_in_parts(csgi_sink *sink, const csgi_gateway__head *head, int64_t length,
                                const void *data, size_t len);
/* write_reference: the bytes are copied (type->write). */
int csgi_sink__write_reference_copy(csgi_sink *sink, const void *data, size_t len);
/* write_lent: the bytes are copied (type->write): 0 or its error. */
int csgi_sink__write_lent_copy(csgi_sink *sink, const void *data, size_t len);
/* sendfile: the file is read and written (type->write), as a sink that
   cannot hand the kernel a file (TLS, memory) must. A file shorter than
   length is CSGI_EIO. */
int csgi_sink__sendfile_copy(csgi_sink *sink, int fd, int64_t offset, int64_t length);
/* buffered: nothing waits (the sink takes every byte at once). */
size_t csgi_sink__buffered_none(const csgi_sink *sink);
/* finish: nothing to do. */
int csgi_sink__finish_none(csgi_sink *sink);
/* event_base: the request has no loop. */
struct event_base *csgi_sink__event_base_none(csgi_sink *sink);

#endif
