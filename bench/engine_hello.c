/*
 * Hello World on csgi's HTTP engine alone, without the gateway: the
 * benchmark's measure of what the gateway layer costs (examples/hello is
 * the same answer as a csgi application).
 *
 *   engine_hello [--host ADDRESS] [--port N] [--threads N]
 *
 * Serves on 127.0.0.1:8080 by default; --port 0 picks a free port. The
 * first line printed names the address actually bound. SIGINT and SIGTERM
 * stop it gracefully.
 */
#include "http/engine.h"

#include <csgi.h>

#include <event2/event.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char body[] = "Hello World";

static void on_request(csgi_http__request *req, void *userdata)
{
    static const csgi_http__header headers[] = {
        {"Content-Type", 12, "text/html", 9},
    };
    (void)userdata;
    if (csgi_http__response_start(req, 200, NULL, headers, 1, sizeof(body) - 1) != 0 ||
        csgi_http__response_write(req, body, sizeof(body) - 1) != 0 ||
        csgi_http__response_finish(req) != 0)
        csgi_http__response_abort(req, 500, 0);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    fprintf(stderr, "engine_hello: signal %d, stopping\n", (int)sig);
    csgi_http__engine_stop(arg, 5000);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: engine_hello [--host ADDRESS] [--port N] [--threads N]\n"
                 "Serves \"Hello World\" on http://127.0.0.1:8080/ (port 0: any free port).\n");
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    const char *port = "8080";
    unsigned threads = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = argv[++i];
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    csgi_http__options options;
    csgi_http__options_init(&options);
    options.threads = threads ? threads : 1;
    csgi_http__handler handler = {on_request, NULL};
    csgi_http__engine *engine;
    int err = csgi_http__engine_new(&engine, &options, &handler, NULL);
    if (err) {
        fprintf(stderr, "engine_hello: %s\n", csgi_strerror(err));
        return 1;
    }

    char address[300];
    int v6 = strchr(host, ':') != NULL && host[0] != '[';
    snprintf(address, sizeof(address), v6 ? "[%s]:%s" : "%s:%s", host, port);
    err = csgi_http__engine_listen(engine, address);
    if (!err)
        err = csgi_http__engine_start(engine);
    if (err) {
        fprintf(stderr, "engine_hello: cannot serve on %s: %s\n", address, csgi_strerror(err));
        csgi_http__engine_free(engine);
        return 1;
    }
    printf("engine_hello: serving on http://%s%s%s:%d/\n", v6 ? "[" : "", host, v6 ? "]" : "",
           csgi_http__engine_listener_port(engine, 0));
    fflush(stdout);

    struct event_base *base = csgi_http__engine_base(engine);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, engine);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, engine);
    evsignal_add(sigint, NULL);
    evsignal_add(sigterm, NULL);
    err = csgi_http__engine_run(engine);
    event_free(sigint);
    event_free(sigterm);
    csgi_http__engine_free(engine);
    return err ? 1 : 0;
}
