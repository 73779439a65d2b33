/*
 * The static file application (Paste's StaticURLParser, egg:Paste#static)
 * with its INI factory: PATH_INFO names a file under document_root, sent
 * as a file body (sendfile(2) when nothing wraps it) with its type from
 * mime.types, an ETag and Last-Modified. Conditional requests and Range
 * are the response layer's (csgi_response_set_conditional()); HEAD gets
 * the headers only.
 *
 * A directory is answered by its index file when the path ends with "/",
 * by a redirect to the path with "/" otherwise, and by 404 without an
 * index: there are no listings.
 *
 * Containment. The server refuses paths that climb above the root or hold
 * NUL, but this application may be reached in other ways (the test client,
 * a filter that rewrites PATH_INFO), so it checks again: a ".." segment, a
 * backslash, a NUL, or an encoded "/" or "\" in REQUEST_URI give 404.
 * Symbolic links inside the root are followed, so walking with openat()
 * and O_NOFOLLOW (which refuses every link) is not enough; instead the
 * file is opened and the path the kernel reports for the open descriptor
 * (/proc/self/fd/N) must lie under the root's real path. Checking what
 * was opened, not a path resolved beforehand, leaves no window for a link
 * swapped in between the check and the open. Without /proc the resolved
 * path (realpath()) is checked before opening instead.
 */
#include "common/alloc.h"
#include "middleware/middleware.h"

#include <csgi/handler.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct mime_type {
    char *extension; /* lower case, without the dot */
    const char *type;
    size_t order; /* line order in the file: the first mention wins */
} mime_type;

typedef struct static_files {
    char *root; /* real path, without a trailing "/" (but "/" itself) */
    size_t root_len;
    char *index;
    long long cache_max_age; /* -1: no Cache-Control */
    bool follow_outside;
    mime_type *types; /* sorted by extension */
    size_t type_count;
    char **type_names; /* the types' strings, one per mime.types line */
    size_t name_count;
} static_files;

/* Types answered when mime.types does not know an extension. */
static const struct {
    const char *extension, *type;
} builtin_types[] = {
    {"css", "text/css"},        {"html", "text/html"},        {"htm", "text/html"},
    {"js", "text/javascript"},  {"json", "application/json"}, {"txt", "text/plain"},
    {"svg", "image/svg+xml"},   {"png", "image/png"},         {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},     {"gif", "image/gif"},         {"ico", "image/vnd.microsoft.icon"},
    {"xml", "application/xml"}, {"wasm", "application/wasm"}, {"pdf", "application/pdf"},
    {"webp", "image/webp"},     {"woff2", "font/woff2"},      {"mjs", "text/javascript"},
};

static void static_destroy(void *userdata)
{
    static_files *s = userdata;
    if (!s)
        return;
    for (size_t i = 0; i < s->type_count; i++)
        csgi__free(s->types[i].extension);
    for (size_t i = 0; i < s->name_count; i++)
        csgi__free(s->type_names[i]);
    csgi__free(s->types);
    csgi__free(s->type_names);
    csgi__free(s->root);
    csgi__free(s->index);
    csgi__free(s);
}

/* ---- MIME types ------------------------------------------------------------------------ */

static int by_extension(const void *a, const void *b)
{
    const mime_type *x = a, *y = b;
    int c = strcmp(x->extension, y->extension);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

static int push(void **array, size_t *count, size_t *capacity, size_t size)
{
    if (*count < *capacity)
        return 0;
    size_t grown = *capacity ? *capacity * 2 : 64;
    void *p = csgi__realloc(*array, grown * size);
    if (!p)
        return CSGI_ENOMEM;
    *array = p;
    *capacity = grown;
    return 0;
}

/* Read a mime.types file ("type ext ext..." lines, # comments). */
static int read_mime_types(static_files *s, FILE *file)
{
    size_t type_capacity = 0, name_capacity = 0;
    char line[4096];
    while (fgets(line, sizeof(line), file)) {
        char *save = NULL;
        char *type = strtok_r(line, " \t\r\n", &save);
        if (!type || type[0] == '#' || !strchr(type, '/'))
            continue;
        if (push((void **)&s->type_names, &s->name_count, &name_capacity, sizeof(char *)) != 0)
            return CSGI_ENOMEM;
        char *name = csgi__strndup(type, strlen(type));
        if (!name)
            return CSGI_ENOMEM;
        s->type_names[s->name_count++] = name;
        for (char *ext; (ext = strtok_r(NULL, " \t\r\n", &save)) && ext[0] != '#';) {
            if (push((void **)&s->types, &s->type_count, &type_capacity, sizeof(mime_type)) != 0)
                return CSGI_ENOMEM;
            char *lower = csgi__strndup(ext, strlen(ext));
            if (!lower)
                return CSGI_ENOMEM;
            for (char *p = lower; *p; p++)
                *p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
            s->types[s->type_count] = (mime_type){lower, name, s->type_count};
            s->type_count++;
        }
    }
    qsort(s->types, s->type_count, sizeof(mime_type), by_extension);
    /* Keep an extension's first mention only. */
    size_t kept = 0;
    for (size_t i = 0; i < s->type_count; i++) {
        if (kept && strcmp(s->types[kept - 1].extension, s->types[i].extension) == 0) {
            csgi__free(s->types[i].extension);
            continue;
        }
        s->types[kept++] = s->types[i];
    }
    s->type_count = kept;
    return 0;
}

static const char *type_of(const static_files *s, const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || !dot[1] || strlen(dot + 1) >= 32)
        return "application/octet-stream";
    char ext[32];
    size_t n = 0;
    for (const char *p = dot + 1; *p; p++)
        ext[n++] = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
    ext[n] = '\0';
    size_t lo = 0, hi = s->type_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ext, s->types[mid].extension);
        if (c == 0)
            return s->types[mid].type;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    for (size_t i = 0; i < sizeof(builtin_types) / sizeof(builtin_types[0]); i++)
        if (strcmp(ext, builtin_types[i].extension) == 0)
            return builtin_types[i].type;
    return "application/octet-stream";
}

/* ---- Finding the file ------------------------------------------------------------------ */

/* Whether path (NUL-terminated) is the root or lies under it. */
static bool under_root(const static_files *s, const char *path)
{
    if (s->root_len == 1)
        return path[0] == '/';
    return strncmp(path, s->root, s->root_len) == 0 &&
           (path[s->root_len] == '/' || path[s->root_len] == '\0');
}

/* Whether the open fd (reached through path) is inside the root. */
static bool contained(const static_files *s, int fd, const char *path)
{
    if (s->follow_outside)
        return true;
    char link[64], real[PATH_MAX + 1];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, PATH_MAX);
    if (n > 0) {
        real[n] = '\0';
        return under_root(s, real);
    }
    char *resolved = realpath(path, NULL);
    bool inside = resolved && under_root(s, resolved);
    free(resolved);
    return inside;
}

/* The request's path as a relative path under the root ("" for the root),
   in the request's arena; NULL when it must not be served. */
static char *relative_path(csgi_request *request, const char *path, size_t len)
{
    if (memchr(path, '\0', len) || memchr(path, '\\', len))
        return NULL;
    /* "%2F" and "%5C" decode to separators PATH_INFO cannot tell apart. */
    const char *raw = csgi_environ_get(csgi_request_environ(request), "REQUEST_URI");
    for (const char *p = raw; p && *p && *p != '?'; p++)
        if (p[0] == '%' &&
            ((p[1] == '2' && (p[2] | 0x20) == 'f') || (p[1] == '5' && (p[2] | 0x20) == 'c')))
            return NULL;
    char *out = csgi_environ_alloc(csgi_request_environ(request), len + 1);
    if (!out)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < len;) {
        size_t end = i;
        while (end < len && path[end] != '/')
            end++;
        size_t n = end - i;
        if (n == 2 && path[i] == '.' && path[i + 1] == '.')
            return NULL;
        if (n > 0 && !(n == 1 && path[i] == '.')) {
            if (used)
                out[used++] = '/';
            memcpy(out + used, path + i, n);
            used += n;
        }
        i = end + 1;
    }
    out[used] = '\0';
    return out;
}

static csgi_response *not_found(csgi_request *request)
{
    return csgi_handler_error(request, 404, NULL);
}

/* 301 to the same URL with a "/" after the path. */
static csgi_response *add_slash(csgi_request *request)
{
    csgi_environ *environ = csgi_request_environ(request);
    const char *url = csgi_request_path_url(request);
    const char *query = csgi_request_query_string(request);
    if (!url)
        return NULL;
    size_t size = strlen(url) + (query ? strlen(query) : 0) + 3;
    char *location = csgi_environ_alloc(environ, size);
    if (!location)
        return NULL;
    snprintf(location, size, "%s/%s%s", url, query && query[0] ? "?" : "", query ? query : "");
    csgi_response *response = csgi_handler_error(request, 301, NULL);
    if (!response || csgi_response_set_location(response, location) != 0)
        return NULL;
    return response;
}

static csgi_response *send_file(csgi_request *request, const static_files *s, int fd,
                                const struct stat *st, const char *name)
{
    csgi_response *response = csgi_handler_response(request);
    if (!response) {
        close(fd);
        return NULL;
    }
    const char *type = type_of(s, name);
    char etag[64];
    snprintf(etag, sizeof(etag), "%llx-%llx", (unsigned long long)st->st_size,
             (unsigned long long)st->st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)st->st_mtim.tv_nsec);
    int rc = csgi_response_set_file(response, fd, 0, st->st_size);
    if (rc == 0)
        rc = csgi_response_set_content_type(response, type,
                                            strncmp(type, "text/", 5) == 0 ? "utf-8" : NULL);
    if (rc == 0)
        rc = csgi_response_set_etag(response, etag, 0);
    if (rc == 0 && csgi_response_set_last_modified(response, st->st_mtime) == CSGI_ENOMEM)
        rc = CSGI_ENOMEM;
    if (rc == 0 && s->cache_max_age >= 0) {
        csgi_cache_control cache = CSGI_CACHE_CONTROL_INIT;
        cache.max_age = s->cache_max_age;
        rc = csgi_response_set_cache_control(response, &cache);
    }
    if (rc != 0)
        return NULL;
    csgi_response_set_conditional(response, 1);
    return response;
}

/* Open name under the directory dir_fd (AT_FDCWD: name is absolute), whose
   whole path is path: the descriptor of a file or directory inside the
   root, or -1 when it is missing, refused or not contained. */
static int open_contained(const static_files *s, int dir_fd, const char *name, const char *path,
                          struct stat *st)
{
    /* O_NONBLOCK: a FIFO under the root must not hang the loop. */
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) != 0 || (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode)) ||
        !contained(s, fd, path)) {
        close(fd);
        return -1;
    }
    return fd;
}

static csgi_response *static_app(csgi_request *request, void *userdata)
{
    const static_files *s = userdata;
    const char *method = csgi_request_method(request);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        csgi_response *response = csgi_handler_error(request, 405, NULL);
        if (response && csgi_response_set_header(response, "Allow", "GET, HEAD") != 0)
            return NULL;
        return response;
    }
    size_t len = 0;
    const char *path = csgi_request_path_info(request, &len);
    char *relative = relative_path(request, path ? path : "", path ? len : 0);
    if (!relative)
        return not_found(request);
    size_t size = s->root_len + strlen(relative) + 2;
    char *full = csgi_environ_alloc(csgi_request_environ(request), size);
    if (!full)
        return NULL;
    snprintf(full, size, "%s/%s", s->root_len == 1 ? "" : s->root, relative);
    struct stat st;
    int fd = open_contained(s, AT_FDCWD, full, full, &st);
    if (fd < 0)
        return not_found(request);
    if (S_ISREG(st.st_mode)) {
        if (len > 0 && path[len - 1] == '/') { /* "file/" names no directory */
            close(fd);
            return not_found(request);
        }
        return send_file(request, s, fd, &st, relative);
    }
    /* A directory: its index, after a redirect that adds the "/". */
    if (len == 0 || path[len - 1] != '/') {
        close(fd);
        return add_slash(request);
    }
    size_t index_size = size + strlen(s->index) + 1;
    char *index_path = csgi_environ_alloc(csgi_request_environ(request), index_size);
    if (!index_path) {
        close(fd);
        return NULL;
    }
    snprintf(index_path, index_size, "%s/%s", full, s->index);
    int index_fd = open_contained(s, fd, s->index, index_path, &st);
    close(fd);
    if (index_fd < 0 || !S_ISREG(st.st_mode)) {
        if (index_fd >= 0)
            close(index_fd);
        return not_found(request);
    }
    return send_file(request, s, index_fd, &st, s->index);
}

/* ---- INI factory ----------------------------------------------------------------------- */

static const char *const known[] = {
    "document_root", "index", "cache_max_age", "mime_types", "follow_symlinks_outside", NULL};

static int configure(static_files *s, const csgi_conf *conf, csgi_load_error *error)
{
    const char *root = csgi_conf_get(conf, "document_root");
    if (!root || !root[0]) {
        csgi_conf_error(conf, "document_root", error, "missing: the directory to serve");
        return CSGI_EINVAL;
    }
    struct stat st;
    char *real = realpath(root, NULL);
    if (!real || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
        free(real);
        csgi_conf_error(conf, "document_root", error, "'%s' is not a directory", root);
        return CSGI_EINVAL;
    }
    s->root = csgi__strndup(real, strlen(real));
    free(real);
    if (!s->root)
        return CSGI_ENOMEM;
    s->root_len = strlen(s->root);
    const char *index = csgi_conf_get(conf, "index");
    if (!index)
        index = "index.html";
    if (!index[0] || strchr(index, '/') || strcmp(index, "..") == 0 || strcmp(index, ".") == 0) {
        csgi_conf_error(conf, "index", error, "'%s' is not a file name", index);
        return CSGI_EINVAL;
    }
    if (!(s->index = csgi__strndup(index, strlen(index))))
        return CSGI_ENOMEM;
    int follow = 0;
    int rc = csgi_conf_asbool(conf, "follow_symlinks_outside", 0, &follow, error);
    if (rc == 0)
        rc = csgi_conf_asint(conf, "cache_max_age", -1, &s->cache_max_age, error);
    if (rc != 0)
        return rc;
    s->follow_outside = follow != 0;
    if (s->cache_max_age < -1) {
        csgi_conf_error(conf, "cache_max_age", error, "must be 0 or more seconds");
        return CSGI_EINVAL;
    }
    const char *types = csgi_conf_get(conf, "mime_types");
    FILE *file = fopen(types ? types : "/etc/mime.types", "re");
    if (!file && types) {
        csgi_conf_error(conf, "mime_types", error, "cannot read '%s': %s", types, strerror(errno));
        return CSGI_EINVAL;
    }
    if (!file) /* no system list: the built-in types only */
        return 0;
    rc = read_mime_types(s, file);
    fclose(file);
    return rc;
}

static int setup(void **userdata, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                 const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)global_conf;
    int rc = csgi_middleware__known_keys(local_conf, "static", known, error);
    if (rc != 0)
        return rc;
    static_files *s = csgi__calloc(1, sizeof(*s));
    if (!s)
        return CSGI_ENOMEM;
    rc = configure(s, local_conf, error);
    if (rc != 0) {
        static_destroy(s);
        return rc;
    }
    *userdata = s;
    *destroy = static_destroy;
    return 0;
}

int csgi_static__app_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                             const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    csgi_app *app = NULL;
    int rc =
        csgi_handler_app_factory(&app, global_conf, local_conf, "static", static_app, setup, error);
    if (rc != 0)
        return rc;
    /* The request body is never read: a POST gets its 405 at once rather
       than after its body was gathered. */
    csgi_handler_options options = CSGI_HANDLER_OPTIONS_INIT;
    options.body = CSGI_HANDLER_BODY_STREAM;
    rc = csgi_handler_set_options(app, &options);
    if (rc != 0) {
        csgi_app_free(app);
        return rc;
    }
    *out = app;
    return 0;
}
