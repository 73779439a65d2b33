/*
 * A module for tests/check_modules.c that declares nothing: notable.so
 * exports filter_factory, a filter factory, and no csgi_plugin_entry_points
 * table. `paste.app_factory = notable:filter_factory` names it as an app
 * factory; calling it through that signature would crash, so the loader
 * must refuse it with an error instead (its kind is not declared).
 */
#include <csgi.h>
#include <csgi/loader.h>

int filter_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                   const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error);

int filter_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                   const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)local_conf;
    (void)error;
    *out = next; /* through an app factory's signature, next is the out pointer */
    return 0;
}
