/*
 * The environ: PEP 3333's environ dictionary, in C.
 *
 * Storage. An environ is an array of entries in the request's arena, in the
 * order the keys were set: the server's keys first, then whatever
 * middleware adds. Environs hold 20 to 40 keys, so a lookup is a linear
 * scan that compares lengths before bytes; a hash table would cost more to
 * build than all the lookups of a typical request. Removing a key leaves a
 * hole (key_len 0, which no lookup matches) rather than moving the entries
 * behind it, so that an iteration cursor stays valid while keys are removed.
 * The array grows by csgi_vec's rule into a new arena block.
 *
 * Laziness. csgi_environ__new() only allocates the environ and copies the
 * source. The first call that needs a server key the parsed head cannot
 * give directly (or that iterates) materialises every server key at once:
 * a first pass over the parsed head counts the keys and sizes one block for
 * all their strings (HTTP_ names, header values, joined repeats, the
 * addresses), a second pass fills the entry array and that block.
 * Materialising an environ thus costs a handful of arena allocations
 * whatever the number of headers, and an application that never looks at
 * its environ costs one (the environ itself).
 *
 * Before that build, three kinds of access stay cheap, because their
 * answer is certain without it:
 *
 * - the request line's keys (REQUEST_METHOD, SCRIPT_NAME, PATH_INFO,
 *   QUERY_STRING, REQUEST_URI, SERVER_PROTOCOL) are made one at a time
 *   from the head and kept (line_value): a router reads two of them; the
 *   build later uses the same strings;
 * - an HTTP_ key, CONTENT_TYPE and CONTENT_LENGTH are read from the
 *   parsed head (header_fast); REMOTE_ADDR, REMOTE_PORT and csgi.url_scheme
 *   from the addresses (peer_fast);
 * - a key the server never sets ("csgi.routing_args", "csgi.request") is
 *   set, read and removed in the entry array;
 * - a server key that middleware sets or removes (HTTP_HOST, the identity
 *   headers auth_token replaces, csgi.url_scheme, REMOTE_ADDR, SCRIPT_NAME)
 *   gets an entry there too, a "shadow": a value, or a tombstone for a
 *   removed key. Every read looks at the entries first, so a shadow hides
 *   what the head would answer.
 *
 * The build puts the server's keys in front of the entries set before it
 * and settles the shadows (settle_shadows): the keys, their values and the
 * order of iteration are the same as if the environ had been built first.
 * Only csgi.input and csgi.errors, which stand for the environ's own
 * state, build it when they are set.
 *
 * The gateway keys are PEP 3333's wsgi.* keys under csgi's name:
 *
 *   csgi.version       string "1.0"           wsgi.version (1, 0)
 *   csgi.url_scheme    string "http"/"https"  wsgi.url_scheme
 *   csgi.input         pointer: csgi_input    wsgi.input
 *   csgi.errors        pointer: the environ   wsgi.errors (write with csgi_environ_log)
 *   csgi.multithread   int 0/1                wsgi.multithread
 *   csgi.multiprocess  int 0/1                wsgi.multiprocess
 *   csgi.run_once      int 0                  wsgi.run_once
 *
 * Values with a destructor (pointers, JSON values) are released by one
 * arena callback per environ, registered when the first such value is set:
 * it runs the destructors of the values still set when the request ends.
 * Replacing or removing a value runs its destructor at once, so each
 * destructor runs exactly once.
 */
#include "gateway/environ_private.h"
#include "gateway/input.h"
#include "http/engine.h"

#include "common/arena.h"
#include "common/chartab.h"
#include "common/vec.h"
#include "http/parser.h"

#include <csgi/common.h>
#include <csgi/environ.h>

#include <arpa/inet.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <assert.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Entries allocated beyond the server's keys, for middleware to add a few
   without growing the array. Kept small: with the 27 keys of a request
   with 10 headers the array (32 bytes an entry) stays under a quarter
   chunk, so it is carved from the arena's chunk rather than malloc'd. */
#define SPARE_ENTRIES 4

/* Room for a numeric address with brackets, and for a port. */
#define ADDRESS_ROOM (INET6_ADDRSTRLEN + 2)
#define PORT_ROOM    6

/* Log lines: the request's identification is cut to these lengths. */
#define LOG_METHOD_MAX  32
#define LOG_PATH_MAX    256
#define LOG_MESSAGE_MAX 1024
#define LOG_LINE_MAX    (LOG_METHOD_MAX + LOG_PATH_MAX + LOG_MESSAGE_MAX + ADDRESS_ROOM + 32)

#define LITERAL(s) s, sizeof(s) - 1

typedef struct entry {
    const char *key; /* NUL-terminated: static, in the string block, or copied */
    uint32_t key_len;
    uint8_t kind;  /* csgi_value_kind; 0 with key_len 0 marks a removed key */
    uint8_t flags; /* before the build: SHADOW, MOVED (a server key's entry) */
    union {
        struct {
            const char *bytes; /* NUL-terminated */
            size_t len;
        } string;
        int64_t integer;
        struct {
            void *pointer;
            csgi_destroy_fn destroy;
        } pointer;
    } value;
} entry;

/* The arithmetic behind SPARE_ENTRIES. */
_Static_assert(sizeof(entry) <= 32, "an entry should stay at 32 bytes");

/* Flags of a server key's entry set before the build (a "shadow"): its
   value replaces the server's in place, or with MOVED the server's key
   was removed first, so the server's goes and this one stays where it
   is. kind 0 with key_len set is a removed server key (a tombstone). */
#define SHADOW 1u
#define MOVED  2u

/* The request line's keys made one at a time (line_value). */
enum line_key { LINE_METHOD, LINE_PATH, LINE_QUERY, LINE_URI, LINE_KEYS };

struct csgi_environ {
    csgi_arena *arena;
    const csgi_environ__source *source; /* borrowed (csgi_environ__init) or copied */
    /* Until built, only keys the server never sets (is_server_key), in the
       order they were set; then the server's keys and those after them. */
    entry *entries;
    size_t count; /* entries used, holes included */
    size_t capacity;
    /* The gateway allocates its request state and the environ as one
       block, below the arena's inline limit (512 bytes): keep this small. */
    uint8_t built;                     /* the server's keys are in entries */
    uint8_t line_made;                 /* bit (1 << LINE_x): line_value[x] is made */
    uint8_t destructors_deferred;      /* destroy_values is registered */
    uint32_t line_len[LINE_KEYS];      /* the head's limits keep them small */
    const char *line_value[LINE_KEYS]; /* NUL-terminated */
    uint64_t lengths;                  /* bit (len % 64) for every key len ever in entries */
    uint64_t name_lengths;             /* bit (len % 64) for the head's names, bit 0: made */
    uint32_t shadows;                  /* entries with SHADOW, tombstones included */
    uint32_t tombstones;               /* shadows of kind 0 */
    void *request; /* csgi.request's pointer, kept for csgi_request_from_environ */
    csgi_input input;
    csgi_input *replaced; /* csgi_environ_set_input, else NULL */
};

/* With the gateway's request state (264 bytes) it must stay within the
   arena's inline allocation (512 bytes), or every request pays the slow
   path. */
_Static_assert(sizeof(struct csgi_environ) <= 248, "the environ outgrew the gateway's block");

/* The input stream is set up at its first use: most requests have no body. */
static csgi_input *input_of(csgi_environ *environ)
{
    csgi_input *input = &environ->input;
    if (!input->environ)
        csgi_input__init(input, environ, environ->source);
    return input;
}

/* ---- Small helpers --------------------------------------------------------- */

/* Field names compare case-insensitively (RFC 9110 5.1). */
static int name_equals(const csgi_http__header *a, const csgi_http__header *b)
{
    if (a->name_len != b->name_len)
        return 0;
    for (size_t i = 0; i < a->name_len; i++)
        if (csgi_char__lower((unsigned char)a->name[i]) !=
            csgi_char__lower((unsigned char)b->name[i]))
            return 0;
    return 1;
}

/* Copy len bytes to *cursor, NUL-terminate, advance; return the copy. */
static const char *put(char **cursor, const char *s, size_t len)
{
    char *copy = *cursor;
    if (len)
        memcpy(copy, s, len);
    copy[len] = '\0';
    *cursor += len + 1;
    return copy;
}

/* Write port in decimal; return the number of digits. */
static size_t format_port(char *out, unsigned port)
{
    char digits[PORT_ROOM];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + port % 10);
        port /= 10;
    } while (port);
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    return n;
}

/*
 * A socket address as numbers: the address (IPv6 in brackets when bracket
 * is set, as a URL needs it) into address, the port into port. Returns 0,
 * or -1 for a family without numbers (AF_UNIX) or no address at all.
 */
static int format_address(const struct sockaddr *sa, int bracket, char *address,
                          size_t *address_len, char *port, size_t *port_len)
{
    unsigned number;

    if (sa && sa->sa_family == AF_INET) {
        /* By hand: glibc's inet_ntop formats with sprintf, some 1 700
           instructions, more than the rest of the environ together. */
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        const unsigned char *octet = (const unsigned char *)&in->sin_addr;
        char *p = address;
        for (int i = 0; i < 4; i++) {
            unsigned v = octet[i];
            if (v >= 100)
                *p++ = (char)('0' + v / 100);
            if (v >= 10)
                *p++ = (char)('0' + v / 10 % 10);
            *p++ = (char)('0' + v % 10);
            *p++ = '.';
        }
        p[-1] = '\0';
        *address_len = (size_t)(p - 1 - address);
        number = ntohs(in->sin_port);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        char *text = bracket ? address + 1 : address;
        if (!inet_ntop(AF_INET6, &in6->sin6_addr, text, INET6_ADDRSTRLEN))
            return -1;
        *address_len = strlen(text);
        if (bracket) {
            address[0] = '[';
            address[++*address_len] = ']';
            address[++*address_len] = '\0';
        }
        number = ntohs(in6->sin6_port);
    } else {
        return -1;
    }
    *port_len = format_port(port, number);
    port[*port_len] = '\0';
    return 0;
}

/* ---- Entries --------------------------------------------------------------- */

/* The bit of a key's length in environ->lengths: most lookups of a key
   that is not there end at it, without a scan. */
static inline uint64_t length_bit(size_t key_len)
{
    return (uint64_t)1 << (key_len & 63);
}

static entry *find(csgi_environ *environ, const char *key, size_t key_len)
{
    if (!(environ->lengths & length_bit(key_len)))
        return NULL;
    entry *e = environ->entries;
    entry *end = e + environ->count;
    for (; e < end; e++)
        if (e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
            return e;
    return NULL;
}

/* A new entry at the end for key (borrowed: static, or a copy of the
   caller's), no value yet, with flags (SHADOW counted); NULL when the
   array cannot grow. */
static inline entry *append(csgi_environ *environ, const char *key, size_t key_len, uint8_t flags)
{
    if (environ->capacity == 0) {
        /* The first key set before the build (a router's record, the
           request object): room for a few, carved inline. */
        environ->entries = csgi_arena__alloc(environ->arena, SPARE_ENTRIES * sizeof(entry));
        if (!environ->entries)
            return NULL;
        environ->capacity = SPARE_ENTRIES;
    } else if (environ->count == environ->capacity) {
        /* No cap but memory: each key is a call of the application's. */
        void *entries = environ->entries;
        if (csgi_vec__reserve_in(environ->arena, &entries, &environ->capacity, sizeof(entry),
                                 environ->count, environ->count + 1, SIZE_MAX) != 0)
            return NULL;
        environ->entries = entries;
    }
    entry *e = &environ->entries[environ->count++];
    e->key = key;
    e->key_len = (uint32_t)key_len;
    e->kind = CSGI_VALUE_NONE;
    e->flags = flags;
    environ->lengths |= length_bit(key_len);
    environ->shadows += (flags & SHADOW) != 0;
    return e;
}

/* The next entry of a materialising environ (sized in advance), for key. */
static entry *add(csgi_environ *environ, const char *key, size_t key_len, int kind)
{
    entry *e = &environ->entries[environ->count++];
    e->key = key;
    e->key_len = (uint32_t)key_len;
    e->kind = (uint8_t)kind;
    e->flags = 0;
    environ->lengths |= length_bit(key_len);
    return e;
}

static void add_string(csgi_environ *environ, const char *key, size_t key_len, const char *bytes,
                       size_t len)
{
    entry *e = add(environ, key, key_len, CSGI_VALUE_STRING);
    e->value.string.bytes = bytes;
    e->value.string.len = len;
}

static void add_int(csgi_environ *environ, const char *key, size_t key_len, int64_t value)
{
    add(environ, key, key_len, CSGI_VALUE_INT)->value.integer = value;
}

static void add_pointer(csgi_environ *environ, const char *key, size_t key_len, void *pointer)
{
    entry *e = add(environ, key, key_len, CSGI_VALUE_POINTER);
    e->value.pointer.pointer = pointer;
    e->value.pointer.destroy = NULL;
}

/* Run the destructor of a value that was just replaced or removed. */
static void release(const entry *old)
{
    if ((old->kind == CSGI_VALUE_POINTER || old->kind == CSGI_VALUE_JSON) &&
        old->value.pointer.destroy)
        old->value.pointer.destroy(old->value.pointer.pointer);
}

/* ---- The request line's keys ----------------------------------------------- */

/* The common methods as static strings: REQUEST_METHOD without a copy. */
static const char *known_method(const char *method, size_t len)
{
    switch (len) {
    case 3:
        if (memcmp(method, "GET", 3) == 0)
            return "GET";
        if (memcmp(method, "PUT", 3) == 0)
            return "PUT";
        return NULL;
    case 4:
        if (memcmp(method, "POST", 4) == 0)
            return "POST";
        if (memcmp(method, "HEAD", 4) == 0)
            return "HEAD";
        return NULL;
    case 5: return memcmp(method, "PATCH", 5) == 0 ? "PATCH" : NULL;
    case 6: return memcmp(method, "DELETE", 6) == 0 ? "DELETE" : NULL;
    case 7: return memcmp(method, "OPTIONS", 7) == 0 ? "OPTIONS" : NULL;
    default: return NULL;
    }
}

/*
 * The value of one of the request line's keys, made from the head at the
 * first call and kept, so that a read before the build, the build and any
 * later read give the same string. NULL when memory is exhausted (nothing
 * kept then).
 */
static const char *line_value(csgi_environ *environ, enum line_key which, size_t *len)
{
    if (environ->line_made & (1u << which)) {
        *len = environ->line_len[which];
        return environ->line_value[which];
    }
    const csgi_http__head *head = environ->source->head;
    const char *value = NULL;
    size_t n = 0;
    switch (which) {
    case LINE_METHOD:
        n = head->method_len;
        value = known_method(head->method, n);
        if (!value)
            value = csgi_arena__strndup(environ->arena, head->method, n);
        break;
    case LINE_PATH:
        if (head->form == CSGI_HTTP__FORM_ASTERISK) {
            value = "*";
            n = 1;
        } else if (head->form == CSGI_HTTP__FORM_AUTHORITY) {
            value = "";
        } else {
            char *path = csgi_arena__alloc(environ->arena, head->path_len + 1);
            if (path) {
                n = csgi_environ__percent_decode(path, head->path, head->path_len);
                path[n] = '\0';
            }
            value = path;
        }
        break;
    case LINE_QUERY:
        n = head->query ? head->query_len : 0;
        value = n ? csgi_arena__strndup(environ->arena, head->query, n) : "";
        break;
    default:
        n = head->target_len;
        value = csgi_arena__strndup(environ->arena, head->target, n);
        break;
    }
    if (!value)
        return NULL;
    if (n <= UINT32_MAX) { /* else (a head over 4 GiB) made again each time */
        environ->line_value[which] = value;
        environ->line_len[which] = (uint32_t)n;
        environ->line_made |= (uint8_t)(1u << which);
    }
    *len = n;
    return value;
}

/*
 * Whether the server sets key (len bytes, len > 0) when it builds the
 * environ: the CGI keys, every HTTP_ key, the seven csgi. gateway keys.
 * Any other key may live in the entries before the build. Each gateway key
 * has a length of its own, so one compare decides the "csgi." keys.
 */
static int is_server_key(const char *key, size_t len)
{
    static const char *const gateway[] = {
        [10] = "csgi.input",        [11] = "csgi.errors",     [12] = "csgi.version",
        [13] = "csgi.run_once",     [15] = "csgi.url_scheme", [16] = "csgi.multithread",
        [17] = "csgi.multiprocess",
    };
    static const struct {
        const char *name;
        size_t len;
    } cgi[] = {
        {LITERAL("PATH_INFO")},
        {LITERAL("SCRIPT_NAME")},
        {LITERAL("SERVER_NAME")},
        {LITERAL("SERVER_PORT")},
        {LITERAL("REMOTE_ADDR")},
        {LITERAL("REMOTE_PORT")},
        {LITERAL("REQUEST_URI")},
        {LITERAL("QUERY_STRING")},
        {LITERAL("CONTENT_TYPE")},
        {LITERAL("REQUEST_METHOD")},
        {LITERAL("CONTENT_LENGTH")},
        {LITERAL("SERVER_PROTOCOL")},
        /* Set over TLS only; a key middleware sets before the build
           still goes after the server's, as if the build came first. */
        {LITERAL("SSL_PROTOCOL")},
        {LITERAL("SSL_CIPHER")},
        {LITERAL("SSL_SESSION_RESUMED")},
        {LITERAL("SSL_TLS_SNI")},
        {LITERAL("SSL_CLIENT_VERIFY")},
        {LITERAL("SSL_CLIENT_S_DN")},
        {LITERAL("SSL_CLIENT_I_DN")},
        {LITERAL("SSL_CLIENT_CERT")},
    };
    if (key[0] == 'c') {
        /* Every gateway key is longer than a word: its first word rejects
           most other keys ("csgi.routing_args") without a call. */
        uint64_t word, want;
        if (len >= sizeof(gateway) / sizeof(gateway[0]) || !gateway[len])
            return 0;
        memcpy(&word, key, 8);
        memcpy(&want, gateway[len], 8);
        return word == want && memcmp(key + 8, gateway[len] + 8, len - 8) == 0;
    }
    if (key[0] == 'H')
        return len >= 5 && memcmp(key, "HTTP", 4) == 0 &&
               (key[4] == '_' ? len > 5 : len == 5 && key[4] == 'S');
    /* HTTP_*, and HTTPS (set over TLS only) above; every other server key
       begins with one of these letters and is longer than a word: its
       first word is compared inline. */
    if (key[0] != 'C' && key[0] != 'P' && key[0] != 'Q' && key[0] != 'R' && key[0] != 'S')
        return 0;
    for (size_t i = 0; i < sizeof(cgi) / sizeof(cgi[0]); i++)
        if (cgi[i].len == len && memcmp(key, cgi[i].name, 8) == 0 &&
            memcmp(key + 8, cgi[i].name + 8, len - 8) == 0)
            return 1;
    return 0;
}

/* ---- Materialising the server's keys -------------------------------------- */

enum header_role { ROLE_HTTP, ROLE_CONTENT_TYPE, ROLE_CONTENT_LENGTH, ROLE_DROPPED };

static int header_role(const csgi_http__head *head, const csgi_http__header *h)
{
    /* CGI turns '-' into '_', so "X-Auth_Token" and "X-Auth-Token" would
       both become HTTP_X_AUTH_TOKEN: a proxy that checks one spelling could
       be fooled by the other. Names with '_' are dropped (as nginx does);
       the parser noted whether the head has any. */
    if (head->underscore && memchr(h->name, '_', h->name_len))
        return ROLE_DROPPED;
    if (h->name_len == 12 && csgi_char__equal_nocase(h->name, "content-type", 12))
        return ROLE_CONTENT_TYPE;
    if (h->name_len == 14 && csgi_char__equal_nocase(h->name, "content-length", 14))
        return ROLE_CONTENT_LENGTH;
    return ROLE_HTTP;
}

/* Whether an earlier header has the same name (then i joins its value). */
static int is_repeat(const csgi_http__head *head, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (name_equals(&head->headers[j], &head->headers[i]))
            return 1;
    return 0;
}

/* Write the values of header i and of the later ones with its name, joined. */
static const char *put_joined(char **cursor, const csgi_http__head *head, size_t i, size_t *len)
{
    const csgi_http__header *first = &head->headers[i];
    /* Cookie pairs are separated by "; " (RFC 6265 5.4); RFC 9113 8.2.3
       joins split Cookie fields the same way. */
    int cookie = first->name_len == 6 && csgi_char__equal_nocase(first->name, "cookie", 6);
    char *start = *cursor;
    char *p = start;

    memcpy(p, first->value, first->value_len);
    p += first->value_len;
    for (size_t j = i + 1; j < head->header_count; j++) {
        const csgi_http__header *h = &head->headers[j];
        if (!name_equals(h, first))
            continue;
        *p++ = cookie ? ';' : ',';
        *p++ = ' ';
        memcpy(p, h->value, h->value_len);
        p += h->value_len;
    }
    *p = '\0';
    *len = (size_t)(p - start);
    *cursor = p + 1;
    return start;
}

/*
 * SERVER_NAME and SERVER_PORT: from the Host (or the target's authority),
 * with the scheme's default port; without one (HTTP/1.0, or an empty Host),
 * from the listener's address. An IPv6 literal keeps its brackets, since
 * PEP 3333 rebuilds URLs as SERVER_NAME ":" SERVER_PORT.
 */
static void add_server_address(csgi_environ *environ, char **cursor, int https)
{
    const csgi_environ__source *source = environ->source;
    const csgi_http__head *head = source->head;
    const char *name = NULL;
    size_t name_len = 0;
    const char *port = NULL;
    size_t port_len = 0;

    if (head->host && head->host_len) {
        const char *host = head->host;
        const char *end = host + head->host_len;
        const char *colon;
        if (host[0] == '[') {
            const char *bracket = memchr(host, ']', head->host_len);
            colon = bracket && bracket + 1 < end ? bracket + 1 : NULL;
        } else {
            colon = memchr(host, ':', head->host_len);
        }
        name_len = colon ? (size_t)(colon - host) : head->host_len;
        name = put(cursor, host, name_len);
        if (colon && colon + 1 < end) {
            port_len = (size_t)(end - colon - 1);
            port = put(cursor, colon + 1, port_len);
        }
    } else {
        char *address = *cursor;
        char *number = address + ADDRESS_ROOM + 1;
        if (format_address(source->local, 1, address, &name_len, number, &port_len) == 0) {
            name = address;
            port = number;
            *cursor = number + port_len + 1;
        } else {
            /* A Unix socket has no name or port to offer. */
            name = "localhost";
            name_len = 9;
            port = "";
        }
    }
    if (!port) {
        port = https ? "443" : "80";
        port_len = https ? 3 : 2;
    }
    add_string(environ, LITERAL("SERVER_NAME"), name, name_len);
    add_string(environ, LITERAL("SERVER_PORT"), port, port_len);
}

/* REMOTE_ADDR and REMOTE_PORT, numeric, IPv6 without brackets as CGI has
   it. A peer on a Unix socket has neither: both are "" (rather than absent,
   so that code reading them needs no special case). */
static void add_remote_address(csgi_environ *environ, char **cursor)
{
    char *address = *cursor;
    char *port = address + ADDRESS_ROOM + 1;
    size_t address_len, port_len;

    if (format_address(environ->source->peer, 0, address, &address_len, port, &port_len) == 0) {
        *cursor = port + port_len + 1;
        add_string(environ, LITERAL("REMOTE_ADDR"), address, address_len);
        add_string(environ, LITERAL("REMOTE_PORT"), port, port_len);
    } else {
        add_string(environ, LITERAL("REMOTE_ADDR"), "", 0);
        add_string(environ, LITERAL("REMOTE_PORT"), "", 0);
    }
}

/* A line about what the client sent (a dropped header): a warning, not
   an error of the application (csgi_environ_log). */
static void log_warning(csgi_environ *environ, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void log_dropped(csgi_environ *environ, const csgi_http__header *first, size_t dropped)
{
    int name_len = first->name_len > 64 ? 64 : (int)first->name_len;
    if (dropped == 1)
        log_warning(environ, "dropped header %.*s: underscores are not allowed", name_len,
                    first->name);
    else
        log_warning(environ, "dropped header %.*s (and %zu more): underscores are not allowed",
                    name_len, first->name, dropped - 1);
}

/* Server keys beside the HTTP_ and CONTENT_ ones: REQUEST_METHOD,
   SCRIPT_NAME, PATH_INFO, QUERY_STRING, SERVER_NAME, SERVER_PORT,
   SERVER_PROTOCOL, REMOTE_ADDR, REMOTE_PORT, REQUEST_URI and the 7
   gateway keys. */
#define FIXED_KEYS 17

/* The most keys add_tls sets. */
#define TLS_KEYS 9

/*
 * What a TLS connection proves, under mod_ssl's names (docs/environ.md):
 * HTTPS, SSL_PROTOCOL, SSL_CIPHER, SSL_SESSION_RESUMED, SSL_TLS_SNI when
 * the client named the server, SSL_CLIENT_VERIFY, and with a client
 * certificate SSL_CLIENT_S_DN, SSL_CLIENT_I_DN (RFC 2253) and
 * SSL_CLIENT_CERT (PEM). The strings are the connection's, which outlives
 * its requests: no copy.
 */
static void add_tls(csgi_environ *environ, const csgi_tls__info *tls)
{
    add_string(environ, LITERAL("HTTPS"), LITERAL("on"));
    const struct {
        const char *key;
        size_t key_len;
        const char *value;
    } keys[] = {
        {LITERAL("SSL_PROTOCOL"), tls->protocol},
        {LITERAL("SSL_CIPHER"), tls->cipher},
        {LITERAL("SSL_SESSION_RESUMED"), tls->session},
        {LITERAL("SSL_TLS_SNI"), tls->server_name},
        {LITERAL("SSL_CLIENT_VERIFY"), tls->client_verify},
        {LITERAL("SSL_CLIENT_S_DN"), tls->client_s_dn},
        {LITERAL("SSL_CLIENT_I_DN"), tls->client_i_dn},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (keys[i].value)
            add_string(environ, keys[i].key, keys[i].key_len, keys[i].value, strlen(keys[i].value));
    if (tls->client_cert)
        add_string(environ, LITERAL("SSL_CLIENT_CERT"), tls->client_cert, tls->client_cert_len);
}

/*
 * The server's keys are built (the first server_count entries), the keys
 * set before behind them: each shadow takes effect as if the build had
 * come first. A value replaces the server's in place; a tombstone removes
 * the server's key; a value set after a removal (MOVED) removes the
 * server's and stays behind. What remains of a shadow is an ordinary key.
 */
static void settle_shadows(csgi_environ *environ, size_t server_count)
{
    entry *server = environ->entries;
    for (entry *e = server + server_count, *end = server + environ->count; e < end; e++) {
        if (!(e->flags & SHADOW))
            continue;
        entry *own = NULL;
        for (size_t i = 0; i < server_count; i++)
            if (server[i].key_len == e->key_len && memcmp(server[i].key, e->key, e->key_len) == 0) {
                own = &server[i];
                break;
            }
        int removed = e->kind == CSGI_VALUE_NONE;
        if (own && (removed || (e->flags & MOVED))) {
            own->key_len = 0;
            own->kind = CSGI_VALUE_NONE;
        } else if (own) {
            own->kind = e->kind;
            own->value = e->value;
            removed = 1; /* its value moved into the server's entry */
        }
        if (removed) {
            e->key_len = 0;
            e->kind = CSGI_VALUE_NONE;
        }
        e->flags = 0;
    }
    environ->shadows = 0;
    environ->tombstones = 0;
}

static int materialise(csgi_environ *environ)
{
    if (environ->built)
        return 0;

    const csgi_environ__source *source = environ->source;
    const csgi_http__head *head = source->head;
    const csgi_http__header *first_dropped = NULL;
    size_t dropped = 0;
    size_t keys = FIXED_KEYS;
    const csgi_tls__info *tls =
        source->input && source->input->tls ? source->input->tls(source->input_context) : NULL;
    const char *scheme = tls ? "https" : source->url_scheme ? source->url_scheme : "http";
    int https = strcmp(scheme, "https") == 0;
    if (tls)
        keys += TLS_KEYS;

    /* The request line's keys, the strings a read before the build gave. */
    const char *line[LINE_KEYS];
    size_t line_len[LINE_KEYS];
    for (int which = 0; which < LINE_KEYS; which++) {
        line[which] = line_value(environ, (enum line_key)which, &line_len[which]);
        if (!line[which])
            return CSGI_ENOMEM;
    }

    /* Pass 1: count the keys and size the string block. Every length is
       bounded by the head's size, so the sum cannot overflow. */
    size_t bytes = head->host_len + 2 + 2 * (ADDRESS_ROOM + 1 + PORT_ROOM);
    for (size_t i = 0; i < head->header_count; i++) {
        const csgi_http__header *h = &head->headers[i];
        int role = header_role(head, h);
        if (role == ROLE_DROPPED) {
            if (!dropped++)
                first_dropped = h;
            continue;
        }
        if (is_repeat(head, i)) {
            bytes += 2 + h->value_len;
            continue;
        }
        keys++;
        bytes += h->value_len + 1;
        if (role == ROLE_HTTP)
            bytes += 5 + h->name_len + 1;
    }

    /* The keys set before the build (none the server sets) go after the
       server's, where they would be had the build come first. */
    entry *before = environ->entries;
    size_t before_count = environ->count;
    size_t capacity = keys + before_count + SPARE_ENTRIES;
    entry *entries = csgi_arena__alloc(environ->arena, capacity * sizeof(entry));
    char *block = csgi_arena__alloc(environ->arena, bytes);
    if (!entries || !block)
        return CSGI_ENOMEM;
    environ->entries = entries;
    environ->capacity = capacity;
    environ->count = 0;

    /* Pass 2: fill. */
    char *cursor = block;
    const char *value;
    size_t len;

    add_string(environ, LITERAL("REQUEST_METHOD"), line[LINE_METHOD], line_len[LINE_METHOD]);
    add_string(environ, LITERAL("SCRIPT_NAME"), "", 0);
    add_string(environ, LITERAL("PATH_INFO"), line[LINE_PATH], line_len[LINE_PATH]);
    add_string(environ, LITERAL("QUERY_STRING"), line[LINE_QUERY], line_len[LINE_QUERY]);

    /* CONTENT_TYPE before CONTENT_LENGTH whatever the headers' order;
       repeats were joined to the first. */
    for (int role = ROLE_CONTENT_TYPE; role <= ROLE_CONTENT_LENGTH; role++) {
        for (size_t i = 0; i < head->header_count; i++) {
            if (header_role(head, &head->headers[i]) != role)
                continue;
            value = put_joined(&cursor, head, i, &len);
            if (role == ROLE_CONTENT_TYPE)
                add_string(environ, LITERAL("CONTENT_TYPE"), value, len);
            else
                add_string(environ, LITERAL("CONTENT_LENGTH"), value, len);
            break;
        }
    }

    add_server_address(environ, &cursor, https);
    if (head->version_minor == 0)
        add_string(environ, LITERAL("SERVER_PROTOCOL"), LITERAL("HTTP/1.0"));
    else
        add_string(environ, LITERAL("SERVER_PROTOCOL"), LITERAL("HTTP/1.1"));
    add_remote_address(environ, &cursor);
    add_string(environ, LITERAL("REQUEST_URI"), line[LINE_URI], line_len[LINE_URI]);

    for (size_t i = 0; i < head->header_count; i++) {
        const csgi_http__header *h = &head->headers[i];
        if (header_role(head, h) != ROLE_HTTP || is_repeat(head, i))
            continue;
        char *key = cursor;
        csgi_environ__header_key(key, h->name, h->name_len);
        cursor += 5 + h->name_len + 1;
        value = put_joined(&cursor, head, i, &len);
        add_string(environ, key, 5 + h->name_len, value, len);
    }

    if (tls)
        add_tls(environ, tls);

    add_string(environ, LITERAL("csgi.version"), LITERAL("1.0"));
    add_string(environ, LITERAL("csgi.url_scheme"), scheme, strlen(scheme));
    add_pointer(environ, LITERAL("csgi.input"), csgi_environ_input(environ));
    add_pointer(environ, LITERAL("csgi.errors"), environ);
    add_int(environ, LITERAL("csgi.multithread"), source->multithread != 0);
    add_int(environ, LITERAL("csgi.multiprocess"), source->multiprocess != 0);
    add_int(environ, LITERAL("csgi.run_once"), 0);

    size_t server_count = environ->count;
    if (before_count) {
        memcpy(&environ->entries[environ->count], before, before_count * sizeof(entry));
        environ->count += before_count;
    }
    if (environ->shadows)
        settle_shadows(environ, server_count);
    environ->built = 1;

    /* Logged here, so once per request (and only when someone looked). */
    if (dropped)
        log_dropped(environ, first_dropped, dropped);
    return 0;
}

/* ---- Creating ---------------------------------------------------------------- */

size_t csgi_environ__size(void)
{
    return sizeof(csgi_environ);
}

csgi_environ *csgi_environ__init(void *memory, csgi_arena *arena,
                                 const csgi_environ__source *source)
{
    csgi_environ *environ = memory;
    environ->arena = arena;
    environ->source = source;
    environ->entries = NULL;
    environ->count = 0;
    environ->capacity = 0;
    environ->built = 0;
    environ->line_made = 0;
    environ->destructors_deferred = 0;
    environ->lengths = 0;
    environ->name_lengths = 0;
    environ->shadows = 0;
    environ->tombstones = 0;
    environ->request = NULL;
    environ->input.environ = NULL; /* set up at its first use (input_of) */
    environ->replaced = NULL;
    return environ;
}

csgi_environ *csgi_environ__new(csgi_arena *arena, const csgi_environ__source *source)
{
    if (!arena || !source || !source->head)
        return NULL;
    /* The environ and its own copy of the source, in one block. */
    struct {
        csgi_environ environ;
        csgi_environ__source source;
    } *block = csgi_arena__alloc(arena, sizeof(*block));
    if (!block)
        return NULL;
    block->source = *source;
    return csgi_environ__init(&block->environ, arena, &block->source);
}

csgi_environ *csgi_environ__copy(csgi_environ *from, csgi_arena *arena,
                                 const csgi_environ__source *source)
{
    if (materialise(from) != 0)
        return NULL;
    csgi_environ *copy = csgi_arena__alloc(arena, sizeof(*copy));
    size_t capacity = from->count + SPARE_ENTRIES;
    entry *entries = copy ? csgi_arena__alloc(arena, capacity * sizeof(entry)) : NULL;
    if (!entries)
        return NULL;
    csgi_environ__init(copy, arena, source);
    memcpy(entries, from->entries, from->count * sizeof(entry));
    copy->entries = entries;
    copy->count = from->count;
    copy->capacity = capacity;
    copy->built = 1;
    copy->request = from->request;
    copy->lengths = from->lengths;
    for (size_t i = 0; i < copy->count; i++) {
        entry *e = &entries[i];
        if (e->kind != CSGI_VALUE_POINTER && e->kind != CSGI_VALUE_JSON)
            continue;
        /* Borrowed: the values are from's, released when its request ends. */
        e->value.pointer.destroy = NULL;
        if (e->value.pointer.pointer == from)
            e->value.pointer.pointer = copy; /* csgi.errors */
        else if (e->key_len == 10 && memcmp(e->key, "csgi.input", 10) == 0)
            e->value.pointer.pointer = input_of(copy);
    }
    return copy;
}

const csgi_environ__source *csgi_environ__source_of(csgi_environ *environ)
{
    return environ->source;
}

csgi_arena *csgi_environ__arena(csgi_environ *environ)
{
    return environ->arena;
}

void *csgi_environ__owner(csgi_environ *environ)
{
    return environ->source->owner;
}

/* ---- Keys ------------------------------------------------------------------ */

/* The length of a key, or 0 when it cannot be one (NULL, empty, huge). */
static size_t key_length(const char *key)
{
    if (!key)
        return 0;
    size_t len = strlen(key);
    return len <= UINT32_MAX ? len : 0;
}

/* Make the environ ready for setting or removing key. Returns 1 when key
   is a server key of an environ not built yet: its entry is a shadow
   (settle_shadows). csgi.input and csgi.errors are tied to the environ's
   own state: they build it first. Else 0, or CSGI_ENOMEM. */
static int prepare(csgi_environ *environ, const char *key, size_t key_len)
{
    if (environ->built || !is_server_key(key, key_len))
        return 0;
    if ((key_len == 10 && memcmp(key, "csgi.input", 10) == 0) ||
        (key_len == 11 && memcmp(key, "csgi.errors", 11) == 0))
        return materialise(environ);
    return 1;
}

/* The entry of a key, materialising the environ first when the key may be
   the server's and no shadow answers; NULL when the key is not set (or
   memory ran out materialising). */
static entry *lookup(csgi_environ *environ, const char *key)
{
    size_t key_len = key_length(key);
    if (!environ || !key_len)
        return NULL;
    if (!environ->built && is_server_key(key, key_len)) {
        entry *e = environ->shadows ? find(environ, key, key_len) : NULL;
        if (e)
            return e->kind == CSGI_VALUE_NONE ? NULL : e;
        if (materialise(environ) != 0)
            return NULL;
    }
    return find(environ, key, key_len);
}

/* csgi.request is kept beside its entry: every filter's handler asks for
   the request object (csgi_environ__request). */
static inline void note_request(csgi_environ *environ, const char *key, size_t key_len,
                                void *pointer)
{
    if (key_len == 12 && memcmp(key, "csgi.request", 12) == 0)
        environ->request = pointer;
}

void *csgi_environ__request(csgi_environ *environ)
{
    return environ->request;
}

/* A tombstone is set again: the key comes back, at the end (MOVED). */
static entry *revive(csgi_environ *environ, entry *tombstone)
{
    /* As after a build: the removed key's place becomes a hole, and the
       key is set again at the end. The new entry carries the removal
       (MOVED) for the build. */
    size_t at = (size_t)(tombstone - environ->entries);
    entry *e = append(environ, tombstone->key, tombstone->key_len, SHADOW | MOVED);
    if (!e)
        return NULL;
    tombstone = &environ->entries[at]; /* the array may have moved */
    tombstone->key_len = 0;
    tombstone->flags = 0;
    environ->shadows--;
    environ->tombstones--;
    return e;
}

/*
 * The entry to store a value under key: the existing one, or a new one at
 * the end with a copy of the key (in extra bytes after it, when extra is
 * not 0: *extra_out points to them). For an existing key *existing is set
 * and the caller saves and replaces its value. Returns NULL when memory is
 * exhausted; nothing changed then.
 */
static entry *slot(csgi_environ *environ, const char *key, size_t key_len, size_t extra,
                   char **extra_out, int *existing, int shadow)
{
    entry *e = find(environ, key, key_len);
    *existing = e != NULL;
    if (e) {
        if (extra) {
            *extra_out = csgi_arena__alloc(environ->arena, extra);
            if (!*extra_out)
                return NULL;
        }
        if (e->kind == CSGI_VALUE_NONE && (e->flags & SHADOW)) {
            *existing = 0; /* nothing to release */
            return revive(environ, e);
        }
        return e;
    }
    if (extra > SIZE_MAX - key_len - 1)
        return NULL;
    char *copy = csgi_arena__alloc(environ->arena, key_len + 1 + extra);
    if (!copy)
        return NULL;
    memcpy(copy, key, key_len + 1);
    e = append(environ, copy, key_len, shadow > 0 ? SHADOW : 0);
    if (!e)
        return NULL;
    if (extra)
        *extra_out = copy + key_len + 1;
    return e;
}

/* A header name byte as it appears in an HTTP_ key: letters upper-cased,
   '-' as '_'. '_' itself maps to 0, which no key byte equals: names with
   '_' are dropped from the environ, so "X-Auth_Token" never answers for
   HTTP_X_AUTH_TOKEN (header_fast does not see such heads anyway). */
static const unsigned char key_byte[256] = {
#define R8(c) (c), (c) + 1, (c) + 2, (c) + 3, (c) + 4, (c) + 5, (c) + 6, (c) + 7
    R8(0x00), R8(0x08), R8(0x10), R8(0x18), R8(0x20), 0x28,     0x29,     0x2a,     0x2b,
    0x2c,     '_',      0x2e,     0x2f,     R8(0x30), R8(0x38), R8(0x40), R8(0x48), R8(0x50),
    0x58,     0x59,     0x5a,     0x5b,     0x5c,     0x5d,     0x5e,     0,        0x60,
    'A',      'B',      'C',      'D',      'E',      'F',      'G',      'H',      'I',
    'J',      'K',      'L',      'M',      'N',      'O',      'P',      'Q',      'R',
    'S',      'T',      'U',      'V',      'W',      'X',      'Y',      'Z',      0x7b,
    0x7c,     0x7d,     0x7e,     0x7f,     R8(0x80), R8(0x88), R8(0x90), R8(0x98), R8(0xa0),
    R8(0xa8), R8(0xb0), R8(0xb8), R8(0xc0), R8(0xc8), R8(0xd0), R8(0xd8), R8(0xe0), R8(0xe8),
    R8(0xf0), R8(0xf8)
#undef R8
};

int csgi_environ__header_key(char *key, const char *name, size_t len)
{
    unsigned ok = len > 0 ? CSGI_CHAR__NAME : 0;
    memcpy(key, "HTTP_", 5);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        ok &= csgi_char__table[c];
        key[5 + i] = (char)key_byte[c];
    }
    key[5 + len] = '\0';
    return ok ? 0 : CSGI_EINVAL;
}

/* A word of a header name in key form: ASCII letters upper-cased, '-' as
   '_'. The parser let only token bytes into names, so no byte has its high
   bit set: adding at most 0x7f to a byte then never carries into the next,
   and each test below is exact per byte. */
static inline uint64_t word_key_form(uint64_t word)
{
    const uint64_t ones = 0x0101010101010101u;
    const uint64_t highs = ones * 0x80, lows = ones * 0x7f;
    /* high bit set where the byte is >= 'a', and where it is > 'z' */
    uint64_t lower = (word + ones * (0x80 - 'a')) & ~(word + ones * (0x80 - 'z' - 1)) & highs;
    /* high bit set where the byte is not '-' (x + 0x7f carries into it) */
    uint64_t not_dash = (word ^ (ones * '-')) + lows;
    uint64_t dash = ~not_dash & highs;
    return word ^ (lower >> 2) ^ ((dash >> 7) * ('-' ^ '_'));
}

static inline int word_is_key(const unsigned char *name, const unsigned char *want)
{
    uint64_t word, key;
    memcpy(&word, name, 8);
    memcpy(&key, want, 8);
    return word_key_form(word) == key;
}

/* word_is_key for a name of 8 to 16 bytes (two words, the second
   overlapping the first: bytes len - 8 to len). With SSE2 (every x86-64)
   both words are tested at once, in vector registers, which the loop
   around it does not have to save. */
static inline int words_are_key(const unsigned char *name, const unsigned char *want, size_t len)
{
#ifdef __SSE2__
    uint64_t n0, n1, w0, w1;
    memcpy(&n0, name, 8);
    memcpy(&n1, name + len - 8, 8);
    memcpy(&w0, want, 8);
    memcpy(&w1, want + len - 8, 8);
    __m128i n = _mm_set_epi64x((long long)n1, (long long)n0);
    __m128i w = _mm_set_epi64x((long long)w1, (long long)w0);
    /* token bytes are below 0x80: the signed compares are exact */
    __m128i lower = _mm_and_si128(_mm_cmpgt_epi8(n, _mm_set1_epi8('a' - 1)),
                                  _mm_cmplt_epi8(n, _mm_set1_epi8('z' + 1)));
    __m128i dash = _mm_cmpeq_epi8(n, _mm_set1_epi8('-'));
    n = _mm_xor_si128(n, _mm_and_si128(lower, _mm_set1_epi8(0x20)));
    n = _mm_xor_si128(n, _mm_and_si128(dash, _mm_set1_epi8('-' ^ '_')));
    return _mm_movemask_epi8(_mm_cmpeq_epi8(n, w)) == 0xffff;
#else
    return word_is_key(name + len - 8, want + len - 8) && word_is_key(name, want);
#endif
}

/* Whether header name (len bytes) is the one an HTTP_ key names (want is
   the key after "HTTP_", of the same length). Eight bytes at a time, a
   last word overlapping the one before covering the rest; the names
   filters ask for (X-Auth-Token, X-Forwarded-For) take two words and no
   loop. Names shorter than a word go through key_byte. */
static inline __attribute__((always_inline)) int name_is_key(const char *name, const char *want,
                                                             size_t len)
{
    const unsigned char *n = (const unsigned char *)name;
    const unsigned char *w = (const unsigned char *)want;
    if (len < 8) {
        for (size_t i = 0; i < len; i++)
            if (key_byte[n[i]] != w[i])
                return 0;
        return 1;
    }
    /* The last word first: most names of the same length differ there. */
    if (!word_is_key(n + len - 8, w + len - 8))
        return 0;
    if (len <= 16)
        return word_is_key(n, w);
    for (size_t at = 0; at + 8 < len; at += 8)
        if (!word_is_key(n + at, w + at))
            return 0;
    return 1;
}

/* The header a name in key form (want, want_len) names in the parsed head:
   1 with *found set (NULL when absent), 2 when the name is repeated
   (*found the first), 0 when the head cannot tell (a name with '_'
   anywhere in it: the build drops and logs those). */
static inline __attribute__((always_inline)) int header_find(csgi_environ *environ,
                                                             const char *want, size_t want_len,
                                                             const csgi_http__header **found)
{
    const csgi_http__head *head = environ->source->head;
    *found = NULL;
    if (head->underscore)
        return 0;
    /* A bit per name length in the head, made at the first scan: most
       filters ask for headers the request does not have. */
    if (!environ->name_lengths) {
        uint64_t lengths = 1; /* made */
        for (size_t i = 0; i < head->header_count; i++)
            lengths |= length_bit(head->headers[i].name_len);
        environ->name_lengths = lengths;
    }
    if (!(environ->name_lengths & length_bit(want_len)))
        return 1;
    const csgi_http__header *h = head->headers, *end = h + head->header_count;
    for (; h < end; h++) {
        if (h->name_len != want_len || !name_is_key(h->name, want, want_len))
            continue;
        if (*found)
            return 2;
        *found = h;
    }
    return 1;
}

/* Whether key (key_len > 0 bytes) is CONTENT_TYPE or CONTENT_LENGTH: the
   CGI keys of two headers, never found after "HTTP_". */
static int is_content_key(const char *key, size_t key_len)
{
    return key[0] == 'C' && ((key_len == 12 && memcmp(key, "CONTENT_TYPE", 12) == 0) ||
                             (key_len == 14 && memcmp(key, "CONTENT_LENGTH", 14) == 0));
}

/* The header behind an HTTP_ key (or CONTENT_TYPE, CONTENT_LENGTH) in the
   parsed head, as header_find answers; 0 also for any other key. */
static inline __attribute__((always_inline)) int
header_scan(csgi_environ *environ, const char *key, size_t key_len, const csgi_http__header **found)
{
    *found = NULL;
    if (key_len && is_content_key(key, key_len))
        return header_find(environ, key, key_len, found);
    if (key_len <= 5 || memcmp(key, "HTTP_", 5) != 0)
        return 0;
    if (is_content_key(key + 5, key_len - 5))
        return environ->source->head->underscore ? 0 : 1;
    return header_find(environ, key + 5, key_len - 5, found);
}

/*
 * Answer an HTTP_ key (or CONTENT_TYPE, CONTENT_LENGTH) straight from the
 * parsed head, without building the environ: an authentication filter
 * that reads one header should not pay for every CGI key. Only before the
 * build, for a key no middleware set or removed (its shadow answers), and
 * only when the answer is certain: a repeated header (values to join) or
 * a name with '_' anywhere in the head (to be dropped and logged; the
 * parser noted it) sends the caller to the full build. Returns 1 with *out
 * set (NULL when the key is absent), or 0 to build.
 */
static int header_fast(csgi_environ *environ, const char *key, size_t key_len, const char **out,
                       size_t *len)
{
    const csgi_http__header *found;
    if (header_scan(environ, key, key_len, &found) != 1)
        return 0;
    *out = NULL;
    if (!found)
        return 1;
    if (environ->source->head->own_bytes) {
        ((char *)found->value)[found->value_len] = '\0'; /* see own_bytes */
        *out = found->value;
        if (len)
            *len = found->value_len;
        return 1;
    }
    char *copy = csgi_arena__alloc(environ->arena, found->value_len + 1);
    if (!copy)
        return 0;
    memcpy(copy, found->value, found->value_len);
    copy[found->value_len] = '\0';
    *out = copy;
    if (len)
        *len = found->value_len;
    return 1;
}

/*
 * header_fast for an HTTP_ key (key_len > 5), the usual case made short: a
 * name of 8 to 16 bytes (X-Auth-Token, Authorization, X-Forwarded-For:
 * what filters ask for), a head of at most 16 fields in bytes of its own
 * (own_bytes) and no name with '_' in it. One pass over the fields, each
 * name of that length compared as two words, no length map (with so few
 * fields it costs more than it saves). Returns 1 with *out set (NULL when
 * the key is absent), 0 when the answer needs more: the caller then asks
 * header_fast.
 */
static inline __attribute__((always_inline)) int
http_key_fast(csgi_environ *environ, const char *key, size_t key_len, const char **out, size_t *len)
{
    const csgi_http__head *head = environ->source->head;
    const unsigned char *want = (const unsigned char *)key + 5;
    size_t want_len = key_len - 5;
    if (want_len < 8 || want_len > 16 || !head->own_bytes || head->underscore ||
        head->header_count > 16 || is_content_key(key + 5, want_len))
        return 0;
    const csgi_http__header *h = head->headers, *end = h + head->header_count, *found = NULL;
    for (; h < end; h++) {
        if (h->name_len != want_len ||
            !words_are_key((const unsigned char *)h->name, want, want_len))
            continue;
        if (found)
            return 0; /* repeated: the build joins the values */
        found = h;
    }
    *out = NULL;
    if (found) {
        ((char *)found->value)[found->value_len] = '\0'; /* see own_bytes */
        *out = found->value;
        if (len)
            *len = found->value_len;
    }
    return 1;
}

/*
 * Answer one of the request line's keys without building the environ.
 * Returns 1 with *out set, or 0 when key is none of them (or memory ran
 * out: the build then reports it).
 */
static int line_fast(csgi_environ *environ, const char *key, size_t key_len, const char **out,
                     size_t *len)
{
    enum line_key which;
    size_t n = 0;
    switch (key_len) {
    case 9:
        if (memcmp(key, "PATH_INFO", 9) != 0)
            return 0;
        which = LINE_PATH;
        break;
    case 11:
        if (memcmp(key, "SCRIPT_NAME", 11) == 0) {
            *out = "";
            goto done;
        }
        if (memcmp(key, "REQUEST_URI", 11) != 0)
            return 0;
        which = LINE_URI;
        break;
    case 12:
        if (memcmp(key, "QUERY_STRING", 12) != 0)
            return 0;
        which = LINE_QUERY;
        break;
    case 14:
        if (memcmp(key, "REQUEST_METHOD", 14) != 0)
            return 0;
        which = LINE_METHOD;
        break;
    case 15:
        if (memcmp(key, "SERVER_PROTOCOL", 15) != 0)
            return 0;
        *out = environ->source->head->version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
        n = 8;
        goto done;
    default: return 0;
    }
    *out = line_value(environ, which, &n);
    if (!*out)
        return 0;
done:
    if (len)
        *len = n;
    return 1;
}

/* The scheme csgi.url_scheme starts with. */
static const char *scheme_of(const csgi_environ__source *source)
{
    if (source->input && source->input->tls && source->input->tls(source->input_context))
        return "https";
    return source->url_scheme ? source->url_scheme : "http";
}

/* REMOTE_ADDR, REMOTE_PORT and csgi.url_scheme without the build, as
   line_fast. A proxy filter reads the first to decide whom to trust. */
static int peer_fast(csgi_environ *environ, const char *key, size_t key_len, const char **out,
                     size_t *len)
{
    int port;
    if (key_len == 11 && memcmp(key, "REMOTE_ADDR", 11) == 0)
        port = 0;
    else if (key_len == 11 && memcmp(key, "REMOTE_PORT", 11) == 0)
        port = 1;
    else if (key_len == 15 && memcmp(key, "csgi.url_scheme", 15) == 0) {
        *out = scheme_of(environ->source);
        if (len)
            *len = strlen(*out);
        return 1;
    } else
        return 0;
    char *address = csgi_arena__alloc(environ->arena, ADDRESS_ROOM + 1 + PORT_ROOM + 1);
    if (!address)
        return 0;
    char *number = address + ADDRESS_ROOM + 1;
    size_t address_len, port_len;
    if (format_address(environ->source->peer, 0, address, &address_len, number, &port_len) != 0) {
        address[0] = number[0] = '\0'; /* a Unix socket: "" */
        address_len = port_len = 0;
    }
    *out = port ? number : address;
    if (len)
        *len = port ? port_len : address_len;
    return 1;
}

int csgi_environ__set_static(csgi_environ *environ, const char *key, size_t key_len,
                             const char *value, size_t len)
{
    int shadow = prepare(environ, key, key_len);
    if (shadow < 0)
        return CSGI_ENOMEM;
    entry *e = find(environ, key, key_len);
    if (e && e->kind == CSGI_VALUE_NONE && (e->flags & SHADOW)) {
        if (!(e = revive(environ, e)))
            return CSGI_ENOMEM;
    } else if (e) {
        entry old = *e;
        e->kind = CSGI_VALUE_NONE; /* set below */
        release(&old);
    } else if (!(e = append(environ, key, key_len, shadow > 0 ? SHADOW : 0))) {
        return CSGI_ENOMEM;
    }
    note_request(environ, key, key_len, NULL);
    e->kind = CSGI_VALUE_STRING;
    e->value.string.bytes = value;
    e->value.string.len = len;
    return 0;
}

int csgi_environ__append_borrowed_many(csgi_environ *environ, const csgi_environ__key *keys,
                                       const char *const *values, const size_t *lens, size_t n)
{
    if (environ->tombstones) { /* one at a time, each may set its tombstone */
        for (size_t i = 0; i < n; i++)
            if (csgi_environ__append_borrowed(environ, keys[i].name, keys[i].len, values[i],
                                              lens[i]) != 0)
                return CSGI_ENOMEM;
        return 0;
    }
    if (csgi_environ__reserve(environ, n) != 0)
        return CSGI_ENOMEM;
    uint8_t flags = environ->built ? 0 : SHADOW;
    entry *e = &environ->entries[environ->count];
    for (size_t i = 0; i < n; i++, e++) {
        e->key = keys[i].name;
        e->key_len = (uint32_t)keys[i].len;
        e->kind = CSGI_VALUE_STRING;
        e->flags = flags;
        e->value.string.bytes = values[i];
        e->value.string.len = lens[i];
        environ->lengths |= length_bit(keys[i].len);
    }
    environ->count += n;
    if (flags)
        environ->shadows += (uint32_t)n;
    return 0;
}

int csgi_environ__get_headers(csgi_environ *environ, const csgi_environ__key *keys, size_t n,
                              const char **values)
{
    const csgi_http__head *head = environ->source->head;
    int one_pass = !environ->built && !head->underscore && n <= 8;
    uint64_t key_lengths = 0, lengths = 0;
    for (size_t k = 0; k < n; k++) {
        key_lengths |= length_bit(keys[k].len);
        lengths |= length_bit(keys[k].len - 5);
    }
    /* Entries of their lengths may shadow them: look, if there are any. */
    int shadowed = (environ->lengths & key_lengths) != 0;
    for (size_t k = 0; one_pass && k < n; k++)
        one_pass = keys[k].len > 5 && !(shadowed && find(environ, keys[k].name, keys[k].len)) &&
                   !(keys[k].len == 17 && memcmp(keys[k].name + 5, "CONTENT_TYPE", 12) == 0) &&
                   !(keys[k].len == 19 && memcmp(keys[k].name + 5, "CONTENT_LENGTH", 14) == 0);
    if (!one_pass) {
        for (size_t k = 0; k < n; k++)
            values[k] = csgi_environ_get_n(environ, keys[k].name, NULL);
        return 0;
    }
    /* One pass over the head for them all; a name of a length none of
       them has is passed over at once. */
    const csgi_http__header *found[8] = {NULL};
    unsigned repeated = 0;
    for (size_t i = 0; i < head->header_count; i++) {
        const csgi_http__header *h = &head->headers[i];
        if (!(lengths & length_bit(h->name_len)))
            continue;
        for (size_t k = 0; k < n; k++) {
            if (keys[k].len - 5 != h->name_len ||
                !name_is_key(h->name, keys[k].name + 5, h->name_len))
                continue;
            if (found[k])
                repeated |= 1u << k;
            else
                found[k] = h;
            break;
        }
    }
    for (size_t k = 0; k < n; k++) {
        if (repeated & (1u << k)) { /* the build joins the values */
            values[k] = csgi_environ_get_n(environ, keys[k].name, NULL);
            continue;
        }
        values[k] = NULL;
        if (!found[k])
            continue;
        char *copy = csgi_arena__strndup(environ->arena, found[k]->value, found[k]->value_len);
        if (!copy)
            return CSGI_ENOMEM;
        values[k] = copy;
    }
    return 0;
}

const struct sockaddr *csgi_environ__peer(csgi_environ *environ)
{
    if (environ->built || (environ->shadows && find(environ, "REMOTE_ADDR", 11)))
        return NULL;
    return environ->source->peer;
}

/* Whether the build would set a server key: 1, 0, or -1 when only the
   build can tell (the TLS keys, a head with '_' in a name). */
static int server_has(csgi_environ *environ, const char *key, size_t key_len)
{
    const csgi_http__header *found;
    int r = header_scan(environ, key, key_len, &found);
    if (r)
        return found != NULL;
    if (key[0] == 'H' || (key_len > 4 && memcmp(key, "SSL_", 4) == 0))
        return -1; /* HTTP_ with '_' names about, HTTPS, SSL_ */
    if (key_len >= 8 && memcmp(key, "CONTENT_", 8) == 0)
        return -1;
    return 1; /* the request line's, the addresses', the gateway's */
}

/* csgi_environ_get_n past its fast path, out of line so that the fast
   path keeps few registers to save. */
static __attribute__((noinline)) const char *get_n(csgi_environ *environ, const char *key,
                                                   size_t *len)
{
    if (!environ->built) {
        /* Before the build: the entries (keys of middleware, shadows of
           the server's), then the parsed head, answer what they can. */
        const char *fast;
        size_t key_len = strlen(key);
        const entry *e = environ->count && key_len ? find(environ, key, key_len) : NULL;
        if (e) {
            if (e->kind != CSGI_VALUE_STRING)
                return NULL;
            if (len)
                *len = e->value.string.len;
            return e->value.string.bytes;
        }
        /* HTTP_ keys and the request line's first: they are what filters
           ask for. */
        if (key_len > 5 && memcmp(key, "HTTP_", 5) == 0) {
            if (header_fast(environ, key, key_len, &fast, len))
                return fast;
        } else if (line_fast(environ, key, key_len, &fast, len)) {
            return fast;
        } else if (!is_server_key(key, key_len)) {
            return NULL;
        } else if (peer_fast(environ, key, key_len, &fast, len) ||
                   header_fast(environ, key, key_len, &fast, len)) {
            return fast;
        }
    }
    const entry *e = lookup(environ, key);
    if (!e || e->kind != CSGI_VALUE_STRING)
        return NULL;
    if (len)
        *len = e->value.string.len;
    return e->value.string.bytes;
}

const char *csgi_environ_get_n(csgi_environ *environ, const char *key, size_t *len)
{
    if (!environ || !key)
        return NULL;
    /* A filter's usual question: an HTTP_ key, before the build, with no
       key set by middleware. */
    if (!environ->built && !environ->count) {
        size_t key_len = strlen(key);
        const char *fast;
        if (key_len > 5 && memcmp(key, "HTTP_", 5) == 0 &&
            http_key_fast(environ, key, key_len, &fast, len))
            return fast;
    }
    return get_n(environ, key, len);
}

const char *csgi_environ__peek_n(csgi_environ *environ, const char *key, size_t *len)
{
    if (!environ || !environ->entries)
        return NULL;
    const entry *e = find(environ, key, key_length(key));
    if (!e || e->kind != CSGI_VALUE_STRING)
        return NULL;
    *len = e->value.string.len;
    return e->value.string.bytes;
}

const char *csgi_environ_get(csgi_environ *environ, const char *key)
{
    return csgi_environ_get_n(environ, key, NULL);
}

int csgi_environ_set_n(csgi_environ *environ, const char *key, const char *value, size_t len)
{
    size_t key_len = key_length(key);
    if (!environ || !key_len || !value || len == SIZE_MAX)
        return CSGI_EINVAL;
    int shadow = prepare(environ, key, key_len);
    if (shadow < 0)
        return CSGI_ENOMEM;

    char *copy = NULL;
    int existing;
    entry *e = slot(environ, key, key_len, len + 1, &copy, &existing, shadow);
    if (!e)
        return CSGI_ENOMEM;
    memcpy(copy, value, len);
    copy[len] = '\0';
    note_request(environ, key, key_len, NULL);
    entry old = *e;
    e->kind = CSGI_VALUE_STRING;
    e->value.string.bytes = copy;
    e->value.string.len = len;
    if (existing)
        release(&old);
    return 0;
}

int csgi_environ_set(csgi_environ *environ, const char *key, const char *value)
{
    if (!value)
        return CSGI_EINVAL;
    return csgi_environ_set_n(environ, key, value, strlen(value));
}

int csgi_environ_set_int(csgi_environ *environ, const char *key, int64_t value)
{
    size_t key_len = key_length(key);
    if (!environ || !key_len)
        return CSGI_EINVAL;
    int shadow = prepare(environ, key, key_len);
    if (shadow < 0)
        return CSGI_ENOMEM;

    int existing;
    entry *e = slot(environ, key, key_len, 0, NULL, &existing, shadow);
    if (!e)
        return CSGI_ENOMEM;
    note_request(environ, key, key_len, NULL);
    entry old = *e;
    e->kind = CSGI_VALUE_INT;
    e->value.integer = value;
    if (existing)
        release(&old);
    return 0;
}

int csgi_environ_get_int(csgi_environ *environ, const char *key, int64_t *out)
{
    size_t key_len = key_length(key);
    if (!environ || !key_len || !out)
        return CSGI_EINVAL;
    const entry *e = NULL;
    if (!environ->built && is_server_key(key, key_len)) {
        e = environ->shadows ? find(environ, key, key_len) : NULL;
        if (!e && materialise(environ) != 0)
            return CSGI_ENOMEM;
    }
    if (!e)
        e = find(environ, key, key_len);
    if (e && e->kind == CSGI_VALUE_NONE)
        e = NULL; /* a tombstone */
    if (!e)
        return CSGI_ENOTFOUND;
    if (e->kind != CSGI_VALUE_INT)
        return CSGI_EINVAL;
    *out = e->value.integer;
    return 0;
}

/* The arena callback: run the destructors of the values still set, last
   set first, each once (its entry forgets it before it runs). */
static void destroy_values(void *data)
{
    csgi_environ *environ = data;

    /* A destructor may set a value with a destructor again: that registers
       a new callback, which the arena runs before it releases anything. */
    environ->destructors_deferred = 0;
    for (size_t i = environ->count; i-- > 0;) {
        entry *e = &environ->entries[i];
        if (e->kind != CSGI_VALUE_POINTER && e->kind != CSGI_VALUE_JSON)
            continue;
        csgi_destroy_fn destroy = e->value.pointer.destroy;
        if (!destroy)
            continue;
        e->value.pointer.destroy = NULL;
        destroy(e->value.pointer.pointer);
    }
}

int csgi_environ__set_value(csgi_environ *environ, const char *key, int kind, void *pointer,
                            csgi_destroy_fn destroy)
{
    /* The value is taken even when this fails: destroy it on every error. */
    size_t key_len = key_length(key);
    int err = 0, shadow = 0;
    if (!environ || !key_len || (kind != CSGI_VALUE_POINTER && kind != CSGI_VALUE_JSON))
        err = CSGI_EINVAL;
    else if ((shadow = prepare(environ, key, key_len)) < 0)
        err = CSGI_ENOMEM;
    else if (destroy && !environ->destructors_deferred) {
        if (csgi_arena__defer(environ->arena, destroy_values, environ) != 0)
            err = CSGI_ENOMEM;
        else
            environ->destructors_deferred = 1;
    }

    int existing = 0;
    entry *e = NULL;
    if (!err) {
        e = slot(environ, key, key_len, 0, NULL, &existing, shadow);
        if (!e)
            err = CSGI_ENOMEM;
    }
    if (err) {
        if (destroy)
            destroy(pointer);
        return err;
    }
    note_request(environ, key, key_len, kind == CSGI_VALUE_POINTER ? pointer : NULL);

    entry old = *e;
    /* Setting the value a key already holds must not destroy it. */
    if (existing && old.kind == kind && old.value.pointer.pointer == pointer &&
        old.value.pointer.destroy == destroy)
        return 0;
    e->kind = (uint8_t)kind;
    e->value.pointer.pointer = pointer;
    e->value.pointer.destroy = destroy;
    if (existing)
        release(&old);
    return 0;
}

const char *csgi_environ__request_method(csgi_environ *environ, size_t *len)
{
    if (!environ->built && !environ->shadows)
        return line_value(environ, LINE_METHOD, len);
    const entry *e = lookup(environ, "REQUEST_METHOD");
    if (!e || e->kind != CSGI_VALUE_STRING)
        return NULL;
    *len = e->value.string.len;
    return e->value.string.bytes;
}

char *csgi_environ__path_info_block(csgi_environ *environ, size_t before, size_t after, size_t *len)
{
    const csgi_http__head *head = environ->source->head;
    const char *value = NULL;
    size_t n = 0;
    int decode = 0;
    if (environ->built || environ->shadows) {
        const entry *e = lookup(environ, "PATH_INFO");
        if (!e || e->kind != CSGI_VALUE_STRING) {
            n = (size_t)-1;
        } else {
            value = e->value.string.bytes;
            n = e->value.string.len;
        }
    } else if (environ->line_made & (1u << LINE_PATH)) {
        value = environ->line_value[LINE_PATH];
        n = environ->line_len[LINE_PATH];
    } else if (head->form == CSGI_HTTP__FORM_ASTERISK) {
        value = "*";
        n = 1;
    } else if (head->form != CSGI_HTTP__FORM_AUTHORITY) {
        /* What line_value() makes, decoded straight into the block. */
        decode = 1;
        n = head->path_len;
    }
    size_t room = n == (size_t)-1 ? 0 : n;
    if (room > SIZE_MAX - before - after)
        return NULL;
    char *block = csgi_arena__alloc(environ->arena, before + room + after);
    if (!block)
        return NULL;
    char *path = block + before;
    if (decode)
        n = room = csgi_environ__percent_decode(path, head->path, n);
    else if (room)
        memcpy(path, value, room);
    memset(path + room, 0, after);
    *len = n;
    return block;
}

int csgi_environ__set_static_pointer(csgi_environ *environ, const char *key, size_t key_len,
                                     void *pointer)
{
    entry *e = find(environ, key, key_len);
    if (!e && !(e = append(environ, key, key_len, 0)))
        return CSGI_ENOMEM;
    note_request(environ, key, key_len, pointer);
    entry old = *e;
    e->kind = CSGI_VALUE_POINTER;
    e->value.pointer.pointer = pointer;
    e->value.pointer.destroy = NULL;
    /* Setting the value a key already holds must not destroy it. */
    if (old.kind != CSGI_VALUE_POINTER || old.value.pointer.pointer != pointer)
        release(&old);
    return 0;
}

void *csgi_environ__get_value(csgi_environ *environ, const char *key, int kind)
{
    const entry *e = lookup(environ, key);
    if (!e || e->kind != kind)
        return NULL;
    return e->value.pointer.pointer;
}

int csgi_environ_set_pointer(csgi_environ *environ, const char *key, void *pointer,
                             csgi_destroy_fn destroy)
{
    return csgi_environ__set_value(environ, key, CSGI_VALUE_POINTER, pointer, destroy);
}

void *csgi_environ_get_pointer(csgi_environ *environ, const char *key)
{
    return csgi_environ__get_value(environ, key, CSGI_VALUE_POINTER);
}

csgi_value_kind csgi_environ_kind(csgi_environ *environ, const char *key)
{
    const entry *e = lookup(environ, key);
    return e ? (csgi_value_kind)e->kind : CSGI_VALUE_NONE;
}

/* Add a tombstone for key (static, or the caller's copy) before the build. */
static int bury(csgi_environ *environ, const char *key, size_t key_len)
{
    if (!append(environ, key, key_len, SHADOW))
        return CSGI_ENOMEM;
    environ->tombstones++;
    return 0;
}

/* Remove a server key before the build, when that needs no build: 0 (or
   CSGI_ENOTFOUND, CSGI_ENOMEM) when it could, 1 to build first. */
static int remove_shadowed(csgi_environ *environ, const char *key, size_t key_len)
{
    entry *e = find(environ, key, key_len);
    if (e) {
        if (e->kind == CSGI_VALUE_NONE)
            return CSGI_ENOTFOUND;
        entry old = *e;
        e->kind = CSGI_VALUE_NONE;
        environ->tombstones++;
        release(&old);
        return 0;
    }
    int has = server_has(environ, key, key_len);
    if (has <= 0)
        return has == 0 ? CSGI_ENOTFOUND : 1;
    char *copy = csgi_arena__strndup(environ->arena, key, key_len);
    return copy ? bury(environ, copy, key_len) : CSGI_ENOMEM;
}

int csgi_environ_remove(csgi_environ *environ, const char *key)
{
    size_t key_len = key_length(key);
    if (environ && key_len && prepare(environ, key, key_len) == 1) {
        int rc = remove_shadowed(environ, key, key_len);
        if (rc <= 0)
            return rc;
    }
    entry *e = lookup(environ, key);
    if (!e)
        return CSGI_ENOTFOUND;
    note_request(environ, key, key_len, NULL);
    entry old = *e;
    e->key_len = 0;
    e->kind = CSGI_VALUE_NONE;
    release(&old);
    return 0;
}

/* The first of keys (sorted by length) at least len bytes long, or count. */
static size_t keys_from(const csgi_environ__key *keys, size_t count, size_t len)
{
    size_t low = 0, high = count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (keys[mid].len < len)
            low = mid + 1;
        else
            high = mid;
    }
    return low;
}

/* The index in keys (sorted by length) of key (key_len bytes), or count. */
static size_t key_index(const csgi_environ__key *keys, size_t count, const char *key,
                        size_t key_len)
{
    for (size_t i = keys_from(keys, count, key_len); i < count && keys[i].len == key_len; i++)
        if (memcmp(keys[i].name, key, key_len) == 0)
            return i;
    return count;
}

/* remove_keys before the build, the keys all HTTP_ ones: a tombstone for
   each header of the head that one names, and the values set for them
   removed. 1 when only the build can tell (a name with '_' about). */
static int remove_shadowed_keys(csgi_environ *environ, const char *prefix, size_t prefix_len,
                                const csgi_environ__key *keys, size_t count)
{
    const csgi_http__head *head = environ->source->head;
    if (head->underscore)
        return 1;
    for (entry *e = environ->entries, *end = environ->shadows ? e + environ->count : e; e < end;
         e++) {
        if (e->kind == CSGI_VALUE_NONE || !(e->flags & SHADOW) || e->key_len <= prefix_len ||
            e->key[0] != prefix[0] || memcmp(e->key, prefix, prefix_len) != 0 ||
            key_index(keys, count, e->key, e->key_len) == count)
            continue;
        entry old = *e;
        e->kind = CSGI_VALUE_NONE;
        environ->tombstones++;
        release(&old);
    }
    /* "HTTP_X_" asks for names that begin "X-" (either case); the keys'
       lengths (a bit each, below 64) pass over most such names at once. */
    const char *name_prefix = prefix + 5;
    size_t name_prefix_len = prefix_len - 5;
    for (size_t i = 0; i < head->header_count; i++) {
        const csgi_http__header *h = &head->headers[i];
        if (h->name_len <= name_prefix_len)
            continue;
        size_t j = 0;
        while (j < name_prefix_len && key_byte[(unsigned char)h->name[j]] == name_prefix[j])
            j++;
        if (j < name_prefix_len)
            continue;
        /* The byte after the prefix first: it tells most names apart. */
        unsigned char next = key_byte[(unsigned char)h->name[name_prefix_len]];
        for (size_t k = keys_from(keys, count, 5 + h->name_len);
             k < count && keys[k].len == 5 + h->name_len; k++) {
            if ((unsigned char)keys[k].name[prefix_len] != next ||
                !name_is_key(h->name, keys[k].name + 5, h->name_len))
                continue;
            /* Once for a repeated name; a value set for it was removed above. */
            if (!find(environ, keys[k].name, keys[k].len) &&
                bury(environ, keys[k].name, keys[k].len) != 0)
                return CSGI_ENOMEM;
            break;
        }
    }
    return 0;
}

int csgi_environ__remove_keys(csgi_environ *environ, const char *prefix,
                              const csgi_environ__key *keys, size_t count)
{
    size_t prefix_len = strlen(prefix);
    if (!count)
        return 0;
    for (size_t k = 1; k < count; k++)
        assert(keys[k - 1].len <= keys[k].len); /* the contract: by length */
    if (!environ->built && prefix_len >= 5 && memcmp(prefix, "HTTP_", 5) == 0) {
        int rc = remove_shadowed_keys(environ, prefix, prefix_len, keys, count);
        if (rc <= 0)
            return rc;
    }
    if (materialise(environ) != 0)
        return CSGI_ENOMEM;
    for (entry *e = environ->entries, *end = e + environ->count; e < end; e++) {
        if (e->key_len <= prefix_len || memcmp(e->key, prefix, prefix_len) != 0 ||
            key_index(keys, count, e->key, e->key_len) == count)
            continue;
        entry old = *e;
        e->key_len = 0;
        e->kind = CSGI_VALUE_NONE;
        release(&old);
    }
    return 0;
}

int csgi_environ__reserve(csgi_environ *environ, size_t more)
{
    if (environ->capacity - environ->count >= more)
        return 0;
    /* Exactly what is asked and a few spare, not double: an array above a
       quarter of the arena's chunk would be a malloc of its own. */
    if (more > SIZE_MAX / sizeof(entry) - environ->count - SPARE_ENTRIES)
        return CSGI_ENOMEM;
    size_t capacity = environ->count + more + SPARE_ENTRIES;
    entry *entries = csgi_arena__alloc(environ->arena, capacity * sizeof(entry));
    if (!entries)
        return CSGI_ENOMEM;
    if (environ->count)
        memcpy(entries, environ->entries, environ->count * sizeof(entry));
    environ->entries = entries;
    environ->capacity = capacity;
    return 0;
}

int csgi_environ__append_borrowed(csgi_environ *environ, const char *key, size_t key_len,
                                  const char *value, size_t len)
{
    /* An HTTP_ key: before the build, a shadow. */
    int shadow = !environ->built;
    /* A key removed before the build has its tombstone: set it again. */
    entry *e = shadow && environ->tombstones ? find(environ, key, key_len) : NULL;
    if (e) {
        if (!(e = revive(environ, e)))
            return CSGI_ENOMEM;
    } else if (!(e = append(environ, key, key_len, shadow ? SHADOW : 0))) {
        return CSGI_ENOMEM;
    }
    e->kind = CSGI_VALUE_STRING;
    e->value.string.bytes = value;
    e->value.string.len = len;
    return 0;
}

int csgi_environ_next(csgi_environ *environ, size_t *cursor, const char **key,
                      csgi_value_kind *kind)
{
    if (!environ || !cursor || !key || materialise(environ) != 0)
        return 0;
    while (*cursor < environ->count) {
        const entry *e = &environ->entries[(*cursor)++];
        if (!e->key_len)
            continue;
        *key = e->key;
        if (kind)
            *kind = (csgi_value_kind)e->kind;
        return 1;
    }
    return 0;
}

/* ---- Request memory and the error log -------------------------------------- */

void *csgi_environ_alloc(csgi_environ *environ, size_t size)
{
    return environ ? csgi_arena__alloc(environ->arena, size) : NULL;
}

void *csgi_environ_alloc_zeroed(csgi_environ *environ, size_t size)
{
    void *memory = csgi_environ_alloc(environ, size);
    if (memory)
        memset(memory, 0, size);
    return memory;
}

int csgi_environ_defer(csgi_environ *environ, csgi_destroy_fn fn, void *userdata)
{
    if (!environ || !fn)
        return CSGI_EINVAL;
    return csgi_arena__defer(environ->arena, fn, userdata);
}

/* "192.0.2.7:40000", "[2001:db8::7]:40001" or "unix", as the engine's own
   log lines name clients. */
static void format_client(const struct sockaddr *peer, char *out)
{
    char port[PORT_ROOM + 1];
    size_t len, port_len;
    if (format_address(peer, 1, out, &len, port, &port_len) != 0) {
        memcpy(out, "unix", 5);
        return;
    }
    out[len] = ':';
    memcpy(out + len + 1, port, port_len + 1);
}

/*
 * The path in a log line: the raw (encoded) path without the query, which
 * may carry secrets, cut to LOG_PATH_MAX bytes. It has no control bytes:
 * the parser refused them.
 */
static void log_line(csgi_environ *environ, int level, const char *format, va_list args)
    __attribute__((format(printf, 3, 0)));

static void log_line(csgi_environ *environ, int level, const char *format, va_list args)
{
    if (!environ || !format || !environ->source->log)
        return;
    const csgi_http__head *head = environ->source->head;
    char message[LOG_MESSAGE_MAX];
    char client[ADDRESS_ROOM + 1 + PORT_ROOM + 1];
    char line[LOG_LINE_MAX];
    vsnprintf(message, sizeof(message), format, args);
    format_client(environ->source->peer, client);

    const char *path = head->path;
    size_t path_len = head->path_len;
    if (head->form == CSGI_HTTP__FORM_ASTERISK || head->form == CSGI_HTTP__FORM_AUTHORITY) {
        path = head->target;
        path_len = head->target_len;
    }
    int method_len = head->method_len > LOG_METHOD_MAX ? LOG_METHOD_MAX : (int)head->method_len;
    int shown = path_len > LOG_PATH_MAX ? LOG_PATH_MAX : (int)path_len;
    snprintf(line, sizeof(line), "%.*s %.*s%s (client %s): %s", method_len, head->method, shown,
             path, path_len > LOG_PATH_MAX ? "..." : "", client, message);
    environ->source->log(environ->source->log_context, level, line);
}

void csgi_environ_log(csgi_environ *environ, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    log_line(environ, CSGI_LOG__ERROR, format, args);
    va_end(args);
}

void csgi_environ_log_at(csgi_environ *environ, int level, const char *format, ...)
{
    if (level < CSGI_LOG__ERROR || level > CSGI_LOG__DEBUG)
        level = CSGI_LOG__ERROR;
    va_list args;
    va_start(args, format);
    log_line(environ, level, format, args);
    va_end(args);
}

static void log_warning(csgi_environ *environ, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    log_line(environ, CSGI_LOG__WARN, format, args);
    va_end(args);
}

/* ---- csgi.input (the stream itself is input.c) ------------------------------ */

csgi_input *csgi_environ_input(csgi_environ *environ)
{
    if (!environ)
        return NULL;
    return environ->replaced ? environ->replaced : input_of(environ);
}

int csgi_environ_set_input(csgi_environ *environ, csgi_input *input)
{
    if (!environ || !input || input->environ != environ)
        return CSGI_EINVAL;
    environ->replaced = input == &environ->input ? NULL : input;
    /* A built environ holds csgi.input as a key: it follows. */
    if (environ->built) {
        entry *e = find(environ, "csgi.input", 10);
        if (e && e->kind == CSGI_VALUE_POINTER)
            e->value.pointer.pointer = input;
    }
    return 0;
}

int csgi_environ__path_info_is(csgi_environ *environ, const char *path, size_t len)
{
    const csgi_http__head *head = environ->source->head;
    const char *value;
    size_t n;
    if (!environ->built && !environ->shadows && !(environ->line_made & (1u << LINE_PATH)) &&
        head->form != CSGI_HTTP__FORM_ASTERISK && head->form != CSGI_HTTP__FORM_AUTHORITY &&
        !memchr(head->path, '%', head->path_len)) {
        /* Without an escape, PATH_INFO is the request's path as it came. */
        value = head->path;
        n = head->path_len;
    } else if (!(value = csgi_environ_get_n(environ, "PATH_INFO", &n))) {
        return 0;
    }
    return n == len && memcmp(value, path, len) == 0;
}

csgi_input *csgi_environ__replaced_input(csgi_environ *environ)
{
    return environ->replaced;
}

void csgi_environ__input_ready(csgi_environ *environ)
{
    csgi_input_notify(input_of(environ));
}
