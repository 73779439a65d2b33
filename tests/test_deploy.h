/*
 * Loading deploy files with csgi/loader.h and running one request through
 * the application with the in-process test client (csgi/testing.h), for the
 * loader and modules suites. Each function fails the running test (Check)
 * when a step it expects to work does not.
 */
#ifndef CSGI_TESTS_TEST_DEPLOY_H
#define CSGI_TESTS_TEST_DEPLOY_H

#include <csgi/loader.h>
#include <csgi/testing.h>

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

/* Run method url through app with the public test client, with an optional
   header (name and value, or NULL) and body (NULL: none); the response must
   come back (owned by the caller: csgi_test_response_free). */
csgi_test_response *test_client_run(csgi_app *app, const char *method, const char *url,
                                    const char *name, const char *value, const char *body);

/* An app factory (csgi_app_factory_fn) whose application answers "hello"
   as text/plain, for tests to register under a name of their choice. */
int test_hello_app_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                           const csgi_conf *local_conf, csgi_load_error *error);

#endif
