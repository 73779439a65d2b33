/*
 * The [server:] section: csgi_loader_serve builds its runner and runs it;
 * csgi_loader_check_server checks it without serving (csgi-serve --check);
 * csgi_loader_has_server says whether the file has one, so that callers
 * never read the file themselves.
 */
#include "loader/loader_private.h"

#include <string.h>

/* A server section's runner, as find_runner() finds it. */
typedef struct server_runner {
    csgi_loader__factory found; /* room csgi_loader__lookup() may fill */
    const csgi_loader__factory *r;
    const csgi_conf__context *context;
} server_runner;

/* Start a serve or check (csgi_loader__start, valid: the caller's
   arguments are usable) and find the runner of the server section uri
   names: *error and out set. */
static int find_runner(csgi_loader *loader, const char *uri, int valid, csgi_load_error **error,
                       csgi_load_error *scratch, server_runner *out)
{
    out->r = NULL;
    out->context = NULL;
    int rc = csgi_loader__start(error, scratch, valid);
    if (rc == 0)
        rc = csgi_loader__resolve(loader, CSGI_CONF__SERVER, uri, &out->context, *error);
    if (rc != 0)
        return rc;
    const csgi_conf__context *c = out->context;
    if (!c->factory.text) {
        csgi_load_error__set(*error, c->file, c->line, c->section, NULL,
                             "no factory for this section");
        return CSGI_EPARSE;
    }
    rc = csgi_loader__lookup(loader, c, CSGI_LOADER__WANT_SERVER, &out->found, &out->r, *error);
    if (rc == 0 && (!out->r || !out->r->server_runner))
        rc = csgi_loader__wrong_factory(c, out->r, "a server runner", *error);
    return rc;
}

/* What the runner's call returned, its error located at the section. */
static int runner_result(const server_runner *runner, csgi_load_error *error, int rc)
{
    if (rc != 0)
        csgi_loader__error_locate(error, runner->context, rc);
    return rc;
}

int csgi_loader_serve(csgi_loader *loader, const char *uri, csgi_app *app, csgi_load_error *error)
{
    csgi_load_error scratch;
    server_runner runner;
    int rc = find_runner(loader, uri, loader && uri && app, &error, &scratch, &runner);
    if (rc != 0) {
        csgi_app_free(app);
        return rc;
    }
    csgi_conf global = csgi_loader__conf(loader, &runner.context->global_conf);
    csgi_conf local = csgi_loader__conf(loader, &runner.context->local_conf);
    return runner_result(&runner, error,
                         runner.r->server_runner(loader, &global, &local, app, error));
}

int csgi_loader_check_server(csgi_loader *loader, const char *uri, csgi_load_error *error)
{
    csgi_load_error scratch;
    server_runner runner;
    int rc = find_runner(loader, uri, loader && uri, &error, &scratch, &runner);
    if (rc != 0 || !runner.r->server_check)
        return rc;
    csgi_conf local = csgi_loader__conf(loader, &runner.context->local_conf);
    return runner_result(&runner, error, runner.r->server_check(&local, error));
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
