/*
 * Error pages (internal): the built-in renderers of csgi/errors.h by name,
 * and rendering through any renderer without trusting it. Below the engine
 * and the helpers, so that the server's own errors (http/response.c) and
 * csgi_response_error() (helpers/errors.c) render through the same code.
 */
#ifndef CSGI_COMMON_ERROR_PAGE_H
#define CSGI_COMMON_ERROR_PAGE_H

#include <csgi/errors.h>

#include <stddef.h>

/* The Content-Type of the text page. */
#define CSGI_ERROR_PAGE__TEXT_TYPE "text/plain; charset=utf-8"

/* The built-in renderer a format name names ("text", "json" or "html",
   without regard to case, blanks around it ignored), or NULL. */
csgi_error_render_fn csgi_error_page__named(const char *name);

/* The name of a built-in renderer, or NULL for another function. */
const char *csgi_error_page__name(csgi_error_render_fn render);

/* What a format value may be, for error messages. */
#define CSGI_ERROR_PAGE__NAMES "text, json or html"

/*
 * Render status's page into buffer (size bytes) through render, checking
 * what it gives: 0 with *len and *content_type set when it gave a page that
 * fits with a byte to spare (snprintf-based renderers put a NUL there); 1
 * with *len the page's length when it does not (the caller may render
 * again into *len + 1 bytes);
 * the error it returned, or CSGI_EINVAL when it gave no page (no or a
 * malformed Content-Type, no length, a positive return). On an error the
 * caller sends the text page instead.
 */
int csgi_error_page__render(char *buffer, size_t size, size_t *len, const char **content_type,
                            int status, const char *reason, const char *detail,
                            csgi_error_render_fn render, void *userdata);

#endif
