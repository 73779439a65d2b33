/*
 * Content negotiation, HTTP dates, entity tags and ranges (csgi/negotiate.h).
 *
 * Everything here reads header values in place: no allocation, no copy.
 * Lists are walked element by element with a small cursor; an element that
 * does not parse is skipped whole (up to the next comma outside a quoted
 * string), so one bad element never hides the good ones around it.
 */
#include <csgi/negotiate.h>

#include "common/chartab.h"
#include "common/date.h"

#include <limits.h>
#include <string.h>

/* ---- Lexical helpers (RFC 9110 5.6) --------------------------------------- */

static int equal_nocase(const char *a, size_t a_len, const char *b, size_t b_len)
{
    if (a_len != b_len)
        return 0;
    for (size_t i = 0; i < a_len; i++)
        if (csgi_char__lower((unsigned char)a[i]) != csgi_char__lower((unsigned char)b[i]))
            return 0;
    return 1;
}

static const char *skip_ows(const char *p)
{
    while (csgi_char__is_ws((unsigned char)*p))
        p++;
    return p;
}

static const char *skip_token(const char *p)
{
    while (csgi_char__is_tchar((unsigned char)*p))
        p++;
    return p;
}

/* Past a quoted-string starting at p (on the opening quote), or NULL. */
static const char *skip_quoted(const char *p)
{
    for (p++; *p; p++) {
        if (*p == '"')
            return p + 1;
        if (*p == '\\') {
            if (!p[1])
                return NULL;
            p++;
        }
    }
    return NULL;
}

/* Past the end of the current list element: the next comma outside quotes,
   or the end of the string. */
static const char *skip_element(const char *p)
{
    while (*p && *p != ',') {
        if (*p == '"') {
            const char *q = skip_quoted(p);
            if (!q)
                return p + strlen(p);
            p = q;
        } else {
            p++;
        }
    }
    return p;
}

/* A q-value (RFC 9110 12.4.2): "0" ["." 0*3DIGIT] / "1" ["." 0*3("0")], in
   thousandths. Returns the end of the value, or NULL when malformed. */
static const char *parse_qvalue(const char *p, int *out)
{
    int value;
    if (*p == '0')
        value = 0;
    else if (*p == '1')
        value = 1000;
    else
        return NULL;
    p++;
    if (*p == '.') {
        p++;
        int scale = 100;
        for (int i = 0; i < 3 && csgi_char__is_digit((unsigned char)*p); i++, p++) {
            value += (*p - '0') * scale;
            scale /= 10;
        }
        if (csgi_char__is_digit((unsigned char)*p))
            return NULL; /* a fourth decimal */
    }
    if (value > 1000)
        return NULL;
    *out = value;
    return p;
}

/* ---- Accept lists ------------------------------------------------------------ */

/* One element of an Accept-style list: a value, its parameters (before q)
   and its quality. */
typedef struct element {
    const char *value; /* "text/html", "en-GB", "gzip" */
    size_t value_len;
    const char *params; /* from the first ';' of the media-range parameters */
    size_t params_len;  /* up to the q parameter or the end */
    size_t param_count;
    int quality;
} element;

enum list_kind { LIST_MEDIA, LIST_LANGUAGE, LIST_CODING };

/* Parse the value of an element: a media range (type "/" subtype, with "*"
   only as "*" "/" "*" or type "/" "*"), a language range (1*8alpha
   *("-" 1*8alphanum) or "*"), or a coding (a token). */
static const char *parse_value(const char *p, enum list_kind kind)
{
    if (kind == LIST_MEDIA) {
        const char *type = p;
        p = skip_token(p);
        if (p == type || *p != '/')
            return NULL;
        const char *subtype = ++p;
        p = skip_token(p);
        if (p == subtype)
            return NULL;
        int type_star = subtype - type == 2 && type[0] == '*';
        int subtype_star = p - subtype == 1 && subtype[0] == '*';
        if (type_star && !subtype_star)
            return NULL;
        return p;
    }
    if (kind == LIST_LANGUAGE) {
        if (*p == '*')
            return p + 1;
        for (int part = 0;; part++) {
            const char *start = p;
            unsigned allowed = part > 0 ? CSGI_CHAR__ALPHA | CSGI_CHAR__DIGIT : CSGI_CHAR__ALPHA;
            while (csgi_char__is((unsigned char)*p, allowed))
                p++;
            if (p == start || p - start > 8)
                return NULL;
            if (*p != '-')
                return p;
            p++;
        }
    }
    const char *start = p;
    p = skip_token(p);
    return p == start ? NULL : p;
}

/* Parse the element at *cursor (just after a comma or at the start) into
   *out. Returns 1 with an element, 0 when the element was malformed or
   empty (skipped), -1 at the end of the list. *cursor moves past it. */
static int next_element(const char **cursor, enum list_kind kind, element *out)
{
    const char *p = skip_ows(*cursor);
    if (!*p)
        return -1;
    if (*p == ',') {
        *cursor = p + 1;
        return 0;
    }
    const char *start = p;
    const char *end = parse_value(p, kind);
    if (!end)
        goto malformed;
    out->value = start;
    out->value_len = (size_t)(end - start);
    out->params = end;
    out->params_len = 0;
    out->param_count = 0;
    out->quality = 1000;
    p = end;
    int seen_q = 0;
    for (;;) {
        p = skip_ows(p);
        if (!*p || *p == ',')
            break;
        if (*p != ';')
            goto malformed;
        p = skip_ows(p + 1);
        const char *name = p;
        p = skip_token(p);
        if (p == name || *p != '=')
            goto malformed;
        size_t name_len = (size_t)(p - name);
        p++;
        if (!seen_q && name_len == 1 && (name[0] == 'q' || name[0] == 'Q')) {
            p = parse_qvalue(p, &out->quality);
            if (!p)
                goto malformed;
            seen_q = 1;
            continue;
        }
        if (kind != LIST_MEDIA || seen_q) {
            /* accept-ext after q (or any parameter of a language or
               coding): allowed and ignored */
            if (*p == '"')
                p = skip_quoted(p);
            else
                p = skip_token(p);
            if (!p)
                goto malformed;
            continue;
        }
        const char *value = p;
        p = *p == '"' ? skip_quoted(p) : skip_token(p);
        if (!p || p == value)
            goto malformed;
        out->params_len = (size_t)(p - out->params);
        out->param_count++;
    }
    *cursor = *p == ',' ? p + 1 : p;
    return 1;

malformed:
    p = skip_element(start);
    *cursor = *p == ',' ? p + 1 : p;
    return 0;
}

/* The next parameter of a parameter string ";a=1;b="x"" from *cursor. */
static int next_param(const char **cursor, const char *end, const char **name, size_t *name_len,
                      const char **value, size_t *value_len)
{
    const char *p = *cursor;
    while (p < end && (csgi_char__is_ws((unsigned char)*p) || *p == ';'))
        p++;
    if (p >= end)
        return 0;
    *name = p;
    p = skip_token(p);
    *name_len = (size_t)(p - *name);
    if (p >= end || *p != '=')
        return 0;
    p++;
    *value = p;
    p = *p == '"' ? skip_quoted(p) : skip_token(p);
    if (!p || p > end)
        return 0;
    *value_len = (size_t)(p - *value);
    *cursor = p;
    return 1;
}

/* Whether the parameter name=value appears among an offer's parameters
   (names without case; token values without case, quoted ones exactly). */
static int offer_has_param(const char *offer_params, const char *name, size_t name_len,
                           const char *value, size_t value_len)
{
    const char *cursor = offer_params;
    const char *end = offer_params + strlen(offer_params);
    const char *n, *v;
    size_t nl, vl;
    while (next_param(&cursor, end, &n, &nl, &v, &vl)) {
        if (!equal_nocase(n, nl, name, name_len))
            continue;
        /* compare unquoted forms: "a" equals a */
        const char *a = v, *b = value;
        size_t al = vl, bl = value_len;
        if (al >= 2 && a[0] == '"') {
            a++;
            al -= 2;
        }
        if (bl >= 2 && b[0] == '"') {
            b++;
            bl -= 2;
        }
        if (equal_nocase(a, al, b, bl))
            return 1;
    }
    return 0;
}

/* How specifically a media range matches an offer: 0 no match, 1 "*" "/" "*",
   2 type wildcard, 3 exact, 3 + parameter count with parameters. */
static size_t media_match(const element *range, const char *offer, size_t offer_len,
                          const char *offer_params)
{
    const char *slash = memchr(offer, '/', offer_len);
    if (!slash)
        return 0;
    size_t type_len = (size_t)(slash - offer);
    const char *subtype = slash + 1;
    size_t subtype_len = offer_len - type_len - 1;
    const char *rslash = memchr(range->value, '/', range->value_len);
    size_t rtype_len = (size_t)(rslash - range->value);
    const char *rsubtype = rslash + 1;
    size_t rsubtype_len = range->value_len - rtype_len - 1;

    if (rtype_len == 1 && range->value[0] == '*')
        return range->param_count == 0 ? 1 : 0;
    if (!equal_nocase(range->value, rtype_len, offer, type_len))
        return 0;
    if (rsubtype_len == 1 && rsubtype[0] == '*')
        return range->param_count == 0 ? 2 : 0;
    if (!equal_nocase(rsubtype, rsubtype_len, subtype, subtype_len))
        return 0;
    const char *cursor = range->params;
    const char *end = range->params + range->params_len;
    const char *n, *v;
    size_t nl, vl;
    while (next_param(&cursor, end, &n, &nl, &v, &vl))
        if (!offer_has_param(offer_params, n, nl, v, vl))
            return 0;
    return 3 + range->param_count;
}

/* Whether a language range matches a tag by basic filtering: 0 no, else
   1 + the range's length (longer ranges are more specific). */
static size_t language_match(const element *range, const char *offer, size_t offer_len)
{
    if (range->value_len == 1 && range->value[0] == '*')
        return 1;
    if (range->value_len > offer_len)
        return 0;
    if (!equal_nocase(range->value, range->value_len, offer, range->value_len))
        return 0;
    if (range->value_len < offer_len && offer[range->value_len] != '-')
        return 0;
    return 1 + range->value_len;
}

static int is_coding(const char *value, size_t len, const char *name)
{
    return equal_nocase(value, len, name, strlen(name));
}

/* The bare coding name, with x-gzip and x-compress folded. */
static void coding_name(const char **value, size_t *len)
{
    if (is_coding(*value, *len, "x-gzip") || is_coding(*value, *len, "x-compress")) {
        *value += 2;
        *len -= 2;
    }
}

static size_t coding_match(const element *range, const char *offer, size_t offer_len)
{
    if (range->value_len == 1 && range->value[0] == '*')
        return 1;
    const char *a = range->value, *b = offer;
    size_t al = range->value_len, bl = offer_len;
    coding_name(&a, &al);
    coding_name(&b, &bl);
    return equal_nocase(a, al, b, bl) ? 2 : 0;
}

static int list_quality(const char *header, const char *offer, enum list_kind kind)
{
    if (!offer)
        return 0;
    if (!header)
        return 1000;
    size_t offer_len = strlen(offer);
    const char *offer_params = offer + offer_len;
    if (kind == LIST_MEDIA) {
        const char *semicolon = strchr(offer, ';');
        if (semicolon) {
            offer_params = semicolon;
            offer_len = (size_t)(semicolon - offer);
        }
        while (offer_len > 0 && csgi_char__is_ws((unsigned char)offer[offer_len - 1]))
            offer_len--;
    }

    const char *cursor = header;
    element range;
    int any_valid = 0;
    size_t best_specificity = 0;
    int best_quality = 0;
    int identity_named = 0, star_refuses = 0;
    int rc;
    while ((rc = next_element(&cursor, kind, &range)) >= 0) {
        if (rc == 0)
            continue;
        any_valid = 1;
        size_t specificity;
        if (kind == LIST_MEDIA)
            specificity = media_match(&range, offer, offer_len, offer_params);
        else if (kind == LIST_LANGUAGE)
            specificity = language_match(&range, offer, offer_len);
        else {
            specificity = coding_match(&range, offer, offer_len);
            if (is_coding(range.value, range.value_len, "identity"))
                identity_named = 1;
            if (range.value_len == 1 && range.value[0] == '*' && range.quality == 0)
                star_refuses = 1;
        }
        /* the most specific range decides; of equally specific ones the
           first */
        if (specificity > best_specificity) {
            best_specificity = specificity;
            best_quality = range.quality;
        }
    }
    /* a header with no element that parses counts as absent; an empty
       Accept-Encoding still leaves identity */
    if (!any_valid && *skip_ows(header) != '\0')
        return 1000;
    if (kind == LIST_CODING && best_specificity == 0 && is_coding(offer, offer_len, "identity"))
        return identity_named || star_refuses ? 0 : 1000;
    return best_quality;
}

static int list_best(const char *header, const char *const *offers, size_t count,
                     enum list_kind kind)
{
    int best = -1, best_quality = 0;
    if (!offers || count > INT_MAX)
        return -1;
    for (size_t i = 0; i < count; i++) {
        int quality = list_quality(header, offers[i], kind);
        if (quality > best_quality) {
            best = (int)i;
            best_quality = quality;
        }
    }
    return best;
}

int csgi_accept_quality(const char *header, const char *offer)
{
    return list_quality(header, offer, LIST_MEDIA);
}

int csgi_accept_best(const char *header, const char *const *offers, size_t count)
{
    return list_best(header, offers, count, LIST_MEDIA);
}

int csgi_accept_language_quality(const char *header, const char *offer)
{
    return list_quality(header, offer, LIST_LANGUAGE);
}

int csgi_accept_language_best(const char *header, const char *const *offers, size_t count)
{
    return list_best(header, offers, count, LIST_LANGUAGE);
}

int csgi_accept_encoding_quality(const char *header, const char *offer)
{
    return list_quality(header, offer, LIST_CODING);
}

int csgi_accept_encoding_best(const char *header, const char *const *offers, size_t count)
{
    return list_best(header, offers, count, LIST_CODING);
}

/* ---- HTTP dates -------------------------------------------------------------- */

/* The engine's Date header uses the same formatter: common/date.c. */

int csgi_date_parse(const char *text, time_t *out)
{
    if (!text || !out)
        return CSGI_EINVAL;
    return csgi_date__parse(text, out);
}

int csgi_date_format(time_t when, char out[CSGI_DATE_SIZE])
{
    if (!out)
        return CSGI_EINVAL;
    out[0] = '\0';
    int rc = csgi_date__format(when, out);
    if (rc == 0)
        out[CSGI_DATE__LEN] = '\0';
    return rc;
}

/* ---- Entity tags --------------------------------------------------------------- */

/* Parse the entity tag at p (at most end); returns its end or NULL. */
static const char *scan_etag(const char *p, const char *end, csgi_etag *out)
{
    int weak = 0;
    if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
        weak = 1;
        p += 2;
    }
    if (p >= end || *p != '"')
        return NULL;
    const char *opaque = ++p;
    while (p < end && csgi_char__is_etagc((unsigned char)*p))
        p++;
    if (p >= end || *p != '"')
        return NULL;
    out->opaque = opaque;
    out->len = (size_t)(p - opaque);
    out->weak = weak;
    return p + 1;
}

int csgi_etag_parse(const char *text, size_t len, csgi_etag *out)
{
    csgi_etag tag;
    if (!text || !out)
        return CSGI_EINVAL;
    const char *end = scan_etag(text, text + len, &tag);
    if (!end || end != text + len)
        return CSGI_EPARSE;
    *out = tag;
    return 0;
}

int csgi_etag_compare(const csgi_etag *a, const csgi_etag *b, int weak)
{
    if (!a || !b)
        return 0;
    if (!weak && (a->weak || b->weak))
        return 0;
    return a->len == b->len && (a->len == 0 || memcmp(a->opaque, b->opaque, a->len) == 0);
}

int csgi_etag_list_match(const char *header, const csgi_etag *etag, int weak,
                         int has_representation)
{
    if (!header)
        return 0;
    const char *p = skip_ows(header);
    if (*p == '*' && *skip_ows(p + 1) == '\0')
        return has_representation;
    const char *end = header + strlen(header);
    while (*p) {
        csgi_etag tag;
        const char *after = scan_etag(p, end, &tag);
        if (after && (*skip_ows(after) == ',' || *skip_ows(after) == '\0')) {
            if (etag && csgi_etag_compare(&tag, etag, weak))
                return 1;
            p = skip_ows(after);
        } else {
            p = skip_element(p); /* malformed: skip to the next comma */
        }
        if (*p == ',')
            p++;
        p = skip_ows(p);
    }
    return 0;
}

/* ---- Ranges ------------------------------------------------------------------- */

/* A non-negative decimal without overflow; returns its end or NULL. */
static const char *parse_offset(const char *p, int64_t *out)
{
    int64_t value = 0;
    const char *start = p;
    while (csgi_char__is_digit((unsigned char)*p)) {
        if (value > (INT64_MAX - (*p - '0')) / 10)
            return NULL;
        value = value * 10 + (*p - '0');
        p++;
    }
    if (p == start)
        return NULL;
    *out = value;
    return p;
}

int csgi_range_parse(const char *header, csgi_range *ranges, size_t max, size_t *count)
{
    if (!header || !count || (!ranges && max))
        return CSGI_EINVAL;
    *count = 0;
    const char *p = skip_ows(header);
    if (!equal_nocase(p, strlen(p) < 6 ? strlen(p) : 6, "bytes=", 6))
        return CSGI_EPARSE;
    p += 6;
    size_t n = 0;
    for (;;) {
        p = skip_ows(p);
        if (*p == ',') {
            p++;
            continue; /* empty list elements are allowed */
        }
        if (!*p)
            break;
        csgi_range range;
        if (*p == '-') {
            range.first = -1;
            p = parse_offset(p + 1, &range.last);
            if (!p)
                return CSGI_EPARSE;
        } else {
            p = parse_offset(p, &range.first);
            if (!p || *p != '-')
                return CSGI_EPARSE;
            p++;
            range.last = -1;
            if (csgi_char__is_digit((unsigned char)*p)) {
                p = parse_offset(p, &range.last);
                if (!p || range.last < range.first)
                    return CSGI_EPARSE;
            }
        }
        p = skip_ows(p);
        if (*p && *p != ',')
            return CSGI_EPARSE;
        if (n == max)
            return CSGI_ETOOBIG;
        ranges[n++] = range;
    }
    if (n == 0)
        return CSGI_EPARSE;
    *count = n;
    return 0;
}

int csgi_range_resolve(const char *header, int64_t length, csgi_range *out)
{
    csgi_range ranges[CSGI_RANGE_MAX];
    size_t count;
    if (!out || length < 0)
        return CSGI_EINVAL;
    int rc = csgi_range_parse(header, ranges, CSGI_RANGE_MAX, &count);
    if (rc == CSGI_ETOOBIG)
        return CSGI_EPARSE; /* that many ranges: not worth reading, ignore */
    if (rc != 0)
        return rc;
    size_t satisfiable = 0;
    csgi_range chosen = {0, 0};
    for (size_t i = 0; i < count; i++) {
        csgi_range r = ranges[i];
        if (r.first < 0) {
            /* the last r.last bytes; "-0" is unsatisfiable */
            if (r.last == 0 || length == 0)
                continue;
            r.first = r.last >= length ? 0 : length - r.last;
            r.last = length - 1;
        } else {
            if (r.first >= length)
                continue;
            if (r.last < 0 || r.last >= length)
                r.last = length - 1;
        }
        if (satisfiable++ == 0)
            chosen = r;
    }
    if (satisfiable == 0)
        return CSGI_ERANGE;
    if (satisfiable > 1)
        return CSGI_ETOOBIG;
    *out = chosen;
    return 0;
}
