/**
 * @file csgi/loader.h
 * @brief Building applications from PasteDeploy-style INI files.
 *
 * A deployer composes a service in an INI file, the way OpenStack services
 * are composed by their api-paste.ini files:
 *
 * @code
 * [pipeline:main]
 * pipeline = auth hello
 *
 * [app:hello]
 * paste.app_factory = wsgi_webob_mid:app_factory
 *
 * [filter:auth]
 * paste.filter_factory = wsgi_webob_mid:filter_factory
 * @endcode
 *
 * Factories are C functions found by the reference written in the file:
 * first those the host program registered under that exact string (so
 * "fakeapp.configapps:SimpleApp.make_app" or "egg:FakeApp#basic_app" can be
 * registered as they are), then the ones built into csgi ("egg:csgi#urlmap",
 * "egg:csgi#cascade", also answering to "egg:Paste#urlmap" and
 * "egg:Paste#cascade"). docs/config.md describes the file format.
 *
 * A factory receives the global conf (the file's defaults and the caller's
 * globals) and its section's local conf, both read-only and valid while the
 * factory runs: copy what you keep.
 */
#ifndef CSGI_LOADER_H
#define CSGI_LOADER_H

#include "app.h"
#include "common.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A loading session: registered factories, caller globals, the files read (opaque). */
typedef struct csgi_loader csgi_loader;

/** A read-only, ordered list of name = value pairs handed to factories (opaque). */
typedef struct csgi_conf csgi_conf;

/**
 * Where loading failed and why: "file:line: [section] key: text". The first
 * error wins; a field is empty (or line 0) when it does not apply.
 */
typedef struct csgi_load_error {
    char file[512];    /**< the file, as it was named */
    int line;          /**< the line, or 0 */
    char section[128]; /**< the section header, e.g. "filter:auth", or "" */
    char key[128];     /**< the key, or "" */
    char text[512];    /**< what is wrong */
} csgi_load_error;

/**
 * Format an error as "file:line: [section] key: text", leaving out what is
 * empty.
 *
 * @param error the error (borrowed)
 * @param buf   where to write, NUL-terminated (truncated to size)
 * @param size  size of buf
 * @return the length the whole text needs (like snprintf).
 */
CSGI_EXTERN size_t csgi_load_error_format(const csgi_load_error *error, char *buf, size_t size);

/* ---- Conf ----------------------------------------------------------------- */

/** The value of name, or NULL when conf has no such key. Borrowed from the loader. */
CSGI_EXTERN const char *csgi_conf_get(const csgi_conf *conf, const char *name);

/** Number of entries. */
CSGI_EXTERN size_t csgi_conf_count(const csgi_conf *conf);

/**
 * Entry index, in file order.
 *
 * @return 1 with *name and *value set (borrowed), or 0 past the end.
 */
CSGI_EXTERN int csgi_conf_entry(const csgi_conf *conf, size_t index, const char **name,
                                const char **value);

/**
 * A boolean setting: true, yes, on, y, t, 1 or false, no, off, n, f, 0 (any
 * case); fallback when the key is absent.
 *
 * @param error filled (naming file:line, section and key) for any other value
 * @return 0 with *out set, or CSGI_EINVAL.
 */
CSGI_EXTERN int csgi_conf_asbool(const csgi_conf *conf, const char *name, int fallback, int *out,
                                 csgi_load_error *error);

/**
 * An integer setting (decimal, optional sign); fallback when absent.
 *
 * @return 0 with *out set, or CSGI_EINVAL (not an integer, or out of range).
 */
CSGI_EXTERN int csgi_conf_asint(const csgi_conf *conf, const char *name, long long fallback,
                                long long *out, csgi_load_error *error);

/**
 * A list setting: the value split at whitespace (PasteDeploy's aslist).
 *
 * @param items set to the items (borrowed from the loader), NULL when absent
 * @param count set to their number (0 when absent)
 * @return 0, or CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_conf_aslist(const csgi_conf *conf, const char *name, const char *const **items,
                                 size_t *count, csgi_load_error *error);

/**
 * Fill error (unless it holds an error already) with text placed where the
 * key name of conf was written: "file:line: [section] name: text". For
 * factories reporting a bad value; a name conf does not hold gives the
 * text and the name only (the loader adds the section's place).
 *
 * @param conf   the conf (borrowed); NULL allowed
 * @param name   the key (borrowed); NULL allowed
 * @param error  the error to fill; NULL allowed (then nothing happens)
 * @param format printf-style text
 */
CSGI_EXTERN void csgi_conf_error(const csgi_conf *conf, const char *name, csgi_load_error *error,
                                 const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* ---- Factories -------------------------------------------------------------- */

/**
 * An application factory (paste.app_factory): make an application from its
 * conf. Also the signature of a composite factory (paste.composite_factory),
 * which builds the applications it dispatches to with csgi_loader_get_app().
 *
 * @return 0 with *out set (a new reference), or an error with *error filled
 *         (the loader adds the file, line and section if the factory does not).
 */
typedef int (*csgi_app_factory_fn)(csgi_app **out, csgi_loader *loader,
                                   const csgi_conf *global_conf, const csgi_conf *local_conf,
                                   csgi_load_error *error);

/**
 * A filter factory (paste.filter_factory, and paste.filter_app_factory):
 * wrap next in a filter made from the conf.
 *
 * @param next the application to wrap; taken (also when the factory fails)
 * @return 0 with *out set, or an error with *error filled.
 */
typedef int (*csgi_filter_factory_fn)(csgi_app **out, csgi_loader *loader,
                                      const csgi_conf *global_conf, const csgi_conf *local_conf,
                                      csgi_app *next, csgi_load_error *error);

/**
 * A server runner (paste.server_runner; a paste.server_factory becomes one
 * in C): serve app, configured by the conf, until the server is stopped
 * (SIGINT or SIGTERM for the built-in egg:csgi#http).
 *
 * @param app the application to serve; taken (also when the runner fails)
 * @return 0 after a clean stop, or an error with *error filled.
 */
typedef int (*csgi_server_runner_fn)(csgi_loader *loader, const csgi_conf *global_conf,
                                     const csgi_conf *local_conf, csgi_app *app,
                                     csgi_load_error *error);

/** Which protocol a registered factory follows. */
typedef enum csgi_factory_kind {
    CSGI_FACTORY_APP,        /**< csgi_app_factory_fn, paste.app_factory */
    CSGI_FACTORY_COMPOSITE,  /**< csgi_app_factory_fn, paste.composite_factory */
    CSGI_FACTORY_FILTER,     /**< csgi_filter_factory_fn, paste.filter_factory */
    CSGI_FACTORY_FILTER_APP, /**< csgi_filter_factory_fn, paste.filter_app_factory */
    CSGI_FACTORY_SERVER      /**< csgi_server_runner_fn, paste.server_runner */
} csgi_factory_kind;

/**
 * Create a loader.
 *
 * @return 0, or CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_loader_new(csgi_loader **out);

/** Free a loader (applications it built live on). Accepts NULL. */
CSGI_EXTERN void csgi_loader_free(csgi_loader *loader);

/**
 * Register an application or composite factory under the reference written
 * in INI files ("egg:FakeApp#basic_app", "call:fakeapp.apps:make_basic_app",
 * "fakeapp.configapps:SimpleApp.make_app"; "egg:DIST" means
 * "egg:DIST#main").
 *
 * @param reference copied
 * @param kind      CSGI_FACTORY_APP or CSGI_FACTORY_COMPOSITE
 * @return 0, CSGI_EINVAL (wrong kind, empty reference, already registered),
 *         CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_loader_register_app(csgi_loader *loader, const char *reference,
                                         csgi_factory_kind kind, csgi_app_factory_fn factory);

/**
 * Register a filter or filter-app factory; as csgi_loader_register_app().
 *
 * @param kind CSGI_FACTORY_FILTER or CSGI_FACTORY_FILTER_APP
 */
CSGI_EXTERN int csgi_loader_register_filter(csgi_loader *loader, const char *reference,
                                            csgi_factory_kind kind, csgi_filter_factory_fn factory);

/**
 * Register a server runner under a reference; as csgi_loader_register_app().
 * Built in: "egg:csgi#http" (also "egg:Paste#http"), csgi's own server,
 * configured by the section's keys (host, default 127.0.0.1; port, default
 * 8080; workers, access_log, pidfile, user...): docs/server.md lists every
 * one with its type and default. Any other key is an error naming its file
 * and line.
 *
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_loader_register_server(csgi_loader *loader, const char *reference,
                                            csgi_server_runner_fn runner);

/**
 * Listen on these addresses instead of the host and port of the server
 * section (what `csgi-serve --listen` does); the built-in egg:csgi#http
 * honours it.
 *
 * @param addresses "HOST:PORT", "[IPv6]:PORT" or "unix:/path" (copied);
 *                  "https://HOST:PORT" serves TLS with the section's
 *                  cert_file, "http://HOST:PORT" plain HTTP; without a
 *                  scheme, TLS when the section has cert_file (a Unix
 *                  socket stays plain)
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_loader_set_listen(csgi_loader *loader, const char *const *addresses,
                                       size_t count);

/**
 * Give a key of the built-in server egg:csgi#http a value over the server
 * section's own (what `csgi-serve --workers N` does). The value is checked
 * as the section's would be when the server is built or checked; an error
 * names the key without a file.
 *
 * @param name  the key ("workers", ...); copied
 * @param value its text; copied
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_loader_set_server_option(csgi_loader *loader, const char *name,
                                              const char *value);

/**
 * Build the application app_uri names and serve it with the server
 * section server_uri names until a signal stops it: what csgi-serve does.
 * A file without that server section is served by egg:csgi#http with its
 * defaults (127.0.0.1:8080, or the csgi_loader_set_listen() addresses).
 *
 * With egg:csgi#http and `workers` N > 0, this process is the master of N
 * worker processes (csgi_server_run_until_signal()). Each worker builds the
 * application after the fork, from the file as the master read it; with
 * `preload = true` the master builds it once before forking. SIGHUP reads
 * the file again (the server section and the application: preloaded in the
 * master, else in the new workers): new workers start on the new pipeline,
 * and the old ones stop once all the new ones accept. A file that no longer
 * loads keeps the old workers serving, and the error is logged with its
 * file and line. Without workers, or with another runner, the application
 * is built first and served as csgi_loader_serve() does.
 *
 * @param app_uri    "file.ini", "file.ini#name", "config:file.ini#name"
 * @param server_uri the server section's file and name
 * @return 0 after a clean stop; the errors of csgi_loader_load_app() and
 *         csgi_loader_serve(), CSGI_EWORKERS (workers kept failing to start).
 */
CSGI_EXTERN int csgi_loader_serve_app(csgi_loader *loader, const char *app_uri,
                                      const char *server_uri, csgi_load_error *error);

/**
 * Serve app with the server section uri names ("file.ini", "file.ini#name",
 * default name "main"): build the server runner and run it.
 *
 * @param app taken (also on failure)
 * @return 0 after a clean stop; the errors of csgi_loader_load_app().
 */
CSGI_EXTERN int csgi_loader_serve(csgi_loader *loader, const char *uri, csgi_app *app,
                                  csgi_load_error *error);

/**
 * Whether the file uri names ("file.ini", "file.ini#name") has the server
 * section name (default "main"): [server:name], or [server] for main. For
 * programs that serve a file without one their own way (csgi-serve), so
 * that they never read the file themselves.
 *
 * @return 1 or 0; or CSGI_ENOTFOUND, CSGI_EPARSE, ... when the file cannot
 *         be read, with error filled.
 */
CSGI_EXTERN int csgi_loader_has_server(csgi_loader *loader, const char *uri,
                                       csgi_load_error *error);

/**
 * Check the server section uri names without serving (what `csgi-serve
 * --check` does): its factory exists and is a server runner, and for the
 * built-in egg:csgi#http every key is known and every value valid.
 *
 * @return 0, or the errors of csgi_loader_serve() before it would serve.
 */
CSGI_EXTERN int csgi_loader_check_server(csgi_loader *loader, const char *uri,
                                         csgi_load_error *error);

/**
 * Build the application uri names and describe what was built, outermost
 * first, one item a line: its section, kind, factory reference and local
 * conf (what `csgi-serve --check` prints).
 *
 * @param stub_unknown 1: an unknown factory becomes a labelled placeholder
 *                     application instead of an error, so the structure of
 *                     a foreign deploy file can be inspected without its code
 * @param out          set to the description, borrowed from the loader:
 *                     valid until the next csgi_loader_describe() or
 *                     csgi_loader_free()
 * @return as csgi_loader_load_app().
 */
CSGI_EXTERN int csgi_loader_describe(const char **out, csgi_loader *loader, const char *uri,
                                     int stub_unknown, csgi_load_error *error);

/**
 * Add a directory to search for shared objects named by factory references
 * (after the deploy file's own directory and the directories its global conf
 * lists in csgi_module_path — colon-separated, relative to the file — and
 * before those of the CSGI_MODULE_PATH environment variable, a
 * colon-separated list).
 *
 * A reference "MODULE:SYMBOL" (as a factory key's value, or with `use =
 * call:MODULE:SYMBOL`) loads MODULE.so or libMODULE.so and looks SYMBOL up
 * in its exported table csgi_plugin_entry_points; "egg:DIST#NAME" loads
 * DIST.so or libDIST.so and looks NAME up in the same table. The table
 * declares each factory's kind, which must be the one the section asks for:
 * a factory is never called through another kind's signature, and a
 * function the table does not list is never called.
 *
 * @param directory copied
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_loader_add_module_path(csgi_loader *loader, const char *directory);

/**
 * One named factory of a plugin (see csgi_plugin_entry_points). Its name
 * is the NAME of `egg:DIST#NAME` and the SYMBOL of `MODULE:SYMBOL`.
 */
typedef struct csgi_entry_point {
    const char *name;                      /**< the factory's name; NULL ends the table */
    csgi_factory_kind kind;                /**< which protocol factory follows */
    csgi_app_factory_fn app_factory;       /**< for CSGI_FACTORY_APP and _COMPOSITE */
    csgi_filter_factory_fn filter_factory; /**< for CSGI_FACTORY_FILTER and _FILTER_APP */
    csgi_server_runner_fn server_runner;   /**< for CSGI_FACTORY_SERVER */
} csgi_entry_point;

/**
 * The name of the table a plugin exports: `const csgi_entry_point
 * csgi_plugin_entry_points[]`, ended by an entry whose name is NULL.
 */
#define CSGI_PLUGIN_ENTRY_POINTS "csgi_plugin_entry_points"

/**
 * Set a caller global (what `csgi-serve app.ini name=value` passes): it
 * fills `%(name)s` where the file's [DEFAULT] does not define name, and
 * overrides [DEFAULT] in the global conf factories receive.
 *
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_loader_set_global(csgi_loader *loader, const char *name, const char *value);

/**
 * Build the application an INI file names.
 *
 * @param uri "path/app.ini", "path/app.ini#name" or "config:path/app.ini#name";
 *            the name defaults to "main". Only the sections it reaches are
 *            built: sections whose factories are not installed are fine
 *            elsewhere in the file.
 * @param out where to store the application (a new reference)
 * @param error may be NULL; filled on failure
 * @return 0, CSGI_ENOTFOUND (file or section missing, factory unknown),
 *         CSGI_EPARSE (malformed file, interpolation, cycle, ...),
 *         CSGI_EINVAL, CSGI_ENOMEM, or what a factory returned.
 */
CSGI_EXTERN int csgi_loader_load_app(csgi_app **out, csgi_loader *loader, const char *uri,
                                     csgi_load_error *error);

/**
 * For composite factories: build the application (app, pipeline,
 * composite or filter-app section, or a factory reference) called name in
 * the file of the composite being built.
 *
 * @return as csgi_loader_load_app(); CSGI_ESTATE outside a composite factory.
 */
CSGI_EXTERN int csgi_loader_get_app(csgi_app **out, csgi_loader *loader, const char *name,
                                    csgi_load_error *error);

/**
 * For composite factories: wrap next in the filter called name (a [filter:]
 * section or a filter factory reference) in the file of the composite being
 * built.
 *
 * @param next taken (also on failure)
 * @return as csgi_loader_get_app().
 */
CSGI_EXTERN int csgi_loader_get_filter(csgi_app **out, csgi_loader *loader, const char *name,
                                       csgi_app *next, csgi_load_error *error);

#ifdef __cplusplus
}
#endif

#endif /* CSGI_LOADER_H */
