/*
 * A streaming multipart/form-data parser (RFC 7578 over RFC 2046).
 *
 * The body is fed in pieces of any size, as they come from csgi.input; the
 * parser never needs the whole body. Bytes are examined once: the state
 * machine looks for the delimiter "\r\n--boundary" with the length of its
 * partial match carried between pieces. A boundary holds no CR, so after a
 * mismatch a match can only restart at a CR: the bytes matched so far are
 * part data, and the current byte is examined again as a possible start.
 * The first delimiter of the body may come without its CRLF, which is why
 * the preamble starts with two bytes of the delimiter "already matched".
 *
 * Text fields collect in the arena up to max_field_size. Files collect in
 * the arena up to spool_threshold, then move to an unlinked temporary file
 * whose descriptor the arena closes when the request ends.
 */
#include "helpers/helpers.h"

#include "common/chartab.h"
#include "common/vec.h"
#include "gateway/environ_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum {
    S_PREAMBLE,
    S_AFTER_DELIMITER, /* "--" closes, else padding and CRLF */
    S_CLOSE_DASH,      /* one '-' of the closing "--" seen */
    S_PADDING,         /* spaces after the boundary */
    S_PADDING_LF,      /* CR seen, LF expected */
    S_HEADERS,
    S_BODY,
    S_EPILOGUE,
    S_FAILED
};

static int fail(csgi_multipart__parser *parser, int rc, const char *format, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int fail(csgi_multipart__parser *parser, int rc, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(parser->message, sizeof(parser->message), format, args);
    va_end(args);
    parser->state = S_FAILED;
    parser->result = rc;
    return rc;
}

/* RFC 2046 bchars: what a boundary may hold (a space, but not last). */
static int boundary_ok(const char *boundary, size_t len)
{
    if (len > 70 || (len && boundary[len - 1] == ' '))
        return 0;
    return csgi_char__all(boundary, len, CSGI_CHAR__BCHAR);
}

int csgi_multipart__init(csgi_multipart__parser *parser, csgi_arena *arena, const char *boundary,
                         size_t boundary_len, const csgi_form_limits *limits)
{
    memset(parser, 0, sizeof(*parser));
    parser->arena = arena;
    parser->limits = *limits;
    parser->files_tail = &parser->files;
    if (!boundary_ok(boundary, boundary_len))
        return fail(parser, CSGI_EPARSE, "invalid multipart boundary");
    parser->delimiter_len = boundary_len + 4;
    parser->delimiter = csgi_arena__alloc(arena, parser->delimiter_len + 1);
    parser->fields = csgi_params__new(arena);
    if (!parser->delimiter || !parser->fields)
        return fail(parser, CSGI_ENOMEM, "out of memory");
    memcpy(parser->delimiter, "\r\n--", 4);
    memcpy(parser->delimiter + 4, boundary, boundary_len);
    parser->delimiter[parser->delimiter_len] = '\0';
    parser->state = S_PREAMBLE;
    parser->matched = 2; /* the first delimiter needs no CRLF before it */
    return 0;
}

/* Make room for need more bytes of part data (plus a NUL), growing to at
   most limit + 1 bytes (the callers check limit first). */
static int reserve(csgi_multipart__parser *parser, size_t need, size_t limit)
{
    void *data = parser->data;
    int rc =
        csgi_vec__reserve_in(parser->arena, &data, &parser->data_capacity, 1, parser->data_len,
                             parser->data_len + need + 1, limit < SIZE_MAX ? limit + 1 : SIZE_MAX);
    parser->data = data;
    return rc;
}

static void close_descriptor(void *pointer)
{
    close(*(int *)pointer);
}

/* Move the current file from memory to a temporary file without a name:
   O_TMPFILE where the filesystem has it (csgi_form_file_save() can then
   link it into place), else a file made and unlinked at once. */
static int spool(csgi_multipart__parser *parser)
{
    const char *dir = parser->limits.spool_dir;
    if (!dir || !*dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/csgi-upload-XXXXXX", dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return fail(parser, CSGI_ESYSTEM, "temporary directory name too long");
    int *fd = csgi_arena__alloc(parser->arena, sizeof(*fd));
    if (!fd)
        return fail(parser, CSGI_ENOMEM, "out of memory");
    *fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (*fd < 0) {
        *fd = mkostemp(path, O_CLOEXEC);
        if (*fd < 0)
            return fail(parser, CSGI_ESYSTEM, "cannot create a temporary file in %s", dir);
        unlink(path);
    }
    if (csgi_arena__defer(parser->arena, close_descriptor, fd) != 0) {
        close(*fd);
        return fail(parser, CSGI_ENOMEM, "out of memory");
    }
    parser->file->file.fd = *fd;
    if (csgi_helpers__write_all(*fd, parser->data, parser->data_len) != 0)
        return fail(parser, CSGI_ESYSTEM, "cannot write a temporary file");
    parser->data = NULL;
    parser->data_len = parser->data_capacity = 0;
    return 0;
}

/* Part data. */
static int emit(csgi_multipart__parser *parser, const char *data, size_t len)
{
    if (!len)
        return 0;
    if (!parser->is_file) {
        if (len > parser->limits.max_field_size - parser->data_len)
            return fail(parser, CSGI_ETOOBIG, "field \"%.40s\" longer than %zu bytes", parser->name,
                        parser->limits.max_field_size);
        if (reserve(parser, len, parser->limits.max_field_size) != 0)
            return fail(parser, CSGI_ENOMEM, "out of memory");
        memcpy(parser->data + parser->data_len, data, len);
        parser->data_len += len;
        return 0;
    }

    csgi_form_file *file = &parser->file->file;
    if (len > parser->limits.max_file_size - file->size)
        return fail(parser, CSGI_ETOOBIG, "file \"%.40s\" longer than %zu bytes", parser->name,
                    parser->limits.max_file_size);
    if (file->fd < 0 && file->size + len > parser->limits.spool_threshold) {
        int rc = spool(parser);
        if (rc != 0)
            return rc;
    }
    if (file->fd >= 0) {
        if (csgi_helpers__write_all(file->fd, data, len) != 0)
            return fail(parser, CSGI_ESYSTEM, "cannot write a temporary file");
    } else {
        if (reserve(parser, len, parser->limits.spool_threshold) != 0)
            return fail(parser, CSGI_ENOMEM, "out of memory");
        memcpy(parser->data + parser->data_len, data, len);
        parser->data_len += len;
    }
    file->size += len;
    return 0;
}

/* The current part's body ended at a delimiter. */
static int end_part(csgi_multipart__parser *parser)
{
    if (reserve(parser, 0, parser->data_len) != 0)
        return fail(parser, CSGI_ENOMEM, "out of memory");
    parser->data[parser->data_len] = '\0';
    if (parser->is_file) {
        csgi_form_file *file = &parser->file->file;
        if (file->fd < 0)
            file->data = parser->data;
        *parser->files_tail = parser->file;
        parser->files_tail = &parser->file->next;
        parser->file_count++;
    } else {
        if (parser->limits.strict && !csgi_request_text_is_utf8(parser->data, parser->data_len))
            return fail(parser, CSGI_EPARSE, "field \"%.40s\" is not UTF-8", parser->name);
        if (csgi_params__append(parser->fields, parser->name, parser->name_len, parser->data,
                                parser->data_len) != 0)
            return fail(parser, CSGI_ENOMEM, "out of memory");
    }
    parser->data = NULL;
    parser->data_len = parser->data_capacity = 0;
    parser->file = NULL;
    return 0;
}

/* filename*=UTF-8''%E2%82%AC.txt (RFC 5987/8187). Other charsets are
   ignored: 1 with the decoded name, 0 to fall back to filename. */
static int extended_filename(csgi_multipart__parser *parser, const char *value, size_t len,
                             const char **out, size_t *out_len)
{
    static const char prefix[] = "utf-8'";
    if (len < sizeof(prefix) - 1 || strncasecmp(value, prefix, sizeof(prefix) - 1) != 0)
        return 0;
    const char *quote = memchr(value + sizeof(prefix) - 1, '\'', len - (sizeof(prefix) - 1));
    if (!quote)
        return 0;
    size_t rest = len - (size_t)(quote + 1 - value);
    char *copy = csgi_arena__alloc(parser->arena, rest + 1);
    if (!copy)
        return CSGI_ENOMEM;
    size_t n = csgi_environ__percent_decode(copy, quote + 1, rest);
    copy[n] = '\0';
    if (!csgi_request_text_is_utf8(copy, n))
        return 0;
    *out = copy;
    *out_len = n;
    return 1;
}

/* The header block (without its final empty line's CRLF) is complete. */
static int start_part(csgi_multipart__parser *parser)
{
    const char *block = parser->header;
    size_t len = parser->header_len;
    const char *disposition = NULL, *content_type = NULL;
    size_t disposition_len = 0, content_type_len = 0;

    size_t i = 0;
    while (i + 2 <= len) {
        const char *line = block + i;
        const char *crlf = memchr(line, '\r', len - i);
        size_t line_len = (size_t)(crlf - line); /* every line ends with CRLF */
        i += line_len + 2;
        if (line_len == 0)
            break; /* the empty line */
        if (csgi_char__is_ws(line[0]))
            return fail(parser, CSGI_EPARSE, "folded part header");
        const char *colon = memchr(line, ':', line_len);
        if (!colon || colon == line)
            return fail(parser, CSGI_EPARSE, "part header without a name and ':'");
        size_t name_len = (size_t)(colon - line);
        const char *value = colon + 1;
        size_t value_len = line_len - name_len - 1;
        while (value_len && csgi_char__is_ws(*value)) {
            value++;
            value_len--;
        }
        while (value_len && csgi_char__is_ws(value[value_len - 1]))
            value_len--;
        if (name_len == 19 && strncasecmp(line, "Content-Disposition", 19) == 0 && !disposition) {
            disposition = value;
            disposition_len = value_len;
        } else if (name_len == 12 && strncasecmp(line, "Content-Type", 12) == 0 && !content_type) {
            content_type = value;
            content_type_len = value_len;
        }
    }

    if (!disposition)
        return fail(parser, CSGI_EPARSE, "part without Content-Disposition");
    size_t type_len = 0;
    while (type_len < disposition_len && disposition[type_len] != ';' &&
           !csgi_char__is_ws(disposition[type_len]))
        type_len++;
    if (type_len != 9 || strncasecmp(disposition, "form-data", 9) != 0)
        return fail(parser, CSGI_EPARSE, "part's Content-Disposition is not form-data");

    const char *name, *filename = NULL, *extended;
    size_t name_len, filename_len = 0, extended_len;
    int rc = csgi_helpers__header_param(parser->arena, disposition, disposition_len, "name", &name,
                                        &name_len);
    if (rc < 0)
        return fail(parser, rc, "out of memory");
    if (rc == 0)
        return fail(parser, CSGI_EPARSE, "part without a name");
    rc = csgi_helpers__header_param(parser->arena, disposition, disposition_len, "filename*",
                                    &extended, &extended_len);
    if (rc == 1)
        rc = extended_filename(parser, extended, extended_len, &filename, &filename_len);
    if (rc == 0)
        rc = csgi_helpers__header_param(parser->arena, disposition, disposition_len, "filename",
                                        &filename, &filename_len);
    if (rc < 0)
        return fail(parser, rc, "out of memory");
    if (parser->limits.strict && (!csgi_request_text_is_utf8(name, name_len) ||
                                  !csgi_request_text_is_utf8(filename, filename_len)))
        return fail(parser, CSGI_EPARSE, "part name or filename is not UTF-8");

    parser->name = name;
    parser->name_len = name_len;
    parser->is_file = filename != NULL;
    parser->data = NULL;
    parser->data_len = parser->data_capacity = 0;
    if (!parser->is_file)
        return 0;

    csgi_multipart__file *file = csgi_arena__alloc(parser->arena, sizeof(*file));
    if (!file)
        return fail(parser, CSGI_ENOMEM, "out of memory");
    memset(file, 0, sizeof(*file));
    file->file.name = name;
    file->file.name_len = name_len;
    file->file.filename = filename;
    file->file.filename_len = filename_len;
    file->file.content_type =
        content_type ? csgi_arena__strndup(parser->arena, content_type, content_type_len)
                     : "text/plain";
    if (!file->file.content_type)
        return fail(parser, CSGI_ENOMEM, "out of memory");
    file->file.fd = -1;
    parser->file = file;
    return 0;
}

/* One byte of the header block. */
static int header_byte(csgi_multipart__parser *parser, char c)
{
    if (parser->header_len >= parser->limits.max_part_header)
        return fail(parser, CSGI_ETOOBIG, "part header longer than %zu bytes",
                    parser->limits.max_part_header);
    void *header = parser->header;
    if (csgi_vec__reserve_in(parser->arena, &header, &parser->header_capacity, 1,
                             parser->header_len, parser->header_len + 1,
                             parser->limits.max_part_header) != 0)
        return fail(parser, CSGI_ENOMEM, "out of memory");
    parser->header = header;
    if (c == '\n' && (parser->header_len == 0 || parser->header[parser->header_len - 1] != '\r'))
        return fail(parser, CSGI_EPARSE, "part header line ends without CR");
    if (c != '\n' && parser->header_len && parser->header[parser->header_len - 1] == '\r')
        return fail(parser, CSGI_EPARSE, "CR without LF in a part header");
    parser->header[parser->header_len++] = c;
    if (c != '\n')
        return 0;
    size_t n = parser->header_len;
    if (n == 2 || (n >= 4 && memcmp(parser->header + n - 4, "\r\n\r\n", 4) == 0)) {
        int rc = start_part(parser);
        if (rc != 0)
            return rc;
        parser->state = S_BODY;
        parser->matched = 0;
    }
    return 0;
}

/* The delimiter was found after a part's body or the preamble. */
static int delimiter_found(csgi_multipart__parser *parser)
{
    int rc = parser->state == S_BODY ? end_part(parser) : 0;
    if (rc == 0) {
        parser->state = S_AFTER_DELIMITER;
        parser->matched = 0;
    }
    return rc;
}

/* A byte between a delimiter and what follows it: "--" closes the body;
   else optional padding (spaces, tabs) and CRLF, then the next part's
   headers. */
static int after_delimiter_byte(csgi_multipart__parser *parser, unsigned char c)
{
    int next = S_FAILED;
    switch (parser->state) {
    case S_AFTER_DELIMITER:
        if (c == '-') {
            next = S_CLOSE_DASH;
            break;
        }
        /* padding may start right after the boundary */
        /* fall through */
    case S_PADDING:
        if (c == '\r')
            next = S_PADDING_LF;
        else if (csgi_char__is_ws(c))
            next = S_PADDING;
        break;
    case S_CLOSE_DASH: next = c == '-' ? S_EPILOGUE : S_FAILED; break;
    case S_PADDING_LF: next = c == '\n' ? S_HEADERS : S_FAILED; break;
    default: break;
    }
    if (next == S_FAILED)
        return fail(parser, CSGI_EPARSE, "boundary not followed by CRLF or \"--\"");
    if (next == S_HEADERS) {
        if (++parser->parts > parser->limits.max_parts)
            return fail(parser, CSGI_ETOOBIG, "more than %zu parts", parser->limits.max_parts);
        parser->header_len = 0;
    }
    parser->state = next;
    return 0;
}

static int feed_bytes(csgi_multipart__parser *parser, const char *data, size_t len)
{
    size_t i = 0;
    int rc = 0;
    while (i < len && rc == 0) {
        char c = data[i];
        switch (parser->state) {
        case S_PREAMBLE:
        case S_BODY:
            if (parser->matched == 0 && parser->state == S_BODY) {
                /* Fast path: everything before the next CR is data. */
                const char *cr = memchr(data + i, '\r', len - i);
                size_t span = cr ? (size_t)(cr - (data + i)) : len - i;
                rc = emit(parser, data + i, span);
                i += span;
                if (!cr || rc != 0)
                    break;
                c = data[i];
            }
            if (c == parser->delimiter[parser->matched]) {
                i++;
                if (++parser->matched == parser->delimiter_len)
                    rc = delimiter_found(parser);
            } else if (parser->matched) {
                /* Not the delimiter after all: what matched is data. Look
                   at c again as the start of a delimiter. */
                if (parser->state == S_BODY)
                    rc = emit(parser, parser->delimiter, parser->matched);
                parser->matched = 0;
            } else {
                if (parser->state == S_BODY)
                    rc = emit(parser, &c, 1);
                i++;
            }
            break;
        case S_AFTER_DELIMITER:
        case S_CLOSE_DASH:
        case S_PADDING:
        case S_PADDING_LF:
            i++;
            rc = after_delimiter_byte(parser, c);
            break;
        case S_HEADERS:
            i++;
            rc = header_byte(parser, c);
            break;
        case S_EPILOGUE:
            i = len; /* ignored */
            break;
        default: rc = parser->result; break;
        }
    }
    parser->consumed += i;
    return rc;
}

int csgi_multipart__feed(csgi_multipart__parser *parser, const char *data, size_t len)
{
    if (parser->state == S_FAILED)
        return parser->result;
    /* Parse what fits under max_body first, so that the error does not
       depend on how the body was cut into pieces. */
    size_t room = parser->limits.max_body - parser->consumed;
    int rc = feed_bytes(parser, data, len < room ? len : room);
    if (rc == 0 && len > room)
        rc = fail(parser, CSGI_ETOOBIG, "body longer than %zu bytes", parser->limits.max_body);
    return rc;
}

int csgi_multipart__finish(csgi_multipart__parser *parser)
{
    if (parser->state == S_FAILED)
        return parser->result;
    if (parser->state == S_EPILOGUE)
        return 0;
    if (parser->state == S_PREAMBLE)
        return fail(parser, CSGI_EPARSE, "no multipart boundary in the body");
    return fail(parser, CSGI_EPARSE, "body ends before the closing boundary");
}
