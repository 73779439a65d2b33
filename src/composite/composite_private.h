/*
 * The composites' INI factories (internal), each beside its composite: the
 * loader knows them as built-ins (src/loader/registry.c).
 */
#ifndef CSGI_COMPOSITE_COMPOSITE_PRIVATE_H
#define CSGI_COMPOSITE_COMPOSITE_PRIVATE_H

#include <csgi/loader.h>

/* urlmap.c: egg:csgi#urlmap and egg:Paste#urlmap (Paste's urlmap_factory):
   every key but not_found_app and debug is a route. */
int csgi_urlmap__factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                         const csgi_conf *local_conf, csgi_load_error *error);

/* urlmap.c: the not_found_app of a composite's section (local, else global
   conf), built through the loader into *out; *out stays NULL when the key
   is absent. 0 or the loader's error. */
int csgi_composite__not_found_app(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                                  const csgi_conf *local_conf, csgi_load_error *error);

/* cascade.c: egg:csgi#cascade and egg:Paste#cascade (Paste's make_cascade):
   keys app1, app2, ... (sorted by number) and catch. */
int csgi_cascade__factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                          const csgi_conf *local_conf, csgi_load_error *error);

/* router.c: egg:csgi#router: keys route.NAME = "METHODS /pattern app" and
   not_found_app. */
int csgi_router__factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                         const csgi_conf *local_conf, csgi_load_error *error);

#endif
