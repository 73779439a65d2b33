/*
 * The HTTP/1.1 request parser (RFC 9112), internal to csgi.
 *
 * Three pieces, none of which allocates memory or knows about sockets:
 *
 *  1. The head scanner finds the end of a request head (request line and
 *     header fields, up to the empty line) in bytes that arrive piecemeal. It
 *     is resumable: call it again with the same bytes plus more, and it goes
 *     on where it stopped, so a head split at any byte boundary costs one pass.
 *     It enforces the size limits and the line-ending rules while scanning, so
 *     an oversized or malformed head is refused before it is complete.
 *
 *  2. The head parser takes one complete head (as the scanner delimited it)
 *     and fills a csgi_http__head: method, target and its parts, version,
 *     header fields and the semantic facts the engine needs (body framing,
 *     keep-alive, Expect, Host). Every string points into the head's bytes:
 *     nothing is copied, nothing is allocated. The caller passes the array
 *     for the header fields, sized from the scanner's count.
 *
 *  3. The chunked decoder de-chunks a request body incrementally. It never
 *     copies body data: it tells the caller how many bytes at the front of
 *     the input are data, framing or trailer-section bytes.
 *
 * Errors are reported as the HTTP status code the server must answer with
 * (400, 413, 414, 431, 501, 505) plus a static reason text for the log.
 */
#ifndef CSGI_HTTP_PARSER_H
#define CSGI_HTTP_PARSER_H

#include "common/chartab.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Limits on a request head. Every field must be > 0. */
typedef struct csgi_http__limits {
    size_t max_request_line; /* bytes of the request line without CRLF -> 414 */
    size_t max_header_line;  /* bytes of one header line without CRLF -> 431 */
    size_t max_head;         /* bytes of the whole head, CRLFs included -> 431 */
    size_t max_headers;      /* number of header fields -> 431 */
} csgi_http__limits;

/* Defaults follow nginx: 8 KiB lines, 4 x 8 KiB for the whole head. */
#define CSGI_HTTP__LIMITS_DEFAULT \
    {                             \
        8192, 8192, 32768, 100    \
    }

/* The outcome of a parser call that can fail. */
typedef struct csgi_http__error {
    int status;         /* HTTP status to answer with: 400, 413, 414, 417, 431, 501, 505 */
    const char *reason; /* static text for the error log, e.g. "bare LF in header" */
} csgi_http__error;

/* ---- 1. The head scanner ------------------------------------------------ */

typedef enum csgi_http__scan_result {
    CSGI_HTTP__SCAN_ERROR = -1, /* see the csgi_http__error */
    CSGI_HTTP__SCAN_MORE = 0,   /* no complete head yet: call again with more bytes */
    CSGI_HTTP__SCAN_DONE = 1    /* a complete head: see head_length and header_count */
} csgi_http__scan_result;

typedef struct csgi_http__scanner {
    /* Public results, valid after CSGI_HTTP__SCAN_DONE. */
    size_t head_length;  /* bytes from the start of the buffer through the final CRLF CRLF */
    size_t skipped;      /* leading empty lines (CRLF) before the request line, in bytes;
                            the request line starts at buf + skipped */
    size_t header_count; /* number of header field lines */

    /* Set after csgi_http__scanner_init for a response head (the client's):
       its first line is a status line, which does not end in a version. */
    int response;

    /* Private scanning state. */
    size_t offset;     /* bytes already examined */
    size_t line_start; /* offset where the current line begins */
    int state;
} csgi_http__scanner;

/* Reset a scanner for a new request. */
void csgi_http__scanner_init(csgi_http__scanner *scanner);

/*
 * Scan for the end of a request head.
 *
 * buf/len: all bytes received for this request so far, starting with its
 * first byte. Between calls the caller may only append bytes (the first
 * scanner->offset bytes must be unchanged; the pointer itself may move).
 *
 * Checks while scanning: a bare LF or a CR not followed by LF -> 400; a request
 * line longer than max_request_line -> 414; a header line longer than
 * max_header_line, a head longer than max_head or more than max_headers
 * header lines -> 431. Up to 8 empty lines before the request line are
 * skipped (RFC 9112 section 2.2); more -> 400.
 *
 * Returns SCAN_DONE (head_length, skipped and header_count set), SCAN_MORE,
 * or SCAN_ERROR with *error filled.
 */
csgi_http__scan_result csgi_http__scan(csgi_http__scanner *scanner, const char *buf, size_t len,
                                       const csgi_http__limits *limits, csgi_http__error *error);

/* ---- 2. The head parser ------------------------------------------------- */

typedef struct csgi_http__header {
    const char *name; /* field name as sent (case preserved), not NUL-terminated */
    size_t name_len;
    const char *value; /* value without leading and trailing whitespace */
    size_t value_len;
} csgi_http__header;

typedef enum csgi_http__target_form {
    CSGI_HTTP__FORM_ORIGIN,    /* /path?query */
    CSGI_HTTP__FORM_ABSOLUTE,  /* http://host:port/path?query */
    CSGI_HTTP__FORM_AUTHORITY, /* host:port, only with CONNECT */
    CSGI_HTTP__FORM_ASTERISK   /* *, only with OPTIONS */
} csgi_http__target_form;

typedef enum csgi_http__body_kind {
    CSGI_HTTP__BODY_NONE,   /* no Content-Length, no Transfer-Encoding: length 0 */
    CSGI_HTTP__BODY_LENGTH, /* Content-Length: content_length bytes (may be 0) */
    CSGI_HTTP__BODY_CHUNKED /* Transfer-Encoding: chunked */
} csgi_http__body_kind;

/* A parsed request head. All pointers point into the head's bytes. */
typedef struct csgi_http__head {
    const char *method; /* a token, case-sensitive */
    size_t method_len;
    const char *target; /* request-target exactly as sent */
    size_t target_len;
    csgi_http__target_form form;

    /* For the absolute form: "http" or "https" as sent (scheme_len 0 otherwise). */
    const char *scheme;
    size_t scheme_len;

    /* Path, still percent-encoded. Origin and absolute form: the path
       component ("/" when an absolute-form target has an empty path: path
       then points to a static "/"). Authority and asterisk form: empty. */
    const char *path;
    size_t path_len;

    /* Query without the '?'; query is NULL when the target has no '?' and
       points to an empty string when it has an empty query. */
    const char *query;
    size_t query_len;

    /* The host the request is for: the target's authority in absolute and
       authority form (the Host header is then ignored, RFC 9112 3.2.2),
       else the Host header's value; NULL when there is neither. */
    const char *host;
    size_t host_len;

    int version_minor; /* 0 or 1: HTTP/1.0 or HTTP/1.1 (HTTP/1.2+ is taken as 1.1) */

    csgi_http__header *headers; /* the caller's array, header_count entries used */
    size_t header_count;

    csgi_http__body_kind body;
    uint64_t content_length; /* with CSGI_HTTP__BODY_LENGTH */

    unsigned keep_alive : 1;      /* the client allows another request on this connection */
    unsigned expect_continue : 1; /* Expect: 100-continue (HTTP/1.1 only) */
    unsigned underscore : 1;      /* a field name holds '_' (the environ drops it) */
    /* The head's bytes are the request's own writable copy: a reader may
       write a NUL after a field value (on the CR or whitespace that
       follows it, which nothing reads after the parse) to hand the value
       out as a C string without copying it. Set by the parser's callers. */
    unsigned own_bytes : 1;
} csgi_http__head;

/*
 * Parse one complete request head.
 *
 * head/len: the bytes of the head from its request line (buf + skipped)
 * through the final CRLF CRLF, as found by csgi_http__scan. headers/capacity:
 * an array the caller provides; capacity must be at least the scanner's
 * header_count.
 *
 * Refuses with 400: a method that is not a token; not exactly one SP between
 * method, target and version; a malformed version ("HTTP/" DIGIT "." DIGIT);
 * a target with SP or control bytes, a malformed absolute-form or
 * authority-form target, a form the method does not allow ("*" other than
 * with OPTIONS, authority form other than with CONNECT); a path that climbs
 * above the root once dot segments ("..", "%2e%2e" in any case mix) are
 * resolved; an obs-fold line (starting with SP or HTAB); a field name that
 * is not a token or is followed by whitespace before the colon; a field
 * value with control bytes other than HTAB; missing Host on HTTP/1.1; more
 * than one Host; a malformed Host; several Content-Length fields or values,
 * a value that is not 1*DIGIT or overflows; Transfer-Encoding together with
 * Content-Length; Transfer-Encoding on HTTP/1.0; "chunked" not last, given
 * twice, or an empty coding list. Refuses with 501 a Transfer-Encoding with
 * a coding other than chunked, with 505 a version other than HTTP/1.x.
 *
 * keep_alive: HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with
 * "Connection: keep-alive" (Connection is a comma-separated, case-insensitive
 * token list and may be repeated). expect_continue: "Expect: 100-continue"
 * (case-insensitive) on HTTP/1.1 (ignored on HTTP/1.0, RFC 9110 10.1.1); any
 * other Expect value on HTTP/1.1 -> 417. Control bytes other than HTAB
 * anywhere in the head -> 400.
 *
 * Returns 0 with *out filled, or the status code with *error filled.
 */
int csgi_http__parse_head(const char *head, size_t len, csgi_http__header *headers, size_t capacity,
                          csgi_http__head *out, csgi_http__error *error);

/*
 * Parse a block of zero or more header field lines, each ending in CRLF (no
 * terminating empty line), with the field-line rules of csgi_http__parse_head
 * (obs-fold, names, whitespace before the colon, control bytes). The head
 * parser uses it for its fields; the engine uses it for a chunked trailer.
 *
 * Returns 0 with *count set, or 400 with *error filled; more than capacity
 * fields -> 431. *underscore (when not NULL) is set to 1 when a name holds
 * '_', and left alone otherwise.
 */
int csgi_http__parse_fields(const char *block, size_t len, csgi_http__header *headers,
                            size_t capacity, size_t *count, int *underscore,
                            csgi_http__error *error);

/* ---- 3. The chunked decoder --------------------------------------------- */

typedef enum csgi_http__chunk_result {
    CSGI_HTTP__CHUNK_ERROR = -1,  /* see the csgi_http__error */
    CSGI_HTTP__CHUNK_FRAMING = 0, /* *consumed bytes are framing: drop them */
    CSGI_HTTP__CHUNK_DATA = 1,    /* *consumed bytes are body data: deliver them */
    CSGI_HTTP__CHUNK_TRAILER = 2, /* *consumed bytes belong to the trailer section: keep them */
    CSGI_HTTP__CHUNK_DONE = 3     /* the body ended; *consumed bytes (its last CRLF) are framing */
} csgi_http__chunk_result;

typedef struct csgi_http__chunked {
    uint64_t remaining; /* data bytes left in the current chunk */
    size_t line_len;    /* bytes of the current size or trailer line so far */
    size_t trailer_len; /* bytes of trailer section so far */
    size_t max_line;    /* limit on a chunk-size line with extensions (default 4096) */
    size_t max_trailer; /* limit on the trailer section (default 8192) */
    uint64_t max_body;  /* limit on the sum of the chunk sizes, 0 = none (the default) */
    uint64_t declared;  /* sum of the chunk sizes so far (counted when max_body is set) */
    int state;
    int ext_state;
} csgi_http__chunked;

/* Reset a decoder for a new body, with default limits. */
void csgi_http__chunked_init(csgi_http__chunked *decoder);

/*
 * Decode the next piece of a chunked body.
 *
 * buf/len: the next input bytes (len > 0). Consumes from the front of buf
 * only bytes of one kind, so the caller can move data bytes without
 * copying: *consumed (> 0 unless the result is an error) bytes are framing,
 * data or trailer bytes according to the result. Call again with the rest.
 * Any split of the input gives the same data, trailer and result.
 *
 * Refuses with 400: a chunk size that is not 1*HEXDIG or exceeds 2^60;
 * malformed chunk extensions (ext-name a token, ext-val a token or a
 * quoted-string, optional whitespace around ';' and '='); a missing CRLF
 * after chunk data; bare LF or CR; control bytes; a malformed trailer
 * field line (the trailer section is checked line by line as it arrives).
 * A size line longer than max_line or a trailer section longer than
 * max_trailer -> 431 for the trailer, 400 for the size line. A chunk size
 * that takes the sum of the sizes above max_body (when set) -> 413, as
 * soon as its last digit is seen, before any of its data.
 *
 * The trailer bytes the caller kept are the trailer field lines, each with
 * its CRLF; the empty line that ends the body is framing, consumed with the
 * DONE result. So after CSGI_HTTP__CHUNK_DONE the kept bytes (possibly none)
 * are a block for csgi_http__parse_fields.
 */
csgi_http__chunk_result csgi_http__chunked_decode(csgi_http__chunked *decoder, const char *buf,
                                                  size_t len, size_t *consumed,
                                                  csgi_http__error *error);

/* ---- Lists ---------------------------------------------------------------- */

/* The next element of a comma-separated list (RFC 9110 5.6.1) in
   [*cursor, end), without the whitespace around it; empty elements are
   skipped. Returns 0 at the end of the list. The client reads its
   responses' Connection fields with it. */
int csgi_http__next_element(const char **cursor, const char *end, const char **element,
                            size_t *element_len);

/* ---- Names ---------------------------------------------------------------- */

/* 1 when the len bytes at s are the C string lower (no upper-case letter),
   ignoring ASCII case. The byte classes themselves, and the checks callers
   outside the parser make, are common/chartab.h's. */
static inline int csgi_http__token_equals(const char *s, size_t len, const char *lower)
{
    return strlen(lower) == len && csgi_char__equal_nocase(s, lower, len);
}

#endif /* CSGI_HTTP_PARSER_H */
