/*
 * The threadpool filter (csgi/threadpool.h, egg:csgi#threadpool and the
 * loader's `blocking` key), over real sockets on 127.0.0.1 and through the
 * in-process test client: blocking applications on pool threads while the
 * loop keeps serving, streamed and gathered bodies, 503 when the queue is
 * full, failures, clients that leave, and stopping. Every wait is bounded.
 */
#include "engine_harness.h"
#include "test_deploy.h"
#include "test_files.h"

#include <csgi.h>

#include <check.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
        continue;
}

/* Wait until *counter reaches at least n (or timeout_ms). 1 when it did. */
static int wait_for(atomic_int *counter, int n, int timeout_ms)
{
    long end = now_ms() + timeout_ms;
    while (atomic_load(counter) < n) {
        if (now_ms() > end)
            return 0;
        sleep_ms(5);
    }
    return 1;
}

/* ---- The server's log, kept ------------------------------------------------------------ */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[65536];

static void keep_log(int level, const char *message, void *userdata)
{
    (void)level;
    (void)userdata;
    pthread_mutex_lock(&log_lock);
    size_t len = strlen(log_text);
    snprintf(log_text + len, sizeof(log_text) - len, "%s\n", message);
    pthread_mutex_unlock(&log_lock);
}

/* 1 when the log has text, waiting for it up to timeout_ms (the lines of
   a pool thread go out through the loop). */
static int log_has(const char *text, int timeout_ms)
{
    long end = now_ms() + timeout_ms;
    for (;;) {
        pthread_mutex_lock(&log_lock);
        int found = strstr(log_text, text) != NULL;
        pthread_mutex_unlock(&log_lock);
        if (found)
            return 1;
        if (now_ms() > end)
            return 0;
        sleep_ms(5);
    }
}

/* Serve app (taken) with `loops` event loops, logging into log_text. */
static void serve(app_server *server, csgi_app *app, unsigned loops)
{
    csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
    options.threads = loops;
    options.log = keep_log;
    options.log_level = CSGI_LOG_INFO;
    app_server_start(server, app, &options);
}

/* Stop a server with grace_ms for the requests in progress, and free it. */
static void stop(app_server *server, unsigned grace_ms)
{
    csgi_server_stop(server->server, grace_ms);
    pthread_join(server->thread, NULL);
    csgi_server_free(server->server);
    server->server = NULL;
}

/* Send GET path on a new connection, which is returned. */
static int ask(int port, const char *path)
{
    int fd = client_connect(port);
    char request[256];
    snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    ck_assert_int_eq(client_send_str(fd, request), 0);
    return fd;
}

/* The next response on fd must be status (with body, unless NULL) within 10 s. */
static void expect(int fd, int status, const char *body)
{
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 10000), 0);
    ck_assert_int_eq(r.status, status);
    if (body)
        ck_assert_str_eq(r.body, body);
    response_free(&r);
}

/* GET path on a new connection; the response must come within timeout_ms. */
static void get(int port, const char *path, test_response *response, int timeout_ms)
{
    int fd = ask(port, path);
    ck_assert_msg(client_response(fd, response, 0, timeout_ms) == 0, "no response to %s", path);
    close(fd);
}

/* hello, beside the pool, answers. */
static void hello_answers(int port)
{
    test_response r;
    get(port, "/", &r, 5000);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "hello\n");
    response_free(&r);
}

/* Close fd with a reset, as a client that gives up does: the server
   learns at once that it left. */
static void reset(int fd)
{
    struct linger linger = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
    close(fd);
}

/* ---- Applications ------------------------------------------------------------------- */

static const csgi_header text_headers[] = {CSGI_HEADER("Content-Type", "text/plain")};

static csgi_body *hello_call(void *state, csgi_environ *environ,
                             csgi_start_response *start_response)
{
    (void)state;
    if (csgi_start_response_call(start_response, "200 OK", text_headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_static(environ, "hello\n", 6);
}

static const csgi_app_type hello_type = {"hello", hello_call, NULL};

static csgi_app *hello_app(void)
{
    csgi_app *app = NULL;
    ck_assert_int_eq(csgi_app_new(&app, &hello_type, NULL), 0);
    return app;
}

/* Sleeps (1 s unless ?ms=N), counting the sleepers. */
static atomic_int sleeping, most_sleeping, slept, sleep_calls;

static long query_number(csgi_environ *environ, const char *name, long fallback)
{
    const char *query = csgi_environ_get(environ, "QUERY_STRING");
    const char *at = query ? strstr(query, name) : NULL;
    return at && at[strlen(name)] == '=' ? atol(at + strlen(name) + 1) : fallback;
}

static csgi_body *sleep_call(void *state, csgi_environ *environ,
                             csgi_start_response *start_response)
{
    (void)state;
    atomic_fetch_add(&sleep_calls, 1);
    int now = atomic_fetch_add(&sleeping, 1) + 1;
    int most = atomic_load(&most_sleeping);
    while (now > most && !atomic_compare_exchange_weak(&most_sleeping, &most, now))
        continue;
    sleep_ms(query_number(environ, "ms", 1000));
    atomic_fetch_sub(&sleeping, 1);
    atomic_fetch_add(&slept, 1);
    if (csgi_start_response_call(start_response, "200 OK", text_headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_static(environ, "slept\n", 6);
}

static const csgi_app_type sleep_type = {"sleep", sleep_call, NULL};

/* Waits until the gate opens (at most 10 s). */
static atomic_int gate_open, gate_calls;

static csgi_body *gate_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    (void)state;
    atomic_fetch_add(&gate_calls, 1);
    long end = now_ms() + 10000;
    while (!atomic_load(&gate_open) && now_ms() < end)
        sleep_ms(5);
    if (csgi_start_response_call(start_response, "200 OK", text_headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_static(environ, "opened\n", 7);
}

static const csgi_app_type gate_type = {"gate", gate_call, NULL};

/* ?bytes=N of a pattern, in pieces of 1 to 8191 bytes; ?length=1 declares
   the length; ?ms=N sleeps first. Counts what it produced and its closes. */
static atomic_long produced;
static atomic_int stream_calls, stream_closes;

typedef struct stream {
    long total, done;
    size_t piece;
    unsigned char buffer[8192];
} stream;

static unsigned char pattern(long offset)
{
    return (unsigned char)((offset * 7 + offset / 8191) & 0xff);
}

static int stream_next(void *state, csgi_chunk *chunk)
{
    stream *s = state;
    if (s->done == s->total)
        return 0;
    s->piece = s->piece % 8191 + 1 + (size_t)(s->done % 13);
    if (s->piece > sizeof(s->buffer))
        s->piece = sizeof(s->buffer);
    size_t n = s->total - s->done < (long)s->piece ? (size_t)(s->total - s->done) : s->piece;
    for (size_t i = 0; i < n; i++)
        s->buffer[i] = pattern(s->done + (long)i);
    s->done += (long)n;
    atomic_fetch_add(&produced, (long)n);
    chunk->data = s->buffer;
    chunk->len = n;
    return 1;
}

static void stream_close(void *state)
{
    (void)state;
    atomic_fetch_add(&stream_closes, 1);
}

static const csgi_body_type stream_body = {"pattern", stream_next, stream_close};

static csgi_body *stream_call(void *state, csgi_environ *environ,
                              csgi_start_response *start_response)
{
    (void)state;
    atomic_fetch_add(&stream_calls, 1);
    sleep_ms(query_number(environ, "ms", 0));
    stream *s = csgi_environ_alloc_zeroed(environ, sizeof(*s));
    if (!s || csgi_start_response_call(start_response, "200 OK", text_headers, 1, NULL) != 0)
        return NULL;
    s->total = query_number(environ, "bytes", 1000);
    csgi_body *body = csgi_body_new(environ, &stream_body, s);
    if (body && query_number(environ, "length", 0))
        csgi_body_set_length(body, s->total);
    return body;
}

static const csgi_app_type stream_type = {"stream", stream_call, NULL};

/* The request body back as "LENGTH SUM": it must be all there at once. */
static csgi_body *echo_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    (void)state;
    const char *data = NULL;
    size_t len = 0;
    int rc = csgi_input_read_all(csgi_environ_input(environ), 1 << 20, &data, &len);
    if (rc != 0) {
        csgi_environ_log(environ, "echo: read_all gave %s", csgi_err_name(rc));
        return NULL;
    }
    unsigned long sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = sum * 31 + (unsigned char)data[i];
    char text[64];
    int n = snprintf(text, sizeof(text), "%zu %lu", len, sum);
    if (csgi_start_response_call(start_response, "200 OK", text_headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_bytes(environ, text, (size_t)n);
}

static const csgi_app_type echo_type = {"echo", echo_call, NULL};

static unsigned long checksum(const char *data, size_t len)
{
    unsigned long sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = sum * 31 + (unsigned char)data[i];
    return sum;
}

/* Failures on the thread, chosen by the path. */
static int broken_next(void *state, csgi_chunk *chunk)
{
    int *given = state;
    if ((*given)++)
        return CSGI_EIO;
    chunk->data = "partial ";
    chunk->len = 8;
    return 1;
}

static int waiting_next(void *state, csgi_chunk *chunk)
{
    (void)state;
    (void)chunk;
    return CSGI_EAGAIN;
}

static const csgi_body_type broken_body = {"broken", broken_next, NULL};
static const csgi_body_type waiting_body = {"waiting", waiting_next, NULL};

static csgi_body *fail_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    (void)state;
    const char *path = csgi_environ_get(environ, "PATH_INFO");
    if (strcmp(path, "/null") == 0)
        return NULL;
    csgi_start_response_call(start_response, "200 OK", text_headers, 1, NULL);
    if (strcmp(path, "/twice") == 0) {
        csgi_start_response_call(start_response, "200 OK", text_headers, 1, NULL);
        return csgi_body_static(environ, "twice\n", 6);
    }
    if (strcmp(path, "/waiting") == 0)
        return csgi_body_new(environ, &waiting_body, NULL);
    int *given = csgi_environ_alloc_zeroed(environ, sizeof(*given));
    return given ? csgi_body_new(environ, &broken_body, given) : NULL;
}

static const csgi_app_type fail_type = {"failing", fail_call, NULL};

/* Sends /pool... to the pooled application (PATH_INFO without /pool),
   anything else to hello: one server, both. */
typedef struct split {
    csgi_app *pooled;
    csgi_app *hello;
} split;

static atomic_int pooled_calls; /* requests the loop gave the pool */

static csgi_body *split_call(void *state, csgi_environ *environ,
                             csgi_start_response *start_response)
{
    split *s = state;
    const char *path = csgi_environ_get(environ, "PATH_INFO");
    if (strncmp(path, "/pool", 5) != 0)
        return csgi_app_call(s->hello, environ, start_response);
    atomic_fetch_add(&pooled_calls, 1);
    if (csgi_environ_set(environ, "PATH_INFO", path + 5) != 0 ||
        csgi_environ_set(environ, "test.front", "set in front") != 0)
        return NULL;
    return csgi_app_call(s->pooled, environ, start_response);
}

static void split_destroy(void *state)
{
    split *s = state;
    csgi_app_free(s->pooled);
    csgi_app_free(s->hello);
    free(s);
}

static const csgi_app_type split_type = {"split", split_call, split_destroy};

/* inner (taken) behind a threadpool with options (NULL: defaults), beside
   hello. */
static csgi_app *pooled_beside_hello(const csgi_app_type *inner,
                                     const csgi_threadpool_options *options)
{
    csgi_app *app = NULL, *pooled = NULL;
    ck_assert_int_eq(csgi_app_new(&app, inner, NULL), 0);
    ck_assert_int_eq(csgi_threadpool_new(&pooled, app, options), 0);
    ck_assert_str_eq(csgi_app_name(pooled), "threadpool");
    split *s = calloc(1, sizeof(*s));
    ck_assert_ptr_nonnull(s);
    s->pooled = pooled;
    s->hello = hello_app();
    csgi_app *out = NULL;
    ck_assert_int_eq(csgi_app_new(&out, &split_type, s), 0);
    return out;
}

/* ---- Done when: 16 sleepers behind egg:csgi#threadpool, hello beside them ---------------- */

static int hello_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                         const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)local_conf;
    (void)error;
    return csgi_app_new(out, &hello_type, NULL);
}

static int sleep_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                         const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)local_conf;
    (void)error;
    return csgi_app_new(out, &sleep_type, NULL);
}

static csgi_loader *test_loader(void)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:test#hello", CSGI_FACTORY_APP, hello_factory), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:test#sleep", CSGI_FACTORY_APP, sleep_factory), 0);
    return loader;
}

static const char sleepers_ini[] = "[composite:main]\n"
                                   "use = egg:csgi#urlmap\n"
                                   "/ = hello\n"
                                   "/sleep = slow\n"
                                   "\n"
                                   "[app:hello]\n"
                                   "use = egg:test#hello\n"
                                   "\n"
                                   "[pipeline:slow]\n"
                                   "pipeline = pool sleep\n"
                                   "\n"
                                   "[filter:pool]\n"
                                   "use = egg:csgi#threadpool\n"
                                   "threads = 16\n"
                                   "\n"
                                   "[app:sleep]\n"
                                   "use = egg:test#sleep\n";

START_TEST(test_sleepers_beside_hello)
{
    csgi_loader *loader = test_loader();
    csgi_app *app = test_load(loader, test_write_file("sleepers.ini", sleepers_ini));
    csgi_loader_free(loader);
    app_server server;
    serve(&server, app, 1); /* one loop: hello can only answer if the sleepers leave it */

    enum { SLEEPERS = 16 };
    int fds[SLEEPERS];
    long start = now_ms();
    for (int i = 0; i < SLEEPERS; i++) {
        fds[i] = client_connect(server.port);
        ck_assert_int_eq(client_send_str(fds[i], "GET /sleep HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    }
    /* hello, while they sleep: at once, and before any of them is done. */
    ck_assert_msg(wait_for(&sleeping, 1, 2000), "no sleeper started");
    long asked = now_ms();
    test_response hello;
    get(server.port, "/", &hello, 5000);
    long answered = now_ms();
    ck_assert_int_eq(hello.status, 200);
    ck_assert_str_eq(hello.body, "hello\n");
    response_free(&hello);
    ck_assert_msg(atomic_load(&slept) == 0, "hello came after %d sleepers were done (%ld ms)",
                  atomic_load(&slept), answered - asked);
    ck_assert_msg(answered - asked < 900, "hello took %ld ms beside the sleepers",
                  answered - asked);

    for (int i = 0; i < SLEEPERS; i++) {
        test_response r;
        ck_assert_msg(client_response(fds[i], &r, 0, 10000) == 0,
                      "no answer to sleeper %d after %ld ms (%d slept); the log:\n%s", i,
                      now_ms() - start, atomic_load(&slept), log_text);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(r.body, "slept\n");
        response_free(&r);
        close(fds[i]);
    }
    long elapsed = now_ms() - start;
    /* 16 s one after the other; concurrently about 1 s (a loaded machine
       gets some slack). */
    ck_assert_msg(elapsed >= 950 && elapsed < 6000, "16 sleepers took %ld ms", elapsed);
    ck_assert_int_eq(atomic_load(&slept), SLEEPERS);
    ck_assert_msg(atomic_load(&most_sleeping) == SLEEPERS, "at most %d slept at once",
                  atomic_load(&most_sleeping));
    stop(&server, 1000);
}
END_TEST

/* ---- Bodies ------------------------------------------------------------------------------ */

static void check_pattern(const test_response *r, long total)
{
    ck_assert_int_eq((long)r->body_len, total);
    for (long i = 0; i < total; i++)
        if ((unsigned char)r->body[i] != pattern(i))
            ck_abort_msg("byte %ld differs", i);
}

START_TEST(test_streamed_body)
{
    app_server server;
    serve(&server, pooled_beside_hello(&stream_type, NULL), 2);
    enum { TOTAL = 5 * 1000 * 1000 };
    char path[96];

    /* Unknown length: chunked. */
    test_response r;
    snprintf(path, sizeof(path), "/pool?bytes=%d", TOTAL);
    get(server.port, path, &r, 20000);
    ck_assert_int_eq(r.status, 200);
    ck_assert(r.chunked);
    check_pattern(&r, TOTAL);
    response_free(&r);

    /* Declared: a Content-Length. */
    snprintf(path, sizeof(path), "/pool?bytes=%d&length=1", TOTAL);
    get(server.port, path, &r, 20000);
    ck_assert_int_eq(r.status, 200);
    ck_assert(!r.chunked);
    ck_assert_str_eq(response_header(&r, "Content-Length"), "5000000");
    check_pattern(&r, TOTAL);
    response_free(&r);

    /* HEAD: the length a GET gets, no body. */
    int fd = client_connect(server.port);
    ck_assert_int_eq(
        client_send_str(fd, "HEAD /pool?bytes=70000&length=1 HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    ck_assert_int_eq(client_response(fd, &r, 1, 10000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(response_header(&r, "Content-Length"), "70000");
    ck_assert_int_eq((int)r.body_len, 0);
    response_free(&r);
    /* The connection goes on: the next response is whole. */
    ck_assert_int_eq(client_send_str(fd, "GET /pool?bytes=3 HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    ck_assert_int_eq(client_response(fd, &r, 0, 10000), 0);
    check_pattern(&r, 3);
    response_free(&r);
    close(fd);
    ck_assert(wait_for(&stream_closes, 4, 5000));
    stop(&server, 1000);
}
END_TEST

START_TEST(test_backpressure)
{
    app_server server;
    serve(&server, pooled_beside_hello(&stream_type, NULL), 1);
    /* A client that does not read: the thread stops producing. */
    int fd = client_connect_rcvbuf(server.port, 4096);
    ck_assert_int_eq(client_send_str(fd, "GET /pool?bytes=268435456 HTTP/1.1\r\nHost: t\r\n\r\n"),
                     0);
    /* It stops once the buffers between it and the client are full: the
       count no longer moves for 300 ms (the 256 MiB would take a second or
       two at most; a slow machine gets 20 s). */
    long first = -1, second = 0, end = now_ms() + 20000;
    while ((second != first || second == 0) && now_ms() < end) {
        first = second;
        sleep_ms(300);
        second = atomic_load(&produced);
    }
    ck_assert_msg(second > 0, "nothing produced");
    ck_assert_msg(second == first, "still producing: %ld then %ld bytes", first, second);
    ck_assert_msg(second < 16L * 1024 * 1024, "%ld bytes produced for a client that reads none",
                  second);
    /* The client leaves: the thread's next piece is refused, its body closed. */
    reset(fd);
    ck_assert_msg(wait_for(&stream_closes, 1, 5000), "the body was not closed");
    hello_answers(server.port);
    stop(&server, 1000);
}
END_TEST

START_TEST(test_request_body)
{
    app_server server;
    csgi_threadpool_options options = CSGI_THREADPOOL_OPTIONS_INIT;
    options.max_body = 200000;
    options.body_buffer_size = 1024; /* the larger bodies go to a file */
    serve(&server, pooled_beside_hello(&echo_type, &options), 1);
    static char body[150000];
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (char)('a' + (i * 7) % 26);
    const size_t sizes[] = {0, 300, 5000, sizeof(body)};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        for (int how = 0; how < SPLIT_COUNT; how++) {
            /* No body, no 100 Continue to wait for. */
            if ((how == SPLIT_BYTE_BY_BYTE && sizes[k] > 5000) ||
                (how == SPLIT_AFTER_CONTINUE && sizes[k] == 0))
                continue;
            int fd = client_connect(server.port);
            ck_assert_int_eq(
                client_send_post(fd, "/pool", "", body, sizes[k], (enum body_split)how), 0);
            test_response r;
            ck_assert_msg(client_response(fd, &r, 0, 20000) == 0, "no response (%zu bytes, %s)",
                          sizes[k], body_split_names[how]);
            char want[64];
            snprintf(want, sizeof(want), "%zu %lu", sizes[k], checksum(body, sizes[k]));
            ck_assert_msg(r.status == 200 && strcmp(r.body, want) == 0, "%d %s for %s (%s)",
                          r.status, r.body, want, body_split_names[how]);
            response_free(&r);
            close(fd);
        }
    }
    /* Over max_body: 413, before the application runs. */
    static char big[250000];
    memset(big, 'x', sizeof(big));
    int fd = client_connect(server.port);
    ck_assert_int_eq(client_send_post(fd, "/pool", "", big, sizeof(big), SPLIT_CHUNKED), 0);
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 10000), 0);
    ck_assert_int_eq(r.status, 413);
    ck_assert_msg(strstr(r.body, "longer than 200000 bytes") != NULL, "%s", r.body);
    response_free(&r);
    close(fd);
    stop(&server, 1000);
}
END_TEST

/* ---- A full queue, failures ---------------------------------------------------------- */

START_TEST(test_queue_full)
{
    app_server server;
    csgi_threadpool_options options = CSGI_THREADPOOL_OPTIONS_INIT;
    options.threads = 1;
    options.queue = 1;
    options.retry_after = 7;
    serve(&server, pooled_beside_hello(&gate_type, &options), 1);
    int running = ask(server.port, "/pool");
    ck_assert(wait_for(&gate_calls, 1, 5000));
    int queued = ask(server.port, "/pool");
    ck_assert(wait_for(&pooled_calls, 2, 5000)); /* in the pool's queue */

    /* One thread busy, one request waiting: the next one is refused, at once. */
    long asked = now_ms();
    test_response r;
    get(server.port, "/pool", &r, 5000);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(response_header(&r, "Retry-After"), "7");
    ck_assert_msg(now_ms() - asked < 2000, "the 503 took %ld ms", now_ms() - asked);
    response_free(&r);
    ck_assert(log_has("threadpool: 503: 1 threads busy, 1 requests waiting", 2000));
    hello_answers(server.port); /* hello is not behind the pool */

    atomic_store(&gate_open, 1);
    expect(running, 200, NULL);
    expect(queued, 200, "opened\n");
    close(running);
    close(queued);
    ck_assert_int_eq(atomic_load(&gate_calls), 2);
    stop(&server, 1000);
}
END_TEST

START_TEST(test_no_queue)
{
    app_server server;
    csgi_threadpool_options options = CSGI_THREADPOOL_OPTIONS_INIT;
    options.threads = 1;
    options.queue = CSGI_THREADPOOL_NO_QUEUE;
    serve(&server, pooled_beside_hello(&gate_type, &options), 1);
    int running = ask(server.port, "/pool");
    ck_assert(wait_for(&gate_calls, 1, 5000));
    test_response r;
    get(server.port, "/pool", &r, 5000);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(response_header(&r, "Retry-After"), "1");
    response_free(&r);
    atomic_store(&gate_open, 1);
    expect(running, 200, NULL);
    close(running);
    stop(&server, 1000);
}
END_TEST

START_TEST(test_failures)
{
    app_server server;
    serve(&server, pooled_beside_hello(&fail_type, NULL), 1);
    test_response r;
    get(server.port, "/pool/null", &r, 5000);
    ck_assert_int_eq(r.status, 500);
    response_free(&r);
    ck_assert(log_has("failing: the application failed (returned no body)", 2000));

    get(server.port, "/pool/twice", &r, 5000);
    ck_assert_int_eq(r.status, 500);
    response_free(&r);
    ck_assert(log_has("start-response called twice without exc_info", 2000));

    get(server.port, "/pool/waiting", &r, 5000);
    ck_assert_int_eq(r.status, 500);
    response_free(&r);
    ck_assert(log_has("CSGI_EAGAIN on a pool thread", 2000));

    /* A body that fails after its first piece: the response is cut (what
       was queued for the client may go with it). */
    int fd = ask(server.port, "/pool/broken");
    char buf[4096];
    int eof = 0;
    client_read(fd, buf, sizeof(buf), 5000, NULL, &eof);
    ck_assert(eof);
    ck_assert_ptr_null(strstr(buf, "500"));
    ck_assert_ptr_null(strstr(buf, "\r\n0\r\n\r\n")); /* no last chunk */
    close(fd);
    ck_assert(log_has("failing: the response body failed: ", 2000));

    hello_answers(server.port); /* the server goes on */
    stop(&server, 1000);
}
END_TEST

/* ---- Clients that leave, stopping -------------------------------------------------------- */

START_TEST(test_client_leaves_while_running)
{
    app_server server;
    serve(&server, pooled_beside_hello(&stream_type, NULL), 1);
    int fd = ask(server.port, "/pool?ms=500&bytes=10000000");
    ck_assert(wait_for(&stream_calls, 1, 5000)); /* on its thread, asleep */
    reset(fd);
    /* The thread finds out at its first piece: its body is closed, what it
       did is thrown away. */
    ck_assert_msg(wait_for(&stream_closes, 1, 5000), "the body was not closed");
    ck_assert_msg(atomic_load(&produced) < 1000000, "%ld bytes produced after the client left",
                  atomic_load(&produced));
    hello_answers(server.port);
    stop(&server, 1000);
}
END_TEST

START_TEST(test_client_leaves_while_queued)
{
    app_server server;
    csgi_threadpool_options options = CSGI_THREADPOOL_OPTIONS_INIT;
    options.threads = 1;
    serve(&server, pooled_beside_hello(&gate_type, &options), 1);
    int running = ask(server.port, "/pool");
    ck_assert(wait_for(&gate_calls, 1, 5000));
    int queued = ask(server.port, "/pool");
    ck_assert(wait_for(&pooled_calls, 2, 5000)); /* in the pool's queue */
    reset(queued);
    sleep_ms(200);
    atomic_store(&gate_open, 1);
    expect(running, 200, NULL);
    close(running);
    /* The request that left never ran. */
    sleep_ms(300);
    ck_assert_int_eq(atomic_load(&gate_calls), 1);
    stop(&server, 1000);
}
END_TEST

START_TEST(test_graceful_stop_waits)
{
    app_server server;
    serve(&server, pooled_beside_hello(&sleep_type, NULL), 2);
    int fd = ask(server.port, "/pool?ms=1000");
    ck_assert(wait_for(&sleeping, 1, 5000));
    long asked = now_ms();
    csgi_server_stop(server.server, 10000);
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 10000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "slept\n");
    ck_assert_ptr_nonnull(strstr(r.headers, "Connection: close"));
    response_free(&r);
    close(fd);
    pthread_join(server.thread, NULL);
    ck_assert_msg(now_ms() - asked < 5000, "stopping took %ld ms", now_ms() - asked);
    csgi_server_free(server.server);
}
END_TEST

START_TEST(test_free_waits_for_threads)
{
    app_server server;
    serve(&server, pooled_beside_hello(&stream_type, NULL), 1);
    int fd = ask(server.port, "/pool?ms=800&bytes=1000");
    ck_assert(wait_for(&stream_calls, 1, 5000)); /* on its thread, asleep */
    /* No grace: the request is cut while its thread sleeps; freeing the
       server waits for the thread, which finds its client gone. */
    csgi_server_stop(server.server, 0);
    pthread_join(server.thread, NULL);
    ck_assert_int_eq(atomic_load(&stream_closes), 0);
    csgi_server_free(server.server);
    ck_assert_int_eq(atomic_load(&stream_closes), 1);
    close(fd);
}
END_TEST

/* ---- On the thread: the environ, the log, the test client -------------------------------- */

static csgi_body *environ_call(void *state, csgi_environ *environ,
                               csgi_start_response *start_response)
{
    (void)state;
    int64_t multithread = -1;
    csgi_environ_get_int(environ, "csgi.multithread", &multithread);
    const char *front = csgi_environ_get(environ, "test.front");
    csgi_environ_log(environ, "logged on the thread");
    char text[256];
    int n = snprintf(text, sizeof(text), "loop=%s multithread=%lld front=%s path=%s",
                     csgi_environ_event_base(environ) ? "yes" : "none", (long long)multithread,
                     front ? front : "-", csgi_environ_get(environ, "PATH_INFO"));
    if (csgi_start_response_call(start_response, "200 OK", text_headers, 1, NULL) != 0)
        return NULL;
    if (csgi_start_response_write(start_response, "x", 1) != CSGI_ESTATE)
        return NULL;
    csgi_environ_set(environ, "test.behind", "set behind");
    return csgi_body_bytes(environ, text, (size_t)n);
}

static const csgi_app_type environ_type = {"environ", environ_call, NULL};

START_TEST(test_environ_on_the_thread)
{
    app_server server;
    serve(&server, pooled_beside_hello(&environ_type, NULL), 1);
    test_response r;
    get(server.port, "/pool/x", &r, 5000);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "loop=none multithread=1 front=set in front path=/x");
    ck_assert_str_eq(response_header(&r, "Content-Length"), "50");
    response_free(&r);
    ck_assert(log_has("GET /pool/x (client 127.0.0.1:", 2000));
    ck_assert(log_has("logged on the thread", 2000));
    stop(&server, 1000);

    /* The in-process test client runs the same, on its own loop. */
    csgi_app *app = pooled_beside_hello(&environ_type, NULL);
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_get(&response, app, "/pool/y"), 0);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(csgi_test_response_body(response, NULL),
                     "loop=none multithread=1 front=set in front path=/y");
    ck_assert(csgi_test_response_log_contains(response, "logged on the thread"));
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_test_client_gives_up)
{
    /* The test client's time runs out while the thread sleeps: the run
       ends after the thread let go of the request. */
    csgi_app *app = pooled_beside_hello(&sleep_type, NULL);
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "/pool?ms=600"), 0);
    csgi_test_request_set_timeout(request, 100);
    csgi_test_response *response = NULL;
    long start = now_ms();
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), CSGI_ETIMEDOUT);
    ck_assert_int_ge(now_ms() - start, 500);
    ck_assert_int_eq(atomic_load(&slept), 1);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_bad_arguments)
{
    csgi_app *out = NULL;
    ck_assert_int_eq(csgi_threadpool_new(&out, NULL, NULL), CSGI_EINVAL);
    ck_assert_int_eq(csgi_threadpool_new(NULL, hello_app(), NULL), CSGI_EINVAL);
    csgi_threadpool_options options = CSGI_THREADPOOL_OPTIONS_INIT;
    options.version = CSGI_THREADPOOL_OPTIONS_VERSION + 1;
    ck_assert_int_eq(csgi_threadpool_new(&out, hello_app(), &options), CSGI_EINVAL);
    options.version = CSGI_THREADPOOL_OPTIONS_VERSION;
    options.threads = CSGI_THREADPOOL_THREADS_MAX + 1;
    ck_assert_int_eq(csgi_threadpool_new(&out, hello_app(), &options), CSGI_EINVAL);
    ck_assert_ptr_null(out);
    /* Never called: no thread was started, freeing joins none. */
    ck_assert_int_eq(csgi_threadpool_new(&out, hello_app(), NULL), 0);
    csgi_app_free(out);
}
END_TEST

/* ---- Deploy files ------------------------------------------------------------------------ */

/* Load text (as NAME.ini) and expect an error containing want. */
static void load_fails(const char *text, const char *want)
{
    csgi_loader *loader = test_loader();
    char message[1024];
    const char *path = test_write_file("bad.ini", text);
    test_load_fails(loader, path, message, sizeof(message));
    ck_assert_msg(strstr(message, want) != NULL, "%s\nwithout: %s", message, want);
    csgi_loader_free(loader);
}

START_TEST(test_deploy_file)
{
    csgi_loader *loader = test_loader();
    const char *path = test_write_file("pool.ini", "[pipeline:main]\n"
                                                   "pipeline = pool sleep\n"
                                                   "\n"
                                                   "[filter:pool]\n"
                                                   "use = egg:csgi#threadpool\n"
                                                   "threads = 3\n"
                                                   "queue = 0\n"
                                                   "retry_after = 30\n"
                                                   "client_max_body_size = 1m\n"
                                                   "client_body_buffer_size = 4k\n"
                                                   "\n"
                                                   "[app:sleep]\n"
                                                   "use = egg:test#sleep\n"
                                                   "\n"
                                                   "[app:marked]\n"
                                                   "use = egg:test#sleep\n"
                                                   "blocking = true\n"
                                                   "\n"
                                                   "[app:unmarked]\n"
                                                   "use = egg:test#sleep\n"
                                                   "blocking = no\n"
                                                   "\n"
                                                   "[pipeline:filtered]\n"
                                                   "pipeline = marked_filter hello\n"
                                                   "\n"
                                                   "[filter:marked_filter]\n"
                                                   "use = egg:csgi#error_format\n"
                                                   "format = json\n"
                                                   "blocking = on\n"
                                                   "\n"
                                                   "[app:hello]\n"
                                                   "use = egg:test#hello\n");
    char uri[600];
    csgi_app *app = test_load(loader, path);
    ck_assert_str_eq(csgi_app_name(app), "threadpool");
    /* Through the test client: the pool's thread sleeps and answers. */
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_get(&response, app, "/?ms=10"), 0);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(csgi_test_response_body(response, NULL), "slept\n");
    csgi_test_response_free(response);
    csgi_app_free(app);

    snprintf(uri, sizeof(uri), "%s#marked", path);
    app = test_load(loader, uri);
    ck_assert_str_eq(csgi_app_name(app), "threadpool");
    csgi_app_free(app);
    snprintf(uri, sizeof(uri), "%s#unmarked", path);
    app = test_load(loader, uri);
    ck_assert_str_eq(csgi_app_name(app), "sleep");
    csgi_app_free(app);
    snprintf(uri, sizeof(uri), "%s#filtered", path);
    app = test_load(loader, uri);
    ck_assert_str_eq(csgi_app_name(app), "threadpool");
    csgi_app_free(app);

    /* csgi-serve --check says which sections block. */
    const char *description = NULL;
    snprintf(uri, sizeof(uri), "%s#marked", path);
    ck_assert_int_eq(csgi_loader_describe(&description, loader, uri, 0, NULL), 0);
    ck_assert_msg(strstr(description, "[app:marked] app use = egg:test#sleep blocking = true") !=
                      NULL,
                  "%s", description);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(test_deploy_file_errors)
{
    static const char head[] = "[pipeline:main]\n"
                               "pipeline = pool sleep\n"
                               "\n"
                               "[app:sleep]\n"
                               "use = egg:test#sleep\n"
                               "\n"
                               "[filter:pool]\n"
                               "use = egg:csgi#threadpool\n";
    char text[1024];
    snprintf(text, sizeof(text), "%sthreads = 0\n", head);
    load_fails(text, "bad.ini:9: [filter:pool] threads: must be a number of threads from 1 to "
                     "1024, not 0");
    snprintf(text, sizeof(text), "%sthreads = many\n", head);
    load_fails(text, "bad.ini:9: [filter:pool] threads: not an integer: 'many'");
    snprintf(text, sizeof(text), "%squeue = -1\n", head);
    load_fails(text, "bad.ini:9: [filter:pool] queue: must be a number of requests from 0 to");
    snprintf(text, sizeof(text), "%sretry_after = 0\n", head);
    load_fails(text, "bad.ini:9: [filter:pool] retry_after: must be a number of seconds from 1 "
                     "to 86400, not 0");
    snprintf(text, sizeof(text), "%sclient_max_body_size = lots\n", head);
    load_fails(text, "bad.ini:9: [filter:pool] client_max_body_size: must be a size in bytes");
    snprintf(text, sizeof(text), "%sthreds = 4\n", head);
    load_fails(text, "bad.ini:9: [filter:pool] threds: unknown key for egg:csgi#threadpool "
                     "(known: threads, queue, retry_after,");
    load_fails("[app:main]\nuse = egg:test#sleep\nblocking = maybe\n",
               "bad.ini:3: [app:main] blocking: not a boolean: 'maybe'");
    load_fails("[pipeline:main]\npipeline = sleep\nblocking = true\n"
               "\n[app:sleep]\nuse = egg:test#sleep\n",
               "bad.ini:3: [pipeline:main] blocking: a pipeline section holds only 'pipeline'");
}
END_TEST

/* Each test starts from zero, forked or not (CK_FORK=no). */
static void zero_counters(void)
{
    atomic_store(&sleeping, 0);
    atomic_store(&most_sleeping, 0);
    atomic_store(&slept, 0);
    atomic_store(&sleep_calls, 0);
    atomic_store(&gate_open, 0);
    atomic_store(&gate_calls, 0);
    atomic_store(&produced, 0);
    atomic_store(&stream_calls, 0);
    atomic_store(&stream_closes, 0);
    atomic_store(&pooled_calls, 0);
    pthread_mutex_lock(&log_lock);
    log_text[0] = '\0';
    pthread_mutex_unlock(&log_lock);
}

static Suite *threadpool_suite(void)
{
    Suite *suite = suite_create("threadpool");
    TCase *tc = tcase_create("threadpool");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, zero_counters, NULL);
    tcase_add_test(tc, test_sleepers_beside_hello);
    tcase_add_test(tc, test_streamed_body);
    tcase_add_test(tc, test_backpressure);
    tcase_add_test(tc, test_request_body);
    tcase_add_test(tc, test_queue_full);
    tcase_add_test(tc, test_no_queue);
    tcase_add_test(tc, test_failures);
    tcase_add_test(tc, test_client_leaves_while_running);
    tcase_add_test(tc, test_client_leaves_while_queued);
    tcase_add_test(tc, test_graceful_stop_waits);
    tcase_add_test(tc, test_free_waits_for_threads);
    tcase_add_test(tc, test_environ_on_the_thread);
    tcase_add_test(tc, test_test_client_gives_up);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_deploy_file);
    tcase_add_test(tc, test_deploy_file_errors);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(threadpool_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
