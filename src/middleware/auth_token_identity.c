/*
 * auth_token: what a valid keystone token says, taken from the token
 * document keystone's GET /v3/auth/tokens answers, and the headers it
 * becomes for the service behind (keystonemiddleware's X-User-Id,
 * X-Project-Id, X-Roles, ... and their X-Service-* twins).
 */
#include "common/alloc.h"
#include "middleware/auth_token.h"

#include <csgi/common.h>

#include <jansson.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

/* A key and its length. */
#define K(key) key, sizeof(key) - 1

const auth_field_keys auth_token__fields[AUTH_FIELD_COUNT] = {
    [AUTH_USER_ID] = {K("HTTP_X_USER_ID"), K("HTTP_X_SERVICE_USER_ID")},
    [AUTH_USER_NAME] = {K("HTTP_X_USER_NAME"), K("HTTP_X_SERVICE_USER_NAME")},
    [AUTH_USER_DOMAIN_ID] = {K("HTTP_X_USER_DOMAIN_ID"), K("HTTP_X_SERVICE_USER_DOMAIN_ID")},
    [AUTH_USER_DOMAIN_NAME] = {K("HTTP_X_USER_DOMAIN_NAME"), K("HTTP_X_SERVICE_USER_DOMAIN_NAME")},
    [AUTH_PROJECT_ID] = {K("HTTP_X_PROJECT_ID"), K("HTTP_X_SERVICE_PROJECT_ID")},
    [AUTH_PROJECT_NAME] = {K("HTTP_X_PROJECT_NAME"), K("HTTP_X_SERVICE_PROJECT_NAME")},
    [AUTH_PROJECT_DOMAIN_ID] = {K("HTTP_X_PROJECT_DOMAIN_ID"),
                                K("HTTP_X_SERVICE_PROJECT_DOMAIN_ID")},
    [AUTH_PROJECT_DOMAIN_NAME] = {K("HTTP_X_PROJECT_DOMAIN_NAME"),
                                  K("HTTP_X_SERVICE_PROJECT_DOMAIN_NAME")},
    [AUTH_DOMAIN_ID] = {K("HTTP_X_DOMAIN_ID"), K("HTTP_X_SERVICE_DOMAIN_ID")},
    [AUTH_DOMAIN_NAME] = {K("HTTP_X_DOMAIN_NAME"), K("HTTP_X_SERVICE_DOMAIN_NAME")},
    [AUTH_ROLES] = {K("HTTP_X_ROLES"), K("HTTP_X_SERVICE_ROLES")},
    [AUTH_IS_ADMIN_PROJECT] = {K("HTTP_X_IS_ADMIN_PROJECT"), NULL, 0},
    [AUTH_SYSTEM_SCOPE] = {K("HTTP_X_SYSTEM_SCOPE"), K("HTTP_X_SERVICE_SYSTEM_SCOPE")},
    [AUTH_CATALOG] = {K("HTTP_X_SERVICE_CATALOG"), NULL, 0},
};

/* "2026-12-03T20:00:00.000000Z" (or +hh:mm) as Unix time; -1 when not. */
static int64_t parse_time(const char *text)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int used = 0;
    if (!text ||
        sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &used) != 6 ||
        used != 19)
        return -1;
    const char *p = text + used;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    long offset = 0;
    if (*p == '+' || *p == '-') {
        int hours, minutes, n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hours, &minutes, &n) != 2 || n != 5)
            return -1;
        offset = (*p == '-' ? -1 : 1) * (hours * 3600L + minutes * 60L);
        p += 6;
    } else if (*p == 'Z') {
        p++;
    }
    if (*p)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) - offset;
}

/* Where a field's text is while the identity is being built. */
typedef struct texts {
    const char *value[AUTH_FIELD_COUNT];
    char *owned[AUTH_FIELD_COUNT]; /* freed after copying */
} texts;

static const char *string_at(json_t *object, const char *key)
{
    return json_string_value(json_object_get(object, key));
}

static void named(texts *t, json_t *object, auth_field id, auth_field name)
{
    t->value[id] = string_at(object, "id");
    t->value[name] = string_at(object, "name");
}

/* The role names joined with commas (owned), or NULL. */
static char *join_roles(json_t *roles)
{
    size_t total = 1, i;
    json_t *role;
    json_array_foreach(roles, i, role)
    {
        const char *name = string_at(role, "name");
        if (name)
            total += strlen(name) + 1;
    }
    char *out = csgi__malloc(total);
    if (!out)
        return NULL;
    out[0] = '\0';
    size_t at = 0;
    json_array_foreach(roles, i, role)
    {
        const char *name = string_at(role, "name");
        if (!name)
            continue;
        at += (size_t)snprintf(out + at, total - at, "%s%s", at ? "," : "", name);
    }
    return out;
}

/* The names services older than keystone's v3 headers still read, and
   the field each takes its value from. */
static const struct {
    csgi_environ__key key;
    auth_field field;
} older[] = {
    {{"HTTP_X_TENANT_ID", 16}, AUTH_PROJECT_ID}, {{"HTTP_X_TENANT_NAME", 18}, AUTH_PROJECT_NAME},
    {{"HTTP_X_TENANT", 13}, AUTH_PROJECT_NAME},  {{"HTTP_X_USER", 11}, AUTH_USER_NAME},
    {{"HTTP_X_ROLE", 11}, AUTH_ROLES},
};

/* A user token's headers, set by every request that carries it: made once. */
static void add_header(auth_identity *identity, const char *key, size_t key_len, auth_field f)
{
    size_t n = identity->header_count++;
    identity->header_key[n].name = key;
    identity->header_key[n].len = key_len;
    identity->header_value[n] = identity->value[f];
    identity->header_len[n] = identity->len[f];
}

static void make_headers(auth_identity *identity)
{
    identity->header_count = 0;
    for (int f = 0; f < AUTH_FIELD_COUNT; f++)
        if (f != AUTH_CATALOG && identity->value[f] && auth_token__fields[f].user)
            add_header(identity, auth_token__fields[f].user, auth_token__fields[f].user_len,
                       (auth_field)f);
    for (size_t i = 0; i < sizeof(older) / sizeof(older[0]); i++)
        if (identity->value[older[i].field])
            add_header(identity, older[i].key.name, older[i].key.len, older[i].field);
    identity->catalog_last = identity->value[AUTH_CATALOG] != NULL;
    if (identity->catalog_last)
        add_header(identity, auth_token__fields[AUTH_CATALOG].user,
                   auth_token__fields[AUTH_CATALOG].user_len, AUTH_CATALOG);
}

void auth_token__identity_unref(void *identity)
{
    auth_identity *i = identity;
    if (i && __atomic_sub_fetch(&i->refs, 1, __ATOMIC_ACQ_REL) == 0)
        csgi__free(i);
}

/* One block holding the identity and copies of the texts. */
static auth_identity *pack(const texts *t, int64_t expires)
{
    size_t size = sizeof(auth_identity);
    for (int f = 0; f < AUTH_FIELD_COUNT; f++)
        if (t->value[f])
            size += strlen(t->value[f]) + 1;
    auth_identity *identity = csgi__malloc(size);
    if (!identity)
        return NULL;
    identity->size = size;
    identity->refs = 1;
    identity->expires = expires;
    char *at = (char *)(identity + 1);
    for (int f = 0; f < AUTH_FIELD_COUNT; f++) {
        identity->value[f] = NULL;
        identity->len[f] = 0;
        if (!t->value[f])
            continue;
        size_t len = strlen(t->value[f]) + 1;
        memcpy(at, t->value[f], len);
        identity->value[f] = at;
        identity->len[f] = len - 1;
        at += len;
    }
    make_headers(identity);
    return identity;
}

int auth_token__identity(auth_identity **out, json_t *document, int with_catalog)
{
    *out = NULL;
    json_t *token = json_object_get(document, "token");
    if (!token)
        token = document;
    json_t *user = json_object_get(token, "user");
    int64_t expires = parse_time(string_at(token, "expires_at"));
    if (!json_is_object(user) || expires < 0 || !string_at(user, "id"))
        return CSGI_EPARSE;
    texts t;
    memset(&t, 0, sizeof(t));
    named(&t, user, AUTH_USER_ID, AUTH_USER_NAME);
    named(&t, json_object_get(user, "domain"), AUTH_USER_DOMAIN_ID, AUTH_USER_DOMAIN_NAME);
    json_t *project = json_object_get(token, "project");
    if (json_is_object(project)) {
        named(&t, project, AUTH_PROJECT_ID, AUTH_PROJECT_NAME);
        named(&t, json_object_get(project, "domain"), AUTH_PROJECT_DOMAIN_ID,
              AUTH_PROJECT_DOMAIN_NAME);
    }
    json_t *domain = json_object_get(token, "domain");
    if (json_is_object(domain))
        named(&t, domain, AUTH_DOMAIN_ID, AUTH_DOMAIN_NAME);
    json_t *system = json_object_get(token, "system");
    if (json_is_true(json_object_get(system, "all")))
        t.value[AUTH_SYSTEM_SCOPE] = "all";
    json_t *admin = json_object_get(token, "is_admin_project");
    if (json_is_boolean(admin))
        t.value[AUTH_IS_ADMIN_PROJECT] = json_is_true(admin) ? "True" : "False";
    int rc = 0;
    json_t *roles = json_object_get(token, "roles");
    if (json_is_array(roles) && !(t.value[AUTH_ROLES] = t.owned[AUTH_ROLES] = join_roles(roles)))
        rc = CSGI_ENOMEM;
    json_t *catalog = json_object_get(token, "catalog");
    if (rc == 0 && with_catalog && json_is_array(catalog) &&
        !(t.value[AUTH_CATALOG] = t.owned[AUTH_CATALOG] =
              json_dumps(catalog, JSON_COMPACT | JSON_ENSURE_ASCII)))
        rc = CSGI_ENOMEM;
    if (rc == 0 && !(*out = pack(&t, expires)))
        rc = CSGI_ENOMEM;
    csgi__free(t.owned[AUTH_ROLES]);
    free(t.owned[AUTH_CATALOG]); /* jansson's allocation */
    return rc;
}

int auth_token__has_roles(const auth_identity *identity, const char *const *roles, size_t count)
{
    const char *have = identity->value[AUTH_ROLES];
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(roles[i]);
        int found = 0;
        for (const char *p = have; p && *p && !found;) {
            const char *end = strchr(p, ',');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            found = n == len && strncmp(p, roles[i], len) == 0;
            p = end ? end + 1 : NULL;
        }
        if (!found)
            return 0;
    }
    return 1;
}
