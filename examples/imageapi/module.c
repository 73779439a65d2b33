/*
 * The factories of imageapi.so, as imageapi-paste.ini names them
 * (paste.app_factory = imageapi:identity_factory, ...).
 */
#include "imageapi.h"

extern const csgi_entry_point csgi_plugin_entry_points[];

int compute_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                    const csgi_conf *local_conf, csgi_load_error *error);

int identity_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                     const csgi_conf *local_conf, csgi_load_error *error);
int revocation_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                       const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error);

const csgi_entry_point csgi_plugin_entry_points[] = {
    /* compute (compute.c) */
    {"compute_factory", CSGI_FACTORY_APP, compute_factory, NULL, NULL},
    /* identity (identity.c, revoked.c) */
    {"identity_factory", CSGI_FACTORY_APP, identity_factory, NULL, NULL},
    {"revocation_factory", CSGI_FACTORY_FILTER, NULL, revocation_factory, NULL},
    /* image (image.c) */
    {"image_versions_factory", CSGI_FACTORY_APP, image_versions_factory, NULL, NULL},
    {"image_v2_factory", CSGI_FACTORY_APP, image_v2_factory, NULL, NULL},
    {"image_v1_factory", CSGI_FACTORY_APP, image_v1_factory, NULL, NULL},
    {NULL, CSGI_FACTORY_APP, NULL, NULL, NULL},
};
