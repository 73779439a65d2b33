/*
 * The gallery (examples/gallery) without a browser: its security
 * properties, through the in-process test client and over real sockets.
 * Session and sign-in cookies are HttpOnly, SameSite=Lax, Path=/ and Secure
 * under https; every POST without its CSRF token (or with a wrong one) is
 * refused with an HTML 403 and changes nothing; a wrong password is
 * refused; names of files never become paths and are rendered escaped;
 * uploads over the limits get an HTML 413; downloads answer Range and
 * If-None-Match. Bodies go in one write, in pieces and a byte at a time.
 */
#include "engine_harness.h"

#include <csgi.h>
#include <csgi/testing.h>

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FILE    100000
#define MAX_REQUEST 300000

static char state_dir[] = "/tmp/check_gallery.XXXXXX";

static csgi_app *load_gallery(void)
{
    const char *dir = getenv("CSGI_GALLERY_DIR");
    const char *ini = getenv("CSGI_GALLERY_INI");
    ck_assert_msg(dir && ini, "CSGI_GALLERY_DIR and CSGI_GALLERY_INI are set by CTest");
    ck_assert_ptr_nonnull(mkdtemp(state_dir));
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(csgi_loader_add_module_path(loader, dir), 0);
    ck_assert_int_eq(csgi_loader_set_global(loader, "state_dir", state_dir), 0);
    ck_assert_int_eq(csgi_loader_set_global(loader, "max_file_size", "100000"), 0);
    ck_assert_int_eq(csgi_loader_set_global(loader, "max_request_size", "300000"), 0);
    csgi_app *app = NULL;
    csgi_load_error error;
    int rc = csgi_loader_load_app(&app, loader, ini, &error);
    char text[1024];
    csgi_load_error_format(&error, text, sizeof(text));
    ck_assert_msg(rc == 0, "%s", text);
    csgi_loader_free(loader);
    return app;
}

static void remove_state(void)
{
    char command[256];
    snprintf(command, sizeof(command), "rm -rf '%s'", state_dir);
    ck_assert_int_eq(system(command), 0);
}

/* How many stored files alice has (*.data). */
static int stored_files(const char *user)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/files/%s", state_dir, user);
    DIR *d = opendir(path);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".data") != NULL;
    if (d)
        closedir(d);
    return n;
}

/* ---- Requests through the test client ------------------------------------------------ */

typedef struct client {
    csgi_app *app;
    csgi_test_session *session;
    const char *base; /* "http://gallery.test" or "https://..." */
    int chunked;      /* send bodies with Transfer-Encoding: chunked */
} client;

static csgi_test_response *run(client *c, const char *method, const char *path, const char *type,
                               const void *body, size_t len, size_t piece, const char *header,
                               const char *value)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", c->base, path);
    csgi_test_request *request = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, method, url), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "Accept", "text/html"), 0);
    if (header)
        ck_assert_int_eq(csgi_test_request_add_header(request, header, value), 0);
    if (type)
        ck_assert_int_eq(csgi_test_request_add_header(request, "Content-Type", type), 0);
    if (body) {
        ck_assert_int_eq(csgi_test_request_set_body(request, body, len), 0);
        csgi_test_request_set_chunked(request, c->chunked);
        ck_assert_int_eq(
            csgi_test_request_set_body_delivery(
                request, piece ? CSGI_TEST_DELIVERY_LATE : CSGI_TEST_DELIVERY_AT_ONCE, piece),
            0);
    }
    csgi_test_response *response = NULL;
    int rc = csgi_test_session_run(&response, c->session, request);
    ck_assert_msg(rc == 0, "%s %s: %s", method, url, csgi_strerror(rc));
    csgi_test_request_free(request);
    return response;
}

static csgi_test_response *get(client *c, const char *path)
{
    return run(c, "GET", path, NULL, NULL, 0, 0, NULL, NULL);
}

static csgi_test_response *post_form(client *c, const char *path, const char *form, size_t piece)
{
    return run(c, "POST", path, "application/x-www-form-urlencoded", form, strlen(form), piece,
               NULL, NULL);
}

static const char *body_of(const csgi_test_response *response)
{
    size_t len;
    const char *body = csgi_test_response_body(response, &len);
    return body ? body : "";
}

/* The first csrf field of a page, copied into out. */
static void token_of(const csgi_test_response *response, char out[65])
{
    const char *at = strstr(body_of(response), "name=\"csrf\" value=\"");
    ck_assert_ptr_nonnull(at);
    memcpy(out, at + 19, 64);
    out[64] = '\0';
}

static int is_html(const csgi_test_response *response)
{
    const char *type = csgi_test_response_header(response, "Content-Type");
    return type && strncmp(type, "text/html", 9) == 0 &&
           strstr(body_of(response), "<!DOCTYPE html>") != NULL;
}

static void open_client(client *c, csgi_app *app, const char *base)
{
    c->app = app;
    c->base = base;
    c->chunked = 0;
    ck_assert_int_eq(csgi_test_session_new(&c->session, app), 0);
}

static int sign_in(client *c, const char *user, const char *password, size_t piece)
{
    csgi_test_response *page = get(c, "/signin");
    char token[65], form[256];
    token_of(page, token);
    csgi_test_response_free(page);
    snprintf(form, sizeof(form), "csrf=%s&user=%s&password=%s", token, user, password);
    csgi_test_response *answer = post_form(c, "/signin", form, piece);
    int code = csgi_test_response_code(answer);
    csgi_test_response_free(answer);
    return code;
}

/* The CSRF token of the signed-in listing. */
static void listing_token(client *c, char out[65])
{
    csgi_test_response *page = get(c, "/");
    ck_assert_int_eq(csgi_test_response_code(page), 200);
    token_of(page, out);
    csgi_test_response_free(page);
}

/* A multipart body of one csrf field (unless NULL) and one file. */
static char *multipart(const char *token, const char *filename, const char *data, size_t len,
                       size_t *out_len)
{
    char *body = malloc(len + 1024);
    size_t n = 0;
    if (token)
        n += (size_t)sprintf(body + n,
                             "--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n"
                             "\r\n%s\r\n",
                             token);
    n += (size_t)sprintf(body + n,
                         "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
                         "filename=\"%s\"\r\nContent-Type: text/plain\r\n\r\n",
                         filename);
    memcpy(body + n, data, len);
    n += len;
    n += (size_t)sprintf(body + n, "\r\n--XyZ--\r\n");
    *out_len = n;
    return body;
}

static csgi_test_response *upload(client *c, const char *token, const char *filename,
                                  const char *data, size_t len, size_t piece)
{
    size_t body_len;
    char *body = multipart(token, filename, data, len, &body_len);
    csgi_test_response *response = run(c, "POST", "/upload", "multipart/form-data; boundary=XyZ",
                                       body, body_len, piece, NULL, NULL);
    free(body);
    return response;
}

/* The id of the first file of the listing, copied into out. */
static void first_id(client *c, char out[33])
{
    csgi_test_response *page = get(c, "/");
    const char *at = strstr(body_of(page), "href=\"/files/");
    ck_assert_ptr_nonnull(at);
    memcpy(out, at + 13, 32);
    out[32] = '\0';
    csgi_test_response_free(page);
}

/* ---- Tests ------------------------------------------------------------------------------ */

static csgi_app *app;
static client c;

static void setup(void)
{
    app = load_gallery();
    open_client(&c, app, "http://gallery.test");
}

static void teardown(void)
{
    csgi_test_session_free(c.session);
    csgi_app_free(app);
    remove_state();
}

static void assert_cookie_flags(const char *cookie, int secure)
{
    ck_assert_ptr_nonnull(cookie);
    ck_assert_ptr_nonnull(strstr(cookie, "; HttpOnly"));
    ck_assert_ptr_nonnull(strstr(cookie, "; SameSite=Lax"));
    ck_assert_ptr_nonnull(strstr(cookie, "; Path=/"));
    ck_assert_int_eq(strstr(cookie, "; Secure") != NULL, secure);
}

START_TEST(test_cookie_flags)
{
    static const char *const bases[] = {"http://gallery.test", "https://gallery.test"};
    for (int secure = 0; secure < 2; secure++) {
        client s;
        open_client(&s, app, bases[secure]);
        csgi_test_response *page = get(&s, "/signin");
        ck_assert_int_eq(csgi_test_response_code(page), 200);
        ck_assert(is_html(page));
        assert_cookie_flags(csgi_test_response_header_value(page, "Set-Cookie", 0), secure);
        char token[65], form[256];
        token_of(page, token);
        csgi_test_response_free(page);
        snprintf(form, sizeof(form), "csrf=%s&user=alice&password=alice-gallery", token);
        csgi_test_response *answer = post_form(&s, "/signin", form, 0);
        ck_assert_int_eq(csgi_test_response_code(answer), 303);
        const char *cookie = csgi_test_response_header_value(answer, "Set-Cookie", 0);
        ck_assert_ptr_nonnull(strstr(cookie, "gallery_session="));
        assert_cookie_flags(cookie, secure);
        csgi_test_response_free(answer);
        csgi_test_session_free(s.session);
    }
}
END_TEST

START_TEST(test_wrong_password)
{
    static const size_t pieces[] = {0, 5, 1};
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(sign_in(&c, "alice", "bob-gallery", pieces[i]), 401);
        ck_assert_int_eq(sign_in(&c, "nobody", "alice-gallery", pieces[i]), 401);
        ck_assert_int_eq(sign_in(&c, "alice", "alice-gallery%00x", pieces[i]), 401);
        ck_assert_int_eq(sign_in(&c, "alice%00", "alice-gallery", pieces[i]), 401);
        ck_assert_int_eq(sign_in(&c, "../alice", "alice-gallery", pieces[i]), 401);
        ck_assert_ptr_null(csgi_test_session_cookie(c.session, "gallery_session"));
    }
    csgi_test_response *page = get(&c, "/");
    ck_assert_int_eq(csgi_test_response_code(page), 303);
    csgi_test_response_free(page);
    ck_assert_int_eq(sign_in(&c, "alice", "alice-gallery", 1), 303);
    page = get(&c, "/");
    ck_assert_int_eq(csgi_test_response_code(page), 200);
    csgi_test_response_free(page);
}
END_TEST

START_TEST(test_csrf_refused)
{
    /* Sign-in itself needs its token. */
    csgi_test_response *answer = post_form(&c, "/signin", "user=alice&password=alice-gallery", 0);
    ck_assert_int_eq(csgi_test_response_code(answer), 403);
    ck_assert(is_html(answer));
    csgi_test_response_free(answer);

    ck_assert_int_eq(sign_in(&c, "alice", "alice-gallery", 0), 303);
    char token[65], wrong[65], form[256], id[33], path[64];
    listing_token(&c, token);
    memcpy(wrong, token, 65);
    wrong[0] = wrong[0] == '0' ? '1' : '0';
    static const size_t pieces[] = {0, 9, 1};
    for (size_t i = 0; i < 3; i++) {
        answer = upload(&c, NULL, "a.txt", "hello", 5, pieces[i]);
        ck_assert_int_eq(csgi_test_response_code(answer), 403);
        ck_assert(is_html(answer));
        csgi_test_response_free(answer);
        answer = upload(&c, wrong, "a.txt", "hello", 5, pieces[i]);
        ck_assert_int_eq(csgi_test_response_code(answer), 403);
        csgi_test_response_free(answer);
    }
    ck_assert_int_eq(stored_files("alice"), 0);

    answer = upload(&c, token, "a.txt", "hello", 5, 0);
    ck_assert_int_eq(csgi_test_response_code(answer), 303);
    csgi_test_response_free(answer);
    ck_assert_int_eq(stored_files("alice"), 1);
    first_id(&c, id);
    snprintf(path, sizeof(path), "/files/%s/delete", id);
    for (size_t i = 0; i < 3; i++) {
        answer = post_form(&c, path, "", pieces[i]);
        ck_assert_int_eq(csgi_test_response_code(answer), 403);
        csgi_test_response_free(answer);
        snprintf(form, sizeof(form), "csrf=%s", wrong);
        answer = post_form(&c, path, form, pieces[i]);
        ck_assert_int_eq(csgi_test_response_code(answer), 403);
        csgi_test_response_free(answer);
        answer = post_form(&c, "/signout", form, pieces[i]);
        ck_assert_int_eq(csgi_test_response_code(answer), 403);
        csgi_test_response_free(answer);
    }
    ck_assert_int_eq(stored_files("alice"), 1);

    /* Another user's token is no good either. */
    client bob;
    open_client(&bob, app, "http://gallery.test");
    ck_assert_int_eq(sign_in(&bob, "bob", "bob-gallery", 0), 303);
    char bob_token[65];
    listing_token(&bob, bob_token);
    snprintf(form, sizeof(form), "csrf=%s", bob_token);
    answer = post_form(&c, path, form, 0);
    ck_assert_int_eq(csgi_test_response_code(answer), 403);
    csgi_test_response_free(answer);
    csgi_test_session_free(bob.session);
    ck_assert_int_eq(stored_files("alice"), 1);

    /* With the right token: delete, then sign out. */
    snprintf(form, sizeof(form), "csrf=%s", token);
    answer = post_form(&c, path, form, 1);
    ck_assert_int_eq(csgi_test_response_code(answer), 303);
    csgi_test_response_free(answer);
    ck_assert_int_eq(stored_files("alice"), 0);
    answer = post_form(&c, "/signout", form, 0);
    ck_assert_int_eq(csgi_test_response_code(answer), 303);
    csgi_test_response_free(answer);
    answer = get(&c, "/");
    ck_assert_int_eq(csgi_test_response_code(answer), 303);
    csgi_test_response_free(answer);
}
END_TEST

START_TEST(test_names_escaped)
{
    ck_assert_int_eq(sign_in(&c, "alice", "alice-gallery", 0), 303);
    char token[65];
    listing_token(&c, token);
    static const size_t pieces[] = {0, 7, 1};
    for (size_t i = 0; i < 3; i++) {
        csgi_test_response *answer =
            upload(&c, token, "<script>alert(1)</script>.txt", "x", 1, pieces[i]);
        ck_assert_int_eq(csgi_test_response_code(answer), 303);
        csgi_test_response_free(answer);
    }
    csgi_test_response *answer = upload(&c, token, "\\\"><img src=x onerror=alert(2)>", "y", 1, 0);
    ck_assert_int_eq(csgi_test_response_code(answer), 303);
    csgi_test_response_free(answer);
    csgi_test_response *page = get(&c, "/");
    const char *body = body_of(page);
    ck_assert_ptr_nonnull(strstr(body, "&lt;script&gt;alert(1)&lt;/script&gt;.txt"));
    ck_assert_ptr_nonnull(strstr(body, "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
    ck_assert_ptr_null(strstr(body, "<script>alert"));
    ck_assert_ptr_null(strstr(body, "<img src=x"));
    csgi_test_response_free(page);
}
END_TEST

START_TEST(test_traversal)
{
    ck_assert_int_eq(sign_in(&c, "alice", "alice-gallery", 0), 303);
    char token[65], id[33], path[64];
    listing_token(&c, token);
    csgi_test_response *answer = upload(&c, token, "../../../etc/passwd", "secret", 6, 0);
    ck_assert_int_eq(csgi_test_response_code(answer), 303);
    csgi_test_response_free(answer);
    ck_assert_int_eq(stored_files("alice"), 1);
    ck_assert_int_ne(access("/etc/passwd.data", F_OK), 0);
    first_id(&c, id);
    snprintf(path, sizeof(path), "/files/%s", id);
    answer = get(&c, path);
    ck_assert_int_eq(csgi_test_response_code(answer), 200);
    const char *disposition = csgi_test_response_header(answer, "Content-Disposition");
    ck_assert_str_eq(disposition, "attachment; filename=\".._.._.._etc_passwd\"; "
                                  "filename*=UTF-8''.._.._.._etc_passwd");
    csgi_test_response_free(answer);

    /* Dot segments and encoded slashes are refused by the test client as
       the server refuses them (the sockets test sends them); these are ids
       of the wrong shape. */
    static const char *const bad[] = {
        "/files/0123456789abcdef",
        "/files/0123456789abcdef0123456789abcdef",
        "/files/0123456789ABCDEF0123456789ABCDEF",
        "/files/",
        "/files/session",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        answer = get(&c, bad[i]);
        ck_assert_msg(csgi_test_response_code(answer) == 404, "%s: %d", bad[i],
                      csgi_test_response_code(answer));
        ck_assert(is_html(answer));
        csgi_test_response_free(answer);
    }
    /* Bob cannot reach alice's file by its id. */
    client bob;
    open_client(&bob, app, "http://gallery.test");
    ck_assert_int_eq(sign_in(&bob, "bob", "bob-gallery", 0), 303);
    answer = get(&bob, path);
    ck_assert_int_eq(csgi_test_response_code(answer), 404);
    csgi_test_response_free(answer);
    csgi_test_session_free(bob.session);
}
END_TEST

START_TEST(test_limits)
{
    ck_assert_int_eq(sign_in(&c, "alice", "alice-gallery", 0), 303);
    char token[65];
    listing_token(&c, token);
    char *data = malloc(MAX_REQUEST + 10);
    memset(data, 'a', MAX_REQUEST + 10);
    static const size_t pieces[] = {0, 4096};
    for (size_t i = 0; i < 2; i++) {
        csgi_test_response *answer = upload(&c, token, "big.txt", data, MAX_FILE + 1, pieces[i]);
        ck_assert_int_eq(csgi_test_response_code(answer), 413);
        ck_assert(is_html(answer));
        csgi_test_response_free(answer);
        answer = upload(&c, token, "huge.txt", data, MAX_REQUEST + 10, pieces[i]);
        ck_assert_int_eq(csgi_test_response_code(answer), 413);
        ck_assert(is_html(answer));
        csgi_test_response_free(answer);
    }
    /* Chunked, with no Content-Length to refuse early: the same 413s. */
    c.chunked = 1;
    for (size_t i = 0; i < 2; i++) {
        csgi_test_response *answer = upload(&c, token, "big.txt", data, MAX_FILE + 1, pieces[i]);
        ck_assert_int_eq(csgi_test_response_code(answer), 413);
        ck_assert(is_html(answer));
        csgi_test_response_free(answer);
        answer = upload(&c, token, "huge.txt", data, MAX_REQUEST + 10, pieces[i]);
        ck_assert_int_eq(csgi_test_response_code(answer), 413);
        ck_assert(is_html(answer));
        csgi_test_response_free(answer);
    }
    ck_assert_int_eq(stored_files("alice"), 0);
    csgi_test_response *answer = upload(&c, token, "fits.txt", data, MAX_FILE, 4096);
    ck_assert_int_eq(csgi_test_response_code(answer), 303);
    csgi_test_response_free(answer);
    ck_assert_int_eq(stored_files("alice"), 1);
    c.chunked = 0;
    answer = upload(&c, token, "fits.txt", data, MAX_FILE, 0);
    ck_assert_int_eq(csgi_test_response_code(answer), 303);
    csgi_test_response_free(answer);
    ck_assert_int_eq(stored_files("alice"), 2);
    free(data);
}
END_TEST

START_TEST(test_range_and_304)
{
    ck_assert_int_eq(sign_in(&c, "alice", "alice-gallery", 0), 303);
    char token[65], id[33], path[64];
    listing_token(&c, token);
    /* Larger than the 64 KiB spool threshold: it goes through a temporary file. */
    size_t len = 90000;
    char *data = malloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)(i * 7 + i / 251);
    csgi_test_response *answer = upload(&c, token, "data.bin", data, len, 1000);
    ck_assert_int_eq(csgi_test_response_code(answer), 303);
    csgi_test_response_free(answer);
    first_id(&c, id);
    snprintf(path, sizeof(path), "/files/%s", id);

    answer = get(&c, path);
    size_t got;
    const char *body = csgi_test_response_body(answer, &got);
    ck_assert_uint_eq(got, len);
    ck_assert(memcmp(body, data, len) == 0);
    ck_assert_str_eq(csgi_test_response_header(answer, "Content-Type"), "text/plain");
    char etag[64];
    snprintf(etag, sizeof(etag), "%s", csgi_test_response_header(answer, "ETag"));
    csgi_test_response_free(answer);

    answer = run(&c, "GET", path, NULL, NULL, 0, 0, "Range", "bytes=70000-70009");
    ck_assert_int_eq(csgi_test_response_code(answer), 206);
    ck_assert_str_eq(csgi_test_response_header(answer, "Content-Range"), "bytes 70000-70009/90000");
    body = csgi_test_response_body(answer, &got);
    ck_assert_uint_eq(got, 10);
    ck_assert(memcmp(body, data + 70000, 10) == 0);
    csgi_test_response_free(answer);

    answer = run(&c, "GET", path, NULL, NULL, 0, 0, "If-None-Match", etag);
    ck_assert_int_eq(csgi_test_response_code(answer), 304);
    csgi_test_response_free(answer);
    free(data);
}
END_TEST

START_TEST(test_pagination)
{
    ck_assert_int_eq(sign_in(&c, "alice", "alice-gallery", 0), 303);
    char token[65], name[32];
    listing_token(&c, token);
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof(name), "file-%02d.txt", i);
        csgi_test_response *answer = upload(&c, token, name, "z", 1, 0);
        ck_assert_int_eq(csgi_test_response_code(answer), 303);
        csgi_test_response_free(answer);
    }
    csgi_test_response *page = get(&c, "/");
    ck_assert_ptr_nonnull(strstr(body_of(page), "page 1 of 2"));
    ck_assert_ptr_nonnull(strstr(body_of(page), "href=\"/?page=2\" rel=\"next\""));
    csgi_test_response_free(page);
    page = get(&c, "/?page=2");
    const char *body = body_of(page);
    ck_assert_ptr_nonnull(strstr(body, "page 2 of 2"));
    ck_assert_ptr_nonnull(strstr(body, "rel=\"prev\""));
    int rows = 0;
    for (const char *at = body; (at = strstr(at, "<tr><td>")); at++)
        rows++;
    ck_assert_int_eq(rows, 2);
    csgi_test_response_free(page);
}
END_TEST

START_TEST(test_status_and_assets)
{
    csgi_test_response *answer = get(&c, "/status.json");
    ck_assert_int_eq(csgi_test_response_code(answer), 200);
    ck_assert_ptr_nonnull(strstr(body_of(answer), "\"requests\":"));
    /* no server runs under the test client: the count filter's figure */
    ck_assert_ptr_nonnull(strstr(body_of(answer), "\"server\":false"));
    csgi_test_response_free(answer);
    answer = run(&c, "GET", "/static/style.css", NULL, NULL, 0, 0, "Accept-Encoding", "gzip");
    ck_assert_int_eq(csgi_test_response_code(answer), 200);
    ck_assert_str_eq(csgi_test_response_header(answer, "Cache-Control"), "max-age=31536000");
    ck_assert_str_eq(csgi_test_response_header(answer, "Content-Encoding"), "gzip");
    csgi_test_response_free(answer);
    answer = get(&c, "/nowhere");
    ck_assert_int_eq(csgi_test_response_code(answer), 404);
    ck_assert(is_html(answer));
    csgi_test_response_free(answer);
}
END_TEST

/* ---- Over sockets -------------------------------------------------------------------------- */

START_TEST(test_sockets)
{
    app_server served;
    app_server_start(&served, load_gallery(), NULL);
    for (int split = SPLIT_WITH_HEAD; split <= SPLIT_BYTE_BY_BYTE; split++) {
        int fd = client_connect(served.port);
        ck_assert_int_eq(client_send_str(fd, "GET /signin HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
        test_response page;
        ck_assert_int_eq(client_response(fd, &page, 0, 10000), 0);
        char cookie[128], headers[256], form[256];
        const char *set = response_header(&page, "Set-Cookie");
        ck_assert_ptr_nonnull(strstr(set, "HttpOnly"));
        snprintf(cookie, sizeof(cookie), "%.*s", (int)strcspn(set, ";"), set);
        const char *at = strstr(page.body, "name=\"csrf\" value=\"");
        ck_assert_ptr_nonnull(at);
        snprintf(headers, sizeof(headers),
                 "Cookie: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n", cookie);
        /* Without the token, then with it. */
        snprintf(form, sizeof(form), "user=alice&password=alice-gallery");
        ck_assert_int_eq(client_send_post(fd, "/signin", headers, form, strlen(form), split), 0);
        test_response refused;
        ck_assert_int_eq(client_response(fd, &refused, 0, 10000), 0);
        ck_assert_int_eq(refused.status, 403);
        ck_assert_ptr_nonnull(strstr(refused.body, "<!DOCTYPE html>"));
        snprintf(form, sizeof(form), "csrf=%.64s&user=alice&password=alice-gallery", at + 19);
        ck_assert_int_eq(client_send_post(fd, "/signin", headers, form, strlen(form), split), 0);
        test_response signed_in;
        ck_assert_int_eq(client_response(fd, &signed_in, 0, 10000), 0);
        ck_assert_int_eq(signed_in.status, 303);
        set = response_header(&signed_in, "Set-Cookie");
        ck_assert_ptr_nonnull(strstr(set, "gallery_session="));
        ck_assert_ptr_nonnull(strstr(set, "HttpOnly"));
        ck_assert_ptr_nonnull(strstr(set, "SameSite=Lax"));
        response_free(&page);
        response_free(&refused);
        response_free(&signed_in);
        close(fd);
    }
    /* Dot segments on the wire reach neither the state nor the INI file. */
    static const char *const raw[] = {"/files/../session.key",    "/files/../../etc/passwd",
                                      "/static/../gallery.ini",   "/static/../../users.json",
                                      "/files/..%2fsession.key",  "/files/%2e%2e/session.key",
                                      "/static/..%2fgallery.ini", "/static/%2e%2e/users.json"};
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        int fd = client_connect(served.port);
        char head[256];
        snprintf(head, sizeof(head), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                 raw[i]);
        ck_assert_int_eq(client_send_str(fd, head), 0);
        test_response answer;
        ck_assert_int_eq(client_response(fd, &answer, 0, 10000), 0);
        ck_assert_msg(answer.status == 400 || answer.status == 404, "%s: %d", raw[i],
                      answer.status);
        ck_assert_ptr_null(strstr(answer.body ? answer.body : "", "password_hash"));
        ck_assert_ptr_null(strstr(answer.body ? answer.body : "", "[DEFAULT]"));
        response_free(&answer);
        close(fd);
    }
    app_server_stop(&served);
    remove_state();
}
END_TEST

/* GET path on fd with cookie; the answer in *out. */
static void socket_get(int fd, const char *path, const char *cookie, test_response *out)
{
    char head[512];
    snprintf(head, sizeof(head), "GET %s HTTP/1.1\r\nHost: t\r\nCookie: %s\r\n\r\n", path, cookie);
    ck_assert_int_eq(client_send_str(fd, head), 0);
    ck_assert_int_eq(client_response(fd, out, 0, 10000), 0);
}

/* The upload streams into the store however its bytes arrive: head and
   body in one write, in two, a byte at a time, chunked, after a 100
   Continue; past the 64 KiB spool threshold (but the byte-by-byte one),
   near the file limit;
   downloaded back byte for byte. */
START_TEST(test_sockets_upload)
{
    app_server served;
    app_server_start(&served, load_gallery(), NULL);
    for (int split = SPLIT_WITH_HEAD; split < SPLIT_COUNT; split++) {
        int fd = client_connect(served.port);
        test_response page, answer;
        socket_get(fd, "/signin", "x=y", &page);
        char cookie[256], headers[512], form[256];
        const char *set = response_header(&page, "Set-Cookie");
        snprintf(cookie, sizeof(cookie), "%.*s", (int)strcspn(set, ";"), set);
        const char *at = strstr(page.body, "name=\"csrf\" value=\"");
        ck_assert_ptr_nonnull(at);
        snprintf(form, sizeof(form), "csrf=%.64s&user=alice&password=alice-gallery", at + 19);
        snprintf(headers, sizeof(headers),
                 "Cookie: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n", cookie);
        ck_assert_int_eq(
            client_send_post(fd, "/signin", headers, form, strlen(form), SPLIT_WITH_HEAD), 0);
        ck_assert_int_eq(client_response(fd, &answer, 0, 10000), 0);
        ck_assert_int_eq(answer.status, 303);
        set = response_header(&answer, "Set-Cookie");
        snprintf(cookie, sizeof(cookie), "%.*s", (int)strcspn(set, ";"), set);
        response_free(&page);
        response_free(&answer);

        socket_get(fd, "/", cookie, &page);
        at = strstr(page.body, "name=\"csrf\" value=\"");
        ck_assert_ptr_nonnull(at);
        char token[65];
        snprintf(token, sizeof(token), "%.64s", at + 19);
        response_free(&page);

        size_t size = split == SPLIT_BYTE_BY_BYTE ? 3000 : MAX_FILE - 10 + (size_t)split;
        char *data = malloc(size);
        ck_assert_ptr_nonnull(data);
        for (size_t i = 0; i < size; i++)
            data[i] = (char)((i * 31 + (size_t)split) % 256); /* "\r\n--XyZ" pieces and all */
        char name[32];
        snprintf(name, sizeof(name), "streamed-%s.bin", body_split_names[split]);
        size_t body_len;
        char *body = multipart(token, name, data, size, &body_len);
        snprintf(headers, sizeof(headers),
                 "Cookie: %s\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n", cookie);
        ck_assert_int_eq(client_send_post(fd, "/upload", headers, body, body_len, split), 0);
        ck_assert_int_eq(client_response(fd, &answer, 0, 20000), 0);
        ck_assert_msg(answer.status == 303, "%s: %d %s", body_split_names[split], answer.status,
                      answer.body);
        response_free(&answer);

        socket_get(fd, "/", cookie, &page);
        at = strstr(page.body, name);
        ck_assert_msg(at != NULL, "%s is not listed", name);
        const char *href = NULL; /* the link of this file's row: the last before its name */
        for (const char *h = page.body; (h = strstr(h, "href=\"/files/")) && h < at; h++)
            href = h;
        ck_assert_ptr_nonnull(href);
        char path[64];
        snprintf(path, sizeof(path), "/files/%.32s", href + 13);
        response_free(&page);
        socket_get(fd, path, cookie, &answer);
        ck_assert_int_eq(answer.status, 200);
        ck_assert_uint_eq(answer.body_len, size);
        ck_assert_int_eq(memcmp(answer.body, data, size), 0);
        response_free(&answer);
        free(body);
        free(data);
        close(fd);
    }
    app_server_stop(&served);
    remove_state();
}
END_TEST

static Suite *gallery_suite(void)
{
    Suite *s = suite_create("gallery");
    TCase *tc = tcase_create("client");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cookie_flags);
    tcase_add_test(tc, test_wrong_password);
    tcase_add_test(tc, test_csrf_refused);
    tcase_add_test(tc, test_names_escaped);
    tcase_add_test(tc, test_traversal);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_range_and_304);
    tcase_add_test(tc, test_pagination);
    tcase_add_test(tc, test_status_and_assets);
    suite_add_tcase(s, tc);
    TCase *sockets = tcase_create("sockets");
    tcase_set_timeout(sockets, 60);
    tcase_add_test(sockets, test_sockets);
    tcase_add_test(sockets, test_sockets_upload);
    suite_add_tcase(s, sockets);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(gallery_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
