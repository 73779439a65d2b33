/*
 * A request body that arrives in pieces, for the in-process test client,
 * whose csgi.input otherwise holds the whole body at once: a raw filter
 * replaces csgi.input with a stream that gives at most a few bytes per read
 * and answers CSGI_EAGAIN before each piece, waking its reader from a timer
 * on the request's loop. What is behind it waits for the body as it would
 * behind a slow client (public API only).
 */
#ifndef CSGI_TESTS_TEST_TRICKLE_H
#define CSGI_TESTS_TEST_TRICKLE_H

#include <csgi.h>

#include <stddef.h>

/* Wrap next (taken, also on failure) in the filter; piece is the most
   bytes a read gives (at least 1). Returns 0 or a csgi error. */
int test_trickle_new(csgi_app **out, csgi_app *next, size_t piece);

/* The same, and the body's length is unknown to what is behind, as for a
   chunked body: CONTENT_LENGTH is removed and the stream declares none. */
int test_trickle_unsized_new(csgi_app **out, csgi_app *next, size_t piece);

/* Bytes given to readers by every trickle stream of this process so far,
   and how often one of them answered CSGI_EAGAIN. */
size_t test_trickle_delivered(void);
int test_trickle_waits(void);

/* Set both counts back to 0. */
void test_trickle_reset(void);

#endif
