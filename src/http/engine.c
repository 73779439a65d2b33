/*
 * The engine: options, listeners, event loops and their threads, graceful
 * stop. Connections themselves live in connection.c.
 *
 * Threads: loop 0 runs in the thread that calls csgi_http__engine_run();
 * loops 1..N-1 run in threads of their own. Each loop has its own socket
 * per TCP listener, bound to the same address with SO_REUSEPORT, so the
 * kernel spreads new connections across loops and no loop ever touches
 * another's connections. Unix sockets cannot be shared that way: every
 * loop polls the one socket, and the first accept wins; so do the loops of
 * a worker process on the sockets its master adopted for it
 * (csgi_http__engine_adopt), which must outlive the worker.
 */
#include "common/alloc.h"
#include "common/vec.h"
#include "http/private.h"

#include <csgi/common.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

void csgi_http__options_init(csgi_http__options *options)
{
    *options = (csgi_http__options){
        .limits = CSGI_HTTP__LIMITS_DEFAULT,
        .max_body = 1024 * 1024,
        .max_trailer = 8192,
        .header_timeout_ms = 60000,
        .body_timeout_ms = 60000,
        .keepalive_timeout_ms = 75000,
        .send_timeout_ms = 60000,
        .linger_timeout_ms = 5000,
        .body_min_rate = 500,
        .max_keepalive_requests = 1000,
        .max_connections = 4096,
        .threads = 1,
        .backlog = 511,
        .body_buffer = 64 * 1024,
        .output_buffer = 64 * 1024,
        .max_drain = 64 * 1024,
        .server_header = "csgi",
        .log_level = CSGI_LOG__WARN,
    };
}

/* ---- Logging ---------------------------------------------------------------- */

void csgi_http__log(csgi_http__engine *engine, int level, const char *format, ...)
{
    const csgi_http__options *o = &engine->options;
    va_list args;
    va_start(args, format);
    csgi_log__vwrite(o->log, o->log_userdata, o->log_level, level, format, args);
    va_end(args);
}

/* ---- Engine ----------------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    /* A client that goes away must cost us an EPIPE, not the process. */
    struct sigaction current;
    if (sigaction(SIGPIPE, NULL, &current) == 0 && current.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

static int options_valid(const csgi_http__options *o)
{
    return o->limits.max_request_line && o->limits.max_header_line && o->limits.max_head &&
           o->limits.max_headers && o->threads >= 1 && o->threads <= 1024 && o->body_buffer &&
           o->output_buffer && o->max_connections;
}

int csgi_http__engine_new(csgi_http__engine **out, const csgi_http__options *options,
                          const csgi_http__handler *handler, struct event_base *base)
{
    *out = NULL;
    pthread_once(&global_once, global_init);
    if (!handler || !handler->on_request)
        return CSGI_EINVAL;

    csgi_http__engine *engine = csgi__calloc(1, sizeof(*engine));
    if (!engine)
        return CSGI_ENOMEM;
    if (options)
        engine->options = *options;
    else
        csgi_http__options_init(&engine->options);
    if (!options_valid(&engine->options) || (base && engine->options.threads != 1)) {
        csgi__free(engine);
        return CSGI_EINVAL;
    }
    const char *server = engine->options.server_header;
    if (server && *server) {
        size_t len = strlen(server);
        if (strpbrk(server, "\r\n") || len > 256) {
            csgi__free(engine);
            return CSGI_EINVAL;
        }
        engine->server_line_len = len + 10;
        engine->server_line = csgi__malloc(engine->server_line_len + 1);
        if (!engine->server_line) {
            csgi__free(engine);
            return CSGI_ENOMEM;
        }
        snprintf(engine->server_line, engine->server_line_len + 1, "Server: %s\r\n", server);
    }
    engine->options.server_header = NULL; /* not kept: the caller owns it */
    engine->handler = *handler;
    engine->host_base = base;
    *out = engine;
    return 0;
}

/* ---- Listeners ---------------------------------------------------------------- */

static int errno_to_err(int e)
{
    switch (e) {
    case EADDRINUSE: return CSGI_EADDRINUSE;
    case EADDRNOTAVAIL: return CSGI_EADDRNOTAVAIL;
    case EACCES:
    case EPERM: return CSGI_EACCESS;
    case ENOMEM:
    case ENOBUFS: return CSGI_ENOMEM;
    case EINVAL:
    case EAFNOSUPPORT: return CSGI_EINVAL;
    default: return CSGI_ESYSTEM;
    }
}

/* Resolve "HOST:PORT", "[V6]:PORT", ":PORT" or "*:PORT". */
static int resolve(const char *address, csgi_http__listener *listener)
{
    int len = (int)sizeof(listener->addr);
    if (evutil_parse_sockaddr_port(address, &listener->addr.sa, &len) == 0) {
        listener->addr_len = (socklen_t)len;
        listener->family = listener->addr.sa.sa_family;
        return 0;
    }
    const char *colon = strrchr(address, ':');
    if (!colon || !colon[1] || strlen(address) > 300)
        return CSGI_EINVAL;
    /* libevent's parser refuses port 0, so "[::1]:0" and "127.0.0.1:0"
       come here: take the brackets off an IPv6 literal. */
    char host[301];
    const char *start = address;
    size_t host_len = (size_t)(colon - address);
    if (host_len >= 2 && address[0] == '[' && address[host_len - 1] == ']') {
        start++;
        host_len -= 2;
    }
    memcpy(host, start, host_len);
    host[host_len] = '\0';
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return CSGI_EINVAL;
    struct evutil_addrinfo hints, *result = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = EVUTIL_AI_PASSIVE;
    const char *node = host[0] && strcmp(host, "*") != 0 ? host : NULL;
    if (!node)
        hints.ai_family = AF_INET;
    if (evutil_getaddrinfo(node, colon + 1, &hints, &result) != 0 || !result)
        return CSGI_EINVAL;
    if (result->ai_addrlen > sizeof(listener->addr)) {
        evutil_freeaddrinfo(result);
        return CSGI_EINVAL;
    }
    memcpy(&listener->addr, result->ai_addr, result->ai_addrlen);
    listener->addr_len = (socklen_t)result->ai_addrlen;
    listener->family = result->ai_family;
    evutil_freeaddrinfo(result);
    return 0;
}

static int tcp_socket(csgi_http__engine *engine, const csgi_http__listener *listener,
                      evutil_socket_t *out)
{
    evutil_socket_t fd = socket(listener->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno_to_err(errno);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (engine->options.threads > 1 &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        int e = errno;
        close(fd);
        return errno_to_err(e);
    }
    if (listener->family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, &listener->addr.sa, listener->addr_len) != 0 ||
        listen(fd, engine->options.backlog) != 0) {
        int e = errno;
        close(fd);
        return errno_to_err(e);
    }
    /* Wake for a connection when its first bytes arrive (a second at most
       without them): the accept callback then reads the request at once. */
    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one));
    *out = fd;
    return 0;
}

static int unix_socket(csgi_http__engine *engine, csgi_http__listener *listener,
                       evutil_socket_t *out)
{
    const char *path = listener->unix_addr.sun_path;
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return CSGI_EADDRINUSE;
        /* A socket file: stale unless a server still answers on it. */
        evutil_socket_t probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0) {
            int alive = connect(probe, (struct sockaddr *)&listener->unix_addr,
                                sizeof(listener->unix_addr)) == 0;
            close(probe);
            if (alive)
                return CSGI_EADDRINUSE;
        }
        unlink(path);
    }
    evutil_socket_t fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno_to_err(errno);
    if (bind(fd, (struct sockaddr *)&listener->unix_addr, sizeof(listener->unix_addr)) != 0 ||
        listen(fd, engine->options.backlog) != 0) {
        int e = errno;
        close(fd);
        return errno_to_err(e);
    }
    *out = fd;
    return 0;
}

/* Listeners per engine: far more than any deployment binds, few enough that
   every loop can hold a socket for each. */
#define MAX_LISTENERS 1024

int csgi_http__engine_listen(csgi_http__engine *engine, const char *address)
{
    if (!address || engine->started)
        return address ? CSGI_ESTATE : CSGI_EINVAL;
    /* Room first: a socket, once bound, has nothing left to fail. */
    void *items = engine->listeners;
    int err = csgi_vec__reserve(&items, &engine->listener_capacity, sizeof(*engine->listeners),
                                engine->listener_count + 1, MAX_LISTENERS);
    engine->listeners = items;
    if (err)
        return err;
    csgi_http__listener listener;
    memset(&listener, 0, sizeof(listener));
    listener.fd = -1;
    if (strncmp(address, "unix:", 5) == 0) {
        const char *path = address + 5;
        size_t len = strlen(path);
        if (len == 0 || len >= sizeof(listener.unix_addr.sun_path))
            return CSGI_EINVAL;
        listener.family = AF_UNIX;
        listener.unix_addr.sun_family = AF_UNIX;
        memcpy(listener.unix_addr.sun_path, path, len + 1);
        err = unix_socket(engine, &listener, &listener.fd);
    } else {
        err = resolve(address, &listener);
        if (err == 0)
            err = tcp_socket(engine, &listener, &listener.fd);
        if (err == 0) {
            socklen_t len = sizeof(listener.addr);
            getsockname(listener.fd, &listener.addr.sa, &len);
            listener.addr_len = len;
            listener.port = ntohs(listener.family == AF_INET6 ? listener.addr.in6.sin6_port
                                                              : listener.addr.in.sin_port);
        }
    }
    if (err)
        return err;
    engine->listeners[engine->listener_count++] = listener;
    return 0;
}

int csgi_http__engine_adopt(csgi_http__engine *engine, int fd)
{
    int err = fd < 0 ? CSGI_EINVAL : engine->started ? CSGI_ESTATE : 0;
    void *items = engine->listeners;
    if (err == 0)
        err = csgi_vec__reserve(&items, &engine->listener_capacity, sizeof(*engine->listeners),
                                engine->listener_count + 1, MAX_LISTENERS);
    engine->listeners = items;
    csgi_http__listener listener;
    memset(&listener, 0, sizeof(listener));
    listener.fd = fd;
    listener.adopted = 1;
    union {
        struct sockaddr sa;
        struct sockaddr_storage storage;
        struct sockaddr_un un;
    } addr;
    socklen_t len = sizeof(addr);
    int type = 0;
    socklen_t type_len = sizeof(type);
    if (err == 0 && (getsockname(fd, &addr.sa, &len) != 0 ||
                     getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) != 0))
        err = errno == ENOTSOCK || errno == EBADF ? CSGI_EINVAL : CSGI_ESYSTEM;
    if (err == 0 && type != SOCK_STREAM)
        err = CSGI_EINVAL;
    if (err == 0) {
        listener.family = addr.sa.sa_family;
        if (listener.family == AF_UNIX) {
            memcpy(&listener.unix_addr, &addr.un,
                   len < sizeof(listener.unix_addr) ? len : sizeof(listener.unix_addr));
        } else if ((listener.family == AF_INET || listener.family == AF_INET6) &&
                   len <= sizeof(listener.addr)) {
            memcpy(&listener.addr, &addr, len);
            listener.addr_len = len;
            listener.port = ntohs(listener.family == AF_INET6 ? listener.addr.in6.sin6_port
                                                              : listener.addr.in.sin_port);
        } else {
            err = CSGI_EINVAL;
        }
    }
    if (err == 0 &&
        (evutil_make_socket_nonblocking(fd) != 0 || evutil_make_socket_closeonexec(fd) != 0))
        err = CSGI_ESYSTEM;
    if (err) {
        if (fd >= 0)
            close(fd);
        return err;
    }
    engine->listeners[engine->listener_count++] = listener;
    return 0;
}

int csgi_http__engine_listener_fd(const csgi_http__engine *engine, size_t index)
{
    return index < engine->listener_count ? engine->listeners[index].fd : -1;
}

size_t csgi_http__engine_listener_count(const csgi_http__engine *engine)
{
    return engine->listener_count;
}

int csgi_http__engine_listener_port(const csgi_http__engine *engine, size_t index)
{
    return index < engine->listener_count ? engine->listeners[index].port : -1;
}

int csgi_http__engine_listener_set_tls(csgi_http__engine *engine, size_t index, csgi_http__tls *tls)
{
    if (index >= engine->listener_count)
        return CSGI_EINVAL;
    if (engine->started)
        return CSGI_ESTATE;
    engine->listeners[index].tls = tls;
    return 0;
}

size_t csgi_http__engine_connection_count(csgi_http__engine *engine)
{
    return atomic_load(&engine->connection_total);
}

unsigned long long csgi_http__engine_request_count(const csgi_http__engine *engine)
{
    unsigned long long total = 0;
    if (engine->started)
        for (unsigned i = 0; i < engine->loop_count; i++)
            total += atomic_load_explicit(&engine->loops[i].requests, memory_order_relaxed);
    return total;
}

unsigned csgi_http__engine_loop_count(const csgi_http__engine *engine)
{
    return engine->started ? engine->loop_count : 0;
}

size_t csgi_http__engine_busy_request(const csgi_http__engine *engine, unsigned loop, char *buf,
                                      size_t size)
{
    if (!size)
        return 0;
    buf[0] = '\0';
    if (!engine->started || loop >= engine->loop_count)
        return 0;
    return csgi_http__loop_busy_request(&engine->loops[loop], buf, size);
}

void csgi_http__engine_disown_listeners(csgi_http__engine *engine)
{
    for (size_t i = 0; i < engine->listener_count; i++)
        engine->listeners[i].adopted = 1;
}

/* ---- Loops ---------------------------------------------------------------------- */

static void set_accepting(csgi_http__loop *loop, int on)
{
    if (loop->accepting == on)
        return;
    loop->accepting = on;
    for (size_t i = 0; i < loop->acceptor_count; i++) {
        if (!loop->acceptors[i].evl)
            continue;
        if (on)
            evconnlistener_enable(loop->acceptors[i].evl);
        else
            evconnlistener_disable(loop->acceptors[i].evl);
    }
}

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *peer,
                      int peer_len, void *arg)
{
    csgi_http__acceptor *acceptor = arg;
    csgi_http__loop *loop = acceptor->loop;
    (void)evl;
    if (loop->stopping) {
        evutil_closesocket(fd);
        return;
    }
    /* At the limit, an idle connection makes room; when none is idle the
       new one is closed at once (docs/architecture.md says why not a 503):
       either way no client waits in the listen queue for a slot. */
    if (loop->connection_count >= loop->engine->options.max_connections &&
        !csgi_http__loop_make_room(loop)) {
        evutil_closesocket(fd);
        csgi_http__log(loop->engine, CSGI_LOG__INFO,
                       "connection refused: %u connections, none idle (max_connections)",
                       loop->engine->options.max_connections);
        /* Every loop polls a Unix socket (no SO_REUSEPORT there) and an
           adopted one: leave its next clients to the other loops until one
           of this loop's connections closes, unless the others all did so
           already (then a client would wait in the queue again). A TCP
           socket of its own is this loop's alone: pausing would only leave
           its clients in the queue. */
        csgi_http__listener *listener = &loop->engine->listeners[acceptor - loop->acceptors];
        if ((listener->family == AF_UNIX || listener->adopted) && loop->engine->loop_count > 1) {
            if (atomic_fetch_add(&listener->full_loops, 1) + 1 < loop->engine->loop_count) {
                evconnlistener_disable(acceptor->evl);
                acceptor->full = 1;
                loop->full = 1;
            } else {
                atomic_fetch_sub(&listener->full_loops, 1);
            }
        }
        return;
    }
    loop->connection_count++;
    atomic_fetch_add(&loop->engine->connection_total, 1);
    csgi_http__conn_accept(loop, fd, peer, (socklen_t)peer_len, acceptor->listener);
}

static void on_accept_error(struct evconnlistener *evl, void *arg)
{
    csgi_http__acceptor *acceptor = arg;
    csgi_http__loop *loop = acceptor->loop;
    int e = EVUTIL_SOCKET_ERROR();
    (void)evl;
    /* Out of descriptors or memory: the pending connection stays in the
       queue and the listener would spin. Pause, then try again. */
    csgi_http__log(loop->engine, CSGI_LOG__ERROR, "accept failed: %s (pausing 100 ms)",
                   evutil_socket_error_to_string(e));
    set_accepting(loop, 0);
    struct timeval pause = {0, 100000};
    event_add(&loop->retry_accept, &pause);
}

static void on_retry_accept(evutil_socket_t fd, short what, void *arg)
{
    csgi_http__loop *loop = arg;
    (void)fd;
    (void)what;
    if (!loop->stopping)
        set_accepting(loop, 1);
}

static void loop_exit_if_done(csgi_http__loop *loop)
{
    if (loop->stopping && loop->connection_count == 0 && loop->own_base)
        event_base_loopexit(loop->base, NULL);
}

/* A connection closed: Unix sockets left to the other loops come back. */
static void resume_full(csgi_http__loop *loop)
{
    loop->full = 0;
    for (size_t i = 0; i < loop->acceptor_count; i++) {
        csgi_http__acceptor *acceptor = &loop->acceptors[i];
        if (!acceptor->full)
            continue;
        acceptor->full = 0;
        atomic_fetch_sub(&loop->engine->listeners[i].full_loops, 1);
        if (acceptor->evl && loop->accepting)
            evconnlistener_enable(acceptor->evl);
    }
}

void csgi_http__loop_connection_closed(csgi_http__loop *loop)
{
    loop->connection_count--;
    atomic_fetch_sub(&loop->engine->connection_total, 1);
    /* No connection, no keep-alive timer: a host's loop that runs until
       nothing is pending is not held by it. */
    if (loop->connection_count == 0 && loop->keepalive_sweep_armed) {
        event_del(&loop->keepalive_sweep);
        loop->keepalive_sweep_armed = 0;
    }
    /* Accepting pauses after an accept error (retry_accept resumes it),
       and for a shared Unix socket when full (on_accept): not otherwise
       for the connection count (csgi_http__loop_make_room). */
    if (loop->stopping)
        loop_exit_if_done(loop);
    else if (loop->full)
        resume_full(loop);
}

static void free_acceptors(csgi_http__loop *loop)
{
    for (size_t i = 0; i < loop->acceptor_count; i++) {
        if (loop->acceptors[i].evl)
            evconnlistener_free(loop->acceptors[i].evl);
        loop->acceptors[i].evl = NULL;
    }
    loop->accepting = 0;
}

static void on_grace_end(evutil_socket_t fd, short what, void *arg)
{
    csgi_http__loop *loop = arg;
    (void)fd;
    (void)what;
    csgi_http__loop_shutdown_connections(loop, 1);
    if (loop->own_base)
        event_base_loopexit(loop->base, NULL);
}

/* The wait for last requests is over: the idle keep-alive connections
   close (after their sockets are read once). */
static void on_idle_wait_end(evutil_socket_t fd, short what, void *arg)
{
    csgi_http__loop *loop = arg;
    (void)fd;
    (void)what;
    loop->closing_idle = 1;
    csgi_http__loop_shutdown_connections(loop, 0);
}

/*
 * A graceful stop does not close the idle keep-alive connections at once.
 * Their clients do not know about the stop: one may be sending its next
 * request while the connection closes, and that request is lost (the
 * client sees the connection reset or closed with a request outstanding:
 * under load, during every reload, for the connections that had an answer
 * and whose next request was on its way). Instead, for IDLE_WAIT_MS, each
 * one's next request is answered with Connection: close, so the client
 * connects again (to a new worker); only those still idle after that are
 * closed. A client idle that long is no likelier to send at that moment
 * than at the end of its keep-alive timeout. The grace period cuts the
 * wait short, and connections that had no request yet keep waiting for
 * their first one until it ends (connection.c).
 */
#define IDLE_WAIT_MS 1000

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    csgi_http__loop *loop = arg;
    uint64_t count;
    (void)what;
    if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
        csgi_http__log(loop->engine, CSGI_LOG__WARN, "reading the stop signal failed");
    if (loop->stopping)
        return;
    loop->stopping = 1;
    free_acceptors(loop);
    event_del(&loop->retry_accept);
    if (loop->connection_count == 0) {
        loop_exit_if_done(loop);
        return;
    }
    struct timeval idle_wait = {IDLE_WAIT_MS / 1000, (IDLE_WAIT_MS % 1000) * 1000};
    event_add(&loop->idle_wait_event, &idle_wait);
    unsigned ms = loop->engine->grace_ms;
    struct timeval grace = {ms / 1000, (ms % 1000) * 1000};
    event_add(&loop->grace_event, &grace);
}

/* ---- The access log's flush timer ------------------------------------------------ */

static void on_access_log_flush(evutil_socket_t fd, short what, void *arg)
{
    csgi_http__loop *loop = arg;
    (void)fd;
    (void)what;
    loop->access_log_flush_armed = 0;
    csgi_access_log__flush(loop->engine->options.access_log);
}

void csgi_http__loop_access_log_pending(csgi_http__loop *loop)
{
    struct timeval interval = csgi_access_log__flush_interval(loop->engine->options.access_log);
    loop->access_log_flush_armed = event_add(&loop->access_log_flush, &interval) == 0;
}

/* ---- Liveness: the master's heartbeat -------------------------------------------- */

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    csgi_http__loop *loop = arg;
    (void)fd;
    (void)what;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* the vDSO: no system call */
    atomic_store_explicit(&loop->engine->options.heartbeats[loop->index],
                          (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, memory_order_relaxed);
}

static void heartbeat_start(csgi_http__loop *loop)
{
    const csgi_http__options *o = &loop->engine->options;
    event_assign(&loop->heartbeat, loop->base, -1, EV_PERSIST, on_heartbeat, loop);
    if (!o->heartbeats)
        return;
    unsigned ms = o->heartbeat_ms ? o->heartbeat_ms : 1000;
    struct timeval interval = {ms / 1000, (ms % 1000) * 1000};
    on_heartbeat(-1, 0, loop);
    event_add(&loop->heartbeat, &interval);
}

/* ---- Figures for other processes ----------------------------------------------- */

static void on_publish(evutil_socket_t fd, short what, void *arg)
{
    csgi_http__engine *engine = arg;
    (void)fd;
    (void)what;
    atomic_store_explicit(engine->options.publish_requests, csgi_http__engine_request_count(engine),
                          memory_order_relaxed);
    atomic_store_explicit(engine->options.publish_connections,
                          atomic_load_explicit(&engine->connection_total, memory_order_relaxed),
                          memory_order_relaxed);
}

static void publish_start(csgi_http__loop *loop)
{
    const csgi_http__options *o = &loop->engine->options;
    event_assign(&loop->publish, loop->base, -1, EV_PERSIST, on_publish, loop->engine);
    if (loop->index != 0 || !o->publish_requests || !o->publish_connections)
        return;
    unsigned ms = o->publish_ms ? o->publish_ms : 1000;
    struct timeval interval = {ms / 1000, (ms % 1000) * 1000};
    event_add(&loop->publish, &interval);
}

static const struct timeval *common_timeout(struct event_base *base, unsigned ms)
{
    if (!ms)
        return NULL;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    const struct timeval *common = event_base_init_common_timeout(base, &tv);
    return common ? common : NULL;
}

static int loop_init(csgi_http__engine *engine, csgi_http__loop *loop, unsigned index)
{
    loop->engine = engine;
    loop->index = index;
    csgi_http__list_init(&loop->connections);
    if (engine->host_base) {
        loop->base = engine->host_base;
    } else {
        loop->base = event_base_new();
        if (!loop->base)
            return CSGI_ENOMEM;
        loop->own_base = 1;
    }
    csgi_arena__recycler_init(&loop->recycler, 64);
    evtimer_assign(&loop->retry_accept, loop->base, on_retry_accept, loop);
    evtimer_assign(&loop->access_log_flush, loop->base, on_access_log_flush, loop);
    /* Stopping is signalled through an eventfd, not event_active: writing
       to it is safe from any thread and from a signal handler, and it
       spares the request path libevent's locking. */
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_fd < 0)
        return errno_to_err(errno);
    loop->wake_ready = 1;
    event_assign(&loop->stop_event, loop->base, loop->wake_fd, EV_READ | EV_PERSIST, on_stop, loop);
    event_add(&loop->stop_event, NULL);
    evtimer_assign(&loop->grace_event, loop->base, on_grace_end, loop);
    evtimer_assign(&loop->idle_wait_event, loop->base, on_idle_wait_end, loop);
    heartbeat_start(loop);
    publish_start(loop);
    const csgi_http__options *o = &engine->options;
    evtimer_assign(&loop->keepalive_sweep, loop->base, csgi_http__loop_sweep_keepalive, loop);
    loop->send_tv = common_timeout(loop->base, o->send_timeout_ms);

    loop->acceptors =
        csgi__calloc(engine->listener_count ? engine->listener_count : 1, sizeof(*loop->acceptors));
    if (!loop->acceptors)
        return CSGI_ENOMEM;
    loop->acceptor_count = engine->listener_count;
    for (size_t i = 0; i < engine->listener_count; i++) {
        csgi_http__listener *listener = &engine->listeners[i];
        csgi_http__acceptor *acceptor = &loop->acceptors[i];
        acceptor->loop = loop;
        acceptor->listener = listener;
        evutil_socket_t fd;
        if (index == 0) {
            fd = listener->fd; /* the evconnlistener owns it from here */
            listener->fd = -1;
        } else if (listener->family == AF_UNIX || listener->adopted) {
            fd = fcntl(engine->loops[0].acceptors[i].evl
                           ? evconnlistener_get_fd(engine->loops[0].acceptors[i].evl)
                           : -1,
                       F_DUPFD_CLOEXEC, 0);
            if (fd < 0)
                return CSGI_ESYSTEM;
        } else {
            int err = tcp_socket(engine, listener, &fd);
            if (err)
                return err;
        }
        /* backlog 0: the socket already listens. */
        acceptor->evl = evconnlistener_new(loop->base, on_accept, acceptor,
                                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
        if (!acceptor->evl) {
            close(fd);
            return CSGI_ENOMEM;
        }
        evconnlistener_set_error_cb(acceptor->evl, on_accept_error);
    }
    loop->accepting = 1;
    return 0;
}

/* The first half of freeing a loop: no more clients, every request ended. */
static void loop_close(csgi_http__loop *loop)
{
    if (!loop->base)
        return;
    free_acceptors(loop);
    csgi_http__loop_shutdown_connections(loop, 1);
}

/* The second half, once every loop is closed. */
static void loop_destroy(csgi_http__loop *loop)
{
    if (!loop->base)
        return;
    /* Requests a consumer still holds (a pool thread's work on them goes
       on) are let go from this loop's events: run it until they are. Every
       loop was closed first, so that no such work waits on a client. */
    while (loop->held_requests && event_base_loop(loop->base, EVLOOP_ONCE) == 0)
        continue;
    csgi_http__loop_free_spare_buffers(loop);
    event_del(&loop->retry_accept);
    event_del(&loop->stop_event);
    event_del(&loop->grace_event);
    event_del(&loop->idle_wait_event);
    event_del(&loop->keepalive_sweep);
    event_del(&loop->access_log_flush);
    event_del(&loop->heartbeat);
    event_del(&loop->publish);
    if (loop->wake_ready)
        close(loop->wake_fd);
    loop->wake_ready = 0;
    csgi__free(loop->acceptors);
    csgi_arena__recycler_clear(&loop->recycler);
    if (loop->own_base)
        event_base_free(loop->base);
    loop->base = NULL;
}

static void *loop_thread(void *arg)
{
    csgi_http__loop *loop = arg;
    event_base_dispatch(loop->base);
    return NULL;
}

int csgi_http__engine_start(csgi_http__engine *engine)
{
    if (engine->started)
        return CSGI_ESTATE;
    if (engine->listener_count == 0)
        return CSGI_EINVAL;
    engine->loop_count = engine->host_base ? 1 : engine->options.threads;
    engine->loops = csgi__calloc(engine->loop_count, sizeof(*engine->loops));
    if (!engine->loops)
        return CSGI_ENOMEM;
    engine->started = 1;
    for (unsigned i = 0; i < engine->loop_count; i++) {
        int err = loop_init(engine, &engine->loops[i], i);
        if (err)
            return err; /* csgi_http__engine_free releases what was made */
    }
    for (unsigned i = 1; i < engine->loop_count; i++) {
        csgi_http__loop *loop = &engine->loops[i];
        if (pthread_create(&loop->thread, NULL, loop_thread, loop) != 0)
            return CSGI_ESYSTEM;
        loop->thread_started = 1;
    }
    return 0;
}

struct event_base *csgi_http__engine_base(csgi_http__engine *engine)
{
    return engine->started ? engine->loops[0].base : NULL;
}

static void join_threads(csgi_http__engine *engine)
{
    for (unsigned i = 1; i < engine->loop_count; i++) {
        csgi_http__loop *loop = &engine->loops[i];
        if (loop->thread_started) {
            pthread_join(loop->thread, NULL);
            loop->thread_started = 0;
        }
    }
}

int csgi_http__engine_run(csgi_http__engine *engine)
{
    if (!engine->started || engine->host_base)
        return CSGI_ESTATE;
    int r = event_base_dispatch(engine->loops[0].base);
    /* Loop 0 ended: the engine was stopped (or nothing is left to wait
       for); the other loops end with it. */
    csgi_http__engine_stop(engine, engine->grace_ms);
    join_threads(engine);
    return r < 0 ? CSGI_ESYSTEM : 0;
}

void csgi_http__engine_stop(csgi_http__engine *engine, unsigned grace_ms)
{
    if (!engine->started)
        return;
    engine->grace_ms = grace_ms;
    uint64_t one = 1;
    for (unsigned i = 0; i < engine->loop_count; i++)
        if (engine->loops[i].wake_ready && write(engine->loops[i].wake_fd, &one, sizeof(one)) < 0)
            continue; /* the counter is already set: a stop is pending */
}

void csgi_http__engine_free(csgi_http__engine *engine)
{
    if (!engine)
        return;
    if (engine->started) {
        /* Threads still running must end before their loops are freed. */
        int running = 0;
        for (unsigned i = 1; i < engine->loop_count; i++)
            running |= engine->loops[i].thread_started;
        if (running) {
            csgi_http__engine_stop(engine, 0);
            join_threads(engine);
        }
        for (unsigned i = 0; i < engine->loop_count; i++)
            loop_close(&engine->loops[i]);
        for (unsigned i = 0; i < engine->loop_count; i++)
            loop_destroy(&engine->loops[i]);
        csgi__free(engine->loops);
    }
    for (size_t i = 0; i < engine->listener_count; i++) {
        csgi_http__listener *listener = &engine->listeners[i];
        if (listener->fd >= 0)
            close(listener->fd);
        if (listener->family == AF_UNIX && !listener->adopted)
            unlink(listener->unix_addr.sun_path);
    }
    csgi__free(engine->listeners);
    csgi__free(engine->server_line);
    csgi__free(engine);
}
