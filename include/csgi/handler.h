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
 * A handler returns one of:
 *  - a response it made with csgi_handler_response() (or
 *    csgi_response_new() on the request's environ) and filled in;
 *  - an HTTP error: csgi_handler_error(request, 404, "no such image");
 *  - the request handed to another application:
 *    csgi_handler_forward(request, app) (a filter forwards to its next
 *    application this way);
 *  - csgi_handler_again(request), when a read of the request body answered
 *    CSGI_EAGAIN: the body has not all arrived yet. The adapter calls the
 *    handler again when more of it is there; the request's body readers
 *    resume where they stopped, so a handler that reads the body before it
 *    does anything else is simply called again. Asking to wait when no
 *    more can arrive (no body, or unread bytes already there) would hang
 *    the request: the client gets a 500 and the log a line instead;
 *  - NULL, when it failed (out of memory): the client gets a 500 and the
 *    error log a line.
 *
 * A filter handler also gets the next application. It can answer by itself
 * (an error), forward, or run the next application with
 * csgi_handler_get_response() and change the response it gets back (status,
 * headers) before returning it.
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
 * The "call me again" answer: return it when a read of the request body
 * answered CSGI_EAGAIN. No allocation; never NULL (a static marker,
 * borrowed).
 */
CSGI_EXTERN csgi_response *csgi_handler_again(csgi_request *request);

/**
 * Run app on the request now and return what it answered as a response
 * (like WebOb's request.get_response): its status and headers (all but
 * Content-Length, which the body decides) and its body, which is not read
 * here but sent on when the response is. The handler may change the
 * status and headers before it returns the response.
 *
 * The application must call start-response before it returns or from its
 * body's first piece; one that answers later (its first piece is
 * CSGI_EAGAIN before start-response) gives CSGI_EAGAIN and is closed.
 * Only inside a handler (the adapter provides the start-response).
 *
 * @param out     set to the response (borrowed: it lives in the request's
 *                arena)
 * @param request the request (borrowed)
 * @param app     the application to run (borrowed)
 * @return 0, CSGI_ESTATE (not inside a handler, or the application
 *         returned no body or never started its response), CSGI_EAGAIN,
 *         CSGI_EINVAL (start-response was given something malformed),
 *         CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_handler_get_response(csgi_response **out, csgi_request *request,
                                          csgi_app *app);

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
 * @return 0; CSGI_EAGAIN (return csgi_handler_again()); CSGI_EPARSE or
 *         CSGI_ETOOBIG with *error_response set (NULL if memory ran out);
 *         CSGI_ENOMEM.
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
 * conf, then csgi_handler_filter() wraps next. CSGI_HANDLER_FILTER_FACTORY
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
