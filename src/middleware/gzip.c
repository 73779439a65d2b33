/*
 * The gzip filter (Paste's gzipper, egg:Paste#gzip) with its INI factory:
 * a response whose type is worth compressing goes out gzip-encoded when
 * the client's Accept-Encoding takes gzip.
 *
 * The filter forwards with csgi_handler_forward_then() and changes the
 * answer when it starts. A body of bytes is compressed at once and keeps a
 * Content-Length; a file or an iterator is compressed piece by piece as
 * the client reads (never gathered), with zlib holding back what it has
 * not emitted yet until the inner body stalls (CSGI_EAGAIN: then a sync
 * flush sends it) or ends (the gzip trailer). What is not compressed is
 * passed on as it came: a file keeps its sendfile(2) path.
 *
 * Not compressed: HEAD, 1xx, 204, 206, 304, bodies shorter than
 * min_length (when the length is known), responses with a
 * Content-Encoding, and types not in compress_types. A compressed answer
 * gets Vary: Accept-Encoding (so does one that would have been, had the
 * client asked), a weak ETag, and loses Accept-Ranges.
 *
 * The body of the answer is read from the response object's fields
 * (helpers/response_private.h): the public API sends a response, it has no
 * call to take its body out.
 */
#include "common/alloc.h"
#include "helpers/response_private.h"
#include "middleware/middleware.h"

#include <csgi/handler.h>
#include <csgi/negotiate.h>

#include <zlib.h>

#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

typedef struct gzip_filter {
    int level;
    long long min_length;
    char **types; /* media types, type/wildcards and +suffixes */
    size_t type_count;
} gzip_filter;

static const char *const default_types[] = {
    "text/*",
    "application/json",
    "application/javascript",
    "application/xml",
    "image/svg+xml",
    "+json",
    "+xml",
};

static void gzip_destroy(void *userdata)
{
    gzip_filter *g = userdata;
    if (!g)
        return;
    for (size_t i = 0; i < g->type_count; i++)
        csgi__free(g->types[i]);
    csgi__free(g->types);
    csgi__free(g);
}

/* zlib's memory through csgi's allocator (the failing allocator of the tests). */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return csgi__calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    csgi__free(p);
}

static int start_deflate(z_stream *z, int level)
{
    memset(z, 0, sizeof(*z));
    z->zalloc = z_alloc;
    z->zfree = z_free;
    /* 15 + 16: a gzip header and trailer around the deflate stream. */
    int rc = deflateInit2(z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    return rc == Z_OK ? 0 : rc == Z_MEM_ERROR ? CSGI_ENOMEM : CSGI_EINVAL;
}

/* ---- The compressing body ------------------------------------------------------------ */

typedef struct gzip_body {
    z_stream z;
    bool z_ready;
    csgi_body *inner;
    csgi_chunk rest; /* what zlib has not taken yet of the inner piece */
    bool inner_done; /* the inner body ended: finish */
    bool finished;   /* the trailer is out */
    bool unflushed;  /* zlib holds input it has not emitted */
    bool flushing;   /* a sync flush is under way */
    unsigned char out[16384];
} gzip_body;

static int gzip_next(void *state, csgi_chunk *chunk)
{
    gzip_body *g = state;
    g->z.next_out = g->out;
    g->z.avail_out = sizeof(g->out);
    while (g->z.avail_out > 0 && !g->finished) {
        if (g->rest.len == 0 && !g->inner_done && !g->flushing) {
            int r = csgi_body_next(g->inner, &g->rest);
            if (r == 0 || r == CSGI_EAGAIN)
                g->rest.len = 0;
            if (r == 0) {
                g->inner_done = true;
            } else if (r == CSGI_EAGAIN) {
                if (!g->unflushed)
                    break; /* nothing held back: wait for the inner body */
                g->flushing = true;
            } else if (r < 0) {
                return r;
            } else if (g->rest.len > 0) {
                g->unflushed = true;
            }
        }
        int flush = g->inner_done ? Z_FINISH : g->flushing ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        uInt given = g->rest.len > UINT_MAX ? UINT_MAX : (uInt)g->rest.len;
        g->z.next_in = (Bytef *)(uintptr_t)g->rest.data;
        g->z.avail_in = given;
        int rc = deflate(&g->z, flush);
        g->rest.data = (const char *)g->rest.data + (given - g->z.avail_in);
        g->rest.len -= given - g->z.avail_in;
        if (rc == Z_STREAM_END)
            g->finished = true;
        else if (rc != Z_OK && rc != Z_BUF_ERROR)
            return CSGI_EIO;
        if (g->flushing && g->z.avail_out > 0) {
            /* All held back is out: send it while the inner body waits. */
            g->flushing = false;
            g->unflushed = false;
            break;
        }
    }
    size_t n = sizeof(g->out) - g->z.avail_out;
    if (n == 0)
        return g->finished ? 0 : CSGI_EAGAIN;
    chunk->data = g->out;
    chunk->len = n;
    return 1;
}

static void gzip_close(void *state)
{
    gzip_body *g = state;
    if (g->z_ready)
        deflateEnd(&g->z);
    csgi_body_close(g->inner);
}

static const csgi_body_type gzip_body_type = {"gzip", gzip_next, gzip_close};

/* ---- Deciding, and changing the answer ------------------------------------------------- */

static bool compressible(const gzip_filter *f, const char *content_type)
{
    if (!content_type)
        return false;
    size_t len = strcspn(content_type, "; \t");
    for (size_t i = 0; i < f->type_count; i++) {
        const char *t = f->types[i];
        size_t n = strlen(t);
        if (t[0] == '+') { /* a structured syntax suffix */
            if (len > n && strncasecmp(content_type + len - n, t, n) == 0)
                return true;
        } else if (n >= 2 && t[n - 1] == '*' && t[n - 2] == '/') {
            if (len >= n - 1 && strncasecmp(content_type, t, n - 1) == 0)
                return true;
        } else if (len == n && strncasecmp(content_type, t, n) == 0) {
            return true;
        }
    }
    return false;
}

/* Add Vary: Accept-Encoding unless a Vary field names it (or "*"). */
static int add_vary(csgi_response *response)
{
    const char *vary;
    for (size_t i = 0; (vary = csgi_response_get_header(response, "Vary", i)); i++)
        if (strcasestr(vary, "accept-encoding") || strchr(vary, '*'))
            return 0;
    return csgi_response_add_header(response, "Vary", "Accept-Encoding");
}

/* gzip with a q above 0, unless identity is named with a higher q
   ("gzip;q=0.5, identity"). No Accept-Encoding: no gzip, as is usual. */
static bool wants_gzip(const char *accept)
{
    if (!accept)
        return false;
    int gzip = csgi_accept_encoding_quality(accept, "gzip");
    return gzip > 0 && (!strcasestr(accept, "identity") ||
                        csgi_accept_encoding_quality(accept, "identity") <= gzip);
}

/* The answer's body length when known, else -1. */
static int64_t known_length(const csgi_response *response)
{
    switch (response->body_kind) {
    case CSGI_RESPONSE__EMPTY: return 0;
    case CSGI_RESPONSE__BYTES: return (int64_t)response->len;
    case CSGI_RESPONSE__FILE: return response->length;
    case CSGI_RESPONSE__STREAM:
        return response->stream_length_of ? csgi_body_length(response->stream_length_of) : -1;
    default: return -1;
    }
}

/* A bytes body compressed whole: it keeps a Content-Length. */
static int compress_bytes(csgi_request *request, csgi_response *response, int level)
{
    z_stream z;
    int rc = start_deflate(&z, level);
    if (rc != 0)
        return rc;
    uLong bound = deflateBound(&z, (uLong)response->len);
    unsigned char *out = csgi_environ_alloc(csgi_request_environ(request), bound);
    if (!out || response->len > UINT_MAX || bound > UINT_MAX) {
        deflateEnd(&z);
        return CSGI_ENOMEM;
    }
    z.next_in = (Bytef *)(uintptr_t)response->data;
    z.avail_in = (uInt)response->len;
    z.next_out = out;
    z.avail_out = (uInt)bound;
    rc = deflate(&z, Z_FINISH);
    size_t len = bound - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END)
        return CSGI_EIO;
    return csgi_response_set_body_static(response, out, len);
}

/* A file or an iterator, compressed as it streams. */
static int compress_stream(csgi_request *request, csgi_response *response, int level)
{
    csgi_environ *environ = csgi_request_environ(request);
    csgi_body *inner;
    if (response->body_kind == CSGI_RESPONSE__FILE) {
        int fd = response->fd;
        response->fd = -1; /* the inner body closes it from here */
        inner = csgi_body_file(environ, fd, response->offset, response->length);
    } else {
        const csgi_body_type *type = response->stream_type;
        response->stream_type = NULL; /* the inner body closes it from here */
        inner = csgi_body_new(environ, type, response->stream_state);
        response->stream_state = NULL;
    }
    gzip_body *g = inner ? csgi_environ_alloc_zeroed(environ, sizeof(*g)) : NULL;
    if (!g) {
        csgi_body_close(inner);
        return CSGI_ENOMEM;
    }
    g->inner = inner;
    int rc = start_deflate(&g->z, level);
    g->z_ready = rc == 0;
    int set = csgi_response_set_stream(response, &gzip_body_type, g); /* closes g on failure */
    return rc != 0 ? rc : set;
}

static csgi_response *compress_answer(csgi_request *request, csgi_response *response, void *state)
{
    const gzip_filter *f = state;
    int status = csgi_response_status(response);
    if (status < 200 || status == 204 || status == 206 || status == 304 ||
        csgi_response_get_header(response, "Content-Encoding", 0) ||
        !compressible(f, csgi_response_get_header(response, "Content-Type", 0)))
        return response;
    int64_t length = known_length(response);
    if (length >= 0 && length < f->min_length)
        return response;
    if (add_vary(response) != 0)
        return NULL;
    if (!wants_gzip(csgi_request_header(request, "Accept-Encoding", NULL)))
        return response;
    int kind = response->body_kind;
    if (kind != CSGI_RESPONSE__BYTES && kind != CSGI_RESPONSE__FILE &&
        kind != CSGI_RESPONSE__STREAM)
        return response; /* no body */
    int rc = kind == CSGI_RESPONSE__BYTES ? compress_bytes(request, response, f->level)
                                          : compress_stream(request, response, f->level);
    if (rc == 0)
        rc = csgi_response_set_header(response, "Content-Encoding", "gzip");
    csgi_response_remove_header(response, "Accept-Ranges");
    const char *etag = csgi_response_get_header(response, "ETag", 0);
    if (rc == 0 && etag && etag[0] == '"') {
        size_t n = strlen(etag);
        char *weak = csgi_environ_alloc(csgi_request_environ(request), n + 3);
        if (!weak)
            return NULL;
        memcpy(weak, "W/", 2);
        memcpy(weak + 2, etag, n + 1);
        rc = csgi_response_set_header(response, "ETag", weak);
    }
    if (rc != 0) {
        csgi_environ_log(csgi_request_environ(request), "gzip: cannot compress: %s",
                         csgi_strerror(rc));
        return NULL;
    }
    return response;
}

static csgi_response *gzip_handler(csgi_request *request, csgi_app *next, void *userdata)
{
    if (strcmp(csgi_request_method(request), "HEAD") == 0)
        return csgi_handler_forward(request, next);
    return csgi_handler_forward_then(request, next, compress_answer, userdata);
}

/* ---- INI factory ----------------------------------------------------------------------- */

static const char *const known[] = {"compress_level", "min_length", "compress_types", NULL};

static int configure(gzip_filter *g, const csgi_conf *conf, csgi_load_error *error)
{
    long long level = 6;
    int rc = csgi_conf_asint(conf, "compress_level", 6, &level, error);
    if (rc == 0)
        rc = csgi_conf_asint(conf, "min_length", 1024, &g->min_length, error);
    if (rc != 0)
        return rc;
    if (level < 1 || level > 9) {
        csgi_conf_error(conf, "compress_level", error, "%lld is not a level from 1 to 9", level);
        return CSGI_EINVAL;
    }
    if (g->min_length < 0) {
        csgi_conf_error(conf, "min_length", error, "must be 0 or more bytes");
        return CSGI_EINVAL;
    }
    g->level = (int)level;
    const char *const *types = default_types;
    size_t count = sizeof(default_types) / sizeof(default_types[0]);
    if (csgi_conf_get(conf, "compress_types")) {
        rc = csgi_conf_aslist(conf, "compress_types", &types, &count, error);
        if (rc != 0)
            return rc;
    }
    g->types = csgi__calloc(count ? count : 1, sizeof(char *));
    if (!g->types)
        return CSGI_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const char *t = types[i];
        if (t[0] != '+' && !strchr(t, '/')) {
            csgi_conf_error(conf, "compress_types", error,
                            "'%s' is not a media type (type/subtype, type/* or +suffix)", t);
            return CSGI_EINVAL;
        }
        if (!(g->types[i] = csgi__strndup(t, strlen(t))))
            return CSGI_ENOMEM;
        g->type_count++;
    }
    return 0;
}

static int setup(void **userdata, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                 const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)global_conf;
    int rc = csgi_middleware__known_keys(local_conf, "gzip", known, error);
    if (rc != 0)
        return rc;
    gzip_filter *g = csgi__calloc(1, sizeof(*g));
    if (!g)
        return CSGI_ENOMEM;
    rc = configure(g, local_conf, error);
    if (rc != 0) {
        gzip_destroy(g);
        return rc;
    }
    *userdata = g;
    *destroy = gzip_destroy;
    return 0;
}

int csgi_gzip__filter_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                              const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    return csgi_handler_filter_factory(out, global_conf, local_conf, next, "gzip", gzip_handler,
                                       setup, error);
}
