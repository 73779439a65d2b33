/*
 * The identity part of examples/imageapi: the slice of keystone the
 * OpenStack clients and the talk's urllib client use.
 *
 *   GET  /                      the versions (300 Multiple Choices: v3, v2.0)
 *   GET  /v3                    the v3 version document
 *   POST /v3/auth/tokens        password (or token) auth: 201, the token in
 *                               X-Subject-Token, the document in the body
 *   GET  /v3/auth/tokens        validate X-Subject-Token (X-Auth-Token: any
 *   HEAD /v3/auth/tokens        valid token): 200 or 404
 *   DELETE /v3/auth/tokens      revoke X-Subject-Token: 204
 *   GET  /v3/auth/catalog       the catalog of X-Auth-Token's scope
 *   GET  /v3/auth/projects      the projects X-Auth-Token's user has roles on
 *   GET  /v3/auth/domains       (none: there are no domain roles)
 *   GET  /v2.0                  the v2.0 version document
 *   POST /v2.0/tokens           the talk's passwordCredentials + tenantName
 *
 * Mounted by a urlmap at /identity, or at /v3 and /v2.0 themselves: the
 * version a request is for is the next segment of PATH_INFO, or the last
 * of SCRIPT_NAME when the map already took it.
 *
 * Tokens are signed (csgi_auth_token_sign(), the key of signing_key_file),
 * so the auth_token filter of the other services validates them without
 * calling this one; their payload is keystone's token document without
 * the catalog. Revocation writes state_dir/revoked/ (revoked.c).
 *
 * Conf (local, else global): accounts_file, signing_key_file, state_dir
 * (required); token_expiration (seconds, 3600); public_url (the base of
 * the catalog's URLs: {public_url}/identity/v3, /image, /compute/v2.1;
 * default the request's host URL), internal_url and admin_url (the same
 * for those interfaces; default public_url); identity_url, image_url and
 * compute_url (one service's URL for every interface, when it is not at
 * its path under the base: identity on a port of its own).
 *
 * Checking a password costs yescrypt's few tens of milliseconds: a
 * deployment serving many logins marks the app `blocking = true` so that
 * they run on csgi's thread pool, not on the event loop.
 */
#include "accounts.h"
#include "imageapi.h"

#include <openssl/crypto.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BODY_MAX     (64 * 1024)
#define KEY_MAX      (64 * 1024)
#define UNAUTHORIZED "The request you have made requires authentication."

typedef struct identity {
    imageapi_accounts *accounts;
    imageapi_revocations *revocations;
    unsigned char *key;
    size_t key_len;
    long long lifetime;
    char *urls[3];         /* public, internal, admin base URLs, or NULL: the host URL */
    char *service_urls[3]; /* identity_url, image_url, compute_url: a service's own URL, or NULL */
} identity;

static const char *const interfaces[3] = {"public", "internal", "admin"};

/* ---- Shared with revoked.c -------------------------------------------------------------- */

csgi_response *imageapi_keystone_error(csgi_request *request, int status, const char *message)
{
    const char *title = csgi_response_reason(status);
    return imageapi_json(
        request, status,
        json_pack("{s{siss?ss}}", "error", "code", status, "title", title, "message", message));
}

csgi_response *imageapi_keystone_unauthorized(csgi_request *request, const char *uri)
{
    csgi_response *response = imageapi_keystone_error(request, 401, UNAUTHORIZED);
    char value[1100];
    snprintf(value, sizeof(value), "Keystone uri=\"%s\"", uri);
    if (response && csgi_response_set_header(response, "WWW-Authenticate", value) != 0)
        return NULL;
    return response;
}

const char *imageapi_identity_conf(const csgi_conf *global_conf, const csgi_conf *local_conf,
                                   const char *name)
{
    const char *value = csgi_conf_get(local_conf, name);
    return value ? value : csgi_conf_get(global_conf, name);
}

int imageapi_identity_check_keys(const csgi_conf *local_conf, const char *const *known,
                                 csgi_load_error *error)
{
    static const char *const handler_keys[] = {"body_mode",
                                               "client_max_body_size",
                                               "client_body_buffer_size",
                                               "client_body_temp_path",
                                               "blocking",
                                               NULL};
    const char *name, *value;
    for (size_t i = 0; csgi_conf_entry(local_conf, i, &name, &value); i++) {
        int ok = 0;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(*k, name) == 0;
        for (const char *const *k = handler_keys; *k && !ok; k++)
            ok = strcmp(*k, name) == 0;
        if (!ok) {
            csgi_conf_error(local_conf, name, error, "unknown key");
            return -1;
        }
    }
    return 0;
}

/* ---- URLs -------------------------------------------------------------------------------- */

/* Where this app answers: the application URL without the version the
   urlmap took (so /v3 mounted at /v3 and /identity/v3 give the same root). */
static const char *identity_root(csgi_request *request, const char *mounted)
{
    const char *url = csgi_request_application_url(request);
    if (!url || !mounted)
        return url;
    size_t len = strlen(url), cut = strlen(mounted) + 1;
    char *root = csgi_environ_alloc(csgi_request_environ(request), len + 1);
    if (!root)
        return NULL;
    memcpy(root, url, len - cut);
    root[len - cut] = '\0';
    return root;
}

/* The base URL of the catalog for an interface (0 public, 1 internal, 2 admin). */
static const char *catalog_base(csgi_request *request, const identity *id, int interface)
{
    if (id->urls[interface])
        return id->urls[interface];
    return id->urls[0] ? id->urls[0] : csgi_request_host_url(request);
}

static const struct {
    const char *type, *name, *id, *path, *v2_path;
} services[] = {
    {"identity", "keystone", "0d3b1e5c9d1f4c1b8a4c2a1f6b7e8d01", "/identity/v3", "/identity/v2.0"},
    {"image", "glance", "0d3b1e5c9d1f4c1b8a4c2a1f6b7e8d02", "/image", "/image"},
    {"compute", "nova", "0d3b1e5c9d1f4c1b8a4c2a1f6b7e8d03", "/compute/v2.1", "/compute/v2.1"},
};
#define SERVICE_COUNT (sizeof(services) / sizeof(services[0]))

/* The URL of service s for an interface: the service's own URL when the
   conf gives one (identity_url, image_url, compute_url: every interface;
   for v2.0 an identity URL ending in /v3 ends in /v2.0 instead), else the
   interface's base URL and the service's path on it. */
static void service_url(char *out, size_t size, csgi_request *request, const identity *id, size_t s,
                        int interface, int v2)
{
    const char *own = id->service_urls[s];
    if (!own) {
        snprintf(out, size, "%s%s", catalog_base(request, id, interface),
                 v2 ? services[s].v2_path : services[s].path);
        return;
    }
    size_t len = strlen(own);
    if (v2 && s == 0 && len >= 3 && strcmp(own + len - 3, "/v3") == 0)
        snprintf(out, size, "%.*s/v2.0", (int)(len - 3), own);
    else
        snprintf(out, size, "%s", own);
}

/* Stable endpoint ids: the service's id with the service's and the
   interface's numbers last. */
static void endpoint_id_of(char out[33], size_t service, int interface)
{
    snprintf(out, 33, "%.28s%02zu%02d", services[service].id, service, interface);
}

static json_t *catalog_v3(csgi_request *request, const identity *id)
{
    json_t *catalog = json_array();
    for (size_t s = 0; catalog && s < SERVICE_COUNT; s++) {
        json_t *endpoints = json_array();
        for (int i = 0; endpoints && i < 3; i++) {
            char url[1024], endpoint_id[33];
            service_url(url, sizeof(url), request, id, s, i, 0);
            endpoint_id_of(endpoint_id, s, i);
            json_array_append_new(endpoints,
                                  json_pack("{ss ss ss ss ss}", "id", endpoint_id, "interface",
                                            interfaces[i], "region", "RegionOne", "region_id",
                                            "RegionOne", "url", url));
        }
        json_array_append_new(catalog, json_pack("{so* ss ss ss}", "endpoints", endpoints, "id",
                                                 services[s].id, "type", services[s].type, "name",
                                                 services[s].name));
    }
    return catalog;
}

static json_t *catalog_v2(csgi_request *request, const identity *id)
{
    json_t *catalog = json_array();
    for (size_t s = 0; catalog && s < SERVICE_COUNT; s++) {
        char urls[3][1024], endpoint_id[33];
        endpoint_id_of(endpoint_id, s, 0);
        for (int i = 0; i < 3; i++)
            service_url(urls[i], sizeof(urls[i]), request, id, s, i, 1);
        json_array_append_new(catalog, json_pack("{s[{ss ss ss ss ss}] s[] ss ss}", "endpoints",
                                                 "id", endpoint_id, "publicURL", urls[0],
                                                 "internalURL", urls[1], "adminURL", urls[2],
                                                 "region", "RegionOne", "endpoints_links", "type",
                                                 services[s].type, "name", services[s].name));
    }
    return catalog;
}

/* ---- Versions ------------------------------------------------------------------------------ */

static json_t *version_v3(const char *root)
{
    char href[1024];
    snprintf(href, sizeof(href), "%s/v3/", root);
    return json_pack("{ss ss ss s[{ssss}] s[{ssss}]}", "id", "v3.14", "status", "stable", "updated",
                     "2020-04-07T00:00:00Z", "links", "rel", "self", "href", href, "media-types",
                     "base", "application/json", "type",
                     "application/vnd.openstack.identity-v3+json");
}

static json_t *version_v2(const char *root)
{
    char href[1024];
    snprintf(href, sizeof(href), "%s/v2.0/", root);
    return json_pack("{ss ss ss s[{ssss}{ssssss}] s[{ssss}]}", "id", "v2.0", "status", "deprecated",
                     "updated", "2016-08-04T00:00:00Z", "links", "rel", "self", "href", href, "rel",
                     "describedby", "type", "text/html", "href", "https://docs.openstack.org/",
                     "media-types", "base", "application/json", "type",
                     "application/vnd.openstack.identity-v2.0+json");
}

static csgi_response *versions(csgi_request *request, const char *root)
{
    csgi_response *response = imageapi_json(
        request, 300,
        json_pack("{s{s[oo]}}", "versions", "values", version_v3(root), version_v2(root)));
    char location[1024];
    snprintf(location, sizeof(location), "%s/v3/", root);
    if (response && csgi_response_set_header(response, "Location", location) != 0)
        return NULL;
    return response;
}

/* ---- Tokens ------------------------------------------------------------------------------- */

/* keystone's audit id: 16 random bytes in unpadded base64url (22 characters). */
static json_t *audit_id(void)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char hex[33], out[23];
    if (imageapi_hex_id(hex) != 0)
        return NULL;
    /* 128 bits from the hex digits, 6 at a time */
    unsigned bits = 0, have = 0;
    size_t o = 0;
    for (size_t i = 0; i < 32 && o < 22; i++) {
        unsigned nibble = (unsigned)(hex[i] <= '9' ? hex[i] - '0' : hex[i] - 'a' + 10);
        bits = bits << 4 | nibble;
        have += 4;
        while (have >= 6 && o < 22) {
            have -= 6;
            out[o++] = digits[(bits >> have) & 63];
        }
    }
    if (o < 22)
        out[o++] = digits[(bits << (6 - have)) & 63];
    out[o] = '\0';
    return json_string(out);
}

/* object[key][inner] as a string, "" when absent. */
static const char *str_of(const json_t *object, const char *key, const char *inner)
{
    const char *value = json_string_value(json_object_get(json_object_get(object, key), inner));
    return value ? value : "";
}

static json_t *named_ref(const json_t *object)
{
    return json_pack("{sOsO}", "id", json_object_get(object, "id"), "name",
                     json_object_get(object, "name"));
}

/* The token document (without catalog) for user on project (NULL:
   unscoped). expires 0: now + the lifetime. parent: the token this one
   was made from (token auth), or NULL. */
static json_t *token_document(const identity *id, const json_t *user, const json_t *project,
                              const char *method, time_t expires, const json_t *parent)
{
    time_t now = time(NULL);
    char issued_at[32], expires_at[32];
    imageapi_time(now, 1, issued_at);
    imageapi_time(expires ? expires : now + (time_t)id->lifetime, 1, expires_at);
    json_t *user_domain = imageapi_accounts_domain(
        id->accounts, json_string_value(json_object_get(user, "domain_id")), NULL);
    json_t *audit = json_pack("[o]", audit_id());
    json_t *parent_audit = json_array_get(json_object_get(parent, "audit_ids"), 0);
    if (audit && parent_audit)
        json_array_append(audit, parent_audit);
    json_t *doc = json_pack("{s[s] s{sOsOsosn} so* ss ss}", "methods", method, "user", "id",
                            json_object_get(user, "id"), "name", json_object_get(user, "name"),
                            "domain", named_ref(user_domain), "password_expires_at", "audit_ids",
                            audit, "expires_at", expires_at, "issued_at", issued_at);
    if (doc && project) {
        json_t *project_domain = imageapi_accounts_domain(
            id->accounts, json_string_value(json_object_get(project, "domain_id")), NULL);
        json_t *roles = imageapi_accounts_roles(id->accounts, user, project);
        if (json_object_set_new(doc, "project",
                                json_pack("{sOsOso}", "id", json_object_get(project, "id"), "name",
                                          json_object_get(project, "name"), "domain",
                                          named_ref(project_domain))) != 0 ||
            json_object_set_new(doc, "roles", roles) != 0 ||
            json_object_set_new(doc, "is_domain", json_false()) != 0) {
            json_decref(doc);
            return NULL;
        }
    }
    return doc;
}

/* The signed token of doc, in the request's arena; NULL when memory ran out. */
static const char *sign(csgi_request *request, const identity *id, json_t *doc)
{
    size_t len = 0;
    if (csgi_auth_token_sign(NULL, 0, &len, id->key, id->key_len, doc) != CSGI_ERANGE)
        return NULL;
    char *text = csgi_environ_alloc(csgi_request_environ(request), len + 1);
    if (!text || csgi_auth_token_sign(text, len + 1, &len, id->key, id->key_len, doc) != 0)
        return NULL;
    return text;
}

/* The document of a token that is signed, live, not revoked and of a user
   still enabled in the users file (a new reference), or NULL; *failed set
   when the revocation list cannot be read. */
static json_t *verified(const identity *id, const char *token, size_t len, int *failed)
{
    json_t *doc = NULL;
    if (!token || csgi_auth_token_verify(&doc, token, len, id->key, id->key_len) != 0)
        return NULL;
    int revoked = imageapi_revocations_contains(id->revocations, token, len);
    if (revoked) {
        if (revoked < 0 && failed)
            *failed = 1;
        json_decref(doc);
        return NULL;
    }
    json_t *user = imageapi_accounts_user(id->accounts, str_of(doc, "user", "id"), NULL, NULL);
    if (!user || json_is_false(json_object_get(user, "enabled"))) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* ---- POST /v3/auth/tokens --------------------------------------------------------------- */

/* Why an auth request is refused: status and message. */
typedef struct refusal {
    int status;
    const char *message;
} refusal;

static json_t *refuse(refusal *why, int status, const char *message)
{
    why->status = status;
    why->message = message;
    return NULL;
}

/* A domain given as {"id"} or {"name"}. */
static json_t *domain_of(const identity *id, const json_t *ref)
{
    return imageapi_accounts_domain(id->accounts, json_string_value(json_object_get(ref, "id")),
                                    json_string_value(json_object_get(ref, "name")));
}

/* The user of a password method's {"user": {...}}, checked. */
static json_t *password_user(const identity *id, const json_t *password, refusal *why)
{
    json_t *user = json_object_get(password, "user");
    const char *user_id = json_string_value(json_object_get(user, "id"));
    const char *name = json_string_value(json_object_get(user, "name"));
    const char *secret = json_string_value(json_object_get(user, "password"));
    if (!json_is_object(user) || (!user_id && !name) || !secret)
        return refuse(why, 400,
                      "Invalid input for field 'identity/password/user': a user needs "
                      "an id or a name, and a password");
    json_t *found = NULL;
    if (user_id) {
        found = imageapi_accounts_user(id->accounts, user_id, NULL, NULL);
    } else {
        json_t *domain_ref = json_object_get(user, "domain");
        if (!json_is_object(domain_ref))
            return refuse(why, 400,
                          "Expecting to find domain in user. The server could not "
                          "comply with the request since it is either malformed or "
                          "otherwise incorrect.");
        json_t *domain = domain_of(id, domain_ref);
        found = domain ? imageapi_accounts_user(id->accounts, NULL, name, domain) : NULL;
    }
    /* checked also when there is no such user: the same time either way */
    if (!imageapi_accounts_check_password(found, secret))
        return refuse(why, 401, UNAUTHORIZED);
    return found;
}

/* The project of a scope {"project": {...}}, on which user has a role; NULL
   with why->status 0 for an unscoped token. */
static json_t *scope_project(const identity *id, const json_t *scope, const json_t *user,
                             refusal *why)
{
    json_t *project = NULL;
    why->status = 0;
    if (!scope || (json_is_string(scope) && strcmp(json_string_value(scope), "unscoped") == 0)) {
        project = scope ? NULL : imageapi_accounts_default_project(id->accounts, user);
        json_t *roles = project ? imageapi_accounts_roles(id->accounts, user, project) : NULL;
        int any = json_array_size(roles) > 0;
        json_decref(roles);
        return any ? project : NULL; /* a default project without roles: unscoped */
    }
    if (!json_is_object(scope))
        return refuse(why, 400, "Invalid input for field 'scope'.");
    json_t *ref = json_object_get(scope, "project");
    if (!ref) {
        if (json_object_get(scope, "domain") || json_object_get(scope, "system"))
            return refuse(why, 401, "The user has no role on the domain or system asked for.");
        return refuse(why, 400, "Invalid input for field 'scope': project, domain or system.");
    }
    const char *project_id = json_string_value(json_object_get(ref, "id"));
    const char *name = json_string_value(json_object_get(ref, "name"));
    if (project_id) {
        project = imageapi_accounts_project(id->accounts, project_id, NULL, NULL);
    } else if (name && json_is_object(json_object_get(ref, "domain"))) {
        json_t *domain = domain_of(id, json_object_get(ref, "domain"));
        project = domain ? imageapi_accounts_project(id->accounts, NULL, name, domain) : NULL;
    } else {
        return refuse(why, 400,
                      "Invalid input for field 'scope/project': a project needs an "
                      "id, or a name and a domain.");
    }
    json_t *roles = project ? imageapi_accounts_roles(id->accounts, user, project) : NULL;
    int any = json_array_size(roles) > 0;
    json_decref(roles);
    if (!any)
        return refuse(why, 401, UNAUTHORIZED); /* keystone: no role there, or no such project */
    return project;
}

/* Authenticate auth {"identity": ..., "scope": ...}: the new token's
   document, or NULL with why set. */
static json_t *authenticate(const identity *id, const json_t *auth, refusal *why)
{
    json_t *ident = json_object_get(auth, "identity");
    json_t *methods = json_object_get(ident, "methods");
    if (!json_is_object(auth) || !json_is_object(ident) || !json_is_array(methods))
        return refuse(why, 400,
                      "Invalid input for field 'identity': 'methods' is a required "
                      "property");
    const char *method = json_string_value(json_array_get(methods, 0));
    json_t *user = NULL, *parent = NULL;
    time_t expires = 0;
    if (method && strcmp(method, "password") == 0) {
        user = password_user(id, json_object_get(ident, "password"), why);
    } else if (method && strcmp(method, "token") == 0) {
        const char *text =
            json_string_value(json_object_get(json_object_get(ident, "token"), "id"));
        if (!text)
            return refuse(why, 400,
                          "Invalid input for field 'identity/token': 'id' is a "
                          "required property");
        int failed = 0;
        parent = verified(id, text, strlen(text), &failed);
        user = parent
                   ? imageapi_accounts_user(id->accounts, str_of(parent, "user", "id"), NULL, NULL)
                   : NULL;
        if (!user) {
            json_decref(parent);
            return refuse(why, failed ? 503 : 401,
                          failed ? "The revocation list cannot be read." : UNAUTHORIZED);
        }
        imageapi_parse_time(json_string_value(json_object_get(parent, "expires_at")), &expires);
    } else {
        return refuse(why, 401, "Attempted to authenticate with an unsupported method.");
    }
    json_t *doc = NULL;
    if (user) {
        json_t *project = scope_project(id, json_object_get(auth, "scope"), user, why);
        if (project || !why->status)
            doc = token_document(id, user, project, method, expires, parent);
        if (!doc && !why->status)
            refuse(why, 500, "Out of memory.");
    }
    json_decref(parent);
    return doc;
}

/* The body as JSON (a new reference), or NULL with the response to send
   in *error (keystone's 400, or 413). */
static json_t *read_json(csgi_request *request, csgi_response **error)
{
    const char *body;
    size_t len;
    int rc = csgi_request_body(request, BODY_MAX, &body, &len);
    if (rc == CSGI_ETOOBIG) {
        *error = imageapi_keystone_error(request, 413, "Request is too large.");
        return NULL;
    }
    json_error_t parse;
    json_t *value = rc == 0 ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &parse) : NULL;
    if (!value) {
        char message[300];
        snprintf(message, sizeof(message),
                 "The request body is not valid JSON: %s. The server could not comply with the "
                 "request since it is either malformed or otherwise incorrect.",
                 rc == 0 ? parse.text : "cannot be read");
        *error = imageapi_keystone_error(request, 400, message);
    }
    return value;
}

/* {"token": doc} with the catalog unless unscoped or ?nocatalog. */
static json_t *token_body(csgi_request *request, const identity *id, const json_t *doc)
{
    const csgi_params *query = NULL;
    csgi_request_query(request, &query, NULL);
    json_t *token = json_copy((json_t *)doc);
    if (token && json_object_get(doc, "project") &&
        !(query && csgi_params_get(query, "nocatalog", NULL)))
        json_object_set_new(token, "catalog", catalog_v3(request, id));
    return token ? json_pack("{so}", "token", token) : NULL;
}

static csgi_response *issue_v3(csgi_request *request, const identity *id)
{
    csgi_response *error = NULL;
    json_t *body = read_json(request, &error);
    if (!body)
        return error;
    refusal why = {0, NULL};
    json_t *doc = authenticate(id, json_object_get(body, "auth"), &why);
    json_decref(body);
    if (!doc)
        return why.status == 401
                   ? imageapi_keystone_unauthorized(request, identity_root(request, NULL))
                   : imageapi_keystone_error(request, why.status, why.message);
    const char *token = sign(request, id, doc);
    csgi_response *response =
        token ? imageapi_json(request, 201, token_body(request, id, doc)) : NULL;
    json_decref(doc);
    if (response && csgi_response_set_header(response, "X-Subject-Token", token) != 0)
        return NULL;
    return response;
}

/* ---- GET, HEAD, DELETE /v3/auth/tokens and the auth/ lists -------------------------------- */

/* X-Auth-Token's document, or NULL with *error set (401, or 503). */
static json_t *caller(csgi_request *request, const identity *id, const char *root,
                      csgi_response **error)
{
    size_t len;
    const char *token = csgi_request_header(request, "X-Auth-Token", &len);
    int failed = 0;
    json_t *doc = verified(id, token, len, &failed);
    if (!doc)
        *error = failed
                     ? imageapi_keystone_error(request, 503, "The revocation list cannot be read.")
                     : imageapi_keystone_unauthorized(request, root);
    return doc;
}

static csgi_response *no_content(csgi_request *request, int status)
{
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_status(response, status) != 0)
        return NULL;
    return response;
}

static csgi_response *tokens_v3(csgi_request *request, const identity *id, const char *root)
{
    const char *method = csgi_request_method(request);
    if (strcmp(method, "POST") == 0)
        return issue_v3(request, id);
    int head = strcmp(method, "HEAD") == 0, del = strcmp(method, "DELETE") == 0;
    if (!head && !del && strcmp(method, "GET") != 0)
        return imageapi_keystone_error(request, 405, "The method is not allowed here.");
    csgi_response *error = NULL;
    json_t *auth = caller(request, id, root, &error);
    if (!auth)
        return error;
    json_decref(auth);
    size_t len;
    const char *subject = csgi_request_header(request, "X-Subject-Token", &len);
    int failed = 0;
    json_t *doc = verified(id, subject, len, &failed);
    if (!doc)
        return failed ? imageapi_keystone_error(request, 503, "The revocation list cannot be read.")
               : head ? no_content(request, 404)
                      : imageapi_keystone_error(request, 404, "Could not find token.");
    csgi_response *response = NULL;
    if (del) {
        time_t expires = 0;
        char err[512];
        imageapi_parse_time(json_string_value(json_object_get(doc, "expires_at")), &expires);
        int rc = imageapi_revocations_add(id->revocations, subject, len, expires, err, sizeof(err));
        if (rc) {
            csgi_environ_log_at(csgi_request_environ(request), CSGI_LOG_ERROR, "%s", err);
            response = imageapi_keystone_error(request, 500, "The token could not be revoked.");
        } else {
            response = no_content(request, 204);
        }
    } else {
        response = head ? no_content(request, 200)
                        : imageapi_json(request, 200, token_body(request, id, doc));
        if (response && csgi_response_set_header(response, "X-Subject-Token", subject) != 0)
            response = NULL;
    }
    json_decref(doc);
    return response;
}

/* GET /v3/auth/{what} (catalog, projects, domains) with X-Auth-Token; also
   /v3/users/{user_id}/projects (what "projects", user_id the caller's own,
   as openstack project list --my-projects asks). */
static csgi_response *auth_lists(csgi_request *request, const identity *id, const char *root,
                                 const char *what, const char *user_id)
{
    if (strcmp(csgi_request_method(request), "GET") != 0 &&
        strcmp(csgi_request_method(request), "HEAD") != 0)
        return imageapi_keystone_error(request, 405, "The method is not allowed here.");
    csgi_response *error = NULL;
    json_t *doc = caller(request, id, root, &error);
    if (!doc)
        return error;
    if (user_id && strcmp(user_id, str_of(doc, "user", "id")) != 0) {
        json_decref(doc);
        return imageapi_keystone_error(request, 403,
                                       "You are not authorized to perform the "
                                       "requested action: another user's projects.");
    }
    char self[1100];
    if (user_id)
        snprintf(self, sizeof(self), "%s/v3/users/%s/projects", root, user_id);
    else
        snprintf(self, sizeof(self), "%s/v3/auth/%s", root, what);
    json_t *body = NULL;
    if (strcmp(what, "catalog") == 0) {
        if (!json_object_get(doc, "project")) {
            json_decref(doc);
            return imageapi_keystone_error(request, 403,
                                           "A project-scoped token is required "
                                           "to produce a service catalog.");
        }
        body = json_pack("{so s{ss}}", "catalog", catalog_v3(request, id), "links", "self", self);
    } else if (strcmp(what, "projects") == 0) {
        json_t *user = imageapi_accounts_user(id->accounts, str_of(doc, "user", "id"), NULL, NULL);
        json_t *projects = json_array();
        json_t *project;
        for (size_t i = 0;
             projects && user && (project = imageapi_accounts_project_at(id->accounts, i)) != NULL;
             i++) {
            json_t *roles = imageapi_accounts_roles(id->accounts, user, project);
            char link[1200];
            snprintf(link, sizeof(link), "%s/v3/projects/%s", root,
                     json_string_value(json_object_get(project, "id")));
            if (json_array_size(roles))
                json_array_append_new(
                    projects,
                    json_pack("{sOsOsOsOsbsbss s{ss}}", "id", json_object_get(project, "id"),
                              "name", json_object_get(project, "name"), "domain_id",
                              json_object_get(project, "domain_id"), "parent_id",
                              json_object_get(project, "domain_id"), "enabled", 1, "is_domain", 0,
                              "description", "", "links", "self", link));
            json_decref(roles);
        }
        body = json_pack("{so s{sssnsn}}", "projects", projects, "links", "self", self, "previous",
                         "next");
    } else {
        body = json_pack("{s[] s{sssnsn}}", "domains", "links", "self", self, "previous", "next");
    }
    json_decref(doc);
    return imageapi_json(request, 200, body);
}

/* ---- v2.0 --------------------------------------------------------------------------------- */

static csgi_response *issue_v2(csgi_request *request, const identity *id, const char *root)
{
    csgi_response *error = NULL;
    json_t *body = read_json(request, &error);
    if (!body)
        return error;
    json_t *auth = json_object_get(body, "auth");
    json_t *credentials = json_object_get(auth, "passwordCredentials");
    const char *tenant_name = json_string_value(json_object_get(auth, "tenantName"));
    const char *tenant_id = json_string_value(json_object_get(auth, "tenantId"));
    const char *username = json_string_value(json_object_get(credentials, "username"));
    const char *password = json_string_value(json_object_get(credentials, "password"));
    if (!json_is_object(auth) || !username || !password) {
        json_decref(body);
        return imageapi_keystone_error(request, 400,
                                       "Expecting to find passwordCredentials (username and "
                                       "password) in auth.");
    }
    /* v2.0 knows one domain: the default one */
    json_t *domain = imageapi_accounts_domain(id->accounts, "default", NULL);
    json_t *user = domain ? imageapi_accounts_user(id->accounts, NULL, username, domain) : NULL;
    json_t *project = NULL;
    refusal why = {401, UNAUTHORIZED};
    if (imageapi_accounts_check_password(user, password)) {
        json_t *scope = NULL;
        if (tenant_id)
            scope = json_pack("{s{ss}}", "project", "id", tenant_id);
        else if (tenant_name)
            scope = json_pack("{s{sss{ss}}}", "project", "name", tenant_name, "domain", "id",
                              "default");
        why.status = 0; /* no tenant: an unscoped token */
        if (scope)
            project = scope_project(id, scope, user, &why);
        json_decref(scope);
    }
    json_decref(body);
    json_t *doc =
        !why.status || project ? token_document(id, user, project, "password", 0, NULL) : NULL;
    if (!doc)
        return why.status == 401
                   ? imageapi_keystone_unauthorized(request, root)
                   : imageapi_keystone_error(request, why.status ? why.status : 500, why.message);
    const char *token = sign(request, id, doc);
    json_t *roles = json_array(), *role_ids = json_array(), *role;
    size_t index;
    json_array_foreach(json_object_get(doc, "roles"), index, role)
    {
        json_array_append_new(roles, json_pack("{sO}", "name", json_object_get(role, "name")));
        json_array_append(role_ids, json_object_get(role, "id"));
    }
    char expires[32];
    time_t when = 0;
    imageapi_parse_time(json_string_value(json_object_get(doc, "expires_at")), &when);
    imageapi_time(when, 0, expires);
    json_t *access = json_pack("{s{ss? ss sO sO} so s{sOsOsOs[]so} s{sisO}}", "token", "id", token,
                               "expires", expires, "issued_at", json_object_get(doc, "issued_at"),
                               "audit_ids", json_object_get(doc, "audit_ids"), "serviceCatalog",
                               project ? catalog_v2(request, id) : json_array(), "user", "id",
                               json_object_get(user, "id"), "name", json_object_get(user, "name"),
                               "username", json_object_get(user, "name"), "roles_links", "roles",
                               roles, "metadata", "is_admin", 0, "roles", role_ids);
    if (access && project)
        json_object_set_new(json_object_get(access, "token"), "tenant",
                            json_pack("{sOsOsbsn}", "id", json_object_get(project, "id"), "name",
                                      json_object_get(project, "name"), "enabled", 1,
                                      "description"));
    json_decref(role_ids);
    json_decref(doc);
    return token ? imageapi_json(request, 200, access ? json_pack("{so}", "access", access) : NULL)
                 : (json_decref(access), NULL);
}

/* ---- Dispatch ------------------------------------------------------------------------------ */

/* The version the urlmap took from the path: "v3", "v2.0", or NULL. */
static const char *mounted_version(csgi_request *request)
{
    size_t len;
    const char *script = csgi_request_script_name(request, &len);
    if (len >= 3 && strcmp(script + len - 3, "/v3") == 0)
        return "v3";
    if (len >= 5 && strcmp(script + len - 5, "/v2.0") == 0)
        return "v2.0";
    return NULL;
}

static csgi_response *handle(csgi_request *request, void *userdata)
{
    const identity *id = userdata;
    const char *version = mounted_version(request);
    const char *root = identity_root(request, version);
    if (!root)
        return NULL;
    const char *method = csgi_request_method(request);
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (!version) {
        int rc = csgi_request_path_info_pop(request, &version, NULL);
        if (rc < 0)
            return NULL;
        if (rc == 0 || !*version)
            return get ? versions(request, root)
                       : imageapi_keystone_error(request, 405, "The method is not allowed here.");
    }
    const char *rest = csgi_request_path_info(request, NULL);
    int at_root = !*rest || strcmp(rest, "/") == 0;
    if (strcmp(version, "v3") == 0) {
        if (at_root && get)
            return imageapi_json(request, 200, json_pack("{so}", "version", version_v3(root)));
        if (strcmp(rest, "/auth/tokens") == 0)
            return tokens_v3(request, id, root);
        if (strcmp(rest, "/auth/catalog") == 0)
            return auth_lists(request, id, root, "catalog", NULL);
        if (strcmp(rest, "/auth/projects") == 0)
            return auth_lists(request, id, root, "projects", NULL);
        if (strcmp(rest, "/auth/domains") == 0)
            return auth_lists(request, id, root, "domains", NULL);
        size_t len = strlen(rest);
        if (strncmp(rest, "/users/", 7) == 0 && len > 16 &&
            strcmp(rest + len - 9, "/projects") == 0 && !memchr(rest + 7, '/', len - 16)) {
            char *user_id = csgi_environ_alloc(csgi_request_environ(request), len - 15);
            if (!user_id)
                return NULL;
            memcpy(user_id, rest + 7, len - 16);
            user_id[len - 16] = '\0';
            return auth_lists(request, id, root, "projects", user_id);
        }
    } else if (strcmp(version, "v2.0") == 0) {
        if (at_root && get)
            return imageapi_json(request, 200, json_pack("{so}", "version", version_v2(root)));
        if (strcmp(rest, "/tokens") == 0)
            return strcmp(method, "POST") == 0
                       ? issue_v2(request, id, root)
                       : imageapi_keystone_error(request, 405, "The method is not allowed here.");
    }
    return imageapi_keystone_error(request, 404, "The resource could not be found.");
}

/* ---- The factory ---------------------------------------------------------------------------- */

static void identity_free(void *userdata)
{
    identity *id = userdata;
    imageapi_accounts_free(id->accounts);
    imageapi_revocations_free(id->revocations);
    if (id->key)
        OPENSSL_cleanse(id->key, id->key_len);
    free(id->key);
    for (int i = 0; i < 3; i++) {
        free(id->urls[i]);
        free(id->service_urls[i]);
    }
    free(id);
}

/* The signing key: the file's bytes, at least CSGI_AUTH_TOKEN_MIN_KEY. */
static int read_key(identity *id, const char *path, char *why, size_t why_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(why, why_size, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (st.st_size < CSGI_AUTH_TOKEN_MIN_KEY || st.st_size > KEY_MAX) {
        snprintf(why, why_size, "%s: a signing key has %d to %d bytes, not %lld", path,
                 CSGI_AUTH_TOKEN_MIN_KEY, KEY_MAX, (long long)st.st_size);
        close(fd);
        return -1;
    }
    id->key = malloc((size_t)st.st_size);
    ssize_t n = id->key ? read(fd, id->key, (size_t)st.st_size) : -1;
    close(fd);
    if (n != st.st_size) {
        snprintf(why, why_size, "%s: cannot read the key", path);
        return -1;
    }
    id->key_len = (size_t)n;
    return 0;
}

static int identity_setup(void **userdata, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                          const csgi_conf *local_conf, csgi_load_error *error)
{
    static const char *const known[] = {
        "accounts_file", "signing_key_file", "state_dir", "token_expiration",
        "public_url",    "internal_url",     "admin_url", "identity_url",
        "image_url",     "compute_url",      NULL};
    if (imageapi_identity_check_keys(local_conf, known, error) != 0)
        return CSGI_EINVAL;
    static const char *const required[] = {"accounts_file", "signing_key_file", "state_dir"};
    for (size_t i = 0; i < 3; i++) {
        const char *value = imageapi_identity_conf(global_conf, local_conf, required[i]);
        if (!value || !*value) {
            csgi_conf_error(local_conf, required[i], error, "%s is required", required[i]);
            return CSGI_EINVAL;
        }
    }
    identity *id = calloc(1, sizeof(*id));
    if (!id)
        return CSGI_ENOMEM;
    const csgi_conf *lifetime_conf =
        csgi_conf_get(local_conf, "token_expiration") ? local_conf : global_conf;
    if (csgi_conf_asint(lifetime_conf, "token_expiration", 3600, &id->lifetime, error) != 0 ||
        id->lifetime <= 0 || id->lifetime > 366LL * 24 * 3600) {
        if (id->lifetime <= 0 || id->lifetime > 366LL * 24 * 3600)
            csgi_conf_error(lifetime_conf, "token_expiration", error,
                            "token_expiration is seconds, 1 to a year");
        identity_free(id);
        return CSGI_EINVAL;
    }
    char why[1024];
    const char *accounts = imageapi_identity_conf(global_conf, local_conf, "accounts_file");
    const char *key = imageapi_identity_conf(global_conf, local_conf, "signing_key_file");
    const char *state_dir = imageapi_identity_conf(global_conf, local_conf, "state_dir");
    const char *bad = NULL;
    if (imageapi_accounts_load(&id->accounts, accounts, why, sizeof(why)) != 0)
        bad = "accounts_file";
    else if (read_key(id, key, why, sizeof(why)) != 0)
        bad = "signing_key_file";
    if (bad) {
        csgi_conf_error(csgi_conf_get(local_conf, bad) ? local_conf : global_conf, bad, error, "%s",
                        why);
        identity_free(id);
        return CSGI_EINVAL;
    }
    static const char *const url_keys[6] = {"public_url",   "internal_url", "admin_url",
                                            "identity_url", "image_url",    "compute_url"};
    for (int i = 0; i < 6; i++) {
        const char *url = imageapi_identity_conf(global_conf, local_conf, url_keys[i]);
        size_t len = url ? strlen(url) : 0;
        while (len && url[len - 1] == '/')
            len--;
        char **slot = i < 3 ? &id->urls[i] : &id->service_urls[i - 3];
        if (url && !(*slot = strndup(url, len))) {
            identity_free(id);
            return CSGI_ENOMEM;
        }
    }
    if (imageapi_revocations_new(&id->revocations, state_dir) != 0) {
        identity_free(id);
        return CSGI_ENOMEM;
    }
    *userdata = id;
    *destroy = identity_free;
    return 0;
}

CSGI_HANDLER_APP_FACTORY(identity_factory, handle, identity_setup)
