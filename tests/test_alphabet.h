/*
 * A big response body whose every byte is known ("abc...z" over and
 * over), for the suites that stream one through the client and the proxy.
 */
#ifndef CSGI_TESTS_TEST_ALPHABET_H
#define CSGI_TESTS_TEST_ALPHABET_H

#include <csgi/request.h>
#include <csgi/response.h>

#include <stddef.h>

/* The request's response with len bytes of the alphabet as its body, or
   NULL when memory ran out. */
csgi_response *test_alphabet_response(csgi_request *request, size_t len);

/* The start of a test backend's handler: for PATH_INFO big_path, 1 MiB
   of the alphabet (returns 1, *out the answer, NULL when it failed); else
   a fresh response in *out and the request's whole body (at most 8 MiB)
   in body/len (returns 0), or -1 when either failed. */
int test_backend_begin(csgi_request *request, const char *big_path, csgi_response **out,
                       const char **body, size_t *len);

/* Fail the test unless body is len bytes of the alphabet (sampled). */
void test_alphabet_check(const char *body, size_t len, size_t expected_len);

#endif
