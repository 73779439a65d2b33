#include "loader/ini.h"

#include "common/alloc.h"
#include "common/arena.h"

#include <csgi/common.h>

#include <ini.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ------------------------------------------------------------ */

void csgi_ini__error_clear(csgi_ini__error *error)
{
    if (error)
        memset(error, 0, sizeof(*error));
}

static void copy_field(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

void csgi_ini__error_set(csgi_ini__error *error, const char *file, int line, const char *section,
                         const char *key, const char *format, ...)
{
    if (!error || error->text[0])
        return;
    copy_field(error->file, sizeof(error->file), file);
    error->line = line;
    copy_field(error->section, sizeof(error->section), section);
    copy_field(error->key, sizeof(error->key), key);
    va_list args;
    va_start(args, format);
    vsnprintf(error->text, sizeof(error->text), format, args);
    va_end(args);
    if (!error->text[0])
        copy_field(error->text, sizeof(error->text), "error");
}

int csgi_ini__error_format(const csgi_ini__error *error, char *buf, size_t size)
{
    char location[32] = "";
    if (error->line > 0)
        snprintf(location, sizeof(location), ":%d", error->line);
    bool where = error->file[0] || location[0];
    bool in_section = error->section[0];
    bool at_key = error->key[0];
    return snprintf(buf, size, "%s%s%s%s%s%s%s%s%s", error->file, location, where ? ": " : "",
                    in_section ? "[" : "", error->section, in_section ? "] " : "", error->key,
                    at_key ? ": " : "", error->text);
}

/* ---- the parser state shared by the reader and the handler --------------- */

typedef struct parse_state {
    csgi_ini *ini;
    csgi_ini__error *error;
    int result; /* 0, or the first error's code */

    const char *data; /* the whole file */
    size_t len;
    size_t pos;   /* start of the next physical line */
    int line;     /* number of the last line read */
    size_t index; /* number of sections created so far */
    csgi_ini__section **by_index;
    size_t by_index_size;

    /* The key the reader handed to inih and the handler has yet to attach. */
    unsigned long sequence;
    const char *pending_name;
    const char *pending_value;
    int pending_line;

    /* Growable buffer for joining continuation lines. */
    char *value;
    size_t value_len;
    size_t value_cap;
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
                 const char *text)
{
    if (st->result)
        return;
    st->result = code;
    csgi_ini__error_set(st->error, st->ini->path, line, section, key, "%s", text);
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
    if (st->value_len + n + 1 > st->value_cap) {
        size_t cap = st->value_cap ? st->value_cap : 256;
        while (cap < st->value_len + n + 1)
            cap *= 2;
        char *grown = csgi__realloc(st->value, cap);
        if (!grown)
            return false;
        st->value = grown;
        st->value_cap = cap;
    }
    if (n)
        memcpy(st->value + st->value_len, s, n);
    st->value_len += n;
    st->value[st->value_len] = '\0';
    return true;
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
    for (csgi_ini__section *s = ini->sections; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

/* Open the section whose header is [start, end); returns its index or -1. */
static long open_section(parse_state *st, const char *start, const char *end)
{
    char *name = keep(st, start, end);
    if (!name)
        return -1;
    const csgi_ini__section *first = find_section(st->ini, name);
    if (first) {
        char text[sizeof(st->error->text)];
        snprintf(text, sizeof(text), "duplicate section [%.150s] (first at line %d)", name,
                 first->line);
        fail(st, CSGI_EPARSE, st->line, name, NULL, text);
        return -1;
    }
    csgi_ini__section *section = csgi_arena__alloc(&st->ini->arena, sizeof(*section));
    if (!section) {
        fail_nomem(st);
        return -1;
    }
    memset(section, 0, sizeof(*section));
    section->name = name;
    section->line = st->line;

    if (st->index == st->by_index_size) {
        size_t size = st->by_index_size ? st->by_index_size * 2 : 16;
        csgi_ini__section **grown = csgi__realloc(st->by_index, size * sizeof(*grown));
        if (!grown) {
            fail_nomem(st);
            return -1;
        }
        st->by_index = grown;
        st->by_index_size = size;
    }
    st->by_index[st->index] = section;

    csgi_ini *ini = st->ini;
    if (ini->last_section)
        ini->last_section->next = section;
    else
        ini->sections = section;
    ini->last_section = section;
    ini->section_count++;
    return (long)st->index++;
}

static csgi_ini__section *current_section(const parse_state *st)
{
    return st->index ? st->by_index[st->index - 1] : NULL;
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
    st->value_len = 0;
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

/* ---- the inih reader and handler ----------------------------------------- */

/*
 * inih's reader: reads the next meaningful line of the file itself and hands
 * inih a short placeholder for it (see ini.h). Returns NULL at the end of the
 * file or after an error, which ends ini_parse_stream.
 */
static char *reader(char *buf, int size, void *stream)
{
    parse_state *st = stream;
    line_span l;
    while (!st->result && next_line(st, &l)) {
        const char *s = l.start, *e = l.end;
        strip(&s, &e);
        if (s == e || *s == '#' || *s == ';')
            continue;
        csgi_ini__section *section = current_section(st);
        const char *section_name = section ? section->name : NULL;

        if (*s == '[') {
            /* The header ends at the last ']' (ConfigParser's greedy match). */
            const char *close = e - 1;
            while (close > s && *close != ']')
                close--;
            if (close == s) {
                fail(st, CSGI_EPARSE, st->line, NULL, NULL,
                     "unterminated section header (missing ']')");
                return NULL;
            }
            if (close == s + 1) {
                fail(st, CSGI_EPARSE, st->line, NULL, NULL, "empty section name '[]'");
                return NULL;
            }
            long index = open_section(st, s + 1, close);
            if (index < 0)
                return NULL;
            snprintf(buf, (size_t)size, "[%ld]\n", index);
            return buf;
        }

        const char *delim = s;
        while (delim < e && *delim != '=' && *delim != ':')
            delim++;
        if (delim == e) {
            fail(st, CSGI_EPARSE, st->line, section_name, NULL,
                 "malformed line (expected 'key = value', 'key: value' or '[section]')");
            return NULL;
        }
        const char *key_end = delim;
        strip(&s, &key_end);
        char *name = keep(st, s, key_end);
        if (!name)
            return NULL;
        if (!*name) {
            fail(st, CSGI_EPARSE, st->line, section_name, NULL, "empty key");
            return NULL;
        }
        if (!section) {
            char text[sizeof(st->error->text)];
            snprintf(text, sizeof(text), "key '%.150s' before any section header", name);
            fail(st, CSGI_EPARSE, st->line, NULL, name, text);
            return NULL;
        }
        int key_line = st->line;
        const char *v = delim + 1, *v_end = e;
        strip(&v, &v_end);
        if (!read_value(st, v, v_end, indent_of(l))) {
            fail_nomem(st);
            return NULL;
        }
        /* ConfigParser joins the pieces, then rstrips: empty lines at the end go. */
        while (st->value_len && st->value[st->value_len - 1] == '\n')
            st->value_len--;
        char *value = keep(st, st->value, st->value + st->value_len);
        if (!value)
            return NULL;
        st->pending_name = name;
        st->pending_value = value;
        st->pending_line = key_line;
        st->sequence++;
        snprintf(buf, (size_t)size, "k=%lu\n", st->sequence);
        return buf;
    }
    return NULL;
}

static int handler(void *user, const char *section_text, const char *name, const char *value)
{
    parse_state *st = user;
    if (st->result)
        return 1;
    char *end;
    unsigned long index = strtoul(section_text, &end, 10);
    unsigned long sequence = strtoul(value, &end, 10);
    if (strcmp(name, "k") != 0 || index >= st->index || sequence != st->sequence ||
        !st->pending_name) {
        fail(st, CSGI_EPARSE, st->line, NULL, NULL, "internal error: unexpected line from inih");
        return 0;
    }
    csgi_ini__section *section = st->by_index[index];
    for (const csgi_ini__key *k = section->keys; k; k = k->next) {
        if (strcmp(k->name, st->pending_name) == 0) {
            char text[sizeof(st->error->text)];
            snprintf(text, sizeof(text), "duplicate key '%.150s' (first at line %d)",
                     st->pending_name, k->line);
            fail(st, CSGI_EPARSE, st->pending_line, section->name, st->pending_name, text);
            return 1;
        }
    }
    csgi_ini__key *key = csgi_arena__alloc(&st->ini->arena, sizeof(*key));
    if (!key) {
        fail_nomem(st);
        return 1;
    }
    key->next = NULL;
    key->name = st->pending_name;
    key->value = st->pending_value;
    key->line = st->pending_line;
    if (section->last_key)
        section->last_key->next = key;
    else
        section->keys = key;
    section->last_key = key;
    section->key_count++;
    st->pending_name = NULL;
    return 1;
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
                          csgi_ini__error *error)
{
    if (!out || !name || (!data && len)) {
        csgi_ini__error_set(error, name, 0, NULL, NULL, "invalid argument");
        if (out)
            *out = NULL;
        return CSGI_EINVAL;
    }
    *out = NULL;
    csgi_ini *ini = csgi__calloc(1, sizeof(*ini));
    if (!ini) {
        csgi_ini__error_set(error, name, 0, NULL, NULL, "out of memory");
        return CSGI_ENOMEM;
    }
    csgi_arena__init(&ini->arena, NULL);
    ini->path = csgi_arena__strndup(&ini->arena, name, strlen(name));
    if (!ini->path) {
        csgi_ini__free(ini);
        csgi_ini__error_set(error, name, 0, NULL, NULL, "out of memory");
        return CSGI_ENOMEM;
    }

    parse_state st = {.ini = ini, .error = error, .data = data, .len = len};
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
        int rc = ini_parse_stream(reader, &st, handler, &st);
        if (rc != 0 && !st.result)
            fail(&st, rc == -2 ? CSGI_ENOMEM : CSGI_EPARSE, rc > 0 ? rc : 0, NULL, NULL,
                 rc == -2 ? "out of memory" : "internal error: inih rejected a line");
    }
    csgi__free(st.by_index);
    csgi__free(st.value);
    if (st.result) {
        csgi_ini__free(ini);
        return st.result;
    }
    *out = ini;
    return 0;
}

int csgi_ini__load(csgi_ini **out, const char *path, csgi_ini__error *error)
{
    if (!out || !path) {
        csgi_ini__error_set(error, path, 0, NULL, NULL, "invalid argument");
        if (out)
            *out = NULL;
        return CSGI_EINVAL;
    }
    *out = NULL;
    FILE *file = fopen(path, "rb");
    if (!file) {
        int saved = errno;
        csgi_ini__error_set(error, path, 0, NULL, NULL, "cannot open: %s", strerror(saved));
        return saved == ENOENT || saved == ENOTDIR ? CSGI_ENOTFOUND
               : saved == EACCES || saved == EPERM ? CSGI_EACCESS
                                                   : CSGI_EIO;
    }
    /* Read it whole; the buffer may grow to one byte past the limit, which
       is how a file above the limit is told from one exactly at it. */
    char *data = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            if (cap == CSGI_INI__MAX_FILE_SIZE + 1) {
                csgi_ini__error_set(error, path, 0, NULL, NULL, "file larger than %u bytes",
                                    CSGI_INI__MAX_FILE_SIZE);
                rc = CSGI_ETOOBIG;
                break;
            }
            size_t grown_cap = cap ? cap * 2 : 8192;
            if (grown_cap > CSGI_INI__MAX_FILE_SIZE + 1)
                grown_cap = CSGI_INI__MAX_FILE_SIZE + 1;
            char *grown = csgi__realloc(data, grown_cap);
            if (!grown) {
                csgi_ini__error_set(error, path, 0, NULL, NULL, "out of memory");
                rc = CSGI_ENOMEM;
                break;
            }
            data = grown;
            cap = grown_cap;
        }
        size_t n = fread(data + len, 1, cap - len, file);
        len += n;
        if (n == 0) {
            if (ferror(file)) {
                int saved = errno;
                csgi_ini__error_set(error, path, 0, NULL, NULL, "cannot read: %s", strerror(saved));
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
    if (!section || !name)
        return NULL;
    for (const csgi_ini__key *k = section->keys; k; k = k->next)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

const char *csgi_ini__get(const csgi_ini__section *section, const char *name)
{
    const csgi_ini__key *key = csgi_ini__find_key(section, name);
    return key ? key->value : NULL;
}
