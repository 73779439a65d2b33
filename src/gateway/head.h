/*
 * Checking what an application gives start-response, and copying it into
 * the request's arena as the head will carry it. The server's gateway and
 * the in-process test client both use this, so an application that is
 * refused by one is refused by the other. Inline: it runs for every
 * response, and a call more is a measurable share of a small one.
 */
#ifndef CSGI_GATEWAY_HEAD_H
#define CSGI_GATEWAY_HEAD_H

#include "common/arena.h"
#include "http/engine.h"
#include "http/parser.h"

#include <csgi/app.h>

#include <stdint.h>
#include <string.h>

/* A response head as an application gave it to start-response, checked
   and copied into the request's arena. */
typedef struct csgi_gateway__head {
    int status;         /* 200..599 */
    const char *reason; /* NUL-terminated, reason_len bytes */
    size_t reason_len;
    const char *fields; /* "Name: value\r\n" lines, Content-Length left out */
    size_t fields_len;
    unsigned field_flags;   /* CSGI_HTTP__HAS_DATE, CSGI_HTTP__HAS_SERVER */
    int64_t content_length; /* the application's Content-Length, else -1 */
} csgi_gateway__head;

#define NAME_IS(h, literal)                  \
    ((h)->name_len == sizeof(literal) - 1 && \
     csgi_http__token_equals((h)->name, (h)->name_len, literal))

/* Fields that describe this connection, not the response: the server's
   business (RFC 9110 7.6.1; PEP 3333 forbids them to applications).
   Sorted by length first, so most names are dismissed by one compare. */
static inline int csgi_head__is_hop_by_hop(const csgi_header *h)
{
    switch (h->name_len) {
    case 2: return NAME_IS(h, "te");
    case 7: return NAME_IS(h, "trailer") || NAME_IS(h, "upgrade");
    case 10: return NAME_IS(h, "connection") || NAME_IS(h, "keep-alive");
    case 17: return NAME_IS(h, "transfer-encoding");
    default: return h->name_len > 6 && csgi_http__token_equals(h->name, 6, "proxy-");
    }
}

/* A byte a field value may not hold: controls other than HTAB, and DEL
   (RFC 9110 5.5; obs-text, 0x80-0xFF, is allowed). */
/* 1 for a byte a field value may not hold: controls other than HTAB, and
   DEL (RFC 9110 5.5; obs-text, 0x80-0xFF, is allowed). */
static inline int csgi_head__bad_value_byte(unsigned char c)
{
    static const unsigned char bad_value_byte[256] = {
        [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1,
        [0x07] = 1, [0x08] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1, [0x0e] = 1,
        [0x0f] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1,
        [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1, [0x1c] = 1,
        [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, [0x7f] = 1,
    };
    return bad_value_byte[c];
}

/* "DDD Reason": returns the problem, or NULL with *code and *reason_len.
   The reason is checked while its length is found. */
static inline const char *csgi_head__check_status(const char *status, int *code, size_t *reason_len)
{
    if (!status)
        return "no status line";
    const unsigned char *s = (const unsigned char *)status;
    unsigned d0 = s[0] - (unsigned)'0';
    if (d0 > 9)
        return "status code is not three digits";
    unsigned d1 = s[1] - (unsigned)'0';
    if (d1 > 9)
        return "status code is not three digits";
    unsigned d2 = s[2] - (unsigned)'0';
    if (d2 > 9)
        return "status code is not three digits";
    if (s[3] != ' ')
        return "status is not \"DDD Reason\"";
    *code = (int)(d0 * 100 + d1 * 10 + d2);
    if (*code < 200 || *code > 599)
        return "status code outside 200-599";
    size_t len = 0;
    int bad = 0;
    for (unsigned char c; (c = s[4 + len]) != '\0'; len++)
        bad |= csgi_head__bad_value_byte(c);
    if (bad)
        return "control character in the status line";
    *reason_len = len;
    return NULL;
}

/* Copy a header value, checking it: 1 when it is a valid field value.
   Eight bytes at a time: a word is suspect when one of its bytes is below
   0x20 or is 0x7F (exact tests: a borrow can only start at such a byte),
   and a suspect value is checked byte by byte, for HTAB is allowed. */
static inline int csgi_head__copy_value(char *dst, const char *src, size_t len)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t suspect = 0;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w, del;
        memcpy(&w, src + i, 8);
        memcpy(dst + i, &w, 8);
        del = w ^ (ones * 0x7f);
        suspect |= ((w - ones * 0x20) & ~w) | ((del - ones) & ~del);
    }
    int bad = 0;
    for (; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (char)c;
        bad |= csgi_head__bad_value_byte(c);
    }
    if (suspect & highs) {
        for (i = 0; i < len && !bad; i++)
            bad = csgi_head__bad_value_byte((unsigned char)src[i]);
    }
    return !bad;
}

/* What a header name means to the server. */
enum csgi_head__name_kind { NAME_UNKNOWN, NAME_PLAIN, NAME_DATE, NAME_SERVER, NAME_CONTENT_LENGTH };

#define SAME(name, literal) (memcmp((name), (literal), sizeof(literal) - 1) == 0)

/* The common response header names, spelled as applications spell them
   (canonical case): one compare proves such a name is a token and not
   hop-by-hop. NAME_UNKNOWN for any other spelling or name. */
static inline enum csgi_head__name_kind csgi_head__known_name(const char *name, size_t len)
{
    switch (len) {
    case 4:
        if (SAME(name, "Date"))
            return NAME_DATE;
        return SAME(name, "ETag") || SAME(name, "Vary") ? NAME_PLAIN : NAME_UNKNOWN;
    case 5: return SAME(name, "Allow") ? NAME_PLAIN : NAME_UNKNOWN;
    case 6: return SAME(name, "Server") ? NAME_SERVER : NAME_UNKNOWN;
    case 7: return SAME(name, "Expires") ? NAME_PLAIN : NAME_UNKNOWN;
    case 8: return SAME(name, "Location") ? NAME_PLAIN : NAME_UNKNOWN;
    case 10: return SAME(name, "Set-Cookie") ? NAME_PLAIN : NAME_UNKNOWN;
    case 11: return SAME(name, "Retry-After") ? NAME_PLAIN : NAME_UNKNOWN;
    case 12: return SAME(name, "Content-Type") ? NAME_PLAIN : NAME_UNKNOWN;
    case 13:
        return SAME(name, "Cache-Control") || SAME(name, "Last-Modified") ||
                       SAME(name, "Accept-Ranges") || SAME(name, "Content-Range")
                   ? NAME_PLAIN
                   : NAME_UNKNOWN;
    case 14: return SAME(name, "Content-Length") ? NAME_CONTENT_LENGTH : NAME_UNKNOWN;
    case 16:
        return SAME(name, "Content-Encoding") || SAME(name, "WWW-Authenticate") ||
                       SAME(name, "Content-Language")
                   ? NAME_PLAIN
                   : NAME_UNKNOWN;
    case 19: return SAME(name, "Content-Disposition") ? NAME_PLAIN : NAME_UNKNOWN;
    default: return NAME_UNKNOWN;
    }
}

/* Any other name: copied and checked byte by byte, classified ignoring
   case. NAME_UNKNOWN when it is not a token, -1 when it is hop-by-hop. */
static inline int csgi_head__other_name(char *dst, const csgi_header *h)
{
    if (!csgi_http__copy_token(dst, h->name, h->name_len))
        return NAME_UNKNOWN;
    if (csgi_head__is_hop_by_hop(h))
        return -1;
    switch (h->name_len) {
    case 4: return NAME_IS(h, "date") ? NAME_DATE : NAME_PLAIN;
    case 6: return NAME_IS(h, "server") ? NAME_SERVER : NAME_PLAIN;
    case 14: return NAME_IS(h, "content-length") ? NAME_CONTENT_LENGTH : NAME_PLAIN;
    default: return NAME_PLAIN;
    }
}

/* Parse a Content-Length value the application gave: -1 if malformed. */
static inline int64_t csgi_head__parse_length(const csgi_header *h)
{
    if (h->value_len == 0 || h->value_len > 18)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < h->value_len; i++) {
        if (h->value[i] < '0' || h->value[i] > '9')
            return -1;
        n = n * 10 + (h->value[i] - '0');
    }
    return n;
}

static inline int csgi_head__refuse(const char **problem, const char *text)
{
    *problem = text;
    return CSGI_EINVAL;
}

/* Check status and headers (status line "DDD Reason" with 200-599, header
   names tokens, values without CR/LF/NUL/controls, no hop-by-hop header,
   at most one well-formed Content-Length) and copy them into arena.
   Returns 0; CSGI_EINVAL with *problem set to a static sentence; or
   CSGI_ENOMEM. */
static inline int csgi_gateway__head_build(csgi_arena *arena, const char *status,
                                           const csgi_header *headers, size_t count,
                                           csgi_gateway__head *out, const char **problem)
{
    int code = 0;
    size_t reason_len = 0;
    const char *why = csgi_head__check_status(status, &code, &reason_len);
    if (why)
        return csgi_head__refuse(problem, why);
    if (count && !headers)
        return csgi_head__refuse(problem, "header list missing");

    /* The fields may live on the application's stack: copy them now,
       formatted as the head will carry them (one arena block), for the
       head is written only once the body is known. Each byte is checked
       as it is copied. */
    size_t bytes = reason_len + 1;
    for (size_t i = 0; i < count; i++)
        bytes += headers[i].name_len + headers[i].value_len + 4;
    char *block = csgi_arena__alloc(arena, bytes);
    if (!block)
        return CSGI_ENOMEM;
    char *p = block;
    unsigned flags = 0;
    int64_t length = -1;
    for (size_t i = 0; i < count; i++) {
        const csgi_header *h = &headers[i];
        if (!h->name || (h->value_len && !h->value))
            return csgi_head__refuse(problem, "header name or value missing");
        int kind = h->name_len ? (int)csgi_head__known_name(h->name, h->name_len) : NAME_UNKNOWN;
        if (kind != NAME_UNKNOWN)
            memcpy(p, h->name, h->name_len);
        else if ((kind = csgi_head__other_name(p, h)) == NAME_UNKNOWN)
            return csgi_head__refuse(problem, "header name is not a token");
        else if (kind < 0)
            return csgi_head__refuse(problem,
                                     "hop-by-hop header (the server manages the connection)");
        if (kind == NAME_CONTENT_LENGTH) {
            if (length >= 0)
                return csgi_head__refuse(problem, "Content-Length given twice");
            if ((length = csgi_head__parse_length(h)) < 0)
                return csgi_head__refuse(problem, "malformed Content-Length");
            continue; /* the engine writes it from content_length */
        }
        if (!csgi_head__copy_value(p + h->name_len + 2, h->value, h->value_len))
            return csgi_head__refuse(problem, "CR, LF, NUL or control character in a header value");
        if (kind == NAME_DATE)
            flags |= CSGI_HTTP__HAS_DATE;
        else if (kind == NAME_SERVER)
            flags |= CSGI_HTTP__HAS_SERVER;
        p += h->name_len;
        *p++ = ':';
        *p++ = ' ';
        p += h->value_len;
        *p++ = '\r';
        *p++ = '\n';
    }
    out->fields = block;
    out->fields_len = (size_t)(p - block);
    out->field_flags = flags;
    /* Reasons are a few bytes: a loop beats a call to memcpy. */
    for (size_t i = 0; i <= reason_len; i++)
        p[i] = status[4 + i];
    out->reason = p;
    out->reason_len = reason_len;
    out->status = code;
    out->content_length = length;
    return 0;
}

#endif
