/*
 * Gathering a request body before a handler runs (gather.h).
 *
 * The body is read as it arrives into one buffer of the request's arena,
 * at most limits->memory bytes (fewer when the announced length is
 * smaller). When the buffer is full and more comes, a temporary file is
 * made in limits->temp_dir, the buffer written to it, and the buffer is
 * reused for the rest, which goes to the file too: a request holds the
 * same memory however long its body is (nginx's client_body_buffer_size
 * and client_body_temp_path work the same way). The file is removed and
 * closed when the request ends, whichever way it ends.
 *
 * Once the body has ended, csgi.input becomes a stream over the buffer or
 * the file, with the gathered length declared, so every body reader works
 * on it as usual and never waits.
 */
#include "helpers/gather.h"

#include "gateway/environ_private.h"
#include "gateway/input.h"
#include "helpers/helpers.h"

#include <csgi/environ.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct gather {
    csgi_environ *environ;
    csgi_input *source; /* the stream read */
    const csgi_gather__limits *limits;
    csgi_gather__done_fn done;
    void *userdata;

    char *buffer; /* the body while it fits, then a staging buffer for the file */
    size_t capacity;
    size_t held; /* bytes in buffer not yet written to the file */
    uint64_t total;
    int fd;     /* the temporary file, or -1 */
    char *path; /* its name, removed when the request ends */
} gather;

/* The gathered body as csgi.input. */
typedef struct gathered {
    const char *memory; /* the body, when it stayed in memory */
    int fd;             /* else the file */
    uint64_t length;
    uint64_t offset; /* read so far */
} gathered;

static long gathered_read(void *state, void *buf, size_t len)
{
    gathered *g = state;
    uint64_t left = g->length - g->offset;
    if (len > left)
        len = (size_t)left;
    if (len > LONG_MAX)
        len = LONG_MAX;
    if (!len)
        return 0;
    if (g->memory) {
        memcpy(buf, g->memory + g->offset, len);
    } else {
        ssize_t n;
        do
            n = pread(g->fd, buf, len, (off_t)g->offset);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            return CSGI_ESYSTEM; /* the file is ours: short means broken */
        len = (size_t)n;
    }
    g->offset += len;
    return (long)len;
}

static const csgi_input_type gathered_type = {"gathered-body", gathered_read, NULL, NULL};

int csgi_gather__is_gathered(csgi_environ *environ)
{
    return csgi_input__type(csgi_environ_input(environ)) == &gathered_type;
}

/* Make to's csgi.input a stream over old's bytes, from their start. */
static int read_again(const gathered *old, csgi_environ *to)
{
    gathered *body = csgi_environ_alloc(to, sizeof(*body));
    if (!body)
        return CSGI_ENOMEM;
    *body = (gathered){.memory = old->memory, .fd = old->fd, .length = old->length};
    csgi_input *input = csgi_input_new(to, &gathered_type, body, (int64_t)old->length);
    if (!input || csgi_environ_set_input(to, input) != 0)
        return CSGI_ENOMEM;
    return 0;
}

int csgi_gather__rewind(csgi_environ *environ)
{
    /* A gathered body replaced the server's stream: most requests have
       none, and their stream need not be set up to tell. */
    csgi_input *input = csgi_environ__replaced_input(environ);
    if (!input || csgi_input__type(input) != &gathered_type)
        return 0;
    const gathered *old = input->state;
    if (old->offset == 0 && input->start == input->end && input->status == 0)
        return 0; /* nothing read yet */
    return read_again(old, environ);
}

int csgi_gather__share(csgi_environ *from, csgi_environ *to)
{
    csgi_input *input = csgi_environ_input(from);
    if (csgi_input__type(input) != &gathered_type)
        return 0;
    return read_again(input->state, to);
}

int csgi_gather__has_body(csgi_environ *environ)
{
    return csgi_input__has_body(csgi_environ_input(environ));
}

int csgi_helpers__write_all(int fd, const void *data, size_t len)
{
    const char *at = data;
    while (len) {
        ssize_t n = write(fd, at, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return CSGI_ESYSTEM;
        at += n;
        len -= (size_t)n;
    }
    return 0;
}

static void remove_file(void *userdata)
{
    gather *g = userdata;
    if (g->fd >= 0)
        close(g->fd);
    if (g->path)
        unlink(g->path);
    g->fd = -1;
}

/* Make the temporary file and move the buffer's bytes into it. */
static int spill(gather *g)
{
    const char *dir = g->limits->temp_dir;
    size_t size = strlen(dir) + sizeof("/csgi-body-XXXXXX");
    char *path = csgi_environ_alloc(g->environ, size);
    if (!path)
        return CSGI_ENOMEM;
    snprintf(path, size, "%s/csgi-body-XXXXXX", dir);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        csgi_environ_log(g->environ, "cannot make a file for the request body in %s: %s", dir,
                         strerror(errno));
        return CSGI_ESYSTEM;
    }
    g->fd = fd;
    g->path = path;
    if (csgi_environ_defer(g->environ, remove_file, g) != 0) {
        remove_file(g);
        return CSGI_ENOMEM;
    }
    return 0;
}

static int flush(gather *g)
{
    int rc = csgi_helpers__write_all(g->fd, g->buffer, g->held);
    if (rc != 0)
        csgi_environ_log(g->environ, "cannot write the request body to %s: %s", g->path,
                         strerror(errno));
    g->held = 0;
    return rc;
}

/* The body has ended: csgi.input becomes what was gathered. */
static int finish(gather *g)
{
    int rc = g->fd >= 0 ? flush(g) : 0;
    gathered *body = rc == 0 ? csgi_environ_alloc(g->environ, sizeof(*body)) : NULL;
    if (rc != 0)
        return rc;
    if (!body)
        return CSGI_ENOMEM;
    *body = (gathered){.memory = g->fd >= 0  ? NULL
                                 : g->buffer ? g->buffer
                                             : "",
                       .fd = g->fd,
                       .length = g->total};
    if (g->total > INT64_MAX)
        return CSGI_ETOOBIG;
    csgi_input *input = csgi_input_new(g->environ, &gathered_type, body, (int64_t)g->total);
    if (!input || csgi_environ_set_input(g->environ, input) != 0)
        return CSGI_ENOMEM;
    return 0;
}

/* Read what is there. 0 at the end (finished), CSGI_EAGAIN to wait, or an
   error. */
static int pump(gather *g)
{
    for (;;) {
        if (g->held == g->capacity) {
            /* Full: from here on the body goes to the file. */
            int rc = g->fd < 0 ? spill(g) : 0;
            if (rc == 0)
                rc = flush(g);
            if (rc != 0)
                return rc;
        }
        long n = csgi_input_read(g->source, g->buffer + g->held, g->capacity - g->held);
        if (n == 0)
            return finish(g);
        if (n < 0)
            return (int)n;
        g->held += (size_t)n;
        g->total += (uint64_t)n;
        if (g->total > g->limits->max_body)
            return CSGI_ETOOBIG;
    }
}

static void on_ready(csgi_input *input, void *userdata)
{
    gather *g = userdata;
    int rc = pump(g);
    if (rc == CSGI_EAGAIN) {
        csgi_input_on_ready(input, on_ready, g);
        return;
    }
    g->done(g->userdata, rc);
}

int csgi_gather__start(csgi_environ *environ, const csgi_gather__limits *limits,
                       csgi_gather__done_fn done, void *userdata)
{
    csgi_input *source = csgi_environ_input(environ);
    int64_t announced = csgi_input__length(source);
    /* Refused before a byte is read, so no "100 Continue" goes out. */
    if (announced >= 0 && (uint64_t)announced > limits->max_body)
        return CSGI_ETOOBIG;

    gather *g = csgi_environ_alloc(environ, sizeof(*g));
    if (!g)
        return CSGI_ENOMEM;
    /* One byte more than an announced length, to see the end at once. */
    size_t capacity = limits->memory ? limits->memory : 1;
    if (announced >= 0 && (uint64_t)announced < capacity)
        capacity = (size_t)announced + 1;
    *g = (gather){.environ = environ,
                  .source = source,
                  .limits = limits,
                  .done = done,
                  .userdata = userdata,
                  .buffer = csgi_environ_alloc(environ, capacity),
                  .capacity = capacity,
                  .fd = -1};
    if (!g->buffer)
        return CSGI_ENOMEM;
    int rc = pump(g);
    if (rc == CSGI_EAGAIN)
        csgi_input_on_ready(source, on_ready, g);
    return rc;
}
