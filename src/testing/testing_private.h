/*
 * The in-process test client's insides (internal), shared by its files:
 * request.c builds requests, response.c holds what an application
 * answered, client.c runs a request through the server's code with a
 * memory sink, upload.c sends the request body as a client would.
 */
#ifndef CSGI_TESTING_PRIVATE_H
#define CSGI_TESTING_PRIVATE_H

#include "common/arena.h"
#include "common/tls_info.h"
#include "gateway/driver.h"
#include "gateway/environ_private.h"
#include "http/parser.h"

#include <csgi/testing.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

struct event;
struct event_base;

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
    csgi_test_delivery delivery;
    size_t piece_size;      /* bytes a piece (and a chunk), 0 for all */
    int chunked;            /* csgi_test_request_set_chunked() */
    unsigned max_redirects; /* csgi_test_request_set_follow_redirects() */
    int has_tls;            /* csgi_test_request_set_tls() */
    csgi_tls__info tls;     /* its strings in arena */
};

/* Store a numeric address and port in storage: 0 or CSGI_EINVAL. */
int csgi_test__set_peer(struct sockaddr_storage *storage, const char *address, unsigned port);

/* The Host the request sends: its own Host field, else the URL's. */
const char *csgi_test__request_authority(const csgi_test_request *request);

/* The request's URL, "scheme://host[:port]/target" with the scheme's
   default port left out, in arena; NULL when memory is exhausted. */
char *csgi_test__request_url(const csgi_test_request *request, csgi_arena *arena);

/* The length of the path of the request's target (up to '?'). */
size_t csgi_test__request_path_len(const csgi_test_request *request);

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
    int continued;    /* "100 Continue" was sent */
    const char *url;  /* the request's URL */
    size_t redirects; /* redirects followed to get here */
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

/* ---- The request body on the wire (upload.c) ------------------------------------ */

/* The body as the client sends it and the server's side of it: the bytes
   after the head, what reached the server, and what its decoder made of
   them for csgi.input, as in the engine's csgi_http__request. */
typedef struct csgi_test__upload {
    const char *wire; /* what the client sends after the head: the body, framed */
    size_t wire_len;
    size_t sent;       /* wire bytes that reached the server */
    size_t consumed;   /* wire bytes the server's decoder took */
    size_t chunk_data; /* body bytes sent in the client's chunks so far */
    char *data;        /* decoded bytes csgi.input reads: [start, end) */
    size_t start, end;
    uint64_t left; /* Content-Length bytes still to arrive */
    csgi_http__chunked decoder;
    struct event *arrival;        /* the next piece, one turn of the loop later */
    int error;                    /* when the body failed: what csgi.input reads */
    int status;                   /* when the body failed: the server's answer */
    const char *why;              /* when the body failed: static text for the log */
    unsigned char framing;        /* the head's: enum csgi_http__body */
    unsigned char client_chunks;  /* the client framed the chunks: one a piece */
    unsigned char has_body;       /* a body was announced and had bytes to come */
    unsigned char state;          /* upload.c's enum upload_state */
    unsigned char waiting;        /* a reader got CSGI_EAGAIN: tell it of news */
    unsigned char continue_state; /* upload.c's enum continue_state */
} csgi_test__upload;

/* ---- The cookie jar (cookies.c) ------------------------------------------------- */

/* The most cookies a jar holds (RFC 6265 6.1 asks for at least 3000). */
#define CSGI_TEST__COOKIES_MAX 3000

typedef struct csgi_test__cookie csgi_test__cookie;

typedef struct csgi_test__jar {
    csgi_test__cookie **cookies; /* csgi__malloc'd, in the Cookie header's order */
    size_t count;
    size_t capacity;
    uint64_t sequence; /* creation times: a counter, so the order is exact */
} csgi_test__jar;

void csgi_test__jar_init(csgi_test__jar *jar);

/* Free every cookie. The jar is empty and usable after. */
void csgi_test__jar_clear(csgi_test__jar *jar);

/* The host of an authority without its port, lower-cased, into out (size
   bytes): 1, or 0 when it does not fit. */
int csgi_test__cookie_host(const char *authority, char *out, size_t size);

/* Store a Set-Cookie field value received for a request to host (from
   csgi_test__cookie_host) and path (path_len bytes) at time now. 0 (also
   when the cookie was deleted); CSGI_EINVAL when RFC 6265 says to ignore
   it; CSGI_ETOOBIG (a full jar), CSGI_ENOMEM. */
int csgi_test__jar_store(csgi_test__jar *jar, const char *set_cookie, const char *host,
                         const char *path, size_t path_len, time_t now);

/* The Cookie field value for a request (csgi__malloc'd, for csgi__free),
   or NULL in *out when no cookie matches. 0 or CSGI_ENOMEM. */
int csgi_test__jar_header(const csgi_test__jar *jar, int secure, const char *host, const char *path,
                          size_t path_len, time_t now, char **out);

/* The value of the first live cookie named name, or NULL. */
const char *csgi_test__jar_get(const csgi_test__jar *jar, const char *name, time_t now);

/* The number of live cookies. */
size_t csgi_test__jar_count(const csgi_test__jar *jar, time_t now);

/* ---- A run (client.c) ----------------------------------------------------------- */

/* One request through an application: the server's response driver with
   the memory sink, and the request's loop. */
typedef struct csgi_test__run {
    csgi_test_request *request;
    csgi_test_response *response;
    csgi_driver driver; /* the environ's owner */
    csgi_environ__source source;
    csgi_environ *environ;
    csgi_test__upload upload;

    struct event_base *base;
    struct event *timer;
    int error;      /* the run's own failure: CSGI_ENOMEM, CSGI_ETOOBIG, CSGI_ETIMEDOUT */
    int head_sent;  /* the sink has the head */
    int ended;      /* the server ended the request early (a broken body) */
    unsigned holds; /* the sink's hold calls not yet released: the run waits */
} csgi_test__run;

/* One request with the jar's cookies (when jar is not NULL): the Cookie
   field for its URL, and the Set-Cookie fields of its response stored
   (session.c). As csgi_test__run_once() otherwise. */
int csgi_test__exchange(csgi_test_response **out, csgi_test_request *request, csgi_app *app,
                        csgi_test__jar *jar);

/* Run request through app, following its redirects (redirect.c), with
   the jar's cookies when jar is not NULL: csgi_test_request_run() and
   csgi_test_session_run(). */
int csgi_test__follow(csgi_test_response **out, csgi_test_request *request, csgi_app *app,
                      csgi_test__jar *jar);

/* GET url through app with the jar's cookies (jar may be NULL):
   csgi_test_get() and csgi_test_session_get(). */
int csgi_test__get(csgi_test_response **out, const char *url, csgi_app *app, csgi_test__jar *jar);

/* Run request through app once, adding a Cookie field with the value
   cookie when it is not NULL: csgi_test_request_run() without redirects. */
int csgi_test__run_once(csgi_test_response **out, csgi_test_request *request, csgi_app *app,
                        const char *cookie);

/* The request's loop, made on first use; NULL when memory is exhausted. */
struct event_base *csgi_test__run_base(csgi_test__run *run);

/* Record the run's own failure (the first one wins); returns rc. */
int csgi_test__run_failed(csgi_test__run *run, int rc);

/* End the request as the engine does when its body breaks: status and
   its page when nothing was sent yet, else a cut; why is logged. */
void csgi_test__run_abort(csgi_test__run *run, int status, const char *why);

/* The framing field the client adds for the request's body
   ("Transfer-Encoding: chunked\r\n", "Content-Length: N\r\n"), written at
   out (room for 48 bytes); returns its length, 0 for none. */
size_t csgi_test__upload_field(const csgi_test_request *request, char *out);

/* Prepare the body of a run whose head is parsed, in the run's arena: what
   the client sends, what arrives with the head (decoded before the
   application runs, as the engine does) and the first late piece. 0;
   CSGI_EPARSE when the bytes that came with the head are refused (the
   server answers before any application runs); CSGI_ENOMEM. */
int csgi_test__upload_start(csgi_test__run *run, const csgi_http__head *head, csgi_arena *arena);

/* csgi.input's provider; its context is the run. */
extern const csgi_input__provider csgi_test__upload_input;

#endif
