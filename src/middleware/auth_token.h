/*
 * keystonemiddleware's auth_token on csgi (internal): what the filter
 * (auth_token.c), its token cache (auth_token_cache.c), its local token
 * sources (auth_token_local.c) and its calls to the identity service
 * (auth_token_remote.c) share.
 */
#ifndef CSGI_MIDDLEWARE_AUTH_TOKEN_H
#define CSGI_MIDDLEWARE_AUTH_TOKEN_H

#include "gateway/environ_private.h"

#include <csgi/environ.h>
#include <csgi/loader.h>
#include <csgi/request.h>

#include <stddef.h>
#include <stdint.h>

struct json_t;

/* ---- What a valid token says ------------------------------------------------------ */

/* The facts auth_token passes on, one header each (see auth_token__fields). */
typedef enum auth_field {
    AUTH_USER_ID,
    AUTH_USER_NAME,
    AUTH_USER_DOMAIN_ID,
    AUTH_USER_DOMAIN_NAME,
    AUTH_PROJECT_ID,
    AUTH_PROJECT_NAME,
    AUTH_PROJECT_DOMAIN_ID,
    AUTH_PROJECT_DOMAIN_NAME,
    AUTH_DOMAIN_ID,
    AUTH_DOMAIN_NAME,
    AUTH_ROLES,            /* comma-separated role names */
    AUTH_IS_ADMIN_PROJECT, /* "True" or "False" */
    AUTH_SYSTEM_SCOPE,
    AUTH_CATALOG, /* the service catalog as compact JSON */
    AUTH_FIELD_COUNT
} auth_field;

/* One field's environ keys: for a user token, and for a service token
   (NULL: not set for service tokens). */
typedef struct auth_field_keys {
    const char *user;
    size_t user_len;
    const char *service;
    size_t service_len;
} auth_field_keys;

extern const auth_field_keys auth_token__fields[AUTH_FIELD_COUNT];

/* A user token's headers: one per field, and the five older names. */
#define AUTH_HEADERS (AUTH_FIELD_COUNT + 5)

/* A validated token: one block, counted references (the cache holds one,
   each request using its strings another; auth_token__identity_unref).
   A user token's headers are ready to set, the catalog last. */
typedef struct auth_identity {
    size_t size;                         /* of the whole block: the values follow */
    int refs;                            /* atomic */
    int64_t expires;                     /* Unix time */
    const char *value[AUTH_FIELD_COUNT]; /* NULL when the token does not say */
    size_t len[AUTH_FIELD_COUNT];        /* value's length */
    size_t header_count;                 /* in the three arrays below */
    int catalog_last;                    /* the last header is the catalog's */
    csgi_environ__key header_key[AUTH_HEADERS];
    const char *header_value[AUTH_HEADERS];
    size_t header_len[AUTH_HEADERS];
} auth_identity;

/* Drop a reference to an identity (void * for csgi_environ_defer); the
   last frees it. */
void auth_token__identity_unref(void *identity);

/* A token document as keystone's GET /v3/auth/tokens answers it ({"token":
   {...}}) or its inner "token" object. CSGI_EPARSE when it lacks
   expires_at or the user, CSGI_ENOMEM. with_catalog: keep the catalog. */
int auth_token__identity(auth_identity **out, struct json_t *document, int with_catalog);

/* 1 when the identity has every role of roles (comma-separated). */
int auth_token__has_roles(const auth_identity *identity, const char *const *roles, size_t count);

/* ---- The cache -------------------------------------------------------------------- */

typedef struct auth_cache auth_cache;

/* max_entries > 0. */
int auth_token__cache_new(auth_cache **out, size_t max_entries);
void auth_token__cache_free(auth_cache *cache);

/* What the cache knows of a token (len bytes). AUTH_MISS: nothing
   (or only what expired). AUTH_VALID: use ran with the identity, under the
   cache's lock, and its result is in *use_rc. AUTH_INVALID: the token was
   found invalid less than the cache time ago. */
enum { AUTH_MISS = 0, AUTH_VALID = 1, AUTH_INVALID = 2 };
int auth_token__cache_find(auth_cache *cache, const char *token, size_t len,
                           int (*use)(auth_identity *identity, void *userdata), void *userdata,
                           int *use_rc);

/* Remember a token for ttl_ms (never past the identity's expiry): identity
   taken (NULL: the token is invalid). */
void auth_token__cache_put(auth_cache *cache, const char *token, size_t len,
                           auth_identity *identity, int64_t ttl_ms);

/* ---- Local token sources ---------------------------------------------------------- */

typedef struct auth_local auth_local;

/* tokens_file: a JSON file {"tokens": {"<token>": {keystone token}}} (may be
   NULL); keys: signing keys (count may be 0). error_text gets
   "file:line: what" on failure. */
int auth_token__local_new(auth_local **out, const char *tokens_file, char *const *keys,
                          const size_t *key_lens, size_t count, char *error_text,
                          size_t error_size);
void auth_token__local_free(auth_local *local);

/* AUTH_VALID (*out set, the caller's), AUTH_INVALID (a signed token whose
   signature, form or time is wrong, a listed token expired), AUTH_MISS
   (neither source knows it), or CSGI_ENOMEM. */
int auth_token__local_check(const auth_local *local, const char *token, size_t len,
                            auth_identity **out);

/* ---- The identity service (auth_token_remote.c) ---------------------------------- */

typedef struct auth_remote auth_remote;
typedef struct auth_call auth_call;

/* The end of a call: AUTH_VALID with the identity (taken), AUTH_INVALID,
   or an error (the service cannot say). */
typedef void (*auth_remote_done_fn)(void *userdata, int status, auth_identity *identity);

/* From the conf's auth_url and credentials: 0 with *out NULL when there is
   no auth_url. */
int auth_token__remote_new(auth_remote **out, const csgi_conf *conf, int with_catalog,
                           csgi_load_error *error);
void auth_token__remote_free(auth_remote *remote);

/* Ask the identity service about token, on the request's loop: done runs
   later, from the loop, unless the call is cancelled. NULL when it cannot
   start (out of memory, no loop). */
auth_call *auth_token__remote_check(auth_remote *remote, csgi_request *request, const char *token,
                                    size_t len, auth_remote_done_fn done, void *userdata);
void auth_token__remote_cancel(auth_call *call);

#endif
