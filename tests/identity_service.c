/*
 * The identity service of identity_service.h: a handler application
 * answering keystone's /v3/auth/tokens.
 */
#include "identity_service.h"

#include <jansson.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

typedef struct user {
    const char *name, *password, *id, *project, *project_id, *roles;
} user;

static const user users[] = {
    {"admin", "secret-admin", "u-admin", "admin", "p-admin", "admin,member,reader"},
    {"glance", "secret-glance", "u-glance", "service", "p-service", "service,admin"},
    {"demo", "secret-demo", "u-demo", "demo", "p-demo", "member,reader"},
};
#define USER_COUNT (sizeof(users) / sizeof(users[0]))

typedef struct issued {
    char token[33];
    const user *user;
    time_t expires;
    int revoked;
} issued;

#define MAX_TOKENS 4096
static issued tokens[MAX_TOKENS];
static int token_count;
static int lifetime = 3600;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int validations, issues, mode;

int identity_service_validations(void)
{
    return atomic_load(&validations);
}

int identity_service_issued(void)
{
    return atomic_load(&issues);
}

void identity_service_set_mode(identity_mode m)
{
    atomic_store(&mode, (int)m);
}

void identity_service_set_lifetime(int seconds)
{
    pthread_mutex_lock(&lock);
    lifetime = seconds;
    pthread_mutex_unlock(&lock);
}

void identity_service_reset(void)
{
    pthread_mutex_lock(&lock);
    token_count = 0;
    pthread_mutex_unlock(&lock);
    atomic_store(&validations, 0);
    atomic_store(&issues, 0);
    atomic_store(&mode, IDENTITY_NORMAL);
}

static const user *find_user(const char *name)
{
    for (size_t i = 0; name && i < USER_COUNT; i++)
        if (strcmp(users[i].name, name) == 0)
            return &users[i];
    return NULL;
}

int identity_service_issue(const char *name, char *out, size_t size)
{
    const user *u = find_user(name);
    unsigned char random[16];
    if (!u || size < 33 || getrandom(random, sizeof(random), 0) != (ssize_t)sizeof(random))
        return -1;
    pthread_mutex_lock(&lock);
    if (token_count == MAX_TOKENS) {
        pthread_mutex_unlock(&lock);
        return -1;
    }
    issued *t = &tokens[token_count++];
    for (int i = 0; i < 16; i++)
        snprintf(t->token + 2 * i, 3, "%02x", random[i]);
    t->user = u;
    t->expires = time(NULL) + lifetime;
    t->revoked = 0;
    snprintf(out, size, "%s", t->token);
    pthread_mutex_unlock(&lock);
    atomic_fetch_add(&issues, 1);
    return 0;
}

/* A copy of the token's entry when it is live. */
static int lookup(const char *token, issued *out)
{
    int found = 0;
    pthread_mutex_lock(&lock);
    for (int i = 0; token && i < token_count && !found; i++)
        if (strcmp(tokens[i].token, token) == 0 && !tokens[i].revoked &&
            tokens[i].expires > time(NULL)) {
            *out = tokens[i];
            found = 1;
        }
    pthread_mutex_unlock(&lock);
    return found;
}

static void revoke(const char *token)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; token && i < token_count; i++)
        if (strcmp(tokens[i].token, token) == 0)
            tokens[i].revoked = 1;
    pthread_mutex_unlock(&lock);
}

/* keystone's token document for an issued token. */
static json_t *document(const issued *t)
{
    char expires[32];
    struct tm tm;
    gmtime_r(&t->expires, &tm);
    strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%S.000000Z", &tm);
    json_t *roles = json_array();
    char names[128];
    snprintf(names, sizeof(names), "%s", t->user->roles);
    char *save = NULL;
    for (char *r = strtok_r(names, ",", &save); r; r = strtok_r(NULL, ",", &save))
        json_array_append_new(roles, json_pack("{s:s, s:s}", "id", r, "name", r));
    json_t *domain = json_pack("{s:s, s:s}", "id", "default", "name", "Default");
    json_t *catalog = json_pack("[{s:s, s:s, s:[{s:s, s:s, s:s}]}]", "type", "image", "name",
                                "glance", "endpoints", "interface", "public", "region", "RegionOne",
                                "url", "http://127.0.0.1:9292");
    return json_pack("{s:{s:s, s:[s], s:{s:s, s:s, s:O}, s:{s:s, s:s, s:o}, s:o, s:b, s:o}}",
                     "token", "expires_at", expires, "methods", "password", "user", "id",
                     t->user->id, "name", t->user->name, "domain", domain, "project", "id",
                     t->user->project_id, "name", t->user->project, "domain", domain, "roles",
                     roles, "is_admin_project", strcmp(t->user->name, "admin") == 0, "catalog",
                     catalog);
}

static csgi_response *keystone_error(csgi_request *request, int code, const char *title,
                                     const char *message)
{
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_status(response, code) != 0 ||
        csgi_response_set_json(response, json_pack("{s:{s:i, s:s, s:s}}", "error", "code", code,
                                                   "title", title, "message", message)) != 0)
        return NULL;
    return response;
}

static csgi_response *unauthorized(csgi_request *request)
{
    return keystone_error(request, 401, "Unauthorized",
                          "The request you have made requires authentication.");
}

static csgi_response *authenticate(csgi_request *request)
{
    json_t *body;
    csgi_response *error = NULL;
    if (csgi_handler_json(request, 65536, &body, &error) != 0)
        return error;
    json_t *u = json_object_get(
        json_object_get(json_object_get(json_object_get(body, "auth"), "identity"), "password"),
        "user");
    const user *found = find_user(json_string_value(json_object_get(u, "name")));
    const char *password = json_string_value(json_object_get(u, "password"));
    if (!found || !password || strcmp(found->password, password) != 0)
        return unauthorized(request);
    char token[33];
    issued t;
    if (identity_service_issue(found->name, token, sizeof(token)) != 0 || !lookup(token, &t))
        return NULL;
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_status(response, 201) != 0 ||
        csgi_response_set_header(response, "X-Subject-Token", token) != 0 ||
        csgi_response_set_json(response, document(&t)) != 0)
        return NULL;
    return response;
}

static void never(void *state)
{
    (void)state; /* the caller gave up: nothing to stop */
}

static csgi_response *validate(csgi_request *request, const char *method)
{
    issued caller, subject;
    if (!lookup(csgi_request_header(request, "X-Auth-Token", NULL), &caller))
        return unauthorized(request);
    const char *token = csgi_request_header(request, "X-Subject-Token", NULL);
    if (strcmp(method, "DELETE") == 0) {
        revoke(token);
        csgi_response *response = csgi_handler_response(request);
        if (response)
            csgi_response_set_status(response, 204);
        return response;
    }
    atomic_fetch_add(&validations, 1);
    switch ((identity_mode)atomic_load(&mode)) {
    case IDENTITY_FAIL:
        return keystone_error(request, 500, "Internal Server Error", "something broke");
    case IDENTITY_NONSENSE: {
        csgi_response *response = csgi_handler_response(request);
        if (response && csgi_response_set_text(response, "<html>not a token</html>", NULL) != 0)
            return NULL;
        return response;
    }
    case IDENTITY_HANG: {
        csgi_handler_later *later;
        return csgi_handler_wait(request, &later, never, NULL);
    }
    case IDENTITY_NORMAL: break;
    }
    if (!lookup(token, &subject))
        return keystone_error(request, 404, "Not Found", "Could not find token.");
    csgi_response *response = csgi_handler_response(request);
    if (!response || csgi_response_set_header(response, "X-Subject-Token", token) != 0 ||
        csgi_response_set_json(response, document(&subject)) != 0)
        return NULL;
    return response;
}

static csgi_response *identity(csgi_request *request, void *userdata)
{
    (void)userdata;
    const char *method = csgi_request_method(request);
    size_t len;
    const char *path = csgi_request_path_info(request, &len);
    if (!path || strcmp(path, "/v3/auth/tokens") != 0)
        return keystone_error(request, 404, "Not Found", "no such resource");
    if (strcmp(method, "POST") == 0)
        return authenticate(request);
    return validate(request, method);
}

csgi_app *identity_service_new(void)
{
    csgi_app *app = NULL;
    if (csgi_handler_app(&app, "identity", identity, NULL, NULL) != 0)
        return NULL;
    return app;
}
