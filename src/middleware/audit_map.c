/*
 * keystonemiddleware's audit map (keystonemiddleware/audit/_api.py) for
 * audit.c: the map file, the action of a request and its target.
 */
#include "middleware/audit.h"

#include "common/alloc.h"
#include "loader/ini.h"

#include <csgi/environ.h>

#include <jansson.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define UNKNOWN "unknown"

/* The first bytes of a body kept for its action: a server action's JSON
   names the action in its first few bytes. */
#define BODY_SEEN_MAX (64 * 1024)

const char csgi_audit__from_body[] = "update";

static const char *get(csgi_environ *environ, const char *key, const char *otherwise)
{
    const char *value = csgi_environ_get(environ, key);
    return value ? value : otherwise;
}

static const char *lookup(const csgi_audit__pairs *p, const char *key, size_t len)
{
    for (size_t i = 0; i < p->count; i++)
        if (strlen(p->keys[i]) == len && memcmp(p->keys[i], key, len) == 0)
            return p->values[i];
    return NULL;
}

/* The length of segment without a ".json" suffix (_clean_path). */
static size_t clean_len(const char *segment, size_t len)
{
    return len >= 5 && memcmp(segment + len - 5, ".json", 5) == 0 ? len - 5 : len;
}

/* _api.get_action: from the method and the path's last segment. */
const char *csgi_audit__action(const csgi_audit__map *map, const char *method, const char *path,
                               char *buf, size_t size)
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
        custom = lookup(&map->custom_actions, buf, strlen(buf));
    }
    if (!custom)
        custom = lookup(&map->custom_actions, start, ending);
    if (custom)
        return custom;
    bool keyword = lookup(&map->path_keywords, start, ending) != NULL;
    if (strcmp(method, "POST") == 0)
        return ending == 6 && memcmp(start, "action", 6) == 0 ? csgi_audit__from_body
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
static char *type_uri(const csgi_audit__map *map, const char *type, const char *path)
{
    /* Each segment adds '/' and either itself or a keyword's value. */
    size_t longest = 0, segments = 1, used = 0;
    for (size_t i = 0; i < map->path_keywords.count; i++)
        if (strlen(map->path_keywords.values[i]) > longest)
            longest = strlen(map->path_keywords.values[i]);
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
        const char *kw = lookup(&map->path_keywords, s, len);
        const char *after = previous ? lookup(&map->path_keywords, previous, previous_len) : NULL;
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
    const char *scheme = get(environ, "wsgi.url_scheme", "http");
    const char *host = csgi_environ_get(environ, "HTTP_HOST"), *port = NULL;
    size_t host_len;
    if (host) {
        const char *colon = strrchr(host, ':');
        bool has = colon && host[strlen(host) - 1] != ']';
        host_len = has ? (size_t)(colon - host) : strlen(host);
        port = has ? colon + 1 : NULL;
    } else {
        host = get(environ, "SERVER_NAME", "");
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
json_t *csgi_audit__target(const csgi_audit__map *map, csgi_environ *environ, const char *path)
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
        if (map->default_type && type && strcmp(type, map->default_type) == 0)
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
        const char *cadf = type ? lookup(&map->endpoints, type, strlen(type)) : NULL;
        const char *name = json_string_value(json_object_get(found, "name"));
        const char *id = json_string_value(json_object_get(first, "id"));
        char *uri = cadf ? type_uri(map, cadf, path) : NULL;
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

/* The arrays end with NULL (read_pairs): also a half-read section goes. */
static void pairs_free(csgi_audit__pairs *p)
{
    for (size_t i = 0; p->keys && p->keys[i]; i++)
        csgi__free(p->keys[i]);
    for (size_t i = 0; p->values && p->values[i]; i++)
        csgi__free(p->values[i]);
    csgi__free(p->keys);
    csgi__free(p->values);
}

static char *copy_lower(const char *s)
{
    char *out = csgi__strndup(s, strlen(s));
    for (char *p = out; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

static int read_pairs(csgi_audit__pairs *p, const csgi_ini__section *section)
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
int csgi_audit__map_load(csgi_audit__map *map, const char *path, csgi_load_error *error)
{
    csgi_ini *ini = NULL;
    int rc = csgi_ini__load(&ini, path, error);
    for (const csgi_ini__section *s = ini ? ini->sections : NULL; s && rc == 0; s = s->next) {
        csgi_audit__pairs *p = strcmp(s->name, "path_keywords") == 0       ? &map->path_keywords
                               : strcmp(s->name, "custom_actions") == 0    ? &map->custom_actions
                               : strcmp(s->name, "service_endpoints") == 0 ? &map->endpoints
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
                } else if (!(map->default_type = csgi__strndup(k->value, strlen(k->value)))) {
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

void csgi_audit__map_free(csgi_audit__map *map)
{
    csgi__free(map->default_type);
    pairs_free(&map->path_keywords);
    pairs_free(&map->custom_actions);
    pairs_free(&map->endpoints);
}

/* ---- the body of POST .../action ----------------------------------------------------- */

struct csgi_audit__body {
    csgi_input *inner, *outer;
    char *seen; /* the first BODY_SEEN_MAX bytes the application read */
    size_t len, size;
    int64_t total, length; /* bytes read; the body's length or -1 */
    bool ended, cut;
};

static long body_read(void *state, void *buf, size_t len)
{
    csgi_audit__body *b = state;
    long n = csgi_input_read(b->inner, buf, len);
    if (n > 0) {
        size_t keep = (size_t)n < b->size - b->len ? (size_t)n : b->size - b->len;
        memcpy(b->seen + b->len, buf, keep);
        b->len += keep;
        b->cut |= keep < (size_t)n;
        b->total += n;
    }
    if (n == 0 || (b->length >= 0 && b->total >= b->length))
        b->ended = true;
    return n;
}

static void body_ready(csgi_input *inner, void *userdata)
{
    (void)inner;
    csgi_input_notify(((csgi_audit__body *)userdata)->outer);
}

static void body_wait(void *state, csgi_input *outer, int waiting)
{
    csgi_audit__body *b = state;
    b->outer = outer;
    csgi_input_on_ready(b->inner, waiting ? body_ready : NULL, b);
}

static const csgi_input_type body_type = {"audit", body_read, body_wait, NULL};

csgi_audit__body *csgi_audit__watch_body(csgi_environ *environ)
{
    csgi_audit__body *b = csgi_environ_alloc_zeroed(environ, sizeof(*b));
    if (!b)
        return NULL;
    b->inner = csgi_environ_input(environ);
    const char *length = csgi_environ_get(environ, "CONTENT_LENGTH");
    char *end = NULL;
    long long value = length && *length ? strtoll(length, &end, 10) : -1;
    b->length = end && *end == '\0' && value >= 0 ? value : -1;
    b->size = b->length >= 0 && b->length < BODY_SEEN_MAX ? (size_t)b->length : BODY_SEEN_MAX;
    b->seen = csgi_environ_alloc(environ, b->size + 1);
    if (!b->inner || !b->seen)
        return NULL;
    b->ended = b->length == 0;
    b->outer = csgi_input_new(environ, &body_type, b, b->length);
    int64_t limit = csgi_input_limit(b->inner);
    if (!b->outer || (limit >= 0 && csgi_input_set_limit(b->outer, (uint64_t)limit) != 0) ||
        csgi_environ_set_input(environ, b->outer) != 0)
        return NULL;
    return b;
}

const char *csgi_audit__body_action(const csgi_audit__body *body, csgi_environ *environ)
{
    if (!body || !body->ended || body->cut)
        return "update"; /* the application answered without reading it all */
    json_t *document = json_loadb(body->seen, body->len, JSON_DECODE_ANY, NULL);
    const char *key =
        json_is_object(document) ? json_object_iter_key(json_object_iter(document)) : NULL;
    char *action = key ? csgi_environ_alloc(environ, strlen(key) + 8) : NULL;
    if (action)
        sprintf(action, "update/%s", key);
    json_decref(document);
    return action ? action : key ? "update" : "create";
}
