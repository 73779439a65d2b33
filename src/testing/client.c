/*
 * The in-process test client (include/csgi/testing.h).
 *
 * A run does what the engine and the gateway do for a request read from a
 * socket, minus the socket: the request head is written as HTTP/1.1 bytes
 * and parsed by the real parser, the environ is built by the real environ
 * code (with this file as its "source": the given body as csgi.input, a
 * log that keeps the lines), and the application is run by the server's
 * own response driver (src/gateway/driver.c), which holds every rule of
 * the protocol. Only the driver's sink differs, as in h2o's unit tests
 * that replace the final output stage: this file's memory sink keeps the
 * response instead of framing it on a socket.
 *
 * What differs: no Date or Server fields, no chunked framing on the wire,
 * and the whole body is kept in memory.
 */
#include "common/alloc.h"
#include "common/arena.h"
#include "common/chartab.h"
#include "common/token.h"
#include "common/vec.h"
#include "gateway/driver.h"
#include "gateway/environ_private.h"
#include "gateway/sink.h"
#include "http/parser.h"
#include "common/status.h"

#include <csgi/testing.h>

#include <event2/event.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* ---- Requests -------------------------------------------------------------------- */

typedef struct pair {
    struct pair *next;
    const char *name;
    const char *value;
} pair;

struct csgi_test_request {
    csgi_arena arena; /* the request's copies */
    const char *method;
    const char *target;
    const char *host;
    const char *scheme;
    unsigned default_port;
    pair *headers; /* in order */
    pair **headers_tail;
    pair *overrides;
    pair **overrides_tail;
    const char *body;
    size_t body_len;
    int has_body;
    struct sockaddr_storage peer;
    unsigned timeout_ms;
};

static int set_peer(struct sockaddr_storage *storage, const char *address, unsigned port)
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
    set_peer(&request->peer, "127.0.0.1", 0);
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

static int add_pair(csgi_test_request *request, pair ***tail, const char *name, const char *value)
{
    pair *item = csgi_arena__alloc(&request->arena, sizeof(*item));
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
    return set_peer(&request->peer, address, port);
}

void csgi_test_request_set_timeout(csgi_test_request *request, unsigned milliseconds)
{
    if (request)
        request->timeout_ms = milliseconds ? milliseconds : CSGI_TEST_TIMEOUT_DEFAULT;
}

/* ---- Responses ------------------------------------------------------------------- */

typedef struct field {
    const char *name;
    const char *value;
} field;

struct csgi_test_response {
    csgi_arena arena; /* status, fields and log lines */
    const char *status;
    int code;
    field *fields;
    size_t field_count;
    char *body; /* csgi__realloc'd, NUL-terminated when not NULL */
    size_t body_len;
    size_t body_capacity;
    const char **logs; /* csgi__realloc'd */
    size_t log_count;
    size_t log_capacity;
    int cut;
};

static csgi_test_response *response_new(void)
{
    csgi_test_response *response = csgi__malloc(sizeof(*response));
    if (!response)
        return NULL;
    memset(response, 0, sizeof(*response));
    csgi_arena__init(&response->arena, NULL);
    return response;
}

void csgi_test_response_free(csgi_test_response *response)
{
    if (!response)
        return;
    csgi__free(response->body);
    csgi__free(response->logs);
    csgi_arena__clear(&response->arena);
    csgi__free(response);
}

/* Log lines a response keeps; later ones are dropped. */
#define LOG_LINES_MAX 65536

/* Keep a log line. A line that does not fit (in memory, or beyond
   LOG_LINES_MAX) is dropped: logging cannot fail. */
static void response_log(csgi_test_response *response, const char *line)
{
    void *logs = response->logs;
    if (csgi_vec__reserve(&logs, &response->log_capacity, sizeof(*response->logs),
                          response->log_count + 1, LOG_LINES_MAX) != 0)
        return;
    response->logs = logs;
    const char *copy = csgi_arena__strndup(&response->arena, line, strlen(line));
    if (copy)
        response->logs[response->log_count++] = copy;
}

static int body_append(csgi_test_response *response, const void *data, size_t len)
{
    if (len > CSGI_TEST_BODY_MAX - response->body_len)
        return CSGI_ETOOBIG;
    /* The body and its NUL. */
    void *body = response->body;
    int rc = csgi_vec__reserve(&body, &response->body_capacity, 1, response->body_len + len + 1,
                               CSGI_TEST_BODY_MAX + 1);
    if (rc != 0)
        return rc;
    response->body = body;
    memcpy(response->body + response->body_len, data, len);
    response->body_len += len;
    response->body[response->body_len] = '\0';
    return 0;
}

/* Set the status and fields from a "Name: value\r\n" block plus an optional
   Content-Length. */
static int response_set_head(csgi_test_response *response, int code, const char *reason,
                             size_t reason_len, const char *block, size_t block_len, int64_t length)
{
    csgi_arena *arena = &response->arena;
    size_t lines = length >= 0 ? 1 : 0;
    for (size_t i = 0; i < block_len; i++)
        lines += block[i] == '\n';
    char *status = csgi_arena__alloc(arena, reason_len + 5);
    field *fields = csgi_arena__alloc(arena, (lines ? lines : 1) * sizeof(*fields));
    char *text = csgi_arena__alloc(arena, block_len + 48);
    if (!status || !fields || !text)
        return CSGI_ENOMEM;
    snprintf(status, reason_len + 5, "%03d %.*s", code, (int)reason_len, reason);
    size_t count = 0;
    const char *p = block, *end = block + block_len;
    while (p < end) {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (!colon || !eol || colon > eol)
            break; /* cannot happen: head_build wrote the block */
        fields[count].name = text;
        memcpy(text, p, (size_t)(colon - p));
        text += colon - p;
        *text++ = '\0';
        const char *value = colon + 2;
        fields[count].value = text;
        memcpy(text, value, (size_t)(eol - value));
        text += eol - value;
        *text++ = '\0';
        count++;
        p = eol + 2;
    }
    if (length >= 0) {
        fields[count].name = "Content-Length";
        fields[count].value = text;
        snprintf(text, 24, "%lld", (long long)length);
        count++;
    }
    response->status = status;
    response->code = code;
    response->fields = fields;
    response->field_count = count;
    return 0;
}

/* The engine's own error page (src/http/response.c csgi_http__queue_error_response). */
static int response_set_error(csgi_test_response *response, int code)
{
    static const char block[] = "Content-Type: text/plain; charset=utf-8\r\n";
    const char *reason = csgi_status__reason(code);
    char body[80];
    size_t body_len = csgi_status__error_text(body, sizeof(body), code, NULL);
    response->body_len = 0;
    if (response->body)
        response->body[0] = '\0';
    int rc = response_set_head(response, code, reason, strlen(reason), block, sizeof(block) - 1,
                               (int64_t)body_len);
    return rc ? rc : body_append(response, body, body_len);
}

const char *csgi_test_response_status(const csgi_test_response *response)
{
    return response && response->status ? response->status : "";
}

int csgi_test_response_code(const csgi_test_response *response)
{
    return response ? response->code : 0;
}

const char *csgi_test_response_header_value(const csgi_test_response *response, const char *name,
                                            size_t n)
{
    if (!response || !name)
        return NULL;
    for (size_t i = 0; i < response->field_count; i++)
        if (strcasecmp(response->fields[i].name, name) == 0 && n-- == 0)
            return response->fields[i].value;
    return NULL;
}

const char *csgi_test_response_header(const csgi_test_response *response, const char *name)
{
    return csgi_test_response_header_value(response, name, 0);
}

size_t csgi_test_response_header_count(const csgi_test_response *response)
{
    return response ? response->field_count : 0;
}

int csgi_test_response_header_at(const csgi_test_response *response, size_t index,
                                 const char **name, const char **value)
{
    if (!response || index >= response->field_count)
        return 0;
    if (name)
        *name = response->fields[index].name;
    if (value)
        *value = response->fields[index].value;
    return 1;
}

const char *csgi_test_response_body(const csgi_test_response *response, size_t *len)
{
    if (len)
        *len = response ? response->body_len : 0;
    return response && response->body ? response->body : "";
}

int csgi_test_response_cut(const csgi_test_response *response)
{
    return response ? response->cut : 0;
}

size_t csgi_test_response_log_count(const csgi_test_response *response)
{
    return response ? response->log_count : 0;
}

const char *csgi_test_response_log_at(const csgi_test_response *response, size_t index)
{
    return response && index < response->log_count ? response->logs[index] : NULL;
}

int csgi_test_response_log_contains(const csgi_test_response *response, const char *text)
{
    if (!response || !text)
        return 0;
    for (size_t i = 0; i < response->log_count; i++)
        if (strstr(response->logs[i], text))
            return 1;
    return 0;
}

/* ---- Running: the memory sink -------------------------------------------------- */

/* A run drives the application with the server's response driver
   (src/gateway/driver.c); only the final stage differs: this sink keeps
   the response in memory instead of writing HTTP/1.1 to a socket. */
typedef struct run {
    csgi_test_request *request;
    csgi_test_response *response;
    csgi_driver driver; /* the environ's owner */
    csgi_environ__source source;
    csgi_environ *environ;
    size_t input_offset;

    struct event_base *base;
    struct event *timer;
    int error;     /* the run's own failure: CSGI_ENOMEM, CSGI_ETOOBIG, CSGI_ETIMEDOUT */
    int head_sent; /* the sink has the head */
} run;

/* Every line is kept, whatever its level: a test asserts on them. */
static void run_log(void *context, int level, const char *line)
{
    run *r = context;
    (void)level;
    response_log(r->response, line);
}

static long input_read(void *context, void *buf, size_t len)
{
    run *r = context;
    size_t left = r->request->body_len - r->input_offset;
    if (len > left)
        len = left;
    if (len)
        memcpy(buf, r->request->body + r->input_offset, len);
    r->input_offset += len;
    return (long)len;
}

static size_t input_buffered(void *context)
{
    run *r = context;
    return r->request->body_len - r->input_offset;
}

static const csgi_input__provider body_input = {input_read, input_buffered};

/* The sink's own failures (memory, the body cap) end the run. */
static int sink_result(run *r, int rc)
{
    if (rc != 0 && !r->error)
        r->error = rc;
    return rc;
}

static int memory_send_head(csgi_sink *sink, const csgi_gateway__head *head, int64_t length)
{
    run *r = sink->context;
    int rc = response_set_head(r->response, head->status, head->reason, head->reason_len,
                               head->fields, head->fields_len, length);
    r->head_sent = rc == 0;
    return sink_result(r, rc);
}

static int memory_write(csgi_sink *sink, const void *data, size_t len)
{
    run *r = sink->context;
    return sink_result(r, body_append(r->response, data, len));
}

/* The engine's answer (csgi_http__response_abort): its error page when
   nothing was sent, else a cut. */
static void memory_cut(csgi_sink *sink)
{
    run *r = sink->context;
    if (r->error)
        return;
    if (r->head_sent)
        r->response->cut = 1;
    else
        sink_result(r, response_set_error(r->response, 500));
}

/* The request's loop, made when the application first asks for it. */
static struct event_base *memory_event_base(csgi_sink *sink)
{
    run *r = sink->context;
    if (!r->base)
        r->base = event_base_new();
    return r->base;
}

static const csgi_sink_type memory_sink = {
    .name = "memory",
    .send_head = memory_send_head,
    .respond = csgi_sink__respond_in_parts,
    .write = memory_write,
    .write_reference = csgi_sink__write_reference_copy,
    .sendfile = csgi_sink__sendfile_copy,
    .buffered = csgi_sink__buffered_none,
    .finish = csgi_sink__finish_none,
    .cut = memory_cut,
    .event_base = memory_event_base,
};

static void on_timeout(evutil_socket_t fd, short what, void *userdata)
{
    run *r = userdata;
    (void)fd;
    (void)what;
    r->error = CSGI_ETIMEDOUT;
}

/* Wait on the loop until the body is resumed to its end, or time is up. */
static int wait_for_body(run *r)
{
    if (!memory_event_base(&r->driver.sink))
        return CSGI_ENOMEM;
    if (!r->timer) {
        r->timer = evtimer_new(r->base, on_timeout, r);
        unsigned ms = r->request->timeout_ms;
        struct timeval limit = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        if (!r->timer || evtimer_add(r->timer, &limit) != 0)
            return CSGI_ENOMEM;
    }
    while (!csgi_driver__finished(&r->driver) && !r->error) {
        if (event_base_loop(r->base, EVLOOP_ONCE) < 0)
            return CSGI_ESYSTEM;
    }
    return r->error;
}

/* The request's head as the wire carries it, in arena. */
static char *write_head(const csgi_test_request *request, csgi_arena *arena, size_t *len)
{
    int has_host = 0;
    size_t size = strlen(request->method) + strlen(request->target) + strlen(request->host) + 64;
    for (const pair *h = request->headers; h; h = h->next) {
        size += strlen(h->name) + strlen(h->value) + 4;
        if (csgi_token__lookup(h->name, strlen(h->name)) == CSGI_TOKEN__HOST)
            has_host = 1;
    }
    char *text = csgi_arena__alloc(arena, size);
    if (!text)
        return NULL;
    char *p = text;
    p += sprintf(p, "%s %s HTTP/1.1\r\n", request->method, request->target);
    if (!has_host)
        p += sprintf(p, "Host: %s\r\n", request->host);
    for (const pair *h = request->headers; h; h = h->next)
        p += sprintf(p, "%s: %s\r\n", h->name, h->value);
    if (request->has_body)
        p += sprintf(p, "Content-Length: %zu\r\n", request->body_len);
    p += sprintf(p, "\r\n");
    *len = (size_t)(p - text);
    return text;
}

/* Parse the head with the server's parser and limits. */
static int parse_request(const char *text, size_t len, csgi_arena *arena, csgi_http__head *head)
{
    static const csgi_http__limits limits = CSGI_HTTP__LIMITS_DEFAULT;
    csgi_http__error error = {0, NULL};
    csgi_http__scanner scanner;
    csgi_http__scanner_init(&scanner);
    if (csgi_http__scan(&scanner, text, len, &limits, &error) != CSGI_HTTP__SCAN_DONE ||
        scanner.head_length != len)
        return CSGI_EPARSE;
    size_t capacity = scanner.header_count ? scanner.header_count : 1;
    csgi_http__header *headers = csgi_arena__alloc(arena, capacity * sizeof(*headers));
    if (!headers)
        return CSGI_ENOMEM;
    if (csgi_http__parse_head(text + scanner.skipped, scanner.head_length - scanner.skipped,
                              headers, capacity, head, &error) != 0)
        return CSGI_EPARSE;
    /* What the gateway refuses with 400 before any application runs. */
    if (csgi_environ__path_refused(head->path, head->path_len))
        return CSGI_EPARSE;
    return 0;
}

static int run_app(run *r, csgi_app *app, csgi_arena *arena)
{
    const csgi_test_request *request = r->request;
    size_t len = 0;
    char *text = write_head(request, arena, &len);
    csgi_http__head *head = csgi_arena__alloc(arena, sizeof(*head));
    if (!text || !head)
        return CSGI_ENOMEM;
    int rc = parse_request(text, len, arena, head);
    if (rc != 0)
        return rc;

    struct sockaddr_storage *local = csgi_arena__alloc(arena, sizeof(*local));
    if (!local)
        return CSGI_ENOMEM;
    set_peer(local, "127.0.0.1", request->default_port);
    csgi_environ__source *source = &r->source;
    source->head = head;
    source->peer = (const struct sockaddr *)&request->peer;
    source->local = (const struct sockaddr *)local;
    source->url_scheme = request->scheme;
    source->input = &body_input;
    source->input_context = r;
    source->log = run_log;
    source->log_context = r;
    source->owner = &r->driver;
    csgi_driver__init(&r->driver, &memory_sink, r, app, arena, source);
    r->environ = csgi_environ__new(arena, source);
    if (!r->environ)
        return CSGI_ENOMEM;
    for (const pair *o = request->overrides; o; o = o->next)
        if ((rc = csgi_environ_set(r->environ, o->name, o->value)) != 0)
            return rc;

    csgi_driver__run(&r->driver, r->environ);
    if (!csgi_driver__finished(&r->driver) && !r->error)
        rc = wait_for_body(r); /* the body answered CSGI_EAGAIN */
    return rc ? rc : r->error;
}

int csgi_test_request_run(csgi_test_response **out, csgi_test_request *request, csgi_app *app)
{
    if (out)
        *out = NULL;
    if (!request || !app || !out)
        return CSGI_EINVAL;
    csgi_test_response *response = response_new();
    if (!response)
        return CSGI_ENOMEM;
    csgi_arena arena;
    csgi_arena__init(&arena, NULL);
    run *r = csgi_arena__alloc(&arena, sizeof(*r));
    int rc = CSGI_ENOMEM;
    if (r) {
        memset(r, 0, sizeof(*r));
        r->request = request;
        r->response = response;
        rc = run_app(r, app, &arena);
        /* Closed exactly once, whatever happened (a no-op when closed). */
        csgi_driver__end(&r->driver);
    }
    struct event_base *base = r ? r->base : NULL;
    struct event *timer = r ? r->timer : NULL;
    /* The application's deferred callbacks may free events of the loop:
       the arena goes first. */
    csgi_arena__clear(&arena);
    if (timer)
        event_free(timer);
    if (base)
        event_base_free(base);
    if (rc != 0) {
        csgi_test_response_free(response);
        return rc;
    }
    *out = response;
    return 0;
}

int csgi_test_get(csgi_test_response **out, csgi_app *app, const char *url)
{
    if (out)
        *out = NULL;
    csgi_test_request *request = NULL;
    int rc = csgi_test_request_new(&request, "GET", url);
    if (rc == 0)
        rc = csgi_test_request_run(out, request, app);
    csgi_test_request_free(request);
    return rc;
}
