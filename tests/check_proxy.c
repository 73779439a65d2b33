/*
 * Paste's proxy (src/middleware/proxy.c), loaded from deploy files as
 * egg:Paste#proxy and egg:csgi#proxy: requests through the in-process test
 * client and over real sockets to a csgi backend on a thread of its own,
 * and to raw backends that answer garbage, hop-by-hop fields, or nothing.
 */
#include "test_alphabet.h"
#include "test_deploy.h"
#include "test_files.h"
#include "test_tls.h"

#include <csgi.h>

#include <check.h>
#include <event2/event.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- The backend: a csgi server on its own thread ------------------------ */

static const char *field(csgi_request *request, const char *name, char *buf, size_t cap)
{
    size_t len = 0;
    const char *value = csgi_request_header(request, name, &len);
    snprintf(buf, cap, "%.*s", value ? (int)len : 1, value ? value : "-");
    return buf;
}

/* What the backend saw, one line; /big answers 1 MiB. */
static csgi_response *backend_echo(csgi_request *request, void *userdata)
{
    csgi_environ *environ = csgi_request_environ(request);
    csgi_response *response = NULL;
    const char *body = NULL;
    size_t body_len = 0;
    if (test_backend_begin(request, "/base/big", &response, &body, &body_len) != 0)
        return response;
    unsigned sum = 0;
    for (size_t i = 0; i < body_len; i++)
        sum = sum * 31 + (unsigned char)body[i];
    char f[9][128], text[2048];
    snprintf(text, sizeof(text),
             "%s %s host=%s xff=%s proto=%s xfh=%s custom=%s secret=%s te=%s drop=%s "
             "type=%s body=%zu sum=%u",
             csgi_environ_get(environ, "REQUEST_METHOD"), csgi_environ_get(environ, "REQUEST_URI"),
             field(request, "Host", f[0], 128), field(request, "X-Forwarded-For", f[1], 128),
             field(request, "X-Forwarded-Proto", f[2], 128),
             field(request, "X-Forwarded-Host", f[3], 128), field(request, "X-Custom", f[4], 128),
             field(request, "X-Secret", f[5], 128), field(request, "TE", f[6], 128),
             field(request, "X-Drop", f[7], 128), field(request, "Content-Type", f[8], 128),
             body_len, sum);
    csgi_response_add_header(response, "X-Backend", "yes");
    return csgi_response_set_text(response, text, NULL) == 0 ? response : NULL;
}

typedef struct backend {
    csgi_server *server;
    pthread_t thread;
    int port;
} backend;

static void *run_server(void *arg)
{
    csgi_server_run(arg);
    return NULL;
}

static void serve_on_thread(backend *b, csgi_app *app)
{
    csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
    options.log_level = CSGI_LOG_ERROR;
    options.max_body = 8u << 20;
    ck_assert_int_eq(csgi_server_new(&b->server, app, &options, NULL), 0);
    ck_assert_int_eq(csgi_server_listen(b->server, "127.0.0.1:0"), 0);
    b->port = csgi_server_port(b->server, 0);
    ck_assert_int_eq(csgi_server_start(b->server), 0);
    ck_assert_int_eq(pthread_create(&b->thread, NULL, run_server, b->server), 0);
}

static void backend_start(backend *b)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_handler_app(&app, "backend", backend_echo, NULL, NULL), 0);
    csgi_handler_options handler = CSGI_HANDLER_OPTIONS_INIT;
    handler.max_body = 8u << 20;
    ck_assert_int_eq(csgi_handler_set_options(app, &handler), 0);
    serve_on_thread(b, app);
}

static void backend_stop(backend *b)
{
    csgi_server_stop(b->server, 200);
    pthread_join(b->thread, NULL);
    csgi_server_free(b->server);
}

/* ---- Raw backends: one connection, a canned answer or none ---------------- */

typedef struct raw {
    int listener, port;
    const char *reply; /* NULL: never answer */
    int quit[2];
    pthread_t thread;
} raw;

static void *raw_run(void *arg)
{
    raw *r = arg;
    int fd = accept(r->listener, NULL, NULL);
    if (fd < 0)
        return NULL;
    char buf[4096];
    size_t got = 0;
    while (got < sizeof(buf) - 1) {
        ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    struct pollfd wait = {r->quit[0], POLLIN, 0};
    if (!r->reply) {
        poll(&wait, 1, 10000);
    } else {
        /* Write it all, then close gracefully: what the proxy still sends
           is read and dropped, so no reset takes the answer away. */
        for (size_t sent = 0, len = strlen(r->reply); sent < len;) {
            ssize_t n = write(fd, r->reply + sent, len - sent);
            if (n <= 0)
                break;
            sent += (size_t)n;
        }
        shutdown(fd, SHUT_WR);
        while (read(fd, buf, sizeof(buf)) > 0)
            ;
    }
    close(fd);
    return NULL;
}

static void raw_start(raw *r, const char *reply)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->reply = reply;
    r->listener = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(bind(r->listener, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(r->listener, 4), 0);
    socklen_t len = sizeof(sin);
    getsockname(r->listener, (struct sockaddr *)&sin, &len);
    r->port = ntohs(sin.sin_port);
    ck_assert_int_eq(pipe(r->quit), 0);
    ck_assert_int_eq(pthread_create(&r->thread, NULL, raw_run, r), 0);
}

static void raw_stop(raw *r)
{
    ck_assert_int_eq(write(r->quit[1], "q", 1), 1);
    shutdown(r->listener, SHUT_RDWR);
    pthread_join(r->thread, NULL);
    close(r->listener);
    close(r->quit[0]);
    close(r->quit[1]);
}

/* ---- The proxy --------------------------------------------------------------- */

/* The proxy to port, loaded from a deploy file as section name. */
static csgi_app *proxy_to(csgi_loader **loader, int port, const char *name)
{
    char ini[1024];
    snprintf(ini, sizeof(ini),
             "[app:paste]\n"
             "use = egg:Paste#proxy\n"
             "address = http://127.0.0.1:%d/base/\n"
             "allowed_request_methods = GET POST, HEAD\n"
             "suppress_http_headers = X-Secret\n"
             "\n"
             "[app:csgi]\n"
             "use = egg:csgi#proxy\n"
             "address = http://127.0.0.1:%d/base\n"
             "timeout = 1\n",
             port, port);
    ck_assert_int_eq(csgi_loader_new(loader), 0);
    char uri[4200];
    snprintf(uri, sizeof(uri), "%s#%s", test_write_file("proxy.ini", ini), name);
    return test_load(*loader, uri);
}

static csgi_test_response *run(csgi_app *app, const char *method, const char *url,
                               const char *headers[], const char *body, size_t piece, int chunked)
{
    csgi_test_request *request = NULL;
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, method, url), 0);
    for (size_t i = 0; headers && headers[i]; i += 2)
        ck_assert_int_eq(csgi_test_request_add_header(request, headers[i], headers[i + 1]), 0);
    if (body) {
        ck_assert_int_eq(csgi_test_request_set_body(request, body, strlen(body)), 0);
        csgi_test_request_set_chunked(request, chunked);
        ck_assert_int_eq(
            csgi_test_request_set_body_delivery(
                request, piece ? CSGI_TEST_DELIVERY_LATE : CSGI_TEST_DELIVERY_AT_ONCE, piece),
            0);
    }
    csgi_test_request_set_timeout(request, 10000);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    csgi_test_request_free(request);
    return response;
}

static const char *body_of(csgi_test_response *response)
{
    return csgi_test_response_body(response, NULL);
}

START_TEST(forwards_fields)
{
    backend b;
    backend_start(&b);
    csgi_loader *loader = NULL;
    csgi_app *app = proxy_to(&loader, b.port, "paste");
    const char *headers[] = {"X-Custom",
                             "kept",
                             "X-Secret",
                             "hidden",
                             "X-Forwarded-For",
                             "10.0.0.1",
                             "TE",
                             "trailers",
                             "Proxy-Authorization",
                             "Basic eDp5",
                             NULL};
    csgi_test_response *r =
        run(app, "GET", "http://front.example/a%20b/c?x=1&y", headers, NULL, 0, 0);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    char want[512];
    snprintf(want, sizeof(want),
             "GET /base/a%%20b/c?x=1&y host=127.0.0.1:%d xff=10.0.0.1, 127.0.0.1 proto=http "
             "xfh=front.example custom=kept secret=- te=- drop=- type=- body=0",
             b.port);
    ck_assert_msg(strstr(body_of(r), want) != NULL, "%s", body_of(r));
    ck_assert_str_eq(csgi_test_response_header(r, "X-Backend"), "yes");
    csgi_test_response_free(r);

    /* A method not allowed: Paste's 400. */
    r = run(app, "DELETE", "/x", NULL, NULL, 0, 0);
    ck_assert_int_eq(csgi_test_response_code(r), 400);
    ck_assert_str_eq(body_of(r), "Disallowed");
    csgi_test_response_free(r);

    /* HEAD: the backend's head, no body. */
    r = run(app, "HEAD", "/x", NULL, NULL, 0, 0);
    ck_assert_msg(csgi_test_response_code(r) == 200, "%s",
                  csgi_test_response_log_count(r) ? csgi_test_response_log_at(r, 0) : "");
    ck_assert_str_eq(csgi_test_response_header(r, "X-Backend"), "yes");
    ck_assert_str_eq(body_of(r), "");
    ck_assert_ptr_nonnull(csgi_test_response_header(r, "Content-Length")); /* a GET's */
    ck_assert_int_gt(atoi(csgi_test_response_header(r, "Content-Length")), 50);
    csgi_test_response_free(r);

    /* A big answer, streamed through. */
    size_t len = 0;
    r = run(app, "GET", "/big", NULL, NULL, 0, 0);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    const char *big = csgi_test_response_body(r, &len);
    test_alphabet_check(big, len, 1u << 20);
    csgi_test_response_free(r);
    csgi_app_free(app);
    csgi_loader_free(loader);
    backend_stop(&b);
}
END_TEST

/* A body of n bytes, and what the backend reports for it. */
static char *make_body(size_t n, char *report, size_t cap)
{
    char *body = malloc(n + 1);
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        body[i] = (char)('A' + (i * 7) % 26);
        sum = sum * 31 + (unsigned char)body[i];
    }
    body[n] = '\0';
    snprintf(report, cap, "body=%zu sum=%u", n, sum);
    return body;
}

START_TEST(forwards_bodies)
{
    backend b;
    backend_start(&b);
    csgi_loader *loader = NULL;
    csgi_app *app = proxy_to(&loader, b.port, "csgi");
    char report[64];
    char *body = make_body(300000, report, sizeof(report));
    const char *headers[] = {"Content-Type", "text/x-test", NULL};
    /* At once, in pieces, a byte at a time; with a length, and chunked. */
    static const size_t pieces[] = {0, 4096, 1};
    for (int chunked = 0; chunked < 2; chunked++) {
        for (size_t i = 0; i < 3; i++) {
            size_t n = pieces[i] == 1 ? 2000 : 300000; /* byte by byte: a shorter body */
            char small_report[64];
            char *sent = n == 300000 ? body : make_body(n, small_report, sizeof(small_report));
            csgi_test_response *r = run(app, "POST", "/up", headers, sent, pieces[i], chunked);
            ck_assert_int_eq(csgi_test_response_code(r), 200);
            ck_assert_msg(strstr(body_of(r), n == 300000 ? report : small_report) != NULL, "%s",
                          body_of(r));
            ck_assert_ptr_nonnull(strstr(body_of(r), "POST /base/up "));
            ck_assert_ptr_nonnull(strstr(body_of(r), "type=text/x-test"));
            csgi_test_response_free(r);
            if (sent != body)
                free(sent);
        }
    }
    free(body);
    csgi_app_free(app);
    csgi_loader_free(loader);
    backend_stop(&b);
}
END_TEST

/* The status (and the first bytes of the body) for one GET to a raw
   backend answering reply. */
static int through_raw(const char *reply, char *body, size_t cap)
{
    raw r;
    raw_start(&r, reply);
    csgi_loader *loader = NULL;
    csgi_app *app = proxy_to(&loader, r.port, "csgi");
    csgi_test_response *response = run(app, "GET", "/x", NULL, NULL, 0, 0);
    int code = csgi_test_response_code(response);
    snprintf(body, cap, "%s", body_of(response));
    if (code == 200) {
        ck_assert_ptr_null(csgi_test_response_header(response, "X-Hop"));
        ck_assert_ptr_null(csgi_test_response_header(response, "Keep-Alive"));
        ck_assert_str_eq(csgi_test_response_header(response, "X-Kept"), "yes");
    }
    csgi_test_response_free(response);
    csgi_app_free(app);
    csgi_loader_free(loader);
    raw_stop(&r);
    return code;
}

START_TEST(bad_backends)
{
    char body[256];
    /* Hop-by-hop fields of the response are dropped, others kept. */
    ck_assert_int_eq(through_raw("HTTP/1.1 201 \r\nConnection: X-Hop\r\nX-Hop: 1\r\n"
                                 "Keep-Alive: timeout=5\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\n"
                                 "ok",
                                 body, sizeof(body)),
                     201);
    ck_assert_str_eq(body, "ok");
    /* Garbage, a bare LF, two lengths: 502. */
    ck_assert_int_eq(through_raw("garbage\r\n\r\n", body, sizeof(body)), 502);
    ck_assert_str_eq(body, "Bad Gateway\n");
    ck_assert_int_eq(through_raw("HTTP/1.1 200 OK\nContent-Length: 0\n\n", body, sizeof(body)),
                     502);
    ck_assert_int_eq(
        through_raw("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", body,
                    sizeof(body)),
        502);
    /* Silence: 504 after the timeout (1 s). */
    ck_assert_int_eq(through_raw(NULL, body, sizeof(body)), 504);
    ck_assert_str_eq(body, "Gateway Timeout\n");

    /* Nobody listening: 502. */
    raw gone;
    raw_start(&gone, "");
    int port = gone.port;
    /* Shut down, not only closed: a close does not wake the thread that
       may already wait in accept() (under valgrind it always does). */
    raw_stop(&gone);
    csgi_loader *loader = NULL;
    csgi_app *app = proxy_to(&loader, port, "csgi");
    csgi_test_response *r = run(app, "GET", "/x", NULL, NULL, 0, 0);
    ck_assert_int_eq(csgi_test_response_code(r), 502);
    ck_assert(csgi_test_response_log_contains(r, "cannot connect"));
    csgi_test_response_free(r);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(answer_before_upload_ends)
{
    /* The backend answers a big body at once, reading none of the
       upload, which is still arriving in pieces. */
    size_t n = 200000;
    char *reply = malloc(n + 64);
    int at = sprintf(reply, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
    for (size_t i = 0; i < n; i++)
        reply[at + (int)i] = (char)('a' + i % 26);
    reply[at + (int)n] = '\0';
    raw r;
    raw_start(&r, reply);
    csgi_loader *loader = NULL;
    csgi_app *app = proxy_to(&loader, r.port, "csgi");
    char report[64];
    char *upload = make_body(100000, report, sizeof(report));
    csgi_test_response *response = run(app, "POST", "/x", NULL, upload, 1000, 0);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    size_t len = 0;
    const char *body = csgi_test_response_body(response, &len);
    ck_assert_uint_eq(len, n);
    ck_assert_int_eq(memcmp(body, reply + at, n), 0);
    csgi_test_response_free(response);
    csgi_app_free(app);
    csgi_loader_free(loader);
    raw_stop(&r);
    free(upload);
    free(reply);
}
END_TEST

START_TEST(https_backend)
{
    static char paths[3][256];
    snprintf(paths[0], sizeof(paths[0]), "%s", test_tls_file("server.pem"));
    snprintf(paths[1], sizeof(paths[1]), "%s", test_tls_file("server.key"));
    snprintf(paths[2], sizeof(paths[2]), "%s", test_tls_file("ca.pem"));
    csgi_tls_certificate certificate = {paths[0], paths[1]};
    csgi_tls_options tls;
    csgi_tls_options_init(&tls);
    tls.certificates = &certificate;
    tls.certificate_count = 1;
    backend b;
    csgi_app *echo = NULL;
    ck_assert_int_eq(csgi_handler_app(&echo, "backend", backend_echo, NULL, NULL), 0);
    csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
    options.log_level = CSGI_LOG_ERROR;
    ck_assert_int_eq(csgi_server_new(&b.server, echo, &options, NULL), 0);
    ck_assert_int_eq(csgi_server_listen_tls(b.server, "127.0.0.1:0", &tls), 0);
    b.port = csgi_server_port(b.server, 0);
    ck_assert_int_eq(csgi_server_start(b.server), 0);
    ck_assert_int_eq(pthread_create(&b.thread, NULL, run_server, b.server), 0);

    /* With the CA that signed it: through. Without (the system's): 502. */
    for (int trusted = 1; trusted >= 0; trusted--) {
        char ini[1024], uri[4200];
        snprintf(ini, sizeof(ini),
                 "[app:tls]\nuse = egg:csgi#proxy\naddress = https://127.0.0.1:%d/base\n%s%s\n",
                 b.port, trusted ? "ca_file = " : "", trusted ? paths[2] : "");
        csgi_loader *loader = NULL;
        ck_assert_int_eq(csgi_loader_new(&loader), 0);
        snprintf(uri, sizeof(uri), "%s#tls", test_write_file("tls.ini", ini));
        csgi_app *app = test_load(loader, uri);
        csgi_test_response *r = run(app, "GET", "/secure", NULL, NULL, 0, 0);
        ck_assert_int_eq(csgi_test_response_code(r), trusted ? 200 : 502);
        if (trusted)
            ck_assert_ptr_nonnull(strstr(body_of(r), "GET /base/secure host=127.0.0.1:"));
        csgi_test_response_free(r);
        csgi_app_free(app);
        csgi_loader_free(loader);
    }
    backend_stop(&b);
}
END_TEST

START_TEST(configuration)
{
    /* docs/middleware.md's example loads, and refuses a DELETE unsent. */
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    char uri[4200];
    snprintf(uri, sizeof(uri), "%s/docs/proxy.ini#backend", test_testdata_dir());
    csgi_app *app = test_load(loader, uri);
    csgi_test_response *r = run(app, "delete", "/users/1", NULL, NULL, 0, 0);
    ck_assert_int_eq(csgi_test_response_code(r), 400);
    ck_assert_str_eq(body_of(r), "Disallowed");
    csgi_test_response_free(r);
    csgi_app_free(app);

    static const char *const bad[] = {
        "[app:x]\nuse = egg:Paste#proxy\n",
        "[app:x]\nuse = egg:Paste#proxy\naddress = ftp://h/\n",
        "[app:x]\nuse = egg:Paste#proxy\naddress = http://h/?q\n",
        "[app:x]\nuse = egg:Paste#proxy\naddress = http://h/\ncolour = red\n",
        "[app:x]\nuse = egg:csgi#proxy\naddress = http://h/\ntimeout = 0\n",
        /* Paste's module name finds the same factory: its own error. */
        "[app:x]\npaste.app_factory = paste.proxy:make_proxy\n",
    };
    static const char *const why[] = {"address", "address", "address",
                                      "colour",  "timeout", "address"};
    csgi_loader_free(loader);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char message[512];
        ck_assert_int_eq(csgi_loader_new(&loader), 0); /* a loader reads a file once */
        snprintf(uri, sizeof(uri), "%s#x", test_write_file("bad.ini", bad[i]));
        ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_EINVAL);
        ck_assert_msg(strstr(message, why[i]) && strstr(message, "bad.ini:"), "%s", message);
        csgi_loader_free(loader);
    }
}
END_TEST

/* ---- Over sockets ------------------------------------------------------------ */

static struct event_base *base;

typedef struct outcome {
    int status, done, result;
    char body[1024];
    size_t body_len;
    csgi_client_request *request;
    size_t upload, written;
} outcome;

static int on_head(csgi_client_request *request, const csgi_client_response *response,
                   void *userdata)
{
    ((outcome *)userdata)->status = response->status;
    return 0;
}

static int on_data(csgi_client_request *request, const void *data, size_t len, void *userdata)
{
    outcome *o = userdata;
    size_t room = sizeof(o->body) - 1 - o->body_len;
    memcpy(o->body + o->body_len, data, len < room ? len : room);
    o->body_len += len < room ? len : room;
    o->body[o->body_len] = '\0';
    return 0;
}

static void on_done(csgi_client_request *request, int result, void *userdata)
{
    ((outcome *)userdata)->done = 1;
    ((outcome *)userdata)->result = result;
}

static void on_writable(csgi_client_request *request, void *userdata)
{
    outcome *o = userdata;
    char piece[8192];
    while (o->written < o->upload) {
        size_t n = o->upload - o->written < sizeof(piece) ? o->upload - o->written : sizeof(piece);
        for (size_t i = 0; i < n; i++)
            piece[i] = (char)('A' + ((o->written + i) * 7) % 26);
        int rc = csgi_client_request_write(request, piece, n);
        ck_assert_int_ge(rc, 0);
        o->written += n;
        if (rc == 1)
            return;
    }
    ck_assert_int_eq(csgi_client_request_end(request), 0);
}

static const csgi_client_callbacks callbacks = {on_head, on_data, on_done, on_writable};

/* A backend, and a proxy to it served on sockets. */
typedef struct two_hops {
    backend back, front;
    csgi_loader *loader;
} two_hops;

static void two_hops_start(two_hops *h)
{
    backend_start(&h->back);
    serve_on_thread(&h->front, proxy_to(&h->loader, h->back.port, "paste"));
}

static void two_hops_stop(two_hops *h)
{
    backend_stop(&h->front);
    csgi_loader_free(h->loader);
    backend_stop(&h->back);
}

START_TEST(over_sockets)
{
    two_hops hops;
    two_hops_start(&hops);
    base = event_base_new();
    csgi_client *client = NULL;
    ck_assert_int_eq(csgi_client_new(&client, base, NULL), 0);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/up?z=9", hops.front.port);
    char report[64];
    free(make_body(2u << 20, report, sizeof(report)));

    /* A 2 MiB upload, streamed through both hops. */
    outcome o = {0};
    csgi_client_request *request = NULL;
    ck_assert_int_eq(csgi_client_request_new(&request, client, "POST", url), 0);
    ck_assert_int_eq(csgi_client_request_set_body_stream(request, -1), 0);
    o.upload = 2u << 20;
    ck_assert_int_eq(csgi_client_request_send(request, &callbacks, &o), 0);
    on_writable(request, &o);
    while (!o.done)
        event_base_loop(base, EVLOOP_ONCE);
    ck_assert_int_eq(o.result, 0);
    ck_assert_int_eq(o.status, 200);
    ck_assert_msg(strstr(o.body, report) != NULL, "%s", o.body);
    ck_assert_ptr_nonnull(strstr(o.body, "POST /base/up?z=9 "));
    ck_assert_ptr_nonnull(strstr(o.body, "xff=127.0.0.1 "));

    csgi_client_free(client);
    event_base_free(base);
    two_hops_stop(&hops);
}
END_TEST

/* Send a raw request to port; read at most cap - 1 bytes of the answer
   (all of it when it fits), then close. */
static size_t raw_exchange(int port, const char *request, char *answer, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)port);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    size_t got = 0;
    ssize_t n;
    while (got < cap - 1 && (n = read(fd, answer + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    answer[got] = '\0';
    close(fd);
    return got;
}

START_TEST(connection_fields_over_sockets)
{
    two_hops hops;
    two_hops_start(&hops);
    /* A raw request naming a field in Connection: neither goes on. */
    char answer[4096];
    raw_exchange(hops.front.port,
                 "GET /c HTTP/1.1\r\nHost: front\r\nConnection: close, X-Drop\r\n"
                 "X-Drop: 1\r\nX-Custom: on\r\nTE: trailers\r\n\r\n",
                 answer, sizeof(answer));
    ck_assert_msg(strncmp(answer, "HTTP/1.1 200 ", 13) == 0, "%s", answer);
    ck_assert_msg(strstr(answer, "custom=on secret=- te=- drop=-") != NULL, "%s", answer);
    ck_assert_ptr_nonnull(strstr(answer, "xfh=front "));

    /* A client that leaves in the middle of a big answer: the backend's
       request is dropped with it, and the proxy serves the next. */
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(raw_exchange(hops.front.port, "GET /big HTTP/1.1\r\nHost: front\r\n\r\n",
                                       answer, sizeof(answer)),
                          sizeof(answer) - 1);
    raw_exchange(hops.front.port, "GET /after HTTP/1.1\r\nHost: front\r\nConnection: close\r\n\r\n",
                 answer, sizeof(answer));
    ck_assert_msg(strstr(answer, "GET /base/after host=") != NULL, "%s", answer);
    two_hops_stop(&hops);
}
END_TEST

static Suite *proxy_suite(void)
{
    Suite *suite = suite_create("proxy");
    TCase *tc = tcase_create("proxy");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, forwards_fields);
    tcase_add_test(tc, forwards_bodies);
    tcase_add_test(tc, bad_backends);
    tcase_add_test(tc, answer_before_upload_ends);
    tcase_add_test(tc, https_backend);
    tcase_add_test(tc, configuration);
    tcase_add_test(tc, over_sockets);
    tcase_add_test(tc, connection_fields_over_sockets);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(proxy_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
