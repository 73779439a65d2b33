/*
 * How the gateway builds an environ (internal).
 *
 * An environ is made from a "source": the parsed request head, the
 * addresses, and an input provider. The engine's gateway is one source; the
 * in-process test client (src/testing/client.c) is another, which is why
 * the environ knows nothing of connections.
 *
 * The environ is built lazily: csgi_environ__new() only records the
 * source. The request line's keys and HTTP_ keys are answered from the
 * parsed head, and keys the server never sets live in the entry array
 * before the build; any other access materialises the CGI and HTTP_ keys,
 * all at once, in a handful of arena allocations (never one per header).
 * An application that never looks at its environ (hello world) pays
 * nothing for it (environ.c says more).
 */
#ifndef CSGI_GATEWAY_ENVIRON_PRIVATE_H
#define CSGI_GATEWAY_ENVIRON_PRIVATE_H

#include "common/arena.h"
#include "common/tls_info.h"

#include <csgi/environ.h>

#include <stddef.h>
#include <sys/socket.h>

/* The parsed request head (http/parser.h): helpers that include this
   header need none of the parser. */
struct csgi_http__head;

/* Where csgi.input reads from: the request's connection, as the environ
   sees it. */
typedef struct csgi_input__provider {
    /* As csgi_http__request_read: bytes, 0 at the end, CSGI_EAGAIN, or an error. */
    long (*read)(void *context, void *buf, size_t len);
    /* Bytes buffered and readable now without waiting. */
    size_t (*buffered)(void *context);
    /* What the connection's TLS proves, asked when the environ is built;
       NULL (or a NULL answer) when the request did not come over TLS. In
       this const table rather than the source, so a request pays nothing
       for it until its environ is built. */
    const csgi_tls__info *(*tls)(void *context);
} csgi_input__provider;

/* One log line (no newline) at a level of http/engine.h: CSGI_LOG__ERROR
   for csgi.errors, CSGI_LOG__WARN for what the environ notes about the
   request (dropped headers). */
typedef void (*csgi_environ__log_fn)(void *context, int level, const char *line);

typedef struct csgi_environ__source {
    const struct csgi_http__head *head; /* borrowed for the request's life */
    const struct sockaddr *peer;        /* AF_INET, AF_INET6 or AF_UNIX */
    const struct sockaddr *local;       /* the listener's address */
    const char *url_scheme;             /* "http" or "https" (https over TLS: input->tls) */
    int multithread;                    /* csgi.multithread */
    int multiprocess;                   /* csgi.multiprocess */
    const csgi_input__provider *input;
    void *input_context;
    csgi_environ__log_fn log; /* csgi.errors: one line, no newline */
    void *log_context;
    void *owner; /* the request's csgi_driver (driver.h), for csgi_environ__owner */
} csgi_environ__source;

/* Create an environ in arena from source (copied; its pointers borrowed).
   Returns NULL when memory is exhausted. */
csgi_environ *csgi_environ__new(csgi_arena *arena, const csgi_environ__source *source);

/* A copy of from for another thread (threadpool.c), in arena, reading
   source (borrowed, as by csgi_environ__init): every key from has (it is
   built first, in its own arena), as an environ of its own that the two
   threads each use alone. Strings and keys are borrowed from from, and so
   are pointer and JSON values (their destructors stay from's: they run
   when from's request ends); csgi.errors is the copy, and csgi.input the
   copy's own stream over source's provider until csgi_environ_set_input.
   from's memory must outlive the copy. NULL when memory is exhausted. */
csgi_environ *csgi_environ__copy(csgi_environ *from, csgi_arena *arena,
                                 const csgi_environ__source *source);

/* The source an environ reads (borrowed). */
const csgi_environ__source *csgi_environ__source_of(csgi_environ *environ);

/* The gateway's way, which allocates one block per request for its own
   state and the environ: csgi_environ__size() bytes at memory (aligned
   like any allocation) become an environ reading source, which is
   borrowed and must outlive the request. Cannot fail. */
size_t csgi_environ__size(void);
csgi_environ *csgi_environ__init(void *memory, csgi_arena *arena,
                                 const csgi_environ__source *source);

/* 1 while waiting on the input can bring news: a body is announced, not
   all read, and nothing of it is readable now (or a middleware's stream
   has not ended). 0 when a wait would last for ever. */
int csgi_input__pending(csgi_input *input);

/* 1 when the stream itself failed with CSGI_ETOOBIG (a limit of the server
   or of a middleware's stream, csgi_input_limit()), not a reader's max. */
int csgi_input__refused(csgi_input *input);

/* 0 when the stream has no body to read (no body announced, or a length
   of 0); else 1. */
int csgi_input__has_body(csgi_input *input);

/* The stream's byte count when known in advance (CONTENT_LENGTH for the
   server's, what a middleware declared for its own), else -1. */
int64_t csgi_input__length(const csgi_input *input);

/* The type a middleware's stream reads through (NULL for the server's). */
const csgi_input_type *csgi_input__type(const csgi_input *input);

/* Whether PATH_INFO is path (len bytes): a filter that answers one path
   (healthcheck) asks every request, most of which it passes on. Without a
   copy or a decoding when the request's path has no escape. */
int csgi_environ__path_info_is(csgi_environ *environ, const char *path, size_t len);

/* The stream csgi_environ_set_input() put in place of the server's, or
   NULL (then the server's own, which may not be set up yet). */
csgi_input *csgi_environ__replaced_input(csgi_environ *environ);

/* The gateway calls this when the input provider has news (bytes, end,
   error): it runs the callback set with csgi_input_on_ready, once. */
void csgi_environ__input_ready(csgi_environ *environ);

/* Store a pointer-like value of a given kind (csgi/json.h stores its
   values with kind CSGI_VALUE_JSON and json_decref). Takes pointer like
   csgi_environ_set_pointer(). */
int csgi_environ__set_value(csgi_environ *environ, const char *key, int kind, void *pointer,
                            csgi_destroy_fn destroy);
/* The pointer of a key holding the given kind, else NULL. */
void *csgi_environ__get_value(csgi_environ *environ, const char *key, int kind);

/* csgi_environ_get_n() without building the environ: the string value of a
   key that something set (middleware builds the environ when it sets a
   key), NULL when the environ was never built. The access log reads
   REMOTE_USER this way, for the price of a test when nobody looked. */
const char *csgi_environ__peek_n(csgi_environ *environ, const char *key, size_t *len);
/* What csgi_environ_get_n(environ, "REQUEST_METHOD", len) gives, without
   the key's lookup: a router reads it for every request. */
const char *csgi_environ__request_method(csgi_environ *environ, size_t *len);

/* PATH_INFO for a router, in a block of the request's arena made for the
   caller: `before` bytes of its own, then PATH_INFO as
   csgi_environ_get_n() gives it (*len bytes, not NUL-terminated), then
   `after` zero bytes. One allocation and one decoding (or copy), where a
   read of the key and a copy of it cost two of each. Returns the block
   (PATH_INFO at block + before), or NULL when memory is exhausted; *len is
   (size_t)-1 when PATH_INFO is not set or not a string. */
char *csgi_environ__path_info_block(csgi_environ *environ, size_t before, size_t after,
                                    size_t *len);

/* csgi_environ_set_pointer() without a destructor, for a key of csgi's own
   that has static storage (borrowed, not copied; key_len is its length)
   and that the server never sets ("csgi.routing_args"): it needs neither
   the build nor a copy, so that a router's record costs a request little.
   Returns 0, or CSGI_ENOMEM. */
int csgi_environ__set_static_pointer(csgi_environ *environ, const char *key, size_t key_len,
                                     void *pointer);

/* The source's owner: the driver of the request (csgi_body_resume,
   csgi_environ_event_base). */
void *csgi_environ__owner(csgi_environ *environ);

/* The arena of an environ. */
csgi_arena *csgi_environ__arena(csgi_environ *environ);

/* The environ key of a request header: "HTTP_" and name (len bytes) with
   letters upper-cased and '-' as '_', NUL-terminated, at key (5 + len + 1
   bytes). The one mapping of csgi: the environ's keys and
   csgi_request_header() both use it. Returns 0, or CSGI_EINVAL (key
   written anyway) when name is empty or holds '_' or a byte a field name
   may not: the environ drops headers with '_', so no key names them. */
int csgi_environ__header_key(char *key, const char *name, size_t len);

/* ---- path.c ---- */

/* csgi_environ__unescape flags: '+' is a space (form encoding); a
   malformed escape fails the decoding. */
#define CSGI_ENVIRON__PLUS_IS_SPACE 1u
#define CSGI_ENVIRON__STRICT        2u

/* The one percent-decoder: src into dst (which may be src), returns the
   decoded length. "%2F" becomes "/" like any other escape (documented in
   docs/environ.md); a malformed escape ("%zz", a lone "%") is kept as is,
   or with CSGI_ENVIRON__STRICT gives (size_t)-1. */
size_t csgi_environ__unescape(char *dst, const char *src, size_t len, unsigned flags);

/* Percent-decode a path or a parameter: csgi_environ__unescape without
   flags. */
static inline size_t csgi_environ__percent_decode(char *dst, const char *src, size_t len)
{
    return csgi_environ__unescape(dst, src, len, 0);
}

/* 1 unless the raw (still encoded) path climbs above the root once it is
   percent-decoded ("%2F" counts as "/") and its dot segments resolved, as
   "/a%2f..%2f..%2fx" does. The engine already refused paths that climb
   with "/" separators; the gateway refuses these with 400 before any
   application sees them, since PATH_INFO is the decoded path. */
int csgi_environ__path_is_safe(const char *path, size_t len);

/* 1 when a path with a '%' decodes to a climb above the root ("%2F..") or
   holds a NUL ("%00", which would cut the path short for C string
   functions): what the gateway refuses with 400 before any application
   sees it. */
int csgi_environ__decoded_path_refused(const char *path, size_t len);

/* csgi_environ__decoded_path_refused() for a raw request path: only paths
   with a '%' are decoded and checked. Paths are short: a plain loop beats
   a call to memchr, and this runs for every request. */
static inline int csgi_environ__path_refused(const char *path, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (path[i] == '%')
            return csgi_environ__decoded_path_refused(path, len);
    return 0;
}

/* A key and its length. */
typedef struct csgi_environ__key {
    const char *name;
    size_t len;
} csgi_environ__key;

/* Remove every key of keys (count of them, each beginning with prefix,
   sorted by length) that is set, in one pass over the environ: for filters
   that clear a set of headers (auth_token), which are rarely there. 0, or CSGI_ENOMEM
   (building the environ). */
int csgi_environ__remove_keys(csgi_environ *environ, const char *prefix,
                              const csgi_environ__key *keys, size_t count);

/* Set key, an HTTP_ key (key_len bytes, borrowed: static), to value (len
   bytes, NUL-terminated, borrowed: it must live as long as the request)
   without looking for the key first: only for a key the caller knows is
   not set (it has just removed it). 0, or CSGI_ENOMEM. */
int csgi_environ__append_borrowed(csgi_environ *environ, const char *key, size_t key_len,
                                  const char *value, size_t len);

/* csgi_environ__append_borrowed() for n keys at once (values[i], lens[i]
   bytes each): one check for room, no search unless a key was removed
   before the build. 0, or CSGI_ENOMEM. */
int csgi_environ__append_borrowed_many(csgi_environ *environ, const csgi_environ__key *keys,
                                       const char *const *values, const size_t *lens, size_t n);

/* csgi_environ_set_n() without copies: key (key_len bytes) is a static
   string and value (len bytes, NUL-terminated) static or in the request's
   memory, both borrowed. For a filter that sets a key to a constant
   ("https") or to what it made for the request. 0, or CSGI_ENOMEM. */
int csgi_environ__set_static(csgi_environ *environ, const char *key, size_t key_len,
                             const char *value, size_t len);

/* csgi_environ_get() of n HTTP_ keys (n <= 8), values[k] for keys[k]
   (NULL when absent): one pass over the parsed head when no middleware set
   or removed them before the build. A filter that reads a family of
   headers (X-Forwarded-*) asks once. 0, or CSGI_ENOMEM. */
int csgi_environ__get_headers(csgi_environ *environ, const csgi_environ__key *keys, size_t n,
                              const char **values);

/* Room for more keys without growing the array again: before a filter
   sets a known number of them. 0, or CSGI_ENOMEM. */
int csgi_environ__reserve(csgi_environ *environ, size_t more);

/* The client's address while REMOTE_ADDR is the one the server sets from
   it (nothing set or removed it before the build), else NULL: a filter
   that matches the client against networks needs no text. */
const struct sockaddr *csgi_environ__peer(csgi_environ *environ);

/* The pointer set under "csgi.request" (csgi_request_from_environ), or
   NULL, without a lookup: every filter asks for it. */
void *csgi_environ__request(csgi_environ *environ);

#endif
