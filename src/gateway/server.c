/*
 * The public server object (include/csgi/server.h): an engine whose
 * requests run an application through the gateway; the one way to serve
 * until a signal (csgi_server_run_until_signal), which csgi_serve(), the
 * built-in INI server runner (egg:csgi#http) and csgi-serve all use; the
 * worker side of worker processes (their master is master.c); the access
 * log each serving process keeps (http/access_log.h); and that runner,
 * beside the server it runs (its conf keys are documented in csgi/loader.h
 * and docs/server.md).
 */
#include "common/alloc.h"
#include "common/error_page.h"
#include "common/options.h"
#include "gateway/gateway.h"
#include "common/log.h"
#include "gateway/server_private.h"
#include "http/engine.h"
#include "http/tls.h"
#include "loader/loader_private.h"

#include <csgi/server.h>
#include <csgi/tls.h>

#include <event2/event.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

_Static_assert((int)CSGI_LOG_ERROR == (int)CSGI_LOG__ERROR &&
                   (int)CSGI_LOG_DEBUG == (int)CSGI_LOG__DEBUG,
               "public and engine log levels are the same numbers");

/* The grace period of a stop by signal, unless the options say otherwise. */
#define DEFAULT_GRACE_MS 10000u

/* Most worker processes a master keeps. */
#define MAX_WORKERS 1024u

void csgi_server_options_init(csgi_server_options *options)
{
    static const csgi_server_options defaults = CSGI_SERVER_OPTIONS_INIT;
    *options = defaults;
}

/* Where each version's fields end: a struct of version v holds the bytes
   before version_end[v]. */
static const size_t version_end[CSGI_SERVER_OPTIONS_VERSION + 1] = {
    0,
    offsetof(csgi_server_options, grace_timeout_ms),
    offsetof(csgi_server_options, error_render),
    offsetof(csgi_server_options, workers),
    offsetof(csgi_server_options, log_level),
    offsetof(csgi_server_options, body_min_rate),
    offsetof(csgi_server_options, backlog),
    offsetof(csgi_server_options, busy_timeout_ms),
    sizeof(csgi_server_options),
};

/* *out: the options at the current version, the defaults for the fields
   the caller's version does not have (in NULL: all defaults). */
static int options_upgrade(const csgi_server_options *in, csgi_server_options *out)
{
    csgi_server_options_init(out);
    if (!in)
        return 0;
    if (!csgi_options__version_ok(in->version, CSGI_SERVER_OPTIONS_VERSION))
        return CSGI_EINVAL;
    memcpy(out, in, version_end[in->version]);
    out->version = CSGI_SERVER_OPTIONS_VERSION;
    if (out->log_level < CSGI_LOG_ERROR || out->log_level > CSGI_LOG_DEBUG)
        return CSGI_EINVAL;
    if (out->backlog < 0 || out->unix_mode > 07777 ||
        (out->umask > 0777 && out->umask != CSGI_SERVER_UMASK_ZERO))
        return CSGI_EINVAL;
    if (out->busy_timeout_ms && !out->workers)
        return CSGI_EINVAL; /* nobody would replace the process it kills */
    return out->workers > MAX_WORKERS ? CSGI_EINVAL : 0;
}

/* Engine options from server options (upgraded): 0 means the engine's
   default. */
static void engine_options(const csgi_server_options *in, csgi_http__options *out,
                           unsigned *grace_ms)
{
    csgi_http__options_init(out);
    out->log = csgi_log__stderr;
    *grace_ms = DEFAULT_GRACE_MS;
#define TAKE(field, target) \
    if (in->field)          \
    out->target = in->field
    TAKE(threads, threads);
    TAKE(max_connections, max_connections);
    TAKE(max_request_line, limits.max_request_line);
    TAKE(max_header_line, limits.max_header_line);
    TAKE(max_head, limits.max_head);
    TAKE(max_headers, limits.max_headers);
    TAKE(header_timeout_ms, header_timeout_ms);
    TAKE(body_timeout_ms, body_timeout_ms);
    TAKE(keepalive_timeout_ms, keepalive_timeout_ms);
    TAKE(send_timeout_ms, send_timeout_ms);
    TAKE(max_keepalive_requests, max_keepalive_requests);
    TAKE(server_header, server_header);
    TAKE(backlog, backlog);
#undef TAKE
    if (in->max_body)
        out->max_body = in->max_body == UINT64_MAX ? 0 : in->max_body;
    out->log_level = in->log_level;
    if (in->verbose && out->log_level < CSGI_LOG__INFO) /* verbose: info at least */
        out->log_level = CSGI_LOG__INFO;
    if (in->log) {
        out->log = in->log;
        out->log_userdata = in->log_userdata;
    }
    if (in->grace_timeout_ms)
        *grace_ms = in->grace_timeout_ms;
    out->error_render = in->error_render;
    out->error_render_userdata = in->error_render_userdata;
    if (in->body_min_rate)
        out->body_min_rate = in->body_min_rate == CSGI_SERVER_NO_MIN_RATE ? 0 : in->body_min_rate;
}

/* In a worker with a request limit: count, and tell the master once the
   limit is reached (it starts a replacement, then stops this worker). */
static void counting_on_request(csgi_http__request *req, void *userdata)
{
    csgi_server *server = userdata;
    if (atomic_fetch_add(&server->requests, 1) + 1 == server->request_limit)
        csgi_server__tell_master(server->message_fd, CSGI_SERVER__RECYCLE, 0, NULL);
    csgi_gateway__on_request(req, &server->gateway);
}

/* How a server's access log is made. */
typedef enum access_log_use {
    LOG_ALONE,  /* this process alone writes to it */
    LOG_SHARED, /* a worker: other processes write to the same file */
    LOG_CHECK   /* a master: opened to show its errors before any fork, then closed */
} access_log_use;

/* The access log the options ask for, or none (*out NULL). why: what was
   wrong. */
static int make_access_log(const csgi_server_options *in, const csgi_http__options *engine_opts,
                           access_log_use use, csgi_access_log **out, char *why, size_t why_size)
{
    *out = NULL;
    if (!in->access_log || !in->access_log[0])
        return 0;
    csgi_access_log__config config = {
        .destination = in->access_log,
        .format = in->access_log_format,
        .buffer = in->access_log_buffer,
        .flush_ms = in->access_log_flush_ms,
        .threads = (int)engine_opts->threads,
        .shared = use == LOG_SHARED,
        .error_log = engine_opts->log,
        .error_userdata = engine_opts->log_userdata,
        .error_level = engine_opts->log_level,
    };
    int err = csgi_access_log__new(out, &config, why, why_size);
    if (err == 0 && use == LOG_CHECK) {
        /* Nothing was written to it: nothing is lost, nothing is copied
           into the workers, which open their own. */
        csgi_access_log__free(*out);
        *out = NULL;
    }
    return err;
}

/* Log a problem with the options, through their log. */
static void log_options_error(const csgi_server_options *options, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void log_options_error(const csgi_server_options *options, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    csgi_log__vwrite(options && options->log ? options->log : csgi_log__stderr,
                     options ? options->log_userdata : NULL, CSGI_LOG__ERROR, CSGI_LOG__ERROR,
                     format, args);
    va_end(args);
}

/* The server's copy of the options about listeners and the pid file:
   names resolved now, so that a typo shows before anything listens. */
static int take_process_options(csgi_server *server, const csgi_server_options *options)
{
    server->unix_mode = options->unix_mode;
    server->unix_uid = (uid_t)-1;
    server->unix_gid = (gid_t)-1;
    if (options->unix_owner &&
        csgi_server__user_id(options->unix_owner, &server->unix_uid, NULL) != 0) {
        log_options_error(options, "unix_owner: no user '%s'", options->unix_owner);
        return CSGI_EINVAL;
    }
    if (options->unix_group && csgi_server__group_id(options->unix_group, &server->unix_gid) != 0) {
        log_options_error(options, "unix_group: no group '%s'", options->unix_group);
        return CSGI_EINVAL;
    }
    server->run_uid = (uid_t)-1;
    server->run_gid = (gid_t)-1;
    if (options->user && options->user[0]) {
        gid_t login_group = (gid_t)-1;
        if (csgi_server__user_id(options->user, &server->run_uid, &login_group) != 0 ||
            login_group == (gid_t)-1) {
            log_options_error(options, "user: no user '%s'", options->user);
            return CSGI_EINVAL;
        }
        server->run_gid = login_group;
        server->run_user = csgi__strndup(options->user, strlen(options->user));
        if (!server->run_user)
            return CSGI_ENOMEM;
    }
    if (options->group && options->group[0] &&
        csgi_server__group_id(options->group, &server->run_gid) != 0) {
        log_options_error(options, "group: no group '%s'", options->group);
        return CSGI_EINVAL;
    }
    if (options->pidfile && options->pidfile[0]) {
        server->pidfile = csgi__strndup(options->pidfile, strlen(options->pidfile));
        if (!server->pidfile)
            return CSGI_ENOMEM;
    }
    const char *error_log = options->error_log;
    if (error_log && error_log[0] && strcmp(error_log, "-") != 0) {
        server->error_log = csgi__strndup(error_log, strlen(error_log));
        if (!server->error_log)
            return CSGI_ENOMEM;
    }
    return 0;
}

/* What a worker process's server has besides its options. */
typedef struct worker_params {
    unsigned long long request_limit; /* max_requests plus jitter; 0 = none */
    _Atomic long long *heartbeats;    /* one per loop (the master's shared memory), or NULL */
    unsigned heartbeat_ms;
} worker_params;

/* A server with an engine: options upgraded; with workers, the engine
   only holds the listeners (one loop's options: no SO_REUSEPORT) and the
   access log is only checked. worker: NULL outside a worker process. why:
   what was wrong with the access log ("" when it was something else). */
static int server_new(csgi_server **out, csgi_app *app, const csgi_server_options *options,
                      struct event_base *base, const worker_params *worker, access_log_use use,
                      char *why, size_t why_size)
{
    why[0] = '\0';
    csgi_http__options engine_opts;
    unsigned grace_ms = 0;
    engine_options(options, &engine_opts, &grace_ms);
    unsigned long long request_limit = worker ? worker->request_limit : 0;
    if (worker) {
        engine_opts.heartbeats = worker->heartbeats;
        engine_opts.heartbeat_ms = worker->heartbeat_ms;
        csgi_server__board_slot *slot = csgi_server__board_own_slot();
        engine_opts.publish_requests = csgi_server__board_requests(slot);
        engine_opts.publish_connections = csgi_server__board_connections(slot);
    }
    if (options->workers) {
        engine_opts.threads = 1;
        use = LOG_CHECK;
    }
    csgi_access_log *access_log = NULL;
    int err = make_access_log(options, &engine_opts, use, &access_log, why, why_size);
    if (err)
        return err;
    csgi_server *server = csgi__calloc(1, sizeof(*server));
    if (!server) {
        csgi_access_log__free(access_log);
        return CSGI_ENOMEM;
    }
    engine_opts.access_log = access_log;
    server->access_log = access_log;
    server->app = app;
    server->grace_ms = grace_ms;
    server->host_base = base != NULL;
    server->message_fd = -1;
    server->request_limit = request_limit;
    server->gateway.app = app;
    server->gateway.multithread = engine_opts.threads > 1;
    /* PEP 3333's wsgi.multiprocess: whether an equivalent application
       may be called in another process at the same time. A worker's
       master may run others beside it whatever `workers` says: a reload
       or a recycled worker overlaps the old and the new, TTIN adds. */
    server->gateway.multiprocess = worker != NULL;
    server->gateway.log = engine_opts.log;
    server->gateway.log_userdata = engine_opts.log_userdata;
    server->gateway.log_level = engine_opts.log_level;
    csgi_http__handler handler = {csgi_gateway__on_request, &server->gateway};
    if (request_limit)
        handler = (csgi_http__handler){counting_on_request, server};
    err = csgi_http__engine_new(&server->engine, &engine_opts, &handler, base);
    if (err) {
        csgi_access_log__free(access_log);
        csgi__free(server);
        return err;
    }
    err = take_process_options(server, options);
    if (err) {
        server->app = NULL; /* the caller still owns it when this fails */
        csgi_server_free(server);
        return err;
    }
    *out = server;
    return 0;
}

/* The master's server: the listeners' engine, the source, the first
   generation; options kept for the workers (upgraded; server_header
   copied). Takes state (type->free on failure) and generation. */
static int master_new(csgi_server **out, const csgi_server_source_type *type, void *state,
                      void *generation, const csgi_server_options *options, char *why,
                      size_t why_size)
{
    csgi_server *server = NULL;
    int err = server_new(&server, NULL, options, NULL, NULL, LOG_CHECK, why, why_size);
    char *header = NULL;
    if (err == 0 && options->server_header) {
        header = csgi__strndup(options->server_header, strlen(options->server_header));
        if (!header)
            err = CSGI_ENOMEM;
    }
    if (err) {
        if (type->release)
            type->release(state, generation);
        if (type->free)
            type->free(state);
        csgi_server_free(server);
        return err;
    }
    server->source_type = type;
    server->source_state = state;
    server->generation = generation;
    server->workers = options->workers;
    server->options = *options;
    server->server_header = header;
    server->options.server_header = header;
    *out = server;
    return 0;
}

/* The source of csgi_server_new with workers: the application given,
   built already; a reload starts new workers with it. */
static int fixed_load(void *state, void **out, csgi_server_options *options, csgi_load_error *error)
{
    (void)state;
    (void)options;
    (void)error;
    *out = NULL;
    return 0;
}

static int fixed_build(void *state, csgi_app **out, void *generation, csgi_load_error *error)
{
    (void)generation;
    (void)error;
    *out = csgi_app_ref(state);
    return 0;
}

static void fixed_free(void *state)
{
    csgi_app_free(state);
}

static const csgi_server_source_type fixed_source = {"the application given", fixed_load,
                                                     fixed_build, NULL, fixed_free};

/* csgi_server_new, telling the caller what was wrong with the access log
   in why ("" when it was something else). */
static int new_with_app(csgi_server **out, csgi_app *app, const csgi_server_options *options,
                        struct event_base *base, char *why, size_t why_size)
{
    why[0] = '\0';
    if (out)
        *out = NULL;
    csgi_server_options upgraded;
    int err = out && app ? options_upgrade(options, &upgraded) : CSGI_EINVAL;
    if (err == 0 && upgraded.workers && base)
        err = CSGI_EINVAL;
    char process_why[256] = "";
    if (err == 0 &&
        (err = csgi_server__apply_process_options(&upgraded, process_why, sizeof(process_why))))
        log_options_error(&upgraded, "%s", process_why);
    if (err == 0 && upgraded.workers)
        return master_new(out, &fixed_source, app, NULL, &upgraded, why, why_size);
    if (err == 0)
        err = server_new(out, app, &upgraded, base, NULL, LOG_ALONE, why, why_size);
    if (err)
        csgi_app_free(app);
    return err;
}

/* What was wrong with the access log, through the options' log. */
static void log_access_log_error(const csgi_server_options *options, const char *why)
{
    csgi_log__fn log = options && options->log ? options->log : csgi_log__stderr;
    csgi_log__write(log, options ? options->log_userdata : NULL, CSGI_LOG__ERROR, CSGI_LOG__ERROR,
                    "access log: %s", why);
}

int csgi_server_new(csgi_server **out, csgi_app *app, const csgi_server_options *options,
                    struct event_base *base)
{
    char why[256];
    int err = new_with_app(out, app, options, base, why, sizeof(why));
    if (err && why[0])
        log_access_log_error(options, why);
    return err;
}

int csgi_server_new_source(csgi_server **out, const csgi_server_source_type *type, void *state,
                           const csgi_server_options *options, csgi_load_error *error)
{
    csgi_load_error scratch;
    if (!error)
        error = &scratch;
    memset(error, 0, sizeof(*error));
    if (out)
        *out = NULL;
    csgi_server_options upgraded;
    int err = out && type && type->load && type->build ? options_upgrade(options, &upgraded)
                                                       : CSGI_EINVAL;
    void *generation = NULL;
    char why[256] = "";
    if (err == 0 && (err = type->load(state, &generation, &upgraded, error)) == 0) {
        upgraded.version = CSGI_SERVER_OPTIONS_VERSION;
        if (upgraded.workers > MAX_WORKERS) {
            snprintf(error->text, sizeof(error->text), "workers: %u is more than %u",
                     upgraded.workers, MAX_WORKERS);
            err = CSGI_EINVAL;
        } else if ((err = csgi_server__apply_process_options(&upgraded, error->text,
                                                             sizeof(error->text))) == 0 &&
                   upgraded.workers) {
            err = master_new(out, type, state, generation, &upgraded, why, sizeof(why));
            if (err && why[0])
                snprintf(error->text, sizeof(error->text), "access_log: %s", why);
            return err; /* master_new released the generation and the state */
        }
    }
    if (err) {
        if (!error->text[0])
            snprintf(error->text, sizeof(error->text), "%s", csgi_strerror(err));
        if (generation && type->release)
            type->release(state, generation);
        if (type && type->free)
            type->free(state);
        return err;
    }
    /* No workers: build here and serve in this process. */
    csgi_app *app = NULL;
    err = type->build(state, &app, generation, error);
    if (type->release)
        type->release(state, generation);
    if (err == 0 && !app)
        err = CSGI_EINVAL;
    if (err == 0 &&
        (err = server_new(out, app, &upgraded, NULL, NULL, LOG_ALONE, why, sizeof(why))) != 0) {
        csgi_app_free(app);
        if (why[0])
            snprintf(error->text, sizeof(error->text), "access_log: %s", why);
    }
    if (err) {
        if (!error->text[0])
            snprintf(error->text, sizeof(error->text), "%s", csgi_strerror(err));
        if (type->free)
            type->free(state);
        return err;
    }
    (*out)->source_type = type;
    (*out)->source_state = state;
    return 0;
}

csgi_access_log *csgi_server__access_log(csgi_server *server)
{
    return server->access_log;
}

void csgi_server_reopen_logs(csgi_server *server)
{
    if (server && server->workers) {
        if (atomic_load(&server->master_running))
            csgi_server__reopen_master();
    } else if (server) {
        char why[8];
        if (csgi_server__error_log_open(server, why, sizeof(why)) != 0) {
            /* the old file stays standard error: nothing is lost */
        }
        csgi_access_log__reopen(server->access_log);
    }
}

/* Remember an address listened on, for the "serving on" lines. */
static int remember(csgi_server *server, const char *address)
{
    char **grown = csgi__realloc(server->addresses, (server->address_count + 1) * sizeof(*grown));
    if (!grown)
        return CSGI_ENOMEM;
    server->addresses = grown;
    grown[server->address_count] = csgi__strndup(address, strlen(address));
    if (!grown[server->address_count])
        return CSGI_ENOMEM;
    server->address_count++;
    return 0;
}

int csgi_server_listen(csgi_server *server, const char *address)
{
    if (!server || !address)
        return CSGI_EINVAL;
    int err = csgi_http__engine_listen(server->engine, address);
    char why[300];
    if (err == 0 && strncmp(address, "unix:", 5) == 0 &&
        (err = csgi_server__unix_file(address + 5, server->unix_mode, server->unix_uid,
                                      server->unix_gid, why, sizeof(why))) != 0)
        csgi_server__log(server, CSGI_LOG_ERROR, "%s", why);
    return err ? err : remember(server, address);
}

void csgi_tls_options_init(csgi_tls_options *options)
{
    static const csgi_tls_options defaults = CSGI_TLS_OPTIONS_INIT;
    *options = defaults;
}

/* Serve listener index with tls (taken, also when this fails). */
static int attach_tls(csgi_server *server, size_t index, csgi_http__tls *tls)
{
    if (index >= server->tls_count) {
        csgi_http__tls **grown = csgi__realloc(server->tls, (index + 1) * sizeof(*grown));
        if (!grown) {
            csgi_http__tls_free(tls);
            return CSGI_ENOMEM;
        }
        server->tls = grown;
        for (size_t i = server->tls_count; i <= index; i++)
            grown[i] = NULL;
        server->tls_count = index + 1;
    }
    int err = csgi_http__engine_listener_set_tls(server->engine, index, tls);
    if (err) {
        csgi_http__tls_free(tls);
        return err;
    }
    csgi_http__tls_free(server->tls[index]);
    server->tls[index] = tls;
    return 0;
}

/* A listener's TLS from options; logged when the files fail. */
static int make_tls(csgi_server *server, const char *address, const csgi_tls_options *options,
                    csgi_http__tls **out)
{
    char why[512];
    int err = csgi_http__tls_new(out, options, why, sizeof(why));
    if (err)
        csgi_server__log(server, CSGI_LOG_ERROR, "TLS listener %s: %s", address, why);
    return err;
}

int csgi_server_listen_tls(csgi_server *server, const char *address,
                           const csgi_tls_options *options)
{
    if (!server || !address || !options)
        return CSGI_EINVAL;
    /* The files first: a bad certificate shows before anything binds. */
    csgi_http__tls *tls = NULL;
    int err = make_tls(server, address, options, &tls);
    if (err)
        return err;
    size_t index = csgi_http__engine_listener_count(server->engine);
    err = csgi_server_listen(server, address);
    if (err) {
        csgi_http__tls_free(tls);
        return err;
    }
    return attach_tls(server, index, tls);
}

int csgi_server_reload_tls(csgi_server *server)
{
    if (!server)
        return CSGI_EINVAL;
    int err = 0;
    for (size_t i = 0; i < server->tls_count; i++) {
        char why[512];
        if (server->tls[i] && csgi_http__tls_reload(server->tls[i], why, sizeof(why)) != 0) {
            csgi_server__log(server, CSGI_LOG_ERROR,
                             "TLS listener %s: %s; it keeps its old certificates",
                             i < server->address_count ? server->addresses[i] : "?", why);
            err = CSGI_EINVAL;
        } else if (server->tls[i]) {
            csgi_server__log(server, CSGI_LOG_INFO, "TLS listener %s: certificates read again",
                             i < server->address_count ? server->addresses[i] : "?");
        }
    }
    return err;
}

/* 1 when listener index serves TLS. */
static int listener_tls(const csgi_server *server, size_t index)
{
    return index < server->tls_count && server->tls[index];
}

int csgi_server_listen_systemd(csgi_server *server, size_t *count)
{
    if (count)
        *count = 0;
    if (!server || !count)
        return CSGI_EINVAL;
    int first = 0, fds = 0;
    int err = csgi_server__systemd_fds(&first, &fds);
    for (int fd = first; err == 0 && fd < first + fds; fd++) {
        char address[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
        err = csgi_server__socket_address(fd, address, sizeof(address));
        if (err == 0)
            err = csgi_http__engine_adopt(server->engine, fd); /* takes fd */
        if (err == 0)
            err = remember(server, address);
        if (err == 0)
            ++*count;
    }
    if (err)
        csgi_server__log(server, CSGI_LOG_ERROR,
                         "socket activation: LISTEN_FDS=%d: %s (descriptor %zu)", fds,
                         csgi_strerror(err), (size_t)first + *count);
    return err;
}

int csgi_server_port(const csgi_server *server, size_t index)
{
    return server ? csgi_http__engine_listener_port(server->engine, index) : -1;
}

int csgi_server_start(csgi_server *server)
{
    if (!server)
        return CSGI_EINVAL;
    if (server->workers)
        return CSGI_ESTATE;
    int err = csgi_http__engine_start(server->engine);
    if (err == 0) {
        server->started = 1;
        csgi_server__stats_serving(server);
    }
    return err;
}

int csgi_server_run(csgi_server *server)
{
    if (!server)
        return CSGI_EINVAL;
    if (server->workers)
        return CSGI_ESTATE;
    int err = csgi_http__engine_run(server->engine);
    /* Every loop has ended: the lines of the last requests go out now. */
    csgi_access_log__flush(server->access_log);
    return err;
}

void csgi_server_stop(csgi_server *server, unsigned grace_ms)
{
    if (server && server->workers) {
        if (atomic_load(&server->master_running))
            csgi_server__stop_master();
    } else if (server) {
        csgi_http__engine_stop(server->engine, grace_ms);
    }
}

void csgi_server_free(csgi_server *server)
{
    if (!server)
        return;
    csgi_server__stats_gone(server);
    csgi_http__engine_free(server->engine);    /* ends every request first */
    csgi_access_log__free(server->access_log); /* after their lines */
    csgi_app_free(server->app);
    if (server->source_type) {
        if (server->generation && server->source_type->release)
            server->source_type->release(server->source_state, server->generation);
        if (server->source_type->free)
            server->source_type->free(server->source_state);
    }
    csgi__free(server->server_header);
    csgi__free(server->pidfile);
    csgi__free(server->error_log);
    csgi__free(server->run_user);
    for (size_t i = 0; i < server->address_count; i++)
        csgi__free(server->addresses[i]);
    csgi__free(server->addresses);
    for (size_t i = 0; i < server->tls_count; i++) /* after the engine's connections */
        csgi_http__tls_free(server->tls[i]);
    csgi__free(server->tls);
    csgi__free(server);
}

/* ---- serving until a signal ---------------------------------------------------------- */

void csgi_server__log(const csgi_server *server, int level, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    csgi_log__vwrite(server->gateway.log, server->gateway.log_userdata, server->gateway.log_level,
                     level, format, args);
    va_end(args);
}

/* What a signal does to a process that serves. */
typedef enum signal_action {
    SIGNAL_GRACEFUL,    /* stop; requests in progress have the grace period */
    SIGNAL_QUICK,       /* stop; requests in progress are cut */
    SIGNAL_REOPEN,      /* reopen the log files (logrotate's postrotate) */
    SIGNAL_TLS,         /* read the TLS listeners' certificates again */
    SIGNAL_IGNORE,      /* the master's business (HUP, TTIN, ...), not a worker's */
    SIGNAL_NEEDS_MASTER /* a master's signal sent to a process alone: ignored, said */
} signal_action;

typedef struct signal_rule {
    int number;
    signal_action action;
} signal_rule;

/* One process serving alone: SIGINT and SIGTERM stop it gracefully, QUIT
   at once, SIGUSR1 reopens its log files. A reload (HUP) or an upgrade
   (USR2) needs a master: said and ignored, rather than left to their
   default, which would end the process (`systemctl reload`). */
static const signal_rule alone_rules[] = {
    {SIGINT, SIGNAL_GRACEFUL},      {SIGTERM, SIGNAL_GRACEFUL},    {SIGQUIT, SIGNAL_QUICK},
    {SIGUSR1, SIGNAL_REOPEN},       {SIGHUP, SIGNAL_NEEDS_MASTER}, {SIGUSR2, SIGNAL_NEEDS_MASTER},
    {SIGTTIN, SIGNAL_NEEDS_MASTER}, {SIGTTOU, SIGNAL_NEEDS_MASTER}};

/* The same, with TLS listeners: SIGHUP reads their certificates again. */
static const signal_rule alone_tls_rules[] = {
    {SIGINT, SIGNAL_GRACEFUL},      {SIGTERM, SIGNAL_GRACEFUL},    {SIGQUIT, SIGNAL_QUICK},
    {SIGUSR1, SIGNAL_REOPEN},       {SIGHUP, SIGNAL_TLS},          {SIGUSR2, SIGNAL_NEEDS_MASTER},
    {SIGTTIN, SIGNAL_NEEDS_MASTER}, {SIGTTOU, SIGNAL_NEEDS_MASTER}};

/* A worker: its master sends TERM (graceful) or QUIT (quick); INT comes
   from a terminal to the whole process group; USR1 (the master passes it
   on) reopens its log files. The master's own signals do nothing here
   (their default would end the worker). */
static const signal_rule worker_rules[] = {
    {SIGTERM, SIGNAL_GRACEFUL}, {SIGINT, SIGNAL_GRACEFUL}, {SIGQUIT, SIGNAL_QUICK},
    {SIGHUP, SIGNAL_IGNORE},    {SIGTTIN, SIGNAL_IGNORE},  {SIGTTOU, SIGNAL_IGNORE},
    {SIGUSR1, SIGNAL_REOPEN},   {SIGUSR2, SIGNAL_IGNORE},
};

#define MAX_RULES (sizeof(worker_rules) / sizeof(worker_rules[0]))
_Static_assert(sizeof(alone_rules) <= sizeof(worker_rules) &&
                   sizeof(alone_tls_rules) <= sizeof(worker_rules),
               "run_until watches MAX_RULES signals at most");

typedef struct signal_watch {
    csgi_server *server;
    const signal_rule *rule;
    struct event *event;
} signal_watch;

/* Runs in the loop (libevent turns the signal into an event): no
   async-signal-safety to worry about. */
static void on_signal(evutil_socket_t signal_number, short what, void *arg)
{
    (void)what;
    const signal_watch *watch = arg;
    csgi_server *server = watch->server;
    if (watch->rule->action == SIGNAL_IGNORE) {
        csgi_server__log(server, CSGI_LOG_DEBUG, "signal %d (%s) ignored", (int)signal_number,
                         strsignal((int)signal_number));
        return;
    }
    if (watch->rule->action == SIGNAL_NEEDS_MASTER) {
        csgi_server__log(server, CSGI_LOG_WARNING,
                         "signal %d (%s) ignored: reloading, upgrading and resizing need worker "
                         "processes (workers = 1 or more)",
                         (int)signal_number, strsignal((int)signal_number));
        return;
    }
    if (watch->rule->action == SIGNAL_TLS) {
        csgi_server__log(server, CSGI_LOG_WARNING,
                         "signal %d (%s), reading the TLS certificates again", (int)signal_number,
                         strsignal((int)signal_number));
        csgi_server_reload_tls(server);
        return;
    }
    if (watch->rule->action == SIGNAL_REOPEN) {
        csgi_server__log(server, CSGI_LOG_INFO, "signal %d (%s), reopening the log files",
                         (int)signal_number, strsignal((int)signal_number));
        csgi_server_reopen_logs(server);
        csgi_access_log__flush(server->access_log); /* reopens now, not at the next line */
        return;
    }
    unsigned grace = watch->rule->action == SIGNAL_QUICK ? 0 : server->grace_ms;
    csgi_server__log(server, CSGI_LOG_WARNING, "signal %d (%s), stopping (grace %u ms)",
                     (int)signal_number, strsignal((int)signal_number), grace);
    csgi_server_stop(server, grace);
}

void csgi_server__print_listeners(const csgi_server *server)
{
    for (size_t i = 0; i < server->address_count; i++) {
        const char *address = server->addresses[i];
        if (strncmp(address, "unix:", 5) == 0) {
            printf("serving on %s\n", address);
            continue;
        }
        const char *colon = strrchr(address, ':');
        int host_len = colon ? (int)(colon - address) : (int)strlen(address);
        printf("serving on %s://%.*s:%d/\n", listener_tls(server, i) ? "https" : "http", host_len,
               address, csgi_server_port(server, i));
    }
    fflush(stdout);
}

/* Run the started server's loops until a signal of rules stops it. */
static int run_until(csgi_server *server, const signal_rule *rules, size_t count)
{
    /* libevent puts the previous handlers back when the events go. */
    struct event_base *base = csgi_http__engine_base(server->engine);
    signal_watch watches[MAX_RULES];
    int err = 0;
    for (size_t i = 0; i < count; i++) {
        watches[i] = (signal_watch){server, &rules[i], NULL};
        watches[i].event = evsignal_new(base, rules[i].number, on_signal, &watches[i]);
        if (!watches[i].event || evsignal_add(watches[i].event, NULL))
            err = CSGI_ESYSTEM;
    }
    if (err == 0)
        err = csgi_server_run(server);
    for (size_t i = 0; i < count; i++)
        if (watches[i].event)
            event_free(watches[i].event);
    return err;
}

/* Serve until a signal: the master of workers, or this process alone. */
static int serve_until_signal(csgi_server *server)
{
    if (server->workers)
        return csgi_server__run_master(server);
    int err = server->started ? 0 : csgi_server_start(server);
    if (err)
        return err;
    csgi_server__print_listeners(server);
    csgi_server__upgrade_ready(); /* an old master that started this one retires */
    for (size_t i = 0; i < server->tls_count; i++)
        if (server->tls[i])
            return run_until(server, alone_tls_rules,
                             sizeof(alone_tls_rules) / sizeof(alone_tls_rules[0]));
    return run_until(server, alone_rules, sizeof(alone_rules) / sizeof(alone_rules[0]));
}

int csgi_server_run_until_signal(csgi_server *server)
{
    if (!server)
        return CSGI_EINVAL;
    if (server->host_base)
        return CSGI_ESTATE;
    /* The listeners are bound: the pid file says a server is there. Worker
       processes never return from serve_until_signal, so only this
       process removes it. */
    char why[300];
    csgi_server__upgrade_fd(); /* taken from the environment before anything forks */
    int err = csgi_server__error_log_open(server, why, sizeof(why));
    if (err == 0 && server->pidfile)
        err = csgi_server__pidfile_write(server->pidfile, why, sizeof(why));
    if (err) {
        csgi_server__log(server, CSGI_LOG_ERROR, "%s", why);
        return err;
    }
    /* Alone, this process serves: it changes user now. A master keeps its
       user; each worker changes after its fork (master.c). */
    if (!server->workers && (err = csgi_server__drop_privileges(server, why, sizeof(why))) != 0)
        csgi_server__log(server, CSGI_LOG_ERROR, "%s", why);
    if (err == 0)
        err = serve_until_signal(server);
    if (server->pidfile)
        csgi_server__pidfile_remove(server->pidfile);
    return err;
}

/* ---- a worker process ---------------------------------------------------------------- */

/* A random number in [0, range], different in each worker. */
static unsigned long long jitter(unsigned range)
{
    if (!range)
        return 0;
    unsigned long long random = 0;
    if (getrandom(&random, sizeof(random), GRND_NONBLOCK) != (ssize_t)sizeof(random))
        random = (unsigned long long)getpid() * 2654435761u ^ (unsigned long long)time(NULL);
    return random % ((unsigned long long)range + 1);
}

/* The master's timeout (options busy_timeout_ms): it sends SIGXCPU to a
   worker whose loop stopped beating, and the worker's reporter thread
   tells it which request that loop is in, before the master kills the
   worker. Every other thread of the worker blocks SIGXCPU, so the signal
   never interrupts what an application waits for (a sleep, a read). The
   reporter reads the stuck loop's state while that loop does not move. */
typedef struct busy_watch {
    const csgi_http__engine *engine;
    _Atomic long long *heartbeats;
    unsigned loops;
    unsigned timeout_ms;
    int message_fd;
    atomic_int stopping;
    pthread_t thread;
} busy_watch;

static void busy_report(busy_watch *watch)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    unsigned loops = csgi_http__engine_loop_count(watch->engine);
    for (unsigned i = 0; i < loops && i < watch->loops; i++) {
        long long beat = atomic_load_explicit(&watch->heartbeats[i], memory_order_relaxed);
        if (now - beat < (long long)watch->timeout_ms)
            continue;
        csgi_load_error report;
        memset(&report, 0, sizeof(report));
        csgi_http__engine_busy_request(watch->engine, i, report.text, sizeof(report.text));
        report.line = (int)i; /* the loop */
        csgi_server__tell_master(watch->message_fd, CSGI_SERVER__BUSY,
                                 (int)((now - beat) > INT_MAX ? INT_MAX : now - beat), &report);
    }
}

static void *busy_reporter(void *arg)
{
    busy_watch *watch = arg;
    sigset_t xcpu;
    sigemptyset(&xcpu);
    sigaddset(&xcpu, SIGXCPU);
    for (;;) {
        int number;
        if (sigwait(&xcpu, &number) != 0)
            continue;
        if (atomic_load(&watch->stopping))
            return NULL;
        busy_report(watch);
    }
}

unsigned csgi_server__heartbeat_ms(unsigned timeout_ms)
{
    unsigned ms = timeout_ms / 4;
    return ms < 50 ? 50 : ms > 1000 ? 1000 : ms;
}

int csgi_server__serve_worker(csgi_server *master, csgi_app *app,
                              const csgi_server_options *options, int message_fd,
                              _Atomic long long *heartbeats)
{
    csgi_server_options worker_options = *options;
    worker_options.version = CSGI_SERVER_OPTIONS_VERSION;
    worker_options.workers = 0;
    worker_options.busy_timeout_ms = 0;           /* the master's to watch */
    worker_options.error_log = master->error_log; /* the master's, which a reload keeps */
    worker_params params = {0, NULL, 0};
    if (options->max_requests)
        params.request_limit = options->max_requests + jitter(options->max_requests_jitter);
    if (options->busy_timeout_ms && heartbeats) {
        params.heartbeats = heartbeats;
        params.heartbeat_ms = csgi_server__heartbeat_ms(options->busy_timeout_ms);
    }
    /* Blocked in this thread and the loops' threads it starts (and in
       theirs): only the reporter takes SIGXCPU. */
    sigset_t xcpu, unblocked;
    sigemptyset(&xcpu);
    sigaddset(&xcpu, SIGXCPU);
    pthread_sigmask(SIG_BLOCK, &xcpu, &unblocked);
    csgi_server *server = NULL;
    char why[256];
    int err =
        server_new(&server, app, &worker_options, NULL, &params, LOG_SHARED, why, sizeof(why));
    if (err) {
        if (why[0])
            log_access_log_error(&worker_options, why);
        csgi_app_free(app);
        pthread_sigmask(SIG_SETMASK, &unblocked, NULL);
        return err;
    }
    server->message_fd = message_fd;
    size_t count = csgi_http__engine_listener_count(master->engine);
    for (size_t i = 0; i < count && err == 0; i++)
        err = csgi_http__engine_adopt(server->engine,
                                      csgi_http__engine_listener_fd(master->engine, i));
    /* The master's TLS, as it was when this worker forked (borrowed: the
       master's server lives as long as this process). */
    for (size_t i = 0; i < count && err == 0; i++)
        if (listener_tls(master, i))
            err = csgi_http__engine_listener_set_tls(server->engine, i, master->tls[i]);
    if (err == 0)
        err = csgi_server_start(server);
    busy_watch watch = {server->engine,
                        heartbeats,
                        options->threads ? options->threads : 1,
                        options->busy_timeout_ms,
                        message_fd,
                        0,
                        0};
    int watching = 0;
    if (err == 0 && params.heartbeats)
        watching = pthread_create(&watch.thread, NULL, busy_reporter, &watch) == 0;
    if (err) {
        csgi_server__log(server, CSGI_LOG_ERROR, "the worker cannot start: %s", csgi_strerror(err));
    } else {
        csgi_server__tell_master(message_fd, CSGI_SERVER__READY, 0, NULL);
        err = run_until(server, worker_rules, MAX_RULES);
    }
    if (watching) {
        atomic_store(&watch.stopping, 1);
        pthread_kill(watch.thread, SIGXCPU);
        pthread_join(watch.thread, NULL);
    }
    csgi_server_free(server);
    pthread_sigmask(SIG_SETMASK, &unblocked, NULL);
    return err;
}

int csgi_serve(csgi_app *app, const char *host, int port)
{
    if (!host || port < 0 || port > 65535) {
        csgi_app_free(app);
        return CSGI_EINVAL;
    }
    csgi_server *server;
    int err = csgi_server_new(&server, app, NULL, NULL);
    if (err)
        return err;
    char address[300];
    int v6 = strchr(host, ':') != NULL && host[0] != '[';
    snprintf(address, sizeof(address), v6 ? "[%s]:%d" : "%s:%d", host, port);
    err = csgi_server_listen(server, address);
    if (err)
        csgi_server__log(server, CSGI_LOG_ERROR, "cannot serve on %s: %s", address,
                         csgi_strerror(err));
    else
        err = csgi_server_run_until_signal(server);
    csgi_server_free(server);
    return err;
}

/* ---- the INI runner: egg:csgi#http ---------------------------------------------------- */

/* The keys of a [server:] section using egg:csgi#http. Numbers are checked
   within [min, max] and multiplied by scale (seconds to milliseconds). */
typedef enum key_type {
    KEY_TEXT,
    KEY_BOOL,
    KEY_NUMBER,
    KEY_ERROR_FORMAT,
    KEY_LOG_LEVEL,
    KEY_ACCESS_LOG,
    KEY_ACCESS_LOG_FORMAT,
    KEY_MODE,     /* octal file permissions, within [min, max] */
    KEY_USER,     /* a user name or number that exists */
    KEY_GROUP,    /* a group name or number that exists */
    KEY_VERIFY,   /* none, optional, required */
    KEY_PROTOCOL, /* TLSv1.2, TLSv1.3 */
} key_type;

static const struct server_key {
    const char *name;
    key_type type;
    long long min, max, scale;
} server_keys[] = {
    {"host", KEY_TEXT, 0, 0, 0},
    {"port", KEY_NUMBER, 0, 65535, 1},
    {"threads", KEY_NUMBER, 1, 1024, 1},
    {"max_connections", KEY_NUMBER, 1, UINT_MAX, 1},
    {"max_body", KEY_NUMBER, 0, LLONG_MAX, 1},
    {"header_timeout", KEY_NUMBER, 1, UINT_MAX / 1000, 1000},
    {"body_timeout", KEY_NUMBER, 1, UINT_MAX / 1000, 1000},
    {"keepalive_timeout", KEY_NUMBER, 1, UINT_MAX / 1000, 1000},
    {"send_timeout", KEY_NUMBER, 1, UINT_MAX / 1000, 1000},
    {"grace_timeout", KEY_NUMBER, 1, UINT_MAX / 1000, 1000},
    {"max_keepalive_requests", KEY_NUMBER, 1, UINT_MAX, 1},
    {"server_header", KEY_TEXT, 0, 0, 0},
    {"verbose", KEY_BOOL, 0, 0, 0},
    {"error_format", KEY_ERROR_FORMAT, 0, 0, 0},
    {"workers", KEY_NUMBER, 0, MAX_WORKERS, 1},
    {"preload", KEY_BOOL, 0, 0, 0},
    {"max_requests", KEY_NUMBER, 0, UINT_MAX, 1},
    {"max_requests_jitter", KEY_NUMBER, 0, UINT_MAX, 1},
    {"log_level", KEY_LOG_LEVEL, 0, 0, 0},
    {"access_log", KEY_ACCESS_LOG, 0, 0, 0},
    {"access_log_format", KEY_ACCESS_LOG_FORMAT, 0, 0, 0},
    {"access_log_buffer", KEY_NUMBER, 1, 64 * 1024 * 1024, 1},
    {"access_log_flush", KEY_NUMBER, 1, 3600, 1000},
    {"body_min_rate", KEY_NUMBER, 0, UINT_MAX - 1, 1},
    {"backlog", KEY_NUMBER, 1, 65535, 1},
    {"unix_mode", KEY_MODE, 1, 07777, 1},
    {"unix_owner", KEY_USER, 0, 0, 0},
    {"unix_group", KEY_GROUP, 0, 0, 0},
    {"pidfile", KEY_TEXT, 0, 0, 0},
    {"umask", KEY_MODE, 0, 0777, 1},
    {"chdir", KEY_TEXT, 0, 0, 0},
    {"user", KEY_USER, 0, 0, 0},
    {"group", KEY_GROUP, 0, 0, 0},
    {"allow_root", KEY_BOOL, 0, 0, 0},
    {"timeout", KEY_NUMBER, 0, UINT_MAX / 1000, 1000},
    {"error_log", KEY_TEXT, 0, 0, 0},
    {"cert_file", KEY_TEXT, 0, 0, 0},
    {"key_file", KEY_TEXT, 0, 0, 0},
    {"ca_file", KEY_TEXT, 0, 0, 0},
    {"verify_client", KEY_VERIFY, 0, 0, 0},
    {"min_protocol", KEY_PROTOCOL, 0, 0, 0},
    {"ciphers", KEY_TEXT, 0, 0, 0},
    {"ciphersuites", KEY_TEXT, 0, 0, 0},
    {"handshake_timeout", KEY_NUMBER, 1, UINT_MAX / 1000, 1000},
    {"ticket_rotation", KEY_NUMBER, 0, UINT_MAX - 1, 1},
};

/* Names other servers use for the same keys, to point at ours. */
static const struct {
    const char *theirs, *ours;
} other_names[] = {
    {"accesslog", "access_log"},               /* gunicorn */
    {"access_logfile", "access_log"},          /* gunicorn's --access-logfile */
    {"loglevel", "log_level"},                 /* gunicorn */
    {"log_format", "access_log_format"},       /* nginx */
    {"access_logformat", "access_log_format"}, /* a slip */
    {"pid", "pidfile"},                        /* gunicorn's -p, uWSGI's pidfile */
    {"pid_file", "pidfile"},                   /* a slip */
    {"chmod_socket", "unix_mode"},             /* uWSGI */
    {"chown_socket", "unix_owner"},            /* uWSGI */
    {"listen", "backlog"},                     /* uWSGI's listen is the backlog */
    {"uid", "user"},                           /* uWSGI */
    {"gid", "group"},                          /* uWSGI */
    {"harakiri", "timeout"},                   /* uWSGI */
    {"errorlog", "error_log"},                 /* gunicorn */
    {"logto", "error_log"},                    /* uWSGI */
    {"certfile", "cert_file"},                 /* gunicorn */
    {"keyfile", "key_file"},                   /* gunicorn */
    {"ca_certs", "ca_file"},                   /* gunicorn */
    {"cert_reqs", "verify_client"},            /* gunicorn */
    {"ssl_certificate", "cert_file"},          /* nginx */
    {"ssl_certificate_key", "key_file"},       /* nginx */
};

/* Octal permissions ("0660", "660") into *out. */
static int octal_mode(const char *text, long long *out)
{
    size_t len = strlen(text);
    if (len == 0 || len > 5 || strspn(text, "01234567") != len)
        return 0;
    *out = strtoll(text, NULL, 8);
    return 1;
}

/* The log levels by name (nginx says warn, gunicorn warning). */
static int log_level_named(const char *name)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, names[i]) == 0)
            return i;
    return strcasecmp(name, "warn") == 0 ? CSGI_LOG__WARN : -1;
}

#define SERVER_KEY_COUNT (sizeof(server_keys) / sizeof(server_keys[0]))

/* What a section says (with the loader's server options on top): numbers
   scaled, text borrowed from the conf, present 1 for the keys given. */
typedef struct server_conf {
    unsigned long long number[SERVER_KEY_COUNT];
    const char *text[SERVER_KEY_COUNT];
    int present[SERVER_KEY_COUNT];
} server_conf;

static int key_index(const char *name)
{
    for (size_t i = 0; i < SERVER_KEY_COUNT; i++)
        if (strcmp(server_keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Edits (insert, delete, replace a byte) from a to b, or 3 when more. */
static unsigned edits(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64 || (la > lb ? la - lb : lb - la) > 2)
        return 3;
    unsigned row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diagonal = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned above = row[j];
            unsigned best = diagonal + (a[i - 1] != b[j - 1]);
            if (above + 1 < best)
                best = above + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[lb] > 3 ? 3 : row[lb];
}

/* The key a slip of at most two edits away from name means, or NULL. */
static const char *nearest_key(const char *name)
{
    const char *best = NULL;
    unsigned best_edits = 3;
    for (size_t j = 0; j < SERVER_KEY_COUNT; j++) {
        unsigned e = edits(name, server_keys[j].name);
        if (e < best_edits) {
            best_edits = e;
            best = server_keys[j].name;
        }
    }
    return best;
}

/* Read the entries of conf into *out (over what is there). */
static int read_entries(const csgi_conf *conf, server_conf *out, csgi_load_error *error)
{
    const char *name, *value;
    for (size_t i = 0; csgi_conf_entry(conf, i, &name, &value); i++) {
        int k = key_index(name);
        for (size_t n = 0; k < 0 && n < sizeof(other_names) / sizeof(other_names[0]); n++) {
            if (strcmp(name, other_names[n].theirs) == 0) {
                csgi_conf_error(conf, name, error, "unknown key for egg:csgi#http (it is %s)",
                                other_names[n].ours);
                return CSGI_EINVAL;
            }
        }
        if (k < 0) {
            const char *near = nearest_key(name);
            if (near)
                csgi_conf_error(conf, name, error,
                                "unknown key for egg:csgi#http (did you mean %s? docs/server.md "
                                "lists them all)",
                                near);
            else
                csgi_conf_error(conf, name, error,
                                "unknown key for egg:csgi#http (docs/server.md lists them all)");
            return CSGI_EINVAL;
        }
        const struct server_key *key = &server_keys[k];
        out->present[k] = 1;
        out->text[k] = value;
        long long number = 0;
        int flag = 0, rc = 0;
        if (key->type == KEY_BOOL) {
            rc = csgi_conf_asbool(conf, name, 0, &flag, error);
            number = flag;
        } else if (key->type == KEY_NUMBER) {
            rc = csgi_conf_asint(conf, name, 0, &number, error);
            if (rc == 0 && (number < key->min || number > key->max)) {
                csgi_conf_error(conf, name, error, "%lld is out of range (%lld to %lld)", number,
                                key->min, key->max);
                rc = CSGI_EINVAL;
            }
            number *= key->scale;
        } else if (key->type == KEY_ERROR_FORMAT && !csgi_error_page__named(value)) {
            csgi_conf_error(conf, name, error, "'%s' is not an error format (%s)", value,
                            CSGI_ERROR_PAGE__NAMES);
            rc = CSGI_EINVAL;
        } else if (key->type == KEY_MODE) {
            if (!octal_mode(value, &number)) {
                csgi_conf_error(conf, name, error, "'%s' is not an octal mode (such as 0660)",
                                value);
                rc = CSGI_EINVAL;
            } else if (number < key->min || number > key->max) {
                csgi_conf_error(conf, name, error, "%s is out of range (0%llo to 0%llo)", value,
                                (unsigned long long)key->min, (unsigned long long)key->max);
                rc = CSGI_EINVAL;
            }
        } else if (key->type == KEY_USER || key->type == KEY_GROUP) {
            uid_t uid;
            gid_t gid;
            if (key->type == KEY_USER ? csgi_server__user_id(value, &uid, NULL) != 0
                                      : csgi_server__group_id(value, &gid) != 0) {
                csgi_conf_error(conf, name, error, "no %s '%s' on this system",
                                key->type == KEY_USER ? "user" : "group", value);
                rc = CSGI_EINVAL;
            }
        } else if (key->type == KEY_VERIFY) {
            static const char *const names[] = {"none", "optional", "required"};
            number = -1;
            for (int v = 0; v < 3; v++)
                if (strcasecmp(value, names[v]) == 0)
                    number = v;
            if (number < 0) {
                csgi_conf_error(conf, name, error, "'%s' is not none, optional or required", value);
                rc = CSGI_EINVAL;
            }
        } else if (key->type == KEY_PROTOCOL) {
            if (strcasecmp(value, "TLSv1.2") != 0 && strcasecmp(value, "TLSv1.3") != 0) {
                csgi_conf_error(conf, name, error, "'%s' is not TLSv1.2 or TLSv1.3", value);
                rc = CSGI_EINVAL;
            }
        } else if (key->type == KEY_LOG_LEVEL) {
            number = log_level_named(value);
            if (number < 0) {
                csgi_conf_error(conf, name, error,
                                "'%s' is not a log level (error, warning, info, debug)", value);
                rc = CSGI_EINVAL;
            }
        } else if (key->type == KEY_ACCESS_LOG || key->type == KEY_ACCESS_LOG_FORMAT) {
            char why[200];
            /* An empty access_log is no access log. */
            if (key->type == KEY_ACCESS_LOG_FORMAT
                    ? csgi_access_log__check_format(value, why, sizeof(why)) != 0
                    : value[0] &&
                          csgi_access_log__check_destination(value, why, sizeof(why)) != 0) {
                csgi_conf_error(conf, name, error, "%s", why);
                rc = CSGI_EINVAL;
            }
        }
        if (rc != 0)
            return rc;
        out->number[k] = (unsigned long long)number;
    }
    return 0;
}

/* Keep text in conf->text: its offset, or (size_t)-1 when it does not fit. */
static size_t tls_keep(csgi_server__tls_conf *conf, const char *text, size_t len)
{
    if (conf->used + len + 1 > sizeof(conf->text))
        return (size_t)-1;
    size_t at = conf->used;
    memcpy(conf->text + at, text, len);
    conf->text[at + len] = '\0';
    conf->used += len + 1;
    return at;
}

static const char *tls_text(const csgi_server__tls_conf *conf, size_t at)
{
    return at == (size_t)-1 ? NULL : conf->text + at;
}

void csgi_server__tls_conf_options(const csgi_server__tls_conf *conf, csgi_tls_options *out,
                                   csgi_tls_certificate *certificates)
{
    *out = conf->options;
    out->ca_file = tls_text(conf, conf->ca_file);
    out->min_protocol = tls_text(conf, conf->min_protocol);
    out->ciphers = tls_text(conf, conf->ciphers);
    out->ciphersuites = tls_text(conf, conf->ciphersuites);
    for (size_t i = 0; i < out->certificate_count; i++) {
        certificates[i].cert_file = tls_text(conf, conf->cert_file[i]);
        certificates[i].key_file = tls_text(conf, conf->key_file[i]);
    }
    out->certificates = certificates;
}

/* The words of text (separated by white space) kept in conf: their
   offsets in at, their number in *count. The key name says what is wrong
   (file:line of the conf). */
static int tls_words(const csgi_conf *local, const char *name, const char *text,
                     csgi_server__tls_conf *conf, size_t *at, size_t *count, csgi_load_error *error)
{
    *count = 0;
    while (*text) {
        text += strspn(text, " \t\r\n");
        size_t len = strcspn(text, " \t\r\n");
        if (!len)
            break;
        if (*count == CSGI_SERVER__MAX_CERTIFICATES) {
            csgi_conf_error(local, name, error, "more than %d files",
                            CSGI_SERVER__MAX_CERTIFICATES);
            return CSGI_EINVAL;
        }
        at[*count] = tls_keep(conf, text, len);
        if (at[*count] == (size_t)-1) {
            csgi_conf_error(local, name, error, "the file names are too long");
            return CSGI_EINVAL;
        }
        ++*count;
        text += len;
    }
    return 0;
}

/* The TLS keys of a section read (conf), into *out; the files are read
   and checked now, so that a missing certificate or a key that does not
   match shows at its key's line. */
static int read_tls(const csgi_conf *local, const server_conf *conf, csgi_server__tls_conf *out,
                    csgi_load_error *error);

/* The section's local conf, then the loader's server options over it. */
static int read_conf(csgi_loader *loader, const csgi_conf *local_conf, server_conf *out,
                     csgi_load_error *error)
{
    memset(out, 0, sizeof(*out));
    int rc = read_entries(local_conf, out, error);
    if (rc == 0 && loader && loader->server_options.count) {
        csgi_conf overrides = csgi_loader__conf(loader, &loader->server_options);
        rc = read_entries(&overrides, out, error);
    }
    int timeout = key_index("timeout"), workers = key_index("workers");
    if (rc == 0 && out->present[timeout] && out->number[timeout] &&
        !(out->present[workers] && out->number[workers])) {
        csgi_conf_error(local_conf, "timeout", error,
                        "needs workers = 1 or more: a master replaces the worker it kills");
        rc = CSGI_EINVAL;
    }
    return rc;
}

static const char *text_setting(const server_conf *conf, const char *name);
static unsigned long long setting(const server_conf *conf, const char *name,
                                  unsigned long long fallback);

static int read_tls(const csgi_conf *local, const server_conf *conf, csgi_server__tls_conf *out,
                    csgi_load_error *error)
{
    memset(out, 0, offsetof(csgi_server__tls_conf, text));
    csgi_tls_options_init(&out->options);
    out->ca_file = out->min_protocol = out->ciphers = out->ciphersuites = (size_t)-1;
    const char *cert = text_setting(conf, "cert_file");
    static const char *const tls_only[] = {"key_file",          "ca_file",        "verify_client",
                                           "min_protocol",      "ciphers",        "ciphersuites",
                                           "handshake_timeout", "ticket_rotation"};
    if (!cert || !cert[0]) {
        for (size_t i = 0; i < sizeof(tls_only) / sizeof(tls_only[0]); i++) {
            if (text_setting(conf, tls_only[i])) {
                csgi_conf_error(local, tls_only[i], error, "needs cert_file (TLS)");
                return CSGI_EINVAL;
            }
        }
        return 0;
    }
    size_t certs = 0, keys = 0;
    int rc = tls_words(local, "cert_file", cert, out, out->cert_file, &certs, error);
    const char *key = text_setting(conf, "key_file");
    if (rc == 0 && key)
        rc = tls_words(local, "key_file", key, out, out->key_file, &keys, error);
    if (rc != 0)
        return rc;
    if (keys && keys != certs) {
        csgi_conf_error(local, "key_file", error,
                        "%zu files for the %zu of cert_file (one key each, in order)", keys, certs);
        return CSGI_EINVAL;
    }
    for (size_t i = keys; i < certs; i++)
        out->key_file[i] = (size_t)-1; /* the key is in the certificate's file */
    const struct {
        const char *name;
        size_t *at;
    } texts[] = {{"ca_file", &out->ca_file},
                 {"min_protocol", &out->min_protocol},
                 {"ciphers", &out->ciphers},
                 {"ciphersuites", &out->ciphersuites}};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        const char *value = text_setting(conf, texts[i].name);
        if (!value)
            continue;
        *texts[i].at = tls_keep(out, value, strlen(value));
        if (*texts[i].at == (size_t)-1) {
            csgi_conf_error(local, texts[i].name, error, "too long");
            return CSGI_EINVAL;
        }
    }
    if (out->min_protocol != (size_t)-1) /* as OpenSSL spells it */
        memcpy(out->text + out->min_protocol, "TLSv", 4);
    out->options.certificate_count = certs;
    out->options.verify_client = (csgi_tls_verify)setting(conf, "verify_client", 0);
    out->options.handshake_timeout_ms = (unsigned)setting(conf, "handshake_timeout", 0);
    unsigned long long rotation = setting(conf, "ticket_rotation", ULLONG_MAX);
    if (rotation != ULLONG_MAX)
        out->options.ticket_rotation_s = rotation ? (unsigned)rotation : CSGI_TLS_NO_TICKETS;
    out->enabled = 1;

    /* The files, now. */
    csgi_tls_options options;
    csgi_tls_certificate certificates[CSGI_SERVER__MAX_CERTIFICATES];
    csgi_server__tls_conf_options(out, &options, certificates);
    char why[512];
    csgi_http__tls *tls = NULL;
    rc = csgi_http__tls_new(&tls, &options, why, sizeof(why));
    csgi_http__tls_free(tls);
    if (rc != 0) {
        /* why starts with the key it is about */
        const char *name = "cert_file", *text = why;
        for (size_t i = 0; i < sizeof(tls_only) / sizeof(tls_only[0]); i++) {
            size_t len = strlen(tls_only[i]);
            if (strncmp(why, tls_only[i], len) == 0 && (why[len] == ' ' || why[len] == ':')) {
                name = tls_only[i];
                text = why + len + (why[len] == ':') + 1; /* the key is said once */
            }
        }
        if (strncmp(why, "cert_file ", 10) == 0)
            text = why + 10;
        csgi_conf_error(local, name, error, "%s", text);
    }
    return rc;
}

int csgi_server__http_check(csgi_loader *loader, const csgi_conf *local_conf,
                            csgi_load_error *error)
{
    server_conf conf;
    int rc = read_conf(loader, local_conf, &conf, error);
    csgi_server__tls_conf tls;
    return rc ? rc : read_tls(local_conf, &conf, &tls, error);
}

/* The value of key name, or fallback when the section does not give it. */
static unsigned long long setting(const server_conf *conf, const char *name,
                                  unsigned long long fallback)
{
    int k = key_index(name);
    return conf->present[k] ? conf->number[k] : fallback;
}

static const char *text_setting(const server_conf *conf, const char *name)
{
    int k = key_index(name);
    return conf->present[k] ? conf->text[k] : NULL;
}

int csgi_server__http_read(csgi_server__http_settings *out, csgi_loader *loader,
                           const csgi_conf *local_conf, csgi_load_error *error)
{
    server_conf conf;
    int rc = read_conf(loader, local_conf, &conf, error);
    if (rc == 0)
        rc = read_tls(local_conf, &conf, &out->tls, error);
    if (rc != 0)
        return rc;
    csgi_server_options *options = &out->options;
    csgi_server_options_init(options);
    options->threads = (unsigned)setting(&conf, "threads", 0);
    options->max_connections = (unsigned)setting(&conf, "max_connections", 0);
    options->max_body = setting(&conf, "max_body", 0); /* 0 keeps the default */
    options->header_timeout_ms = (unsigned)setting(&conf, "header_timeout", 0);
    options->body_timeout_ms = (unsigned)setting(&conf, "body_timeout", 0);
    options->keepalive_timeout_ms = (unsigned)setting(&conf, "keepalive_timeout", 0);
    options->send_timeout_ms = (unsigned)setting(&conf, "send_timeout", 0);
    options->grace_timeout_ms = (unsigned)setting(&conf, "grace_timeout", 0);
    options->max_keepalive_requests = (unsigned)setting(&conf, "max_keepalive_requests", 0);
    options->server_header = text_setting(&conf, "server_header");
    options->verbose = (int)setting(&conf, "verbose", 0);
    options->error_render = csgi_error_page__named(text_setting(&conf, "error_format"));
    options->workers = (unsigned)setting(&conf, "workers", 0);
    options->max_requests = (unsigned)setting(&conf, "max_requests", 0);
    options->max_requests_jitter = (unsigned)setting(&conf, "max_requests_jitter", 0);
    options->log_level = (int)setting(&conf, "log_level", CSGI_LOG__WARN);
    options->access_log = text_setting(&conf, "access_log");
    options->access_log_format = text_setting(&conf, "access_log_format");
    options->access_log_buffer = (size_t)setting(&conf, "access_log_buffer", 0);
    options->access_log_flush_ms = (unsigned)setting(&conf, "access_log_flush", 0);
    out->preload = (int)setting(&conf, "preload", 0);
    out->allow_root = (int)setting(&conf, "allow_root", 0);
    options->busy_timeout_ms = (unsigned)setting(&conf, "timeout", 0);
    /* With preload the application's code is the master's: only a new
       master loads new code. */
    options->reload_exec = out->preload;
    /* body_min_rate = 0 turns the minimum off; absent keeps the default. */
    unsigned long long rate = setting(&conf, "body_min_rate", ULLONG_MAX);
    if (rate != ULLONG_MAX)
        options->body_min_rate = rate ? (unsigned)rate : CSGI_SERVER_NO_MIN_RATE;
    options->backlog = (int)setting(&conf, "backlog", 0);
    options->unix_mode = (unsigned)setting(&conf, "unix_mode", 0);
    options->unix_owner = text_setting(&conf, "unix_owner");
    options->unix_group = text_setting(&conf, "unix_group");
    options->pidfile = text_setting(&conf, "pidfile");
    options->error_log = text_setting(&conf, "error_log");
    options->chdir = text_setting(&conf, "chdir");
    options->user = text_setting(&conf, "user");
    options->group = text_setting(&conf, "group");
    /* umask = 0 (or 000) clears the mask; absent leaves it. */
    unsigned long long mask = setting(&conf, "umask", ULLONG_MAX);
    if (mask != ULLONG_MAX)
        options->umask = mask ? (unsigned)mask : CSGI_SERVER_UMASK_ZERO;

    const char *host = text_setting(&conf, "host");
    if (!host || !host[0])
        host = "127.0.0.1";
    int v6 = strchr(host, ':') != NULL && host[0] != '[';
    snprintf(out->address, sizeof(out->address), "%s%s%s:%llu", v6 ? "[" : "", host, v6 ? "]" : "",
             setting(&conf, "port", 8080));
    return 0;
}

/* Whether address serves TLS: "https://" yes, "http://" no, no scheme as
   the section says (TLS with cert_file, but a Unix socket stays plain: a
   proxy in front speaks to it). *bare: the address without its scheme
   (and a final '/'), in bare_size bytes. */
static int address_tls(const char *address, const csgi_server__tls_conf *tls, char *bare,
                       size_t bare_size)
{
    int want_tls = tls && tls->enabled && strncmp(address, "unix:", 5) != 0;
    if (strncmp(address, "https://", 8) == 0) {
        address += 8;
        want_tls = 1;
    } else if (strncmp(address, "http://", 7) == 0) {
        address += 7;
        want_tls = 0;
    }
    snprintf(bare, bare_size, "%s", address);
    size_t len = strlen(bare);
    if (len && bare[len - 1] == '/') /* https://host:port/ */
        bare[len - 1] = '\0';
    return want_tls;
}

/* Listen on one address of the section's listeners (address_tls), or
   serve the listener index adopted from systemd (or an old master) as its
   address says. */
static int listen_one(csgi_server *server, const char *address, const csgi_server__tls_conf *tls,
                      size_t adopted, csgi_load_error *error)
{
    char bare[300];
    int want_tls = address_tls(address, tls, bare, sizeof(bare));
    if (want_tls && !(tls && tls->enabled)) {
        csgi_load_error__set(error, NULL, 0, NULL, NULL,
                             "cannot listen on https://%s: the server section has no cert_file",
                             bare);
        return CSGI_EINVAL;
    }
    csgi_tls_options options;
    csgi_tls_certificate certificates[CSGI_SERVER__MAX_CERTIFICATES];
    if (want_tls)
        csgi_server__tls_conf_options(tls, &options, certificates);
    int rc;
    if (adopted != (size_t)-1) {
        csgi_http__tls *made = NULL;
        rc = want_tls ? make_tls(server, bare, &options, &made) : 0;
        if (rc == 0 && made)
            rc = attach_tls(server, adopted, made);
    } else if (want_tls) {
        rc = csgi_server_listen_tls(server, bare, &options);
    } else {
        rc = csgi_server_listen(server, bare);
    }
    if (rc != 0)
        csgi_load_error__set(error, NULL, 0, NULL, NULL, "cannot listen on %s%s: %s",
                             want_tls ? "https://" : "", bare, csgi_strerror(rc));
    return rc;
}

int csgi_server__http_serve(csgi_server *server, csgi_loader *loader, const char *address,
                            const csgi_server__tls_conf *tls, int allow_root,
                            csgi_load_error *error)
{
    /* A policy of the deploy file's server, not of the library: a host
       program may drop privileges itself. */
    if (geteuid() == 0 && !server->run_user && !allow_root) {
        csgi_load_error__set(error, NULL, 0, NULL, NULL,
                             "refusing to serve as root: set user (the user to serve as), or "
                             "allow_root = true");
        csgi_server_free(server);
        return CSGI_EACCESS;
    }
    const char *own_list[1] = {address};
    size_t count = 0;
    const char *const *addresses = csgi_loader__listen(loader, &count);
    if (!count) {
        addresses = own_list;
        count = 1;
    }
    /* Sockets systemd passed replace the addresses (socket activation). */
    size_t activated = 0;
    int rc = csgi_server_listen_systemd(server, &activated);
    if (rc != 0)
        csgi_load_error__set(error, NULL, 0, NULL, NULL, "socket activation: %s",
                             csgi_strerror(rc));
    /* Adopted sockets serve TLS as their addresses say: those given again
       (an upgrade starts the new master with the old one's arguments, and
       passes the listeners in their order), else as the section says. */
    for (size_t i = 0; i < activated && rc == 0; i++)
        rc = listen_one(server, count == activated ? addresses[i] : server->addresses[i], tls, i,
                        error);
    if (activated)
        count = 0;
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = listen_one(server, addresses[i], tls, (size_t)-1, error);
    if (rc == 0 && (rc = csgi_server_run_until_signal(server)) != 0) {
        if (rc == CSGI_EWORKERS && server->start_failure.text[0] && error)
            *error = server->start_failure; /* the deploy file's error, at its place */
        else
            csgi_load_error__set(error, NULL, 0, NULL, NULL, "the server failed: %s",
                                 csgi_strerror(rc));
    }
    csgi_server_free(server);
    return rc;
}

int csgi_server__http_runner(csgi_loader *loader, const csgi_conf *global_conf,
                             const csgi_conf *local_conf, csgi_app *app, csgi_load_error *error)
{
    (void)global_conf;
    csgi_server__http_settings settings;
    int rc = csgi_server__http_read(&settings, loader, local_conf, error);
    if (rc != 0) {
        csgi_app_free(app);
        return rc;
    }
    csgi_server *server = NULL;
    char why[256];
    rc = new_with_app(&server, app, &settings.options, NULL, why, sizeof(why));
    if (rc != 0) {
        /* The keys were checked: what is left is the access log's file. */
        if (why[0])
            csgi_conf_error(local_conf, "access_log", error, "%s", why);
        else
            csgi_load_error__set(error, NULL, 0, NULL, NULL, "cannot create the server: %s",
                                 csgi_strerror(rc));
        return rc;
    }
    return csgi_server__http_serve(server, loader, settings.address, &settings.tls,
                                   settings.allow_root, error);
}
