/*
 * auth_token against an identity service over real sockets: the small
 * keystone of identity_service.c runs on a thread of its own, and the
 * filter validates tokens with it through csgi/client.h without blocking
 * its loop. Cache hits make no call; invalid tokens are cached too; an
 * identity service that fails, answers nonsense, hangs or is gone gets
 * 503, never a pass.
 */
#include "engine_harness.h"
#include "identity_service.h"

#include <csgi.h>

#include <check.h>
#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static app_server identity;
static char ini_path[64];
static const char *service_password = "secret-glance";

/* Answers "user=U project=P roles=R status=S". */
static csgi_response *whoami(csgi_request *request, void *userdata)
{
    (void)userdata;
    csgi_environ *environ = csgi_request_environ(request);
    const char *keys[] = {"HTTP_X_USER_NAME", "HTTP_X_PROJECT_NAME", "HTTP_X_ROLES",
                          "HTTP_X_IDENTITY_STATUS"};
    const char *v[4];
    for (int i = 0; i < 4; i++) {
        v[i] = csgi_environ_get(environ, keys[i]);
        if (!v[i])
            v[i] = "-";
    }
    char text[512];
    snprintf(text, sizeof(text), "user=%s project=%s roles=%s status=%s", v[0], v[1], v[2], v[3]);
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_text(response, text, "utf-8") != 0)
        return NULL;
    return response;
}

CSGI_HANDLER_APP_FACTORY(whoami_factory, whoami, NULL)

static void setup(void)
{
    identity_service_reset();
    app_server_start(&identity, identity_service_new(), NULL);
}

static void teardown(void)
{
    app_server_stop(&identity);
    if (ini_path[0])
        unlink(ini_path);
    ini_path[0] = '\0';
}

/* whoami behind auth_token talking to the identity service on port, with
   extra filter lines. */
static csgi_app *pipeline(int port, const char *extra)
{
    snprintf(ini_path, sizeof(ini_path), "/tmp/check_auth_remote_XXXXXX");
    int fd = mkstemp(ini_path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f,
            "[pipeline:main]\npipeline = authtoken whoami\n\n"
            "[filter:authtoken]\npaste.filter_factory = "
            "keystonemiddleware.auth_token:filter_factory\n"
            "www_authenticate_uri = http://127.0.0.1:%d/v3\n"
            "auth_url = http://127.0.0.1:%d\nauth_type = password\n"
            "username = glance\npassword = %s\nproject_name = service\n"
            "user_domain_name = Default\nproject_domain_name = Default\n"
            "http_request_timeout = 1\nhttp_connect_timeout = 1\n%s\n\n"
            "[app:whoami]\nuse = egg:test#whoami\n",
            port, port, service_password, extra ? extra : "");
    fclose(f);
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(
        csgi_loader_register_app(loader, "egg:test#whoami", CSGI_FACTORY_APP, whoami_factory), 0);
    csgi_app *app = NULL;
    csgi_load_error error;
    memset(&error, 0, sizeof(error));
    ck_assert_msg(csgi_loader_load_app(&app, loader, ini_path, &error) == 0, "%s", error.text);
    csgi_loader_free(loader);
    return app;
}

/* GET / with the token (NULL: none); the response's status, body in out. */
static int get(csgi_app *app, const char *token, char *out, size_t size)
{
    csgi_test_request *request = NULL;
    csgi_test_response *response = NULL;
    ck_assert_int_eq(csgi_test_request_new(&request, "GET", "/"), 0);
    if (token)
        ck_assert_int_eq(csgi_test_request_add_header(request, "X-Auth-Token", token), 0);
    ck_assert_int_eq(csgi_test_request_add_header(request, "X-Roles", "admin"), 0);
    ck_assert_int_eq(csgi_test_request_run(&response, request, app), 0);
    csgi_test_request_free(request);
    int status = csgi_test_response_code(response);
    if (out)
        snprintf(out, size, "%s", csgi_test_response_body(response, NULL));
    if (status == 401) {
        const char *challenge = csgi_test_response_header(response, "WWW-Authenticate");
        ck_assert_ptr_nonnull(challenge);
        ck_assert_msg(strncmp(challenge, "Keystone uri=\"http://127.0.0.1:", 31) == 0, "%s",
                      challenge);
    }
    csgi_test_response_free(response);
    return status;
}

static void issue(const char *user, char *token)
{
    ck_assert_int_eq(identity_service_issue(user, token, 64), 0);
}

START_TEST(test_validated_then_cached)
{
    csgi_app *app = pipeline(identity.port, NULL);
    char token[64], body[512];
    issue("demo", token);
    int issued = identity_service_issued();
    ck_assert_int_eq(get(app, token, body, sizeof(body)), 200);
    ck_assert_str_eq(body, "user=demo project=demo roles=member,reader status=Confirmed");
    /* One call for the service's own token, one validation. */
    ck_assert_int_eq(identity_service_validations(), 1);
    ck_assert_int_eq(identity_service_issued(), issued + 1);
    /* The cache: no call at all. */
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(get(app, token, body, sizeof(body)), 200);
        ck_assert_str_eq(body, "user=demo project=demo roles=member,reader status=Confirmed");
    }
    ck_assert_int_eq(identity_service_validations(), 1);
    /* Another user's token: one validation, with the service token kept. */
    char admin[64];
    issue("admin", admin);
    ck_assert_int_eq(get(app, admin, body, sizeof(body)), 200);
    ck_assert_str_eq(body, "user=admin project=admin roles=admin,member,reader status=Confirmed");
    ck_assert_int_eq(identity_service_validations(), 2);
    ck_assert_int_eq(identity_service_issued(), issued + 2);
    /* An unknown token: refused, and remembered as invalid. */
    ck_assert_int_eq(get(app, "not-a-token", NULL, 0), 401);
    ck_assert_int_eq(get(app, "not-a-token", NULL, 0), 401);
    ck_assert_int_eq(identity_service_validations(), 3);
    /* No token: refused without a call. */
    ck_assert_int_eq(get(app, NULL, NULL, 0), 401);
    ck_assert_int_eq(identity_service_validations(), 3);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_expired_and_revoked)
{
    csgi_app *app = pipeline(identity.port, NULL);
    char token[64];
    identity_service_set_lifetime(2);
    issue("demo", token);
    identity_service_set_lifetime(3600);
    ck_assert_int_eq(get(app, token, NULL, 0), 200);
    /* Past its expiry the cache lets it go, and keystone no longer knows it. */
    usleep(2200 * 1000);
    ck_assert_int_eq(get(app, token, NULL, 0), 401);
    /* Every token revoked, the service's own included: the filter gets
       401 for its service token, fetches a new one, and goes on. */
    identity_service_reset();
    issue("demo", token);
    ck_assert_int_eq(get(app, token, NULL, 0), 200);
    ck_assert_int_eq(identity_service_issued(), 2); /* demo's, and the new service token */
    csgi_app_free(app);
}
END_TEST

START_TEST(test_identity_misbehaves)
{
    csgi_app *app = pipeline(identity.port, "token_cache_time = -1");
    char token[64], body[512];
    issue("demo", token);
    ck_assert_int_eq(get(app, token, NULL, 0), 200);
    const identity_mode modes[] = {IDENTITY_FAIL, IDENTITY_NONSENSE, IDENTITY_HANG};
    for (size_t i = 0; i < 3; i++) {
        identity_service_set_mode(modes[i]);
        ck_assert_int_eq(get(app, token, body, sizeof(body)), 503);
        json_t *error = json_loads(body, 0, NULL);
        ck_assert_int_eq(
            json_integer_value(json_object_get(json_object_get(error, "error"), "code")), 503);
        json_decref(error);
    }
    identity_service_set_mode(IDENTITY_NORMAL);
    ck_assert_int_eq(get(app, token, NULL, 0), 200);
    csgi_app_free(app);
    /* Wrong service credentials: 503, never a pass. */
    service_password = "wrong";
    app = pipeline(identity.port, "token_cache_time = -1");
    service_password = "secret-glance";
    ck_assert_int_eq(get(app, token, NULL, 0), 503);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_identity_gone)
{
    int port = identity.port;
    app_server_stop(&identity);
    csgi_app *app = pipeline(port, "http_request_max_retries = 1");
    ck_assert_int_eq(get(app, "some-token", NULL, 0), 503);
    /* With delay_auth_decision too: a token that cannot be checked is not
       let through as Invalid either. */
    csgi_app_free(app);
    app = pipeline(port, "delay_auth_decision = true");
    ck_assert_int_eq(get(app, "some-token", NULL, 0), 503);
    char body[512];
    ck_assert_int_eq(get(app, NULL, body, sizeof(body)), 200);
    ck_assert_str_eq(body, "user=- project=- roles=- status=Invalid");
    csgi_app_free(app);
    app_server_start(&identity, identity_service_new(), NULL);
}
END_TEST

START_TEST(test_real_sockets)
{
    char token[64];
    issue("demo", token);
    app_server served;
    app_server_start(&served, pipeline(identity.port, NULL), NULL);
    char request[512];
    int n =
        snprintf(request, sizeof(request),
                 "GET / HTTP/1.1\r\nHost: t\r\nX-Roles: admin\r\nX-Auth-Token: %s\r\n\r\n", token);
    for (int way = 0; way < 3; way++) {
        int fd = client_connect(served.port);
        ck_assert_int_ge(fd, 0);
        if (way == 2) {
            for (int i = 0; i < n; i++)
                ck_assert_int_eq(client_send(fd, request + i, 1), 0);
        } else {
            int half = way == 1 ? n / 2 : n;
            ck_assert_int_eq(client_send(fd, request, (size_t)half), 0);
            if (half < n)
                ck_assert_int_eq(client_send(fd, request + half, (size_t)(n - half)), 0);
        }
        test_response response;
        ck_assert_int_eq(client_response(fd, &response, 0, 5000), 0);
        ck_assert_int_eq(response.status, 200);
        ck_assert_str_eq(response.body, "user=demo project=demo roles=member,reader "
                                        "status=Confirmed");
        response_free(&response);
        close(fd);
    }
    /* A client that leaves while its token is being checked by a hanging
       identity service: the server cancels the call and goes on. */
    identity_service_set_mode(IDENTITY_HANG);
    int fd = client_connect(served.port);
    ck_assert_int_eq(
        client_send_str(fd, "GET / HTTP/1.1\r\nHost: t\r\nX-Auth-Token: other\r\n\r\n"), 0);
    usleep(100 * 1000);
    close(fd);
    identity_service_set_mode(IDENTITY_NORMAL);
    fd = client_connect(served.port);
    n = snprintf(request, sizeof(request), "GET / HTTP/1.1\r\nHost: t\r\nX-Auth-Token: %s\r\n\r\n",
                 token);
    ck_assert_int_eq(client_send(fd, request, (size_t)n), 0);
    test_response response;
    ck_assert_int_eq(client_response(fd, &response, 0, 5000), 0);
    ck_assert_int_eq(response.status, 200);
    response_free(&response);
    close(fd);
    app_server_stop(&served);
}
END_TEST

static Suite *auth_token_remote_suite(void)
{
    Suite *s = suite_create("auth_token_remote");
    TCase *tc = tcase_create("identity");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_validated_then_cached);
    tcase_add_test(tc, test_expired_and_revoked);
    tcase_add_test(tc, test_identity_misbehaves);
    tcase_add_test(tc, test_identity_gone);
    tcase_add_test(tc, test_real_sockets);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(auth_token_remote_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
