/*
 * auth_token's calls to the identity service, on the request's loop
 * (csgi/client.h): the service's own token first (password
 * authentication with the filter's credentials, POST /v3/auth/tokens,
 * kept until shortly before it expires and shared by the process's
 * loops), then GET /v3/auth/tokens with X-Auth-Token: that token and
 * X-Subject-Token: the token to check. 200 is a valid token, 404 an
 * invalid one; anything else (an error status, a body that is not a
 * token, a connection that fails or hangs) means the service cannot say,
 * and the request gets 503.
 *
 * Each call has a client of its own, freed with the request: the loops
 * that run requests come and go (the test client runs one per request),
 * and a client must not outlive its loop. The connection made for the
 * service token is reused for the validation.
 */
#include "common/alloc.h"
#include "middleware/auth_token.h"

#include <csgi/client.h>
#include <csgi/handler.h>

#include <jansson.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_BODY       (1024 * 1024) /* a token document with a large catalog */
#define SERVICE_MARGIN 60            /* renew the service token this many seconds early */

struct auth_remote {
    char *tokens_url;
    char *auth_body; /* the service's password authentication, as JSON */
    char *ca_file;
    csgi_client_options options;
    int retries;
    int with_catalog;
    pthread_mutex_t lock; /* the service token, shared by the loops */
    char *service_token;
    int64_t service_expires;
};

enum { FETCH, VALIDATE };

struct auth_call {
    auth_remote *remote;
    csgi_environ *environ;
    csgi_client *client;
    csgi_client_request *request;
    char *token; /* the token checked, a copy (NUL-terminated) */
    char *service_token;
    int phase;
    int refreshed; /* the service token was renewed after a 401 */
    int attempts;
    int status;
    char *subject; /* X-Subject-Token of the service's authentication */
    char *body;
    size_t body_len;
    auth_remote_done_fn done;
    void *userdata;
};

/* ---- The service token --------------------------------------------------------------- */

/* A copy of the service token while it has time left, or NULL. */
static char *service_token(auth_remote *remote, csgi_environ *environ)
{
    char *copy = NULL;
    pthread_mutex_lock(&remote->lock);
    if (remote->service_token && remote->service_expires - SERVICE_MARGIN > (int64_t)time(NULL))
        copy = csgi_environ_alloc(environ, strlen(remote->service_token) + 1);
    if (copy)
        strcpy(copy, remote->service_token);
    pthread_mutex_unlock(&remote->lock);
    return copy;
}

static void keep_service_token(auth_remote *remote, const char *token, int64_t expires)
{
    char *copy = token ? csgi__strndup(token, strlen(token)) : NULL;
    pthread_mutex_lock(&remote->lock);
    csgi__free(remote->service_token);
    remote->service_token = copy;
    remote->service_expires = copy ? expires : 0;
    pthread_mutex_unlock(&remote->lock);
}

/* ---- One call ---------------------------------------------------------------------------- */

static int start(auth_call *call);

static void finish(auth_call *call, int status, auth_identity *identity)
{
    call->request = NULL;
    auth_remote_done_fn done = call->done;
    call->done = NULL;
    done(call->userdata, status, identity);
}

static int on_head(csgi_client_request *request, const csgi_client_response *response,
                   void *userdata)
{
    (void)request;
    auth_call *call = userdata;
    call->status = response->status;
    call->body_len = 0;
    if (call->phase == FETCH) {
        size_t len = 0;
        const char *subject = csgi_client_response_header(response, "X-Subject-Token", &len);
        if (subject && !(call->subject = csgi_environ_alloc(call->environ, len + 1)))
            return CSGI_ENOMEM;
        if (subject) {
            memcpy(call->subject, subject, len);
            call->subject[len] = '\0';
        }
    }
    if (response->content_length > MAX_BODY)
        return CSGI_ETOOBIG;
    return 0;
}

static int on_data(csgi_client_request *request, const void *data, size_t len, void *userdata)
{
    (void)request;
    auth_call *call = userdata;
    if (call->body_len + len > MAX_BODY)
        return CSGI_ETOOBIG;
    char *grown = csgi__realloc(call->body, call->body_len + len + 1);
    if (!grown)
        return CSGI_ENOMEM;
    call->body = grown;
    memcpy(call->body + call->body_len, data, len);
    call->body_len += len;
    call->body[call->body_len] = '\0';
    return 0;
}

/* The answer to the service's authentication. */
static int fetched(auth_call *call)
{
    auth_identity *identity = NULL;
    json_t *document = call->status == 201 || call->status == 200
                           ? json_loadb(call->body, call->body_len, 0, NULL)
                           : NULL;
    int rc = document && call->subject ? auth_token__identity(&identity, document, 0) : CSGI_EIO;
    json_decref(document);
    if (rc != 0) {
        csgi_environ_log(call->environ,
                         "auth_token: the identity service did not give the service a token "
                         "(status %d): check auth_url and the service's credentials",
                         call->status);
        return rc == CSGI_ENOMEM ? rc : CSGI_EIO;
    }
    keep_service_token(call->remote, call->subject, identity->expires);
    call->service_token = call->subject;
    csgi__free(identity);
    call->phase = VALIDATE;
    call->attempts = 0;
    return start(call);
}

/* The answer to the validation; 1 when the call went on (a new service
   token is being fetched). */
static int validated(auth_call *call, int *status, auth_identity **identity)
{
    *identity = NULL;
    if (call->status == 404) {
        *status = AUTH_INVALID;
        return 0;
    }
    if ((call->status == 401 || call->status == 403) && !call->refreshed) {
        /* The service's token was revoked or expired early: once more with a
           new one. */
        call->refreshed = 1;
        keep_service_token(call->remote, NULL, 0);
        call->phase = FETCH;
        call->attempts = 0;
        *status = start(call);
        return *status == 0;
    }
    json_t *document = call->status == 200 ? json_loadb(call->body, call->body_len, 0, NULL) : NULL;
    int rc =
        document ? auth_token__identity(identity, document, call->remote->with_catalog) : CSGI_EIO;
    json_decref(document);
    if (rc != 0)
        csgi_environ_log(call->environ,
                         "auth_token: the identity service answered a validation with status %d "
                         "and %s",
                         call->status, call->status == 200 ? "no token document" : "no token");
    *status = rc == 0 ? AUTH_VALID : rc == CSGI_ENOMEM ? rc : CSGI_EIO;
    return 0;
}

static void on_done(csgi_client_request *request, int result, void *userdata)
{
    (void)request;
    auth_call *call = userdata;
    call->request = NULL;
    if (result == CSGI_ECONNECT && ++call->attempts <= call->remote->retries) {
        if ((result = start(call)) == 0)
            return;
    }
    if (result != 0) {
        csgi_environ_log(call->environ, "auth_token: cannot reach the identity service at %s: %s",
                         call->remote->tokens_url, csgi_strerror(result));
        finish(call, result, NULL);
        return;
    }
    int status;
    auth_identity *identity = NULL;
    if (call->phase == FETCH) {
        if ((status = fetched(call)) != 0)
            finish(call, status, NULL);
        return;
    }
    if (validated(call, &status, &identity) == 0)
        finish(call, status, identity);
}

static const csgi_client_callbacks callbacks = {on_head, on_data, on_done, NULL};

/* Send the call's current request. */
static int start(auth_call *call)
{
    auth_remote *remote = call->remote;
    csgi__free(call->body);
    call->body = NULL;
    call->body_len = 0;
    call->status = 0;
    int fetch = call->phase == FETCH;
    char url[1100];
    snprintf(url, sizeof(url), "%s%s", remote->tokens_url,
             !fetch && !remote->with_catalog ? "?nocatalog" : "");
    csgi_client_request *request = NULL;
    int rc = csgi_client_request_new(&request, call->client, fetch ? "POST" : "GET", url);
    if (rc == 0)
        rc = csgi_client_request_add_header(request, "Accept", "application/json");
    if (rc == 0 && fetch)
        rc = csgi_client_request_add_header(request, "Content-Type", "application/json");
    if (rc == 0 && fetch)
        rc = csgi_client_request_set_body(request, remote->auth_body, strlen(remote->auth_body));
    if (rc == 0 && !fetch)
        rc = csgi_client_request_add_header(request, "X-Auth-Token", call->service_token);
    if (rc == 0 && !fetch)
        rc = csgi_client_request_add_header(request, "X-Subject-Token", call->token);
    if (rc == 0)
        rc = csgi_client_request_send(request, &callbacks, call);
    if (rc != 0) {
        csgi_client_request_cancel(request);
        return rc;
    }
    call->request = request;
    return 0;
}

/* The request ended: the call's client goes with it. */
static void call_free(void *pointer)
{
    auth_call *call = pointer;
    if (call->request)
        csgi_client_request_cancel(call->request);
    csgi_client_free(call->client);
    csgi__free(call->body);
}

auth_call *auth_token__remote_check(auth_remote *remote, csgi_request *request, const char *token,
                                    size_t len, auth_remote_done_fn done, void *userdata)
{
    csgi_environ *environ = csgi_request_environ(request);
    struct event_base *base = csgi_environ_event_base(environ);
    auth_call *call = csgi_environ_alloc_zeroed(environ, sizeof(*call));
    if (!base || !call || !(call->token = csgi_environ_alloc(environ, len + 1)))
        return NULL;
    memcpy(call->token, token, len);
    call->token[len] = '\0';
    call->remote = remote;
    call->environ = environ;
    call->done = done;
    call->userdata = userdata;
    if (csgi_client_new(&call->client, base, &remote->options) != 0)
        return NULL;
    /* Keyed by the call's address: one request may make two calls (the
       user's token and the service token). */
    char key[64];
    snprintf(key, sizeof(key), "auth_token.call.%p", (void *)call);
    if (csgi_environ_set_pointer(environ, key, call, call_free) != 0)
        return NULL;
    call->service_token = service_token(remote, environ);
    call->phase = call->service_token ? VALIDATE : FETCH;
    return start(call) == 0 ? call : NULL;
}

void auth_token__remote_cancel(auth_call *call)
{
    if (!call || !call->request)
        return;
    csgi_client_request_cancel(call->request);
    call->request = NULL;
}

/* ---- Configuration ------------------------------------------------------------------------- */

void auth_token__remote_free(auth_remote *remote)
{
    if (!remote)
        return;
    pthread_mutex_destroy(&remote->lock);
    csgi__free(remote->tokens_url);
    csgi__free(remote->auth_body);
    csgi__free(remote->ca_file);
    csgi__free(remote->service_token);
    csgi__free(remote);
}

/* {"id": ...} or {"name": ..., "domain": {...}} for the authentication. */
static json_t *named(const csgi_conf *conf, const char *id_key, const char *name_key,
                     const char *domain_id_key, const char *domain_name_key)
{
    const char *id = csgi_conf_get(conf, id_key);
    if (id)
        return json_pack("{s:s}", "id", id);
    const char *domain_id = csgi_conf_get(conf, domain_id_key);
    const char *domain_name = csgi_conf_get(conf, domain_name_key);
    json_t *domain = domain_id ? json_pack("{s:s}", "id", domain_id)
                               : json_pack("{s:s}", "name", domain_name ? domain_name : "Default");
    return json_pack("{s:s?, s:o}", "name", csgi_conf_get(conf, name_key), "domain", domain);
}

static int seconds(const csgi_conf *conf, const char *key, long long fallback, unsigned *ms,
                   csgi_load_error *error)
{
    long long value;
    int rc = csgi_conf_asint(conf, key, fallback, &value, error);
    if (rc == 0 && (value < 1 || value > 3600)) {
        csgi_conf_error(conf, key, error, "must be 1 to 3600 seconds");
        rc = CSGI_EINVAL;
    }
    *ms = rc == 0 ? (unsigned)value * 1000 : 0;
    return rc;
}

static int configure(auth_remote *remote, const csgi_conf *conf, const char *auth_url,
                     int with_catalog, csgi_load_error *error)
{
    const char *type = csgi_conf_get(conf, "auth_type");
    if (type && strcmp(type, "password") != 0 && strcmp(type, "v3password") != 0) {
        csgi_conf_error(conf, "auth_type", error, "only password is supported, not \"%s\"", type);
        return CSGI_EINVAL;
    }
    const char *user = csgi_conf_get(conf, "username");
    const char *password = csgi_conf_get(conf, "password");
    if (!user || !password) {
        csgi_conf_error(conf, "auth_url", error,
                        "needs the service's username and password to validate tokens");
        return CSGI_EINVAL;
    }
    size_t len = strlen(auth_url);
    while (len && auth_url[len - 1] == '/')
        len--;
    int versioned = len >= 3 && strncmp(auth_url + len - 3, "/v3", 3) == 0;
    if ((strncmp(auth_url, "http://", 7) != 0 && strncmp(auth_url, "https://", 8) != 0) ||
        len > 1000) {
        csgi_conf_error(conf, "auth_url", error, "must be an http:// or https:// URL");
        return CSGI_EINVAL;
    }
    char url[1100];
    snprintf(url, sizeof(url), "%.*s%s/auth/tokens", (int)len, auth_url, versioned ? "" : "/v3");
    long long retries;
    int insecure, rc;
    csgi_client_options options = CSGI_CLIENT_OPTIONS_INIT;
    if ((rc = seconds(conf, "http_connect_timeout", 5, &options.connect_timeout_ms, error)) != 0 ||
        (rc = seconds(conf, "http_request_timeout", 10, &options.timeout_ms, error)) != 0 ||
        (rc = csgi_conf_asint(conf, "http_request_max_retries", 3, &retries, error)) != 0 ||
        (rc = csgi_conf_asbool(conf, "insecure", 0, &insecure, error)) != 0)
        return rc;
    if (retries < 0 || retries > 10) {
        csgi_conf_error(conf, "http_request_max_retries", error, "must be 0 to 10");
        return CSGI_EINVAL;
    }
    json_t *user_json = named(conf, "user_id", "username", "user_domain_id", "user_domain_name");
    json_object_set_new(user_json, "password", json_string(password));
    json_t *auth = json_pack("{s:{s:{s:[s], s:{s:o}}}}", "auth", "identity", "methods", "password",
                             "password", "user", user_json);
    if (csgi_conf_get(conf, "project_name") || csgi_conf_get(conf, "project_id"))
        json_object_set_new(json_object_get(auth, "auth"), "scope",
                            json_pack("{s:o}", "project",
                                      named(conf, "project_id", "project_name", "project_domain_id",
                                            "project_domain_name")));
    char *body = auth ? json_dumps(auth, JSON_COMPACT) : NULL;
    json_decref(auth);
    const char *ca_file = csgi_conf_get(conf, "cafile");
    remote->tokens_url = csgi__strndup(url, strlen(url));
    remote->auth_body = body ? csgi__strndup(body, strlen(body)) : NULL;
    remote->ca_file = ca_file ? csgi__strndup(ca_file, strlen(ca_file)) : NULL;
    free(body);
    if (!remote->tokens_url || !remote->auth_body || (ca_file && !remote->ca_file))
        return CSGI_ENOMEM;
    options.ca_file = remote->ca_file;
    options.insecure = insecure;
    remote->options = options;
    remote->retries = (int)retries;
    remote->with_catalog = with_catalog;
    return 0;
}

int auth_token__remote_new(auth_remote **out, const csgi_conf *conf, int with_catalog,
                           csgi_load_error *error)
{
    *out = NULL;
    const char *auth_url = csgi_conf_get(conf, "auth_url");
    if (!auth_url)
        return 0;
    auth_remote *remote = csgi__calloc(1, sizeof(*remote));
    if (!remote)
        return CSGI_ENOMEM;
    pthread_mutex_init(&remote->lock, NULL);
    int rc = configure(remote, conf, auth_url, with_catalog, error);
    if (rc != 0) {
        auth_token__remote_free(remote);
        return rc;
    }
    *out = remote;
    return 0;
}
