/*
 * The healthcheck application and filter (oslo_middleware's Healthcheck)
 * with their INI factories: a load balancer asks GET /healthcheck and hears
 * 200 "OK", or 503 "DISABLED BY FILE" while an operator's file exists
 * (backends = disable_by_file, disable_by_file_path = FILE).
 *
 * As an application it answers whatever path it is mounted at; as a filter
 * it answers PATH_INFO equal to its `path` (default /healthcheck) and
 * passes every other request on. With detailed = true a client asking for
 * application/json gets the backends' results as JSON. HEAD gets the
 * headers only (the response layer drops the body).
 */
#include "common/alloc.h"
#include "middleware/middleware.h"

#include <csgi/handler.h>

#include <jansson.h>

#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

typedef struct healthcheck {
    char *path;         /* filter form: the path answered */
    char *disable_file; /* NULL: no disable_by_file backend */
    bool detailed;
} healthcheck;

static void healthcheck_destroy(void *userdata)
{
    healthcheck *h = userdata;
    if (!h)
        return;
    csgi__free(h->path);
    csgi__free(h->disable_file);
    csgi__free(h);
}

static csgi_response *answer(csgi_request *request, const healthcheck *h)
{
    struct stat st;
    bool disabled = h->disable_file && stat(h->disable_file, &st) == 0;
    const char *reason = disabled ? "DISABLED BY FILE" : "OK";
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_status(response, disabled ? 503 : 200) != 0)
        return NULL;
    static const char *const offers[] = {"text/plain", "application/json"};
    if (csgi_request_accept_best(request, offers, 2) != 1) {
        if (csgi_response_set_text(response, reason, "utf-8") != 0)
            return NULL;
        return response;
    }
    json_t *reasons = json_array();
    if (h->detailed && h->disable_file)
        json_array_append_new(reasons,
                              json_pack("{s:s, s:s, s:{s:s}}", "class", "DisableByFileHealthcheck",
                                        "reason", reason, "details", "path", h->disable_file));
    else
        json_array_append_new(reasons, json_string(reason));
    json_t *body = json_pack("{s:b, s:o}", "detailed", h->detailed, "reasons", reasons);
    if (csgi_response_set_json(response, body) != 0)
        return NULL;
    return response;
}

static csgi_response *healthcheck_app(csgi_request *request, void *userdata)
{
    return answer(request, userdata);
}

static csgi_response *healthcheck_filter(csgi_request *request, csgi_app *next, void *userdata)
{
    const healthcheck *h = userdata;
    size_t len;
    const char *path = csgi_request_path_info(request, &len);
    if (path && len == strlen(h->path) && memcmp(path, h->path, len) == 0)
        return answer(request, h);
    return csgi_handler_forward(request, next);
}

/* ---- INI factories ------------------------------------------------------------------- */

/* oslo's option names; oslo_config_project and oslo_config_file name the
   project's oslo.config files, which csgi does not read. */
static const char *const known[] = {"path", "detailed", "backends", "disable_by_file_path", NULL};

static int setup(void **userdata, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                 const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)global_conf;
    int rc = csgi_middleware__known_keys(local_conf, "healthcheck", known, error);
    if (rc != 0)
        return rc;
    const char *const *backends = NULL;
    size_t count = 0;
    int detailed = 0;
    rc = csgi_conf_asbool(local_conf, "detailed", 0, &detailed, error);
    if (rc == 0)
        rc = csgi_conf_aslist(local_conf, "backends", &backends, &count, error);
    if (rc != 0)
        return rc;
    /* The list may be written "a, b" (oslo.config) or "a b" (PasteDeploy). */
    bool by_file = false;
    for (size_t i = 0; i < count; i++) {
        size_t n = strcspn(backends[i], ",");
        if (n == 0)
            continue;
        if (n != strlen("disable_by_file") || memcmp(backends[i], "disable_by_file", n) != 0) {
            csgi_conf_error(local_conf, "backends", error,
                            "'%.*s' is not a healthcheck backend (known: disable_by_file)", (int)n,
                            backends[i]);
            return CSGI_EINVAL;
        }
        by_file = true;
    }
    const char *file = csgi_conf_get(local_conf, "disable_by_file_path");
    if (by_file && (!file || !file[0])) {
        csgi_conf_error(local_conf, "backends", error,
                        "disable_by_file needs disable_by_file_path");
        return CSGI_EINVAL;
    }
    const char *path = csgi_conf_get(local_conf, "path");
    if (!path)
        path = "/healthcheck";
    if (path[0] != '/') {
        csgi_conf_error(local_conf, "path", error, "'%s' does not start with /", path);
        return CSGI_EINVAL;
    }
    healthcheck *h = csgi__calloc(1, sizeof(*h));
    if (h) {
        h->detailed = detailed != 0;
        h->path = csgi__strndup(path, strlen(path));
        h->disable_file = by_file ? csgi__strndup(file, strlen(file)) : NULL;
    }
    if (!h || !h->path || (by_file && !h->disable_file)) {
        healthcheck_destroy(h);
        return CSGI_ENOMEM;
    }
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
