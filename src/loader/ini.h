/*
 * The INI model (internal): one deploy file read into memory, exactly as
 * written, before any PasteDeploy meaning is given to it.
 *
 * The syntax is Python's ConfigParser as PasteDeploy configures it
 * (NicerConfigParser: delimiters '=' and ':', full-line comments only,
 * case-sensitive keys, strict duplicates, empty lines allowed in values):
 *
 *   - `[header]`: the header is everything between the first '[' and the
 *     LAST ']' of the line (ConfigParser's greedy `\[(?P<header>.+)\]`),
 *     kept as written: "app:main", "DEFAULT", " odd ]". Text after the
 *     last ']' is ignored. A line starting with '[' with no ']' is an error
 *     (ConfigParser would read it as a key; no deploy file means that).
 *   - `key = value` or `key: value`, split at the first '=' or ':',
 *     whichever comes first; the key keeps its case and inner spaces
 *     (`set foo`, `domain example.com port 80 /x`); key and value are
 *     stripped of surrounding whitespace. ` ; text` and ` # text` inside a
 *     value are part of the value.
 *   - A line indented deeper than its key's line continues the value; the
 *     pieces (each stripped) are joined with "\n". Empty lines inside a value
 *     become empty pieces, comment lines are skipped, and trailing empty
 *     pieces are dropped: an empty line is kept only when a continuation
 *     line follows it (ConfigParser's empty_lines_in_values=True followed by
 *     its final rstrip).
 *   - Full-line comments start with '#' or ';' after optional whitespace,
 *     which covers a `#!` first line. A UTF-8 BOM at the start is skipped.
 *     Lines end with "\n", "\r\n" or "\r". Lines have no length limit.
 *   - Errors: a key repeated in a section, a section repeated (DEFAULT too:
 *     ConfigParser would merge a second [DEFAULT]; we refuse it), a key
 *     before any section, a line that is neither a header, a key nor a
 *     comment, an empty key or header, a NUL byte.
 *
 * The reader is our own, not Debian's inih: inih (as Debian builds it) cuts
 * lines at 200 bytes and section names at 50, strips ` ; comments` from
 * values, ends a header at the first ']', continues a value on any indented
 * line and drops the empty lines inside one, and gives its handler no line
 * numbers. Each of those differs from ConfigParser, so every line would
 * need our own handling anyway (docs/architecture.md, "Why no inih").
 *
 * Duplicate sections and keys are found through name indexes
 * (loader/name_index.h): a file loads in time linear in its size.
 *
 * All strings of a csgi_ini live in its arena and die with csgi_ini__free.
 */
#ifndef CSGI_LOADER_INI_H
#define CSGI_LOADER_INI_H

#include "common/arena.h"
#include "loader/error.h"
#include "loader/name_index.h"

#include <stddef.h>

/* Files larger than this are refused (a deploy file is a few kilobytes). */
#define CSGI_INI__MAX_FILE_SIZE (16u * 1024u * 1024u)

typedef struct csgi_ini__key csgi_ini__key;
typedef struct csgi_ini__section csgi_ini__section;

struct csgi_ini__key {
    csgi_ini__key *next; /* next key of the section, in file order */
    const char *name;    /* as written, stripped */
    const char *value;   /* as written: stripped, continuation lines joined with "\n" */
    int line;            /* line of the key (1-based) */
};

struct csgi_ini__section {
    csgi_ini__section *next; /* next section in file order */
    const char *name;        /* the header text between '[' and ']', as written */
    int line;                /* line of the header */
    csgi_ini__key *keys;     /* first key, or NULL */
    csgi_ini__key *last_key;
    size_t key_count;
    csgi_name_index keys_by_name; /* the keys by name, once there are more than a few */
};

/* A loaded file. Read its fields; change nothing. */
typedef struct csgi_ini {
    const char *path; /* the path or name it was loaded under */
    csgi_ini__section *sections;
    csgi_ini__section *last_section;
    size_t section_count;
    csgi_name_index sections_by_name;
    csgi_arena arena; /* every string above */
} csgi_ini;

/*
 * Read the file at path into a new model.
 *
 * out:   receives the model (owned by the caller: csgi_ini__free it); set
 *        to NULL on failure.
 * path:  borrowed; copied into the model and used in error messages.
 * error: may be NULL; filled on failure (first error wins).
 *
 * Returns 0; CSGI_EPARSE for a syntax error; CSGI_ENOTFOUND, CSGI_EACCESS or
 * CSGI_EIO when the file cannot be read; CSGI_ETOOBIG above
 * CSGI_INI__MAX_FILE_SIZE; CSGI_ENOMEM; CSGI_EINVAL for NULL out or path.
 */
int csgi_ini__load(csgi_ini **out, const char *path, csgi_load_error *error);

/*
 * The same from memory: data (len bytes, borrowed, need not be
 * NUL-terminated) is parsed as if it were the file called name (borrowed,
 * copied; used as the model's path and in errors).
 */
int csgi_ini__load_buffer(csgi_ini **out, const char *name, const char *data, size_t len,
                          csgi_load_error *error);

/* Release a model and all its strings. Accepts NULL. */
void csgi_ini__free(csgi_ini *ini);

/* The section whose header is exactly header (case-sensitive), or NULL. */
const csgi_ini__section *csgi_ini__find_section(const csgi_ini *ini, const char *header);

/* The key called exactly name in section, or NULL. */
const csgi_ini__key *csgi_ini__find_key(const csgi_ini__section *section, const char *name);

/* The value of key name in section (borrowed from the model), or NULL. */
const char *csgi_ini__get(const csgi_ini__section *section, const char *name);

#endif
