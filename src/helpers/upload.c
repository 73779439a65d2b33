/*
 * Keeping an uploaded file (csgi_form_file_save() in include/csgi/request.h).
 *
 * A file the multipart parser spooled is an O_TMPFILE file where the
 * filesystem allows: linked into place through /proc/self/fd, it becomes
 * the saved file without a byte copied. Otherwise (another filesystem, a
 * file kept in memory, no O_TMPFILE) the bytes are written into a new
 * O_TMPFILE file in the destination's directory, synced, and linked: the
 * name never shows a partial file. Only where the destination's
 * filesystem has no O_TMPFILE is the file written under its name.
 */
#include "helpers/helpers.h"

#include <csgi/request.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Link the file open at fd to path (under dirfd): 0, or errno. */
static int link_descriptor(int fd, int dirfd, const char *path)
{
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, dirfd, path, AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
}

/* The file's bytes, from memory or from its descriptor, into out. */
static int copy_bytes(const csgi_form_file *file, int out)
{
    if (file->data)
        return csgi_helpers__write_all(out, file->data, (size_t)file->size);
    char buf[64 * 1024];
    for (off_t at = 0; (uint64_t)at < file->size;) {
        ssize_t n = pread(file->fd, buf, sizeof(buf), at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return CSGI_ESYSTEM;
        if (csgi_helpers__write_all(out, buf, (size_t)n) != 0)
            return CSGI_ESYSTEM;
        at += n;
    }
    return 0;
}

int csgi_form_file_save(const csgi_form_file *file, int dirfd, const char *path)
{
    if (!file || !path || !*path || (!file->data && file->fd < 0 && file->size))
        return CSGI_EINVAL;
    int e;
    if (!file->data && file->fd >= 0) {
        if (fsync(file->fd) != 0)
            return CSGI_ESYSTEM;
        e = link_descriptor(file->fd, dirfd, path);
        if (e == 0)
            return 0;
        if (e == EEXIST) {
            errno = e;
            return CSGI_ESYSTEM;
        }
        /* EXDEV (another filesystem), ENOENT (not an O_TMPFILE file): copy */
    }

    /* A new unnamed file beside path, filled, synced, then named. */
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else if ((size_t)(slash - path) < sizeof(dir))
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    else
        return CSGI_EINVAL;
    int named = 0;
    int out = openat(dirfd, dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (out < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        out = openat(dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        named = 1;
    }
    if (out < 0)
        return CSGI_ESYSTEM;
    int rc = copy_bytes(file, out);
    if (rc == 0 && fsync(out) != 0)
        rc = CSGI_ESYSTEM;
    if (rc == 0 && !named) {
        e = link_descriptor(out, dirfd, path);
        if (e != 0) {
            close(out);
            errno = e;
            return CSGI_ESYSTEM;
        }
    }
    e = errno;
    if (close(out) != 0 && rc == 0)
        rc = CSGI_ESYSTEM;
    if (rc != 0 && named)
        unlinkat(dirfd, path, 0);
    errno = e;
    return rc;
}
