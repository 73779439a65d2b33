/*
 * What factories read (csgi/loader.h): the entries of their global and local
 * conf, typed as PasteDeploy's converters type them, and errors placed at
 * the key they are about.
 */
#include "common/alloc.h"
#include "common/chartab.h"
#include "loader/loader_private.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Memory handed out by csgi_conf_aslist(), freed with the loader. */
struct csgi_loader__allocation {
    csgi_loader__allocation *next;
};

csgi_conf csgi_loader__conf(csgi_loader *loader, const csgi_conf__list *list)
{
    csgi_conf conf = {list, loader, NULL, 0};
    return conf;
}

void csgi_loader__free_allocations(csgi_loader *loader)
{
    for (csgi_loader__allocation *a = loader->allocations, *next; a; a = next) {
        next = a->next;
        csgi__free(a);
    }
    loader->allocations = NULL;
}

const char *csgi_conf_get(const csgi_conf *conf, const char *name)
{
    if (!conf || !name)
        return NULL;
    return csgi_conf__list_get(conf->list, name);
}

size_t csgi_conf_count(const csgi_conf *conf)
{
    return conf ? conf->list->count : 0;
}

int csgi_conf_entry(const csgi_conf *conf, size_t index, const char **name, const char **value)
{
    if (!conf)
        return 0;
    /* Walking on from the last answer makes an in-order walk linear. */
    struct csgi_conf *cache = (struct csgi_conf *)conf;
    const csgi_conf__entry *entry = conf->list->first;
    size_t i = 0;
    if (conf->cursor && conf->cursor_index <= index) {
        entry = conf->cursor;
        i = conf->cursor_index;
    }
    for (; entry && i < index; i++)
        entry = entry->next;
    if (!entry)
        return 0;
    cache->cursor = entry;
    cache->cursor_index = index;
    if (name)
        *name = entry->name;
    if (value)
        *value = entry->value;
    return 1;
}

/* An error about the key name, at the place entry (NULL: none) was written. */
static void verror_at_entry(csgi_load_error *error, const csgi_conf__entry *entry, const char *name,
                            const char *format, va_list args) __attribute__((format(printf, 4, 0)));

static void verror_at_entry(csgi_load_error *error, const csgi_conf__entry *entry, const char *name,
                            const char *format, va_list args)
{
    if (entry)
        csgi_load_error__vset(error, entry->origin.file, entry->origin.line, entry->origin.section,
                              entry->origin.key ? entry->origin.key : entry->name, format, args);
    else
        csgi_load_error__vset(error, NULL, 0, NULL, name, format, args);
}

static void error_at_entry(csgi_load_error *error, const csgi_conf__entry *entry,
                           const char *format, ...) __attribute__((format(printf, 3, 4)));

static void error_at_entry(csgi_load_error *error, const csgi_conf__entry *entry,
                           const char *format, ...)
{
    va_list args;
    va_start(args, format);
    verror_at_entry(error, entry, entry->name, format, args);
    va_end(args);
}

void csgi_conf_error(const csgi_conf *conf, const char *name, csgi_load_error *error,
                     const char *format, ...)
{
    const csgi_conf__entry *entry = conf && name ? csgi_conf__list_find(conf->list, name) : NULL;
    va_list args;
    va_start(args, format);
    verror_at_entry(error, entry, name, format, args);
    va_end(args);
}

/* PasteDeploy strips a value before converting it. */
static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

/* The entry a converter reads: NULL when conf has no key name, else the
   entry with *value its text after the leading blanks. */
static const csgi_conf__entry *converted_entry(const csgi_conf *conf, const char *name,
                                               const char **value)
{
    const csgi_conf__entry *entry = csgi_conf__list_find(conf->list, name);
    const char *v = entry ? entry->value : "";
    while (is_blank(*v))
        v++;
    *value = v;
    return entry;
}

/* A converter's reading of a present key: value is its text after the
   leading blanks. 0 with *out set, or CSGI_EINVAL with error filled. */
typedef int parse_fn(const csgi_conf__entry *entry, const char *value, long long *out,
                     csgi_load_error *error);

static int parse_bool(const csgi_conf__entry *entry, const char *value, long long *out,
                      csgi_load_error *error)
{
    static const char *const truths[] = {"true", "yes", "on", "y", "t", "1"};
    static const char *const lies[] = {"false", "no", "off", "n", "f", "0"};
    size_t len = strlen(value);
    while (len && is_blank(value[len - 1]))
        len--;
    for (size_t i = 0; i < sizeof(truths) / sizeof(truths[0]); i++) {
        if (strlen(truths[i]) == len && csgi_char__equal_nocase(value, truths[i], len)) {
            *out = 1;
            return 0;
        }
        if (strlen(lies[i]) == len && csgi_char__equal_nocase(value, lies[i], len)) {
            *out = 0;
            return 0;
        }
    }
    error_at_entry(error, entry, "not a boolean: '%s'", entry->value);
    return CSGI_EINVAL;
}

static int parse_int(const csgi_conf__entry *entry, const char *value, long long *out,
                     csgi_load_error *error)
{
    const char *digits = value + (*value == '+' || *value == '-');
    if (*digits < '0' || *digits > '9') {
        error_at_entry(error, entry, "not an integer: '%s'", entry->value);
        return CSGI_EINVAL;
    }
    char *end = NULL;
    errno = 0;
    long long parsed = strtoll(value, &end, 10);
    while (is_blank(*end))
        end++;
    if (*end != '\0') {
        error_at_entry(error, entry, "not an integer: '%s'", entry->value);
        return CSGI_EINVAL;
    }
    if (errno == ERANGE) {
        error_at_entry(error, entry, "integer out of range: '%s'", entry->value);
        return CSGI_EINVAL;
    }
    *out = parsed;
    return 0;
}

/* The converters' common part: fallback when conf has no key name, else
   the key's value read by parse. *out is left alone on an error. */
static int convert(const csgi_conf *conf, const char *name, long long fallback, long long *out,
                   csgi_load_error *error, parse_fn *parse)
{
    if (!conf || !name || !out)
        return CSGI_EINVAL;
    const char *value;
    const csgi_conf__entry *entry = converted_entry(conf, name, &value);
    if (!entry) {
        *out = fallback;
        return 0;
    }
    return parse(entry, value, out, error);
}

int csgi_conf_asbool(const csgi_conf *conf, const char *name, int fallback, int *out,
                     csgi_load_error *error)
{
    if (!out)
        return CSGI_EINVAL;
    long long parsed;
    int rc = convert(conf, name, fallback, &parsed, error, parse_bool);
    if (rc == 0)
        *out = (int)parsed;
    return rc;
}

int csgi_conf_asint(const csgi_conf *conf, const char *name, long long fallback, long long *out,
                    csgi_load_error *error)
{
    return convert(conf, name, fallback, out, error, parse_int);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int csgi_conf_aslist(const csgi_conf *conf, const char *name, const char *const **items,
                     size_t *count, csgi_load_error *error)
{
    if (!conf || !name || !items || !count)
        return CSGI_EINVAL;
    *items = NULL;
    *count = 0;
    const char *value = csgi_conf__list_get(conf->list, name);
    if (!value)
        return 0;
    size_t n = 0;
    for (const char *p = value; *p;) {
        while (*p && is_space(*p))
            p++;
        if (!*p)
            break;
        n++;
        while (*p && !is_space(*p))
            p++;
    }
    /* One block: the allocation header, the pointers, the strings. */
    size_t len = strlen(value);
    size_t header = sizeof(csgi_loader__allocation);
    header = (header + sizeof(void *) - 1) / sizeof(void *) * sizeof(void *);
    csgi_loader__allocation *block = csgi__malloc(header + (n + 1) * sizeof(char *) + len + 1);
    if (!block) {
        csgi_load_error__set(error, NULL, 0, NULL, name, "%s", csgi_strerror(CSGI_ENOMEM));
        return CSGI_ENOMEM;
    }
    const char **list = (const char **)((char *)block + header);
    char *text = (char *)(list + n + 1);
    memcpy(text, value, len + 1);
    size_t i = 0;
    for (char *p = text; *p;) {
        while (*p && is_space(*p))
            p++;
        if (!*p)
            break;
        list[i++] = p;
        while (*p && !is_space(*p))
            p++;
        if (*p)
            *p++ = '\0';
    }
    list[i] = NULL;
    block->next = conf->loader->allocations;
    conf->loader->allocations = block;
    *items = list;
    *count = n;
    return 0;
}
