/*
 * The static file application (src/middleware/static.c): files, types,
 * validators, conditional and range requests, directories, refused
 * traversals and symbolic links, through the in-process test client and
 * over real sockets. Every file is made by the test under its temporary
 * directory (test_tmp_dir(), made with mkdtemp()).
 */
#include "engine_harness.h"
#include "test_alloc.h"
#include "test_deploy.h"
#include "test_files.h"
#include "test_spy.h"

#include <csgi.h>

#include <check.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BIG_SIZE (5 * 1024 * 1024 + 123)

/* root/ the document root; outside/ and secret.txt beside it. */
static void make_tree(int big)
{
    test_write_file("root/a.txt", "hello static\n");
    test_write_file("root/index.html", "<p>root index</p>");
    test_write_file("root/img.png", "\x89PNG fake");
    test_write_file("root/data.unknownext", "?");
    test_write_file("root/page.foo", "custom");
    test_write_file("root/sub/index.html", "<p>sub index</p>");
    test_write_file("root/sub/inner.txt", "inner");
    test_write_file("root/empty/other.txt", "x");
    test_write_file("secret.txt", "TOP SECRET");
    test_write_file("outside/file.txt", "TOP SECRET too");
    test_write_file("types", "# custom list\ntext/x-custom foo FOO2\nimage/png png\n");
    ck_assert_int_eq(symlink("a.txt", test_tmp_path("root/link_in")), 0);
    ck_assert_int_eq(symlink("sub", test_tmp_path("root/dirlink_in")), 0);
    ck_assert_int_eq(symlink("../secret.txt", test_tmp_path("root/link_out")), 0);
    char outside[4096];
    snprintf(outside, sizeof(outside), "%s", test_tmp_path("outside"));
    ck_assert_int_eq(symlink(outside, test_tmp_path("root/dirlink_out")), 0);
    ck_assert_int_eq(symlink("../secret.txt", test_tmp_path("root/sub/index_out")), 0);
    if (big) {
        char *data = malloc(BIG_SIZE);
        ck_assert_ptr_nonnull(data);
        for (size_t i = 0; i < BIG_SIZE; i++)
            data[i] = (char)('a' + (i * 7 + i / 4096) % 26);
        FILE *f = fopen(test_tmp_path("root/big.bin"), "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, BIG_SIZE, f), BIG_SIZE);
        fclose(f);
        free(data);
    }
}

static const char *write_deploy(void)
{
    char root[1024], types[1024], text[32768];
    snprintf(root, sizeof(root), "%s", test_tmp_path("root"));
    snprintf(types, sizeof(types), "%s", test_tmp_path("types"));
    snprintf(text, sizeof(text),
             "[app:main]\nuse = egg:Paste#static\ndocument_root = %s\n\n"
             "[app:csgi]\nuse = egg:csgi#static\ndocument_root = %s\ncache_max_age = 3600\n\n"
             "[app:paste]\npaste.app_factory = paste.urlparser:make_static\n"
             "document_root = %s\nindex = inner.txt\n\n"
             "[app:follow]\nuse = egg:csgi#static\ndocument_root = %s\n"
             "follow_symlinks_outside = true\n\n"
             "[app:typed]\nuse = egg:csgi#static\ndocument_root = %s\nmime_types = %s\n\n"
             "[app:no_root]\nuse = egg:csgi#static\n\n"
             "[app:missing_root]\nuse = egg:csgi#static\ndocument_root = %s/nowhere\n\n"
             "[app:typo]\nuse = egg:csgi#static\ndocument_root = %s\nroot_directory = /\n\n"
             "[app:bad_types]\nuse = egg:csgi#static\ndocument_root = %s\n"
             "mime_types = %s/no-such-types\n\n"
             "[app:bad_index]\nuse = egg:csgi#static\ndocument_root = %s\nindex = ../x\n\n"
             "[app:bad_age]\nuse = egg:csgi#static\ndocument_root = %s\ncache_max_age = -5\n",
             root, root, root, root, root, types, root, root, root, root, root, root);
    return test_write_file("static.ini", text);
}

static csgi_app *load(const char *name)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    char uri[4200];
    snprintf(uri, sizeof(uri), "%s#%s", write_deploy(), name);
    csgi_app *app = test_load(loader, uri);
    csgi_loader_free(loader);
    return app;
}

/* Run method url with up to two header fields (NULL names: none). */
static csgi_test_response *run2(csgi_app *app, const char *method, const char *url,
                                const char *name1, const char *value1, const char *name2,
                                const char *value2)
{
    csgi_test_request *request = NULL;
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, method, url), 0);
    if (name1)
        ck_assert_int_eq(csgi_test_request_add_header(request, name1, value1), 0);
    if (name2)
        ck_assert_int_eq(csgi_test_request_add_header(request, name2, value2), 0);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    csgi_test_request_free(request);
    ck_assert_ptr_nonnull(response);
    return response;
}

static csgi_test_response *run(csgi_app *app, const char *method, const char *url)
{
    return run2(app, method, url, NULL, NULL, NULL, NULL);
}

/* r has code and, unless body is NULL, that body; r is freed. */
static void answered(csgi_test_response *r, const char *what, int code, const char *body)
{
    ck_assert_msg(csgi_test_response_code(r) == code, "%s: %d", what, csgi_test_response_code(r));
    if (body)
        ck_assert_str_eq(csgi_test_response_body(r, NULL), body);
    csgi_test_response_free(r);
}

static void expect(csgi_app *app, const char *url, int code, const char *body)
{
    answered(run(app, "GET", url), url, code, body);
}

START_TEST(file_bodies)
{
    make_tree(1);
    csgi_app *app = test_spy_wrap(load("main"));
    static const char *const urls[] = {"/a.txt", "/big.bin", "/sub/"};
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        test_spy_reset();
        csgi_test_response *r = run(app, "GET", urls[i]);
        ck_assert_int_eq(csgi_test_response_code(r), 200);
        ck_assert_msg(test_spy_kind() == CSGI_BODY_FILE, "%s", urls[i]);
        csgi_test_response_free(r);
    }
    /* A range is a file body too, of the part. */
    test_spy_reset();
    csgi_test_response *r = run2(app, "GET", "/big.bin", "Range", "bytes=100-199", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 206);
    ck_assert_int_eq(test_spy_kind(), CSGI_BODY_FILE);
    csgi_test_response_free(r);
    csgi_app_free(app);
}
END_TEST

START_TEST(serves_files)
{
    make_tree(0);
    csgi_app *app = load("main");
    csgi_test_response *r = run(app, "GET", "/a.txt");
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "hello static\n");
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Type"), "text/plain; charset=utf-8");
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Length"), "13");
    ck_assert_str_eq(csgi_test_response_header(r, "Accept-Ranges"), "bytes");
    const char *etag = csgi_test_response_header(r, "ETag");
    ck_assert_ptr_nonnull(etag);
    ck_assert_msg(etag[0] == '"' && strstr(etag, "d-"), "strong, from the size: %s", etag);
    ck_assert_ptr_nonnull(csgi_test_response_header(r, "Last-Modified"));
    ck_assert_ptr_null(csgi_test_response_header(r, "Cache-Control"));
    csgi_test_response_free(r);

    r = run(app, "HEAD", "/a.txt");
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "");
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Length"), "13");
    csgi_test_response_free(r);

    r = run(app, "GET", "/img.png");
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Type"), "image/png");
    csgi_test_response_free(r);
    r = run(app, "GET", "/data.unknownext");
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Type"), "application/octet-stream");
    csgi_test_response_free(r);
    r = run(app, "GET", "/index.html");
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Type"), "text/html; charset=utf-8");
    csgi_test_response_free(r);
    expect(app, "/missing.txt", 404, NULL);
    expect(app, "/sub/missing/deeper", 404, NULL);
    expect(app, "/a.txt/", 404, NULL);
    expect(app, "/./sub/./inner.txt", 200, "inner");
    csgi_app_free(app);
}
END_TEST

START_TEST(names_and_options)
{
    make_tree(0);
    csgi_app *app = load("csgi");
    csgi_test_response *r = run(app, "GET", "/a.txt");
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_header(r, "Cache-Control"), "max-age=3600");
    csgi_test_response_free(r);
    csgi_app_free(app);

    /* paste.urlparser:make_static, with another index file. */
    app = load("paste");
    expect(app, "/sub/", 200, "inner");
    expect(app, "/", 404, NULL); /* root has no inner.txt */
    csgi_app_free(app);

    app = load("typed");
    r = run(app, "GET", "/page.foo");
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Type"), "text/x-custom; charset=utf-8");
    csgi_test_response_free(r);
    /* Not in the file: the built-in list, then octet-stream. */
    r = run(app, "GET", "/a.txt");
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Type"), "text/plain; charset=utf-8");
    csgi_test_response_free(r);
    csgi_app_free(app);
}
END_TEST

START_TEST(bad_conf)
{
    make_tree(0);
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    const char *path = write_deploy();
    static const struct {
        const char *name, *text;
    } bad[] = {
        {"no_root", "[app:no_root] document_root: missing"},
        {"missing_root", "[app:missing_root] document_root: '"},
        {"typo", "[app:typo] root_directory: unknown key for static"},
        {"bad_types", "[app:bad_types] mime_types: cannot read"},
        {"bad_index", "[app:bad_index] index: '../x' is not a file name"},
        {"bad_age", "[app:bad_age] cache_max_age: must be 0 or more"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char uri[4200], message[2048];
        snprintf(uri, sizeof(uri), "%s#%s", path, bad[i].name);
        ck_assert_int_eq(test_load_fails(loader, uri, message, sizeof(message)), CSGI_EINVAL);
        ck_assert_msg(strstr(message, bad[i].text), "%s", message);
        ck_assert_msg(strstr(message, "static.ini:"), "file:line in %s", message);
    }
    csgi_loader_free(loader);
}
END_TEST

START_TEST(directories)
{
    make_tree(0);
    csgi_app *app = load("main");
    expect(app, "/", 200, "<p>root index</p>");
    expect(app, "/sub/", 200, "<p>sub index</p>");
    expect(app, "/empty/", 404, NULL); /* no index, no listing */
    csgi_test_response *r = run(app, "GET", "/sub");
    ck_assert_int_eq(csgi_test_response_code(r), 301);
    ck_assert_str_eq(csgi_test_response_header(r, "Location"), "http://localhost/sub/");
    csgi_test_response_free(r);
    r = run(app, "GET", "/sub?x=1&y");
    ck_assert_int_eq(csgi_test_response_code(r), 301);
    ck_assert_str_eq(csgi_test_response_header(r, "Location"), "http://localhost/sub/?x=1&y");
    csgi_test_response_free(r);
    /* A name with a space and a quote stays encoded in Location. */
    test_write_file("root/a b\"/index.html", "spaced");
    r = run(app, "GET", "/a%20b%22");
    ck_assert_int_eq(csgi_test_response_code(r), 301);
    ck_assert_str_eq(csgi_test_response_header(r, "Location"), "http://localhost/a%20b%22/");
    csgi_test_response_free(r);
    expect(app, "/a%20b%22/", 200, "spaced");
    /* Mounted under a prefix: the redirect keeps SCRIPT_NAME. */
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "/sub"), 0);
    ck_assert_int_eq(csgi_test_request_set_environ(request, "SCRIPT_NAME", "/files"), 0);
    ck_assert_int_eq(csgi_test_request_run(&r, request, app), 0);
    ck_assert_str_eq(csgi_test_response_header(r, "Location"), "http://localhost/files/sub/");
    csgi_test_response_free(r);
    csgi_test_request_free(request);
    csgi_app_free(app);
}
END_TEST

/* url must never give the secret: refused before the application or by it. */
static void refused(csgi_app *app, const char *url)
{
    csgi_test_request *request = NULL;
    csgi_test_response *r = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", url), 0);
    int rc = csgi_test_request_run(&r, request, app);
    csgi_test_request_free(request);
    if (rc == CSGI_EPARSE) /* what the server's parser answers 400 */
        return;
    ck_assert_msg(rc == 0, "%s: %s", url, csgi_strerror(rc));
    int code = csgi_test_response_code(r);
    ck_assert_msg(code == 404 || code == 400, "%s gave %d", url, code);
    ck_assert_msg(!strstr(csgi_test_response_body(r, NULL), "SECRET"), "%s leaked", url);
    csgi_test_response_free(r);
}

/* With PATH_INFO (and REQUEST_URI) set directly, as a filter could: the
   application's own checks answer 404. */
static void refused_environ(csgi_app *app, const char *path_info, const char *request_uri)
{
    csgi_test_request *request = NULL;
    csgi_test_response *r = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "/a.txt"), 0);
    ck_assert_int_eq(csgi_test_request_set_environ(request, "PATH_INFO", path_info), 0);
    if (request_uri)
        ck_assert_int_eq(csgi_test_request_set_environ(request, "REQUEST_URI", request_uri), 0);
    ck_assert_int_eq(csgi_test_request_run(&r, request, app), 0);
    ck_assert_msg(csgi_test_response_code(r) == 404, "%s: %d", path_info,
                  csgi_test_response_code(r));
    ck_assert(!strstr(csgi_test_response_body(r, NULL), "SECRET"));
    csgi_test_response_free(r);
    csgi_test_request_free(request);
}

START_TEST(traversal_refused)
{
    make_tree(0);
    csgi_app *app = load("main");
    static const char *const urls[] = {
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/a%2f..%2f..%2fsecret.txt",
        "/sub%2F..%2F..%2Fsecret.txt",
        "/%00",
        "/a.txt%00.png",
        "/sub/%5c..%5c..%5csecret.txt",
        "/link_out",
        "/dirlink_out/file.txt",
        "/sub/index_out",
        "/..%2fsecret.txt",
        "//..//secret.txt",
    };
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++)
        refused(app, urls[i]);
    /* Even a "/../" that stays below the root is refused. */
    expect(app, "/sub/../a.txt", 404, NULL);
    /* Encoded "/" is refused even where it would stay inside. */
    expect(app, "/sub%2finner.txt", 404, NULL);

    refused_environ(app, "/../secret.txt", NULL);
    refused_environ(app, "/sub/../../secret.txt", NULL);
    refused_environ(app, "/..", NULL);
    refused_environ(app, "\\..\\secret.txt", NULL);
    refused_environ(app, "/sub\\inner.txt", NULL);
    refused_environ(app, "/sub/inner.txt", "/sub%2Finner.txt");
    refused_environ(app, "/link_out", NULL);

    /* Links inside the root are followed. */
    expect(app, "/link_in", 200, "hello static\n");
    expect(app, "/dirlink_in/inner.txt", 200, "inner");
    expect(app, "/dirlink_in/", 200, "<p>sub index</p>");
    csgi_app_free(app);

    /* follow_symlinks_outside = true: links out of the root are followed,
       ".." still is not. */
    app = load("follow");
    expect(app, "/link_out", 200, "TOP SECRET");
    expect(app, "/dirlink_out/file.txt", 200, "TOP SECRET too");
    refused_environ(app, "/../secret.txt", NULL);
    csgi_app_free(app);
}
END_TEST

START_TEST(conditional)
{
    make_tree(0);
    csgi_app *app = load("main");
    csgi_test_response *r = run(app, "GET", "/a.txt");
    char etag[128], modified[128];
    snprintf(etag, sizeof(etag), "%s", csgi_test_response_header(r, "ETag"));
    snprintf(modified, sizeof(modified), "%s", csgi_test_response_header(r, "Last-Modified"));
    csgi_test_response_free(r);

    r = run2(app, "GET", "/a.txt", "If-None-Match", etag, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 304);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "");
    ck_assert_str_eq(csgi_test_response_header(r, "ETag"), etag);
    csgi_test_response_free(r);
    char weak[140];
    snprintf(weak, sizeof(weak), "\"x\", W/%s", etag);
    r = run2(app, "HEAD", "/a.txt", "If-None-Match", weak, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 304);
    csgi_test_response_free(r);
    r = run2(app, "GET", "/a.txt", "If-None-Match", "\"other\"", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    csgi_test_response_free(r);
    r = run2(app, "GET", "/a.txt", "If-Modified-Since", modified, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 304);
    csgi_test_response_free(r);
    r = run2(app, "GET", "/a.txt", "If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT", NULL,
             NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "hello static\n");
    csgi_test_response_free(r);
    /* If-None-Match wins over If-Modified-Since. */
    r = run2(app, "GET", "/a.txt", "If-None-Match", "\"other\"", "If-Modified-Since", modified);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    csgi_test_response_free(r);

    /* A changed file gets another tag. */
    sleep(1);
    test_write_file("root/a.txt", "hello static!\n");
    r = run2(app, "GET", "/a.txt", "If-None-Match", etag, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_ne(csgi_test_response_header(r, "ETag"), etag);
    csgi_test_response_free(r);
    r = run2(app, "GET", "/a.txt", "If-Modified-Since", modified, NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    csgi_test_response_free(r);
    csgi_app_free(app);
}
END_TEST

static void expect_range(csgi_app *app, const char *range, int code, const char *content_range,
                         const char *body)
{
    csgi_test_response *r = run2(app, "GET", "/a.txt", "Range", range, NULL, NULL);
    const char *got = csgi_test_response_header(r, "Content-Range");
    if (content_range)
        ck_assert_str_eq(got ? got : "(none)", content_range);
    else
        ck_assert_ptr_null(got);
    answered(r, range, code, body);
}

START_TEST(ranges)
{
    make_tree(0);
    csgi_app *app = load("main");
    expect_range(app, "bytes=0-4", 206, "bytes 0-4/13", "hello");
    expect_range(app, "bytes=6-", 206, "bytes 6-12/13", "static\n");
    expect_range(app, "bytes=-7", 206, "bytes 6-12/13", "static\n");
    expect_range(app, "bytes=10-100", 206, "bytes 10-12/13", "ic\n");
    expect_range(app, "bytes=12-12", 206, "bytes 12-12/13", "\n");
    expect_range(app, "bytes=0-", 206, "bytes 0-12/13", "hello static\n");
    expect_range(app, "bytes=13-", 416, "bytes */13", NULL);
    expect_range(app, "bytes=100-200", 416, "bytes */13", NULL);
    /* Several ranges, or a malformed header: the whole file. */
    expect_range(app, "bytes=0-1,4-5", 200, NULL, "hello static\n");
    expect_range(app, "bytes=abc", 200, NULL, "hello static\n");
    expect_range(app, "bytes=5-2", 200, NULL, "hello static\n");
    expect_range(app, "lines=1-2", 200, NULL, "hello static\n");

    csgi_test_response *r = run(app, "GET", "/a.txt");
    char etag[128];
    snprintf(etag, sizeof(etag), "%s", csgi_test_response_header(r, "ETag"));
    csgi_test_response_free(r);
    r = run2(app, "GET", "/a.txt", "Range", "bytes=0-4", "If-Range", etag);
    ck_assert_int_eq(csgi_test_response_code(r), 206);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "hello");
    csgi_test_response_free(r);
    r = run2(app, "GET", "/a.txt", "Range", "bytes=0-4", "If-Range", "\"stale\"");
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "hello static\n");
    csgi_test_response_free(r);
    /* HEAD ignores Range (RFC 9110 14.2: only GET has ranges). */
    r = run2(app, "HEAD", "/a.txt", "Range", "bytes=0-4", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_str_eq(csgi_test_response_header(r, "Content-Length"), "13");
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "");
    csgi_test_response_free(r);
    csgi_app_free(app);
}
END_TEST

START_TEST(methods)
{
    make_tree(0);
    csgi_app *app = load("main");
    static const char *const refused_methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    for (size_t i = 0; i < sizeof(refused_methods) / sizeof(refused_methods[0]); i++) {
        csgi_test_request *request = NULL;
        csgi_test_response *r = NULL;
        ck_assert_int_eq(csgi_test_request_new(&request, refused_methods[i], "/a.txt"), 0);
        ck_assert_int_eq(csgi_test_request_set_body(request, "payload", 7), 0);
        ck_assert_int_eq(csgi_test_request_run(&r, request, app), 0);
        ck_assert_int_eq(csgi_test_response_code(r), 405);
        ck_assert_str_eq(csgi_test_response_header(r, "Allow"), "GET, HEAD");
        ck_assert(!strstr(csgi_test_response_body(r, NULL), "hello static"));
        csgi_test_response_free(r);
        csgi_test_request_free(request);
    }
    csgi_app_free(app);
}
END_TEST

static void check_big(const char *body, size_t len, size_t from)
{
    for (size_t i = 0; i < len; i++) {
        size_t at = from + i;
        if (body[i] != (char)('a' + (at * 7 + at / 4096) % 26))
            ck_abort_msg("byte %zu differs", at);
    }
}

START_TEST(big_file)
{
    make_tree(1);
    csgi_app *app = load("main");
    csgi_test_response *r = run(app, "GET", "/big.bin");
    size_t len = 0;
    const char *body = csgi_test_response_body(r, &len);
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_uint_eq(len, BIG_SIZE);
    check_big(body, len, 0);
    csgi_test_response_free(r);
    r = run2(app, "GET", "/big.bin", "Range", "bytes=4000000-4999999", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 206);
    body = csgi_test_response_body(r, &len);
    ck_assert_uint_eq(len, 1000000);
    check_big(body, len, 4000000);
    csgi_test_response_free(r);
    csgi_app_free(app);
}
END_TEST

START_TEST(over_sockets)
{
    make_tree(1);
    app_server served;
    app_server_start(&served, load("main"), NULL);
    int fd = client_connect(served.port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(client_send_str(fd,
                                     "GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                                     "HEAD /a.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                                     "GET /a.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=1-3\r\n\r\n"
                                     "GET /link_out HTTP/1.1\r\nHost: t\r\n\r\n"
                                     "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"),
                     0);
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "hello static\n");
    char etag[128];
    snprintf(etag, sizeof(etag), "%s", response_header(&r, "etag"));
    response_free(&r);
    ck_assert_int_eq(client_response(fd, &r, 1, 5000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(response_header(&r, "content-length"), "13");
    ck_assert_uint_eq(r.body_len, 0);
    response_free(&r);
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 206);
    ck_assert_str_eq(r.body, "ell");
    ck_assert_str_eq(response_header(&r, "content-range"), "bytes 1-3/13");
    response_free(&r);
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 404);
    ck_assert(!strstr(r.body, "SECRET"));
    response_free(&r);
    ck_assert_int_eq(client_response(fd, &r, 0, 20000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, BIG_SIZE);
    ck_assert(!r.chunked);
    check_big(r.body, r.body_len, 0);
    response_free(&r);

    char request[512];
    snprintf(request, sizeof(request),
             "GET /a.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: %s\r\n\r\n", etag);
    ck_assert_int_eq(client_send_str(fd, request), 0);
    ck_assert_int_eq(client_response(fd, &r, 1, 5000), 0);
    ck_assert_int_eq(r.status, 304);
    response_free(&r);
    close(fd);

    /* A POST is refused without its body being waited for. */
    fd = client_connect(served.port);
    ck_assert_int_eq(client_send_str(fd, "POST /a.txt HTTP/1.1\r\nHost: t\r\n"
                                         "Content-Length: 100000\r\n\r\npart of it"),
                     0);
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 405);
    ck_assert_str_eq(response_header(&r, "allow"), "GET, HEAD");
    response_free(&r);
    close(fd);

    /* Traversals on the wire, each on a connection of its own. */
    static const char *const targets[] = {"/../secret.txt", "/%2e%2e/secret.txt",
                                          "/a%2f..%2f..%2fsecret.txt", "/a.txt%00",
                                          "/sub%2f..%2f..%2fsecret.txt"};
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        fd = client_connect(served.port);
        snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", targets[i]);
        ck_assert_int_eq(client_send_str(fd, request), 0);
        ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
        ck_assert_msg(r.status == 400 || r.status == 404, "%s: %d", targets[i], r.status);
        ck_assert(!r.body || !strstr(r.body, "SECRET"));
        response_free(&r);
        close(fd);
    }
    app_server_stop(&served);
}
END_TEST

/* Load and serve with each allocation failing in turn: every attempt ends
   in an error or a response, and nothing leaks (ASan). */
START_TEST(out_of_memory)
{
    make_tree(0);
    char uri[4200];
    snprintf(uri, sizeof(uri), "%s#typed", write_deploy());
    ck_assert_int_eq(test_alloc_install(), 0);
    int succeeded = 0;
    for (long budget = 0; budget < 5000 && !succeeded; budget++) {
        test_alloc_fail_after(budget);
        csgi_loader *loader = NULL;
        csgi_app *app = NULL;
        csgi_test_request *request = NULL;
        csgi_test_response *r = NULL;
        int rc = csgi_loader_new(&loader);
        if (rc == 0)
            rc = csgi_loader_load_app(&app, loader, uri, NULL);
        if (rc == 0)
            rc = csgi_test_request_new(&request, "GET", "/sub");
        if (rc == 0)
            rc = csgi_test_request_run(&r, request, app);
        ck_assert_msg(rc == 0 || rc == CSGI_ENOMEM, "budget %ld: %s", budget, csgi_err_name(rc));
        int code = rc == 0 ? csgi_test_response_code(r) : 0;
        ck_assert_msg(rc != 0 || code == 301 || code == 500, "budget %ld: %d", budget, code);
        csgi_test_response_free(r);
        r = NULL;
        if (rc == 0 && code == 301) {
            csgi_test_request_free(request);
            request = NULL;
            rc = csgi_test_request_new(&request, "GET", "/page.foo");
            if (rc == 0)
                rc = csgi_test_request_run(&r, request, app);
            code = rc == 0 ? csgi_test_response_code(r) : 0;
            ck_assert_msg(rc != 0 || code == 200 || code == 500, "budget %ld: %d", budget, code);
            if (code == 200) {
                ck_assert_str_eq(csgi_test_response_body(r, NULL), "custom");
                succeeded = test_alloc_count() < budget;
            }
        }
        test_alloc_fail_never();
        csgi_test_response_free(r);
        csgi_test_request_free(request);
        csgi_app_free(app);
        csgi_loader_free(loader);
    }
    test_alloc_restore();
    ck_assert(succeeded);
}
END_TEST

/* docs/middleware.md's example loads and serves its own directory. */
START_TEST(docs_example)
{
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    char uri[4200];
    snprintf(uri, sizeof(uri), "%s/docs/static.ini#files", test_testdata_dir());
    csgi_app *app = test_load(loader, uri);
    csgi_test_response *r = run(app, "GET", "/static.ini");
    ck_assert_int_eq(csgi_test_response_code(r), 200);
    ck_assert_ptr_nonnull(strstr(csgi_test_response_body(r, NULL), "use = egg:Paste#static"));
    ck_assert_str_eq(csgi_test_response_header(r, "Cache-Control"), "max-age=3600");
    csgi_test_response_free(r);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

static Suite *static_suite(void)
{
    Suite *suite = suite_create("static");
    TCase *tc = tcase_create("static");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, serves_files);
    tcase_add_test(tc, file_bodies);
    tcase_add_test(tc, names_and_options);
    tcase_add_test(tc, bad_conf);
    tcase_add_test(tc, directories);
    tcase_add_test(tc, traversal_refused);
    tcase_add_test(tc, conditional);
    tcase_add_test(tc, ranges);
    tcase_add_test(tc, methods);
    tcase_add_test(tc, big_file);
    tcase_add_test(tc, over_sockets);
    tcase_add_test(tc, docs_example);
    tcase_add_test(tc, out_of_memory);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(static_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
