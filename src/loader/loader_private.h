/*
 * The factory resolver (internal): the third layer of the INI loader
 * (csgi/loader.h), shared by its files.
 *
 * loader/conf.h turns a section into a context (kind, factory reference,
 * local and global conf, pipeline items, next, filter-with) without building
 * anything. The files here find the factories those contexts name and call
 * them, the way PasteDeploy's loadwsgi.py invokes its contexts:
 *
 *   loader.c    the loader object: new, free, globals, listen addresses,
 *               server options
 *   access.c    what factories read: csgi_conf_get, asbool, asint, aslist
 *   registry.c  registered and built-in factories, and the lookup order
 *   module.c    factories from shared objects (dlopen), kinds checked
 *   build.c     building apps, pipelines, filters, filter-with
 *   describe.c  csgi_loader_describe (csgi-serve --check)
 *   serve.c     the [server:] section: csgi_loader_serve, its check, and
 *               csgi_loader_serve_app with its source of worker
 *               applications (a generation is a read of the file)
 *
 * The built-in factories live beside what they build: the composites in
 * src/composite/, lint in src/middleware/, the HTTP server runner in
 * src/gateway/server.c.
 */
#ifndef CSGI_LOADER_LOADER_PRIVATE_H
#define CSGI_LOADER_LOADER_PRIVATE_H

#include "loader/conf.h"
#include "loader/error.h"

#include <csgi/loader.h>

#include <stddef.h>

/* The public conf: a view of a conf-layer list, with the loader that keeps
   what csgi_conf_aslist() allocates. Lives on the stack while a factory
   runs. cursor and cursor_index remember the last csgi_conf_entry() answer,
   so that walking the entries in order is linear. */
struct csgi_conf {
    const csgi_conf__list *list;
    csgi_loader *loader;
    const csgi_conf__entry *cursor;
    size_t cursor_index;
};

/* What a lookup is for. */
typedef enum csgi_loader__want {
    CSGI_LOADER__WANT_APP,    /* an app or composite factory */
    CSGI_LOADER__WANT_FILTER, /* a filter or filter-app factory */
    CSGI_LOADER__WANT_SERVER  /* a server runner */
} csgi_loader__want;

/* Checks a server section's conf (and the loader's server options)
   without serving (the built-in runners). */
typedef int (*csgi_loader__server_check_fn)(csgi_loader *loader, const csgi_conf *local_conf,
                                            csgi_load_error *error);

typedef struct csgi_loader__factory csgi_loader__factory;

/* A factory: registered, built in, or found in a shared object. */
struct csgi_loader__factory {
    csgi_loader__factory *next;
    char *reference; /* normalised (see csgi_loader__normalise) */
    csgi_factory_kind kind;
    csgi_app_factory_fn app_factory;
    csgi_filter_factory_fn filter_factory;
    csgi_server_runner_fn server_runner;
    csgi_loader__server_check_fn server_check; /* built-in runners only */
};

typedef struct csgi_loader__allocation csgi_loader__allocation;
typedef struct csgi_loader__module csgi_loader__module;
typedef struct csgi_loader__module_dir csgi_loader__module_dir;
typedef struct csgi_loader__describe_node csgi_loader__describe_node;

struct csgi_loader {
    csgi_conf__loader *conf;
    csgi_loader__factory *registrations;
    csgi_loader__module_dir *module_dirs; /* in the order added */
    csgi_loader__module *modules;
    csgi_conf__list globals;
    csgi_loader__allocation *allocations; /* csgi_conf_aslist's */
    /* The composite whose factory is running (csgi_loader_get_app resolves
       names in it), or NULL. */
    const csgi_conf__context *composite;
    /* csgi_loader_set_listen's addresses (owned), or none. */
    char **listen;
    size_t listen_count;
    /* csgi_loader_set_server_option's keys, for the built-in server. */
    csgi_conf__list server_options;
    /* While csgi_loader_describe builds: the item being built, or NULL. */
    csgi_loader__describe_node *describing;
    int stub_unknown;
    char *description; /* the last csgi_loader_describe text (owned) */
};

/* ---- loader.c --------------------------------------------------------------- */

/* csgi_loader_set_listen's addresses (borrowed), *count 0 for none. */
const char *const *csgi_loader__listen(const csgi_loader *loader, size_t *count);

/* ---- errors (build.c) --------------------------------------------------- */

/* The start of a public function that loads: *error (NULL: scratch)
   cleared, and CSGI_EINVAL, filled, unless the arguments are valid. */
int csgi_loader__start(csgi_load_error **error, csgi_load_error *scratch, int valid);

/* An error at the place a value was written. */
void csgi_loader__error_at(csgi_load_error *error, const csgi_conf__origin *origin,
                           const char *format, ...) __attribute__((format(printf, 3, 4)));

/* Where the factory reference of context was written (its section when the
   reference has no place of its own). */
csgi_conf__origin csgi_loader__factory_origin(const csgi_conf__context *context);

/* The factory r (NULL: none) is not what context needs (expected, "an app
   factory", ...): fill error, return CSGI_EINVAL (another kind) or
   CSGI_ENOTFOUND (none). */
int csgi_loader__wrong_factory(const csgi_conf__context *context, const csgi_loader__factory *r,
                               const char *expected, csgi_load_error *error);

/* A factory failed: give its error the place of the section if it left it out. */
void csgi_loader__error_locate(csgi_load_error *error, const csgi_conf__context *context, int rc);

/* ---- access.c ------------------------------------------------------------- */

/* The conf a factory receives for list (on the caller's stack). */
csgi_conf csgi_loader__conf(csgi_loader *loader, const csgi_conf__list *list);

/* Free what csgi_conf_aslist handed out. */
void csgi_loader__free_allocations(csgi_loader *loader);

/* ---- registry.c ------------------------------------------------------------ */

/* "egg:DIST" -> "egg:DIST#main", the schemes egg: and call: in lower case
   ("EGG:x" is "egg:x#main"); anything else as it is. Owned (csgi__free). */
char *csgi_loader__normalise(const char *reference);

/* Whether the normalised reference written names the factory known (a
   registration's or a built-in's normalised reference): egg: distribution
   names compare as PEP 503 names, call:MODULE:OBJECT is MODULE:OBJECT, and
   with oslo_alias the module oslo.middleware is oslo_middleware (see
   docs/config.md). 1 or 0. */
int csgi_loader__same_reference(const char *written, const char *known, int oslo_alias);

/* The reference of the i-th built-in factory and its kind (kind may be
   NULL), or NULL past the last: for the tests. */
const char *csgi_loader__builtin_reference(size_t i, csgi_factory_kind *kind);

/* Whether the context asks for a composite: its section, its factory key,
   or (through `use`) the section that wrote the factory reference. */
int csgi_loader__wants_composite(const csgi_conf__context *context);

/*
 * The factory the reference of context names, for want: registered, then
 * built in, then from a shared object. *out is NULL when the reference names
 * none; found is storage for a factory that is not registered. Returns 0,
 * or an error (filled) when a shared object or its entry is missing or of
 * the wrong kind.
 */
int csgi_loader__lookup(csgi_loader *loader, const csgi_conf__context *context,
                        csgi_loader__want want, csgi_loader__factory *found,
                        const csgi_loader__factory **out, csgi_load_error *error);

void csgi_loader__free_registrations(csgi_loader *loader);

/* ---- module.c ---------------------------------------------------------------- */

/* The factory of a shared object the normalised reference names, as
   csgi_loader__lookup; *out NULL when the reference has no module form. */
int csgi_loader__lookup_module(csgi_loader *loader, const csgi_conf__context *context,
                               const char *normalised, csgi_loader__want want,
                               csgi_loader__factory *found, const csgi_loader__factory **out,
                               csgi_load_error *error);

/* Free the module cache and the module path (the handles stay open). */
void csgi_loader__free_modules(csgi_loader *loader);

/* ---- build.c ------------------------------------------------------------------- */

/* Build the application of an app, pipeline, composite, filter-app or
   reference context (a new reference in *out). */
int csgi_loader__build_app(csgi_loader *loader, const csgi_conf__context *context, csgi_app **out,
                           csgi_load_error *error);

/* Resolve the entry point uri as type (in the loader's globals). */
int csgi_loader__resolve(csgi_loader *loader, csgi_conf__type type, const char *uri,
                         const csgi_conf__context **out, csgi_load_error *error);

/* ---- describe.c ------------------------------------------------------------------ */

/* While describing, add a node for context under the current one and make
   it current (wrapping: a filter, in front of the chain it wraps). The
   caller restores loader->describing. Returns 0 or CSGI_ENOMEM. */
int csgi_loader__describe_enter(csgi_loader *loader, const csgi_conf__context *context,
                                int wrapping);

/* With stub_unknown while describing, an unknown factory (*rc ==
   CSGI_ENOTFOUND) becomes a placeholder (an application when out is not
   NULL). Returns 1 with *out set (or the error in *rc) when it did. */
int csgi_loader__stub_unknown(csgi_loader *loader, const csgi_conf__context *context, int *rc,
                              csgi_app **out, csgi_load_error *error);

/* Free the text of the last csgi_loader_describe. */
void csgi_loader__free_description(csgi_loader *loader);

#endif
