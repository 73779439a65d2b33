/*
 * Handlers (csgi/handler.h): "request in, response out" functions made
 * into applications and filters, each run exactly once per request.
 *
 * The adapter is an ordinary application. For each request it may first
 * gather the body (gather.c), then calls the handler once and delivers
 * what it returned: a response is sent; a forward-then runs the other
 * application and gives its response to the handler's function; a body
 * reader is fed the body. Whenever one of these has to wait (the body,
 * the other application's late answer), the adapter returns a body of its
 * own that answers CSGI_EAGAIN until the real answer is there, and from
 * then on passes on the pieces of that answer's body.
 */
#include "common/alloc.h"
#include "common/options.h"
#include "common/token.h"
#include "gateway/app_private.h"
#include "gateway/environ_private.h"
#include "helpers/gather.h"
#include "helpers/helpers.h"
#include "helpers/response_private.h"

#include <csgi/handler.h>
#include <csgi/json.h>
#include <csgi/server.h>

#include <jansson.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The adapter ------------------------------------------------------------ */

typedef struct adapter {
    char *name;
    csgi_handler_fn handler;               /* an application handler, or */
    csgi_filter_handler_fn filter_handler; /* a filter handler and next */
    csgi_app *next;
    void *userdata;
    csgi_destroy_fn destroy;
    int gathers; /* gather the body before the handler runs */
    csgi_gather__limits limits;
    char *temp_dir;     /* limits.temp_dir's memory */
    csgi_app_type type; /* named after the handler, for logs */
} adapter;

/* What the application a forward-then runs started its response with. */
typedef struct capture {
    csgi_response *response;
    int started;
    int result; /* the first failure while copying */
} capture;

/* One request's run of an adapter. It starts on the adapter's stack with
   only the first five fields set: a handler that answers or forwards
   (nearly every filter, on nearly every request) is done when adapter_call
   returns, and never looks at the others. The features that outlive that
   call (a forward-then, a body reader, a wait, gathering the body) move it
   into the request's arena first, the others zeroed (persist()). */
typedef struct call {
    adapter *adapter;
    csgi_request *request;
    csgi_environ *environ;
    csgi_start_response *start_response;
    int in_arena; /* 0: on adapter_call's stack, the fields below unset */

    csgi_body *later; /* returned to the server while an answer is awaited */
    csgi_body *inner; /* the answer's body, once there */
    int failed;
    csgi_input *waiting_on; /* the stream a wait is registered on */

    /* csgi_handler_forward_then(): the response it returned, and what then */
    csgi_response *forward;
    csgi_handler_then_fn then;
    void *then_state;
    capture capture;
    csgi_body *app_body; /* the application's body while it has not started */

    /* csgi_handler_read_body() */
    const csgi_body_reader_type *reader;
    void *reader_state;
    char *read_buffer;
    size_t read_size;
    uint64_t read_total; /* bytes read so far */

    /* csgi_handler_wait(): 1 returned by the handler, 2 waiting for
       csgi_handler_resume(); the answer when it came before the handler
       returned */
    int wait;
    csgi_handler_cancel_fn cancel;
    void *cancel_state;
    csgi_handler_resume_fn early;
    void *early_state;
} call;

/* csgi_handler_read_body()'s and csgi_handler_wait()'s answers: compared
   by address, never sent. */
static csgi_response read_marker;
static csgi_response wait_marker;
/* csgi_handler_forward() to the filter's own next application, from inside
   its handler: nothing to allocate, nothing to reference (the adapter
   holds next). */
static csgi_response forward_next_marker;

static csgi_body *deliver(call *c, csgi_response *response);

/* The running call of request (the handler's), in the arena: moved there
   from the stack the first time a feature needs it to outlive
   adapter_call. NULL when memory is exhausted. */
static call *persist(csgi_request *request, call *c)
{
    if (c->in_arena)
        return c;
    call *moved = csgi_environ_alloc(c->environ, sizeof(*moved));
    if (!moved)
        return NULL;
    *moved = (call){.adapter = c->adapter,
                    .request = c->request,
                    .environ = c->environ,
                    .start_response = c->start_response,
                    .in_arena = 1};
    csgi_request__swap_handler_call(request, moved);
    return moved;
}

/* Run the handler with *cp as the request's call. *cp becomes the call to
   go on with: the one in the arena if the handler moved it there. */
static csgi_response *run_handler(call **cp)
{
    call *c = *cp;
    adapter *h = c->adapter;
    void *previous = csgi_request__swap_handler_call(c->request, c);
    csgi_response *response = h->filter_handler
                                  ? h->filter_handler(c->request, h->next, h->userdata)
                                  : h->handler(c->request, h->userdata);
    *cp = csgi_request__swap_handler_call(c->request, previous);
    return response;
}

/* ---- Waiting: the body returned meanwhile --------------------------------------- */

static int then_resume(call *c);

static int later_next(void *state, csgi_chunk *chunk)
{
    call *c = state;
    if (!c->inner && !c->failed && c->app_body) {
        int rc = then_resume(c);
        if (rc != 0)
            return rc;
    }
    if (c->failed)
        return CSGI_ESTATE;
    if (!c->inner)
        return CSGI_EAGAIN;
    return csgi_body_next(c->inner, chunk);
}

static void later_close(void *state)
{
    call *c = state;
    /* The request ends (or the client left) before the answer came: stop
       waiting for it. */
    if (c->waiting_on)
        csgi_input_on_ready(c->waiting_on, NULL, NULL);
    c->waiting_on = NULL;
    if (c->wait == 2 && c->cancel)
        c->cancel(c->cancel_state);
    c->wait = 0;
    csgi_body_close(c->app_body);
    csgi_body_close(c->inner);
}

static const csgi_body_type later_type = {"handler-waiting", later_next, later_close};

/* The body to return while waiting (made once per call). */
static csgi_body *later(call *c)
{
    if (!c->later)
        c->later = csgi_body_new(c->environ, &later_type, c);
    return c->later;
}

/* The answer came after a wait: the body returned meanwhile passes it on. */
static void settle(call *c, csgi_body *body)
{
    if (body && body == c->later)
        return; /* waiting again; whatever waits now settles */
    c->inner = body;
    if (!body)
        c->failed = 1;
    else /* the late answer keeps its length, so that its framing is the
            same as when it is given at once */
        csgi_body__length_from(c->later, body);
    csgi_body_resume(c->later);
}

static void wait_on(call *c, csgi_input *input, csgi_input_ready_fn ready)
{
    c->waiting_on = input;
    csgi_input_on_ready(input, ready, c);
}

/* ---- Gathering the body --------------------------------------------------------- */

/* The answer when the body could not be gathered. */
static csgi_body *body_error(call *c, int rc)
{
    int status = 500;
    char detail[96] = "";
    if (rc == CSGI_ETOOBIG) {
        char text[64];
        csgi_helpers__too_long(c->environ, (size_t)c->adapter->limits.max_body, text, sizeof(text));
        snprintf(detail, sizeof(detail), "the body is %s", text);
        status = 413;
    } else if (rc == CSGI_EPARSE) {
        snprintf(detail, sizeof(detail), "the body is malformed");
        status = 400;
    } else if (rc == CSGI_ETIMEDOUT) {
        status = 408;
    } else if (rc == CSGI_ECLOSED) {
        csgi_environ_log_at(c->environ, CSGI_LOG_INFO,
                            "%s: the client left before its body arrived", c->adapter->name);
        return NULL;
    } else {
        csgi_environ_log(c->environ, "%s: cannot gather the request body: %s", c->adapter->name,
                         csgi_strerror(rc));
        return NULL;
    }
    return deliver(c, csgi_handler_error(c->request, status, detail[0] ? detail : NULL));
}

static void gathered(void *userdata, int rc)
{
    call *c = userdata;
    c->waiting_on = NULL;
    if (rc != 0) {
        settle(c, body_error(c, rc));
        return;
    }
    csgi_response *response = run_handler(&c);
    settle(c, deliver(c, response));
}

/* ---- Reading the body piece by piece -------------------------------------------- */

#define READ_PIECE 16384

static csgi_body *read_on(call *c);

static void read_ready(csgi_input *input, void *userdata)
{
    call *c = userdata;
    (void)input;
    c->waiting_on = NULL;
    settle(c, read_on(c));
}

/* Feed the reader what is there; its end's answer, or the waiting body. */
static csgi_body *read_on(call *c)
{
    csgi_input *input = csgi_environ_input(c->environ);
    uint64_t max = c->adapter->limits.max_body;
    int64_t announced = csgi_input__length(input);
    int result;
    for (;;) {
        /* Over max_body: refused before a byte is read when the length
           says so, else as soon as it passes. */
        if ((announced >= 0 && (uint64_t)announced > max) || c->read_total > max) {
            result = CSGI_ETOOBIG;
            break;
        }
        long n = csgi_input_read(input, c->read_buffer, c->read_size);
        if (n == CSGI_EAGAIN) {
            csgi_body *body = later(c);
            if (body)
                wait_on(c, input, read_ready);
            return body;
        }
        if (n <= 0) {
            result = (int)n;
            break;
        }
        c->read_total += (uint64_t)n;
        if (c->read_total > max)
            continue;
        result = c->reader->data(c->reader_state, c->request, c->read_buffer, (size_t)n);
        if (result != 0)
            break;
    }
    const csgi_body_reader_type *reader = c->reader;
    c->reader = NULL;
    void *previous = csgi_request__swap_handler_call(c->request, c);
    csgi_response *response = reader->end(c->reader_state, c->request, result);
    csgi_request__swap_handler_call(c->request, previous);
    if (result == CSGI_ECLOSED)
        return NULL; /* nobody to answer */
    return deliver(c, response);
}

/* ---- Forward, then change the answer ----------------------------------------------- */

static csgi_body *then_start(call *c);
static csgi_body *then_finish(call *c, csgi_body *body, const csgi_chunk *first, int ended);

/* The application behind a forward-then may have started: pull its first
   piece. 0 (c->inner or c->failed set), or CSGI_EAGAIN. */
static int then_resume(call *c)
{
    csgi_chunk first = {NULL, 0};
    int n = csgi_body_next(c->app_body, &first);
    if (n == CSGI_EAGAIN)
        return CSGI_EAGAIN;
    csgi_body *body = c->app_body;
    c->app_body = NULL;
    if (n < 0 || !c->capture.started) {
        csgi_environ_log(c->environ, "%s: the application behind failed before it answered",
                         c->adapter->name);
        csgi_body_close(body);
        c->failed = 1;
        return 0;
    }
    csgi_body *answer = then_finish(c, body, &first, n == 0);
    if (answer && answer == c->later)
        return CSGI_EAGAIN; /* the function forwarded again, to one that waits */
    c->inner = answer;
    if (!answer)
        c->failed = 1;
    else if (c->later)
        csgi_body__length_from(c->later, answer);
    return 0;
}

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
    capture *cap = userdata;
    (void)exc_info;
    /* A second call (with exc_info) replaces what the first one gave. */
    if (cap->started && csgi_response_new(&cap->response, cap->response->environ) != 0)
        return cap->result = CSGI_ENOMEM;
    cap->started = 1;
    cap->result = 0;
    csgi_response *response = cap->response;
    int rc = csgi_response_set_status_line(response, status);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const csgi_header *field = &headers[i];
        if (!field->name || (field->value_len && !field->value)) {
            rc = CSGI_EINVAL;
            break;
        }
        if (csgi_token__lookup(field->name, field->name_len) == CSGI_TOKEN__CONTENT_LENGTH)
            continue; /* the body decides */
        char *name = copy_counted(response, field->name, field->name_len);
        char *value = copy_counted(response, field->value ? field->value : "", field->value_len);
        rc = name && value ? csgi_response_add_header(response, name, value) : CSGI_ENOMEM;
    }
    cap->result = rc;
    return rc;
}

/* An application's iterator body, with its first piece already pulled. */
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

static const csgi_body_type relay_type = {"forward-then", relay_next, relay_close};

/* Put the application's body into the captured response: bytes and files
   as they are (with their length, and sendfile for files), an iterator
   relayed (with the piece pulled already, if any). body is taken. */
static int attach_body(call *c, csgi_body *body, const csgi_chunk *first, int ended)
{
    csgi_response *response = c->capture.response;
    csgi_body_kind kind = csgi_body_kind_of(body);
    if (!first && kind == CSGI_BODY_BYTES) {
        size_t len = 0;
        const void *data = csgi_body_data(body, &len);
        int rc = csgi_response_set_body_static(response, data, len);
        csgi_body_close(body);
        return rc;
    }
    if (!first && kind == CSGI_BODY_FILE) {
        int fd = -1;
        int64_t offset = 0, length = 0;
        int rc = csgi_body_take_file(body, &fd, &offset, &length);
        csgi_body_close(body);
        return rc == 0 ? csgi_response_set_file(response, fd, offset, length) : rc;
    }
    relay *r = csgi_environ_alloc(c->environ, sizeof(*r));
    if (!r) {
        csgi_body_close(body);
        return CSGI_ENOMEM;
    }
    *r = (relay){.inner = body, .has_first = first ? (ended ? -1 : 1) : 0};
    if (first)
        r->first = *first;
    int rc = csgi_response_set_stream(response, &relay_type, r);
    if (rc == 0)
        csgi_response__set_stream_length_of(response, body);
    return rc;
}

/* The application answered: give its response to the function, and
   deliver what that returns. */
static csgi_body *then_finish(call *c, csgi_body *body, const csgi_chunk *first, int ended)
{
    int rc = c->capture.result;
    if (rc != 0)
        csgi_body_close(body);
    else
        rc = attach_body(c, body, first, ended);
    if (rc != 0) {
        csgi_environ_log(c->environ, "%s: cannot take the answer of the application behind: %s",
                         c->adapter->name, csgi_strerror(rc));
        return NULL;
    }
    csgi_handler_then_fn then = c->then;
    c->then = NULL;
    c->forward = NULL;
    void *previous = csgi_request__swap_handler_call(c->request, c);
    csgi_response *response = then(c->request, c->capture.response, c->then_state);
    csgi_request__swap_handler_call(c->request, previous);
    return deliver(c, response);
}

/* Run the forward-then's application with a start-response that captures
   what it answers. */
static csgi_body *then_start(call *c)
{
    csgi_app *app = c->forward->app;
    c->capture = (capture){NULL, 0, 0};
    if (csgi_response_new(&c->capture.response, c->environ) != 0)
        return NULL;
    csgi_start_response *mine =
        csgi_start_response_new(c->environ, c->start_response, capture_start, &c->capture);
    csgi_body *body = mine ? csgi_app_call(app, c->environ, mine) : NULL;
    if (!body) {
        csgi_environ_log(c->environ, "%s: the application behind failed (%s)", c->adapter->name,
                         c->capture.result ? csgi_strerror(c->capture.result) : "no body");
        return NULL;
    }
    if (c->capture.started)
        return then_finish(c, body, NULL, 0);
    /* Not started: it starts from its body's first piece, now or later. */
    c->app_body = body;
    if (then_resume(c) == CSGI_EAGAIN)
        return later(c);
    /* It answered at once: no waiting body was returned to anyone. */
    csgi_body *answer = c->inner;
    c->inner = NULL;
    c->failed = 0;
    return answer;
}

/* ---- Delivering what the handler returned ------------------------------------------ */

/* A late answer's function, run as the handler was. */
static csgi_response *run_resume(call *c, csgi_handler_resume_fn fn, void *state)
{
    c->early = NULL;
    void *previous = csgi_request__swap_handler_call(c->request, c);
    csgi_response *response = fn(c->request, state);
    csgi_request__swap_handler_call(c->request, previous);
    return response;
}

/* csgi_handler_forward() to the filter's next application: what nearly
   every filter answers nearly every request. */
static inline csgi_body *forward_next(call *c)
{
    if (csgi_gather__rewind(c->environ) != 0)
        return NULL;
    return csgi_app_call(c->adapter->next, c->environ, c->start_response);
}

/* What the handler answered when it used no feature that needs the call
   in the arena: its forward, or a response. */
static csgi_body *deliver_plain(call *c, csgi_response *response)
{
    if (response == &forward_next_marker)
        return forward_next(c);
    if (response == &wait_marker || response == &read_marker) {
        /* only csgi_handler_wait() and _read_body() give them, and they
           move the call first: another request's marker */
        csgi_environ_log(c->environ, "%s: the handler answered another request's wait or read",
                         c->adapter->name);
        return NULL;
    }
    /* What a filter forwards to reads the body from its start, also when
       the filter read the gathered body first. */
    if (response->app && csgi_gather__rewind(c->environ) != 0)
        return NULL;
    return csgi_response_send(response, c->environ, c->start_response);
}

static csgi_body *deliver(call *c, csgi_response *response)
{
    if (!response) {
        if (c->in_arena)
            c->wait = 0; /* the handler asked to wait, then failed */
        csgi_environ_log(c->environ, "%s: the handler failed (returned no response)",
                         c->adapter->name);
        return NULL;
    }
    if (!c->in_arena)
        return deliver_plain(c, response);
    if (c->wait == 1 && response != &wait_marker)
        c->wait = 0; /* the handler asked to wait, then returned something else */
    if (response == &wait_marker) {
        if (!c->early) {
            csgi_body *body = later(c);
            c->wait = body ? 2 : 0;
            return body;
        }
        c->wait = 0;
        return deliver(c, run_resume(c, c->early, c->early_state));
    }
    if (response == &read_marker) {
        if (!c->read_buffer) {
            /* A piece at a time, no more than the body announced needs. */
            int64_t announced = csgi_input__length(csgi_environ_input(c->environ));
            c->read_size =
                announced >= 0 && announced < READ_PIECE ? (size_t)announced + 1 : READ_PIECE;
            if (!(c->read_buffer = csgi_environ_alloc(c->environ, c->read_size)))
                return NULL;
        }
        return read_on(c);
    }
    if (response == c->forward && c->then) {
        if (csgi_gather__rewind(c->environ) != 0)
            return NULL;
        return then_start(c);
    }
    return deliver_plain(c, response);
}

static csgi_body *adapter_call(void *state, csgi_environ *environ,
                               csgi_start_response *start_response)
{
    adapter *h = state;
    csgi_request *request;
    if (csgi_request_from_environ(&request, environ) != 0) {
        csgi_environ_log(environ, "%s: out of memory for the request", h->name);
        return NULL;
    }
    call on_stack; /* the fields after in_arena stay unset (see call) */
    on_stack.adapter = h;
    on_stack.request = request;
    on_stack.environ = environ;
    on_stack.start_response = start_response;
    on_stack.in_arena = 0;
    call *c = &on_stack;
    if (h->gathers && csgi_gather__has_body(environ) && !csgi_gather__is_gathered(environ)) {
        /* gathered() runs later, with this call */
        if (!(c = persist(request, c))) {
            csgi_environ_log(environ, "%s: out of memory for the request", h->name);
            return NULL;
        }
        csgi_input *input = csgi_environ_input(environ);
        int rc = csgi_gather__start(environ, &h->limits, gathered, c);
        if (rc == CSGI_EAGAIN) {
            c->waiting_on = input;
            return later(c);
        }
        if (rc != 0)
            return body_error(c, rc);
    }
    csgi_response *response = run_handler(&c);
    if (response == &forward_next_marker && !c->in_arena)
        return forward_next(c); /* without deliver's tests */
    return deliver(c, response);
}

static void adapter_destroy(void *state)
{
    adapter *h = state;
    if (h->destroy)
        h->destroy(h->userdata);
    csgi_app_free(h->next);
    csgi__free(h->temp_dir);
    csgi__free(h->name);
    csgi__free(h);
}

static char *copy_string(const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = csgi__malloc(len);
    if (copy)
        memcpy(copy, s, len);
    return copy;
}

/* The options in h, defaults filled in. */
static int apply_options(adapter *h, const csgi_handler_options *options)
{
    csgi_handler_options defaults = CSGI_HANDLER_OPTIONS_INIT;
    if (!options)
        options = &defaults;
    if (!csgi_options__version_ok(options->version, CSGI_HANDLER_OPTIONS_VERSION) ||
        (unsigned)options->body > CSGI_HANDLER_BODY_STREAM)
        return CSGI_EINVAL;
    const char *dir = options->body_temp_dir;
    if (!dir || !*dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    char *copy = copy_string(dir);
    if (!copy)
        return CSGI_ENOMEM;
    csgi__free(h->temp_dir);
    h->temp_dir = copy;
    h->gathers = options->body == CSGI_HANDLER_BODY_GATHER ||
                 (options->body == CSGI_HANDLER_BODY_DEFAULT && h->handler);
    h->limits = (csgi_gather__limits){
        .max_body = options->max_body ? options->max_body : CSGI_HANDLER_MAX_BODY_DEFAULT,
        .memory = options->body_buffer_size ? options->body_buffer_size
                                            : CSGI_HANDLER_BODY_BUFFER_DEFAULT,
        .temp_dir = copy};
    return 0;
}

static int make(csgi_app **out, const char *name, csgi_handler_fn handler,
                csgi_filter_handler_fn filter_handler, csgi_app *next, void *userdata,
                csgi_destroy_fn destroy)
{
    if (!name)
        name = "handler";
    adapter *h = csgi__malloc(sizeof(*h));
    char *copy = copy_string(name);
    if (!h || !copy) {
        csgi__free(h);
        csgi__free(copy);
        if (destroy)
            destroy(userdata);
        csgi_app_free(next);
        return CSGI_ENOMEM;
    }
    *h = (adapter){.name = copy,
                   .handler = handler,
                   .filter_handler = filter_handler,
                   .next = next,
                   .userdata = userdata,
                   .destroy = destroy,
                   .type = {.name = copy, .call = adapter_call, .destroy = adapter_destroy}};
    if (apply_options(h, NULL) != 0) {
        adapter_destroy(h);
        return CSGI_ENOMEM;
    }
    /* csgi_app_new runs adapter_destroy when it fails. */
    return csgi_app_new(out, &h->type, h);
}

int csgi_handler_set_options(csgi_app *app, const csgi_handler_options *options)
{
    if (!app || !options || csgi_app__type(app)->call != adapter_call)
        return CSGI_EINVAL;
    return apply_options(csgi_app_state(app), options);
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

/* A response object that calls app. */
static csgi_response *forward_response(csgi_request *request, csgi_app *app)
{
    csgi_response *response = app ? csgi_handler_response(request) : NULL;
    /* The response takes a reference; the caller keeps its own. */
    if (!response || csgi_response_set_app(response, csgi_app_ref(app)) != 0)
        return NULL;
    return response;
}

csgi_response *csgi_handler_forward(csgi_request *request, csgi_app *app)
{
    /* What nearly every filter returns: its next application, which the
       adapter holds for as long as the request runs. */
    call *c = request && app ? csgi_request__handler_call(request) : NULL;
    if (c && app == c->adapter->next)
        return &forward_next_marker;
    return forward_response(request, app);
}

csgi_response *csgi_handler_forward_then(csgi_request *request, csgi_app *app,
                                         csgi_handler_then_fn fn, void *state)
{
    call *c = request ? csgi_request__handler_call(request) : NULL;
    if (!c || !fn || !(c = persist(request, c)))
        return NULL;
    csgi_response *response = forward_response(request, app);
    if (response) {
        c->forward = response;
        c->then = fn;
        c->then_state = state;
    }
    return response;
}

csgi_response *csgi_handler_read_body(csgi_request *request, const csgi_body_reader_type *type,
                                      void *state)
{
    call *c = request ? csgi_request__handler_call(request) : NULL;
    if (!c || !type || !type->data || !type->end || !(c = persist(request, c)) || c->reader)
        return NULL;
    c->reader = type;
    c->reader_state = state;
    return &read_marker;
}

csgi_response *csgi_handler_wait(csgi_request *request, csgi_handler_later **later,
                                 csgi_handler_cancel_fn cancel, void *state)
{
    call *c = request ? csgi_request__handler_call(request) : NULL;
    if (!c || !later || !(c = persist(request, c)) || c->wait)
        return NULL;
    c->wait = 1;
    c->cancel = cancel;
    c->cancel_state = state;
    c->early = NULL;
    *later = (csgi_handler_later *)c;
    return &wait_marker;
}

void csgi_handler_resume(csgi_handler_later *later, csgi_handler_resume_fn fn, void *state)
{
    call *c = (call *)later;
    if (!c || !fn || !c->wait)
        return;
    if (c->wait == 1) { /* the handler has not returned yet */
        c->early = fn;
        c->early_state = state;
        return;
    }
    c->wait = 0;
    settle(c, deliver(c, run_resume(c, fn, state)));
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

int csgi_helpers__conf_size(const csgi_conf *conf, const char *name, uint64_t *out,
                            csgi_load_error *error)
{
    const char *text = csgi_conf_get(conf, name);
    *out = 0;
    if (!text)
        return 0;
    while (*text == ' ' || *text == '\t')
        text++;
    uint64_t value = 0;
    const char *p = text;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (value > (UINT64_MAX - 9) / 10)
            break;
        value = value * 10 + (uint64_t)(*p - '0');
    }
    unsigned shift = 0;
    if (*p == 'k' || *p == 'K')
        shift = 10;
    else if (*p == 'm' || *p == 'M')
        shift = 20;
    else if (*p == 'g' || *p == 'G')
        shift = 30;
    if (shift)
        p++;
    while (*p == ' ' || *p == '\t')
        p++;
    if (p == text || (*text < '0' || *text > '9') || *p || value > (UINT64_MAX >> shift)) {
        csgi_conf_error(conf, name, error,
                        "must be a size in bytes, with an optional k, m or g (\"%s\")", text);
        return CSGI_EINVAL;
    }
    *out = value << shift;
    return 0;
}

/* The handler keys of a factory's local conf (body_mode,
   client_max_body_size, client_body_buffer_size, client_body_temp_path:
   nginx's names for the same things) applied to the adapter. */
static int conf_options(csgi_app *app, const csgi_conf *local_conf, csgi_load_error *error)
{
    csgi_handler_options options = CSGI_HANDLER_OPTIONS_INIT;
    const char *mode = csgi_conf_get(local_conf, "body_mode");
    if (!mode || strcmp(mode, "default") == 0)
        options.body = CSGI_HANDLER_BODY_DEFAULT;
    else if (strcmp(mode, "gather") == 0)
        options.body = CSGI_HANDLER_BODY_GATHER;
    else if (strcmp(mode, "stream") == 0)
        options.body = CSGI_HANDLER_BODY_STREAM;
    else {
        csgi_conf_error(local_conf, "body_mode", error,
                        "must be gather, stream or default, not \"%s\"", mode);
        return CSGI_EINVAL;
    }
    uint64_t max_body, buffer;
    int rc = csgi_helpers__conf_size(local_conf, "client_max_body_size", &max_body, error);
    if (rc == 0)
        rc = csgi_helpers__conf_size(local_conf, "client_body_buffer_size", &buffer, error);
    if (rc == 0 && buffer > SIZE_MAX) {
        csgi_conf_error(local_conf, "client_body_buffer_size", error, "is too large");
        rc = CSGI_EINVAL;
    }
    if (rc != 0)
        return rc;
    options.max_body = max_body;
    options.body_buffer_size = (size_t)buffer;
    options.body_temp_dir = csgi_conf_get(local_conf, "client_body_temp_path");
    rc = csgi_handler_set_options(app, &options);
    if (rc != 0 && error)
        snprintf(error->text, sizeof(error->text), "%s", csgi_strerror(rc));
    return rc;
}

/* The factories' end: the options from the conf, or the application freed. */
static int configured(csgi_app **out, int rc, const csgi_conf *local_conf, csgi_load_error *error)
{
    if (rc == 0 && (rc = conf_options(*out, local_conf, error)) != 0) {
        csgi_app_free(*out);
        *out = NULL;
    }
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
    rc = csgi_handler_filter(out, name, handler, next, userdata, destroy);
    return configured(out, rc, local_conf, error);
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
    rc = csgi_handler_app(out, name, handler, userdata, destroy);
    return configured(out, rc, local_conf, error);
}
