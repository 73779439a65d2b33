/*
 * The HTTP client (csgi/client.h): its response parser and URL splitter,
 * then requests over real sockets on one event loop, against a csgi
 * server on that loop (plain and TLS) and against raw peers written here
 * that answer what a test scripts: hostile heads, a trickle, a server that
 * hangs or closes, a slow reader of a big upload.
 */
#include "client/client_private.h"
#include "test_alloc.h"
#include "test_alphabet.h"
#include "test_tls.h"

#include <csgi.h>

#include <check.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- The parser and the URL splitter -------------------------------------- */

static int parse(const char *text, int head_request, csgi_client__head *head)
{
    static csgi_http__header fields[32];
    const char *reason = NULL;
    csgi_http__scanner scanner;
    csgi_http__error error;
    csgi_http__scanner_init(&scanner);
    scanner.response = 1;
    /* Byte by byte through the scanner, as bytes arrive. */
    csgi_http__scan_result r = CSGI_HTTP__SCAN_MORE;
    for (size_t i = 1; i <= strlen(text) && r == CSGI_HTTP__SCAN_MORE; i++)
        r = csgi_http__scan(&scanner, text, i, NULL, &error);
    if (r != CSGI_HTTP__SCAN_DONE)
        return -1;
    return csgi_client__parse_head(text + scanner.skipped, scanner.head_length - scanner.skipped,
                                   head_request, fields, 32, head, &reason);
}

START_TEST(parser_accepts)
{
    csgi_client__head head;
    ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\n\r\n", 0, &head),
                     0);
    ck_assert_int_eq(head.status, 200);
    ck_assert_int_eq((int)head.reason_len, 2);
    ck_assert_int_eq(head.framing, CSGI_CLIENT__BODY_LENGTH);
    ck_assert_int_eq((int)head.content_length, 5);
    ck_assert_int_eq(head.keep_alive, 1);
    ck_assert_int_eq((int)head.headers[1].value_len, 1); /* trimmed */

    /* Equal copies of Content-Length; no reason phrase, even without SP. */
    ck_assert_int_eq(
        parse("HTTP/1.1 404\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 0, &head), 0);
    ck_assert_int_eq(head.status, 404);
    ck_assert_int_eq((int)head.reason_len, 0);
    ck_assert_int_eq(parse("HTTP/1.1 200 \r\nTransfer-Encoding: chunked\r\n\r\n", 0, &head), 0);
    ck_assert_int_eq(head.framing, CSGI_CLIENT__BODY_CHUNKED);
    /* No framing: until close, and not kept. HTTP/1.0 closes by default. */
    ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\n\r\n", 0, &head), 0);
    ck_assert_int_eq(head.framing, CSGI_CLIENT__BODY_CLOSE);
    ck_assert_int_eq(head.keep_alive, 0);
    ck_assert_int_eq(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0, &head), 0);
    ck_assert_int_eq(head.keep_alive, 0);
    ck_assert_int_eq(
        parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 0, &head),
        0);
    ck_assert_int_eq(head.keep_alive, 1);
    ck_assert_int_eq(
        parse("HTTP/1.1 200 OK\r\nConnection: x, close\r\nContent-Length: 0\r\n\r\n", 0, &head), 0);
    ck_assert_int_eq(head.keep_alive, 0);
    /* No body for HEAD, 204, 304, whatever the fields say. */
    ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", 1, &head), 0);
    ck_assert_int_eq(head.framing, CSGI_CLIENT__BODY_NONE);
    ck_assert_int_eq(parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", 0, &head), 0);
    ck_assert_int_eq(head.framing, CSGI_CLIENT__BODY_NONE);
    ck_assert_int_eq(parse("HTTP/1.1 204 No Content\r\n\r\n", 0, &head), 0);
    ck_assert_int_eq(head.framing, CSGI_CLIENT__BODY_NONE);
    ck_assert_int_eq(head.keep_alive, 1);
}
END_TEST

START_TEST(parser_refuses)
{
    static const char *const bad[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: b\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A : b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX A: b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: b\x01\r\n\r\n",
        "HTTP/2.0 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 OK\r\n\r\n",
        "HTTP/1.1 600 OK\r\n\r\n",
        "HTTP/1.1 200 O\x7fK\r\n\r\n",
        "http/1.1 200 OK\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        csgi_client__head head;
        ck_assert_msg(parse(bad[i], 0, &head) != 0, "accepted: %s", bad[i]);
    }
    /* The scanner refuses a bare LF in a response head, and a CR alone. */
    csgi_client__head head;
    ck_assert_int_eq(parse("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", 0, &head), -1);
    ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", 0, &head), -1);
}
END_TEST

START_TEST(urls)
{
    csgi_client__url url;
    ck_assert_int_eq(csgi_client__parse_url("http://example.com/a?b=c", &url), 0);
    ck_assert_int_eq(url.port, 80);
    ck_assert_int_eq(url.tls, 0);
    ck_assert_int_eq((int)url.host_len, 11);
    ck_assert_int_eq((int)url.target_len, 6);
    ck_assert_int_eq(csgi_client__parse_url("HTTPS://h:8443", &url), 0);
    ck_assert_int_eq(url.port, 8443);
    ck_assert_int_eq(url.tls, 1);
    ck_assert_str_eq(url.target, "/");
    ck_assert_int_eq(csgi_client__parse_url("http://[::1]:81/x", &url), 0);
    ck_assert_int_eq(url.ipv6, 1);
    ck_assert_int_eq((int)url.host_len, 3);
    ck_assert_int_eq(url.port, 81);
    static const char *const bad[] = {
        "ftp://h/",          "http://",         "http:///x",    "http://u@h/",   "http://h:/",
        "http://h:0/",       "http://h:65536/", "http://h:8x/", "http://h/a b",  "http://h/#frag",
        "http://[::1/",      "http://[]/",      "http://h%41/", "http://h\r\n/", "h/x",
        "http://[::1]x:80/", "http://h:80:80/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(csgi_client__parse_url(bad[i], &url) != 0, "accepted %s", bad[i]);
}
END_TEST

/* ---- Running requests ------------------------------------------------------ */

static struct event_base *base;

/* What a request got. */
typedef struct outcome {
    int heads, status, done, result;
    int64_t content_length;
    char header[64]; /* the value of X-Test, if any */
    char *body;
    size_t body_len;
    int cancel_in; /* 1: cancel in head, 2: in data */
    int head_returns, data_returns;
    int pause_every; /* pause after each data piece, resume from a timer */
    int pauses;
    csgi_client_request *request;
    /* A streamed upload. */
    size_t upload, written;
    int full, writables;
} outcome;

static int on_head(csgi_client_request *request, const csgi_client_response *response,
                   void *userdata)
{
    outcome *o = userdata;
    o->heads++;
    o->status = response->status;
    o->content_length = response->content_length;
    size_t len;
    const char *value = csgi_client_response_header(response, "x-test", &len);
    if (value)
        snprintf(o->header, sizeof(o->header), "%.*s", (int)len, value);
    if (o->cancel_in == 1) {
        csgi_client_request_cancel(request);
        o->done = 1; /* no done will come */
    }
    return o->head_returns;
}

static void resume_later(evutil_socket_t fd, short what, void *arg)
{
    csgi_client_request_resume(arg);
}

static int on_data(csgi_client_request *request, const void *data, size_t len, void *userdata)
{
    outcome *o = userdata;
    o->body = realloc(o->body, o->body_len + len + 1);
    memcpy(o->body + o->body_len, data, len);
    o->body_len += len;
    o->body[o->body_len] = '\0';
    if (o->cancel_in == 2) {
        csgi_client_request_cancel(request);
        csgi_client_request_cancel(request); /* twice is harmless inside a callback */
        o->done = 1;
    } else if (o->pause_every) {
        csgi_client_request_pause(request);
        o->pauses++;
        struct timeval tv = {0, 2000};
        event_base_once(base, -1, EV_TIMEOUT, resume_later, request, &tv);
    }
    return o->data_returns;
}

static void on_done(csgi_client_request *request, int result, void *userdata)
{
    outcome *o = userdata;
    o->done++;
    o->result = result;
    csgi_client_request_cancel(request); /* does nothing inside done */
}

static void write_more(outcome *o)
{
    char piece[16384];
    memset(piece, 'u', sizeof(piece));
    while (o->written < o->upload) {
        size_t n = o->upload - o->written < sizeof(piece) ? o->upload - o->written : sizeof(piece);
        int rc = csgi_client_request_write(o->request, piece, n);
        ck_assert_int_ge(rc, 0);
        o->written += n;
        if (rc == 1) {
            o->full++;
            return;
        }
    }
    ck_assert_int_eq(csgi_client_request_end(o->request), 0);
    ck_assert_int_eq(csgi_client_request_write(o->request, "x", 1), CSGI_ESTATE);
    ck_assert_int_eq(csgi_client_request_end(o->request), CSGI_ESTATE);
}

static void on_writable(csgi_client_request *request, void *userdata)
{
    outcome *o = userdata;
    o->writables++;
    if (o->cancel_in == 3) {
        csgi_client_request_cancel(request);
        o->done = 1; /* no done will come */
        return;
    }
    write_more(o);
}

static const csgi_client_callbacks callbacks = {on_head, on_data, on_done, on_writable};

static void expire(evutil_socket_t fd, short what, void *arg)
{
    *(int *)arg = 1;
}

/* Run the loop until the request ends, 10 s at most. */
static void wait_done(outcome *o)
{
    int expired = 0;
    struct timeval ten = {10, 0};
    struct event *watchdog = evtimer_new(base, expire, &expired);
    evtimer_add(watchdog, &ten);
    while (!o->done && !expired)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(watchdog);
    ck_assert_msg(o->done, "the request did not end");
}

static csgi_client *new_client(unsigned timeout_ms)
{
    csgi_client_options options = CSGI_CLIENT_OPTIONS_INIT;
    options.timeout_ms = timeout_ms;
    options.connect_timeout_ms = 2000;
    csgi_client *client = NULL;
    ck_assert_int_eq(csgi_client_new(&client, base, &options), 0);
    return client;
}

/* Make and send a request; body NULL for none. */
static csgi_client_request *send_request(csgi_client *client, outcome *o, const char *method,
                                         const char *url, const char *body)
{
    csgi_client_request *request = NULL;
    ck_assert_int_eq(csgi_client_request_new(&request, client, method, url), 0);
    ck_assert_int_eq(csgi_client_request_add_header(request, "X-Test", "sent"), 0);
    if (body)
        ck_assert_int_eq(csgi_client_request_set_body(request, body, strlen(body)), 0);
    o->request = request;
    ck_assert_int_eq(csgi_client_request_send(request, &callbacks, o), 0);
    return request;
}

static void fetch(csgi_client *client, outcome *o, const char *method, const char *url,
                  const char *body)
{
    send_request(client, o, method, url, body);
    ck_assert_int_eq(o->done, 0); /* nothing runs from inside send */
    wait_done(o);
}

static void setup(void)
{
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
}

static void teardown(void)
{
    event_base_free(base);
    base = NULL;
}

/* ---- A csgi server on the loop ------------------------------------------- */

/* "METHOD PATH?QUERY body=LEN x=X-TEST port=REMOTE_PORT", or a big body
   for /big. */
static csgi_response *echo(csgi_request *request, void *userdata)
{
    csgi_environ *environ = csgi_request_environ(request);
    csgi_response *response = NULL;
    const char *body = NULL;
    size_t body_len = 0;
    if (test_backend_begin(request, "/big", &response, &body, &body_len) != 0)
        return response;
    size_t x_len = 0;
    const char *x = csgi_request_header(request, "X-Test", &x_len);
    char text[512];
    const char *query = csgi_environ_get(environ, "QUERY_STRING");
    snprintf(text, sizeof(text), "%s %s%s%s body=%zu x=%.*s port=%s",
             csgi_environ_get(environ, "REQUEST_METHOD"), csgi_environ_get(environ, "PATH_INFO"),
             query && *query ? "?" : "", query ? query : "", body_len, (int)x_len, x ? x : "",
             csgi_environ_get(environ, "REMOTE_PORT"));
    csgi_response_add_header(response, "X-Test", "answered");
    return csgi_response_set_text(response, text, NULL) == 0 ? response : NULL;
}

static csgi_server *serve(const csgi_tls_options *tls, int *port)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_handler_app(&app, "echo", echo, NULL, NULL), 0);
    csgi_handler_options handler = CSGI_HANDLER_OPTIONS_INIT;
    handler.max_body = 8u << 20;
    ck_assert_int_eq(csgi_handler_set_options(app, &handler), 0);
    csgi_server *server = NULL;
    ck_assert_int_eq(csgi_server_new(&server, app, NULL, base), 0);
    if (tls)
        ck_assert_int_eq(csgi_server_listen_tls(server, "127.0.0.1:0", tls), 0);
    else
        ck_assert_int_eq(csgi_server_listen(server, "127.0.0.1:0"), 0);
    ck_assert_int_eq(csgi_server_start(server), 0);
    *port = csgi_server_port(server, 0);
    return server;
}

/* A csgi server and a client on the loop, and a URL of the server. */
typedef struct served {
    csgi_server *server;
    csgi_client *client;
    char url[128];
} served;

static void served_start(served *s, const char *host, const char *path)
{
    int port;
    s->server = serve(NULL, &port);
    s->client = new_client(5000);
    snprintf(s->url, sizeof(s->url), "http://%s:%d%s", host, port, path);
}

static void served_stop(served *s)
{
    csgi_client_free(s->client);
    csgi_server_free(s->server);
}

START_TEST(get_and_post)
{
    served srv;
    served_start(&srv, "127.0.0.1", "/path/x?a=1");
    csgi_client *client = srv.client;
    const char *url = srv.url;

    outcome get = {0};
    fetch(client, &get, "GET", url, NULL);
    ck_assert_int_eq(get.result, 0);
    ck_assert_int_eq(get.heads, 1);
    ck_assert_int_eq(get.status, 200);
    ck_assert_str_eq(get.header, "answered");
    ck_assert_ptr_nonnull(strstr(get.body, "GET /path/x?a=1 body=0 x=sent"));
    ck_assert_int_eq((int)get.content_length, (int)get.body_len);

    outcome post = {0};
    fetch(client, &post, "POST", url, "hello, world");
    ck_assert_int_eq(post.result, 0);
    ck_assert_ptr_nonnull(strstr(post.body, "POST /path/x?a=1 body=12 x=sent"));

    /* Kept alive: the server saw the same client port both times. */
    ck_assert_str_eq(strstr(get.body, "port="), strstr(post.body, "port="));

    /* Without a head callback: the body still comes. */
    static const csgi_client_callbacks headless = {NULL, on_data, on_done, NULL};
    outcome bare = {0};
    csgi_client_request *request = NULL;
    ck_assert_int_eq(csgi_client_request_new(&request, client, "GET", url), 0);
    ck_assert_int_eq(csgi_client_request_send(request, &headless, &bare), 0);
    wait_done(&bare);
    ck_assert_int_eq(bare.result, 0);
    ck_assert_int_eq(bare.heads, 0);
    ck_assert_ptr_nonnull(strstr(bare.body, "GET /path/x?a=1 body=0 x="));
    free(bare.body);

    /* HEAD: no body, and the connection is kept for the next. */
    outcome head = {0};
    fetch(client, &head, "HEAD", url, NULL);
    ck_assert_int_eq(head.result, 0);
    ck_assert_int_eq(head.status, 200);
    ck_assert_int_eq((int)head.body_len, 0);
    outcome again = {0};
    fetch(client, &again, "GET", url, NULL);
    ck_assert_str_eq(strstr(get.body, "port="), strstr(again.body, "port="));
    free(get.body);
    free(post.body);
    free(again.body);
    served_stop(&srv);
}
END_TEST

START_TEST(name_and_pause)
{
    /* A name, resolved by evdns from the hosts file (::1 may be refused
       first: the next address is tried). */
    served srv;
    served_start(&srv, "localhost", "/big");
    csgi_client *client = srv.client;
    const char *url = srv.url;
    outcome big = {0};
    big.pause_every = 1;
    fetch(client, &big, "GET", url, NULL);
    ck_assert_int_eq(big.result, 0);
    test_alphabet_check(big.body, big.body_len, 1 << 20);
    ck_assert_int_gt(big.pauses, 1);
    free(big.body);
    served_stop(&srv);
}
END_TEST

/* ---- Raw peers -------------------------------------------------------- */

typedef struct peer {
    struct evconnlistener *listener;
    int port;
    const char *reply; /* answered to each request */
    size_t reply_len;
    int trickle;         /* a byte per loop turn */
    int hang;            /* never answer */
    int close_after;     /* close once the answer is written */
    int close_on_second; /* close at a connection's second request, unanswered */
    int slow;            /* read at most 8 KiB at a time */
    int connections, requests;
    size_t body_bytes;          /* body bytes of the last request */
    char last_head[2048];       /* the last request's head */
    struct peer_conn *live[64]; /* its open connections */
} peer;

typedef struct peer_conn {
    peer *p;
    struct bufferevent *bev;
    int requests;
    int64_t need; /* body bytes still to read; -1 chunked; -2 reading the head */
    size_t sent;
    struct event *timer;
} peer_conn;

static void peer_conn_free(peer_conn *c)
{
    for (int i = 0; i < 64; i++)
        if (c->p->live[i] == c)
            c->p->live[i] = NULL;
    if (c->timer)
        event_free(c->timer);
    bufferevent_free(c->bev);
    free(c);
}

static void peer_send_more(evutil_socket_t fd, short what, void *arg)
{
    peer_conn *c = arg;
    peer *p = c->p;
    size_t n = p->trickle ? 1 : p->reply_len - c->sent;
    bufferevent_write(c->bev, p->reply + c->sent, n);
    c->sent += n;
    if (c->sent < p->reply_len) {
        struct timeval tv = {0, 200};
        evtimer_add(c->timer, &tv);
    }
}

static void peer_answer(peer_conn *c)
{
    peer *p = c->p;
    p->requests++;
    c->requests++;
    c->need = -2;
    if (p->close_on_second && c->requests == 2) {
        peer_conn_free(c);
        return;
    }
    if (p->hang)
        return;
    c->sent = 0;
    peer_send_more(-1, 0, c);
}

static void peer_read(struct bufferevent *bev, void *arg)
{
    peer_conn *c = arg;
    peer *p = c->p;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        if (c->need == -2) {
            struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
            if (end.pos < 0)
                return;
            size_t len = (size_t)end.pos + 4;
            size_t keep = len < sizeof(p->last_head) ? len : sizeof(p->last_head) - 1;
            evbuffer_copyout(in, p->last_head, keep);
            p->last_head[keep] = '\0';
            evbuffer_drain(in, len);
            p->body_bytes = 0;
            const char *cl = strcasestr(p->last_head, "\r\nContent-Length: ");
            if (strcasestr(p->last_head, "\r\nTransfer-Encoding: chunked"))
                c->need = -1;
            else
                c->need = cl ? atoll(cl + 18) : 0;
            if (c->need == 0) {
                peer_answer(c);
                return;
            }
        }
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return;
        if (c->need == -1) {
            /* Count everything; the body ends with the last chunk. */
            struct evbuffer_ptr last = evbuffer_search(in, "0\r\n\r\n", 5, NULL);
            size_t take = last.pos >= 0 ? (size_t)last.pos + 5 : avail;
            p->body_bytes += take;
            evbuffer_drain(in, take);
            if (last.pos < 0)
                return;
        } else {
            size_t take = avail < (size_t)c->need ? avail : (size_t)c->need;
            p->body_bytes += take;
            c->need -= (int64_t)take;
            evbuffer_drain(in, take);
            if (c->need > 0)
                return;
        }
        peer_answer(c);
        return;
    }
}

static void peer_write(struct bufferevent *bev, void *arg)
{
    peer_conn *c = arg;
    if (c->p->close_after && c->sent == c->p->reply_len && c->need == -2 && !c->p->hang &&
        evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        peer_conn_free(c);
}

static void peer_event(struct bufferevent *bev, short what, void *arg)
{
    peer_conn_free(arg);
}

static void peer_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *sa,
                        int len, void *arg)
{
    peer *p = arg;
    peer_conn *c = calloc(1, sizeof(*c));
    c->p = p;
    c->need = -2;
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(base, peer_send_more, c);
    bufferevent_setcb(c->bev, peer_read, peer_write, peer_event, c);
    if (p->slow) /* the socket fills: the client's queue must wait */
        bufferevent_setwatermark(c->bev, EV_READ, 0, 8192);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    p->connections++;
    for (int i = 0; i < 64; i++) {
        if (!p->live[i]) {
            p->live[i] = c;
            break;
        }
    }
}

/* Stop listening and close what is still open. */
static void peer_stop(peer *p)
{
    evconnlistener_free(p->listener);
    for (int i = 0; i < 64; i++)
        if (p->live[i])
            peer_conn_free(p->live[i]);
}

static void peer_start(peer *p, const char *reply)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    p->reply = reply;
    if (!p->reply_len)
        p->reply_len = reply ? strlen(reply) : 0;
    p->listener =
        evconnlistener_new_bind(base, peer_accept, p, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                (struct sockaddr *)&sin, sizeof(sin));
    ck_assert_ptr_nonnull(p->listener);
    socklen_t len = sizeof(sin);
    getsockname(evconnlistener_get_fd(p->listener), (struct sockaddr *)&sin, &len);
    p->port = ntohs(sin.sin_port);
}

/* One request to a peer answering reply: the outcome's result. */
static int against(peer *p, const char *reply, unsigned timeout_ms, outcome *o)
{
    peer_start(p, reply);
    csgi_client *client = new_client(timeout_ms);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", p->port);
    fetch(client, o, "GET", url, NULL);
    csgi_client_free(client);
    peer_stop(p);
    return o->result;
}

static int hostile(const char *reply)
{
    peer p = {0};
    outcome o = {0};
    p.close_after = 1;
    int rc = against(&p, reply, 2000, &o);
    free(o.body);
    return rc;
}

START_TEST(hostile_heads)
{
    ck_assert_int_eq(hostile("HTTP/1.1 200 OK\nContent-Length: 2\n\nhi"), CSGI_EPARSE);
    ck_assert_int_eq(hostile("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi"),
                     CSGI_EPARSE);
    ck_assert_int_eq(hostile("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: "
                             "chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"),
                     CSGI_EPARSE);
    ck_assert_int_eq(hostile("this is not HTTP at all\r\n\r\n"), CSGI_EPARSE);
    ck_assert_int_eq(hostile("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
                     CSGI_EPARSE);
    ck_assert_int_eq(hostile("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"),
                     CSGI_EPARSE);
    ck_assert_int_eq(hostile("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
                     CSGI_EPARSE);
    ck_assert_int_eq(hostile("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhiX"),
                     CSGI_EPARSE);
    /* A body cut short, a head cut short. */
    ck_assert_int_eq(hostile("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), CSGI_ECLOSED);
    ck_assert_int_eq(hostile("HTTP/1.1 200 OK\r\nContent-"), CSGI_ECLOSED);
    ck_assert_int_eq(hostile(""), CSGI_ECLOSED);
    /* A head over max_head (64 KiB). */
    size_t big = 70000;
    char *huge = malloc(big + 64);
    strcpy(huge, "HTTP/1.1 200 OK\r\nX-Big: ");
    size_t at = strlen(huge);
    memset(huge + at, 'b', big);
    strcpy(huge + at + big, "\r\n\r\n");
    ck_assert_int_eq(hostile(huge), CSGI_ETOOBIG);
    free(huge);
}
END_TEST

START_TEST(timeouts_and_refusal)
{
    /* A head that never ends. */
    peer p = {0};
    outcome o = {0};
    p.hang = 0;
    ck_assert_int_eq(against(&p, "HTTP/1.1 200 OK\r\nX: y\r\n", 300, &o), CSGI_ETIMEDOUT);
    ck_assert_int_eq(o.heads, 0);

    /* A server that never answers. */
    peer quiet = {0};
    outcome q = {0};
    quiet.hang = 1;
    ck_assert_int_eq(against(&quiet, "", 300, &q), CSGI_ETIMEDOUT);

    /* A body that stops coming. */
    peer stalls = {0};
    outcome s = {0};
    ck_assert_int_eq(against(&stalls, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 300, &s),
                     CSGI_ETIMEDOUT);
    ck_assert_int_eq(s.heads, 1);
    ck_assert_int_eq((int)s.body_len, 3);
    free(s.body);

    /* A closed port: the peer's, once it is gone. */
    peer gone = {0};
    peer_start(&gone, "");
    int port = gone.port;
    peer_stop(&gone);
    csgi_client *client = new_client(1000);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    outcome refused = {0};
    fetch(client, &refused, "GET", url, NULL);
    ck_assert_int_eq(refused.result, CSGI_ECONNECT);
    ck_assert_int_eq(refused.heads, 0);
    /* A name that does not resolve (.invalid never does, RFC 6761):
       CSGI_ECONNECT, or a timeout where no resolver answers at all. */
    outcome unknown = {0};
    fetch(client, &unknown, "GET", "http://nonexistent.invalid/", NULL);
    ck_assert_msg(unknown.result == CSGI_ECONNECT || unknown.result == CSGI_ETIMEDOUT, "%s",
                  csgi_err_name(unknown.result));
    ck_assert_int_eq(unknown.heads, 0);
    ck_assert_str_eq(csgi_err_name(CSGI_ECONNECT), "CSGI_ECONNECT");
    ck_assert_str_eq(csgi_strerror(CSGI_ECONNECT), "cannot connect");
    csgi_client_free(client);
}
END_TEST

START_TEST(trickled_chunked)
{
    /* An interim 100 first, then a chunked body with an extension and a
       trailer, a byte per loop turn. */
    peer p = {0};
    outcome o = {0};
    p.trickle = 1;
    ck_assert_int_eq(
        against(&p,
                "HTTP/1.1 100 Continue\r\n\r\n"
                "HTTP/1.1 200 OK\r\nX-Test: split\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n",
                2000, &o),
        0);
    ck_assert_int_eq(o.heads, 1);
    ck_assert_int_eq(o.status, 200);
    ck_assert_str_eq(o.header, "split");
    ck_assert_int_eq((int)o.content_length, -1);
    ck_assert_str_eq(o.body, "hello, world");
    free(o.body);
}
END_TEST

START_TEST(until_close_and_no_body)
{
    peer p = {0};
    outcome o = {0};
    p.close_after = 1;
    ck_assert_int_eq(against(&p, "HTTP/1.0 200 OK\r\n\r\nall of it", 2000, &o), 0);
    ck_assert_str_eq(o.body, "all of it");
    ck_assert_int_eq((int)o.content_length, -1);
    free(o.body);

    /* 204 and 304 have no body: the bytes after the head are not theirs. */
    peer n = {0};
    outcome no = {0};
    ck_assert_int_eq(against(&n, "HTTP/1.1 204 No Content\r\n\r\n", 2000, &no), 0);
    ck_assert_int_eq(no.status, 204);
    ck_assert_int_eq((int)no.body_len, 0);
    ck_assert_int_eq((int)no.content_length, 0);
}
END_TEST

/* Two requests, the second sent once the first is done. */
static void two_requests(peer *p, const char *reply, outcome *first, outcome *second)
{
    peer_start(p, reply);
    csgi_client *client = new_client(2000);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", p->port);
    fetch(client, first, "GET", url, NULL);
    fetch(client, second, "GET", url, NULL);
    csgi_client_free(client);
    peer_stop(p);
}

START_TEST(keep_alive_and_retry)
{
    peer p = {0};
    outcome a = {0}, b = {0};
    two_requests(&p, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", &a, &b);
    ck_assert_int_eq(a.result, 0);
    ck_assert_int_eq(b.result, 0);
    ck_assert_int_eq(p.requests, 2);
    ck_assert_int_eq(p.connections, 1); /* one connection for both */
    free(a.body);
    free(b.body);

    /* The kept connection dies under the second request, unanswered: it
       is sent again on a new one. */
    peer stale = {0};
    outcome c = {0}, d = {0};
    stale.close_on_second = 1;
    two_requests(&stale, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", &c, &d);
    ck_assert_int_eq(c.result, 0);
    ck_assert_int_eq(d.result, 0);
    ck_assert_str_eq(d.body, "ok");
    ck_assert_int_eq(stale.connections, 2);
    ck_assert_int_eq(stale.requests, 3);
    free(c.body);
    free(d.body);

    /* Connection: close, and HTTP/1.0: a new connection each time. */
    peer closing = {0};
    outcome e = {0}, f = {0};
    closing.close_after = 1;
    two_requests(&closing, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
                 &e, &f);
    ck_assert_int_eq(f.result, 0);
    ck_assert_int_eq(closing.connections, 2);
    free(e.body);
    free(f.body);
}
END_TEST

/* Send a streamed body of size bytes (length -1: chunked), written as
   flow control allows; wait for the end, which must be well. */
static void stream(csgi_client *client, const char *method, const char *url, int64_t length,
                   size_t size, outcome *o)
{
    csgi_client_request *request = NULL;
    ck_assert_int_eq(csgi_client_request_new(&request, client, method, url), 0);
    ck_assert_int_eq(csgi_client_request_set_body_stream(request, length), 0);
    ck_assert_int_eq(csgi_client_request_write(request, "x", 1), CSGI_ESTATE); /* not sent */
    o->request = request;
    o->upload = size;
    ck_assert_int_eq(csgi_client_request_send(request, &callbacks, o), 0);
    write_more(o);
    wait_done(o);
    ck_assert_int_eq(o->result, 0);
}

static void run_for(unsigned ms)
{
    struct timeval tv = {0, (suseconds_t)ms * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

START_TEST(pool_limits)
{
    static const char *const reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    peer p = {0};
    peer_start(&p, reply);
    csgi_client_options options = CSGI_CLIENT_OPTIONS_INIT;
    options.idle_timeout_ms = 100;
    options.max_idle_per_host = 1;
    csgi_client *client = NULL;
    ck_assert_int_eq(csgi_client_new(&client, base, &options), 0);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", p.port);

    /* Two at once: two connections, of which one is kept. */
    outcome a = {0}, b = {0}, c = {0}, d = {0};
    send_request(client, &a, "GET", url, NULL);
    send_request(client, &b, "GET", url, NULL);
    wait_done(&a);
    wait_done(&b);
    ck_assert_int_eq(p.connections, 2);
    send_request(client, &c, "GET", url, NULL);
    send_request(client, &d, "GET", url, NULL);
    wait_done(&c);
    wait_done(&d);
    ck_assert_int_eq(c.result + d.result, 0);
    ck_assert_int_eq(p.connections, 3); /* the kept one, and one more */

    /* Idle past idle_timeout_ms: closed, the next request connects. */
    run_for(300);
    outcome e = {0};
    fetch(client, &e, "GET", url, NULL);
    ck_assert_int_eq(e.result, 0);
    ck_assert_int_eq(p.connections, 4);
    free(a.body);
    free(b.body);
    free(c.body);
    free(d.body);
    free(e.body);
    csgi_client_free(client);
    peer_stop(&p);

    /* A server that closes a kept connection while it is idle: the client
       notices, and the next request gets a new one without a retry. */
    peer closing = {0};
    closing.close_after = 1;
    outcome f = {0}, g = {0};
    two_requests(&closing, reply, &f, &g);
    ck_assert_int_eq(g.result, 0);
    ck_assert_int_eq(closing.connections, 2);
    ck_assert_int_eq(closing.requests, 2);
    free(f.body);
    free(g.body);
}
END_TEST

/* A peer that reads slowly and answers reply, a client, and the URL
   /upload of the peer (url has 128 bytes). */
static csgi_client *slow_peer(peer *p, const char *reply, char *url)
{
    p->slow = 1;
    peer_start(p, reply);
    snprintf(url, 128, "http://127.0.0.1:%d/upload", p->port);
    return new_client(5000);
}

/* A streamed upload of size bytes (length -1: chunked) to a slow peer. */
static void upload(int64_t length, size_t size)
{
    peer p = {0};
    char url[128];
    csgi_client *client = slow_peer(&p, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngot!", url);
    outcome o = {0};
    stream(client, "PUT", url, length, size, &o);
    ck_assert_str_eq(o.body, "got!");
    ck_assert_int_gt(o.full, 2); /* the queue filled and drained, again and again */
    ck_assert_int_eq(o.writables, o.full);
    if (length >= 0) {
        ck_assert_uint_eq(p.body_bytes, size);
        ck_assert_ptr_nonnull(strstr(p.last_head, "Content-Length: "));
    } else {
        ck_assert_uint_gt(p.body_bytes, size); /* the data and its framing */
        ck_assert_ptr_nonnull(strstr(p.last_head, "Transfer-Encoding: chunked"));
    }
    ck_assert_ptr_nonnull(strstr(p.last_head, "PUT /upload HTTP/1.1\r\n"));
    free(o.body);
    csgi_client_free(client);
    peer_stop(&p);
}

START_TEST(streamed_upload)
{
    upload(3 * 1024 * 1024 + 17, 3 * 1024 * 1024 + 17);
    upload(-1, 2 * 1024 * 1024);

    /* Cancelled from inside writable, the upload half sent. */
    peer p = {0};
    char url[128];
    csgi_client *client = slow_peer(&p, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", url);
    outcome o = {0};
    o.cancel_in = 3;
    csgi_client_request *request = NULL;
    ck_assert_int_eq(csgi_client_request_new(&request, client, "PUT", url), 0);
    ck_assert_int_eq(csgi_client_request_set_body_stream(request, 1 << 20), 0);
    o.request = request;
    o.upload = 1 << 20;
    ck_assert_int_eq(csgi_client_request_send(request, &callbacks, &o), 0);
    write_more(&o);
    ck_assert_int_eq(o.full, 1);
    wait_done(&o);
    ck_assert_int_eq(o.writables, 1);
    ck_assert_int_eq(o.heads, 0);
    run_for(50); /* the peer sees the connection close, nothing breaks */
    ck_assert_int_eq(p.requests, 0);
    csgi_client_free(client);
    peer_stop(&p);
}
END_TEST

START_TEST(stream_to_csgi_server)
{
    served srv;
    served_start(&srv, "127.0.0.1", "/up");
    for (int chunked = 0; chunked < 2; chunked++) {
        outcome o = {0};
        stream(srv.client, "POST", srv.url, chunked ? -1 : 1000000, 1000000, &o);
        ck_assert_msg(strstr(o.body, "POST /up body=1000000") != NULL, "%s", o.body);
        free(o.body);
    }
    served_stop(&srv);
}
END_TEST

START_TEST(cancel_and_free)
{
    served srv;
    served_start(&srv, "127.0.0.1", "/big");
    csgi_client *client = srv.client;
    const char *url = srv.url;

    /* Cancelled in the head callback, in the data callback. */
    for (int where = 1; where <= 2; where++) {
        outcome o = {0};
        o.cancel_in = where;
        fetch(client, &o, "GET", url, NULL);
        ck_assert_int_eq(o.heads, 1);
        ck_assert(where == 1 ? o.body_len == 0 : o.body_len > 0 && o.body_len < (1u << 20));
        free(o.body);
    }
    /* What head or data returns ends the request, and done gets it. */
    outcome refused = {0};
    refused.head_returns = 42;
    fetch(client, &refused, "GET", url, NULL);
    ck_assert_int_eq(refused.result, 42);
    ck_assert_int_eq((int)refused.body_len, 0);
    outcome enough = {0};
    enough.data_returns = CSGI_ETOOBIG;
    fetch(client, &enough, "GET", url, NULL);
    ck_assert_int_eq(enough.result, CSGI_ETOOBIG);
    ck_assert_int_gt((int)enough.body_len, 0);
    ck_assert_int_lt((int)enough.body_len, 1 << 20);
    free(enough.body);

    /* A request made but not sent; one sent and cancelled before the loop
       ran it. */
    csgi_client_request *request = NULL;
    ck_assert_int_eq(csgi_client_request_new(&request, client, "GET", url), 0);
    csgi_client_request_cancel(request);
    outcome never = {0};
    csgi_client_request_cancel(send_request(client, &never, "GET", url, NULL));
    for (int i = 0; i < 20; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(never.done, 0);
    ck_assert_int_eq(never.heads, 0);

    /* Misuse. */
    ck_assert_int_eq(csgi_client_request_new(&request, client, "G T", url), CSGI_EINVAL);
    ck_assert_int_eq(csgi_client_request_new(&request, client, "GET", "ftp://x/"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_client_request_new(&request, client, "GET", url), 0);
    ck_assert_int_eq(csgi_client_request_add_header(request, "Host", "x"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_client_request_add_header(request, "Content-Length", "1"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_client_request_add_header(request, "X", "a\r\nB: c"), CSGI_EINVAL);
    ck_assert_int_eq(csgi_client_request_set_body_stream(request, -2), CSGI_EINVAL);
    ck_assert_int_eq(csgi_client_request_set_body(request, "a", 1), 0);
    ck_assert_int_eq(csgi_client_request_set_body_stream(request, 1), CSGI_ESTATE);
    ck_assert_int_eq(csgi_client_request_send(request, NULL, NULL), CSGI_EINVAL);
    csgi_client_request_cancel(request);
    csgi_client_options bad = CSGI_CLIENT_OPTIONS_INIT;
    bad.version = 99;
    csgi_client *other = NULL;
    ck_assert_int_eq(csgi_client_new(&other, base, &bad), CSGI_EINVAL);
    ck_assert_int_eq(csgi_client_new(&other, NULL, NULL), CSGI_EINVAL);

    /* Freeing the client ends a running request with CSGI_ECLOSED. */
    peer quiet = {0};
    quiet.hang = 1;
    peer_start(&quiet, "");
    char quiet_url[64];
    snprintf(quiet_url, sizeof(quiet_url), "http://127.0.0.1:%d/", quiet.port);
    outcome running = {0};
    send_request(client, &running, "GET", quiet_url, NULL);
    while (quiet.requests == 0)
        event_base_loop(base, EVLOOP_ONCE);
    csgi_client_free(client);
    srv.client = NULL;
    peer_stop(&quiet);
    ck_assert_int_eq(running.done, 1);
    ck_assert_int_eq(running.result, CSGI_ECLOSED);
    free(running.body);
    served_stop(&srv); /* csgi_client_free(NULL) too */
}
END_TEST

/* One POST with a field and a body to url, with every allocation of csgi's
   after the first n failing: 0, or CSGI_ENOMEM from wherever it failed. */
static int post_with_budget(const char *url, long n, outcome *o)
{
    test_alloc_fail_after(n);
    csgi_client *client = NULL;
    csgi_client_request *request = NULL;
    int rc = csgi_client_new(&client, base, NULL);
    if (rc == 0)
        rc = csgi_client_request_new(&request, client, "POST", url);
    if (rc == 0)
        rc = csgi_client_request_add_header(request, "X-Test", "oom");
    if (rc == 0)
        rc = csgi_client_request_set_body(request, "body", 4);
    if (rc == 0)
        rc = csgi_client_request_send(request, &callbacks, o);
    if (rc == 0) {
        wait_done(o);
        rc = o->result;
    } else {
        csgi_client_request_cancel(request);
    }
    csgi_client_free(client);
    test_alloc_fail_never();
    return rc;
}

START_TEST(out_of_memory)
{
    peer p = {0};
    peer_start(&p, "HTTP/1.1 200 OK\r\nX-Test: fine\r\nContent-Length: 2\r\n\r\nok");
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", p.port);
    ck_assert_int_eq(test_alloc_install(), 0);
    int rc = CSGI_ENOMEM;
    long n;
    for (n = 0; n < 100 && rc != 0; n++) {
        outcome o = {0};
        rc = post_with_budget(url, n, &o);
        ck_assert_msg(rc == 0 || rc == CSGI_ENOMEM, "%ld: %s", n, csgi_err_name(rc));
        if (rc == 0) {
            ck_assert_str_eq(o.body, "ok");
            ck_assert_str_eq(o.header, "fine");
        }
        free(o.body);
    }
    test_alloc_restore();
    ck_assert_int_eq(rc, 0);
    ck_assert_int_gt(n, 5); /* several allocations were refused on the way */
    peer_stop(&p);
}
END_TEST

/* ---- TLS ------------------------------------------------------------------ */

static csgi_server *serve_tls(const char *cert, int *port)
{
    static char paths[2][256];
    snprintf(paths[0], sizeof(paths[0]), "%s", test_tls_file(cert));
    char key[64];
    snprintf(key, sizeof(key), "%.*s.key", (int)(strlen(cert) - 4), cert);
    snprintf(paths[1], sizeof(paths[1]), "%s", test_tls_file(key));
    static csgi_tls_certificate certificate;
    certificate.cert_file = paths[0];
    certificate.key_file = paths[1];
    csgi_tls_options tls;
    csgi_tls_options_init(&tls);
    tls.certificates = &certificate;
    tls.certificate_count = 1;
    return serve(&tls, port);
}

static int fetch_tls(const char *host, int port, const char *ca, int insecure, outcome *o)
{
    char ca_path[256];
    snprintf(ca_path, sizeof(ca_path), "%s", ca ? test_tls_file(ca) : "");
    csgi_client_options options = CSGI_CLIENT_OPTIONS_INIT;
    options.ca_file = ca ? ca_path : NULL;
    options.insecure = insecure;
    csgi_client *client = NULL;
    ck_assert_int_eq(csgi_client_new(&client, base, &options), 0);
    char url[128];
    snprintf(url, sizeof(url), "https://%s:%d/secure", host, port);
    fetch(client, o, "GET", url, NULL);
    if (o->result == 0) { /* and again, on the kept connection */
        outcome again = {0};
        fetch(client, &again, "GET", url, NULL);
        ck_assert_int_eq(again.result, 0);
        ck_assert_str_eq(strstr(again.body, "port="), strstr(o->body, "port="));
        free(again.body);
    }
    csgi_client_free(client);
    return o->result;
}

START_TEST(https)
{
    int port;
    csgi_server *server = serve_tls("server.pem", &port);
    outcome ok = {0};
    ck_assert_int_eq(fetch_tls("127.0.0.1", port, "ca.pem", 0, &ok), 0);
    ck_assert_ptr_nonnull(strstr(ok.body, "GET /secure body=0 x=sent"));
    free(ok.body);
    outcome named = {0};
    ck_assert_int_eq(fetch_tls("localhost", port, "ca.pem", 0, &named), 0);
    free(named.body);
    /* A CA that did not sign it (the system's store), a CA file that is
       not one. */
    outcome unknown = {0};
    ck_assert_int_eq(fetch_tls("127.0.0.1", port, NULL, 0, &unknown), CSGI_ECONNECT);
    outcome no_ca = {0};
    ck_assert_int_eq(fetch_tls("127.0.0.1", port, "server.key", 0, &no_ca), CSGI_ECONNECT);
    csgi_server_free(server);

    /* A certificate for other names: refused, unless told not to verify. */
    server = serve_tls("other.pem", &port);
    outcome wrong = {0};
    ck_assert_int_eq(fetch_tls("127.0.0.1", port, "ca.pem", 0, &wrong), CSGI_ECONNECT);
    outcome insecure = {0};
    ck_assert_int_eq(fetch_tls("127.0.0.1", port, NULL, 1, &insecure), 0);
    free(insecure.body);
    csgi_server_free(server);

    /* Plain HTTP to a TLS port, TLS to a plain one. */
    int plain_port;
    server = serve(NULL, &plain_port);
    outcome mismatch = {0};
    ck_assert_int_eq(fetch_tls("127.0.0.1", plain_port, "ca.pem", 0, &mismatch), CSGI_ECONNECT);
    csgi_server_free(server);
}
END_TEST

static Suite *client_suite(void)
{
    Suite *suite = suite_create("client");
    TCase *tc = tcase_create("parser");
    tcase_add_test(tc, parser_accepts);
    tcase_add_test(tc, parser_refuses);
    tcase_add_test(tc, urls);
    suite_add_tcase(suite, tc);
    tc = tcase_create("sockets");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, get_and_post);
    tcase_add_test(tc, name_and_pause);
    tcase_add_test(tc, hostile_heads);
    tcase_add_test(tc, timeouts_and_refusal);
    tcase_add_test(tc, trickled_chunked);
    tcase_add_test(tc, until_close_and_no_body);
    tcase_add_test(tc, keep_alive_and_retry);
    tcase_add_test(tc, pool_limits);
    tcase_add_test(tc, streamed_upload);
    tcase_add_test(tc, stream_to_csgi_server);
    tcase_add_test(tc, cancel_and_free);
    tcase_add_test(tc, out_of_memory);
    tcase_add_test(tc, https);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(client_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
