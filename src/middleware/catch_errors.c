/*
 * oslo.middleware's catch_errors filter (CatchErrors) and its INI factory
 * (egg:oslo.middleware#catch_errors, oslo_middleware:CatchErrors.factory,
 * oslo_middleware.catch_errors:CatchErrors.factory).
 *
 * When the next application fails (its call returns NULL), the client gets
 * "500 Internal Server Error" with a body that says nothing of the failure
 * but the request id request_id set (openstack.request_id), and the error
 * log one line. If the application had started its response, the 500
 * replaces it as an exc_info start-response does, or the server cuts the
 * connection when the head is already out.
 *
 * An application that answers later (its body starts the response from
 * its first piece) is watched the same way: a body that fails before it
 * started the response becomes the same 500. A failure after the head
 * went out can only cut the response short.
 */
#include "common/alloc.h"
#include "gateway/app_private.h"
#include "middleware/middleware.h"

#include <csgi/app.h>
#include <csgi/environ.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MESSAGE "An unknown error has occurred. Please try your request again.\n"

typedef struct catch_errors {
    csgi_app *next;
} catch_errors;

typedef struct call {
    const catch_errors *filter;
    csgi_environ *environ;
    csgi_start_response *parent;
    csgi_start_response own; /* what the next application answers through */
    bool started;
    csgi_body *inner; /* a late application's body, watched */
} call;

static int pass_start(const char *status, const csgi_header *headers, size_t count,
                      const char *exc_info, void *userdata)
{
    call *c = userdata;
    int rc = csgi_start_response_call(c->parent, status, headers, count, exc_info);
    if (rc == 0)
        c->started = true;
    return rc;
}

/* The 500 for a failed application: one log line, a body without
   internals. */
static csgi_body *answer_500(call *c)
{
    csgi_environ *environ = c->environ;
    const char *id = csgi_environ_get(environ, "openstack.request_id");
    csgi_environ_log(environ, "catch_errors: %s failed, answered 500 (request id %s)",
                     csgi_app_name(c->filter->next), id ? id : "none");
    size_t size = sizeof(MESSAGE) + (id ? strlen(id) + 32 : 0);
    char *text = csgi_environ_alloc(environ, size);
    if (!text)
        return NULL;
    if (id)
        snprintf(text, size, "%sRequest ID: %s\n", MESSAGE, id);
    else
        snprintf(text, size, "%s", MESSAGE);
    const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain; charset=utf-8")};
    if (csgi_start_response_call(c->parent, "500 Internal Server Error", headers, 1,
                                 c->started ? "catch_errors: the application failed" : NULL) != 0)
        return NULL;
    return csgi_body_bytes(environ, text, strlen(text));
}

/* A late application's body: its pieces as they are, until it fails
   before starting the response; then the 500's. */
static int watch_next(void *state, csgi_chunk *chunk)
{
    call *c = state;
    int n = csgi_body_next(c->inner, chunk);
    if (n >= 0 || n == CSGI_EAGAIN || c->started)
        return n;
    csgi_body_close(c->inner);
    c->inner = answer_500(c);
    return c->inner ? csgi_body_next(c->inner, chunk) : CSGI_ESTATE;
}

static void watch_close(void *state)
{
    call *c = state;
    csgi_body_close(c->inner);
    c->inner = NULL;
}

static const csgi_body_type watch_type = {"catch_errors", watch_next, watch_close};

static csgi_body *catch_errors_call(void *state, csgi_environ *environ,
                                    csgi_start_response *start_response)
{
    const catch_errors *f = state;
    call *c = csgi_environ_alloc(environ, sizeof(*c));
    if (!c)
        return NULL;
    *c = (call){.filter = f, .environ = environ, .parent = start_response};
    csgi_body *body =
        csgi_app_call(f->next, environ,
                      csgi_start_response__init(&c->own, environ, start_response, pass_start, c));
    if (!body)
        return answer_500(c);
    if (c->started)
        return body; /* the common case: nothing left to watch */
    c->inner = body;
    csgi_body *watched = csgi_body_new(environ, &watch_type, c);
    if (!watched)
        csgi_body_close(body);
    return watched;
}

static void catch_errors_destroy(void *state)
{
    catch_errors *f = state;
    if (!f)
        return;
    csgi_app_free(f->next);
    csgi__free(f);
}

static const csgi_app_type catch_errors_type = {"catch_errors", catch_errors_call,
                                                catch_errors_destroy};

int csgi_catch_errors__filter_factory(csgi_app **out, csgi_loader *loader,
                                      const csgi_conf *global_conf, const csgi_conf *local_conf,
                                      csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    static const char *const known[] = {NULL};
    int rc = csgi_middleware__known_keys(local_conf, "catch_errors", known, error);
    catch_errors *f = rc == 0 ? csgi__malloc(sizeof(*f)) : NULL;
    if (!f) {
        csgi_app_free(next);
        return rc != 0 ? rc : CSGI_ENOMEM;
    }
    f->next = next;
    return csgi_app_new(out, &catch_errors_type, f);
}
