/*
 * The image service's metadata store: one JSON file per image under
 * state_dir/images/<id>.json, written atomically (imageapi_write_json_atomic),
 * so that readers never lock and never see half a file. Every
 * read-modify-write happens under flock(LOCK_EX) on state_dir/store.lock,
 * which serializes the worker processes of one host and, on a shared
 * filesystem that honours flock, those of several hosts.
 */
#ifndef IMAGEAPI_STORE_H
#define IMAGEAPI_STORE_H

#include <jansson.h>

#include <stddef.h>

typedef struct imageapi_store imageapi_store;

/* Open (creating state_dir/images when missing) the store under state_dir.
   0, or -errno with a message in err. */
int imageapi_store_open(imageapi_store **out, const char *state_dir, char *err, size_t err_size);

void imageapi_store_free(imageapi_store *store);

/* Take the store's lock (blocking): a descriptor for imageapi_store_unlock,
   or -errno. */
int imageapi_store_lock(imageapi_store *store);
void imageapi_store_unlock(int lock);

/* The image with id (a new reference), or NULL when there is none (or its
   file is unreadable: logged to err). id must be a well-formed id. */
json_t *imageapi_store_get(imageapi_store *store, const char *id, char *err, size_t err_size);

/* Every image, as an array (a new reference; NULL when memory ran out).
   The images in it are shared with the store's cache: read them, and
   json_deep_copy() one before changing it. */
json_t *imageapi_store_list(imageapi_store *store);

/* Write image (borrowed; its "id" names the file). The caller holds the
   lock. 0 or -errno with err. */
int imageapi_store_put(imageapi_store *store, json_t *image, char *err, size_t err_size);

/* Remove the image's file. The caller holds the lock. 0, or -ENOENT. */
int imageapi_store_remove(imageapi_store *store, const char *id);

/* Remove the temporary files of writes that died (the caller holds the
   lock, so no write is in progress). */
void imageapi_store_clean(imageapi_store *store);

/* Whether id is what the store accepts as an image id (a UUID: 36
   characters of hex digits and dashes, in the 8-4-4-4-12 shape). */
int imageapi_store_valid_id(const char *id);

#endif
