/*
 * What the image service's files share (image.c: the API; image_data.c:
 * upload, download and the repair of uploads that died).
 */
#ifndef IMAGEAPI_IMAGE_H
#define IMAGEAPI_IMAGE_H

#include "backend.h"
#include "imageapi.h"
#include "store.h"

#include <stdatomic.h>
#include <stdint.h>

/* One per factory call; shared by that factory's handlers (reference
   counted: each handler application holds one). */
typedef struct image_service {
    atomic_int refs;
    imageapi_store *store;
    imageapi_backend *backend;
    uint64_t size_cap; /* image_size_cap: the largest upload */
} image_service;

/* Who asks, from the headers auth_token sets. */
typedef struct image_context {
    const char *project; /* X-Project-Id, or NULL */
    int admin;           /* "admin" in X-Roles; also without any auth_token header */
} image_context;

void image_service_unref(void *service);

/* The caller's context, or an error response to return (401 when
   auth_token says the identity is not confirmed). */
csgi_response *image_context_of(csgi_request *request, image_context *out);

/* Whether the caller may see / change image. */
int image_visible(const image_context *context, json_t *image);
int image_owned(const image_context *context, json_t *image);

/* The image id (a new reference), with a dead upload repaired first (an
   image "saving" whose uploader is gone goes back to "queued" without
   data). NULL when there is no such image. */
json_t *image_load(image_service *service, const char *id);

/* With the store's lock held: repair image (borrowed) in place and in the
   store when its upload died. 1 when it was repaired. */
int image_repair_locked(image_service *service, json_t *image);

/* Repair every image whose upload died (at load). */
void image_sweep(image_service *service);

/* What image.c shares with image_list.c. */
extern const char *const image_visibilities[]; /* public, private, community, shared */
extern const char *const image_base[];         /* the attributes every image has */
int image_in(const char *const *list, const char *value);
int image_owner_is(json_t *image, const char *project);
/* The image as glance shows it (a new object): its fields and links. */
json_t *image_view(json_t *image);

/* The handlers of image_list.c: GET /v2/images, GET /images/detail. */
csgi_response *image_list(csgi_request *request, void *userdata);
csgi_response *image_list_v1(csgi_request *request, void *userdata);

/* The handlers of image_data.c. */
csgi_response *image_upload(csgi_request *request, void *userdata);
csgi_response *image_download(csgi_request *request, void *userdata);

/* Set updated_at to now. */
void image_touch(json_t *image);

/* Whether the request is a GET or a HEAD. */
int image_reading(csgi_request *request);

/* An error response in glance's JSON shape (or the client's Accept). */
csgi_response *image_error(csgi_request *request, int status, const char *detail);

#endif
