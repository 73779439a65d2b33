/*
 * The in-process test client's insides (internal), shared by its files:
 * request.c builds requests, response.c holds what an application
 * answered, client.c runs a request through the server's code with a
 * memory sink.
 */
#ifndef CSGI_TESTING_PRIVATE_H
#define CSGI_TESTING_PRIVATE_H

#include "common/arena.h"

#include <csgi/testing.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- Requests (request.c) ------------------------------------------------------- */

/* A header field or an environ override, in the request's arena. */
typedef struct csgi_test__pair {
    struct csgi_test__pair *next;
    const char *name;
    const char *value;
} csgi_test__pair;

struct csgi_test_request {
    csgi_arena arena; /* the request's copies */
    const char *method;
    const char *target;
    const char *host;
    const char *scheme;
    unsigned default_port;
    csgi_test__pair *headers; /* in order */
    csgi_test__pair **headers_tail;
    csgi_test__pair *overrides;
    csgi_test__pair **overrides_tail;
    const char *body;
    size_t body_len;
    int has_body;
    struct sockaddr_storage peer;
    unsigned timeout_ms;
};

/* Store a numeric address and port in storage: 0 or CSGI_EINVAL. */
int csgi_test__set_peer(struct sockaddr_storage *storage, const char *address, unsigned port);

/* ---- Responses (response.c) ----------------------------------------------------- */

typedef struct csgi_test__field {
    const char *name;
    const char *value;
} csgi_test__field;

struct csgi_test_response {
    csgi_arena arena; /* status, fields and log lines */
    const char *status;
    int code;
    csgi_test__field *fields;
    size_t field_count;
    char *body; /* csgi__realloc'd, NUL-terminated when not NULL */
    size_t body_len;
    size_t body_capacity;
    const char **logs; /* csgi__realloc'd */
    size_t log_count;
    size_t log_capacity;
    int cut;
};

/* An empty response, or NULL when memory is exhausted. */
csgi_test_response *csgi_test__response_new(void);

/* Keep a log line. A line that does not fit is dropped: logging cannot fail. */
void csgi_test__response_log(csgi_test_response *response, const char *line);

/* Append body bytes: 0, CSGI_ETOOBIG (over CSGI_TEST_BODY_MAX), CSGI_ENOMEM. */
int csgi_test__response_append(csgi_test_response *response, const void *data, size_t len);

/* Set the status and fields from a "Name: value\r\n" block plus an
   optional Content-Length (length >= 0). 0 or CSGI_ENOMEM. */
int csgi_test__response_set_head(csgi_test_response *response, int code, const char *reason,
                                 size_t reason_len, const char *block, size_t block_len,
                                 int64_t length);

/* Replace the response with the engine's own error page for code
   (src/http/response.c csgi_http__queue_error_response). */
int csgi_test__response_set_error(csgi_test_response *response, int code);

#endif
