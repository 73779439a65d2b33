/*
 * The image metadata store (store.h): a directory of JSON files and a lock
 * file. Writers replace a file by rename, so readers need no lock.
 */
#include "store.h"

#include "imageapi.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct imageapi_store {
    char images[4096]; /* state_dir/images */
    char lock[4096];   /* state_dir/store.lock */
};

int imageapi_store_open(imageapi_store **out, const char *state_dir, char *err, size_t err_size)
{
    imageapi_store *store = calloc(1, sizeof(*store));
    if (!store) {
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    if (snprintf(store->images, sizeof(store->images), "%s/images", state_dir) >=
            (int)sizeof(store->images) ||
        snprintf(store->lock, sizeof(store->lock), "%s/store.lock", state_dir) >=
            (int)sizeof(store->lock)) {
        free(store);
        snprintf(err, err_size, "%s: the path is too long", state_dir);
        return -ENAMETOOLONG;
    }
    int rc = imageapi_mkdirs(store->images);
    if (rc != 0) {
        snprintf(err, err_size, "cannot create %s: %s", store->images, strerror(-rc));
        free(store);
        return rc;
    }
    *out = store;
    return 0;
}

void imageapi_store_free(imageapi_store *store)
{
    free(store);
}

int imageapi_store_lock(imageapi_store *store)
{
    int fd = open(store->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int code = errno;
            close(fd);
            return -code;
        }
    }
    return fd;
}

void imageapi_store_unlock(int lock)
{
    if (lock >= 0)
        close(lock); /* releases the flock */
}

int imageapi_store_valid_id(const char *id)
{
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    if (!id || strlen(id) != sizeof(shape) - 1)
        return 0;
    for (size_t i = 0; shape[i]; i++) {
        char c = id[i];
        int hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (shape[i] == '-' ? c != '-' : !hex)
            return 0;
    }
    return 1;
}

static int image_path(const imageapi_store *store, const char *id, char *out, size_t size)
{
    return snprintf(out, size, "%s/%s.json", store->images, id) < (int)size ? 0 : -ENAMETOOLONG;
}

json_t *imageapi_store_get(imageapi_store *store, const char *id, char *err, size_t err_size)
{
    char path[4200];
    err[0] = '\0';
    if (!imageapi_store_valid_id(id) || image_path(store, id, path, sizeof(path)) != 0)
        return NULL;
    int missing;
    json_t *image = imageapi_read_json(path, &missing, err, err_size);
    if (!image && missing)
        err[0] = '\0';
    if (image && !json_is_object(image)) {
        snprintf(err, err_size, "%s: not a JSON object", path);
        json_decref(image);
        image = NULL;
    }
    return image;
}

json_t *imageapi_store_list(imageapi_store *store)
{
    json_t *images = json_array();
    DIR *dir = images ? opendir(store->images) : NULL;
    if (!dir)
        return images;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        /* <uuid>.json only: not the temporary files of a write in progress */
        size_t len = strlen(entry->d_name);
        if (len != 41 || strcmp(entry->d_name + 36, ".json") != 0)
            continue;
        char id[37];
        memcpy(id, entry->d_name, 36);
        id[36] = '\0';
        char err[256];
        json_t *image = imageapi_store_get(store, id, err, sizeof(err));
        if (image && json_array_append_new(images, image) != 0) {
            json_decref(images);
            images = NULL;
            break;
        }
    }
    closedir(dir);
    return images;
}

void imageapi_store_clean(imageapi_store *store)
{
    DIR *dir = opendir(store->images);
    if (!dir)
        return;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        /* imageapi_write_json_atomic's "<id>.json.tmp.XXXXXX" */
        if (strstr(entry->d_name, ".json.tmp.") != NULL)
            unlinkat(dirfd(dir), entry->d_name, 0);
    }
    closedir(dir);
}

int imageapi_store_put(imageapi_store *store, json_t *image, char *err, size_t err_size)
{
    const char *id = json_string_value(json_object_get(image, "id"));
    char path[4200];
    if (!imageapi_store_valid_id(id) || image_path(store, id, path, sizeof(path)) != 0) {
        snprintf(err, err_size, "an image without a valid id");
        return -EINVAL;
    }
    return imageapi_write_json_atomic(path, image, err, err_size);
}

int imageapi_store_remove(imageapi_store *store, const char *id)
{
    char path[4200];
    if (!imageapi_store_valid_id(id) || image_path(store, id, path, sizeof(path)) != 0)
        return -ENOENT;
    return unlink(path) == 0 ? 0 : -errno;
}
