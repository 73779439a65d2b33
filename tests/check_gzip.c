/*
 * The gzip filter (src/middleware/gzip.c): negotiation, what is skipped,
 * headers, and round trips decompressed here with zlib, for bodies of
 * bytes, of many pieces, of pieces that come later, and files; through the
 * in-process test client and over real sockets, in front of an
 * application of the test's and of the static file application.
 */
#include "engine_harness.h"
#include "test_alloc.h"
#include "test_deploy.h"
#include "test_files.h"
#include "test_spy.h"

#include <csgi.h>

#include <check.h>
#include <event2/event.h>
#include <zlib.h>

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEXT_SIZE 20000
#define PIECES    400
#define FILE_SIZE (3 * 1024 * 1024 + 77)

static char text[TEXT_SIZE + 1];

static void make_text(void)
{
    size_t used = 0;
    for (int line = 0; used < TEXT_SIZE; line++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, "line %d of the text\n", line);
    text[TEXT_SIZE] = '\0';
}

/* ---- The application behind ------------------------------------------------------------ */

typedef struct pieces {
    int next;
    char buffer[64];
} pieces;

static int pieces_next(void *state, csgi_chunk *chunk)
{
    pieces *p = state;
    if (p->next == PIECES)
        return 0;
    int n = snprintf(p->buffer, sizeof(p->buffer), "piece %03d of a streamed body\n", p->next++);
    chunk->data = p->buffer;
    chunk->len = (size_t)n;
    return 1;
}

static const csgi_body_type pieces_type = {"pieces", pieces_next, NULL};

/* The whole of what /pieces sends. */
static size_t pieces_text(char *out, size_t size)
{
    size_t used = 0;
    for (int i = 0; i < PIECES; i++)
        used += (size_t)snprintf(out + used, size - used, "piece %03d of a streamed body\n", i);
    return used;
}

static int open_file(const char *name)
{
    return open(test_tmp_path(name), O_RDONLY | O_CLOEXEC);
}

static csgi_response *demo(csgi_request *request, void *userdata)
{
    (void)userdata;
    csgi_response *r = csgi_handler_response(request);
    if (!r)
        return NULL;
    size_t len;
    const char *path = csgi_request_path_info(request, &len);
    int rc = csgi_response_set_content_type(r, "text/plain", "utf-8");
    if (strcmp(path, "/text") == 0) {
        rc |= csgi_response_set_body_static(r, text, TEXT_SIZE);
        rc |= csgi_response_set_etag(r, "v1", 0);
        rc |= csgi_response_add_header(r, "Accept-Ranges", "bytes");
    } else if (strcmp(path, "/small") == 0) {
        rc |= csgi_response_set_body_static(r, text, 100);
    } else if (strcmp(path, "/exact") == 0 || strcmp(path, "/under") == 0) {
        rc |= csgi_response_set_body_static(r, text, path[1] == 'e' ? 1024 : 1023);
    } else if (strcmp(path, "/pieces") == 0) {
        pieces *p = csgi_environ_alloc_zeroed(csgi_request_environ(request), sizeof(*p));
        rc |= p ? csgi_response_set_stream(r, &pieces_type, p) : CSGI_ENOMEM;
    } else if (strcmp(path, "/png") == 0) {
        rc |= csgi_response_set_content_type(r, "image/png", NULL);
        rc |= csgi_response_set_body_static(r, text, 5000);
    } else if (strcmp(path, "/encoded") == 0) {
        rc |= csgi_response_set_header(r, "Content-Encoding", "br");
        rc |= csgi_response_set_body_static(r, text, 5000);
    } else if (strcmp(path, "/nothing") == 0) {
        rc |= csgi_response_set_status(r, 204);
    } else if (strncmp(path, "/type/", 6) == 0) {
        /* /type/application/vnd.api+json */
        rc |= csgi_response_set_header(r, "Content-Type", path + 6);
        rc |= csgi_response_set_body_static(r, text, 5000);
    } else if (strcmp(path, "/vary") == 0 || strcmp(path, "/vary_ae") == 0) {
        rc |= csgi_response_set_header(r, "Vary", path[5] ? "Origin, accept-encoding" : "Cookie");
        rc |= csgi_response_set_body_static(r, text, 5000);
    } else if (strcmp(path, "/file.txt") == 0 || strcmp(path, "/file.png") == 0) {
        int fd = open_file(path + 1);
        rc |= fd >= 0 ? csgi_response_set_file(r, fd, 0, FILE_SIZE) : CSGI_EIO;
        if (path[6] == 'p')
            rc |= csgi_response_set_content_type(r, "image/png", NULL);
    } else if (strcmp(path, "/echo") == 0) {
        const char *body = NULL;
        size_t n = 0;
        rc |= csgi_request_body(request, 1 << 20, &body, &n);
        rc |= csgi_response_set_body(r, body, n);
    } else {
        return csgi_handler_error(request, 404, NULL);
    }
    return rc == 0 ? r : NULL;
}

static int demo_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                        const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    return csgi_handler_app_factory(out, global_conf, local_conf, "demo", demo, NULL, error);
}

/* A body whose first piece comes at once and the rest later: after a
   timer, or (over sockets) once the test sets release_late. */
static atomic_int release_late;
static int wait_for_release;

typedef struct late {
    csgi_environ *environ;
    csgi_body *self;
    struct event *timer;
    int next;
    char buffer[64];
} late;

static void late_tick(evutil_socket_t fd, short what, void *arg)
{
    late *l = arg;
    (void)fd;
    (void)what;
    if (wait_for_release && !atomic_load(&release_late)) {
        struct timeval ten_ms = {0, 10000};
        evtimer_add(l->timer, &ten_ms);
        return;
    }
    l->next = 1; /* released */
    csgi_body_resume(l->self);
}

static int late_next(void *state, csgi_chunk *chunk)
{
    late *l = state;
    if (l->next == 0) {
        l->next = -1;
        chunk->data = "the first piece, sent before the rest exists\n";
        chunk->len = strlen(chunk->data);
        return 1;
    }
    if (l->next == -1) {
        if (!l->timer) {
            l->timer = evtimer_new(csgi_environ_event_base(l->environ), late_tick, l);
            struct timeval ten_ms = {0, 10000};
            if (!l->timer || evtimer_add(l->timer, &ten_ms) != 0)
                return CSGI_ENOMEM;
        }
        return CSGI_EAGAIN;
    }
    if (l->next > PIECES)
        return 0;
    int n = snprintf(l->buffer, sizeof(l->buffer), "piece %03d of a streamed body\n", l->next - 1);
    l->next++;
    chunk->data = l->buffer;
    chunk->len = (size_t)n;
    return 1;
}

static void late_close(void *state)
{
    late *l = state;
    if (l->timer)
        event_free(l->timer);
}

static const csgi_body_type late_type = {"late", late_next, late_close};

static csgi_body *late_call(void *state, csgi_environ *environ, csgi_start_response *sr)
{
    (void)state;
    static const csgi_header headers[] = {CSGI_HEADER("Content-Type", "text/plain")};
    if (csgi_start_response_call(sr, "200 OK", headers, 1, NULL) != 0)
        return NULL;
    late *l = csgi_environ_alloc_zeroed(environ, sizeof(*l));
    if (!l)
        return NULL;
    l->environ = environ;
    l->self = csgi_body_new(environ, &late_type, l);
    return l->self;
}

static const csgi_app_type late_app_type = {"late", late_call, NULL};

static int late_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                        const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    (void)local_conf;
    (void)error;
    return csgi_app_new(out, &late_app_type, NULL);
}

/* ---- Loading ----------------------------------------------------------------------------- */

static const char *write_deploy(void)
{
    char root[1024], ini[8192];
    snprintf(root, sizeof(root), "%s", test_tmp_path("root"));
    snprintf(ini, sizeof(ini),
             "[pipeline:main]\npipeline = gz demo\n\n"
             "[filter:gz]\nuse = egg:csgi#gzip\n\n"
             "[app:demo]\nuse = egg:Test#demo\n\n"
             "[pipeline:paste]\npipeline = gz_paste demo\n\n"
             "[filter:gz_paste]\nuse = egg:Paste#gzip\ncompress_level = 9\n\n"
             "[pipeline:factory]\npipeline = gz_factory demo\n\n"
             "[filter:gz_factory]\npaste.filter_factory = paste.gzipper:make_gzip_middleware\n"
             "compress_level = 1\nmin_length = 0\ncompress_types = text/html image/png\n\n"
             "[pipeline:late]\npipeline = gz late_app\n\n"
             "[app:late_app]\nuse = egg:Test#late\n\n"
             "[pipeline:static]\npipeline = gz files\n\n"
             "[app:files]\nuse = egg:csgi#static\ndocument_root = %s\n\n"
             "[filter:level0]\nuse = egg:csgi#gzip\ncompress_level = 0\n\n"
             "[filter:level10]\nuse = egg:csgi#gzip\ncompress_level = 10\n\n"
             "[filter:negative]\nuse = egg:csgi#gzip\nmin_length = -1\n\n"
             "[filter:bad_type]\nuse = egg:csgi#gzip\ncompress_types = text/html plain\n\n"
             "[filter:typo]\nuse = egg:csgi#gzip\ncompresslevel = 5\n\n"
             "[pipeline:bad_level0]\npipeline = level0 demo\n\n"
             "[pipeline:bad_level10]\npipeline = level10 demo\n\n"
             "[pipeline:bad_negative]\npipeline = negative demo\n\n"
             "[pipeline:bad_bad_type]\npipeline = bad_type demo\n\n"
             "[pipeline:bad_typo]\npipeline = typo demo\n",
             root);
    return test_write_file("gzip.ini", ini);
}

static csgi_loader *new_loader(void)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:Test#demo", CSGI_FACTORY_APP, demo_factory), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:Test#late", CSGI_FACTORY_APP, late_factory), 0);
    return loader;
}

static csgi_app *load(const char *name)
{
    make_text();
    csgi_loader *loader = new_loader();
    char uri[4200];
    snprintf(uri, sizeof(uri), "%s#%s", write_deploy(), name);
    csgi_app *app = test_load(loader, uri);
    csgi_loader_free(loader);
    return app;
}

/* ---- Requests and decompression ------------------------------------------------------ */

static csgi_test_response *get(csgi_app *app, const char *url, const char *accept)
{
    csgi_test_request *request = NULL;
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", url), 0);
    if (accept)
        ck_assert_int_eq(csgi_test_request_add_header(request, "Accept-Encoding", accept), 0);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    csgi_test_request_free(request);
    ck_assert_ptr_nonnull(response);
    return response;
}

/* Decompress a whole gzip stream (it must end exactly at len); the bytes
   are malloc'd, NUL-terminated. */
static char *gunzip(const void *data, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    ck_assert_int_eq(inflateInit2(&z, 15 + 16), Z_OK);
    size_t cap = 1 << 16, used = 0;
    char *out = malloc(cap);
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    int rc;
    do {
        if (cap - used < 4096) {
            cap *= 2;
            out = realloc(out, cap);
            ck_assert_ptr_nonnull(out);
        }
        z.next_out = (Bytef *)out + used;
        z.avail_out = (uInt)(cap - used - 1);
        rc = inflate(&z, Z_NO_FLUSH);
        used = cap - 1 - z.avail_out;
        ck_assert_msg(rc == Z_OK || rc == Z_STREAM_END, "inflate: %d", rc);
    } while (rc != Z_STREAM_END);
    ck_assert_uint_eq(z.avail_in, 0); /* nothing after the trailer */
    inflateEnd(&z);
    out[used] = '\0';
    *out_len = used;
    return out;
}

/* r is gzip-encoded and decompresses to want (want_len bytes). */
static void expect_gzip(const csgi_test_response *r, const char *want, size_t want_len)
{
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Encoding"), "gzip");
    size_t len = 0, plain_len = 0;
    const char *body = csgi_test_response_body(r, &len);
    ck_assert_uint_lt(len, want_len);
    char *plain = gunzip(body, len, &plain_len);
    ck_assert_uint_eq(plain_len, want_len);
    ck_assert(memcmp(plain, want, want_len) == 0);
    free(plain);
}

/* r is not encoded and carries want. */
static void expect_plain(const csgi_test_response *r, const char *want, size_t want_len)
{
    ck_assert_ptr_null(csgi_test_response_header(r, "Content-Encoding"));
    size_t len = 0;
    const char *body = csgi_test_response_body(r, &len);
    ck_assert_uint_eq(len, want_len);
    ck_assert(memcmp(body, want, want_len) == 0);
}

/* ---- Tests ------------------------------------------------------------------------------ */

START_TEST(round_trip_bytes)
{
    csgi_app *app = load("main");
    csgi_test_response *r = get(app, "/text", "gzip");
    expect_gzip(r, text, TEXT_SIZE);
    /* One bytes body compressed whole: its Content-Length is the compressed one. */
    size_t len = 0;
    csgi_test_response_body(r, &len);
    char want[32];
    snprintf(want, sizeof(want), "%zu", len);
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Length"), want);
    ck_assert_str_eq(csgi_test_response_header(r, "Vary"), "Accept-Encoding");
    ck_assert_str_eq(csgi_test_response_header(r, "ETag"), "W/\"v1\"");
    ck_assert_ptr_null(csgi_test_response_header(r, "Accept-Ranges"));
    csgi_test_response_free(r);

    /* The same without gzip: untouched, but Vary says why. */
    r = get(app, "/text", NULL);
    expect_plain(r, text, TEXT_SIZE);
    ck_assert_str_eq(csgi_test_response_header(r, "Vary"), "Accept-Encoding");
    ck_assert_str_eq(csgi_test_response_header(r, "ETag"), "\"v1\"");
    ck_assert_str_eq(csgi_test_response_header(r, "Accept-Ranges"), "bytes");
    csgi_test_response_free(r);
    csgi_app_free(app);
}
END_TEST

START_TEST(negotiation)
{
    csgi_app *app = load("main");
    static const struct {
        const char *accept;
        int gzip;
    } cases[] = {
        {"gzip", 1},
        {"GZIP", 1},
        {"x-gzip", 1},
        {"deflate, gzip;q=0.5", 1},
        {"*", 1},
        {"gzip, identity;q=0.5", 1},
        {"gzip;q=0", 0},
        {"gzip;q=0.000", 0},
        {"identity", 0},
        {"deflate, br", 0},
        {"*;q=0, identity", 0},
        {"identity;q=1, gzip;q=0", 0},
        {"gzip;q=0.5, identity;q=1", 0},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        csgi_test_response *r = get(app, "/text", cases[i].accept);
        const char *encoding = csgi_test_response_header(r, "Content-Encoding");
        ck_assert_msg((encoding != NULL) == cases[i].gzip, "%s", cases[i].accept);
        if (cases[i].gzip)
            expect_gzip(r, text, TEXT_SIZE);
        else
            expect_plain(r, text, TEXT_SIZE);
        ck_assert_msg(csgi_test_response_header(r, "Vary"), "%s", cases[i].accept);
        csgi_test_response_free(r);
    }
    csgi_app_free(app);
}
END_TEST

START_TEST(skipped)
{
    csgi_app *app = load("main");
    csgi_test_response *r = get(app, "/small", "gzip"); /* under min_length */
    expect_plain(r, text, 100);
    csgi_test_response_free(r);
    r = get(app, "/under", "gzip");
    expect_plain(r, text, 1023);
    csgi_test_response_free(r);
    r = get(app, "/exact", "gzip");
    expect_gzip(r, text, 1024);
    csgi_test_response_free(r);
    r = get(app, "/png", "gzip");
    expect_plain(r, text, 5000);
    ck_assert_ptr_null(csgi_test_response_header(r, "Vary"));
    csgi_test_response_free(r);
    r = get(app, "/encoded", "gzip");
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Encoding"), "br");
    size_t encoded_len = 0;
    csgi_test_response_body(r, &encoded_len);
    ck_assert_uint_eq(encoded_len, 5000);
    csgi_test_response_free(r);
    r = get(app, "/nothing", "gzip");
    ck_assert_int_eq(csgi_test_response_code(r), 204);
    ck_assert_ptr_null(csgi_test_response_header(r, "Content-Encoding"));
    csgi_test_response_free(r);
    r = get(app, "/missing", "gzip"); /* an error page is text too, but short */
    ck_assert_int_eq(csgi_test_response_code(r), 404);
    ck_assert_ptr_null(csgi_test_response_header(r, "Content-Encoding"));
    csgi_test_response_free(r);

    /* HEAD: passed on as it is. */
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "HEAD", "/text"), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Accept-Encoding", "gzip"), 0);
    ck_assert_int_eq(csgi_test_request_run(&r, request, app), 0);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_ptr_null(csgi_test_response_header(r, "Content-Encoding"));
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "");
    csgi_test_response_free(r);
    csgi_test_request_free(request);

    /* Types: the defaults take suffixes and SVG, not images. */
    static const struct {
        const char *url;
        int gzip;
    } types[] = {
        {"/type/application/vnd.api+json", 1},
        {"/type/application/atom+xml;charset=utf-8", 1},
        {"/type/image/svg+xml", 1},
        {"/type/application/json", 1},
        {"/type/application/javascript", 1},
        {"/type/TEXT/CSS", 1},
        {"/type/image/jpeg", 0},
        {"/type/application/octet-stream", 0},
        {"/type/application/jsonx", 0},
        {"/type/textual/plain", 0},
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        r = get(app, types[i].url, "gzip");
        const char *encoding = csgi_test_response_header(r, "Content-Encoding");
        ck_assert_msg((encoding != NULL) == types[i].gzip, "%s", types[i].url);
        csgi_test_response_free(r);
    }
    csgi_app_free(app);
}
END_TEST

START_TEST(vary_kept)
{
    csgi_app *app = load("main");
    csgi_test_response *r = get(app, "/vary", "gzip");
    expect_gzip(r, text, 5000);
    ck_assert_str_eq(csgi_test_response_header_value(r, "Vary", 0), "Cookie");
    ck_assert_str_eq(csgi_test_response_header_value(r, "Vary", 1), "Accept-Encoding");
    csgi_test_response_free(r);
    r = get(app, "/vary_ae", "gzip");
    expect_gzip(r, text, 5000);
    ck_assert_str_eq(csgi_test_response_header(r, "Vary"), "Origin, accept-encoding");
    ck_assert_ptr_null(csgi_test_response_header_value(r, "Vary", 1));
    csgi_test_response_free(r);
    csgi_app_free(app);
}
END_TEST

START_TEST(streamed_pieces)
{
    static char want[PIECES * 64];
    size_t want_len = pieces_text(want, sizeof(want));
    csgi_app *app = load("main");
    csgi_test_response *r = get(app, "/pieces", "gzip");
    expect_gzip(r, want, want_len);
    ck_assert_ptr_null(csgi_test_response_header(r, "Content-Length")); /* unknown: chunked */
    csgi_test_response_free(r);
    r = get(app, "/pieces", "identity");
    expect_plain(r, want, want_len);
    csgi_test_response_free(r);
    csgi_app_free(app);

    /* Pieces that come later: what was compressed is flushed meanwhile. */
    app = load("late");
    static char late_want[PIECES * 64 + 64];
    strcpy(late_want, "the first piece, sent before the rest exists\n");
    size_t first = strlen(late_want);
    size_t late_len = first + pieces_text(late_want + first, sizeof(late_want) - first);
    r = get(app, "/", "gzip");
    expect_gzip(r, late_want, late_len);
    csgi_test_response_free(r);
    csgi_app_free(app);
}
END_TEST

static void write_big(const char *name)
{
    FILE *f = fopen(test_tmp_path(name), "wb");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < FILE_SIZE; i++)
        fputc(i % 61 == 60 ? '\n' : 'a' + (int)((i * 31 + i / 997) % 26), f);
    fclose(f);
}

START_TEST(files)
{
    write_big("file.txt");
    write_big("file.png");
    csgi_app *app = test_spy_wrap(load("main"));
    char *want = malloc(FILE_SIZE);
    FILE *f = fopen(test_tmp_path("file.txt"), "rb");
    ck_assert_uint_eq(fread(want, 1, FILE_SIZE, f), FILE_SIZE);
    fclose(f);

    /* Not compressed: still a file body. */
    csgi_test_response *r = get(app, "/file.png", "gzip");
    expect_plain(r, want, FILE_SIZE);
    ck_assert_int_eq(test_spy_kind(), CSGI_BODY_FILE);
    csgi_test_response_free(r);
    /* Compressed as it streams: an iterator over the file. */
    r = get(app, "/file.txt", "gzip");
    expect_gzip(r, want, FILE_SIZE);
    ck_assert_int_eq(test_spy_kind(), CSGI_BODY_ITERATOR);
    csgi_test_response_free(r);
    r = get(app, "/file.txt", "identity");
    expect_plain(r, want, FILE_SIZE);
    ck_assert_int_eq(test_spy_kind(), CSGI_BODY_FILE);
    csgi_test_response_free(r);
    free(want);
    csgi_app_free(app);
}
END_TEST

START_TEST(names_and_options)
{
    /* egg:Paste#gzip at level 9, paste.gzipper's factory at level 1. */
    csgi_app *best = load("paste"), *fast = load("factory"), *usual = load("main");
    /* The gzip header's XFL byte tells the level: 2 for 9, 4 for 1, 0 between. */
    csgi_app *apps[] = {best, usual, fast};
    const int xfl[] = {2, 0, 4};
    for (int i = 0; i < 3; i++) {
        csgi_test_response *r = get(apps[i], i == 2 ? "/type/text/html" : "/text", "gzip");
        expect_gzip(r, text, i == 2 ? 5000 : TEXT_SIZE);
        const unsigned char *body = (const unsigned char *)csgi_test_response_body(r, NULL);
        ck_assert_int_eq(body[0], 0x1f);
        ck_assert_int_eq(body[1], 0x8b);
        ck_assert_int_eq(body[8], xfl[i]);
        csgi_test_response_free(r);
    }
    csgi_app_free(usual);
    /* compress_types = text/html image/png, min_length = 0. */
    csgi_test_response *r;
    r = get(fast, "/png", "gzip");
    expect_gzip(r, text, 5000);
    csgi_test_response_free(r);
    r = get(fast, "/text", "gzip"); /* text/plain is not on its list */
    expect_plain(r, text, TEXT_SIZE);
    ck_assert_ptr_null(csgi_test_response_header(r, "Vary"));
    csgi_test_response_free(r);
    r = get(fast, "/small", "gzip"); /* min_length 0 */
    ck_assert_ptr_null(csgi_test_response_header(r, "Content-Encoding"));
    csgi_test_response_free(r);
    csgi_app_free(best);
    csgi_app_free(fast);
}
END_TEST

START_TEST(bad_conf)
{
    csgi_loader *loader = new_loader();
    const char *path = write_deploy();
    static const struct {
        const char *name, *text;
    } bad[] = {
        {"level0", "[filter:level0] compress_level: 0 is not a level from 1 to 9"},
        {"level10", "[filter:level10] compress_level: 10 is not a level"},
        {"negative", "[filter:negative] min_length: must be 0 or more"},
        {"bad_type", "[filter:bad_type] compress_types: 'plain' is not a media type"},
        {"typo", "[filter:typo] compresslevel: unknown key for gzip"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char uri[4200], message[2048];
        snprintf(uri, sizeof(uri), "%s#bad_%s", path, bad[i].name);
        ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_EINVAL);
        ck_assert_msg(strstr(message, bad[i].text), "%s", message);
        ck_assert_msg(strstr(message, "gzip.ini:"), "%s", message);
    }
    csgi_loader_free(loader);
}
END_TEST

/* Request bodies reach the application behind as they arrive (the filter
   does not read them); the answer is compressed all the same. */
START_TEST(request_bodies)
{
    csgi_app *app = load("main");
    static const size_t pieces_sizes[] = {0, 1000, 1};
    for (size_t i = 0; i < 3; i++) {
        csgi_test_request *request = NULL;
        csgi_test_response *r = NULL;
        ck_assert_int_eq(csgi_test_request_new(&request, "POST", "/echo"), 0);
        ck_assert_int_eq(csgi_test_request_add_header(request, "Accept-Encoding", "gzip"), 0);
        ck_assert_int_eq(csgi_test_request_set_body(request, text, 5000), 0);
        ck_assert_int_eq(
            csgi_test_request_set_body_delivery(
                request, i ? CSGI_TEST_DELIVERY_LATE : CSGI_TEST_DELIVERY_AT_ONCE, pieces_sizes[i]),
            0);
        ck_assert_int_eq(csgi_test_request_run(&r, request, app), 0);
        expect_gzip(r, text, 5000);
        csgi_test_response_free(r);
        csgi_test_request_free(request);
    }
    csgi_app_free(app);
}
END_TEST

START_TEST(over_sockets)
{
    test_write_file("root/small.txt", "tiny");
    write_big("root/big.txt");
    write_big("root/big.png");
    app_server served;
    app_server_start(&served, load("static"), NULL);
    int fd = client_connect(served.port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(
        client_send_str(fd, "GET /big.txt HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n"
                            "GET /big.png HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n"
                            "GET /big.txt HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n"
                            "Range: bytes=10-19\r\n\r\n"
                            "HEAD /big.txt HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n"
                            "GET /small.txt HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n"),
        0);
    char *want = malloc(FILE_SIZE);
    FILE *f = fopen(test_tmp_path("root/big.txt"), "rb");
    ck_assert_uint_eq(fread(want, 1, FILE_SIZE, f), FILE_SIZE);
    fclose(f);

    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 20000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(response_header(&r, "content-encoding"), "gzip");
    ck_assert(r.chunked);
    char etag[128];
    snprintf(etag, sizeof(etag), "%s", response_header(&r, "etag"));
    ck_assert_msg(strncmp(etag, "W/\"", 3) == 0, "%s", etag);
    size_t plain_len = 0;
    char *plain = gunzip(r.body, r.body_len, &plain_len);
    ck_assert_uint_eq(plain_len, FILE_SIZE);
    ck_assert(memcmp(plain, want, FILE_SIZE) == 0);
    free(plain);
    response_free(&r);

    ck_assert_int_eq(client_response(fd, &r, 0, 20000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(response_header(&r, "content-encoding"));
    ck_assert(!r.chunked);
    ck_assert_uint_eq(r.body_len, FILE_SIZE);
    response_free(&r);

    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 206);
    ck_assert_ptr_null(response_header(&r, "content-encoding"));
    ck_assert_uint_eq(r.body_len, 10);
    ck_assert(memcmp(r.body, want + 10, 10) == 0);
    response_free(&r);

    ck_assert_int_eq(client_response(fd, &r, 1, 5000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(response_header(&r, "content-encoding"));
    response_free(&r);

    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_str_eq(r.body, "tiny");
    response_free(&r);

    /* The weak tag of the compressed answer validates it. */
    char request[512];
    snprintf(request, sizeof(request),
             "GET /big.txt HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n"
             "If-None-Match: %s\r\n\r\n",
             etag);
    ck_assert_int_eq(client_send_str(fd, request), 0);
    ck_assert_int_eq(client_response(fd, &r, 1, 5000), 0);
    ck_assert_int_eq(r.status, 304);
    response_free(&r);
    close(fd);
    free(want);
    app_server_stop(&served);
}
END_TEST

/* The first piece of a body that waits arrives compressed before the rest
   exists: the filter streams, it does not gather. */
START_TEST(streams_over_sockets)
{
    wait_for_release = 1;
    app_server served;
    app_server_start(&served, load("late"), NULL);
    int fd = client_connect(served.port);
    ck_assert_int_eq(client_send_str(fd, "GET / HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n"
                                         "Connection: close\r\n\r\n"),
                     0);
    /* The head and the first chunk, then nothing until released. */
    static char got[1 << 20];
    size_t used = 0;
    int eof = 0;
    long deadline = now_ms() + 5000;
    const char *first = "the first piece, sent before the rest exists\n";
    int seen = 0;
    while (!seen && now_ms() < deadline) {
        used += client_read(fd, got + used, sizeof(got) - used, 100, NULL, &eof);
        const char *body = strstr(got, "\r\n\r\n");
        if (!body)
            continue;
        /* One chunk: size line, data, CRLF. Inflate its data. */
        body += 4;
        char *end = NULL;
        unsigned long size = strtoul(body, &end, 16);
        if (!end || strncmp(end, "\r\n", 2) != 0 || (size_t)(end + 2 - got) + size > used)
            continue;
        z_stream z;
        memset(&z, 0, sizeof(z));
        ck_assert_int_eq(inflateInit2(&z, 15 + 16), Z_OK);
        char out[256];
        z.next_in = (Bytef *)(end + 2);
        z.avail_in = (uInt)size;
        z.next_out = (Bytef *)out;
        z.avail_out = sizeof(out);
        int rc = inflate(&z, Z_SYNC_FLUSH);
        ck_assert_int_eq(rc, Z_OK); /* not the end of the stream */
        ck_assert_uint_eq(sizeof(out) - z.avail_out, strlen(first));
        ck_assert(memcmp(out, first, strlen(first)) == 0);
        inflateEnd(&z);
        seen = 1;
    }
    ck_assert_msg(seen, "the first piece did not come alone: %s", got);
    atomic_store(&release_late, 1);
    while (!eof && now_ms() < deadline + 10000)
        used += client_read(fd, got + used, sizeof(got) - used, 200, NULL, &eof);
    ck_assert(eof);
    close(fd);
    /* Strip the chunked framing, then the whole stream decompresses. */
    static char body[1 << 20];
    size_t body_len = 0;
    const char *p = strstr(got, "\r\n\r\n") + 4;
    for (;;) {
        char *end = NULL;
        unsigned long size = strtoul(p, &end, 16);
        ck_assert(end && strncmp(end, "\r\n", 2) == 0);
        if (size == 0)
            break;
        memcpy(body + body_len, end + 2, size);
        body_len += size;
        p = end + 2 + size + 2;
    }
    static char want[PIECES * 64 + 64];
    strcpy(want, first);
    size_t want_len = strlen(first);
    want_len += pieces_text(want + want_len, sizeof(want) - want_len);
    size_t plain_len = 0;
    char *plain = gunzip(body, body_len, &plain_len);
    ck_assert_uint_eq(plain_len, want_len);
    ck_assert(memcmp(plain, want, want_len) == 0);
    free(plain);
    app_server_stop(&served);
}
END_TEST

/* Load and compress with each allocation failing in turn (zlib's memory
   comes from csgi's allocator too): every attempt ends in an error or a
   response that decompresses, and nothing leaks (ASan). */
START_TEST(out_of_memory)
{
    make_text();
    static char want[PIECES * 64];
    size_t want_len = pieces_text(want, sizeof(want));
    char uri[4200];
    snprintf(uri, sizeof(uri), "%s#main", write_deploy());
    ck_assert_int_eq(test_alloc_install(), 0);
    int succeeded = 0;
    for (long budget = 0; budget < 5000 && !succeeded; budget++) {
        test_alloc_fail_after(budget);
        csgi_loader *loader = NULL;
        csgi_app *app = NULL;
        int done = 0;
        int rc = csgi_loader_new(&loader);
        if (rc == 0)
            rc = csgi_loader_register_app(loader, "egg:Test#demo", CSGI_FACTORY_APP, demo_factory);
        if (rc == 0)
            rc = csgi_loader_load_app(&app, loader, uri, NULL);
        for (int i = 0; rc == 0 && i < 2; i++) {
            csgi_test_request *request = NULL;
            csgi_test_response *r = NULL;
            rc = csgi_test_request_new(&request, "GET", i ? "/pieces" : "/text");
            if (rc == 0)
                rc = csgi_test_request_add_header(request, "Accept-Encoding", "gzip");
            if (rc == 0)
                rc = csgi_test_request_run(&r, request, app);
            int code = rc == 0 ? csgi_test_response_code(r) : 0;
            ck_assert_msg(rc == 0 || rc == CSGI_ENOMEM, "budget %ld: %s", budget,
                          csgi_err_name(rc));
            ck_assert_msg(rc != 0 || code == 200 || code == 500, "budget %ld: %d", budget, code);
            if (code == 200 && !csgi_test_response_cut(r)) {
                expect_gzip(r, i ? want : text, i ? want_len : TEXT_SIZE);
                done += 1;
            }
            csgi_test_response_free(r);
            csgi_test_request_free(request);
        }
        succeeded = done == 2 && test_alloc_count() < budget;
        test_alloc_fail_never();
        csgi_app_free(app);
        csgi_loader_free(loader);
    }
    test_alloc_restore();
    ck_assert(succeeded);
}
END_TEST

/* docs/middleware.md's example: gzip in front of static, serving its own
   directory (an .ini file is no type worth compressing: sent as it is). */
START_TEST(docs_example)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    char uri[4200];
    snprintf(uri, sizeof(uri), "%s/docs/gzip.ini#site", test_testdata_dir());
    csgi_app *app = test_load(loader, uri);
    csgi_test_response *r = get(app, "/gzip.ini", "gzip");
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_ptr_null(csgi_test_response_header(r, "Content-Encoding"));
    ck_assert_ptr_nonnull(strstr(csgi_test_response_body(r, NULL), "use = egg:Paste#gzip"));
    csgi_test_response_free(r);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

static Suite *gzip_suite(void)
{
    Suite *suite = suite_create("gzip");
    TCase *tc = tcase_create("gzip");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, round_trip_bytes);
    tcase_add_test(tc, negotiation);
    tcase_add_test(tc, skipped);
    tcase_add_test(tc, vary_kept);
    tcase_add_test(tc, streamed_pieces);
    tcase_add_test(tc, files);
    tcase_add_test(tc, names_and_options);
    tcase_add_test(tc, bad_conf);
    tcase_add_test(tc, request_bodies);
    tcase_add_test(tc, over_sockets);
    tcase_add_test(tc, streams_over_sockets);
    tcase_add_test(tc, docs_example);
    tcase_add_test(tc, out_of_memory);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(gzip_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
