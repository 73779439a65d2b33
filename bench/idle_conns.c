/*
 * Measure what an idle keep-alive connection costs a server in memory.
 *
 *   idle_conns [-H "Name: value"]... PORT PID COUNT
 *
 * -H adds a header field to every request, as wrk -H does. PID is the
 * server's process (its /proc/PID/status is read). First a few connections
 * make one request each and close, so buffers allocated on first use are
 * already in the baseline. Then COUNT connections are opened
 * in four steps; each sends one keep-alive request and reads the complete
 * response, then stays open and silent. After each step the server's
 * RssAnon (anonymous memory: heap and mmap'd allocations, where connection
 * state lives) and VmRSS are read.
 *
 * Prints one line per step and a final line for bench/run.sh:
 *   idle_conns: count=N anon_per_conn=B rss_per_conn=B slope_per_conn=B fds=+N
 * where *_per_conn is (after - before) / COUNT and slope_per_conn the
 * growth from the first to the last step divided by the connections added
 * in between (it leaves out one-time growth). The kernel's socket buffers
 * are not in any of these: they are not process memory.
 */
#include "client.h"

#include <dirent.h>
#include <errno.h>
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
static char request[2048];
static size_t request_len;

static long open_fds(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void settle(void)
{
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* Open n connections into fds[0..n), in batches: connect, send one request
   on each, then read each response completely. Returns 0 or -1. */
static int open_idle(int *fds, size_t n)
{
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
            if (write(fds[i], request, request_len) != (ssize_t)request_len) {
                fprintf(stderr, "idle_conns: write: %s\n", strerror(errno));
                return -1;
            }
        }
        for (size_t i = first; i < last; i++) {
            char buf[4096];
            size_t used = 0;
            for (;;) {
                ssize_t r = read(fds[i], buf + used, sizeof(buf) - used);
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
                    break;
            }
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    char *extra = NULL;
    int opt, bad = 0;
    while (!bad && (opt = getopt(argc, argv, "+H:")) != -1) {
        bad = opt != 'H' || bench_add_header(&extra, optarg) != 0;
        if (bad && opt == 'H')
            fprintf(stderr, "idle_conns: bad -H %s\n", optarg);
    }
    if (bad || argc - optind != 3) {
        fprintf(stderr, "usage: idle_conns [-H \"Name: value\"]... PORT PID COUNT\n");
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
    request_len = bench_request(request, sizeof(request), host, port, "/", extra);
    free(extra);
    if (request_len == 0) {
        fprintf(stderr, "idle_conns: the request does not fit in %zu bytes\n", sizeof(request));
        return 2;
    }
    int *fds = calloc(count, sizeof(*fds));
    if (!fds)
        return 1;

    /* Warm up: first-use allocations belong to the baseline. */
    if (open_idle(fds, WARMUP) != 0)
        return 1;
    for (size_t i = 0; i < WARMUP; i++)
        close(fds[i]);
    settle();

    long anon0 = bench_status_kb(pid, "RssAnon"), rss0 = bench_status_kb(pid, "VmRSS");
    long fds0 = open_fds(pid);
    if (anon0 < 0 || rss0 < 0) {
        fprintf(stderr, "idle_conns: cannot read /proc/%d/status\n", pid);
        return 1;
    }
    printf("idle_conns: %6zu idle: RssAnon %7ld kB  VmRSS %7ld kB  fds %ld\n", (size_t)0, anon0,
           rss0, fds0);

    size_t opened = 0, first_step = 0;
    long anon_first = 0, anon = anon0, rss = rss0;
    for (int step = 1; step <= STEPS; step++) {
        size_t target = count * (size_t)step / STEPS;
        if (open_idle(fds + opened, target - opened) != 0)
            return 1;
        opened = target;
        settle();
        anon = bench_status_kb(pid, "RssAnon");
        rss = bench_status_kb(pid, "VmRSS");
        printf("idle_conns: %6zu idle: RssAnon %7ld kB  VmRSS %7ld kB  fds %ld\n", opened, anon,
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
    for (size_t i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
    /* All connections must have stayed open on the server's side too. */
    return fds1 - fds0 == (long)count ? 0 : 1;
}
