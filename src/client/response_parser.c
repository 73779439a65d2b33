/*
 * The client's response head parser and URL splitter (RFC 9112 4, 6.3).
 *
 * The head scanner (http/parser.h, in response mode) has found the end of
 * the head with its size limits and its line-ending rules; the field lines
 * go through the engine's own field parser, so a response is held to the
 * rules a request is. What is new here is the status line and the framing
 * rules seen from the client's side.
 */
#include "client/client_private.h"

#include "common/chartab.h"
#include "csgi/common.h"

#include <string.h>

static int refuse(const char **reason, const char *text)
{
    *reason = text;
    return CSGI_EPARSE;
}

static int has_token(const csgi_http__header *h, const char *lower)
{
    const char *cursor = h->value, *element;
    size_t len;
    while (csgi_http__next_element(&cursor, h->value + h->value_len, &element, &len))
        if (csgi_http__token_equals(element, len, lower))
            return 1;
    return 0;
}

/* Content-Length = 1*DIGIT, at most 2^62 (no overflow in int64_t sums). */
static int parse_length(const char *s, size_t len, uint64_t *out)
{
    uint64_t value = 0;
    if (len == 0 || len > 18)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!csgi_char__is_digit(s[i]))
            return -1;
        value = value * 10 + (uint64_t)(s[i] - '0');
    }
    *out = value;
    return 0;
}

/* Body framing and keep-alive from the fields (RFC 9112 6.3, 9.3). */
static int apply_fields(csgi_client__head *out, int head_request, const char **reason)
{
    int have_length = 0, chunked = 0, close = 0, keep_alive = 0;
    uint64_t length = 0;

    for (size_t i = 0; i < out->header_count; i++) {
        const csgi_http__header *h = &out->headers[i];
        if (csgi_http__token_equals(h->name, h->name_len, "content-length")) {
            uint64_t value;
            if (parse_length(h->value, h->value_len, &value) != 0)
                return refuse(reason, "invalid Content-Length");
            if (have_length && value != length)
                return refuse(reason, "Content-Length values differ");
            have_length = 1;
            length = value;
        } else if (csgi_http__token_equals(h->name, h->name_len, "transfer-encoding")) {
            /* Only a lone "chunked": a coding under it could not be
               undone here, and one above it leaves no framing at all. */
            if (chunked || !csgi_http__token_equals(h->value, h->value_len, "chunked"))
                return refuse(reason, "unsupported Transfer-Encoding");
            chunked = 1;
        } else if (csgi_http__token_equals(h->name, h->name_len, "connection")) {
            close |= has_token(h, "close");
            keep_alive |= has_token(h, "keep-alive");
        }
    }
    if (chunked && have_length)
        return refuse(reason, "Transfer-Encoding with Content-Length");
    if (chunked && out->version_minor == 0)
        return refuse(reason, "Transfer-Encoding on HTTP/1.0");

    int bodiless = head_request || out->status == 204 || out->status == 304 || out->status < 200;
    if (bodiless) {
        out->framing = CSGI_CLIENT__BODY_NONE;
    } else if (chunked) {
        out->framing = CSGI_CLIENT__BODY_CHUNKED;
    } else if (have_length) {
        out->framing = CSGI_CLIENT__BODY_LENGTH;
        out->content_length = length;
    } else {
        out->framing = CSGI_CLIENT__BODY_CLOSE;
    }
    out->keep_alive = out->framing != CSGI_CLIENT__BODY_CLOSE && !close &&
                      (out->version_minor == 1 || keep_alive);
    return 0;
}

int csgi_client__parse_head(const char *head, size_t len, int head_request,
                            csgi_http__header *headers, size_t capacity, csgi_client__head *out,
                            const char **reason)
{
    const char *end = head + len;
    memset(out, 0, sizeof(*out));
    out->headers = headers;
    if (len < 4 || memcmp(end - 4, "\r\n\r\n", 4) != 0)
        return refuse(reason, "response head does not end with an empty line");

    /* status-line = HTTP-version SP status-code SP [ reason-phrase ]; the
       SP before an empty reason is often left out, and accepted. */
    const char *line_end = memchr(head, '\r', len); /* there is one: the head ends in CRLF */
    const char *p = head;
    if (line_end - p < 12 || memcmp(p, "HTTP/", 5) != 0 || !csgi_char__is_digit(p[5]) ||
        p[6] != '.' || !csgi_char__is_digit(p[7]) || p[8] != ' ')
        return refuse(reason, "malformed status line");
    if (p[5] != '1')
        return refuse(reason, "unsupported HTTP version");
    out->version_minor = p[7] == '0' ? 0 : 1;
    p += 9;
    if (!csgi_char__is_digit(p[0]) || !csgi_char__is_digit(p[1]) || !csgi_char__is_digit(p[2]))
        return refuse(reason, "malformed status code");
    out->status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    if (out->status < 100 || out->status > 599)
        return refuse(reason, "status code out of range");
    p += 3;
    if (p < line_end && *p++ != ' ')
        return refuse(reason, "malformed status code");
    if (p < line_end && !csgi_char__is_field_value(p, (size_t)(line_end - p)))
        return refuse(reason, "control byte in reason phrase");
    out->reason = p;
    out->reason_len = (size_t)(line_end - p);

    /* The field lines, without the final empty line. */
    const char *fields = line_end + 2;
    csgi_http__error error;
    if (csgi_http__parse_fields(fields, (size_t)(end - 2 - fields), headers, capacity,
                                &out->header_count, NULL, &error) != 0)
        return refuse(reason, error.reason);
    return apply_fields(out, head_request, reason);
}

/* ---- URLs --------------------------------------------------------------- */

int csgi_client__parse_url(const char *url, csgi_client__url *out)
{
    memset(out, 0, sizeof(*out));
    if (!url)
        return CSGI_EINVAL;
    size_t len = strlen(url);
    const char *p;
    if (len > 7 && csgi_char__equal_nocase(url, "http://", 7)) {
        p = url + 7;
    } else if (len > 8 && csgi_char__equal_nocase(url, "https://", 8)) {
        p = url + 8;
        out->tls = 1;
    } else {
        return CSGI_EINVAL;
    }
    const char *end = url + len;
    for (const char *q = p; q < end; q++)
        if (!csgi_char__is_target((unsigned char)*q))
            return CSGI_EINVAL; /* SP, control bytes, '#' */

    const char *authority_end = p;
    while (authority_end < end && *authority_end != '/' && *authority_end != '?')
        authority_end++;
    const char *host_end;
    if (*p == '[') {
        const char *bracket = memchr(p, ']', (size_t)(authority_end - p));
        if (!bracket || bracket == p + 1)
            return CSGI_EINVAL;
        for (const char *q = p + 1; q < bracket; q++)
            if (!csgi_char__is_hexdig((unsigned char)*q) && *q != ':' && *q != '.')
                return CSGI_EINVAL;
        out->host = p + 1;
        out->host_len = (size_t)(bracket - p - 1);
        out->ipv6 = 1;
        host_end = bracket + 1;
    } else {
        host_end = p;
        while (host_end < authority_end && *host_end != ':') {
            if (!csgi_char__is_unreserved((unsigned char)*host_end))
                return CSGI_EINVAL; /* userinfo, percent-encoding, sub-delims */
            host_end++;
        }
        if (host_end == p)
            return CSGI_EINVAL;
        out->host = p;
        out->host_len = (size_t)(host_end - p);
    }
    out->port = out->tls ? 443 : 80;
    if (host_end < authority_end) {
        if (*host_end != ':' || host_end + 1 == authority_end)
            return CSGI_EINVAL;
        int port = 0;
        for (const char *q = host_end + 1; q < authority_end; q++) {
            if (!csgi_char__is_digit((unsigned char)*q) || port > 6553)
                return CSGI_EINVAL;
            port = port * 10 + (*q - '0');
        }
        if (port < 1 || port > 65535)
            return CSGI_EINVAL;
        out->port = port;
        out->port_given = 1;
    }
    if (authority_end == end) {
        out->target = "/";
        out->target_len = 1;
    } else if (*authority_end == '?') {
        out->target = authority_end; /* "?q": the client sends "/?q" */
        out->target_len = (size_t)(end - authority_end);
    } else {
        out->target = authority_end;
        out->target_len = (size_t)(end - authority_end);
    }
    return 0;
}
