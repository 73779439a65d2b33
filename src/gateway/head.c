/*
 * Checking what an application gives start-response, and copying it into
 * the request's arena as the head will carry it. The server's gateway and
 * the in-process test client both use this, so an application that is
 * refused by one is refused by the other.
 */
#include "gateway/gateway.h"

#include <string.h>

#define NAME_IS(h, literal)                  \
    ((h)->name_len == sizeof(literal) - 1 && \
     csgi_http__token_equals((h)->name, (h)->name_len, literal))

/* Fields that describe this connection, not the response: the server's
   business (RFC 9110 7.6.1; PEP 3333 forbids them to applications).
   Sorted by length first, so most names are dismissed by one compare. */
static int is_hop_by_hop(const csgi_header *h)
{
    switch (h->name_len) {
    case 2: return NAME_IS(h, "te");
    case 7: return NAME_IS(h, "trailer") || NAME_IS(h, "upgrade");
    case 10: return NAME_IS(h, "connection") || NAME_IS(h, "keep-alive");
    case 17: return NAME_IS(h, "transfer-encoding");
    default: return h->name_len > 6 && csgi_http__token_equals(h->name, 6, "proxy-");
    }
}

/* "DDD Reason": returns the problem, or NULL with *code and *reason_len. */
static const char *check_status(const char *status, int *code, size_t *reason_len)
{
    if (!status)
        return "no status line";
    for (int i = 0; i < 3; i++)
        if (status[i] < '0' || status[i] > '9')
            return "status code is not three digits";
    if (status[3] != ' ')
        return "status is not \"DDD Reason\"";
    *code = (status[0] - '0') * 100 + (status[1] - '0') * 10 + (status[2] - '0');
    if (*code < 200 || *code > 599)
        return "status code outside 200-599";
    size_t len = strlen(status + 4);
    if (!csgi_http__is_field_value(status + 4, len))
        return "control character in the status line";
    *reason_len = len;
    return NULL;
}

/* Parse a Content-Length value the application gave: -1 if malformed. */
static int64_t parse_length(const csgi_header *h)
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

static int refuse(const char **problem, const char *text)
{
    *problem = text;
    return CSGI_EINVAL;
}

int csgi_gateway__head_build(csgi_arena *arena, const char *status, const csgi_header *headers,
                             size_t count, csgi_gateway__head *out, const char **problem)
{
    int code = 0;
    size_t reason_len = 0;
    const char *why = check_status(status, &code, &reason_len);
    if (why)
        return refuse(problem, why);
    if (count && !headers)
        return refuse(problem, "header list missing");

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
            return refuse(problem, "header name or value missing");
        if (!csgi_http__copy_token(p, h->name, h->name_len))
            return refuse(problem, "header name is not a token");
        if (!csgi_http__copy_field_value(p + h->name_len + 2, h->value, h->value_len))
            return refuse(problem, "CR, LF, NUL or control character in a header value");
        switch (h->name_len) {
        case 4:
            if (NAME_IS(h, "date"))
                flags |= CSGI_HTTP__HAS_DATE;
            break;
        case 6:
            if (NAME_IS(h, "server"))
                flags |= CSGI_HTTP__HAS_SERVER;
            break;
        case 14:
            if (NAME_IS(h, "content-length")) {
                if (length >= 0)
                    return refuse(problem, "Content-Length given twice");
                if ((length = parse_length(h)) < 0)
                    return refuse(problem, "malformed Content-Length");
                continue; /* the engine writes it from content_length */
            }
            break;
        default: break;
        }
        if (is_hop_by_hop(h))
            return refuse(problem, "hop-by-hop header (the server manages the connection)");
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
    memcpy(p, status + 4, reason_len + 1);
    out->reason = p;
    out->reason_len = reason_len;
    out->status = code;
    out->content_length = length;
    return 0;
}
