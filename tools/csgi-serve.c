/*
 * csgi-serve: serve the application a PasteDeploy-style INI file describes
 * (the `pserve` of csgi). See docs/csgi-serve.1.
 *
 *   csgi-serve [options] CONFIG.ini[#name] [name=value ...]
 *
 * The application is built and served by the file's [server:NAME] section
 * through csgi_loader_serve_app(): with `workers` (or --workers), by a
 * master and worker processes that build it after the fork (or in the
 * master with `preload = true`) and reload on SIGHUP. A file without a
 * server section is served by csgi's own HTTP server on 127.0.0.1:8080 (or
 * the --listen addresses).
 */
#define _POSIX_C_SOURCE 200809L

#include <csgi/common.h>
#include <csgi/loader.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LISTEN 64

static const char usage[] =
    "usage: csgi-serve [options] CONFIG.ini[#name] [name=value ...]\n"
    "\n"
    "Serve the application a PasteDeploy-style deploy file describes.\n"
    "\n"
    "options:\n"
    "  --server-name NAME  the [server:NAME] section (default main)\n"
    "  --app-name NAME     the application (default: the #name of the file, or main)\n"
    "  --listen HOST:PORT  listen here instead of the server section's host and\n"
    "                      port (repeatable; [IPv6]:PORT and unix:/path work too);\n"
    "                      https://HOST:PORT serves TLS with the section's cert_file,\n"
    "                      http://HOST:PORT plain (a bare HOST:PORT is TLS when the\n"
    "                      section has cert_file)\n"
    "  --module-path DIR   also search DIR for factory modules (repeatable)\n"
    "  --workers N         serve with N worker processes (the server section's\n"
    "                      workers key); 0 serves in this process\n"
    "  --timeout SECONDS   with workers: replace a worker stuck that long in one\n"
    "                      request (the timeout key; uWSGI's harakiri)\n"
    "  --access-log DEST   write the access log to DEST (the access_log key): a\n"
    "                      file, - for standard error, stdout, syslog[:FACILITY]\n"
    "  --log-level LEVEL   error, warning, info or debug (the log_level key)\n"
    "  --error-log FILE    append the error log to FILE (the error_log key)\n"
    "  --allow-root        serve as root without a user key (the allow_root key)\n"
    "  --check             build the application, print what was built, exit\n"
    "  --stub-unknown      with --check: unknown factories become placeholders\n"
    "  --help              show this help\n"
    "  --version           show csgi's version\n"
    "\n"
    "name=value arguments are globals for %(name)s in the file and the global\n"
    "conf of factories. Modules are searched in the file's directory, the\n"
    "--module-path directories, then CSGI_MODULE_PATH.\n";

static void report(const csgi_load_error *error)
{
    char text[2048];
    csgi_load_error_format(error, text, sizeof(text));
    fprintf(stderr, "csgi-serve: %s\n", text);
}

/* The option value after argv[*i], or NULL (and a message). */
static const char *option_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "csgi-serve: %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int main(int argc, char **argv)
{
    const char *server_name = "main";
    const char *app_name = NULL;
    const char *listen[MAX_LISTEN];
    size_t listen_count = 0;
    const char *module_paths[MAX_LISTEN];
    size_t module_path_count = 0;
    int check = 0, stub = 0;
    const char *config = NULL;
    int allow_root = 0;
    const char *workers = NULL, *timeout = NULL, *access_log = NULL, *log_level = NULL;
    const char *error_log = NULL;
    const char *globals[256];
    size_t global_count = 0;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(arg, "--version") == 0) {
            printf("csgi-serve %s\n", csgi_version_string());
            return 0;
        } else if (strcmp(arg, "--check") == 0) {
            check = 1;
        } else if (strcmp(arg, "--stub-unknown") == 0) {
            stub = 1;
        } else if (strcmp(arg, "--server-name") == 0) {
            if (!(server_name = option_value(argc, argv, &i)))
                return 1;
        } else if (strcmp(arg, "--app-name") == 0) {
            if (!(app_name = option_value(argc, argv, &i)))
                return 1;
        } else if (strcmp(arg, "--listen") == 0) {
            const char *value = option_value(argc, argv, &i);
            if (!value)
                return 1;
            if (listen_count == MAX_LISTEN) {
                fprintf(stderr, "csgi-serve: too many --listen addresses\n");
                return 1;
            }
            listen[listen_count++] = value;
        } else if (strcmp(arg, "--workers") == 0) {
            if (!(workers = option_value(argc, argv, &i)))
                return 1;
            if (!workers[0] || strspn(workers, "0123456789") != strlen(workers) ||
                strlen(workers) > 4) {
                fprintf(stderr, "csgi-serve: --workers needs a number, not '%s'\n", workers);
                return 1;
            }
        } else if (strcmp(arg, "--timeout") == 0) {
            if (!(timeout = option_value(argc, argv, &i))) /* checked as the key is */
                return 1;
        } else if (strcmp(arg, "--allow-root") == 0) {
            allow_root = 1;
        } else if (strcmp(arg, "--access-log") == 0) {
            if (!(access_log = option_value(argc, argv, &i)))
                return 1;
        } else if (strcmp(arg, "--error-log") == 0) {
            if (!(error_log = option_value(argc, argv, &i)))
                return 1;
        } else if (strcmp(arg, "--log-level") == 0) {
            if (!(log_level = option_value(argc, argv, &i)))
                return 1;
        } else if (strcmp(arg, "--module-path") == 0) {
            const char *value = option_value(argc, argv, &i);
            if (!value)
                return 1;
            if (module_path_count == MAX_LISTEN) {
                fprintf(stderr, "csgi-serve: too many --module-path directories\n");
                return 1;
            }
            module_paths[module_path_count++] = value;
        } else if (strcmp(arg, "--") == 0 && !config && i + 1 < argc) {
            config = argv[++i];
        } else if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, "csgi-serve: unknown option %s (try --help)\n", arg);
            return 1;
        } else if (!config) {
            config = arg;
        } else if (strchr(arg, '=') && arg[0] != '=') {
            if (global_count == sizeof(globals) / sizeof(globals[0])) {
                fprintf(stderr, "csgi-serve: too many name=value arguments\n");
                return 1;
            }
            globals[global_count++] = arg;
        } else {
            fprintf(stderr, "csgi-serve: expected name=value, got '%s'\n", arg);
            return 1;
        }
    }
    if (!config) {
        fputs(usage, stderr);
        return 1;
    }
    if (stub && !check) {
        fprintf(stderr, "csgi-serve: --stub-unknown goes with --check\n");
        return 1;
    }

    /* The file, without its #name: the app and server URIs are built from it. */
    const char *hash = strchr(config, '#');
    size_t path_len = hash ? (size_t)(hash - config) : strlen(config);
    if (!app_name)
        app_name = hash && hash[1] ? hash + 1 : "main";
    size_t uri_size = path_len + 2 + strlen(app_name) + strlen(server_name);
    char *app_uri = malloc(uri_size);
    char *server_uri = malloc(uri_size);
    if (!app_uri || !server_uri) {
        fprintf(stderr, "csgi-serve: out of memory\n");
        return 1;
    }
    snprintf(app_uri, uri_size, "%.*s#%s", (int)path_len, config, app_name);
    snprintf(server_uri, uri_size, "%.*s#%s", (int)path_len, config, server_name);

    csgi_loader *loader = NULL;
    int rc = csgi_loader_new(&loader);
    for (size_t i = 0; rc == 0 && i < module_path_count; i++)
        rc = csgi_loader_add_module_path(loader, module_paths[i]);
    for (size_t i = 0; rc == 0 && i < global_count; i++) {
        const char *eq = strchr(globals[i], '=');
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - globals[i]), globals[i]);
        rc = csgi_loader_set_global(loader, name, eq + 1);
    }
    if (rc == 0 && listen_count)
        rc = csgi_loader_set_listen(loader, listen, listen_count);
    if (rc == 0 && workers)
        rc = csgi_loader_set_server_option(loader, "workers", workers);
    /* Checked with the section's keys, when the server is read. */
    if (rc == 0 && timeout)
        rc = csgi_loader_set_server_option(loader, "timeout", timeout);
    if (rc == 0 && access_log)
        rc = csgi_loader_set_server_option(loader, "access_log", access_log);
    if (rc == 0 && error_log)
        rc = csgi_loader_set_server_option(loader, "error_log", error_log);
    if (rc == 0 && log_level)
        rc = csgi_loader_set_server_option(loader, "log_level", log_level);
    if (rc == 0 && allow_root)
        rc = csgi_loader_set_server_option(loader, "allow_root", "true");
    if (rc != 0) {
        fprintf(stderr, "csgi-serve: %s\n", csgi_strerror(rc));
        csgi_loader_free(loader);
        return 1;
    }

    csgi_load_error error;
    int status = 0;
    if (check) {
        /* A file without the server section is served by csgi's own server. */
        int has_server = csgi_loader_has_server(loader, server_uri, &error);
        const char *text = NULL;
        rc = has_server < 0 ? has_server
                            : csgi_loader_describe(&text, loader, app_uri, stub, &error);
        if (rc == 0 && has_server)
            rc = csgi_loader_check_server(loader, server_uri, &error);
        if (rc != 0) {
            report(&error);
            status = 1;
        } else {
            fputs(text, stdout);
        }
    } else if ((rc = csgi_loader_serve_app(loader, app_uri, server_uri, &error)) != 0) {
        report(&error);
        status = 1;
    }
    csgi_loader_free(loader);
    free(app_uri);
    free(server_uri);
    return status;
}
