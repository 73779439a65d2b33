/*
 * The defaults a sink type (sink.h) takes for what it has no use for.
 */
#include "gateway/sink.h"

#include <csgi/common.h>

#include <errno.h>
#include <unistd.h>

/* Bytes of a file read at once by csgi_sink__sendfile_copy. */
#define COPY_CHUNK 16384

int csgi_sink__respond_in_parts(csgi_sink *sink, const csgi_gateway__head *head, int64_t length,
                                const void *data, size_t len)
{
    const csgi_sink_type *type = sink->type;
    int rc = type->send_head(sink, head, length);
    if (rc == 0 && len)
        rc = type->write_reference(sink, data, len);
    return rc ? rc : type->finish(sink);
}

int csgi_sink__write_reference_copy(csgi_sink *sink, const void *data, size_t len)
{
    return sink->type->write(sink, data, len);
}

int csgi_sink__write_lent_copy(csgi_sink *sink, const void *data, size_t len)
{
    return sink->type->write(sink, data, len);
}

int csgi_sink__sendfile_copy(csgi_sink *sink, int fd, int64_t offset, int64_t length)
{
    char buffer[COPY_CHUNK];
    int rc = 0;
    while (length > 0 && rc == 0) {
        size_t want = length < COPY_CHUNK ? (size_t)length : COPY_CHUNK;
        ssize_t n;
        do
            n = pread(fd, buffer, want, (off_t)offset);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
            rc = CSGI_EIO; /* an error, or the file is shorter than promised */
            break;
        }
        offset += n;
        length -= n;
        rc = sink->type->write(sink, buffer, (size_t)n);
    }
    close(fd);
    return rc;
}

size_t csgi_sink__buffered_none(const csgi_sink *sink)
{
    (void)sink;
    return 0;
}

int csgi_sink__finish_none(csgi_sink *sink)
{
    (void)sink;
    return 0;
}

struct event_base *csgi_sink__event_base_none(csgi_sink *sink)
{
    (void)sink;
    return NULL;
}
