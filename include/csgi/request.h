/**
 * @file csgi/request.h
 * @brief The request object: a WebOb-style reading of the environ.
 *
 * A request object reads one request's environ and answers the questions
 * an application asks of it: the method, the URL and its pieces, headers
 * by their HTTP names, the query string, the form (URL-encoded or
 * multipart with file uploads), cookies, and the body as bytes or JSON.
 *
 * @code
 * csgi_request *request;
 * const csgi_params *query;
 * if (csgi_request_from_environ(&request, environ) != 0 ||
 *     csgi_request_query(request, &query, NULL) != 0)
 *     return internal_error(environ, start_response);
 * const char *name = csgi_params_get(query, "name", NULL);
 * @endcode
 *
 * Memory: the request object and everything it hands out live in the
 * request's arena (csgi_environ_alloc()): nothing needs freeing, and every
 * pointer returned is borrowed until the request ends. The object is kept
 * in the environ under the key "csgi.request", so middleware and the
 * application share one object and parse each part of the request once.
 * Pointer arguments (names, texts, limits) are borrowed for the call only:
 * nothing keeps them afterwards.
 * Parsed results are remembered with the environ strings they came from:
 * when PATH_INFO, SCRIPT_NAME or QUERY_STRING change (through the request's
 * setters or csgi_environ_set()), the next call parses the new value.
 *
 * Body: the form, the body bytes and the JSON value all read csgi.input.
 * The body can be read only once; the request keeps what it read, so
 * calling csgi_request_body() after csgi_request_form() on a URL-encoded
 * body, or csgi_request_form() after csgi_request_body(), works. A
 * multipart body is parsed as it streams (file parts can be spooled to
 * disk), so csgi_request_body() cannot return it afterwards.
 *
 * Waiting for the body: an application handler (csgi/handler.h) runs when
 * its body has all arrived (and so does a filter handler that asks for
 * it: CSGI_HANDLER_BODY_GATHER), so there these readers have everything
 * and never answer CSGI_EAGAIN. A raw application may run before its body has
 * arrived: the body readers then return CSGI_EAGAIN; call
 * csgi_input_on_ready() and call the same function again from its
 * callback (return a body that answers CSGI_EAGAIN meanwhile, see
 * csgi/app.h). The parsing goes on where it stopped; no byte is read
 * twice.
 *
 * Threads: like its environ, a request belongs to the loop thread running
 * it.
 */
#ifndef CSGI_REQUEST_H
#define CSGI_REQUEST_H

#include "common.h"
#include "environ.h"
#include "negotiate.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A request object (opaque; lives in the request's arena). */
typedef struct csgi_request csgi_request;

/** A multi-value map of names to values, in their order (opaque). */
typedef struct csgi_params csgi_params;

/**
 * One name and value of a csgi_params.
 *
 * Both are NUL-terminated, and their lengths are given as well: after
 * percent-decoding ("%00") they may contain NUL bytes.
 */
typedef struct csgi_param {
    const char *name;  /**< the name, decoded */
    size_t name_len;   /**< its length in bytes */
    const char *value; /**< the value, decoded; "" when empty */
    size_t value_len;  /**< its length in bytes */
} csgi_param;

/**
 * Why a parser refused its input: where and what.
 *
 * Filled by the body parsers (form and JSON) when they return CSGI_EPARSE
 * or CSGI_ETOOBIG; an application turns it into a 400 (or 413) answer.
 */
typedef struct csgi_request_error {
    int line;        /**< JSON: the line of the error, from 1; else 0 */
    int column;      /**< JSON: the column (characters), from 1; else 0 */
    size_t position; /**< the byte offset in the body where the error was seen */
    char text[160];  /**< what is wrong, e.g. "part header without ':'" */
} csgi_request_error;

/** Version of csgi_form_limits; CSGI_FORM_LIMITS_INIT sets it. */
#define CSGI_FORM_LIMITS_VERSION 1

/**
 * Limits and options of the query, form and cookie parsers.
 *
 * Start from CSGI_FORM_LIMITS_INIT, which holds the documented defaults; a
 * size left 0 means its default too. Exceeding a limit gives CSGI_ETOOBIG.
 */
typedef struct csgi_form_limits {
    unsigned version; /**< CSGI_FORM_LIMITS_VERSION */

    size_t max_fields;      /**< names in a query, a URL-encoded form or a Cookie header: 1000 */
    size_t max_query;       /**< bytes of QUERY_STRING: 65536 */
    size_t max_body;        /**< bytes of a form body (URL-encoded or multipart): 10 MiB */
    size_t max_parts;       /**< parts of a multipart body, fields and files: 1000 */
    size_t max_part_header; /**< bytes of one part's header block: 8192 */
    size_t max_field_size;  /**< bytes of one multipart text field: 1 MiB */
    size_t max_file_size;   /**< bytes of one uploaded file: 10 MiB */
    size_t spool_threshold; /**< files larger than this go to a temporary file: 65536 */
    const char *spool_dir;  /**< where temporary files go (borrowed): NULL = $TMPDIR or /tmp */
    int strict;             /**< 1: malformed escapes and invalid UTF-8 are CSGI_EPARSE: 0 */
} csgi_form_limits;

/** Initializer for csgi_form_limits: every field its default. */
#define CSGI_FORM_LIMITS_INIT                                     \
    {                                                             \
        CSGI_FORM_LIMITS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, NULL, 0 \
    }

/* ---- The request object ---------------------------------------------------- */

/**
 * The request object of an environ, made on the first call and kept in the
 * environ (key "csgi.request") for every later one.
 *
 * @param out     where to store the request: borrowed, valid until the
 *                request ends
 * @param environ the request's environ (borrowed)
 * @return 0, CSGI_EINVAL (NULL argument), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_request_from_environ(csgi_request **out, csgi_environ *environ);

/** The environ a request reads (borrowed). */
CSGI_EXTERN csgi_environ *csgi_request_environ(const csgi_request *request);

/**
 * Use other limits for the parsers that have not run yet (those that ran
 * keep their results).
 *
 * @param limits copied; NULL restores the defaults
 * @return 0, or CSGI_EINVAL (a version this library does not know).
 */
CSGI_EXTERN int csgi_request_set_limits(csgi_request *request, const csgi_form_limits *limits);

/* ---- Request line and URL ---------------------------------------------------- */

/** The method (REQUEST_METHOD), e.g. "GET"; "GET" when it is not set. Borrowed. */
CSGI_EXTERN const char *csgi_request_method(csgi_request *request);

/** The URL scheme (csgi.url_scheme): "http" or "https"; "http" when not set. Borrowed. */
CSGI_EXTERN const char *csgi_request_scheme(csgi_request *request);

/**
 * The host the client asked for: the Host header as sent (with its port,
 * if any), else SERVER_NAME, followed by ":" SERVER_PORT unless that port
 * is the scheme's default (80 for http, 443 for https).
 *
 * @return the host, borrowed; NULL when memory is exhausted.
 */
CSGI_EXTERN const char *csgi_request_host(csgi_request *request);

/**
 * The scheme and host, e.g. "https://example.com:8443". A default port
 * (also one written in the Host header) is left out.
 *
 * @return the URL, borrowed; NULL when memory is exhausted.
 */
CSGI_EXTERN const char *csgi_request_host_url(csgi_request *request);

/**
 * The URL of the application: host URL followed by SCRIPT_NAME,
 * percent-encoded (bytes other than letters, digits and -._~!$&'()*+,;=:@/
 * become %XX).
 *
 * @return the URL, borrowed; NULL when memory is exhausted.
 */
CSGI_EXTERN const char *csgi_request_application_url(csgi_request *request);

/**
 * The URL of the resource without the query: application URL followed by
 * PATH_INFO, percent-encoded the same way.
 *
 * @return the URL, borrowed; NULL when memory is exhausted.
 */
CSGI_EXTERN const char *csgi_request_path_url(csgi_request *request);

/**
 * The whole URL: path URL followed by "?" and QUERY_STRING when the query
 * string is not empty (it is kept as sent: it is still encoded).
 *
 * @return the URL, borrowed; NULL when memory is exhausted.
 */
CSGI_EXTERN const char *csgi_request_url(csgi_request *request);

/**
 * PATH_INFO: the decoded path below the application ("" when not set).
 *
 * @param len where to store its length (it may contain a NUL); may be NULL
 * @return the path, borrowed until it changes.
 */
CSGI_EXTERN const char *csgi_request_path_info(csgi_request *request, size_t *len);

/**
 * SCRIPT_NAME: the decoded path of the application ("" when not set), borrowed
 * until it changes. As csgi_request_path_info().
 */
CSGI_EXTERN const char *csgi_request_script_name(csgi_request *request, size_t *len);

/** QUERY_STRING as sent, still encoded ("" when not set). Borrowed until it changes. */
CSGI_EXTERN const char *csgi_request_query_string(csgi_request *request);

/**
 * Set PATH_INFO (copied; may contain NUL). The query, URLs and path
 * segments read afterwards follow the new value.
 *
 * @return 0, CSGI_EINVAL (NULL path), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_request_set_path_info(csgi_request *request, const char *path, size_t len);

/** Set SCRIPT_NAME (copied). As csgi_request_set_path_info(). */
CSGI_EXTERN int csgi_request_set_script_name(csgi_request *request, const char *path, size_t len);

/**
 * Set QUERY_STRING (copied, NUL-terminated): the next csgi_request_query()
 * parses the new value.
 *
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_request_set_query_string(csgi_request *request, const char *query);

/**
 * The next segment of PATH_INFO, without moving it: what
 * csgi_request_path_info_pop() would return. Leading slashes are skipped:
 * "/a/b" and "//a/b" give "a"; "/" gives "".
 *
 * @param len where to store the segment's length; may be NULL
 * @return the segment (borrowed, NUL-terminated), or NULL when PATH_INFO
 *         is empty or memory is exhausted.
 */
CSGI_EXTERN const char *csgi_request_path_info_peek(csgi_request *request, size_t *len);

/**
 * Move the next segment of PATH_INFO to the end of SCRIPT_NAME, the way
 * a dispatcher descends one level (WebOb's path_info_pop()).
 *
 * The leading slashes and the segment up to the next slash move together:
 * SCRIPT_NAME "/app", PATH_INFO "/users/7" becomes "/app/users" and "/7",
 * and "users" is returned. PATH_INFO "/" gives the segment "" (and becomes
 * ""); an empty PATH_INFO gives nothing.
 *
 * @param out where to store the segment (borrowed, NUL-terminated), or
 *            NULL at the end
 * @param len where to store its length; may be NULL
 * @return 1 with a segment, 0 when PATH_INFO is empty, CSGI_EINVAL,
 *         CSGI_ENOMEM (answer 500: SCRIPT_NAME may have moved without
 *         PATH_INFO).
 */
CSGI_EXTERN int csgi_request_path_info_pop(csgi_request *request, const char **out, size_t *len);

/** The client's address (REMOTE_ADDR), or NULL when not set. Borrowed. */
CSGI_EXTERN const char *csgi_request_remote_addr(csgi_request *request);

/* ---- Headers -------------------------------------------------------------- */

/**
 * A request header by its HTTP name, case-insensitively: "Content-Type"
 * reads CONTENT_TYPE, "content-length" CONTENT_LENGTH, "X-Auth-Token"
 * HTTP_X_AUTH_TOKEN. Repeated headers were joined by the server with ", "
 * (Cookie with "; ").
 *
 * @param name the header's name: a token of at most 200 bytes
 * @param len  where to store the value's length; may be NULL
 * @return the value (borrowed), or NULL when absent or the name is not a
 *         valid header name.
 */
CSGI_EXTERN const char *csgi_request_header(csgi_request *request, const char *name, size_t *len);

/**
 * The media type of the body, lowercased and without parameters:
 * "multipart/form-data" for "Multipart/Form-Data; boundary=x".
 *
 * @return the type (borrowed), "" when there is no Content-Type, NULL when
 *         memory is exhausted.
 */
CSGI_EXTERN const char *csgi_request_content_type(csgi_request *request);

/**
 * The charset parameter of Content-Type (unquoted, as sent), e.g. "UTF-8".
 *
 * @return the charset (borrowed), or NULL when there is none (or memory is
 *         exhausted).
 */
CSGI_EXTERN const char *csgi_request_charset(csgi_request *request);

/**
 * The body's announced length (CONTENT_LENGTH).
 *
 * @return the length, or -1 when it is not set or not a decimal number
 *         (a chunked body has none).
 */
CSGI_EXTERN int64_t csgi_request_content_length(csgi_request *request);

/* ---- Parameters ------------------------------------------------------------- */

/** How many names and values there are (repeated names count each time). */
CSGI_EXTERN size_t csgi_params_count(const csgi_params *params);

/**
 * The index-th name and value, in the order they came.
 *
 * @return the pair (borrowed), or NULL when index >= csgi_params_count().
 */
CSGI_EXTERN const csgi_param *csgi_params_at(const csgi_params *params, size_t index);

/**
 * The first value of a name (names compare byte for byte, case matters).
 *
 * @param name NUL-terminated (iterate with csgi_params_at() for names
 *             holding a NUL)
 * @param len  where to store the value's length; may be NULL
 * @return the value (borrowed), or NULL when the name is absent.
 */
CSGI_EXTERN const char *csgi_params_get(const csgi_params *params, const char *name, size_t *len);

/**
 * Every value of a name, one per call:
 * @code
 * size_t cursor = 0;
 * const csgi_param *tag;
 * while ((tag = csgi_params_find(query, "tag", &cursor)))
 *     use(tag->value, tag->value_len);
 * @endcode
 *
 * @param cursor start at 0; advanced past the pair returned
 * @return the next pair with that name (borrowed), or NULL when there are
 *         no more.
 */
CSGI_EXTERN const csgi_param *csgi_params_find(const csgi_params *params, const char *name,
                                               size_t *cursor);

/** How many values a name has. */
CSGI_EXTERN size_t csgi_params_count_name(const csgi_params *params, const char *name);

/**
 * Parse application/x-www-form-urlencoded text (a query string or a form
 * body) into a new csgi_params.
 *
 * Pairs are separated by '&' only (a ';' is data: splitting on it lets two
 * parsers of one URL disagree, which caches can be fooled with). Empty
 * pairs are skipped; a pair without '=' has the value "". In names and
 * values '+' becomes a space and "%XX" the byte XX. A malformed escape
 * ("%zz", a lone '%') is kept as it is, unless limits->strict, which also
 * requires every name and value to be valid UTF-8.
 *
 * @param out     where to store the map (in environ's arena)
 * @param environ the request whose arena holds the map (borrowed)
 * @param text    the text (borrowed for the call); NULL only with len 0
 * @param len     its length (max_query bounds it for queries)
 * @param limits  max_fields and strict apply; NULL = defaults
 * @return 0, CSGI_EINVAL, CSGI_ETOOBIG (more than max_fields pairs),
 *         CSGI_EPARSE (strict only), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_params_parse_urlencoded(csgi_params **out, csgi_environ *environ,
                                             const char *text, size_t len,
                                             const csgi_form_limits *limits);

/**
 * Parse a Cookie header (RFC 6265 section 5.4 syntax, read as tolerantly as
 * browsers write it) into a new csgi_params.
 *
 * Pairs are separated by ';' and trimmed of spaces and tabs. A pair
 * without '=', with an empty name, or with a space, a control character,
 * '"' or ',' in its name, or a control character in its value, is skipped.
 * A value in double quotes loses them. Nothing is decoded: "%20" stays
 * "%20".
 *
 * @param out     where to store the map (in environ's arena)
 * @param environ the request (borrowed)
 * @param header  the header's value (borrowed for the call)
 * @param len     its length
 * @param limits  max_fields applies; NULL = defaults
 * @return 0, CSGI_EINVAL, CSGI_ETOOBIG (more than max_fields cookies), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_params_parse_cookies(csgi_params **out, csgi_environ *environ,
                                          const char *header, size_t len,
                                          const csgi_form_limits *limits);

/* ---- Query, cookies and form ------------------------------------------------ */

/**
 * The query string's names and values (see csgi_params_parse_urlencoded()),
 * parsed once per QUERY_STRING value.
 *
 * @param out   where to store the map (borrowed)
 * @param error filled on failure; may be NULL
 * @return 0, CSGI_ETOOBIG (over max_query bytes or max_fields pairs),
 *         CSGI_EPARSE (strict only), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_request_query(csgi_request *request, const csgi_params **out,
                                   csgi_request_error *error);

/**
 * The cookies of the Cookie header (see csgi_params_parse_cookies()); an
 * empty map when there is none.
 *
 * @param out where to store the map (borrowed)
 * @return 0, CSGI_ETOOBIG, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_request_cookies(csgi_request *request, const csgi_params **out);

/**
 * The value of one cookie (the first, when a name repeats).
 *
 * @param len where to store its length; may be NULL
 * @return the value (borrowed), or NULL when absent (or on an error of
 *         csgi_request_cookies()).
 */
CSGI_EXTERN const char *csgi_request_cookie(csgi_request *request, const char *name, size_t *len);

/** An uploaded file: one multipart part with a filename parameter. */
typedef struct csgi_form_file {
    const char *name;         /**< the form field's name */
    size_t name_len;          /**< its length */
    const char *filename;     /**< as sent (filename*=UTF-8'' decoded): untrusted, may be "" */
    size_t filename_len;      /**< its length */
    const char *content_type; /**< the part's Content-Type, or "text/plain" (RFC 7578) */
    uint64_t size;            /**< bytes */
    const char *data;         /**< the bytes (NUL-terminated) when kept in memory, else NULL */
    int fd;                   /**< else an unlinked temporary file (borrowed: closed at the end) */
} csgi_form_file;

/**
 * The form: the names and values of an application/x-www-form-urlencoded
 * or multipart/form-data body (RFC 7578), read on the first call.
 *
 * Another content type, or none, gives an empty map without reading the
 * body (whatever the method). Multipart text fields go into the map; parts
 * with a filename parameter are files (csgi_request_file()). A multipart
 * part must have a "Content-Disposition: form-data" header with a name;
 * text before the first boundary (preamble) and after the last (epilogue)
 * is ignored. Field values are bytes as sent: no charset is applied (with
 * limits->strict they must be UTF-8).
 *
 * @param out   where to store the map (borrowed)
 * @param error filled on CSGI_EPARSE and CSGI_ETOOBIG; may be NULL
 * @return 0; CSGI_EAGAIN when the body has not all arrived (call again
 *         once csgi_input_on_ready() fires: parsing resumes); CSGI_EPARSE
 *         (malformed body, e.g. no boundary or no closing boundary);
 *         CSGI_ETOOBIG (a limit); CSGI_ESTATE (the body was consumed by
 *         someone else); CSGI_ESYSTEM (a temporary file could not be
 *         written); CSGI_ENOMEM; or a csgi_input_read() error. An error
 *         is final: later calls return it again.
 */
CSGI_EXTERN int csgi_request_form(csgi_request *request, const csgi_params **out,
                                  csgi_request_error *error);

/** How many files the form holds (0 until csgi_request_form() succeeded). */
CSGI_EXTERN size_t csgi_request_file_count(csgi_request *request);

/**
 * The index-th uploaded file, in body order.
 *
 * @return the file (borrowed), or NULL when index is out of range.
 */
CSGI_EXTERN const csgi_form_file *csgi_request_file_at(csgi_request *request, size_t index);

/**
 * The first uploaded file of a form field.
 *
 * @return the file (borrowed), or NULL when there is none.
 */
CSGI_EXTERN const csgi_form_file *csgi_request_file(csgi_request *request, const char *name);

/**
 * Keep an uploaded file: make it a new file at path (relative to dirfd,
 * which may be AT_FDCWD), mode 0600, with its bytes on disk (fsync) before
 * the name appears, so that a crash never leaves part of a file under it.
 *
 * A file spooled to disk (fd) is linked into place without copying a byte
 * when path is on the filesystem of the spool directory (spool_dir of
 * csgi_form_limits: put it beside where files are kept) and that
 * filesystem has O_TMPFILE (ext4, xfs, btrfs, tmpfs); the saved file then
 * shares its data with the upload's temporary file until the request
 * ends. Otherwise the bytes are written into a new file first. The file
 * stays readable through the csgi_form_file afterwards.
 *
 * @param file  an uploaded file (csgi_request_file_at(), csgi_request_file())
 * @param dirfd the directory path is relative to, or AT_FDCWD
 * @param path  where the file goes; it must not exist
 * @return 0; CSGI_EINVAL (no file or path); CSGI_ESYSTEM, errno saying why
 *         (EEXIST when path exists; ENOSPC, EACCES, ...).
 */
CSGI_EXTERN int csgi_form_file_save(const csgi_form_file *file, int dirfd, const char *path);

/**
 * Read bytes of an uploaded file, wherever it is kept.
 *
 * @param file   the file (borrowed)
 * @param offset where to start
 * @param buf    where to copy
 * @param len    at most this many bytes
 * @return the number of bytes copied (0 at the end), CSGI_EINVAL, or
 *         CSGI_ESYSTEM (the temporary file could not be read).
 */
CSGI_EXTERN long csgi_form_file_read(const csgi_form_file *file, uint64_t offset, void *buf,
                                     size_t len);

/* ---- Body ------------------------------------------------------------------- */

/**
 * The whole body as bytes, at most max of them, read on the first call
 * (later calls return the same bytes, whatever their max).
 *
 * @param out where to store the body: NUL-terminated, borrowed
 * @param len where to store its length; may be NULL
 * @return 0; CSGI_EAGAIN (not all arrived: call again later);
 *         CSGI_ETOOBIG (longer than max); CSGI_ESTATE (a multipart form
 *         read it); CSGI_ENOMEM; or a csgi_input_read() error.
 */
CSGI_EXTERN int csgi_request_body(csgi_request *request, size_t max, const char **out, size_t *len);

struct json_t;

/**
 * The body parsed as JSON (any value, not only objects and arrays), with
 * jansson. The Content-Type is not checked: an application that wants
 * "application/json" compares csgi_request_content_type() itself.
 *
 * @param max   the body's size limit in bytes (see csgi_request_body())
 * @param out   where to store the value: borrowed (a json_t of csgi/json.h),
 *              valid until the request ends; json_incref() to keep it
 * @param error on CSGI_EPARSE: the line, column, byte position and text of
 *              jansson's error; may be NULL
 * @return 0, CSGI_EPARSE (not JSON, or an empty body), the errors of
 *         csgi_request_body() (CSGI_EAGAIN: call again later).
 */
CSGI_EXTERN int csgi_request_json(csgi_request *request, size_t max, struct json_t **out,
                                  csgi_request_error *error);

/* ---- Text ------------------------------------------------------------------- */

/**
 * Whether bytes are valid UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). A NUL byte is valid.
 *
 * @param text the bytes; NULL only with len 0
 * @return 1 when valid, else 0.
 */
CSGI_EXTERN int csgi_request_text_is_utf8(const char *text, size_t len);

/* ---- Negotiation and conditions -------------------------------------------------- */

/**
 * The offer the request's Accept header prefers (csgi_accept_best(): q-values,
 * the most specific range decides, ties keep the offers' order; no Accept
 * header accepts everything).
 *
 * @param offers media types, e.g. {"application/json", "text/html"}
 * @return the index of the best offer, or -1 when none is acceptable.
 */
CSGI_EXTERN int csgi_request_accept_best(csgi_request *request, const char *const *offers,
                                         size_t count);

/** The language tag Accept-Language prefers (csgi_accept_language_best()), or -1. */
CSGI_EXTERN int csgi_request_accept_language_best(csgi_request *request, const char *const *offers,
                                                  size_t count);

/** The content coding Accept-Encoding prefers (csgi_accept_encoding_best()), or -1. */
CSGI_EXTERN int csgi_request_accept_encoding_best(csgi_request *request, const char *const *offers,
                                                  size_t count);

/**
 * The request's If-Modified-Since date.
 *
 * @return 0 with *out set; CSGI_ENOTFOUND (no such header); CSGI_EPARSE (not
 *         an HTTP date: RFC 9110 says to ignore the header then).
 */
CSGI_EXTERN int csgi_request_if_modified_since(csgi_request *request, time_t *out);

/**
 * Whether the request's If-None-Match matches the current representation's
 * entity tag (weak comparison, as RFC 9110 13.1.2 asks): then a GET or HEAD
 * should get 304 Not Modified.
 *
 * @param etag the current entity tag (borrowed), or NULL when there is no
 *             current representation ("*" matches only when there is one)
 * @return 1 when it matches, 0 when not, CSGI_ENOTFOUND without the header.
 */
CSGI_EXTERN int csgi_request_if_none_match(csgi_request *request, const csgi_etag *etag);

/**
 * The byte range to send for the request's Range header and a
 * representation of length bytes (csgi_range_resolve()).
 *
 * @return 0 with *out set (answer 206); CSGI_ERANGE (answer 416);
 *         CSGI_ENOTFOUND (no Range header), CSGI_EPARSE or CSGI_ETOOBIG
 *         (send the whole representation).
 */
CSGI_EXTERN int csgi_request_range(csgi_request *request, int64_t length, csgi_range *out);

#ifdef __cplusplus
}
#endif

#endif /* CSGI_REQUEST_H */
