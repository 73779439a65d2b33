/*
 * libFuzzer target for the client's response head parser and URL splitter
 * (src/client/client_private.h).
 *
 * The input is a response as a server would send it. The first byte's low
 * bit says whether the request was HEAD; the rest goes to the head scanner
 * in response mode whole, then byte by byte (the outcomes must agree), to
 * the response parser when a head was found, and what follows a chunked
 * head through the chunked decoder. The input as a C string also goes to
 * the URL splitter. Each buffer is a heap copy of its exact size, so
 * AddressSanitizer sees any read past it.
 *
 * Invariants: pointers lie inside the head (or the URL); a status is
 * 100-599; HEAD, 1xx, 204 and 304 have no body; chunked framing never comes
 * with a length; a close-delimited body is never kept alive; a URL's port
 * is 1-65535 and its host is not empty. A violation aborts.
 */
#include "fuzz_common.h"

#include "client/client_private.h"
#include "csgi/common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int inside(const char *p, size_t n, const char *buf, size_t len)
{
    return (uintptr_t)p >= (uintptr_t)buf && (uintptr_t)p + n <= (uintptr_t)buf + len;
}

static csgi_http__scan_result scan(const char *buf, size_t len, int split,
                                   csgi_http__scanner *scanner)
{
    static const csgi_http__limits limits = {4096, 4096, 16384, 64};
    csgi_http__error error;
    csgi_http__scan_result r = CSGI_HTTP__SCAN_MORE;
    csgi_http__scanner_init(scanner);
    scanner->response = 1;
    for (size_t n = split ? 1 : len; r == CSGI_HTTP__SCAN_MORE && n <= len; n++) {
        char *copy = malloc(n ? n : 1);
        CHECK(copy);
        memcpy(copy, buf, n);
        r = csgi_http__scan(scanner, copy, n, &limits, &error);
        free(copy);
    }
    return r;
}

static void check_head(const char *buf, size_t len, int head_request)
{
    csgi_http__scanner whole, pieces;
    csgi_http__scan_result r = scan(buf, len, 0, &whole);
    CHECK(scan(buf, len, 1, &pieces) == r);
    if (r != CSGI_HTTP__SCAN_DONE)
        return;
    CHECK(pieces.head_length == whole.head_length && pieces.skipped == whole.skipped);
    size_t head_len = whole.head_length - whole.skipped;
    char *head = malloc(head_len);
    CHECK(head);
    memcpy(head, buf + whole.skipped, head_len);
    csgi_http__header *fields = calloc(whole.header_count + 1, sizeof(*fields));
    CHECK(fields);
    csgi_client__head out;
    const char *reason = NULL;
    int rc = csgi_client__parse_head(head, head_len, head_request, fields, whole.header_count + 1,
                                     &out, &reason);
    if (rc != 0) {
        CHECK(rc == CSGI_EPARSE && reason);
    } else {
        CHECK(out.status >= 100 && out.status <= 599);
        CHECK(inside(out.reason, out.reason_len, head, head_len));
        CHECK(out.header_count <= whole.header_count);
        for (size_t i = 0; i < out.header_count; i++) {
            CHECK(inside(fields[i].name, fields[i].name_len, head, head_len));
            CHECK(inside(fields[i].value, fields[i].value_len, head, head_len));
        }
        if (head_request || out.status < 200 || out.status == 204 || out.status == 304)
            CHECK(out.framing == CSGI_CLIENT__BODY_NONE);
        if (out.framing == CSGI_CLIENT__BODY_CLOSE)
            CHECK(!out.keep_alive);
        if (out.framing == CSGI_CLIENT__BODY_CHUNKED) {
            csgi_http__chunked decoder;
            csgi_http__chunked_init(&decoder);
            const char *rest = buf + whole.head_length;
            size_t left = len - whole.head_length;
            while (left > 0) {
                size_t consumed = 0;
                csgi_http__error error;
                csgi_http__chunk_result c =
                    csgi_http__chunked_decode(&decoder, rest, left, &consumed, &error);
                if (c == CSGI_HTTP__CHUNK_ERROR)
                    break;
                CHECK(consumed > 0 && consumed <= left);
                rest += consumed;
                left -= consumed;
                if (c == CSGI_HTTP__CHUNK_DONE)
                    break;
            }
        }
    }
    free(fields);
    free(head);
}

static void check_url(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1);
    CHECK(url);
    memcpy(url, data, size);
    url[size] = '\0';
    csgi_client__url parts;
    if (csgi_client__parse_url(url, &parts) == 0) {
        size_t len = strlen(url);
        CHECK(parts.port >= 1 && parts.port <= 65535);
        CHECK(parts.host_len > 0 && inside(parts.host, parts.host_len, url, len));
        CHECK(parts.target_len > 0);
        CHECK(parts.target[0] == '/' || parts.target[0] == '?');
    }
    free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    check_head((const char *)data + 1, size - 1, data[0] & 1);
    check_url(data, size);
    return 0;
}
