/*
 * Gathering a request body before a handler runs (internal, gather.c):
 * the body is read from csgi.input as it arrives, kept in memory up to a
 * threshold and spilled to a temporary file past it, then csgi.input is
 * replaced by a stream over what was gathered, whose length is known and
 * whose reads never wait.
 */
#ifndef CSGI_HELPERS_GATHER_H
#define CSGI_HELPERS_GATHER_H

#include <csgi/environ.h>

#include <stddef.h>
#include <stdint.h>

typedef struct csgi_gather__limits {
    uint64_t max_body;    /* more is refused with CSGI_ETOOBIG */
    size_t memory;        /* bytes kept in memory; past them, a file */
    const char *temp_dir; /* where the file goes (borrowed) */
} csgi_gather__limits;

/* Called once when gathering ends later: rc 0 (csgi.input replaced), or
   the error that stopped it (see csgi_gather__start). */
typedef void (*csgi_gather__done_fn)(void *userdata, int rc);

/*
 * Gather the body of environ's csgi.input. limits is borrowed until done
 * runs. Returns 0 when the whole body is there now (csgi.input replaced),
 * CSGI_EAGAIN when done will be called later, or an error now:
 * CSGI_ETOOBIG (over max_body, or the stream refused it), CSGI_EPARSE (a
 * malformed body), CSGI_ECLOSED, CSGI_ETIMEDOUT, CSGI_ESYSTEM (the
 * temporary file), CSGI_ENOMEM. done gets the same errors. Nothing is
 * read when the announced length is over max_body.
 */
int csgi_gather__start(csgi_environ *environ, const csgi_gather__limits *limits,
                       csgi_gather__done_fn done, void *userdata);

/* 1 when environ's csgi.input is a gathered body (nothing to wait for). */
int csgi_gather__is_gathered(csgi_environ *environ);

/* When csgi.input is a gathered body, make it one that reads from the
   start again (for the application a filter forwards to after reading the
   body itself). 0, or CSGI_ENOMEM. */
int csgi_gather__rewind(csgi_environ *environ);

/* When from's csgi.input is a gathered body, give to (a copy of from's
   environ: csgi_environ__copy) a csgi.input of its own over the same
   bytes, read from the start; they are from's, so from's request must
   outlive to. 0 (also when nothing was gathered), or CSGI_ENOMEM. */
int csgi_gather__share(csgi_environ *from, csgi_environ *to);

/* 1 when csgi.input may have a body to gather (0 for a request without one). */
int csgi_gather__has_body(csgi_environ *environ);

#endif
