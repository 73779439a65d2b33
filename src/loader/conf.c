/* Deploy-file contexts: PasteDeploy's get_context over the INI model. */
#include "loader/conf.h"

#include "common/alloc.h"
#include "common/chartab.h"
#include "loader/text.h"

#include <csgi/common.h>

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ConfigParser's MAX_INTERPOLATION_DEPTH. */
#define MAX_INTERPOLATION_DEPTH 10
/* An interpolated value is no longer than the largest file: %(x)s
   nested ten deep could otherwise make gigabytes of a small file. */
#define MAX_INTERPOLATED_SIZE CSGI_INI__MAX_FILE_SIZE
/* Sections being resolved at once (a `use` chain); deeper is refused. */
#define MAX_USE_DEPTH 64
/* Lists with more entries than this find them through an index. */
#define LINEAR_ENTRIES 8

typedef struct cached_file {
    struct cached_file *next;
    const char *abs_path;
    csgi_ini *ini;
} cached_file;

struct csgi_conf__loader {
    csgi_arena arena;
    cached_file *files;
};

/* One read of a file (PasteDeploy makes a ConfigLoader per config: URI):
   its defaults depend on the globals it was loaded with. */
struct csgi_conf__scope {
    const csgi_ini *ini;
    const char *path;     /* as loaded */
    const char *abs_path; /* __file__ */
    const char *here;
    csgi_conf__list defaults_raw; /* here, __file__, [DEFAULT], extra globals */
    csgi_conf__list defaults;     /* the same, interpolated */
};

typedef struct frame {
    const char *file;
    const char *section;
} frame;

/* One resolution in progress. */
typedef struct resolver {
    csgi_conf__loader *loader;
    csgi_load_error *error;
    frame stack[MAX_USE_DEPTH];
    size_t depth;
} resolver;

/* ---- small helpers ---------------------------------------------------------- */

static int fail_at(resolver *rs, int code, const csgi_conf__origin *at, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(resolver *rs, int code, const csgi_conf__origin *at, const char *format, ...)
{
    char text[512];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof(text), format, args);
    va_end(args);
    csgi_load_error__set(rs->error, at ? at->file : NULL, at ? at->line : 0,
                         at ? at->section : NULL, at ? at->key : NULL, "%s", text);
    return code;
}

static int fail_nomem(resolver *rs)
{
    return fail_at(rs, CSGI_ENOMEM, NULL, "out of memory");
}

static char *arena_strdup(csgi_conf__loader *loader, const char *s)
{
    return csgi_arena__strndup(&loader->arena, s, strlen(s));
}

static void *arena_zalloc(csgi_conf__loader *loader, size_t size)
{
    void *p = csgi_arena__alloc(&loader->arena, size);
    if (p)
        memset(p, 0, size);
    return p;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* PasteDeploy's absolute_name: letters followed by ':'. */
static size_t scheme_length(const char *name)
{
    size_t n = 0;
    while (csgi_char__is_alpha((unsigned char)name[n]))
        n++;
    return n > 0 && name[n] == ':' ? n : 0;
}

static bool has_scheme(const char *name, const char *scheme)
{
    size_t n = scheme_length(name);
    return n == strlen(scheme) && csgi_char__equal_nocase(name, scheme, n);
}

/* ---- ordered conf lists ------------------------------------------------------ */

const csgi_conf__entry *csgi_conf__list_find(const csgi_conf__list *list, const char *name)
{
    if (!list || !name)
        return NULL;
    if (list->count > LINEAR_ENTRIES)
        return csgi_name_index__get(&list->index, name);
    for (const csgi_conf__entry *e = list->first; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

const char *csgi_conf__list_get(const csgi_conf__list *list, const char *name)
{
    const csgi_conf__entry *e = csgi_conf__list_find(list, name);
    return e ? e->value : NULL;
}

/* list[name] = value: a key already there keeps its place (a Python dict). */
static int list_set(csgi_conf__loader *loader, csgi_conf__list *list, const char *name,
                    const char *value, const csgi_conf__origin *origin)
{
    csgi_conf__entry *e = (csgi_conf__entry *)csgi_conf__list_find(list, name);
    if (e) {
        e->value = value;
        if (origin)
            e->origin = *origin;
        else
            memset(&e->origin, 0, sizeof(e->origin));
        return 0;
    }
    e = arena_zalloc(loader, sizeof(*e));
    if (!e)
        return CSGI_ENOMEM;
    if (list->count == LINEAR_ENTRIES) {
        for (csgi_conf__entry *old = list->first; old; old = old->next)
            if (csgi_name_index__put(&list->index, &loader->arena, old->name, old) != 0)
                return CSGI_ENOMEM;
    }
    if (list->count >= LINEAR_ENTRIES &&
        csgi_name_index__put(&list->index, &loader->arena, name, e) != 0)
        return CSGI_ENOMEM;
    e->name = name;
    e->value = value;
    if (origin)
        e->origin = *origin;
    if (list->last)
        list->last->next = e;
    else
        list->first = e;
    list->last = e;
    list->count++;
    return 0;
}

static int list_update(csgi_conf__loader *loader, csgi_conf__list *list,
                       const csgi_conf__list *from)
{
    if (!from)
        return 0;
    for (const csgi_conf__entry *e = from->first; e; e = e->next)
        if (list_set(loader, list, e->name, e->value, &e->origin) != 0)
            return CSGI_ENOMEM;
    return 0;
}

/* Take the entry called name out of list; NULL when absent. */
static csgi_conf__entry *list_pop(csgi_conf__list *list, const char *name)
{
    csgi_conf__entry *prev = NULL;
    for (csgi_conf__entry *e = list->first; e; prev = e, e = e->next) {
        if (strcmp(e->name, name) == 0) {
            if (prev)
                prev->next = e->next;
            else
                list->first = e->next;
            if (list->last == e)
                list->last = prev;
            csgi_name_index__remove(&list->index, name);
            list->count--;
            e->next = NULL;
            return e;
        }
    }
    return NULL;
}

int csgi_conf__list_add(csgi_conf__loader *loader, csgi_conf__list *list, const char *name,
                        const char *value)
{
    if (!loader || !list || !name || !value)
        return CSGI_EINVAL;
    char *n = arena_strdup(loader, name);
    char *v = arena_strdup(loader, value);
    if (!n || !v)
        return CSGI_ENOMEM;
    return list_set(loader, list, n, v, NULL);
}

/* ---- names ------------------------------------------------------------------- */

const char *csgi_conf__kind_name(csgi_conf__kind kind)
{
    switch (kind) {
    case CSGI_CONF__KIND_NONE: return "reference";
    case CSGI_CONF__KIND_APP: return "app";
    case CSGI_CONF__KIND_COMPOSITE: return "composite";
    case CSGI_CONF__KIND_PIPELINE: return "pipeline";
    case CSGI_CONF__KIND_FILTER_APP: return "filter-app";
    case CSGI_CONF__KIND_FILTER: return "filter";
    case CSGI_CONF__KIND_SERVER: return "server";
    }
    return "unknown";
}

const char *csgi_conf__protocol_name(csgi_conf__protocol protocol)
{
    switch (protocol) {
    case CSGI_CONF__PROTOCOL_NONE: return NULL;
    case CSGI_CONF__PROTOCOL_APP_FACTORY: return "paste.app_factory";
    case CSGI_CONF__PROTOCOL_COMPOSITE_FACTORY: return "paste.composite_factory";
    case CSGI_CONF__PROTOCOL_COMPOSIT_FACTORY: return "paste.composit_factory";
    case CSGI_CONF__PROTOCOL_FILTER_FACTORY: return "paste.filter_factory";
    case CSGI_CONF__PROTOCOL_FILTER_APP_FACTORY: return "paste.filter_app_factory";
    case CSGI_CONF__PROTOCOL_SERVER_FACTORY: return "paste.server_factory";
    case CSGI_CONF__PROTOCOL_SERVER_RUNNER: return "paste.server_runner";
    }
    return NULL;
}

/* ---- interpolation ----------------------------------------------------------- */

/* Append to an interpolated value; 0 or the error, filled. */
static int append(resolver *rs, const csgi_conf__origin *at, csgi_text *out, const char *s,
                  size_t n)
{
    int rc = csgi_text__append(out, s, n);
    if (rc == CSGI_ETOOBIG)
        return fail_at(rs, rc, at, "interpolated value longer than %u bytes",
                       MAX_INTERPOLATED_SIZE);
    return rc == 0 ? 0 : fail_nomem(rs);
}

/* The raw value of name as interpolation sees it: the section's key, else
   the defaults (ConfigParser's ChainMap(section, defaults)). */
static const char *raw_lookup(const csgi_conf__scope *scope, const csgi_ini__section *section,
                              const char *name)
{
    const char *v = section ? csgi_ini__get(section, name) : NULL;
    return v ? v : csgi_conf__list_get(&scope->defaults_raw, name);
}

/* ConfigParser's BasicInterpolation._interpolate_some. */
static int interpolate_some(resolver *rs, const csgi_conf__scope *scope,
                            const csgi_ini__section *section, const csgi_conf__origin *at,
                            csgi_text *out, const char *rest, int depth)
{
    if (depth > MAX_INTERPOLATION_DEPTH)
        return fail_at(rs, CSGI_EPARSE, at,
                       "interpolation deeper than %d levels (a value refers to itself?)",
                       MAX_INTERPOLATION_DEPTH);
    while (*rest) {
        const char *percent = strchr(rest, '%');
        if (!percent)
            return append(rs, at, out, rest, strlen(rest));
        int rc = append(rs, at, out, rest, (size_t)(percent - rest));
        if (rc != 0)
            return rc;
        rest = percent;
        if (rest[1] == '%') {
            rc = append(rs, at, out, "%", 1);
            if (rc != 0)
                return rc;
            rest += 2;
        } else if (rest[1] == '(') {
            const char *close = strchr(rest + 2, ')');
            if (!close || close == rest + 2 || close[1] != 's')
                return fail_at(rs, CSGI_EPARSE, at,
                               "bad interpolation: '%s' is not %%(name)s or %%%%", rest);
            size_t n = (size_t)(close - (rest + 2));
            char name[256];
            if (n >= sizeof(name))
                return fail_at(rs, CSGI_EPARSE, at, "bad interpolation: name too long");
            memcpy(name, rest + 2, n);
            name[n] = '\0';
            rest = close + 2;
            const char *value = raw_lookup(scope, section, name);
            if (!value)
                return fail_at(rs, CSGI_EPARSE, at,
                               "bad interpolation: %%(%s)s names no key of the section or the "
                               "defaults",
                               name);
            rc = strchr(value, '%')
                     ? interpolate_some(rs, scope, section, at, out, value, depth + 1)
                     : append(rs, at, out, value, strlen(value));
            if (rc != 0)
                return rc;
        } else {
            return fail_at(rs, CSGI_EPARSE, at,
                           "bad interpolation: '%%' must be followed by '%%' or '(', found '%s'",
                           rest);
        }
    }
    return 0;
}

/* raw interpolated in section (NULL: [DEFAULT]) into *out (loader arena). */
static int interpolate(resolver *rs, const csgi_conf__scope *scope,
                       const csgi_ini__section *section, const csgi_conf__origin *at,
                       const char *raw, const char **out)
{
    if (!strchr(raw, '%')) {
        *out = raw;
        return 0;
    }
    csgi_text text = {.max = MAX_INTERPOLATED_SIZE};
    int rc = interpolate_some(rs, scope, section, at, &text, raw, 1);
    if (rc == 0) {
        *out = csgi_arena__strndup(&rs->loader->arena, text.data ? text.data : "", text.len);
        if (!*out)
            rc = fail_nomem(rs);
    }
    csgi_text__free(&text);
    return rc;
}

/* ---- files and scopes -------------------------------------------------------- */

/* os.path.abspath: joined to the working directory, ".", ".." and "//"
   collapsed (symbolic links are not followed). Returns 0, CSGI_ENOMEM,
   CSGI_ETOOBIG for a path longer than PATH_MAX, CSGI_ESYSTEM when the working
   directory is unknown. */
static int absolute_path(csgi_conf__loader *loader, const char *path, char **out)
{
    char joined[PATH_MAX * 2];
    int n;
    if (path[0] == '/') {
        n = snprintf(joined, sizeof(joined), "%s", path);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
            return CSGI_ESYSTEM;
        n = snprintf(joined, sizeof(joined), "%s/%s", cwd, path);
    }
    if (n < 0 || (size_t)n >= sizeof(joined))
        return CSGI_ETOOBIG;
    char result[PATH_MAX * 2];
    size_t len = 0;
    const char *p = joined;
    while (*p) {
        while (*p == '/')
            p++;
        const char *end = strchr(p, '/');
        size_t segment = end ? (size_t)(end - p) : strlen(p);
        if (segment == 0 || (segment == 1 && p[0] == '.')) {
            /* nothing */
        } else if (segment == 2 && p[0] == '.' && p[1] == '.') {
            while (len > 0 && result[len - 1] != '/')
                len--;
            if (len > 0)
                len--; /* the slash */
        } else {
            result[len++] = '/'; /* fits: result is as large as joined */
            memcpy(result + len, p, segment);
            len += segment;
        }
        p += segment;
    }
    if (len == 0)
        result[len++] = '/';
    *out = csgi_arena__strndup(&loader->arena, result, len);
    return *out ? 0 : CSGI_ENOMEM;
}

static char *directory_of(csgi_conf__loader *loader, const char *abs_path)
{
    const char *slash = strrchr(abs_path, '/');
    size_t n = slash ? (size_t)(slash - abs_path) : 0;
    return csgi_arena__strndup(&loader->arena, n ? abs_path : "/", n ? n : 1);
}

/* The cached model of the file at abs_path, loading it on first use. */
static int load_file(resolver *rs, const char *path, const char *abs_path,
                     const csgi_conf__origin *from, const csgi_ini **out)
{
    for (cached_file *f = rs->loader->files; f; f = f->next) {
        if (strcmp(f->abs_path, abs_path) == 0) {
            *out = f->ini;
            return 0;
        }
    }
    csgi_load_error inner;
    csgi_load_error__clear(&inner);
    csgi_ini *ini = NULL;
    int rc = csgi_ini__load(&ini, path, &inner);
    if (rc != 0) {
        if (from && (rc == CSGI_ENOTFOUND || rc == CSGI_EACCESS || rc == CSGI_EIO)) {
            char message[1024];
            csgi_load_error_format(&inner, message, sizeof(message));
            return fail_at(rs, rc, from, "cannot read included file %s (%s)", abs_path, message);
        }
        if (rs->error && !rs->error->text[0])
            *rs->error = inner;
        return rc;
    }
    cached_file *f = arena_zalloc(rs->loader, sizeof(*f));
    if (!f) {
        csgi_ini__free(ini);
        return fail_nomem(rs);
    }
    f->abs_path = abs_path;
    f->ini = ini;
    f->next = rs->loader->files;
    rs->loader->files = f;
    *out = ini;
    return 0;
}

/* A read of path whose defaults gain extra (without overwriting). */
static int new_scope(resolver *rs, const char *path, const csgi_conf__list *extra,
                     const csgi_conf__origin *from, const csgi_conf__scope **out)
{
    csgi_conf__loader *loader = rs->loader;
    csgi_conf__scope *scope = arena_zalloc(loader, sizeof(*scope));
    if (!scope)
        return fail_nomem(rs);
    char *abs_path = NULL;
    int rc = absolute_path(loader, path, &abs_path);
    if (rc == CSGI_ENOMEM)
        return fail_nomem(rs);
    if (rc != 0)
        return fail_at(rs, rc, from ? from : &(csgi_conf__origin){path, NULL, NULL, 0},
                       "cannot make the path absolute: %s", csgi_strerror(rc));
    scope->path = arena_strdup(loader, path);
    scope->abs_path = abs_path;
    scope->here = directory_of(loader, abs_path);
    if (!scope->path || !scope->here)
        return fail_nomem(rs);
    rc = load_file(rs, path, abs_path, from, &scope->ini);
    if (rc != 0)
        return rc;

    if (list_set(loader, &scope->defaults_raw, "here", scope->here, NULL) != 0 ||
        list_set(loader, &scope->defaults_raw, "__file__", abs_path, NULL) != 0)
        return fail_nomem(rs);
    const csgi_ini__section *defaults = csgi_ini__find_section(scope->ini, "DEFAULT");
    if (defaults) {
        for (const csgi_ini__key *k = defaults->keys; k; k = k->next) {
            csgi_conf__origin origin = {scope->ini->path, defaults->name, k->name, k->line};
            if (list_set(loader, &scope->defaults_raw, k->name, k->value, &origin) != 0)
                return fail_nomem(rs);
        }
    }
    if (extra) {
        for (const csgi_conf__entry *e = extra->first; e; e = e->next) {
            if (csgi_conf__list_find(&scope->defaults_raw, e->name))
                continue;
            if (list_set(loader, &scope->defaults_raw, e->name, e->value, &e->origin) != 0)
                return fail_nomem(rs);
        }
    }
    /* NicerConfigParser.defaults(): each interpolated against the defaults
       ("or val": an empty result keeps the raw value). */
    for (const csgi_conf__entry *e = scope->defaults_raw.first; e; e = e->next) {
        const char *value = NULL;
        csgi_conf__origin at = e->origin;
        if (!at.file) {
            at.file = scope->ini->path;
            at.section = "DEFAULT";
            at.key = e->name;
        }
        rc = interpolate(rs, scope, NULL, &at, e->value, &value);
        if (rc != 0)
            return rc;
        if (list_set(loader, &scope->defaults, e->name, value[0] ? value : e->value, &e->origin) !=
            0)
            return fail_nomem(rs);
    }
    *out = scope;
    return 0;
}

/* ---- section lookup ------------------------------------------------------------ */

typedef struct prefix_group {
    const char *prefixes[3];
} prefix_group;

static const prefix_group app_groups[] = {
    {{"app", "application", NULL}}, {{"composite", "composit", NULL}},
    {{"pipeline", NULL, NULL}},     {{"filter-app", NULL, NULL}},
    {{NULL, NULL, NULL}},
};
static const prefix_group filter_groups[] = {{{"filter", NULL, NULL}}, {{NULL, NULL, NULL}}};
static const prefix_group server_groups[] = {{{"server", NULL, NULL}}, {{NULL, NULL, NULL}}};

static const prefix_group *groups_of(csgi_conf__type type)
{
    switch (type) {
    case CSGI_CONF__APP: return app_groups;
    case CSGI_CONF__FILTER: return filter_groups;
    case CSGI_CONF__SERVER: return server_groups;
    }
    return app_groups;
}

/* "prefix:" followed by name (stripped), or a bare "prefix" for main. */
static bool section_matches(const char *header, const char *prefix, const char *name)
{
    size_t n = strlen(prefix);
    if (strncmp(header, prefix, n) != 0)
        return false;
    if (header[n] == '\0')
        return strcmp(name, "main") == 0;
    if (header[n] != ':')
        return false;
    const char *start = header + n + 1;
    const char *end = start + strlen(start);
    while (start < end && isspace((unsigned char)*start))
        start++;
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    return (size_t)(end - start) == strlen(name) && strncmp(start, name, strlen(name)) == 0;
}

static void describe_prefixes(csgi_conf__type type, char *buf, size_t size)
{
    buf[0] = '\0';
    for (const prefix_group *g = groups_of(type); g->prefixes[0]; g++)
        for (size_t i = 0; i < 3 && g->prefixes[i]; i++) {
            size_t len = strlen(buf);
            snprintf(buf + len, size - len, "%s'%s'", len ? " or " : "", g->prefixes[i]);
        }
}

/* PasteDeploy's find_config_section; *out NULL when nothing matches. */
static int find_section(resolver *rs, const csgi_conf__scope *scope, csgi_conf__type type,
                        const char *name, const csgi_conf__origin *from,
                        const csgi_ini__section **out)
{
    const csgi_ini__section *found[8];
    size_t count = 0;
    for (const prefix_group *g = groups_of(type); g->prefixes[0]; g++) {
        for (size_t i = 0; i < 3 && g->prefixes[i]; i++) {
            size_t before = count;
            for (const csgi_ini__section *s = scope->ini->sections; s; s = s->next)
                if (section_matches(s->name, g->prefixes[i], name) && count < 8)
                    found[count++] = s;
            if (count > before)
                break;
        }
    }
    if (count > 1) {
        char list[512] = "";
        for (size_t i = 0; i < count; i++) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof(list) - len, "%s[%s]", i ? ", " : "", found[i]->name);
        }
        csgi_conf__origin at = from ? *from : (csgi_conf__origin){scope->ini->path, NULL, NULL, 0};
        return fail_at(rs, CSGI_EPARSE, &at, "ambiguous section name '%s' in %s: %s", name,
                       scope->ini->path, list);
    }
    *out = count ? found[0] : NULL;
    return 0;
}

static csgi_conf__kind kind_of(const char *header)
{
    /* PasteDeploy's prefixes; the first match wins, so "filter-app" comes
       before "filter". "app" covers "application", "composit" "composite". */
    static const struct {
        const char *prefix;
        csgi_conf__kind kind;
    } kinds[] = {
        {.prefix = "app", .kind = CSGI_CONF__KIND_APP},
        {.prefix = "composit", .kind = CSGI_CONF__KIND_COMPOSITE},
        {.prefix = "pipeline", .kind = CSGI_CONF__KIND_PIPELINE},
        {.prefix = "filter-app", .kind = CSGI_CONF__KIND_FILTER_APP},
        {.prefix = "filter", .kind = CSGI_CONF__KIND_FILTER},
        {.prefix = "server", .kind = CSGI_CONF__KIND_SERVER},
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (starts_with(header, kinds[i].prefix))
            return kinds[i].kind;
    return CSGI_CONF__KIND_NONE;
}

/* ---- contexts ------------------------------------------------------------------ */

static int get_context(resolver *rs, const csgi_conf__scope *scope, csgi_conf__type type,
                       const char *name, const csgi_conf__list *global_in,
                       const csgi_conf__origin *from, csgi_conf__context **out);

static csgi_conf__context *new_context(resolver *rs, const csgi_conf__scope *scope,
                                       csgi_conf__type type)
{
    csgi_conf__context *context = arena_zalloc(rs->loader, sizeof(*context));
    if (context) {
        context->type = type;
        context->scope = scope;
        context->file = scope->ini->path;
    }
    return context;
}

/* A name that is a factory reference, not a section (EggLoader, FuncLoader). */
static int reference_context(resolver *rs, const csgi_conf__scope *scope, csgi_conf__type type,
                             const char *name, const csgi_conf__list *global_in,
                             const csgi_conf__origin *from, csgi_conf__context **out)
{
    csgi_conf__context *context = new_context(rs, scope, type);
    if (!context || list_update(rs->loader, &context->global_conf, global_in) != 0)
        return fail_nomem(rs);
    context->kind = CSGI_CONF__KIND_NONE;
    context->name = name;
    context->factory.text = name;
    if (from)
        context->factory.origin = *from;
    *out = context;
    return 0;
}

/* _loadconfig: section name (or the fragment, or main) of another file. */
static int config_context(resolver *rs, const csgi_conf__scope *scope, csgi_conf__type type,
                          const char *uri, const csgi_conf__list *global_in,
                          const csgi_conf__origin *from, csgi_conf__context **out)
{
    csgi_conf__loader *loader = rs->loader;
    const char *path = uri + scheme_length(uri) + 1;
    const char *hash = strchr(path, '#');
    size_t path_len = hash ? (size_t)(hash - path) : strlen(path);
    const char *name = hash ? hash + 1 : "main";
    /* relative to the referencing file; '\' as '/', "///x" as "/x", %XX decoded */
    size_t dir_len = strlen(scope->here);
    char *joined = csgi_arena__alloc(&loader->arena, dir_len + path_len + 2);
    if (!joined)
        return fail_nomem(rs);
    size_t len = 0;
    if (path_len == 0 || path[0] != '/') {
        memcpy(joined, scope->here, dir_len);
        len = dir_len;
        joined[len++] = '/';
    }
    for (size_t i = 0; i < path_len; i++) {
        char c = path[i] == '\\' ? '/' : path[i];
        int high =
            c == '%' && i + 2 < path_len ? csgi_char__hex_value((unsigned char)path[i + 1]) : -1;
        int low = high >= 0 ? csgi_char__hex_value((unsigned char)path[i + 2]) : -1;
        if (low >= 0) {
            c = (char)(high * 16 + low);
            i += 2;
        }
        joined[len++] = c;
    }
    joined[len] = '\0';
    const char *file = joined;
    if (starts_with(file, "///"))
        file += 2;
    const csgi_conf__scope *included = NULL;
    int rc = new_scope(rs, file, global_in, from, &included);
    if (rc != 0)
        return rc;
    return get_context(rs, included, type, name, global_in, from, out);
}

static int use_context(resolver *rs, const csgi_conf__scope *scope, csgi_conf__type type,
                       csgi_conf__list *local, csgi_conf__list *global,
                       const csgi_conf__list *additions, csgi_conf__context **out)
{
    csgi_conf__entry *use = list_pop(local, "use");
    csgi_conf__context *context = NULL;
    int rc = get_context(rs, scope, type, use->value, global, &use->origin, &context);
    if (rc != 0)
        return rc;
    if (list_update(rs->loader, &context->global_conf, additions) != 0 ||
        list_update(rs->loader, &context->local_conf, local) != 0)
        return fail_nomem(rs);
    /* use sections do not overwrite the original __file__ */
    const csgi_conf__entry *file = csgi_conf__list_find(global, "__file__");
    if (file &&
        list_set(rs->loader, &context->global_conf, "__file__", file->value, &file->origin) != 0)
        return fail_nomem(rs);
    *out = context;
    return 0;
}

typedef struct protocol_key {
    const char *key;
    csgi_conf__protocol protocol;
    int group; /* keys of one group exclude each other; first found wins */
} protocol_key;

static const protocol_key protocol_keys[] = {
    {"paste.app_factory", CSGI_CONF__PROTOCOL_APP_FACTORY, 0},
    {"paste.composite_factory", CSGI_CONF__PROTOCOL_COMPOSITE_FACTORY, 1},
    {"paste.composit_factory", CSGI_CONF__PROTOCOL_COMPOSIT_FACTORY, 2},
    {"paste.filter_factory", CSGI_CONF__PROTOCOL_FILTER_FACTORY, 3},
    {"paste.filter_app_factory", CSGI_CONF__PROTOCOL_FILTER_APP_FACTORY, 3},
    {"paste.server_factory", CSGI_CONF__PROTOCOL_SERVER_FACTORY, 4},
    {"paste.server_runner", CSGI_CONF__PROTOCOL_SERVER_RUNNER, 4},
};

static bool protocol_allowed(csgi_conf__type type, int group)
{
    switch (type) {
    case CSGI_CONF__APP: return group <= 2;
    case CSGI_CONF__FILTER: return group == 3;
    case CSGI_CONF__SERVER: return group == 4;
    }
    return false;
}

/* _context_from_explicit: a paste.*_factory key names the factory. */
static int explicit_context(resolver *rs, const csgi_conf__scope *scope, csgi_conf__type type,
                            const csgi_ini__section *section, csgi_conf__list *local,
                            csgi_conf__list *global, csgi_conf__context **out)
{
    const protocol_key *found = NULL;
    int last_group = -1;
    char expected[256] = "";
    for (size_t i = 0; i < sizeof(protocol_keys) / sizeof(protocol_keys[0]); i++) {
        const protocol_key *p = &protocol_keys[i];
        if (!protocol_allowed(type, p->group))
            continue;
        size_t len = strlen(expected);
        snprintf(expected + len, sizeof(expected) - len, "%s%s", len ? ", " : "", p->key);
        if (p->group == last_group || !csgi_conf__list_find(local, p->key))
            continue;
        if (found) {
            csgi_conf__origin at = {scope->ini->path, section->name, p->key, section->line};
            const csgi_conf__entry *e = csgi_conf__list_find(local, p->key);
            at.line = e->origin.line;
            return fail_at(rs, CSGI_EPARSE, &at, "more than one factory given (%s and %s)",
                           found->key, p->key);
        }
        found = p;
        last_group = p->group;
    }
    if (!found) {
        csgi_conf__origin at = {scope->ini->path, section->name, NULL, section->line};
        return fail_at(rs, CSGI_EPARSE, &at, "no `use` and no factory key (%s)", expected);
    }
    csgi_conf__entry *key = list_pop(local, found->key);
    csgi_conf__context *context = new_context(rs, scope, type);
    if (!context)
        return fail_nomem(rs);
    context->protocol = found->protocol;
    context->factory.text = key->value;
    context->factory.origin = key->origin;
    context->local_conf = *local;
    context->global_conf = *global;
    *out = context;
    return 0;
}

static int split_pipeline(resolver *rs, csgi_conf__context *context, const csgi_conf__entry *e)
{
    size_t count = 0;
    for (const char *p = e->value; *p;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        count++;
        while (*p && !isspace((unsigned char)*p))
            p++;
    }
    if (count == 0)
        return fail_at(rs, CSGI_EPARSE, &e->origin, "empty pipeline");
    context->pipeline = arena_zalloc(rs->loader, count * sizeof(*context->pipeline));
    if (!context->pipeline)
        return fail_nomem(rs);
    for (const char *p = e->value; *p;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        csgi_conf__reference *item = &context->pipeline[context->pipeline_count++];
        item->text = csgi_arena__strndup(&rs->loader->arena, start, (size_t)(p - start));
        item->origin = e->origin;
        if (!item->text)
            return fail_nomem(rs);
    }
    return 0;
}

/* The cycle, as "a -> b -> a", naming files when they differ. */
static int fail_cycle(resolver *rs, const csgi_conf__scope *scope, const csgi_ini__section *section,
                      const csgi_conf__origin *from, size_t first)
{
    char path[1024] = "";
    const char *file = NULL;
    for (size_t i = first; i <= rs->depth; i++) {
        const char *f = i < rs->depth ? rs->stack[i].file : scope->abs_path;
        const char *s = i < rs->depth ? rs->stack[i].section : section->name;
        size_t len = strlen(path);
        if (!file || strcmp(file, f) != 0)
            snprintf(path + len, sizeof(path) - len, "%s%s[%s]", len ? " -> " : "", f, s);
        else
            snprintf(path + len, sizeof(path) - len, "%s[%s]", len ? " -> " : "", s);
        file = f;
    }
    return fail_at(rs, CSGI_EPARSE, from, "reference cycle: %s", path);
}

/* ConfigLoader.get_context. */
static int section_context(resolver *rs, const csgi_conf__scope *scope, csgi_conf__type type,
                           const csgi_ini__section *section, const char *name,
                           const csgi_conf__list *global_in, csgi_conf__context **out)
{
    csgi_conf__loader *loader = rs->loader;
    csgi_conf__list global = {0}, local = {0}, additions = {0}, gets = {0};
    if (list_update(loader, &global, &scope->defaults) != 0 ||
        list_update(loader, &global, global_in) != 0)
        return fail_nomem(rs);

    /* ConfigParser.options(): the section's keys, then the defaults'. */
    const csgi_ini__key *key = section->keys;
    const csgi_conf__entry *default_entry = scope->defaults_raw.first;
    for (;;) {
        const char *option, *raw;
        csgi_conf__origin origin;
        if (key) {
            option = key->name;
            raw = key->value;
            origin = (csgi_conf__origin){scope->ini->path, section->name, key->name, key->line};
            key = key->next;
        } else if (default_entry) {
            option = default_entry->name;
            raw = default_entry->value;
            origin = default_entry->origin;
            default_entry = default_entry->next;
            if (csgi_ini__find_key(section, option))
                continue;
        } else {
            break;
        }
        bool is_set = starts_with(option, "set ");
        bool is_get = starts_with(option, "get ");
        if (!is_set && !is_get && csgi_conf__list_find(&scope->defaults, option))
            continue; /* a global option: skipped */
        const char *value = NULL;
        int rc = interpolate(rs, scope, section, &origin, raw, &value);
        if (rc != 0)
            return rc;
        if (is_set || is_get) {
            const char *target = option + 4;
            while (isspace((unsigned char)*target))
                target++;
            char *stripped = arena_strdup(loader, target);
            if (!stripped)
                return fail_nomem(rs);
            size_t n = strlen(stripped);
            while (n > 0 && isspace((unsigned char)stripped[n - 1]))
                stripped[--n] = '\0';
            if (is_set) {
                if (list_set(loader, &global, stripped, value, &origin) != 0 ||
                    list_set(loader, &additions, stripped, value, &origin) != 0)
                    return fail_nomem(rs);
            } else if (list_set(loader, &gets, stripped, value, &origin) != 0) {
                return fail_nomem(rs);
            }
        } else if (list_set(loader, &local, option, value, &origin) != 0) {
            return fail_nomem(rs);
        }
    }
    for (const csgi_conf__entry *g = gets.first; g; g = g->next) {
        const char *value = csgi_conf__list_get(&global, g->value);
        if (!value)
            return fail_at(rs, CSGI_EPARSE, &g->origin, "no global conf value '%s' to get",
                           g->value);
        if (list_set(loader, &local, g->name, value, &g->origin) != 0)
            return fail_nomem(rs);
    }
    csgi_conf__entry *filter_with = NULL;
    if (type == CSGI_CONF__APP || type == CSGI_CONF__FILTER)
        filter_with = list_pop(&local, "filter-with");
    list_pop(&local, "require"); /* Python distributions: nothing to check in C */

    csgi_conf__kind kind = kind_of(section->name);
    /* csgi's own: what the section builds runs on a pool thread. */
    csgi_conf__entry *blocking = NULL;
    if ((type == CSGI_CONF__APP || type == CSGI_CONF__FILTER) && kind != CSGI_CONF__KIND_PIPELINE)
        blocking = list_pop(&local, "blocking");
    csgi_conf__context *context = NULL;
    int rc = 0;
    if (kind == CSGI_CONF__KIND_FILTER_APP) {
        csgi_conf__entry *next = list_pop(&local, "next");
        if (!next) {
            csgi_conf__origin at = {scope->ini->path, section->name, NULL, section->line};
            return fail_at(rs, CSGI_EPARSE, &at, "a filter-app section needs a 'next' setting");
        }
        if (csgi_conf__list_find(&local, "use"))
            rc = use_context(rs, scope, CSGI_CONF__FILTER, &local, &global, &additions, &context);
        else
            rc = explicit_context(rs, scope, CSGI_CONF__FILTER, section, &local, &global, &context);
        if (rc != 0)
            return rc;
        context->next_app.text = next->value;
        context->next_app.origin = next->origin;
    } else if (kind == CSGI_CONF__KIND_PIPELINE) {
        csgi_conf__entry *pipeline = list_pop(&local, "pipeline");
        if (!pipeline) {
            csgi_conf__origin at = {scope->ini->path, section->name, NULL, section->line};
            return fail_at(rs, CSGI_EPARSE, &at, "a pipeline section needs a 'pipeline' setting");
        }
        if (local.first)
            return fail_at(rs, CSGI_EPARSE, &local.first->origin,
                           "a pipeline section holds only 'pipeline' (and set/get)");
        context = new_context(rs, scope, type);
        if (!context)
            return fail_nomem(rs);
        context->global_conf = global;
        rc = split_pipeline(rs, context, pipeline);
    } else if (csgi_conf__list_find(&local, "use")) {
        rc = use_context(rs, scope, type, &local, &global, &additions, &context);
    } else {
        rc = explicit_context(rs, scope, type, section, &local, &global, &context);
    }
    if (rc != 0)
        return rc;
    /* `use` of a pipeline or a filter-app builds that (PasteDeploy keeps the
       used context's object type): the context stays the used section's. */
    bool used_builder = kind != context->kind && (context->kind == CSGI_CONF__KIND_PIPELINE ||
                                                  context->kind == CSGI_CONF__KIND_FILTER_APP);
    if (used_builder && context->kind == CSGI_CONF__KIND_PIPELINE && context->local_conf.first)
        return fail_at(rs, CSGI_EPARSE, &context->local_conf.first->origin,
                       "a section using a pipeline holds only 'use' (and set/get)");
    if (filter_with) {
        csgi_conf__filter_with *item = arena_zalloc(loader, sizeof(*item));
        if (!item)
            return fail_nomem(rs);
        item->reference.text = filter_with->value;
        item->reference.origin = filter_with->origin;
        item->next = context->filter_with;
        context->filter_with = item;
    }
    if (blocking) {
        context->blocking.text = blocking->value;
        context->blocking.origin = blocking->origin;
    }
    if (used_builder) {
        *out = context;
        return 0;
    }
    if (context->factory_kind == CSGI_CONF__KIND_NONE)
        context->factory_kind = kind == CSGI_CONF__KIND_FILTER_APP ? CSGI_CONF__KIND_FILTER : kind;
    /* The context answers for the section asked for, whatever it used. */
    context->type = type;
    context->kind = kind;
    context->scope = scope;
    context->file = scope->ini->path;
    context->section = section->name;
    context->name = name;
    context->line = section->line;
    *out = context;
    return 0;
}

static int get_context(resolver *rs, const csgi_conf__scope *scope, csgi_conf__type type,
                       const char *name, const csgi_conf__list *global_in,
                       const csgi_conf__origin *from, csgi_conf__context **out)
{
    if (scheme_length(name) > 0) {
        if (has_scheme(name, "config"))
            return config_context(rs, scope, type, name, global_in, from, out);
        return reference_context(rs, scope, type, name, global_in, from, out);
    }
    const csgi_ini__section *section = NULL;
    int rc = find_section(rs, scope, type, name, from, &section);
    if (rc != 0)
        return rc;
    if (!section) {
        if (strchr(name, ':'))
            return reference_context(rs, scope, type, name, global_in, from, out);
        char prefixes[256];
        describe_prefixes(type, prefixes, sizeof(prefixes));
        if (!from)
            return fail_at(rs, CSGI_ENOTFOUND,
                           &(csgi_conf__origin){scope->ini->path, NULL, NULL, 0},
                           "no section '%s' (prefixed by %s)", name, prefixes);
        return fail_at(rs, CSGI_ENOTFOUND, from, "no section '%s' (prefixed by %s) in %s", name,
                       prefixes, scope->ini->path);
    }
    for (size_t i = 0; i < rs->depth; i++)
        if (strcmp(rs->stack[i].file, scope->abs_path) == 0 &&
            strcmp(rs->stack[i].section, section->name) == 0)
            return fail_cycle(rs, scope, section, from, i);
    if (rs->depth == MAX_USE_DEPTH)
        return fail_at(rs, CSGI_EPARSE, from, "references nested deeper than %d sections",
                       MAX_USE_DEPTH);
    rs->stack[rs->depth++] = (frame){scope->abs_path, section->name};
    rc = section_context(rs, scope, type, section, name, global_in, out);
    rs->depth--;
    return rc;
}

/* ---- the API ------------------------------------------------------------------- */

int csgi_conf__loader_new(csgi_conf__loader **out)
{
    if (!out)
        return CSGI_EINVAL;
    csgi_conf__loader *loader = csgi__calloc(1, sizeof(*loader));
    *out = loader;
    if (!loader)
        return CSGI_ENOMEM;
    csgi_arena__init(&loader->arena, NULL);
    return 0;
}

void csgi_conf__loader_free(csgi_conf__loader *loader)
{
    if (!loader)
        return;
    for (cached_file *f = loader->files; f; f = f->next)
        csgi_ini__free(f->ini);
    csgi_arena__clear(&loader->arena);
    csgi__free(loader);
}

/* The file uri names, read with globals, and the section name it asks for
   (name, else uri's fragment, else main). */
static int entry_point(resolver *rs, const char *uri, const char *name,
                       const csgi_conf__list *globals, const csgi_conf__scope **scope,
                       const char **name_out)
{
    csgi_conf__loader *loader = rs->loader;
    if (has_scheme(uri, "config"))
        uri += strlen("config:");
    const char *hash = strchr(uri, '#');
    char *path =
        csgi_arena__strndup(&loader->arena, uri, hash ? (size_t)(hash - uri) : strlen(uri));
    if (!path)
        return fail_nomem(rs);
    if (!name)
        name = hash ? hash + 1 : "main";
    char *name_copy = arena_strdup(loader, name);
    if (!name_copy)
        return fail_nomem(rs);
    *name_out = name_copy;
    return new_scope(rs, path, globals, NULL, scope);
}

int csgi_conf__resolve(csgi_conf__loader *loader, csgi_conf__type type, const char *uri,
                       const char *name, const csgi_conf__list *globals,
                       const csgi_conf__context **out, csgi_load_error *error)
{
    if (out)
        *out = NULL;
    if (!loader || !uri || !out)
        return CSGI_EINVAL;
    resolver rs = {.loader = loader, .error = error};
    const csgi_conf__scope *scope = NULL;
    int rc = entry_point(&rs, uri, name, globals, &scope, &name);
    if (rc != 0)
        return rc;
    csgi_conf__context *context = NULL;
    rc = get_context(&rs, scope, type, name, globals, NULL, &context);
    if (rc == 0)
        *out = context;
    return rc;
}

int csgi_conf__has_section(csgi_conf__loader *loader, csgi_conf__type type, const char *uri,
                           const csgi_conf__list *globals, int *found, csgi_load_error *error)
{
    if (!loader || !uri || !found)
        return CSGI_EINVAL;
    *found = 0;
    resolver rs = {.loader = loader, .error = error};
    const csgi_conf__scope *scope = NULL;
    const char *name = NULL;
    int rc = entry_point(&rs, uri, NULL, globals, &scope, &name);
    const csgi_ini__section *section = NULL;
    if (rc == 0)
        rc = find_section(&rs, scope, type, name, NULL, &section);
    *found = section != NULL;
    return rc;
}

int csgi_conf__resolve_child(csgi_conf__loader *loader, const csgi_conf__context *parent,
                             csgi_conf__type type, const csgi_conf__reference *reference,
                             const csgi_conf__context **out, csgi_load_error *error)
{
    if (out)
        *out = NULL;
    if (!loader || !parent || !reference || !reference->text || !out)
        return CSGI_EINVAL;
    resolver rs = {.loader = loader, .error = error};
    /* The ancestors go on the stack first, so a pipeline, `next` or
       `filter-with` that leads back to one of them is reported as a cycle
       instead of recursing forever in the next layer. */
    size_t ancestors = 0;
    for (const csgi_conf__context *a = parent; a; a = a->parent)
        if (a->section)
            ancestors++;
    if (ancestors >= MAX_USE_DEPTH)
        return fail_at(&rs, CSGI_EPARSE, &reference->origin, "references nested deeper than %d",
                       MAX_USE_DEPTH);
    rs.depth = ancestors;
    for (const csgi_conf__context *a = parent; a; a = a->parent)
        if (a->section)
            rs.stack[--ancestors] = (frame){a->scope->abs_path, a->section};
    csgi_conf__context *context = NULL;
    int rc = get_context(&rs, parent->scope, type, reference->text, &parent->global_conf,
                         &reference->origin, &context);
    if (rc == 0) {
        context->parent = parent;
        *out = context;
    }
    return rc;
}
