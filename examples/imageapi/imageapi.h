/*
 * examples/imageapi: what the identity, image and compute parts of the
 * example share. Internal to the example's module (imageapi.so); a csgi
 * user writes the same kind of header for their own service.
 */
#ifndef IMAGEAPI_H
#define IMAGEAPI_H

#include <csgi.h>
#include <csgi/loader.h>

#include <jansson.h>

#include <stddef.h>
#include <time.h>

/* ---- JSON answers ------------------------------------------------------------------ */

/* A response with status and value (taken) as application/json; NULL
   (a 500) when memory ran out. */
csgi_response *imageapi_json(csgi_request *request, int status, json_t *value);

/* ---- Files ----------------------------------------------------------------------------- */

/* Write value (borrowed) as JSON to path so that a reader sees the old file
   or the new one, never part of one, and a crash leaves one of the two:
   a temporary file beside it, fsync, rename over path, fsync of the
   directory. 0, or -errno with a message in err. */
int imageapi_write_json_atomic(const char *path, json_t *value, char *err, size_t err_size);

/* The JSON in path (a new reference), or NULL: *missing is set when the
   file does not exist (else it is unreadable or not JSON: err says). */
json_t *imageapi_read_json(const char *path, int *missing, char *err, size_t err_size);

/* mkdir -p with mode 0750. 0 or -errno. */
int imageapi_mkdirs(const char *path);

/* ---- Values ------------------------------------------------------------------------------ */

/* A random (version 4) UUID, 36 characters and a NUL. 0 or -errno. */
int imageapi_uuid(char out[37]);

/* A random id of 32 hex digits (keystone's ids), and a NUL. 0 or -errno. */
int imageapi_hex_id(char out[33]);

/* when as "2026-12-04T02:10:00Z" (glance's and keystone's timestamps; with
   micro set, keystone's "2026-12-04T02:10:00.000000Z"). */
void imageapi_time(time_t when, int micro, char out[32]);

/* Parse what imageapi_time() writes (and the same with a fraction): 0, or
   -1 when text is not such a time. */
int imageapi_parse_time(const char *text, time_t *out);

/* ---- Identity (identity.c, revoked.c) ---------------------------------------------- */

/* keystone's error document {"error": {"code", "title", "message"}} with
   status (message copied); NULL when memory ran out. */
csgi_response *imageapi_keystone_error(csgi_request *request, int status, const char *message);

/* keystone's 401 ("The request you have made requires authentication.")
   with `WWW-Authenticate: Keystone uri="<uri>"`. */
csgi_response *imageapi_keystone_unauthorized(csgi_request *request, const char *uri);

/* The value of name in the local conf, else in the global conf, or NULL. */
const char *imageapi_identity_conf(const csgi_conf *global_conf, const csgi_conf *local_conf,
                                   const char *name);

/* 0 when every key of local_conf is in known (NULL-terminated) or is one
   the handler factories read (body_mode, client_max_body_size, ...);
   else -1 with error placed at the first unknown key. */
int imageapi_identity_check_keys(const csgi_conf *local_conf, const char *const *known,
                                 csgi_load_error *error);

/* The revoked tokens of a state_dir (state_dir/revoked/<sha256 hex>). */
typedef struct imageapi_revocations imageapi_revocations;

/* A list for state_dir (copied); nothing is read yet. 0 or -ENOMEM. */
int imageapi_revocations_new(imageapi_revocations **out, const char *state_dir);

/* Free it (NULL allowed). */
void imageapi_revocations_free(imageapi_revocations *revocations);

/* 1 when the token (len bytes) is revoked, 0 when not, -errno when the
   list cannot be read. One stat of the directory; it is read again only
   when it changed. Thread-safe. */
int imageapi_revocations_contains(imageapi_revocations *revocations, const char *token, size_t len);

/* Revoke the token (len bytes) that expires at expires: write its file
   atomically (and remove the files of tokens long expired). 0, or -errno
   with a message in err. */
int imageapi_revocations_add(imageapi_revocations *revocations, const char *token, size_t len,
                             time_t expires, char *err, size_t err_size);

/* The SHA-256 of a token as 64 hex digits and a NUL: its file name. */
void imageapi_token_digest(const char *token, size_t len, char out[65]);
/* ---- Image (image.c, image_data.c, store.c, backend_dir.c) ------------------------------- */

/* glance's endpoint root: 300 with the versions document at /, 200 at /versions. */
int image_versions_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                           const csgi_conf *local_conf, csgi_load_error *error);
/* glance v2, mounted at /v2 (state_dir, image_size_cap). */
int image_v2_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                     const csgi_conf *local_conf, csgi_load_error *error);
/* The talk's v1-style listing: /images/detail (state_dir). */
int image_v1_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                     const csgi_conf *local_conf, csgi_load_error *error);

#endif
