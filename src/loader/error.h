/*
 * Loading errors (internal): every layer of the loader (the INI reader, the
 * contexts, the factory resolver, the factories) fills the one public
 * struct, csgi_load_error (csgi/loader.h). The first error wins: a call that
 * finds text[0] != '\0' leaves the struct alone, like jansson's
 * json_error_t. Fields that do not fit are truncated.
 */
#ifndef CSGI_LOADER_ERROR_H
#define CSGI_LOADER_ERROR_H

#include <csgi/loader.h>

#include <stdarg.h>

/* Reset error to "no error yet". error may be NULL. */
void csgi_load_error__clear(csgi_load_error *error);

/* Record an error unless one is recorded already. error may be NULL (then
   nothing happens); file, section and key may be NULL; line may be 0. */
void csgi_load_error__set(csgi_load_error *error, const char *file, int line, const char *section,
                          const char *key, const char *format, ...)
    __attribute__((format(printf, 6, 7)));

void csgi_load_error__vset(csgi_load_error *error, const char *file, int line, const char *section,
                           const char *key, const char *format, va_list args)
    __attribute__((format(printf, 6, 0)));

/* An error with no place: the text of an error code (CSGI_ENOMEM, ...). */
void csgi_load_error__code(csgi_load_error *error, int code);

#endif
