/*
 * The gateway (internal): runs a csgi application for each request the
 * engine parsed. app.c holds applications, start-responses and bodies;
 * driver.c applies the protocol's rules to one request; gateway.c hands
 * it the engine's request and is the engine's sink; server.c is the
 * public server object.
 */
#ifndef CSGI_GATEWAY_GATEWAY_H
#define CSGI_GATEWAY_GATEWAY_H

#include "gateway/environ_private.h"
#include "http/engine.h"

#include <csgi/app.h>
#include <csgi/server.h>

/* What the gateway needs from whoever runs it. */
typedef struct csgi_gateway {
    csgi_app *app;    /* borrowed from the server */
    int multithread;  /* more than one loop */
    int multiprocess; /* a worker process: its master may run others */
    csgi_http__log_fn log;
    void *log_userdata;
    int log_level;
} csgi_gateway;

/* The engine's on_request handler; userdata is a csgi_gateway. */
void csgi_gateway__on_request(csgi_http__request *http, void *userdata);

/* Log through the gateway's logger. */
void csgi_gateway__log(const csgi_gateway *gateway, int level, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* The protocol objects' insides (app_private.h) and the checks on
   start-response (head.h), for the suites that test them. */
#include "gateway/app_private.h"
#include "gateway/head.h"

#endif
