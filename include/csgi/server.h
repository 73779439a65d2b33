/**
 * @file csgi/server.h
 * @brief Serving an application: csgi_serve() and the server object.
 *
 * csgi_serve() is Paste's httpserver.serve: one call that serves an
 * application until SIGINT or SIGTERM. The server object is for C services
 * that embed csgi: options, several listeners, threads, its own event loop
 * or the host's, graceful stop, and worker processes (the `workers`
 * option): a master that binds the listeners once and keeps N worker
 * processes serving on them, replaces those that die, reloads on SIGHUP
 * and recycles workers after max_requests (docs/architecture.md, "Worker
 * processes").
 */
#ifndef CSGI_SERVER_H
#define CSGI_SERVER_H

#include "app.h"
#include "common.h"
#include "errors.h"
#include "loader.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;

/** Severity of a log message, most severe first. */
typedef enum csgi_log_level {
    CSGI_LOG_ERROR = 0,   /**< an application failed, a system call failed */
    CSGI_LOG_WARNING = 1, /**< something the operator should look at */
    CSGI_LOG_INFO = 2,    /**< refused requests, clients leaving (log_level info or verbose) */
    CSGI_LOG_DEBUG = 3    /**< an application's own debugging lines (csgi_environ_log_at) */
} csgi_log_level;

/** Where log lines go: one message, without a trailing newline. */
typedef void (*csgi_log_fn)(int level, const char *message, void *userdata);

/** A server (opaque). */
typedef struct csgi_server csgi_server;

/** Version of csgi_server_options; CSGI_SERVER_OPTIONS_INIT sets it. */
#define CSGI_SERVER_OPTIONS_VERSION 8

/** csgi_server_options.body_min_rate: no minimum rate (body_timeout_ms
    then counts between reads, as nginx's client_body_timeout). */
#define CSGI_SERVER_NO_MIN_RATE (~0u)

/** csgi_server_options.umask: set the mask 000 (0 in the field leaves the
    process's mask as it is). */
#define CSGI_SERVER_UMASK_ZERO (~0u)

/**
 * Server options. Start from CSGI_SERVER_OPTIONS_INIT (or
 * csgi_server_options_init()), which holds the documented defaults; a
 * field left 0 means its default too, except log_level, where 0 is
 * CSGI_LOG_ERROR (the initializer sets CSGI_LOG_WARNING).
 *
 * The access log (version 5) has a line per request the server answered,
 * the requests it refused itself included (400, 408, 413, 414, 431, ...),
 * in Apache's combined format unless access_log_format says otherwise;
 * docs/server.md lists the format's directives. Request bytes are escaped
 * (\xHH), so a client cannot forge a line.
 */
typedef struct csgi_server_options {
    unsigned version; /**< CSGI_SERVER_OPTIONS_VERSION */

    unsigned threads;         /**< event loops, each in its own thread: 1 */
    unsigned max_connections; /**< per loop; a new client past it takes the place of the
                                   connection idle the longest, or is closed at once when
                                   none is idle: 4096 */

    size_t max_request_line; /**< bytes, else 414: 8192 */
    size_t max_header_line;  /**< bytes, else 431: 8192 */
    size_t max_head;         /**< bytes of the whole head, else 431: 32768 */
    size_t max_headers;      /**< header fields, else 431: 100 */
    uint64_t max_body;       /**< request body bytes, else 413: 1 MiB; UINT64_MAX = none */

    unsigned header_timeout_ms;      /**< the whole request head: 60000 */
    unsigned body_timeout_ms;        /**< a body being waited for: at most this long without
                                          a byte, and the allowance of body_min_rate: 60000 */
    unsigned keepalive_timeout_ms;   /**< idle between requests: 75000 */
    unsigned send_timeout_ms;        /**< between writes to a client not reading: 60000 */
    unsigned max_keepalive_requests; /**< per connection: 1000 */

    const char *server_header; /**< Server header value (copied); "" = none: "csgi" */
    int verbose;               /**< also log refused requests and clients leaving: 0 */
    csgi_log_fn log;           /**< where log lines go: NULL = standard error, timestamped */
    void *log_userdata;        /**< passed to log */

    unsigned grace_timeout_ms; /**< csgi_server_run_until_signal lets requests in progress
                                    finish this long after the signal (version 2): 10000 */

    csgi_error_render_fn error_render; /**< renders the server's own error pages: 400, 408,
                                            413, 414, 431, 501, 505, and 500 for an application
                                            that failed before it answered (csgi/errors.h;
                                            version 3): NULL = csgi_error_render_text */
    void *error_render_userdata;       /**< passed to error_render (borrowed: it must outlive
                                            the server) */

    unsigned workers;             /**< worker processes: 0 = serve in this process (version 4);
                                       N: csgi_server_run_until_signal() is the master of N
                                       workers, each with `threads` loops: 0 */
    unsigned max_requests;        /**< with workers: a worker that has received this many
                                       requests is replaced (a new one first, then it stops
                                       gracefully): 0 = never */
    unsigned max_requests_jitter; /**< with max_requests: each worker's limit is raised by a
                                       random 0 to this many, so workers do not all recycle at
                                       once: 0 */

    int log_level;                 /**< the least severe csgi_log_level logged (version 5):
                                        CSGI_LOG_WARNING; verbose makes it at least CSGI_LOG_INFO */
    const char *access_log;        /**< where the access log goes (copied; version 5): NULL or
                                        "" = no access log, "-" or "stderr" = standard error,
                                        "stdout", "syslog" or "syslog:FACILITY" (user, daemon,
                                        local0..local7; default local7), else a file, appended
                                        to (created 0644, reopened by csgi_server_reopen_logs);
                                        with workers each worker opens it and writes its own
                                        lines, whole lines per write(2) */
    const char *access_log_format; /**< the access log's format (copied; version 5): NULL =
                                        "combined"; "combined", "common", or % directives */
    size_t access_log_buffer;      /**< bytes of lines buffered before they are written
                                        (version 5): 65536; 1 = a write per line */
    unsigned access_log_flush_ms;  /**< buffered lines are written at the latest this long
                                        after the first of them (version 5): 1000 */

    unsigned body_min_rate; /**< bytes per second a client must keep up, on average, while
                                 the server waits for its body, after an allowance of
                                 body_timeout_ms; slower, it gets 408 (version 6): 500;
                                 CSGI_SERVER_NO_MIN_RATE = none */

    int backlog;            /**< listen(2) backlog of each listener csgi_server_listen()
                                 binds (version 7): 511, as nginx; the kernel caps it at
                                 net.core.somaxconn */
    unsigned unix_mode;     /**< permissions given to the file of each Unix socket
                                 csgi_server_listen() binds, e.g. 0660 (version 7): 0 =
                                 what the umask leaves */
    const char *unix_owner; /**< user name (or number) that owns those files (version 7):
                                 NULL = the process's user */
    const char *unix_group; /**< group name (or number) of those files (version 7): NULL =
                                 the process's group */
    const char *pidfile;    /**< file csgi_server_run_until_signal() writes the serving
                                 process's pid to (the master's, with workers) once the
                                 listeners are bound, and removes when it returns; a file
                                 that names a live process is refused (version 7): NULL =
                                 none */
    unsigned umask;         /**< the process's file mode creation mask, set by
                                 csgi_server_new() and csgi_server_new_source() before
                                 anything listens (version 7): 0 = unchanged;
                                 CSGI_SERVER_UMASK_ZERO = 000 */
    const char *chdir;      /**< directory the process changes to, at the same moment as
                                 umask (version 7): NULL = stay */
    const char *user;       /**< user (name or number) to serve as, taken once the
                                 listeners are bound and the pid file written: by this
                                 process in csgi_server_run_until_signal(), or with workers
                                 by each worker right after its fork, before it builds the
                                 application (the master keeps its user: it removes the pid
                                 file and reloads); supplementary groups are the user's,
                                 and the change is checked (version 7): NULL = stay. The
                                 library does not refuse to serve as root without it:
                                 that policy is csgi-serve's and egg:csgi#http's
                                 (allow_root), since a host may drop privileges itself */
    const char *group;      /**< group (name or number) to serve as, with or without
                                 user (version 7): NULL = the user's login group, or stay */

    unsigned busy_timeout_ms; /**< with workers: a worker whose event loop stays in one
                                   callback this long (an application that does not
                                   return) is killed and replaced, and the master logs
                                   the request (version 8; gunicorn's timeout, uWSGI's
                                   harakiri): 0 = never. Each loop tells the master it
                                   lives from a timer, through shared memory. Needs
                                   workers: CSGI_EINVAL without */
    int reload_exec;          /**< with workers: SIGHUP upgrades in place as SIGUSR2 does
                                   (a new master from the program's file, which inherits
                                   the listeners), so a reload runs new code even when
                                   the application is built in the master (version 8):
                                   0 = SIGHUP loads a new generation in this master */
    const char *error_log;    /**< file the error log goes to (copied; version 8):
                                   csgi_server_run_until_signal() opens it for appending
                                   (created 0640, given to user when one is set) and makes
                                   it the process's standard error, so that what the
                                   application and the workers write there lands in it
                                   too; csgi_server_reopen_logs() and SIGUSR1 reopen it.
                                   NULL, "" or "-" = standard error as it is */
} csgi_server_options;

/** Initializer for csgi_server_options: every field its default. */
#define CSGI_SERVER_OPTIONS_INIT                                                                   \
    {                                                                                              \
        CSGI_SERVER_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, 0, NULL, NULL, 0,   \
            NULL, NULL, 0, 0, 0, CSGI_LOG_WARNING, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, 0, \
            NULL, NULL, NULL, 0, 0, NULL                                                           \
    }

/** Fill *options with the defaults (same as CSGI_SERVER_OPTIONS_INIT). */
CSGI_EXTERN void csgi_server_options_init(csgi_server_options *options);

/**
 * Create a server for an application.
 *
 * With options->workers N > 0, csgi_server_run_until_signal() forks N
 * worker processes that serve app: it was built before the fork (what
 * gunicorn calls preload), so SIGHUP starts new workers with the same
 * application; csgi_server_new_source() builds it in each worker instead,
 * and can load a new one on SIGHUP.
 *
 * @param out     where to store the server
 * @param app     the application; takes the reference: freed with the server
 *                (also when this call fails)
 * @param options copied; NULL = defaults
 * @param base    an event loop the host program runs (borrowed; threads must
 *                be 1, workers 0), or NULL for the server's own loops
 * @return 0, CSGI_EINVAL (bad options: a version out of range, a log_level
 *         other than the four, an access_log_format with an unknown
 *         directive, an unknown syslog facility), CSGI_EACCESS,
 *         CSGI_ENOTFOUND, CSGI_ESYSTEM (the access log's file cannot be
 *         opened), CSGI_ENOMEM. What was wrong with the access log is
 *         also logged (as an error, through the options' log).
 */
CSGI_EXTERN int csgi_server_new(csgi_server **out, csgi_app *app,
                                const csgi_server_options *options, struct event_base *base);

/**
 * Where the worker processes of a server get their application: a
 * configuration the master loads (at csgi_server_new_source(), then on each
 * SIGHUP: a generation of workers), and from which each worker builds its
 * application after the fork, so that nothing of it is shared between
 * processes (database connections, random seeds, threads). A source that
 * builds the application in load (preload) makes build return a new
 * reference to it. The functions get the source's state first.
 */
typedef struct csgi_server_source_type {
    const char *name; /**< what it loads, for log lines */

    /**
     * Load the configuration, in the master.
     *
     * @param out     set to the generation: what build needs (owned by the
     *                source: the master hands it back to release)
     * @param options on entry the options of the current generation (at
     *                first those given to csgi_server_new_source()); load
     *                may change any field, and the generation's workers run
     *                with them. Strings it sets must stay valid until
     *                release. The listeners are not options: a new
     *                generation serves on the same sockets.
     * @param error   filled when load fails
     * @return 0, or an error: csgi_server_new_source() fails with it; on
     *         SIGHUP the master logs it and the workers of the current
     *         generation keep serving.
     */
    int (*load)(void *state, void **out, csgi_server_options *options, csgi_load_error *error);

    /**
     * Build the application of a generation: in each worker process after
     * the fork (in the calling process when workers is 0).
     *
     * @param out        set to the application (a new reference)
     * @param generation what load made (borrowed)
     * @param error      filled when build fails; the worker sends it to the
     *                   master, which logs it
     * @return 0, or an error: the worker exits; on SIGHUP the master then
     *         keeps the workers of the current generation serving.
     */
    int (*build)(void *state, csgi_app **out, void *generation, csgi_load_error *error);

    /** Release a generation, in the master, once no worker of it lives.
        May be NULL. */
    void (*release)(void *state, void *generation);

    /** Release the state (csgi_server_free()). May be NULL. */
    void (*free)(void *state);
} csgi_server_source_type;

/**
 * Create a server whose application comes from a source: load runs now
 * (its errors show before anything listens); with options->workers N > 0
 * (after load), csgi_server_run_until_signal() is the master of N worker
 * processes, each building the application with build after the fork, and
 * SIGHUP loads a new generation; with 0, build runs now and the server
 * serves in this process, as csgi_server_new() does.
 *
 * @param out     where to store the server
 * @param type    borrowed: it must outlive the server
 * @param state   taken: type->free(state) runs with csgi_server_free(), or
 *                before this returns when it fails
 * @param options copied (the options load starts from); NULL = defaults
 * @param error   filled when load or build fails; NULL allowed
 * @return 0, CSGI_EINVAL (bad options, NULL type), CSGI_ENOMEM, or what
 *         load or build returned.
 */
CSGI_EXTERN int csgi_server_new_source(csgi_server **out, const csgi_server_source_type *type,
                                       void *state, const csgi_server_options *options,
                                       csgi_load_error *error);

/**
 * Listen on an address, now (so errors show before serving starts).
 *
 * @param address "HOST:PORT" (IPv4 address or host name), "[IPv6]:PORT", or
 *                "unix:/path"; port 0 picks a free port
 * @return 0, CSGI_EINVAL, CSGI_EADDRINUSE, CSGI_EACCESS, CSGI_EADDRNOTAVAIL,
 *         CSGI_ESYSTEM.
 */
CSGI_EXTERN int csgi_server_listen(csgi_server *server, const char *address);

/**
 * Listen on the sockets systemd passed to this process (socket
 * activation, sd_listen_fds(3)): when LISTEN_PID is this process's pid,
 * adopt descriptors 3 to 3 + LISTEN_FDS - 1 as listeners, in that order,
 * instead of binding: TCP (IPv4 or IPv6) or Unix stream sockets listening
 * already, whose options (backlog, mode, owner) are systemd's. Then
 * LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are unset, so that a process
 * started later does not take the sockets again. Without the variables
 * (or with another process's LISTEN_PID) it does nothing. The adopted
 * sockets are closed with the server; a Unix socket's file is systemd's
 * and stays. The INI runner egg:csgi#http calls it first and binds its
 * addresses only when systemd passed nothing.
 *
 * @param server the server (borrowed), not started
 * @param count  set to the number of sockets adopted (0: none passed)
 * @return 0, CSGI_EINVAL (NULL argument, a LISTEN_FDS that is not a
 *         number, a descriptor that is not a listening stream socket),
 *         CSGI_ESTATE (started already), CSGI_ENOMEM, CSGI_ESYSTEM. The
 *         sockets adopted before an error stay the server's.
 */
CSGI_EXTERN int csgi_server_listen_systemd(csgi_server *server, size_t *count);

/** The TCP port of listener index (in csgi_server_listen() order), 0 for a
    Unix socket, -1 for no such listener. */
CSGI_EXTERN int csgi_server_port(const csgi_server *server, size_t index);

/** Start accepting (and start the threads). Returns 0 or an error;
    CSGI_ESTATE with workers (csgi_server_run_until_signal() starts them). */
CSGI_EXTERN int csgi_server_start(csgi_server *server);

/** Run the server's own first loop in this thread until it stops, then
    write the access log's buffered lines. Returns 0, or CSGI_ESTATE when the
    server runs on the host's loop or has workers. */
CSGI_EXTERN int csgi_server_run(csgi_server *server);

/**
 * Stop gracefully: stop accepting, answer the requests already sent (in
 * progress, pipelined, or waiting unread in a connection's socket), the
 * first request of a connection that has not sent one yet and the next
 * request of an idle keep-alive connection within a second, the last one
 * on each connection with Connection: close; close the keep-alive
 * connections still idle after that second; after grace_ms, cut what is
 * left. Safe from any
 * thread and from a signal handler. With workers, the master stops as on
 * SIGTERM (each worker stops so for its grace_timeout_ms).
 */
CSGI_EXTERN void csgi_server_stop(csgi_server *server, unsigned grace_ms);

/**
 * Reopen the server's log files: the access log's file is opened again by
 * its name, so that after a rotation (the file renamed) the next lines go
 * to a new file and the renamed one gets nothing more. Lines already
 * buffered go to the old file first. The reopening itself happens in the
 * server's loop, at its next line or flush (within access_log_flush_ms);
 * this call only asks for it, so it is safe from any thread and from a
 * signal handler (it is what SIGUSR1 does under
 * csgi_server_run_until_signal()). With workers, the master (which has no
 * access log of its own) sends SIGUSR1 to each worker, and each reopens
 * its own file. Does nothing for a server without a log file, or NULL.
 *
 * @param server the server (borrowed), or NULL
 */
CSGI_EXTERN void csgi_server_reopen_logs(csgi_server *server);

/**
 * Serve until SIGINT or SIGTERM: start the server if csgi_server_start()
 * was not called, print "serving on http://HOST:PORT/" (the real port) or
 * "serving on unix:/path" for each listener to standard output, run the
 * server's own loops, and on the first signal log it and stop gracefully,
 * letting requests in progress finish for grace_timeout_ms. SIGUSR1
 * reopens the log files (csgi_server_reopen_logs()). The previous signal
 * handlers are back when it returns. The one way csgi serves until a
 * signal: csgi_serve(), the INI server egg:csgi#http and csgi-serve use it.
 *
 * With workers, this process is their master until it stops: it forks
 * them (it must be single-threaded then, as fork(2) requires of a process
 * whose children go on running; csgi starts no thread in a master), keeps
 * their number, replaces a worker that dies, and answers the signals
 * docs/server.md lists: TERM graceful stop, INT and QUIT quick stop, HUP
 * reload (a new generation of workers; the old ones stop once the new
 * ones accept; with reload_exec, an upgrade as USR2), TTIN and TTOU one
 * worker more or less, USR1 passed on to every worker, which reopens its
 * log files, USR2 upgrade in place: the program runs again (its own
 * arguments, from /proc/self/cmdline, in the directory it started in)
 * with the listening sockets as LISTEN_PID/LISTEN_FDS say, and this master
 * retires once the new one's workers accept; for that the program must
 * adopt them with csgi_server_listen_systemd() before it binds anything
 * (csgi-serve does). With busy_timeout_ms, a worker whose loop stays in
 * one callback that long is killed and replaced. Each worker writes its own
 * access log lines (and the last of them when it stops). Worker processes
 * never return from this call: each frees what it made, flushes standard
 * I/O and ends with _exit(2), so that atexit handlers, registered for the
 * master (removing a pid file...), run in the master only.
 *
 * @param server the server (borrowed), listening already
 * @return 0 after a signal stopped it; CSGI_ESTATE for a server on the
 *         host's loop, or a master already running in this process;
 *         CSGI_EWORKERS when workers kept dying right after they started
 *         (or could not build their application at start: the log says
 *         why); CSGI_ESYSTEM when fork or pipe fail; the errors of
 *         csgi_server_start().
 */
CSGI_EXTERN int csgi_server_run_until_signal(csgi_server *server);

/** Version of csgi_server_stats; set it before csgi_server_stats_get(). */
#define CSGI_SERVER_STATS_VERSION 1

/** The live figures of the server serving in this process. */
typedef struct csgi_server_stats {
    unsigned version;          /**< CSGI_SERVER_STATS_VERSION: the caller sets it */
    uint64_t requests;         /**< requests read since the server started, by every worker */
    uint64_t connections;      /**< connections open now, in every worker */
    unsigned workers;          /**< worker processes serving now; 0 without workers */
    unsigned threads;          /**< event loops (threads) of this process */
    int64_t started;           /**< when the server (with workers, its master) started: Unix time */
    double uptime;             /**< seconds since then */
    uint64_t process_requests; /**< requests read by this process */
    uint64_t process_connections; /**< connections open now in this process */
} csgi_server_stats;

/** Initializer for csgi_server_stats: the version set, every figure 0. */
#define CSGI_SERVER_STATS_INIT                              \
    {                                                       \
        CSGI_SERVER_STATS_VERSION, 0, 0, 0, 0, 0, 0.0, 0, 0 \
    }

/**
 * The live figures of the server that serves in this process, for an
 * application's status page: requests read (heads that parsed, those the
 * server answered itself included), connections open, workers, uptime.
 *
 * The server is the last one csgi_server_start() started in this process
 * (csgi_server_run_until_signal() and csgi-serve start it), until it is
 * freed. This process's figures are exact. With workers, the master keeps
 * a slot per worker in memory they share, and each worker copies its
 * figures there once a second: the totals include the other workers' as
 * they were at most a second ago, and the requests of workers that ended.
 * Safe from any thread.
 *
 * @param out where to store them; out->version must be
 *            CSGI_SERVER_STATS_VERSION (CSGI_SERVER_STATS_INIT sets it)
 * @return 0; CSGI_ESTATE when no server serves in this process (an
 *         application under the test client, or the master itself);
 *         CSGI_EINVAL (NULL, another version).
 */
CSGI_EXTERN int csgi_server_stats_get(csgi_server_stats *out);

/** Stop, close everything (the access log's last lines are written) and
    free the server and its application. Accepts NULL. */
CSGI_EXTERN void csgi_server_free(csgi_server *server);

/**
 * Serve app on host:port until SIGINT or SIGTERM, then stop gracefully:
 * csgi_server_run_until_signal() with the default options. Prints "serving
 * on http://HOST:PORT/" (with the real port when port is 0) to standard
 * output first; a failure to listen is logged.
 *
 * @param app  taken (freed before returning)
 * @param host an address such as "127.0.0.1" or "::1"
 * @param port a port; 0 picks a free one
 * @return 0 after a signal stopped it, or an error (address in use, ...).
 */
CSGI_EXTERN int csgi_serve(csgi_app *app, const char *host, int port);

#ifdef __cplusplus
}
#endif

#endif /* CSGI_SERVER_H */
