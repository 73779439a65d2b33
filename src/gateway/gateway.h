/*
 * The gateway (internal): runs a csgi application for each request the
 * engine parsed. app.c holds applications, start-responses and bodies;
 * gateway.c drives one request; server.c is the public server object.
 */
#ifndef CSGI_GATEWAY_GATEWAY_H
#define CSGI_GATEWAY_GATEWAY_H

#include "gateway/environ_private.h"
#include "http/engine.h"

#include <csgi/app.h>
#include <csgi/server.h>

typedef struct csgi_gateway__request csgi_gateway__request;

/* What the gateway needs from whoever runs it. */
typedef struct csgi_gateway {
    csgi_app *app;   /* borrowed from the server */
    int multithread; /* more than one loop */
    csgi_http__log_fn log;
    void *log_userdata;
    int log_level;
} csgi_gateway;

/* The engine's on_request handler; userdata is a csgi_gateway. */
void csgi_gateway__on_request(csgi_http__request *http, void *userdata);

/* Log through the gateway's logger. */
void csgi_gateway__log(const csgi_gateway *gateway, int level, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- app.c: bodies and start-responses, seen from the gateway --------- */

struct csgi_body {
    csgi_environ *environ;
    int kind; /* csgi_body_kind */
    int closed;
    /* CSGI_BODY_BYTES */
    const void *data;
    size_t len;
    int delivered;
    /* CSGI_BODY_FILE */
    int fd;
    int64_t offset;
    int64_t length;
    char *file_buffer; /* for csgi_body_next on a file: pread into it */
    /* CSGI_BODY_ITERATOR */
    const csgi_body_type *type;
    void *state;
};

/* The server's own start-response (parent NULL) forwards to the gateway
   request; a middleware's calls fn. */
struct csgi_start_response {
    csgi_environ *environ;
    csgi_start_response *parent;
    csgi_start_response_fn fn;
    void *userdata;
    csgi_gateway__request *request; /* for the server's own */
};

/* head.h: csgi_gateway__head and csgi_gateway__head_build, which checks
   and copies what an application gives start-response. */
#include "gateway/head.h"

/* gateway.c: the server's start-response and write. */
int csgi_gateway__start_response(csgi_gateway__request *request, const char *status,
                                 const csgi_header *headers, size_t count, const char *exc_info);
int csgi_gateway__write(csgi_gateway__request *request, const void *data, size_t len);
void csgi_gateway__resume(csgi_gateway__request *request);

#endif
