/*
 * router: applications by URL pattern and method, with URL generation
 * (include/csgi/router.h), and its INI factory (egg:csgi#router).
 *
 * The routes are kept in a tree of segments: each node has its literal
 * children (indexed by a hash table when the router becomes an
 * application), its variable children (tried in the order they were
 * added), and the routes whose pattern ends there. A request walks the tree
 * one segment of PATH_INFO at a time, trying the literal child first and
 * backtracking into the variables, so its cost grows with the depth of the
 * path and not with the number of routes.
 *
 * What a request costs (docs/router.md, bench/router.sh). The router
 * reads REQUEST_METHOD and PATH_INFO through the gateway's accessors
 * (gateway/environ_private.h), which neither build the environ nor look
 * the keys up by name: the path is decoded straight into one arena block
 * that also holds the match's record, followed by PAD zero bytes. The walk
 * reads that copy eight bytes at a time: a word finds the next '/' and is
 * the segment's first word (read_segment); a literal child is found by a
 * hash of the segment's first and last words (a few in a row are compared
 * directly), mostly with one compare of lengths and words and no memcmp;
 * int and hex are checked a word at a time. Only a regular expression
 * calls the C library, on the segment NUL-terminated in place. Methods
 * are bits. A node that leaves one way to go costs no call; the values of
 * the match are the copy's segments, NUL-terminated once the walk is done,
 * and the record is set without a copy of its key: a match allocates
 * nothing more than that block.
 *
 * Written over the public protocol but for those accessors, with the
 * library's allocator (so that the failing-allocator tests reach it) and
 * its growth rule (common/vec.h). Typed segments use the C library's POSIX
 * regex.h, no other engine.
 */
#include "common/alloc.h"
#include "common/chartab.h"
#include "common/vec.h"

#include <csgi.h>
#include <csgi/router.h>
#include "composite/composite_private.h"
#include "gateway/environ_private.h"

#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A pattern has at most this many segments: the depth of the tree, and
   the bound of the walk's recursion. */
#define MAX_SEGMENTS 64
/* A 405 lists the methods of at most this many matching patterns. */
#define MAX_ALLOW_NODES 16
/* Zero bytes after a path or a literal, so that a word read at any of its
   bytes stays in memory of its own. */
#define PAD 8
/* A node with up to this many literal children compares them in a row:
   cheaper than a hash for so few. */
#define LINEAR_LITERALS 4

/* The environ key of a match: a pointer to its routing record. */
#define ROUTING_KEY "csgi.routing_args"

enum kind { SEGMENT_LITERAL, SEGMENT_ANY, SEGMENT_INT, SEGMENT_HEX, SEGMENT_REGEX };

typedef struct node node;

/* The choices a node offers the walk (build_index): no children; literal
   children only, by hash or a few in a row; one variable child only; or
   both kinds, or several variables. */
enum shape { SHAPE_END, SHAPE_HASH, SHAPE_ROW, SHAPE_VARIABLE, SHAPE_MIXED };

/* One segment of a route's pattern, for URL generation. */
typedef struct segment {
    enum kind kind;
    char *text;           /* literal text, or the variable's name */
    size_t len;           /* strlen(text) */
    char *source;         /* SEGMENT_REGEX: the expression as written */
    const regex_t *regex; /* SEGMENT_REGEX: the tree's compiled expression */
} segment;

typedef struct route {
    char *name;     /* NULL for an unnamed route */
    char **methods; /* NULL with any_method */
    size_t method_count;
    unsigned method_bits; /* the common methods among methods (method_bit) */
    int any_method;
    segment *segments;
    size_t segment_count;
    size_t variable_count;
    csgi_app *app; /* one reference */
} route;

typedef struct literal_child {
    char *text; /* followed by PAD zero bytes (segment_words reads a word) */
    size_t len;
    node *node;
} literal_child;

/* A literal child in its node's hash table (build_index): the words the
   segment is known by (segment_words), its length and text. */
typedef struct literal_slot {
    uint64_t head, tail;
    size_t len;
    const char *text;
    const node *node; /* NULL: an empty slot */
} literal_slot;

typedef struct variable_child {
    enum kind kind;
    char *source;   /* SEGMENT_REGEX: the expression as written */
    regex_t *regex; /* SEGMENT_REGEX: compiled, anchored */
    node *node;
} variable_child;

struct node {
    literal_child *literals;
    size_t literal_count, literal_capacity;
    variable_child *variables;
    size_t variable_count, variable_capacity;
    route **routes; /* borrowed from the router */
    size_t route_count, route_capacity;
    /* The literal children by hash, made by csgi_router_app(): a power of
       two of slots, at most half used (or, up to LINEAR_LITERALS of them,
       a row); NULL when there are none. */
    literal_slot *index;
    size_t index_mask;    /* slots - 1 */
    unsigned index_shift; /* 64 - log2(slots): a hash's top bits pick the slot */
    int index_linear;     /* a few literals: index holds them in a row, then an empty slot */
    enum shape shape;     /* what the walk does here (build_index) */
};

struct csgi_router {
    node root;
    route **routes;
    size_t count, capacity;
    size_t max_variables; /* the most variables of one route */
    csgi_app *not_found;
};

/* ---- Memory -------------------------------------------------------------------- */

/* Room for one more item in a heap array. */
static int reserve_one(void *items_in, size_t *capacity, size_t item_size, size_t count)
{
    void **items = items_in;
    return csgi_vec__reserve(items, capacity, item_size, count + 1, SIZE_MAX);
}

static void free_regex(regex_t *regex)
{
    if (regex) {
        regfree(regex);
        csgi__free(regex);
    }
}

static void node_clear(node *n)
{
    for (size_t i = 0; i < n->literal_count; i++) {
        csgi__free(n->literals[i].text);
        node_clear(n->literals[i].node);
        csgi__free(n->literals[i].node);
    }
    for (size_t i = 0; i < n->variable_count; i++) {
        csgi__free(n->variables[i].source);
        free_regex(n->variables[i].regex);
        node_clear(n->variables[i].node);
        csgi__free(n->variables[i].node);
    }
    csgi__free(n->literals);
    csgi__free(n->variables);
    csgi__free(n->routes);
    csgi__free(n->index);
}

static void route_free(route *r)
{
    if (!r)
        return;
    csgi__free(r->name);
    for (size_t i = 0; i < r->method_count; i++)
        csgi__free(r->methods[i]);
    csgi__free(r->methods);
    for (size_t i = 0; i < r->segment_count; i++) {
        csgi__free(r->segments[i].text);
        csgi__free(r->segments[i].source);
    }
    csgi__free(r->segments);
    csgi_app_free(r->app);
    csgi__free(r);
}

/* ---- Patterns ------------------------------------------------------------------ */

static int is_identifier(const char *s, size_t len)
{
    if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    return 1;
}

/* The common methods as bits: a request's method is matched with one AND
   (0: a method without a bit, matched by name). */
enum {
    METHOD_GET = 1u << 0,
    METHOD_HEAD = 1u << 1,
    METHOD_POST = 1u << 2,
    METHOD_PUT = 1u << 3,
    METHOD_DELETE = 1u << 4,
    METHOD_PATCH = 1u << 5,
    METHOD_OPTIONS = 1u << 6
};

/* The bit of a method of len bytes: compares of a known length, which
   the compiler makes a load or two, not a call. */
static unsigned method_bit(const char *method, size_t len)
{
    switch (len) {
    case 3:
        if (memcmp(method, "GET", 3) == 0)
            return METHOD_GET;
        return memcmp(method, "PUT", 3) == 0 ? METHOD_PUT : 0;
    case 4:
        if (memcmp(method, "POST", 4) == 0)
            return METHOD_POST;
        return memcmp(method, "HEAD", 4) == 0 ? METHOD_HEAD : 0;
    case 5: return memcmp(method, "PATCH", 5) == 0 ? METHOD_PATCH : 0;
    case 6: return memcmp(method, "DELETE", 6) == 0 ? METHOD_DELETE : 0;
    case 7: return memcmp(method, "OPTIONS", 7) == 0 ? METHOD_OPTIONS : 0;
    default: return 0;
    }
}

/* The methods: tokens separated by commas or blanks, or "*" (any). */
static int parse_methods(route *r, const char *methods, const char **why)
{
    *why = "malformed method list";
    if (!methods || strcmp(methods, "*") == 0) {
        r->any_method = 1;
        return 0;
    }
    size_t capacity = 0;
    const char *p = methods;
    for (;;) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (csgi_char__is_tchar((unsigned char)*p))
            p++;
        if (*p && *p != ',' && *p != ' ' && *p != '\t')
            return CSGI_EINVAL;
        int err = reserve_one(&r->methods, &capacity, sizeof(char *), r->method_count);
        if (err)
            return err;
        r->methods[r->method_count] = csgi__strndup(start, (size_t)(p - start));
        if (!r->methods[r->method_count])
            return CSGI_ENOMEM;
        r->method_bits |= method_bit(start, (size_t)(p - start));
        r->method_count++;
    }
    return r->method_count ? 0 : CSGI_EINVAL;
}

/* A regular expression for a whole segment: "^(" source ")$". */
static int compile_regex(regex_t **out, const char *source, size_t len)
{
    char *anchored = csgi__malloc(len + 5);
    if (!anchored)
        return CSGI_ENOMEM;
    memcpy(anchored, "^(", 2);
    memcpy(anchored + 2, source, len);
    memcpy(anchored + 2 + len, ")$", 3);
    regex_t *regex = csgi__malloc(sizeof(*regex));
    int err = regex ? 0 : CSGI_ENOMEM;
    if (!err) {
        /* regcomp allocates with the C library's malloc, not csgi's. */
        int rc = regcomp(regex, anchored, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            csgi__free(regex);
            regex = NULL;
            err = rc == REG_ESPACE ? CSGI_ENOMEM : CSGI_EINVAL;
        }
    }
    csgi__free(anchored);
    *out = regex;
    return err;
}

/* One "{name}" or "{name:type}" segment (the braces removed) into s. */
static int parse_variable(route *r, segment *s, regex_t **regex, const char *text, size_t len,
                          const char **why)
{
    const char *colon = memchr(text, ':', len);
    size_t name_len = colon ? (size_t)(colon - text) : len;
    *why = "a variable's name must be an identifier";
    if (!is_identifier(text, name_len))
        return CSGI_EINVAL;
    for (size_t i = 0; i < r->segment_count; i++)
        if (r->segments[i].kind != SEGMENT_LITERAL && r->segments[i].len == name_len &&
            memcmp(r->segments[i].text, text, name_len) == 0) {
            *why = "a variable's name is used twice";
            return CSGI_EINVAL;
        }
    s->kind = SEGMENT_ANY;
    if (colon) {
        const char *type = colon + 1;
        size_t type_len = len - name_len - 1;
        *why = "a variable's type is empty";
        if (type_len == 0)
            return CSGI_EINVAL;
        if (type_len == 3 && memcmp(type, "int", 3) == 0) {
            s->kind = SEGMENT_INT;
        } else if (type_len == 3 && memcmp(type, "hex", 3) == 0) {
            s->kind = SEGMENT_HEX;
        } else {
            s->kind = SEGMENT_REGEX;
            s->source = csgi__strndup(type, type_len);
            if (!s->source)
                return CSGI_ENOMEM;
            *why = "malformed regular expression";
            int err = compile_regex(regex, type, type_len);
            if (err)
                return err;
        }
    }
    s->text = csgi__strndup(text, name_len);
    s->len = name_len;
    return s->text ? 0 : CSGI_ENOMEM;
}

/* The pattern into r->segments. regexes[i] receives the compiled
   expression of segment i (owned by the caller). */
static int parse_pattern(route *r, const char *pattern, regex_t **regexes, const char **why)
{
    *why = "a pattern must start with \"/\"";
    if (pattern[0] != '/')
        return CSGI_EINVAL;
    size_t capacity = 0;
    const char *p = pattern + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        *why = "too many segments";
        if (r->segment_count == MAX_SEGMENTS)
            return CSGI_EINVAL;
        int err = reserve_one(&r->segments, &capacity, sizeof(segment), r->segment_count);
        if (err)
            return err;
        segment *s = &r->segments[r->segment_count];
        memset(s, 0, sizeof(*s));
        if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
            err = parse_variable(r, s, &regexes[r->segment_count], p + 1, len - 2, why);
        } else if (memchr(p, '{', len) || memchr(p, '}', len)) {
            *why = "a variable must be a whole segment";
            err = CSGI_EINVAL;
        } else {
            s->kind = SEGMENT_LITERAL;
            s->text = csgi__strndup(p, len);
            s->len = len;
            err = s->text ? 0 : CSGI_ENOMEM;
        }
        if (s->text || s->source)
            r->segment_count++; /* so that it is freed */
        if (err)
            return err;
        if (s->kind != SEGMENT_LITERAL)
            r->variable_count++;
        if (!slash)
            return 0;
        p = slash + 1;
    }
}

/* ---- Segments as words -------------------------------------------------------- */

/* first_bytes[k]: the first k bytes of a word read from memory, as a
   mask. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define FIRST_BYTES(k) (~(uint64_t)0 << (64 - 8 * (k)))
#define FIRST_BYTE(x)  (__builtin_clzll(x) / 8)
#else
#define FIRST_BYTES(k) (((uint64_t)1 << (8 * (k))) - 1)
#define FIRST_BYTE(x)  (__builtin_ctzll(x) / 8)
#endif
static const uint64_t first_bytes[9] = {
    0,
    FIRST_BYTES(1),
    FIRST_BYTES(2),
    FIRST_BYTES(3),
    FIRST_BYTES(4),
    FIRST_BYTES(5),
    FIRST_BYTES(6),
    FIRST_BYTES(7),
    ~(uint64_t)0,
};

#define ONES  0x0101010101010101u
#define LOWS  (ONES * 0x7f)
#define HIGHS (ONES * 0x80)

/* The high bit of the first '/' byte of word (in memory order), and maybe
   of later bytes: 0 when it holds none. On a little-endian machine the
   classic test for a zero byte serves (a false bit can only follow a true
   one, through the borrow); elsewhere the exact per-byte test. */
static inline uint64_t slash_bytes(uint64_t word)
{
    uint64_t x = word ^ (ONES * '/');
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return ~(((x & LOWS) + LOWS) | x | LOWS);
#else
    return (x - ONES) & ~x & HIGHS;
#endif
}

/*
 * The words a segment is known by: its first eight bytes (the ones it has,
 * the rest zero, when it is shorter) and, when it is longer, its last
 * eight (else 0). Two segments of up to 16 bytes are equal when their
 * lengths and words are; longer ones compare the bytes between as well.
 * s must be followed by PAD readable bytes.
 */
static inline void segment_words(const char *s, size_t len, uint64_t *head, uint64_t *tail)
{
    uint64_t first;
    memcpy(&first, s, 8);
    *head = first & first_bytes[len < 8 ? len : 8];
    *tail = 0;
    if (len > 8)
        memcpy(tail, s + len - 8, 8);
}

/* The slot of a segment's words in a table of 2^(64 - shift) slots. */
static inline size_t slot_of(uint64_t head, uint64_t tail, size_t len, unsigned shift)
{
    uint64_t hash = (head ^ (tail * 0x9e3779b97f4a7c15u) ^ len) * 0xff51afd7ed558ccdu;
    return (size_t)(hash >> shift);
}

/* A segment of the request's path as the walk sees it: in the padded copy
   (router_call), with its words. */
typedef struct path_segment {
    char *text;
    size_t len;
    uint64_t head, tail; /* segment_words */
} path_segment;

/*
 * The segment at text, up to the next '/' or end, into *out; returns where
 * it stops (the '/', or end). The '/' is looked for eight bytes at a time,
 * and the first word read is the segment's head: a segment costs a few
 * instructions whatever its bytes. text to end is followed by PAD bytes
 * without '/'.
 */
static inline char *read_segment(char *text, const char *end, path_segment *out)
{
    uint64_t first;
    memcpy(&first, text, 8);
    uint64_t slash = slash_bytes(first);
    char *stop;
    if (slash) {
        stop = text + FIRST_BYTE(slash); /* before end: the padding has no '/' */
    } else {
        for (stop = text + 8;; stop += 8) {
            if (stop >= end) {
                stop = (char *)end;
                break;
            }
            uint64_t word;
            memcpy(&word, stop, 8);
            slash = slash_bytes(word);
            if (slash) {
                stop += FIRST_BYTE(slash);
                break;
            }
        }
    }
    size_t len = (size_t)(stop - text);
    uint64_t tail = 0;
    if (len > 8)
        memcpy(&tail, stop - 8, 8);
    else
        first &= first_bytes[len];
    out->text = text;
    out->len = len;
    out->head = first;
    out->tail = tail;
    return stop;
}

/* ---- The tree ------------------------------------------------------------------ */

static int new_node(node **out)
{
    *out = csgi__calloc(1, sizeof(node));
    return *out ? 0 : CSGI_ENOMEM;
}

/* The child for segment s, made when missing. *regex is moved into a new
   child (set to NULL) or left to the caller. */
static int child_for(node **out, node *n, segment *s, regex_t **regex)
{
    if (s->kind == SEGMENT_LITERAL) {
        for (size_t i = 0; i < n->literal_count; i++)
            if (n->literals[i].len == s->len && memcmp(n->literals[i].text, s->text, s->len) == 0)
                return *out = n->literals[i].node, 0;
        int err = reserve_one(&n->literals, &n->literal_capacity, sizeof(literal_child),
                              n->literal_count);
        if (err)
            return err;
        literal_child c = {csgi__calloc(1, s->len + PAD), s->len, NULL};
        if (c.text)
            memcpy(c.text, s->text, s->len);
        if (!c.text || new_node(&c.node) != 0) {
            csgi__free(c.text);
            return CSGI_ENOMEM;
        }
        n->literals[n->literal_count++] = c;
        return *out = c.node, 0;
    }
    /* The source of an expression is kept in the child; compare it. */
    for (size_t i = 0; i < n->variable_count; i++) {
        variable_child *c = &n->variables[i];
        if (c->kind != s->kind)
            continue;
        if (s->kind == SEGMENT_REGEX && strcmp(c->source, s->source) != 0)
            continue;
        s->regex = c->regex;
        return *out = c->node, 0;
    }
    int err = reserve_one(&n->variables, &n->variable_capacity, sizeof(variable_child),
                          n->variable_count);
    if (err)
        return err;
    variable_child c = {s->kind, NULL, NULL, NULL};
    if (s->kind == SEGMENT_REGEX) {
        c.source = csgi__strndup(s->source, strlen(s->source));
        if (!c.source)
            return CSGI_ENOMEM;
    }
    if (new_node(&c.node) != 0) {
        csgi__free(c.source);
        return CSGI_ENOMEM;
    }
    c.regex = *regex;
    *regex = NULL;
    s->regex = c.regex;
    n->variables[n->variable_count++] = c;
    return *out = c.node, 0;
}

/* Whether r accepts method, whose method_bit() is bit. */
static int accepts(const route *r, const char *method, unsigned bit)
{
    if (r->any_method)
        return 1;
    if (bit)
        return (r->method_bits & bit) != 0;
    for (size_t i = 0; i < r->method_count; i++)
        if (strcmp(r->methods[i], method) == 0)
            return 1;
    return 0;
}

static int accepts_exactly(const route *r, const char *method)
{
    return accepts(r, method, method_bit(method, strlen(method)));
}

/* Whether two routes of one pattern share a method. */
static int methods_overlap(const route *a, const route *b)
{
    if (a->any_method || b->any_method)
        return 1;
    for (size_t i = 0; i < a->method_count; i++)
        if (accepts_exactly(b, a->methods[i]))
            return 1;
    return 0;
}

/* ---- Building ------------------------------------------------------------------ */

int csgi_router_new(csgi_router **out)
{
    if (!out)
        return CSGI_EINVAL;
    *out = csgi__calloc(1, sizeof(**out));
    return *out ? 0 : CSGI_ENOMEM;
}

/* csgi_router_add, saying in *why what is wrong with a CSGI_EINVAL. */
static int add_route(csgi_router *router, const char *name, const char *methods,
                     const char *pattern, csgi_app *app, const char **why)
{
    regex_t *regexes[MAX_SEGMENTS] = {NULL};
    *why = "missing argument";
    if (!router || !pattern || !app) {
        csgi_app_free(app);
        return CSGI_EINVAL;
    }
    route *r = csgi__calloc(1, sizeof(*r));
    if (!r) {
        csgi_app_free(app);
        return CSGI_ENOMEM;
    }
    r->app = app;
    int err = 0;
    if (name) {
        *why = "a route of that name exists already";
        for (size_t i = 0; i < router->count; i++)
            if (router->routes[i]->name && strcmp(router->routes[i]->name, name) == 0)
                err = CSGI_EINVAL;
        if (!err) {
            r->name = csgi__strndup(name, strlen(name));
            if (!r->name)
                err = CSGI_ENOMEM;
        }
    }
    if (!err)
        err = parse_methods(r, methods, why);
    if (!err)
        err = parse_pattern(r, pattern, regexes, why);
    if (!err)
        err = reserve_one(&router->routes, &router->capacity, sizeof(route *), router->count);
    node *n = &router->root;
    for (size_t i = 0; !err && i < r->segment_count; i++)
        err = child_for(&n, n, &r->segments[i], &regexes[i]);
    for (size_t i = 0; !err && i < n->route_count; i++)
        if (methods_overlap(n->routes[i], r)) {
            *why = "the pattern is routed already for one of these methods";
            err = CSGI_EINVAL;
        }
    if (!err)
        err = reserve_one(&n->routes, &n->route_capacity, sizeof(route *), n->route_count);
    for (size_t i = 0; i < MAX_SEGMENTS; i++)
        free_regex(regexes[i]);
    if (err) {
        route_free(r);
        return err;
    }
    n->routes[n->route_count++] = r;
    router->routes[router->count++] = r;
    if (r->variable_count > router->max_variables)
        router->max_variables = r->variable_count;
    return 0;
}

int csgi_router_add(csgi_router *router, const char *name, const char *methods, const char *pattern,
                    csgi_app *app)
{
    const char *why;
    return add_route(router, name, methods, pattern, app, &why);
}

int csgi_router_set_not_found(csgi_router *router, csgi_app *app)
{
    if (!router) {
        csgi_app_free(app);
        return CSGI_EINVAL;
    }
    csgi_app_free(router->not_found);
    router->not_found = app;
    return 0;
}

void csgi_router_free(csgi_router *router)
{
    if (!router)
        return;
    node_clear(&router->root);
    for (size_t i = 0; i < router->count; i++)
        route_free(router->routes[i]);
    csgi__free(router->routes);
    csgi_app_free(router->not_found);
    csgi__free(router);
}

/* The hash tables of n's literal children and of those of every node
   below it. */
static int build_index(node *n)
{
    if (n->variable_count == 0)
        n->shape = n->literal_count == 0                 ? SHAPE_END
                   : n->literal_count <= LINEAR_LITERALS ? SHAPE_ROW
                                                         : SHAPE_HASH;
    else
        n->shape = n->variable_count == 1 && !n->literal_count ? SHAPE_VARIABLE : SHAPE_MIXED;
    if (n->literal_count) {
        unsigned bits = 1;
        while (((size_t)1 << bits) < 2 * n->literal_count)
            bits++;
        n->index_linear = n->literal_count <= LINEAR_LITERALS;
        size_t slots = n->index_linear ? n->literal_count + 1 : (size_t)1 << bits;
        csgi__free(n->index);
        n->index = csgi__calloc(slots, sizeof(literal_slot));
        if (!n->index)
            return CSGI_ENOMEM;
        n->index_mask = slots - 1;
        n->index_shift = 64 - bits;
        for (size_t i = 0; i < n->literal_count; i++) {
            const literal_child *c = &n->literals[i];
            literal_slot slot = {0, 0, c->len, c->text, c->node};
            segment_words(c->text, c->len, &slot.head, &slot.tail);
            size_t at =
                n->index_linear ? i : slot_of(slot.head, slot.tail, slot.len, n->index_shift);
            while (n->index[at].node)
                at = (at + 1) & n->index_mask;
            n->index[at] = slot;
        }
    }
    for (size_t i = 0; i < n->literal_count; i++) {
        int err = build_index(n->literals[i].node);
        if (err)
            return err;
    }
    for (size_t i = 0; i < n->variable_count; i++) {
        int err = build_index(n->variables[i].node);
        if (err)
            return err;
    }
    return 0;
}

static csgi_body *router_call(void *state, csgi_environ *environ,
                              csgi_start_response *start_response);

static void router_destroy(void *state)
{
    csgi_router_free(state);
}

static const csgi_app_type router_type = {"router", router_call, router_destroy};

int csgi_router_app(csgi_app **out, csgi_router **router_in)
{
    if (out)
        *out = NULL;
    if (!router_in)
        return CSGI_EINVAL;
    csgi_router *router = *router_in;
    *router_in = NULL;
    if (!router || !out) {
        csgi_router_free(router);
        return CSGI_EINVAL;
    }
    int err = build_index(&router->root);
    if (err) {
        csgi_router_free(router);
        return err;
    }
    return csgi_app_new(out, &router_type, router); /* frees the router when it fails */
}

/* ---- Matching ------------------------------------------------------------------ */

typedef struct capture {
    char *text; /* in the walk's copy of the path */
    size_t len;
} capture;

typedef struct match {
    csgi_environ *environ;
    const char *method;
    unsigned method_bit; /* method_bit(method) */
    int head;            /* the method is HEAD: a GET route will do */
    const route *found;
    capture values[MAX_SEGMENTS];
    size_t value_count;
    const node *allow[MAX_ALLOW_NODES]; /* patterns that matched without the method */
    size_t allow_count;
    int path_matched;
} match;

/* The bytes between the words of a segment longer than 16 bytes: kept out
   of line, so that the lookup of the short ones saves no registers. */
__attribute__((noinline)) static int middle_equal(const literal_slot *slot, const char *text)
{
    return memcmp(slot->text + 8, text + 8, slot->len - 16) == 0;
}

static inline int slot_matches(const literal_slot *slot, const path_segment *s)
{
    return slot->len == s->len && slot->head == s->head && slot->tail == s->tail &&
           (s->len <= 16 || middle_equal(slot, s->text));
}

/* The literal child of n for segment s, n's literals in a row. */
static inline const node *find_in_row(const node *n, const path_segment *s)
{
    for (const literal_slot *slot = n->index; slot->node; slot++)
        if (slot_matches(slot, s))
            return slot->node;
    return NULL;
}

/* The literal child of n for segment s, n's literals in a hash table. */
static inline const node *find_hashed(const node *n, const path_segment *s)
{
    for (size_t at = slot_of(s->head, s->tail, s->len, n->index_shift);;
         at = (at + 1) & n->index_mask) {
        const literal_slot *slot = &n->index[at];
        if (!slot->node)
            return NULL; /* the table is never full */
        if (slot_matches(slot, s))
            return slot->node;
    }
}

/* The literal child of n for segment s, or NULL. */
static inline const node *find_literal(const node *n, const path_segment *s)
{
    if (!n->index)
        return NULL;
    return n->index_linear ? find_in_row(n, s) : find_hashed(n, s);
}

static int all_of(const char *text, size_t len, unsigned mask)
{
    for (size_t i = 0; i < len; i++)
        if (!csgi_char__is((unsigned char)text[i], mask))
            return 0;
    return 1;
}

/* Whether a non-empty value fits a variable. A regular expression needs
   text NUL-terminated at len. */
static int value_fits(enum kind kind, const regex_t *regex, const char *text, size_t len)
{
    switch (kind) {
    case SEGMENT_INT: return all_of(text, len, CSGI_CHAR__DIGIT);
    case SEGMENT_HEX: return all_of(text, len, CSGI_CHAR__HEXDIG);
    case SEGMENT_REGEX: return !memchr(text, '\0', len) && regexec(regex, text, 0, NULL, 0) == 0;
    default: return 1;
    }
}

/* The high bit of each byte of word that is not a decimal digit, or with
   hex not a hexadecimal one (either case). Exact per byte: the sums stay
   below 0x100, so no carry crosses into the next byte. */
static inline uint64_t not_digits(uint64_t word, int hex)
{
    uint64_t low = word & LOWS;
    uint64_t at_least_0 = low + ONES * (0x80 - '0');
    uint64_t above_9 = low + ONES * (0x80 - '9' - 1);
    uint64_t good = at_least_0 & ~above_9;
    if (hex) {
        uint64_t lower = low | ONES * 0x20; /* 'A'-'F' as 'a'-'f' */
        good |= (lower + ONES * (0x80 - 'a')) & ~(lower + ONES * (0x80 - 'f' - 1));
    }
    return (word | ~good) & HIGHS;
}

/* Whether a segment is all digits (hex: all hexadecimal digits), eight
   bytes at a time: up to 16 bytes, its two words say it. */
static inline int segment_digits(const path_segment *s, int hex)
{
    if (s->len <= 16) {
        uint64_t bad = not_digits(s->head, hex) & first_bytes[s->len < 8 ? s->len : 8];
        if (s->len > 8)
            bad |= not_digits(s->tail, hex);
        return bad == 0;
    }
    for (size_t i = 0; i < s->len; i += 8) {
        uint64_t word;
        memcpy(&word, s->text + i, 8);
        uint64_t bad = not_digits(word, hex);
        if (s->len - i < 8)
            bad &= first_bytes[s->len - i];
        if (bad)
            return 0;
    }
    return 1;
}

/* A regular expression on a segment, NUL-terminated in place (out of
   line, as middle_equal). */
__attribute__((noinline)) static int regex_fits(const variable_child *c, char *text, size_t len)
{
    char saved = text[len];
    text[len] = '\0';
    int fits = value_fits(c->kind, c->regex, text, len);
    text[len] = saved;
    return fits;
}

/* Whether a non-empty segment fits a variable: int and hex a word at a
   time, a regular expression on the segment NUL-terminated in place. */
static inline int segment_fits(const variable_child *c, const path_segment *s)
{
    if (c->kind == SEGMENT_INT || c->kind == SEGMENT_HEX)
        return segment_digits(s, c->kind == SEGMENT_HEX);
    return c->kind != SEGMENT_REGEX || regex_fits(c, s->text, s->len);
}

static inline int terminal(const node *n, match *m)
{
    if (n->route_count == 0)
        return 0;
    for (size_t i = 0; i < n->route_count; i++)
        if (accepts(n->routes[i], m->method, m->method_bit))
            return m->found = n->routes[i], 1;
    if (m->head)
        for (size_t i = 0; i < n->route_count; i++)
            if (accepts(n->routes[i], "GET", METHOD_GET))
                return m->found = n->routes[i], 1;
    m->path_matched = 1;
    if (m->allow_count < MAX_ALLOW_NODES)
        m->allow[m->allow_count++] = n;
    return 0;
}

static int walk(const node *n, char *text, const char *end, match *m);

/* Go on below child with the path after the segment that ends at stop. */
static int descend(const node *child, char *stop, const char *end, match *m)
{
    return stop == end ? terminal(child, m) : walk(child, stop + 1, end, m);
}

/* What choose() returns when a candidate it tried matched. */
static const node matched;

/*
 * Where the walk goes from a node of SHAPE_MIXED with the segment from
 * text to stop. The candidates are tried in order: the literal child, then
 * the variables that fit. Every candidate but the last is tried by a call
 * (walk backtracks when it fails); the last is returned for the walk to go
 * on with, its value captured when it is a variable's. Returns NULL when
 * none fits, &matched when a candidate tried here matched. Kept out of
 * walk (with nothing of walk's in memory), so that the loop for the
 * common shapes stays small.
 */
__attribute__((noinline)) static const node *choose(const node *n, char *text, char *stop,
                                                    const char *end, match *m)
{
    path_segment s;
    read_segment(text, end, &s);
    const node *last = find_literal(n, &s);
    int captured = 0; /* last is a variable's */
    if (s.len && n->variable_count) {
        if (last && descend(last, stop, end, m))
            return &matched;
        last = NULL;
        for (size_t i = 0; i < n->variable_count; i++) {
            const variable_child *c = &n->variables[i];
            if (!segment_fits(c, &s))
                continue;
            if (last) {
                m->values[m->value_count++] = (capture){text, s.len};
                if (descend(last, stop, end, m))
                    return &matched;
                m->value_count--;
            }
            last = c->node;
            captured = 1;
        }
    }
    if (captured)
        m->values[m->value_count++] = (capture){text, s.len};
    return last;
}

/*
 * Match the path from text (a segment's start) to end below node n; the
 * path is the request's padded copy (router_call). A node with literal
 * children only, or with one variable only, leaves one way to go: the
 * walk goes on in its loop, with no call per segment. Other nodes choose()
 * among their candidates. On failure the captured values are dropped.
 */
static int walk(const node *n, char *text, const char *end, match *m)
{
    size_t values = m->value_count;
    for (;;) {
        path_segment s;
        char *stop = read_segment(text, end, &s);
        const node *next = NULL;
        switch (n->shape) {
        case SHAPE_HASH: next = find_hashed(n, &s); break;
        case SHAPE_ROW: next = find_in_row(n, &s); break;
        case SHAPE_VARIABLE:
            if (s.len && segment_fits(&n->variables[0], &s)) {
                m->values[m->value_count++] = (capture){text, s.len};
                next = n->variables[0].node;
            }
            break;
        case SHAPE_MIXED:
            next = choose(n, text, stop, end, m);
            if (next == &matched)
                return 1;
            break;
        default: break;
        }
        if (!next)
            break;
        if (stop == end) {
            if (terminal(next, m))
                return 1;
            break;
        }
        n = next;
        text = stop + 1;
    }
    m->value_count = values;
    return 0;
}

/* "GET, HEAD, POST, OPTIONS": the methods of the patterns that matched. */
static const char *allow_header(match *m)
{
    size_t size = sizeof("HEAD, OPTIONS");
    for (size_t i = 0; i < m->allow_count; i++)
        for (size_t k = 0; k < m->allow[i]->route_count; k++) {
            const route *r = m->allow[i]->routes[k];
            for (size_t j = 0; j < r->method_count; j++)
                size += strlen(r->methods[j]) + 2;
        }
    char *text = csgi_environ_alloc(m->environ, size);
    if (!text)
        return NULL;
    size_t n = 0;
    int get = 0, head = 0, options = 0;
    text[0] = '\0';
    for (size_t i = 0; i < m->allow_count; i++)
        for (size_t k = 0; k < m->allow[i]->route_count; k++) {
            const route *r = m->allow[i]->routes[k];
            for (size_t j = 0; j < r->method_count; j++) {
                const char *method = r->methods[j];
                size_t len = strlen(method);
                int seen = 0;
                for (const char *p = text; !seen && (p = strstr(p, method)) != NULL; p += len)
                    seen = (p == text || p[-1] == ' ') && (p[len] == ',' || p[len] == '\0');
                if (seen)
                    continue;
                get |= strcmp(method, "GET") == 0;
                head |= strcmp(method, "HEAD") == 0;
                options |= strcmp(method, "OPTIONS") == 0;
                n += (size_t)(n ? 2 : 0);
                if (n)
                    memcpy(text + n - 2, ", ", 2);
                memcpy(text + n, method, len + 1);
                n += len;
            }
        }
    if (get && !head) {
        memcpy(text + n, ", HEAD", 7);
        n += 6;
    }
    if (!options)
        memcpy(text + n, ", OPTIONS", 10);
    return text;
}

static csgi_body *answer(csgi_environ *environ, csgi_start_response *start_response, int status,
                         const char *allow)
{
    csgi_response *response = NULL;
    int err = status == 204 ? csgi_response_new(&response, environ)
                            : csgi_response_error(&response, environ, status, NULL);
    if (!err && status == 204)
        err = csgi_response_set_status(response, 204);
    if (!err && allow)
        err = csgi_response_set_header(response, "Allow", allow);
    if (err)
        return NULL;
    return csgi_response_send(response, environ, start_response);
}

/* What a match leaves in the environ (ROUTING_KEY), in the request's
   arena: one key and one allocation, whatever the number of variables.
   The block also holds the copy of PATH_INFO the walk read (router_call),
   so that the values are its segments, NUL-terminated in place. */
typedef struct routing {
    const csgi_router *router;
    const route *route;
    const char *values[]; /* NUL-terminated, in pattern order */
} routing;

static csgi_body *router_call(void *state, csgi_environ *environ,
                              csgi_start_response *start_response)
{
    csgi_router *router = state;
    match m;
    m.environ = environ;
    size_t method_len = 0;
    m.method = csgi_environ__request_method(environ, &method_len);
    if (!m.method) {
        m.method = "GET";
        method_len = 3;
    }
    m.method_bit = method_bit(m.method, method_len);
    m.head = m.method_bit == METHOD_HEAD;
    m.found = NULL;
    m.value_count = 0;
    m.allow_count = 0;
    m.path_matched = 0;

    /* The record, with room for the values of any route of the router,
       and the walk's copy of PATH_INFO after it, in one block: the walk
       reads the copy a word at a time (PAD zero bytes follow it), and the
       values are its segments, NUL-terminated in place once it is done.
       An empty or missing PATH_INFO is "/" (the extra byte). */
    size_t head = sizeof(routing) + router->max_variables * sizeof(char *);
    size_t len = 0;
    routing *record = (routing *)csgi_environ__path_info_block(environ, head, PAD + 1, &len);
    if (!record)
        return NULL;
    char *copy = (char *)record + head;
    if (len == 0 || len == (size_t)-1) {
        copy[0] = '/';
        len = 1;
    }
    if (copy[0] == '/') {
        walk(&router->root, copy + 1, copy + len, &m);
        if (m.found) {
            record->router = router;
            record->route = m.found;
            for (size_t i = 0; i < m.value_count; i++) {
                m.values[i].text[m.values[i].len] = '\0';
                record->values[i] = m.values[i].text;
            }
            if (csgi_environ__set_static_pointer(environ, ROUTING_KEY, sizeof(ROUTING_KEY) - 1,
                                                 record) != 0)
                return NULL;
            return csgi_app_call(m.found->app, environ, start_response);
        }
    }
    if (m.path_matched) {
        const char *allow = allow_header(&m);
        if (!allow)
            return NULL;
        return answer(environ, start_response, m.method_bit == METHOD_OPTIONS ? 204 : 405, allow);
    }
    if (router->not_found)
        return csgi_app_call(router->not_found, environ, start_response);
    return answer(environ, start_response, 404, NULL);
}

/* ---- Arguments and URLs -------------------------------------------------------- */

const char *csgi_router_arg(csgi_environ *environ, const char *name)
{
    const routing *record = environ ? csgi_environ_get_pointer(environ, ROUTING_KEY) : NULL;
    if (!record || !name)
        return NULL;
    const route *r = record->route;
    for (size_t i = 0, variable = 0; i < r->segment_count; i++) {
        if (r->segments[i].kind == SEGMENT_LITERAL)
            continue;
        if (strcmp(r->segments[i].text, name) == 0)
            return record->values[variable];
        variable++;
    }
    return NULL;
}

const char *csgi_router_route(csgi_environ *environ)
{
    const routing *record = environ ? csgi_environ_get_pointer(environ, ROUTING_KEY) : NULL;
    return record ? record->route->name : NULL;
}

/* What a segment keeps as it is in a URL: pchar without ':' and '@'
   (RFC 3986 3.3), so never '/'. SCRIPT_NAME keeps CSGI_CHAR__PATH. */
#define SEGMENT_KEEP (CSGI_CHAR__UNRESERVED | CSGI_CHAR__SUB_DELIMS)

/* The value of variable name in args, or NULL; CSGI_EINVAL in *err when
   it is given twice. */
static const char *find_arg(const char *const *args, const char *name, int *err)
{
    const char *value = NULL;
    for (size_t i = 0; args && args[i]; i += 2) {
        if (strcmp(args[i], name) != 0)
            continue;
        if (value || !args[i + 1])
            *err = CSGI_EINVAL;
        value = args[i + 1];
    }
    return value;
}

int csgi_router_url(csgi_environ *environ, const char *route_name, const char *const *args,
                    const char **out)
{
    if (!environ || !route_name || !out)
        return CSGI_EINVAL;
    *out = NULL;
    const routing *record = csgi_environ_get_pointer(environ, ROUTING_KEY);
    if (!record)
        return CSGI_EINVAL;
    const csgi_router *router = record->router;
    const route *r = NULL;
    for (size_t i = 0; i < router->count && !r; i++)
        if (router->routes[i]->name && strcmp(router->routes[i]->name, route_name) == 0)
            r = router->routes[i];
    if (!r)
        return CSGI_ENOTFOUND;

    /* Every argument is a variable of the route, given once, and fits. */
    size_t given = 0;
    for (size_t i = 0; args && args[i]; i += 2) {
        if (!args[i + 1])
            return CSGI_EINVAL;
        given++;
    }
    size_t script_len = 0;
    const char *script = csgi_environ_get_n(environ, "SCRIPT_NAME", &script_len);
    if (!script)
        script = "";
    size_t size = 3 * script_len + 1;
    int err = 0;
    for (size_t i = 0; i < r->segment_count; i++) {
        const segment *s = &r->segments[i];
        const char *value = s->text;
        if (s->kind != SEGMENT_LITERAL) {
            value = find_arg(args, s->text, &err);
            if (err || !value || !*value || !value_fits(s->kind, s->regex, value, strlen(value)))
                return CSGI_EINVAL;
            given--;
        }
        size += 1 + 3 * strlen(value);
    }
    if (given != 0)
        return CSGI_EINVAL; /* an argument that is no variable of the route */
    char *url = csgi_environ_alloc(environ, size);
    if (!url)
        return CSGI_ENOMEM;
    size_t n = csgi_char__percent_encode(url, script, script_len, CSGI_CHAR__PATH);
    for (size_t i = 0; i < r->segment_count; i++) {
        const segment *s = &r->segments[i];
        const char *value = s->kind == SEGMENT_LITERAL ? s->text : find_arg(args, s->text, &err);
        url[n++] = '/';
        n += csgi_char__percent_encode(url + n, value, strlen(value), SEGMENT_KEEP);
    }
    url[n] = '\0';
    *out = url;
    return 0;
}

/* ---- INI factory --------------------------------------------------------------- */

#define ROUTE_PREFIX "route."

/* The value of a route key: "METHODS /pattern app_name", three words. */
static int split_route(const char *value, char *words[3])
{
    const char *p = value;
    for (size_t i = 0; i < 3; i++) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (p == start)
            return CSGI_EINVAL;
        words[i] = csgi__strndup(start, (size_t)(p - start));
        if (!words[i])
            return CSGI_ENOMEM;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    return *p ? CSGI_EINVAL : 0;
}

int csgi_router__factory(csgi_app **out, csgi_loader *loader, const csgi_conf *global_conf,
                         const csgi_conf *local_conf, csgi_load_error *error)
{
    csgi_router *router = NULL;
    int rc = csgi_router_new(&router);
    if (rc != 0)
        return rc;
    csgi_app *not_found = NULL;
    rc = csgi_composite__not_found_app(&not_found, loader, global_conf, local_conf, error);
    if (rc != 0)
        goto fail;
    if (not_found)
        csgi_router_set_not_found(router, not_found);
    const char *name, *value;
    for (size_t i = 0; csgi_conf_entry(local_conf, i, &name, &value); i++) {
        if (strcmp(name, "not_found_app") == 0)
            continue;
        if (strncmp(name, ROUTE_PREFIX, sizeof(ROUTE_PREFIX) - 1) != 0 ||
            !name[sizeof(ROUTE_PREFIX) - 1]) {
            csgi_conf_error(local_conf, name, error,
                            "unknown key (route.NAME = METHODS /pattern app, or not_found_app)");
            rc = CSGI_EINVAL;
            goto fail;
        }
        char *words[3] = {NULL, NULL, NULL};
        rc = split_route(value, words);
        if (rc == CSGI_EINVAL)
            csgi_conf_error(local_conf, name, error,
                            "expected \"METHODS /pattern app\" (e.g. GET /images/{id} show)");
        csgi_app *app = NULL;
        if (rc == 0)
            rc = csgi_loader_get_app(&app, loader, words[2], error);
        if (rc == 0) {
            const char *why = "";
            rc = add_route(router, name + sizeof(ROUTE_PREFIX) - 1, words[0], words[1], app, &why);
            if (rc != 0)
                csgi_conf_error(local_conf, name, error, "%s",
                                rc == CSGI_EINVAL ? why : csgi_strerror(rc));
        }
        for (size_t k = 0; k < 3; k++)
            csgi__free(words[k]);
        if (rc != 0)
            goto fail;
    }
    return csgi_router_app(out, &router);
fail:
    csgi_router_free(router);
    return rc;
}
