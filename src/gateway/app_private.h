/*
 * The insides of the application protocol's per-request objects
 * (internal): bodies and start-responses, made by app.c and driven by
 * driver.c. Bundled middleware and helpers use the public accessors of
 * csgi/app.h instead.
 */
#ifndef CSGI_GATEWAY_APP_PRIVATE_H
#define CSGI_GATEWAY_APP_PRIVATE_H

#include <csgi/app.h>

#include <stddef.h>
#include <stdint.h>

struct csgi_body {
    csgi_environ *environ;
    int kind; /* csgi_body_kind */
    int closed;
    /* CSGI_BODY_BYTES */
    const void *data;
    size_t len;
    int delivered;
    /* CSGI_BODY_FILE */
    int fd;
    int64_t offset;
    int64_t length;
    char *file_buffer; /* for csgi_body_next on a file: pread into it */
    /* CSGI_BODY_ITERATOR */
    const csgi_body_type *type;
    void *state;
    const csgi_body *length_of; /* the inner body whose length this one has, or NULL */
};

/* Give body (an iterator, not pulled yet) the length of inner, the body
   it wraps without changing its bytes: read whenever it is asked, which
   is when the server sends the head, not now. A wrapper in front of a
   body that learns its length late (a handler answering once the request
   body came, csgi_body_set_length() from inside) so passes that length on,
   and the framing does not depend on when the request body arrived.
   csgi_body_set_length() on body ends the link. */
void csgi_body__length_from(csgi_body *body, const csgi_body *inner);

/* The type an application was made with (csgi_app_new()). */
const csgi_app_type *csgi_app__type(const csgi_app *app);

/* A node of the start-response chain: it calls fn, or forwards to its
   parent when it has none. The root (parent NULL) is an ordinary node
   whose fn is the driver's (driver.c). Writes from any node go to the
   request's driver, the environ's owner. */
struct csgi_start_response {
    csgi_environ *environ;
    csgi_start_response *parent;
    csgi_start_response_fn fn;
    void *userdata;
};

/* What csgi_start_response_new() makes, in memory of the caller's (a
   filter's per-request state, which lives as long as the request). */
static inline csgi_start_response *
csgi_start_response__init(csgi_start_response *made, csgi_environ *env, csgi_start_response *parent,
                          csgi_start_response_fn fn, void *userdata)
{
    *made = (csgi_start_response){.environ = env, .parent = parent, .fn = fn, .userdata = userdata};
    return made;
}

#endif
