/* Loading errors: the one error struct of the INI reader and the loader. */
#include "loader/error.h"

#include <stdio.h>
#include <string.h>

static void copy_field(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

void csgi_load_error__clear(csgi_load_error *error)
{
    if (error)
        memset(error, 0, sizeof(*error));
}

void csgi_load_error__vset(csgi_load_error *error, const char *file, int line, const char *section,
                           const char *key, const char *format, va_list args)
{
    if (!error || error->text[0])
        return;
    copy_field(error->file, sizeof(error->file), file);
    error->line = line;
    copy_field(error->section, sizeof(error->section), section);
    copy_field(error->key, sizeof(error->key), key);
    vsnprintf(error->text, sizeof(error->text), format, args);
    if (!error->text[0])
        copy_field(error->text, sizeof(error->text), "error");
}

void csgi_load_error__set(csgi_load_error *error, const char *file, int line, const char *section,
                          const char *key, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    csgi_load_error__vset(error, file, line, section, key, format, args);
    va_end(args);
}

void csgi_load_error__code(csgi_load_error *error, int code)
{
    csgi_load_error__set(error, NULL, 0, NULL, NULL, "%s", csgi_strerror(code));
}

size_t csgi_load_error_format(const csgi_load_error *error, char *buf, size_t size)
{
    if (!error) {
        if (buf && size)
            buf[0] = '\0';
        return 0;
    }
    char location[32] = "";
    if (error->line > 0)
        snprintf(location, sizeof(location), ":%d", error->line);
    int where = error->file[0] || location[0];
    int in_section = error->section[0] != '\0';
    int at_key = error->key[0] != '\0';
    int n = snprintf(buf, buf ? size : 0, "%s%s%s%s%s%s%s%s%s", error->file, location,
                     where ? ": " : "", in_section ? "[" : "", error->section,
                     in_section ? "] " : "", error->key, at_key ? ": " : "", error->text);
    return n < 0 ? 0 : (size_t)n;
}
