/*
 * The healthcheck application and filter (oslo_middleware's Healthcheck)
 * with their INI factories: a load balancer asks GET /healthcheck and hears
 * 200 "OK", or 503 with the reasons its backends give:
 *   disable_by_file         "DISABLED BY FILE" while disable_by_file_path exists;
 *   disable_by_files_ports  the same per port: disable_by_file_paths =
 *                           PORT:FILE, ..., the file of the request's SERVER_PORT;
 *   enable_by_files         "FILE PATH MISSING" while one of enable_by_file_paths
 *                           does not exist.
 *
 * As an application it answers whatever path it is mounted at; as a filter
 * it answers PATH_INFO equal to its `path` (default /healthcheck) and
 * passes every other request on. A request it ignores, as oslo does (a
 * client outside allowed_source_ranges, or with proxy headers under
 * ignore_proxied_requests), goes on to the next application; the
 * application form, with nothing to pass it to, answers 404. With detailed
 * = true a client asking for application/json gets the backends' results
 * as JSON. HEAD gets the headers only (the response layer drops the body).
 */
#include "common/alloc.h"
#include "middleware/healthcheck.h"
#include "gateway/environ_private.h"
#include "middleware/middleware.h"

#include <csgi/environ.h>
#include <csgi/handler.h>

#include <jansson.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct healthcheck {
    char *path; /* filter form: the path answered */
    size_t path_len;
    csgi_healthcheck__backends backends;
    csgi_middleware__network *sources; /* allowed_source_ranges; none: everyone */
    size_t source_count;
    bool ignore_proxied;
    bool detailed;
} healthcheck;

static void healthcheck_destroy(void *userdata)
{
    healthcheck *h = userdata;
    if (!h)
        return;
    csgi__free(h->path);
    csgi_healthcheck__backends_clear(&h->backends);
    csgi__free(h->sources);
    csgi__free(h);
}

static csgi_response *answer(csgi_request *request, const healthcheck *h)
{
    const char *port_text = csgi_environ_get(csgi_request_environ(request), "SERVER_PORT");
    unsigned port = port_text ? (unsigned)strtoul(port_text, NULL, 10) : 0;
    char text[CSGI_HEALTHCHECK__TEXT_SIZE];
    json_t *reasons = json_array();
    bool healthy = csgi_healthcheck__backends_run(&h->backends, port, h->detailed, text, reasons);
    json_t *body = json_pack("{s:b, s:o}", "detailed", h->detailed, "reasons", reasons);
    static const char *const offers[] = {"text/plain", "application/json"};
    bool as_json = csgi_request_accept_best(request, offers, 2) == 1;
    csgi_response *response = csgi_handler_response(request);
    int rc = response ? csgi_response_set_status(response, healthy ? 200 : 503) : CSGI_ENOMEM;
    if (rc == 0 && as_json) {
        rc = csgi_response_set_json(response, body); /* takes body */
        body = NULL;
    } else if (rc == 0) {
        rc = csgi_response_set_text(response, text, "utf-8");
    }
    json_decref(body);
    return rc == 0 ? response : NULL;
}

/* Whether oslo ignores the request: a client outside allowed_source_ranges
   (when given), or with ignore_proxied_requests one that came through a
   proxy. oslo looks at X-Forwarded and X-Forwarded-Proto, -Host, -For and
   -Prefix; csgi counts RFC 7239's Forwarded as well. */
static bool ignored(csgi_request *request, const healthcheck *h)
{
    csgi_environ *environ = csgi_request_environ(request);
    if (h->source_count > 0 &&
        !csgi_middleware__networks_match(h->sources, h->source_count,
                                         csgi_environ_get(environ, "REMOTE_ADDR")))
        return true;
    static const char *const proxy_keys[] = {"HTTP_X_FORWARDED",        "HTTP_X_FORWARDED_PROTO",
                                             "HTTP_X_FORWARDED_HOST",   "HTTP_X_FORWARDED_FOR",
                                             "HTTP_X_FORWARDED_PREFIX", "HTTP_FORWARDED"};
    for (size_t i = 0; h->ignore_proxied && i < sizeof(proxy_keys) / sizeof(proxy_keys[0]); i++) {
        const char *value = csgi_environ_get(environ, proxy_keys[i]);
        if (value && value[0])
            return true;
    }
    return false;
}

static csgi_response *healthcheck_app(csgi_request *request, void *userdata)
{
    const healthcheck *h = userdata;
    if (!ignored(request, h))
        return answer(request, h);
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_status(response, 404) != 0 ||
        csgi_response_set_text(response, "Not Found", "utf-8") != 0)
        return NULL;
    return response;
}

static csgi_response *healthcheck_filter(csgi_request *request, csgi_app *next, void *userdata)
{
    const healthcheck *h = userdata;
    if (csgi_environ__path_info_is(csgi_request_environ(request), h->path, h->path_len) &&
        !ignored(request, h))
        return answer(request, h);
    return csgi_handler_forward(request, next);
}

/* ---- INI factories ------------------------------------------------------------------- */

/* oslo's option names; oslo_config_project and oslo_config_file name the
   project's oslo.config files, which csgi does not read. */
static const char *const known[] = {"path",
                                    "detailed",
                                    "backends",
                                    "disable_by_file_path",
                                    "disable_by_file_paths",
                                    "enable_by_file_paths",
                                    "allowed_source_ranges",
                                    "ignore_proxied_requests",
                                    NULL};

static int setup(void **userdata, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                 const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)global_conf;
    int rc = csgi_middleware__known_keys(local_conf, "healthcheck", known, error);
    if (rc != 0)
        return rc;
    const char *path = csgi_conf_get(local_conf, "path");
    if (!path)
        path = "/healthcheck";
    if (path[0] != '/') {
        csgi_conf_error(local_conf, "path", error, "'%s' does not start with /", path);
        return CSGI_EINVAL;
    }
    int detailed = 0, ignore_proxied = 0;
    healthcheck *h = csgi__calloc(1, sizeof(*h));
    if (!h)
        return CSGI_ENOMEM;
    rc = csgi_conf_asbool(local_conf, "detailed", 0, &detailed, error);
    if (rc == 0)
        rc = csgi_conf_asbool(local_conf, "ignore_proxied_requests", 0, &ignore_proxied, error);
    if (rc == 0)
        rc = csgi_middleware__networks_parse(local_conf, "allowed_source_ranges", &h->sources,
                                             &h->source_count, error);
    if (rc == 0)
        rc = csgi_healthcheck__backends_parse(&h->backends, local_conf, error);
    if (rc == 0 && !(h->path = csgi__strndup(path, strlen(path))))
        rc = CSGI_ENOMEM;
    if (rc != 0) {
        healthcheck_destroy(h);
        return rc;
    }
    h->path_len = strlen(h->path);
    h->detailed = detailed != 0;
    h->ignore_proxied = ignore_proxied != 0;
    *userdata = h;
    *destroy = healthcheck_destroy;
    return 0;
}

int csgi_healthcheck__app_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                                  const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    return csgi_handler_app_factory(out, global_conf, local_conf, "healthcheck", healthcheck_app,
                                    setup, error);
}

int csgi_healthcheck__filter_factory(csgi_app **out, csgi_loader *loader,
                                     const csgi_conf *global_conf, const csgi_conf *local_conf,
                                     csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    return csgi_handler_filter_factory(out, global_conf, local_conf, next, "healthcheck",
                                       healthcheck_filter, setup, error);
}
