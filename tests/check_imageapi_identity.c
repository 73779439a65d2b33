/*
 * examples/imageapi's identity part (keystone v3 and the talk's v2.0),
 * loaded from a deploy file with imageapi.so as a user deploys it, over a
 * temporary state_dir and a users file made from the sample accounts.json
 * (its hashes, and users added for the cases it lacks): version discovery,
 * password and token auth by names and by ids, scopes, keystone's errors,
 * validation, revocation and the revocation filter, the v2.0 tokens, the
 * factory's conf errors, imageapi-passwd's hashes; through the in-process
 * test client (bodies at once, late in pieces, byte at a time, chunked) and
 * over real sockets (every way engine_harness splits a body).
 */
#include "engine_harness.h"

#include <csgi.h>
#include <csgi/auth_token.h>

#include <check.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char state[] = "/tmp/csgi-identity-XXXXXX";
static char path_accounts[256], path_key[256], path_ini[256];
static const char key_bytes[] = "0123456789abcdef0123456789abcdef-test-key";

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* The sample accounts with two more users: "off" (disabled, admin's
   password) and "lone" (demo's password, roles on demo, no default
   project). */
static void write_accounts(void)
{
    const char *sample = getenv("CSGI_IMAGEAPI_ACCOUNTS");
    ck_assert_msg(sample != NULL, "CSGI_IMAGEAPI_ACCOUNTS is set by CTest");
    json_t *file = json_load_file(sample, 0, NULL);
    ck_assert_ptr_nonnull(file);
    json_t *users = json_object_get(file, "users");
    json_t *off = json_deep_copy(json_array_get(users, 0));
    json_object_set_new(off, "id", json_string("0ff0ff0ff0ff0ff0ff0ff0ff0ff0ff00"));
    json_object_set_new(off, "name", json_string("off"));
    json_object_set_new(off, "enabled", json_false());
    json_array_append_new(users, off);
    json_t *lone = json_deep_copy(json_array_get(users, 1));
    json_object_set_new(lone, "id", json_string("10ne10ne10ne10ne10ne10ne10ne10ne"));
    json_object_set_new(lone, "name", json_string("lone"));
    json_object_del(lone, "default_project");
    json_array_append_new(users, lone);
    ck_assert_int_eq(json_dump_file(file, path_accounts, JSON_INDENT(1)), 0);
    json_decref(file);
}

static void setup(void)
{
    strcpy(state, "/tmp/csgi-identity-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(state));
    snprintf(path_accounts, sizeof(path_accounts), "%s/accounts.json", state);
    snprintf(path_key, sizeof(path_key), "%s/key", state);
    snprintf(path_ini, sizeof(path_ini), "%s/identity.ini", state);
    write_accounts();
    write_text(path_key, key_bytes);
}

static void teardown(void)
{
    char command[512];
    snprintf(command, sizeof(command), "rm -rf '%s'", state);
    ck_assert_int_eq(system(command), 0);
}

/* The deploy file: identity at /identity, /v3, /v2.0 and /, a pipeline
   with the revocation filter in front of it at /guarded, and compute
   behind auth_token (with the signing key) and the revocation filter at
   /compute, as imageapi-paste.ini has it; extra lines go to
   [app:identity]. NULL with the loader's message in why when it fails. */
static csgi_app *load(const char *extra, char *why, size_t why_size)
{
    char text[4096];
    snprintf(
        text, sizeof(text),
        "[DEFAULT]\nstate_dir = %s/store\nsigning_key_file = %s\naccounts_file = %s\n\n"
        "[composite:main]\nuse = egg:csgi#urlmap\n/identity = identity\n/v3 = identity\n"
        "/v2.0 = identity\n/guarded = guarded\n/compute = compute\n/ = identity\n\n"
        "[pipeline:guarded]\npipeline = revoked identity\n\n"
        "[pipeline:compute]\npipeline = authtoken revoked flavors\n\n"
        "[filter:authtoken]\npaste.filter_factory = keystonemiddleware.auth_token:filter_factory\n"
        "www_authenticate_uri = http://auth.test/identity\n"
        "get signing_key_file = signing_key_file\n\n"
        "[app:flavors]\npaste.app_factory = imageapi:compute_factory\n\n"
        "[filter:revoked]\npaste.filter_factory = imageapi:revocation_factory\n\n"
        "[app:identity]\npaste.app_factory = imageapi:identity_factory\n%s",
        state, path_key, path_accounts, extra);
    write_text(path_ini, text);
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    const char *dir = getenv("CSGI_IMAGEAPI_DIR");
    ck_assert_msg(dir != NULL, "CSGI_IMAGEAPI_DIR is set by CTest");
    ck_assert_int_eq(csgi_loader_add_module_path(loader, dir), 0);
    csgi_app *app = NULL;
    csgi_load_error error;
    if (csgi_loader_load_app(&app, loader, path_ini, &error) != 0)
        csgi_load_error_format(&error, why, why_size);
    csgi_loader_free(loader);
    return app;
}

static csgi_app *load_ok(const char *extra)
{
    char why[1024] = "";
    csgi_app *app = load(extra, why, sizeof(why));
    ck_assert_msg(app != NULL, "%s", why);
    return app;
}

/* ---- Requests through the test client ---------------------------------------------------- */

typedef struct answer {
    csgi_test_response *response;
    int status;
    json_t *json;
    char token[4096]; /* X-Subject-Token, or "" */
} answer;

typedef enum delivery { AT_ONCE, LATE_PIECES, BYTEWISE, CHUNKED, DELIVERY_COUNT } delivery;

static answer call_as(csgi_app *app, const char *method, const char *url, const char *body,
                      const char *auth, const char *subject, delivery how)
{
    csgi_test_request *request;
    ck_assert_int_eq(csgi_test_request_new(&request, method, url), 0);
    if (auth)
        ck_assert_int_eq(csgi_test_request_add_header(request, "X-Auth-Token", auth), 0);
    if (subject)
        ck_assert_int_eq(csgi_test_request_add_header(request, "X-Subject-Token", subject), 0);
    if (body) {
        ck_assert_int_eq(csgi_test_request_add_header(request, "Content-Type", "application/json"),
                         0);
        ck_assert_int_eq(csgi_test_request_set_body(request, body, strlen(body)), 0);
        if (how == LATE_PIECES)
            csgi_test_request_set_body_delivery(request, CSGI_TEST_DELIVERY_LATE, 7);
        else if (how == BYTEWISE)
            csgi_test_request_set_body_delivery(request, CSGI_TEST_DELIVERY_LATE, 1);
        else if (how == CHUNKED) {
            csgi_test_request_set_body_delivery(request, CSGI_TEST_DELIVERY_LATE, 16);
            csgi_test_request_set_chunked(request, 1);
        }
    }
    answer a;
    memset(&a, 0, sizeof(a));
    ck_assert_int_eq(csgi_test_request_run(&a.response, request, app), 0);
    csgi_test_request_free(request);
    a.status = csgi_test_response_code(a.response);
    size_t len;
    const char *text = csgi_test_response_body(a.response, &len);
    a.json = len ? json_loadb(text, len, 0, NULL) : NULL;
    const char *token = csgi_test_response_header(a.response, "X-Subject-Token");
    snprintf(a.token, sizeof(a.token), "%s", token ? token : "");
    return a;
}

static answer call(csgi_app *app, const char *method, const char *url, const char *body,
                   const char *auth, const char *subject)
{
    return call_as(app, method, url, body, auth, subject, AT_ONCE);
}

static void answer_free(answer *a)
{
    csgi_test_response_free(a->response);
    json_decref(a->json);
}

static const char *str_at(const json_t *value, const char *path)
{
    /* "a.b.c" through objects */
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", path);
    const json_t *at = value;
    for (char *part = strtok(copy, "."); part && at; part = strtok(NULL, "."))
        at = json_object_get(at, part);
    return json_string_value(at);
}

/* A password auth body: user by name (in domain by name) and project by
   name, or "" for no scope. */
static void password_body(char *out, size_t size, const char *user, const char *password,
                          const char *project)
{
    char scope[256] = "";
    if (*project)
        snprintf(scope, sizeof(scope),
                 ", \"scope\": {\"project\": {\"name\": \"%s\", \"domain\": {\"name\": "
                 "\"Default\"}}}",
                 project);
    snprintf(out, size,
             "{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": "
             "{\"name\": \"%s\", \"domain\": {\"name\": \"Default\"}, \"password\": \"%s\"}}}%s}}",
             user, password, scope);
}

/* keystone's error shape with status; 401 has WWW-Authenticate. */
static void expect_error(const answer *a, int status, const char *what)
{
    ck_assert_msg(a->status == status, "%s: %d, not %d", what, a->status, status);
    json_t *error = json_object_get(a->json, "error");
    ck_assert_msg(json_integer_value(json_object_get(error, "code")) == status, "%s: no error code",
                  what);
    ck_assert_msg(json_is_string(json_object_get(error, "title")) &&
                      json_is_string(json_object_get(error, "message")),
                  "%s: title and message", what);
    if (status == 401) {
        ck_assert_str_eq(str_at(error, "message"),
                         "The request you have made requires authentication.");
        const char *challenge = csgi_test_response_header(a->response, "WWW-Authenticate");
        ck_assert_msg(challenge && strncmp(challenge, "Keystone uri=\"http", 18) == 0,
                      "%s: WWW-Authenticate %s", what, challenge ? challenge : "(none)");
    }
}

/* A token issued to user on project (or unscoped with ""), in out. */
static void issue(csgi_app *app, const char *user, const char *password, const char *project,
                  char *out, size_t size)
{
    char body[1024];
    password_body(body, sizeof(body), user, password, project);
    answer a = call(app, "POST", "http://cloud.test/identity/v3/auth/tokens", body, NULL, NULL);
    ck_assert_msg(a.status == 201, "issue for %s: %d", user, a.status);
    snprintf(out, size, "%s", a.token);
    answer_free(&a);
}

static void sha256_hex(const char *text, char out[65])
{
    unsigned char digest[32];
    unsigned int size = 32;
    EVP_Digest(text, strlen(text), digest, &size, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

/* ---- Versions ------------------------------------------------------------------------------ */

START_TEST(test_versions)
{
    csgi_app *app = load_ok("");
    answer a = call(app, "GET", "http://cloud.test/", NULL, NULL, NULL);
    ck_assert_int_eq(a.status, 300);
    json_t *values = json_object_get(json_object_get(a.json, "versions"), "values");
    ck_assert_int_eq(json_array_size(values), 2);
    ck_assert_str_eq(str_at(json_array_get(values, 0), "id"), "v3.14");
    ck_assert_str_eq(str_at(json_array_get(values, 0), "status"), "stable");
    ck_assert_str_eq(
        str_at(json_array_get(json_object_get(json_array_get(values, 0), "links"), 0), "href"),
        "http://cloud.test/v3/");
    ck_assert_str_eq(str_at(json_array_get(values, 1), "id"), "v2.0");
    answer_free(&a);

    /* the same under /identity, with /identity in the links */
    a = call(app, "GET", "http://cloud.test/identity/", NULL, NULL, NULL);
    ck_assert_int_eq(a.status, 300);
    values = json_object_get(json_object_get(a.json, "versions"), "values");
    ck_assert_str_eq(
        str_at(json_array_get(json_object_get(json_array_get(values, 1), "links"), 0), "href"),
        "http://cloud.test/identity/v2.0/");
    answer_free(&a);

    const char *v3[][2] = {{"http://cloud.test/v3", "http://cloud.test/v3/"},
                           {"http://cloud.test/v3/", "http://cloud.test/v3/"},
                           {"http://cloud.test/identity/v3", "http://cloud.test/identity/v3/"}};
    for (size_t i = 0; i < 3; i++) {
        a = call(app, "GET", v3[i][0], NULL, NULL, NULL);
        ck_assert_int_eq(a.status, 200);
        json_t *version = json_object_get(a.json, "version");
        ck_assert_str_eq(str_at(version, "id"), "v3.14");
        ck_assert_str_eq(str_at(json_array_get(json_object_get(version, "links"), 0), "rel"),
                         "self");
        ck_assert_str_eq(str_at(json_array_get(json_object_get(version, "links"), 0), "href"),
                         v3[i][1]);
        ck_assert_str_eq(str_at(json_array_get(json_object_get(version, "media-types"), 0), "type"),
                         "application/vnd.openstack.identity-v3+json");
        answer_free(&a);
    }
    a = call(app, "GET", "http://cloud.test/v2.0", NULL, NULL, NULL);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(str_at(a.json, "version.id"), "v2.0");
    answer_free(&a);
    a = call(app, "GET", "http://cloud.test/v3/nothing", NULL, NULL, NULL);
    expect_error(&a, 404, "unknown path");
    answer_free(&a);
    a = call(app, "GET", "http://cloud.test/identity/v4", NULL, NULL, NULL);
    expect_error(&a, 404, "unknown version");
    answer_free(&a);
    a = call(app, "PUT", "http://cloud.test/v3/auth/tokens", "{}", NULL, NULL);
    expect_error(&a, 405, "PUT tokens");
    answer_free(&a);
    csgi_app_free(app);
}
END_TEST

/* ---- Issuing v3 tokens ------------------------------------------------------------------ */

/* The token document of a scoped answer, checked in full. */
static void expect_scoped(const answer *a, const char *user, const char *project, int roles,
                          long lifetime)
{
    ck_assert_int_eq(a->status, 201);
    ck_assert_msg(strncmp(a->token, "csgi1.", 6) == 0, "token %s", a->token);
    json_t *token = json_object_get(a->json, "token");
    ck_assert_str_eq(str_at(json_array_get(json_object_get(token, "methods"), 0), ""), "password");
    ck_assert_str_eq(str_at(token, "user.name"), user);
    ck_assert_str_eq(str_at(token, "user.domain.name"), "Default");
    ck_assert_str_eq(str_at(token, "project.name"), project);
    ck_assert_str_eq(str_at(token, "project.domain.id"), "default");
    ck_assert_int_eq(json_array_size(json_object_get(token, "roles")), roles);
    ck_assert_int_eq(json_array_size(json_object_get(token, "audit_ids")), 1);
    time_t issued, expires;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    ck_assert_ptr_nonnull(strptime(str_at(token, "issued_at"), "%Y-%m-%dT%H:%M:%S", &tm));
    issued = timegm(&tm);
    ck_assert_ptr_nonnull(strptime(str_at(token, "expires_at"), "%Y-%m-%dT%H:%M:%S", &tm));
    expires = timegm(&tm);
    ck_assert_int_eq(expires - issued, lifetime);

    /* the catalog: identity, image, compute; public, internal, admin */
    json_t *catalog = json_object_get(token, "catalog");
    ck_assert_int_eq(json_array_size(catalog), 3);
    const char *types[] = {"identity", "image", "compute"};
    for (size_t s = 0; s < 3; s++) {
        json_t *service = json_array_get(catalog, s);
        ck_assert_str_eq(str_at(service, "type"), types[s]);
        json_t *endpoints = json_object_get(service, "endpoints");
        ck_assert_int_eq(json_array_size(endpoints), 3);
        for (size_t e = 0; e < 3; e++) {
            json_t *endpoint = json_array_get(endpoints, e);
            ck_assert_str_eq(str_at(endpoint, "region"), "RegionOne");
            ck_assert_str_eq(str_at(endpoint, "region_id"), "RegionOne");
            ck_assert_int_eq(strlen(str_at(endpoint, "id")), 32);
        }
        ck_assert_str_eq(str_at(json_array_get(endpoints, 1), "interface"), "internal");
    }
    ck_assert_str_eq(
        str_at(json_array_get(json_object_get(json_array_get(catalog, 1), "endpoints"), 0), "url"),
        "http://cloud.test/image");
    ck_assert_str_eq(
        str_at(json_array_get(json_object_get(json_array_get(catalog, 2), "endpoints"), 0), "url"),
        "http://cloud.test/compute/v2.1");

    /* the token itself is the document, signed with the key */
    json_t *signed_doc = NULL;
    ck_assert_int_eq(csgi_auth_token_verify(&signed_doc, a->token, strlen(a->token), key_bytes,
                                            strlen(key_bytes)),
                     0);
    ck_assert_str_eq(str_at(signed_doc, "user.id"), str_at(token, "user.id"));
    ck_assert_str_eq(str_at(signed_doc, "project.id"), str_at(token, "project.id"));
    ck_assert_ptr_null(json_object_get(signed_doc, "catalog")); /* short tokens */
    json_decref(signed_doc);
}

START_TEST(test_issue_by_names)
{
    csgi_app *app = load_ok("");
    char body[1024];
    password_body(body, sizeof(body), "admin", "admin-secret", "admin");
    for (delivery how = AT_ONCE; how < DELIVERY_COUNT; how++) {
        answer a = call_as(app, "POST", "http://cloud.test/identity/v3/auth/tokens", body, NULL,
                           NULL, how);
        expect_scoped(&a, "admin", "admin", 3, 3600);
        answer_free(&a);
    }
    password_body(body, sizeof(body), "demo", "demo-secret", "demo");
    answer a = call(app, "POST", "http://cloud.test/v3/auth/tokens", body, NULL, NULL);
    expect_scoped(&a, "demo", "demo", 2, 3600);
    json_t *roles = json_object_get(json_object_get(a.json, "token"), "roles");
    ck_assert_str_eq(str_at(json_array_get(roles, 0), "name"), "member");
    ck_assert_str_eq(str_at(json_array_get(roles, 1), "name"), "reader");
    answer_free(&a);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_issue_by_ids_and_scopes)
{
    csgi_app *app = load_ok("");
    /* learn the ids from a first token */
    char body[8192];
    password_body(body, sizeof(body), "admin", "admin-secret", "demo");
    answer first = call(app, "POST", "http://cloud.test/v3/auth/tokens", body, NULL, NULL);
    ck_assert_int_eq(first.status, 201);
    char user_id[64], project_id[64];
    snprintf(user_id, sizeof(user_id), "%s", str_at(first.json, "token.user.id"));
    snprintf(project_id, sizeof(project_id), "%s", str_at(first.json, "token.project.id"));
    answer_free(&first);

    snprintf(body, sizeof(body),
             "{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": "
             "{\"id\": \"%s\", \"password\": \"admin-secret\"}}}, \"scope\": {\"project\": "
             "{\"id\": \"%s\"}}}}",
             user_id, project_id);
    answer a = call(app, "POST", "http://cloud.test/v3/auth/tokens", body, NULL, NULL);
    expect_scoped(&a, "admin", "demo", 3, 3600);
    answer_free(&a);

    /* domain by id, project's domain by id */
    snprintf(body, sizeof(body),
             "{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": "
             "{\"name\": \"glance\", \"domain\": {\"id\": \"default\"}, \"password\": "
             "\"glance-secret\"}}}, \"scope\": {\"project\": {\"name\": \"service\", \"domain\": "
             "{\"id\": \"default\"}}}}}");
    a = call(app, "POST", "http://cloud.test/v3/auth/tokens", body, NULL, NULL);
    expect_scoped(&a, "glance", "service", 2, 3600);
    answer_free(&a);

    /* no scope: the default project (demo's) */
    password_body(body, sizeof(body), "demo", "demo-secret", "");
    a = call(app, "POST", "http://cloud.test/v3/auth/tokens", body, NULL, NULL);
    expect_scoped(&a, "demo", "demo", 2, 3600);
    answer_free(&a);

    /* no scope and no default project: unscoped, no catalog */
    password_body(body, sizeof(body), "lone", "demo-secret", "");
    a = call(app, "POST", "http://cloud.test/v3/auth/tokens", body, NULL, NULL);
    ck_assert_int_eq(a.status, 201);
    json_t *token = json_object_get(a.json, "token");
    ck_assert_ptr_null(json_object_get(token, "project"));
    ck_assert_ptr_null(json_object_get(token, "catalog"));
    ck_assert_str_eq(str_at(token, "user.name"), "lone");
    char unscoped[4096];
    snprintf(unscoped, sizeof(unscoped), "%s", a.token);
    answer_free(&a);

    /* the token method: the unscoped token scoped to demo, same expiry */
    snprintf(body, sizeof(body),
             "{\"auth\": {\"identity\": {\"methods\": [\"token\"], \"token\": {\"id\": \"%s\"}}, "
             "\"scope\": {\"project\": {\"name\": \"demo\", \"domain\": {\"name\": "
             "\"Default\"}}}}}",
             unscoped);
    a = call(app, "POST", "http://cloud.test/v3/auth/tokens", body, NULL, NULL);
    ck_assert_int_eq(a.status, 201);
    ck_assert_str_eq(str_at(a.json, "token.project.name"), "demo");
    ck_assert_str_eq(
        str_at(json_array_get(json_object_get(json_object_get(a.json, "token"), "methods"), 0), ""),
        "token");
    ck_assert_int_eq(
        json_array_size(json_object_get(json_object_get(a.json, "token"), "audit_ids")), 2);
    answer_free(&a);
    /* ... but not to a project without roles */
    snprintf(body, sizeof(body),
             "{\"auth\": {\"identity\": {\"methods\": [\"token\"], \"token\": {\"id\": \"%s\"}}, "
             "\"scope\": {\"project\": {\"name\": \"admin\", \"domain\": {\"name\": "
             "\"Default\"}}}}}",
             unscoped);
    a = call(app, "POST", "http://cloud.test/v3/auth/tokens", body, NULL, NULL);
    expect_error(&a, 401, "token auth to a project without roles");
    answer_free(&a);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_refusals)
{
    csgi_app *app = load_ok("");
    char body[1024];
    const char *const cases[][4] = {
        {"admin", "wrong", "admin", "wrong password"},
        {"admin", "", "admin", "empty password"},
        {"nobody", "admin-secret", "admin", "unknown user"},
        {"demo", "demo-secret", "admin", "project without roles"},
        {"admin", "admin-secret", "nowhere", "unknown project"},
        {"off", "admin-secret", "admin", "disabled user"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        password_body(body, sizeof(body), cases[i][0], cases[i][1], cases[i][2]);
        answer a = call(app, "POST", "http://cloud.test/v3/auth/tokens", body, NULL, NULL);
        expect_error(&a, 401, cases[i][3]);
        ck_assert_str_eq(a.token, "");
        answer_free(&a);
    }
    const char *const bad[][2] = {
        {"{\"auth\": ", "truncated JSON"},
        {"", "empty body"},
        {"[1, 2]", "not an object"},
        {"{\"auth\": {\"identity\": {\"methods\": \"password\"}}}", "methods not a list"},
        {"{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": "
         "{\"name\": \"admin\", \"password\": \"admin-secret\"}}}}}",
         "user name without domain"},
        {"{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": "
         "{\"name\": 7, \"domain\": {\"id\": \"default\"}, \"password\": [\"x\"]}}}}}",
         "values of the wrong types"},
        {"{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": "
         "{\"name\": \"admin\", \"domain\": {\"id\": \"default\"}, \"password\": "
         "\"admin-secret\"}}}, \"scope\": 5}}",
         "scope a number"},
        {"{\"auth\": {\"identity\": {\"methods\": [\"token\"], \"token\": {}}}}", "token no id"},
        {"{\"auth\": {\"identity\": {\"methods\": [\"password\"]}, \"auth\": 1}}", "duplicate key"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        answer a = call(app, "POST", "http://cloud.test/v3/auth/tokens", bad[i][0], NULL, NULL);
        expect_error(&a, 400, bad[i][1]);
        answer_free(&a);
    }
    /* unknown methods, domain scope, a forged token */
    answer a = call(app, "POST", "http://cloud.test/v3/auth/tokens",
                    "{\"auth\": {\"identity\": {\"methods\": [\"totp\"]}}}", NULL, NULL);
    expect_error(&a, 401, "unknown method");
    answer_free(&a);
    a = call(app, "POST", "http://cloud.test/v3/auth/tokens",
             "{\"auth\": {\"identity\": {\"methods\": [\"token\"], \"token\": {\"id\": "
             "\"csgi1.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}}}}",
             NULL, NULL);
    expect_error(&a, 401, "forged token");
    answer_free(&a);
    password_body(body, sizeof(body), "admin", "admin-secret", "");
    strcpy(strrchr(body, '}') - 1,
           ", \"scope\": {\"domain\": {\"id\": \"default\"}}}}"); /* replace the end */
    a = call(app, "POST", "http://cloud.test/v3/auth/tokens", body, NULL, NULL);
    expect_error(&a, 401, "domain scope");
    answer_free(&a);

    /* a long password, deep nesting */
    char *long_password = malloc(20001);
    memset(long_password, 'p', 20000);
    long_password[20000] = '\0';
    char *long_body = malloc(21000);
    password_body(long_body, 21000, "admin", long_password, "admin");
    a = call(app, "POST", "http://cloud.test/v3/auth/tokens", long_body, NULL, NULL);
    expect_error(&a, 401, "a long password");
    answer_free(&a);
    free(long_password);
    size_t depth = 5000;
    for (size_t i = 0; i < depth; i++) {
        long_body[i] = '[';
        long_body[depth + i] = ']';
    }
    long_body[2 * depth] = '\0';
    a = call(app, "POST", "http://cloud.test/v3/auth/tokens", long_body, NULL, NULL);
    expect_error(&a, 400, "deep nesting");
    answer_free(&a);
    free(long_body);

    /* a body past 64 KiB */
    size_t big = 70 * 1024;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    huge[big] = '\0';
    a = call(app, "POST", "http://cloud.test/v3/auth/tokens", huge, NULL, NULL);
    ck_assert_int_eq(a.status, 413);
    answer_free(&a);
    free(huge);
    csgi_app_free(app);
}
END_TEST

/* ---- Validation and revocation -------------------------------------------------------------- */

START_TEST(test_validate)
{
    csgi_app *app = load_ok("");
    char admin[4096], demo[4096];
    issue(app, "admin", "admin-secret", "admin", admin, sizeof(admin));
    issue(app, "demo", "demo-secret", "demo", demo, sizeof(demo));

    answer a = call(app, "GET", "http://cloud.test/v3/auth/tokens", NULL, admin, demo);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(a.token, demo);
    ck_assert_str_eq(str_at(a.json, "token.user.name"), "demo");
    ck_assert_int_eq(json_array_size(json_object_get(json_object_get(a.json, "token"), "catalog")),
                     3);
    answer_free(&a);
    a = call(app, "GET", "http://cloud.test/v3/auth/tokens?nocatalog", NULL, demo, demo);
    ck_assert_int_eq(a.status, 200);
    ck_assert_ptr_null(json_object_get(json_object_get(a.json, "token"), "catalog"));
    answer_free(&a);
    a = call(app, "HEAD", "http://cloud.test/v3/auth/tokens", NULL, admin, demo);
    ck_assert_int_eq(a.status, 200);
    ck_assert_ptr_null(a.json);
    answer_free(&a);

    /* a bad X-Auth-Token is 401; a bad subject 404 */
    a = call(app, "GET", "http://cloud.test/v3/auth/tokens", NULL, "nonsense", demo);
    expect_error(&a, 401, "bad X-Auth-Token");
    answer_free(&a);
    a = call(app, "GET", "http://cloud.test/v3/auth/tokens", NULL, NULL, demo);
    expect_error(&a, 401, "no X-Auth-Token");
    answer_free(&a);
    char tampered[4096];
    snprintf(tampered, sizeof(tampered), "%s", demo);
    tampered[20] = tampered[20] == 'A' ? 'B' : 'A';
    const char *subjects[] = {"nonsense", tampered, "", NULL};
    for (size_t i = 0; i < 4; i++) {
        a = call(app, "GET", "http://cloud.test/v3/auth/tokens", NULL, admin, subjects[i]);
        expect_error(&a, 404, "bad subject");
        answer_free(&a);
        a = call(app, "HEAD", "http://cloud.test/v3/auth/tokens", NULL, admin, subjects[i]);
        ck_assert_int_eq(a.status, 404);
        answer_free(&a);
    }

    /* long and malformed tokens */
    char *long_token = malloc(6001);
    memset(long_token, 'A', 6000);
    long_token[6000] = '\0';
    memcpy(long_token, "csgi1.", 6);
    a = call(app, "GET", "http://cloud.test/v3/auth/tokens", NULL, long_token, demo);
    expect_error(&a, 401, "a long X-Auth-Token");
    answer_free(&a);
    a = call(app, "GET", "http://cloud.test/v3/auth/tokens", NULL, admin, long_token);
    expect_error(&a, 404, "a long subject");
    answer_free(&a);
    free(long_token);
    a = call(app, "GET", "http://cloud.test/v3/auth/tokens", NULL, admin, "csgi1.!!!.???");
    expect_error(&a, 404, "not base64");
    answer_free(&a);

    /* expired, and signed with another key */
    json_t *doc = json_pack("{ss s{ss} s{ss}}", "expires_at", "2020-01-01T00:00:00.000000Z", "user",
                            "id", "u", "project", "id", "p");
    char old[2048];
    size_t len;
    ck_assert_int_eq(
        csgi_auth_token_sign(old, sizeof(old), &len, key_bytes, strlen(key_bytes), doc), 0);
    a = call(app, "GET", "http://cloud.test/v3/auth/tokens", NULL, admin, old);
    expect_error(&a, 404, "expired subject");
    answer_free(&a);
    a = call(app, "GET", "http://cloud.test/v3/auth/tokens", NULL, old, admin);
    expect_error(&a, 401, "expired X-Auth-Token");
    answer_free(&a);
    json_object_set_new(doc, "expires_at", json_string("2099-01-01T00:00:00Z"));
    const char other_key[] = "another key, long enough to sign with: 0123456789";
    ck_assert_int_eq(
        csgi_auth_token_sign(old, sizeof(old), &len, other_key, strlen(other_key), doc), 0);
    a = call(app, "GET", "http://cloud.test/v3/auth/tokens", NULL, admin, old);
    expect_error(&a, 404, "another key");
    answer_free(&a);
    /* well signed and live, but of a user the users file does not hold */
    ck_assert_int_eq(
        csgi_auth_token_sign(old, sizeof(old), &len, key_bytes, strlen(key_bytes), doc), 0);
    a = call(app, "GET", "http://cloud.test/v3/auth/tokens", NULL, admin, old);
    expect_error(&a, 404, "an unknown user's token");
    answer_free(&a);
    json_decref(doc);

    /* catalog, projects, domains */
    a = call(app, "GET", "http://cloud.test/identity/v3/auth/catalog", NULL, demo, NULL);
    ck_assert_int_eq(a.status, 200);
    ck_assert_int_eq(json_array_size(json_object_get(a.json, "catalog")), 3);
    ck_assert_str_eq(str_at(a.json, "links.self"), "http://cloud.test/identity/v3/auth/catalog");
    answer_free(&a);
    a = call(app, "GET", "http://cloud.test/v3/auth/projects", NULL, admin, NULL);
    ck_assert_int_eq(a.status, 200);
    json_t *projects = json_object_get(a.json, "projects");
    ck_assert_int_eq(json_array_size(projects), 2); /* admin and demo */
    ck_assert_str_eq(str_at(json_array_get(projects, 0), "name"), "admin");
    ck_assert_str_eq(str_at(json_array_get(projects, 1), "name"), "demo");
    answer_free(&a);
    /* the same by user id, as openstack project list --my-projects asks */
    a = call(app, "GET", "http://cloud.test/v3/auth/tokens", NULL, demo, demo);
    char url[256];
    snprintf(url, sizeof(url), "http://cloud.test/identity/v3/users/%s/projects",
             str_at(a.json, "token.user.id"));
    answer_free(&a);
    a = call(app, "GET", url, NULL, demo, NULL);
    ck_assert_int_eq(a.status, 200);
    projects = json_object_get(a.json, "projects");
    ck_assert_int_eq(json_array_size(projects), 1);
    ck_assert_str_eq(str_at(json_array_get(projects, 0), "name"), "demo");
    ck_assert_str_eq(str_at(a.json, "links.self"), url);
    answer_free(&a);
    a = call(app, "GET", url, NULL, admin, NULL); /* another user's */
    expect_error(&a, 403, "another user's projects");
    answer_free(&a);
    a = call(app, "GET", "http://cloud.test/v3/users//projects", NULL, admin, NULL);
    expect_error(&a, 404, "no user id");
    answer_free(&a);
    a = call(app, "GET", "http://cloud.test/v3/auth/domains", NULL, admin, NULL);
    ck_assert_int_eq(a.status, 200);
    ck_assert_int_eq(json_array_size(json_object_get(a.json, "domains")), 0);
    answer_free(&a);
    a = call(app, "GET", "http://cloud.test/v3/auth/projects", NULL, "x", NULL);
    expect_error(&a, 401, "projects without a token");
    answer_free(&a);
    char unscoped[4096];
    issue(app, "lone", "demo-secret", "", unscoped, sizeof(unscoped));
    a = call(app, "GET", "http://cloud.test/v3/auth/catalog", NULL, unscoped, NULL);
    expect_error(&a, 403, "catalog of an unscoped token");
    answer_free(&a);
    csgi_app_free(app);
}
END_TEST

START_TEST(test_revoke)
{
    csgi_app *app = load_ok("");
    char admin[4096], demo[4096], later[4096];
    issue(app, "admin", "admin-secret", "admin", admin, sizeof(admin));
    issue(app, "demo", "demo-secret", "demo", demo, sizeof(demo));
    issue(app, "demo", "demo-secret", "demo", later, sizeof(later));

    /* the filter lets a good token through to the app behind it */
    answer a = call(app, "GET", "http://cloud.test/guarded/v3", NULL, demo, NULL);
    ck_assert_int_eq(a.status, 200);
    answer_free(&a);

    a = call(app, "DELETE", "http://cloud.test/v3/auth/tokens", NULL, admin, demo);
    ck_assert_int_eq(a.status, 204);
    answer_free(&a);
    char digest[65], path[512];
    sha256_hex(demo, digest);
    snprintf(path, sizeof(path), "%s/store/revoked/%s", state, digest);
    json_t *content = json_load_file(path, 0, NULL);
    ck_assert_msg(content != NULL, "no %s", path);
    ck_assert_int_eq(strlen(str_at(content, "expires_at")), 27);
    json_decref(content);

    a = call(app, "GET", "http://cloud.test/v3/auth/tokens", NULL, admin, demo);
    expect_error(&a, 404, "revoked subject");
    answer_free(&a);
    a = call(app, "HEAD", "http://cloud.test/v3/auth/tokens", NULL, admin, demo);
    ck_assert_int_eq(a.status, 404);
    answer_free(&a);
    a = call(app, "GET", "http://cloud.test/v3/auth/tokens", NULL, demo, admin);
    expect_error(&a, 401, "revoked X-Auth-Token");
    answer_free(&a);
    a = call(app, "DELETE", "http://cloud.test/v3/auth/tokens", NULL, admin, demo);
    expect_error(&a, 404, "revoked twice");
    answer_free(&a);
    /* the filter refuses it, the other token of the same user still passes */
    a = call(app, "GET", "http://cloud.test/guarded/v3", NULL, demo, NULL);
    expect_error(&a, 401, "the filter, revoked");
    answer_free(&a);
    a = call(app, "GET", "http://cloud.test/guarded/v3", NULL, later, NULL);
    ck_assert_int_eq(a.status, 200);
    answer_free(&a);
    /* nor can a revoked token make a new one */
    char body[8192];
    snprintf(body, sizeof(body),
             "{\"auth\": {\"identity\": {\"methods\": [\"token\"], \"token\": {\"id\": \"%s\"}}}}",
             demo);
    a = call(app, "POST", "http://cloud.test/v3/auth/tokens", body, NULL, NULL);
    expect_error(&a, 401, "token auth with a revoked token");
    answer_free(&a);

    /* another host revokes `later` by writing the file: seen at once */
    sha256_hex(later, digest);
    snprintf(path, sizeof(path), "%s/store/revoked/%s", state, digest);
    write_text(path, "{\"expires_at\": \"2099-01-01T00:00:00Z\"}");
    a = call(app, "GET", "http://cloud.test/guarded/v3", NULL, later, NULL);
    expect_error(&a, 401, "revoked by another host");
    answer_free(&a);
    /* and an entry removed (purged) lets nothing else through */
    unlink(path);
    a = call(app, "GET", "http://cloud.test/guarded/v3", NULL, later, NULL);
    ck_assert_int_eq(a.status, 200);
    answer_free(&a);

    /* an entry long expired is purged at the next revocation */
    char stale[512];
    snprintf(stale, sizeof(stale), "%s/store/revoked/%064d", state, 0);
    write_text(stale, "{\"expires_at\": \"2020-01-01T00:00:00Z\"}");
    a = call(app, "DELETE", "http://cloud.test/v3/auth/tokens", NULL, admin, later);
    ck_assert_int_eq(a.status, 204);
    answer_free(&a);
    ck_assert_int_ne(access(stale, F_OK), 0);
    ck_assert_int_eq(access(path, F_OK), 0);
    csgi_app_free(app);
}
END_TEST

/* ---- Behind auth_token, as the image and compute pipelines are ---------------------------- */

START_TEST(test_behind_auth_token)
{
    csgi_app *app = load_ok("");
    char admin[4096], demo[4096];
    issue(app, "admin", "admin-secret", "admin", admin, sizeof(admin));
    issue(app, "demo", "demo-secret", "demo", demo, sizeof(demo));
    /* auth_token validates the signed token by itself */
    answer a = call(app, "GET", "http://cloud.test/compute/v2.1/flavors", NULL, demo, NULL);
    ck_assert_int_eq(a.status, 200);
    ck_assert_int_eq(json_array_size(json_object_get(a.json, "flavors")), 5);
    answer_free(&a);
    a = call(app, "GET", "http://cloud.test/compute/v2.1/flavors", NULL, NULL, NULL);
    expect_error(&a, 401, "no token");
    ck_assert_str_eq(csgi_test_response_header(a.response, "WWW-Authenticate"),
                     "Keystone uri=\"http://auth.test/identity\""); /* auth_token's */
    answer_free(&a);
    /* revoked: auth_token still finds it well signed, the filter refuses it */
    a = call(app, "DELETE", "http://cloud.test/identity/v3/auth/tokens", NULL, admin, demo);
    ck_assert_int_eq(a.status, 204);
    answer_free(&a);
    a = call(app, "GET", "http://cloud.test/compute/v2.1/flavors", NULL, demo, NULL);
    expect_error(&a, 401, "revoked, behind auth_token");
    ck_assert_str_eq(csgi_test_response_header(a.response, "WWW-Authenticate"),
                     "Keystone uri=\"http://cloud.test/identity\""); /* the filter's */
    answer_free(&a);
    a = call(app, "GET", "http://cloud.test/compute/v2.1/flavors", NULL, admin, NULL);
    ck_assert_int_eq(a.status, 200);
    answer_free(&a);
    csgi_app_free(app);
}
END_TEST

/* ---- v2.0 -------------------------------------------------------------------------------------
 */

START_TEST(test_v2_tokens)
{
    csgi_app *app = load_ok("");
    const char *body = "{\"auth\": {\"tenantName\": \"demo\", \"passwordCredentials\": "
                       "{\"username\": \"admin\", \"password\": \"admin-secret\"}}}";
    for (delivery how = AT_ONCE; how < DELIVERY_COUNT; how++) {
        answer a = call_as(app, "POST", "http://cloud.test/v2.0/tokens", body, NULL, NULL, how);
        ck_assert_int_eq(a.status, 200);
        json_t *access = json_object_get(a.json, "access");
        const char *id = str_at(access, "token.id");
        ck_assert_ptr_nonnull(id);
        ck_assert_str_eq(str_at(access, "token.tenant.name"), "demo");
        ck_assert_int_eq(strlen(str_at(access, "token.expires")), 20);
        ck_assert_str_eq(str_at(access, "user.name"), "admin");
        ck_assert_int_eq(json_array_size(json_object_get(json_object_get(access, "user"), "roles")),
                         3);
        json_t *catalog = json_object_get(access, "serviceCatalog");
        ck_assert_int_eq(json_array_size(catalog), 3);
        json_t *image = json_array_get(catalog, 1);
        ck_assert_str_eq(str_at(image, "type"), "image");
        json_t *endpoint = json_array_get(json_object_get(image, "endpoints"), 0);
        ck_assert_str_eq(str_at(endpoint, "publicURL"), "http://cloud.test/image");
        ck_assert_str_eq(str_at(endpoint, "adminURL"), "http://cloud.test/image");
        ck_assert_str_eq(str_at(endpoint, "region"), "RegionOne");
        ck_assert_str_eq(
            str_at(json_array_get(json_object_get(json_array_get(catalog, 0), "endpoints"), 0),
                   "publicURL"),
            "http://cloud.test/identity/v2.0");
        /* the token validates as a v3 token */
        answer v = call(app, "GET", "http://cloud.test/v3/auth/tokens", NULL, id, id);
        ck_assert_int_eq(v.status, 200);
        ck_assert_str_eq(str_at(v.json, "token.project.name"), "demo");
        answer_free(&v);
        answer_free(&a);
    }
    /* tenantId; no tenant: unscoped, empty catalog */
    answer a = call(app, "POST", "http://cloud.test/identity/v2.0/tokens",
                    "{\"auth\": {\"passwordCredentials\": {\"username\": \"glance\", "
                    "\"password\": \"glance-secret\"}}}",
                    NULL, NULL);
    ck_assert_int_eq(a.status, 200);
    ck_assert_ptr_null(
        json_object_get(json_object_get(json_object_get(a.json, "access"), "token"), "tenant"));
    ck_assert_int_eq(
        json_array_size(json_object_get(json_object_get(a.json, "access"), "serviceCatalog")), 0);
    answer_free(&a);
    a = call(app, "POST", "http://cloud.test/v3/auth/tokens",
             "{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": "
             "{\"name\": \"glance\", \"domain\": {\"id\": \"default\"}, \"password\": "
             "\"glance-secret\"}}}}}",
             NULL, NULL);
    char body2[512];
    snprintf(body2, sizeof(body2),
             "{\"auth\": {\"tenantId\": \"%s\", \"passwordCredentials\": {\"username\": "
             "\"glance\", \"password\": \"glance-secret\"}}}",
             str_at(a.json, "token.project.id"));
    answer_free(&a);
    a = call(app, "POST", "http://cloud.test/v2.0/tokens", body2, NULL, NULL);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(str_at(a.json, "access.token.tenant.name"), "service");
    answer_free(&a);

    const char *refused[] = {
        "{\"auth\": {\"tenantName\": \"demo\", \"passwordCredentials\": {\"username\": "
        "\"admin\", \"password\": \"nope\"}}}",
        "{\"auth\": {\"tenantName\": \"admin\", \"passwordCredentials\": {\"username\": "
        "\"demo\", \"password\": \"demo-secret\"}}}",
        "{\"auth\": {\"tenantName\": \"demo\", \"passwordCredentials\": {\"username\": "
        "\"ghost\", \"password\": \"demo-secret\"}}}",
    };
    for (size_t i = 0; i < 3; i++) {
        a = call(app, "POST", "http://cloud.test/v2.0/tokens", refused[i], NULL, NULL);
        expect_error(&a, 401, refused[i]);
        answer_free(&a);
    }
    a = call(app, "POST", "http://cloud.test/v2.0/tokens", "{\"auth\": {}}", NULL, NULL);
    expect_error(&a, 400, "no credentials");
    answer_free(&a);
    a = call(app, "POST", "http://cloud.test/v2.0/tokens", "not json", NULL, NULL);
    expect_error(&a, 400, "not JSON");
    answer_free(&a);
    a = call(app, "GET", "http://cloud.test/v2.0/tokens", NULL, NULL, NULL);
    expect_error(&a, 405, "GET v2.0 tokens");
    answer_free(&a);
    csgi_app_free(app);
}
END_TEST

/* ---- Conf ------------------------------------------------------------------------------------ */

START_TEST(test_conf)
{
    /* token_expiration and public_url */
    csgi_app *app = load_ok("token_expiration = 5\npublic_url = https://cloud.example/\n");
    char body[1024];
    password_body(body, sizeof(body), "admin", "admin-secret", "admin");
    answer a = call(app, "POST", "http://cloud.test/v3/auth/tokens", body, NULL, NULL);
    ck_assert_int_eq(a.status, 201);
    json_t *token = json_object_get(a.json, "token");
    json_t *image = json_array_get(json_object_get(token, "catalog"), 1);
    ck_assert_str_eq(str_at(json_array_get(json_object_get(image, "endpoints"), 2), "url"),
                     "https://cloud.example/image");
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    strptime(str_at(token, "issued_at"), "%Y-%m-%dT%H:%M:%S", &tm);
    time_t issued = timegm(&tm);
    strptime(str_at(token, "expires_at"), "%Y-%m-%dT%H:%M:%S", &tm);
    ck_assert_int_eq(timegm(&tm) - issued, 5);
    answer_free(&a);
    csgi_app_free(app);

    /* identity on a port of its own: the services' own URLs, in v3 and v2.0 */
    app = load_ok("identity_url = http://keystone.example:5000/v3/\n"
                  "image_url = http://cloud.example/image\n");
    a = call(app, "POST", "http://cloud.test/v3/auth/tokens", body, NULL, NULL);
    ck_assert_int_eq(a.status, 201);
    json_t *catalog = json_object_get(json_object_get(a.json, "token"), "catalog");
    for (size_t i = 0; i < 3; i++) {
        json_t *endpoint =
            json_array_get(json_object_get(json_array_get(catalog, 0), "endpoints"), i);
        ck_assert_str_eq(str_at(endpoint, "url"), "http://keystone.example:5000/v3");
        endpoint = json_array_get(json_object_get(json_array_get(catalog, 1), "endpoints"), i);
        ck_assert_str_eq(str_at(endpoint, "url"), "http://cloud.example/image");
        endpoint = json_array_get(json_object_get(json_array_get(catalog, 2), "endpoints"), i);
        ck_assert_str_eq(str_at(endpoint, "url"), "http://cloud.test/compute/v2.1");
    }
    answer_free(&a);
    a = call(app, "POST", "http://cloud.test/v2.0/tokens",
             "{\"auth\": {\"tenantName\": \"admin\", \"passwordCredentials\": "
             "{\"username\": \"admin\", \"password\": \"admin-secret\"}}}",
             NULL, NULL);
    ck_assert_int_eq(a.status, 200);
    json_t *v2 =
        json_array_get(json_object_get(json_object_get(a.json, "access"), "serviceCatalog"), 0);
    ck_assert_str_eq(str_at(json_array_get(json_object_get(v2, "endpoints"), 0), "publicURL"),
                     "http://keystone.example:5000/v2.0");
    answer_free(&a);
    csgi_app_free(app);

    const char *const wrong[][2] = {
        {"token_expiration = soon\n", "token_expiration"},
        {"token_expiration = 0\n", "token_expiration"},
        {"tokens_expire = 5\n", "tokens_expire"},
        {"set signing_key_file = /nonexistent/key\n", "/nonexistent/key"},
        {"set accounts_file = /nonexistent/accounts.json\n", "/nonexistent/accounts.json"},
    };
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        char why[1024] = "";
        ck_assert_ptr_null(load(wrong[i][0], why, sizeof(why)));
        ck_assert_msg(strstr(why, wrong[i][1]) && strstr(why, "identity.ini:"), "%s: %s",
                      wrong[i][0], why);
    }
    /* a short key */
    write_text(path_key, "short");
    char why[1024] = "";
    ck_assert_ptr_null(load("", why, sizeof(why)));
    ck_assert_msg(strstr(why, "signing key") != NULL, "%s", why);
    write_text(path_key, key_bytes);

    /* users files that are wrong, each reported with the file and what */
    const char *const files[][2] = {
        {"{\"domains\": [", "line"},
        {"[]", "not a JSON object"},
        {"{\"domains\": []}", "no \"projects\" array"},
        {"{\"domains\": [{\"id\": \"d\", \"name\": \"D\"}], \"projects\": [{\"id\": \"p\", "
         "\"name\": \"P\", \"domain_id\": \"elsewhere\"}], \"roles\": [], \"users\": []}",
         "no domain \"elsewhere\""},
        {"{\"domains\": [{\"id\": \"d\", \"name\": \"D\"}, {\"id\": \"d\", \"name\": \"E\"}], "
         "\"projects\": [], \"roles\": [], \"users\": []}",
         "used twice"},
        {"{\"domains\": [{\"id\": \"d\", \"name\": \"D\"}], \"projects\": [], \"roles\": [], "
         "\"users\": [{\"id\": \"u\", \"name\": \"U\", \"domain_id\": \"d\", \"password_hash\": "
         "\"plain\"}]}",
         "password_hash"},
        {"{\"domains\": [{\"id\": \"d\", \"name\": \"D\"}], \"projects\": [{\"id\": \"p\", "
         "\"name\": \"P\", \"domain_id\": \"d\"}], \"roles\": [], \"users\": [{\"id\": \"u\", "
         "\"name\": \"U\", \"domain_id\": \"d\", \"password_hash\": \"$y$x\", \"roles\": "
         "{\"P\": [\"boss\"]}}]}",
         "no role \"boss\""},
        {"{\"domains\": [{\"id\": \"d\", \"name\": \"D\"}], \"projects\": [], \"roles\": [], "
         "\"users\": [{\"id\": \"u\", \"name\": \"U\", \"domain_id\": \"d\", \"password_hash\": "
         "\"$y$x\", \"roles\": {\"Q\": []}}]}",
         "no project \"Q\""},
        {"{\"domains\": [{\"id\": \"d\", \"name\": \"D\"}], \"projects\": [], \"roles\": [], "
         "\"users\": [{\"id\": \"u\", \"name\": \"U\", \"domain_id\": \"d\", \"password_hash\": "
         "\"$y$x\", \"default_project\": \"Q\"}]}",
         "default_project"},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        write_text(path_accounts, files[i][0]);
        ck_assert_ptr_null(load("", why, sizeof(why)));
        ck_assert_msg(strstr(why, files[i][1]) && strstr(why, path_accounts), "%s: %s", files[i][0],
                      why);
    }
    write_accounts();

    /* the filter: its keys, and state_dir required */
    char text[1024];
    snprintf(text, sizeof(text),
             "[filter-app:main]\npaste.filter_factory = imageapi:revocation_factory\n"
             "next = id\nsurprise = 1\n\n[app:id]\npaste.app_factory = "
             "imageapi:identity_factory\nstate_dir = %s\nsigning_key_file = %s\naccounts_file = "
             "%s\n",
             state, path_key, path_accounts);
    write_text(path_ini, text);
    csgi_loader *loader = NULL;
    ck_assert_int_eq(csgi_loader_new(&loader), 0);
    ck_assert_int_eq(csgi_loader_add_module_path(loader, getenv("CSGI_IMAGEAPI_DIR")), 0);
    csgi_load_error error;
    ck_assert_int_ne(csgi_loader_load_app(&app, loader, path_ini, &error), 0);
    csgi_load_error_format(&error, why, sizeof(why));
    ck_assert_msg(strstr(why, "surprise") && strstr(why, ":4"), "%s", why);
    csgi_loader_free(loader);
}
END_TEST

/* ---- imageapi-passwd ------------------------------------------------------------------------ */

START_TEST(test_passwd_tool)
{
    const char *tool = getenv("CSGI_IMAGEAPI_PASSWD");
    ck_assert_msg(tool != NULL, "CSGI_IMAGEAPI_PASSWD is set by CTest");
    char command[1024], hash[512] = "";
    snprintf(command, sizeof(command), "printf 'n3w pass\\n' | '%s'", tool);
    FILE *p = popen(command, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(fgets(hash, sizeof(hash), p));
    ck_assert_int_eq(pclose(p), 0);
    hash[strcspn(hash, "\n")] = '\0';
    ck_assert_msg(strncmp(hash, "$y$", 3) == 0, "%s", hash);
    /* an empty password is refused */
    snprintf(command, sizeof(command), "printf '\\n' | '%s' 2>/dev/null", tool);
    ck_assert_int_ne(system(command), 0);

    /* a user with that hash logs in with that password, not another */
    json_t *file = json_load_file(path_accounts, 0, NULL);
    json_object_set_new(json_array_get(json_object_get(file, "users"), 1), "password_hash",
                        json_string(hash));
    ck_assert_int_eq(json_dump_file(file, path_accounts, 0), 0);
    json_decref(file);
    csgi_app *app = load_ok("");
    char body[1024];
    password_body(body, sizeof(body), "demo", "n3w pass", "demo");
    answer a = call(app, "POST", "http://cloud.test/v3/auth/tokens", body, NULL, NULL);
    ck_assert_int_eq(a.status, 201);
    answer_free(&a);
    password_body(body, sizeof(body), "demo", "demo-secret", "demo");
    a = call(app, "POST", "http://cloud.test/v3/auth/tokens", body, NULL, NULL);
    expect_error(&a, 401, "the old password");
    answer_free(&a);
    csgi_app_free(app);
}
END_TEST

/* ---- Real sockets --------------------------------------------------------------------------- */

START_TEST(test_sockets)
{
    app_server served;
    app_server_start(&served, load_ok(""), NULL);
    char body[1024];
    password_body(body, sizeof(body), "admin", "admin-secret", "demo");
    char token[4096] = "";
    for (int split = 0; split < SPLIT_COUNT; split++) {
        int fd = client_connect(served.port);
        client_send_post(fd, "/identity/v3/auth/tokens", "Content-Type: application/json\r\n", body,
                         strlen(body), (enum body_split)split);
        test_response r;
        ck_assert_int_eq(client_response(fd, &r, 0, 10000), 0);
        close(fd);
        ck_assert_msg(r.status == 201, "%s: %d %s", body_split_names[split], r.status, r.body);
        const char *subject = response_header(&r, "X-Subject-Token");
        ck_assert_ptr_nonnull(subject);
        snprintf(token, sizeof(token), "%s", subject);
        json_t *doc = json_loads(r.body, 0, NULL);
        ck_assert_str_eq(str_at(doc, "token.project.name"), "demo");
        json_decref(doc);
        response_free(&r);
    }
    /* validate over the socket, then revoke, then 404 */
    const char *methods[] = {"GET", "DELETE", "GET"};
    const int expected[] = {200, 204, 404};
    for (int i = 0; i < 3; i++) {
        int fd = client_connect(served.port);
        char head[10000];
        snprintf(head, sizeof(head),
                 "%s /v3/auth/tokens HTTP/1.1\r\nHost: cloud.test\r\nX-Auth-Token: %s\r\n"
                 "X-Subject-Token: %s\r\n\r\n",
                 methods[i], i == 2 ? "" : token, token);
        if (i == 2) {
            /* a fresh token to ask with: the revoked one cannot */
            char fresh[4096];
            csgi_app *issuer = load_ok("");
            issue(issuer, "demo", "demo-secret", "demo", fresh, sizeof(fresh));
            csgi_app_free(issuer);
            snprintf(head, sizeof(head),
                     "GET /v3/auth/tokens HTTP/1.1\r\nHost: cloud.test\r\nX-Auth-Token: %s\r\n"
                     "X-Subject-Token: %s\r\n\r\n",
                     fresh, token);
        }
        ck_assert_int_eq(client_send_str(fd, head), 0);
        test_response r;
        ck_assert_int_eq(client_response(fd, &r, 0, 10000), 0);
        close(fd);
        ck_assert_msg(r.status == expected[i], "%s: %d %s", methods[i], r.status, r.body);
        response_free(&r);
    }
    /* a wrong password: keystone's 401 */
    password_body(body, sizeof(body), "admin", "not-it", "demo");
    int fd = client_connect(served.port);
    client_send_post(fd, "/v3/auth/tokens", "", body, strlen(body), SPLIT_BYTE_BY_BYTE);
    test_response r;
    ck_assert_int_eq(client_response(fd, &r, 0, 10000), 0);
    close(fd);
    ck_assert_int_eq(r.status, 401);
    ck_assert_ptr_nonnull(strstr(r.body, "requires authentication"));
    ck_assert_ptr_nonnull(strstr(response_header(&r, "WWW-Authenticate"), "Keystone uri="));
    response_free(&r);
    app_server_stop(&served);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("imageapi_identity");
    TCase *tc = tcase_create("identity");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_versions);
    tcase_add_test(tc, test_issue_by_names);
    tcase_add_test(tc, test_issue_by_ids_and_scopes);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_validate);
    tcase_add_test(tc, test_revoke);
    tcase_add_test(tc, test_behind_auth_token);
    tcase_add_test(tc, test_v2_tokens);
    tcase_add_test(tc, test_conf);
    tcase_add_test(tc, test_passwd_tool);
    tcase_add_test(tc, test_sockets);
    suite_add_tcase(s, tc);
    SRunner *runner = srunner_create(s);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
