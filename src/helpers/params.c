/*
 * Parameter maps (csgi_params) and the parsers that fill them: URL-encoded
 * text (query strings and form bodies) and Cookie headers. Also the UTF-8
 * check and the Content-Type parameter reader the other helpers share.
 */
#include "helpers/helpers.h"

#include "common/chartab.h"
#include "common/options.h"
#include "common/vec.h"
#include "gateway/environ_private.h"

#include <string.h>
#include <strings.h>

int csgi_helpers__limits(csgi_form_limits *out, const csgi_form_limits *in)
{
    static const csgi_form_limits defaults = CSGI_FORM_LIMITS_INIT;
    if (!in)
        in = &defaults;
    if (!csgi_options__version_ok(in->version, CSGI_FORM_LIMITS_VERSION))
        return CSGI_EINVAL;
    *out = *in;
#define DEFAULT(field, value) \
    if (!out->field)          \
    out->field = (value)
    DEFAULT(max_fields, CSGI_HELPERS__MAX_FIELDS);
    DEFAULT(max_query, CSGI_HELPERS__MAX_QUERY);
    DEFAULT(max_body, CSGI_HELPERS__MAX_BODY);
    DEFAULT(max_parts, CSGI_HELPERS__MAX_PARTS);
    DEFAULT(max_part_header, CSGI_HELPERS__MAX_PART_HEADER);
    DEFAULT(max_field_size, CSGI_HELPERS__MAX_FIELD_SIZE);
    DEFAULT(max_file_size, CSGI_HELPERS__MAX_FILE_SIZE);
    DEFAULT(spool_threshold, CSGI_HELPERS__SPOOL_THRESHOLD);
#undef DEFAULT
    return 0;
}

/* ---- Maps ------------------------------------------------------------------ */

csgi_params *csgi_params__new(csgi_arena *arena)
{
    csgi_params *params = csgi_arena__alloc(arena, sizeof(*params));
    if (!params)
        return NULL;
    memset(params, 0, sizeof(*params));
    params->arena = arena;
    return params;
}

int csgi_params__append(csgi_params *params, const char *name, size_t name_len, const char *value,
                        size_t value_len)
{
    /* No cap here: the parsers count fields against max_fields and
       max_parts before they append. */
    void *items = params->items;
    int rc = csgi_vec__reserve_in(params->arena, &items, &params->capacity, sizeof(csgi_param),
                                  params->count, params->count + 1, SIZE_MAX);
    if (rc != 0)
        return rc;
    params->items = items;
    csgi_param *item = &params->items[params->count++];
    item->name = name;
    item->name_len = name_len;
    item->value = value;
    item->value_len = value_len;
    return 0;
}

size_t csgi_params_count(const csgi_params *params)
{
    return params ? params->count : 0;
}

const csgi_param *csgi_params_at(const csgi_params *params, size_t index)
{
    if (!params || index >= params->count)
        return NULL;
    return &params->items[index];
}

const csgi_param *csgi_params_find(const csgi_params *params, const char *name, size_t *cursor)
{
    if (!params || !name || !cursor)
        return NULL;
    size_t name_len = strlen(name);
    for (size_t i = *cursor; i < params->count; i++) {
        const csgi_param *item = &params->items[i];
        if (item->name_len == name_len && memcmp(item->name, name, name_len) == 0) {
            *cursor = i + 1;
            return item;
        }
    }
    *cursor = params->count;
    return NULL;
}

const char *csgi_params_get(const csgi_params *params, const char *name, size_t *len)
{
    size_t cursor = 0;
    const csgi_param *item = csgi_params_find(params, name, &cursor);
    if (!item)
        return NULL;
    if (len)
        *len = item->value_len;
    return item->value;
}

size_t csgi_params_count_name(const csgi_params *params, const char *name)
{
    size_t cursor = 0;
    size_t count = 0;
    while (csgi_params_find(params, name, &cursor))
        count++;
    return count;
}

/* ---- UTF-8 ------------------------------------------------------------------- */

int csgi_request_text_is_utf8(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    if (!s)
        return len == 0;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned low = 0x80, high = 0xBF; /* range of the second byte */
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                low = 0xA0; /* overlong */
            else if (c == 0xED)
                high = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                low = 0x90; /* overlong */
            else if (c == 0xF4)
                high = 0x8F; /* above U+10FFFF */
        } else
            return 0;
        if (len - i <= need)
            return 0;
        if (s[i + 1] < low || s[i + 1] > high)
            return 0;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        i += need + 1;
    }
    return 1;
}

/* ---- URL-encoded text ---------------------------------------------------------- */

size_t csgi_helpers__form_decode(char *dst, const char *src, size_t len, int strict)
{
    return csgi_environ__unescape(
        dst, src, len, CSGI_ENVIRON__PLUS_IS_SPACE | (strict ? CSGI_ENVIRON__STRICT : 0));
}

/* The piece of text[*start, len) before the next separator (or the end);
   *start moves past that separator. Both the query and the Cookie header
   are such lists: "a=1&b=2", "a=1; b=2". */
static const char *next_piece(const char *text, size_t len, char separator, size_t *start,
                              size_t *piece_len)
{
    const char *piece = text + *start;
    const char *end = memchr(piece, separator, len - *start);
    *piece_len = end ? (size_t)(end - piece) : len - *start;
    *start += *piece_len + 1;
    return piece;
}

/* A decoded, NUL-terminated copy of text in the arena. */
static int decode_copy(csgi_arena *arena, const char *text, size_t len, int strict,
                       const char **out, size_t *out_len)
{
    char *copy = csgi_arena__alloc(arena, len + 1);
    if (!copy)
        return CSGI_ENOMEM;
    size_t n = csgi_helpers__form_decode(copy, text, len, strict);
    if (n == (size_t)-1)
        return CSGI_EPARSE;
    copy[n] = '\0';
    if (strict && !csgi_request_text_is_utf8(copy, n))
        return CSGI_EPARSE;
    *out = copy;
    *out_len = n;
    return 0;
}

int csgi_params__parse_urlencoded(csgi_params *params, const char *text, size_t len,
                                  size_t max_fields, int strict)
{
    size_t start = 0;
    size_t fields = 0;
    while (start < len) {
        size_t pair_len;
        const char *pair = next_piece(text, len, '&', &start, &pair_len);
        if (pair_len == 0)
            continue; /* "a=1&&b=2", a trailing '&' */
        if (++fields > max_fields)
            return CSGI_ETOOBIG;
        const char *eq = memchr(pair, '=', pair_len);
        size_t name_len = eq ? (size_t)(eq - pair) : pair_len;
        const char *name, *value;
        size_t decoded_name, decoded_value;
        int rc = decode_copy(params->arena, pair, name_len, strict, &name, &decoded_name);
        if (rc == 0)
            rc = eq ? decode_copy(params->arena, eq + 1, pair_len - name_len - 1, strict, &value,
                                  &decoded_value)
                    : decode_copy(params->arena, "", 0, strict, &value, &decoded_value);
        if (rc == 0)
            rc = csgi_params__append(params, name, decoded_name, value, decoded_value);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- Cookies ---------------------------------------------------------------- */

static int cookie_name_ok(const char *name, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c == 0x7F || c == '"' || c == ',' || c == ';' || c == '=')
            return 0;
    }
    return 1;
}

/* A field value (empty allowed): no control but HTAB. */
static int cookie_value_ok(const char *value, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!csgi_char__is_field((unsigned char)value[i]))
            return 0;
    return 1;
}

int csgi_params__parse_cookies(csgi_params *params, const char *header, size_t len,
                               size_t max_fields)
{
    size_t start = 0;
    size_t fields = 0;
    while (start < len) {
        size_t pair_len;
        const char *pair = next_piece(header, len, ';', &start, &pair_len);
        while (pair_len && csgi_char__is_ws(*pair)) {
            pair++;
            pair_len--;
        }
        while (pair_len && csgi_char__is_ws(pair[pair_len - 1]))
            pair_len--;
        const char *eq = memchr(pair, '=', pair_len);
        if (!eq)
            continue;
        size_t name_len = (size_t)(eq - pair);
        while (name_len && csgi_char__is_ws(pair[name_len - 1]))
            name_len--;
        const char *value = eq + 1;
        size_t value_len = pair_len - (size_t)(value - pair);
        while (value_len && csgi_char__is_ws(*value)) {
            value++;
            value_len--;
        }
        if (value_len >= 2 && value[0] == '"' && value[value_len - 1] == '"') {
            value++;
            value_len -= 2;
        }
        if (!cookie_name_ok(pair, name_len) || !cookie_value_ok(value, value_len))
            continue;
        if (++fields > max_fields)
            return CSGI_ETOOBIG;
        char *name_copy = csgi_arena__strndup(params->arena, pair, name_len);
        char *value_copy = csgi_arena__strndup(params->arena, value, value_len);
        if (!name_copy || !value_copy)
            return CSGI_ENOMEM;
        int rc = csgi_params__append(params, name_copy, name_len, value_copy, value_len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- Public parsers ----------------------------------------------------------- */

/* The public parsers' common part: arguments, limits, a new list in the
   request's arena; parse a query or form (urlencoded), else a Cookie header. */
static int parse_public(csgi_params **out, csgi_environ *environ, const char *text, size_t len,
                        const csgi_form_limits *limits, int urlencoded)
{
    csgi_form_limits resolved;
    if (!out || !environ || (!text && len))
        return CSGI_EINVAL;
    *out = NULL;
    if (csgi_helpers__limits(&resolved, limits) != 0)
        return CSGI_EINVAL;
    csgi_params *params = csgi_params__new(csgi_environ__arena(environ));
    if (!params)
        return CSGI_ENOMEM;
    int rc = urlencoded ? csgi_params__parse_urlencoded(params, text, len, resolved.max_fields,
                                                        resolved.strict)
                        : csgi_params__parse_cookies(params, text, len, resolved.max_fields);
    if (rc == 0)
        *out = params;
    return rc;
}

int csgi_params_parse_urlencoded(csgi_params **out, csgi_environ *environ, const char *text,
                                 size_t len, const csgi_form_limits *limits)
{
    return parse_public(out, environ, text, len, limits, 1);
}

int csgi_params_parse_cookies(csgi_params **out, csgi_environ *environ, const char *header,
                              size_t len, const csgi_form_limits *limits)
{
    return parse_public(out, environ, header, len, limits, 0);
}

/* ---- Header parameters --------------------------------------------------------- */

/* Skip a quoted string starting at s[*i] == '"'; *i ends after the closing
   quote (or at len when there is none). */
static void skip_quoted(const char *s, size_t len, size_t *i)
{
    for ((*i)++; *i < len; (*i)++) {
        if (s[*i] == '\\' && *i + 1 < len)
            (*i)++;
        else if (s[*i] == '"') {
            (*i)++;
            return;
        }
    }
}

int csgi_helpers__header_param(csgi_arena *arena, const char *value, size_t len, const char *name,
                               const char **out, size_t *out_len)
{
    size_t name_len = strlen(name);
    size_t i = 0;
    /* the type itself, up to the first ';' outside quotes */
    while (i < len && value[i] != ';') {
        if (value[i] == '"')
            skip_quoted(value, len, &i);
        else
            i++;
    }
    while (i < len) {
        i++; /* the ';' */
        while (i < len && csgi_char__is_ws(value[i]))
            i++;
        size_t key = i;
        while (i < len && value[i] != '=' && value[i] != ';')
            i++;
        size_t key_end = i;
        while (key_end > key && csgi_char__is_ws(value[key_end - 1]))
            key_end--;
        if (i >= len || value[i] == ';')
            continue; /* a parameter without '=' */
        i++;          /* '=' */
        while (i < len && csgi_char__is_ws(value[i]))
            i++;
        size_t start = i;
        int quoted = i < len && value[i] == '"';
        if (quoted)
            skip_quoted(value, len, &i);
        else
            while (i < len && value[i] != ';')
                i++;
        size_t end = i;
        if (quoted) {
            /* skip whatever follows the closing quote up to ';' */
            while (i < len && value[i] != ';')
                i++;
        } else {
            while (end > start && csgi_char__is_ws(value[end - 1]))
                end--;
        }
        if (key_end - key != name_len || strncasecmp(value + key, name, name_len) != 0)
            continue;

        if (!quoted) {
            char *copy = csgi_arena__strndup(arena, value + start, end - start);
            if (!copy)
                return CSGI_ENOMEM;
            *out = copy;
            *out_len = end - start;
            return 1;
        }
        /* Unquote: the closing quote goes; "\\\"" and "\\\\" lose their
           backslash (browsers send Windows paths with bare backslashes,
           which stay). */
        start++;
        if (end > start && value[end - 1] == '"')
            end--;
        char *copy = csgi_arena__alloc(arena, end - start + 1);
        if (!copy)
            return CSGI_ENOMEM;
        size_t n = 0;
        for (size_t k = start; k < end; k++) {
            if (value[k] == '\\' && k + 1 < end && (value[k + 1] == '"' || value[k + 1] == '\\'))
                k++;
            copy[n++] = value[k];
        }
        copy[n] = '\0';
        *out = copy;
        *out_len = n;
        return 1;
    }
    return 0;
}
