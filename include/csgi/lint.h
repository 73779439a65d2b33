/**
 * @file csgi/lint.h
 * @brief The lint filter: checks that a server and an application keep to
 *        the protocol (paste.lint, wsgiref.validate).
 *
 * Put it in front of an application (in tests, or in a deploy file with
 * `use = egg:csgi#lint`) and every request is checked on both sides:
 *
 * - the environ the server built: every required key present with the
 *   right kind and a well-formed value (REQUEST_METHOD a token,
 *   SCRIPT_NAME empty or "/..." without a trailing "/", PATH_INFO empty or
 *   "/...", SERVER_PORT digits, csgi.url_scheme "http" or "https",
 *   csgi.input and csgi.errors present, no HTTP_CONTENT_TYPE or
 *   HTTP_CONTENT_LENGTH, ...);
 * - what the application does: the status line and header fields it gives
 *   start-response (format, hop-by-hop fields, Content-Type present), the
 *   order of its calls (start-response twice without exc_info, a body
 *   before start-response, no body), its body (chunks, Content-Length
 *   against the bytes produced, no bytes for 204, 304 and HEAD).
 *
 * Each violation is logged to the request's error log (csgi_environ_log())
 * as a line starting "lint: ". The request then goes on unchanged, and the
 * server applies its own rules, unless the filter is strict: then a
 * violation found before the first body bytes went out turns the response
 * into "500 Internal Server Error".
 *
 * Bytes written with csgi_start_response_write() go past the filter and are
 * not counted.
 *
 * @code
 * csgi_lint_options options = CSGI_LINT_OPTIONS_INIT;
 * options.strict = 1;
 * csgi_app *checked = NULL;
 * if (csgi_lint_new(&checked, app, &options) != 0)  // takes app
 *     return 1;
 * @endcode
 */
#ifndef CSGI_LINT_H
#define CSGI_LINT_H

#include "app.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Version of csgi_lint_options; CSGI_LINT_OPTIONS_INIT sets it. */
#define CSGI_LINT_OPTIONS_VERSION 1

/** Lint options. Start from CSGI_LINT_OPTIONS_INIT. */
typedef struct csgi_lint_options {
    unsigned version; /**< CSGI_LINT_OPTIONS_VERSION */
    int strict;       /**< 1: a violation before the body started answers 500. Default 0 */
} csgi_lint_options;

/** Initializer for csgi_lint_options: every field its default. */
#define CSGI_LINT_OPTIONS_INIT       \
    {                                \
        CSGI_LINT_OPTIONS_VERSION, 0 \
    }

/**
 * Wrap an application in the lint filter.
 *
 * @param out     where to store the filter (reference count 1)
 * @param next    the application to check; taken (freeing the filter frees
 *                it), also when this call fails
 * @param options the options (copied), or NULL for the defaults
 * @return 0; CSGI_EINVAL (out or next NULL, or an unknown options
 *         version), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_lint_new(csgi_app **out, csgi_app *next, const csgi_lint_options *options);

#ifdef __cplusplus
}
#endif

#endif /* CSGI_LINT_H */
