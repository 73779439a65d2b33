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
 * Parsing goes through Debian's inih (ini_parse_stream). inih cuts lines at
 * 200 bytes and strips ` ; comments`, so our reader function does the
 * line-level work itself and hands inih short placeholder lines: "[N]" for
 * the Nth section, "k=S" for the key whose text it keeps aside under sequence
 * number S. inih's handler then attaches that key to section N.
 *
 * All strings of a csgi_ini live in its arena and die with csgi_ini__free.
 */
#ifndef CSGI_LOADER_INI_H
#define CSGI_LOADER_INI_H

#include "common/arena.h"

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
};

/* A loaded file. Read its fields; change nothing. */
typedef struct csgi_ini {
    const char *path; /* the path or name it was loaded under */
    csgi_ini__section *sections;
    csgi_ini__section *last_section;
    size_t section_count;
    csgi_arena arena; /* every string above */
} csgi_ini;

/*
 * Where and why loading failed. Caller-owned; filled by the first error only
 * (a call that finds text[0] != '\0' leaves it alone), like jansson's
 * json_error_t. Initialise with memset(0) or csgi_ini__error_clear. Strings
 * that do not fit are truncated.
 */
typedef struct csgi_ini__error {
    char file[512];    /* "" when unknown */
    int line;          /* 0 when not about a line */
    char section[128]; /* "" when not about a section */
    char key[128];     /* "" when not about a key */
    char text[256];    /* what is wrong; "" while no error was recorded */
} csgi_ini__error;

/* Reset error to "no error yet". error may be NULL. */
void csgi_ini__error_clear(csgi_ini__error *error);

/*
 * Record an error unless one is already recorded. error may be NULL (then
 * nothing happens); file, section and key may be NULL; line may be 0.
 * The next layer (references, interpolation) reports through this too.
 */
void csgi_ini__error_set(csgi_ini__error *error, const char *file, int line, const char *section,
                         const char *key, const char *format, ...)
    __attribute__((format(printf, 6, 7)));

/*
 * Write "file:line: [section] key: text" into buf (size bytes, always
 * NUL-terminated when size > 0), leaving out the parts that are empty.
 * Returns the length the full text needs, like snprintf.
 */
int csgi_ini__error_format(const csgi_ini__error *error, char *buf, size_t size);

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
int csgi_ini__load(csgi_ini **out, const char *path, csgi_ini__error *error);

/*
 * The same from memory: data (len bytes, borrowed, need not be
 * NUL-terminated) is parsed as if it were the file called name (borrowed,
 * copied; used as the model's path and in errors).
 */
int csgi_ini__load_buffer(csgi_ini **out, const char *name, const char *data, size_t len,
                          csgi_ini__error *error);

/* Release a model and all its strings. Accepts NULL. */
void csgi_ini__free(csgi_ini *ini);

/* The section whose header is exactly header (case-sensitive), or NULL. */
const csgi_ini__section *csgi_ini__find_section(const csgi_ini *ini, const char *header);

/* The key called exactly name in section, or NULL. */
const csgi_ini__key *csgi_ini__find_key(const csgi_ini__section *section, const char *name);

/* The value of key name in section (borrowed from the model), or NULL. */
const char *csgi_ini__get(const csgi_ini__section *section, const char *name);

#endif
