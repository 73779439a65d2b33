/*
 * The lint filter (include/csgi/lint.h) and its INI factory
 * (egg:csgi#lint, egg:Paste#lint).
 *
 * For each request the filter checks the environ, then calls the next
 * application with a start-response of its own (which checks the status
 * and fields) and wraps an iterator body in a body of its own (which checks
 * the order of calls, the chunks and the byte count). A body of bytes or a
 * file is checked at once and handed on unwrapped, so that the server
 * still sends it with its length (and a file with sendfile).
 *
 * Everything per request lives in the request's arena.
 */
#include "common/alloc.h"
#include "common/chartab.h"
#include "common/options.h"
#include "common/token.h"
#include "gateway/app_private.h"
#include "middleware/middleware.h"

#include <csgi/lint.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct lint {
    csgi_app *next;
    int strict;
} lint;

/* One request seen by the filter. */
typedef struct lint_request {
    const lint *lint;
    csgi_environ *environ;
    csgi_start_response *parent; /* the server's (or outer middleware's) */
    csgi_body *inner;            /* the application's body */
    csgi_body *body;             /* the filter's iterator around it, or NULL */
    int64_t content_length;      /* the application's, else -1 */
    int64_t declared;            /* the iterator's declared length, else -1 */
    uint64_t produced;           /* body bytes the application produced */
    int status;                  /* its status code, 0 before start-response */
    unsigned char is_head;       /* a HEAD request */
    unsigned char started;       /* start-response was called */
    unsigned char passed;        /* a status went to the parent */
    unsigned char body_started;  /* body bytes went out: too late for a 500 */
    unsigned char replaced;      /* strict: the filter answers 500 itself */
    unsigned char error_sent;    /* ... and its text went out */
    unsigned char no_body_noted; /* bytes for 204/304/HEAD already reported */
    unsigned char ended;         /* the body ended (next returned 0) */
    unsigned char length_read;   /* declared was read from the inner body */
} lint_request;

static const char error_text[] = "500 Internal Server Error\n";

/* A violation: log it; in strict mode, before the body started, answer
   500 instead of the application. */
static void violation(lint_request *req, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void violation(lint_request *req, const char *format, ...)
{
    char text[300];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof(text), format, args);
    va_end(args);
    csgi_environ_log(req->environ, "lint: %s", text);
    if (!req->lint->strict || req->replaced || req->body_started)
        return;
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain; charset=utf-8")};
    /* A status already passed on is replaced, as exc_info allows. */
    if (csgi_start_response_call(req->parent, "500 Internal Server Error", headers, 1,
                                 req->passed ? "lint: the response breaks the protocol" : NULL) ==
        0) {
        req->replaced = 1;
        req->passed = 1;
        /* The error text goes out instead of the application's bytes. */
        if (req->body)
            csgi_body_set_length(req->body, sizeof(error_text) - 1);
    }
}

/* ---- The environ --------------------------------------------------------------------- */

static const char *string_key(lint_request *req, const char *key)
{
    csgi_value_kind kind = csgi_environ_kind(req->environ, key);
    if (kind == CSGI_VALUE_NONE) {
        violation(req, "environ: %s is missing", key);
        return NULL;
    }
    if (kind != CSGI_VALUE_STRING) {
        violation(req, "environ: %s is not a string", key);
        return NULL;
    }
    return csgi_environ_get(req->environ, key);
}

static void kind_key(lint_request *req, const char *key, csgi_value_kind want, const char *what)
{
    csgi_value_kind kind = csgi_environ_kind(req->environ, key);
    if (kind == CSGI_VALUE_NONE)
        violation(req, "environ: %s is missing", key);
    else if (kind != want)
        violation(req, "environ: %s is not %s", key, what);
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static void check_environ(lint_request *req)
{
    const char *method = string_key(req, "REQUEST_METHOD");
    if (method && !csgi_char__is_token(method, strlen(method)))
        violation(req, "environ: REQUEST_METHOD is not a token: \"%.40s\"", method);
    const char *script_name = string_key(req, "SCRIPT_NAME");
    if (script_name && *script_name &&
        (script_name[0] != '/' || script_name[strlen(script_name) - 1] == '/'))
        violation(req,
                  "environ: SCRIPT_NAME must be empty or start with / and not end with /: "
                  "\"%.80s\"",
                  script_name);
    const char *path_info = string_key(req, "PATH_INFO");
    if (path_info && *path_info && path_info[0] != '/' &&
        !(strcmp(path_info, "*") == 0 && method && strcmp(method, "OPTIONS") == 0))
        violation(req, "environ: PATH_INFO must be empty or start with /: \"%.80s\"", path_info);
    string_key(req, "QUERY_STRING");
    const char *server_name = string_key(req, "SERVER_NAME");
    if (server_name && !*server_name)
        violation(req, "environ: SERVER_NAME is empty");
    const char *port = string_key(req, "SERVER_PORT");
    if (port && !all_digits(port))
        violation(req, "environ: SERVER_PORT is not digits: \"%.20s\"", port);
    const char *protocol = string_key(req, "SERVER_PROTOCOL");
    if (protocol && strncmp(protocol, "HTTP/", 5) != 0)
        violation(req, "environ: SERVER_PROTOCOL is not HTTP/x.y: \"%.20s\"", protocol);
    string_key(req, "csgi.version");
    const char *scheme = string_key(req, "csgi.url_scheme");
    if (scheme && strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
        violation(req, "environ: csgi.url_scheme is neither http nor https: \"%.20s\"", scheme);
    kind_key(req, "csgi.input", CSGI_VALUE_POINTER, "a pointer");
    kind_key(req, "csgi.errors", CSGI_VALUE_POINTER, "a pointer");
    kind_key(req, "csgi.multithread", CSGI_VALUE_INT, "an integer");
    kind_key(req, "csgi.multiprocess", CSGI_VALUE_INT, "an integer");
    kind_key(req, "csgi.run_once", CSGI_VALUE_INT, "an integer");

    csgi_value_kind kind = csgi_environ_kind(req->environ, "CONTENT_LENGTH");
    if (kind != CSGI_VALUE_NONE) {
        const char *length = csgi_environ_get(req->environ, "CONTENT_LENGTH");
        if (!length || !all_digits(length))
            violation(req, "environ: CONTENT_LENGTH is not digits");
    }
    kind = csgi_environ_kind(req->environ, "CONTENT_TYPE");
    if (kind != CSGI_VALUE_NONE && kind != CSGI_VALUE_STRING)
        violation(req, "environ: CONTENT_TYPE is not a string");
    if (csgi_environ_kind(req->environ, "HTTP_CONTENT_TYPE") != CSGI_VALUE_NONE)
        violation(req, "environ: HTTP_CONTENT_TYPE is set (the server gives CONTENT_TYPE)");
    if (csgi_environ_kind(req->environ, "HTTP_CONTENT_LENGTH") != CSGI_VALUE_NONE)
        violation(req, "environ: HTTP_CONTENT_LENGTH is set (the server gives CONTENT_LENGTH)");
    size_t cursor = 0;
    const char *key;
    while (csgi_environ_next(req->environ, &cursor, &key, &kind))
        if (strncmp(key, "HTTP_", 5) == 0 && kind != CSGI_VALUE_STRING)
            violation(req, "environ: %.80s is not a string", key);
}

/* ---- start-response ------------------------------------------------------------------ */

/* Check the status line; returns the code, or 0 when malformed. */
static int check_status(lint_request *req, const char *status)
{
    if (!status) {
        violation(req, "start-response: no status line");
        return 0;
    }
    if (strlen(status) < 4 || status[0] < '1' || status[0] > '9' || status[1] < '0' ||
        status[1] > '9' || status[2] < '0' || status[2] > '9' || status[3] != ' ') {
        violation(req, "start-response: status is not \"DDD Reason\": \"%.40s\"", status);
        return 0;
    }
    int code = (status[0] - '0') * 100 + (status[1] - '0') * 10 + (status[2] - '0');
    if (code < 200)
        violation(req, "start-response: status %d is informational (the server sends those)", code);
    if (code > 599)
        violation(req, "start-response: status %d is above 599", code);
    if (!status[4])
        violation(req, "start-response: status %d has no reason phrase", code);
    else if (!csgi_char__is_field_value(status + 4, strlen(status + 4)))
        violation(req, "start-response: control character in the status line");
    return code;
}

static void check_headers(lint_request *req, int code, const csgi_header *headers, size_t count)
{
    int content_type = 0, content_length = 0;
    req->content_length = -1;
    for (size_t i = 0; i < count; i++) {
        const csgi_header *h = &headers[i];
        if (!h->name || (h->value_len && !h->value)) {
            violation(req, "header %zu: name or value missing", i);
            continue;
        }
        int shown = h->name_len > 60 ? 60 : (int)h->name_len;
        if (!csgi_char__is_token(h->name, h->name_len)) {
            violation(req, "header name is not a token: \"%.*s\"", shown, h->name);
            continue;
        }
        if (!csgi_char__is_field_value(h->value, h->value_len))
            violation(req, "header %.*s: CR, LF, NUL or control character in the value", shown,
                      h->name);
        csgi_token__id id = csgi_token__lookup(h->name, h->name_len);
        if (id == CSGI_TOKEN__STATUS)
            violation(req, "header Status is not allowed (the status goes in the status line)");
        if (csgi_token__is_hop_by_hop(h->name, h->name_len))
            violation(req, "header %.*s is hop-by-hop (the server manages the connection)", shown,
                      h->name);
        if (id == CSGI_TOKEN__CONTENT_TYPE)
            content_type++;
        if (id == CSGI_TOKEN__CONTENT_LENGTH) {
            if (content_length++) {
                violation(req, "header Content-Length given twice");
                continue;
            }
            int64_t n = 0;
            int ok = h->value_len > 0 && h->value_len <= 18;
            for (size_t k = 0; ok && k < h->value_len; k++) {
                ok = h->value[k] >= '0' && h->value[k] <= '9';
                n = n * 10 + (h->value[k] - '0');
            }
            if (ok)
                req->content_length = n;
            else
                violation(req, "header Content-Length is not a number: \"%.*s\"",
                          h->value_len > 30 ? 30 : (int)h->value_len, h->value);
        }
    }
    int no_body = code == 204 || code == 304;
    if (!content_type && !no_body && code >= 200)
        violation(req, "no Content-Type header in a %d response", code);
    if (content_type > 1)
        violation(req, "header Content-Type given %d times", content_type);
    if (no_body && req->content_length > 0)
        violation(req, "Content-Length %lld in a %d response, which has no body",
                  (long long)req->content_length, code);
}

static int lint_start_response(const char *status, const csgi_header *headers, size_t count,
                               const char *exc_info, void *userdata)
{
    lint_request *req = userdata;
    if (req->started && !exc_info) {
        violation(req, "start-response called twice without exc_info");
        return req->replaced
                   ? CSGI_ESTATE
                   : csgi_start_response_call(req->parent, status, headers, count, exc_info);
    }
    if (count && !headers) {
        violation(req, "start-response: %zu headers but no list", count);
        return CSGI_EINVAL;
    }
    req->started = 1;
    int code = check_status(req, status);
    req->status = code;
    check_headers(req, code, headers, count);
    if (req->replaced)
        return CSGI_EINVAL; /* the filter answers instead */
    int rc = csgi_start_response_call(req->parent, status, headers, count, exc_info);
    if (rc == 0)
        req->passed = 1;
    return rc;
}

/* ---- The body ------------------------------------------------------------------------ */

static int no_body_response(const lint_request *req)
{
    return req->is_head || req->status == 204 || req->status == 304;
}

/* Count body bytes the application produced and check them against its
   Content-Length and the kind of response. */
static void count_bytes(lint_request *req, size_t len)
{
    if (!len)
        return;
    if (no_body_response(req) && !req->no_body_noted) {
        req->no_body_noted = 1;
        violation(req, "body bytes in a response to %s",
                  req->is_head ? "HEAD (the server drops them)" : "204 or 304, which has no body");
    }
    uint64_t before = req->produced;
    req->produced += len;
    if (req->content_length >= 0 && before <= (uint64_t)req->content_length &&
        req->produced > (uint64_t)req->content_length)
        violation(req, "the body is longer than its Content-Length (%lld)",
                  (long long)req->content_length);
    if (req->declared >= 0 && before <= (uint64_t)req->declared &&
        req->produced > (uint64_t)req->declared)
        violation(req, "the body is longer than its declared length (%lld)",
                  (long long)req->declared);
}

static void check_end(lint_request *req)
{
    if (req->content_length >= 0 && req->produced < (uint64_t)req->content_length &&
        !no_body_response(req))
        violation(req, "the body (%llu bytes) is shorter than its Content-Length (%lld)",
                  (unsigned long long)req->produced, (long long)req->content_length);
    if (req->declared >= 0 && req->produced < (uint64_t)req->declared && !no_body_response(req))
        violation(req, "the body (%llu bytes) is shorter than its declared length (%lld)",
                  (unsigned long long)req->produced, (long long)req->declared);
}

/* The application's declared length, once its body gave a first answer:
   a late answer (a handler waiting for the request body) declares it only
   then. The filter's own body has the same length (lint_call). */
static void read_declared(lint_request *req)
{
    if (req->length_read)
        return;
    req->length_read = 1;
    int64_t length = csgi_body_length(req->inner);
    if (length < 0)
        return;
    req->declared = length;
    if (req->content_length >= 0 && req->content_length != length)
        violation(req, "Content-Length (%lld) differs from the body's declared length (%lld)",
                  (long long)req->content_length, (long long)length);
}

static int lint_next(void *state, csgi_chunk *chunk)
{
    lint_request *req = state;
    if (req->replaced) {
        if (req->error_sent)
            return 0;
        req->error_sent = 1;
        req->body_started = 1;
        chunk->data = error_text;
        chunk->len = sizeof(error_text) - 1;
        return 1;
    }
    if (req->ended) {
        violation(req, "next called again after the body ended");
        return 0;
    }
    csgi_chunk got = {NULL, 0};
    int rc = csgi_body_next(req->inner, &got);
    if (rc == CSGI_EAGAIN)
        return rc;
    if (rc < 0) {
        csgi_environ_log(req->environ, "lint: the body failed: %s", csgi_err_name(rc));
        return rc;
    }
    if (!req->started) {
        violation(req, rc == 0 ? "the body ended before start-response was called"
                               : "body produced before start-response");
        if (req->replaced)
            return lint_next(state, chunk);
        return rc;
    }
    read_declared(req);
    if (req->replaced)
        return lint_next(state, chunk);
    if (rc == 0) {
        req->ended = 1;
        check_end(req);
        if (req->replaced)
            return lint_next(state, chunk);
        return 0;
    }
    if (got.len && !got.data) {
        violation(req, "a chunk of %zu bytes without data", got.len);
        got.len = 0;
    }
    count_bytes(req, got.len);
    if (req->replaced)
        return lint_next(state, chunk);
    /* The server sends the head with the first piece, even an empty one:
       too late for a clean 500 from then on. */
    req->body_started = 1;
    *chunk = got;
    return 1;
}

static void lint_close(void *state)
{
    lint_request *req = state;
    csgi_body_close(req->inner);
}

static const csgi_body_type lint_body_type = {"lint", lint_next, lint_close};

/* Strict mode: the filter's own 500 instead of the application's body. */
static csgi_body *error_answer(lint_request *req)
{
    csgi_body_close(req->inner);
    return csgi_body_static(req->environ, error_text, sizeof(error_text) - 1);
}

static csgi_body *lint_call(void *state, csgi_environ *environ, csgi_start_response *start_response)
{
    const lint *l = state;
    lint_request *req = csgi_environ_alloc(environ, sizeof(*req));
    if (!req)
        return NULL;
    *req = (lint_request){.lint = l,
                          .environ = environ,
                          .parent = start_response,
                          .content_length = -1,
                          .declared = -1};
    check_environ(req);
    const char *method = csgi_environ_get(environ, "REQUEST_METHOD");
    req->is_head = method && strcmp(method, "HEAD") == 0;

    csgi_start_response *mine =
        csgi_start_response_new(environ, start_response, lint_start_response, req);
    if (!mine)
        return NULL;
    if (req->replaced)
        return error_answer(req);
    req->inner = csgi_app_call(l->next, environ, mine);
    if (!req->inner) {
        csgi_environ_log(environ, "lint: the application returned no body");
        return NULL;
    }
    int iterator = csgi_body_kind_of(req->inner) == CSGI_BODY_ITERATOR;
    if (iterator && !req->replaced) {
        /* Pieces checked as they pass; the length passed on as the
           application's body has it when the head goes out. */
        req->body = csgi_body_new(environ, &lint_body_type, req);
        if (req->body)
            csgi_body__length_from(req->body, req->inner);
        return req->body;
    }
    /* Bytes or a file: checked now, handed on as they are. */
    if (!iterator && !req->started)
        violation(req, "body returned before start-response was called");
    else if (!iterator) {
        count_bytes(req, (size_t)csgi_body_length(req->inner));
        check_end(req);
    }
    return req->replaced ? error_answer(req) : req->inner;
}

static void lint_destroy(void *state)
{
    lint *l = state;
    if (!l)
        return;
    csgi_app_free(l->next);
    csgi__free(l);
}

static const csgi_app_type lint_type = {"lint", lint_call, lint_destroy};

int csgi_lint_new(csgi_app **out, csgi_app *next, const csgi_lint_options *options)
{
    if (out)
        *out = NULL;
    if (!out || !next ||
        (options && !csgi_options__version_ok(options->version, CSGI_LINT_OPTIONS_VERSION))) {
        csgi_app_free(next);
        return CSGI_EINVAL;
    }
    lint *l = csgi__malloc(sizeof(*l));
    if (!l) {
        csgi_app_free(next);
        return CSGI_ENOMEM;
    }
    l->next = next;
    l->strict = options ? options->strict != 0 : 0;
    return csgi_app_new(out, &lint_type, l);
}

/* ---- INI factory --------------------------------------------------------------------- */

int csgi_lint__filter_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                              const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    csgi_lint_options options = CSGI_LINT_OPTIONS_INIT;
    int rc = csgi_conf_asbool(local_conf, "strict", 0, &options.strict, error);
    if (rc != 0) {
        csgi_app_free(next);
        return rc;
    }
    return csgi_lint_new(out, next, &options);
}
