/*
 * The basic_auth filter (egg:csgi#basic_auth) and its INI factory: HTTP
 * Basic authentication (RFC 7617) against an htpasswd file read at load.
 *
 * Only hashes of crypt(3) schemes that libxcrypt computes and that are
 * still fit for passwords are accepted: bcrypt ($2y$, $2b$), SHA-crypt
 * ($5$, $6$) and yescrypt ($y$). Plain-text passwords, Apache's $apr1$
 * MD5 and unsalted {SHA} entries are refused at load, naming the file
 * and line, as is anything else: a server that silently accepted them
 * would keep weak hashes in use.
 *
 * Per request: a missing, malformed (not "Basic", bad base64, no colon, a
 * NUL byte) or wrong Authorization is answered 401 with WWW-Authenticate.
 * The hash is computed with crypt_rn() on a struct crypt_data of the call's
 * own (thread safe), for an unknown user too (with the first entry's
 * setting, so that the time taken does not tell which users exist), and
 * compared in constant time (CRYPTO_memcmp). On success the environ gets
 * REMOTE_USER and AUTH_TYPE = Basic, and loses HTTP_AUTHORIZATION, so the
 * password goes no further than this filter. A client cannot set
 * REMOTE_USER itself: its headers all land under HTTP_ names.
 *
 * A hash costs milliseconds of CPU by design: on the event loop it delays
 * every other request of that loop. Behind egg:csgi#threadpool it runs
 * on a pool thread instead.
 */
#include "common/alloc.h"
#include "common/vec.h"
#include "middleware/middleware.h"

#include <csgi/handler.h>

#include <crypt.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CREDENTIALS_MAX 1024 /* bytes of base64 taken */
#define USER_MAX        256
#define USERS_MAX       100000

typedef struct entry {
    char *user;
    char *hash;
} entry;

typedef struct basic_auth {
    entry *entries;
    size_t count;
    char *challenge; /* the WWW-Authenticate value */
} basic_auth;

static int base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Strict base64 (RFC 4648, padding required) of in into out (len / 4 * 3
   bytes at least); -1 when malformed, else the decoded length. */
static long base64_decode(const char *in, size_t len, unsigned char *out)
{
    if (len == 0 || len % 4 != 0)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + k];
            if (c == '=' && i + 4 == len && k >= 2) {
                pad++;
                v[k] = 0;
                continue;
            }
            v[k] = base64_value(c);
            if (v[k] < 0 || pad)
                return -1;
        }
        out[n++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        if (pad < 2)
            out[n++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
        if (pad < 1)
            out[n++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
    }
    return (long)n;
}

static const entry *find(const basic_auth *a, const char *user)
{
    for (size_t i = 0; i < a->count; i++)
        if (strcmp(a->entries[i].user, user) == 0)
            return &a->entries[i];
    return NULL;
}

/* password checks against user's hash; for an unknown user the same work
   is done against the first entry's setting, and fails. */
static bool check(const basic_auth *a, const char *user, const char *password)
{
    const entry *e = find(a, user);
    const char *hash = e ? e->hash : a->entries[0].hash;
    struct crypt_data *data = csgi__calloc(1, sizeof(*data));
    if (!data)
        return false;
    const char *result = crypt_rn(password, hash, data, (int)sizeof(*data));
    size_t len = strlen(hash);
    bool same = result && strlen(result) == len && CRYPTO_memcmp(result, hash, len) == 0;
    OPENSSL_cleanse(data, sizeof(*data));
    csgi__free(data);
    return same && e != NULL;
}

static csgi_response *refuse(csgi_request *request, const basic_auth *a)
{
    csgi_response *response = csgi_handler_error(request, 401, "Authentication required.");
    if (response && csgi_response_set_header(response, "WWW-Authenticate", a->challenge) != 0)
        return NULL;
    return response;
}

static csgi_response *basic_auth_filter(csgi_request *request, csgi_app *next, void *userdata)
{
    const basic_auth *a = userdata;
    size_t len = 0;
    const char *value = csgi_request_header(request, "Authorization", &len);
    if (!value || len < 6 || strncasecmp(value, "Basic ", 6) != 0)
        return refuse(request, a);
    const char *encoded = value + 6;
    while (*encoded == ' ')
        encoded++;
    size_t encoded_len = len - (size_t)(encoded - value);
    if (encoded_len > CREDENTIALS_MAX)
        return refuse(request, a);
    unsigned char decoded[CREDENTIALS_MAX / 4 * 3 + 1];
    long n = base64_decode(encoded, encoded_len, decoded);
    char *colon = n > 0 ? memchr(decoded, ':', (size_t)n) : NULL;
    if (!colon || memchr(decoded, '\0', (size_t)n) || colon - (char *)decoded > USER_MAX) {
        OPENSSL_cleanse(decoded, sizeof(decoded));
        return refuse(request, a);
    }
    decoded[n] = '\0';
    *colon = '\0';
    const char *user = (const char *)decoded;
    bool ok = check(a, user, colon + 1);
    csgi_environ *environ = csgi_request_environ(request);
    int rc = 0;
    if (ok) {
        rc = csgi_environ_set(environ, "REMOTE_USER", user);
        if (rc == 0)
            rc = csgi_environ_set(environ, "AUTH_TYPE", "Basic");
        if (rc == 0)
            csgi_environ_remove(environ, "HTTP_AUTHORIZATION");
    } else {
        char shown[USER_MAX + 8];
        csgi_middleware__escape(shown, sizeof(shown), user, strlen(user));
        csgi_environ_log_at(environ, 1, "basic_auth: wrong password or unknown user '%s'", shown);
    }
    OPENSSL_cleanse(decoded, sizeof(decoded));
    if (rc != 0)
        return NULL;
    return ok ? csgi_handler_forward(request, next) : refuse(request, a);
}

/* ---- INI factory --------------------------------------------------------------------- */

static void basic_auth_destroy(void *userdata)
{
    basic_auth *a = userdata;
    if (!a)
        return;
    for (size_t i = 0; i < a->count; i++) {
        csgi__free(a->entries[i].user);
        csgi__free(a->entries[i].hash);
    }
    csgi__free(a->entries);
    csgi__free(a->challenge);
    csgi__free(a);
}

/* hash ends in a checksum of digest characters of crypt's alphabet after
   its last '$' (bcrypt: the 22 characters of salt and 31 of checksum). */
static bool well_formed(const char *hash, size_t digest)
{
    const char *last = strrchr(hash, '$');
    size_t len = strlen(last + 1);
    return crypt_checksalt(hash) != CRYPT_SALT_INVALID && len == digest &&
           strspn(last + 1, "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") ==
               len;
}

/* Why hash cannot be used, or NULL when it can. */
static const char *refused(const char *hash)
{
    static const struct {
        const char *prefix;
        size_t digest;
    } accepted[] = {{"$2y$", 53}, {"$2b$", 53}, {"$5$", 43}, {"$6$", 86}, {"$y$", 43}};
    if (strncmp(hash, "$apr1$", 6) == 0)
        return "Apache's MD5 ($apr1$) is weak and not a crypt(3) scheme: re-hash it with "
               "htpasswd -B (bcrypt)";
    if (strncmp(hash, "{SHA}", 5) == 0)
        return "unsalted SHA-1 ({SHA}) is refused: re-hash it with htpasswd -B (bcrypt)";
    if (hash[0] != '$')
        return "a plain-text password (or a DES crypt hash) is refused: hash it with "
               "htpasswd -B (bcrypt)";
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++)
        if (strncmp(hash, accepted[i].prefix, strlen(accepted[i].prefix)) == 0)
            return well_formed(hash, accepted[i].digest) ? NULL : "a malformed hash";
    return "an unsupported hash scheme (accepted: bcrypt $2y$ $2b$, SHA-crypt $5$ $6$, "
           "yescrypt $y$)";
}

/* Add user:hash of the htpasswd line number. */
static int add_line(basic_auth *a, size_t *cap, char *line, const char *path, unsigned number,
                    const csgi_conf *conf, csgi_load_error *error)
{
    char *colon = strchr(line, ':');
    if (!colon || colon == line || strchr(colon + 1, ':')) {
        csgi_conf_error(conf, "htpasswd", error, "%s:%u: not a user:hash line", path, number);
        return CSGI_EINVAL;
    }
    *colon = '\0';
    const char *why = refused(colon + 1);
    if (!why && find(a, line))
        why = "the user is listed twice";
    if (!why && strlen(line) > USER_MAX)
        why = "the user name is too long";
    if (why) {
        csgi_conf_error(conf, "htpasswd", error, "%s:%u: user '%.64s': %s", path, number, line,
                        why);
        return CSGI_EINVAL;
    }
    void *items = a->entries;
    int rc = csgi_vec__reserve(&items, cap, sizeof(entry), a->count + 1, USERS_MAX);
    a->entries = items;
    if (rc == CSGI_ETOOBIG)
        csgi_conf_error(conf, "htpasswd", error, "%s: more than %d users", path, USERS_MAX);
    if (rc != 0)
        return rc;
    entry *e = &a->entries[a->count];
    e->user = csgi__strndup(line, strlen(line));
    e->hash = csgi__strndup(colon + 1, strlen(colon + 1));
    if (!e->user || !e->hash) {
        csgi__free(e->user);
        csgi__free(e->hash);
        return CSGI_ENOMEM;
    }
    a->count++;
    return 0;
}

static int read_htpasswd(basic_auth *a, const char *path, const csgi_conf *conf,
                         csgi_load_error *error)
{
    FILE *file = fopen(path, "re");
    if (!file) {
        csgi_conf_error(conf, "htpasswd", error, "cannot open %s: %s", path, strerror(errno));
        return errno == EACCES ? CSGI_EACCESS : CSGI_ESYSTEM;
    }
    char *line = NULL;
    size_t size = 0, cap = 0;
    unsigned number = 0;
    int rc = 0;
    ssize_t n;
    while (rc == 0 && (n = getline(&line, &size, file)) >= 0) {
        number++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n > 0 && line[0] != '#')
            rc = add_line(a, &cap, line, path, number, conf, error);
    }
    free(line);
    fclose(file);
    if (rc == 0 && a->count == 0) {
        csgi_conf_error(conf, "htpasswd", error, "%s lists no user", path);
        rc = CSGI_EINVAL;
    }
    return rc;
}

static int setup(void **userdata, csgi_destroy_fn *destroy, const csgi_conf *global_conf,
                 const csgi_conf *local_conf, csgi_load_error *error)
{
    (void)global_conf;
    static const char *const known[] = {"htpasswd", "realm", NULL};
    int rc = csgi_middleware__known_keys(local_conf, "basic_auth", known, error);
    if (rc != 0)
        return rc;
    const char *path = csgi_conf_get(local_conf, "htpasswd");
    const char *realm = csgi_conf_get(local_conf, "realm");
    if (!path || !*path) {
        csgi_conf_error(local_conf, "htpasswd", error, "basic_auth needs an htpasswd file");
        return CSGI_EINVAL;
    }
    if (!realm)
        realm = "csgi";
    for (const char *p = realm; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\') {
            csgi_conf_error(local_conf, "realm", error,
                            "must not hold quotes, backslashes or control characters");
            return CSGI_EINVAL;
        }
    }
    basic_auth *a = csgi__calloc(1, sizeof(*a));
    if (!a)
        return CSGI_ENOMEM;
    size_t size = strlen(realm) + 48;
    a->challenge = csgi__malloc(size);
    if (!a->challenge) {
        basic_auth_destroy(a);
        return CSGI_ENOMEM;
    }
    snprintf(a->challenge, size, "Basic realm=\"%s\", charset=\"UTF-8\"", realm);
    rc = read_htpasswd(a, path, local_conf, error);
    if (rc != 0) {
        basic_auth_destroy(a);
        return rc;
    }
    *userdata = a;
    *destroy = basic_auth_destroy;
    return 0;
}

int csgi_basic_auth__filter_factory(csgi_app **out, csgi_loader *loader,
                                    const csgi_conf *global_conf, const csgi_conf *local_conf,
                                    csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    return csgi_handler_filter_factory(out, global_conf, local_conf, next, "basic_auth",
                                       basic_auth_filter, setup, error);
}
