/*
 * Measure what an idle keep-alive connection, or a request waiting for
 * the rest of its body, costs a server in memory.
 *
 *   idle_conns [-H "Name: value"]... [-b LENGTH:SENT | -w] PORT PID COUNT
 *
 * -H adds a header field to every request, as wrk -H does. PID is the
 * server's process (its /proc/PID/status is read). First a few connections
 * make one request each and close, so buffers allocated on first use are
 * already in the baseline (read once the server's count of descriptors is
 * steady again). Then COUNT connections are opened in four steps; each
 * sends one keep-alive request and reads the complete response, then stays
 * open and silent. After each step the server's RssAnon (anonymous memory:
 * heap and mmap'd allocations, where connection state lives) and VmRSS are
 * read.
 *
 * -b LENGTH:SENT measures requests in flight instead (bench/handler.sh):
 * each of the COUNT connections sends a POST with "Content-Length: LENGTH"
 * and only the first SENT bytes of its body (SENT < LENGTH, head and
 * bytes in one write), then stays silent while the server waits for the
 * rest. The warm-up requests send their whole bodies and read their
 * answers. After the last reading every connection sends the rest of its
 * body, and each must then be answered 200: the requests were alive.
 *
 * Prints one line per step and a final line for bench/run.sh:
 *   idle_conns: count=N anon_per_conn=B rss_per_conn=B slope_per_conn=B fds=+N
 * where *_per_conn is (after - before) / COUNT and slope_per_conn the
 * growth from the first to the last step divided by the connections added
 * in between (it leaves out one-time growth). The kernel's socket buffers
 * are not in any of these: they are not process memory.
 *
 * -w holds the idle connections open for another load (bench/peers.sh
 * idlegrowth: instructions per request beside COUNT idle connections):
 * after the final line it checks that the server holds COUNT more
 * descriptors (else it exits 1 at once), prints
 *   idle_conns: holding N
 * and waits until its standard input reaches end of file (the caller closes
 * the pipe or FIFO it gave, or exits) or SIGTERM or SIGINT arrives. Then it
 * checks that no connection was closed by the server meanwhile (nothing to
 * read on any of them), prints
 *   idle_conns: released N, all open
 * (or how many the server closed, and exits 1), closes them and exits 0.
 * Not with -b.
 */
#include "client.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define STEPS  4
#define BATCH  64
#define WARMUP 32

static const char *host = "127.0.0.1";
static int port;
/* The request: the GET, or with -b the POST's head and its whole body. */
static char *request;
static size_t request_len;
/* With -b: the bytes a request in flight sends first (the rest later). */
static size_t first_len;
static int in_flight;
/* With -w: set by SIGTERM or SIGINT. */
static volatile sig_atomic_t released;

/* The number of descriptors the process holds, or -1. */
static long open_fds(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", pid);
    return bench_count_entries(path);
}

static void settle(void)
{
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "idle_conns: write: %s\n", n < 0 ? strerror(errno) : "no progress");
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read connection i's complete response, which must be a keep-alive 200.
   Returns 0 or -1. */
static int read_response(int fd, size_t i)
{
    char buf[4096];
    size_t used = 0;
    for (;;) {
        ssize_t r = read(fd, buf + used, sizeof(buf) - used);
        if (r <= 0) {
            fprintf(stderr, "idle_conns: connection %zu: %s\n", i,
                    r < 0 ? strerror(errno) : "closed by the server");
            return -1;
        }
        used += (size_t)r;
        int status = 0, closing = 0;
        ssize_t len = bench_response_length(buf, used, &status, &closing);
        if (len < 0 || (len > 0 && (status != 200 || closing))) {
            fprintf(stderr, "idle_conns: unexpected response (status %d%s)\n", status,
                    closing ? ", closing" : "");
            return -1;
        }
        if (len > 0)
            return 0;
    }
}

/* Open n connections into fds[0..n), in batches: connect, send one request
   on each (only its first part when it stays in flight), then read each
   response completely. Returns 0 or -1. */
static int open_idle(int *fds, size_t n, int stay_in_flight)
{
    size_t len = stay_in_flight ? first_len : request_len;
    for (size_t first = 0; first < n; first += BATCH) {
        size_t last = first + BATCH < n ? first + BATCH : n;
        for (size_t i = first; i < last; i++) {
            fds[i] = bench_connect(host, port, 0);
            if (fds[i] < 0) {
                fprintf(stderr, "idle_conns: connection %zu: %s\n", i, strerror(errno));
                return -1;
            }
            struct timeval tv = {10, 0};
            setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            if (write_all(fds[i], request, len) != 0)
                return -1;
        }
        for (size_t i = first; !stay_in_flight && i < last; i++)
            if (read_response(fds[i], i) != 0)
                return -1;
    }
    return 0;
}

static void on_release(int signal_number)
{
    (void)signal_number;
    released = 1;
}

/* -w: wait until standard input reaches end of file, or SIGTERM or SIGINT.
   The handlers are installed without SA_RESTART, so a signal interrupts the
   read. */
static void hold(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = on_release;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    char buf[256];
    while (!released) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
        if (n == 0 || (n < 0 && errno != EINTR))
            break;
    }
}

/* The number of fds[0..n) the server has closed, or that have anything to
   read: an idle connection the server still holds has neither. */
static size_t count_closed(const int *fds, size_t n)
{
    size_t closed = 0;
    for (size_t i = 0; i < n; i++) {
        struct pollfd p = {fds[i], POLLIN | POLLRDHUP, 0};
        if (poll(&p, 1, 0) != 0)
            closed++;
    }
    return closed;
}

/* -b LENGTH:SENT: the POST and its body into request. Returns 0 or -1. */
static int make_post(const char *spec, const char *extra)
{
    char *end;
    unsigned long long length = strtoull(spec, &end, 10), sent = 0;
    if (end == spec || *end != ':' || !end[1])
        return -1;
    const char *at = end + 1;
    sent = strtoull(at, &end, 10);
    if (*end || sent == 0 || sent >= length || length > 64 * 1024 * 1024)
        return -1;
    char head[2048];
    size_t head_len =
        bench_post_head(head, sizeof(head), host, port, "/", extra, NULL, (long long)length);
    if (head_len == 0 || !(request = malloc(head_len + length)))
        return -1;
    memcpy(request, head, head_len);
    memset(request + head_len, 'x', length);
    request_len = head_len + length;
    first_len = head_len + sent;
    in_flight = 1;
    return 0;
}

int main(int argc, char **argv)
{
    char *extra = NULL;
    const char *post = NULL;
    int opt, bad = 0, holding = 0;
    while (!bad && (opt = getopt(argc, argv, "+H:b:w")) != -1) {
        if (opt == 'b') {
            post = optarg;
            continue;
        }
        if (opt == 'w') {
            holding = 1;
            continue;
        }
        bad = opt != 'H' || bench_add_header(&extra, optarg) != 0;
        if (bad && opt == 'H')
            fprintf(stderr, "idle_conns: bad -H %s\n", optarg);
    }
    if (bad || argc - optind != 3 || (holding && post)) {
        fprintf(stderr, "usage: idle_conns [-H \"Name: value\"]... [-b LENGTH:SENT | -w] PORT PID "
                        "COUNT\n");
        return 2;
    }
    argv += optind;
    port = atoi(argv[0]);
    int pid = atoi(argv[1]);
    size_t count = strtoul(argv[2], NULL, 10);
    if (port <= 0 || pid <= 0 || count < STEPS) {
        fprintf(stderr, "idle_conns: bad arguments\n");
        return 2;
    }
    if (post) {
        if (make_post(post, extra) != 0) {
            fprintf(stderr, "idle_conns: bad -b %s (LENGTH:SENT, 0 < SENT < LENGTH)\n", post);
            return 2;
        }
    } else {
        static char get[2048];
        request = get;
        request_len = bench_request(get, sizeof(get), host, port, "/", extra);
        if (request_len == 0) {
            fprintf(stderr, "idle_conns: the request does not fit in %zu bytes\n", sizeof(get));
            return 2;
        }
    }
    free(extra);
    const char *what = in_flight ? "in flight" : "idle";
    /* Room for the warm-up's connections too, when COUNT is fewer. */
    int *fds = calloc(count > WARMUP ? count : WARMUP, sizeof(*fds));
    if (!fds)
        return 1;

    /* Warm up: first-use allocations belong to the baseline. */
    if (open_idle(fds, WARMUP, 0) != 0)
        return 1;
    for (size_t i = 0; i < WARMUP; i++)
        close(fds[i]);
    /* The baseline once the server has closed its ends: a slow server (one
       under valgrind) may take longer than one settle() to see them go. */
    long steady = open_fds(pid), now;
    for (int tries = 0; tries < 30; tries++, steady = now) {
        settle();
        if ((now = open_fds(pid)) == steady)
            break;
    }

    long anon0 = bench_status_kb(pid, "RssAnon"), rss0 = bench_status_kb(pid, "VmRSS");
    long fds0 = open_fds(pid);
    if (anon0 < 0 || rss0 < 0) {
        fprintf(stderr, "idle_conns: cannot read /proc/%d/status\n", pid);
        return 1;
    }
    printf("idle_conns: %6zu %s: RssAnon %7ld kB  VmRSS %7ld kB  fds %ld\n", (size_t)0, what, anon0,
           rss0, fds0);

    size_t opened = 0, first_step = 0;
    long anon_first = 0, anon = anon0, rss = rss0;
    for (int step = 1; step <= STEPS; step++) {
        size_t target = count * (size_t)step / STEPS;
        if (open_idle(fds + opened, target - opened, in_flight) != 0)
            return 1;
        opened = target;
        settle();
        anon = bench_status_kb(pid, "RssAnon");
        rss = bench_status_kb(pid, "VmRSS");
        printf("idle_conns: %6zu %s: RssAnon %7ld kB  VmRSS %7ld kB  fds %ld\n", opened, what, anon,
               rss, open_fds(pid));
        if (step == 1) {
            first_step = opened;
            anon_first = anon;
        }
    }
    long fds1 = open_fds(pid);

    double anon_per = (double)(anon - anon0) * 1024 / (double)count;
    double rss_per = (double)(rss - rss0) * 1024 / (double)count;
    double slope = (double)(anon - anon_first) * 1024 / (double)(count - first_step);
    printf("idle_conns: count=%zu anon_per_conn=%.0f rss_per_conn=%.0f slope_per_conn=%.0f "
           "fds=+%ld\n",
           count, anon_per, rss_per, slope, fds1 - fds0);
    int failed = 0;
    for (size_t i = 0; in_flight && !failed && i < opened; i++)
        failed = write_all(fds[i], request + first_len, request_len - first_len) != 0 ||
                 read_response(fds[i], i) != 0;
    if (in_flight && !failed)
        printf("idle_conns: the %zu requests in flight were answered 200 once complete\n", opened);
    if (holding && fds1 - fds0 != (long)count) {
        fprintf(stderr, "idle_conns: the server holds %ld descriptors more, not %zu\n", fds1 - fds0,
                count);
        failed = 1;
    } else if (holding) {
        printf("idle_conns: holding %zu\n", opened);
        fflush(stdout);
        hold();
        size_t closed = count_closed(fds, opened);
        if (closed)
            printf("idle_conns: released %zu, %zu of them closed by the server\n", opened, closed);
        else
            printf("idle_conns: released %zu, all open\n", opened);
        failed = closed != 0;
    }
    for (size_t i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
    if (in_flight)
        free(request);
    /* All connections must have stayed open on the server's side too. */
    return !failed && fds1 - fds0 == (long)count ? 0 : 1;
}
