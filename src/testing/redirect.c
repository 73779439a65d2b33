/*
 * Following redirects (include/csgi/testing.h,
 * csgi_test_request_set_follow_redirects()), as a browser does (the Fetch
 * standard's "HTTP-redirect fetch"):
 *
 * - 301, 302, 303, 307 and 308 with a Location are followed; the Location
 *   is resolved against the request's URL (RFC 3986 5.2, dot segments
 *   removed, the fragment dropped), and only http and https URLs are.
 * - 303 makes the next request a GET without a body (HEAD stays HEAD);
 *   301 and 302 do so for a POST only; 307 and 308 keep the method and
 *   the body. A request that loses its body loses its Content-* fields,
 *   Transfer-Encoding and Expect with it.
 * - The next request keeps the other header fields (but Host, which the
 *   URL gives, and Authorization when the origin changes), the environ
 *   overrides, the client address, the timeout and the body's delivery.
 *
 * Each hop is a request of its own through csgi_test__exchange(), so a
 * session stores the cookies set along the way and sends them on.
 */
#include "testing/testing_private.h"

#include "common/arena.h"
#include "common/chartab.h"
#include "common/token.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- Resolving a reference (RFC 3986 5.2) ------------------------------------------ */

/* The length of a reference's scheme ("http" of "http://x"), 0 when it has
   none (a relative reference). */
static size_t scheme_len(const char *ref)
{
    if (!csgi_char__is_alpha((unsigned char)ref[0]))
        return 0;
    size_t i = 1;
    while (csgi_char__is((unsigned char)ref[i], CSGI_CHAR__ALPHA | CSGI_CHAR__DIGIT) ||
           ref[i] == '+' || ref[i] == '-' || ref[i] == '.')
        i++;
    return ref[i] == ':' ? i : 0;
}

/* Drop the last segment of out (n bytes) and the '/' before it. */
static void pop_segment(const char *out, size_t *n)
{
    while (*n > 0 && out[*n - 1] != '/')
        --*n;
    if (*n > 0)
        --*n;
}

/* 5.2.4: remove_dot_segments of len bytes at in, into out (at most len
   bytes); returns the length written. */
static size_t remove_dot_segments(char *out, const char *in, size_t len)
{
    size_t n = 0, i = 0;
    while (i < len) {
        const char *s = in + i;
        size_t left = len - i;
        if (left >= 3 && memcmp(s, "../", 3) == 0) {
            i += 3;
        } else if (left >= 2 && memcmp(s, "./", 2) == 0) {
            i += 2;
        } else if (left >= 3 && memcmp(s, "/./", 3) == 0) {
            i += 2;
        } else if (left == 2 && memcmp(s, "/.", 2) == 0) {
            out[n++] = '/';
            i += 2;
        } else if (left >= 4 && memcmp(s, "/../", 4) == 0) {
            pop_segment(out, &n);
            i += 3;
        } else if (left == 3 && memcmp(s, "/..", 3) == 0) {
            pop_segment(out, &n);
            out[n++] = '/';
            i += 3;
        } else if ((left == 1 && s[0] == '.') || (left == 2 && memcmp(s, "..", 2) == 0)) {
            i += left;
        } else {
            size_t segment = s[0] == '/';
            while (segment < left && s[segment] != '/')
                segment++;
            memcpy(out + n, s, segment);
            n += segment;
            i += segment;
        }
    }
    return n;
}

/* The parts of an absolute http(s) URL or of a reference, as spans. */
typedef struct url_parts {
    const char *scheme, *authority, *path, *query; /* query NULL when absent */
    size_t scheme_len, authority_len, path_len, query_len;
    int has_authority;
} url_parts;

/* Split text (up to its '#') into its parts (RFC 3986 3). */
static void split(const char *text, url_parts *out)
{
    memset(out, 0, sizeof(*out));
    size_t end = strcspn(text, "#");
    const char *p = text;
    out->scheme_len = scheme_len(text);
    if (out->scheme_len) {
        out->scheme = text;
        p += out->scheme_len + 1;
    }
    if (p[0] == '/' && p[1] == '/') {
        out->has_authority = 1;
        out->authority = p + 2;
        out->authority_len = strcspn(out->authority, "/?#");
        p = out->authority + out->authority_len;
    }
    out->path = p;
    out->path_len = strcspn(p, "?#");
    p += out->path_len;
    if (*p == '?') {
        out->query = p + 1;
        out->query_len = (size_t)(text + end - out->query);
    }
}

/* 5.2.2: ref resolved against base (an absolute URL), in arena, as an
   http or https URL the client can send. Returns 0 with *out; 0 with NULL
   in *out when the result is of another scheme or has no host; or
   CSGI_ENOMEM. */
static int resolve(csgi_arena *arena, const char *base_url, const char *ref_url, char **out)
{
    url_parts base, ref, target;
    split(base_url, &base);
    split(ref_url, &ref);
    *out = NULL;
    target = ref;
    if (!ref.scheme) {
        target.scheme = base.scheme;
        target.scheme_len = base.scheme_len;
        if (!ref.has_authority) {
            target.has_authority = 1;
            target.authority = base.authority;
            target.authority_len = base.authority_len;
            if (ref.path_len == 0) {
                target.path = base.path;
                target.path_len = base.path_len;
                if (!ref.query) {
                    target.query = base.query;
                    target.query_len = base.query_len;
                }
            }
        }
    }
    if (!target.has_authority || target.authority_len == 0 ||
        !((target.scheme_len == 4 && strncasecmp(target.scheme, "http", 4) == 0) ||
          (target.scheme_len == 5 && strncasecmp(target.scheme, "https", 5) == 0)))
        return 0;

    /* A relative path joins the base's directory (5.2.3). */
    const char *directory = "";
    size_t directory_len = 0;
    if (target.path == ref.path && ref.path_len && ref.path[0] != '/' && !ref.has_authority) {
        directory = base.path;
        directory_len = base.path_len;
        while (directory_len > 0 && directory[directory_len - 1] != '/')
            directory_len--;
        if (directory_len == 0) {
            directory = "/";
            directory_len = 1;
        }
    }
    /* The path merged and cleaned of dot segments; bytes a request target
       cannot hold (a space) percent-encoded, as a browser does. */
    size_t merged_len = directory_len + target.path_len;
    char *merged = csgi_arena__alloc(arena, 2 * merged_len + 2);
    if (!merged)
        return CSGI_ENOMEM;
    char *path = merged + merged_len + 1;
    memcpy(merged, directory, directory_len);
    memcpy(merged + directory_len, target.path, target.path_len);
    size_t path_len = remove_dot_segments(path, merged, merged_len);
    if (path_len == 0)
        path[path_len++] = '/';
    size_t encoded_path = csgi_char__percent_encode(NULL, path, path_len, CSGI_CHAR__TARGET);
    size_t encoded_query =
        csgi_char__percent_encode(NULL, target.query, target.query_len, CSGI_CHAR__TARGET);
    char *url = csgi_arena__alloc(arena, target.scheme_len + 3 + target.authority_len +
                                             encoded_path + encoded_query + 2);
    if (!url)
        return CSGI_ENOMEM;
    char *p = url;
    for (size_t i = 0; i < target.scheme_len; i++)
        *p++ = (char)csgi_char__lower((unsigned char)target.scheme[i]);
    memcpy(p, "://", 3);
    p += 3;
    memcpy(p, target.authority, target.authority_len);
    p += target.authority_len;
    p += csgi_char__percent_encode(p, path, path_len, CSGI_CHAR__TARGET);
    if (target.query) {
        *p++ = '?';
        p += csgi_char__percent_encode(p, target.query, target.query_len, CSGI_CHAR__TARGET);
    }
    *p = '\0';
    *out = url;
    return 0;
}

/* ---- The next request ------------------------------------------------------------- */

static int is_redirect(int code)
{
    return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
}

/* The fields a request without a body does not send (Fetch's
   "request-body-header names", plus the framing and Expect). */
static int describes_body(const char *name)
{
    switch (csgi_token__lookup(name, strlen(name))) {
    case CSGI_TOKEN__CONTENT_TYPE:
    case CSGI_TOKEN__CONTENT_LENGTH:
    case CSGI_TOKEN__CONTENT_ENCODING:
    case CSGI_TOKEN__CONTENT_LANGUAGE:
    case CSGI_TOKEN__CONTENT_LOCATION:
    case CSGI_TOKEN__TRANSFER_ENCODING:
    case CSGI_TOKEN__EXPECT: return 1;
    default: return 0;
    }
}

/* The host of a URL's authority and its port, the scheme's default when
   it names none. */
static void origin_of(const url_parts *url, size_t *host_len, unsigned *port)
{
    const char *authority = url->authority;
    size_t len = url->authority_len;
    *port = url->scheme_len == 5 ? 443 : 80;
    *host_len = len;
    for (size_t i = len; i > 0 && authority[i - 1] != ']'; i--) {
        if (authority[i - 1] == ':') {
            *host_len = i - 1;
            if (i < len)
                *port = (unsigned)strtoul(authority + i, NULL, 10);
            break;
        }
    }
}

/* 1 when the two URLs have the same origin: scheme, host and port. */
static int same_origin(const char *a, const char *b)
{
    url_parts pa, pb;
    split(a, &pa);
    split(b, &pb);
    size_t host_a, host_b;
    unsigned port_a, port_b;
    origin_of(&pa, &host_a, &port_a);
    origin_of(&pb, &host_b, &port_b);
    return pa.scheme_len == pb.scheme_len &&
           strncasecmp(pa.scheme, pb.scheme, pa.scheme_len) == 0 && host_a == host_b &&
           strncasecmp(pa.authority, pb.authority, host_a) == 0 && port_a == port_b;
}

/* The request that follows the redirect to url (code its status). */
static int next_request(csgi_test_request **out, const csgi_test_request *from, int code,
                        const char *from_url, const char *url)
{
    const char *method = from->method;
    int keep_body = 1;
    if ((code == 303 && strcmp(method, "HEAD") != 0) ||
        ((code == 301 || code == 302) && strcmp(method, "POST") == 0)) {
        method = "GET";
        keep_body = 0;
    }
    csgi_test_request *next = NULL;
    int rc = csgi_test_request_new(&next, method, url);
    if (rc != 0)
        return rc;
    int cross_origin = !same_origin(from_url, url);
    for (const csgi_test__pair *h = from->headers; h && rc == 0; h = h->next) {
        int token = csgi_token__lookup(h->name, strlen(h->name));
        if (token == CSGI_TOKEN__HOST || (!keep_body && describes_body(h->name)) ||
            (cross_origin && token == CSGI_TOKEN__AUTHORIZATION))
            continue;
        rc = csgi_test_request_add_header(next, h->name, h->value);
    }
    for (const csgi_test__pair *o = from->overrides; o && rc == 0; o = o->next)
        rc = csgi_test_request_set_environ(next, o->name, o->value);
    if (rc == 0 && keep_body && from->has_body) {
        rc = csgi_test_request_set_body(next, from->body, from->body_len);
        next->chunked = from->chunked;
    }
    if (rc != 0) {
        csgi_test_request_free(next);
        return rc;
    }
    next->peer = from->peer;
    next->timeout_ms = from->timeout_ms;
    next->delivery = from->delivery;
    next->piece_size = from->piece_size;
    next->max_redirects = from->max_redirects;
    *out = next;
    return 0;
}

/* The request that follows response, or NULL in *out when there is none
   to follow (not a redirect, no Location, a Location the client cannot
   send). 0 or CSGI_ENOMEM. */
static int redirect_of(csgi_test_request **out, const csgi_test_request *request,
                       const csgi_test_response *response)
{
    *out = NULL;
    const char *location = csgi_test_response_header(response, "Location");
    if (!is_redirect(csgi_test_response_code(response)) || !location)
        return 0;
    csgi_arena arena;
    csgi_arena__init(&arena, NULL);
    char *url = NULL;
    int rc = resolve(&arena, response->url, location, &url);
    if (rc == 0 && url) {
        rc = next_request(out, request, csgi_test_response_code(response), response->url, url);
        if (rc == CSGI_EINVAL)
            rc = 0; /* a URL or a field the client refuses: not followed */
    }
    csgi_arena__clear(&arena);
    return rc;
}

int csgi_test__follow(csgi_test_response **out, csgi_test_request *request, csgi_app *app,
                      csgi_test__jar *jar)
{
    csgi_test_request *current = request, *owned = NULL;
    csgi_test_response *response = NULL; /* the last answer */
    size_t redirects = 0;
    int rc = csgi_test__exchange(&response, request, app, jar);
    while (rc == 0 && request->max_redirects) {
        csgi_test_request *next = NULL;
        rc = redirect_of(&next, current, response);
        if (rc != 0 || !next)
            break;
        if (redirects == request->max_redirects) {
            csgi_test_request_free(next);
            rc = CSGI_EREDIRECTS;
            break;
        }
        csgi_test_response *answer = NULL;
        rc = csgi_test__exchange(&answer, next, app, jar);
        if (rc == CSGI_EPARSE) {
            /* The server would refuse the request the Location makes: the
               redirect is the answer. */
            csgi_test_request_free(next);
            rc = 0;
            break;
        }
        csgi_test_response_free(response);
        csgi_test_request_free(owned);
        response = answer;
        owned = current = next;
        redirects++;
    }
    csgi_test_request_free(owned);
    if (rc != 0) {
        csgi_test_response_free(response);
        return rc;
    }
    response->redirects = redirects;
    *out = response;
    return 0;
}
