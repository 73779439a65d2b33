/*
 * keystonemiddleware's auth_token as a csgi filter, with its INI factory
 * (egg:keystonemiddleware#auth_token, keystonemiddleware.auth_token:
 * filter_factory).
 *
 * For each request: every identity header a client sent is removed first
 * (X-Identity-Status, X-User-Id, X-Roles, X-Service-*, ...: only this
 * filter sets them), then X-Auth-Token (and X-Service-Token) are
 * validated: from the cache, from the local sources (a tokens file,
 * signed tokens), else by the identity service (auth_token_remote.c),
 * waiting for its answer without holding the loop. A valid token's facts
 * become the headers the service behind reads; an invalid or missing one
 * gets 401 with WWW-Authenticate: Keystone uri="...", or, with
 * delay_auth_decision, X-Identity-Status: Invalid and the request goes on.
 * An identity service that cannot answer gets 503: never a pass.
 */
#include "common/alloc.h"
#include "gateway/environ_private.h"
#include "middleware/auth_token.h"
#include "middleware/middleware.h"

#include <csgi/auth_token.h>
#include <csgi/handler.h>
#include <csgi/server.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct auth_filter {
    bool delay_auth_decision;
    bool include_service_catalog;
    bool service_roles_required;
    char *www_authenticate; /* the 401's WWW-Authenticate value */
    int64_t cache_ms;       /* token_cache_time; 0: no cache */
    auth_cache *cache;
    auth_local *local;
    auth_remote *remote; /* NULL: no identity service */
    char **service_roles;
    size_t service_role_count;
} auth_filter;

/* What a request's token turned out to be. */
enum { ABSENT = 3 };

/* One request's check: the user's token, then the service token. */
typedef struct check {
    const auth_filter *filter;
    csgi_request *request;
    csgi_app *next;
    const char *token[2]; /* user, service (NULL: absent) */
    size_t len[2];
    int status[2]; /* AUTH_VALID, AUTH_INVALID, ABSENT, or an error */
    bool roles_ok; /* the service token has service_token_roles */
    int phase;     /* the token being checked */
    csgi_handler_later *later;
    auth_call *call;
    bool on_stack; /* the handler's own: kept in the request's memory to wait */
} check;

/* Every header only auth_token sets, whatever the client sent; by length,
   as csgi_environ__remove_keys searches them. */
#define KEY(name)              \
    {                          \
        name, sizeof(name) - 1 \
    }
static const csgi_environ__key strip_keys[] = {
    KEY("HTTP_X_USER"),
    KEY("HTTP_X_ROLE"),
    KEY("HTTP_X_ROLES"),
    KEY("HTTP_X_TENANT"),
    KEY("HTTP_X_USER_ID"),
    KEY("HTTP_X_USER_NAME"),
    KEY("HTTP_X_DOMAIN_ID"),
    KEY("HTTP_X_TENANT_ID"),
    KEY("HTTP_X_PROJECT_ID"),
    KEY("HTTP_X_DOMAIN_NAME"),
    KEY("HTTP_X_TENANT_NAME"),
    KEY("HTTP_X_PROJECT_NAME"),
    KEY("HTTP_X_SYSTEM_SCOPE"),
    KEY("HTTP_X_SERVICE_ROLES"),
    KEY("HTTP_X_USER_DOMAIN_ID"),
    KEY("HTTP_X_IDENTITY_STATUS"),
    KEY("HTTP_X_SERVICE_CATALOG"),
    KEY("HTTP_X_SERVICE_USER_ID"),
    KEY("HTTP_X_USER_DOMAIN_NAME"),
    KEY("HTTP_X_IS_ADMIN_PROJECT"),
    KEY("HTTP_X_PROJECT_DOMAIN_ID"),
    KEY("HTTP_X_SERVICE_USER_NAME"),
    KEY("HTTP_X_SERVICE_DOMAIN_ID"),
    KEY("HTTP_X_SERVICE_PROJECT_ID"),
    KEY("HTTP_X_PROJECT_DOMAIN_NAME"),
    KEY("HTTP_X_SERVICE_DOMAIN_NAME"),
    KEY("HTTP_X_SERVICE_PROJECT_NAME"),
    KEY("HTTP_X_SERVICE_SYSTEM_SCOPE"),
    KEY("HTTP_X_SERVICE_USER_DOMAIN_ID"),
    KEY("HTTP_X_SERVICE_IDENTITY_STATUS"),
    KEY("HTTP_X_SERVICE_USER_DOMAIN_NAME"),
    KEY("HTTP_X_SERVICE_IS_ADMIN_PROJECT"),
    KEY("HTTP_X_SERVICE_PROJECT_DOMAIN_ID"),
    KEY("HTTP_X_SERVICE_PROJECT_DOMAIN_NAME"),
};

static int strip_identity(csgi_environ *environ)
{
    return csgi_environ__remove_keys(environ, "HTTP_X_", strip_keys,
                                     sizeof(strip_keys) / sizeof(strip_keys[0]));
}

/* ---- A valid token's headers -------------------------------------------------------- */

/* use for the cache, and for fresh identities: the token's headers. The
   identity is copied once into the request's memory (a cached one may go
   while the request runs), and the headers point into the copy. */
static int apply(auth_identity *identity, void *userdata)
{
    check *c = userdata;
    csgi_environ *environ = csgi_request_environ(c->request);
    /* The headers' values are the identity's strings: the request holds it
       until it ends (a cached one may go meanwhile). */
    __atomic_add_fetch(&identity->refs, 1, __ATOMIC_RELAXED);
    if (csgi_environ_defer(environ, auth_token__identity_unref, identity) != 0) {
        auth_token__identity_unref(identity);
        return CSGI_ENOMEM;
    }
    /* The keys were stripped: they are set in one call, no search. */
    if (c->phase == 0) {
        size_t n = identity->header_count;
        if (identity->catalog_last && !c->filter->include_service_catalog)
            n--;
        return csgi_environ__append_borrowed_many(environ, identity->header_key,
                                                  identity->header_value, identity->header_len, n);
    }
    csgi_environ__key keys[AUTH_FIELD_COUNT];
    const char *values[AUTH_FIELD_COUNT];
    size_t lens[AUTH_FIELD_COUNT], n = 0;
    for (int f = 0; f < AUTH_FIELD_COUNT; f++) {
        const auth_field_keys *k = &auth_token__fields[f];
        if (!k->service || !identity->value[f])
            continue;
        keys[n].name = k->service;
        keys[n].len = k->service_len;
        values[n] = identity->value[f];
        lens[n++] = identity->len[f];
    }
    c->roles_ok = auth_token__has_roles(identity, (const char *const *)c->filter->service_roles,
                                        c->filter->service_role_count);
    return csgi_environ__append_borrowed_many(environ, keys, values, lens, n);
}

/* Record what was learnt of the current token, and keep it. identity
   taken (NULL: invalid). */
static int learnt(check *c, int status, auth_identity *identity)
{
    const auth_filter *f = c->filter;
    int rc = 0;
    if (identity)
        rc = apply(identity, c);
    c->status[c->phase] = status;
    if (f->cache && (status == AUTH_VALID || status == AUTH_INVALID))
        auth_token__cache_put(f->cache, c->token[c->phase], c->len[c->phase], identity,
                              f->cache_ms);
    else
        auth_token__identity_unref(identity);
    return rc;
}

/* ---- The answer ------------------------------------------------------------------------ */

static csgi_response *error_json(csgi_request *request, int status, const char *title,
                                 const char *message)
{
    csgi_response *response = csgi_handler_response(request);
    json_t *body = json_pack("{s:{s:i, s:s, s:s}}", "error", "code", status, "title", title,
                             "message", message);
    if (!response || !body || csgi_response_set_status(response, status) != 0 ||
        csgi_response_set_json(response, body) != 0)
        return NULL;
    return response;
}

static csgi_response *refuse(check *c)
{
    csgi_response *response = error_json(c->request, 401, "Unauthorized",
                                         "The request you have made requires "
                                         "authentication.");
    if (response &&
        csgi_response_set_header(response, "WWW-Authenticate", c->filter->www_authenticate) != 0)
        return NULL;
    return response;
}

/* X-Identity-Status (or X-Service-Identity-Status): key was stripped. */
static int status_header(csgi_environ *environ, const char *key, size_t key_len, bool ok)
{
    return ok ? csgi_environ__append_borrowed(environ, key, key_len, "Confirmed", 9)
              : csgi_environ__append_borrowed(environ, key, key_len, "Invalid", 7);
}

static csgi_response *decide(check *c)
{
    const auth_filter *f = c->filter;
    csgi_environ *environ = csgi_request_environ(c->request);
    for (int i = 0; i < 2; i++)
        if (c->status[i] < 0) {
            csgi_environ_log(environ, "auth_token: cannot validate a token: %s",
                             csgi_strerror(c->status[i]));
            return error_json(c->request, 503, "Service Unavailable",
                              "The identity service cannot validate the token now; try again "
                              "later.");
        }
    bool user_ok = c->status[0] == AUTH_VALID;
    bool service_ok = c->status[1] == AUTH_VALID && (c->roles_ok || !f->service_roles_required);
    if (c->status[1] == AUTH_VALID && !c->roles_ok)
        csgi_environ_log_at(environ, CSGI_LOG_WARNING,
                            "auth_token: a service token without the service_token_roles%s",
                            f->service_roles_required ? ": refused" : "");
    if (!f->delay_auth_decision && (!user_ok || (c->status[1] != ABSENT && !service_ok)))
        return refuse(c);
    /* Stripped at the start, set once here: static strings, no copy. */
    if (status_header(environ, "HTTP_X_IDENTITY_STATUS", sizeof("HTTP_X_IDENTITY_STATUS") - 1,
                      user_ok) != 0 ||
        (c->status[1] != ABSENT &&
         status_header(environ, "HTTP_X_SERVICE_IDENTITY_STATUS",
                       sizeof("HTTP_X_SERVICE_IDENTITY_STATUS") - 1, service_ok) != 0))
        return NULL;
    return csgi_handler_forward(c->request, c->next);
}

/* ---- Checking the tokens ---------------------------------------------------------------- */

static csgi_response *step(csgi_request *request, check *c);

static csgi_response *resume_step(csgi_request *request, void *state)
{
    return step(request, state);
}

static void remote_done(void *userdata, int status, auth_identity *identity)
{
    check *c = userdata;
    c->call = NULL;
    if (learnt(c, status, identity) != 0)
        c->status[c->phase] = CSGI_ENOMEM;
    c->phase++;
    csgi_handler_resume(c->later, resume_step, c);
}

static void cancel_call(void *state)
{
    check *c = state;
    auth_token__remote_cancel(c->call);
    c->call = NULL;
}

/* Check the tokens from the current one on; wait when the identity
   service must say. */
static csgi_response *step(csgi_request *request, check *c)
{
    const auth_filter *f = c->filter;
    for (; c->phase < 2; c->phase++) {
        const char *token = c->token[c->phase];
        size_t len = c->len[c->phase];
        if (!token) {
            c->status[c->phase] = ABSENT;
            continue;
        }
        int rc = 0, found = AUTH_MISS;
        if (f->cache)
            found = auth_token__cache_find(f->cache, token, len, apply, c, &rc);
        if (found != AUTH_MISS) {
            c->status[c->phase] = rc != 0 ? rc : found;
            continue;
        }
        auth_identity *identity = NULL;
        found = auth_token__local_check(f->local, token, len, &identity);
        if (found == AUTH_MISS && f->remote) {
            if (c->on_stack) { /* the answer comes after the handler returned */
                check *kept = csgi_environ_alloc(csgi_request_environ(request), sizeof(*kept));
                if (!kept)
                    return NULL;
                *kept = *c;
                kept->on_stack = false;
                c = kept;
            }
            csgi_response *waiting = csgi_handler_wait(request, &c->later, cancel_call, c);
            c->call = waiting
                          ? auth_token__remote_check(f->remote, request, token, len, remote_done, c)
                          : NULL;
            return c->call ? waiting : NULL;
        }
        if (found < 0)
            return NULL;
        if (learnt(c, found == AUTH_MISS ? AUTH_INVALID : found, identity) != 0)
            return NULL;
    }
    return decide(c);
}

/* A token header's value (key: its environ key), or NULL when absent or
   empty. */
static const char *token_of(csgi_environ *environ, const char *key, size_t *len)
{
    const char *value = csgi_environ_get_n(environ, key, len);
    return value && *len ? value : NULL;
}

static csgi_response *auth_token(csgi_request *request, csgi_app *next, void *userdata)
{
    csgi_environ *environ = csgi_request_environ(request);
    check stack = {.on_stack = true}, *c = &stack;
    if (strip_identity(environ) != 0)
        return NULL;
    c->filter = userdata;
    c->request = request;
    c->next = next;
    c->token[0] = token_of(environ, "HTTP_X_AUTH_TOKEN", &c->len[0]);
    if (!c->token[0])
        c->token[0] = token_of(environ, "HTTP_X_STORAGE_TOKEN", &c->len[0]);
    c->token[1] = token_of(environ, "HTTP_X_SERVICE_TOKEN", &c->len[1]);
    return step(request, c);
}

/* ---- INI factory ------------------------------------------------------------------------- */

static void auth_filter_destroy(void *userdata)
{
    auth_filter *f = userdata;
    if (!f)
        return;
    auth_token__cache_free(f->cache);
    auth_token__local_free(f->local);
    auth_token__remote_free(f->remote);
    for (size_t i = 0; i < f->service_role_count; i++)
        csgi__free(f->service_roles[i]);
    csgi__free(f->service_roles);
    csgi__free(f->www_authenticate);
    csgi__free(f);
}

static const char *const known[] = {
    "delay_auth_decision", "www_authenticate_uri", "auth_uri", "include_service_catalog",
    "token_cache_time", "token_cache_size", "service_token_roles", "service_token_roles_required",
    "tokens_file", "signing_key_file",
    /* the identity service */
    "auth_url", "auth_type", "username", "user_id", "password", "project_name", "project_id",
    "user_domain_name", "user_domain_id", "project_domain_name", "project_domain_id",
    "http_connect_timeout", "http_request_timeout", "http_request_max_retries", "cafile",
    "insecure", NULL};

/* The items of a list value: oslo.config lists are comma separated,
   PasteDeploy's whitespace separated; both are taken. Owned, each item too. */
static int split_list(const char *text, char ***items, size_t *count)
{
    *items = NULL;
    *count = 0;
    size_t max = 1;
    for (const char *p = text; *p; p++)
        max += *p == ',' || *p == ' ' || *p == '\t';
    char **out = csgi__calloc(max, sizeof(*out));
    if (!out)
        return CSGI_ENOMEM;
    size_t n = 0;
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, ", \t");
        if (len && !(out[n++] = csgi__strndup(p, len))) {
            for (size_t i = 0; i + 1 < n; i++)
                csgi__free(out[i]);
            csgi__free(out);
            return CSGI_ENOMEM;
        }
        p += len + (p[len] != '\0');
    }
    *items = out;
    *count = n;
    return 0;
}

static void free_list(char **items, size_t count)
{
    for (size_t i = 0; i < count; i++)
        csgi__free(items[i]);
    csgi__free(items);
}

/* A key file's bytes (one final newline dropped), or an error at name. */
static int read_key(const csgi_conf *conf, const char *path, char **key, size_t *len,
                    csgi_load_error *error)
{
    FILE *file = fopen(path, "rb");
    char buf[4096];
    size_t n = file ? fread(buf, 1, sizeof(buf), file) : 0;
    int failed = !file || ferror(file) || !feof(file);
    if (file)
        fclose(file);
    if (failed) {
        csgi_conf_error(conf, "signing_key_file", error, "cannot read %s (or it is over 4 KiB)",
                        path);
        return CSGI_EINVAL;
    }
    if (n && buf[n - 1] == '\n')
        n--;
    if (n < CSGI_AUTH_TOKEN_MIN_KEY) {
        csgi_conf_error(conf, "signing_key_file", error,
                        "%s holds %zu bytes: a signing key needs at least %d", path, n,
                        CSGI_AUTH_TOKEN_MIN_KEY);
        return CSGI_EINVAL;
    }
    *len = n;
    *key = csgi__malloc(n);
    if (*key)
        memcpy(*key, buf, n);
    return *key ? 0 : CSGI_ENOMEM;
}

static int setup_local(auth_filter *f, const csgi_conf *conf, csgi_load_error *error)
{
    const char *tokens_file = csgi_conf_get(conf, "tokens_file");
    const char *key_files = csgi_conf_get(conf, "signing_key_file");
    if (!tokens_file && !key_files)
        return 0;
    char **paths = NULL, **keys = NULL;
    size_t count = 0, *lens = NULL;
    int rc = key_files ? split_list(key_files, &paths, &count) : 0;
    if (rc == 0 && count &&
        (!(keys = csgi__calloc(count, sizeof(*keys))) ||
         !(lens = csgi__calloc(count, sizeof(*lens)))))
        rc = CSGI_ENOMEM;
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = read_key(conf, paths[i], &keys[i], &lens[i], error);
    char text[256] = "";
    if (rc == 0 && (rc = auth_token__local_new(&f->local, tokens_file, keys, lens, count, text,
                                               sizeof(text))) == CSGI_EINVAL)
        csgi_conf_error(conf, "tokens_file", error, "%s", text);
    free_list(paths, count);
    for (size_t i = 0; keys && i < count; i++)
        if (keys[i]) {
            OPENSSL_cleanse(keys[i], lens[i]);
            csgi__free(keys[i]);
        }
    csgi__free(keys);
    csgi__free(lens);
    return rc;
}

static int setup_filter(auth_filter *f, const csgi_conf *conf, csgi_load_error *error)
{
    int rc, delay, catalog, required;
    long long cache_time, cache_size;
    if ((rc = csgi_conf_asbool(conf, "delay_auth_decision", 0, &delay, error)) != 0 ||
        (rc = csgi_conf_asbool(conf, "include_service_catalog", 1, &catalog, error)) != 0 ||
        (rc = csgi_conf_asbool(conf, "service_token_roles_required", 0, &required, error)) != 0 ||
        (rc = csgi_conf_asint(conf, "token_cache_time", 300, &cache_time, error)) != 0 ||
        (rc = csgi_conf_asint(conf, "token_cache_size", 10000, &cache_size, error)) != 0)
        return rc;
    if (cache_time > 86400 * 365 || cache_size < 1 || cache_size > 10000000) {
        csgi_conf_error(
            conf, cache_size < 1 || cache_size > 10000000 ? "token_cache_size" : "token_cache_time",
            error, "is out of range");
        return CSGI_EINVAL;
    }
    f->delay_auth_decision = delay;
    f->include_service_catalog = catalog;
    f->service_roles_required = required;
    f->cache_ms = cache_time > 0 ? cache_time * 1000 : 0;
    if (f->cache_ms && (rc = auth_token__cache_new(&f->cache, (size_t)cache_size)) != 0)
        return rc;
    const char *roles = csgi_conf_get(conf, "service_token_roles");
    if ((rc = split_list(roles ? roles : "service", &f->service_roles, &f->service_role_count)) !=
        0)
        return rc;
    const char *uri = csgi_conf_get(conf, "www_authenticate_uri");
    if (!uri)
        uri = csgi_conf_get(conf, "auth_uri"); /* its older name */
    char value[1024];
    if (uri && (strpbrk(uri, "\"\\\r\n") || strlen(uri) > 900)) {
        csgi_conf_error(
            conf, csgi_conf_get(conf, "www_authenticate_uri") ? "www_authenticate_uri" : "auth_uri",
            error, "is not a usable URI");
        return CSGI_EINVAL;
    }
    snprintf(value, sizeof(value), uri ? "Keystone uri=\"%s\"" : "Keystone", uri ? uri : "");
    if (!(f->www_authenticate = csgi__strndup(value, strlen(value))))
        return CSGI_ENOMEM;
    if ((rc = setup_local(f, conf, error)) != 0)
        return rc;
    return auth_token__remote_new(&f->remote, conf, f->include_service_catalog, error);
}

static int auth_setup(void **userdata, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                      const csgi_conf *conf, csgi_load_error *error)
{
    (void)global_conf;
    int rc = csgi_middleware__known_keys(conf, "auth_token", known, error);
    if (rc != 0)
        return rc;
    auth_filter *f = csgi__calloc(1, sizeof(*f));
    if (!f)
        return CSGI_ENOMEM;
    if ((rc = setup_filter(f, conf, error)) != 0) {
        auth_filter_destroy(f);
        return rc;
    }
    *userdata = f;
    *destroy = auth_filter_destroy;
    return 0;
}

int csgi_auth_token__filter_factory(csgi_app **out, csgi_loader *loader,
                                    const csgi_conf *global_conf, const csgi_conf *local_conf,
                                    csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    return csgi_handler_filter_factory(out, global_conf, local_conf, next, "auth_token", auth_token,
                                       auth_setup, error);
}
