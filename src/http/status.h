/*
 * The plain-text error page, shared by the engine's own error responses
 * (connection.c) and csgi_response_error() (src/helpers/errors.c), so a
 * client sees one format whoever answered.
 */
#ifndef CSGI_HTTP_STATUS_H
#define CSGI_HTTP_STATUS_H

#include <stddef.h>

/* The standard reason phrase of a status code, or "Unknown". */
const char *csgi_http__status_reason(int status);

/* Format the text/plain body of an error response into buf (snprintf
   rules: NUL-terminated when size > 0, truncated if needed):
       "404 Not Found\n"                    without detail (NULL or "")
       "404 Not Found\n\nDETAIL\n"          with one
   Returns the length of the whole text, as snprintf does. */
size_t csgi_http__error_text(char *buf, size_t size, int status, const char *detail);

#endif
