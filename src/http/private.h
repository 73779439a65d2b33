/*
 * Structures shared by engine.c (listeners, loops, threads) and
 * connection.c (the per-connection state machine). Not for the gateway.
 */
#ifndef CSGI_HTTP_PRIVATE_H
#define CSGI_HTTP_PRIVATE_H

#include "common/arena.h"
#include "http/engine.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <sys/un.h>

typedef struct csgi_http__loop csgi_http__loop;
typedef struct csgi_http__conn csgi_http__conn;
typedef struct csgi_http__listener csgi_http__listener;
typedef struct csgi_http__acceptor csgi_http__acceptor;

/* A socket address small enough to keep per connection (no 128-byte
   sockaddr_storage); Unix peers are unnamed, so AF_UNIX keeps no path. */
typedef union csgi_http__addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
} csgi_http__addr;

/* One bound address, shared by all loops (each loop has its own socket). */
struct csgi_http__listener {
    int family;
    csgi_http__addr addr; /* bound TCP address (actual port after bind) */
    socklen_t addr_len;
    struct sockaddr_un unix_addr; /* Unix socket path */
    evutil_socket_t fd;           /* loop 0's socket */
    int port;
};

/* One loop's socket for one listener. */
struct csgi_http__acceptor {
    csgi_http__loop *loop;
    const csgi_http__listener *listener;
    struct evconnlistener *evl;
};

/* Per-loop state. Everything here is touched only by the loop's thread,
   except wake_fd (written by csgi_http__engine_stop from anywhere). */
struct csgi_http__loop {
    csgi_http__engine *engine;
    struct event_base *base;
    int own_base;
    unsigned index;
    pthread_t thread;
    int thread_started;

    csgi_http__acceptor *acceptors; /* one per engine listener */
    size_t acceptor_count;
    int accepting;
    struct event retry_accept; /* re-enable accepting after EMFILE or max_connections */

    csgi_http__conn *connections; /* doubly linked list */
    size_t connection_count;
    int stopping;
    int wake_fd; /* eventfd: csgi_http__engine_stop writes to it */
    int wake_ready;
    struct event stop_event;  /* reads wake_fd */
    struct event grace_event; /* cuts what is left when the grace period ends */

    csgi_arena__recycler recycler;

    /* Empty input and output buffers handed back by connections going idle,
       for the next one that reads: an idle keep-alive connection holds
       none (connection.c). */
    struct {
        struct evbuffer *in, *out;
    } spare_buffers[16];
    unsigned spare_count;

    /* Cached "Date: ...\r\n" line, rebuilt when the second changes. */
    time_t date_second;
    char date_line[48];
    size_t date_line_len;

    /* Shared timeouts (libevent's O(1) common-timeout queues). */
    const struct timeval *keepalive_tv;
    const struct timeval *body_tv;
    const struct timeval *send_tv;
};

struct csgi_http__engine {
    csgi_http__options options;
    char *server_line; /* "Server: csgi\r\n" or NULL */
    size_t server_line_len;
    csgi_http__handler handler;

    csgi_http__listener *listeners; /* grown by csgi_vec__reserve */
    size_t listener_count;
    size_t listener_capacity;

    csgi_http__loop *loops;
    unsigned loop_count;
    struct event_base *host_base; /* borrowed, or NULL */
    int started;
    _Atomic unsigned grace_ms;
    _Atomic size_t connection_total;
};

/* engine.c */
void csgi_http__log(csgi_http__engine *engine, int level, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
void csgi_http__loop_connection_closed(csgi_http__loop *loop);

/* connection.c */
void csgi_http__conn_accept(csgi_http__loop *loop, evutil_socket_t fd, const struct sockaddr *peer,
                            socklen_t peer_len, const csgi_http__listener *listener);
/* Close idle connections and mark the rest to close after their response. */
void csgi_http__loop_shutdown_connections(csgi_http__loop *loop, int force);
/* Free the spare buffers (when the loop ends). */
void csgi_http__loop_free_spare_buffers(csgi_http__loop *loop);

/* date.c */
void csgi_http__date_refresh(csgi_http__loop *loop);

#endif /* CSGI_HTTP_PRIVATE_H */
