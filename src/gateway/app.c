/*
 * Applications, start-responses and bodies: the objects of the application
 * protocol (include/csgi/app.h). The rules of a request are in driver.c.
 *
 * Parameters are "env" here, not "environ" as in the header: this file
 * needs <unistd.h>, where glibc declares a global "environ".
 */
#include "common/alloc.h"
#include "common/arena.h"
#include "gateway/app_private.h"
#include "gateway/driver.h"
#include "gateway/environ_private.h"

#include <csgi/app.h>

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

/* ---- Applications ---------------------------------------------------------- */

struct csgi_app {
    const csgi_app_type *type;
    void *state;
    /* Atomic: an application shared by several loops may be referenced
       from several threads (routes built at load time, freed at exit). */
    atomic_long references;
};

int csgi_app_new(csgi_app **out, const csgi_app_type *type, void *state)
{
    if (out)
        *out = NULL;
    if (!out || !type || !type->call) {
        if (type && type->destroy)
            type->destroy(state);
        return CSGI_EINVAL;
    }
    csgi_app *app = csgi__malloc(sizeof(*app));
    if (!app) {
        if (type->destroy)
            type->destroy(state);
        return CSGI_ENOMEM;
    }
    app->type = type;
    app->state = state;
    atomic_init(&app->references, 1);
    *out = app;
    return 0;
}

csgi_app *csgi_app_ref(csgi_app *app)
{
    if (app)
        atomic_fetch_add(&app->references, 1);
    return app;
}

void csgi_app_free(csgi_app *app)
{
    if (!app || atomic_fetch_sub(&app->references, 1) != 1)
        return;
    if (app->type->destroy)
        app->type->destroy(app->state);
    csgi__free(app);
}

const csgi_app_type *csgi_app__type(const csgi_app *app)
{
    return app->type;
}

void *csgi_app_state(const csgi_app *app)
{
    return app->state;
}

const char *csgi_app_name(const csgi_app *app)
{
    return app->type->name ? app->type->name : "application";
}

csgi_body *csgi_app_call(csgi_app *app, csgi_environ *env, csgi_start_response *start_response)
{
    return app->type->call(app->state, env, start_response);
}

/* ---- Start-responses --------------------------------------------------------- */

int csgi_start_response_call(csgi_start_response *start_response, const char *status,
                             const csgi_header *headers, size_t count, const char *exc_info)
{
    if (!start_response || !status || (count && !headers))
        return CSGI_EINVAL;
    if (start_response->fn)
        return start_response->fn(status, headers, count, exc_info, start_response->userdata);
    if (start_response->parent)
        return csgi_start_response_call(start_response->parent, status, headers, count, exc_info);
    return CSGI_ESTATE;
}

int csgi_start_response_write(csgi_start_response *start_response, const void *data, size_t len)
{
    if (!start_response || (len && !data))
        return CSGI_EINVAL;
    /* Every node of a request's chain writes to the request's driver. */
    csgi_driver *driver = csgi_environ__owner(start_response->environ);
    return driver ? csgi_driver__write(driver, data, len) : CSGI_ESTATE;
}

csgi_start_response *csgi_start_response_new(csgi_environ *env, csgi_start_response *parent,
                                             csgi_start_response_fn fn, void *userdata)
{
    if (!env || !parent)
        return NULL;
    csgi_start_response *made = csgi_environ_alloc(env, sizeof(*made));
    return made ? csgi_start_response__init(made, env, parent, fn, userdata) : NULL;
}

/* ---- Bodies -------------------------------------------------------------------- */

/* A body of env's request, as init sets it up for its kind: the fields
   of that kind, the others zero. */
static inline csgi_body *body_alloc(csgi_environ *env, csgi_body init)
{
    csgi_body *body = env ? csgi_arena__alloc(csgi_environ__arena(env), sizeof(*body)) : NULL;
    if (!body)
        return NULL;
    *body = init;
    body->environ = env;
    return body;
}

/* The arena closes a body the gateway never saw through to its end: an
   application that failed after making it, a middleware that dropped the
   body of the application behind it. csgi_body_close makes this a no-op
   for bodies already closed. */
static void close_at_end(void *body)
{
    csgi_body_close(body);
}

/* body_alloc for a body that holds something outside the arena (a file,
   an iterator's state): the arena closes it at the end. */
static csgi_body *body_alloc_closed_at_end(csgi_environ *env, csgi_body init)
{
    csgi_body *body = body_alloc(env, init);
    return body && csgi_environ_defer(env, close_at_end, body) == 0 ? body : NULL;
}

csgi_body *csgi_body_new(csgi_environ *env, const csgi_body_type *type, void *state)
{
    csgi_body *body = NULL;
    if (type && type->next) /* length unknown until csgi_body_set_length */
        body = body_alloc_closed_at_end(
            env,
            (csgi_body){.kind = CSGI_BODY_ITERATOR, .type = type, .state = state, .length = -1});
    if (!body && type && type->close)
        type->close(state);
    return body;
}

csgi_body *csgi_body_static(csgi_environ *env, const void *data, size_t len)
{
    if (len && !data)
        return NULL;
    return body_alloc(env, (csgi_body){.kind = CSGI_BODY_BYTES, .data = data, .len = len});
}

csgi_body *csgi_body_bytes(csgi_environ *env, const void *data, size_t len)
{
    if (len && !data)
        return NULL;
    void *copy = csgi_environ_alloc(env, len ? len : 1);
    if (!copy)
        return NULL;
    if (len)
        memcpy(copy, data, len);
    return csgi_body_static(env, copy, len);
}

csgi_body *csgi_body_file(csgi_environ *env, int fd, int64_t offset, int64_t length)
{
    csgi_body *body = NULL;
    if (offset >= 0 && length >= 0)
        body = body_alloc_closed_at_end(
            env, (csgi_body){.kind = CSGI_BODY_FILE, .fd = fd, .offset = offset, .length = length});
    if (!body)
        close(fd);
    return body;
}

int64_t csgi_body_length(const csgi_body *body)
{
    switch (body->kind) {
    case CSGI_BODY_BYTES: return (int64_t)body->len;
    case CSGI_BODY_FILE: return body->length;
    default: /* declared, or the inner body's, or -1 */
        return body->length_of ? csgi_body_length(body->length_of) : body->length;
    }
}

void csgi_body__length_from(csgi_body *body, const csgi_body *inner)
{
    if (body->kind != CSGI_BODY_ITERATOR || body->closed)
        return;
    /* Only an iterator's length can still change; a file's shrinks as it
       is read, so it is taken now. */
    body->length_of = inner->kind == CSGI_BODY_ITERATOR ? inner : NULL;
    body->length = csgi_body_length(inner);
}

#define FILE_CHUNK 65536

int csgi_body_next(csgi_body *body, csgi_chunk *chunk)
{
    if (!body || !chunk || body->closed)
        return CSGI_ESTATE;
    switch (body->kind) {
    case CSGI_BODY_BYTES:
        if (body->delivered || body->len == 0)
            return 0;
        body->delivered = 1;
        chunk->data = body->data;
        chunk->len = body->len;
        return 1;
    case CSGI_BODY_FILE: {
        if (body->length == 0)
            return 0;
        if (!body->file_buffer) {
            body->file_buffer = csgi_environ_alloc(body->environ, FILE_CHUNK);
            if (!body->file_buffer)
                return CSGI_ENOMEM;
        }
        size_t want = body->length < FILE_CHUNK ? (size_t)body->length : FILE_CHUNK;
        ssize_t n;
        do
            n = pread(body->fd, body->file_buffer, want, (off_t)body->offset);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return CSGI_EIO;
        if (n == 0)
            return CSGI_EIO; /* the file is shorter than promised */
        body->offset += n;
        body->length -= n;
        chunk->data = body->file_buffer;
        chunk->len = (size_t)n;
        return 1;
    }
    default: {
        int r = body->type->next(body->state, chunk);
        return r > 0 ? 1 : r;
    }
    }
}

void csgi_body_close(csgi_body *body)
{
    if (!body || body->closed)
        return;
    body->closed = 1;
    if (body->kind == CSGI_BODY_ITERATOR && body->type->close)
        body->type->close(body->state);
    if (body->kind == CSGI_BODY_FILE && body->fd >= 0) {
        close(body->fd);
        body->fd = -1;
    }
}

void csgi_body_resume(csgi_body *body)
{
    if (!body || body->closed)
        return;
    csgi_driver *driver = csgi_environ__owner(body->environ);
    if (driver)
        csgi_driver__resume(driver);
}

int csgi_body_set_length(csgi_body *body, int64_t length)
{
    if (!body || body->kind != CSGI_BODY_ITERATOR || length < -1)
        return CSGI_EINVAL;
    if (body->closed)
        return CSGI_ESTATE;
    body->length = length;
    body->length_of = NULL;
    return 0;
}

csgi_body_kind csgi_body_kind_of(const csgi_body *body)
{
    return (csgi_body_kind)body->kind;
}

const void *csgi_body_data(const csgi_body *body, size_t *len)
{
    int bytes = body->kind == CSGI_BODY_BYTES;
    if (len)
        *len = bytes ? body->len : 0;
    return bytes ? body->data : NULL;
}

int csgi_body_take_file(csgi_body *body, int *fd, int64_t *offset, int64_t *length)
{
    if (!body || body->kind != CSGI_BODY_FILE || !fd)
        return CSGI_EINVAL;
    if (body->closed || body->fd < 0)
        return CSGI_ESTATE;
    *fd = body->fd;
    if (offset)
        *offset = body->offset;
    if (length)
        *length = body->length;
    body->fd = -1;
    body->length = 0;
    return 0;
}
