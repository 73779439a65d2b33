/*
 * The HTTP/1.1 client (csgi/client.h): a pool of kept-alive connections on
 * bufferevents (plain, or OpenSSL's for https), names resolved with evdns,
 * and one state machine per request: queued (send returned; the loop
 * starts it), resolving, connecting, waiting for the head, reading the
 * body. Response heads go through the engine's head scanner and field
 * parser (client_private.h), chunked bodies through its chunked decoder.
 *
 * Re-entrancy. The user's callbacks may cancel the request, pause or
 * resume it, write to it, or start other requests. Each call goes through
 * call_begin/call_end: a cancel inside a callback only marks the request,
 * and the code that called the callback tears it down once the callback
 * returns, touching nothing of it afterwards (every such caller returns
 * GONE up the stack). The bufferevents defer their callbacks, so nothing
 * of ours runs from inside a libevent call we make.
 */
#include "csgi/client.h"

#include "client/client_private.h"
#include "common/alloc.h"
#include "common/chartab.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define DEFAULT_CONNECT_MS 5000u
#define DEFAULT_TIMEOUT_MS 30000u
#define DEFAULT_IDLE_MS    30000u
#define DEFAULT_MAX_IDLE   8u
#define DEFAULT_MAX_HEAD   (64u * 1024u)
#define MAX_FIELDS         1000u
/* A streamed body's queue: write returns 1 above it, writable comes
   once the socket's queue is under half of it. */
#define HIGH_WATER (64u * 1024u)

#define GONE (-1) /* the request was finished or cancelled: touch nothing */

typedef struct connection connection;

struct connection {
    csgi_client *client;
    struct bufferevent *bev;
    char *key;               /* "http://host:port" */
    connection *prev, *next; /* the client's idle list */
    struct event *idle_timer;
    csgi_client_request *request; /* NULL while idle */
    unsigned reused : 1;          /* it served a request before this one */
    unsigned idle : 1;
    unsigned eof : 1; /* the server closed its side */
};

struct csgi_client {
    struct event_base *base;
    csgi_client_options options;
    char *ca_file;
    SSL_CTX *tls;
    struct evdns_base *dns;
    connection *idle;
    csgi_client_request *running;
    int freeing;
};

enum state { NEW, QUEUED, RESOLVING, CONNECTING, HEAD, BODY, COMPLETE };
enum body_mode { BODY_NONE, BODY_FIXED, BODY_STREAM };

struct csgi_client_request {
    csgi_client *client;
    csgi_client_request *prev, *next; /* the client's running list */
    const csgi_client_callbacks *callbacks;
    void *userdata;
    enum state state;

    char *host; /* NUL-terminated, without brackets */
    int port, tls, ipv6, numeric;
    char *key;
    struct evbuffer *head; /* request line and the user's fields */
    int head_request;

    enum body_mode body_mode;
    struct evbuffer *body;    /* a fixed body, kept for a retry */
    struct evbuffer *pending; /* stream pieces, framed, before the connection is up */
    int64_t stream_length;    /* -1: chunked */
    uint64_t stream_written;
    unsigned stream_ended : 1;
    unsigned want_writable : 1;
    uint64_t body_sent; /* body bytes given to a connection */

    connection *conn;
    struct evdns_getaddrinfo_request *dns;
    struct evutil_addrinfo *addresses; /* evdns's answer */
    struct evutil_addrinfo *next_address;
    struct evutil_addrinfo numeric_address;
    struct sockaddr_storage numeric_storage;
    int dns_error;
    unsigned in_resolve : 1;
    struct event *timer;
    struct event *kick;
    unsigned retried : 1;

    csgi_http__scanner scanner;
    unsigned got_bytes : 1;
    unsigned keep_alive : 1;
    unsigned paused : 1;
    csgi_client__framing framing;
    uint64_t remaining;
    csgi_http__chunked chunked;

    int calling;
    unsigned cancelled : 1;
    unsigned finishing : 1;
};

static void connect_next(csgi_client_request *request);
static void start(csgi_client_request *request);

/* ---- Requests ending ------------------------------------------------------ */

static void idle_unlink(connection *conn)
{
    if (!conn->idle)
        return;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        conn->client->idle = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    conn->prev = conn->next = NULL;
    conn->idle = 0;
}

static void connection_free(connection *conn)
{
    if (!conn)
        return;
    idle_unlink(conn);
    if (conn->idle_timer)
        event_free(conn->idle_timer);
    if (conn->bev)
        bufferevent_free(conn->bev);
    csgi__free(conn->key);
    csgi__free(conn);
}

/* Release what the request holds on the loop, its connection closed. */
static void detach(csgi_client_request *request)
{
    if (request->conn) {
        request->conn->request = NULL;
        connection_free(request->conn);
        request->conn = NULL;
    }
    if (request->dns) {
        struct evdns_getaddrinfo_request *dns = request->dns;
        request->dns = NULL;
        evdns_getaddrinfo_cancel(dns); /* its callback sees EVUTIL_EAI_CANCEL */
    }
    if (request->addresses) {
        evutil_freeaddrinfo(request->addresses);
        request->addresses = NULL;
    }
    if (request->timer)
        event_del(request->timer);
    if (request->kick)
        event_del(request->kick);
    csgi_client *client = request->client;
    if (request->prev || client->running == request) {
        if (request->prev)
            request->prev->next = request->next;
        else
            client->running = request->next;
        if (request->next)
            request->next->prev = request->prev;
        request->prev = request->next = NULL;
    }
}

static void request_free(csgi_client_request *request)
{
    detach(request);
    if (request->timer)
        event_free(request->timer);
    if (request->kick)
        event_free(request->kick);
    if (request->head)
        evbuffer_free(request->head);
    if (request->body)
        evbuffer_free(request->body);
    if (request->pending)
        evbuffer_free(request->pending);
    csgi__free(request->host);
    csgi__free(request->key);
    csgi__free(request);
}

/* The end: the connection closed (unless complete() took it), done called,
   the request freed. */
static void finish(csgi_client_request *request, int result)
{
    detach(request);
    request->finishing = 1;
    request->calling++;
    request->callbacks->done(request, result, request->userdata);
    request_free(request);
}

static void call_begin(csgi_client_request *request)
{
    request->calling++;
}

/* After a callback: GONE when it cancelled the request (now freed). */
static int call_end(csgi_client_request *request)
{
    if (--request->calling == 0 && request->cancelled) {
        request_free(request);
        return GONE;
    }
    return 0;
}

/* ---- The pool ------------------------------------------------------------ */

static void idle_close(evutil_socket_t fd, short what, void *arg)
{
    connection_free(arg);
}

static void idle_read(struct bufferevent *bev, void *arg)
{
    connection_free(arg); /* an idle connection has nothing to say */
}

static void idle_event(struct bufferevent *bev, short what, void *arg)
{
    connection_free(arg);
}

static void pool_put(connection *conn)
{
    csgi_client *client = conn->client;
    unsigned count = 0;
    for (connection *c = client->idle; c; c = c->next)
        count += strcmp(c->key, conn->key) == 0;
    if (count >= client->options.max_idle_per_host || client->freeing) {
        connection_free(conn);
        return;
    }
    if (!conn->idle_timer)
        conn->idle_timer = evtimer_new(client->base, idle_close, conn);
    if (!conn->idle_timer) {
        connection_free(conn);
        return;
    }
    struct timeval tv = {client->options.idle_timeout_ms / 1000,
                         (client->options.idle_timeout_ms % 1000) * 1000};
    evtimer_add(conn->idle_timer, &tv);
    bufferevent_setcb(conn->bev, idle_read, NULL, idle_event, conn);
    bufferevent_enable(conn->bev, EV_READ);
    conn->request = NULL;
    conn->reused = 1;
    conn->idle = 1;
    conn->prev = NULL;
    conn->next = client->idle;
    if (client->idle)
        client->idle->prev = conn;
    client->idle = conn;
}

static connection *pool_take(csgi_client *client, const char *key)
{
    for (connection *c = client->idle; c; c = c->next) {
        if (strcmp(c->key, key) == 0) {
            idle_unlink(c);
            evtimer_del(c->idle_timer);
            return c;
        }
    }
    return NULL;
}

/* ---- Timers -------------------------------------------------------------- */

static void arm(csgi_client_request *request, unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(request->timer, &tv);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    finish(arg, CSGI_ETIMEDOUT);
}

/* ---- The response ------------------------------------------------------- */

/* The response ended well: the connection goes back to the pool when it
   can carry another request. */
static void complete(csgi_client_request *request)
{
    connection *conn = request->conn;
    request->state = COMPLETE;
    request->conn = NULL;
    conn->request = NULL;
    int whole_body = request->body_mode != BODY_STREAM || request->stream_ended;
    if (request->keep_alive && whole_body && !conn->eof &&
        evbuffer_get_length(bufferevent_get_input(conn->bev)) == 0)
        pool_put(conn);
    else
        connection_free(conn);
    finish(request, 0);
}

/* Give body bytes to the data callback: 0, or GONE. */
static int deliver(csgi_client_request *request, const void *data, size_t len)
{
    if (!request->callbacks->data || len == 0)
        return 0;
    call_begin(request);
    int rc = request->callbacks->data(request, data, len, request->userdata);
    if (call_end(request) == GONE)
        return GONE;
    if (rc != 0) {
        finish(request, rc);
        return GONE;
    }
    return 0;
}

static int read_head(csgi_client_request *request, struct evbuffer *in)
{
    const csgi_client_options *options = &request->client->options;
    csgi_http__limits limits = {options->max_head, options->max_head, options->max_head,
                                MAX_FIELDS};
    csgi_http__error error;
    size_t avail = evbuffer_get_length(in);
    size_t look = avail < options->max_head + 1 ? avail : options->max_head + 1;
    const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
    csgi_http__scan_result scanned = csgi_http__scan(&request->scanner, buf, look, &limits, &error);
    if (scanned == CSGI_HTTP__SCAN_ERROR) {
        finish(request, error.status == 400 ? CSGI_EPARSE : CSGI_ETOOBIG);
        return GONE;
    }
    if (scanned == CSGI_HTTP__SCAN_MORE)
        return 0;

    size_t count = request->scanner.header_count;
    csgi_http__header *fields = csgi__calloc(count + 1, sizeof(*fields));
    csgi_header *headers = csgi__calloc(count + 1, sizeof(*headers));
    if (!fields || !headers) {
        csgi__free(fields);
        csgi__free(headers);
        finish(request, CSGI_ENOMEM);
        return GONE;
    }
    csgi_client__head head;
    const char *reason;
    size_t head_length = request->scanner.head_length;
    size_t skipped = request->scanner.skipped;
    int rc = csgi_client__parse_head(buf + skipped, head_length - skipped, request->head_request,
                                     fields, count + 1, &head, &reason);
    if (rc == 0 && head.status == 101)
        rc = CSGI_EPARSE; /* no Upgrade was asked for */
    if (rc != 0 || head.status < 200) {
        csgi__free(fields);
        csgi__free(headers);
        if (rc != 0) {
            finish(request, rc);
            return GONE;
        }
        /* An interim response: the real one follows. */
        evbuffer_drain(in, head_length);
        csgi_http__scanner_init(&request->scanner);
        request->scanner.response = 1;
        return 1;
    }
    for (size_t i = 0; i < head.header_count; i++) {
        headers[i].name = fields[i].name;
        headers[i].name_len = fields[i].name_len;
        headers[i].value = fields[i].value;
        headers[i].value_len = fields[i].value_len;
    }
    csgi_client_response response = {head.status,
                                     head.reason,
                                     head.reason_len,
                                     head.version_minor,
                                     headers,
                                     head.header_count,
                                     head.framing == CSGI_CLIENT__BODY_LENGTH
                                         ? (int64_t)head.content_length
                                     : head.framing == CSGI_CLIENT__BODY_NONE ? 0
                                                                              : -1};
    request->framing = head.framing;
    request->remaining = head.content_length;
    request->keep_alive = head.keep_alive;
    csgi_http__chunked_init(&request->chunked);
    request->state = BODY;

    call_begin(request);
    rc = request->callbacks->head ? request->callbacks->head(request, &response, request->userdata)
                                  : 0;
    int gone = call_end(request);
    csgi__free(fields);
    csgi__free(headers);
    if (gone == GONE)
        return GONE;
    if (rc != 0) {
        finish(request, rc);
        return GONE;
    }
    evbuffer_drain(in, head_length);
    if (request->framing == CSGI_CLIENT__BODY_NONE ||
        (request->framing == CSGI_CLIENT__BODY_LENGTH && request->remaining == 0)) {
        complete(request);
        return GONE;
    }
    return 1;
}

/* One step of the body from the first contiguous piece of input: 1, or GONE. */
static int read_body(csgi_client_request *request, struct evbuffer *in)
{
    struct evbuffer_iovec piece;
    if (evbuffer_peek(in, -1, NULL, &piece, 1) < 1)
        return 0;
    const char *data = piece.iov_base;
    size_t len = piece.iov_len;

    if (request->framing == CSGI_CLIENT__BODY_CHUNKED) {
        size_t consumed = 0;
        csgi_http__error error;
        csgi_http__chunk_result r =
            csgi_http__chunked_decode(&request->chunked, data, len, &consumed, &error);
        if (r == CSGI_HTTP__CHUNK_ERROR) {
            finish(request, error.status == 400 ? CSGI_EPARSE : CSGI_ETOOBIG);
            return GONE;
        }
        if (r == CSGI_HTTP__CHUNK_DATA && deliver(request, data, consumed) == GONE)
            return GONE;
        evbuffer_drain(in, consumed);
        if (r == CSGI_HTTP__CHUNK_DONE) {
            complete(request);
            return GONE;
        }
        return 1;
    }
    if (request->framing == CSGI_CLIENT__BODY_LENGTH && len > request->remaining)
        len = (size_t)request->remaining;
    if (deliver(request, data, len) == GONE)
        return GONE;
    evbuffer_drain(in, len);
    if (request->framing == CSGI_CLIENT__BODY_LENGTH && (request->remaining -= len) == 0) {
        complete(request);
        return GONE;
    }
    return 1;
}

/* The connection was lost before the response ended: a request on a kept
   connection that heard nothing back and sent no body byte goes again, on
   a new connection; others end with err. */
static void lost(csgi_client_request *request, int err)
{
    connection *conn = request->conn;
    if (conn->reused && !request->got_bytes && request->body_sent == 0 && !request->retried &&
        request->state == HEAD) {
        request->retried = 1;
        conn->request = NULL;
        connection_free(conn);
        request->conn = NULL;
        start(request);
        return;
    }
    finish(request, err);
}

static void process_input(csgi_client_request *request)
{
    struct evbuffer *in = bufferevent_get_input(request->conn->bev);
    while (!request->paused && evbuffer_get_length(in) > 0) {
        int r;
        if (request->state == HEAD) {
            request->got_bytes = 1;
            r = read_head(request, in);
        } else {
            r = read_body(request, in);
        }
        if (r == GONE)
            return;
        if (r == 0)
            break;
    }
    if (request->conn->eof && !request->paused) {
        if (request->state == BODY && request->framing == CSGI_CLIENT__BODY_CLOSE)
            complete(request);
        else
            lost(request, CSGI_ECLOSED);
    }
}

/* ---- The connection's events --------------------------------------------- */

/* The request a connection's progress is for, its inactivity timer
   restarted; NULL when there is none yet. */
static csgi_client_request *progress(connection *conn)
{
    csgi_client_request *request = conn->request;
    if (!request || request->state < HEAD)
        return NULL;
    if (!request->paused)
        arm(request, request->client->options.timeout_ms);
    return request;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    csgi_client_request *request = progress(arg);
    if (request)
        process_input(request);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    csgi_client_request *request = progress(arg);
    if (!request)
        return;
    if (request->want_writable && evbuffer_get_length(bufferevent_get_output(bev)) < HIGH_WATER) {
        request->want_writable = 0;
        if (request->callbacks->writable) {
            call_begin(request);
            request->callbacks->writable(request, request->userdata);
            call_end(request);
        }
    }
}

static void add_framing(csgi_client_request *request, struct evbuffer *out)
{
    if (request->body_mode == BODY_FIXED) {
        evbuffer_add_printf(out, "Content-Length: %zu\r\n", evbuffer_get_length(request->body));
    } else if (request->body_mode == BODY_STREAM) {
        if (request->stream_length >= 0)
            evbuffer_add_printf(out, "Content-Length: %lld\r\n", (long long)request->stream_length);
        else
            evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
    }
}

/* Connected (TLS handshake done): write the head, and the body so far. */
static void connected(csgi_client_request *request)
{
    struct bufferevent *bev = request->conn->bev;
    struct evbuffer *out = bufferevent_get_output(bev);
    request->state = HEAD;
    csgi_http__scanner_init(&request->scanner);
    request->scanner.response = 1;
    request->got_bytes = 0;
    arm(request, request->client->options.timeout_ms);

    size_t head_len = evbuffer_get_length(request->head);
    int ok = evbuffer_add(out, evbuffer_pullup(request->head, -1), head_len) == 0;
    add_framing(request, out);
    ok = ok && evbuffer_add(out, "\r\n", 2) == 0;
    if (request->body_mode == BODY_FIXED) {
        size_t len = evbuffer_get_length(request->body);
        ok = ok && evbuffer_add(out, evbuffer_pullup(request->body, -1), len) == 0;
        request->body_sent += len;
    } else if (request->pending && evbuffer_get_length(request->pending) > 0) {
        request->body_sent += evbuffer_get_length(request->pending);
        ok = ok && evbuffer_add_buffer(out, request->pending) == 0;
    }
    if (!ok) {
        finish(request, CSGI_ENOMEM);
        return;
    }
    bufferevent_setwatermark(bev, EV_WRITE, HIGH_WATER / 2, 0);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    connection *conn = arg;
    csgi_client_request *request = conn->request;
    if (!request)
        return;
    if (request->state == CONNECTING) {
        if (what & BEV_EVENT_CONNECTED) {
            connected(request);
            return;
        }
        conn->request = NULL;
        connection_free(conn);
        request->conn = NULL;
        connect_next(request); /* refused, unreachable, or the handshake failed */
        return;
    }
    if (what & BEV_EVENT_EOF) {
        conn->eof = 1;
        process_input(request);
        return;
    }
    if (what & BEV_EVENT_ERROR)
        lost(request, bufferevent_get_openssl_error(bev) ? CSGI_EIO : CSGI_ECLOSED);
}

/* ---- Connecting ---------------------------------------------------------- */

static SSL_CTX *tls_context(csgi_client *client)
{
    if (client->tls)
        return client->tls;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* A server that closes without close_notify ends the stream as a
       plain close would: framing, not TLS, says whether a body is whole. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (!client->options.insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        int loaded = client->ca_file ? SSL_CTX_load_verify_locations(ctx, client->ca_file, NULL)
                                     : SSL_CTX_set_default_verify_paths(ctx);
        if (loaded != 1) {
            ERR_clear_error();
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    client->tls = ctx;
    return ctx;
}

static struct bufferevent *tls_bufferevent(csgi_client_request *request)
{
    csgi_client *client = request->client;
    SSL_CTX *ctx = tls_context(client);
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    if (!ssl)
        return NULL;
    int ok = 1;
    if (!request->numeric)
        ok = SSL_set_tlsext_host_name(ssl, request->host) == 1;
    if (ok && !client->options.insecure) {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (request->numeric)
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), request->host) == 1;
        else
            ok = SSL_set1_host(ssl, request->host) == 1;
    }
    if (!ok) {
        SSL_free(ssl);
        return NULL;
    }
    /* On failure libevent may or may not have freed ssl already (its error
       path frees the half-made bufferevent, which owns it): leaking it in
       that out-of-memory case beats freeing it twice. */
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(client->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                       BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev)
        return NULL;
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* Connect to the next address of the request's host, or end it. */
static void connect_next(csgi_client_request *request)
{
    while (request->next_address) {
        struct evutil_addrinfo *address = request->next_address;
        request->next_address = address->ai_next;
        connection *conn = csgi__calloc(1, sizeof(*conn));
        if (!conn || !(conn->key = csgi__strndup(request->key, strlen(request->key)))) {
            csgi__free(conn);
            finish(request, CSGI_ENOMEM);
            return;
        }
        conn->client = request->client;
        conn->bev = request->tls
                        ? tls_bufferevent(request)
                        : bufferevent_socket_new(request->client->base, -1,
                                                 BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (!conn->bev) {
            connection_free(conn);
            break;
        }
        bufferevent_setcb(conn->bev, on_read, on_write, on_event, conn);
        conn->request = request;
        request->conn = conn;
        request->state = CONNECTING;
        if (bufferevent_socket_connect(conn->bev, address->ai_addr, (int)address->ai_addrlen) == 0)
            return;
        conn->request = NULL;
        request->conn = NULL;
        connection_free(conn);
    }
    finish(request, CSGI_ECONNECT);
}

static void resolved(csgi_client_request *request)
{
    if (request->dns_error != 0 || !request->addresses) {
        finish(request, CSGI_ECONNECT);
        return;
    }
    request->next_address = request->addresses;
    connect_next(request);
}

static void on_resolved(int error, struct evutil_addrinfo *addresses, void *arg)
{
    if (error == EVUTIL_EAI_CANCEL) {
        if (addresses)
            evutil_freeaddrinfo(addresses);
        return; /* the request is gone */
    }
    csgi_client_request *request = arg;
    request->dns = NULL;
    request->dns_error = error;
    request->addresses = addresses;
    if (!request->in_resolve)
        resolved(request);
}

static void resolve(csgi_client_request *request)
{
    csgi_client *client = request->client;
    if (request->numeric) {
        request->next_address = &request->numeric_address;
        connect_next(request);
        return;
    }
    if (!client->dns)
        client->dns = evdns_base_new(client->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                                       EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!client->dns) {
        finish(request, CSGI_ECONNECT);
        return;
    }
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    char port[8];
    snprintf(port, sizeof(port), "%d", request->port);
    request->state = RESOLVING;
    request->dns_error = EVUTIL_EAI_FAIL; /* unless the callback says otherwise */
    request->in_resolve = 1;
    struct evdns_getaddrinfo_request *dns =
        evdns_getaddrinfo(client->dns, request->host, port, &hints, on_resolved, request);
    request->in_resolve = 0;
    if (dns)
        request->dns = dns;
    else
        resolved(request); /* answered at once (hosts file), or failed */
}

/* Start (or restart, for a retry): a kept connection, else a new one. */
static void start(csgi_client_request *request)
{
    csgi_client *client = request->client;
    request->body_sent = 0;
    connection *conn = request->retried ? NULL : pool_take(client, request->key);
    if (conn) {
        bufferevent_setcb(conn->bev, on_read, on_write, on_event, conn);
        conn->request = request;
        request->conn = conn;
        connected(request);
        return;
    }
    arm(request, client->options.connect_timeout_ms);
    resolve(request);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    csgi_client_request *request = arg;
    if (request->state == QUEUED)
        start(request);
    else if ((request->state == HEAD || request->state == BODY) && request->conn)
        process_input(request);
}

/* ---- The API -------------------------------------------------------------- */

int csgi_client_new(csgi_client **out, struct event_base *base, const csgi_client_options *options)
{
    static const csgi_client_options defaults = CSGI_CLIENT_OPTIONS_INIT;
    if (!out || !base)
        return CSGI_EINVAL;
    *out = NULL;
    if (!options)
        options = &defaults;
    if (options->version < 1 || options->version > CSGI_CLIENT_OPTIONS_VERSION)
        return CSGI_EINVAL;
    csgi_client *client = csgi__calloc(1, sizeof(*client));
    if (!client)
        return CSGI_ENOMEM;
    client->base = base;
    client->options = *options;
    csgi_client_options *o = &client->options;
    o->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_MS;
    o->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    o->idle_timeout_ms = o->idle_timeout_ms ? o->idle_timeout_ms : DEFAULT_IDLE_MS;
    o->max_idle_per_host = o->max_idle_per_host ? o->max_idle_per_host : DEFAULT_MAX_IDLE;
    o->max_head = o->max_head ? o->max_head : DEFAULT_MAX_HEAD;
    if (options->ca_file &&
        !(client->ca_file = csgi__strndup(options->ca_file, strlen(options->ca_file)))) {
        csgi__free(client);
        return CSGI_ENOMEM;
    }
    o->ca_file = client->ca_file;
    *out = client;
    return 0;
}

void csgi_client_free(csgi_client *client)
{
    if (!client)
        return;
    client->freeing = 1;
    while (client->running)
        finish(client->running, CSGI_ECLOSED);
    while (client->idle)
        connection_free(client->idle);
    if (client->tls)
        SSL_CTX_free(client->tls);
    if (client->dns)
        evdns_base_free(client->dns, 0);
    csgi__free(client->ca_file);
    csgi__free(client);
}

const char *csgi_client_response_header(const csgi_client_response *response, const char *name,
                                        size_t *len)
{
    if (!response || !name)
        return NULL;
    size_t name_len = strlen(name);
    for (size_t i = 0; i < response->header_count; i++) {
        const csgi_header *h = &response->headers[i];
        if (h->name_len == name_len && strncasecmp(h->name, name, name_len) == 0) {
            if (len)
                *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

/* Fill the numeric address when the host is an IP address. */
static void numeric_host(csgi_client_request *request)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)&request->numeric_storage;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&request->numeric_storage;
    struct evutil_addrinfo *a = &request->numeric_address;
    if (evutil_inet_pton(AF_INET, request->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)request->port);
        a->ai_addrlen = sizeof(*v4);
    } else if (evutil_inet_pton(AF_INET6, request->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)request->port);
        a->ai_addrlen = sizeof(*v6);
    } else {
        return;
    }
    a->ai_family = request->numeric_storage.ss_family;
    a->ai_socktype = SOCK_STREAM;
    a->ai_addr = (struct sockaddr *)&request->numeric_storage;
    request->numeric = 1;
}

int csgi_client_request_new(csgi_client_request **out, csgi_client *client, const char *method,
                            const char *url)
{
    csgi_client__url parts;
    if (!out)
        return CSGI_EINVAL;
    *out = NULL;
    if (!client || !method || !csgi_char__is_token(method, strlen(method)) ||
        csgi_client__parse_url(url, &parts) != 0)
        return CSGI_EINVAL;
    if (client->freeing)
        return CSGI_ESTATE;
    csgi_client_request *request = csgi__calloc(1, sizeof(*request));
    if (!request)
        return CSGI_ENOMEM;
    request->client = client;
    request->tls = parts.tls;
    request->port = parts.port;
    request->ipv6 = parts.ipv6;
    request->head_request = strcmp(method, "HEAD") == 0;
    request->host = csgi__strndup(parts.host, parts.host_len);
    size_t key_len = parts.host_len + 32;
    request->key = csgi__malloc(key_len);
    request->head = evbuffer_new();
    request->timer = evtimer_new(client->base, on_timeout, request);
    request->kick = event_new(client->base, -1, 0, on_kick, request);
    if (!request->host || !request->key || !request->head || !request->timer || !request->kick) {
        request_free(request);
        return CSGI_ENOMEM;
    }
    snprintf(request->key, key_len, "%s://%s:%d", parts.tls ? "https" : "http", request->host,
             parts.port);
    numeric_host(request);
    /* The request line and Host (RFC 9112 3.2): the port only when not
       the scheme's default. */
    int ok =
        evbuffer_add_printf(request->head, "%s %s%.*s HTTP/1.1\r\nHost: %s%s%s", method,
                            parts.target[0] == '?' ? "/" : "", (int)parts.target_len, parts.target,
                            parts.ipv6 ? "[" : "", request->host, parts.ipv6 ? "]" : "") > 0;
    if (ok && parts.port_given && parts.port != (parts.tls ? 443 : 80))
        ok = evbuffer_add_printf(request->head, ":%d", parts.port) > 0;
    if (!ok || evbuffer_add(request->head, "\r\n", 2) != 0) {
        request_free(request);
        return CSGI_ENOMEM;
    }
    *out = request;
    return 0;
}

int csgi_client_request_add_header(csgi_client_request *request, const char *name,
                                   const char *value)
{
    static const char *const own[] = {"host", "content-length", "transfer-encoding", "connection",
                                      "upgrade"};
    if (!request || !name || !value || !csgi_char__is_token(name, strlen(name)) ||
        !csgi_char__is_field_value(value, strlen(value)))
        return CSGI_EINVAL;
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (csgi_http__token_equals(name, strlen(name), own[i]))
            return CSGI_EINVAL;
    if (request->state != NEW)
        return CSGI_ESTATE;
    return evbuffer_add_printf(request->head, "%s: %s\r\n", name, value) > 0 ? 0 : CSGI_ENOMEM;
}

int csgi_client_request_set_body(csgi_client_request *request, const void *data, size_t len)
{
    if (!request || (!data && len))
        return CSGI_EINVAL;
    if (request->state != NEW || request->body_mode != BODY_NONE)
        return CSGI_ESTATE;
    if (!(request->body = evbuffer_new()) || evbuffer_add(request->body, data, len) != 0)
        return CSGI_ENOMEM;
    request->body_mode = BODY_FIXED;
    return 0;
}

int csgi_client_request_set_body_stream(csgi_client_request *request, int64_t length)
{
    if (!request || length < -1)
        return CSGI_EINVAL;
    if (request->state != NEW || request->body_mode != BODY_NONE)
        return CSGI_ESTATE;
    request->body_mode = BODY_STREAM;
    request->stream_length = length;
    return 0;
}

/* Where stream bytes go: the connection once the head is written, else
   the pending queue. */
static struct evbuffer *stream_queue(csgi_client_request *request, int *direct)
{
    *direct = request->conn && request->state >= HEAD;
    if (*direct)
        return bufferevent_get_output(request->conn->bev);
    if (!request->pending)
        request->pending = evbuffer_new();
    return request->pending;
}

static int stream_add(csgi_client_request *request, const void *data, size_t len, size_t raw)
{
    int direct;
    struct evbuffer *queue = stream_queue(request, &direct);
    if (!queue || evbuffer_add(queue, data, len) != 0)
        return CSGI_ENOMEM;
    if (direct)
        request->body_sent += raw;
    return 0;
}

int csgi_client_request_write(csgi_client_request *request, const void *data, size_t len)
{
    if (!request || (!data && len))
        return CSGI_EINVAL;
    if (request->body_mode != BODY_STREAM || request->stream_ended || request->state == NEW)
        return CSGI_ESTATE;
    if (len == 0)
        return 0;
    if (request->stream_length >= 0 &&
        (uint64_t)request->stream_length - request->stream_written < len)
        return CSGI_ERANGE;
    int rc;
    if (request->stream_length < 0) {
        char size[24];
        int n = snprintf(size, sizeof(size), "%zx\r\n", len);
        rc = stream_add(request, size, (size_t)n, 0);
        if (rc == 0)
            rc = stream_add(request, data, len, len);
        if (rc == 0)
            rc = stream_add(request, "\r\n", 2, 0);
    } else {
        rc = stream_add(request, data, len, len);
    }
    if (rc != 0)
        return rc;
    request->stream_written += len;
    int direct;
    struct evbuffer *queue = stream_queue(request, &direct);
    if (queue && evbuffer_get_length(queue) >= HIGH_WATER) {
        request->want_writable = 1;
        return 1;
    }
    return 0;
}

int csgi_client_request_end(csgi_client_request *request)
{
    if (!request)
        return CSGI_EINVAL;
    if (request->body_mode != BODY_STREAM || request->stream_ended || request->state == NEW)
        return CSGI_ESTATE;
    if (request->stream_length >= 0 && (uint64_t)request->stream_length != request->stream_written)
        return CSGI_ERANGE;
    if (request->stream_length < 0) {
        int rc = stream_add(request, "0\r\n\r\n", 5, 0);
        if (rc != 0)
            return rc;
    }
    request->stream_ended = 1;
    return 0;
}

void csgi_client_request_pause(csgi_client_request *request)
{
    if (!request || request->paused)
        return;
    request->paused = 1;
    if (request->conn && request->state >= HEAD) {
        bufferevent_disable(request->conn->bev, EV_READ);
        event_del(request->timer);
    }
}

void csgi_client_request_resume(csgi_client_request *request)
{
    if (!request || !request->paused)
        return;
    request->paused = 0;
    if (request->conn && request->state >= HEAD) {
        bufferevent_enable(request->conn->bev, EV_READ);
        arm(request, request->client->options.timeout_ms);
        event_active(request->kick, 0, 0); /* what was read already */
    }
}

int csgi_client_request_send(csgi_client_request *request, const csgi_client_callbacks *callbacks,
                             void *userdata)
{
    if (!request || !callbacks || !callbacks->done)
        return CSGI_EINVAL;
    csgi_client *client = request->client;
    if (request->state != NEW || client->freeing)
        return CSGI_ESTATE;
    request->callbacks = callbacks;
    request->userdata = userdata;
    request->state = QUEUED;
    request->next = client->running;
    if (client->running)
        client->running->prev = request;
    client->running = request;
    event_active(request->kick, 0, 0);
    return 0;
}

void csgi_client_request_cancel(csgi_client_request *request)
{
    if (!request || request->finishing)
        return;
    if (request->calling) {
        request->cancelled = 1;
        return;
    }
    request_free(request);
}
