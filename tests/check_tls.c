/*
 * TLS listeners: curl and OpenSSL clients against a server on 127.0.0.1,
 * with a CA, server and client certificates made at test time
 * (test_tls.h): round trips, keep-alive and pipelining, client
 * certificates required, optional and refused, SNI, ALPN, an expired
 * certificate, plain HTTP to the TLS port, handshakes cut at their
 * deadline, session resumption, certificates read again, bad files at
 * start, the environ's keys (also through the test client).
 */
#include "engine_harness.h"
#include "test_tls.h"

#include <csgi.h>
#include <csgi/testing.h>
#include <csgi/tls.h>

#include <check.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- The application: the environ's TLS keys, or a file ------------------------ */

static const char *const shown[] = {
    "csgi.url_scheme",     "HTTPS",       "SSL_PROTOCOL",      "SSL_CIPHER",
    "SSL_SESSION_RESUMED", "SSL_TLS_SNI", "SSL_CLIENT_VERIFY", "SSL_CLIENT_S_DN",
    "SSL_CLIENT_I_DN",     "SERVER_PORT",
};

#define FILE_SIZE (1024 * 1024 + 17)

static char file_path[64];

static csgi_body *application(void *state, csgi_environ *environ,
                              csgi_start_response *start_response)
{
    (void)state;
    static const csgi_header text[] = {CSGI_HEADER("Content-Type", "text/plain")};
    const char *path = csgi_environ_get(environ, "PATH_INFO");
    if (path && strcmp(path, "/file") == 0) {
        int fd = open(file_path, O_RDONLY | O_CLOEXEC);
        csgi_start_response_call(start_response, "200 OK", text, 1, NULL);
        return csgi_body_file(environ, fd, 0, FILE_SIZE);
    }
    size_t size = 4096, len = 0;
    char *body = csgi_environ_alloc(environ, size);
    for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
        const char *value = csgi_environ_get(environ, shown[i]);
        len += (size_t)snprintf(body + len, size - len, "%s=%s\n", shown[i],
                                value ? value : "(unset)");
    }
    const char *cert = csgi_environ_get(environ, "SSL_CLIENT_CERT");
    len += (size_t)snprintf(
        body + len, size - len, "cert=%s\n",
        cert && strncmp(cert, "-----BEGIN CERTIFICATE-----", 27) == 0 ? "PEM" : "(unset)");
    csgi_start_response_call(start_response, "200 OK", text, 1, NULL);
    return csgi_body_bytes(environ, body, len);
}

static const csgi_app_type tls_app = {"tls", application, NULL};

/* ---- A server with one TLS listener ----------------------------------------------- */

static char log_text[16384];
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void keep_log(int level, const char *message, void *userdata)
{
    (void)level;
    (void)userdata;
    pthread_mutex_lock(&log_lock);
    size_t used = strlen(log_text);
    snprintf(log_text + used, sizeof(log_text) - used, "%s\n", message);
    pthread_mutex_unlock(&log_lock);
}

static int log_has(const char *text)
{
    pthread_mutex_lock(&log_lock);
    int found = strstr(log_text, text) != NULL;
    pthread_mutex_unlock(&log_lock);
    return found;
}

typedef struct tls_server {
    csgi_server *server;
    pthread_t thread;
    int port;
} tls_server;

static void *run_server(void *arg)
{
    csgi_server_run(arg);
    return NULL;
}

/* The options of most tests: server.pem, and other.pem for SNI. */
static csgi_tls_certificate certificates[2];
static char paths[5][128]; /* test_tls_file's buffers are reused: copies */

static void default_options(csgi_tls_options *options)
{
    static const char *const names[] = {"server.pem", "server.key", "other.pem", "other.key",
                                        "ca.pem"};
    for (int i = 0; i < 5; i++)
        snprintf(paths[i], sizeof(paths[i]), "%s", test_tls_file(names[i]));
    csgi_tls_options_init(options);
    certificates[0].cert_file = paths[0];
    certificates[0].key_file = paths[1];
    certificates[1].cert_file = paths[2];
    certificates[1].key_file = paths[3];
    options->certificates = certificates;
    options->certificate_count = 2;
    options->ca_file = paths[4];
    options->handshake_timeout_ms = 400;
}

static unsigned loops = 1; /* the next start's threads */

static void start(tls_server *s, const csgi_tls_options *tls)
{
    log_text[0] = '\0';
    csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
    options.log = keep_log;
    options.log_level = CSGI_LOG_INFO;
    options.threads = loops;
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &tls_app, NULL), 0);
    memset(s, 0, sizeof(*s));
    ck_assert_int_eq(csgi_server_new(&s->server, app, &options, NULL), 0);
    ck_assert_msg(csgi_server_listen_tls(s->server, "127.0.0.1:0", tls) == 0, "%s", log_text);
    s->port = csgi_server_port(s->server, 0);
    ck_assert_int_eq(csgi_server_start(s->server), 0);
    ck_assert_int_eq(pthread_create(&s->thread, NULL, run_server, s->server), 0);
}

static void start_default(tls_server *s)
{
    csgi_tls_options options;
    default_options(&options);
    start(s, &options);
}

static void stop(tls_server *s)
{
    csgi_server_stop(s->server, 500);
    pthread_join(s->thread, NULL);
    csgi_server_free(s->server);
}

/* ---- An OpenSSL client ----------------------------------------------------------- */

typedef struct client_options {
    const char *cert; /* client certificate NAME (NAME.pem, NAME.key), or NULL */
    const char *server_name;
    const unsigned char *alpn; /* wire format, or NULL */
    unsigned alpn_len;
    SSL_SESSION *session; /* to resume, or NULL */
} client_options;

/* A plain TCP connection (the harness's), with a 5 s receive timeout. */
static int tcp_connect(int port)
{
    int fd = client_connect(port);
    struct timeval limit = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    return fd;
}

/* A TLS client connected to port; *handshake 1 when its handshake
   succeeded (the SSL is returned either way: free with client_close). */
static SSL *client_connect_tls(int port, const client_options *o, int *handshake)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, test_tls_file("ca.pem"), NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (o && o->cert) {
        char name[64];
        snprintf(name, sizeof(name), "%s.pem", o->cert);
        ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(ctx, test_tls_file(name)), 1);
        snprintf(name, sizeof(name), "%s.key", o->cert);
        ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(ctx, test_tls_file(name), SSL_FILETYPE_PEM),
                         1);
    }
    if (o && o->alpn)
        ck_assert_int_eq(SSL_CTX_set_alpn_protos(ctx, o->alpn, o->alpn_len), 0);
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL holds it */
    SSL_set_fd(ssl, tcp_connect(port));
    const char *name = o && o->server_name ? o->server_name : "localhost";
    SSL_set_tlsext_host_name(ssl, name);
    SSL_set1_host(ssl, name);
    if (o && o->session)
        SSL_set_session(ssl, o->session);
    *handshake = SSL_connect(ssl) == 1;
    ERR_clear_error();
    return ssl;
}

static void client_close(SSL *ssl)
{
    int fd = SSL_get_fd(ssl);
    SSL_shutdown(ssl); /* else OpenSSL makes the session not resumable */
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
}

static int tls_send(SSL *ssl, const char *text)
{
    size_t len = strlen(text);
    while (len) {
        int n = SSL_write(ssl, text, (int)len);
        if (n <= 0) {
            ERR_clear_error();
            return -1;
        }
        text += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read one response (Content-Length framing) into buf; its body in
   *body. Returns the status, or -1 when the connection failed or closed
   first. */
static int tls_response(SSL *ssl, char *buf, size_t cap, const char **body)
{
    static char extra[65536]; /* what came past the response: the next one */
    static size_t extra_len;
    static SSL *extra_of;
    size_t len = 0;
    if (extra_of == ssl && extra_len) {
        memcpy(buf, extra, extra_len);
        len = extra_len;
    }
    extra_len = 0;
    extra_of = ssl;
    long expect = -1;
    char *end = NULL;
    for (;;) {
        buf[len] = '\0';
        if (!end && (end = strstr(buf, "\r\n\r\n")) != NULL) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            ck_assert_ptr_nonnull(cl);
            expect = (end + 4 - buf) + atol(cl + 17);
        }
        if (expect >= 0 && (long)len >= expect)
            break;
        if (len + 1 >= cap)
            return -1;
        int n = SSL_read(ssl, buf + len, (int)(cap - 1 - len));
        if (n <= 0) {
            ERR_clear_error();
            return -1;
        }
        len += (size_t)n;
    }
    extra_len = len - (size_t)expect;
    memcpy(extra, buf + expect, extra_len);
    buf[expect] = '\0';
    *body = end + 4;
    return atoi(buf + 9);
}

/* GET path on ssl: the status (-1 on failure), the body in buf. */
static int tls_get(SSL *ssl, const char *path, char *buf, size_t cap, const char **body)
{
    char request[256];
    snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    if (tls_send(ssl, request) != 0)
        return -1;
    return tls_response(ssl, buf, cap, body);
}

/* 1 when the peer closed within timeout_ms (what it sent is dropped). */
static int raw_closed(int fd, int timeout_ms)
{
    struct timeval limit = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 1;
        if (n < 0)
            return 0;
    }
}

/* ---- Tests ------------------------------------------------------------------------ */

START_TEST(curl_round_trip)
{
    tls_server s;
    start_default(&s);
    char out[8192];
    int rc = test_shell(out, sizeof(out),
                        "curl -sS --max-time 10 --cacert '%s' https://localhost:%d/ 2>&1",
                        test_tls_file("ca.pem"), s.port);
    ck_assert_msg(rc == 0, "curl: %d %s", rc, out);
    ck_assert_msg(strstr(out, "csgi.url_scheme=https\n"), "%s", out);
    ck_assert_msg(strstr(out, "HTTPS=on\n"), "%s", out);
    ck_assert_msg(strstr(out, "SSL_PROTOCOL=TLSv1.3\n"), "%s", out);
    ck_assert_msg(strstr(out, "SSL_CLIENT_VERIFY=NONE\n"), "%s", out);
    ck_assert_msg(strstr(out, "SSL_CLIENT_S_DN=(unset)\n"), "%s", out);
    ck_assert_msg(strstr(out, "SSL_TLS_SNI=localhost\n"), "%s", out);
    ck_assert_msg(strstr(out, "cert=(unset)\n"), "%s", out);
    /* ALPN: curl offers http/1.1 (and h2 when it can); the answer is http/1.1 */
    rc = test_shell(out, sizeof(out),
                    "curl -sS -v --max-time 10 --cacert '%s' https://localhost:%d/ 2>&1 >/dev/null",
                    test_tls_file("ca.pem"), s.port);
    ck_assert_msg(rc == 0 && strstr(out, "ALPN: server accepted http/1.1"), "%s", out);
    stop(&s);
}
END_TEST

START_TEST(file_body_over_tls)
{
    tls_server s;
    start_default(&s);
    char out[512];
    int rc =
        test_shell(out, sizeof(out),
                   "curl -sS --max-time 20 --cacert '%s' https://localhost:%d/file | cmp - '%s' "
                   "&& echo same",
                   test_tls_file("ca.pem"), s.port, file_path);
    ck_assert_msg(rc == 0 && strstr(out, "same"), "%d %s", rc, out);
    stop(&s);
}
END_TEST

START_TEST(keep_alive_and_pipelining)
{
    tls_server s;
    start_default(&s);
    int ok = 0;
    SSL *ssl = client_connect_tls(s.port, NULL, &ok);
    ck_assert(ok);
    char buf[16384];
    const char *body;
    ck_assert_int_eq(tls_get(ssl, "/", buf, sizeof(buf), &body), 200);
    ck_assert_ptr_nonnull(strstr(body, "HTTPS=on"));
    /* Three requests in one write: three answers, in order. */
    ck_assert_int_eq(tls_send(ssl, "GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n"
                                   "GET /b HTTP/1.1\r\nHost: localhost\r\n\r\n"
                                   "GET /file HTTP/1.1\r\nHost: localhost\r\n\r\n"),
                     0);
    ck_assert_int_eq(tls_response(ssl, buf, sizeof(buf), &body), 200);
    ck_assert_int_eq(tls_response(ssl, buf, sizeof(buf), &body), 200);
    static char big[FILE_SIZE + 4096];
    ck_assert_int_eq(tls_response(ssl, big, sizeof(big), &body), 200);
    ck_assert_int_eq(strlen(body), FILE_SIZE);
    /* And the connection still serves. */
    ck_assert_int_eq(tls_get(ssl, "/", buf, sizeof(buf), &body), 200);
    client_close(ssl);
    stop(&s);
}
END_TEST

static void check_client_cert(csgi_tls_verify verify, const char *cert, int expect_ok,
                              const char *expect_verify)
{
    tls_server s;
    csgi_tls_options options;
    default_options(&options);
    options.verify_client = verify;
    start(&s, &options);
    client_options o = {cert, NULL, NULL, 0, NULL};
    int ok = 0;
    SSL *ssl = client_connect_tls(s.port, &o, &ok);
    char buf[16384];
    const char *body = NULL;
    /* TLS 1.3: the client's handshake ends before the server checked its
       certificate; a refusal shows at the first read. */
    int status = ok ? tls_get(ssl, "/", buf, sizeof(buf), &body) : -1;
    if (!expect_ok) {
        ck_assert_msg(status == -1, "a refused client got %d", status);
        client_close(ssl);
        stop(&s);
        ck_assert_msg(log_has("TLS handshake failed"), "%s", log_text);
        return;
    }
    ck_assert_int_eq(status, 200);
    char line[300];
    snprintf(line, sizeof(line), "SSL_CLIENT_VERIFY=%s\n", expect_verify);
    ck_assert_msg(strstr(body, line), "%s", body);
    if (cert) {
        ck_assert_msg(strstr(body, "SSL_CLIENT_S_DN=CN=client,O=csgi tests\n"), "%s", body);
        ck_assert_msg(strstr(body, "SSL_CLIENT_I_DN=CN=csgi test CA\n"), "%s", body);
        ck_assert_msg(strstr(body, "cert=PEM\n"), "%s", body);
    }
    client_close(ssl);
    stop(&s);
}

START_TEST(client_cert_required)
{
    check_client_cert(CSGI_TLS_VERIFY_REQUIRED, "client", 1, "SUCCESS");
    check_client_cert(CSGI_TLS_VERIFY_REQUIRED, NULL, 0, NULL);
    check_client_cert(CSGI_TLS_VERIFY_REQUIRED, "rogue-client", 0, NULL);
}
END_TEST

START_TEST(client_cert_optional)
{
    check_client_cert(CSGI_TLS_VERIFY_OPTIONAL, "client", 1, "SUCCESS");
    check_client_cert(CSGI_TLS_VERIFY_OPTIONAL, NULL, 1, "NONE");
    check_client_cert(CSGI_TLS_VERIFY_OPTIONAL, "rogue-client", 0, NULL);
}
END_TEST

START_TEST(client_cert_not_asked)
{
    /* verify_client none: a certificate the client would send is not asked for */
    check_client_cert(CSGI_TLS_VERIFY_NONE, NULL, 1, "NONE");
}
END_TEST

static void peer_common_name(SSL *ssl, char *out, size_t size)
{
    X509 *peer = SSL_get1_peer_certificate(ssl);
    ck_assert_ptr_nonnull(peer);
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, out, (int)size);
    X509_free(peer);
}

START_TEST(sni_picks_the_certificate)
{
    tls_server s;
    start_default(&s);
    char cn[64];
    const char *names[] = {"other.test", "www.other.test", "localhost"};
    const char *expect[] = {"other.test", "other.test", "localhost"};
    for (int i = 0; i < 3; i++) {
        client_options o = {NULL, names[i], NULL, 0, NULL};
        int ok = 0;
        SSL *ssl = client_connect_tls(s.port, &o, &ok);
        ck_assert_msg(ok, "handshake for %s", names[i]);
        peer_common_name(ssl, cn, sizeof(cn));
        ck_assert_str_eq(cn, expect[i]);
        char buf[16384];
        const char *body;
        ck_assert_int_eq(tls_get(ssl, "/", buf, sizeof(buf), &body), 200);
        char line[64];
        snprintf(line, sizeof(line), "SSL_TLS_SNI=%s\n", names[i]);
        ck_assert_msg(strstr(body, line), "%s", body);
        client_close(ssl);
    }
    stop(&s);
}
END_TEST

START_TEST(alpn_answered)
{
    tls_server s;
    start_default(&s);
    static const unsigned char both[] = "\x02h2\x08http/1.1";
    client_options o = {NULL, NULL, both, sizeof(both) - 1, NULL};
    int ok = 0;
    SSL *ssl = client_connect_tls(s.port, &o, &ok);
    ck_assert(ok);
    const unsigned char *chosen = NULL;
    unsigned chosen_len = 0;
    SSL_get0_alpn_selected(ssl, &chosen, &chosen_len);
    ck_assert_int_eq(chosen_len, 8);
    ck_assert_int_eq(memcmp(chosen, "http/1.1", 8), 0);
    client_close(ssl);
    /* Only a protocol csgi does not speak: refused, as nginx does. */
    static const unsigned char h2[] = "\x02h2";
    client_options only = {NULL, NULL, h2, sizeof(h2) - 1, NULL};
    ssl = client_connect_tls(s.port, &only, &ok);
    ck_assert(!ok);
    client_close(ssl);
    stop(&s);
}
END_TEST

START_TEST(expired_certificate_refused_by_the_client)
{
    tls_server s;
    csgi_tls_options options;
    default_options(&options);
    csgi_tls_certificate expired = {test_tls_file("expired.pem"), test_tls_file("expired.key")};
    options.certificates = &expired;
    options.certificate_count = 1;
    start(&s, &options);
    char out[4096];
    int rc = test_shell(out, sizeof(out),
                        "curl -sS --max-time 10 --cacert '%s' https://localhost:%d/ 2>&1",
                        test_tls_file("ca.pem"), s.port);
    ck_assert_msg(rc == 60 && strstr(out, "expired"), "curl: %d %s", rc, out);
    stop(&s);
}
END_TEST

START_TEST(plain_http_to_the_tls_port)
{
    tls_server s;
    start_default(&s);
    int fd = tcp_connect(s.port);
    const char *request = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    ck_assert_int_eq(send(fd, request, strlen(request), MSG_NOSIGNAL), (ssize_t)strlen(request));
    char buf[1024];
    size_t len = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "%s", buf);
    ck_assert_msg(strstr(buf, "\r\n\r\nA plain HTTP request was sent to an HTTPS port.\n"), "%s",
                  buf);
    ck_assert_msg(strstr(buf, "Connection: close\r\n"), "%s", buf);
    stop(&s);
    ck_assert_msg(log_has("plain HTTP sent to the TLS port"), "%s", log_text);
}
END_TEST

START_TEST(handshake_deadline)
{
    tls_server s;
    start_default(&s); /* handshake_timeout 400 ms */
    /* A client that connects and says nothing, and one that stops in the
       middle of its ClientHello: both cut at the deadline, not before. */
    int silent = tcp_connect(s.port);
    int truncated = tcp_connect(s.port);
    static const unsigned char part[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc};
    ck_assert_int_eq(send(truncated, part, sizeof(part), MSG_NOSIGNAL), (ssize_t)sizeof(part));
    long begin = now_ms();
    ck_assert(!raw_closed(silent, 200));
    ck_assert(raw_closed(silent, 3000));
    ck_assert(raw_closed(truncated, 3000));
    long took = now_ms() - begin;
    ck_assert_msg(took >= 350 && took < 3000, "cut after %ld ms", took);
    close(silent);
    close(truncated);
    /* Meanwhile and after, other clients are served. */
    int ok = 0;
    SSL *ssl = client_connect_tls(s.port, NULL, &ok);
    ck_assert(ok);
    char buf[16384];
    const char *body;
    ck_assert_int_eq(tls_get(ssl, "/", buf, sizeof(buf), &body), 200);
    client_close(ssl);
    stop(&s);
    ck_assert_msg(log_has("TLS handshake not done in time"), "%s", log_text);
}
END_TEST

START_TEST(garbage_handshake_is_one_log_line)
{
    tls_server s;
    start_default(&s);
    int ok = 0;
    SSL *good = client_connect_tls(s.port, NULL, &ok);
    ck_assert(ok);
    int fd = tcp_connect(s.port);
    static const unsigned char junk[] = {0x16, 0x03, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o'};
    ck_assert_int_eq(send(fd, junk, sizeof(junk), MSG_NOSIGNAL), (ssize_t)sizeof(junk));
    ck_assert(raw_closed(fd, 3000));
    close(fd);
    /* The connection opened before is not disturbed. */
    char buf[16384];
    const char *body;
    ck_assert_int_eq(tls_get(good, "/", buf, sizeof(buf), &body), 200);
    client_close(good);
    stop(&s);
    ck_assert_msg(log_has("TLS handshake failed"), "%s", log_text);
    /* one line for that client, at info */
    const char *first = strstr(log_text, "TLS handshake failed");
    ck_assert_ptr_null(strstr(first + 1, "TLS handshake failed"));
}
END_TEST

START_TEST(session_resumed_with_a_ticket)
{
    tls_server s;
    start_default(&s);
    int ok = 0;
    SSL *ssl = client_connect_tls(s.port, NULL, &ok);
    ck_assert(ok);
    char buf[16384];
    const char *body;
    /* TLS 1.3 tickets come after the handshake: a read takes them. */
    ck_assert_int_eq(tls_get(ssl, "/", buf, sizeof(buf), &body), 200);
    ck_assert_msg(strstr(body, "SSL_SESSION_RESUMED=Initial\n"), "%s", body);
    SSL_SESSION *session = SSL_get1_session(ssl);
    ck_assert_ptr_nonnull(session);
    ck_assert(SSL_SESSION_is_resumable(session));
    client_close(ssl);
    client_options o = {NULL, NULL, NULL, 0, session};
    ssl = client_connect_tls(s.port, &o, &ok);
    ck_assert(ok);
    ck_assert(SSL_session_reused(ssl));
    ck_assert_int_eq(tls_get(ssl, "/", buf, sizeof(buf), &body), 200);
    ck_assert_msg(strstr(body, "SSL_SESSION_RESUMED=Resumed\n"), "%s", body);
    client_close(ssl);
    SSL_SESSION_free(session);
    stop(&s);
}
END_TEST

/* A ticket of connection ssl (after a request: TLS 1.3 sends them then). */
static SSL_SESSION *ticket_of(int port)
{
    int ok = 0;
    SSL *ssl = client_connect_tls(port, NULL, &ok);
    ck_assert(ok);
    char buf[16384];
    const char *body;
    ck_assert_int_eq(tls_get(ssl, "/", buf, sizeof(buf), &body), 200);
    SSL_SESSION *session = SSL_get1_session(ssl);
    client_close(ssl);
    return session;
}

/* 1 when session resumes on port. */
static int resumes(int port, SSL_SESSION *session)
{
    client_options o = {NULL, NULL, NULL, 0, session};
    int ok = 0;
    SSL *ssl = client_connect_tls(port, &o, &ok);
    ck_assert(ok);
    int reused = SSL_session_reused(ssl);
    client_close(ssl);
    return reused;
}

/* Milliseconds of the wall clock, which the server's key periods follow. */
static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_until_wall(long long ms)
{
    while (wall_ms() < ms)
        usleep(10000);
}

START_TEST(ticket_keys_rotate)
{
    /* Keys of 2 s periods of the wall clock: a ticket opens in its period
       and the next, not later.  Each check runs 200 ms into a period, so
       neither a slow handshake nor where the test starts in a period can
       carry it over a boundary. */
    const long long period = 2000;
    tls_server s;
    csgi_tls_options options;
    default_options(&options);
    options.ticket_rotation_s = 2;
    start(&s, &options);
    SSL_SESSION *session = NULL;
    long long issued = -1;
    for (int attempt = 0; attempt < 3 && issued < 0; attempt++) {
        sleep_until_wall((wall_ms() / period + 1) * period + 100);
        long long before = wall_ms() / period;
        if (session)
            SSL_SESSION_free(session);
        session = ticket_of(s.port);
        if (wall_ms() / period == before)
            issued = before; /* sealed within one period: we know which */
    }
    ck_assert_msg(issued >= 0, "no ticket fetched within one 2 s period");
    ck_assert(resumes(s.port, session));
    sleep_until_wall((issued + 1) * period + 200);
    ck_assert(resumes(s.port, session)); /* the next period */
    sleep_until_wall((issued + 2) * period + 200);
    ck_assert(!resumes(s.port, session)); /* two periods on */
    SSL_SESSION_free(session);
    stop(&s);

    /* Tickets off: nothing to resume with. */
    options.ticket_rotation_s = CSGI_TLS_NO_TICKETS;
    start(&s, &options);
    session = ticket_of(s.port);
    ck_assert(!SSL_SESSION_is_resumable(session) || !resumes(s.port, session));
    SSL_SESSION_free(session);
    stop(&s);
}
END_TEST

START_TEST(several_loops_serve_tls)
{
    /* Four loops, each with its own socket on the port: every one serves
       TLS with the listener's certificates. */
    loops = 4;
    tls_server s;
    start_default(&s);
    SSL *clients[24];
    for (int i = 0; i < 24; i++) {
        int ok = 0;
        clients[i] = client_connect_tls(s.port, NULL, &ok);
        ck_assert(ok);
    }
    char buf[16384];
    const char *body;
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 24; i++)
            ck_assert_int_eq(tls_get(clients[i], "/", buf, sizeof(buf), &body), 200);
    for (int i = 0; i < 24; i++)
        client_close(clients[i]);
    stop(&s);
    loops = 1;
}
END_TEST

static void copy_file(const char *from, const char *to)
{
    char out[256];
    ck_assert_int_eq(test_shell(out, sizeof(out), "cp '%s' '%s'", from, to), 0);
}

START_TEST(certificates_read_again)
{
    /* The listener's files are copies this test changes. */
    char cert[128], key[128];
    snprintf(cert, sizeof(cert), "%s/live.pem", test_tls_dir());
    snprintf(key, sizeof(key), "%s/live.key", test_tls_dir());
    copy_file(test_tls_file("server.pem"), cert);
    copy_file(test_tls_file("server.key"), key);
    csgi_tls_options options;
    default_options(&options);
    csgi_tls_certificate live = {cert, key};
    options.certificates = &live;
    options.certificate_count = 1;
    tls_server s;
    start(&s, &options);
    int ok = 0;
    client_options o = {NULL, "other.test", NULL, 0, NULL};
    SSL *before = client_connect_tls(s.port, &o, &ok); /* host check fails: localhost's cert */
    ck_assert(!ok);
    client_close(before);
    client_options local = {NULL, "localhost", NULL, 0, NULL};
    before = client_connect_tls(s.port, &local, &ok);
    ck_assert(ok);

    /* A bad file: the old certificate stays, and the log says why. */
    copy_file(test_tls_file("other.key"), key);
    ck_assert_int_eq(csgi_server_reload_tls(s.server), CSGI_EINVAL);
    ck_assert_msg(log_has("not the key of"), "%s", log_text);
    SSL *still = client_connect_tls(s.port, &local, &ok);
    ck_assert(ok);
    client_close(still);

    /* The new pair: new connections get it, the open one keeps serving. */
    copy_file(test_tls_file("other.pem"), cert);
    ck_assert_int_eq(csgi_server_reload_tls(s.server), 0);
    SSL *after = client_connect_tls(s.port, &o, &ok);
    ck_assert(ok);
    char cn[64];
    peer_common_name(after, cn, sizeof(cn));
    ck_assert_str_eq(cn, "other.test");
    char buf[16384];
    const char *body;
    ck_assert_int_eq(tls_get(after, "/", buf, sizeof(buf), &body), 200);
    ck_assert_int_eq(tls_get(before, "/", buf, sizeof(buf), &body), 200);
    client_close(after);
    client_close(before);
    stop(&s);
}
END_TEST

static void expect_refused(const csgi_tls_options *options, const char *why)
{
    csgi_server_options server_options = CSGI_SERVER_OPTIONS_INIT;
    server_options.log = keep_log;
    log_text[0] = '\0';
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &tls_app, NULL), 0);
    csgi_server *server = NULL;
    ck_assert_int_eq(csgi_server_new(&server, app, &server_options, NULL), 0);
    ck_assert_int_eq(csgi_server_listen_tls(server, "127.0.0.1:0", options), CSGI_EINVAL);
    ck_assert_msg(log_has(why), "expected '%s' in: %s", why, log_text);
    csgi_server_free(server);
}

START_TEST(bad_files_refused_at_start)
{
    csgi_tls_options options;
    default_options(&options);
    csgi_tls_certificate cert = {"/nonexistent/server.pem", NULL};
    options.certificates = &cert;
    options.certificate_count = 1;
    expect_refused(&options, "cert_file /nonexistent/server.pem: No such file or directory");
    cert.cert_file = test_tls_file("server.pem");
    cert.key_file = test_tls_file("other.key");
    char why[256];
    snprintf(why, sizeof(why), "key_file %s: not the key of", test_tls_file("other.key"));
    expect_refused(&options, why);
    cert.key_file = test_tls_file("server.pem"); /* no key in it */
    expect_refused(&options, "key_file");
    cert.key_file = test_tls_file("server.key");
    options.ca_file = NULL;
    options.verify_client = CSGI_TLS_VERIFY_REQUIRED;
    expect_refused(&options, "verify_client: needs ca_file");
    options.verify_client = CSGI_TLS_VERIFY_NONE;
    options.min_protocol = "SSLv3";
    expect_refused(&options, "min_protocol 'SSLv3'");
    options.min_protocol = NULL;
    options.ciphers = "NOTHING-KNOWN";
    expect_refused(&options, "ciphers 'NOTHING-KNOWN'");
}
END_TEST

START_TEST(min_protocol_tls13)
{
    tls_server s;
    csgi_tls_options options;
    default_options(&options);
    options.min_protocol = "TLSv1.3";
    start(&s, &options);
    char out[4096];
    int rc =
        test_shell(out, sizeof(out),
                   "curl -sS --max-time 10 --tls-max 1.2 --cacert '%s' https://localhost:%d/ 2>&1",
                   test_tls_file("ca.pem"), s.port);
    ck_assert_msg(rc != 0, "a TLS 1.2 client was served: %s", out);
    rc = test_shell(out, sizeof(out),
                    "curl -sS --max-time 10 --cacert '%s' https://localhost:%d/ 2>&1",
                    test_tls_file("ca.pem"), s.port);
    ck_assert_msg(rc == 0 && strstr(out, "SSL_PROTOCOL=TLSv1.3"), "%s", out);
    stop(&s);
}
END_TEST

START_TEST(tls12_client)
{
    tls_server s;
    start_default(&s);
    char out[4096];
    int rc =
        test_shell(out, sizeof(out),
                   "curl -sS --max-time 10 --tls-max 1.2 --cacert '%s' https://localhost:%d/ 2>&1",
                   test_tls_file("ca.pem"), s.port);
    ck_assert_msg(rc == 0 && strstr(out, "SSL_PROTOCOL=TLSv1.2\n"), "%s", out);
    stop(&s);
}
END_TEST

START_TEST(test_client_marks_tls)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &tls_app, NULL), 0);
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "http://example.org/"), 0);
    csgi_test_tls tls = {NULL, NULL, "example.org", "CN=client,O=csgi tests", "CN=csgi test CA",
                         NULL, NULL};
    ck_assert_int_eq(csgi_test_request_set_tls(request, &tls), 0);
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    const char *body = csgi_test_response_body(response, NULL);
    ck_assert_msg(strstr(body, "csgi.url_scheme=https\n"), "%s", body);
    ck_assert_msg(strstr(body, "HTTPS=on\n"), "%s", body);
    ck_assert_msg(strstr(body, "SSL_PROTOCOL=TLSv1.3\n"), "%s", body);
    ck_assert_msg(strstr(body, "SSL_CLIENT_VERIFY=SUCCESS\n"), "%s", body);
    ck_assert_msg(strstr(body, "SSL_CLIENT_S_DN=CN=client,O=csgi tests\n"), "%s", body);
    ck_assert_msg(strstr(body, "SSL_TLS_SNI=example.org\n"), "%s", body);
    ck_assert_msg(strstr(body, "SERVER_PORT=443\n"), "%s", body);
    csgi_test_response_free(response);
    csgi_test_request_free(request);
    /* Without it: none of the keys. */
    ck_assert_int_eq(csgi_test_get(&response, app, "/"), 0);
    body = csgi_test_response_body(response, NULL);
    ck_assert_msg(strstr(body, "HTTPS=(unset)\n"), "%s", body);
    ck_assert_msg(strstr(body, "SSL_PROTOCOL=(unset)\n"), "%s", body);
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

static void make_file(void)
{
    test_tls_dir(); /* once, in the runner: the forked tests share it */
    snprintf(file_path, sizeof(file_path), "%s/body", test_tls_dir());
    FILE *f = fopen(file_path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < FILE_SIZE; i++)
        fputc('a' + i % 26, f);
    fclose(f);
}

int main(void)
{
    Suite *suite = suite_create("tls");
    TCase *tc = tcase_create("tls");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, make_file, NULL);
    tcase_add_test(tc, curl_round_trip);
    tcase_add_test(tc, file_body_over_tls);
    tcase_add_test(tc, keep_alive_and_pipelining);
    tcase_add_test(tc, client_cert_required);
    tcase_add_test(tc, client_cert_optional);
    tcase_add_test(tc, client_cert_not_asked);
    tcase_add_test(tc, sni_picks_the_certificate);
    tcase_add_test(tc, alpn_answered);
    tcase_add_test(tc, expired_certificate_refused_by_the_client);
    tcase_add_test(tc, plain_http_to_the_tls_port);
    tcase_add_test(tc, handshake_deadline);
    tcase_add_test(tc, garbage_handshake_is_one_log_line);
    tcase_add_test(tc, session_resumed_with_a_ticket);
    tcase_add_test(tc, ticket_keys_rotate);
    tcase_add_test(tc, several_loops_serve_tls);
    tcase_add_test(tc, certificates_read_again);
    tcase_add_test(tc, bad_files_refused_at_start);
    tcase_add_test(tc, min_protocol_tls13);
    tcase_add_test(tc, tls12_client);
    tcase_add_test(tc, test_client_marks_tls);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
