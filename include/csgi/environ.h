/**
 * @file csgi/environ.h
 * @brief The environ: what an application knows about its request.
 *
 * The environ is csgi's counterpart of the WSGI environ (PEP 3333): a set of
 * named values describing one request. The server fills it with the CGI keys
 * (REQUEST_METHOD, SCRIPT_NAME, PATH_INFO, QUERY_STRING, CONTENT_TYPE,
 * CONTENT_LENGTH, SERVER_NAME, SERVER_PORT, SERVER_PROTOCOL, REMOTE_ADDR,
 * REMOTE_PORT, REQUEST_URI), one HTTP_ key per other request header, and the
 * gateway keys (csgi.version, csgi.url_scheme, csgi.input, csgi.errors,
 * csgi.multithread, csgi.multiprocess, csgi.run_once: the wsgi.* keys of
 * PEP 3333 under csgi's name). docs/environ.md describes every key.
 *
 * Middleware adds keys of its own: strings, integers, pointers with a
 * destructor, and JSON values (csgi/json.h).
 *
 * Lifetime: an environ lives as long as its request. Every pointer a getter
 * returns is borrowed and stays valid until the request ends, unless the
 * key is set again or removed. Everything is allocated from the request's
 * arena: nothing needs freeing.
 *
 * Threads: an environ belongs to the event loop thread running its request.
 */
#ifndef CSGI_ENVIRON_H
#define CSGI_ENVIRON_H

#include "common.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** One request's environ (opaque). */
typedef struct csgi_environ csgi_environ;

/** The request body stream of an environ (csgi.input; opaque). */
typedef struct csgi_input csgi_input;

/** What an environ key holds. */
typedef enum csgi_value_kind {
    CSGI_VALUE_NONE = 0, /**< the key is not set */
    CSGI_VALUE_STRING,   /**< bytes, NUL-terminated (may contain NUL after decoding) */
    CSGI_VALUE_INT,      /**< a signed 64-bit integer */
    CSGI_VALUE_POINTER,  /**< an opaque pointer, with an optional destructor */
    CSGI_VALUE_JSON      /**< a jansson json_t (see csgi/json.h) */
} csgi_value_kind;

/**
 * The string value of a key.
 *
 * @param environ the environ (borrowed)
 * @param key     the key, e.g. "PATH_INFO" or "HTTP_X_AUTH_TOKEN"
 * @return the value, NUL-terminated, borrowed until the request ends; NULL
 *         when the key is not set or does not hold a string.
 */
CSGI_EXTERN const char *csgi_environ_get(csgi_environ *environ, const char *key);

/**
 * The string value of a key and its length (a decoded PATH_INFO may contain
 * a NUL byte).
 *
 * @param environ the environ
 * @param key     the key
 * @param len     where to store the length; may be NULL
 * @return as csgi_environ_get(): borrowed until the request ends.
 */
CSGI_EXTERN const char *csgi_environ_get_n(csgi_environ *environ, const char *key, size_t *len);

/**
 * Set a key to a string (both copied).
 *
 * @param environ the environ
 * @param key     the key; any non-empty string
 * @param value   the value, NUL-terminated
 * @return 0, CSGI_EINVAL (empty key or NULL), CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_environ_set(csgi_environ *environ, const char *key, const char *value);

/** Like csgi_environ_set() with a counted value, which may contain NUL bytes. */
CSGI_EXTERN int csgi_environ_set_n(csgi_environ *environ, const char *key, const char *value,
                                   size_t len);

/**
 * Set a key to an integer.
 *
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_environ_set_int(csgi_environ *environ, const char *key, int64_t value);

/**
 * The integer value of a key.
 *
 * @param out where to store the value (not changed on error)
 * @return 0, CSGI_ENOTFOUND (not set), CSGI_EINVAL (the key holds another kind).
 */
CSGI_EXTERN int csgi_environ_get_int(csgi_environ *environ, const char *key, int64_t *out);

/** Destructor of a pointer value: runs once, when the request ends or the key is replaced. */
typedef void (*csgi_destroy_fn)(void *pointer);

/**
 * Set a key to a pointer, such as the token information an authentication
 * filter found for the application behind it.
 *
 * @param pointer the value; takes it: destroy(pointer) runs when the request
 *                ends or the key is set again or removed, also when this
 *                call fails.
 * @param destroy its destructor, or NULL
 * @return 0, CSGI_EINVAL, CSGI_ENOMEM.
 */
CSGI_EXTERN int csgi_environ_set_pointer(csgi_environ *environ, const char *key, void *pointer,
                                         csgi_destroy_fn destroy);

/**
 * The pointer value of a key.
 *
 * @return the pointer (borrowed), or NULL when not set or of another kind.
 */
CSGI_EXTERN void *csgi_environ_get_pointer(csgi_environ *environ, const char *key);

/** What a key holds (CSGI_VALUE_NONE when it is not set). */
CSGI_EXTERN csgi_value_kind csgi_environ_kind(csgi_environ *environ, const char *key);

/**
 * Remove a key (a pointer value's destructor runs).
 *
 * @return 0, or CSGI_ENOTFOUND.
 */
CSGI_EXTERN int csgi_environ_remove(csgi_environ *environ, const char *key);

/**
 * Iterate over the keys, in the order they were set (the server's keys
 * first).
 *
 * @param cursor start at 0; advanced by each call
 * @param key    where to store the next key (borrowed)
 * @param kind   where to store its kind; may be NULL
 * @return 1 with *key set, or 0 when there are no more keys.
 */
CSGI_EXTERN int csgi_environ_next(csgi_environ *environ, size_t *cursor, const char **key,
                                  csgi_value_kind *kind);

/**
 * Allocate memory that lives as long as the request.
 *
 * @return size bytes aligned for any type (borrowed: the request's arena
 *         releases them, never the caller), or NULL when memory is exhausted.
 */
CSGI_EXTERN void *csgi_environ_alloc(csgi_environ *environ, size_t size);

/**
 * Allocate zeroed memory that lives as long as the request: the
 * per-request state of a middleware, every field starting at 0 or NULL.
 *
 * @return size zeroed bytes aligned for any type (borrowed: the request's
 *         arena releases them, never the caller), or NULL when memory is
 *         exhausted.
 */
CSGI_EXTERN void *csgi_environ_alloc_zeroed(csgi_environ *environ, size_t size);

/**
 * Run fn(userdata) when the request ends (after the body's close), last
 * registered first.
 *
 * @param fn       the callback
 * @param userdata passed to fn; the caller's until fn runs
 * @return 0, CSGI_EINVAL (no fn), or CSGI_ENOMEM (then fn is not called: the
 *         caller keeps userdata).
 */
CSGI_EXTERN int csgi_environ_defer(csgi_environ *environ, csgi_destroy_fn fn, void *userdata);

/**
 * The request body stream (the value of csgi.input).
 *
 * @return the stream, borrowed, never NULL.
 */
CSGI_EXTERN csgi_input *csgi_environ_input(csgi_environ *environ);

/**
 * Write a line to the server's error log (csgi.errors), prefixed with the
 * request's method, path and client address.
 *
 * @param format printf-style format; a trailing newline is not needed.
 */
CSGI_EXTERN void csgi_environ_log(csgi_environ *environ, const char *format, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/**
 * csgi_environ_log() at a level of the application's choosing, so that its
 * own lines are not all errors: 0 error, 1 warning, 2 info, 3 debug (the
 * csgi_log_level values of csgi/server.h). The server drops lines above its
 * threshold (csgi_server_options.log_level, warning by default; info at
 * least with the verbose option); any other number is taken as an error.
 *
 * @param environ the request's environ (borrowed); NULL is ignored
 * @param level   the level
 * @param format  printf-style format; a trailing newline is not needed.
 */
CSGI_EXTERN void csgi_environ_log_at(csgi_environ *environ, int level, const char *format, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- csgi.input ---------------------------------------------------------- */

/** Called when body bytes, the body's end or an error can be read. */
typedef void (*csgi_input_ready_fn)(csgi_input *input, void *userdata);

/**
 * Read up to len bytes of the request body.
 *
 * Never reads past CONTENT_LENGTH; returns 0 at the end of the body (and on
 * every later call). The first read sends "100 Continue" to a client that
 * asked for it.
 *
 * @return the number of bytes read (> 0), 0 at the end of the body,
 *         CSGI_EAGAIN when no byte has arrived yet (see
 *         csgi_input_on_ready()), or an error: CSGI_EPARSE (malformed
 *         chunked body), CSGI_ETOOBIG (body over the server's limit),
 *         CSGI_ECLOSED (the client left), CSGI_ETIMEDOUT.
 */
CSGI_EXTERN long csgi_input_read(csgi_input *input, void *buf, size_t len);

/**
 * Read one line (through the next LF, which is kept), at most len - 1
 * bytes, NUL-terminated.
 *
 * @return as csgi_input_read(); CSGI_EAGAIN until the whole line (or the
 *         end of the body, or len - 1 bytes) is there.
 */
CSGI_EXTERN long csgi_input_readline(csgi_input *input, char *buf, size_t len);

/**
 * Read the whole body, at most max bytes.
 *
 * @param out where to store the body: NUL-terminated, in the request's
 *            arena (borrowed until the request ends)
 * @param len where to store its length
 * @return 0 with the whole body, CSGI_EAGAIN while it has not all arrived,
 *         CSGI_ETOOBIG when it is longer than max, or a csgi_input_read()
 *         error (CSGI_ETOOBIG too when the stream itself refuses the body:
 *         see csgi_input_limit()).
 */
CSGI_EXTERN int csgi_input_read_all(csgi_input *input, size_t max, const char **out, size_t *len);

/**
 * Ask to be called once when reading can make progress (bytes, the end, or
 * an error). Use it after CSGI_EAGAIN. A second call replaces the first.
 *
 * @param ready    the callback, or NULL to cancel
 * @param userdata passed to ready
 */
CSGI_EXTERN void csgi_input_on_ready(csgi_input *input, csgi_input_ready_fn ready, void *userdata);

/* ---- Replacing csgi.input (middleware that changes the request body) ------- */

/**
 * What a middleware's input stream does. It usually reads the stream it
 * replaces (csgi_environ_input() before csgi_environ_set_input()) and
 * changes the bytes: decompressing, counting, limiting, logging.
 */
typedef struct csgi_input_type {
    const char *name; /**< for logs */
    /**
     * Up to len bytes into buf: > 0, 0 at the end (asked again after it:
     * 0 again), CSGI_EAGAIN when nothing can be read yet, or an error.
     */
    long (*read)(void *state, void *buf, size_t len);
    /**
     * Optional. A reader of this stream waits (waiting 1) or stopped
     * waiting (0): wait on the inner stream with csgi_input_on_ready(), and
     * when it is ready call csgi_input_notify(input). Without it, readers
     * that got CSGI_EAGAIN are never woken.
     */
    void (*wait)(void *state, csgi_input *input, int waiting);
    /** Optional: called once when the request ends. */
    void (*close)(void *state);
} csgi_input_type;

/**
 * A new input stream reading through type, for csgi_environ_set_input().
 * read, readline, read_all and on_ready work on it as on the server's.
 *
 * @param type   the functions (borrowed; usually static)
 * @param state  passed to them; close(state) runs when the request ends,
 *               or now if this call fails
 * @param length how many bytes the stream gives, or -1 when unknown (read_all
 *               uses it to refuse a body longer than its max at once)
 * @return the stream (in the request's arena), or NULL (type without read,
 *         length below -1, out of memory).
 */
CSGI_EXTERN csgi_input *csgi_input_new(csgi_environ *environ, const csgi_input_type *type,
                                       void *state, int64_t length);

/**
 * Declare the most bytes a middleware's stream lets through: its read fails
 * with CSGI_ETOOBIG past them. The request helpers name this number when
 * the stream refuses a body ("body longer than 1024 bytes"); without it they
 * say the body is longer than the server allows, as they cannot know.
 *
 * @param input a stream made with csgi_input_new() (not the server's own)
 * @param max   the limit in bytes, at most INT64_MAX
 * @return 0, or CSGI_EINVAL (input NULL or the server's stream, max too large).
 */
CSGI_EXTERN int csgi_input_set_limit(csgi_input *input, uint64_t max);

/**
 * The limit a stream declared with csgi_input_set_limit().
 *
 * @param input the stream; NULL gives -1
 * @return the limit in bytes, or -1 when none was declared.
 */
CSGI_EXTERN int64_t csgi_input_limit(csgi_input *input);

/**
 * Make input the request's csgi.input, for the applications behind: what
 * csgi_environ_input() and the "csgi.input" key return from now on. The
 * stream it replaces stays readable by whoever holds it (the middleware).
 * Passing the server's own stream back restores it.
 *
 * @param input a stream of this request (csgi_input_new() or the original;
 *              borrowed: the request's arena holds it)
 * @return 0, or CSGI_EINVAL.
 */
CSGI_EXTERN int csgi_environ_set_input(csgi_environ *environ, csgi_input *input);

/**
 * Tell the readers of a middleware's stream that it can make progress: runs
 * the callback set with csgi_input_on_ready(), once. Called from the
 * type's wait machinery, typically from the inner stream's ready callback.
 */
CSGI_EXTERN void csgi_input_notify(csgi_input *input);

#ifdef __cplusplus
}
#endif

#endif /* CSGI_ENVIRON_H */
