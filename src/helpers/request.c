/*
 * The request object (include/csgi/request.h): URL pieces, headers, query,
 * cookies, form and body of one environ.
 *
 * Caching: every parsed result remembers the environ string it came from
 * (its pointer). The environ copies a value each time a key is set, into
 * arena memory that is never reused during the request, so a different
 * pointer means a different value, whoever set it: no setter has to
 * remember to invalidate anything.
 *
 * (Parameters are "env", not "environ": <unistd.h> declares a global
 * "environ" under _GNU_SOURCE.)
 */
#include "helpers/helpers.h"

#include "common/chartab.h"
#include "gateway/environ_private.h"

#include <csgi/json.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define REQUEST_KEY "csgi.request"
#define READ_SIZE   16384

enum { BODY_UNREAD, BODY_READ, BODY_STREAMED };
enum { FORM_NONE, FORM_URLENCODED, FORM_MULTIPART, FORM_DONE, FORM_FAILED };

/* The environ strings the URLs are built from. */
enum {
    URL_SCHEME,
    URL_HTTP_HOST,
    URL_SERVER_NAME,
    URL_SERVER_PORT,
    URL_SCRIPT,
    URL_PATH,
    URL_QUERY,
    URL_SOURCES
};

struct csgi_request {
    csgi_environ *environ;
    csgi_arena *arena;
    csgi_form_limits limits;

    const char *url_sources[URL_SOURCES];
    const char *host_url;
    const char *application_url;
    const char *path_url;
    const char *url;

    const char *content_type_source;
    const char *content_type;

    const char *query_source;
    csgi_params *query;
    const char *cookie_source;
    csgi_params *cookies;

    int body_state;
    const char *body;
    size_t body_len;

    int form_state;
    int form_result;
    csgi_request_error form_error;
    csgi_params *form;
    csgi_multipart__parser *multipart;
    char *read_buffer;
    const csgi_form_file **files;
    size_t file_count;

    json_t *json;

    void *handler_call; /* the running handler's call (handler.c) */
};

static void set_error(csgi_request_error *error, size_t position, const char *format, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void set_error(csgi_request_error *error, size_t position, const char *format, ...)
{
    if (!error)
        return;
    va_list args;
    memset(error, 0, sizeof(*error));
    error->position = position;
    va_start(args, format);
    vsnprintf(error->text, sizeof(error->text), format, args);
    va_end(args);
}

int csgi_request_from_environ(csgi_request **out, csgi_environ *env)
{
    if (!out)
        return CSGI_EINVAL;
    *out = NULL;
    if (!env)
        return CSGI_EINVAL;
    csgi_request *request = csgi_environ__request(env);
    if (request) {
        *out = request;
        return 0;
    }
    request = csgi_environ_alloc_zeroed(env, sizeof(*request));
    if (!request)
        return CSGI_ENOMEM;
    request->environ = env;
    request->arena = csgi_environ__arena(env);
    /* The defaults resolved, as csgi_helpers__limits() would: a copy. */
    static const csgi_form_limits defaults = {
        .version = CSGI_FORM_LIMITS_VERSION,
        .max_fields = CSGI_HELPERS__MAX_FIELDS,
        .max_query = CSGI_HELPERS__MAX_QUERY,
        .max_body = CSGI_HELPERS__MAX_BODY,
        .max_parts = CSGI_HELPERS__MAX_PARTS,
        .max_part_header = CSGI_HELPERS__MAX_PART_HEADER,
        .max_field_size = CSGI_HELPERS__MAX_FIELD_SIZE,
        .max_file_size = CSGI_HELPERS__MAX_FILE_SIZE,
        .spool_threshold = CSGI_HELPERS__SPOOL_THRESHOLD,
    };
    request->limits = defaults;
    /* Arena memory: nothing to destroy. */
    int rc = csgi_environ__set_static_pointer(env, REQUEST_KEY, sizeof(REQUEST_KEY) - 1, request);
    if (rc != 0)
        return rc;
    *out = request;
    return 0;
}

void *csgi_request__swap_handler_call(csgi_request *request, void *call)
{
    void *previous = request->handler_call;
    request->handler_call = call;
    return previous;
}

void *csgi_request__handler_call(const csgi_request *request)
{
    return request->handler_call;
}

csgi_environ *csgi_request_environ(const csgi_request *request)
{
    return request ? request->environ : NULL;
}

int csgi_request_set_limits(csgi_request *request, const csgi_form_limits *limits)
{
    csgi_form_limits resolved;
    if (!request || csgi_helpers__limits(&resolved, limits) != 0)
        return CSGI_EINVAL;
    request->limits = resolved;
    return 0;
}

/* ---- Request line and URL ---------------------------------------------------- */

static const char *get_or(csgi_request *request, const char *key, const char *fallback, size_t *len)
{
    size_t n = 0;
    const char *value = csgi_environ_get_n(request->environ, key, &n);
    if (!value) {
        value = fallback;
        n = fallback ? strlen(fallback) : 0;
    }
    if (len)
        *len = n;
    return value;
}

const char *csgi_request_method(csgi_request *request)
{
    return request ? get_or(request, "REQUEST_METHOD", "GET", NULL) : NULL;
}

const char *csgi_request_scheme(csgi_request *request)
{
    return request ? get_or(request, "csgi.url_scheme", "http", NULL) : NULL;
}

const char *csgi_request_path_info(csgi_request *request, size_t *len)
{
    return request ? get_or(request, "PATH_INFO", "", len) : NULL;
}

const char *csgi_request_script_name(csgi_request *request, size_t *len)
{
    return request ? get_or(request, "SCRIPT_NAME", "", len) : NULL;
}

const char *csgi_request_query_string(csgi_request *request)
{
    return request ? get_or(request, "QUERY_STRING", "", NULL) : NULL;
}

const char *csgi_request_remote_addr(csgi_request *request)
{
    return request ? csgi_environ_get(request->environ, "REMOTE_ADDR") : NULL;
}

int csgi_request_set_path_info(csgi_request *request, const char *path, size_t len)
{
    if (!request || !path)
        return CSGI_EINVAL;
    return csgi_environ_set_n(request->environ, "PATH_INFO", path, len);
}

int csgi_request_set_script_name(csgi_request *request, const char *path, size_t len)
{
    if (!request || !path)
        return CSGI_EINVAL;
    return csgi_environ_set_n(request->environ, "SCRIPT_NAME", path, len);
}

int csgi_request_set_query_string(csgi_request *request, const char *query)
{
    if (!request || !query)
        return CSGI_EINVAL;
    return csgi_environ_set(request->environ, "QUERY_STRING", query);
}

static int is_default_port(const char *scheme, const char *port, size_t len)
{
    if (len == 0)
        return 1;
    if (strcmp(scheme, "http") == 0)
        return len == 2 && memcmp(port, "80", 2) == 0;
    if (strcmp(scheme, "https") == 0)
        return len == 3 && memcmp(port, "443", 3) == 0;
    return 0;
}

/* Build "a" + "b" + ... in the arena. */
static char *concat(csgi_arena *arena, const char *a, size_t a_len, const char *b, size_t b_len,
                    const char *c, size_t c_len)
{
    if (a_len > SIZE_MAX / 4 || b_len > SIZE_MAX / 4 || c_len > SIZE_MAX / 4)
        return NULL;
    char *out = csgi_arena__alloc(arena, a_len + b_len + c_len + 1);
    if (!out)
        return NULL;
    memcpy(out, a, a_len);
    memcpy(out + a_len, b, b_len);
    memcpy(out + a_len + b_len, c, c_len);
    out[a_len + b_len + c_len] = '\0';
    return out;
}

const char *csgi_request_host(csgi_request *request)
{
    if (!request)
        return NULL;
    const char *host = csgi_environ_get(request->environ, "HTTP_HOST");
    if (host && *host)
        return host;
    size_t name_len, port_len;
    const char *name = get_or(request, "SERVER_NAME", "", &name_len);
    const char *port = get_or(request, "SERVER_PORT", "", &port_len);
    if (is_default_port(csgi_request_scheme(request), port, port_len))
        return name;
    return concat(request->arena, name, name_len, ":", 1, port, port_len);
}

/* Forget the URLs when one of their sources changed. */
static void check_url_sources(csgi_request *request)
{
    static const char *const keys[URL_SOURCES] = {"csgi.url_scheme", "HTTP_HOST",   "SERVER_NAME",
                                                  "SERVER_PORT",     "SCRIPT_NAME", "PATH_INFO",
                                                  "QUERY_STRING"};
    int changed = 0;
    for (int i = 0; i < URL_SOURCES; i++) {
        const char *value = csgi_environ_get(request->environ, keys[i]);
        if (value != request->url_sources[i]) {
            request->url_sources[i] = value;
            changed = 1;
        }
    }
    if (changed)
        request->host_url = request->application_url = request->path_url = request->url = NULL;
}

const char *csgi_request_host_url(csgi_request *request)
{
    if (!request)
        return NULL;
    check_url_sources(request);
    if (request->host_url)
        return request->host_url;
    const char *scheme = csgi_request_scheme(request);
    const char *host = csgi_environ_get(request->environ, "HTTP_HOST");
    size_t host_len, port_len = 0;
    const char *port = "";
    if (host && *host) {
        host_len = strlen(host);
        /* A port follows the last ':', unless that is inside an IPv6 literal. */
        const char *colon = strrchr(host, ':');
        if (colon && host[host_len - 1] != ']') {
            port = colon + 1;
            port_len = host_len - (size_t)(port - host);
            host_len = (size_t)(colon - host);
        }
    } else {
        host = get_or(request, "SERVER_NAME", "", &host_len);
        port = get_or(request, "SERVER_PORT", "", &port_len);
    }
    char *url;
    size_t scheme_len = strlen(scheme);
    if (is_default_port(scheme, port, port_len))
        url = concat(request->arena, scheme, scheme_len, "://", 3, host, host_len);
    else {
        char *authority = concat(request->arena, host, host_len, ":", 1, port, port_len);
        url = authority ? concat(request->arena, scheme, scheme_len, "://", 3, authority,
                                 host_len + 1 + port_len)
                        : NULL;
    }
    request->host_url = url;
    return url;
}

/* prefix followed by path, percent-encoded. */
static const char *append_quoted(csgi_request *request, const char *prefix, const char *path,
                                 size_t len)
{
    size_t prefix_len = strlen(prefix);
    size_t quoted_len = csgi_char__percent_encode(NULL, path, len, CSGI_CHAR__PATH);
    char *out = csgi_arena__alloc(request->arena, prefix_len + quoted_len + 1);
    if (!out)
        return NULL;
    memcpy(out, prefix, prefix_len);
    csgi_char__percent_encode(out + prefix_len, path, len, CSGI_CHAR__PATH);
    out[prefix_len + quoted_len] = '\0';
    return out;
}

/* A URL one level deeper than prefix: prefix and the quoted path piece
   that piece_of returns, made once and kept in *cached. */
static const char *extend_url(csgi_request *request, const char *prefix, const char **cached,
                              const char *(*piece_of)(csgi_request *, size_t *))
{
    if (!*cached) {
        size_t len;
        const char *piece = piece_of(request, &len);
        *cached = append_quoted(request, prefix, piece, len);
    }
    return *cached;
}

const char *csgi_request_application_url(csgi_request *request)
{
    const char *host_url = csgi_request_host_url(request);
    return host_url
               ? extend_url(request, host_url, &request->application_url, csgi_request_script_name)
               : NULL;
}

const char *csgi_request_path_url(csgi_request *request)
{
    const char *application_url = csgi_request_application_url(request);
    return application_url
               ? extend_url(request, application_url, &request->path_url, csgi_request_path_info)
               : NULL;
}

const char *csgi_request_url(csgi_request *request)
{
    const char *path_url = csgi_request_path_url(request);
    if (!path_url)
        return NULL;
    if (!request->url) {
        size_t query_len;
        const char *query = get_or(request, "QUERY_STRING", "", &query_len);
        if (query_len == 0)
            request->url = path_url;
        else
            request->url =
                concat(request->arena, path_url, strlen(path_url), "?", 1, query, query_len);
    }
    return request->url;
}

/* The next segment: *skip leading slashes, then len bytes up to a '/'. */
static int next_segment(const char *path, size_t path_len, size_t *skip, size_t *len)
{
    if (path_len == 0)
        return 0;
    size_t slashes = 0;
    while (slashes < path_len && path[slashes] == '/')
        slashes++;
    const char *end = memchr(path + slashes, '/', path_len - slashes);
    *skip = slashes;
    *len = end ? (size_t)(end - (path + slashes)) : path_len - slashes;
    return 1;
}

const char *csgi_request_path_info_peek(csgi_request *request, size_t *len)
{
    if (!request)
        return NULL;
    size_t path_len, skip, segment_len;
    const char *path = csgi_request_path_info(request, &path_len);
    if (!next_segment(path, path_len, &skip, &segment_len))
        return NULL;
    char *segment = csgi_arena__strndup(request->arena, path + skip, segment_len);
    if (segment && len)
        *len = segment_len;
    return segment;
}

int csgi_request_path_info_pop(csgi_request *request, const char **out, size_t *len)
{
    if (!request || !out)
        return CSGI_EINVAL;
    *out = NULL;
    size_t path_len, script_len, skip, segment_len;
    const char *path = csgi_request_path_info(request, &path_len);
    const char *script = csgi_request_script_name(request, &script_len);
    if (!next_segment(path, path_len, &skip, &segment_len))
        return 0;
    size_t moved = skip + segment_len;
    char *segment = csgi_arena__strndup(request->arena, path + skip, segment_len);
    char *new_script = concat(request->arena, script, script_len, path, moved, "", 0);
    if (!segment || !new_script)
        return CSGI_ENOMEM;
    /* Both strings stay valid: the environ copies, and the old values live
       in the arena until the request ends. */
    int rc = csgi_environ_set_n(request->environ, "SCRIPT_NAME", new_script, script_len + moved);
    if (rc == 0)
        rc = csgi_environ_set_n(request->environ, "PATH_INFO", path + moved, path_len - moved);
    if (rc != 0)
        return rc;
    *out = segment;
    if (len)
        *len = segment_len;
    return 1;
}

/* ---- Headers -------------------------------------------------------------- */

const char *csgi_request_header(csgi_request *request, const char *name, size_t *len)
{
    if (!request || !name)
        return NULL;
    char key[5 + 200 + 1];
    size_t name_len = strlen(name);
    if (name_len == 0 || name_len > 200)
        return NULL;
    /* The two fields CGI keeps without HTTP_; only their lengths need a
       closer look (a compare, not a token lookup, on every call). */
    if (name_len == 12 && csgi_char__equal_nocase(name, "content-type", 12))
        return csgi_environ_get_n(request->environ, "CONTENT_TYPE", len);
    if (name_len == 14 && csgi_char__equal_nocase(name, "content-length", 14))
        return csgi_environ_get_n(request->environ, "CONTENT_LENGTH", len);
    if (csgi_environ__header_key(key, name, name_len) != 0)
        return NULL; /* not a tchar, or '_': the server drops such headers */
    return csgi_environ_get_n(request->environ, key, len);
}

const char *csgi_request_content_type(csgi_request *request)
{
    if (!request)
        return NULL;
    size_t len;
    const char *value = get_or(request, "CONTENT_TYPE", "", &len);
    if (value == request->content_type_source && request->content_type)
        return request->content_type;
    size_t end = 0;
    while (end < len && value[end] != ';')
        end++;
    size_t start = 0;
    while (start < end && csgi_char__is_ws((unsigned char)value[start]))
        start++;
    while (end > start && csgi_char__is_ws((unsigned char)value[end - 1]))
        end--;
    char *type = csgi_arena__strndup(request->arena, value + start, end - start);
    if (!type)
        return NULL;
    for (char *p = type; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    request->content_type_source = value;
    request->content_type = type;
    return type;
}

const char *csgi_request_charset(csgi_request *request)
{
    if (!request)
        return NULL;
    size_t len, charset_len;
    const char *value = get_or(request, "CONTENT_TYPE", "", &len);
    const char *charset;
    if (csgi_helpers__header_param(request->arena, value, len, "charset", &charset, &charset_len) !=
        1)
        return NULL;
    return charset;
}

int64_t csgi_request_content_length(csgi_request *request)
{
    if (!request)
        return -1;
    const char *value = csgi_environ_get(request->environ, "CONTENT_LENGTH");
    if (!value || !*value)
        return -1;
    int64_t n = 0;
    for (const char *p = value; *p; p++) {
        if (*p < '0' || *p > '9' || n > (INT64_MAX - (*p - '0')) / 10)
            return -1;
        n = n * 10 + (*p - '0');
    }
    return n;
}

/* ---- Query and cookies -------------------------------------------------------- */

int csgi_request_query(csgi_request *request, const csgi_params **out, csgi_request_error *error)
{
    if (!request || !out)
        return CSGI_EINVAL;
    *out = NULL;
    size_t len;
    const char *query = get_or(request, "QUERY_STRING", "", &len);
    if (request->query && request->query_source == query) {
        *out = request->query;
        return 0;
    }
    if (len > request->limits.max_query) {
        set_error(error, 0, "query string longer than %zu bytes", request->limits.max_query);
        return CSGI_ETOOBIG;
    }
    csgi_params *params = csgi_params__new(request->arena);
    if (!params)
        return CSGI_ENOMEM;
    int rc = csgi_params__parse_urlencoded(params, query, len, request->limits.max_fields,
                                           request->limits.strict);
    if (rc == CSGI_ETOOBIG)
        set_error(error, 0, "query string has more than %zu fields", request->limits.max_fields);
    else if (rc == CSGI_EPARSE)
        set_error(error, 0, "query string has a malformed escape or invalid UTF-8");
    if (rc != 0)
        return rc;
    request->query = params;
    request->query_source = query;
    *out = params;
    return 0;
}

int csgi_request_cookies(csgi_request *request, const csgi_params **out)
{
    if (!request || !out)
        return CSGI_EINVAL;
    *out = NULL;
    size_t len;
    const char *header = get_or(request, "HTTP_COOKIE", "", &len);
    if (request->cookies && request->cookie_source == header) {
        *out = request->cookies;
        return 0;
    }
    csgi_params *params = csgi_params__new(request->arena);
    if (!params)
        return CSGI_ENOMEM;
    int rc = csgi_params__parse_cookies(params, header, len, request->limits.max_fields);
    if (rc != 0)
        return rc;
    request->cookies = params;
    request->cookie_source = header;
    *out = params;
    return 0;
}

const char *csgi_request_cookie(csgi_request *request, const char *name, size_t *len)
{
    const csgi_params *cookies;
    if (csgi_request_cookies(request, &cookies) != 0)
        return NULL;
    return csgi_params_get(cookies, name, len);
}

/* ---- Body -------------------------------------------------------------------- */

void csgi_helpers__too_long(csgi_environ *environ, size_t max, char *buf, size_t size)
{
    csgi_input *input = csgi_environ_input(environ);
    if (!csgi_input__refused(input)) {
        snprintf(buf, size, "longer than %zu bytes", max);
        return;
    }
    int64_t limit = csgi_input_limit(input);
    if (limit >= 0)
        snprintf(buf, size, "longer than %lld bytes", (long long)limit);
    else
        snprintf(buf, size, "longer than the server allows");
}

int csgi_request_body(csgi_request *request, size_t max, const char **out, size_t *len)
{
    if (!request || !out)
        return CSGI_EINVAL;
    if (request->body_state == BODY_STREAMED)
        return CSGI_ESTATE;
    if (request->body_state == BODY_UNREAD) {
        int rc = csgi_input_read_all(csgi_environ_input(request->environ), max, &request->body,
                                     &request->body_len);
        if (rc != 0)
            return rc;
        request->body_state = BODY_READ;
    }
    *out = request->body;
    if (len)
        *len = request->body_len;
    return 0;
}

static void release_json(void *value)
{
    json_decref(value);
}

int csgi_request_json(csgi_request *request, size_t max, struct json_t **out,
                      csgi_request_error *error)
{
    if (!request || !out)
        return CSGI_EINVAL;
    *out = NULL;
    if (request->json) {
        *out = request->json;
        return 0;
    }
    const char *body;
    size_t len;
    int rc = csgi_request_body(request, max, &body, &len);
    if (rc == CSGI_ETOOBIG) {
        char text[64];
        csgi_helpers__too_long(request->environ, max, text, sizeof(text));
        set_error(error, 0, "body %s", text);
    }
    if (rc != 0)
        return rc;
    json_error_t json_error;
    json_t *value = json_loadb(body, len, JSON_DECODE_ANY, &json_error);
    if (!value) {
        if (error) {
            set_error(error, (size_t)json_error.position, "%s", json_error.text);
            error->line = json_error.line;
            error->column = json_error.column;
        }
        return CSGI_EPARSE;
    }
    if (csgi_environ_defer(request->environ, release_json, value) != 0) {
        json_decref(value);
        return CSGI_ENOMEM;
    }
    request->json = value;
    *out = value;
    return 0;
}

/* ---- Form ----------------------------------------------------------------------- */

static int form_fail(csgi_request *request, int rc, size_t position, const char *text,
                     csgi_request_error *error)
{
    request->form_state = FORM_FAILED;
    request->form_result = rc;
    set_error(&request->form_error, position, "%s", text ? text : csgi_strerror(rc));
    if (error)
        *error = request->form_error;
    return rc;
}

static int form_done(csgi_request *request, const csgi_params **out)
{
    request->form_state = FORM_DONE;
    *out = request->form;
    return 0;
}

/* Pick the parser; 0 to go on, or the final result. */
static int form_start(csgi_request *request, const csgi_params **out, csgi_request_error *error)
{
    const char *type = csgi_request_content_type(request);
    if (!type)
        return CSGI_ENOMEM;
    int multipart = strcmp(type, "multipart/form-data") == 0;
    if (!multipart && strcmp(type, "application/x-www-form-urlencoded") != 0) {
        request->form = csgi_params__new(request->arena);
        if (!request->form)
            return CSGI_ENOMEM;
        return form_done(request, out);
    }
    int64_t length = csgi_request_content_length(request);
    if (length > 0 && (uint64_t)length > request->limits.max_body) {
        char text[80];
        snprintf(text, sizeof(text), "body longer than %zu bytes", request->limits.max_body);
        return form_fail(request, CSGI_ETOOBIG, 0, text, error);
    }
    if (!multipart) {
        request->form_state = FORM_URLENCODED;
        return 0;
    }

    size_t len, boundary_len;
    const char *value = get_or(request, "CONTENT_TYPE", "", &len);
    const char *boundary;
    int rc = csgi_helpers__header_param(request->arena, value, len, "boundary", &boundary,
                                        &boundary_len);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return form_fail(request, CSGI_EPARSE, 0, "multipart Content-Type without a boundary",
                         error);
    csgi_multipart__parser *parser = csgi_arena__alloc(request->arena, sizeof(*parser));
    char *buffer = csgi_arena__alloc(request->arena, READ_SIZE);
    if (!parser || !buffer)
        return CSGI_ENOMEM;
    rc = csgi_multipart__init(parser, request->arena, boundary, boundary_len, &request->limits);
    if (rc != 0)
        return form_fail(request, rc, 0, parser->message, error);
    request->multipart = parser;
    request->read_buffer = buffer;
    request->form_state = FORM_MULTIPART;
    return 0;
}

static int form_urlencoded(csgi_request *request, const csgi_params **out,
                           csgi_request_error *error)
{
    const char *body;
    size_t len;
    int rc = csgi_request_body(request, request->limits.max_body, &body, &len);
    if (rc == CSGI_EAGAIN)
        return rc;
    if (rc == CSGI_ETOOBIG) {
        char text[80] = "body ";
        csgi_helpers__too_long(request->environ, request->limits.max_body, text + 5,
                               sizeof(text) - 5);
        return form_fail(request, rc, 0, text, error);
    }
    if (rc != 0)
        return form_fail(request, rc, 0, NULL, error);
    csgi_params *params = csgi_params__new(request->arena);
    if (!params)
        return form_fail(request, CSGI_ENOMEM, 0, NULL, error);
    rc = csgi_params__parse_urlencoded(params, body, len, request->limits.max_fields,
                                       request->limits.strict);
    if (rc == CSGI_ETOOBIG)
        return form_fail(request, rc, 0, "form has too many fields", error);
    if (rc == CSGI_EPARSE)
        return form_fail(request, rc, 0, "form has a malformed escape or invalid UTF-8", error);
    if (rc != 0)
        return form_fail(request, rc, 0, NULL, error);
    request->form = params;
    return form_done(request, out);
}

static int form_multipart(csgi_request *request, const csgi_params **out, csgi_request_error *error)
{
    csgi_multipart__parser *parser = request->multipart;
    int rc;
    if (request->body_state == BODY_READ) {
        rc = csgi_multipart__feed(parser, request->body, request->body_len);
        if (rc == 0)
            rc = csgi_multipart__finish(parser);
    } else {
        request->body_state = BODY_STREAMED;
        csgi_input *input = csgi_environ_input(request->environ);
        for (;;) {
            long n = csgi_input_read(input, request->read_buffer, READ_SIZE);
            if (n == CSGI_EAGAIN)
                return CSGI_EAGAIN;
            if (n == CSGI_ETOOBIG) {
                char text[80] = "body ";
                csgi_helpers__too_long(request->environ, request->limits.max_body, text + 5,
                                       sizeof(text) - 5);
                return form_fail(request, (int)n, (size_t)parser->consumed, text, error);
            }
            if (n < 0)
                return form_fail(request, (int)n, (size_t)parser->consumed, NULL, error);
            if (n == 0) {
                rc = csgi_multipart__finish(parser);
                break;
            }
            rc = csgi_multipart__feed(parser, request->read_buffer, (size_t)n);
            if (rc != 0)
                break;
        }
    }
    if (rc != 0)
        return form_fail(request, rc, (size_t)parser->consumed, parser->message, error);

    const csgi_form_file **files = NULL;
    if (parser->file_count) {
        files = csgi_arena__alloc(request->arena, parser->file_count * sizeof(*files));
        if (!files)
            return form_fail(request, CSGI_ENOMEM, 0, NULL, error);
        size_t i = 0;
        for (csgi_multipart__file *file = parser->files; file; file = file->next)
            files[i++] = &file->file;
    }
    request->files = files;
    request->file_count = parser->file_count;
    request->form = parser->fields;
    return form_done(request, out);
}

int csgi_request_form(csgi_request *request, const csgi_params **out, csgi_request_error *error)
{
    if (!request || !out)
        return CSGI_EINVAL;
    *out = NULL;
    if (request->form_state == FORM_NONE) {
        int rc = form_start(request, out, error);
        if (rc != 0 || request->form_state == FORM_DONE)
            return rc;
    }
    switch (request->form_state) {
    case FORM_URLENCODED: return form_urlencoded(request, out, error);
    case FORM_MULTIPART: return form_multipart(request, out, error);
    case FORM_DONE: *out = request->form; return 0;
    default:
        if (error)
            *error = request->form_error;
        return request->form_result;
    }
}

size_t csgi_request_file_count(csgi_request *request)
{
    return request ? request->file_count : 0;
}

const csgi_form_file *csgi_request_file_at(csgi_request *request, size_t index)
{
    if (!request || index >= request->file_count)
        return NULL;
    return request->files[index];
}

const csgi_form_file *csgi_request_file(csgi_request *request, const char *name)
{
    if (!request || !name)
        return NULL;
    size_t name_len = strlen(name);
    for (size_t i = 0; i < request->file_count; i++) {
        const csgi_form_file *file = request->files[i];
        if (file->name_len == name_len && memcmp(file->name, name, name_len) == 0)
            return file;
    }
    return NULL;
}

long csgi_form_file_read(const csgi_form_file *file, uint64_t offset, void *buf, size_t len)
{
    if (!file || (!buf && len))
        return CSGI_EINVAL;
    if (offset >= file->size || len == 0)
        return 0;
    uint64_t left = file->size - offset;
    if (len > left)
        len = (size_t)left;
    if (len > LONG_MAX)
        len = LONG_MAX;
    if (file->data) {
        memcpy(buf, file->data + offset, len);
        return (long)len;
    }
    if (offset > INT64_MAX)
        return CSGI_EINVAL;
    for (;;) {
        ssize_t n = pread(file->fd, buf, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return CSGI_ESYSTEM;
        return (long)n;
    }
}
