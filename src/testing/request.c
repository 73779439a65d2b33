/*
 * Building a request for the test client (include/csgi/testing.h): the
 * method, the URL split into scheme, Host and target, header fields, the
 * body, environ overrides and the client's address, all copied into the
 * request's arena.
 */
#include "testing/testing_private.h"

#include "common/alloc.h"
#include "common/arena.h"
#include "common/chartab.h"
#include "common/token.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int csgi_test__set_peer(struct sockaddr_storage *storage, const char *address, unsigned port)
{
    struct sockaddr_storage made;
    memset(&made, 0, sizeof(made));
    struct sockaddr_in *in = (struct sockaddr_in *)&made;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&made;
    if (!address || port > 65535)
        return CSGI_EINVAL;
    if (inet_pton(AF_INET, address, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, address, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
    } else {
        return CSGI_EINVAL;
    }
    *storage = made;
    return 0;
}

/* Split "http[s]://authority/rest" into the request's scheme, host and
   target; anything else is a target as is. */
static int parse_url(csgi_test_request *request, const char *url)
{
    size_t skip = 0;
    if (csgi_char__equal_nocase(url, "http://", 7)) {
        request->scheme = "http";
        request->default_port = 80;
        skip = 7;
    } else if (csgi_char__equal_nocase(url, "https://", 8)) {
        request->scheme = "https";
        request->default_port = 443;
        skip = 8;
    } else if (strstr(url, "://")) {
        return CSGI_EINVAL;
    }
    if (!skip) {
        request->target = csgi_arena__strndup(&request->arena, url, strlen(url));
        request->host = "localhost:80";
        return request->target ? 0 : CSGI_ENOMEM;
    }
    const char *authority = url + skip;
    size_t authority_len = strcspn(authority, "/?#");
    if (authority_len == 0)
        return CSGI_EINVAL;
    const char *rest = authority + authority_len;
    request->host = csgi_arena__strndup(&request->arena, authority, authority_len);
    if (*rest == '/') {
        request->target = csgi_arena__strndup(&request->arena, rest, strlen(rest));
    } else {
        /* "http://host?q" is "/?q". */
        size_t len = strlen(rest);
        char *target = csgi_arena__alloc(&request->arena, len + 2);
        if (target) {
            target[0] = '/';
            memcpy(target + 1, rest, len + 1);
        }
        request->target = target;
    }
    /* The local port of the "listener", for SERVER_PORT without a port. */
    const char *colon = strrchr(request->host, ':');
    if (colon && !strchr(colon, ']')) {
        unsigned port = 0;
        for (const char *p = colon + 1; *p >= '0' && *p <= '9' && port <= 65535; p++)
            port = port * 10 + (unsigned)(*p - '0');
        if (port && port <= 65535)
            request->default_port = port;
    }
    return request->host && request->target ? 0 : CSGI_ENOMEM;
}

int csgi_test_request_new(csgi_test_request **out, const char *method, const char *url)
{
    if (out)
        *out = NULL;
    if (!out || !method || !url || !csgi_char__is_token(method, strlen(method)))
        return CSGI_EINVAL;
    csgi_test_request *request = csgi__malloc(sizeof(*request));
    if (!request)
        return CSGI_ENOMEM;
    memset(request, 0, sizeof(*request));
    csgi_arena__init(&request->arena, NULL);
    request->headers_tail = &request->headers;
    request->overrides_tail = &request->overrides;
    request->scheme = "http";
    request->default_port = 80;
    csgi_test__set_peer(&request->peer, "127.0.0.1", 0);
    request->timeout_ms = CSGI_TEST_TIMEOUT_DEFAULT;
    request->method = csgi_arena__strndup(&request->arena, method, strlen(method));
    int rc = request->method ? parse_url(request, url) : CSGI_ENOMEM;
    if (rc != 0) {
        csgi_test_request_free(request);
        return rc;
    }
    *out = request;
    return 0;
}

void csgi_test_request_free(csgi_test_request *request)
{
    if (!request)
        return;
    csgi_arena__clear(&request->arena);
    csgi__free(request);
}

static int add_pair(csgi_test_request *request, csgi_test__pair ***tail, const char *name,
                    const char *value)
{
    csgi_test__pair *item = csgi_arena__alloc(&request->arena, sizeof(*item));
    if (!item)
        return CSGI_ENOMEM;
    item->next = NULL;
    item->name = csgi_arena__strndup(&request->arena, name, strlen(name));
    item->value = csgi_arena__strndup(&request->arena, value, strlen(value));
    if (!item->name || !item->value)
        return CSGI_ENOMEM;
    **tail = item;
    *tail = &item->next;
    return 0;
}

int csgi_test_request_add_header(csgi_test_request *request, const char *name, const char *value)
{
    if (!request || !name || !value || !csgi_char__is_token(name, strlen(name)) ||
        !csgi_char__is_field_value(value, strlen(value)))
        return CSGI_EINVAL;
    return add_pair(request, &request->headers_tail, name, value);
}

int csgi_test_request_set_body(csgi_test_request *request, const void *data, size_t len)
{
    if (!request || (len && !data))
        return CSGI_EINVAL;
    char *copy = csgi_arena__alloc(&request->arena, len ? len : 1);
    if (!copy)
        return CSGI_ENOMEM;
    if (len)
        memcpy(copy, data, len);
    request->body = copy;
    request->body_len = len;
    request->has_body = 1;
    return 0;
}

int csgi_test_request_set_body_delivery(csgi_test_request *request, csgi_test_delivery delivery,
                                        size_t piece_size)
{
    if (!request || (delivery != CSGI_TEST_DELIVERY_AT_ONCE && delivery != CSGI_TEST_DELIVERY_LATE))
        return CSGI_EINVAL;
    request->delivery = delivery;
    request->piece_size = piece_size;
    return 0;
}

void csgi_test_request_set_follow_redirects(csgi_test_request *request, unsigned max)
{
    if (request)
        request->max_redirects = max;
}

void csgi_test_request_set_chunked(csgi_test_request *request, int chunked)
{
    if (request)
        request->chunked = chunked != 0;
}

int csgi_test_request_set_environ(csgi_test_request *request, const char *key, const char *value)
{
    if (!request || !key || !*key || !value)
        return CSGI_EINVAL;
    return add_pair(request, &request->overrides_tail, key, value);
}

int csgi_test_request_set_remote(csgi_test_request *request, const char *address, unsigned port)
{
    if (!request)
        return CSGI_EINVAL;
    return csgi_test__set_peer(&request->peer, address, port);
}

/* A copy of text in the request's arena (NULL stays NULL; *failed on no memory). */
static const char *tls_copy(csgi_test_request *request, const char *text, int *failed)
{
    if (!text)
        return NULL;
    const char *copy = csgi_arena__strndup(&request->arena, text, strlen(text));
    if (!copy)
        *failed = 1;
    return copy;
}

int csgi_test_request_set_tls(csgi_test_request *request, const csgi_test_tls *tls)
{
    if (!request)
        return CSGI_EINVAL;
    static const csgi_test_tls none = {NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    if (!tls)
        tls = &none;
    int failed = 0;
    csgi_tls__info info;
    memset(&info, 0, sizeof(info));
    info.protocol = tls->protocol ? tls_copy(request, tls->protocol, &failed) : "TLSv1.3";
    info.cipher = tls->cipher ? tls_copy(request, tls->cipher, &failed) : "TLS_AES_256_GCM_SHA384";
    info.session = "Initial";
    info.server_name = tls_copy(request, tls->server_name, &failed);
    info.client_s_dn = tls_copy(request, tls->client_s_dn, &failed);
    info.client_i_dn = tls_copy(request, tls->client_i_dn, &failed);
    info.client_cert = tls_copy(request, tls->client_cert, &failed);
    info.client_cert_len = info.client_cert ? strlen(info.client_cert) : 0;
    info.client_verify = tls->client_verify ? tls_copy(request, tls->client_verify, &failed)
                         : info.client_s_dn || info.client_cert ? "SUCCESS"
                                                                : "NONE";
    if (failed)
        return CSGI_ENOMEM;
    request->tls = info;
    request->has_tls = 1;
    return 0;
}

void csgi_test_request_set_timeout(csgi_test_request *request, unsigned milliseconds)
{
    if (request)
        request->timeout_ms = milliseconds ? milliseconds : CSGI_TEST_TIMEOUT_DEFAULT;
}

const char *csgi_test__request_authority(const csgi_test_request *request)
{
    for (const csgi_test__pair *h = request->headers; h; h = h->next)
        if (csgi_token__lookup(h->name, strlen(h->name)) == CSGI_TOKEN__HOST)
            return h->value;
    return request->host;
}

char *csgi_test__request_url(const csgi_test_request *request, csgi_arena *arena)
{
    const char *authority = csgi_test__request_authority(request);
    size_t authority_len = strlen(authority);
    const char *default_port = strcmp(request->scheme, "https") == 0 ? ":443" : ":80";
    size_t port_len = strlen(default_port);
    if (authority_len > port_len && strcmp(authority + authority_len - port_len, default_port) == 0)
        authority_len -= port_len;
    size_t size = strlen(request->scheme) + authority_len + strlen(request->target) + 4;
    char *url = csgi_arena__alloc(arena, size);
    if (url)
        snprintf(url, size, "%s://%.*s%s", request->scheme, (int)authority_len, authority,
                 request->target);
    return url;
}

size_t csgi_test__request_path_len(const csgi_test_request *request)
{
    return strcspn(request->target, "?");
}
