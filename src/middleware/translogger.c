/*
 * Paste's translogger filter (TransLogger) and its INI factory
 * (egg:Paste#translogger, paste.translogger:make_filter,
 * egg:csgi#translogger): one access log line per request, for the
 * pipeline it wraps, in the format Paste writes (Apache's combined):
 *
 *     192.0.2.7 - bob [03/Dec/2026:19:05:42 +0000] "GET /x?y HTTP/1.1" 200 5 "-" "curl/8"
 *
 * The line is written when the request ends, so the byte count is what
 * the body gave, counted as it streamed (an iterator body is wrapped; a
 * bytes or file body keeps its fast path and counts its length), and
 * REMOTE_USER is what the filters behind set. Where the line goes: the
 * error stream at logging_level (info by default), prefixed with
 * logger_name ("wsgi"), or with the csgi key `file` a file opened once at
 * load with O_APPEND, one write(2) per line (prefixed only when
 * logger_name is given), which processes and threads may share.
 *
 * Unlike Paste, X-Forwarded-For is not taken for the client's address
 * (any client can send it): http_proxy_to_wsgi in front sets REMOTE_ADDR
 * from a trusted proxy's headers. Every field from the request or the
 * application is escaped (csgi_middleware__escape()).
 */
#include "common/alloc.h"
#include "middleware/middleware.h"

#include <csgi/app.h>
#include <csgi/environ.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define PREFIX_MAX 64

typedef struct translogger {
    csgi_app *next;
    char prefix[PREFIX_MAX + 3]; /* "name: ", or "" */
    int level;
    int fd; /* the file, or -1: the error stream */
} translogger;

typedef struct call {
    const translogger *t;
    csgi_environ *environ;
    csgi_start_response *parent;
    csgi_body *inner; /* an iterator being counted, or NULL */
    csgi_body *outer;
    time_t start;
    uint64_t bytes;
    int status; /* 0 until the answer starts */
    bool gave;  /* the wrapper gave a piece */
} call;

/* The escaped value of an environ key into out, "-" when unset or empty. */
static const char *field(csgi_environ *environ, const char *key, char *out, size_t size)
{
    size_t len = 0;
    const char *value = csgi_environ_get_n(environ, key, &len);
    if (!value || len == 0)
        return "-";
    csgi_middleware__escape(out, size, value, len);
    return out;
}

static void write_line(call *c)
{
    csgi_environ *environ = c->environ;
    char host[64], user[64], method[32], uri[320], protocol[16], referer[192], agent[192];
    char when[64], status[16], bytes[24], line[1200];
    struct tm tm;
    if (!localtime_r(&c->start, &tm) || !strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S %z", &tm))
        snprintf(when, sizeof(when), "-");
    snprintf(status, sizeof(status), c->status > 0 ? "%d" : "-", c->status);
    const char *request_method = csgi_environ_get(environ, "REQUEST_METHOD");
    bool head = request_method && strcmp(request_method, "HEAD") == 0;
    if (c->bytes == 0 || head)
        snprintf(bytes, sizeof(bytes), "-");
    else
        snprintf(bytes, sizeof(bytes), "%llu", (unsigned long long)c->bytes);
    int len = snprintf(line, sizeof(line), "%s%s - %s [%s] \"%s %s %s\" %s %s \"%s\" \"%s\"",
                       c->t->fd >= 0 ? c->t->prefix : "",
                       field(environ, "REMOTE_ADDR", host, sizeof(host)),
                       field(environ, "REMOTE_USER", user, sizeof(user)), when,
                       field(environ, "REQUEST_METHOD", method, sizeof(method)),
                       field(environ, "REQUEST_URI", uri, sizeof(uri)),
                       field(environ, "SERVER_PROTOCOL", protocol, sizeof(protocol)), status, bytes,
                       field(environ, "HTTP_REFERER", referer, sizeof(referer)),
                       field(environ, "HTTP_USER_AGENT", agent, sizeof(agent)));
    if (c->t->fd < 0) {
        csgi_environ_log_at(environ, c->t->level, "%s%s", c->t->prefix, line);
        return;
    }
    line[len++] = '\n';
    csgi_middleware__write_line(environ, c->t->fd, line, (size_t)len,
                                "translogger's access log line");
}

static void request_end(void *userdata)
{
    write_line(userdata);
}

static int count_next(void *state, csgi_chunk *chunk)
{
    call *c = state;
    int rc = csgi_body_next(c->inner, chunk);
    if (!c->gave && rc == 1) {
        /* An inner body that declares its length late does it by now. */
        csgi_body_set_length(c->outer, csgi_body_length(c->inner));
        c->gave = true;
    }
    if (rc == 1)
        c->bytes += chunk->len;
    return rc;
}

static void count_close(void *state)
{
    call *c = state;
    csgi_body_close(c->inner);
    c->inner = NULL;
}

static const csgi_body_type count_type = {"translogger", count_next, count_close};

static int note_status(const char *status, const csgi_header *headers, size_t count,
                       const char *exc_info, void *userdata)
{
    call *c = userdata;
    int rc = csgi_start_response_call(c->parent, status, headers, count, exc_info);
    if (rc == 0)
        c->status = atoi(status);
    return rc;
}

static csgi_body *translogger_call(void *state, csgi_environ *environ,
                                   csgi_start_response *start_response)
{
    const translogger *t = state;
    call *c = csgi_environ_alloc_zeroed(environ, sizeof(*c));
    if (!c || csgi_environ_defer(environ, request_end, c) != 0)
        return NULL;
    c->t = t;
    c->environ = environ;
    c->parent = start_response;
    c->start = time(NULL);
    csgi_start_response *own = csgi_start_response_new(environ, start_response, note_status, c);
    csgi_body *body = own ? csgi_app_call(t->next, environ, own) : NULL;
    if (!body) {
        c->status = 500; /* what the server answers */
        return NULL;
    }
    if (csgi_body_kind_of(body) != CSGI_BODY_ITERATOR) {
        int64_t length = csgi_body_length(body);
        c->bytes = length > 0 ? (uint64_t)length : 0;
        return body;
    }
    c->inner = body;
    c->outer = csgi_body_new(environ, &count_type, c);
    if (c->outer && csgi_body_length(body) >= 0)
        csgi_body_set_length(c->outer, csgi_body_length(body));
    return c->outer;
}

static void translogger_destroy(void *state)
{
    translogger *t = state;
    if (!t)
        return;
    csgi_app_free(t->next);
    if (t->fd >= 0)
        close(t->fd);
    csgi__free(t);
}

static const csgi_app_type translogger_type = {"translogger", translogger_call,
                                               translogger_destroy};

/* ---- INI factory --------------------------------------------------------------------- */

/* A Python logging level, by name or number, as the csgi level. */
static int parse_level(const csgi_conf *conf, const char *key, int *out, csgi_load_error *error)
{
    static const struct {
        const char *name;
        int number, level;
    } levels[] = {{"CRITICAL", 50, 0}, {"FATAL", 50, 0}, {"ERROR", 40, 0}, {"WARNING", 30, 1},
                  {"WARN", 30, 1},     {"INFO", 20, 2},  {"DEBUG", 10, 3}};
    const char *value = csgi_conf_get(conf, key);
    if (!value)
        return 0;
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        char number[8];
        snprintf(number, sizeof(number), "%d", levels[i].number);
        if (strcasecmp(value, levels[i].name) == 0 || strcmp(value, number) == 0) {
            *out = levels[i].level;
            return 0;
        }
    }
    csgi_conf_error(conf, key, error,
                    "'%s' is not a logging level (DEBUG, INFO, WARNING, ERROR, CRITICAL or "
                    "10, 20, 30, 40, 50)",
                    value);
    return CSGI_EINVAL;
}

static int setup(translogger *t, const csgi_conf *conf, csgi_load_error *error)
{
    static const char *const known[] = {
        "logger_name", "logging_level", "setup_console_handler", "set_logger_level", "file", NULL};
    if (csgi_conf_get(conf, "format")) {
        csgi_conf_error(conf, "format", error,
                        "Paste's Python format strings are not supported: translogger writes "
                        "Paste's default format (Apache's combined)");
        return CSGI_EINVAL;
    }
    int rc = csgi_middleware__known_keys(conf, "translogger", known, error);
    int console = 1, ignored = 0;
    if (rc == 0)
        rc = csgi_conf_asbool(conf, "setup_console_handler", 1, &console, error);
    if (rc == 0)
        rc = parse_level(conf, "logging_level", &t->level, error);
    if (rc == 0)
        rc = parse_level(conf, "set_logger_level", &ignored, error);
    if (rc != 0)
        return rc;
    const char *name = csgi_conf_get(conf, "logger_name");
    if (name && (strlen(name) > PREFIX_MAX || strpbrk(name, "%\"\\\r\n\t"))) {
        csgi_conf_error(conf, "logger_name", error,
                        "at most %d characters, without %%, quotes, backslashes or control "
                        "characters",
                        PREFIX_MAX);
        return CSGI_EINVAL;
    }
    const char *file = csgi_conf_get(conf, "file");
    if (file && !name)
        t->prefix[0] = '\0';
    else
        snprintf(t->prefix, sizeof(t->prefix), "%s: ", name ? name : "wsgi");
    return file ? csgi_middleware__open_file(conf, file, 0644, &t->fd, error) : 0;
}

int csgi_translogger__filter_factory(csgi_app **out, csgi_loader *loader,
                                     const csgi_conf *global_conf, const csgi_conf *local_conf,
                                     csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    translogger *t = csgi__calloc(1, sizeof(*t));
    if (!t) {
        csgi_app_free(next);
        return CSGI_ENOMEM;
    }
    t->next = next;
    t->fd = -1;
    t->level = 2; /* Paste's logging.INFO */
    int rc = setup(t, local_conf, error);
    if (rc != 0) {
        translogger_destroy(t);
        return rc;
    }
    return csgi_app_new(out, &translogger_type, t);
}
