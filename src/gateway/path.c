/*
 * The request path as the environ and the gateway see it: percent-decoding
 * (PATH_INFO is the decoded path) and the check that a decoded path stays
 * below the root.
 */
#include "gateway/environ_private.h"

#include "common/chartab.h"

#include <string.h>

/* The byte the escape "%XY" at s stands for (left: the bytes from s on),
   or -1 when s does not start a whole escape. */
static inline int escape_at(const char *s, size_t left)
{
    if (left < 3 || s[0] != '%')
        return -1;
    int high = csgi_char__hex_value((unsigned char)s[1]);
    int low = csgi_char__hex_value((unsigned char)s[2]);
    return high < 0 || low < 0 ? -1 : high << 4 | low;
}

size_t csgi_environ__unescape(char *dst, const char *src, size_t len, unsigned flags)
{
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '+' && (flags & CSGI_ENVIRON__PLUS_IS_SPACE)) {
            dst[out++] = ' ';
            continue;
        }
        if (c == '%') {
            int byte = escape_at(src + i, len - i);
            if (byte >= 0) {
                dst[out++] = (char)byte;
                i += 2;
                continue;
            }
            if (flags & CSGI_ENVIRON__STRICT)
                return (size_t)-1;
        }
        dst[out++] = c;
    }
    return out;
}

/*
 * Walk the decoded path segment by segment, counting depth. Unlike RFC 3986
 * 5.2.4 (and the parser), an empty segment does not count as a level: a
 * file server joining PATH_INFO to its root resolves "/a//../../x" as
 * POSIX does ("//" is "/"), which climbs above the root.
 */
int csgi_environ__path_is_safe(const char *path, size_t len)
{
    size_t depth = 0;
    size_t dots = 0; /* the segment so far is this many dots... */
    int other = 0;   /* ...or holds another byte */
    size_t i = 0;

    for (;;) {
        int at_end = i >= len;
        unsigned char c = 0;
        if (!at_end) {
            int byte = escape_at(path + i, len - i);
            c = (unsigned char)(byte >= 0 ? byte : path[i]);
            i += byte >= 0 ? 3 : 1;
        }
        if (at_end || c == '/') {
            if (!other && dots == 2) {
                if (depth == 0)
                    return 0;
                depth--;
            } else if (other || dots > 2) {
                depth++;
            }
            if (at_end)
                return 1;
            dots = 0;
            other = 0;
        } else if (c == '.' && !other) {
            dots++;
        } else {
            other = 1;
        }
    }
}

int csgi_environ__decoded_path_refused(const char *path, size_t len)
{
    return !csgi_environ__path_is_safe(path, len) || memmem(path, len, "%00", 3) != NULL;
}
