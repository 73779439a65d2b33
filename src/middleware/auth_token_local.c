/*
 * auth_token's local token sources, for tests and small deployments that
 * run no identity service: a file listing tokens and what they stand for,
 * and tokens signed with a shared key (csgi/auth_token.h), which any host
 * holding the key validates by itself.
 */
#include "common/alloc.h"
#include "middleware/auth_token.h"

#include <csgi/auth_token.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#define PREFIX     "csgi1."
#define PREFIX_LEN 6
#define MAC_LEN    32
#define MAC_TEXT   43 /* base64url of 32 bytes, unpadded */

struct auth_local {
    json_t *tokens; /* the file's "tokens" object, or NULL */
    size_t key_count;
    unsigned char **keys;
    size_t *key_lens;
};

/* ---- base64url without padding ------------------------------------------------- */

static size_t encoded_len(size_t len)
{
    return len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
}

static void encode(char *out, const unsigned char *data, size_t len)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)data[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        size_t n = len - i >= 3 ? 4 : len - i + 1;
        for (size_t k = 0; k < n; k++)
            out[o++] = digits[(v >> (18 - 6 * k)) & 63];
    }
}

/* Decoded bytes (owned), or NULL when text is not base64url. */
static unsigned char *decode(const char *text, size_t len, size_t *out_len)
{
    if (len % 4 == 1)
        return NULL;
    unsigned char *out = csgi__malloc(len / 4 * 3 + 3);
    if (!out)
        return NULL;
    size_t o = 0;
    unsigned v = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        int d = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '-'             ? 62
                : c == '_'             ? 63
                                       : -1;
        if (d < 0) {
            csgi__free(out);
            return NULL;
        }
        v = (v << 6) | (unsigned)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(v >> bits);
        }
    }
    *out_len = o;
    return out;
}

static void mac(unsigned char out[MAC_LEN], const void *key, size_t key_len, const char *text,
                size_t len)
{
    unsigned int n = MAC_LEN;
    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)text, len, out, &n);
}

/* ---- Signing ------------------------------------------------------------------------ */

int csgi_auth_token_sign(char *buf, size_t size, size_t *len, const void *key, size_t key_len,
                         json_t *token)
{
    if (len)
        *len = 0;
    if (!len || !key || key_len < CSGI_AUTH_TOKEN_MIN_KEY || !json_is_object(token) ||
        !json_is_string(json_object_get(token, "expires_at")) ||
        !json_is_string(json_object_get(json_object_get(token, "user"), "id")))
        return CSGI_EINVAL;
    char *payload = json_dumps(token, JSON_COMPACT | JSON_SORT_KEYS);
    if (!payload)
        return CSGI_ENOMEM;
    size_t plen = strlen(payload);
    size_t body = PREFIX_LEN + encoded_len(plen);
    *len = body + 1 + MAC_TEXT;
    if (!buf || size <= *len) {
        free(payload);
        return CSGI_ERANGE;
    }
    memcpy(buf, PREFIX, PREFIX_LEN);
    encode(buf + PREFIX_LEN, (const unsigned char *)payload, plen);
    free(payload);
    unsigned char sum[MAC_LEN];
    mac(sum, key, key_len, buf, body);
    buf[body] = '.';
    encode(buf + body + 1, sum, MAC_LEN);
    buf[*len] = '\0';
    return 0;
}

/* The document of a token signed with key, or an error (see verify). */
static int open_signed(json_t **out, const char *text, size_t len, const void *key, size_t key_len)
{
    *out = NULL;
    if (len < PREFIX_LEN + 2 + MAC_TEXT || memcmp(text, PREFIX, PREFIX_LEN) != 0 ||
        text[len - MAC_TEXT - 1] != '.')
        return CSGI_EPARSE;
    size_t body = len - MAC_TEXT - 1;
    size_t sum_len = 0;
    unsigned char *given = decode(text + body + 1, MAC_TEXT, &sum_len);
    if (!given)
        return CSGI_EPARSE;
    unsigned char sum[MAC_LEN];
    mac(sum, key, key_len, text, body);
    int same = sum_len == MAC_LEN && CRYPTO_memcmp(sum, given, MAC_LEN) == 0;
    csgi__free(given);
    if (!same)
        return CSGI_EPARSE;
    size_t plen = 0;
    unsigned char *payload = decode(text + PREFIX_LEN, body - PREFIX_LEN, &plen);
    if (!payload)
        return CSGI_EPARSE;
    json_t *document = json_loadb((const char *)payload, plen, JSON_REJECT_DUPLICATES, NULL);
    csgi__free(payload);
    if (!json_is_object(document)) {
        json_decref(document);
        return CSGI_EPARSE;
    }
    *out = document;
    return 0;
}

int csgi_auth_token_verify(json_t **token, const char *text, size_t len, const void *key,
                           size_t key_len)
{
    if (token)
        *token = NULL;
    if (!token || !text || !key || !key_len)
        return CSGI_EINVAL;
    json_t *document;
    int rc = open_signed(&document, text, len, key, key_len);
    if (rc != 0)
        return rc;
    auth_identity *identity = NULL;
    rc = auth_token__identity(&identity, document, 0);
    if (rc == 0 && identity->expires <= (int64_t)time(NULL))
        rc = CSGI_ETIMEDOUT;
    csgi__free(identity);
    if (rc != 0) {
        json_decref(document);
        return rc;
    }
    *token = document;
    return 0;
}

/* ---- The sources ---------------------------------------------------------------------- */

int auth_token__local_new(auth_local **out, const char *tokens_file, char *const *keys,
                          const size_t *key_lens, size_t count, char *error_text, size_t error_size)
{
    *out = NULL;
    auth_local *local = csgi__calloc(1, sizeof(*local));
    if (!local)
        return CSGI_ENOMEM;
    if (tokens_file) {
        json_error_t error;
        json_t *file = json_load_file(tokens_file, JSON_REJECT_DUPLICATES, &error);
        json_t *tokens = json_object_get(file, "tokens");
        if (!json_is_object(tokens)) {
            if (file)
                snprintf(error_text, error_size, "%s: no \"tokens\" object", tokens_file);
            else
                snprintf(error_text, error_size, "%s:%d: %s", tokens_file, error.line, error.text);
            json_decref(file);
            csgi__free(local);
            return CSGI_EINVAL;
        }
        local->tokens = json_incref(tokens);
        json_decref(file);
    }
    if (count) {
        local->keys = csgi__calloc(count, sizeof(*local->keys));
        local->key_lens = csgi__calloc(count, sizeof(*local->key_lens));
        if (!local->keys || !local->key_lens) {
            auth_token__local_free(local);
            return CSGI_ENOMEM;
        }
        for (size_t i = 0; i < count; i++) {
            if (!(local->keys[i] = csgi__malloc(key_lens[i]))) {
                auth_token__local_free(local);
                return CSGI_ENOMEM;
            }
            memcpy(local->keys[i], keys[i], key_lens[i]);
            local->key_lens[i] = key_lens[i];
            local->key_count++;
        }
    }
    *out = local;
    return 0;
}

void auth_token__local_free(auth_local *local)
{
    if (!local)
        return;
    for (size_t i = 0; i < local->key_count; i++) {
        OPENSSL_cleanse(local->keys[i], local->key_lens[i]);
        csgi__free(local->keys[i]);
    }
    csgi__free(local->keys);
    csgi__free(local->key_lens);
    json_decref(local->tokens);
    csgi__free(local);
}

/* The identity of a document, or AUTH_INVALID when it is unusable or
   expired. */
static int identity_of(json_t *document, auth_identity **out)
{
    int rc = auth_token__identity(out, document, 1);
    if (rc == CSGI_ENOMEM)
        return rc;
    if (rc != 0 || (*out)->expires <= (int64_t)time(NULL)) {
        csgi__free(*out);
        *out = NULL;
        return AUTH_INVALID;
    }
    return AUTH_VALID;
}

int auth_token__local_check(const auth_local *local, const char *token, size_t len,
                            auth_identity **out)
{
    *out = NULL;
    if (!local)
        return AUTH_MISS;
    if (local->key_count && len > PREFIX_LEN && memcmp(token, PREFIX, PREFIX_LEN) == 0) {
        /* A signed token: the first key it verifies with (keys rotate:
           the newest signs, the older ones still verify). */
        for (size_t i = 0; i < local->key_count; i++) {
            json_t *document;
            if (open_signed(&document, token, len, local->keys[i], local->key_lens[i]) != 0)
                continue;
            int rc = identity_of(document, out);
            json_decref(document);
            return rc;
        }
        return AUTH_INVALID;
    }
    if (local->tokens && !memchr(token, '\0', len)) {
        char *key = csgi__malloc(len + 1);
        if (!key)
            return CSGI_ENOMEM;
        memcpy(key, token, len);
        key[len] = '\0';
        json_t *document = json_object_get(local->tokens, key);
        csgi__free(key);
        if (document)
            return identity_of(document, out);
    }
    return AUTH_MISS;
}
