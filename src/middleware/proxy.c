/*
 * Paste's proxy (paste.proxy.make_proxy) as a raw csgi application with
 * its INI factory: each request goes to the backend at `address` through
 * the HTTP client (csgi/client.h) on the request's loop, its body streamed
 * there as it arrives, and the backend's response streamed back, with flow
 * control both ways (a full backend queue stops reading the client's body;
 * a slow client pauses the backend).
 *
 * Hop-by-hop fields (Connection and the names it lists, Keep-Alive, TE,
 * Trailer, Transfer-Encoding, Upgrade, Proxy-*) are dropped both ways, as
 * is any name in suppress_http_headers; Host becomes the backend's, and
 * X-Forwarded-For (appended to), X-Forwarded-Proto and X-Forwarded-Host
 * say what the client asked. A method not in allowed_request_methods gets
 * 400 "Disallowed", as in Paste. A backend that cannot be reached or
 * answers garbage gets the client a 502, one that does not answer in time
 * a 504; once the head is sent, a failure cuts the response.
 *
 * The application answers later (docs/middleware.md, "Answering later"):
 * its body answers CSGI_EAGAIN until the backend's head or a piece of its
 * body is there, and a zero-delay event on the loop resumes it, so the
 * server never pulls the body from inside one of the client's callbacks.
 * Each request has a client of its own, freed with the body, so nothing
 * outlives the request's loop (the test client's loop lives for one
 * request); connections are not kept between requests, as in Paste.
 */
#include "common/alloc.h"
#include "common/chartab.h"
#include "common/token.h"
#include "client/client_private.h"
#include "http/parser.h"
#include "middleware/middleware.h"

#include <csgi/client.h>
#include <csgi/response.h>
#include <csgi/server.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Bytes of the backend's body held for a slow client before the backend
   is paused. */
#define HELD_MAX (256u * 1024u)
#define PIECE    16384u

typedef struct proxy {
    char *origin; /* scheme://host[:port], for the client */
    char *path;   /* the address's path, without a trailing '/' */
    char **methods;
    size_t method_count;
    char **suppressed;
    size_t suppressed_count;
    unsigned timeout_ms, connect_timeout_ms;
    char *ca_file; /* https backends: NULL for the system's CAs */
} proxy;

/* One request on its way (in the request's arena). */
typedef struct forward {
    const proxy *config;
    csgi_environ *environ;
    csgi_start_response *start_response;
    csgi_input *input;
    csgi_body *self;
    csgi_client *client;
    csgi_client_request *request; /* NULL once it ended */
    struct event *wake;
    struct evbuffer *held; /* backend body not yet given to the server */
    char incoming[PIECE];  /* read from the client, written to the backend (copied) */
    char outgoing[PIECE];  /* the piece lent to the server: kept until the next call */
    int started;           /* start-response called */
    int failed;            /* before the head: the status to answer (502, 504) */
    int error;             /* after the head: the error that cuts the response */
    int ended;             /* the backend's response is complete */
    int paused;            /* the backend is paused: too much held */
    int input_done;
    int gave; /* a piece went to the server */
} forward;

static void wake_later(forward *f)
{
    event_active(f->wake, 0, 0);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    csgi_body_resume(((forward *)arg)->self);
}

/* The backend failed: before the head a status for the client, after it
   a cut. */
static void fail(forward *f, int result)
{
    if (f->started) {
        f->error = CSGI_EIO;
    } else {
        f->failed = result == CSGI_ETIMEDOUT ? 504 : 502;
        csgi_environ_log_at(f->environ, CSGI_LOG_WARNING, "proxy: backend %s: %s",
                            f->config->origin, csgi_strerror(result));
    }
    wake_later(f);
}

/* Whether a field name is listed in a Connection value. */
static int listed_in(const char *connection, size_t connection_len, const char *name,
                     size_t name_len)
{
    const char *cursor = connection, *element;
    size_t len;
    while (connection &&
           csgi_http__next_element(&cursor, connection + connection_len, &element, &len))
        if (len == name_len && strncasecmp(element, name, len) == 0)
            return 1;
    return 0;
}

/* ---- The backend's side --------------------------------------------------- */

static int on_head(csgi_client_request *request, const csgi_client_response *response,
                   void *userdata)
{
    forward *f = userdata;
    size_t connection_len = 0;
    const char *connection = csgi_client_response_header(response, "connection", &connection_len);
    const char *reason = response->reason;
    size_t reason_len = response->reason_len;
    if (reason_len == 0) {
        reason = csgi_response_reason(response->status);
        reason = reason ? reason : "Unknown";
        reason_len = strlen(reason);
    }
    csgi_header *headers =
        csgi_environ_alloc(f->environ, (response->header_count + 1) * sizeof(*headers));
    char *status = csgi_environ_alloc(f->environ, reason_len + 8);
    if (!headers || !status)
        return CSGI_ENOMEM;
    snprintf(status, reason_len + 8, "%d %.*s", response->status, (int)reason_len, reason);
    size_t count = 0;
    for (size_t i = 0; i < response->header_count; i++) {
        const csgi_header *h = &response->headers[i];
        if (csgi_token__is_hop_by_hop(h->name, h->name_len) ||
            listed_in(connection, connection_len, h->name, h->name_len))
            continue;
        headers[count++] = *h;
    }
    /* The length goes on as the body's: for HEAD (and 304) the one a GET
       would get, which the fields say while the response carries none. */
    int64_t length = response->content_length;
    size_t length_len = 0;
    const char *declared = csgi_client_response_header(response, "content-length", &length_len);
    if (length == 0 && declared)
        length = strtoll(declared, NULL, 10);
    if (length >= 0)
        csgi_body_set_length(f->self, length);
    int rc = csgi_start_response_call(f->start_response, status, headers, count, NULL);
    if (rc != 0)
        return CSGI_EPARSE; /* a field the gateway refuses: answered 502 */
    f->started = 1;
    wake_later(f);
    return 0;
}

static int on_data(csgi_client_request *request, const void *data, size_t len, void *userdata)
{
    forward *f = userdata;
    if (evbuffer_add(f->held, data, len) != 0)
        return CSGI_ENOMEM;
    if (evbuffer_get_length(f->held) >= HELD_MAX) {
        csgi_client_request_pause(request);
        f->paused = 1;
    }
    wake_later(f);
    return 0;
}

static void on_done(csgi_client_request *request, int result, void *userdata)
{
    forward *f = userdata;
    f->request = NULL;
    if (result == 0) {
        f->ended = 1;
        wake_later(f);
    } else {
        fail(f, result);
    }
}

static void pump_input(forward *f);

static void on_writable(csgi_client_request *request, void *userdata)
{
    pump_input(userdata);
}

static const csgi_client_callbacks backend = {on_head, on_data, on_done, on_writable};

/* ---- The client's side ---------------------------------------------------- */

static void input_ready(csgi_input *input, void *userdata)
{
    pump_input(userdata);
}

/* Move the request body to the backend while both sides can. */
static void pump_input(forward *f)
{
    while (f->request && !f->input_done) {
        long n = csgi_input_read(f->input, f->incoming, sizeof(f->incoming));
        if (n == CSGI_EAGAIN) {
            csgi_input_on_ready(f->input, input_ready, f);
            return;
        }
        int rc = n > 0    ? csgi_client_request_write(f->request, f->incoming, (size_t)n)
                 : n == 0 ? csgi_client_request_end(f->request)
                          : (int)n;
        if (n == 0)
            f->input_done = 1;
        if (rc < 0) { /* the client's body broke, or did not match its length */
            csgi_client_request_cancel(f->request);
            f->request = NULL;
            fail(f, rc);
            return;
        }
        if (rc == 1)
            return; /* on_writable comes back */
    }
}

static int body_next(void *state, csgi_chunk *chunk)
{
    forward *f = state;
    if (f->failed && !f->started) {
        static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
        f->started = 1;
        f->ended = 1;
        int gateway_timeout = f->failed == 504;
        if (csgi_start_response_call(f->start_response,
                                     gateway_timeout ? "504 Gateway Timeout" : "502 Bad Gateway",
                                     headers, 1, NULL) != 0)
            return CSGI_ESTATE;
        chunk->data = gateway_timeout ? "Gateway Timeout\n" : "Bad Gateway\n";
        chunk->len = strlen(chunk->data);
        return 1;
    }
    if (f->started && evbuffer_get_length(f->held) > 0) {
        int n = evbuffer_remove(f->held, f->outgoing, sizeof(f->outgoing));
        if (n <= 0)
            return CSGI_ENOMEM;
        if (f->paused && f->request && evbuffer_get_length(f->held) < HELD_MAX / 2) {
            f->paused = 0;
            csgi_client_request_resume(f->request);
        }
        chunk->data = f->outgoing;
        chunk->len = (size_t)n;
        f->gave = 1;
        return 1;
    }
    if (f->error)
        return f->error;
    if (f->ended && f->started && !f->gave) {
        /* An empty piece first sends the head with the declared length:
           a HEAD answer keeps the Content-Length a GET would get. */
        f->gave = 1;
        chunk->data = f->outgoing;
        chunk->len = 0;
        return 1;
    }
    if (f->ended)
        return 0;
    return CSGI_EAGAIN;
}

static void body_close(void *state)
{
    forward *f = state;
    if (f->input)
        csgi_input_on_ready(f->input, NULL, NULL);
    csgi_client_request_cancel(f->request);
    csgi_client_free(f->client);
    if (f->wake)
        event_free(f->wake);
    if (f->held)
        evbuffer_free(f->held);
}

static const csgi_body_type forward_body = {"proxy", body_next, body_close};

/* ---- The request ----------------------------------------------------------- */

/* Name for the HTTP_* key: lower case, '-' for '_' (Paste's spelling). */
static size_t field_name(char *out, size_t cap, const char *key)
{
    size_t n = 0;
    for (const char *p = key + 5; *p && n + 1 < cap; p++)
        out[n++] = *p == '_' ? '-' : (char)csgi_char__lower((unsigned char)*p);
    out[n] = '\0';
    return n;
}

static int suppressed(const proxy *config, const char *name)
{
    for (size_t i = 0; i < config->suppressed_count; i++)
        if (strcasecmp(config->suppressed[i], name) == 0)
            return 1;
    return 0;
}

/* The client's fields, but for hop-by-hop ones, Host and the suppressed;
   then Content-Type and the X-Forwarded-* fields. */
static int add_fields(forward *f, csgi_client_request *request)
{
    csgi_environ *environ = f->environ;
    size_t connection_len = 0;
    const char *connection = csgi_environ_get_n(environ, "HTTP_CONNECTION", &connection_len);
    const char *key;
    size_t cursor = 0;
    int rc = 0;
    while (rc == 0 && csgi_environ_next(environ, &cursor, &key, NULL)) {
        if (strncmp(key, "HTTP_", 5) != 0)
            continue;
        char name[256];
        size_t len = field_name(name, sizeof(name), key);
        const char *value = csgi_environ_get(environ, key);
        if (!value || strcmp(name, "host") == 0 || strncmp(name, "x-forwarded-", 12) == 0 ||
            csgi_token__is_hop_by_hop(name, len) ||
            listed_in(connection, connection_len, name, len) || suppressed(f->config, name))
            continue;
        rc = csgi_client_request_add_header(request, name, value);
    }
    const char *type = csgi_environ_get(environ, "CONTENT_TYPE");
    if (rc == 0 && type && !suppressed(f->config, "content-type"))
        rc = csgi_client_request_add_header(request, "content-type", type);
    const char *remote = csgi_environ_get(environ, "REMOTE_ADDR");
    const char *earlier = csgi_environ_get(environ, "HTTP_X_FORWARDED_FOR");
    if (rc == 0 && remote) {
        char *chain =
            csgi_environ_alloc(environ, strlen(remote) + (earlier ? strlen(earlier) : 0) + 3);
        if (!chain)
            return CSGI_ENOMEM;
        sprintf(chain, "%s%s%s", earlier ? earlier : "", earlier ? ", " : "", remote);
        rc = csgi_client_request_add_header(request, "x-forwarded-for", chain);
    }
    const char *scheme = csgi_environ_get(environ, "csgi.url_scheme");
    if (rc == 0 && scheme)
        rc = csgi_client_request_add_header(request, "x-forwarded-proto", scheme);
    const char *host = csgi_environ_get(environ, "HTTP_HOST");
    if (rc == 0 && host)
        rc = csgi_client_request_add_header(request, "x-forwarded-host", host);
    return rc;
}

/* The backend's URL: the address's origin and path, PATH_INFO
   percent-encoded again, the query. */
static char *backend_url(forward *f)
{
    csgi_environ *environ = f->environ;
    size_t path_len = 0;
    const char *path = csgi_environ_get_n(environ, "PATH_INFO", &path_len);
    const char *query = csgi_environ_get(environ, "QUERY_STRING");
    path = path ? path : "";
    size_t encoded = csgi_char__percent_encode(NULL, path, path_len, CSGI_CHAR__PATH);
    size_t len = strlen(f->config->origin) + strlen(f->config->path) + encoded +
                 (query ? strlen(query) : 0) + 4;
    char *url = csgi_environ_alloc(environ, len);
    if (!url)
        return NULL;
    size_t n = (size_t)sprintf(url, "%s%s", f->config->origin, f->config->path);
    if (path[0] != '/')
        url[n++] = '/';
    n += csgi_char__percent_encode(url + n, path, path_len, CSGI_CHAR__PATH);
    sprintf(url + n, "%s%s", query && *query ? "?" : "", query && *query ? query : "");
    return url;
}

/* The request body as the client announced it: a length, chunked, none. */
static int set_body(forward *f, csgi_client_request *request)
{
    const char *length = csgi_environ_get(f->environ, "CONTENT_LENGTH");
    if (length) {
        long long n = strtoll(length, NULL, 10);
        return n > 0 ? csgi_client_request_set_body_stream(request, n)
                     : csgi_client_request_set_body(request, NULL, 0);
    }
    if (csgi_environ_get(f->environ, "HTTP_TRANSFER_ENCODING"))
        return csgi_client_request_set_body_stream(request, -1);
    f->input_done = 1;
    return 0;
}

static int allowed(const proxy *config, const char *method)
{
    if (config->method_count == 0)
        return 1;
    for (size_t i = 0; i < config->method_count; i++)
        if (strcasecmp(config->methods[i], method) == 0)
            return 1;
    return 0;
}

static csgi_body *proxy_call(void *state, csgi_environ *environ,
                             csgi_start_response *start_response)
{
    const proxy *config = state;
    const char *method = csgi_environ_get(environ, "REQUEST_METHOD");
    if (!method || !allowed(config, method)) {
        static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
        if (csgi_start_response_call(start_response, "400 Bad Request", headers, 1, NULL) != 0)
            return NULL;
        return csgi_body_static(environ, "Disallowed", 10);
    }
    struct event_base *base = csgi_environ_event_base(environ);
    forward *f = csgi_environ_alloc_zeroed(environ, sizeof(*f));
    if (!base || !f)
        return NULL;
    f->config = config;
    f->environ = environ;
    f->start_response = start_response;
    f->input = csgi_environ_input(environ);
    f->self = csgi_body_new(environ, &forward_body, f); /* body_close releases what follows */
    if (!f->self)
        return NULL;
    csgi_client_options options = CSGI_CLIENT_OPTIONS_INIT;
    options.timeout_ms = config->timeout_ms;
    options.connect_timeout_ms = config->connect_timeout_ms;
    options.ca_file = config->ca_file;
    f->wake = event_new(base, -1, 0, on_wake, f);
    f->held = evbuffer_new();
    char *url = backend_url(f);
    csgi_client_request *request = NULL;
    int rc =
        !f->wake || !f->held || !url ? CSGI_ENOMEM : csgi_client_new(&f->client, base, &options);
    if (rc == 0)
        rc = csgi_client_request_new(&request, f->client, method, url);
    if (rc == 0 && (rc = add_fields(f, request)) == 0 && (rc = set_body(f, request)) == 0 &&
        (rc = csgi_client_request_send(request, &backend, f)) == 0)
        f->request = request;
    if (rc != 0) {
        csgi_client_request_cancel(request);
        if (rc == CSGI_ENOMEM || !f->wake) {
            csgi_body_close(f->self);
            return NULL;
        }
        fail(f, CSGI_EINVAL); /* a request the backend cannot be sent: 502 */
        return f->self;
    }
    pump_input(f);
    return f->self;
}

static void proxy_destroy(void *state)
{
    proxy *config = state;
    if (!config)
        return;
    csgi__free(config->origin);
    csgi__free(config->path);
    csgi__free(config->ca_file);
    for (size_t i = 0; i < config->method_count; i++)
        csgi__free(config->methods[i]);
    for (size_t i = 0; i < config->suppressed_count; i++)
        csgi__free(config->suppressed[i]);
    csgi__free(config->methods);
    csgi__free(config->suppressed);
    csgi__free(config);
}

static const csgi_app_type proxy_type = {"proxy", proxy_call, proxy_destroy};

/* ---- The INI factory ------------------------------------------------------- */

static const char *const known[] = {"address", "allowed_request_methods", "suppress_http_headers",
                                    "timeout", "connect_timeout",         "ca_file",
                                    NULL};

/* Copy a conf list (items may be written "a, b" or "a b"). */
static int copy_list(const csgi_conf *conf, const char *key, char ***out, size_t *count,
                     csgi_load_error *error)
{
    const char *const *items = NULL;
    size_t n = 0;
    int rc = csgi_conf_aslist(conf, key, &items, &n, error);
    if (rc != 0)
        return rc;
    *out = csgi__calloc(n + 1, sizeof(**out));
    if (!*out)
        return CSGI_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(items[i], ",");
        if (len == 0)
            continue;
        if (!((*out)[*count] = csgi__strndup(items[i], len)))
            return CSGI_ENOMEM;
        (*count)++;
    }
    return 0;
}

/* The address: an http(s) URL whose path is the prefix of every request's. */
static int parse_address(proxy *config, const csgi_conf *conf, csgi_load_error *error)
{
    const char *address = csgi_conf_get(conf, "address");
    if (!address || !*address) {
        csgi_conf_error(conf, "address", error, "proxy needs the backend's address");
        return CSGI_EINVAL;
    }
    const char *authority = strstr(address, "://");
    const char *slash = authority ? strchr(authority + 3, '/') : NULL;
    size_t origin_len = slash ? (size_t)(slash - address) : strlen(address);
    config->origin = csgi__strndup(address, origin_len);
    const char *path = slash ? slash : "";
    size_t path_len = strlen(path);
    while (path_len > 0 && path[path_len - 1] == '/')
        path_len--;
    config->path = csgi__strndup(path, path_len);
    if (!config->origin || !config->path)
        return CSGI_ENOMEM;
    /* Checked as the client will read it. */
    csgi_client__url parts;
    if (csgi_client__parse_url(address, &parts) != 0 || strchr(address, '?')) {
        csgi_conf_error(conf, "address", error,
                        "'%s' is not an http:// or https:// URL without a query", address);
        return CSGI_EINVAL;
    }
    return 0;
}

int csgi_proxy__app_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                            const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    int rc = csgi_middleware__known_keys(local_conf, "proxy", known, error);
    if (rc != 0)
        return rc;
    proxy *config = csgi__calloc(1, sizeof(*config));
    if (!config)
        return CSGI_ENOMEM;
    long long timeout = 30, connect_timeout = 5;
    rc = parse_address(config, local_conf, error);
    if (rc == 0)
        rc = copy_list(local_conf, "allowed_request_methods", &config->methods,
                       &config->method_count, error);
    if (rc == 0)
        rc = copy_list(local_conf, "suppress_http_headers", &config->suppressed,
                       &config->suppressed_count, error);
    if (rc == 0)
        rc = csgi_conf_asint(local_conf, "timeout", 30, &timeout, error);
    if (rc == 0)
        rc = csgi_conf_asint(local_conf, "connect_timeout", 5, &connect_timeout, error);
    if (rc == 0 &&
        (timeout < 1 || timeout > 86400 || connect_timeout < 1 || connect_timeout > 86400)) {
        csgi_conf_error(local_conf, timeout < 1 || timeout > 86400 ? "timeout" : "connect_timeout",
                        error, "a number of seconds from 1 to 86400");
        rc = CSGI_EINVAL;
    }
    if (rc != 0) {
        proxy_destroy(config);
        return rc;
    }
    const char *ca_file = csgi_conf_get(local_conf, "ca_file");
    if (ca_file && *ca_file && !(config->ca_file = csgi__strndup(ca_file, strlen(ca_file)))) {
        proxy_destroy(config);
        return CSGI_ENOMEM;
    }
    config->timeout_ms = (unsigned)timeout * 1000u;
    config->connect_timeout_ms = (unsigned)connect_timeout * 1000u;
    return csgi_app_new(out, &proxy_type, config);
}
