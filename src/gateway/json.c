/* JSON values in the environ (include/csgi/json.h). */
#include "gateway/environ_private.h"

#include <csgi/json.h>

static void release(void *value)
{
    json_decref(value);
}

int csgi_environ_set_json_new(csgi_environ *environ, const char *key, json_t *value)
{
    if (!value)
        return CSGI_EINVAL;
    /* set_value takes the reference, and releases it when it fails. */
    return csgi_environ__set_value(environ, key, CSGI_VALUE_JSON, value, release);
}

int csgi_environ_set_json(csgi_environ *environ, const char *key, json_t *value)
{
    if (!value)
        return CSGI_EINVAL;
    return csgi_environ_set_json_new(environ, key, json_incref(value));
}

json_t *csgi_environ_get_json(csgi_environ *environ, const char *key)
{
    return csgi_environ__get_value(environ, key, CSGI_VALUE_JSON);
}
