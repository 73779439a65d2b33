/*
 * Error pages (include/csgi/errors.h, common/error_page.h): the built-in
 * renderers (text, JSON, HTML), their names, and rendering through any
 * renderer without trusting it.
 *
 * The renderers write into the caller's buffer as snprintf does and
 * allocate nothing, so the server renders its own errors on the stack.
 * They are the one builder of each page: csgi_response_error() and the
 * server both use them, and the text page is csgi_status__error_text's.
 */
#include "common/error_page.h"

#include "common/chartab.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- Writing into a buffer as snprintf does ------------------------------------------ */

/* A page being written: bytes beyond size are counted, not written. */
typedef struct page {
    char *buffer;
    size_t size;
    size_t len;
} page;

static void put(page *p, const char *s, size_t n)
{
    if (p->len < p->size) {
        size_t room = p->size - p->len;
        memcpy(p->buffer + p->len, s, n < room ? n : room);
    }
    p->len += n;
}

static void put_string(page *p, const char *s)
{
    put(p, s, strlen(s));
}

static void put_int(page *p, int value)
{
    char digits[16];
    int n = snprintf(digits, sizeof(digits), "%d", value);
    put(p, digits, (size_t)n);
}

static int finish(const page *p, size_t *len, const char **content_type, const char *type)
{
    *len = p->len;
    *content_type = type;
    return 0;
}

/* ---- text/plain ------------------------------------------------------------------------ */

int csgi_error_render_text(char *buffer, size_t size, size_t *len, const char **content_type,
                           int status, const char *reason, const char *detail, void *userdata)
{
    (void)userdata;
    if ((!buffer && size) || !len || !content_type || !reason)
        return CSGI_EINVAL;
    page p = {buffer, size, 0};
    put_int(&p, status);
    put(&p, " ", 1);
    put_string(&p, reason);
    put(&p, "\n", 1);
    if (detail && *detail) {
        put(&p, "\n", 1);
        put_string(&p, detail);
        put(&p, "\n", 1);
    }
    return finish(&p, len, content_type, CSGI_ERROR_PAGE__TEXT_TYPE);
}

/* ---- application/json ------------------------------------------------------------------ */

/* The length of the UTF-8 sequence at s (1 to 4), or 0 when it is not one:
   an overlong form, a surrogate, a code point above U+10FFFF or a cut
   sequence are refused, as jansson's json_string() refuses them. */
static size_t utf8_sequence(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    /* the range of the second byte depends on the first (RFC 3629 4) */
    unsigned char low = 0x80, high = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            low = 0xA0;
        else if (c == 0xED)
            high = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            low = 0x90;
        else if (c == 0xF4)
            high = 0x8F;
    } else
        return 0;
    if (s[1] < low || s[1] > high)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

static int is_utf8(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    while (*s) {
        size_t n = utf8_sequence(s);
        if (!n)
            return 0;
        s += n;
    }
    return 1;
}

/* A JSON string of UTF-8 text, escaped as jansson's compact dump escapes
   it: '"', '\\' and the control characters; "/" and non-ASCII as they are. */
static void put_json_string(page *p, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    put(p, "\"", 1);
    const char *run = text;
    for (const char *s = text; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(p, run, (size_t)(s - run));
        run = s + 1;
        char escape[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        switch (c) {
        case '"': put(p, "\\\"", 2); break;
        case '\\': put(p, "\\\\", 2); break;
        case '\b': put(p, "\\b", 2); break;
        case '\f': put(p, "\\f", 2); break;
        case '\n': put(p, "\\n", 2); break;
        case '\r': put(p, "\\r", 2); break;
        case '\t': put(p, "\\t", 2); break;
        default: put(p, escape, 6); break;
        }
    }
    put_string(p, run);
    put(p, "\"", 1);
}

int csgi_error_render_json(char *buffer, size_t size, size_t *len, const char **content_type,
                           int status, const char *reason, const char *detail, void *userdata)
{
    (void)userdata;
    if ((!buffer && size) || !len || !content_type || !reason || !is_utf8(reason))
        return CSGI_EINVAL;
    page p = {buffer, size, 0};
    put(&p, "{\"message\":", 11);
    put_json_string(&p, detail && *detail && is_utf8(detail) ? detail : reason);
    put(&p, ",\"code\":", 8);
    put_int(&p, status);
    put(&p, ",\"title\":", 9);
    put_json_string(&p, reason);
    put(&p, "}", 1);
    return finish(&p, len, content_type, "application/json");
}

/* ---- text/html ------------------------------------------------------------------------- */

static void put_html(page *p, const char *text)
{
    const char *run = text;
    for (const char *s = text; *s; s++) {
        const char *entity;
        switch (*s) {
        case '&': entity = "&amp;"; break;
        case '<': entity = "&lt;"; break;
        case '>': entity = "&gt;"; break;
        case '"': entity = "&quot;"; break;
        case '\'': entity = "&#x27;"; break;
        default: continue;
        }
        put(p, run, (size_t)(s - run));
        put_string(p, entity);
        run = s + 1;
    }
    put_string(p, run);
}

/* "404 Not Found", escaped */
static void put_html_status(page *p, int status, const char *reason)
{
    put_int(p, status);
    put(p, " ", 1);
    put_html(p, reason);
}

int csgi_error_render_html(char *buffer, size_t size, size_t *len, const char **content_type,
                           int status, const char *reason, const char *detail, void *userdata)
{
    (void)userdata;
    if ((!buffer && size) || !len || !content_type || !reason)
        return CSGI_EINVAL;
    page p = {buffer, size, 0};
    put_string(&p, "<!DOCTYPE html>\n<html>\n<head>\n<title>");
    put_html_status(&p, status, reason);
    put_string(&p, "</title>\n</head>\n<body>\n<h1>");
    put_html_status(&p, status, reason);
    put_string(&p, "</h1>\n");
    if (detail && *detail) {
        put(&p, "<p>", 3);
        put_html(&p, detail);
        put(&p, "</p>\n", 5);
    }
    put_string(&p, "</body>\n</html>\n");
    return finish(&p, len, content_type, "text/html; charset=utf-8");
}

/* ---- Names ----------------------------------------------------------------------------- */

static const struct {
    const char *name;
    csgi_error_render_fn render;
} builtins[] = {
    {"text", csgi_error_render_text},
    {"json", csgi_error_render_json},
    {"html", csgi_error_render_html},
};

#define BUILTIN_COUNT (sizeof(builtins) / sizeof(builtins[0]))

csgi_error_render_fn csgi_error_page__named(const char *name)
{
    if (!name)
        return NULL;
    while (csgi_char__is_ws((unsigned char)*name) || *name == '\n')
        name++;
    size_t len = strlen(name);
    while (len && (csgi_char__is_ws((unsigned char)name[len - 1]) || name[len - 1] == '\n'))
        len--;
    for (size_t i = 0; i < BUILTIN_COUNT; i++)
        if (strlen(builtins[i].name) == len && csgi_char__equal_nocase(name, builtins[i].name, len))
            return builtins[i].render;
    return NULL;
}

const char *csgi_error_page__name(csgi_error_render_fn render)
{
    for (size_t i = 0; i < BUILTIN_COUNT; i++)
        if (builtins[i].render == render)
            return builtins[i].name;
    return NULL;
}

/* ---- Rendering without trusting the renderer ----------------------------------------- */

/* A Content-Type value that can go into a head: a field value (no CR, LF,
   NUL or other control but HTAB) without blanks around it, with a "/",
   and short. */
static int content_type_ok(const char *type)
{
    if (!type)
        return 0;
    size_t len = strnlen(type, 257);
    return len > 0 && len <= 256 && csgi_char__all(type, len, CSGI_CHAR__FIELD) &&
           !csgi_char__is_ws((unsigned char)type[0]) &&
           !csgi_char__is_ws((unsigned char)type[len - 1]) && memchr(type, '/', len) != NULL;
}

int csgi_error_page__render(char *buffer, size_t size, size_t *len, const char **content_type,
                            int status, const char *reason, const char *detail,
                            csgi_error_render_fn render, void *userdata)
{
    size_t got = SIZE_MAX;
    const char *type = NULL;
    int rc = render(buffer, size, &got, &type, status, reason, detail, userdata);
    if (rc != 0)
        return rc < 0 ? rc : CSGI_EINVAL;
    if (got == SIZE_MAX || !content_type_ok(type))
        return CSGI_EINVAL;
    *len = got;
    if (got >= size)
        return 1;
    *content_type = type;
    return 0;
}
