/*
 * The request helpers' shared parts (internal): parameter maps, the
 * URL-encoded and cookie parsers, Content-Type parameters, and the
 * streaming multipart parser. They allocate from an arena, not from an
 * environ, so the fuzzers can drive them without a request.
 */
#ifndef CSGI_HELPERS_HELPERS_H
#define CSGI_HELPERS_HELPERS_H

#include "common/arena.h"

#include <csgi/app.h>
#include <csgi/loader.h>
#include <csgi/request.h>

#include <stddef.h>
#include <stdint.h>

/* Defaults of csgi_form_limits (documented in csgi/request.h). */
#define CSGI_HELPERS__MAX_FIELDS      1000
#define CSGI_HELPERS__MAX_QUERY       65536
#define CSGI_HELPERS__MAX_BODY        (10 * 1024 * 1024)
#define CSGI_HELPERS__MAX_PARTS       1000
#define CSGI_HELPERS__MAX_PART_HEADER 8192
#define CSGI_HELPERS__MAX_FIELD_SIZE  (1024 * 1024)
#define CSGI_HELPERS__MAX_FILE_SIZE   (10 * 1024 * 1024)
#define CSGI_HELPERS__SPOOL_THRESHOLD 65536

struct csgi_params {
    csgi_arena *arena; /* borrowed */
    csgi_param *items;
    size_t count;
    size_t capacity;
};

/* limits with every 0 replaced by its default; CSGI_EINVAL for an unknown
   version. in may be NULL (all defaults). */
int csgi_helpers__limits(csgi_form_limits *out, const csgi_form_limits *in);

/* An empty map in arena, or NULL. */
csgi_params *csgi_params__new(csgi_arena *arena);

/* Append a pair; name and value must already live in the arena (not
   copied). 0 or CSGI_ENOMEM. */
int csgi_params__append(csgi_params *params, const char *name, size_t name_len, const char *value,
                        size_t value_len);

/* Parse URL-encoded text into params (appending). 0, CSGI_ETOOBIG,
   CSGI_EPARSE (strict), CSGI_ENOMEM. */
int csgi_params__parse_urlencoded(csgi_params *params, const char *text, size_t len,
                                  size_t max_fields, int strict);

/* Parse a Cookie header into params (appending). 0, CSGI_ETOOBIG, CSGI_ENOMEM. */
int csgi_params__parse_cookies(csgi_params *params, const char *header, size_t len,
                               size_t max_fields);

/* Decode "+" and "%XX" of src into dst (which may be src); returns the
   length, or (size_t)-1 when strict and an escape is malformed. */
size_t csgi_helpers__form_decode(char *dst, const char *src, size_t len, int strict);

/* What a body refused with CSGI_ETOOBIG was longer than, into buf: "longer
   than N bytes" with the reader's max, or with the limit the request's
   csgi.input declared when the stream itself refused it, else "longer than
   the server allows" (a limit the helpers cannot know). */
void csgi_helpers__too_long(csgi_environ *environ, size_t max, char *buf, size_t size);

/*
 * Find the parameter `name` (case-insensitive) in a header value of the
 * form "type; a=1; b=\"two\"" (Content-Type, Content-Disposition). The
 * value is unquoted ("\\\"" and "\\\\" unescaped) into the arena. Returns
 * 1 with *out and *out_len, 0 when absent, CSGI_ENOMEM.
 */
int csgi_helpers__header_param(csgi_arena *arena, const char *value, size_t len, const char *name,
                               const char **out, size_t *out_len);

/* ---- Multipart ------------------------------------------------------------- */

/* An uploaded file as the parser builds it. */
typedef struct csgi_multipart__file {
    csgi_form_file file;
    struct csgi_multipart__file *next;
} csgi_multipart__file;

typedef struct csgi_multipart__parser {
    csgi_arena *arena;
    csgi_form_limits limits; /* resolved */
    int state;
    int result;      /* 0, or the final error */
    char *delimiter; /* "\r\n--" boundary */
    size_t delimiter_len;
    size_t matched; /* bytes of the delimiter matched so far */
    uint64_t consumed;
    size_t parts;

    /* the current part's header block */
    char *header;
    size_t header_len;
    size_t header_capacity;

    /* the current part's body */
    int is_file;
    const char *name;
    size_t name_len;
    char *data;
    size_t data_len;
    size_t data_capacity;
    csgi_multipart__file *file; /* the current file, when is_file */

    csgi_params *fields;
    csgi_multipart__file *files;
    csgi_multipart__file **files_tail;
    size_t file_count;

    char message[160];
} csgi_multipart__parser;

/* Prepare a parser for a body whose boundary is given (unquoted). limits
   must be resolved. 0, CSGI_EPARSE (bad boundary), CSGI_ENOMEM. */
int csgi_multipart__init(csgi_multipart__parser *parser, csgi_arena *arena, const char *boundary,
                         size_t boundary_len, const csgi_form_limits *limits);

/* Feed the next bytes of the body. 0, or an error (final: parser->result,
   parser->message, parser->consumed tell where). */
int csgi_multipart__feed(csgi_multipart__parser *parser, const char *data, size_t len);

/* The body ended: 0 when it closed with the final boundary, else CSGI_EPARSE. */
int csgi_multipart__finish(csgi_multipart__parser *parser);

/* A size from a factory's conf (the handler factories', the threadpool
   filter's): bytes, or with a k, m or g suffix (KiB, MiB, GiB) as nginx
   writes them; absent: 0 (the default). 0, or CSGI_EINVAL with error
   filled at the key's line. */
int csgi_helpers__conf_size(const csgi_conf *conf, const char *name, uint64_t *out,
                            csgi_load_error *error);

/* Write all of data to fd (a file: retried on EINTR and short writes).
   0, or CSGI_ESYSTEM with errno set. */
int csgi_helpers__write_all(int fd, const void *data, size_t len);

/* The call of the handler running on the request (handler.c), for what a
   handler returns: handlers nest (a filter handler in front of an
   application handler share one request object), so the adapter swaps its
   own in and the previous one back. */
void *csgi_request__swap_handler_call(csgi_request *request, void *call);
void *csgi_request__handler_call(const csgi_request *request);

#endif
