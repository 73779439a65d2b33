/*
 * urlmap: route requests to applications by URL prefix, host and port, as
 * Paste's paste.urlmap does (include/csgi/composite.h).
 *
 * Written over the public protocol only (csgi.h): the map is an ordinary
 * application whose state is the sorted table of routes. The internal
 * dependencies are the library's allocator, so that tests replacing it
 * (csgi_set_allocator) reach the map's memory too, and its one growth
 * rule (common/vec.h).
 */
#include "common/alloc.h"
#include "common/vec.h"

#include <csgi.h>
#include <csgi/composite.h>
#include "composite/composite_private.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct route {
    char *domain;    /* lower-case host, NULL = any host */
    int port;        /* 0 = any port */
    char *path;      /* normalised prefix: "" or "/a/b", never ending in "/" */
    size_t path_len; /* strlen(path) */
    size_t order;    /* insertion order, the last tie-breaker of the sort */
    csgi_app *app;   /* one reference */
} route;

struct csgi_urlmap {
    route *routes;
    size_t count;
    size_t capacity;
    size_t added; /* routes ever added: the next route's order */
    csgi_app *not_found;
    int debug;
    char *listing; /* the routes as the debug 404 shows them; built by csgi_urlmap_app */
};

/* ---- Keys ---------------------------------------------------------------------- */

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int starts_with_nocase(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    if (len < n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != prefix[i])
            return 0;
    return 1;
}

/* A port: decimal digits, 1 to 65535. Returns it, or -1. */
static int parse_port(const char *s, size_t len)
{
    if (len == 0 || len > 5)
        return -1;
    int port = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        port = port * 10 + (s[i] - '0');
    }
    return port >= 1 && port <= 65535 ? port : -1;
}

/* A host name or an IPv4 address (letters, digits, '-', '.', '_'), or an
   IPv6 address in brackets. */
static int valid_host(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    if (s[0] == '[') {
        if (len < 3 || s[len - 1] != ']')
            return 0;
        for (size_t i = 1; i + 1 < len; i++) {
            char c = lower(s[i]);
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.'))
                return 0;
        }
        return 1;
    }
    for (size_t i = 0; i < len; i++) {
        char c = lower(s[i]);
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '.' || c == '_'))
            return 0;
    }
    return 1;
}

/* "HOST" or "HOST:PORT" into r->domain (lower case) and r->port. */
static int parse_authority(route *r, const char *s, size_t len)
{
    size_t host_len = len;
    const char *colon = NULL;
    if (len && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close && (size_t)(close - s) + 1 < len)
            colon = close + 1;
    } else {
        colon = memchr(s, ':', len);
    }
    if (colon) {
        if (*colon != ':')
            return CSGI_EINVAL;
        host_len = (size_t)(colon - s);
        int port = parse_port(colon + 1, len - host_len - 1);
        if (port < 0 || r->port)
            return CSGI_EINVAL;
        r->port = port;
    }
    if (!valid_host(s, host_len))
        return CSGI_EINVAL;
    r->domain = csgi__strndup(s, host_len);
    if (!r->domain)
        return CSGI_ENOMEM;
    for (size_t i = 0; i < host_len; i++)
        r->domain[i] = lower(r->domain[i]);
    return 0;
}

/* Collapse runs of "/" and drop a trailing one: the path of a key. */
static int set_path(route *r, const char *s, size_t len)
{
    if (len == 0 || s[0] != '/')
        return CSGI_EINVAL;
    r->path = csgi__malloc(len + 1);
    if (!r->path)
        return CSGI_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '/' && n && r->path[n - 1] == '/')
            continue;
        r->path[n++] = s[i];
    }
    if (n && r->path[n - 1] == '/')
        n--;
    r->path[n] = '\0';
    r->path_len = n;
    return 0;
}

/* A URL key: "http://HOST[:PORT][/path]" (or https). */
static int parse_url(route *r, const char *s, size_t len)
{
    size_t skip = starts_with_nocase(s, len, "http://") ? 7 : 8;
    s += skip;
    len -= skip;
    const char *slash = memchr(s, '/', len);
    size_t authority_len = slash ? (size_t)(slash - s) : len;
    int err = parse_authority(r, s, authority_len);
    if (err)
        return err;
    if (!slash)
        return set_path(r, "/", 1);
    return set_path(r, slash, len - authority_len);
}

/* Paste's parse_path_expression and normalize_url in one: the words
   "domain HOST" and "port N" and one path, or a URL. */
static int parse_key(route *r, const char *key)
{
    const char *domain = NULL, *port = NULL, *path = NULL;
    size_t domain_len = 0, port_len = 0, path_len = 0;
    const char *p = key;
    for (;;) {
        while (is_blank(*p))
            p++;
        if (!*p)
            break;
        const char *word = p;
        while (*p && !is_blank(*p))
            p++;
        size_t len = (size_t)(p - word);
        int is_domain = len == 6 && memcmp(word, "domain", 6) == 0;
        int is_port = len == 4 && memcmp(word, "port", 4) == 0;
        if (is_domain || is_port) {
            while (is_blank(*p))
                p++;
            const char *value = p;
            while (*p && !is_blank(*p))
                p++;
            if (p == value || (is_domain ? domain != NULL : port != NULL))
                return CSGI_EINVAL; /* no value, or given twice */
            if (is_domain) {
                domain = value;
                domain_len = (size_t)(p - value);
            } else {
                port = value;
                port_len = (size_t)(p - value);
            }
        } else {
            if (path)
                return CSGI_EINVAL; /* more than one path */
            path = word;
            path_len = len;
        }
    }
    if (port && !domain)
        return CSGI_EINVAL; /* as Paste: a port needs a domain */
    if (!domain && !port && !path)
        return CSGI_EINVAL; /* an empty key */
    if (path && (starts_with_nocase(path, path_len, "http://") ||
                 starts_with_nocase(path, path_len, "https://"))) {
        if (domain)
            return CSGI_EINVAL; /* a host twice */
        return parse_url(r, path, path_len);
    }
    if (port) {
        r->port = parse_port(port, port_len);
        if (r->port < 0)
            return CSGI_EINVAL;
    }
    if (domain) {
        int err = parse_authority(r, domain, domain_len);
        if (err)
            return err;
    }
    return path ? set_path(r, path, path_len) : set_path(r, "/", 1);
}

static void route_clear(route *r)
{
    csgi__free(r->domain);
    csgi__free(r->path);
    csgi_app_free(r->app);
}

static int same_key(const route *a, const route *b)
{
    if ((a->domain == NULL) != (b->domain == NULL))
        return 0;
    if (a->domain && strcmp(a->domain, b->domain) != 0)
        return 0;
    return a->port == b->port && strcmp(a->path, b->path) == 0;
}

/* ---- Building --------------------------------------------------------------------- */

int csgi_urlmap_new(csgi_urlmap **out)
{
    if (!out)
        return CSGI_EINVAL;
    *out = csgi__calloc(1, sizeof(**out));
    return *out ? 0 : CSGI_ENOMEM;
}

int csgi_urlmap_add(csgi_urlmap *map, const char *key, csgi_app *app)
{
    route r = {NULL, 0, NULL, 0, 0, app};
    int err = CSGI_EINVAL;
    if (!map || !key || !app)
        goto fail;
    err = parse_key(&r, key);
    if (err)
        goto fail;
    err = CSGI_EINVAL;
    for (size_t i = 0; i < map->count; i++)
        if (same_key(&map->routes[i], &r))
            goto fail;
    /* No cap of its own: each route is one the caller added. */
    void *routes = map->routes;
    err = csgi_vec__reserve(&routes, &map->capacity, sizeof(route), map->count + 1, SIZE_MAX);
    if (err)
        goto fail;
    map->routes = routes;
    r.order = map->added++;
    map->routes[map->count++] = r;
    return 0;
fail:
    route_clear(&r);
    return err;
}

int csgi_urlmap_set_not_found(csgi_urlmap *map, csgi_app *app)
{
    if (!map) {
        csgi_app_free(app);
        return CSGI_EINVAL;
    }
    csgi_app_free(map->not_found);
    map->not_found = app;
    return 0;
}

void csgi_urlmap_set_debug(csgi_urlmap *map, int debug)
{
    if (map)
        map->debug = debug != 0;
}

void csgi_urlmap_free(csgi_urlmap *map)
{
    if (!map)
        return;
    for (size_t i = 0; i < map->count; i++)
        route_clear(&map->routes[i]);
    csgi__free(map->routes);
    csgi_app_free(map->not_found);
    csgi__free(map->listing);
    csgi__free(map);
}

/* Matching order: keys with a host first, then the longest path, then a
   key with a port before one without, then the order of addition. */
static int compare_routes(const void *left, const void *right)
{
    const route *a = left, *b = right;
    if ((a->domain != NULL) != (b->domain != NULL))
        return a->domain ? -1 : 1;
    if (a->path_len != b->path_len)
        return a->path_len > b->path_len ? -1 : 1;
    if ((a->port != 0) != (b->port != 0))
        return a->port ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* One line per route, in matching order: "  domain a.com port 80 /x -> name". */
static int build_listing(csgi_urlmap *map)
{
    size_t size = 1;
    for (size_t i = 0; i < map->count; i++) {
        const route *r = &map->routes[i];
        size +=
            48 + r->path_len + strlen(csgi_app_name(r->app)) + (r->domain ? strlen(r->domain) : 0);
    }
    map->listing = csgi__malloc(size);
    if (!map->listing)
        return CSGI_ENOMEM;
    size_t n = 0;
    map->listing[0] = '\0';
    for (size_t i = 0; i < map->count; i++) {
        const route *r = &map->routes[i];
        char port[16] = "";
        if (r->port)
            snprintf(port, sizeof(port), "port %d ", r->port);
        n += (size_t)snprintf(map->listing + n, size - n, "  %s%s%s%s%.*s -> %s\n",
                              r->domain ? "domain " : "", r->domain ? r->domain : "",
                              r->domain ? " " : "", port, r->path_len ? (int)r->path_len : 1,
                              r->path_len ? r->path : "/", csgi_app_name(r->app));
    }
    return 0;
}

static csgi_body *urlmap_call(void *state, csgi_environ *environ,
                              csgi_start_response *start_response);

static void urlmap_destroy(void *state)
{
    csgi_urlmap_free(state);
}

static const csgi_app_type urlmap_type = {"urlmap", urlmap_call, urlmap_destroy};

int csgi_urlmap_app(csgi_app **out, csgi_urlmap **map_in)
{
    if (out)
        *out = NULL;
    if (!map_in)
        return CSGI_EINVAL;
    csgi_urlmap *map = *map_in;
    *map_in = NULL;
    if (!map || !out) {
        csgi_urlmap_free(map);
        return CSGI_EINVAL;
    }
    if (map->count > 1)
        qsort(map->routes, map->count, sizeof(*map->routes), compare_routes);
    if (map->debug && build_listing(map) != 0) {
        csgi_urlmap_free(map);
        return CSGI_ENOMEM;
    }
    return csgi_app_new(out, &urlmap_type, map); /* frees the map when it fails */
}

/* ---- Requests ------------------------------------------------------------------------ */

/* The request's host (lower case, without the port) and port. The port is
   -1 when it cannot be known, which only keys without a port match. */
static int request_host(csgi_environ *environ, const char **host_out, int *port_out)
{
    const char *scheme = csgi_environ_get(environ, "csgi.url_scheme");
    int default_port = scheme && strcmp(scheme, "https") == 0 ? 443 : 80;
    const char *source = csgi_environ_get(environ, "HTTP_HOST");
    int from_header = source && *source;
    if (!from_header)
        source = csgi_environ_get(environ, "SERVER_NAME");
    if (!source)
        source = "";
    size_t len = strlen(source);
    char *host = csgi_environ_alloc(environ, len + 1);
    if (!host)
        return CSGI_ENOMEM;
    for (size_t i = 0; i <= len; i++)
        host[i] = lower(source[i]);
    char *colon = host[0] == '[' ? strstr(host, "]:") : strchr(host, ':');
    if (colon && *colon == ']')
        colon++;
    if (colon) {
        *colon = '\0';
        *port_out = parse_port(colon + 1, strlen(colon + 1));
    } else if (from_header) {
        *port_out = default_port;
    } else {
        const char *port = csgi_environ_get(environ, "SERVER_PORT");
        *port_out = port && *port ? parse_port(port, strlen(port)) : default_port;
    }
    *host_out = host;
    return 0;
}

/* Text for the debug 404: printable ASCII as it is, other bytes as \xNN. */
static size_t escape(char *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[n++] = (char)c;
        } else {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    return n;
}

static csgi_body *not_found(const csgi_urlmap *map, csgi_environ *environ,
                            csgi_start_response *start_response)
{
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    if (map->not_found)
        return csgi_app_call(map->not_found, environ, start_response);
    if (csgi_start_response_call(start_response, "404 Not Found", headers, 1, NULL) != 0)
        return NULL;
    if (!map->debug)
        return csgi_body_static(environ, "Not Found\n", 10);

    static const char *const keys[] = {"SCRIPT_NAME", "PATH_INFO", "HTTP_HOST"};
    const char *values[3];
    size_t lengths[3];
    size_t size = 128 + strlen(map->listing);
    for (size_t i = 0; i < 3; i++) {
        values[i] = csgi_environ_get_n(environ, keys[i], &lengths[i]);
        if (!values[i]) {
            values[i] = "";
            lengths[i] = 0;
        }
        size += strlen(keys[i]) + 4 * lengths[i] + 8;
    }
    char *text = csgi_environ_alloc(environ, size);
    if (!text)
        return NULL;
    size_t n = (size_t)snprintf(text, size, "Not Found\n\nThe map, in matching order:\n%s\n",
                                map->listing);
    for (size_t i = 0; i < 3; i++) {
        n += (size_t)snprintf(text + n, size - n, "%s: '", keys[i]);
        n += escape(text + n, values[i], lengths[i]);
        text[n++] = '\'';
        text[n++] = '\n';
    }
    return csgi_body_static(environ, text, n); /* text lives in the request's arena */
}

static csgi_body *urlmap_call(void *state, csgi_environ *environ,
                              csgi_start_response *start_response)
{
    const csgi_urlmap *map = state;
    const char *host;
    int port;
    if (request_host(environ, &host, &port) != 0)
        return NULL;

    /* PATH_INFO with runs of "/" collapsed (Paste's normalize_url without
       the trim); it may hold a decoded NUL, hence the counted copy. */
    size_t raw_len = 0;
    const char *raw = csgi_environ_get_n(environ, "PATH_INFO", &raw_len);
    if (!raw)
        raw = "";
    char *path = csgi_environ_alloc(environ, raw_len + 1);
    if (!path)
        return NULL;
    size_t path_len = 0;
    for (size_t i = 0; i < raw_len; i++) {
        if (raw[i] == '/' && path_len && path[path_len - 1] == '/')
            continue;
        path[path_len++] = raw[i];
    }
    path[path_len] = '\0';

    for (size_t i = 0; i < map->count; i++) {
        const route *r = &map->routes[i];
        if (r->domain && strcmp(r->domain, host) != 0)
            continue;
        if (r->port && r->port != port)
            continue;
        /* Whole segments only: "/v2" is a prefix of "/v2/x", not of "/v21". */
        if (path_len < r->path_len || memcmp(path, r->path, r->path_len) != 0 ||
            (path_len > r->path_len && path[r->path_len] != '/'))
            continue;

        size_t script_len = 0;
        const char *script = csgi_environ_get_n(environ, "SCRIPT_NAME", &script_len);
        if (!script)
            script = "";
        char *joined = csgi_environ_alloc(environ, script_len + r->path_len + 1);
        if (!joined)
            return NULL;
        memcpy(joined, script, script_len);
        memcpy(joined + script_len, r->path, r->path_len + 1);
        if (csgi_environ_set_n(environ, "SCRIPT_NAME", joined, script_len + r->path_len) != 0 ||
            csgi_environ_set_n(environ, "PATH_INFO", path + r->path_len, path_len - r->path_len) !=
                0)
            return NULL;
        return csgi_app_call(r->app, environ, start_response);
    }
    return not_found(map, environ, start_response);
}

/* ---- INI factory ------------------------------------------------------------- */

int csgi_composite__not_found_app(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                                  const csgi_conf *local_conf, csgi_load_error *error)
{
    *out = NULL;
    const char *name = csgi_conf_get(local_conf, "not_found_app");
    if (!name)
        name = csgi_conf_get(global_conf, "not_found_app");
    return name ? csgi_loader_get_app(out, loader, name, error) : 0;
}

int csgi_urlmap__factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                         const csgi_conf *local_conf, csgi_load_error *error)
{
    csgi_urlmap *map = NULL;
    int rc = csgi_urlmap_new(&map);
    if (rc != 0)
        return rc;
    int debug = 0;
    rc = csgi_conf_asbool(local_conf, "debug", 0, &debug, error);
    if (rc != 0)
        goto fail;
    csgi_urlmap_set_debug(map, debug);
    csgi_app *not_found = NULL;
    rc = csgi_composite__not_found_app(&not_found, loader, global_conf, local_conf, error);
    if (rc != 0)
        goto fail;
    if (not_found)
        csgi_urlmap_set_not_found(map, not_found);
    const char *name, *value;
    for (size_t i = 0; csgi_conf_entry(local_conf, i, &name, &value); i++) {
        if (strcmp(name, "not_found_app") == 0 || strcmp(name, "debug") == 0)
            continue;
        csgi_app *app = NULL;
        rc = csgi_loader_get_app(&app, loader, value, error);
        if (rc != 0)
            goto fail;
        rc = csgi_urlmap_add(map, name, app);
        if (rc != 0) {
            csgi_conf_error(local_conf, name, error, "%s",
                            rc == CSGI_EINVAL ? "malformed or repeated urlmap key"
                                              : csgi_strerror(rc));
            goto fail;
        }
    }
    return csgi_urlmap_app(out, &map);
fail:
    csgi_urlmap_free(map);
    return rc;
}
