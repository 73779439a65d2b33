/*
 * Handlers (csgi/handler.h): "request in, response out" functions made
 * into applications and filters.
 *
 * The adapter is an ordinary application. For each request it gets the
 * request object, calls the handler and sends the response it returns. A
 * handler that could not read all of the body yet answers "again": the
 * adapter then returns a body that answers CSGI_EAGAIN, waits for the input
 * stream to have news, calls the handler again, and once a response comes
 * back sends it and resumes that body, which from then on passes on the
 * pieces of the response's own body.
 */
#include "common/alloc.h"
#include "common/token.h"
#include "gateway/app_private.h"
#include "gateway/environ_private.h"
#include "helpers/helpers.h"
#include "helpers/response_private.h"

#include <csgi/handler.h>
#include <csgi/json.h>

#include <jansson.h>

#include <stdio.h>
#include <string.h>

/* ---- The adapter ------------------------------------------------------------ */

typedef struct adapter {
    char *name;
    csgi_handler_fn handler;               /* an application handler, or */
    csgi_filter_handler_fn filter_handler; /* a filter handler and next */
    csgi_app *next;
    void *userdata;
    csgi_destroy_fn destroy;
    csgi_app_type type; /* named after the handler, for logs */
} adapter;

/* One call of the adapter that is waiting for the request body. */
typedef struct pending {
    adapter *adapter;
    csgi_request *request;
    csgi_environ *environ;
    csgi_start_response *start_response;
    csgi_body *body;  /* what the adapter returned */
    csgi_body *inner; /* the response's body, once there is one */
    int failed;
} pending;

/* "Call me again": compared by address, never sent. */
static csgi_response again_marker;

static csgi_response *run(adapter *h, csgi_request *request, csgi_start_response *start_response)
{
    csgi_start_response *previous = csgi_request__swap_start_response(request, start_response);
    csgi_response *response = h->filter_handler ? h->filter_handler(request, h->next, h->userdata)
                                                : h->handler(request, h->userdata);
    csgi_request__swap_start_response(request, previous);
    return response;
}

static csgi_body *send_response(adapter *h, csgi_response *response, csgi_environ *environ,
                                csgi_start_response *start_response)
{
    if (!response) {
        csgi_environ_log(environ, "%s: the handler failed (returned no response)", h->name);
        return NULL;
    }
    return csgi_response_send(response, environ, start_response);
}

static int pending_next(void *state, csgi_chunk *chunk)
{
    pending *p = state;
    if (p->failed)
        return CSGI_ESTATE;
    if (!p->inner)
        return CSGI_EAGAIN;
    return csgi_body_next(p->inner, chunk);
}

static void pending_close(void *state)
{
    pending *p = state;
    /* The request ends (or the client left) before the body came: stop
       waiting for it. */
    csgi_input_on_ready(csgi_environ_input(p->environ), NULL, NULL);
    csgi_body_close(p->inner);
}

static const csgi_body_type pending_type = {"handler-pending", pending_next, pending_close};

static void on_input(csgi_input *input, void *userdata)
{
    pending *p = userdata;
    csgi_response *response = run(p->adapter, p->request, p->start_response);
    if (response == &again_marker && csgi_input__pending(input)) {
        csgi_input_on_ready(input, on_input, p);
        return;
    }
    if (response == &again_marker) {
        csgi_environ_log(p->environ, "%s: the handler asked to wait, but the body has all arrived",
                         p->adapter->name);
        response = NULL;
    }
    p->inner = send_response(p->adapter, response, p->environ, p->start_response);
    if (!p->inner)
        p->failed = 1;
    else /* else the late answer goes out chunked (or close-delimited on
            HTTP/1.0) where the same answer given at once has a length */
        csgi_body__length_from(p->body, p->inner);
    csgi_body_resume(p->body);
}

static csgi_body *adapter_call(void *state, csgi_environ *environ,
                               csgi_start_response *start_response)
{
    adapter *h = state;
    csgi_request *request;
    if (csgi_request_from_environ(&request, environ) != 0) {
        csgi_environ_log(environ, "%s: out of memory for the request object", h->name);
        return NULL;
    }
    csgi_response *response = run(h, request, start_response);
    if (response != &again_marker)
        return send_response(h, response, environ, start_response);
    if (!csgi_input__pending(csgi_environ_input(environ))) {
        /* Nothing more will arrive: waiting would hang the request. */
        csgi_environ_log(environ, "%s: the handler asked to wait, but the body has all arrived",
                         h->name);
        return NULL;
    }

    pending *p = csgi_environ_alloc(environ, sizeof(*p));
    if (!p)
        return NULL;
    *p = (pending){
        .adapter = h, .request = request, .environ = environ, .start_response = start_response};
    p->body = csgi_body_new(environ, &pending_type, p);
    if (p->body)
        csgi_input_on_ready(csgi_environ_input(environ), on_input, p);
    return p->body;
}

static void adapter_destroy(void *state)
{
    adapter *h = state;
    if (h->destroy)
        h->destroy(h->userdata);
    csgi_app_free(h->next);
    csgi__free(h->name);
    csgi__free(h);
}

static int make(csgi_app **out, const char *name, csgi_handler_fn handler,
                csgi_filter_handler_fn filter_handler, csgi_app *next, void *userdata,
                csgi_destroy_fn destroy)
{
    if (!name)
        name = "handler";
    struct adapter *h = csgi__malloc(sizeof(*h));
    char *copy = csgi__malloc(strlen(name) + 1);
    if (!h || !copy) {
        csgi__free(h);
        csgi__free(copy);
        if (destroy)
            destroy(userdata);
        csgi_app_free(next);
        return CSGI_ENOMEM;
    }
    memcpy(copy, name, strlen(name) + 1);
    *h = (adapter){.name = copy,
                   .handler = handler,
                   .filter_handler = filter_handler,
                   .next = next,
                   .userdata = userdata,
                   .destroy = destroy,
                   .type = {.name = copy, .call = adapter_call, .destroy = adapter_destroy}};
    /* csgi_app_new runs adapter_destroy when it fails. */
    return csgi_app_new(out, &h->type, h);
}

int csgi_handler_app(csgi_app **out, const char *name, csgi_handler_fn handler, void *userdata,
                     csgi_destroy_fn destroy)
{
    if (out)
        *out = NULL;
    if (!out || !handler) {
        if (destroy)
            destroy(userdata);
        return CSGI_EINVAL;
    }
    return make(out, name, handler, NULL, NULL, userdata, destroy);
}

int csgi_handler_filter(csgi_app **out, const char *name, csgi_filter_handler_fn handler,
                        csgi_app *next, void *userdata, csgi_destroy_fn destroy)
{
    if (out)
        *out = NULL;
    if (!out || !handler || !next) {
        if (destroy)
            destroy(userdata);
        csgi_app_free(next);
        return CSGI_EINVAL;
    }
    return make(out, name, NULL, handler, next, userdata, destroy);
}

/* ---- What a handler returns --------------------------------------------------- */

csgi_response *csgi_handler_response(csgi_request *request)
{
    csgi_response *response = NULL;
    if (request && csgi_response_new(&response, csgi_request_environ(request)) != 0)
        return NULL;
    return response;
}

csgi_response *csgi_handler_error(csgi_request *request, int status, const char *detail)
{
    csgi_response *response = NULL;
    if (!request ||
        csgi_response_error(&response, csgi_request_environ(request), status, detail) != 0)
        return NULL;
    return response;
}

csgi_response *csgi_handler_forward(csgi_request *request, csgi_app *app)
{
    csgi_response *response = app ? csgi_handler_response(request) : NULL;
    /* The response takes a reference; the caller keeps its own. */
    if (!response || csgi_response_set_app(response, csgi_app_ref(app)) != 0)
        return NULL;
    return response;
}

csgi_response *csgi_handler_again(csgi_request *request)
{
    (void)request;
    return &again_marker;
}

/* ---- Running another application ------------------------------------------------ */

/* What the application gave start-response, copied into the response. */
typedef struct capture {
    csgi_response *response;
    int started;
    int result; /* the first failure while copying */
} capture;

/* A counted string as a C string in the response's memory, or NULL. */
static char *copy_counted(csgi_response *response, const char *s, size_t len)
{
    char *copy = csgi_response__alloc(response, len + 1);
    if (copy) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

static int capture_start(const char *status, const csgi_header *headers, size_t count,
                         const char *exc_info, void *userdata)
{
    capture *c = userdata;
    (void)exc_info;
    /* A second call (with exc_info) replaces what the first one gave. */
    if (c->started && csgi_response_new(&c->response, c->response->environ) != 0)
        return c->result = CSGI_ENOMEM;
    c->started = 1;
    c->result = 0;
    csgi_response *response = c->response;
    int rc = csgi_response_set_status_line(response, status);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const csgi_header *h = &headers[i];
        if (!h->name || (h->value_len && !h->value)) {
            rc = CSGI_EINVAL;
            break;
        }
        if (csgi_token__lookup(h->name, h->name_len) == CSGI_TOKEN__CONTENT_LENGTH)
            continue; /* the body decides */
        char *name = copy_counted(response, h->name, h->name_len);
        char *value = copy_counted(response, h->value ? h->value : "", h->value_len);
        rc = name && value ? csgi_response_add_header(response, name, value) : CSGI_ENOMEM;
    }
    c->result = rc;
    return rc;
}

/* An application's iterator body, with a first piece already pulled. */
typedef struct relay {
    csgi_body *inner;
    csgi_chunk first;
    int has_first; /* 1: first is pending; -1: the inner body ended */
} relay;

static int relay_next(void *state, csgi_chunk *chunk)
{
    relay *r = state;
    if (r->has_first == 1) {
        r->has_first = 0;
        *chunk = r->first;
        return 1;
    }
    if (r->has_first == -1)
        return 0;
    return csgi_body_next(r->inner, chunk);
}

static void relay_close(void *state)
{
    relay *r = state;
    csgi_body_close(r->inner);
}

static const csgi_body_type relay_type = {"get-response", relay_next, relay_close};

/* A relay for body; on failure body is closed. */
static relay *relay_new(csgi_environ *environ, csgi_body *body)
{
    relay *r = csgi_environ_alloc(environ, sizeof(*r));
    if (!r) {
        csgi_body_close(body);
        return NULL;
    }
    *r = (relay){.inner = body};
    return r;
}

int csgi_handler_get_response(csgi_response **out, csgi_request *request, csgi_app *app)
{
    if (out)
        *out = NULL;
    if (!request || !app || !out)
        return CSGI_EINVAL;
    csgi_start_response *outer = csgi_request__start_response(request);
    if (!outer)
        return CSGI_ESTATE;
    csgi_environ *environ = csgi_request_environ(request);
    capture c = {NULL, 0, 0};
    if (csgi_response_new(&c.response, environ) != 0)
        return CSGI_ENOMEM;
    csgi_start_response *mine = csgi_start_response_new(environ, outer, capture_start, &c);
    if (!mine)
        return CSGI_ENOMEM;
    csgi_body *body = csgi_app_call(app, environ, mine);
    if (!body)
        return c.result ? c.result : CSGI_ESTATE;

    /* Bytes and files go on as they are (with their length, and sendfile
       for files); an iterator is relayed, its first piece pulled now when
       start-response has not been called yet. */
    relay *r = NULL;
    int rc = 0;
    csgi_body_kind kind = csgi_body_kind_of(body);
    if (!c.started || kind == CSGI_BODY_ITERATOR) {
        if (!(r = relay_new(environ, body)))
            return CSGI_ENOMEM;
        if (!c.started) {
            int n = csgi_body_next(body, &r->first);
            if (n == CSGI_EAGAIN || n < 0 || !c.started) {
                csgi_body_close(body);
                return n == CSGI_EAGAIN ? CSGI_EAGAIN : c.result ? c.result : CSGI_ESTATE;
            }
            r->has_first = n == 1 ? 1 : -1;
        }
    }
    if (c.result != 0) {
        csgi_body_close(body);
        return c.result;
    }
    if (kind == CSGI_BODY_BYTES && !r) {
        size_t len = 0;
        const void *data = csgi_body_data(body, &len);
        rc = csgi_response_set_body_static(c.response, data, len);
        csgi_body_close(body);
    } else if (kind == CSGI_BODY_FILE && !r) {
        int fd = -1;
        int64_t offset = 0, length = 0;
        rc = csgi_body_take_file(body, &fd, &offset, &length);
        csgi_body_close(body);
        if (rc == 0)
            rc = csgi_response_set_file(c.response, fd, offset, length);
    } else {
        if (!r && !(r = relay_new(environ, body)))
            return CSGI_ENOMEM;
        rc = csgi_response_set_stream(c.response, &relay_type, r);
        if (rc == 0)
            csgi_response__set_stream_length_of(c.response, body);
    }
    if (rc != 0)
        return rc;
    *out = c.response;
    return 0;
}

/* ---- JSON ------------------------------------------------------------------------- */

int csgi_handler_json(csgi_request *request, size_t max, json_t **out,
                      csgi_response **error_response)
{
    if (out)
        *out = NULL;
    if (error_response)
        *error_response = NULL;
    if (!request || !out || !error_response)
        return CSGI_EINVAL;
    csgi_request_error error;
    memset(&error, 0, sizeof(error));
    int rc = csgi_request_json(request, max, out, &error);
    if (rc == CSGI_EPARSE) {
        char detail[256];
        snprintf(detail, sizeof(detail), "invalid JSON at line %d, column %d (byte %zu): %s",
                 error.line, error.column, error.position, error.text);
        *error_response = csgi_handler_error(request, 400, detail);
    } else if (rc == CSGI_ETOOBIG) {
        char text[64], detail[96];
        csgi_helpers__too_long(csgi_request_environ(request), max, text, sizeof(text));
        snprintf(detail, sizeof(detail), "the body is %s", text);
        *error_response = csgi_handler_error(request, 413, detail);
    }
    return rc;
}

/* ---- INI factories ----------------------------------------------------------------- */

static int setup_userdata(csgi_handler_setup_fn setup, const csgi_conf *global_conf,
                          const csgi_conf *local_conf, void **userdata, csgi_destroy_fn *destroy,
                          csgi_load_error *error)
{
    *userdata = NULL;
    *destroy = NULL;
    if (!setup)
        return 0;
    int rc = setup(userdata, destroy, global_conf, local_conf, error);
    if (rc != 0 && error && !error->text[0])
        snprintf(error->text, sizeof(error->text), "%s", csgi_strerror(rc));
    return rc;
}

int csgi_handler_filter_factory(csgi_app **out, const csgi_conf *global_conf,
                                const csgi_conf *local_conf, csgi_app *next, const char *name,
                                csgi_filter_handler_fn handler, csgi_handler_setup_fn setup,
                                csgi_load_error *error)
{
    void *userdata;
    csgi_destroy_fn destroy;
    int rc = setup_userdata(setup, global_conf, local_conf, &userdata, &destroy, error);
    if (rc != 0) {
        csgi_app_free(next);
        return rc;
    }
    return csgi_handler_filter(out, name, handler, next, userdata, destroy);
}

int csgi_handler_app_factory(csgi_app **out, const csgi_conf *global_conf,
                             const csgi_conf *local_conf, const char *name, csgi_handler_fn handler,
                             csgi_handler_setup_fn setup, csgi_load_error *error)
{
    void *userdata;
    csgi_destroy_fn destroy;
    int rc = setup_userdata(setup, global_conf, local_conf, &userdata, &destroy, error);
    if (rc != 0)
        return rc;
    return csgi_handler_app(out, name, handler, userdata, destroy);
}
