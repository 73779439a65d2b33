/*
 * The hello application on its own, so that the example program serves it
 * and the test suite (tests/check_testing.c) runs it through the lint
 * filter with the in-process test client.
 */
#ifndef CSGI_EXAMPLES_HELLO_APP_H
#define CSGI_EXAMPLES_HELLO_APP_H

#include <csgi.h>

/* Make the hello application: 0, or a csgi_err. */
int hello_app_new(csgi_app **out);

#endif
