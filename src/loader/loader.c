/*
 * The factory resolver: the third layer of the INI loader (csgi/loader.h).
 *
 * loader/conf.h turns a section into a context (kind, factory reference,
 * local and global conf, pipeline items, next, filter-with) without building
 * anything. This file finds the factories those contexts name and calls
 * them, the way PasteDeploy's loadwsgi.py invokes its contexts:
 *
 *   - app and composite sections (and bare references) call their factory;
 *   - a pipeline builds its last item as an app, then wraps it with the
 *     other items, right to left, each resolved as a filter;
 *   - a filter-app builds `next`, then applies its own filter;
 *   - `filter-with = X` wraps what the section built in X; a filter that is
 *     itself filtered-with composes (filter2(filter1(app))).
 *
 * Only what the entry point reaches is built. Every app built is a new
 * reference; a filter takes the app it wraps, so on failure releasing the
 * innermost piece built so far releases everything.
 *
 * (Parameters are "env", not "environ": <unistd.h> declares a global
 * "environ" under _GNU_SOURCE.)
 */
#include "common/alloc.h"
#include "loader/conf.h"
#include "loader/ini.h"
#include "middleware/middleware.h"

#include <csgi/composite.h>
#include <csgi/loader.h>
#include <csgi/server.h>

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The public conf: a view of a conf-layer list, with the loader that keeps
   what csgi_conf_aslist() allocates. Lives on the stack while a factory runs. */
struct csgi_conf {
    const csgi_conf__list *list;
    csgi_loader *loader;
};

typedef struct registration registration;

struct registration {
    registration *next;
    char *reference; /* normalised: "egg:DIST" is stored as "egg:DIST#main" */
    csgi_factory_kind kind;
    csgi_app_factory_fn app_factory;
    csgi_filter_factory_fn filter_factory;
    csgi_server_runner_fn server_runner; /* set for server registrations */
};

/* Memory handed out by csgi_conf_aslist(), freed with the loader. */
typedef struct allocation allocation;

struct allocation {
    allocation *next;
};

/* A directory searched for shared objects (csgi_loader_add_module_path). */
typedef struct module_dir module_dir;

struct module_dir {
    module_dir *next;
    char *path;
};

/* A shared object opened for a factory reference, cached per loader under
   the module name and the directory of the deploy file that named it (the
   same name may find different files beside different files). */
typedef struct module module;

struct module {
    module *next;
    char *name;
    char *ini_dir;
    void *handle;
};

struct csgi_loader {
    csgi_conf__loader *conf;
    registration *registrations;
    module_dir *module_dirs; /* in the order added */
    module *modules;
    csgi_conf__list globals;
    allocation *allocations;
    /* The composite whose factory is running (csgi_loader_get_app resolves
       names in it), or NULL. */
    const csgi_conf__context *composite;
    /* csgi_loader_set_listen's addresses (owned), or none. */
    char **listen;
    size_t listen_count;
    /* While csgi_loader_describe builds: the item being built, or NULL. */
    struct describe_node *describing;
    int stub_unknown;
};

/* ---- errors ------------------------------------------------------------------ */

static void copy_field(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* Record an error unless one is recorded already (first error wins). */
static void error_vset(csgi_load_error *error, const char *file, int line, const char *section,
                       const char *key, const char *format, va_list args)
    __attribute__((format(printf, 6, 0)));

static void error_vset(csgi_load_error *error, const char *file, int line, const char *section,
                       const char *key, const char *format, va_list args)
{
    if (!error || error->text[0])
        return;
    copy_field(error->file, sizeof(error->file), file);
    error->line = line;
    copy_field(error->section, sizeof(error->section), section);
    copy_field(error->key, sizeof(error->key), key);
    vsnprintf(error->text, sizeof(error->text), format, args);
    if (!error->text[0])
        snprintf(error->text, sizeof(error->text), "error");
}

static void error_set(csgi_load_error *error, const char *file, int line, const char *section,
                      const char *key, const char *format, ...)
    __attribute__((format(printf, 6, 7)));

static void error_set(csgi_load_error *error, const char *file, int line, const char *section,
                      const char *key, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    error_vset(error, file, line, section, key, format, args);
    va_end(args);
}

static void error_from_ini(csgi_load_error *error, const csgi_ini__error *ini, int rc)
{
    if (!error || error->text[0])
        return;
    if (ini->text[0])
        error_set(error, ini->file, ini->line, ini->section, ini->key, "%s", ini->text);
    else
        error_set(error, NULL, 0, NULL, NULL, "%s", csgi_strerror(rc));
}

/* An error at the place a value was written. */
static void error_at(csgi_load_error *error, const csgi_conf__origin *origin, const char *format,
                     ...) __attribute__((format(printf, 3, 4)));

static void error_at(csgi_load_error *error, const csgi_conf__origin *origin, const char *format,
                     ...)
{
    va_list args;
    va_start(args, format);
    error_vset(error, origin->file, origin->line, origin->section, origin->key, format, args);
    va_end(args);
}

size_t csgi_load_error_format(const csgi_load_error *error, char *buf, size_t size)
{
    if (!error) {
        if (buf && size)
            buf[0] = '\0';
        return 0;
    }
    char location[32] = "";
    if (error->line > 0)
        snprintf(location, sizeof(location), ":%d", error->line);
    int where = error->file[0] || location[0];
    int in_section = error->section[0] != '\0';
    int at_key = error->key[0] != '\0';
    int n = snprintf(buf, buf ? size : 0, "%s%s%s%s%s%s%s%s%s", error->file, location,
                     where ? ": " : "", in_section ? "[" : "", error->section,
                     in_section ? "] " : "", error->key, at_key ? ": " : "", error->text);
    return n < 0 ? 0 : (size_t)n;
}

/* ---- conf ----------------------------------------------------------------------- */

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
    const csgi_conf__entry *entry = conf->list->first;
    for (size_t i = 0; entry && i < index; i++)
        entry = entry->next;
    if (!entry)
        return 0;
    if (name)
        *name = entry->name;
    if (value)
        *value = entry->value;
    return 1;
}

/* An error about a conf entry, at the place it was written. */
static void error_at_entry(csgi_load_error *error, const csgi_conf__entry *entry,
                           const char *format, ...) __attribute__((format(printf, 3, 4)));

static void error_at_entry(csgi_load_error *error, const csgi_conf__entry *entry,
                           const char *format, ...)
{
    va_list args;
    va_start(args, format);
    error_vset(error, entry->origin.file, entry->origin.line, entry->origin.section,
               entry->origin.key ? entry->origin.key : entry->name, format, args);
    va_end(args);
}

int csgi_conf_asbool(const csgi_conf *conf, const char *name, int fallback, int *out,
                     csgi_load_error *error)
{
    static const char *const truths[] = {"true", "yes", "on", "y", "t", "1"};
    static const char *const lies[] = {"false", "no", "off", "n", "f", "0"};
    if (!conf || !name || !out)
        return CSGI_EINVAL;
    const csgi_conf__entry *entry = csgi_conf__list_find(conf->list, name);
    if (!entry) {
        *out = fallback;
        return 0;
    }
    /* PasteDeploy strips the value first. */
    const char *value = entry->value;
    while (*value == ' ' || *value == '\t' || *value == '\n')
        value++;
    size_t len = strlen(value);
    while (len && (value[len - 1] == ' ' || value[len - 1] == '\t' || value[len - 1] == '\n'))
        len--;
    for (size_t i = 0; i < sizeof(truths) / sizeof(truths[0]); i++) {
        if (strlen(truths[i]) == len && strncasecmp(value, truths[i], len) == 0) {
            *out = 1;
            return 0;
        }
        if (strlen(lies[i]) == len && strncasecmp(value, lies[i], len) == 0) {
            *out = 0;
            return 0;
        }
    }
    error_at_entry(error, entry, "not a boolean: '%s'", entry->value);
    return CSGI_EINVAL;
}

int csgi_conf_asint(const csgi_conf *conf, const char *name, long long fallback, long long *out,
                    csgi_load_error *error)
{
    if (!conf || !name || !out)
        return CSGI_EINVAL;
    const csgi_conf__entry *entry = csgi_conf__list_find(conf->list, name);
    if (!entry) {
        *out = fallback;
        return 0;
    }
    const char *value = entry->value;
    while (*value == ' ' || *value == '\t' || *value == '\n')
        value++;
    const char *digits = value + (*value == '+' || *value == '-');
    if (*digits < '0' || *digits > '9') {
        error_at_entry(error, entry, "not an integer: '%s'", entry->value);
        return CSGI_EINVAL;
    }
    char *end = NULL;
    errno = 0;
    long long parsed = strtoll(value, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\n')
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
    size_t header = sizeof(allocation);
    header = (header + sizeof(void *) - 1) / sizeof(void *) * sizeof(void *);
    allocation *block = csgi__malloc(header + (n + 1) * sizeof(char *) + len + 1);
    if (!block) {
        error_set(error, NULL, 0, NULL, name, "%s", csgi_strerror(CSGI_ENOMEM));
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

/* ---- registry --------------------------------------------------------------------- */

/* "egg:DIST" -> "egg:DIST#main"; anything else as it is. Owned (csgi__free). */
static char *normalise(const char *reference)
{
    size_t len = strlen(reference);
    int add = strncmp(reference, "egg:", 4) == 0 && !strchr(reference, '#');
    char *copy = csgi__malloc(len + (add ? 5 : 0) + 1);
    if (!copy)
        return NULL;
    memcpy(copy, reference, len + 1);
    if (add)
        memcpy(copy + len, "#main", 6);
    return copy;
}

static registration *find_registration(csgi_loader *loader, const char *normalised)
{
    for (registration *r = loader->registrations; r; r = r->next)
        if (strcmp(r->reference, normalised) == 0)
            return r;
    return NULL;
}

static int add_registration(csgi_loader *loader, const char *reference, csgi_factory_kind kind,
                            csgi_app_factory_fn app_factory, csgi_filter_factory_fn filter_factory)
{
    if (!reference[0])
        return CSGI_EINVAL;
    char *normalised = normalise(reference);
    if (!normalised)
        return CSGI_ENOMEM;
    if (find_registration(loader, normalised)) {
        csgi__free(normalised);
        return CSGI_EINVAL;
    }
    registration *r = csgi__calloc(1, sizeof(*r));
    if (!r) {
        csgi__free(normalised);
        return CSGI_ENOMEM;
    }
    r->reference = normalised;
    r->kind = kind;
    r->app_factory = app_factory;
    r->filter_factory = filter_factory;
    r->next = loader->registrations;
    loader->registrations = r;
    return 0;
}

int csgi_loader_register_app(csgi_loader *loader, const char *reference, csgi_factory_kind kind,
                             csgi_app_factory_fn factory)
{
    if (!loader || !reference || !factory ||
        (kind != CSGI_FACTORY_APP && kind != CSGI_FACTORY_COMPOSITE))
        return CSGI_EINVAL;
    return add_registration(loader, reference, kind, factory, NULL);
}

int csgi_loader_register_filter(csgi_loader *loader, const char *reference, csgi_factory_kind kind,
                                csgi_filter_factory_fn factory)
{
    if (!loader || !reference || !factory ||
        (kind != CSGI_FACTORY_FILTER && kind != CSGI_FACTORY_FILTER_APP))
        return CSGI_EINVAL;
    return add_registration(loader, reference, kind, NULL, factory);
}

int csgi_loader_register_server(csgi_loader *loader, const char *reference,
                                csgi_server_runner_fn runner)
{
    if (!loader || !reference || !runner)
        return CSGI_EINVAL;
    int rc = add_registration(loader, reference, CSGI_FACTORY_APP, NULL, NULL);
    if (rc == 0)
        loader->registrations->server_runner = runner;
    return rc;
}

static void free_listen(csgi_loader *loader)
{
    for (size_t i = 0; i < loader->listen_count; i++)
        csgi__free(loader->listen[i]);
    csgi__free(loader->listen);
    loader->listen = NULL;
    loader->listen_count = 0;
}

int csgi_loader_set_listen(csgi_loader *loader, const char *const *addresses, size_t count)
{
    if (!loader || (count && !addresses))
        return CSGI_EINVAL;
    for (size_t i = 0; i < count; i++)
        if (!addresses[i] || !addresses[i][0])
            return CSGI_EINVAL;
    char **copy = count ? csgi__calloc(count, sizeof(*copy)) : NULL;
    if (count && !copy)
        return CSGI_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(addresses[i]);
        copy[i] = csgi__malloc(len + 1);
        if (!copy[i]) {
            for (size_t j = 0; j < i; j++)
                csgi__free(copy[j]);
            csgi__free(copy);
            return CSGI_ENOMEM;
        }
        memcpy(copy[i], addresses[i], len + 1);
    }
    free_listen(loader);
    loader->listen = copy;
    loader->listen_count = count;
    return 0;
}

/* ---- built-in composites ------------------------------------------------------------ */

/* Fill the location of an error a nested call left without one. */
static void error_locate_entry(csgi_load_error *error, const csgi_conf__entry *entry)
{
    if (error && !error->file[0] && entry->origin.file) {
        copy_field(error->file, sizeof(error->file), entry->origin.file);
        error->line = entry->origin.line;
        copy_field(error->section, sizeof(error->section), entry->origin.section);
        copy_field(error->key, sizeof(error->key), entry->name);
    }
}

/* Paste's urlmap_factory: every key but not_found_app and debug is a route. */
static int urlmap_factory(csgi_loader *loader, const csgi_conf *global_conf,
                          const csgi_conf *local_conf, csgi_app **out, csgi_load_error *error)
{
    csgi_urlmap *map = NULL;
    int rc = csgi_urlmap_new(&map);
    if (rc != 0)
        return rc;
    int debug = 0;
    rc = csgi_conf_asbool(local_conf, "debug", 0, &debug, error);
    if (rc != 0)
        goto fail;
    csgi_urlmap_set_debug(map, debug);
    const char *not_found = csgi_conf_get(local_conf, "not_found_app");
    if (!not_found)
        not_found = csgi_conf_get(global_conf, "not_found_app");
    if (not_found) {
        csgi_app *app = NULL;
        rc = csgi_loader_get_app(loader, not_found, &app, error);
        if (rc != 0)
            goto fail;
        csgi_urlmap_set_not_found(map, app);
    }
    for (const csgi_conf__entry *e = local_conf->list->first; e; e = e->next) {
        if (strcmp(e->name, "not_found_app") == 0 || strcmp(e->name, "debug") == 0)
            continue;
        csgi_app *app = NULL;
        rc = csgi_loader_get_app(loader, e->value, &app, error);
        if (rc != 0) {
            error_locate_entry(error, e);
            goto fail;
        }
        rc = csgi_urlmap_add(map, e->name, app);
        if (rc != 0) {
            error_at_entry(error, e, "%s",
                           rc == CSGI_EINVAL ? "malformed or repeated urlmap key"
                                             : csgi_strerror(rc));
            goto fail;
        }
    }
    return csgi_urlmap_app(out, &map);
fail:
    csgi_urlmap_free(map);
    return rc;
}

typedef struct numbered_app {
    long long number;
    csgi_app *app;
} numbered_app;

static int compare_numbered(const void *a, const void *b)
{
    const numbered_app *x = a, *y = b;
    return (x->number > y->number) - (x->number < y->number);
}

/* Paste's make_cascade: keys app1, app2, ... (sorted by number) and catch. */
static int cascade_factory(csgi_loader *loader, const csgi_conf *global_conf,
                           const csgi_conf *local_conf, csgi_app **out, csgi_load_error *error)
{
    (void)global_conf;
    size_t capacity = csgi_conf_count(local_conf);
    numbered_app *apps = csgi__calloc(capacity ? capacity : 1, sizeof(*apps));
    csgi_app **plain = csgi__calloc(capacity ? capacity : 1, sizeof(*plain));
    int *catches = NULL;
    size_t count = 0, catch_count = 0;
    int rc = 0;
    if (!apps || !plain) {
        rc = CSGI_ENOMEM;
        goto done;
    }
    for (const csgi_conf__entry *e = local_conf->list->first; e; e = e->next) {
        if (strcmp(e->name, "catch") == 0)
            continue;
        if (strncmp(e->name, "app", 3) != 0) {
            error_at_entry(error, e, "bad cascade key (=%s): all keys must start with 'app'",
                           e->value);
            rc = CSGI_EINVAL;
            goto done;
        }
        const char *digits = e->name + 3;
        char *end = NULL;
        long long number = strtoll(digits, &end, 10);
        if (!*digits || *end) {
            error_at_entry(error, e, "%s", "bad name for an application key (number expected)");
            rc = CSGI_EINVAL;
            goto done;
        }
        csgi_app *app = NULL;
        rc = csgi_loader_get_app(loader, e->value, &app, error);
        if (rc != 0) {
            error_locate_entry(error, e);
            goto done;
        }
        apps[count].number = number;
        apps[count].app = app;
        count++;
    }
    if (count == 0) {
        error_set(error, NULL, 0, NULL, NULL, "a cascade needs at least one app (app1 = ...)");
        rc = CSGI_EINVAL;
        goto done;
    }
    qsort(apps, count, sizeof(*apps), compare_numbered);
    const char *const *items = NULL;
    rc = csgi_conf_aslist(local_conf, "catch", &items, &catch_count, error);
    if (rc != 0)
        goto done;
    if (catch_count) {
        catches = csgi__calloc(catch_count, sizeof(*catches));
        if (!catches) {
            rc = CSGI_ENOMEM;
            goto done;
        }
        for (size_t i = 0; i < catch_count; i++) {
            char *end = NULL;
            long status = strtol(items[i], &end, 10);
            if (*end || status < 100 || status > 999) {
                const csgi_conf__entry *e = csgi_conf__list_find(local_conf->list, "catch");
                error_at_entry(error, e, "not a status code: '%s'", items[i]);
                rc = CSGI_EINVAL;
                goto done;
            }
            catches[i] = (int)status;
        }
    }
    for (size_t i = 0; i < count; i++)
        plain[i] = apps[i].app;
    rc = csgi_cascade_new(out, plain, count, catches, catch_count);
    count = 0; /* taken, also on failure */
done:
    for (size_t i = 0; i < count; i++)
        csgi_app_free(apps[i].app);
    csgi__free(apps);
    csgi__free(plain);
    csgi__free(catches);
    return rc;
}

static const struct {
    const char *reference;
    csgi_app_factory_fn factory;
} builtins[] = {
    {"egg:csgi#urlmap", urlmap_factory},
    {"egg:Paste#urlmap", urlmap_factory},
    {"egg:csgi#cascade", cascade_factory},
    {"egg:Paste#cascade", cascade_factory},
};

/* The bundled middleware (src/middleware/): filter factories. */
static const struct {
    const char *reference;
    csgi_filter_factory_fn factory;
} builtin_filters[] = {
    {"egg:csgi#lint", csgi_lint__filter_factory},
    {"egg:Paste#lint", csgi_lint__filter_factory},
};

/* ---- built-in server: egg:csgi#http ---------------------------------------------------- */

/* An unsigned setting within [min, max], multiplied by scale (seconds to
   milliseconds); *out unchanged when the key is absent. */
static int conf_unsigned(const csgi_conf *conf, const char *name, long long min, long long max,
                         long long scale, unsigned long long *out, csgi_load_error *error)
{
    const csgi_conf__entry *entry = csgi_conf__list_find(conf->list, name);
    if (!entry)
        return 0;
    long long value = 0;
    int rc = csgi_conf_asint(conf, name, 0, &value, error);
    if (rc != 0)
        return rc;
    if (value < min || value > max) {
        error_at_entry(error, entry, "%lld is out of range (%lld to %lld)", value, min, max);
        return CSGI_EINVAL;
    }
    *out = (unsigned long long)value * (unsigned long long)scale;
    return 0;
}

/* The server being run by http_runner, for the signal handler. */
static csgi_server *volatile running_server;

static void on_stop_signal(int signal_number)
{
    (void)signal_number;
    csgi_server *server = running_server;
    if (server)
        csgi_server_stop(server, 10000); /* documented safe from a signal handler */
}

/* Print "serving on http://HOST:PORT/" for listener index of address. */
static void print_listener(const csgi_server *server, size_t index, const char *address)
{
    if (strncmp(address, "unix:", 5) == 0) {
        printf("serving on %s\n", address);
        return;
    }
    const char *colon = strrchr(address, ':');
    int host_len = colon ? (int)(colon - address) : (int)strlen(address);
    printf("serving on http://%.*s:%d/\n", host_len, address, csgi_server_port(server, index));
}

static int http_runner(csgi_loader *loader, const csgi_conf *global_conf,
                       const csgi_conf *local_conf, csgi_app *app, csgi_load_error *error)
{
    (void)global_conf;
    csgi_server_options options;
    csgi_server_options_init(&options);
    unsigned long long threads = 0, max_connections = 0, max_body = 0, header_timeout = 0,
                       body_timeout = 0, keepalive_timeout = 0, send_timeout = 0, max_keepalive = 0,
                       port = 8080;
    int verbose = 0;
    int rc = conf_unsigned(local_conf, "threads", 1, 1024, 1, &threads, error);
    if (rc == 0)
        rc = conf_unsigned(local_conf, "max_connections", 1, UINT_MAX, 1, &max_connections, error);
    if (rc == 0)
        rc = conf_unsigned(local_conf, "max_body", 0, LLONG_MAX, 1, &max_body, error);
    if (rc == 0)
        rc = conf_unsigned(local_conf, "header_timeout", 1, UINT_MAX / 1000, 1000, &header_timeout,
                           error);
    if (rc == 0)
        rc = conf_unsigned(local_conf, "body_timeout", 1, UINT_MAX / 1000, 1000, &body_timeout,
                           error);
    if (rc == 0)
        rc = conf_unsigned(local_conf, "keepalive_timeout", 1, UINT_MAX / 1000, 1000,
                           &keepalive_timeout, error);
    if (rc == 0)
        rc = conf_unsigned(local_conf, "send_timeout", 1, UINT_MAX / 1000, 1000, &send_timeout,
                           error);
    if (rc == 0)
        rc = conf_unsigned(local_conf, "max_keepalive_requests", 1, UINT_MAX, 1, &max_keepalive,
                           error);
    if (rc == 0)
        rc = conf_unsigned(local_conf, "port", 0, 65535, 1, &port, error);
    if (rc == 0)
        rc = csgi_conf_asbool(local_conf, "verbose", 0, &verbose, error);
    if (rc != 0) {
        csgi_app_free(app);
        return rc;
    }
    options.threads = (unsigned)threads;
    options.max_connections = (unsigned)max_connections;
    if (csgi_conf__list_find(local_conf->list, "max_body"))
        options.max_body = max_body; /* 0 keeps the default */
    options.header_timeout_ms = (unsigned)header_timeout;
    options.body_timeout_ms = (unsigned)body_timeout;
    options.keepalive_timeout_ms = (unsigned)keepalive_timeout;
    options.send_timeout_ms = (unsigned)send_timeout;
    options.max_keepalive_requests = (unsigned)max_keepalive;
    options.server_header = csgi_conf_get(local_conf, "server_header");
    options.verbose = verbose;

    /* The addresses: csgi_loader_set_listen's, else host:port. */
    const char *host = csgi_conf_get(local_conf, "host");
    if (!host || !host[0])
        host = "127.0.0.1";
    char own[300];
    int v6 = strchr(host, ':') != NULL && host[0] != '[';
    snprintf(own, sizeof(own), "%s%s%s:%llu", v6 ? "[" : "", host, v6 ? "]" : "", port);
    const char *own_list[1] = {own};
    const char *const *addresses =
        loader->listen_count ? (const char *const *)loader->listen : own_list;
    size_t count = loader->listen_count ? loader->listen_count : 1;

    if (running_server) {
        csgi_app_free(app);
        error_set(error, NULL, 0, NULL, NULL, "a server is already running in this process");
        return CSGI_ESTATE;
    }
    csgi_server *server = NULL;
    rc = csgi_server_new(&server, app, &options, NULL);
    if (rc != 0) {
        error_set(error, NULL, 0, NULL, NULL, "cannot create the server: %s", csgi_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < count && rc == 0; i++) {
        rc = csgi_server_listen(server, addresses[i]);
        if (rc != 0)
            error_set(error, NULL, 0, NULL, NULL, "cannot listen on %s: %s", addresses[i],
                      csgi_strerror(rc));
    }
    if (rc == 0 && (rc = csgi_server_start(server)) != 0)
        error_set(error, NULL, 0, NULL, NULL, "cannot start the server: %s", csgi_strerror(rc));
    if (rc != 0) {
        csgi_server_free(server);
        return rc;
    }
    for (size_t i = 0; i < count; i++)
        print_listener(server, i, addresses[i]);
    fflush(stdout);

    /* Stop gracefully on SIGINT and SIGTERM, then put the old handlers back. */
    struct sigaction action, old_int, old_term;
    memset(&action, 0, sizeof(action));
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    running_server = server;
    sigaction(SIGINT, &action, &old_int);
    sigaction(SIGTERM, &action, &old_term);
    rc = csgi_server_run(server);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    running_server = NULL;
    if (rc != 0)
        error_set(error, NULL, 0, NULL, NULL, "the server failed: %s", csgi_strerror(rc));
    csgi_server_free(server);
    return rc;
}

static const struct {
    const char *reference;
    csgi_server_runner_fn runner;
} builtin_servers[] = {
    {"egg:csgi#http", http_runner},
    {"egg:Paste#http", http_runner},
};

/* ---- describing ------------------------------------------------------------------------ */

/*
 * csgi_loader_describe records each item built as a node of a tree: what a
 * section builds while its factory runs (a pipeline's items, a composite's
 * apps, a filter-app's next) are its children. Filters wrap what was built
 * before them, so a filter goes in front of the item it wraps: each node
 * remembers where the chain being wrapped starts (chain_start), and a filter
 * is inserted there. The text lists the tree outermost first.
 */
struct describe_node {
    struct describe_node **children;
    size_t count;
    size_t capacity;
    size_t chain_start;
    const csgi_conf__context *context;
    int stub;
};

typedef struct describe_node describe_node;

static void describe_free(describe_node *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->count; i++)
        describe_free(node->children[i]);
    csgi__free(node->children);
    csgi__free(node);
}

/* While describing, add a node for context under the current one and make it
   current: at the end (an app: it starts a chain) or, wrapping, in front of
   the current chain (a filter). The caller restores loader->describing. */
static int describe_enter(csgi_loader *loader, const csgi_conf__context *context, int wrapping)
{
    describe_node *parent = loader->describing;
    if (!parent)
        return 0;
    if (parent->count == parent->capacity) {
        size_t capacity = parent->capacity ? parent->capacity * 2 : 4;
        describe_node **grown = csgi__realloc(parent->children, capacity * sizeof(*grown));
        if (!grown)
            return CSGI_ENOMEM;
        parent->children = grown;
        parent->capacity = capacity;
    }
    describe_node *node = csgi__calloc(1, sizeof(*node));
    if (!node)
        return CSGI_ENOMEM;
    node->context = context;
    size_t at = wrapping ? parent->chain_start : parent->count;
    if (at > parent->count)
        at = parent->count;
    memmove(parent->children + at + 1, parent->children + at,
            (parent->count - at) * sizeof(*parent->children));
    parent->children[at] = node;
    parent->count++;
    parent->chain_start = at;
    loader->describing = node;
    return 0;
}

/* A growing text for the description (malloc'd: the caller free()s it). */
typedef struct describe_text {
    char *data;
    size_t len;
    size_t capacity;
    int failed;
} describe_text;

static void text_append(describe_text *text, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void text_append(describe_text *text, const char *format, ...)
{
    if (text->failed)
        return;
    va_list args;
    va_start(args, format);
    va_list copy;
    va_copy(copy, args);
    int n = vsnprintf(NULL, 0, format, copy);
    va_end(copy);
    if (n < 0) {
        text->failed = 1;
        va_end(args);
        return;
    }
    if (text->len + (size_t)n + 1 > text->capacity) {
        size_t capacity = text->capacity ? text->capacity : 256;
        while (text->len + (size_t)n + 1 > capacity)
            capacity *= 2;
        char *grown = realloc(text->data, capacity);
        if (!grown) {
            text->failed = 1;
            va_end(args);
            return;
        }
        text->data = grown;
        text->capacity = capacity;
    }
    vsnprintf(text->data + text->len, text->capacity - text->len, format, args);
    text->len += (size_t)n;
    va_end(args);
}

static void describe_render(const describe_node *node, int depth, describe_text *text)
{
    const csgi_conf__context *context = node->context;
    text_append(text, "%*s", depth * 2, "");
    if (context->section)
        text_append(text, "[%s] %s", context->section, csgi_conf__kind_name(context->kind));
    else
        text_append(text, "%s", csgi_conf__kind_name(context->kind));
    if (context->factory.text) {
        const char *protocol = csgi_conf__protocol_name(context->protocol);
        text_append(text, " %s%s%s", protocol ? protocol : "use", " = ", context->factory.text);
    }
    if (context->kind == CSGI_CONF__KIND_PIPELINE) {
        text_append(text, " pipeline =");
        for (size_t i = 0; i < context->pipeline_count; i++)
            text_append(text, " %s", context->pipeline[i].text);
    }
    if (context->local_conf.count) {
        text_append(text, " (");
        for (const csgi_conf__entry *e = context->local_conf.first; e; e = e->next) {
            text_append(text, "%s%s = ", e == context->local_conf.first ? "" : ", ", e->name);
            /* One line per item: a multi-line value shows its newlines as \n. */
            for (const char *v = e->value; *v;) {
                size_t run = strcspn(v, "\n");
                text_append(text, "%.*s", (int)run, v);
                v += run;
                if (*v == '\n') {
                    text_append(text, "\\n");
                    v++;
                }
            }
        }
        text_append(text, ")");
    }
    if (node->stub)
        text_append(text, " (stub: unknown factory)");
    text_append(text, "\n");
    for (size_t i = 0; i < node->count; i++)
        describe_render(node->children[i], depth + 1, text);
}

/* The placeholder --stub-unknown puts where a factory is unknown: 501. */
static csgi_body *placeholder_call(void *state, csgi_environ *env,
                                   csgi_start_response *start_response)
{
    const char *message = state;
    csgi_header headers[1] = {{"Content-Type", 12, "text/plain", 10}};
    if (csgi_start_response_call(start_response, "501 Not Implemented", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_bytes(env, message, strlen(message));
}

static void placeholder_destroy(void *state)
{
    csgi__free(state);
}

static const csgi_app_type placeholder_type = {"csgi.placeholder", placeholder_call,
                                               placeholder_destroy};

/* With stub_unknown while describing, an unknown factory (rc) becomes a
   placeholder. Returns 1 with *out set (or the error in *rc) when it did. */
static int stub_unknown(csgi_loader *loader, const csgi_conf__context *context, int *rc,
                        csgi_app **out, csgi_load_error *error)
{
    if (!loader->stub_unknown || !loader->describing || *rc != CSGI_ENOTFOUND)
        return 0;
    if (error)
        memset(error, 0, sizeof(*error));
    loader->describing->stub = 1;
    if (!out) {
        *rc = 0;
        return 1;
    }
    const char *reference = context->factory.text ? context->factory.text : "?";
    size_t len = strlen("placeholder for ") + strlen(reference);
    char *message = csgi__malloc(len + 1);
    if (!message) {
        *rc = CSGI_ENOMEM;
        error_set(error, NULL, 0, NULL, NULL, "%s", csgi_strerror(*rc));
        return 1;
    }
    snprintf(message, len + 1, "placeholder for %s", reference);
    *rc = csgi_app_new(out, &placeholder_type, message);
    if (*rc != 0)
        error_set(error, NULL, 0, NULL, NULL, "%s", csgi_strerror(*rc));
    return 1;
}

/* ---- building ------------------------------------------------------------------ */

static int build_app(csgi_loader *loader, const csgi_conf__context *context, csgi_app **out,
                     csgi_load_error *error);
static int apply_filter(csgi_loader *loader, const csgi_conf__context *filter, csgi_app *next,
                        csgi_app **out, csgi_load_error *error);

static int resolve_child(csgi_loader *loader, const csgi_conf__context *parent,
                         csgi_conf__type type, const csgi_conf__reference *reference,
                         const csgi_conf__context **out, csgi_load_error *error)
{
    csgi_ini__error ini;
    csgi_ini__error_clear(&ini);
    int rc = csgi_conf__resolve_child(loader->conf, parent, type, reference, out, &ini);
    if (rc != 0)
        error_from_ini(error, &ini, rc);
    return rc;
}

/* A factory failed: give its error the place of the section if it left it out. */
static void error_locate(csgi_load_error *error, const csgi_conf__context *context, int rc)
{
    if (!error)
        return;
    if (!error->text[0])
        snprintf(error->text, sizeof(error->text), "%s", csgi_strerror(rc));
    if (!error->file[0]) {
        const char *file =
            context->factory.origin.file ? context->factory.origin.file : context->file;
        int line = context->factory.origin.file ? context->factory.origin.line : context->line;
        copy_field(error->file, sizeof(error->file), file);
        if (error->line == 0)
            error->line = line;
    }
    if (!error->section[0]) {
        const char *section = context->section ? context->section : context->factory.origin.section;
        copy_field(error->section, sizeof(error->section), section);
    }
}

static int unknown_factory(const csgi_conf__context *context, const char *expected,
                           const char *found, csgi_load_error *error)
{
    const csgi_conf__origin *at = &context->factory.origin;
    csgi_conf__origin origin = *at;
    if (!origin.file) {
        origin.file = context->file;
        origin.line = context->line;
        origin.section = context->section;
    }
    if (found)
        error_at(error, &origin, "'%s' is a filter factory (%s was expected)",
                 context->factory.text, expected);
    else
        error_at(error, &origin, "unknown factory '%s' (%s was expected)", context->factory.text,
                 expected);
    return found ? CSGI_EINVAL : CSGI_ENOTFOUND;
}

/* Whether the context asks for a composite: its section, its factory key, or
   (through `use`) the section that wrote the factory reference. */
static int wants_composite(const csgi_conf__context *context)
{
    return context->kind == CSGI_CONF__KIND_COMPOSITE ||
           context->factory_kind == CSGI_CONF__KIND_COMPOSITE ||
           context->protocol == CSGI_CONF__PROTOCOL_COMPOSITE_FACTORY ||
           context->protocol == CSGI_CONF__PROTOCOL_COMPOSIT_FACTORY;
}

/* App and composite factories share a signature: a factory registered as a
   composite, or called for a composite, may build named apps. */
static int is_composite(const csgi_conf__context *context, const registration *r)
{
    return r->kind == CSGI_FACTORY_COMPOSITE || wants_composite(context);
}

/* ---- shared objects ------------------------------------------------------------------ */

/*
 * A reference no registration or built-in answers may name a shared object:
 * "call:MODULE:SYMBOL" and "MODULE:SYMBOL" load MODULE.so (else
 * libMODULE.so) and take SYMBOL, a factory of the kind the section asks
 * for; "egg:DIST#NAME" loads DIST.so (else libDIST.so) and looks NAME up in
 * its csgi_plugin_entry_points table. The directories searched, in order:
 * the one of the deploy file that wrote the reference, those given to
 * csgi_loader_add_module_path, those of CSGI_MODULE_PATH.
 *
 * Handles are cached per loader and never closed: every application built
 * from a module runs its code, and applications outlive the loader that
 * built them (csgi_loader_free leaves them running), so no point before
 * process exit is safe for dlclose. dlopen counts references, so a module
 * opened by several loaders is mapped once.
 */

/* dlsym hands back a data pointer; POSIX guarantees it converts to a
   function pointer of the same size. */
_Static_assert(sizeof(void *) == sizeof(csgi_app_factory_fn) &&
                   sizeof(void *) == sizeof(csgi_filter_factory_fn),
               "dlsym results must convert to function pointers");

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
    module_dir *dir = csgi__calloc(1, sizeof(*dir));
    if (!dir)
        return CSGI_ENOMEM;
    dir->path = copy_text(directory, strlen(directory));
    if (!dir->path) {
        csgi__free(dir);
        return CSGI_ENOMEM;
    }
    module_dir **tail = &loader->module_dirs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = dir;
    return 0;
}

/* Where the factory reference of context was written (for errors). */
static csgi_conf__origin factory_origin(const csgi_conf__context *context)
{
    csgi_conf__origin origin = context->factory.origin;
    if (!origin.file) {
        origin.file = context->file;
        origin.line = context->line;
        origin.section = context->section;
    }
    return origin;
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
                       size_t name_len, const char *expected, void **out, csgi_load_error *error)
{
    *out = NULL;
    csgi_conf__origin origin = factory_origin(context);
    char *module_name = copy_text(name, name_len);
    char *ini_dir = deploy_directory(context);
    int rc = 0;
    if (!module_name || !ini_dir) {
        rc = CSGI_ENOMEM;
        goto done;
    }
    if (!module_name[0] || strchr(module_name, '/')) {
        error_at(error, &origin, "unknown factory '%s' (%s was expected): bad module name '%s'",
                 context->factory.text, expected, module_name);
        rc = CSGI_ENOTFOUND;
        goto done;
    }
    for (module *m = loader->modules; m; m = m->next) {
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
    for (module_dir *d = loader->module_dirs; rc == 0 && d; d = d->next)
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
        error_at(error, &origin, "%s", search.failure);
        rc = CSGI_EINVAL;
        goto done;
    }
    if (!search.handle) {
        error_at(error, &origin,
                 "unknown factory '%s' (%s was expected): no module %s.so or lib%s.so (tried %s)",
                 context->factory.text, expected, module_name, module_name, search.tried);
        rc = CSGI_ENOTFOUND;
        goto done;
    }
    module *m = csgi__calloc(1, sizeof(*m));
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
        error_at(error, &origin, "%s", csgi_strerror(rc));
    csgi__free(module_name);
    csgi__free(ini_dir);
    return rc;
}

static void *find_symbol(void *handle, const char *symbol)
{
    dlerror();
    return dlsym(handle, symbol);
}

/* The factory of a shared object a reference names, or *out NULL when the
   reference names none (no "egg:", "call:" or "MODULE:SYMBOL" form). */
static int lookup_module(csgi_loader *loader, const csgi_conf__context *context,
                         const char *normalised, int want_filter, registration *found,
                         const registration **out, csgi_load_error *error)
{
    const char *expected = want_filter == 2           ? "a server runner"
                           : want_filter              ? "a filter factory"
                           : wants_composite(context) ? "a composite factory"
                                                      : "an app factory";
    csgi_conf__origin origin = factory_origin(context);
    memset(found, 0, sizeof(*found));
    void *handle = NULL;
    int rc;
    if (strncmp(normalised, "egg:", 4) == 0) {
        const char *dist = normalised + 4;
        const char *hash = strchr(dist, '#');
        rc = open_module(loader, context, dist, (size_t)(hash - dist), expected, &handle, error);
        if (rc != 0)
            return rc;
        const csgi_entry_point *table = find_symbol(handle, CSGI_PLUGIN_ENTRY_POINTS);
        if (!table) {
            error_at(error, &origin, "module '%.*s' exports no %s table", (int)(hash - dist), dist,
                     CSGI_PLUGIN_ENTRY_POINTS);
            return CSGI_ENOTFOUND;
        }
        for (const csgi_entry_point *e = table; e->name; e++) {
            if (strcmp(e->name, hash + 1) != 0)
                continue;
            if (want_filter == 2) {
                error_at(error, &origin, "entry point '%s' of module '%.*s' is not %s", hash + 1,
                         (int)(hash - dist), dist, expected);
                return CSGI_EINVAL;
            }
            found->kind = e->kind;
            if (e->kind == CSGI_FACTORY_APP || e->kind == CSGI_FACTORY_COMPOSITE)
                found->app_factory = e->app_factory;
            else
                found->filter_factory = e->filter_factory;
            if (!found->app_factory && !found->filter_factory) {
                error_at(error, &origin, "entry point '%s' of module '%.*s' has no factory",
                         hash + 1, (int)(hash - dist), dist);
                return CSGI_EINVAL;
            }
            *out = found;
            return 0;
        }
        error_at(error, &origin, "module '%.*s' has no entry point '%s' in its %s table",
                 (int)(hash - dist), dist, hash + 1, CSGI_PLUGIN_ENTRY_POINTS);
        return CSGI_ENOTFOUND;
    }
    const char *module_ref = normalised;
    if (strncmp(module_ref, "call:", 5) == 0)
        module_ref += 5;
    const char *colon = strchr(module_ref, ':');
    if (!colon)
        return 0;
    const char *symbol_name = colon + 1;
    rc = open_module(loader, context, module_ref, (size_t)(colon - module_ref), expected, &handle,
                     error);
    if (rc != 0)
        return rc;
    void *symbol = symbol_name[0] ? find_symbol(handle, symbol_name) : NULL;
    if (!symbol) {
        error_at(error, &origin, "module '%.*s' has no symbol '%s' (%s was expected)",
                 (int)(colon - module_ref), module_ref, symbol_name, expected);
        return CSGI_ENOTFOUND;
    }
    if (want_filter == 2) {
        _Static_assert(sizeof(void *) == sizeof(csgi_server_runner_fn),
                       "dlsym results must convert to function pointers");
        memcpy(&found->server_runner, &symbol, sizeof(symbol));
    } else if (want_filter) {
        found->kind = context->kind == CSGI_CONF__KIND_FILTER_APP ? CSGI_FACTORY_FILTER_APP
                                                                  : CSGI_FACTORY_FILTER;
        memcpy(&found->filter_factory, &symbol, sizeof(symbol));
    } else {
        found->kind = wants_composite(context) ? CSGI_FACTORY_COMPOSITE : CSGI_FACTORY_APP;
        memcpy(&found->app_factory, &symbol, sizeof(symbol));
    }
    *out = found;
    return 0;
}

/* The factory a reference names (want_filter: 0 app, 1 filter, 2 server
   runner): registered, then built in, then from a shared object. *out NULL
   if the reference names none; an error (filled) when a shared object or
   its symbol is missing. */
static int lookup(csgi_loader *loader, const csgi_conf__context *context, int want_filter,
                  registration *builtin, const registration **out, csgi_load_error *error)
{
    *out = NULL;
    char *normalised = normalise(context->factory.text);
    if (!normalised)
        return CSGI_ENOMEM;
    const registration *found = find_registration(loader, normalised);
    if (!found && want_filter == 2) {
        for (size_t i = 0; i < sizeof(builtin_servers) / sizeof(builtin_servers[0]); i++) {
            if (strcmp(builtin_servers[i].reference, normalised) == 0) {
                memset(builtin, 0, sizeof(*builtin));
                builtin->server_runner = builtin_servers[i].runner;
                found = builtin;
                break;
            }
        }
    } else if (!found && want_filter == 1) {
        for (size_t i = 0; i < sizeof(builtin_filters) / sizeof(builtin_filters[0]); i++) {
            if (strcmp(builtin_filters[i].reference, normalised) == 0) {
                memset(builtin, 0, sizeof(*builtin));
                builtin->kind = context->kind == CSGI_CONF__KIND_FILTER_APP
                                    ? CSGI_FACTORY_FILTER_APP
                                    : CSGI_FACTORY_FILTER;
                builtin->filter_factory = builtin_filters[i].factory;
                found = builtin;
                break;
            }
        }
    }
    if (!found && want_filter != 2) {
        for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
            if (strcmp(builtins[i].reference, normalised) == 0) {
                memset(builtin, 0, sizeof(*builtin));
                builtin->kind = CSGI_FACTORY_COMPOSITE;
                builtin->app_factory = builtins[i].factory;
                found = builtin;
                break;
            }
        }
    }
    int rc = 0;
    if (!found)
        rc = lookup_module(loader, context, normalised, want_filter, builtin, &found, error);
    csgi__free(normalised);
    *out = found;
    return rc;
}

/* Call the app (or composite) factory of an app, composite or reference context. */
static int call_app_factory(csgi_loader *loader, const csgi_conf__context *context, csgi_app **out,
                            csgi_load_error *error)
{
    if (!context->factory.text) {
        error_set(error, context->file, context->line, context->section, NULL,
                  "no factory for this section");
        return CSGI_EPARSE;
    }
    registration builtin;
    const registration *r = NULL;
    int rc = lookup(loader, context, 0, &builtin, &r, error);
    if (rc == CSGI_ENOTFOUND || (rc == 0 && !r)) {
        int unknown = CSGI_ENOTFOUND;
        if (stub_unknown(loader, context, &unknown, out, error))
            return unknown;
    }
    if (rc != 0) {
        error_set(error, context->file, context->line, context->section, NULL, "%s",
                  csgi_strerror(rc));
        return rc;
    }
    const char *expected = wants_composite(context) ? "a composite factory" : "an app factory";
    if (!r || !r->app_factory)
        return unknown_factory(context, expected, r ? context->factory.text : NULL, error);

    csgi_conf global = {&context->global_conf, loader};
    csgi_conf local = {&context->local_conf, loader};
    const csgi_conf__context *saved = loader->composite;
    loader->composite = is_composite(context, r) ? context : NULL;
    csgi_app *app = NULL;
    rc = r->app_factory(loader, &global, &local, &app, error);
    loader->composite = saved;
    if (rc == 0 && !app) {
        error_set(error, NULL, 0, NULL, NULL, "the factory '%s' returned no application",
                  context->factory.text);
        rc = CSGI_EINVAL;
    }
    if (rc != 0) {
        csgi_app_free(app);
        error_locate(error, context, rc);
        return rc;
    }
    *out = app;
    return 0;
}

/* Wrap app in the filter-with filters of context (outermost first in the list). */
static int apply_filter_with(csgi_loader *loader, const csgi_conf__context *context,
                             const csgi_conf__filter_with *item, csgi_app *app, csgi_app **out,
                             csgi_load_error *error)
{
    if (!item) {
        *out = app;
        return 0;
    }
    /* The inner filters go on first. */
    csgi_app *inner = NULL;
    int rc = apply_filter_with(loader, context, item->next, app, &inner, error);
    if (rc != 0)
        return rc;
    const csgi_conf__context *filter = NULL;
    rc = resolve_child(loader, context, CSGI_CONF__FILTER, &item->reference, &filter, error);
    if (rc != 0) {
        csgi_app_free(inner);
        return rc;
    }
    return apply_filter(loader, filter, inner, out, error);
}

/* Call the filter factory of a filter context (or a filter-app's filter). Takes next. */
static int call_filter_factory(csgi_loader *loader, const csgi_conf__context *context,
                               csgi_app *next, csgi_app **out, csgi_load_error *error)
{
    registration builtin;
    const registration *r = NULL;
    int rc = CSGI_EPARSE;
    if (!context->factory.text) {
        error_set(error, context->file, context->line, context->section, NULL,
                  "no factory for this section");
    } else if ((rc = lookup(loader, context, 1, &builtin, &r, error)) != 0 &&
               !(rc == CSGI_ENOTFOUND && stub_unknown(loader, context, &rc, NULL, error))) {
        error_set(error, context->file, context->line, context->section, NULL, "%s",
                  csgi_strerror(rc));
    } else if (!r && rc == 0 && loader->describing && loader->describing->stub) {
        *out = next; /* a stub filter passes requests on */
        return 0;
    } else if (!r && (rc = CSGI_ENOTFOUND) != 0 &&
               stub_unknown(loader, context, &rc, NULL, error)) {
        *out = next;
        return 0;
    } else if (!r || !r->filter_factory) {
        const csgi_conf__origin *at = &context->factory.origin;
        csgi_conf__origin origin = *at;
        if (!origin.file) {
            origin.file = context->file;
            origin.line = context->line;
            origin.section = context->section;
        }
        if (r)
            error_at(error, &origin, "'%s' is an app factory (%s was expected)",
                     context->factory.text, "a filter factory");
        else
            error_at(error, &origin, "unknown factory '%s' (%s was expected)",
                     context->factory.text, "a filter factory");
        rc = r ? CSGI_EINVAL : CSGI_ENOTFOUND;
    } else {
        csgi_conf global = {&context->global_conf, loader};
        csgi_conf local = {&context->local_conf, loader};
        const csgi_conf__context *saved = loader->composite;
        loader->composite = NULL;
        csgi_app *app = NULL;
        rc = r->filter_factory(loader, &global, &local, next, &app, error);
        loader->composite = saved;
        if (rc == 0 && !app) {
            error_set(error, NULL, 0, NULL, NULL, "the factory '%s' returned no application",
                      context->factory.text);
            rc = CSGI_EINVAL;
        }
        if (rc != 0) {
            csgi_app_free(app);
            error_locate(error, context, rc);
            return rc;
        }
        *out = app;
        return 0;
    }
    csgi_app_free(next);
    return rc;
}

/* Apply a filter context to next (taken): its factory, then its own filter-with
   filters around it (PasteDeploy's "filtering a filter" composes). */
static int apply_filter(csgi_loader *loader, const csgi_conf__context *filter, csgi_app *next,
                        csgi_app **out, csgi_load_error *error)
{
    csgi_app *app = NULL;
    describe_node *saved = loader->describing;
    int rc = describe_enter(loader, filter, 1);
    if (rc != 0) {
        csgi_app_free(next);
        error_set(error, NULL, 0, NULL, NULL, "%s", csgi_strerror(rc));
        return rc;
    }
    rc = call_filter_factory(loader, filter, next, &app, error);
    loader->describing = saved;
    if (rc != 0)
        return rc;
    return apply_filter_with(loader, filter, filter->filter_with, app, out, error);
}

static int build_pipeline(csgi_loader *loader, const csgi_conf__context *context, csgi_app **out,
                          csgi_load_error *error)
{
    if (context->pipeline_count == 0) {
        error_set(error, context->file, context->line, context->section, "pipeline",
                  "an empty pipeline");
        return CSGI_EPARSE;
    }
    const csgi_conf__context *last = NULL;
    size_t n = context->pipeline_count;
    int rc =
        resolve_child(loader, context, CSGI_CONF__APP, &context->pipeline[n - 1], &last, error);
    if (rc != 0)
        return rc;
    csgi_app *app = NULL;
    rc = build_app(loader, last, &app, error);
    if (rc != 0)
        return rc;
    for (size_t i = n - 1; i-- > 0;) {
        const csgi_conf__context *filter = NULL;
        rc = resolve_child(loader, context, CSGI_CONF__FILTER, &context->pipeline[i], &filter,
                           error);
        if (rc != 0) {
            csgi_app_free(app);
            return rc;
        }
        rc = apply_filter(loader, filter, app, &app, error);
        if (rc != 0)
            return rc;
    }
    *out = app;
    return 0;
}

static int build_app(csgi_loader *loader, const csgi_conf__context *context, csgi_app **out,
                     csgi_load_error *error)
{
    csgi_app *app = NULL;
    describe_node *saved = loader->describing;
    int rc = describe_enter(loader, context, 0);
    if (rc != 0) {
        error_set(error, NULL, 0, NULL, NULL, "%s", csgi_strerror(rc));
        return rc;
    }
    switch (context->kind) {
    case CSGI_CONF__KIND_PIPELINE: rc = build_pipeline(loader, context, &app, error); break;
    case CSGI_CONF__KIND_FILTER_APP: {
        const csgi_conf__context *next = NULL;
        csgi_app *inner = NULL;
        rc = resolve_child(loader, context, CSGI_CONF__APP, &context->next_app, &next, error);
        if (rc == 0)
            rc = build_app(loader, next, &inner, error);
        if (rc == 0)
            rc = call_filter_factory(loader, context, inner, &app, error);
        break;
    }
    case CSGI_CONF__KIND_NONE:
    case CSGI_CONF__KIND_APP:
    case CSGI_CONF__KIND_COMPOSITE: rc = call_app_factory(loader, context, &app, error); break;
    default:
        error_set(error, context->file, context->line, context->section, NULL,
                  "a %s section is not an application", csgi_conf__kind_name(context->kind));
        rc = CSGI_EINVAL;
        break;
    }
    loader->describing = saved;
    if (rc != 0)
        return rc;
    return apply_filter_with(loader, context, context->filter_with, app, out, error);
}

/* ---- loader ------------------------------------------------------------------------ */

int csgi_loader_new(csgi_loader **out)
{
    if (!out)
        return CSGI_EINVAL;
    *out = NULL;
    csgi_loader *loader = csgi__calloc(1, sizeof(*loader));
    if (!loader)
        return CSGI_ENOMEM;
    int rc = csgi_conf__loader_new(&loader->conf);
    if (rc != 0) {
        csgi__free(loader);
        return rc;
    }
    *out = loader;
    return 0;
}

void csgi_loader_free(csgi_loader *loader)
{
    if (!loader)
        return;
    for (registration *r = loader->registrations, *next; r; r = next) {
        next = r->next;
        csgi__free(r->reference);
        csgi__free(r);
    }
    for (module_dir *d = loader->module_dirs, *next; d; d = next) {
        next = d->next;
        csgi__free(d->path);
        csgi__free(d);
    }
    /* The handles stay open: applications built from them outlive the
       loader (see "shared objects" above). */
    for (module *m = loader->modules, *next; m; m = next) {
        next = m->next;
        csgi__free(m->name);
        csgi__free(m->ini_dir);
        csgi__free(m);
    }
    for (allocation *a = loader->allocations, *next; a; a = next) {
        next = a->next;
        csgi__free(a);
    }
    free_listen(loader);
    csgi_conf__loader_free(loader->conf);
    csgi__free(loader);
}

int csgi_loader_set_global(csgi_loader *loader, const char *name, const char *value)
{
    if (!loader || !name || !name[0] || !value)
        return CSGI_EINVAL;
    /* A name set twice keeps its last value. */
    for (csgi_conf__entry *e = loader->globals.first; e; e = e->next) {
        if (strcmp(e->name, name) == 0) {
            csgi_conf__list scratch = {0};
            int rc = csgi_conf__list_add(loader->conf, &scratch, name, value);
            if (rc != 0)
                return rc;
            e->value = scratch.first->value;
            return 0;
        }
    }
    return csgi_conf__list_add(loader->conf, &loader->globals, name, value);
}

int csgi_loader_load_app(csgi_loader *loader, const char *uri, csgi_app **out,
                         csgi_load_error *error)
{
    csgi_load_error scratch;
    if (!error)
        error = &scratch;
    memset(error, 0, sizeof(*error));
    if (out)
        *out = NULL;
    if (!loader || !uri || !out) {
        error_set(error, NULL, 0, NULL, NULL, "%s", csgi_strerror(CSGI_EINVAL));
        return CSGI_EINVAL;
    }
    csgi_ini__error ini;
    csgi_ini__error_clear(&ini);
    const csgi_conf__context *context = NULL;
    int rc = csgi_conf__resolve(loader->conf, CSGI_CONF__APP, uri, NULL,
                                loader->globals.first ? &loader->globals : NULL, &context, &ini);
    if (rc != 0) {
        error_from_ini(error, &ini, rc);
        return rc;
    }
    const csgi_conf__context *saved = loader->composite;
    loader->composite = NULL;
    rc = build_app(loader, context, out, error);
    loader->composite = saved;
    return rc;
}

/* Resolve name, written in the composite being built, as type. */
static int resolve_in_composite(csgi_loader *loader, const char *name, csgi_conf__type type,
                                const char *function, const csgi_conf__context **out,
                                csgi_load_error *error)
{
    const csgi_conf__context *composite = loader->composite;
    if (!composite) {
        error_set(error, NULL, 0, NULL, NULL, "%s is for composite factories while they run",
                  function);
        return CSGI_ESTATE;
    }
    /* Contexts keep the name: give it the loader's lifetime. */
    csgi_conf__list copy = {0};
    if (csgi_conf__list_add(loader->conf, &copy, "name", name) != 0) {
        error_set(error, NULL, 0, NULL, NULL, "%s", csgi_strerror(CSGI_ENOMEM));
        return CSGI_ENOMEM;
    }
    csgi_conf__reference reference = {0};
    reference.text = copy.first->value;
    reference.origin = composite->factory.origin;
    if (!reference.origin.file) {
        reference.origin.file = composite->file;
        reference.origin.line = composite->line;
        reference.origin.section = composite->section;
    }
    return resolve_child(loader, composite, type, &reference, out, error);
}

int csgi_loader_get_app(csgi_loader *loader, const char *name, csgi_app **out,
                        csgi_load_error *error)
{
    if (out)
        *out = NULL;
    if (!loader || !name || !out) {
        error_set(error, NULL, 0, NULL, NULL, "%s", csgi_strerror(CSGI_EINVAL));
        return CSGI_EINVAL;
    }
    const csgi_conf__context *context = NULL;
    int rc =
        resolve_in_composite(loader, name, CSGI_CONF__APP, "csgi_loader_get_app", &context, error);
    if (rc != 0)
        return rc;
    const csgi_conf__context *composite = loader->composite;
    loader->composite = NULL;
    rc = build_app(loader, context, out, error);
    loader->composite = composite;
    return rc;
}

int csgi_loader_get_filter(csgi_loader *loader, const char *name, csgi_app *next, csgi_app **out,
                           csgi_load_error *error)
{
    if (out)
        *out = NULL;
    if (!loader || !name || !out || !next) {
        csgi_app_free(next);
        error_set(error, NULL, 0, NULL, NULL, "%s", csgi_strerror(CSGI_EINVAL));
        return CSGI_EINVAL;
    }
    const csgi_conf__context *context = NULL;
    int rc = resolve_in_composite(loader, name, CSGI_CONF__FILTER, "csgi_loader_get_filter",
                                  &context, error);
    if (rc != 0) {
        csgi_app_free(next);
        return rc;
    }
    const csgi_conf__context *composite = loader->composite;
    loader->composite = NULL;
    rc = apply_filter(loader, context, next, out, error);
    loader->composite = composite;
    return rc;
}

int csgi_loader_serve(csgi_loader *loader, const char *uri, csgi_app *app, csgi_load_error *error)
{
    csgi_load_error scratch;
    if (!error)
        error = &scratch;
    memset(error, 0, sizeof(*error));
    if (!loader || !uri || !app) {
        csgi_app_free(app);
        error_set(error, NULL, 0, NULL, NULL, "%s", csgi_strerror(CSGI_EINVAL));
        return CSGI_EINVAL;
    }
    csgi_ini__error ini;
    csgi_ini__error_clear(&ini);
    const csgi_conf__context *context = NULL;
    int rc = csgi_conf__resolve(loader->conf, CSGI_CONF__SERVER, uri, NULL,
                                loader->globals.first ? &loader->globals : NULL, &context, &ini);
    if (rc != 0) {
        csgi_app_free(app);
        error_from_ini(error, &ini, rc);
        return rc;
    }
    if (!context->factory.text) {
        csgi_app_free(app);
        error_set(error, context->file, context->line, context->section, NULL,
                  "no factory for this section");
        return CSGI_EPARSE;
    }
    registration builtin;
    const registration *r = NULL;
    rc = lookup(loader, context, 2, &builtin, &r, error);
    if (rc == 0 && (!r || !r->server_runner)) {
        csgi_conf__origin origin = factory_origin(context);
        if (r)
            error_at(error, &origin, "'%s' is not a server runner", context->factory.text);
        else
            error_at(error, &origin, "unknown factory '%s' (a server runner was expected)",
                     context->factory.text);
        rc = r ? CSGI_EINVAL : CSGI_ENOTFOUND;
    }
    if (rc != 0) {
        csgi_app_free(app);
        error_set(error, context->file, context->line, context->section, NULL, "%s",
                  csgi_strerror(rc));
        return rc;
    }
    csgi_conf global = {&context->global_conf, loader};
    csgi_conf local = {&context->local_conf, loader};
    rc = r->server_runner(loader, &global, &local, app, error);
    if (rc != 0)
        error_locate(error, context, rc);
    return rc;
}

int csgi_loader_describe(csgi_loader *loader, const char *uri, int stub_unknown, char **text,
                         csgi_load_error *error)
{
    csgi_load_error scratch;
    if (!error)
        error = &scratch;
    memset(error, 0, sizeof(*error));
    if (text)
        *text = NULL;
    if (!loader || !uri || !text || loader->describing) {
        error_set(error, NULL, 0, NULL, NULL, "%s", csgi_strerror(CSGI_EINVAL));
        return CSGI_EINVAL;
    }
    describe_node *root = csgi__calloc(1, sizeof(*root));
    if (!root) {
        error_set(error, NULL, 0, NULL, NULL, "%s", csgi_strerror(CSGI_ENOMEM));
        return CSGI_ENOMEM;
    }
    loader->describing = root;
    loader->stub_unknown = stub_unknown ? 1 : 0;
    csgi_app *app = NULL;
    int rc = csgi_loader_load_app(loader, uri, &app, error);
    loader->describing = NULL;
    loader->stub_unknown = 0;
    csgi_app_free(app);
    if (rc == 0) {
        describe_text out = {0};
        for (size_t i = 0; i < root->count; i++)
            describe_render(root->children[i], 0, &out);
        if (out.failed || !out.data) {
            free(out.data);
            rc = CSGI_ENOMEM;
            error_set(error, NULL, 0, NULL, NULL, "%s", csgi_strerror(rc));
        } else {
            *text = out.data;
        }
    }
    describe_free(root);
    return rc;
}
