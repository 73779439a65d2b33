/*
 * keystonemiddleware's audit filter, shared between audit.c (the filter,
 * its events and its factory) and audit_map.c (the audit map file, the
 * action of a request and its target).
 */
#ifndef CSGI_MIDDLEWARE_AUDIT_H
#define CSGI_MIDDLEWARE_AUDIT_H

#include "loader/error.h"

#include <csgi/environ.h>

#include <jansson.h>
#include <stddef.h>

/* key = value pairs of one section of the map, keys lower-cased as
   ConfigParser does. */
typedef struct csgi_audit__pairs {
    char **keys, **values;
    size_t count;
} csgi_audit__pairs;

/* audit_map_file: all empty (zeroed) when there is none. */
typedef struct csgi_audit__map {
    char *default_type;               /* [DEFAULT] target_endpoint_type, or NULL */
    csgi_audit__pairs path_keywords;  /* [path_keywords] */
    csgi_audit__pairs custom_actions; /* [custom_actions] */
    csgi_audit__pairs endpoints;      /* [service_endpoints]: catalog type to CADF type */
} csgi_audit__map;

/* Read the map file at path into map (zeroed); errors at file:line. On
   failure what was read stays for csgi_audit__map_free. */
int csgi_audit__map_load(csgi_audit__map *map, const char *path, csgi_load_error *error);

/* Release what map holds (not map itself). */
void csgi_audit__map_free(csgi_audit__map *map);

/* The CADF action of method on path (WebOb's req.path): a map string or a
   literal; buf (size bytes) is scratch space. */
const char *csgi_audit__action(const csgi_audit__map *map, const char *method, const char *path,
                               char *buf, size_t size);

/* What csgi_audit__action returns for POST .../action, whose action is in
   the body (compare the pointer). */
extern const char csgi_audit__from_body[];

/* The body of a POST .../action as the application reads it. */
typedef struct csgi_audit__body csgi_audit__body;

/* Put a stream before the request's csgi.input that keeps the first bytes
   the application reads (in the request's arena). NULL without memory. */
csgi_audit__body *csgi_audit__watch_body(csgi_environ *environ);

/* keystonemiddleware's action for the body: "update/<first key>" of a
   JSON object, "create" for any other body (empty, not JSON, {}); "update"
   when the application did not read it all (body NULL too). */
const char *csgi_audit__body_action(const csgi_audit__body *body, csgi_environ *environ);

/* The event's target: the catalog's service for this request, typed by
   the map (a new reference, or NULL without memory). */
json_t *csgi_audit__target(const csgi_audit__map *map, csgi_environ *environ, const char *path);

#endif
