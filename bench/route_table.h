/*
 * The route table of the router benchmarks (bench/router_hello.c,
 * bench/routed_json.c): 99 routes of four shapes, before each program's
 * own last route, so that both measure a router of 100 routes of the same
 * shape.
 */
#ifndef CSGI_BENCH_ROUTE_TABLE_H
#define CSGI_BENCH_ROUTE_TABLE_H

#include <csgi.h>

/*
 * Add the 99 routes to router, all to app (a reference each): unnamed,
 * "GET" or "GET,POST", of the shapes /v2/{project_id:hex}/resourceN,
 * /v2/{project_id:hex}/resourceN/{id:int}, /v1/thingsN/{name} and
 * /staticN/{file:[a-z0-9_.-]+}, N from 0 to 98. Returns 0, or 1 when a route
 * could not be added.
 */
int route_table_add(csgi_router *router, csgi_app *app);

#endif
