/*
 * libFuzzer target for the INI model (src/loader/ini.h).
 *
 * The input is a deploy file. It is parsed from a heap copy of its exact
 * size, so AddressSanitizer sees any read past the end.
 *
 * Invariants: a load either succeeds or fails with CSGI_EPARSE and an error
 * naming the file, a line inside it and a text; on success sections and keys
 * come in increasing line order, keys are non-empty and hold no delimiter,
 * names and values carry no surrounding whitespace (a value may start with
 * "\n" when its first line is empty) and no line terminator, and every
 * section and key is found again by name. A violation aborts.
 */
#include "fuzz_common.h"

#include "loader/ini.h"

#include <csgi/common.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static void check_model(const csgi_ini *ini, int lines)
{
    int previous_line = 0;
    size_t sections = 0;
    for (const csgi_ini__section *s = ini->sections; s; s = s->next) {
        sections++;
        CHECK(s->name && s->name[0]);
        CHECK(!strchr(s->name, '\n') && !strchr(s->name, '\r'));
        CHECK(s->line > previous_line && s->line <= lines);
        previous_line = s->line;
        CHECK(csgi_ini__find_section(ini, s->name) == s);
        size_t keys = 0;
        for (const csgi_ini__key *k = s->keys; k; k = k->next) {
            keys++;
            size_t n = strlen(k->name);
            CHECK(n > 0 && !is_space(k->name[0]) && !is_space(k->name[n - 1]));
            CHECK(!strpbrk(k->name, "=:\r\n"));
            size_t v = strlen(k->value);
            CHECK(!strchr(k->value, '\r'));
            CHECK(v == 0 || !is_space(k->value[v - 1]));
            CHECK(v == 0 || k->value[0] == '\n' || !is_space(k->value[0]));
            CHECK(k->line > previous_line && k->line <= lines);
            previous_line = k->line;
            CHECK(csgi_ini__find_key(s, k->name) == k);
        }
        CHECK(keys == s->key_count);
    }
    CHECK(sections == ini->section_count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    CHECK(copy);
    if (size)
        memcpy(copy, data, size);

    /* Physical lines, counted the way the loader counts them. */
    int lines = 1;
    for (size_t i = 0; i < size; i++)
        if (copy[i] == '\n' || (copy[i] == '\r' && (i + 1 == size || copy[i + 1] != '\n')))
            lines++;

    csgi_load_error error;
    csgi_load_error__clear(&error);
    csgi_ini *ini = NULL;
    int rc = csgi_ini__load_buffer(&ini, "fuzz.ini", copy, size, &error);
    if (rc == 0) {
        CHECK(ini && error.text[0] == '\0');
        CHECK(strcmp(ini->path, "fuzz.ini") == 0);
        check_model(ini, lines);
        csgi_ini__free(ini);
    } else {
        CHECK(rc == CSGI_EPARSE && ini == NULL);
        CHECK(error.text[0] && strcmp(error.file, "fuzz.ini") == 0);
        CHECK(error.line >= 1 && error.line <= lines);
        char message[1024];
        CHECK(csgi_load_error_format(&error, message, sizeof(message)) > 0);
    }
    free(copy);
    return 0;
}
