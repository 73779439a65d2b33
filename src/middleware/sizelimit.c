/*
 * oslo.middleware's sizelimit filter (RequestBodySizeLimiter) and its INI
 * factory (egg:oslo.middleware#sizelimit,
 * oslo_middleware:RequestBodySizeLimiter.factory,
 * oslo_middleware.sizelimit:RequestBodySizeLimiter.factory), conf key
 * max_request_body_size (bytes, 114688 by default as in oslo).
 *
 * A Content-Length over the limit is answered 413 before a byte of the body
 * is read. A body the server reads to its Content-Length within the limit
 * (or no body) goes on as it is: the server already stops it at that
 * length. Any other body (chunked, or a stream a middleware put in front)
 * reaches the next application through a csgi.input that counts: the read that would pass
 * the limit fails with CSGI_ETOOBIG instead, so a chunked upload is stopped
 * as soon as it goes over, whatever its pieces, and a reader of the
 * request helpers answers 413 naming the limit (csgi_input_set_limit()).
 */
#include "common/alloc.h"
#include "gateway/environ_private.h"
#include "middleware/middleware.h"

#include <csgi/handler.h>

#include <stdlib.h>

#define DEFAULT_MAX 114688

typedef struct limited {
    csgi_input *inner; /* the stream replaced */
    csgi_input *outer; /* ours, which the next application reads */
    uint64_t max;
    uint64_t count; /* bytes let through */
} limited;

static long limited_read(void *state, void *buf, size_t len)
{
    limited *l = state;
    if (l->count > l->max)
        return CSGI_ETOOBIG;
    /* One byte past what is left is enough to see the body go over. */
    uint64_t room = l->max - l->count + 1;
    if (len > room)
        len = (size_t)room;
    long n = csgi_input_read(l->inner, buf, len);
    if (n <= 0)
        return n;
    l->count += (uint64_t)n;
    return l->count > l->max ? CSGI_ETOOBIG : n;
}

static void inner_ready(csgi_input *input, void *userdata)
{
    (void)input;
    limited *l = userdata;
    csgi_input_notify(l->outer);
}

static void limited_wait(void *state, csgi_input *input, int waiting)
{
    limited *l = state;
    l->outer = input;
    csgi_input_on_ready(l->inner, waiting ? inner_ready : NULL, waiting ? l : NULL);
}

static const csgi_input_type limited_type = {"sizelimit", limited_read, limited_wait, NULL};

/* The server's own stream already holds a body to its Content-Length
   (the engine cuts the connection rather than pass a byte more or fewer):
   with no body, or a length within the limit, there is nothing left to
   count. 1: forward as it is; 0: the length is over the limit; -1: the
   stream must be counted (chunked, or a middleware's stream). */
static int needs_no_count(csgi_input *input, uint64_t max)
{
    if (csgi_input__type(input) != NULL)
        return -1;
    if (!csgi_input__has_body(input))
        return 1;
    int64_t length = csgi_input__length(input);
    if (length < 0)
        return -1;
    return (uint64_t)length <= max;
}

static csgi_response *sizelimit(csgi_request *request, csgi_app *next, void *userdata)
{
    uint64_t max = *(const uint64_t *)userdata;
    csgi_environ *environ = csgi_request_environ(request);
    int plain = needs_no_count(csgi_environ_input(environ), max);
    if (plain == 1)
        return csgi_handler_forward(request, next);
    if (plain == 0)
        return csgi_handler_error(request, 413, "Request is too large.");
    const char *length = csgi_environ_get(environ, "CONTENT_LENGTH");
    int64_t announced = -1;
    if (length && *length) {
        char *end;
        unsigned long long value = strtoull(length, &end, 10);
        /* The server has checked the field; a length too big to parse is
           over any limit. */
        if (*end || value > max)
            return csgi_handler_error(request, 413, "Request is too large.");
        announced = (int64_t)value;
    }
    limited *l = csgi_environ_alloc_zeroed(environ, sizeof(*l));
    if (!l)
        return NULL;
    l->inner = csgi_environ_input(environ);
    l->max = max;
    csgi_input *outer = csgi_input_new(environ, &limited_type, l, announced);
    if (!outer)
        return NULL;
    l->outer = outer;
    if (csgi_input_set_limit(outer, max) != 0 || csgi_environ_set_input(environ, outer) != 0)
        return NULL;
    return csgi_handler_forward(request, next);
}

static int sizelimit_setup(void **userdata, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                           const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)global_conf;
    long long max;
    int rc = csgi_conf_asint(local_conf, "max_request_body_size", DEFAULT_MAX, &max, error);
    if (rc != 0)
        return rc;
    if (max < 0) {
        csgi_conf_error(local_conf, "max_request_body_size", error, "must not be negative: %lld",
                        max);
        return CSGI_EINVAL;
    }
    uint64_t *limit = csgi__malloc(sizeof(*limit));
    if (!limit)
        return CSGI_ENOMEM;
    *limit = (uint64_t)max;
    *userdata = limit;
    *destroy = csgi__free;
    return 0;
}

int csgi_sizelimit__filter_factory(csgi_app **out, csgi_loader *loader,
                                   const csgi_conf *global_conf, const csgi_conf *local_conf,
                                   csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    return csgi_handler_filter_factory(out, global_conf, local_conf, next, "sizelimit", sizelimit,
                                       sizelimit_setup, error);
}
