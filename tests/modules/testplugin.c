/*
 * A plugin for tests/check_modules.c: testplugin.so, reached through
 * `egg:testplugin#NAME`. Its entry points table names
 *
 *   main   (app)    "plugin main", 200
 *   teapot (filter) 418 for PATH_INFO /tea, else the next application
 *
 * and it exports bare_filter, a filter factory the table does not list:
 * `paste.app_factory = testplugin:teapot` (a filter named as an app) and
 * `paste.filter_factory = testplugin:bare_filter` (a kind never declared)
 * must be clear errors, never a call through the wrong signature.
 */
#include <csgi.h>
#include <csgi/loader.h>

#include <stdlib.h>
#include <string.h>

static csgi_body *main_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    static const char body[] = "plugin main";
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    (void)state;
    if (csgi_start_response_call(start_response, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_static(environ, body, sizeof(body) - 1);
}

static const csgi_app_type main_type = {"testplugin.main", main_call, NULL};

static int main_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                        const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)local_conf;
    (void)error;
    return csgi_app_new(out, &main_type, NULL);
}

static csgi_body *teapot_call(void *state, csgi_environ *environ,
                              csgi_start_response *start_response)
{
    static const char body[] = "short and stout";
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    const char *path = csgi_environ_get(environ, "PATH_INFO");
    if (!path || strcmp(path, "/tea") != 0)
        return csgi_app_call(state, environ, start_response);
    if (csgi_start_response_call(start_response, "418 I'm a teapot", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_static(environ, body, sizeof(body) - 1);
}

static void teapot_destroy(void *state)
{
    csgi_app_free(state);
}

static const csgi_app_type teapot_type = {"testplugin.teapot", teapot_call, teapot_destroy};

static int teapot_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                          const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)local_conf;
    (void)error;
    return csgi_app_new(out, &teapot_type, next); /* destroys next on failure */
}

/* Exported, but not in the table: the loader must never call it. */
int bare_filter(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error);

int bare_filter(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error)
{
    return teapot_factory(out, loader, global_conf, local_conf, next, error);
}

/* Exported: what egg:testplugin#NAME and testplugin:NAME look NAME up in. */
extern const csgi_entry_point csgi_plugin_entry_points[];

const csgi_entry_point csgi_plugin_entry_points[] = {
    {"main", CSGI_FACTORY_APP, main_factory, NULL, NULL},
    {"teapot", CSGI_FACTORY_FILTER, NULL, teapot_factory, NULL},
    {NULL, CSGI_FACTORY_APP, NULL, NULL, NULL},
};
