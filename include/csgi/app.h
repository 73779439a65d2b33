/**
 * @file csgi/app.h
 * @brief Applications, start-response and response bodies: the protocol.
 *
 * An application is called with an environ and a start-response. It calls
 * start-response with a status line and headers (now, or later) and returns
 * a body: bytes, a file, or an iterator the server pulls as the client
 * reads. This is PEP 3333 in C:
 *
 * @code
 * static csgi_body *hello(void *state, csgi_environ *environ,
 *                         csgi_start_response *start_response)
 * {
 *     static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/html")};
 *     csgi_start_response_call(start_response, "200 OK", headers, 1, NULL);
 *     return csgi_body_static(environ, "Hello World", 11);
 * }
 * static const csgi_app_type hello_type = {"hello", hello, NULL};
 * @endcode
 *
 * Middleware is an application that holds the next one (it takes it: the
 * middleware's destroy frees it, so freeing the outermost application frees
 * the pipeline). It may change the environ, answer by itself, pass its own
 * start-response down (csgi_start_response_new()) to see and change the
 * status and headers, and wrap the body (csgi_body_new() over
 * csgi_body_next()). docs/middleware.md has worked examples.
 */
#ifndef CSGI_APP_H
#define CSGI_APP_H

#include "common.h"
#include "environ.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A header field: name and value with their lengths (not NUL-terminated). */
typedef struct csgi_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} csgi_header;

/** A csgi_header from two string literals. */
#define CSGI_HEADER(name, value)                             \
    {                                                        \
        (name), sizeof(name) - 1, (value), sizeof(value) - 1 \
    }

/** An application (opaque, reference-counted). */
typedef struct csgi_app csgi_app;
/** The start-response an application is called with (opaque, per request). */
typedef struct csgi_start_response csgi_start_response;
/** A response body (opaque, per request). */
typedef struct csgi_body csgi_body;

/**
 * What an application does.
 *
 * call: handle one request. Returns the response body, or NULL when the
 * application failed (the server then answers 500 if nothing was sent, and
 * logs it). State is the application's own (csgi_app_new()).
 *
 * destroy: release state (and, for middleware, the next application); may be
 * NULL. Runs when the last reference to the application goes.
 */
typedef struct csgi_app_type {
    const char *name; /**< for logs and configuration dumps */
    csgi_body *(*call)(void *state, csgi_environ *environ, csgi_start_response *start_response);
    void (*destroy)(void *state);
} csgi_app_type;

/**
 * Create an application.
 *
 * @param out   where to store it (reference count 1)
 * @param type  what it does: borrowed, must outlive the application (a
 *              static const table)
 * @param state its state; taken: type->destroy(state) runs when the
 *              application is freed, and also when this call fails
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_app_new(csgi_app **out, const csgi_app_type *type, void *state);

/**
 * Take one more reference (for an application shared by several routes).
 *
 * @return app, whose new reference the caller owns (csgi_app_free()).
 */
CSGI_EXTERN csgi_app *csgi_app_ref(csgi_app *app);

/** Drop a reference; the last one destroys the application. Accepts NULL. */
CSGI_EXTERN void csgi_app_free(csgi_app *app);

/** The application's state as given to csgi_app_new() (borrowed). */
CSGI_EXTERN void *csgi_app_state(const csgi_app *app);

/** The application's type name (borrowed from its type). */
CSGI_EXTERN const char *csgi_app_name(const csgi_app *app);

/**
 * Call an application: what middleware does with the next application.
 *
 * @param app            the application (borrowed)
 * @param environ        the request's environ (borrowed)
 * @param start_response the start-response to give it (borrowed)
 * @return the body it returned (in the request's arena; the caller passes
 *         it on or closes it with csgi_body_close()), or NULL when it failed.
 */
CSGI_EXTERN csgi_body *csgi_app_call(csgi_app *app, csgi_environ *environ,
                                     csgi_start_response *start_response);

struct event_base;

/**
 * The libevent loop running the request, for an application that answers
 * later: it sets its timers or its own I/O on this loop, then calls
 * csgi_body_resume() from their callbacks.
 *
 * @return the loop (borrowed), or NULL when the request runs without one.
 *         The in-process test client (csgi/testing.h) runs a loop of its
 *         own for the request and returns it.
 */
CSGI_EXTERN struct event_base *csgi_environ_event_base(csgi_environ *environ);

/* ---- start-response ----------------------------------------------------- */

/**
 * Start the response.
 *
 * status: a status line such as "200 OK": three digits, a space and a reason
 * phrase. headers: the response's header fields (borrowed for the call;
 * copied). Names must be tokens, values free of CR, LF and NUL, and
 * hop-by-hop fields (Connection, Keep-Alive, Transfer-Encoding, TE, Trailer,
 * Upgrade, Proxy-*) are the server's business, not the application's.
 *
 * exc_info: NULL normally. Calling start-response a second time is allowed
 * only with exc_info (a description of the error that made the application
 * change its answer): the new status and headers replace the old ones if
 * nothing was sent yet; if the headers are already on their way, the server
 * cuts the connection, as re-raising the exception does in WSGI.
 *
 * @return 0; CSGI_EINVAL (malformed status or headers: the server answers
 *         500 and logs the reason), CSGI_ESTATE (called twice without
 *         exc_info), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_start_response_call(csgi_start_response *start_response, const char *status,
                                         const csgi_header *headers, size_t count,
                                         const char *exc_info);

/**
 * The legacy write function of PEP 3333: send body bytes before the
 * returned body. Only after start-response.
 *
 * @param data len bytes (copied)
 * @return 0, CSGI_ESTATE, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_start_response_write(csgi_start_response *start_response, const void *data,
                                          size_t len);

/**
 * What middleware does when the application behind it starts its response
 * (see csgi_start_response_new()).
 *
 * @param status   the status line (borrowed for the call)
 * @param headers  count header fields (borrowed for the call)
 * @param exc_info as given to csgi_start_response_call()
 * @param userdata what was given to csgi_start_response_new()
 * @return as csgi_start_response_call().
 */
typedef int (*csgi_start_response_fn)(const char *status, const csgi_header *headers, size_t count,
                                      const char *exc_info, void *userdata);

/**
 * A start-response of the middleware's own, to pass to the next application:
 * it calls fn, which typically changes the status or headers and calls
 * csgi_start_response_call() on parent. Writes go to parent.
 *
 * @param environ  the request's environ (the object lives in its arena)
 * @param parent   the start-response the middleware was called with (borrowed)
 * @param fn       the callback
 * @param userdata passed to fn, last
 * @return the start-response (borrowed: it lives in the request's arena), or
 *         NULL when memory is exhausted.
 */
CSGI_EXTERN csgi_start_response *csgi_start_response_new(csgi_environ *environ,
                                                         csgi_start_response *parent,
                                                         csgi_start_response_fn fn, void *userdata);

/* ---- Bodies --------------------------------------------------------------- */

/** A piece of body. */
typedef struct csgi_chunk {
    const void *data; /**< valid until the next call on the body, or its close */
    size_t len;
} csgi_chunk;

/**
 * A body produced piece by piece (an iterator in WSGI terms).
 *
 * next: produce the next piece. Returns 1 with *chunk set, 0 at the end,
 * CSGI_EAGAIN when the next piece is not ready (call csgi_body_resume()
 * when it is: this is how an application answers later, from a timer or its
 * own I/O), or a negative error (the server cuts the response).
 *
 * close: release state; called exactly once, whether the body ended, the
 * client went away or an error happened. May be NULL.
 */
typedef struct csgi_body_type {
    const char *name;
    int (*next)(void *state, csgi_chunk *chunk);
    void (*close)(void *state);
} csgi_body_type;

/**
 * A body from an iterator.
 *
 * @param environ the request's environ (the body lives in its arena)
 * @param type    borrowed, must outlive the request
 * @param state   taken: type->close(state) runs exactly once, also when this
 *                call fails
 * @return the body (borrowed: it lives in the request's arena), or NULL when
 *         memory is exhausted.
 */
CSGI_EXTERN csgi_body *csgi_body_new(csgi_environ *environ, const csgi_body_type *type,
                                     void *state);

/** A body of len bytes, copied into the request's arena (borrowed). NULL on ENOMEM. */
CSGI_EXTERN csgi_body *csgi_body_bytes(csgi_environ *environ, const void *data, size_t len);

/**
 * A body of len bytes that outlive the request (a string literal): borrowed,
 * not copied. The body lives in the request's arena; NULL on ENOMEM.
 */
CSGI_EXTERN csgi_body *csgi_body_static(csgi_environ *environ, const void *data, size_t len);

/**
 * A body of length bytes of a file from offset, sent with sendfile(2) when
 * nothing wraps it.
 *
 * @param fd taken: closed when the request ends, also when this call fails
 * @return the body (in the request's arena), or NULL (CSGI_ENOMEM or a negative offset or length).
 */
CSGI_EXTERN csgi_body *csgi_body_file(csgi_environ *environ, int fd, int64_t offset,
                                      int64_t length);

/** What a body is, which decides how the server sends it. */
typedef enum csgi_body_kind {
    CSGI_BODY_BYTES,   /**< csgi_body_bytes(), csgi_body_static(): bytes in memory */
    CSGI_BODY_FILE,    /**< csgi_body_file(): a range of a file, sent with sendfile(2) */
    CSGI_BODY_ITERATOR /**< csgi_body_new(): pieces pulled with csgi_body_next() */
} csgi_body_kind;

/**
 * The kind of a body: what a middleware looks at before it wraps a body
 * or passes it on as it is (bytes and files keep their fast paths only
 * when nothing wraps them).
 */
CSGI_EXTERN csgi_body_kind csgi_body_kind_of(const csgi_body *body);

/**
 * The bytes of a bytes body (csgi_body_bytes(), csgi_body_static()),
 * without pulling it.
 *
 * @param body a body of any kind (not NULL)
 * @param len  where to store the byte count (may be NULL)
 * @return the bytes (borrowed: they outlive the request), or NULL (with
 *         *len 0) for files and iterators.
 */
CSGI_EXTERN const void *csgi_body_data(const csgi_body *body, size_t *len);

/**
 * Take the file of a file body (csgi_body_file()) not pulled yet, to send
 * it another way (a response object that answers ranges, a cache).
 *
 * @param body   a file body (not NULL)
 * @param fd     where to store the file descriptor (owned by the caller
 *               from here: closing the body no longer closes it)
 * @param offset where to store the range's first byte (may be NULL)
 * @param length where to store the range's length (may be NULL)
 * @return 0; CSGI_EINVAL (not a file body, or fd NULL); CSGI_ESTATE (the
 *         body was closed, or its file taken already).
 */
CSGI_EXTERN int csgi_body_take_file(csgi_body *body, int *fd, int64_t *offset, int64_t *length);

/**
 * The body's length when known in advance: bytes, files, and iterators
 * whose length was declared with csgi_body_set_length(); else -1.
 */
CSGI_EXTERN int64_t csgi_body_length(const csgi_body *body);

/**
 * Declare how many bytes an iterator body will produce, so that the server
 * sends a Content-Length instead of chunked framing (or, for HTTP/1.0, a
 * close). A filter that wraps a body without changing its length passes
 * it on: csgi_body_set_length(mine, csgi_body_length(inner)). The server
 * reads the length when it sends the head, with the body's first piece, so
 * a body may declare it from inside its first next() (a filter whose inner
 * body answers late passes the length on there).
 *
 * The server holds the body to it as to a Content-Length header: more
 * bytes, or fewer when the body ends, cut the response (500 when nothing
 * was sent) with a line on the error log; a Content-Length header that
 * disagrees gives a 500.
 *
 * @param body   an iterator body (csgi_body_new()) that gave no piece yet
 * @param length the byte count, or -1 for unknown (the default)
 * @return 0; CSGI_EINVAL (not an iterator, or length below -1); CSGI_ESTATE
 *         (closed).
 */
CSGI_EXTERN int csgi_body_set_length(csgi_body *body, int64_t length);

/**
 * Pull the next piece of a body: what a middleware that wraps the body does
 * with the body of the application behind it. Same results as
 * csgi_body_type.next: chunk->data is borrowed until the next call on the
 * body or its close.
 */
CSGI_EXTERN int csgi_body_next(csgi_body *body, csgi_chunk *chunk);

/** Close a body (its close runs once; later calls do nothing). Accepts NULL. */
CSGI_EXTERN void csgi_body_close(csgi_body *body);

/**
 * Tell the server that a body which answered CSGI_EAGAIN can go on (from
 * any callback on the request's loop thread). Wrapped bodies need not
 * forward this: the server pulls the outermost body again.
 */
CSGI_EXTERN void csgi_body_resume(csgi_body *body);

#ifdef __cplusplus
}
#endif

#endif /* CSGI_APP_H */
