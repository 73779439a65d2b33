/*
 * A growing text (internal): bytes appended to a NUL-terminated buffer on
 * the heap, for the loader's joined INI values, interpolated values and
 * csgi_loader_describe's description. It grows by csgi's one growth rule
 * (common/vec.h), up to a cap the owner gives.
 *
 * A zeroed csgi_text with max set is an empty text; data stays NULL until
 * the first append.
 */
#ifndef CSGI_LOADER_TEXT_H
#define CSGI_LOADER_TEXT_H

#include <stdarg.h>
#include <stddef.h>

typedef struct csgi_text {
    char *data;      /* csgi__realloc'd; NUL-terminated once anything was appended */
    size_t len;      /* bytes before the NUL */
    size_t capacity; /* bytes allocated */
    size_t max;      /* the longest text allowed, NUL excluded */
} csgi_text;

/* Append n bytes of s (which must not point into text). Returns 0;
   CSGI_ETOOBIG when the text would exceed text->max bytes, CSGI_ENOMEM,
   with the text unchanged. */
int csgi_text__append(csgi_text *text, const char *s, size_t n);

/* Append printf-style, as csgi_text__append; CSGI_EINVAL when format
   cannot be rendered. */
int csgi_text__vprintf(csgi_text *text, const char *format, va_list args)
    __attribute__((format(printf, 2, 0)));

/* Release the buffer (the text is empty again; max stays). */
void csgi_text__free(csgi_text *text);

#endif
