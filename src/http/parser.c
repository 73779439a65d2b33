/*
 * The HTTP/1.1 request head scanner and parser (RFC 9112, RFC 9110).
 *
 * Both work on the caller's bytes and never allocate or copy. The scanner
 * only delimits lines (two memchr calls per line); the parser then makes one
 * pass over the head with a byte-class table, so a request head costs about
 * one table lookup per byte plus a little work per field.
 */
#include "http/parser.h"

#include "common/chartab.h"

#include <stdint.h>
#include <string.h>

static int fail(csgi_http__error *error, int status, const char *reason)
{
    error->status = status;
    error->reason = reason;
    return status;
}

/* csgi_char__equal_nocase with a string literal, comparing lengths first. */
#define TOKEN_IS(s, len, literal) \
    ((len) == sizeof(literal) - 1 && csgi_char__equal_nocase((s), literal, (len)))

/* ---- 1. The head scanner ------------------------------------------------- */

enum scan_state {
    SCAN_LEADING = 0,     /* at the start of a line before the request line */
    SCAN_LEADING_CR,      /* after the CR of an empty line before the request line */
    SCAN_REQUEST_LINE,    /* inside the request line */
    SCAN_REQUEST_LINE_CR, /* after the CR ending the request line */
    SCAN_LINE_START,      /* at the start of a field line or of the final empty line */
    SCAN_FIELD_LINE,      /* inside a field line */
    SCAN_FIELD_LINE_CR,   /* after the CR ending a field line */
    SCAN_FINAL_CR,        /* after the CR of the final empty line */
    SCAN_DONE
};

/* RFC 9112 2.2 asks a server to ignore "at least one" empty line before the
   request line, as some old clients send a CRLF after a POST body. */
#define MAX_LEADING_EMPTY_LINES 8

static const csgi_http__limits default_limits = CSGI_HTTP__LIMITS_DEFAULT;

void csgi_http__scanner_init(csgi_http__scanner *scanner)
{
    memset(scanner, 0, sizeof(*scanner));
    scanner->state = SCAN_LEADING;
}

static csgi_http__scan_result scan_fail(csgi_http__error *error, int status, const char *reason)
{
    fail(error, status, reason);
    return CSGI_HTTP__SCAN_ERROR;
}

/*
 * The first CR or LF in [p, end), or NULL. The LF search (vectorised in
 * libc) bounds the CR search, so a line costs two memchr calls whatever its
 * length, where a byte loop would cost several instructions per byte.
 */
static const char *find_line_end(const char *p, const char *end)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    const char *cr = memchr(p, '\r', (size_t)((lf ? lf : end) - p));
    return cr ? cr : lf;
}

/*
 * Whether the request line [start, end) ends in SP "HTTP/" DIGIT "." DIGIT.
 * The parser checks the version fully; the scanner checks its shape at the
 * line's CRLF, so that a request line without one ("GET /", HTTP/0.9 style)
 * is refused at once instead of waiting for header fields that will never
 * come.
 */
static int ends_with_version(const char *start, const char *end)
{
    /* " HTTP/" DIGIT "." in one 8-byte compare with the digit masked out
       (memcpy of constants folds to constants); then the two digits */
    static const unsigned char pattern[8] = {' ', 'H', 'T', 'T', 'P', '/', 0, '.'};
    static const unsigned char mask_bytes[8] = {255, 255, 255, 255, 255, 255, 0, 255};
    uint64_t word, want, mask;
    if (end - start < 9)
        return 0;
    memcpy(&word, end - 9, 8);
    memcpy(&want, pattern, 8);
    memcpy(&mask, mask_bytes, 8);
    return (word & mask) == want && csgi_char__is_digit(end[-3]) && csgi_char__is_digit(end[-1]);
}

/*
 * The state lives in locals and is written back only when returning MORE or
 * DONE: after an error the scanner is unchanged, so calling it again reports
 * the same error instead of scanning on from a bad state.
 */
csgi_http__scan_result csgi_http__scan(csgi_http__scanner *scanner, const char *buf, size_t len,
                                       const csgi_http__limits *limits, csgi_http__error *error)
{
    if (scanner->state == SCAN_DONE)
        return CSGI_HTTP__SCAN_DONE;
    if (!limits)
        limits = &default_limits;

    int state = scanner->state;
    size_t offset = scanner->offset;
    size_t line_start = scanner->line_start;
    size_t head_start = scanner->skipped; /* where the request line starts */
    size_t count = scanner->header_count;

    while (offset < len) {
        switch (state) {
        case SCAN_LEADING:
            if (buf[offset] != '\r') {
                head_start = offset;
                state = SCAN_REQUEST_LINE;
                break;
            }
            if (offset / 2 >= MAX_LEADING_EMPTY_LINES)
                return scan_fail(error, 400, "too many empty lines before the request line");
            offset++;
            state = SCAN_LEADING_CR;
            break;

        case SCAN_LEADING_CR:
            if (buf[offset] != '\n')
                return scan_fail(error, 400, "CR not followed by LF in request head");
            offset++;
            line_start = offset;
            state = SCAN_LEADING;
            break;

        case SCAN_REQUEST_LINE:
        case SCAN_FIELD_LINE: {
            int request_line = state == SCAN_REQUEST_LINE;
            size_t max = request_line ? limits->max_request_line : limits->max_header_line;
            /* Look no further than one byte past the longest allowed line
               (that byte may be its CR) nor past the byte that makes the head
               too large. Every error is then found at the same byte however
               the input is split: a bare LF beyond either limit never wins
               over the limit, whether or not it has arrived yet. */
            size_t stop = len;
            if (stop - line_start > max)
                stop = line_start + max + 1;
            if (stop - head_start > limits->max_head)
                stop = head_start + limits->max_head + 1;
            const char *end = find_line_end(buf + offset, buf + stop);
            if (!end) {
                offset = stop;
                if (offset - line_start > max) {
                    if (request_line)
                        return scan_fail(error, 414, "request line too long");
                    return scan_fail(error, 431, "header line too long");
                }
                break; /* the head size is checked below */
            }
            if (*end == '\n')
                return scan_fail(error, 400, "bare LF in request head");
            offset = (size_t)(end - buf) + 1;
            /* Take the LF right away when it is there, with the checks the
               CR state would make: one trip round the loop less per line. */
            if (offset - head_start > limits->max_head)
                return scan_fail(error, 431, "request head too large");
            if (offset == len) {
                state = request_line ? SCAN_REQUEST_LINE_CR : SCAN_FIELD_LINE_CR;
                break;
            }
            if (buf[offset] != '\n')
                return scan_fail(error, 400, "CR not followed by LF in request head");
            if (request_line && !scanner->response && !ends_with_version(buf + head_start, end))
                return scan_fail(error, 400, "malformed HTTP version");
            offset++;
            line_start = offset;
            state = SCAN_LINE_START;
            break;
        }

        case SCAN_REQUEST_LINE_CR:
        case SCAN_FIELD_LINE_CR:
            if (buf[offset] != '\n')
                return scan_fail(error, 400, "CR not followed by LF in request head");
            if (state == SCAN_REQUEST_LINE_CR && !scanner->response &&
                !ends_with_version(buf + head_start, buf + offset - 1))
                return scan_fail(error, 400, "malformed HTTP version");
            offset++;
            line_start = offset;
            state = SCAN_LINE_START;
            break;

        case SCAN_LINE_START:
            if (buf[offset] == '\r') {
                offset++;
                state = SCAN_FINAL_CR;
                break;
            }
            if (count >= limits->max_headers)
                return scan_fail(error, 431, "too many header fields");
            count++;
            state = SCAN_FIELD_LINE;
            break;

        case SCAN_FINAL_CR:
            if (buf[offset] != '\n')
                return scan_fail(error, 400, "CR not followed by LF in request head");
            offset++;
            if (offset - head_start > limits->max_head)
                return scan_fail(error, 431, "request head too large");
            scanner->head_length = offset;
            scanner->skipped = head_start;
            scanner->header_count = count;
            scanner->offset = offset;
            scanner->line_start = line_start;
            scanner->state = SCAN_DONE;
            return CSGI_HTTP__SCAN_DONE;

        default: return scan_fail(error, 400, "scanner in an invalid state");
        }

        if (state >= SCAN_REQUEST_LINE && offset - head_start > limits->max_head)
            return scan_fail(error, 431, "request head too large");
    }

    scanner->state = state;
    scanner->offset = offset;
    scanner->line_start = line_start;
    scanner->skipped = head_start;
    scanner->header_count = count;
    return CSGI_HTTP__SCAN_MORE;
}

/* ---- Field lines ---------------------------------------------------------- */

/*
 * Skip field-value bytes eight at a time while none is a control byte: a
 * word without a byte below 0x20 (which takes in CR, LF and HTAB) or equal
 * to 0x7F holds only SP, VCHAR and obs-text. The classic "has a byte less
 * than n" and "has a zero byte" tests have no false negatives; a false
 * positive only hands the word to the byte loop, which checks it exactly.
 */
static const char *skip_plain_value(const char *p, const char *end)
{
    const uint64_t ones = 0x0101010101010101u;
    const uint64_t highs = 0x8080808080808080u;

    while (end - p >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        uint64_t del = word ^ (ones * 0x7F);
        if ((((word - ones * 0x20) & ~word) | ((del - ones) & ~del)) & highs)
            break;
        p += 8;
    }
    return p;
}

/*
 * Every field line must end in CRLF, so a valid block ends in LF. Checking
 * that first lets the byte loops below run without a bounds check: LF is in
 * no byte class, so each loop stops at the final LF at the latest.
 */
int csgi_http__parse_fields(const char *block, size_t len, csgi_http__header *headers,
                            size_t capacity, size_t *count, int *underscore,
                            csgi_http__error *error)
{
    const char *p = block;
    const char *end = block + len;
    size_t n = 0;

    *count = 0;
    if (len == 0)
        return 0;
    if (len < 2 || end[-2] != '\r' || end[-1] != '\n')
        return fail(error, 400, "header field line without CRLF");

    while (p < end) {
        const char *name = p;
        /* '_' is a tchar, but the environ drops such names: note them
           here, where the bytes are read anyway. */
        while (csgi_char__is_name(*p))
            p++;
        if (*p == '_') {
            if (underscore)
                *underscore = 1;
            while (csgi_char__is_tchar(*p))
                p++;
        }
        if (*p != ':') {
            if (p == name && csgi_char__is_ws(*p))
                return fail(error, 400, "obsolete line folding"); /* RFC 9112 5.2 */
            if (p != name && csgi_char__is_ws(*p))
                return fail(error, 400, "whitespace before header colon"); /* RFC 9112 5.1 */
            return fail(error, 400, "invalid byte in header name");
        }
        if (p == name)
            return fail(error, 400, "empty header name");
        size_t name_len = (size_t)(p - name);

        p++;
        while (csgi_char__is_ws(*p))
            p++;
        const char *value = p;
        p = skip_plain_value(p, end);
        while (csgi_char__is_field(*p))
            p++;
        /* *p is CR, LF or another control byte. A CR here is at most
           end[-2] because end[-1] is LF, so p[1] is inside the block. */
        if (*p != '\r' || p[1] != '\n') {
            if (*p == '\n')
                return fail(error, 400, "bare LF in header field");
            if (*p == '\r')
                return fail(error, 400, "CR not followed by LF in header field");
            return fail(error, 400, "control byte in header value");
        }
        const char *value_end = p;
        while (value_end > value && csgi_char__is_ws(value_end[-1]))
            value_end--;

        if (n >= capacity)
            return fail(error, 431, "too many header fields");
        headers[n].name = name;
        headers[n].name_len = name_len;
        headers[n].value = value;
        headers[n].value_len = (size_t)(value_end - value);
        n++;
        p += 2;
    }

    *count = n;
    return 0;
}

/* ---- Authorities (RFC 3986 3.2) ------------------------------------------ */

/* dec-octet "." dec-octet "." dec-octet "." dec-octet, no leading zeros. */
static int ipv4_valid(const unsigned char *p, const unsigned char *end)
{
    for (int i = 0; i < 4; i++) {
        if (i > 0) {
            if (p == end || *p != '.')
                return 0;
            p++;
        }
        const unsigned char *start = p;
        unsigned value = 0;
        while (p < end && p - start < 3 && csgi_char__is_digit(*p))
            value = value * 10 + (unsigned)(*p++ - '0');
        if (p == start || value > 255 || (p - start > 1 && *start == '0'))
            return 0;
    }
    return p == end;
}

/* IPv6address of RFC 3986 3.2.2: eight groups of 1-4 HEXDIG, at most one
   "::" standing for one or more zero groups, an IPv4 address as the last
   two groups. Zone identifiers (RFC 6874) are not accepted. */
static int ipv6_valid(const unsigned char *p, const unsigned char *end)
{
    int groups = 0;
    int compressed = 0;

    if (end - p >= 2 && p[0] == ':' && p[1] == ':') {
        compressed = 1;
        p += 2;
        if (p == end)
            return 1;
    }
    for (;;) {
        const unsigned char *start = p;
        while (p < end && csgi_char__is_hexdig(*p))
            p++;
        if (p < end && *p == '.') {
            if (groups > 6 || !ipv4_valid(start, end))
                return 0;
            groups += 2;
            break;
        }
        if (p == start || p - start > 4 || ++groups > 8)
            return 0;
        if (p == end)
            break;
        if (*p != ':' || ++p == end)
            return 0;
        if (*p == ':') {
            if (compressed)
                return 0;
            compressed = 1;
            if (++p == end)
                break;
        }
    }
    return compressed ? groups <= 7 : groups == 8;
}

/* IP-literal without its brackets: IPv6address / IPvFuture. */
static int ip_literal_valid(const unsigned char *p, const unsigned char *end)
{
    if (p < end && (*p == 'v' || *p == 'V')) {
        const unsigned char *start = ++p;
        while (p < end && csgi_char__is_hexdig(*p))
            p++;
        if (p == start || p == end || *p != '.' || ++p == end)
            return 0;
        while (p < end &&
               (csgi_char__is(*p, CSGI_CHAR__UNRESERVED | CSGI_CHAR__SUB_DELIMS) || *p == ':'))
            p++;
        return p == end;
    }
    return ipv6_valid(p, end);
}

/*
 * Check an authority: host [ ":" port ], host being an IP-literal in
 * brackets or a reg-name (which covers IPv4 addresses). Userinfo is refused:
 * it is deprecated for http(s) (RFC 9110 4.2.4) and a classic way to smuggle
 * a misleading host. Returns NULL or the reason it is malformed.
 */
static const char *authority_error(const char *s, size_t len, int need_host, int need_port)
{
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = p + len;

    if (p < end && *p == '[') {
        const unsigned char *bracket = memchr(p, ']', len);
        if (!bracket || !ip_literal_valid(p + 1, bracket))
            return "malformed IP literal";
        p = bracket + 1;
    } else {
        while (p < end) {
            if (csgi_char__is(*p, CSGI_CHAR__UNRESERVED | CSGI_CHAR__SUB_DELIMS))
                p++;
            else if (*p == '%' && end - p >= 3 && csgi_char__is_hexdig(p[1]) &&
                     csgi_char__is_hexdig(p[2]))
                p += 3;
            else
                break;
        }
        if (p < end && *p == '@')
            return "userinfo in authority";
        if (need_host && p == (const unsigned char *)s)
            return "missing host";
    }
    if (p == end)
        return need_port ? "missing port" : NULL;
    if (*p != ':')
        return "invalid byte in host";
    const unsigned char *port = ++p;
    while (p < end && csgi_char__is_digit(*p))
        p++;
    if (p != end)
        return memchr(p, '@', (size_t)(end - p)) ? "userinfo in authority" : "malformed port";
    if (need_port && p == port)
        return "missing port";
    return NULL;
}

/* ---- Paths ---------------------------------------------------------------- */

/* 1 for ".", 2 for "..", with any dot written as "%2e" or "%2E"; else 0. */
static int dot_segment(const unsigned char *s, size_t len)
{
    int dots = 0;
    size_t i = 0;

    if (len == 0 || len > 6)
        return 0;
    while (i < len) {
        if (s[i] == '.')
            i++;
        else if (s[i] == '%' && len - i >= 3 && s[i + 1] == '2' && (s[i + 2] | 0x20) == 'e')
            i += 3;
        else
            return 0;
        dots++;
    }
    return dots <= 2 ? dots : 0;
}

/*
 * Whether resolving the dot segments of an absolute path (RFC 3986 5.2.4)
 * would climb above the root. RFC 3986 clamps such paths at the root, but an
 * application that resolves them differently (or a file server that joins
 * the raw path to a directory) would then reach outside its tree, so the
 * request is refused. Empty segments count as segments, as in 5.2.4.
 */
static int path_escapes_root(const unsigned char *p, const unsigned char *end)
{
    size_t depth = 0;

    while (p < end) {
        const unsigned char *segment = ++p; /* skip the '/' */
        while (p < end && *p != '/')
            p++;
        size_t segment_len = (size_t)(p - segment);
        int dots = dot_segment(segment, segment_len);
        if (dots == 2) {
            if (depth == 0)
                return 1;
            depth--;
        } else if (dots == 0 && segment_len > 0) {
            /* An empty segment ("//") is no level: file systems read "a//"
               as "a/", so counting it would let "/a//../../x" out. */
            depth++;
        }
    }
    return 0;
}

/* ---- 2. The head parser --------------------------------------------------- */

/*
 * The next element of a comma-separated list (RFC 9110 5.6.1) in
 * [*cursor, end), without the whitespace around it. Empty elements are
 * skipped, as the RFC asks of recipients. Returns 0 at the end of the list.
 */
int csgi_http__next_element(const char **cursor, const char *end, const char **element,
                            size_t *element_len)
{
    const char *p = *cursor;

    while (p < end && (csgi_char__is_ws(*p) || *p == ','))
        p++;
    if (p == end) {
        *cursor = p;
        return 0;
    }
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *stop = comma ? comma : end;
    const char *last = stop;
    while (last > p && csgi_char__is_ws(last[-1]))
        last--;
    *element = p;
    *element_len = (size_t)(last - p);
    *cursor = stop;
    return 1;
}

/* What the Transfer-Encoding fields say, gathered over all of them. */
typedef struct coding_list {
    int count;        /* transfer codings listed */
    int chunked;      /* chunked was listed */
    int chunked_last; /* the last coding listed so far is chunked */
    int unknown;      /* a coding we do not implement was listed */
    const char *malformed;
} coding_list;

/* transfer-coding = token *( OWS ";" OWS transfer-parameter ), RFC 9110 10.1.4. */
static void add_codings(coding_list *c, const char *value, size_t len)
{
    const char *cursor = value;
    const char *end = value + len;
    const char *element;
    size_t element_len;

    while (csgi_http__next_element(&cursor, end, &element, &element_len)) {
        size_t name_len = 0;
        while (name_len < element_len && csgi_char__is_tchar(element[name_len]))
            name_len++;
        size_t rest = name_len;
        while (rest < element_len && csgi_char__is_ws(element[rest]))
            rest++;
        if (name_len == 0 || (rest < element_len && element[rest] != ';')) {
            c->malformed = "malformed Transfer-Encoding";
            return;
        }
        int has_parameters = rest < element_len;
        c->count++;
        if (TOKEN_IS(element, name_len, "chunked")) {
            if (has_parameters)
                c->malformed = "parameters on the chunked coding";
            else if (c->chunked)
                c->malformed = "chunked coding given twice";
            c->chunked = 1;
            c->chunked_last = 1;
        } else {
            c->unknown = 1;
            c->chunked_last = 0;
        }
    }
}

/* Content-Length = 1*DIGIT (RFC 9110 8.6); a list of values is refused. */
static const char *content_length_error(const char *s, size_t len, uint64_t *out)
{
    uint64_t value = 0;

    if (len == 0)
        return "empty Content-Length";
    for (size_t i = 0; i < len; i++) {
        if (!csgi_char__is_digit(s[i]))
            return memchr(s, ',', len) ? "several Content-Length values" : "invalid Content-Length";
        unsigned digit = (unsigned)(s[i] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return "Content-Length too large";
        value = value * 10 + digit;
    }
    *out = value;
    return NULL;
}

/* Fill the target fields of out from the request-target (RFC 9112 3.2). */
static int parse_target(csgi_http__head *out, const char *question, int has_marks,
                        csgi_http__error *error)
{
    const char *target = out->target;
    const char *target_end = target + out->target_len;
    int connect = out->method_len == 7 && memcmp(out->method, "CONNECT", 7) == 0;
    const char *path;
    const char *reason;

    /* authority-form: only, and always, for CONNECT (RFC 9112 3.2.3) */
    if (connect) {
        reason = authority_error(target, out->target_len, 1, 1);
        if (reason)
            return fail(error, 400,
                        *target == '/' || *target == '*' ? "CONNECT needs an authority-form target"
                                                         : reason);
        out->form = CSGI_HTTP__FORM_AUTHORITY;
        out->path = target;
        out->host = target;
        out->host_len = out->target_len;
        return 0;
    }

    if (*target == '/') {
        out->form = CSGI_HTTP__FORM_ORIGIN;
        path = target;
    } else if (out->target_len == 1 && *target == '*') {
        /* asterisk-form: only for a server-wide OPTIONS (RFC 9112 3.2.4) */
        if (out->method_len != 7 || memcmp(out->method, "OPTIONS", 7) != 0)
            return fail(error, 400, "asterisk-form target without OPTIONS");
        out->form = CSGI_HTTP__FORM_ASTERISK;
        out->path = target;
        return 0;
    } else {
        /* absolute-form, "http" or "https" only (RFC 9112 3.2.2) */
        size_t scheme_len;
        if (out->target_len > 7 && csgi_char__equal_nocase(target, "http", 4) &&
            memcmp(target + 4, "://", 3) == 0)
            scheme_len = 4;
        else if (out->target_len > 8 && csgi_char__equal_nocase(target, "https", 5) &&
                 memcmp(target + 5, "://", 3) == 0)
            scheme_len = 5;
        else
            return fail(error, 400, "malformed request target");

        const char *authority = target + scheme_len + 3;
        const char *authority_end = question ? question : target_end;
        const char *slash = memchr(authority, '/', (size_t)(authority_end - authority));
        if (slash)
            authority_end = slash;
        /* An http(s) URI with an empty host is invalid (RFC 9110 4.2.1). */
        reason = authority_error(authority, (size_t)(authority_end - authority), 1, 0);
        if (reason)
            return fail(error, 400, reason);
        out->form = CSGI_HTTP__FORM_ABSOLUTE;
        out->scheme = target;
        out->scheme_len = scheme_len;
        out->host = authority;
        out->host_len = (size_t)(authority_end - authority);
        path = authority_end;
    }

    const char *path_end = question ? question : target_end;
    if (has_marks &&
        path_escapes_root((const unsigned char *)path, (const unsigned char *)path_end))
        return fail(error, 400, "path climbs above the root");
    if (path == path_end) {
        out->path = "/";
        out->path_len = 1;
    } else {
        out->path = path;
        out->path_len = (size_t)(path_end - path);
    }
    if (question) {
        out->query = question + 1;
        out->query_len = (size_t)(target_end - question - 1);
    }
    return 0;
}

/*
 * The header fields that shape the request: Host (RFC 9112 3.2), body
 * framing (RFC 9112 6), Connection (RFC 9112 9.3) and Expect (RFC 9110
 * 10.1.1). One pass over the parsed fields, matching names by length first.
 */
static int apply_fields(csgi_http__head *out, csgi_http__error *error)
{
    const csgi_http__header *host = NULL;
    const csgi_http__header *content_length = NULL;
    size_t host_count = 0;
    size_t content_length_count = 0;
    int transfer_encoding = 0;
    coding_list codings = {0};
    int wants_close = 0;
    int wants_keep_alive = 0;
    int expect_continue = 0;
    int expect_other = 0;
    const char *element;
    size_t element_len;
    const char *cursor;
    const char *reason;

    for (size_t i = 0; i < out->header_count; i++) {
        const csgi_http__header *h = &out->headers[i];
        const char *value_end = h->value + h->value_len;
        switch (h->name_len) {
        case 4:
            if (csgi_char__equal_nocase(h->name, "host", 4)) {
                host = h;
                host_count++;
            }
            break;
        case 6:
            if (csgi_char__equal_nocase(h->name, "expect", 6)) {
                cursor = h->value;
                while (csgi_http__next_element(&cursor, value_end, &element, &element_len)) {
                    if (TOKEN_IS(element, element_len, "100-continue"))
                        expect_continue = 1;
                    else
                        expect_other = 1;
                }
            }
            break;
        case 10:
            if (csgi_char__equal_nocase(h->name, "connection", 10)) {
                cursor = h->value;
                while (csgi_http__next_element(&cursor, value_end, &element, &element_len)) {
                    if (TOKEN_IS(element, element_len, "close"))
                        wants_close = 1;
                    else if (TOKEN_IS(element, element_len, "keep-alive"))
                        wants_keep_alive = 1;
                }
            }
            break;
        case 14:
            if (csgi_char__equal_nocase(h->name, "content-length", 14)) {
                content_length = h;
                content_length_count++;
            }
            break;
        case 17:
            if (csgi_char__equal_nocase(h->name, "transfer-encoding", 17)) {
                transfer_encoding = 1;
                if (!codings.malformed)
                    add_codings(&codings, h->value, h->value_len);
            }
            break;
        default: break;
        }
    }

    /* Host: exactly one on HTTP/1.1, at most one on 1.0, always well-formed,
       even when an absolute-form target overrides it (RFC 9112 3.2). */
    if (host_count > 1)
        return fail(error, 400, "several Host fields");
    if (host_count == 0 && out->version_minor == 1)
        return fail(error, 400, "missing Host");
    if (host) {
        reason = authority_error(host->value, host->value_len, 0, 0);
        if (reason)
            return fail(error, 400, "malformed Host");
        if (!out->host) {
            out->host = host->value;
            out->host_len = host->value_len;
        }
    }

    /* Body framing: anything ambiguous is refused, as it is how requests
       are smuggled past a proxy that frames them differently (RFC 9112 6.3,
       11.2). */
    if (transfer_encoding) {
        if (content_length_count)
            return fail(error, 400, "Transfer-Encoding with Content-Length");
        if (out->version_minor == 0)
            return fail(error, 400, "Transfer-Encoding on HTTP/1.0");
        if (codings.malformed)
            return fail(error, 400, codings.malformed);
        if (codings.count == 0)
            return fail(error, 400, "empty Transfer-Encoding");
        if (codings.chunked && !codings.chunked_last)
            return fail(error, 400, "chunked is not the final transfer coding");
        if (codings.unknown)
            return fail(error, 501, "unsupported transfer coding");
        out->body = CSGI_HTTP__BODY_CHUNKED;
    } else if (content_length) {
        if (content_length_count > 1)
            return fail(error, 400, "several Content-Length fields");
        reason = content_length_error(content_length->value, content_length->value_len,
                                      &out->content_length);
        if (reason)
            return fail(error, 400, reason);
        out->body = CSGI_HTTP__BODY_LENGTH;
    } else {
        out->body = CSGI_HTTP__BODY_NONE;
    }

    if (out->version_minor == 1) {
        out->keep_alive = !wants_close;
        /* Expect is an HTTP/1.1 feature: a 1.0 client's Expect is ignored. */
        if (expect_other)
            return fail(error, 417, "unsupported expectation");
        out->expect_continue = expect_continue != 0;
    } else {
        out->keep_alive = wants_keep_alive && !wants_close;
    }
    return 0;
}

/*
 * The head must end in CRLF CRLF. That LF is in no byte class, so the loops
 * over the request line stop before the end of the head without checking
 * bounds, like those of csgi_http__parse_fields.
 */
int csgi_http__parse_head(const char *head, size_t len, csgi_http__header *headers, size_t capacity,
                          csgi_http__head *out, csgi_http__error *error)
{
    const char *end = head + len;
    const char *p = head;

    memset(out, 0, sizeof(*out));
    out->headers = headers;
    if (len < 4 || memcmp(end - 4, "\r\n\r\n", 4) != 0)
        return fail(error, 400, "request head does not end with an empty line");

    /* method SP request-target SP HTTP-version CRLF (RFC 9112 3) */
    while (csgi_char__is_tchar(*p))
        p++;
    if (p == head)
        return fail(error, 400, "invalid method");
    if (*p != ' ')
        return fail(error, 400, "invalid byte in method");
    out->method = head;
    out->method_len = (size_t)(p - head);

    /* The target ends at the first byte that is not a target byte, which
       must be the SP before the version. '?' (first query mark) and the
       bytes that may start a dot segment are noted on the way. */
    const char *target = ++p;
    const char *question = NULL;
    int has_marks = 0;
    for (;;) {
        while ((csgi_char__table[(unsigned char)*p] &
                (CSGI_CHAR__TARGET | CSGI_CHAR__TARGET_MARK)) == CSGI_CHAR__TARGET)
            p++;
        if (!csgi_char__is_target_mark(*p))
            break;
        if (*p == '?') {
            if (!question)
                question = p;
        } else if (!question) {
            has_marks = 1;
        }
        p++;
    }
    if (*p != ' ') {
        if (*p == '#')
            return fail(error, 400, "fragment in request target");
        return fail(error, 400, "invalid byte in request target");
    }
    if (p == target)
        return fail(error, 400, "empty request target");
    out->target = target;
    out->target_len = (size_t)(p - target);

    /* HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive (RFC 9112 2.3) */
    p++;
    if (end - p < 10 || memcmp(p, "HTTP/", 5) != 0 || !csgi_char__is_digit(p[5]) || p[6] != '.' ||
        !csgi_char__is_digit(p[7]) || p[8] != '\r' || p[9] != '\n')
        return fail(error, 400, "malformed HTTP version");
    if (p[5] != '1')
        return fail(error, 505, "unsupported HTTP version");
    /* A higher minor version is served as HTTP/1.1 (RFC 9110 6.2). */
    out->version_minor = p[7] == '0' ? 0 : 1;
    p += 10;

    int status = parse_target(out, question, has_marks, error);
    if (status)
        return status;

    /* The field lines, without the final empty line; p <= end - 2 because
       the request line ended at the first CRLF of a head ending in two. */
    int underscore = 0;
    status = csgi_http__parse_fields(p, (size_t)(end - 2 - p), headers, capacity,
                                     &out->header_count, &underscore, error);
    out->underscore = underscore != 0;
    if (status)
        return status;
    return apply_fields(out, error);
}
