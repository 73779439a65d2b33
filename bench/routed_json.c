/*
 * A routed JSON endpoint: the benchmark's measure of what a small API
 * request costs end to end (bench/run.sh's "json" server), beside hello's
 * bare gateway.
 *
 *   routed_json [--host ADDRESS] [--port N]
 *
 * A router of 100 routes of the shapes of bench/router_hello.c: 99 first,
 * then GET /v2/{project_id:hex}/servers/{id:int}, whose handler
 * (csgi/handler.h) answers a small JSON object built with jansson and set
 * with csgi_response_set_json():
 *
 *   GET /v2/4f2a9c01/servers/42
 *   -> 200, Content-Type: application/json,
 *      {"server":{"id":42,"project_id":"4f2a9c01","status":"ACTIVE"}}
 *
 * The other routes lead to the same handler (their requests get the object
 * with null values). Only the public API, served by csgi_serve(); --port 0
 * picks a free port and the first line printed names the address bound.
 * SIGINT and SIGTERM stop it gracefully.
 */
#include <csgi.h>
#include <csgi/handler.h>
#include <csgi/json.h>

#include "route_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The request's id as a JSON integer, or null without one. */
static json_t *id_value(const char *id)
{
    if (!id)
        return json_null();
    return json_integer((json_int_t)strtoll(id, NULL, 10)); /* {id:int}: digits only */
}

/* GET /v2/{project_id:hex}/servers/{id:int}: the server as JSON. */
static csgi_response *show_server(csgi_request *request, void *userdata)
{
    csgi_environ *environ = csgi_request_environ(request);
    const char *project = csgi_router_arg(environ, "project_id");
    (void)userdata;
    json_t *server = json_object();
    json_t *body = json_object();
    if (!server || !body ||
        json_object_set_new(server, "id", id_value(csgi_router_arg(environ, "id"))) ||
        json_object_set_new(server, "project_id", project ? json_string(project) : json_null()) ||
        json_object_set_new(server, "status", json_string("ACTIVE")) ||
        json_object_set_new(body, "server", server)) {
        json_decref(body);
        return NULL;
    }
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_json(response, body) != 0) /* takes body */
        return NULL;
    return response;
}

/* The 100 routes, all to the handler (one reference each): the table of
   bench/router_hello.c, then the endpoint. */
static int add_routes(csgi_router *router, csgi_app *handler)
{
    if (route_table_add(router, handler) != 0)
        return 1;
    return csgi_router_add(router, "server", "GET", "/v2/{project_id:hex}/servers/{id:int}",
                           csgi_app_ref(handler)) != 0;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 8080;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end;
            long value = strtol(argv[++i], &end, 10);
            if (*end || value < 0 || value > 65535) {
                fprintf(stderr, "routed_json: bad port %s\n", argv[i]);
                return 2;
            }
            port = (int)value;
        } else {
            fprintf(stderr, "usage: routed_json [--host ADDRESS] [--port N]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }

    csgi_app *handler = NULL, *app = NULL;
    csgi_router *router = NULL;
    if (csgi_handler_app(&handler, "show_server", show_server, NULL, NULL) != 0)
        return 1;
    if (csgi_router_new(&router) != 0) {
        csgi_app_free(handler);
        return 1;
    }
    int failed = add_routes(router, handler);
    csgi_app_free(handler); /* the routes hold their own references */
    if (failed) {
        csgi_router_free(router);
        return 1;
    }
    if (csgi_router_app(&app, &router) != 0)
        return 1;
    return csgi_serve(app, host, port) == 0 ? 0 : 1; /* takes app */
}
