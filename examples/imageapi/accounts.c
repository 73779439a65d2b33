/*
 * The users file of the identity part (accounts.h): read and checked once,
 * then looked up by id or by name within a domain. The files are small (a
 * cloud's handful of service users and people), so lookups walk arrays.
 */
#include "accounts.h"

#include <crypt.h>
#include <openssl/crypto.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct imageapi_accounts {
    json_t *file;
    json_t *domains, *projects, *roles, *users;
};

/* Hashed in place of the hash of a user that does not exist: yescrypt at
   the default cost, as imageapi-passwd makes them. */
static const char unknown_user_setting[] = "$y$j9T$imageapi.unknown.user.";

static const char *string_at(const json_t *object, const char *key)
{
    return json_string_value(json_object_get(object, key));
}

static int problem(char *err, size_t err_size, const char *path, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

static int problem(char *err, size_t err_size, const char *path, const char *format, ...)
{
    int used = snprintf(err, err_size, "%s: ", path);
    if (used >= 0 && (size_t)used < err_size) {
        va_list args;
        va_start(args, format);
        vsnprintf(err + used, err_size - (size_t)used, format, args);
        va_end(args);
    }
    return -1;
}

/* The entry of list whose "id", or else "name", is key. */
static json_t *find(const json_t *list, const char *key)
{
    size_t index;
    json_t *item;
    json_t *named = NULL;
    json_array_foreach(list, index, item)
    {
        if (key && strcmp(string_at(item, "id"), key) == 0)
            return item;
        if (key && !named && strcmp(string_at(item, "name"), key) == 0)
            named = item;
    }
    return named;
}

/* The entry of list named name in domain (matched by domain_id). */
static json_t *find_in_domain(const json_t *list, const char *name, const json_t *domain)
{
    const char *domain_id = string_at(domain, "id");
    size_t index;
    json_t *item;
    json_array_foreach(list, index, item)
    {
        if (name && domain_id && strcmp(string_at(item, "name"), name) == 0 &&
            strcmp(string_at(item, "domain_id"), domain_id) == 0)
            return item;
    }
    return NULL;
}

/* Each entry of what is an object with string members named in keys
   (NULL-terminated), ids unique. */
static int check_list(json_t *file, const char *what, const char *const *keys, const char *path,
                      char *err, size_t err_size)
{
    json_t *list = json_object_get(file, what);
    if (!json_is_array(list))
        return problem(err, err_size, path, "no \"%s\" array", what);
    size_t index;
    json_t *item;
    json_array_foreach(list, index, item)
    {
        for (const char *const *key = keys; *key; key++)
            if (!json_is_string(json_object_get(item, *key)) || !*string_at(item, *key))
                return problem(err, err_size, path, "%s[%zu]: no \"%s\" string", what, index, *key);
        const char *id = string_at(item, "id");
        for (size_t other = 0; other < index; other++)
            if (strcmp(string_at(json_array_get(list, other), "id"), id) == 0)
                return problem(err, err_size, path, "%s[%zu]: id \"%s\" used twice", what, index,
                               id);
        const char *domain_id = string_at(item, "domain_id");
        if (domain_id && !find(json_object_get(file, "domains"), domain_id))
            return problem(err, err_size, path, "%s[%zu]: no domain \"%s\"", what, index,
                           domain_id);
    }
    return 0;
}

/* Resolve a user's "roles" (by project and role id or name) into
   "_roles": {project id: [{"id", "name"}]}, and default_project into
   "_default_project" (an id). */
static int resolve_user(imageapi_accounts *a, json_t *user, size_t index, const char *path,
                        char *err, size_t err_size)
{
    if (!json_is_string(json_object_get(user, "password_hash")) ||
        string_at(user, "password_hash")[0] != '$')
        return problem(err, err_size, path, "users[%zu]: no \"password_hash\" (a crypt hash)",
                       index);
    json_t *enabled = json_object_get(user, "enabled");
    if (enabled && !json_is_boolean(enabled))
        return problem(err, err_size, path, "users[%zu]: \"enabled\" is not true or false", index);
    json_t *resolved = json_object();
    if (!resolved || json_object_set_new(user, "_roles", resolved) != 0)
        return problem(err, err_size, path, "out of memory");
    json_t *granted = json_object_get(user, "roles");
    if (granted && !json_is_object(granted))
        return problem(err, err_size, path, "users[%zu]: \"roles\" is not an object", index);
    const char *key;
    json_t *names;
    json_object_foreach(granted, key, names)
    {
        json_t *project = find(a->projects, key);
        if (!project)
            return problem(err, err_size, path, "users[%zu]: roles: no project \"%s\"", index, key);
        if (!json_is_array(names))
            return problem(err, err_size, path, "users[%zu]: roles: \"%s\" is not a list", index,
                           key);
        json_t *list = json_array();
        if (!list || json_object_set_new(resolved, string_at(project, "id"), list) != 0)
            return problem(err, err_size, path, "out of memory");
        size_t at;
        json_t *name;
        json_array_foreach(names, at, name)
        {
            json_t *role = find(a->roles, json_string_value(name));
            if (!role)
                return problem(err, err_size, path, "users[%zu]: roles: \"%s\": no role %s%s%s",
                               index, key, json_is_string(name) ? "\"" : "",
                               json_is_string(name) ? json_string_value(name) : "(not a string)",
                               json_is_string(name) ? "\"" : "");
            if (json_array_append_new(list, json_pack("{sOsO}", "id", json_object_get(role, "id"),
                                                      "name", json_object_get(role, "name"))) != 0)
                return problem(err, err_size, path, "out of memory");
        }
    }
    json_t *preferred = json_object_get(user, "default_project");
    if (preferred) {
        json_t *project = find(a->projects, json_string_value(preferred));
        if (!project)
            return problem(err, err_size, path, "users[%zu]: default_project: no such project",
                           index);
        json_object_set(user, "_default_project", json_object_get(project, "id"));
    }
    return 0;
}

int imageapi_accounts_load(imageapi_accounts **out, const char *path, char *err, size_t err_size)
{
    *out = NULL;
    json_error_t error;
    json_t *file = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
    if (!file) {
        if (error.line > 0)
            return problem(err, err_size, path, "line %d: %s", error.line, error.text);
        return problem(err, err_size, path, "%s", error.text);
    }
    imageapi_accounts *a = calloc(1, sizeof(*a));
    if (!a) {
        json_decref(file);
        return problem(err, err_size, path, "out of memory");
    }
    a->file = file;
    static const char *const named[] = {"id", "name", NULL};
    static const char *const placed[] = {"id", "name", "domain_id", NULL};
    int rc = !json_is_object(file) ? problem(err, err_size, path, "not a JSON object") : 0;
    if (!rc)
        rc = check_list(file, "domains", named, path, err, err_size);
    if (!rc)
        rc = check_list(file, "projects", placed, path, err, err_size);
    if (!rc)
        rc = check_list(file, "roles", named, path, err, err_size);
    if (!rc)
        rc = check_list(file, "users", placed, path, err, err_size);
    a->domains = json_object_get(file, "domains");
    a->projects = json_object_get(file, "projects");
    a->roles = json_object_get(file, "roles");
    a->users = json_object_get(file, "users");
    size_t index;
    json_t *user;
    json_array_foreach(a->users, index, user)
    {
        if (!rc)
            rc = resolve_user(a, user, index, path, err, err_size);
    }
    if (rc) {
        imageapi_accounts_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void imageapi_accounts_free(imageapi_accounts *accounts)
{
    if (!accounts)
        return;
    json_decref(accounts->file);
    free(accounts);
}

json_t *imageapi_accounts_domain(const imageapi_accounts *accounts, const char *id,
                                 const char *name)
{
    size_t index;
    json_t *domain;
    json_array_foreach(accounts->domains, index, domain)
    {
        if (id ? strcmp(string_at(domain, "id"), id) == 0
               : name && strcmp(string_at(domain, "name"), name) == 0)
            return domain;
    }
    return NULL;
}

static json_t *by_id(const json_t *list, const char *id)
{
    size_t index;
    json_t *item;
    json_array_foreach(list, index, item)
    {
        if (strcmp(string_at(item, "id"), id) == 0)
            return item;
    }
    return NULL;
}

json_t *imageapi_accounts_user(const imageapi_accounts *accounts, const char *id, const char *name,
                               const json_t *domain)
{
    return id ? by_id(accounts->users, id) : find_in_domain(accounts->users, name, domain);
}

json_t *imageapi_accounts_project(const imageapi_accounts *accounts, const char *id,
                                  const char *name, const json_t *domain)
{
    return id ? by_id(accounts->projects, id) : find_in_domain(accounts->projects, name, domain);
}

json_t *imageapi_accounts_project_at(const imageapi_accounts *accounts, size_t index)
{
    return json_array_get(accounts->projects, index);
}

json_t *imageapi_accounts_default_project(const imageapi_accounts *accounts, const json_t *user)
{
    const char *id = string_at(user, "_default_project");
    return id ? by_id(accounts->projects, id) : NULL;
}

json_t *imageapi_accounts_roles(const imageapi_accounts *accounts, const json_t *user,
                                const json_t *project)
{
    (void)accounts;
    json_t *roles = json_object_get(json_object_get(user, "_roles"), string_at(project, "id"));
    return roles ? json_deep_copy(roles) : json_array();
}

int imageapi_accounts_check_password(const json_t *user, const char *password)
{
    const char *hash = user ? string_at(user, "password_hash") : unknown_user_setting;
    struct crypt_data *data = calloc(1, sizeof(*data));
    if (!data || !password)
        return free(data), 0;
    const char *computed = crypt_rn(password, hash, data, sizeof(*data));
    size_t len = strlen(hash);
    int same = computed && computed[0] != '*' && strlen(computed) == len &&
               CRYPTO_memcmp(computed, hash, len) == 0;
    OPENSSL_cleanse(data, sizeof(*data));
    free(data);
    return same && user && !json_is_false(json_object_get(user, "enabled"));
}
