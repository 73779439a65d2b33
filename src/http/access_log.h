/*
 * The access log (internal): one line per request the server answered,
 * in Apache's combined format or a format of % directives (docs/server.md
 * lists them), written by the engine (connection.c) for the requests the
 * application answered and for those the engine refused itself.
 *
 * Lines are buffered: they go out in one write(2) (whole lines: a line
 * never straddles two writes) when the buffer passes
 * its size, when the engine's flush timer fires (the loop arms it when a
 * line goes into an empty buffer), and on csgi_access_log__flush() (the
 * server calls it when it stops) and csgi_access_log__free(). Bytes of the
 * request and of the application (the request line, header values, environ
 * values) are escaped as \xHH when they are control bytes, bytes above
 * 0x7E, '"' or '\', so a client cannot forge a line or a field.
 *
 * Destinations: a file (opened with O_APPEND, created 0644), standard error
 * ("-" or "stderr"), standard output ("stdout"), or syslog ("syslog" or
 * "syslog:FACILITY", one message a line, severity info). A file is reopened
 * by the path it was given after csgi_access_log__reopen(), which only
 * raises a flag (it is safe in a signal handler): the next write or flush
 * writes what is buffered to the old file, then opens the new one.
 *
 * Processes: worker processes each keep their own log on the same
 * destination (each opens the file with O_APPEND). A write(2) of whole
 * lines of at most PIPE_BUF bytes lands in one piece, on a pipe by POSIX
 * and on a regular file opened O_APPEND on Linux in practice, so a shared
 * log (config.shared) writes its buffer in such pieces (a longer line goes
 * alone): lines of different workers never mix within a line. Only a
 * partial write (a full disk) can cut one.
 *
 * Threads: with one loop (threads 1) every call but reopen comes from that
 * loop's thread and nothing is locked; with several loops a mutex guards
 * the buffer.
 */
#ifndef CSGI_HTTP_ACCESS_LOG_H
#define CSGI_HTTP_ACCESS_LOG_H

#include "common/log.h"
#include "http/parser.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>

typedef struct csgi_access_log csgi_access_log;

/* The format used when none is given: Apache's combined. */
#define CSGI_ACCESS_LOG__COMBINED "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\""
/* Apache's common log format. */
#define CSGI_ACCESS_LOG__COMMON "%h %l %u %t \"%r\" %>s %b"

/* Default buffer size and flush interval. */
#define CSGI_ACCESS_LOG__BUFFER   65536
#define CSGI_ACCESS_LOG__FLUSH_MS 1000

/* The longest line; longer fields are cut so that the line fits. */
#define CSGI_ACCESS_LOG__LINE_MAX 16384

/* What the application knows about a request (kinds of
   csgi_access_log__value_fn). */
enum {
    CSGI_ACCESS_LOG__USER = 'u',     /* REMOTE_USER, if something set it */
    CSGI_ACCESS_LOG__ENVIRON = 'e',  /* an environ key */
    CSGI_ACCESS_LOG__RESPONSE = 'o', /* a response header field */
};

struct csgi_http__request;

/* A value the request's consumer knows (the engine's log_value callback,
   http/engine.h): kind as above, name NUL-terminated (borrowed). Returns
   the value (borrowed for the call) with *len, or NULL when there is
   none. */
typedef const char *(*csgi_access_log__value_fn)(struct csgi_http__request *req, int kind,
                                                 const char *name, size_t *len, void *userdata);

/* One request, as the engine saw it. Every pointer is borrowed for the call. */
typedef struct csgi_access_log__entry {
    const struct sockaddr *peer;     /* the client; AF_UNIX: "unix:" */
    const csgi_http__head *head;     /* the parsed head, or NULL (refused before it parsed) */
    const char *line;                /* the request line as received, any bytes, or NULL */
    size_t line_len;                 /* without its CRLF */
    int status;                      /* the status sent */
    uint64_t body_bytes;             /* bytes sent after the head */
    uint64_t sent_bytes;             /* bytes sent, the head included */
    struct timeval start;            /* when the head was read (wall clock) */
    uint64_t duration_us;            /* from start to the end of the response */
    csgi_access_log__value_fn value; /* NULL when there is no application */
    struct csgi_http__request *value_request;
    void *value_userdata;
} csgi_access_log__entry;

/* How a log is made. Strings are copied. */
typedef struct csgi_access_log__config {
    const char *destination; /* see above; NULL or "" is an error here */
    const char *format;      /* NULL, "combined", "common", or % directives */
    size_t buffer;           /* bytes buffered before a write; 0 = the default, 1 = none */
    unsigned flush_ms;       /* the flush timer; 0 = the default */
    int threads;             /* loops writing to it: more than 1 locks */
    int shared;              /* other processes write to the same file (workers): each
                                write(2) is whole lines, at most PIPE_BUF bytes */
    csgi_log__fn error_log;  /* where failures to write or reopen are told (NULL: stderr) */
    void *error_userdata;
    int error_level;
} csgi_access_log__config;

/* Check a format (NULL, a name or directives). Returns 0, or CSGI_EINVAL
   with a message in why (e.g. "unknown directive %Z at byte 4"). */
int csgi_access_log__check_format(const char *format, char *why, size_t why_size);

/* Check a destination's syntax (syslog facility names); opens nothing.
   Returns 0, or CSGI_EINVAL with a message in why. */
int csgi_access_log__check_destination(const char *destination, char *why, size_t why_size);

/* Make a log, opening its file now. Returns 0; CSGI_EINVAL (a bad format
   or destination), CSGI_EACCESS, CSGI_ESYSTEM (the file cannot be
   opened), CSGI_ENOMEM; why says what went wrong. */
int csgi_access_log__new(csgi_access_log **out, const csgi_access_log__config *config, char *why,
                         size_t why_size);

/* Flush, close and free. Accepts NULL. */
void csgi_access_log__free(csgi_access_log *log);

/* Add a line for entry. Returns 1 when lines wait in the buffer (the caller
   makes sure its flush timer runs), else 0. */
int csgi_access_log__write(csgi_access_log *log, const csgi_access_log__entry *entry);

/* Write what is buffered (and reopen the file first when asked). */
void csgi_access_log__flush(csgi_access_log *log);

/* Ask for the file to be reopened before the next line is written. Only
   sets a flag: safe from any thread and from a signal handler. */
void csgi_access_log__reopen(csgi_access_log *log);

/* The flush timer's interval. */
struct timeval csgi_access_log__flush_interval(const csgi_access_log *log);

/* write(2) calls (and syslog messages) so far, for tests. */
uint64_t csgi_access_log__writes(csgi_access_log *log);

#endif
