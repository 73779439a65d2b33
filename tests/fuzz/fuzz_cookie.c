/*
 * libFuzzer target for the Cookie header parser (src/helpers/params.c).
 *
 * The input is the header's value, parsed with the default cookie limit or
 * a small one chosen from the input's hash.
 *
 * Invariants: only CSGI_ETOOBIG can fail; at most max_fields cookies;
 * names are non-empty and hold no separator, space or control character;
 * values hold no ';' and no control character but tab; both are
 * NUL-terminated and found in the input as sent (nothing is decoded). A
 * violation aborts.
 */
#include "fuzz_common.h"

#include "common/arena.h"
#include "helpers/helpers.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int found_in(const char *needle, size_t len, const char *hay, size_t hay_len)
{
    if (len == 0)
        return 1;
    return memmem(hay, hay_len, needle, len) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t hash = fuzz_hash(data, size);
    size_t max_fields = hash % 2 ? CSGI_HELPERS__MAX_FIELDS : 1 + (size_t)(hash >> 8) % 8;
    char *header = malloc(size ? size : 1);
    CHECK(header);
    if (size)
        memcpy(header, data, size);

    csgi_arena arena;
    csgi_arena__init(&arena, NULL);
    csgi_params *cookies = csgi_params__new(&arena);
    CHECK(cookies);
    int rc = csgi_params__parse_cookies(cookies, header, size, max_fields);
    CHECK(rc == 0 || rc == CSGI_ETOOBIG);
    CHECK(csgi_params_count(cookies) <= max_fields);
    for (size_t i = 0; i < csgi_params_count(cookies); i++) {
        const csgi_param *c = csgi_params_at(cookies, i);
        CHECK(c->name_len > 0);
        CHECK(c->name[c->name_len] == '\0' && c->value[c->value_len] == '\0');
        for (size_t k = 0; k < c->name_len; k++) {
            unsigned char ch = (unsigned char)c->name[k];
            CHECK(ch > 0x20 && ch != 0x7F && !strchr("\";,=", ch));
        }
        for (size_t k = 0; k < c->value_len; k++) {
            unsigned char ch = (unsigned char)c->value[k];
            CHECK(ch != ';' && ch != 0x7F && (ch >= 0x20 || ch == '\t'));
        }
        CHECK(found_in(c->name, c->name_len, header, size));
        CHECK(found_in(c->value, c->value_len, header, size));
    }
    csgi_arena__clear(&arena);
    free(header);
    return 0;
}
