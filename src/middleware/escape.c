/*
 * The escaping the logging middleware (debug.c, translogger.c) apply to
 * bytes a client or an application chose, before they reach a log: a
 * header value with CR LF, an escape sequence or a quote cannot forge a
 * line, a field or a terminal's state.
 */
#include "middleware/middleware.h"

#include <stdbool.h>
#include <string.h>

static bool needs_escape(unsigned char c)
{
    return c < 0x20 || c > 0x7e || c == '"' || c == '\\';
}

size_t csgi_middleware__escape(char *out, size_t size, const char *bytes, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t used = 0;
    if (size < 4) { /* no room for "..." */
        if (size > 0)
            out[0] = '\0';
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)bytes[i];
        size_t need = needs_escape(c) ? 4 : 1;
        if (used + need + 3 >= size) { /* room for "..." and the NUL */
            memcpy(out + used, "...", 3);
            used += 3;
            break;
        }
        if (need == 1) {
            out[used++] = (char)c;
        } else {
            out[used++] = '\\';
            out[used++] = 'x';
            out[used++] = hex[c >> 4];
            out[used++] = hex[c & 15];
        }
    }
    out[used] = '\0';
    return used;
}
