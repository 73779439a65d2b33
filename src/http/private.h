/*
 * Structures shared by the engine's files: engine.c (listeners, loops,
 * threads), connection.c (the per-connection state machine),
 * request_body.c (the request body) and response.c (the response). Not for
 * the gateway.
 */
#ifndef CSGI_HTTP_PRIVATE_H
#define CSGI_HTTP_PRIVATE_H

#include "common/arena.h"
#include "http/engine.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <sys/un.h>

typedef struct csgi_http__loop csgi_http__loop;
typedef struct csgi_http__link csgi_http__link;
typedef struct csgi_http__conn csgi_http__conn;
typedef struct csgi_http__listener csgi_http__listener;
typedef struct csgi_http__acceptor csgi_http__acceptor;
typedef struct csgi_http__tls csgi_http__tls;
typedef struct csgi_http__tls_conn csgi_http__tls_conn;

/* A socket address small enough to keep per connection (no 128-byte
   sockaddr_storage); Unix peers are unnamed, so AF_UNIX keeps no path. */
typedef union csgi_http__addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
} csgi_http__addr;

/* A place in a loop's circular list of connections (the loop holds the
   list's head, itself a link): unlinking and linking take no branch. */
struct csgi_http__link {
    csgi_http__link *prev, *next;
};

/* One bound address, shared by all loops (each loop has its own socket). */
struct csgi_http__listener {
    int family;
    csgi_http__addr addr; /* bound TCP address (actual port after bind) */
    socklen_t addr_len;
    struct sockaddr_un unix_addr; /* Unix socket path */
    evutil_socket_t fd;           /* loop 0's socket */
    int port;
    /* Adopted (csgi_http__engine_adopt): another process owns the socket,
       so every loop shares this one (no SO_REUSEPORT socket of its own,
       whose queued connections would die with this process) and the Unix
       socket's file is not removed. */
    int adopted;
    /* TLS (tls.h): borrowed from whoever set it (the server), NULL for
       plain TCP. */
    csgi_http__tls *tls;
    /* Shared by the loops (Unix, adopted): loops that leave it to the
       others while full (engine.c, on_accept). */
    _Atomic unsigned full_loops;
};

/* One loop's socket for one listener. */
struct csgi_http__acceptor {
    csgi_http__loop *loop;
    const csgi_http__listener *listener;
    struct evconnlistener *evl;
    int full; /* a Unix socket left to the other loops while this one is full */
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
    int full;                  /* some acceptor is paused (acceptor.full) */
    struct event retry_accept; /* re-enable accepting after EMFILE */

    /* Every connection, those idle (no buffers: connection.c) in the
       order they went idle, the most recent first: the last idle one in
       the list is the one idle the longest, closed to make room at
       max_connections. Busy ones are anywhere. */
    csgi_http__link connections;
    size_t connection_count;
    size_t idle_count;
    int stopping;
    int closing_idle; /* stopping, and the wait for last requests is over (engine.c) */
    int wake_fd;      /* eventfd: csgi_http__engine_stop writes to it */
    int wake_ready;
    struct event stop_event;      /* reads wake_fd */
    struct event grace_event;     /* cuts what is left when the grace period ends */
    struct event idle_wait_event; /* ends the wait for idle connections' last requests */

    csgi_arena__recycler recycler;
    /* Requests a consumer holds (csgi_http__request_hold): the loop is
       freed only once they are let go. */
    size_t held_requests;

    /* Empty input and output buffers handed back by connections going idle,
       for the next one that reads: an idle keep-alive connection holds
       none (connection.c). */
    struct {
        struct evbuffer *in, *out;
    } spare_buffers[16];
    unsigned spare_count;
    /* Where a connection waiting for a request reads it (connection.c,
       conn_read_fresh); fresh_owner's fresh_len bytes are there until
       ST_HEAD, which runs next, parses them. */
    char read_area[16384];
    csgi_http__conn *fresh_owner;
    size_t fresh_len;
    /* Where an answer is built while its connection's output is empty
       (response.c, start_head): staged's staged_len bytes wait here for
       the flush that follows, which writes them straight from here and
       moves only what the socket did not take into conn->out. Any other
       use of the output moves them there first (csgi_http__conn_out). A
       small answer then never passes through an evbuffer. */
    char write_area[16384];
    csgi_http__conn *staged;
    size_t staged_len;

    /* Cached "Date: ...\r\n" line, rebuilt when the second changes. */
    time_t date_second;
    char date_line[48];
    size_t date_line_len;

    /* Shared timeouts (libevent's O(1) common-timeout queues). */
    const struct timeval *send_tv;
    /* Closes connections idle between requests for keepalive_timeout_ms
       (connection.c, csgi_http__loop_sweep_keepalive); armed while one
       may be waiting. */
    struct event keepalive_sweep;
    int keepalive_sweep_armed;

    /* Writes the access log's buffered lines out a moment after this loop
       put one in (options.access_log). */
    struct event access_log_flush;
    struct event heartbeat; /* options.heartbeats: the master's liveness timer */
    struct event publish;   /* options.publish_requests, on loop 0 */
    /* New connections answered from the accept callback in this turn of
       the loop (connection.c, csgi_http__conn_accept), and the turn's
       cached clock, which tells a new turn. */
    struct timeval eager_turn;
    unsigned eager_count;
    /* Requests read by this loop: written by its thread alone (a relaxed
       load and store, no locked instruction), read by any. */
    _Atomic unsigned long long requests;
    int access_log_flush_armed;
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

/* ---- Connections and requests --------------------------------------------- */

/* Where the request body is (csgi_http__request.body_state). */
enum csgi_http__body_state {
    CSGI_HTTP__BODY_READING,
    CSGI_HTTP__BODY_COMPLETE,
    CSGI_HTTP__BODY_FAILED
};

/* How far the response is (csgi_http__request.response_state). */
enum csgi_http__response_state {
    CSGI_HTTP__RESPONSE_NONE,
    CSGI_HTTP__RESPONSE_STARTED,
    CSGI_HTTP__RESPONSE_FINISHED
};

/* Expect: 100-continue (csgi_http__request.continue_state). */
enum csgi_http__continue_state {
    CSGI_HTTP__CONTINUE_NONE,
    CSGI_HTTP__CONTINUE_EXPECTED,
    CSGI_HTTP__CONTINUE_SENT
};

/* One connection (connection.c runs its state machine). */
struct csgi_http__conn {
    struct event ev;
    csgi_http__loop *loop;
    csgi_http__link link;      /* in loop->connections */
    struct evbuffer *in, *out; /* NULL while idle: see connection.c */
    /* Bytes at the front of out that answer requests already done: a
       pipelined request's answer waits there for the next one's, so that
       they go out in one write (connection.c, "Pipelined answers"). */
    size_t out_done;
    csgi_http__request *req;
    const csgi_http__listener *listener;
    csgi_http__addr peer;
    csgi_http__scanner scanner;
    csgi_http__tls_conn *tls; /* NULL for plain TCP (tls.c) */
    struct timeval deadline;  /* end of the head's time, or of lingering */
    unsigned requests;        /* requests started on this connection */
    int io_error;             /* errno of a failed read or write */
    unsigned char state;      /* connection.c's enum conn_state */
    unsigned char armed;      /* EV_READ / EV_WRITE currently registered */
    unsigned char timeout;    /* connection.c's enum timeout_kind currently armed */
    unsigned char dispatching;
    unsigned char touched;  /* event_active pending */
    unsigned char peer_eof; /* the client closed its sending side */
    unsigned char linger;   /* linger after CLOSING */
    /* TCP_NODELAY is set before the connection's second write, which is the
       first Nagle could hold back (connection.c, conn_flush_all). */
    unsigned char wrote;   /* it has written */
    unsigned char nodelay; /* TCP_NODELAY is set, or not wanted (Unix socket, TLS) */
    unsigned char corked;  /* TCP_CORK is set while a file answer leaves */
};

/* One request, from its head to on_done; it lives in its own arena. */
struct csgi_http__request {
    csgi_arena arena;
    csgi_http__conn *conn; /* NULL once the request ended while held */
    csgi_http__loop *loop; /* set while held */
    unsigned holds;        /* csgi_http__request_hold calls not yet undone */
    const csgi_http__request_callbacks *callbacks;
    void *userdata;

    /* Body: decoded bytes wait in `body` until the consumer reads them. */
    struct evbuffer *body;
    uint64_t body_left;     /* Content-Length bytes still to arrive */
    uint64_t body_received; /* decoded bytes so far */
    uint64_t drain_limit;   /* while draining: close past this many */
    csgi_http__chunked chunked;
    char *trailer_bytes;
    size_t trailer_len;
    csgi_http__header *trailers;
    size_t trailer_count;
    /* The time the body may still keep the engine waiting, in
       microseconds: body_timeout_ms at most, spent while the engine waits,
       earned back by the bytes that arrive (connection.c, body_clock). */
    int64_t body_credit;
    uint64_t body_credited;            /* body_received when credit was last earned */
    struct timeval body_waiting_since; /* while body_timing: when the wait began */
    int body_error;                    /* when the body failed: the error the consumer reads */
    int body_status;                   /* when the body failed: the status the engine answers */
    const char *body_why;              /* when the body failed: static text for the log */

    /* Response. */
    int64_t response_left; /* bytes still owed under Content-Length */
    uint64_t response_sent;
    int status;
    int done_error; /* error to report in on_done, 0 for success */

    /* Bytes of the response (head included) that went to the socket, for
       the access log. */
    uint64_t written;

    unsigned char body_state;     /* enum csgi_http__body_state */
    unsigned char body_waiting;   /* the consumer got EAGAIN: call on_body on news */
    unsigned char body_timing;    /* the engine waits for the body: body_credit is spent */
    unsigned char continue_state; /* enum csgi_http__continue_state */
    unsigned char response_state; /* enum csgi_http__response_state */
    unsigned char framing;        /* response.c's enum framing */
    unsigned char keep_alive;     /* decided when the response starts */
    unsigned char want_writable;  /* call on_writable once output drains */
    unsigned char cut;            /* close the connection without more output */
    unsigned char out_shared;     /* its output references memory or a file: sent before release */
    unsigned char done;           /* on_done has been called */

    /* Set only with an access log (request_new does not clear them): where
       the body started in written, and when the head was read. */
    uint64_t body_start;
    struct timeval start;
    /* Not cleared by request_new either: csgi_http__parse_head sets every
       field. */
    csgi_http__head head;
};

/* engine.c */
void csgi_http__log(csgi_http__engine *engine, int level, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
void csgi_http__loop_connection_closed(csgi_http__loop *loop);
/* Arm the loop's access log flush timer (lines wait in the buffer). */
void csgi_http__loop_access_log_pending(csgi_http__loop *loop);

/* connection.c */
/* Go on with the connection as its event does (reading first when read),
   from another event: tls.c's, when what OpenSSL waited for came. May
   free the connection. */
void csgi_http__conn_resume(csgi_http__conn *conn, int read);
/* An empty list of connections. */
static inline void csgi_http__list_init(csgi_http__link *head)
{
    head->prev = head;
    head->next = head;
}
void csgi_http__conn_accept(csgi_http__loop *loop, evutil_socket_t fd, const struct sockaddr *peer,
                            socklen_t peer_len, const csgi_http__listener *listener);
/* Stopping, once the wait for last requests is over (force 0): close the
   keep-alive connections that have no request (read first: one may wait
   in the socket), keep those that have not sent their first one, and let
   the others finish what they received. force: close every connection
   now. */
void csgi_http__loop_shutdown_connections(csgi_http__loop *loop, int force);

/* csgi_http__engine_busy_request for one loop. */
size_t csgi_http__loop_busy_request(const csgi_http__loop *loop, char *buf, size_t size);
/* 1 when the next request's bytes have arrived (read, or waiting in the
   socket): while the loop stops, a response keeps the connection only then. */
int csgi_http__conn_request_waiting(const csgi_http__conn *conn);
/* At max_connections: close the connection idle the longest, unless a
   request waits unread in its socket (then it runs, and the next one is
   tried). Returns 1 when a connection was closed, 0 when none is idle. */
int csgi_http__loop_make_room(csgi_http__loop *loop);
/* The keep-alive timer's callback (arg: the loop). */
void csgi_http__loop_sweep_keepalive(evutil_socket_t fd, short what, void *arg);
/* Free the spare buffers (when the loop ends). */
void csgi_http__loop_free_spare_buffers(csgi_http__loop *loop);
/* Log "client <peer>: <text>" when level is enabled. */
void csgi_http__conn_log(const csgi_http__conn *conn, int level, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static inline const csgi_http__options *csgi_http__conn_options(const csgi_http__conn *conn)
{
    return &conn->loop->engine->options;
}

/* Move the answer staged in the loop's write area into conn->out (after
   what is there); when that fails for memory, the bytes are dropped and
   the connection fails (io_error). */
void csgi_http__conn_unstage(csgi_http__conn *conn);

/* A file answer is about to be queued on a plain TCP connection: cork the
   socket (TCP_CORK, as nginx's tcp_nopush) until the output is empty, so
   that the head shares a segment with the file's first bytes and the file
   leaves in full segments, where TCP_NODELAY would push every piece that
   sendfile(2) hands the socket. A no-op elsewhere. */
void csgi_http__conn_cork(csgi_http__conn *conn);

/* The connection's output buffer, for any use but the staged answer's
   own appends (response.c): it holds every byte queued. */
static inline struct evbuffer *csgi_http__conn_out(csgi_http__conn *conn)
{
    if (__builtin_expect(conn->loop->staged == conn, 0))
        csgi_http__conn_unstage(conn);
    return conn->out;
}

/* Bytes queued for the client: the output buffer's and a staged answer's. */
static inline size_t csgi_http__conn_out_length(const csgi_http__conn *conn)
{
    size_t len = evbuffer_get_length(conn->out);
    return conn->loop->staged == conn ? len + conn->loop->staged_len : len;
}

/* Ask for the state machine to run: now if the engine is dispatching to the
   consumer (it runs when the callback returns), else on the next loop turn.
   Every consumer call ends with it, so it stays inline. */
static inline void csgi_http__conn_touch(csgi_http__conn *conn)
{
    if (conn->dispatching || conn->touched)
        return;
    conn->touched = 1;
    event_active(&conn->ev, EV_WRITE, 1);
}

/* request_body.c */
/* Move body bytes from the socket buffer to the request's body buffer (or
   discard them while draining), decoding chunked framing, up to the body
   buffer's room. Records errors in the request; never calls out. */
void csgi_http__body_pump(csgi_http__conn *conn, csgi_http__request *req, int discard);

/* response.c */
/* Queue a complete error response (text/plain) that closes the connection.
   Returns the length of its body. */
size_t csgi_http__queue_error_response(csgi_http__conn *conn, int status);

/* date.c */
void csgi_http__date_refresh(csgi_http__loop *loop);

#endif /* CSGI_HTTP_PRIVATE_H */
