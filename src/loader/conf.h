/*
 * Deploy-file contexts (internal): the second layer of the INI loader.
 *
 * The first layer (loader/ini.h) reads a file as written. This layer gives
 * it PasteDeploy's meaning (paste/deploy/loadwsgi.py, ConfigLoader.get_context)
 * without building anything: it finds the section asked for, interpolates
 * its values, applies `set`/`get`, the DEFAULT rules and `use` chains, and
 * hands back a context recording the section kind, the factory reference as
 * written, the local conf and the global conf a factory will receive. The
 * next layer (the factory resolver) turns contexts into apps.
 *
 * The rules, exactly as PasteDeploy:
 *
 *   - Defaults of a file: `here` (directory of the file, absolute) and
 *     `__file__` (its absolute path), then the keys of [DEFAULT], then the
 *     caller's globals that [DEFAULT] does not define (update_defaults with
 *     overwrite=False). Each default is interpolated against the defaults.
 *   - `%(name)s` in any value is replaced by the key `name` of the same
 *     section, else of the defaults; `%%` is a '%'. Replacements are
 *     themselves interpolated (at most 10 levels). So for interpolation the
 *     file's DEFAULT wins over caller globals.
 *   - Global conf = the defaults, then the global conf handed down (the
 *     caller's globals, or the referencing section's global conf) on top: in
 *     what factories receive the caller's values win.
 *   - `set KEY = value` sets KEY in the global conf (and, through `use`,
 *     overrides what the used section set). `get KEY = OTHER` sets local KEY
 *     to the global OTHER. Any other key that the defaults define is dropped
 *     from the local conf (caller globals are defaults too, so a section
 *     key named like one is dropped, as in PasteDeploy); `filter-with` (app
 *     and filter), `require` and csgi's `blocking` (app and filter
 *     sections but pipelines) are taken out of it. A pipeline section
 *     holds only `pipeline`; a filter-app needs `next`.
 *   - A `use` chain that comes back to a section is a cycle, reported with
 *     its path ("a.ini[app:a] -> [app:b] -> [app:a]"); so is a child
 *     (csgi_conf__resolve_child) that names one of its ancestors.
 *   - `use = NAME`: the section NAME of the same file; `use = config:PATH#N`:
 *     section N (default main) of PATH, relative to the referencing file,
 *     whose defaults gain the referencing global conf without overwriting;
 *     the local keys of the using section extend and override the used
 *     section's, its `set` keys override the global conf, and `__file__`
 *     stays the using file's. `egg:`, `call:` and other references with a
 *     scheme, or `module:symbol` naming no section, are recorded, not
 *     resolved; so are the factory keys paste.app_factory etc.
 *   - Section lookup: app requests look in [app:N] (else [application:N]),
 *     [composite:N] (else [composit:N]), [pipeline:N] and [filter-app:N];
 *     filter requests in [filter:N]; server requests in [server:N]. The name
 *     is compared after stripping spaces; for `main` a bare [app], [server]...
 *     section also matches. Finding more than one is an error.
 *
 * Everything a loader returns lives in the loader's arena and dies with
 * csgi_conf__loader_free; the loader caches every file it read.
 */
#ifndef CSGI_LOADER_CONF_H
#define CSGI_LOADER_CONF_H

#include "common/arena.h"
#include "loader/ini.h"
#include "loader/name_index.h"

#include <stddef.h>

/* What is asked for (PasteDeploy's object types APP, FILTER, SERVER). */
typedef enum csgi_conf__type {
    CSGI_CONF__APP,
    CSGI_CONF__FILTER,
    CSGI_CONF__SERVER
} csgi_conf__type;

/* The kind of section a context came from. */
typedef enum csgi_conf__kind {
    CSGI_CONF__KIND_NONE, /* no section: the name was a reference (egg:, call:, module:symbol) */
    CSGI_CONF__KIND_APP,  /* [app:] or [application:] */
    CSGI_CONF__KIND_COMPOSITE, /* [composite:] or [composit:] */
    CSGI_CONF__KIND_PIPELINE,
    CSGI_CONF__KIND_FILTER_APP,
    CSGI_CONF__KIND_FILTER,
    CSGI_CONF__KIND_SERVER
} csgi_conf__kind;

/* Which factory key named the factory; NONE when it comes from `use`. */
typedef enum csgi_conf__protocol {
    CSGI_CONF__PROTOCOL_NONE,
    CSGI_CONF__PROTOCOL_APP_FACTORY,        /* paste.app_factory */
    CSGI_CONF__PROTOCOL_COMPOSITE_FACTORY,  /* paste.composite_factory */
    CSGI_CONF__PROTOCOL_COMPOSIT_FACTORY,   /* paste.composit_factory */
    CSGI_CONF__PROTOCOL_FILTER_FACTORY,     /* paste.filter_factory */
    CSGI_CONF__PROTOCOL_FILTER_APP_FACTORY, /* paste.filter_app_factory */
    CSGI_CONF__PROTOCOL_SERVER_FACTORY,     /* paste.server_factory */
    CSGI_CONF__PROTOCOL_SERVER_RUNNER       /* paste.server_runner */
} csgi_conf__protocol;

/* Where a value was written: file NULL for here, __file__ and caller globals. */
typedef struct csgi_conf__origin {
    const char *file;
    const char *section;
    const char *key;
    int line;
} csgi_conf__origin;

typedef struct csgi_conf__entry csgi_conf__entry;

/* One name = value of a conf, interpolated. */
struct csgi_conf__entry {
    csgi_conf__entry *next;
    const char *name;
    const char *value;
    csgi_conf__origin origin;
};

/* An ordered conf (Python dict order: a replaced key keeps its place).
   Zeroed, it is empty. A copy of the struct takes the list over: use the
   copy only. */
typedef struct csgi_conf__list {
    csgi_conf__entry *first;
    csgi_conf__entry *last;
    size_t count;
    csgi_name_index index; /* the entries by name, once there are more than a few */
} csgi_conf__list;

/* A reference written in the file, recorded for the next layer. */
typedef struct csgi_conf__reference {
    const char *text; /* as written (interpolated): "egg:FakeApp#caps", "normal", ... */
    csgi_conf__origin origin;
} csgi_conf__reference;

typedef struct csgi_conf__scope csgi_conf__scope;
typedef struct csgi_conf__filter_with csgi_conf__filter_with;

/* `filter-with` references, outermost filter first. */
struct csgi_conf__filter_with {
    csgi_conf__filter_with *next;
    csgi_conf__reference reference;
};

typedef struct csgi_conf__context {
    csgi_conf__type type; /* what was asked for */
    csgi_conf__kind kind;
    const char *file;    /* the file of the section asked for (its path as loaded) */
    const char *section; /* its header ("app:test1"), NULL for KIND_NONE */
    const char *name;    /* the name looked up ("test1", "main") */
    int line;            /* line of the header */

    /* The factory (app, composite, filter, filter-app's filter, server):
       protocol says which factory key named it (factory.text is then its
       value); with PROTOCOL_NONE factory.text is a `use` reference (egg:,
       call:, module:symbol) or, for KIND_NONE, the name itself. Unset
       (text NULL) for pipelines. factory.origin says where it was written. */
    csgi_conf__protocol protocol;
    csgi_conf__reference factory;
    /* The kind of the innermost section of the `use` chain, the one that
       wrote the factory reference: with PROTOCOL_NONE and a call: or
       module:symbol reference it says which protocol the factory follows
       (PasteDeploy's _context_from_use). FILTER for a filter-app's filter. */
    csgi_conf__kind factory_kind;

    csgi_conf__list local_conf;
    csgi_conf__list global_conf;

    /* KIND_PIPELINE: the items, filters first and the app last. */
    csgi_conf__reference *pipeline;
    size_t pipeline_count;
    /* KIND_FILTER_APP: the app the filter wraps. */
    csgi_conf__reference next_app;
    /* filter-with references, or NULL. */
    csgi_conf__filter_with *filter_with;
    /* `blocking` as written (text NULL without it): csgi's key, not
       PasteDeploy's; true runs what the section builds on a pool thread. */
    csgi_conf__reference blocking;

    const csgi_conf__scope *scope; /* the file the names above resolve in */
    /* The context this one was resolved from by csgi_conf__resolve_child,
       or NULL: reference cycles through pipelines, `next` and `filter-with`
       are detected along this chain. */
    const struct csgi_conf__context *parent;
} csgi_conf__context;

typedef struct csgi_conf__loader csgi_conf__loader;

/* A new loader (owned: csgi_conf__loader_free it). Returns 0 or CSGI_ENOMEM. */
int csgi_conf__loader_new(csgi_conf__loader **out);

/* Release a loader, its files and every context it returned. Accepts NULL. */
void csgi_conf__loader_free(csgi_conf__loader *loader);

/*
 * Resolve an entry point.
 *
 * uri:     "PATH", "PATH#name", "config:PATH[#name]" (borrowed); a relative
 *          path is relative to the current directory.
 * name:    the section name, or NULL for the fragment of uri, else "main".
 * globals: the caller's globals (name=value from the command line), or NULL;
 *          borrowed, copied.
 * out:     receives the context (borrowed from the loader).
 * error:   may be NULL; filled on failure (first error wins).
 *
 * Returns 0; CSGI_ENOTFOUND (no such section), CSGI_EPARSE (bad value,
 * interpolation, cycle, pipeline...), the errors of csgi_ini__load for
 * files, CSGI_ENOMEM, CSGI_EINVAL for NULL arguments.
 */
int csgi_conf__resolve(csgi_conf__loader *loader, csgi_conf__type type, const char *uri,
                       const char *name, const csgi_conf__list *globals,
                       const csgi_conf__context **out, csgi_load_error *error);

/*
 * Whether the file uri names ("PATH#name", as for csgi_conf__resolve) has a
 * section of type called name: *found 1 or 0. Returns 0, or the errors of
 * reading the file.
 */
int csgi_conf__has_section(csgi_conf__loader *loader, csgi_conf__type type, const char *uri,
                           const csgi_conf__list *globals, int *found, csgi_load_error *error);

/*
 * Resolve a name written in parent (a pipeline item, `next`, `filter-with`,
 * a composite's app) the way PasteDeploy does: in parent's file, handing
 * parent's global conf down. A reference back to parent or one of its
 * ancestors is a cycle (CSGI_EPARSE naming the path). Same returns as
 * csgi_conf__resolve.
 */
int csgi_conf__resolve_child(csgi_conf__loader *loader, const csgi_conf__context *parent,
                             csgi_conf__type type, const csgi_conf__reference *reference,
                             const csgi_conf__context **out, csgi_load_error *error);

/* Append name = value to list, allocated in the loader (for caller globals). */
int csgi_conf__list_add(csgi_conf__loader *loader, csgi_conf__list *list, const char *name,
                        const char *value);

/* The entry called name in list, or NULL. */
const csgi_conf__entry *csgi_conf__list_find(const csgi_conf__list *list, const char *name);

/* The value of name in list, or NULL. */
const char *csgi_conf__list_get(const csgi_conf__list *list, const char *name);

/* "app", "composite", ... ; "reference" for KIND_NONE. */
const char *csgi_conf__kind_name(csgi_conf__kind kind);

/* "paste.app_factory", ...; NULL for PROTOCOL_NONE. */
const char *csgi_conf__protocol_name(csgi_conf__protocol protocol);

#endif
