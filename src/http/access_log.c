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
#include "common/chartab.h"

#include <csgi/common.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

/* Formats written without the token table (format_combined). */
enum shape { SHAPE_TOKENS, SHAPE_COMBINED, SHAPE_COMMON };

struct csgi_access_log {
    token *tokens;
    size_t token_count;
    int shape;  /* enum shape */
    char *text; /* the literals and names the tokens point to */

    int destination; /* enum destination */
    int fd;          /* DEST_FD, DEST_FILE */
    char *path;      /* DEST_FILE */
    int priority;    /* DEST_SYSLOG: facility | LOG_INFO */

    char *buffer; /* threshold + LINE_MAX bytes */
    size_t len;
    size_t threshold;
    struct timeval flush_interval;

    int shared; /* other processes write there too: pieces of PIPE_BUF */
    int locking;
    pthread_mutex_t lock;
    atomic_int reopen_wanted;
    uint64_t writes;
    int failing; /* the last write failed: said once, not per line */

    /* %t of the last second written. */
    time_t stamp_second;
    char stamp[40];
    size_t stamp_len;

    /* put_host's IPv4 octets: "255." and its length; the last address. */
    char octets[256][4];
    unsigned char octet_len[256];
    uint32_t last_ipv4;
    unsigned char last_ipv4_len;
    char last_ipv4_text[20];

    csgi_log__fn error_log;
    void *error_userdata;
    int error_level;
};

static void octets_init(csgi_access_log *log);

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

/* Literal bytes for the token table: appended to the previous token when
   that is literal text ending where these go (so "%h %l %u" has one text
   token " - " between its two directives), else a new token. */
static void add_text(token *tokens, size_t *n, char **t, const char *bytes, size_t len)
{
    if (!tokens) {
        (*n)++;
        return;
    }
    memcpy(*t, bytes, len);
    token *last = *n ? &tokens[*n - 1] : NULL;
    if (last && last->kind == T_TEXT && last->text + last->len == *t)
        last->len += len;
    else
        tokens[(*n)++] = (token){T_TEXT, *t, len};
    *t += len;
}

/*
 * Compile format into tokens (room for strlen(format) + 1 of them) and
 * text (room for 2 * strlen(format) + 2 bytes). Either may be NULL to only
 * check. %l (always "-") and %% become literal text. Returns 0 with
 * *count, or CSGI_EINVAL with why.
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
            add_text(tokens, &n, &t, start, (size_t)(p - start));
            continue;
        }
        p++;
        int kind;
        const char *name = NULL;
        size_t name_len = 0;
        if (*p == '%' || *p == 'l') {
            add_text(tokens, &n, &t, *p == '%' ? "%" : "-", 1);
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
                if (kind == T_REQUEST_HEADER) /* compared with csgi_char__equal_nocase */
                    for (size_t i = 0; i < name_len; i++)
                        t[i] = (char)csgi_char__lower((unsigned char)t[i]);
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
    octets_init(log);
    int err = 0;
    const char *format = named_format(config->format);
    size_t format_len = strlen(format), count = 0;
    log->tokens = csgi__calloc(format_len + 1, sizeof(*log->tokens));
    log->text = csgi__malloc(2 * format_len + 2 + 16); /* put_text reads 16 at once */
    if (!log->tokens || !log->text) {
        err = CSGI_ENOMEM;
        goto fail;
    }
    err = compile(format, log->tokens, log->text, &count, why, why_size);
    if (err)
        goto fail;
    log->token_count = count;
    if (strcmp(format, CSGI_ACCESS_LOG__COMBINED) == 0)
        log->shape = SHAPE_COMBINED;
    else if (strcmp(format, CSGI_ACCESS_LOG__COMMON) == 0)
        log->shape = SHAPE_COMMON;

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
    log->shared = config->shared;
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

/* Where the next write(2) of a shared log ends, from p: after the last
   line that ends within PIPE_BUF bytes, or after the first line when even
   that one is longer. The buffer holds whole lines. */
static const char *piece_end(const char *p, const char *end)
{
    if ((size_t)(end - p) <= PIPE_BUF)
        return end;
    const char *limit = p + PIPE_BUF;
    for (const char *q = limit; q > p; q--)
        if (q[-1] == '\n')
            return q;
    const char *nl = memchr(limit, '\n', (size_t)(end - limit));
    return nl ? nl + 1 : end;
}

static void write_all(csgi_access_log *log)
{
    const char *p = log->buffer, *end = log->buffer + log->len;
    while (p < end) {
        const char *piece = log->shared ? piece_end(p, end) : end;
        ssize_t n = write(log->fd, p, (size_t)(piece - p));
        log->writes++;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* Dropped: a log that cannot be written must not stop serving. */
            report(log, "write failed, lines lost", errno);
            return;
        }
        p += n;
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

/*
 * The writers put their piece at p, never past end, and return where it
 * ends (a piece that does not fit is cut). p and end are the caller's
 * locals rather than fields behind a pointer: every byte stored through a
 * char pointer may alias any memory, so fields would be read again after
 * each store, and a line's pieces are mostly a few bytes each.
 */

static inline char *put(char *p, char *end, const char *s, size_t len)
{
    size_t room = (size_t)(end - p);
    if (len > room)
        len = room;
    memcpy(p, s, len);
    return p + len;
}

/* A short piece whose source has 16 readable bytes (the format's text is
   padded): one fixed-size copy, which the compiler makes two moves,
   instead of a call to memcpy. */
static inline char *put_short(char *p, char *end, const char *s, size_t len)
{
    if (len <= 16 && end - p >= 16) {
        memcpy(p, s, 16);
        return p + len;
    }
    return put(p, end, s, len);
}

/* A piece of constant length: the compiler makes the copy a move or two. */
static inline __attribute__((always_inline)) char *put_const(char *p, char *end, const char *s,
                                                             size_t len)
{
    if ((size_t)(end - p) < len)
        return p;
    memcpy(p, s, len);
    return p + len;
}

static inline char *put_char(char *p, char *end, char c)
{
    if (p < end)
        *p++ = c;
    return p;
}

/* Nonzero when one of the 8 bytes of w must be escaped: below 0x20, 0x7F
   or above, '"' or '\\'. Exact as to whether there is one (the usual
   has-less-than and has-zero-byte tests), not as to which. */
static inline uint64_t word_needs_escape(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
    uint64_t control = (w - ones * 0x20) & ~w;
    uint64_t high = (w + ones) | w; /* 0x7F becomes 0x80 */
    uint64_t special = ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash);
    return (control | high | special) & highs;
}

/*
 * Bytes from the request or the application: printable ASCII as it is,
 * the rest (control bytes, DEL, bytes above 0x7F) and the quote and the
 * backslash as \xHH, as nginx does, so that no byte can end the line or
 * a quoted field. A field cut by the line's end is cut before a whole
 * escape, never inside one. Eight bytes at a time while none needs
 * escaping and the line has room for the worst case.
 */
static char *put_escaped(char *p, char *end, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i = 0;
    if ((size_t)(end - p) / 4 >= len && len >= 8) {
        uint64_t w, last;
        if (len <= 16) { /* a request line, a short header: two words, maybe overlapping */
            memcpy(&w, s, 8);
            memcpy(&last, s + len - 8, 8);
            if (!(word_needs_escape(w) | word_needs_escape(last))) {
                memcpy(p, &w, 8);
                memcpy(p + len - 8, &last, 8);
                return p + len;
            }
        }
        for (; i + 8 <= len; i += 8) {
            memcpy(&w, s + i, 8);
            if (word_needs_escape(w))
                break;
            memcpy(p, &w, 8);
            p += 8;
        }
        /* The last bytes as a word overlapping the one before: so far the
           output is the input, byte for byte. */
        if (i < len && i + 8 > len) {
            memcpy(&w, s + len - 8, 8);
            if (!word_needs_escape(w)) {
                memcpy(p - (i - (len - 8)), &w, 8);
                return p + (len - i);
            }
        }
    }
    const unsigned char *u = (const unsigned char *)s;
    for (; i < len; i++) {
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
    return p;
}

/* A value, or "-" when there is none. */
static inline char *put_value(char *p, char *end, const char *s, size_t len)
{
    return s ? put_escaped(p, end, s, len) : put_char(p, end, '-');
}

static const char digit_pairs[] = "00010203040506070809101112131415161718192021222324"
                                  "25262728293031323334353637383940414243444546474849"
                                  "50515253545556575859606162636465666768697071727374"
                                  "75767778798081828384858687888990919293949596979899";

/* A number, its digits written in place from the last, two at a time. */
static char *put_number(char *p, char *end, uint64_t value)
{
    if (value < 100 && end - p >= 2) { /* a small body, a short time */
        if (value < 10) {
            *p = (char)('0' + value);
            return p + 1;
        }
        memcpy(p, digit_pairs + 2 * value, 2);
        return p + 2;
    }
    size_t n = 1;
    for (uint64_t v = value; v >= 10; v /= 10)
        n++;
    if ((size_t)(end - p) < n)
        return p;
    char *q = p + n;
    while (value >= 100) {
        q -= 2;
        memcpy(q, digit_pairs + 2 * (value % 100), 2);
        value /= 100;
    }
    if (value >= 10)
        memcpy(q - 2, digit_pairs + 2 * value, 2);
    else
        q[-1] = (char)('0' + value);
    return p + n;
}

/* A status: three digits, or more the long way. */
static inline char *put_status(char *p, char *end, int status)
{
    if (status < 100 || status > 999 || end - p < 3)
        return put_number(p, end, (uint64_t)(status < 0 ? 0 : status));
    unsigned hundreds = (unsigned)status / 100;
    p[0] = (char)('0' + hundreds);
    memcpy(p + 1, digit_pairs + 2 * ((unsigned)status - 100 * hundreds), 2);
    return p + 3;
}

/* %b: body bytes, "-" for none. */
static inline char *put_bytes_clf(char *p, char *end, uint64_t bytes)
{
    return bytes ? put_number(p, end, bytes) : put_char(p, end, '-');
}

/* The text of each IPv4 octet followed by a dot, for put_host. */
static void octets_init(csgi_access_log *log)
{
    for (unsigned v = 0; v < 256; v++) {
        char *t = log->octets[v];
        size_t n = 0;
        if (v >= 100)
            t[n++] = (char)('0' + v / 100);
        if (v >= 10)
            t[n++] = (char)('0' + v / 10 % 10);
        t[n++] = (char)('0' + v % 10);
        t[n++] = '.';
        log->octet_len[v] = (unsigned char)n;
    }
}

/* %h: the client's address; "unix:" for a Unix socket's, as nginx. The
   text of the last IPv4 address is kept: behind a reverse proxy, every
   request comes from the same one. */
static char *put_host(csgi_access_log *log, char *p, char *end, const struct sockaddr *peer)
{
    if (peer && peer->sa_family == AF_INET && end - p >= 16) {
        uint32_t address = ((const struct sockaddr_in *)(const void *)peer)->sin_addr.s_addr;
        if (address != log->last_ipv4 || !log->last_ipv4_len) {
            /* Four copies of four bytes: "255." at most each. */
            const unsigned char *b = (const unsigned char *)&address;
            char *t = log->last_ipv4_text;
            for (int i = 0; i < 4; i++) {
                memcpy(t, log->octets[b[i]], 4);
                t += log->octet_len[b[i]];
            }
            log->last_ipv4 = address;
            log->last_ipv4_len = (unsigned char)(t - 1 - log->last_ipv4_text); /* no last dot */
        }
        memcpy(p, log->last_ipv4_text, 16);
        return p + log->last_ipv4_len;
    }
    if (peer && peer->sa_family == AF_INET6) {
        char text[INET6_ADDRSTRLEN];
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)peer;
        if (inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text)))
            return put(p, end, text, strlen(text));
        return put_char(p, end, '-');
    }
    if (peer && peer->sa_family == AF_INET)
        return p; /* no room */
    return put_const(p, end, "unix:", 5);
}

static void two_digits(char *at, int v)
{
    memcpy(at, digit_pairs + 2 * (v % 100), 2);
}

/* "[10/Oct/2000:13:55:36 -0700]" in local time, as Apache writes %t; kept
   for the second it names (localtime_r is not cheap). English month
   names whatever the locale. */
static char *put_time(csgi_access_log *log, char *p, char *end, time_t second)
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
    if (end - p >= 32) { /* one fixed-size copy: the buffer has 40 bytes */
        memcpy(p, log->stamp, 32);
        return p + log->stamp_len;
    }
    return put(p, end, log->stamp, log->stamp_len);
}

/* %{Name}i: every field of that name (lower, the name in lower case),
   joined with ", " as a repeated field's values are; "-" when there is
   none. */
static char *put_request_header(char *p, char *end, const csgi_http__head *head, const char *lower,
                                size_t len)
{
    int found = 0;
    if (head) {
        for (size_t i = 0; i < head->header_count; i++) {
            const csgi_http__header *h = &head->headers[i];
            if (h->name_len != len || !csgi_char__equal_nocase(h->name, lower, len))
                continue;
            if (found)
                p = put_const(p, end, ", ", 2);
            found = 1;
            p = put_escaped(p, end, h->value, h->value_len);
        }
    }
    return found ? p : put_char(p, end, '-');
}

/* %u, %{KEY}e, %{Name}o: what the request's consumer knows. */
static inline char *put_application_value(char *p, char *end, const csgi_access_log__entry *entry,
                                          int kind, const char *name)
{
    size_t len = 0;
    const char *value =
        entry->value ? entry->value(entry->value_request, kind, name, &len, entry->value_userdata)
                     : NULL;
    return put_value(p, end, value, len);
}

/*
 * The common and combined formats without the token table: the same
 * writers, in the order of their directives, which spares a dispatch per
 * token on the formats nearly everyone uses. Their fixed pieces (the
 * address, the time, the status, the byte count, the punctuation) take
 * less than FIXED_MAX bytes in all, so the pieces of variable length (the
 * request's and the application's values) stop that far before the end
 * and the fixed ones are written unchecked. format_tokens cuts the same
 * way: a long request line never costs a line its status.
 */
#define FIXED_MAX 256
_Static_assert(INET6_ADDRSTRLEN + 32 + 2 * 20 + 16 < FIXED_MAX, "the fixed pieces fit");
_Static_assert(FIXED_MAX < CSGI_ACCESS_LOG__LINE_MAX / 2, "and leave room for the rest");

#define FIXED(p, text) (memcpy((p), (text), sizeof(text) - 1), (p) + sizeof(text) - 1)

static char *format_common(csgi_access_log *log, const csgi_access_log__entry *entry, char *p,
                           char *end)
{
    char *limit = end - FIXED_MAX;
    p = put_host(log, p, end, entry->peer);
    p = FIXED(p, " - ");
    p = put_application_value(p, limit, entry, CSGI_ACCESS_LOG__USER, "REMOTE_USER");
    *p++ = ' ';
    p = put_time(log, p, end, entry->start.tv_sec);
    p = FIXED(p, " \"");
    p = put_value(p, limit, entry->line, entry->line_len);
    p = FIXED(p, "\" ");
    p = put_status(p, end, entry->status);
    *p++ = ' ';
    return put_bytes_clf(p, end, entry->body_bytes);
}

/* The Referer and User-Agent fields of the combined format, found in one
   pass over the head (the general way when either is repeated). */
static char *put_referer_and_agent(char *p, char *end, const csgi_http__head *head)
{
    const csgi_http__header *referer = NULL, *agent = NULL;
    int repeated = 0;
    for (size_t i = 0; head && i < head->header_count; i++) {
        const csgi_http__header *h = &head->headers[i];
        if (h->name_len == 7 && csgi_char__equal_nocase(h->name, "referer", 7)) {
            repeated |= referer != NULL;
            referer = h;
        } else if (h->name_len == 10 && csgi_char__equal_nocase(h->name, "user-agent", 10)) {
            repeated |= agent != NULL;
            agent = h;
        }
    }
    char *limit = end - FIXED_MAX;
    p = FIXED(p, " \"");
    if (repeated)
        p = put_request_header(p, limit, head, "referer", 7);
    else
        p = put_value(p, limit, referer ? referer->value : NULL, referer ? referer->value_len : 0);
    p = FIXED(p, "\" \"");
    if (repeated)
        p = put_request_header(p, limit, head, "user-agent", 10);
    else
        p = put_value(p, limit, agent ? agent->value : NULL, agent ? agent->value_len : 0);
    *p++ = '"';
    return p;
}

static char *format_tokens(csgi_access_log *log, const csgi_access_log__entry *entry, char *p,
                           char *end)
{
    const csgi_http__head *head = entry->head;
    char *limit = end - FIXED_MAX; /* for the pieces of variable length, as format_common */
    for (size_t i = 0; i < log->token_count; i++) {
        const token *t = &log->tokens[i];
        switch (t->kind) {
        case T_TEXT: p = put_short(p, end, t->text, t->len); break;
        case T_HOST: p = put_host(log, p, end, entry->peer); break;
        case T_USER:
            p = put_application_value(p, limit, entry, CSGI_ACCESS_LOG__USER, "REMOTE_USER");
            break;
        case T_TIME: p = put_time(log, p, end, entry->start.tv_sec); break;
        case T_REQUEST: p = put_value(p, limit, entry->line, entry->line_len); break;
        case T_METHOD:
            p = put_value(p, limit, head ? head->method : NULL, head ? head->method_len : 0);
            break;
        case T_PATH:
            p = put_value(p, limit, head ? head->path : NULL, head ? head->path_len : 0);
            break;
        case T_QUERY:
            if (head && head->query) {
                p = put_char(p, end, '?');
                p = put_escaped(p, limit, head->query, head->query_len);
            }
            break;
        case T_PROTOCOL:
            if (head)
                p = put_const(p, end, head->version_minor ? "HTTP/1.1" : "HTTP/1.0", 8);
            else
                p = put_char(p, end, '-');
            break;
        case T_STATUS: p = put_status(p, end, entry->status); break;
        case T_BYTES_CLF: p = put_bytes_clf(p, end, entry->body_bytes); break;
        case T_BYTES: p = put_number(p, end, entry->body_bytes); break;
        case T_SENT: p = put_number(p, end, entry->sent_bytes); break;
        case T_MICROSECONDS: p = put_number(p, end, entry->duration_us); break;
        case T_MILLISECONDS: p = put_number(p, end, entry->duration_us / 1000); break;
        case T_SECONDS: p = put_number(p, end, entry->duration_us / 1000000); break;
        case T_REQUEST_HEADER: p = put_request_header(p, limit, head, t->text, t->len); break;
        case T_RESPONSE_HEADER:
            p = put_application_value(p, limit, entry, CSGI_ACCESS_LOG__RESPONSE, t->text);
            break;
        case T_ENVIRON:
            p = put_application_value(p, limit, entry, CSGI_ACCESS_LOG__ENVIRON, t->text);
            break;
        case T_PID: p = put_number(p, end, (uint64_t)getpid()); break; /* workers: not cached */
        default: break;
        }
    }
    return p;
}

int csgi_access_log__write(csgi_access_log *log, const csgi_access_log__entry *entry)
{
    lock(log);
    char *start = log->buffer + log->len;
    char *end = start + CSGI_ACCESS_LOG__LINE_MAX - 1; /* room for the newline */
    char *p;
    if (log->shape == SHAPE_COMBINED)
        p = put_referer_and_agent(format_common(log, entry, start, end), end, entry->head);
    else if (log->shape == SHAPE_COMMON)
        p = format_common(log, entry, start, end);
    else
        p = format_tokens(log, entry, start, end);
    *p++ = '\n';
    log->len += (size_t)(p - start);
    if (log->len >= log->threshold)
        flush_locked(log);
    int waiting = log->len > 0;
    unlock(log);
    return waiting;
}
