/*
 * The HTTP/1.1 engine (internal to csgi).
 *
 * An engine owns listeners and one event loop per thread; each loop owns
 * the connections it accepted. For every request whose head parses, the
 * engine calls the handler's on_request with a csgi_http__request; the
 * gateway (environ, applications) sits on top of this interface.
 *
 * The request protocol, seen from the consumer:
 *
 *  - on_request(req): the head is parsed and valid. Read it with
 *    csgi_http__request_head(); allocate per-request memory from
 *    csgi_http__request_arena(). Set callbacks with
 *    csgi_http__request_set_callbacks() if the body is streamed or the
 *    response is produced later.
 *  - The body is read with csgi_http__request_read() (or _read_buffer):
 *    bytes, 0 at its end, or CSGI_EAGAIN when nothing is buffered yet; then
 *    on_body is called once more bytes, the end or an error arrived. The
 *    engine stops reading from the socket while the consumer leaves
 *    unread body buffered (backpressure). "100 Continue" is sent when the
 *    body is first read, never before.
 *  - The response: csgi_http__response_start() once, then any number of
 *    writes (bytes, references, buffers, file ranges), then
 *    csgi_http__response_finish(). While streaming, the consumer keeps
 *    csgi_http__response_buffered() under a watermark and continues from
 *    on_writable, which is called when the buffered output drained.
 *  - on_done(req, err) is called exactly once per request, always from the
 *    event loop, never from inside a csgi_http__ call: err 0 after
 *    finish, or CSGI_ECLOSED (client gone), CSGI_ETIMEDOUT, CSGI_EIO
 *    (socket error), CSGI_EPARSE (malformed body), CSGI_ETOOBIG (body over
 *    the limit), CSGI_ESTATE (the consumer broke the protocol, e.g. fewer
 *    bytes than its Content-Length). After on_done returns, the request and
 *    its arena are gone, unless the consumer holds them
 *    (csgi_http__request_hold).
 *
 * The consumer may call the csgi_http__request/response functions from its
 * callbacks or from anywhere else on the request's loop thread (a timer,
 * its own I/O): the engine does its socket work when control returns to
 * the loop.
 */
#ifndef CSGI_HTTP_ENGINE_H
#define CSGI_HTTP_ENGINE_H

#include "common/arena.h"
#include "common/log.h"
#include "http/access_log.h"
#include "http/parser.h"

#include <csgi/common.h>
#include <csgi/errors.h>

#include <stdatomic.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct event_base;
struct evbuffer;

typedef struct csgi_http__engine csgi_http__engine;
typedef struct csgi_http__request csgi_http__request;

/* The engine logs through the one logger (common/log.h). */
typedef csgi_log__fn csgi_http__log_fn;

typedef struct csgi_http__options {
    /* Request head limits (see parser.h). */
    csgi_http__limits limits;
    /* Largest request body in bytes; 0 = no limit. Default 1 MiB. */
    uint64_t max_body;
    /* Largest chunked trailer section. Default 8 KiB. */
    size_t max_trailer;

    /* Timeouts in milliseconds; 0 = none. */
    unsigned header_timeout_ms;    /* whole request head, from its first byte: 60 s */
    unsigned body_timeout_ms;      /* a body being waited for: at most this long without a
                                      byte, and the allowance of body_min_rate: 60 s */
    unsigned keepalive_timeout_ms; /* idle between requests: 75 s */
    unsigned send_timeout_ms;      /* between two writes to a client not reading: 60 s */
    unsigned linger_timeout_ms;    /* draining a client after an error response: 5 s */
    /* Bytes per second a client must keep up, on average, while the engine
       waits for its body (docs/architecture.md, "A deadline on the body");
       0 = none. 500 */
    unsigned body_min_rate;

    unsigned max_keepalive_requests; /* requests per connection; 0 = no limit. 1000 */
    unsigned max_connections;        /* per loop; at the limit the connection idle the
                                        longest is closed, or the new one if none is. 4096 */
    unsigned threads;                /* event loops (each a thread but the caller's): 1 */
    int backlog;                     /* listen(2) backlog: 511 */

    size_t body_buffer;   /* unread body bytes buffered before reading pauses: 64 KiB */
    size_t output_buffer; /* buffered response bytes below which on_writable runs: 64 KiB */
    size_t max_drain;     /* unread body bytes still drained for keep-alive: 64 KiB */

    const char *server_header; /* Server header value (copied); NULL or "" = none. "csgi" */

    csgi_http__log_fn log; /* NULL = stderr */
    void *log_userdata;
    int log_level; /* messages above this level are dropped: CSGI_LOG__WARN */

    /* Renders the engine's own error pages (csgi/errors.h); NULL = the
       text page. Called from the loops' threads. */
    csgi_error_render_fn error_render;
    void *error_render_userdata;

    /* The access log (borrowed: it must outlive the engine), or NULL: a
       line per request, also for the requests the engine refuses itself.
       Each loop flushes it on a timer (http/access_log.h). */
    csgi_access_log *access_log;

    /* Liveness for a master's `timeout` (gateway/master.c): every
       heartbeat_ms, a timer on loop i stores the monotonic clock in
       milliseconds in heartbeats[i]. A loop stuck in a callback stops
       storing, which the master sees without a system call on the request
       path. NULL = none; the array (shared memory) is the caller's. */
    _Atomic long long *heartbeats;
    unsigned heartbeat_ms;

    /* Figures for other processes (a worker's slot on the master's board,
       gateway/stats.c): every publish_ms (1 s when 0), a timer on loop 0
       stores the requests read so far and the connections open now.
       NULL = none; the memory is the caller's. */
    _Atomic unsigned long long *publish_requests;
    _Atomic unsigned long long *publish_connections;
    unsigned publish_ms;
} csgi_http__options;

/* Fill *options with the documented defaults. */
void csgi_http__options_init(csgi_http__options *options);

typedef struct csgi_http__handler {
    /* A request head arrived and is valid. */
    void (*on_request)(csgi_http__request *req, void *userdata);
    void *userdata;
} csgi_http__handler;

/*
 * Create an engine. options: copied; NULL = defaults. base: a loop the host
 * program runs (borrowed; threads must then be 1), or NULL for the engine's
 * own loops, run by csgi_http__engine_run().
 */
int csgi_http__engine_new(csgi_http__engine **out, const csgi_http__options *options,
                          const csgi_http__handler *handler, struct event_base *base);

/*
 * Bind a listener now, so errors (address in use, permission) surface
 * before serving starts. address: "HOST:PORT" with an IPv4 address or a host
 * name, "[IPv6]:PORT", or "unix:/path/to/socket" (a stale socket file is
 * replaced). Port 0 picks a free port: read it with
 * csgi_http__engine_listener_port(). May be called several times.
 * Returns 0, CSGI_EINVAL (bad address), CSGI_EADDRINUSE, CSGI_EACCESS,
 * CSGI_EADDRNOTAVAIL, CSGI_ESYSTEM.
 */
int csgi_http__engine_listen(csgi_http__engine *engine, const char *address);

/*
 * Serve on a socket that listens already, owned by another process (the
 * master of worker processes, later systemd): takes fd (closed with the
 * engine, also when this fails). It is made non-blocking; its address is
 * read back. All loops share it (no SO_REUSEPORT socket per loop), and a
 * Unix socket's file is left in place when the engine goes.
 * Returns 0, CSGI_EINVAL (not a stream socket of a known family),
 * CSGI_ESTATE (started already), CSGI_ENOMEM, CSGI_ESYSTEM.
 */
int csgi_http__engine_adopt(csgi_http__engine *engine, int fd);

/* The socket of listener index, before the engine starts (-1 after, or for
   a bad index): what a master hands to its workers. Borrowed. */
int csgi_http__engine_listener_fd(const csgi_http__engine *engine, size_t index);

/* Serve listener index with TLS (http/tls.h): tls is borrowed and must
   outlive the engine; NULL serves plain TCP. Before the engine starts.
   Returns 0, CSGI_EINVAL (no such listener), CSGI_ESTATE (started). */
struct csgi_http__tls;
int csgi_http__engine_listener_set_tls(csgi_http__engine *engine, size_t index,
                                       struct csgi_http__tls *tls);

/* Number of listeners. */
size_t csgi_http__engine_listener_count(const csgi_http__engine *engine);
/* The bound TCP port of listener index (0 for Unix sockets, -1 for a bad index). */
int csgi_http__engine_listener_port(const csgi_http__engine *engine, size_t index);

/*
 * Start accepting: register the listeners with the loops. With own loops
 * and threads > 1, the other loops start in their own threads, each with
 * its own socket on the same port (SO_REUSEPORT). Returns 0 or an error.
 */
int csgi_http__engine_start(csgi_http__engine *engine);

/* The first loop's event_base (after start): for the host's own events,
   such as signal handlers, on that loop. */
struct event_base *csgi_http__engine_base(csgi_http__engine *engine);

/* Run the first own loop in the calling thread until the engine stops.
   Returns 0, or CSGI_ESTATE when the engine runs on the host's loop. */
int csgi_http__engine_run(csgi_http__engine *engine);

/*
 * Stop gracefully: stop accepting; give each idle keep-alive connection a
 * second for a last request, then read its socket once and close it when
 * no request waits there; keep a connection
 * that has not sent its first request yet (its client connected to send
 * one); answer the requests already received (in progress, pipelined,
 * found in the socket, or a first one), the last one on each connection
 * with Connection: close; cut what is left after grace_ms; then end the
 * own loops. Safe to call from any thread and from a signal handler (it
 * only writes to an eventfd per loop).
 */
void csgi_http__engine_stop(csgi_http__engine *engine, unsigned grace_ms);

/* Stop, join threads, close every connection (in-flight requests get on_done
   with CSGI_ECLOSED) and free everything. Accepts NULL. */
void csgi_http__engine_free(csgi_http__engine *engine);

/* Connections currently open across all loops (for tests and statistics). */
size_t csgi_http__engine_connection_count(csgi_http__engine *engine);

/* Requests read across all loops since the engine started (heads that
   parsed, those the engine answered itself included). */
unsigned long long csgi_http__engine_request_count(const csgi_http__engine *engine);

/* Event loops of the started engine (0 before it starts). */
unsigned csgi_http__engine_loop_count(const csgi_http__engine *engine);

/* For a loop that stopped beating: "METHOD target" of the request whose
   callback it is in, written to buf (NUL-terminated, cut to size), or ""
   when it is in none. Length written. Async-signal-safe: it only reads,
   and is meant for a loop that does not move (stuck in a callback); the
   walk is bounded by the loop's connection count. */
size_t csgi_http__engine_busy_request(const csgi_http__engine *engine, unsigned loop, char *buf,
                                      size_t size);

/* The listeners' sockets now belong to another process too (a new master
   inherited them): freeing the engine closes its descriptors but never
   removes a Unix socket's file. */
void csgi_http__engine_disown_listeners(csgi_http__engine *engine);

/* ---- The request, for the consumer ------------------------------------ */

typedef struct csgi_http__request_callbacks {
    void (*on_body)(csgi_http__request *req, void *userdata);          /* may be NULL */
    void (*on_writable)(csgi_http__request *req, void *userdata);      /* may be NULL */
    void (*on_done)(csgi_http__request *req, int err, void *userdata); /* may be NULL */
    /* For the access log, called just before on_done (may be NULL): a value
       the consumer knows, kind CSGI_ACCESS_LOG__USER, __ENVIRON or
       __RESPONSE (http/access_log.h), name NUL-terminated; the value with
       *len, borrowed until on_done returns, or NULL. */
    csgi_access_log__value_fn log_value;
} csgi_http__request_callbacks;

/* Set (or replace) the request's callbacks; callbacks is borrowed and must
   outlive the request (a static const table). */
void csgi_http__request_set_callbacks(csgi_http__request *req,
                                      const csgi_http__request_callbacks *callbacks,
                                      void *userdata);

/* The parsed head; valid until on_done returns. */
const csgi_http__head *csgi_http__request_head(const csgi_http__request *req);
/* The request's arena; cleared after on_done. */
csgi_arena *csgi_http__request_arena(csgi_http__request *req);
/*
 * Keep the request's memory (its arena: the head, and all the consumer
 * put there) past on_done, until as many csgi_http__request_unhold calls:
 * for a consumer whose work on the request goes on elsewhere (a pool
 * thread reading the environ) when the client leaves. Nothing else of the
 * request is kept: the connection goes on or closes as usual, and after
 * on_done the request is only memory. Both on the request's loop thread;
 * the last unhold after on_done clears the arena (its deferred callbacks
 * run then). The engine frees a loop only once its held requests are let
 * go: csgi_http__engine_free runs the loop until they are.
 */
void csgi_http__request_hold(csgi_http__request *req);
void csgi_http__request_unhold(csgi_http__request *req);

/* The client's and the listener's address (sa_family AF_UNIX for Unix sockets). */
const struct sockaddr *csgi_http__request_peer(const csgi_http__request *req, socklen_t *len);
const struct sockaddr *csgi_http__request_local(const csgi_http__request *req, socklen_t *len);
/* The event loop this request runs on. */
struct event_base *csgi_http__request_base(const csgi_http__request *req);
/* The request's trailer fields, after a chunked body ended (else count 0). */
const csgi_http__header *csgi_http__request_trailers(const csgi_http__request *req, size_t *count);

/*
 * Read up to len body bytes into buf. Returns the number read (> 0), 0 at
 * the end of the body, CSGI_EAGAIN when none is buffered yet (on_body
 * follows), or the body's error (CSGI_EPARSE, CSGI_ETOOBIG, CSGI_ECLOSED,
 * CSGI_ETIMEDOUT). The first call sends "100 Continue" when expected.
 */
ssize_t csgi_http__request_read(csgi_http__request *req, void *buf, size_t len);

/* Like csgi_http__request_read, moving up to len bytes into dst without
   copying where the buffer layout allows. */
ssize_t csgi_http__request_read_buffer(csgi_http__request *req, struct evbuffer *dst, size_t len);

/* Body bytes buffered and readable without waiting. */
size_t csgi_http__request_body_buffered(const csgi_http__request *req);
/* 1 once the whole body has arrived (possibly not yet read). */
int csgi_http__request_body_complete(const csgi_http__request *req);

/* ---- The response ------------------------------------------------------ */

/*
 * Start the response. reason: NULL for the standard phrase. headers: the
 * application's header fields (borrowed, copied into the output at once);
 * they must not contain Content-Length, Transfer-Encoding or Connection,
 * which the engine writes: Content-Length from content_length (-1 =
 * unknown: chunked on HTTP/1.1, close-delimited on HTTP/1.0). Date and
 * Server are added unless the application gave them. HEAD requests, 204
 * and 304 get no body (writes are counted but discarded).
 * Returns 0, CSGI_EINVAL (status outside 200..599), CSGI_ESTATE (already
 * started or request ended), CSGI_ENOMEM.
 */
int csgi_http__response_start(csgi_http__request *req, int status, const char *reason,
                              const csgi_http__header *headers, size_t count,
                              int64_t content_length);

/* csgi_http__response_start_block flags: the block has these fields. */
#define CSGI_HTTP__HAS_DATE   1u
#define CSGI_HTTP__HAS_SERVER 2u

/*
 * Like csgi_http__response_start, with the fields already checked and
 * formatted by the caller as "Name: value\r\n" lines (block, borrowed for
 * the call), and the reason phrase counted. flags: CSGI_HTTP__HAS_DATE,
 * CSGI_HTTP__HAS_SERVER when the block has them (else the engine adds
 * its own).
 */
int csgi_http__response_start_block(csgi_http__request *req, int status, const char *reason,
                                    size_t reason_len, const char *block, size_t block_len,
                                    unsigned flags, int64_t content_length);

/* Append body bytes (copied). Returns 0, CSGI_ESTATE, CSGI_ERANGE (more
   than the declared Content-Length), CSGI_ENOMEM. */
int csgi_http__response_write(csgi_http__request *req, const void *data, size_t len);

/* Append body bytes without copying: cleanup(data, len, arg) runs when the
   bytes are sent or discarded (also on error: then before this returns),
   always before on_done, so the bytes may live in the request's arena or
   in memory on_done releases. cleanup runs from inside the engine's own
   buffer handling: it may only note that the bytes are free and call
   csgi_http__response_want_writable(), no other csgi_http__ function. */
int csgi_http__response_write_reference(csgi_http__request *req, const void *data, size_t len,
                                        void (*cleanup)(const void *data, size_t len, void *arg),
                                        void *arg);

/* Append (move) the whole content of buf. */
int csgi_http__response_write_buffer(csgi_http__request *req, struct evbuffer *buf);

/* Append length bytes of fd from offset, sent with sendfile(2). Takes fd:
   it is closed when sent or discarded, also on error. */
int csgi_http__response_sendfile(csgi_http__request *req, int fd, int64_t offset, int64_t length);

/* Bytes queued and not yet taken by the kernel. */
size_t csgi_http__response_buffered(const csgi_http__request *req);

/* Ask for on_writable once the output is below output_buffer, also when no
   write filled it: for a consumer that waits for something else, such as
   the cleanup of bytes it wrote by reference. Nothing after the response
   finished or was cut. */
void csgi_http__response_want_writable(csgi_http__request *req);

/* The response is complete. Returns 0, or CSGI_ESTATE (not started; fewer
   bytes than the declared Content-Length: the connection is then cut and
   on_done gets CSGI_ESTATE). */
int csgi_http__response_finish(csgi_http__request *req);

/* Give up on the request: if nothing was sent, answer status (500 if 0)
   and close; else cut the connection. on_done follows with err. */
void csgi_http__response_abort(csgi_http__request *req, int status, int err);

#endif /* CSGI_HTTP_ENGINE_H */
