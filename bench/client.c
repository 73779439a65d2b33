/*
 * See client.h. Blocking connect, then a tolerant response framer: it
 * finds the end of the head, reads Content-Length and checks the body is
 * all there. Enough for benchmarks, not a general HTTP client.
 */
#include "client.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int bench_connect(const char *host, int port, int nonblock)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
        goto fail;
    if (nonblock && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        goto fail;
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

size_t bench_request(char *buf, size_t size, const char *host, int port, const char *path,
                     const char *extra)
{
    int n = snprintf(buf, size, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%s\r\n", path, host, port,
                     extra ? extra : "");
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

size_t bench_post_head(char *buf, size_t size, const char *host, int port, const char *path,
                       const char *extra, const char *type, long long length)
{
    char framing[64];
    if (length >= 0)
        snprintf(framing, sizeof(framing), "Content-Length: %lld", length);
    else
        snprintf(framing, sizeof(framing), "Transfer-Encoding: chunked");
    int n = snprintf(buf, size, "POST %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s%s%s%s\r\n\r\n", path, host,
                     port, extra ? extra : "", type ? "Content-Type: " : "", type ? type : "",
                     type ? "\r\n" : "", framing);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

int bench_add_header(char **extra, const char *header)
{
    const char *colon = strchr(header, ':');
    if (!colon || colon == header || strpbrk(header, "\r\n"))
        return -1;
    size_t old = *extra ? strlen(*extra) : 0, len = strlen(header);
    char *grown = realloc(*extra, old + len + 3);
    if (!grown)
        return -1;
    memcpy(grown + old, header, len);
    memcpy(grown + old + len, "\r\n", 3);
    *extra = grown;
    return 0;
}

/* Like memmem for a NUL-free needle. */
static const char *find(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return hay + i;
    return NULL;
}

ssize_t bench_response_length(const char *buf, size_t len, int *status, int *closing)
{
    const char *end = find(buf, len, "\r\n\r\n");
    if (!end)
        return len > 65536 ? -1 : 0;
    size_t head_len = (size_t)(end - buf) + 4;
    if (head_len < 12 || memcmp(buf, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(buf + 9);
    *closing = 0;

    static const char length_name[] = "content-length:";
    static const char connection_close[] = "connection: close";
    long long body = -1;
    const char *line = memchr(buf, '\n', head_len);
    while (line && line + 1 < end) {
        line++;
        size_t left = (size_t)(end - line);
        if (left > sizeof(length_name) - 1 &&
            strncasecmp(line, length_name, sizeof(length_name) - 1) == 0)
            body = strtoll(line + sizeof(length_name) - 1, NULL, 10);
        else if (left >= sizeof(connection_close) - 1 &&
                 strncasecmp(line, connection_close, sizeof(connection_close) - 1) == 0)
            *closing = 1;
        line = memchr(line, '\n', left);
    }
    if (body < 0)
        return -1;
    size_t total = head_len + (size_t)body;
    return len >= total ? (ssize_t)total : 0;
}

long bench_status_kb(int pid, const char *name)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long value = -1;
    size_t len = strlen(name);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, name, len) == 0 && line[len] == ':') {
            value = strtol(line + len + 1, NULL, 10);
            break;
        }
    fclose(f);
    return value;
}

long bench_count_entries(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
