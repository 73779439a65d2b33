/*
 * The response object (internal): shared by response.c (building and
 * sending) and errors.c (HTTP error responses and their bodies).
 */
#ifndef CSGI_HELPERS_RESPONSE_PRIVATE_H
#define CSGI_HELPERS_RESPONSE_PRIVATE_H

#include <csgi/response.h>

#include <stddef.h>
#include <stdint.h>

enum csgi_response__body_kind {
    CSGI_RESPONSE__EMPTY,
    CSGI_RESPONSE__BYTES,
    CSGI_RESPONSE__FILE,
    CSGI_RESPONSE__STREAM,
    CSGI_RESPONSE__APP,
    CSGI_RESPONSE__ERROR /* an error page, rendered when sent (errors.c) */
};

typedef struct csgi_response__field {
    char *name; /* NUL-terminated, in the response's memory */
    char *value;
} csgi_response__field;

typedef union csgi_response__block csgi_response__block;

struct csgi_response {
    csgi_environ *environ;        /* NULL: a heap response */
    csgi_response__block *blocks; /* a heap response's memory */
    int status;
    const char *reason; /* static, or in the response's memory */
    csgi_response__field *fields;
    size_t field_count;
    size_t field_capacity;
    int conditional;

    int body_kind;
    const void *data; /* BYTES */
    size_t len;
    int data_owned; /* data is in the response's memory */
    int fd;         /* FILE: owned, -1 when none */
    int64_t offset;
    int64_t length;
    const csgi_body_type *stream_type; /* STREAM: state owned until sent */
    void *stream_state;
    const csgi_body *stream_length_of; /* STREAM: whose length it has, or NULL */
    csgi_app *app;                     /* APP: one reference owned */
    const char *detail;                /* ERROR: copied, or NULL */
};

/* Memory that lives as long as the response (the request's arena, or a
   block freed with a heap response). NULL when exhausted. */
void *csgi_response__alloc(csgi_response *response, size_t size);

/* A copy of s in the response's memory, or NULL. */
char *csgi_response__strdup(csgi_response *response, const char *s);

/* The error page of status (errors.c), in the request's arena: body,
   length and Content-Type value. Rendered with the renderer fixed for the
   request (csgi.error_format), else, when negotiate, chosen by Accept,
   else the text page. Returns 0 or CSGI_ENOMEM. */
int csgi_response__error_body(csgi_environ *environ, int status, const char *detail, int negotiate,
                              const char **body, size_t *len, const char **content_type);

/* A streaming body that relays inner has inner's length, read when the
   head goes out (csgi_body__length_from): csgi_handler_forward_then keeps
   the length of the application's iterator, even one declared late. */
void csgi_response__set_stream_length_of(csgi_response *response, const csgi_body *inner);

#endif
