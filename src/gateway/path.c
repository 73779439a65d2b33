/*
 * The request path as the environ and the gateway see it: percent-decoding
 * (PATH_INFO is the decoded path) and the check that a decoded path stays
 * below the root.
 */
#include "gateway/environ_private.h"

#include "common/chartab.h"

#include <stdint.h>
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

/* The high bit of each byte of word that equals byte b (exact per byte:
   no carry crosses into the next byte). */
static inline uint64_t bytes_equal(uint64_t word, unsigned char b)
{
    const uint64_t ones = 0x0101010101010101u, lows = ones * 0x7f;
    uint64_t x = word ^ (ones * b);
    return ~(((x & lows) + lows) | x | lows);
}

/*
 * The length of the start of src that decoding leaves as it is: the bytes
 * before the first '%' (or '+' with CSGI_ENVIRON__PLUS_IS_SPACE). Most
 * paths and values have no escape at all, so this looks at eight bytes at
 * a time, the last word overlapping the one before, and the decoder copies
 * that part in one go.
 */
static size_t plain_prefix(const char *src, size_t len, unsigned flags)
{
    const unsigned char also = flags & CSGI_ENVIRON__PLUS_IS_SPACE ? '+' : '%';
    size_t i = 0;
    if (len >= 8) {
        for (;; i += 8) {
            size_t at = i + 8 <= len ? i : len - 8;
            uint64_t word;
            memcpy(&word, src + at, 8);
            if (bytes_equal(word, '%') | bytes_equal(word, also))
                break; /* the byte loop below finds which */
            if (at + 8 == len)
                return len;
        }
    }
    while (i < len && src[i] != '%' && src[i] != (char)also)
        i++;
    return i;
}

size_t csgi_environ__unescape(char *dst, const char *src, size_t len, unsigned flags)
{
    size_t out = plain_prefix(src, len, flags);
    if (dst != src && out)
        memcpy(dst, src, out);
    for (size_t i = out; i < len; i++) {
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
