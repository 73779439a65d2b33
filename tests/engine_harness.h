/*
 * A test server and a raw socket client for the engine suites.
 *
 * The server runs csgi's engine on 127.0.0.1 port 0 in a thread of its own,
 * with a small set of behaviours chosen by the request path (see
 * engine_harness.c). The client is plain blocking sockets with timeouts, so
 * a test sends exactly the bytes it means and reads exactly what came back.
 */
#ifndef CSGI_TESTS_ENGINE_HARNESS_H
#define CSGI_TESTS_ENGINE_HARNESS_H

#include "http/engine.h"

#include <csgi/server.h>

#include <pthread.h>

#include <stdatomic.h>
#include <stddef.h>

typedef struct test_server {
    csgi_http__engine *engine;
    int port;
    char file_path[64]; /* a file served by /file */
    size_t file_size;
} test_server;

/* What the server's application saw, for assertions. */
typedef struct test_stats {
    atomic_int requests;      /* on_request calls */
    atomic_int done;          /* on_done calls */
    atomic_int done_ok;       /* on_done with err 0 */
    atomic_int last_error;    /* err of the last on_done */
    atomic_int done_twice;    /* on_done called twice for one request: must stay 0 */
    atomic_long max_buffered; /* largest csgi_http__response_buffered seen while streaming */
    atomic_int continue_seen; /* requests whose body was read */
} test_stats;

extern test_stats stats;

/* A log callback that drops every line. */
void quiet_log(int level, const char *message, void *userdata);

/* Options with the defaults, quiet logging. */
void test_options(csgi_http__options *options);

/* Start a server (options NULL = test_options). Fails the test on error. */
void server_start(test_server *server, const csgi_http__options *options);
/* Stop it (grace_ms for requests in progress), join and free. */
void server_stop(test_server *server, unsigned grace_ms);

/* A public csgi_server (csgi/server.h) running an application. */
typedef struct app_server {
    csgi_server *server;
    pthread_t thread;
    int port;
} app_server;

/* Serve app (takes it, as csgi_server_new does) on 127.0.0.1 port 0, with
   csgi_server_run in a thread of its own; options NULL = the defaults with
   quiet logging. Fails the test on error. */
void app_server_start(app_server *server, csgi_app *app, const csgi_server_options *options);
/* Stop it (1000 ms for requests in progress), join and free. */
void app_server_stop(app_server *server);

/* Connect to 127.0.0.1:port; fails the test on error. */
int client_connect(int port);
/* The same with a receive buffer of rcvbuf bytes, set before connecting so
   the window the server sees is small from the start: a client that reads
   slowly, or not at all. */
int client_connect_rcvbuf(int port, int rcvbuf);
/* The same from source, an IPv4 loopback address such as "127.0.0.2" (any
   of 127.0.0.0/8 is local on Linux): a client at another address. */
int client_connect_from(int port, const char *source);
/* Send all of data. Returns 0, or -1 if the peer is gone. */
int client_send(int fd, const void *data, size_t len);
int client_send_str(int fd, const char *s);
/* Read what arrives within timeout_ms into buf (NUL-terminated), up to cap-1
   bytes, stopping early at EOF or once `until` (if not NULL) appeared.
   Returns the byte count; *eof set when the peer closed. */
size_t client_read(int fd, char *buf, size_t cap, int timeout_ms, const char *until, int *eof);

/* How a request's body is sent: with the head in one write, in two
   writes after the head, a byte at a time, chunked (pieces of up to 1000
   bytes, with a pause after the first), or after the server's "100
   Continue". The answer must not depend on it. */
enum body_split {
    SPLIT_WITH_HEAD,
    SPLIT_TWO_WRITES,
    SPLIT_BYTE_BY_BYTE,
    SPLIT_CHUNKED,
    SPLIT_AFTER_CONTINUE,
    SPLIT_COUNT
};
extern const char *const body_split_names[SPLIT_COUNT];

/* POST body (len bytes) to path, with headers (CRLF-terminated lines, or
   "") and Content-Length or chunked framing, split as asked. 0, or -1 when
   the peer went away or answered something else than 100 Continue first. */
int client_send_post(int fd, const char *path, const char *headers, const char *body, size_t len,
                     enum body_split split);

/* A parsed response. */
typedef struct test_response {
    int status;
    char headers[4096]; /* raw header block, lines with CRLF */
    char *body;         /* malloc'd, NUL-terminated; free with response_free */
    size_t body_len;
    int chunked;
    int closed; /* the server closed after it */
} test_response;

/* Read exactly one response (body by Content-Length, chunked, or until
   close; none for HEAD when head_request). Returns 0, or -1 on a timeout
   or malformed response. Leftover bytes stay in the client's buffer. */
int client_response(int fd, test_response *response, int head_request, int timeout_ms);
void response_free(test_response *response);
/* The value of header name in response (case-insensitive), or NULL. Static buffer. */
const char *response_header(const test_response *response, const char *name);

/* Wait until the server's connection count is n (or timeout). Returns 1 on success. */
int wait_connections(test_server *server, size_t n, int timeout_ms);
/* Wait until stats.done reaches n. Returns 1 on success. */
int wait_done(int n, int timeout_ms);
/* 1 when the peer closed the connection within timeout_ms (reading and
   discarding whatever else arrives). */
int client_closed(int fd, int timeout_ms);

long now_ms(void);

#endif
