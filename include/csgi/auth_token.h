/**
 * @file csgi/auth_token.h
 * @brief Signed tokens that the bundled auth_token filter accepts without
 *        calling an identity service.
 *
 * The auth_token filter (egg:keystonemiddleware#auth_token, see
 * docs/middleware.md) checks tokens against a keystone-style identity
 * service. With `signing_key_file` set it also accepts tokens signed with
 * a shared key, as keystone's Fernet tokens are: every host that holds the
 * key validates them by itself, with no call and no shared memory. A
 * service that issues its own tokens (an identity service written on
 * csgi) signs them with csgi_auth_token_sign().
 *
 * A signed token is `csgi1.<payload>.<signature>`: the payload is the
 * keystone token document (the object under "token" in keystone's
 * answer: expires_at, user, project, roles, ...) as compact JSON in
 * base64url, the signature HMAC-SHA256 of everything before it under the
 * key, in base64url. The payload is signed, not encrypted: do not put
 * secrets in it.
 */
#ifndef CSGI_AUTH_TOKEN_H
#define CSGI_AUTH_TOKEN_H

#include "common.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct json_t;

/** Shortest signing key accepted, in bytes. */
#define CSGI_AUTH_TOKEN_MIN_KEY 32

/**
 * Sign a token document.
 *
 * @param buf      where to write the token, NUL-terminated (may be NULL
 *                 with size 0 to learn the length)
 * @param size     bytes at buf
 * @param len      set to the token's length without the NUL (also when
 *                 buf is too small)
 * @param key      the signing key (at least CSGI_AUTH_TOKEN_MIN_KEY bytes)
 * @param key_len  its length
 * @param token    the document (borrowed): an object with expires_at
 *                 ("2026-12-03T20:00:00Z") and user.id at least
 * @return 0; CSGI_ERANGE (buf too small: *len says what is needed),
 *         CSGI_EINVAL (a short key, a document without expires_at or
 *         user.id), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_auth_token_sign(char *buf, size_t size, size_t *len, const void *key,
                                     size_t key_len, struct json_t *token);

/**
 * Check a signed token and read its document.
 *
 * @param token   set to the document (a new reference: json_decref() it)
 *                when the token is good
 * @param text    the token, len bytes
 * @param key     the key it must be signed with, key_len bytes
 * @return 0; CSGI_EPARSE (not a signed token, or signed with another
 *         key: the signature is compared in constant time),
 *         CSGI_ETIMEDOUT (good, but past its expires_at), CSGI_EINVAL
 *         (no text or key), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_auth_token_verify(struct json_t **token, const char *text, size_t len,
                                       const void *key, size_t key_len);

#ifdef __cplusplus
}
#endif

#endif
