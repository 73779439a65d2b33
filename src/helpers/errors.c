/*
 * HTTP error responses (csgi_response_error()), like webob.exc: a status,
 * an optional detail, and a page in the format the client accepts, or the
 * one fixed for the request (csgi_error_format_set(), the environ key
 * csgi.error_format). The pages come from the renderers of csgi/errors.h
 * (common/error_page.c), the ones the server uses for its own errors, so
 * clients see one format whoever answered.
 */
#include "helpers/response_private.h"

#include "common/error_page.h"
#include "common/status.h"

#include <csgi/errors.h>
#include <csgi/negotiate.h>

#include <string.h>

int csgi_response_error(csgi_response **out, csgi_environ *environ, int status, const char *detail)
{
    if (!out)
        return CSGI_EINVAL;
    *out = NULL;
    if (status < 300 || status > 599 || !csgi_response_reason(status))
        return CSGI_EINVAL;
    csgi_response *response;
    int rc = csgi_response_new(&response, environ);
    if (rc != 0)
        return rc;
    rc = csgi_response_set_status(response, status);
    if (rc == 0 && detail && *detail) {
        response->detail = csgi_response__strdup(response, detail);
        if (!response->detail)
            rc = CSGI_ENOMEM;
    }
    if (rc != 0) {
        csgi_response_free(response);
        return rc;
    }
    response->body_kind = status == 304 ? CSGI_RESPONSE__EMPTY : CSGI_RESPONSE__ERROR;
    *out = response;
    return 0;
}

/* ---- The format fixed for a request: csgi.error_format ------------------------------ */

#define FORMAT_KEY "csgi.error_format"

/* A renderer that is not a built-in one, in the request's arena; the tag
   tells it from a pointer someone else stored under the key. */
typedef struct custom_renderer {
    const void *tag;
    csgi_error_render_fn render;
    void *userdata;
} custom_renderer;

static const char custom_tag[] = "csgi_error_format_set";

int csgi_error_format_set(csgi_environ *environ, csgi_error_render_fn render, void *userdata)
{
    if (!environ)
        return CSGI_EINVAL;
    if (!render) {
        int rc = csgi_environ_remove(environ, FORMAT_KEY);
        return rc == CSGI_ENOTFOUND ? 0 : rc;
    }
    const char *name = csgi_error_page__name(render);
    if (name)
        return csgi_environ_set(environ, FORMAT_KEY, name);
    custom_renderer *custom = csgi_environ_alloc(environ, sizeof(*custom));
    if (!custom)
        return CSGI_ENOMEM;
    *custom = (custom_renderer){custom_tag, render, userdata};
    return csgi_environ_set_pointer(environ, FORMAT_KEY, custom, NULL);
}

/* The renderer csgi.error_format names: 1 with *render and *userdata set,
   or 0 when the key is not set or holds no renderer. */
static int fixed_renderer(csgi_environ *environ, csgi_error_render_fn *render, void **userdata)
{
    switch (csgi_environ_kind(environ, FORMAT_KEY)) {
    case CSGI_VALUE_STRING: {
        csgi_error_render_fn named = csgi_error_page__named(csgi_environ_get(environ, FORMAT_KEY));
        if (!named)
            return 0; /* not a format: ignored */
        *render = named;
        *userdata = NULL;
        return 1;
    }
    case CSGI_VALUE_POINTER: {
        const custom_renderer *custom = csgi_environ_get_pointer(environ, FORMAT_KEY);
        if (custom->tag != custom_tag)
            return 0;
        *render = custom->render;
        *userdata = custom->userdata;
        return 1;
    }
    default: return 0;
    }
}

/* ---- The page ---------------------------------------------------------------------------- */

/* The page render gives, in the request's arena: 0, CSGI_ENOMEM, or the
   renderer's failure. Most pages fit the scratch buffer and are copied
   once; a longer one is rendered again into memory of its size (and a
   byte for the NUL an snprintf-based renderer writes). */
static int render_page(csgi_environ *environ, int status, const char *reason, const char *detail,
                       csgi_error_render_fn render, void *userdata, const char **body, size_t *len,
                       const char **content_type)
{
    char scratch[512];
    int rc = csgi_error_page__render(scratch, sizeof(scratch), len, content_type, status, reason,
                                     detail, render, userdata);
    if (rc < 0)
        return rc;
    size_t size = *len + 1;
    char *page = csgi_environ_alloc(environ, size);
    if (!page)
        return CSGI_ENOMEM;
    if (rc == 0)
        memcpy(page, scratch, *len);
    else if (csgi_error_page__render(page, size, len, content_type, status, reason, detail, render,
                                     userdata) != 0)
        return CSGI_EINVAL; /* it wants still more room, or failed the second time */
    *body = page;
    return 0;
}

int csgi_response__error_body(csgi_environ *environ, int status, const char *detail, int negotiate,
                              const char **body, size_t *len, const char **content_type)
{
    /* text/plain first: it wins ties, so curl's "*" "/" "*" and clients
       sending no Accept get the plain page, browsers (text/html at a higher
       quality than "*" "/" "*") the HTML one */
    static const char *const offers[] = {"text/plain", "text/html", "application/json"};
    static const csgi_error_render_fn offered[] = {csgi_error_render_text, csgi_error_render_html,
                                                   csgi_error_render_json};
    const char *reason = csgi_status__reason(status);
    csgi_error_render_fn render = csgi_error_render_text;
    void *userdata = NULL;
    if (!fixed_renderer(environ, &render, &userdata) && negotiate) {
        int choice = csgi_accept_best(csgi_environ_get(environ, "HTTP_ACCEPT"), offers, 3);
        render = offered[choice > 0 ? choice : 0];
    }
    int rc =
        render_page(environ, status, reason, detail, render, userdata, body, len, content_type);
    if (rc == 0 || render == csgi_error_render_text)
        return rc;
    csgi_environ_log(environ, "error renderer failed for %d (%s): sent the text page", status,
                     csgi_strerror(rc));
    return render_page(environ, status, reason, detail, csgi_error_render_text, NULL, body, len,
                       content_type);
}
