/*
 * The http_proxy_to_wsgi filter (oslo_middleware's HTTPProxyToWSGI) and
 * its INI factory: behind a reverse proxy, the environ is made to say what
 * the client asked the proxy, from the proxy's Forwarded header (RFC 7239)
 * or else X-Forwarded-Proto, -Host, -For and -Prefix.
 *
 * Those headers are only as true as whoever sent them, so the filter
 * believes them only when enable_proxy_headers_parsing = true (oslo's
 * option, default false) and the peer (REMOTE_ADDR) is one of
 * trusted_proxies (csgi's own option: addresses or CIDR blocks; empty
 * trusts no peer). Of a list it takes the last entry, the one the trusted
 * proxy itself wrote; a value that does not parse is ignored.
 */
#include "common/alloc.h"
#include "common/chartab.h"
#include "gateway/environ_private.h"
#include "middleware/middleware.h"

#include <csgi/app.h>
#include <csgi/environ.h>

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct proxy_filter {
    csgi_app *next;
    csgi_middleware__network *trusted; /* owned */
    size_t count;
} proxy_filter;

/* The last comma-separated element of value, trimmed, in *len. */
static const char *last_element(const char *value, size_t *len)
{
    const char *comma = strrchr(value, ',');
    const char *start = comma ? comma + 1 : value;
    while (*start == ' ' || *start == '\t')
        start++;
    size_t n = strlen(start);
    while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t'))
        n--;
    *len = n;
    return start;
}

static bool is_scheme(const char *s, size_t len)
{
    return (len == 4 && csgi_char__equal_nocase(s, "http", 4)) ||
           (len == 5 && csgi_char__equal_nocase(s, "https", 5));
}

/* A host[:port] made only of the characters a host may have. */
static bool is_host(const char *s, size_t len)
{
    if (len == 0 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_'))
            return false;
    }
    return true;
}

/* A node of Forwarded's for= or X-Forwarded-For: an address, bracketed
   IPv6 with an optional port, or IPv4 with an optional port. Stores the
   address's text into out (INET6_ADDRSTRLEN bytes); false when it is none. */
static bool client_address(const char *s, size_t len, char *out)
{
    unsigned char address[16];
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return false;
        s++;
        len = (size_t)(close - s);
    } else if (csgi_middleware__parse_address(s, len, address) == 0) {
        const char *colon = memchr(s, ':', len);
        if (colon)
            len = (size_t)(colon - s); /* IPv4 with a port */
    }
    int family = csgi_middleware__parse_address(s, len, address);
    return family && inet_ntop(family, address, out, INET6_ADDRSTRLEN) != NULL;
}

static int set_n(csgi_environ *environ, const char *key, const char *s, size_t len)
{
    return csgi_environ_set_n(environ, key, s, len);
}

/* csgi.url_scheme to "http" (len 4) or "https": constants, no copy. */
static int set_scheme(csgi_environ *environ, size_t len)
{
    return csgi_environ__set_static(environ, "csgi.url_scheme", 15, len == 4 ? "http" : "https",
                                    len);
}

/* Forwarded's last element: proto=, host=, for= (values maybe quoted). */
static int apply_forwarded(csgi_environ *environ, const char *value)
{
    size_t len;
    const char *element = last_element(value, &len);
    const char *end = element + len;
    for (const char *p = element; p < end;) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *pair_end = semi ? semi : end;
        const char *eq = memchr(p, '=', (size_t)(pair_end - p));
        if (eq) {
            const char *name = p, *v = eq + 1;
            while (name < eq && (*name == ' ' || *name == '\t'))
                name++;
            size_t name_len = (size_t)(eq - name), v_len = (size_t)(pair_end - v);
            while (v_len > 0 && (v[v_len - 1] == ' ' || v[v_len - 1] == '\t'))
                v_len--;
            if (v_len >= 2 && v[0] == '"' && v[v_len - 1] == '"') {
                v++;
                v_len -= 2;
            }
            char address[INET6_ADDRSTRLEN];
            int rc = 0;
            if (name_len == 5 && strncasecmp(name, "proto", 5) == 0 && is_scheme(v, v_len))
                rc = set_scheme(environ, v_len);
            else if (name_len == 4 && strncasecmp(name, "host", 4) == 0 && is_host(v, v_len))
                rc = set_n(environ, "HTTP_HOST", v, v_len);
            else if (name_len == 3 && strncasecmp(name, "for", 3) == 0 &&
                     client_address(v, v_len, address))
                rc = csgi_environ_set(environ, "REMOTE_ADDR", address);
            if (rc != 0)
                return rc;
        }
        p = semi ? semi + 1 : end;
    }
    return 0;
}

/* The headers read, in the order of forwarded_keys. */
enum { FORWARDED, X_PROTO, X_HOST, X_FOR, X_PREFIX, FORWARDED_KEYS };
static const csgi_environ__key forwarded_keys[FORWARDED_KEYS] = {
    {"HTTP_FORWARDED", 14},       {"HTTP_X_FORWARDED_PROTO", 22},  {"HTTP_X_FORWARDED_HOST", 21},
    {"HTTP_X_FORWARDED_FOR", 20}, {"HTTP_X_FORWARDED_PREFIX", 23},
};

static int apply_x_forwarded(csgi_environ *environ, const char *const *headers)
{
    size_t len;
    const char *v;
    int rc = 0;
    const char *proto = headers[X_PROTO];
    if (proto && (v = last_element(proto, &len), is_scheme(v, len)))
        rc = set_scheme(environ, len);
    const char *host = headers[X_HOST];
    if (rc == 0 && host && (v = last_element(host, &len), is_host(v, len)))
        rc = set_n(environ, "HTTP_HOST", v, len);
    const char *for_ = headers[X_FOR];
    char address[INET6_ADDRSTRLEN];
    if (rc == 0 && for_ && (v = last_element(for_, &len), client_address(v, len, address)))
        rc = csgi_environ_set(environ, "REMOTE_ADDR", address);
    const char *prefix = headers[X_PREFIX];
    if (rc == 0 && prefix && prefix[0] == '/') {
        size_t n = strlen(prefix);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)prefix[i] <= ' ' || prefix[i] == 0x7f || prefix[i] == '?' ||
                prefix[i] == '#')
                return 0; /* malformed: ignored */
        while (n > 0 && prefix[n - 1] == '/')
            n--;
        const char *script = csgi_environ_get(environ, "SCRIPT_NAME");
        size_t script_len = script ? strlen(script) : 0;
        char *joined = csgi_environ_alloc(environ, n + script_len + 1);
        if (!joined)
            return CSGI_ENOMEM;
        memcpy(joined, prefix, n);
        memcpy(joined + n, script ? script : "", script_len + 1);
        rc = csgi_environ_set(environ, "SCRIPT_NAME", joined);
    }
    return rc;
}

static csgi_body *proxy_call(void *state, csgi_environ *environ,
                             csgi_start_response *start_response)
{
    const proxy_filter *f = state;
    if (csgi_middleware__networks_match_client(f->trusted, f->count, environ)) {
        const char *headers[FORWARDED_KEYS];
        int rc = csgi_environ__get_headers(environ, forwarded_keys, FORWARDED_KEYS, headers);
        if (rc == 0)
            rc = headers[FORWARDED] ? apply_forwarded(environ, headers[FORWARDED])
                                    : apply_x_forwarded(environ, headers);
        if (rc != 0)
            return NULL; /* out of memory: the server answers 500 */
    }
    return csgi_app_call(f->next, environ, start_response);
}

static void proxy_destroy(void *state)
{
    proxy_filter *f = state;
    if (!f)
        return;
    csgi_app_free(f->next);
    csgi__free(f->trusted);
    csgi__free(f);
}

static const csgi_app_type proxy_type = {"http_proxy_to_wsgi", proxy_call, proxy_destroy};

/* ---- INI factory --------------------------------------------------------------------- */

int csgi_http_proxy_to_wsgi__filter_factory(csgi_app **out, csgi_loader *loader,
                                            const csgi_conf *global_conf,
                                            const csgi_conf *local_conf, csgi_app *next,
                                            csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    static const char *const known[] = {"enable_proxy_headers_parsing", "trusted_proxies", NULL};
    if (csgi_middleware__known_keys(local_conf, "http_proxy_to_wsgi", known, error) != 0) {
        csgi_app_free(next);
        return CSGI_EINVAL;
    }
    int enabled = 0;
    int rc = csgi_conf_asbool(local_conf, "enable_proxy_headers_parsing", 0, &enabled, error);
    proxy_filter *f = rc == 0 ? csgi__calloc(1, sizeof(*f)) : NULL;
    if (rc == 0 && !f)
        rc = CSGI_ENOMEM;
    if (rc == 0 && enabled)
        rc = csgi_middleware__networks_parse(local_conf, "trusted_proxies", &f->trusted, &f->count,
                                             error);
    if (rc != 0) {
        csgi__free(f);
        csgi_app_free(next);
        return rc;
    }
    f->next = next;
    return csgi_app_new(out, &proxy_type, f);
}
