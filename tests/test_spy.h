/*
 * A raw filter for tests that notes the kind of body the application behind
 * returned (csgi_body_kind_of()): whether a file still goes out as a file
 * body, with sendfile(2), after the middleware under test.
 */
#ifndef CSGI_TESTS_TEST_SPY_H
#define CSGI_TESTS_TEST_SPY_H

#include <csgi/app.h>

/* Wrap app (taken, also on failure) in the spy; fails the test on error. */
csgi_app *test_spy_wrap(csgi_app *app);

/* The kind of the last body the spy saw; test_spy_reset() sets it to
   CSGI_BODY_ITERATOR. */
csgi_body_kind test_spy_kind(void);
void test_spy_reset(void);

#endif
