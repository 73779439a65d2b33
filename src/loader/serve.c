/*
 * The [server:] section: csgi_loader_serve builds its runner and runs it;
 * csgi_loader_check_server checks it without serving (csgi-serve --check);
 * csgi_loader_has_server says whether the file has one, so that callers
 * never read the file themselves.
 */
#include "loader/loader_private.h"

#include <string.h>

/* The runner of the server section uri names: *context and *r set. */
static int find_runner(csgi_loader *loader, const char *uri, csgi_loader__factory *found,
                       const csgi_conf__context **context, const csgi_loader__factory **r,
                       csgi_load_error *error)
{
    int rc = csgi_loader__resolve(loader, CSGI_CONF__SERVER, uri, context, error);
    if (rc != 0)
        return rc;
    const csgi_conf__context *c = *context;
    if (!c->factory.text) {
        csgi_load_error__set(error, c->file, c->line, c->section, NULL,
                             "no factory for this section");
        return CSGI_EPARSE;
    }
    rc = csgi_loader__lookup(loader, c, CSGI_LOADER__WANT_SERVER, found, r, error);
    if (rc == 0 && (!*r || !(*r)->server_runner))
        rc = csgi_loader__wrong_factory(c, *r, "a server runner", error);
    return rc;
}

int csgi_loader_serve(csgi_loader *loader, const char *uri, csgi_app *app, csgi_load_error *error)
{
    csgi_load_error scratch;
    int rc = csgi_loader__start(&error, &scratch, loader && uri);
    if (rc == 0 && !app) {
        csgi_load_error__code(error, CSGI_EINVAL);
        rc = CSGI_EINVAL;
    }
    csgi_loader__factory found;
    const csgi_loader__factory *r = NULL;
    const csgi_conf__context *context = NULL;
    if (rc == 0)
        rc = find_runner(loader, uri, &found, &context, &r, error);
    if (rc != 0) {
        csgi_app_free(app);
        return rc;
    }
    csgi_conf global = csgi_loader__conf(loader, &context->global_conf);
    csgi_conf local = csgi_loader__conf(loader, &context->local_conf);
    rc = r->server_runner(loader, &global, &local, app, error);
    if (rc != 0)
        csgi_loader__error_locate(error, context, rc);
    return rc;
}

int csgi_loader_check_server(csgi_loader *loader, const char *uri, csgi_load_error *error)
{
    csgi_load_error scratch;
    int rc = csgi_loader__start(&error, &scratch, loader && uri);
    csgi_loader__factory found;
    const csgi_loader__factory *r = NULL;
    const csgi_conf__context *context = NULL;
    if (rc == 0)
        rc = find_runner(loader, uri, &found, &context, &r, error);
    if (rc != 0 || !r->server_check)
        return rc;
    csgi_conf local = csgi_loader__conf(loader, &context->local_conf);
    rc = r->server_check(&local, error);
    if (rc != 0)
        csgi_loader__error_locate(error, context, rc);
    return rc;
}

int csgi_loader_has_server(csgi_loader *loader, const char *uri, csgi_load_error *error)
{
    csgi_load_error scratch;
    int rc = csgi_loader__start(&error, &scratch, loader && uri);
    int found = 0;
    if (rc == 0) {
        const csgi_conf__list *globals = loader->globals.first ? &loader->globals : NULL;
        rc = csgi_conf__has_section(loader->conf, CSGI_CONF__SERVER, uri, globals, &found, error);
        if (rc != 0)
            csgi_load_error__code(error, rc);
    }
    return rc != 0 ? rc : found;
}
