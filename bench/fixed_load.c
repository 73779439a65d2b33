/*
 * Send an exact number of keep-alive requests (GET, or POST with -d), for
 * the callgrind measurements in bench/run.sh (wrk runs for a duration, not
 * a count).
 *
 *   fixed_load [-H "Name: value"]... [-s STATUS] [-b BODY] [-p PATH] [-d DATA [-t TYPE]]
 *              PORT CONNECTIONS REQUESTS [TIMEOUT_SECONDS]
 *
 * Opens CONNECTIONS connections to 127.0.0.1:PORT and spreads REQUESTS
 * over them; each connection sends its next request when the previous
 * response has arrived (sequential keep-alive, no pipelining), like wrk.
 * -H adds a header field to every request, as wrk -H does (repeatable);
 * -p requests PATH instead of "/". -d sends POST requests with DATA as
 * their body, framed by a Content-Length and written with the head in one
 * write (bench/handler.sh); -t gives them "Content-Type: TYPE".
 * Every response must have status STATUS (default 200) and a
 * Content-Length, and with -b a body of exactly BODY. A connection the server closes ("Connection:
 * close", e.g. a keep-alive request limit) is reopened and counted. Exits 0 when all responses
 * arrived, 1 on any error or when TIMEOUT_SECONDS (default 300) pass.
 */
#include "client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUFFER_SIZE 16384

typedef struct connection {
    int fd;
    unsigned long quota; /* requests this connection still has to send */
    int in_flight;       /* a request was sent, its response is awaited */
    size_t used;         /* bytes in buf */
    char buf[BUFFER_SIZE];
} connection;

static const char *host = "127.0.0.1";
static int port;
static char request[8192]; /* room for 50 browser-like header fields */
static int expected_status = 200;
static const char *expected_body; /* NULL: any */
static size_t request_len;
static unsigned long reconnects;

static int send_request(connection *c)
{
    size_t off = 0;
    while (off < request_len) {
        ssize_t n = write(c->fd, request + off, request_len - off);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* A fresh keep-alive socket always takes ~60 bytes; wait anyway. */
            struct pollfd p = {c->fd, POLLOUT, 0};
            if (poll(&p, 1, 10000) <= 0)
                return -1;
        } else {
            return -1;
        }
    }
    c->quota--;
    c->in_flight = 1;
    return 0;
}

static int open_connection(connection *c)
{
    c->fd = bench_connect(host, port, 1);
    c->used = 0;
    c->in_flight = 0;
    if (c->fd < 0) {
        fprintf(stderr, "fixed_load: connect to %s:%d: %s\n", host, port, strerror(errno));
        return -1;
    }
    return 0;
}

/* Read what arrived on c and consume complete responses. Returns the number
   of responses completed, or -1 on an error. */
static long on_readable(connection *c)
{
    ssize_t n = read(c->fd, c->buf + c->used, sizeof(c->buf) - c->used);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (n <= 0) {
        fprintf(stderr, "fixed_load: connection closed with a request in flight: %s\n",
                n < 0 ? strerror(errno) : "end of stream");
        return -1;
    }
    c->used += (size_t)n;

    long completed = 0;
    for (;;) {
        int status = 0, closing = 0;
        ssize_t len = bench_response_length(c->buf, c->used, &status, &closing);
        if (len < 0) {
            fprintf(stderr, "fixed_load: malformed response\n");
            return -1;
        }
        if (len == 0)
            return completed;
        if (status != expected_status) {
            fprintf(stderr, "fixed_load: response status %d, expected %d\n", status,
                    expected_status);
            return -1;
        }
        if (expected_body) {
            /* The body is the last bytes of the response, right after the head. */
            size_t blen = strlen(expected_body);
            if ((size_t)len < blen + 4 || memcmp(c->buf + len - blen - 4, "\r\n\r\n", 4) != 0 ||
                memcmp(c->buf + len - blen, expected_body, blen) != 0) {
                fprintf(stderr, "fixed_load: unexpected response body: %.*s\n", (int)len, c->buf);
                return -1;
            }
        }
        if (!c->in_flight) {
            fprintf(stderr, "fixed_load: response without a request\n");
            return -1;
        }
        completed++;
        c->in_flight = 0;
        memmove(c->buf, c->buf + len, c->used - (size_t)len);
        c->used -= (size_t)len;

        if (closing) {
            close(c->fd);
            c->fd = -1;
            if (c->quota == 0)
                return completed;
            reconnects++;
            if (open_connection(c) != 0)
                return -1;
        }
        if (c->quota > 0 && send_request(c) != 0) {
            fprintf(stderr, "fixed_load: write: %s\n", strerror(errno));
            return -1;
        }
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: fixed_load [-H \"Name: value\"]... [-s STATUS] [-b BODY] [-p PATH] "
                    "[-d DATA [-t TYPE]] PORT CONNECTIONS REQUESTS [TIMEOUT_SECONDS]\n");
    return 2;
}

int main(int argc, char **argv)
{
    char *extra = NULL;
    int opt;
    const char *path = "/", *data = NULL, *type = NULL;
    while ((opt = getopt(argc, argv, "+H:s:b:p:d:t:")) != -1) {
        if (opt == 'H' && bench_add_header(&extra, optarg) == 0)
            continue;
        if (opt == 'p') {
            path = optarg;
            continue;
        }
        if (opt == 'd') {
            data = optarg;
            continue;
        }
        if (opt == 't') {
            type = optarg;
            continue;
        }
        if (opt == 'b') {
            expected_body = optarg;
            continue;
        }
        if (opt == 's' && (expected_status = atoi(optarg)) >= 100 && expected_status <= 999)
            continue;
        if (opt == 'H' || opt == 's')
            fprintf(stderr, "fixed_load: bad -%c %s\n", opt, optarg);
        return usage();
    }
    argc -= optind;
    argv += optind;
    if (argc < 3 || (type && !data))
        return usage();
    port = atoi(argv[0]);
    unsigned long count = strtoul(argv[1], NULL, 10);
    unsigned long total = strtoul(argv[2], NULL, 10);
    double timeout = argc > 3 ? atof(argv[3]) : 300;
    if (port <= 0 || count == 0 || total == 0) {
        fprintf(stderr, "fixed_load: bad arguments\n");
        return 2;
    }
    if (count > total)
        count = total;
    if (data) {
        size_t data_len = strlen(data);
        request_len = bench_post_head(request, sizeof(request), host, port, path, extra, type,
                                      (long long)data_len);
        if (request_len && data_len < sizeof(request) - request_len) {
            memcpy(request + request_len, data, data_len);
            request_len += data_len;
        } else {
            request_len = 0;
        }
    } else {
        request_len = bench_request(request, sizeof(request), host, port, path, extra);
    }
    free(extra);
    if (request_len == 0) {
        fprintf(stderr, "fixed_load: the request does not fit in %zu bytes\n", sizeof(request));
        return 2;
    }

    connection *conns = calloc(count, sizeof(*conns));
    struct pollfd *fds = calloc(count, sizeof(*fds));
    if (!conns || !fds)
        return 1;
    double start = bench_now();
    for (unsigned long i = 0; i < count; i++) {
        conns[i].quota = total / count + (i < total % count);
        if (open_connection(&conns[i]) != 0 || send_request(&conns[i]) != 0)
            return 1;
    }

    unsigned long done = 0;
    while (done < total) {
        double left = start + timeout - bench_now();
        if (left <= 0) {
            fprintf(stderr, "fixed_load: timed out after %lu of %lu responses\n", done, total);
            return 1;
        }
        for (unsigned long i = 0; i < count; i++) {
            fds[i].fd = conns[i].in_flight ? conns[i].fd : -1;
            fds[i].events = POLLIN;
            fds[i].revents = 0;
        }
        int ready = poll(fds, count, left > 1 ? 1000 : (int)(left * 1000) + 1);
        if (ready < 0 && errno != EINTR) {
            perror("fixed_load: poll");
            return 1;
        }
        for (unsigned long i = 0; ready > 0 && i < count; i++) {
            if (!fds[i].revents)
                continue;
            long completed = on_readable(&conns[i]);
            if (completed < 0)
                return 1;
            done += (unsigned long)completed;
        }
    }
    double elapsed = bench_now() - start;

    for (unsigned long i = 0; i < count; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    printf("fixed_load: %lu responses on %lu connections (%lu reopened) in %.3f s\n", done, count,
           reconnects, elapsed);
    free(conns);
    free(fds);
    return 0;
}
