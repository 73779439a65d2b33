/*
 * The csgi.input stream's insides (internal), shared by the environ, which
 * holds the server's stream, and input.c, which reads it.
 */
#ifndef CSGI_GATEWAY_INPUT_H
#define CSGI_GATEWAY_INPUT_H

#include "gateway/environ_private.h"

#include <csgi/environ.h>

#include <stdint.h>

enum csgi_input__status { CSGI_INPUT__READING = 0, CSGI_INPUT__ENDED = 1 }; /* or an error */

struct csgi_input {
    csgi_environ *environ;
    /* The server's stream reads this source's provider (NULL for a
       middleware's stream, which reads through type). */
    const csgi_environ__source *source;
    /* Bytes read from the provider but not yet delivered, which readline
       and read_all keep between calls: [start, end) of buffer. */
    char *buffer;
    size_t start, end, capacity;
    uint64_t pulled; /* bytes read from the provider in all */
    int status;      /* enum csgi_input__status, or the provider's error (sticky) */
    csgi_input_ready_fn ready;
    void *ready_userdata;
    /* A middleware's stream (csgi_input_new): it reads through type. */
    const csgi_input_type *type;
    void *state;
    int64_t length; /* a middleware stream's byte count, or -1 */
    int64_t limit;  /* the most bytes it lets through (csgi_input_set_limit), or -1 */
};

/* Set up the server's stream of environ, reading source's provider. */
void csgi_input__init(csgi_input *input, csgi_environ *environ, const csgi_environ__source *source);

#endif
