/*
 * The image metadata store (store.h): a directory of JSON files and a lock
 * file. Writers replace a file by rename, so readers need no lock.
 *
 * Each process keeps what it parsed, keyed by the file's identity: every
 * write makes a new file (a new inode), so a file whose inode, size,
 * mtime and ctime are those of the parsed one holds the same text. A file
 * changed less than a second before it was read is not kept (as git's
 * "racy" entries: two writes within one timestamp tick could reuse an
 * inode number with the same size), so it is read again until it settles.
 * Listing 20 images then costs a readdir, 20 stats and copies, not 20
 * parses.
 */
#include "store.h"

#include "imageapi.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* What one image's file held when it was parsed. */
typedef struct cached {
    struct cached *next; /* in its bucket */
    char id[37];
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    json_t *image;
} cached;

struct imageapi_store {
    char images[4096]; /* state_dir/images */
    char lock[4096];   /* state_dir/store.lock */
    pthread_mutex_t cache_lock;
    cached **buckets; /* a power of two of them */
    size_t bucket_count, cached_count;
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
    pthread_mutex_init(&store->cache_lock, NULL);
    *out = store;
    return 0;
}

void imageapi_store_free(imageapi_store *store)
{
    if (!store)
        return;
    for (size_t i = 0; i < store->bucket_count; i++) {
        for (cached *c = store->buckets[i], *next; c; c = next) {
            next = c->next;
            json_decref(c->image);
            free(c);
        }
    }
    free(store->buckets);
    pthread_mutex_destroy(&store->cache_lock);
    free(store);
}

/* ---- The cache ---------------------------------------------------------------------------- */

static size_t bucket_of(const imageapi_store *store, const char *id)
{
    uint64_t hash = 1469598103934665603u; /* FNV-1a */
    for (; *id; id++)
        hash = (hash ^ (unsigned char)*id) * 1099511628211u;
    return (size_t)hash & (store->bucket_count - 1);
}

static int same_file(const cached *c, const struct stat *st)
{
    return c->ino == st->st_ino && c->size == st->st_size &&
           c->mtime.tv_sec == st->st_mtim.tv_sec && c->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           c->ctime.tv_sec == st->st_ctim.tv_sec && c->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* What the cache holds for id's file as st describes it (a new reference
   to the kept image: not to be changed), or NULL. The caller holds
   cache_lock. */
static json_t *cache_find(imageapi_store *store, const char *id, const struct stat *st)
{
    if (!store->bucket_count)
        return NULL;
    for (cached *c = store->buckets[bucket_of(store, id)]; c; c = c->next)
        if (strcmp(c->id, id) == 0)
            return same_file(c, st) ? json_incref(c->image) : NULL;
    return NULL;
}

/* Keep image (borrowed) as id's file st; forget it when st is NULL. The
   caller holds cache_lock. Out of memory, nothing is kept. */
static void cache_keep(imageapi_store *store, const char *id, const struct stat *st, json_t *image)
{
    if (store->bucket_count) {
        for (cached **at = &store->buckets[bucket_of(store, id)]; *at; at = &(*at)->next) {
            if (strcmp((*at)->id, id) == 0) {
                cached *old = *at;
                *at = old->next;
                json_decref(old->image);
                free(old);
                store->cached_count--;
                break;
            }
        }
    }
    if (!st)
        return;
    if (store->cached_count >= store->bucket_count) { /* grow: keep chains short */
        size_t count = store->bucket_count ? store->bucket_count * 2 : 64;
        cached **buckets = calloc(count, sizeof(*buckets));
        if (!buckets)
            return;
        size_t old_count = store->bucket_count;
        cached **old = store->buckets;
        store->buckets = buckets;
        store->bucket_count = count;
        for (size_t i = 0; i < old_count; i++) {
            for (cached *c = old[i], *next; c; c = next) {
                next = c->next;
                size_t b = bucket_of(store, c->id);
                c->next = buckets[b];
                buckets[b] = c;
            }
        }
        free(old);
    }
    cached *c = malloc(sizeof(*c));
    if (!c)
        return;
    json_t *copy = json_incref(image); /* nobody changes a kept image */
    *c = (cached){store->buckets[bucket_of(store, id)],
                  {0},
                  st->st_ino,
                  st->st_size,
                  st->st_mtim,
                  st->st_ctim,
                  copy};
    snprintf(c->id, sizeof(c->id), "%s", id);
    store->buckets[bucket_of(store, id)] = c;
    store->cached_count++;
}

/* The JSON text of the open file fd, st its fstat, parsed; NULL with err. */
static json_t *parse_file(int fd, const struct stat *st, const char *path, char *err,
                          size_t err_size)
{
    if (st->st_size > 16 * 1024 * 1024) {
        snprintf(err, err_size, "%s: larger than 16 MiB", path);
        return NULL;
    }
    size_t size = (size_t)st->st_size, done = 0;
    char *text = malloc(size + 1);
    if (!text) {
        snprintf(err, err_size, "%s: out of memory", path);
        return NULL;
    }
    while (done < size) {
        ssize_t n = read(fd, text + done, size - done);
        if (n > 0)
            done += (size_t)n;
        else if (n == 0 || errno != EINTR)
            break;
    }
    json_error_t error;
    json_t *value = done == size ? json_loadb(text, size, JSON_REJECT_DUPLICATES, &error) : NULL;
    if (done != size)
        snprintf(err, err_size, "%s: cannot read it whole", path);
    else if (!value)
        snprintf(err, err_size, "%s:%d: %s", path, error.line, error.text);
    free(text);
    return value;
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

/* The image with id, shared with the cache (see imageapi_store_list). */
static json_t *get_shared(imageapi_store *store, const char *id, char *err, size_t err_size)
{
    char path[4200];
    err[0] = '\0';
    if (!imageapi_store_valid_id(id) || image_path(store, id, path, sizeof(path)) != 0)
        return NULL;
    /* Files are never changed in place, so a file with the identity of
       the one parsed holds its text: a stat says whether the copy kept will
       do. Otherwise the file is opened, and what is kept is keyed by that
       open file's fstat, so a rename between the stat and the read cannot
       pair one file's identity with another's text. */
    struct stat st;
    if (stat(path, &st) == 0) {
        pthread_mutex_lock(&store->cache_lock);
        json_t *image = cache_find(store, id, &st);
        pthread_mutex_unlock(&store->cache_lock);
        if (image)
            return image;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0 || errno != ENOENT)
            snprintf(err, err_size, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        pthread_mutex_lock(&store->cache_lock);
        cache_keep(store, id, NULL, NULL);
        pthread_mutex_unlock(&store->cache_lock);
        return NULL;
    }
    json_t *image = parse_file(fd, &st, path, err, err_size);
    close(fd);
    if (image && !json_is_object(image)) {
        snprintf(err, err_size, "%s: not a JSON object", path);
        json_decref(image);
        image = NULL;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int settled = st.st_mtim.tv_sec + 1 < now.tv_sec && st.st_ctim.tv_sec + 1 < now.tv_sec;
    pthread_mutex_lock(&store->cache_lock);
    cache_keep(store, id, image && settled ? &st : NULL, image);
    pthread_mutex_unlock(&store->cache_lock);
    return image;
}

json_t *imageapi_store_get(imageapi_store *store, const char *id, char *err, size_t err_size)
{
    json_t *shared = get_shared(store, id, err, err_size);
    json_t *image = shared ? json_deep_copy(shared) : NULL;
    json_decref(shared);
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
        json_t *image = get_shared(store, id, err, sizeof(err));
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
