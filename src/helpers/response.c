/*
 * Response objects (csgi/response.h): building a response and sending it
 * through start-response, with conditional and range requests.
 *
 * One code path serves both kinds of response. A request's response takes
 * its memory from the request's arena and registers a deferred release for
 * what lives outside it (a file descriptor, a streaming body, a delegate
 * application). A heap response keeps its memory in a list of blocks freed
 * together by csgi_response_free(). Sending never changes a heap response
 * (except to hand over a streaming body, which can only be sent once): what
 * a request needs (the chosen error page, the sliced range, the absolute
 * Location) is built in that request's arena, so one heap response can
 * serve many requests.
 *
 * (Parameters are "env", not "environ": <unistd.h> declares a global
 * "environ" under _GNU_SOURCE.)
 */
#include "helpers/response_private.h"

#include "common/alloc.h"
#include "common/chartab.h"
#include "common/options.h"
#include "common/status.h"
#include "common/token.h"
#include "common/vec.h"
#include "gateway/app_private.h"

#include <csgi/negotiate.h>

#include <jansson.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- Memory -------------------------------------------------------------- */

union csgi_response__block {
    struct {
        csgi_response__block *prev;
        csgi_response__block *next;
    } links;
    max_align_t align;
};

void *csgi_response__alloc(csgi_response *response, size_t size)
{
    if (response->environ)
        return csgi_environ_alloc(response->environ, size ? size : 1);
    if (size > SIZE_MAX - sizeof(csgi_response__block))
        return NULL;
    csgi_response__block *block = csgi__malloc(sizeof(*block) + size);
    if (!block)
        return NULL;
    block->links.prev = NULL;
    block->links.next = response->blocks;
    if (response->blocks)
        response->blocks->links.prev = block;
    response->blocks = block;
    return block + 1;
}

/* Give memory back early (a heap response only; the arena keeps it). */
static void release_memory(csgi_response *response, void *p)
{
    if (!p || response->environ)
        return;
    csgi_response__block *block = (csgi_response__block *)p - 1;
    if (block->links.prev)
        block->links.prev->links.next = block->links.next;
    else
        response->blocks = block->links.next;
    if (block->links.next)
        block->links.next->links.prev = block->links.prev;
    csgi__free(block);
}

char *csgi_response__strdup(csgi_response *response, const char *s)
{
    size_t len = strlen(s);
    char *copy = csgi_response__alloc(response, len + 1);
    if (copy)
        memcpy(copy, s, len + 1);
    return copy;
}

/* Close a stream that is not sent (again): it goes once. */
static void close_stream(csgi_response *response)
{
    if (response->stream_type) {
        const csgi_body_type *type = response->stream_type;
        response->stream_type = NULL;
        if (type->close)
            type->close(response->stream_state);
    }
}

/* Release what the body holds outside memory, and the body's memory. */
static void release_body(csgi_response *response)
{
    if (response->fd >= 0)
        close(response->fd);
    response->fd = -1;
    close_stream(response);
    response->stream_state = NULL;
    csgi_app_free(response->app);
    response->app = NULL;
    if (response->data_owned)
        release_memory(response, (void *)response->data);
    response->data = NULL;
    response->len = 0;
    response->data_owned = 0;
    release_memory(response, (void *)response->detail);
    response->detail = NULL;
    response->body_kind = CSGI_RESPONSE__EMPTY;
}

static void release_deferred(void *data)
{
    release_body(data);
}

int csgi_response_new(csgi_response **out, csgi_environ *env)
{
    if (!out)
        return CSGI_EINVAL;
    *out = NULL;
    csgi_response *response =
        env ? csgi_environ_alloc(env, sizeof(*response)) : csgi__malloc(sizeof(*response));
    if (!response)
        return CSGI_ENOMEM;
    memset(response, 0, sizeof(*response));
    response->environ = env;
    response->status = 200;
    response->reason = "OK";
    response->fd = -1;
    if (env && csgi_environ_defer(env, release_deferred, response) != 0)
        return CSGI_ENOMEM;
    *out = response;
    return 0;
}

void csgi_response_free(csgi_response *response)
{
    if (!response || response->environ)
        return;
    release_body(response);
    while (response->blocks) {
        csgi_response__block *next = response->blocks->links.next;
        csgi__free(response->blocks);
        response->blocks = next;
    }
    csgi__free(response);
}

const char *csgi_response_reason(int status)
{
    if (status < 100 || status > 599)
        return NULL;
    const char *reason = csgi_status__reason(status);
    return strcmp(reason, "Unknown") == 0 ? NULL : reason;
}

/* ---- Status and headers ------------------------------------------------------ */

static int is_token(const char *s)
{
    return s && csgi_char__is_token(s, strlen(s));
}

/* Visible characters, spaces, tabs and obs-text: no CR, LF, NUL, DEL. */
static int is_field_text(const char *s)
{
    for (; *s; s++)
        if (!csgi_char__is_field((unsigned char)*s))
            return 0;
    return 1;
}

int csgi_response_set_status(csgi_response *response, int status)
{
    const char *reason = csgi_response_reason(status);
    if (!response || status < 200 || !reason)
        return CSGI_EINVAL;
    response->status = status;
    response->reason = reason;
    return 0;
}

int csgi_response_set_status_line(csgi_response *response, const char *line)
{
    if (!response || !line)
        return CSGI_EINVAL;
    for (int i = 0; i < 3; i++)
        if (line[i] < '0' || line[i] > '9')
            return CSGI_EINVAL;
    int status = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (status < 200 || status > 599 || line[3] != ' ' || !is_field_text(line + 4))
        return CSGI_EINVAL;
    char *reason = csgi_response__strdup(response, line + 4);
    if (!reason)
        return CSGI_ENOMEM;
    response->status = status;
    response->reason = reason;
    return 0;
}

int csgi_response_status(const csgi_response *response)
{
    return response ? response->status : 0;
}

/* Content-Length (csgi sets it from the body) and hop-by-hop fields. */
static int refused_name(const char *name)
{
    size_t len = strlen(name);
    return csgi_token__lookup(name, len) == CSGI_TOKEN__CONTENT_LENGTH ||
           csgi_token__is_hop_by_hop(name, len);
}

static int check_field(const char *name, const char *value)
{
    if (!is_token(name) || refused_name(name) || !value || !is_field_text(value))
        return CSGI_EINVAL;
    return 0;
}

/* Append a checked field. */
static int append_field(csgi_response *response, const char *name, const char *value)
{
    if (response->field_count == response->field_capacity) {
        size_t capacity;
        int rc = csgi_vec__grow(response->field_capacity, response->field_count + 1,
                                sizeof(csgi_response__field), SIZE_MAX, &capacity);
        if (rc != 0)
            return rc;
        csgi_response__field *fields = csgi_response__alloc(response, capacity * sizeof(*fields));
        if (!fields)
            return CSGI_ENOMEM;
        if (response->field_count)
            memcpy(fields, response->fields, response->field_count * sizeof(*fields));
        release_memory(response, response->fields);
        response->fields = fields;
        response->field_capacity = capacity;
    }
    size_t name_len = strlen(name), value_len = strlen(value);
    char *copy = csgi_response__alloc(response, name_len + value_len + 2);
    if (!copy)
        return CSGI_ENOMEM;
    memcpy(copy, name, name_len + 1);
    memcpy(copy + name_len + 1, value, value_len + 1);
    response->fields[response->field_count].name = copy;
    response->fields[response->field_count].value = copy + name_len + 1;
    response->field_count++;
    return 0;
}

/* Remove the fields named name among the first `before` fields. */
static size_t remove_fields(csgi_response *response, const char *name, size_t before)
{
    size_t kept = 0, removed = 0;
    for (size_t i = 0; i < response->field_count; i++) {
        if (i < before && strcasecmp(response->fields[i].name, name) == 0) {
            release_memory(response, response->fields[i].name);
            removed++;
            continue;
        }
        response->fields[kept++] = response->fields[i];
    }
    response->field_count = kept;
    return removed;
}

int csgi_response_add_header(csgi_response *response, const char *name, const char *value)
{
    if (!response)
        return CSGI_EINVAL;
    int rc = check_field(name, value);
    return rc ? rc : append_field(response, name, value);
}

int csgi_response_set_header(csgi_response *response, const char *name, const char *value)
{
    int rc = csgi_response_add_header(response, name, value);
    if (rc == 0)
        remove_fields(response, name, response->field_count - 1);
    return rc;
}

size_t csgi_response_remove_header(csgi_response *response, const char *name)
{
    if (!response || !name)
        return 0;
    return remove_fields(response, name, response->field_count);
}

const char *csgi_response_get_header(const csgi_response *response, const char *name, size_t index)
{
    if (!response || !name)
        return NULL;
    for (size_t i = 0; i < response->field_count; i++)
        if (strcasecmp(response->fields[i].name, name) == 0 && index-- == 0)
            return response->fields[i].value;
    return NULL;
}

int csgi_response_next_header(const csgi_response *response, size_t *cursor, const char **name,
                              const char **value)
{
    if (!response || !cursor || *cursor >= response->field_count)
        return 0;
    if (name)
        *name = response->fields[*cursor].name;
    if (value)
        *value = response->fields[*cursor].value;
    ++*cursor;
    return 1;
}

/* "type; charset=charset" into a buffer of the response's memory. */
int csgi_response_set_content_type(csgi_response *response, const char *type, const char *charset)
{
    if (!response || !type)
        return CSGI_EINVAL;
    const char *slash = strchr(type, '/');
    if (!slash || !csgi_char__is_token(type, (size_t)(slash - type)) || !is_token(slash + 1))
        return CSGI_EINVAL;
    if (charset && !is_token(charset))
        return CSGI_EINVAL;
    size_t size = strlen(type) + (charset ? strlen(charset) + 11 : 0) + 1;
    char *value = csgi__malloc(size);
    if (!value)
        return CSGI_ENOMEM;
    snprintf(value, size, "%s%s%s", type, charset ? "; charset=" : "", charset ? charset : "");
    int rc = csgi_response_set_header(response, "Content-Type", value);
    csgi__free(value);
    return rc;
}

/* ---- Bodies ------------------------------------------------------------------ */

int csgi_response_set_body(csgi_response *response, const void *data, size_t len)
{
    if (!response || (!data && len))
        return CSGI_EINVAL;
    void *copy = csgi_response__alloc(response, len);
    if (!copy)
        return CSGI_ENOMEM;
    if (len)
        memcpy(copy, data, len);
    release_body(response);
    response->body_kind = CSGI_RESPONSE__BYTES;
    response->data = copy;
    response->len = len;
    response->data_owned = 1;
    return 0;
}

int csgi_response_set_body_static(csgi_response *response, const void *data, size_t len)
{
    if (!response || (!data && len))
        return CSGI_EINVAL;
    release_body(response);
    response->body_kind = CSGI_RESPONSE__BYTES;
    response->data = len ? data : "";
    response->len = len;
    return 0;
}

int csgi_response_set_text(csgi_response *response, const char *text, const char *charset)
{
    if (!response || !text)
        return CSGI_EINVAL;
    int rc = csgi_response_set_content_type(response, "text/plain", charset ? charset : "utf-8");
    return rc ? rc : csgi_response_set_body(response, text, strlen(text));
}

/* A JSON body is serialized once: into a buffer on the stack while it
   fits, then into memory that grows, and copied into the response's
   memory. (Serializing to learn the length, then again to write, cost two
   serializations for every body: more than half of a request listing
   twenty images.) */
#define JSON_FIRST_TRY 512

typedef struct json_text {
    char *data; /* stack, or heap once it outgrew it */
    size_t len, room;
    char *heap;
    int no_memory;
    char stack[JSON_FIRST_TRY];
} json_text;

static int json_text_append(const char *buf, size_t size, void *userdata)
{
    json_text *t = userdata;
    if (size > t->room - t->len) {
        size_t room = t->room * 2;
        while (room - t->len < size)
            room *= 2;
        char *grown = realloc(t->heap, room);
        if (!grown) {
            t->no_memory = 1;
            return -1;
        }
        if (!t->heap)
            memcpy(grown, t->stack, t->len);
        t->heap = t->data = grown;
        t->room = room;
    }
    memcpy(t->data + t->len, buf, size);
    t->len += size;
    return 0;
}

int csgi_response_set_json(csgi_response *response, struct json_t *value)
{
    int rc = CSGI_EINVAL;
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    json_text json;
    json.data = json.stack;
    json.len = 0;
    json.room = sizeof(json.stack);
    json.heap = NULL;
    json.no_memory = 0;
    char *text = NULL;
    if (!response || !value)
        goto done;
    if (json_dump_callback(value, json_text_append, &json, flags) != 0 || json.len == 0) {
        rc = json.no_memory ? CSGI_ENOMEM : CSGI_EINVAL; /* else a value jansson refuses */
        goto done;
    }
    rc = CSGI_ENOMEM;
    if (!(text = csgi_response__alloc(response, json.len)))
        goto done;
    memcpy(text, json.data, json.len);
    size_t len = json.len;
    rc = csgi_response_set_header(response, "Content-Type", "application/json");
    if (rc != 0) {
        release_memory(response, text);
        goto done;
    }
    release_body(response);
    response->body_kind = CSGI_RESPONSE__BYTES;
    response->data = text;
    response->len = len;
    response->data_owned = 1;
done:
    free(json.heap);
    json_decref(value);
    return rc;
}

int csgi_response_set_file(csgi_response *response, int fd, int64_t offset, int64_t length)
{
    if (!response || fd < 0 || offset < 0 || length < 0) {
        if (fd >= 0)
            close(fd);
        return CSGI_EINVAL;
    }
    release_body(response);
    response->body_kind = CSGI_RESPONSE__FILE;
    response->fd = fd;
    response->offset = offset;
    response->length = length;
    return 0;
}

int csgi_response_set_stream(csgi_response *response, const csgi_body_type *type, void *state)
{
    if (!response || !type || !type->next) {
        if (type && type->close)
            type->close(state);
        return CSGI_EINVAL;
    }
    release_body(response);
    response->body_kind = CSGI_RESPONSE__STREAM;
    response->stream_type = type;
    response->stream_state = state;
    response->length = -1; /* unknown */
    response->stream_length_of = NULL;
    return 0;
}

void csgi_response__set_stream_length_of(csgi_response *response, const csgi_body *inner)
{
    if (response->body_kind == CSGI_RESPONSE__STREAM)
        response->stream_length_of = inner;
}

int csgi_response_set_app(csgi_response *response, csgi_app *app)
{
    if (!response || !app) {
        csgi_app_free(app);
        return CSGI_EINVAL;
    }
    release_body(response);
    response->body_kind = CSGI_RESPONSE__APP;
    response->app = app;
    return 0;
}

/* ---- Cookies --------------------------------------------------------------------- */

static int is_cookie_value(const char *value)
{
    size_t len = strlen(value);
    if (len >= 1 && value[0] == '"') {
        if (len < 2 || value[len - 1] != '"')
            return 0;
        value++;
        len -= 2;
    }
    for (size_t i = 0; i < len; i++)
        if (!csgi_char__is_cookie_octet((unsigned char)value[i]))
            return 0;
    return 1;
}

/* av-octet: any CHAR but CTLs and ';' (a domain gets no space either). */
static int is_attribute_value(const char *value, int allow_space)
{
    if (!*value)
        return 0;
    for (; *value; value++) {
        unsigned char c = (unsigned char)*value;
        if (c < 0x20 || c >= 0x7f || c == ';' || (c == ' ' && !allow_space))
            return 0;
    }
    return 1;
}

int csgi_response_set_cookie(csgi_response *response, const char *name, const char *value,
                             const csgi_cookie_options *options)
{
    static const csgi_cookie_options none = CSGI_COOKIE_OPTIONS_INIT;
    static const char *const same_site[] = {"", "Strict", "Lax", "None"};
    if (!options)
        options = &none;
    if (!response || !is_token(name) || !value || !is_cookie_value(value) ||
        !csgi_options__version_ok(options->version, CSGI_COOKIE_OPTIONS_VERSION) ||
        options->max_age < -1 || (options->path && !is_attribute_value(options->path, 1)) ||
        (options->domain && !is_attribute_value(options->domain, 0)) ||
        (unsigned)options->same_site > CSGI_SAME_SITE_NONE ||
        (options->same_site == CSGI_SAME_SITE_NONE && !options->secure))
        return CSGI_EINVAL;
    char expires[CSGI_DATE_SIZE] = "";
    if (options->has_expires && csgi_date_format(options->expires, expires) != 0)
        return CSGI_EINVAL;

    size_t size = strlen(name) + strlen(value) + (options->path ? strlen(options->path) : 0) +
                  (options->domain ? strlen(options->domain) : 0) + 160;
    char *line = csgi__malloc(size);
    if (!line)
        return CSGI_ENOMEM;
    int n = snprintf(line, size, "%s=%s", name, value);
    if (options->max_age >= 0)
        n += snprintf(line + n, size - (size_t)n, "; Max-Age=%lld", (long long)options->max_age);
    if (options->has_expires)
        n += snprintf(line + n, size - (size_t)n, "; Expires=%s", expires);
    if (options->path)
        n += snprintf(line + n, size - (size_t)n, "; Path=%s", options->path);
    if (options->domain)
        n += snprintf(line + n, size - (size_t)n, "; Domain=%s", options->domain);
    if (options->secure)
        n += snprintf(line + n, size - (size_t)n, "; Secure");
    if (options->http_only)
        n += snprintf(line + n, size - (size_t)n, "; HttpOnly");
    if (options->same_site != CSGI_SAME_SITE_UNSET)
        snprintf(line + n, size - (size_t)n, "; SameSite=%s", same_site[options->same_site]);
    int rc = csgi_response_add_header(response, "Set-Cookie", line);
    csgi__free(line);
    return rc;
}

int csgi_response_delete_cookie(csgi_response *response, const char *name, const char *path,
                                const char *domain)
{
    csgi_cookie_options options = CSGI_COOKIE_OPTIONS_INIT;
    options.max_age = 0;
    options.has_expires = 1;
    options.expires = 0;
    options.path = path;
    options.domain = domain;
    return csgi_response_set_cookie(response, name, "", &options);
}

/* ---- Caching, validators, redirects ------------------------------------------------- */

/* Append ", directive" (or the first directive) to a 200-byte value; the
   directives of csgi_cache_control fit in it together. */
static size_t append_directive(char *value, size_t n, const char *directive)
{
    int added = snprintf(value + n, 200 - n, "%s%s", n ? ", " : "", directive);
    return added > 0 ? n + (size_t)added : n;
}

int csgi_response_set_cache_control(csgi_response *response, const csgi_cache_control *cache)
{
    if (!response || !cache ||
        !csgi_options__version_ok(cache->version, CSGI_CACHE_CONTROL_VERSION) ||
        (cache->is_public && cache->is_private) || cache->max_age < -1 || cache->s_maxage < -1)
        return CSGI_EINVAL;
    char value[200];
    size_t n = 0;
    char number[40];
    value[0] = '\0';
    if (cache->is_public)
        n = append_directive(value, n, "public");
    if (cache->is_private)
        n = append_directive(value, n, "private");
    if (cache->no_cache)
        n = append_directive(value, n, "no-cache");
    if (cache->no_store)
        n = append_directive(value, n, "no-store");
    if (cache->must_revalidate)
        n = append_directive(value, n, "must-revalidate");
    if (cache->max_age >= 0) {
        snprintf(number, sizeof(number), "max-age=%lld", (long long)cache->max_age);
        n = append_directive(value, n, number);
    }
    if (cache->s_maxage >= 0) {
        snprintf(number, sizeof(number), "s-maxage=%lld", (long long)cache->s_maxage);
        n = append_directive(value, n, number);
    }
    if (cache->immutable)
        n = append_directive(value, n, "immutable");
    if (n == 0) {
        csgi_response_remove_header(response, "Cache-Control");
        return 0;
    }
    return csgi_response_set_header(response, "Cache-Control", value);
}

int csgi_response_set_location(csgi_response *response, const char *location)
{
    return csgi_response_set_header(response, "Location", location);
}

int csgi_response_set_etag(csgi_response *response, const char *opaque, int weak)
{
    if (!response || !opaque)
        return CSGI_EINVAL;
    for (const char *p = opaque; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c != 0x21 && (c < 0x23 || c > 0x7e))
            return CSGI_EINVAL;
    }
    size_t size = strlen(opaque) + 5;
    char *value = csgi__malloc(size);
    if (!value)
        return CSGI_ENOMEM;
    snprintf(value, size, "%s\"%s\"", weak ? "W/" : "", opaque);
    int rc = csgi_response_set_header(response, "ETag", value);
    csgi__free(value);
    return rc;
}

int csgi_response_set_last_modified(csgi_response *response, time_t when)
{
    char value[CSGI_DATE_SIZE];
    if (!response)
        return CSGI_EINVAL;
    if (csgi_date_format(when, value) != 0)
        return CSGI_ERANGE;
    return csgi_response_set_header(response, "Last-Modified", value);
}

void csgi_response_set_conditional(csgi_response *response, int enabled)
{
    if (response)
        response->conditional = enabled != 0;
}

/* ---- Sending -------------------------------------------------------------------------- */

/* What one request gets of a response. */
typedef struct outcome {
    int status; /* 0: the response's own */
    const char *data;
    size_t len;
    int64_t length; /* known body length, or -1 */
    int64_t first;  /* the range to send, for 206 */
    int64_t last;
    const char *content_type; /* replaces the response's, or NULL */
} outcome;

enum { SEND_FULL, SEND_NOT_MODIFIED, SEND_PRECONDITION_FAILED, SEND_PARTIAL, SEND_UNSATISFIABLE };

/* Does the string start with a URI scheme and ':'? */
static int has_scheme(const char *s)
{
    if (!csgi_char__is_alpha((unsigned char)*s))
        return 0;
    for (s++; *s; s++) {
        if (*s == ':')
            return 1;
        if (!csgi_char__is((unsigned char)*s, CSGI_CHAR__ALPHA | CSGI_CHAR__DIGIT) && *s != '+' &&
            *s != '-' && *s != '.')
            return 0;
    }
    return 0;
}

/* The Location made absolute against the request (see csgi/response.h),
   in the request's arena; NULL when memory is exhausted. */
static const char *absolute_location(csgi_environ *env, const char *location)
{
    if (has_scheme(location))
        return location;
    const char *scheme = csgi_environ_get(env, "csgi.url_scheme");
    if (!scheme)
        scheme = "http";
    const char *host = csgi_environ_get(env, "HTTP_HOST");
    const char *port = "";
    if (!host) {
        host = csgi_environ_get(env, "SERVER_NAME");
        port = csgi_environ_get(env, "SERVER_PORT");
        if (!host)
            host = "localhost";
        if (!port || (strcmp(scheme, "http") == 0 && strcmp(port, "80") == 0) ||
            (strcmp(scheme, "https") == 0 && strcmp(port, "443") == 0))
            port = "";
    }
    size_t script_len = 0, path_len = 0;
    const char *script = csgi_environ_get_n(env, "SCRIPT_NAME", &script_len);
    const char *path = csgi_environ_get_n(env, "PATH_INFO", &path_len);
    const char *query = csgi_environ_get(env, "QUERY_STRING");
    if (!script)
        script_len = 0;
    if (!path)
        path_len = 0;
    if (!query || !is_field_text(query))
        query = "";

    size_t size = strlen(scheme) + strlen(host) + strlen(port) + 3 * (script_len + path_len) +
                  strlen(query) + strlen(location) + 8;
    char *out = csgi_environ_alloc(env, size);
    if (!out)
        return NULL;
    if (location[0] == '/' && location[1] == '/') {
        snprintf(out, size, "%s:%s", scheme, location);
        return out;
    }
    size_t n = (size_t)snprintf(out, size, "%s://%s%s%s", scheme, host, *port ? ":" : "", port);
    if (location[0] == '/') {
        snprintf(out + n, size - n, "%s", location);
        return out;
    }
    /* the request's path (decoded, as the environ holds it), encoded again */
    size_t path_start = n;
    n += csgi_char__percent_encode(out + n, script ? script : "", script_len, CSGI_CHAR__PATH);
    n += csgi_char__percent_encode(out + n, path ? path : "", path_len, CSGI_CHAR__PATH);
    if (n == path_start)
        out[n++] = '/';
    if (location[0] == '?' || location[0] == '\0') {
        snprintf(out + n, size - n, "%s", location);
    } else if (location[0] == '#') {
        snprintf(out + n, size - n, "%s%s%s", *query ? "?" : "", query, location);
    } else {
        while (n > path_start && out[n - 1] != '/')
            n--;
        snprintf(out + n, size - n, "%s", location);
    }
    return out;
}

static int method_is(csgi_environ *env, const char *method)
{
    const char *actual = csgi_environ_get(env, "REQUEST_METHOD");
    return actual && strcmp(actual, method) == 0;
}

/* Decide 304, 412, 206, 416 or the full response (RFC 9110 13.2.2). */
static int evaluate_conditions(const csgi_response *response, csgi_environ *env, outcome *result)
{
    csgi_etag etag;
    time_t last_modified = 0;
    const char *etag_value = csgi_response_get_header(response, "ETag", 0);
    const char *modified_value = csgi_response_get_header(response, "Last-Modified", 0);
    int has_etag = etag_value && csgi_etag_parse(etag_value, strlen(etag_value), &etag) == 0;
    int has_modified = modified_value && csgi_date_parse(modified_value, &last_modified) == 0;
    int get_or_head = method_is(env, "GET") || method_is(env, "HEAD");

    const char *if_match = csgi_environ_get(env, "HTTP_IF_MATCH");
    if (if_match) {
        if (!csgi_etag_list_match(if_match, has_etag ? &etag : NULL, 0, 1))
            return SEND_PRECONDITION_FAILED;
    } else if (has_modified) {
        const char *unmodified_value = csgi_environ_get(env, "HTTP_IF_UNMODIFIED_SINCE");
        time_t unmodified;
        if (unmodified_value && csgi_date_parse(unmodified_value, &unmodified) == 0 &&
            last_modified > unmodified)
            return SEND_PRECONDITION_FAILED;
    }

    const char *if_none_match = csgi_environ_get(env, "HTTP_IF_NONE_MATCH");
    if (if_none_match) {
        if (csgi_etag_list_match(if_none_match, has_etag ? &etag : NULL, 1, 1))
            return get_or_head ? SEND_NOT_MODIFIED : SEND_PRECONDITION_FAILED;
    } else if (get_or_head && has_modified) {
        const char *since_value = csgi_environ_get(env, "HTTP_IF_MODIFIED_SINCE");
        time_t since;
        if (since_value && csgi_date_parse(since_value, &since) == 0 && last_modified <= since)
            return SEND_NOT_MODIFIED;
    }

    const char *range = csgi_environ_get(env, "HTTP_RANGE");
    if (!range || result->length < 0 || !method_is(env, "GET"))
        return SEND_FULL;
    const char *if_range = csgi_environ_get(env, "HTTP_IF_RANGE");
    if (if_range) {
        while (*if_range == ' ' || *if_range == '\t')
            if_range++;
        if (if_range[0] == '"' || (if_range[0] == 'W' && if_range[1] == '/')) {
            csgi_etag wanted;
            size_t len = strlen(if_range);
            while (len && (if_range[len - 1] == ' ' || if_range[len - 1] == '\t'))
                len--;
            if (!has_etag || csgi_etag_parse(if_range, len, &wanted) != 0 ||
                !csgi_etag_compare(&wanted, &etag, 0))
                return SEND_FULL;
        } else {
            time_t when;
            if (!has_modified || csgi_date_parse(if_range, &when) != 0 || when != last_modified)
                return SEND_FULL;
        }
    }
    csgi_range chosen;
    int rc = csgi_range_resolve(range, result->length, &chosen);
    if (rc == CSGI_ERANGE)
        return SEND_UNSATISFIABLE;
    if (rc != 0)
        return SEND_FULL;
    result->first = chosen.first;
    result->last = chosen.last;
    return SEND_PARTIAL;
}

/* Fields a 304 keeps: everything but the representation's metadata
   (Content-*), except Content-Location (RFC 9110 15.4.5). */
static int kept_by_304(const char *name)
{
    return strncasecmp(name, "Content-", 8) != 0 || strcasecmp(name, "Content-Location") == 0;
}

static char *format_in(csgi_environ *env, size_t size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static char *format_in(csgi_environ *env, size_t size, const char *format, ...)
{
    char *out = csgi_environ_alloc(env, size);
    if (out) {
        va_list args;
        va_start(args, format);
        vsnprintf(out, size, format, args);
        va_end(args);
    }
    return out;
}

static csgi_body *make_body(csgi_response *response, csgi_environ *env, int mode,
                            const outcome *result)
{
    int64_t first = mode == SEND_PARTIAL ? result->first : 0;
    int64_t count = mode == SEND_PARTIAL ? result->last - result->first + 1 : result->length;
    /* 412 and 416 carry a short page (in the request's arena already); 304
       nothing. A stream not sent stays with the response, which closes it. */
    if (mode == SEND_PRECONDITION_FAILED || mode == SEND_UNSATISFIABLE)
        return csgi_body_static(env, result->data, result->len);
    if (mode == SEND_NOT_MODIFIED || response->body_kind == CSGI_RESPONSE__EMPTY)
        return csgi_body_static(env, "", 0);
    switch (response->body_kind) {
    case CSGI_RESPONSE__FILE: {
        int fd = dup(response->fd);
        if (fd < 0)
            return NULL;
        return csgi_body_file(env, fd, response->offset + first, count);
    }
    case CSGI_RESPONSE__STREAM: {
        const csgi_body_type *type = response->stream_type;
        response->stream_type = NULL; /* handed over: the body closes it */
        csgi_body *body = csgi_body_new(env, type, response->stream_state);
        if (body && response->stream_length_of)
            csgi_body__length_from(body, response->stream_length_of);
        return body;
    }
    default:
        /* bytes, or the error page (in the request's arena already) */
        return csgi_body_static(env, result->data + first, (size_t)count);
    }
}

/*
 * The body of a response to HEAD: nothing, but the length a GET would get
 * declared, and one empty piece. The server sends the head when the first
 * piece comes, with the declared length, so the head carries the
 * Content-Length (or, for a stream of unknown length, none) that a GET's
 * would (RFC 9110 9.3.2), and lint sees no body bytes.
 */
static int head_body_next(void *state, csgi_chunk *chunk)
{
    unsigned char *given = state;
    if (*given)
        return 0;
    *given = 1;
    chunk->data = "";
    chunk->len = 0;
    return 1;
}

static const csgi_body_type head_body_type = {"head", head_body_next, NULL};

static csgi_body *head_body(csgi_environ *env, int64_t length)
{
    unsigned char *given = csgi_environ_alloc(env, 1);
    if (!given)
        return NULL;
    *given = 0;
    csgi_body *body = csgi_body_new(env, &head_body_type, given);
    if (body && length >= 0)
        csgi_body_set_length(body, length);
    return body;
}

/* No body goes out for HEAD, 204 and 304. The response drops it itself
   (the server would drop it too), so that what it gives passes lint. */
static csgi_body *no_body(csgi_response *response, csgi_environ *env, int status, int mode,
                          const outcome *result)
{
    close_stream(response); /* not pulled, and not sent again */
    if (status == 204 || status == 304)
        return csgi_body_static(env, "", 0);
    int64_t length = result->length;
    if (mode == SEND_PRECONDITION_FAILED || mode == SEND_UNSATISFIABLE)
        length = (int64_t)result->len;
    else if (response->body_kind == CSGI_RESPONSE__STREAM)
        length = response->stream_length_of ? csgi_body_length(response->stream_length_of) : -1;
    return head_body(env, length);
}

csgi_body *csgi_response_send(csgi_response *response, csgi_environ *env,
                              csgi_start_response *start_response)
{
    if (!response || !env || !start_response)
        return NULL;
    if (response->body_kind == CSGI_RESPONSE__APP)
        return csgi_app_call(response->app, env, start_response);
    if (response->body_kind == CSGI_RESPONSE__STREAM && !response->stream_type)
        return NULL; /* sent already */

    outcome result = {0, NULL, 0, -1, 0, 0, NULL};
    switch (response->body_kind) {
    case CSGI_RESPONSE__EMPTY: result.length = 0; break;
    case CSGI_RESPONSE__BYTES:
        result.data = response->data;
        result.len = response->len;
        result.length = (int64_t)response->len;
        break;
    case CSGI_RESPONSE__FILE: result.length = response->length; break;
    case CSGI_RESPONSE__ERROR:
        if (csgi_response__error_body(env, response->status, response->detail, 1, &result.data,
                                      &result.len, &result.content_type) != 0)
            return NULL;
        result.length = (int64_t)result.len;
        break;
    default: break;
    }

    int mode = SEND_FULL;
    if (response->conditional && response->status == 200)
        mode = evaluate_conditions(response, env, &result);

    int status = response->status;
    const char *reason = response->reason;
    /* the room for extra fields: Content-Type, Accept-Ranges, Content-Range */
    csgi_header *headers = csgi_environ_alloc(env, (response->field_count + 3) * sizeof(*headers));
    if (!headers)
        goto fail;
    size_t count = 0;
    const char *content_type = result.content_type;
    if (mode == SEND_NOT_MODIFIED || mode == SEND_PRECONDITION_FAILED ||
        mode == SEND_UNSATISFIABLE) {
        status = mode == SEND_NOT_MODIFIED ? 304 : mode == SEND_UNSATISFIABLE ? 416 : 412;
        reason = csgi_status__reason(status);
        /* a short text/plain page, as the server's own errors, unless the
           request's error pages have a fixed format */
        if (mode != SEND_NOT_MODIFIED &&
            csgi_response__error_body(env, status, NULL, 0, &result.data, &result.len,
                                      &content_type) != 0)
            goto fail;
    } else if (mode == SEND_PARTIAL) {
        status = 206;
        reason = csgi_status__reason(206);
    }

    for (size_t i = 0; i < response->field_count; i++) {
        const csgi_response__field *field = &response->fields[i];
        const char *value = field->value;
        if (mode == SEND_NOT_MODIFIED && !kept_by_304(field->name))
            continue;
        if (content_type && strcasecmp(field->name, "Content-Type") == 0)
            continue;
        if (strcasecmp(field->name, "Location") == 0) {
            value = absolute_location(env, value);
            if (!value)
                goto fail;
        }
        headers[count].name = field->name;
        headers[count].name_len = strlen(field->name);
        headers[count].value = value;
        headers[count].value_len = strlen(value);
        count++;
    }
    if (content_type && mode != SEND_NOT_MODIFIED) {
        headers[count].name = "Content-Type";
        headers[count].name_len = 12;
        headers[count].value = content_type;
        headers[count].value_len = strlen(content_type);
        count++;
    }
    if (response->conditional && response->status == 200 && result.length >= 0 &&
        mode != SEND_NOT_MODIFIED && !csgi_response_get_header(response, "Accept-Ranges", 0)) {
        headers[count].name = "Accept-Ranges";
        headers[count].name_len = 13;
        headers[count].value = "bytes";
        headers[count].value_len = 5;
        count++;
    }
    if (mode == SEND_PARTIAL || mode == SEND_UNSATISFIABLE) {
        char *value;
        if (mode == SEND_PARTIAL)
            value = format_in(env, 80, "bytes %lld-%lld/%lld", (long long)result.first,
                              (long long)result.last, (long long)result.length);
        else
            value = format_in(env, 40, "bytes */%lld", (long long)result.length);
        if (!value)
            goto fail;
        headers[count].name = "Content-Range";
        headers[count].name_len = 13;
        headers[count].value = value;
        headers[count].value_len = strlen(value);
        count++;
    }

    /* "200 OK" without printf: the status has three digits (200-599 when it
       was set, or the 206, 304, 412 or 416 chosen above). */
    size_t reason_len = strlen(reason);
    char *line = csgi_environ_alloc(env, reason_len + 5);
    if (!line)
        goto fail;
    line[0] = (char)('0' + status / 100);
    line[1] = (char)('0' + status / 10 % 10);
    line[2] = (char)('0' + status % 10);
    line[3] = ' ';
    memcpy(line + 4, reason, reason_len + 1);
    csgi_body *body = status == 204 || status == 304 || method_is(env, "HEAD")
                          ? no_body(response, env, status, mode, &result)
                          : make_body(response, env, mode, &result);
    if (!body)
        return NULL;
    if (csgi_start_response_call(start_response, line, headers, count, NULL) != 0) {
        csgi_body_close(body);
        return NULL;
    }
    return body;

fail:
    return NULL;
}

/* ---- A response as an application ------------------------------------------------------ */

static csgi_body *serve_response(void *state, csgi_environ *env,
                                 csgi_start_response *start_response)
{
    return csgi_response_send(state, env, start_response);
}

static void free_response(void *state)
{
    csgi_response_free(state);
}

static const csgi_app_type response_app_type = {"response", serve_response, free_response};

int csgi_response_app(csgi_app **out, csgi_response *response)
{
    if (out)
        *out = NULL;
    if (!response || response->environ)
        return CSGI_EINVAL;
    if (!out || response->body_kind == CSGI_RESPONSE__STREAM) {
        csgi_response_free(response);
        return CSGI_EINVAL;
    }
    return csgi_app_new(out, &response_app_type, response);
}
