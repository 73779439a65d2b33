/**
 * @file csgi/handler.h
 * @brief Handlers: applications and filters written as "request in,
 *        response out" (what webob.dec.wsgify is to WSGI).
 *
 * A handler is a function that gets the request (csgi/request.h) and
 * returns the response to send (csgi/response.h). An adapter turns it into
 * an ordinary csgi application, so handlers mix freely with raw
 * applications, middleware and INI pipelines; the raw protocol stays
 * underneath.
 *
 * @code
 * static csgi_response *hello(csgi_request *request, void *userdata)
 * {
 *     csgi_response *response = csgi_handler_response(request);
 *     if (response)
 *         csgi_response_set_text(response, "Hello World\n", "utf-8");
 *     return response;
 * }
 * ...
 * csgi_app *app;
 * csgi_handler_app(&app, "hello", hello, NULL, NULL);
 * @endcode
 *
 * A handler runs exactly once per request. An application handler is
 * called when its request's body has all arrived: the adapter gathers it
 * first (in memory up to a threshold, in a temporary file past it, up to
 * a maximum that is answered 413 without reading a byte when the
 * announced length is over it), so the body readers of csgi/request.h
 * (csgi_request_json(), csgi_request_form(), csgi_request_body()) have
 * everything and never answer CSGI_EAGAIN. A "100 Continue" goes out when
 * the gathering starts, that is only when no filter in front answered
 * first. csgi_handler_options sets the limits, or makes the handler a
 * streaming one that reads the body as it comes (csgi_handler_read_body()).
 *
 * A handler returns one of:
 *  - a response it made with csgi_handler_response() (or
 *    csgi_response_new() on the request's environ) and filled in;
 *  - an HTTP error: csgi_handler_error(request, 404, "no such image");
 *  - the request handed to another application:
 *    csgi_handler_forward(request, app) (a filter forwards to its next
 *    application this way), or csgi_handler_forward_then(request, app, fn,
 *    state) to change that application's response when it starts;
 *  - csgi_handler_read_body(request, reader, state): the body is read
 *    piece by piece into the reader, whose end function returns the
 *    response;
 *  - NULL, when it failed (out of memory): the client gets a 500 and the
 *    error log a line.
 *
 * A filter handler also gets the next application. It runs once, when the
 * request's head is there, and does not wait for the body: a body it
 * forwards reaches the next application as it arrives, so an upload
 * behind an authentication filter still streams. It can answer by itself
 * (an error), forward, or forward and change the response
 * (csgi_handler_forward_then(): the status, headers and body of whatever
 * the next application answers, at once or later). A filter that needs
 * the body itself asks for it with CSGI_HANDLER_BODY_GATHER.
 *
 * State for one request lives in the request's arena
 * (csgi_environ_alloc() on csgi_request_environ()): a handler's locals,
 * the state pointer given to csgi_handler_forward_then() or
 * csgi_handler_read_body(), both freed when the request ends.
 */
#ifndef CSGI_HANDLER_H
#define CSGI_HANDLER_H

#include "app.h"
#include "common.h"
#include "environ.h"
#include "loader.h"
#include "request.h"
#include "response.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * An application handler.
 *
 * @param request  the request (borrowed, valid until the request ends)
 * @param userdata what was given to csgi_handler_app()
 * @return the response to send (see the file comment), or NULL for a 500.
 */
typedef csgi_response *(*csgi_handler_fn)(csgi_request *request, void *userdata);

/**
 * A filter handler: like csgi_handler_fn, with the application it wraps.
 *
 * @param next the wrapped application (borrowed: the filter owns it)
 */
typedef csgi_response *(*csgi_filter_handler_fn)(csgi_request *request, csgi_app *next,
                                                 void *userdata);

/**
 * Make an application from a handler.
 *
 * @param out      where to store the application
 * @param name     its name in logs (copied; NULL: "handler")
 * @param handler  the handler
 * @param userdata passed to every call (may be NULL)
 * @param destroy  run on userdata when the application is freed, and when
 *                 this call fails (may be NULL)
 * @return 0, CSGI_EINVAL (no handler), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_handler_app(csgi_app **out, const char *name, csgi_handler_fn handler,
                                 void *userdata, csgi_destroy_fn destroy);

/**
 * Make a filter from a filter handler, wrapping next.
 *
 * @param next the application to wrap; taken, also when this call fails
 * @return 0, CSGI_EINVAL (no handler or next), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_handler_filter(csgi_app **out, const char *name,
                                    csgi_filter_handler_fn handler, csgi_app *next, void *userdata,
                                    csgi_destroy_fn destroy);

/* ---- Options ----------------------------------------------------------------- */

/** Version of csgi_handler_options; CSGI_HANDLER_OPTIONS_INIT sets it. */
#define CSGI_HANDLER_OPTIONS_VERSION 1

/** What the adapter does with the request body before the handler runs. */
typedef enum csgi_handler_body {
    /** Application handlers gather; filter handlers pass the body on. */
    CSGI_HANDLER_BODY_DEFAULT = 0,
    /** Gather the whole body first (a filter that reads the body). */
    CSGI_HANDLER_BODY_GATHER,
    /** Run at once; the handler reads with csgi_handler_read_body(). */
    CSGI_HANDLER_BODY_STREAM
} csgi_handler_body;

/** Handler options. Start from CSGI_HANDLER_OPTIONS_INIT; 0 means the default. */
typedef struct csgi_handler_options {
    unsigned version;          /**< CSGI_HANDLER_OPTIONS_VERSION */
    csgi_handler_body body;    /**< CSGI_HANDLER_BODY_DEFAULT */
    uint64_t max_body;         /**< bytes taken at most (gathered or streamed), else 413: 1 MiB */
    size_t body_buffer_size;   /**< bytes kept in memory, past them a file: 16 KiB */
    const char *body_temp_dir; /**< where the file goes (copied): $TMPDIR, else /tmp */
} csgi_handler_options;

/** Initializer for csgi_handler_options: every field its default. */
#define CSGI_HANDLER_OPTIONS_INIT                                           \
    {                                                                       \
        CSGI_HANDLER_OPTIONS_VERSION, CSGI_HANDLER_BODY_DEFAULT, 0, 0, NULL \
    }

/** The default of csgi_handler_options.max_body. */
#define CSGI_HANDLER_MAX_BODY_DEFAULT (1024u * 1024u)
/** The default of csgi_handler_options.body_buffer_size. */
#define CSGI_HANDLER_BODY_BUFFER_DEFAULT (16u * 1024u)

/**
 * Set the options of an application or filter made by csgi_handler_app()
 * or csgi_handler_filter(), before it serves requests.
 *
 * @param app     the handler's application (borrowed)
 * @param options the options (copied)
 * @return 0; CSGI_EINVAL (not a handler's application, an unknown
 *         options version or body value), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_handler_set_options(csgi_app *app, const csgi_handler_options *options);

/* ---- What a handler returns ------------------------------------------------ */

/**
 * A new, empty response for the request: 200 OK, no headers, no body; it
 * lives in the request's arena.
 *
 * @return the response, or NULL when memory is exhausted.
 */
CSGI_EXTERN csgi_response *csgi_handler_response(csgi_request *request);

/**
 * An HTTP error response for the request (csgi_response_error(): the body
 * is HTML, JSON or text as the client's Accept prefers).
 *
 * @param status 300-599 with a standard reason
 * @param detail more words for the client (copied), or NULL
 * @return the response, or NULL (an unknown status, or out of memory).
 */
CSGI_EXTERN csgi_response *csgi_handler_error(csgi_request *request, int status,
                                              const char *detail);

/**
 * A response that hands the request to app: the adapter calls app with the
 * request's environ and start-response, and what app answers is the
 * answer.
 *
 * @param app the application (borrowed; a reference is kept for the
 *            request's life)
 * @return the response, or NULL when memory is exhausted.
 */
CSGI_EXTERN csgi_response *csgi_handler_forward(csgi_request *request, csgi_app *app);

/**
 * What csgi_handler_forward_then() calls when the application it forwards
 * to starts its response.
 *
 * @param request  the request (borrowed)
 * @param response the application's response: its status, its headers
 *                 (all but Content-Length, which the body decides) and
 *                 its body, not read yet; change them, or make another
 *                 response (an error) and return that
 * @param state    what was given to csgi_handler_forward_then()
 * @return the response to send, as a handler's return value (NULL: 500).
 */
typedef csgi_response *(*csgi_handler_then_fn)(csgi_request *request, csgi_response *response,
                                               void *state);

/**
 * Hand the request to app and change its answer: once app has started its
 * response (before its call returns, or later from its body, as an
 * application that waits for a timer or for the request body does), fn
 * gets it as a response object and returns what is sent. This is what
 * WebOb's request.get_response(app) is for, without waiting: fn runs
 * exactly once, whenever the answer comes.
 *
 * Only as a handler's return value (the adapter runs it).
 *
 * @param app   the application (borrowed; a reference is kept for the
 *              request's life)
 * @param fn    what changes the response
 * @param state passed to fn (per-request state: csgi_environ_alloc())
 * @return the response to return, or NULL (out of memory, not inside a
 *         handler, or no app or fn).
 */
CSGI_EXTERN csgi_response *csgi_handler_forward_then(csgi_request *request, csgi_app *app,
                                                     csgi_handler_then_fn fn, void *state);

/**
 * How a handler reads a body piece by piece (csgi_handler_read_body()).
 * Both functions run once per piece or once in all, never again for the
 * same bytes, on the loop thread.
 */
typedef struct csgi_body_reader_type {
    const char *name; /**< for logs */
    /**
     * The next piece of the body (borrowed for the call).
     * @return 0 to go on; any other value stops reading, and is passed to
     *         end as its result (use positive values of your own).
     */
    int (*data)(void *state, csgi_request *request, const void *data, size_t len);
    /**
     * The end of reading, once: result 0 when the whole body was read, the
     * value data returned when it stopped, or why the body broke off
     * (CSGI_ETOOBIG over the handler's max_body, the server's or a
     * stream's limit; CSGI_EPARSE malformed chunked framing;
     * CSGI_ETIMEDOUT; CSGI_ECLOSED when the client left: then the response
     * is not sent).
     * @return the response, as a handler's return value.
     */
    csgi_response *(*end)(void *state, csgi_request *request, int result);
} csgi_body_reader_type;

/**
 * Read the request body piece by piece as it arrives, then answer: return
 * this from a handler. The adapter calls type->data for each piece and
 * type->end once; end's response is the answer. The first read sends the
 * "100 Continue" a client may wait for. In a gathering handler the pieces
 * come from the gathered body, at once.
 *
 * Only as a handler's return value, once per handler call.
 *
 * @param type  the reader (borrowed; usually static)
 * @param state passed to type's functions (per-request state:
 *              csgi_environ_alloc())
 * @return the response to return, or NULL (not inside a handler, called
 *         twice, or no type, data or end).
 */
CSGI_EXTERN csgi_response *csgi_handler_read_body(csgi_request *request,
                                                  const csgi_body_reader_type *type, void *state);

/** A handler's answer that is still to come (csgi_handler_wait()). */
typedef struct csgi_handler_later csgi_handler_later;

/**
 * What csgi_handler_resume() runs to make the late answer.
 *
 * @param request the request (borrowed)
 * @param state   what was given to csgi_handler_resume()
 * @return the response to send, as a handler's return value: it may be
 *         an error, csgi_handler_forward() or csgi_handler_forward_then()
 *         to the next application, a response of its own, even another
 *         csgi_handler_wait() (NULL: 500).
 */
typedef csgi_response *(*csgi_handler_resume_fn)(csgi_request *request, void *state);

/**
 * What runs when a request ends while its handler still waits (the client
 * left, the server stops): stop what the answer was waiting for (cancel a
 * call to another service, delete a timer).
 *
 * @param state what was given to csgi_handler_wait()
 */
typedef void (*csgi_handler_cancel_fn)(void *state);

/**
 * Answer later, after an event of the handler's own: a call to another
 * service on the request's loop (csgi/client.h), a timer. Return this from
 * the handler, start what it waits for, and when that is done call
 * csgi_handler_resume() with *later from the loop thread. Until then the
 * request waits without holding the loop; nothing is sent.
 *
 * This is how keystone's auth_token middleware is written on csgi: a
 * token that is not in its cache is checked by the identity service, and
 * only then is the request forwarded or refused.
 *
 * Only as a handler's return value, once per handler call.
 *
 * @param later  set to the handle to resume (valid until it is resumed or
 *               cancel runs)
 * @param cancel run, with state, when the request ends before the answer
 *               (may be NULL); the handle is dead after it, and must not be
 *               resumed
 * @param state  passed to cancel (per-request state: csgi_environ_alloc())
 * @return the response to return, or NULL (not inside a handler, called
 *         twice, or no later).
 */
CSGI_EXTERN csgi_response *csgi_handler_wait(csgi_request *request, csgi_handler_later **later,
                                             csgi_handler_cancel_fn cancel, void *state);

/**
 * Give a waiting handler's answer: fn runs at once, with the request, as
 * the handler did, and what it returns is sent. Call it once per
 * csgi_handler_wait(), from the request's loop thread; it may be called
 * before the handler has returned (the answer is then sent when it
 * returns).
 *
 * @param later the handle from csgi_handler_wait() (then dead)
 * @param fn    makes the answer
 * @param state passed to fn
 */
CSGI_EXTERN void csgi_handler_resume(csgi_handler_later *later, csgi_handler_resume_fn fn,
                                     void *state);

/**
 * Read the body as JSON, or make the error response to return: 400 with
 * the parse error's line, column and position ("invalid JSON at line 1,
 * column 9 (byte 8): ..."), 413 when it is longer than max.
 *
 * @param max           the longest body accepted
 * @param out           set to the value (borrowed, as from csgi_request_json():
 *                      valid until the request ends; json_incref() to keep it)
 * @param error_response set to the response to return when the body is
 *                      not acceptable (NULL otherwise)
 * @return 0; CSGI_EPARSE or CSGI_ETOOBIG with *error_response set (NULL
 *         if memory ran out); CSGI_ENOMEM; CSGI_EAGAIN where the body is not
 *         gathered (a streaming handler, a filter without
 *         CSGI_HANDLER_BODY_GATHER) and has not all arrived: read it with
 *         csgi_handler_read_body() there, or ask for it to be gathered.
 */
CSGI_EXTERN int csgi_handler_json(csgi_request *request, size_t max, struct json_t **out,
                                  csgi_response **error_response);

/* ---- INI factories ------------------------------------------------------------ */

/**
 * Turn a factory's conf into a handler's userdata: read the keys, check
 * them (filling error, e.g. with csgi_conf_asbool()) and allocate what the
 * handler needs.
 *
 * @param userdata set to the handler's userdata
 * @param destroy  set to what frees it (or NULL)
 * @return 0, or an error with *error filled.
 */
typedef int (*csgi_handler_setup_fn)(void **userdata, csgi_destroy_fn *destroy,
                                     const csgi_conf *global_conf, const csgi_conf *local_conf,
                                     csgi_load_error *error);

/**
 * The body of a filter factory (csgi_filter_factory_fn) for a filter
 * handler: setup (may be NULL: userdata NULL) makes the userdata from the
 * conf, then csgi_handler_filter() wraps next. The handler factories read
 * csgi_handler_options from four keys of the local conf, named as nginx
 * names the same settings: `body_mode` (gather, stream or default),
 * `client_max_body_size` and `client_body_buffer_size` (bytes, or with a
 * k, m or g suffix; 0 or absent: the default) and `client_body_temp_path`;
 * a bad value fails with the file and line. CSGI_HANDLER_FILTER_FACTORY
 * writes the factory function around it.
 *
 * @param next taken, also on failure
 */
CSGI_EXTERN int csgi_handler_filter_factory(csgi_app **out, const csgi_conf *global_conf,
                                            const csgi_conf *local_conf, csgi_app *next,
                                            const char *name, csgi_filter_handler_fn handler,
                                            csgi_handler_setup_fn setup, csgi_load_error *error);

/**
 * The body of an application factory (csgi_app_factory_fn) for a handler:
 * setup (may be NULL: userdata NULL) makes the userdata from the conf, then
 * csgi_handler_app() makes the application, stored in *out (owned by the
 * caller). CSGI_HANDLER_APP_FACTORY writes the factory function around it.
 */
CSGI_EXTERN int csgi_handler_app_factory(csgi_app **out, const csgi_conf *global_conf,
                                         const csgi_conf *local_conf, const char *name,
                                         csgi_handler_fn handler, csgi_handler_setup_fn setup,
                                         csgi_load_error *error);

/**
 * Define a filter factory named factory (paste.filter_factory, e.g.
 * "filter_factory" in a module loaded as MODULE:filter_factory) for a filter
 * handler and its setup function (or NULL).
 */
#define CSGI_HANDLER_FILTER_FACTORY(factory, handler, setup)                                      \
    int factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,                \
                const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error);             \
    int factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,                \
                const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error)              \
    {                                                                                             \
        (void)loader;                                                                             \
        return csgi_handler_filter_factory(out, global_conf, local_conf, next, #handler, handler, \
                                           setup, error);                                         \
    }

/** Define an application factory named factory for a handler and its setup (or NULL). */
#define CSGI_HANDLER_APP_FACTORY(factory, handler, setup)                                       \
    int factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,              \
                const csgi_conf *local_conf, csgi_load_error *error);                           \
    int factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,              \
                const csgi_conf *local_conf, csgi_load_error *error)                            \
    {                                                                                           \
        (void)loader;                                                                           \
        return csgi_handler_app_factory(out, global_conf, local_conf, #handler, handler, setup, \
                                        error);                                                 \
    }

#ifdef __cplusplus
}
#endif

#endif /* CSGI_HANDLER_H */
