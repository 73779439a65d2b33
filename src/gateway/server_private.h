/*
 * The server object's insides (internal), shared by server.c (the server,
 * serving until a signal, the INI runner egg:csgi#http and egg:Paste#http,
 * which the loader knows as built-ins in src/loader/registry.c) and
 * master.c (worker processes).
 */
#ifndef CSGI_GATEWAY_SERVER_PRIVATE_H
#define CSGI_GATEWAY_SERVER_PRIVATE_H

#include "gateway/gateway.h"
#include "http/access_log.h"
#include "http/engine.h"

#include <csgi/loader.h>
#include <csgi/server.h>
#include <csgi/tls.h>

#include <stdatomic.h>
#include <sys/types.h>

struct csgi_server {
    /* The engine that serves; with workers (the master) it only holds the
       listeners, which every worker adopts, and never starts. */
    csgi_http__engine *engine;
    csgi_gateway gateway;
    csgi_access_log *access_log; /* NULL without one (and in a master); outlives the engine */
    csgi_app *app;               /* NULL in a master: the source has it */
    unsigned grace_ms;
    int host_base; /* runs on the host's event loop */
    int started;
    char **addresses; /* as given to csgi_server_listen, for "serving on" */
    size_t address_count;
    /* Each listener's TLS (http/tls.h), by engine listener index: owned,
       NULL for plain TCP; tls_count may be short of the listeners. A
       worker's engine borrows its master's. */
    struct csgi_http__tls **tls;
    size_t tls_count;

    /* Unix socket files csgi_server_listen binds get these (0 and -1:
       left as bind made them). */
    unsigned unix_mode;
    uid_t unix_uid;
    gid_t unix_gid;
    char *pidfile;   /* owned; NULL = none */
    char *error_log; /* owned; NULL = standard error as it is */
    /* Whom to serve as (options user and group, resolved): the name for
       initgroups, NULL for no user change; run_gid (gid_t)-1 for none. */
    char *run_user;
    uid_t run_uid;
    gid_t run_gid;

    /* Where the application comes from: a source (csgi_server_new_source),
       or, for csgi_server_new with workers, one that hands out app. NULL
       for a server made by csgi_server_new without workers. */
    const csgi_server_source_type *source_type;
    void *source_state;

    /* With workers: the master's (master.c). */
    unsigned workers;            /* N > 0: csgi_server_run_until_signal is the master */
    csgi_server_options options; /* of the first generation, at the current version */
    char *server_header;         /* options.server_header, copied (owned) */
    void *generation;            /* the first generation, until the master takes it */
    _Atomic int master_running;
    /* Why the first workers could not build the application (text empty
       when they could): the master stopped with CSGI_EWORKERS. */
    csgi_load_error start_failure;

    /* In a worker process: what it tells its master. */
    int message_fd;                   /* -1 outside a worker */
    unsigned long long request_limit; /* max_requests plus jitter; 0 = none */
    _Atomic unsigned long long requests;
};

/* ---- the process (process.c) ---- */

/* A csgi_err for an errno. */
int csgi_server__errno_err(int e);

/* The user named (or numbered) name: its uid in *out, and its login group
   in *group when not NULL ((gid_t)-1 for a number without an entry).
   0 or CSGI_ENOTFOUND. */
int csgi_server__user_id(const char *name, uid_t *out, gid_t *group);

/* The group named (or numbered) name. 0 or CSGI_ENOTFOUND. */
int csgi_server__group_id(const char *name, gid_t *out);

/* Set the options' umask and change to their chdir: once per process,
   before anything listens. 0 or an error (why: what failed). */
int csgi_server__apply_process_options(const csgi_server_options *options, char *why,
                                       size_t why_size);

/* Give a Unix socket's file mode (0: leave it), owner and group ((uid_t)-1
   and (gid_t)-1: leave them). 0 or an error (why: what failed). */
int csgi_server__unix_file(const char *path, unsigned mode, uid_t owner, gid_t group, char *why,
                           size_t why_size);

/* Write this process's pid to path, refusing (CSGI_EADDRINUSE) when the
   file names another live process. 0 or an error (why: what failed). */
int csgi_server__pidfile_write(const char *path, char *why, size_t why_size);

/* Serve as the server's run_user and run_gid: supplementary groups,
   group, then user, each checked. 0 (also when there is nothing to do) or
   an error (why: what failed). */
int csgi_server__drop_privileges(const csgi_server *server, char *why, size_t why_size);

/* Make the server's error_log file this process's standard error (open
   for appending, given to the run user when this process is root). 0 or
   an error (why: what failed). Async-signal-safe. */
int csgi_server__error_log_open(const csgi_server *server, char *why, size_t why_size);

/* Remove the pid file if it still names this process. */
void csgi_server__pidfile_remove(const char *path);

/* The sockets systemd passed to this process (LISTEN_PID is its pid):
   descriptors *first to *first + *count - 1; the variables are unset. 0
   with *count 0 when there are none; CSGI_EINVAL for a LISTEN_FDS that
   is not a number. */
int csgi_server__systemd_fds(int *first, int *count);

/* The working directory before the options' chdir, or NULL when it did
   not change (an upgrade starts the program again from there). */
const char *csgi_server__start_dir(void);

/* Upgrades (master.c): the old master passes the new one, in this
   variable, a descriptor on which the new one writes a byte once it
   serves (its workers all accept). */
#define CSGI_SERVER__UPGRADE_ENV "CSGI_UPGRADE_FD"

/* That descriptor, taken from the environment on the first call (the
   variable is unset), or -1 when this process is no upgrade. */
int csgi_server__upgrade_fd(void);

/* Say that this process serves, once: the old master retires. */
void csgi_server__upgrade_ready(void);

/* In a worker: close this process's copy of the descriptor, unsaid. */
void csgi_server__upgrade_forget(void);

/* A listening socket's address as csgi_server_listen takes it ("HOST:PORT",
   "[IPv6]:PORT", "unix:/path"). 0, or CSGI_EINVAL (not a listening socket
   of a known family). */
int csgi_server__socket_address(int fd, char *out, size_t size);

/* Log through the server's logger. */
void csgi_server__log(const csgi_server *server, int level, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* "serving on http://HOST:PORT/" or "serving on unix:/path" for each
   listener, to standard output. */
void csgi_server__print_listeners(const csgi_server *server);

/* ---- live figures (stats.c) ---- */

/* The master's board: a slot per living worker, in memory the workers
   share. NULL when it cannot be mapped. */
typedef struct csgi_server__board csgi_server__board;
typedef struct csgi_server__board_slot csgi_server__board_slot;
csgi_server__board *csgi_server__board_new(void);
void csgi_server__board_free(csgi_server__board *board);
/* In the master, before fork: a free slot (NULL: none left, or no board). */
csgi_server__board_slot *csgi_server__board_claim(csgi_server__board *board);
/* In the master, after fork: the slot's worker. */
void csgi_server__board_taken(csgi_server__board_slot *slot, pid_t pid);
/* In the master, once the worker ended: its requests retire, the slot frees. */
void csgi_server__board_release(csgi_server__board *board, csgi_server__board_slot *slot);
/* In the worker, after fork: this process's slot (either may be NULL). */
void csgi_server__board_join(csgi_server__board *board, csgi_server__board_slot *slot);
csgi_server__board_slot *csgi_server__board_own_slot(void);
/* Where a worker's engine publishes (NULL without a slot). */
_Atomic unsigned long long *csgi_server__board_requests(csgi_server__board_slot *slot);
_Atomic unsigned long long *csgi_server__board_connections(csgi_server__board_slot *slot);
/* The server csgi_server_stats_get() reports on: set when one starts,
   cleared when it is freed. */
void csgi_server__stats_serving(csgi_server *server);
void csgi_server__stats_gone(csgi_server *server);

/*
 * In a worker process: serve app (taken) with options on the listeners of
 * master (the master's server, borrowed), telling the master through
 * message_fd when it accepts (CSGI_SERVER__READY) and when it reached
 * options->max_requests (CSGI_SERVER__RECYCLE), until TERM or INT
 * (graceful) or QUIT (quick). With options->busy_timeout_ms, its loops
 * beat into heartbeats (one per loop, shared with the master), and
 * SIGXCPU makes it tell the master (CSGI_SERVER__BUSY) which request each
 * stuck loop is in. Returns 0 after a signal, or an error.
 */
int csgi_server__serve_worker(csgi_server *master, csgi_app *app,
                              const csgi_server_options *options, int message_fd,
                              _Atomic long long *heartbeats);
/* How often a worker's loop beats for a timeout of timeout_ms (a quarter
   of it, 50 ms to 1 s). A beat can be that much older than the callback
   that then holds the loop, so the master waits for the timeout plus this
   before it calls a loop stuck: nothing is cut before its whole timeout. */
unsigned csgi_server__heartbeat_ms(unsigned timeout_ms);

/* ---- master.c ---------------------------------------------------------------------- */

/* What a worker tells its master. */
enum {
    CSGI_SERVER__READY = 1,
    CSGI_SERVER__FAILED = 2,
    CSGI_SERVER__RECYCLE = 3,
    /* A loop is stuck: code is how long it has not beaten (ms), the
       error's text the request ("GET /path", "" for none), its line the
       loop. */
    CSGI_SERVER__BUSY = 4
};

/* Be the master of server->workers worker processes until a signal stops
   it (csgi_server_run_until_signal with workers). */
int csgi_server__run_master(csgi_server *server);

/* Stop the master running in this process, as SIGTERM does. Async-signal
   safe. */
void csgi_server__stop_master(void);

/* Have the master running in this process pass SIGUSR1 on to its workers
   (they reopen their log files). Async-signal safe. */
void csgi_server__reopen_master(void);

/* In a worker: tell the master (what: CSGI_SERVER__*; code and error for
   CSGI_SERVER__FAILED, else 0 and NULL). Async-signal safe, callable from
   any thread. */
void csgi_server__tell_master(int fd, int what, int code, const csgi_load_error *error);

/* ---- the INI runner ---------------------------------------------------------------- */

/* Serve app as the [server:] section's local conf says (and the loader's
   csgi_loader_set_server_option values), until a signal stops it. Takes
   app. With workers, they serve app built here (as preload). */
int csgi_server__http_runner(csgi_loader *loader, const csgi_conf *global_conf,
                             const csgi_conf *local_conf, csgi_app *app, csgi_load_error *error);

/* Check the section's local conf (and the loader's server options)
   without serving: every key known, every value valid. */
int csgi_server__http_check(csgi_loader *loader, const csgi_conf *local_conf,
                            csgi_load_error *error);

/* Most certificates a section's cert_file lists (SNI). */
#define CSGI_SERVER__MAX_CERTIFICATES 16

/* What a section says about TLS, copied (plain data: it may be copied
   and kept): the strings are offsets into text, (size_t)-1 for none. */
typedef struct csgi_server__tls_conf {
    int enabled;              /* cert_file given: the section's listeners serve HTTPS */
    csgi_tls_options options; /* without its strings and certificates */
    size_t ca_file, min_protocol, ciphers, ciphersuites;
    size_t cert_file[CSGI_SERVER__MAX_CERTIFICATES], key_file[CSGI_SERVER__MAX_CERTIFICATES];
    size_t used;
    char text[8192];
} csgi_server__tls_conf;

/* The options of conf, their strings and certificates (certificates
   holds CSGI_SERVER__MAX_CERTIFICATES) pointing into conf. */
void csgi_server__tls_conf_options(const csgi_server__tls_conf *conf, csgi_tls_options *out,
                                   csgi_tls_certificate *certificates);

/* What a section of egg:csgi#http says: its options (strings borrowed
   from the conf), preload, and its own address ("host:port"). */
typedef struct csgi_server__http_settings {
    csgi_server_options options;
    int preload;
    int allow_root; /* allow_root: serve as root without user */
    char address[300];
    csgi_server__tls_conf tls;
} csgi_server__http_settings;

int csgi_server__http_read(csgi_server__http_settings *out, csgi_loader *loader,
                           const csgi_conf *local_conf, csgi_load_error *error);

/* Listen on the loader's addresses (csgi_loader_set_listen), else on
   address, and serve until a signal stops it; frees server. tls: the
   section's TLS (borrowed); "https://" addresses, and those without a
   scheme when tls->enabled, serve TLS; "http://" ones plain. */
int csgi_server__http_serve(csgi_server *server, csgi_loader *loader, const char *address,
                            const csgi_server__tls_conf *tls, int allow_root,
                            csgi_load_error *error);

/* The server's access log, or NULL (for tests: csgi_access_log__writes). */
csgi_access_log *csgi_server__access_log(csgi_server *server);

#endif
