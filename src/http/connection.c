/*
 * One HTTP/1.1 connection: reading, the request head, the request's
 * lifetime, keep-alive, timeouts and closing. The request body is
 * request_body.c's, the response and its framing response.c's; the
 * structures all three share are in private.h.
 *
 * A connection is a small state machine driven by one libevent event on
 * its socket (read and, while output is pending, write interest, plus one
 * timeout whose meaning depends on the state):
 *
 *   HEAD     waiting for, or reading, a request head (keep-alive idle when
 *            no byte of it has come yet)
 *   ACTIVE   a request is with the consumer: its body streams in, its
 *            response streams out
 *   DRAIN    the response is done but the client is still sending a body
 *            nobody read: discard it, then go back to HEAD
 *   CLOSING  the last response is being flushed
 *   LINGER   write side shut; discard what the client still sends for a
 *            moment, so an early response is not destroyed by a TCP reset
 *
 * Consumer calls (csgi_http__request_* and csgi_http__response_*) never do
 * socket I/O and never call back into the consumer: they change buffers and
 * flags and then "touch" the connection. When the engine itself called the
 * consumer (conn->dispatching), the state machine runs as soon as that
 * callback returns; otherwise the touch activates the connection's event so
 * the state machine runs on the next loop iteration. This is what makes it
 * safe for a consumer to respond synchronously, from a timer, or from its
 * own I/O, and what guarantees that on_done is called exactly once, from the
 * loop, never in the middle of a consumer's call.
 */
#include "common/alloc.h"
#include "common/arena.h"
#include "common/status.h"
#include "http/private.h"
#include "http/tls.h"

#include <csgi/common.h>

#include <event2/buffer.h>
#include <event2/util.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

enum conn_state { ST_HEAD, ST_ACTIVE, ST_DRAIN, ST_CLOSING, ST_LINGER };

/* TO_DEADLINE counts down to conn->deadline (the whole head, what a body
   may still keep the engine waiting, the whole lingering); the others
   restart at every read or write. */
enum timeout_kind { TO_NONE, TO_DEADLINE, TO_KEEPALIVE, TO_SEND };

static void conn_event(evutil_socket_t fd, short what, void *arg);
static void conn_run(csgi_http__conn *conn);
static void conn_read(csgi_http__conn *conn);
static void conn_read_fresh(csgi_http__conn *conn);

#define READ_SIZE 16384

/* ---- Small helpers -------------------------------------------------------- */

static csgi_http__engine *conn_engine(const csgi_http__conn *conn)
{
    return conn->loop->engine;
}

static void format_peer(const csgi_http__conn *conn, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    switch (conn->peer.sa.sa_family) {
    case AF_INET:
        inet_ntop(AF_INET, &conn->peer.in.sin_addr, host, sizeof(host));
        port = ntohs(conn->peer.in.sin_port);
        snprintf(out, size, "%s:%d", host, port);
        return;
    case AF_INET6:
        inet_ntop(AF_INET6, &conn->peer.in6.sin6_addr, host, sizeof(host));
        port = ntohs(conn->peer.in6.sin6_port);
        snprintf(out, size, "[%s]:%d", host, port);
        return;
    default: snprintf(out, size, "unix:%s", conn->listener->unix_addr.sun_path); return;
    }
}

void csgi_http__conn_log(const csgi_http__conn *conn, int level, const char *format, ...)
{
    if (level > csgi_http__conn_options(conn)->log_level)
        return;
    char peer[INET6_ADDRSTRLEN + 112];
    char text[512];
    format_peer(conn, peer, sizeof(peer));
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof(text), format, args);
    va_end(args);
    csgi_http__log(conn_engine(conn), level, "client %s: %s", peer, text);
}

static const struct timeval *timeout_value(const csgi_http__conn *conn, int kind,
                                           struct timeval *scratch)
{
    const csgi_http__loop *loop = conn->loop;
    switch (kind) {
    case TO_DEADLINE: {
        struct timeval now;
        event_base_gettimeofday_cached(loop->base, &now);
        if (evutil_timercmp(&conn->deadline, &now, <=)) {
            scratch->tv_sec = 0;
            scratch->tv_usec = 0;
        } else {
            evutil_timersub(&conn->deadline, &now, scratch);
        }
        return scratch;
    }
    case TO_KEEPALIVE: return NULL; /* the loop's timer (keepalive_begin) */
    case TO_SEND: return loop->send_tv;
    default: return NULL;
    }
}

/*
 * Register the events and timeout the state needs. Re-registering I/O
 * interest costs epoll_ctl calls, so it happens only when the interest
 * changes; a persistent event's timeout restarts by itself at every
 * activation, so an unchanged kind needs nothing either (except the head
 * deadline, which is absolute and must not restart).
 */
static void conn_arm(csgi_http__conn *conn, int events, int kind)
{
    struct timeval scratch;
    const struct timeval *tv = timeout_value(conn, kind, &scratch);
    if (!tv && kind != TO_KEEPALIVE)
        kind = TO_NONE;

    if (events != conn->armed) {
        if (conn->armed || conn->timeout != TO_NONE || conn->touched)
            event_del(&conn->ev);
        conn->touched = 0;
        event_assign(&conn->ev, conn->loop->base, event_get_fd(&conn->ev),
                     (short)(events | EV_PERSIST), conn_event, conn);
        conn->armed = (unsigned char)events;
        conn->timeout = (unsigned char)kind;
        if (events || tv)
            event_add(&conn->ev, tv);
        return;
    }
    if (kind == conn->timeout && kind != TO_DEADLINE)
        return;
    conn->timeout = (unsigned char)kind;
    if (tv)
        event_add(&conn->ev, tv);
    else
        event_remove_timer(&conn->ev);
}

/* Start counting ms down to conn->deadline. */
static void set_deadline(csgi_http__conn *conn, unsigned ms)
{
    struct timeval limit = {ms / 1000, (ms % 1000) * 1000};
    event_base_gettimeofday_cached(conn->loop->base, &conn->deadline);
    evutil_timeradd(&conn->deadline, &limit, &conn->deadline);
}

/* Nagle holds back a small write while earlier bytes are not
   acknowledged, so a connection's first write never waits: a connection
   answered once and closed needs no TCP_NODELAY. Later writes (the rest of
   a large answer, the next keep-alive answer) may, so it is set before the
   second. */
static inline void before_write(csgi_http__conn *conn)
{
    if (__builtin_expect(conn->wrote && !conn->nodelay, 0)) {
        int one = 1;
        setsockopt(event_get_fd(&conn->ev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn->nodelay = 1;
    }
    conn->wrote = 1;
}

void csgi_http__conn_cork(csgi_http__conn *conn)
{
#ifdef TCP_CORK
    if (conn->corked || conn->tls || conn->listener->family == AF_UNIX)
        return;
    int one = 1;
    if (setsockopt(event_get_fd(&conn->ev), IPPROTO_TCP, TCP_CORK, &one, sizeof(one)) == 0)
        conn->corked = 1;
#else
    (void)conn;
#endif
}

/* The output is empty: what a cork still holds leaves now. */
static void uncork(csgi_http__conn *conn)
{
#ifdef TCP_CORK
    int zero = 0;
    setsockopt(event_get_fd(&conn->ev), IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero));
#endif
    conn->corked = 0;
}

void csgi_http__conn_unstage(csgi_http__conn *conn)
{
    csgi_http__loop *loop = conn->loop;
    loop->staged = NULL;
    if (evbuffer_add(conn->out, loop->write_area, loop->staged_len) != 0 && !conn->io_error)
        conn->io_error = ENOMEM;
}

/* Write the answer staged in the loop's write area (the output buffer is
   empty behind it): one write(2), and what it did not take goes to the
   output buffer, sent when the socket has room. */
static int conn_write_staged(csgi_http__conn *conn, size_t *pending, uint64_t *written)
{
    csgi_http__loop *loop = conn->loop;
    size_t len = loop->staged_len;
    loop->staged = NULL; /* the area is free again, whatever happens */
    before_write(conn);
    ssize_t n = write(event_get_fd(&conn->ev), loop->write_area, len);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            conn->io_error = errno ? errno : EIO;
            return -1;
        }
        n = 0;
    }
    *pending -= (size_t)n;
    *written += (uint64_t)n;
    if ((size_t)n < len && evbuffer_add(conn->out, loop->write_area + n, len - (size_t)n) != 0) {
        conn->io_error = ENOMEM;
        return -1;
    }
    return 0;
}

/* Write what *pending (the output's length) says is queued; *pending is
   then what is left, and *written counts what went out. */
static int conn_flush_all(csgi_http__conn *conn, size_t *pending, uint64_t *written)
{
    if (conn->loop->staged == conn)
        return conn_write_staged(conn, pending, written);
    /* Usually one writev takes the whole response and the loop ends. A file
       range needs a second call (sendfile after the head); a full socket
       buffer ends it with EAGAIN. The bound keeps one connection from
       holding the loop while a fast client drains a large body. What was
       written is drained from the output, so the length left is counted
       here rather than asked of the buffer again. */
    if (__builtin_expect(conn->tls != NULL, 0))
        return csgi_http__tls_conn_flush(conn, pending, written);
    for (int i = 0; i < 4 && *pending > 0; i++) {
        before_write(conn);
        int n = evbuffer_write(conn->out, event_get_fd(&conn->ev));
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return 0;
            conn->io_error = errno ? errno : EIO;
            return -1;
        }
        if (n == 0)
            break;
        *pending -= (size_t)n;
        *written += (uint64_t)n;
    }
    /* Only this path uncorks: a file answer is queued in the output, so no
       answer is staged before the output has been emptied here. */
    if (__builtin_expect(conn->corked, 0) && *pending == 0)
        uncork(conn);
    return 0;
}

/* conn_flush_all, where *written counts only what follows the answers of
   requests already done (conn->out_done, which goes down as they leave). */
static int conn_flush(csgi_http__conn *conn, size_t *pending, uint64_t *written)
{
    if (__builtin_expect(!conn->out_done, 1))
        return conn_flush_all(conn, pending, written);
    uint64_t sent = 0;
    int r = conn_flush_all(conn, pending, &sent);
    if (sent > conn->out_done) {
        *written += sent - conn->out_done;
        conn->out_done = 0;
    } else {
        conn->out_done -= (size_t)sent;
    }
    return r;
}

/*
 * Pipelined answers. When a request is answered while the next one is
 * already in the input (a client that pipelines), its answer stays in the
 * output and the next request runs first: the answers of every request
 * that arrived together go out in one write, where each would otherwise
 * cost a writev. It applies to answers made of copied bytes only (not
 * referencing the request's memory or a file, which must be sent before
 * the request is released), on a keep-alive plain TCP connection, and
 * while the held answers stay under output_buffer. The held bytes count
 * as the request's written bytes (its access log line); they leave with
 * the next flush: the next request's, or ST_HEAD's before it waits.
 */
static int answer_can_wait(const csgi_http__conn *conn, const csgi_http__request *req,
                           size_t pending, const csgi_http__options *options)
{
    return req->keep_alive && !req->out_shared && !conn->tls &&
           req->body_state == CSGI_HTTP__BODY_COMPLETE && pending < options->output_buffer &&
           evbuffer_get_length(conn->in) > 0;
}

static void conn_free(csgi_http__conn *conn);

/* ST_HEAD, when the input holds no whole request and it would wait or
   close: send the pipelined answers held for this moment. Returns 0 when
   they are out (go on), 1 when the state machine must return: the socket
   is full (armed for EV_WRITE, ST_HEAD flushes again then) or the write
   failed (the connection is freed). */
static int held_answers_wait(csgi_http__conn *conn)
{
    size_t pending = csgi_http__conn_out_length(conn);
    uint64_t written = 0; /* counted already, as each request's */
    if (conn_flush(conn, &pending, &written) < 0) {
        conn_free(conn);
        return 1;
    }
    if (pending) {
        conn_arm(conn, EV_WRITE, TO_SEND);
        return 1;
    }
    return 0;
}

/* Drop the output of the request being answered, keeping the answers of
   the requests done before it (conn->out_done bytes at the front). */
static void drop_unsent_answer(csgi_http__conn *conn)
{
    if (conn->loop->staged == conn)
        conn->loop->staged = NULL; /* it is the whole output */
    size_t len = evbuffer_get_length(conn->out);
    if (__builtin_expect(conn->out_done == 0, 1) || conn->out_done >= len) {
        if (conn->out_done < len)
            evbuffer_drain(conn->out, len);
        return;
    }
    struct evbuffer *keep = evbuffer_new();
    if (keep && evbuffer_remove_buffer(conn->out, keep, conn->out_done) == (int)conn->out_done) {
        evbuffer_drain(conn->out, evbuffer_get_length(conn->out));
        evbuffer_add_buffer(conn->out, keep);
    } else {
        evbuffer_drain(conn->out, evbuffer_get_length(conn->out)); /* the close tells the client */
        conn->out_done = 0;
    }
    if (keep)
        evbuffer_free(keep);
}

/* ---- Buffers ------------------------------------------------------------- */

/*
 * Most connections are idle keep-alive connections, and an idle connection
 * has nothing to buffer. So it holds no buffers: they go back to the loop
 * when the connection goes idle (ST_HEAD with nothing read) and are taken
 * again when it next reads. Passing them through the loop's spares costs a
 * few instructions per request, where allocating them would cost hundreds;
 * it saves two struct evbuffer (some 290 bytes with malloc's overhead) per
 * idle connection, about half of what one holds.
 *
 * conn_buffers_take returns 0, or -1 when memory is exhausted.
 */
static int conn_buffers_take(csgi_http__conn *conn)
{
    csgi_http__loop *loop = conn->loop;
    if (loop->spare_count) {
        loop->spare_count--;
        conn->in = loop->spare_buffers[loop->spare_count].in;
        conn->out = loop->spare_buffers[loop->spare_count].out;
        loop->idle_count--;
        return 0;
    }
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    if (!in || !out) { /* still idle: it holds none */
        if (in)
            evbuffer_free(in);
        if (out)
            evbuffer_free(out);
        return -1;
    }
    conn->in = in;
    conn->out = out;
    loop->idle_count--;
    return 0;
}

static void list_unlink(csgi_http__link *link)
{
    link->prev->next = link->next;
    link->next->prev = link->prev;
}

static void list_push_front(csgi_http__link *head, csgi_http__link *link)
{
    link->prev = head;
    link->next = head->next;
    head->next->prev = link;
    head->next = link;
}

static csgi_http__conn *conn_of(csgi_http__link *link)
{
    return (csgi_http__conn *)(void *)((char *)link - offsetof(csgi_http__conn, link));
}

/*
 * Keep-alive: a connection idle between requests is closed after
 * keepalive_timeout_ms. A libevent timeout on its event would restart by
 * itself at every activation (libevent adds a persistent event's timeout
 * again each time the event runs, some 175 instructions a request). So its
 * event has no timeout: going idle, the connection notes when its wait
 * ends (conn->deadline) and moves to the front of the loop's list, which
 * keeps idle connections in the order their waits end. One timer a loop
 * closes, from the back, those whose wait ended, and waits for the next.
 */
static void keepalive_arm(csgi_http__loop *loop, const struct timeval *at,
                          const struct timeval *now)
{
    struct timeval in = {0, 0};
    if (evutil_timercmp(at, now, >))
        evutil_timersub(at, now, &in);
    loop->keepalive_sweep_armed = event_add(&loop->keepalive_sweep, &in) == 0;
}

static void keepalive_begin(csgi_http__conn *conn)
{
    unsigned ms = csgi_http__conn_options(conn)->keepalive_timeout_ms;
    if (!ms)
        return; /* idle for as long as the client likes */
    set_deadline(conn, ms);
    csgi_http__loop *loop = conn->loop;
    if (!loop->keepalive_sweep_armed) {
        struct timeval now;
        event_base_gettimeofday_cached(loop->base, &now);
        keepalive_arm(loop, &conn->deadline, &now);
    }
}

/* Going idle: the buffers go back to the loop, the connection to the front
   of its list (see csgi_http__loop_make_room). */
static void conn_buffers_give_back(csgi_http__conn *conn)
{
    csgi_http__loop *loop = conn->loop;
    list_unlink(&conn->link);
    list_push_front(&loop->connections, &conn->link);
    loop->idle_count++;
    if (loop->spare_count < sizeof(loop->spare_buffers) / sizeof(loop->spare_buffers[0])) {
        loop->spare_buffers[loop->spare_count].in = conn->in;
        loop->spare_buffers[loop->spare_count].out = conn->out;
        loop->spare_count++;
    } else {
        evbuffer_free(conn->in);
        evbuffer_free(conn->out);
    }
    conn->in = NULL;
    conn->out = NULL;
}

void csgi_http__loop_free_spare_buffers(csgi_http__loop *loop)
{
    while (loop->spare_count) {
        loop->spare_count--;
        evbuffer_free(loop->spare_buffers[loop->spare_count].in);
        evbuffer_free(loop->spare_buffers[loop->spare_count].out);
    }
}

/* ---- Connection lifetime ----------------------------------------------- */

static void request_release(csgi_http__conn *conn);

static void conn_free(csgi_http__conn *conn)
{
    csgi_http__loop *loop = conn->loop;
    if (loop->fresh_owner == conn)
        loop->fresh_owner = NULL;
    if (loop->staged == conn)
        loop->staged = NULL;
    /* Output the client will never get may reference the request's
       memory: its cleanups run before on_done, while that memory lives. */
    if (conn->out)
        evbuffer_drain(conn->out, evbuffer_get_length(conn->out));
    conn->out_done = 0;
    if (conn->req)
        request_release(conn);
    event_del(&conn->ev);
    if (conn->tls)
        csgi_http__tls_conn_free(conn);
    evutil_closesocket(event_get_fd(&conn->ev));
    if (conn->in)
        evbuffer_free(conn->in);
    else
        loop->idle_count--;
    if (conn->out)
        evbuffer_free(conn->out);
    list_unlink(&conn->link);
    csgi__free(conn);
    csgi_http__loop_connection_closed(loop);
}

/* Whether a new connection may be answered from the accept callback: the
   first EAGER_ACCEPTS of a turn of the loop are. libevent's listener
   accepts until the queue is empty, so under a storm of connections the
   others are registered and wait their turn with every other connection,
   rather than keep the loop in the accept callback. The loop's cached
   clock changes with each turn. */
#define EAGER_ACCEPTS 64

static int eager_turn(csgi_http__loop *loop)
{
    struct timeval now;
    event_base_gettimeofday_cached(loop->base, &now);
    if (now.tv_sec != loop->eager_turn.tv_sec || now.tv_usec != loop->eager_turn.tv_usec) {
        loop->eager_turn = now;
        loop->eager_count = 0;
    }
    return loop->eager_count++ < EAGER_ACCEPTS;
}

void csgi_http__conn_accept(csgi_http__loop *loop, evutil_socket_t fd, const struct sockaddr *peer,
                            socklen_t peer_len, const csgi_http__listener *listener)
{
    csgi_http__conn *conn = csgi__calloc(1, sizeof(*conn));
    if (!conn) {
        evutil_closesocket(fd);
        csgi_http__log(loop->engine, CSGI_LOG__ERROR, "out of memory accepting a connection");
        csgi_http__loop_connection_closed(loop);
        return;
    }
    conn->loop = loop; /* the buffers come with the first read */
    conn->listener = listener;
    if (peer && peer_len <= sizeof(conn->peer) && peer->sa_family != AF_UNIX)
        memcpy(&conn->peer, peer, peer_len);
    else
        conn->peer.sa.sa_family = AF_UNIX;
    if (listener->family == AF_UNIX) {
        conn->nodelay = 1;
    } else if (listener->tls) { /* OpenSSL writes a record at a time */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn->nodelay = 1;
    }
    csgi_http__scanner_init(&conn->scanner);
    conn->state = ST_HEAD;

    list_push_front(&loop->connections, &conn->link);
    loop->idle_count++; /* no buffers until it reads */

    /* The first head's deadline counts from the accept; over TLS the
       handshake's does, and the head's from the handshake's end (tls.c). */
    unsigned ms = csgi_http__conn_options(conn)->header_timeout_ms;
    if (listener->tls) {
        if (csgi_http__tls_conn_new(conn, listener->tls, fd) != 0) {
            csgi_http__log(loop->engine, CSGI_LOG__ERROR, "out of memory accepting a connection");
            list_unlink(&conn->link);
            loop->idle_count--;
            evutil_closesocket(fd);
            csgi__free(conn);
            csgi_http__loop_connection_closed(loop);
            return;
        }
        ms = csgi_http__tls_handshake_ms(listener->tls);
    }
    set_deadline(conn, ms);

    event_assign(&conn->ev, loop->base, fd, EV_PERSIST, conn_event, conn);
    conn->armed = 0;
    conn->timeout = TO_NONE;
    if (!listener->tls && eager_turn(loop)) {
        /* The request is usually here already (clients send right after
           connecting): read and answer it now. The state machine
           registers the connection with the loop only when it has to
           wait, so one answered and closed at once never costs an
           epoll_ctl. */
        conn_read_fresh(conn);
        conn_run(conn);
        return;
    }
    conn_arm(conn, EV_READ, ms ? TO_DEADLINE : TO_NONE);
}

/* ---- The access log -------------------------------------------------------- */

static void access_log_write(csgi_http__conn *conn, csgi_access_log__entry *entry)
{
    csgi_http__loop *loop = conn->loop;
    entry->peer = &conn->peer.sa;
    if (csgi_access_log__write(loop->engine->options.access_log, entry) &&
        !loop->access_log_flush_armed)
        csgi_http__loop_access_log_pending(loop);
}

/* The line of a request the consumer had, as it ends: its status (499, as
   nginx, when nothing was answered before the connection closed) and the
   bytes that reached the socket. Out of line: the request's path without
   an access log stays as short as it was. */
static __attribute__((noinline)) void log_request(csgi_http__conn *conn, csgi_http__request *req)
{
    const csgi_http__head *head = &req->head;
    csgi_access_log__entry entry;
    entry.head = head;
    entry.line = head->method; /* "METHOD TARGET HTTP/1.x", one space each */
    entry.line_len = head->method_len + head->target_len + 10;
    entry.status = req->status ? req->status : 499;
    entry.sent_bytes = req->written;
    entry.body_bytes = req->written > req->body_start ? req->written - req->body_start : 0;
    entry.start = req->start;
    struct timeval now;
    gettimeofday(&now, NULL);
    int64_t us = ((int64_t)now.tv_sec - req->start.tv_sec) * 1000000 +
                 ((int64_t)now.tv_usec - req->start.tv_usec);
    entry.duration_us = us > 0 ? (uint64_t)us : 0; /* the clock may step back */
    entry.value = req->callbacks ? req->callbacks->log_value : NULL;
    entry.value_request = req;
    entry.value_userdata = req->userdata;
    access_log_write(conn, &entry);
}

/* The request line as far as it came in the len bytes at data, for the
   log line of a refused request: after the empty lines a client may send
   first, up to its end or 1024 bytes. */
static const char *first_line(const char *data, size_t len, size_t *line_len)
{
    while (len && (*data == '\r' || *data == '\n')) {
        data++;
        len--;
    }
    size_t n = 0;
    while (n < len && n < 1024 && data[n] != '\r' && data[n] != '\n')
        n++;
    *line_len = n;
    return n ? data : NULL;
}

/* ---- Refusing a request ---------------------------------------------------- */

/* Refuse what the client sent: answer status, then close (with lingering,
   so the client reads the answer before any reset). data and len: the
   bytes of the request head as far as they came (NULL when unknown), head
   its parsed head if it parsed; both for the access log. */
static void conn_refuse(csgi_http__conn *conn, int status, const char *why, const char *data,
                        size_t len, const csgi_http__head *head)
{
    csgi_http__conn_log(conn, CSGI_LOG__INFO, "%d %s (%s)", status, csgi_status__reason(status),
                        why);
    size_t page = csgi_http__queue_error_response(conn, status);
    conn->state = ST_CLOSING;
    conn->linger = 1;
    if (!csgi_http__conn_options(conn)->access_log)
        return;
    csgi_access_log__entry entry;
    entry.head = head;
    entry.line = data ? first_line(data, len, &entry.line_len) : NULL;
    entry.status = status;
    entry.body_bytes = page;
    entry.sent_bytes = csgi_http__conn_out_length(conn) - conn->out_done;
    gettimeofday(&entry.start, NULL);
    entry.duration_us = 0;
    entry.value = NULL;
    entry.value_request = NULL;
    entry.value_userdata = NULL;
    access_log_write(conn, &entry);
}

/* ---- Requests ------------------------------------------------------------ */

/* Inlined: it runs for every request, and a call costs more than its body. */
static inline __attribute__((always_inline)) void dispatch_done(csgi_http__conn *conn,
                                                                csgi_http__request *req)
{
    if (req->done)
        return;
    req->done = 1;
    if (__builtin_expect(csgi_http__conn_options(conn)->access_log != NULL, 0))
        log_request(conn, req);
    if (req->callbacks && req->callbacks->on_done) {
        conn->dispatching++;
        req->callbacks->on_done(req, req->done_error, req->userdata);
        conn->dispatching--;
    }
}

/* Tell the consumer (if not yet told) and free the request's memory. */
static void request_release(csgi_http__conn *conn)
{
    csgi_http__request *req = conn->req;
    if (!req->done) {
        if (!req->done_error)
            req->done_error = conn->io_error ? CSGI_EIO : CSGI_ECLOSED;
        dispatch_done(conn, req);
    }
    if (req->body)
        evbuffer_free(req->body);
    req->body = NULL;
    conn->req = NULL;
    if (req->holds) {
        /* The consumer still reads the request's memory elsewhere (a pool
           thread): csgi_http__request_unhold clears it. The connection is
           free to go on, and may be gone by then. */
        req->conn = NULL;
        return;
    }
    /* The request lives in its own arena: copy the arena out before
       clearing it, since clearing frees the chunk holding *req. */
    csgi_arena arena = req->arena;
    csgi_arena__clear(&arena);
}

void csgi_http__request_hold(csgi_http__request *req)
{
    if (req->holds++ == 0) {
        req->loop = req->conn->loop;
        req->loop->held_requests++;
    }
}

void csgi_http__request_unhold(csgi_http__request *req)
{
    if (--req->holds)
        return;
    req->loop->held_requests--;
    if (req->conn)
        return; /* still running: request_release clears it */
    csgi_arena arena = req->arena;
    csgi_arena__clear(&arena);
}

static csgi_http__request *request_new(csgi_http__conn *conn)
{
    csgi_arena arena;
    csgi_arena__init(&arena, &conn->loop->recycler);
    csgi_http__request *req = csgi_arena__alloc(&arena, sizeof(*req));
    if (!req) {
        csgi_arena__clear(&arena);
        return NULL;
    }
    memset(req, 0, offsetof(csgi_http__request, body_start));
    req->arena = arena;
    req->conn = conn;
    if (csgi_http__conn_options(conn)->access_log) {
        req->body_start = 0;
        gettimeofday(&req->start, NULL); /* the clock the end is read with */
    }
    return req;
}

/*
 * End the request with an error: answer with status when nothing was sent
 * yet (and the client can still read), else cut the connection. The
 * consumer hears of it through on_done. why, when not NULL, is the one log
 * line that says what happened.
 */
static void request_fail(csgi_http__conn *conn, int err, int status, const char *why)
{
    csgi_http__request *req = conn->req;
    req->done_error = err;
    if (req->response_state == CSGI_HTTP__RESPONSE_NONE && status && err != CSGI_ECLOSED &&
        err != CSGI_EIO) {
        if (why)
            csgi_http__conn_log(conn, CSGI_LOG__INFO, "%d %s (%s)", status,
                                csgi_status__reason(status), why);
        drop_unsent_answer(conn);
        size_t page = csgi_http__queue_error_response(conn, status);
        /* The access log counts the answer as sent: it goes out after the
           request is gone. */
        size_t queued = csgi_http__conn_out_length(conn) - conn->out_done;
        req->status = status;
        req->body_start = req->written + queued - page;
        req->written += queued;
        conn->state = ST_CLOSING;
        conn->linger = 1;
    } else {
        if (why)
            csgi_http__conn_log(conn, CSGI_LOG__INFO, "connection cut (%s)", why);
        /* Cut: the client learns from the close that the response is
           incomplete. Queued output is dropped, not flushed: it may refer
           to memory of the request, which is released now. */
        conn->state = ST_CLOSING;
        conn->linger = 0;
        drop_unsent_answer(conn);
        req->cut = 1;
        if (conn->tls) /* no close_notify: the client must see the cut */
            csgi_http__tls_conn_truncated(conn);
    }
    request_release(conn);
}

static int head_from(csgi_http__conn *conn, const char *data, size_t window, size_t fresh_len);

/* Parse a head out of conn->in. Returns 1 when a request started, 0 when
   more bytes are needed, -1 when the connection now closes. */
static int conn_read_head(csgi_http__conn *conn)
{
    const csgi_http__options *options = csgi_http__conn_options(conn);
    size_t available = evbuffer_get_length(conn->in);
    /* Beyond max_head (plus the empty lines the scanner may skip) the
       scanner refuses anyway, so never make more than that contiguous. */
    size_t window = options->limits.max_head + 17;
    if (window > available)
        window = available;
    const char *data = (const char *)evbuffer_pullup(conn->in, (ssize_t)window);
    if (!data) {
        conn_refuse(conn, 500, "out of memory", NULL, 0, NULL);
        return -1;
    }
    return head_from(conn, data, window, 0);
}

/*
 * Parse a head out of the bytes conn_read_fresh left in the loop's read
 * area, as conn_read_head does out of conn->in, without passing them
 * through it: what follows a whole head (a body, pipelined requests) goes
 * to conn->in, and all of them do when the head is not whole or is
 * refused, so that every other path finds its bytes where it always did.
 */
static int conn_read_head_fresh(csgi_http__conn *conn)
{
    csgi_http__loop *loop = conn->loop;
    size_t len = loop->fresh_len;
    loop->fresh_owner = NULL;
    size_t window = csgi_http__conn_options(conn)->limits.max_head + 17;
    if (window > len)
        window = len;
    return head_from(conn, loop->read_area, window, len);
}

/* Put the first len bytes of data at the end of conn->in; 0, or -1 with
   conn->io_error set. */
static int input_add(csgi_http__conn *conn, const char *data, size_t len)
{
    if (len == 0 || evbuffer_add(conn->in, data, len) == 0)
        return 0;
    conn->io_error = ENOMEM;
    return -1;
}

/* conn_read_head's and conn_read_head_fresh's scan of window bytes at data
   and what follows: the request starts. fresh_len is 0 when data is
   conn->in's, else the bytes in the loop's read area. */
static int head_from(csgi_http__conn *conn, const char *data, size_t window, size_t fresh_len)
{
    const csgi_http__options *options = csgi_http__conn_options(conn);
    csgi_http__error error = {0, NULL};
    csgi_http__scan_result scan =
        csgi_http__scan(&conn->scanner, data, window, &options->limits, &error);
    if (scan != CSGI_HTTP__SCAN_DONE && fresh_len && input_add(conn, data, fresh_len) != 0)
        return 0; /* io_error: the state machine closes */
    if (scan == CSGI_HTTP__SCAN_MORE)
        return 0;
    if (scan == CSGI_HTTP__SCAN_ERROR) {
        conn_refuse(conn, error.status, error.reason, data, window, NULL);
        return -1;
    }
    /* What follows the head first, while data is still what was read. */
    if (fresh_len && input_add(conn, data + conn->scanner.head_length,
                               fresh_len - conn->scanner.head_length) != 0) {
        conn_refuse(conn, 500, "out of memory", data, window, NULL);
        return -1;
    }

    csgi_http__request *req = request_new(conn);
    size_t skipped = conn->scanner.skipped;
    size_t head_len = conn->scanner.head_length - skipped;
    size_t count = conn->scanner.header_count;
    char *copy = req ? csgi_arena__alloc(&req->arena, head_len) : NULL;
    csgi_http__header *headers =
        copy ? csgi_arena__alloc(&req->arena, (count ? count : 1) * sizeof(*headers)) : NULL;
    if (!headers) {
        conn_refuse(conn, 500, "out of memory", data, window, NULL);
        if (req) {
            memset(&req->head, 0, sizeof(req->head)); /* never parsed */
            conn->req = req;
            req->done = 1;
            request_release(conn);
        }
        return -1;
    }
    memcpy(copy, data + skipped, head_len);
    if (!fresh_len)
        evbuffer_drain(conn->in, conn->scanner.head_length);
    csgi_http__scanner_init(&conn->scanner);
    conn->req = req;

    /* A refused request's head is logged before its memory goes. */
    if (csgi_http__parse_head(copy, head_len, headers, count, &req->head, &error) != 0) {
        conn_refuse(conn, error.status, error.reason, copy, head_len, NULL);
        req->done = 1; /* the consumer never saw it */
        request_release(conn);
        return -1;
    }
    req->head.own_bytes = 1; /* copy */
    conn->requests++;
    atomic_store_explicit(&conn->loop->requests,
                          atomic_load_explicit(&conn->loop->requests, memory_order_relaxed) + 1,
                          memory_order_relaxed);

    switch (req->head.body) {
    case CSGI_HTTP__BODY_LENGTH:
        if (options->max_body && req->head.content_length > options->max_body) {
            conn_refuse(conn, 413, "Content-Length above the body limit", copy, head_len,
                        &req->head);
            req->done = 1;
            request_release(conn);
            return -1;
        }
        req->body_left = req->head.content_length;
        req->body_state = req->body_left ? CSGI_HTTP__BODY_READING : CSGI_HTTP__BODY_COMPLETE;
        break;
    case CSGI_HTTP__BODY_CHUNKED:
        csgi_http__chunked_init(&req->chunked);
        req->chunked.max_trailer = options->max_trailer;
        req->chunked.max_body = options->max_body;
        req->body_state = CSGI_HTTP__BODY_READING;
        break;
    default: req->body_state = CSGI_HTTP__BODY_COMPLETE; break;
    }
    if (req->body_state == CSGI_HTTP__BODY_READING) {
        req->body = evbuffer_new();
        if (!req->body) {
            conn_refuse(conn, 500, "out of memory", copy, head_len, &req->head);
            req->done = 1;
            request_release(conn);
            return -1;
        }
        if (req->head.expect_continue)
            req->continue_state = CSGI_HTTP__CONTINUE_EXPECTED;
        req->body_credit = (int64_t)options->body_timeout_ms * 1000; /* body_clock */
        /* Body bytes that came with the head are checked before the
           application is called, so that the answer to a broken body does
           not depend on how the client's bytes were split into packets. */
        csgi_http__body_pump(conn, req, 0);
        if (req->body_state == CSGI_HTTP__BODY_FAILED) {
            conn_refuse(conn, req->body_status, req->body_why, copy, head_len, &req->head);
            req->done = 1; /* the consumer never saw it */
            request_release(conn);
            return -1;
        }
    }
    conn->state = ST_ACTIVE;
    return 1;
}

/* ---- The state machine ------------------------------------------------- */

static void dispatch(csgi_http__conn *conn, void (*fn)(csgi_http__request *, void *))
{
    csgi_http__request *req = conn->req;
    conn->dispatching++;
    fn(req, req->userdata);
    conn->dispatching--;
}

static void dispatch_request(csgi_http__request *req, void *userdata)
{
    csgi_http__engine *engine = conn_engine(req->conn);
    (void)userdata;
    engine->handler.on_request(req, engine->handler.userdata);
}

/* The request is over for the consumer; decide what the connection does
   next. */
static void request_complete(csgi_http__conn *conn)
{
    csgi_http__request *req = conn->req;
    dispatch_done(conn, req);
    if (!req->keep_alive) {
        /* A client still sending its body would get a reset for the bytes
           that arrive after the close, and could lose the response with it. */
        conn->linger =
            evbuffer_get_length(conn->in) > 0 || req->body_state != CSGI_HTTP__BODY_COMPLETE;
        request_release(conn);
        conn->state = ST_CLOSING;
        return;
    }
    if (req->body_state == CSGI_HTTP__BODY_READING) {
        /* Discard the unread body, but not forever. */
        req->drain_limit = req->body_received + csgi_http__conn_options(conn)->max_drain;
        conn->state = ST_DRAIN; /* keeps req for its decoder */
        return;
    }
    request_release(conn);
    conn->state = ST_HEAD;
    if (evbuffer_get_length(conn->in) > 0) /* pipelined: its time starts now */
        set_deadline(conn, csgi_http__conn_options(conn)->header_timeout_ms);
}

/*
 * A deadline on the body, as a bucket of time (docs/architecture.md, "A
 * deadline on the body"). A body may keep the engine waiting for
 * body_timeout_ms at most: that is the bucket, full when the head arrives.
 * Time spent waiting for the body (the consumer asked for bytes and has
 * none, or an unread body is drained) runs it down; each byte that
 * arrives puts back 1/body_min_rate of a second, never above full. So a
 * client that stalls is cut after body_timeout_ms, as before, and one
 * that trickles slower than body_min_rate on average is cut too, soon
 * after body_timeout_ms / (1 - its rate / body_min_rate), where a timeout
 * between reads would let one byte a minute hold the connection for ever.
 * Time the consumer spends not reading is not the client's and is not
 * counted. With body_min_rate 0 every byte fills the bucket: a timeout
 * between reads.
 *
 * Called where the state machine decides what to wait for, with waiting 1
 * when it waits for the body. Returns 1 with conn->deadline set when the
 * deadline is to be armed (TO_DEADLINE), 0 when nothing is timed, -1 when
 * the time is already up.
 */
static int body_clock(csgi_http__conn *conn, csgi_http__request *req, int waiting)
{
    const csgi_http__options *options = csgi_http__conn_options(conn);
    if (!options->body_timeout_ms)
        return 0;
    struct timeval now;
    event_base_gettimeofday_cached(conn->loop->base, &now);
    if (req->body_timing) {
        struct timeval spent;
        evutil_timersub(&now, &req->body_waiting_since, &spent);
        if (spent.tv_sec >= 0) /* the clock may have been set back */
            req->body_credit -= (int64_t)spent.tv_sec * 1000000 + spent.tv_usec;
        req->body_timing = 0;
    }
    int64_t full = (int64_t)options->body_timeout_ms * 1000;
    uint64_t fresh = req->body_received - req->body_credited;
    if (fresh) {
        req->body_credited = req->body_received;
        unsigned rate = options->body_min_rate;
        uint64_t earned =
            !rate || fresh > UINT64_MAX / 1000000 ? (uint64_t)full : fresh * 1000000 / rate;
        /* body_credit <= full here, so the sum cannot overflow */
        req->body_credit = earned >= (uint64_t)full || req->body_credit + (int64_t)earned > full
                               ? full
                               : req->body_credit + (int64_t)earned;
    }
    if (!waiting)
        return 0;
    if (req->body_credit <= 0)
        return -1;
    req->body_timing = 1;
    req->body_waiting_since = now;
    struct timeval left = {(time_t)(req->body_credit / 1000000),
                           (suseconds_t)(req->body_credit % 1000000)};
    evutil_timeradd(&now, &left, &conn->deadline);
    return 1;
}

static const char body_too_slow[] = "request body not received in time "
                                    "(body_timeout, body_min_rate)";

/* Input beyond this is not read while a request is in progress. */
static size_t input_cap(const csgi_http__conn *conn)
{
    const csgi_http__options *options = csgi_http__conn_options(conn);
    size_t cap = options->limits.max_head + 17;
    return cap > options->body_buffer ? cap : options->body_buffer;
}

/*
 * A stopping loop closes a connection only when it has no request (after
 * the wait for last requests), and one may wait in the socket, unread:
 * sent while the loop was busy. So the socket is read: 1 when a request's
 * bytes came (the state machine goes on), 0 when nothing did (close).
 * Only the first time in a run of the state machine (earlier: how many
 * reads it made), so that a client that keeps sending cannot hold the
 * loop; later ones read on the next turn of the loop (-1).
 */
static __attribute__((noinline)) int stop_read(csgi_http__conn *conn, int earlier)
{
    if (earlier) {
        conn_arm(conn, EV_READ, TO_NONE);
        event_active(&conn->ev, EV_READ, 1);
        return -1;
    }
    conn_read(conn);
    return !conn->io_error && conn->in && evbuffer_get_length(conn->in) > 0;
}

/* Run the state machine until it waits for the network or the consumer.
   May free the connection. */
static void conn_run(csgi_http__conn *conn)
{
    const csgi_http__options *options = csgi_http__conn_options(conn);
    int stop_reads = 0; /* reads made here because the loop stops */
    for (;;) {
        switch (conn->state) {
        case ST_HEAD: {
            if (conn->loop->fresh_owner == conn) { /* read by conn_read_fresh */
                int r = conn_read_head_fresh(conn);
                if (r > 0)
                    dispatch(conn, dispatch_request);
                continue; /* not whole: its bytes are in conn->in */
            }
            int head_timeout = options->header_timeout_ms ? TO_DEADLINE : TO_NONE;
            if (conn->io_error) {
                conn_free(conn);
                return;
            }
            if (!conn->in || evbuffer_get_length(conn->in) == 0) {
                if (conn->out_done && held_answers_wait(conn))
                    return;
                /* A stopping loop keeps a connection that has not sent its
                   first request yet: its client connected to send one,
                   which may be on its way, and a worker retired by its
                   master (reload, max_requests) must not drop it. It is
                   answered with Connection: close, or cut when the grace
                   period ends. A keep-alive connection has had its
                   requests: it waits a moment for a last one, answered
                   with Connection: close (engine.c, IDLE_WAIT_MS), then
                   is closed unless the next one is in the socket. */
                if (conn->peer_eof || (conn->loop->closing_idle && conn->requests)) {
                    int r = conn->peer_eof ? 0 : stop_read(conn, stop_reads++);
                    if (r > 0)
                        continue;
                    if (r == 0)
                        conn_free(conn);
                    return;
                }
                /* Idle: the output went out before the request completed
                   (ST_ACTIVE and ST_DRAIN flush it first, held pipelined
                   answers just above). */
                if (conn->in) {
                    conn_buffers_give_back(conn);
                    if (conn->requests)
                        keepalive_begin(conn);
                }
                conn_arm(conn, EV_READ, conn->requests ? TO_KEEPALIVE : head_timeout);
                return;
            }
            /* The next request's first byte starts its head's time. Only
               a head still incomplete needs the deadline, and this turn's
               clock is the same now as at its first byte. */
            int first_bytes = conn->timeout == TO_KEEPALIVE;
            int r = conn_read_head(conn);
            if (r == 0) {
                if (first_bytes)
                    set_deadline(conn, options->header_timeout_ms);
                if (conn->out_done && held_answers_wait(conn))
                    return;
                if (conn->peer_eof) {
                    csgi_http__conn_log(conn, CSGI_LOG__INFO,
                                        "closed with an incomplete request head");
                    conn_free(conn);
                    return;
                }
                conn_arm(conn, EV_READ, head_timeout);
                return;
            }
            if (r > 0)
                dispatch(conn, dispatch_request);
            continue;
        }

        case ST_ACTIVE: {
            csgi_http__request *req = conn->req;
            if (req->body_state == CSGI_HTTP__BODY_READING)
                csgi_http__body_pump(conn, req, 0);
            if (conn->io_error ||
                (conn->peer_eof && req->response_state != CSGI_HTTP__RESPONSE_FINISHED)) {
                /* The client is gone; nobody will read what we send. */
                csgi_http__conn_log(conn, CSGI_LOG__INFO, "client went away during the request");
                request_fail(conn, conn->io_error ? CSGI_EIO : CSGI_ECLOSED, 0, NULL);
                continue;
            }
            if (req->body_state == CSGI_HTTP__BODY_FAILED) {
                if (req->response_state != CSGI_HTTP__RESPONSE_FINISHED) {
                    request_fail(conn, req->body_error, req->body_status, req->body_why);
                    continue;
                }
                /* The response is complete: it goes out as it is, then the
                   connection closes, as when the body breaks while it is
                   drained. The consumer's request succeeded. */
                if (req->keep_alive && req->body_status)
                    csgi_http__conn_log(conn, CSGI_LOG__INFO, "closing after the response (%s)",
                                        req->body_why);
                req->keep_alive = 0;
            }
            if (req->cut) {
                request_fail(conn, req->done_error ? req->done_error : CSGI_ESTATE, 0, NULL);
                continue;
            }
            size_t pending = csgi_http__conn_out_length(conn);
            if (req->response_state == CSGI_HTTP__RESPONSE_FINISHED && pending &&
                answer_can_wait(conn, req, pending, options)) {
                if (conn->loop->staged == conn) /* the next answer follows it there */
                    csgi_http__conn_unstage(conn);
                req->written += pending - conn->out_done;
                conn->out_done = pending;
                request_complete(conn);
                continue;
            }
            if (pending && conn_flush(conn, &pending, &req->written) < 0)
                continue; /* io_error set: handled above */
            if (req->response_state == CSGI_HTTP__RESPONSE_FINISHED && pending == 0) {
                request_complete(conn);
                continue;
            }
            if (req->body_waiting &&
                (evbuffer_get_length(req->body) || req->body_state != CSGI_HTTP__BODY_READING)) {
                req->body_waiting = 0;
                if (req->callbacks && req->callbacks->on_body)
                    dispatch(conn, req->callbacks->on_body);
                continue;
            }
            if (req->want_writable && pending < options->output_buffer &&
                req->response_state == CSGI_HTTP__RESPONSE_STARTED) {
                req->want_writable = 0;
                if (req->callbacks && req->callbacks->on_writable)
                    dispatch(conn, req->callbacks->on_writable);
                continue;
            }
            int events = 0;
            if (!conn->peer_eof && evbuffer_get_length(conn->in) < input_cap(conn))
                events |= EV_READ;
            if (pending)
                events |= EV_WRITE;
            int kind = pending ? TO_SEND : TO_NONE;
            if (req->body_state == CSGI_HTTP__BODY_READING) {
                int timed = body_clock(conn, req, !pending && req->body_waiting);
                if (timed < 0) {
                    request_fail(conn, CSGI_ETIMEDOUT, 408, body_too_slow);
                    continue;
                }
                if (timed)
                    kind = TO_DEADLINE;
            }
            conn_arm(conn, events, kind);
            return;
        }

        case ST_DRAIN: {
            csgi_http__request *req = conn->req;
            csgi_http__body_pump(conn, req, 1);
            if (req->body_state == CSGI_HTTP__BODY_COMPLETE) {
                request_release(conn);
                conn->state = ST_HEAD;
                if (evbuffer_get_length(conn->in) > 0) /* pipelined: its time starts now */
                    set_deadline(conn, options->header_timeout_ms);
                continue;
            }
            if (req->body_state == CSGI_HTTP__BODY_FAILED ||
                req->body_received > req->drain_limit) {
                /* Close, but lingering: the client may still be sending,
                   and a reset could destroy the response it has not read.
                   A client that left needs no log line. */
                if (req->body_state != CSGI_HTTP__BODY_FAILED || req->body_status)
                    csgi_http__conn_log(conn, CSGI_LOG__INFO, "closing after the response (%s)",
                                        req->body_state == CSGI_HTTP__BODY_FAILED
                                            ? req->body_why
                                            : "unread body above max_drain");
                request_release(conn);
                conn->state = ST_CLOSING;
                conn->linger = 1;
                continue;
            }
            int timed = body_clock(conn, req, 1);
            if (timed < 0) {
                csgi_http__conn_log(conn, CSGI_LOG__INFO, "closing after the response (%s)",
                                    body_too_slow);
                conn_free(conn);
                return;
            }
            conn_arm(conn, EV_READ, timed ? TO_DEADLINE : TO_NONE);
            return;
        }

        case ST_CLOSING:
            if (conn->io_error) {
                conn_free(conn);
                return;
            }
            size_t pending = csgi_http__conn_out_length(conn);
            uint64_t written = 0; /* the request is gone: nobody counts */
            if (pending && conn_flush(conn, &pending, &written) < 0) {
                conn_free(conn);
                return;
            }
            if (pending) {
                conn_arm(conn, EV_WRITE, TO_SEND);
                return;
            }
            if (!conn->linger || conn->peer_eof) {
                conn_free(conn);
                return;
            }
            /* Shut our side and read what the client still sends: closing
               with unread input makes the kernel reset the connection,
               which can destroy the response before the client read it. */
            if (conn->tls)
                csgi_http__tls_conn_shutdown(conn);
            shutdown(event_get_fd(&conn->ev), SHUT_WR);
            set_deadline(conn, options->linger_timeout_ms);
            conn->state = ST_LINGER;
            continue;

        case ST_LINGER:
            evbuffer_drain(conn->in, evbuffer_get_length(conn->in));
            if (conn->peer_eof || conn->io_error || !options->linger_timeout_ms) {
                conn_free(conn);
                return;
            }
            conn_arm(conn, EV_READ, TO_DEADLINE);
            return;
        }
    }
}

/* A read that returned n <= 0: the client's end of stream, or an error
   other than "nothing yet". */
static void read_failed(csgi_http__conn *conn, ssize_t n)
{
    if (n == 0)
        conn->peer_eof = 1;
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        conn->io_error = errno;
}

/*
 * The read of conn_event (and of a new connection's first turn), which the
 * state machine runs next: a connection waiting for a request, its input
 * empty, reads into the loop's read area, and ST_HEAD parses the head from
 * there (conn_read_head_fresh). A head that came whole in one read (most
 * do) then never passes through an evbuffer: no chain to make, fill,
 * pull up and free.
 */
static void conn_read_fresh(csgi_http__conn *conn)
{
    if (conn->state != ST_HEAD || conn->tls || (conn->in && evbuffer_get_length(conn->in) > 0)) {
        conn_read(conn);
        return;
    }
    if (!conn->in && conn_buffers_take(conn) != 0) {
        conn->io_error = ENOMEM;
        return;
    }
    csgi_http__loop *loop = conn->loop;
    ssize_t n = read(event_get_fd(&conn->ev), loop->read_area, sizeof(loop->read_area));
    if (n <= 0) {
        read_failed(conn, n);
        return;
    }
    loop->fresh_owner = conn;
    loop->fresh_len = (size_t)n;
}

static void conn_read(csgi_http__conn *conn)
{
    if (!conn->in && conn_buffers_take(conn) != 0) { /* idle until now */
        conn->io_error = ENOMEM;
        return;
    }
    if (__builtin_expect(conn->tls != NULL, 0)) {
        csgi_http__tls_conn_read(conn);
        return;
    }
    struct evbuffer_iovec vec[2];
    int n_vec = evbuffer_reserve_space(conn->in, READ_SIZE, vec, 2);
    if (n_vec < 1) {
        conn->io_error = ENOMEM;
        return;
    }
    ssize_t n = readv(event_get_fd(&conn->ev), (struct iovec *)vec, n_vec);
    if (n > 0) {
        size_t left = (size_t)n;
        for (int i = 0; i < n_vec; i++) {
            size_t take = left < vec[i].iov_len ? left : vec[i].iov_len;
            vec[i].iov_len = take;
            left -= take;
        }
        evbuffer_commit_space(conn->in, vec, n_vec);
        return;
    }
    evbuffer_commit_space(conn->in, vec, 0);
    read_failed(conn, n);
}

static void conn_timeout(csgi_http__conn *conn)
{
    switch (conn->state) {
    case ST_HEAD:
        if (conn->tls && !csgi_http__tls_conn_ready(conn))
            csgi_http__conn_log(conn, CSGI_LOG__INFO, "TLS handshake not done in time");
        if (conn->timeout == TO_KEEPALIVE || !conn->in || evbuffer_get_length(conn->in) == 0) {
            conn_free(conn);
            return;
        }
        /* As a refused request, without lingering: the client is slow. */
        size_t len = evbuffer_get_length(conn->in);
        len = len < 1100 ? len : 1100; /* enough for the line first_line keeps */
        conn_refuse(conn, 408, "request head not complete in time",
                    (const char *)evbuffer_pullup(conn->in, (ssize_t)len), len, NULL);
        conn->linger = 0;
        break;
    case ST_ACTIVE:
        if (conn->timeout == TO_SEND) {
            csgi_http__conn_log(conn, CSGI_LOG__INFO, "client stopped reading the response");
            request_fail(conn, CSGI_ETIMEDOUT, 0, NULL);
            conn_free(conn);
            return;
        }
        request_fail(conn, CSGI_ETIMEDOUT, 408, body_too_slow);
        break;
    case ST_DRAIN:
        csgi_http__conn_log(conn, CSGI_LOG__INFO, "closing after the response (%s)", body_too_slow);
        conn_free(conn);
        return;
    default: conn_free(conn); return;
    }
    conn_run(conn);
}

void csgi_http__conn_resume(csgi_http__conn *conn, int read)
{
    if (read)
        conn_read(conn);
    conn_run(conn);
}

static void conn_event(evutil_socket_t fd, short what, void *arg)
{
    csgi_http__conn *conn = arg;
    (void)fd;
    conn->touched = 0;
    if (what & EV_TIMEOUT) {
        conn_timeout(conn);
        return;
    }
    if (what & EV_READ)
        conn_read_fresh(conn);
    conn_run(conn);
}

/* ---- Shutdown -------------------------------------------------------------- */

size_t csgi_http__loop_busy_request(const csgi_http__loop *loop, char *buf, size_t size)
{
    const csgi_http__link *link = loop->connections.next;
    for (size_t seen = 0; link != &loop->connections && seen <= loop->connection_count; seen++) {
        const csgi_http__conn *conn = conn_of((csgi_http__link *)link);
        link = link->next;
        if (!conn->dispatching || !conn->req)
            continue;
        const csgi_http__head *head = &conn->req->head;
        size_t n = 0;
        for (size_t i = 0; i < head->method_len && n + 1 < size; i++)
            buf[n++] = head->method[i];
        if (n + 1 < size)
            buf[n++] = ' ';
        /* The target as sent; a control byte would forge a log line. */
        for (size_t i = 0; i < head->target_len && n + 1 < size; i++) {
            unsigned char c = (unsigned char)head->target[i];
            buf[n++] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
        }
        buf[n] = '\0';
        return n;
    }
    return 0;
}

void csgi_http__loop_shutdown_connections(csgi_http__loop *loop, int force)
{
    csgi_http__link *link = loop->connections.next;
    while (link != &loop->connections) {
        csgi_http__conn *conn = conn_of(link);
        link = link->next;
        if (force) {
            if (conn->req)
                conn->req->done_error = CSGI_ECLOSED;
            conn_free(conn);
        } else if (conn->state == ST_HEAD && (!conn->in || evbuffer_get_length(conn->in) == 0)) {
            /* Idle, as far as the loop knows: conn_run reads the socket
               once (loop->closing_idle), answers a request found there
               and closes a connection that has none, unless it has not
               sent its first request yet (see conn_run). It changes no
               other connection, so next stays valid. */
            conn_run(conn);
        }
        /* The others finish what they received: a response that starts
           while the loop stops says Connection: close, unless the next
           request already arrived (pipelined), which is answered too
           (csgi_http__conn_request_waiting). A body being drained is
           drained, then the connection reads as above. */
    }
}

/*
 * nginx's answer to a full house: close the keep-alive connections idle
 * the longest rather than leave new clients in the listen queue until a
 * keep-alive timeout frees a slot (75 s). Idle connections are in the
 * order they went idle, the most recent first, so the one idle the
 * longest is the last idle one. Busy ones met on the way move to the
 * front: they are not walked past again before every other connection
 * was, so a search costs O(1) amortised.
 */
int csgi_http__loop_make_room(csgi_http__loop *loop)
{
    csgi_http__link *link = loop->connections.prev;
    while (loop->idle_count > 0 && link != &loop->connections) {
        csgi_http__conn *conn = conn_of(link);
        link = link->prev;
        if (conn->in) {
            list_unlink(&conn->link);
            list_push_front(&loop->connections, &conn->link);
            continue;
        }
        /* Idle as far as the loop knows; but a request sent while the
           loop was busy may wait unread in the socket. Such a one runs on
           the next turn of the loop, and the next idle one is tried. */
        conn_read(conn);
        if (!conn->io_error && conn->in && evbuffer_get_length(conn->in) > 0) {
            csgi_http__conn_touch(conn); /* answered even if the client half-closed */
            continue;
        }
        conn_free(conn);
        return 1;
    }
    return 0;
}

void csgi_http__loop_sweep_keepalive(evutil_socket_t fd, short what, void *arg)
{
    csgi_http__loop *loop = arg;
    (void)fd;
    (void)what;
    loop->keepalive_sweep_armed = 0;
    struct timeval now;
    event_base_gettimeofday_cached(loop->base, &now);
    csgi_http__link *link = loop->connections.prev;
    while (link != &loop->connections) {
        csgi_http__conn *conn = conn_of(link);
        link = link->prev;
        if (conn->in) { /* busy: to the front, not walked past again */
            list_unlink(&conn->link);
            list_push_front(&loop->connections, &conn->link);
            continue;
        }
        /* Idle, but not between requests: a new connection's own timer. */
        if (conn->state != ST_HEAD || conn->timeout != TO_KEEPALIVE || !conn->requests)
            continue;
        if (evutil_timercmp(&conn->deadline, &now, >)) {
            keepalive_arm(loop, &conn->deadline, &now);
            return;
        }
        conn_timeout(conn);
    }
}

int csgi_http__conn_request_waiting(const csgi_http__conn *conn)
{
    if (evbuffer_get_length(conn->in) > 0)
        return 1;
    if (conn->tls && csgi_http__tls_conn_pending(conn))
        return 1;
    char byte;
    return recv(event_get_fd(&conn->ev), &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* ---- The consumer's API: request ------------------------------------------ */

void csgi_http__request_set_callbacks(csgi_http__request *req,
                                      const csgi_http__request_callbacks *callbacks, void *userdata)
{
    req->callbacks = callbacks;
    req->userdata = userdata;
}

const csgi_http__head *csgi_http__request_head(const csgi_http__request *req)
{
    return &req->head;
}

csgi_arena *csgi_http__request_arena(csgi_http__request *req)
{
    return &req->arena;
}

const struct sockaddr *csgi_http__request_peer(const csgi_http__request *req, socklen_t *len)
{
    const csgi_http__conn *conn = req->conn;
    if (conn->peer.sa.sa_family == AF_UNIX) {
        if (len)
            *len = sizeof(sa_family_t);
        return &conn->peer.sa;
    }
    if (len)
        *len = conn->peer.sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                   : sizeof(struct sockaddr_in);
    return &conn->peer.sa;
}

const struct sockaddr *csgi_http__request_local(const csgi_http__request *req, socklen_t *len)
{
    const csgi_http__listener *listener = req->conn->listener;
    if (listener->family == AF_UNIX) {
        if (len)
            *len = sizeof(listener->unix_addr);
        return (const struct sockaddr *)&listener->unix_addr;
    }
    if (len)
        *len = listener->addr_len;
    return &listener->addr.sa;
}

struct event_base *csgi_http__request_base(const csgi_http__request *req)
{
    return req->conn->loop->base;
}
