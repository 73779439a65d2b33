/**
 * @file csgi/errors.h
 * @brief Error pages: one renderer type for the server's errors and the app's.
 *
 * An error page is what a client reads with a 4xx or 5xx status: a
 * Content-Type and a body. Two kinds of code make them:
 *
 * - the server, for requests that never reach the application (a
 *   malformed request 400, a body too large 413, a URI too long 414, a head
 *   too large 431, a head not complete in time 408, an unknown transfer
 *   coding 501, another HTTP version 505) and for an application that
 *   failed before it answered (500). It renders them with the renderer of
 *   csgi_server_options.error_render (INI: `error_format` in
 *   `[server:main]`), plain text by default;
 * - the application, with csgi_response_error() (and what uses it: the
 *   handlers, the router's 404 and 405). It chooses the format by the
 *   request's Accept, unless something in front of it fixed one for the
 *   request: the error_format filter (csgi_error_format_new(), INI
 *   `use = egg:csgi#error_format`) or csgi_error_format_set().
 *
 * Both take a renderer of the one type csgi_error_render_fn, so an API can
 * give every error, the server's and its own, the same shape:
 *
 * @code
 * // {"itemNotFound": {"code": 404, "message": "..."}}, OpenStack style
 * static int openstack_error(char *buffer, size_t size, size_t *len,
 *                            const char **content_type, int status,
 *                            const char *reason, const char *detail,
 *                            void *userdata)
 * {
 *     const char *name = status == 404 ? "itemNotFound" : "badRequest";
 *     int n = snprintf(buffer, size, "{\"%s\": {\"code\": %d, \"message\": \"%s\"}}",
 *                      name, status, reason);  // escape detail before using it
 *     if (n < 0)
 *         return CSGI_EINVAL;
 *     *len = (size_t)n;
 *     *content_type = "application/json";
 *     return 0;
 * }
 *
 * csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
 * options.error_render = openstack_error;           // the server's errors
 * csgi_app *api = NULL;
 * csgi_error_format_new(&api, app, openstack_error, NULL, NULL);  // the app's
 * csgi_server_new(&server, api, &options, NULL);
 * @endcode
 *
 * A renderer that fails, or gives a page that is not one (no Content-Type,
 * a control character in it, more bytes than it was asked for), is not
 * trusted: the plain text page goes out instead, so the client always gets
 * an answer.
 */
#ifndef CSGI_ERRORS_H
#define CSGI_ERRORS_H

#include "app.h"
#include "common.h"
#include "environ.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A renderer: write the error page of a status into a buffer, as snprintf
 * does.
 *
 * Write at most size bytes into buffer, set *len to the length of the
 * whole body and *content_type to its media type, and return 0. A body
 * fits when *len is less than size, so that the NUL snprintf() writes after
 * it always has room (csgi needs none). When it does not fit, write what
 * fits (or nothing) and still set *len to the whole length: csgi calls
 * again with a buffer of *len + 1 bytes for an application's page, and
 * sends the text page instead for one of the server's own, which must be
 * at most CSGI_ERROR_PAGE_MAX bytes.
 *
 * The server calls it from its event loop threads, several at once when it
 * runs several: it must be thread-safe, and quick (no I/O).
 *
 * @param buffer       where the body goes (borrowed for the call); never NULL
 * @param size         its size in bytes
 * @param len          where to store the body's whole length
 * @param content_type where to store the Content-Type value: a string that
 *                     outlives the renderer's users (a literal, or memory
 *                     userdata owns); visible ASCII characters, spaces and
 *                     tabs, with a "/"
 * @param status       the status code (400 to 599 from the server; 300 to
 *                     599 from csgi_response_error())
 * @param reason       its reason phrase ("Not Found"), never NULL
 * @param detail       more words for the client, UTF-8 or not, or NULL. The
 *                     server's own errors have none; an application's
 *                     come from csgi_response_error()
 * @param userdata     as registered with the renderer
 * @return 0, or a negative csgi_err: the text page goes out instead.
 */
typedef int (*csgi_error_render_fn)(char *buffer, size_t size, size_t *len,
                                    const char **content_type, int status, const char *reason,
                                    const char *detail, void *userdata);

/** The largest page the server renders for its own errors, in bytes. */
#define CSGI_ERROR_PAGE_MAX 2048

/**
 * The text renderer, the server's default: "text/plain; charset=utf-8",
 * "404 Not Found\n", then "\n" DETAIL "\n" with a detail (NULL or "" is
 * none).
 *
 * @return 0, or CSGI_EINVAL (buffer, len, content_type or reason NULL).
 */
CSGI_EXTERN int csgi_error_render_text(char *buffer, size_t size, size_t *len,
                                       const char **content_type, int status, const char *reason,
                                       const char *detail, void *userdata);

/**
 * The JSON renderer: "application/json",
 * {"message":DETAIL,"code":404,"title":"Not Found"} (compact, in that
 * order). The message is the reason when there is no detail or the detail
 * is not UTF-8.
 *
 * @return 0, or CSGI_EINVAL (a NULL argument, or a reason not UTF-8).
 */
CSGI_EXTERN int csgi_error_render_json(char *buffer, size_t size, size_t *len,
                                       const char **content_type, int status, const char *reason,
                                       const char *detail, void *userdata);

/**
 * The HTML renderer: "text/html; charset=utf-8", a small page with
 * "404 Not Found" as title and heading and the detail, HTML-escaped, in a
 * paragraph below.
 *
 * @return 0, or CSGI_EINVAL (buffer, len, content_type or reason NULL).
 */
CSGI_EXTERN int csgi_error_render_html(char *buffer, size_t size, size_t *len,
                                       const char **content_type, int status, const char *reason,
                                       const char *detail, void *userdata);

/**
 * Fix the format of the application's error pages for the rest of this
 * request: csgi_response_error() (and the 412 and 416 pages of conditional
 * responses) render with this renderer whatever Accept says.
 *
 * It sets the environ key csgi.error_format: to the name "text", "json" or
 * "html" for the built-in renderers (setting that string yourself does the
 * same), else to a pointer only csgi reads. An application or filter behind
 * may set it again: the last setting wins.
 *
 * @param environ  the request
 * @param render   the renderer, or NULL to go back to choosing by Accept
 * @param userdata passed to render (borrowed: it must outlive the request)
 * @return 0, CSGI_EINVAL (environ NULL), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_error_format_set(csgi_environ *environ, csgi_error_render_fn render,
                                      void *userdata);

/**
 * The error_format filter: csgi_error_format_set() on every request, then
 * the next application. INI: `use = egg:csgi#error_format` with
 * `format = json` (or html, or text).
 *
 * @param out      where to store the filter (reference count 1)
 * @param next     the application behind it; taken (freeing the filter frees
 *                 it), also when this call fails
 * @param render   the renderer (csgi_error_render_json...), not NULL
 * @param userdata passed to render; taken when destroy is not NULL
 * @param destroy  runs destroy(userdata) when the filter is freed, and when
 *                 this call fails; or NULL (userdata borrowed: it must
 *                 outlive the filter)
 * @return 0, CSGI_EINVAL (out, next or render NULL), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_error_format_new(csgi_app **out, csgi_app *next, csgi_error_render_fn render,
                                      void *userdata, csgi_destroy_fn destroy);

#ifdef __cplusplus
}
#endif

#endif /* CSGI_ERRORS_H */
