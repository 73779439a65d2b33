/*
 * The talk's first Paste example as a csgi module: wsgi_webob.so.
 *
 *     @wsgify
 *     def application(request):
 *         return Response('Hello, World of WebOb !')
 *
 *     def app_factory(global_config, **local_config):
 *         return application
 *
 * The talk's wsgi_webob.ini loads it unchanged:
 *
 *     [app:main]
 *     paste.app_factory = wsgi_webob:app_factory
 *
 * which finds app_factory in the module's exported table
 * csgi_plugin_entry_points, where its kind is declared.
 */
#include <csgi.h>
#include <csgi/loader.h>

static csgi_body *hello_call(void *state, csgi_environ *environ,
                             csgi_start_response *start_response)
{
    static const char body[] = "Hello, World of WebOb !";
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/html")};
    (void)state;
    if (csgi_start_response_call(start_response, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_static(environ, body, sizeof(body) - 1);
}

static const csgi_app_type hello_type = {"wsgi_webob.application", hello_call, NULL};

static int app_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                       const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)local_conf;
    (void)error;
    return csgi_app_new(out, &hello_type, NULL);
}

/* What the module exports: its factories and their kinds. */
extern const csgi_entry_point csgi_plugin_entry_points[];

const csgi_entry_point csgi_plugin_entry_points[] = {
    {"app_factory", CSGI_FACTORY_APP, app_factory, NULL, NULL},
    {NULL, CSGI_FACTORY_APP, NULL, NULL, NULL},
};
