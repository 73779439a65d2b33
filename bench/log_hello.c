/*
 * Hello World with an access log: the benchmark's measure of what a line
 * per request costs (examples/hello is the same server without the log).
 *
 *   log_hello --access-log PATH [--format FORMAT] [--host ADDRESS] [--port N]
 *
 * The access log is in Apache's combined format unless --format says
 * otherwise, buffered as the server's defaults say (64 KiB, written at
 * least every second). Only the public API (<csgi.h>), served by
 * csgi_server_run_until_signal() as csgi_serve() does; --port 0 picks a
 * free port and the first line printed names the address bound. SIGINT
 * and SIGTERM stop it gracefully (the last lines are written then).
 */
#include <csgi.h>

#include "hello_app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    const char *access_log = NULL, *format = NULL;
    int port = 8080;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--access-log") == 0 && i + 1 < argc) {
            access_log = argv[++i];
        } else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
            format = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end;
            long value = strtol(argv[++i], &end, 10);
            if (*end || value < 0 || value > 65535) {
                fprintf(stderr, "log_hello: bad port %s\n", argv[i]);
                return 2;
            }
            port = (int)value;
        } else {
            fprintf(stderr, "usage: log_hello --access-log PATH [--format FORMAT] "
                            "[--host ADDRESS] [--port N]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (!access_log) {
        fprintf(stderr, "log_hello: --access-log PATH is required\n");
        return 2;
    }
    csgi_app *app;
    if (hello_app_new(&app) != 0)
        return 1;
    csgi_server_options options = CSGI_SERVER_OPTIONS_INIT;
    options.access_log = access_log;
    options.access_log_format = format;
    csgi_server *server = NULL;
    if (csgi_server_new(&server, app, &options, NULL) != 0)
        return 1;
    char address[300];
    snprintf(address, sizeof(address), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    int rc = csgi_server_listen(server, address);
    if (rc != 0)
        fprintf(stderr, "log_hello: cannot serve on %s: %s\n", address, csgi_strerror(rc));
    else
        rc = csgi_server_run_until_signal(server);
    csgi_server_free(server);
    return rc == 0 ? 0 : 1;
}
