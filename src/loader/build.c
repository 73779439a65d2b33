/*
 * Building what a deploy file describes, the way PasteDeploy's loadwsgi.py
 * invokes its contexts:
 *
 *   - app and composite sections (and bare references) call their factory;
 *   - a pipeline resolves all its items first (so a missing filter is
 *     reported before any factory runs), builds its last item as an app,
 *     then wraps it with the other items, right to left;
 *   - a filter-app builds `next`, then applies its own filter;
 *   - `filter-with = X` wraps what the section built in X; a filter that is
 *     itself filtered-with composes (filter2(filter1(app)));
 *   - csgi's `blocking = true` wraps what an app or filter section built
 *     in a threadpool (csgi/threadpool.h), inside its filter-with filters.
 *
 * Only what the entry point reaches is built. Every app built is a new
 * reference; a filter takes the app it wraps, so on failure releasing the
 * innermost piece built so far releases everything. A factory is called
 * only through the signature of the kind it was registered or declared
 * with; a kind other than the section asks for is an error.
 */
#include "common/alloc.h"
#include "loader/loader_private.h"

#include <csgi/threadpool.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- errors ------------------------------------------------------------------ */

void csgi_loader__error_at(csgi_load_error *error, const csgi_conf__origin *origin,
                           const char *format, ...)
{
    va_list args;
    va_start(args, format);
    csgi_load_error__vset(error, origin->file, origin->line, origin->section, origin->key, format,
                          args);
    va_end(args);
}

int csgi_loader__start(csgi_load_error **error, csgi_load_error *scratch, int valid)
{
    if (!*error)
        *error = scratch;
    csgi_load_error__clear(*error);
    if (!valid) {
        csgi_load_error__code(*error, CSGI_EINVAL);
        return CSGI_EINVAL;
    }
    return 0;
}

csgi_conf__origin csgi_loader__factory_origin(const csgi_conf__context *context)
{
    csgi_conf__origin origin = context->factory.origin;
    if (!origin.file) {
        origin.file = context->file;
        origin.line = context->line;
        origin.section = context->section;
    }
    return origin;
}

static void copy_field(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

void csgi_loader__error_locate(csgi_load_error *error, const csgi_conf__context *context, int rc)
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

/* What a factory of kind is, for errors. */
static const char *kind_text(csgi_factory_kind kind)
{
    switch (kind) {
    case CSGI_FACTORY_APP: return "an app factory";
    case CSGI_FACTORY_COMPOSITE: return "a composite factory";
    case CSGI_FACTORY_FILTER: return "a filter factory";
    case CSGI_FACTORY_FILTER_APP: return "a filter-app factory";
    case CSGI_FACTORY_SERVER: return "a server runner";
    }
    return "an unknown kind of factory";
}

int csgi_loader__wrong_factory(const csgi_conf__context *context, const csgi_loader__factory *r,
                               const char *expected, csgi_load_error *error)
{
    csgi_conf__origin origin = csgi_loader__factory_origin(context);
    if (r) {
        csgi_loader__error_at(error, &origin, "'%s' is %s (%s was expected)", context->factory.text,
                              kind_text(r->kind), expected);
        return CSGI_EINVAL;
    }
    csgi_loader__error_at(error, &origin, "unknown factory '%s' (%s was expected)",
                          context->factory.text, expected);
    return CSGI_ENOTFOUND;
}

/* The factory returned rc and app: 0 with *out set, or the error, placed. */
static int factory_result(const csgi_conf__context *context, int rc, csgi_app *app, csgi_app **out,
                          csgi_load_error *error)
{
    if (rc == 0 && !app) {
        csgi_load_error__set(error, NULL, 0, NULL, NULL, "the factory '%s' returned no application",
                             context->factory.text);
        rc = CSGI_EINVAL;
    }
    if (rc != 0) {
        csgi_app_free(app);
        csgi_loader__error_locate(error, context, rc);
        return rc;
    }
    *out = app;
    return 0;
}

/* ---- resolving ---------------------------------------------------------------- */

/* A conf-layer failure that left no text gets its code's. */
static int resolved(int rc, csgi_load_error *error)
{
    if (rc != 0)
        csgi_load_error__code(error, rc);
    return rc;
}

static int resolve_child(csgi_loader *loader, const csgi_conf__context *parent,
                         csgi_conf__type type, const csgi_conf__reference *reference,
                         const csgi_conf__context **out, csgi_load_error *error)
{
    return resolved(csgi_conf__resolve_child(loader->conf, parent, type, reference, out, error),
                    error);
}

int csgi_loader__resolve(csgi_loader *loader, csgi_conf__type type, const char *uri,
                         const csgi_conf__context **out, csgi_load_error *error)
{
    const csgi_conf__list *globals = loader->globals.first ? &loader->globals : NULL;
    return resolved(csgi_conf__resolve(loader->conf, type, uri, NULL, globals, out, error), error);
}

/* ---- factories ------------------------------------------------------------------ */

static int apply_filter(csgi_loader *loader, const csgi_conf__context *filter, csgi_app *next,
                        csgi_app **out, csgi_load_error *error);

static int no_factory(const csgi_conf__context *context, csgi_load_error *error)
{
    csgi_load_error__set(error, context->file, context->line, context->section, NULL,
                         "no factory for this section");
    return CSGI_EPARSE;
}

/* After a lookup that left rc and r: an unknown factory (not found, or
   nothing registered) becomes a stub when the loader stubs them
   (csgi_loader__stub_unknown). Returns 1 with *rc the stub's outcome when
   it did, else 0 with *rc unchanged. */
static int unknown_stubbed(csgi_loader *loader, const csgi_conf__context *context, int *rc,
                           const csgi_loader__factory *r, csgi_app **out, csgi_load_error *error)
{
    if (*rc != CSGI_ENOTFOUND && (*rc != 0 || r))
        return 0;
    int stub = CSGI_ENOTFOUND;
    if (!csgi_loader__stub_unknown(loader, context, &stub, out, error))
        return 0;
    *rc = stub;
    return 1;
}

/* Call the app (or composite) factory of an app, composite or reference context. */
static int call_app_factory(csgi_loader *loader, const csgi_conf__context *context, csgi_app **out,
                            csgi_load_error *error)
{
    if (!context->factory.text)
        return no_factory(context, error);
    csgi_loader__factory found;
    const csgi_loader__factory *r = NULL;
    int rc = csgi_loader__lookup(loader, context, CSGI_LOADER__WANT_APP, &found, &r, error);
    if (unknown_stubbed(loader, context, &rc, r, out, error))
        return rc;
    if (rc != 0)
        return rc;
    int composite = csgi_loader__wants_composite(context);
    if (!r || !r->app_factory)
        return csgi_loader__wrong_factory(
            context, r, composite ? "a composite factory" : "an app factory", error);

    csgi_conf global = csgi_loader__conf(loader, &context->global_conf);
    csgi_conf local = csgi_loader__conf(loader, &context->local_conf);
    const csgi_conf__context *saved = loader->composite;
    /* App and composite factories share a signature: a factory registered
       as a composite, or called for a composite, may build named apps. */
    loader->composite = r->kind == CSGI_FACTORY_COMPOSITE || composite ? context : NULL;
    csgi_app *app = NULL;
    rc = r->app_factory(&app, loader, &global, &local, error);
    loader->composite = saved;
    return factory_result(context, rc, app, out, error);
}

/* Call the filter factory of a filter context (or a filter-app's filter). Takes next. */
static int call_filter_factory(csgi_loader *loader, const csgi_conf__context *context,
                               csgi_app *next, csgi_app **out, csgi_load_error *error)
{
    if (!context->factory.text) {
        csgi_app_free(next);
        return no_factory(context, error);
    }
    csgi_loader__factory found;
    const csgi_loader__factory *r = NULL;
    int rc = csgi_loader__lookup(loader, context, CSGI_LOADER__WANT_FILTER, &found, &r, error);
    if (unknown_stubbed(loader, context, &rc, r, NULL, error)) {
        if (rc == 0)
            *out = next; /* a stub filter passes requests on */
        else
            csgi_app_free(next);
        return rc;
    }
    if (rc == 0 && (!r || !r->filter_factory))
        rc = csgi_loader__wrong_factory(context, r, "a filter factory", error);
    if (rc != 0) {
        csgi_app_free(next);
        return rc;
    }
    csgi_conf global = csgi_loader__conf(loader, &context->global_conf);
    csgi_conf local = csgi_loader__conf(loader, &context->local_conf);
    const csgi_conf__context *saved = loader->composite;
    loader->composite = NULL;
    csgi_app *app = NULL;
    rc = r->filter_factory(&app, loader, &global, &local, next, error);
    loader->composite = saved;
    return factory_result(context, rc, app, out, error);
}

/* ---- building ------------------------------------------------------------------- */

/* `blocking = true` (csgi's key, in an app or filter section): what the
   section built runs on a pool thread of its own, with the threadpool's
   defaults (csgi/threadpool.h). Takes app. */
static int apply_blocking(csgi_loader *loader, const csgi_conf__context *context, csgi_app *app,
                          csgi_app **out, csgi_load_error *error)
{
    *out = app;
    if (!context->blocking.text)
        return 0;
    /* Read as any boolean key is, so that a bad value names its line. */
    csgi_conf__entry entry = {NULL, "blocking", context->blocking.text, context->blocking.origin};
    csgi_conf__list list = {0};
    list.first = list.last = &entry;
    list.count = 1;
    csgi_conf conf = csgi_loader__conf(loader, &list);
    int blocking = 0;
    int rc = csgi_conf_asbool(&conf, "blocking", 0, &blocking, error);
    if (rc == 0 && blocking)
        rc = csgi_threadpool_new(out, app, NULL);
    else if (rc != 0)
        csgi_app_free(app);
    if (rc != 0) {
        *out = NULL;
        csgi_loader__error_locate(error, context, rc);
    }
    return rc;
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

/* Apply a filter context to next (taken): its factory, then its own filter-with
   filters around it (PasteDeploy's "filtering a filter" composes). */
static int apply_filter(csgi_loader *loader, const csgi_conf__context *filter, csgi_app *next,
                        csgi_app **out, csgi_load_error *error)
{
    csgi_app *app = NULL;
    csgi_loader__describe_node *saved = loader->describing;
    int rc = csgi_loader__describe_enter(loader, filter, 1);
    if (rc != 0) {
        csgi_app_free(next);
        csgi_load_error__code(error, rc);
        return rc;
    }
    rc = call_filter_factory(loader, filter, next, &app, error);
    loader->describing = saved;
    if (rc == 0)
        rc = apply_blocking(loader, filter, app, &app, error);
    if (rc != 0)
        return rc;
    return apply_filter_with(loader, filter, filter->filter_with, app, out, error);
}

static int build_pipeline(csgi_loader *loader, const csgi_conf__context *context, csgi_app **out,
                          csgi_load_error *error)
{
    size_t n = context->pipeline_count;
    if (n == 0) {
        csgi_load_error__set(error, context->file, context->line, context->section, "pipeline",
                             "an empty pipeline");
        return CSGI_EPARSE;
    }
    /* Every item first: a missing name fails before any factory runs. */
    const csgi_conf__context **items = csgi__calloc(n, sizeof(*items));
    if (!items) {
        csgi_load_error__code(error, CSGI_ENOMEM);
        return CSGI_ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = resolve_child(loader, context, i + 1 < n ? CSGI_CONF__FILTER : CSGI_CONF__APP,
                           &context->pipeline[i], &items[i], error);
    csgi_app *app = NULL;
    if (rc == 0)
        rc = csgi_loader__build_app(loader, items[n - 1], &app, error);
    for (size_t i = n - 1; rc == 0 && i-- > 0;)
        rc = apply_filter(loader, items[i], app, &app, error);
    csgi__free(items);
    if (rc == 0)
        *out = app;
    return rc;
}

int csgi_loader__build_app(csgi_loader *loader, const csgi_conf__context *context, csgi_app **out,
                           csgi_load_error *error)
{
    csgi_app *app = NULL;
    csgi_loader__describe_node *saved = loader->describing;
    int rc = csgi_loader__describe_enter(loader, context, 0);
    if (rc != 0) {
        csgi_load_error__code(error, rc);
        return rc;
    }
    switch (context->kind) {
    case CSGI_CONF__KIND_PIPELINE: rc = build_pipeline(loader, context, &app, error); break;
    case CSGI_CONF__KIND_FILTER_APP: {
        const csgi_conf__context *next = NULL;
        csgi_app *inner = NULL;
        rc = resolve_child(loader, context, CSGI_CONF__APP, &context->next_app, &next, error);
        if (rc == 0)
            rc = csgi_loader__build_app(loader, next, &inner, error);
        if (rc == 0)
            rc = call_filter_factory(loader, context, inner, &app, error);
        break;
    }
    case CSGI_CONF__KIND_NONE:
    case CSGI_CONF__KIND_APP:
    case CSGI_CONF__KIND_COMPOSITE: rc = call_app_factory(loader, context, &app, error); break;
    default:
        csgi_load_error__set(error, context->file, context->line, context->section, NULL,
                             "a %s section is not an application",
                             csgi_conf__kind_name(context->kind));
        rc = CSGI_EINVAL;
        break;
    }
    loader->describing = saved;
    if (rc == 0)
        rc = apply_blocking(loader, context, app, &app, error);
    if (rc != 0)
        return rc;
    return apply_filter_with(loader, context, context->filter_with, app, out, error);
}

/* ---- the API ----------------------------------------------------------------------- */

/* Build context outside any composite (what it builds cannot name the
   apps of the composite that asked for it): an application, or with next
   (taken) a filter around next. */
static int build_outside(csgi_loader *loader, const csgi_conf__context *context, csgi_app *next,
                         csgi_app **out, csgi_load_error *error)
{
    const csgi_conf__context *composite = loader->composite;
    loader->composite = NULL;
    int rc = next ? apply_filter(loader, context, next, out, error)
                  : csgi_loader__build_app(loader, context, out, error);
    loader->composite = composite;
    return rc;
}

int csgi_loader_load_app(csgi_app **out, csgi_loader *loader, const char *uri,
                         csgi_load_error *error)
{
    csgi_load_error scratch;
    if (out)
        *out = NULL;
    int rc = csgi_loader__start(&error, &scratch, loader && uri && out);
    const csgi_conf__context *context = NULL;
    if (rc == 0)
        rc = csgi_loader__resolve(loader, CSGI_CONF__APP, uri, &context, error);
    if (rc != 0)
        return rc;
    return build_outside(loader, context, NULL, out, error);
}

/* Resolve name, written in the composite being built, as type. */
static int resolve_in_composite(csgi_loader *loader, const char *name, csgi_conf__type type,
                                const char *function, const csgi_conf__context **out,
                                csgi_load_error *error)
{
    const csgi_conf__context *composite = loader->composite;
    if (!composite) {
        csgi_load_error__set(error, NULL, 0, NULL, NULL,
                             "%s is for composite factories while they run", function);
        return CSGI_ESTATE;
    }
    /* Contexts keep the name: give it the loader's lifetime. */
    csgi_conf__list copy = {0};
    if (csgi_conf__list_add(loader->conf, &copy, "name", name) != 0) {
        csgi_load_error__code(error, CSGI_ENOMEM);
        return CSGI_ENOMEM;
    }
    csgi_conf__reference reference = {0};
    reference.text = copy.first->value;
    reference.origin = csgi_loader__factory_origin(composite);
    return resolve_child(loader, composite, type, &reference, out, error);
}

int csgi_loader_get_app(csgi_app **out, csgi_loader *loader, const char *name,
                        csgi_load_error *error)
{
    if (out)
        *out = NULL;
    if (!loader || !name || !out) {
        csgi_load_error__code(error, CSGI_EINVAL);
        return CSGI_EINVAL;
    }
    const csgi_conf__context *context = NULL;
    int rc =
        resolve_in_composite(loader, name, CSGI_CONF__APP, "csgi_loader_get_app", &context, error);
    if (rc != 0)
        return rc;
    return build_outside(loader, context, NULL, out, error);
}

int csgi_loader_get_filter(csgi_app **out, csgi_loader *loader, const char *name, csgi_app *next,
                           csgi_load_error *error)
{
    if (out)
        *out = NULL;
    if (!loader || !name || !out || !next) {
        csgi_app_free(next);
        csgi_load_error__code(error, CSGI_EINVAL);
        return CSGI_EINVAL;
    }
    const csgi_conf__context *context = NULL;
    int rc = resolve_in_composite(loader, name, CSGI_CONF__FILTER, "csgi_loader_get_filter",
                                  &context, error);
    if (rc != 0) {
        csgi_app_free(next);
        return rc;
    }
    return build_outside(loader, context, next, out, error);
}
