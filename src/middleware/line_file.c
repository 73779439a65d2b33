/*
 * The csgi key `file` of the logging filters (translogger, audit): a file
 * opened once at load with O_APPEND, and lines written to it each with one
 * write(2), so that processes and threads sharing it never mix lines.
 */
#include "middleware/middleware.h"

#include <csgi/environ.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int csgi_middleware__open_file(const csgi_conf *conf, const char *file, int mode, int *out,
                               csgi_load_error *error)
{
    if (!*file) {
        csgi_conf_error(conf, "file", error, "must name a file");
        return CSGI_EINVAL;
    }
    *out = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode);
    if (*out < 0) {
        csgi_conf_error(conf, "file", error, "cannot open %s: %s", file, strerror(errno));
        return errno == EACCES ? CSGI_EACCESS : CSGI_ESYSTEM;
    }
    return 0;
}

void csgi_middleware__write_line(csgi_environ *environ, int fd, const char *line, size_t len,
                                 const char *what)
{
    /* A full disk loses the line, and says so. */
    ssize_t n;
    do
        n = write(fd, line, len);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)len)
        csgi_environ_log(environ, "could not write %s: %s", what,
                         n < 0 ? strerror(errno) : "short write");
}
