/*
 * The directory backend (backend.h): image data as files under
 * state_dir/data, shared between hosts by any shared filesystem.
 *
 * An upload writes data/<id>.partial while holding flock(LOCK_EX) on it:
 * the lock dies with the uploading process, so a partial file whose lock
 * can be taken was left by a dead uploader. Commit fsyncs the file,
 * renames it to data/<id> and fsyncs the directory, so the data is on
 * disk under its final name before the metadata can say "active".
 */
#include "backend.h"

#include "imageapi.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct dir_backend {
    imageapi_backend base;
    char data[4096]; /* state_dir/data */
} dir_backend;

/* Bytes after which written data is handed to writeback, so that the
   fsync of the commit has little left to do. */
#define WRITEBACK_WINDOW (8 * 1024 * 1024)

struct imageapi_upload {
    dir_backend *backend;
    int fd;
    off_t written, flushed; /* bytes written; handed to writeback */
    char partial[4200];
    char final[4200];
};

static int paths(const dir_backend *backend, const char *id, char *partial, char *final)
{
    if (snprintf(partial, 4200, "%s/%s.partial", backend->data, id) >= 4200 ||
        snprintf(final, 4200, "%s/%s", backend->data, id) >= 4200)
        return -ENAMETOOLONG;
    return 0;
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Remove path if it is still the file fd has open (not one a later upload
   made under the same name). */
static void unlink_if_same(const char *path, int fd)
{
    struct stat mine, named;
    if (fstat(fd, &mine) == 0 && stat(path, &named) == 0 && mine.st_dev == named.st_dev &&
        mine.st_ino == named.st_ino)
        unlink(path);
}

static int dir_upload_begin(imageapi_backend *base, const char *id, imageapi_upload **out,
                            char *err, size_t err_size)
{
    dir_backend *backend = (dir_backend *)base;
    imageapi_upload *upload = calloc(1, sizeof(*upload));
    if (!upload) {
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    upload->backend = backend;
    int rc = paths(backend, id, upload->partial, upload->final);
    for (int attempt = 0; rc == 0; attempt++) {
        upload->fd = open(upload->partial, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
        if (upload->fd < 0) {
            rc = -errno;
            break;
        }
        if (flock(upload->fd, LOCK_EX | LOCK_NB) != 0) {
            rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
            close(upload->fd);
            break;
        }
        /* A dead uploader's file may have been removed (and another made)
           between our open and our lock: start again on the current one. */
        struct stat mine, named;
        if (fstat(upload->fd, &mine) == 0 && stat(upload->partial, &named) == 0 &&
            mine.st_ino == named.st_ino && mine.st_dev == named.st_dev) {
            if (ftruncate(upload->fd, 0) != 0) {
                rc = -errno;
                unlink_if_same(upload->partial, upload->fd);
                close(upload->fd);
                break;
            }
            *out = upload;
            return 0;
        }
        close(upload->fd);
        if (attempt == 3)
            rc = -EBUSY;
    }
    snprintf(err, err_size, "cannot write %s: %s", upload->partial, strerror(-rc));
    free(upload);
    return rc;
}

static int dir_upload_write(imageapi_upload *upload, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(upload->fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
        upload->written += n;
    }
    /* Start (not wait for) the writeback of the last window: the upload
       streams to disk instead of piling up dirty pages for the commit. */
    if (upload->written - upload->flushed >= WRITEBACK_WINDOW) {
        sync_file_range(upload->fd, upload->flushed, upload->written - upload->flushed,
                        SYNC_FILE_RANGE_WRITE);
        upload->flushed = upload->written;
    }
    return 0;
}

static void dir_upload_abort(imageapi_upload *upload)
{
    if (!upload)
        return;
    unlink_if_same(upload->partial, upload->fd);
    close(upload->fd); /* and the lock with it */
    free(upload);
}

static int dir_upload_flush(imageapi_upload *upload)
{
    return fsync(upload->fd) == 0 ? 0 : -errno;
}

static int dir_upload_commit(imageapi_upload *upload)
{
    if (rename(upload->partial, upload->final) != 0) {
        int code = errno;
        dir_upload_abort(upload);
        return -code;
    }
    sync_dir(upload->backend->data);
    close(upload->fd);
    free(upload);
    return 0;
}

static int dir_upload_alive(imageapi_backend *base, const char *id)
{
    dir_backend *backend = (dir_backend *)base;
    char partial[4200], final[4200];
    if (paths(backend, id, partial, final) != 0)
        return 0;
    int fd = open(partial, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return 1; /* its uploader holds it */
    }
    unlink_if_same(partial, fd);
    close(fd);
    return 0;
}

static int dir_open(imageapi_backend *base, const char *id, int *fd, int64_t *size)
{
    dir_backend *backend = (dir_backend *)base;
    char partial[4200], final[4200];
    if (paths(backend, id, partial, final) != 0)
        return -ENOENT;
    *fd = open(final, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return -errno;
    struct stat st;
    if (fstat(*fd, &st) != 0) {
        int code = errno;
        close(*fd);
        return -code;
    }
    *size = (int64_t)st.st_size;
    return 0;
}

static int dir_remove(imageapi_backend *base, const char *id)
{
    dir_backend *backend = (dir_backend *)base;
    char partial[4200], final[4200];
    if (paths(backend, id, partial, final) != 0)
        return -ENOENT;
    /* An upload still writing to the partial file goes on into an unlinked
       file; it finds the image gone when it ends. */
    int had_partial = unlink(partial) == 0;
    int rc = unlink(final) == 0 ? 0 : -errno;
    return had_partial && rc == -ENOENT ? 0 : rc;
}

static void dir_free(imageapi_backend *base)
{
    free(base);
}

static const imageapi_backend_type dir_type = {
    "dir",
    dir_upload_begin,
    dir_upload_write,
    dir_upload_flush,
    dir_upload_commit,
    dir_upload_abort,
    dir_upload_alive,
    dir_open,
    dir_remove,
    dir_free,
};

int imageapi_backend_dir_new(imageapi_backend **out, const char *state_dir, char *err,
                             size_t err_size)
{
    dir_backend *backend = calloc(1, sizeof(*backend));
    if (!backend) {
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    backend->base.type = &dir_type;
    if (snprintf(backend->data, sizeof(backend->data), "%s/data", state_dir) >=
        (int)sizeof(backend->data)) {
        free(backend);
        snprintf(err, err_size, "%s: the path is too long", state_dir);
        return -ENAMETOOLONG;
    }
    int rc = imageapi_mkdirs(backend->data);
    if (rc != 0) {
        snprintf(err, err_size, "cannot create %s: %s", backend->data, strerror(-rc));
        free(backend);
        return rc;
    }
    *out = &backend->base;
    return 0;
}
