/*
 * Image data: PUT /v2/images/{id}/file streamed to the backend as it
 * arrives (md5 and sha512 computed on the way; never the whole image in
 * memory), GET /v2/images/{id}/file sent from the backend's file with
 * sendfile, and the repair of uploads whose process died.
 *
 * Status: queued -> saving (the upload started, its partial data locked by
 * the uploader) -> active (the data renamed into place and fsync'ed, then
 * the metadata written). A failed upload goes back to queued. Every step
 * that reads and writes an image's metadata holds the store's lock, so a
 * repair (which takes the partial file's lock to learn that its uploader
 * is dead) never races the commit of a live upload.
 */
#include "image.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Forget what an upload left: no data, no sums, queued. */
static void reset_to_queued(json_t *image)
{
    json_object_set_new(image, "status", json_string("queued"));
    json_object_set_new(image, "size", json_null());
    json_object_set_new(image, "virtual_size", json_null());
    json_object_set_new(image, "checksum", json_null());
    json_object_set_new(image, "os_hash_algo", json_null());
    json_object_set_new(image, "os_hash_value", json_null());
    image_touch(image);
}

static int has_status(json_t *image, const char *status)
{
    const char *s = json_string_value(json_object_get(image, "status"));
    return s && strcmp(s, status) == 0;
}

int image_repair_locked(image_service *service, json_t *image)
{
    const char *id = json_string_value(json_object_get(image, "id"));
    if (!id || !has_status(image, "saving") ||
        service->backend->type->upload_alive(service->backend, id))
        return 0;
    /* The uploader died (its partial file's lock was free): what it wrote
       is gone with upload_alive; data a commit renamed into place before
       the metadata said active goes too. */
    service->backend->type->remove(service->backend, id);
    reset_to_queued(image);
    char err[512];
    if (imageapi_store_put(service->store, image, err, sizeof(err)) != 0)
        fprintf(stderr, "imageapi: repairing image %s: %s\n", id, err);
    return 1;
}

json_t *image_load(image_service *service, const char *id)
{
    char err[512];
    json_t *image = imageapi_store_get(service->store, id, err, sizeof(err));
    if (!image || !has_status(image, "saving"))
        return image;
    /* Saving: is its uploader alive? Ask under the lock, on a fresh read. */
    json_decref(image);
    int lock = imageapi_store_lock(service->store);
    image = imageapi_store_get(service->store, id, err, sizeof(err));
    if (image && lock >= 0)
        image_repair_locked(service, image);
    imageapi_store_unlock(lock);
    return image;
}

void image_sweep(image_service *service)
{
    int lock = imageapi_store_lock(service->store);
    if (lock < 0)
        return;
    /* what writers left when they died: temporary metadata files (every
       writer holds the lock, so none is being written now), partial data
       nobody uploads (of images still queued: an uploader died before it
       said saving), and images saving for a dead uploader */
    imageapi_store_clean(service->store);
    json_t *images = imageapi_store_list(service->store);
    size_t i;
    json_t *image;
    json_array_foreach(images, i, image)
    {
        json_t *copy = json_deep_copy(image); /* the list's images are the store's */
        int repaired = copy && image_repair_locked(service, copy);
        json_decref(copy);
        if (!repaired)
            service->backend->type->upload_alive(service->backend,
                                                 json_string_value(json_object_get(image, "id")));
    }
    json_decref(images);
    imageapi_store_unlock(lock);
}

/* ---- Upload -------------------------------------------------------------------------- */

enum { UPLOAD_WRITE_FAILED = 1, UPLOAD_NO_MEMORY };

typedef struct upload_state {
    image_service *service;
    char id[37];
    imageapi_upload *upload;
    EVP_MD_CTX *md5;
    EVP_MD_CTX *sha512;
    uint64_t size;
} upload_state;

static int upload_data(void *userdata, csgi_request *request, const void *data, size_t len)
{
    (void)request;
    upload_state *state = userdata;
    if (EVP_DigestUpdate(state->md5, data, len) != 1 ||
        EVP_DigestUpdate(state->sha512, data, len) != 1)
        return UPLOAD_NO_MEMORY;
    if (state->service->backend->type->upload_write(state->upload, data, len) != 0)
        return UPLOAD_WRITE_FAILED;
    state->size += len;
    return 0;
}

static void hex(const unsigned char *bytes, unsigned len, char *out)
{
    for (unsigned i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", bytes[i]);
}

/* The upload failed: back to queued (when the image is still ours), no data. */
static void upload_fail(upload_state *state)
{
    const imageapi_backend_type *type = state->service->backend->type;
    int lock = imageapi_store_lock(state->service->store);
    char err[512];
    json_t *image = imageapi_store_get(state->service->store, state->id, err, sizeof(err));
    type->upload_abort(state->upload);
    state->upload = NULL;
    if (image && has_status(image, "saving")) {
        reset_to_queued(image);
        imageapi_store_put(state->service->store, image, err, sizeof(err));
    }
    json_decref(image);
    imageapi_store_unlock(lock);
}

/* The whole body is written: make it the image's data, then say active. */
static csgi_response *upload_commit(upload_state *state, csgi_request *request)
{
    unsigned char md5[EVP_MAX_MD_SIZE], sha512[EVP_MAX_MD_SIZE];
    unsigned md5_len = 0, sha512_len = 0;
    if (EVP_DigestFinal_ex(state->md5, md5, &md5_len) != 1 ||
        EVP_DigestFinal_ex(state->sha512, sha512, &sha512_len) != 1) {
        upload_fail(state);
        return NULL;
    }
    char md5_hex[2 * EVP_MAX_MD_SIZE + 1], sha512_hex[2 * EVP_MAX_MD_SIZE + 1];
    hex(md5, md5_len, md5_hex);
    hex(sha512, sha512_len, sha512_hex);

    const imageapi_backend_type *type = state->service->backend->type;
    /* the fsync, before the lock that every writer of every worker waits for */
    if (type->upload_flush(state->upload) != 0) {
        upload_fail(state);
        return image_error(request, 500, "the image data could not be written");
    }
    int lock = imageapi_store_lock(state->service->store);
    char err[512];
    json_t *image = imageapi_store_get(state->service->store, state->id, err, sizeof(err));
    int status = 0;
    const char *detail = NULL;
    if (!image) {
        status = 410;
        detail = "the image was deleted during the upload";
    } else if (!has_status(image, "saving")) {
        status = 409;
        detail = "the image changed status during the upload";
    }
    if (status) {
        type->upload_abort(state->upload);
    } else {
        int rc = type->upload_commit(state->upload);
        json_object_set_new(image, "status", json_string(rc == 0 ? "active" : "queued"));
        if (rc == 0) {
            json_object_set_new(image, "size", json_integer((json_int_t)state->size));
            json_object_set_new(image, "checksum", json_string(md5_hex));
            json_object_set_new(image, "os_hash_algo", json_string("sha512"));
            json_object_set_new(image, "os_hash_value", json_string(sha512_hex));
        } else {
            status = 500;
            detail = "the image data could not be stored";
        }
        image_touch(image);
        if (imageapi_store_put(state->service->store, image, err, sizeof(err)) != 0 && !status) {
            status = 500;
            detail = "the image could not be saved";
        }
    }
    state->upload = NULL;
    json_decref(image);
    imageapi_store_unlock(lock);
    if (status)
        return image_error(request, status, detail);
    csgi_response *response = csgi_handler_response(request);
    if (response && csgi_response_set_status(response, 204) != 0)
        return NULL;
    return response;
}

static csgi_response *upload_end(void *userdata, csgi_request *request, int result)
{
    upload_state *state = userdata;
    csgi_response *response;
    if (result == 0) {
        response = upload_commit(state, request);
    } else {
        upload_fail(state);
        if (result == CSGI_ETOOBIG) {
            char detail[96];
            snprintf(detail, sizeof(detail), "the image is larger than %llu bytes",
                     (unsigned long long)state->service->size_cap);
            response = image_error(request, 413, detail);
        } else if (result == UPLOAD_WRITE_FAILED) {
            response = image_error(request, 500, "the image data could not be written");
        } else if (result == UPLOAD_NO_MEMORY) {
            response = NULL;
        } else {
            response = image_error(request, 400, "the upload broke off");
        }
    }
    EVP_MD_CTX_free(state->md5);
    EVP_MD_CTX_free(state->sha512);
    return response;
}

static const csgi_body_reader_type upload_reader = {"image upload", upload_data, upload_end};

csgi_response *image_upload(csgi_request *request, void *userdata)
{
    image_service *service = userdata;
    image_context context;
    csgi_response *refused = image_context_of(request, &context);
    if (refused)
        return refused;
    const char *type = csgi_request_content_type(request);
    if (!type)
        return NULL;
    if (strcmp(type, "application/octet-stream") != 0)
        return image_error(request, 415, "image data is sent as application/octet-stream");
    const char *id = csgi_router_arg(csgi_request_environ(request), "id");
    json_t *image = image_load(service, id);
    int status = !image || !image_visible(&context, image) ? 404
                 : !image_owned(&context, image)           ? 403
                                                           : 0;
    json_decref(image);
    if (status)
        return image_error(request, status, status == 404 ? "no such image" : "not your image");

    upload_state *state = csgi_environ_alloc(csgi_request_environ(request), sizeof(*state));
    if (!state)
        return NULL;
    *state = (upload_state){service, {0}, NULL, NULL, NULL, 0};
    snprintf(state->id, sizeof(state->id), "%s", id);

    /* queued -> saving, with the partial data locked, under the store's lock */
    int lock = imageapi_store_lock(service->store);
    if (lock < 0)
        return image_error(request, 500, "the store cannot be locked");
    char err[512];
    image = imageapi_store_get(service->store, id, err, sizeof(err));
    if (image)
        image_repair_locked(service, image);
    const char *detail = NULL;
    if (!image) {
        status = 404;
        detail = "no such image";
    } else if (!has_status(image, "queued")) {
        status = 409;
        detail = "the image is not queued: its data was uploaded already, or is being uploaded";
    } else {
        int rc = service->backend->type->upload_begin(service->backend, id, &state->upload, err,
                                                      sizeof(err));
        if (rc != 0) {
            status = rc == -EBUSY ? 409 : 500;
            detail = rc == -EBUSY ? "the image's data is being uploaded" : "cannot store data";
        } else {
            json_object_set_new(image, "status", json_string("saving"));
            image_touch(image);
            if (imageapi_store_put(service->store, image, err, sizeof(err)) != 0) {
                service->backend->type->upload_abort(state->upload);
                status = 500;
                detail = "the image could not be saved";
            }
        }
    }
    json_decref(image);
    imageapi_store_unlock(lock);
    if (status)
        return image_error(request, status, detail);

    state->md5 = EVP_MD_CTX_new();
    state->sha512 = EVP_MD_CTX_new();
    if (!state->md5 || !state->sha512 || EVP_DigestInit_ex(state->md5, EVP_md5(), NULL) != 1 ||
        EVP_DigestInit_ex(state->sha512, EVP_sha512(), NULL) != 1) {
        upload_fail(state);
        EVP_MD_CTX_free(state->md5);
        EVP_MD_CTX_free(state->sha512);
        return NULL;
    }
    csgi_response *response = csgi_handler_read_body(request, &upload_reader, state);
    if (!response) {
        upload_fail(state);
        EVP_MD_CTX_free(state->md5);
        EVP_MD_CTX_free(state->sha512);
    }
    return response;
}

/* ---- Download ------------------------------------------------------------------------ */

csgi_response *image_download(csgi_request *request, void *userdata)
{
    image_service *service = userdata;
    image_context context;
    csgi_response *refused = image_context_of(request, &context);
    if (refused)
        return refused;
    const char *id = csgi_router_arg(csgi_request_environ(request), "id");
    json_t *image = image_load(service, id);
    if (!image || !image_visible(&context, image)) {
        json_decref(image);
        return image_error(request, 404, "no such image");
    }
    if (has_status(image, "deactivated") && !context.admin) {
        json_decref(image);
        return image_error(request, 403, "the image is deactivated");
    }
    int fd = -1;
    int64_t size = 0;
    int rc = has_status(image, "active") || has_status(image, "deactivated")
                 ? service->backend->type->open(service->backend, id, &fd, &size)
                 : -ENOENT;
    char checksum[33];
    snprintf(checksum, sizeof(checksum), "%s",
             json_string_value(json_object_get(image, "checksum"))
                 ? json_string_value(json_object_get(image, "checksum"))
                 : "");
    json_decref(image);
    csgi_response *response = csgi_handler_response(request);
    if (!response) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (rc != 0) /* glance: no data yet, 204 */
        return csgi_response_set_status(response, 204) == 0 ? response : NULL;
    if (csgi_response_set_file(response, fd, 0, size) != 0 ||
        csgi_response_set_content_type(response, "application/octet-stream", NULL) != 0)
        return NULL;
    /* glanceclient compares the whole body with Content-MD5 */
    if (checksum[0] && !csgi_request_header(request, "Range", NULL) &&
        csgi_response_set_header(response, "Content-MD5", checksum) != 0)
        return NULL;
    csgi_response_set_conditional(response, 1); /* Range: 206, 416 */
    return response;
}
