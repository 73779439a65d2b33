/*
 * keystonemiddleware's auth_token as C (src/middleware/auth_token*.c):
 * forged identity headers, the local token sources (a tokens file, signed
 * tokens), service tokens, delay_auth_decision and the factory's errors,
 * through the test client and over real sockets. The identity service
 * tests are in check_auth_token_remote.c.
 */
#include "engine_harness.h"

#include <csgi.h>

#include <check.h>
#include <jansson.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char dir[64];

/* Write text to a file in the test's directory; its path (static). */
static const char *write_file(const char *name, const char *text)
{
    static char paths[8][128];
    static int next;
    char *path = paths[next++ % 8];
    snprintf(path, 128, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/check_auth_token_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char command[128];
    snprintf(command, sizeof(command), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(command), 0);
}

/* ---- What the service behind sees --------------------------------------------------- */

static const char *const shown[] = {"HTTP_X_IDENTITY_STATUS", "HTTP_X_USER_ID",
                                    "HTTP_X_USER_NAME",       "HTTP_X_PROJECT_ID",
                                    "HTTP_X_ROLES",           "HTTP_X_IS_ADMIN_PROJECT",
                                    "HTTP_X_TENANT_ID",       "HTTP_X_SERVICE_IDENTITY_STATUS",
                                    "HTTP_X_SERVICE_ROLES",   "HTTP_X_SERVICE_USER_ID",
                                    "HTTP_X_DOMAIN_ID",       "HTTP_X_SERVICE_CATALOG"};

/* Answers the identity headers it got, "KEY=value" a line (absent ones
   left out). */
static csgi_response *show_identity(csgi_request *request, void *userdata)
{
    (void)userdata;
    csgi_environ *environ = csgi_request_environ(request);
    char text[4096] = "";
    size_t used = 0;
    for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
        const char *value = csgi_environ_get(environ, shown[i]);
        if (value)
            used += (size_t)snprintf(text + used, sizeof(text) - used, "%s=%s\n", shown[i], value);
    }
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_text(response, text, "utf-8") != 0)
        return NULL;
    return response;
}

CSGI_HANDLER_APP_FACTORY(show_identity_factory, show_identity, NULL)

static int load_text(const char *text, csgi_app **out, csgi_load_error *error)
{
    const char *path = write_file("paste.ini", text);
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(csgi_loader_register_app(loader, "egg:test#show_identity", CSGI_FACTORY_APP,
                                              show_identity_factory),
                     0);
    *out = NULL;
    memset(error, 0, sizeof(*error));
    int rc = csgi_loader_load_app(out, loader, path, error);
    csgi_loader_free(loader);
    return rc;
}

/* show_identity behind auth_token, with the filter's lines. */
static csgi_app *load_with(const char *lines)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "[pipeline:main]\npipeline = authtoken app\n\n[filter:authtoken]\n"
             "paste.filter_factory = keystonemiddleware.auth_token:filter_factory\n%s\n\n"
             "[app:app]\nuse = egg:test#show_identity\n",
             lines);
    csgi_app *app;
    csgi_load_error error;
    ck_assert_msg(load_text(text, &app, &error) == 0, "%s: %s", lines, error.text);
    return app;
}

/* The load error of the filter's lines, formatted. */
static const char *load_error(const char *lines)
{
    static char text[512];
    char ini[2048];
    snprintf(ini, sizeof(ini),
             "[pipeline:main]\npipeline = authtoken app\n\n[filter:authtoken]\n"
             "use = egg:keystonemiddleware#auth_token\n%s\n\n"
             "[app:app]\nuse = egg:test#show_identity\n",
             lines);
    csgi_app *app;
    csgi_load_error error;
    ck_assert_int_ne(load_text(ini, &app, &error), 0);
    csgi_load_error_format(&error, text, sizeof(text));
    return text;
}

/* GET / with header name/value pairs up to a NULL name. */
static csgi_test_response *get(csgi_app *app, ...)
{
    csgi_test_request *request = NULL;
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "/"), 0);
    va_list args;
    va_start(args, app);
    for (const char *name; (name = va_arg(args, const char *));)
        ck_assert_int_eq(csgi_test_request_add_header(request, name, va_arg(args, const char *)),
                         0);
    va_end(args);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    csgi_test_request_free(request);
    return response;
}

static const char *body_of(const csgi_test_response *response)
{
    return csgi_test_response_body(response, NULL);
}

static void assert_has(const csgi_test_response *response, const char *line)
{
    ck_assert_msg(strstr(body_of(response), line) != NULL, "no \"%s\" in:\n%s", line,
                  body_of(response));
}

static void assert_refused(csgi_test_response *response, const char *uri)
{
    ck_assert_int_eq(csgi_test_response_code(response), 401);
    const char *challenge = csgi_test_response_header(response, "WWW-Authenticate");
    ck_assert_ptr_nonnull(challenge);
    if (uri) {
        char expected[256];
        snprintf(expected, sizeof(expected), "Keystone uri=\"%s\"", uri);
        ck_assert_str_eq(challenge, expected);
    }
    json_t *body = json_loads(body_of(response), 0, NULL);
    ck_assert_ptr_nonnull(body);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(body, "error"), "code")),
                     401);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(body, "error"), "title")),
                     "Unauthorized");
    json_decref(body);
    csgi_test_response_free(response);
}

/* An ISO 8601 time seconds from now. */
static const char *at(long seconds)
{
    static char text[2][32];
    static int next;
    char *out = text[next++ % 2];
    time_t t = time(NULL) + seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000000Z", &tm);
    return out;
}

/* A keystone token document for a user of project with roles. */
static json_t *token_document(const char *user, const char *project, const char *roles,
                              long lifetime)
{
    json_t *role_list = json_array();
    char names[128];
    snprintf(names, sizeof(names), "%s", roles);
    char *save = NULL;
    for (char *r = strtok_r(names, ",", &save); r; r = strtok_r(NULL, ",", &save))
        json_array_append_new(role_list, json_pack("{s:s}", "name", r));
    return json_pack("{s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:{s:s, s:s, s:{s:s}}, s:o, s:b}",
                     "expires_at", at(lifetime), "user", "id", user, "name", user, "domain", "id",
                     "default", "name", "Default", "project", "id", project, "name", project,
                     "domain", "id", "default", "roles", role_list, "is_admin_project", 0);
}

/* A tokens file: tok-demo (demo, project demo, member,reader),
   tok-service (glance, project service, service), tok-old (expired). */
static const char *tokens_file(void)
{
    json_t *tokens = json_pack(
        "{s:o, s:o, s:o}", "tok-demo", token_document("demo", "p-demo", "member,reader", 3600),
        "tok-service", token_document("glance", "p-service", "service", 3600), "tok-old",
        token_document("demo", "p-demo", "member", -10));
    json_t *file = json_pack("{s:o}", "tokens", tokens);
    char *text = json_dumps(file, JSON_INDENT(2));
    const char *path = write_file("tokens.json", text);
    free(text);
    json_decref(file);
    return path;
}

/* ---- Tests ----------------------------------------------------------------------------- */

START_TEST(test_forged_headers_removed)
{
    char lines[256];
    snprintf(lines, sizeof(lines), "tokens_file = %s\ndelay_auth_decision = true", tokens_file());
    csgi_app *app = load_with(lines);
    /* A client claiming to be an admin, without a token: its claims go,
       and the service sees Invalid. */
    csgi_test_response *response =
        get(app, "X-Identity-Status", "Confirmed", "X-Roles", "admin", "X-User-Id", "u-admin",
            "X-Is-Admin-Project", "True", "X-Service-Roles", "service", "X-Tenant-Id", "p-admin",
            "X-Service-Catalog", "[]", "X-Domain-Id", "default", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    ck_assert_str_eq(body_of(response), "HTTP_X_IDENTITY_STATUS=Invalid\n");
    csgi_test_response_free(response);
    /* With a real token, the token's facts replace the forged ones. */
    response = get(app, "X-Auth-Token", "tok-demo", "X-Roles", "admin", "X-User-Id", "u-admin",
                   "X-Is-Admin-Project", "True", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    assert_has(response, "HTTP_X_IDENTITY_STATUS=Confirmed\n");
    assert_has(response, "HTTP_X_USER_ID=demo\n");
    assert_has(response, "HTTP_X_ROLES=member,reader\n");
    assert_has(response, "HTTP_X_PROJECT_ID=p-demo\n");
    assert_has(response, "HTTP_X_TENANT_ID=p-demo\n");
    assert_has(response, "HTTP_X_IS_ADMIN_PROJECT=False\n");
    ck_assert_ptr_null(strstr(body_of(response), "admin"));
    csgi_test_response_free(response);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_refused)
{
    char lines[256];
    snprintf(lines, sizeof(lines), "tokens_file = %s\nwww_authenticate_uri = http://keystone/v3",
             tokens_file());
    csgi_app *app = load_with(lines);
    assert_refused(get(app, NULL), "http://keystone/v3");
    assert_refused(get(app, "X-Identity-Status", "Confirmed", "X-Roles", "admin", NULL),
                   "http://keystone/v3");
    assert_refused(get(app, "X-Auth-Token", "tok-unknown", NULL), "http://keystone/v3");
    assert_refused(get(app, "X-Auth-Token", "tok-old", NULL), "http://keystone/v3");
    assert_refused(get(app, "X-Auth-Token", "", NULL), "http://keystone/v3");
    /* The older header name counts too. */
    csgi_test_response *response = get(app, "X-Storage-Token", "tok-demo", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    csgi_test_response_free(response);
    /* A second time from the cache, and the negative cache. */
    for (int i = 0; i < 2; i++) {
        response = get(app, "X-Auth-Token", "tok-demo", NULL);
        ck_assert_int_eq(csgi_test_response_code(response), 200);
        assert_has(response, "HTTP_X_USER_NAME=demo\n");
        csgi_test_response_free(response);
        assert_refused(get(app, "X-Auth-Token", "tok-unknown", NULL), NULL);
    }
    csgi_app_free(app);
}
END_TEST

START_TEST(test_service_token)
{
    char lines[256];
    snprintf(lines, sizeof(lines), "tokens_file = %s\nservice_token_roles_required = true",
             tokens_file());
    csgi_app *app = load_with(lines);
    csgi_test_response *response =
        get(app, "X-Auth-Token", "tok-demo", "X-Service-Token", "tok-service", NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    assert_has(response, "HTTP_X_SERVICE_IDENTITY_STATUS=Confirmed\n");
    assert_has(response, "HTTP_X_SERVICE_ROLES=service\n");
    assert_has(response, "HTTP_X_SERVICE_USER_ID=glance\n");
    assert_has(response, "HTTP_X_USER_ID=demo\n");
    csgi_test_response_free(response);
    /* A user token as service token lacks the service role: refused. */
    assert_refused(get(app, "X-Auth-Token", "tok-demo", "X-Service-Token", "tok-demo", NULL), NULL);
    /* An invalid service token is refused even with a good user token. */
    assert_refused(get(app, "X-Auth-Token", "tok-demo", "X-Service-Token", "nope", NULL), NULL);
    csgi_app_free(app);
}
END_TEST

/* A key file of 40 bytes made of c. */
static const char *key_file(const char *name, char c)
{
    char key[42];
    memset(key, c, 40);
    key[40] = '\n';
    key[41] = '\0';
    return write_file(name, key);
}

static char *sign(char c, json_t *document)
{
    char key[40];
    memset(key, c, sizeof(key));
    size_t len = 0;
    ck_assert_int_eq(csgi_auth_token_sign(NULL, 0, &len, key, sizeof(key), document), CSGI_ERANGE);
    char *token = malloc(len + 1);
    ck_assert_int_eq(csgi_auth_token_sign(token, len + 1, &len, key, sizeof(key), document), 0);
    ck_assert_uint_eq(strlen(token), len);
    json_t *back = NULL;
    ck_assert_int_eq(csgi_auth_token_verify(&back, token, len, key, sizeof(key)),
                     json_integer_value(json_object_get(document, "expired")) ? CSGI_ETIMEDOUT : 0);
    json_decref(back);
    json_decref(document);
    return token;
}

START_TEST(test_signed_tokens)
{
    char lines[512];
    /* Two keys: b signs now, a still verifies (rotation). */
    const char *new_key = key_file("new.key", 'b');
    const char *old_key = key_file("old.key", 'a');
    snprintf(lines, sizeof(lines), "signing_key_file = %s, %s\ntoken_cache_time = -1", new_key,
             old_key);
    csgi_app *app = load_with(lines);
    char *by_new = sign('b', token_document("u-1", "p-1", "member", 600));
    char *by_old = sign('a', token_document("u-2", "p-2", "reader,member", 600));
    char *by_other = sign('c', token_document("u-3", "p-3", "admin", 600));
    json_t *expired_document = token_document("u-4", "p-4", "member", -5);
    json_object_set_new(expired_document, "expired", json_integer(1));
    char *expired = sign('b', expired_document);
    csgi_test_response *response = get(app, "X-Auth-Token", by_new, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    assert_has(response, "HTTP_X_USER_ID=u-1\n");
    csgi_test_response_free(response);
    response = get(app, "X-Auth-Token", by_old, NULL);
    ck_assert_int_eq(csgi_test_response_code(response), 200);
    assert_has(response, "HTTP_X_ROLES=reader,member\n");
    csgi_test_response_free(response);
    assert_refused(get(app, "X-Auth-Token", by_other, NULL), NULL);
    assert_refused(get(app, "X-Auth-Token", expired, NULL), NULL);
    /* Any changed byte of the payload or signature breaks it. */
    size_t len = strlen(by_new);
    for (size_t i = 6; i < len; i += len / 7) {
        char saved = by_new[i];
        by_new[i] = by_new[i] == 'A' ? 'B' : 'A';
        assert_refused(get(app, "X-Auth-Token", by_new, NULL), NULL);
        by_new[i] = saved;
    }
    /* Cut short, or with nothing signed. */
    by_old[len / 2] = '\0';
    assert_refused(get(app, "X-Auth-Token", by_old, NULL), NULL);
    assert_refused(get(app, "X-Auth-Token", "csgi1..", NULL), NULL);
    free(by_new);
    free(by_old);
    free(by_other);
    free(expired);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_factory_errors)
{
    const char *text = load_error("token_cache_tim = 10");
    ck_assert_msg(strstr(text, "paste.ini:6") && strstr(text, "unknown key for auth_token"), "%s",
                  text);
    write_file("short.key", "too short\n");
    char lines[256];
    snprintf(lines, sizeof(lines), "signing_key_file = %s/short.key", dir);
    text = load_error(lines);
    ck_assert_msg(strstr(text, "paste.ini:6") && strstr(text, "at least 32"), "%s", text);
    write_file("bad.json", "{\"tokens\": {\n  \"a\": 1,\n  \"a\": 2}}");
    snprintf(lines, sizeof(lines), "\ntokens_file = %s/bad.json", dir);
    text = load_error(lines);
    ck_assert_msg(strstr(text, "paste.ini:7") && strstr(text, "bad.json:3"), "%s", text);
    text = load_error("token_cache_size = 0");
    ck_assert_msg(strstr(text, "token_cache_size") && strstr(text, "out of range"), "%s", text);
    text = load_error("www_authenticate_uri = http://a\"b");
    ck_assert_msg(strstr(text, "not a usable URI"), "%s", text);
    /* Bad arguments to the signing API. */
    size_t len;
    json_t *document = token_document("u", "p", "r", 60);
    ck_assert_int_eq(csgi_auth_token_sign(NULL, 0, &len, "short", 5, document), CSGI_EINVAL);
    json_object_del(document, "expires_at");
    ck_assert_int_eq(
        csgi_auth_token_sign(NULL, 0, &len, "0123456789abcdef0123456789abcdef", 32, document),
        CSGI_EINVAL);
    json_decref(document);
    json_t *out;
    ck_assert_int_eq(csgi_auth_token_verify(&out, "csgi1.x.y", 9, "k", 1), CSGI_EPARSE);
}
END_TEST

START_TEST(test_real_sockets)
{
    char lines[256];
    snprintf(lines, sizeof(lines), "tokens_file = %s", tokens_file());
    app_server served;
    app_server_start(&served, load_with(lines), NULL);
    static const char request[] = "GET / HTTP/1.1\r\nHost: t\r\nX-Roles: admin\r\n"
                                  "X-Auth-Token: tok-demo\r\nX-Identity-Status: Confirmed\r\n\r\n";
    /* In one write, in two, a byte at a time; then without a token. */
    for (int way = 0; way < 4; way++) {
        int fd = client_connect(served.port);
        ck_assert_int_ge(fd, 0);
        if (way == 3) {
            ck_assert_int_eq(client_send_str(fd, "GET / HTTP/1.1\r\nHost: t\r\n"
                                                 "X-Identity-Status: Confirmed\r\n\r\n"),
                             0);
        } else if (way == 2) {
            for (size_t i = 0; i < sizeof(request) - 1; i++)
                ck_assert_int_eq(client_send(fd, request + i, 1), 0);
        } else {
            size_t half = way == 1 ? 30 : sizeof(request) - 1;
            ck_assert_int_eq(client_send(fd, request, half), 0);
            if (half < sizeof(request) - 1)
                ck_assert_int_eq(client_send(fd, request + half, sizeof(request) - 1 - half), 0);
        }
        test_response response;
        ck_assert_int_eq(client_response(fd, &response, 0, 5000), 0);
        if (way == 3) {
            ck_assert_int_eq(response.status, 401);
            ck_assert_ptr_nonnull(response_header(&response, "WWW-Authenticate"));
        } else {
            ck_assert_int_eq(response.status, 200);
            ck_assert_ptr_nonnull(strstr(response.body, "HTTP_X_ROLES=member,reader\n"));
            ck_assert_ptr_null(strstr(response.body, "admin"));
        }
        response_free(&response);
        close(fd);
    }
    app_server_stop(&served);
}
END_TEST

static Suite *auth_token_suite(void)
{
    Suite *s = suite_create("auth_token");
    TCase *tc = tcase_create("local");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_forged_headers_removed);
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_service_token);
    tcase_add_test(tc, test_signed_tokens);
    tcase_add_test(tc, test_factory_errors);
    tcase_add_test(tc, test_real_sockets);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(auth_token_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
