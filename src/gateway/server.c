/*
 * The public server object (include/csgi/server.h): an engine whose
 * requests run an application through the gateway; the one way to serve
 * until a signal (csgi_server_run_until_signal), which csgi_serve(), the
 * built-in INI server runner (egg:csgi#http) and csgi-serve all use; and
 * that runner, beside the server it runs (its conf keys are documented in
 * csgi/loader.h and docs/config.md).
 */
#include "common/alloc.h"
#include "common/error_page.h"
#include "common/options.h"
#include "gateway/gateway.h"
#include "common/log.h"
#include "gateway/server_private.h"
#include "http/access_log.h"
#include "http/engine.h"
#include "loader/loader_private.h"

#include <csgi/server.h>

#include <event2/event.h>

#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

_Static_assert((int)CSGI_LOG_ERROR == (int)CSGI_LOG__ERROR &&
                   (int)CSGI_LOG_DEBUG == (int)CSGI_LOG__DEBUG,
               "public and engine log levels are the same numbers");

/* The grace period of a stop by signal, unless the options say otherwise. */
#define DEFAULT_GRACE_MS 10000u

struct csgi_server {
    csgi_http__engine *engine;
    csgi_gateway gateway;
    csgi_access_log *access_log; /* NULL without one; outlives the engine */
    csgi_app *app;
    unsigned grace_ms;
    int host_base; /* runs on the host's event loop */
    int started;
    char **addresses; /* as given to csgi_server_listen, for "serving on" */
    size_t address_count;
};

void csgi_server_options_init(csgi_server_options *options)
{
    static const csgi_server_options defaults = CSGI_SERVER_OPTIONS_INIT;
    *options = defaults;
}

/* Engine options from server options: 0 means the engine's default. */
static int engine_options(const csgi_server_options *in, csgi_http__options *out,
                          unsigned *grace_ms)
{
    csgi_http__options_init(out);
    out->log = csgi_log__stderr;
    *grace_ms = DEFAULT_GRACE_MS;
    if (!in)
        return 0;
    /* Version 1 had no grace_timeout_ms, version 2 no error_render,
       version 3 no log_level and access log: never read past the end of an
       older struct. */
    if (!csgi_options__version_ok(in->version, CSGI_SERVER_OPTIONS_VERSION))
        return CSGI_EINVAL;
    if (in->version >= 4) {
        if (in->log_level < CSGI_LOG__ERROR || in->log_level > CSGI_LOG__DEBUG)
            return CSGI_EINVAL;
        out->log_level = in->log_level;
    }
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
#undef TAKE
    if (in->max_body)
        out->max_body = in->max_body == UINT64_MAX ? 0 : in->max_body;
    if (in->verbose && out->log_level < CSGI_LOG__INFO) /* verbose: info at least */
        out->log_level = CSGI_LOG__INFO;
    if (in->log) {
        out->log = in->log;
        out->log_userdata = in->log_userdata;
    }
    if (in->version >= 2 && in->grace_timeout_ms)
        *grace_ms = in->grace_timeout_ms;
    if (in->version >= 3) {
        out->error_render = in->error_render;
        out->error_render_userdata = in->error_render_userdata;
    }
    return 0;
}

/* The access log the options ask for, or none (*out NULL). why: what was
   wrong. */
static int make_access_log(const csgi_server_options *in, const csgi_http__options *engine_opts,
                           csgi_access_log **out, char *why, size_t why_size)
{
    *out = NULL;
    if (!in || in->version < 4 || !in->access_log || !in->access_log[0])
        return 0;
    csgi_access_log__config config = {
        .destination = in->access_log,
        .format = in->access_log_format,
        .buffer = in->access_log_buffer,
        .flush_ms = in->access_log_flush_ms,
        .threads = (int)engine_opts->threads,
        .error_log = engine_opts->log,
        .error_userdata = engine_opts->log_userdata,
        .error_level = engine_opts->log_level,
    };
    return csgi_access_log__new(out, &config, why, why_size);
}

/* csgi_server_new, telling the caller what was wrong with the access log
   in why ("" when it was something else). */
static int server_new(csgi_server **out, csgi_app *app, const csgi_server_options *options,
                      struct event_base *base, char *why, size_t why_size)
{
    why[0] = '\0';
    if (out)
        *out = NULL;
    csgi_http__options engine_opts;
    unsigned grace_ms = 0;
    csgi_access_log *access_log = NULL;
    int err = out && app ? engine_options(options, &engine_opts, &grace_ms) : CSGI_EINVAL;
    if (!err)
        err = make_access_log(options, &engine_opts, &access_log, why, why_size);
    csgi_server *server = err ? NULL : csgi__calloc(1, sizeof(*server));
    if (!server) {
        csgi_access_log__free(access_log);
        csgi_app_free(app);
        return err ? err : CSGI_ENOMEM;
    }
    engine_opts.access_log = access_log;
    server->access_log = access_log;
    server->app = app;
    server->grace_ms = grace_ms;
    server->host_base = base != NULL;
    server->gateway.app = app;
    server->gateway.multithread = engine_opts.threads > 1;
    server->gateway.log = engine_opts.log;
    server->gateway.log_userdata = engine_opts.log_userdata;
    server->gateway.log_level = engine_opts.log_level;
    csgi_http__handler handler = {csgi_gateway__on_request, &server->gateway};
    err = csgi_http__engine_new(&server->engine, &engine_opts, &handler, base);
    if (err) {
        csgi_access_log__free(access_log);
        csgi_app_free(app);
        csgi__free(server);
        return err;
    }
    *out = server;
    return 0;
}

int csgi_server_new(csgi_server **out, csgi_app *app, const csgi_server_options *options,
                    struct event_base *base)
{
    char why[256];
    int err = server_new(out, app, options, base, why, sizeof(why));
    if (err && why[0]) {
        csgi_log__fn log = options && options->log ? options->log : csgi_log__stderr;
        csgi_log__write(log, options ? options->log_userdata : NULL, CSGI_LOG__ERROR,
                        CSGI_LOG__ERROR, "access log: %s", why);
    }
    return err;
}

csgi_access_log *csgi_server__access_log(csgi_server *server)
{
    return server->access_log;
}

void csgi_server_reopen_logs(csgi_server *server)
{
    if (server)
        csgi_access_log__reopen(server->access_log);
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
    return err ? err : remember(server, address);
}

int csgi_server_port(const csgi_server *server, size_t index)
{
    return server ? csgi_http__engine_listener_port(server->engine, index) : -1;
}

int csgi_server_start(csgi_server *server)
{
    if (!server)
        return CSGI_EINVAL;
    int err = csgi_http__engine_start(server->engine);
    if (err == 0)
        server->started = 1;
    return err;
}

int csgi_server_run(csgi_server *server)
{
    if (!server)
        return CSGI_EINVAL;
    int err = csgi_http__engine_run(server->engine);
    /* Every loop has ended: the lines of the last requests go out now. */
    csgi_access_log__flush(server->access_log);
    return err;
}

void csgi_server_stop(csgi_server *server, unsigned grace_ms)
{
    if (server)
        csgi_http__engine_stop(server->engine, grace_ms);
}

void csgi_server_free(csgi_server *server)
{
    if (!server)
        return;
    csgi_http__engine_free(server->engine);    /* ends every request first */
    csgi_access_log__free(server->access_log); /* after their lines */
    csgi_app_free(server->app);
    for (size_t i = 0; i < server->address_count; i++)
        csgi__free(server->addresses[i]);
    csgi__free(server->addresses);
    csgi__free(server);
}

/* ---- serving until a signal ---------------------------------------------------------- */

static void server_log(const csgi_server *server, int level, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void server_log(const csgi_server *server, int level, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    csgi_log__vwrite(server->gateway.log, server->gateway.log_userdata, server->gateway.log_level,
                     level, format, args);
    va_end(args);
}

/* Runs in the loop (libevent turns the signal into an event): no
   async-signal-safety to worry about. */
static void on_signal(evutil_socket_t signal_number, short what, void *arg)
{
    (void)what;
    csgi_server *server = arg;
    server_log(server, CSGI_LOG_WARNING, "signal %d (%s), stopping (grace %u ms)",
               (int)signal_number, strsignal((int)signal_number), server->grace_ms);
    csgi_server_stop(server, server->grace_ms);
}

/* SIGUSR1 (logrotate's postrotate): reopen the log files, now, in the loop
   (the flush does what csgi_server_reopen_logs asked for). */
static void on_reopen_signal(evutil_socket_t signal_number, short what, void *arg)
{
    (void)what;
    csgi_server *server = arg;
    server_log(server, CSGI_LOG_INFO, "signal %d (%s), reopening the log files", (int)signal_number,
               strsignal((int)signal_number));
    csgi_server_reopen_logs(server);
    csgi_access_log__flush(server->access_log);
}

/* "serving on http://HOST:PORT/" (the real port) or "serving on unix:/path". */
static void print_listeners(const csgi_server *server)
{
    for (size_t i = 0; i < server->address_count; i++) {
        const char *address = server->addresses[i];
        if (strncmp(address, "unix:", 5) == 0) {
            printf("serving on %s\n", address);
            continue;
        }
        const char *colon = strrchr(address, ':');
        int host_len = colon ? (int)(colon - address) : (int)strlen(address);
        printf("serving on http://%.*s:%d/\n", host_len, address, csgi_server_port(server, i));
    }
    fflush(stdout);
}

int csgi_server_run_until_signal(csgi_server *server)
{
    if (!server)
        return CSGI_EINVAL;
    if (server->host_base)
        return CSGI_ESTATE;
    int err = server->started ? 0 : csgi_server_start(server);
    if (err)
        return err;
    print_listeners(server);
    /* libevent puts the previous handlers back when the events go. */
    struct event_base *base = csgi_http__engine_base(server->engine);
    struct event *stop_int = evsignal_new(base, SIGINT, on_signal, server);
    struct event *stop_term = evsignal_new(base, SIGTERM, on_signal, server);
    struct event *reopen = evsignal_new(base, SIGUSR1, on_reopen_signal, server);
    if (!stop_int || !stop_term || evsignal_add(stop_int, NULL) || evsignal_add(stop_term, NULL))
        err = CSGI_ESYSTEM;
    else if (!reopen || evsignal_add(reopen, NULL))
        err = CSGI_ESYSTEM;
    else
        err = csgi_server_run(server);
    if (stop_int)
        event_free(stop_int);
    if (stop_term)
        event_free(stop_term);
    if (reopen)
        event_free(reopen);
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
        server_log(server, CSGI_LOG_ERROR, "cannot serve on %s: %s", address, csgi_strerror(err));
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
    KEY_ACCESS_LOG_FORMAT
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
    {"log_level", KEY_LOG_LEVEL, 0, 0, 0},
    {"access_log", KEY_ACCESS_LOG, 0, 0, 0},
    {"access_log_format", KEY_ACCESS_LOG_FORMAT, 0, 0, 0},
    {"access_log_buffer", KEY_NUMBER, 1, 64 * 1024 * 1024, 1},
    {"access_log_flush", KEY_NUMBER, 1, 3600, 1000},
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
};

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

/* What a section says: numbers scaled, *present 1 for the keys given. */
typedef struct server_conf {
    unsigned long long number[SERVER_KEY_COUNT];
    int present[SERVER_KEY_COUNT];
} server_conf;

static int key_index(const char *name)
{
    for (size_t i = 0; i < SERVER_KEY_COUNT; i++)
        if (strcmp(server_keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int read_conf(const csgi_conf *conf, server_conf *out, csgi_load_error *error)
{
    memset(out, 0, sizeof(*out));
    const char *name, *value;
    for (size_t i = 0; csgi_conf_entry(conf, i, &name, &value); i++) {
        int k = key_index(name);
        if (k < 0) {
            for (size_t n = 0; n < sizeof(other_names) / sizeof(other_names[0]); n++) {
                if (strcmp(name, other_names[n].theirs) == 0) {
                    csgi_conf_error(conf, name, error, "unknown key for egg:csgi#http (it is %s)",
                                    other_names[n].ours);
                    return CSGI_EINVAL;
                }
            }
            csgi_conf_error(conf, name, error,
                            "unknown key for egg:csgi#http (known: host, port, threads, "
                            "max_connections, max_body, header_timeout, body_timeout, "
                            "keepalive_timeout, send_timeout, grace_timeout, "
                            "max_keepalive_requests, server_header, verbose, error_format, "
                            "log_level, access_log, access_log_format, access_log_buffer, "
                            "access_log_flush)");
            return CSGI_EINVAL;
        }
        const struct server_key *key = &server_keys[k];
        out->present[k] = 1;
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

int csgi_server__http_check(const csgi_conf *local_conf, csgi_load_error *error)
{
    server_conf conf;
    return read_conf(local_conf, &conf, error);
}

/* The value of key name, or fallback when the section does not give it. */
static unsigned long long setting(const server_conf *conf, const char *name,
                                  unsigned long long fallback)
{
    int k = key_index(name);
    return conf->present[k] ? conf->number[k] : fallback;
}

int csgi_server__http_runner(csgi_loader *loader, const csgi_conf *global_conf,
                             const csgi_conf *local_conf, csgi_app *app, csgi_load_error *error)
{
    (void)global_conf;
    server_conf conf;
    int rc = read_conf(local_conf, &conf, error);
    if (rc != 0) {
        csgi_app_free(app);
        return rc;
    }
    csgi_server_options options;
    csgi_server_options_init(&options);
    options.threads = (unsigned)setting(&conf, "threads", 0);
    options.max_connections = (unsigned)setting(&conf, "max_connections", 0);
    options.max_body = setting(&conf, "max_body", 0); /* 0 keeps the default */
    options.header_timeout_ms = (unsigned)setting(&conf, "header_timeout", 0);
    options.body_timeout_ms = (unsigned)setting(&conf, "body_timeout", 0);
    options.keepalive_timeout_ms = (unsigned)setting(&conf, "keepalive_timeout", 0);
    options.send_timeout_ms = (unsigned)setting(&conf, "send_timeout", 0);
    options.grace_timeout_ms = (unsigned)setting(&conf, "grace_timeout", 0);
    options.max_keepalive_requests = (unsigned)setting(&conf, "max_keepalive_requests", 0);
    options.server_header = csgi_conf_get(local_conf, "server_header");
    options.verbose = (int)setting(&conf, "verbose", 0);
    options.error_render = csgi_error_page__named(csgi_conf_get(local_conf, "error_format"));
    options.log_level = (int)setting(&conf, "log_level", CSGI_LOG__WARN);
    options.access_log = csgi_conf_get(local_conf, "access_log");
    options.access_log_format = csgi_conf_get(local_conf, "access_log_format");
    options.access_log_buffer = (size_t)setting(&conf, "access_log_buffer", 0);
    options.access_log_flush_ms = (unsigned)setting(&conf, "access_log_flush", 0);

    /* The addresses: csgi_loader_set_listen's, else host:port. */
    const char *host = csgi_conf_get(local_conf, "host");
    if (!host || !host[0])
        host = "127.0.0.1";
    char own[300];
    int v6 = strchr(host, ':') != NULL && host[0] != '[';
    snprintf(own, sizeof(own), "%s%s%s:%llu", v6 ? "[" : "", host, v6 ? "]" : "",
             setting(&conf, "port", 8080));
    const char *own_list[1] = {own};
    size_t count = 0;
    const char *const *addresses = csgi_loader__listen(loader, &count);
    if (!count) {
        addresses = own_list;
        count = 1;
    }

    csgi_server *server = NULL;
    char why[256];
    rc = server_new(&server, app, &options, NULL, why, sizeof(why));
    if (rc != 0) {
        /* The keys were checked: what is left is the access log's file. */
        if (why[0])
            csgi_conf_error(local_conf, "access_log", error, "%s", why);
        else
            csgi_load_error__set(error, NULL, 0, NULL, NULL, "cannot create the server: %s",
                                 csgi_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < count && rc == 0; i++) {
        rc = csgi_server_listen(server, addresses[i]);
        if (rc != 0)
            csgi_load_error__set(error, NULL, 0, NULL, NULL, "cannot listen on %s: %s",
                                 addresses[i], csgi_strerror(rc));
    }
    if (rc == 0 && (rc = csgi_server_run_until_signal(server)) != 0)
        csgi_load_error__set(error, NULL, 0, NULL, NULL, "the server failed: %s",
                             csgi_strerror(rc));
    csgi_server_free(server);
    return rc;
}
