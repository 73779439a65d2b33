/*
 * Loading deploy files with csgi/loader.h and running one request through
 * the application with the in-process test client (csgi/testing.h), for the
 * loader and modules suites. Each function fails the running test (Check)
 * when a step it expects to work does not.
 */
#ifndef CSGI_TESTS_TEST_DEPLOY_H
#define CSGI_TESTS_TEST_DEPLOY_H

#include <csgi/loader.h>

#include <stddef.h>

/* Load uri (path[#name]) with loader, which must succeed; returns the
   application (owned by the caller). */
csgi_app *test_load(csgi_loader *loader, const char *uri);

/* Load uri, which must fail and leave no application: the formatted error in
   message (size bytes, borrowed). Returns the error code. */
int test_load_fails(csgi_loader *loader, const char *uri, char *message, size_t size);

/* What a request got back: status line, Content-Type ("" without one) and
   body, truncated to fit (the body must fit). */
typedef struct test_client_response {
    char status[64];
    char content_type[64];
    char body[256];
} test_client_response;

/* GET path on example.com through app (borrowed) with the public test client,
   from remote (NULL: 192.0.2.7), with an optional extra header line ("Name:
   value", or NULL); the response in *out. */
void test_run_request(csgi_app *app, const char *path, const char *remote, const char *header,
                      test_client_response *out);

/* Serve uri's server section with loader (csgi_loader_serve(), which takes
   app) on the Unix socket socket_path, while a client sends request (once
   the socket answers), reads the whole response into response (cap bytes,
   NUL-terminated), then sends SIGTERM until serving ended. SIGTERM is
   ignored until the server handles it. Returns csgi_loader_serve's result
   and fills *error. */
int test_serve_one_request(csgi_loader *loader, const char *uri, csgi_app *app,
                           const char *socket_path, const char *request, char *response, size_t cap,
                           csgi_load_error *error);

#endif
