/*
 * The access log (see access_log.h): the format and its directives, the
 * escaping of request bytes, the buffer, and the destinations.
 *
 * A format is compiled once into a table of tokens (literal text or one
 * directive); a line is written straight into the buffer by walking the
 * table, so a request costs no allocation and no printf. The buffer is
 * allocated with room for one line of CSGI_ACCESS_LOG__LINE_MAX bytes
 * beyond its size, so that a line always fits whole, and goes out once it
 * is past its size.
 */
#include "http/access_log.h"

#include "common/alloc.h"

#include <csgi/common.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* What a token writes. */
enum token_kind {
    T_TEXT,            /* literal bytes */
    T_HOST,            /* %h %a: the client's address */
    T_IDENT,           /* %l: "-" (identd is not asked) */
    T_USER,            /* %u: REMOTE_USER or "-" */
    T_TIME,            /* %t: [10/Oct/2000:13:55:36 -0700], when the head was read */
    T_REQUEST,         /* %r: the request line */
    T_METHOD,          /* %m */
    T_PATH,            /* %U: the path as sent (percent-encoded) */
    T_QUERY,           /* %q: "?query" or "" */
    T_PROTOCOL,        /* %H: HTTP/1.0 or HTTP/1.1 */
    T_STATUS,          /* %s %>s */
    T_BYTES_CLF,       /* %b: body bytes, "-" for none */
    T_BYTES,           /* %B: body bytes */
    T_SENT,            /* %O: bytes sent, the head included */
    T_MICROSECONDS,    /* %D %{us}T */
    T_MILLISECONDS,    /* %{ms}T */
    T_SECONDS,         /* %T %{s}T */
    T_REQUEST_HEADER,  /* %{Name}i */
    T_RESPONSE_HEADER, /* %{Name}o */
    T_ENVIRON,         /* %{KEY}e */
    T_PID,             /* %P */
};

typedef struct token {
    unsigned char kind;
    const char *text; /* T_TEXT: the bytes; %{...}: the name, NUL-terminated */
    size_t len;
} token;

enum destination { DEST_FD, DEST_FILE, DEST_SYSLOG };

struct csgi_access_log {
    token *tokens;
    size_t token_count;
    char *text; /* the literals and names the tokens point to */

    int destination; /* enum destination */
    int fd;          /* DEST_FD, DEST_FILE */
    char *path;      /* DEST_FILE */
    int priority;    /* DEST_SYSLOG: facility | LOG_INFO */

    char *buffer; /* threshold + LINE_MAX bytes */
    size_t len;
    size_t threshold;
    struct timeval flush_interval;

    int locking;
    pthread_mutex_t lock;
    atomic_int reopen_wanted;
    uint64_t writes;
    int failing; /* the last write failed: said once, not per line */

    /* %t of the last second written. */
    time_t stamp_second;
    char stamp[40];
    size_t stamp_len;

    csgi_log__fn error_log;
    void *error_userdata;
    int error_level;
};

/* ---- The format ---------------------------------------------------------------- */

static const char *named_format(const char *format)
{
    if (!format || !*format || strcmp(format, "combined") == 0)
        return CSGI_ACCESS_LOG__COMBINED;
    if (strcmp(format, "common") == 0)
        return CSGI_ACCESS_LOG__COMMON;
    return format;
}

static int letter_kind(char c)
{
    switch (c) {
    case 'h':
    case 'a': return T_HOST;
    case 'l': return T_IDENT;
    case 'u': return T_USER;
    case 't': return T_TIME;
    case 'r': return T_REQUEST;
    case 'm': return T_METHOD;
    case 'U': return T_PATH;
    case 'q': return T_QUERY;
    case 'H': return T_PROTOCOL;
    case 's': return T_STATUS;
    case 'b': return T_BYTES_CLF;
    case 'B': return T_BYTES;
    case 'O': return T_SENT;
    case 'D': return T_MICROSECONDS;
    case 'T': return T_SECONDS;
    case 'P': return T_PID;
    default: return -1;
    }
}

/* The kind of %{name}c, or -1. */
static int braced_kind(const char *name, size_t len, char c)
{
    switch (c) {
    case 'i': return T_REQUEST_HEADER;
    case 'o': return T_RESPONSE_HEADER;
    case 'e': return T_ENVIRON;
    case 'T':
        if (len == 2 && memcmp(name, "us", 2) == 0)
            return T_MICROSECONDS;
        if (len == 2 && memcmp(name, "ms", 2) == 0)
            return T_MILLISECONDS;
        if (len == 1 && name[0] == 's')
            return T_SECONDS;
        return -1;
    default: return -1;
    }
}

/*
 * Compile format into tokens (room for strlen(format) + 1 of them) and
 * text (room for 2 * strlen(format) + 2 bytes). Either may be NULL to only
 * check. Returns 0 with *count, or CSGI_EINVAL with why.
 */
static int compile(const char *format, token *tokens, char *text, size_t *count, char *why,
                   size_t why_size)
{
    size_t n = 0;
    char *t = text;
    const char *p = format;
    while (*p) {
        const char *at = p;
        unsigned char c = (unsigned char)*p;
        if (c != '%') {
            /* A run of literal bytes; no control byte but a tab may end a
               line early or forge one. */
            const char *start = p;
            while (*p && *p != '%') {
                unsigned char b = (unsigned char)*p;
                if ((b < 0x20 && b != '\t') || b == 0x7f) {
                    snprintf(why, why_size, "control byte 0x%02x at byte %zu", b,
                             (size_t)(p - format));
                    return CSGI_EINVAL;
                }
                p++;
            }
            if (tokens) {
                memcpy(t, start, (size_t)(p - start));
                tokens[n] = (token){T_TEXT, t, (size_t)(p - start)};
                t += p - start;
            }
            n++;
            continue;
        }
        p++;
        int kind;
        const char *name = NULL;
        size_t name_len = 0;
        if (*p == '%') {
            if (tokens)
                tokens[n] = (token){T_TEXT, "%", 1};
            n++;
            p++;
            continue;
        }
        if (*p == '{') {
            name = p + 1;
            const char *close = strchr(name, '}');
            if (!close || close == name) {
                snprintf(why, why_size, "%s at byte %zu", close ? "empty %{}" : "%{ without its }",
                         (size_t)(at - format));
                return CSGI_EINVAL;
            }
            name_len = (size_t)(close - name);
            for (size_t i = 0; i < name_len; i++) {
                unsigned char b = (unsigned char)name[i];
                if (b < 0x20 || b == 0x7f) {
                    snprintf(why, why_size, "control byte 0x%02x at byte %zu", b,
                             (size_t)(name + i - format));
                    return CSGI_EINVAL;
                }
            }
            p = close + 1;
            kind = braced_kind(name, name_len, *p);
            if (kind < 0) {
                snprintf(why, why_size,
                         "%%{%.*s}%c at byte %zu: %%{...} takes i (request header), o "
                         "(response header), e (environ key) or T (us, ms, s)",
                         (int)(name_len > 40 ? 40 : name_len), name, *p ? *p : ' ',
                         (size_t)(at - format));
                return CSGI_EINVAL;
            }
        } else if (*p == '>' && p[1] == 's') {
            kind = T_STATUS;
            p++;
        } else {
            kind = *p ? letter_kind(*p) : -1;
            if (kind < 0) {
                if (*p)
                    snprintf(why, why_size, "unknown directive %%%c at byte %zu", *p,
                             (size_t)(at - format));
                else
                    snprintf(why, why_size, "a lone %% at the end");
                return CSGI_EINVAL;
            }
        }
        p++;
        if (tokens) {
            tokens[n] = (token){(unsigned char)kind, NULL, 0};
            if (name) {
                memcpy(t, name, name_len);
                t[name_len] = '\0';
                tokens[n].text = t;
                tokens[n].len = name_len;
                t += name_len + 1;
            }
        }
        n++;
    }
    *count = n;
    return 0;
}

int csgi_access_log__check_format(const char *format, char *why, size_t why_size)
{
    size_t count;
    return compile(named_format(format), NULL, NULL, &count, why, why_size);
}

/* ---- Destinations ---------------------------------------------------------------- */

static const struct facility {
    const char *name;
    int value;
} facilities[] = {
    {"user", LOG_USER},     {"daemon", LOG_DAEMON}, {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},
    {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
    {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
};

/* The kind of destination; *priority for syslog. -1 with why when bad. */
static int parse_destination(const char *destination, int *fd, int *priority, char *why,
                             size_t why_size)
{
    if (!destination || !*destination) {
        snprintf(why, why_size, "no destination");
        return -1;
    }
    if (strcmp(destination, "-") == 0 || strcmp(destination, "stderr") == 0) {
        *fd = STDERR_FILENO;
        return DEST_FD;
    }
    if (strcmp(destination, "stdout") == 0) {
        *fd = STDOUT_FILENO;
        return DEST_FD;
    }
    if (strcmp(destination, "syslog") == 0) {
        *priority = LOG_LOCAL7 | LOG_INFO;
        return DEST_SYSLOG;
    }
    if (strncmp(destination, "syslog:", 7) == 0) {
        for (size_t i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++) {
            if (strcasecmp(destination + 7, facilities[i].name) == 0) {
                *priority = facilities[i].value | LOG_INFO;
                return DEST_SYSLOG;
            }
        }
        snprintf(why, why_size, "'%.64s' is not a syslog facility (user, daemon, local0 to local7)",
                 destination + 7);
        return -1;
    }
    return DEST_FILE;
}

int csgi_access_log__check_destination(const char *destination, char *why, size_t why_size)
{
    int fd, priority;
    return parse_destination(destination, &fd, &priority, why, why_size) < 0 ? CSGI_EINVAL : 0;
}

static int open_file(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
}

static int open_error(int e)
{
    switch (e) {
    case EACCES:
    case EPERM:
    case EROFS: return CSGI_EACCESS;
    case ENOENT:
    case ENOTDIR: return CSGI_ENOTFOUND;
    case ENOMEM: return CSGI_ENOMEM;
    default: return CSGI_ESYSTEM;
    }
}

/* ---- Making and freeing ------------------------------------------------------------ */

int csgi_access_log__new(csgi_access_log **out, const csgi_access_log__config *config, char *why,
                         size_t why_size)
{
    *out = NULL;
    why[0] = '\0';
    csgi_access_log *log = csgi__calloc(1, sizeof(*log));
    if (!log) {
        snprintf(why, why_size, "out of memory");
        return CSGI_ENOMEM;
    }
    log->fd = -1;
    log->stamp_second = (time_t)-1;
    int err = 0;
    const char *format = named_format(config->format);
    size_t format_len = strlen(format), count = 0;
    log->tokens = csgi__calloc(format_len + 1, sizeof(*log->tokens));
    log->text = csgi__malloc(2 * format_len + 2);
    if (!log->tokens || !log->text) {
        err = CSGI_ENOMEM;
        goto fail;
    }
    err = compile(format, log->tokens, log->text, &count, why, why_size);
    if (err)
        goto fail;
    log->token_count = count;

    log->destination =
        parse_destination(config->destination, &log->fd, &log->priority, why, why_size);
    if (log->destination < 0) {
        err = CSGI_EINVAL;
        goto fail;
    }
    if (log->destination == DEST_FILE) {
        log->path = csgi__strndup(config->destination, strlen(config->destination));
        if (!log->path) {
            err = CSGI_ENOMEM;
            goto fail;
        }
        log->fd = open_file(log->path);
        if (log->fd < 0) {
            int e = errno;
            snprintf(why, why_size, "cannot open '%s': %s", log->path, strerror(e));
            err = open_error(e);
            goto fail;
        }
    }

    log->threshold = config->buffer ? config->buffer : CSGI_ACCESS_LOG__BUFFER;
    if (log->threshold > SIZE_MAX / 2)
        log->threshold = SIZE_MAX / 2;
    log->buffer = csgi__malloc(log->threshold + CSGI_ACCESS_LOG__LINE_MAX);
    if (!log->buffer) {
        err = CSGI_ENOMEM;
        goto fail;
    }
    unsigned ms = config->flush_ms ? config->flush_ms : CSGI_ACCESS_LOG__FLUSH_MS;
    log->flush_interval.tv_sec = ms / 1000;
    log->flush_interval.tv_usec = (ms % 1000) * 1000;
    log->locking = config->threads > 1;
    if (log->locking && pthread_mutex_init(&log->lock, NULL) != 0) {
        log->locking = 0;
        err = CSGI_ESYSTEM;
        goto fail;
    }
    log->error_log = config->error_log;
    log->error_userdata = config->error_userdata;
    log->error_level = config->error_level;
    *out = log;
    return 0;
fail:
    if (err == CSGI_ENOMEM)
        snprintf(why, why_size, "out of memory");
    csgi_access_log__free(log);
    return err;
}

void csgi_access_log__free(csgi_access_log *log)
{
    if (!log)
        return;
    if (log->buffer)
        csgi_access_log__flush(log);
    if (log->destination == DEST_FILE && log->fd >= 0)
        close(log->fd);
    if (log->locking)
        pthread_mutex_destroy(&log->lock);
    csgi__free(log->buffer);
    csgi__free(log->path);
    csgi__free(log->tokens);
    csgi__free(log->text);
    csgi__free(log);
}

/* ---- Writing out ----------------------------------------------------------------- */

static void say(const csgi_access_log *log, const char *what, int e)
{
    csgi_log__write(log->error_log, log->error_userdata, log->error_level, CSGI_LOG__ERROR,
                    "access log%s%s: %s: %s", log->path ? " " : "", log->path ? log->path : "",
                    what, strerror(e));
}

/* A failing write is said once, not once per flush, until one succeeds. */
static void report(csgi_access_log *log, const char *what, int e)
{
    if (!log->failing)
        say(log, what, e);
    log->failing = 1;
}

static void write_all(csgi_access_log *log)
{
    const char *p = log->buffer;
    size_t left = log->len;
    while (left > 0) {
        ssize_t n = write(log->fd, p, left);
        log->writes++;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* Dropped: a log that cannot be written must not stop serving. */
            report(log, "write failed, lines lost", errno);
            return;
        }
        p += n;
        left -= (size_t)n;
    }
    log->failing = 0;
}

static void send_syslog(csgi_access_log *log)
{
    const char *p = log->buffer, *end = log->buffer + log->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            nl = end;
        syslog(log->priority, "%.*s", (int)(nl - p), p);
        log->writes++;
        p = nl + 1;
    }
}

static void flush_locked(csgi_access_log *log)
{
    if (log->len) {
        if (log->destination == DEST_SYSLOG)
            send_syslog(log);
        else
            write_all(log);
        log->len = 0;
    }
}

/* What is buffered goes to the old file, the next lines to the new one. A
   file that cannot be opened again keeps the old one in use. */
static void reopen_locked(csgi_access_log *log)
{
    atomic_store_explicit(&log->reopen_wanted, 0, memory_order_relaxed);
    flush_locked(log);
    if (log->destination != DEST_FILE)
        return;
    int fd = open_file(log->path);
    if (fd < 0) {
        say(log, "cannot reopen, still writing to the old file", errno);
        return;
    }
    close(log->fd);
    log->fd = fd;
}

static inline void lock(csgi_access_log *log)
{
    if (log->locking)
        pthread_mutex_lock(&log->lock);
    if (atomic_load_explicit(&log->reopen_wanted, memory_order_relaxed))
        reopen_locked(log);
}

static inline void unlock(csgi_access_log *log)
{
    if (log->locking)
        pthread_mutex_unlock(&log->lock);
}

void csgi_access_log__flush(csgi_access_log *log)
{
    if (!log)
        return;
    lock(log);
    flush_locked(log);
    unlock(log);
}

void csgi_access_log__reopen(csgi_access_log *log)
{
    if (log)
        atomic_store_explicit(&log->reopen_wanted, 1, memory_order_relaxed);
}

struct timeval csgi_access_log__flush_interval(const csgi_access_log *log)
{
    return log->flush_interval;
}

uint64_t csgi_access_log__writes(csgi_access_log *log)
{
    lock(log);
    uint64_t writes = log->writes;
    unlock(log);
    return writes;
}

/* ---- A line ------------------------------------------------------------------------ */

/* Where a line is being written: end leaves room for its newline. */
typedef struct line_out {
    char *p, *end;
} line_out;

static inline void put(line_out *o, const char *s, size_t len)
{
    size_t room = (size_t)(o->end - o->p);
    if (len > room)
        len = room;
    memcpy(o->p, s, len);
    o->p += len;
}

static inline void put_dash(line_out *o)
{
    if (o->p < o->end)
        *o->p++ = '-';
}

/*
 * Bytes from the request or the application: printable ASCII as it is,
 * the rest (control bytes, DEL, bytes above 0x7F) and the quote and the
 * backslash as \xHH, as nginx does, so that no byte can end the line or
 * a quoted field. A field cut by the line's end is cut before a whole
 * escape, never inside one.
 */
static void put_escaped(line_out *o, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    char *p = o->p, *end = o->end;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = u[i];
        if ((unsigned char)(c - 0x20) < 0x5f && c != '"' && c != '\\') {
            if (p == end)
                break;
            *p++ = (char)c;
            continue;
        }
        if (end - p < 4)
            break;
        p[0] = '\\';
        p[1] = 'x';
        p[2] = hex[c >> 4];
        p[3] = hex[c & 15];
        p += 4;
    }
    o->p = p;
}

static void put_value(line_out *o, const char *s, size_t len)
{
    if (s)
        put_escaped(o, s, len);
    else
        put_dash(o);
}

static void put_number(line_out *o, uint64_t value)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[sizeof(digits) - 1 - n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    put(o, digits + sizeof(digits) - n, n);
}

/* An IPv4 address without inet_ntop's printf. */
static void put_ipv4(line_out *o, const struct in_addr *addr)
{
    const unsigned char *b = (const unsigned char *)&addr->s_addr;
    char text[16], *t = text;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100) {
            *t++ = (char)('0' + v / 100);
            v %= 100;
            *t++ = (char)('0' + v / 10);
        } else if (v >= 10) {
            *t++ = (char)('0' + v / 10);
        }
        *t++ = (char)('0' + v % 10);
        *t++ = '.';
    }
    put(o, text, (size_t)(t - text - 1));
}

static void put_host(line_out *o, const struct sockaddr *peer)
{
    if (peer && peer->sa_family == AF_INET) {
        put_ipv4(o, &((const struct sockaddr_in *)(const void *)peer)->sin_addr);
    } else if (peer && peer->sa_family == AF_INET6) {
        char text[INET6_ADDRSTRLEN];
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)peer;
        if (inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text)))
            put(o, text, strlen(text));
        else
            put_dash(o);
    } else {
        put(o, "unix:", 5);
    }
}

static void two_digits(char *at, int v)
{
    at[0] = (char)('0' + v / 10 % 10);
    at[1] = (char)('0' + v % 10);
}

/* "[10/Oct/2000:13:55:36 -0700]" in local time, as Apache writes %t; kept
   for the second it names (localtime_r is not cheap). English month
   names whatever the locale. */
static void put_time(csgi_access_log *log, line_out *o, time_t second)
{
    if (second != log->stamp_second) {
        static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
        struct tm tm;
        char *s = log->stamp;
        if (!localtime_r(&second, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
            memcpy(s, "[-]", 3);
            log->stamp_len = 3;
        } else {
            long offset = tm.tm_gmtoff / 60;
            char sign = offset < 0 ? '-' : '+';
            if (offset < 0)
                offset = -offset;
            int year = tm.tm_year + 1900;
            s[0] = '[';
            two_digits(s + 1, tm.tm_mday);
            s[3] = '/';
            memcpy(s + 4, months + 3 * tm.tm_mon, 3);
            s[7] = '/';
            two_digits(s + 8, year / 100);
            two_digits(s + 10, year % 100);
            s[12] = ':';
            two_digits(s + 13, tm.tm_hour);
            s[15] = ':';
            two_digits(s + 16, tm.tm_min);
            s[18] = ':';
            two_digits(s + 19, tm.tm_sec);
            s[21] = ' ';
            s[22] = sign;
            two_digits(s + 23, (int)(offset / 60 % 100));
            two_digits(s + 25, (int)(offset % 60));
            s[27] = ']';
            log->stamp_len = 28;
        }
        log->stamp_second = second;
    }
    put(o, log->stamp, log->stamp_len);
}

/* %{Name}i: every field of that name, joined with ", " as a repeated
   field's values are; "-" when there is none. */
static void put_request_header(line_out *o, const csgi_http__head *head, const token *t)
{
    int found = 0;
    if (head) {
        for (size_t i = 0; i < head->header_count; i++) {
            const csgi_http__header *h = &head->headers[i];
            if (h->name_len != t->len || strncasecmp(h->name, t->text, t->len) != 0)
                continue;
            if (found)
                put(o, ", ", 2);
            found = 1;
            put_escaped(o, h->value, h->value_len);
        }
    }
    if (!found)
        put_dash(o);
}

static void put_application_value(line_out *o, const csgi_access_log__entry *entry, int kind,
                                  const char *name)
{
    size_t len = 0;
    const char *value = entry->value ? entry->value(entry->value_context, kind, name, &len) : NULL;
    put_value(o, value, len);
}

static void format_line(csgi_access_log *log, const csgi_access_log__entry *entry, line_out *o)
{
    const csgi_http__head *head = entry->head;
    for (size_t i = 0; i < log->token_count; i++) {
        const token *t = &log->tokens[i];
        switch (t->kind) {
        case T_TEXT: put(o, t->text, t->len); break;
        case T_HOST: put_host(o, entry->peer); break;
        case T_IDENT: put_dash(o); break;
        case T_USER: put_application_value(o, entry, CSGI_ACCESS_LOG__USER, "REMOTE_USER"); break;
        case T_TIME: put_time(log, o, entry->start.tv_sec); break;
        case T_REQUEST: put_value(o, entry->line, entry->line_len); break;
        case T_METHOD: put_value(o, head ? head->method : NULL, head ? head->method_len : 0); break;
        case T_PATH: put_value(o, head ? head->path : NULL, head ? head->path_len : 0); break;
        case T_QUERY:
            if (head && head->query) {
                put(o, "?", 1);
                put_escaped(o, head->query, head->query_len);
            }
            break;
        case T_PROTOCOL:
            if (head)
                put(o, head->version_minor ? "HTTP/1.1" : "HTTP/1.0", 8);
            else
                put_dash(o);
            break;
        case T_STATUS: put_number(o, (uint64_t)entry->status); break;
        case T_BYTES_CLF:
            if (entry->body_bytes)
                put_number(o, entry->body_bytes);
            else
                put_dash(o);
            break;
        case T_BYTES: put_number(o, entry->body_bytes); break;
        case T_SENT: put_number(o, entry->sent_bytes); break;
        case T_MICROSECONDS: put_number(o, entry->duration_us); break;
        case T_MILLISECONDS: put_number(o, entry->duration_us / 1000); break;
        case T_SECONDS: put_number(o, entry->duration_us / 1000000); break;
        case T_REQUEST_HEADER: put_request_header(o, head, t); break;
        case T_RESPONSE_HEADER:
            put_application_value(o, entry, CSGI_ACCESS_LOG__RESPONSE, t->text);
            break;
        case T_ENVIRON: put_application_value(o, entry, CSGI_ACCESS_LOG__ENVIRON, t->text); break;
        case T_PID: put_number(o, (uint64_t)getpid()); break; /* workers: not cached */
        default: break;
        }
    }
}

int csgi_access_log__write(csgi_access_log *log, const csgi_access_log__entry *entry)
{
    lock(log);
    char *start = log->buffer + log->len;
    line_out o = {start, start + CSGI_ACCESS_LOG__LINE_MAX - 1};
    format_line(log, entry, &o);
    *o.p++ = '\n';
    log->len += (size_t)(o.p - start);
    if (log->len >= log->threshold)
        flush_locked(log);
    int waiting = log->len > 0;
    unlock(log);
    return waiting;
}
