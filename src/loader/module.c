/*
 * Factories from shared objects. A reference no registration or built-in
 * answers may name one:
 *
 *   - "egg:DIST#NAME" loads DIST.so (else libDIST.so) and looks NAME up in
 *     its csgi_plugin_entry_points table;
 *   - "call:MODULE:SYMBOL" and "MODULE:SYMBOL" load MODULE.so (else
 *     libMODULE.so) and look SYMBOL up in the same table.
 *
 * The table declares each factory's kind, and the kind is checked against
 * what the section asks for before anything is called: a filter factory
 * named as an app factory is an error, never a call through the wrong
 * signature. A bare exported function is therefore not enough; the module
 * must list it.
 *
 * `use = foo:bar` where foo is letters only is a URI scheme to PasteDeploy
 * (its `^[a-zA-Z]+:`); csgi knows config:, egg: and call:, and takes any
 * other foo as a module name only when a module foo.so or libfoo.so exists:
 * otherwise the error is PasteDeploy's "URI scheme not known".
 *
 * The directories searched, in order: the one of the deploy file that
 * wrote the reference, those its global conf lists in csgi_module_path,
 * those given to csgi_loader_add_module_path, those of CSGI_MODULE_PATH.
 *
 * Handles are cached per loader and never closed: every application built
 * from a module runs its code, and applications outlive the loader that
 * built them (csgi_loader_free leaves them running), so no point before
 * process exit is safe for dlclose. dlopen counts references, so a module
 * opened by several loaders is mapped once.
 */
#include "common/alloc.h"
#include "common/chartab.h"
#include "loader/loader_private.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A directory searched for shared objects (csgi_loader_add_module_path). */
struct csgi_loader__module_dir {
    csgi_loader__module_dir *next;
    char *path;
};

/* A shared object opened for a factory reference, cached per loader under
   the module name and the directory of the deploy file that named it (the
   same name may find different files beside different files). */
struct csgi_loader__module {
    csgi_loader__module *next;
    char *name;
    char *ini_dir;
    void *handle;
};

static char *copy_text(const char *text, size_t len)
{
    char *copy = csgi__malloc(len + 1);
    if (copy) {
        memcpy(copy, text, len);
        copy[len] = '\0';
    }
    return copy;
}

int csgi_loader_add_module_path(csgi_loader *loader, const char *directory)
{
    if (!loader || !directory || !directory[0])
        return CSGI_EINVAL;
    csgi_loader__module_dir *dir = csgi__calloc(1, sizeof(*dir));
    if (!dir)
        return CSGI_ENOMEM;
    dir->path = copy_text(directory, strlen(directory));
    if (!dir->path) {
        csgi__free(dir);
        return CSGI_ENOMEM;
    }
    csgi_loader__module_dir **tail = &loader->module_dirs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = dir;
    return 0;
}

/* The directory of the deploy file that wrote the reference ("." for a
   bare file name). Owned (csgi__free), NULL when memory is exhausted. */
static char *deploy_directory(const csgi_conf__context *context)
{
    const char *file = context->factory.origin.file ? context->factory.origin.file : context->file;
    const char *slash = file ? strrchr(file, '/') : NULL;
    if (!slash)
        return copy_text(".", 1);
    return copy_text(file, slash == file ? 1 : (size_t)(slash - file));
}

/* The search for one module: the paths tried so far, for the error. */
typedef struct module_search {
    const char *name;
    char tried[1024];
    size_t tried_len;
    void *handle;
    char failure[400]; /* set when a file exists but does not load */
} module_search;

/* Try DIR/NAME.so and DIR/libNAME.so. Returns 1 when the search is over
   (found, or a file that exists failed to load), 0 to go on, or CSGI_ENOMEM. */
static int search_directory(module_search *search, const char *dir, size_t dir_len)
{
    static const char *const prefixes[] = {"", "lib"};
    for (size_t i = 0; i < 2; i++) {
        size_t len = dir_len + 1 + strlen(prefixes[i]) + strlen(search->name) + 3;
        char *path = csgi__malloc(len + 1);
        if (!path)
            return CSGI_ENOMEM;
        snprintf(path, len + 1, "%.*s/%s%s.so", (int)dir_len, dir, prefixes[i], search->name);
        if (search->tried_len < sizeof(search->tried)) {
            int n = snprintf(search->tried + search->tried_len,
                             sizeof(search->tried) - search->tried_len, "%s%s",
                             search->tried_len ? ", " : "", path);
            if (n > 0)
                search->tried_len += (size_t)n;
        }
        /* A path with a slash is opened as it is, never searched for. */
        search->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!search->handle && access(path, F_OK) == 0) {
            const char *why = dlerror();
            snprintf(search->failure, sizeof(search->failure), "cannot load %s: %s", path,
                     why ? why : "unknown error");
        }
        csgi__free(path);
        if (search->handle || search->failure[0])
            return 1;
    }
    return 0;
}

/* Open the module name for a reference written in context (cached). *out
   is NULL when not found; error says why (with the paths tried). */
static int open_module(csgi_loader *loader, const csgi_conf__context *context, const char *name,
                       size_t name_len, const char *expected, int is_scheme, void **out,
                       csgi_load_error *error)
{
    *out = NULL;
    csgi_conf__origin origin = csgi_loader__factory_origin(context);
    char *module_name = copy_text(name, name_len);
    char *ini_dir = deploy_directory(context);
    int rc = 0;
    if (!module_name || !ini_dir) {
        rc = CSGI_ENOMEM;
        goto done;
    }
    if (!module_name[0] || strchr(module_name, '/')) {
        csgi_loader__error_at(error, &origin,
                              "unknown factory '%s' (%s was expected): bad module name '%s'",
                              context->factory.text, expected, module_name);
        rc = CSGI_ENOTFOUND;
        goto done;
    }
    for (csgi_loader__module *m = loader->modules; m; m = m->next) {
        if (strcmp(m->name, module_name) == 0 && strcmp(m->ini_dir, ini_dir) == 0) {
            *out = m->handle;
            goto done;
        }
    }
    module_search search;
    memset(&search, 0, sizeof(search));
    search.name = module_name;
    rc = search_directory(&search, ini_dir, strlen(ini_dir));
    /* The deploy file's own module path: csgi_module_path in [DEFAULT]
       (or a caller global), colon-separated, relative to the file. */
    const char *conf_path = csgi_conf__list_get(&context->global_conf, "csgi_module_path");
    while (rc == 0 && conf_path && *conf_path) {
        size_t len = strcspn(conf_path, ":");
        if (len && conf_path[0] == '/') {
            rc = search_directory(&search, conf_path, len);
        } else if (len) {
            char joined[PATH_MAX];
            int n = snprintf(joined, sizeof(joined), "%s/%.*s", ini_dir, (int)len, conf_path);
            if (n > 0 && (size_t)n < sizeof(joined))
                rc = search_directory(&search, joined, (size_t)n);
        }
        conf_path += len;
        if (*conf_path == ':')
            conf_path++;
    }
    for (csgi_loader__module_dir *d = loader->module_dirs; rc == 0 && d; d = d->next)
        rc = search_directory(&search, d->path, strlen(d->path));
    const char *env = getenv("CSGI_MODULE_PATH");
    while (rc == 0 && env && *env) {
        size_t len = strcspn(env, ":");
        if (len)
            rc = search_directory(&search, env, len);
        env += len;
        if (*env == ':')
            env++;
    }
    if (rc < 0)
        goto done;
    if (search.failure[0]) {
        csgi_loader__error_at(error, &origin, "%s", search.failure);
        rc = CSGI_EINVAL;
        goto done;
    }
    if (!search.handle && is_scheme) {
        csgi_loader__error_at(error, &origin,
                              "URI scheme not known: '%s' (from config, egg, call), nor a "
                              "module %s.so or lib%s.so (tried %s)",
                              module_name, module_name, module_name, search.tried);
        rc = CSGI_ENOTFOUND;
        goto done;
    }
    if (!search.handle) {
        csgi_loader__error_at(
            error, &origin,
            "unknown factory '%s' (%s was expected): no module %s.so or lib%s.so (tried %s)",
            context->factory.text, expected, module_name, module_name, search.tried);
        rc = CSGI_ENOTFOUND;
        goto done;
    }
    csgi_loader__module *m = csgi__calloc(1, sizeof(*m));
    if (!m) {
        rc = CSGI_ENOMEM; /* the handle stays open: see above */
        goto done;
    }
    m->name = module_name;
    m->ini_dir = ini_dir;
    m->handle = search.handle;
    m->next = loader->modules;
    loader->modules = m;
    module_name = ini_dir = NULL;
    *out = search.handle;
    rc = 0;
done:
    if (rc == CSGI_ENOMEM)
        csgi_loader__error_at(error, &origin, "%s", csgi_strerror(rc));
    csgi__free(module_name);
    csgi__free(ini_dir);
    return rc;
}

/* What a section asking for want expects, for errors. */
static const char *expected_kind(const csgi_conf__context *context, csgi_loader__want want)
{
    switch (want) {
    case CSGI_LOADER__WANT_SERVER: return "a server runner";
    case CSGI_LOADER__WANT_FILTER: return "a filter factory";
    case CSGI_LOADER__WANT_APP: break;
    }
    return csgi_loader__wants_composite(context) ? "a composite factory" : "an app factory";
}

/* PasteDeploy's absolute name: letters, then ':'. */
static int is_uri_scheme(const char *name, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!csgi_char__is_alpha((unsigned char)name[i]))
            return 0;
    return len > 0;
}

/* The entry point called name in the table of the module at handle. */
static int find_entry_point(void *handle, const char *module, size_t module_len, const char *name,
                            const csgi_conf__origin *origin, const csgi_entry_point **out,
                            csgi_load_error *error)
{
    dlerror();
    const csgi_entry_point *table = dlsym(handle, CSGI_PLUGIN_ENTRY_POINTS);
    if (!table) {
        csgi_loader__error_at(error, origin,
                              "module '%.*s' exports no %s table declaring its factories (a "
                              "factory's kind must be declared there: see csgi/loader.h)",
                              (int)module_len, module, CSGI_PLUGIN_ENTRY_POINTS);
        return CSGI_ENOTFOUND;
    }
    for (const csgi_entry_point *e = table; e->name; e++) {
        if (strcmp(e->name, name) == 0) {
            *out = e;
            return 0;
        }
    }
    csgi_loader__error_at(error, origin, "module '%.*s' has no entry point '%s' in its %s table",
                          (int)module_len, module, name, CSGI_PLUGIN_ENTRY_POINTS);
    return CSGI_ENOTFOUND;
}

int csgi_loader__lookup_module(csgi_loader *loader, const csgi_conf__context *context,
                               const char *normalised, csgi_loader__want want,
                               csgi_loader__factory *found, const csgi_loader__factory **out,
                               csgi_load_error *error)
{
    *out = NULL;
    const char *module, *name;
    size_t module_len;
    int is_scheme = 0;
    if (strncmp(normalised, "egg:", 4) == 0) {
        module = normalised + 4;
        const char *hash = strchr(module, '#');
        module_len = (size_t)(hash - module);
        name = hash + 1;
    } else {
        int call = strncmp(normalised, "call:", 5) == 0;
        module = normalised + (call ? 5 : 0);
        const char *colon = strchr(module, ':');
        if (!colon)
            return 0;
        module_len = (size_t)(colon - module);
        name = colon + 1;
        /* Only a `use` (or a name) reads as a URI, not a factory key's value. */
        is_scheme = !call && context->protocol == CSGI_CONF__PROTOCOL_NONE &&
                    is_uri_scheme(module, module_len);
    }
    const char *expected = expected_kind(context, want);
    csgi_conf__origin origin = csgi_loader__factory_origin(context);
    void *handle = NULL;
    int rc = open_module(loader, context, module, module_len, expected, is_scheme, &handle, error);
    if (rc != 0)
        return rc;
    const csgi_entry_point *entry = NULL;
    rc = find_entry_point(handle, module, module_len, name, &origin, &entry, error);
    if (rc != 0)
        return rc;
    memset(found, 0, sizeof(*found));
    found->kind = entry->kind;
    switch (entry->kind) {
    case CSGI_FACTORY_APP:
    case CSGI_FACTORY_COMPOSITE: found->app_factory = entry->app_factory; break;
    case CSGI_FACTORY_FILTER:
    case CSGI_FACTORY_FILTER_APP: found->filter_factory = entry->filter_factory; break;
    case CSGI_FACTORY_SERVER: found->server_runner = entry->server_runner; break;
    default:
        csgi_loader__error_at(error, &origin, "entry point '%s' of module '%.*s' has no valid kind",
                              name, (int)module_len, module);
        return CSGI_EINVAL;
    }
    if (!found->app_factory && !found->filter_factory && !found->server_runner) {
        csgi_loader__error_at(error, &origin, "entry point '%s' of module '%.*s' has no factory",
                              name, (int)module_len, module);
        return CSGI_EINVAL;
    }
    *out = found;
    return 0;
}

void csgi_loader__free_modules(csgi_loader *loader)
{
    for (csgi_loader__module_dir *d = loader->module_dirs, *next; d; d = next) {
        next = d->next;
        csgi__free(d->path);
        csgi__free(d);
    }
    /* The handles stay open: applications built from them outlive the
       loader (see above). */
    for (csgi_loader__module *m = loader->modules, *next; m; m = next) {
        next = m->next;
        csgi__free(m->name);
        csgi__free(m->ini_dir);
        csgi__free(m);
    }
    loader->module_dirs = NULL;
    loader->modules = NULL;
}
