/*
 * Where the image service keeps image data: a small table of functions, so
 * that a Swift or S3 backend can be added beside the directory one
 * (backend_dir.c) without touching the API code in image.c.
 *
 * An upload writes to a partial object that only commit makes the image's
 * data; while it runs, the backend can tell (upload_alive) whether the
 * uploader still lives, so an image left "saving" by a dead process is
 * found and repaired. The API code calls commit, abort and alive with the
 * store's lock held, so a repair never races a commit.
 */
#ifndef IMAGEAPI_BACKEND_H
#define IMAGEAPI_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef struct imageapi_backend imageapi_backend;
typedef struct imageapi_upload imageapi_upload;

typedef struct imageapi_backend_type {
    const char *name;
    /* Start an upload of the data of image id. 0 with *out set, -EBUSY when
       another upload of it is alive, or -errno (err says). */
    int (*upload_begin)(imageapi_backend *backend, const char *id, imageapi_upload **out, char *err,
                        size_t err_size);
    /* Append len bytes. 0 or -errno. */
    int (*upload_write)(imageapi_upload *upload, const void *data, size_t len);
    /* Make what was written durable (fsync), without the store's lock
       held: the slow part of a commit. 0 or -errno. */
    int (*upload_flush)(imageapi_upload *upload);
    /* Make what was written (and flushed) the image's data, durably (it
       survives a crash once this returns 0), and free the upload. 0 or
       -errno (the upload is then aborted and freed). */
    int (*upload_commit)(imageapi_upload *upload);
    /* Drop what was written and free the upload. */
    void (*upload_abort)(imageapi_upload *upload);
    /* Whether an upload of image id is running somewhere (1) or not (0);
       when not, what a dead uploader left is removed. */
    int (*upload_alive)(imageapi_backend *backend, const char *id);
    /* Open the image's data for sending: a descriptor to read (and
       sendfile) from, and its size. -ENOENT when there is none. A backend
       without descriptors (an object store) would fill a pipe or a
       temporary file here. */
    int (*open)(imageapi_backend *backend, const char *id, int *fd, int64_t *size);
    /* Remove the image's data and any partial upload of it. 0 or -errno
       (-ENOENT: there was nothing). */
    int (*remove)(imageapi_backend *backend, const char *id);
    void (*free)(imageapi_backend *backend);
} imageapi_backend_type;

/* Every backend begins with its type. */
struct imageapi_backend {
    const imageapi_backend_type *type;
};

/* The directory backend: state_dir/data/<id> and, while uploading,
   state_dir/data/<id>.partial held with flock(LOCK_EX) by the uploader.
   0, or -errno with err. */
int imageapi_backend_dir_new(imageapi_backend **out, const char *state_dir, char *err,
                             size_t err_size);

#endif
