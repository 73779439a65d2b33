/*
 * router: applications by URL pattern and method, with URL generation
 * (include/csgi/router.h), and its INI factory (egg:csgi#router).
 *
 * The routes are kept in a tree of segments: each node has its literal
 * children (sorted when the router becomes an application, then found by
 * binary search) and its variable children (tried in the order they were
 * added), and the routes whose pattern ends there. A request walks the tree
 * one segment of PATH_INFO at a time, trying the literal child first and
 * backtracking into the variables, so its cost grows with the depth of the
 * path and not with the number of routes.
 *
 * Written over the public protocol, with the library's allocator (so that
 * the failing-allocator tests reach it) and its growth rule (common/vec.h).
 * Typed segments use the C library's POSIX regex.h, no other engine.
 */
#include "common/alloc.h"
#include "common/chartab.h"
#include "common/vec.h"

#include <csgi.h>
#include <csgi/router.h>
#include "composite/composite_private.h"

#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A pattern has at most this many segments: the depth of the tree, and
   the bound of the walk's recursion. */
#define MAX_SEGMENTS 64
/* A 405 lists the methods of at most this many matching patterns. */
#define MAX_ALLOW_NODES 16

/* The environ key of a match: a pointer to its routing record. */
#define ROUTING_KEY "csgi.routing_args"

enum kind { SEGMENT_LITERAL, SEGMENT_ANY, SEGMENT_INT, SEGMENT_HEX, SEGMENT_REGEX };

typedef struct node node;

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
    int any_method;
    segment *segments;
    size_t segment_count;
    size_t variable_count;
    csgi_app *app; /* one reference */
} route;

typedef struct literal_child {
    char *text;
    size_t len;
    node *node;
} literal_child;

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
};

struct csgi_router {
    node root;
    route **routes;
    size_t count, capacity;
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
        literal_child c = {csgi__strndup(s->text, s->len), s->len, NULL};
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

static int accepts_exactly(const route *r, const char *method)
{
    if (r->any_method)
        return 1;
    for (size_t i = 0; i < r->method_count; i++)
        if (strcmp(r->methods[i], method) == 0)
            return 1;
    return 0;
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

/* Literal children by length, then bytes: the order of the binary search. */
static int compare_literals(const void *left, const void *right)
{
    const literal_child *a = left, *b = right;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return memcmp(a->text, b->text, a->len);
}

static void sort_tree(node *n)
{
    if (n->literal_count > 1)
        qsort(n->literals, n->literal_count, sizeof(literal_child), compare_literals);
    for (size_t i = 0; i < n->literal_count; i++)
        sort_tree(n->literals[i].node);
    for (size_t i = 0; i < n->variable_count; i++)
        sort_tree(n->variables[i].node);
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
    sort_tree(&router->root);
    return csgi_app_new(out, &router_type, router); /* frees the router when it fails */
}

/* ---- Matching ------------------------------------------------------------------ */

typedef struct capture {
    const char *text;
    size_t len;
} capture;

typedef struct match {
    csgi_environ *environ;
    const char *method;
    int head; /* the method is HEAD: a GET route will do */
    const route *found;
    capture values[MAX_SEGMENTS];
    size_t value_count;
    const node *allow[MAX_ALLOW_NODES]; /* patterns that matched without the method */
    size_t allow_count;
    int path_matched;
    int failed; /* out of memory */
} match;

static const node *find_literal(const node *n, const char *text, size_t len)
{
    size_t low = 0, high = n->literal_count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        const literal_child *c = &n->literals[mid];
        int order = c->len != len ? (c->len < len ? -1 : 1) : memcmp(c->text, text, len);
        if (order == 0)
            return c->node;
        if (order < 0)
            low = mid + 1;
        else
            high = mid;
    }
    return NULL;
}

static int all_of(const char *text, size_t len, unsigned mask)
{
    for (size_t i = 0; i < len; i++)
        if (!csgi_char__is((unsigned char)text[i], mask))
            return 0;
    return 1;
}

/* Whether a non-empty value fits a variable; m may be NULL (no request:
   then the value is NUL-terminated). */
static int value_fits(enum kind kind, const regex_t *regex, const char *text, size_t len, match *m)
{
    switch (kind) {
    case SEGMENT_INT: return all_of(text, len, CSGI_CHAR__DIGIT);
    case SEGMENT_HEX: return all_of(text, len, CSGI_CHAR__HEXDIG);
    case SEGMENT_REGEX: {
        if (memchr(text, '\0', len))
            return 0;
        if (m) {
            /* regexec needs a NUL-terminated string: copy the segment. */
            char *copy = csgi_environ_alloc(m->environ, len + 1);
            if (!copy) {
                m->failed = 1;
                return 0;
            }
            memcpy(copy, text, len);
            copy[len] = '\0';
            text = copy;
        }
        return regexec(regex, text, 0, NULL, 0) == 0;
    }
    default: return 1;
    }
}

static int terminal(const node *n, match *m)
{
    if (n->route_count == 0)
        return 0;
    for (size_t i = 0; i < n->route_count; i++)
        if (accepts_exactly(n->routes[i], m->method))
            return m->found = n->routes[i], 1;
    if (m->head)
        for (size_t i = 0; i < n->route_count; i++)
            if (accepts_exactly(n->routes[i], "GET"))
                return m->found = n->routes[i], 1;
    m->path_matched = 1;
    if (m->allow_count < MAX_ALLOW_NODES)
        m->allow[m->allow_count++] = n;
    return 0;
}

static int walk(const node *n, const char *text, const char *end, match *m);

static int step(const node *child, const char *slash, const char *end, match *m)
{
    return slash ? walk(child, slash + 1, end, m) : terminal(child, m);
}

/* Match the path from text (a segment's start) to end below node n. */
static int walk(const node *n, const char *text, const char *end, match *m)
{
    /* Segments are short: a loop costs less than a call to memchr. */
    const char *stop = text;
    while (stop < end && *stop != '/')
        stop++;
    const char *slash = stop < end ? stop : NULL;
    size_t len = (size_t)(stop - text);
    const node *child = find_literal(n, text, len);
    if (child && step(child, slash, end, m))
        return 1;
    if (len == 0)
        return 0;
    for (size_t i = 0; i < n->variable_count && !m->failed; i++) {
        const variable_child *c = &n->variables[i];
        if (!value_fits(c->kind, c->regex, text, len, m))
            continue;
        m->values[m->value_count++] = (capture){text, len};
        if (step(c->node, slash, end, m))
            return 1;
        m->value_count--;
    }
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

/* What a match leaves in the environ (ROUTING_KEY), in the request's arena:
   one key and one allocation, whatever the number of variables. */
typedef struct routing {
    const csgi_router *router;
    const route *route;
    const char *values[]; /* NUL-terminated copies, in pattern order */
} routing;

static int set_routing(csgi_environ *environ, const csgi_router *router, const route *r,
                       const capture *values)
{
    size_t size = sizeof(routing) + r->variable_count * sizeof(char *);
    for (size_t i = 0; i < r->variable_count; i++)
        size += values[i].len + 1;
    routing *record = csgi_environ_alloc(environ, size);
    if (!record)
        return CSGI_ENOMEM;
    record->router = router;
    record->route = r;
    char *text = (char *)&record->values[r->variable_count];
    for (size_t i = 0; i < r->variable_count; i++) {
        memcpy(text, values[i].text, values[i].len);
        text[values[i].len] = '\0';
        record->values[i] = text;
        text += values[i].len + 1;
    }
    return csgi_environ_set_pointer(environ, ROUTING_KEY, record, NULL);
}

static csgi_body *router_call(void *state, csgi_environ *environ,
                              csgi_start_response *start_response)
{
    csgi_router *router = state;
    match m;
    m.environ = environ;
    m.method = csgi_environ_get(environ, "REQUEST_METHOD");
    if (!m.method)
        m.method = "GET";
    m.head = strcmp(m.method, "HEAD") == 0;
    m.found = NULL;
    m.value_count = 0;
    m.allow_count = 0;
    m.path_matched = 0;
    m.failed = 0;

    size_t len = 0;
    const char *path = csgi_environ_get_n(environ, "PATH_INFO", &len);
    if (!path || len == 0) {
        path = "/";
        len = 1;
    }
    if (path[0] == '/')
        walk(&router->root, path + 1, path + len, &m);
    if (m.failed)
        return NULL;
    if (m.found) {
        const route *r = m.found;
        if (set_routing(environ, router, r, m.values) != 0)
            return NULL;
        return csgi_app_call(r->app, environ, start_response);
    }
    if (m.path_matched) {
        const char *allow = allow_header(&m);
        if (!allow)
            return NULL;
        return answer(environ, start_response, strcmp(m.method, "OPTIONS") == 0 ? 204 : 405, allow);
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
            if (err || !value || !*value ||
                !value_fits(s->kind, s->regex, value, strlen(value), NULL))
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
