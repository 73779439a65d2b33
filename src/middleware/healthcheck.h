/*
 * oslo.middleware's healthcheck on csgi (internal): what the application
 * and filter (healthcheck.c) share with the backends they run
 * (healthcheck_backends.c).
 */
#ifndef CSGI_MIDDLEWARE_HEALTHCHECK_H
#define CSGI_MIDDLEWARE_HEALTHCHECK_H

#include <csgi/loader.h>

#include <stdbool.h>
#include <stddef.h>

struct json_t;

/* oslo's backends run in the order named, a name given twice twice; csgi
   takes up to this many. */
#define CSGI_HEALTHCHECK__MAX_BACKENDS 8
/* Room for every backend's reason, one a line. */
#define CSGI_HEALTHCHECK__TEXT_SIZE (CSGI_HEALTHCHECK__MAX_BACKENDS * 20)

typedef struct csgi_healthcheck__port_file {
    unsigned port;
    char *path;
} csgi_healthcheck__port_file;

/* The backends of one healthcheck and the files they look at. */
typedef struct csgi_healthcheck__backends {
    int kinds[CSGI_HEALTHCHECK__MAX_BACKENDS]; /* in the order named */
    size_t count;
    char *disable_file;                      /* disable_by_file's */
    csgi_healthcheck__port_file *port_files; /* disable_by_files_ports's */
    size_t port_file_count;
    char **enable_files; /* enable_by_files's */
    size_t enable_file_count;
} csgi_healthcheck__backends;

/* conf's backends, disable_by_file_path, disable_by_file_paths and
   enable_by_file_paths into *out, which the caller zeroed and frees with
   csgi_healthcheck__backends_clear() also when this fails. 0, CSGI_EINVAL
   with error at the key, or CSGI_ENOMEM. */
int csgi_healthcheck__backends_parse(csgi_healthcheck__backends *out, const csgi_conf *conf,
                                     csgi_load_error *error);

/* Free what backends holds (NULL allowed). */
void csgi_healthcheck__backends_clear(csgi_healthcheck__backends *backends);

/* Run every backend for a request to port: the reasons into text
   (CSGI_HEALTHCHECK__TEXT_SIZE bytes, one a line; "OK" without backends)
   and appended to reasons (a JSON array, borrowed): the reason, or with
   detailed an object of oslo's class name, the reason and details. Whether
   every backend is healthy. */
bool csgi_healthcheck__backends_run(const csgi_healthcheck__backends *backends, unsigned port,
                                    bool detailed, char *text, struct json_t *reasons);

#endif
