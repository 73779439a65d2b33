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
#include "middleware/middleware.h"

#include <csgi/environ.h>
#include <csgi/handler.h>

#include <jansson.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum backend { DISABLE_BY_FILE, DISABLE_BY_FILES_PORTS, ENABLE_BY_FILES, BACKENDS };
static const char *const backend_names[BACKENDS] = {"disable_by_file", "disable_by_files_ports",
                                                    "enable_by_files"};
static const char *const backend_classes[BACKENDS] = {
    "DisableByFileHealthcheck", "DisableByFilesPortsHealthcheck", "EnableByFilesHealthcheck"};

/* oslo's backends run in the order named, a name given twice twice. */
#define MAX_BACKENDS 8

typedef struct port_file {
    unsigned port;
    char *path;
} port_file;

typedef struct healthcheck {
    char *path;            /* filter form: the path answered */
    char *disable_file;    /* disable_by_file's */
    port_file *port_files; /* disable_by_files_ports's */
    size_t port_file_count;
    char **enable_files; /* enable_by_files's */
    size_t enable_file_count;
    enum backend backends[MAX_BACKENDS];
    size_t backend_count;
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
    csgi__free(h->disable_file);
    for (size_t i = 0; i < h->port_file_count; i++)
        csgi__free(h->port_files[i].path);
    csgi__free(h->port_files);
    for (size_t i = 0; i < h->enable_file_count; i++)
        csgi__free(h->enable_files[i]);
    csgi__free(h->enable_files);
    csgi__free(h->sources);
    csgi__free(h);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* One backend's verdict on the request: reason, and for detailed JSON the
   class and details (a new reference). */
static bool check(const healthcheck *h, enum backend backend, unsigned port, const char **reason,
                  json_t **details)
{
    const char *missing = NULL;
    switch (backend) {
    case DISABLE_BY_FILE:
        *details = json_pack("{s:s}", "path", h->disable_file);
        *reason = exists(h->disable_file) ? "DISABLED BY FILE" : "OK";
        break;
    case DISABLE_BY_FILES_PORTS:
        *details = json_pack("{s:i}", "port", (json_int_t)port);
        *reason = "OK";
        for (size_t i = 0; i < h->port_file_count; i++) {
            if (h->port_files[i].port != port)
                continue;
            json_object_set_new(*details, "path", json_string(h->port_files[i].path));
            if (exists(h->port_files[i].path))
                *reason = "DISABLED BY FILE";
            break;
        }
        break;
    default:
        for (size_t i = 0; i < h->enable_file_count && !missing; i++)
            if (!exists(h->enable_files[i]))
                missing = h->enable_files[i];
        *details = missing ? json_pack("{s:s}", "missing", missing) : json_object();
        *reason = missing ? "FILE PATH MISSING" : "OK";
        break;
    }
    return strcmp(*reason, "OK") == 0;
}

static csgi_response *answer(csgi_request *request, const healthcheck *h)
{
    const char *port_text = csgi_environ_get(csgi_request_environ(request), "SERVER_PORT");
    unsigned port = port_text ? (unsigned)strtoul(port_text, NULL, 10) : 0;
    bool healthy = true;
    /* Without backends: one "OK", as csgi always answered. */
    char text[MAX_BACKENDS * 20] = "OK";
    size_t used = 0;
    json_t *reasons = json_array();
    for (size_t i = 0; i < h->backend_count; i++) {
        const char *reason;
        json_t *details = NULL;
        healthy &= check(h, h->backends[i], port, &reason, &details);
        used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%s", i ? "\n" : "", reason);
        json_t *entry = h->detailed
                            ? json_pack("{s:s, s:s, s:O}", "class", backend_classes[h->backends[i]],
                                        "reason", reason, "details", details)
                            : json_string(reason);
        json_array_append_new(reasons, entry);
        json_decref(details);
    }
    if (h->backend_count == 0)
        json_array_append_new(reasons, json_string("OK"));
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
    size_t len;
    const char *path = csgi_request_path_info(request, &len);
    if (path && len == strlen(h->path) && memcmp(path, h->path, len) == 0 && !ignored(request, h))
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

/* The next item of a list written "a, b" (oslo.config) or "a b"
   (PasteDeploy) from *cursor; NULL at the end. */
static const char *next_item(const char **cursor, size_t *len)
{
    const char *p = *cursor;
    if (!p)
        return NULL;
    p += strspn(p, ", \t\r\n");
    *len = strcspn(p, ", \t\r\n");
    *cursor = p + *len;
    return *len ? p : NULL;
}

static size_t count_items(const char *list)
{
    size_t n = 0, len;
    while (next_item(&list, &len))
        n++;
    return n;
}

/* disable_by_file_paths: PORT:FILE, ... (oslo splits at the first colon). */
static int parse_port_files(healthcheck *h, const csgi_conf *conf, csgi_load_error *error)
{
    const char *list = csgi_conf_get(conf, "disable_by_file_paths"), *item;
    size_t len;
    h->port_files = csgi__calloc(count_items(list), sizeof(port_file));
    if (!h->port_files)
        return CSGI_ENOMEM;
    while ((item = next_item(&list, &len))) {
        const char *colon = memchr(item, ':', len);
        size_t digits = colon ? (size_t)(colon - item) : 0;
        unsigned port = 0;
        for (size_t i = 0; i < digits && port <= 65535; i++)
            port = item[i] >= '0' && item[i] <= '9' ? port * 10 + (unsigned)(item[i] - '0') : 65536;
        if (digits == 0 || digits > 5 || port > 65535 || colon + 1 == item + len) {
            csgi_conf_error(conf, "disable_by_file_paths", error, "'%.*s' is not PORT:FILE",
                            (int)len, item);
            return CSGI_EINVAL;
        }
        port_file *entry = &h->port_files[h->port_file_count++];
        entry->port = port;
        entry->path = csgi__strndup(colon + 1, (size_t)(item + len - colon - 1));
        if (!entry->path)
            return CSGI_ENOMEM;
    }
    return 0;
}

static int parse_enable_files(healthcheck *h, const csgi_conf *conf)
{
    const char *list = csgi_conf_get(conf, "enable_by_file_paths"), *item;
    size_t len;
    h->enable_files = csgi__calloc(count_items(list), sizeof(char *));
    if (!h->enable_files)
        return CSGI_ENOMEM;
    while ((item = next_item(&list, &len)))
        if (!(h->enable_files[h->enable_file_count++] = csgi__strndup(item, len)))
            return CSGI_ENOMEM;
    return 0;
}

static int parse_backends(healthcheck *h, const csgi_conf *conf, csgi_load_error *error)
{
    const char *list = csgi_conf_get(conf, "backends"), *item;
    size_t len;
    bool named[BACKENDS] = {false};
    while ((item = next_item(&list, &len))) {
        enum backend b = 0;
        while (b < BACKENDS &&
               (strlen(backend_names[b]) != len || memcmp(item, backend_names[b], len) != 0))
            b++;
        if (b == BACKENDS) {
            csgi_conf_error(conf, "backends", error,
                            "'%.*s' is not a healthcheck backend (known: disable_by_file, "
                            "disable_by_files_ports, enable_by_files)",
                            (int)len, item);
            return CSGI_EINVAL;
        }
        if (h->backend_count == MAX_BACKENDS) {
            csgi_conf_error(conf, "backends", error, "more than %d backends", MAX_BACKENDS);
            return CSGI_EINVAL;
        }
        h->backends[h->backend_count++] = b;
        named[b] = true;
    }
    static const char *const needs[BACKENDS] = {"disable_by_file_path", "disable_by_file_paths",
                                                "enable_by_file_paths"};
    for (enum backend b = 0; b < BACKENDS; b++) {
        const char *value = csgi_conf_get(conf, needs[b]);
        if (named[b] && count_items(value) == 0) {
            csgi_conf_error(conf, "backends", error, "%s needs %s", backend_names[b], needs[b]);
            return CSGI_EINVAL;
        }
    }
    if (named[DISABLE_BY_FILE] && named[ENABLE_BY_FILES]) {
        csgi_conf_error(conf, "backends", error,
                        "enable_by_files and disable_by_file cannot be configured at once");
        return CSGI_EINVAL;
    }
    int rc = 0;
    if (named[DISABLE_BY_FILE]) {
        const char *file = csgi_conf_get(conf, "disable_by_file_path");
        h->disable_file = csgi__strndup(file, strlen(file));
        rc = h->disable_file ? 0 : CSGI_ENOMEM;
    }
    if (rc == 0 && named[DISABLE_BY_FILES_PORTS])
        rc = parse_port_files(h, conf, error);
    if (rc == 0 && named[ENABLE_BY_FILES])
        rc = parse_enable_files(h, conf);
    return rc;
}
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
        rc = parse_backends(h, local_conf, error);
    if (rc == 0 && !(h->path = csgi__strndup(path, strlen(path))))
        rc = CSGI_ENOMEM;
    if (rc != 0) {
        healthcheck_destroy(h);
        return rc;
    }
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
