/*
 * HTTP error responses (csgi_response_error()), like webob.exc: a status,
 * an optional detail, and a page in the format the client accepts. The
 * text/plain page is the one the server sends for its own errors
 * (csgi_status__error_text()), so clients see one format whoever answered.
 */
#include "helpers/response_private.h"

#include "common/status.h"

#include <csgi/negotiate.h>

#include <jansson.h>

#include <stdio.h>
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

/* text HTML-escaped into out (with a NUL) when out is not NULL; returns its
   length either way, so one pass sizes the buffer and another fills it. */
static size_t escape_html(char *out, const char *text)
{
    size_t n = 0;
    for (; *text; text++) {
        const char *entity;
        switch (*text) {
        case '&': entity = "&amp;"; break;
        case '<': entity = "&lt;"; break;
        case '>': entity = "&gt;"; break;
        case '"': entity = "&quot;"; break;
        case '\'': entity = "&#x27;"; break;
        default:
            if (out)
                out[n] = *text;
            n++;
            continue;
        }
        size_t len = strlen(entity);
        if (out)
            memcpy(out + n, entity, len);
        n += len;
    }
    if (out)
        out[n] = '\0';
    return n;
}

static int html_page(csgi_environ *environ, int status, const char *reason, const char *detail,
                     const char **body, size_t *len)
{
    static const char head[] = "<!DOCTYPE html>\n<html>\n<head>\n<title>%d %s</title>\n"
                               "</head>\n<body>\n<h1>%d %s</h1>\n";
    static const char tail[] = "</body>\n</html>\n";
    size_t head_len = (size_t)snprintf(NULL, 0, head, status, reason, status, reason);
    size_t detail_len = detail ? escape_html(NULL, detail) + 8 : 0; /* <p>...</p>\n */
    size_t size = head_len + detail_len + sizeof(tail);
    char *page = csgi_environ_alloc(environ, size);
    if (!page)
        return CSGI_ENOMEM;
    size_t n = (size_t)snprintf(page, size, head, status, reason, status, reason);
    if (detail) {
        memcpy(page + n, "<p>", 3);
        n += 3;
        n += escape_html(page + n, detail);
        memcpy(page + n, "</p>\n", 5);
        n += 5;
    }
    memcpy(page + n, tail, sizeof(tail));
    *body = page;
    *len = n + sizeof(tail) - 1;
    return 0;
}

static int json_page(csgi_environ *environ, int status, const char *reason, const char *detail,
                     const char **body, size_t *len)
{
    json_t *message = NULL;
    if (detail)
        message = json_string(detail);
    if (!message) /* no detail, or one that is not UTF-8 */
        message = json_string(reason);
    json_t *object = json_object();
    if (!message || !object || json_object_set_new(object, "message", message) != 0) {
        json_decref(object);
        return CSGI_ENOMEM;
    }
    if (json_object_set_new(object, "code", json_integer(status)) != 0 ||
        json_object_set_new(object, "title", json_string(reason)) != 0) {
        json_decref(object);
        return CSGI_ENOMEM;
    }
    size_t size = json_dumpb(object, NULL, 0, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *text = size ? csgi_environ_alloc(environ, size) : NULL;
    if (text)
        json_dumpb(object, text, size, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(object);
    if (!text)
        return CSGI_ENOMEM;
    *body = text;
    *len = size;
    return 0;
}

int csgi_response__error_body(csgi_environ *environ, int status, const char *detail,
                              const char **body, size_t *len, const char **content_type)
{
    /* text/plain first: it wins ties, so curl's "*" "/" "*" and clients
       sending no Accept get the plain page, browsers (text/html at a higher
       quality than "*" "/" "*") the HTML one */
    static const char *const offers[] = {"text/plain", "text/html", "application/json"};
    const char *reason = csgi_status__reason(status);
    int choice = csgi_accept_best(csgi_environ_get(environ, "HTTP_ACCEPT"), offers, 3);
    if (choice == 1) {
        *content_type = "text/html; charset=utf-8";
        return html_page(environ, status, reason, detail, body, len);
    }
    if (choice == 2) {
        *content_type = "application/json";
        return json_page(environ, status, reason, detail, body, len);
    }
    *content_type = "text/plain; charset=utf-8";
    size_t size = csgi_status__error_text(NULL, 0, status, detail) + 1;
    char *text = csgi_environ_alloc(environ, size);
    if (!text)
        return CSGI_ENOMEM;
    *len = csgi_status__error_text(text, size, status, detail);
    *body = text;
    return 0;
}
