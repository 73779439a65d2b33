/**
 * @file csgi/response.h
 * @brief Response objects: status, headers, body, cookies, conditional
 *        responses and HTTP errors, sent through the csgi protocol.
 *
 * A response collects what an application answers and then sends it:
 * csgi_response_send() calls start-response and returns the body, so a
 * handler ends with `return csgi_response_send(response, environ,
 * start_response);`.
 *
 * @code
 * static csgi_body *hello(void *state, csgi_environ *environ,
 *                         csgi_start_response *start_response)
 * {
 *     csgi_response *response;
 *     if (csgi_response_new(&response, environ) != 0 ||
 *         csgi_response_set_text(response, "Hello World\n", NULL) != 0)
 *         return NULL;
 *     return csgi_response_send(response, environ, start_response);
 * }
 * @endcode
 *
 * Memory: a response made for a request (environ not NULL) lives in the
 * request's arena, like everything else of the request: it needs no
 * freeing and dies with the request. A response made without a request
 * (environ NULL) lives on the heap: free it with csgi_response_free(), or
 * give it to csgi_response_app(), which serves it on every request.
 *
 * Every string a setter takes is copied (borrowed for the call) unless its
 * documentation says otherwise. Header values must be free of CR, LF, NUL
 * and other control characters but HTAB; such values are refused with
 * CSGI_EINVAL, so a value taken from the request cannot split the response.
 *
 * Threads: a response belongs to the thread building it. Sending a heap
 * response does not change it, so an application made by
 * csgi_response_app() may serve several loops at once.
 */
#ifndef CSGI_RESPONSE_H
#define CSGI_RESPONSE_H

#include "app.h"
#include "common.h"
#include "environ.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A response being built (opaque). */
typedef struct csgi_response csgi_response;

/** jansson's JSON value (csgi/json.h and jansson.h define it). */
struct json_t;

/**
 * Create a response: "200 OK", no header, an empty body.
 *
 * @param out     where to store the response
 * @param environ the request it answers: the response lives in its arena;
 *                or NULL for a response on the heap (csgi_response_free())
 * @return 0, CSGI_EINVAL (out NULL), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_response_new(csgi_response **out, csgi_environ *environ);

/**
 * Free a heap response (made with environ NULL) and what it holds: its
 * file descriptor, streaming body or delegate application. Accepts NULL.
 * A response made for a request is not freed by this call (its request
 * releases it); calling it on one does nothing.
 */
CSGI_EXTERN void csgi_response_free(csgi_response *response);

/**
 * The standard reason phrase of a status code ("Not Found").
 *
 * @return a static string, or NULL for a code without one.
 */
CSGI_EXTERN const char *csgi_response_reason(int status);

/* ---- Status and headers ------------------------------------------------------ */

/**
 * Set the status by code, with its standard reason phrase.
 *
 * @param status 200 to 599 with a reason phrase (csgi_response_reason())
 * @return 0, or CSGI_EINVAL (another code: use csgi_response_set_status_line()).
 */
CSGI_EXTERN int csgi_response_set_status(csgi_response *response, int status);

/**
 * Set the status from a whole status line such as "299 Custom Thing".
 *
 * @param line three digits (200 to 599), a space and a reason phrase of
 *             visible characters, spaces and tabs (copied)
 * @return 0, CSGI_EINVAL (malformed), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_response_set_status_line(csgi_response *response, const char *line);

/** The status code (200 for a new response). */
CSGI_EXTERN int csgi_response_status(const csgi_response *response);

/**
 * Add a header field, keeping any others of the same name (Set-Cookie,
 * Link, Vary...).
 *
 * @param name  a token (copied). Content-Length and the hop-by-hop fields
 *              (Connection, Transfer-Encoding...) are refused: the body and
 *              the server decide them.
 * @param value the value (copied); no CR, LF, NUL or other control but HTAB
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_response_add_header(csgi_response *response, const char *name,
                                         const char *value);

/**
 * Set a header field: remove every field of that name (without regard to
 * case), then add this one.
 *
 * @return as csgi_response_add_header().
 */
CSGI_EXTERN int csgi_response_set_header(csgi_response *response, const char *name,
                                         const char *value);

/**
 * Remove every header field of a name (without regard to case).
 *
 * @return the number of fields removed (0 when there was none).
 */
CSGI_EXTERN size_t csgi_response_remove_header(csgi_response *response, const char *name);

/**
 * The value of a header field.
 *
 * @param index 0 for the first field of that name, 1 for the second...
 * @return the value (borrowed until the field is removed or replaced, or
 *         the response freed), or NULL when there is no such field.
 */
CSGI_EXTERN const char *csgi_response_get_header(const csgi_response *response, const char *name,
                                                 size_t index);

/**
 * Iterate over the header fields in order.
 *
 * @param cursor start at 0; advanced by each call
 * @param name   where to store the next name (borrowed)
 * @param value  where to store its value (borrowed)
 * @return 1 with a field, or 0 when there are no more.
 */
CSGI_EXTERN int csgi_response_next_header(const csgi_response *response, size_t *cursor,
                                          const char **name, const char **value);

/**
 * Set Content-Type: "type" or "type; charset=charset".
 *
 * @param type    a media type such as "text/html" (token "/" token)
 * @param charset a token such as "utf-8", or NULL for none
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_response_set_content_type(csgi_response *response, const char *type,
                                               const char *charset);

/* ---- Bodies ------------------------------------------------------------------ */

/*
 * Each body setter replaces the previous body (releasing what it held: a
 * file descriptor is closed, a streaming body closed, a delegate
 * application freed).
 */

/**
 * The body: len bytes, copied.
 *
 * @return 0, CSGI_EINVAL (data NULL with len > 0), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_response_set_body(csgi_response *response, const void *data, size_t len);

/**
 * The body: len bytes that outlive the response (a string literal), not
 * copied (borrowed for as long as the response is sent).
 *
 * @return 0, CSGI_EINVAL.
 */
CSGI_EXTERN int csgi_response_set_body_static(csgi_response *response, const void *data,
                                              size_t len);

/**
 * The body: text, copied, with "Content-Type: text/plain; charset=...".
 *
 * @param text    NUL-terminated text
 * @param charset its character set, or NULL for "utf-8"
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_response_set_text(csgi_response *response, const char *text,
                                       const char *charset);

/**
 * The body: a JSON value, serialized now (compact, UTF-8), with
 * "Content-Type: application/json".
 *
 * @param value takes one reference: json_decref(value) runs in this call,
 *              also when it fails. Use json_incref() first to keep it.
 * @return 0, CSGI_EINVAL (value NULL, or not serializable), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_response_set_json(csgi_response *response, struct json_t *value);

/**
 * The body: length bytes of a file from offset, sent with sendfile(2)
 * (csgi_body_file()). Ranges and conditional requests work on it.
 *
 * @param fd takes it: closed when the response's request ends (or by
 *           csgi_response_free()), also when this call fails. A heap
 *           response sends a dup(2) of it on each request.
 * @return 0, CSGI_EINVAL (fd, offset or length negative), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_response_set_file(csgi_response *response, int fd, int64_t offset,
                                       int64_t length);

/**
 * The body: a streaming iterator (csgi_body_new()). Such a body can be sent
 * once: csgi_response_app() refuses a response holding one.
 *
 * @param type  borrowed; must outlive the request
 * @param state takes it: type->close(state) runs exactly once, when the
 *              body ends or, if the response is never sent, when the
 *              request ends or the response is freed; also when this call
 *              fails
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_response_set_stream(csgi_response *response, const csgi_body_type *type,
                                         void *state);

/**
 * Hand the request to another application: when sent, the response calls
 * app with the environ and start-response and returns its body. The
 * response's own status, headers and body are not used then.
 *
 * @param app takes one reference (csgi_app_ref() first to keep yours);
 *            freed with the response, also when this call fails
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_response_set_app(csgi_response *response, csgi_app *app);

/* ---- Cookies ------------------------------------------------------------------- */

/** SameSite attribute of a cookie. */
typedef enum csgi_same_site {
    CSGI_SAME_SITE_UNSET = 0, /**< no attribute */
    CSGI_SAME_SITE_STRICT,    /**< SameSite=Strict */
    CSGI_SAME_SITE_LAX,       /**< SameSite=Lax */
    CSGI_SAME_SITE_NONE       /**< SameSite=None (needs secure) */
} csgi_same_site;

/** Version of csgi_cookie_options; CSGI_COOKIE_OPTIONS_INIT sets it. */
#define CSGI_COOKIE_OPTIONS_VERSION 1

/**
 * Attributes of a Set-Cookie field (RFC 6265 4.1). Start from
 * CSGI_COOKIE_OPTIONS_INIT: no attribute at all.
 */
typedef struct csgi_cookie_options {
    unsigned version;         /**< CSGI_COOKIE_OPTIONS_VERSION */
    int64_t max_age;          /**< Max-Age in seconds; -1 = none */
    time_t expires;           /**< Expires; used when has_expires */
    int has_expires;          /**< 1 to send Expires */
    const char *path;         /**< Path, or NULL; no control character or ';' */
    const char *domain;       /**< Domain, or NULL; same rule */
    int secure;               /**< Secure */
    int http_only;            /**< HttpOnly */
    csgi_same_site same_site; /**< SameSite */
} csgi_cookie_options;

/** Initializer for csgi_cookie_options: no attribute. */
#define CSGI_COOKIE_OPTIONS_INIT                                                      \
    {                                                                                 \
        CSGI_COOKIE_OPTIONS_VERSION, -1, 0, 0, NULL, NULL, 0, 0, CSGI_SAME_SITE_UNSET \
    }

/**
 * Add a Set-Cookie field.
 *
 * @param name    a token (RFC 6265 cookie-name)
 * @param value   cookie-octets, optionally in double quotes: no space,
 *                comma, semicolon, backslash, double quote or control
 *                (encode anything else yourself, e.g. base64url)
 * @param options the attributes, or NULL for none (borrowed)
 * @return 0; CSGI_EINVAL (bad name, value, path or domain, a negative
 *         Max-Age, SameSite=None without Secure, an unknown version);
 *         CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_response_set_cookie(csgi_response *response, const char *name,
                                         const char *value, const csgi_cookie_options *options);

/**
 * Tell the client to drop a cookie: an empty value with Max-Age=0 and an
 * Expires in 1970.
 *
 * @param path   the cookie's Path, or NULL
 * @param domain the cookie's Domain, or NULL
 * @return as csgi_response_set_cookie().
 */
CSGI_EXTERN int csgi_response_delete_cookie(csgi_response *response, const char *name,
                                            const char *path, const char *domain);

/* ---- Caching, validators, redirects --------------------------------------------- */

/** Version of csgi_cache_control; CSGI_CACHE_CONTROL_INIT sets it. */
#define CSGI_CACHE_CONTROL_VERSION 1

/** The common Cache-Control directives (RFC 9111 5.2.2). */
typedef struct csgi_cache_control {
    unsigned version;    /**< CSGI_CACHE_CONTROL_VERSION */
    int64_t max_age;     /**< max-age in seconds; -1 = none */
    int64_t s_maxage;    /**< s-maxage in seconds; -1 = none */
    int is_public;       /**< public */
    int is_private;      /**< private */
    int no_cache;        /**< no-cache */
    int no_store;        /**< no-store */
    int must_revalidate; /**< must-revalidate */
    int immutable;       /**< immutable (RFC 8246) */
} csgi_cache_control;

/** Initializer for csgi_cache_control: no directive. */
#define CSGI_CACHE_CONTROL_INIT                              \
    {                                                        \
        CSGI_CACHE_CONTROL_VERSION, -1, -1, 0, 0, 0, 0, 0, 0 \
    }

/**
 * Set Cache-Control from directives, in the order of the struct, separated
 * by ", ". No directive at all removes the field.
 *
 * @param cache the directives (borrowed for the call)
 * @return 0, CSGI_EINVAL (public with private, an unknown version),
 *         CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_response_set_cache_control(csgi_response *response,
                                                const csgi_cache_control *cache);

/**
 * Set Location. A relative reference is made absolute when the response is
 * sent, against the request's URL as WebOb does: "//host/x" takes the
 * request's scheme, "/x" its scheme and host, "x" or "?q" the request's
 * path (SCRIPT_NAME + PATH_INFO) up to its last "/" (or the whole path).
 *
 * @param location a URL or a reference (copied)
 * @return as csgi_response_set_header().
 */
CSGI_EXTERN int csgi_response_set_location(csgi_response *response, const char *location);

/**
 * Set ETag.
 *
 * @param opaque the tag without its quotes: characters 0x21 and 0x23 to
 *               0x7E ("abc" gives "\"abc\"")
 * @param weak   1 for a weak tag (W/"abc")
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_response_set_etag(csgi_response *response, const char *opaque, int weak);

/**
 * Set Last-Modified.
 *
 * @return 0, CSGI_ERANGE (a year beyond 9999), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_response_set_last_modified(csgi_response *response, time_t when);

/**
 * Answer conditional and range requests for this response (WebOb's
 * conditional_response), when it is sent with status 200:
 *
 *  - If-None-Match matching the ETag (weak comparison; "*" matches any)
 *    gives 304 Not Modified for GET and HEAD, 412 for other methods;
 *    without If-None-Match, If-Modified-Since not before Last-Modified gives
 *    304 (GET and HEAD only). A 304 keeps Cache-Control, Content-Location,
 *    Date, ETag, Expires, Last-Modified and Vary, and has no body.
 *  - If-Match not matching (strong comparison) gives 412; without
 *    If-Match, so does If-Unmodified-Since before Last-Modified.
 *  - A body of known length (bytes, text, JSON, file) gets
 *    "Accept-Ranges: bytes". A GET with one satisfiable Range gets 206
 *    Partial Content with Content-Range, unless If-Range (an entity tag,
 *    compared strongly, or a date equal to Last-Modified) does not match;
 *    a Range with no satisfiable range gets 416 with
 *    "Content-Range: bytes *&#47;LENGTH"; several ranges or a malformed
 *    header get the whole body (csgi_range_resolve()).
 *
 * @param enabled 1 to enable, 0 to disable (the default)
 */
CSGI_EXTERN void csgi_response_set_conditional(csgi_response *response, int enabled);

/* ---- HTTP errors ------------------------------------------------------------------ */

/**
 * Create an error response, like the exceptions of webob.exc.
 *
 * The body is chosen when the response is sent, by the request's Accept
 * header among text/plain, text/html and application/json (in that order
 * on a tie, so "*&#47;*" and a missing Accept get text/plain):
 *
 *  - text/plain: "404 Not Found\n", then "\n" DETAIL "\n" with a detail:
 *    the same page the server sends for its own errors;
 *  - text/html: a small page with the status as title and heading and the
 *    detail, HTML-escaped, below;
 *  - application/json: {"message": DETAIL or the reason, "code": 404,
 *    "title": "Not Found"}.
 *
 * 304 has no body. Add Location (3xx), Retry-After, WWW-Authenticate or
 * Allow with the header setters.
 *
 * @param out     where to store the response
 * @param environ the request (the response lives in its arena), or NULL
 *                for a heap response
 * @param status  300 to 599 with a standard reason (csgi_response_reason())
 * @param detail  more words for the client (copied), or NULL
 * @return 0, CSGI_EINVAL (another status), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_response_error(csgi_response **out, csgi_environ *environ, int status,
                                    const char *detail);

/* ---- Sending ---------------------------------------------------------------------- */

/**
 * Send the response: call start_response with its status and headers and
 * return its body, as an application does.
 *
 * A response made for this request is sent once (a streaming body cannot
 * be sent twice); a heap response may be sent to any number of requests
 * and is not changed by it.
 *
 * No body goes out with a 204 or a 304, nor to a HEAD request: the
 * response drops it itself (a stream is closed without being pulled), so
 * that what it gives passes strict lint. To HEAD the returned body
 * declares the length a GET would get (csgi_body_length()), so the server
 * sends the same Content-Length, or none for a stream of unknown length.
 *
 * @param response       the response (borrowed)
 * @param environ        the request
 * @param start_response the request's start-response
 * @return the body (in the request's arena), or NULL when start-response
 *         refused the head, memory is exhausted, or a streaming body was
 *         already sent: the server answers 500 then.
 */
CSGI_EXTERN csgi_body *csgi_response_send(csgi_response *response, csgi_environ *environ,
                                          csgi_start_response *start_response);

/**
 * An application that sends a heap response to every request (a fixed
 * redirect, a "503 maintenance" page, a static document).
 *
 * @param out      where to store the application
 * @param response a heap response (made with environ NULL) without a
 *                 streaming body; taken, also when this call fails: the
 *                 application frees it
 * @return 0, CSGI_EINVAL (a request's response, or a streaming body),
 *         CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_response_app(csgi_app **out, csgi_response *response);

#ifdef __cplusplus
}
#endif

#endif /* CSGI_RESPONSE_H */
