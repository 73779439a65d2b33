/*
 * The [server:] section: csgi_loader_serve builds its runner and runs it;
 * csgi_loader_check_server checks it without serving (csgi-serve --check);
 * csgi_loader_has_server says whether the file has one, so that callers
 * never read the file themselves; csgi_loader_serve_app builds the
 * application and serves it, with worker processes when the built-in
 * server's section asks for them (then the file is a source of
 * applications, csgi_server_source_type: each load of it is a generation).
 */
#include "common/alloc.h"
#include "gateway/server_private.h"
#include "loader/loader_private.h"

#include <csgi/server.h>

#include <stdio.h>
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
    return runner_result(&runner, error, runner.r->server_check(loader, &local, error));
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

/* ---- csgi_loader_serve_app ------------------------------------------------------------ */

/* The deploy file as a source of applications for worker processes. */
typedef struct file_source {
    csgi_loader *loader; /* borrowed: the caller's, alive while the server runs */
    char *app_uri;
    char *server_uri;
    char address[300];         /* the first generation's, to warn when a reload changes it */
    csgi_server__tls_conf tls; /* the first generation's: its listeners' TLS */
    int allow_root;            /* the first generation's allow_root */
    int loaded;
} file_source;

/* One read of the file: the files as the master read them (workers build
   from these, not from what the disk holds by then), and with preload the
   application built in the master. */
typedef struct file_generation {
    csgi_conf__loader *conf;
    csgi_app *app;
} file_generation;

/* The local conf of the server section of the loader's files (an empty
   one when there is none); *has 1 when there is one. The context of a
   section found is set for errors. */
static int server_conf(csgi_loader *loader, const char *server_uri, csgi_conf *out, int *has,
                       server_runner *runner, csgi_load_error *error)
{
    static const csgi_conf__list empty;
    *out = csgi_loader__conf(loader, &empty);
    runner->context = NULL;
    int rc = csgi_loader_has_server(loader, server_uri, error);
    if (rc < 0)
        return rc;
    *has = rc;
    if (!*has)
        return 0;
    csgi_load_error scratch;
    rc = find_runner(loader, server_uri, 1, &error, &scratch, runner);
    if (rc != 0)
        return rc;
    *out = csgi_loader__conf(loader, &runner->context->local_conf);
    return 0;
}

static void file_release(void *state, void *generation)
{
    (void)state;
    file_generation *g = generation;
    if (!g)
        return;
    csgi_app_free(g->app);
    csgi_conf__loader_free(g->conf);
    csgi__free(g);
}

/* 1 when a section's TLS keys say something else than before (the files
   themselves are read again on every reload; their names and the other
   keys are the listeners' from the start). */
static int tls_changed(const csgi_server__tls_conf *before, const csgi_server__tls_conf *now)
{
    csgi_tls_options a, b;
    csgi_tls_certificate certs_a[CSGI_SERVER__MAX_CERTIFICATES],
        certs_b[CSGI_SERVER__MAX_CERTIFICATES];
    if (before->enabled != now->enabled)
        return 1;
    if (!now->enabled)
        return 0;
    csgi_server__tls_conf_options(before, &a, certs_a);
    csgi_server__tls_conf_options(now, &b, certs_b);
    if (a.certificate_count != b.certificate_count || a.verify_client != b.verify_client ||
        a.handshake_timeout_ms != b.handshake_timeout_ms ||
        a.ticket_rotation_s != b.ticket_rotation_s)
        return 1;
    const char *texts_a[] = {a.ca_file, a.min_protocol, a.ciphers, a.ciphersuites};
    const char *texts_b[] = {b.ca_file, b.min_protocol, b.ciphers, b.ciphersuites};
    for (size_t i = 0; i < 4; i++)
        if (!texts_a[i] != !texts_b[i] || (texts_a[i] && strcmp(texts_a[i], texts_b[i]) != 0))
            return 1;
    for (size_t i = 0; i < a.certificate_count; i++) {
        const char *ka = certs_a[i].key_file, *kb = certs_b[i].key_file;
        if (strcmp(certs_a[i].cert_file, certs_b[i].cert_file) != 0 || !ka != !kb ||
            (ka && strcmp(ka, kb) != 0))
            return 1;
    }
    return 0;
}

static int file_load(void *state, void **out, csgi_server_options *options, csgi_load_error *error)
{
    file_source *source = state;
    csgi_loader *loader = source->loader;
    *out = NULL;
    file_generation *g = csgi__calloc(1, sizeof(*g));
    int rc = g ? csgi_conf__loader_new(&g->conf) : CSGI_ENOMEM;
    if (rc != 0) {
        csgi__free(g);
        return rc;
    }
    /* The loader reads through g's conf: a fresh read of every file. */
    csgi_conf__loader *own = loader->conf;
    loader->conf = g->conf;
    csgi_conf local;
    int has = 0;
    server_runner runner;
    rc = server_conf(loader, source->server_uri, &local, &has, &runner, error);
    if (rc == 0 && has && runner.r->server_runner != csgi_server__http_runner) {
        csgi_load_error__set(error, runner.context->file, runner.context->line,
                             runner.context->section, NULL,
                             "the server is no longer egg:csgi#http: a restart is needed");
        rc = CSGI_EINVAL;
    }
    csgi_server__http_settings settings;
    if (rc == 0 && (rc = csgi_server__http_read(&settings, loader, &local, error)) != 0 &&
        runner.context)
        csgi_loader__error_locate(error, runner.context, rc);
    if (rc == 0 && settings.preload)
        rc = csgi_loader_load_app(&g->app, loader, source->app_uri, error);
    loader->conf = own;
    if (rc != 0) {
        file_release(source, g);
        return rc;
    }
    if (!source->loaded) {
        snprintf(source->address, sizeof(source->address), "%s", settings.address);
        source->tls = settings.tls;
        source->allow_root = settings.allow_root;
        source->loaded = 1;
    } else if (!loader->listen_count && strcmp(source->address, settings.address) != 0) {
        csgi_log__write(settings.options.log, settings.options.log_userdata, CSGI_LOG__WARN,
                        CSGI_LOG__WARN,
                        "reload: the server now says %s; the workers keep the listeners of %s "
                        "(a restart moves them)",
                        settings.address, source->address);
    }
    if (source->loaded && tls_changed(&source->tls, &settings.tls))
        csgi_log__write(settings.options.log, settings.options.log_userdata, CSGI_LOG__WARN,
                        CSGI_LOG__WARN,
                        "reload: the TLS keys changed; the listeners keep those of the start "
                        "and read their files again (a restart or USR2 changes them)");
    *options = settings.options;
    *out = g;
    return 0;
}

static int file_build(void *state, csgi_app **out, void *generation, csgi_load_error *error)
{
    file_source *source = state;
    file_generation *g = generation;
    if (g->app) {
        *out = csgi_app_ref(g->app);
        return 0;
    }
    csgi_conf__loader *own = source->loader->conf;
    source->loader->conf = g->conf;
    int rc = csgi_loader_load_app(out, source->loader, source->app_uri, error);
    source->loader->conf = own;
    return rc;
}

static void file_free(void *state)
{
    file_source *source = state;
    csgi__free(source->app_uri);
    csgi__free(source->server_uri);
    csgi__free(source);
}

static const csgi_server_source_type file_source_type = {"the deploy file", file_load, file_build,
                                                         file_release, file_free};

/* Serve with workers: the file is their source. */
static int serve_workers(csgi_loader *loader, const char *app_uri, const char *server_uri,
                         csgi_load_error *error)
{
    file_source *source = csgi__calloc(1, sizeof(*source));
    if (source) {
        source->loader = loader;
        source->app_uri = csgi__strndup(app_uri, strlen(app_uri));
        source->server_uri = csgi__strndup(server_uri, strlen(server_uri));
    }
    if (!source || !source->app_uri || !source->server_uri) {
        if (source)
            file_free(source);
        csgi_load_error__code(error, CSGI_ENOMEM);
        return CSGI_ENOMEM;
    }
    csgi_server *server = NULL;
    int rc = csgi_server_new_source(&server, &file_source_type, source, NULL, error);
    if (rc != 0)
        return rc;
    char address[sizeof(source->address)];
    snprintf(address, sizeof(address), "%s", source->address);
    csgi_server__tls_conf tls = source->tls;
    return csgi_server__http_serve(server, loader, address, &tls, source->allow_root, error);
}

int csgi_loader_serve_app(csgi_loader *loader, const char *app_uri, const char *server_uri,
                          csgi_load_error *error)
{
    csgi_load_error scratch;
    int rc = csgi_loader__start(&error, &scratch, loader && app_uri && server_uri);
    if (rc != 0)
        return rc;
    csgi_conf local;
    int has = 0;
    server_runner runner;
    rc = server_conf(loader, server_uri, &local, &has, &runner, error);
    if (rc != 0)
        return rc;
    int built_in = !has || runner.r->server_runner == csgi_server__http_runner;
    if (!built_in && loader->server_options.count) {
        csgi_load_error__set(error, runner.context->file, runner.context->line,
                             runner.context->section, loader->server_options.first->name,
                             "given for egg:csgi#http, but this server has another runner");
        return CSGI_EINVAL;
    }
    csgi_server__http_settings settings;
    if (built_in && (rc = csgi_server__http_read(&settings, loader, &local, error)) != 0)
        return has ? runner_result(&runner, error, rc) : rc;
    if (built_in && settings.options.workers)
        return serve_workers(loader, app_uri, server_uri, error);

    /* One process: the application first, then the runner, as ever. */
    csgi_app *app = NULL;
    rc = csgi_loader_load_app(&app, loader, app_uri, error);
    if (rc != 0)
        return rc;
    if (has)
        return csgi_loader_serve(loader, server_uri, app, error);
    return csgi_server__http_runner(loader, &local, &local, app, error);
}
