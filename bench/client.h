/*
 * The small HTTP/1.1 client shared by the benchmark tools: connecting to
 * 127.0.0.1 and framing responses, and reading a server's memory. Only
 * what a "Hello World" benchmark needs: responses must carry
 * Content-Length (both servers send it).
 */
#ifndef CSGI_BENCH_CLIENT_H
#define CSGI_BENCH_CLIENT_H

#include <stddef.h>
#include <sys/types.h>

/* Connect to host:port (numeric IPv4), blocking, with TCP_NODELAY; nonblock
   != 0 makes the socket non-blocking afterwards. Returns the socket or -1
   (errno set). */
int bench_connect(const char *host, int port, int nonblock);

/* Format the keep-alive request wrk would send into buf ("GET path
   HTTP/1.1" and a Host field), then the extra header lines in extra (each
   "Name: value\r\n"; NULL or "" for none). Returns its length, or 0 if buf
   is small. */
size_t bench_request(char *buf, size_t size, const char *host, int port, const char *path,
                     const char *extra);

/* Format the head of a POST request as bench_request formats its GET: the
   extra header lines, "Content-Type: type" (type NULL: none), then
   "Content-Length: length", or "Transfer-Encoding: chunked" when length is
   negative. The body is the caller's to send. Returns the head's length, or
   0 if buf is small. */
size_t bench_post_head(char *buf, size_t size, const char *host, int port, const char *path,
                       const char *extra, const char *type, long long length);

/* Append "-H" header to *extra (a malloc'd string of "Name: value\r\n"
   lines, NULL at first), as wrk -H does. Returns 0, or -1 if header is not
   "Name: value" on one line or memory is exhausted. */
int bench_add_header(char **extra, const char *header);

/* Frame the response at the start of buf[0..len). Returns its total length
   (head and body) once all of it is in buf, 0 while it is incomplete, -1 if
   it is malformed or has no Content-Length. *status gets the status code,
   *closing 1 if the response says "Connection: close" (else 0). */
ssize_t bench_response_length(const char *buf, size_t len, int *status, int *closing);

/* The value in kB of "name:" in /proc/PID/status ("VmRSS", "RssAnon"), or
   -1 if it cannot be read. */
long bench_status_kb(int pid, const char *name);

/* The number of entries in the directory path, "." and ".." left out (the
   descriptors of a process in /proc/PID/fd, the files of a temporary
   directory), or -1 if it cannot be read. */
long bench_count_entries(const char *path);

/* Monotonic time in seconds. */
double bench_now(void);

#endif /* CSGI_BENCH_CLIENT_H */
