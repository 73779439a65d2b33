/*
 * oslo.middleware's debug filter (Debug) and its INI factory
 * (egg:oslo.middleware#debug, oslo_middleware:Debug.factory,
 * oslo_middleware.debug:Debug.factory).
 *
 * For each request it logs, on the error stream at info level (seen when
 * the server logs info lines: csgi_server_options.log_level, or csgi
 * serve -v), every environ key with its value, then the status line and
 * every header of the answer, one line each. Unlike oslo it does not log
 * the body: the body passes through untouched (a file keeps sendfile),
 * and an upload or a download of any size costs nothing. Values are
 * escaped (csgi_middleware__escape()): a header holding CR LF or ESC
 * shows as \x0d\x0a or \x1b, never as a line of its own.
 *
 * As in oslo, the values are logged as they are, credentials
 * (Authorization, X-Auth-Token, Cookie) included: a filter for a
 * developer's machine, not for production.
 */
#include "common/alloc.h"
#include "middleware/middleware.h"

#include <csgi/app.h>
#include <csgi/environ.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define LEVEL     2   /* info */
#define VALUE_MAX 768 /* escaped bytes of a value shown; a line holds at most 1024 */

typedef struct debug {
    csgi_app *next;
} debug;

typedef struct call {
    csgi_environ *environ;
    csgi_start_response *parent;
} call;

static void log_pair(csgi_environ *environ, const char *what, const char *name, size_t name_len,
                     const char *value, size_t value_len)
{
    char shown_name[128], shown_value[VALUE_MAX];
    csgi_middleware__escape(shown_name, sizeof(shown_name), name, name_len);
    csgi_middleware__escape(shown_value, sizeof(shown_value), value, value_len);
    csgi_environ_log_at(environ, LEVEL, "debug: %s %s = %s", what, shown_name, shown_value);
}

static void log_environ(csgi_environ *environ)
{
    csgi_environ_log_at(environ, LEVEL, "debug: request environ");
    size_t cursor = 0;
    const char *key;
    csgi_value_kind kind;
    while (csgi_environ_next(environ, &cursor, &key, &kind)) {
        char number[32];
        const char *value = "(pointer)";
        size_t len;
        if (kind == CSGI_VALUE_STRING) {
            value = csgi_environ_get_n(environ, key, &len);
            if (!value)
                value = "", len = 0;
        } else if (kind == CSGI_VALUE_INT) {
            int64_t n = 0;
            csgi_environ_get_int(environ, key, &n);
            snprintf(number, sizeof(number), "%" PRId64, n);
            value = number;
            len = strlen(number);
        } else {
            value = kind == CSGI_VALUE_JSON ? "(JSON value)" : "(pointer)";
            len = strlen(value);
        }
        log_pair(environ, "environ", key, strlen(key), value, len);
    }
}

static int log_start(const char *status, const csgi_header *headers, size_t count,
                     const char *exc_info, void *userdata)
{
    call *c = userdata;
    char shown[256];
    csgi_middleware__escape(shown, sizeof(shown), status ? status : "",
                            status ? strlen(status) : 0);
    csgi_environ_log_at(c->environ, LEVEL, "debug: response status %s%s", shown,
                        exc_info ? " (replacing the first, after an error)" : "");
    for (size_t i = 0; i < count; i++)
        log_pair(c->environ, "response header", headers[i].name, headers[i].name_len,
                 headers[i].value, headers[i].value_len);
    csgi_environ_log_at(c->environ, LEVEL, "debug: response body not logged");
    return csgi_start_response_call(c->parent, status, headers, count, exc_info);
}

static csgi_body *debug_call(void *state, csgi_environ *environ,
                             csgi_start_response *start_response)
{
    const debug *d = state;
    log_environ(environ);
    call *c = csgi_environ_alloc_zeroed(environ, sizeof(*c));
    csgi_start_response *own =
        c ? csgi_start_response_new(environ, start_response, log_start, c) : NULL;
    if (!own)
        return NULL;
    c->environ = environ;
    c->parent = start_response;
    return csgi_app_call(d->next, environ, own);
}

static void debug_destroy(void *state)
{
    debug *d = state;
    if (!d)
        return;
    csgi_app_free(d->next);
    csgi__free(d);
}

static const csgi_app_type debug_type = {"debug", debug_call, debug_destroy};

int csgi_debug__filter_factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                               const csgi_conf *local_conf, csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    static const char *const known[] = {NULL};
    int rc = csgi_middleware__known_keys(local_conf, "debug", known, error);
    debug *d = rc == 0 ? csgi__malloc(sizeof(*d)) : NULL;
    if (!d) {
        csgi_app_free(next);
        return rc != 0 ? rc : CSGI_ENOMEM;
    }
    d->next = next;
    return csgi_app_new(out, &debug_type, d);
}
