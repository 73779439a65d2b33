/*
 * Serve the application a deploy file names, until SIGINT or SIGTERM:
 *
 *   serve CONFIG.ini[#name] [PORT]
 *
 * A stand-in for csgi-serve, which comes next: this loads the app with
 * csgi_loader_load_app() and serves it on 127.0.0.1:PORT (8080 by default;
 * 0 picks a free port, printed on the first line). Shared objects named by
 * the file are found beside it, in the directories of CSGI_MODULE_PATH, and
 * in the directory of this program (where the build puts the example's
 * modules).
 */
#include <csgi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: serve CONFIG.ini[#name] [PORT]\n");
        return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    int port = 8080;
    if (argc == 3) {
        char *end;
        long value = strtol(argv[2], &end, 10);
        if (!argv[2][0] || *end || value < 0 || value > 65535) {
            fprintf(stderr, "serve: bad port %s\n", argv[2]);
            return 2;
        }
        port = (int)value;
    }
    csgi_loader *loader = NULL;
    int rc = csgi_loader_new(&loader);
    if (rc != 0) {
        fprintf(stderr, "serve: out of memory\n");
        return 1;
    }
    /* The program's own directory, where the build puts the modules. */
    const char *slash = strrchr(argv[0], '/');
    if (slash && slash > argv[0]) {
        size_t len = (size_t)(slash - argv[0]);
        char *dir = malloc(len + 1);
        rc = dir ? 0 : CSGI_ENOMEM;
        if (dir) {
            memcpy(dir, argv[0], len);
            dir[len] = '\0';
            rc = csgi_loader_add_module_path(loader, dir); /* copied */
            free(dir);
        }
        if (rc != 0) {
            fprintf(stderr, "serve: %s\n", csgi_strerror(rc));
            csgi_loader_free(loader);
            return 1;
        }
    }
    csgi_app *app = NULL;
    csgi_load_error error;
    rc = csgi_loader_load_app(&app, loader, argv[1], &error);
    /* The app lives on without the loader (the modules stay loaded). */
    csgi_loader_free(loader);
    if (rc != 0) {
        char message[2048];
        csgi_load_error_format(&error, message, sizeof(message));
        fprintf(stderr, "serve: %s\n", message);
        return 1;
    }
    return csgi_serve(app, "127.0.0.1", port) == 0 ? 0 : 1;
}
