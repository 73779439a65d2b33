/*
 * Hello World: the C counterpart of the talk's "Simple WSGI Application"
 * (the application itself is in hello_app.c),
 *
 *     def application(environ, start_response):
 *         start_response('200 OK', [('Content-type', 'text/html')])
 *         return ['Hello World']
 *     httpserver.serve(application, host='127.0.0.1', port=8080)
 *
 *   hello [--host ADDRESS] [--port N]
 *
 * Serves on 127.0.0.1:8080 by default; --port 0 picks a free port. The
 * first line printed names the address actually bound. SIGINT and SIGTERM
 * stop it gracefully.
 */
#include "hello_app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 8080;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end;
            long value = strtol(argv[++i], &end, 10);
            if (*end || value < 0 || value > 65535) {
                fprintf(stderr, "hello: bad port %s\n", argv[i]);
                return 2;
            }
            port = (int)value;
        } else {
            fprintf(stderr, "usage: hello [--host ADDRESS] [--port N]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    csgi_app *app;
    if (hello_app_new(&app) != 0)
        return 1;
    return csgi_serve(app, host, port) == 0 ? 0 : 1;
}
