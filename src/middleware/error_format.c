/*
 * The error_format filter (include/csgi/errors.h) and its INI factory
 * (egg:csgi#error_format): every request through it has its error pages
 * rendered by one renderer, whatever Accept says.
 *
 * The filter only sets the environ key csgi.error_format
 * (csgi_error_format_set()) and calls the next application: the pages are
 * rendered where they are made, by csgi_response_error(). It touches
 * neither the status nor the body, so it costs one environ key per
 * request.
 */
#include "common/alloc.h"
#include "common/error_page.h"
#include "middleware/middleware.h"

#include <csgi/errors.h>

#include <string.h>

typedef struct error_format {
    csgi_app *next;
    csgi_error_render_fn render;
    void *userdata;
    csgi_destroy_fn destroy; /* of userdata, or NULL */
} error_format;

static csgi_body *error_format_call(void *state, csgi_environ *environ,
                                    csgi_start_response *start_response)
{
    const error_format *f = state;
    if (csgi_error_format_set(environ, f->render, f->userdata) != 0)
        return NULL; /* out of memory: the server answers 500 */
    return csgi_app_call(f->next, environ, start_response);
}

static void error_format_destroy(void *state)
{
    error_format *f = state;
    if (!f)
        return;
    csgi_app_free(f->next);
    if (f->destroy)
        f->destroy(f->userdata);
    csgi__free(f);
}

static const csgi_app_type error_format_type = {"error_format", error_format_call,
                                                error_format_destroy};

int csgi_error_format_new(csgi_app **out, csgi_app *next, csgi_error_render_fn render,
                          void *userdata, csgi_destroy_fn destroy)
{
    if (out)
        *out = NULL;
    error_format *f = out && next && render ? csgi__malloc(sizeof(*f)) : NULL;
    if (!f) {
        csgi_app_free(next);
        if (destroy)
            destroy(userdata);
        return out && next && render ? CSGI_ENOMEM : CSGI_EINVAL;
    }
    *f = (error_format){next, render, userdata, destroy};
    return csgi_app_new(out, &error_format_type, f);
}

/* ---- INI factory --------------------------------------------------------------------- */

int csgi_error_format__filter_factory(csgi_app **out, csgi_loader *loader,
                                      const csgi_conf *global_conf, const csgi_conf *local_conf,
                                      csgi_app *next, csgi_load_error *error)
{
    (void)loader;
    (void)global_conf;
    const char *name, *value;
    for (size_t i = 0; csgi_conf_entry(local_conf, i, &name, &value); i++) {
        if (strcmp(name, "format") != 0) {
            csgi_conf_error(local_conf, name, error,
                            "unknown key for egg:csgi#error_format (known: format)");
            csgi_app_free(next);
            return CSGI_EINVAL;
        }
    }
    value = csgi_conf_get(local_conf, "format");
    csgi_error_render_fn render = csgi_error_page__named(value);
    if (!render) {
        if (value)
            csgi_conf_error(local_conf, "format", error, "'%s' is not an error format (%s)", value,
                            CSGI_ERROR_PAGE__NAMES);
        else
            csgi_conf_error(local_conf, "format", error, "missing (%s)", CSGI_ERROR_PAGE__NAMES);
        csgi_app_free(next);
        return CSGI_EINVAL;
    }
    return csgi_error_format_new(out, next, render, NULL, NULL);
}
