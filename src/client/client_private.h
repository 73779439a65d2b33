/*
 * The HTTP client's internals (src/client/): the response head parser and
 * the URL splitter, which know nothing of sockets, shared with the tests.
 */
#ifndef CSGI_CLIENT_PRIVATE_H
#define CSGI_CLIENT_PRIVATE_H

#include "http/parser.h"

#include <stddef.h>
#include <stdint.h>

/* How a response's body is delimited (RFC 9112 6.3). */
typedef enum csgi_client__framing {
    CSGI_CLIENT__BODY_NONE,    /* HEAD, 204, 304: no body whatever the fields say */
    CSGI_CLIENT__BODY_LENGTH,  /* Content-Length bytes */
    CSGI_CLIENT__BODY_CHUNKED, /* Transfer-Encoding: chunked */
    CSGI_CLIENT__BODY_CLOSE    /* no framing: until the server closes */
} csgi_client__framing;

/* A parsed response head. Every pointer points into the head's bytes. */
typedef struct csgi_client__head {
    int status;
    const char *reason;
    size_t reason_len;
    int version_minor;
    csgi_http__header *headers; /* the caller's array */
    size_t header_count;
    csgi_client__framing framing;
    uint64_t content_length; /* with CSGI_CLIENT__BODY_LENGTH */
    unsigned keep_alive : 1; /* the connection may carry another request */
} csgi_client__head;

/*
 * Parse one complete response head (status line through the final CRLF
 * CRLF, as the head scanner in response mode delimited it). headers has
 * room for capacity fields (the scanner's header_count). head_request: the
 * request was HEAD (no body, whatever the fields say).
 *
 * Refuses (CSGI_EPARSE, *reason set to a static text): a status line other
 * than "HTTP/1." DIGIT SP 3DIGIT [SP reason]; a status outside 100-599;
 * control bytes in the reason; a malformed field line (obs-fold, bad name,
 * whitespace before the colon, control bytes); a Content-Length that is
 * not 1*DIGIT or copies that differ; Transfer-Encoding with
 * Content-Length, on HTTP/1.0, or other than exactly "chunked".
 */
int csgi_client__parse_head(const char *head, size_t len, int head_request,
                            csgi_http__header *headers, size_t capacity, csgi_client__head *out,
                            const char **reason);

/* A URL split into its parts (pointers into the URL, not NUL-terminated). */
typedef struct csgi_client__url {
    int tls;          /* https */
    const char *host; /* without brackets for an IPv6 address */
    size_t host_len;
    int ipv6; /* the host was in brackets */
    int port; /* the port given, else 80 or 443 */
    int port_given;
    const char *target; /* path and query ("/" when the URL has none) */
    size_t target_len;
} csgi_client__url;

/* Split an http(s) URL. Returns 0 or CSGI_EINVAL: another scheme, userinfo,
   an empty or malformed host or port, a fragment, control bytes or SP. */
int csgi_client__parse_url(const char *url, csgi_client__url *out);

#endif
