/*
 * Lists of addresses and CIDR blocks from an INI key, and the check of a
 * client address against them: http_proxy_to_wsgi's trusted_proxies and
 * healthcheck's allowed_source_ranges.
 */
#include "common/alloc.h"
#include "gateway/environ_private.h"
#include "middleware/middleware.h"

#include <csgi/environ.h>
#include <netinet/in.h>

#include <arpa/inet.h>
#include <string.h>

int csgi_middleware__parse_address(const char *text, size_t len, unsigned char out[16])
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (len == 0 || len >= sizeof(buf))
        return 0;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, out) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, buf, out) == 1)
        return AF_INET6;
    return 0;
}

/* One entry: ADDRESS or ADDRESS/BITS. */
static bool parse_network(const char *text, size_t len, csgi_middleware__network *out)
{
    const char *slash = memchr(text, '/', len);
    size_t address_len = slash ? (size_t)(slash - text) : len;
    out->family = csgi_middleware__parse_address(text, address_len, out->address);
    if (!out->family)
        return false;
    unsigned max = out->family == AF_INET ? 32 : 128;
    out->bits = max;
    if (slash) {
        unsigned bits = 0;
        const char *p = slash + 1, *end = text + len;
        if (p == end || end - p > 3)
            return false;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9')
                return false;
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max)
            return false;
        out->bits = bits;
    }
    return true;
}

#define SEPARATORS ", \t"

int csgi_middleware__networks_parse(const csgi_conf *conf, const char *key,
                                    csgi_middleware__network **out, size_t *count,
                                    csgi_load_error *error)
{
    const char *list = csgi_conf_get(conf, key);
    size_t n = 0;
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, SEPARATORS);
        n += len > 0;
        p += len + (p[len] != '\0');
    }
    *out = NULL;
    *count = 0;
    if (n == 0)
        return 0;
    csgi_middleware__network *networks = csgi__calloc(n, sizeof(*networks));
    if (!networks)
        return CSGI_ENOMEM;
    size_t parsed = 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, SEPARATORS);
        if (len > 0 && !parse_network(p, len, &networks[parsed++])) {
            csgi_conf_error(conf, key, error, "'%.*s' is not an address or a CIDR block", (int)len,
                            p);
            csgi__free(networks);
            return CSGI_EINVAL;
        }
        p += len + (p[len] != '\0');
    }
    *out = networks;
    *count = n;
    return 0;
}

/* Whether the address (family, bytes) is in one of the networks. */
static bool match_bytes(const csgi_middleware__network *networks, size_t count, int family,
                        const unsigned char *bytes)
{
    for (size_t i = 0; family && i < count; i++) {
        const csgi_middleware__network *n = &networks[i];
        if (n->family != family)
            continue;
        unsigned whole = n->bits / 8, rest = n->bits % 8;
        if (memcmp(bytes, n->address, whole) != 0)
            continue;
        unsigned char mask = (unsigned char)(0xff << (8 - rest));
        if (rest == 0 || (bytes[whole] & mask) == (n->address[whole] & mask))
            return true;
    }
    return false;
}

bool csgi_middleware__networks_match(const csgi_middleware__network *networks, size_t count,
                                     const char *address)
{
    unsigned char bytes[16];
    int family = address ? csgi_middleware__parse_address(address, strlen(address), bytes) : 0;
    return match_bytes(networks, count, family, bytes);
}

bool csgi_middleware__networks_match_client(const csgi_middleware__network *networks, size_t count,
                                            csgi_environ *environ)
{
    /* The connection's own address, while REMOTE_ADDR is still it: no
       text to format and parse again. */
    const struct sockaddr *peer = csgi_environ__peer(environ);
    if (peer && peer->sa_family == AF_INET)
        return match_bytes(networks, count, AF_INET,
                           (const unsigned char *)&((const struct sockaddr_in *)peer)->sin_addr);
    if (peer && peer->sa_family == AF_INET6)
        return match_bytes(networks, count, AF_INET6,
                           (const unsigned char *)&((const struct sockaddr_in6 *)peer)->sin6_addr);
    return csgi_middleware__networks_match(networks, count,
                                           csgi_environ_get(environ, "REMOTE_ADDR"));
}
