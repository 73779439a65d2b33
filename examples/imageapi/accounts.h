/*
 * The identity part's accounts: domains, projects, roles and users from
 * the users file (accounts_file), read once when the identity app is
 * built. Passwords are libxcrypt hashes ("$y$..." yescrypt by default),
 * never plain text.
 *
 *   {"domains":  [{"id": "default", "name": "Default"}],
 *    "projects": [{"id": "<hex>", "name": "demo", "domain_id": "default"}],
 *    "roles":    [{"id": "<hex>", "name": "admin"}],
 *    "users":    [{"id": "<hex>", "name": "admin", "domain_id": "default",
 *                  "password_hash": "$y$...", "default_project": "demo",
 *                  "enabled": true,
 *                  "roles": {"demo": ["admin", "member"]}}]}
 *
 * A user's roles are keyed by project id or name, and name roles by name
 * or id; default_project is a project id or name; enabled is optional
 * (true). Every reference is checked at load.
 */
#ifndef IMAGEAPI_ACCOUNTS_H
#define IMAGEAPI_ACCOUNTS_H

#include <jansson.h>

#include <stddef.h>

typedef struct imageapi_accounts imageapi_accounts;

/* Read path. 0, or -1 with "path: what is wrong" in err. */
int imageapi_accounts_load(imageapi_accounts **out, const char *path, char *err, size_t err_size);

/* Free the accounts (NULL allowed). */
void imageapi_accounts_free(imageapi_accounts *accounts);

/* The lookups return objects of the file (borrowed, valid as long as the
   accounts), or NULL. */

/* The domain with this id, or else with this name (either may be NULL). */
json_t *imageapi_accounts_domain(const imageapi_accounts *accounts, const char *id,
                                 const char *name);

/* The user with id; or named name in domain (a domain object). */
json_t *imageapi_accounts_user(const imageapi_accounts *accounts, const char *id, const char *name,
                               const json_t *domain);

/* The project with id; or named name in domain (a domain object). */
json_t *imageapi_accounts_project(const imageapi_accounts *accounts, const char *id,
                                  const char *name, const json_t *domain);

/* The index-th project of the file, or NULL past the end. */
json_t *imageapi_accounts_project_at(const imageapi_accounts *accounts, size_t index);

/* The user's default project, or NULL. */
json_t *imageapi_accounts_default_project(const imageapi_accounts *accounts, const json_t *user);

/* The user's roles on project: a new array of {"id", "name"} (empty when
   none), or NULL when memory ran out. */
json_t *imageapi_accounts_roles(const imageapi_accounts *accounts, const json_t *user,
                                const json_t *project);

/* 1 when user is enabled and password is theirs. The hash is computed
   also for a NULL user (against a fixed hash), so an unknown name takes
   as long as a wrong password; the comparison is in constant time. */
int imageapi_accounts_check_password(const json_t *user, const char *password);

#endif
