/*
 * Loading and running applications in-process, without a socket, for the
 * loader suites: a parsed GET request, an environ built from it, a
 * start-response that records the status and Content-Type, the body
 * pulled to its end. (The public test client of issue 5 will replace this.)
 */
#ifndef CSGI_TESTS_APP_DRIVER_H
#define CSGI_TESTS_APP_DRIVER_H

#include <csgi.h>

#include <stddef.h>

typedef struct app_driver_response {
    char status[64];
    char content_type[64];
    char body[256];
} app_driver_response;

/* Load uri with loader; fails the test (with the loader's message) on error. */
csgi_app *app_driver_load(csgi_loader *loader, const char *uri);

/* Load uri, which must fail: the formatted error in message. Returns the code. */
int app_driver_load_fails(csgi_loader *loader, const char *uri, char *message, size_t size);

/* GET path through app from remote (NULL: 192.0.2.7), with an optional extra
   header line ("Name: value", or NULL); the response in *out. */
void app_driver_run(csgi_app *app, const char *path, const char *remote, const char *header,
                    app_driver_response *out);

#endif
