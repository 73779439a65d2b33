/*
 * Measure what a response stuck behind a client that does not read costs
 * a server in memory.
 *
 *   stuck_responses PORT PID COUNT BODY_BYTES
 *
 * Opens COUNT connections with a small receive buffer; each POSTs a body
 * of BODY_BYTES control bytes (so an application that escapes the body, as
 * examples/environ_dump's JSON does with \u00XX, answers six times what it
 * was sent: more than the kernel's send buffer takes) and then never
 * reads. The server answers into sockets that take a few MiB at most and
 * then stop: the rest of each answer waits in the server. After the answers settled, the server's
 * RssAnon (heap and mmap'd allocations) is read from /proc/PID/status and compared with before.
 *
 * Prints a line per step and a final line for bench/run.sh:
 *   stuck_responses: count=N body=B anon_per_response=B
 */
#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Connect to 127.0.0.1:port with a small receive buffer, set before the
   connection so the window the server sees is small from the start. */
static int connect_small(int port)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int small = 4096, one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: stuck_responses PORT PID COUNT BODY_BYTES\n");
        return 2;
    }
    int port = atoi(argv[1]);
    int pid = atoi(argv[2]);
    size_t count = strtoul(argv[3], NULL, 10);
    size_t body_len = strtoul(argv[4], NULL, 10);
    if (port <= 0 || pid <= 0 || count == 0 || body_len == 0) {
        fprintf(stderr, "stuck_responses: bad arguments\n");
        return 2;
    }
    char *body = malloc(body_len);
    int *fds = calloc(count, sizeof(*fds));
    if (!body || !fds)
        return 1;
    for (size_t i = 0; i < body_len; i++)
        body[i] = (char)(1 + i % 31);
    char head[256];
    int head_len = snprintf(head, sizeof(head),
                            "POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                            "Content-Type: application/octet-stream\r\n"
                            "Content-Length: %zu\r\n\r\n",
                            port, body_len);

    sleep_ms(300);
    long anon0 = bench_status_kb(pid, "RssAnon");
    if (anon0 < 0) {
        fprintf(stderr, "stuck_responses: cannot read /proc/%d/status\n", pid);
        return 1;
    }
    printf("stuck_responses: %5zu stuck: RssAnon %8ld kB\n", (size_t)0, anon0);
    for (size_t i = 0; i < count; i++) {
        fds[i] = connect_small(port);
        if (fds[i] < 0) {
            fprintf(stderr, "stuck_responses: connection %zu: %s\n", i, strerror(errno));
            return 1;
        }
        if (send_all(fds[i], head, (size_t)head_len) != 0 ||
            send_all(fds[i], body, body_len) != 0) {
            fprintf(stderr, "stuck_responses: send: %s\n", strerror(errno));
            return 1;
        }
    }
    /* Let every answer be made and fill its socket. */
    long anon = anon0, last = -1;
    for (int i = 0; i < 50 && anon != last; i++) {
        sleep_ms(200);
        last = anon;
        anon = bench_status_kb(pid, "RssAnon");
    }
    printf("stuck_responses: %5zu stuck: RssAnon %8ld kB\n", count, anon);
    printf("stuck_responses: count=%zu body=%zu anon_per_response=%.0f\n", count, body_len,
           (double)(anon - anon0) * 1024 / (double)count);
    for (size_t i = 0; i < count; i++)
        close(fds[i]);
    free(fds);
    free(body);
    return 0;
}
