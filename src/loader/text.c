/* A growing text with a cap (loader/text.h). */
#include "loader/text.h"

#include "common/alloc.h"
#include "common/vec.h"

#include <csgi/common.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Room for n more bytes and the NUL. */
static int reserve(csgi_text *text, size_t n)
{
    size_t max = text->max < SIZE_MAX ? text->max : SIZE_MAX - 1; /* the NUL must fit */
    if (text->len > max || n > max - text->len)
        return CSGI_ETOOBIG;
    void *data = text->data;
    int rc = csgi_vec__reserve(&data, &text->capacity, 1, text->len + n + 1, max + 1);
    if (rc == 0)
        text->data = data;
    return rc;
}

int csgi_text__append(csgi_text *text, const char *s, size_t n)
{
    int rc = reserve(text, n);
    if (rc != 0)
        return rc;
    if (n)
        memcpy(text->data + text->len, s, n);
    text->len += n;
    text->data[text->len] = '\0';
    return 0;
}

int csgi_text__vprintf(csgi_text *text, const char *format, va_list args)
{
    va_list copy;
    va_copy(copy, args);
    int n = vsnprintf(NULL, 0, format, copy);
    va_end(copy);
    int rc = n < 0 ? CSGI_EINVAL : reserve(text, (size_t)n);
    if (rc != 0)
        return rc;
    vsnprintf(text->data + text->len, text->capacity - text->len, format, args);
    text->len += (size_t)n;
    return 0;
}

void csgi_text__free(csgi_text *text)
{
    csgi__free(text->data);
    text->data = NULL;
    text->len = 0;
    text->capacity = 0;
}
