/*
 * The basic_auth filter (src/middleware/basic_auth.c): an htpasswd file
 * made here with crypt_gensalt_rn() and crypt_rn() (bcrypt, SHA-crypt,
 * yescrypt), right and wrong passwords, unknown users, malformed
 * Authorization headers, entries refused at load with their line, and
 * over real sockets with request bodies sent whole, in pieces and a byte
 * at a time.
 */
#include "engine_harness.h"
#include "test_deploy.h"
#include "test_files.h"
#include "test_smallmw.h"

#include <csgi.h>

#include <check.h>
#include <crypt.h>
#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHALLENGE "Basic realm=\"csgi\", charset=\"UTF-8\""

/* crypt(password) with a new setting of prefix at cost count, into out. */
static void make_hash(char *out, size_t size, const char *prefix, unsigned long count,
                      const char *password)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    ck_assert_ptr_nonnull(crypt_gensalt_rn(prefix, count, NULL, 0, setting, sizeof(setting)));
    struct crypt_data *data = calloc(1, sizeof(*data));
    ck_assert_ptr_nonnull(data);
    const char *hash = crypt_rn(password, setting, data, (int)sizeof(*data));
    ck_assert_ptr_nonnull(hash);
    ck_assert_int_lt(strlen(hash), size);
    snprintf(out, size, "%s", hash);
    free(data);
}

/* The htpasswd file: alice (bcrypt), bob (sha512), carol (yescrypt),
   dave (sha256), with a comment and a blank line. */
static const char *write_htpasswd(void)
{
    char alice[256], bob[256], carol[256], dave[256], text[2048];
    make_hash(alice, sizeof(alice), "$2b$", 4, "wonderland");
    make_hash(bob, sizeof(bob), "$6$", 1000, "builder");
    make_hash(carol, sizeof(carol), "$y$", 0, "s3cr\xc3\xa9t");
    make_hash(dave, sizeof(dave), "$5$", 1000, "pass:with:colons");
    snprintf(text, sizeof(text), "# users\nalice:%s\n\nbob:%s\r\ncarol:%s\ndave:%s\n", alice, bob,
             carol, dave);
    return test_write_file("htpasswd", text);
}

static const char ini[] = "[pipeline:main]\n"
                          "pipeline = auth debug hello\n"
                          "\n"
                          "[pipeline:realm]\n"
                          "pipeline = auth_realm hello\n"
                          "\n"
                          "[filter:auth]\n"
                          "use = egg:csgi#basic_auth\n"
                          "htpasswd = %s\n"
                          "\n"
                          "[filter:auth_realm]\n"
                          "use = egg:csgi#basic_auth\n"
                          "htpasswd = %s\n"
                          "realm = Ops Area\n"
                          "\n"
                          "[filter:debug]\n"
                          "use = egg:oslo.middleware#debug\n"
                          "\n"
                          "[app:hello]\n"
                          "use = egg:Test#hello\n";

static csgi_app *load(csgi_loader *loader, const char *name)
{
    const char *path = write_htpasswd();
    char text[sizeof(ini) + 8192];
    snprintf(text, sizeof(text), ini, path, path);
    return smallmw_load(loader, "auth.ini", text, name);
}

/* "Authorization: Basic " and base64 of len bytes of credentials. */
static const char *authorization(const char *credentials, size_t len)
{
    static char header[4096];
    int n = snprintf(header, sizeof(header), "Authorization: Basic ");
    EVP_EncodeBlock((unsigned char *)header + n, (const unsigned char *)credentials, (int)len);
    return header;
}

static const char *basic(const char *credentials)
{
    return authorization(credentials, strlen(credentials));
}

static void expect_401(csgi_app *app, const char *headers)
{
    csgi_test_response *r = smallmw_run(app, "GET", "/", NULL, headers);
    ck_assert_msg(csgi_test_response_code(r) == 401, "%s: %d", headers ? headers : "(none)",
                  csgi_test_response_code(r));
    ck_assert_str_eq(csgi_test_response_header(r, "www-authenticate"), CHALLENGE);
    ck_assert_ptr_null(strstr(csgi_test_response_body(r, NULL), "hello"));
    csgi_test_response_free(r);
}

START_TEST(basic_auth_users)
{
    csgi_loader *loader = smallmw_loader();
    csgi_app *app = load(loader, "main");
    static const struct {
        const char *credentials, *body;
    } users[] = {
        {"alice:wonderland", "hello alice"},
        {"bob:builder", "hello bob"},
        {"carol:s3cr\xc3\xa9t", "hello carol"},
        {"dave:pass:with:colons", "hello dave"},
    };
    for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
        csgi_test_response *r = smallmw_run(app, "GET", "/", NULL, basic(users[i].credentials));
        ck_assert_int_eq(csgi_test_response_code(r), 200);
        ck_assert_str_eq(csgi_test_response_body(r, NULL), users[i].body);
        /* What the application behind sees (debug logs its environ): the
           user and the scheme, not the password. */
        ck_assert(csgi_test_response_log_contains(r, "debug: environ AUTH_TYPE = Basic"));
        ck_assert(csgi_test_response_log_contains(r, "debug: environ REMOTE_USER = "));
        ck_assert(!csgi_test_response_log_contains(r, "HTTP_AUTHORIZATION"));
        csgi_test_response_free(r);
    }
    /* The scheme's name in any case, spaces before the credentials. */
    char header[4200];
    snprintf(header, sizeof(header), "Authorization: bAsIc   %s",
             basic("alice:wonderland") + strlen("Authorization: Basic "));
    csgi_test_response *r = smallmw_run(app, "GET", "/", NULL, header);
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "hello alice");
    csgi_test_response_free(r);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(basic_auth_refused)
{
    csgi_loader *loader = smallmw_loader();
    csgi_app *app = load(loader, "main");
    expect_401(app, NULL);
    expect_401(app, basic("alice:Wonderland"));
    expect_401(app, basic("alice:"));
    expect_401(app, basic("bob:wonderland")); /* another user's password */
    expect_401(app, basic("dave:pass"));      /* the password is all after the first colon */
    /* A client cannot make itself a user with a header. */
    expect_401(app, "Remote-User: alice");
    /* An unknown user: 401, and a warning naming it, escaped. */
    csgi_test_response *r = smallmw_run(app, "GET", "/", NULL, basic("mallory\x1b[0m:x"));
    ck_assert_int_eq(csgi_test_response_code(r), 401);
    ck_assert(csgi_test_response_log_contains(r, "unknown user 'mallory\\x1b[0m'"));
    ck_assert(!csgi_test_response_log_contains(r, "debug:"));
    csgi_test_response_free(r);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

/* An unknown user costs a hash too, so the time taken does not tell which
   users exist: with bcrypt at cost 8 (some milliseconds) both take time,
   where a lookup alone takes microseconds. */
START_TEST(basic_auth_unknown_user_timing)
{
    csgi_loader *loader = smallmw_loader();
    char hash[256], lines[512], text[8192];
    make_hash(hash, sizeof(hash), "$2b$", 8, "pw");
    snprintf(lines, sizeof(lines), "ann:%s\n", hash);
    snprintf(text, sizeof(text),
             "[pipeline:main]\npipeline = auth hello\n\n[filter:auth]\n"
             "use = egg:csgi#basic_auth\nhtpasswd = %s\n\n[app:hello]\nuse = egg:Test#hello\n",
             test_write_file("slow.htpasswd", lines));
    csgi_app *app = smallmw_load(loader, "slow.ini", text, "main");
    long known = 0, unknown = 0;
    for (int i = 0; i < 3; i++) {
        long start = now_ms();
        expect_401(app, basic("ann:wrong"));
        long middle = now_ms();
        expect_401(app, basic("nobody:wrong"));
        known += middle - start;
        unknown += now_ms() - middle;
    }
    ck_assert_msg(known >= 3 && unknown * 3 >= known, "known %ld ms, unknown %ld ms", known,
                  unknown);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

START_TEST(basic_auth_malformed)
{
    csgi_loader *loader = smallmw_loader();
    csgi_app *app = load(loader, "main");
    static const char *const headers[] = {
        "Authorization: Bearer abc",
        "Authorization: Basic",
        "Authorization: Basic ",
        "Authorization: Basic !!!!",
        "Authorization: Basic YWxpY2U6d29uZGVybGFuZA", /* alice:wonderland without its = */
        "Authorization: Basic YWxp=2U6d29uZGVybGFuZA==",
        "Authorization: Basic YWxpY2U6d29uZGVybGFuZA==junk",
        "Authorization: Basicxyz YWxpY2U6d29uZGVybGFuZA==",
        "Authorization: Digest username=\"alice\"",
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
        expect_401(app, headers[i]);
    expect_401(app, basic("nocolon"));
    expect_401(app, authorization("alice\0x:wonderland", 18)); /* a NUL byte */
    expect_401(app, authorization("alice:wonderland\0", 17));
    /* Longer than any credentials: refused without decoding. */
    char huge[3000] = "Authorization: Basic ";
    memset(huge + strlen(huge), 'A', 2000);
    expect_401(app, huge);
    csgi_app_free(app);
    /* The realm of the conf. */
    app = load(loader, "realm");
    csgi_test_response *r = smallmw_run(app, "GET", "/", NULL, NULL);
    ck_assert_int_eq(csgi_test_response_code(r), 401);
    ck_assert_str_eq(csgi_test_response_header(r, "www-authenticate"),
                     "Basic realm=\"Ops Area\", charset=\"UTF-8\"");
    csgi_test_response_free(r);
    r = smallmw_run(app, "GET", "/", NULL, basic("bob:builder"));
    ck_assert_str_eq(csgi_test_response_body(r, NULL), "hello bob");
    csgi_test_response_free(r);
    csgi_app_free(app);
    csgi_loader_free(loader);
}
END_TEST

/* An htpasswd of text must fail to load with a message holding want. */
static void load_fails(csgi_loader *loader, const char *htpasswd, const char *keys,
                       const char *want)
{
    const char *path = htpasswd ? test_write_file("bad.htpasswd", htpasswd) : "/nonexistent/pw";
    char text[8192];
    snprintf(text, sizeof(text),
             "[pipeline:main]\npipeline = auth hello\n\n[filter:auth]\n"
             "use = egg:csgi#basic_auth\nhtpasswd = %s\n%s\n[app:hello]\nuse = egg:Test#hello\n",
             path, keys);
    smallmw_load_fails(loader, text, "main", want);
}

START_TEST(basic_auth_load_refuses)
{
    csgi_loader *loader = smallmw_loader();
    char good[256], lines[1024];
    make_hash(good, sizeof(good), "$2b$", 4, "pw");
    static const struct {
        const char *line, *want;
    } bad[] = {
        {"eve:plaintext", "bad.htpasswd:3: user 'eve': a plain-text password"},
        {"eve:$apr1$abcdefgh$0123456789abcdefghijkl", "bad.htpasswd:3: user 'eve': Apache's MD5"},
        {"eve:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "bad.htpasswd:3: user 'eve': unsalted SHA-1"},
        {"eve:$1$abcdefgh$0123456789abcdefghijkl",
         "bad.htpasswd:3: user 'eve': an unsupported hash scheme"},
        {"eve:$6$", "bad.htpasswd:3: user 'eve': a malformed hash"},
        {"eve", "bad.htpasswd:3: not a user:hash line"},
        {"eve:realm:abc", "bad.htpasswd:3: not a user:hash line"},
        {":$2b$04$abc", "bad.htpasswd:3: not a user:hash line"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(lines, sizeof(lines), "ann:%s\n# x\n%s\n", good, bad[i].line);
        load_fails(loader, lines, "", bad[i].want);
    }
    snprintf(lines, sizeof(lines), "ann:%s\nann:%s\n", good, good);
    load_fails(loader, lines, "", "bad.htpasswd:2: user 'ann': the user is listed twice");
    load_fails(loader, "# nobody\n", "", "bad.htpasswd lists no user");
    load_fails(loader, NULL, "", ".ini:6: [filter:auth] htpasswd: cannot open /nonexistent/pw");
    snprintf(lines, sizeof(lines), "ann:%s\n", good);
    load_fails(loader, lines, "realm = a\"b\n", ".ini:7: [filter:auth] realm: must not hold");
    load_fails(loader, lines, "users = x\n", ".ini:7: [filter:auth] users: unknown key");
    csgi_loader_free(loader);
}
END_TEST

START_TEST(basic_auth_sockets)
{
    csgi_loader *loader = smallmw_loader();
    app_server served;
    app_server_start(&served, load(loader, "realm"), NULL);
    static const enum body_split splits[] = {SPLIT_WITH_HEAD, SPLIT_TWO_WRITES, SPLIT_BYTE_BY_BYTE};
    static const char body[] = "name=value&other=thing";
    char good[4200], bad[4200];
    snprintf(good, sizeof(good), "%s\r\n", basic("carol:s3cr\xc3\xa9t"));
    snprintf(bad, sizeof(bad), "%s\r\n", basic("carol:wrong"));
    for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
        for (int right = 0; right < 2; right++) {
            int fd = client_connect(served.port);
            ck_assert_int_eq(client_send_post(fd, "/form", right ? good : bad, body,
                                              sizeof(body) - 1, splits[i]),
                             0);
            test_response r;
            ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
            ck_assert_int_eq(r.status, right ? 200 : 401);
            if (right)
                ck_assert_str_eq(r.body, "hello carol");
            else
                ck_assert_str_eq(response_header(&r, "www-authenticate"),
                                 "Basic realm=\"Ops Area\", charset=\"UTF-8\"");
            response_free(&r);
            close(fd);
        }
    }
    /* 401 then 200 on one connection. */
    int fd = client_connect(served.port);
    char requests[8400];
    snprintf(requests, sizeof(requests),
             "GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n%s\r\n", good);
    ck_assert_int_eq(client_send_str(fd, requests), 0);
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 401);
    response_free(&r);
    ck_assert_int_eq(client_response(fd, &r, 0, 5000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "hello carol");
    response_free(&r);
    close(fd);
    app_server_stop(&served);
    csgi_loader_free(loader);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("basic_auth");
    TCase *tc = tcase_create("basic_auth");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, basic_auth_users);
    tcase_add_test(tc, basic_auth_refused);
    tcase_add_test(tc, basic_auth_unknown_user_timing);
    tcase_add_test(tc, basic_auth_malformed);
    tcase_add_test(tc, basic_auth_load_refuses);
    tcase_add_test(tc, basic_auth_sockets);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
