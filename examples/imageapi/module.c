/*
 * The factories of imageapi.so, as imageapi-paste.ini names them
 * (paste.app_factory = imageapi:identity_factory, ...).
 */
#include "imageapi.h"

extern const csgi_entry_point csgi_plugin_entry_points[];

const csgi_entry_point csgi_plugin_entry_points[] = {
    {NULL, CSGI_FACTORY_APP, NULL, NULL, NULL},
};
