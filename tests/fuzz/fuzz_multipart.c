/*
 * libFuzzer target for the streaming multipart/form-data parser
 * (src/helpers/multipart.c).
 *
 * The input's first line is the Content-Type's boundary, the rest the
 * body (without a newline, the boundary is "b" and the whole input is the
 * body). The body is parsed twice: fed at once, and fed in pieces whose
 * sizes come from the input's hash, each copied to a heap buffer of its
 * exact size so AddressSanitizer sees any read past a piece. The limits
 * are the defaults or small ones (also a small spool threshold, so files
 * go to temporary files the arena closes).
 *
 * Invariants: both parses give the same result, the same fields and the
 * same files (sizes and bytes); errors are CSGI_EPARSE or CSGI_ETOOBIG
 * with a message; counts and sizes stay inside the limits. A violation
 * aborts.
 */
#include "fuzz_common.h"

#include "common/arena.h"
#include "helpers/helpers.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int parse(csgi_multipart__parser *parser, csgi_arena *arena, const char *boundary,
                 size_t boundary_len, const csgi_form_limits *limits, const uint8_t *body,
                 size_t len, uint64_t *random)
{
    int rc = csgi_multipart__init(parser, arena, boundary, boundary_len, limits);
    if (rc != 0)
        return rc;
    size_t offset = 0;
    while (offset < len && rc == 0) {
        size_t piece = len - offset;
        if (random) {
            uint64_t r = fuzz_next_random(random);
            size_t most = r % 4 == 0 ? 512 : 8;
            piece = 1 + (size_t)(r >> 8) % most;
            if (piece > len - offset)
                piece = len - offset;
        }
        char *copy = malloc(piece);
        CHECK(copy);
        memcpy(copy, body + offset, piece);
        rc = csgi_multipart__feed(parser, copy, piece);
        free(copy);
        offset += piece;
    }
    if (rc == 0)
        rc = csgi_multipart__finish(parser);
    return rc;
}

static void file_bytes(const csgi_form_file *file, char *buf)
{
    uint64_t got = 0;
    while (got < file->size) {
        long n = csgi_form_file_read(file, got, buf + got, (size_t)(file->size - got));
        CHECK(n > 0);
        got += (uint64_t)n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t random = fuzz_seed(data, size);
    const char *boundary = "b";
    size_t boundary_len = 1;
    const uint8_t *body = data;
    size_t len = size;
    const uint8_t *newline = memchr(data, '\n', size < 80 ? size : 80);
    if (newline) {
        boundary = (const char *)data;
        boundary_len = (size_t)(newline - data);
        body = newline + 1;
        len = size - boundary_len - 1;
    }

    csgi_form_limits limits;
    CHECK(csgi_helpers__limits(&limits, NULL) == 0);
    if (fuzz_next_random(&random) % 2) {
        limits.max_parts = 1 + (size_t)(fuzz_next_random(&random) % 8);
        limits.max_part_header = 1 + (size_t)(fuzz_next_random(&random) % 256);
        limits.max_field_size = 1 + (size_t)(fuzz_next_random(&random) % 64);
        limits.max_file_size = 1 + (size_t)(fuzz_next_random(&random) % 256);
        limits.spool_threshold = 1 + (size_t)(fuzz_next_random(&random) % 32);
        limits.max_body = 1 + (size_t)(fuzz_next_random(&random) % 4096);
        limits.strict = (int)(fuzz_next_random(&random) % 2);
    }

    csgi_arena arena;
    csgi_arena__init(&arena, NULL);
    csgi_multipart__parser whole, split;
    int rc = parse(&whole, &arena, boundary, boundary_len, &limits, body, len, NULL);
    int split_rc = parse(&split, &arena, boundary, boundary_len, &limits, body, len, &random);
    CHECK(rc == split_rc);
    CHECK(rc == 0 || rc == CSGI_EPARSE || rc == CSGI_ETOOBIG);
    if (rc != 0) {
        CHECK(whole.message[0] != '\0');
        CHECK(strcmp(whole.message, split.message) == 0);
        CHECK(whole.consumed <= len);
        csgi_arena__clear(&arena);
        return 0;
    }

    CHECK(whole.parts <= limits.max_parts);
    CHECK(csgi_params_count(whole.fields) == csgi_params_count(split.fields));
    for (size_t i = 0; i < csgi_params_count(whole.fields); i++) {
        const csgi_param *a = csgi_params_at(whole.fields, i);
        const csgi_param *b = csgi_params_at(split.fields, i);
        CHECK(a->value_len <= limits.max_field_size);
        CHECK(a->name_len == b->name_len && a->value_len == b->value_len);
        CHECK(memcmp(a->name, b->name, a->name_len) == 0);
        CHECK(memcmp(a->value, b->value, a->value_len + 1) == 0);
    }
    CHECK(whole.file_count == split.file_count);
    const csgi_multipart__file *a = whole.files, *b = split.files;
    for (; a && b; a = a->next, b = b->next) {
        CHECK(a->file.size == b->file.size && a->file.size <= limits.max_file_size);
        CHECK((a->file.fd >= 0) == (a->file.size > limits.spool_threshold));
        CHECK(a->file.filename_len == b->file.filename_len);
        char *x = malloc(a->file.size + 1), *y = malloc(b->file.size + 1);
        CHECK(x && y);
        file_bytes(&a->file, x);
        file_bytes(&b->file, y);
        CHECK(memcmp(x, y, a->file.size) == 0);
        free(x);
        free(y);
    }
    CHECK(!a && !b);
    csgi_arena__clear(&arena);
    return 0;
}
