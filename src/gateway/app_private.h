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
};

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

#endif
