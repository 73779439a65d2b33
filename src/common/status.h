/*
 * Status codes (internal): the reason phrases and the plain-text error
 * page. Protocol, not engine: the engine's own error responses
 * (http/response.c), csgi_response_error() (helpers/errors.c) and the
 * test client all use them, so a client sees one format whoever answered.
 */
#ifndef CSGI_COMMON_STATUS_H
#define CSGI_COMMON_STATUS_H

#include <stddef.h>

/* The standard reason phrase of a status code, or "Unknown". */
const char *csgi_status__reason(int status);

/* Format the text/plain body of an error response into buf (snprintf
   rules: NUL-terminated when size > 0, truncated if needed; the page of
   csgi_error_render_text()):
       "404 Not Found\n"                    without detail (NULL or "")
       "404 Not Found\n\nDETAIL\n"          with one
   Returns the length of the whole text, as snprintf does. */
size_t csgi_status__error_text(char *buf, size_t size, int status, const char *detail);

#endif
