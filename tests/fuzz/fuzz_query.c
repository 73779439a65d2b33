/*
 * libFuzzer target for the URL-encoded parser (query strings and form
 * bodies, src/helpers/params.c).
 *
 * The input is the text. It is parsed tolerantly and strictly, with the
 * default field limit or a small one chosen from the input's hash, into
 * maps in an arena.
 *
 * Invariants: the tolerant parse never says CSGI_EPARSE; at most
 * max_fields pairs; every name and value is NUL-terminated and no longer
 * than the input; a strict parse that succeeds gives the same pairs as the
 * tolerant one, all valid UTF-8; the map's lookups agree with its order.
 * A violation aborts.
 */
#include "fuzz_common.h"

#include "common/arena.h"
#include "helpers/helpers.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_map(const csgi_params *params, size_t size, size_t max_fields)
{
    size_t count = csgi_params_count(params);
    CHECK(count <= max_fields);
    for (size_t i = 0; i < count; i++) {
        const csgi_param *param = csgi_params_at(params, i);
        CHECK(param->name_len <= size && param->value_len <= size);
        CHECK(param->name[param->name_len] == '\0' && param->value[param->value_len] == '\0');
        /* the first pair of a name is what lookups find */
        if (memchr(param->name, '\0', param->name_len) == NULL) {
            size_t cursor = 0;
            const csgi_param *first = csgi_params_find(params, param->name, &cursor);
            CHECK(first && cursor <= i + 1);
            CHECK(csgi_params_count_name(params, param->name) >= 1);
        }
    }
    CHECK(csgi_params_at(params, count) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t hash = fuzz_hash(data, size);
    size_t max_fields = hash % 2 ? CSGI_HELPERS__MAX_FIELDS : 1 + (size_t)(hash >> 8) % 8;
    char *text = malloc(size ? size : 1); /* exact size: ASan sees over-reads */
    CHECK(text);
    if (size)
        memcpy(text, data, size);

    csgi_arena arena;
    csgi_arena__init(&arena, NULL);
    csgi_params *tolerant = csgi_params__new(&arena);
    csgi_params *strict = csgi_params__new(&arena);
    CHECK(tolerant && strict);
    int rc = csgi_params__parse_urlencoded(tolerant, text, size, max_fields, 0);
    CHECK(rc == 0 || rc == CSGI_ETOOBIG);
    if (rc == 0)
        check_map(tolerant, size, max_fields);

    int strict_rc = csgi_params__parse_urlencoded(strict, text, size, max_fields, 1);
    CHECK(strict_rc == 0 || strict_rc == CSGI_ETOOBIG || strict_rc == CSGI_EPARSE);
    if (strict_rc == 0) {
        CHECK(rc == 0);
        CHECK(csgi_params_count(strict) == csgi_params_count(tolerant));
        for (size_t i = 0; i < csgi_params_count(strict); i++) {
            const csgi_param *a = csgi_params_at(strict, i);
            const csgi_param *b = csgi_params_at(tolerant, i);
            CHECK(a->name_len == b->name_len && a->value_len == b->value_len);
            CHECK(memcmp(a->name, b->name, a->name_len) == 0);
            CHECK(memcmp(a->value, b->value, a->value_len) == 0);
            CHECK(csgi_request_text_is_utf8(a->name, a->name_len));
            CHECK(csgi_request_text_is_utf8(a->value, a->value_len));
        }
    }
    csgi_arena__clear(&arena);
    free(text);
    return 0;
}
