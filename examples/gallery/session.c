/*
 * Who is signed in: the users file (libxcrypt hashes checked with
 * crypt_rn), the session cookie "USER.EXPIRES.MAC" where MAC is the
 * HMAC-SHA256 of "USER.EXPIRES" under a key kept in the state directory,
 * and the CSRF token, the HMAC of "csrf:" and the cookie: it changes with
 * every sign-in and cannot be made without the key.
 */
#include "gallery.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SESSION_SECONDS (8 * 3600)
#define MAC_HEX         64

/* Hashed for a user that does not exist, so that both take as long. */
static const char unknown_user_setting[] = "$6$gallerysaltX$";

static int valid_user_name(const char *name, size_t len)
{
    if (len == 0 || len > 32)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", name[i]) ||
            name[i] == '\0')
            return 0;
    return 1;
}

int gallery_check_password(const gallery_config *config, const char *user, const char *password)
{
    if (!user || !password || !valid_user_name(user, strlen(user)))
        return -1;
    json_t *users = json_load_file(config->users_file, 0, NULL);
    const char *hash = NULL;
    size_t i;
    json_t *entry;
    json_array_foreach(json_object_get(users, "users"), i, entry)
    {
        const char *name = json_string_value(json_object_get(entry, "name"));
        if (name && strcmp(name, user) == 0)
            hash = json_string_value(json_object_get(entry, "password_hash"));
    }
    const char *setting = hash ? hash : unknown_user_setting;
    struct crypt_data *data = calloc(1, sizeof(*data));
    const char *computed = data ? crypt_rn(password, setting, data, sizeof(*data)) : NULL;
    size_t len = strlen(setting);
    int same = hash && computed && computed[0] != '*' && strlen(computed) == len &&
               CRYPTO_memcmp(computed, setting, len) == 0;
    if (data)
        OPENSSL_cleanse(data, sizeof(*data));
    free(data);
    json_decref(users);
    return same ? 0 : -1;
}

/* HMAC-SHA256 of text under the key, as 64 hex digits and a NUL. */
static void mac_hex(const gallery_config *config, const char *text, size_t len,
                    char out[MAC_HEX + 1])
{
    unsigned char mac[32];
    unsigned mac_len = 0;
    HMAC(EVP_sha256(), config->key, sizeof(config->key), (const unsigned char *)text, len, mac,
         &mac_len);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

const char *gallery_session_new(csgi_request *request, const gallery_config *config,
                                const char *user)
{
    csgi_environ *environ = csgi_request_environ(request);
    char *value = csgi_environ_alloc(environ, 160);
    if (!value || !valid_user_name(user, strlen(user)))
        return NULL;
    int n = snprintf(value, 160, "%s.%lld", user, (long long)time(NULL) + SESSION_SECONDS);
    char mac[MAC_HEX + 1];
    mac_hex(config, value, (size_t)n, mac);
    snprintf(value + n, 160 - (size_t)n, ".%s", mac);
    return value;
}

/* The session cookie when its MAC is right and it has not expired, else NULL. */
static const char *valid_cookie(csgi_request *request, const gallery_config *config)
{
    size_t len = 0;
    const char *cookie = csgi_request_cookie(request, GALLERY_COOKIE, &len);
    const char *last = cookie ? memrchr(cookie, '.', len) : NULL;
    if (!last || (size_t)(cookie + len - last - 1) != MAC_HEX)
        return NULL;
    char mac[MAC_HEX + 1];
    mac_hex(config, cookie, (size_t)(last - cookie), mac);
    if (CRYPTO_memcmp(mac, last + 1, MAC_HEX) != 0)
        return NULL;
    const char *dot = memchr(cookie, '.', (size_t)(last - cookie));
    if (!dot || strtoll(dot + 1, NULL, 10) < (long long)time(NULL))
        return NULL;
    return cookie;
}

const char *gallery_session_user(csgi_request *request, const gallery_config *config)
{
    const char *cookie = valid_cookie(request, config);
    if (!cookie)
        return NULL;
    size_t len = (size_t)(strchr(cookie, '.') - cookie);
    if (!valid_user_name(cookie, len))
        return NULL;
    char *user = csgi_environ_alloc(csgi_request_environ(request), len + 1);
    if (user) {
        memcpy(user, cookie, len);
        user[len] = '\0';
    }
    return user;
}

const char *gallery_token_for(csgi_request *request, const gallery_config *config,
                              const char *secret)
{
    char *token = secret ? csgi_environ_alloc(csgi_request_environ(request), MAC_HEX + 1) : NULL;
    size_t len = secret ? strlen(secret) : 0;
    char *text = token ? malloc(len + 6) : NULL;
    if (!text)
        return NULL;
    memcpy(text, "csrf:", 5);
    memcpy(text + 5, secret, len + 1);
    mac_hex(config, text, len + 5, token);
    free(text);
    return token;
}

const char *gallery_csrf_token(csgi_request *request, const gallery_config *config)
{
    return gallery_token_for(request, config, valid_cookie(request, config));
}

int gallery_token_ok(const char *expected, const csgi_params *form)
{
    size_t len = 0;
    const char *sent = form ? csgi_params_get(form, "csrf", &len) : NULL;
    return expected && sent && len == MAC_HEX && CRYPTO_memcmp(expected, sent, MAC_HEX) == 0;
}

int gallery_csrf_ok(csgi_request *request, const gallery_config *config, const csgi_params *form)
{
    return gallery_token_ok(gallery_csrf_token(request, config), form);
}

/* The key is written to a file of this process and linked into place,
   so that workers starting together all read the same whole key. */
int gallery_load_key(gallery_config *config)
{
    char path[4096], temp[4200];
    snprintf(path, sizeof(path), "%s/session.key", config->state_dir);
    snprintf(temp, sizeof(temp), "%s.%ld", path, (long)getpid());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        int out = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        unsigned char key[32];
        int ok = out >= 0 && RAND_bytes(key, sizeof(key)) == 1 &&
                 write(out, key, sizeof(key)) == (ssize_t)sizeof(key);
        if (out >= 0 && close(out) != 0)
            ok = 0;
        if (ok && link(temp, path) != 0 && errno != EEXIST)
            ok = 0;
        unlink(temp);
        OPENSSL_cleanse(key, sizeof(key));
        fd = ok ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    }
    ssize_t n = fd >= 0 ? read(fd, config->key, sizeof(config->key)) : -1;
    if (fd >= 0)
        close(fd);
    return n == (ssize_t)sizeof(config->key) ? 0 : -1;
}
