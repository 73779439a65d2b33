/*
 * The test session's cookie jar (include/csgi/testing.h): what a browser
 * does with Set-Cookie and Cookie, after RFC 6265.
 *
 * Storing follows section 5.2 (parsing a set-cookie-string: the
 * name-value pair, then attributes of which the last of each name wins;
 * Expires read by csgi's HTTP date parser, Max-Age a number of seconds,
 * a leading dot of Domain dropped, a Path that is not absolute replaced by
 * the default path) and 5.3 (host-only cookies when no Domain was given, a
 * Domain the request's host does not domain-match ignored, a cookie of the
 * same name, domain and path replaced but keeping its creation time,
 * expired cookies evicted, which is how a response deletes one). Sending
 * follows 5.4: the cookies whose domain and path match the request, Secure
 * ones only over https, longest paths first and the oldest first among
 * equals. There is no public suffix list: a test's hosts are its own.
 */
#include "testing/testing_private.h"

#include "common/alloc.h"
#include "common/chartab.h"
#include "common/date.h"
#include "common/vec.h"

#include <stdint.h>
#include <string.h>

struct csgi_test__cookie {
    char *name; /* one allocation: name, value, domain and path, NUL-terminated */
    char *value;
    char *domain; /* lower case */
    char *path;
    size_t path_len;
    time_t expires; /* when persistent */
    uint64_t created;
    unsigned char persistent;
    unsigned char host_only;
    unsigned char secure;
    unsigned char http_only;
};

void csgi_test__jar_init(csgi_test__jar *jar)
{
    memset(jar, 0, sizeof(*jar));
}

static void jar_remove(csgi_test__jar *jar, size_t index)
{
    csgi__free(jar->cookies[index]);
    memmove(jar->cookies + index, jar->cookies + index + 1,
            (jar->count - index - 1) * sizeof(*jar->cookies));
    jar->count--;
}

void csgi_test__jar_clear(csgi_test__jar *jar)
{
    for (size_t i = 0; i < jar->count; i++)
        csgi__free(jar->cookies[i]);
    csgi__free(jar->cookies);
    csgi_test__jar_init(jar);
}

static int cookie_expired(const csgi_test__cookie *cookie, time_t now)
{
    return cookie->persistent && cookie->expires <= now;
}

/* Evict the cookies whose time has passed. */
static void jar_evict(csgi_test__jar *jar, time_t now)
{
    for (size_t i = jar->count; i-- > 0;)
        if (cookie_expired(jar->cookies[i], now))
            jar_remove(jar, i);
}

/* ---- Hosts and paths (RFC 6265 5.1.3, 5.1.4) ------------------------------------- */

/* The host of an authority ("Host" field), without its port, lower-cased,
   into out (size bytes); 0 when it does not fit. */
int csgi_test__cookie_host(const char *authority, char *out, size_t size)
{
    size_t len = strlen(authority);
    if (authority[0] == '[') {
        const char *end = strchr(authority, ']');
        len = end ? (size_t)(end - authority) + 1 : len;
    } else {
        const char *colon = strrchr(authority, ':');
        if (colon)
            len = (size_t)(colon - authority);
    }
    if (len >= size)
        return 0;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)csgi_char__lower((unsigned char)authority[i]);
    out[len] = '\0';
    return 1;
}

/* An IP address rather than a host name: no domain matches it but itself. */
static int is_ip_address(const char *host)
{
    if (host[0] == '[')
        return 1;
    for (const char *p = host; *p; p++)
        if (!csgi_char__is_digit((unsigned char)*p) && *p != '.')
            return 0;
    return 1;
}

/* 5.1.3: host is domain, or a name under it. */
static int domain_match(const char *host, const char *domain)
{
    size_t host_len = strlen(host), domain_len = strlen(domain);
    if (host_len == domain_len)
        return memcmp(host, domain, host_len) == 0;
    return host_len > domain_len && host[host_len - domain_len - 1] == '.' &&
           memcmp(host + host_len - domain_len, domain, domain_len) == 0 && !is_ip_address(host);
}

/* 5.1.4: the request path is the cookie's path or under it. */
static int path_match(const char *path, size_t path_len, const csgi_test__cookie *cookie)
{
    if (path_len < cookie->path_len || memcmp(path, cookie->path, cookie->path_len) != 0)
        return 0;
    return path_len == cookie->path_len || cookie->path[cookie->path_len - 1] == '/' ||
           path[cookie->path_len] == '/';
}

/* 5.1.4: the directory of the request path, "/" when it has none. */
static size_t default_path_len(const char *path, size_t path_len)
{
    if (path_len == 0 || path[0] != '/')
        return 0;
    size_t last = path_len;
    while (last > 0 && path[last - 1] != '/')
        last--;
    return last > 1 ? last - 1 : 1;
}

/* ---- Parsing a set-cookie-string (RFC 6265 5.2) ----------------------------------- */

typedef struct span {
    const char *text;
    size_t len;
} span;

/* The span without leading and trailing SP and HTAB. */
static span trim(const char *text, size_t len)
{
    while (len && csgi_char__is_ws((unsigned char)text[0])) {
        text++;
        len--;
    }
    while (len && csgi_char__is_ws((unsigned char)text[len - 1]))
        len--;
    return (span){text, len};
}

static int span_is(span s, const char *lower)
{
    return s.len == strlen(lower) && csgi_char__equal_nocase(s.text, lower, s.len);
}

typedef struct parsed {
    span name, value, domain, path;
    int has_domain, has_path, has_max_age, has_expires, secure, http_only;
    int64_t max_age;
    time_t expires;
} parsed;

/* Max-Age: an optional '-' then digits (5.2.2); 0 when the value is not one. */
static int parse_max_age(span value, int64_t *out)
{
    size_t i = value.len && value.text[0] == '-';
    if (i == value.len)
        return 0;
    int64_t seconds = 0;
    for (; i < value.len; i++) {
        if (!csgi_char__is_digit((unsigned char)value.text[i]))
            return 0;
        if (seconds < INT64_MAX / 16)
            seconds = seconds * 10 + (value.text[i] - '0');
    }
    *out = value.text[0] == '-' ? -seconds : seconds;
    return 1;
}

static void parse_attribute(parsed *cookie, span attribute)
{
    const char *equals = memchr(attribute.text, '=', attribute.len);
    span name = trim(attribute.text, equals ? (size_t)(equals - attribute.text) : attribute.len);
    span value = equals ? trim(equals + 1, attribute.len - (size_t)(equals + 1 - attribute.text))
                        : (span){"", 0};
    if (span_is(name, "expires")) {
        /* An Expires the date parser cannot read is ignored (5.2.1). */
        char date[64];
        time_t when;
        if (value.len < sizeof(date)) {
            memcpy(date, value.text, value.len);
            date[value.len] = '\0';
            if (csgi_date__parse(date, &when) == 0) {
                cookie->expires = when;
                cookie->has_expires = 1;
            }
        }
    } else if (span_is(name, "max-age")) {
        if (parse_max_age(value, &cookie->max_age))
            cookie->has_max_age = 1;
    } else if (span_is(name, "domain")) {
        if (value.len && value.text[0] == '.') {
            value.text++;
            value.len--;
        }
        if (value.len) {
            cookie->domain = value;
            cookie->has_domain = 1;
        }
    } else if (span_is(name, "path")) {
        cookie->path = value;
        cookie->has_path = value.len && value.text[0] == '/';
    } else if (span_is(name, "secure")) {
        cookie->secure = 1;
    } else if (span_is(name, "httponly")) {
        cookie->http_only = 1;
    }
}

/* 0, or CSGI_EINVAL for a string the user agent ignores: no '=' in the
   name-value pair, or an empty name. */
static int parse_set_cookie(const char *text, parsed *out)
{
    memset(out, 0, sizeof(*out));
    size_t pair_len = strcspn(text, ";");
    const char *equals = memchr(text, '=', pair_len);
    if (!equals)
        return CSGI_EINVAL;
    out->name = trim(text, (size_t)(equals - text));
    out->value = trim(equals + 1, pair_len - (size_t)(equals + 1 - text));
    if (out->name.len == 0)
        return CSGI_EINVAL;
    for (const char *p = text + pair_len; *p == ';';) {
        size_t len = strcspn(p + 1, ";");
        parse_attribute(out, (span){p + 1, len});
        p += 1 + len;
    }
    return 0;
}

/* ---- Storing (RFC 6265 5.3) -------------------------------------------------------- */

/* Where a cookie goes: the order of the Cookie header, longest paths
   first, then the oldest. */
static size_t jar_position(const csgi_test__jar *jar, const csgi_test__cookie *cookie)
{
    size_t i = 0;
    while (i < jar->count && (jar->cookies[i]->path_len > cookie->path_len ||
                              (jar->cookies[i]->path_len == cookie->path_len &&
                               jar->cookies[i]->created < cookie->created)))
        i++;
    return i;
}

static csgi_test__cookie *cookie_new(const parsed *p, const char *domain, const char *path,
                                     size_t path_len)
{
    size_t domain_len = strlen(domain);
    size_t size =
        sizeof(csgi_test__cookie) + p->name.len + p->value.len + domain_len + path_len + 4;
    csgi_test__cookie *cookie = csgi__malloc(size);
    if (!cookie)
        return NULL;
    memset(cookie, 0, sizeof(*cookie));
    char *text = (char *)(cookie + 1);
    const span parts[] = {p->name, p->value, {domain, domain_len}, {path, path_len}};
    char **fields[] = {&cookie->name, &cookie->value, &cookie->domain, &cookie->path};
    for (size_t i = 0; i < 4; i++) {
        *fields[i] = text;
        memcpy(text, parts[i].text, parts[i].len);
        text += parts[i].len;
        *text++ = '\0';
    }
    for (char *c = cookie->domain; *c; c++)
        *c = (char)csgi_char__lower((unsigned char)*c);
    cookie->path_len = path_len;
    return cookie;
}

int csgi_test__jar_store(csgi_test__jar *jar, const char *set_cookie, const char *host,
                         const char *path, size_t path_len, time_t now)
{
    parsed p;
    if (parse_set_cookie(set_cookie, &p) != 0 ||
        !csgi_char__is_field_value(set_cookie, strlen(set_cookie)))
        return CSGI_EINVAL;

    char domain[256];
    if (p.has_domain) {
        if (p.domain.len >= sizeof(domain))
            return CSGI_EINVAL;
        for (size_t i = 0; i < p.domain.len; i++)
            domain[i] = (char)csgi_char__lower((unsigned char)p.domain.text[i]);
        domain[p.domain.len] = '\0';
        if (!domain_match(host, domain))
            return CSGI_EINVAL; /* a cookie for somebody else's domain */
    }
    const char *cookie_path = p.has_path ? p.path.text : "/";
    size_t cookie_path_len = p.has_path ? p.path.len : 1;
    if (!p.has_path && default_path_len(path, path_len) > 1) {
        cookie_path = path;
        cookie_path_len = default_path_len(path, path_len);
    }

    csgi_test__cookie *cookie =
        cookie_new(&p, p.has_domain ? domain : host, cookie_path, cookie_path_len);
    if (!cookie)
        return CSGI_ENOMEM;
    cookie->host_only = !p.has_domain;
    cookie->secure = (unsigned char)p.secure;
    cookie->http_only = (unsigned char)p.http_only;
    /* Max-Age wins over Expires; 0 or less means "now": the cookie goes. */
    if (p.has_max_age) {
        cookie->persistent = 1;
        if (p.max_age <= 0)
            cookie->expires = 0;
        else
            cookie->expires = p.max_age > INT32_MAX ? (time_t)INT32_MAX + now : now + p.max_age;
    } else if (p.has_expires) {
        cookie->persistent = 1;
        cookie->expires = p.expires;
    }
    cookie->created = ++jar->sequence;

    /* The same name, domain and path: replaced, keeping its creation time. */
    for (size_t i = 0; i < jar->count; i++) {
        const csgi_test__cookie *old = jar->cookies[i];
        if (strcmp(old->name, cookie->name) == 0 && strcmp(old->domain, cookie->domain) == 0 &&
            strcmp(old->path, cookie->path) == 0) {
            cookie->created = old->created;
            jar_remove(jar, i);
            break;
        }
    }
    void *cookies = jar->cookies;
    int rc = csgi_vec__reserve(&cookies, &jar->capacity, sizeof(*jar->cookies), jar->count + 1,
                               CSGI_TEST__COOKIES_MAX);
    if (rc != 0) {
        csgi__free(cookie);
        return rc;
    }
    jar->cookies = cookies;
    size_t at = jar_position(jar, cookie);
    memmove(jar->cookies + at + 1, jar->cookies + at, (jar->count - at) * sizeof(*jar->cookies));
    jar->cookies[at] = cookie;
    jar->count++;
    jar_evict(jar, now);
    return 0;
}

/* ---- Sending (RFC 6265 5.4) -------------------------------------------------------- */

static int cookie_matches(const csgi_test__cookie *cookie, int secure, const char *host,
                          const char *path, size_t path_len, time_t now)
{
    if (cookie_expired(cookie, now))
        return 0;
    if (cookie->host_only ? strcmp(host, cookie->domain) != 0 : !domain_match(host, cookie->domain))
        return 0;
    return path_match(path, path_len, cookie) && (secure || !cookie->secure);
}

int csgi_test__jar_header(const csgi_test__jar *jar, int secure, const char *host, const char *path,
                          size_t path_len, time_t now, char **out)
{
    *out = NULL;
    size_t size = 0;
    for (size_t i = 0; i < jar->count; i++) {
        const csgi_test__cookie *cookie = jar->cookies[i];
        if (cookie_matches(cookie, secure, host, path, path_len, now))
            size += strlen(cookie->name) + strlen(cookie->value) + 3;
    }
    if (size == 0)
        return 0;
    char *header = csgi__malloc(size);
    if (!header)
        return CSGI_ENOMEM;
    char *p = header;
    for (size_t i = 0; i < jar->count; i++) {
        const csgi_test__cookie *cookie = jar->cookies[i];
        if (!cookie_matches(cookie, secure, host, path, path_len, now))
            continue;
        if (p != header) {
            *p++ = ';';
            *p++ = ' ';
        }
        size_t name_len = strlen(cookie->name), value_len = strlen(cookie->value);
        memcpy(p, cookie->name, name_len);
        p += name_len;
        *p++ = '=';
        memcpy(p, cookie->value, value_len);
        p += value_len;
    }
    *p = '\0';
    *out = header;
    return 0;
}

const char *csgi_test__jar_get(const csgi_test__jar *jar, const char *name, time_t now)
{
    for (size_t i = 0; i < jar->count; i++)
        if (strcmp(jar->cookies[i]->name, name) == 0 && !cookie_expired(jar->cookies[i], now))
            return jar->cookies[i]->value;
    return NULL;
}

size_t csgi_test__jar_count(const csgi_test__jar *jar, time_t now)
{
    size_t count = 0;
    for (size_t i = 0; i < jar->count; i++)
        count += !cookie_expired(jar->cookies[i], now);
    return count;
}
