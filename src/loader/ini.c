/*
 * The INI reader: a deploy file into the model of ini.h, line by line, as
 * ConfigParser reads it (see ini.h for the rules and for why not inih).
 */
#include "loader/ini.h"
#include "loader/text.h"

#include "common/alloc.h"
#include "common/arena.h"
#include "common/vec.h"

#include <csgi/common.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sections with more keys than this find them through an index. */
#define LINEAR_KEYS 8

/* ---- the parser state ------------------------------------------------------ */

typedef struct parse_state {
    csgi_ini *ini;
    csgi_load_error *error;
    int result; /* 0, or the first error's code */

    const char *data; /* the whole file */
    size_t len;
    size_t pos; /* start of the next physical line */
    int line;   /* number of the last line read */

    /* Continuation lines joined; never longer than the data. */
    csgi_text value;
} parse_state;

typedef struct line_span {
    const char *start; /* first byte of the line */
    const char *end;   /* one past its last byte, terminator excluded */
} line_span;

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static void strip(const char **start, const char **end)
{
    while (*start < *end && is_space(**start))
        (*start)++;
    while (*end > *start && is_space((*end)[-1]))
        (*end)--;
}

static void fail(parse_state *st, int code, int line, const char *section, const char *key,
                 const char *format, ...) __attribute__((format(printf, 6, 7)));

static void fail(parse_state *st, int code, int line, const char *section, const char *key,
                 const char *format, ...)
{
    if (st->result)
        return;
    st->result = code;
    va_list args;
    va_start(args, format);
    csgi_load_error__vset(st->error, st->ini->path, line, section, key, format, args);
    va_end(args);
}

static void fail_nomem(parse_state *st)
{
    fail(st, CSGI_ENOMEM, 0, NULL, NULL, "out of memory");
}

/* The next physical line, or false at the end of the data. */
static bool next_line(parse_state *st, line_span *out)
{
    if (st->pos >= st->len)
        return false;
    const char *p = st->data + st->pos;
    const char *end = st->data + st->len;
    const char *nl = p;
    while (nl < end && *nl != '\n' && *nl != '\r')
        nl++;
    out->start = p;
    out->end = nl;
    if (nl < end && *nl == '\r' && nl + 1 < end && nl[1] == '\n')
        nl++;
    st->pos = nl < end ? (size_t)(nl + 1 - st->data) : st->len;
    st->line++;
    return true;
}

/* Blank (after stripping) or a full-line comment. */
static bool is_blank(line_span l)
{
    strip(&l.start, &l.end);
    return l.start == l.end;
}

static bool is_comment(line_span l)
{
    strip(&l.start, &l.end);
    return l.start < l.end && (*l.start == '#' || *l.start == ';');
}

static size_t indent_of(line_span l)
{
    const char *p = l.start;
    while (p < l.end && is_space(*p))
        p++;
    return (size_t)(p - l.start);
}

static bool value_append(parse_state *st, const char *s, size_t n)
{
    return csgi_text__append(&st->value, s, n) == 0;
}

/* A NUL-terminated, arena-owned copy of [start, end), or NULL (error set). */
static char *keep(parse_state *st, const char *start, const char *end)
{
    char *copy = csgi_arena__strndup(&st->ini->arena, start, (size_t)(end - start));
    if (!copy)
        fail_nomem(st);
    return copy;
}

/* ---- sections ------------------------------------------------------------ */

static csgi_ini__section *find_section(const csgi_ini *ini, const char *name)
{
    return csgi_name_index__get(&ini->sections_by_name, name);
}

/* Open the section whose header is [start, end); false after an error. */
static bool open_section(parse_state *st, const char *start, const char *end)
{
    char *name = keep(st, start, end);
    if (!name)
        return false;
    const csgi_ini__section *first = find_section(st->ini, name);
    if (first) {
        fail(st, CSGI_EPARSE, st->line, name, NULL, "duplicate section [%.150s] (first at line %d)",
             name, first->line);
        return false;
    }
    csgi_ini *ini = st->ini;
    csgi_ini__section *section = csgi_arena__alloc(&ini->arena, sizeof(*section));
    if (!section || csgi_name_index__put(&ini->sections_by_name, &ini->arena, name, section) != 0) {
        fail_nomem(st);
        return false;
    }
    *section = (csgi_ini__section){.name = name, .line = st->line};
    *(ini->last_section ? &ini->last_section->next : &ini->sections) = section;
    ini->last_section = section;
    ini->section_count++;
    return true;
}

/* ---- keys ---------------------------------------------------------------- */

/*
 * Read the value that starts with first_piece on a key line indented by
 * key_indent, consuming its continuation lines (and the blank and comment
 * lines among them). Leaves the result in st->value. Follows ConfigParser:
 * deeper-indented lines continue the value, blank lines add empty pieces,
 * comments are skipped and do not end the value, trailing empty pieces go.
 */
static bool read_value(parse_state *st, const char *first, const char *first_end, size_t key_indent)
{
    st->value.len = 0;
    if (!value_append(st, first, (size_t)(first_end - first)))
        return false;
    size_t empty_pieces = 0;
    for (;;) {
        size_t pos = st->pos;
        int line = st->line;
        line_span l;
        if (!next_line(st, &l))
            break;
        if (is_blank(l)) {
            empty_pieces++;
            continue;
        }
        if (is_comment(l))
            continue;
        if (indent_of(l) <= key_indent) {
            st->pos = pos; /* not ours: the reader reads it again */
            st->line = line;
            break;
        }
        for (; empty_pieces; empty_pieces--)
            if (!value_append(st, "\n", 1))
                return false;
        const char *s = l.start, *e = l.end;
        strip(&s, &e);
        if (!value_append(st, "\n", 1) || !value_append(st, s, (size_t)(e - s)))
            return false;
    }
    return true;
}

/* ---- lines --------------------------------------------------------------- */

static const csgi_ini__key *find_key(const csgi_ini__section *section, const char *name)
{
    if (section->key_count > LINEAR_KEYS)
        return csgi_name_index__get(&section->keys_by_name, name);
    for (const csgi_ini__key *k = section->keys; k; k = k->next)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

/* Append a key to section, indexing the keys once there are many. */
static bool add_key(parse_state *st, csgi_ini__section *section, csgi_ini__key *key)
{
    csgi_arena *arena = &st->ini->arena;
    if (section->key_count == LINEAR_KEYS) {
        for (csgi_ini__key *k = section->keys; k; k = k->next)
            if (csgi_name_index__put(&section->keys_by_name, arena, k->name, k) != 0)
                return false;
    }
    if (section->key_count >= LINEAR_KEYS &&
        csgi_name_index__put(&section->keys_by_name, arena, key->name, key) != 0)
        return false;
    *(section->last_key ? &section->last_key->next : &section->keys) = key;
    section->last_key = key;
    section->key_count++;
    return true;
}

/* A `[header]` line, stripped: [s, e). */
static bool read_header(parse_state *st, const char *s, const char *e)
{
    /* The header ends at the last ']' (ConfigParser's greedy match). */
    const char *close = e - 1;
    while (close > s && *close != ']')
        close--;
    if (close == s) {
        fail(st, CSGI_EPARSE, st->line, NULL, NULL, "unterminated section header (missing ']')");
        return false;
    }
    if (close == s + 1) {
        fail(st, CSGI_EPARSE, st->line, NULL, NULL, "empty section name '[]'");
        return false;
    }
    return open_section(st, s + 1, close);
}

/* A `key = value` line l, stripped: [s, e), with its continuation lines. */
static bool read_key(parse_state *st, line_span l, const char *s, const char *e)
{
    csgi_ini__section *section = st->ini->last_section;
    const char *section_name = section ? section->name : NULL;
    const char *delim = s;
    while (delim < e && *delim != '=' && *delim != ':')
        delim++;
    if (delim == e) {
        fail(st, CSGI_EPARSE, st->line, section_name, NULL,
             "malformed line (expected 'key = value', 'key: value' or '[section]')");
        return false;
    }
    const char *key_end = delim;
    strip(&s, &key_end);
    char *name = keep(st, s, key_end);
    if (!name)
        return false;
    if (!*name) {
        fail(st, CSGI_EPARSE, st->line, section_name, NULL, "empty key");
        return false;
    }
    if (!section) {
        fail(st, CSGI_EPARSE, st->line, NULL, name, "key '%.150s' before any section header", name);
        return false;
    }
    const csgi_ini__key *first = find_key(section, name);
    if (first) {
        fail(st, CSGI_EPARSE, st->line, section->name, name,
             "duplicate key '%.150s' (first at line %d)", name, first->line);
        return false;
    }
    int key_line = st->line;
    const char *v = delim + 1, *v_end = e;
    strip(&v, &v_end);
    if (!read_value(st, v, v_end, indent_of(l))) {
        fail_nomem(st);
        return false;
    }
    /* ConfigParser joins the pieces, then rstrips: empty lines at the end go. */
    csgi_text *joined = &st->value;
    while (joined->len && joined->data[joined->len - 1] == '\n')
        joined->len--;
    char *value = keep(st, joined->data, joined->data + joined->len);
    csgi_ini__key *key = value ? csgi_arena__alloc(&st->ini->arena, sizeof(*key)) : NULL;
    if (!key) {
        fail_nomem(st);
        return false;
    }
    *key = (csgi_ini__key){.name = name, .value = value, .line = key_line};
    if (!add_key(st, section, key)) {
        fail_nomem(st);
        return false;
    }
    return true;
}

/* Every line of the file; stops at the first error (st->result). */
static void read_lines(parse_state *st)
{
    line_span l;
    while (!st->result && next_line(st, &l)) {
        const char *s = l.start, *e = l.end;
        strip(&s, &e);
        if (s == e || *s == '#' || *s == ';')
            continue;
        if (*s == '[')
            read_header(st, s, e);
        else
            read_key(st, l, s, e);
    }
}

/* ---- loading ------------------------------------------------------------- */

void csgi_ini__free(csgi_ini *ini)
{
    if (!ini)
        return;
    csgi_arena__clear(&ini->arena);
    csgi__free(ini);
}

int csgi_ini__load_buffer(csgi_ini **out, const char *name, const char *data, size_t len,
                          csgi_load_error *error)
{
    if (!out || !name || (!data && len)) {
        csgi_load_error__set(error, name, 0, NULL, NULL, "invalid argument");
        if (out)
            *out = NULL;
        return CSGI_EINVAL;
    }
    *out = NULL;
    csgi_ini *ini = csgi__calloc(1, sizeof(*ini));
    if (!ini) {
        csgi_load_error__set(error, name, 0, NULL, NULL, "out of memory");
        return CSGI_ENOMEM;
    }
    csgi_arena__init(&ini->arena, NULL);
    ini->path = csgi_arena__strndup(&ini->arena, name, strlen(name));
    if (!ini->path) {
        csgi_ini__free(ini);
        csgi_load_error__set(error, name, 0, NULL, NULL, "out of memory");
        return CSGI_ENOMEM;
    }

    /* A joined value is at most the data: its pieces are separated by line
       ends at least as long as the "\n" that joins them. */
    parse_state st = {.ini = ini, .error = error, .data = data, .len = len, .value.max = len};
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        st.pos = 3;
    if (len && memchr(data, '\0', len)) {
        /* Report the line of the first NUL. */
        const char *nul = memchr(data, '\0', len);
        int line = 1;
        for (const char *p = data; p < nul; p++)
            if (*p == '\n' || (*p == '\r' && (p + 1 == nul || p[1] != '\n')))
                line++;
        fail(&st, CSGI_EPARSE, line, NULL, NULL, "NUL byte in file");
    } else {
        read_lines(&st);
    }
    csgi_text__free(&st.value);
    if (st.result) {
        csgi_ini__free(ini);
        return st.result;
    }
    *out = ini;
    return 0;
}

int csgi_ini__load(csgi_ini **out, const char *path, csgi_load_error *error)
{
    if (!out || !path) {
        csgi_load_error__set(error, path, 0, NULL, NULL, "invalid argument");
        if (out)
            *out = NULL;
        return CSGI_EINVAL;
    }
    *out = NULL;
    FILE *file = fopen(path, "rb");
    if (!file) {
        int saved = errno;
        csgi_load_error__set(error, path, 0, NULL, NULL, "cannot open: %s", strerror(saved));
        return saved == ENOENT || saved == ENOTDIR ? CSGI_ENOTFOUND
               : saved == EACCES || saved == EPERM ? CSGI_EACCESS
                                                   : CSGI_EIO;
    }
    /* Read it whole; the buffer may grow to one byte past the limit, which
       is how a file above the limit is told from one exactly at it. */
    void *data = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            rc = csgi_vec__reserve(&data, &cap, 1, len + 1, CSGI_INI__MAX_FILE_SIZE + 1);
            if (rc == CSGI_ETOOBIG) {
                csgi_load_error__set(error, path, 0, NULL, NULL, "file larger than %u bytes",
                                     CSGI_INI__MAX_FILE_SIZE);
                break;
            }
            if (rc != 0) {
                csgi_load_error__set(error, path, 0, NULL, NULL, "out of memory");
                break;
            }
        }
        size_t n = fread((char *)data + len, 1, cap - len, file);
        len += n;
        if (n == 0) {
            if (ferror(file)) {
                int saved = errno;
                csgi_load_error__set(error, path, 0, NULL, NULL, "cannot read: %s",
                                     strerror(saved));
                rc = CSGI_EIO;
            }
            break;
        }
    }
    fclose(file);
    if (rc == 0)
        rc = csgi_ini__load_buffer(out, path, data, len, error);
    csgi__free(data);
    return rc;
}

/* ---- queries ------------------------------------------------------------- */

const csgi_ini__section *csgi_ini__find_section(const csgi_ini *ini, const char *header)
{
    return ini && header ? find_section(ini, header) : NULL;
}

const csgi_ini__key *csgi_ini__find_key(const csgi_ini__section *section, const char *name)
{
    return section && name ? find_key(section, name) : NULL;
}

const char *csgi_ini__get(const csgi_ini__section *section, const char *name)
{
    const csgi_ini__key *key = csgi_ini__find_key(section, name);
    return key ? key->value : NULL;
}
