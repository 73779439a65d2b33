/*
 * Hello World behind a router of 100 routes: the benchmark's measure of
 * what matching costs a request (bench/router.sh; examples/hello is the
 * same application without the router).
 *
 *   router_hello [--baseline] [--host ADDRESS] [--port N]
 *
 * 99 routes of four shapes (literals, {name}, {name:hex}, {name:int}, a
 * regular expression) come first; the last route added,
 * GET /v2/{project_id:hex}/servers/{server_id:int}/action, leads to hello.
 * The benchmark requests BENCH_PATH below. --baseline serves, instead of
 * the router, hello after reading REQUEST_METHOD and PATH_INFO, as any
 * application that routes must (examples/hello reads no key). Only the
 * public API (<csgi.h>), served by csgi_serve(); --port 0 picks a free
 * port and the first line printed names the address bound. SIGINT and
 * SIGTERM stop it gracefully.
 */
#include <csgi.h>

#include "hello_app.h"
#include "route_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The path bench/router.sh requests (it matches the last route). */
#define BENCH_PATH "/v2/4f2a9c01/servers/42/action"

/* --baseline: what a router reads, then hello (state: hello). */
static csgi_body *baseline_call(void *state, csgi_environ *environ,
                                csgi_start_response *start_response)
{
    if (!csgi_environ_get(environ, "REQUEST_METHOD") || !csgi_environ_get(environ, "PATH_INFO"))
        return NULL;
    return csgi_app_call(state, environ, start_response);
}

static void baseline_destroy(void *state)
{
    csgi_app_free(state);
}

static const csgi_app_type baseline_type = {"baseline", baseline_call, baseline_destroy};

/* The 100 routes, all to hello (one reference each). */
static int add_routes(csgi_router *router, csgi_app *hello)
{
    if (route_table_add(router, hello) != 0)
        return 1;
    return csgi_router_add(router, "action", "GET",
                           "/v2/{project_id:hex}/servers/{server_id:int}/action",
                           csgi_app_ref(hello)) != 0;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 8080;
    int baseline = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--baseline") == 0) {
            baseline = 1;
        } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end;
            long value = strtol(argv[++i], &end, 10);
            if (*end || value < 0 || value > 65535) {
                fprintf(stderr, "router_hello: bad port %s\n", argv[i]);
                return 2;
            }
            port = (int)value;
        } else {
            fprintf(stderr, "usage: router_hello [--baseline] [--host ADDRESS] [--port N]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }

    csgi_app *hello = NULL, *app = NULL;
    csgi_router *router = NULL;
    if (hello_app_new(&hello) != 0)
        return 1;
    if (baseline) /* takes hello (also when it fails) */
        return csgi_app_new(&app, &baseline_type, hello) != 0 || csgi_serve(app, host, port) != 0;
    if (csgi_router_new(&router) != 0)
        return 1;
    int failed = add_routes(router, hello);
    csgi_app_free(hello); /* the routes hold their own references */
    if (failed) {
        csgi_router_free(router);
        return 1;
    }
    if (csgi_router_app(&app, &router) != 0)
        return 1;
    return csgi_serve(app, host, port) == 0 ? 0 : 1;
}
