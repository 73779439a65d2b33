/*
 * The route table of the router benchmarks (route_table.h).
 */
#include "route_table.h"

#include <stdio.h>

int route_table_add(csgi_router *router, csgi_app *app)
{
    /* Each shape: the text before the number, the text after it. */
    static const char *const shapes[][2] = {
        {"/v2/{project_id:hex}/resource", ""},
        {"/v2/{project_id:hex}/resource", "/{id:int}"},
        {"/v1/things", "/{name}"},
        {"/static", "/{file:[a-z0-9_.-]+}"},
    };
    char pattern[128];
    for (int i = 0; i < 99; i++) {
        snprintf(pattern, sizeof(pattern), "%s%d%s", shapes[i % 4][0], i, shapes[i % 4][1]);
        if (csgi_router_add(router, NULL, i % 3 ? "GET" : "GET,POST", pattern, csgi_app_ref(app)) !=
            0)
            return 1;
    }
    return 0;
}
