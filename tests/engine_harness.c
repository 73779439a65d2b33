/*
 * The engine test server and raw client (see engine_harness.h).
 *
 * Server behaviours, by path:
 *   /hello          200 "Hello World" with Content-Length
 *   /echo           reads the whole body (streamed, via on_body), answers it
 *                   back; with ?unknown the length is not declared
 *   /path           answers "METHOD PATH?QUERY host=HOST" (what was parsed)
 *   /stream?n=&s=   n chunks of s bytes ('a'..'z'), length not declared,
 *                   produced from on_writable; n=0 streams until the client
 *                   goes away
 *   /file           the server's file via sendfile, Content-Length
 *   /async          answers "later" 50 ms after the request arrived
 *   /noread         answers "ok" at once, never reading the body
 *   /wait           never answers
 *   /short          declares Content-Length 10, sends 5 bytes, finishes
 *   /trailers       reads the body, answers the trailer fields as "k=v;"
 *   /block?ms=      holds the loop (sleeps) for ms, then answers "Hello World":
 *                   what a busy loop looks like to the other connections
 */
#include "engine_harness.h"
#include "http/tls.h"
#include "test_tls.h"

#include <check.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

test_stats stats;

long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ---- The application ------------------------------------------------------- */

typedef struct app_request {
    test_server *server;
    csgi_http__request *req;
    struct evbuffer *collected;
    struct event *timer;
    long chunks_left; /* -1: forever */
    size_t chunk_size;
    int chunk_index;
    int kind;
    int done;
} app_request;

enum { APP_ECHO, APP_STREAM, APP_ASYNC, APP_TRAILERS, APP_OTHER };

static void app_done(csgi_http__request *req, int err, void *userdata)
{
    app_request *app = userdata;
    (void)req;
    if (app->done)
        atomic_fetch_add(&stats.done_twice, 1);
    app->done = 1;
    if (app->collected)
        evbuffer_free(app->collected);
    app->collected = NULL;
    if (app->timer)
        event_free(app->timer);
    app->timer = NULL;
    atomic_store(&stats.last_error, err);
    if (err == 0)
        atomic_fetch_add(&stats.done_ok, 1);
    atomic_fetch_add(&stats.done, 1);
}

static void respond(csgi_http__request *req, int status, const char *body, size_t len,
                    int declare_length)
{
    static const csgi_http__header type = {"Content-Type", 12, "text/plain", 10};
    if (csgi_http__response_start(req, status, NULL, &type, 1,
                                  declare_length ? (int64_t)len : -1) ||
        csgi_http__response_write(req, body, len) || csgi_http__response_finish(req))
        csgi_http__response_abort(req, 500, 0);
}

static void stream_more(csgi_http__request *req, void *userdata)
{
    app_request *app = userdata;
    char chunk[65536];
    for (;;) {
        size_t buffered = csgi_http__response_buffered(req);
        if ((long)buffered > atomic_load(&stats.max_buffered))
            atomic_store(&stats.max_buffered, (long)buffered);
        if (app->chunks_left == 0) {
            csgi_http__response_finish(req);
            return;
        }
        if (buffered >= 64 * 1024)
            return; /* on_writable continues */
        memset(chunk, 'a' + app->chunk_index % 26, app->chunk_size);
        app->chunk_index++;
        if (app->chunks_left > 0)
            app->chunks_left--;
        if (csgi_http__response_write(req, chunk, app->chunk_size) != 0)
            return;
    }
}

static void read_body(csgi_http__request *req, void *userdata)
{
    app_request *app = userdata;
    for (;;) {
        ssize_t n = csgi_http__request_read_buffer(req, app->collected, 1 << 20);
        if (n == CSGI_EAGAIN)
            return; /* on_body continues */
        if (n < 0)
            return; /* the engine answers and calls on_done */
        if (n == 0)
            break;
    }
    atomic_fetch_add(&stats.continue_seen, 1);
    if (app->kind == APP_TRAILERS) {
        size_t count = 0;
        const csgi_http__header *t = csgi_http__request_trailers(req, &count);
        char text[1024] = "";
        for (size_t i = 0; i < count; i++) {
            size_t len = strlen(text);
            snprintf(text + len, sizeof(text) - len, "%.*s=%.*s;", (int)t[i].name_len, t[i].name,
                     (int)t[i].value_len, t[i].value);
        }
        respond(req, 200, text, strlen(text), 1);
        return;
    }
    const csgi_http__head *head = csgi_http__request_head(req);
    int unknown = head->query && head->query_len == 7 && memcmp(head->query, "unknown", 7) == 0;
    size_t len = evbuffer_get_length(app->collected);
    static const csgi_http__header type = {"Content-Type", 12, "application/octet-stream", 24};
    if (csgi_http__response_start(req, 200, NULL, &type, 1, unknown ? -1 : (int64_t)len) ||
        csgi_http__response_write_buffer(req, app->collected) || csgi_http__response_finish(req))
        csgi_http__response_abort(req, 500, 0);
}

static void async_fire(evutil_socket_t fd, short what, void *arg)
{
    app_request *app = arg;
    (void)fd;
    (void)what;
    respond(app->req, 200, "later", 5, 1);
}

static const csgi_http__request_callbacks app_callbacks = {read_body, stream_more, app_done, NULL};

static int path_is(const csgi_http__head *head, const char *path)
{
    return head->path_len == strlen(path) && memcmp(head->path, path, head->path_len) == 0;
}

static long query_number(const csgi_http__head *head, const char *key)
{
    if (!head->query)
        return -1;
    char query[256];
    snprintf(query, sizeof(query), "&%.*s", (int)head->query_len, head->query);
    char pattern[32];
    snprintf(pattern, sizeof(pattern), "&%s=", key);
    const char *at = strstr(query, pattern);
    return at ? strtol(at + strlen(pattern), NULL, 10) : -1;
}

static void on_request(csgi_http__request *req, void *userdata)
{
    test_server *server = userdata;
    const csgi_http__head *head = csgi_http__request_head(req);
    app_request *app = csgi_arena__alloc(csgi_http__request_arena(req), sizeof(*app));
    memset(app, 0, sizeof(*app));
    app->server = server;
    app->req = req;
    app->kind = APP_OTHER;
    csgi_http__request_set_callbacks(req, &app_callbacks, app);
    atomic_fetch_add(&stats.requests, 1);

    if (path_is(head, "/hello")) {
        respond(req, 200, "Hello World", 11, 1);
    } else if (path_is(head, "/echo") || path_is(head, "/trailers")) {
        app->kind = path_is(head, "/echo") ? APP_ECHO : APP_TRAILERS;
        app->collected = evbuffer_new();
        read_body(req, app);
    } else if (path_is(head, "/path")) {
        char text[2048];
        int n = snprintf(text, sizeof(text), "%.*s %.*s%s%.*s host=%.*s", (int)head->method_len,
                         head->method, (int)head->path_len, head->path, head->query ? "?" : "",
                         (int)head->query_len, head->query ? head->query : "", (int)head->host_len,
                         head->host ? head->host : "");
        respond(req, 200, text, (size_t)n, 1);
    } else if (path_is(head, "/stream")) {
        long n = query_number(head, "n");
        long s = query_number(head, "s");
        app->kind = APP_STREAM;
        app->chunks_left = n == 0 ? -1 : (n < 0 ? 10 : n);
        app->chunk_size = s > 0 && s <= 65536 ? (size_t)s : 1000;
        static const csgi_http__header type = {"Content-Type", 12, "text/plain", 10};
        csgi_http__response_start(req, 200, NULL, &type, 1, -1);
        stream_more(req, app);
    } else if (path_is(head, "/file")) {
        int fd = open(server->file_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 ||
            csgi_http__response_start(req, 200, NULL, NULL, 0, (int64_t)server->file_size) ||
            csgi_http__response_sendfile(req, fd, 0, (int64_t)server->file_size) ||
            csgi_http__response_finish(req))
            csgi_http__response_abort(req, 500, 0);
    } else if (path_is(head, "/async")) {
        app->kind = APP_ASYNC;
        app->timer = evtimer_new(csgi_http__request_base(req), async_fire, app);
        struct timeval later = {0, 50000};
        evtimer_add(app->timer, &later);
    } else if (path_is(head, "/block")) {
        long ms = query_number(head, "ms");
        usleep((useconds_t)(ms > 0 ? ms : 100) * 1000);
        respond(req, 200, "Hello World", 11, 1);
    } else if (path_is(head, "/noread")) {
        respond(req, 200, "ok", 2, 1);
    } else if (path_is(head, "/wait")) {
        /* never answers */
    } else if (path_is(head, "/short")) {
        if (csgi_http__response_start(req, 200, NULL, NULL, 0, 10) == 0 &&
            csgi_http__response_write(req, "12345", 5) == 0)
            csgi_http__response_finish(req);
    } else {
        respond(req, 404, "not found", 9, 1);
    }
}

/* ---- Server ----------------------------------------------------------------- */

void quiet_log(int level, const char *message, void *userdata)
{
    (void)level;
    (void)message;
    (void)userdata;
}

void test_options(csgi_http__options *options)
{
    csgi_http__options_init(options);
    options->log = quiet_log;
    options->log_level = CSGI_LOG__DEBUG;
}

static void *server_thread(void *arg)
{
    test_server *server = arg;
    csgi_http__engine_run(server->engine);
    return NULL;
}

static pthread_t server_threads[8];
static test_server *server_list[8];
static csgi_http__tls *server_tls[8]; /* CSGI_TEST_TLS: each server's */

/* CSGI_TEST_TLS: the options of the harness's TLS listeners (server.pem). */
static void harness_tls_options(csgi_tls_options *options, csgi_tls_certificate *certificate)
{
    csgi_tls_options_init(options);
    certificate->cert_file = test_tls_file("server.pem");
    certificate->key_file = test_tls_file("server.key");
    options->certificates = certificate;
    options->certificate_count = 1;
    /* No TLS 1.3 tickets: a client that closes with them unread would
       reset the connection, where the plain harness's closes cleanly. */
    options->ticket_rotation_s = CSGI_TLS_NO_TICKETS;
}

void server_start(test_server *server, const csgi_http__options *options)
{
    memset(server, 0, sizeof(*server));
    memset(&stats, 0, sizeof(stats));
    csgi_http__options defaults;
    if (!options) {
        test_options(&defaults);
        options = &defaults;
    }
    snprintf(server->file_path, sizeof(server->file_path), "/tmp/csgi-test-file-XXXXXX");
    int fd = mkstemp(server->file_path);
    ck_assert_int_ge(fd, 0);
    server->file_size = 300000;
    char block[1000];
    for (size_t i = 0; i < server->file_size / sizeof(block); i++) {
        memset(block, 'A' + (int)(i % 26), sizeof(block));
        ck_assert_int_eq(write(fd, block, sizeof(block)), (int)sizeof(block));
    }
    close(fd);

    csgi_http__handler handler = {on_request, server};
    ck_assert_int_eq(csgi_http__engine_new(&server->engine, options, &handler, NULL), 0);
    ck_assert_int_eq(csgi_http__engine_listen(server->engine, "127.0.0.1:0"), 0);
    server->port = csgi_http__engine_listener_port(server->engine, 0);
    ck_assert_int_gt(server->port, 0);
    csgi_http__tls *tls = NULL;
    if (test_tls_mode()) {
        csgi_tls_options tls_options;
        csgi_tls_certificate certificate;
        harness_tls_options(&tls_options, &certificate);
        char why[256];
        ck_assert_msg(csgi_http__tls_new(&tls, &tls_options, why, sizeof(why)) == 0, "%s", why);
        ck_assert_int_eq(csgi_http__engine_listener_set_tls(server->engine, 0, tls), 0);
    }
    ck_assert_int_eq(csgi_http__engine_start(server->engine), 0);
    for (int i = 0; i < 8; i++) {
        if (!server_list[i]) {
            server_list[i] = server;
            server_tls[i] = tls;
            ck_assert_int_eq(pthread_create(&server_threads[i], NULL, server_thread, server), 0);
            return;
        }
    }
    ck_abort_msg("too many test servers");
}

void server_stop(test_server *server, unsigned grace_ms)
{
    csgi_http__engine_stop(server->engine, grace_ms);
    for (int i = 0; i < 8; i++) {
        if (server_list[i] == server) {
            pthread_join(server_threads[i], NULL);
            server_list[i] = NULL;
            csgi_http__engine_free(server->engine);
            csgi_http__tls_free(server_tls[i]); /* after its connections */
            server_tls[i] = NULL;
            server->engine = NULL;
        }
    }
    csgi_http__engine_free(server->engine);
    server->engine = NULL;
    unlink(server->file_path);
}

/* ---- csgi_server ----------------------------------------------------------------- */

static void *app_server_thread(void *arg)
{
    csgi_server_run(arg);
    return NULL;
}

void app_server_start(app_server *server, csgi_app *app, const csgi_server_options *options)
{
    csgi_server_options defaults = CSGI_SERVER_OPTIONS_INIT;
    if (!options) {
        defaults.log = quiet_log;
        options = &defaults;
    }
    memset(server, 0, sizeof(*server));
    ck_assert_int_eq(csgi_server_new(&server->server, app, options, NULL), 0);
    if (test_tls_mode()) {
        csgi_tls_options tls_options;
        csgi_tls_certificate certificate;
        harness_tls_options(&tls_options, &certificate);
        ck_assert_int_eq(csgi_server_listen_tls(server->server, "127.0.0.1:0", &tls_options), 0);
    } else {
        ck_assert_int_eq(csgi_server_listen(server->server, "127.0.0.1:0"), 0);
    }
    server->port = csgi_server_port(server->server, 0);
    ck_assert_int_eq(csgi_server_start(server->server), 0);
    ck_assert_int_eq(pthread_create(&server->thread, NULL, app_server_thread, server->server), 0);
}

void app_server_stop(app_server *server)
{
    csgi_server_stop(server->server, 1000);
    pthread_join(server->thread, NULL);
    csgi_server_free(server->server);
    server->server = NULL;
}

/* ---- Client -------------------------------------------------------------------- */

/* Bytes read past the end of a response, kept for the next one (per fd). */
#define MAX_FDS 4096
static char *pending[MAX_FDS];
static size_t pending_len[MAX_FDS];
/* CSGI_TEST_TLS: each socket's TLS (a closed socket's is freed when its
   number comes back). */
static SSL *client_tls[MAX_FDS];
static SSL_CTX *client_tls_context;

/* Make fd a TLS client of the harness's server: handshake now (blocking,
   bounded by a receive timeout). */
static void client_tls_start(int fd)
{
    if (!client_tls_context) {
        client_tls_context = SSL_CTX_new(TLS_client_method());
        ck_assert_ptr_nonnull(client_tls_context);
        ck_assert_int_eq(
            SSL_CTX_load_verify_locations(client_tls_context, test_tls_file("ca.pem"), NULL), 1);
        SSL_CTX_set_verify(client_tls_context, SSL_VERIFY_PEER, NULL);
    }
    struct timeval limit = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    SSL *ssl = SSL_new(client_tls_context);
    ck_assert_ptr_nonnull(ssl);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    ck_assert_msg(SSL_connect(ssl) == 1, "TLS handshake with the test server failed");
    limit.tv_sec = 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    /* From now on non-blocking: a read that finds only TLS 1.3 session
       tickets must not wait past the caller's timeout. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    client_tls[fd] = ssl;
}

int client_connect(int port)
{
    return client_connect_rcvbuf(port, 0);
}

/* Connect to 127.0.0.1:port from source (an IPv4 loopback address, or NULL
   for the kernel's choice) with a receive buffer of rcvbuf bytes (0: the
   default). */
static int connect_from(int port, int rcvbuf, const char *source)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_lt(fd, MAX_FDS);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (source) {
        struct sockaddr_in from;
        memset(&from, 0, sizeof(from));
        from.sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, source, &from.sin_addr), 1);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&from, sizeof(from)), 0);
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    free(pending[fd]);
    pending[fd] = NULL;
    pending_len[fd] = 0;
    if (client_tls[fd]) { /* the previous socket with this number */
        SSL_free(client_tls[fd]);
        client_tls[fd] = NULL;
    }
    if (test_tls_mode())
        client_tls_start(fd);
    return fd;
}

int client_connect_rcvbuf(int port, int rcvbuf)
{
    return connect_from(port, rcvbuf, NULL);
}

int client_connect_from(int port, const char *source)
{
    return connect_from(port, 0, source);
}

int client_send(int fd, const void *data, size_t len)
{
    const char *p = data;
    if (client_tls[fd]) {
        while (len > 0) {
            int n = SSL_write(client_tls[fd], p, len > 65536 ? 65536 : (int)len);
            if (n <= 0) {
                int code = SSL_get_error(client_tls[fd], n);
                ERR_clear_error();
                struct pollfd wait = {fd, code == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, 0};
                if ((code == SSL_ERROR_WANT_WRITE || code == SSL_ERROR_WANT_READ) &&
                    poll(&wait, 1, 10000) == 1)
                    continue;
                return -1;
            }
            p += n;
            len -= (size_t)n;
        }
        return 0;
    }
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int client_send_str(int fd, const char *s)
{
    return client_send(fd, s, strlen(s));
}

/* One read with a timeout: >0 bytes, 0 EOF, -1 timeout or error. */
static ssize_t read_some(int fd, char *buf, size_t cap, int timeout_ms)
{
    if (pending_len[fd]) {
        size_t n = pending_len[fd] < cap ? pending_len[fd] : cap;
        memcpy(buf, pending[fd], n);
        memmove(pending[fd], pending[fd] + n, pending_len[fd] - n);
        pending_len[fd] -= n;
        return (ssize_t)n;
    }
    SSL *ssl = client_tls[fd];
    if (ssl) {
        long deadline = now_ms() + timeout_ms;
        for (;;) {
            ERR_clear_error();
            errno = 0;
            int got = SSL_read(ssl, buf, cap > 65536 ? 65536 : (int)cap);
            if (got > 0)
                return got;
            int code = SSL_get_error(ssl, got);
            ERR_clear_error();
            if (code != SSL_ERROR_WANT_READ && code != SSL_ERROR_WANT_WRITE)
                return code == SSL_ERROR_SYSCALL && errno && errno != ECONNRESET ? -1 : 0;
            long left = deadline - now_ms(); /* a record may come in pieces */
            struct pollfd wait = {fd, code == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, 0};
            if (left <= 0 || poll(&wait, 1, (int)left) <= 0)
                return -1;
        }
    }
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r <= 0)
        return -1;
    ssize_t n = recv(fd, buf, cap, 0);
    if (n < 0)
        return errno == ECONNRESET ? 0 : -1;
    return n;
}

static void unread(int fd, const char *data, size_t len)
{
    if (len == 0)
        return;
    char *grown = malloc(pending_len[fd] + len);
    memcpy(grown, data, len);
    if (pending_len[fd])
        memcpy(grown + len, pending[fd], pending_len[fd]);
    free(pending[fd]);
    pending[fd] = grown;
    pending_len[fd] += len;
}

size_t client_read(int fd, char *buf, size_t cap, int timeout_ms, const char *until, int *eof)
{
    size_t len = 0;
    long deadline = now_ms() + timeout_ms;
    if (eof)
        *eof = 0;
    while (len + 1 < cap) {
        long left = deadline - now_ms();
        if (left <= 0)
            break;
        ssize_t n = read_some(fd, buf + len, cap - 1 - len, (int)left);
        if (n == 0) {
            if (eof)
                *eof = 1;
            break;
        }
        if (n < 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (until && strstr(buf, until))
            break;
    }
    buf[len] = '\0';
    return len;
}

int client_closed(int fd, int timeout_ms)
{
    char buf[65536];
    long deadline = now_ms() + timeout_ms;
    for (;;) {
        long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        ssize_t n = read_some(fd, buf, sizeof(buf), (int)left);
        if (n == 0)
            return 1;
        if (n < 0)
            return 0;
    }
}

/* A growing byte string. */
typedef struct bytes {
    char *data;
    size_t len, cap;
} bytes;

static void bytes_add(bytes *b, const char *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        b->cap = (b->len + len + 1) * 2;
        b->data = realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

/* Ensure at least need bytes are in b after offset, reading more. */
static int fill(int fd, bytes *b, size_t need, long deadline, int *eof)
{
    char chunk[65536];
    while (b->len < need) {
        long left = deadline - now_ms();
        if (left <= 0)
            return -1;
        ssize_t n = read_some(fd, chunk, sizeof(chunk), (int)left);
        if (n == 0) {
            *eof = 1;
            return -1;
        }
        if (n < 0)
            return -1;
        bytes_add(b, chunk, (size_t)n);
    }
    return 0;
}

static char *find_crlf(bytes *b, size_t from)
{
    if (from >= b->len)
        return NULL;
    return memmem(b->data + from, b->len - from, "\r\n", 2);
}

int client_response(int fd, test_response *response, int head_request, int timeout_ms)
{
    memset(response, 0, sizeof(*response));
    long deadline = now_ms() + timeout_ms;
    bytes b = {0};
    int eof = 0;
    char *end;
    /* Skip interim 1xx responses other than the one a test waits for. */
    for (;;) {
        while (!(b.len && (end = memmem(b.data, b.len, "\r\n\r\n", 4)))) {
            if (fill(fd, &b, b.len + 1, deadline, &eof) != 0) {
                free(b.data);
                return -1;
            }
        }
        if (sscanf(b.data, "HTTP/1.1 %d", &response->status) != 1) {
            free(b.data);
            return -1;
        }
        size_t head_len = (size_t)(end - b.data) + 4;
        size_t line_end = (size_t)(strstr(b.data, "\r\n") - b.data) + 2;
        size_t header_len = head_len - 2 - line_end;
        if (header_len >= sizeof(response->headers))
            header_len = sizeof(response->headers) - 1;
        memcpy(response->headers, b.data + line_end, header_len);
        response->headers[header_len] = '\0';
        memmove(b.data, b.data + head_len, b.len - head_len);
        b.len -= head_len;
        if (response->status >= 200)
            break;
    }

    bytes body = {0};
    bytes_add(&body, "", 0);
    const char *te = response_header(response, "Transfer-Encoding");
    const char *cl_text = response_header(response, "Content-Length");
    long cl = cl_text ? atol(cl_text) : -1;
    int no_body = head_request || response->status == 204 || response->status == 304;
    int rc = 0;
    if (no_body) {
        /* nothing */
    } else if (te) {
        response->chunked = 1;
        size_t pos = 0;
        for (;;) {
            char *crlf;
            while (!(crlf = find_crlf(&b, pos)))
                if (fill(fd, &b, b.len + 1, deadline, &eof) != 0)
                    goto fail;
            size_t size = strtoul(b.data + pos, NULL, 16);
            pos = (size_t)(crlf - b.data) + 2;
            if (fill(fd, &b, pos + size + 2, deadline, &eof) != 0)
                goto fail;
            if (size == 0) {
                pos += 2; /* no trailers from our server */
                break;
            }
            bytes_add(&body, b.data + pos, size);
            pos += size + 2;
        }
        memmove(b.data, b.data + pos, b.len - pos);
        b.len -= pos;
    } else if (cl >= 0) {
        if (fill(fd, &b, (size_t)cl, deadline, &eof) != 0)
            goto fail;
        bytes_add(&body, b.data, (size_t)cl);
        memmove(b.data, b.data + cl, b.len - (size_t)cl);
        b.len -= (size_t)cl;
    } else {
        while (fill(fd, &b, b.len + 1, deadline, &eof) == 0)
            ;
        if (!eof)
            goto fail;
        bytes_add(&body, b.data, b.len);
        b.len = 0;
        response->closed = 1;
    }
    unread(fd, b.data, b.len);
    free(b.data);
    response->body = body.data;
    response->body_len = body.len;
    return rc;
fail:
    free(b.data);
    free(body.data);
    return -1;
}

void response_free(test_response *response)
{
    free(response->body);
    response->body = NULL;
}

const char *response_header(const test_response *response, const char *name)
{
    static char value[1024];
    size_t name_len = strlen(name);
    const char *line = response->headers;
    while (*line) {
        const char *eol = strstr(line, "\r\n");
        if (!eol)
            eol = line + strlen(line);
        if ((size_t)(eol - line) > name_len && line[name_len] == ':' &&
            strncasecmp(line, name, name_len) == 0) {
            const char *v = line + name_len + 1;
            while (*v == ' ')
                v++;
            size_t len = (size_t)(eol - v);
            if (len >= sizeof(value))
                len = sizeof(value) - 1;
            memcpy(value, v, len);
            value[len] = '\0';
            return value;
        }
        line = *eol ? eol + 2 : eol;
    }
    return NULL;
}

int wait_connections(test_server *server, size_t n, int timeout_ms)
{
    long deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        if (csgi_http__engine_connection_count(server->engine) == n)
            return 1;
        usleep(5000);
    }
    return csgi_http__engine_connection_count(server->engine) == n;
}

int wait_done(int n, int timeout_ms)
{
    long deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        if (atomic_load(&stats.done) >= n)
            return 1;
        usleep(5000);
    }
    return atomic_load(&stats.done) >= n;
}

const char *const body_split_names[SPLIT_COUNT] = {
    "with the head", "in two writes", "a byte at a time", "chunked", "after 100-continue"};

int client_send_post(int fd, const char *path, const char *headers, const char *body, size_t len,
                     enum body_split split)
{
    char head[1024];
    if (split == SPLIT_CHUNKED)
        snprintf(head, sizeof(head),
                 "POST %s HTTP/1.1\r\nHost: t\r\n%sTransfer-Encoding: chunked\r\n\r\n", path,
                 headers);
    else
        snprintf(head, sizeof(head),
                 "POST %s HTTP/1.1\r\nHost: t\r\n%sContent-Length: %zu\r\n%s\r\n", path, headers,
                 len, split == SPLIT_AFTER_CONTINUE ? "Expect: 100-continue\r\n" : "");
    if (split == SPLIT_WITH_HEAD) {
        char *all = malloc(strlen(head) + len);
        ck_assert_ptr_nonnull(all);
        memcpy(all, head, strlen(head));
        memcpy(all + strlen(head), body, len);
        int rc = client_send(fd, all, strlen(head) + len);
        free(all);
        return rc;
    }
    if (client_send_str(fd, head) != 0)
        return -1;
    if (split == SPLIT_AFTER_CONTINUE) {
        char buf[128];
        client_read(fd, buf, sizeof(buf), 3000, "\r\n\r\n", NULL);
        if (strcmp(buf, "HTTP/1.1 100 Continue\r\n\r\n") != 0)
            return -1;
        return client_send(fd, body, len);
    }
    if (split == SPLIT_TWO_WRITES) {
        usleep(20 * 1000);
        if (client_send(fd, body, len / 2) != 0)
            return -1;
        usleep(20 * 1000);
        return client_send(fd, body + len / 2, len - len / 2);
    }
    if (split == SPLIT_BYTE_BY_BYTE) {
        for (size_t i = 0; i < len; i++)
            if (client_send(fd, body + i, 1) != 0)
                return -1;
        return 0;
    }
    /* Chunked, in pieces of up to 1000 bytes, with pauses. */
    for (size_t at = 0; at < len; at += 1000) {
        size_t n = len - at < 1000 ? len - at : 1000;
        char size[32];
        snprintf(size, sizeof(size), "%zx\r\n", n);
        if (client_send_str(fd, size) != 0 || client_send(fd, body + at, n) != 0 ||
            client_send_str(fd, "\r\n") != 0)
            return -1;
        if (at == 0)
            usleep(20 * 1000);
    }
    return client_send_str(fd, "0\r\n\r\n");
}
