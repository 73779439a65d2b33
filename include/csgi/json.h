/**
 * @file csgi/json.h
 * @brief JSON values (jansson) in the environ.
 *
 * The one public header that includes jansson: include it only where you
 * use JSON values. Middleware stores parsed documents here (an
 * authentication filter's token information) for the application behind it.
 */
#ifndef CSGI_JSON_H
#define CSGI_JSON_H

#include "common.h"
#include "environ.h"

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Set a key to a JSON value, keeping the caller's reference (the environ
 * takes one of its own, released when the request ends or the key is
 * replaced or removed).
 *
 * @param value the value (borrowed); not NULL
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_environ_set_json(csgi_environ *environ, const char *key, json_t *value);

/**
 * Set a key to a JSON value, stealing the caller's reference (like
 * json_object_set_new): convenient with a value just made.
 *
 * @param value the value (taken, also when this call fails); not NULL
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_environ_set_json_new(csgi_environ *environ, const char *key, json_t *value);

/**
 * The JSON value of a key.
 *
 * @return the value, borrowed until the request ends (or the key changes);
 *         NULL when not set or of another kind.
 */
CSGI_EXTERN json_t *csgi_environ_get_json(csgi_environ *environ, const char *key);

#ifdef __cplusplus
}
#endif

#endif /* CSGI_JSON_H */
