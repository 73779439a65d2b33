/*
 * keystonemiddleware's audit filter (AuditMiddleware) and its INI factory
 * (egg:keystonemiddleware#audit, keystonemiddleware.audit:filter_factory):
 * one CADF event (DMTF DSP0262, as pycadf writes it) per request whose
 * method is not in ignore_req_list, written when the answer starts.
 *
 * The event is keystonemiddleware's "audit.http.response" one: who (the
 * identity auth_token put in the environ), what (an action from the method
 * and the path's last segment), on what (a target found in the token's
 * service catalog and typed by the audit map) and how it ended (outcome and
 * reason from the status). audit_map_file is read once at load with the
 * deploy-file reader (loader/ini.h), so its errors carry file:line.
 *
 * Where the events go: the error stream at info level, or with the csgi key
 * `file` a file opened once at load with O_APPEND, one write(2) per line.
 * Every value is a JSON string escaped by jansson, so a header cannot break
 * a line or forge a field.
 */
#include "common/alloc.h"
#include "loader/ini.h"
#include "middleware/middleware.h"

#include <csgi/app.h>
#include <csgi/environ.h>
#include <csgi/server.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define UNKNOWN "unknown"

/* key = value pairs of one section of the map, keys lower-cased as
   ConfigParser does. */
typedef struct pairs {
    char **keys, **values;
    size_t count;
} pairs;

typedef struct audit {
    csgi_app *next;
    int fd;               /* the events file, or -1: the error stream */
    char *ignore;         /* ",GET,HEAD," (upper-cased), or NULL */
    char *default_type;   /* [DEFAULT] target_endpoint_type, or NULL */
    pairs path_keywords;  /* [path_keywords] */
    pairs custom_actions; /* [custom_actions] */
    pairs endpoints;      /* [service_endpoints]: catalog type to CADF type */
} audit;

typedef struct call {
    const audit *a;
    csgi_environ *environ;
    csgi_start_response *parent;
    struct timespec start;
    bool written;
} call;

static const char *lookup(const pairs *p, const char *key, size_t len)
{
    for (size_t i = 0; i < p->count; i++)
        if (strlen(p->keys[i]) == len && memcmp(p->keys[i], key, len) == 0)
            return p->values[i];
    return NULL;
}

/* An environ value for the event, otherwise when unset. JSON strings are
   UTF-8: a value that is not (any client can send such a header) is given
   with its odd bytes as \xHH rather than losing the event. */
static const char *env(csgi_environ *environ, const char *key, const char *otherwise)
{
    size_t len = 0;
    const char *value = csgi_environ_get_n(environ, key, &len);
    if (!value)
        return otherwise;
    json_t *valid = json_stringn(value, len);
    json_decref(valid);
    if (valid && !memchr(value, '\0', len))
        return value;
    char *escaped = csgi_environ_alloc(environ, 4 * len + 4);
    if (escaped)
        csgi_middleware__escape(escaped, 4 * len + 4, value, len);
    return escaped ? escaped : otherwise;
}

/* A version 4 UUID, canonical form, into out (37 bytes). */
static int new_uuid(char *out)
{
    unsigned char u[16];
    if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u))
        return -1;
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        p += sprintf(p, "%02x", u[i]);
    }
    return 0;
}

/* pycadf's timestamp: 2026-12-03T19:05:42.123456+0000. */
static void iso_time(const struct timespec *when, char *out, size_t size)
{
    struct tm tm;
    gmtime_r(&when->tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%06ld+0000", when->tv_nsec / 1000);
}

/* WebOb's req.path: SCRIPT_NAME and PATH_INFO, percent-quoted. */
static char *request_path(csgi_environ *environ)
{
    static const char safe[] = "/:@&+$,;=~!*'()-._";
    const char *parts[2] = {env(environ, "SCRIPT_NAME", ""), env(environ, "PATH_INFO", "")};
    char *out = csgi_environ_alloc(environ, 3 * (strlen(parts[0]) + strlen(parts[1])) + 1);
    if (!out)
        return NULL;
    char *p = out;
    for (int i = 0; i < 2; i++)
        for (const unsigned char *s = (const unsigned char *)parts[i]; *s; s++)
            p += isalnum(*s) || strchr(safe, *s) ? sprintf(p, "%c", *s) : sprintf(p, "%%%02X", *s);
    *p = '\0';
    return out;
}

/* The length of segment without a ".json" suffix (_clean_path). */
static size_t clean_len(const char *segment, size_t len)
{
    return len >= 5 && memcmp(segment + len - 5, ".json", 5) == 0 ? len - 5 : len;
}

/* _api.get_action: from the method and the path's last segment. */
static const char *action_of(const audit *a, const char *method, const char *path, char *buf,
                             size_t size)
{
    size_t len = strlen(path);
    if (len > 0 && path[len - 1] == '/')
        len--;
    const char *end = path + len, *start = end;
    while (start > path && start[-1] != '/')
        start--;
    size_t ending = clean_len(start, (size_t)(end - start));
    const char *custom = NULL;
    if (ending + 1 + strlen(method) < size) { /* a longer "segment/method" is no map key */
        snprintf(buf, size, "%.*s/%s", (int)ending, start, method);
        for (char *p = buf + ending + 1; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        custom = lookup(&a->custom_actions, buf, strlen(buf));
    }
    if (!custom)
        custom = lookup(&a->custom_actions, start, ending);
    if (custom)
        return custom;
    bool keyword = lookup(&a->path_keywords, start, ending) != NULL;
    if (strcmp(method, "POST") == 0)
        /* keystonemiddleware reads a POST .../action body for "update/<key>";
           a filter here cannot read the body ahead of the application. */
        return ending == 6 && memcmp(start, "action", 6) == 0 ? "update"
               : keyword                                      ? "create"
                                                              : "update";
    if (strcmp(method, "GET") == 0)
        return keyword ? "read/list" : "read";
    if (strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0)
        return "update";
    if (strcmp(method, "DELETE") == 0)
        return "delete";
    return strcmp(method, "HEAD") == 0 ? "read" : UNKNOWN;
}

/* _build_typeURI: the CADF type and, per path keyword, the keyword or what
   the map names the segment after it. */
static char *type_uri(const audit *a, const char *type, const char *path)
{
    /* Each segment adds '/' and either itself or a keyword's value. */
    size_t longest = 0, segments = 1, used = 0;
    for (size_t i = 0; i < a->path_keywords.count; i++)
        if (strlen(a->path_keywords.values[i]) > longest)
            longest = strlen(a->path_keywords.values[i]);
    for (const char *p = path; (p = strchr(p, '/')); p++)
        segments++;
    size_t cap = strlen(type) + strlen(path) + segments * (1 + longest) + 1;
    char *out = csgi__malloc(cap);
    if (!out)
        return NULL;
    used = (size_t)snprintf(out, cap, "%s", type);
    const char *previous = NULL;
    size_t previous_len = 0;
    for (const char *s = path;; s++) {
        const char *end = strchr(s, '/');
        size_t len = clean_len(s, end ? (size_t)(end - s) : strlen(s));
        const char *kw = lookup(&a->path_keywords, s, len);
        const char *after = previous ? lookup(&a->path_keywords, previous, previous_len) : NULL;
        if (kw)
            used += (size_t)snprintf(out + used, cap - used, "/%.*s", (int)len, s);
        else if (after)
            used += (size_t)snprintf(out + used, cap - used, "/%s", after);
        previous = s;
        previous_len = len;
        if (!end)
            break;
        s = end;
    }
    return out;
}

/* The host:port of a URL (urlparse's netloc). */
static size_t netloc(const char *url, const char **out)
{
    const char *p = url ? strstr(url, "://") : NULL;
    *out = p ? p + 3 : "";
    return strcspn(*out, "/?#");
}

/* WebOb's req.host_url netloc, and whether it has a port. */
static bool host_netloc(csgi_environ *environ, char *out, size_t size)
{
    const char *scheme = env(environ, "wsgi.url_scheme", "http");
    const char *host = csgi_environ_get(environ, "HTTP_HOST"), *port = NULL;
    size_t host_len;
    if (host) {
        const char *colon = strrchr(host, ':');
        bool has = colon && host[strlen(host) - 1] != ']';
        host_len = has ? (size_t)(colon - host) : strlen(host);
        port = has ? colon + 1 : NULL;
    } else {
        host = env(environ, "SERVER_NAME", "");
        host_len = strlen(host);
        port = csgi_environ_get(environ, "SERVER_PORT");
    }
    if (port && ((strcmp(scheme, "https") == 0 && strcmp(port, "443") == 0) ||
                 (strcmp(scheme, "http") == 0 && strcmp(port, "80") == 0)))
        port = NULL;
    snprintf(out, size, "%.*s:%s", (int)host_len, host, port ? port : "");
    return port && *port;
}

/* An endpoint URL of a catalog entry: keystonemiddleware's v2 form
   (endpoints[0].adminURL) or the v3 form a token holds (the endpoint whose
   interface is "admin"). */
static const char *url_of(json_t *service, const char *v2_key, const char *interface)
{
    json_t *endpoints = json_object_get(service, "endpoints"), *endpoint;
    const char *url = json_string_value(json_object_get(json_array_get(endpoints, 0), v2_key));
    size_t i;
    json_array_foreach(endpoints, i, endpoint)
    {
        const char *name = json_string_value(json_object_get(endpoint, "interface"));
        if (!url && name && strcmp(name, interface) == 0)
            url = json_string_value(json_object_get(endpoint, "url"));
    }
    return url;
}

static bool same_netloc(const char *mine, json_t *service, const char *key, const char *interface)
{
    const char *at;
    size_t len = netloc(url_of(service, key, interface), &at);
    return strlen(mine) == len && memcmp(mine, at, len) == 0;
}

/* get_target_resource: the service of the token's catalog this request is
   for (by host and port, else by target_endpoint_type), typed by the map. */
static json_t *target_of(const audit *a, csgi_environ *environ, const char *path)
{
    const char *text = csgi_environ_get(environ, "HTTP_X_SERVICE_CATALOG");
    json_t *catalog = text ? json_loads(text, 0, NULL) : NULL;
    char mine[512];
    bool has_port = host_netloc(environ, mine, sizeof(mine));
    json_t *found = NULL, *fallback = NULL, *service;
    size_t i;
    json_array_foreach(catalog, i, service)
    {
        json_t *first = json_array_get(json_object_get(service, "endpoints"), 0);
        if (!json_is_object(first))
            continue;
        if (has_port && (same_netloc(mine, service, "adminURL", "admin") ||
                         same_netloc(mine, service, "publicURL", "public"))) {
            found = service;
            break;
        }
        const char *type = json_string_value(json_object_get(service, "type"));
        if (a->default_type && type && strcmp(type, a->default_type) == 0)
            fallback = service;
    }
    if (!found)
        found = fallback;
    json_t *target;
    if (!found) {
        target = json_pack("{s:s, s:s, s:s}", "typeURI", UNKNOWN, "id", UNKNOWN, "name", UNKNOWN);
    } else {
        json_t *first = json_array_get(json_object_get(found, "endpoints"), 0);
        const char *type = json_string_value(json_object_get(found, "type"));
        const char *cadf = type ? lookup(&a->endpoints, type, strlen(type)) : NULL;
        const char *name = json_string_value(json_object_get(found, "name"));
        const char *id = json_string_value(json_object_get(first, "id"));
        char *uri = cadf ? type_uri(a, cadf, path) : NULL;
        json_t *addresses = json_array();
        static const char *const urls[3][3] = {{"admin", "adminURL", "admin"},
                                               {"private", "internalURL", "internal"},
                                               {"public", "publicURL", "public"}};
        for (int k = 0; k < 3; k++) {
            const char *url = url_of(found, urls[k][1], urls[k][2]);
            json_array_append_new(
                addresses, json_pack("{s:s, s:s}", "name", urls[k][0], "url", url ? url : UNKNOWN));
        }
        target = json_pack("{s:s, s:s*, s:s*, s:o}", "typeURI", uri ? uri : UNKNOWN, "id",
                           id ? id : name, "name", name, "addresses", addresses);
        csgi__free(uri);
    }
    json_decref(catalog);
    return target;
}

/* pycadf's mask_value: an eighth of the token at each end (rounded half to
   even, as Python's round(), and at most 32 characters). Where pycadf would
   show a token under 4 characters whole, nothing of it is shown. */
static void masked(const char *token, char *out, size_t size)
{
    size_t len = strlen(token), visible = len / 8;
    if (len % 8 > 4 || (len % 8 == 4 && visible % 2 == 1))
        visible++;
    if (visible > 32)
        visible = 32;
    if (visible == 0)
        snprintf(out, size, "xxxxxxxx");
    else
        snprintf(out, size, "%.*s xxxxxxxx %s", (int)visible, token, token + len - visible);
}

static json_t *build_event(call *c, int status)
{
    csgi_environ *environ = c->environ;
    char id[37], correlation[37], tag[64], when[48], now[48], code[16], token[256];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (new_uuid(id) != 0 || new_uuid(correlation) != 0)
        return NULL;
    snprintf(tag, sizeof(tag), "correlation_id?value=%s", correlation);
    iso_time(&c->start, when, sizeof(when));
    iso_time(&ts, now, sizeof(now));
    masked(env(environ, "HTTP_X_AUTH_TOKEN", ""), token, sizeof(token));
    const char *path = request_path(environ);
    const char *query = env(environ, "QUERY_STRING", "");
    char action[256];
    if (!path)
        return NULL;
    json_t *event = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:{s:s*, s:s*}, s:{s:s, s:s}},"
        " s:o, s:{s:s}, s:s++, s:[s], s:[{s:s, s:{s:s}, s:s}]}",
        "typeURI", "http://schemas.dmtf.org/cloud/audit/1.0/event", "id", id, "eventTime", when,
        "action", action_of(c->a, env(environ, "REQUEST_METHOD", ""), path, action, sizeof(action)),
        "eventType", "activity", "outcome",
        status == 0                     ? UNKNOWN
        : status >= 200 && status < 400 ? "success"
                                        : "failure",
        "initiator", "typeURI", "service/security/account/user", "id",
        env(environ, "HTTP_X_USER_ID", UNKNOWN), "name", env(environ, "HTTP_X_USER_NAME", UNKNOWN),
        "project_id", env(environ, "HTTP_X_PROJECT_ID", UNKNOWN), "host", "address",
        env(environ, "REMOTE_ADDR", NULL), "agent", env(environ, "HTTP_USER_AGENT", NULL),
        "credential", "token", token, "identity_status",
        env(environ, "HTTP_X_IDENTITY_STATUS", UNKNOWN), "target", target_of(c->a, environ, path),
        "observer", "id", "target", "requestPath", path, *query ? "?" : "", query, "tags", tag,
        "reporterchain", "role", "modifier", "reporter", "id", "target", "reporterTime", now);
    if (!event)
        return NULL;
    json_t *initiator = json_object_get(event, "initiator");
    const char *request_id = env(environ, "openstack.request_id", NULL);
    const char *global_id = env(environ, "openstack.global_request_id", NULL);
    if (request_id)
        json_object_set_new(initiator, "request_id", json_string(request_id));
    if (global_id)
        json_object_set_new(initiator, "global_request_id", json_string(global_id));
    if (status != 0) {
        snprintf(code, sizeof(code), "%d", status);
        json_object_set_new(event, "reason",
                            json_pack("{s:s, s:s}", "reasonType", "HTTP", "reasonCode", code));
    }
    return event;
}

static void write_event(call *c, int status)
{
    c->written = true;
    json_t *event = build_event(c, status);
    char *line = event ? json_dumps(event, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(event);
    if (!line) {
        csgi_environ_log(c->environ, "audit: could not build the event");
        return;
    }
    if (c->a->fd < 0) {
        csgi_environ_log_at(c->environ, CSGI_LOG_INFO, "audit: %s", line);
        free(line);
        return;
    }
    size_t len = strlen(line);
    line[len] = '\n'; /* over the NUL: the line is written by length */
    csgi_middleware__write_line(c->environ, c->a->fd, line, len + 1, "the audit event");
    free(line);
}

static int on_start(const char *status, const csgi_header *headers, size_t count,
                    const char *exc_info, void *userdata)
{
    call *c = userdata;
    int rc = csgi_start_response_call(c->parent, status, headers, count, exc_info);
    if (rc == 0 && !c->written)
        write_event(c, atoi(status));
    return rc;
}

/* The application failed before answering: keystonemiddleware's event for
   an exception, outcome "unknown". */
static void on_end(void *userdata)
{
    call *c = userdata;
    if (!c->written)
        write_event(c, 0);
}

static bool ignored(const audit *a, const char *method)
{
    char key[40];
    if (!a->ignore || strlen(method) > sizeof(key) - 3)
        return false;
    snprintf(key, sizeof(key), ",%s,", method);
    return strstr(a->ignore, key) != NULL;
}

static csgi_body *audit_call(void *state, csgi_environ *environ,
                             csgi_start_response *start_response)
{
    const audit *a = state;
    if (ignored(a, env(environ, "REQUEST_METHOD", "")))
        return csgi_app_call(a->next, environ, start_response);
    call *c = csgi_environ_alloc_zeroed(environ, sizeof(*c));
    if (!c || csgi_environ_defer(environ, on_end, c) != 0)
        return NULL;
    *c = (call){a, environ, start_response, {0, 0}, false};
    clock_gettime(CLOCK_REALTIME, &c->start);
    csgi_start_response *own = csgi_start_response_new(environ, start_response, on_start, c);
    return own ? csgi_app_call(a->next, environ, own) : NULL;
}

static void pairs_free(pairs *p)
{
    for (size_t i = 0; i < p->count; i++) {
        csgi__free(p->keys[i]);
        csgi__free(p->values[i]);
    }
    csgi__free(p->keys);
    csgi__free(p->values);
}

static void audit_destroy(void *state)
{
    audit *a = state;
    if (!a)
        return;
    csgi_app_free(a->next);
    if (a->fd >= 0)
        close(a->fd);
    csgi__free(a->ignore);
    csgi__free(a->default_type);
    pairs_free(&a->path_keywords);
    pairs_free(&a->custom_actions);
    pairs_free(&a->endpoints);
    csgi__free(a);
}

static const csgi_app_type audit_type = {"audit", audit_call, audit_destroy};

/* ---- INI factory --------------------------------------------------------------------- */

static char *copy_lower(const char *s)
{
    char *out = csgi__strndup(s, strlen(s));
    for (char *p = out; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

static int read_pairs(pairs *p, const csgi_ini__section *section)
{
    p->keys = csgi__calloc(section->key_count + 1, sizeof(char *));
    p->values = csgi__calloc(section->key_count + 1, sizeof(char *));
    if (!p->keys || !p->values)
        return CSGI_ENOMEM;
    for (const csgi_ini__key *k = section->keys; k; k = k->next, p->count++)
        if (!(p->keys[p->count] = copy_lower(k->name)) ||
            !(p->values[p->count] = csgi__strndup(k->value, strlen(k->value))))
            return CSGI_ENOMEM;
    return 0;
}

/* The map file: the sections keystonemiddleware reads, and nothing else (a
   misspelt section would silently type every target "unknown"). */
static int read_map(audit *a, const char *path, csgi_load_error *error)
{
    csgi_ini *ini = NULL;
    int rc = csgi_ini__load(&ini, path, error);
    for (const csgi_ini__section *s = ini ? ini->sections : NULL; s && rc == 0; s = s->next) {
        pairs *p = strcmp(s->name, "path_keywords") == 0       ? &a->path_keywords
                   : strcmp(s->name, "custom_actions") == 0    ? &a->custom_actions
                   : strcmp(s->name, "service_endpoints") == 0 ? &a->endpoints
                                                               : NULL;
        if (p) {
            rc = read_pairs(p, s);
        } else if (strcmp(s->name, "DEFAULT") != 0) {
            csgi_load_error__set(error, path, s->line, s->name, NULL,
                                 "unknown section [%s]: an audit map has [DEFAULT], "
                                 "[path_keywords], [custom_actions] and [service_endpoints]",
                                 s->name);
            rc = CSGI_EINVAL;
        } else {
            for (const csgi_ini__key *k = s->keys; k && rc == 0; k = k->next) {
                if (strcmp(k->name, "target_endpoint_type") != 0) {
                    csgi_load_error__set(error, path, k->line, s->name, k->name,
                                         "unknown key: [DEFAULT] has target_endpoint_type");
                    rc = CSGI_EINVAL;
                } else if (!(a->default_type = csgi__strndup(k->value, strlen(k->value)))) {
                    rc = CSGI_ENOMEM;
                }
            }
        }
    }
    if (rc != 0)
        csgi_load_error__code(error, rc);
    csgi_ini__free(ini);
    return rc;
}

/* ignore_req_list "GET, head" as ",GET,HEAD,". */
static int read_ignore(audit *a, const char *list)
{
    a->ignore = csgi__malloc(strlen(list) + 3);
    if (!a->ignore)
        return CSGI_ENOMEM;
    char *p = a->ignore;
    *p++ = ',';
    for (const char *s = list; *s; s++)
        if (*s != ' ' && *s != '\t')
            *p++ = (char)toupper((unsigned char)*s);
    *p++ = ',';
    *p = '\0';
    return 0;
}

static int setup(audit *a, const csgi_conf *conf, csgi_load_error *error)
{
    static const char *const known[] = {"audit_map_file", "ignore_req_list", "file",
                                        "service_name",   "log_name",        NULL};
    int rc = csgi_middleware__known_keys(conf, "audit", known, error);
    const char *map = csgi_conf_get(conf, "audit_map_file");
    const char *ignore = csgi_conf_get(conf, "ignore_req_list");
    const char *file = csgi_conf_get(conf, "file");
    if (rc == 0 && map && *map)
        rc = read_map(a, map, error);
    if (rc == 0 && ignore)
        rc = read_ignore(a, ignore);
    if (rc != 0 || !file)
        return rc;
    /* Not world-readable: the events name users and projects. */
    return csgi_middleware__open_file(conf, file, 0640, &a->fd, error);
}

int csgi_audit__filter_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                               const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    audit *a = csgi__calloc(1, sizeof(*a));
    if (!a) {
        csgi_app_free(next);
        return CSGI_ENOMEM;
    }
    a->next = next;
    a->fd = -1;
    int rc = setup(a, local_conf, error);
    if (rc != 0) {
        audit_destroy(a);
        return rc;
    }
    return csgi_app_new(out, &audit_type, a);
}
