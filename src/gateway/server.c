/*
 * The public server object (include/csgi/server.h): an engine whose
 * requests run an application through the gateway, and csgi_serve().
 */
#include "common/alloc.h"
#include "gateway/gateway.h"
#include "http/engine.h"

#include <csgi/server.h>

#include <event2/event.h>

#include <signal.h>

_Static_assert((int)CSGI_LOG_ERROR == (int)CSGI_LOG__ERROR &&
                   (int)CSGI_LOG_DEBUG == (int)CSGI_LOG__DEBUG,
               "public and engine log levels are the same numbers");
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct csgi_server {
    csgi_http__engine *engine;
    csgi_gateway gateway;
    csgi_app *app;
};

void csgi_server_options_init(csgi_server_options *options)
{
    static const csgi_server_options defaults = CSGI_SERVER_OPTIONS_INIT;
    *options = defaults;
}

/* Engine options from server options: 0 means the engine's default. */
static int engine_options(const csgi_server_options *in, csgi_http__options *out)
{
    csgi_http__options_init(out);
    if (!in)
        return 0;
    if (in->version != CSGI_SERVER_OPTIONS_VERSION)
        return CSGI_EINVAL;
#define TAKE(field, target) \
    if (in->field)          \
    out->target = in->field
    TAKE(threads, threads);
    TAKE(max_connections, max_connections);
    TAKE(max_request_line, limits.max_request_line);
    TAKE(max_header_line, limits.max_header_line);
    TAKE(max_head, limits.max_head);
    TAKE(max_headers, limits.max_headers);
    TAKE(header_timeout_ms, header_timeout_ms);
    TAKE(body_timeout_ms, body_timeout_ms);
    TAKE(keepalive_timeout_ms, keepalive_timeout_ms);
    TAKE(send_timeout_ms, send_timeout_ms);
    TAKE(max_keepalive_requests, max_keepalive_requests);
    TAKE(server_header, server_header);
#undef TAKE
    if (in->max_body)
        out->max_body = in->max_body == UINT64_MAX ? 0 : in->max_body;
    if (in->verbose)
        out->log_level = CSGI_LOG__INFO;
    if (in->log) {
        out->log = in->log;
        out->log_userdata = in->log_userdata;
    }
    return 0;
}

int csgi_server_new(csgi_server **out, csgi_app *app, const csgi_server_options *options,
                    struct event_base *base)
{
    if (out)
        *out = NULL;
    csgi_http__options engine_opts;
    int err = out && app ? engine_options(options, &engine_opts) : CSGI_EINVAL;
    csgi_server *server = err ? NULL : csgi__calloc(1, sizeof(*server));
    if (!server) {
        csgi_app_free(app);
        return err ? err : CSGI_ENOMEM;
    }
    server->app = app;
    server->gateway.app = app;
    server->gateway.multithread = engine_opts.threads > 1;
    server->gateway.log = engine_opts.log;
    server->gateway.log_userdata = engine_opts.log_userdata;
    server->gateway.log_level = engine_opts.log_level;
    csgi_http__handler handler = {csgi_gateway__on_request, &server->gateway};
    err = csgi_http__engine_new(&server->engine, &engine_opts, &handler, base);
    if (err) {
        csgi_app_free(app);
        csgi__free(server);
        return err;
    }
    *out = server;
    return 0;
}

int csgi_server_listen(csgi_server *server, const char *address)
{
    return server ? csgi_http__engine_listen(server->engine, address) : CSGI_EINVAL;
}

int csgi_server_port(const csgi_server *server, size_t index)
{
    return server ? csgi_http__engine_listener_port(server->engine, index) : -1;
}

int csgi_server_start(csgi_server *server)
{
    return server ? csgi_http__engine_start(server->engine) : CSGI_EINVAL;
}

int csgi_server_run(csgi_server *server)
{
    return server ? csgi_http__engine_run(server->engine) : CSGI_EINVAL;
}

void csgi_server_stop(csgi_server *server, unsigned grace_ms)
{
    if (server)
        csgi_http__engine_stop(server->engine, grace_ms);
}

void csgi_server_free(csgi_server *server)
{
    if (!server)
        return;
    csgi_http__engine_free(server->engine); /* ends every request first */
    csgi_app_free(server->app);
    csgi__free(server);
}

/* ---- csgi_serve --------------------------------------------------------------------- */

static void on_signal(evutil_socket_t signal_number, short what, void *arg)
{
    (void)what;
    fprintf(stderr, "csgi: signal %d, stopping\n", (int)signal_number);
    csgi_server_stop(arg, 10000);
}

int csgi_serve(csgi_app *app, const char *host, int port)
{
    if (!host || port < 0 || port > 65535) {
        csgi_app_free(app);
        return CSGI_EINVAL;
    }
    csgi_server *server;
    int err = csgi_server_new(&server, app, NULL, NULL);
    if (err)
        return err;
    char address[300];
    int v6 = strchr(host, ':') != NULL && host[0] != '[';
    snprintf(address, sizeof(address), v6 ? "[%s]:%d" : "%s:%d", host, port);
    err = csgi_server_listen(server, address);
    if (!err)
        err = csgi_server_start(server);
    if (err) {
        fprintf(stderr, "csgi: cannot serve on %s: %s\n", address, csgi_strerror(err));
        csgi_server_free(server);
        return err;
    }
    printf("serving on http://%s%s%s:%d/\n", v6 ? "[" : "", host, v6 ? "]" : "",
           csgi_server_port(server, 0));
    fflush(stdout);

    struct event_base *base = csgi_http__engine_base(server->engine);
    struct event *stop_int = evsignal_new(base, SIGINT, on_signal, server);
    struct event *stop_term = evsignal_new(base, SIGTERM, on_signal, server);
    if (!stop_int || !stop_term || evsignal_add(stop_int, NULL) || evsignal_add(stop_term, NULL))
        err = CSGI_ESYSTEM;
    else
        err = csgi_server_run(server);
    if (stop_int)
        event_free(stop_int);
    if (stop_term)
        event_free(stop_term);
    csgi_server_free(server);
    return err;
}
