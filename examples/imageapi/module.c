/*
 * The factories of imageapi.so, as imageapi-paste.ini names them
 * (paste.app_factory = imageapi:identity_factory, ...).
 */
#include "imageapi.h"

extern const csgi_entry_point csgi_plugin_entry_points[];

const csgi_entry_point csgi_plugin_entry_points[] = {
    /* image (image.c) */
    {"image_versions_factory", CSGI_FACTORY_APP, image_versions_factory, NULL, NULL},
    {"image_v2_factory", CSGI_FACTORY_APP, image_v2_factory, NULL, NULL},
    {"image_v1_factory", CSGI_FACTORY_APP, image_v1_factory, NULL, NULL},
    {NULL, CSGI_FACTORY_APP, NULL, NULL, NULL},
};
