/*
 * The gallery's HTML: a capped growing buffer, the one escape function
 * every user-supplied string goes through, the common head and foot, and
 * the error pages (403, 404, 413, 500) in the same layout.
 */
#include "gallery.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_MAX (4u * 1024u * 1024u)

static void append(gallery_page *page, const char *text, size_t len)
{
    if (page->failed)
        return;
    if (page->len + len + 1 > page->capacity) {
        size_t capacity = page->capacity ? page->capacity : 4096;
        while (capacity < page->len + len + 1)
            capacity *= 2;
        char *grown = capacity <= PAGE_MAX ? realloc(page->text, capacity) : NULL;
        if (!grown) {
            page->failed = 1;
            return;
        }
        page->text = grown;
        page->capacity = capacity;
    }
    memcpy(page->text + page->len, text, len);
    page->len += len;
    page->text[page->len] = '\0';
}

void gallery_page_raw(gallery_page *page, const char *fmt, ...)
{
    char small[1024];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, args);
    va_end(args);
    if (n < 0 || (size_t)n >= sizeof(small)) {
        page->failed = 1;
        return;
    }
    append(page, small, (size_t)n);
}

void gallery_page_escape(gallery_page *page, const char *text)
{
    for (const char *p = text ? text : ""; *p; p++) {
        switch (*p) {
        case '&': append(page, "&amp;", 5); break;
        case '<': append(page, "&lt;", 4); break;
        case '>': append(page, "&gt;", 4); break;
        case '"': append(page, "&quot;", 6); break;
        case '\'': append(page, "&#39;", 5); break;
        default: append(page, p, 1);
        }
    }
}

void gallery_page_begin(gallery_page *page, const char *title, const char *user, const char *csrf)
{
    gallery_page_raw(page,
                     "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                     "<title>");
    gallery_page_escape(page, title);
    gallery_page_raw(page, " - gallery</title>\n"
                           "<link rel=\"stylesheet\" href=\"/static/style.css\">\n"
                           "<link rel=\"icon\" href=\"/static/logo.svg\" type=\"image/svg+xml\">\n"
                           "<script src=\"/static/gallery.js\" defer></script>\n</head>\n<body>\n"
                           "<header><a href=\"/\" class=\"brand\"><img src=\"/static/logo.svg\" "
                           "alt=\"\" width=\"32\" height=\"32\"> gallery</a>\n<nav>"
                           "<a href=\"/status\">status</a>");
    if (user && csrf) {
        gallery_page_raw(page, " <span class=\"user\">");
        gallery_page_escape(page, user);
        gallery_page_raw(page, "</span> <form method=\"post\" action=\"/signout\" class=\"inline\">"
                               "<input type=\"hidden\" name=\"csrf\" value=\"");
        gallery_page_escape(page, csrf);
        gallery_page_raw(page, "\"><button type=\"submit\">Sign out</button></form>");
    }
    gallery_page_raw(page, "</nav></header>\n<main>\n<h1>");
    gallery_page_escape(page, title);
    gallery_page_raw(page, "</h1>\n");
}

csgi_response *gallery_page_end(csgi_request *request, gallery_page *page, int status)
{
    gallery_page_raw(page, "</main>\n</body>\n</html>\n");
    csgi_response *response = page->failed ? NULL : csgi_handler_response(request);
    if (response && (csgi_response_set_status(response, status) != 0 ||
                     csgi_response_set_body(response, page->text, page->len) != 0 ||
                     csgi_response_set_content_type(response, "text/html", "utf-8") != 0 ||
                     csgi_response_set_header(response, "Cache-Control", "no-store") != 0 ||
                     csgi_response_set_header(response, "X-Content-Type-Options", "nosniff") != 0 ||
                     csgi_response_set_header(response, "Content-Security-Policy",
                                              "default-src 'self'; frame-ancestors 'none'") != 0))
        response = NULL;
    free(page->text);
    *page = (gallery_page){0};
    return response;
}

csgi_response *gallery_error_page(csgi_request *request, int status, const char *detail)
{
    gallery_page page = {0};
    char title[64];
    snprintf(title, sizeof(title), "%d %s", status, csgi_response_reason(status));
    gallery_page_begin(&page, title, NULL, NULL);
    gallery_page_raw(&page, "<p class=\"error\">");
    gallery_page_escape(&page, detail);
    gallery_page_raw(&page, "</p>\n<p><a href=\"/\">Back to the gallery</a></p>\n");
    return gallery_page_end(request, &page, status);
}
