/*
 * The request path as the environ and the gateway see it: percent-decoding
 * (PATH_INFO is the decoded path) and the check that a decoded path stays
 * below the root.
 */
#include "gateway/environ_private.h"

#include <string.h>

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

size_t csgi_environ__percent_decode(char *dst, const char *src, size_t len)
{
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '%' && len - i >= 3) {
            int high = hex_value((unsigned char)src[i + 1]);
            int low = hex_value((unsigned char)src[i + 2]);
            if (high >= 0 && low >= 0) {
                dst[out++] = (char)(high << 4 | low);
                i += 2;
                continue;
            }
        }
        dst[out++] = src[i];
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
            c = (unsigned char)path[i++];
            if (c == '%' && len - i >= 2) {
                int high = hex_value((unsigned char)path[i]);
                int low = hex_value((unsigned char)path[i + 1]);
                if (high >= 0 && low >= 0) {
                    c = (unsigned char)(high << 4 | low);
                    i += 2;
                }
            }
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
