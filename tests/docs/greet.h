/* greet.h: the factories of greet.c. */
#ifndef GREET_H
#define GREET_H

#include <csgi.h>
#include <csgi/loader.h>

int hello_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                  const csgi_conf *local_conf, csgi_load_error *error);
int auth_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                 const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error);
int strategy_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                     const csgi_conf *local_conf, csgi_load_error *error);

/* The table the loader reads in greet.so. */
extern const csgi_entry_point csgi_plugin_entry_points[];

#endif
