/*
 * The cors filter (oslo_middleware's CORS) and its INI factory: answers
 * CORS preflight requests and adds Access-Control-Allow-Origin to the
 * answers for the origins in allowed_origin. An origin not on the list
 * gets nothing added: the browser then keeps the answer from the page.
 *
 * The lists are kept as the conf wrote them (comma or space separated) and
 * searched per request; they are short.
 */
#include "common/alloc.h"
#include "middleware/middleware.h"

#include <csgi/handler.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct cors {
    char *allowed_origin;
    char *expose_headers;
    char *allow_methods;
    char *allow_headers;
    char *max_age; /* NULL: not sent */
    bool allow_credentials;
} cors;

/* Headers a preflight may ask for without allow_headers (the CORS simple
   response headers, as oslo). */
static const char simple_headers[] =
    "cache-control content-language content-type expires last-modified pragma";

/* item (len bytes) is one of list's comma- or space-separated entries. */
static bool in_list(const char *list, const char *item, size_t len, bool nocase)
{
    for (const char *p = list; p && *p;) {
        size_t n = strcspn(p, ", \t");
        if (n == len && (nocase ? strncasecmp(p, item, n) : strncmp(p, item, n)) == 0)
            return true;
        p += n + (p[n] != '\0');
    }
    return false;
}

/* The value Access-Control-Allow-Origin gets for origin, or NULL. */
static const char *allowed(const cors *c, const char *origin)
{
    if (!origin || !origin[0])
        return NULL;
    if (in_list(c->allowed_origin, origin, strlen(origin), false))
        return origin;
    return in_list(c->allowed_origin, "*", 1, false) ? "*" : NULL;
}

static int add_origin(csgi_response *response, const cors *c, const char *value)
{
    int rc = csgi_response_add_header(response, "Vary", "Origin");
    if (rc == 0)
        rc = csgi_response_set_header(response, "Access-Control-Allow-Origin", value);
    if (rc == 0 && c->allow_credentials)
        rc = csgi_response_set_header(response, "Access-Control-Allow-Credentials", "true");
    return rc;
}

/* Every header a preflight asks for is allowed. */
static bool headers_allowed(const cors *c, const char *requested)
{
    for (const char *p = requested; p && *p;) {
        size_t n = strcspn(p, ", \t");
        if (n > 0 && !in_list(c->allow_headers, p, n, true) && !in_list(simple_headers, p, n, true))
            return false;
        p += n + (p[n] != '\0');
    }
    return true;
}

static csgi_response *preflight(csgi_request *request, const cors *c, const char *origin,
                                const char *method)
{
    csgi_response *response = csgi_handler_response(request);
    if (!response)
        return NULL;
    const char *value = allowed(c, origin);
    const char *requested = csgi_request_header(request, "Access-Control-Request-Headers", NULL);
    if (!value || !in_list(c->allow_methods, method, strlen(method), false) ||
        !headers_allowed(c, requested))
        return response; /* 200 with nothing: the browser refuses */
    int rc = add_origin(response, c, value);
    if (rc == 0)
        rc = csgi_response_set_header(response, "Access-Control-Allow-Methods", method);
    if (rc == 0 && requested && requested[0])
        rc = csgi_response_set_header(response, "Access-Control-Allow-Headers", requested);
    if (rc == 0 && c->max_age)
        rc = csgi_response_set_header(response, "Access-Control-Max-Age", c->max_age);
    return rc == 0 ? response : NULL;
}

static csgi_response *actual(csgi_request *request, csgi_response *response, void *state)
{
    const cors *c = state;
    const char *value = allowed(c, csgi_request_header(request, "Origin", NULL));
    if (!value)
        return response;
    int rc = add_origin(response, c, value);
    if (rc == 0 && c->expose_headers && c->expose_headers[0]) {
        /* The list as the header wants it: comma separated. */
        char joined[1024];
        size_t used = 0;
        for (const char *p = c->expose_headers; *p && used < sizeof(joined);) {
            size_t n = strcspn(p, ", \t");
            if (n > 0)
                used += (size_t)snprintf(joined + used, sizeof(joined) - used, "%s%.*s",
                                         used ? ", " : "", (int)n, p);
            p += n + (p[n] != '\0');
        }
        if (used > 0 && used < sizeof(joined))
            rc = csgi_response_set_header(response, "Access-Control-Expose-Headers", joined);
    }
    return rc == 0 ? response : NULL;
}

static csgi_response *cors_filter(csgi_request *request, csgi_app *next, void *userdata)
{
    const cors *c = userdata;
    /* By its environ key: every request asks, most have none. */
    const char *origin = csgi_environ_get(csgi_request_environ(request), "HTTP_ORIGIN");
    if (!origin) /* not a cross-origin request: nothing to add */
        return csgi_handler_forward(request, next);
    const char *method = csgi_request_header(request, "Access-Control-Request-Method", NULL);
    if (method && strcmp(csgi_request_method(request), "OPTIONS") == 0)
        return preflight(request, c, origin, method);
    return csgi_handler_forward_then(request, next, actual, userdata);
}

/* ---- INI factory --------------------------------------------------------------------- */

static void cors_destroy(void *userdata)
{
    cors *c = userdata;
    if (!c)
        return;
    csgi__free(c->allowed_origin);
    csgi__free(c->expose_headers);
    csgi__free(c->allow_methods);
    csgi__free(c->allow_headers);
    csgi__free(c->max_age);
    csgi__free(c);
}

static const char *const known[] = {"allowed_origin",
                                    "allow_credentials",
                                    "expose_headers",
                                    "max_age",
                                    "allow_methods",
                                    "allow_headers",
                                    NULL};

static char *copy(const char *s)
{
    return s ? csgi__strndup(s, strlen(s)) : NULL;
}

static int setup(void **userdata, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                 const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)global_conf;
    int rc = csgi_middleware__known_keys(local_conf, "cors", known, error);
    if (rc != 0)
        return rc;
    int credentials = 1;
    long long max_age = -1;
    rc = csgi_conf_asbool(local_conf, "allow_credentials", 1, &credentials, error);
    if (rc == 0)
        rc = csgi_conf_asint(local_conf, "max_age", -1, &max_age, error);
    if (rc != 0)
        return rc;
    if (csgi_conf_get(local_conf, "max_age") && max_age < 0) {
        csgi_conf_error(local_conf, "max_age", error, "must not be negative");
        return CSGI_EINVAL;
    }
    const char *methods = csgi_conf_get(local_conf, "allow_methods");
    cors *c = csgi__calloc(1, sizeof(*c));
    if (!c)
        return CSGI_ENOMEM;
    c->allow_credentials = credentials != 0;
    c->allowed_origin = copy(csgi_conf_get(local_conf, "allowed_origin"));
    c->expose_headers = copy(csgi_conf_get(local_conf, "expose_headers"));
    c->allow_headers = copy(csgi_conf_get(local_conf, "allow_headers"));
    c->allow_methods = copy(methods ? methods : "OPTIONS GET HEAD POST PUT DELETE TRACE PATCH");
    char number[32];
    snprintf(number, sizeof(number), "%lld", max_age);
    c->max_age = max_age >= 0 ? copy(number) : NULL;
    bool missing = (csgi_conf_get(local_conf, "allowed_origin") && !c->allowed_origin) ||
                   (csgi_conf_get(local_conf, "expose_headers") && !c->expose_headers) ||
                   (csgi_conf_get(local_conf, "allow_headers") && !c->allow_headers) ||
                   !c->allow_methods || (max_age >= 0 && !c->max_age);
    if (missing) {
        cors_destroy(c);
        return CSGI_ENOMEM;
    }
    *userdata = c;
    *destroy = cors_destroy;
    return 0;
}

int csgi_cors__filter_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                              const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    return csgi_handler_filter_factory(out, global_conf, local_conf, next, "cors", cors_filter,
                                       setup, error);
}
