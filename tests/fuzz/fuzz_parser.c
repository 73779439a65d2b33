/*
 * libFuzzer target for the HTTP/1.1 request parser (src/http/parser.h).
 *
 * The input is a request as it would arrive on a connection. It goes to
 * the scanner in pieces whose sizes come from a generator seeded with a hash
 * of the input (so the corpus stays plain HTTP and every run of one input is
 * the same), then to the head parser if a head was found, and what follows
 * the head goes through the chunked decoder, again in pieces. Every piece is
 * copied to a heap buffer of its exact size, so AddressSanitizer sees any
 * read past what the parser was given.
 *
 * Invariants: the scanner and the decoder give the same results however the
 * input is split; consumed counts and lengths stay inside the input; every
 * pointer the head parser returns lies inside the head; error statuses are
 * ones parser.h lists. A violation aborts.
 */
#include "fuzz_common.h"

#include "http/parser.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A piece size: mostly small, so lines and CRLFs get split, sometimes large. */
static size_t piece_size(uint64_t *random)
{
    uint64_t r = fuzz_next_random(random);
    if (r % 4 == 0)
        return 1 + (size_t)(r >> 8) % 512;
    return 1 + (size_t)(r >> 8) % 8;
}

static char *copy_of(const void *bytes, size_t len)
{
    char *copy = malloc(len ? len : 1);
    CHECK(copy);
    if (len)
        memcpy(copy, bytes, len);
    return copy;
}

static int inside(const char *p, size_t n, const char *buf, size_t len)
{
    return (uintptr_t)p >= (uintptr_t)buf && (uintptr_t)p + n <= (uintptr_t)buf + len;
}

/* ---- Scanner ------------------------------------------------------------- */

typedef struct scan_outcome {
    csgi_http__scan_result result;
    int status;
    size_t head_length;
    size_t skipped;
    size_t header_count;
} scan_outcome;

static void scan(const uint8_t *data, size_t size, const csgi_http__limits *limits,
                 uint64_t *random, int split, scan_outcome *out)
{
    csgi_http__scanner scanner;
    csgi_http__error error = {0, NULL};
    size_t len = 0;

    csgi_http__scanner_init(&scanner);
    memset(out, 0, sizeof(*out));
    do {
        len = split ? len + piece_size(random) : size;
        if (len > size)
            len = size;
        char *copy = copy_of(data, len);
        out->result = csgi_http__scan(&scanner, copy, len, limits, &error);
        free(copy);
        if (out->result == CSGI_HTTP__SCAN_MORE) {
            CHECK(scanner.offset <= len);
        }
    } while (out->result == CSGI_HTTP__SCAN_MORE && len < size);

    if (out->result == CSGI_HTTP__SCAN_ERROR) {
        CHECK(error.status == 400 || error.status == 414 || error.status == 431);
        CHECK(error.reason != NULL);
        out->status = error.status;
    } else if (out->result == CSGI_HTTP__SCAN_DONE) {
        CHECK(scanner.head_length <= len);
        CHECK(scanner.skipped < scanner.head_length);
        CHECK(scanner.skipped <= 16);
        CHECK(scanner.head_length - scanner.skipped >= 4);
        CHECK(scanner.head_length - scanner.skipped <= limits->max_head);
        CHECK(scanner.header_count <= limits->max_headers);
        out->head_length = scanner.head_length;
        out->skipped = scanner.skipped;
        out->header_count = scanner.header_count;
    } else {
        CHECK(out->result == CSGI_HTTP__SCAN_MORE);
    }
}

/* ---- Head parser ---------------------------------------------------------- */

static void parse_head(const uint8_t *bytes, size_t len, size_t header_count)
{
    char *head = copy_of(bytes, len);
    csgi_http__header *headers = malloc(header_count ? header_count * sizeof(*headers) : 1);
    csgi_http__head out;
    csgi_http__error error = {0, NULL};

    CHECK(headers);
    int status = csgi_http__parse_head(head, len, headers, header_count, &out, &error);
    if (status != 0) {
        CHECK(status == error.status);
        CHECK(status == 400 || status == 417 || status == 501 || status == 505);
        CHECK(error.reason != NULL);
        free(headers);
        free(head);
        return;
    }

    CHECK(out.method_len > 0 && out.method == head);
    CHECK(out.target_len > 0 && inside(out.target, out.target_len, head, len));
    CHECK(out.version_minor == 0 || out.version_minor == 1);
    CHECK(out.headers == headers);
    CHECK(out.header_count == header_count);
    for (size_t i = 0; i < out.header_count; i++) {
        CHECK(out.headers[i].name_len > 0);
        CHECK(inside(out.headers[i].name, out.headers[i].name_len, head, len));
        CHECK(inside(out.headers[i].value, out.headers[i].value_len, head, len));
    }
    if (out.scheme_len)
        CHECK(inside(out.scheme, out.scheme_len, out.target, out.target_len));
    if (out.path_len) {
        CHECK(out.path[0] == '/' || out.form == CSGI_HTTP__FORM_AUTHORITY);
        /* an absolute-form target with an empty path gets a static "/" */
        CHECK(inside(out.path, out.path_len, out.target, out.target_len) ||
              (out.form == CSGI_HTTP__FORM_ABSOLUTE && out.path_len == 1));
    }
    if (out.form == CSGI_HTTP__FORM_ORIGIN || out.form == CSGI_HTTP__FORM_ABSOLUTE)
        CHECK(out.path_len > 0);
    else
        CHECK(out.path_len == 0 && out.query == NULL);
    if (out.query)
        CHECK(inside(out.query, out.query_len, out.target, out.target_len));
    if (out.host)
        CHECK(inside(out.host, out.host_len, head, len));
    else
        CHECK(out.version_minor == 0);
    CHECK(out.body == CSGI_HTTP__BODY_NONE || out.body == CSGI_HTTP__BODY_LENGTH ||
          out.body == CSGI_HTTP__BODY_CHUNKED);
    if (out.body == CSGI_HTTP__BODY_CHUNKED)
        CHECK(out.version_minor == 1);
    if (out.expect_continue)
        CHECK(out.version_minor == 1);

    free(headers);
    free(head);
}

/* ---- Chunked decoder ------------------------------------------------------ */

typedef struct decode_outcome {
    csgi_http__chunk_result result; /* the last result */
    int status;
    size_t consumed;
    char *data;
    size_t data_len;
    char *trailer;
    size_t trailer_len;
} decode_outcome;

static void decode(const uint8_t *bytes, size_t len, const csgi_http__chunked *limits,
                   uint64_t *random, int split, decode_outcome *out)
{
    csgi_http__chunked decoder;

    csgi_http__chunked_init(&decoder);
    decoder.max_line = limits->max_line;
    decoder.max_trailer = limits->max_trailer;
    decoder.max_body = limits->max_body;
    memset(out, 0, sizeof(*out));
    out->data = malloc(len ? len : 1);
    out->trailer = malloc(len ? len : 1);
    CHECK(out->data && out->trailer);
    out->result = CSGI_HTTP__CHUNK_FRAMING;

    while (out->consumed < len) {
        size_t n = len - out->consumed;
        if (split) {
            size_t piece = piece_size(random);
            if (n > piece)
                n = piece;
        }
        char *piece = copy_of(bytes + out->consumed, n);
        size_t consumed = 0;
        csgi_http__error error = {0, NULL};
        out->result = csgi_http__chunked_decode(&decoder, piece, n, &consumed, &error);
        if (out->result == CSGI_HTTP__CHUNK_ERROR) {
            CHECK(error.status == 400 || error.status == 413 || error.status == 431);
            CHECK(error.reason != NULL);
            out->status = error.status;
            free(piece);
            return;
        }
        CHECK(consumed > 0 && consumed <= n);
        if (out->result == CSGI_HTTP__CHUNK_DATA) {
            memcpy(out->data + out->data_len, piece, consumed);
            out->data_len += consumed;
            CHECK(!decoder.max_body || out->data_len <= decoder.max_body);
        } else if (out->result == CSGI_HTTP__CHUNK_TRAILER) {
            memcpy(out->trailer + out->trailer_len, piece, consumed);
            out->trailer_len += consumed;
            CHECK(out->trailer_len <= decoder.max_trailer);
        } else {
            CHECK(out->result == CSGI_HTTP__CHUNK_FRAMING || out->result == CSGI_HTTP__CHUNK_DONE);
        }
        free(piece);
        out->consumed += consumed;
        if (out->result == CSGI_HTTP__CHUNK_DONE)
            return;
    }
}

static void decode_body(const uint8_t *bytes, size_t len, uint64_t *random)
{
    decode_outcome whole;
    decode_outcome split;
    csgi_http__chunked limits;

    /* the default limits, or small ones that inputs can reach */
    csgi_http__chunked_init(&limits);
    if (fuzz_next_random(random) % 2) {
        limits.max_line = 1 + (size_t)(fuzz_next_random(random) % 64);
        limits.max_trailer = 1 + (size_t)(fuzz_next_random(random) % 256);
        limits.max_body = fuzz_next_random(random) % 512;
    }
    decode(bytes, len, &limits, random, 0, &whole);
    decode(bytes, len, &limits, random, 1, &split);

    CHECK(whole.result == split.result);
    if (whole.result == CSGI_HTTP__CHUNK_ERROR) {
        CHECK(whole.status == split.status);
    } else {
        CHECK(whole.consumed == split.consumed);
        CHECK(whole.data_len == split.data_len);
        CHECK(memcmp(whole.data, split.data, whole.data_len) == 0);
        CHECK(whole.trailer_len == split.trailer_len);
        CHECK(memcmp(whole.trailer, split.trailer, whole.trailer_len) == 0);
    }

    if (whole.result == CSGI_HTTP__CHUNK_DONE) {
        /* The decoder checked the trailer lines; parse_fields must agree. */
        size_t lines = 0;
        for (size_t i = 0; i < whole.trailer_len; i++)
            lines += whole.trailer[i] == '\n';
        char *block = copy_of(whole.trailer, whole.trailer_len);
        csgi_http__header *fields = malloc(lines ? lines * sizeof(*fields) : 1);
        csgi_http__error error = {0, NULL};
        size_t count = 0;
        CHECK(fields);
        CHECK(csgi_http__parse_fields(block, whole.trailer_len, fields, lines, &count, NULL,
                                      &error) == 0);
        CHECK(count == lines);
        free(fields);
        free(block);
    }

    free(whole.data);
    free(whole.trailer);
    free(split.data);
    free(split.trailer);
}

/* ---- Field lines on their own ----------------------------------------------- */

static void parse_fields(const uint8_t *bytes, size_t len)
{
    char *block = copy_of(bytes, len);
    csgi_http__header fields[16];
    csgi_http__error error = {0, NULL};
    size_t count = 0;
    int status = csgi_http__parse_fields(block, len, fields, 16, &count, NULL, &error);
    if (status == 0) {
        CHECK(count <= 16);
        for (size_t i = 0; i < count; i++) {
            CHECK(fields[i].name_len > 0);
            CHECK(inside(fields[i].name, fields[i].name_len, block, len));
            CHECK(inside(fields[i].value, fields[i].value_len, block, len));
        }
    } else {
        CHECK(status == 400 || status == 431);
        CHECK(error.reason != NULL);
    }
    free(block);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t random = fuzz_seed(data, size);
    csgi_http__limits limits = CSGI_HTTP__LIMITS_DEFAULT;
    scan_outcome whole;
    scan_outcome split;

    /* the default limits, or small ones that inputs can reach */
    if (fuzz_next_random(&random) % 2) {
        limits.max_request_line = 1 + (size_t)(fuzz_next_random(&random) % 128);
        limits.max_header_line = 1 + (size_t)(fuzz_next_random(&random) % 128);
        limits.max_head = 1 + (size_t)(fuzz_next_random(&random) % 512);
        limits.max_headers = 1 + (size_t)(fuzz_next_random(&random) % 16);
    }
    scan(data, size, &limits, &random, 0, &whole);
    scan(data, size, &limits, &random, 1, &split);
    CHECK(whole.result == split.result);
    CHECK(whole.status == split.status);
    CHECK(whole.head_length == split.head_length);
    CHECK(whole.skipped == split.skipped);
    CHECK(whole.header_count == split.header_count);

    size_t body = 0;
    if (whole.result == CSGI_HTTP__SCAN_DONE) {
        parse_head(data + whole.skipped, whole.head_length - whole.skipped, whole.header_count);
        body = whole.head_length;
    }
    /* Without a head, the whole input exercises the decoder. */
    decode_body(data + body, size - body, &random);
    parse_fields(data, size);
    return 0;
}
